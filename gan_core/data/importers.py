"""Load one voxel grid from any supported file: voxel formats and meshes (voxelised on the fly).

Supported suffixes:

* ``.binvox``: read by :mod:`gan_core.data.binvox` (axis 2 up for z-up models, as in our npz data).
* ``.off`` ``.obj`` ``.stl`` ``.ply``, and the scenes ``.glb`` ``.gltf`` ``.3mf`` (every placed mesh, transforms
  applied; glTF turned from Y-up to Z-up): meshes, read by :mod:`gan_core.data.mesh_readers` and voxelised
  solid by :mod:`gan_core.data.voxelize` (normalised into the grid keeping aspect).
* ``.npy``: one grid (R, R, R), or a stack (N, R, R, R) / (N, 1, R, R, R) with ``index``.
* ``.npz``: array ``voxels``, same shapes; ``.h5``/``.hdf5``: dataset ``voxels``, read lazily.
* ``.mat``: 3DShapeNets style, variable ``instance`` or else the first 3D (or 4D) numeric variable;
  MATLAB v7.3 files are HDF5 and are read with h5py (axes reversed back to MATLAB's order).

Values: bool/integer grids are occupied where > 0, float grids where > 0.5. Every file passes the checks of
:mod:`gan_core.voxel_checks` (grids of MIN_GRID^3 to MAX_GRID^3, numeric, finite), from its header before any
data is read where the format allows; every problem raises BadFileError with a one-line message that names
the file.

Resolution policy (:func:`match_resolution`): sizes that differ by an integer factor use
:func:`gan_core.data.resample.resample` (trilinear up, quarter-filled block vote down, so thin parts
survive); other cubic sizes (3DShapeNets' 30^3, say) are interpolated trilinearly (``scipy.ndimage.zoom``,
grid mode, threshold 0.5) to the next multiple of the target at or above the source size, then block-voted
down the same way.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from gan_core.data.binvox import read_binvox
from gan_core.data.mesh_readers import MESH_SUFFIXES, read_mesh
from gan_core.data.resample import resample
from gan_core.errors import BadFileError, BadInputError, Gan3dError
from gan_core.files import npz_header, open_npz
from gan_core.memory import check_memory
from gan_core.voxel_checks import MAX_GRID, MIN_GRID, binarize_voxels, check_h5_voxels, check_voxel_layout

__all__ = [
    "GRID_SUFFIXES", "MAX_GRID", "MESH_SUFFIXES", "MIN_GRID", "SET_SUFFIXES", "SUPPORTED_SUFFIXES", "LoadedSet",
    "find_voxel_files", "load_voxel_set", "load_voxels", "match_resolution", "voxel_array_shape",
]

SET_SUFFIXES = (".npz", ".h5", ".hdf5")
# Array files can claim any size in a few bytes (an HDF5 dataset is all fill value until written, a zip
# member inflates ~1000x), so sizes are checked from the header before any data is read: the grid by
# gan_core.voxel_checks, what a whole read needs by gan_core.memory.
GRID_SUFFIXES = (".binvox", ".npy", ".mat", *SET_SUFFIXES)
SUPPORTED_SUFFIXES = GRID_SUFFIXES + MESH_SUFFIXES
DEFAULT_MESH_RESOLUTION = 32


def load_voxels(
    path: str | Path, resolution: int | None = 32, *, index: int | None = None, binarize: bool = True
) -> np.ndarray:
    """Load one shape as a binary occupancy grid.

    Parameters
    ----------
    path : str or Path
        A file with a supported suffix (see the module docstring).
    resolution : int or None
        Output size R. None keeps a grid file's own size; meshes then use 32.
    index : int, optional
        Which grid of a stacked file (.npy/.npz/.h5/.mat holding N grids) to take; required when N > 1.
    binarize : bool
        False keeps float values of array files (probabilities) as float32 so the caller can pick its own
        threshold; they are binarised anyway when the grid has to be resampled.

    Returns
    -------
    ndarray (R, R, R) uint8 in {0, 1}, axis 2 up (float32 for float array files when ``binarize=False``).

    Raises
    ------
    BadFileError
        Missing file, unknown suffix, unreadable/corrupt/truncated content, wrong shape, non-finite
        values, empty mesh, or a stack without ``index``.
    BadInputError
        A bad ``resolution`` or an ``index`` out of range.

    Examples
    --------
    >>> grid = load_voxels("chair_0001.off", resolution=32)   # doctest: +SKIP
    >>> grid.shape, grid.dtype
    ((32, 32, 32), dtype('uint8'))
    """
    p = Path(path)
    if resolution is not None and (not isinstance(resolution, (int, np.integer))
                                   or not MIN_GRID <= resolution <= MAX_GRID):
        raise BadInputError(f"resolution must be an integer in {MIN_GRID}..{MAX_GRID}, got {resolution!r}")
    suffix = _check_path(p)
    if suffix in MESH_SUFFIXES:
        verts, faces = read_mesh(p)
        from gan_core.data.voxelize import voxelize_mesh

        try:
            return voxelize_mesh(verts, faces, resolution or DEFAULT_MESH_RESOLUTION)
        except BadInputError as e:  # degenerate geometry is a property of the file
            raise BadFileError(f"{p}: {e}") from None
    if suffix == ".binvox":
        grid = read_binvox(p)
        check_voxel_layout(grid.shape, grid.dtype, p, stack=False)
        if index not in (None, 0):
            raise BadInputError(f"index {index} out of range: {p.name} holds a single grid")
    else:
        grid = _read_array_file(p, suffix, index, binarize)
    if resolution and grid.shape[0] != resolution:
        return match_resolution(binarize_voxels(grid, p), resolution)
    return grid


def _check_path(p: Path) -> str:
    if not p.exists():
        raise BadFileError(f"{p}: no such file")
    if not p.is_file():
        raise BadFileError(f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(no suffix)"
        raise BadFileError(f"{p}: unknown format {shown!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    return suffix


def _read_array_file(p: Path, suffix: str, index: int | None, binarize: bool) -> np.ndarray:
    """npy/npz/h5/mat: open lazily where the format allows, pick one grid, validate, binarise."""
    with open(p, "rb") as f:
        magic = f.read(8)
    expected = {".npy": b"\x93NUMPY", ".npz": b"PK", ".h5": b"\x89HDF", ".hdf5": b"\x89HDF"}.get(suffix)
    if expected and not magic.startswith(expected) and not (expected == b"\x89HDF" and _is_hdf5(p)):
        raise BadFileError(f"{p}: not a valid {_KIND[suffix]} file (wrong magic bytes; corrupt or misnamed?)")
    try:
        if suffix == ".npy":
            grid = _select(np.load(p, mmap_mode="r", allow_pickle=False), p, index)
        elif suffix == ".npz":
            with open_npz(p) as f:
                if "voxels" not in f.files:
                    raise BadFileError(f"{p}: npz has no 'voxels' array (has: {', '.join(f.files) or 'nothing'})")
                check_voxel_layout(*npz_header(f.zip, "voxels.npy"), p, stack=False)  # before it inflates
                grid = _select(f["voxels"], p, index)
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(p, "r") as h5:
                if "voxels" not in h5 or not isinstance(h5["voxels"], h5py.Dataset):
                    raise BadFileError(f"{p}: HDF5 file has no 'voxels' dataset")
                check_h5_voxels(h5["voxels"], p, stack=False)
                grid = _select(h5["voxels"], p, index)
        else:
            grid = _select(_read_mat(p), p, index)
        return binarize_voxels(grid, p, binarize=binarize)
    except Gan3dError:
        raise
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError, ValueError (pickle, header), KeyError ...
        raise BadFileError(f"{p}: not a readable {_KIND[suffix]} file ({type(e).__name__}: {_short(e)})") from None


_KIND = {".npy": "npy", ".npz": "npz", ".h5": "HDF5", ".hdf5": "HDF5", ".mat": "MATLAB"}


def _is_hdf5(p: Path) -> bool:
    """HDF5 files may start with a user block (MATLAB v7.3 uses 512 bytes); h5py knows where to look."""
    import h5py

    try:
        return bool(h5py.is_hdf5(p))
    except OSError:
        return False


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:160] if str(e) else "no details"


def _read_mat(p: Path) -> np.ndarray:
    import h5py
    import scipy.io

    if h5py.is_hdf5(p):  # MATLAB v7.3 files are HDF5 (with a 512-byte MATLAB header block)
        return _read_mat73(p)
    from gan_core.data.mat5 import check_mat5

    check_mat5(p)  # scipy's compiled reader can crash the process on a damaged file
    mat = scipy.io.loadmat(p)
    arrays = {k: v for k, v in mat.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    return _pick_mat_array(arrays, p)


def _read_mat73(p: Path) -> np.ndarray:
    import h5py

    with h5py.File(p, "r") as h5:
        arrays = {k: v for k, v in h5.items() if isinstance(v, h5py.Dataset)}
        ds = _pick_mat_array(arrays, p)
        check_h5_voxels(ds, p, stack=False, matlab=True)
        check_memory(math.prod(ds.shape) * ds.dtype.itemsize, f"{p}: array {tuple(ds.shape[::-1])}",  # read whole
                     hint="save fewer grids per file", error=BadFileError)
        # MATLAB writes column-major, so h5py sees the axes reversed: transpose back.
        return np.asarray(ds[()]).T


def _pick_mat_array(arrays: dict, p: Path):  # type: ignore[no-untyped-def]
    """'instance', else the first 3D (then 4D) numeric array; checked by the caller before it is read (strings
    and objects live in HDF5's global heap, whose damage can hang HDF5)."""
    if "instance" in arrays:
        return arrays["instance"]
    for ndim in (3, 4):
        for v in arrays.values():
            if len(v.shape) == ndim and v.dtype.kind in "biuf":
                return v
    raise BadFileError(f"{p}: .mat file has no 'instance' variable and no 3D numeric array "
                       f"(variables: {', '.join(arrays) or 'none'})")


def _select(arr, p: Path, index: int | None):  # type: ignore[no-untyped-def]
    """One (R, R, R) grid out of a 3D grid, an (N, R, R, R) stack or an (N, 1, R, R, R) batch."""
    shape = check_voxel_layout(arr.shape, arr.dtype, p, stack=False)
    if isinstance(arr, np.ndarray) and arr.ndim == 5:
        arr = arr.reshape(shape)
    if len(shape) == 4 and shape[0] == 0:
        raise BadFileError(f"{p}: holds no grids (shape {shape})")
    if len(shape) == 3:
        if index not in (None, 0):
            raise BadInputError(f"index {index} out of range: {p.name} holds a single grid")
        return arr[()]
    n = shape[0]
    if index is None:
        if n != 1:
            raise BadFileError(f"{p}: holds {n} grids; give an index (--index) to pick one")
        index = 0
    if not -n <= index < n:
        raise BadInputError(f"index {index} out of range: {p.name} holds {n} grids")
    out = arr[index]
    return out.reshape(shape[1:]) if out.ndim == 4 else out  # h5py (N, 1, R, R, R) rows


def match_resolution(grid: np.ndarray, resolution: int) -> np.ndarray:
    """Resample a binary cubic grid (R, R, R) to (r, r, r), r = ``resolution``, for any R (policy above)."""
    r_in = grid.shape[0]
    if r_in == resolution:
        return grid
    if r_in % resolution == 0 or resolution % r_in == 0:
        return resample(grid, resolution)
    from scipy import ndimage

    big = resolution * max(1, math.ceil(r_in / resolution))
    zoomed = ndimage.zoom(grid.astype(np.float32), big / r_in, order=1, mode="grid-constant", grid_mode=True)
    up = (zoomed > 0.5).astype(np.uint8)
    return up if big == resolution else resample(up, resolution)


def voxel_array_shape(path: str | Path) -> tuple[int, ...]:
    """Shape of the ``voxels`` array of an .npz/.h5 file (or the array of an .npy), without loading it."""
    p = Path(path)
    suffix = _check_path(p)
    try:
        if suffix == ".npy":
            return tuple(np.load(p, mmap_mode="r", allow_pickle=False).shape)
        if suffix == ".npz":
            with zipfile.ZipFile(p) as z:
                return npz_header(z, "voxels.npy")[0]
        if suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(p, "r") as h5:
                return tuple(h5["voxels"].shape)
    except Exception as e:
        raise BadFileError(f"{p}: cannot read a 'voxels' array ({type(e).__name__}: {_short(e)})") from None
    raise BadFileError(f"{p}: {suffix} is not a voxel array format (use .npy, .npz or .h5)")


def find_voxel_files(inputs: Iterable[str | Path], suffixes: Sequence[str] = SUPPORTED_SUFFIXES) -> list[Path]:
    """Expand files and directories (searched recursively, hidden files skipped) into supported files.

    Explicit files are kept even with an unsupported suffix, so that loading them reports the problem;
    missing inputs raise BadFileError. Order: inputs in order, each directory's files sorted; no
    duplicates.
    """
    out: dict[Path, None] = {}
    wanted = {s.lower() for s in suffixes}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = (
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in wanted
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            out.update(dict.fromkeys(sorted(found)))
        elif p.exists():
            out[p] = None
        else:
            raise BadFileError(f"{p}: no such file or directory")
    return list(out)


class LoadedSet(NamedTuple):
    """What :func:`load_voxel_set` returns: the grids that loaded, their paths, and the failures."""

    voxels: np.ndarray  # (N, R, R, R) uint8
    paths: list[Path]  # (N,) source of each grid
    errors: list[tuple[Path, str]]  # files that failed, with the one-line reason


def load_voxel_set(
    paths: Iterable[str | Path], resolution: int = 32, *, skip_errors: bool = False
) -> LoadedSet:
    """Load many single-shape files (see :func:`load_voxels`) into one stack.

    Parameters
    ----------
    paths : files or directories (searched recursively, see :func:`find_voxel_files`).
    resolution : grid size R of every output grid.
    skip_errors : collect BadFileErrors in ``errors`` and go on, instead of raising the first one.

    Returns
    -------
    LoadedSet
        ``voxels`` (N, R, R, R) uint8, ``paths`` of the N loaded files, ``errors`` [(path, message)].
    """
    grids, ok, errors = [], [], []
    for p in find_voxel_files(paths):
        try:
            grids.append(load_voxels(p, resolution))
            ok.append(p)
        except BadFileError as e:
            if not skip_errors:
                raise
            errors.append((p, str(e)))
    voxels = np.stack(grids) if grids else np.zeros((0, resolution, resolution, resolution), np.uint8)
    return LoadedSet(voxels, ok, errors)
