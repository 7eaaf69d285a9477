"""Training: learning happens, D gating skips updates, checkpoints resume exactly, mismatches are refused."""

import json

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint, save_checkpoint
from gan_core.config import get_profile
from gan_core.errors import BadCheckpointError, BadInputError, ProfileMismatchError
from gan_core.models import Generator
from gan_core.train import EMA_RAMPUP, TrainConfig, Trainer
from tests.core_data import boxes_npz, gan_config


@pytest.fixture
def data(tmp_path):
    return boxes_npz(tmp_path / "boxes.npz")


_cfg = gan_config


def test_discriminator_learns(data, tmp_path):
    tr = Trainer(_cfg(data, tmp_path / "run", d_lr=2e-3, g_lr=1e-6, d_acc_threshold=1.0))
    batch = tr.data.read(np.arange(8))
    losses = [tr.train_step(batch)["d_loss"] for _ in range(15)]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_generator_learns_against_fixed_discriminator(data, tmp_path):
    tr = Trainer(_cfg(data, tmp_path / "run", g_lr=2e-3, d_acc_threshold=1e-9))
    batch = tr.data.read(np.arange(8))
    losses = [tr.train_step(batch)["g_loss"] for _ in range(15)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_gating_skips_discriminator_updates(data, tmp_path):
    tr = Trainer(_cfg(data, tmp_path / "run", d_acc_threshold=1e-9))
    before = {k: v.clone() for k, v in tr.D.state_dict().items() if v.is_floating_point()}
    rows = [tr.train_step(tr.data.read(np.arange(8))) for _ in range(3)]
    assert not any(r["d_updated"] for r in rows)
    after = tr.D.state_dict()
    # weights untouched (BN running stats move in train mode; the parameters must not)
    for name, p in tr.D.named_parameters():
        assert torch.equal(before[name], after[name]), name
    tr2 = Trainer(_cfg(data, tmp_path / "run2", d_acc_threshold=1.0))
    assert all(tr2.train_step(tr2.data.read(np.arange(8)))["d_updated"] for _ in range(2))


def test_generator_step_takes_no_discriminator_weight_gradients(data, tmp_path):
    tr = Trainer(_cfg(data, tmp_path / "run", d_acc_threshold=1e-9))  # D never updated: only G's step backpropagates
    tr.train_step(tr.data.read(np.arange(8)))
    assert all(p.grad is None and p.requires_grad for p in tr.D.parameters())
    assert all(p.grad is not None for p in tr.G.parameters())


@pytest.mark.parametrize("update_d", [False, True])
def test_generator_gradient_is_the_recipes(data, tmp_path, update_d):
    """G's gradient is that of D(G(z)) with D as it stands after its step, whether the step reuses D's pass over
    the fakes (D not updated) or runs a new one (D updated)."""
    import copy

    from gan_core.latent import sample_z
    from gan_core.models import bce_logits

    tr = Trainer(_cfg(data, tmp_path / "run", instance_noise=0.0, d_acc_threshold=1.0 if update_d else 1e-9))
    tr.train_step(tr.data.read(np.arange(8)))  # past the first step's zero Adam state
    g_before, z_state = copy.deepcopy(tr.G), tr.z_gen.get_state()
    row = tr.train_step(tr.data.read(np.arange(8)))
    assert row["d_updated"] == update_d
    z = sample_z(8, tr.profile, generator=torch.Generator().set_state(z_state))
    loss = bce_logits(tr.D.logits(g_before(z).unsqueeze(1)), 1.0)
    expected = torch.autograd.grad(loss, list(g_before.parameters()))
    for (name, p), want in zip(tr.G.named_parameters(), expected):
        torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()), msg=name)


def test_run_writes_checkpoints_metrics_and_samples(data, tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(data, out, snapshot_every=1)).run()
    assert (out / "latest.pt").exists() and (out / "epoch_0001.pt").exists() and (out / "epoch_0002.pt").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["type"] == "config" and rows[0]["profile"]["name"] == "tiny16"
    epochs = [r for r in rows if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert {"g_loss", "d_loss", "d_acc", "d_update_rate", "empty_rate", "full_rate"} <= set(epochs[0])
    steps = [r for r in rows if r["type"] == "step"]
    assert len(steps) == 2 * (24 // 8) and all(isinstance(r["d_updated"], bool) for r in steps)
    with np.load(out / "samples" / "latest.npz") as f:
        assert f["voxels"].shape == (16, 16, 16, 16) and f["z"].shape == (16, 32)
    ck = load_checkpoint(out / "latest.pt")
    assert ck["state"]["epoch"] == 2 and ck["state"]["step"] == 6 and "optimizers" in ck
    assert "optimizers" not in load_checkpoint(out / "epoch_0001.pt")


def test_resume_continues_exactly(data, tmp_path):
    full = Trainer(_cfg(data, tmp_path / "full", epochs=2))
    full.run()
    part = Trainer(_cfg(data, tmp_path / "part", epochs=2, max_steps=4))  # stops mid-epoch 2
    part.run()
    ck = load_checkpoint(tmp_path / "part" / "latest.pt")
    assert (ck["state"]["epoch"], ck["state"]["step"], ck["state"]["batch_in_epoch"]) == (1, 4, 1)
    resumed = Trainer(_cfg(data, tmp_path / "part", epochs=2, resume=True))
    assert resumed.step == 4
    exp_avg = next(iter(resumed.opt_g.state.values()))["exp_avg"]
    assert torch.equal(exp_avg, next(iter(part.opt_g.state.values()))["exp_avg"])
    resumed.run()
    assert resumed.step == full.step == 6
    for (name, a), b in zip(full.G.state_dict().items(), resumed.G.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_generator_average_moves_by_its_half_life(data, tmp_path):
    tr = Trainer(_cfg(data, tmp_path / "run", ema_kimg=0.016))  # half-life 16 images = 2 batches of 8
    with torch.no_grad():
        for p in tr.G.parameters():
            p.add_(1.0)
    before = [p.clone() for p in tr.G_ema.parameters()]
    tr.step = 1000  # past the ramp-up: the half-life applies in full
    tr._update_ema(8)  # one batch = half a half-life: keeps 0.5 ** 0.5 of the average
    keep = 0.5 ** 0.5
    for avg, old, p in zip(tr.G_ema.parameters(), before, tr.G.parameters()):
        assert torch.allclose(avg, keep * old + (1 - keep) * p, atol=1e-6)
    tr.step = 1  # ramp-up: early in a run the half-life is a fraction of the images seen
    before = [p.clone() for p in tr.G_ema.parameters()]
    tr._update_ema(8)
    keep = 0.5 ** (8 / (EMA_RAMPUP * 8))
    for avg, old, p in zip(tr.G_ema.parameters(), before, tr.G.parameters()):
        assert torch.allclose(avg, keep * old + (1 - keep) * p, atol=1e-6)


def test_generator_average_is_published_and_resumes_exactly(data, tmp_path):
    from gan_core.checkpoint import pack_checkpoint
    from gan_core.runtime import load_model

    full = Trainer(_cfg(data, tmp_path / "full", ema_kimg=0.05, snapshot_every=1))
    full.run()
    ck = load_checkpoint(tmp_path / "full" / "latest.pt")
    for key, net in (("generator", full.G_ema), ("generator_train", full.G)):
        assert all(torch.equal(ck[key][k], v) for k, v in net.state_dict().items()), key
    assert not torch.equal(ck["generator"]["net.0.weight"], ck["generator_train"]["net.0.weight"])
    assert "generator_train" not in load_checkpoint(tmp_path / "full" / "epoch_0002.pt")  # what users load
    packed = load_checkpoint(pack_checkpoint(ck, tmp_path / "packed.pt", half=False))
    assert "generator_train" not in packed
    shown = load_model(tmp_path / "packed.pt", device="cpu", precision="fp32").generator
    assert torch.equal(shown.state_dict()["net.0.weight"], full.G_ema.state_dict()["net.0.weight"])

    Trainer(_cfg(data, tmp_path / "part", ema_kimg=0.05, max_steps=4)).run()  # stops mid-epoch 2
    resumed = Trainer(_cfg(data, tmp_path / "part", ema_kimg=0.05, resume=True))
    resumed.run()
    for a, b in ((full.G, resumed.G), (full.G_ema, resumed.G_ema)):
        for (name, x), y in zip(a.named_parameters(), b.parameters()):
            assert torch.allclose(x, y, atol=1e-6), name


def test_resume_without_an_average_starts_one_at_the_generator(data, tmp_path):
    Trainer(_cfg(data, tmp_path / "run", epochs=1)).run()
    tr = Trainer(_cfg(data, tmp_path / "run", ema_kimg=1.0, resume=True))
    assert all(torch.equal(a, b) for a, b in zip(tr.G_ema.state_dict().values(), tr.G.state_dict().values()))
    with pytest.raises(BadInputError, match="ema-kimg"):
        _cfg(data, tmp_path / "bad", ema_kimg=-1.0).validate()


def test_a_recipe_fills_only_the_settings_left_out(data, tmp_path):
    from gan_core.config import RECIPES

    stable = _cfg(data, tmp_path / "a", recipe="stable")
    assert {k: getattr(stable, k) for k in RECIPES["stable"]} == RECIPES["stable"]
    mine = _cfg(data, tmp_path / "b", recipe="stable", label_smoothing=0.0, g_lr=5e-4)
    assert (mine.label_smoothing, mine.g_lr, mine.d_lr) == (0.0, 5e-4, RECIPES["stable"]["d_lr"])
    paper = _cfg(data, tmp_path / "c")
    assert (paper.g_lr, paper.label_smoothing, paper.ema_kimg) == (None, 0.0, 0.0)
    assert paper.resolved_profile().g_lr == get_profile("tiny16").g_lr
    fast = TrainConfig(data=str(data), out=str(tmp_path / "e"), profile="tiny16", recipe="fast")
    assert fast.resolved_profile().batch_size == 16 and fast.g_lr == RECIPES["stable"]["g_lr"]
    assert _cfg(data, tmp_path / "f", recipe="fast").resolved_profile().batch_size == 8  # given: kept
    with pytest.raises(BadInputError, match="unknown recipe"):
        _cfg(data, tmp_path / "d", recipe="quick")


def test_resume_refuses_other_profile_and_other_data(data, tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(data, out, epochs=1)).run()
    with pytest.raises(ProfileMismatchError, match="profile"):
        Trainer(_cfg(data, out, profile="fast32", resume=True))
    other = boxes_npz(tmp_path / "other.npz", seed=5)
    with pytest.raises(ProfileMismatchError, match="different data"):
        Trainer(_cfg(other, out, resume=True))


def test_checkpoints_load_with_weights_only_and_refuse_pickled_code(tmp_path):
    p = get_profile("tiny16")
    path = save_checkpoint(tmp_path / "a.pt", profile=p, models={"generator": Generator(p)})
    assert load_checkpoint(path)["profile"] == p

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "gan3d-checkpoint", "version": 1, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(BadCheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "trunc.pt").write_bytes(path.read_bytes()[:300])
    with pytest.raises(BadCheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "trunc.pt")
    torch.save({"some": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(BadCheckpointError, match="not a gan3d checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_fp16_assets_round_trip(tmp_path):
    p = get_profile("tiny16")
    g = Generator(p).eval()
    path = save_checkpoint(tmp_path / "h.pt", profile=p, models={"generator": g}, half=True)
    ck = load_checkpoint(path)
    assert ck["generator"]["net.0.weight"].dtype == torch.float16
    from gan_core.checkpoint import load_weights

    g2 = load_weights(Generator(p), ck, "generator").eval()
    z = torch.randn(2, p.z_dim)
    with torch.no_grad():
        assert torch.allclose(g(z), g2(z), atol=2e-3)
