"""Off-screen pictures of shapes: a grid of meshes in one PNG (sample sheets, asset checks, docs).

Uses one PyVista off-screen plotter with subplots (headless through EGL / OSMesa; no display needed).
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from gan_core.errors import BadInputError
from gan_core.files import atomic_path
from gan_core.mesh import voxels_to_mesh

if TYPE_CHECKING:
    import pyvista as pv

# Axis 2 is up; look from the front-left, slightly above (the paper's figures' 3/4 view).
CAMERA_DIRECTION = np.array([1.6, -2.2, 1.3])
SHAPE_COLOUR = "#c9a27e"
ZOOM = 1.25  # the common framing (VTK's 30 degree view angle / 1.25): a typical shape fills most of its cell
MARGIN = 0.05  # of a cell's half-width, left free on every side
TITLE_PX = 20  # the band a title takes at a cell's foot (font size 8)


def headless_gl() -> None:
    """Without a display, have VTK open an EGL window directly. It tries X11 first otherwise and prints a
    yellow "bad X server connection" warning before falling back to EGL itself: the same picture, noise on
    every headless run. A display, a Wayland session or the user's own VTK_DEFAULT_OPENGL_WINDOW wins."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def frame_shape(camera: "pv.Camera", mesh: "pv.PolyData", *, title_band: float = 0.0) -> float:
    """Point ``camera`` at the grid's centre from CAMERA_DIRECTION at the common framing (ZOOM), widened just
    enough for ``mesh`` to fit its cell: the corners of its bounding box, seen in perspective, stay MARGIN
    inside the cell's edges and ``title_band`` (a fraction of the cell's half-height, [-1, 1] units) above its
    foot. Shapes that fit keep the common scale, so cells compare; one filling the grid (32^3 ones, a floor
    slab, a chair's legs at the grid's edge) was cut at the cell edge at ZOOM. Returns the view angle."""
    camera.position, camera.focal_point, camera.up = tuple(CAMERA_DIRECTION), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    angle = 30.0 / ZOOM
    if mesh.n_points:
        bounds = np.asarray(mesh.bounds, np.float64).reshape(3, 2)
        corners = np.array(list(itertools.product(*bounds)))  # (8, 3)
        m = camera.GetViewTransformMatrix()
        view = np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])
        eye = np.c_[corners, np.ones(8)] @ view.T  # camera coordinates: x right, y up, looking down -z
        depth = np.maximum(-eye[:, 2], 1e-6)
        tx, ty = eye[:, 0] / depth, eye[:, 1] / depth  # tangents of the angles off the view axis
        need = max(np.abs(tx).max() / (1 - MARGIN), ty.max() / (1 - MARGIN),
                   -ty.min() / max(1 - MARGIN - title_band, 0.5))
        angle = max(angle, math.degrees(2 * math.atan(need)))
    camera.view_angle = angle
    return angle


def render_grid(
    grids: np.ndarray | Sequence[np.ndarray],
    path: str | Path,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cell: int = 220,
    level: float = 0.5,
    smooth: int = 10,
    progress: Callable[[int, int], None] | None = None,
    add_shape: Callable[[Any, int], Any] | None = None,
) -> Path:
    """Render grids (N, R, R, R) as meshes (largest component, light smoothing) into one PNG, atomically.
    ``progress(done, total)`` is called per shape (the last call after the picture is taken). ``add_shape(plotter,
    i)`` draws shape ``i`` itself (another colouring) and returns its mesh; by default the plain shape colour."""
    headless_gl()
    import pyvista as pv

    grids = list(grids)
    if not grids:
        raise BadInputError("nothing to render")
    n = len(grids)
    ncols = ncols or min(n, max(1, math.ceil(math.sqrt(n * 1.5))))
    nrows = math.ceil(n / ncols)
    pl = pv.Plotter(off_screen=True, shape=(nrows, ncols), window_size=(ncols * cell, nrows * cell), border=False)
    try:
        for i, g in enumerate(grids):
            pl.subplot(i // ncols, i % ncols)
            pl.set_background("white")
            if add_shape is not None:
                mesh = add_shape(pl, i)
            else:
                mesh = voxels_to_mesh(np.asarray(g), level=level, smooth_iterations=smooth)
                if mesh.n_points:
                    pl.add_mesh(mesh, color=SHAPE_COLOUR, smooth_shading=True, specular=0.2)
            if not mesh.n_points:
                pl.add_text("empty", position="upper_left", font_size=9, color="grey")
            if titles is not None:
                pl.add_text(str(titles[i]), position="lower_left", font_size=8, color="black")
            frame_shape(pl.camera, mesh, title_band=2 * TITLE_PX / cell if titles is not None else 0.0)
            if progress is not None and i + 1 < n:
                progress(i + 1, n)
        img = pl.screenshot(return_img=True)
        if progress is not None:
            progress(n, n)
    finally:
        pl.close()
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
    return path
