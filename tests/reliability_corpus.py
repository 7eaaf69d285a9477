"""The bad-input corpus: every kind of broken file or value gan_core takes, built in a few ms each.

Used by tests/test_reliability_files.py (one test per case) and benchmarks/reliability_report.py (the table).
A case builds its input in a directory, feeds it to the public call that reads it, and says what must
happen: ``"error"`` (a Gan3dError, of a given class, one line, naming the file where there is one) or
``"ok"`` (odd but valid input: an all-zero grid, a mesh that is not watertight, a 512^3 grid...).

Outcomes (:func:`run_case`): ``clean`` (the expected error), ``ok`` (accepted as expected), ``wrong``
(a Gan3dError where success was expected, or success where an error was), ``crash`` (any other exception:
a traceback for a user), ``slow`` (over the time budget: a hang for a user).
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from gan_core.errors import BadCheckpointError, BadFileError, BadInputError, Gan3dError, ProfileMismatchError

TIME_BUDGET_S = 10.0


@dataclass
class Case:
    category: str
    name: str
    make: Callable[[Path], Any]  # builds the input under a directory, returns what ``run`` takes
    run: Callable[[Any], object]
    expect: str = "error"  # or "ok"
    error: type[Exception] = Gan3dError
    names_file: bool = True  # the message starts with the file's path

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"


@dataclass
class Outcome:
    case: Case
    result: str  # clean, ok, wrong, crash, slow
    detail: str = ""
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def run_case(case: Case, directory: Path) -> Outcome:
    directory.mkdir(parents=True, exist_ok=True)
    arg = case.make(directory)
    t0 = time.perf_counter()
    try:
        case.run(arg)
    except Gan3dError as e:
        dt = time.perf_counter() - t0
        text = str(e)
        problems = []
        if case.expect != "error":
            problems.append("expected success")
        if not isinstance(e, case.error):
            problems.append(f"expected {case.error.__name__}")
        if "\n" in text or not text:
            problems.append("message is not one line")
        if case.names_file and isinstance(arg, Path) and str(arg) not in text:
            problems.append("message does not name the file")
        result = "wrong" if problems else "clean"
        return Outcome(case, "slow" if dt > TIME_BUDGET_S else result,
                       f"{type(e).__name__}: {text}" + (f"  [{'; '.join(problems)}]" if problems else ""), dt)
    except Exception as e:  # noqa: BLE001 - the point is to catch what escapes
        return Outcome(case, "crash", f"{type(e).__name__}: {e}".splitlines()[0][:300], time.perf_counter() - t0)
    dt = time.perf_counter() - t0
    if dt > TIME_BUDGET_S:
        return Outcome(case, "slow", f"took {dt:.1f} s", dt)
    return Outcome(case, "ok" if case.expect == "ok" else "wrong",
                   "accepted" if case.expect == "ok" else "accepted bad input without an error", dt)


# -- helpers -----------------------------------------------------------------------------------------------
def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return make


def _npy(name: str, arr: Any) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        np.save(d / name, np.asarray(arr), allow_pickle=True)
        return d / name
    return make


def _npz(name: str, **arrays: Any) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        np.savez(d / name, **{k: np.asarray(v) for k, v in arrays.items()})
        return d / name
    return make


def _h5(name: str, build: Callable[[h5py.File], None], userblock: int = 0) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        with h5py.File(d / name, "w", userblock_size=userblock) as h5:
            build(h5)
        return d / name
    return make


def _header_npy(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _zip(name: str, members: dict[str, bytes]) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        with zipfile.ZipFile(d / name, "w") as z:
            for k, v in members.items():
                z.writestr(k, v)
        return d / name
    return make


def _truncated(src: Callable[[Path], Path], name: str, keep: float) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        raw = src(d).read_bytes()
        (d / name).write_bytes(raw[: int(len(raw) * keep)])
        return d / name
    return make


MEMORY_ENV = "GAN3D_MEMORY_LIMIT_GB"
BOMB_SHAPE = (1024, 64, 64, 64)  # 256 MiB of zeros: deflated to ~260 kB


def _npz_bomb(name: str, member: str, shape: tuple[int, ...], dtype: str = "|u1",
              **others: Any) -> Callable[[Path], Path]:
    """A real zip bomb: ``member`` holds ``shape`` zeros, deflated (~1000:1) and written 1 MiB at a time,
    beside small valid arrays ``others``."""
    def make(d: Path) -> Path:
        with zipfile.ZipFile(d / name, "w", zipfile.ZIP_DEFLATED) as z:
            for k, v in others.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(v), allow_pickle=False)
                z.writestr(f"{k}.npy", buf.getvalue())
            with z.open(f"{member}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
                left, block = math.prod(shape) * np.dtype(dtype).itemsize, bytes(1 << 20)
                while left > 0:
                    f.write(block[:min(left, len(block))])
                    left -= len(block)
        return d / name
    return make


def _limited(run: Callable[[Any], object], gib: float = 1 / 16) -> Callable[[Any], object]:
    """``run`` under a memory limit of ``gib`` (64 MiB by default), so a bomb of a few hundred MB shows
    whether declared sizes are checked before inflating, without taking gigabytes from the machine."""
    def go(arg: Any) -> object:
        old = os.environ.get(MEMORY_ENV)
        os.environ[MEMORY_ENV] = str(gib)
        try:
            return run(arg)
        finally:
            if old is None:
                os.environ.pop(MEMORY_ENV, None)
            else:
                os.environ[MEMORY_ENV] = old
    return go


def _unwritten(name: str, shape: tuple[int, ...], chunks: tuple[int, ...], key: str = "voxels",
               **others: Any) -> Callable[[Path], Path]:
    """An HDF5 file whose dataset ``key`` declares ``shape`` (chunked) and was never written: all fill value."""
    def build(h: h5py.File) -> None:
        h.create_dataset(key, shape=shape, dtype="u1" if key == "voxels" else "i8", chunks=chunks)
        for k, v in others.items():
            h.create_dataset(k, data=v)
    return _h5(name, build)


def _grid(r: int = 16) -> np.ndarray:
    from gan_core.data.synthetic import chair

    return chair(r)


def _binvox(name: str, dims: str, runs: bytes) -> Callable[[Path], Path]:
    return _bytes(name, f"#binvox 1\ndim {dims}\ntranslate 0 0 0\nscale 1\ndata\n".encode() + runs)


def _off(name: str, text: str) -> Callable[[Path], Path]:
    return _bytes(name, text.encode())


TETRA_V = "0 0 0\n1 0 0\n0 1 0\n0 0 1\n"
TETRA_F = "3 0 2 1\n3 0 1 3\n0 3 2\n3 1 2 3\n".replace("\n0 3 2\n", "\n3 0 3 2\n")


def _voxel_cases() -> list[Case]:
    from gan_core.data.importers import load_voxels

    run = lambda p: load_voxels(p, 16)  # noqa: E731
    c = "voxel file"
    r = _grid()
    good_binvox = lambda d: __import__("gan_core.data.binvox", fromlist=["x"]).write_binvox(d / "g.binvox", r)  # noqa: E731
    good_npz = lambda d: __import__("gan_core.data.dataset", fromlist=["x"]).save_voxel_npz(d / "g.npz", r[None])  # noqa: E731
    cases = [
        Case(c, "empty npy", _bytes("empty.npy", b""), run),
        Case(c, "garbage npy", _bytes("garbage.npy", b"not numpy at all"), run),
        Case(c, "npz named npy", lambda d: (good_npz(d).rename(d / "x.npy"), d / "x.npy")[1], run),
        Case(c, "2d array", _npy("flat.npy", np.zeros((3, 4))), run),
        Case(c, "cuboid", _npy("cuboid.npy", np.zeros((4, 4, 5))), run),
        Case(c, "5d batch of 2 channels", _npy("b5.npy", np.zeros((2, 2, 4, 4, 4))), run),
        Case(c, "scalar", _npy("scalar.npy", np.float64(3)), run),
        Case(c, "nan float32", _npy("nan.npy", np.full((8, 8, 8), np.nan, np.float32)), run),
        Case(c, "inf float64", _npy("inf.npy", np.full((8, 8, 8), np.inf)), run),
        Case(c, "one nan in float16", _npy("h.npy", np.where(r > 0, np.float16(np.nan), np.float16(0))), run),
        Case(c, "strings", _npy("str.npy", np.full((4, 4, 4), "a")), run),
        Case(c, "complex", _npy("c.npy", np.zeros((4, 4, 4), complex)), run),
        Case(c, "datetime", _npy("t.npy", np.zeros((4, 4, 4), "datetime64[s]")), run),
        Case(c, "structured", _npy("rec.npy", np.zeros((4, 4, 4), [("a", "f4")])), run),
        Case(c, "pickled objects", _npy("obj.npy", np.array([None, {}], dtype=object)), run),
        Case(c, "pickled object grid", _npy("objg.npy", np.full((4, 4, 4), None, dtype=object)), run),
        Case(c, "stack without index", _npy("stack.npy", np.zeros((3, 8, 8, 8), np.uint8)), run),
        Case(c, "empty stack", _npy("none.npy", np.zeros((0, 8, 8, 8), np.uint8)), run),
        Case(c, "index out of range", _npy("one.npy", np.zeros((1, 8, 8, 8), np.uint8)),
             lambda p: load_voxels(p, 16, index=5), error=BadInputError, names_file=False),
        Case(c, "header claims 10^12 (npy)", _bytes("huge.npy", _header_npy((10_000,) * 3)), run),
        Case(c, "header claims 10^12 (npz)", _zip("huge.npz", {"voxels.npy": _header_npy((10_000,) * 3)}), run),
        Case(c, "header claims 600^3 (npz)", _zip("h600.npz", {"voxels.npy": _header_npy((1, 600, 600, 600))}), run),
        Case(c, "unwritten 1500^3 dataset (h5)", _h5("fill.h5", lambda h: h.create_dataset(
            "voxels", shape=(1, 1500, 1500, 1500), dtype="u1", chunks=(1, 64, 64, 64))), run),
        Case(c, "unwritten 1500^3 (mat v7.3)", _h5("fill.mat", lambda h: h.create_dataset(
            "instance", shape=(1500,) * 3, dtype="u1", chunks=(64, 64, 64)), userblock=512), run),
        Case(c, "npz without voxels", _npz("nov.npz", grid=r), run),
        Case(c, "npz with pickled voxels", _npz("pv.npz", voxels=np.array([None], dtype=object)), run),
        Case(c, "npz truncated", _truncated(good_npz, "t.npz", 0.6), run),
        Case(c, "npz member garbage", _zip("mg.npz", {"voxels.npy": b"\x93NUMPY garbage"}), run),
        Case(c, "zip of other things", _zip("other.npz", {"readme.txt": b"hello"}), run),
        Case(c, "h5 without voxels", _h5("nov.h5", lambda h: h.create_dataset("grid", data=r)), run),
        Case(c, "h5 voxels is a group", _h5("grp.h5", lambda h: h.create_group("voxels")), run),
        Case(c, "h5 voxels are strings", _h5("s.h5", lambda h: h.create_dataset(
            "voxels", data=np.array([b"a"] * 64, dtype=object).reshape(4, 4, 4), dtype=h5py.string_dtype())), run),
        Case(c, "h5 nan", _h5("nan.h5", lambda h: h.create_dataset("voxels", data=np.full((8, 8, 8), np.nan))), run),
        Case(c, "h5 garbage", _bytes("g.h5", b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4), run),
        Case(c, "mat garbage", _bytes("g.mat", b"MATLAB 5.0 MAT-file" + b"\x00" * 10), run),
        Case(c, "mat without 3d array", lambda d: _savemat(d / "n.mat", {"x": np.zeros((3, 3))}), run),
        Case(c, "mat with nan instance", lambda d: _savemat(d / "nan.mat", {"instance": np.full((8, 8, 8), np.nan)}), run),
        Case(c, "binvox no header", _bytes("a.binvox", b"\x00\x01" * 10), run),
        Case(c, "binvox bad dim", _binvox("b.binvox", "a b c", b"\x00\x08"), run),
        Case(c, "binvox non-cubic", _binvox("c.binvox", "2 2 3", b"\x00\x0c"), run),
        Case(c, "binvox dim 0", _binvox("z.binvox", "0 0 0", b""), run),
        Case(c, "binvox dim 10^5", _binvox("h.binvox", "100000 100000 100000", b"\x00\xff"), run),
        Case(c, "binvox runs too short", _binvox("s.binvox", "2 2 2", b"\x00\x07"), run),
        Case(c, "binvox runs too long", _binvox("l.binvox", "2 2 2", b"\x00\x09"), run),
        Case(c, "binvox value 2", _binvox("v.binvox", "2 2 2", b"\x02\x08"), run),
        Case(c, "binvox zero run", _binvox("r.binvox", "2 2 2", b"\x00\x00\x01\x08"), run),
        Case(c, "binvox odd bytes", _binvox("o.binvox", "2 2 2", b"\x00\x08\x01"), run),
        Case(c, "binvox no data line", _bytes("n.binvox", b"#binvox 1\ndim 2 2 2\n" * 10), run),
        Case(c, "binvox truncated", _truncated(good_binvox, "t.binvox", 0.7), run),
        Case(c, "unknown suffix", _bytes("x.vox", b"VOX "), run),
        Case(c, "no suffix", _bytes("voxels", b"\x93NUMPY"), run),
        Case(c, "a directory", lambda d: (d / "dir.npy").mkdir() or d / "dir.npy", run),
        Case(c, "missing file", lambda d: d / "missing.binvox", run),
        # declared sizes trusted, degenerate grids (issue 27)
        Case(c, "npz bomb: 256 MiB in 260 kB (64 MiB allowed)", _npz_bomb("bomb.npz", "voxels", BOMB_SHAPE),
             _limited(lambda p: load_voxels(p, 16, index=0))),
        Case(c, "unwritten 10^9 x 64^3 stack (h5), index 0", _unwritten("st.h5", (10**9, 64, 64, 64), (1, 64, 64, 64)),
             lambda p: load_voxels(p, 16, index=0)),
        Case(c, "1^3 grid", _npy("tiny.npy", np.ones((1, 1, 1), np.uint8)), run),
        Case(c, "4^3 grid (npz)", _npz("g4.npz", voxels=np.ones((1, 4, 4, 4), np.uint8)), run),
        Case(c, "7^3 grid (binvox)", _binvox("g7.binvox", "7 7 7", b"\x01\xff\x01\x58"), run),
        Case(c, "2^3 grid (mat)", lambda d: _savemat(d / "g2.mat", {"instance": np.ones((2, 2, 2), np.uint8)}), run),
        Case(c, "2^3 float grid (h5)", _h5("g2.h5", lambda h: h.create_dataset("voxels", data=np.ones((2, 2, 2)))),
             run),
        # odd but valid
        Case(c, "all-zero grid", _npy("zero.npy", np.zeros((16, 16, 16), np.uint8)), run, expect="ok"),
        Case(c, "all-one bool grid", _npy("one.npy", np.ones((8, 8, 8), bool)), run, expect="ok"),
        Case(c, "negative ints", _npy("neg.npy", -np.ones((16, 16, 16), np.int64)), run, expect="ok"),
        Case(c, "big-endian float", _npy("be.npy", r.astype(">f8")), run, expect="ok"),
        Case(c, "8^3 grid (the smallest)", _npy("g8.npy", np.ones((8, 8, 8), np.uint8)), run, expect="ok"),
        Case(c, "30^3 grid (3DShapeNets)", _npy("g30.npy", np.ones((30, 30, 30), np.uint8)), run, expect="ok"),
        Case(c, "(1, 1, R, R, R) batch", _npy("b.npy", r[None, None]), run, expect="ok"),
    ]
    return cases


def _savemat(path: Path, data: dict) -> Path:
    import scipy.io

    scipy.io.savemat(path, data)
    return path


def _mesh_cases() -> list[Case]:
    from gan_core.data.importers import load_voxels

    run = lambda p: load_voxels(p, 16)  # noqa: E731
    c = "mesh"
    import struct

    stl_head = b"\0" * 80
    return [
        Case(c, "empty OFF", _bytes("e.off", b""), run),
        Case(c, "empty OBJ", _bytes("e.obj", b""), run),
        Case(c, "empty STL", _bytes("e.stl", b""), run),
        Case(c, "empty PLY", _bytes("e.ply", b""), run),
        Case(c, "OFF with no faces", _off("nf.off", "OFF\n4 0 0\n" + TETRA_V), run),
        Case(c, "OBJ point cloud", _off("pc.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"), run),
        Case(c, "PLY vertices only", _off("v.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                                           "property float y\nproperty float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n"), run),
        Case(c, "OFF nan vertex", _off("nan.off", "OFF\n4 4 0\nnan 0 0\n1 0 0\n0 1 0\n0 0 1\n" + TETRA_F), run),
        Case(c, "OFF face index out of range", _off("ix.off", "OFF\n4 1 0\n" + TETRA_V + "3 0 1 9\n"), run),
        Case(c, "OFF negative counts", _off("neg.off", "OFF\n-4 -1 0\n"), run),
        Case(c, "OFF claims 10^12 faces", _off("big.off", "OFF\n4 1000000000000 0\n" + TETRA_V + TETRA_F), run),
        Case(c, "OFF counts not numbers", _off("nn.off", "OFF\nfour one zero\n"), run),
        Case(c, "OBJ face index 0", _off("z.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n"), run),
        Case(c, "OBJ face too far", _off("far.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 99\n"), run),
        Case(c, "OBJ short vertex", _off("sv.obj", "v 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"), run),
        Case(c, "OBJ binary garbage", _bytes("g.obj", bytes(range(256)) * 8), run),
        Case(c, "PLY claims 10^9 faces", _bytes("big.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 3\n"
                                           b"property float x\nproperty float y\nproperty float z\nelement face "
                                           b"1000000000\nproperty list uchar int vertex_indices\nend_header\n"
                                           + b"\0" * 36), run),
        Case(c, "PLY unknown type", _off("t.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty quad x\nend_header\n"), run),
        Case(c, "STL claims 10^9 triangles", _bytes("big.stl", stl_head + struct.pack("<I", 10**9) + b"\0" * 50), run),
        Case(c, "STL ASCII truncated", _off("t.stl", "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\n"
                                         "vertex 1 0 0\nendloop\nendfacet\nendsolid\n"), run),
        Case(c, "all vertices coincide", _off("pt.off", "OFF\n3 1 0\n1 1 1\n1 1 1\n1 1 1\n3 0 1 2\n"), run),

        # odd but valid: not watertight, zero thickness, tiny, disjoint, inverted
        Case(c, "single triangle (open, flat)", _off("tri.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"), run, expect="ok"),
        Case(c, "open box (no lid)", lambda d: _open_box(d / "box.obj"), run, expect="ok"),
        Case(c, "inverted tetrahedron", _off("inv.off", "OFF\n4 4 0\n" + TETRA_V + "3 0 1 2\n3 0 3 1\n3 0 2 3\n3 1 3 2\n"),
             run, expect="ok"),
        Case(c, "two disjoint tetrahedra", _off("two.off", "OFF\n8 8 0\n" + TETRA_V + "5 5 5\n6 5 5\n5 6 5\n5 5 6\n"
                                             + TETRA_F + "".join(f"3 {int(a) + 4} {int(b) + 4} {int(c_) + 4}\n" for _, a, b, c_ in
                                                                 (ln.split() for ln in TETRA_F.splitlines()))), run,
             expect="ok"),
        Case(c, "coordinates 1e308", _off("hugec.off", "OFF\n4 4 0\n-1e308 0 0\n1e308 0 0\n0 1 0\n0 0 1\n" + TETRA_F), run,
             expect="ok"),
        Case(c, "tiny extent 1e-30", _off("tiny.off", "OFF\n4 4 0\n0 0 0\n1e-30 0 0\n0 1e-30 0\n0 0 1e-30\n" + TETRA_F),
             run, expect="ok"),
    ]


# -- glTF / GLB and 3MF (read through trimesh, checked first: gan_core.data.scene_readers) ------------------
TETRA_POS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
TETRA_IDX = np.array([0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3], np.uint16)


def glb_bytes(header: dict, binary: bytes = b"") -> bytes:
    """A GLB file: ``header`` as its JSON chunk, ``binary`` as its BIN chunk (both padded to 4 bytes)."""
    import struct

    js = json.dumps(header).encode()
    js += b" " * (-len(js) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js
    if binary:
        binary += b"\0" * (-len(binary) % 4)
        body += struct.pack("<II", len(binary), 0x004E4942) + binary
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def tetra_gltf(nodes: list | None = None, *, pos: np.ndarray = TETRA_POS, idx: np.ndarray = TETRA_IDX,
               mode: int = 4, uri: str | None = None, **extra: Any) -> tuple[dict, bytes]:
    """A glTF header and its buffer holding one tetrahedron (mesh 0); ``nodes`` place it (default: once)."""
    binary = pos.tobytes() + idx.tobytes()
    buffer: dict[str, Any] = {"byteLength": len(binary)}
    if uri is not None:
        buffer["uri"] = uri
    nodes = [{"mesh": 0}] if nodes is None else nodes
    header = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}], "nodes": nodes,
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "mode": mode}]}],
        "buffers": [buffer],
        "bufferViews": [{"buffer": 0, "byteLength": pos.nbytes}, {"buffer": 0, "byteOffset": pos.nbytes,
                                                                   "byteLength": idx.nbytes}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": len(pos), "type": "VEC3"},
                      {"bufferView": 1, "componentType": 5123, "count": len(idx), "type": "SCALAR"}],
    }
    header.update(extra)
    return header, binary


def _glb(name: str, header: dict, binary: bytes = b"", keep: float = 1.0) -> Callable[[Path], Path]:
    data = glb_bytes(header, binary)
    return _bytes(name, data[: int(len(data) * keep)])


def _gltf_with_buffer(name: str, uri: str, write_bin: str | None = None) -> Callable[[Path], Path]:
    """A .gltf whose buffer lives at ``uri``; ``write_bin`` writes the real buffer there (relative to d)."""
    def make(d: Path) -> Path:
        header, binary = tetra_gltf(uri=uri)
        if write_bin:
            (d / write_bin).parent.mkdir(parents=True, exist_ok=True)
            (d / write_bin).write_bytes(binary)
        (d / name).write_text(json.dumps(header))
        return d / name
    return make


TETRA_3MF_MESH = ('<mesh><vertices><vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/>'
                  '<vertex x="0" y="0" z="1"/></vertices><triangles><triangle v1="0" v2="2" v3="1"/>'
                  '<triangle v1="0" v2="1" v3="3"/><triangle v1="0" v2="3" v3="2"/><triangle v1="1" v2="2" v3="3"/>'
                  '</triangles></mesh>')


def model_3mf(resources: str, build: str, doctype: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<model unit="millimeter" xml:lang="en-US" '
            f'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"><resources>{resources}</resources>'
            f'<build>{build}</build></model>').encode()


def _3mf(name: str, model: bytes | None, **others: bytes) -> Callable[[Path], Path]:
    members = dict(others)
    if model is not None:
        members["3D/3dmodel.model"] = model
    return _zip(name, members)


def _3mf_bomb(name: str, mib: int = 256) -> Callable[[Path], Path]:
    """A 3MF whose model part is ``mib`` MiB of spaces after a valid model, deflated ~1000:1."""
    def make(d: Path) -> Path:
        with zipfile.ZipFile(d / name, "w", zipfile.ZIP_DEFLATED) as z, \
                z.open("3D/3dmodel.model", "w", force_zip64=True) as f:
            f.write(model_3mf(f'<object id="1" type="model">{TETRA_3MF_MESH}</object>', '<item objectid="1"/>'))
            block = b" " * (1 << 20)
            for _ in range(mib):
                f.write(block)
        return d / name
    return make


def _scene_cases() -> list[Case]:
    from gan_core.data.importers import load_voxels

    run = lambda p: load_voxels(p, 16)  # noqa: E731
    c = "scene mesh"
    tetra, binary = tetra_gltf()
    one = f'<object id="1" type="model">{TETRA_3MF_MESH}</object>'
    doubling = one + "".join(f'<object id="{i}" type="model"><components><component objectid="{i - 1}"/>'
                             f'<component objectid="{i - 1}"/></components></object>' for i in range(2, 42))
    laughs = ('<!DOCTYPE model [<!ENTITY a "1234567890">' + "".join(
        f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(8)) + ']>')
    far_nodes = [{"children": [i + 1]} for i in range(4999)] + [{"mesh": 0}]
    many = [{"children": list(range(1, 200_001))}] + [{"mesh": 0}] * 200_000
    return [
        Case(c, "empty GLB", _bytes("e.glb", b""), run),
        Case(c, "GLB of random bytes", _bytes("r.glb", bytes(np.random.default_rng(0).integers(0, 256, 4096,
                                                                                             dtype=np.uint8))), run),
        Case(c, "GLB truncated (half)", _glb("t.glb", tetra, binary, keep=0.5), run),
        Case(c, "GLB truncated (last byte)", _glb("t1.glb", tetra, binary, keep=0.99), run),
        Case(c, "GLB JSON chunk not JSON", _bytes("j.glb", glb_bytes({})[:20] + b"{not json" + b" " * 3), run),
        Case(c, "GLB version 1", _bytes("v1.glb", b"glTF" + (1).to_bytes(4, "little") + (12).to_bytes(4, "little")), run),
        Case(c, "GLB accessor of 10^12 vertices, no data", _glb("big.glb", {**tetra, "accessors": [
            {"componentType": 5126, "count": 10**12, "type": "VEC3"}, tetra["accessors"][1]]}, binary), run),
        Case(c, "GLB buffer view past its buffer", _glb("bv.glb", {**tetra, "bufferViews": [
            {"buffer": 0, "byteLength": 10**6}, tetra["bufferViews"][1]]}, binary), run),
        Case(c, "GLB node cycle", _glb("cy.glb", {**tetra, "nodes": [{"mesh": 0, "children": [1]},
                                                                    {"children": [0]}]}, binary), run),
        Case(c, "GLB node with two parents", _glb("tp.glb", {**tetra, "scenes": [{"nodes": [0, 1]}], "nodes": [
            {"children": [2]}, {"children": [2]}, {"mesh": 0}]}, binary), run),
        Case(c, "GLB nodes 5000 deep", _glb("deep.glb", {**tetra, "nodes": far_nodes}, binary), run),
        Case(c, "GLB placing a mesh 200000 times", _glb("many.glb", {**tetra, "nodes": many}, binary), run),
        Case(c, "GLB Draco-compressed", _glb("draco.glb", {**tetra, "extensionsRequired":
                                                           ["KHR_draco_mesh_compression"]}, binary), run),
        Case(c, "GLB points only", _glb("pts.glb", tetra_gltf(mode=0)[0], binary), run),
        Case(c, "GLB NaN vertex", _glb("nan.glb", *tetra_gltf(pos=np.where(TETRA_POS == 1, np.nan, TETRA_POS)
                                                               .astype(np.float32))), run),
        Case(c, "GLB face index out of range", _glb("ix.glb", *tetra_gltf(idx=np.where(TETRA_IDX == 3, 99, TETRA_IDX)
                                                                           .astype(np.uint16))), run),
        Case(c, "glTF buffer /dev/zero", _gltf_with_buffer("z.gltf", "/dev/zero"), run),
        Case(c, "glTF buffer outside its folder", _gltf_with_buffer("o.gltf", "../o.bin", write_bin="o.bin"), run),
        Case(c, "glTF buffer a URL", _gltf_with_buffer("u.gltf", "https://example.com/b.bin"), run),
        Case(c, "glTF buffer missing", _gltf_with_buffer("m.gltf", "gone.bin"), run),
        Case(c, "glTF not JSON", _bytes("n.gltf", b"OFF\n4 4 0\n"), run),
        Case(c, "3MF not a zip", _bytes("n.3mf", b"PK\x03\x04 not really a zip" * 10), run),
        Case(c, "3MF a zip without a model", _3mf("nm.3mf", None, **{"readme.txt": b"hello"}), run),
        Case(c, "3MF truncated", lambda d: _truncate_file(_3mf("t.3mf", model_3mf(one, '<item objectid="1"/>'))(d),
                                                          0.6), run),
        Case(c, "3MF model not XML", _3mf("x.3mf", b"\x00\x01 binary"), run),
        Case(c, "3MF bomb: 256 MiB in 260 kB (64 MiB allowed)", _3mf_bomb("bomb.3mf"), _limited(run)),
        Case(c, "3MF components: 2^40 copies", _3mf("dbl.3mf", model_3mf(doubling, '<item objectid="41"/>')), run),
        Case(c, "3MF component cycle", _3mf("cyc.3mf", model_3mf(
            '<object id="1" type="model"><components><component objectid="2"/></components></object>'
            '<object id="2" type="model"><components><component objectid="1"/></components></object>',
            '<item objectid="1"/>')), run),
        Case(c, "3MF entity expansion (billion laughs)", _3mf("lol.3mf", model_3mf(
            one.replace('x="1"', 'x="&i;"'), '<item objectid="1"/>', doctype=laughs)), run),
        Case(c, "3MF external entity", _3mf("xxe.3mf", model_3mf(
            one.replace('x="1"', 'x="&e;"'), '<item objectid="1"/>',
            doctype='<!DOCTYPE model [<!ENTITY e SYSTEM "file:///etc/hostname">]>')), run),
        Case(c, "3MF without triangles", _3mf("nt.3mf", model_3mf('<object id="1" type="model"><mesh><vertices>'
                                                                  '<vertex x="0" y="0" z="0"/></vertices><triangles/>'
                                                                  '</mesh></object>', '<item objectid="1"/>')), run),

        # valid: placed twice with transforms, reused components
        Case(c, "GLB one mesh placed twice", _glb("two.glb", {**tetra, "scenes": [{"nodes": [0, 1]}], "nodes": [
            {"mesh": 0}, {"mesh": 0, "translation": [3, 0, 0]}]}, binary), run, expect="ok"),
        Case(c, "3MF components reused (4 copies)", _3mf("inst.3mf", model_3mf(
            one + '<object id="2" type="model"><components><component objectid="1"/>'
            '<component objectid="1" transform="1 0 0 0 1 0 0 0 1 2 0 0"/></components></object>',
            '<item objectid="2"/><item objectid="2" transform="1 0 0 0 1 0 0 0 1 0 3 0"/>')), run, expect="ok"),
    ]


def _truncate_file(path: Path, keep: float) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def _open_box(path: Path) -> Path:
    v = [(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)]
    quads = [(1, 3, 4, 2), (5, 6, 8, 7), (1, 2, 6, 5), (3, 7, 8, 4), (1, 5, 7, 3)]  # bottom + 4 sides; no lid
    path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in v) + "".join(f"f {a} {b} {c} {e}\n" for a, b, c, e in quads))
    return path


def _set_cases() -> list[Case]:
    from gan_core.data.dataset import VoxelDataset

    def run(p: Path) -> None:
        ds = VoxelDataset(p)
        ds.read(np.arange(len(ds)))
        ds.close()

    c = "voxel set"
    v = np.zeros((2, 16, 16, 16), np.uint8)
    return [
        Case(c, "labels wrong length", _npz("l.npz", voxels=v, labels=np.zeros(3, np.int64)), run),
        Case(c, "labels float", _npz("lf.npz", voxels=v, labels=np.zeros(2)), run),
        Case(c, "labels out of range", _npz("lr.npz", voxels=v, labels=np.array([0, 5]), classes=np.array(["a"])), run),
        Case(c, "classes 0-d", _npz("c0.npz", voxels=v, classes=np.array(5)), run),
        Case(c, "voxels 1-d", _npz("v1.npz", voxels=np.zeros(5)), run),
        Case(c, "voxels 0-d", _npz("v0.npz", voxels=np.zeros(())), run),
        Case(c, "voxels non-cubic", _npz("nc.npz", voxels=np.zeros((2, 16, 16, 8))), run),
        Case(c, "voxels strings", _npz("vs.npz", voxels=np.full((2, 4, 4, 4), "x")), run),
        Case(c, "voxels nan", _npz("vn.npz", voxels=np.full((2, 16, 16, 16), np.nan)), run),
        Case(c, "resolution 48", _npz("r48.npz", voxels=np.zeros((2, 48, 48, 48), np.uint8)), run,
             error=BadInputError, names_file=False),
        Case(c, "garbage npz", _bytes("g.npz", b"PK\x03\x04" + b"\0" * 40), run),
        Case(c, "h5 voxels a group", _h5("vg.h5", lambda h: h.create_group("voxels")), run),
        Case(c, "h5 voxels strings", _h5("vs.h5", lambda h: h.create_dataset(
            "voxels", data=np.array([b"a"] * 2 * 16**3, dtype=object).reshape(2, 16, 16, 16),
            dtype=h5py.string_dtype())), run),
        Case(c, "h5 labels a group", _h5("lg.h5", lambda h: (h.create_dataset("voxels", data=v), h.create_group("labels"))), run),
        Case(c, "h5 classes scalar", _h5("cs.h5", lambda h: (h.create_dataset("voxels", data=v), h.create_dataset("classes", data=5))), run),
        Case(c, "h5 voxels 3-d", _h5("v3.h5", lambda h: h.create_dataset("voxels", data=v[0])), run),
        Case(c, "h5 garbage", _bytes("g.h5", b"\x89HDF\r\n\x1a\n" + b"\xff" * 600), run),
        Case(c, "unknown suffix", _bytes("set.zip", b"PK"), run),
        # HDF5 held to the npz checks, declared sizes trusted, degenerate grids (issue 27)
        Case(c, "h5 voxels nan", _h5("vn.h5", lambda h: h.create_dataset(
            "voxels", data=np.full((2, 16, 16, 16), np.nan))), run),
        Case(c, "h5 voxels one inf (float16)", _h5("vi.h5", lambda h: h.create_dataset(
            "voxels", data=np.where(np.arange(2 * 16**3).reshape(2, 16, 16, 16) == 77, np.inf, 0).astype(np.float16))),
             run),
        Case(c, "h5 unwritten 1500^3 set", _unwritten("u1500.h5", (1, 1500, 1500, 1500), (1, 64, 64, 64)), run),
        Case(c, "h5 unwritten 10^12 shapes", _unwritten("u12.h5", (10**12, 16, 16, 16), (1, 16, 16, 16)), run),
        Case(c, "h5 labels declare 10^12", _unwritten("l12.h5", (10**12,), (4096,), key="labels", voxels=v), run),
        Case(c, "npz bomb in voxels (64 MiB allowed)", _npz_bomb("vb.npz", "voxels", BOMB_SHAPE), _limited(run)),
        Case(c, "npz bomb in labels (64 MiB allowed)", _npz_bomb("lb.npz", "labels", (2**25,), "<i8", voxels=v),
             _limited(run)),
        Case(c, "1^3 set", _npz("r1.npz", voxels=np.ones((2, 1, 1, 1), np.uint8)), run),
        Case(c, "2^3 h5 set resampled to 16^3", _h5("r2.h5", lambda h: h.create_dataset(
            "voxels", data=np.ones((2, 2, 2, 2), np.uint8))), lambda p: VoxelDataset(p, resolution=16).read([0])),
        Case(c, "no labels or classes", _npz("bare.npz", voxels=v), run, expect="ok"),
        Case(c, "float h5 set (control)", _h5("f.h5", lambda h: h.create_dataset("voxels", data=v.astype(np.float32))),
             run, expect="ok"),
    ]


# -- checkpoints and banks ---------------------------------------------------------------------------------
def _ckpt_dict(**over: Any) -> dict:
    import torch

    from gan_core.config import get_profile
    from gan_core.models import Generator

    p = get_profile("tiny16")
    torch.manual_seed(0)
    d = {"format": "gan3d-checkpoint", "version": 1, "kind": "gan", "profile": p.to_dict(), "state": {}, "rng": {},
         "data_hash": "", "meta": {}, "generator": Generator(p).state_dict()}
    d.update(over)
    return {k: v for k, v in d.items() if v is not _DROP}


_DROP = object()


def _torch_file(name: str, obj_fn: Callable[[], Any]) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        import torch

        torch.save(obj_fn(), d / name)
        return d / name
    return make


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("this ran code from a checkpoint",))


def _nan_weights() -> dict:
    d = _ckpt_dict()
    sd = {k: v.clone() for k, v in d["generator"].items()}
    next(v for v in sd.values() if v.is_floating_point()).view(-1)[0] = float("nan")
    d["generator"] = sd
    return d


def _checkpoint_cases() -> list[Case]:
    from gan_core.runtime import load_model

    def run(p: Path) -> None:
        load_model(p, device="cpu", precision="fp32").generate(np.zeros(32, np.float32))

    c = "checkpoint"
    good = _torch_file("good.pt", _ckpt_dict)
    return [
        Case(c, "empty file", _bytes("e.pt", b""), run, error=BadCheckpointError),
        Case(c, "garbage", _bytes("g.pt", bytes(range(256)) * 16), run, error=BadCheckpointError),
        Case(c, "truncated 10%", _truncated(good, "t10.pt", 0.1), run, error=BadCheckpointError),
        Case(c, "truncated 50%", _truncated(good, "t50.pt", 0.5), run, error=BadCheckpointError),
        Case(c, "truncated 99%", _truncated(good, "t99.pt", 0.99), run, error=BadCheckpointError),
        Case(c, "zip of other things", _zip("z.pt", {"a.txt": b"hi"}), run, error=BadCheckpointError),
        Case(c, "plain pickle", _bytes("p.pt", pickle.dumps({"format": "gan3d-checkpoint"})), run, error=BadCheckpointError),
        Case(c, "pickle that runs code", _torch_file("evil.pt", lambda: {"format": "gan3d-checkpoint", "x": _Evil()}),
             run, error=BadCheckpointError),
        Case(c, "foreign state dict", _torch_file("f.pt", lambda: {"weight": __import__("torch").zeros(3)}), run,
             error=BadCheckpointError),
        Case(c, "a bare tensor", _torch_file("tensor.pt", lambda: __import__("torch").zeros(3)), run, error=BadCheckpointError),
        Case(c, "newer version", _torch_file("v9.pt", lambda: _ckpt_dict(version=9)), run, error=BadCheckpointError),
        Case(c, "version is a string", _torch_file("vs.pt", lambda: _ckpt_dict(version="1")), run, error=BadCheckpointError),
        Case(c, "no profile", _torch_file("np.pt", lambda: _ckpt_dict(profile=_DROP)), run, error=BadCheckpointError),
        Case(c, "invalid profile", _torch_file("ip.pt", lambda: _ckpt_dict(profile={"name": 3})), run,
             error=BadCheckpointError),
        Case(c, "no weights", _torch_file("nw.pt", lambda: _ckpt_dict(generator=_DROP)), run, error=BadCheckpointError),
        Case(c, "weights an int", _torch_file("wi.pt", lambda: _ckpt_dict(generator=1)), run, error=BadCheckpointError),
        Case(c, "weights a list", _torch_file("wl.pt", lambda: _ckpt_dict(generator=[1])), run, error=BadCheckpointError),
        Case(c, "weight values ints", _torch_file("wv.pt", lambda: _ckpt_dict(generator={"net.0.weight": 3})), run,
             error=BadCheckpointError),
        Case(c, "meta a string", _torch_file("ms.pt", lambda: _ckpt_dict(meta="x")), run, error=BadCheckpointError),
        Case(c, "state a list", _torch_file("sl.pt", lambda: _ckpt_dict(state=[1])), run, error=BadCheckpointError),
        Case(c, "NaN weights", _torch_file("nan.pt", _nan_weights), run, error=BadCheckpointError),
        Case(c, "empty state dict", _torch_file("es.pt", lambda: _ckpt_dict(generator={})), run,
             error=ProfileMismatchError),
        Case(c, "weights of another profile", _torch_file("wp.pt", lambda: _ckpt_dict(
            profile=__import__("gan_core.config", fromlist=["x"]).get_profile("fast32").to_dict())), run,
             error=ProfileMismatchError),
        Case(c, "asked for another profile", good, lambda p: load_model(p, profile="fast32", device="cpu"),
             error=ProfileMismatchError),
        Case(c, "missing file", lambda d: d / "nothere.pt", run, error=BadCheckpointError),
        Case(c, "a directory", lambda d: (d / "dir.pt").mkdir() or d / "dir.pt", run, error=BadCheckpointError),
        Case(c, "valid (control)", good, run, expect="ok"),
    ]


def _bank(d: Path, name: str = "bank.h5") -> Path:
    from gan_core.features import FeatureBank

    rng = np.random.default_rng(0)
    return FeatureBank(profile="tiny16").fit({"paper": rng.random((6, 384)).astype(np.float32)},
                                             labels=np.zeros(6, np.int64), class_names=["shape"]).save(d / name)


def _edit_bank(name: str, edit: Callable[[h5py.File], None]) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = _bank(d, name)
        with h5py.File(p, "a") as h5:
            edit(h5)
        return p
    return make


def _bank_cases() -> list[Case]:
    from gan_core.features import FeatureBank

    run = FeatureBank.load
    c = "feature bank"
    return [
        Case(c, "empty file", _bytes("e.h5", b""), run, error=BadCheckpointError),
        Case(c, "garbage", _bytes("g.h5", bytes(range(256)) * 8), run, error=BadCheckpointError),
        Case(c, "truncated 50%", _truncated(_bank, "t.h5", 0.5), run, error=BadCheckpointError),
        Case(c, "truncated 90%", _truncated(_bank, "t9.h5", 0.9), run, error=BadCheckpointError),
        Case(c, "foreign HDF5", _h5("f.h5", lambda h: h.create_dataset("x", data=np.zeros(3))), run,
             error=BadCheckpointError),
        Case(c, "a checkpoint", _torch_file("ck.h5", _ckpt_dict), run, error=BadCheckpointError),
        Case(c, "newer version", _edit_bank("v.h5", lambda h: h.attrs.__setitem__("version", 99)), run,
             error=BadCheckpointError),
        Case(c, "version a string", _edit_bank("vs.h5", lambda h: h.attrs.__setitem__("version", "1")), run,
             error=BadCheckpointError),
        Case(c, "labels missing", _edit_bank("l.h5", lambda h: h.__delitem__("labels")), run, error=BadCheckpointError),
        Case(c, "features missing", _edit_bank("fm.h5", lambda h: h.__delitem__("features_paper")), run,
             error=BadCheckpointError),
        Case(c, "labels wrong length", _edit_bank("ll.h5", lambda h: (h.__delitem__("labels"), h.create_dataset(
            "labels", data=np.zeros(2, np.int64)))), run, error=BadCheckpointError),
        Case(c, "features NaN", _edit_bank("fn.h5", lambda h: h["features_paper"].__setitem__(
            (0, 0), np.nan)), run, error=BadCheckpointError),
        Case(c, "meta not JSON", _edit_bank("mj.h5", lambda h: h.attrs.__setitem__("meta", "{not json")), run,
             error=BadCheckpointError),
        Case(c, "attrs missing", _edit_bank("am.h5", lambda h: h.attrs.__delitem__("weights_hash")), run,
             error=BadCheckpointError),
        Case(c, "class names numbers", _edit_bank("cn.h5", lambda h: (h.__delitem__("class_names"), h.create_dataset(
            "class_names", data=np.array([7])))), run, expect="ok"),
        Case(c, "missing file", lambda d: d / "nothere.h5", run, error=BadFileError),
        Case(c, "another discriminator", _bank, lambda p: __import__("gan_core.runtime", fromlist=["x"]).load_bank(
            p, __import__("gan_core.runtime", fromlist=["x"]).load_model(profile="tiny16", device="cpu")),
             error=ProfileMismatchError, names_file=False),
        Case(c, "valid (control)", _bank, run, expect="ok"),
    ]


# -- z vectors ---------------------------------------------------------------------------------------------
def _z_cases() -> list[Case]:
    from gan_core.commands.interpolate import resolve_z

    def model():  # type: ignore[no-untyped-def]
        from gan_core.runtime import load_model

        return load_model(profile="tiny16", device="cpu", precision="fp32")

    holder: dict = {}

    def run(spec: Any) -> None:
        m = holder.setdefault("m", model())
        z = resolve_z(str(spec), m, "--a")
        m.generate(z)

    def zfile(name: str, **arrays: Any) -> Callable[[Path], Path]:
        return _npz(name, **arrays)

    c = "z vector (--a/--b)"
    return [
        Case(c, "npz without z", zfile("noz.npz", voxels=np.zeros(3)), run),
        Case(c, "z NaN", zfile("nan.npz", z=np.full((1, 32), np.nan)), run, error=BadInputError, names_file=False),
        Case(c, "z Inf", zfile("inf.npz", z=np.full((1, 32), -np.inf)), run, error=BadInputError, names_file=False),
        Case(c, "z too short", zfile("short.npz", z=np.zeros((1, 31))), run, error=BadInputError, names_file=False),
        Case(c, "z 3-d", zfile("3d.npz", z=np.zeros((1, 1, 32))), run, error=BadInputError, names_file=False),
        Case(c, "z strings", zfile("s.npz", z=np.full(32, "a")), run, error=BadInputError, names_file=False),
        Case(c, "z pickled objects", zfile("o.npz", z=np.array([None] * 32, dtype=object)), run),
        Case(c, "z float64 overflow", zfile("ovf.npz", z=np.full(32, 1e300)), run, error=BadInputError, names_file=False),
        Case(c, "not an npz", _bytes("x.npz", b"hello"), run),
        Case(c, "index out of range", lambda d: f"{zfile('one.npz', z=np.zeros((1, 32)))(d)}:5", run,
             error=BadInputError, names_file=False),
        Case(c, "index not a number", lambda d: f"{zfile('two.npz', z=np.zeros((2, 32)))(d)}:abc", run,
             error=BadInputError, names_file=False),
        Case(c, "negative index", lambda d: f"{zfile('neg.npz', z=np.zeros((2, 32)))(d)}:-1", run,
             error=BadInputError, names_file=False),
        Case(c, "missing file", lambda d: d / "nothere.npz", run, names_file=False),
        Case(c, "npz bomb in z (64 MiB allowed)", lambda d: f"{_npz_bomb('zb.npz', 'z', (2**21, 32), '<f4')(d)}:0",
             _limited(run), names_file=False),
        Case(c, "seed '--5'", lambda d: "--5", run, names_file=False),
        Case(c, "seed '²'", lambda d: "\u00b2", run, names_file=False),
        Case(c, "seed beyond 2^64", lambda d: "99999999999999999999999", run, error=BadInputError, names_file=False),
        Case(c, "seed -5", lambda d: "-5", run, expect="ok", names_file=False),
        Case(c, "z row 1 of 2", lambda d: f"{zfile('ok.npz', z=np.ones((2, 32)))(d)}:1", run, expect="ok",
             names_file=False),
    ]


# -- requests whose output cannot fit in memory ------------------------------------------------------------
def _request_cases() -> list[Case]:
    """Counts on the command line (safe to run before the fix too: each fails at once in the allocator)."""
    def cli(*argv: str) -> Callable[[Path], list[str]]:
        def make(d: Path) -> list[str]:
            ckpt = _torch_file("m.pt", _ckpt_dict)(d)
            return [a.format(ckpt=ckpt, d=d) for a in argv]
        return make

    def run(argv: list[str]) -> object:
        from gan_core.cli import build_parser

        args = build_parser().parse_args(argv)
        return args._run(args)

    c = "request size"
    return [
        Case(c, "sample --n 10^9", cli("sample", "--checkpoint", "{ckpt}", "--n", str(10**9), "--out", "{d}/s.npz"),
             run, error=BadInputError, names_file=False),
        Case(c, "sample --n 10^9 --probabilities", cli("sample", "--checkpoint", "{ckpt}", "--n", str(10**9),
                                                       "--probabilities", "--out", "{d}/s.npz"),
             run, error=BadInputError, names_file=False),
        Case(c, "interpolate --steps 10^10", cli("interpolate", "--checkpoint", "{ckpt}", "--a", "0", "--b", "1",
                                                 "--steps", str(10**10), "--out", "{d}/i.npz"),
             run, error=BadInputError, names_file=False),
        Case(c, "sample --n 4 (control)", cli("sample", "--checkpoint", "{ckpt}", "--n", "4", "--out", "{d}/s.npz"),
             run, expect="ok", names_file=False),
    ]


def all_cases() -> list[Case]:
    return (_voxel_cases() + _mesh_cases() + _scene_cases() + _set_cases() + _checkpoint_cases() + _bank_cases() + _z_cases()
            + _request_cases())


__all__ = ["Case", "Outcome", "TIME_BUDGET_S", "all_cases", "run_case", "json"]
