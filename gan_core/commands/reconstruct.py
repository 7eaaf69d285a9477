"""gan3d reconstruct: one image -> a 3D shape, by the 3D-VAE-GAN's encoder and generator, with a confidence.

The confidence (gan_core.recon_confidence) is printed in the JSON line; below 0.5, or when the picture is blank or
noise or nothing was reconstructed, a warning line goes to stderr first: a portrait or a blank picture does not
come back as a silent furniture slab."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gan_core.commands._common import (
    add_device_args, add_precision_arg, add_size_arg, check_size, existing_file, output_file,
)
from gan_core.errors import BadFileError, BadInputError

HELP = "reconstruct a 3D shape from one image (3D-VAE-GAN): npz voxels + z, or a mesh (.stl/.obj/.ply)"
EXAMPLE = "gan3d reconstruct --checkpoint runs/vae/latest.pt --image chair.jpg --out chair.stl"

OUT_SUFFIXES = (".npz", ".stl", ".obj", ".ply")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None,
                   help="VAE-GAN checkpoint or bundled model name; a bundled per-category GAN (e.g. fast32_chair) "
                        "uses the encoder its registry entry names (default: the bundled model with an encoder)")
    p.add_argument("--image", required=True, help="input image (PNG, JPEG, ...; any size; plain backgrounds "
                   "are cropped to the object)")
    p.add_argument("--out", required=True, help="output .npz (voxels (R,R,R) uint8, z, probabilities) or mesh "
                   ".stl / .obj / .ply")
    p.add_argument("--level", type=float, default=0.5, help="occupancy threshold / iso-level")
    p.add_argument("--smooth", type=int, default=0, help="Taubin smoothing passes for mesh output")
    p.add_argument("--all-components", action="store_true",
                   help="keep every connected component in mesh output (default: the largest, as in the paper)")
    p.add_argument("--png", default=None, help="also render the reconstruction into this PNG")
    add_size_arg(p)
    add_device_args(p)
    add_precision_arg(p)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's choice; 1 is faster on a busy machine)")


def _checkpoint_path(arg: str | None) -> str | Path:
    from gan_core.runtime import find_model, named_encoder

    if arg is None:
        return find_model(need="encoder").checkpoint
    if Path(arg).exists():
        return arg
    if arg.endswith(".pt"):
        raise BadFileError(f"--checkpoint {arg}: no such file")
    entry = find_model(arg)
    return (named_encoder(entry.name) or entry).checkpoint  # a bundled GAN with its own encoder: that one


def run(args: argparse.Namespace) -> int:
    out = output_file(args.out, "--out", OUT_SUFFIXES)
    output_file(args.png, "--png", [".png"])
    if check_size(args.size_mm) is not None and out.suffix.lower() == ".npz":
        raise BadInputError("--size-mm applies to mesh outputs (.stl, .obj, .ply) only")
    if not 0 < args.level < 1:
        raise BadInputError(f"--level must be in (0, 1), got {args.level}")
    if args.smooth < 0:
        raise BadInputError(f"--smooth must be >= 0, got {args.smooth}")
    existing_file(args.image, "--image")
    import sys

    from gan_core.errors import Gan3dError
    from gan_core.runtime import load_model

    if out.suffix.lower() != ".npz":
        import pyvista  # noqa: F401  (imported here so the timings below are the work, not module loading)
        import skimage.measure  # noqa: F401

        from gan_core.mesh import export_mesh, voxels_to_mesh
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()  # after the imports: the timings below are the work itself

    ckpt = _checkpoint_path(args.checkpoint)
    model = load_model(ckpt, device=args.device, precision=args.precision)
    if model.encoder is None:
        raise Gan3dError(f"--checkpoint {ckpt}: has no image encoder (a 3D-GAN checkpoint?); "
                         "train one with `gan3d train-vae`")
    t_load = time.perf_counter()
    voxels, z, confidence = model.reconstruct_image(args.image, level=args.level)  # (R, R, R), (z_dim,)
    t_rec = time.perf_counter()
    if confidence.low:
        print(f"warning: {confidence.label()}" + "".join(f"; {w}" for w in confidence.warnings[1:]), file=sys.stderr)
    occupied = voxels > args.level
    if out.suffix.lower() == ".npz":
        import numpy as np

        from gan_core.files import atomic_path

        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, voxels=occupied.astype(np.uint8), z=z.astype(np.float32),
                                probabilities=voxels.astype(np.float16))
    else:
        if not occupied.any():
            why = [w for w in confidence.warnings if not w.startswith("nothing was reconstructed")]
            raise BadInputError(f"the reconstruction is empty at --level {args.level}"
                                + (f" ({why[0]})" if why else "; try a lower level"))
        mesh = voxels_to_mesh(voxels, level=args.level, largest_component=not args.all_components,
                              smooth_iterations=args.smooth)
        export_mesh(mesh, out, size=args.size_mm)
    t_write = time.perf_counter()
    if args.png:
        from gan_core.preview import render_grid

        render_grid([voxels], args.png, level=args.level, titles=[Path(args.image).name], cell=320)
    print(json.dumps({"out": str(out), "model": model.name, "resolution": model.resolution,
                      "occupied_voxels": int(occupied.sum()), "z_norm": round(float((z ** 2).sum() ** 0.5), 3),
                      "confidence": confidence.to_dict(),
                      "ms": {"load_model": round((t_load - t0) * 1000, 1),
                             "reconstruct": round((t_rec - t_load) * 1000, 1),
                             "write": round((t_write - t_rec) * 1000, 1)}}))
    return 0
