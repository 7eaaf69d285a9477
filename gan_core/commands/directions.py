"""gan3d directions: semantic directions in z (GANSpace PCA, class-mean differences), their effect on a shape
(a PNG), a CSV summary and, on request, how smooth their sliders are."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from gan_core.commands._common import (
    add_bank_args, add_model_args, cache_from_args, load_bank_from_args, load_model_from_args, output_file,
    progress, progress_callback,
)

HELP = "find semantic directions in z (unsupervised PCA, class-mean differences): npz, CSV and a PNG of their effect"
EXAMPLE = ("gan3d directions --components 10 --per-class 6 --pairs chair:sofa,table:desk --base-class chair "
           "--out directions.npz --csv directions.csv --png directions.png --smoothness 8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    add_bank_args(p)
    p.add_argument("--out", default=None, help="directions (.npz): unit vectors, spans, names, class means")
    p.add_argument("--csv", default=None, help="one row per direction: name, span, explained variance, effects")
    p.add_argument("--png", default=None, help="the base shape moved along each shown direction (rendered grid)")
    p.add_argument("--components", type=int, default=10, help="unsupervised directions (PCA components)")
    p.add_argument("--samples", type=int, default=2000, help="prior samples whose first-layer activations are PCA'd")
    p.add_argument("--named", type=int, default=5, help="how many of the first directions to name by class shifts")
    p.add_argument("--probe", type=int, default=24, help="shapes moved along a direction to name it")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples")
    p.add_argument("--per-class", type=int, default=6,
                   help="training shapes projected per class for class-mean directions (0: none; minutes on a CPU)")
    p.add_argument("--project-steps", type=int, default=20, help="projection steps from each shape's look-alike")
    p.add_argument("--pairs", default=None,
                   help="class directions FROM:TO, comma-separated (default: chair:sofa, table:desk, ... present)")
    p.add_argument("--show", type=int, default=5, help="unsupervised directions in the PNG (class ones follow)")
    p.add_argument("--base", default=None, help="shape of the PNG: a seed or FILE.npz[:INDEX] (default: --base-class)")
    p.add_argument("--base-class", default="chair", help="else the first prior sample D's features call this class")
    p.add_argument("--smoothness", type=int, default=0,
                   help="measure each shown slider's class flip rate from this many start shapes (0: skip)")
    p.add_argument("--slider-steps", type=int, default=41, help="slider positions from -span to +span")


def run(args: argparse.Namespace) -> int:
    from gan_core.directions import PcaParams
    from gan_core.errors import BadInputError

    for flag, value, suffix in (("--out", args.out, ".npz"), ("--csv", args.csv, ".csv"), ("--png", args.png, ".png")):
        output_file(value, flag, [suffix])  # before the model loads and the minutes of work
    if not (args.out or args.csv or args.png):
        raise BadInputError("give at least one of --out, --csv and --png")
    if args.per_class < 0 or args.project_steps < 0 or args.smoothness < 0 or args.show < 0:
        raise BadInputError("--per-class, --project-steps, --smoothness and --show must be >= 0")
    pairs = _pairs(args.pairs)
    params = PcaParams(n_samples=args.samples, n_components=args.components, seed=args.seed,
                       n_named=min(args.named, args.components), n_probe=args.probe).check()
    model = load_model_from_args(args)
    bank = load_bank_from_args(args, model)
    known = ", ".join(bank.class_names_)
    for name in (n for pair in pairs for n in pair):
        if name not in bank.class_names_:
            raise BadInputError(f"--pairs: unknown class {name!r}; known: {known}")
    if args.png and not args.base and args.base_class not in bank.class_names_:
        raise BadInputError(f"--base-class {args.base_class!r} is not a class of the bank ({known})")
    cache = cache_from_args(args)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dirs = _pca(model, bank, params, cache)
    timings["unsupervised_s"] = time.perf_counter() - t0
    means, class_dirs = None, []
    if args.per_class:
        t0 = time.perf_counter()
        means = _class_means(model, bank, args, cache)
        timings["class_means_s"] = time.perf_counter() - t0
        class_dirs = [means.direction(a, b) for a, b in (pairs or means.default_pairs())]
    shown = dirs[:args.show] + class_dirs
    flips = {}
    if args.smoothness:
        from gan_core.directions import class_flip_rate

        starts = model.sample_z(args.smoothness, seed=args.seed + 7)
        t0 = time.perf_counter()
        for d in progress(shown, total=len(shown), desc="sliders", unit="slider"):
            flips[d.name] = float(class_flip_rate(model, bank, starts, d, args.slider_steps).mean())
        timings["smoothness_s"] = time.perf_counter() - t0
    if args.out:
        from gan_core.directions import save_directions

        save_directions(args.out, dirs + class_dirs, means)
    if args.csv:
        _write_csv(Path(args.csv), dirs + class_dirs, flips)
    base_label = None
    if args.png and shown:
        z, base_label = _base(model, bank, args)
        _render(model, z, shown, Path(args.png), base_label)
    print(json.dumps({
        "out": args.out, "csv": args.csv, "png": args.png, "model": model.name, "base": base_label,
        "directions": [{"name": d.name, "kind": d.kind, "span": round(d.span, 3),
                        "explained": None if np.isnan(d.explained) else round(d.explained, 4),
                        "class_flip_rate": flips.get(d.name)} for d in dirs + class_dirs],
        "class_projection_iou": None if means is None else dict(zip(means.class_names, means.iou.round(3).tolist())),
        **{k: round(v, 1) for k, v in timings.items()}}))
    return 0


def _pairs(text: str | None) -> list[tuple[str, str]]:
    from gan_core.errors import BadInputError

    if not text:
        return []
    out = []
    for part in text.split(","):
        a, sep, b = part.strip().partition(":")
        if not sep or not a or not b:
            raise BadInputError(f"--pairs: expected FROM:TO like chair:sofa, got {part.strip()!r}")
        out.append((a, b))
    return out


def _pca(model, bank, params, cache):  # -> list[Direction]
    from gan_core.directions import load_or_build_pca, name_directions, pca_directions

    report = progress_callback("naming directions", "direction")
    if cache is not None:
        return load_or_build_pca(model, bank, params, cache=cache, progress=report)
    dirs = pca_directions(model, params)
    dirs[:params.n_named] = name_directions(model, bank, dirs[:params.n_named], n_probe=params.n_probe,
                                            seed=params.seed + 1, progress=report)
    return dirs


def _class_means(model, bank, args, cache):  # -> ClassMeans
    from gan_core.directions import class_means, load_or_build_class_means

    report = progress_callback("projecting training shapes", "step")
    kw = dict(per_class=args.per_class, steps=args.project_steps, seed=args.seed, progress=report)
    return class_means(model, bank, **kw) if cache is None else load_or_build_class_means(model, bank, cache=cache, **kw)


def _base(model, bank, args) -> tuple[np.ndarray, str]:
    """The shape the PNG moves: --base, or the first of 64 prior samples classified as --base-class."""
    from gan_core.commands.interpolate import resolve_z
    from gan_core.errors import BadInputError

    if args.base:
        return resolve_z(args.base, model, "--base"), f"--base {args.base}"
    z = model.sample_z(64, seed=args.seed + 11)
    labels = bank.predict(model.features(model.generate(z, use_cache=False), kind="paper"))
    hits = np.flatnonzero(labels == bank.class_names_.index(args.base_class))
    if not len(hits):
        raise BadInputError(f"none of 64 samples looks like a {args.base_class}; give --base")
    return z[hits[0]], f"sample {hits[0]} of seed {args.seed + 11} (a {args.base_class})"


def _render(model, z: np.ndarray, dirs: list, path: Path, base_label: str) -> None:
    """Rows: directions; columns: -span, -span/2, 0, +span/2, +span."""
    from gan_core.preview import render_grid

    steps = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    zs = np.concatenate([z[None] + (steps * d.span)[:, None] * d.vector[None] for d in dirs]).astype(np.float32)
    ascii_names = [d.name.replace("\u2192", "->").replace("\u2212", "-") for d in dirs]  # the render font has neither
    titles = [f"{name[:28]} {s * d.span:+.1f}" for name, d in zip(ascii_names, dirs) for s in steps]
    render_grid(model.generate(zs, use_cache=False), path, titles=titles, ncols=len(steps), cell=200,
                progress=progress_callback("rendering", "shape"))


def _write_csv(path: Path, dirs: list, flips: dict) -> None:
    from gan_core.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "kind", "span", "explained", "class_flip_rate", "volume_change", "height_change",
                    "width_change", "depth_change", "top_class_minus", "top_class_plus"])
        for d in dirs:
            e = d.effects
            top = [e["classes"][int(np.argmax(e[k]))] if "classes" in e else "" for k in ("minus", "plus")]
            w.writerow([d.name, d.kind, f"{d.span:.4f}", "" if np.isnan(d.explained) else f"{d.explained:.5f}",
                        "" if d.name not in flips else f"{flips[d.name]:.4f}",
                        *(f"{e[k]:+.3f}" if k in e else "" for k in ("volume", "height", "width", "depth")), *top])
