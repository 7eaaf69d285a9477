"""Model and training profiles: one frozen dataclass builds the networks, supplies the CLI defaults,
and is stored in every checkpoint and at the head of every metrics log.

Add a size by adding a profile here, never by changing code elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from gan_core.errors import BadInputError, ProfileMismatchError


D_NORMS = ("batch", "spectral")  # D's normalisation (a Profile field)
LOSSES = ("bce", "hinge")  # the GAN loss (gan3d train --loss)
AUGMENTS = ("none", "shift")  # what D sees shapes through (gan3d train --augment; gan_core.augment)
ENCODERS = ("paper", "resnet")  # the image encoder (a Profile field; gan3d train-vae --encoder; models.build_encoder)


@dataclass(frozen=True)
class Profile:
    """Architecture and training defaults of one 3D-GAN / 3D-VAE-GAN variant.

    ``g_channels[i]`` is the output width of generator block ``i``: block 0 maps z to a 4^3 volume, each
    later block doubles the size, and a last layer maps to one occupancy channel at ``resolution``.
    The discriminator mirrors it with ``d_channels`` (input widths growing, a last 4^3 -> 1 layer).
    Both have log2(resolution / 4) entries: paper64 is G 512-256-128-64(-1), D 64-128-256-512(-1).
    """

    name: str
    resolution: int
    g_channels: tuple[int, ...]
    d_channels: tuple[int, ...]
    z_dim: int = 200
    d_norm: str = "batch"  # D's normalisation: "batch" (the paper) or "spectral" (spectral norm, no BatchNorm)
    z_prior: str = "normal"  # "normal": N(0, 1); "uniform": U[0, 1) as in the authors' release
    # Training (the paper's recipe, section 3 / DESIGN 1)
    g_lr: float = 0.0025
    d_lr: float = 1e-5
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 100
    d_acc_threshold: float = 0.8
    # 3D-VAE-GAN image encoder
    image_size: int = 256
    e_kernels: tuple[int, ...] = (11, 5, 5, 5, 8)
    e_strides: tuple[int, ...] = (4, 2, 2, 2, 1)
    e_channels: tuple[int, ...] = (64, 128, 256, 512, 400)
    encoder: str = "paper"  # "paper": the conv stack above; "resnet": models.ResNetEncoder (e_* unused)
    kl_weight: float = 5.0
    recon_weight: float = 1e-4
    description: str = ""

    def __post_init__(self) -> None:
        n = math.log2(self.resolution / 4)
        if self.resolution < 8 or n != int(n):
            raise BadInputError(f"profile {self.name!r}: resolution must be 4 * 2^k >= 8, got {self.resolution}")
        if len(self.g_channels) != int(n) or len(self.d_channels) != int(n):
            raise BadInputError(
                f"profile {self.name!r}: resolution {self.resolution} needs {int(n)} channel entries "
                f"for G and D, got {len(self.g_channels)} and {len(self.d_channels)}"
            )
        if self.e_channels[-1] != 2 * self.z_dim:
            raise BadInputError(f"profile {self.name!r}: the encoder's last layer must give 2 * z_dim channels")
        if not (len(self.e_kernels) == len(self.e_strides) == len(self.e_channels)):
            raise BadInputError(f"profile {self.name!r}: e_kernels, e_strides and e_channels differ in length")
        if self.d_norm not in D_NORMS:
            raise BadInputError(f"profile {self.name!r}: d_norm must be one of {', '.join(D_NORMS)}")
        if self.encoder not in ENCODERS:
            raise BadInputError(f"profile {self.name!r}: encoder must be one of {', '.join(ENCODERS)}")
        if self.z_prior not in ("normal", "uniform"):
            raise BadInputError(f"profile {self.name!r}: z_prior must be 'normal' or 'uniform'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """Rebuild a profile stored in a checkpoint; unknown keys (from newer versions) are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ProfileMismatchError(f"stored profile has unknown fields {sorted(unknown)}; upgrade gan3d")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    def replace(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)

    def architecture(self) -> dict[str, Any]:
        """The fields that decide tensor shapes: two profiles with equal architecture share weights."""
        keys = ("resolution", "g_channels", "d_channels", "d_norm", "z_dim", "image_size", "e_kernels", "e_strides",
                "e_channels", "encoder")
        return {k: getattr(self, k) for k in keys}


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            name="paper64",
            resolution=64,
            g_channels=(512, 256, 128, 64),
            d_channels=(64, 128, 256, 512),
            description="Wu et al. 2016 exactly: 64^3, G 512-256-128-64-1, D 64-128-256-512-1",
        ),
        Profile(
            name="fast32",
            resolution=32,
            g_channels=(256, 128, 64),
            d_channels=(64, 128, 256),
            batch_size=64,
            image_size=128,
            e_kernels=(11, 5, 5, 5, 4),
            description="the paper's topology at 32^3 with half the channels: trains on 2 CPU cores in about an hour",
        ),
        Profile(
            name="tiny16",
            resolution=16,
            g_channels=(32, 16),
            d_channels=(16, 32),
            z_dim=32,
            batch_size=8,
            image_size=64,
            e_kernels=(5, 3, 3, 3, 4),
            e_strides=(2, 2, 2, 2, 1),
            e_channels=(8, 16, 32, 32, 64),
            description="a toy size for tests and smoke runs (seconds on a CPU)",
        ),
    ]
}


# Training settings by name, for the flags a run leaves out (gan3d train --recipe). "stable" trained the models
# shipped until December 2026 on 2 CPU cores (at fast32's batch 64): at 32^3 on ModelNet10 the paper's learning
# rates let G overpower D within a few steps (mode collapse). "fast" is stable with batches of 16: quality follows
# optimiser steps more than images seen, and a small batch costs no more per shape on a CPU.
# The others replace the paper's gated D (updated only below 80% accuracy) with a D updated every step and a
# modern regulariser (benchmarks/RESULTS.md, 2026-12-07, compares them at equal CPU time on the held-out split:
# "fast" won, and is gan3d train's default; r1 and hinge collapsed to empty shapes at these settings):
# "r1": the non-saturating loss with an R1 gradient penalty on real shapes (Mescheder et al. 2018), lazily every
#       4 steps (Karras et al. 2020); "r1-aug": the same, D seeing real and fake shapes shifted by up to 2 voxels
#       (differentiable augmentation, Zhao et al. 2020); "hinge": the hinge loss with spectral normalisation in D
#       instead of BatchNorm (Miyato et al. 2018).
_STABLE: dict[str, Any] = {"g_lr": 1e-3, "d_lr": 1e-4, "label_smoothing": 0.1, "instance_noise": 0.05, "ema_kimg": 16.0}
_FAST: dict[str, Any] = {**_STABLE, "batch_size": 16}
_EVERY_STEP: dict[str, Any] = {"batch_size": 16, "ema_kimg": 16.0, "d_acc_threshold": 1.0, "label_smoothing": 0.0,
                               "instance_noise": 0.0}
_R1: dict[str, Any] = {**_EVERY_STEP, "g_lr": 1e-3, "d_lr": 2e-4, "loss": "bce", "r1_gamma": 1.0}
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "stable": _STABLE,
    "fast": _FAST,
    "r1": _R1,
    "r1-aug": {**_R1, "augment": "shift"},
    "hinge": {**_EVERY_STEP, "g_lr": 5e-4, "d_lr": 5e-4, "loss": "hinge", "d_norm": "spectral"},
}


def get_profile(name: str) -> Profile:
    """Return the named profile; the error lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise BadInputError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


def check_same_architecture(a: Profile, b: Profile, what: str) -> None:
    """Raise ProfileMismatchError naming the first differing field."""
    aa, bb = a.architecture(), b.architecture()
    for k in aa:
        if aa[k] != bb[k]:
            raise ProfileMismatchError(
                f"{what}: profile {a.name!r} has {k}={aa[k]} but {b.name!r} has {k}={bb[k]}"
            )


__all__ = ["Profile", "PROFILES", "get_profile", "check_same_architecture", "field"]
