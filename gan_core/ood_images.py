"""Pictures that are not furniture, made from a seed: blank images, noise, portrait-like pictures and other
non-furniture scenes (landscapes, text pages, trees, balls). They calibrate and test the reconstruction
confidence (:mod:`gan_core.recon_confidence`): a reconstruction from one of them must come with a warning.

Every maker takes a ``numpy.random.Generator`` and a side in pixels and returns (S, S, 3) uint8; the same
seed gives the same picture.

Examples
--------
>>> import numpy as np
>>> img = make("portrait", np.random.default_rng(0), 128)
>>> img.shape, img.dtype
((128, 128, 3), dtype('uint8'))
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gan_core.errors import BadInputError

__all__ = ["KINDS", "degrade", "make", "make_set"]

SKIN = ((0.96, 0.80, 0.69), (0.92, 0.72, 0.58), (0.80, 0.58, 0.43), (0.63, 0.43, 0.30), (0.45, 0.30, 0.21),
        (0.30, 0.20, 0.14))
HAIR = ((0.1, 0.07, 0.05), (0.35, 0.22, 0.12), (0.75, 0.6, 0.35), (0.55, 0.25, 0.1), (0.6, 0.6, 0.6),
        (0.02, 0.02, 0.02))


def _u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def _colour(g: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in g.integers(0, 256, 3))


def _rgb(c: tuple[float, float, float], jitter: float, g: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(np.clip(v + g.normal(0, jitter), 0, 1) * 255) for v in c)


def _smooth_noise(g: np.random.Generator, size: int, cell: int, channels: int = 3) -> np.ndarray:
    """Noise of feature size ``cell`` px: a coarse random grid upsampled bicubically, (S, S, C) in [0, 1]."""
    from PIL import Image

    n = max(2, size // max(cell, 1))
    coarse = g.random((n, n, channels))
    out = np.stack([np.asarray(Image.fromarray(_u8(coarse[..., k])).resize((size, size), Image.Resampling.BICUBIC))
                    for k in range(channels)], axis=2)
    return out.astype(np.float32) / 255.0


def _backdrop(g: np.random.Generator, size: int) -> np.ndarray:
    """A plain, gradient or softly textured background (S, S, 3) float in [0, 1]."""
    kind = g.integers(3)
    a, b = g.random(3), g.random(3)
    if kind == 0:
        return np.broadcast_to(a, (size, size, 3)).astype(np.float32).copy()
    if kind == 1:
        t = np.linspace(0, 1, size)[:, None, None]
        return (a * (1 - t) + b * t).astype(np.float32) * np.ones((1, size, 1), np.float32)
    return (a * 0.6 + 0.4 * _smooth_noise(g, size, size // 6)).astype(np.float32)


# -- the kinds ---------------------------------------------------------------------------------------------
def blank(g: np.random.Generator, size: int) -> np.ndarray:
    """One colour everywhere (white, black, grey or any colour), sometimes with faint sensor noise."""
    c = g.choice(4)
    base = {0: np.ones(3), 1: np.zeros(3), 2: np.full(3, g.random())}.get(int(c), g.random(3))
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32)
    if g.random() < 0.5:
        img = img + g.normal(0, 0.01, img.shape)
    return _u8(img)


def noise(g: np.random.Generator, size: int) -> np.ndarray:
    """Random pixels: white (grey or colour) Gaussian or uniform noise, salt and pepper, or smooth noise of a
    random feature size (2 to 24 px)."""
    kind = int(g.integers(5))
    if kind == 0:
        img = g.normal(0.5, g.uniform(0.1, 0.35), (size, size, 1)).repeat(3, axis=2)
    elif kind == 1:
        img = g.normal(0.5, g.uniform(0.1, 0.35), (size, size, 3))
    elif kind == 2:
        img = g.random((size, size, 3))
    elif kind == 3:
        img = (g.random((size, size, 1)) < 0.5).astype(np.float32).repeat(3, axis=2)
    else:
        img = _smooth_noise(g, size, int(g.integers(2, 25)))
    return _u8(img)


def portrait(g: np.random.Generator, size: int) -> np.ndarray:
    """A head-and-shoulders picture: a skin-toned face with hair, eyes, nose and mouth, a neck and a torso in a
    shirt colour, over a plain, gradient or textured background; position and scale vary."""
    from PIL import Image, ImageDraw

    s = size * 2  # drawn at twice the size, then downsampled (smooth edges)
    img = Image.fromarray(_u8(_backdrop(g, s)))
    d = ImageDraw.Draw(img)
    skin, hair = SKIN[g.integers(len(SKIN))], HAIR[g.integers(len(HAIR))]
    cx = s * g.uniform(0.38, 0.62)
    hw = s * g.uniform(0.13, 0.22)  # half width of the head
    hh = hw * g.uniform(1.2, 1.45)
    cy = s * g.uniform(0.3, 0.45)
    shirt = _colour(g)
    top = cy + hh * 0.9
    d.ellipse([cx - hw * 3.2, top + hh * 0.35, cx + hw * 3.2, top + hh * 4], fill=shirt)  # shoulders and torso
    d.rectangle([cx - hw * 0.45, cy + hh * 0.5, cx + hw * 0.45, top + hh * 0.6], fill=_rgb(skin, 0.03, g))  # neck
    d.ellipse([cx - hw * 1.12, cy - hh * 1.12, cx + hw * 1.12, cy + hh * 0.55], fill=_rgb(hair, 0.03, g))  # hair
    face = _rgb(skin, 0.03, g)
    d.ellipse([cx - hw, cy - hh * 0.85, cx + hw, cy + hh], fill=face)
    if g.random() < 0.6:  # a fringe
        d.chord([cx - hw, cy - hh * 0.95, cx + hw, cy - hh * 0.05], 180, 360, fill=_rgb(hair, 0.03, g))
    ey, ex, er = cy + hh * 0.05, hw * 0.4, hw * 0.13
    for sx in (-1, 1):
        d.ellipse([cx + sx * ex - er * 1.6, ey - er, cx + sx * ex + er * 1.6, ey + er], fill=(245, 245, 245))
        d.ellipse([cx + sx * ex - er * 0.8, ey - er * 0.8, cx + sx * ex + er * 0.8, ey + er * 0.8],
                  fill=_rgb((0.2, 0.15, 0.1), 0.05, g))
        d.line([cx + sx * ex - er * 2, ey - er * 2.2, cx + sx * ex + er * 2, ey - er * 2.4],
               fill=_rgb(hair, 0.03, g), width=max(1, int(er)))
    dark = tuple(int(c * 0.8) for c in face)
    d.line([cx, ey + er, cx - hw * 0.1, cy + hh * 0.45, cx + hw * 0.05, cy + hh * 0.5], fill=dark,
           width=max(1, int(er * 0.6)))
    d.arc([cx - hw * 0.4, cy + hh * 0.45, cx + hw * 0.4, cy + hh * 0.78], 20, 160, fill=(150, 40, 40),
          width=max(1, int(er * 0.8)))
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, np.float32) / 255.0
    return _u8(arr + g.normal(0, 0.015, arr.shape))


def landscape(g: np.random.Generator, size: int) -> np.ndarray:
    """Sky (a blue gradient, sometimes a sun), mountains and a textured field."""
    from PIL import Image, ImageDraw

    t = np.linspace(0, 1, size)[:, None, None]
    sky_top, sky_low = np.array([0.25, 0.45, 0.85]) * g.uniform(0.7, 1.1), np.array([0.8, 0.88, 0.95])
    arr = (sky_top * (1 - t) + sky_low * t) * np.ones((1, size, 1))
    img = Image.fromarray(_u8(arr))
    d = ImageDraw.Draw(img)
    if g.random() < 0.5:
        r, x, y = size * g.uniform(0.04, 0.09), size * g.uniform(0.1, 0.9), size * g.uniform(0.08, 0.3)
        d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 240, 190))
    horizon = size * g.uniform(0.45, 0.7)
    for _ in range(int(g.integers(1, 4))):
        xs = np.sort(g.uniform(-0.2, 1.2, 6)) * size
        peaks = [(x, horizon - size * g.uniform(0.05, 0.35)) for x in xs]
        d.polygon([(xs[0], horizon)] + peaks + [(xs[-1], horizon)], fill=_rgb((0.4, 0.42, 0.5), 0.08, g))
    field = np.asarray(img, np.float32) / 255.0
    grass = np.array([0.25, 0.5, 0.2]) * g.uniform(0.6, 1.3) * (0.7 + 0.6 * _smooth_noise(g, size, 6, 1))
    field[int(horizon):] = grass[int(horizon):]
    return _u8(field)


def document(g: np.random.Generator, size: int) -> np.ndarray:
    """A page of text: dark word-sized bars in lines on white or cream paper."""
    from PIL import Image, ImageDraw

    paper = _rgb((0.97, 0.96, 0.92), 0.02, g)
    img = Image.new("RGB", (size, size), paper)
    d = ImageDraw.Draw(img)
    line_h = size * g.uniform(0.03, 0.06)
    y = size * 0.06
    while y < size * 0.94:
        x = size * 0.06
        while x < size * 0.9:
            w = size * g.uniform(0.03, 0.12)
            d.rectangle([x, y, min(x + w, size * 0.94), y + line_h * 0.55], fill=(30, 30, 30))
            x += w + size * 0.015
        y += line_h
    return np.asarray(img, np.uint8).copy()


def tree(g: np.random.Generator, size: int) -> np.ndarray:
    """A tree: a brown trunk under a green crown of overlapping blobs, on a plain or gradient backdrop."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(_u8(_backdrop(g, size)))
    d = ImageDraw.Draw(img)
    cx = size * g.uniform(0.4, 0.6)
    d.rectangle([cx - size * 0.04, size * 0.5, cx + size * 0.04, size * 0.95], fill=_rgb((0.4, 0.25, 0.12), 0.05, g))
    for _ in range(int(g.integers(5, 12))):
        r = size * g.uniform(0.1, 0.2)
        x, y = cx + size * g.normal(0, 0.12), size * g.uniform(0.2, 0.5)
        d.ellipse([x - r, y - r, x + r, y + r], fill=_rgb((0.2, 0.5, 0.15), 0.08, g))
    return np.asarray(img, np.uint8).copy()


def ball(g: np.random.Generator, size: int) -> np.ndarray:
    """A shaded sphere (a ball, a fruit) on a plain backdrop."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cx, cy, r = g.uniform(0.35, 0.65), g.uniform(0.35, 0.65), g.uniform(0.15, 0.35)
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r
    inside = dist < 1
    shade = np.clip(1.1 - np.sqrt((xx - cx + r * 0.35) ** 2 + (yy - cy + r * 0.35) ** 2) / (1.6 * r), 0.15, 1)
    img = np.broadcast_to(g.random(3), (size, size, 3)).astype(np.float32).copy()
    img[inside] = (g.random(3) * shade[..., None])[inside]
    return _u8(img)


def person(g: np.random.Generator, size: int) -> np.ndarray:
    """A standing figure, seen whole: head, torso, arms and legs in clothing colours, on a backdrop."""
    from PIL import Image, ImageDraw

    s = size * 2
    img = Image.fromarray(_u8(_backdrop(g, s)))
    d = ImageDraw.Draw(img)
    skin, hair = _rgb(SKIN[g.integers(len(SKIN))], 0.03, g), _rgb(HAIR[g.integers(len(HAIR))], 0.03, g)
    top, trousers = _colour(g), _colour(g)
    cx, h = s * g.uniform(0.4, 0.6), s * g.uniform(0.7, 0.9)
    y0 = (s - h) / 2
    u = h / 8  # a head is an eighth of the height
    w = max(2, int(u * 0.45))
    d.line([cx - u * 0.5, y0 + u * 4, cx - u * 0.7, y0 + h], fill=trousers, width=w * 2)  # legs
    d.line([cx + u * 0.5, y0 + u * 4, cx + u * 0.7, y0 + h], fill=trousers, width=w * 2)
    d.rounded_rectangle([cx - u, y0 + u * 1.2, cx + u, y0 + u * 4.2], radius=u * 0.4, fill=top)  # torso
    arm = g.uniform(-0.6, 0.6)
    for sx in (-1, 1):
        d.line([cx + sx * u * 0.9, y0 + u * 1.5, cx + sx * u * (1.4 + arm * (sx > 0)), y0 + u * 3.8], fill=top,
               width=w * 2)
        d.ellipse([cx + sx * u * (1.4 + arm * (sx > 0)) - w, y0 + u * 3.8 - w, cx + sx * u * (1.4 + arm * (sx > 0)) + w,
                   y0 + u * 3.8 + w], fill=skin)
    d.ellipse([cx - u * 0.5, y0, cx + u * 0.5, y0 + u * 1.1], fill=skin)  # head
    d.chord([cx - u * 0.52, y0 - u * 0.05, cx + u * 0.52, y0 + u * 0.7], 180, 360, fill=hair)
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), np.uint8).copy()


def pattern(g: np.random.Generator, size: int) -> np.ndarray:
    """Stripes, checks or dots over the whole picture, with no object in front."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    a, b = g.random(3), g.random(3)
    period = g.uniform(4, size / 3)
    ang = g.uniform(0, np.pi)
    kind = int(g.integers(3))
    if kind == 0:
        m = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * 2 * np.pi / period) > 0
    elif kind == 1:
        m = ((xx // period).astype(int) + (yy // period).astype(int)) % 2 == 0
    else:
        m = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) < (period / 3) ** 2
    return _u8(np.where(m[..., None], a, b))


def car(g: np.random.Generator, size: int) -> np.ndarray:
    """A car from the side: a body, a cabin with windows, two wheels, on a road under a backdrop."""
    from PIL import Image, ImageDraw

    s = size * 2
    img = Image.fromarray(_u8(_backdrop(g, s)))
    d = ImageDraw.Draw(img)
    road = s * g.uniform(0.65, 0.8)
    d.rectangle([0, road, s, s], fill=_rgb((0.35, 0.35, 0.37), 0.05, g))
    length = s * g.uniform(0.6, 0.85)
    x0 = (s - length) / 2 + s * g.uniform(-0.05, 0.05)
    hb = length * 0.18
    body = _colour(g)
    d.rounded_rectangle([x0, road - hb * 1.4, x0 + length, road - hb * 0.3], radius=hb * 0.3, fill=body)
    d.polygon([(x0 + length * 0.22, road - hb * 1.35), (x0 + length * 0.32, road - hb * 2.3),
               (x0 + length * 0.7, road - hb * 2.3), (x0 + length * 0.82, road - hb * 1.35)], fill=body)
    d.polygon([(x0 + length * 0.3, road - hb * 1.4), (x0 + length * 0.36, road - hb * 2.1),
               (x0 + length * 0.66, road - hb * 2.1), (x0 + length * 0.74, road - hb * 1.4)], fill=(170, 200, 220))
    for fx in (0.2, 0.8):
        r = hb * 0.5
        cx, cy = x0 + length * fx, road - hb * 0.3
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(20, 20, 20))
        d.ellipse([cx - r * 0.45, cy - r * 0.45, cx + r * 0.45, cy + r * 0.45], fill=(160, 160, 160))
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), np.uint8).copy()


KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "blank": blank, "noise": noise, "portrait": portrait, "person": person, "landscape": landscape,
    "document": document, "tree": tree, "ball": ball, "pattern": pattern, "car": car,
}


def degrade(image: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """A camera's and the web's marks on a picture (S, S, 3) uint8: sometimes a slight blur, usually JPEG
    compression (quality 30-95), and a random gamma and gain. Calibration applies it to renders and to these
    pictures alike, so that neither side can be told by how clean it is."""
    import io

    from PIL import Image, ImageFilter

    pil = Image.fromarray(np.asarray(image, np.uint8))
    if g.random() < 0.5:
        pil = pil.filter(ImageFilter.GaussianBlur(g.uniform(0.3, 1.5)))
    if g.random() < 0.7:
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=int(g.integers(30, 96)))
        pil = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    a = np.asarray(pil, np.float32) / 255.0
    return _u8(a ** g.uniform(0.7, 1.4) * g.uniform(0.8, 1.2))


def make(kind: str, g: np.random.Generator, size: int = 128) -> np.ndarray:
    """One picture of ``kind`` (a key of :data:`KINDS`): (size, size, 3) uint8."""
    if kind not in KINDS:
        raise BadInputError(f"unknown picture kind {kind!r}; known: {', '.join(KINDS)}")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise BadInputError(f"size must be an integer >= 16, got {size!r}")
    return KINDS[kind](g, int(size))


def make_set(kind: str, n: int, seed: int = 0, size: int = 128) -> np.ndarray:
    """``n`` pictures of ``kind`` from ``seed``: (n, size, size, 3) uint8."""
    g = np.random.default_rng([int(seed), sorted(KINDS).index(kind) if kind in KINDS else 0, 0x00D])
    return np.stack([make(kind, g, size) for _ in range(n)]) if n else np.zeros((0, size, size, 3), np.uint8)
