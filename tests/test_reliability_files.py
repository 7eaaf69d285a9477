"""Bad files and values: each is a one-line Gan3dError (never a traceback or a hang), odd but valid ones load.

Focused regressions first; the whole bad-input corpus (tests/reliability_corpus.py) at the end.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from gan_core.errors import BadCheckpointError, BadFileError, BadInputError


# -- voxel sets (VoxelDataset) -----------------------------------------------------------------------------
def _h5_set(path, build):
    with h5py.File(path, "w") as h5:
        build(h5)
    return path


V = np.zeros((2, 16, 16, 16), np.uint8)
MALFORMED_H5 = {
    "voxels a group": (lambda h: h.create_group("voxels"), "no 'voxels' dataset"),
    "voxels 3-d": (lambda h: h.create_dataset("voxels", data=V[0]), r"must be \(N, R, R, R\)"),
    "voxels strings": (lambda h: h.create_dataset("voxels", data=np.full((2, 16, 16, 16), b"a", dtype=object),
                                                  dtype=h5py.string_dtype()), "must be numeric"),
    "labels a group": (lambda h: (h.create_dataset("voxels", data=V), h.create_group("labels")), "not a group"),
    "classes a scalar": (lambda h: (h.create_dataset("voxels", data=V), h.create_dataset("classes", data=5)),
                         "list of names"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_H5))
def test_malformed_hdf5_sets_are_bad_file_errors(tmp_path, name):
    from gan_core.data.dataset import VoxelDataset

    build, message = MALFORMED_H5[name]
    path = _h5_set(tmp_path / "set.h5", build)
    with pytest.raises(BadFileError, match=message) as info:
        VoxelDataset(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def _same_set_in_both_layouts(d, voxels):
    """The one array as an npz set and as an HDF5 set, written as a user's tool would (not our writers,
    which refuse such values)."""
    np.savez(d / "s.npz", voxels=voxels)
    with h5py.File(d / "s.h5", "w") as h5:
        h5.create_dataset("voxels", data=voxels, chunks=(1,) + voxels.shape[1:])
    return d / "s.npz", d / "s.h5"


BAD_VALUES = {  # (voxels, the message both layouts give)
    "nan float64": (np.full((2, 16, 16, 16), np.nan), "voxel values contain NaN or Inf"),
    "one inf float16": (np.where(np.arange(2 * 16**3).reshape(2, 16, 16, 16) == 4097, np.inf, 0).astype(np.float16),
                        "voxel values contain NaN or Inf"),
    "1^3 grids": (np.ones((2, 1, 1, 1), np.uint8), r"grids of 1\^3 are too small to hold a shape \(at least 8\^3\)"),
    "7^3 grids": (np.ones((2, 7, 7, 7), np.uint8), r"grids of 7\^3 are too small"),
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_hdf5_sets_are_held_to_the_npz_checks(tmp_path, name):
    """Issue 27, groups 1 and 3: float voxels with NaN or Inf, and grids too small to hold a shape, are refused
    when a set is opened, with the same one-line message for both layouts, before anything is trained on."""
    from gan_core.data.dataset import VoxelDataset

    voxels, message = BAD_VALUES[name]
    for path in _same_set_in_both_layouts(tmp_path, voxels):
        with pytest.raises(BadFileError, match=message) as info:
            VoxelDataset(path, resolution=16)  # asked for 16^3: a small grid is refused, not resampled up
        assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_float_sets_threshold_alike_in_both_layouts(tmp_path):
    from gan_core.data.dataset import VoxelDataset

    probs = np.random.default_rng(0).random((3, 16, 16, 16)).astype(np.float32)
    grids = [VoxelDataset(p).read([0, 1, 2]) for p in _same_set_in_both_layouts(tmp_path, probs)]
    assert np.array_equal(grids[0], grids[1]) and np.array_equal(grids[0], (probs > 0.5).astype(np.uint8))


@pytest.mark.parametrize("shape, chunks, message", [
    ((1, 1500, 1500, 1500), (1, 64, 64, 64), r"grids of 1500\^3 are too large \(at most 512\^3\)"),
    ((10**12, 16, 16, 16), (1, 16, 16, 16), r"'voxels' declares shape \(1000000000000, 16, 16, 16\) but its data "
                                              r"was never written \(an unfinished or damaged file\)"),
    ((10**6, 64, 64, 64), (1, 64, 64, 64), "never written"),
])
def test_an_unwritten_hdf5_set_is_refused_before_allocating(tmp_path, shape, chunks, message):
    """Issue 27, group 1: a ~2 kB file declaring terabytes (chunked, never written) fails in one line when it is
    opened, with no allocation: before, the reader tried to allocate it and died with a traceback."""
    import tracemalloc

    from gan_core.data.dataset import VoxelDataset
    from gan_core.data.importers import load_voxels

    path = tmp_path / "fill.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("voxels", shape=shape, dtype="u1", chunks=chunks)
    assert path.stat().st_size < 10_000
    tracemalloc.start()
    try:
        for read in (lambda: VoxelDataset(path).read([0]), lambda: load_voxels(path, 16, index=0)):
            with pytest.raises(BadFileError, match=message) as info:
                read()
            assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()


def test_partly_written_hdf5_set_is_refused(tmp_path):
    from gan_core.data.dataset import VoxelDataset

    with h5py.File(tmp_path / "part.h5", "w") as h5:
        h5.create_dataset("voxels", shape=(4, 16, 16, 16), dtype="u1", chunks=(1, 16, 16, 16))[:2] = 1
    with pytest.raises(BadFileError, match=r"only 2 of its 4 chunks written"):
        VoxelDataset(tmp_path / "part.h5")


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5", ".mat", ".binvox"])
def test_grids_below_8_cubed_are_refused_not_resampled(tmp_path, suffix):
    """Issue 27, group 3: a 1^3 to 7^3 grid cannot carry a shape; every format refuses it in one line
    instead of silently resampling it to the size asked for. 8^3 is the smallest accepted."""
    import scipy.io

    from gan_core.data.binvox import write_binvox
    from gan_core.data.importers import load_voxels

    def save(r: int):
        g, path = np.ones((r, r, r), np.uint8), tmp_path / f"g{r}{suffix}"
        if suffix == ".npy":
            np.save(path, g)
        elif suffix == ".npz":
            np.savez(path, voxels=g[None])
        elif suffix == ".h5":
            with h5py.File(path, "w") as h5:
                h5["voxels"] = g[None]
        elif suffix == ".mat":
            scipy.io.savemat(path, {"instance": g})
        else:
            write_binvox(path, g)
        return path

    for r in (1, 2, 7):
        with pytest.raises(BadFileError, match=rf"grids of {r}\^3 are too small to hold a shape") as info:
            load_voxels(save(r), 32, index=0 if suffix in (".npz", ".h5") else None)
        assert str(info.value).startswith(str(tmp_path)) and "\n" not in str(info.value)
    assert load_voxels(save(8), 32, index=0 if suffix in (".npz", ".h5") else None).shape == (32, 32, 32)


def test_writers_refuse_what_readers_refuse(tmp_path):
    from gan_core.data.dataset import save_voxel_npz, write_h5_dataset

    for write in (lambda: save_voxel_npz(tmp_path / "a.npz", np.ones((2, 4, 4, 4))),
                  lambda: write_h5_dataset(tmp_path / "a.h5", np.ones((2, 4, 4, 4)))):
        with pytest.raises(BadInputError, match=r"grids of 4\^3 are too small"):
            write()
    assert list(tmp_path.iterdir()) == []


def test_npz_set_with_scalar_classes(tmp_path):
    from gan_core.data.dataset import VoxelDataset

    np.savez(tmp_path / "s.npz", voxels=V, classes=np.array("chair"))
    with pytest.raises(BadFileError, match="'classes' must be a list of names"):
        VoxelDataset(tmp_path / "s.npz")


# -- z vectors given to --a / --b / --c ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model():
    from gan_core.runtime import load_model

    return load_model(profile="tiny16", device="cpu", precision="fp32")


@pytest.mark.parametrize("spec, error, message", [
    ("{f}:abc", BadInputError, r"--a: index 'abc' is not an integer"),
    ("{f}:1.5", BadInputError, "is not an integer"),
    ("--5", BadFileError, "no such file"),
    ("\u00b2", BadFileError, "no such file"),
    ("99999999999999999999999", BadInputError, "seed must be an integer"),
])
def test_bad_z_specs(tmp_path, tiny_model, spec, error, message):
    from gan_core.commands.interpolate import resolve_z

    np.savez(tmp_path / "z.npz", z=np.zeros((2, 32), np.float32))
    with pytest.raises(error, match=message) as info:
        resolve_z(spec.format(f=tmp_path / "z.npz"), tiny_model, "--a")
    assert "\n" not in str(info.value)


def test_z_file_reason_is_given(tmp_path, tiny_model):
    from gan_core.commands.interpolate import resolve_z

    np.savez(tmp_path / "o.npz", z=np.array([None] * 32, dtype=object))
    with pytest.raises(BadFileError, match="Object arrays cannot be loaded when allow_pickle=False"):
        resolve_z(str(tmp_path / "o.npz"), tiny_model, "--a")


# -- meshes near the limits of float64 ---------------------------------------------------------------------
def test_mesh_coordinates_near_the_float_limit_voxelise_like_unit_ones():
    import warnings

    from gan_core.data.voxelize import voxelize_mesh

    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float) - 0.5
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    unit = voxelize_mesh(v, f, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'overflow encountered' on the user's stderr
        huge = voxelize_mesh(v * 2 * 1e308, f, 16)  # coords ±1e308: span overflows
    assert unit.sum() > 0 and np.array_equal(unit, huge)


# -- checkpoints -------------------------------------------------------------------------------------------
def _crafted(**over):
    from gan_core.config import get_profile
    from gan_core.models import Generator

    p = get_profile("tiny16")
    ck = {"format": "gan3d-checkpoint", "version": 1, "kind": "gan", "profile": p.to_dict(), "state": {},
          "rng": {}, "data_hash": "", "meta": {}, "generator": Generator(p).state_dict()}
    ck.update(over)
    return ck


def _nan_generator():
    ck = _crafted()
    ck["generator"] = {k: v.clone() for k, v in ck["generator"].items()}
    ck["generator"]["net.0.weight"].view(-1)[0] = float("inf")
    return ck


class _Code:
    def __reduce__(self):
        return (print, ("code ran",))


CRAFTED = {
    "weights an int": (lambda: _crafted(generator=1), "not a state dict of named tensors"),
    "weights a list": (lambda: _crafted(generator=[torch.zeros(1)]), "not a state dict of named tensors"),
    "weight values ints": (lambda: _crafted(generator={"net.0.weight": 3}), "not a state dict of named tensors"),
    "meta a string": (lambda: _crafted(meta="x"), "'meta' must be a dict"),
    "state a list": (lambda: _crafted(state=[1]), "'state' must be a dict"),
    "optimizers a tensor": (lambda: _crafted(optimizers=torch.zeros(1)), "'optimizers' must be a dict"),
    "data_hash a number": (lambda: _crafted(data_hash=5), "'data_hash' must be a string"),
    "version a string": (lambda: _crafted(version="1"), "invalid checkpoint version '1'"),
    "version 0": (lambda: _crafted(version=0), "invalid checkpoint version 0"),
    "Inf weights": (_nan_generator, "generator weights contain NaN or Inf"),
    "code in a pickle": (lambda: {"format": "gan3d-checkpoint", "x": _Code()}, "could run code"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_checkpoints_are_refused_cleanly(tmp_path, name, capfd):
    from gan_core.runtime import load_model

    make, message = CRAFTED[name]
    torch.save(make(), tmp_path / "c.pt")
    with pytest.raises(BadCheckpointError, match=message) as info:
        load_model(tmp_path / "c.pt", device="cpu")
    assert str(info.value).startswith(str(tmp_path / "c.pt")) and "\n" not in str(info.value)
    assert "code ran" not in capfd.readouterr().out


def test_a_directory_is_not_a_checkpoint(tmp_path):
    from gan_core.checkpoint import load_checkpoint

    (tmp_path / "run.pt").mkdir()
    with pytest.raises(BadCheckpointError, match="run.pt: not a file"):
        load_checkpoint(tmp_path / "run.pt")


# -- feature banks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("version, message", [("1", "invalid feature bank version '1'"), (0, "invalid"),
                                              (99, "version 99 is newer")])
def test_bank_versions(tmp_path, version, message):
    from gan_core.features import FeatureBank

    path = FeatureBank(profile="tiny16").fit({"paper": np.ones((3, 384), np.float32)}, labels=np.zeros(3, np.int64),
                                             class_names=["shape"]).save(tmp_path / "b.h5")
    with h5py.File(path, "a") as h5:
        h5.attrs["version"] = version
    with pytest.raises(BadCheckpointError, match=message):
        FeatureBank.load(path)


# -- the whole corpus --------------------------------------------------------------------------------------
from tests.reliability_corpus import all_cases, run_case  # noqa: E402

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_corpus(case, tmp_path, capfd, recwarn):
    """Every case ends in the expected clean error (one line, naming the file) or is accepted, within the
    time budget; nothing else escapes, and the library prints (or warns) nothing of its own."""
    outcome = run_case(case, tmp_path)
    assert outcome.result in ("clean", "ok"), f"{outcome.result}: {outcome.detail}"
    assert capfd.readouterr().err == "", "no library noise on stderr"
    assert [str(w.message) for w in recwarn if "gan_core" in w.filename or "torch" in w.filename] == []


# -- HDF5 global heaps -------------------------------------------------------------------------------------
def test_heap_check_passes_valid_files_and_refuses_damaged_heaps(tmp_path):
    import struct

    from gan_core.data.dataset import write_h5_dataset
    from gan_core.guarded_h5 import check_hdf5_heaps

    write_h5_dataset(tmp_path / "s.h5", np.zeros((3, 8, 8, 8), np.uint8), np.array([0, 1, 2]), ["a", "bb", "ccc"])
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        h5.attrs["name"] = "x" * 5000  # a heap larger than the 4096-byte minimum collection
        h5.attrs["empty"] = ""
    for name in ("s.h5", "a.h5"):
        check_hdf5_heaps(tmp_path / name)
    raw = bytearray((tmp_path / "s.h5").read_bytes())
    pos = raw.find(b"GCOL")
    for offset, value, what in [(8, 1 << 40, "claims"), (16 + 8, 1 << 40, "object"), (16, 0, "free space")]:
        bad = bytearray(raw)
        bad[pos + offset:pos + offset + (2 if value == 0 else 8)] = (
            b"\0\0" if value == 0 else struct.pack("<Q", value))
        (tmp_path / "bad.h5").write_bytes(bytes(bad))
        with pytest.raises(BadFileError, match=f"damaged HDF5 file .*{what}"):
            check_hdf5_heaps(tmp_path / "bad.h5")


# -- MATLAB v5 files ---------------------------------------------------------------------------------------
# A fuzzed 295-byte .mat (a compressed variable whose zlib stream stops 3.6 kB short of its tag's size, then
# garbage) on which scipy.io.loadmat crashed the process with a segmentation fault.
SEGFAULT_MAT = (
    "TUFUTEFCIDUuMCBNQVQtZmlsZSBQbGF0Zm9ybTogcG9zaXgsIENyZWF0ZWQgb246IEZyaSBOb3YgMjcgMTY6MzY6MDQgMjAyNgAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSU0PAAAAcQAAAHic42NgYHAQYGBgA9Ic"
    "QMzJAAGsQMwDxAJIGAQYoeqEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9"
    "vr/AMvOKSxLzklOZGJAkSQOMGIyBBfV2z6j/6WsfITDqf3TG8LKPEBj1PzpjeNlHCNDd/3AwOPkjDYz6f9T/o/4f9f+o/w=="
)


def test_a_mat_file_that_crashed_scipy_is_a_clean_error(tmp_path):
    import base64
    import subprocess
    import sys

    from tests.reliability_train import ROOT

    path = tmp_path / "crash.mat"
    path.write_bytes(base64.b64decode(SEGFAULT_MAT))
    code = ("import sys\nfrom gan_core.data.importers import load_voxels\nfrom gan_core.errors import Gan3dError\n"
            "try:\n    load_voxels(sys.argv[1], 16)\nexcept Gan3dError as e:\n    print(f'{type(e).__name__}: {e}')\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"crashed with {out.returncode}: {out.stderr[-500:]}"
    assert out.stdout.startswith(f"BadFileError: {path}: not a readable MATLAB file (damaged: compressed variable "
                                 "holds 517 of the 4160 bytes"), out.stdout


def test_mat5_check_passes_what_scipy_writes(tmp_path):
    import scipy.io

    from gan_core.data.mat5 import check_mat5

    rich = {"instance": np.ones((30, 30, 30), np.uint8), "m": np.eye(3), "s": "text",
            "cell": np.array([np.zeros(3), "x"], dtype=object), "st": {"a": 1, "b": np.eye(2)}}
    for i, kw in enumerate([{}, {"do_compression": True}, {"format": "4", "mdict": {"instance": np.ones((3, 3))}}]):
        path = tmp_path / f"m{i}.mat"
        scipy.io.savemat(path, **{"mdict": rich, **kw})
        check_mat5(path)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_binary_stl_with_signalling_nans_warns_nothing(tmp_path):
    """Found by fuzzing: float32 -> float64 of a signalling NaN printed 'RuntimeWarning: invalid value
    encountered in cast' on the user's stderr before the one-line error."""
    import struct

    from gan_core.data.importers import load_voxels

    nan = b"\x01\x00\x80\x7f"  # a signalling NaN (float32)
    tri = b"\0" * 12 + nan * 9 + b"\0\0"
    (tmp_path / "n.stl").write_bytes(b"\0" * 80 + struct.pack("<I", 1) + tri)
    with pytest.raises(BadFileError, match="NaN or Inf"):
        load_voxels(tmp_path / "n.stl", 16)
