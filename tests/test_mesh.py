"""voxels_to_mesh / voxels_to_cubes / largest_component and the exporters."""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.data.importers import load_voxels
from gan_core.data.mesh_readers import read_mesh
from gan_core.data.synthetic import box, chair, sphere
from gan_core.errors import BadInputError
from gan_core.mesh import export_mesh, export_voxels, largest_component, voxels_to_cubes, voxels_to_mesh


def _soft_sphere(r: int, radius: float) -> np.ndarray:
    """Occupancy that ramps across one voxel at the sphere surface, like a generator's output."""
    x = (np.arange(r) + 0.5) / r - 0.5
    d = np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2)
    return np.clip(0.5 + (radius - d) * r, 0, 1).astype(np.float32)


def test_sphere_surface_is_closed_with_analytic_area():
    mesh = voxels_to_mesh(_soft_sphere(32, 0.35))
    assert mesh.is_manifold and mesh.n_open_edges == 0
    assert mesh.area == pytest.approx(4 * np.pi * 0.35**2, rel=0.02)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.35**3, rel=0.03)
    assert np.allclose(mesh.center, 0, atol=1e-3)


def test_binary_sphere_volume_and_outward_faces():
    mesh = voxels_to_mesh(sphere(32, radius=0.4))
    assert mesh.n_open_edges == 0
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.4**3, rel=0.03)
    # Staircase surfaces are longer than the sphere's; smoothing brings the area towards it.
    smooth = voxels_to_mesh(sphere(32, radius=0.4), smooth_iterations=30)
    exact = 4 * np.pi * 0.4**2
    assert abs(smooth.area - exact) < abs(mesh.area - exact) and smooth.n_open_edges == 0
    normals = mesh.compute_normals(cell_normals=True, point_normals=False, auto_orient_normals=False)
    outward = (normals.cell_data["Normals"] * normals.cell_centers().points).sum(1) > 0
    assert outward.all()
    radial = mesh.points / np.linalg.norm(mesh.points, axis=1, keepdims=True)
    assert ((mesh.point_data["Normals"] * radial).sum(1) > 0.5).all(), "point normals point outward"


def test_largest_component_drops_islands():
    big = box(32, center=(0.3, 0.3, 0.3), size=(0.4, 0.4, 0.4))
    small = box(32, center=(0.8, 0.8, 0.8), size=(0.2, 0.2, 0.2))
    grid = big | small
    assert not (big & small).any()
    big_volume, small_volume = voxels_to_mesh(big).volume, voxels_to_mesh(small).volume
    assert voxels_to_mesh(grid).volume == pytest.approx(big_volume, rel=1e-6)
    assert voxels_to_mesh(grid, largest_component=False).volume == pytest.approx(big_volume + small_volume, rel=1e-6)
    mask = largest_component(grid)
    assert mask.dtype == bool and np.array_equal(mask, big.astype(bool))


def test_largest_component_on_probabilities_and_connectivity():
    grid = np.zeros((8, 8, 8), np.float32)
    grid[1:4, 1:4, 1:4] = 0.9
    grid[4, 4, 4] = 0.8  # touches the block only at a corner
    grid[6, 6, 0] = 0.7  # a separate speck
    assert largest_component(grid > 0.5).sum() == 28  # 26-connected: the corner voxel belongs
    assert largest_component(grid > 0.5, connectivity=6).sum() == 27
    mesh = voxels_to_mesh(grid)
    assert mesh.bounds[4] > -0.4, "the speck at z index 0 was dropped before meshing"
    with pytest.raises(BadInputError, match="connectivity"):
        largest_component(grid > 0.5, connectivity=4)


def test_empty_grid_gives_empty_mesh():
    assert voxels_to_mesh(np.zeros((16, 16, 16), np.uint8)).n_points == 0
    assert voxels_to_mesh(np.full((8, 8, 8), 0.4, np.float32)).n_cells == 0
    assert voxels_to_cubes(np.zeros((16, 16, 16))).n_cells == 0
    assert largest_component(np.zeros((4, 4, 4), bool)).sum() == 0


def test_frame_border_and_spacing():
    full = np.ones((16, 16, 16), np.uint8)
    mesh = voxels_to_mesh(full)
    assert mesh.n_open_edges == 0, "padding closes a shape that fills the grid"
    assert np.allclose(mesh.bounds, [-0.5, 0.5] * 3)
    assert np.allclose(voxels_to_mesh(full, spacing=1.0).bounds, [-8, 8] * 3)
    assert np.allclose(voxels_to_cubes(full).bounds, [-0.5, 0.5] * 3)
    # Both display modes place a voxel in the same spot.
    one = np.zeros((16, 16, 16), np.uint8)
    one[3, 7, 12] = 1
    assert np.allclose(voxels_to_mesh(one).center, voxels_to_cubes(one).center, atol=1e-6)


def test_cubes_faces():
    single = np.zeros((4, 4, 4), np.uint8)
    single[1, 2, 3] = 1
    cubes = voxels_to_cubes(single)
    assert cubes.n_cells == 6 and cubes.n_points == 24
    assert np.allclose(cubes.bounds, [-0.25, 0.0, 0.0, 0.25, 0.25, 0.5])  # voxel i spans [i, i+1] / 4 - 0.5
    normals = cubes.compute_normals(cell_normals=True, point_normals=False, auto_orient_normals=False)
    outward = (normals.cell_data["Normals"] * (normals.cell_centers().points - cubes.center)).sum(1)
    assert (outward > 0).all()
    pair = single.copy()
    pair[1, 2, 2] = 1
    assert voxels_to_cubes(pair).n_cells == 10, "the shared face is hidden"
    assert voxels_to_cubes(np.ones((4, 4, 4))).n_cells == 6 * 16
    g = chair(64)
    assert voxels_to_cubes(g).n_cells == int(_exposed_faces(g))


def _exposed_faces(g: np.ndarray) -> int:
    p = np.pad(g.astype(bool), 1)
    inner = p[1:-1, 1:-1, 1:-1]
    total = 0
    for axis in range(3):
        for step in (1, -1):
            total += (inner & ~np.roll(p, step, axis)[1:-1, 1:-1, 1:-1]).sum()
    return total


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.full((4, 4, 4), np.nan), np.zeros((4, 4, 4), dtype="U1")])
def test_bad_grids_are_rejected(bad):
    with pytest.raises(BadInputError):
        voxels_to_mesh(bad)
    with pytest.raises(BadInputError):
        voxels_to_cubes(bad)


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply"])
def test_export_mesh_roundtrip(tmp_path, suffix):
    mesh = voxels_to_mesh(chair(16))
    path = export_mesh(mesh, tmp_path / f"chair{suffix}")
    verts, faces = read_mesh(path)
    assert len(faces) == mesh.n_cells
    assert np.allclose(verts.min(0), mesh.bounds[::2], atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == [f"chair{suffix}"]


def test_export_mesh_errors(tmp_path):
    mesh = voxels_to_mesh(sphere(16))
    with pytest.raises(BadInputError, match=r"unknown mesh format '\.dae'; use \.stl, \.obj, \.ply"):
        export_mesh(mesh, tmp_path / "x.dae")
    with pytest.raises(BadInputError, match="empty"):
        export_mesh(voxels_to_mesh(np.zeros((8, 8, 8))), tmp_path / "x.stl")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".binvox", ".npy", ".npz"])
def test_export_voxels_roundtrip(tmp_path, suffix):
    grid = chair(32, rng=7)
    path = export_voxels(grid.astype(np.float32) * 0.9, tmp_path / f"c{suffix}")
    assert np.array_equal(load_voxels(path, resolution=None), grid)


def test_export_voxels_errors(tmp_path):
    with pytest.raises(BadInputError, match=r"unknown voxel format '\.vox'; use \.binvox, \.npy, \.npz"):
        export_voxels(np.zeros((4, 4, 4)), tmp_path / "x.vox")
    with pytest.raises(BadInputError, match="cubic"):
        export_voxels(np.zeros((4, 4, 5)), tmp_path / "x.binvox")


def test_cropping_to_the_shape_changes_nothing():
    from skimage.measure import marching_cubes

    rng = np.random.default_rng(0)
    field = _soft_sphere(24, 0.3)
    field = np.roll(field, (7, -5, 9), axis=(0, 1, 2))  # cut by the border on some sides
    field += rng.uniform(0, 0.45, field.shape).astype(np.float32) * (field == 0)  # noise below the level
    field = np.minimum(field, 1)
    mesh = voxels_to_mesh(field, largest_component=False, spacing=1.0)
    verts, faces, _, _ = marching_cubes(np.pad(field, 1), 0.5)
    reference = verts - 1 - (np.array(field.shape) - 1) / 2
    assert mesh.n_cells == len(faces)
    key = lambda p: np.round(p, 4)[np.lexsort(np.round(p, 4).T)]  # noqa: E731
    assert np.allclose(key(np.asarray(mesh.points)), key(reference), atol=1e-4)


def test_anisotropic_spacing_scales_points_and_normals():
    mesh = voxels_to_mesh(_soft_sphere(24, 0.4), spacing=(1.0, 2.0, 3.0))
    assert np.allclose(np.ptp(mesh.points, axis=0) / np.array([1, 2, 3]), 0.8 * 24, rtol=0.03)
    ellipsoid_normal = mesh.points / np.array([1, 4, 9])  # gradient of x^2 + y^2/4 + z^2/9
    ellipsoid_normal /= np.linalg.norm(ellipsoid_normal, axis=1, keepdims=True)
    assert np.median((mesh.point_data["Normals"] * ellipsoid_normal).sum(1)) > 0.99
