"""Which discriminator features classify best (issue 23, item 2): taps, pooling and flipped training shapes,
each scored by the same linear SVM (C by 5-fold CV on the train part) on the held-out part.

    python benchmarks/classify_features.py --checkpoint runs/recipes/r1-aug/latest.pt \
        --train runs/split/train.npz --test runs/split/heldout.npz

Variants, from one pass of D per set (and one per flip): ``paper`` (blocks 2-4 of paper64 / every block of
fast32, each max-pooled to 2^3: gan3d's default), ``paper+avg`` (the same with average pooling beside the max),
``max4`` (the last two blocks max-pooled to 4^3), ``last`` (the last block as it is), and each of those with the
training set tripled by mirror images across the two horizontal axes (``+flips``: ModelNet's classes are
mirror-symmetric across one or the other; one fit at the C the plain features chose, as CV on three times the
shapes costs minutes per variant). Raw voxels are the baseline. The checkpoint's D must not have
trained on --test.
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.data import VoxelDataset
from gan_core.evaluate import svm_classify
from gan_core.runtime import load_model

Pool = Callable[[list[torch.Tensor]], torch.Tensor]
POOLS: dict[str, Pool] = {
    "paper": lambda acts: torch.cat([F.adaptive_max_pool3d(a, 2).flatten(1) for a in acts[-3:]], 1),
    "paper+avg": lambda acts: torch.cat([F.adaptive_max_pool3d(a, 2).flatten(1) for a in acts[-3:]]
                                        + [F.adaptive_avg_pool3d(a, 2).flatten(1) for a in acts[-3:]], 1),
    "max4": lambda acts: torch.cat([F.adaptive_max_pool3d(a, 4).flatten(1) for a in acts[-2:]], 1),
    "last": lambda acts: acts[-1].flatten(1),
}


@torch.inference_mode()
def pooled(d: torch.nn.Module, voxels: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    """Every variant's features of ``voxels`` (N, R, R, R) from one pass of D in eval mode."""
    d.eval()
    out: dict[str, list[np.ndarray]] = {k: [] for k in POOLS}
    for s in range(0, len(voxels), batch):
        acts = [a.float() for a in d.activations(torch.from_numpy(voxels[s:s + batch]).float())]
        for k, f in POOLS.items():
            out[k].append(f(acts).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None, help="model whose D gives the features (default: bundled)")
    p.add_argument("--train", required=True, help="labelled training shapes (the train part)")
    p.add_argument("--test", required=True, help="held-out shapes")
    p.add_argument("--limit", type=int, default=None, help="at most this many shapes of each set (smoke runs)")
    args = p.parse_args(argv)

    train, test = VoxelDataset(args.train, limit=args.limit), VoxelDataset(args.test, limit=args.limit)
    xtr, xte = train.read(np.arange(len(train))), test.read(np.arange(len(test)))
    ytr, yte = train.labels, test.labels
    model = load_model(args.checkpoint, device="cpu", precision="fp32")
    d = model.discriminator
    ftr, fte = pooled(d, xtr), pooled(d, xte)
    flips = [pooled(d, np.ascontiguousarray(np.flip(xtr, axis))) for axis in (1, 2)]  # mirror across x, across y
    rows = [("raw voxels", svm_classify(xtr.reshape(len(xtr), -1).astype(np.float32), ytr,
                                        xte.reshape(len(xte), -1).astype(np.float32), yte,
                                        class_names=train.class_names))]
    for k in POOLS:
        plain = svm_classify(ftr[k], ytr, fte[k], yte, class_names=train.class_names)
        rows.append((k, plain))
        aug = np.concatenate([ftr[k]] + [f[k] for f in flips])  # three times the shapes: the plain run's C, one fit
        rows.append((k + " +flips", svm_classify(aug, np.tile(ytr, 3), fte[k], yte, class_names=train.class_names,
                                                 c_grid=[plain.C])))
    print(f"\n{model.name}: linear SVM, train {len(train)} shapes ({train.path.name}), test {len(test)} ({test.path.name})\n")
    print("| features | dim | C | CV accuracy | held-out accuracy |\n|---|---|---|---|---|")
    for name, r in rows:
        cv = "(C as without flips)" if r.cv_accuracy is None else f"{r.cv_accuracy:.3f}"
        print(f"| {name} | {r.feature_dim} | {r.C:g} | {cv} | {r.accuracy:.3f} |", flush=True)


if __name__ == "__main__":
    main()
