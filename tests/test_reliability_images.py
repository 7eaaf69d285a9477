"""Bad and odd images through the public gan_core.image_input.load_image only: not images, truncated, tiny,
decompression bombs (a 20000x20000 PNG made from its header alone), CMYK, 16-bit, transparency, odd arrays.
Each is a one-line Gan3dError, fast, or a (3, S, S) float32 image in [0, 1]."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_core.errors import Gan3dError
from gan_core.image_input import load_image  # a rename must fail this file, never skip it

S = 32


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with one tiny compressed row: ~100 bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _object(mode: str = "RGB", size: int = 64) -> Image.Image:
    a = np.full((size, size, 3), 255, np.uint8)
    a[16:48, 20:44] = (200, 40, 40)
    return Image.fromarray(a).convert(mode)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 header is patched to claim width x height."""
    raw = bytearray(_encode(_object(), "JPEG"))
    i = raw.index(b"\xff\xc0")
    raw[i + 5:i + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


BAD_FILES = {
    "text.png": b"this is not an image",
    "empty.png": b"",
    "truncated.png": _encode(_object(), "PNG")[:120],
    "one-pixel.png": _encode(Image.new("RGB", (1, 1), "red"), "PNG"),
    "bomb-20000.png": bomb_png(20000, 20000),
    "bomb-1e5-by-1.png": bomb_png(100_000, 1),
    "zero-size.png": bomb_png(0, 0),
    "garbage.jpg": bytes(range(256)) * 8,
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_image_files_are_one_line_errors(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    t0 = time.perf_counter()
    with pytest.raises(Gan3dError) as info:
        load_image(path, S)
    assert time.perf_counter() - t0 < 3.0, "refused from the header, not after decoding"
    text = str(info.value)
    assert "\n" not in text and (str(path) in text or path.name in text), text


def test_missing_and_directory(tmp_path):
    for p in (tmp_path / "nothere.png", tmp_path):
        with pytest.raises(Gan3dError):
            load_image(p, S)


def test_a_jpeg_claiming_20000_pixels_a_side_is_fast(tmp_path):
    """JPEGs over the pixel limit are decoded at reduced scale: this one is broken, so it may fail, cleanly."""
    path = tmp_path / "big.jpg"
    path.write_bytes(_jpeg_claiming(20000, 20000))
    t0 = time.perf_counter()
    try:
        out = load_image(path, S)
    except Gan3dError as e:
        assert "\n" not in str(e)
    else:
        assert out.shape == (3, S, S)
    assert time.perf_counter() - t0 < 5.0


GOOD = {
    "cmyk.jpg": lambda: _encode(_object("CMYK"), "JPEG"),
    "cmyk.tif": lambda: _encode(_object("CMYK"), "TIFF"),
    "grey16.png": lambda: _encode(Image.fromarray((np.asarray(_object("L"), np.uint16) * 257)), "PNG"),
    "rgba.png": lambda: _encode(_object("RGBA"), "PNG"),
    "palette-transparent.png": lambda: _encode(_object("P"), "PNG", transparency=0),
    "la.png": lambda: _encode(_object("LA"), "PNG"),
    "bw.png": lambda: _encode(_object("1"), "PNG"),
    "gray.gif": lambda: _encode(_object("L"), "GIF"),
    "tall-thin.png": lambda: _encode(_object().resize((8, 400)), "PNG"),
    "float32.tif": lambda: _encode(Image.fromarray(np.asarray(_object("L"), np.float32) / 255), "TIFF"),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_odd_but_valid_images_load(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(GOOD[name]())
    out = load_image(path, S)
    assert out.shape == (3, S, S) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


ARRAYS = {
    "uint16 rgb": (np.full((40, 40, 3), 65535, np.uint16), True),
    "chw float": (np.ones((3, 40, 40), np.float32) * 0.5, True),
    "nan float": (np.full((40, 40, 3), np.nan, np.float32), False),
    "inf float": (np.full((40, 40), np.inf, np.float32), False),
    "4-d": (np.zeros((2, 40, 40, 3), np.uint8), False),
    "5 channels": (np.zeros((40, 40, 5), np.uint8), False),
    "strings": (np.full((40, 40), "x"), False),
    "1x1": (np.zeros((1, 1, 3), np.uint8), False),
    "empty": (np.zeros((0, 0, 3), np.uint8), False),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_arrays(name):
    arr, ok = ARRAYS[name]
    if ok:
        out = load_image(arr, S)
        assert out.shape == (3, S, S) and np.isfinite(out).all()
    else:
        with pytest.raises(Gan3dError) as info:
            load_image(arr, S)
        assert "\n" not in str(info.value)


def test_bytes_input(tmp_path):
    assert load_image(_encode(_object(), "PNG"), S).shape == (3, S, S)
    with pytest.raises(Gan3dError):
        load_image(b"\x89PNG garbage", S)


@pytest.mark.parametrize("size", [0, -3, 2.5, "big"])
def test_bad_size(size):
    with pytest.raises(Gan3dError):
        load_image(np.zeros((40, 40, 3), np.uint8), size)


def test_path_given_as_str(tmp_path: Path):
    (tmp_path / "a.png").write_bytes(_encode(_object(), "PNG"))
    assert load_image(str(tmp_path / "a.png"), S).shape == (3, S, S)
