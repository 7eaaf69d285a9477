"""The residual image encoder beside the paper's (issue 22, item 2): its outputs, the profile field that names it,
the checkpoint round trip that keeps it, old checkpoints still read as the paper's encoder, train-vae with it
(from a GAN whose checkpoint has the paper's, recording the render style), and the on-the-fly augmentation."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from gan_core.checkpoint import load_checkpoint, save_checkpoint
from gan_core.config import PROFILES, Profile, get_profile
from gan_core.errors import BadInputError, ProfileMismatchError
from gan_core.image_augment import augment_images
from gan_core.models import Generator, ImageEncoder, ResNetEncoder, build_encoder
from gan_core.runtime import load_model
from gan_core.vae_train import VaeTrainer
from tests.core_data import vae_config, vae_data

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_resnet_encoder_gives_mean_and_logvar_of_z_and_four_taps(name):
    p = get_profile(name).replace(encoder="resnet")
    e = build_encoder(p).eval()
    assert isinstance(e, ResNetEncoder)
    x = torch.rand(3, 3, p.image_size, p.image_size)
    with torch.no_grad():
        mean, logvar = e(x)
        m2, lv2, taps = e.forward_taps(x)
    assert mean.shape == logvar.shape == (3, p.z_dim)
    assert torch.equal(mean, m2) and torch.equal(logvar, lv2)
    assert [t.shape[1] for t in taps] == [32, 64, 128, 256]
    assert [t.shape[2] for t in taps] == [p.image_size // 4, p.image_size // 8, p.image_size // 16,
                                          p.image_size // 32]
    assert float(logvar.min()) >= -10 and float(logvar.max()) <= 10
    with pytest.raises(AssertionError, match=r"images \(N, 3"):
        e(torch.rand(1, 3, p.image_size + 1, p.image_size))


def test_the_profile_names_the_encoder_and_paper_is_the_default():
    p = get_profile("fast32")
    assert p.encoder == "paper" and isinstance(build_encoder(p), ImageEncoder)
    assert "encoder" in p.architecture()
    with pytest.raises(BadInputError, match="encoder must be one of"):
        p.replace(encoder="vit")
    # the residual encoder is cheaper than the paper's fast32 encoder in weights
    n_res = sum(t.numel() for t in build_encoder(p.replace(encoder="resnet")).parameters())
    n_paper = sum(t.numel() for t in ImageEncoder(p).parameters())
    assert n_res < n_paper


def test_paper_encoder_taps_are_its_relu_outputs():
    p = get_profile("tiny16")
    e = ImageEncoder(p).eval()
    x = torch.rand(2, 3, p.image_size, p.image_size)
    with torch.no_grad():
        mean, logvar, taps = e.forward_taps(x)
        m2, lv2 = e(x)
    assert torch.equal(mean, m2) and torch.equal(logvar, lv2)
    assert len(taps) == len(p.e_channels) - 1 and [t.shape[1] for t in taps] == list(p.e_channels[:-1])


def _save_vae(path, p: Profile):
    torch.manual_seed(0)
    enc = build_encoder(p)
    with torch.no_grad():  # non-default BatchNorm statistics, so that a wrong load shows
        for m in enc.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
    return save_checkpoint(path, profile=p, kind="vaegan", models={"generator": Generator(p), "encoder": enc}), enc


def _assert_loaded_encoder(path, p, enc, kind) -> None:
    """The app's loader builds an encoder of exactly ``kind`` that gives the saved encoder's means."""
    model = load_model(path, device="cpu", precision="fp32")
    assert type(model.encoder) is kind
    x = torch.rand(2, 3, p.image_size, p.image_size)
    with torch.no_grad():
        torch.testing.assert_close(model.encoder(x)[0], enc.eval()(x)[0])


def test_checkpoint_round_trip_keeps_the_resnet_encoder(tmp_path):
    p = get_profile("tiny16").replace(encoder="resnet")
    path, enc = _save_vae(tmp_path / "vae.pt", p)
    ck = load_checkpoint(path)
    assert ck["profile"].encoder == "resnet"
    _assert_loaded_encoder(path, p, enc, ResNetEncoder)


def test_an_old_checkpoint_without_the_field_loads_with_the_papers_encoder(tmp_path):
    p = get_profile("tiny16")
    path, enc = _save_vae(tmp_path / "old.pt", p)
    raw = torch.load(path, map_location="cpu", weights_only=False)
    stored = raw["profile"]
    stored.pop("encoder")  # as written before the field existed
    torch.save(raw, path)
    ck = load_checkpoint(path)
    assert ck["profile"].encoder == "paper"
    _assert_loaded_encoder(path, p, enc, ImageEncoder)


def test_a_profile_that_names_the_wrong_encoder_is_refused_not_misread(tmp_path):
    p = get_profile("tiny16")
    path, _ = _save_vae(tmp_path / "vae.pt", p)
    raw = torch.load(path, map_location="cpu", weights_only=False)
    raw["profile"]["encoder"] = "resnet"  # paper weights under a resnet profile
    torch.save(raw, path)
    with pytest.raises(Exception, match="encoder"):
        load_model(path, device="cpu", precision="fp32")


def test_train_vae_with_the_resnet_encoder_from_a_papers_vae(tmp_path):
    data = vae_data(tmp_path)
    p = get_profile("tiny16")
    src, _ = _save_vae(tmp_path / "paper_vae.pt", p)  # G and a paper encoder: the encoder is not loaded
    tr = VaeTrainer(vae_config(data, tmp_path / "run", from_gan=str(src), encoder="resnet", image_augment=True,
                               recon_loss="bce", pos_weight=5.0, epochs=1))
    assert isinstance(tr.E, ResNetEncoder) and tr.cfg.frozen
    g_before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    last = tr.run()
    assert np.isfinite(last["heldout_iou"])
    assert all(torch.equal(v, g_before[k]) for k, v in tr.G.state_dict().items())
    ck = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert ck["profile"].encoder == "resnet"
    rec = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["type"] == "config" and rec["render_style"] == "clean"
    assert rec["config"]["encoder"] == "resnet" and rec["config"]["image_augment"] is True
    # resuming with another encoder is refused
    with pytest.raises(ProfileMismatchError):
        VaeTrainer(vae_config(data, tmp_path / "run", encoder="paper", resume=True, epochs=2))
    with pytest.raises(BadInputError, match="--encoder"):
        vae_config(data, tmp_path / "x", encoder="vit").validate()


def test_confidence_features_come_from_the_resnet_encoders_stages():
    from gan_core.recon_confidence import encode_with_features
    from gan_core.image_input import encode_images

    p = get_profile("tiny16").replace(encoder="resnet")
    torch.manual_seed(0)
    e = build_encoder(p)
    imgs = np.random.default_rng(0).random((5, 3, p.image_size, p.image_size)).astype(np.float32)
    z, feats = encode_with_features(e, imgs, blocks=(2, 3))
    assert feats.shape == (5, 2 * (128 + 256))
    np.testing.assert_allclose(z, encode_images(e, imgs), rtol=1e-5, atol=1e-6)


def test_augment_images_is_seeded_in_range_and_changes_images():
    x = torch.rand(6, 3, 64, 64)
    a = augment_images(x, torch.Generator().manual_seed(1))
    b = augment_images(x, torch.Generator().manual_seed(1))
    c = augment_images(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert float((a - x).abs().mean()) > 0.01
    with pytest.raises(AssertionError):
        augment_images(torch.rand(2, 1, 8, 8), torch.Generator())
