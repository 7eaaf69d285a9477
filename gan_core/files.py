"""Files written whole or not at all, and files read with their sizes checked first.

Every file gan_core writes goes through :func:`atomic_path`: the data lands in a temporary file next to the
target and is renamed over it only when complete, so a crash or Ctrl-C never leaves a truncated
checkpoint, data set or mesh that a later run would trip over. :func:`open_npz` opens an npz only once what
its members declare has been checked against what they hold and against the memory limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import uuid
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from gan_core.errors import BadFileError
from gan_core.memory import check_memory, format_bytes

__all__ = ["atomic_path", "atomic_write", "file_sha256", "npz_header", "open_npz", "os_reason", "remove_stale_temps"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed.

    The temporary name keeps the target's suffix, so writers that pick a format from the suffix (pyvista,
    ``np.savez``) behave as for the real name. Same directory means ``os.replace`` is an atomic rename.

    Parameters
    ----------
    path : str or Path
        The final file. Missing parent directories are created.

    Examples
    --------
    >>> with atomic_path("out.npy") as tmp:          # doctest: +SKIP
    ...     np.save(tmp, grid)
    """
    target = Path(path)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadFileError(f"{target}: cannot create directory {parent} ({os_reason(e)})") from None
    # Not mkstemp: that creates the file 0600, and the rename would keep those permissions. A random name
    # in the same directory is enough to avoid clashes between concurrent writers.
    tmp = parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp{target.suffix}"
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):  # full disk, no permission, target is a directory: the user's to fix
            raise BadFileError(f"{target}: cannot write ({os_reason(e)})") from None
        raise


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp(?P<suffix>\.[^.]*)?$")


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` leaves behind when its process is killed (SIGKILL,
    power loss): ``.NAME.<12 hex>.tmpSUFFIX``. Call it only where no other writer is active, e.g. on a run
    directory when its one trainer starts. Returns the files removed."""
    removed: list[Path] = []
    d = Path(directory)
    if not d.is_dir():
        return removed
    for p in d.glob(".*.tmp*"):
        m = _TEMP_NAME.match(p.name)
        if m and (m.group("suffix") or "") == Path(m.group("name")).suffix and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def os_reason(e: OSError) -> str:
    """The one-line reason of an OSError: h5py's carry HDF5's multi-line report in strerror."""
    if e.errno:
        return os.strerror(e.errno)
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def atomic_write(path: str | Path, writer_fn: Callable[[Path], object]) -> Path:
    """Call ``writer_fn(tmp_path)`` and move the result to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        writer_fn(tmp)
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks: checkpoints, banks and render caches record their data's."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def npz_header(zf: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) that the npy member ``name`` (e.g. "voxels.npy") declares, read without its data."""
    with zf.open(name) as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(f)
    return tuple(shape), dtype


_NPZ_HINT = "split it into smaller files, or save a voxel set as .h5, which is read a batch at a time"


@contextlib.contextmanager
def open_npz(path: str | Path, *, hint: str = _NPZ_HINT) -> Iterator[np.lib.npyio.NpzFile]:
    """``np.load`` of an npz (never unpickling) whose declared sizes were checked before anything inflates.

    An npz is a zip: a few-kB file can inflate to terabytes. Its directory says what each member inflates to
    (zipfile stops there, whatever the stream holds), and each npy member's header what numpy allocates for
    it. A member declaring more than it holds is damaged; the total must pass :func:`check_memory` (``hint``
    says how to ask for less). Both are BadFileErrors naming the file; a file that is no zip raises what
    zipfile raises (BadZipFile), for the caller's own "not a readable ..." message.
    """
    p = Path(path)
    with zipfile.ZipFile(p) as zf:
        total = 0
        for info in zf.infolist():
            total += info.file_size
            if info.filename.endswith(".npy"):
                shape, dtype = npz_header(zf, info.filename)
                declared = math.prod(shape) * dtype.itemsize
                if declared > info.file_size:
                    raise BadFileError(f"{p}: '{info.filename[:-4]}' declares {shape} {dtype} "
                                       f"({format_bytes(declared)}) but holds {format_bytes(info.file_size)}; "
                                       "the file is damaged")
    check_memory(total, f"{p}: reading its arrays (a {format_bytes(p.stat().st_size)} file)", hint=hint,
                 error=BadFileError)
    with np.load(p, allow_pickle=False) as f:
        yield f
