"""3D-GAN training with the paper's recipe (Adam beta1 0.5, G lr 0.0025, D lr 1e-5, batch 100, D updated only
while its accuracy on the current batch is below 80%), resumable, logged, on CPU / CUDA / MPS, and across many
processes with ``torchrun``.

The run directory holds ``config.json`` (resolved settings), ``metrics.jsonl`` (a config line, then one line
per step and per epoch), ``latest.pt`` (the full training state, written atomically every few minutes, at
every epoch end and on SIGTERM / Ctrl-C), ``epoch_NNNN.pt`` weight snapshots, and ``samples/latest.npz``
(fixed-z samples after each epoch, for previews).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gan_core import distributed as dist_utils
from gan_core.checkpoint import load_checkpoint, load_weights, save_checkpoint
from gan_core.config import Profile, check_same_architecture, get_profile
from gan_core.data.dataset import VoxelDataset
from gan_core.device import autocast, autocast_dtype, pick_device
from gan_core.errors import (
    BadCheckpointError, BadFileError, BadInputError, ProfileMismatchError, TrainingDivergedError,
)
from gan_core.io_utils import atomic_path, remove_stale_temps
from gan_core.latent import sample_z
from gan_core.models import Discriminator, Generator, bce_logits

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a run depends on. None means "the profile's value" (the paper's, where it has one)."""

    data: str
    out: str
    profile: str = "fast32"
    classes: list[str] | None = None
    limit: int | None = None
    epochs: int = 100
    batch_size: int | None = None
    g_lr: float | None = None
    d_lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    d_acc_threshold: float | None = None
    z_prior: str | None = None
    label_smoothing: float = 0.0  # real target 1 - s for D; 0 = the paper
    instance_noise: float = 0.0  # std of Gaussian noise added to D's inputs, annealed to 0; 0 = the paper
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 on CPU / CUDA), fp32, bf16, fp16
    channels_last: bool = True
    threads: int | None = None
    checkpoint_minutes: float = 10.0
    snapshot_every: int = 5
    log_every: int = 1
    n_preview: int = 16
    resume: bool = False
    init_from: str | None = None  # start G and D from another checkpoint's weights (fine-tuning)
    max_steps: int | None = None  # stop after this many steps in total (smoke tests, benchmarks)

    def resolved_profile(self) -> Profile:
        p = get_profile(self.profile)
        changes = {k: getattr(self, k) for k in ("batch_size", "g_lr", "d_lr", "beta1", "beta2", "d_acc_threshold",
                                                 "z_prior") if getattr(self, k) is not None}
        return p.replace(**changes)

    def validate(self) -> None:
        if self.epochs < 1:
            raise BadInputError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 2:
            raise BadInputError(f"--batch-size must be >= 2 (BatchNorm), got {self.batch_size}")
        for k in ("g_lr", "d_lr"):
            v = getattr(self, k)
            if v is not None and not (0 < v <= _FLOAT32_MAX):  # Adam keeps lr as float32: larger overflows
                raise BadInputError(f"--{k.replace('_', '-')} must be a positive number below 3.4e38, got {v}")
        if self.d_acc_threshold is not None and not 0 < self.d_acc_threshold <= 1:
            raise BadInputError(f"--d-acc-threshold must be in (0, 1], got {self.d_acc_threshold}")
        if not 0 <= self.label_smoothing < 0.5:
            raise BadInputError(f"--label-smoothing must be in [0, 0.5), got {self.label_smoothing}")


_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


class Trainer:
    """One training run. ``run()`` trains to ``config.epochs``; ``on_epoch`` / ``on_step`` observe progress."""

    def __init__(self, config: TrainConfig, on_step: Callable[[dict], None] | None = None) -> None:
        config.validate()
        self.cfg = config
        self.on_step = on_step
        self.world = dist_utils.init()
        self.device = dist_utils.device(self.world) or pick_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.out = Path(config.out)
        if self.world.is_main:
            _ensure_writable_dir(self.out)
            # A trainer killed mid-write (SIGKILL, OOM killer, power loss) leaves its temporary file behind.
            for stale in remove_stale_temps(self.out) + remove_stale_temps(self.out / "samples"):
                log.info("removed %s, left by an interrupted write", stale)
        self.data = VoxelDataset(config.data, classes=config.classes, limit=config.limit)
        self.profile = config.resolved_profile()
        if self.data.stored_resolution != self.profile.resolution:
            self.data = VoxelDataset(config.data, classes=config.classes, limit=config.limit,
                                     resolution=self.profile.resolution)
        self.amp_dtype = autocast_dtype(self.device, config.precision)
        self.memory_format = torch.channels_last_3d if config.channels_last else torch.contiguous_format
        p = self.profile
        torch.manual_seed(config.seed)  # weight init; resume restores the RNG state saved later
        self.G = Generator(p).to(self.device, memory_format=self.memory_format)
        self.D = Discriminator(p).to(self.device, memory_format=self.memory_format)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=p.g_lr, betas=(p.beta1, p.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=p.d_lr, betas=(p.beta1, p.beta2))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)
        self.z_gen = torch.Generator().manual_seed(config.seed * 1000 + self.world.rank)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimiser steps taken
        self.batch_in_epoch = 0
        self.data_hash = self.data.content_hash()
        probe = np.linspace(0, len(self.data) - 1, min(256, len(self.data))).astype(np.int64)
        self.data_occupancy = float(self.data.read(probe).mean())  # collapse reference for the epoch log
        self.preview_z = sample_z(config.n_preview, p, seed=config.seed + 12345)
        self._stop_requested = False
        self._last_save = time.monotonic()
        if config.resume and (self.out / "latest.pt").exists():
            self._resume(self.out / "latest.pt")
        elif config.init_from:
            ck = load_checkpoint(config.init_from)
            check_same_architecture(ck["profile"], p, f"--init-from {config.init_from}")
            load_weights(self.G, ck, "generator")
            load_weights(self.D, ck, "discriminator")

    # -- state ---------------------------------------------------------------------------------------------
    def _resume(self, path: Path) -> None:
        ck = load_checkpoint(path, map_location="cpu")
        check_same_architecture(ck["profile"], self.profile, f"--resume from {path}")
        if ck.get("data_hash") and ck["data_hash"] != self.data_hash:
            raise ProfileMismatchError(
                f"{path} was trained on different data (or classes / limit); use a new --out or the same data"
            )
        load_weights(self.G, ck, "generator")
        load_weights(self.D, ck, "discriminator")
        opts = ck.get("optimizers") or {}
        if "g" not in opts or "d" not in opts:
            raise ProfileMismatchError(f"{path} has no optimiser state (a weights-only file): use --init-from")
        try:
            self.opt_g.load_state_dict(opts["g"])
            self.opt_d.load_state_dict(opts["d"])
            # load_state_dict also restores the saved lr and betas: keep this run's (a lowered --g-lr on
            # --resume after a divergence must take effect).
            for opt, lr in ((self.opt_g, self.profile.g_lr), (self.opt_d, self.profile.d_lr)):
                for group in opt.param_groups:
                    group["lr"], group["betas"] = lr, (self.profile.beta1, self.profile.beta2)
            st = ck["state"]
            self.epoch, self.step, self.batch_in_epoch = int(st["epoch"]), int(st["step"]), int(st["batch_in_epoch"])
            if "z" in ck["rng"]:
                self.z_gen.set_state(ck["rng"]["z"])
            if "torch" in ck["rng"]:
                torch.set_rng_state(ck["rng"]["torch"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            raise BadCheckpointError(f"{path}: damaged training state ({type(e).__name__}: {reason}); "
                                     "start a new --out, or --init-from it to keep the weights") from None
        log.info("resumed %s at epoch %d step %d", path, self.epoch, self.step)

    def _diverged(self, what: str) -> TrainingDivergedError:
        return TrainingDivergedError(
            f"training diverged: {what}; {self.out / 'latest.pt'} keeps the last good state: lower --g-lr / "
            "--d-lr (or use --precision fp32) and --resume"
        )

    def save(self, final_epoch_file: bool = False) -> None:
        """Write latest.pt (full state) and, at snapshot epochs, epoch_NNNN.pt (weights only).

        Refuses non-finite weights (an update can blow them up before the loss shows it), so a diverged
        step never overwrites the last good checkpoint."""
        if not self.world.is_main:
            return
        for name, net in (("generator", self.G), ("discriminator", self.D)):
            if not all(torch.isfinite(p).all() for p in net.state_dict().values() if p.is_floating_point()):
                raise self._diverged(f"the {name} weights became non-finite by step {self.step}")
        common = dict(profile=self.profile, kind="gan", data_hash=self.data_hash,
                      meta={"command": " ".join(sys.argv), "data": str(self.data.path), "classes": self.cfg.classes})
        models = {"generator": self.G, "discriminator": self.D}
        state = {"epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
                 "seed": self.cfg.seed}
        save_checkpoint(self.out / "latest.pt", models=models, optimizers={"g": self.opt_g, "d": self.opt_d},
                        state=state, rng={"z": self.z_gen.get_state(), "torch": torch.get_rng_state()}, **common)
        if final_epoch_file:
            save_checkpoint(self.out / f"epoch_{self.epoch:04d}.pt", models=models, state=state, **common)
        self._last_save = time.monotonic()

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

    def train_step(self, real_np: np.ndarray) -> dict[str, Any]:
        """One step of the paper's recipe on a uint8 batch (B, R, R, R). Returns the step's metrics."""
        t0 = time.perf_counter()
        dev, p = self.device, self.profile
        self.G.train()
        self.D.train()
        real = torch.from_numpy(real_np).to(dev, torch.float32).unsqueeze(1)  # (B, 1, R, R, R)
        real = real.contiguous(memory_format=self.memory_format)
        b = real.shape[0]
        z = sample_z(b, p, generator=self.z_gen).to(dev)
        noise = self._noise_std()
        real_target = 1.0 - self.cfg.label_smoothing
        with autocast(dev, self.amp_dtype):
            fake = self.G(z).unsqueeze(1)  # (B, 1, R, R, R)
            d_real = self.D.logits(_noisy(real, noise))
            d_fake = self.D.logits(_noisy(fake.detach(), noise))
            d_loss = bce_logits(d_real, real_target) + bce_logits(d_fake, 0.0)
        with torch.no_grad():
            d_acc = self.world.mean(0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean()))
        update_d = bool(d_acc.item() < p.d_acc_threshold)
        if update_d:
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self.world.all_reduce_grads(self.D)
            self.scaler.step(self.opt_d)
        with autocast(dev, self.amp_dtype):
            g_loss = bce_logits(self.D.logits(_noisy(fake, noise)), 1.0)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        self.world.all_reduce_grads(self.G)
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.step += 1
        g_val, d_val = float(g_loss.detach()), float(d_loss.detach())
        if not (math.isfinite(g_val) and math.isfinite(d_val)):
            raise self._diverged(f"the loss became non-finite at step {self.step} (G {g_val}, D {d_val})")
        return {
            "type": "step", "epoch": self.epoch, "step": self.step, "g_loss": g_val, "d_loss": d_val,
            "d_acc": float(d_acc), "d_real": float(torch.sigmoid(d_real.detach().float()).mean()),
            "d_fake": float(torch.sigmoid(d_fake.detach().float()).mean()), "d_updated": update_d,
            "time": time.perf_counter() - t0,
        }

    def _noise_std(self) -> float:
        if self.cfg.instance_noise <= 0:
            return 0.0
        return self.cfg.instance_noise * max(0.0, 1.0 - self.epoch / max(1, self.cfg.epochs))

    @torch.no_grad()
    def recalibrate_bn(self, batches: int = 8) -> None:
        """Recompute G's BatchNorm running statistics over fresh z at the current weights.

        During training they trail a moving G (momentum 0.1), so eval-mode samples, the ones users see, can
        differ from train-mode ones (often emptier). A cumulative average over a few batches fixes that.
        """
        bns = [m for m in self.G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        self.G.train()
        g = torch.Generator().manual_seed(self.cfg.seed + 777 + self.epoch)
        with autocast(self.device, self.amp_dtype):
            for _ in range(batches):
                self.G(sample_z(self.profile.batch_size, self.profile, generator=g).to(self.device))
        for m, mom in zip(bns, momenta):
            m.momentum = mom

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        """Fixed-z samples in eval mode (what users will see): float (n, R, R, R)."""
        self.G.eval()
        with autocast(self.device, self.amp_dtype):
            out = self.G(self.preview_z.to(self.device)).float().cpu().numpy()
        return out

    def run(self) -> dict[str, Any]:
        """Train until ``epochs`` are complete, ``max_steps`` is reached or a stop is requested."""
        cfg = self.cfg
        metrics = _MetricsLog(self.out / "metrics.jsonl", enabled=self.world.is_main)
        if self.world.is_main:
            conf = {"type": "config", "config": dataclasses.asdict(cfg), "profile": self.profile.to_dict(),
                    "device": str(self.device), "precision": str(self.amp_dtype), "world_size": self.world.size,
                    "n_shapes": len(self.data), "resumed_at_step": self.step}
            _write_json(self.out / "config.json", conf)
            metrics.write(conf)
        old_handlers = _install_stop_handlers(self)
        last: dict[str, Any] = {}
        try:
            from tqdm import tqdm

            while self.epoch < cfg.epochs and not self._stop_requested:
                batches = self._batches()
                t_epoch = time.perf_counter()
                steps: list[dict[str, Any]] = []
                bar = tqdm(total=len(batches), initial=self.batch_in_epoch, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                           unit="batch", file=sys.stderr, disable=not self.world.is_main or _quiet(), dynamic_ncols=True)
                while self.batch_in_epoch < len(batches):
                    real = self.data.read(np.sort(batches[self.batch_in_epoch]))
                    m = self.train_step(real)
                    self.batch_in_epoch += 1
                    steps.append(m)
                    if self.step % cfg.log_every == 0:
                        metrics.write(m)
                    if self.on_step:
                        self.on_step(m)
                    bar.update(1)
                    bar.set_postfix(g=f"{m['g_loss']:.3f}", d=f"{m['d_loss']:.3f}", acc=f"{m['d_acc']:.2f}")
                    if self._stop_requested or (cfg.max_steps and self.step >= cfg.max_steps):
                        break
                    if time.monotonic() - self._last_save > cfg.checkpoint_minutes * 60:
                        self.save()
                bar.close()
                if self.batch_in_epoch < len(batches):  # stopped mid-epoch
                    self.save()
                    break
                self.epoch += 1
                self.batch_in_epoch = 0
                last = self._end_epoch(steps, time.perf_counter() - t_epoch, metrics)
            if self._stop_requested and self.world.is_main:
                metrics.write({"type": "stopped", "epoch": self.epoch, "step": self.step})
        finally:
            _restore_handlers(old_handlers)
            metrics.close()
        return last

    def _end_epoch(self, steps: list[dict[str, Any]], seconds: float, metrics: _MetricsLog) -> dict[str, Any]:
        self.recalibrate_bn()
        samples = self.preview()
        occ = (samples > 0.5).reshape(len(samples), -1).mean(axis=1)
        empty, full = float((occ < 1e-3).mean()), float((occ > 0.9).mean())
        diversity = _mean_pairwise_iou(samples > 0.5)
        warning = None
        if empty > 0.5 or full > 0.5:
            warning = f"collapse: {empty:.0%} of preview samples empty, {full:.0%} full"
        elif diversity > 0.9:
            warning = f"mode collapse: preview samples are near-identical (mean pairwise IoU {diversity:.2f})"
        rec = {
            "type": "epoch", "epoch": self.epoch, "step": self.step, "epoch_time": seconds,
            "g_loss": _mean(steps, "g_loss"), "d_loss": _mean(steps, "d_loss"), "d_acc": _mean(steps, "d_acc"),
            "d_update_rate": _mean(steps, "d_updated"), "sample_occupancy": float(occ.mean()),
            "data_occupancy": self.data_occupancy, "empty_rate": empty, "full_rate": full, "sample_pairwise_iou": diversity,
            "warning": warning,
        }
        if warning:
            log.warning("epoch %d: %s", self.epoch, warning)
        snapshot = self.epoch % self.cfg.snapshot_every == 0 or self.epoch == self.cfg.epochs
        self.save(final_epoch_file=snapshot)
        if self.world.is_main:
            from gan_core.io_utils import save_voxel_npz

            (self.out / "samples").mkdir(exist_ok=True)
            save_voxel_npz(self.out / "samples" / "latest.npz", (samples > 0.5).astype(np.uint8),
                           z=self.preview_z.numpy(), probabilities=samples.astype(np.float16),
                           epoch=np.array(self.epoch))
            metrics.write(rec)
        return rec


# -- helpers -----------------------------------------------------------------------------------------------
def _noisy(x: torch.Tensor, std: float) -> torch.Tensor:
    return x + std * torch.randn_like(x) if std > 0 else x


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([float(r[key]) for r in rows])) if rows else float("nan")


def _mean_pairwise_iou(vox: np.ndarray) -> float:
    flat = vox.reshape(len(vox), -1).astype(np.float32)
    inter = flat @ flat.T
    sizes = flat.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    n = len(vox)
    return float((iou.sum() - np.trace(iou)) / max(1, n * (n - 1)))


def _quiet() -> bool:
    return not (sys.stderr.isatty() or os.environ.get("GAN3D_PROGRESS"))


class _MetricsLog:
    """Appends JSON lines, flushed each line so a watcher (the training tab) sees them at once."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.f = None
        if enabled:
            try:
                self.f = open(path, "a", encoding="utf-8")
            except OSError as e:
                raise BadFileError(f"{path}: cannot write ({e.strerror or e})") from None

    def write(self, rec: dict[str, Any]) -> None:
        if self.f:
            try:
                self.f.write(json.dumps({"t": round(time.time(), 3), **rec}) + "\n")
                self.f.flush()
            except OSError as e:  # a full disk: the run stops here, latest.pt keeps the last saved state
                raise BadFileError(f"{self.path}: cannot write ({e.strerror or e})") from None

    def close(self) -> None:
        if self.f:
            try:
                self.f.close()
            except OSError:  # its last line could not be flushed either; the error was raised by write()
                pass
            self.f = None


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2), encoding="utf-8")


def _ensure_writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadInputError(f"--out {path}: cannot write there ({e.strerror or e})") from None


def _install_stop_handlers(trainer: Trainer) -> dict[int, Any]:
    """SIGTERM / SIGINT finish the current step, save, and exit cleanly (the app's Stop button)."""
    def handler(signum: int, frame: Any) -> None:
        trainer._stop_requested = True

    old = {}
    try:
        for s in (signal.SIGTERM, signal.SIGINT):
            old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread (tests): no handlers
        pass
    return old


def _restore_handlers(old: dict[int, Any]) -> None:
    for s, h in old.items():
        signal.signal(s, h)
