"""A picture in, as the image encoder sees it: read (a path, bytes, a Pillow image or an array; bombs refused),
checked, framed as the training renders are, and encoded (the posterior mean of q(z | y)).

An image goes through the same framing as the training renders (:mod:`gan_core.data.render`): crop to the
object, pad to a square with the background colour and a margin of :data:`FRAME_MARGIN` on each side, resize
to the profile's ``image_size``. So a product photo on a plain background looks to the encoder like a render.
Functions of pictures and an encoder network only; reconstruction with a Model is :mod:`gan_core.reconstruct`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from gan_core.errors import BadFileError, BadInputError

if TYPE_CHECKING:
    import torch
    from PIL import Image as PILImage

__all__ = [
    "FRAME_MARGIN", "MAX_PIXELS", "MIN_SIDE", "ImageLike", "encode_image", "encode_images", "encoder_inputs",
    "estimate_background", "frame_object", "load_image", "object_box", "read_rgb",
]

ImageLike = Union[str, Path, bytes, np.ndarray, "PILImage.Image"]

MAX_PIXELS = 50_000_000  # larger images are refused (or, for JPEG, decoded at a reduced scale)
MIN_SIDE = 8  # smaller images carry no usable shape
FRAME_MARGIN = 0.06  # empty border on each side of the object, as a fraction of the square's side
_BG_TOLERANCE = 0.12  # a pixel belongs to the object when it differs from the background by more than this
_BG_PLAIN_FRACTION = 0.8  # share of border pixels near the background colour for it to count as plain


# -- loading -----------------------------------------------------------------------------------------------
def _open_pil(source: str | Path | bytes, size: int) -> "PILImage.Image":
    """Open an image file lazily, refusing bombs before decoding: JPEGs above the limit are decoded at a
    reduced scale (``draft``), anything else above it is refused."""
    from PIL import Image, UnidentifiedImageError

    name = "image bytes" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes):
        p = Path(source)
        if not p.exists():
            raise BadFileError(f"{p}: no such image file")
        if not p.is_file():
            raise BadFileError(f"{p}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        if "decompression bomb" in str(e).lower() or isinstance(e, (Image.DecompressionBombWarning,
                                                                     Image.DecompressionBombError)):
            raise BadFileError(f"{name}: image is too large (limit {MAX_PIXELS // 1_000_000} megapixels); "
                               "downscale it first") from None
        raise BadFileError(f"{name}: not an image file Pillow can read (PNG, JPEG, BMP, TIFF, WebP, ...)") from None
    except OSError as e:
        raise BadFileError(f"{name}: cannot read image ({e})") from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        if im.format == "JPEG":
            im.draft("RGB", (max(size * 2, 512), max(size * 2, 512)))  # DCT scaling: decodes at 1/2..1/8
        if im.size[0] * im.size[1] > MAX_PIXELS:
            raise BadFileError(f"{name}: image is {w}x{h} ({w * h / 1e6:.0f} megapixels), over the limit of "
                               f"{MAX_PIXELS // 1_000_000}; downscale it first")
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise BadFileError(f"{name}: image data is truncated or corrupt ({e})") from None
    return im


def _pil_to_rgb(im: "PILImage.Image") -> np.ndarray:
    """Any Pillow mode -> float32 (H, W, 3) in [0, 1]; transparency composited over white."""
    from PIL import ImageOps

    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:  # broken EXIF must not stop a reconstruction
        pass
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        if mode == "F":
            top = 1.0 if arr.max() <= 1.0 else (255.0 if arr.max() <= 255 else float(arr.max()))
        return _grey_to_rgb(np.clip(arr / top, 0, 1))
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA")
    elif mode in ("LA", "La", "RGBa"):
        im = im.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if arr.shape[-1] == 4:
        return _over_white(arr)
    return arr


def _grey_to_rgb(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr.astype(np.float32)[..., None], 3, axis=2)


def _over_white(rgba: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:4]
    return (rgba[..., :3] * a + (1.0 - a)).astype(np.float32)


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1|3|4) or (1|3|4, H, W) arrays, uint8 / uint16 / bool / float in [0, 1] -> (H, W, 3)."""
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise BadInputError(f"image array must be numeric, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.moveaxis(a, 0, 2)  # CHW -> HWC
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise BadInputError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise BadInputError("image array contains NaN or Inf")
        f = np.clip(a, 0, 1).astype(np.float32) if a.max() <= 1.0 else np.clip(a / 255.0, 0, 1).astype(np.float32)
    elif a.dtype == np.bool_:
        f = a.astype(np.float32)
    else:
        top = 65535.0 if a.dtype.itemsize >= 2 and a.max() > 255 else 255.0
        f = np.clip(a.astype(np.float32) / top, 0, 1)
    if f.ndim == 2:
        return _grey_to_rgb(f)
    return _over_white(f) if f.shape[2] == 4 else f


def _to_rgb(image: ImageLike, size: int) -> np.ndarray:
    from PIL import Image

    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    if isinstance(image, Image.Image):
        w, h = image.size
        if w * h > MAX_PIXELS:
            raise BadFileError(f"image is {w}x{h}, over the limit of {MAX_PIXELS // 1_000_000} megapixels")
        return _pil_to_rgb(image)
    if isinstance(image, (str, Path, bytes)):
        im = _open_pil(image, size)
        try:
            return _pil_to_rgb(im)
        except (OSError, ValueError) as e:
            raise BadFileError(f"{image if not isinstance(image, bytes) else 'image bytes'}: cannot convert "
                               f"image mode {im.mode!r} ({e})") from None
    raise BadInputError(f"expected an image path, bytes, numpy array or PIL image, got {type(image).__name__}")


# -- framing -----------------------------------------------------------------------------------------------
def estimate_background(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """The background colour (3,) as the median of the border pixels, and whether the background is plain
    enough to crop against (most border pixels close to that colour)."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])  # (2H + 2W, 3)
    colour = np.median(border, axis=0).astype(np.float32)
    near = np.abs(border - colour).max(axis=1) <= _BG_TOLERANCE
    return colour, bool(near.mean() >= _BG_PLAIN_FRACTION)


def object_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) (exclusive ends) of the pixels that differ from a uniform background;
    None when the background is busy or nothing differs."""
    colour, uniform = estimate_background(rgb)
    if not uniform:
        return None
    diff = np.abs(rgb - colour).max(axis=2) > _BG_TOLERANCE  # (H, W)
    rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def frame_object(image: np.ndarray, box: tuple[int, int, int, int] | None, background: np.ndarray,
                 size: int, margin: float = FRAME_MARGIN) -> np.ndarray:
    """Crop ``image`` (H, W, C) float in [0, 1] to ``box``, pad it to a square filled with ``background``
    (C,) leaving ``margin`` of the side free on each side, and resize to ``size``.

    Returns float32 (size, size, C). Training renders and :func:`load_image` both go through it, so both
    frame objects the same way.
    """
    from PIL import Image

    if box is not None:
        t, b, l, r = box
        image = image[t:b, l:r]
    h, w, c = image.shape
    side = max(int(np.ceil(max(h, w) / (1 - 2 * margin))), 1)
    canvas = np.empty((side, side, c), np.float32)
    canvas[...] = background
    y0, x0 = (side - h) // 2, (side - w) // 2
    canvas[y0:y0 + h, x0:x0 + w] = image
    if side == size:
        return canvas
    resample = Image.Resampling.LANCZOS if side > size else Image.Resampling.BICUBIC
    u8 = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    out = np.empty((size, size, c), np.float32)
    for k in range(c):  # per channel: Pillow resizes RGB and RGBA alike, but not premultiplied-free RGBA
        out[..., k] = np.asarray(Image.fromarray(u8[..., k]).resize((size, size), resample), np.float32)
    return out / 255.0


def read_rgb(image: ImageLike, size: int = 128) -> np.ndarray:
    """An image as it is, before framing: (H, W, 3) float32 in [0, 1] (``size``: the side it will be framed to,
    which lets huge JPEGs decode at a reduced scale). The same inputs and errors as :func:`load_image`."""
    if not isinstance(size, (int, np.integer)) or size < MIN_SIDE:
        raise BadInputError(f"size must be an integer >= {MIN_SIDE}, got {size!r}")
    rgb = _to_rgb(image, int(size))  # (H, W, 3)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        what = str(image) if isinstance(image, (str, Path)) else "image"
        raise BadFileError(f"{what}: image is {w}x{h}, too small (at least {MIN_SIDE}x{MIN_SIDE} pixels)")
    return rgb


def load_image(image: ImageLike, size: int = 128, *, crop: bool = True) -> np.ndarray:
    """Read and normalise an image for the encoder.

    Parameters
    ----------
    image : path, bytes, numpy array or PIL image
        Any size or aspect; RGB, RGBA / LA / palette with transparency (composited over white), greyscale,
        16-bit, CMYK and the other Pillow modes. Arrays are (H, W), (H, W, 3|4) or (3|4, H, W), uint8,
        uint16 or float in [0, 1].
    size : int
        Output side, the profile's ``image_size`` (fast32: 128, paper64: 256).
    crop : bool
        Crop to the object: the background colour is estimated from the border pixels and the box of the
        pixels that differ from it is kept (skipped when the border is not uniform).

    Returns
    -------
    ndarray (3, size, size) float32 in [0, 1]
        The object centred in a square with the background colour around it.

    Raises
    ------
    BadFileError
        Missing, unreadable or non-image files; images smaller than 8 px on a side; images over 50
        megapixels (JPEGs over it are decoded at reduced scale instead).
    """
    rgb = read_rgb(image, size)  # (H, W, 3)
    colour, _ = estimate_background(rgb)
    box = object_box(rgb) if crop else None
    out = frame_object(rgb, box, colour, int(size))  # (S, S, 3)
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


# -- encoding -------------------------------------------------------------------------------------------
def encoder_inputs(encoder: "torch.nn.Module", images: np.ndarray, device: Any = None) -> tuple[np.ndarray, Any]:
    """Images checked for the encoder, (N, 3, S, S) float32, and the device to run it on (given, or its own)."""
    import torch

    imgs = np.asarray(images, np.float32)
    s = encoder.profile.image_size
    if imgs.ndim != 4 or imgs.shape[1:] != (3, s, s):
        raise BadInputError(f"images must be (N, 3, {s}, {s}) float in [0, 1], got {imgs.shape}")
    return imgs, torch.device(device) if device is not None else next(encoder.parameters()).device


def encode_images(encoder: "torch.nn.Module", images: np.ndarray, *, device: Any = None,
                  batch_size: int = 64) -> np.ndarray:
    """Posterior means (N, z_dim) float32 of preprocessed images (N, 3, S, S) float32 in [0, 1]."""
    import torch

    imgs, dev = encoder_inputs(encoder, images, device)
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(imgs), batch_size):
                mean, _ = encoder(torch.from_numpy(imgs[i:i + batch_size]).to(dev))  # (B, z_dim)
                out.append(mean.float().cpu().numpy())
    finally:
        encoder.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, encoder.profile.z_dim), np.float32)


def encode_image(encoder: "torch.nn.Module", image: ImageLike, device: Any = None) -> np.ndarray:
    """z (z_dim,) float32 for one image: the posterior mean of q(z | y), in eval mode, without gradients.

    ``image`` is anything :func:`load_image` takes; it is preprocessed at the encoder's ``image_size``.
    """
    arr = load_image(image, encoder.profile.image_size)
    return encode_images(encoder, arr[None], device=device)[0]
