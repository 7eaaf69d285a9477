"""gan3d retrieve: nearest bank shapes of given voxel grids, in discriminator-feature space."""

from __future__ import annotations

import argparse
import json

import numpy as np

from gan_core.commands._common import add_model_args, existing_file, load_model_from_args, parse_int_list

HELP = "find the nearest shapes of a feature bank for voxel grids (e.g. generated samples vs training shapes)"
EXAMPLE = "gan3d retrieve --bank bank.h5 --checkpoint run/latest.pt --voxels samples.npz --index 0-3 -k 5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bank", required=True, help="feature bank (.h5) from gan3d features")
    add_model_args(p)
    p.add_argument("--voxels", required=True, help="query grids (.npz or .h5 with a voxels array)")
    p.add_argument("--index", default=None, help="rows of --voxels to query, like '0,3-5' (default: all)")
    p.add_argument("-k", "--k", type=int, default=5, help="neighbours per query")
    p.add_argument("--kind", default="last", choices=["last", "paper"],
                   help="feature set: last = D's last conv layer (the paper's retrieval feature), paper = pooled 2-4")
    p.add_argument("--metric", default="cosine", choices=["cosine", "euclidean"], help="distance")
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line (last line)")


def run(args: argparse.Namespace) -> int:
    from gan_core.data import VoxelDataset
    from gan_core.errors import BadInputError
    from gan_core.features import FeatureBank

    bank_path = existing_file(args.bank, "--bank")
    vox_path = existing_file(args.voxels, "--voxels")
    if args.k < 1:
        raise BadInputError(f"-k must be >= 1, got {args.k}")
    bank = FeatureBank.load(bank_path)
    if args.k > len(bank):
        raise BadInputError(f"-k {args.k} exceeds the bank size {len(bank)}")
    ds = VoxelDataset(vox_path)
    rows = parse_int_list(args.index, "--index") if args.index else list(range(len(ds)))
    bad = [r for r in rows if not 0 <= r < len(ds)]
    if bad:
        raise BadInputError(f"--index {bad[0]} is out of range: {vox_path.name} has {len(ds)} shapes")
    model = load_model_from_args(args)
    bank.check_model(model)
    dist, idx = bank.query(voxels=ds.read(np.asarray(rows)), model=model, k=args.k, kind=args.kind,
                           metric=args.metric)
    queries = []
    for q, row in enumerate(rows):
        print(f"query {vox_path.name}[{row}]  ({args.kind} features, {args.metric} distance)")
        print(f"  {'rank':>4}  {'bank index':>10}  {'class':<16}  {'distance':>9}")
        neighbours = []
        for rank, (j, d) in enumerate(zip(idx[q], dist[q]), 1):
            name = bank.label_name(j)
            print(f"  {rank:>4}  {j:>10}  {name:<16}  {d:>9.4f}")
            neighbours.append({"rank": rank, "bank_index": int(j), "source_index": int(bank.source_index_[j]),
                               "class": name, "distance": float(d)})
        queries.append({"row": row, "neighbours": neighbours})
    if args.json:
        print(json.dumps({"bank": str(bank_path), "data": bank.data_name, "kind": args.kind, "metric": args.metric,
                          "k": args.k, "model": model.name, "queries": queries}))
    return 0
