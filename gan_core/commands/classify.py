"""gan3d classify: linear-SVM shape classification on discriminator features (or raw voxels, as a baseline)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from gan_core.commands._common import (
    add_model_args, class_list, existing_file, load_model_from_args, progress_callback,
)

HELP = "classify shapes with a linear SVM on discriminator features (Wu et al. 4.2) or on raw voxels"
EXAMPLE = ("gan3d classify --checkpoint run/latest.pt --train train.npz --val-split 0.2 --seed 0 "
           "--cache train_feats.npz --json")

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--train", required=True, help="training set (.npz or .h5 with voxels, labels, classes)")
    p.add_argument("--test", default=None,
                   help="test set in the same layout (default: the held-out part of --train, as gan3d split makes it)")
    p.add_argument("--val-split", type=float, default=None,
                   help="without --test: stratified fraction of --train held out for testing (gan3d split's 0.2 "
                        "when not given)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hold-out split (gan3d split's 0) and the CV folds")
    p.add_argument("--kind", default="paper", choices=["paper", "last"],
                   help="D features: paper = pooled conv blocks 2-4 (7168-d at paper64), last = last conv block")
    p.add_argument("--raw-voxels", action="store_true", help="baseline: the same SVM on flattened voxels, no model")
    p.add_argument("--classes", default=None, help="comma-separated class names to keep (default: all)")
    p.add_argument("--limit", type=int, default=None, help="keep at most this many shapes of each file")
    p.add_argument("--c-grid", default="0.01,0.03,0.1,0.3,1,3,10,30,100,300",
                   help="candidate C values for cross-validation (features standardised and scaled by 1/sqrt(dim))")
    p.add_argument("--folds", type=int, default=5, help="stratified CV folds on the training set")
    p.add_argument("--cache", default=None, help="npz caching the --train features (reused when model and data match)")
    p.add_argument("--batch-size", type=int, default=64, help="shapes per forward pass")
    p.add_argument("--jobs", type=int, default=1, help="parallel CV fits")
    p.add_argument("--per-class", default=None,
                   help="the limited-data curve instead of one score: train on N shapes per class for each N of "
                        "this list ('1,2,5,10,20,50,all'), --repeats draws each, and print accuracy's mean and spread")
    p.add_argument("--repeats", type=int, default=5, help="with --per-class: random draws per N")
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line (last line)")


def _c_grid(text: str) -> list[float]:
    from gan_core.errors import BadInputError

    try:
        grid = [float(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise BadInputError(f"--c-grid: expected numbers like '0.01,0.1,1', got {text!r}") from None
    if not grid or min(grid) <= 0:
        raise BadInputError(f"--c-grid: values must be positive, got {text!r}")
    return grid


def run(args: argparse.Namespace) -> int:
    from gan_core.data import VoxelDataset
    from gan_core.errors import BadInputError
    from gan_core.data.split import DEFAULT_FRACTION, heldout_split
    from gan_core.evaluate import svm_classify

    train_path = existing_file(args.train, "--train")
    test_path = existing_file(args.test, "--test") if args.test else None
    if test_path is not None and args.val_split is not None:
        raise BadInputError("--val-split applies only without --test")
    val_split = DEFAULT_FRACTION if test_path is None and args.val_split is None else args.val_split
    grid = _c_grid(args.c_grid)
    if args.folds < 2:
        raise BadInputError(f"--folds must be >= 2, got {args.folds}")
    if args.batch_size < 1:
        raise BadInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.cache and Path(args.cache).suffix.lower() != ".npz":
        raise BadInputError(f"--cache must end in .npz, got {Path(args.cache).name}")
    per_class = _per_class(args.per_class) if args.per_class else None
    if args.repeats < 1:
        raise BadInputError(f"--repeats must be >= 1, got {args.repeats}")
    classes = class_list(args.classes)
    train = VoxelDataset(train_path, classes=classes, limit=args.limit)
    test = VoxelDataset(test_path, classes=classes, limit=args.limit, resolution=train.resolution) if test_path else None
    if test is not None and test.class_names != train.class_names:
        raise BadInputError(f"--test classes {test.class_names} differ from --train classes {train.class_names}")

    model = None if args.raw_voxels else load_model_from_args(args)
    x_train = _features(train, model, args, cache=args.cache)
    if test is None:
        tr, te = heldout_split(train.labels, val_split, seed=args.seed)
        x_test, y_test, x_train, y_train = x_train[te], train.labels[te], x_train[tr], train.labels[tr]
        split = (f"the held-out part of {train_path.name} (stratified {val_split:g}, seed {args.seed}: gan3d split's "
                 "rows); the model must not have trained on it")
    else:
        x_test, y_test, y_train = _features(test, model, args, cache=None), test.labels, train.labels
        split = f"{train_path.name} / {test_path.name}"
    what = "raw voxels" if model is None else f"D features {args.kind!r} of {model.name} ({model.profile.name})"
    if per_class is not None:
        return _curve(args, per_class, x_train, y_train, x_test, y_test, train.class_names, grid, what, split)
    report = svm_classify(x_train, y_train, x_test, y_test, class_names=train.class_names, c_grid=grid,
                          folds=args.folds, seed=args.seed, n_jobs=args.jobs)
    print(f"classify: {what}; {split}")
    print(report.format())
    if args.json:
        out = report.to_dict()
        out.update(features="raw" if model is None else args.kind, model=None if model is None else model.name,
                   split=split, train=str(train_path), test=str(test_path) if test_path else None,
                   val_split=val_split, seed=args.seed)
        print(json.dumps(out))
    return 0


def _per_class(text: str) -> list[int | None]:
    """'1,2,5,all' -> [1, 2, 5, None]."""
    from gan_core.commands._common import parse_int_list
    from gan_core.errors import BadInputError

    parts = [t.strip() for t in text.split(",") if t.strip()]
    numbers = parse_int_list(",".join(t for t in parts if t != "all"), "--per-class") if set(parts) - {"all"} else []
    if any(n < 1 for n in numbers):
        raise BadInputError(f"--per-class values must be >= 1 (or 'all'), got {text!r}")
    return sorted(set(numbers)) + ([None] if "all" in parts else [])


def _curve(args: argparse.Namespace, per_class: list[int | None], x_train: np.ndarray, y_train: np.ndarray,
           x_test: np.ndarray, y_test: np.ndarray, class_names: list[str], grid: list[float], what: str,
           split: str) -> int:
    """--per-class: the limited-data curve, a table and (with --json) its points."""
    from gan_core.evaluate import limited_data_curve

    report = progress_callback("SVM fits", "fit")
    try:
        points = limited_data_curve(x_train, y_train, x_test, y_test, class_names=class_names, per_class=per_class,
                                    repeats=args.repeats, seed=args.seed, c_grid=grid, folds=args.folds,
                                    progress=report)
    finally:
        report.close()
    print(f"classify: {what}; {split}; {args.repeats} draws per N")
    print(f"{'per class':>9} {'shapes':>7} {'accuracy':>9} {'spread':>7}")
    for pt in points:
        n = "all" if pt.per_class is None else str(pt.per_class)
        print(f"{n:>9} {pt.n_train:>7} {pt.mean:>9.4f} {pt.std:>7.4f}")
    if args.json:
        print(json.dumps({"features": "raw" if args.raw_voxels else args.kind, "split": split,
                          "repeats": args.repeats, "points": [vars(pt) for pt in points]}))
    return 0


def _features(ds, model, args: argparse.Namespace, *, cache: str | None) -> np.ndarray:
    """(N, F) float32 features of a dataset: flattened voxels, or D features (cached in ``cache`` when given)."""
    if model is None:
        return ds.read(np.arange(len(ds))).reshape(len(ds), -1).astype(np.float32)
    from gan_core.cache import cache_key
    from gan_core.features import dataset_features
    from gan_core.files import file_sha256

    key = cache_key({"weights": model.weights_hash(), "kind": args.kind, "data": file_sha256(ds.path),
                     "classes": ds.classes, "limit": ds.limit, "n": len(ds)})
    if cache and Path(cache).is_file():
        try:
            with np.load(cache, allow_pickle=False) as f:
                if str(f["key"]) == key:
                    log.info("features of %s read from %s", ds.path.name, cache)
                    return f["features"]
        except Exception as e:  # an unreadable cache is rebuilt, never fatal
            log.warning("ignoring feature cache %s (%s)", cache, e)
    report = progress_callback(f"features {ds.path.name}", "shape")
    try:
        feats = dataset_features(model, ds, kinds=(args.kind,), batch_size=args.batch_size,
                                 progress=report)[args.kind]
    finally:
        report.close()
    if cache:
        from gan_core.files import atomic_path

        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, features=feats, labels=ds.labels, key=np.array(key))
    return feats
