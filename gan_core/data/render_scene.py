"""Random scenes for the training renders: view angles, key light, mesh colour and finish, backgrounds.

Everything is drawn from one ``numpy.random.Generator`` per shape (:func:`shape_rng`, seeded by (seed, row)),
in a fixed order, so a shape's images depend on (seed, row) only: the order in which shapes are rendered and
a resumed render cache do not change them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gan_core.errors import BadInputError

ELEVATION_RANGE = (10.0, 40.0)  # degrees above the horizon
SMOOTH_ITERATIONS = 10  # light Taubin smoothing: hides the voxel steps, keeps thin parts
BACKGROUNDS = ("plain", "white", "gradient", "noise", "pattern")
BACKGROUND_P = (0.25, 0.25, 0.15, 0.15, 0.2)


def shape_rng(seed: int, row: int) -> np.random.Generator:
    """The random stream of one shape's views: depends on (seed, row) only, so order and resume don't matter."""
    return np.random.default_rng([int(seed), int(row), 0x3D])


def view_angles(views: int, g: np.random.Generator,
                elevation_range: tuple[float, float] = ELEVATION_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Azimuths spread all round (a random offset plus even steps, jittered) and elevations uniform in
    ``elevation_range`` (the clean style's ELEVATION_RANGE by default): (K,) float64 degrees each."""
    az = (g.uniform(0, 360) + np.arange(views) * 360.0 / views + g.uniform(-0.3, 0.3, views) * 360 / views) % 360
    el = g.uniform(*elevation_range, views)
    return az, el


@dataclass(frozen=True)
class Look:
    """The random part of one image's scene, besides its view direction and background."""

    colour: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float
    specular_power: float
    key_direction: tuple[float, float, float]  # unit vector towards the key light
    key_intensity: float
    fill_intensity: float  # the dim headlight
    view_angle: float  # camera field of view, degrees


def draw_look(g: np.random.Generator) -> Look:
    """Mesh colour and finish, a key light from 15-80 degrees up, and a field of view of 20-40 degrees."""
    colour = tuple(float(c) for c in random_colour(g))
    ambient, diffuse = g.uniform(0.1, 0.3), g.uniform(0.7, 1.0)
    specular, specular_power = g.uniform(0.0, 0.4), g.uniform(5, 40)
    la, le = np.radians(g.uniform(0, 360)), np.radians(g.uniform(15, 80))
    key = (float(np.cos(le) * np.cos(la)), float(np.cos(le) * np.sin(la)), float(np.sin(le)))
    key_intensity, fill_intensity = g.uniform(0.5, 1.2), g.uniform(0.15, 0.5)
    return Look(colour, ambient, diffuse, specular, specular_power, key, key_intensity, fill_intensity,
                view_angle=g.uniform(20, 40))


def random_colour(g: np.random.Generator) -> np.ndarray:
    """A mesh colour (3,) in [0, 1]: greys, woods and saturated colours, as furniture comes."""
    kind = g.random()
    if kind < 0.3:
        return np.full(3, g.uniform(0.25, 0.9))
    if kind < 0.6:  # wood-ish browns and beiges
        base = np.array([0.55, 0.36, 0.2]) * g.uniform(0.6, 1.6)
        return np.clip(base + g.normal(0, 0.05, 3), 0.05, 1)
    import colorsys

    return np.array(colorsys.hsv_to_rgb(g.random(), g.uniform(0.3, 1.0), g.uniform(0.35, 1.0)))


def random_background(size: int, g: np.random.Generator) -> np.ndarray:
    """A background of a kind drawn with BACKGROUND_P: (size, size, 3) float32 in [0, 1]."""
    return background(str(g.choice(BACKGROUNDS, p=BACKGROUND_P)), size, g)


def background(kind: str, size: int, g: np.random.Generator) -> np.ndarray:
    """A background (size, size, 3) float32 in [0, 1] of the given kind."""
    c0, c1 = g.random(3), g.random(3)
    if kind == "white":
        return np.full((size, size, 3), g.uniform(0.92, 1.0), np.float32)
    if kind == "plain":
        return np.broadcast_to(c0, (size, size, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # (S, S) each
    if kind == "gradient":
        a = g.uniform(0, 2 * np.pi)
        t = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5
        t = np.clip(t, 0, 1)[..., None]
        return (c0 * (1 - t) + c1 * t).astype(np.float32)
    if kind == "noise":
        from PIL import Image

        cells = int(g.integers(3, 17))
        low = (g.random((cells, cells, 3)) * 255).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
        return np.clip(smooth * g.uniform(0.4, 1.0) + g.normal(0, 0.04, (size, size, 3)), 0, 1).astype(np.float32)
    if kind == "pattern":  # stripes or checks at a random angle and period, with a little grain
        a, period = g.uniform(0, np.pi), g.uniform(0.04, 0.25)
        u = np.cos(a) * xx + np.sin(a) * yy
        v = -np.sin(a) * xx + np.cos(a) * yy
        wave = np.sin(2 * np.pi * u / period)
        if g.random() < 0.5:
            wave = wave * np.sin(2 * np.pi * v / period)
        t = (wave > 0).astype(np.float32)[..., None]
        img = c0 * (1 - t) + c1 * t + g.normal(0, 0.03, (size, size, 3))
        return np.clip(img, 0, 1).astype(np.float32)
    raise BadInputError(f"unknown background kind {kind!r}; known: {', '.join(BACKGROUNDS)}")
