"""The judge: a small supervised 3D CNN that classifies voxel shapes, trained on real labelled shapes only.

IoU-based COV / MMD reward blobs that overlap many shapes; a classifier's features do not. The judge gives the
voxel analogue of FID (a Frechet distance between its features of samples and of real shapes,
gan_core.shape_metrics) and a class histogram of samples. It never sees generated shapes while training.

Network: four Conv3d + BatchNorm + LeakyReLU(0.2) blocks (32^3 -> 16^3 -> 8^3 -> 4^3 -> 4^3), a global average
pool, a linear layer to the feature vector (what :meth:`JudgeClassifier.features` returns), then LeakyReLU,
dropout and a linear class head. Training: Adam, cosine learning rate, random mirror images (both horizontal
axes: ModelNet classes are symmetric about different ones) and shifts of up to two voxels.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gan_core.augment import random_shift
from gan_core.checkpoint import load_checkpoint, load_weights, save_judge_checkpoint
from gan_core.data.resample import resample
from gan_core.device import pick_device
from gan_core.errors import BadCheckpointError, BadInputError

log = logging.getLogger(__name__)

DEFAULT_CHANNELS = (32, 64, 128, 128)
DEFAULT_STRIDES = (2, 2, 2, 1)
DEFAULT_FEATURE_DIM = 128
MAX_SHIFT = 2  # voxels, each axis, in training augmentation


@dataclass(frozen=True)
class JudgeConfig:
    """What rebuilds a judge: input size, layer widths and strides, feature size, class names (their order is
    the head's)."""

    class_names: tuple[str, ...]
    resolution: int = 32
    channels: tuple[int, ...] = DEFAULT_CHANNELS
    strides: tuple[int, ...] = DEFAULT_STRIDES
    feature_dim: int = DEFAULT_FEATURE_DIM

    def __post_init__(self) -> None:
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise BadInputError(f"a judge needs at least two distinct class names, got {list(self.class_names)}")
        if not self.channels or len(self.channels) != len(self.strides) or min(self.channels) < 1:
            raise BadInputError(f"judge channels {self.channels} and strides {self.strides} do not match")
        if self.resolution not in (8, 16, 32, 64, 128) or self.feature_dim < 1:
            raise BadInputError(f"judge resolution {self.resolution} or feature size {self.feature_dim} is invalid")

    def to_dict(self) -> dict[str, Any]:
        return {"class_names": list(self.class_names), "resolution": self.resolution, "channels": list(self.channels),
                "strides": list(self.strides), "feature_dim": self.feature_dim}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "judge_config") -> JudgeConfig:
        try:
            return cls(class_names=tuple(str(c) for c in d["class_names"]), resolution=int(d["resolution"]),
                       channels=tuple(int(c) for c in d["channels"]), strides=tuple(int(s) for s in d["strides"]),
                       feature_dim=int(d["feature_dim"]))
        except (KeyError, TypeError, ValueError, BadInputError) as e:
            raise BadCheckpointError(f"{where}: invalid judge_config ({e})") from None


class JudgeNet(nn.Module):
    """The classifier network; ``forward`` returns (logits, features)."""

    def __init__(self, config: JudgeConfig) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 1
        for c, s in zip(config.channels, config.strides):
            blocks += [nn.Conv3d(c_in, c, 3, stride=s, padding=1, bias=False), nn.BatchNorm3d(c), nn.LeakyReLU(0.2)]
            c_in = c
        self.trunk = nn.Sequential(*blocks)
        self.embed = nn.Linear(c_in, config.feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(config.feature_dim, len(config.class_names))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.embed(self.trunk(x).mean(dim=(2, 3, 4)))
        return self.head(self.dropout(F.leaky_relu(feats, 0.2))), feats


class JudgeClassifier:
    """A trained judge on a device, in eval mode: features and predicted classes of voxel grids of any size
    (resampled to the judge's)."""

    def __init__(self, net: JudgeNet, config: JudgeConfig, device: str | torch.device | None = None,
                 *, path: Path | None = None, meta: dict[str, Any] | None = None) -> None:
        self.config = config
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.net = net.to(self.device).eval()
        self.path = path
        self.meta = dict(meta or {})

    @property
    def class_names(self) -> list[str]:
        return list(self.config.class_names)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @torch.no_grad()
    def _run(self, voxels: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        vox = prepare_voxels(voxels, self.config.resolution)
        logits, feats = [], []
        for i in range(0, len(vox), batch_size):
            lo, fe = self.net(_to_tensor(vox[i:i + batch_size], self.device))
            logits.append(lo.float().cpu().numpy())
            feats.append(fe.float().cpu().numpy())
        return np.concatenate(logits), np.concatenate(feats)

    def features(self, voxels: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Feature vectors (N, F) float64 of grids (N, R, R, R) (bool/int: > 0, float: > 0.5)."""
        return self._run(voxels, batch_size)[1].astype(np.float64)

    def predict(self, voxels: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Predicted class indices (N,) int64 into :attr:`class_names`."""
        return self._run(voxels, batch_size)[0].argmax(1).astype(np.int64)

    def features_and_predictions(self, voxels: np.ndarray, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Both of the above from one pass: features (N, F) float64 and class indices (N,) int64."""
        logits, feats = self._run(voxels, batch_size)
        return feats.astype(np.float64), logits.argmax(1).astype(np.int64)

    def save(self, path: str | Path, *, data_hash: str = "", meta: dict[str, Any] | None = None,
             half: bool = True) -> Path:
        """Write the judge in the project's checkpoint format (fp16 by default: an asset)."""
        return save_judge_checkpoint(path, model=self.net, config=self.config.to_dict(), data_hash=data_hash,
                                     meta={**self.meta, **(meta or {})}, half=half)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> JudgeClassifier:
        """Read a judge checkpoint (weights only; a GAN checkpoint or a damaged file is a BadCheckpointError)."""
        ckpt = load_checkpoint(path, judge=True)
        config = JudgeConfig.from_dict(ckpt["judge_config"], str(path))
        with torch.device("meta"):
            net = JudgeNet(config)
        load_weights(net, ckpt, "judge", assign=True)
        return cls(net, config, device, path=Path(path), meta=ckpt.get("meta"))

    def __repr__(self) -> str:
        where = self.path or "in memory"
        return f"JudgeClassifier({len(self.class_names)} classes, {self.feature_dim}-d features, {where})"


def prepare_voxels(voxels: np.ndarray, resolution: int) -> np.ndarray:
    """Binary uint8 grids (N, r, r, r) at the judge's size from (N, R, R, R) grids; one clear error otherwise."""
    v = np.asarray(voxels)
    if v.ndim != 4 or not (v.shape[1] == v.shape[2] == v.shape[3]) or len(v) == 0 or v.dtype.kind not in "biuf":
        raise BadInputError(f"the judge needs a non-empty numeric (N, R, R, R) array, got {v.shape} {v.dtype}")
    if v.dtype.kind == "f":
        if not np.isfinite(v).all():
            raise BadInputError("voxels for the judge contain NaN or Inf")
        v = v > 0.5
    v = (v > 0).astype(np.uint8)
    return v if v.shape[1] == resolution else resample(v, resolution)


def _to_tensor(vox: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(vox)).to(device).float().unsqueeze(1)


def augment(x: torch.Tensor, gen: torch.Generator, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """Random mirror images across both horizontal axes (axis 2 is up) and integer shifts of up to
    ``max_shift`` voxels per axis (zeros move in), each drawn per shape: the class of a shape survives both."""
    b = x.shape[0]
    x = x.clone()
    for dim in (2, 3):
        flip = torch.rand(b, generator=gen) < 0.5
        x[flip] = x[flip].flip(dim)
    return random_shift(x, max_shift, generator=gen)


def train_judge(
    train_voxels: np.ndarray,
    train_labels: np.ndarray,
    class_names: Sequence[str],
    *,
    epochs: int = 20,
    seed: int = 0,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    config: JudgeConfig | None = None,
    device: str | torch.device | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> JudgeClassifier:
    """Train a judge on labelled grids (N, R, R, R) (resampled to 32^3, or ``config.resolution``).

    ``progress`` gets one dict per epoch: epoch, epochs, loss, train_accuracy (on the augmented batches),
    seconds. The same seed, data and device give the same judge.
    """
    labels = np.asarray(train_labels)
    cfg = config or JudgeConfig(class_names=tuple(str(c) for c in class_names))
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(np.asarray(train_voxels)):
        raise BadInputError(f"need one integer label per shape, got labels {labels.shape} {labels.dtype}")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(cfg.class_names):
        raise BadInputError(f"labels must index the {len(cfg.class_names)} class names")
    if epochs < 1 or batch_size < 1:
        raise BadInputError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}")
    vox = prepare_voxels(train_voxels, cfg.resolution)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    torch.manual_seed(seed)
    net = JudgeNet(cfg).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(vox) / batch_size)
    total, step = epochs * steps_per_epoch, 0
    y_all = torch.from_numpy(labels.astype(np.int64))
    for epoch in range(epochs):
        net.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(vox))
        loss_sum, right, seen = 0.0, 0, 0
        for i in range(0, len(order), batch_size):
            idx = np.sort(order[i:i + batch_size])
            if len(idx) < 2:  # BatchNorm needs two shapes
                continue
            for g in opt.param_groups:  # cosine from lr to 0 over the run
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            x = augment(_to_tensor(vox[idx], torch.device("cpu")), gen).to(dev)
            if dev.type == "cpu":  # oneDNN's faster layout for 3D convolutions (about 20% per step)
                x = x.contiguous(memory_format=torch.channels_last_3d)
            y = y_all[idx].to(dev)
            logits, _ = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            right += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        if progress is not None:
            progress({"epoch": epoch + 1, "epochs": epochs, "loss": loss_sum / max(seen, 1),
                      "train_accuracy": right / max(seen, 1), "seconds": time.perf_counter() - t0})
    net.eval()
    return JudgeClassifier(net, cfg, dev, meta={"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr,
                                                "n_train": len(vox)})


__all__ = ["JudgeClassifier", "JudgeConfig", "JudgeNet", "augment", "prepare_voxels", "train_judge"]
