"""Bad files and values: each is a one-line Gan3dError (never a traceback or a hang), odd but valid ones load.

Focused regressions first; the whole bad-input corpus (tests/reliability_corpus.py) at the end.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from gan_core.errors import BadCheckpointError, BadFileError, BadInputError


# -- voxel sets (VoxelDataset) -----------------------------------------------------------------------------
def _h5_set(path, build):
    with h5py.File(path, "w") as h5:
        build(h5)
    return path


V = np.zeros((2, 16, 16, 16), np.uint8)
MALFORMED_H5 = {
    "voxels a group": (lambda h: h.create_group("voxels"), "no 'voxels' dataset"),
    "voxels 3-d": (lambda h: h.create_dataset("voxels", data=V[0]), r"must be \(N, R, R, R\)"),
    "voxels strings": (lambda h: h.create_dataset("voxels", data=np.full((2, 16, 16, 16), b"a", dtype=object),
                                                  dtype=h5py.string_dtype()), "must be numeric"),
    "labels a group": (lambda h: (h.create_dataset("voxels", data=V), h.create_group("labels")), "not a group"),
    "classes a scalar": (lambda h: (h.create_dataset("voxels", data=V), h.create_dataset("classes", data=5)),
                         "list of names"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_H5))
def test_malformed_hdf5_sets_are_bad_file_errors(tmp_path, name):
    from gan_core.data.dataset import VoxelDataset

    build, message = MALFORMED_H5[name]
    path = _h5_set(tmp_path / "set.h5", build)
    with pytest.raises(BadFileError, match=message) as info:
        VoxelDataset(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_npz_set_with_scalar_classes(tmp_path):
    from gan_core.data.dataset import VoxelDataset

    np.savez(tmp_path / "s.npz", voxels=V, classes=np.array("chair"))
    with pytest.raises(BadFileError, match="'classes' must be a list of names"):
        VoxelDataset(tmp_path / "s.npz")
