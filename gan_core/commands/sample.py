"""gan3d sample: generate shapes from random z."""

from __future__ import annotations

import argparse
import json

import numpy as np

from gan_core.commands._common import (
    MESH_FORMAT_CHOICES,
    add_model_args, add_size_arg, check_output_size, check_size, load_model_from_args, output_dir, output_file,
    progress, progress_callback, write_shapes,
)

HELP = "generate N shapes from seeded random z (npz with voxels and z; optionally meshes)"
EXAMPLE = "gan3d sample --n 16 --seed 0 --out samples.npz --meshes samples/ --format stl"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--n", type=int, default=16, help="number of shapes")
    p.add_argument("--seed", type=int, default=0, help="random seed for z")
    p.add_argument("--out", required=True, help="output .npz (arrays voxels (N,R,R,R) uint8, z (N,z_dim))")
    p.add_argument("--level", type=float, default=0.5, help="occupancy threshold")
    p.add_argument("--meshes", default=None, help="also write one mesh per shape into this directory")
    p.add_argument("--format", default="stl", choices=MESH_FORMAT_CHOICES, help="mesh format for --meshes")
    p.add_argument("--probabilities", action="store_true", help="also store the raw occupancy (float16)")
    add_size_arg(p)
    p.add_argument("--grid", default=None, help="also render the shapes into this PNG (a contact sheet)")


def run(args: argparse.Namespace) -> int:
    from gan_core.errors import BadInputError

    if args.n < 1:
        raise BadInputError(f"--n must be >= 1, got {args.n}")
    if not 0 < args.level < 1:
        raise BadInputError(f"--level must be in (0, 1), got {args.level}")
    out = output_file(args.out, "--out", [".npz"])  # every output checked before the model loads
    output_dir(args.meshes, "--meshes")
    output_file(args.grid, "--grid", [".png"])
    check_size(args.size_mm)
    model = load_model_from_args(args)
    check_output_size(model, args.n, "--n", probabilities=args.probabilities,
                      hint="lower --n (runs with other --seed values give more shapes)")
    z = model.sample_z(args.n, args.seed)
    occ = np.empty((args.n,) + (model.resolution,) * 3, np.float32)  # filled in place: no second copy
    for i in progress(range(0, args.n, 32), total=(args.n + 31) // 32, desc="generating", unit="batch"):
        occ[i:i + 32] = model.generate(z[i:i + 32], use_cache=False)
    write_shapes(out, occ, z, level=args.level, meshes=args.meshes, fmt=args.format,
                 probabilities=args.probabilities, model=model, size_mm=args.size_mm)
    if args.grid:
        from gan_core.preview import render_grid

        render_grid(occ, args.grid, level=args.level, titles=[f"seed {args.seed} #{i}" for i in range(args.n)],
                    progress=progress_callback("rendering", "shape"))
    print(json.dumps({"out": args.out, "n": args.n, "model": model.name, "resolution": model.resolution,
                      "mean_occupancy": float((occ > args.level).mean())}))
    return 0
