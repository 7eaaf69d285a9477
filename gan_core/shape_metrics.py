"""Metrics that see what a person sees, beside the IoU-based COV / MMD / 1-NNA of gan_core.evaluate.

COV and MMD under 1 - IoU reward blobs that overlap many shapes. These do not:

* **FCD**, the Frechet classifier distance: the Frechet distance between Gaussians fitted to the features of
  a supervised shape classifier (the judge, gan_core.judge) of two sets; FID's voxel analogue (Heusel et al.
  2017): |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). It shrinks with more shapes, so compare values
  at equal set sizes only (gan3d evaluate prints the real-vs-real floor at the samples' size).
* **fragmented rate**: the share of non-empty shapes whose largest 26-connected component holds under 90% of
  the occupied voxels (scraps, floating parts).
* **tiny rate**: the share of shapes with under 150 occupied voxels at 32^3 (150 (R/32)^3 at R^3): specks.
* **class histogram**: the share of shapes the judge assigns to each class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gan_core.errors import BadInputError
from gan_core.mesh import largest_component

if TYPE_CHECKING:
    from gan_core.judge import JudgeClassifier

FRAGMENT_SHARE = 0.9  # a shape is fragmented when its largest component holds less than this share of its voxels
TINY_VOXELS_32 = 150  # a shape is tiny with fewer occupied voxels than this at 32^3


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets (N, F) and (M, F) (mean, np.cov covariance).

    The matrix square root is scipy's; its tiny imaginary part (round-off) is dropped, and a singular product
    (fewer shapes than features) is regularised with 1e-6 on the diagonals, as the reference FID code does.
    """
    from scipy import linalg

    a, b = _features(feats_a, "first"), _features(feats_b, "second")
    if a.shape[1] != b.shape[1]:
        raise BadInputError(f"feature sets differ in length: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s_a)) * 1e-6
        covmean = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean), 0.0))


def fragmented_rate(voxels: np.ndarray) -> float:
    """Share of the non-empty grids whose largest 26-connected component holds under FRAGMENT_SHARE of their
    occupied voxels (0 when every grid is empty: the empty rate reports those)."""
    grids = _grids(voxels)
    counts = grids.reshape(len(grids), -1).sum(1)
    nonempty = np.flatnonzero(counts)
    if len(nonempty) == 0:
        return 0.0
    kept = np.array([largest_component(grids[i]).sum() for i in nonempty])
    return float((kept < FRAGMENT_SHARE * counts[nonempty]).mean())


def tiny_threshold(resolution: int) -> float:
    """The voxel count under which a shape at ``resolution``^3 is tiny: 150 at 32^3, scaled by volume."""
    return TINY_VOXELS_32 * (resolution / 32) ** 3


def tiny_rate(voxels: np.ndarray) -> float:
    """Share of grids (empty ones included) with fewer occupied voxels than :func:`tiny_threshold`."""
    grids = _grids(voxels)
    counts = grids.reshape(len(grids), -1).sum(1)
    return float((counts < tiny_threshold(grids.shape[1])).mean())


def class_histogram(predicted: np.ndarray, n_classes: int) -> list[float]:
    """Share of shapes per class index 0..n_classes-1 (sums to 1)."""
    p = np.asarray(predicted)
    if p.ndim != 1 or len(p) == 0 or p.min() < 0 or p.max() >= n_classes:
        raise BadInputError(f"predicted classes must be a non-empty 1-d array of indices below {n_classes}")
    return (np.bincount(p, minlength=n_classes) / len(p)).tolist()


def shape_metrics(samples: np.ndarray, reference: np.ndarray, *, real: np.ndarray | None = None,
                  judge: JudgeClassifier | None = None) -> dict[str, Any]:
    """The metrics above for samples, and for ``real`` shapes (the real-vs-real values) when given, each
    against the same reference set; the reference's own rates and histogram are there for context.

    Returns ``{"fragmented_rate": {set: rate}, "tiny_rate": {...}}``, and with a judge ``"fcd": {"samples",
    "real"}`` (distance to the reference), ``"class_histogram": {"classes": [...], set: [shares]}`` and
    ``"class_tv": {"samples", "real"}`` (total variation distance of the histogram to the reference's:
    half the sum of absolute differences, 0 = the same class mix).
    """
    sets = {"samples": samples, **({"real": real} if real is not None else {}), "reference": reference}
    out: dict[str, Any] = {
        "fragmented_rate": {k: fragmented_rate(v) for k, v in sets.items()},
        "tiny_rate": {k: tiny_rate(v) for k, v in sets.items()},
    }
    if judge is None:
        return out
    feats, hist = {}, {}
    n = len(judge.class_names)
    for k, v in sets.items():
        feats[k], predicted = judge.features_and_predictions(v)
        hist[k] = class_histogram(predicted, n)
    compared = [k for k in sets if k != "reference"]
    out["fcd"] = {k: frechet_distance(feats[k], feats["reference"]) for k in compared}
    out["class_histogram"] = {"classes": judge.class_names, **hist}
    out["class_tv"] = {k: 0.5 * float(np.abs(np.subtract(hist[k], hist["reference"])).sum()) for k in compared}
    return out


def _features(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2 or a.shape[1] == 0:
        raise BadInputError(f"{what} feature set must be (N, F) with N >= 2, got {a.shape}")
    if not np.isfinite(a).all():
        raise BadInputError(f"{what} feature set contains NaN or Inf")
    return a


def _grids(voxels: np.ndarray) -> np.ndarray:
    v = np.asarray(voxels)
    if v.ndim != 4 or not (v.shape[1] == v.shape[2] == v.shape[3]) or len(v) == 0 or v.dtype.kind not in "biuf":
        raise BadInputError(f"voxels must be a non-empty numeric (N, R, R, R) array, got {v.shape} {v.dtype}")
    return v > 0.5 if v.dtype.kind == "f" else v > 0


__all__ = ["FRAGMENT_SHARE", "TINY_VOXELS_32", "class_histogram", "fragmented_rate", "frechet_distance",
           "shape_metrics", "tiny_rate", "tiny_threshold"]
