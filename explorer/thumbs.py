"""Cheap shaded pictures of voxel grids, in numpy (no OpenGL): filmstrip frames, bank thumbnails, slot
previews, training samples, and the stand-in viewport when Qt runs without a display.

The picture is an orthographic 3/4 view from the same direction as the 3D viewports (axis 2 up): surface
voxels are splatted into a depth buffer, normals come from the depth buffer's gradient and a key + fill
light shade them. About 2 ms for a 32^3 shape at 96 px on one core.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage, QPixmap
from scipy import ndimage

# Direction from the object towards the camera (x right-ish, -y towards the viewer, z up): a 3/4 view.
VIEW_DIR = np.array([1.0, -1.3, 0.9])
UP = np.array([0.0, 0.0, 1.0])
BASE_COLOR = np.array([0.84, 0.66, 0.46])  # warm clay, as in the 3D views


def _basis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = VIEW_DIR / np.linalg.norm(VIEW_DIR)
    right = np.cross(-c, UP)
    right /= np.linalg.norm(right)
    up = np.cross(right, -c)
    return right, up, c


_RIGHT, _UPV, _TOWARDS = _basis()


def shade_voxels(voxels: np.ndarray, level: float = 0.5, size: int = 96,
                 color: np.ndarray | tuple[float, float, float] = tuple(BASE_COLOR),
                 fit: bool | float = True, colors: np.ndarray | None = None) -> np.ndarray:
    """An RGBA picture (size, size, 4) uint8 of the occupied voxels (> level) of a grid (D, H, W);
    transparent where there is no shape. ``fit`` True zooms onto the shape; False frames the whole grid; a
    number frames a fixed half-width of the projected unit cube (0.88 is all of it), so frames of an
    animation keep one scale. ``colors`` (D, H, W, 3) floats in [0, 1] colour each voxel (a heat map)
    instead of ``color``."""
    occ = np.asarray(voxels) > level
    out = np.zeros((size, size, 4), np.uint8)
    if occ.ndim != 3 or not occ.any():
        return out
    inner = min(size, 5 * max(occ.shape))  # splatting cost grows with (size / R)^2: draw small, then scale
    if inner < size:
        from PIL import Image

        small = shade_voxels(voxels, level, inner, color, fit, colors)
        return np.asarray(Image.fromarray(small, "RGBA").resize((size, size), Image.Resampling.BILINEAR))
    surface = occ & ~ndimage.binary_erosion(occ)
    idx = np.argwhere(surface).astype(np.float32)  # (N, 3)
    r = float(max(occ.shape))
    p = (idx + 0.5) / r - 0.5 * np.asarray(occ.shape, np.float32) / r  # centred, unit cube
    u, v, d = p @ _RIGHT, p @ _UPV, p @ _TOWARDS
    half = 0.88 if isinstance(fit, bool) else float(fit)  # the unit cube's projection fits in [-0.87, 0.87]
    cu = cv = 0.0
    if fit is True:
        cu, cv = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
        half = min(half, max(np.ptp(u), np.ptp(v)) / 2 / 0.85 + 1.0 / r)
    px = (u - cu + half) / (2 * half) * (size - 1)
    py = (half - v + cv) / (2 * half) * (size - 1)
    reach = int(np.ceil((size - 1) / (2 * half * r) * 0.55))  # half a voxel's width in pixels, rounded up
    zbuf = np.full(size * size, -np.inf, np.float32)
    offs = [(dx, dy) for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)]
    pixels = []
    for dx, dy in offs:
        xi = np.clip(np.rint(px + dx).astype(np.int64), 0, size - 1)
        yi = np.clip(np.rint(py + dy).astype(np.int64), 0, size - 1)
        pixels.append(yi * size + xi)
        np.maximum.at(zbuf, pixels[-1], d)
    base = np.broadcast_to(np.asarray(color, np.float32), (size, size, 3))
    if colors is not None:  # each pixel takes the colour of the voxel in front
        vc, cbuf = np.asarray(colors, np.float32)[surface], np.zeros((size * size, 3), np.float32)
        d32 = d.astype(np.float32)  # the depths as zbuf holds them
        for pix in pixels:
            front = d32 >= zbuf[pix]
            cbuf[pix[front]] = vc[front]
        base = cbuf.reshape(size, size, 3)
    zbuf = zbuf.reshape(size, size)
    mask = np.isfinite(zbuf)
    depth = np.where(mask, zbuf, zbuf[mask].min() - 0.05)
    depth = ndimage.gaussian_filter(depth, 0.8)
    gy, gx = np.gradient(depth * (size / (2 * half)))  # depth per pixel -> unitless slope
    n = np.stack([-gx, gy, np.ones_like(gx)], -1)  # in (right, up, towards) coordinates
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    key = np.array([-0.4, 0.6, 0.7])
    key /= np.linalg.norm(key)
    diffuse = np.clip(n @ key, 0, 1)
    fill = np.clip(n @ np.array([0.6, -0.2, 0.77]), 0, 1)
    dn = (depth - depth[mask].min()) / max(1e-6, float(np.ptp(depth[mask])))  # 0 far .. 1 near
    light = 0.28 + 0.62 * diffuse + 0.18 * fill + 0.12 * dn
    rgb = np.clip(base * light[..., None], 0, 1)
    out[..., :3] = (rgb * 255).astype(np.uint8)
    out[..., 3] = np.where(mask, 255, 0)
    return out


def to_qimage(rgba: np.ndarray) -> QImage:
    """A deep-copied QImage of an RGBA (H, W, 4) or RGB (H, W, 3) uint8 array."""
    arr = np.ascontiguousarray(rgba)
    h, w, c = arr.shape
    fmt = QImage.Format.Format_RGBA8888 if c == 4 else QImage.Format.Format_RGB888
    return QImage(arr.data, w, h, w * c, fmt).copy()


def voxel_pixmap(voxels: np.ndarray, level: float = 0.5, size: int = 96, fit: bool | float = True) -> QPixmap:
    return QPixmap.fromImage(to_qimage(shade_voxels(voxels, level, size, fit=fit)))
