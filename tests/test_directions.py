"""Semantic directions (gan_core.directions): GANSpace PCA, naming, class means, slider smoothness, caching."""

from __future__ import annotations

import numpy as np
import pytest

import gan_core.directions as gd
from gan_core.data.synthetic import make_synthetic_dataset
from gan_core.directions import (
    ClassMeans, Direction, PcaParams, class_flip_rate, class_means, first_block, load_directions,
    load_or_build_class_means, load_or_build_pca, name_directions, pca_directions, save_directions,
)
from gan_core.errors import BadFileError, BadInputError
from gan_core.features import FeatureBank

PARAMS = PcaParams(n_samples=200, n_components=4, n_named=2, n_probe=4)


@pytest.fixture(scope="module")
def model(seeded_tiny_model):
    return seeded_tiny_model


@pytest.fixture(scope="module")
def bank(model):
    vox, labels, classes = make_synthetic_dataset(4, resolution=16, seed=2)  # 20 shapes, 5 classes
    feats = {"paper": model.features(vox, kind="paper")}
    return FeatureBank(weights_hash=model.weights_hash(), profile="tiny16", dtype="float32").fit(
        feats, labels=labels, class_names=classes, thumbnails=vox)


@pytest.fixture(scope="module")
def dirs(model):
    return pca_directions(model, PARAMS)


def test_pca_directions_are_unit_vectors_ordered_by_explained_variance(dirs, model):
    assert [d.name for d in dirs] == ["PC1", "PC2", "PC3", "PC4"]
    vecs = np.stack([d.vector for d in dirs])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    explained = [d.explained for d in dirs]
    assert explained == sorted(explained, reverse=True) and 0 < sum(explained) <= 1
    assert all(d.span == gd.PCA_SPAN and d.kind == "pca" for d in dirs)


def test_the_first_direction_moves_early_activations_more_than_random_ones(dirs, model):
    g = gd._private_generator(model)
    z = model.sample_z(64, seed=5)
    base = first_block(g, z)

    def moved(v: np.ndarray) -> float:
        return float(np.linalg.norm(first_block(g, z + 2.0 * v) - base, axis=1).mean())

    rng = np.random.default_rng(0)
    randoms = [moved((r / np.linalg.norm(r)).astype(np.float32)) for r in rng.standard_normal((8, 32))]
    assert moved(dirs[0].vector) > np.median(randoms)


def test_a_direction_is_named_after_the_classes_it_moves_shapes_towards(model, bank, dirs, monkeypatch):
    names = bank.class_names_

    def fake_effects(_model, _bank, z):
        plus = float(np.mean(z @ dirs[0].vector)) > 0  # probes moved along PC1 towards +
        shares = np.zeros(len(names))
        shares[names.index("chair") if plus else names.index("box")] = 1.0
        return {"shares": shares.tolist(), "volume": 2.0 if plus else 1.0, "height": 1.0, "width": 1.0, "depth": 1.0}

    monkeypatch.setattr(gd, "_effects", fake_effects)
    named = name_directions(model, bank, [dirs[0]], n_probe=3)
    assert named[0].name == "PC1: \u2212 box / + chair"
    assert named[0].effects["volume"] == pytest.approx(1.0)  # +100% volume from - to +
    np.testing.assert_array_equal(named[0].vector, dirs[0].vector)
    monkeypatch.setattr(gd, "_effects", lambda *a: {"shares": [0.2] * 5, "volume": 1, "height": 1, "width": 1,
                                                   "depth": 1})
    assert name_directions(model, bank, [dirs[1]], n_probe=3)[0].name == "PC2"  # nothing explains it


def test_effects_measure_real_shapes(model, bank):
    e = gd._effects(model, bank, model.sample_z(3, seed=0))
    assert len(e["shares"]) == 5 and sum(e["shares"]) == pytest.approx(1.0)
    assert 0 <= e["height"] <= 16 and 0 <= e["volume"] <= 16**3


def test_class_means_and_class_directions(model, bank):
    means = class_means(model, bank, per_class=2, steps=2, pool=8, seed=0)
    assert means.means.shape == (5, 32) and list(means.counts) == [2] * 5 and np.all(means.iou >= 0)
    d = means.direction("box", "chair")
    np.testing.assert_allclose(np.linalg.norm(d.vector), 1.0, atol=1e-5)
    gap = np.linalg.norm(means.means[3] - means.means[0])
    assert d.name == "box \u2192 chair" and d.kind == "class" and d.span == pytest.approx(gd.CLASS_SPAN * gap)
    np.testing.assert_allclose(d.vector * gap, means.means[3] - means.means[0], atol=1e-4)
    with pytest.raises(BadInputError, match="unknown class 'sofa'"):
        means.direction("box", "sofa")
    with pytest.raises(BadInputError):
        class_means(model, bank, per_class=0)


def test_default_pairs_keep_only_classes_with_projected_shapes():
    m = ClassMeans(np.zeros((3, 4)), np.array([2, 2, 0]), np.zeros(3), ["chair", "sofa", "table"])
    assert m.default_pairs() == [("chair", "sofa")]
    with pytest.raises(BadInputError, match="no projected shapes"):
        m.direction("chair", "table")


def test_flip_rate_counts_class_changes_between_slider_steps(model, bank, dirs, monkeypatch):
    z = model.sample_z(2, seed=0)
    flat = Direction("still", dirs[0].vector, 0.0)
    assert np.all(class_flip_rate(model, bank, z, flat, steps=5) == 0)  # span 0: the same shape at every step
    monkeypatch.setattr(bank, "predict", lambda f, **k: np.arange(len(f)) % 2)  # alternating classes
    np.testing.assert_allclose(class_flip_rate(model, bank, z, dirs[0], steps=5), [1.0, 1.0])
    monkeypatch.setattr(bank, "predict", lambda f, **k: (np.arange(len(f)) >= 3).astype(int))  # one change
    np.testing.assert_allclose(class_flip_rate(model, bank, z, dirs[0], steps=5), [0.25, 0.25])


def test_save_load_round_trip(tmp_path, dirs):
    means = ClassMeans(np.ones((2, 32), np.float32), np.array([3, 1]), np.array([0.5, 0.4], np.float32), ["a", "b"])
    named = [Direction("PC1: + a", dirs[0].vector, 3.0, "pca", 0.4, {"volume": 0.1})] + dirs[1:]
    p = save_directions(tmp_path / "d.npz", named, means)
    back, back_means = load_directions(p)
    assert [d.name for d in back] == [d.name for d in named] and back[0].effects == {"volume": 0.1}
    np.testing.assert_array_equal(back[2].vector, named[2].vector)
    assert back_means.class_names == ["a", "b"] and list(back_means.counts) == [3, 1]
    assert load_directions(save_directions(tmp_path / "e.npz", dirs))[1] is None
    (tmp_path / "bad.npz").write_bytes(b"zzz")
    with pytest.raises(BadFileError):
        load_directions(tmp_path / "bad.npz")


def test_directions_are_cached(tmp_path, model, bank, monkeypatch):
    calls = []
    real = gd.pca_directions
    monkeypatch.setattr(gd, "pca_directions", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = load_or_build_pca(model, bank, PARAMS, cache=tmp_path)
    again = load_or_build_pca(model, bank, PARAMS, cache=tmp_path)
    assert len(calls) == 1 and [d.name for d in first] == [d.name for d in again]
    np.testing.assert_array_equal(first[0].vector, again[0].vector)
    load_or_build_pca(model, None, PARAMS, cache=tmp_path)  # without a bank: unnamed, cached apart
    assert len(calls) == 2
    means = load_or_build_class_means(model, bank, per_class=1, steps=1, cache=tmp_path)
    again = load_or_build_class_means(model, bank, per_class=1, steps=1, cache=tmp_path)
    np.testing.assert_array_equal(means.means, again.means)
    assert len(list(tmp_path.glob("directions-*.npz"))) == 3


def test_runtime_gives_the_app_cached_directions(tmp_path, model, bank):
    from dataclasses import asdict

    from gan_core import runtime

    dirs = runtime.semantic_directions(model, bank, cache=tmp_path, **asdict(PARAMS))
    assert len(dirs) == PARAMS.n_components and dirs[0].name.startswith("PC1")
    means = runtime.class_directions(model, bank, per_class=1, steps=0, cache=tmp_path)
    assert means.direction("box", "table").kind == "class"
