"""Huge inputs fail fast: files whose headers claim absurd sizes are refused before any data is read, and a
real 512^3 grid (the largest accepted) is resampled."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from gan_core.data.importers import MAX_GRID, load_voxels
from gan_core.errors import BadFileError


def npy_header(path: Path, shape: tuple[int, ...], descr: str = "|u1", data: bytes = b"\0" * 64) -> Path:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(data)
    return path


def npz_header(path: Path, shape: tuple[int, ...], descr: str = "|u1") -> Path:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    buf.write(b"\0" * 64)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("voxels.npy", buf.getvalue())
    return path


def h5_fill(path: Path, shape: tuple[int, ...], userblock: int = 0) -> Path:
    """A ~2 kB HDF5 file whose 'voxels' dataset claims ``shape``: never written, all fill value."""
    with h5py.File(path, "w", userblock_size=userblock) as h5:
        h5.create_dataset("voxels", shape=shape, dtype="u1", chunks=(1,) * (len(shape) - 3) + (64, 64, 64))
    return path


HUGE = {
    "npy_1e12.npy": lambda p: npy_header(p, (10_000, 10_000, 10_000)),
    "npy_stack.npy": lambda p: npy_header(p, (10**6, 1000, 1000, 1000)),
    "npz_1e12.npz": lambda p: npz_header(p, (10_000, 10_000, 10_000)),
    "npz_600.npz": lambda p: npz_header(p, (1, 600, 600, 600)),
    "npz_many.npz": lambda p: npz_header(p, (100_000, 128, 128, 128)),
    "h5_1500.h5": lambda p: h5_fill(p, (1, 1500, 1500, 1500)),
    "h5_600.h5": lambda p: h5_fill(p, (600, 600, 600)),
    "mat73_1500.mat": lambda p: h5_fill(p, (1500, 1500, 1500), userblock=512),
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_absurd_sizes_fail_fast(tmp_path, name):
    path = HUGE[name](tmp_path / name)
    assert path.stat().st_size < 10_000
    t0 = time.perf_counter()
    with pytest.raises(BadFileError) as info:
        load_voxels(path, 32, index=0 if "stack" in name or "many" in name else None)
    assert time.perf_counter() - t0 < 2.0, "must be refused from the header, before reading data"
    text = str(info.value)
    assert text.startswith(str(path)) and "\n" not in text
    assert "too large" in text or "GiB" in text or "not a readable" in text


def test_a_512_grid_is_resampled(tmp_path):
    """512^3 (128 MB, a sparse file here) is the largest grid accepted; 513^3 is refused."""
    path = tmp_path / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (512,) * 3})
        start = f.tell()
        f.seek(start + 96 * 512 * 512)  # a slab of ones in x = 96..103, zeros elsewhere (C order: x slowest)
        f.write(b"\1" * (8 * 512 * 512))
    os.truncate(path, start + 512**3)
    grid = load_voxels(path, 32)
    assert grid.shape == (32, 32, 32) and grid.dtype == np.uint8
    assert grid[6].all() and grid.sum() == 32 * 32  # half of block 6 (x 96..111) is full: kept
    big = npy_header(tmp_path / "513.npy", (MAX_GRID + 1,) * 3, data=b"")
    os.truncate(big, big.stat().st_size + (MAX_GRID + 1) ** 3)  # sparse: no disk used
    with pytest.raises(BadFileError, match=r"513\^3 are too large \(at most 512\^3\)"):
        load_voxels(tmp_path / "513.npy", 32)


def test_a_stack_without_grids(tmp_path):
    np.save(tmp_path / "none.npy", np.zeros((0, 8, 8, 8), np.uint8))
    with pytest.raises(BadFileError, match=r"holds no grids"):
        load_voxels(tmp_path / "none.npy", 8)
