"""The held-out split: stratified counts by hand, disjoint and complete, seeded, and written by gan3d split."""

import json

import numpy as np
import pytest

from gan_core.data import VoxelDataset
from gan_core.data.split import heldout_split
from gan_core.errors import BadInputError
from gan_core.data.dataset import save_voxel_npz
from tests.cli_run import last_json, run_cli


def test_each_class_gives_its_share_and_a_singleton_class_none():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 1 + [3] * 2)
    train, held = heldout_split(labels, fraction=0.2, seed=0)
    # round(0.2 * n): 2 of 10, 1 of 5; a class of one keeps its shape; a class of two gives one (at least one)
    assert [int((labels[held] == c).sum()) for c in range(4)] == [2, 1, 0, 1]
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(len(labels)))
    assert len(np.intersect1d(train, held)) == 0


def test_the_split_depends_on_the_seed_only():
    labels = np.repeat(np.arange(3), 20)
    a, b = heldout_split(labels, 0.25, seed=1), heldout_split(labels, 0.25, seed=1)
    assert np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], heldout_split(labels, 0.25, seed=2)[1])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_a_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(BadInputError, match="fraction"):
        heldout_split(np.zeros(10, int), fraction)


def test_gan3d_split_writes_both_parts_and_the_rows(tmp_path, capsys):
    rng = np.random.default_rng(0)
    vox = (rng.random((30, 16, 16, 16)) > 0.7).astype(np.uint8)
    labels = np.array([0] * 20 + [1] * 10)
    save_voxel_npz(tmp_path / "all.npz", vox, labels, ["a", "b"])
    rc, out, _ = run_cli(capsys, "split", "--data", tmp_path / "all.npz", "--out-dir", tmp_path / "s", "--fraction",
                         "0.3")
    assert rc == 0 and last_json(out)["n_heldout"] == 9  # 6 of 20 + 3 of 10
    rows = json.loads((tmp_path / "s" / "split.json").read_text())["heldout_rows"]
    held = VoxelDataset(tmp_path / "s" / "heldout.npz")
    assert np.array_equal(held.read(np.arange(len(held))), vox[rows])
    assert np.array_equal(held.labels, labels[rows])
    assert len(VoxelDataset(tmp_path / "s" / "train.npz")) == 21
