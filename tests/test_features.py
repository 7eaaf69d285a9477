"""Discriminator features (the paper's 7168-d vector and the last-layer one) and the HDF5 feature bank."""

import h5py
import numpy as np
import pytest
import torch

from gan_core.config import get_profile
from gan_core.d_features import extract_feature_sets, extract_features, feature_dim
from gan_core.data import VoxelDataset
from gan_core.errors import BadCheckpointError, BadFileError, BadInputError, ProfileMismatchError
from gan_core.features import FAISS_MIN_ROWS, FeatureBank, build_bank, select_backend
from gan_core.models import Discriminator
from gan_core.runtime import load_bank, load_model
from tests.core_data import boxes_npz


def _model(seed: int):
    torch.manual_seed(seed)
    return load_model(profile="tiny16", device="cpu", precision="fp32")


@pytest.fixture
def data(tmp_path):
    return boxes_npz(tmp_path / "boxes.npz", n=20)


@pytest.fixture
def bank(data):
    return build_bank(_model(0), VoxelDataset(data), batch_size=8)


def test_paper64_features_are_the_papers_7168():
    d = Discriminator(get_profile("paper64"))
    x = (np.random.default_rng(0).random((1, 64, 64, 64)) > 0.7).astype(np.uint8)
    f = extract_feature_sets(d, x)
    assert f["paper"].shape == (1, 7168) and f["paper"].dtype == np.float32
    assert f["last"].shape == (1, 32768)
    assert feature_dim("paper64", "paper") == 7168 and feature_dim("paper64", "last") == 32768


def test_fast32_features_and_pooling_rule():
    d = Discriminator(get_profile("fast32")).train()
    x = (np.random.default_rng(1).random((3, 32, 32, 32)) > 0.7).astype(np.uint8)
    paper = extract_features(d, x, kind="paper", batch_size=2)
    assert paper.shape == (3, 3584) == (3, feature_dim("fast32", "paper"))
    assert d.training, "the train/eval flag is restored"
    d.eval()
    with torch.no_grad():
        acts = d.activations(torch.from_numpy(x).float())
    # channel 0 of the first tap, pooled to 2^3: the max of each 8^3 octant of its 16^3 map
    first = acts[0][:, 0].numpy()
    octant = first[:, :8, :8, :8].reshape(3, -1).max(axis=1)
    np.testing.assert_allclose(paper[:, 0], octant, rtol=1e-5)
    np.testing.assert_allclose(extract_features(d, x, kind="last"), acts[-1].flatten(1).numpy(), rtol=1e-5)


def test_inputs_other_sizes_and_bad_shapes():
    d = Discriminator(get_profile("tiny16"))
    rng = np.random.default_rng(2)
    grid32 = rng.random((2, 32, 32, 32)) > 0.6
    assert extract_features(d, grid32).shape == (2, 384)  # bool 32^3 resampled to 16^3
    assert extract_features(d, grid32[0].astype(np.float32)).shape == (1, 384)  # a single float grid
    one = extract_features(d, grid32, batch_size=1)
    np.testing.assert_allclose(one, extract_features(d, grid32, batch_size=64), rtol=1e-5, atol=1e-6)
    for bad in [np.zeros((2, 16, 16, 8)), np.zeros((2, 24, 24, 24)), np.zeros((0, 16, 16, 16)), np.zeros((16, 16))]:
        with pytest.raises(BadInputError):
            extract_features(d, bad)
    with pytest.raises(BadInputError, match="unknown feature kind"):
        extract_features(d, grid32, kind="pooled")


def test_bank_round_trip(bank, data, tmp_path):
    path = bank.save(tmp_path / "bank.h5")
    back = FeatureBank.load(path)
    assert len(back) == len(bank) == 20
    for k in ("paper", "last"):
        assert back.features_[k].dtype == np.float16
        np.testing.assert_array_equal(back.features_[k], bank.features_[k])
    # tiny16: "last" (2048-d) is reduced to 20 PCA scores (all 20 rows) + a 512-d residual sketch; "paper" is not
    assert set(back.projections_) == {"last"} and back.n_features_ == {"paper": 384, "last": 2048}
    assert back.features_["last"].shape == (20, 20 + 512) and back.n_components == 256 and back.n_sketch == 512
    p, q = bank.projections_["last"], back.projections_["last"]
    for name in ("mean_", "components_", "sketch_bucket_", "sketch_sign_"):
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))
    np.testing.assert_array_equal(back.norms_["last"], bank.norms_["last"])
    f = _model(0).features(VoxelDataset(data).read(np.arange(4)), kind="last")
    for metric in ("cosine", "euclidean"):  # the same projection: the same answers (up to BLAS rounding)
        (d1, i1), (d2, i2) = back.query(f, k=3, metric=metric), bank.query(f, k=3, metric=metric)
        np.testing.assert_allclose(d1, d2, rtol=1e-5, atol=1e-6)
        assert (i1[:, 0] == i2[:, 0]).all()
    np.testing.assert_array_equal(back.labels_, bank.labels_)
    np.testing.assert_array_equal(back.source_index_, np.arange(20))
    np.testing.assert_array_equal(back.thumbnails_, bank.thumbnails_)
    assert back.class_names_ == ["slab", "column"] and back.label_name(1) == "column"
    assert back.weights_hash == bank.weights_hash and back.profile == "tiny16" and back.created_ == bank.created_
    assert back.data_name == "boxes.npz" and len(back.data_sha256) == 64
    with h5py.File(path, "r") as h5:
        assert h5.attrs["format"] == "gan3d-bank" and h5.attrs["version"] == 2
        assert h5["class_names"].dtype.kind == "O"  # a string dtype, no pickles
        assert h5["thumbnails"].shape == (20, 32**3 // 8)
        assert h5["projection_last/components"].shape == (20, 2048) and "projection_paper" not in h5
        assert h5["features_last"].shape == (20, 532)  # no full-size "last" rows in the file


def test_full_features_and_version_1_files(data, tmp_path):
    full = build_bank(_model(0), VoxelDataset(data), batch_size=8, n_components=None)
    assert full.projections_ == {} and full.features_["last"].shape == (20, 2048)
    path = full.save(tmp_path / "v1.h5")
    with h5py.File(path, "a") as h5:  # what gan3d wrote before banks were reduced
        h5.attrs["version"] = 1
        for name in ("n_components", "n_sketch", "random_state"):
            del h5.attrs[name]
    old = FeatureBank.load(path)
    assert old.n_components is None and old.projections_ == {}
    np.testing.assert_array_equal(old.features_["last"], full.features_["last"])
    dist, idx = old.query(full.features_["last"][7].astype(np.float32), k=1, metric="euclidean")
    assert idx[0, 0] == 7 and dist[0, 0] == 0


def test_thumbnails_are_the_shapes_at_32(bank, data):
    ds = VoxelDataset(data, resolution=32)
    t = bank.thumbnail(3)
    assert t.shape == (32, 32, 32) and t.dtype == np.uint8
    np.testing.assert_array_equal(t, ds.read([3])[0])


def test_bank_refuses_another_discriminator(bank, data, tmp_path):
    bank.save(tmp_path / "bank.h5")
    same = _model(0)
    load_bank(tmp_path / "bank.h5", same)  # same weights: accepted
    other = _model(1)
    with pytest.raises(ProfileMismatchError) as e:
        load_bank(tmp_path / "bank.h5", other)
    assert str(e.value) == (f"bank was built with another discriminator (hash {bank.weights_hash}, model has "
                            f"{other.weights_hash()}); rebuild it with gan3d features")
    with pytest.raises(ProfileMismatchError):
        bank.query(voxels=np.zeros((1, 16, 16, 16)), model=other)


def test_corrupt_truncated_and_foreign_banks(bank, tmp_path):
    good = bank.save(tmp_path / "bank.h5").read_bytes()
    (tmp_path / "trunc.h5").write_bytes(good[: len(good) // 2])
    (tmp_path / "noise.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    with h5py.File(tmp_path / "foreign.h5", "w") as h5:
        h5["x"] = np.zeros(3)
    for name, msg in [("trunc.h5", "not a readable feature bank"), ("noise.h5", "not a readable feature bank"),
                      ("foreign.h5", "not a gan3d feature bank")]:
        with pytest.raises(BadCheckpointError, match=msg):
            FeatureBank.load(tmp_path / name)
    with h5py.File(tmp_path / "bank.h5", "a") as h5:  # marker intact, a dataset missing
        del h5["labels"]
    with pytest.raises(BadCheckpointError, match="damaged feature bank"):
        FeatureBank.load(tmp_path / "bank.h5")
    for edit in ("components", "norms"):  # a projection that no longer fits its features
        path = bank.save(tmp_path / f"{edit}.h5")
        with h5py.File(path, "a") as h5:
            name = "projection_last/components" if edit == "components" else "norms_last"
            arr = h5[name][()]
            del h5[name]
            h5[name] = arr[:-1]
        with pytest.raises(BadCheckpointError, match="damaged feature bank"):
            FeatureBank.load(path)
    with pytest.raises(BadFileError, match="no such feature bank"):
        FeatureBank.load(tmp_path / "missing.h5")


@pytest.mark.parametrize("kind", ["last", "paper"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_a_bank_shape_retrieves_itself(bank, data, kind, metric):
    ds = VoxelDataset(data)
    vox = ds.read(np.arange(len(ds)))
    dist, idx = bank.query(voxels=vox, model=_model(0), k=3, kind=kind, metric=metric)
    assert dist.shape == idx.shape == (20, 3) and (np.diff(dist, axis=1) >= -1e-6).all()
    for i in range(20):  # the nearest row is the shape itself, or an exact duplicate of it
        assert np.array_equal(vox[idx[i, 0]], vox[i])
    scale = 1e-3 if metric == "cosine" else 1e-2 * np.linalg.norm(_model(0).features(vox[:1], kind=kind))
    assert dist[:, 0].max() < scale
    assert ((kind, metric)) in bank._index  # cached for the next query


def test_query_by_features_and_validation(bank):
    f = bank.features_["paper"][5].astype(np.float32)
    dist, idx = bank.query(f, k=1, kind="paper")
    assert idx.shape == (1, 1) and dist[0, 0] < 1e-5
    with pytest.raises(BadInputError, match="k must be between 1 and the bank size 20"):
        bank.query(f, k=21, kind="paper")
    with pytest.raises(BadInputError, match="query features must be"):
        bank.query(f, k=1, kind="last")
    with pytest.raises(BadInputError, match="unknown metric"):
        bank.query(f, kind="paper", metric="manhattan")
    with pytest.raises(BadInputError, match="voxels together with the model"):
        bank.query(voxels=np.zeros((1, 16, 16, 16)))


def _clustered(n, f, seed):
    """n unit-ish rows in 25 clusters: a rank-40 signal plus isotropic noise that PCA to 32 dims cannot keep."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(40, f))
    centres = np.random.default_rng(98).normal(size=(25, 40))
    z = centres[rng.integers(0, 25, n)] + rng.normal(size=(n, 40))
    return (z @ basis / np.sqrt(f) + 0.05 * rng.normal(size=(n, f))).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_reduced_search_agrees_with_exact_search(metric):
    from sklearn.neighbors import NearestNeighbors

    x, q = _clustered(400, 1500, 0), _clustered(60, 1500, 1)  # bank rows, and queries from outside the bank
    exact_d, exact_i = NearestNeighbors(n_neighbors=5, metric=metric, algorithm="brute").fit(x).kneighbors(q)
    if metric == "cosine":
        exact_d = exact_d.astype(np.float32)
    b = FeatureBank(n_components=32, n_sketch=128).fit({"last": x}, labels=np.zeros(400, int), class_names=["a"])
    assert b.features_["last"].shape == (400, 160)
    dist, idx = b.query(q, k=5, metric=metric)
    def overlap(i):
        return np.mean([len(set(a) & set(e)) / 5 for a, e in zip(i, exact_i)])

    assert overlap(idx) >= 0.9  # 0.94 cosine, 0.92 Euclidean
    assert 0.95 < np.median(dist[:, 0] / exact_d[:, 0]) < 1.05  # the sketch keeps the residual's share
    plain = FeatureBank(n_components=32, n_sketch=0).fit({"last": x}, labels=np.zeros(400, int), class_names=["a"])
    p_dist, p_idx = plain.query(q, k=5, metric=metric)
    assert overlap(p_idx) < 0.85 and np.median(p_dist[:, 0] / exact_d[:, 0]) < 0.9  # PCA alone: 0.79, low
    d_self, i_self = b.query(x[:50], k=1, metric=metric)  # a bank row finds itself, at distance ~0
    assert (i_self[:, 0] == np.arange(50)).all() and d_self.max() < 1e-3 * (1 if metric == "cosine" else 30)


def test_fit_validates():
    feats = {"paper": np.zeros((4, 8), np.float32)}
    with pytest.raises(BadInputError, match="labels must be 4 integers"):
        FeatureBank().fit(feats, labels=np.array([0, 1, 2, 0]), class_names=["a", "b"])
    with pytest.raises(BadInputError, match="disagree on N"):
        FeatureBank().fit({**feats, "last": np.zeros((3, 8))}, labels=np.zeros(4, int), class_names=["a"])
    with pytest.raises(BadInputError, match="float16 range"):
        FeatureBank().fit({"paper": np.full((4, 8), 1e6)}, labels=np.zeros(4, int), class_names=["a"])
    with pytest.raises(BadInputError, match="not fitted"):
        FeatureBank().query(np.zeros(8))
    b = FeatureBank(dtype="float32").fit(feats, labels=np.zeros(4, int), class_names=["a"])
    assert b.features_["paper"].dtype == np.float32 and b.backend_ == "sklearn" and len(b) == 4
    for bad in [{"n_components": 0}, {"n_components": 2.5}, {"n_sketch": -1}]:
        with pytest.raises(BadInputError, match=f"{next(iter(bad))} must be"):
            FeatureBank(**bad).fit(feats, labels=np.zeros(4, int), class_names=["a"])


def test_small_searches_run_on_one_thread(bank):
    from threadpoolctl import threadpool_info

    from gan_core.features.search import ONE_THREAD_WORK, few_threads

    bank.query(bank.features_["paper"][0].astype(np.float32), k=1, kind="paper")  # loads sklearn's OpenMP
    before = [lib["num_threads"] for lib in threadpool_info()]
    with few_threads(ONE_THREAD_WORK):
        assert all(lib["num_threads"] == 1 for lib in threadpool_info())
    with few_threads(ONE_THREAD_WORK + 1):
        assert [lib["num_threads"] for lib in threadpool_info()] == before
    assert [lib["num_threads"] for lib in threadpool_info()] == before


def test_backend_selection():
    assert select_backend(10, "auto", have_faiss=True) == "sklearn"
    assert select_backend(FAISS_MIN_ROWS + 1, "auto", have_faiss=True) == "faiss"
    assert select_backend(FAISS_MIN_ROWS + 1, "auto", have_faiss=False) == "sklearn"
    assert select_backend(10, "faiss", have_faiss=True) == "faiss"
    assert select_backend(FAISS_MIN_ROWS + 1, "sklearn", have_faiss=True) == "sklearn"
    with pytest.raises(BadInputError, match="pip install faiss-cpu"):
        select_backend(10, "faiss", have_faiss=False)
    with pytest.raises(BadInputError, match="unknown backend"):
        select_backend(10, "annoy")


def test_cosine_matches_sklearn_cosine_including_zero_rows():
    from sklearn.metrics.pairwise import cosine_distances

    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 12)).astype(np.float32)
    x[7] = 0.0  # e.g. an empty grid through an untrained D
    b = FeatureBank(dtype="float32").fit({"last": x}, labels=np.zeros(30, int), class_names=["a"])
    q = np.concatenate([rng.normal(size=(4, 12)), x[:2]]).astype(np.float32)
    dist, idx = b.query(q, k=30, kind="last", metric="cosine")
    ref = cosine_distances(q, x)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, idx, axis=1), atol=1e-5)
    np.testing.assert_allclose(dist, np.sort(ref, axis=1), atol=1e-5)  # ascending, as sklearn's cosine ranks
    assert np.allclose(dist[idx == 7], 1.0, atol=1e-6)
