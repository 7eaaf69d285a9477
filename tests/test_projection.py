"""SketchedPCA: PCA scores plus a CountSketch of the residual, a linear map whose distances estimate the full ones."""

import numpy as np
import pytest

from gan_core.errors import BadInputError
from gan_core.projection import SketchedPCA


def _rows(n, f=600, seed=0):
    rng = np.random.default_rng(seed)
    low = rng.normal(size=(n, 10)) @ np.random.default_rng(9).normal(size=(10, f))  # rank 10 ...
    return (low / np.sqrt(f) + 0.3 * rng.normal(size=(n, f))).astype(np.float32)  # ... plus a full-rank rest


def test_distances_are_unbiased_and_exact_for_a_vector_and_itself():
    x, y = _rows(200), _rows(200, seed=1)
    p = SketchedPCA(10, n_sketch=256, dtype="float32").fit(x)
    assert p.transform(y).shape == (200, 266) and p.components_.shape == (10, 600)
    true = ((y[:100] - y[100:]) ** 2).sum(1)
    est = ((p.transform(y[:100]) - p.transform(y[100:])) ** 2).sum(1)
    assert abs(np.mean(est / true) - 1) < 0.03 and np.std(est / true) < 0.15  # 2 / 256 relative variance
    within = ((p.transform(y[:100])[:, :10] - p.transform(y[100:])[:, :10]) ** 2).sum(1)
    assert np.mean(within / true) < 0.5  # the PCA scores alone miss most of the (noise) distance
    np.testing.assert_array_equal(p.transform(y[:5]), p.transform(y[:5]))
    np.testing.assert_allclose(p.project(y) - p.project(x[:1]), p.project(y - x[:1]), atol=1e-4)  # linear


def test_plain_pca_and_float16_components():
    x = _rows(100)
    p = SketchedPCA(10, n_sketch=0).fit(x)
    assert p.components_.dtype == np.float16 and p.transform(x).shape == (100, 10)
    np.testing.assert_allclose(p.components_.astype(np.float32) @ p.components_.T.astype(np.float32), np.eye(10),
                               atol=2e-3)
    small = SketchedPCA(256, n_sketch=4).fit(x[:20])  # C is capped by the rows
    assert small.components_.shape == (20, 600) and small.n_output_ == 24


def test_from_arrays_checks_that_they_fit():
    p = SketchedPCA(10, n_sketch=32).fit(_rows(50))
    args = (p.mean_, p.components_, p.sketch_bucket_, p.sketch_sign_)
    q = SketchedPCA.from_arrays(*args, n_sketch=32)
    np.testing.assert_array_equal(q.transform(_rows(3, seed=2)), p.transform(_rows(3, seed=2)))
    for i, bad in [(0, p.mean_[:-1]), (1, p.components_[:, :-1]), (2, p.sketch_bucket_ + 32), (3, p.sketch_sign_ * 2),
                   (1, np.full_like(p.components_, np.nan))]:
        with pytest.raises(BadInputError):
            SketchedPCA.from_arrays(*args[:i], bad, *args[i + 1:], n_sketch=32)
    with pytest.raises(BadInputError, match="n_components must be"):
        SketchedPCA(0).fit(_rows(5))
    with pytest.raises(BadInputError, match="at least 2 rows"):
        SketchedPCA(4).fit(_rows(1))
