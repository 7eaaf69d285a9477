"""gan3d retrieve: nearest bank shapes of given voxel grids, in discriminator-feature space."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gan_core.commands._common import (
    BANK_HELP, add_model_args, bank_path, existing_file, load_model_from_args, output_file, parse_int_list,
    progress_callback,
)

HELP = "find the nearest shapes of a feature bank for voxel grids (e.g. generated samples vs training shapes)"
EXAMPLE = "gan3d retrieve --bank fast32_modelnet10 --voxels samples.npz --index 0-3 -k 5 --png neighbours.png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bank", default=None,
                   help=f"{BANK_HELP}; a bundled name also picks that model unless --checkpoint is given "
                        "(default: the bundled model's bank)")
    add_model_args(p)
    p.add_argument("--voxels", required=True, help="query grids (.npz or .h5 with a voxels array)")
    p.add_argument("--index", default=None, help="rows of --voxels to query, like '0,3-5' (default: all)")
    p.add_argument("-k", "--k", type=int, default=5, help="neighbours per query")
    p.add_argument("--kind", default="last", choices=["last", "paper"],
                   help="feature set: last = D's last conv layer (the paper's retrieval feature), paper = pooled 2-4")
    p.add_argument("--metric", default="cosine", choices=["cosine", "euclidean"], help="distance")
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line (last line)")
    p.add_argument("--png", default=None,
                   help="also render each query beside its neighbours into this PNG (one row per query)")


def _bank_and_model(args: argparse.Namespace) -> tuple[Path, str | None]:
    """The bank file and the checkpoint to load: --bank a file or a bundled model's name (that model, unless
    --checkpoint says otherwise); neither: the bundled default's bank and model."""
    from gan_core.errors import BadInputError
    from gan_core.runtime import find_model

    if args.bank is None:
        if args.checkpoint:
            raise BadInputError("--bank is needed with --checkpoint (build one with gan3d features)")
        return bank_path(find_model(need="bank").name), None
    path = bank_path(args.bank)
    named = not Path(args.bank).exists()  # bank_path found it, so it is a bundled model's name
    return path, args.checkpoint or (args.bank if named else None)
def run(args: argparse.Namespace) -> int:
    from gan_core.data import VoxelDataset
    from gan_core.errors import BadInputError
    from gan_core.features import FeatureBank

    bank_file, checkpoint = _bank_and_model(args)
    vox_path = existing_file(args.voxels, "--voxels")
    if args.k < 1:
        raise BadInputError(f"-k must be >= 1, got {args.k}")
    png = output_file(args.png, "--png", [".png"])
    bank = FeatureBank.load(bank_file)
    if args.k > len(bank):
        raise BadInputError(f"-k {args.k} exceeds the bank size {len(bank)}")
    if png is not None and bank.thumbnails_ is None:
        raise BadInputError(f"--png: {bank_file.name} holds no thumbnails of its shapes to draw")
    ds = VoxelDataset(vox_path)
    rows = parse_int_list(args.index, "--index") if args.index else list(range(len(ds)))
    bad = [r for r in rows if not 0 <= r < len(ds)]
    if bad:
        raise BadInputError(f"--index {bad[0]} is out of range: {vox_path.name} has {len(ds)} shapes")
    args.checkpoint = checkpoint
    model = load_model_from_args(args)
    bank.check_model(model)
    queries_vox = ds.read(np.asarray(rows))
    dist, idx = bank.query(voxels=queries_vox, model=model, k=args.k, kind=args.kind, metric=args.metric)
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
    if png is not None:
        _render(png, queries_vox, rows, vox_path.name, bank, idx, dist)
    if args.json:
        print(json.dumps({"bank": str(bank_file), "data": bank.data_name, "kind": args.kind, "metric": args.metric,
                          "k": args.k, "model": model.name, "queries": queries}))
    return 0


def _render(path: Path, queries: np.ndarray, rows: list[int], name: str, bank, idx: np.ndarray,
            dist: np.ndarray) -> None:
    """One row per query: the query, then its neighbours nearest first, each titled with class and distance."""
    from gan_core.preview import render_grid

    grids, titles = [], []
    for q, row in enumerate(rows):
        grids.append(queries[q])
        titles.append(f"query {name}[{row}]")
        for j, d in zip(idx[q], dist[q]):
            grids.append(bank.thumbnail(int(j)))
            titles.append(f"{bank.label_name(int(j))} #{int(j)}  d {float(d):.3f}")
    render_grid(grids, path, titles=titles, ncols=idx.shape[1] + 1, cell=200,
                progress=progress_callback("rendering", "shape"))
