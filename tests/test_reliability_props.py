"""Property-based tests (hypothesis) of the importers, the writers and the mesher: round trips hold for any
grid, resampling keeps shape, binarity, emptiness and order, and any grid gives a mesh or an empty one,
never an exception."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gan_core.errors import BadInputError
from gan_core.voxel_checks import MIN_GRID

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def grids(draw, min_side=1, max_side=12, dtypes=(np.uint8, np.bool_)):
    d = draw(st.integers(min_side, max_side))
    dtype = draw(st.sampled_from(dtypes))
    density = draw(st.floats(0, 1))
    seed = draw(st.integers(0, 2**32 - 1))
    g = np.random.default_rng(seed).random((d, d, d)) < density
    return g.astype(dtype)


@st.composite
def stacks(draw, max_n=4, min_side=1, max_side=10):
    d = draw(st.integers(min_side, max_side))
    n = draw(st.integers(1, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    return (np.random.default_rng(seed).random((n, d, d, d)) < draw(st.floats(0, 1))).astype(np.uint8)


# -- round trips -------------------------------------------------------------------------------------------
@FAST
@given(grid=grids(max_side=20))
def test_binvox_round_trip(tmp_path_factory, grid):
    from gan_core.data.binvox import read_binvox, write_binvox

    path = tmp_path_factory.mktemp("bv") / "g.binvox"
    write_binvox(path, grid)
    back = read_binvox(path)
    assert back.dtype == np.uint8 and np.array_equal(back, grid.astype(np.uint8))


@FAST
@given(grid=grids())
def test_binvox_of_float_probabilities_thresholds_at_half(tmp_path_factory, grid):
    from gan_core.data.binvox import read_binvox, write_binvox

    probs = np.where(grid > 0, 0.75, 0.25).astype(np.float32)
    path = tmp_path_factory.mktemp("bv") / "p.binvox"
    write_binvox(path, probs)
    assert np.array_equal(read_binvox(path), grid.astype(np.uint8))


@FAST
@given(vox=stacks(min_side=MIN_GRID, max_side=16), data=st.data())
def test_npz_and_h5_round_trip(tmp_path_factory, vox, data):
    from gan_core.data.dataset import VoxelDataset
    from gan_core.data.importers import load_voxels
    from gan_core.data.dataset import save_voxel_npz, write_h5_dataset

    d = tmp_path_factory.mktemp("set")
    labels = np.arange(len(vox)) % 2
    save_voxel_npz(d / "s.npz", vox, labels, ["a", "b"])
    write_h5_dataset(d / "s.h5", vox, labels, ["a", "b"])
    i = data.draw(st.integers(0, len(vox) - 1))
    for name in ("s.npz", "s.h5"):
        assert np.array_equal(load_voxels(d / name, None, index=i), vox[i]), name
        if vox.shape[1] == 16:  # VoxelDataset keeps the stored size only at the supported resolutions
            ds = VoxelDataset(d / name)
            assert np.array_equal(ds.read(np.arange(len(vox))), vox) and list(ds.labels) == list(labels)
            ds.close()


@FAST
@given(grid=grids(min_side=MIN_GRID, dtypes=(np.uint8, np.bool_, np.float32, np.int16)))
def test_exported_voxels_load_back(tmp_path_factory, grid):
    from gan_core.data.importers import load_voxels
    from gan_core.mesh import export_voxels

    d = tmp_path_factory.mktemp("ex")
    want = (grid > 0.5).astype(np.uint8)
    for suffix in (".npy", ".npz", ".binvox"):
        export_voxels(grid, d / f"g{suffix}")
        assert np.array_equal(load_voxels(d / f"g{suffix}", None), want), suffix


# -- resampling --------------------------------------------------------------------------------------------
@FAST
@given(grid=grids(min_side=2, max_side=24), r=st.sampled_from([4, 8, 16]))
def test_match_resolution_keeps_shape_binarity_and_emptiness(grid, r):
    from gan_core.data.importers import match_resolution

    out = match_resolution(grid.astype(np.uint8), r)
    assert out.shape == (r, r, r) and out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    if not grid.any():
        assert not out.any()


@FAST
@given(grid=grids(min_side=2, max_side=16), r=st.sampled_from([4, 8, 16]), seed=st.integers(0, 2**16))
def test_resampling_is_monotone(grid, r, seed):
    """A shape inside another stays inside it at any resolution (trilinear weights and block votes are
    non-negative)."""
    from gan_core.data.importers import match_resolution

    smaller = grid.astype(bool) & (np.random.default_rng(seed).random(grid.shape) < 0.7)
    a, b = match_resolution(smaller.astype(np.uint8), r), match_resolution(grid.astype(np.uint8), r)
    assert np.all(a <= b)


@FAST
@given(vox=stacks(max_side=8), f=st.sampled_from([2, 4]))
def test_down_after_block_up_is_identity(vox, f):
    from gan_core.data.resample import resample

    big = vox.repeat(f, 1).repeat(f, 2).repeat(f, 3)
    assert np.array_equal(resample(big, vox.shape[1]), vox)
    full = np.ones_like(vox)
    assert resample(full, vox.shape[1] * f).all() and not resample(0 * full, vox.shape[1] * f).any()


@FAST
@given(r=st.integers(1, 40), target=st.integers(1, 40))
def test_resample_refuses_non_integer_factors_cleanly(r, target):
    from gan_core.data.resample import resample

    assume(r % target and target % r)
    with pytest.raises(BadInputError, match="not an integer factor"):
        resample(np.zeros((r, r, r), np.uint8), target)


# -- meshing -----------------------------------------------------------------------------------------------
finite_levels = st.floats(-2, 2, allow_nan=False)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # e.g. 'overflow encountered in cast' on the user's stderr
@settings(max_examples=60, deadline=None)
@given(grid=hnp.arrays(st.sampled_from([np.uint8, np.bool_, np.float32, np.float64, np.int64]),
                       hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9)),
       level=finite_levels, keep=st.booleans())
@example(grid=np.zeros((1, 1, 1), np.uint8), level=-3.54699384434684e-206, keep=True)  # 0 - level underflowed to 0
def test_any_grid_gives_a_mesh_or_an_empty_one(grid, level, keep):
    from gan_core.mesh import voxels_to_cubes, voxels_to_mesh

    if grid.dtype.kind == "f":
        grid = np.nan_to_num(grid, nan=0.0, posinf=1e30, neginf=-1e30)
    mesh = voxels_to_mesh(grid, level=level, largest_component=keep)
    cubes = voxels_to_cubes(grid, level=level)
    occupied = bool((grid > level).any())
    assert (mesh.n_cells > 0) == occupied and (cubes.n_cells > 0) == occupied
    if occupied:
        pts = np.asarray(mesh.points)
        # the iso-surface lies within one voxel of the occupied centres (exactly on the grid's boundary
        # for 0/1 grids at level 0.5; further out when values exceed the level by more)
        assert np.isfinite(pts).all() and np.abs(pts).max() <= 0.5 + 1 / max(grid.shape) + 1e-4
        assert np.abs(np.asarray(cubes.points)).max() <= 0.5 + 1e-4


@FAST
@given(grid=grids(max_side=10))
def test_largest_component_is_one_connected_piece_of_the_input(grid):
    from scipy import ndimage

    from gan_core.mesh import largest_component

    out = largest_component(grid)
    assert not np.any(out & ~grid.astype(bool))
    labels, n = ndimage.label(grid, structure=np.ones((3, 3, 3)))
    assert ndimage.label(out, structure=np.ones((3, 3, 3)))[1] == min(n, 1)
    if n:
        assert out.sum() == np.bincount(labels.ravel())[1:].max()


@pytest.mark.parametrize("grid", [np.full((4, 4, 4), np.nan), np.full((4, 4, 4), np.inf), np.zeros((0, 4, 4)),
                                  np.zeros((4, 4)), np.full((4, 4, 4), "x")], ids=["nan", "inf", "empty", "2d", "str"])
def test_bad_grids_are_bad_input_errors(grid):
    from gan_core.mesh import export_voxels, voxels_to_cubes, voxels_to_mesh

    for fn in (voxels_to_mesh, voxels_to_cubes):
        with pytest.raises(BadInputError):
            fn(grid)
    with pytest.raises(BadInputError):
        export_voxels(grid, "unused.npy")


@pytest.mark.parametrize("grid, level", [
    (np.array([[[8.6e-161]]]), 0.0),  # found by hypothesis: above the level in float64, 0 in float32
    (np.array([[[0.5000000001]]]), 0.5),
    (np.full((3, 3, 3), 2**40 + 1, np.int64), float(2**40)),
], ids=["tiny-above-zero", "hair-above-half", "int64-near-level"])
def test_values_a_hair_above_the_level_still_mesh(grid, level):
    from gan_core.mesh import voxels_to_mesh

    assert voxels_to_mesh(grid, level=level).n_cells > 0
