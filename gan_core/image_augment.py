"""Augmentation of the encoder's training images, on the fly, so that it generalises from renders to photos.

``augment_images`` takes a batch (N, 3, S, S) float in [0, 1] and returns one of the same shape, each image
changed independently by a seeded ``torch.Generator``:

* a detector's box: a random zoom (0.8-1.2), shift (up to 10% of the side), aspect change (up to 10%) and
  tilt (up to 5 degrees), the frame's edge pixels continued outward where the box leaves the image;
* colour: brightness, contrast, saturation and per-channel gains (white balance), gamma, and a grey image
  one time in ten;
* blur (a Gaussian of sigma 0.5-1.5 px) on a third, sensor noise on a third;
* an occluder (a box of a random flat colour covering 5-20% of the frame, at an edge half the time) on a fifth.

The render cache's photo style draws backgrounds, lights, crops, JPEG and more once per stored image; this
draws again every time an image is used, so repeated epochs over a few views per shape do not repeat pixels.
Not for the clean style's evaluation or for inference: training only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["augment_images"]


def _u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _geometric(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    zoom = torch.exp(_u(g, n, math.log(0.8), math.log(1.2)))  # > 1 zooms in
    aspect = torch.exp(_u(g, n, -0.1, 0.1))
    angle = _u(g, n, -5.0, 5.0) * math.pi / 180
    tx, ty = _u(g, n, -0.2, 0.2), _u(g, n, -0.2, 0.2)  # normalised coordinates: 0.2 is 10% of the side
    sx, sy = aspect / zoom, 1 / (aspect * zoom)  # output -> input sampling scale
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([sx * cos, -sx * sin, tx], 1), torch.stack([sy * sin, sy * cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="border", align_corners=False)


def _colour(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n, dev = x.shape[0], x.device
    shape = (n, 1, 1, 1)
    gains = _u(g, 3 * n, 0.85, 1.15).view(n, 3, 1, 1).to(dev)
    x = x * gains * _u(g, n, 0.7, 1.3).view(shape).to(dev)  # white balance, brightness
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * _u(g, n, 0.6, 1.4).view(shape).to(dev) + mean  # contrast
    grey = x.mean(1, keepdim=True)
    sat = _u(g, n, 0.4, 1.5).view(shape).to(dev)
    sat = torch.where(torch.rand(n, generator=g).view(shape).to(dev) < 0.1, torch.zeros_like(sat), sat)
    x = (x - grey) * sat + grey  # saturation (0: grey)
    x = x.clamp(0.0, 1.0)
    return x.pow(torch.exp(_u(g, n, -0.35, 0.35)).view(shape).to(dev))  # gamma


def _blur(x: torch.Tensor, g: torch.Generator, p: float = 1 / 3) -> torch.Tensor:
    n = x.shape[0]
    which = torch.rand(n, generator=g) < p
    if not which.any():
        return x
    out = x.clone()
    r = 4
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    for i in torch.nonzero(which).flatten().tolist():
        sigma = float(_u(g, 1, 0.5, 1.5))
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        k = (k / k.sum()).to(x.device)
        img = F.pad(x[i:i + 1], (r, r, r, r), mode="replicate")
        img = F.conv2d(img, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        out[i:i + 1] = F.conv2d(img, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return out


def _noise(x: torch.Tensor, g: torch.Generator, p: float = 1 / 3) -> torch.Tensor:
    n = x.shape[0]
    which = (torch.rand(n, generator=g) < p).view(n, 1, 1, 1).to(x.dtype)
    sigma = _u(g, n, 0.01, 0.05).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
    return (x + (which * sigma * noise).to(x.device)).clamp(0.0, 1.0)


def _occlude(x: torch.Tensor, g: torch.Generator, p: float = 0.2) -> torch.Tensor:
    n, _, h, w = x.shape
    out = x
    for i in torch.nonzero(torch.rand(n, generator=g) < p).flatten().tolist():
        if out is x:
            out = x.clone()
        area = float(_u(g, 1, 0.05, 0.2)) * h * w
        ratio = math.exp(float(_u(g, 1, math.log(0.3), math.log(3.3))))
        bh = max(1, min(h, int(round(math.sqrt(area * ratio)))))
        bw = max(1, min(w, int(round(math.sqrt(area / ratio)))))
        y0 = int(torch.randint(0, h - bh + 1, (1,), generator=g))
        x0 = int(torch.randint(0, w - bw + 1, (1,), generator=g))
        if float(torch.rand(1, generator=g)) < 0.5:  # at an edge, as a thing in front of the camera
            side = int(torch.randint(0, 4, (1,), generator=g))
            y0, x0 = (0, x0) if side == 0 else (h - bh, x0) if side == 1 else (y0, 0) if side == 2 else (y0, w - bw)
        colour = torch.rand(3, generator=g).to(x.device, x.dtype).view(3, 1, 1)
        out[i, :, y0:y0 + bh, x0:x0 + bw] = colour
    return out


def augment_images(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A randomly changed copy of ``images`` (N, 3, S, S) float in [0, 1]: box, colour, blur, noise, occluder."""
    assert images.ndim == 4 and images.shape[1] == 3, f"expected (N, 3, S, S), got {tuple(images.shape)}"
    x = images.float()
    x = _geometric(x, generator)
    x = _colour(x, generator)
    x = _blur(x, generator)
    x = _noise(x, generator)
    x = _occlude(x, generator)
    return x.clamp(0.0, 1.0).to(images.dtype)
