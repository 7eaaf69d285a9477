"""gan3d project: put a user's own shape into the latent space."""

from __future__ import annotations

import argparse
import json

import numpy as np

from gan_core.commands._common import (
    add_model_args, existing_file, load_model_from_args, output_file, progress_callback, write_shapes,
)

HELP = "find z whose generated shape matches a voxel file (so it can be interpolated and combined)"
EXAMPLE = "gan3d project --voxels my_chair.binvox --out my_chair_z.npz && gan3d interpolate --a my_chair_z.npz --b 3 --out p.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--voxels", required=True, help="a voxel or mesh file any importer reads, or a set with --index")
    p.add_argument("--index", type=int, default=None, help="which shape of an .npz/.h5 set")
    p.add_argument("--steps", type=int, default=200, help="optimisation steps")
    p.add_argument("--restarts", type=int, default=4, help="random starts, optimised together")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts")
    p.add_argument("--out", required=True, help="output .npz with z (1, z_dim) and the generated voxels")


def run(args: argparse.Namespace) -> int:
    from gan_core.data.importers import load_voxels
    from gan_core.errors import BadInputError

    if args.steps < 1 or args.restarts < 1:
        raise BadInputError("--steps and --restarts must be >= 1")
    src = existing_file(args.voxels, "--voxels")
    out = output_file(args.out, "--out", [".npz"])  # before the model loads and the minutes of projection
    model = load_model_from_args(args)
    target = load_voxels(src, resolution=model.resolution, index=args.index)
    z, iou = model.project(target, steps=args.steps, restarts=args.restarts, seed=args.seed,
                           progress=progress_callback("projecting", "step"))
    occ = model.generate(z[None], use_cache=False)
    write_shapes(out, occ, z[None], target=target[None].astype(np.uint8), iou=np.float32(iou))
    print(json.dumps({"out": args.out, "iou": round(iou, 4), "model": model.name}))
    return 0
