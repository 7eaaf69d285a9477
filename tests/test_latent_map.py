"""The latent map (gan_core.latent_map) and the bank methods it rests on (search_rows, predict)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from gan_core.data.synthetic import make_synthetic_dataset
from gan_core.errors import BadFileError, BadInputError
from gan_core.features import FeatureBank, pack_voxels
from gan_core.latent_map import (
    LatentMap, MapParams, build_map, class_colours, load_or_build_map, map_key, place_shapes, render_png, write_csv,
)
from gan_core.runtime import load_model

PARAMS = MapParams(n_samples=10, seed=0, n_pca=8, perplexity=5)


@pytest.fixture(scope="module")
def model(seeded_tiny_model):
    return seeded_tiny_model


@pytest.fixture(scope="module")
def shapes():
    return make_synthetic_dataset(6, resolution=16, seed=1)  # 30 shapes, 5 classes


@pytest.fixture(scope="module")
def bank(model, shapes):
    vox, labels, classes = shapes
    feats = {k: model.features(vox, kind=k) for k in ("paper", "last")}
    return FeatureBank(weights_hash=model.weights_hash(), profile="tiny16", dtype="float32", n_components=4,
                       n_sketch=8).fit(feats, labels=labels, class_names=classes, thumbnails=vox)


@pytest.fixture(scope="module")
def lmap(model, bank):
    return build_map(model, bank, PARAMS)


def test_search_rows_are_the_rows_query_searches(model, bank, shapes):
    vox = shapes[0]
    rows = bank.search_rows(kind="paper")
    q = bank.search_rows(model.features(vox[:3], kind="paper"), kind="paper")
    assert rows.shape == (30, bank.features_["paper"].shape[1] + 1) and q.shape == (3, rows.shape[1])
    np.testing.assert_allclose(q, rows[:3], atol=1e-4)  # a bank shape's features map onto its own row
    f5 = model.features(vox[5:6], kind="paper")
    _, idx = bank.query(f5, k=3, kind="paper")
    d = ((rows - bank.search_rows(f5, kind="paper")) ** 2).sum(1)
    np.testing.assert_array_equal(np.argsort(d)[:3], idx[0])
    with pytest.raises(BadInputError, match="metric"):
        bank.search_rows(kind="paper", metric="manhattan")


def test_predict_votes_among_the_nearest_bank_shapes(model, bank, shapes):
    vox, labels, _ = shapes
    feats = model.features(vox, kind="paper")
    np.testing.assert_array_equal(bank.predict(feats, k=1), labels)  # each shape's nearest is itself
    _, idx = bank.query(feats, k=5, kind="paper")
    votes = bank.labels_[idx]  # (30, 5)
    got = bank.predict(feats, k=5)
    for row, g in zip(votes, got):
        counts = np.bincount(row, minlength=len(bank.class_names_))
        assert counts[g] == counts.max()
        tied = np.flatnonzero(counts == counts.max())
        assert g == next(c for c in row if c in tied)  # a tie goes to the nearer shapes' class


def test_map_holds_bank_and_samples_and_places_a_bank_shape_on_itself(model, bank, shapes, lmap):
    n = len(bank) + PARAMS.n_samples
    assert lmap.coords.shape == (n, 2) and lmap.labels.shape == (n,) and np.isfinite(lmap.coords).all()
    np.testing.assert_array_equal(lmap.labels[:len(bank)], bank.labels_)
    assert lmap.source(0) == ("bank", 0) and lmap.source(len(bank) + 2) == ("sample", 2)
    np.testing.assert_allclose(lmap.sample_z, model.sample_z(PARAMS.n_samples, seed=0))
    sample = model.generate(lmap.sample_z, use_cache=False)[2:3]  # 16^3; thumbnails are 32^3, as the bank's
    np.testing.assert_array_equal(lmap.sample_thumbnail(2).reshape(-1), np.unpackbits(pack_voxels(sample, 32)[0]))
    xy = place_shapes(lmap, bank, model, shapes[0][[4, 17]])
    np.testing.assert_allclose(xy, lmap.coords[[4, 17]], atol=1e-3 * np.ptp(lmap.coords))
    with pytest.raises(BadInputError):
        lmap.source(n)


def test_a_new_shape_lands_among_its_nearest_map_points(lmap):
    rng = np.random.default_rng(0)
    row = lmap.pca_mean + rng.normal(size=lmap.pca_mean.shape).astype(np.float32) * 0.01
    xy = lmap.place_rows(row)[0]
    p = (row - lmap.pca_mean) @ lmap.pca_components.T
    near = np.argsort(((lmap.points - p) ** 2).sum(1))[:5]
    lo, hi = lmap.coords[near].min(0), lmap.coords[near].max(0)
    assert np.all(xy >= lo - 1e-4) and np.all(xy <= hi + 1e-4)  # a weighted mean of its 5 neighbours
    with pytest.raises(BadInputError):
        lmap.place_rows(np.zeros(3))


def test_tsne_keeps_neighbours_closer_than_random_pairs(lmap):
    d_hi = ((lmap.points[:, None] - lmap.points[None]) ** 2).sum(-1)
    np.fill_diagonal(d_hi, np.inf)
    nn = d_hi.argmin(1)
    d2 = np.linalg.norm(lmap.coords[:, None] - lmap.coords[None], axis=-1)
    assert d2[np.arange(len(nn)), nn].mean() < 0.5 * d2[np.triu_indices(len(nn), 1)].mean()


def test_save_load_round_trip_and_damaged_files(tmp_path, lmap):
    p = lmap.save(tmp_path / "m.npz")
    back = LatentMap.load(p)
    np.testing.assert_array_equal(back.coords, lmap.coords)
    np.testing.assert_array_equal(back.sample_thumbnails, lmap.sample_thumbnails)
    assert back.params == lmap.params and back.class_names == lmap.class_names and back.key == lmap.key
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(BadFileError, match="not a readable gan3d-map file"):
        LatentMap.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "foreign.npz", coords=np.zeros((2, 2)))
    with pytest.raises(BadFileError):
        LatentMap.load(tmp_path / "foreign.npz")


def test_maps_are_cached_by_bank_generator_and_parameters(tmp_path, model, bank, lmap, monkeypatch):
    import gan_core.latent_map as lm

    calls = []
    real = lm.build_map
    monkeypatch.setattr(lm, "build_map", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = load_or_build_map(model, bank, PARAMS, cache=tmp_path)
    again = load_or_build_map(model, bank, PARAMS, cache=tmp_path)
    assert len(calls) == 1 and (tmp_path / f"map-{first.key}.npz").is_file()
    np.testing.assert_array_equal(first.coords, again.coords)
    other = MapParams(n_samples=4, seed=1, n_pca=8, perplexity=5)
    assert map_key(model, bank, other) != first.key
    (tmp_path / f"map-{first.key}.npz").write_bytes(b"damaged")
    load_or_build_map(model, bank, PARAMS, cache=tmp_path)
    assert len(calls) == 2  # a damaged cache is rebuilt


def test_csv_and_png(tmp_path, lmap):
    from PIL import Image

    rows = list(csv.DictReader(open(write_csv(lmap, tmp_path / "m.csv"), encoding="utf-8")))
    assert len(rows) == len(lmap) and rows[-1]["source"] == "sample" and rows[0]["source"] == "bank"
    assert rows[3]["class"] == lmap.class_names[int(lmap.labels[3])]
    assert float(rows[7]["x"]) == pytest.approx(float(lmap.coords[7, 0]), abs=1e-3)
    png = render_png(lmap, tmp_path / "m.png", path_xy=lmap.coords[:4], marks=[("current", lmap.coords[0])])
    with Image.open(png) as im:
        assert im.size[0] > 400 and im.size[1] > 400
    assert len(set(class_colours(12))) == 12


def test_bad_parameters_and_a_foreign_bank(model, bank):
    with pytest.raises(BadInputError, match="perplexity"):
        build_map(model, bank, MapParams(perplexity=0))
    with pytest.raises(BadInputError, match="kind"):
        build_map(model, bank, MapParams(kind="middle"))
    from gan_core.errors import ProfileMismatchError

    other = load_model(profile="tiny16", device="cpu", precision="fp32")
    with pytest.raises(ProfileMismatchError):
        build_map(other, bank, PARAMS)


def test_runtime_gives_the_app_cached_maps_and_placement(tmp_path, model, bank, shapes):
    from dataclasses import asdict

    from gan_core import runtime

    kw = asdict(PARAMS)
    assert runtime.latent_map(model, bank, build=False, cache=tmp_path, **kw) is None  # not built yet
    built = runtime.latent_map(model, bank, cache=tmp_path, **kw)
    again = runtime.latent_map(model, bank, build=False, cache=tmp_path, **kw)
    np.testing.assert_array_equal(again.coords, built.coords)
    xy = runtime.place_on_map(built, bank, model, shapes[0][:2])
    np.testing.assert_allclose(xy, built.coords[:2], atol=1e-3 * np.ptp(built.coords))
    assert built.colours() == class_colours(5)
