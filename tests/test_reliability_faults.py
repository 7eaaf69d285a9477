"""Write faults: a full disk and a read-only directory give one clear BadFileError, keep the previous file
intact and leave no temporary files, for every writer gan_core has."""

from __future__ import annotations

import errno
import gc
import os
from pathlib import Path

import pytest
import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.config import get_profile
from gan_core.errors import BadFileError
from tests.reliability_faults import checkpoint, enospc, file_size_limit, read_only_dir, stray_temps, writers

P = get_profile("tiny16")


WRITERS = sorted(writers())


def _assert_one_line(e: BaseException, path: Path) -> None:
    text = str(e)
    assert "\n" not in text and str(path) in text, text


@pytest.mark.parametrize("name", WRITERS)
def test_full_disk_keeps_previous_file_and_leaves_no_temp(tmp_path, name):
    """A real failed write (RLIMIT_FSIZE: the writers' own C/C++ code sees the error, as on a full disk).

    HDF5 used to leave the process to crash later (segfault at garbage collection or exit); the gc below
    makes that happen inside the test."""
    fname, write = writers()[name]
    if name == "packed":
        checkpoint(tmp_path / "src.pt")
    target = tmp_path / fname
    target.write_bytes(b"previous")
    with file_size_limit(4096), pytest.raises(BadFileError) as info:
        write(target)
    _assert_one_line(info.value, target)
    assert target.read_bytes() == b"previous", "the previous file must survive a failed write"
    assert stray_temps(tmp_path) == []
    gc.collect()


@pytest.mark.parametrize("failing", [(torch, "save"), (os, "replace")], ids=["write", "rename"])
def test_checkpoint_on_enospc_from_python_keeps_previous_file(tmp_path, monkeypatch, failing):
    checkpoint(tmp_path / "latest.pt")
    before = (tmp_path / "latest.pt").read_bytes()
    monkeypatch.setattr(*failing, enospc)
    with pytest.raises(BadFileError, match="No space left on device"):
        checkpoint(tmp_path / "latest.pt")
    monkeypatch.undo()
    assert (tmp_path / "latest.pt").read_bytes() == before and stray_temps(tmp_path) == []
    assert load_checkpoint(tmp_path / "latest.pt")["profile"] == P


@pytest.mark.parametrize("name", ["checkpoint", "npz", "h5", "stl", "binvox", "bank"])
def test_read_only_directory_is_a_clear_error(tmp_path, name):
    fname, write = writers()[name]
    d = read_only_dir(tmp_path)
    with pytest.raises(BadFileError, match="cannot (write|create)") as info:
        write(d / fname)
    _assert_one_line(info.value, d / fname)


def test_a_file_in_place_of_the_directory(tmp_path):
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(BadFileError, match="cannot create directory"):
        checkpoint(tmp_path / "blocker" / "run" / "latest.pt")


def test_quota_error_names_the_cause(tmp_path):
    from gan_core.files import atomic_write

    def quota(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    with pytest.raises(BadFileError, match="quota"):
        atomic_write(tmp_path / "x.bin", quota)
    assert stray_temps(tmp_path) == [] and not (tmp_path / "x.bin").exists()
