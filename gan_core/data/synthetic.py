"""Procedural voxel shapes (boxes, spheres, cylinders, chairs, tables) for tests and demos, no downloads.

Every shape is described in unit-cube coordinates: a point ``p`` in [0, 1]^3 maps to voxel
``floor(p * R)``, and voxel ``i`` has its centre at ``(i + 0.5) / R``. Axis 2 is up, as in the ModelNet
data: a chair's seat is a slab in axes 0/1 and its legs run down along axis 2 towards index 0. Parts that
would be thinner than a voxel still get one voxel, so a 16^3 chair keeps its legs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from gan_core.errors import BadInputError
from gan_core.data.dataset import save_voxel_npz

__all__ = ["CLASSES", "box", "chair", "cylinder", "make_synthetic_dataset", "save_npz", "sphere", "table"]

CLASSES = ["box", "sphere", "cylinder", "chair", "table"]

Vec3 = Sequence[float]
RngLike = np.random.Generator | int | None


def _empty(resolution: int) -> np.ndarray:
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise BadInputError(f"resolution must be an integer >= 2, got {resolution!r}")
    return np.zeros((resolution,) * 3, dtype=np.uint8)


def _centres(resolution: int) -> np.ndarray:
    return (np.arange(resolution) + 0.5) / resolution  # (R,) voxel centres in unit coordinates


def _span(lo: float, hi: float, resolution: int) -> slice:
    """Voxels whose centre lies in [lo, hi]; at least the one nearest the middle, so thin parts survive."""
    i0 = int(np.ceil(lo * resolution - 0.5))
    i1 = int(np.floor(hi * resolution - 0.5))
    if i1 < i0:
        i0 = i1 = int(np.floor((lo + hi) / 2 * resolution))
    i0, i1 = max(i0, 0), min(i1, resolution - 1)
    return slice(i0, max(i1 + 1, i0))


def _fill_box(grid: np.ndarray, lo: Vec3, hi: Vec3) -> np.ndarray:
    r = grid.shape[0]
    grid[_span(lo[0], hi[0], r), _span(lo[1], hi[1], r), _span(lo[2], hi[2], r)] = 1
    return grid


def box(resolution: int = 32, *, center: Vec3 = (0.5, 0.5, 0.5), size: Vec3 = (0.6, 0.6, 0.6)) -> np.ndarray:
    """An axis-aligned solid box.

    Parameters
    ----------
    resolution : grid size R.
    center : box centre in unit-cube coordinates.
    size : edge lengths along axes 0, 1, 2 as fractions of the cube.

    Returns
    -------
    ndarray (R, R, R) uint8 in {0, 1}.
    """
    c, s = np.asarray(center, float), np.asarray(size, float) / 2
    return _fill_box(_empty(resolution), c - s, c + s)


def sphere(resolution: int = 32, *, center: Vec3 = (0.5, 0.5, 0.5), radius: float = 0.35) -> np.ndarray:
    """A solid ball: voxels whose centre lies within ``radius`` (a fraction of the cube) of ``center``.

    Returns
    -------
    ndarray (R, R, R) uint8 in {0, 1}.
    """
    grid = _empty(resolution)
    x = _centres(resolution)
    d2 = (x[:, None, None] - center[0]) ** 2 + (x[None, :, None] - center[1]) ** 2 + (x[None, None, :] - center[2]) ** 2
    grid[d2 <= radius**2] = 1
    return grid


def cylinder(
    resolution: int = 32,
    *,
    center: Vec3 = (0.5, 0.5, 0.5),
    radius: float = 0.3,
    height: float = 0.7,
    axis: int = 2,
) -> np.ndarray:
    """A solid cylinder along ``axis`` (2 = upright), of the given radius and height (cube fractions).

    Returns
    -------
    ndarray (R, R, R) uint8 in {0, 1}.
    """
    if axis not in (0, 1, 2):
        raise BadInputError(f"axis must be 0, 1 or 2, got {axis}")
    grid = _empty(resolution)
    x = _centres(resolution)
    a, b = [k for k in range(3) if k != axis]
    disc = (x[:, None] - center[a]) ** 2 + (x[None, :] - center[b]) ** 2 <= radius**2  # (R, R) over axes a, b
    along = np.zeros(resolution, bool)
    along[_span(center[axis] - height / 2, center[axis] + height / 2, resolution)] = True
    solid = disc[:, :, None] & along[None, None, :]  # axes (a, b, axis)
    grid[np.moveaxis(solid, (0, 1, 2), (a, b, axis))] = 1
    return grid


def _rng(rng: RngLike) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _legs(grid: np.ndarray, x0: float, x1: float, y0: float, y1: float, top: float, t: float) -> None:
    """Four legs of thickness t inside the rectangle [x0, x1] x [y0, y1], from the floor up to ``top``."""
    for lx in (x0, x1 - t):
        for ly in (y0, y1 - t):
            _fill_box(grid, (lx, ly, 0.0), (lx + t, ly + t, top))


def chair(resolution: int = 32, *, rng: RngLike = None) -> np.ndarray:
    """A chair: a horizontal seat on four legs with an upright back at the high end of axis 1.

    Parameters
    ----------
    resolution : grid size R.
    rng : None for the canonical proportions; a seed or Generator draws width, depth, seat height, back
        height, part thicknesses and a small horizontal offset at random.

    Returns
    -------
    ndarray (R, R, R) uint8 in {0, 1}; legs start at z index 0 (axis 2 is up).
    """
    grid = _empty(resolution)
    if rng is None:
        w, d, seat_h, seat_t, back_h, leg_t, back_t, dx, dy = 0.6, 0.6, 0.45, 0.08, 0.45, 0.08, 0.08, 0.0, 0.0
    else:
        g = _rng(rng)
        w, d = g.uniform(0.45, 0.8), g.uniform(0.45, 0.8)
        seat_h, seat_t = g.uniform(0.3, 0.5), g.uniform(0.05, 0.1)
        back_h = g.uniform(0.25, 0.95 - seat_h - seat_t)
        leg_t, back_t = g.uniform(0.05, 0.1), g.uniform(0.05, 0.1)
        dx, dy = g.uniform(-1, 1) * (0.9 - w) / 2, g.uniform(-1, 1) * (0.9 - d) / 2
    x0, y0 = 0.5 - w / 2 + dx, 0.5 - d / 2 + dy
    x1, y1 = x0 + w, y0 + d
    _legs(grid, x0, x1, y0, y1, seat_h, leg_t)
    _fill_box(grid, (x0, y0, seat_h), (x1, y1, seat_h + seat_t))
    _fill_box(grid, (x0, y1 - back_t, seat_h + seat_t), (x1, y1, seat_h + seat_t + back_h))
    return grid


def table(resolution: int = 32, *, rng: RngLike = None) -> np.ndarray:
    """A table: a horizontal top on four legs at its corners.

    Parameters
    ----------
    resolution : grid size R.
    rng : None for the canonical proportions; a seed or Generator draws the top's size, height and
        thickness, the leg thickness and inset, and a small horizontal offset.

    Returns
    -------
    ndarray (R, R, R) uint8 in {0, 1}; legs start at z index 0.
    """
    grid = _empty(resolution)
    if rng is None:
        w, d, h, top_t, leg_t, inset, dx, dy = 0.85, 0.6, 0.6, 0.08, 0.08, 0.05, 0.0, 0.0
    else:
        g = _rng(rng)
        w, d = g.uniform(0.6, 0.95), g.uniform(0.4, 0.9)
        h, top_t = g.uniform(0.35, 0.75), g.uniform(0.05, 0.12)
        leg_t, inset = g.uniform(0.05, 0.1), g.uniform(0.0, 0.1)
        dx, dy = g.uniform(-1, 1) * (0.98 - w) / 2, g.uniform(-1, 1) * (0.98 - d) / 2
    x0, y0 = 0.5 - w / 2 + dx, 0.5 - d / 2 + dy
    x1, y1 = x0 + w, y0 + d
    _legs(grid, x0 + inset, x1 - inset, y0 + inset, y1 - inset, h, leg_t)
    _fill_box(grid, (x0, y0, h), (x1, y1, h + top_t))
    return grid


def _random_shape(name: str, resolution: int, g: np.random.Generator) -> np.ndarray:
    if name == "box":
        size = g.uniform(0.25, 0.85, 3)
        return box(resolution, center=0.5 + g.uniform(-1, 1, 3) * (1 - size) / 2, size=size)
    if name == "sphere":
        radius = g.uniform(0.15, 0.45)
        return sphere(resolution, center=0.5 + g.uniform(-1, 1, 3) * (0.5 - radius), radius=radius)
    if name == "cylinder":
        radius, height = g.uniform(0.12, 0.42), g.uniform(0.3, 0.9)
        extent = np.array([radius, radius, height / 2])
        return cylinder(resolution, center=0.5 + g.uniform(-1, 1, 3) * (0.5 - extent), radius=radius, height=height)
    if name == "chair":
        return chair(resolution, rng=g)
    if name == "table":
        return table(resolution, rng=g)
    raise BadInputError(f"unknown synthetic class {name!r}; known: {', '.join(CLASSES)}")


def make_synthetic_dataset(
    n_per_class: int,
    resolution: int = 32,
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A labelled set of randomly sized and placed shapes, grouped by class.

    Parameters
    ----------
    n_per_class : shapes per class (>= 1).
    resolution : grid size R.
    seed : the same seed gives the same set.
    classes : a subset of :data:`CLASSES` (all of them by default), in the order given.

    Returns
    -------
    voxels : ndarray (N, R, R, R) uint8 in {0, 1}, N = n_per_class * len(classes).
    labels : ndarray (N,) int64, indices into ``classes``.
    classes : list of str.

    Examples
    --------
    >>> voxels, labels, classes = make_synthetic_dataset(2, resolution=16)
    >>> voxels.shape, classes[labels[-1]]
    ((10, 16, 16, 16), 'table')
    """
    if n_per_class < 1:
        raise BadInputError(f"n_per_class must be >= 1, got {n_per_class}")
    names = list(classes) if classes else list(CLASSES)
    unknown = [c for c in names if c not in CLASSES]
    if unknown:
        raise BadInputError(f"unknown synthetic class {unknown[0]!r}; known: {', '.join(CLASSES)}")
    g = np.random.default_rng(seed)
    voxels = _empty(resolution)[None].repeat(n_per_class * len(names), axis=0)
    for k, name in enumerate(names):
        for i in range(n_per_class):
            voxels[k * n_per_class + i] = _random_shape(name, resolution, g)
    labels = np.repeat(np.arange(len(names), dtype=np.int64), n_per_class)
    return voxels, labels, names


def save_npz(path: str | Path, voxels: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Path:
    """Write a set in the documented npz layout (``voxels``, ``labels``, ``classes``), atomically."""
    return save_voxel_npz(path, voxels, labels, classes)
