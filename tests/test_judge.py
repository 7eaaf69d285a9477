"""The judge (gan_core.judge), the metrics that use it or stand beside it (gan_core.shape_metrics), and gan3d
evaluate's new lines. Expected values come from closed forms and hand-made grids, not from the code under test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint, save_checkpoint
from gan_core.config import get_profile
from gan_core.errors import BadCheckpointError, BadInputError
from gan_core.judge import JudgeClassifier, JudgeConfig, augment, train_judge
from gan_core.models import Generator
from gan_core.shape_metrics import (class_histogram, fragmented_rate, frechet_distance, shape_metrics, tiny_rate,
                                    tiny_threshold)
from tests.cli_run import last_json, run_cli
from tests.core_data import boxes_npz

pytestmark = pytest.mark.usefixtures("one_thread")


# -- Frechet distance --------------------------------------------------------------------------------------
def _axis_cross(mu: np.ndarray, half_widths: np.ndarray, copies: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Points mu +- a_i e_i (each ``copies`` times): mean exactly mu, covariance exactly diagonal with
    np.cov's (n - 1) divisor: var_i = 2 copies a_i^2 / (n - 1), n = 2 d copies. Returns (points, variances)."""
    d = len(mu)
    pts = np.concatenate([mu + s * np.diag(half_widths) for s in (1.0, -1.0)] * copies)
    return pts, 2 * copies * half_widths**2 / (2 * d * copies - 1)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    a, s1 = _axis_cross(mu1, np.array([1.0, 2.0, 0.5, 3.0]))
    b, s2 = _axis_cross(mu2, np.array([2.0, 0.3, 0.5, 1.0]), copies=3)  # another set size too
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)
    # A rotation of both sets makes the covariances full; the distance is unchanged.
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    assert frechet_distance(a @ q.T, b @ q.T) == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_checks_its_input():
    x = np.random.default_rng(1).normal(size=(50, 6))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    # Fewer points than dimensions: singular covariances still give a finite, non-negative number.
    assert 0 <= frechet_distance(x[:4], x[10:14] + 1) < np.inf
    with pytest.raises(BadInputError, match="differ in length"):
        frechet_distance(x, x[:, :5])
    with pytest.raises(BadInputError, match=r"N >= 2"):
        frechet_distance(x[:1], x)


# -- fragmented and tiny rates -----------------------------------------------------------------------------
def test_fragmented_rate_on_hand_made_grids():
    g = np.zeros((7, 8, 8, 8), np.uint8)
    g[0, 1:4, 1:4, 1:4] = 1                                 # one cube: whole
    g[1, 1:4, 1:4, 1:4] = 1; g[1, 7, 7, 7] = 1              # 27 of 28 in the largest part (0.96): whole
    g[2, 0:2, 0:2, 0:2] = 1; g[2, 5:7, 5:7, 5:7] = 1        # two cubes of 8 apart (0.5): fragmented
    g[3, 0:2, 0:2, 0:2] = 1; g[3, 2:4, 2:4, 2:4] = 1        # touching at a corner: one 26-connected part
    g[4, 0:3, 0:3, 0] = 1; g[4, 6, 6, 6] = 1                # 9 of 10 = exactly 0.9: not under 0.9, whole
    g[5, 0:2, 0:2, 0:2] = 1; g[5, 6, 6, 6] = 1              # 8 of 9 = 0.89: fragmented
    # g[6] is empty: not counted
    assert fragmented_rate(g) == pytest.approx(2 / 6)
    assert fragmented_rate(g[[2]].astype(np.float32) * 0.9) == 1.0  # float grids: > 0.5 is occupied
    assert fragmented_rate(g[[6]]) == 0.0


def test_tiny_rate_threshold_scales_with_the_grid_volume():
    def grid(r: int, n: int) -> np.ndarray:
        v = np.zeros(r**3, np.uint8)
        v[:n] = 1
        return v.reshape(r, r, r)

    assert tiny_threshold(32) == 150 and tiny_threshold(64) == 1200 and tiny_threshold(16) == 18.75
    assert tiny_rate(np.stack([grid(32, 149), grid(32, 150), grid(32, 0), grid(32, 3000)])) == 0.5
    assert tiny_rate(np.stack([grid(64, 1199), grid(64, 1200)])) == 0.5
    assert tiny_rate(np.stack([grid(16, 18), grid(16, 19), grid(16, 19)])) == pytest.approx(1 / 3)


def test_class_histogram():
    assert class_histogram(np.array([0, 2, 2, 2]), 4) == [0.25, 0.0, 0.75, 0.0]
    with pytest.raises(BadInputError):
        class_histogram(np.array([0, 4]), 4)


# -- the judge ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    d = tmp_path_factory.mktemp("judge")
    return {"train": boxes_npz(d / "train.npz", n=40, seed=0), "test": boxes_npz(d / "test.npz", n=20, seed=5),
            "dir": d}


@pytest.fixture(scope="module")
def judge(boxes):
    torch.set_num_threads(1)
    with np.load(boxes["train"]) as f:
        vox, labels, classes = f["voxels"], f["labels"], [str(c) for c in f["classes"]]
    epochs = []
    j = train_judge(vox, labels, classes, epochs=4, batch_size=8, seed=0, device="cpu", progress=epochs.append)
    j.epochs_seen = epochs
    return j


def test_judge_learns_slabs_from_columns_and_reports_progress(judge, boxes):
    assert [e["epoch"] for e in judge.epochs_seen] == [1, 2, 3, 4]
    assert judge.epochs_seen[-1]["loss"] < judge.epochs_seen[0]["loss"]
    with np.load(boxes["test"]) as f:  # unseen boxes, at 16^3: the judge resamples them to its 32^3
        pred = judge.predict(f["voxels"])
        assert pred.dtype == np.int64 and (pred == f["labels"]).mean() >= 0.9
    feats = judge.features(np.zeros((3, 16, 16, 16), np.uint8))
    assert feats.shape == (3, 128) and feats.dtype == np.float64
    assert judge.class_names == ["slab", "column"]


def test_judge_saves_and_loads_through_the_checkpoint_format(judge, boxes, tmp_path):
    with np.load(boxes["test"]) as f:
        vox = f["voxels"]
    full = JudgeClassifier.load(judge.save(tmp_path / "j32.pt", half=False, data_hash="abc"), "cpu")
    np.testing.assert_array_equal(full.features(vox), judge.features(vox))
    half_path = judge.save(tmp_path / "j16.pt", meta={"note": "x"})
    half = JudgeClassifier.load(half_path, "cpu")
    np.testing.assert_allclose(half.features(vox), judge.features(vox), atol=5e-3 * np.abs(judge.features(vox)).max())
    np.testing.assert_array_equal(half.predict(vox), judge.predict(vox))
    assert half.config == judge.config and half.meta["note"] == "x"
    ck = load_checkpoint(half_path, judge=True)
    assert ck["kind"] == "judge" and ck["judge"]["embed.weight"].dtype == torch.float16
    assert half_path.stat().st_size < 2_000_000
    assert not list(tmp_path.glob(".*.tmp*"))  # atomic writes leave nothing behind


def test_judge_and_gan_checkpoints_refuse_each_others_readers(judge, tmp_path):
    from gan_core.runtime import load_model

    p = get_profile("tiny16")
    gan = save_checkpoint(tmp_path / "g.pt", profile=p, models={"generator": Generator(p)})
    with pytest.raises(BadCheckpointError, match=r"g\.pt: not a judge checkpoint \(kind 'gan'\)"):
        JudgeClassifier.load(gan)
    jp = judge.save(tmp_path / "j.pt")
    with pytest.raises(BadCheckpointError, match=r"j\.pt: a shape classifier \(judge\), not a GAN"):
        load_model(jp)
    with pytest.raises(BadCheckpointError, match="invalid judge_config"):
        ck = torch.load(jp, weights_only=True)
        ck["judge_config"]["class_names"] = ["only one"]
        torch.save(ck, tmp_path / "bad.pt")
        JudgeClassifier.load(tmp_path / "bad.pt")


def test_augment_mirrors_and_shifts_but_keeps_every_voxel_of_a_central_shape():
    x = torch.zeros(16, 1, 8, 8, 8)
    x[:, 0, 2:5, 3:4, 3:6] = 1  # away from the border: a shift of 2 moves no voxel out
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out.sum(dim=(1, 2, 3, 4)), x.sum(dim=(1, 2, 3, 4)))
    assert len({tuple(o.nonzero().flatten().tolist()) for o in out}) > 1  # shapes differ from one another
    assert torch.equal(x[:, 0, 2:5, 3:4, 3:6], torch.ones(16, 3, 1, 3))  # the input is untouched
    with pytest.raises(BadInputError):
        JudgeConfig(class_names=("a",))


def test_shape_metrics_with_a_judge(judge, boxes):
    with np.load(boxes["train"]) as f:
        ref = f["voxels"]
    blobs = np.zeros((10, 16, 16, 16), np.uint8)
    blobs[:, 3:5, 3:5, 3:5] = 1
    blobs[:5, 10:12, 10:12, 10:12] = 1  # half of them in two parts
    sm = shape_metrics(blobs, ref, real=ref[:10], judge=judge)
    assert sm["fragmented_rate"] == {"samples": 0.5, "real": 0.0, "reference": 0.0}
    assert sm["tiny_rate"]["samples"] == 1.0  # 8-16 voxels at 16^3 is under 18.75
    assert sm["fcd"]["samples"] > sm["fcd"]["real"] >= 0
    assert sm["class_histogram"]["classes"] == ["slab", "column"]
    assert sum(sm["class_histogram"]["samples"]) == pytest.approx(1.0)
    assert set(sm["class_tv"]) == {"samples", "real"}
    assert "fcd" not in shape_metrics(blobs, ref)


# -- gan3d evaluate ----------------------------------------------------------------------------------------
def test_evaluate_prints_shape_metrics_beside_real_vs_real(judge, boxes, tmp_path, capsys):
    jp = judge.save(tmp_path / "judge.pt")
    samples = np.zeros((4, 16, 16, 16), np.uint8)
    samples[:, 2:10, 2:10, 2:6] = 1    # 256 voxels: not tiny at 16^3
    samples[1, 13:15, 13:15, 13:15] = 1  # 8 apart of 264: 0.97, whole
    samples[2, 12:16, 12:16, 10:16] = 1  # 96 apart of 352: 0.73, fragmented
    samples[3] = 0
    samples[3, 0:2, 0:2, 0:2] = 1      # 8 voxels: tiny
    np.savez(tmp_path / "s.npz", voxels=samples, labels=np.zeros(4, np.int64), classes=np.array(["slab", "column"]))
    rc, out, err = run_cli(capsys, "evaluate", "--samples", tmp_path / "s.npz", "--reference", boxes["test"],
                           "--real", boxes["train"], "--judge", jp, "--device", "cpu", "--json")
    assert rc == 0, err
    lines = out.splitlines()
    assert "real-vs-real: 4 shapes of train.npz" in lines[0]
    assert any(line.startswith("1-IoU real") for line in lines)
    for name in ("FCD", "fragmented rate", "tiny rate", "class mix distance"):
        assert any(line.startswith(name) for line in lines), name
    assert "class histogram under the judge (judge.pt)" in out
    frag = next(line for line in lines if line.startswith("fragmented rate")).split()
    assert frag[2:] == ["0.250", "0.000", "0.000"]  # samples, real, reference (boxes are whole)
    tiny = next(line for line in lines if line.startswith("tiny rate")).split()
    assert tiny[2] == "0.250"
    m = last_json(out)
    sm = m["shape_metrics"]
    assert sm["fragmented_rate"]["samples"] == 0.25 and sm["tiny_rate"]["samples"] == 0.25
    assert set(sm["fcd"]) == {"samples", "real"} and m["n_real"] == 4 and m["judge"] == str(jp)
    assert m["real_vs_reference"]["n_samples"] == 4 and set(m["real_vs_reference"]["iou"]) == {"cov", "mmd", "1nna"}
    json.dumps(m, allow_nan=False)  # strict JSON

    rc, out, _ = run_cli(capsys, "evaluate", "--samples", tmp_path / "s.npz", "--reference", boxes["test"],
                         "--no-judge", "--json")
    assert rc == 0 and "FCD" not in out and "fragmented rate" in out and "real" not in last_json(out)
    assert set(last_json(out)["shape_metrics"]) == {"fragmented_rate", "tiny_rate"}


def test_evaluate_without_a_bundled_judge_says_so(boxes, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("gan_core.runtime.REGISTRY", tmp_path / "models.json")  # no registry: no judge
    rc, out, err = run_cli(capsys, "evaluate", "--samples", boxes["test"], "--reference", boxes["train"])
    assert rc == 0 and "FCD" not in out and "tiny rate" in out
    assert "no bundled judge installed" in err


def test_bundled_judge_is_registered_and_loads():
    from gan_core.runtime import bundled_judge, load_judge

    path = bundled_judge()
    if path is None:
        pytest.skip("no judge bundled in assets/")
    j = load_judge(device="cpu")
    assert j.path == path and len(j.class_names) == 10 and path.stat().st_size < 2_000_000


@pytest.mark.parametrize("argv, line", [
    (["--judge", "{tmp}/none.pt"], "BadFileError: --judge {tmp}/none.pt: no such file"),
    (["--judge", "{data}", "--no-judge"], "BadInputError: --judge and --no-judge exclude each other"),
    (["--real", "{tmp}/none.npz"], "BadFileError: --real {tmp}/none.npz: no such file"),
])
def test_evaluate_error_lines(boxes, capsys, argv, line):
    subst = {"tmp": boxes["dir"], "data": boxes["train"]}
    rc, out, err = run_cli(capsys, "evaluate", "--samples", boxes["test"], "--reference", boxes["train"],
                           *[a.format(**subst) for a in argv])
    assert rc == 1 and out == ""
    assert err == line.format(**subst) + "\n"
