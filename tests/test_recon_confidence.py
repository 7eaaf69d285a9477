"""Reconstruction confidence (gan_core.recon_confidence): the picture rules, the verdict, familiarity's fit and
file, Model.reconstruct_image, `gan3d reconstruct`'s confidence and warning, and the bundled encoder's
calibration on fresh pictures that are not furniture (blank, noise, portraits)."""

import json

import numpy as np
import pytest
from PIL import Image

from gan_core.errors import BadCheckpointError, BadInputError
from gan_core.ood_images import KINDS, degrade, make, make_set
from gan_core.recon_confidence import (
    FamiliarityModel,
    calibration_path,
    encode_with_features,
    fit_familiarity,
    load_familiarity,
    picture_checks,
    shape_checks,
    verdict,
)
from gan_core.image_input import encode_images, load_image, read_rgb
from gan_core.reconstruct import reconstruct
from gan_core.runtime import find_model, load_model
from tests.cli_run import run_cli
from tests.test_reconstruct import _picture, _vaegan_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def _framed(img):
    """The picture as picture_checks sees it: read, not yet framed."""
    return read_rgb(img, 128)


# -- the picture and the shape -----------------------------------------------------------------------------
def test_blank_pictures_are_blank():
    g = np.random.default_rng(0)
    for colour in (0, 255, 128):
        img = np.full((90, 140, 3), colour, np.uint8)
        c = picture_checks(_framed(img))
        assert c["blank"] and not c["noise"] and c["range"] < 0.01
    noisy_wall = np.clip(np.full((100, 100, 3), 180.0) + g.normal(0, 3, (100, 100, 3)), 0, 255).astype(np.uint8)
    assert picture_checks(_framed(noisy_wall))["blank"]  # sensor noise on a plain wall is still blank
    assert not picture_checks(_framed(_picture()))["blank"]  # a red box on white is not


def test_white_noise_is_noise_and_objects_are_not():
    g = np.random.default_rng(1)
    for img in (g.integers(0, 256, (120, 120, 3), dtype=np.uint8),  # uniform colour noise
                (g.random((200, 150, 1)) < 0.5).repeat(3, 2).astype(np.uint8) * 255,  # salt and pepper
                np.clip(g.normal(128, 40, (64, 64, 1)), 0, 255).astype(np.uint8).repeat(3, 2)):  # grey Gaussian
        c = picture_checks(_framed(img))
        assert c["noise"] and not c["blank"] and c["correlation"] < 0.25
    for kind in ("portrait", "ball", "car", "document"):
        c = picture_checks(_framed(make(kind, g, 128)))
        assert not c["noise"] and not c["blank"]
    with pytest.raises(BadInputError):
        picture_checks(np.zeros((64, 64)))


def test_shape_checks():
    v = np.zeros((8, 8, 8), np.float32)
    assert shape_checks(v) == {"occupied": 0, "empty": True, "peak": 0.0}
    v[2:4, 2:4, 2:4] = 0.9
    assert shape_checks(v) == {"occupied": 8, "empty": False, "peak": pytest.approx(0.9)}
    assert shape_checks(v, level=0.95)["empty"]


# -- the verdict -------------------------------------------------------------------------------------------
PLAIN = {"blank": False, "noise": False}
FULL = {"empty": False}


def test_verdicts_and_labels():
    ok = verdict(PLAIN, FULL, 0.93)
    assert not ok.low and ok.score == 0.93 and ok.label() == "confidence 0.93"
    blank = verdict({"blank": True, "noise": False}, {"empty": True}, 0.9)
    assert blank.low and blank.score == 0.0 and blank.label().startswith("LOW confidence 0.00: the picture is blank")
    assert any("nothing was reconstructed" in w for w in blank.warnings)
    noise = verdict({"blank": False, "noise": True}, FULL, None)
    assert noise.low and noise.score == 0.0 and "noise" in noise.warnings[0]
    odd = verdict(PLAIN, FULL, 0.2)
    assert odd.low and odd.score == 0.2 and "does not look like furniture" in odd.label()
    empty = verdict(PLAIN, {"empty": True}, 0.8)
    assert empty.low and empty.score == 0.8 and empty.warnings == ["nothing was reconstructed (no voxel above "
                                                                   "the level)"]
    unknown = verdict(PLAIN, FULL, None)
    assert not unknown.low and unknown.score is None and "not calibrated" in unknown.label()
    d = odd.to_dict()
    assert d["low"] and d["score"] == 0.2 and json.dumps(d)


# -- familiarity -------------------------------------------------------------------------------------------
def test_fit_puts_the_warning_at_the_holdout_quantile_and_round_trips(tmp_path):
    g = np.random.default_rng(0)
    pos, neg, hold = g.normal(1, 1, (400, 6)), g.normal(-1, 1, (400, 6)), g.normal(1, 1, (2000, 6))
    fam = fit_familiarity(pos, neg, hold, encoder_hash="abc", c=1.0)
    assert np.mean(fam.familiarity(hold) < 0.5) == pytest.approx(0.05, abs=0.002)
    assert np.mean(fam.familiarity(g.normal(-1, 1, (500, 6))) < 0.5) > 0.8  # the other side is mostly flagged
    path = fam.save(tmp_path / "c.npz")
    back = FamiliarityModel.load(path)
    np.testing.assert_allclose(back.familiarity(hold[:50]), fam.familiarity(hold[:50]), rtol=1e-5, atol=1e-6)
    assert back.encoder_hash == "abc" and back.blocks == fam.blocks
    with pytest.raises(BadInputError):
        fam.familiarity(hold[:, :3])
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(BadCheckpointError):
        FamiliarityModel.load(tmp_path / "bad.npz")


def test_features_pass_gives_the_encoders_means(tmp_path):
    model = load_model(_vaegan_checkpoint(tmp_path / "v.pt"), device="cpu", precision="fp32")
    pics = np.stack([load_image(_picture(), 64), load_image(make("portrait", np.random.default_rng(0), 64), 64)])
    z, feats = encode_with_features(model.encoder, pics)
    np.testing.assert_allclose(z, encode_images(model.encoder, pics), atol=1e-5)
    assert feats.shape[0] == 2 and feats.shape[1] > 0 and np.isfinite(feats).all()


def test_reconstruct_image_matches_reconstruct_and_finds_its_calibration(tmp_path):
    ck = _vaegan_checkpoint(tmp_path / "v.pt")
    model = load_model(ck, device="cpu", precision="fp32")
    voxels, z, conf = model.reconstruct_image(_picture())
    v2, z2 = reconstruct(model, _picture())
    np.testing.assert_allclose(z, z2, atol=1e-5)
    np.testing.assert_allclose(voxels, v2, atol=1e-5)
    assert conf.familiarity is None and conf.score is None  # no calibration file
    blank_conf = model.reconstruct_image(np.full((50, 50, 3), 255, np.uint8))[2]
    assert blank_conf.low and blank_conf.score == 0.0  # the rules speak without one
    # a calibration file for these weights is used; one for other weights is not
    _, feats = encode_with_features(model.encoder, load_image(_picture(), 64)[None])
    g = np.random.default_rng(0)
    f = feats.shape[1]
    fam = fit_familiarity(feats + g.normal(0, 0.01, (40, f)), -feats + g.normal(0, 0.01, (40, f)),
                          feats + g.normal(0, 0.01, (40, f)), encoder_hash=model.weights_hash("encoder"))
    fam.save(calibration_path(ck))
    assert calibration_path(ck).name == "v_confidence.npz"
    fresh = load_model(ck, device="cpu", precision="fp32")
    conf = fresh.reconstruct_image(_picture())[2]
    assert conf.familiarity is not None and conf.score == conf.familiarity
    fam.encoder_hash = "0" * 16
    fam.save(calibration_path(ck))
    plain = load_model(ck, device="cpu")
    assert load_familiarity(plain.checkpoint_path, plain.encoder) is None


def test_reconstruct_cli_prints_the_confidence_and_warns_when_low(tmp_path, capsys):
    ck = _vaegan_checkpoint(tmp_path / "v.pt")
    img, blank = tmp_path / "chair.png", tmp_path / "blank.png"
    Image.fromarray(_picture()).save(img)
    Image.fromarray(np.full((60, 80, 3), 240, np.uint8)).save(blank)
    rc, out, err = run_cli(capsys, "reconstruct", "--checkpoint", ck, "--image", img, "--out", tmp_path / "r.npz",
                           "--device", "cpu")
    assert rc == 0 and "warning" not in err
    assert json.loads(out)["confidence"]["score"] is None  # an uncalibrated model: unknown, not a guess
    rc, out, err = run_cli(capsys, "reconstruct", "--checkpoint", ck, "--image", blank, "--out", tmp_path / "b.npz",
                           "--device", "cpu")
    assert rc == 0 and err.startswith("warning: LOW confidence 0.00: the picture is blank")
    conf = json.loads(out)["confidence"]
    assert conf["low"] and conf["score"] == 0.0 and conf["picture"]["blank"]


# -- the bundled encoder's calibration ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled_vae():
    try:
        entry = find_model(need="encoder")
    except Exception:
        pytest.skip("no bundled encoder model")
    if not calibration_path(entry.checkpoint).is_file():
        pytest.skip("the bundled encoder has no confidence file")
    return load_model(entry.checkpoint, device="cpu", name=entry.name)


def test_bundled_encoder_is_calibrated(bundled_vae):
    fam = load_familiarity(bundled_vae.checkpoint_path, bundled_vae.encoder)
    assert fam is not None, "assets: the confidence file does not match the bundled encoder's weights"
    rep = fam.report["check"]
    assert rep["renders of held-out shapes (half B)"]["familiarity_low"] <= 0.12  # few false warnings on renders


@pytest.mark.parametrize("kind,at_least", [("blank", 10), ("noise", 9), ("portrait", 8)])
def test_bundled_encoder_warns_on_blank_noise_and_portraits(bundled_vae, kind, at_least):
    """Fresh pictures (seed 100; calibration used 1 and 2), some degraded: a clear warning, not a silent slab."""
    pics = make_set(kind, 10, seed=100, size=160)
    g = np.random.default_rng(100)
    pics = [degrade(p, g) if i % 2 else p for i, p in enumerate(pics)]
    confs = [bundled_vae.reconstruct_image(p)[2] for p in pics]
    assert sum(c.low for c in confs) >= at_least, [c.label() for c in confs]
    for c in confs:
        assert c.low == (c.label().startswith("LOW confidence"))


def test_white_noise_and_blank_always_warn_with_the_bundled_encoder(bundled_vae):
    g = np.random.default_rng(7)
    for img in (g.integers(0, 256, (300, 400, 3), dtype=np.uint8), np.full((300, 400, 3), 30, np.uint8)):
        conf = bundled_vae.reconstruct_image(img)[2]
        assert conf.low and conf.score == 0.0


def test_kinds_are_reproducible():
    for kind in KINDS:
        a, b = make_set(kind, 2, seed=3, size=32), make_set(kind, 2, seed=3, size=32)
        assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    with pytest.raises(BadInputError):
        make("sofa", np.random.default_rng(0))
