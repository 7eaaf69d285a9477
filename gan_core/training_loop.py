"""The epoch loop both trainers share (3D-GAN in :mod:`gan_core.train`, 3D-VAE-GAN in :mod:`gan_core.vae_train`).

A trainer subclasses :class:`EpochTrainer` and defines only its step (``_batches``, ``_train_batch``), what its
checkpoint holds (``_models``, ``_optimizers``, ``_learning_rates``, ``_state_extras``, ``_meta_extras``) and its
end-of-epoch extras (``_epoch_metrics``, ``_after_epoch_save``). The loop gives both the same run directory:

* ``config.json`` and ``metrics.jsonl``: a config line, one line per step (every ``log_every`` steps) and per
  epoch, and a ``stopped`` line after SIGTERM / Ctrl-C; each line flushed so a watcher sees it at once;
* ``latest.pt``: the full training state, written atomically every ``checkpoint_minutes``, at every epoch end
  and when a run stops mid-epoch (``max_steps``, SIGTERM, Ctrl-C); never with non-finite weights;
* ``epoch_NNNN.pt``: weight snapshots every ``snapshot_every`` epochs and at the last one.

A stopped run resumes mid-epoch exactly: the batch order depends on (seed, epoch) only, and the checkpoint keeps
the batch index, the optimiser states and the RNG states.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from gan_core.checkpoint import MODEL_KEYS, all_finite, save_checkpoint
from gan_core.config import Profile, check_same_architecture
from gan_core.data.dataset import VoxelDataset
from gan_core.device import autocast_dtype
from gan_core.errors import (
    BadCheckpointError, BadFileError, BadInputError, ProfileMismatchError, TrainingDivergedError,
)
from gan_core.files import atomic_path, remove_stale_temps

log = logging.getLogger(__name__)

def open_voxels(cfg: Any, resolution: int) -> tuple[VoxelDataset, VoxelDataset]:
    """The run's shapes as stored and at the profile's ``resolution`` (the same object when they agree)."""
    stored = VoxelDataset(cfg.data, classes=cfg.classes, limit=cfg.limit)
    if stored.stored_resolution == resolution:
        return stored, stored
    return stored, VoxelDataset(cfg.data, classes=cfg.classes, limit=cfg.limit, resolution=resolution)


class EpochTrainer:
    """Base of the trainers: the epoch loop, checkpoints, resume and the metrics log.

    Subclasses set, in ``__init__``: ``cfg`` (with data, out, epochs, seed, classes, precision, channels_last,
    threads, checkpoint_minutes, snapshot_every, log_every, max_steps), ``device``, ``profile``, ``data``,
    ``data_hash`` and ``z_gen``, and call :meth:`_begin` once ``device`` is known.
    """

    kind = "gan"  # the checkpoint's kind
    lr_flags = "--g-lr / --d-lr"  # named in the divergence error
    cfg: Any
    device: torch.device
    profile: Profile
    data: VoxelDataset
    data_hash: str
    z_gen: torch.Generator
    on_step: Callable[[dict], None] | None

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory (rank 0 of a distributed run)."""
        return True

    def _begin(self, config: Any) -> None:
        """Settings every run starts with: threads, precision, a writable run directory cleaned of temporary
        files that a killed write left (SIGKILL, OOM killer, power loss), zeroed counters."""
        if config.threads:
            torch.set_num_threads(config.threads)
        self.out = Path(config.out)
        if self.is_main:
            ensure_writable_dir(self.out)
            for stale in remove_stale_temps(self.out) + remove_stale_temps(self.out / "samples"):
                log.info("removed %s, left by an interrupted write", stale)
        self.amp_dtype = autocast_dtype(self.device, config.precision)
        self.memory_format = torch.channels_last_3d if config.channels_last else torch.contiguous_format
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimiser steps taken
        self.batch_in_epoch = 0
        self._stop_requested = False
        self._last_save = time.monotonic()

    # -- what a trainer defines ----------------------------------------------------------------------------
    def _batches(self) -> list[np.ndarray]:
        """This epoch's batches (dataset positions), a function of (seed, epoch) only."""
        raise NotImplementedError

    def _train_batch(self, index: int, batch: np.ndarray) -> dict[str, Any]:
        """Read batch ``index`` of this epoch and take one step on it; returns the step's metrics line."""
        raise NotImplementedError

    def _postfix(self, m: dict[str, Any]) -> dict[str, str]:
        """What the progress bar shows of a step."""
        return {}

    def _config_record(self) -> dict[str, Any]:
        """The first line of metrics.jsonl, also written to config.json."""
        raise NotImplementedError

    def _epoch_metrics(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """The epoch line's fields after ``epoch_time``, computed before the epoch's checkpoint is saved."""
        raise NotImplementedError

    def _after_epoch_save(self, record: dict[str, Any]) -> None:
        """Files written after the epoch's checkpoint (main process only)."""

    def _models(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def _learning_rates(self) -> dict[str, float]:
        """This run's lr per optimiser: applied on resume over the saved ones."""
        raise NotImplementedError

    def _state_extras(self) -> dict[str, Any]:
        return {}

    def _meta_extras(self) -> dict[str, Any]:
        return {}

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _diverged(self, what: str) -> TrainingDivergedError:
        return TrainingDivergedError(
            f"training diverged: {what}; {self.out / 'latest.pt'} keeps the last good state: lower "
            f"{self.lr_flags} (or use --precision fp32) and --resume"
        )

    def _check_finite(self, values: dict[str, float]) -> None:
        """TrainingDivergedError unless every loss of a step is finite."""
        if not all(np.isfinite(v) for v in values.values()):
            shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
            raise self._diverged(f"the loss became non-finite at step {self.step} ({shown})")

    def save(self, final_epoch_file: bool = False) -> None:
        """Write latest.pt (full state) and, at snapshot epochs, epoch_NNNN.pt (weights and state, no optimisers).

        Refuses non-finite weights (an update can blow them up before the loss shows it), so a diverged
        step never overwrites the last good checkpoint."""
        if not self.is_main:
            return
        models = self._models()
        for name, net in models.items():
            if not all_finite(net.state_dict().values()):
                raise self._diverged(f"the {name} weights became non-finite by step {self.step}")
        meta = {"command": " ".join(sys.argv), "data": str(self.data.path), "classes": self.cfg.classes,
                **self._meta_extras()}
        common = dict(profile=self.profile, kind=self.kind, data_hash=self.data_hash, meta=meta)
        state = {"epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch, "seed": self.cfg.seed,
                 **self._state_extras()}
        save_checkpoint(self.out / "latest.pt", models=models, optimizers=self._optimizers(), state=state,
                        rng={"z": self.z_gen.get_state(), "torch": torch.get_rng_state()}, **common)
        if final_epoch_file:
            published = {k: v for k, v in models.items() if k in MODEL_KEYS}  # not what only --resume reads
            save_checkpoint(self.out / f"epoch_{self.epoch:04d}.pt", models=published, state=state, **common)
        self._last_save = time.monotonic()

    @contextlib.contextmanager
    def _reading_state(self, path: Path) -> Iterator[None]:
        """Turn a damaged training state (missing keys, wrong types or shapes) into one BadCheckpointError."""
        try:
            yield
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            raise BadCheckpointError(f"{path}: damaged training state ({type(e).__name__}: {reason}); "
                                     "start a new --out, or --init-from it to keep the weights") from None

    def _check_resumable(self, ck: dict[str, Any], path: Path) -> None:
        """Refuse to resume a checkpoint of another architecture or trained on other data."""
        check_same_architecture(ck["profile"], self.profile, f"--resume from {path}")
        if ck.get("data_hash") and ck["data_hash"] != self.data_hash:
            raise ProfileMismatchError(
                f"{path} was trained on different data (or classes / limit); use a new --out or the same data"
            )

    def _restore_state(self, ck: dict[str, Any], path: Path, weights_only_hint: str) -> dict[str, Any]:
        """Load the optimisers, counters and RNG states of a checkpoint (its weights are loaded by the caller);
        returns its ``state``. This run's learning rates and betas win over the saved ones (a lowered lr on
        --resume after a divergence must take effect)."""
        opts = ck.get("optimizers") or {}
        mine = self._optimizers()
        if not set(mine) <= set(opts):
            raise ProfileMismatchError(f"{path} has no optimiser state (a weights-only file): {weights_only_hint}")
        with self._reading_state(path):
            lrs = self._learning_rates()
            for name, opt in mine.items():
                opt.load_state_dict(opts[name])
                for group in opt.param_groups:
                    group["lr"], group["betas"] = lrs[name], (self.profile.beta1, self.profile.beta2)
            st = ck["state"]
            self.epoch, self.step, self.batch_in_epoch = int(st["epoch"]), int(st["step"]), int(st["batch_in_epoch"])
            if "z" in ck["rng"]:
                self.z_gen.set_state(ck["rng"]["z"])
            if "torch" in ck["rng"]:
                torch.set_rng_state(ck["rng"]["torch"])
        return st

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train until ``epochs`` are complete, ``max_steps`` is reached or a stop is requested; returns the last
        epoch line."""
        from tqdm import tqdm

        cfg = self.cfg
        metrics = MetricsLog(self.out / "metrics.jsonl", enabled=self.is_main)
        if self.is_main:
            conf = self._config_record()
            write_json(self.out / "config.json", conf)
            metrics.write(conf)
        old_handlers = install_stop_handlers(self)
        last: dict[str, Any] = {}
        try:
            while self.epoch < cfg.epochs and not self._stop_requested:
                batches = self._batches()
                t_epoch = time.perf_counter()
                steps: list[dict[str, Any]] = []
                bar = tqdm(total=len(batches), initial=self.batch_in_epoch, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                           unit="batch", file=sys.stderr, disable=not self.is_main or quiet(), dynamic_ncols=True)
                while self.batch_in_epoch < len(batches):
                    m = self._train_batch(self.batch_in_epoch, batches[self.batch_in_epoch])
                    self.batch_in_epoch += 1
                    steps.append(m)
                    if self.step % cfg.log_every == 0:
                        metrics.write(m)
                    if self.on_step:
                        self.on_step(m)
                    bar.update(1)
                    bar.set_postfix(self._postfix(m))
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
            if self._stop_requested and self.is_main:
                metrics.write({"type": "stopped", "epoch": self.epoch, "step": self.step})
        finally:
            restore_handlers(old_handlers)
            metrics.close()
        return last

    def _end_epoch(self, steps: list[dict[str, Any]], seconds: float, metrics: MetricsLog) -> dict[str, Any]:
        rec = {"type": "epoch", "epoch": self.epoch, "step": self.step, "epoch_time": seconds,
               **self._epoch_metrics(steps)}
        snapshot = self.epoch % self.cfg.snapshot_every == 0 or self.epoch == self.cfg.epochs
        self.save(final_epoch_file=snapshot)
        if self.is_main:
            self._after_epoch_save(rec)
            metrics.write(rec)
        return rec


# -- step helpers ------------------------------------------------------------------------------------------
def d_gate_open(d_acc: torch.Tensor, threshold: float) -> bool:
    """The paper's adaptive step: update D only while its accuracy on the batch is below ``threshold``; at a
    threshold of 1, at every step (without reading the accuracy back from a GPU)."""
    return threshold >= 1 or bool(d_acc.item() < threshold)


def gated_d_step(update_d: bool, d_loss: torch.Tensor, *, D: nn.Module, opt_d: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, g_params: list[nn.Parameter], opt_g: torch.optim.Optimizer,
                 copies: list[torch.Tensor], originals: list[torch.Tensor], d_logits: list[torch.Tensor],
                 g_adv: Callable[[list[torch.Tensor]], torch.Tensor], d_view: Callable[[torch.Tensor], torch.Tensor],
                 amp: Callable[[], contextlib.AbstractContextManager], g_weight: float | None = None,
                 g_extra: torch.Tensor | None = None,
                 reduce_grads: Callable[[nn.Module], None] | None = None) -> torch.Tensor:
    """D's step where the gate is open, then the backward pass of G's loss (its optimiser is stepped by the
    caller); returns G's adversarial loss. Both trainers' adversarial step (3D-GAN and 3D-VAE-GAN).

    D has seen ``copies`` (detached leaves that take a gradient, of G's ``originals``) and given ``d_logits``
    on them. G's loss is ``g_weight * g_adv(logits) + g_extra`` (``g_adv``: G's adversarial loss from D's logits
    on each of its batches, computed under ``amp()``; no weight / extra term where None). When D is updated
    (``d_loss`` backward, ``reduce_grads(D)`` across processes, its step), G's loss needs a new pass through D
    (``d_view`` of each original: what D sees of it) and D's input gradient only; when not, G's loss reuses
    the logits D already gave, backpropagated through the copies into the originals' graph."""
    if update_d:
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward(inputs=list(D.parameters()))
        if reduce_grads is not None:
            reduce_grads(D)
        scaler.step(opt_d)
        with frozen(D):
            with amp():
                g_loss = g_adv([D.logits(d_view(o)) for o in originals])
            total = g_loss if g_weight is None else g_weight * g_loss
            if g_extra is not None:
                total = total + g_extra
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(total).backward(inputs=g_params)
    else:
        with amp():
            g_loss = g_adv(d_logits)
        opt_g.zero_grad(set_to_none=True)
        also = () if g_extra is None else (scaler.scale(g_extra),)
        backward_from_copies(scaler.scale(g_loss if g_weight is None else g_weight * g_loss), copies, originals,
                             g_params, also=also)
    return g_loss


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s parameters take no gradient inside the block; gradients still flow through it to its input."""
    net.requires_grad_(False)
    try:
        yield
    finally:
        net.requires_grad_(True)


def backward_from_copies(loss: torch.Tensor, copies: list[torch.Tensor], originals: list[torch.Tensor],
                         params: list[nn.Parameter], also: tuple[torch.Tensor, ...] = ()) -> None:
    """Backpropagate ``loss``, computed on ``copies`` (detached leaves that take a gradient, of the shapes of
    ``originals`` or views of them), through the originals' graph into ``params`` only, with the scalar losses
    ``also`` on that graph in the same pass: a pass made for D's step serves G's gradient."""
    grads = torch.autograd.grad(loss, copies)
    seeds = [g.view_as(o) for g, o in zip(grads, originals)] + [None] * len(also)
    torch.autograd.backward([*originals, *also], seeds, inputs=params)


# -- run-directory helpers ---------------------------------------------------------------------------------
def mean_of(rows: list[dict[str, Any]], key: str) -> float:
    """Mean of ``key`` over metric lines (NaN for none)."""
    return float(np.mean([float(r[key]) for r in rows])) if rows else float("nan")


def quiet() -> bool:
    """No progress bars unless stderr is a terminal or GAN3D_PROGRESS is set (logs stay clean)."""
    return not (sys.stderr.isatty() or os.environ.get("GAN3D_PROGRESS"))


class MetricsLog:
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


def write_json(path: Path, obj: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2), encoding="utf-8")


def ensure_writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadInputError(f"--out {path}: cannot write there ({e.strerror or e})") from None


def install_stop_handlers(trainer: EpochTrainer) -> dict[int, Any]:
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


def restore_handlers(old: dict[int, Any]) -> None:
    for s, h in old.items():
        signal.signal(s, h)
