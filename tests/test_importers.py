"""load_voxels for every supported format: round-trips, mesh voxelisation, and one-line errors on bad files."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest
import pyvista as pv
import scipy.io
from scipy import ndimage

from gan_core.data.binvox import read_binvox, write_binvox
from gan_core.data.importers import (
    SUPPORTED_SUFFIXES, find_voxel_files, load_voxel_set, load_voxels, match_resolution, voxel_array_shape,
)
from gan_core.data.synthetic import box, chair, sphere
from gan_core.data.voxelize import voxelize_mesh, voxelize_polydata
from gan_core.errors import BadFileError, BadInputError


def write_off(path, mesh: pv.PolyData, *, modelnet_header: bool = False):
    """An OFF file; ModelNet's variant glues the counts to the magic ('OFF490 518 0')."""
    tri = mesh.triangulate()
    pts, faces = np.asarray(tri.points), tri.regular_faces
    head = f"OFF{len(pts)} {len(faces)} 0\n" if modelnet_header else f"OFF\n# comment\n{len(pts)} {len(faces)} 0\n"
    body = "".join(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in pts)
    body += "".join(f"3 {a} {b} {c}\n" for a, b, c in faces)
    path.write_text(head + body)
    return path


# -- binvox ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fill", ["chair", "zeros", "ones", "random"])
def test_binvox_roundtrip(tmp_path, fill):
    grid = {
        "chair": chair(32, rng=2),
        "zeros": np.zeros((32,) * 3, np.uint8),
        "ones": np.ones((32,) * 3, np.uint8),  # runs far longer than 255 split correctly
        "random": (np.random.default_rng(0).random((16,) * 3) > 0.5).astype(np.uint8),
    }[fill]
    path = write_binvox(tmp_path / "g.binvox", grid)
    assert np.array_equal(read_binvox(path), grid)
    assert np.array_equal(load_voxels(path, resolution=None), grid)
    assert path.read_bytes().startswith(b"#binvox 1\ndim %d %d %d\n" % ((grid.shape[0],) * 3))


def test_binvox_axis_order_is_xzy_on_disk_and_z_up_in_memory(tmp_path):
    # 2^3 grid, file index = x*4 + z*2 + y. Fill (x=0, y=1, z=0) -> index 1 and (x=1, y=0, z=1) -> index 6.
    runs = bytes([0, 1, 1, 1, 0, 4, 1, 1, 0, 1])
    path = tmp_path / "tiny.binvox"
    path.write_bytes(b"#binvox 1\ndim 2 2 2\ntranslate 0 0 0\nscale 1\ndata\n" + runs)
    grid = read_binvox(path)
    assert sorted(map(tuple, np.argwhere(grid).tolist())) == [(0, 1, 0), (1, 0, 1)]
    write_binvox(tmp_path / "again.binvox", grid)
    assert (tmp_path / "again.binvox").read_bytes().endswith(runs)


def test_binvox_resampled_on_load(tmp_path):
    path = write_binvox(tmp_path / "c.binvox", chair(64))
    assert load_voxels(path).shape == (32, 32, 32)
    assert ndimage.label(load_voxels(path)[:, :, 0])[1] == 4


# -- array formats -----------------------------------------------------------------------------------------
def test_npy_single_stack_and_probabilities(tmp_path):
    g = chair(16)
    np.save(tmp_path / "one.npy", g)
    assert np.array_equal(load_voxels(tmp_path / "one.npy", resolution=None), g)
    stack = np.stack([g, box(16), sphere(16)])
    np.save(tmp_path / "stack.npy", stack)
    assert np.array_equal(load_voxels(tmp_path / "stack.npy", 16, index=2), stack[2])
    assert np.array_equal(load_voxels(tmp_path / "stack.npy", 16, index=-1), stack[2])
    with pytest.raises(BadFileError, match=r"stack\.npy: holds 3 grids; give an index"):
        load_voxels(tmp_path / "stack.npy")
    with pytest.raises(BadInputError, match="index 3 out of range"):
        load_voxels(tmp_path / "stack.npy", index=3)
    np.save(tmp_path / "gen.npy", stack[:, None].astype(np.float32) * 0.7)  # (N, 1, R, R, R) generator output
    assert np.array_equal(load_voxels(tmp_path / "gen.npy", 16, index=1), stack[1])
    np.save(tmp_path / "low.npy", g.astype(np.float32) * 0.4)  # probabilities below 0.5 are empty
    assert load_voxels(tmp_path / "low.npy", 16).sum() == 0


def test_npz_and_h5(tmp_path):
    g = chair(32, rng=4)
    np.savez(tmp_path / "a.npz", voxels=g)
    assert np.array_equal(load_voxels(tmp_path / "a.npz"), g)
    np.savez(tmp_path / "set.npz", voxels=np.stack([g, 1 - g]), labels=np.array([0, 1]))
    assert np.array_equal(load_voxels(tmp_path / "set.npz", index=1), 1 - g)
    assert voxel_array_shape(tmp_path / "set.npz") == (2, 32, 32, 32)
    np.savez(tmp_path / "other.npz", grid=g)
    with pytest.raises(BadFileError, match=r"other\.npz: npz has no 'voxels' array \(has: grid\)"):
        load_voxels(tmp_path / "other.npz")
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        h5["voxels"] = np.stack([g, 1 - g])
    assert np.array_equal(load_voxels(tmp_path / "a.h5", index=0), g)
    assert voxel_array_shape(tmp_path / "a.h5") == (2, 32, 32, 32)


def test_mat_v5_and_v73(tmp_path):
    g = chair(32, rng=5)  # not symmetric: catches a transposed read
    scipy.io.savemat(tmp_path / "inst.mat", {"label": np.array([3]), "instance": g})
    assert np.array_equal(load_voxels(tmp_path / "inst.mat"), g)
    scipy.io.savemat(tmp_path / "other.mat", {"meta": np.ones((2, 2)), "vox": g})
    assert np.array_equal(load_voxels(tmp_path / "other.mat"), g)
    with h5py.File(tmp_path / "v73.mat", "w", userblock_size=512) as h5:
        h5["instance"] = g.T  # MATLAB stores column-major, so h5py sees the axes reversed
    assert np.array_equal(load_voxels(tmp_path / "v73.mat"), g)
    scipy.io.savemat(tmp_path / "none.mat", {"meta": np.ones((2, 2))})
    with pytest.raises(BadFileError, match=r"none\.mat: \.mat file has no 'instance' variable"):
        load_voxels(tmp_path / "none.mat")


def test_3dshapenets_30_cubed_is_resized(tmp_path):
    g30 = np.pad(box(24, size=(0.9, 0.5, 0.3)), 3)  # 3DShapeNets: 24^3 shapes padded to 30^3
    scipy.io.savemat(tmp_path / "s.mat", {"instance": g30})
    g32 = load_voxels(tmp_path / "s.mat", resolution=32)
    assert g32.shape == (32, 32, 32)
    assert g32.sum() / 32**3 == pytest.approx(g30.sum() / 30**3, rel=0.2)


def test_match_resolution_policies():
    g = chair(32)
    assert match_resolution(g, 32) is g
    assert match_resolution(g, 64).shape == (64,) * 3 and match_resolution(g, 16).shape == (16,) * 3
    assert match_resolution(g, 48).shape == (48,) * 3  # non-integer factor: zoom path
    down = match_resolution(chair(64), 24)  # 64 -> 72 (zoom) -> 24 (block vote)
    assert ndimage.label(down)[1] == 1


# -- meshes ------------------------------------------------------------------------------------------------
SPHERE_FRACTION = np.pi / 6  # a sphere touching the cube's faces


def _sphere_bounds(r: int) -> tuple[float, float]:
    """Surface voxels count as filled (binvox semantics): between the exact and a one-voxel-thicker ball."""
    return SPHERE_FRACTION, SPHERE_FRACTION * ((r + 2) / r) ** 3


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply", ".off"])
def test_mesh_sphere_voxelises_to_a_filled_ball(tmp_path, suffix):
    mesh = pv.Sphere(radius=1.0, theta_resolution=48, phi_resolution=48)
    path = tmp_path / f"ball{suffix}"
    write_off(path, mesh) if suffix == ".off" else mesh.save(path)
    grid = load_voxels(path, resolution=32)
    lo, hi = _sphere_bounds(32)
    assert lo < grid.mean() < hi
    assert ndimage.binary_fill_holes(grid).sum() == grid.sum(), "solid, not a shell"
    assert (grid == grid[::-1, :, :]).mean() > 0.99, "centred"


@pytest.mark.parametrize("binary", [True, False])
def test_ascii_and_binary_variants(tmp_path, binary):
    mesh = pv.Box(bounds=(0, 1, 0, 0.5, 0, 0.25))
    mesh.save(tmp_path / "b.stl", binary=binary)
    mesh.save(tmp_path / "b.ply", binary=binary)
    a, b = load_voxels(tmp_path / "b.stl", 16), load_voxels(tmp_path / "b.ply", 16)
    assert np.array_equal(a, b)
    exact = 16 * 8 * 4
    assert exact <= a.sum() <= 16 * 10 * 6, "box filled, at most one extra voxel layer per side"


def test_modelnet_off_header_and_polygons(tmp_path):
    path = write_off(tmp_path / "m.off", pv.Sphere(), modelnet_header=True)
    assert load_voxels(path, 16).mean() > 0.5
    quad = tmp_path / "quad.off"
    quad.write_text("OFF\n8 6 0\n" + "".join(f"{x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1))
                    + "4 0 1 3 2\n4 4 6 7 5\n4 0 4 5 1\n4 2 3 7 6\n4 0 2 6 4\n4 1 5 7 3\n")
    assert load_voxels(quad, 8).all(), "a unit cube of quads fills the grid"


def test_voxelisation_is_conservative_on_voxel_shapes():
    from gan_core.mesh import voxels_to_cubes

    g = box(32, size=(1.0, 0.5, 0.25))
    cubes = voxels_to_cubes(g)
    out = voxelize_polydata(cubes, 32)
    assert (out >= g).all(), "every voxel of the shape is kept"
    assert (out <= ndimage.binary_dilation(g, np.ones((3, 3, 3)))).all(), "at most one voxel is added around it"


def test_open_and_overlapping_meshes_still_fill():
    lidless = pv.Box().triangulate()
    lidless = lidless.remove_cells(np.flatnonzero(lidless.cell_centers().points[:, 2] > 0.99))
    assert lidless.n_open_edges > 0
    assert voxelize_polydata(lidless, 16).mean() > 0.95
    holed = pv.Sphere(theta_resolution=32, phi_resolution=32)
    holed = holed.remove_cells(np.arange(0, holed.n_cells, 97))  # scattered missing triangles
    lo, hi = _sphere_bounds(32)
    assert lo < voxelize_polydata(holed, 32).mean() < hi
    two = pv.Sphere(center=(0, 0, 0)).merge(pv.Sphere(center=(0.5, 0, 0)))  # interpenetrating shells
    grid = voxelize_polydata(two, 32)
    assert ndimage.binary_fill_holes(grid).sum() == grid.sum() and grid[16, 16, 16] == 1


def test_voxelisation_speed_10k_faces():
    mesh = pv.Sphere(theta_resolution=100, phi_resolution=52).triangulate()
    assert mesh.n_cells >= 10_000
    verts, faces = np.asarray(mesh.points), mesh.regular_faces
    voxelize_mesh(verts, faces, 32)
    t = time.perf_counter()
    voxelize_mesh(verts, faces, 32)
    assert time.perf_counter() - t < 1.0


def test_thin_parts_survive():
    # A 1/10-voxel-thick sheet and a thin rod off the voxel centres: the edge sampling keeps both.
    sheet = pv.Box(bounds=(0, 1, 0, 1, 0.503, 0.506))
    rod = pv.Box(bounds=(0.301, 0.304, 0.301, 0.304, 0, 1))
    verts = np.vstack([sheet.points, rod.points])
    faces = np.vstack([sheet.triangulate().regular_faces, rod.triangulate().regular_faces + sheet.n_points])
    grid = voxelize_mesh(verts, faces, 16)
    assert grid[:, :, 8].all() and grid[4, 4, :].all()


# -- sets and discovery ------------------------------------------------------------------------------------
def test_load_voxel_set_and_find_files(tmp_path):
    (tmp_path / "chair").mkdir()
    write_binvox(tmp_path / "chair" / "a.binvox", chair(32))
    pv.Sphere().save(tmp_path / "chair" / "b.stl")
    (tmp_path / "chair" / "notes.txt").write_text("ignored")
    (tmp_path / "chair" / ".hidden.stl").write_bytes(b"skipped")
    (tmp_path / "broken.binvox").write_bytes(b"#binvox 1\ndim 4 4 4\ndata\n\x00")
    files = find_voxel_files([tmp_path])
    assert [f.name for f in files] == ["broken.binvox", "a.binvox", "b.stl"]
    loaded = load_voxel_set([tmp_path], 16, skip_errors=True)
    assert loaded.voxels.shape == (2, 16, 16, 16) and [p.name for p in loaded.paths] == ["a.binvox", "b.stl"]
    assert len(loaded.errors) == 1 and "odd number of run bytes" in loaded.errors[0][1]
    with pytest.raises(BadFileError, match="broken.binvox"):
        load_voxel_set([tmp_path])
    with pytest.raises(BadFileError, match="nowhere: no such file or directory"):
        find_voxel_files([tmp_path / "nowhere"])


# -- bad files: one BadFileError that names the file, never a raw exception --------------------------------
BAD_FILES = {
    "garbage.binvox": (b"\x00\xffgarbage" * 20, "not a binvox file"),
    "truncated.binvox": (None, "binvox data truncated: runs cover"),
    "nodim.binvox": (b"#binvox 1\ntranslate 0 0 0\ndata\n\x00\x08", "no valid 'dim D D D' line"),
    "cuboid.binvox": (b"#binvox 1\ndim 2 2 4\ndata\n\x00\x10", "must be cubic"),
    "badrun.binvox": (b"#binvox 1\ndim 2 2 2\ndata\n\x07\x08", "run values must be 0/1"),
    "garbage.stl": (b"\x00garbage\xff" * 30, "not a valid STL"),
    "truncated.stl": (None, "not a valid STL"),
    "garbage.off": (b"\x00garbage\xff" * 30, "binary garbage where text was expected"),
    "words.off": (b"hello world\n", "not an OFF file"),
    "short.off": (b"OFF\n8 12 0\n0 0 0\n", "truncated OFF file"),
    "badindex.off": (b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "face index out of range"),
    "empty.off": (b"OFF\n0 0 0\n", "empty mesh: no faces"),
    "flat.off": (b"OFF\n3 1 0\n1 1 1\n1 1 1\n1 1 1\n3 0 1 2\n", "degenerate mesh"),
    "nan.obj": (b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or Inf"),
    "junk.obj": (b"this is not a mesh\n", "no 'v' or 'f' lines"),
    "garbage.ply": (b"\x00\x01garbage", "not a PLY file"),
    "truncated.ply": (b"ply\nformat binary_little_endian 1.0\nelement vertex 9\nproperty float x\nproperty float y\n"
                      b"property float z\nend_header\n\x00\x00", "truncated PLY data"),
    "huge.ply": (b"ply\nformat binary_little_endian 1.0\nelement vertex 99999999999\nproperty float x\n"
                 b"property float y\nproperty float z\nend_header\n\x00\x00", "rows cannot fit in 2 bytes"),
    "badtype.ply": (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty quaternion x\nend_header\n1\n",
                    "malformed PLY file"),
    "garbage.npy": (b"not numpy at all", "not a valid npy file"),
    "garbage.npz": (b"not a zip", "not a valid npz file"),
    "garbage.h5": (b"not hdf5", "not a valid HDF5 file"),
    "garbage.mat": (b"MATLAB 5.0 MAT-file" + b"\x00" * 10, "not a readable MATLAB file"),
    "shape.npy": (np.zeros((3, 4)), r"expected a cubic grid \(R, R, R\) or a stack \(N, R, R, R\), got shape \(3, 4\)"),
    "cuboid.npy": (np.zeros((4, 4, 5)), "expected a cubic grid"),
    "nan.npy": (np.full((8, 8, 8), np.nan), "NaN or Inf"),
    "tiny.npy": (np.ones((4, 4, 4), np.uint8), r"grids of 4\^3 are too small to hold a shape \(at least 8\^3\)"),
    "strings.npy": (np.full((4, 4, 4), "a"), "must be numeric"),
    "objects.npy": (np.array([None, {}], dtype=object), "not a readable npy file"),
    "unknown.vox": (b"VOX ", r"unknown format '\.vox'; supported: \.binvox"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_one_line_bad_file_error(tmp_path, name, capfd):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    if name == "truncated.binvox":
        write_binvox(tmp_path / "full.binvox", chair(16))
        path.write_bytes((tmp_path / "full.binvox").read_bytes()[:-6])
    elif name == "truncated.stl":
        pv.Sphere().save(tmp_path / "full.stl")
        path.write_bytes((tmp_path / "full.stl").read_bytes()[:-7])
    elif isinstance(content, np.ndarray):
        np.save(path, content, allow_pickle=True)
    else:
        path.write_bytes(content)
    with pytest.raises(BadFileError, match=message) as info:
        load_voxels(path)
    text = str(info.value)
    assert text.startswith(str(path) + ": ") and "\n" not in text
    assert capfd.readouterr().err == "", "no library noise on stderr"


def test_missing_and_directory(tmp_path):
    with pytest.raises(BadFileError, match=r"nothere\.stl: no such file$"):
        load_voxels(tmp_path / "nothere.stl")
    with pytest.raises(BadFileError, match="not a file"):
        load_voxels(tmp_path)
    with pytest.raises(BadInputError, match="resolution"):
        load_voxels(tmp_path / "x.npy", resolution=1)
    assert ".off" in SUPPORTED_SUFFIXES and ".binvox" in SUPPORTED_SUFFIXES


def test_chunked_ray_casting_matches_one_batch(monkeypatch):
    import gan_core.data.voxelize as vz

    mesh = pv.Box(bounds=(0, 1, 0, 0.7, 0, 0.4)).triangulate().merge(pv.Sphere(center=(0.5, 0.35, 0.6), radius=0.2))
    whole = voxelize_polydata(mesh, 24)
    monkeypatch.setattr(vz, "_CHUNK", 50)  # force many small batches
    assert np.array_equal(voxelize_polydata(mesh, 24), whole)


@pytest.mark.parametrize("suffix", [".stl", ".ply", ".obj", ".off", ".binvox", ".npy", ".npz", ".h5", ".mat"])
def test_damaged_files_never_escape_as_raw_exceptions(tmp_path, suffix):
    import random

    src = tmp_path / f"src{suffix}"
    mesh = pv.Sphere(theta_resolution=8, phi_resolution=8)
    if suffix == ".off":
        write_off(src, mesh)
    elif suffix in (".stl", ".ply", ".obj"):
        mesh.save(src)
    elif suffix == ".binvox":
        write_binvox(src, chair(16))
    elif suffix == ".npy":
        np.save(src, chair(16))
    elif suffix == ".mat":
        scipy.io.savemat(src, {"instance": chair(16)})
    else:
        from gan_core.data.dataset import save_voxel_npz

        save_voxel_npz(src, chair(16)[None]) if suffix == ".npz" else write_h5_one(src)
    raw = src.read_bytes()
    rng = random.Random(suffix)
    for trial in range(24):
        damaged = bytearray(raw)
        if trial % 2:
            del damaged[rng.randrange(len(damaged)) :]  # truncated
        else:
            for _ in range(rng.randint(1, 6)):  # flipped bytes
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path = tmp_path / f"d{trial}{suffix}"
        path.write_bytes(bytes(damaged))
        try:
            load_voxels(path, 16)
        except BadFileError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e)


def write_h5_one(path):
    with h5py.File(path, "w") as h5:
        h5["voxels"] = chair(16)[None]
