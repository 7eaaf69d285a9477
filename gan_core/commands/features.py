"""gan3d features: build a feature bank (discriminator features of a voxel set) for retrieval."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gan_core.commands._common import (
    add_model_args, class_list, existing_file, load_model_from_args, progress_callback,
)

HELP = "compute discriminator features of a voxel set into a feature bank (HDF5) for nearest-neighbour retrieval"
EXAMPLE = "gan3d features --checkpoint run/latest.pt --data train.npz --classes chair,sofa --out bank.h5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--data", required=True, help="voxel set (.npz or .h5 with voxels, labels, classes)")
    p.add_argument("--classes", default=None, help="comma-separated class names to keep (default: all)")
    p.add_argument("--limit", type=int, default=None, help="keep at most this many shapes")
    p.add_argument("--out", required=True, help="output bank (.h5)")
    p.add_argument("--batch-size", type=int, default=64, help="shapes per forward pass")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="stored feature type")
    p.add_argument("--components", type=int, default=256,
                   help="PCA components per feature kind (0 = keep the full features: a 16384-d bank of 4k shapes "
                        "is 160 MB and 2 s a query)")
    p.add_argument("--sketch", type=int, default=512,
                   help="sketch dimensions of the PCA residual, which keep distances unbiased (0 = plain PCA)")


def run(args: argparse.Namespace) -> int:
    from gan_core.data import VoxelDataset
    from gan_core.errors import BadInputError
    from gan_core.features import build_bank

    data = existing_file(args.data, "--data")
    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise BadInputError(f"--out must end in .h5, got {out.name}")
    if args.batch_size < 1:
        raise BadInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.components < 0:
        raise BadInputError(f"--components must be >= 0, got {args.components}")
    if args.sketch < 0:
        raise BadInputError(f"--sketch must be >= 0, got {args.sketch}")
    ds = VoxelDataset(data, classes=class_list(args.classes), limit=args.limit)
    model = load_model_from_args(args)
    t0 = time.perf_counter()
    report = progress_callback("features", "shape")
    try:
        bank = build_bank(model, ds, batch_size=args.batch_size, progress=report, dtype=args.dtype,
                          n_components=args.components or None, n_sketch=args.sketch)
    finally:
        report.close()
    seconds = time.perf_counter() - t0
    bank.save(out)
    print(json.dumps({
        "out": str(out), "n": len(bank), "model": model.name, "profile": model.profile.name,
        "weights_hash": bank.weights_hash, "feature_dim": bank.n_features_,
        "stored_dim": {k: a.shape[1] for k, a in bank.features_.items()}, "dtype": args.dtype,
        "bytes": out.stat().st_size, "seconds": round(seconds, 2), "shapes_per_s": round(len(bank) / seconds, 1),
    }))
    return 0
