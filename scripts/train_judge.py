#!/usr/bin/env python
"""Train the judge (gan_core.judge) on the train part of the held-out split and write it as an asset.

The judge scores generated shapes in `gan3d evaluate` (Frechet distance of its features, class histogram), so it
must never see the held-out part: it trains on TRAIN only and reports its accuracy on HELDOUT once, at the end.

    gan3d split --data ../shared/data/modelnet10_train_32.npz --out-dir runs/split
    .venv/bin/python scripts/train_judge.py --train runs/split/train.npz --heldout runs/split/heldout.npz \\
        --out assets/judge_modelnet10.pt --epochs 30 --threads 1

One JSON line at the end: held-out accuracy (overall and per class), the train file's sha256, the file size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan_core.data import VoxelDataset  # noqa: E402
from gan_core.files import file_sha256  # noqa: E402
from gan_core.judge import train_judge  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="the train part (gan3d split's train.npz)")
    p.add_argument("--heldout", required=True, help="the held-out part (gan3d split's heldout.npz), scored once")
    p.add_argument("--out", required=True, help="where to write the judge (.pt, fp16)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: the machine is shared)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train, held = VoxelDataset(args.train), VoxelDataset(args.heldout)
    if train.class_names != held.class_names:
        sys.exit(f"BadInputError: {args.train} and {args.heldout} name different classes")
    t0 = time.perf_counter()

    def report(e: dict) -> None:
        print(f"epoch {e['epoch']}/{e['epochs']}: loss {e['loss']:.4f}, train accuracy (augmented) "
              f"{e['train_accuracy']:.4f}, {e['seconds']:.0f} s", flush=True)

    judge = train_judge(train.read(np.arange(len(train))), train.labels, train.class_names, epochs=args.epochs,
                        seed=args.seed, device=args.device, progress=report)
    minutes = (time.perf_counter() - t0) / 60
    pred = judge.predict(held.read(np.arange(len(held))))
    right = pred == held.labels
    per_class = {c: round(float(right[held.labels == i].mean()), 4) for i, c in enumerate(held.class_names)
                 if (held.labels == i).any()}
    sha = file_sha256(args.train)
    out = judge.save(args.out, data_hash=sha, meta={
        "command": " ".join(["scripts/train_judge.py", *(argv if argv is not None else sys.argv[1:])]),
        "train": str(args.train), "heldout": str(args.heldout), "heldout_accuracy": round(float(right.mean()), 4),
        "train_minutes": round(minutes, 1), "threads": args.threads})
    print(json.dumps({"out": str(out), "size_bytes": out.stat().st_size, "train_sha256": sha,
                      "heldout_sha256": file_sha256(args.heldout), "n_train": len(train), "n_heldout": len(held),
                      "heldout_accuracy": round(float(right.mean()), 4), "per_class": per_class,
                      "train_minutes": round(minutes, 1), "epochs": args.epochs, "seed": args.seed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
