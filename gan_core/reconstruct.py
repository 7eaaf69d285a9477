"""Single-image 3D reconstruction with the 3D-VAE-GAN's Model: an image's shape, and the paper's reconstruction
metrics (IoU, average precision of voxel occupancy). The picture's reading and framing is
:mod:`gan_core.image_input`.

Examples
--------
>>> from gan_core.runtime import load_model                     # doctest: +SKIP
>>> model = load_model("runs/vae/latest.pt")                     # doctest: +SKIP
>>> voxels, z = reconstruct(model, "chair.jpg")                  # doctest: +SKIP
>>> voxels.shape, z.shape                                         # doctest: +SKIP
((32, 32, 32), (200,))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gan_core.errors import BadInputError, Gan3dError
from gan_core.image_input import ImageLike, encode_images, load_image

if TYPE_CHECKING:
    from gan_core.model import Model

__all__ = ["average_precision", "best_rotation_iou", "evaluate_reconstruction", "iou", "mean_shape_baseline",
           "reconstruct"]


def reconstruct(model: "Model", image: ImageLike) -> tuple[np.ndarray, np.ndarray]:
    """Voxel occupancy (R, R, R) float32 in [0, 1] and z (z_dim,) for an image, by a model with an encoder.

    Raises Gan3dError if the model has no encoder, BadFileError for an unusable image.
    """
    z = model.encode_image(image)  # (z_dim,)
    voxels = model.generate(z[None])[0]  # (R, R, R)
    return voxels, z


# -- metrics -----------------------------------------------------------------------------------------------
def iou(pred: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union of two boolean grids (1.0 when both are empty)."""
    p, t = np.asarray(pred, bool), np.asarray(true, bool)
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def best_rotation_iou(prob: np.ndarray, true: np.ndarray, level: float = 0.5) -> tuple[float, int]:
    """The best IoU over the 4 rotations of the prediction about the up axis (np.rot90 in axes (0, 1)),
    and the number of quarter turns that gives it: the encoder cannot know an object's canonical front
    from one image of a symmetric object, so the paper-style number forgives that."""
    pred = np.asarray(prob) > level
    scores = [iou(np.rot90(pred, k, axes=(0, 1)), true) for k in range(4)]
    k = int(np.argmax(scores))
    return scores[k], k


def average_precision(prob: np.ndarray, true: np.ndarray) -> float:
    """Average precision of voxel occupancy (sklearn's, the paper's IKEA metric) for one shape; NaN when
    the true grid is empty."""
    from sklearn.metrics import average_precision_score

    t = np.asarray(true, bool).ravel()
    if not t.any():
        return float("nan")
    return float(average_precision_score(t, np.asarray(prob, np.float32).ravel()))


def evaluate_reconstruction(
    model: "Model",
    voxels: np.ndarray,
    images: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    level: float = 0.5,
    preprocess: bool = True,
    progress: Any = None,
) -> dict[str, Any]:
    """Score single-image reconstructions against true grids.

    Parameters
    ----------
    model : runtime Model with an encoder.
    voxels : (N, R, R, R) true occupancy at the model's resolution.
    images : (N, K, S, S, 3) uint8, K views of each shape (each view is reconstructed on its own).
    labels, class_names : optional, for a per-class breakdown.
    preprocess : pass each image through :func:`load_image` (the path user images take).

    Returns
    -------
    dict with ``iou`` (mean over shapes and views of the best IoU over 4 rotations about the up axis),
    ``iou_aligned`` (no rotation), ``ap`` (mean average precision of voxel occupancy, the paper's IKEA
    metric, no rotation), ``ap_rot`` (AP at the IoU-best rotation), ``n_shapes``, ``n_images``, ``per_class``
    and ``per_shape`` (lists of the per-image numbers).
    """
    if model.encoder is None:
        raise Gan3dError(f"model {model.name!r} has no image encoder; train one with `gan3d train-vae`")
    vox = np.asarray(voxels)
    imgs = np.asarray(images)
    r, s = model.resolution, model.profile.image_size
    if vox.ndim != 4 or vox.shape[1:] != (r, r, r):
        raise BadInputError(f"voxels must be (N, {r}, {r}, {r}), got {vox.shape}")
    if imgs.ndim != 5 or imgs.shape[0] != len(vox) or imgs.shape[4] != 3:
        raise BadInputError(f"images must be (N, K, H, W, 3) for {len(vox)} shapes, got {imgs.shape}")
    n, k = imgs.shape[:2]
    rows: list[dict[str, Any]] = []
    for i in (progress(range(n)) if progress else range(n)):
        batch = np.stack([load_image(im, s) if preprocess else im.transpose(2, 0, 1).astype(np.float32) / 255
                          for im in imgs[i]])  # (K, 3, S, S)
        z = encode_images(model.encoder, batch, device=model.device)  # (K, z_dim)
        probs = model.generate(z, use_cache=False)  # (K, R, R, R)
        truth = vox[i] > 0
        for v, prob in enumerate(probs):
            best, quarter = best_rotation_iou(prob, truth, level)
            rows.append({"shape": i, "view": v, "iou": best, "rotation": quarter,
                         "iou_aligned": iou(prob > level, truth), "ap": average_precision(prob, truth),
                         "ap_rot": average_precision(np.rot90(prob, quarter, axes=(0, 1)), truth),
                         "label": int(labels[i]) if labels is not None else None})

    def summary(sel: list[dict[str, Any]]) -> dict[str, float]:
        return {key: float(np.nanmean([x[key] for x in sel])) for key in ("iou", "iou_aligned", "ap", "ap_rot")}

    out: dict[str, Any] = {**summary(rows), "n_shapes": n, "n_images": len(rows)}
    if labels is not None:
        per: dict[str, Any] = {}
        for lab in sorted({x["label"] for x in rows}):
            sel = [x for x in rows if x["label"] == lab]
            name = class_names[lab] if class_names and 0 <= lab < len(class_names) else str(lab)
            per[name] = {**summary(sel), "n_shapes": len({x["shape"] for x in sel})}
        out["per_class"] = per
    out["per_shape"] = rows
    return out


def mean_shape_baseline(mean: np.ndarray, voxels: np.ndarray) -> dict[str, float]:
    """What predicting one fixed shape scores: the mean training grid ``mean`` (R, R, R) in [0, 1] against each
    true grid of ``voxels`` (N, R, R, R), by the metrics of :func:`evaluate_reconstruction`. The mean is cut at
    the level that keeps as many voxels as the average training shape has (at 0.5 a thin class's mean is
    nearly empty), so its IoU is that of a typical-sized blob of the class."""
    m = np.asarray(mean, np.float32)
    level = float(np.quantile(m, 1.0 - float(m.mean()))) if m.any() else 0.5
    level = min(max(level, 1e-6), 1.0 - 1e-6)
    truth = np.asarray(voxels) > 0
    ious = [best_rotation_iou(m, t, level)[0] for t in truth]
    aps = [average_precision(m, t) for t in truth]
    return {"iou": float(np.mean(ious)), "ap": float(np.nanmean(aps)), "level": level}
