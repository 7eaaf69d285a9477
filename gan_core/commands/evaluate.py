"""gan3d evaluate: generation metrics of sampled shapes against reference shapes (COV, MMD, 1-NNA), and the
metrics that see what a person sees (gan_core.shape_metrics: FCD on the judge's features, the judge's class
histogram, fragmented and tiny rates), each beside its real-vs-real value when --real is given.

The protocol: the reference is the held-out part (gan3d split); the real-vs-real value compares as many real
shapes the GAN trained on (--real, e.g. the train part) as there are samples with the same reference."""

from __future__ import annotations

import argparse
import json

import numpy as np

from gan_core.commands._common import add_device_args, existing_file, progress

HELP = ("compare generated shapes with reference shapes: coverage, minimum matching distance, 1-NNA, FCD (Frechet "
        "distance of a shape classifier's features), class histogram, fragmented and tiny rates")
EXAMPLE = ("gan3d evaluate --samples samples.npz --reference runs/split/heldout.npz --real runs/split/train.npz "
           "--max-n 800 --json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", required=True, help="generated shapes (.npz or .h5 with a voxels array)")
    p.add_argument("--reference", required=True,
                   help="reference shapes (.npz or .h5): the held-out part (gan3d split's heldout.npz)")
    p.add_argument("--max-n", type=int, default=500, help="random subset of at most this many shapes per set")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsets and of the surface points")
    p.add_argument("--resolution", type=int, default=None, help="compare at this size (default: the smaller one)")
    p.add_argument("--chamfer", action="store_true", help="also use the Chamfer distance of surface points (slow)")
    p.add_argument("--points", type=int, default=1024, help="surface points per shape for --chamfer")
    p.add_argument("--real", default=None,
                   help="real shapes the model trained on (e.g. gan3d split's train.npz): as many of them as there "
                        "are samples, scored against the same reference, give every metric's real-vs-real value")
    p.add_argument("--judge", default=None,
                   help="the shape classifier for FCD and the class histogram (default: the bundled judge, "
                        "assets/judge_modelnet10.pt, trained on the train part of ModelNet10 only)")
    p.add_argument("--no-judge", action="store_true", help="skip FCD and the class histogram")
    add_device_args(p)
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line (last line)")


def read_subset(ds, n: int, rng: np.random.Generator) -> np.ndarray:
    """All of ``ds`` if it holds at most ``n`` shapes, else a random ``n`` of them (in file order)."""
    pick = np.arange(len(ds)) if len(ds) <= n else np.sort(rng.choice(len(ds), n, replace=False))
    return ds.read(pick)


def run(args: argparse.Namespace) -> int:
    from gan_core.data import VoxelDataset
    from gan_core.errors import BadInputError
    from gan_core.evaluate import generation_metrics
    from gan_core.shape_metrics import shape_metrics

    s_path = existing_file(args.samples, "--samples")
    r_path = existing_file(args.reference, "--reference")
    if args.max_n < 2:
        raise BadInputError(f"--max-n must be >= 2, got {args.max_n}")
    if args.points < 16:
        raise BadInputError(f"--points must be >= 16, got {args.points}")
    if args.resolution is not None and args.resolution not in (8, 16, 32, 64, 128):
        raise BadInputError(f"--resolution must be 8, 16, 32, 64 or 128, got {args.resolution}")
    if args.judge and args.no_judge:
        raise BadInputError("--judge and --no-judge exclude each other")
    real_path = existing_file(args.real, "--real") if args.real else None
    judge = None if args.no_judge else _judge(args)
    rng = np.random.default_rng(args.seed)
    samples = read_subset(VoxelDataset(s_path), args.max_n, rng)
    reference = read_subset(VoxelDataset(r_path), args.max_n, rng)
    # Read last, so the other two subsets are the same as without --real.
    real = read_subset(VoxelDataset(real_path), len(samples), rng) if real_path else None
    bar = progress(range(1), total=None, desc="chamfer pairs", unit="pair") if args.chamfer else None

    def step(done: int, total: int) -> None:
        bar.total = total  # type: ignore[union-attr]
        bar.n = done  # type: ignore[union-attr]
        bar.refresh()  # type: ignore[union-attr]

    m = generation_metrics(samples, reference, resolution=args.resolution, chamfer=args.chamfer,
                           n_points=args.points, seed=args.seed, progress=step if bar is not None else None)
    mr = None
    if real is not None:
        mr = generation_metrics(real, reference, resolution=m["resolution"], chamfer=args.chamfer,
                                n_points=args.points, seed=args.seed, progress=step if bar is not None else None)
    if bar is not None:
        bar.close()
    res = m["resolution"]
    sm = shape_metrics(_at(samples, res), _at(reference, res), real=None if real is None else _at(real, res),
                       judge=judge)
    vs = f"; real-vs-real: {len(real)} shapes of {real_path.name}" if real is not None and real_path else ""
    print(f"{m['n_samples']} samples ({s_path.name}) vs {m['n_reference']} reference shapes ({r_path.name}) "
          f"at {res}^3{vs}")
    print(f"{'distance':<15} {'COV':>7} {'MMD':>9} {'1-NNA':>7}")
    for name in ("iou", "chamfer"):
        for who, mm in (("", m), (" real", mr)):
            if mm is not None and name in mm:
                d = mm[name]
                label = ("1-IoU" if name == "iou" else "Chamfer") + who
                print(f"{label:<15} {d['cov']:>7.3f} {d['mmd']:>9.5f} {d['1nna']:>7.3f}")
    print(f"empty samples {m['empty_rate']:.3f}, full samples {m['full_rate']:.3f}; mean occupancy "
          f"samples {m['mean_occupancy_samples']:.4f}, reference {m['mean_occupancy_reference']:.4f}")
    print("(COV: higher is better; MMD: lower; 1-NNA: 0.5 is ideal, 1.0 = told apart, << 0.5 = copies)")
    print()
    _print_shape_metrics(sm, judge, real is not None)
    if args.json:
        extra = {"real": str(real_path), "n_real": len(real), "real_vs_reference": mr} if real is not None else {}
        judge_info = {"judge": str(judge.path) if judge is not None and judge.path else None}
        print(json.dumps({"samples": str(s_path), "reference": str(r_path), **m, **extra, **judge_info,
                          "shape_metrics": sm}))
    return 0


def _judge(args: argparse.Namespace):  # -> JudgeClassifier | None
    """--judge, else the bundled judge; None (with a note on stderr) when none is installed."""
    import sys

    from gan_core.runtime import bundled_judge, load_judge

    if args.judge:
        return load_judge(existing_file(args.judge, "--judge"), device=args.device)
    path = bundled_judge()
    if path is None:
        print("note: no bundled judge installed: FCD and the class histogram are skipped (--judge PATH)",
              file=sys.stderr)
        return None
    return load_judge(path, device=args.device)


def _at(voxels: np.ndarray, resolution: int) -> np.ndarray:
    """Grids at the resolution the metrics compare at (the fragmented and tiny rates depend on it)."""
    from gan_core.data.resample import resample

    return voxels if voxels.shape[1] == resolution else resample(voxels, resolution)


def _print_shape_metrics(sm: dict, judge, with_real: bool) -> None:  # type: ignore[no-untyped-def]
    """The table of gan_core.shape_metrics: samples, real-vs-real (with --real), the reference's own values."""
    from gan_core.shape_metrics import FRAGMENT_SHARE, TINY_VOXELS_32

    cols = ["samples", *(["real"] if with_real else []), "reference"]
    print(f"{'shape metric':<22}" + "".join(f"{c:>11}" for c in cols))

    def row(label: str, values: dict, fmt: str) -> None:
        print(f"{label:<22}" + "".join(f"{format(values[c], fmt):>11}" if c in values else f"{'':>11}" for c in cols))

    if "fcd" in sm:
        row("FCD", sm["fcd"], ".3f")
    row("fragmented rate", sm["fragmented_rate"], ".3f")
    row("tiny rate", sm["tiny_rate"], ".3f")
    if "class_tv" in sm:
        row("class mix distance", sm["class_tv"], ".3f")
    legend = [f"fragmented: largest connected part < {FRAGMENT_SHARE:.0%} of the voxels",
              f"tiny: < {TINY_VOXELS_32} voxels at 32^3 (scaled by volume at other sizes)"]
    if "fcd" in sm:
        legend = ["FCD: Frechet distance between Gaussians fitted to the judge's features of a set and of the "
                  "reference, FID's voxel analogue, lower is better, real-vs-real is the floor", *legend,
                  "class mix distance: total variation between the judge's class histograms of a set and of "
                  "the reference"]
    print(f"({'; '.join(legend)})")
    if "class_histogram" in sm:
        h = sm["class_histogram"]
        name = judge.path.name if judge is not None and judge.path else "in memory"
        print()
        print(f"class histogram under the judge ({name}): share of shapes per predicted class")
        print(f"{'class':<22}" + "".join(f"{c:>11}" for c in cols))
        for i, c in enumerate(h["classes"]):
            print(f"{c:<22}" + "".join(f"{h[k][i]:>11.3f}" for k in cols))
