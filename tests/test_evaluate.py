"""Linear-SVM classification and generation metrics (COV, MMD, 1-NNA) with known answers."""

from fractions import Fraction

import numpy as np
import pytest

from gan_core.data.split import heldout_split

from gan_core.errors import BadInputError
from gan_core.evaluate import (
    DEFAULT_C_GRID, chamfer_distances, coverage_mmd, generation_metrics, iou_distances, one_nna, surface_points,
    svm_classify,
)
from tests.core_data import boxes_npz


def _prefix_shapes(sizes, r=4):
    """Grids whose first k voxels (C order) are filled: IoU(a, b) = min(a, b) / max(a, b), easy by hand."""
    out = np.zeros((len(sizes), r**3), np.uint8)
    for i, k in enumerate(sizes):
        out[i, :k] = 1
    return out.reshape(len(sizes), r, r, r)


def _boxes(tmp_path, n=24, r=16, seed=0):
    with np.load(boxes_npz(tmp_path / f"b{seed}.npz", n=n, r=r, seed=seed)) as f:
        return f["voxels"], f["labels"]


def test_hand_computed_three_vs_three():
    s, r = _prefix_shapes([1, 2, 4]), _prefix_shapes([3, 5, 6])
    d_sr = iou_distances(s, r)
    expect = [[2 / 3, 4 / 5, 5 / 6], [1 / 3, 3 / 5, 2 / 3], [1 / 4, 1 / 5, 1 / 3]]
    np.testing.assert_allclose(d_sr, expect, rtol=1e-6)
    # nearest references: s1 -> r3, s2 -> r3, s4 -> r5, so r6 is never matched: COV = 2/3
    # MMD = mean(min over samples) = (1/4 + 1/5 + 1/3) / 3 = 47/180
    # 1-NN (leave one out): s1 right (own 1/2 < 2/3), s2 wrong (1/2 > 1/3), s4 wrong (1/2 > 1/5),
    # r3 wrong (2/5 > 1/4), r5 right (1/6 < 1/5), r6 right (1/6 < 1/3): 3/6
    m = generation_metrics(s, r)
    assert m["iou"]["cov"] == pytest.approx(2 / 3)
    assert m["iou"]["mmd"] == pytest.approx(float(Fraction(47, 180)), rel=1e-6)
    assert m["iou"]["1nna"] == 0.5
    assert m["n_samples"] == m["n_reference"] == 3 and m["resolution"] == 4


def test_identical_sets(tmp_path):
    vox, _ = _boxes(tmp_path, n=12)
    vox = np.unique(vox, axis=0)  # distinct shapes
    m = generation_metrics(vox, vox.copy())
    assert m["iou"]["cov"] == 1.0 and m["iou"]["mmd"] == 0.0
    # Leave-one-out 1-NN: each shape's twin in the other set is at distance 0, closer than any shape of its
    # own set, so every shape is misclassified: S = R (memorisation) gives 0, not the ideal 0.5.
    assert m["iou"]["1nna"] == 0.0
    # When the sets cannot be told apart at all (every distance equal) the tie rule gives exactly 0.5.
    same = np.repeat(vox[:1], 5, axis=0)
    assert generation_metrics(same, same)["iou"]["1nna"] == 0.5


def test_disjoint_sets_are_told_apart(tmp_path):
    vox, labels = _boxes(tmp_path, n=24)
    m = generation_metrics(vox[labels == 0], vox[labels == 1])  # slabs vs columns
    assert m["iou"]["1nna"] == 1.0
    assert m["iou"]["mmd"] > 0.5


def test_same_distribution_scores_near_half(tmp_path):
    a, _ = _boxes(tmp_path, n=60, seed=1)
    b, _ = _boxes(tmp_path, n=60, seed=2)
    assert 0.3 <= generation_metrics(a, b)["iou"]["1nna"] <= 0.7


def test_iou_distances_match_brute_force_and_chunking():
    rng = np.random.default_rng(0)
    a = rng.random((7, 8, 8, 8)) > 0.6
    b = rng.random((5, 8, 8, 8)) > 0.3
    b[0] = False
    a[0] = False
    brute = np.array([[1 - (x & y).sum() / (x | y).sum() if (x | y).any() else 0.0 for y in b] for x in a])
    np.testing.assert_allclose(iou_distances(a, b, chunk=3), brute, rtol=1e-6)
    assert iou_distances(a[:1], b[:1])[0, 0] == 0.0  # two empty grids are identical
    with pytest.raises(BadInputError):
        iou_distances(a, np.zeros((2, 4, 4, 4)))


def test_coverage_mmd_and_one_nna_on_matrices():
    d_sr = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.3]])  # last row ties: matched to the first reference
    assert coverage_mmd(d_sr) == (0.5, pytest.approx(0.2))
    assert one_nna(np.zeros((1, 1)), np.zeros((1, 1)), np.array([[0.5]])) == 0.0  # own set empty after LOO


def test_resampling_and_occupancy_rates():
    s = np.zeros((4, 32, 32, 32), np.float32)
    s[1] = 1.0  # full
    s[2, 8:24, 8:24, 8:24] = 0.9
    s[3, :16] = 0.7
    r = np.zeros((2, 16, 16, 16), np.uint8)
    r[:, 4:12, 4:12, 4:12] = 1
    m = generation_metrics(s, r)
    assert m["resolution"] == 16
    assert m["empty_rate"] == 0.25 and m["full_rate"] == 0.25
    assert m["mean_occupancy_reference"] == pytest.approx(0.125)
    assert m["mean_occupancy_samples"] == pytest.approx((0 + 1 + 0.125 + 0.5) / 4)
    assert m["iou"]["mmd"] == pytest.approx(0.0)  # s[2] is the reference cube at 16^3
    with pytest.raises(BadInputError):
        generation_metrics(np.zeros((0, 16, 16, 16)), r)


def test_surface_points_and_chamfer():
    rng = np.random.default_rng(0)
    cube = np.zeros((16, 16, 16), np.uint8)
    cube[4:12, 4:12, 4:12] = 1
    p = surface_points(cube, 500, rng)
    assert p.shape == (500, 3) and p.dtype == np.float32
    # the marching-cubes surface of voxels 4..11 lies within half a voxel of the faces at 4/16 and 12/16
    assert p.min() >= 4 / 16 - 0.5 / 16 - 1e-6 and p.max() <= 12 / 16 + 0.5 / 16 + 1e-6
    assert surface_points(np.zeros((8, 8, 8)), 10, rng).shape == (0, 3)
    shifted = np.roll(cube, 3, axis=0)
    q, s = surface_points(cube, 500, rng), surface_points(shifted, 500, rng)
    d = chamfer_distances([p, np.zeros((0, 3))], [q, s, np.zeros((0, 3))])
    assert d[0, 0] < 0.005 < 0.02 < d[0, 1]  # sampling noise vs a 3-voxel shift
    assert d[0, 2] == 6.0 and d[1, 2] == 0.0
    m = generation_metrics(np.stack([cube, shifted]), np.stack([cube, shifted]), chamfer=True, n_points=256)
    assert m["chamfer"] == {"cov": 1.0, "mmd": 0.0, "1nna": 0.0, "points": 256}  # same points for same grids


def test_svm_separates_separable_classes(tmp_path):
    vox, labels = _boxes(tmp_path, n=40)
    x = vox.reshape(len(vox), -1).astype(np.float32)
    rep = svm_classify(x[:30], labels[:30], x[30:], labels[30:], class_names=["slab", "column"], folds=3)
    assert rep.accuracy == 1.0 and rep.cv_accuracy == 1.0
    assert rep.per_class == {"slab": 1.0, "column": 1.0}
    assert rep.n_train == 30 and rep.n_test == 10 and rep.feature_dim == 16**3
    assert np.trace(rep.confusion) == 10 and rep.C in DEFAULT_C_GRID
    assert "confusion matrix" in rep.format()


def test_svm_three_gaussian_classes_single_c():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20)) * 5
    y = np.repeat(np.arange(3), 30)
    x = centres[y] + rng.normal(size=(90, 20))
    tr, te = heldout_split(y, 0.3, seed=0)
    rep = svm_classify(x[tr], y[tr], x[te], y[te], class_names=list("abc"), c_grid=[1.0])
    assert rep.accuracy == 1.0 and rep.cv_accuracy is None and rep.C == 1.0
    assert rep.confusion == [[9, 0, 0], [0, 9, 0], [0, 0, 9]]
    with pytest.raises(BadInputError, match="differ in length"):
        svm_classify(x, y, x[:, :5], y, class_names=list("abc"))


def test_limited_data_curve_draws_n_per_class_and_scores_each_draw():
    from gan_core.evaluate import limited_data_curve

    rng = np.random.default_rng(0)
    centres = np.array([[20.0, 0, 0], [0, 20.0, 0], [0, 0, 20.0]])
    y = np.array([0] * 3 + [1] * 10 + [2] * 10)  # class 0 has only 3 training shapes
    x = centres[y] + rng.normal(size=(len(y), 3))
    yt = np.repeat(np.arange(3), 20)
    xt = centres[yt] + rng.normal(size=(60, 3))
    pts = limited_data_curve(x, y, xt, yt, class_names=list("abc"), per_class=[1, 5, None], repeats=3, folds=2)
    assert [p.per_class for p in pts] == [1, 5, None]
    assert [p.n_train for p in pts] == [3, 3 + 5 + 5, 23]  # a class short of N gives all it has
    assert [len(p.accuracies) for p in pts] == [3, 3, 1]  # "all" is one draw
    # centres 28 apart with unit noise: any one shape per class separates every test shape
    assert all(p.mean == 1.0 for p in pts)
    with pytest.raises(BadInputError, match="per-class"):
        limited_data_curve(x, y, xt, yt, class_names=list("abc"), per_class=[0])


def test_limited_data_curve_spread_comes_from_the_draws():
    from gan_core.evaluate import limited_data_curve

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 40)
    x = np.c_[y * 1.0, np.zeros(80)] + rng.normal(size=(80, 2))  # overlapping classes: one shape each is a coin
    yt = np.repeat([0, 1], 100)
    xt = np.c_[yt * 1.0, np.zeros(200)] + rng.normal(size=(200, 2))
    (p,) = limited_data_curve(x, y, xt, yt, class_names=["a", "b"], per_class=[1], repeats=6, seed=0)
    assert len(set(p.accuracies)) > 1 and p.std > 0
    assert p.std == pytest.approx(np.std(p.accuracies)) and p.mean == pytest.approx(np.mean(p.accuracies))
