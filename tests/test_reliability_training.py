"""A trainer killed at any moment loses at most the steps since its last checkpoint: latest.pt always loads,
--resume continues, no temporary files pile up; SIGTERM saves and exits 0; a full disk, a read-only run
directory and a diverging loss are one-line errors that keep the last good checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.errors import BadFileError, BadInputError, Gan3dError
from gan_core.train import TrainConfig, Trainer
from tests import reliability_train as rt
from tests.reliability_faults import enospc, read_only_dir, stray_temps


@pytest.fixture
def data(tmp_path):
    return rt.tiny_data(tmp_path / "boxes.npz")


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), profile="tiny16", epochs=1, batch_size=8, precision="fp32",
                channels_last=False, seed=0, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_killed_mid_checkpoint_write_then_resumed_then_stopped(data, tmp_path):
    out = tmp_path / "run"
    seen = rt.kill_during_write(data, out, slow_save_s=1.0)
    assert seen["returncode"] == -9 and seen["temp"], seen
    assert seen["step"] is not None and seen["step"] >= 1, "latest.pt must still load after the kill"
    assert rt.temps(out), "the killed write leaves its temp file (nothing can remove it)..."

    stopped = rt.stop_with_sigterm(data, out, extra_steps=2)
    assert rt.temps(out) == [], "...until the next run starts"
    assert stopped["returncode"] == 0, stopped["stderr"][-2000:]
    assert stopped["start_step"] >= seen["step"]
    rows = stopped["rows"]
    assert rows[-1]["type"] == "stopped" and rows[-1]["step"] == stopped["step"]
    assert stopped["step"] >= stopped["start_step"] + 2
    assert json.loads(stopped["stdout"].strip().splitlines()[-1])["step"] == stopped["step"]

    tr = Trainer(_cfg(data, out, epochs=1000, resume=True, max_steps=stopped["step"] + 1))
    assert tr.step == stopped["step"]
    tr.run()
    assert load_checkpoint(out / "latest.pt")["state"]["step"] == stopped["step"] + 1


@pytest.mark.slow
def test_killed_at_random_moments_always_resumes(data, tmp_path):
    out = tmp_path / "run"
    rng = np.random.default_rng(0)
    during_write = 0
    for _ in range(12):
        r = rt.kill_at_random(data, out, rng, max_delay=2.0, slow_save_s=0.3)
        during_write += r["writing"]
        if r["before"] is not None:
            assert r["after"] is not None and r["after"] >= r["before"], r
    assert during_write >= 2, "some kills must land during a checkpoint write"
    stopped = rt.stop_with_sigterm(data, out, extra_steps=1)
    assert stopped["returncode"] == 0 and rt.temps(out) == []


def test_full_disk_during_training_keeps_the_last_checkpoint(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    Trainer(_cfg(data, out, max_steps=1)).run()
    good = (out / "latest.pt").read_bytes()
    tr = Trainer(_cfg(data, out, resume=True, epochs=5))
    monkeypatch.setattr(torch, "save", enospc)
    with pytest.raises(BadFileError, match=r"latest\.pt: cannot write \(No space left on device\)"):
        tr.run()
    monkeypatch.undo()
    assert (out / "latest.pt").read_bytes() == good and stray_temps(out) == []
    assert Trainer(_cfg(data, out, resume=True)).step == 1


def test_metrics_log_on_a_full_disk_is_a_clear_error(data, tmp_path, monkeypatch):
    import gan_core.training_loop as loop_mod

    out = tmp_path / "run"
    tr = Trainer(_cfg(data, out))

    class FullFile:
        def __init__(self, *a, **k):
            pass

        def write(self, text):
            enospc()

        flush = close = lambda self: None

    monkeypatch.setattr(loop_mod, "open", FullFile, raising=False)
    with pytest.raises(BadFileError, match=r"metrics\.jsonl: cannot write \(No space left on device\)"):
        tr.run()


def test_read_only_run_directory(data, tmp_path):
    ro = read_only_dir(tmp_path)
    with pytest.raises(BadInputError, match="cannot write there") as info:
        Trainer(_cfg(data, ro / "run"))
    assert "\n" not in str(info.value)


def test_out_is_a_file(data, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInputError, match="--out .*cannot write there"):
        Trainer(_cfg(data, tmp_path / "f"))


def test_divergence_stops_cleanly_and_keeps_the_last_good_checkpoint(data, tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(data, out, max_steps=1)).run()
    good = (out / "latest.pt").read_bytes()
    tr = Trainer(_cfg(data, out, resume=True, epochs=5, g_lr=1e36, d_lr=1e36, d_acc_threshold=1.0))
    with pytest.raises(Gan3dError, match="diverged") as info:
        tr.run()
    assert "\n" not in str(info.value) and "latest.pt" in str(info.value)
    assert (out / "latest.pt").read_bytes() == good, "non-finite weights must never overwrite a good checkpoint"


def test_non_finite_weights_are_never_saved(data, tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(data, out, max_steps=1)).run()
    good = (out / "latest.pt").read_bytes()
    tr = Trainer(_cfg(data, out, resume=True))
    with torch.no_grad():
        next(tr.G.parameters()).view(-1)[0] = float("nan")  # an update blew a weight up; no loss saw it yet
    with pytest.raises(Gan3dError, match="generator weights became non-finite"):
        tr.save()
    assert (out / "latest.pt").read_bytes() == good


@pytest.mark.parametrize("lr", ["3.5e38", "inf", "nan", "0", "-1"])
def test_absurd_learning_rates_are_refused(data, tmp_path, lr):
    with pytest.raises(BadInputError, match="--g-lr must be a positive number"):
        Trainer(_cfg(data, tmp_path / "run", g_lr=float(lr)))


def test_damaged_training_state_is_a_clear_error(data, tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(data, out, max_steps=1)).run()
    ck = torch.load(out / "latest.pt", weights_only=True)
    ck["state"] = {"epoch": "one"}
    torch.save(ck, out / "latest.pt")
    with pytest.raises(Gan3dError, match="training state") as info:
        Trainer(_cfg(data, out, resume=True))
    assert "\n" not in str(info.value)


def test_resume_applies_this_runs_learning_rates(data, tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(data, out, max_steps=1)).run()
    tr = Trainer(_cfg(data, out, resume=True, g_lr=1e-4, d_lr=2e-6, beta1=0.9))
    assert tr.step == 1
    assert [g["lr"] for g in tr.opt_g.param_groups] == [1e-4] and tr.opt_g.param_groups[0]["betas"][0] == 0.9
    assert [g["lr"] for g in tr.opt_d.param_groups] == [2e-6]


def test_divergence_is_a_clear_error_and_saves_nothing(data, tmp_path):
    out = tmp_path / "run"
    tr = Trainer(_cfg(data, out, epochs=5, g_lr=1e36, d_lr=1e36, d_acc_threshold=1.0))
    with pytest.raises(Gan3dError, match="diverged") as info:
        tr.run()
    assert "\n" not in str(info.value) and "latest.pt" in str(info.value)
    assert not (out / "latest.pt").exists()
