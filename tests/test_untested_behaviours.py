"""Behaviours no test covered before: --init-from, the collapse warnings, pack --fp32 / --encoder-from, and the
real bundled registry, checkpoints and bank loaded as the app loads them at start (other tests patch it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.runtime import REGISTRY, find_model, list_models, load_bank, load_model
from gan_core.train import TrainConfig, Trainer
from tests.cli_run import last_json, run_cli
from tests.core_data import boxes_npz


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), profile="tiny16", epochs=1, batch_size=8, precision="fp32",
                channels_last=False, seed=0)
    base.update(kw)
    return TrainConfig(**base)


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
