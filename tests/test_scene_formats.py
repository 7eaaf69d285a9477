"""glTF / GLB and 3MF through trimesh (issue 26, item 10): the same voxels as the same mesh in OBJ, scenes placed
and concatenated, export round trips, and one-line errors on broken files (more in tests/reliability_corpus.py)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import trimesh

from gan_core.cli import main
from gan_core.data.importers import SUPPORTED_SUFFIXES, load_voxels
from gan_core.data.mesh_readers import read_mesh
from gan_core.data.scene_readers import Y_UP_TO_Z_UP
from gan_core.data.synthetic import chair
from gan_core.data.voxelize import voxelize_mesh
from gan_core.errors import BadFileError
from gan_core.data.dataset import save_voxel_npz
from gan_core.mesh import MESH_FORMATS, export_mesh, voxels_to_mesh
from tests.reliability_corpus import glb_bytes, tetra_gltf


def _box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return trimesh.creation.box(extents=hi - lo, transform=trimesh.transformations.translation_matrix((lo + hi) / 2))


def asymmetric_mesh() -> trimesh.Trimesh:
    """Coordinates on a 1/8 lattice (exact in float32 and in text): a slab, a tower on one corner, an arm
    sticking out on one side; no mirror or axis swap maps it onto itself."""
    return trimesh.util.concatenate([_box((0, 0, 0), (4, 2, 0.5)), _box((3, 0, 0.5), (4, 1, 3)),
                                     _box((0, 1.5, 0.5), (0.75, 2.75, 1.25))])


def write_obj(path, verts, faces):
    path.write_text("".join(f"v {x!r} {y!r} {z!r}\n" for x, y, z in np.asarray(verts, float).tolist())
                    + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces))
    return path


def y_up(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh as a glTF exporter writes it: Y up (x, y, z) -> (x, z, -y)."""
    out = mesh.copy()
    out.vertices = np.asarray(mesh.vertices) @ Y_UP_TO_Z_UP
    return out


def test_glb_gltf_and_3mf_give_the_voxels_of_the_same_mesh_as_obj(tmp_path):
    mesh = asymmetric_mesh()
    obj = write_obj(tmp_path / "m.obj", mesh.vertices, mesh.faces)
    y_up(mesh).export(tmp_path / "m.glb")
    (tmp_path / "gltf").mkdir()
    y_up(mesh).export(tmp_path / "gltf" / "m.gltf")  # trimesh writes its buffer as a .bin beside it
    mesh.export(tmp_path / "m.3mf")  # 3MF is Z-up, as our grids
    assert any(p.suffix == ".bin" for p in (tmp_path / "gltf").iterdir())
    ref = load_voxels(obj, 32)
    assert 0 < ref.sum() < ref.size / 2
    for axis in range(3):  # the shape has no mirror symmetry, so a flipped axis would show
        assert not np.array_equal(ref, np.flip(ref, axis))
    for path in (tmp_path / "m.glb", tmp_path / "gltf" / "m.gltf", tmp_path / "m.3mf"):
        assert np.array_equal(load_voxels(path, 32), ref), path.name
    assert not np.array_equal(load_voxels(write_obj(tmp_path / "raw.obj", y_up(mesh).vertices, mesh.faces), 32),
                              ref), "a glTF read without its Y-up turn would differ"


def test_scene_meshes_are_placed_with_their_transforms_and_concatenated(tmp_path):
    header, binary = tetra_gltf(nodes=[{"children": [1, 2], "translation": [0, 0, 5]},  # glTF: +z is toward us
                                       {"mesh": 0},
                                       {"mesh": 0, "translation": [3, 0, 0], "scale": [2, 2, 2]}])
    (tmp_path / "two.glb").write_bytes(glb_bytes(header, binary))
    verts, faces = read_mesh(tmp_path / "two.glb")
    assert len(faces) == 8 and len(verts) == 8
    tetra = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    expected = np.concatenate([tetra + (0, 0, 5), tetra * 2 + (3, 0, 5)]) @ Y_UP_TO_Z_UP.T
    assert np.allclose(np.sort(verts, axis=0), np.sort(expected, axis=0))

    one = asymmetric_mesh()
    shift = trimesh.transformations.translation_matrix((5, 0, 0))
    turn = trimesh.transformations.rotation_matrix(np.pi / 2, (0, 0, 1))
    scene = trimesh.Scene()
    scene.add_geometry(one, node_name="a", geom_name="part")
    scene.add_geometry(one, node_name="b", geom_name="part", transform=shift @ turn)  # the same part, reused
    scene.export(tmp_path / "two.3mf")
    placed = trimesh.util.concatenate([one, one.copy().apply_transform(shift @ turn)])
    obj = write_obj(tmp_path / "two.obj", placed.vertices, placed.faces)
    assert len(read_mesh(tmp_path / "two.3mf")[1]) == 2 * len(one.faces)
    assert np.array_equal(load_voxels(tmp_path / "two.3mf", 32), load_voxels(obj, 32))


@pytest.mark.parametrize("suffix", [".glb", ".gltf", ".3mf"])
def test_export_round_trips(tmp_path, suffix):
    mesh = voxels_to_mesh(chair(32, rng=0))
    out = export_mesh(mesh, tmp_path / f"chair{suffix}")
    assert [p.name for p in tmp_path.iterdir()] == [out.name], "one self-contained file, no temp left"
    verts, faces = read_mesh(out)
    assert np.array_equal(verts, np.asarray(mesh.points, np.float64)) and np.array_equal(faces, mesh.regular_faces)
    assert np.array_equal(load_voxels(out, 32), voxelize_mesh(np.asarray(mesh.points, np.float64),
                                                              mesh.regular_faces, 32))


def test_export_units_and_up_axis(tmp_path):
    mesh = voxels_to_mesh(chair(32, rng=0))  # z (axis 2) is its tallest side
    height = np.ptp(np.asarray(mesh.points)[:, 2])
    glb = trimesh.load_scene(export_mesh(mesh, tmp_path / "c.glb", size=120)).to_geometry()
    assert np.argmax(np.ptp(glb.vertices, axis=0)) == 1, "glTF viewers see it upright: y up"
    assert np.isclose(np.ptp(glb.vertices, axis=0).max(), 0.12), "glTF is in metres"
    three = export_mesh(mesh, tmp_path / "c.3mf", size=120)
    assert np.isclose(np.ptp(read_mesh(three)[0], axis=0).max(), 120)
    with zipfile.ZipFile(three) as z:
        assert b'unit="millimeter"' in z.read("3D/3dmodel.model")
    gltf = json.loads(export_mesh(mesh, tmp_path / "c.gltf").read_text())
    assert gltf["buffers"][0]["uri"].startswith("data:")
    assert np.isclose(np.ptp(read_mesh(tmp_path / "c.gltf")[0][:, 2]), height)


def test_bad_scene_files_are_one_line_errors(tmp_path, capfd):
    header, binary = tetra_gltf()
    data = glb_bytes(header, binary)
    cases = {
        "cut.glb": (data[: len(data) // 2], "truncated GLB"),
        "other.3mf": (None, "not a 3MF file: the archive holds no 3D/3dmodel.model part"),
        "text.3mf": (b"solid x\n", "not a 3MF file (not a readable zip archive"),
    }
    with zipfile.ZipFile(tmp_path / "other.3mf", "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    for name, (raw, message) in cases.items():
        path = tmp_path / name
        if raw is not None:
            path.write_bytes(raw)
        with pytest.raises(BadFileError) as info:
            load_voxels(path, 16)
        text = str(info.value)
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text
    assert capfd.readouterr() == ("", ""), "nothing printed beside the error (trimesh's log stays quiet)"


def test_cli_export_and_import(tmp_path, capsys):
    shapes = save_voxel_npz(tmp_path / "s.npz", chair(32, rng=0)[None])
    assert main(["export", str(shapes), "--out", str(tmp_path / "c.glb"), "--size-mm", "100"]) == 0
    assert main(["export", str(tmp_path / "c.glb"), "--out", str(tmp_path / "back.npy")]) == 0
    back = np.load(tmp_path / "back.npy")
    assert back.shape == (32, 32, 32) and back.sum() > 0
    capsys.readouterr()
    (tmp_path / "bad.glb").write_bytes(b"glTF\x02\x00\x00\x00\xff\xff\x00\x00")
    assert main(["export", str(tmp_path / "bad.glb"), "--out", str(tmp_path / "x.stl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"BadFileError: {tmp_path / 'bad.glb'}: truncated GLB"), err


def test_formats_are_listed():
    for suffix in (".glb", ".gltf", ".3mf"):
        assert suffix in SUPPORTED_SUFFIXES and suffix in MESH_FORMATS
