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
    assert "too large" in text or "GiB" in text or "not a readable" in text or "damaged" in text


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


# -- declared sizes are checked before memory is taken (issue 27, group 2) -----------------------------------
def npz_bomb(path: Path, member: str, shape: tuple[int, ...], dtype: str = "|u1", **others: np.ndarray) -> Path:
    """A real zip bomb: ``member`` holds ``shape`` zeros, deflated ~1000:1 (written 1 MiB at a time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in others.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, v)
            z.writestr(f"{k}.npy", buf.getvalue())
        with z.open(f"{member}.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
            left = int(np.prod(shape)) * np.dtype(dtype).itemsize
            while left > 0:
                f.write(bytes(min(left, 1 << 20)))
                left -= 1 << 20
    return path


def _tagged():
    from gan_core.cache import load_tagged_npz

    return lambda p: load_tagged_npz(p, "x", 1)


def _z():
    from gan_core.commands.interpolate import resolve_z
    from gan_core.runtime import load_model

    model = load_model(profile="tiny16", device="cpu", precision="fp32")
    return lambda p: resolve_z(f"{p}:0", model, "--a")


def _set():
    from gan_core.data import VoxelDataset

    return VoxelDataset


BOMBS = {  # (member, shape, dtype, other members, the reader (made before memory is traced))
    "load_voxels": ("voxels", (1024, 64, 64, 64), "|u1", {}, lambda: lambda p: load_voxels(p, 16, index=0)),
    "VoxelDataset voxels": ("voxels", (1024, 64, 64, 64), "|u1", {}, _set),
    "VoxelDataset labels": ("labels", (2**25,), "<i8", {"voxels": np.zeros((2, 16, 16, 16), np.uint8)}, _set),
    "z file": ("z", (2**21, 32), "<f4", {}, _z),
    "tagged npz": ("_meta", (2**28,), "|u1", {}, _tagged),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_an_npz_bomb_is_refused_before_it_inflates(tmp_path, monkeypatch, name):
    """A 260 kB npz that inflates to 256 MiB, under a 64 MiB limit: refused from the zip directory in one line
    that says the limit and how to go past it, with (nearly) nothing allocated. Before, every reader
    inflated it whole first (the issue's bombs pushed the process past 4 GB)."""
    import tracemalloc

    member, shape, dtype, others, reader = BOMBS[name]
    path, read = npz_bomb(tmp_path / "bomb.npz", member, shape, dtype, **others), reader()
    assert path.stat().st_size < 1 << 20
    monkeypatch.setenv("GAN3D_MEMORY_LIMIT_GB", "0.0625")
    tracemalloc.start()
    try:
        with pytest.raises(BadFileError) as info:
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(info.value)
    assert text.startswith(f"{path}: reading its arrays (a ") and "\n" not in text
    assert "needs 256.0 MiB of memory, more than the 64.0 MiB allowed (GAN3D_MEMORY_LIMIT_GB=0.0625)" in text
    assert text.endswith("or set GAN3D_MEMORY_LIMIT_GB to allow more")
    assert peak < 32 << 20, f"{peak >> 20} MiB allocated: the bomb was inflated"


def test_an_npz_member_declaring_more_than_it_holds_is_damaged(tmp_path):
    from gan_core.data.dataset import VoxelDataset

    npz_header(tmp_path / "set.npz", (2, 16, 16, 16))  # a 'voxels' header with 64 bytes of data
    with pytest.raises(BadFileError, match=r"'voxels' declares \(2, 16, 16, 16\) uint8 \(8.0 KiB\) but holds "
                                           r"192 B; the file is damaged"):
        VoxelDataset(tmp_path / "set.npz")


def test_a_compressed_mat_variable_is_checked_before_it_inflates(tmp_path, monkeypatch):
    import scipy.io

    scipy.io.savemat(tmp_path / "big.mat", {"instance": np.zeros((160, 160, 160))}, do_compression=True)
    assert (tmp_path / "big.mat").stat().st_size < 1 << 20  # 31 MiB of float64 zeros, deflated
    monkeypatch.setenv("GAN3D_MEMORY_LIMIT_GB", "0.0078125")  # 8 MiB
    with pytest.raises(BadFileError, match=r"big\.mat: its compressed variables needs 31\.3 MiB of memory, "
                                           r"more than the 8\.0 MiB allowed"):
        load_voxels(tmp_path / "big.mat", 32)


def test_a_sample_count_beyond_memory_is_refused_up_front(tmp_path, monkeypatch, capfd):
    """gan3d sample --n 10000000: refused before z or any shape is made, in one stderr line that says what it
    needs, the limit, and both ways past it; nothing is written. Before, an allocator traceback."""
    from gan_core.checkpoint import save_checkpoint
    from gan_core.cli import main
    from gan_core.config import get_profile
    from gan_core.models import Generator

    profile = get_profile("tiny16")
    ckpt = save_checkpoint(tmp_path / "m.pt", profile=profile, models={"generator": Generator(profile)})
    monkeypatch.setenv("GAN3D_MEMORY_LIMIT_GB", "4")
    t0 = time.perf_counter()
    code = main(["sample", "--n", "10000000", "--checkpoint", str(ckpt), "--out", str(tmp_path / "s.npz")])
    err = capfd.readouterr().err
    assert code == 1 and time.perf_counter() - t0 < 10
    assert err == ("BadInputError: --n 10000000 (10000000 shapes of 16^3) needs 268.2 GiB of memory, more than the "
                   "4.0 GiB allowed (GAN3D_MEMORY_LIMIT_GB=4); lower --n (runs with other --seed values give more "
                   "shapes), or set GAN3D_MEMORY_LIMIT_GB to allow more\n"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_the_memory_limit(monkeypatch):
    from gan_core.errors import BadInputError
    from gan_core.memory import check_memory, memory_limit, physical_memory

    monkeypatch.delenv("GAN3D_MEMORY_LIMIT_GB", raising=False)
    ram = physical_memory()
    assert ram is not None and memory_limit()[0] == ram // 2
    check_memory(ram // 2, "half the machine", hint="-")
    with pytest.raises(BadInputError, match=r"^generating 9 shapes needs 9\.0 GiB of memory, more than the 8\.0 GiB "
                                            r"allowed \(GAN3D_MEMORY_LIMIT_GB=8\); ask for fewer, or set"):
        monkeypatch.setenv("GAN3D_MEMORY_LIMIT_GB", "8")
        check_memory(9 << 30, "generating 9 shapes", hint="ask for fewer")
    for bad in ("lots", "-1", "0", "nan", "inf"):
        monkeypatch.setenv("GAN3D_MEMORY_LIMIT_GB", bad)
        with pytest.raises(BadInputError, match="GAN3D_MEMORY_LIMIT_GB must be a positive number of GiB"):
            memory_limit()
