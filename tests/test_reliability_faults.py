"""Write faults: a full disk and a read-only directory give one clear BadFileError, keep the previous file
intact and leave no temporary files, for every writer gan_core has."""

from __future__ import annotations

import errno
import gc
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint, pack_checkpoint, save_checkpoint
from gan_core.config import get_profile
from gan_core.data.synthetic import chair
from gan_core.errors import BadFileError
from gan_core.models import Discriminator, Generator
from tests.reliability_faults import enospc, file_size_limit, read_only_dir, stray_temps

P = get_profile("tiny16")


def _ckpt(path: Path) -> Path:
    return save_checkpoint(path, profile=P, models={"generator": Generator(P), "discriminator": Discriminator(P)})


def _mesh():
    from gan_core.mesh import voxels_to_mesh

    return voxels_to_mesh(chair(32))


def _writers() -> dict[str, tuple[str, Callable[[Path], object]]]:
    """name -> (file name, writer). Each writes well over the 4 kB limit used below."""
    from gan_core.data.binvox import write_binvox
    from gan_core.io_utils import save_voxel_npz, write_h5_dataset
    from gan_core.mesh import export_mesh, export_voxels

    rng = np.random.default_rng(0)
    noise = (rng.random((8, 16, 16, 16)) > 0.5).astype(np.uint8)  # incompressible
    return {
        "checkpoint": ("latest.pt", _ckpt),
        "packed": ("packed.pt", lambda p: pack_checkpoint(load_checkpoint(p.parent / "src.pt"), p)),
        "npz": ("set.npz", lambda p: save_voxel_npz(p, noise)),
        "h5": ("set.h5", lambda p: write_h5_dataset(p, noise)),
        "binvox": ("grid.binvox", lambda p: write_binvox(p, rng.random((32, 32, 32)) > 0.5)),
        "npy": ("grid.npy", lambda p: export_voxels(rng.random((32, 32, 32)), p)),
        "stl": ("mesh.stl", lambda p: export_mesh(_mesh(), p)),
        "obj": ("mesh.obj", lambda p: export_mesh(_mesh(), p)),
        "ply": ("mesh.ply", lambda p: export_mesh(_mesh(), p)),
        "bank": ("bank.h5", lambda p: _bank().save(p)),
    }


def _bank():
    from gan_core.features import FeatureBank

    rng = np.random.default_rng(0)
    return FeatureBank(profile="tiny16").fit({"paper": rng.random((40, 384)).astype(np.float32)},
                                             labels=np.zeros(40, np.int64), class_names=["shape"])


WRITERS = sorted(_writers())


def _assert_one_line(e: BaseException, path: Path) -> None:
    text = str(e)
    assert "\n" not in text and str(path) in text, text


@pytest.mark.parametrize("name", WRITERS)
def test_full_disk_keeps_previous_file_and_leaves_no_temp(tmp_path, name):
    """A real failed write (RLIMIT_FSIZE: the writers' own C/C++ code sees the error, as on a full disk).

    HDF5 used to leave the process to crash later (segfault at garbage collection or exit); the gc below
    makes that happen inside the test."""
    fname, write = _writers()[name]
    _ckpt(tmp_path / "src.pt")
    target = tmp_path / fname
    target.write_bytes(b"previous")
    with file_size_limit(4096), pytest.raises(BadFileError) as info:
        write(target)
    _assert_one_line(info.value, target)
    assert target.read_bytes() == b"previous", "the previous file must survive a failed write"
    assert stray_temps(tmp_path) == []
    gc.collect()


def test_checkpoint_on_enospc_from_python(tmp_path, monkeypatch):
    _ckpt(tmp_path / "latest.pt")
    before = (tmp_path / "latest.pt").read_bytes()
    monkeypatch.setattr(torch, "save", enospc)
    with pytest.raises(BadFileError, match="No space left on device"):
        _ckpt(tmp_path / "latest.pt")
    assert (tmp_path / "latest.pt").read_bytes() == before and stray_temps(tmp_path) == []


def test_rename_failure_keeps_previous_file(tmp_path, monkeypatch):
    import os

    _ckpt(tmp_path / "latest.pt")
    before = (tmp_path / "latest.pt").read_bytes()
    monkeypatch.setattr(os, "replace", enospc)
    with pytest.raises(BadFileError, match="No space left"):
        _ckpt(tmp_path / "latest.pt")
    monkeypatch.undo()
    assert (tmp_path / "latest.pt").read_bytes() == before and stray_temps(tmp_path) == []
    assert load_checkpoint(tmp_path / "latest.pt")["profile"] == P


@pytest.mark.parametrize("name", ["checkpoint", "npz", "h5", "stl", "binvox", "bank"])
def test_read_only_directory_is_a_clear_error(tmp_path, name):
    fname, write = _writers()[name]
    d = read_only_dir(tmp_path)
    with pytest.raises(BadFileError, match="cannot (write|create)") as info:
        write(d / fname)
    _assert_one_line(info.value, d / fname)


def test_a_file_in_place_of_the_directory(tmp_path):
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(BadFileError, match="cannot create directory"):
        _ckpt(tmp_path / "blocker" / "run" / "latest.pt")


def test_quota_error_names_the_cause(tmp_path):
    import os

    from gan_core.io_utils import atomic_write

    def quota(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    with pytest.raises(BadFileError, match="quota"):
        atomic_write(tmp_path / "x.bin", quota)
    assert stray_temps(tmp_path) == [] and not (tmp_path / "x.bin").exists()
