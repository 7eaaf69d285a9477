"""gan3d interpolate: a latent path between two seeds (or saved z vectors)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from gan_core.commands._common import (
    MESH_FORMAT_CHOICES,
    add_model_args, add_size_arg, check_output_size, check_size, load_model_from_args, output_dir, output_file,
    write_shapes,
)

HELP = "interpolate between two shapes in z (lerp or slerp); npz of the path, optionally meshes"
EXAMPLE = "gan3d interpolate --a 0 --b 1 --steps 9 --mode slerp --out path.npz --meshes path/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--a", required=True, help="start: a seed, or FILE.npz[:INDEX] holding z")
    p.add_argument("--b", required=True, help="end: a seed, or FILE.npz[:INDEX] holding z")
    p.add_argument("--steps", type=int, default=9, help="number of shapes on the path, ends included")
    p.add_argument("--mode", default="slerp", choices=["lerp", "slerp"], help="interpolation")
    p.add_argument("--out", required=True, help="output .npz (voxels, z, t)")
    p.add_argument("--level", type=float, default=0.5, help="occupancy threshold")
    p.add_argument("--meshes", default=None, help="also write one mesh per step into this directory")
    p.add_argument("--format", default="stl", choices=MESH_FORMAT_CHOICES, help="mesh format")
    add_size_arg(p)


def resolve_z(spec: str, model, flag: str) -> np.ndarray:
    """A seed ("7") -> that seed's first z; "file.npz[:i]" -> row i of its z array (default 0)."""
    from gan_core.errors import BadFileError, BadInputError
    from gan_core.files import open_npz
    from gan_core.latent import check_z

    if re.fullmatch(r"-?[0-9]+", spec.strip()):  # not str.isdigit: '²' and '--5' would pass it, then crash int()
        return model.sample_z(1, int(spec))[0]
    path, _, idx = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    p = Path(path)
    if not p.is_file():
        raise BadFileError(f"{flag} {path}: no such file (give a seed or FILE.npz[:INDEX])")
    try:
        with open_npz(p, hint="keep only the z vectors you need in it") as f:
            if "z" not in f.files:
                raise BadFileError(f"{flag} {path}: npz has no 'z' array")
            zs = f["z"]
    except BadFileError:
        raise
    except Exception as e:
        reason = str(e).splitlines()[0][:120] if str(e) else ""
        raise BadFileError(f"{flag} {path}: not a readable npz ({type(e).__name__}: {reason})") from None
    zs = check_z(zs, model.profile.z_dim, what=f"{flag} z")
    try:
        i = int(idx) if idx.strip() else 0
    except ValueError:
        raise BadInputError(f"{flag}: index {idx!r} is not an integer (use FILE.npz:INDEX)") from None
    if not 0 <= i < len(zs):
        raise BadInputError(f"{flag}: index {i} out of range (file holds {len(zs)} z vectors)")
    return zs[i]


def run(args: argparse.Namespace) -> int:
    from gan_core.errors import BadInputError
    from gan_core.latent import path

    if args.steps < 2:
        raise BadInputError(f"--steps must be >= 2, got {args.steps}")
    out = output_file(args.out, "--out", [".npz"])
    output_dir(args.meshes, "--meshes")
    check_size(args.size_mm)
    model = load_model_from_args(args)
    check_output_size(model, args.steps, "--steps", hint="lower --steps")
    za, zb = resolve_z(args.a, model, "--a"), resolve_z(args.b, model, "--b")
    zs = path(za, zb, args.steps, args.mode)
    occ = model.generate(zs, use_cache=False)
    write_shapes(out, occ, zs, level=args.level, meshes=args.meshes, fmt=args.format, size_mm=args.size_mm,
                 t=np.linspace(0, 1, args.steps).astype(np.float32))
    print(json.dumps({"out": args.out, "steps": args.steps, "mode": args.mode, "model": model.name}))
    return 0
