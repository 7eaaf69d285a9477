"""The paper's IKEA protocol (gan_core.recon_metrics): each step on hand-made grids with known answers, and
`gan3d evaluate-recon --ikea` on a tiny IKEA-style directory made here with a tiny model."""

import json

import numpy as np
import pytest
from PIL import Image

import torch

from gan_core.checkpoint import load_checkpoint, save_checkpoint
from gan_core.errors import BadFileError, BadInputError
from gan_core.models import Generator, ImageEncoder
from gan_core.recon_metrics import (
    PAPER_TABLE2,
    best_quarter_turn_ap,
    bounding_box,
    cell_weights,
    evaluate_ikea,
    framed_mean_shape,
    load_ikea,
    predict_ikea,
    score_predictions,
    summarise_ap,
    to_truth_frame,
)
from gan_core.reconstruct import reconstruct
from gan_core.runtime import load_model
from tests.cli_run import run_cli
from tests.test_reconstruct import _vaegan_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


# -- step 1: the truth's frame -----------------------------------------------------------------------------
def test_off_centre_box_is_scaled_to_20_and_centred():
    grid = np.zeros((32, 32, 32), np.float32)
    grid[2:12, 5:10, 0:5] = 1  # 10 x 5 x 5, in a corner
    assert bounding_box(grid) == (slice(2, 12), slice(5, 10), slice(0, 5))
    out = to_truth_frame(grid)
    want = np.zeros((20, 20, 20), np.float32)
    want[0:20, 5:15, 5:15] = 1  # longest side 10 -> 20 cells, the others 5 -> 10, centred on every axis
    assert out.shape == (20, 20, 20) and out.dtype == np.float32
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_fractional_scale_averages_partial_cells():
    grid = np.zeros((16, 16, 16), np.float32)
    grid[7:10, 3:5, 12] = 1  # 3 x 2 x 1: scale 20/3, the short sides cover cells in part
    out = to_truth_frame(grid)
    s = 20 / 3
    assert out.sum() == pytest.approx(3 * 2 * 1 * s**3, rel=1e-5)  # averaging keeps the volume
    # axis 1: 2 cells -> 13.33, from 3.33 to 16.67: cell 3 is 2/3 covered, cells 4-15 whole, cell 16 2/3
    prof = out[10, :, 10]
    assert prof[3] == pytest.approx(2 / 3, abs=1e-5) and prof[16] == pytest.approx(2 / 3, abs=1e-5)
    assert np.all(prof[4:16] == pytest.approx(1.0)) and prof[:3].sum() == 0 and prof[17:].sum() == 0
    # the middle axis-2 cell: 1 cell -> 6.67 cells from 6.67 to 13.33
    assert out[10, 10, 6] == pytest.approx(1 / 3, abs=1e-5) and out[10, 10, 13] == pytest.approx(1 / 3, abs=1e-5)
    w = cell_weights(3, s)
    assert w.shape == (20, 3) and np.allclose(w.sum(0), s)  # each source cell spreads over `scale` cells


def test_probabilities_are_averaged_and_the_box_uses_the_level():
    grid = np.full((32, 32, 32), 0.2, np.float32)  # a haze below the level...
    grid[8:24, 8:24, 0:16] = 0.8  # ...around a 16^3 cube above it
    out = to_truth_frame(grid)
    np.testing.assert_allclose(out, 0.8, atol=1e-6)  # cropped to the cube: the haze outside is dropped
    empty = np.full((32, 32, 32), 0.3, np.float32)  # nothing above 0.5: the whole grid, scaled 20/32
    np.testing.assert_allclose(to_truth_frame(empty), 0.3, atol=1e-6)
    assert bounding_box(empty) is None
    with pytest.raises(BadInputError):
        to_truth_frame(np.zeros((4, 4)))


# -- step 2 and 3: facing and AP ---------------------------------------------------------------------------
def _l_shape():
    t = np.zeros((20, 20, 20), np.uint8)
    t[2:18, 2:6, 0:10] = 1  # a long wall...
    t[2:6, 6:16, 0:4] = 1  # ...and a short arm: no quarter turn maps it onto itself
    return t


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_a_rotated_shape_is_aligned_by_the_quarter_turn_search(k):
    truth = _l_shape()
    pred = np.rot90(truth, k, axes=(0, 1)).astype(np.float32)
    ap, turns = best_quarter_turn_ap(pred, truth)
    assert ap == pytest.approx(1.0) and turns == (4 - k) % 4
    if k:
        assert best_quarter_turn_ap(np.rot90(pred, -k, axes=(0, 1)), truth) == (pytest.approx(1.0), 0)


def test_ap_of_a_perfect_prediction_is_one_and_noise_is_low():
    truth = _l_shape()
    assert best_quarter_turn_ap(truth.astype(np.float32), truth)[0] == pytest.approx(1.0)
    noise = np.random.default_rng(0).random(truth.shape)
    assert best_quarter_turn_ap(noise, truth)[0] < 0.3  # about the occupied fraction (0.12)
    with pytest.raises(BadInputError):
        best_quarter_turn_ap(noise[:10], truth)


# -- step 4: means -----------------------------------------------------------------------------------------
def test_means_per_class_and_over_classes():
    s = summarise_ap([1.0, 0.5, 0.25], ["chair", "chair", "sofa"])
    assert s["per_class"] == {"chair": {"ap": 0.75, "n": 2}, "sofa": {"ap": 0.25, "n": 1}}
    assert s["mean"] == pytest.approx(0.5)  # each class counts once, not each photo (that would be 0.583)
    truth = np.stack([_l_shape(), _l_shape()])
    one = score_predictions(truth[0].astype(np.float32), truth, ["a", "b"])  # one prediction for every image
    assert one["ap"] == [pytest.approx(1.0)] * 2 and one["turns"] == [0, 0] and one["mean"] == pytest.approx(1.0)


def test_mean_shape_of_shapes_that_frame_alike_is_that_frame():
    a = np.zeros((16, 16, 16), np.uint8)
    a[0:8, 0:4, 0:4] = 1
    b = np.zeros((16, 16, 16), np.uint8)
    b[6:16, 9:14, 11:16] = 1  # bigger and elsewhere, the same proportions 2:1:1
    m = framed_mean_shape(np.stack([a, b]))
    np.testing.assert_allclose(m, to_truth_frame(a), atol=1e-6)
    chunks = framed_mean_shape(iter([a[None], b[None]]))  # chunks of a set, as the command passes them
    np.testing.assert_allclose(chunks, m, atol=1e-6)
    assert PAPER_TABLE2["chair"] == 0.472 and PAPER_TABLE2["sofa"] == 0.788 and PAPER_TABLE2["table"] == 0.423


# -- the command on a tiny IKEA-style directory ------------------------------------------------------------
def _fake_ikea(root, n_per_class=2):
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names, cls, vox = [], [], []
    for c in ("chair", "sofa", "table"):
        for i in range(n_per_class):
            a = np.full((30 + 7 * i, 40, 3), 255, np.uint8)
            a[5:25, 8 + 3 * i:30] = rng.integers(0, 200, 3)
            name = f"{c}_{i}.jpg"
            Image.fromarray(a).save(root / "images" / name, quality=90)
            v = np.zeros((20, 20, 20), np.uint8)
            v[0:20, 5:15, 3 + i:17] = 1
            names.append(name)
            cls.append(c)
            vox.append(v)
    np.savez(root / "truth.npz", image=np.array(names), cls=np.array(cls), model=np.arange(len(names)),
             voxels=np.stack(vox))
    return root


def test_predictions_take_the_reconstruct_path(tmp_path):
    model = load_model(_vaegan_checkpoint(tmp_path / "v.pt"), device="cpu", precision="fp32")
    ikea = load_ikea(_fake_ikea(tmp_path / "ikea"))
    probs = predict_ikea(model, ikea.images, batch_size=4)  # two batches
    assert probs.shape == (6, 16, 16, 16)
    for i in (0, 5):
        np.testing.assert_allclose(probs[i], reconstruct(model, ikea.images[i])[0], atol=1e-5)
    res = evaluate_ikea(model, ikea, train_voxels=lambda: [ikea.voxels[:3]],
                        class_voxels=lambda c: None if c == "sofa" else [ikea.voxels[ikea.classes == c]])
    assert set(res["model"]["per_class"]) == {"chair", "sofa", "table"} and len(res["model"]["ap"]) == 6
    cm = res["baselines"]["class_mean_shape"]
    assert cm["missing_classes"] == ["sofa"]
    probs2, confs = predict_ikea(model, ikea.images[:2], confidence=True)  # what `gan3d reconstruct` would say
    np.testing.assert_allclose(probs2, probs[:2], atol=1e-5)
    for c, path in zip(confs, ikea.images[:2]):
        assert c.to_dict() == model.reconstruct_image(path)[2].to_dict()
    assert len(res["confidence"]["low"]) == 6 and res["confidence"]["calibrated"] is False
    assert res["paper"] == {"chair": 0.472, "sofa": 0.788, "table": 0.423}
    assert res["paper_mean_same_classes"] == pytest.approx((0.472 + 0.788 + 0.423) / 3)


def test_evaluate_recon_ikea_cli(tmp_path, capsys):
    from gan_core.data.synthetic import make_synthetic_dataset, save_npz

    ck = _vaegan_checkpoint(tmp_path / "v.pt")
    root = _fake_ikea(tmp_path / "ikea")
    data = save_npz(tmp_path / "s.npz", *make_synthetic_dataset(2, resolution=16, classes=["chair", "table"]))
    rc, out, err = run_cli(capsys, "evaluate-recon", "--ikea", root, "--checkpoint", ck, "--data", data,
                           "--json", "--device", "cpu")
    assert rc == 0, err
    res = json.loads(out)
    assert res["n_images"] == 6 and res["images"][0] == "chair_0.jpg"
    for part in (res["model"], res["baselines"]["mean_shape"], res["baselines"]["class_mean_shape"]):
        assert set(part["per_class"]) == {"chair", "sofa", "table"} and 0 < part["mean"] <= 1
        assert all(0 < a <= 1 for a in part["ap"]) and set(part["turns"]) <= {0, 1, 2, 3}
    assert res["baselines"]["class_mean_shape"]["missing_classes"] == ["sofa"]
    assert res["baseline_shapes"] == "all 4 shapes of s.npz" and res["paper_full_mean"] == 0.531
    assert len(res["confidence"]["score"]) == 6 and set(res["confidence"]["warned_per_class"]) == {"chair", "sofa",
                                                                                                 "table"}
    rc, out, err = run_cli(capsys, "evaluate-recon", "--ikea", root, "--checkpoint", ck, "--data", data,
                           "--device", "cpu")
    assert rc == 0, err
    lines = out.splitlines()
    assert "this model" in lines[2] and "paper (Table 2)" in lines[2] and "class-mean shape" in lines[2]
    assert lines[3].split()[0] == "chair" and lines[3].split()[2] == "0.472"
    assert lines[6].startswith("  mean over classes") and "0.531" in lines[7]
    assert "no sofa" in out and "a warning on" in out and "rules only" in out
    # without --data: the model's column and the paper's, and a line saying how to get the baselines
    rc, out, _ = run_cli(capsys, "evaluate-recon", "--ikea", root, "--checkpoint", ck, "--device", "cpu")
    assert rc == 0 and "mean shape" not in out.splitlines()[2] and "pass --data" in out


def test_per_class_models_take_their_class_photos(tmp_path, capsys):
    """--per-class chair=B: chair photos are B's reconstructions (class told), the others the default model's."""
    a = load_model(_vaegan_checkpoint(tmp_path / "a.pt"), device="cpu", precision="fp32")
    ck = load_checkpoint(tmp_path / "a.pt")
    p = ck["profile"]
    torch.manual_seed(123)
    models = {"generator": Generator(p), "encoder": ImageEncoder(p)}  # other weights: other shapes
    with torch.no_grad():
        models["generator"].net[-2].bias.fill_(0.5)
    save_checkpoint(tmp_path / "b.pt", profile=p, kind="vaegan", models=models)
    b = load_model(tmp_path / "b.pt", device="cpu", precision="fp32")
    ikea = load_ikea(_fake_ikea(tmp_path / "ikea"))
    only_a = evaluate_ikea(a, ikea)
    only_b = evaluate_ikea(b, ikea)
    assert only_a["model"]["ap"] != only_b["model"]["ap"]  # the two models differ on these photos
    mixed = evaluate_ikea(a, ikea, class_models={"chair": b})
    chair = ikea.classes == "chair"
    want = [only_b["model"]["ap"][i] if chair[i] else only_a["model"]["ap"][i] for i in range(len(ikea))]
    assert mixed["model"]["ap"] == pytest.approx(want)
    assert mixed["class_models"] == {"chair": b.name}
    want_conf = [only_b["confidence"]["score"][i] if chair[i] else only_a["confidence"]["score"][i]
                 for i in range(len(ikea))]
    assert mixed["confidence"]["score"] == pytest.approx(want_conf)
    root = tmp_path / "ikea"
    rc, out, err = run_cli(capsys, "evaluate-recon", "--ikea", root, "--checkpoint", tmp_path / "a.pt",
                           "--per-class", f"chair={tmp_path / 'b.pt'}", "--json", "--device", "cpu",
                           "--precision", "fp32")
    assert rc == 0, err
    assert json.loads(out)["model"]["ap"] == pytest.approx(mixed["model"]["ap"], abs=1e-6)
    for argv, line in [
        (["--per-class", "chair"], "BadInputError: --per-class takes CLASS=CHECKPOINT, got 'chair'"),
        (["--per-class", f"bed={tmp_path / 'b.pt'}"],
         f"BadInputError: --per-class bed={tmp_path / 'b.pt'}: {root} has no photos of 'bed' (it has chair, sofa, "
         "table)"),
    ]:
        rc, out, err = run_cli(capsys, "evaluate-recon", "--ikea", root, "--checkpoint", tmp_path / "a.pt", *argv)
        assert rc == 1 and err.strip() == line and out == ""
    rc, _, err = run_cli(capsys, "evaluate-recon", "--checkpoint", tmp_path / "a.pt", "--per-class",
                         f"chair={tmp_path / 'b.pt'}")
    assert rc == 1 and "--per-class needs --ikea" in err


def test_evaluate_recon_ikea_errors_are_one_line(tmp_path, capsys):
    ck = _vaegan_checkpoint(tmp_path / "v.pt")
    cases = []
    rc, _, err = run_cli(capsys, "evaluate-recon", "--ikea", tmp_path / "nope", "--checkpoint", ck)
    cases.append((rc, err, f"BadFileError: {tmp_path / 'nope'}: not a directory (want images/ and truth.npz)"))
    root = _fake_ikea(tmp_path / "ikea")
    (root / "images" / "sofa_1.jpg").unlink()
    rc, _, err = run_cli(capsys, "evaluate-recon", "--ikea", root, "--checkpoint", ck)
    cases.append((rc, err, f"BadFileError: {root}/images: 1 listed photos are missing (first: sofa_1.jpg)"))
    rc, _, err = run_cli(capsys, "evaluate-recon", "--checkpoint", ck)
    cases.append((rc, err, "BadInputError: --checkpoint and --data are needed (or --ikea DIR for the paper's "
                           "IKEA protocol)"))
    for rc, err, line in cases:
        assert rc == 1 and err.strip() == line
    (root / "truth.npz").write_text("not a zip")
    with pytest.raises(BadFileError, match="cannot read"):
        load_ikea(root)
