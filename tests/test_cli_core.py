"""gan3d train / sample / interpolate / arithmetic / project end to end, and their one-line errors."""

import json

import numpy as np
import pytest

from gan_core.checkpoint import save_checkpoint
from gan_core.cli import main
from gan_core.config import get_profile
from gan_core.models import Discriminator, Generator
from tests.cli_run import last_json
from tests.core_data import boxes_npz


@pytest.fixture
def ckpt(tmp_path):
    p = get_profile("tiny16")
    return str(save_checkpoint(tmp_path / "m.pt", profile=p,
                               models={"generator": Generator(p), "discriminator": Discriminator(p)}))


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "sample", "interpolate", "arithmetic", "project", "bench"):
        assert cmd in out


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_train_then_resume_then_sample(tmp_path, capsys):
    data = boxes_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--profile", "tiny16", "--batch-size", "8", "--out", str(out),
            "--precision", "fp32"]
    assert main(args + ["--epochs", "1"]) == 0
    assert last_json(capsys.readouterr().out)["epoch"] == 1
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    res = last_json(capsys.readouterr().out)
    assert res["epoch"] == 2 and res["step"] == 6
    assert main(["sample", "--checkpoint", str(out / "latest.pt"), "--n", "3", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["voxels"].shape == (3, 16, 16, 16) and f["voxels"].dtype == np.uint8 and f["z"].shape == (3, 32)


def test_train_dry_run_prints_config(tmp_path, capsys):
    data = boxes_npz(tmp_path / "d.npz")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)  # the default recipe, fast: stable's settings at batch 16
    assert cfg["config"]["recipe"] == "fast" and cfg["profile"]["batch_size"] == 16
    assert cfg["profile"]["g_lr"] == 1e-3 and cfg["profile"]["d_lr"] == 1e-4 and cfg["config"]["label_smoothing"] == 0.1
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--dry-run", "--recipe", "paper"]) == 0
    cfg = json.loads(capsys.readouterr().out)  # the paper's
    assert cfg["profile"]["g_lr"] == 0.0025 and cfg["profile"]["d_lr"] == 1e-5 and cfg["profile"]["beta1"] == 0.5
    assert cfg["profile"]["d_acc_threshold"] == 0.8 and cfg["config"]["label_smoothing"] == 0.0
    assert not (tmp_path / "r").exists()


def test_sample_is_reproducible(ckpt, tmp_path):
    for name in ("a", "b"):
        assert main(["sample", "--checkpoint", ckpt, "--n", "2", "--seed", "5", "--out", str(tmp_path / f"{name}.npz"),
                     "--precision", "fp32"]) == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert np.array_equal(a["z"], b["z"]) and np.array_equal(a["voxels"], b["voxels"])


def test_interpolate_and_arithmetic(ckpt, tmp_path):
    assert main(["sample", "--checkpoint", ckpt, "--n", "2", "--out", str(tmp_path / "s.npz")]) == 0
    assert main(["interpolate", "--checkpoint", ckpt, "--a", "0", "--b", f"{tmp_path / 's.npz'}:1", "--steps", "4",
                 "--mode", "lerp", "--out", str(tmp_path / "p.npz")]) == 0
    with np.load(tmp_path / "p.npz") as f, np.load(tmp_path / "s.npz") as s:
        assert f["voxels"].shape == (4, 16, 16, 16)
        assert np.allclose(f["z"][-1], s["z"][1]) and np.allclose(f["t"], [0, 1 / 3, 2 / 3, 1])
    assert main(["arithmetic", "--checkpoint", ckpt, "--a", "1", "--b", "2", "--c", "3", "--weights", "1,0.5,1",
                 "--raw-sum", "--out", str(tmp_path / "r.npz")]) == 0
    with np.load(tmp_path / "r.npz") as f:
        z = f["z"]
        assert np.allclose(z[3], z[0] - 0.5 * z[1] + z[2], atol=1e-5)


@pytest.mark.parametrize("argv, line", [
    (["sample", "--checkpoint", "missing.pt", "--n", "2", "--out", "x.npz"], "BadFileError: --checkpoint missing.pt: no such file"),
    (["train", "--data", "nope.npz", "--out", "r"], "BadFileError: --data nope.npz: no such file"),
    (["interpolate", "--checkpoint", "{ckpt}", "--a", "0", "--b", "nofile.npz", "--out", "x.npz"],
     "BadFileError: --b nofile.npz: no such file (give a seed or FILE.npz[:INDEX])"),
    (["arithmetic", "--checkpoint", "{ckpt}", "--a", "0", "--b", "1", "--c", "2", "--weights", "1,x", "--out", "x.npz"],
     "BadInputError: --weights must be three numbers like 1,1,1, got '1,x'"),
    (["sample", "--checkpoint", "{ckpt}", "--n", "0", "--out", "x.npz"], "BadInputError: --n must be >= 1, got 0"),
])
def test_errors_are_one_line(argv, line, ckpt, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([a.replace("{ckpt}", ckpt) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err == line


def test_train_refuses_unknown_class(tmp_path, capsys):
    data = boxes_npz(tmp_path / "d.npz")
    assert main(["train", "--data", str(data), "--classes", "sofa", "--profile", "tiny16", "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.strip() == "BadInputError: unknown class 'sofa' in d.npz; known: slab, column"


def test_project_command(ckpt, tmp_path, capsys):
    vox = np.zeros((16, 16, 16), np.uint8)
    vox[3:13, 3:13, 1:4] = 1
    np.save(tmp_path / "shape.npy", vox)
    assert main(["project", "--checkpoint", ckpt, "--voxels", str(tmp_path / "shape.npy"), "--steps", "3",
                 "--restarts", "2", "--out", str(tmp_path / "z.npz")]) == 0
    res = last_json(capsys.readouterr().out)
    assert 0 <= res["iou"] <= 1
    with np.load(tmp_path / "z.npz") as f:
        assert f["z"].shape == (1, 32)


def test_pack_keeps_weights_and_drops_training_state(tmp_path, capsys):
    data = boxes_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--profile", "tiny16", "--batch-size", "8", "--epochs", "1",
                 "--out", str(out)]) == 0
    assert main(["pack", "--checkpoint", str(out / "latest.pt"), "--out", str(tmp_path / "p.pt")]) == 0
    from gan_core.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "p.pt")
    assert "optimizers" not in ck and ck["generator"]["net.0.weight"].dtype.is_floating_point
    assert (tmp_path / "p.pt").stat().st_size < 0.4 * (out / "latest.pt").stat().st_size
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tmp_path / "p.pt"), "--n", "2", "--out", str(tmp_path / "s.npz")]) == 0
    assert main(["pack", "--checkpoint", str(out / "latest.pt"), "--parts", "decoder", "--out", str(tmp_path / "q.pt")]) == 1
    assert "unknown network 'decoder'" in capsys.readouterr().err


def test_save_voxel_npz_accepts_numpy_class_arrays(tmp_path):
    from gan_core.data.dataset import save_voxel_npz

    save_voxel_npz(tmp_path / "a.npz", np.zeros((2, 8, 8, 8), np.uint8), np.array([0, 1]), np.array(["x", "y"]))
    with np.load(tmp_path / "a.npz") as f:
        assert list(f["classes"]) == ["x", "y"]
