"""Solid voxelisation of triangle meshes, vectorised numpy, robust to meshes that are not watertight.

The mesh is scaled uniformly so its longest bounding-box side spans the grid and centred on all axes,
keeping its aspect ratio and its axes (a z-up ModelNet mesh gives a grid with axis 2 up).

Method, in voxel units (voxel i spans [i, i + 1]):

1. Rays through the voxel-centre columns along each of the three axes are intersected with every triangle
   (a triangle only tests the columns inside its bounding box, so the work scales with surface area).
2. Surface: the voxel holding each ray hit is filled (this is a 6-separating voxelisation: no 6-connected
   path of empty voxels crosses a closed surface), plus the voxels holding points sampled every half voxel
   along triangle edges, so parts thinner than a voxel (chair legs, sheets) are not lost.
3. Inside, two ways, united: (a) ``scipy.ndimage.binary_fill_holes`` of the surface, i.e. everything not
   reachable from outside, which is exact for closed meshes, for overlapping closed parts and for small
   cracks; (b) a majority vote of the three axes' ray-parity tests at voxel centres, which fills meshes
   with large openings (a box without a lid) that step (a) would leave hollow.

Like binvox, which made the ModelNet grids we train on, surface voxels count as occupied, so solids come
out about half a voxel thicker than the exact shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from gan_core.errors import BadInputError

if TYPE_CHECKING:
    import pyvista as pv

__all__ = ["normalize_vertices", "voxelize_mesh", "voxelize_polydata"]

# Ray columns sit a hair off the voxel centres so that axis-aligned mesh edges and vertices (common at
# exact fractions of the grid) are not hit dead-on, where a hit would count twice or not at all.
_JITTER = (1.37e-4, 2.71e-4)
_CHUNK = 1 << 21  # (triangle, column) candidates per batch: bounds memory for huge triangles


def normalize_vertices(vertices: np.ndarray, resolution: int) -> np.ndarray:
    """Scale and centre vertices (V, 3) so the longest bounding-box side spans [0, resolution]."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    with np.errstate(over="ignore"):
        span = hi - lo
    if not np.isfinite(span).all():  # coordinates near the float limit (1e308): the span overflows; shrink first
        vertices = vertices / float(np.abs([lo, hi]).max())
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        span = hi - lo
    extent = float(span.max())
    if not extent > 0:
        raise BadInputError("degenerate mesh: all vertices coincide")
    return (vertices - (lo + hi) / 2) * (resolution / extent) + resolution / 2


def voxelize_mesh(vertices: np.ndarray, faces: np.ndarray, resolution: int = 32) -> np.ndarray:
    """Voxelise a triangle mesh into a solid occupancy grid.

    Parameters
    ----------
    vertices : ndarray (V, 3) float
        Coordinates in any units; the mesh is normalised into the grid keeping its aspect.
    faces : ndarray (F, 3) int
        Triangles as indices into ``vertices``.
    resolution : int
        Grid size R.

    Returns
    -------
    ndarray (R, R, R) uint8 in {0, 1}, indexed [x, y, z] in the mesh's own axes.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    >>> f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    >>> int(voxelize_mesh(v, f, 8).sum()) > 0
    True
    """
    r = int(resolution)
    if r < 1:
        raise BadInputError(f"resolution must be >= 1, got {resolution}")
    verts = np.asarray(vertices, dtype=np.float64)
    tri_idx = np.asarray(faces, dtype=np.int64)
    if len(tri_idx) == 0:
        raise BadInputError("empty mesh: no faces")
    tris = normalize_vertices(verts, r)[tri_idx]  # (F, 3 corners, 3 coords)
    surface = np.zeros((r, r, r), dtype=bool)
    votes = np.zeros((r, r, r), dtype=np.uint8)
    for axis in range(3):
        _cast_rays(tris, axis, r, surface, votes)
    _mark_edges(tris, r, surface)
    solid = ndimage.binary_fill_holes(surface) | (votes >= 2)
    return solid.astype(np.uint8)


def voxelize_polydata(mesh: "pv.DataSet", resolution: int = 32) -> np.ndarray:
    """:func:`voxelize_mesh` for a pyvista mesh (any cell types; polygons are triangulated)."""
    import pyvista as pv

    if not isinstance(mesh, pv.DataSet):
        raise BadInputError(f"expected a pyvista mesh, got {type(mesh).__name__}")
    surf = mesh if isinstance(mesh, pv.PolyData) else mesh.extract_surface()
    surf = surf.triangulate()
    if surf.faces.size == 0:
        raise BadInputError("empty mesh: no faces")
    return voxelize_mesh(np.asarray(surf.points), surf.regular_faces, resolution)


def _cast_rays(tris: np.ndarray, axis: int, r: int, surface: np.ndarray, votes: np.ndarray) -> None:
    """Intersect rays along ``axis`` through all column centres; fill hit voxels and add parity votes."""
    u, v = [k for k in range(3) if k != axis]
    pu, pv, pt = tris[:, :, u], tris[:, :, v], tris[:, :, axis]  # each (F, 3)
    ju, jv = _JITTER
    i0 = np.clip(np.ceil(pu.min(1) - 0.5 - ju), 0, r - 1).astype(np.int64)
    i1 = np.clip(np.floor(pu.max(1) - 0.5 - ju), -1, r - 1).astype(np.int64)
    j0 = np.clip(np.ceil(pv.min(1) - 0.5 - jv), 0, r - 1).astype(np.int64)
    j1 = np.clip(np.floor(pv.max(1) - 0.5 - jv), -1, r - 1).astype(np.int64)
    ni, nj = np.maximum(i1 - i0 + 1, 0), np.maximum(j1 - j0 + 1, 0)
    counts = ni * nj  # candidate columns per triangle
    hit_cols, hit_t = [], []
    total = int(counts.sum())
    cuts = np.searchsorted(np.cumsum(counts), np.arange(_CHUNK, total, _CHUNK), side="right")
    for sel in np.split(np.arange(len(tris)), np.unique(cuts)):
        c = counts[sel]
        if len(sel) == 0 or c.sum() == 0:
            continue
        t = np.repeat(sel, c)  # triangle of each candidate
        k = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        ci = i0[t] + k // nj[t]
        cj = j0[t] + k % nj[t]
        x, y = ci + 0.5 + ju, cj + 0.5 + jv
        ax, ay = pu[t, 0], pv[t, 0]
        e1x, e1y = pu[t, 1] - ax, pv[t, 1] - ay
        e2x, e2y = pu[t, 2] - ax, pv[t, 2] - ay
        den = e1x * e2y - e2x * e1y  # twice the projected area; 0 for triangles seen edge-on
        ok = np.abs(den) > 1e-12
        den = np.where(ok, den, 1.0)
        dx, dy = x - ax, y - ay
        s = (dx * e2y - e2x * dy) / den
        w = (e1x * dy - dx * e1y) / den
        inside = ok & (s >= 0) & (w >= 0) & (s + w <= 1)
        depth = pt[t, 0] + s * (pt[t, 1] - pt[t, 0]) + w * (pt[t, 2] - pt[t, 0])
        hit_cols.append((ci * r + cj)[inside])
        hit_t.append(depth[inside])
    if not hit_cols:
        return
    cols, depth = np.concatenate(hit_cols), np.concatenate(hit_t)
    # Surface: the voxel containing each hit.
    layer = np.clip(np.floor(depth), 0, r - 1).astype(np.int64)
    surf = np.zeros(r * r * r, dtype=bool)
    surf[cols * r + layer] = True
    # Parity: voxel m is inside when an odd number of hits lies below its centre m + 0.5; a hit at depth d
    # lies below the centres of voxels m >= floor(d - 0.5) + 1.
    first = np.clip(np.floor(depth - 0.5) + 1, 0, r).astype(np.int64)
    hist = np.bincount(cols * (r + 1) + first, minlength=r * r * (r + 1)).reshape(r, r, r + 1)
    parity = (np.cumsum(hist, axis=2)[:, :, :r] & 1).astype(np.uint8)
    order = np.argsort([u, v, axis])  # column-major (u, v, axis) -> grid axes (0, 1, 2)
    surface |= surf.reshape(r, r, r).transpose(order)
    votes += parity.transpose(order)


def _mark_edges(tris: np.ndarray, r: int, surface: np.ndarray) -> None:
    """Fill voxels holding points sampled at most half a voxel apart along every triangle edge."""
    a = tris.reshape(-1, 3)  # corners (3F, 3)
    b = np.roll(tris, -1, axis=1).reshape(-1, 3)
    n = np.ceil(np.linalg.norm(b - a, axis=1) / 0.5).astype(np.int64) + 1  # samples per edge
    e = np.repeat(np.arange(len(a)), n)
    s = (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(np.maximum(n - 1, 1), n)
    pts = a[e] + s[:, None] * (b[e] - a[e])
    idx = np.clip(np.floor(pts), 0, r - 1).astype(np.int64)
    surface[idx[:, 0], idx[:, 1], idx[:, 2]] = True

