"""Export the A -> B sequence: a GIF or MP4 (frames rendered off-screen) or one mesh file per frame.

Generation and meshing of all frames run as one batch on a worker; VTK frames are rendered on the GUI
thread one per timer tick (OpenGL contexts belong to it), so the window stays responsive and the status
bar shows progress; the file is then written on a worker.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from gan_core.errors import BadFileError, BadInputError
from gan_core.files import atomic_path
from gan_core.mesh import MESH_FORMATS, export_mesh, voxels_to_mesh

from explorer.context import AppContext
from explorer.viewport import FrameRenderer

log = logging.getLogger(__name__)
VIDEO_FORMATS = (".gif", ".mp4")


def build_frames(model: Any, zs: np.ndarray, level: float, report: Callable[[int, int], None]) -> tuple[np.ndarray, list]:
    """Voxels (N, R, R, R) in one batch and a mesh per frame (worker thread)."""
    vox = model.generate(zs)
    meshes = []
    for i, v in enumerate(vox):
        meshes.append(voxels_to_mesh(v, level=level))
        report(i + 1, len(vox))
    return vox, meshes


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Atomically: a full disk or a read-only folder is a BadFileError and leaves no partial video."""
    import imageio.v2 as imageio

    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":  # encoded in memory: imageio's writer, failing on a file, fails again in __del__
            tmp.write_bytes(imageio.mimwrite("<bytes>", frames, format="GIF", duration=1.0 / fps, loop=0))
        else:
            with imageio.get_writer(tmp, fps=fps, codec="libx264", quality=8, macro_block_size=16) as w:
                for f in frames:
                    w.append_data(f)
    return path


def write_meshes(folder: Path, meshes: list, suffix: str, report: Callable[[int, int], None]) -> list[Path]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadFileError(f"{folder}: cannot create the folder ({e.strerror or type(e).__name__})") from None
    out = []
    for i, m in enumerate(meshes):
        if m.n_points == 0:
            continue  # empty at this level: nothing to write
        out.append(export_mesh(m, folder / f"frame_{i:03d}{suffix}"))
        report(i + 1, len(meshes))
    if not out:
        raise BadInputError("every frame is empty at this iso level; lower it and export again")
    return out


class SequenceExport(QObject):
    """One export run; ``done(str)`` with a summary, errors go to the notifier."""

    done = pyqtSignal(str)

    def __init__(self, ctx: AppContext, path: str | Path, frames: int = 48, fps: int = 16,
                 size: tuple[int, int] = (480, 480), mesh_suffix: str = ".stl") -> None:
        super().__init__(ctx)
        self.ctx, self.path, self.n, self.fps, self.size = ctx, Path(path), int(frames), int(fps), size
        self.mesh_suffix = mesh_suffix
        self.frames: list[np.ndarray] = []
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._render_next)

    def start(self) -> None:
        """Begin, or say in the window why not (this runs from a menu: nothing may escape)."""
        try:
            self._start()
        except BadInputError as e:
            self.ctx.notifier.error(f"Export {self.path.name}: {e}")

    def _start(self) -> None:
        st = self.ctx.state
        zs = st.path_z(np.linspace(0.0, 1.0, self.n))
        if zs is None or st.model is None:
            raise BadInputError("set both endpoints A and B first")
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FORMATS and not (self.path.is_dir() or suffix == ""):
            raise BadInputError(f"{self.path.name}: export a .gif, an .mp4, or meshes into a folder")
        if self.mesh_suffix not in MESH_FORMATS:
            raise BadInputError(f"unknown mesh format {self.mesh_suffix}; use {', '.join(MESH_FORMATS)}")
        self.level = st.level
        self.ctx.jobs.start("Generating frames", build_frames, st.model, zs, st.level, on_done=self._built,
                            progress=True)

    def _built(self, result: tuple[np.ndarray, list]) -> None:
        self.vox, self.meshes = result
        if self.path.suffix.lower() in VIDEO_FORMATS:
            self.renderer = FrameRenderer(self.size)
            self._i = 0
            self._timer.start(0)
        else:
            self.ctx.jobs.start("Writing meshes", write_meshes, self.path, self.meshes, self.mesh_suffix,
                                on_done=lambda paths: self._finish(f"{len(paths)} meshes in {self.path}"),
                                progress=True)

    def _render_next(self) -> None:
        try:
            self.frames.append(self.renderer.frame(self.vox[self._i], self.meshes[self._i], self.level))
        except Exception as e:  # noqa: BLE001 (shown as a message, the export stops)
            self._timer.stop()
            self.renderer.close()
            from explorer.workers import error_message

            self.ctx.notifier.error(f"Export: {error_message(e)}")
            return
        self._i += 1
        self.ctx.jobs.progress.emit("Rendering frames", self._i, len(self.vox))
        if self._i >= len(self.vox):
            self._timer.stop()
            self.renderer.close()
            self.ctx.jobs.start("Writing video", write_video, self.path, self.frames, self.fps,
                                on_done=lambda p: self._finish(f"{len(self.frames)} frames to {p}"))

    def _finish(self, text: str) -> None:
        self.ctx.notifier.info(f"Exported {text}")
        self.done.emit(text)
