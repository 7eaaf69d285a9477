"""Tiny synthetic voxel sets for core tests (no file from ../shared is ever read by tests)."""

from pathlib import Path

import numpy as np


def boxes_npz(path: Path, n: int = 24, r: int = 16, seed: int = 0) -> Path:
    """n random boxes at r^3 in two classes (flat slabs, tall columns), in the documented npz layout."""
    rng = np.random.default_rng(seed)
    vox = np.zeros((n, r, r, r), np.uint8)
    labels = np.arange(n) % 2
    for i in range(n):
        if labels[i] == 0:
            sx, sy, sz = rng.integers(r // 2, r - 2), rng.integers(r // 2, r - 2), rng.integers(2, 4)
        else:
            sx, sy, sz = rng.integers(2, 5), rng.integers(2, 5), rng.integers(r // 2, r - 2)
        x0, y0 = (r - sx) // 2, (r - sy) // 2
        vox[i, x0:x0 + sx, y0:y0 + sy, 1:1 + sz] = 1
    np.savez(path, voxels=vox, labels=labels.astype(np.int64), classes=np.array(["slab", "column"]))
    return path
