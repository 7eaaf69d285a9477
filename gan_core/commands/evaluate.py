"""gan3d evaluate: generation metrics of sampled shapes against reference shapes (COV, MMD, 1-NNA)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from gan_core.commands._common import existing_file, progress

HELP = "compare generated shapes with reference shapes: coverage, minimum matching distance, 1-NNA, occupancy"
EXAMPLE = "gan3d evaluate --samples samples.npz --reference test.npz --max-n 500 --chamfer --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", required=True, help="generated shapes (.npz or .h5 with a voxels array)")
    p.add_argument("--reference", required=True, help="reference shapes (.npz or .h5), e.g. held-out data")
    p.add_argument("--max-n", type=int, default=500, help="random subset of at most this many shapes per set")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsets and of the surface points")
    p.add_argument("--resolution", type=int, default=None, help="compare at this size (default: the smaller one)")
    p.add_argument("--chamfer", action="store_true", help="also use the Chamfer distance of surface points (slow)")
    p.add_argument("--points", type=int, default=1024, help="surface points per shape for --chamfer")
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line (last line)")


def read_subset(ds, n: int, rng: np.random.Generator) -> np.ndarray:
    """All of ``ds`` if it holds at most ``n`` shapes, else a random ``n`` of them (in file order)."""
    pick = np.arange(len(ds)) if len(ds) <= n else np.sort(rng.choice(len(ds), n, replace=False))
    return ds.read(pick)


def run(args: argparse.Namespace) -> int:
    from gan_core.data import VoxelDataset
    from gan_core.errors import BadInputError
    from gan_core.evaluate import generation_metrics

    s_path = existing_file(args.samples, "--samples")
    r_path = existing_file(args.reference, "--reference")
    if args.max_n < 2:
        raise BadInputError(f"--max-n must be >= 2, got {args.max_n}")
    if args.points < 16:
        raise BadInputError(f"--points must be >= 16, got {args.points}")
    if args.resolution is not None and args.resolution not in (8, 16, 32, 64, 128):
        raise BadInputError(f"--resolution must be 8, 16, 32, 64 or 128, got {args.resolution}")
    rng = np.random.default_rng(args.seed)
    samples = read_subset(VoxelDataset(s_path), args.max_n, rng)
    reference = read_subset(VoxelDataset(r_path), args.max_n, rng)
    bar = progress(range(1), total=None, desc="chamfer pairs", unit="pair") if args.chamfer else None

    def step(done: int, total: int) -> None:
        bar.total = total  # type: ignore[union-attr]
        bar.n = done  # type: ignore[union-attr]
        bar.refresh()  # type: ignore[union-attr]

    m = generation_metrics(samples, reference, resolution=args.resolution, chamfer=args.chamfer,
                           n_points=args.points, seed=args.seed, progress=step if bar is not None else None)
    if bar is not None:
        bar.close()
    print(f"{m['n_samples']} samples ({s_path.name}) vs {m['n_reference']} reference shapes ({r_path.name}) "
          f"at {m['resolution']}^3")
    print(f"{'distance':<10} {'COV':>7} {'MMD':>9} {'1-NNA':>7}")
    for name in ("iou", "chamfer"):
        if name in m:
            d = m[name]
            print(f"{'1-IoU' if name == 'iou' else 'Chamfer':<10} {d['cov']:>7.3f} {d['mmd']:>9.5f} {d['1nna']:>7.3f}")
    print(f"empty samples {m['empty_rate']:.3f}, full samples {m['full_rate']:.3f}; mean occupancy "
          f"samples {m['mean_occupancy_samples']:.4f}, reference {m['mean_occupancy_reference']:.4f}")
    print("(COV: higher is better; MMD: lower; 1-NNA: 0.5 is ideal, 1.0 = told apart, << 0.5 = copies)")
    if args.json:
        print(json.dumps({"samples": str(s_path), "reference": str(r_path), **m}))
    return 0
