"""The 3D-GAN paper's IKEA protocol for single-image reconstruction (Wu et al. 2016, Table 2), one function per
step, and the evaluation of a model with an image encoder on a directory laid out like ``ikea_dev``.

The steps, each used by the model's predictions and by the baselines alike:

1. :func:`to_truth_frame`: bring a predicted occupancy grid to the truth's frame. Crop it to the bounding box of
   its voxels above ``level`` (0.5, the iso level `gan3d reconstruct` shows; the whole grid when none is
   above it), scale so that the box's longest side spans ``size`` (20) cells, centre it on every axis (the truth
   is centred on every axis, the up axis too), and average the probabilities onto the ``size``^3 cells (each
   cell gets the mean of the scaled grid over its volume, with empty space outside the box).
2. :func:`best_quarter_turn_ap`: the best AP over the four quarter turns about the up axis (axis 2): the facing
   of the truth differs between models and one photo cannot tell it.
3. AP per image: :func:`gan_core.reconstruct.average_precision` (scikit-learn's ``average_precision_score`` of
   the truth's voxels against the predicted probabilities).
4. :func:`summarise_ap`: the mean per class and the mean over classes (each class counts once).

Baselines on the same protocol (:func:`framed_mean_shape`): every training shape brought to the truth's frame by
step 1, then averaged: over all training shapes (the mean shape), or over those of the photo's class when the
class is told (the class-mean shape).

``ikea_dev`` is a measurement set: nothing here fits or tunes anything on it.

Examples
--------
>>> import numpy as np
>>> grid = np.zeros((32, 32, 32), np.float32); grid[2:12, 5:10, 0:5] = 1    # a 10 x 5 x 5 box, off centre
>>> framed = to_truth_frame(grid)                                           # 20 x 10 x 10 cells, centred
>>> framed.shape, float(framed.sum()), float(framed[0, 5, 5]), float(framed[0, 4, 5])
((20, 20, 20), 2000.0, 1.0, 0.0)
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from gan_core.errors import BadFileError, BadInputError
from gan_core.reconstruct import average_precision

if TYPE_CHECKING:
    from gan_core.model import Model

__all__ = [
    "FRAME_LEVEL", "IKEA_SIZE", "PAPER_FULL_MEAN", "PAPER_TABLE2", "IkeaSet", "best_quarter_turn_ap",
    "bounding_box", "cell_weights", "evaluate_ikea", "framed_mean_shape", "load_ikea", "predict_ikea",
    "score_predictions", "summarise_ap", "to_truth_frame",
]

IKEA_SIZE = 20  # the truth's grid side
FRAME_LEVEL = 0.5  # the prediction's bounding box: its voxels above this (the shown iso level)
# Wu et al. 2016, Table 2, 3D-VAE-GAN trained per category, AP on IKEA; its mean is over all its IKEA classes
# (bed, bookcase, chair, desk, sofa, table), of which ikea_dev holds chair, sofa and table.
PAPER_TABLE2 = {"bed": 0.632, "bookcase": 0.463, "chair": 0.472, "desk": 0.407, "sofa": 0.788, "table": 0.423}
PAPER_FULL_MEAN = 0.531


# -- step 1: the truth's frame -----------------------------------------------------------------------------
def bounding_box(grid: np.ndarray, level: float = FRAME_LEVEL) -> tuple[slice, slice, slice] | None:
    """The tight box (one slice per axis) around the cells of ``grid`` above ``level``; None when none is."""
    occ = np.asarray(grid) > level
    if not occ.any():
        return None
    out = []
    for ax in range(3):
        hit = np.flatnonzero(occ.any(axis=tuple(a for a in range(3) if a != ax)))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)  # type: ignore[return-value]


def cell_weights(n: int, scale: float, size: int = IKEA_SIZE) -> np.ndarray:
    """(size, n) weights that average ``n`` source cells, stretched by ``scale`` and centred, onto ``size`` cells.

    Source cell j covers [off + j * scale, off + (j + 1) * scale) of the target axis, off = (size - n * scale) / 2;
    weight[i, j] is the length of its overlap with target cell [i, i + 1). Applied along each axis, the product of
    the weights is the overlap volume, so a target cell holds the mean of the scaled grid over its volume.
    """
    if n < 1 or not scale > 0:
        raise BadInputError(f"need n >= 1 and scale > 0, got n={n}, scale={scale}")
    off = (size - n * scale) / 2.0
    lo = off + np.arange(n) * scale  # (n,) source cell starts on the target axis
    t = np.arange(size, dtype=np.float64)[:, None]  # (size, 1) target cell starts
    return np.clip(np.minimum(t + 1, lo + scale) - np.maximum(t, lo), 0.0, None)  # (size, n)


def to_truth_frame(prob: np.ndarray, size: int = IKEA_SIZE, level: float = FRAME_LEVEL) -> np.ndarray:
    """A predicted occupancy grid (R, R, R) in the truth's frame: (size, size, size) float32 in [0, 1].

    Crop to the bounding box of the voxels above ``level`` (the whole grid when none is: an empty prediction
    stays a faint one), scale the box's longest side to ``size`` cells, centre it, average onto the cells.
    """
    p = np.asarray(prob, np.float64)
    if p.ndim != 3:
        raise BadInputError(f"expected a 3D occupancy grid, got shape {p.shape}")
    box = bounding_box(p, level)
    if box is not None:
        p = p[box]
    scale = size / max(p.shape)
    w = [cell_weights(n, scale, size) for n in p.shape]
    out = np.einsum("ia,jb,kc,abc->ijk", w[0], w[1], w[2], p, optimize=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# -- step 2 and 3: facing and AP ---------------------------------------------------------------------------
def best_quarter_turn_ap(pred: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """The best AP of ``pred`` against ``truth`` (both (S, S, S) in the same frame) over the four quarter turns
    about the up axis (np.rot90 in axes (0, 1)), and the number of turns that gives it (the first on ties)."""
    p = np.asarray(pred)
    if p.shape != np.shape(truth):
        raise BadInputError(f"prediction {p.shape} and truth {np.shape(truth)} differ in shape")
    aps = [average_precision(np.rot90(p, k, axes=(0, 1)), truth) for k in range(4)]
    k = int(np.nanargmax(aps)) if not np.all(np.isnan(aps)) else 0
    return float(aps[k]), k


# -- step 4: means -----------------------------------------------------------------------------------------
def summarise_ap(ap: Iterable[float], classes: Iterable[str]) -> dict[str, Any]:
    """Mean AP per class ({class: {"ap", "n"}}) and the mean over classes, each class counting once."""
    a, c = np.asarray(list(ap), np.float64), np.asarray(list(classes))
    if len(a) != len(c):
        raise BadInputError(f"{len(a)} AP values for {len(c)} class names")
    per = {str(k): {"ap": float(np.nanmean(a[c == k])), "n": int((c == k).sum())} for k in sorted(set(c.tolist()))}
    return {"per_class": per, "mean": float(np.mean([v["ap"] for v in per.values()])) if per else float("nan")}


def score_predictions(preds: np.ndarray, truth: np.ndarray, classes: Iterable[str]) -> dict[str, Any]:
    """Steps 2 to 4 for predictions already in the truth's frame: ``preds`` (N, S, S, S) or one (S, S, S) for
    every image (a baseline), ``truth`` (N, S, S, S). Per image AP and turns, per class and over classes."""
    t = np.asarray(truth)
    p = np.asarray(preds)
    one = p.ndim == 3
    if not one and len(p) != len(t):
        raise BadInputError(f"{len(p)} predictions for {len(t)} truths")
    rows = [best_quarter_turn_ap(p if one else p[i], t[i]) for i in range(len(t))]
    aps = [r[0] for r in rows]
    return {**summarise_ap(aps, classes), "ap": aps, "turns": [r[1] for r in rows]}


# -- baselines ---------------------------------------------------------------------------------------------
def framed_mean_shape(voxels: np.ndarray | Iterable[np.ndarray], size: int = IKEA_SIZE) -> np.ndarray:
    """The mean of shapes (N, R, R, R) (or an iterable of chunks of them) each brought to the truth's frame by
    :func:`to_truth_frame`: (size, size, size) float32. A training set's mean shape, as a prediction."""
    total, n = np.zeros((size,) * 3, np.float64), 0
    chunks = [voxels] if isinstance(voxels, np.ndarray) else voxels
    for chunk in chunks:
        for v in np.asarray(chunk):
            total += to_truth_frame(v, size)
            n += 1
    if n == 0:
        raise BadInputError("no shapes to average")
    return (total / n).astype(np.float32)


# -- the data set ------------------------------------------------------------------------------------------
@dataclass
class IkeaSet:
    """A directory laid out like ikea_dev: ``images/*.jpg`` and ``truth.npz`` (image, cls, voxels (N, S, S, S))."""

    root: Path
    images: list[Path]
    classes: np.ndarray  # (N,) str
    voxels: np.ndarray  # (N, S, S, S) uint8
    models: np.ndarray | None = None  # (N,) IKEA model ids, when given

    def __len__(self) -> int:
        return len(self.images)


def load_ikea(root: str | Path) -> IkeaSet:
    """Read and check an IKEA-style directory (see ``../shared/data/ikea_dev/README.md``)."""
    from gan_core.files import open_npz

    root = Path(root)
    if not root.is_dir():
        raise BadFileError(f"{root}: not a directory (want images/ and truth.npz)")
    tp = root / "truth.npz"
    if not tp.is_file():
        raise BadFileError(f"{root}: has no truth.npz")
    try:
        with open_npz(tp) as z:
            missing = [k for k in ("image", "cls", "voxels") if k not in z.files]
            if missing:
                raise BadFileError(f"{tp}: lacks {', '.join(missing)} (want image, cls, voxels)")
            names, cls = np.asarray(z["image"]).astype(str), np.asarray(z["cls"]).astype(str)
            vox = np.asarray(z["voxels"])
            models = np.asarray(z["model"]) if "model" in z.files else None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise BadFileError(f"{tp}: cannot read ({e})") from None
    if vox.ndim != 4 or not vox.shape[1] == vox.shape[2] == vox.shape[3] or vox.dtype.kind not in "biuf":
        raise BadFileError(f"{tp}: voxels must be numeric (N, S, S, S), got {vox.shape} {vox.dtype}")
    if not len(names) == len(cls) == len(vox) or len(vox) == 0:
        raise BadFileError(f"{tp}: image ({len(names)}), cls ({len(cls)}) and voxels ({len(vox)}) must be "
                           "non-empty and of one length")
    images = [root / "images" / n for n in names]
    absent = [p.name for p in images if not p.is_file()]
    if absent:
        raise BadFileError(f"{root}/images: {len(absent)} listed photos are missing (first: {absent[0]})")
    return IkeaSet(root, images, cls, (vox > 0).astype(np.uint8), models)


# -- evaluation --------------------------------------------------------------------------------------------
def predict_ikea(model: "Model", images: list[Path], *, batch_size: int = 32, confidence: bool = False,
                 progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> Any:
    """Occupancy probabilities (N, R, R, R) float32 for photos, by the path `gan3d reconstruct` takes (the photo
    read and framed by load_image, the encoder's posterior mean, the generator), in batches. With
    ``confidence``: (probabilities, [Confidence per photo]) as `gan3d reconstruct` reports them."""
    from gan_core import recon_confidence as rc
    from gan_core.image_input import load_image, read_rgb

    if model.encoder is None:
        from gan_core.errors import Gan3dError

        raise Gan3dError(f"model {model.name!r} has no image encoder; train one with `gan3d train-vae`")
    s = model.profile.image_size
    fam = rc.load_familiarity(model.checkpoint_path, model.encoder) if confidence else None
    blocks = fam.blocks if fam is not None else rc.FEATURE_BLOCKS
    out = np.empty((len(images),) + (model.resolution,) * 3, np.float32)
    confs: list[Any] = []
    starts = range(0, len(images), batch_size)
    for i in (progress(starts) if progress else starts):
        rgbs = [read_rgb(p, s) for p in images[i:i + batch_size]]
        z, feats = rc.encode_with_features(model.encoder, np.stack([load_image(r, s) for r in rgbs]),
                                           blocks=blocks, device=model.device)
        out[i:i + len(rgbs)] = model.generate(z, use_cache=False)
        if confidence:
            confs += [rc.judge_result(r, f, v, fam) for r, f, v in zip(rgbs, feats, out[i:i + len(rgbs)])]
    return (out, confs) if confidence else out


def evaluate_ikea(
    model: "Model",
    ikea: IkeaSet,
    *,
    train_voxels: Callable[[], Iterable[np.ndarray]] | None = None,
    class_voxels: Callable[[str], Iterable[np.ndarray] | None] | None = None,
    level: float = FRAME_LEVEL,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
    class_models: Mapping[str, "Model"] | None = None,
) -> dict[str, Any]:
    """The paper's IKEA protocol for ``model`` on ``ikea``, with the baselines when their shapes are given.

    ``class_models`` {class: model} reconstructs the photos of those classes with their own model, the class
    being told (the paper's separately trained row); ``model`` takes the rest.

    ``train_voxels()`` yields chunks (n, R, R, R) of the training shapes (the mean-shape baseline);
    ``class_voxels(name)`` those of one class, or None when the training data has no such class (the class-mean
    baseline; a class it lacks falls back to the mean shape, and is named in ``missing_classes``).

    Returns a dict: ``model`` (per_class {name: {ap, n}}, mean, ap and turns per image), ``baselines`` (the
    same for ``mean_shape`` and ``class_mean_shape``), ``confidence`` (what `gan3d reconstruct` would say of
    each photo: scores, warnings, a summary), ``paper`` (Table 2 for the classes present),
    ``paper_mean_same_classes``, ``paper_full_mean``, ``images`` (file names), ``frame_level``, ``seconds``,
    ``class_models`` ({class: model name} of the per-class models used).
    """
    t0 = time.perf_counter()
    size = ikea.voxels.shape[1]
    class_models = dict(class_models or {})
    probs = np.empty((len(ikea),) + (model.resolution,) * 3, np.float32)
    confs: list[Any] = [None] * len(ikea)
    for m, rows in _rows_per_model(model, class_models, ikea.classes):
        if m.resolution != model.resolution:
            raise BadInputError(f"the per-class model {m.name!r} is {m.resolution}^3, the model {model.name!r} "
                                f"{model.resolution}^3: use models of one resolution")
        p, c = predict_ikea(m, [ikea.images[i] for i in rows], confidence=True, progress=progress)
        probs[rows] = p
        for i, ci in zip(rows, c):
            confs[i] = ci
    t_pred = time.perf_counter()
    framed = np.stack([to_truth_frame(p, size, level) for p in probs])
    res: dict[str, Any] = {"model": score_predictions(framed, ikea.voxels, ikea.classes)}
    base: dict[str, Any] = {}
    if train_voxels is not None:
        mean = framed_mean_shape(train_voxels(), size)
        base["mean_shape"] = score_predictions(mean, ikea.voxels, ikea.classes)
        if class_voxels is not None:
            per_class, missing = {}, []
            for name in sorted(set(ikea.classes.tolist())):
                chunks = class_voxels(name)
                if chunks is None:
                    missing.append(name)
                    per_class[name] = mean
                else:
                    per_class[name] = framed_mean_shape(chunks, size)
            preds = np.stack([per_class[c] for c in ikea.classes])
            base["class_mean_shape"] = {**score_predictions(preds, ikea.voxels, ikea.classes),
                                        "missing_classes": missing}
    res["baselines"] = base
    res["confidence"] = _confidence_summary(confs, ikea.classes)
    present = sorted(set(ikea.classes.tolist()))
    paper = {c: PAPER_TABLE2[c] for c in present if c in PAPER_TABLE2}
    res["class_models"] = {c: m.name for c, m in sorted(class_models.items())}
    res.update(paper=paper, paper_mean_same_classes=float(np.mean(list(paper.values()))) if paper else None,
               paper_full_mean=PAPER_FULL_MEAN, images=[p.name for p in ikea.images], classes=ikea.classes.tolist(),
               frame_level=level, n_images=len(ikea),
               seconds={"predict": round(t_pred - t0, 1), "total": round(time.perf_counter() - t0, 1)})
    return res


def _rows_per_model(model: "Model", class_models: dict[str, "Model"],
                    classes: np.ndarray) -> list[tuple["Model", np.ndarray]]:
    """(model, photo rows) pairs: each class model's photos, then the default model's (if any are left)."""
    told = np.isin(classes, list(class_models))
    pairs = [(m, np.flatnonzero(classes == c)) for c, m in sorted(class_models.items())]
    pairs = [(m, r) for m, r in pairs if len(r)]
    if (~told).any():
        pairs.append((model, np.flatnonzero(~told)))
    return pairs


def _confidence_summary(confs: list[Any], classes: np.ndarray) -> dict[str, Any]:
    """Per photo score and warning flag, and their distribution (overall and per class)."""
    scores = [c.score for c in confs]
    low = [bool(c.low) for c in confs]
    known = np.array([x for x in scores if x is not None], np.float64)
    pct = [round(float(v), 3) for v in np.percentile(known, [5, 25, 50, 75, 95])] if len(known) else None
    per = {str(k): round(float(np.mean([lo for lo, c in zip(low, classes) if c == k])), 3)
           for k in sorted(set(classes.tolist()))}
    reasons: dict[str, int] = {}
    for c in confs:
        for w in c.warnings:
            reasons[w] = reasons.get(w, 0) + 1
    return {"score": scores, "low": low, "warned": round(float(np.mean(low)), 3) if low else None,
            "warned_per_class": per, "score_p5_p25_p50_p75_p95": pct, "warnings": reasons,
            "calibrated": bool(len(known)) and all(c.familiarity is not None for c in confs)}
