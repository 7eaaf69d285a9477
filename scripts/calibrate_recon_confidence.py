#!/usr/bin/env python
"""Fit and check the reconstruction confidence of a model with an image encoder (gan_core.recon_confidence).

Familiarity (a logistic regression on the encoder's pooled activations) is fitted on renders of the model's
training shapes against pictures that are not furniture (gan_core.ood_images), both also degraded (blur, JPEG,
gamma); its warning shift is the 5th percentile of renders of the model's held-out shapes (half A of them). Then
the whole confidence (rules + familiarity + empty shape) is scored on things the fit never saw: half B of the
held-out renders (clean and degraded), fresh pictures of every kind (another seed), each kind once left out of
the fit, and scikit-image's bundled photos (none of them furniture). Nothing here reads ikea_dev.

    xvfb-run -a .venv/bin/python scripts/calibrate_recon_confidence.py --data ../shared/data/modelnet10_train_32.npz \\
        --report runs/ikea/confidence_calibration.json --threads 1

Writes ``<checkpoint stem>_confidence.npz`` beside the checkpoint (default: the bundled encoder model), which
gan_core.model.Model.reconstruct_image finds by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RENDER_SEED_FIT, RENDER_SEED_HOLDOUT = 778, 777  # views that differ from the training renders' (seed 0)
OOD_SEED_FIT, OOD_SEED_CHECK = 2, 1
SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "page", "horse",
                  "hubble_deep_field", "immunohistochemistry", "retina", "logo", "text", "brick", "grass", "gravel",
                  "colorwheel", "cat", "moon")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="model with an encoder (default: the bundled one)")
    ap.add_argument("--data", required=True, help="the model's training data (its stored split is used)")
    ap.add_argument("--n-fit", type=int, default=1200, help="training shapes rendered for the fit")
    ap.add_argument("--n-per-kind", type=int, default=120, help="non-furniture pictures per kind for the fit")
    ap.add_argument("--n-check", type=int, default=60, help="fresh pictures per kind for the check")
    ap.add_argument("--c", type=float, default=0.03, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--out", default=None, help="the confidence file (default: beside the checkpoint)")
    ap.add_argument("--report", default=None, help="also write the numbers here as JSON")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from gan_core.checkpoint import load_checkpoint
    from gan_core.commands.reconstruct import _checkpoint_path
    from gan_core.data.dataset import VoxelDataset
    from gan_core.data.render import render_shapes
    from gan_core.files import file_sha256
    from gan_core.image_input import load_image, read_rgb
    from gan_core.ood_images import KINDS, degrade, make_set
    from gan_core.recon_confidence import (
        calibration_path, encode_with_features, fit_familiarity, picture_checks, shape_checks, verdict,
    )
    from gan_core.runtime import load_model

    t0 = time.perf_counter()
    ckpt_path = Path(_checkpoint_path(args.checkpoint))
    model = load_model(ckpt_path, device="cpu")
    state = load_checkpoint(ckpt_path).get("state", {})
    ds = VoxelDataset(args.data)
    size = model.profile.image_size
    if state.get("train_rows") is not None and state.get("data_sha256") == file_sha256(args.data):
        train_rows, held_rows = np.asarray(state["train_rows"]), np.asarray(state["holdout_rows"])
    else:  # not its training data: split it here (seeded)
        rows = np.random.default_rng(0).permutation(len(ds))
        held_rows, train_rows = np.sort(rows[: len(rows) // 10]), np.sort(rows[len(rows) // 10:])
    g = np.random.default_rng(0)
    fit_rows = np.sort(g.choice(train_rows, min(args.n_fit, len(train_rows)), replace=False))
    held_rows = held_rows[ds.voxel_counts(held_rows) >= 32]  # as evaluate-recon: no near-empty shapes
    half_a, half_b = held_rows[0::2], held_rows[1::2]

    def render(rows: np.ndarray, seed: int) -> np.ndarray:
        return render_shapes(ds.read(rows), views=1, size=size, seed=seed, rows=rows)[0][:, 0]

    def encode(images) -> tuple[list, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
        rgbs = [read_rgb(im, size) for im in images]  # any sizes: read and framed as a user's photo is
        z, feats = encode_with_features(model.encoder, np.stack([load_image(r, size) for r in rgbs]))
        return rgbs, z, feats

    def degraded(images: np.ndarray, seed: int) -> np.ndarray:
        gd = np.random.default_rng(seed)
        return np.stack([degrade(im, gd) for im in images])

    renders_fit = render(fit_rows, RENDER_SEED_FIT)
    renders_a, renders_b = render(half_a, RENDER_SEED_HOLDOUT), render(half_b, RENDER_SEED_HOLDOUT)
    t_render = time.perf_counter()
    pos = np.concatenate([encode(renders_fit)[2], encode(degraded(renders_fit, 1))[2]])
    neg_by_kind = {}
    for k in KINDS:
        pics = make_set(k, args.n_per_kind, seed=OOD_SEED_FIT, size=size)
        neg_by_kind[k] = np.concatenate([encode(pics)[2], encode(degraded(pics, 2))[2]])
    hold_a = encode(renders_a)[2]
    fam = fit_familiarity(pos, np.concatenate(list(neg_by_kind.values())), hold_a,
                          encoder_hash=model.weights_hash("encoder"), c=args.c)

    def verdicts(images, fam_model=fam) -> list:  # type: ignore[no-untyped-def]
        pics, z, feats = encode(images)
        vox = model.generate(z, use_cache=False)
        f = fam_model.familiarity(feats) if fam_model is not None else [None] * len(pics)  # pics: as they are
        return [verdict(picture_checks(p), shape_checks(v), None if fi is None else float(fi))
                for p, v, fi in zip(pics, vox, f)]

    def summary(vs: list) -> dict:  # type: ignore[no-untyped-def]
        scores = np.array([v.score for v in vs], np.float64)
        return {"n": len(vs), "warned": round(float(np.mean([v.low for v in vs])), 3),
                "familiarity_low": round(float(np.mean([v.familiarity < 0.5 for v in vs])), 3),
                "blank": round(float(np.mean([v.picture["blank"] for v in vs])), 3),
                "noise": round(float(np.mean([v.picture["noise"] for v in vs])), 3),
                "empty": round(float(np.mean([v.shape["empty"] for v in vs])), 3),
                "score_p5_p50_p95": [round(float(x), 3) for x in np.percentile(scores, [5, 50, 95])]}

    report: dict = {"checkpoint": str(ckpt_path), "encoder_hash": fam.encoder_hash, "c": args.c,
                    "shift": fam.shift, "n_fit_renders": len(fit_rows), "n_per_kind": args.n_per_kind,
                    "fit_pictures": "each clean and degraded (blur, JPEG, gamma)", "check": {}}
    report["check"]["renders of held-out shapes (half B)"] = summary(verdicts(renders_b))
    report["check"]["the same, degraded"] = summary(verdicts(degraded(renders_b, 3)))
    report["check"]["renders of held-out shapes (half A, sets the shift)"] = summary(verdicts(renders_a))
    for k in KINDS:
        report["check"][k] = summary(verdicts(make_set(k, args.n_check, seed=OOD_SEED_CHECK, size=size)))
        report["check"][k + ", degraded"] = summary(verdicts(degraded(make_set(k, args.n_check, seed=OOD_SEED_CHECK,
                                                                                   size=size), 4)))
    # generalisation to a kind the fit never saw: refit without it, score fresh pictures of it
    loko = {}
    for k in KINDS:
        others = np.concatenate([v for j, v in neg_by_kind.items() if j != k])
        f2 = fit_familiarity(pos, others, hold_a, encoder_hash=fam.encoder_hash, c=args.c)
        _, _, feats = encode(make_set(k, args.n_check, seed=OOD_SEED_CHECK, size=size))
        loko[k] = round(float(np.mean(f2.familiarity(feats) < 0.5)), 3)
    report["familiarity_low_with_the_kind_left_out_of_the_fit"] = loko
    photos = _skimage_photos()
    vs = verdicts(list(photos.values()))
    report["scikit-image photos (not furniture)"] = {
        "warned": [n for n, v in zip(photos, vs) if v.low], "passed": [n for n, v in zip(photos, vs) if not v.low],
        "scores": {n: round(float(v.score), 3) for n, v in zip(photos, vs)}}
    fam.report = report
    out = Path(args.out) if args.out else calibration_path(ckpt_path)
    fam.save(out)
    report.update(out=str(out), seconds={"render": round(t_render - t0, 1), "total": round(time.perf_counter() - t0, 1)})
    text = json.dumps(report, indent=1)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text + "\n")
    print(text)


def _skimage_photos() -> dict[str, np.ndarray]:
    import skimage.data as sd

    out = {}
    for name in SKIMAGE_PHOTOS:
        try:
            a = np.asarray(getattr(sd, name)())
        except Exception:  # some need a download: skipped, never fetched
            continue
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        elif a.dtype != np.uint8:
            a = (np.clip(a.astype(np.float64) / (a.max() or 1), 0, 1) * 255).astype(np.uint8)
        out[name] = a[..., :3] if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)
    return out


if __name__ == "__main__":
    main()
