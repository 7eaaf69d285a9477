"""Mutation fuzzing of every reader: valid seed files, damaged by byte flips, truncation, insertion, deletion,
duplication and 'interesting' integers in their headers, fed to the public loaders.

An outcome is ``ok`` (loaded), ``clean`` (a one-line Gan3dError), ``wrong`` (either, but with a warning
printed beside it), ``crash`` (anything else) or ``slow`` (over :data:`SLOW_S`: a hang for a user). Used by tests/test_reliability_fuzz.py (hypothesis drives the
mutations and shrinks a failure to its smallest form) and by benchmarks/reliability_report.py.
"""

from __future__ import annotations

import struct
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gan_core.errors import Gan3dError

SLOW_S = 5.0
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**31, 10**9)
OPS = ("flip", "set", "truncate", "insert", "delete", "duplicate", "int32", "int64")

_HIDDEN_BY_DEFAULT = (ResourceWarning, DeprecationWarning, PendingDeprecationWarning, ImportWarning)
Op = tuple[str, float, int]  # (operation, position as a fraction of the length, parameter)


def mutate(data: bytes, ops: Sequence[Op]) -> bytes:
    """Apply mutations in order; positions are fractions so the same op list fits any file."""
    b = bytearray(data)
    for op, frac, arg in ops:
        n = len(b)
        pos = min(int(frac * n), max(n - 1, 0))
        if op == "flip" and n:
            b[pos] ^= 1 << (arg % 8)
        elif op == "set" and n:
            b[pos] = arg % 256
        elif op == "truncate":
            del b[pos:]
        elif op == "insert":
            b[pos:pos] = bytes((arg * 31 + i) % 256 for i in range(arg % 64 + 1))
        elif op == "delete":
            del b[pos:pos + arg % 64 + 1]
        elif op == "duplicate":
            b[pos:pos] = b[pos:pos + arg % 256 + 1]
        elif op in ("int32", "int64"):
            fmt = "<I" if op == "int32" else "<Q"
            b[pos:pos + struct.calcsize(fmt)] = struct.pack(fmt, INTERESTING[arg % len(INTERESTING)])
    return bytes(b)


# -- seeds -------------------------------------------------------------------------------------------------
def _grid() -> np.ndarray:
    from gan_core.data.synthetic import chair

    return chair(16)


def _mesh():  # type: ignore[no-untyped-def]
    import pyvista as pv

    return pv.Sphere(theta_resolution=6, phi_resolution=6)


def _save(path: Path, write: Callable[[Path], object]) -> bytes:
    write(path)
    return path.read_bytes()


def _off(path: Path) -> None:
    m = _mesh().triangulate()
    pts, faces = np.asarray(m.points), m.regular_faces
    path.write_text(f"OFF\n{len(pts)} {len(faces)} 0\n" + "".join(f"{x:.5f} {y:.5f} {z:.5f}\n" for x, y, z in pts)
                    + "".join(f"3 {a} {b} {c}\n" for a, b, c in faces))


def _scene_mesh(path: Path) -> None:
    from gan_core.mesh import export_mesh

    export_mesh(_mesh().triangulate(), path)


def _ckpt(path: Path) -> None:
    import torch

    from gan_core.checkpoint import save_checkpoint
    from gan_core.config import get_profile
    from gan_core.models import Generator

    torch.manual_seed(0)
    p = get_profile("tiny16")
    save_checkpoint(path, profile=p, models={"generator": Generator(p)})


def _bank(path: Path) -> None:
    from gan_core.features import FeatureBank

    rng = np.random.default_rng(0)
    FeatureBank(profile="tiny16").fit({"paper": rng.random((5, 384)).astype(np.float32)},
                                      labels=np.zeros(5, np.int64), class_names=["shape"]).save(path)


def _seed_builders() -> dict[str, tuple[str, Callable[[Path], object]]]:
    import h5py
    import scipy.io

    from gan_core.data.binvox import write_binvox
    from gan_core.data.dataset import save_voxel_npz, write_h5_dataset

    def h5_grid(p: Path) -> None:
        with h5py.File(p, "w") as h5:
            h5["voxels"] = _grid()[None]

    def mat73(p: Path) -> None:
        with h5py.File(p, "w", userblock_size=512) as h5:
            h5["instance"] = _grid()

    stack = np.stack([_grid(), _grid()[::-1]])
    return {  # kind: (suffix, writer)
        "binvox": (".binvox", lambda p: write_binvox(p, _grid())),
        "npy": (".npy", lambda p: np.save(p, _grid())),
        "npz": (".npz", lambda p: save_voxel_npz(p, _grid()[None])),
        "h5": (".h5", h5_grid),
        "mat": (".mat", lambda p: scipy.io.savemat(p, {"instance": _grid()}, do_compression=True)),
        "mat-raw": (".mat", lambda p: scipy.io.savemat(p, {"instance": _grid(), "label": "chair"})),
        "mat73": (".mat", mat73),
        "off": (".off", _off),
        "obj": (".obj", lambda p: _mesh().save(p)),
        "stl": (".stl", lambda p: _mesh().save(p)),
        "stl-ascii": (".stl", lambda p: _mesh().save(p, binary=False)),
        "ply": (".ply", lambda p: _mesh().save(p)),
        "ply-ascii": (".ply", lambda p: _mesh().save(p, binary=False)),
        "glb": (".glb", _scene_mesh),
        "gltf": (".gltf", _scene_mesh),
        "3mf": (".3mf", _scene_mesh),
        "set-npz": (".npz", lambda p: save_voxel_npz(p, stack, np.array([0, 1]), ["a", "b"])),
        "set-h5": (".h5", lambda p: write_h5_dataset(p, stack, np.array([0, 1]), ["a", "b"])),
        "checkpoint": (".pt", _ckpt),
        "bank": (".h5", _bank),
        "z-file": (".npz", lambda p: np.savez(p, z=np.zeros((2, 32), np.float32))),
    }


KINDS = sorted(_seed_builders())


def seeds(directory: Path) -> dict[str, tuple[str, bytes]]:
    """kind -> (suffix, bytes of a valid file)."""
    directory.mkdir(parents=True, exist_ok=True)
    return {k: (suffix, _save(directory / f"seed-{k}{suffix}", w)) for k, (suffix, w) in _seed_builders().items()}


# -- loaders -----------------------------------------------------------------------------------------------
_MODEL: dict[str, Any] = {}


def _tiny_model():  # type: ignore[no-untyped-def]
    if "m" not in _MODEL:
        from gan_core.runtime import load_model

        _MODEL["m"] = load_model(profile="tiny16", device="cpu", precision="fp32")
    return _MODEL["m"]


def load(kind: str, path: Path) -> None:
    """Read ``path`` the way gan3d would read a file of that kind."""
    if kind.startswith("set-"):
        from gan_core.data.dataset import VoxelDataset

        ds = VoxelDataset(path)
        try:
            ds.read(np.arange(len(ds)))
        finally:
            ds.close()
    elif kind == "checkpoint":
        from gan_core.runtime import load_model

        load_model(path, device="cpu", precision="fp32").generate(np.zeros(32, np.float32))
    elif kind == "bank":
        from gan_core.features import FeatureBank

        FeatureBank.load(path)
    elif kind == "z-file":
        from gan_core.commands.interpolate import resolve_z

        _tiny_model().generate(resolve_z(f"{path}:1", _tiny_model(), "--a"))
    else:
        from gan_core.data.importers import load_voxels

        load_voxels(path, 16)


def check(kind: str, data: bytes, path: Path) -> tuple[str, str]:
    """Write ``data`` to ``path`` and load it as ``kind``: (outcome, detail)."""
    path.write_bytes(data)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            load(kind, path)
            outcome, detail = "ok", ""
        except Gan3dError as e:
            text = str(e)
            outcome, detail = ("clean", text) if text and "\n" not in text else ("crash", f"multi-line message: {text!r}")
        except Exception as e:  # noqa: BLE001
            outcome, detail = "crash", f"{type(e).__name__}: {e}".splitlines()[0][:300]
    # Warnings Python shows by default are printed on the user's stderr beside our one line. (numpy leaves
    # the file of a bad zip to the garbage collector: a ResourceWarning, hidden by default.)
    shown = [w for w in caught if not issubclass(w.category, _HIDDEN_BY_DEFAULT)]
    if shown and outcome != "crash":
        outcome, detail = "wrong", f"warning: {shown[0].category.__name__}: {shown[0].message} ({detail})"
    dt = time.perf_counter() - t0
    if dt > SLOW_S and outcome != "crash":
        outcome, detail = "slow", f"{dt:.1f} s ({detail})"
    return outcome, detail


def random_ops(rng: np.random.Generator, max_ops: int = 6) -> list[Op]:
    return [(OPS[int(rng.integers(len(OPS)))], float(rng.random()), int(rng.integers(0, 2**16)))
            for _ in range(int(rng.integers(1, max_ops + 1)))]
