"""The paper's Figure 4 on the held-out split: linear-SVM accuracy against labelled shapes per class.

    python benchmarks/limited_data_curve.py --train runs/split/train.npz --test runs/split/heldout.npz \
        --checkpoint runs/recipes/r1-aug/latest.pt --png docs/limited_data_curve.png

D features of the checkpoint (the paper's pooled taps) and raw voxels, each with N = 1, 2, 5, 10, 20, 50 shapes
per class drawn from --train (``--repeats`` draws, mean and spread) and with all of them, scored on --test.
The checkpoint's D must not have trained on --test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gan_core.data import VoxelDataset
from gan_core.evaluate import limited_data_curve
from gan_core.features import dataset_features
from gan_core.runtime import load_model

PER_CLASS: list[int | None] = [1, 2, 5, 10, 20, 50, None]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True, help="labelled shapes to draw from (the train part)")
    p.add_argument("--test", required=True, help="held-out shapes to score on")
    p.add_argument("--checkpoint", default=None, help="model whose D gives the features (default: bundled)")
    p.add_argument("--repeats", type=int, default=5, help="draws per N")
    p.add_argument("--png", type=Path, default=None, help="draw the curve here")
    p.add_argument("--json", type=Path, default=None, help="write the points here")
    args = p.parse_args(argv)

    train, test = VoxelDataset(args.train), VoxelDataset(args.test)
    model = load_model(args.checkpoint)
    feats = {"D features": (dataset_features(model, train)["paper"], dataset_features(model, test)["paper"]),
             "raw voxels": (train.read(np.arange(len(train))).reshape(len(train), -1).astype(np.float32),
                            test.read(np.arange(len(test))).reshape(len(test), -1).astype(np.float32))}
    curves = {}
    for name, (xtr, xte) in feats.items():
        pts = limited_data_curve(xtr, train.labels, xte, test.labels, class_names=train.class_names,
                                 per_class=PER_CLASS, repeats=args.repeats)
        curves[name] = pts
        for pt in pts:
            n = "all" if pt.per_class is None else pt.per_class
            print(f"{name:<11} N={n!s:>4} ({pt.n_train:>4} shapes): {pt.mean:.3f} +- {pt.std:.3f}", flush=True)
    print("\n| per class | " + " | ".join(curves) + " |\n|---|" + "---|" * len(curves))
    for i, n in enumerate(PER_CLASS):
        print(f"| {'all' if n is None else n} | "
              + " | ".join(f"{c[i].mean:.3f} +- {c[i].std:.3f}" for c in curves.values()) + " |")
    if args.json:
        args.json.write_text(json.dumps({k: [vars(pt) for pt in v] for k, v in curves.items()}, indent=1))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for name, pts in curves.items():
            x = [pt.n_train / len(train.class_names) for pt in pts]
            ax.errorbar(x, [pt.mean for pt in pts], yerr=[pt.std for pt in pts], marker="o", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training shapes per class (last point: all)")
        ax.set_ylabel(f"accuracy on {len(test)} held-out shapes")
        ax.set_title(f"Linear SVM, {model.name}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.png)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
