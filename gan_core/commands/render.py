"""gan3d render: off-screen renders of a voxel set, the images of the 3D-VAE-GAN's training pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan_core.commands._common import class_list, existing_file
from gan_core.errors import BadInputError

HELP = "render a voxel set from random views into an HDF5 cache (training pairs for train-vae; resumable)"
EXAMPLE = "gan3d render --data ../shared/data/modelnet10_train_32.npz --out runs/renders.h5 --views 4 --size 128"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="voxel set (.npz or .h5) in the documented layout")
    p.add_argument("--out", required=True, help="render cache to write (.h5); an unfinished one is resumed")
    p.add_argument("--views", type=int, default=4,
                   help="images per shape (random azimuth; elevation 10-40 deg, photo style 0-55)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (the profile's image_size: "
                   "fast32 128, paper64 256, tiny16 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the view, light, colour and background draws")
    p.add_argument("--classes", default=None, help="comma-separated class names to render (default: all)")
    p.add_argument("--limit", type=int, default=None, help="render at most N shapes")
    p.add_argument("--smooth", type=int, default=10, help="Taubin smoothing passes on each mesh")
    p.add_argument("--style", choices=("clean", "photo"), default="clean",
                   help="clean: the object centred on a simple background, one key light (the bundled encoder's "
                   "training images); photo: domain-randomised scenes that look like cluttered photos (rooms, "
                   "textures and other furniture behind, several coloured lights, materials, wider camera "
                   "ranges, off-centre detector-like crops, occluders, blur, colour jitter, JPEG artefacts; "
                   "about 3/4 of clean's speed). Stored in the cache: a cache of another style is not resumed")


def run(args: argparse.Namespace) -> int:
    existing_file(args.data, "--data")
    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise BadInputError(f"--out must end in .h5, got {out.name}")
    if args.views < 1 or args.views > 64:
        raise BadInputError(f"--views must be in 1..64, got {args.views}")
    if not 16 <= args.size <= 1024:
        raise BadInputError(f"--size must be in 16..1024, got {args.size}")
    if args.smooth < 0:
        raise BadInputError(f"--smooth must be >= 0, got {args.smooth}")
    from gan_core.commands._common import progress_callback
    from gan_core.data.dataset import VoxelDataset
    from gan_core.data.render_cache import render_dataset

    ds = VoxelDataset(args.data, classes=class_list(args.classes), limit=args.limit)
    report = progress_callback("rendering", "shape")
    try:
        stats = render_dataset(ds, out, views=args.views, size=args.size, seed=args.seed, progress=report,
                               smooth_iterations=args.smooth, style=args.style)
    finally:
        report.close()
    print(json.dumps({"out": str(stats.path), "style": args.style, "shapes": stats.n_shapes, "views": stats.views,
                      "rendered_now": stats.rendered_now, "seconds": round(stats.seconds, 2),
                      "renders_per_s": round(stats.renders_per_s, 1) if stats.rendered_now else None}))
    return 0
