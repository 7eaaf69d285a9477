"""A structural check of MATLAB v5 .mat files, run before scipy.io.loadmat reads one.

scipy's compiled MAT v5 reader trusts the element sizes it finds: a damaged file (a zlib stream cut short
inside a compressed variable, a tag promising more bytes than follow) made loadmat read past its buffers and
crash the process with a segmentation fault, about once in 1000 fuzzed files. This walks the file the way
the format describes it (MathWorks, "MAT-File Format", version 5: a 128-byte header, then data elements,
each an 8-byte tag of type and size, or a 4-byte "small data element"; miCOMPRESSED elements hold one
zlib-compressed element; miMATRIX elements hold sub-elements) and refuses any element that does not fit in
its parent, in pure Python, before scipy sees the bytes. A compressed element's tag declares what it
inflates to: the running total passes gan_core.memory.check_memory before each one is inflated, as scipy
will hold them all.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Callable

from gan_core.errors import BadFileError
from gan_core.memory import check_memory

__all__ = ["check_mat5"]

MI_MATRIX, MI_COMPRESSED = 14, 15
_KNOWN = {1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18}
_MAX_DEPTH = 32  # nested cells / structs


class _Bad(Exception):
    pass


def check_mat5(path: str | Path) -> None:
    """Raise BadFileError unless every data element of the v5 .mat file at ``path`` fits where it is.
    Version 4 files (no tags) are let through."""
    p = Path(path)
    raw = p.read_bytes()
    if len(raw) >= 4 and 0 in raw[:4]:
        return  # a v4 file (scipy tells them apart the same way): no tags to walk
    try:
        if len(raw) < 128:
            raise _Bad(f"{len(raw)} bytes is shorter than the 128-byte header")
        order = {b"IM": "<", b"MI": ">"}.get(raw[126:128])
        if order is None:
            raise _Bad("no endian indicator in the header")
        inflated = 0

        def charge(size: int) -> None:
            nonlocal inflated
            inflated += size
            check_memory(inflated, f"{p}: its compressed variables", hint="save fewer or smaller variables per file",
                         error=BadFileError)

        _walk(raw, 128, len(raw), order, top=True, depth=0, charge=charge)
    except _Bad as e:
        raise BadFileError(f"{p}: not a readable MATLAB file (damaged: {e})") from None


def _walk(buf: bytes, pos: int, end: int, order: str, *, top: bool, depth: int,
          charge: Callable[[int], None]) -> None:
    """``charge(n)`` is told the size of each compressed element before it is inflated."""
    if depth > _MAX_DEPTH:
        raise _Bad("variables nested too deeply")
    while pos < end:
        if pos + 8 > end:
            if top and not buf[pos:end].strip(b"\0"):  # trailing padding
                return
            raise _Bad(f"element tag at byte {pos} cut off")
        kind, size = struct.unpack_from(order + "II", buf, pos)
        small = kind >> 16
        if small:  # small data element: type and size in 4 bytes, up to 4 bytes of data
            if small > 4 or (kind & 0xFFFF) not in _KNOWN:
                raise _Bad(f"bad small data element at byte {pos}")
            pos += 8
            continue
        if kind not in _KNOWN:
            raise _Bad(f"unknown data type {kind} at byte {pos}")
        if size > end - pos - 8:
            raise _Bad(f"element at byte {pos} claims {size} bytes, {end - pos - 8} remain")
        body = pos + 8
        if kind == MI_COMPRESSED:
            if not top:
                raise _Bad(f"compressed element inside a variable at byte {pos}")
            _inflated(buf[body:body + size], order, depth, charge)
            pos = body + size  # compressed elements are not padded
            continue
        if kind == MI_MATRIX:
            _walk(buf, body, body + size, order, top=False, depth=depth + 1, charge=charge)
        pos = body + ((size + 7) & ~7) if not top or kind != MI_MATRIX else body + size


def _inflated(data: bytes, order: str, depth: int, charge: Callable[[int], None]) -> None:
    d = zlib.decompressobj()
    try:
        head = d.decompress(data, 8)
        if len(head) < 8:
            raise _Bad("compressed variable too short")
        kind, size = struct.unpack_from(order + "II", head)
        charge(size)
        rest = d.decompress(d.unconsumed_tail, size + 8)
    except zlib.error as e:
        raise _Bad(f"corrupt compressed variable: {e}") from None
    inner = head + rest
    if len(inner) < 8 + size:
        raise _Bad(f"compressed variable holds {len(inner) - 8} of the {size} bytes its tag claims")
    _walk(inner, 0, 8 + size, order, top=True, depth=depth + 1, charge=charge)
