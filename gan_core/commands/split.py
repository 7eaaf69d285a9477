"""gan3d split: the stratified held-out part of a labelled voxel set that no model trains on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan_core.commands._common import existing_file

HELP = "split a labelled voxel set into a train part and a stratified held-out part (seeded, written down)"
EXAMPLE = "gan3d split --data ../shared/data/modelnet10_train_32.npz --out-dir runs/split"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from gan_core.data.split import DEFAULT_FRACTION, DEFAULT_SEED

    p.add_argument("--data", required=True, help="labelled voxel set (.npz or .h5)")
    p.add_argument("--out-dir", required=True, help="folder for train.npz, heldout.npz and split.json")
    p.add_argument("--fraction", type=float, default=DEFAULT_FRACTION, help="share of each class held out")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the draw")


def run(args: argparse.Namespace) -> int:
    from gan_core.data import VoxelDataset
    from gan_core.data.split import heldout_split
    from gan_core.data.dataset import save_voxel_npz
    from gan_core.files import atomic_path, file_sha256

    path = existing_file(args.data, "--data")
    ds = VoxelDataset(path)
    train, heldout = heldout_split(ds.labels, args.fraction, args.seed)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("heldout", heldout)):
        save_voxel_npz(out / f"{name}.npz", ds.read(rows), ds.labels[rows], ds.class_names)
    record = {"data": str(path), "sha256": file_sha256(path), "fraction": args.fraction, "seed": args.seed,
              "n_train": len(train), "n_heldout": len(heldout),
              "heldout_per_class": {c: int((ds.labels[heldout] == i).sum()) for i, c in enumerate(ds.class_names)},
              "heldout_rows": heldout.tolist()}
    with atomic_path(out / "split.json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in record.items() if k != "heldout_rows"}))
    return 0
