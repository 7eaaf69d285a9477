"""The GPU paths: generation, training (bf16 and fp16 with its gradient scaler), resume, features and the
VAE-GAN step run on a CUDA or MPS GPU and agree with the CPU. Skipped on machines without one (CI); run them
where there is one: `python -m pytest tests/test_gpu.py`."""

import json

import numpy as np
import pytest
import torch

from gan_core.checkpoint import load_checkpoint, save_checkpoint
from gan_core.config import get_profile
from gan_core.device import pick_device
from gan_core.models import Discriminator, Generator
from gan_core.runtime import load_model
from gan_core.train import TrainConfig, Trainer
from gan_core.vae_train import VaeTrainer
from tests.core_data import boxes_npz, vae_config, vae_data

GPU = pick_device("auto")
pytestmark = pytest.mark.skipif(GPU.type == "cpu", reason="no CUDA or MPS GPU here")


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny16 GAN checkpoint with fixed random weights, BatchNorm statistics moved off their defaults."""
    p = get_profile("tiny16")
    torch.manual_seed(0)
    g, d = Generator(p), Discriminator(p)
    with torch.no_grad():
        g.train()(torch.randn(16, p.z_dim))  # running statistics that differ from the initial (0, 1)
    return save_checkpoint(tmp_path / "gan.pt", profile=p, kind="gan", models={"generator": g, "discriminator": d})


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), profile="tiny16", epochs=2, batch_size=8, seed=0, device=str(GPU))
    base.update(kw)
    return TrainConfig(**base)


def test_auto_picks_the_gpu_in_fp32(checkpoint):
    model = load_model(checkpoint)
    assert model.device.type == GPU.type
    assert next(model.generator.parameters()).device.type == GPU.type
    assert model.amp_dtype is None  # fp32 (TF32 on CUDA): faster than bf16 autocast for these networks


@pytest.mark.parametrize("precision, atol", [("fp32", 5e-3), ("bf16", 3e-2), ("fp16", 3e-2)])
def test_gpu_generates_what_the_cpu_generates(checkpoint, precision, atol):
    cpu = load_model(checkpoint, device="cpu", precision="fp32")
    gpu = load_model(checkpoint, device=str(GPU), precision=precision)
    z = cpu.sample_z(8, seed=5)
    a, b = cpu.generate(z, use_cache=False), gpu.generate(z, use_cache=False)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(b, a, atol=atol)  # fp32: TF32 convolutions; bf16: the folded copy; fp16: autocast


def test_gpu_features_match_the_cpu(checkpoint):
    grids = (np.random.default_rng(0).random((6, 16, 16, 16)) > 0.7).astype(np.float32)
    a = load_model(checkpoint, device="cpu", precision="fp32").features(grids)
    b = load_model(checkpoint, device=str(GPU), precision="fp32").features(grids)
    np.testing.assert_allclose(b, a, rtol=2e-2, atol=2e-2 * float(np.abs(a).max()))


@pytest.mark.parametrize("precision", ["auto", "bf16", "fp16"])
def test_gpu_training_runs_saves_cpu_loadable_checkpoints_and_resumes(tmp_path, precision):
    data = boxes_npz(tmp_path / "boxes.npz")
    out = tmp_path / "run"
    Trainer(_cfg(data, out, precision=precision, ema_kimg=0.05, max_steps=4)).run()  # stops inside epoch 2
    ck = load_checkpoint(out / "latest.pt")
    assert ck["state"]["step"] == 4
    assert all(t.device.type == "cpu" for t in ck["generator"].values())  # loadable on a machine without a GPU
    resumed = Trainer(_cfg(data, out, precision=precision, ema_kimg=0.05, resume=True))
    assert resumed.step == 4 and resumed.device.type == GPU.type
    resumed.run()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["type"] == "step"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6] and all(np.isfinite(r["g_loss"]) for r in steps)
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == [1, 2]
    cpu = load_model(out / "latest.pt", device="cpu", precision="fp32")  # the GPU's run, shown on a CPU
    assert np.isfinite(cpu.generate(cpu.sample_z(2, seed=0))).all()


def test_gpu_training_step_matches_the_cpu_step(tmp_path, monkeypatch):
    """Same weights, batch and z: one fp32 step on the GPU computes the CPU's losses and G's gradients. TF32 is
    off here: its 10-bit mantissa moved the first layer's small gradient by more than 1% of its largest on an
    H200. Not the weights: Adam's first step moves each by +-lr whatever the gradient's size, so a gradient near
    0 may flip sign between devices."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    data = boxes_npz(tmp_path / "boxes.npz")
    trainers = [Trainer(_cfg(data, tmp_path / dev, device=dev, precision="fp32", channels_last=False,
                             d_acc_threshold=1.0)) for dev in ("cpu", str(GPU))]
    batch = trainers[0].data.read(np.arange(8))
    rows = [t.train_step(batch) for t in trainers]
    assert rows[1]["d_loss"] == pytest.approx(rows[0]["d_loss"], rel=1e-2)
    assert rows[1]["g_loss"] == pytest.approx(rows[0]["g_loss"], rel=1e-2)
    for (name, a), b in zip(trainers[0].G.named_parameters(), trainers[1].G.parameters()):
        scale = float(a.grad.abs().max())
        assert scale > 0, name
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=0, atol=1e-3 * scale, msg=name)


def test_gpu_vae_gan_run_trains_and_resumes(tmp_path):
    data = vae_data(tmp_path)
    out = tmp_path / "vae"
    VaeTrainer(vae_config(data, out, device=str(GPU), precision="auto", max_steps=3)).run()
    resumed = VaeTrainer(vae_config(data, out, device=str(GPU), precision="auto", resume=True))
    assert resumed.step == 3
    resumed.run()
    epochs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in epochs if r["type"] == "epoch"][-1]
    assert last["epoch"] == 2 and 0 <= last["heldout_iou"] <= 1
    model = load_model(out / "latest.pt", device=str(GPU))
    assert model.encoder is not None and next(model.encoder.parameters()).device.type == GPU.type
