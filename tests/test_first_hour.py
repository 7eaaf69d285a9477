"""What a new user met in the first hour at the command line (issue 26): progress bars on a terminal (also
one that reports no size) and silence when piped; outputs checked before the model loads; meshes of a
physical size; arithmetic brought back to the prior's norm; retrieval from the bundled bank by name, with a
picture; no VTK warning in a headless render."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import numpy as np
import pytest

from gan_core.cli import main
from tests.cli_run import last_json, run_cli
from tests.core_data import tiny_model_with_bank

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny16 checkpoint, a voxel set of boxes and its feature bank (made by gan3d features)."""
    return {k: str(v) if k != "tmp" else v for k, v in tiny_model_with_bank(tmp_path_factory.mktemp("first_hour")).items()}


class Terminal:
    """A pseudo-terminal standing in for sys.stderr: what a command writes there, as a person would see it."""

    def __init__(self, monkeypatch, rows: int, cols: int) -> None:
        self.master, slave = os.openpty()
        if rows or cols:  # a fresh pty reports 0 x 0, as under `script` or some consoles
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.file = os.fdopen(slave, "w", buffering=1, encoding="utf-8")
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)  # never let the pty's buffer fill
        self.reader.start()
        monkeypatch.delenv("GAN3D_PROGRESS", raising=False)
        monkeypatch.setattr(sys, "stderr", self.file)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    def text(self) -> str:
        self.file.flush()
        self.file.close()  # the reader sees EOF (EIO) once the slave side is closed
        self.reader.join(10)
        os.close(self.master)
        return b"".join(self.chunks).decode("utf-8", "replace")


def _long_commands(f):
    t = f["tmp"]
    return {
        "project": ["project", "--checkpoint", f["ckpt"], "--voxels", f["data"], "--index", "0", "--steps", "6",
                    "--restarts", "1", "--out", t / "p.npz"],
        "map": ["map", "--checkpoint", f["ckpt"], "--bank", f["bank"], "--samples", "8", "--pca", "4",
                "--perplexity", "3", "--npz", t / "m.npz", "--cache", "none"],
        "directions": ["directions", "--checkpoint", f["ckpt"], "--bank", f["bank"], "--samples", "64",
                       "--components", "3", "--named", "2", "--probe", "4", "--per-class", "1", "--project-steps", "2",
                       "--out", t / "d.npz", "--cache", "none"],
        "sample --meshes": ["sample", "--checkpoint", f["ckpt"], "--n", "3", "--out", t / "s.npz",
                            "--meshes", t / "meshes", "--level", "0.3"],
    }


BARS = {  # what each command's bars say on a terminal (stage and count)
    "project": ["projecting", "6/6"],
    "map": ["mapping: t-SNE of 32 shapes", "2/2"],
    "directions": ["naming directions", "2/2", "projecting training shapes"],
    "sample --meshes": ["generating", "meshing", "3/3"],
}


@pytest.mark.parametrize("size", [(0, 0), (30, 100)], ids=["terminal without a size", "100 x 30 terminal"])
@pytest.mark.parametrize("name", list(BARS))
def test_long_commands_show_progress_on_a_terminal(files, monkeypatch, name, size):
    term = Terminal(monkeypatch, *size)
    try:
        rc = main([str(a) for a in _long_commands(files)[name]])
    finally:
        shown = term.text()
    assert rc == 0, shown
    for part in BARS[name]:
        assert part in shown, shown
    assert "%|" in shown  # a bar, with its percentage


@pytest.mark.parametrize("name", list(BARS))
def test_long_commands_are_quiet_when_piped(files, capsys, monkeypatch, name):
    monkeypatch.delenv("GAN3D_PROGRESS", raising=False)
    rc, out, err = run_cli(capsys, *_long_commands(files)[name])
    assert rc == 0 and err == "" and json.loads(out.strip().splitlines()[-1])


def test_a_cached_map_draws_no_bar(files, monkeypatch, tmp_path):
    argv = _long_commands(files)["map"][:-2] + ["--cache", tmp_path]
    assert main([str(a) for a in argv]) == 0  # builds and caches
    term = Terminal(monkeypatch, 30, 100)
    try:
        rc = main([str(a) for a in argv])
    finally:
        shown = term.text()
    assert rc == 0 and "mapping" not in shown


# -- outputs are checked before the model loads -----------------------------------------------------------------
@pytest.mark.parametrize("argv, line", [
    (["sample", "--out", "{tmp}/s.npz", "--grid", "{file}/g.png"], "BadFileError: --grid {file}/g.png: {file} is a file, not a folder"),
    (["sample", "--out", "{tmp}/s.npz", "--grid", "{tmp}/g.jpg"], "BadInputError: --grid must end in .png, got g.jpg"),
    (["sample", "--out", "{tmp}/s.npz", "--meshes", "{file}"], "BadFileError: --meshes {file}: is a file, not a folder"),
    (["sample", "--out", "{tmp}/folder.npz", "--n", "2"], "BadFileError: --out {tmp}/folder.npz: is a folder, not a file"),
    (["sample", "--out", "{tmp}/s.npz", "--meshes", "{tmp}/m", "--size-mm", "-3"],
     "BadInputError: --size-mm must be a positive number of millimetres, got -3.0"),
    (["interpolate", "--a", "0", "--b", "1", "--out", "{file}/p.npz"], "BadFileError: --out {file}/p.npz: {file} is a file, not a folder"),
    (["arithmetic", "--a", "0", "--b", "1", "--c", "2", "--out", "{tmp}/r.stl"], "BadInputError: --out must end in .npz, got r.stl"),
    (["project", "--voxels", "{data}", "--out", "{file}/z.npz"], "BadFileError: --out {file}/z.npz: {file} is a file, not a folder"),
    (["map", "--out", "{file}/map.png"], "BadFileError: --out {file}/map.png: {file} is a file, not a folder"),
    (["directions", "--png", "{file}/d.png"], "BadFileError: --png {file}/d.png: {file} is a file, not a folder"),
    (["retrieve", "--voxels", "{data}", "--png", "{file}/r.png"], "BadFileError: --png {file}/r.png: {file} is a file, not a folder"),
    (["reconstruct", "--image", "{data}", "--out", "{tmp}/r.stl", "--png", "{file}/r.png"],
     "BadFileError: --png {file}/r.png: {file} is a file, not a folder"),
])
def test_bad_outputs_fail_before_any_model_loads(files, capsys, monkeypatch, argv, line):
    import gan_core.runtime

    loaded = []
    monkeypatch.setattr(gan_core.runtime, "load_model", lambda *a, **k: loaded.append(a) or pytest.fail("loaded"))
    blocker = files["tmp"] / "a_file.txt"
    blocker.write_text("not a folder")
    (files["tmp"] / "folder.npz").mkdir(exist_ok=True)
    subst = {"tmp": str(files["tmp"]), "file": str(blocker), "data": files["data"]}
    rc, out, err = run_cli(capsys, *[a.format(**subst) for a in argv])
    assert (rc, out, loaded) == (1, "", [])
    assert err.strip() == line.format(**subst)


# -- meshes of a physical size ----------------------------------------------------------------------------------
def test_meshes_take_a_size_in_millimetres(files, tmp_path, capsys):
    import pyvista as pv

    box = np.zeros((16, 16, 16), np.uint8)
    box[2:14, 5:11, 6:9] = 1  # 12 x 6 x 3 voxels: the longest side along x
    np.save(tmp_path / "box.npy", box)
    rc, out, _ = run_cli(capsys, "export", tmp_path / "box.npy", "--out", tmp_path / "box.stl", "--size-mm", "120")
    assert rc == 0 and last_json(out)["size_mm"] == 120
    ext = np.ptp(np.asarray(pv.read(tmp_path / "box.stl").points), axis=0)
    assert ext[0] == pytest.approx(120, rel=1e-5)
    assert ext[1] / ext[0] == pytest.approx(6 / 12, abs=0.1) and ext[2] / ext[0] == pytest.approx(3 / 12, abs=0.1)
    rc, _, _ = run_cli(capsys, "export", tmp_path / "box.npy", "--out", tmp_path / "unit.stl")
    assert np.ptp(np.asarray(pv.read(tmp_path / "unit.stl").points), axis=0)[0] < 1  # the grid is 1 unit wide
    rc, _, _ = run_cli(capsys, "sample", "--checkpoint", files["ckpt"], "--n", "2", "--level", "0.3",
                       "--out", tmp_path / "s.npz", "--meshes", tmp_path / "m", "--size-mm", "80")
    assert rc == 0 and len(list((tmp_path / "m").glob("*.stl"))) == 2
    for stl in sorted((tmp_path / "m").glob("*.stl")):
        assert np.ptp(np.asarray(pv.read(stl).points), axis=0).max() == pytest.approx(80, rel=1e-5)
    rc, out, err = run_cli(capsys, "export", tmp_path / "box.npy", "--out", tmp_path / "b.binvox", "--size-mm", "5")
    assert rc == 1 and err.strip() == "BadInputError: --size-mm applies to mesh outputs only, not .binvox"


# -- arithmetic --------------------------------------------------------------------------------------------------
def test_arithmetic_is_rescaled_to_the_priors_norm_unless_asked_not_to(files, tmp_path, capsys):
    zs = {}
    for name, extra in (("rescaled", []), ("raw", ["--raw-sum"])):
        rc, out, _ = run_cli(capsys, "arithmetic", "--checkpoint", files["ckpt"], "--a", "3", "--b", "5", "--c", "9",
                             "--out", tmp_path / f"{name}.npz", *extra)
        assert rc == 0
        with np.load(tmp_path / f"{name}.npz") as f:
            zs[name] = f["z"].astype(np.float64)
        assert last_json(out)["rescaled"] == (name == "rescaled")
    a, b, c, raw = zs["raw"]
    np.testing.assert_allclose(raw, a - b + c, atol=1e-5)
    r = zs["rescaled"][3]
    assert np.linalg.norm(r) == pytest.approx(np.sqrt(32), rel=1e-5)  # tiny16: z of 32 from N(0, 1)
    np.testing.assert_allclose(r / np.linalg.norm(r), raw / np.linalg.norm(raw), atol=1e-6)


# -- retrieval from the bundled bank by name ---------------------------------------------------------------------
def test_retrieve_finds_a_bundled_bank_by_name_and_draws_the_neighbours(tmp_path, capsys):
    from PIL import Image

    from gan_core.runtime import find_model, load_bank

    entry = find_model("fast32_modelnet10")
    if entry.bank is None or not entry.bank.is_file():
        pytest.skip("the bundled bank is not installed")
    bank = load_bank(entry.bank)
    rows = [5, 40]  # training shapes themselves: each is its own nearest neighbour
    np.savez(tmp_path / "q.npz", voxels=np.stack([bank.thumbnail(r) for r in rows]).astype(np.uint8),
             labels=np.zeros(2, np.int64), classes=np.array(["x"]))
    rc, out, err = run_cli(capsys, "retrieve", "--bank", "fast32_modelnet10", "--voxels", tmp_path / "q.npz",
                           "-k", "3", "--png", tmp_path / "nn.png", "--json")
    assert rc == 0, err
    got = last_json(out)
    assert Path(got["bank"]) == entry.bank and got["model"] == "fast32_modelnet10"
    for q, row in zip(got["queries"], rows):
        assert q["neighbours"][0]["bank_index"] == row and q["neighbours"][0]["distance"] < 1e-3
    with Image.open(tmp_path / "nn.png") as im:
        assert im.size == (4 * 200, 2 * 200)  # a row per query: the query and its 3 neighbours
    rc, _, err = run_cli(capsys, "retrieve", "--bank", "no_such_model", "--voxels", tmp_path / "q.npz")
    assert rc == 1 and err.startswith("BadFileError: --bank no_such_model: no such file, and no bundled model")


# -- headless pictures without VTK's X11 warning ------------------------------------------------------------------
def test_a_headless_render_prints_no_x_server_warning(tmp_path):
    code = ("import numpy as np\nfrom gan_core.preview import render_grid\n"
            "g = np.zeros((2, 16, 16, 16), np.float32); g[:, 4:12, 4:12, 3:13] = 1\n"
            f"render_grid(g, {str(tmp_path / 'g.png')!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VTK_DEFAULT_OPENGL_WINDOW")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "" and (tmp_path / "g.png").stat().st_size > 1000
