"""How much memory one request may take, checked before it is taken.

Numbers from a user or a file decide how much gan_core allocates: ``gan3d sample --n``, the shape an npz
header or an HDF5 dataset declares, the sizes in a zip directory (a 260 kB npz can inflate to 256 MB, a
crafted one to terabytes). Trusted blindly, they end in an allocator traceback or push the machine into swap
first. Every path that allocates in proportion to such a number asks :func:`check_memory` first, which
refuses in one line that says the limit and how to ask for less (or raise it).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from gan_core.errors import BadInputError, Gan3dError

__all__ = ["ENV", "check_memory", "format_bytes", "memory_limit", "physical_memory"]

ENV = "GAN3D_MEMORY_LIMIT_GB"
FRACTION = 0.5  # of the machine's memory: the rest is for the model, copies and everything else running
_FALLBACK = 8 << 30  # where the machine's memory cannot be read
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


@functools.lru_cache(maxsize=1)
def physical_memory() -> int | None:
    """Bytes of RAM this process can have: the machine's, or its container's (cgroup) limit when lower;
    None where neither can be read. Read once (a training step samples z through check_memory)."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX (Windows)
        pass
    for name in _CGROUP_FILES:
        try:
            sizes.append(int(Path(name).read_text().strip()))
        except (OSError, ValueError):  # no cgroup, or "max" (no limit)
            continue
    sizes = [s for s in sizes if s > 0]
    return min(sizes) if sizes else None


def memory_limit() -> tuple[int, str]:
    """(bytes one request may take, where that number comes from): $GAN3D_MEMORY_LIMIT_GB (GiB) when set,
    else half of :func:`physical_memory`. Read at each call, so a changed variable takes effect at once."""
    text = os.environ.get(ENV, "").strip()
    if text:
        try:
            gib = float(text)
        except ValueError:
            gib = math.nan
        if not (math.isfinite(gib) and gib > 0):
            raise BadInputError(f"{ENV} must be a positive number of GiB, got {text!r}")
        return int(gib * 2**30), f"{ENV}={text}"
    ram = physical_memory()
    if ram is None:
        return _FALLBACK, "a default where the machine's memory is unknown"
    return int(ram * FRACTION), f"half of this machine's {format_bytes(ram)}"


def check_memory(nbytes: int, what: str, *, hint: str, error: type[Gan3dError] = BadInputError) -> None:
    """Refuse a request of ``nbytes`` above :func:`memory_limit`, before anything is allocated.

    The one-line message reads "``what`` needs 37.3 GiB of memory, more than the 11.6 GiB allowed (half of
    this machine's 23.3 GiB); ``hint``, or set GAN3D_MEMORY_LIMIT_GB", so it names the limit, where it comes
    from, and both ways past it. ``error``: BadInputError for an argument, BadFileError for a file's content.
    """
    limit, source = memory_limit()
    if nbytes > limit:
        raise error(f"{what} needs {format_bytes(nbytes)} of memory, more than the {format_bytes(limit)} allowed "
                    f"({source}); {hint}, or set {ENV} to allow more")


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; sizes in messages, in binary units as memory is counted."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    i = 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"
