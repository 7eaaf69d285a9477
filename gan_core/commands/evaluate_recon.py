"""gan3d evaluate-recon: single-image reconstruction quality of a 3D-VAE-GAN on held-out shapes.

Renders the checkpoint's held-out shapes (its stored split, when --data is its training data; otherwise every
shape of --data) from new random views, reconstructs each image through the same path as `gan3d reconstruct`,
and reports the mean IoU (best of 4 rotations about the up axis) and the mean average precision of voxel
occupancy (the paper's IKEA metric: 53.1 mAP with per-category models at 64^3).

With ``--ikea DIR`` it runs the paper's IKEA protocol instead (:mod:`gan_core.recon_metrics`) on real photos with
3D truth laid out like ``../shared/data/ikea_dev``: AP per class and over classes at 20^3, beside the paper's
Table 2 and two baselines on the same protocol computed from ``--data`` (the mean training shape for every
photo; the class-mean training shape when the class is told).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gan_core.commands._common import add_device_args, add_precision_arg, existing_file, progress
from gan_core.errors import BadInputError, Gan3dError

HELP = ("evaluate single-image 3D reconstruction (IoU, voxel AP) on the held-out shapes of a VAE-GAN checkpoint, "
        "or on real photos with --ikea (the paper's IKEA protocol)")
EXAMPLE = ("gan3d evaluate-recon --checkpoint runs/vae/latest.pt --data ../shared/data/modelnet10_train_32.npz "
           "--n 200 --json\n  gan3d evaluate-recon --ikea ../shared/data/ikea_dev --data "
           "../shared/data/modelnet10_train_32.npz")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="VAE-GAN checkpoint (kind vaegan, with an encoder); with "
                   "--ikea also a bundled model's name (default there: the bundled model with an encoder)")
    p.add_argument("--data", default=None, help="voxel set: the training data (its held-out split is used) "
                   "or a separate test set (all shapes are used). With --ikea: the training shapes of the "
                   "baselines (the checkpoint's own training rows when it is its training data, else every shape)")
    p.add_argument("--ikea", default=None, metavar="DIR",
                   help="run the paper's IKEA protocol on DIR (images/*.jpg and truth.npz, laid out like "
                        "../shared/data/ikea_dev): AP at 20^3 per class and over classes, beside the paper's "
                        "Table 2 and the mean-shape and class-mean-shape baselines (these need --data)")
    p.add_argument("--per-class", action="append", default=[], metavar="CLASS=CKPT",
                   help="with --ikea: reconstruct the photos of CLASS with their own model (a checkpoint or a "
                        "bundled model's name), the class being told, as the paper's separately trained "
                        "models; repeat for more classes; --checkpoint takes the other photos")
    p.add_argument("--renders", default=None,
                   help="evaluation render cache (.h5): used if it exists, else written there (default: render "
                        "in memory)")
    p.add_argument("--n", type=int, default=200, help="evaluate at most N shapes (evenly spaced over the rows)")
    p.add_argument("--views", type=int, default=1, help="views per shape when rendering")
    p.add_argument("--seed", type=int, default=None,
                   help="render seed (default: the training renders' seed + 1, so the views are new)")
    p.add_argument("--min-voxels", type=int, default=32, help="skip shapes with fewer occupied voxels")
    p.add_argument("--level", type=float, default=0.5, help="occupancy threshold for IoU; with --ikea, the level "
                   "whose voxels give the prediction's bounding box")
    p.add_argument("--json", action="store_true", help="print the full result (per class, per image) as JSON")
    add_device_args(p)
    add_precision_arg(p)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's choice; 1 is faster on a busy machine)")


def _select(ckpt: dict, data_path: Path, n_max: int, min_voxels: int):
    """(VoxelDataset, positions, source, training rows) of the shapes to evaluate; the training rows (for the
    mean-shape baseline) only when the held-out split of the checkpoint's own data is evaluated, else None."""
    import numpy as np

    from gan_core.data.dataset import VoxelDataset
    from gan_core.files import file_sha256

    ds = VoxelDataset(data_path)
    state = ckpt.get("state", {})
    train_rows = None
    if state.get("holdout_rows") is not None and state.get("data_sha256") == file_sha256(data_path):
        pos = np.asarray(state["holdout_rows"], np.int64)  # unfiltered dataset: position == file row
        source = "held-out split of the checkpoint"
        train_rows = None if state.get("train_rows") is None else np.asarray(state["train_rows"], np.int64)
        if len(pos) == 0:
            raise BadInputError(f"{ckpt['path']}: was trained with --holdout 0, so it has no held-out shapes; "
                                "pass a separate test set as --data")
    else:
        pos = np.arange(len(ds))
        source = "all shapes (not the checkpoint's training data)"
    from gan_core.vae_train import spread

    pos = spread(pos[ds.voxel_counts(pos) >= min_voxels], n_max)  # evenly spaced: every class of a class-sorted file
    if len(pos) == 0:
        raise BadInputError(f"--data {data_path}: no shape with at least {min_voxels} occupied voxels to evaluate")
    return ds, pos, source, train_rows


def run(args: argparse.Namespace) -> int:
    if args.ikea:
        return _run_ikea(args)
    if args.per_class:
        raise BadInputError("--per-class needs --ikea DIR (per-class models are compared on real photos)")
    if not args.checkpoint or not args.data:
        raise BadInputError("--checkpoint and --data are needed (or --ikea DIR for the paper's IKEA protocol)")
    existing_file(args.checkpoint, "--checkpoint")
    existing_file(args.data, "--data")
    if args.n < 1:
        raise BadInputError(f"--n must be >= 1, got {args.n}")
    if not 1 <= args.views <= 64:
        raise BadInputError(f"--views must be in 1..64, got {args.views}")
    if not 0 < args.level < 1:
        raise BadInputError(f"--level must be in (0, 1), got {args.level}")
    if args.renders and Path(args.renders).suffix.lower() not in (".h5", ".hdf5"):
        raise BadInputError(f"--renders must end in .h5, got {Path(args.renders).name}")
    from gan_core.checkpoint import load_checkpoint
    from gan_core.data.resample import resample
    from gan_core.model import Model
    from gan_core.reconstruct import evaluate_reconstruction, mean_shape_baseline

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ckpt = load_checkpoint(args.checkpoint)
    if "encoder" not in ckpt:
        raise Gan3dError(f"--checkpoint {args.checkpoint}: has no image encoder (a 3D-GAN checkpoint?); "
                         "train one with `gan3d train-vae`")
    model = Model(ckpt["profile"], ckpt=ckpt, device=args.device, precision=args.precision)
    ds, pos, source, train_rows = _select(ckpt, Path(args.data), args.n, args.min_voxels)
    seed = args.seed if args.seed is not None else int(ckpt["state"].get("render_seed", 0)) + 1
    size = model.profile.image_size
    images = _images(ds, pos, args, seed, size)  # (N, K, S, S, 3)
    t_render = time.perf_counter()
    vox = ds.read(pos)
    if vox.shape[1] != model.resolution:
        vox = resample(vox, model.resolution)
    res = evaluate_reconstruction(model, vox, images, labels=ds.labels[pos], class_names=ds.class_names,
                                  level=args.level,
                                  progress=lambda it: progress(it, total=len(pos), desc="reconstructing", unit="shape"))
    if train_rows is not None and len(train_rows) and ds.resolution == vox.shape[1]:
        res["baseline_mean_shape"] = mean_shape_baseline(_mean_grid(ds, train_rows), vox)
    res.update(checkpoint=str(args.checkpoint), data=str(args.data), source=source, render_seed=seed,
               seconds={"render": round(t_render - t0, 1), "total": round(time.perf_counter() - t0, 1)},
               paper_ikea_ap=0.531)
    ds.close()
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['n_shapes']} shapes x {images.shape[1]} views ({source}), render seed {seed}")
        print(f"  IoU (best of 4 rotations) {res['iou']:.3f}   IoU (as posed) {res['iou_aligned']:.3f}   "
              f"AP {res['ap']:.3f}   AP (best rotation) {res['ap_rot']:.3f}   [paper, IKEA: AP 0.531]")
        for name, m in res.get("per_class", {}).items():
            print(f"  {name:<12} n={m['n_shapes']:<4d} IoU {m['iou']:.3f}  AP {m['ap']:.3f}")
        if (b := res.get("baseline_mean_shape")) is not None:
            print(f"  baseline, the mean training shape for every image: IoU {b['iou']:.3f}  AP {b['ap']:.3f}")
    return 0


def _mean_grid(ds, rows):
    """The mean occupancy (R, R, R) of the dataset positions ``rows`` (the run's training shapes), read in chunks."""
    import numpy as np

    total = np.zeros((ds.resolution,) * 3, np.float64)
    for _, vox in ds.chunks(rows):
        total += vox.sum(0)
    return (total / len(rows)).astype(np.float32)


def _images(ds, pos, args, seed: int, size: int):
    """Images (N, K, S, S, 3) uint8 of dataset positions: from --renders if it exists, else rendered."""
    import numpy as np

    from gan_core.data.render import render_shapes
    from gan_core.data.render_cache import RenderSet, render_dataset
    from gan_core.files import file_sha256

    if args.renders and Path(args.renders).exists():
        with RenderSet(args.renders) as rs:
            if rs.data_sha256 != file_sha256(ds.path):
                raise BadInputError(f"--renders {args.renders} was rendered from another data file")
            if rs.size != size:
                raise BadInputError(f"--renders {args.renders} holds {rs.size} px images; the model needs {size}")
            rows = rs.rows_for(np.asarray(ds.indices)[pos])
            return np.stack([np.stack([rs.images([r], v)[0] for v in range(rs.views)]) for r in rows])
    if args.renders:
        render_dataset(ds, args.renders, views=args.views, size=size, seed=seed, positions=pos)
        return _images(ds, pos, args, seed, size)
    stored = np.stack([ds.read([i])[0] for i in pos])
    images, _, _ = render_shapes(stored, views=args.views, size=size, seed=seed, rows=np.asarray(ds.indices)[pos])
    return images


# -- the paper's IKEA protocol -----------------------------------------------------------------------------
def _run_ikea(args: argparse.Namespace) -> int:
    from gan_core.commands.reconstruct import _checkpoint_path
    from gan_core.recon_metrics import evaluate_ikea, load_ikea
    from gan_core.runtime import load_model

    if not 0 < args.level < 1:
        raise BadInputError(f"--level must be in (0, 1), got {args.level}")
    ikea = load_ikea(args.ikea)  # checked before the model loads: a typo fails at once
    if args.data:
        existing_file(args.data, "--data")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(_checkpoint_path(args.checkpoint), device=args.device, precision=args.precision)
    if model.encoder is None:
        raise Gan3dError(f"--checkpoint {model.name}: has no image encoder (a 3D-GAN checkpoint?); "
                         "train one with `gan3d train-vae`")
    class_models = {}
    for item in args.per_class:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise BadInputError(f"--per-class takes CLASS=CHECKPOINT, got {item!r}")
        if name.strip() not in set(ikea.classes.tolist()):
            raise BadInputError(f"--per-class {item}: {args.ikea} has no photos of {name.strip()!r} "
                                f"(it has {', '.join(sorted(set(ikea.classes.tolist())))})")
        m = load_model(_checkpoint_path(path.strip()), device=args.device, precision=args.precision)
        if m.encoder is None:
            raise Gan3dError(f"--per-class {item}: {m.name} has no image encoder; train one with `gan3d train-vae`")
        class_models[name.strip()] = m
    train_voxels = class_voxels = None
    baseline_source = None
    if args.data:
        train_voxels, class_voxels, baseline_source = _training_shapes(Path(args.data), model)
    res = evaluate_ikea(model, ikea, train_voxels=train_voxels, class_voxels=class_voxels, level=args.level,
                        progress=lambda it: progress(it, desc="reconstructing", unit="batch"),
                        class_models=class_models)
    res.update(ikea=str(args.ikea), checkpoint=str(model.checkpoint_path), model_name=model.name,
               baseline_data=str(args.data) if args.data else None, baseline_shapes=baseline_source)
    if args.json:
        print(json.dumps(res))
        return 0
    counts = ", ".join(f"{c} {m['n']}" for c, m in res["model"]["per_class"].items())
    told = "".join(f"; {c} photos by {n} (class told)" for c, n in res["class_models"].items())
    print(f"IKEA protocol on {args.ikea}: {res['n_images']} photos ({counts}); model {model.name}{told}")
    print(f"AP at {ikea.voxels.shape[1]}^3, best of 4 quarter turns about the up axis; prediction cropped to its "
          f"voxels above {res['frame_level']:g}, longest side scaled to {ikea.voxels.shape[1]} cells, centred")
    base = res["baselines"]
    cols = [("model", res["model"]), ("paper", None)] + [(k, base[k]) for k in ("mean_shape", "class_mean_shape")
                                                        if k in base]
    names = {"model": "this model", "paper": "paper (Table 2)", "mean_shape": "mean shape",
             "class_mean_shape": "class-mean shape"}
    print(f"  {'class':<18}" + "".join(f"{names[k]:>18}" for k, _ in cols))
    for c in res["model"]["per_class"]:
        cells = [f"{v['per_class'][c]['ap']:.3f}" if v is not None else
                 (f"{res['paper'][c]:.3f}" if c in res["paper"] else "-") for _, v in cols]
        print(f"  {c:<18}" + "".join(f"{x:>18}" for x in cells))
    paper_mean = res["paper_mean_same_classes"]
    cells = [f"{v['mean']:.3f}" if v is not None else (f"{paper_mean:.3f}" if paper_mean is not None else "-")
             for _, v in cols]
    print(f"  {'mean over classes':<18}" + "".join(f"{x:>18}" for x in cells))
    print(f"  the paper's mean over all its IKEA classes: {res['paper_full_mean']:.3f}")
    conf = res["confidence"]
    spread = ""
    if conf["score_p5_p25_p50_p75_p95"] is not None:
        p5, _, p50, _, p95 = conf["score_p5_p25_p50_p75_p95"]
        spread = f"median {p50:.2f}, 5th-95th percentile {p5:.2f}-{p95:.2f}; "
    print(f"  confidence (as `gan3d reconstruct` reports it): {spread}a warning on {conf['warned']:.0%} of the "
          "photos" + ("" if conf["calibrated"] else " (familiarity not calibrated for this model: rules only)"))
    if baseline_source:
        print(f"  baselines from {baseline_source}")
        missing = base.get("class_mean_shape", {}).get("missing_classes")
        if missing:
            print(f"  (the training data has no {', '.join(missing)}: the mean shape stands in for them)")
    else:
        print("  (pass --data with the training shapes for the mean-shape and class-mean-shape baselines)")
    return 0


def _training_shapes(data: Path, model):  # type: ignore[no-untyped-def]
    """(train_voxels(), class_voxels(name), description) for the baselines: the model's own training rows when
    ``data`` is the file it trained on (the checkpoint records its sha256 and rows), else every shape."""
    import numpy as np

    from gan_core.checkpoint import load_checkpoint
    from gan_core.data.dataset import VoxelDataset
    from gan_core.files import file_sha256

    ds = VoxelDataset(data)
    state = load_checkpoint(model.checkpoint_path).get("state", {}) if model.checkpoint_path else {}
    rows = state.get("train_rows")
    if rows is not None and len(rows) and state.get("data_sha256") == file_sha256(data):
        pos = np.asarray(rows, np.int64)  # unfiltered dataset: position == file row
        source = f"the model's {len(pos)} training shapes of {data.name}"
    else:
        pos = np.arange(len(ds))
        source = f"all {len(pos)} shapes of {data.name}"
    labels = ds.labels[pos]

    def train_voxels():  # type: ignore[no-untyped-def]
        return (vox for _, vox in ds.chunks(pos))

    def class_voxels(name: str):  # type: ignore[no-untyped-def]
        if name not in ds.class_names:
            return None
        sel = pos[labels == ds.class_names.index(name)]
        return None if len(sel) == 0 else (vox for _, vox in ds.chunks(sel))

    return train_voxels, class_voxels, source
