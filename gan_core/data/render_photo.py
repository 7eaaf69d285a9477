"""The ``photo`` render style: domain-randomised scenes, so that renders look like cluttered photos of furniture.

The ``clean`` style (:mod:`gan_core.data.render_scene`) frames one object centred on a plain or patterned
background under one key light. ``photo`` randomises what a real photo varies (everything drawn from the shape's
own random stream, so a shape's images still depend on (seed, row) only):

* camera: elevation 0-55 degrees, field of view 15-65 degrees, distance (a dolly of 0.7-1.0 after fitting);
* light: 1-3 scene lights from the upper hemisphere, each with a colour temperature of 2700-7500 K, a headlight
  fill and an ambient level of 0.05-0.45;
* material: wood, fabric (flat, matte), metal (grey or tinted, sharp highlights), painted / plastic, white or
  black finishes;
* crop like a detector's box: the object's longest side fills 60-100% of the frame, placed off-centre but inside
  it (:func:`detector_box`);
* background: a room (wall over a wooden, tiled or carpeted floor), wood planks, fractal noise, or the clean
  style's gradients, noise and patterns; then coloured patches, sprites of other renders (other furniture, the
  shape's own earlier views, recoloured) and a soft contact shadow under the object;
* occluders: a box face, a plank or a pole in front, hiding at most about a third of the object's box;
* finish (:func:`apply_finish`): colour jitter (white balance, brightness, contrast, saturation, gamma), sensor
  noise, Gaussian blur, and always a JPEG round trip at quality 25-95.
"""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass

import numpy as np

STYLES = ("clean", "photo")
PHOTO_ELEVATION_RANGE = (0.0, 55.0)
FILL_RANGE = (0.6, 1.0)  # the object's longest side over the frame's side
JPEG_QUALITY = (25, 95)
PHOTO_BACKGROUNDS = ("room", "wood", "fractal", "gradient", "noise", "pattern")
PHOTO_BACKGROUND_P = (0.5, 0.12, 0.12, 0.1, 0.06, 0.1)
MATERIALS = ("wood", "fabric", "metal", "painted", "white", "black")
MATERIAL_P = (0.3, 0.25, 0.15, 0.15, 0.1, 0.05)


# -- lights, materials and camera ------------------------------------------------------------------------
def kelvin_rgb(kelvin: float) -> tuple[float, float, float]:
    """The colour (r, g, b) in [0, 1] of a black body at ``kelvin`` (Tanner Helland's fit; 6600 K is white)."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    return tuple(float(np.clip(c, 0, 255) / 255) for c in (r, g, b))  # type: ignore[return-value]


@dataclass(frozen=True)
class PhotoLight:
    direction: tuple[float, float, float]  # unit vector towards the light
    colour: tuple[float, float, float]
    intensity: float


@dataclass(frozen=True)
class PhotoLook:
    """The random part of one photo-style image's 3D scene."""

    material: str
    colour: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float
    specular_power: float
    lights: tuple[PhotoLight, ...]  # 1-3 scene lights
    fill_intensity: float  # the headlight
    view_angle: float  # field of view, degrees
    dolly: float  # < 1: the camera backs off from the fitted distance


def material_colour(material: str, g: np.random.Generator) -> tuple[np.ndarray, float, float, float, float]:
    """(colour (3,), ambient gain, diffuse, specular, specular power) of a material kind."""
    if material == "wood":
        base = np.array([0.55, 0.36, 0.2]) * g.uniform(0.45, 1.6)
        colour = np.clip(base + g.normal(0, 0.05, 3), 0.04, 1)
        return colour, 1.0, g.uniform(0.7, 1.0), g.uniform(0.05, 0.3), g.uniform(8, 30)
    if material == "fabric":
        c = np.array(colorsys.hsv_to_rgb(g.random(), g.uniform(0.05, 0.6), g.uniform(0.25, 0.9)))
        return c, 1.2, g.uniform(0.75, 1.0), g.uniform(0.0, 0.05), 5.0
    if material == "metal":
        grey = g.uniform(0.4, 0.85)
        c = np.clip(grey + g.normal(0, 0.04, 3) + (g.random() < 0.3) * np.array([0.1, 0.05, -0.05]), 0, 1)
        return c, 0.8, g.uniform(0.35, 0.65), g.uniform(0.6, 1.0), g.uniform(30, 100)
    if material == "painted":
        c = np.array(colorsys.hsv_to_rgb(g.random(), g.uniform(0.4, 1.0), g.uniform(0.35, 1.0)))
        return c, 1.0, g.uniform(0.7, 1.0), g.uniform(0.2, 0.6), g.uniform(10, 60)
    if material == "white":
        colour = np.full(3, g.uniform(0.85, 1.0)) - g.uniform(0, 0.05, 3)
        return colour, 1.0, g.uniform(0.7, 0.95), g.uniform(0.05, 0.3), 20.0
    return np.full(3, g.uniform(0.05, 0.18)), 1.0, g.uniform(0.6, 0.9), g.uniform(0.2, 0.6), g.uniform(10, 60)  # black


def draw_photo_look(g: np.random.Generator) -> PhotoLook:
    material = str(g.choice(MATERIALS, p=MATERIAL_P))
    colour, ambient_gain, diffuse, specular, power = material_colour(material, g)
    lights = []
    for i in range(int(g.integers(1, 4))):
        la, le = np.radians(g.uniform(0, 360)), np.radians(g.uniform(10, 85))
        d = (float(np.cos(le) * np.cos(la)), float(np.cos(le) * np.sin(la)), float(np.sin(le)))
        lights.append(PhotoLight(d, kelvin_rgb(g.uniform(2700, 7500)), float(g.uniform(0.5, 1.1) / (1 + 0.6 * i))))
    return PhotoLook(material, tuple(float(c) for c in colour), float(g.uniform(0.05, 0.45) * ambient_gain),
                     float(diffuse), float(specular), float(power), tuple(lights), float(g.uniform(0.0, 0.45)),
                     float(g.uniform(15, 65)), float(g.uniform(0.7, 1.0)))


# -- placement -------------------------------------------------------------------------------------------
def detector_box(h: int, w: int, size: int, g: np.random.Generator) -> tuple[int, int, int, int]:
    """Where an object crop of h x w pixels goes in a size x size frame, as a detector's box would crop it:
    (top, bottom, left, right), its longest side FILL_RANGE of the frame, placed at random but inside."""
    fill = g.uniform(*FILL_RANGE)
    scale = fill * size / max(h, w)
    oh, ow = (min(size, max(1, int(round(h * scale)))), min(size, max(1, int(round(w * scale)))))
    top, left = int(g.integers(0, size - oh + 1)), int(g.integers(0, size - ow + 1))
    return top, top + oh, left, left + ow


def resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a float image (H, W, C) to (h, w, C), per channel in Pillow's float mode (bilinear / area)."""
    from PIL import Image

    if img.shape[:2] == (h, w):
        return img.astype(np.float32, copy=False)
    method = Image.Resampling.BOX if h < img.shape[0] else Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(img[..., k], np.float32)).resize((w, h), method))
                     for k in range(img.shape[2])], axis=-1)


# -- backgrounds -----------------------------------------------------------------------------------------
def muted(rgb: np.ndarray, g: np.random.Generator, lo: float = 0.2) -> np.ndarray:
    """Colours (..., 3) pulled towards their grey by a random share (1 - [lo, 1]): rooms are rarely neon."""
    grey = rgb.mean(axis=-1, keepdims=True)
    return grey + (rgb - grey) * g.uniform(lo, 1.0)


def _value_noise(size: int, cells: int, g: np.random.Generator) -> np.ndarray:
    """Smooth noise (S, S) in [0, 1] from a cells x cells lattice."""
    return resize(g.random((cells, cells, 1)).astype(np.float32), size, size)[..., 0]


def fractal_noise(size: int, g: np.random.Generator, octaves: int = 4) -> np.ndarray:
    """Multi-octave value noise (S, S) in [0, 1]."""
    out, amp, total = np.zeros((size, size), np.float32), 1.0, 0.0
    cells = int(g.integers(2, 6))
    for _ in range(octaves):
        out += amp * _value_noise(size, min(cells, size), g)
        total += amp
        amp *= 0.5
        cells *= 2
    return out / total


def wood(h: int, w: int, g: np.random.Generator, vertical: bool | None = None) -> np.ndarray:
    """Wood planks (h, w, 3): boards of slightly different tones with wavy grain."""
    vertical = bool(g.random() < 0.5) if vertical is None else vertical
    n, m = (w, h) if vertical else (h, w)  # n across the boards, m along them
    base = np.array([0.55, 0.38, 0.22]) * g.uniform(0.5, 1.5) + g.normal(0, 0.04, 3)
    board = g.uniform(0.08, 0.3) * n
    across = np.arange(n, dtype=np.float32)[:, None]
    along = np.arange(m, dtype=np.float32)[None, :]
    idx = (across // board).astype(int)
    tone = 1 + g.normal(0, 0.08, int(idx.max()) + 2)[idx]  # (n, 1)
    warp = 3 * np.sin(along / g.uniform(8, 30) + g.uniform(0, 6)) + 2 * _value_noise(max(n, m), 6, g)[:n, :m]
    grain = 0.5 + 0.5 * np.sin((across + warp) * g.uniform(0.6, 1.6))
    seam = (np.abs(across % board) < 1).astype(np.float32)
    v = tone * (0.88 + 0.12 * grain) * (1 - 0.35 * seam)  # (n, m)
    if vertical:
        v = v.T
    return np.clip(v[..., None] * base, 0, 1).astype(np.float32)


def _floor(h: int, w: int, g: np.random.Generator) -> np.ndarray:
    kind = g.random()
    if kind < 0.45:
        return wood(h, w, g, vertical=True)
    c0, c1 = g.random(3) * 0.8 + 0.1, g.random(3) * 0.8 + 0.1
    if kind < 0.7:  # tiles
        period = g.uniform(8, 30)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        checker = ((xx // period + yy // (period * 0.6)) % 2)[..., None]
        grout = ((xx % period < 1) | (yy % (period * 0.6) < 1))[..., None]
        img = c0 * (1 - checker * g.uniform(0, 0.4)) * (1 - 0.4 * grout)
        return np.clip(img, 0, 1).astype(np.float32)
    n = fractal_noise(max(h, w), g)[:h, :w, None]  # carpet
    return np.clip(c0 * (0.75 + 0.5 * n) + g.normal(0, 0.03, (h, w, 3)), 0, 1).astype(np.float32)


def photo_background(size: int, g: np.random.Generator, box: tuple[int, int, int, int] | None = None
                     ) -> tuple[str, np.ndarray]:
    """A background (kind, (S, S, 3) float32 in [0, 1]) of a kind drawn with PHOTO_BACKGROUND_P. In a room,
    the line where wall meets floor runs behind the object's ``box`` (top, bottom, left, right), above its
    bottom, so that the object stands on the floor."""
    from gan_core.data.render_scene import background

    kind = str(g.choice(PHOTO_BACKGROUNDS, p=PHOTO_BACKGROUND_P))
    if kind == "room":
        lo, hi = (0.3, 0.85) if box is None else (
            (box[0] + 0.1 * (box[1] - box[0])) / size, (box[1] - 0.15 * (box[1] - box[0])) / size)
        horizon = int(size * np.clip(g.uniform(lo, max(lo, hi)), 0.1, 0.9))
        wall_c = np.clip(np.array(colorsys.hsv_to_rgb(g.random(), g.uniform(0, 0.35), g.uniform(0.55, 0.98))), 0, 1)
        shade = np.linspace(g.uniform(0.75, 1.1), g.uniform(0.75, 1.1), size, dtype=np.float32)[None, :, None]
        wall = wall_c * shade * (0.93 + 0.07 * fractal_noise(size, g)[..., None])
        img = np.array(wall, np.float32)
        img[horizon:] = _floor(size - horizon, size, g) * g.uniform(0.7, 1.05)
        if g.random() < 0.6:  # a skirting board
            t = max(1, int(size * g.uniform(0.01, 0.04)))
            img[max(0, horizon - t):horizon] = g.uniform(0.3, 1.0) * np.ones(3)
        out = img
    elif kind == "wood":
        out = wood(size, size, g)
    elif kind == "fractal":
        c0, c1 = muted(g.random(3), g), muted(g.random(3), g)
        t = fractal_noise(size, g, octaves=int(g.integers(3, 6)))[..., None]
        out = c0 * (1 - t) + c1 * t
    else:
        out = muted(background(kind, size, g), g, 0.05)
    return kind, np.clip(out, 0, 1).astype(np.float32)


def add_patches(img: np.ndarray, g: np.random.Generator) -> None:
    """0-3 coloured rectangles or ellipses (frames, cushions, lamps, boxes) painted in place."""
    s = img.shape[0]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    for _ in range(int(g.integers(0, 4))):
        cy, cx = g.uniform(0, s, 2)
        ry, rx = g.uniform(0.04, 0.25, 2) * s
        if g.random() < 0.5:
            m = (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx)
        else:
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        c = muted(g.random(3), g, 0.1)
        shade = 1 - g.uniform(0, 0.3) * (yy[m] - cy + ry) / (2 * ry)
        img[m] = np.clip(c * shade[:, None], 0, 1)


def paste_sprite(img: np.ndarray, sprite: np.ndarray, g: np.random.Generator, max_fill: float = 0.5) -> None:
    """Paste an RGBA sprite (h, w, 4) float, recoloured and scaled, somewhere on img (S, S, 3), in place."""
    s = img.shape[0]
    h, w = sprite.shape[:2]
    scale = g.uniform(0.2, max_fill) * s / max(h, w)  # smaller than the object (60-100%)
    oh, ow = max(2, int(h * scale)), max(2, int(w * scale))
    sp = resize(sprite, oh, ow)
    rgb, a = sp[..., :3], np.clip(sp[..., 3:4], 0, 1)
    grey = rgb.mean(axis=2, keepdims=True)
    tint = g.random(3) * 0.8 + 0.2
    mix = g.uniform(0, 1)
    rgb = np.clip((1 - mix) * rgb + mix * grey * tint * 1.5, 0, 1) * g.uniform(0.5, 1.0)
    top, left = int(g.integers(-oh // 3, s - 2 * oh // 3)), int(g.integers(-ow // 3, s - 2 * ow // 3))
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + oh, s), min(left + ow, s)
    if y1 <= y0 or x1 <= x0:
        return
    sl = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a[sl]) + rgb[sl] * a[sl]


def add_shadow(img: np.ndarray, box: tuple[int, int, int, int], g: np.random.Generator) -> None:
    """A soft contact shadow: a blurred dark ellipse under the object's box, in place."""
    s = img.shape[0]
    t, b, l, r = box
    cy, cx = b - 0.03 * (b - t), (l + r) / 2
    ry, rx = max(2.0, (b - t) * g.uniform(0.05, 0.15)), max(2.0, (r - l) * g.uniform(0.45, 0.7))
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    dark = g.uniform(0.2, 0.55) * np.exp(-d * 1.5)
    img *= (1 - dark)[..., None]


def add_occluder(img: np.ndarray, box: tuple[int, int, int, int], g: np.random.Generator) -> float:
    """Something in front of the object: a box face, a plank or a pole from an edge of the frame, covering at
    most about a third of the object's box. Painted in place; returns the covered share of the box."""
    s = img.shape[0]
    t, b, l, r = box
    bh, bw = b - t, r - l
    kind = g.random()
    if kind < 0.4:  # a box face rising from the bottom edge
        ow, oh = g.uniform(0.25, 0.6) * bw, g.uniform(0.15, 0.35) * bh
        x0 = g.uniform(l - ow / 2, r - ow / 2)
        x1, y0, y1 = x0 + ow, b - oh, float(s)
    elif kind < 0.75:  # a plank from the left or right edge
        oh, ow = g.uniform(0.06, 0.18) * bh, g.uniform(0.3, 0.7) * bw
        y0 = g.uniform(t, b - oh)
        y1 = y0 + oh
        x0, x1 = (0.0, l + ow) if g.random() < 0.5 else (r - ow, float(s))
    else:  # a pole from top to bottom
        ow = g.uniform(0.06, 0.15) * bw
        x0 = g.uniform(l, r - ow)
        x1, y0, y1 = x0 + ow, 0.0, float(s)
    y0, y1, x0, x1 = (int(np.clip(round(v), 0, s)) for v in (y0, y1, x0, x1))
    if y1 <= y0 or x1 <= x0:
        return 0.0
    c = muted(g.random(3) * 0.9 + 0.05, g)
    if g.random() < 0.4:
        patch = wood(y1 - y0, x1 - x0, g) * g.uniform(0.6, 1.1)
    else:
        ramp = np.linspace(g.uniform(0.7, 1.1), g.uniform(0.7, 1.1), x1 - x0, dtype=np.float32)[None, :, None]
        patch = c * ramp * np.ones((y1 - y0, 1, 1), np.float32)
    img[y0:y1, x0:x1] = np.clip(patch, 0, 1)
    it, ib, il, ir = max(y0, t), min(y1, b), max(x0, l), min(x1, r)
    return max(0, ib - it) * max(0, ir - il) / max(1, bh * bw)


# -- finish ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finish:
    """The camera's part: colour jitter, sensor noise, blur and JPEG compression."""

    gains: tuple[float, float, float]  # white balance, per channel
    brightness: float  # added
    contrast: float  # about the mean
    saturation: float  # 0: grey, 1: as is
    gamma: float
    vignette: float  # darkening of the corners (0: none)
    noise: float  # sensor noise std
    blur: float  # Gaussian radius in pixels (0: none)
    jpeg_quality: int

    @classmethod
    def identity(cls, jpeg_quality: int) -> Finish:
        """No jitter, noise or blur: the JPEG round trip only."""
        return cls((1.0, 1.0, 1.0), 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, int(jpeg_quality))


def draw_finish(g: np.random.Generator) -> Finish:
    gains = tuple(float(v) for v in np.exp(g.normal(0, 0.07, 3)))
    blur = float(g.uniform(0.3, 1.6)) if g.random() < 0.5 else 0.0
    return Finish(gains, float(g.uniform(-0.08, 0.08)), float(g.uniform(0.75, 1.25)), float(g.uniform(0.6, 1.3)),
                  float(np.exp(g.normal(0, 0.15))), float(g.uniform(0, 0.35)) if g.random() < 0.4 else 0.0,
                  float(g.uniform(0, 0.025)), blur,
                  int(g.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))


def jpeg_round_trip(u8: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 encoded as a JPEG at ``quality`` and decoded again."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), np.uint8)


def apply_finish(img: np.ndarray, f: Finish, g: np.random.Generator) -> np.ndarray:
    """Colour jitter, noise, blur and a JPEG round trip of a float image (S, S, 3) in [0, 1]: uint8 (S, S, 3)."""
    from PIL import Image, ImageFilter

    x = img * np.asarray(f.gains, np.float32) + f.brightness
    mean = x.mean()
    x = (x - mean) * f.contrast + mean
    grey = x.mean(axis=2, keepdims=True)
    x = np.clip(grey + (x - grey) * f.saturation, 0, 1) ** f.gamma
    if f.vignette > 0:
        s = x.shape[0]
        r2 = ((np.arange(s, dtype=np.float32) - (s - 1) / 2) / (s / 2)) ** 2
        x = x * (1 - f.vignette * 0.5 * (r2[:, None] + r2[None, :]))[..., None]
    if f.noise > 0:
        x = x + g.normal(0, f.noise, x.shape).astype(np.float32)
    u8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    if f.blur > 0:
        u8 = np.asarray(Image.fromarray(u8).filter(ImageFilter.GaussianBlur(f.blur)), np.uint8)
    return jpeg_round_trip(u8, f.jpeg_quality)
