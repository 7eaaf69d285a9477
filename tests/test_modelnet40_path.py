"""ModelNet40's path, end to end on a small synthetic stand-in: a <class>/<split>/<file>.off tree of 40 classes
-> gan3d convert (train and test separately) -> gan3d split -> gan3d classify, as the README documents."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gan_core.data import VoxelDataset
from tests.cli_run import last_json, run_cli

N_CLASSES = 40


def _write_box_off(path, size) -> None:
    """A closed box mesh centred at the origin, in OFF (ModelNet40's format)."""
    sx, sy, sz = (s / 2 for s in size)
    v = [(x, y, z) for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    lines = ["OFF", f"{len(v)} {len(tris)} 0"] + [f"{x} {y} {z}" for x, y, z in v] + [f"3 {a} {b} {c}" for a, b, c in tris]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def modelnet40(tmp_path_factory):
    """40 classes, each a box of its own proportions (the largest side fills the grid after normalisation):
    two training shapes and one test shape per class, as ModelNet40/<class>/{train,test}/<class>_NNNN.off."""
    root = tmp_path_factory.mktemp("ModelNet40")
    sizes = [s for s in itertools.product((0.15, 0.4, 0.7, 1.0), repeat=3) if max(s) == 1.0][:N_CLASSES]
    assert len(sizes) == 37  # products with a 1.0 side; top up with three more proportions
    sizes += [(1.0, 0.25, 0.55), (0.55, 1.0, 0.25), (0.25, 0.55, 1.0)]
    for k, size in enumerate(sizes):
        name = f"class{k:02d}"
        for split, count in (("train", 2), ("test", 1)):
            (root / name / split).mkdir(parents=True)
            for i in range(count):
                _write_box_off(root / name / split / f"{name}_{i:04d}.off", size)
    return root


@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")  # 40 classes, 80 shapes
def test_modelnet40_tree_converts_splits_and_classifies(modelnet40, tmp_path, capsys):
    classes = sorted(p.name for p in modelnet40.iterdir())
    for split in ("train", "test"):
        rc, out, err = run_cli(capsys, "convert", *[modelnet40 / c / split for c in classes], "--label-from-dir",
                               "--resolution", 16, "--out", tmp_path / f"mn40_{split}.h5")
        assert rc == 0, err
    train, test = VoxelDataset(tmp_path / "mn40_train.h5"), VoxelDataset(tmp_path / "mn40_test.h5")
    assert train.class_names == test.class_names == classes and len(train) == 80 and len(test) == 40
    assert np.array_equal(np.bincount(train.labels), np.full(N_CLASSES, 2))
    rc, out, _ = run_cli(capsys, "split", "--data", tmp_path / "mn40_train.h5", "--out-dir", tmp_path / "split",
                         "--fraction", 0.5)
    assert rc == 0 and last_json(out)["n_heldout"] == N_CLASSES  # one of each class's two
    rc, out, _ = run_cli(capsys, "classify", "--raw-voxels", "--train", tmp_path / "mn40_train.h5", "--test",
                         tmp_path / "mn40_test.h5", "--folds", 2, "--json")
    report = last_json(out)
    assert rc == 0 and report["n_test"] == 40 and len(report["per_class"]) == N_CLASSES
    assert report["accuracy"] >= 0.9  # each test box is its class's training box: near-perfect, chance is 0.025
