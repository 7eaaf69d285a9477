"""Fault injection helpers for the reliability tests and benchmarks/reliability_report.py.

* :func:`file_size_limit`: a real write failure. RLIMIT_FSIZE makes every write past ``nbytes`` fail with
  EFBIG inside the C/C++ writers themselves (torch's zip writer, HDF5, VTK, numpy), the same code path as a
  full disk (ENOSPC), which cannot be made without mounting a small file system.
* :func:`enospc`: the simulated full disk: a function that raises ``OSError(ENOSPC)``.
* :func:`read_only_dir`: a directory this process cannot write to. Tests run as root, where chmod 0o500
  does not stop writes; then /sys/fs or /proc/self (kernel file systems that refuse new files) stand in.
* :func:`stray_temps`: files :func:`gan_core.io_utils.atomic_path` left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
from pathlib import Path
from typing import Iterator

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
