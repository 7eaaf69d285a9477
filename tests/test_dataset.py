"""VoxelDataset over the npz and HDF5 files our writers produce; the writers' atomicity and validation."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from gan_core.data import VoxelDataset
from gan_core.errors import BadFileError, BadInputError
from gan_core.data.dataset import save_voxel_npz, write_h5_dataset
from gan_core.files import atomic_path, atomic_write


def _batches(vox, labels, size):
    for i in range(0, len(vox), size):
        yield vox[i : i + size], labels[i : i + size]


@pytest.fixture
def synthetic_h5(tmp_path, synthetic_set):
    vox, labels, classes = synthetic_set
    path = tmp_path / "synthetic16.h5"
    assert write_h5_dataset(path, _batches(vox, labels, 4), classes=classes) == len(vox)
    return path


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("kind", ["npz", "h5"])
def test_reads_back_exactly(kind, synthetic_npz, synthetic_h5, synthetic_set):
    vox, labels, classes = synthetic_set
    ds = VoxelDataset(synthetic_npz if kind == "npz" else synthetic_h5)
    assert len(ds) == len(vox) and ds.class_names == classes and ds.resolution == 16
    assert np.array_equal(ds.labels, labels)
    order = [7, 0, 14, 7]  # unsorted with a repeat: h5 needs sorted unique reads internally
    assert np.array_equal(ds.read(order), vox[order])
    grid, label = ds[3]
    assert np.array_equal(grid, vox[3]) and label == labels[3]
    ds.close()


@pytest.mark.parametrize("kind", ["npz", "h5"])
def test_chunks_cover_the_positions_in_order(kind, synthetic_npz, synthetic_h5, synthetic_set):
    vox = synthetic_set[0]
    ds = VoxelDataset(synthetic_npz if kind == "npz" else synthetic_h5)
    parts = list(ds.chunks(size=4))
    assert [len(p) for p, _ in parts] == [4, 4, 4, 3]
    assert np.array_equal(np.concatenate([p for p, _ in parts]), np.arange(len(vox)))
    assert np.array_equal(np.concatenate([g for _, g in parts]), vox)
    some = [9, 2, 2, 11]
    (pos, grids), = ds.chunks(some)
    assert np.array_equal(pos, some) and np.array_equal(grids, vox[some])
    counts = (vox > 0).reshape(len(vox), -1).sum(1)
    assert np.array_equal(ds.voxel_counts(), counts) and np.array_equal(ds.voxel_counts(some), counts[some])
    assert ds.voxel_counts([]).shape == (0,)
    ds.close()


@pytest.mark.parametrize("kind", ["npz", "h5"])
def test_class_filter_and_limit(kind, synthetic_npz, synthetic_h5, synthetic_set):
    vox, labels, classes = synthetic_set
    path = synthetic_npz if kind == "npz" else synthetic_h5
    ds = VoxelDataset(path, classes=["chair", "box"])
    assert len(ds) == 6 and set(ds.labels.tolist()) == {classes.index("chair"), classes.index("box")}
    assert np.array_equal(ds.read(range(len(ds))), vox[np.isin(labels, ds.labels)])
    limited = VoxelDataset(path, classes=["table"], limit=2)
    assert len(limited) == 2 and (limited.labels == classes.index("table")).all()
    with pytest.raises(BadInputError, match=r"unknown class 'lamp' in synthetic16\.(npz|h5); known: box, sphere"):
        VoxelDataset(path, classes=["lamp"])
    with pytest.raises(BadInputError, match="--limit must be >= 1"):
        VoxelDataset(path, limit=0)


def test_resample_16_32_roundtrip(synthetic_npz, synthetic_set):
    vox, labels, _ = synthetic_set
    up = VoxelDataset(synthetic_npz, resolution=32).read(range(len(vox)))
    assert up.shape == (len(vox), 32, 32, 32) and up.dtype == np.uint8
    # Up-sampling roughly preserves volume (8x voxels) and the down-sampled result is the original shape.
    ratio = up.reshape(len(vox), -1).sum(1) / (8 * vox.reshape(len(vox), -1).sum(1))
    assert ((ratio > 0.6) & (ratio < 1.4)).all()
    from gan_core.data.resample import resample

    back = resample(up, 16).astype(bool)
    assert all(_iou(b, v.astype(bool)) > 0.85 for b, v in zip(back, vox))


def test_resample_64_to_32_keeps_thin_legs(tmp_path):
    from gan_core.data.synthetic import chair
    from scipy import ndimage

    path = save_voxel_npz(tmp_path / "chairs64.npz", np.stack([chair(64, rng=s) for s in range(3)]))
    down = VoxelDataset(path, resolution=32).read([0, 1, 2])
    for g in down:
        assert ndimage.label(g[:, :, 0])[1] == 4, "all four legs survive down-sampling"


def test_h5_layout(synthetic_h5):
    with h5py.File(synthetic_h5, "r") as h5:
        vox = h5["voxels"]
        assert vox.dtype == np.uint8 and vox.chunks == (1, 16, 16, 16) and vox.compression == "lzf"
        assert h5["labels"].dtype == np.int64
        assert h5["classes"].dtype.kind == "O" and h5py.check_string_dtype(h5["classes"].dtype).encoding == "utf-8"
        assert h5.attrs["resolution"] == 16


def test_h5_streams_with_classes_discovered_on_the_way(tmp_path):
    classes: list[str] = []

    def batches():
        for name in ["stool", "bench", "stool"]:
            if name not in classes:
                classes.append(name)
            yield np.ones((2, 8, 8, 8), np.uint8), np.full(2, classes.index(name))

    path = tmp_path / "stream.h5"
    assert write_h5_dataset(path, batches(), classes=classes, resolution=16) == 6
    ds = VoxelDataset(path)
    assert ds.class_names == ["stool", "bench"] and ds.labels.tolist() == [0, 0, 1, 1, 0, 0]
    assert ds.resolution == 16 and ds.read([5]).all(), "8^3 batches were up-sampled to the stored 16^3"


def test_h5_array_input_and_unicode_classes(tmp_path, synthetic_set):
    vox, labels, _ = synthetic_set
    names = ["boîte", "sphère", "cylindre", "chaise", "table"]
    write_h5_dataset(tmp_path / "a.h5", vox, labels, names)
    assert VoxelDataset(tmp_path / "a.h5").class_names == names


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, synthetic_set):
    vox, labels, classes = synthetic_set
    target = tmp_path / "set.h5"
    write_h5_dataset(target, vox, labels, classes)
    before = target.read_bytes()

    def broken():
        yield vox[:2], labels[:2]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_h5_dataset(target, broken(), classes=classes)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["set.h5"]


def test_atomic_helpers(tmp_path):
    target = tmp_path / "deep" / "dir" / "x.txt"
    atomic_write(target, lambda p: p.write_text("one"))
    assert target.read_text() == "one"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("two")
            raise ValueError("abort")
    assert target.read_text() == "one" and sorted(p.name for p in target.parent.iterdir()) == ["x.txt"]
    with pytest.raises(BadFileError, match="cannot write"):
        atomic_write(tmp_path / "deep", lambda p: p.write_text("x"))  # a directory is in the way


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: save_voxel_npz(p / "a.npz", np.zeros((8, 8, 8))), r"must be \(N, R, R, R\)"),
        (lambda p: save_voxel_npz(p / "a.npz", np.full((1, 8, 8, 8), np.nan)), "NaN"),
        (lambda p: save_voxel_npz(p / "a.npz", np.zeros((1, 4, 4, 4))), r"4\^3 are too small"),
        (lambda p: save_voxel_npz(p / "a.npz", np.zeros((2, 8, 8, 8)), [0, 3], ["a", "b"]), "must index classes"),
        (lambda p: save_voxel_npz(p / "a.npz", np.zeros((2, 8, 8, 8)), [0, 0], ["a", "a"]), "unique"),
        (lambda p: save_voxel_npz(p / "a.npz", np.zeros((1, 8, 8, 8)), labels=[1.5]), "integers"),
        (lambda p: write_h5_dataset(p / "a.h5", iter([])), "nothing to write"),
        (lambda p: write_h5_dataset(p / "a.h5", iter([(np.zeros((2, 8, 8, 8)), [0])])), "labels of shape"),
    ],
)
def test_writers_reject_bad_input(tmp_path, call, message):
    with pytest.raises(BadInputError, match=message):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_extra_arrays_are_stored(tmp_path):
    z = np.random.default_rng(0).normal(size=(2, 200)).astype(np.float32)
    path = save_voxel_npz(tmp_path / "gen.npz", np.random.rand(2, 16, 16, 16), z=z)
    with np.load(path, allow_pickle=False) as f:
        assert np.array_equal(f["z"], z) and f["classes"].tolist() == ["shape"]
    assert len(VoxelDataset(path)) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable npz file"),
        (b"PK\x03\x04 truncated zip", "not a readable npz file"),
    ],
)
def test_dataset_bad_npz(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(BadFileError, match=message):
        VoxelDataset(path)


def test_dataset_bad_files(tmp_path):
    with pytest.raises(BadFileError, match="no such file"):
        VoxelDataset(tmp_path / "missing.h5")
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF garbage")
    with pytest.raises(BadFileError, match="not a readable HDF5 file"):
        VoxelDataset(tmp_path / "bad.h5")
    np.savez(tmp_path / "flat.npz", voxels=np.zeros((2, 4, 4)))
    with pytest.raises(BadFileError, match=r"must be \(N, R, R, R\)"):
        VoxelDataset(tmp_path / "flat.npz")
    with h5py.File(tmp_path / "novox.h5", "w") as h5:
        h5["labels"] = np.zeros(3, np.int64)
    with pytest.raises(BadFileError, match="no 'voxels' dataset"):
        VoxelDataset(tmp_path / "novox.h5")
