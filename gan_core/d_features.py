"""Discriminator features of voxel grids: a function of a D network (gan_core.models.Discriminator and its
feature taps), below the Model that holds one. The feature bank (:mod:`gan_core.features`) stores them.

Two feature sets (Wu et al. 2016, section 4.2 and 4.4):

* ``"paper"``: the responses of D's last three hidden conv blocks, each max-pooled to 2x2x2 and flattened
  (channel-major, then x, y, z) and concatenated. At paper64 those blocks are D's 2nd, 3rd and 4th conv
  layers, 128@16^3, 256@8^3 and 512@4^3, pooled with stride 8, 4 and 2: 8 * (128 + 256 + 512) = 7168 values,
  the paper's SVM features. The same rule gives 8 * (64 + 128 + 256) = 3584 at fast32 (taps 64@16^3,
  128@8^3, 256@4^3) and 8 * (16 + 32) = 384 at tiny16 (which has only two hidden blocks).
* ``"last"``: the last hidden block's full response, flattened: 512 * 4^3 = 32768 values at paper64,
  256 * 4^3 = 16384 at fast32. The paper uses D's last conv layer for nearest-neighbour retrieval of
  generated shapes (to show that G does not memorise).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.config import Profile, get_profile
from gan_core.data.resample import resample
from gan_core.device import autocast
from gan_core.errors import BadInputError
from gan_core.models import Discriminator

KINDS = ("paper", "last")


def feature_dim(profile: Profile | str, kind: str = "paper") -> int:
    """Length of one feature vector: 7168 ("paper") / 32768 ("last") at paper64, 3584 / 16384 at fast32."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    check_kind(kind)
    if kind == "paper":
        return 8 * sum(prof.d_channels[-3:])
    return prof.d_channels[-1] * 4**3  # the last hidden block is always 4^3


def extract_features(
    discriminator: Discriminator,
    voxels: np.ndarray,
    *,
    kind: str = "paper",
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Discriminator features of voxel grids.

    Parameters
    ----------
    discriminator : Discriminator
        Run in eval mode under ``torch.inference_mode``; its train/eval flag is restored afterwards.
    voxels : ndarray (N, R, R, R) or (R, R, R), uint8, bool or float
        Occupancy. Grids at the profile's resolution are used as given (float grids in [0, 1] included, e.g.
        generator outputs); other sizes with an integer factor are thresholded (> 0, or > 0.5 for float) and
        resampled with :func:`gan_core.data.resample.resample`.
    kind : "paper" or "last"
        See the module docstring.
    batch_size : int
        Grids per forward pass.
    device : torch device, optional
        Where to run; the discriminator is moved there (as ``nn.Module.to`` does). Default: where it is.
    amp_dtype : torch dtype, optional
        Autocast dtype (bf16 / fp16); None runs in fp32.

    Returns
    -------
    ndarray (N, feature_dim(profile, kind)) float32

    Examples
    --------
    >>> d = Discriminator(get_profile("fast32"))
    >>> extract_features(d, np.zeros((2, 32, 32, 32), np.uint8)).shape
    (2, 3584)
    """
    check_kind(kind)
    return extract_feature_sets(discriminator, voxels, kinds=(kind,), batch_size=batch_size, device=device,
                                amp_dtype=amp_dtype)[kind]


def extract_feature_sets(
    discriminator: Discriminator,
    voxels: np.ndarray,
    *,
    kinds: Sequence[str] = KINDS,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, np.ndarray]:
    """Several feature sets from one forward pass: ``{kind: (N, F_kind) float32}``. See extract_features."""
    for k in kinds:
        check_kind(k)
    if batch_size < 1:
        raise BadInputError(f"batch_size must be >= 1, got {batch_size}")
    r = discriminator.profile.resolution
    vox = _check_voxel_stack(voxels)  # converted a batch at a time: a 64^3 float copy of a whole set is GBs
    dev = torch.device(device) if device is not None else next(discriminator.parameters()).device
    was_training = discriminator.training
    discriminator.to(dev).eval()
    out = {k: np.empty((len(vox), feature_dim(discriminator.profile, k)), np.float32) for k in kinds}
    try:
        with torch.inference_mode():
            for s in range(0, len(vox), batch_size):
                x = torch.from_numpy(prepare_voxels(vox[s:s + batch_size], r)).to(dev)  # (B, R, R, R)
                with autocast(dev, amp_dtype):
                    acts = discriminator.activations(x)  # [(B, C_i, S_i, S_i, S_i)]
                for k, feats in _features_from_activations(acts, kinds).items():
                    out[k][s:s + len(x)] = feats.float().cpu().numpy()
    finally:
        discriminator.train(was_training)
    return out


def _features_from_activations(acts: list[torch.Tensor], kinds: Sequence[str]) -> dict[str, torch.Tensor]:
    res = {}
    if "paper" in kinds:
        pooled = [F.adaptive_max_pool3d(a.float(), 2).flatten(1) for a in acts[-3:]]  # (B, 8 * C_i) each
        res["paper"] = torch.cat(pooled, dim=1)
    if "last" in kinds:
        res["last"] = acts[-1].float().flatten(1)  # (B, C_last * 4^3)
    return res


def prepare_voxels(voxels: np.ndarray, resolution: int) -> np.ndarray:
    """Validate grids (N, R, R, R) or (R, R, R) and bring them to ``resolution``: float32 (N, r, r, r)."""
    vox = _check_voxel_stack(voxels)
    if vox.shape[1] == resolution:
        return vox.astype(np.float32) if vox.dtype.kind == "f" else (vox > 0).astype(np.float32)
    r = vox.shape[1]
    if max(r, resolution) % min(r, resolution):
        raise BadInputError(f"voxels are {r}^3 but the model needs {resolution}^3 (not an integer factor apart)")
    binary = vox > 0.5 if vox.dtype.kind == "f" else vox > 0
    return resample(binary, resolution).astype(np.float32)


def _check_voxel_stack(voxels: np.ndarray) -> np.ndarray:
    vox = np.asarray(voxels)
    if vox.ndim == 3:
        vox = vox[None]
    if vox.ndim != 4 or not (vox.shape[1] == vox.shape[2] == vox.shape[3]) or vox.shape[1] == 0:
        raise BadInputError(f"voxels must have shape (N, R, R, R), got {vox.shape}")
    if len(vox) == 0:
        raise BadInputError("voxels: empty set (N = 0)")
    if vox.dtype.kind not in "biuf":
        raise BadInputError(f"voxels must be numeric or bool, got dtype {vox.dtype}")
    if vox.dtype.kind == "f" and not np.isfinite(vox).all():
        raise BadInputError("voxels contain NaN or Inf")
    return vox


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise BadInputError(f"unknown feature kind {kind!r}; use 'paper' or 'last'")
