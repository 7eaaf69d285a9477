"""gan3d arithmetic: shape arithmetic a - b + c in z."""

from __future__ import annotations

import argparse
import json

import numpy as np

from gan_core.commands._common import (
    MESH_FORMAT_CHOICES,
    add_model_args, add_size_arg, check_size, load_model_from_args, output_dir, output_file, write_shapes,
)
from gan_core.commands.interpolate import resolve_z

HELP = ("shape arithmetic wa*a - wb*b + wc*c in latent space, brought back to the prior's typical norm; npz of the "
        "operands and the result")
EXAMPLE = "gan3d arithmetic --a 3 --b 5 --c runs/proj.npz --out result.npz --meshes result/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    for slot in "abc":
        p.add_argument(f"--{slot}", required=True, help=f"operand {slot}: a seed, or FILE.npz[:INDEX] holding z")
    p.add_argument("--weights", default="1,1,1", help="weights wa,wb,wc")
    p.add_argument("--out", required=True, help="output .npz: voxels/z rows a, b, c, result")
    p.add_argument("--level", type=float, default=0.5, help="occupancy threshold")
    p.add_argument("--meshes", default=None, help="also write meshes into this directory")
    p.add_argument("--format", default="stl", choices=MESH_FORMAT_CHOICES, help="mesh format")
    add_size_arg(p)
    p.add_argument("--raw-sum", action="store_true",
                   help="keep the raw sum (default: rescale the result to the prior's typical norm about its centre, "
                        "sqrt(z_dim) for N(0, 1): the raw sum of three samples is about 1.7x as long as one and "
                        "tends to come out as a block)")


def run(args: argparse.Namespace) -> int:
    from gan_core.errors import BadInputError
    from gan_core.latent import arithmetic

    try:
        w = tuple(float(x) for x in args.weights.split(","))
    except ValueError:
        w = ()
    if len(w) != 3 or not all(np.isfinite(w)):
        raise BadInputError(f"--weights must be three numbers like 1,1,1, got {args.weights!r}")
    out = output_file(args.out, "--out", [".npz"])
    output_dir(args.meshes, "--meshes")
    check_size(args.size_mm)
    model = load_model_from_args(args)
    za, zb, zc = (resolve_z(getattr(args, s), model, f"--{s}") for s in "abc")
    raw = arithmetic(za, zb, zc, w, prior=None)  # type: ignore[arg-type]
    zr = raw if args.raw_sum else arithmetic(za, zb, zc, w, prior=model.profile.z_prior)  # type: ignore[arg-type]
    zs = np.stack([za, zb, zc, zr])
    occ = model.generate(zs, use_cache=False)
    write_shapes(out, occ, zs, level=args.level, meshes=args.meshes, fmt=args.format, size_mm=args.size_mm,
                 roles=np.array(["a", "b", "c", "result"]))
    print(json.dumps({"out": args.out, "weights": w, "rescaled": not args.raw_sum,
                      "raw_norm": round(float(np.linalg.norm(raw)), 3), "norm": round(float(np.linalg.norm(zr)), 3),
                      "result_occupancy": float((occ[3] > args.level).mean())}))
    return 0
