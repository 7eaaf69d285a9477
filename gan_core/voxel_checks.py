"""The checks every voxel source passes, in one place: the files :mod:`gan_core.data.importers` reads (npy,
npz, HDF5, MATLAB, binvox), the voxel sets :class:`gan_core.data.VoxelDataset` reads (npz, HDF5), and the
arrays the writers of :mod:`gan_core.data.dataset` are given. One set of rules, so no layout is more trusting
than another.

* :func:`check_voxel_layout`: from a header alone, before any data is read (an npy or npz header, an HDF5
  dataset, a binvox ``dim`` line): the layout, numeric values, and MIN_GRID <= R <= MAX_GRID.
* :func:`check_h5_voxels`: the same for an HDF5 dataset, which may also declare a shape it never wrote.
* :func:`binarize_voxels`: the values as read: NaN and Inf refused, occupancy as uint8 {0, 1}.

Messages are one line and start with the file where there is one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from gan_core.errors import BadFileError, Gan3dError

if TYPE_CHECKING:
    import h5py

__all__ = ["MAX_GRID", "MIN_GRID", "binarize_voxels", "check_h5_voxels", "check_voxel_layout"]

# A grid below 8^3 cannot carry a shape (the smallest profile is 16^3); resampling one up only hides that the
# file is not what its user meant. 512^3 is the largest grid resampled in seconds (1.5 s to 32^3; a
# non-multiple like 500^3 takes ~1 min).
MIN_GRID = 8
MAX_GRID = 512


def _prefix(where: str | Path) -> str:
    return f"{where}: " if str(where) else ""


def check_voxel_layout(shape: Sequence[int], dtype: Any, where: str | Path = "", *, stack: bool = True,
                       error: type[Gan3dError] = BadFileError) -> tuple[int, ...]:
    """Refuse a voxel array by its shape and dtype alone, before its data is read.

    ``stack`` True: a set, (N, R, R, R). False: a file of grids, also one grid (R, R, R) or a generator's
    batch (N, 1, R, R, R). Values must be numeric (bool, int, float) and MIN_GRID <= R <= MAX_GRID. Returns
    the shape, a batch's channel axis dropped. ``where`` (the file) starts the message; ``error`` is
    BadFileError for a file's content, BadInputError for an argument.
    """
    pre = _prefix(where)
    shape = tuple(int(s) for s in shape)
    if not stack and len(shape) == 5 and shape[1] == 1:
        shape = (shape[0], *shape[2:])
    if len(shape) not in ((4,) if stack else (3, 4)) or not shape[-1] == shape[-2] == shape[-3]:
        if stack:
            raise error(f"{pre}'voxels' must be (N, R, R, R), got shape {shape}")
        raise error(f"{pre}expected a cubic grid (R, R, R) or a stack (N, R, R, R), got shape {shape}")
    if np.dtype(dtype).kind not in "biuf":
        raise error(f"{pre}voxel values must be numeric, got dtype {dtype}")
    r = shape[-1]
    if r > MAX_GRID:
        raise error(f"{pre}grids of {r}^3 are too large (at most {MAX_GRID}^3); resample the file first")
    if r < MIN_GRID:
        raise error(f"{pre}grids of {r}^3 are too small to hold a shape (at least {MIN_GRID}^3); "
                    "use a finer voxelisation of the shapes")
    return shape


def check_h5_voxels(ds: "h5py.Dataset", where: str | Path, *, stack: bool = True,
                    matlab: bool = False) -> tuple[int, ...]:
    """:func:`check_voxel_layout` on an HDF5 dataset's header, and refuse one whose data was never (or only
    partly) written: its declared shape cost nothing, and each read of it would be fill value (a ~2 kB file
    declaring 1500^3, or 10^12 shapes). ``matlab``: a v7.3 .mat variable, whose axes h5py sees reversed."""
    shape = check_voxel_layout(ds.shape[::-1] if matlab else ds.shape, ds.dtype, where, stack=stack)
    expected = math.prod(-(-s // c) for s, c in zip(ds.shape, ds.chunks)) if ds.chunks else 1
    stored = ds.id.get_num_chunks() if ds.chunks else int(ds.id.get_storage_size() > 0)
    if ds.size and stored < expected:
        written = "never written" if stored == 0 else f"only {stored} of its {expected} chunks written"
        raise BadFileError(f"{where}: '{ds.name.lstrip('/')}' declares shape {tuple(ds.shape)} but its data was "
                           f"{written} (an unfinished or damaged file)")
    return shape


def binarize_voxels(values: Any, where: str | Path = "", *, binarize: bool = True,
                    error: type[Gan3dError] = BadFileError) -> np.ndarray:
    """Occupancy uint8 {0, 1} of voxel values as read: bool and integers where > 0, floats where > 0.5 (a
    generator's probabilities); NaN or Inf refused. ``binarize`` False keeps floats as float32 (a caller
    picking its own threshold)."""
    g = np.asarray(values)
    if g.dtype.kind not in "biuf":
        raise error(f"{_prefix(where)}voxel values must be numeric, got dtype {g.dtype}")
    if g.dtype.kind == "f":
        if not np.isfinite(g).all():
            raise error(f"{_prefix(where)}voxel values contain NaN or Inf")
        if not binarize:
            return g.astype(np.float32)
    out = np.empty(g.shape, np.uint8)
    np.greater(g, 0.5 if g.dtype.kind == "f" else 0, out=out)  # straight into uint8: no bool copy of a whole set
    return out
