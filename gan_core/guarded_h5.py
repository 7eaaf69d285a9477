"""HDF5 that a damaged file or a failed write cannot crash: the heap check run before a file is read whole,
and writes through a guard (a new file moved in atomically, or a resumable file rolled back to its last
commit).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, cast

from gan_core.errors import BadFileError
from gan_core.files import atomic_path, os_reason

if TYPE_CHECKING:
    import h5py

__all__ = ["GuardedH5", "atomic_h5", "check_hdf5_heaps"]


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
            raise BadFileError(f"{self.path}: cannot write ({os_reason(e)})") from None
        try:
            self.h5 = h5py.File(self._raw, mode)
        except BaseException:
            self._raw.close()
            raise

    @property
    def error(self) -> BadFileError | None:
        """The first failed write since the file was opened, as the BadFileError to show; None if none."""
        e = self._raw.error
        return None if e is None else BadFileError(f"{self.path}: cannot write ({os_reason(e)})")

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
        self._f = cast(io.FileIO, open(path, mode, buffering=0))  # unbuffered binary: a FileIO
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        return self._f.readinto(buffer)

    def write(self, data: Any) -> int:
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

    def write(self, data: Any) -> int:
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
