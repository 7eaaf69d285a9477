"""gan3d map: a 2D map of the latent space (training shapes and generated samples, t-SNE of D features)."""

from __future__ import annotations

import argparse
import json
import time

from gan_core.commands._common import (
    add_bank_args, add_model_args, cache_from_args, load_bank_from_args, load_model_from_args, output_file,
    progress_callback,
)

HELP = "map the training shapes and generated samples in 2D (PCA + t-SNE of D features): PNG, CSV, npz"
EXAMPLE = "gan3d map --samples 500 --out map.png --csv map.csv --npz map.npz --path 3,7,12"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    add_bank_args(p)
    p.add_argument("--out", default=None, help="PNG of the map (scatter coloured by class)")
    p.add_argument("--csv", default=None, help="CSV with one row per point: x, y, source, index, class")
    p.add_argument("--npz", default=None, help="the map itself (.npz), readable by gan_core.latent_map")
    p.add_argument("--samples", type=int, default=500, help="generated shapes on the map beside the bank's")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated shapes and of t-SNE")
    p.add_argument("--kind", default="paper", choices=["paper", "last"], help="D features the map embeds")
    p.add_argument("--pca", type=int, default=50, help="PCA components before t-SNE")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    p.add_argument("--path", default=None,
                   help="also draw a path through these shapes: seeds or FILE.npz[:INDEX], comma-separated")
    p.add_argument("--steps", type=int, default=9, help="points per segment of --path")
    p.add_argument("--mode", default="slerp", choices=["slerp", "lerp", "spline"], help="interpolation of --path")


def run(args: argparse.Namespace) -> int:
    from gan_core.commands.interpolate import resolve_z
    from gan_core.errors import BadInputError
    from gan_core.latent import keyframe_path
    from gan_core.latent_map import (
        MapParams, build_map, load_or_build_map, map_cache_path, place_shapes, render_png, write_csv,
    )

    if not (args.out or args.csv or args.npz):
        raise BadInputError("give at least one of --out (PNG), --csv and --npz")
    for flag, value, suffix in (("--out", args.out, ".png"), ("--csv", args.csv, ".csv"), ("--npz", args.npz, ".npz")):
        output_file(value, flag, [suffix])  # before the model loads and the minute of t-SNE
    if args.steps < 2:
        raise BadInputError(f"--steps must be >= 2, got {args.steps}")
    params = MapParams(n_samples=args.samples, seed=args.seed, kind=args.kind, n_pca=args.pca,
                       perplexity=args.perplexity).check()
    model = load_model_from_args(args)
    keys = [resolve_z(s.strip(), model, "--path") for s in args.path.split(",")] if args.path else []
    if len(keys) == 1:
        raise BadInputError("--path needs at least two shapes")
    bank = load_bank_from_args(args, model)
    cache = cache_from_args(args)
    cached = cache is not None and map_cache_path(model, bank, params, cache).is_file()
    t0 = time.perf_counter()
    # build_map reports once per batch of samples, then once after the embedding, the long uncounted step
    report = progress_callback("mapping", "step", stage=lambda done, total: (
        "samples and their D features" if done < total - 1 else f"t-SNE of {len(bank) + params.n_samples} shapes"))
    lmap = (build_map(model, bank, params, progress=report) if cache is None
            else load_or_build_map(model, bank, params, cache=cache, progress=report))
    seconds = time.perf_counter() - t0
    path_xy = None
    if keys:
        zs = keyframe_path(keys, args.steps, args.mode)
        path_xy = place_shapes(lmap, bank, model, model.generate(zs, use_cache=False))
    if args.npz:
        lmap.save(args.npz)
    if args.csv:
        write_csv(lmap, args.csv)
    if args.out:
        marks = [] if path_xy is None else [("start", path_xy[0]), ("end", path_xy[-1])]
        render_png(lmap, args.out, path_xy=path_xy, marks=marks)
    print(json.dumps({"out": args.out, "csv": args.csv, "npz": args.npz, "points": len(lmap),
                      "bank_shapes": lmap.n_bank, "samples": lmap.n_samples, "seconds": round(seconds, 2),
                      "build_seconds": round(lmap.build_seconds, 2), "cached": cached,
                      "model": model.name}))
    return 0
