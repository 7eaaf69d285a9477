"""3D-VAE-GAN training: the objective's terms learn, the held-out split stays out and is stored, --from-gan and
--freeze-generator do what they say, resume is exact, and the command's errors are one line.

The render cache here is a stand-in written directly (tests.core_data.fake_renders: silhouettes of the boxes),
so these tests need no off-screen renderer and take seconds."""

import json

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint, save_checkpoint
from gan_core.config import get_profile
from gan_core.errors import BadCheckpointError, BadInputError, ProfileMismatchError
from gan_core.files import file_sha256
from gan_core.models import Discriminator, Generator, ImageEncoder, build_encoder
from gan_core.vae_train import VaeTrainer, holdout_split
from tests.cli_run import run_cli
from tests.core_data import boxes_npz, fake_renders, vae_config, vae_data


pytestmark = pytest.mark.usefixtures("one_thread")
_cfg = vae_config


@pytest.fixture
def data(tmp_path):
    return vae_data(tmp_path)


def _gan(tmp_path, z_prior="normal"):
    p = get_profile("tiny16").replace(z_prior=z_prior)
    torch.manual_seed(1)
    return save_checkpoint(tmp_path / "gan.pt", profile=p, kind="gan",
                           models={"generator": Generator(p), "discriminator": Discriminator(p)})


def test_split_is_deterministic_disjoint_and_kept_out_of_training(data, tmp_path):
    a_train, a_hold = holdout_split(100, 0.1, seed=3)
    b_train, b_hold = holdout_split(100, 0.1, seed=3)
    assert np.array_equal(a_hold, b_hold) and len(a_hold) == 10 and not set(a_train) & set(a_hold)
    assert not np.array_equal(holdout_split(100, 0.1, seed=4)[1], a_hold)
    tr = VaeTrainer(_cfg(data, tmp_path / "run", epochs=1))
    hold = set(tr.holdout_pos.tolist())
    assert len(hold) == 6 and not any(set(b.tolist()) & hold for b in tr._batches())
    tr.run()
    st = load_checkpoint(tmp_path / "run" / "latest.pt")["state"]
    assert sorted(st["holdout_rows"]) == sorted(hold) and len(st["train_rows"]) == 18
    assert st["data_sha256"] == file_sha256(data)


def test_recon_loss_falls_and_kl_is_a_nonnegative_mean_over_z(data, tmp_path):
    tr = VaeTrainer(_cfg(data, tmp_path / "run", kl_weight=1e-3, recon_weight=1.0))
    vox, imgs = tr.read_batch(tr.train_pos[:8], 0)
    rows = [tr.train_step(vox, imgs) for _ in range(12)]
    assert np.mean([r["recon"] for r in rows[-3:]]) < 0.8 * np.mean([r["recon"] for r in rows[:3]])
    assert all(r["kl"] >= 0 for r in rows)
    # the weighted kl is per latent dimension; kl_total is the usual sum over z
    assert all(r["kl_total"] == pytest.approx(r["kl"] * 32, rel=1e-5) for r in rows)
    assert rows[0]["kl_total"] > 1.0
    # the profile's (the paper's) weights, a1 = 5 and a2 = 1e-4: recon still falls
    paper = VaeTrainer(_cfg(data, tmp_path / "paper"))
    assert (paper.profile.kl_weight, paper.profile.recon_weight) == (5.0, 1e-4)
    rs = [paper.train_step(vox, imgs)["recon"] for _ in range(10)]
    assert np.mean(rs[-3:]) < 0.97 * np.mean(rs[:3])
    # with only the KL term, the posterior moves to the prior: KL falls towards 0
    kl_only = VaeTrainer(_cfg(data, tmp_path / "kl", kl_weight=1.0, recon_weight=0.0))
    ks = [kl_only.train_step(vox, imgs)["kl"] for _ in range(12)]
    assert ks[-1] < 0.5 * ks[0]


def test_from_gan_frozen_trains_only_the_encoder(data, tmp_path):
    gan = _gan(tmp_path)
    ck = load_checkpoint(gan)
    tr = VaeTrainer(_cfg(data, tmp_path / "run", from_gan=str(gan), kl_weight=1e-3, recon_weight=1.0))
    assert tr.cfg.frozen
    for k, v in tr.G.state_dict().items():
        assert torch.equal(v, ck["generator"][k]), k
    e_before = {k: v.clone() for k, v in tr.E.state_dict().items()}
    vox, imgs = tr.read_batch(tr.train_pos[:8], 0)
    rows = [tr.train_step(vox, imgs) for _ in range(8)]
    assert "d_loss" not in rows[0]  # D is not needed when G is frozen
    for k, v in tr.G.state_dict().items():  # weights and BatchNorm statistics untouched (eval mode)
        assert torch.equal(v, ck["generator"][k]), k
    assert any(not torch.equal(v, e_before[k]) for k, v in tr.E.state_dict().items())
    assert rows[-1]["recon"] < rows[0]["recon"]
    # unfrozen: all three learn, D on real vs G(z) and G(E(y))
    tr2 = VaeTrainer(_cfg(data, tmp_path / "run2", from_gan=str(gan), freeze_generator=False,
                          d_acc_threshold=1.0))
    m = tr2.train_step(vox, imgs)
    assert m["d_updated"] and {"g_loss", "d_loss", "d_acc"} <= set(m)
    assert any(not torch.equal(v, ck["generator"][k]) for k, v in tr2.G.state_dict().items())


def test_gan_weight_zero_trains_e_and_g_on_reconstruction_without_d(data, tmp_path):
    gan = _gan(tmp_path)
    d_before = {k: v.clone() for k, v in load_checkpoint(gan)["discriminator"].items()}
    tr = VaeTrainer(_cfg(data, tmp_path / "run", from_gan=str(gan), freeze_generator=False, gan_weight=0.0,
                         kl_weight=1e-3, recon_weight=1.0, epochs=1))
    g_before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    vox, imgs = tr.read_batch(tr.train_pos[:8], 0)
    rows = [tr.train_step(vox, imgs) for _ in range(12)]
    assert not {"g_loss", "d_loss"} & set(rows[0])
    assert np.mean([r["recon"] for r in rows[-3:]]) < 0.8 * np.mean([r["recon"] for r in rows[:3]])
    assert any(not torch.equal(v, g_before[k]) for k, v in tr.G.state_dict().items())
    assert all(torch.equal(v, d_before[k]) for k, v in tr.D.state_dict().items())
    last = tr.run()  # an epoch's metrics without D's
    assert "g_loss" not in last and np.isfinite(last["heldout_iou"])
    with pytest.raises(BadInputError, match="gan-weight"):
        _cfg(data, tmp_path / "x", gan_weight=-1.0).validate()


@pytest.mark.parametrize("update_d", [False, True])
def test_generators_gradient_is_the_objectives(data, tmp_path, update_d):
    """G's gradient is that of gan_weight * L_GAN (with D as it stands after its step) + a2 * recon, whether the
    step reuses D's passes over G(z) and G(E(y)) (D not updated) or runs new ones; E's is that of KL + recon."""
    import copy

    from gan_core.latent import sample_z
    from gan_core.models import bce_logits, kl_divergence, reparameterize
    from gan_core.vae_train import generator_logits, recon_loss

    tr = VaeTrainer(_cfg(data, tmp_path / "run", kl_weight=1e-2, recon_weight=1e-2, gan_weight=0.5,
                         d_acc_threshold=1.0 if update_d else 1e-9))
    vox, imgs = tr.read_batch(tr.train_pos[:8], 0)
    tr.train_step(vox, imgs)  # past the first step
    e0, g0, z_state, rng = copy.deepcopy(tr.E), copy.deepcopy(tr.G), tr.z_gen.get_state(), torch.get_rng_state()
    assert tr.train_step(vox, imgs)["d_updated"] == update_d
    torch.set_rng_state(rng)  # the step's draws, replayed in its order
    mean, logvar = e0(torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0)
    rec = torch.sigmoid(generator_logits(g0, reparameterize(mean, logvar)))
    recon = recon_loss(rec, torch.from_numpy(vox).float())
    fake = g0(sample_z(8, tr.profile, generator=torch.Generator().set_state(z_state)))
    g_gan = sum(bce_logits(tr.D.logits(t.unsqueeze(1)), 1.0) for t in (fake, rec))
    want_g = torch.autograd.grad(0.5 * g_gan + 1e-2 * recon, list(g0.parameters()), retain_graph=True)
    want_e = torch.autograd.grad(1e-2 * kl_divergence(mean, logvar) / tr.profile.z_dim + 1e-2 * recon,
                                 list(e0.parameters()))
    for net, wants in ((tr.G, want_g), (tr.E, want_e)):
        for (name, p), want in zip(net.named_parameters(), wants):
            torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()), msg=name)


def test_encoder_from_takes_another_runs_encoder_in_front_of_a_new_generator(data, tmp_path):
    """A per-category encoder starts from the all-class one: E's weights come from --encoder-from, G's from
    --from-gan; an encoder of another size or a GAN checkpoint without one is refused."""
    p = get_profile("tiny16")
    torch.manual_seed(5)
    donor_e = ImageEncoder(p)
    donor = save_checkpoint(tmp_path / "donor.pt", profile=p, kind="vaegan",
                            models={"generator": Generator(p), "encoder": donor_e})
    gan = _gan(tmp_path)
    tr = VaeTrainer(_cfg(data, tmp_path / "run", from_gan=str(gan), encoder_from=str(donor)))
    for k, v in tr.E.state_dict().items():
        assert torch.equal(v, donor_e.state_dict()[k]), k
    for k, v in tr.G.state_dict().items():  # the generator is --from-gan's, not the donor's
        assert torch.equal(v, load_checkpoint(gan)["generator"][k]), k
    with pytest.raises(BadCheckpointError, match="has no image encoder"):
        VaeTrainer(_cfg(data, tmp_path / "r2", from_gan=str(gan), encoder_from=str(gan)))
    res = p.replace(encoder="resnet")
    other = save_checkpoint(tmp_path / "other.pt", profile=res, kind="vaegan",
                            models={"generator": Generator(res), "encoder": build_encoder(res)})
    with pytest.raises(ProfileMismatchError, match="a resnet encoder"):
        VaeTrainer(_cfg(data, tmp_path / "r3", from_gan=str(gan), encoder_from=str(other)))
    with pytest.raises(BadInputError, match="--encoder-from needs --from-gan"):
        VaeTrainer(_cfg(data, tmp_path / "r4", encoder_from=str(donor)))


def test_from_gan_refuses_other_architecture_and_prior(data, tmp_path):
    p = get_profile("fast32")
    save_checkpoint(tmp_path / "big.pt", profile=p, models={"generator": Generator(p)})
    with pytest.raises(ProfileMismatchError, match="--from-gan"):
        VaeTrainer(_cfg(data, tmp_path / "run", from_gan=str(tmp_path / "big.pt")))
    with pytest.raises(ProfileMismatchError, match="prior"):
        VaeTrainer(_cfg(data, tmp_path / "run", from_gan=str(_gan(tmp_path, z_prior="uniform"))))


def test_run_logs_and_resume_continues_exactly(data, tmp_path):
    full = VaeTrainer(_cfg(data, tmp_path / "full"))
    full.run()
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["type"] == "config" and rows[0]["kind"] == "vaegan" and rows[0]["n_holdout"] == 6
    steps = [r for r in rows if r["type"] == "step"]
    epochs = [r for r in rows if r["type"] == "epoch"]
    assert len(steps) == 4 and {"kl", "recon", "iou"} <= set(steps[0])
    assert [e["epoch"] for e in epochs] == [1, 2] and 0 <= epochs[-1]["heldout_iou"] <= 1
    assert {"heldout_kl", "heldout_recon", "heldout_iou_rot", "train_iou"} <= set(epochs[-1])
    ck = load_checkpoint(tmp_path / "full" / "latest.pt")
    assert ck["kind"] == "vaegan" and {"generator", "discriminator", "encoder"} <= set(ck)

    part = VaeTrainer(_cfg(data, tmp_path / "part", max_steps=3))  # stops mid-epoch 2
    part.run()
    st = load_checkpoint(tmp_path / "part" / "latest.pt")["state"]
    assert (st["epoch"], st["step"], st["batch_in_epoch"]) == (1, 3, 1)
    resumed = VaeTrainer(_cfg(data, tmp_path / "part", resume=True))
    assert resumed.step == 3 and np.array_equal(resumed.holdout_pos, part.holdout_pos)
    resumed.run()
    assert resumed.step == full.step == 4
    for (name, a), b in zip(full.E.state_dict().items(), resumed.E.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
    other = boxes_npz(tmp_path / "other.npz", n=24, seed=9)
    fake_renders(other, tmp_path / "other.h5")
    with pytest.raises(ProfileMismatchError, match="different data"):
        VaeTrainer(_cfg(other, tmp_path / "part", resume=True, renders=str(tmp_path / "other.h5")))


def test_renders_must_match_data_and_profile(data, tmp_path):
    other = boxes_npz(tmp_path / "o.npz", n=24, seed=4)
    with pytest.raises(BadInputError, match="another data file"):
        VaeTrainer(_cfg(other, tmp_path / "run"))
    fake_renders(data, tmp_path / "small.h5", size=32)
    with pytest.raises(ProfileMismatchError, match="--size 64"):
        VaeTrainer(_cfg(data, tmp_path / "run", renders=str(tmp_path / "small.h5")))


def test_command_runs_and_errors_are_one_line(data, tmp_path, capsys):
    base = ["--data", str(data), "--renders", str(tmp_path / "renders.h5"), "--profile", "tiny16"]
    rc, out, err = run_cli(capsys, "train-vae", *base, "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "8",
                        "--holdout", "0.25", "--precision", "fp32", "--min-voxels", "1")
    assert rc == 0, err
    assert json.loads(out)["epoch"] == 1 and 0 <= json.loads(out)["heldout_iou"] <= 1
    rc, out, _ = run_cli(capsys, "train-vae", *base, "--out", str(tmp_path / "dry"), "--dry-run", "--kl-weight", "0.5")
    assert rc == 0 and json.loads(out)["profile"]["kl_weight"] == 0.5 and not (tmp_path / "dry").exists()
    cases = [
        (["--out", str(tmp_path / "r"), "--freeze-generator"],
         "BadInputError: --freeze-generator needs --from-gan (a frozen untrained generator cannot learn)"),
        (["--out", str(tmp_path / "r"), "--holdout", "1.5"], "BadInputError: --holdout must be in [0, 1), got 1.5"),
        (["--out", str(tmp_path / "r"), "--from-gan", str(tmp_path / "no.pt")],
         f"BadFileError: --from-gan {tmp_path / 'no.pt'}: no such file"),
        (["--out", str(tmp_path / "r"), "--kl-weight", "-1"], "BadInputError: --kl-weight must be a number >= 0, got -1.0"),
    ]
    for argv, line in cases:
        rc, out, err = run_cli(capsys, "train-vae", *base, *argv)
        assert rc == 1 and err.strip() == line and out == ""


def test_bce_learns_through_a_saturated_generator_where_mse_stalls(data, tmp_path):
    """A confident GAN generator saturates its sigmoid: the squared error's gradient vanishes there, the
    cross-entropy's (on logits) does not."""
    from gan_core.vae_train import generator_logits

    p = get_profile("tiny16")
    torch.manual_seed(1)
    g = Generator(p)
    with torch.no_grad():
        g.net[-2].bias.fill_(-8.0)  # every voxel ~3e-4: saturated, like a confident G on empty space
    gan = save_checkpoint(tmp_path / "sat.pt", profile=p, kind="gan",
                          models={"generator": g, "discriminator": Discriminator(p)})
    z = torch.randn(3, p.z_dim)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(generator_logits(g.eval(), z)), g(z), atol=1e-6)
    drops = {}
    for kind in ("mse", "bce"):
        tr = VaeTrainer(_cfg(data, tmp_path / kind, from_gan=str(gan), recon_loss=kind, kl_weight=1e-3,
                             recon_weight=1.0))
        vox, imgs = tr.read_batch(tr.train_pos[:8], 0)
        rows = [tr.train_step(vox, imgs) for _ in range(8)]
        drops[kind] = rows[0]["recon"] - np.mean([r["recon"] for r in rows[-2:]])
        assert rows[0]["sse"] > 0 and (kind != "mse" or rows[0]["sse"] == rows[0]["recon"])
    assert drops["bce"] > 10 * max(drops["mse"], 1e-3)


def test_pos_weight_weighs_occupied_voxels_and_keeps_thin_parts_above_the_iso_level():
    """With a thin target (2% occupied), plain BCE's best constant prediction sits far below 0.5, so the part
    vanishes at the iso level; pos_weight = empty / occupied moves the optimum to 0.5."""
    from gan_core.vae_objective import recon_bce

    target = torch.zeros(1, 10, 10, 10)
    target[0, 4:6, 4:6, :5] = 1  # 20 of 1000 voxels
    logits = torch.full_like(target, 0.3)
    manual = -(4.0 * target * torch.log(torch.sigmoid(logits))
               + (1 - target) * torch.log(1 - torch.sigmoid(logits))).sum()
    assert recon_bce(logits, target, 4.0).item() == pytest.approx(manual.item(), rel=1e-5)
    assert recon_bce(logits, target).item() < recon_bce(logits, target, 4.0).item()

    def best_constant(pw):
        c = torch.zeros((), requires_grad=True)
        opt = torch.optim.SGD([c], lr=1e-3)
        for _ in range(3000):
            opt.zero_grad()
            recon_bce(c.expand_as(target), target, pw).backward()
            opt.step()
        return torch.sigmoid(c).item()

    assert best_constant(1.0) == pytest.approx(0.02, abs=0.005)
    assert best_constant(49.0) == pytest.approx(0.5, abs=0.02)


def test_pos_weight_must_be_positive(data, tmp_path):
    with pytest.raises(BadInputError, match="--pos-weight"):
        _cfg(data, tmp_path / "run", recon_loss="bce", pos_weight=0.0).validate()


def test_fine_tuning_a_packed_vae_without_discriminator(data, tmp_path):
    """A packed 3D-VAE (G + E, no D) continues as a 3D-VAE (--gan-weight 0) from its own encoder; the paper's
    objective, which trains D, says what is missing."""
    p = get_profile("tiny16")
    torch.manual_seed(2)
    enc = ImageEncoder(p)
    vae = save_checkpoint(tmp_path / "vae.pt", profile=p, kind="vaegan",
                          models={"generator": Generator(p), "encoder": enc})
    tr = VaeTrainer(_cfg(data, tmp_path / "run", from_gan=str(vae), freeze_generator=False, gan_weight=0.0))
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in tr.E.state_dict().items())
    vox, imgs = tr.read_batch(tr.train_pos[:8], 0)
    assert np.isfinite(tr.train_step(vox, imgs)["recon"])
    with pytest.raises(BadCheckpointError, match="no discriminator.*--gan-weight 0"):
        VaeTrainer(_cfg(data, tmp_path / "run2", from_gan=str(vae), freeze_generator=False))
