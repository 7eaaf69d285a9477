"""Change the resolution of binary voxel grids (32^3 <-> 64^3 and other powers of two)."""

from __future__ import annotations

import numpy as np

from gan_core.errors import BadInputError


def resample(voxels: np.ndarray, resolution: int) -> np.ndarray:
    """Resample uint8/bool grids (..., R, R, R) to (..., r, r, r) with r = ``resolution``.

    Up-sampling by an integer factor f interpolates trilinearly and thresholds at 0.5, giving smoother
    surfaces than repeating voxels. Down-sampling averages f^3 blocks and keeps a voxel when at least a quarter
    of its block is filled, so thin parts (chair legs) survive.
    """
    vox = np.asarray(voxels)
    r = vox.shape[-1]
    if vox.ndim < 3 or vox.shape[-3:] != (r, r, r):
        raise BadInputError(f"voxels must end in (R, R, R), got {vox.shape}")
    if resolution == r:
        return (vox > 0).astype(np.uint8)
    lead = vox.shape[:-3]
    flat = (vox > 0).reshape(-1, r, r, r)
    if resolution > r:
        if resolution % r:
            raise BadInputError(f"cannot up-sample {r}^3 to {resolution}^3: not an integer factor")
        return _upsample(flat, resolution // r).reshape(*lead, resolution, resolution, resolution)
    if r % resolution:
        raise BadInputError(f"cannot down-sample {r}^3 to {resolution}^3: not an integer factor")
    f = r // resolution
    blocks = flat.reshape(-1, resolution, f, resolution, f, resolution, f).mean(axis=(2, 4, 6))
    return (blocks >= 0.25).astype(np.uint8).reshape(*lead, resolution, resolution, resolution)


def _upsample(flat: np.ndarray, f: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(flat.astype(np.float32))[:, None]  # (N, 1, r, r, r)
    out = F.interpolate(t, scale_factor=f, mode="trilinear", align_corners=False)
    return (out[:, 0] >= 0.5).numpy().astype(np.uint8)
