"""Fault injection helpers for the reliability tests and benchmarks/reliability_report.py.

* :func:`file_size_limit`: a real write failure. RLIMIT_FSIZE makes every write past ``nbytes`` fail with
  EFBIG inside the C/C++ writers themselves (torch's zip writer, HDF5, VTK, numpy), the same code path as a
  full disk (ENOSPC), which cannot be made without mounting a small file system.
* :func:`enospc`: the simulated full disk: a function that raises ``OSError(ENOSPC)``; :class:`FillingDisk`
  makes a module's files refuse writes past a byte budget (a disk filling up during a long write).
* :func:`read_only_dir`: a directory this process cannot write to. Tests run as root, where chmod 0o500
  does not stop writes; then /sys/fs or /proc/self (kernel file systems that refuse new files) stand in.
* :func:`stray_temps`: files :func:`gan_core.files.atomic_path` left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

import pytest


@contextlib.contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """Writes past ``nbytes`` (in any file of this process) fail with EFBIG while the block runs."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us on the write
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FillingDisk:
    """``open`` for a module under test whose files fail with ENOSPC once ``budget`` bytes in all have been
    written to them: a disk filling up. Install with ``monkeypatch.setattr(module, "open", disk.open,
    raising=False)``; ``full`` says whether a write was refused."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.full = False

    def open(self, path, mode="r", buffering=-1, **kw):  # type: ignore[no-untyped-def]
        return _FillingFile(open(path, mode, buffering, **kw), self)


class _FillingFile:
    def __init__(self, f, disk: FillingDisk) -> None:  # type: ignore[no-untyped-def]
        self._f, self._disk = f, disk

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        n = len(memoryview(data).cast("B"))
        if n > self._disk.left:
            self._disk.full = True
            enospc()
        self._disk.left -= n
        return self._f.write(data)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._f, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def read_only_dir(tmp_path: Path) -> Path:
    """A directory that refuses new files, whoever runs the tests."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        (d / "probe").write_bytes(b"")
    except OSError:
        return d
    (d / "probe").unlink()  # root: permissions do not apply
    d.chmod(0o700)
    for kernel_dir in (Path("/sys/fs"), Path("/proc/self")):  # sysfs / procfs refuse new files, even to root
        try:
            (kernel_dir / "gan3d-probe").write_bytes(b"")
        except OSError:
            if kernel_dir.is_dir():
                return kernel_dir
    pytest.skip("no read-only directory available (running as root without /sys or /proc)")


def stray_temps(directory: Path) -> list[Path]:
    """Temporary files of atomic_path (``.NAME.HEX.tmpSUFFIX``) anywhere under ``directory``."""
    return sorted(p for p in directory.rglob(".*.tmp*") if p.is_file())


# -- every writer gan_core has ---------------------------------------------------------------------------
def checkpoint(path: Path) -> Path:
    """A tiny16 checkpoint with G and D."""
    from gan_core.checkpoint import save_checkpoint
    from gan_core.config import get_profile
    from gan_core.models import Discriminator, Generator

    p = get_profile("tiny16")
    return save_checkpoint(path, profile=p, models={"generator": Generator(p), "discriminator": Discriminator(p)})


def _mesh():  # type: ignore[no-untyped-def]
    from gan_core.data.synthetic import chair
    from gan_core.mesh import voxels_to_mesh

    return voxels_to_mesh(chair(32))


def writers() -> dict[str, tuple[str, Callable[[Path], object]]]:
    """name -> (file name, writer); "packed" reads ``src.pt`` (a :func:`checkpoint`) beside its target. Each
    writes well over 4 kB."""
    from gan_core.checkpoint import load_checkpoint, pack_checkpoint
    from gan_core.data.binvox import write_binvox
    from gan_core.data.dataset import save_voxel_npz, write_h5_dataset
    from gan_core.mesh import export_mesh, export_voxels

    rng = np.random.default_rng(0)
    noise = (rng.random((8, 16, 16, 16)) > 0.5).astype(np.uint8)  # incompressible
    return {
        "checkpoint": ("latest.pt", checkpoint),
        "packed": ("packed.pt", lambda p: pack_checkpoint(load_checkpoint(p.parent / "src.pt"), p)),
        "npz": ("set.npz", lambda p: save_voxel_npz(p, noise)),
        "h5": ("set.h5", lambda p: write_h5_dataset(p, noise)),
        "binvox": ("grid.binvox", lambda p: write_binvox(p, rng.random((32, 32, 32)) > 0.5)),
        "npy": ("grid.npy", lambda p: export_voxels(rng.random((32, 32, 32)), p)),
        "stl": ("mesh.stl", lambda p: export_mesh(_mesh(), p)),
        "obj": ("mesh.obj", lambda p: export_mesh(_mesh(), p)),
        "ply": ("mesh.ply", lambda p: export_mesh(_mesh(), p)),
        "glb": ("mesh.glb", lambda p: export_mesh(_mesh(), p)),
        "3mf": ("mesh.3mf", lambda p: export_mesh(_mesh(), p)),
        "bank": ("bank.h5", lambda p: _bank().save(p)),
    }


def _bank():  # type: ignore[no-untyped-def]
    from gan_core.features import FeatureBank

    rng = np.random.default_rng(0)
    return FeatureBank(profile="tiny16").fit({"paper": rng.random((40, 384)).astype(np.float32)},
                                             labels=np.zeros(40, np.int64), class_names=["shape"])
