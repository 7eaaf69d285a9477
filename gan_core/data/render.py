"""Off-screen renders of voxel shapes: the image half of the 3D-VAE-GAN's training pairs.

Each shape is meshed once (:func:`gan_core.mesh.voxels_to_mesh`, light Taubin smoothing) and drawn from
``views`` random viewpoints by one reused off-screen PyVista plotter: azimuth all round, elevation 10-40
degrees, axis 2 up, a random key light (direction, intensity) over a dim headlight, a random mesh colour and
finish. The object is cropped out by its alpha mask and framed exactly as :func:`gan_core.reconstruct.load_image`
frames a user's photo, then composited over a plain, gradient, noise or striped/checked background.

Renders are cached in HDF5 (``render_dataset``) so they are made once:

* ``images`` (N, K, S, S, 3) uint8, one chunk per shape (lzf);
* ``azimuth``, ``elevation`` (N, K) float32 degrees; ``shape_index`` (N,) int64 rows of the data file;
  ``labels`` (N,) int64; ``classes`` str; ``done`` (N,) uint8;
* attrs ``data_sha256`` (of the data file), ``views`` (K), ``size`` (S), ``seed``, ``smooth_iterations``,
  ``complete``, ``gan3d_renders`` (format version).

A run writes ``OUT.partial.h5`` and renames it to ``OUT`` when every shape is done; a killed run resumes
from the partial file, skipping the shapes already rendered. View parameters depend only on (seed, row), so
a resumed file equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gan_core.errors import BadFileError, BadInputError
from gan_core.io_utils import file_sha256

log = logging.getLogger(__name__)

__all__ = ["RenderSet", "RenderStats", "Renderer", "file_sha256", "render_dataset", "render_shapes"]

FORMAT_VERSION = 1
ELEVATION_RANGE = (10.0, 40.0)  # degrees above the horizon
SMOOTH_ITERATIONS = 10  # light Taubin smoothing: hides the voxel steps, keeps thin parts
SUPERSAMPLE = 1.5  # render at 1.5x the output size, then crop to the object and downsample
BACKGROUNDS = ("plain", "white", "gradient", "noise", "pattern")
BACKGROUND_P = (0.25, 0.25, 0.15, 0.15, 0.2)


# -- random scene parameters -------------------------------------------------------------------------------
def _random_colour(g: np.random.Generator) -> np.ndarray:
    """A mesh colour: greys, woods and saturated colours, as furniture comes."""
    kind = g.random()
    if kind < 0.3:
        return np.full(3, g.uniform(0.25, 0.9))
    if kind < 0.6:  # wood-ish browns and beiges
        base = np.array([0.55, 0.36, 0.2]) * g.uniform(0.6, 1.6)
        return np.clip(base + g.normal(0, 0.05, 3), 0.05, 1)
    import colorsys

    return np.array(colorsys.hsv_to_rgb(g.random(), g.uniform(0.3, 1.0), g.uniform(0.35, 1.0)))


def _background(kind: str, size: int, g: np.random.Generator) -> np.ndarray:
    """A background (size, size, 3) float32 in [0, 1] of the given kind."""
    c0, c1 = g.random(3), g.random(3)
    if kind == "white":
        return np.full((size, size, 3), g.uniform(0.92, 1.0), np.float32)
    if kind == "plain":
        return np.broadcast_to(c0, (size, size, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # (S, S) each
    if kind == "gradient":
        a = g.uniform(0, 2 * np.pi)
        t = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5
        t = np.clip(t, 0, 1)[..., None]
        return (c0 * (1 - t) + c1 * t).astype(np.float32)
    if kind == "noise":
        from PIL import Image

        cells = int(g.integers(3, 17))
        low = (g.random((cells, cells, 3)) * 255).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
        return np.clip(smooth * g.uniform(0.4, 1.0) + g.normal(0, 0.04, (size, size, 3)), 0, 1).astype(np.float32)
    if kind == "pattern":  # stripes or checks at a random angle and period, with a little grain
        a, period = g.uniform(0, np.pi), g.uniform(0.04, 0.25)
        u = np.cos(a) * xx + np.sin(a) * yy
        v = -np.sin(a) * xx + np.cos(a) * yy
        wave = np.sin(2 * np.pi * u / period)
        if g.random() < 0.5:
            wave = wave * np.sin(2 * np.pi * v / period)
        t = (wave > 0).astype(np.float32)[..., None]
        img = c0 * (1 - t) + c1 * t + g.normal(0, 0.03, (size, size, 3))
        return np.clip(img, 0, 1).astype(np.float32)
    raise BadInputError(f"unknown background kind {kind!r}; known: {', '.join(BACKGROUNDS)}")


@dataclass
class RenderStats:
    """What one ``render_dataset`` call did."""

    path: Path
    n_shapes: int
    views: int
    rendered_now: int  # shapes rendered by this call (the rest were done before)
    seconds: float

    @property
    def renders_per_s(self) -> float:
        return self.rendered_now * self.views / self.seconds if self.seconds > 0 else float("nan")


# -- the renderer ------------------------------------------------------------------------------------------
class Renderer:
    """One off-screen plotter, reused for every image (creating a plotter costs ~1 s; a render ~3 ms).

    Parameters
    ----------
    size : output side S in pixels (the profile's ``image_size``).
    smooth_iterations : Taubin smoothing passes on the marching-cubes mesh.

    Examples
    --------
    >>> from gan_core.data.synthetic import chair          # doctest: +SKIP
    >>> with Renderer(128) as r:                            # doctest: +SKIP
    ...     images, az, el = r.render_views(chair(32), 4, np.random.default_rng(0))
    >>> images.shape                                        # doctest: +SKIP
    (4, 128, 128, 3)
    """

    def __init__(self, size: int = 128, *, smooth_iterations: int = SMOOTH_ITERATIONS) -> None:
        if not isinstance(size, (int, np.integer)) or not 16 <= size <= 1024:
            raise BadInputError(f"render size must be an integer in 16..1024, got {size!r}")
        import pyvista as pv

        self.size = int(size)
        self.smooth_iterations = int(smooth_iterations)
        self.window = int(round(self.size * SUPERSAMPLE))
        try:
            self.plotter = pv.Plotter(off_screen=True, window_size=(self.window, self.window), lighting="none")
        except Exception as e:  # no EGL / OSMesa / X: say what to install
            raise BadInputError(f"off-screen rendering is unavailable ({e}); install libosmesa6 or run under "
                                "xvfb-run -a") from None
        self.plotter.set_background((0.5, 0.5, 0.5))
        self.key = pv.Light(light_type="scene light")
        self.key.positional = False
        self.fill = pv.Light(light_type="headlight")
        self.plotter.add_light(self.key)
        self.plotter.add_light(self.fill)
        self._actor: Any = None
        self._mesh: Any = None
        self._empty = True

    # -- scene ---------------------------------------------------------------------------------------------
    def set_shape(self, grid: np.ndarray) -> None:
        """Mesh a voxel grid (R, R, R) and show it; the one actor's input is swapped, never re-added."""
        from gan_core.mesh import voxels_to_mesh

        mesh = voxels_to_mesh(grid, level=0.5, largest_component=False, smooth_iterations=self.smooth_iterations)
        self._empty = mesh.n_cells == 0
        if self._empty:
            if self._actor is not None:
                self._actor.visibility = False
            return
        if "Normals" not in mesh.point_data:
            mesh = mesh.compute_normals(cell_normals=False, split_vertices=False, consistent_normals=False)
        self._mesh = mesh
        if self._actor is None:
            self._actor = self.plotter.add_mesh(mesh, name="shape", smooth_shading=True, reset_camera=False)
        else:
            self._actor.mapper.SetInputData(mesh)
            self._actor.visibility = True

    def _setup_view(self, azimuth: float, elevation: float, g: np.random.Generator) -> None:
        prop = self._actor.prop
        prop.color = tuple(_random_colour(g))
        prop.ambient = g.uniform(0.1, 0.3)
        prop.diffuse = g.uniform(0.7, 1.0)
        prop.specular = g.uniform(0.0, 0.4)
        prop.specular_power = g.uniform(5, 40)
        la, le = np.radians(g.uniform(0, 360)), np.radians(g.uniform(15, 80))
        self.key.position = (np.cos(le) * np.cos(la), np.cos(le) * np.sin(la), np.sin(le))
        self.key.focal_point = (0.0, 0.0, 0.0)
        self.key.intensity = g.uniform(0.5, 1.2)
        self.fill.intensity = g.uniform(0.15, 0.5)
        centre = np.asarray(self._mesh.center)
        a, e = np.radians(azimuth), np.radians(elevation)
        direction = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
        cam = self.plotter.camera
        cam.focal_point = tuple(centre)
        cam.position = tuple(centre + 3.0 * direction)
        cam.up = (0.0, 0.0, 1.0)
        cam.view_angle = g.uniform(20, 40)
        self.plotter.renderer.ResetCamera()  # fits the bounds, keeps the direction
        self.plotter.renderer.ResetCameraClippingRange()

    def render(self, azimuth: float, elevation: float, g: np.random.Generator) -> np.ndarray:
        """One image (S, S, 3) uint8 of the current shape from (azimuth, elevation) degrees, with lighting,
        colour and background drawn from ``g``."""
        from gan_core.reconstruct import frame_object

        s = self.size
        bg = _background(str(g.choice(BACKGROUNDS, p=BACKGROUND_P)), s, g)  # (S, S, 3)
        if self._empty:
            return (bg * 255 + 0.5).astype(np.uint8)
        self._setup_view(azimuth, elevation, g)
        self.plotter.render()
        rgba = self.plotter.screenshot(transparent_background=True, return_img=True)  # (W, W, 4) uint8
        alpha = rgba[..., 3]
        rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        if len(rows) == 0:
            return (bg * 255 + 0.5).astype(np.uint8)
        box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        framed = frame_object(rgba.astype(np.float32) / 255, box, np.zeros(4, np.float32), s)  # (S, S, 4)
        a = framed[..., 3:4]
        out = framed[..., :3] * a + bg * (1 - a)
        return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)

    def render_views(self, grid: np.ndarray, views: int, g: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``views`` images (K, S, S, 3) uint8 of one grid, with their azimuths and elevations (K,) in degrees.

        Azimuths are spread all round (a random offset plus even steps, jittered), elevations uniform in
        10-40 degrees.
        """
        if views < 1:
            raise BadInputError(f"views must be >= 1, got {views}")
        self.set_shape(grid)
        az = (g.uniform(0, 360) + np.arange(views) * 360.0 / views + g.uniform(-0.3, 0.3, views) * 360 / views) % 360
        el = g.uniform(*ELEVATION_RANGE, views)
        images = np.stack([self.render(float(a), float(e), g) for a, e in zip(az, el)])
        return images, az.astype(np.float32), el.astype(np.float32)

    def close(self) -> None:
        if self.plotter is not None:
            self.plotter.close()
            self.plotter = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shape_rng(seed: int, row: int) -> np.random.Generator:
    """The random stream of one shape's views: depends on (seed, row) only, so order and resume don't matter."""
    return np.random.default_rng([int(seed), int(row), 0x3D])


def render_shapes(voxels: np.ndarray, *, views: int = 1, size: int = 128, seed: int = 0,
                  rows: Sequence[int] | None = None, renderer: Renderer | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render grids (N, R, R, R) in memory: images (N, K, S, S, 3) uint8, azimuth and elevation (N, K).

    ``rows`` (N,) names each shape for its random stream (default 0..N-1), as in :func:`render_dataset`.
    """
    vox = np.asarray(voxels)
    if vox.ndim != 4:
        raise BadInputError(f"voxels must be (N, R, R, R), got {vox.shape}")
    rows = list(range(len(vox))) if rows is None else [int(r) for r in rows]
    own = renderer is None
    r = renderer or Renderer(size)
    try:
        out = [r.render_views(v, views, shape_rng(seed, row)) for v, row in zip(vox, rows)]
    finally:
        if own:
            r.close()
    if not out:
        return np.zeros((0, views, size, size, 3), np.uint8), np.zeros((0, views), np.float32), np.zeros((0, views), np.float32)
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), np.stack([o[2] for o in out])


# -- the HDF5 cache ----------------------------------------------------------------------------------------
def _partial_path(out: Path) -> Path:
    return out.with_name(out.stem + ".partial" + out.suffix)


def render_dataset(
    dataset: Any,
    out_h5: str | Path,
    views: int = 4,
    size: int = 128,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    *,
    smooth_iterations: int = SMOOTH_ITERATIONS,
    positions: Sequence[int] | np.ndarray | None = None,
) -> RenderStats:
    """Render every shape of ``dataset`` ``views`` times into an HDF5 cache; resumable.

    Parameters
    ----------
    dataset : VoxelDataset or path to a voxel set (.npz / .h5)
        The shapes; rendered from their stored grids. A VoxelDataset's class / limit selection is kept.
    out_h5 : path of the cache. If it exists, complete and made with the same data and settings, nothing
        is done; if it was made otherwise, BadInputError (delete it or pick another path).
    views, size, seed : K images per shape of S x S pixels; view parameters depend on (seed, shape row).
    progress : called as ``progress(done, total)`` after each shape (also for shapes done before).
    smooth_iterations : Taubin smoothing passes on each mesh.
    positions : render only these dataset positions (e.g. a held-out split); default all.

    Returns
    -------
    RenderStats (renders_per_s measures this call's rendering, meshing and writing included).
    """
    from gan_core.data.dataset import VoxelDataset

    ds = dataset if isinstance(dataset, VoxelDataset) else VoxelDataset(dataset)
    if views < 1:
        raise BadInputError(f"--views must be >= 1, got {views}")
    out = Path(out_h5)
    want = {"data_sha256": file_sha256(ds.path), "views": int(views), "size": int(size), "seed": int(seed),
            "smooth_iterations": int(smooth_iterations)}
    pos = np.arange(len(ds)) if positions is None else np.unique(np.asarray(positions, np.int64))
    if len(pos) == 0 or pos[0] < 0 or pos[-1] >= len(ds):
        raise BadInputError(f"positions must be non-empty and within 0..{len(ds) - 1}")
    rows = np.asarray(ds.indices, np.int64)[pos]
    n = len(rows)
    t0 = time.perf_counter()
    if out.exists():
        RenderSet(out).check(want, rows, what=str(out)).close()
        if progress:
            progress(n, n)
        return RenderStats(out, n, views, 0, time.perf_counter() - t0)
    part = _partial_path(out)
    h5 = _open_partial(part, want, rows, np.asarray(ds.labels)[pos], ds.class_names, views, size)
    rendered = 0
    try:
        done = h5["done"][()].astype(bool)
        if progress:
            progress(int(done.sum()), n)
        renderer = Renderer(size, smooth_iterations=smooth_iterations)
        try:
            for i in np.flatnonzero(~done):
                grid = ds.read([pos[i]])[0]  # (R, R, R) as stored
                imgs, az, el = renderer.render_views(grid, views, shape_rng(seed, rows[i]))
                h5["images"][i] = imgs
                h5["azimuth"][i] = az
                h5["elevation"][i] = el
                h5["done"][i] = 1
                rendered += 1
                done[i] = True
                if rendered % 50 == 0:
                    h5.flush()
                if progress:
                    progress(int(done.sum()), n)
        finally:
            renderer.close()
        h5.attrs["complete"] = True
        h5.close()
        h5 = None
        os.replace(part, out)  # same directory: an atomic rename
    finally:
        if h5 is not None:
            h5.flush()
            h5.close()
    stats = RenderStats(out, n, views, rendered, time.perf_counter() - t0)
    log.info("rendered %d shapes x %d views in %.1f s (%.1f renders/s)", rendered, views, stats.seconds,
             stats.renders_per_s)
    return stats


def _open_partial(part: Path, want: dict[str, Any], rows: np.ndarray, labels: np.ndarray, class_names: list[str],
                  views: int, size: int):
    """Open a partial cache to continue, or create a fresh one (a partial one made otherwise is replaced)."""
    import h5py

    if part.exists():
        try:
            h5 = h5py.File(part, "r+")
            same = all(h5.attrs.get(k) == v for k, v in want.items()) and np.array_equal(h5["shape_index"][()], rows)
            if same and "done" in h5:
                log.info("resuming %s: %d of %d shapes done", part, int(h5["done"][()].sum()), len(rows))
                return h5
            h5.close()
            log.warning("%s was made with other data or settings; starting it again", part)
        except (OSError, KeyError) as e:
            log.warning("%s is unreadable (%s); starting it again", part, e)
        part.unlink()
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        h5 = h5py.File(part, "w")
    except OSError as e:
        raise BadFileError(f"{part}: cannot write ({e})") from None
    n = len(rows)
    h5.create_dataset("images", shape=(n, views, size, size, 3), dtype=np.uint8,
                      chunks=(1, views, size, size, 3), compression="lzf")
    h5.create_dataset("azimuth", shape=(n, views), dtype=np.float32)
    h5.create_dataset("elevation", shape=(n, views), dtype=np.float32)
    h5.create_dataset("shape_index", data=rows)
    h5.create_dataset("labels", data=np.asarray(labels, np.int64))
    h5.create_dataset("classes", data=list(class_names), dtype=h5py.string_dtype("utf-8"))
    h5.create_dataset("done", shape=(n,), dtype=np.uint8, fillvalue=0)
    for k, v in want.items():
        h5.attrs[k] = v
    h5.attrs["complete"] = False
    h5.attrs["gan3d_renders"] = FORMAT_VERSION
    return h5


class RenderSet:
    """A finished render cache, read lazily.

    ``images(h5_rows, view)`` gives uint8 (B, S, S, 3); ``rows_for(file_rows)`` maps data-file rows to cache
    rows (BadInputError naming how many are missing).
    """

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise BadFileError(f"{self.path}: no such render cache")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise BadFileError(f"{self.path}: not a readable HDF5 file ({e})") from None
        h5 = self._h5
        if "images" not in h5 or "shape_index" not in h5 or "gan3d_renders" not in h5.attrs:
            self.close()
            raise BadFileError(f"{self.path}: not a gan3d render cache (make one with `gan3d render`)")
        if not bool(h5.attrs.get("complete", False)):
            self.close()
            raise BadFileError(f"{self.path}: render cache is incomplete; run `gan3d render` again to finish it")
        self.views = int(h5.attrs["views"])
        self.size = int(h5.attrs["size"])
        self.seed = int(h5.attrs["seed"])
        self.data_sha256 = str(h5.attrs["data_sha256"])
        self.shape_index = h5["shape_index"][()]
        self._row_of = {int(r): i for i, r in enumerate(self.shape_index)}

    def __len__(self) -> int:
        return len(self.shape_index)

    def check(self, want: dict[str, Any], rows: np.ndarray | None = None, what: str = "renders") -> RenderSet:
        """Refuse a cache made from other data or settings (BadInputError naming the first difference)."""
        for k, v in want.items():
            have = self._h5.attrs.get(k)
            if have != v:
                self.close()
                hint = "another data file" if k == "data_sha256" else f"{k}={have}, not {v}"
                raise BadInputError(f"{what} was rendered from {hint}; delete it or choose another path")
        if rows is not None and not np.isin(rows, self.shape_index).all():
            self.close()
            raise BadInputError(f"{what} lacks some of the selected shapes; delete it or choose another path")
        return self

    def rows_for(self, file_rows: Sequence[int] | np.ndarray) -> np.ndarray:
        missing = [int(r) for r in file_rows if int(r) not in self._row_of]
        if missing:
            raise BadInputError(f"{self.path}: {len(missing)} of the selected shapes were not rendered "
                                f"(e.g. row {missing[0]}); render the same data selection again")
        return np.array([self._row_of[int(r)] for r in file_rows], np.int64)

    def images(self, h5_rows: Sequence[int] | np.ndarray, views: Sequence[int] | np.ndarray | int = 0) -> np.ndarray:
        """Images (B, S, S, 3) uint8 of cache rows, one view each (an int or one per row)."""
        r = np.asarray(h5_rows, np.int64)
        v = np.broadcast_to(np.asarray(views, np.int64), r.shape)
        ds = self._h5["images"]
        out = np.empty((len(r), self.size, self.size, 3), np.uint8)
        for j, (row, view) in enumerate(zip(r, v)):
            out[j] = ds[row, view]
        return out

    def angles(self, h5_rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.sort(np.asarray(h5_rows, np.int64))
        return self._h5["azimuth"][r], self._h5["elevation"][r]

    def close(self) -> None:
        if getattr(self, "_h5", None) is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> RenderSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
