"""Behaviours no test covered before: --init-from, the collapse warnings, pack --fp32 / --encoder-from, and the
real bundled registry, checkpoints and bank loaded as the app loads them at start (other tests patch it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.runtime import REGISTRY, find_model, list_models, load_bank, load_model
from gan_core.train import Trainer
from tests.cli_run import last_json, run_cli
from tests.core_data import boxes_npz, gan_config


def _cfg(data, out, **kw):
    return gan_config(data, out, **{"epochs": 1, **kw})


@pytest.fixture
def data(tmp_path):
    return boxes_npz(tmp_path / "boxes.npz")


@pytest.fixture
def trained(data, tmp_path):
    tr = Trainer(_cfg(data, tmp_path / "src", max_steps=2, seed=3))
    tr.run()
    return tmp_path / "src" / "latest.pt"


def test_init_from_starts_from_the_checkpoints_weights(data, tmp_path, trained):
    src = load_checkpoint(trained)
    tr = Trainer(_cfg(data, tmp_path / "ft", init_from=str(trained), seed=9))  # another seed: other random init
    for key, net in (("generator", tr.G), ("discriminator", tr.D)):
        for name, value in net.state_dict().items():
            assert torch.equal(value, src[key][name]), (key, name)
    assert tr.step == 0 and tr.epoch == 0  # weights only: a new run's counters


def test_init_from_a_generator_only_file_continues_g_against_a_new_d(data, tmp_path, trained, capsys, caplog):
    """The per-category assets hold G only (8-bit): --init-from takes G (and starts its average there) and a
    freshly initialised D, with a warning, instead of refusing the file."""
    rc, _, err = run_cli(capsys, "pack", "--checkpoint", trained, "--out", tmp_path / "g.pt", "--parts", "generator",
                         "--fp32")
    assert rc == 0, err
    g_only = load_checkpoint(tmp_path / "g.pt")
    assert "discriminator" not in g_only
    fresh = Trainer(_cfg(data, tmp_path / "fresh", seed=9))
    with caplog.at_level("WARNING"):
        tr = Trainer(_cfg(data, tmp_path / "ft", init_from=str(tmp_path / "g.pt"), seed=9))
    assert "has no discriminator: D starts from scratch" in caplog.text
    for name, value in tr.G.state_dict().items():
        assert torch.equal(value, g_only["generator"][name]), name
    for name, value in tr.D.state_dict().items():  # the same seed's untrained D, not the source run's
        assert torch.equal(value, fresh.D.state_dict()[name]), name
    tr.run()
    assert tr.step > 0


def test_collapse_warnings_name_what_collapsed(data, tmp_path, caplog):
    tr = Trainer(_cfg(data, tmp_path / "run"))
    with torch.no_grad():  # the output layer's bias at -20: every voxel ~0, an empty preview
        tr.G.net[-2].bias.fill_(-20.0)
        tr.G.net[-2].weight.zero_()
    with caplog.at_level("WARNING"):
        rec = tr._epoch_metrics([])
    assert rec["empty_rate"] == 1.0 and rec["warning"] == "collapse: 100% of preview samples empty, 0% full"
    assert "collapse" in caplog.text
    with torch.no_grad():  # +20: every voxel full
        tr.G.net[-2].bias.fill_(20.0)
    assert tr._epoch_metrics([])["warning"] == "collapse: 0% of preview samples empty, 100% full"


def test_pack_keeps_fp32_on_request_and_takes_an_encoder_from_another_file(tmp_path, trained, capsys):
    rc, out, _ = run_cli(capsys, "pack", "--checkpoint", trained, "--out", tmp_path / "half.pt")
    assert rc == 0
    half = load_checkpoint(tmp_path / "half.pt")
    assert all(v.dtype == torch.float16 for v in half["generator"].values() if v.is_floating_point())
    rc, out, _ = run_cli(capsys, "pack", "--checkpoint", trained, "--out", tmp_path / "full.pt", "--fp32")
    full = load_checkpoint(tmp_path / "full.pt")
    src = load_checkpoint(trained)
    assert rc == 0 and all(torch.equal(full["generator"][k], v) for k, v in src["generator"].items())
    rc, out, err = run_cli(capsys, "pack", "--checkpoint", trained, "--out", tmp_path / "enc.pt",
                           "--encoder-from", trained)
    assert rc == 1 and "has no encoder weights" in err  # a GAN checkpoint has no encoder to take


@pytest.mark.skipif(not REGISTRY.is_file(), reason="no bundled registry in this checkout")
def test_the_real_registry_checkpoints_and_bank_load_as_at_start():
    entries = list_models()
    names = [m.name for m in entries]
    assert len(names) == len(set(names)) and all(m.checkpoint.is_file() for m in entries)
    default = find_model()
    assert default.default and default.bank is not None and default.bank.is_file()
    model = load_model(default.checkpoint, device="cpu", precision="fp32")
    bank = load_bank(default.bank, model)  # refuses a bank of another discriminator
    shape = model.generate(model.sample_z(1, default.extra.get("seeds", [0])[0]))[0]
    r = model.profile.resolution
    assert shape.shape == (r, r, r) and 0 < (shape > 0.5).mean() < 0.9  # the first showcase seed is a shape
    assert len(bank) > 0
    for m in entries:  # every bundled checkpoint opens, with the networks its entry promises
        ck = load_model(m.checkpoint, device="cpu", precision="fp32")
        assert ck.generator is not None
        if m.extra.get("encoder"):
            assert ck.encoder is not None


def test_int8_quantisation_error_is_within_half_a_step():
    from gan_core.checkpoint import quantize_int8

    w = torch.tensor([[0.5, -1.0, 0.25, 0.1], [2.0, 0.0, -0.3, 1.0]])
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and torch.allclose(scale, torch.tensor([1.0, 2.0]) / 127)  # max |w| per row / 127
    assert q[0].tolist() == [64, -127, 32, 13] and q[1].tolist() == [127, 0, -19, 64]  # round(w / scale) by hand
    assert float((q.float() * scale[:, None] - w).abs().max()) <= float(scale.max()) / 2 + 1e-7


def test_pack_int8_round_trips_and_keeps_the_samples(tmp_path, trained, capsys):
    rc, out, _ = run_cli(capsys, "pack", "--checkpoint", trained, "--out", tmp_path / "q.pt", "--int8",
                         "--parts", "generator")
    assert rc == 0
    rc, _, _ = run_cli(capsys, "pack", "--checkpoint", trained, "--out", tmp_path / "h.pt", "--parts", "generator")
    assert (tmp_path / "q.pt").stat().st_size < 0.75 * (tmp_path / "h.pt").stat().st_size
    q = load_checkpoint(tmp_path / "q.pt")  # floats again: no reader sees the 8-bit layout
    assert all("#" not in k and (v.is_floating_point() or k.endswith("num_batches_tracked"))
               for k, v in q["generator"].items())
    a = load_model(tmp_path / "q.pt", device="cpu", precision="fp32")
    b = load_model(tmp_path / "h.pt", device="cpu", precision="fp32")
    z = a.sample_z(8, 0)
    pa, pb = a.generate(z, use_cache=False), b.generate(z, use_cache=False)
    assert float(np.abs(pa - pb).max()) < 0.05  # occupancy probabilities move by at most a few hundredths
    rc, _, err = run_cli(capsys, "pack", "--checkpoint", trained, "--out", tmp_path / "x.pt", "--int8", "--fp32")
    assert rc == 1 and "exclude each other" in err
