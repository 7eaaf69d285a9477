"""Differentiable augmentation of voxel grids for the discriminator (DiffAugment, Zhao et al. 2020, in 3D).

D sees real and generated shapes through the same random transformation, and G's gradient flows back through
it, so D cannot memorise a small training set while G still learns the untransformed shapes. Only transforms
that keep a shape a plausible shape of its class are used: integer shifts with empty space filled in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_core.config import AUGMENTS
from gan_core.errors import BadInputError

MAX_SHIFT = 2  # voxels, at any resolution: up to 1/16 of a 32^3 grid


def random_shift(x: torch.Tensor, max_shift: int = MAX_SHIFT, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each grid of ``x`` (B, C, R, R, R) moved by its own integer offset in [-max_shift, max_shift] along each
    axis, with zeros (empty space) coming in; the gradient flows to ``x``."""
    if max_shift <= 0:
        return x
    b, r = x.shape[0], x.shape[-1]
    s = max_shift
    offsets = torch.randint(0, 2 * s + 1, (b, 3), generator=generator).tolist()
    padded = F.pad(x, (s, s, s, s, s, s))
    return torch.stack([padded[i, :, a:a + r, c:c + r, d:d + r] for i, (a, c, d) in enumerate(offsets)])


def augment(x: torch.Tensor, kind: str) -> torch.Tensor:
    """``x`` transformed by the named augmentation (AUGMENTS)."""
    if kind == "none":
        return x
    if kind == "shift":
        return random_shift(x)
    raise BadInputError(f"unknown augmentation {kind!r}; use {', '.join(AUGMENTS)}")
