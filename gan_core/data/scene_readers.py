"""glTF / GLB and 3MF meshes (what Sketchfab, Objaverse and 3D-printing tools hand out), read through trimesh.

These formats are scenes: meshes placed by a hierarchy of nodes (glTF) or by components and build items
(3MF), each with a transform. :func:`read_scene_mesh` applies every transform and concatenates the placed
meshes into one triangle soup, the ``(vertices, faces)`` that :func:`gan_core.data.mesh_readers.read_mesh`
returns for the older formats. glTF is Y-up by its specification and our grids are Z-up (axis 2), so glTF
coordinates are turned (x, y, z) -> (x, -z, y), as Blender does on import; 3MF is Z-up already.

trimesh trusts a file's numbers: an accessor of 10^12 items is allocated, a zip member is inflated whole, a
buffer URI may name any file on disk (``/dev/zero``), and 3MF components that reuse each other can make
2^40 placed copies. So the file is checked first, from its header, directory or JSON, and only then handed
to trimesh: sizes (GLB chunks, buffers, accessors, zip members) against :func:`gan_core.memory.check_memory`,
buffer files only next to the file (no absolute paths, no ``..``, regular files), the node hierarchy a tree
of bounded depth, and the placed copies counted before they are made (at most MAX_INSTANCES). Every problem
is one BadFileError line naming the file; trimesh's log goes nowhere (a NullHandler), never to stderr.

glTF data compressed with Draco or meshopt needs a decoder trimesh does not bundle: such files are refused
with a message that says so. Materials and textures are not read (a shape needs only its triangles).
"""

from __future__ import annotations

import io
import json
import logging
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from gan_core.errors import BadFileError, Gan3dError
from gan_core.memory import check_memory

__all__ = ["MAX_INSTANCES", "SCENE_SUFFIXES", "Y_UP_TO_Z_UP", "read_scene_mesh"]

SCENE_SUFFIXES = (".glb", ".gltf", ".3mf")
MAX_INSTANCES = 100_000  # placed meshes in one scene; a print plate has tens, a kit of parts thousands
MAX_DEPTH = 1_000  # node / component nesting; exporters write tens at most
# (x, y, z) glTF (Y up, +Z front) -> (x, -z, y) ours (Z up, -Y front); the inverse writes glTF.
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])

_KIND = {".glb": "GLB", ".gltf": "glTF", ".3mf": "3MF"}
_GLB_MAGIC, _GLB_JSON, _GLB_BIN = b"glTF", 0x4E4F534A, 0x004E4942
_COMPONENT_SIZE = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_SIZE = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_DECODERS = {"KHR_draco_mesh_compression": "Draco", "EXT_meshopt_compression": "meshopt",
             "KHR_meshopt_compression": "meshopt"}
# What trimesh's loaders take, at most, per byte of the file's data: the bytes, their buffer-view copies and the
# arrays (glTF); the XML text and lxml's elements for it (3MF, ~200 bytes per <vertex .../> of ~50).
_GLTF_FACTOR, _XML_FACTOR = 3, 6

logging.getLogger("trimesh").addHandler(logging.NullHandler())  # its warnings otherwise reach stderr


class _Bad(Exception):
    """Internal: a problem with the file; read_scene_mesh adds the file name."""


Mesh = tuple[np.ndarray, np.ndarray]


def read_scene_mesh(path: str | Path) -> Mesh:
    """Read a .glb, .gltf or .3mf file as one triangle mesh, every placed mesh transformed and concatenated.

    Returns
    -------
    vertices : ndarray (V, 3) float64, Z up
    faces : ndarray (F, 3) int64; F >= 1 (checked by the caller's validation).

    Raises
    ------
    BadFileError
        Missing or unreadable file, a file that is not of its suffix's format, truncated or malformed
        content, sizes past the memory limit, buffers outside the file's folder, a node graph that is not a
        tree or nests too deep, more than MAX_INSTANCES placed meshes, compression trimesh cannot decode, or
        no triangles at all. One line, naming the file.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    kind = _KIND[suffix]
    try:
        size = p.stat().st_size
    except OSError as e:
        raise BadFileError(f"{p}: cannot read ({e.strerror or e})") from None
    check_memory(size * (_GLTF_FACTOR if suffix != ".3mf" else 1), f"{p}: a {kind} file of {size} bytes",
                 hint="simplify the mesh", error=BadFileError)
    try:
        raw = p.read_bytes()
        if suffix == ".3mf":
            _check_3mf(raw, p)
            scene = _load(raw, "3mf", None)
        else:
            header, bin_size = _glb_json(raw) if suffix == ".glb" else (_json(raw), None)
            _check_gltf(header, p, bin_size)
            scene = _load(raw, suffix[1:], _FolderResolver(p.parent))
        verts, faces = _concatenate(scene, p)
    except Gan3dError:
        raise
    except _Bad as e:
        raise BadFileError(f"{p}: {e}") from None
    except MemoryError:
        raise BadFileError(f"{p}: too large to read in this machine's memory") from None
    except OSError as e:
        raise BadFileError(f"{p}: cannot read ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - trimesh's parsers raise anything on bad input (KeyError, lxml, ...)
        text = str(e).splitlines()[0][:160] if str(e) else "no details"
        raise BadFileError(f"{p}: not a readable {kind} file ({type(e).__name__}: {text})") from None
    if suffix != ".3mf":
        verts = verts @ Y_UP_TO_Z_UP.T
    return verts, faces


def _load(raw: bytes, file_type: str, resolver: Any):  # type: ignore[no-untyped-def]
    import trimesh

    extra = {"skip_materials": True} if file_type in ("glb", "gltf") else {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # numpy deprecations inside trimesh's parsers: not the user's business
        return trimesh.load_scene(io.BytesIO(raw), file_type=file_type, resolver=resolver, process=False, **extra)


def _concatenate(scene: Any, p: Path) -> Mesh:
    """Every placed triangle mesh of a trimesh Scene, its world transform applied; counted before it is built."""
    import trimesh

    graph = scene.graph
    placed = []
    n_verts = n_faces = 0
    for node in graph.nodes_geometry:
        transform, name = graph[node]
        g = scene.geometry.get(name)
        if not isinstance(g, trimesh.Trimesh) or len(g.faces) == 0:
            continue  # points, lines, empty meshes
        placed.append((transform, g))
        n_verts, n_faces = n_verts + len(g.vertices), n_faces + len(g.faces)
        if len(placed) > MAX_INSTANCES:
            raise _Bad(f"places more than {MAX_INSTANCES} meshes; export the shape as one mesh")
    if not placed:
        raise _Bad("no triangle meshes in the scene (only points, lines or nothing?)")
    check_memory(n_verts * 3 * 8 * 3 + n_faces * 3 * 8 * 2, f"{p}: {n_faces} triangles as placed",
                 hint="simplify the mesh", error=BadFileError)
    verts = np.empty((n_verts, 3), np.float64)
    faces = np.empty((n_faces, 3), np.int64)
    v = f = 0
    for transform, g in placed:
        t = np.asarray(transform, np.float64)
        gv, gf = np.asarray(g.vertices, np.float64), np.asarray(g.faces, np.int64)
        if gf.min() < 0 or gf.max() >= len(gv):
            raise _Bad(f"face index out of range (a mesh has {len(gv)} vertices)")
        verts[v : v + len(gv)] = gv @ t[:3, :3].T + t[:3, 3]
        faces[f : f + len(gf)] = gf + v
        v, f = v + len(gv), f + len(gf)
    return verts, faces


# -- glTF / GLB --------------------------------------------------------------------------------------------
def _json(raw: bytes | memoryview) -> dict:
    try:
        header = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _Bad(f"not a glTF file (its JSON does not parse: {type(e).__name__})") from None
    if not isinstance(header, dict):
        raise _Bad("not a glTF file (its JSON is not an object)")
    return header


def _glb_json(raw: bytes) -> tuple[dict, int]:
    """The JSON chunk of a GLB, and the length of its BIN chunk (0 when none); chunk sizes checked."""
    if len(raw) < 12 or raw[:4] != _GLB_MAGIC:
        raise _Bad("not a GLB file (no 'glTF' magic; a .gltf text file or something else?)")
    version, length = struct.unpack_from("<II", raw, 4)
    if version != 2:
        raise _Bad(f"glTF version {version}; only glTF 2.0 is read")
    if length > len(raw):
        raise _Bad(f"truncated GLB: its header says {length} bytes, the file has {len(raw)}")
    chunks: list[tuple[int, memoryview]] = []
    pos, view = 12, memoryview(raw)
    while pos < length:
        if pos + 8 > length:
            raise _Bad(f"truncated GLB: a chunk header at byte {pos} is cut off")
        clen, ctype = struct.unpack_from("<II", raw, pos)
        if pos + 8 + clen > length:
            raise _Bad(f"truncated GLB: a chunk of {clen} bytes at byte {pos} runs past the end ({length} bytes)")
        chunks.append((ctype, view[pos + 8 : pos + 8 + clen]))
        pos += 8 + clen
    if not chunks or chunks[0][0] != _GLB_JSON:
        raise _Bad("not a valid GLB: its first chunk is not JSON")
    bins = [len(c) for t, c in chunks[1:] if t == _GLB_BIN]
    return _json(chunks[0][1]), (bins[0] if bins else 0)


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad(f"{what} must be a non-negative integer, got {value!r:.40}")
    return value


def _list(header: dict, key: str) -> list:
    value = header.get(key, [])
    if not isinstance(value, list):
        raise _Bad(f"'{key}' must be a list")
    return value


def _check_gltf(header: dict, p: Path, bin_size: int | None) -> None:
    """Sizes, buffer places and the node tree, before trimesh allocates or follows anything."""
    asset = header.get("asset")
    version = str(asset.get("version", "")) if isinstance(asset, dict) else ""
    if not version.startswith("2"):
        raise _Bad(f"glTF version {version or '(none)'}; only glTF 2.0 is read")
    required = header.get("extensionsRequired", [])
    for ext in required if isinstance(required, list) else []:
        if ext in _DECODERS:
            raise _Bad(f"its meshes are {_DECODERS[ext]}-compressed ({ext}), which gan3d cannot decode; "
                       "export it without mesh compression")
    # Buffers: the GLB's own chunk, base64 in the JSON (already in memory), or files next to this one.
    external = 0
    sizes = []
    for i, b in enumerate(_list(header, "buffers")):
        if not isinstance(b, dict):
            raise _Bad(f"buffer {i} is not an object")
        n = _count(b.get("byteLength"), f"buffer {i}'s byteLength")
        uri = b.get("uri")
        if uri is None:
            if bin_size is None or i != 0:
                raise _Bad(f"buffer {i} has no uri (only a GLB's first buffer may live in the file)")
            if n > bin_size:
                raise _Bad(f"truncated GLB: buffer 0 declares {n} bytes, its BIN chunk holds {bin_size}")
        elif not isinstance(uri, str):
            raise _Bad(f"buffer {i}'s uri is not a string")
        elif not uri.startswith("data:"):
            external += _buffer_file(uri, p, n)
        sizes.append(n)
    check_memory(external * _GLTF_FACTOR, f"{p}: its buffer files ({external} bytes)", hint="simplify the mesh",
                 error=BadFileError)
    for i, v in enumerate(_list(header, "bufferViews")):
        if not isinstance(v, dict):
            raise _Bad(f"buffer view {i} is not an object")
        b = _count(v.get("buffer"), f"buffer view {i}'s buffer")
        if b >= len(sizes):
            raise _Bad(f"buffer view {i} names buffer {b}, which does not exist")
        end = _count(v.get("byteOffset", 0), f"buffer view {i}'s byteOffset") + \
            _count(v.get("byteLength"), f"buffer view {i}'s byteLength")
        if end > sizes[b]:
            raise _Bad(f"buffer view {i} ends at byte {end}, past its buffer's {sizes[b]} bytes (truncated?)")
    # Accessors: trimesh makes an array of count items each, from a view or of zeros (sparse, compressed).
    total = 0
    for i, a in enumerate(_list(header, "accessors")):
        if not isinstance(a, dict):
            raise _Bad(f"accessor {i} is not an object")
        count = _count(a.get("count"), f"accessor {i}'s count")
        if a.get("componentType") not in _COMPONENT_SIZE or a.get("type") not in _TYPE_SIZE:
            raise _Bad(f"accessor {i} has an unknown componentType or type")
        total += count * _COMPONENT_SIZE[a["componentType"]] * _TYPE_SIZE[a["type"]]
    check_memory(total * 2, f"{p}: its accessors ({total} bytes of vertex and index data)",
                 hint="simplify the mesh", error=BadFileError)
    _check_nodes(header)


def _buffer_file(uri: str, p: Path, n: int) -> int:
    """A buffer in a file next to the glTF: relative, inside its folder, a regular file of >= n bytes."""
    name = unquote(uri)
    if "://" in name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise _Bad(f"buffer uri {uri[:60]!r} is not a file name next to the glTF (absolute paths and URLs "
                   "are not followed)")
    folder = p.parent.resolve()
    target = (folder / name).resolve()
    if folder not in target.parents:
        raise _Bad(f"buffer uri {uri[:60]!r} points outside the glTF's folder")
    if not target.is_file():
        raise _Bad(f"buffer file {name[:60]!r} is missing (or not a regular file); keep it next to the glTF")
    size = target.stat().st_size
    if size < n:
        raise _Bad(f"buffer file {name[:60]!r} holds {size} bytes, the glTF declares {n} (truncated?)")
    return size


def _check_nodes(header: dict) -> None:
    """The node hierarchy: children exist, no node has two parents, no cycles, depth <= MAX_DEPTH, and the
    scene places at most MAX_INSTANCES meshes."""
    nodes = _list(header, "nodes")
    meshes = _list(header, "meshes")
    parent: dict[int, int] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise _Bad(f"node {i} is not an object")
        children = node.get("children", [])
        if not isinstance(children, list):
            raise _Bad(f"node {i}'s children must be a list")
        for c in children:
            c = _count(c, f"node {i}'s child")
            if c >= len(nodes):
                raise _Bad(f"node {i} has child {c}, which does not exist ({len(nodes)} nodes)")
            if c in parent:
                raise _Bad(f"node {c} has two parents ({parent[c]} and {i}); a glTF node hierarchy is a tree")
            parent[c] = i
    scenes = _list(header, "scenes")
    if not scenes:
        roots = [i for i in range(len(nodes)) if i not in parent]  # no scene: trimesh places nothing either
    else:
        index = _count(header.get("scene", 0), "scene")
        if index >= len(scenes) or not isinstance(scenes[index], dict):
            raise _Bad(f"scene {index} does not exist ({len(scenes)} scenes)")
        roots = [_count(r, "a scene's node") for r in scenes[index].get("nodes", []) or []]
        if any(r >= len(nodes) for r in roots):
            raise _Bad("a scene names a node that does not exist")
    placed = 0
    seen: set[int] = set()
    stack = [(r, 1) for r in roots]
    while stack:
        i, depth = stack.pop()
        if i in seen:
            raise _Bad(f"node {i} is reached twice (a cycle, or a root that is also a child)")
        if depth > MAX_DEPTH:
            raise _Bad(f"nodes nest deeper than {MAX_DEPTH} levels")
        seen.add(i)
        m = nodes[i].get("mesh")
        if m is not None:
            if _count(m, f"node {i}'s mesh") >= len(meshes) or not isinstance(meshes[m], dict):
                raise _Bad(f"node {i} names mesh {m}, which does not exist")
            placed += len(meshes[m].get("primitives", []) or [])
            if placed > MAX_INSTANCES:
                raise _Bad(f"places more than {MAX_INSTANCES} meshes; export the shape as one mesh")
        stack.extend((c, depth + 1) for c in nodes[i].get("children", []))


class _FolderResolver:
    """Hands trimesh the buffer files _check_gltf allowed (next to the glTF), nothing else."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def get(self, name: str) -> bytes:
        target = (self.folder / unquote(name)).resolve()
        if self.folder not in target.parents or not target.is_file():
            raise _Bad(f"{name[:60]!r} is not a file next to the glTF")
        return target.read_bytes()

    __getitem__ = get

    def keys(self) -> list[str]:
        return []

    def __contains__(self, name: str) -> bool:
        return False


# -- 3MF ---------------------------------------------------------------------------------------------------
def _check_3mf(raw: bytes, p: Path) -> None:
    """A zip with a 3D model part whose members fit in memory unpacked, and whose build places at most
    MAX_INSTANCES meshes (components may reuse objects: counted, not expanded)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
        infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise _Bad(f"not a 3MF file (not a readable zip archive: {e})") from None
    models = [i for i in infos if "3d/3dmodel.model" in i.filename.lower()]  # trimesh's test
    if not models:
        raise _Bad("not a 3MF file: the archive holds no 3D/3dmodel.model part")
    unpacked = sum(i.file_size for i in infos)  # zipfile never inflates a member past its stated size
    check_memory(unpacked * _XML_FACTOR, f"{p}: its {len(infos)} parts unpacked ({unpacked} bytes)",
                 hint="simplify the mesh", error=BadFileError)
    from lxml import etree

    objects: dict[str, list[str]] = {}
    items: list[str] = []
    with z.open(models[0]) as f:
        for _, el in etree.iterparse(f, events=("end",), tag=("{*}object", "{*}item"), resolve_entities=False,
                                     no_network=True, huge_tree=False, load_dtd=False):
            if el.tag.endswith("object"):
                objects[str(el.get("id"))] = [str(c.get("objectid")) for c in el.iter("{*}component")]
            else:
                items.append(str(el.get("objectid")))
            el.clear()  # the object's mesh elements: parsed again by trimesh, not kept twice
    copies: dict[str, int] = {}
    placed = sum(_placements(o, objects, copies) for o in items)
    if placed > MAX_INSTANCES:
        raise _Bad(f"its build places {placed if placed < 10 * MAX_INSTANCES else 'more than a million'} meshes "
                   f"(components within components); at most {MAX_INSTANCES} are read")


def _placements(root: str, objects: dict[str, list[str]], copies: dict[str, int]) -> int:
    """How many meshes object ``root`` places, through its components (memoised in ``copies``, capped just
    past MAX_INSTANCES so the numbers stay small); a cycle or nesting past MAX_DEPTH is refused."""
    cap = 10 * MAX_INSTANCES
    stack: list[tuple[str, bool]] = [(root, False)]
    on_path: set[str] = set()
    while stack:
        oid, done = stack.pop()
        if done:
            on_path.discard(oid)
            copies[oid] = min(cap, sum(copies[c] for c in objects[oid])) if objects.get(oid) else 1
            continue
        if oid in copies:
            continue
        if oid in on_path:
            raise _Bad(f"object {oid[:20]} contains itself through its components (a cycle)")
        if len(on_path) >= MAX_DEPTH:
            raise _Bad(f"components nest deeper than {MAX_DEPTH} levels")
        on_path.add(oid)
        stack.append((oid, True))
        stack.extend((c, False) for c in objects.get(oid, []) if c not in copies)
    return copies[root]
