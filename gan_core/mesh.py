"""Voxels to meshes, and mesh/voxel export. The one place that turns a grid into something to look at.

Frame: a grid of size R (the largest dimension) is drawn in normalised coordinates, points scaled by 1/R
and centred, so the whole grid spans [-0.5, 0.5]^3 and voxel i has its centre at (i + 0.5) / R - 0.5.
Pass ``spacing`` to scale differently (``spacing=1`` gives voxel units, still centred). Both
:func:`voxels_to_mesh` and :func:`voxels_to_cubes` use this frame, so the two display modes line up,
and .binvox export records it in its header.

Speed (2-core CPU): marching cubes with the component filter takes about 1.5 ms at 32^3 and 7 ms at
64^3; the PolyData is built straight from the face array, no VTK filters run unless smoothing is asked for.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
from scipy import ndimage

from gan_core.errors import BadFileError, BadInputError, Gan3dError
from gan_core.files import atomic_path

if TYPE_CHECKING:
    import pyvista as pv

__all__ = [
    "MESH_FORMATS", "VOXEL_FORMATS", "export_mesh", "export_voxels", "largest_component", "scaled_to",
    "voxels_to_cubes", "voxels_to_mesh",
]

MESH_FORMATS = (".stl", ".obj", ".ply", ".glb", ".gltf", ".3mf")
_TRIMESH_FORMATS = (".glb", ".gltf", ".3mf")  # written through trimesh
_GLTF_FORMATS = (".glb", ".gltf")  # metres, Y up
VOXEL_FORMATS = (".binvox", ".npy", ".npz")
_FIELD_MAX = 1e30  # marching cubes runs in float32
_TINY = float(np.finfo(np.float32).tiny)
_STRUCTURES = {6: ndimage.generate_binary_structure(3, 1), 18: ndimage.generate_binary_structure(3, 2),
               26: ndimage.generate_binary_structure(3, 3)}


def _check_grid(grid: np.ndarray, level: float) -> np.ndarray:
    g = np.asarray(grid)
    if g.ndim != 3 or 0 in g.shape:
        raise BadInputError(f"expected a 3D voxel grid, got shape {g.shape}")
    if g.dtype.kind not in "biuf":
        raise BadInputError(f"voxel grid must be numeric, got dtype {g.dtype}")
    if g.dtype.kind == "f" and not np.isfinite(g).all():
        raise BadInputError("voxel grid contains NaN or Inf")
    if not (np.isfinite(level) and abs(level) < _FIELD_MAX):
        raise BadInputError(f"level must be a finite number within +-1e30, got {level}")
    return g


def _frame(shape: Sequence[int], spacing: float | Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """(scale (3,), centre (3,)): world = (index - centre) * scale, index in voxel-centre units."""
    scale = np.broadcast_to(np.asarray(1.0 / max(shape) if spacing is None else spacing, np.float64), (3,))
    centre = (np.asarray(shape, np.float64) - 1) / 2
    return scale, centre


def largest_component(grid: np.ndarray, connectivity: int = 26) -> np.ndarray:
    """The largest connected component of a boolean grid.

    Parameters
    ----------
    grid : ndarray (D, H, W) bool
        Occupied voxels (anything nonzero counts).
    connectivity : {6, 18, 26}
        Which neighbours connect: faces (6), faces and edges (18), or also corners (26, the default, so a
        thin diagonal chair leg touching the seat only along an edge stays attached).

    Returns
    -------
    ndarray (D, H, W) bool
        Only the largest component (ties: the one found first); all False for an empty grid.
    """
    occ = np.asarray(grid).astype(bool, copy=False)
    drop = _minor_components(occ, connectivity)
    return occ & ~drop if drop is not None else occ.copy()


def _minor_components(occ: np.ndarray, connectivity: int = 26) -> np.ndarray | None:
    """Voxels outside the largest component, or None when there is at most one component (the usual case)."""
    if connectivity not in _STRUCTURES:
        raise BadInputError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    labels, n = ndimage.label(occ, structure=_STRUCTURES[connectivity])
    if n <= 1:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return (labels != int(sizes.argmax())) & occ


def voxels_to_mesh(
    grid: np.ndarray,
    level: float = 0.5,
    largest_component: bool = True,
    smooth_iterations: int = 0,
    spacing: float | Sequence[float] | None = None,
) -> "pv.PolyData":
    """Triangle surface of a voxel grid by marching cubes (the shape the paper shows).

    Parameters
    ----------
    grid : ndarray (D, H, W)
        Occupancy (uint8/bool) or probabilities (float); occupied means ``> level``.
    level : float
        Iso-level of the surface and threshold of the occupancy.
    largest_component : bool
        Keep only the largest 26-connected component of the thresholded grid, removed before meshing
        so floating specks never reach the surface (as in the paper's figures).
    smooth_iterations : int
        Taubin smoothing passes (pyvista ``smooth_taubin``, shrink-free); 0 keeps the raw surface.
    spacing : float or (3,) floats, optional
        World size of one voxel; default 1 / max(D, H, W), the normalised [-0.5, 0.5]^3 frame.

    Returns
    -------
    pyvista.PolyData
        A closed triangle surface with outward faces and point ``Normals`` (dropped when smoothing); the
        grid is padded by one empty voxel so shapes touching the border are closed too. An empty
        PolyData if nothing exceeds ``level``.

    Examples
    --------
    >>> from gan_core.data.synthetic import sphere
    >>> mesh = voxels_to_mesh(sphere(32))
    >>> mesh.n_cells > 0 and mesh.is_manifold
    True
    """
    import pyvista as pv
    from skimage.measure import marching_cubes

    g = _check_grid(grid, level)
    if smooth_iterations < 0:
        raise BadInputError(f"smooth_iterations must be >= 0, got {smooth_iterations}")
    occ = g > level
    if not occ.any():
        return pv.PolyData()
    # The field holds value - level (marching cubes at 0): the sign decides inside/outside, as in occ, and
    # only relative values shape the surface. 'low' is a value surely outside: 0 in absolute terms for
    # positive levels (empty space), else level - 1.
    low = -level if level > 0 else -1.0
    drop = _minor_components(occ) if largest_component else None
    if drop is not None:
        occ = occ & ~drop
    # March only over the occupied bounding box plus one voxel of real values (which shapes the surface),
    # inside one voxel of padding that closes shapes cut by the grid border: often a third of the work.
    lo = np.array([np.flatnonzero(occ.any(axis=tuple(k for k in range(3) if k != a)))[[0, -1]]
                   for a in range(3)])  # (3, 2) first and last occupied index per axis
    start, stop = np.maximum(lo[:, 0] - 1, 0), np.minimum(lo[:, 1] + 2, g.shape)
    box = tuple(slice(a, b) for a, b in zip(start, stop))
    field = np.full(tuple(stop - start + 2), low, dtype=np.float32)  # np.full + assign beats np.pad
    inner = field[1:-1, 1:-1, 1:-1]
    if g.dtype.itemsize > 4:
        # float64 / int64: values beyond float32's range would become Inf (and warn), and values a hair above
        # the level could round onto it (no surface, though occupied): clip, and keep occupied ones above 0.
        inner[...] = np.clip(g[box].astype(np.float64) - level, -_FIELD_MAX, _FIELD_MAX)
    else:
        np.subtract(g[box], level, out=inner, casting="unsafe")  # one pass, like the plain copy it replaced
    # An occupied voxel must stay above 0 in float32: 0 - (-1e-206) or (0.5 + 1e-9) - 0.5 round onto it.
    np.maximum(inner, _TINY, out=inner, where=occ[box])
    if drop is not None:
        inner[drop[box]] = low
    scale, centre = _frame(g.shape, spacing)
    verts, faces, normals, _ = marching_cubes(field, 0.0)
    points = (verts - (centre + 1 - start).astype(np.float32)) * scale.astype(np.float32)  # voxel index, centred
    if np.ptp(scale) > 0:  # skimage's normals are index-space gradients: map them to anisotropic world space
        normals = normals / scale.astype(np.float32)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    mesh = pv.PolyData.from_regular_faces(points, faces[:, ::-1])  # skimage winds faces inward
    if smooth_iterations:
        mesh = mesh.smooth_taubin(n_iter=int(smooth_iterations), pass_band=0.1)
    else:
        mesh.point_data["Normals"] = normals
        mesh.point_data.active_normals_name = "Normals"
    return mesh


# Corners of the exposed face in each of the six directions, wound counter-clockwise seen from outside.
_FACE_CORNERS = {
    (0, +1): [(1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)],
    (0, -1): [(0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0)],
    (1, +1): [(0, 1, 0), (0, 1, 1), (1, 1, 1), (1, 1, 0)],
    (1, -1): [(0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)],
    (2, +1): [(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)],
    (2, -1): [(0, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 0)],
}


def voxels_to_cubes(
    grid: np.ndarray, level: float = 0.5, spacing: float | Sequence[float] | None = None
) -> "pv.PolyData":
    """The exposed faces of the occupied voxels as quads, for a blocky "voxel" display mode.

    Faces between two occupied voxels are skipped, so a 64^3 shape stays light. Each quad has its own four
    points so flat shading shows crisp cube edges. Same frame as :func:`voxels_to_mesh`.

    Parameters
    ----------
    grid : ndarray (D, H, W); occupied means ``> level``.
    level : threshold.
    spacing : world size of one voxel; default 1 / max(D, H, W).

    Returns
    -------
    pyvista.PolyData
        Quads with outward winding; a single voxel gives 6 faces. Empty PolyData for an empty grid.
    """
    import pyvista as pv

    occ = _check_grid(grid, level) > level
    if not occ.any():
        return pv.PolyData()
    padded = np.pad(occ, 1)
    quads = []
    for (axis, step), corners in _FACE_CORNERS.items():
        neighbour = np.roll(padded, -step, axis=axis)[1:-1, 1:-1, 1:-1]
        idx = np.argwhere(occ & ~neighbour)  # (n, 3) voxels with this face exposed
        quads.append(idx[:, None, :] + np.asarray(corners)[None])  # (n, 4, 3) corner lattice points
    corners_all = np.concatenate(quads).reshape(-1, 3)
    scale, centre = _frame(occ.shape, spacing)
    points = ((corners_all - 0.5 - centre) * scale).astype(np.float32)  # lattice point k sits at k - 0.5
    faces = np.arange(len(points)).reshape(-1, 4)
    return pv.PolyData.from_regular_faces(points, faces)  # type: ignore[arg-type]  # pyvista's stub: dtype[int] only


def export_mesh(mesh: "pv.PolyData", path: str | Path, *, size: float | None = None) -> Path:
    """Write a mesh as .stl (binary), .obj, .ply (binary), .glb, .gltf (one self-contained file, buffers
    embedded) or .3mf, atomically.

    STL, OBJ and PLY carry no unit, 3MF is in millimetres and glTF in metres: without ``size`` the mesh's own
    coordinates are written (for the frame above, the grid is 1 unit wide: 1 mm in a slicer, 1 m in a glTF
    viewer). With ``size`` the mesh is first scaled about the origin so that its longest bounding-box side is
    ``size`` millimetres: ``size`` units in STL / OBJ / PLY / 3MF (slicers and CAD tools read millimetres),
    ``size / 1000`` in glTF. glTF is Y-up by its specification, so the Z-up shape is turned (x, y, z) ->
    (x, z, -y) and stands upright in glTF viewers (the reader turns it back).

    Raises
    ------
    BadInputError
        Unknown suffix (the message lists the formats), an empty mesh, or a size that is not positive.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in MESH_FORMATS:
        shown = suffix or "(no suffix)"
        raise BadInputError(f"{p.name}: unknown mesh format {shown!r}; use {', '.join(MESH_FORMATS)}")
    if mesh.n_cells == 0:
        raise BadInputError(f"{p.name}: the mesh is empty, nothing to export (lower the level?)")
    if size is not None:
        mesh = scaled_to(mesh, size / 1000 if suffix in _GLTF_FORMATS else size)
    with atomic_path(p) as tmp:
        open(tmp, "wb").close()  # an unwritable place fails here, as one clean OSError, not inside VTK
        if suffix in _TRIMESH_FORMATS:
            data = _trimesh_bytes(mesh, suffix)
            with open(tmp, "wb") as f:  # Python's writes raise on a full disk: nothing to read back
                f.write(data)
        else:
            with _quiet_vtk():  # VTK prints multi-line reports of failed writes to stderr; _check_written reports
                mesh.save(tmp)
            _check_written(mesh, tmp, p)
    return p


def _trimesh_bytes(mesh: "pv.PolyData", suffix: str) -> bytes:
    """A .glb / .gltf / .3mf file of a triangle mesh, as bytes, through trimesh (normals kept for glTF)."""
    import trimesh

    from gan_core.data.scene_readers import Y_UP_TO_Z_UP

    tri = mesh if mesh.is_all_triangles else mesh.triangulate()
    verts = np.asarray(tri.points, np.float64)
    normals = tri.point_data.get("Normals") if suffix in _GLTF_FORMATS else None
    if suffix in _GLTF_FORMATS:  # rows: v_gltf = R^T v_ours, so v_gltf_row = v_ours_row @ R
        verts = verts @ Y_UP_TO_Z_UP
        normals = None if normals is None else np.asarray(normals, np.float64) @ Y_UP_TO_Z_UP
    shape = trimesh.Trimesh(vertices=verts, faces=np.asarray(tri.regular_faces, np.int64),
                            vertex_normals=normals, process=False)
    if suffix == ".3mf":
        from trimesh.exchange.threemf import export_3MF

        return export_3MF(shape)
    from trimesh.exchange.gltf import export_glb, export_gltf

    scene = trimesh.Scene(shape)
    if suffix == ".glb":
        return export_glb(scene, include_normals=normals is not None)
    files = export_gltf(scene, include_normals=normals is not None, embed_buffers=True)
    return files["model.gltf"]


def scaled_to(mesh: "pv.PolyData", size: float) -> "pv.PolyData":
    """A copy of ``mesh`` scaled about the origin so that its longest bounding-box side is ``size``."""
    if not (np.isfinite(size) and size > 0):
        raise BadInputError(f"size must be a positive number, got {size}")
    b = np.asarray(mesh.bounds, np.float64).reshape(3, 2)
    longest = float((b[:, 1] - b[:, 0]).max())
    if longest <= 0:
        raise BadInputError("the mesh has no extent to scale")
    out = mesh.copy()
    out.points = np.asarray(mesh.points, np.float64) * (size / longest)
    return out


@contextlib.contextmanager
def _quiet_vtk() -> Iterator[None]:
    """Silence VTK's error output (its logger and output window) for the duration. Process-wide, briefly."""
    import pyvista as pv
    from vtkmodules.vtkCommonCore import vtkObject

    warnings_on = vtkObject.GetGlobalWarningDisplay()
    vtkObject.GlobalWarningDisplayOff()
    verbosity = pv.vtk_verbosity("off") if hasattr(pv, "vtk_verbosity") else contextlib.nullcontext()
    try:
        with verbosity:
            yield
    finally:
        vtkObject.SetGlobalWarningDisplay(warnings_on)


def _check_written(mesh: "pv.PolyData", tmp: Path, target: Path) -> None:
    """VTK's OBJ and PLY writers ignore failed writes (a full disk leaves a short file and no error), so
    read the file back before it replaces the target: our strict readers notice truncation."""
    from gan_core.data.mesh_readers import read_mesh

    n_polys = int(mesh.GetNumberOfPolys())
    if tmp.suffix.lower() == ".obj":  # ASCII: counting face lines is ~50x faster than parsing them
        raw = tmp.read_bytes()
        ok = raw.count(b"\nf ") == n_polys and raw.endswith(b"\n")
    else:
        try:
            ok = len(read_mesh(tmp)[1]) >= n_polys
        except Gan3dError:
            ok = False
    if not ok:
        raise BadFileError(f"{target}: cannot write (the written file is incomplete; is the disk full?)")


def export_voxels(grid: np.ndarray, path: str | Path, level: float = 0.5) -> Path:
    """Write a grid, thresholded at ``level``, as .binvox, .npy (uint8 (R, R, R)) or .npz (a one-shape set).

    Raises
    ------
    BadInputError
        Unknown suffix (the message lists the formats) or a grid that is not 3D (cubic for .binvox).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in VOXEL_FORMATS:
        shown = suffix or "(no suffix)"
        raise BadInputError(f"{p.name}: unknown voxel format {shown!r}; use {', '.join(VOXEL_FORMATS)}")
    occ = (_check_grid(grid, level) > level).astype(np.uint8)
    if suffix == ".binvox":
        from gan_core.data.binvox import write_binvox

        return write_binvox(p, occ)
    if suffix == ".npz":
        from gan_core.data.dataset import save_voxel_npz

        if len(set(occ.shape)) != 1:
            raise BadInputError(f"{p.name}: npz sets hold cubic grids, got shape {occ.shape}")
        return save_voxel_npz(p, occ[None])
    with atomic_path(p) as tmp, open(tmp, "wb") as f:
        np.save(f, occ)
    return p
