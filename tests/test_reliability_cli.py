"""The CLI's contract on bad input: exit code 1 and exactly one stderr line ``ErrorName: message``, nothing
written where the command failed, for bad files, values and write faults across the subcommands."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from gan_core.checkpoint import save_checkpoint
from gan_core.cli import main
from gan_core.config import get_profile
from gan_core.models import Discriminator, Generator
from tests.core_data import boxes_npz
from tests.reliability_faults import file_size_limit, read_only_dir, stray_temps

P = get_profile("tiny16")


@pytest.fixture
def files(tmp_path):
    torch.manual_seed(0)
    ck = save_checkpoint(tmp_path / "m.pt", profile=P, models={"generator": Generator(P), "discriminator": Discriminator(P)})
    np.save(tmp_path / "nan.npy", np.full((16, 16, 16), np.nan, np.float32))
    np.save(tmp_path / "grid.npy", (np.random.default_rng(0).random((16, 16, 16)) > 0.5).astype(np.uint8))
    np.savez(tmp_path / "znan.npz", z=np.full((1, 32), np.nan, np.float32))
    np.savez(tmp_path / "zshort.npz", z=np.zeros((2, 31), np.float32))
    np.savez(tmp_path / "zok.npz", z=np.zeros((2, 32), np.float32))
    (tmp_path / "trunc.pt").write_bytes(ck.read_bytes()[: len(ck.read_bytes()) // 2])
    (tmp_path / "garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\xff" * 500)
    with h5py.File(tmp_path / "fill.h5", "w") as h5:
        h5.create_dataset("voxels", shape=(1, 2000, 2000, 2000), dtype="u1", chunks=(1, 64, 64, 64))
    (tmp_path / "empty.off").write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    boxes_npz(tmp_path / "data.npz", n=16)
    return tmp_path


def _run(argv, capfd):
    """capfd, not capsys: C libraries (VTK, HDF5) write straight to file descriptor 2."""
    code = main([str(a) for a in argv])
    err = capfd.readouterr().err
    return code, err


# (argv with {d} for the fixture directory, expected exact stderr line with {d})
CASES = {
    "export nan voxels": (["export", "{d}/nan.npy", "--out", "{d}/o.stl"],
                          "BadFileError: {d}/nan.npy: voxel values contain NaN or Inf"),
    "export huge grid": (["export", "{d}/fill.h5", "--out", "{d}/o.stl"],
                         "BadFileError: {d}/fill.h5: grids of 2000^3 are too large (at most 512^3); "
                         "resample the file first"),
    "export empty mesh": (["export", "{d}/empty.off", "--out", "{d}/o.stl"],
                          "BadFileError: {d}/empty.off: empty mesh: no faces (a point cloud or an empty file?)"),
    "sample truncated checkpoint": (["sample", "--checkpoint", "{d}/trunc.pt", "--out", "{d}/s.npz"], None),
    "sample seed too big": (["sample", "--checkpoint", "{d}/m.pt", "--seed", str(10**30), "--out", "{d}/s.npz"],
                            f"BadInputError: seed must be an integer in {-(2**63)}..{2**64 - 1}, got {10**30}"),
    "interpolate nan z": (["interpolate", "--checkpoint", "{d}/m.pt", "--a", "{d}/znan.npz", "--b", "0",
                           "--out", "{d}/i.npz"], "BadInputError: --a z contains NaN or Inf"),
    "interpolate bad index": (["interpolate", "--checkpoint", "{d}/m.pt", "--a", "{d}/zok.npz:x", "--b", "0",
                               "--out", "{d}/i.npz"],
                              "BadInputError: --a: index 'x' is not an integer (use FILE.npz:INDEX)"),
    "arithmetic short z": (["arithmetic", "--checkpoint", "{d}/m.pt", "--a", "0", "--b", "1", "--c",
                            "{d}/zshort.npz", "--out", "{d}/a.npz"],
                           "BadInputError: --c z must have shape (N, 32) or (32,), got (2, 31)"),
    "retrieve garbage bank": (["retrieve", "--bank", "{d}/garbage.h5", "--checkpoint", "{d}/m.pt", "--voxels",
                               "{d}/grid.npy"], None),
    "train lr overflow": (["train", "--data", "{d}/data.npz", "--out", "{d}/run", "--profile", "tiny16",
                           "--g-lr", "1e39"], "BadInputError: --g-lr must be a positive number below 3.4e38, got 1e+39"),
    "train on a nan set": (["train", "--data", "{d}/nan.npy", "--out", "{d}/run", "--profile", "tiny16"],
                           "BadFileError: {d}/nan.npy: unknown dataset format '.npy'; use .npz or .h5"),
    "pack truncated": (["pack", "--checkpoint", "{d}/trunc.pt", "--out", "{d}/p.pt"], None),
    "project onto a nan grid": (["project", "--checkpoint", "{d}/m.pt", "--voxels", "{d}/nan.npy", "--steps", "1",
                                 "--out", "{d}/p.npz"], "BadFileError: {d}/nan.npy: voxel values contain NaN or Inf"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_line_error_and_exit_1(files, capfd, name):
    argv, line = CASES[name]
    code, err = _run([a.format(d=files) for a in argv], capfd)
    assert code == 1
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    if line is None:
        assert err.startswith(("BadCheckpointError: ", "BadFileError: ")) and str(files) in err, err
    else:
        assert err.rstrip("\n") == line.format(d=files)
    assert not any(files.glob("[oisap].*")), "a failed command leaves no output file"
    assert stray_temps(files) == []


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply", ".glb", ".3mf", ".binvox", ".npz"])
def test_export_into_a_read_only_directory(files, tmp_path, capfd, suffix):
    """capfd, not capsys: VTK writes its error reports straight to file descriptor 2."""
    ro = read_only_dir(tmp_path)
    code = main(["export", str(files / "grid.npy"), "--out", str(ro / f"o{suffix}")])
    err = capfd.readouterr().err
    assert code == 1 and err.startswith(f"BadFileError: {ro / f'o{suffix}'}: cannot write (") and err.count("\n") == 1, err


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply", ".glb", ".gltf", ".3mf"])
def test_export_mesh_on_a_full_disk(files, capfd, suffix):
    with file_size_limit(2048):
        code = main(["export", str(files / "grid.npy"), "--out", str(files / f"o{suffix}")])
    err = capfd.readouterr().err
    assert code == 1 and err.startswith(f"BadFileError: {files / f'o{suffix}'}: cannot write") and err.count("\n") == 1, err
    assert not (files / f"o{suffix}").exists() and stray_temps(files) == []


def test_sample_on_a_full_disk(files, capfd):
    with file_size_limit(2048):
        code, err = _run(["sample", "--checkpoint", files / "m.pt", "--n", "64", "--seed", "0",
                          "--out", files / "s.npz", "--probabilities"], capfd)
    assert code == 1 and err == f"BadFileError: {files / 's.npz'}: cannot write (File too large)\n"
    assert not (files / "s.npz").exists() and stray_temps(files) == []


def test_train_on_a_full_disk_keeps_latest(files, capfd):
    def args(epochs):
        return ["train", "--data", files / "data.npz", "--out", files / "run", "--profile", "tiny16", "--batch-size",
                "8", "--epochs", epochs, "--precision", "fp32", "--no-channels-last", "--threads", "1", "--resume"]

    assert _run(args(1), capfd)[0] == 0
    good = (files / "run" / "latest.pt").read_bytes()
    with file_size_limit(len(good) // 2):
        code, err = _run(args(3), capfd)
    assert code == 1 and err.startswith("BadFileError: ") and "cannot write" in err and err.count("\n") == 1, err
    assert (files / "run" / "latest.pt").read_bytes() == good and stray_temps(files / "run") == []
