"""Atomic file writing and the two voxel-set layouts (npz, HDF5).

Every file gan_core writes goes through :func:`atomic_path`: the data lands in a temporary file next to the
target and is renamed over it only when complete, so a crash or Ctrl-C never leaves a truncated
checkpoint, data set or mesh that a later run would trip over.

Layouts (read by :class:`gan_core.data.VoxelDataset`):

* ``.npz``: ``voxels`` (N, R, R, R) uint8 in {0, 1}, ``labels`` (N,) int64, ``classes`` (C,) unicode
  strings (never pickled objects, so ``np.load(..., allow_pickle=False)`` works).
* ``.h5``: the same three datasets; ``voxels`` chunked one shape per chunk with lzf compression so a
  reader pulls single shapes cheaply; ``classes`` is a UTF-8 variable-length string dataset.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import re
import uuid
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from gan_core.errors import BadFileError, BadInputError
from gan_core.memory import check_memory, format_bytes
from gan_core.voxel_checks import binarize_voxels, check_voxel_layout

if TYPE_CHECKING:
    import h5py

__all__ = ["atomic_h5", "atomic_path", "atomic_write", "cache_dir", "check_hdf5_heaps", "load_or_make", "load_tagged_npz",
           "npz_header", "open_npz", "remove_stale_temps", "save_tagged_npz", "save_voxel_npz", "write_h5_dataset"]

H5_FORMAT_VERSION = 1
_T = TypeVar("_T")


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
        raise BadFileError(f"{target}: cannot create directory {parent} ({_os_reason(e)})") from None
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
            raise BadFileError(f"{target}: cannot write ({_os_reason(e)})") from None
        raise


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp(?P<suffix>\.[^.]*)?$")


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` leaves behind when its process is killed (SIGKILL,
    power loss): ``.NAME.<12 hex>.tmpSUFFIX``. Call it only where no other writer is active, e.g. on a run
    directory when its one trainer starts. Returns the files removed."""
    removed = []
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


def check_hdf5_heaps(path: str | Path) -> None:
    """Refuse an HDF5 file whose global heap collections (where variable-length strings live) are damaged.

    HDF5 trusts the sizes in a collection: one flipped length made h5py allocate 4.5 GB and fail after 40 s,
    another made it loop for good, on a 14 kB feature bank. The walk below follows the file format
    (https://docs.hdfgroup.org/hdf5/develop/_f_m_t3.html, "Global Heap"): each "GCOL" collection, version 1,
    at least 4096 bytes, holds objects (index u16, refcount u16, reserved u32, size u64, data padded to 8)
    that must tile it, the last one (index 0) being exactly the free space left. Costs one pass over the file (memory-mapped); call it only for files read whole.
    """
    import mmap
    import struct

    p = Path(path)
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            pos = m.find(b"GCOL\x01\x00\x00\x00")
            while pos >= 0:
                if pos + 16 > size:
                    raise BadFileError(f"{p}: damaged HDF5 file (global heap header cut off at byte {pos})")
                (coll,) = struct.unpack_from("<Q", m, pos + 8)
                if not 4096 <= coll <= size - pos:
                    raise BadFileError(f"{p}: damaged HDF5 file (global heap at byte {pos} claims {coll} bytes)")
                off, end = pos + 16, pos + coll
                while off + 16 <= end:
                    index, _, _, osize = struct.unpack_from("<HHIQ", m, off)
                    if index == 0:  # the free-space object: exactly the rest of the collection
                        if osize != end - off:
                            raise BadFileError(f"{p}: damaged HDF5 file (global heap free space at byte {off} "
                                               f"claims {osize} of {end - off} bytes)")
                        break
                    step = 16 + ((osize + 7) & ~7)
                    if osize > end - off or off + step > end:
                        raise BadFileError(f"{p}: damaged HDF5 file (global heap object at byte {off} claims "
                                           f"{osize} bytes)")
                    off += step
                pos = m.find(b"GCOL\x01\x00\x00\x00", pos + 8)


def _os_reason(e: OSError) -> str:
    """The one-line reason of an OSError: h5py's carry HDF5's multi-line report in strerror."""
    if e.errno:
        return os.strerror(e.errno)
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


@contextlib.contextmanager
def atomic_h5(path: str | Path) -> Iterator["h5py.File"]:
    """An HDF5 file opened for writing and moved to ``path`` atomically, like :func:`atomic_path`.

    HDF5 cannot survive a failed write: once one fails (a full disk), closing the file or merely collecting
    its objects crashes the process (segfault or bus error, seen with h5py 3.16 / HDF5 1.14). So h5py
    writes through a Python file object that keeps the first OSError and accepts the rest: HDF5 never sees
    a failure, and the error is raised once the file is closed (a BadFileError, via atomic_path).
    """
    import h5py

    with atomic_path(path) as tmp:
        raw = _WriteGuard(tmp)
        try:
            with h5py.File(raw, "w") as h5:
                yield h5
        except Exception:
            if raw.error is None:
                raise
            # else HDF5 tripped over the data it believes it wrote: report the write error instead
        finally:
            raw.close()
        if raw.error is not None:
            raise raw.error


class GuardedH5:
    """An HDF5 file updated in place (a resumable cache) that a failed write cannot corrupt.

    Writes go through a guard, as :func:`atomic_h5`'s do: HDF5 never sees a failed write (it cannot survive
    one) and nothing is written after the first failure. :meth:`commit` flushes and marks a consistent state;
    after a failed write, :meth:`close` rolls the file back to the last commit (the old bytes of every write
    into the committed part are kept until the next commit; anything past it is cut off) and raises one
    BadFileError. ``intact`` is False only if that rollback failed too (delete the file then).

    ``mode`` "w" creates (or truncates) the file, "r+" opens an existing one; ``h5`` is the h5py.File.
    """

    def __init__(self, path: str | Path, mode: str = "w") -> None:
        import h5py

        self.path = Path(path)
        self.intact = True
        try:
            self._raw = _UndoGuard(self.path, "w+b" if mode == "w" else "r+b")
        except OSError as e:  # a read-only directory, no permission, no such directory
            raise BadFileError(f"{self.path}: cannot write ({_os_reason(e)})") from None
        try:
            self.h5 = h5py.File(self._raw, mode)
        except BaseException:
            self._raw.close()
            raise

    @property
    def error(self) -> BadFileError | None:
        """The first failed write since the file was opened, as the BadFileError to show; None if none."""
        e = self._raw.error
        return None if e is None else BadFileError(f"{self.path}: cannot write ({_os_reason(e)})")

    def check(self) -> None:
        """Raise :attr:`error` if a write has failed."""
        if self._raw.error is not None:
            raise self.error  # type: ignore[misc]

    def commit(self) -> None:
        """Flush everything HDF5 holds back and mark the file consistent; BadFileError if a write failed."""
        self.h5.flush()
        self.check()
        self._raw.commit()

    def close(self) -> None:
        """Close the file, rolled back to the last commit if a write failed (then BadFileError)."""
        if self._raw.closed:
            return self.check()
        try:
            if self.h5.id.valid:
                self.h5.close()
        finally:
            if self._raw.error is not None:
                try:
                    self._raw.rollback()
                except OSError:
                    self.intact = False
            self._raw.close()
        self.check()


class _WriteGuard(io.RawIOBase):
    """An unbuffered binary file that records the first failed write and reports success to its caller."""

    def __init__(self, path: Path, mode: str = "w+b") -> None:
        super().__init__()
        self._f = open(path, mode, buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer):  # type: ignore[no-untyped-def, override]
        return self._f.readinto(buffer)

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        n = len(memoryview(data).cast("B"))
        if self.error is None:
            try:
                written = self._f.write(data)
                if written is not None and written < n:  # a short write is how a full disk starts
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError as e:
                self.error = e
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._f.truncate(size)
        except OSError as e:
            self.error = self.error or e
            return self._f.tell() if size is None else size

    def flush(self) -> None:
        pass  # unbuffered

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError as e:
                self.error = self.error or e
        super().close()


class _UndoGuard(_WriteGuard):
    """A _WriteGuard that can roll its file back to the last :meth:`commit`."""

    def __init__(self, path: Path, mode: str) -> None:
        super().__init__(path, mode)
        self._committed = os.fstat(self._f.fileno()).st_size
        self._undo: list[tuple[int, bytes]] = []  # (offset, bytes there at the last commit)

    def _keep(self, start: int, end: int) -> None:
        end = min(end, self._committed)
        if start < end:
            self._undo.append((start, os.pread(self._f.fileno(), end - start, start)))

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        if self.error is None:
            try:
                self._keep(self._f.tell(), self._f.tell() + len(memoryview(data).cast("B")))
            except OSError as e:
                self.error = e
        return super().write(data)

    def truncate(self, size: int | None = None) -> int:
        if self.error is not None:  # HDF5 closing after a failed write: leave the file to the rollback
            return self._f.tell() if size is None else size
        new_size = self._f.tell() if size is None else size
        try:
            self._keep(new_size, self._committed)
        except OSError as e:
            self.error = e
            return new_size
        return super().truncate(size)

    def commit(self) -> None:
        self._undo.clear()
        self._committed = os.fstat(self._f.fileno()).st_size

    def rollback(self) -> None:
        """Put back the bytes of the last commit (overwriting in place needs no new space) and cut the rest."""
        fd = self._f.fileno()
        for offset, old in reversed(self._undo):
            os.pwrite(fd, old, offset)
        os.ftruncate(fd, self._committed)
        self._undo.clear()


def atomic_write(path: str | Path, writer_fn: Callable[[Path], object]) -> Path:
    """Call ``writer_fn(tmp_path)`` and move the result to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        writer_fn(tmp)
    return Path(path)


def _as_voxel_stack(voxels: np.ndarray) -> np.ndarray:
    """The readers' checks (gan_core.voxel_checks), so a writer never makes a file they refuse."""
    vox = np.asarray(voxels)
    check_voxel_layout(vox.shape, vox.dtype, error=BadInputError)
    return binarize_voxels(vox, error=BadInputError)


def _check_labels_classes(labels: np.ndarray, classes: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    lab = np.asarray(labels)
    if lab.shape != (n,) or (n and lab.dtype.kind not in "iu"):
        raise BadInputError(f"labels must be {n} integers, got shape {lab.shape} dtype {lab.dtype}")
    names = [str(c) for c in classes]
    if not names:
        raise BadInputError("classes must name at least one class")
    if len(set(names)) != len(names):
        raise BadInputError(f"class names must be unique, got {names}")
    if n and (lab.min() < 0 or lab.max() >= len(names)):
        raise BadInputError(f"labels must index classes (0..{len(names) - 1}), got {lab.min()}..{lab.max()}")
    return lab.astype(np.int64), np.array(names, dtype=str)


def save_voxel_npz(
    path: str | Path,
    voxels: np.ndarray,
    labels: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    **extra_arrays: np.ndarray,
) -> Path:
    """Write a voxel set in the npz layout, atomically and compressed.

    Parameters
    ----------
    path : str or Path
        Target ``.npz`` file.
    voxels : ndarray (N, R, R, R)
        Occupancy; bool/int grids are stored as ``> 0``, float grids as ``> 0.5``, both as uint8.
    labels : ndarray (N,) of int, optional
        Class indices into ``classes``; all zeros when omitted.
    classes : sequence of str, optional
        Class names; ``["shape"]`` when omitted.
    **extra_arrays
        Further arrays stored under their keyword (e.g. ``z`` for generated shapes).

    Returns
    -------
    Path
        ``path``.
    """
    vox = _as_voxel_stack(voxels)
    n = len(vox)
    lab, names = _check_labels_classes(np.zeros(n, np.int64) if labels is None else labels, ["shape"] if classes is None else list(classes), n)
    clash = {"voxels", "labels", "classes"} & extra_arrays.keys()
    if clash:
        raise BadInputError(f"extra array names clash with the layout: {sorted(clash)}")
    arrays = {"voxels": vox, "labels": lab, "classes": names, **{k: np.asarray(v) for k, v in extra_arrays.items()}}
    if any(a.dtype == object for a in arrays.values()):
        raise BadInputError("object arrays cannot be stored without pickling; convert them to numbers or str")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # A file object stops numpy from appending '.npz' to the temporary name.
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    return Path(path)


VoxelBatches = Iterable[tuple[np.ndarray, np.ndarray]]


def write_h5_dataset(
    path: str | Path,
    voxels: np.ndarray | VoxelBatches,
    labels: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    resolution: int | None = None,
) -> int:
    """Write a voxel set as HDF5, streaming so sets larger than RAM can be written.

    Parameters
    ----------
    path : str or Path
        Target ``.h5`` file, replaced atomically when the write completes.
    voxels : ndarray (N, R, R, R) or iterable of (voxels (B, R, R, R), labels (B,))
        Either a whole array (then ``labels`` gives its labels) or batches, which are appended one at a
        time to resizable datasets. Grids of another size are resampled to ``resolution``.
    labels : ndarray (N,) of int, optional
        Labels for an array input (zeros when omitted); must be None for batch input.
    classes : sequence of str, optional
        Class names (``["shape"]`` when omitted). Read after the batches are consumed, so a generator
        may append names to the list it was given while it runs.
    resolution : int, optional
        Grid size R stored; taken from the first batch when omitted.

    Returns
    -------
    int
        The number of shapes written.
    """
    import h5py

    from gan_core.data.resample import resample

    if isinstance(voxels, np.ndarray):
        n = len(voxels) if voxels.ndim else 0
        batches: VoxelBatches = [(voxels, np.zeros(n, np.int64) if labels is None else np.asarray(labels))]
    else:
        if labels is not None:
            raise BadInputError("labels must come inside the batches when voxels is an iterable")
        batches = voxels
    class_list = classes if classes is not None else ["shape"]
    written = 0
    with atomic_h5(path) as h5:
        vox_ds = lab_ds = None
        for vox_batch, lab_batch in batches:
            vox = _as_voxel_stack(vox_batch)
            lab = np.asarray(lab_batch)
            if lab.shape != (len(vox),) or (len(vox) and lab.dtype.kind not in "iu"):
                raise BadInputError(f"a batch of {len(vox)} shapes came with labels of shape {lab.shape}")
            if vox_ds is None:
                resolution = int(resolution or vox.shape[1])
                r = resolution
                vox_ds = h5.create_dataset(
                    "voxels", shape=(0, r, r, r), maxshape=(None, r, r, r), dtype=np.uint8,
                    chunks=(1, r, r, r), compression="lzf",
                )
                lab_ds = h5.create_dataset("labels", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
            if vox.shape[1] != resolution:
                vox = resample(vox, resolution)
            assert lab_ds is not None
            vox_ds.resize(written + len(vox), axis=0)
            vox_ds[written:] = vox
            lab_ds.resize(written + len(vox), axis=0)
            lab_ds[written:] = lab.astype(np.int64)
            written += len(vox)
        if vox_ds is None or written == 0:
            raise BadInputError(f"{path}: nothing to write (no shapes)")
        assert lab_ds is not None
        all_labels = lab_ds[()]
        _, names = _check_labels_classes(all_labels, class_list, written)
        h5.create_dataset("classes", data=names.tolist(), dtype=h5py.string_dtype("utf-8"))
        h5.attrs["resolution"] = int(resolution or 0)
        h5.attrs["gan3d_format"] = H5_FORMAT_VERSION
    return written


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks: checkpoints, banks and render caches record their data's."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where derived data that is slow to make and safe to delete lives (latent maps, semantic directions):
    $GAN3D_CACHE_DIR, else $XDG_CACHE_HOME/gan3d, else ~/.cache/gan3d. Not beside the inputs: bundled models
    and banks sit in a package folder that may be read-only (and is under version control)."""
    env = os.environ.get("GAN3D_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan3d"


def save_tagged_npz(path: str | Path, fmt: str, version: int, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and a JSON ``meta`` tagged with a format name and version, atomically, as an npz that
    loads without pickle (see :func:`load_tagged_npz`)."""
    import json

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise BadInputError(f"{path.name}: expected a .npz path")
    head = json.dumps({"format": fmt, "version": int(version), **meta})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, _meta=np.array(head), **arrays)
    return path


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


def load_tagged_npz(path: str | Path, fmt: str, version: int) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by :func:`save_tagged_npz` with this ``fmt`` and at most ``version``;
    BadFileError for a missing, damaged or foreign file."""
    import json

    p = Path(path)
    if not p.is_file():
        raise BadFileError(f"{p}: no such file")
    try:
        with open_npz(p) as f:
            meta = json.loads(str(f["_meta"]))
            arrays = {k: f[k] for k in f.files if k != "_meta"}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise BadFileError(f"{p}: not a readable {fmt} file ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise BadFileError(f"{p}: not a {fmt} file")
    if not isinstance(meta.get("version"), int) or not 1 <= meta["version"] <= version:
        raise BadFileError(f"{p}: {fmt} version {meta.get('version')!r} is not supported (this gan3d reads <= {version})")
    return meta, arrays


def load_or_make(path: str | Path, load: Callable[[Path], "_T"], make: Callable[[], "_T"],
                 save: Callable[["_T", Path], object]) -> "_T":
    """``load(path)`` when a readable file is there; otherwise ``make()``, saved with ``save(obj, path)`` for
    next time. A damaged file (BadFileError) is remade; a cache that cannot be written only logs a warning."""
    import logging

    log = logging.getLogger(__name__)
    path = Path(path)
    if path.is_file():
        try:
            return load(path)
        except BadFileError as e:
            log.warning("remaking %s: %s", path.name, e)
    obj = make()
    try:
        save(obj, path)
    except OSError as e:
        log.warning("could not cache %s in %s: %s", path.name, path.parent, e)
    return obj
