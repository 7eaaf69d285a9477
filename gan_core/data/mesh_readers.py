"""Small, strict readers for triangle meshes: .off, .obj, .stl (ASCII and binary), .ply (ASCII and binary);
.glb, .gltf and .3mf (scenes) go through trimesh, checked first, in :mod:`gan_core.data.scene_readers`.

Why our own and not VTK's readers (through pyvista): those print multi-line errors straight to the
process's stderr on a bad file and then return an empty mesh, which would break the CLI's one-line error
contract; VTK has no .off reader at all (ModelNet's format, including its ``OFF490 518 0`` header quirk).
These parsers need only numpy, report every problem as a BadFileError naming the file, and are fast enough
(a 10k-face mesh in a few ms, except ASCII formats, a few tens of ms).

Each returns ``(vertices float64 (V, 3), faces int64 (F, 3))``; polygons are split into triangle fans.

trimesh reads these four formats too, and gives the same voxels on valid files, but it reads files these
parsers refuse (an OFF promising 10^12 faces and holding 4, OBJ faces naming vertex 0 or vertex lines with two
coordinates, NaN coordinates) and its errors are bare (``ValueError: not enough values to unpack``), so these
stay: ``benchmarks/mesh_readers_vs_trimesh.py`` measures both.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gan_core.data.scene_readers import SCENE_SUFFIXES, read_scene_mesh  # through trimesh
from gan_core.errors import BadFileError

__all__ = ["MESH_SUFFIXES", "SCENE_SUFFIXES", "read_mesh"]

MESH_SUFFIXES = (".off", ".obj", ".stl", ".ply", *SCENE_SUFFIXES)

Mesh = tuple[np.ndarray, np.ndarray]


class _Bad(Exception):
    """Internal: a parse problem; read_mesh adds the file name."""


def read_mesh(path: str | Path) -> Mesh:
    """Read a triangle mesh, dispatching on the suffix.

    Returns
    -------
    vertices : ndarray (V, 3) float64
    faces : ndarray (F, 3) int64, indices into ``vertices``; F >= 1.

    Raises
    ------
    BadFileError
        Missing or unreadable file, unknown suffix, malformed or truncated content, no faces, face
        indices out of range, or non-finite coordinates. The message names the file.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    readers = {".off": _read_off, ".obj": _read_obj, ".stl": _read_stl, ".ply": _read_ply}
    if suffix in SCENE_SUFFIXES:
        verts, faces = read_scene_mesh(p)
        try:
            with np.errstate(all="ignore"):
                return _validate(verts, faces)
        except _Bad as e:
            raise BadFileError(f"{p}: {e}") from None
    if suffix not in readers:
        raise BadFileError(f"{p}: unknown mesh format {suffix!r}; supported: {', '.join(MESH_SUFFIXES)}")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise BadFileError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        with np.errstate(all="ignore"):  # NaN / overflow in casts: _validate reports them, as one line
            verts, faces = readers[suffix](raw)
            return _validate(verts, faces)
    except _Bad as e:
        raise BadFileError(f"{p}: {e}") from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError) as e:
        raise BadFileError(f"{p}: malformed {suffix[1:].upper()} file ({type(e).__name__}: {e})") from None


def _validate(verts: np.ndarray, faces: np.ndarray) -> Mesh:
    verts = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        raise _Bad("empty mesh: no faces (a point cloud or an empty file?)")
    if not np.isfinite(verts).all():
        raise _Bad("vertex coordinates contain NaN or Inf")
    if faces.min() < 0 or faces.max() >= len(verts):
        raise _Bad(f"face index out of range (mesh has {len(verts)} vertices)")
    return verts, faces


def _fan(polys: list[list[int]]) -> np.ndarray:
    """Split polygons (lists of vertex indices) into triangles (p0, pi, pi+1)."""
    tris = [(p[0], p[i], p[i + 1]) for p in polys for i in range(1, len(p) - 1)]
    return np.array(tris, dtype=np.int64).reshape(-1, 3)


def _text(raw: bytes) -> str:
    if b"\x00" in raw[:4096]:
        raise _Bad("binary garbage where text was expected")
    return raw.decode("utf-8", errors="replace")


# -- OFF ---------------------------------------------------------------------------------------------------
def _read_off(raw: bytes) -> Mesh:
    lines = [ln.split("#", 1)[0].strip() for ln in _text(raw).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise _Bad("empty file")
    m = re.match(r"^(ST)?(C)?(N)?(4)?OFF\b\s*(.*)$", lines[0]) or re.match(r"^OFF(\d.*)$", lines[0])
    if not m:
        raise _Bad("not an OFF file (first line must start with 'OFF')")
    rest = m.group(m.lastindex or 0).split() if m.lastindex else []
    body = lines[1:]
    if not rest:  # counts on their own line (the standard); ModelNet glues them to 'OFF'
        if not body:
            raise _Bad("truncated OFF file: no counts line")
        rest, body = body[0].split(), body[1:]
    nv, nf = int(rest[0]), int(rest[1])
    if nv < 0 or nf < 0:
        raise _Bad(f"negative vertex or face count ({nv}, {nf})")
    if len(body) < nv + nf:
        raise _Bad(f"truncated OFF file: header promises {nv} vertices and {nf} faces, found {len(body)} lines")
    flat = " ".join(body[:nv]).split()
    if len(flat) == 3 * nv:  # plain "x y z" lines: one C-level conversion instead of a Python loop
        verts = np.array(flat, dtype=np.float64).reshape(-1, 3)
    else:  # extra per-vertex columns (colours, normals)
        verts = np.array([ln.split()[:3] for ln in body[:nv]], dtype=np.float64).reshape(-1, 3)
    flat = " ".join(body[nv : nv + nf]).split()
    if len(flat) == 4 * nf:
        rows = np.array(flat, dtype=np.int64).reshape(-1, 4)
        if (rows[:, 0] == 3).all():  # all triangles, ModelNet's usual case
            return verts, rows[:, 1:]
    polys = []
    for ln in body[nv : nv + nf]:
        tok = ln.split()
        k = int(tok[0])
        if len(tok) < k + 1:
            raise _Bad(f"face line {ln[:40]!r} lists fewer than {k} vertices")
        polys.append([int(t) for t in tok[1 : k + 1]])
    return verts, _fan(polys)


# -- OBJ ---------------------------------------------------------------------------------------------------
def _read_obj(raw: bytes) -> Mesh:
    text = _text(raw)
    vert_rows = re.findall(r"^v[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)", text, re.M)
    face_rows = re.findall(r"^f[ \t]+(.*\S)", text, re.M)
    if not vert_rows and not face_rows:
        raise _Bad("not an OBJ mesh: no 'v' or 'f' lines")
    if re.search(r"^v[ \t]", text, re.M) and len(vert_rows) != len(re.findall(r"^v[ \t]", text, re.M)):
        raise _Bad("a vertex line has fewer than 3 coordinates")
    verts = np.array(vert_rows, dtype=np.float64).reshape(-1, 3)
    # 'f 1 2 3', 'f 1/4/7 ...', 'f 1//7 ...': keep the vertex index before the first '/'.
    polys = [[int(t.split("/", 1)[0]) for t in row.split()] for row in face_rows]
    if any(i < 0 for poly in polys for i in poly):
        return verts, _fan(_obj_relative(text))
    return verts, _fan([[i - 1 for i in poly] for poly in polys])


def _obj_relative(text: str) -> list[list[int]]:
    """Faces with negative indices count back from the latest vertex: needs a sequential walk."""
    n, polys = 0, []
    for ln in text.splitlines():
        tok = ln.split()
        if tok and tok[0] == "v":
            n += 1
        elif tok and tok[0] == "f":
            idx = [int(t.split("/", 1)[0]) for t in tok[1:]]
            polys.append([i - 1 if i > 0 else n + i for i in idx])
    return polys


# -- STL ---------------------------------------------------------------------------------------------------
_STL_VERTEX = re.compile(rb"vertex\s+(\S+)\s+(\S+)\s+(\S+)")


def _read_stl(raw: bytes) -> Mesh:
    if len(raw) >= 84:
        n = int(np.frombuffer(raw, dtype="<u4", count=1, offset=80)[0])
        if len(raw) == 84 + 50 * n:  # binary: exact size check catches truncation
            rec = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
            tris = np.frombuffer(raw, dtype=rec, count=n, offset=84)["v"].astype(np.float64)
            return tris.reshape(-1, 3), np.arange(3 * n, dtype=np.int64).reshape(-1, 3)
    if raw.lstrip()[:5].lower() == b"solid" and b"facet" in raw:
        coords = _STL_VERTEX.findall(raw)
        if len(coords) % 3:
            raise _Bad(f"truncated ASCII STL: {len(coords)} vertices is not a multiple of 3")
        verts = np.array(coords, dtype=np.float64).reshape(-1, 3)
        return verts, np.arange(len(verts), dtype=np.int64).reshape(-1, 3)
    if len(raw) >= 84:
        n = int(np.frombuffer(raw, dtype="<u4", count=1, offset=80)[0])
        raise _Bad(f"not a valid STL: binary header promises {n} triangles ({84 + 50 * n} bytes), "
                   f"file has {len(raw)} bytes (truncated or not STL)")
    raise _Bad(f"not a valid STL ({len(raw)} bytes; too short for binary, no ASCII 'solid ... facet')")


# -- PLY ---------------------------------------------------------------------------------------------------
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def _ply_header(raw: bytes) -> tuple[str, list[tuple[str, int, list[tuple[str, str, str | None]]]], int]:
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise _Bad("not a PLY file (no 'ply' magic or no 'end_header')")
    body_start = raw.find(b"\n", end) + 1
    if body_start == 0:
        raise _Bad("truncated PLY header")
    fmt = ""
    elements: list[tuple[str, int, list[tuple[str, str, str | None]]]] = []
    for ln in raw[:end].decode("ascii", errors="replace").splitlines()[1:]:
        tok = ln.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        if tok[0] == "format":
            fmt = tok[1]
        elif tok[0] == "element":
            elements.append((tok[1], int(tok[2]), []))
        elif tok[0] == "property" and elements:
            if tok[1] == "list":  # property list <count type> <item type> <name>
                elements[-1][2].append((tok[4], _PLY_TYPES[tok[3]], _PLY_TYPES[tok[2]]))
            else:
                elements[-1][2].append((tok[2], _PLY_TYPES[tok[1]], None))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise _Bad(f"unknown PLY format {fmt!r}")
    return fmt, elements, body_start


def _read_ply(raw: bytes) -> Mesh:
    fmt, elements, pos = _ply_header(raw)
    data: dict[str, dict[str, object]] = {}
    if fmt == "ascii":
        tokens = raw[pos:].split()
        t = 0
        for name, count, props in elements:
            if t + count * len(props) > len(tokens):
                raise _Bad(f"truncated PLY data in element {name!r}")
            cols: dict[str, list] = {pname: [] for pname, _, _ in props}
            for _ in range(count):
                for pname, _, count_type in props:
                    if count_type:
                        k = int(tokens[t])
                        cols[pname].append([int(x) for x in tokens[t + 1 : t + 1 + k]])
                        t += 1 + k
                    else:
                        cols[pname].append(float(tokens[t]))
                        t += 1
            if t > len(tokens):
                raise _Bad(f"truncated PLY data in element {name!r}")
            data[name] = cols
    else:
        endian = "<" if fmt == "binary_little_endian" else ">"
        for name, count, props in elements:
            data[name], pos = _ply_binary_element(raw, pos, count, props, endian)
    vertex = data.get("vertex")
    if vertex is None or not all(k in vertex for k in "xyz"):
        raise _Bad("PLY has no vertex element with x, y, z")
    verts = np.stack([np.asarray(vertex[k], dtype=np.float64) for k in "xyz"], axis=1)
    face = data.get("face", {})
    lists = face.get("vertex_indices", face.get("vertex_index"))
    if lists is None:
        return verts, np.zeros((0, 3), np.int64)
    if isinstance(lists, np.ndarray):  # uniform polygons from the binary fast path: (F, k)
        polys = lists.astype(np.int64)
        k = polys.shape[1]
        tris = np.stack([np.stack([polys[:, 0], polys[:, i], polys[:, i + 1]], 1) for i in range(1, k - 1)], 1)
        return verts, tris.reshape(-1, 3)
    return verts, _fan(list(lists))  # type: ignore[arg-type]


def _ply_binary_element(raw: bytes, pos: int, count: int, props: list, endian: str) -> tuple[dict, int]:
    """Decode one binary element. Fast path: every list has the same length as the first row's."""
    fields: list[tuple] = []
    first = pos
    for pname, typ, count_type in props:
        if count_type:
            if first + np.dtype(count_type).itemsize > len(raw):
                raise _Bad("truncated PLY data")
            k = int(np.frombuffer(raw, dtype=endian + count_type, count=1, offset=first)[0]) if count else 0
            fields += [(f"{pname}#n", endian + count_type), (pname, endian + typ, (k,))]
            first += np.dtype(count_type).itemsize + k * np.dtype(typ).itemsize
        else:
            fields.append((pname, endian + typ))
            first += np.dtype(typ).itemsize
    rec = np.dtype(fields)
    min_row = sum(np.dtype(c or t).itemsize for _, t, c in props)  # every list empty
    if pos + min_row * count > len(raw):  # checked before any per-row loop, so absurd counts fail fast
        raise _Bad(f"truncated PLY data: {count} rows cannot fit in {len(raw) - pos} bytes")
    if count and pos + rec.itemsize * count <= len(raw):
        arr = np.frombuffer(raw, dtype=rec, count=count, offset=pos)
        lists = [f for f, _, c in props if c]
        if all((arr[f"{f}#n"] == arr.dtype[f].shape[0]).all() for f in lists):
            return {f: arr[f] for f, _, _ in props}, pos + rec.itemsize * count
    # Mixed polygon sizes (or truncated data): walk row by row.
    cols: dict[str, list] = {pname: [] for pname, _, _ in props}
    for _ in range(count):
        for pname, typ, count_type in props:
            if count_type:
                k = int(_take(raw, pos, endian + count_type, 1)[0])
                pos += np.dtype(count_type).itemsize
                cols[pname].append(_take(raw, pos, endian + typ, k).tolist())
                pos += k * np.dtype(typ).itemsize
            else:
                cols[pname].append(float(_take(raw, pos, endian + typ, 1)[0]))
                pos += np.dtype(typ).itemsize
    return cols, pos


def _take(raw: bytes, pos: int, dtype: str, n: int) -> np.ndarray:
    if pos + n * np.dtype(dtype).itemsize > len(raw):
        raise _Bad("truncated PLY data")
    return np.frombuffer(raw, dtype=dtype, count=n, offset=pos)
