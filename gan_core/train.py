"""3D-GAN training with the paper's recipe (Adam beta1 0.5, G lr 0.0025, D lr 1e-5, batch 100, D updated only
while its accuracy on the current batch is below 80%), resumable, logged, on CPU / CUDA / MPS, and across many
processes with ``torchrun``.

The run directory holds what :mod:`gan_core.training_loop` writes for every trainer (``config.json``,
``metrics.jsonl``, ``latest.pt``, ``epoch_NNNN.pt``) and ``samples/latest.npz`` (fixed-z samples after each
epoch, for previews).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gan_core import distributed as dist_utils
from gan_core.augment import augment
from gan_core.checkpoint import load_checkpoint, load_weights
from gan_core.config import check_same_architecture
from gan_core.device import autocast, pick_device
from gan_core.errors import BadInputError
from gan_core.fast_conv import stock_kernels
from gan_core.latent import sample_z
from gan_core.models import Discriminator, Generator, bce_logits, recalibrate_batchnorm
from gan_core.run_config import TrainConfig
from gan_core.training_loop import EpochTrainer, d_gate_open, gated_d_step, mean_of, open_voxels

log = logging.getLogger(__name__)

__all__ = ["EMA_RAMPUP", "TrainConfig", "Trainer"]  # TrainConfig: the run's settings (gan_core.run_config)

# The moving average's half-life is at most this fraction of the images this run has seen, so a fresh run's
# average forgets its random start (StyleGAN's ramp-up, longer: a shipped run here lasts ~50 epochs, not ~1000).
EMA_RAMPUP = 0.3


class Trainer(EpochTrainer):
    """One training run. ``run()`` trains to ``config.epochs``; ``on_step`` observes each step."""

    kind = "gan"
    lr_flags = "--g-lr / --d-lr"

    def __init__(self, config: TrainConfig, on_step: Callable[[dict], None] | None = None) -> None:
        config.validate()
        self.cfg = config
        self.on_step = on_step
        self.world = dist_utils.init()
        self.device = dist_utils.device(self.world) or pick_device(config.device)
        self._begin(config)
        self.profile = p = config.resolved_profile()
        _, self.data = open_voxels(config, p.resolution)
        torch.manual_seed(config.seed)  # weight init; resume restores the RNG state saved later
        self.G = Generator(p).to(self.device, memory_format=self.memory_format)
        self.D = Discriminator(p).to(self.device, memory_format=self.memory_format)
        # The published generator: a moving average of G's weights (smoother, more diverse samples than any
        # single step's; measured on ModelNet10 on 2026-11-28), or G itself.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if config.ema_kimg > 0 else None
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=p.g_lr, betas=(p.beta1, p.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=p.d_lr, betas=(p.beta1, p.beta2))
        self.z_gen = torch.Generator().manual_seed(config.seed * 1000 + self.world.rank)
        self.data_hash = self.data.content_hash()
        probe = np.linspace(0, len(self.data) - 1, min(256, len(self.data))).astype(np.int64)
        self.data_occupancy = float(self.data.read(probe).mean())  # collapse reference for the epoch log
        self.preview_z = sample_z(config.n_preview, p, seed=config.seed + 12345)
        if config.resume and (self.out / "latest.pt").exists():
            self._resume(self.out / "latest.pt")
        elif config.init_from:
            ck = load_checkpoint(config.init_from)
            check_same_architecture(ck["profile"], p, f"--init-from {config.init_from}")
            load_weights(self.G, ck, "generator")
            if "discriminator" in ck:
                load_weights(self.D, ck, "discriminator")
            else:  # a packed G-only asset (the per-category models): continue G against a new D
                log.warning("--init-from %s has no discriminator: D starts from scratch", config.init_from)
            if self.G_ema is not None:
                self.G_ema.load_state_dict(self.G.state_dict())

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    # -- state ---------------------------------------------------------------------------------------------
    def _resume(self, path: Path) -> None:
        ck = load_checkpoint(path, map_location="cpu")
        self._check_resumable(ck, path)
        load_weights(self.G, ck, "generator_train" if "generator_train" in ck else "generator")
        load_weights(self.D, ck, "discriminator")
        if self.G_ema is not None:  # a run that kept no average starts one at its generator
            load_weights(self.G_ema, ck, "generator")
        self._restore_state(ck, path, "use --init-from")
        log.info("resumed %s at epoch %d step %d", path, self.epoch, self.step)

    def _models(self) -> dict[str, nn.Module]:
        if self.G_ema is None:
            return {"generator": self.G, "discriminator": self.D}
        return {"generator": self.G_ema, "discriminator": self.D, "generator_train": self.G}

    @property
    def shown_generator(self) -> Generator:
        """The generator users get from this run's checkpoints: the moving average when there is one."""
        return self.G if self.G_ema is None else self.G_ema

    def save(self, final_epoch_file: bool = False) -> None:
        if self.G_ema is not None and self.batch_in_epoch:  # a mid-epoch save: the average's statistics are stale
            self.recalibrate_bn()
        super().save(final_epoch_file)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def _learning_rates(self) -> dict[str, float]:
        return {"g": self.profile.g_lr, "d": self.profile.d_lr}

    # -- training ------------------------------------------------------------------------------------------
    def _batches(self) -> list[np.ndarray]:
        """This rank's batches of dataset positions for the current epoch (a seeded shuffle, as
        DistributedSampler does: the same on every rank, then split)."""
        g = torch.Generator().manual_seed(self.cfg.seed + self.epoch)
        perm = torch.randperm(len(self.data), generator=g).numpy()
        bs = self.profile.batch_size
        n_batches = len(perm) // (bs * self.world.size)
        if n_batches == 0:
            raise BadInputError(
                f"{len(self.data)} shapes is fewer than one batch of {bs} per process; lower --batch-size"
            )
        perm = perm[: n_batches * bs * self.world.size].reshape(n_batches, self.world.size, bs)
        return [perm[i, self.world.rank] for i in range(n_batches)]

    def _train_batch(self, index: int, batch: np.ndarray) -> dict[str, Any]:
        return self.train_step(self.data.read(np.sort(batch)))

    def _postfix(self, m: dict[str, Any]) -> dict[str, str]:
        return {"g": f"{m['g_loss']:.3f}", "d": f"{m['d_loss']:.3f}", "acc": f"{m['d_acc']:.2f}"}

    def train_step(self, real_np: np.ndarray) -> dict[str, Any]:
        """One step on a uint8 batch (B, R, R, R): D's losses, D's update where the gate allows (always with a
        threshold of 1), then G's. Returns the step's metrics."""
        t0 = time.perf_counter()
        dev, p, cfg = self.device, self.profile, self.cfg
        self.G.train()
        self.D.train()
        real = torch.from_numpy(real_np).to(dev).unsqueeze(1)  # (B, 1, R, R, R): uint8 crosses to a GPU, 4x less
        real = real.to(dtype=torch.float32, memory_format=self.memory_format)
        b = real.shape[0]
        z = sample_z(b, p, generator=self.z_gen).to(dev)
        noise = self._noise_std()
        with autocast(dev, self.amp_dtype):
            fake = self.G(z).unsqueeze(1)  # (B, 1, R, R, R)
            # D sees a detached copy that takes a gradient: when D is not updated (most steps of the gated
            # recipe), G's loss reuses this forward pass instead of running D on the same shapes again
            fake_in = fake.detach().requires_grad_(True)
            d_real = self.D.logits(self._d_input(real, noise))
            d_fake = self.D.logits(self._d_input(fake_in, noise))
            d_loss = self._d_loss(d_real, d_fake)
        with torch.no_grad():
            d_acc = self.world.mean(0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean()))
        update_d = d_gate_open(d_acc, p.d_acc_threshold)
        r1 = torch.zeros((), device=dev)
        d_total = d_loss
        if update_d and cfg.r1_gamma > 0 and self.step % cfg.r1_every == 0:
            r1 = self._r1_penalty(real)
            d_total = d_loss + (cfg.r1_gamma / 2 * cfg.r1_every) * r1
        g_loss = gated_d_step(update_d, d_total, D=self.D, opt_d=self.opt_d, scaler=self.scaler,
                              g_params=list(self.G.parameters()), opt_g=self.opt_g, copies=[fake_in], originals=[fake],
                              d_logits=[d_fake], g_adv=lambda logits: self._g_loss(logits[0]),
                              d_view=lambda x: self._d_input(x, noise), amp=lambda: autocast(dev, self.amp_dtype),
                              reduce_grads=self.world.all_reduce_grads)
        self.world.all_reduce_grads(self.G)
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.step += 1
        self._update_ema(b * self.world.size)
        with torch.no_grad():  # one transfer from a GPU for all the step's numbers, not one per number
            g_val, d_val, acc, p_real, p_fake, r1_val = torch.stack([
                g_loss.float(), d_loss.float(), d_acc.float(), torch.sigmoid(d_real.float()).mean(),
                torch.sigmoid(d_fake.float()).mean(), r1.detach().float()]).tolist()
        self._check_finite({"G": g_val, "D": d_val, "R1": r1_val})
        m = {
            "type": "step", "epoch": self.epoch, "step": self.step, "g_loss": g_val, "d_loss": d_val,
            "d_acc": acc, "d_real": p_real, "d_fake": p_fake, "d_updated": update_d,
            "time": time.perf_counter() - t0,
        }
        if r1_val:
            m["r1"] = r1_val
        return m

    def _d_input(self, x: torch.Tensor, noise: float) -> torch.Tensor:
        """What D sees of a batch: the run's augmentation, then instance noise."""
        return _noisy(augment(x, self.cfg.augment), noise)

    def _d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        if self.cfg.loss == "hinge":
            return torch.relu(1 - d_real.float()).mean() + torch.relu(1 + d_fake.float()).mean()
        return bce_logits(d_real, 1.0 - self.cfg.label_smoothing) + bce_logits(d_fake, 0.0)

    def _g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        """G's loss from D's logits on its shapes: non-saturating -log D(G(z)), or -D(G(z)) for the hinge loss."""
        if self.cfg.loss == "hinge":
            return -d_fake.float().mean()
        return bce_logits(d_fake, 1.0)

    def _r1_penalty(self, real: torch.Tensor) -> torch.Tensor:
        """R1: the mean over the batch of |grad_x D(x)|^2 at real shapes (as D sees them), kept on the graph so
        that D's step lowers it. PyTorch's own kernels: the fast ones have first-order gradients only."""
        x = real.detach().requires_grad_(True)
        with stock_kernels(), autocast(self.device, self.amp_dtype):
            out = self.D.logits(augment(x, self.cfg.augment))
        (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
        return grad.float().pow(2).flatten(1).sum(1).mean()

    @torch.no_grad()
    def _update_ema(self, batch_images: int) -> None:
        """Move the average towards G: by half every ``ema_kimg`` thousand images (less early in a run)."""
        if self.G_ema is None:
            return
        half_life = min(self.cfg.ema_kimg * 1000, self.step * batch_images * EMA_RAMPUP)
        keep = 0.5 ** (batch_images / max(half_life, 1e-8))
        for avg, p in zip(self.G_ema.parameters(), self.G.parameters()):
            avg.lerp_(p.detach(), 1.0 - keep)

    def _noise_std(self) -> float:
        if self.cfg.instance_noise <= 0:
            return 0.0
        return self.cfg.instance_noise * max(0.0, 1.0 - self.epoch / max(1, self.cfg.epochs))

    @torch.no_grad()
    def recalibrate_bn(self, batches: int = 8) -> None:
        """Recompute the shown generator's BatchNorm running statistics over fresh z at its current weights, so
        eval-mode samples (the ones users see) match train-mode ones."""
        g = torch.Generator().manual_seed(self.cfg.seed + 777 + self.epoch)
        zs = (sample_z(self.profile.batch_size, self.profile, generator=g).to(self.device) for _ in range(batches))
        with autocast(self.device, self.amp_dtype):
            recalibrate_batchnorm(self.shown_generator, zs)

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        """Fixed-z samples in eval mode (what users will see): float (n, R, R, R)."""
        g = self.shown_generator
        was_training = g.training
        g.eval()
        try:
            with autocast(self.device, self.amp_dtype):
                return g(self.preview_z.to(self.device)).float().cpu().numpy()
        finally:
            g.train(was_training)

    def _config_record(self) -> dict[str, Any]:
        return {"type": "config", "config": dataclasses.asdict(self.cfg), "profile": self.profile.to_dict(),
                "device": str(self.device), "precision": str(self.amp_dtype), "world_size": self.world.size,
                "n_shapes": len(self.data), "resumed_at_step": self.step}

    def _epoch_metrics(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Losses of the epoch and collapse checks on the fixed-z preview (after recalibrating G's BatchNorm,
        which the checkpoint then keeps)."""
        self.recalibrate_bn()
        samples = self._samples = self.preview()
        occ = (samples > 0.5).reshape(len(samples), -1).mean(axis=1)
        empty, full = float((occ < 1e-3).mean()), float((occ > 0.9).mean())
        diversity = _mean_pairwise_iou(samples > 0.5)
        warning = None
        if empty > 0.5 or full > 0.5:
            warning = f"collapse: {empty:.0%} of preview samples empty, {full:.0%} full"
        elif diversity > 0.9:
            warning = f"mode collapse: preview samples are near-identical (mean pairwise IoU {diversity:.2f})"
        if warning:
            log.warning("epoch %d: %s", self.epoch, warning)
        return {
            "g_loss": mean_of(steps, "g_loss"), "d_loss": mean_of(steps, "d_loss"), "d_acc": mean_of(steps, "d_acc"),
            "d_update_rate": mean_of(steps, "d_updated"), "sample_occupancy": float(occ.mean()),
            "data_occupancy": self.data_occupancy, "empty_rate": empty, "full_rate": full,
            "sample_pairwise_iou": diversity, "warning": warning,
        }

    def _after_epoch_save(self, record: dict[str, Any]) -> None:
        from gan_core.data.dataset import save_voxel_npz

        samples = self._samples
        (self.out / "samples").mkdir(exist_ok=True)
        save_voxel_npz(self.out / "samples" / "latest.npz", (samples > 0.5).astype(np.uint8),
                       z=self.preview_z.numpy(), probabilities=samples.astype(np.float16), epoch=np.array(self.epoch))


# -- helpers -----------------------------------------------------------------------------------------------
def _noisy(x: torch.Tensor, std: float) -> torch.Tensor:
    return x + std * torch.randn_like(x) if std > 0 else x


def _mean_pairwise_iou(vox: np.ndarray) -> float:
    flat = vox.reshape(len(vox), -1).astype(np.float32)
    inter = flat @ flat.T
    sizes = flat.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    n = len(vox)
    return float((iou.sum() - np.trace(iou)) / max(1, n * (n - 1)))
