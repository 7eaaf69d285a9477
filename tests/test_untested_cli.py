"""CLI behaviours no test covered (issue 24): gan3d sample --meshes in every --format and --grid, evaluate
--chamfer, pack --encoder-from taking an encoder. Each checks a value computed here another way: extents of the
voxels' largest component (scipy's labelling, not the mesher), glTF's Y-up turn by its specification, Chamfer
bounds of a shift by one voxel, the encoder's own weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from gan_core.checkpoint import load_checkpoint, save_checkpoint
from gan_core.config import get_profile
from gan_core.models import Discriminator, Generator, ImageEncoder
from gan_core.runtime import REGISTRY
from tests.cli_run import last_json, run_cli

ROOT = Path(__file__).resolve().parent.parent
needs_registry = pytest.mark.skipif(not REGISTRY.is_file(), reason="no bundled registry in this checkout")


def _largest_extent(grid: np.ndarray) -> np.ndarray:
    """Occupied voxels per axis of the largest 26-connected component (what the mesher keeps)."""
    lab, n = ndimage.label(grid, np.ones((3, 3, 3)))
    big = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))
    return np.array([np.any(big, axis=tuple(j for j in range(3) if j != i)).sum() for i in range(3)])


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """Three shapes of the bundled default model (real shapes: a chair is not a cube), meshed in every format."""
    if not REGISTRY.is_file():
        pytest.skip("no bundled registry in this checkout")
    import contextlib
    import io

    from gan_core.cli import main

    tmp = tmp_path_factory.mktemp("sample")
    for fmt in ("stl", "obj", "ply", "glb", "gltf", "3mf"):
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["sample", "--n", "3", "--seed", "4", "--device", "cpu", "--precision", "fp32",
                         "--out", str(tmp / f"{fmt}.npz"), "--meshes", str(tmp / fmt), "--format", fmt]) == 0
    return tmp


@needs_registry
@pytest.mark.parametrize("fmt", ["stl", "obj", "ply", "glb", "gltf", "3mf"])
def test_sample_meshes_in_each_format_have_the_shapes_extents(sampled, fmt):
    import trimesh

    with np.load(sampled / f"{fmt}.npz") as f:
        vox = f["voxels"]
    files = sorted((sampled / fmt).iterdir())
    assert [p.name for p in files] == [f"{fmt}_{i:04d}.{fmt}" for i in range(3)]  # one file per shape, named so
    r = vox.shape[1]
    for grid, path in zip(vox, files):
        mesh = trimesh.load(path, force="mesh")
        assert mesh.is_watertight, path.name
        n = _largest_extent(grid)
        if fmt in ("glb", "gltf"):  # Y up by the glTF specification: (x, y, z) -> (x, z, -y)
            n = n[[0, 2, 1]]
        # the surface crosses between the last occupied voxel centre and the next one: n - 1 < extent < n + 1
        # voxels of 1 / R each (the grid is 1 unit wide)
        ext = mesh.extents * r
        assert np.all(ext > n - 1) and np.all(ext < n + 1), (path.name, ext, n)
        assert np.all(np.abs(ext - n) < 0.5), (path.name, ext, n)  # a crisp model: within half a voxel


@needs_registry
def test_sample_formats_write_the_same_voxels_and_different_files(sampled):
    grids = [np.load(sampled / f"{fmt}.npz")["voxels"] for fmt in ("stl", "3mf")]
    assert np.array_equal(*grids)  # --format changes the mesh files only
    heads = {fmt: (sampled / fmt / f"{fmt}_0000.{fmt}").read_bytes()[:4] for fmt in ("glb", "ply", "3mf")}
    assert heads == {"glb": b"glTF", "ply": b"ply\n", "3mf": b"PK\x03\x04"}  # magic numbers, by the formats' specs


@needs_registry
def test_sample_grid_writes_a_contact_sheet_of_the_shapes(tmp_path):
    # in a child process: VTK picks its window system once per process (see tests/test_preview.py)
    code = ("from gan_core.cli import main; raise SystemExit(main(['sample', '--n', '3', '--seed', '4', "
            f"'--device', 'cpu', '--out', {str(tmp_path / 's.npz')!r}, '--grid', {str(tmp_path / 'g.png')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PIL import Image

    with Image.open(tmp_path / "g.png") as im:
        a = np.asarray(im.convert("RGB")).astype(int)
    assert a.shape == (220, 3 * 220, 3)  # 3 shapes: one row of three 220-pixel cells
    cells = [a[:, i * 220:(i + 1) * 220] for i in range(3)]
    drawn = [np.abs(c - 255).sum(axis=2) > 30 for c in cells]  # not the white background
    assert all(0.03 < d.mean() < 0.8 for d in drawn)  # a shape in every cell
    assert all(np.abs(cells[i] - cells[j]).mean() > 1 for i, j in ((0, 1), (1, 2), (0, 2)))  # three shapes


def _grids(offset: int) -> np.ndarray:
    """Two shapes at 16^3: a 6 x 4 x 8 box and an L, moved ``offset`` voxels along x."""
    g = np.zeros((2, 16, 16, 16), np.uint8)
    g[0, 3 + offset:9 + offset, 5:9, 2:10] = 1
    g[1, 2 + offset:10 + offset, 4:7, 1:4] = 1
    g[1, 2 + offset:5 + offset, 4:7, 4:12] = 1
    return g


def _npz(path: Path, vox: np.ndarray) -> Path:
    np.savez(path, voxels=vox)
    return path


def test_evaluate_chamfer_is_zero_for_the_same_shapes_and_bounded_by_a_one_voxel_shift(tmp_path, capsys):
    ref = _npz(tmp_path / "ref.npz", _grids(0))
    same = _npz(tmp_path / "same.npz", _grids(0))
    moved = _npz(tmp_path / "moved.npz", _grids(1))
    rc, out, _ = run_cli(capsys, "evaluate", "--samples", same, "--reference", ref, "--no-judge", "--json")
    assert rc == 0 and "chamfer" not in last_json(out)  # only on request (it is slow)
    rc, out, _ = run_cli(capsys, "evaluate", "--samples", same, "--reference", ref, "--no-judge", "--json",
                         "--chamfer", "--points", "256")
    m = last_json(out)
    assert rc == 0 and "Chamfer" in out
    # the same grids get the same points: every reference is some sample's nearest at distance 0, and each shape's
    # twin in the other set is nearer than its own set's other shape (1-NNA 0: copies)
    assert m["chamfer"] == {"cov": 1.0, "mmd": 0.0, "1nna": 0.0, "points": 256}
    rc, out, _ = run_cli(capsys, "evaluate", "--samples", moved, "--reference", ref, "--no-judge", "--json",
                         "--chamfer", "--points", "256")
    m = last_json(out)
    # moved by d = 1/16 along x: each point's copy is d away, so both mean squared nearest distances are <= d^2
    # (CD <= 2 d^2 = 0.0078); the box and the L are far apart in comparison, so each still finds its own
    d2 = (1 / 16) ** 2
    assert 0 < m["chamfer"]["mmd"] <= 2 * d2 + 1e-6
    assert m["chamfer"]["cov"] == 1.0


def test_pack_encoder_from_takes_the_other_files_encoder_and_keeps_the_gan(tmp_path, capsys):
    p = get_profile("tiny16")
    torch.manual_seed(0)
    gan = save_checkpoint(tmp_path / "gan.pt", profile=p,
                          models={"generator": Generator(p), "discriminator": Discriminator(p)})
    torch.manual_seed(1)
    enc_net = ImageEncoder(p)
    vae = save_checkpoint(tmp_path / "vae.pt", profile=p, models={"generator": Generator(p), "encoder": enc_net})
    rc, out, _ = run_cli(capsys, "pack", "--checkpoint", gan, "--out", tmp_path / "both.pt", "--fp32",
                         "--encoder-from", vae)
    assert rc == 0 and last_json(out)["out"] == str(tmp_path / "both.pt")
    both = load_checkpoint(tmp_path / "both.pt")
    for name, value in enc_net.state_dict().items():  # the encoder's own weights, not the other file's generator
        assert torch.equal(both["encoder"][name], value), name
    src = load_checkpoint(gan)
    for key in ("generator", "discriminator"):
        assert all(torch.equal(both[key][k], v) for k, v in src[key].items()), key
    other = load_checkpoint(vae)["generator"]
    assert any(not torch.equal(both["generator"][k], v) for k, v in other.items() if v.is_floating_point())
    rc, _, err = run_cli(capsys, "pack", "--checkpoint", gan, "--out", tmp_path / "x.pt", "--encoder-from",
                         tmp_path / "missing.pt")
    assert rc == 1 and "missing.pt" in err
