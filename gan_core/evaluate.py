"""Evaluation: linear-SVM shape classification on discriminator features (Wu et al. 2016, section 4.2), and
generation metrics that compare a set of generated shapes with reference shapes (COV, MMD, 1-NNA).

Classification: features are standardised, a linear SVM is fitted with C chosen by stratified k-fold
cross-validation on the training set only, then scored once on the test set (see svm_classify).

Generation metrics (Achlioptas et al. 2018, "Learning representations and generative models for 3D point
clouds"; Yang et al. 2019, "PointFlow", for 1-NNA), for samples S and reference R under a distance d:

* COV(S, R) = |{argmin_{r in R} d(s, r) : s in S}| / |R|: the fraction of reference shapes that are the
  nearest reference of some sample (1 is best; low values mean mode collapse).
* MMD(S, R) = mean_{r in R} min_{s in S} d(r, s): how well the closest sample matches each reference shape
  (0 is best; it measures fidelity).
* 1-NNA(S, R): accuracy of the leave-one-out 1-nearest-neighbour classifier on S u R that predicts for each
  shape the set of its nearest other shape. 50% is ideal (the sets cannot be told apart); 100% means they are
  disjoint clusters; well below 50% means samples sit on top of reference shapes (memorisation: S = R gives 0).

The distance is 1 - IoU on voxels, and optionally the Chamfer distance between surface point sets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from gan_core.data.resample import resample
from gan_core.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)  # for the 1/sqrt(F)-scaled kernel of svm_classify
FULL_FRACTION = 0.9  # a sample with more than this fraction of its grid filled counts as "full" (a solid cube)
CHAMFER_MAX = 6.0  # Chamfer distance against an empty shape: the bound 2 * 3 for squared distances in [0, 1]^3


# -- classification ----------------------------------------------------------------------------------------
@dataclass
class ClassificationReport:
    """Result of :func:`svm_classify`. ``confusion[i][j]`` counts test shapes of class ``class_names[i]``
    predicted as ``class_names[j]``; ``per_class`` holds the accuracy (recall) of each class in the test set."""

    accuracy: float
    per_class: dict[str, float]
    per_class_n: dict[str, int]
    confusion: list[list[int]]
    class_names: list[str]
    C: float
    cv_accuracy: float | None
    n_train: int
    n_test: int
    feature_dim: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """A table: accuracy, per-class accuracy and the confusion matrix."""
        cv = f", {self.cv_accuracy:.4f} cross-validated" if self.cv_accuracy is not None else ""
        lines = [f"linear SVM on {self.feature_dim}-d features: C = {self.C:g}{cv}",
                 f"train {self.n_train} shapes, test {self.n_test} shapes", f"accuracy {self.accuracy:.4f}", "",
                 f"{'class':<16} {'n':>5} {'accuracy':>9}"]
        lines += [f"{c:<16} {self.per_class_n[c]:>5} {a:>9.4f}" for c, a in self.per_class.items()]
        w = max(5, max(len(c) for c in self.class_names[:99]) if self.class_names else 5)
        short = [c[:7] for c in self.class_names]
        lines += ["", "confusion matrix (rows: true class, columns: predicted)",
                  " " * w + " " + " ".join(f"{c:>7}" for c in short)]
        lines += [f"{c:<{w}} " + " ".join(f"{v:>7}" for v in row) for c, row in zip(self.class_names, self.confusion)]
        return "\n".join(lines)


def svm_classify(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    class_names: Sequence[str],
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    folds: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
) -> ClassificationReport:
    """Fit a linear SVM on (train_x, train_y), C by stratified k-fold CV on the train set, test once.

    Features are standardised with the training set's mean and standard deviation and divided by sqrt(F), so
    the linear kernel x.y is a mean over features and one C grid suits 384-d and 32768-d inputs alike. The
    SVM is libsvm's ``SVC`` on the precomputed linear kernel: the same classifier as ``kernel="linear"``
    (hinge loss, one-vs-one), but the Gram matrix is one BLAS product, so 4k shapes of 32768-d raw voxels take
    seconds where liblinear's LinearSVC needs hours to converge at large C. (The scaler sees the whole training
    set, CV folds included; the test set is never seen before scoring.)

    Parameters
    ----------
    train_x, test_x : ndarray (N, F)
        Feature vectors (D features or flattened voxels).
    train_y, test_y : ndarray (N,) int
        Labels indexing ``class_names``.
    c_grid : sequence of float
        Candidate C values; one value skips cross-validation.
    folds : int
        Stratified folds (reduced to the smallest class count when a class has fewer training shapes).
    n_jobs : int
        Parallel CV fits (1 by default: the machine is often busy training).

    Examples
    --------
    >>> rep = svm_classify(x[:80], y[:80], x[80:], y[80:], class_names=["a", "b"])   # doctest: +SKIP
    >>> rep.accuracy, rep.C                                                           # doctest: +SKIP
    """
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    t0 = time.perf_counter()
    xtr, ytr = _check_xy(train_x, train_y, "train")
    xte, yte = _check_xy(test_x, test_y, "test")
    if xtr.shape[1] != xte.shape[1]:
        raise BadInputError(f"train and test features differ in length: {xtr.shape[1]} vs {xte.shape[1]}")
    if len(np.unique(ytr)) < 2:
        raise BadInputError("the training set needs at least two classes")
    grid = [float(c) for c in c_grid]
    if not grid or min(grid) <= 0:
        raise BadInputError(f"C values must be positive, got {grid}")
    scaler = StandardScaler().fit(xtr)
    norm = np.float32(1.0 / np.sqrt(xtr.shape[1]))
    a = scaler.transform(xtr).astype(np.float32) * norm  # (N, F)
    k_train = (a @ a.T).astype(np.float64)  # (N, N)
    k_test = ((scaler.transform(xte).astype(np.float32) * norm) @ a.T).astype(np.float64)  # (M, N)
    del a
    svc = SVC(kernel="precomputed", C=grid[0], cache_size=500)
    cv_acc = None
    if len(grid) == 1:
        model = svc.fit(k_train, ytr)
    else:
        counts = np.bincount(ytr)
        k = min(folds, int(counts[counts > 0].min()))
        if k < 2:
            raise BadInputError("cross-validation needs >= 2 training shapes per class; give a single C")
        search = GridSearchCV(svc, {"C": grid}, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                              n_jobs=n_jobs, refit=True)
        model = search.fit(k_train, ytr).best_estimator_
        cv_acc = float(search.best_score_)
    pred = model.predict(k_test)
    present = np.unique(np.concatenate([ytr, yte]))
    names = [str(class_names[i]) for i in present]
    conf = confusion_matrix(yte, pred, labels=present)
    per_class = {names[i]: float(conf[i, i] / conf[i].sum()) for i in range(len(present)) if conf[i].sum()}
    per_n = {names[i]: int(conf[i].sum()) for i in range(len(present)) if conf[i].sum()}
    return ClassificationReport(
        accuracy=float((pred == yte).mean()), per_class=per_class, per_class_n=per_n, confusion=conf.tolist(),
        class_names=names, C=float(model.C), cv_accuracy=cv_acc, n_train=len(ytr), n_test=len(yte),
        feature_dim=int(xtr.shape[1]), seconds=round(time.perf_counter() - t0, 2),
    )


@dataclass
class CurvePoint:
    """Accuracy with ``per_class`` labelled training shapes per class (None: all), over ``repeats`` draws."""

    per_class: int | None
    n_train: int
    mean: float
    std: float
    accuracies: list[float]


def limited_data_curve(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    class_names: Sequence[str],
    per_class: Sequence[int | None],
    repeats: int = 5,
    seed: int = 0,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    folds: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> list[CurvePoint]:
    """Test accuracy of :func:`svm_classify` trained on N shapes per class drawn from the training set (the
    paper's Figure 4), for each N in ``per_class`` (None: every training shape, drawn once), ``repeats``
    draws each. A class with fewer than N shapes gives all it has. C is cross-validated on the draw itself
    where each class has two or more shapes, else C = 1 (one shape per class leaves nothing to validate on).
    """
    if repeats < 1:
        raise BadInputError(f"--repeats must be >= 1, got {repeats}")
    ytr = np.asarray(train_y)
    classes = np.unique(ytr)
    jobs = [(n, r) for n in per_class for r in range(1 if n is None else repeats)]
    done, points = 0, []
    for n in per_class:
        if n is not None and n < 1:
            raise BadInputError(f"--per-class values must be >= 1, got {n}")
        accs, size = [], 0
        for r in range(1 if n is None else repeats):
            if n is None:
                pick = np.arange(len(ytr))
            else:
                rng = np.random.default_rng([seed, n, r])
                pick = np.sort(np.concatenate([rng.permutation(np.flatnonzero(ytr == c))[:n] for c in classes]))
            counts = np.bincount(ytr[pick])
            grid = c_grid if counts[counts > 0].min() >= 2 else [1.0]
            rep = svm_classify(train_x[pick], ytr[pick], test_x, test_y, class_names=class_names, c_grid=grid,
                               folds=folds, seed=seed)
            accs.append(rep.accuracy)
            size = len(pick)
            done += 1
            if progress is not None:
                progress(done, len(jobs))
        points.append(CurvePoint(per_class=n, n_train=size, mean=float(np.mean(accs)), std=float(np.std(accs)),
                                 accuracies=accs))
    return points


def _check_xy(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or len(x) == 0 or y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise BadInputError(f"{what} set: need features (N, F) and N integer labels, got {x.shape} and {y.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise BadInputError(f"{what} features contain NaN or Inf")
    return x, y.astype(np.int64)


# -- generation metrics ------------------------------------------------------------------------------------
def iou_distances(a: np.ndarray, b: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Pairwise 1 - IoU between binary grids a (N, R, R, R) and b (M, R, R, R): float32 (N, M).

    Intersections are a matrix product of the flattened grids as float32 (exact: counts stay below 2^24),
    computed in chunk x chunk blocks so memory stays flat. Two empty grids are identical (distance 0).
    """
    fa, fb = _flat_bool(a), _flat_bool(b)
    if fa.shape[1] != fb.shape[1]:
        raise BadInputError(f"grids differ in size: {a.shape[1:]} vs {b.shape[1:]}")
    na, nb = fa.sum(1, dtype=np.float32), fb.sum(1, dtype=np.float32)
    out = np.empty((len(fa), len(fb)), np.float32)
    for i in range(0, len(fa), chunk):
        ai = fa[i:i + chunk].astype(np.float32)  # (c, V)
        for j in range(0, len(fb), chunk):
            inter = ai @ fb[j:j + chunk].astype(np.float32).T  # (c, c')
            union = na[i:i + chunk, None] + nb[None, j:j + chunk] - inter
            iou = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
            out[i:i + chunk, j:j + chunk] = 1.0 - iou
    return out


def coverage_mmd(d_sr: np.ndarray) -> tuple[float, float]:
    """COV and MMD from distances d_sr (|S|, |R|) (formulas in the module docstring). A sample equally near
    several reference shapes is matched to the first of them (np.argmin)."""
    d = np.asarray(d_sr)
    matched = np.unique(d.argmin(axis=1))
    return len(matched) / d.shape[1], float(d.min(axis=0).mean())


def one_nna(d_ss: np.ndarray, d_rr: np.ndarray, d_sr: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy on S u R from the three distance blocks (|S|,|S|), (|R|,|R|), (|S|,|R|).

    Each shape is classified by its nearest *other* shape. Tie-breaking: when the nearest shape of its own set
    and the nearest of the other set are equally far, the shape counts as half right (the classifier cannot
    tell), so sets whose distances are all equal give exactly 0.5. Identical sets of distinct shapes give 0:
    every shape's twin in the other set is at distance 0.
    """
    def own_vs_other(own: np.ndarray, other: np.ndarray) -> np.ndarray:
        own = own.astype(np.float64, copy=True)
        np.fill_diagonal(own, np.inf)  # leave one out
        a, b = own.min(axis=1), other.min(axis=1)
        return np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0))

    d_sr = np.asarray(d_sr)
    right = np.concatenate([own_vs_other(np.asarray(d_ss), d_sr), own_vs_other(np.asarray(d_rr), d_sr.T)])
    return float(right.mean())


def generation_metrics(
    samples: np.ndarray,
    reference: np.ndarray,
    *,
    resolution: int | None = None,
    chamfer: bool = False,
    n_points: int = 1024,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """COV, MMD and 1-NNA of samples against reference under 1 - IoU (and Chamfer), plus occupancy statistics.

    Parameters
    ----------
    samples, reference : ndarray (N, R, R, R)
        Grids (bool/int: > 0, float: > 0.5). Both are resampled to ``resolution`` (default: the smaller R).
    chamfer : bool
        Also compute the metrics under the Chamfer distance between ``n_points`` surface points per shape
        (slow: O(N^2) KD-tree queries; ``progress(done, total)`` reports the pairs).

    Returns
    -------
    dict with ``iou`` {cov, mmd, 1nna}, optionally ``chamfer`` {cov, mmd, 1nna}, ``empty_rate`` (samples with no
    filled voxel), ``full_rate`` (samples more than FULL_FRACTION filled), ``mean_occupancy_samples`` /
    ``_reference`` (mean filled fraction), ``n_samples``, ``n_reference``, ``resolution``.
    """
    s, r = _binary(samples, "samples"), _binary(reference, "reference")
    res = int(resolution or min(s.shape[1], r.shape[1]))
    s, r = _to_resolution(s, res), _to_resolution(r, res)
    occ_s, occ_r = s.reshape(len(s), -1).mean(1), r.reshape(len(r), -1).mean(1)
    out: dict = {"n_samples": len(s), "n_reference": len(r), "resolution": res}
    d_ss, d_rr, d_sr = iou_distances(s, s), iou_distances(r, r), iou_distances(s, r)
    cov, mmd = coverage_mmd(d_sr)
    out["iou"] = {"cov": cov, "mmd": mmd, "1nna": one_nna(d_ss, d_rr, d_sr)}
    if chamfer:
        # The same random stream for every shape: identical grids get identical points (distance exactly 0).
        ps = [surface_points(g, n_points, np.random.default_rng(seed)) for g in s]
        pr = [surface_points(g, n_points, np.random.default_rng(seed)) for g in r]
        total = len(s) * (len(s) - 1) // 2 + len(r) * (len(r) - 1) // 2 + len(s) * len(r)
        tick = _Ticker(progress, total)
        c_ss, c_rr, c_sr = chamfer_distances(ps, ps, tick), chamfer_distances(pr, pr, tick), chamfer_distances(ps, pr, tick)
        cov, mmd = coverage_mmd(c_sr)
        out["chamfer"] = {"cov": cov, "mmd": mmd, "1nna": one_nna(c_ss, c_rr, c_sr), "points": n_points}
    out.update(empty_rate=float((occ_s == 0).mean()), full_rate=float((occ_s > FULL_FRACTION).mean()),
               mean_occupancy_samples=float(occ_s.mean()), mean_occupancy_reference=float(occ_r.mean()))
    return out


def surface_points(grid: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points (n, 3) float32 sampled uniformly by area on the marching-cubes surface of a binary grid,
    in unit-cube coordinates (voxel i spans [i, i+1) / R), so grids of any size compare. Empty grid: (0, 3)."""
    from skimage.measure import marching_cubes

    g = np.asarray(grid) > 0
    if not g.any():
        return np.zeros((0, 3), np.float32)
    verts, faces, _, _ = marching_cubes(np.pad(g, 1).astype(np.float32), level=0.5)
    tri = (verts[faces] - 0.5) / g.shape[0]  # (T, 3, 3); -1 for the pad, +0.5 for voxel centres
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(tri), size=n, p=area / area.sum())
    u, v = rng.random((2, n, 1))
    flip = (u + v) > 1  # fold the unit square onto the triangle
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    t = tri[pick]
    return (t[:, 0] + u * (t[:, 1] - t[:, 0]) + v * (t[:, 2] - t[:, 0])).astype(np.float32)


def chamfer_distances(
    pa: Sequence[np.ndarray], pb: Sequence[np.ndarray], progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Pairwise Chamfer distances (N, M): CD(X, Y) = mean_x min_y |x-y|^2 + mean_y min_x |x-y|^2
    (Achlioptas et al. 2018). Against an empty point set it is CHAMFER_MAX (0 if both are empty). When ``pa``
    is ``pb`` only the upper triangle is computed."""
    from scipy.spatial import cKDTree

    same = pa is pb
    ta = [cKDTree(p) if len(p) else None for p in pa]
    tb = ta if same else [cKDTree(p) if len(p) else None for p in pb]
    out = np.zeros((len(pa), len(pb)), np.float32)
    for i in range(len(pa)):
        for j in range(i + 1 if same else 0, len(pb)):
            if ta[i] is None or tb[j] is None:
                d = 0.0 if ta[i] is None and tb[j] is None else CHAMFER_MAX
            else:
                d = float(np.mean(tb[j].query(pa[i])[0] ** 2) + np.mean(ta[i].query(pb[j])[0] ** 2))
            out[i, j] = d
            if same:
                out[j, i] = d
        if progress is not None:
            progress(len(pb) - i - 1 if same else len(pb))
    return out


class _Ticker:
    def __init__(self, cb: Callable[[int, int], None] | None, total: int) -> None:
        self.cb, self.total, self.done = cb, total, 0

    def __call__(self, n: int) -> None:
        self.done += n
        if self.cb is not None:
            self.cb(self.done, self.total)


def _flat_bool(v: np.ndarray) -> np.ndarray:
    return _binary(v, "voxels").reshape(len(v), -1)


def _binary(voxels: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(voxels)
    if v.ndim != 4 or not (v.shape[1] == v.shape[2] == v.shape[3]) or len(v) == 0 or v.dtype.kind not in "biuf":
        raise BadInputError(f"{what} must be a non-empty numeric (N, R, R, R) array, got {v.shape} {v.dtype}")
    return v > 0.5 if v.dtype.kind == "f" else v > 0


def _to_resolution(v: np.ndarray, res: int) -> np.ndarray:
    return v if v.shape[1] == res else resample(v, res).astype(bool)


__all__ = [
    "ClassificationReport", "chamfer_distances", "coverage_mmd", "generation_metrics", "iou_distances", "one_nna",
    "surface_points", "svm_classify", "limited_data_curve", "CurvePoint",
]
