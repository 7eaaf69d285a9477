"""Off-screen renders of voxel shapes: the image half of the 3D-VAE-GAN's training pairs.

Each shape is meshed once (:func:`gan_core.mesh.voxels_to_mesh`, light Taubin smoothing) and drawn from
``views`` random viewpoints by one reused off-screen PyVista plotter: azimuth all round, elevation 10-40
degrees, axis 2 up, a random key light (direction, intensity) over a dim headlight, a random mesh colour and
finish (drawn in :mod:`gan_core.data.render_scene`). The object is cropped out by its alpha mask and framed
exactly as :func:`gan_core.image_input.load_image` frames a user's photo, then composited over a plain,
gradient, noise or striped/checked background. That is the ``clean`` style (the default); the ``photo`` style
(:mod:`gan_core.data.render_photo`) randomises the scene so that renders look like cluttered photos: several
coloured lights, materials, wider camera ranges, detector-like off-centre crops, rooms, textures and other
furniture behind, occluders in front, blur, colour jitter and JPEG artefacts.

Renders are cached in HDF5 by :func:`gan_core.data.render_cache.render_dataset` and read by its
:class:`~gan_core.data.render_cache.RenderSet`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gan_core.data.render_photo import STYLES
from gan_core.data.render_scene import (
    ELEVATION_RANGE, SMOOTH_ITERATIONS, draw_look, random_background, shape_rng, view_angles,
)
from gan_core.errors import BadInputError

__all__ = ["ELEVATION_RANGE", "SMOOTH_ITERATIONS", "STYLES", "Renderer", "render_shapes", "shape_rng"]

SUPERSAMPLE = 1.5  # render at 1.5x the output size, then crop to the object and downsample


# -- the renderer ------------------------------------------------------------------------------------------
class Renderer:
    """One off-screen plotter, reused for every image (creating a plotter costs ~1 s; a render ~3 ms).

    Parameters
    ----------
    size : output side S in pixels (the profile's ``image_size``).
    smooth_iterations : Taubin smoothing passes on the marching-cubes mesh.
    style : ``"clean"`` (one object centred on a simple background) or ``"photo"`` (domain-randomised scenes,
        :mod:`gan_core.data.render_photo`).
    distractors : photo style: grids (M, R, R, R) whose renders are pasted behind the object as clutter
        (default: a few synthetic chairs, tables and boxes). Rendered once, on the first photo image.

    Examples
    --------
    >>> from gan_core.data.synthetic import chair          # doctest: +SKIP
    >>> with Renderer(128) as r:                            # doctest: +SKIP
    ...     images, az, el = r.render_views(chair(32), 4, np.random.default_rng(0))
    >>> images.shape                                        # doctest: +SKIP
    (4, 128, 128, 3)
    """

    def __init__(self, size: int = 128, *, smooth_iterations: int = SMOOTH_ITERATIONS, style: str = "clean",
                 distractors: np.ndarray | None = None) -> None:
        if not isinstance(size, (int, np.integer)) or not 16 <= size <= 1024:
            raise BadInputError(f"render size must be an integer in 16..1024, got {size!r}")
        if style not in STYLES:
            raise BadInputError(f"unknown render style {style!r}; known: {', '.join(STYLES)}")
        import pyvista as pv

        self.size = int(size)
        self.style = style
        self.distractors = distractors
        self._pool: list[np.ndarray] | None = None  # photo style: RGBA crops of the distractors
        self._own: list[np.ndarray] = []  # photo style: crops of the current shape's earlier views
        self.last_info: list[dict[str, Any]] = []  # photo style: what each image of the last render_views drew
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
        self.extra: list[Any] = []  # photo style: up to two more scene lights (none in the clean style)
        if style == "photo":
            for _ in range(2):
                light = pv.Light(light_type="scene light")
                light.positional = False
                self.plotter.add_light(light)
                self.extra.append(light)
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

    def _aim_camera(self, azimuth: float, elevation: float, view_angle: float):  # -> vtkCamera
        """Look at the shape's centre from (azimuth, elevation) degrees, up = +z, with this field of view, the
        distance set so the bounds fit (ResetCamera keeps the direction); returns the camera."""
        centre = np.asarray(self._mesh.center)
        a, e = np.radians(azimuth), np.radians(elevation)
        direction = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
        cam = self.plotter.camera
        cam.focal_point = tuple(centre)
        cam.position = tuple(centre + 3.0 * direction)
        cam.up = (0.0, 0.0, 1.0)
        cam.view_angle = view_angle
        self.plotter.renderer.ResetCamera()
        return cam

    def _setup_view(self, azimuth: float, elevation: float, g: np.random.Generator) -> None:
        look = draw_look(g)
        prop = self._actor.prop
        prop.color = look.colour
        prop.ambient, prop.diffuse = look.ambient, look.diffuse
        prop.specular, prop.specular_power = look.specular, look.specular_power
        self.key.position = look.key_direction
        self.key.focal_point = (0.0, 0.0, 0.0)
        self.key.intensity = look.key_intensity
        self.fill.intensity = look.fill_intensity
        self._aim_camera(azimuth, elevation, look.view_angle)
        self.plotter.renderer.ResetCameraClippingRange()

    def render(self, azimuth: float, elevation: float, g: np.random.Generator) -> np.ndarray:
        """One image (S, S, 3) uint8 of the current shape from (azimuth, elevation) degrees, with lighting,
        colour and background drawn from ``g``."""
        from gan_core.image_input import frame_object

        s = self.size
        bg = random_background(s, g)  # (S, S, 3)
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
        if self.style == "photo":
            return self._render_photo_views(grid, views, g)
        self.set_shape(grid)
        az, el = view_angles(views, g)
        images = np.stack([self.render(float(a), float(e), g) for a, e in zip(az, el)])
        return images, az.astype(np.float32), el.astype(np.float32)

    # -- the photo style -----------------------------------------------------------------------------------
    def _render_photo_views(self, grid: np.ndarray, views: int, g: np.random.Generator
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from gan_core.data.render_photo import PHOTO_ELEVATION_RANGE

        if self._pool is None:
            self._pool = self._distractor_pool()
        self.set_shape(grid)
        self._own, self.last_info = [], []
        az, el = view_angles(views, g, PHOTO_ELEVATION_RANGE)
        images = np.stack([self.render_photo(float(a), float(e), g) for a, e in zip(az, el)])
        return images, az.astype(np.float32), el.astype(np.float32)

    def _distractor_pool(self) -> list[np.ndarray]:
        """RGBA crops (h, w, 4) float32 of the distractor shapes, each from a fixed random view and look."""
        from gan_core.data.synthetic import box, chair, cylinder, table

        grids = self.distractors
        if grids is None:
            grids = [chair(32, rng=i) for i in range(3)] + [table(32, rng=i) for i in range(3)] + [
                box(32, size=(0.8, 0.5, 0.9)), cylinder(32, radius=0.3, height=0.9)]
        pool = []
        for i, grid in enumerate(grids):
            self.set_shape(np.asarray(grid))
            if self._empty:
                continue
            g = np.random.default_rng([0x5EED, i])
            rgba = self._object_rgba(g.uniform(0, 360), g.uniform(0, 45), g)
            if rgba is not None:
                pool.append(self._small(rgba))
        return pool

    def _small(self, rgba: np.ndarray) -> np.ndarray:
        """A crop shrunk to at most half the output side (sprites are pasted at most that big)."""
        from gan_core.data.render_photo import resize

        h, w = rgba.shape[:2]
        scale = min(1.0, 0.75 * self.size / max(h, w))
        return resize(rgba, max(2, int(h * scale)), max(2, int(w * scale))) if scale < 1 else rgba

    def _object_rgba(self, azimuth: float, elevation: float, g: np.random.Generator) -> np.ndarray | None:
        """The current shape under a photo look, cropped to its alpha: (h, w, 4) float32, colour premultiplied
        by alpha (None when nothing is in view)."""
        from gan_core.data.render_photo import draw_photo_look

        look = draw_photo_look(g)
        prop = self._actor.prop
        prop.color = look.colour
        prop.ambient, prop.diffuse = look.ambient, look.diffuse
        prop.specular, prop.specular_power = look.specular, look.specular_power
        lights = [self.key, *self.extra]
        for light, spec in zip(lights, [*look.lights, *[None] * len(lights)]):
            if spec is None:
                light.intensity = 0.0
                continue
            light.position = spec.direction
            light.focal_point = (0.0, 0.0, 0.0)
            light.diffuse_color = light.specular_color = spec.colour
            light.intensity = spec.intensity
        self.fill.intensity = look.fill_intensity
        self._aim_camera(azimuth, elevation, look.view_angle).Dolly(look.dolly)
        self.plotter.renderer.ResetCameraClippingRange()
        self.plotter.render()
        rgba = self.plotter.screenshot(transparent_background=True, return_img=True)  # (W, W, 4) uint8
        alpha = rgba[..., 3]
        rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        if len(rows) == 0:
            return None
        crop = rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255
        crop[..., :3] *= crop[..., 3:4]
        return crop

    def render_photo(self, azimuth: float, elevation: float, g: np.random.Generator) -> np.ndarray:
        """One photo-style image (S, S, 3) uint8 of the current shape; what was drawn is appended to
        ``last_info`` (background kind, the object's box (top, bottom, left, right), occluded share, JPEG
        quality)."""
        from gan_core.data.render_photo import (
            add_occluder, add_patches, add_shadow, apply_finish, detector_box, draw_finish, paste_sprite,
            photo_background, resize,
        )

        s = self.size
        rgba = None if self._empty else self._object_rgba(azimuth, elevation, g)  # first: the room fits its box
        box = None if rgba is None else detector_box(rgba.shape[0], rgba.shape[1], s, g)
        kind, img = photo_background(s, g, box)  # (S, S, 3)
        add_patches(img, g)
        sprites = [*(self._pool or []), *self._own]
        for _ in range(int(g.integers(0, 4)) if sprites else 0):
            paste_sprite(img, sprites[int(g.integers(len(sprites)))], g)
        info: dict[str, Any] = {"background": kind, "box": None, "occluded": 0.0}
        if rgba is not None and box is not None:
            t, b, l, r = box
            obj = resize(rgba, b - t, r - l)
            if g.random() < 0.7:
                add_shadow(img, box, g)
            a = np.clip(obj[..., 3:4], 0, 1)
            img[t:b, l:r] = np.clip(obj[..., :3] + img[t:b, l:r] * (1 - a), 0, 1)
            info["box"] = box
            if g.random() < 0.35:
                info["occluded"] = add_occluder(img, box, g)
            self._own.append(self._small(rgba))
        finish = draw_finish(g)
        info["jpeg_quality"] = finish.jpeg_quality
        self.last_info.append(info)
        return apply_finish(img, finish, g)

    def close(self) -> None:
        if self.plotter is not None:
            self.plotter.close()
            self.plotter = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def render_shapes(voxels: np.ndarray, *, views: int = 1, size: int = 128, seed: int = 0,
                  rows: Sequence[int] | None = None, renderer: Renderer | None = None, style: str = "clean",
                  distractors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render grids (N, R, R, R) in memory: images (N, K, S, S, 3) uint8, azimuth and elevation (N, K).

    ``rows`` (N,) names each shape for its random stream (default 0..N-1), as in :func:`render_dataset`;
    ``style`` and ``distractors`` are the renderer's when none is given (a given renderer keeps its own).
    """
    vox = np.asarray(voxels)
    if vox.ndim != 4:
        raise BadInputError(f"voxels must be (N, R, R, R), got {vox.shape}")
    rows = list(range(len(vox))) if rows is None else [int(r) for r in rows]
    own = renderer is None
    r = renderer or Renderer(size, style=style, distractors=distractors)
    try:
        out = [r.render_views(v, views, shape_rng(seed, row)) for v, row in zip(vox, rows)]
    finally:
        if own:
            r.close()
    if not out:
        return np.zeros((0, views, size, size, 3), np.uint8), np.zeros((0, views), np.float32), np.zeros((0, views), np.float32)
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), np.stack([o[2] for o in out])
