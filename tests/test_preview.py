"""Contact sheets (gan_core.preview.render_grid): every shape framed to fit its cell (issue 26, item 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CELL = 200
# In a child process: VTK picks its window (X11 or EGL) once per process, and render_grid sets that up itself.
SCRIPT = """
import sys
import numpy as np
from gan_core.preview import render_grid
full = np.ones((32, 32, 32), np.float32)
slab = np.zeros((32, 32, 32), np.float32); slab[:, :, :3] = 1
small = np.zeros((32, 32, 32), np.float32); small[12:20, 12:20, 12:20] = 1
out = sys.argv[1]
render_grid([full, slab, small], out + "/sheet.png", cell={cell}, ncols=3)
render_grid([small], out + "/alone.png", cell={cell})
render_grid([full], out + "/titled.png", cell={cell}, titles=["a full grid"])
""".format(cell=CELL)


def _cells(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB")).astype(int)
    return [a[:, i * CELL:(i + 1) * CELL] for i in range(a.shape[1] // CELL)]


def _shape(cell: np.ndarray) -> np.ndarray:
    return (np.abs(cell - 255).sum(axis=2) > 30)  # not the white background


def test_a_shape_filling_the_grid_fits_its_cell(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=240,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    full, slab, small = _cells(tmp_path / "sheet.png")
    for name, cell in (("full 32^3", full), ("floor slab", slab)):
        drawn = _shape(cell)
        border = np.concatenate([drawn[:3].ravel(), drawn[-3:].ravel(), drawn[:, :3].ravel(), drawn[:, -3:].ravel()])
        assert not border.any(), f"{name}: cut at the cell's edge"
        assert drawn.mean() > 0.05, f"{name}: drawn, not shrunk to a speck"
    assert _shape(full).mean() > 0.25
    (alone,) = _cells(tmp_path / "alone.png")
    assert np.abs(small - alone).mean() < 1.0, "a shape that fits keeps the common framing, whatever its neighbours"
    (titled,) = _cells(tmp_path / "titled.png")
    rows = np.flatnonzero(_shape(titled[:, CELL // 3:]).any(axis=1))  # right of the title: the shape alone
    assert rows.max() < CELL - 20, "the shape stays above the title's band"
