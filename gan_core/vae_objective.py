"""The 3D-VAE-GAN objective's terms (Wu et al. 2016, section 3.2) and its held-out split.

With y a rendered image of shape x and z ~ q(z | y) = N(mean(y), diag(exp(logvar(y)))):

    L = L_GAN + a1 * KL(q(z | y) || p(z)) + a2 * ||G(z) - x||^2

Reductions (chosen so the paper's a1 = 5, a2 = 1e-4 balance each other; the paper leaves them open):

* ``recon`` = squared error **summed over voxels**, **averaged over the batch** (one shape's SSE, 0..R^3);
* ``kl`` = KL divergence **averaged over the z dimensions** and over the batch (nats per latent dimension;
  ``kl_total`` in the logs is the usual sum over z).

Why: the encoder's equilibrium mean is mean_i = -(a2 / a1_eff) dSSE/dz_i. Measured on a fast32 generator
from the 3D-GAN run, |dSSE/dz_i| is about 140, so with KL summed over z (a1_eff = 5) every mean would sit at
~0.003, a total posterior collapse to one shape; averaged over the 200 dimensions (a1_eff = 0.025) the means
sit at ~0.5, within the prior's typical range, and the reconstruction and KL gradients are of the same size.
Adam makes E's update invariant to a common scale of its loss, so only this ratio matters for E.

``recon_loss="bce"`` replaces the squared error by binary cross-entropy on G's logits, summed over voxels and
averaged over the batch (not the paper's). Why: a trained 3D-GAN generator is confident (measured: 92% of
the fast32 generator's voxels are below 0.01 or above 0.99), and through a saturated sigmoid the squared
error's gradient, 2 (p - x) p (1 - p), vanishes exactly where the shape is wrong; cross-entropy's is p - x.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.models import Generator

__all__ = ["batch_iou", "generator_logits", "holdout_split", "recon_bce", "recon_loss", "spread"]


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) positions of ``n`` shapes: a seeded permutation, the first
    round(fraction * n) held out (at least one when fraction > 0). Both sorted."""
    perm = np.random.default_rng([int(seed), 0xE7A1]).permutation(n)
    k = max(1, int(round(fraction * n))) if fraction > 0 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])


def spread(positions: np.ndarray, k: int) -> np.ndarray:
    """At most ``k`` evenly spaced entries of sorted ``positions``: a deterministic subset that covers every
    class of a class-sorted file (the first k would be one or two classes)."""
    if len(positions) <= k:
        return positions
    return positions[np.linspace(0, len(positions) - 1, k).round().astype(np.int64)]


def recon_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||G(E(y)) - x||^2 summed over voxels, averaged over the batch: pred, target (B, R, R, R) -> ()."""
    return (pred.float() - target.float()).pow(2).flatten(1).sum(1).mean()


def recon_bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy of G's logits against x, summed over voxels, averaged over the batch: (B, R, R, R) -> ().

    ``pos_weight`` > 1 weighs occupied voxels more (Brock et al. 2016 did the same for voxel autoencoders):
    with a few percent of the grid occupied, plain BCE is minimised by hedging below 0.5 on thin parts, and a
    chair's legs and back vanish at the iso level.
    """
    pw = None if pos_weight == 1.0 else torch.tensor(pos_weight, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none",
                                              pos_weight=pw).flatten(1).sum(1).mean()


def generator_logits(G: Generator, z: torch.Tensor) -> torch.Tensor:
    """G's pre-sigmoid output (B, R, R, R) for z (B, z_dim): sigmoid of it is ``G(z)``."""
    net = G.net
    assert isinstance(net[-1], torch.nn.Sigmoid), "Generator must end in a Sigmoid"
    zd = G.profile.z_dim
    assert z.ndim == 2 and z.shape[1] == zd, f"expected z (N, {zd}), got {tuple(z.shape)}"
    return net[:-1](z.view(z.shape[0], zd, 1, 1, 1))[:, 0]


def batch_iou(prob: torch.Tensor, target: torch.Tensor) -> float:
    """Mean IoU of thresholded predictions (B, R, R, R) against targets; 1 where both are empty."""
    p, t = prob.detach() > 0.5, target > 0.5
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return float(torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean())
