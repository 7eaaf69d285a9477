"""Reader and writer for the binvox voxel format (Patrick Min's ``binvox``; ModelNet's voxelisations).

File layout: an ASCII header ::

    #binvox 1
    dim D D D
    translate tx ty tz
    scale s
    data

then run-length-encoded bytes: pairs ``(value, count)`` with value 0 or 1 and count 1..255, covering D^3
voxels. The runs walk the grid with y fastest, then z, then x (index = x * D * D + z * D + y), the "xzy"
order. We transpose to ``grid[x, y, z]`` so the grid axes are the model's axes: for ModelNet, whose meshes
are z-up, axis 2 is up, as in our npz data and in meshes voxelised by :mod:`gan_core.data.voxelize`.
Model coordinates of voxel i are ``(i + 0.5) / D * scale + translate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from gan_core.errors import BadFileError, BadInputError
from gan_core.files import atomic_path

__all__ = ["read_binvox", "write_binvox"]

_MAX_DIM = 1024  # a 1024^3 grid is 1 GB as uint8; anything larger is corrupt or not meant for us


def read_binvox(path: str | Path) -> np.ndarray:
    """Read a .binvox file as a uint8 grid (D, D, D) indexed [x, y, z] (axis 2 up for z-up models).

    Raises
    ------
    BadFileError
        Missing file, bad header, non-cubic or absurd dimensions, or RLE data that is truncated, too
        long, or holds values other than 0/1 or zero-length runs.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise BadFileError(f"{p}: cannot read ({e.strerror or e})") from None
    if not raw.startswith(b"#binvox"):
        raise BadFileError(f"{p}: not a binvox file (no '#binvox' header)")
    dims: list[int] | None = None
    pos = 0
    for _ in range(16):  # the header has 5 lines; allow comments, stop on 'data'
        end = raw.find(b"\n", pos)
        if end < 0:
            raise BadFileError(f"{p}: truncated binvox header (no 'data' line)")
        line = raw[pos:end].strip()
        pos = end + 1
        if line.startswith(b"dim"):
            try:
                dims = [int(t) for t in line.split()[1:]]
            except ValueError:
                raise BadFileError(f"{p}: bad binvox 'dim' line {line[:40]!r}") from None
        elif line == b"data":
            break
    else:
        raise BadFileError(f"{p}: binvox header has no 'data' line")
    if dims is None or len(dims) != 3:
        raise BadFileError(f"{p}: binvox header has no valid 'dim D D D' line")
    if not (dims[0] == dims[1] == dims[2]) or not 1 <= dims[0] <= _MAX_DIM:
        raise BadFileError(f"{p}: binvox grid must be cubic with 1 <= D <= {_MAX_DIM}, got dim {dims}")
    d = dims[0]
    data = np.frombuffer(raw, dtype=np.uint8, offset=pos)
    if len(data) % 2:
        raise BadFileError(f"{p}: truncated binvox data (odd number of run bytes)")
    values, counts = data[0::2], data[1::2]
    total = int(counts.sum(dtype=np.int64))
    if total != d**3:
        what = "truncated" if total < d**3 else "too long"
        raise BadFileError(f"{p}: binvox data {what}: runs cover {total} voxels, dim {d} needs {d**3}")
    if values.max(initial=0) > 1 or (counts == 0).any():
        raise BadFileError(f"{p}: corrupt binvox data (run values must be 0/1 and counts >= 1)")
    flat = np.repeat(values, counts)  # (D^3,) in x, z, y order
    return np.ascontiguousarray(flat.reshape(d, d, d).transpose(0, 2, 1))


def _rle(flat: np.ndarray) -> bytes:
    """Run-length encode a 0/1 uint8 vector into binvox (value, count<=255) pairs, vectorised."""
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [len(flat)])))
    values = flat[starts]
    pieces = (lengths + 254) // 255  # runs longer than 255 split into full 255-runs and a remainder
    rep_values = np.repeat(values, pieces)
    rep_counts = np.full(int(pieces.sum()), 255, dtype=np.int64)
    last = np.cumsum(pieces) - 1
    rep_counts[last] = lengths - 255 * (pieces - 1)
    out = np.empty(2 * len(rep_values), dtype=np.uint8)
    out[0::2], out[1::2] = rep_values, rep_counts
    return out.tobytes()


def write_binvox(
    path: str | Path,
    grid: np.ndarray,
    *,
    translate: Sequence[float] = (-0.5, -0.5, -0.5),
    scale: float = 1.0,
) -> Path:
    """Write a cubic grid [x, y, z] as .binvox, atomically.

    Parameters
    ----------
    path : target file.
    grid : ndarray (D, D, D); voxels > 0 (or > 0.5 for floats) are filled.
    translate, scale : the model-space placement stored in the header; the defaults put the grid in
        [-0.5, 0.5]^3, the frame of :func:`gan_core.mesh.voxels_to_mesh`.
    """
    g = np.asarray(grid)
    if g.ndim != 3 or not (g.shape[0] == g.shape[1] == g.shape[2]) or g.shape[0] == 0:
        raise BadInputError(f"binvox needs a cubic grid (D, D, D), got shape {g.shape}")
    if g.dtype.kind == "f" and not np.isfinite(g).all():
        raise BadInputError("grid contains NaN or Inf")
    occ = (g > 0.5) if g.dtype.kind == "f" else (g > 0)
    d = g.shape[0]
    flat = np.ascontiguousarray(occ.transpose(0, 2, 1)).astype(np.uint8).ravel()
    t = " ".join(f"{float(v):g}" for v in translate)
    header = f"#binvox 1\ndim {d} {d} {d}\ntranslate {t}\nscale {float(scale):g}\ndata\n".encode()
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + _rle(flat))
    return Path(path)
