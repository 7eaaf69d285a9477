"""A 3D-VAE-GAN run whose losses or weights become NaN / Inf stops with one TrainingDivergedError line and saves
nothing: the last good latest.pt stays as it was, and --resume with a lower learning rate continues from it."""

from __future__ import annotations

import pytest
import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.errors import TrainingDivergedError
from gan_core.vae_train import VaeTrainer
from tests.cli_run import run_cli
from tests.core_data import vae_config, vae_data
from tests.reliability_faults import checkpoint, stray_temps


pytestmark = pytest.mark.usefixtures("one_thread")
_cfg = vae_config


@pytest.fixture
def data(tmp_path):
    return vae_data(tmp_path)


@pytest.mark.parametrize("frozen", [False, True])
def test_divergence_is_one_line_and_keeps_the_last_good_checkpoint(data, tmp_path, frozen):
    out = tmp_path / "run"
    gan = str(checkpoint(tmp_path / "gan.pt")) if frozen else None  # frozen: only the encoder learns
    VaeTrainer(_cfg(data, out, max_steps=1, from_gan=gan)).run()
    good = (out / "latest.pt").read_bytes()
    tr = VaeTrainer(_cfg(data, out, resume=True, from_gan=gan, e_lr=1e36, g_lr=1e36, d_lr=1e36, d_acc_threshold=1.0))
    assert tr.opt_e.param_groups[0]["lr"] == 1e36, "resume must apply this run's learning rates"
    with pytest.raises(TrainingDivergedError, match="training diverged: the loss became non-finite") as info:
        tr.run()
    msg = str(info.value)
    assert "\n" not in msg and str(out / "latest.pt") in msg and "--e-lr" in msg
    assert (out / "latest.pt").read_bytes() == good, "a diverged run must never overwrite the last good state"
    assert stray_temps(out) == []
    assert VaeTrainer(_cfg(data, out, resume=True, from_gan=gan)).step == 1


def test_non_finite_weights_are_never_saved(data, tmp_path):
    out = tmp_path / "run"
    VaeTrainer(_cfg(data, out, max_steps=1)).run()
    good = (out / "latest.pt").read_bytes()
    tr = VaeTrainer(_cfg(data, out, resume=True))
    with torch.no_grad():
        next(tr.E.parameters()).view(-1)[0] = float("inf")  # an update blew a weight up; no loss saw it yet
    with pytest.raises(TrainingDivergedError, match="the encoder weights became non-finite by step 1"):
        tr.save()
    assert (out / "latest.pt").read_bytes() == good
    assert load_checkpoint(out / "latest.pt")["state"]["step"] == 1


def test_command_prints_one_line_and_exits_1(data, tmp_path, capsys):
    argv = ["train-vae", "--data", str(data), "--renders", str(tmp_path / "renders.h5"), "--profile", "tiny16",
            "--out", str(tmp_path / "run"), "--batch-size", "8", "--holdout", "0.25", "--precision", "fp32",
            "--min-voxels", "1", "--e-lr", "1e36", "--epochs", "2"]
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("TrainingDivergedError: training diverged: the loss became non-finite at step ")
    assert not (tmp_path / "run" / "latest.pt").exists()
