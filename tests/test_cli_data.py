"""gan3d convert / export, run in-process: exit codes, stdout JSON, and the exact one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyvista as pv

from gan_core.cli import main
from gan_core.data import VoxelDataset
from gan_core.data.binvox import write_binvox
from gan_core.data.importers import load_voxels
from gan_core.data.mesh_readers import read_mesh
from gan_core.data.synthetic import box, chair, sphere, table
from gan_core.data.dataset import save_voxel_npz, write_h5_dataset


@pytest.fixture
def modelnet_dir(tmp_path):
    """ModelNet-style tree: <class>/<split>/<file>, binvox chairs and STL tables, at 16^3 to stay quick."""
    root = tmp_path / "ModelNetTiny"
    for split in ("train", "test"):
        (root / "chair" / split).mkdir(parents=True)
        (root / "table" / split).mkdir(parents=True)
    for i in range(3):
        write_binvox(root / "chair" / "train" / f"chair_{i:04d}.binvox", chair(16, rng=i))
    write_binvox(root / "chair" / "test" / "chair_0100.binvox", chair(16, rng=9))
    pv.Box(bounds=(0, 1, 0, 0.6, 0, 0.1)).save(root / "table" / "train" / "table_0001.stl")
    pv.Cylinder(resolution=24).save(root / "table" / "test" / "table_0100.stl")
    return root


def _json(out: str) -> dict:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_convert_directory_with_labels(modelnet_dir, tmp_path, capsys, suffix):
    out = tmp_path / f"tiny{suffix}"
    assert main(["convert", str(modelnet_dir), "--out", str(out), "--resolution", "16", "--label-from-dir"]) == 0
    captured = capsys.readouterr()
    summary = _json(captured.out)
    assert summary == {"out": str(out), "shapes": 6, "files": 6, "failed": 0, "resolution": 16,
                       "classes": ["chair", "table"]}
    assert captured.err == ""
    ds = VoxelDataset(out)
    assert ds.class_names == ["chair", "table"] and np.bincount(ds.labels).tolist() == [4, 2]
    assert np.array_equal(ds.read([0])[0], chair(16, rng=9))  # sorted walk: chair/test first
    assert ds.read(np.arange(6)).reshape(6, -1).sum(1).min() > 0
    ds.close()


def test_convert_without_labels_at_default_resolution(modelnet_dir, tmp_path, capsys):
    out = tmp_path / "all.npz"
    assert main(["convert", str(modelnet_dir / "table"), "--out", str(out)]) == 0
    assert _json(capsys.readouterr().out)["classes"] == ["shape"]
    ds = VoxelDataset(out)
    assert ds.resolution == 32 and len(ds) == 2


def test_convert_skips_bad_files_and_reports_them(modelnet_dir, tmp_path, capsys):
    bad = modelnet_dir / "chair" / "train" / "chair_9999.off"
    bad.write_bytes(b"OFF\n8 12 0\n")
    out = tmp_path / "x.h5"
    argv = ["convert", str(modelnet_dir), "--out", str(out), "--resolution", "16", "--label-from-dir"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert _json(captured.out)["failed"] == 1 and _json(captured.out)["shapes"] == 6
    assert captured.err == "warning: skipped 1 of 7 files that could not be read; --verbose lists them\n"
    assert main([*argv, "--verbose"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: skipped 1 of 7 files that could not be read",
        f"  {bad}: truncated OFF file: header promises 8 vertices and 12 faces, found 0 lines",
    ]


def test_convert_merges_sets_and_relabels(tmp_path, capsys):
    a = save_voxel_npz(tmp_path / "a.npz", np.stack([box(16), sphere(16)]), np.array([0, 1]), ["box", "sphere"])
    b = tmp_path / "b.h5"
    write_h5_dataset(b, np.stack([table(32), box(32)]), np.array([0, 1]), ["table", "box"])
    write_binvox(tmp_path / "one.binvox", chair(16))
    out = tmp_path / "merged.npz"
    assert main(["convert", str(a), str(b), str(tmp_path / "one.binvox"), "--out", str(out), "--resolution", "16"]) == 0
    assert _json(capsys.readouterr().out)["shapes"] == 5
    ds = VoxelDataset(out)
    assert ds.class_names == ["box", "sphere", "table", "shape"]
    assert ds.labels.tolist() == [0, 1, 2, 0, 3]
    assert np.array_equal(ds.read([1])[0], sphere(16))


def test_convert_does_not_read_its_own_output(modelnet_dir, capsys):
    out = modelnet_dir / "again.npz"
    argv = ["convert", str(modelnet_dir), "--out", str(out), "--resolution", "16"]
    assert main(argv) == 0 and main(argv) == 0
    assert _json(capsys.readouterr().out.splitlines()[-1])["shapes"] == 6


def test_convert_errors(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "only.stl").write_bytes(b"\x00garbage" * 20)
    n = int.from_bytes((b"\x00garbage" * 20)[80:84], "little")
    cases = [
        (["convert", str(tmp_path / "junk"), "--out", str(tmp_path / "x.txt")],
         "BadInputError: --out must end in .h5, .hdf5, .npz, got 'x.txt'"),
        (["convert", str(tmp_path / "missing"), "--out", str(tmp_path / "x.h5")],
         f"BadFileError: {tmp_path / 'missing'}: no such file or directory"),
        (["convert", str(tmp_path / "junk"), "--out", str(tmp_path / "x.h5")],
         f"BadFileError: none of the 1 input files could be converted; first error: {tmp_path / 'junk' / 'only.stl'}: "
         f"not a valid STL: binary header promises {n} triangles ({84 + 50 * n} bytes), file has 160 bytes "
         "(truncated or not STL)"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((["convert", str(tmp_path / "empty"), "--out", str(tmp_path / "x.npz")],
                  f"BadFileError: no supported files in {tmp_path / 'empty'} (looked for .binvox, .off, .obj, .stl, "
                  ".ply, .glb, .gltf, .3mf, .mat, .npy, .npz, .h5)"))
    for argv, line in cases:
        assert main(argv) == 1
        captured = capsys.readouterr()
        assert captured.err == line + "\n" and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "junk"], "nothing written on failure"


# -- export ------------------------------------------------------------------------------------------------
@pytest.fixture
def shapes_npz(tmp_path):
    islands = chair(32)
    islands[0:2, 0:2, 28:30] = 1  # a speck far from the chair, which spans x in [-0.3, 0.3]
    return save_voxel_npz(tmp_path / "shapes.npz", np.stack([sphere(32), islands]))


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply"])
def test_export_mesh_formats(shapes_npz, tmp_path, capsys, suffix):
    out = tmp_path / f"chair{suffix}"
    assert main(["export", str(shapes_npz), "--index", "1", "--out", str(out)]) == 0
    summary = _json(capsys.readouterr().out)
    verts, faces = read_mesh(out)
    assert summary["faces"] == len(faces) and summary["resolution"] == 32
    assert verts[:, 0].min() > -0.4, "the speck was dropped with the small components"


def test_export_keeps_islands_on_request_and_smooths(shapes_npz, tmp_path, capsys):
    out = tmp_path / "all.stl"
    assert main(["export", str(shapes_npz), "--index", "1", "--out", str(out), "--no-largest-component"]) == 0
    assert read_mesh(out)[0][:, 0].min() < -0.4
    assert main(["export", str(shapes_npz), "--index", "0", "--out", str(out), "--smooth", "10"]) == 0
    smooth = read_mesh(out)[0]
    assert main(["export", str(shapes_npz), "--index", "0", "--out", str(out)]) == 0
    assert not np.allclose(np.sort(smooth[:, 0]), np.sort(read_mesh(out)[0][:, 0]))


@pytest.mark.parametrize("suffix", [".binvox", ".npy", ".npz"])
def test_export_voxel_formats(shapes_npz, tmp_path, capsys, suffix):
    out = tmp_path / f"chair{suffix}"
    assert main(["export", str(shapes_npz), "--index", "1", "--out", str(out)]) == 0
    assert _json(capsys.readouterr().out)["occupied"] == chair(32).sum()
    assert np.array_equal(load_voxels(out, resolution=None), chair(32)), "largest component only"


def test_export_from_mesh_and_probabilities(tmp_path, capsys):
    pv.Sphere().save(tmp_path / "ball.stl")
    argv = ["export", str(tmp_path / "ball.stl"), "--out", str(tmp_path / "ball.binvox"), "--resolution", "16"]
    assert main(argv) == 0
    assert load_voxels(tmp_path / "ball.binvox", resolution=None).shape == (16, 16, 16)
    probs = sphere(16).astype(np.float32) * 0.3  # all below the default level
    np.save(tmp_path / "p.npy", probs)
    assert main(["export", str(tmp_path / "p.npy"), "--out", str(tmp_path / "p.stl"), "--level", "0.2"]) == 0
    assert main(["export", str(tmp_path / "p.npy"), "--out", str(tmp_path / "q.stl")]) == 1
    assert capsys.readouterr().err == (
        f"BadInputError: {tmp_path / 'p.npy'}: the shape is empty at --level 0.5; nothing to export\n"
    )


def test_export_errors(shapes_npz, tmp_path, capsys):
    write_binvox(tmp_path / "full.binvox", chair(16))
    (tmp_path / "cut.binvox").write_bytes((tmp_path / "full.binvox").read_bytes()[:-4])
    lost = sum((tmp_path / "full.binvox").read_bytes()[-3::2])  # counts of the two runs cut off
    missing = tmp_path / "nope.binvox"
    cases = [
        (["export", str(missing), "--out", str(tmp_path / "o.stl")], f"BadFileError: {missing}: no such file"),
        (["export", str(shapes_npz), "--out", str(tmp_path / "o.stl")],
         f"BadFileError: {shapes_npz}: holds 2 grids; give an index (--index) to pick one"),
        (["export", str(shapes_npz), "--index", "5", "--out", str(tmp_path / "o.stl")],
         "BadInputError: index 5 out of range: shapes.npz holds 2 grids"),
        (["export", str(tmp_path / "cut.binvox"), "--out", str(tmp_path / "o.stl")],
         f"BadFileError: {tmp_path / 'cut.binvox'}: binvox data truncated: "
         f"runs cover {4096 - lost} voxels, dim 16 needs 4096"),
        (["export", str(shapes_npz), "--out", str(tmp_path / "o.dae")],
         "BadInputError: --out must end in one of .stl, .obj, .ply, .glb, .gltf, .3mf, .binvox, .npy, .npz, "
         "got 'o.dae'"),
        (["export", str(shapes_npz), "--index", "0", "--out", str(tmp_path / "o.binvox"), "--smooth", "3"],
         "BadInputError: --smooth applies to mesh outputs only, not .binvox"),
        (["export", str(shapes_npz), "--index", "0", "--out", str(tmp_path / "o.stl"), "--level", "1.5"],
         "BadInputError: --level must be in (0, 1), got 1.5"),
    ]
    for argv, line in cases:
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.err == line + "\n" and captured.out == ""
    assert not any(p.name.startswith("o.") for p in tmp_path.iterdir())


@pytest.mark.parametrize("command", ["convert", "export"])
def test_help_ends_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith(f"  gan3d {command} ")


def test_convert_npy_stack(tmp_path, capsys):
    np.save(tmp_path / "gen.npy", np.stack([sphere(16), box(16), chair(16)])[:, None].astype(np.float32))
    out = tmp_path / "gen.h5"
    assert main(["convert", str(tmp_path / "gen.npy"), "--out", str(out), "--resolution", "16"]) == 0
    assert _json(capsys.readouterr().out)["shapes"] == 3
    ds = VoxelDataset(out)
    assert np.array_equal(ds.read([2])[0], chair(16)) and ds.class_names == ["shape"]
