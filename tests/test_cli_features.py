"""gan3d features / retrieve / classify / evaluate end to end with a tiny16 checkpoint, and their error lines."""

import json

import numpy as np
import pytest
import torch

from gan_core.checkpoint import save_checkpoint
from gan_core.cli import main
from gan_core.config import get_profile
from gan_core.models import Discriminator, Generator
from tests.cli_run import last_json, run_cli
from tests.core_data import boxes_npz


def _checkpoint(path, seed):
    p = get_profile("tiny16")
    torch.manual_seed(seed)
    return save_checkpoint(path, profile=p, models={"generator": Generator(p), "discriminator": Discriminator(p)})


@pytest.fixture
def files(tmp_path):
    return {
        "ckpt": _checkpoint(tmp_path / "a.pt", 0),
        "other": _checkpoint(tmp_path / "b.pt", 1),
        "data": boxes_npz(tmp_path / "train.npz", n=24, seed=0),
        "test": boxes_npz(tmp_path / "test.npz", n=12, seed=5),
        "tmp": tmp_path,
    }


def test_features_then_retrieve(files, capsys):
    bank = files["tmp"] / "bank.h5"
    rc, out, _ = run_cli(capsys, "features", "--checkpoint", files["ckpt"], "--data", files["data"], "--limit", 20,
                      "--out", bank, "--precision", "fp32", "--device", "cpu")
    assert rc == 0 and bank.is_file()
    info = last_json(out)
    assert info["n"] == 20 and info["feature_dim"] == {"paper": 384, "last": 2048}
    assert info["stored_dim"] == {"paper": 384, "last": 20 + 512}  # "last": PCA (20 rows) + residual sketch
    rc, out, _ = run_cli(capsys, "retrieve", "--bank", bank, "--checkpoint", files["ckpt"], "--voxels", files["data"],
                      "--index", "0,3", "-k", 3, "--json", "--precision", "fp32", "--device", "cpu")
    assert rc == 0
    assert "rank  bank index  class" in out
    res = last_json(out)
    assert res["kind"] == "last" and res["metric"] == "cosine" and [q["row"] for q in res["queries"]] == [0, 3]
    with np.load(files["data"]) as f:
        vox = f["voxels"]
    for q in res["queries"]:
        top = q["neighbours"][0]
        assert top["rank"] == 1 and top["distance"] < 1e-3
        assert np.array_equal(vox[top["source_index"]], vox[q["row"]])  # itself or an exact duplicate
        assert [n["rank"] for n in q["neighbours"]] == [1, 2, 3]


def test_features_components_flags(files, capsys):
    full, plain = files["tmp"] / "full.h5", files["tmp"] / "plain.h5"
    base = ["features", "--checkpoint", files["ckpt"], "--data", files["data"], "--device", "cpu"]
    rc, out, _ = run_cli(capsys, *base, "--out", full, "--components", 0)
    assert rc == 0 and last_json(out)["stored_dim"] == {"paper": 384, "last": 2048}
    rc, out, _ = run_cli(capsys, *base, "--out", plain, "--components", 8, "--sketch", 0)
    assert rc == 0 and last_json(out)["stored_dim"] == {"paper": 8, "last": 8}


def test_retrieve_refuses_a_bank_of_another_checkpoint(files, capsys):
    bank = files["tmp"] / "bank.h5"
    assert run_cli(capsys, "features", "--checkpoint", files["ckpt"], "--data", files["data"], "--out", bank)[0] == 0
    rc, out, err = run_cli(capsys, "retrieve", "--bank", bank, "--checkpoint", files["other"], "--voxels", files["data"])
    assert rc == 1 and out == ""
    line = err.strip()
    assert line.startswith("ProfileMismatchError: bank was built with another discriminator (hash ")
    assert line.endswith("; rebuild it with gan3d features") and len(err.splitlines()) == 1


def test_classify_with_cache_and_hold_out(files, capsys, monkeypatch):
    cache = files["tmp"] / "feats.npz"
    argv = ["classify", "--checkpoint", files["ckpt"], "--train", files["data"], "--val-split", 0.25, "--seed", 0,
            "--folds", 2, "--cache", cache, "--json", "--device", "cpu"]
    rc, out, _ = run_cli(capsys, *argv)
    assert rc == 0 and cache.is_file()
    first = last_json(out)
    assert first["n_train"] == 18 and first["n_test"] == 6 and first["feature_dim"] == 384
    assert set(first["per_class"]) == {"slab", "column"} and first["C"] > 0 and 0 <= first["accuracy"] <= 1

    def boom(*a, **k):
        raise AssertionError("features were recomputed despite the cache")

    monkeypatch.setattr("gan_core.features.dataset_features", boom)
    rc, out, _ = run_cli(capsys, *argv)
    assert rc == 0 and last_json(out)["accuracy"] == first["accuracy"]


def test_classify_raw_voxels_baseline(files, capsys):
    rc, out, _ = run_cli(capsys, "classify", "--raw-voxels", "--train", files["data"], "--test", files["test"],
                      "--folds", 3, "--json")
    assert rc == 0 and "confusion matrix" in out
    res = last_json(out)
    assert res["accuracy"] == 1.0 and res["features"] == "raw" and res["feature_dim"] == 16**3
    assert res["n_train"] == 24 and res["n_test"] == 12 and res["per_class"] == {"slab": 1.0, "column": 1.0}


def test_evaluate_json(files, capsys):
    rc, out, _ = run_cli(capsys, "evaluate", "--samples", files["test"], "--reference", files["data"], "--max-n", 10,
                      "--json")
    assert rc == 0 and "1-NNA" in out
    m = last_json(out)
    assert m["n_samples"] == m["n_reference"] == 10 and m["resolution"] == 16
    assert set(m["iou"]) == {"cov", "mmd", "1nna"} and m["empty_rate"] == 0.0 and "chamfer" not in m


@pytest.mark.parametrize("argv, line", [
    (["features", "--data", "{tmp}/missing.npz", "--out", "{tmp}/b.h5"], "BadFileError: --data {tmp}/missing.npz: no such file"),
    (["features", "--data", "{data}", "--out", "{tmp}/b.txt"], "BadInputError: --out must end in .h5, got b.txt"),
    (["features", "--data", "{data}", "--out", "{tmp}/b.h5", "--components", "-1"],
     "BadInputError: --components must be >= 0, got -1"),
    (["retrieve", "--bank", "{data}", "--voxels", "{data}"],
     "BadCheckpointError: {data}: not a readable feature bank (not HDF5, corrupt or truncated: "
     "Unable to synchronously open file (file signature not found))"),
    (["retrieve", "--bank", "{tmp}/none.h5", "--voxels", "{data}"], "BadFileError: --bank {tmp}/none.h5: no such file"),
    (["classify", "--train", "{data}", "--test", "{data}", "--val-split", "0.2", "--raw-voxels"],
     "BadInputError: --val-split applies only without --test"),
    (["classify", "--train", "{data}", "--raw-voxels", "--c-grid", "0,1"], "BadInputError: --c-grid: values must be positive, got '0,1'"),
    (["evaluate", "--samples", "{data}", "--reference", "{tmp}/nope.npz"], "BadFileError: --reference {tmp}/nope.npz: no such file"),
])
def test_error_lines(files, capsys, argv, line):
    subst = {"tmp": files["tmp"], "data": files["data"]}
    rc, out, err = run_cli(capsys, *[a.format(**subst) for a in argv])
    assert rc == 1 and out == ""
    assert err == line.format(**subst) + "\n"


@pytest.mark.parametrize("cmd", ["features", "retrieve", "classify", "evaluate"])
def test_help_ends_with_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert f"example:\n  gan3d {cmd}" in capsys.readouterr().out


def test_classify_per_class_prints_the_curve(files, capsys):
    rc, out, _ = run_cli(capsys, "classify", "--raw-voxels", "--train", files["data"], "--test", files["test"],
                         "--per-class", "all,1,2", "--repeats", 3, "--folds", 2, "--json")
    assert rc == 0
    points = last_json(out)["points"]
    assert [p["per_class"] for p in points] == [1, 2, None]  # sorted, 'all' last
    assert [len(p["accuracies"]) for p in points] == [3, 3, 1]
    assert all(0 <= p["mean"] <= 1 for p in points)
    assert "per class  shapes  accuracy  spread" in out
    rc, _, err = run_cli(capsys, "classify", "--raw-voxels", "--train", files["data"], "--per-class", "0,5")
    assert rc == 1 and "--per-class values must be >= 1" in err
