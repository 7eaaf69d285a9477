"""Synthetic shapes: sizes, orientation (axis 2 up), determinism, and the npz they are saved in."""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.data import VoxelDataset
from gan_core.data.synthetic import (
    CLASSES, box, chair, cylinder, make_synthetic_dataset, save_npz, sphere, table,
)
from gan_core.errors import BadInputError


def test_box_fills_the_requested_block():
    g = box(16, center=(0.5, 0.5, 0.5), size=(0.5, 0.25, 1.0))
    assert g.dtype == np.uint8 and g.shape == (16, 16, 16)
    idx = np.argwhere(g)
    assert idx.min(0).tolist() == [4, 6, 0] and idx.max(0).tolist() == [11, 9, 15]
    assert g.sum() == 8 * 4 * 16


def test_sphere_volume_is_close_to_analytic():
    g = sphere(32, radius=0.4)
    assert g.mean() == pytest.approx(4 / 3 * np.pi * 0.4**3, rel=0.05)
    assert (g == g[::-1]).all() and (g == g.transpose(1, 2, 0)).all()  # symmetric about the centre


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cylinder_runs_along_its_axis(axis):
    g = cylinder(32, radius=0.2, height=0.75, axis=axis)
    extent = np.ptp(np.argwhere(g), axis=0) + 1
    assert extent[axis] == 24 and all(extent[k] <= 13 for k in range(3) if k != axis)
    assert g.mean() == pytest.approx(np.pi * 0.2**2 * 0.75, rel=0.1)


def test_chair_is_upright_seat_legs_and_back():
    g = chair(32)
    per_height = g.sum(axis=(0, 1))  # voxels in each horizontal layer, z = axis 2
    seat_layers = np.flatnonzero(per_height > 100)
    seat_layer = int(seat_layers.max())  # top layer of the seat slab
    assert 0 < seat_layers.min() and seat_layer < 31
    assert per_height[0] > 0, "legs must reach the floor (z index 0)"
    # Below the seat only four separate legs; above it only the back, at the high end of axis 1.
    from scipy import ndimage

    _, n_legs = ndimage.label(g[:, :, 0])
    assert n_legs == 4
    above = np.argwhere(g[:, :, seat_layer + 1 :])
    assert len(above) and above[:, 1].min() > 20


def test_chair_legs_survive_at_16():
    from scipy import ndimage

    g = chair(16)
    assert ndimage.label(g[:, :, 0])[1] == 4
    assert ndimage.label(g)[1] == 1, "a chair is one connected piece"


def test_table_top_and_legs():
    g = table(32)
    per_height = g.sum(axis=(0, 1))
    top = int(per_height.argmax())
    assert per_height[top] > 200 and per_height[0] > 0
    assert per_height[top + 4 :].sum() == 0  # nothing above the top


def test_random_proportions_vary_and_are_reproducible():
    a, b = chair(32, rng=1), chair(32, rng=2)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, chair(32, rng=1))
    assert np.array_equal(table(16, rng=np.random.default_rng(5)), table(16, rng=5))


def test_make_synthetic_dataset_layout_and_determinism():
    vox, labels, classes = make_synthetic_dataset(4, resolution=16, seed=3)
    assert classes == CLASSES
    assert vox.shape == (20, 16, 16, 16) and vox.dtype == np.uint8 and set(np.unique(vox)) <= {0, 1}
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [4] * 5
    assert (vox.reshape(20, -1).sum(1) > 0).all(), "no empty shapes"
    assert len({v.tobytes() for v in vox}) == 20, "jitter makes every shape different"
    again = make_synthetic_dataset(4, resolution=16, seed=3)[0]
    assert np.array_equal(vox, again)
    assert not np.array_equal(vox, make_synthetic_dataset(4, resolution=16, seed=4)[0])


def test_class_subset_and_bad_arguments():
    vox, labels, classes = make_synthetic_dataset(2, resolution=16, classes=["table", "box"])
    assert classes == ["table", "box"] and labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(BadInputError, match="unknown synthetic class 'lamp'"):
        make_synthetic_dataset(1, classes=["lamp"])
    with pytest.raises(BadInputError):
        make_synthetic_dataset(0)
    with pytest.raises(BadInputError):
        box(1)


def test_save_npz_reads_back_through_voxel_dataset(tmp_path, synthetic_set):
    vox, labels, classes = synthetic_set
    path = save_npz(tmp_path / "set.npz", vox, labels, classes)
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["classes", "labels", "voxels"]
        assert f["voxels"].dtype == np.uint8 and f["labels"].dtype == np.int64
        assert f["classes"].dtype.kind == "U"
    ds = VoxelDataset(path)
    assert ds.class_names == classes and len(ds) == len(vox)
    assert np.array_equal(ds.read(np.arange(len(vox))), vox)
    assert [p.name for p in tmp_path.iterdir()] == ["set.npz"], "no temporary file left behind"
