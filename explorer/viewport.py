"""Views of one shape.

:class:`VtkView` wraps a pyvistaqt ``QtInteractor``: the mesh lives in one PolyData per display mode whose
arrays are replaced in place (``copy_from``), so a new shape never re-adds an actor; it has no render
timer (it renders when its shape changes, skips that while off screen and catches up when back: see
:mod:`explorer.visibility`), and :meth:`VtkView.close_view` closes the interactor. Cameras can be shared between
views (one vtkCamera). VTK draws into a native window of its own
(pyvistaqt 0.11): a QOpenGLWidget-based interactor (pyvistaqt 0.12+) makes Qt compose the whole main window
with OpenGL on every update, which on software GL cost more than drawing the shape.

:class:`ProjectionView` is a stand-in for platforms where VTK cannot draw (``QT_QPA_PLATFORM=offscreen``,
or ``GAN3D_EXPLORER_VTK=0``): it shows the same shape as a shaded numpy picture (:mod:`explorer.thumbs`),
so every panel keeps working and the non-rendering tests need no OpenGL. :func:`make_view` picks one.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QGuiApplication, QImage
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from explorer.thumbs import BASE_COLOR, VIEW_DIR, shade_voxels, to_qimage
from explorer.visibility import Visibility

log = logging.getLogger(__name__)

BACKGROUND = ("#f7f8fa", "#d9e0e8")  # bottom, top of the gradient
CAMERA_DISTANCE = 2.4  # frames a sphere of radius ~0.62: generated shapes rarely reach the grid's corners
LIVE_INTERACTORS: "weakref.WeakSet[Any]" = weakref.WeakSet()  # for the test suite's leak check


def vtk_enabled() -> bool:
    """Whether 3D views can use VTK here: not on Qt's offscreen/minimal platforms, not when disabled."""
    if os.environ.get("GAN3D_EXPLORER_VTK", "1") == "0":
        return False
    return QGuiApplication.platformName() not in ("offscreen", "minimal")


def place_camera(camera: Any, radius: float | None = None) -> None:
    """The default 3/4 view, axis 2 up. It frames a sphere of ``radius`` about the grid centre: by default
    the one most generated shapes fit in; pass a shape's own (say an untrained generator's full cube)."""
    d = VIEW_DIR / np.linalg.norm(VIEW_DIR)
    dist = CAMERA_DISTANCE if radius is None else max(CAMERA_DISTANCE, radius / np.sin(np.radians(15)) * 1.04)
    camera.focal_point = (0.0, 0.0, -0.03)
    camera.position = tuple(d * dist)
    camera.up = (0.0, 0.0, 1.0)
    camera.view_angle = 30.0
    camera.clipping_range = (0.1, 10.0)


class ShapeView(QFrame):
    """A captioned view of one shape. Subclasses draw; this frame shows a caption and a status line."""

    cameraMoved = pyqtSignal()
    uses_camera = False  # whether set_shared_camera does anything (a VtkView)

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._caption = QLabel(title)
        self._caption.setStyleSheet("font-weight: 600;")
        self._status = QLabel("")
        self._status.setStyleSheet("color: #666;")
        self._status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        head = QHBoxLayout()
        head.setContentsMargins(6, 2, 6, 0)
        head.addWidget(self._caption)
        head.addStretch(1)
        head.addWidget(self._status)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(1, 1, 1, 1)
        self._layout.setSpacing(2)
        self._layout.addLayout(head)
        self.voxels: np.ndarray | None = None
        self.mesh: Any = None
        self.level = 0.5
        self.shown_count = 0  # shapes handed to the view so far (--screenshot waits for them; tests)
        self.empty = False
        self.setAccessibleName(f"3D view: {title}" if title else "3D view")
        self.setToolTip("Drag to rotate, wheel to zoom, right-drag to pan; View > Reset view to re-centre")

    def set_caption(self, text: str) -> None:
        self._caption.setText(text)

    def set_status(self, text: str) -> None:
        self._status.setText(text)
        self.empty = text == "empty"

    def settled(self) -> bool:
        """Shows a shape, or has none to show (an empty slot)."""
        return self.shown_count > 0 or self.empty

    def set_result(self, result: Any) -> None:
        """Show a generation result (voxels + mesh) from :class:`explorer.workers.GenerationService`."""
        self.voxels, self.mesh, self.level = result.voxels, result.mesh, result.level
        empty = result.mesh is not None and result.mesh.n_points == 0
        empty = empty or not bool((np.asarray(result.voxels) > result.level).any())
        self.set_status(f"empty at level {result.level:.2f}" if empty else "")
        self._draw(result)
        self.shown_count += 1

    def _draw(self, result: Any) -> None:
        raise NotImplementedError

    def reset_view(self) -> None:
        """Back to the default 3/4 view."""

    def _radius(self) -> float | None:
        return None

    def set_shared_camera(self, camera: Any) -> None:
        """Use ``camera`` (a pyvista Camera) or, with None, a camera of its own."""

    def image(self) -> np.ndarray:
        """What the view shows, RGB (H, W, 3) uint8."""
        raise NotImplementedError

    def save_png(self, path: str) -> None:
        from PIL import Image

        Image.fromarray(self.image()).save(path)

    def render_now(self) -> None:
        """Draw now if visible (a hidden view draws when it is next shown)."""

    def close_view(self) -> None:
        """Release native resources; the widget must not be used afterwards."""


class ProjectionView(ShapeView):
    """Stand-in 3D view drawing :func:`explorer.thumbs.shade_voxels` (no OpenGL; offscreen platforms)."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self._label = QLabel()
        self._label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._label.setMinimumSize(80, 80)
        self._label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._label.setStyleSheet(f"background: {BACKGROUND[0]};")
        self._layout.addWidget(self._label, 1)
        self._qimage: QImage | None = None

    def _draw(self, result: Any) -> None:
        side = max(64, min(self._label.width(), self._label.height(), 512))
        self._qimage = to_qimage(shade_voxels(result.voxels, result.level, side))
        from PyQt6.QtGui import QPixmap

        self._label.setPixmap(QPixmap.fromImage(self._qimage))

    def image(self) -> np.ndarray:
        img = self._label.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
        ptr = img.constBits()
        ptr.setsize(img.sizeInBytes())
        arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
        return arr.reshape(img.height(), img.width(), 3).copy()


class VtkView(ShapeView):
    """A pyvistaqt view of one shape, updated in place (see the module docstring).

    Its interactor (a native window with an OpenGL context: about 0.1 s each on a 2-core machine) is made when
    the view is first shown, or when :attr:`plotter` is first asked for: a view in a tab nobody has opened costs
    nothing at launch. Until then a shape given to it waits and is drawn when the interactor exists."""

    uses_camera = True

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        import pyvista as pv

        self._title = title
        self._plotter: Any = None
        self._polys = {"mesh": pv.PolyData(), "voxels": pv.PolyData()}
        self._actors: dict[str, Any] = {}
        self._own_camera: Any = None
        self._shared_camera: Any = None  # asked for before the interactor existed (set_shared_camera)
        self._pending: Any = None  # the last result given before the interactor existed
        # renders only while on screen; catches up (on the next turn of the event loop, once the interactor
        # made in showEvent is in) when back
        self.visibility = Visibility(self, lambda: QTimer.singleShot(0, self.render_now))
        self._framed = False
        self._closed = False

    @property
    def plotter(self) -> Any:
        """The pyvistaqt ``QtInteractor``, made on first use (None once the view was closed without one)."""
        if self._plotter is None and not self._closed:
            self._build()
        return self._plotter

    @property
    def built(self) -> bool:
        """Whether the interactor exists (the view has been shown, or its plotter asked for)."""
        return self._plotter is not None

    def _build(self) -> None:
        from pyvistaqt import QtInteractor

        pl = self._plotter = QtInteractor(self, auto_update=False, multi_samples=0)
        LIVE_INTERACTORS.add(pl)
        pl.setAcceptDrops(False)  # pyvistaqt would add any dropped file as a mesh; panels handle drops
        pl.setAccessibleName(f"3D view {self._title}")
        pl.setMinimumSize(80, 80)
        self._layout.addWidget(pl, 1)
        pl.set_background(BACKGROUND[0], top=BACKGROUND[1])
        self._own_camera = pl.renderer.camera
        place_camera(self._own_camera)
        if self._shared_camera is not None:
            pl.renderer.camera = self._shared_camera
        pl.renderer.AddObserver("StartEvent", self._fit_aspect)
        if pl.iren is not None:
            pl.iren.add_observer("InteractionEvent", lambda *_: self.cameraMoved.emit())
        if self.isVisible():
            pl.show()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._draw(pending)

    def _fit_aspect(self, renderer: Any, _event: str) -> None:
        # Before every render (ours or the interactor's): in a narrow view the camera's angle is taken
        # horizontally, so the unit cube fits whatever the view's shape (and with a shared camera too).
        w, h = renderer.GetSize()
        renderer.GetActiveCamera().SetUseHorizontalViewAngle(w < h)

    def _actor(self, display: str) -> Any:
        if display not in self._actors:
            flat = display == "voxels"
            actor = self.plotter.add_mesh(
                self._polys[display], color=tuple(BASE_COLOR), smooth_shading=False, specular=0.25,
                specular_power=20.0, ambient=0.12, diffuse=0.85, show_edges=False, reset_camera=False,
                name=display, copy_mesh=False, render=False)
            actor.prop.interpolation = "flat" if flat else "phong"
            self._actors[display] = actor
        return self._actors[display]

    def _draw(self, result: Any) -> None:
        if self._closed or result.mesh is None:
            return
        if self._plotter is None:  # not shown yet: drawn when the interactor is made (showEvent)
            self._pending = result
            self.visibility.mark_stale()
            return
        display = result.display if result.display in self._polys else "mesh"
        poly = self._polys[display]
        poly.copy_from(result.mesh, deep=False)  # in place: the actor and mapper stay
        if poly.n_points:
            self._actor(display).visibility = True
            if not self._framed:  # the first shape: make sure it fits; later shapes keep the user's view
                self._framed = True
                cam = self.plotter.renderer.camera
                radius = self._radius() or 0.0
                if radius / np.sin(np.radians(15)) * 1.04 > cam.distance:  # only ever step back
                    place_camera(cam, radius)
        for other, actor in self._actors.items():
            actor.visibility = other == display and poly.n_points > 0
        self.render_now()

    def render_now(self) -> None:
        if self._closed or self._plotter is None:
            return
        if not self.visibility.due():
            return  # skipped while off screen (another tab, a closed dock); drawn when back
        # Schedule a repaint: the interactor's paintEvent renders the scene, so calling render() here as well
        # would draw every shape twice; several updates before the next paint also fold into one.
        self.plotter.update()

    def showEvent(self, event: Any) -> None:  # noqa: N802
        super().showEvent(event)
        if self._plotter is None and not self._closed:
            self._build()

    def _radius(self) -> float | None:
        pts = [p.points for p in self._polys.values() if p.n_points]
        return float(max(np.linalg.norm(p, axis=1).max() for p in pts)) if pts else None

    def reset_view(self) -> None:
        if self._plotter is None:
            return  # placed when the interactor is made
        place_camera(self._plotter.renderer.camera, self._radius())
        self.render_now()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if not self._closed and self._plotter is not None and self.voxels is not None:
            self.render_now()

    def set_shared_camera(self, camera: Any) -> None:
        self._shared_camera = camera
        if self._plotter is None:
            return  # applied when the interactor is made
        self._plotter.renderer.camera = camera if camera is not None else self._own_camera
        self.render_now()

    def image(self) -> np.ndarray:
        self.plotter.render()
        img = self.plotter.screenshot(None, return_img=True)
        return np.asarray(img)[..., :3].copy()

    def close_view(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending = None
        if self._plotter is not None:
            self._plotter.render_timer.stop()
            self._plotter.close()

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        self.close_view()
        super().closeEvent(event)


def make_view(title: str = "", parent: QWidget | None = None, *, vtk: bool | None = None) -> ShapeView:
    """A VtkView where VTK can draw, else a ProjectionView (see :func:`vtk_enabled`)."""
    use_vtk = vtk_enabled() if vtk is None else vtk
    return VtkView(title, parent) if use_vtk else ProjectionView(title, parent)


class CameraLink:
    """Shares one camera between views while linked and re-renders the others when one is moved."""

    def __init__(self) -> None:
        self._camera: Any = None  # made on first use (camera): views without VTK need no pyvista.plotting
        self.views: list[ShapeView] = []
        self.linked = False

    @property
    def camera(self) -> Any:
        """The shared pyvista Camera."""
        if self._camera is None:
            import pyvista as pv

            self._camera = pv.Camera()
            place_camera(self._camera)
        return self._camera

    def add(self, view: ShapeView) -> None:
        self.views.append(view)
        view.cameraMoved.connect(lambda v=view: self._moved(v))
        if self.linked and view.uses_camera:
            view.set_shared_camera(self.camera)

    def remove(self, view: ShapeView) -> None:
        if view in self.views:
            self.views.remove(view)

    def set_linked(self, linked: bool) -> None:
        self.linked = linked
        for v in self.views:
            if v.uses_camera:  # (set_shared_camera of a view without VTK does nothing)
                v.set_shared_camera(self.camera if linked else None)

    def _moved(self, view: ShapeView) -> None:
        if self.linked:
            for v in self.views:
                if v is not view:
                    v.render_now()

    def reset(self) -> None:
        if not self.linked:
            for v in self.views:
                v.reset_view()
            return
        radii = [r for v in self.views if (r := v._radius()) is not None] if self.views else []
        place_camera(self.camera, max(radii) if radii else None)
        for v in self.views:
            v.render_now()


class FrameRenderer:
    """Off-screen frames of meshes for GIF/MP4 export, with one PolyData updated in place; without VTK,
    numpy pictures (:func:`shade_voxels`)."""

    def __init__(self, size: tuple[int, int] = (480, 480), *, vtk: bool | None = None) -> None:
        self.size = size
        self.vtk = vtk_enabled() if vtk is None else vtk
        self._plotter: Any = None
        if self.vtk:
            import pyvista as pv

            self._plotter = pv.Plotter(off_screen=True, window_size=list(size))
            self._plotter.set_background(BACKGROUND[0], top=BACKGROUND[1])
            self._poly = pv.PolyData()
            self._actor: Any = None
            place_camera(self._plotter.camera)

    def frame(self, voxels: np.ndarray, mesh: Any, level: float = 0.5) -> np.ndarray:
        """RGB (H, W, 3) uint8."""
        if not self.vtk:
            rgba = shade_voxels(voxels, level, min(self.size), fit=False)
            a = rgba[..., 3:4] / 255.0
            return (rgba[..., :3] * a + 247 * (1 - a)).astype(np.uint8)
        self._poly.copy_from(mesh, deep=False)
        if self._actor is None and self._poly.n_points:
            self._actor = self._plotter.add_mesh(self._poly, color=tuple(BASE_COLOR), specular=0.25,
                                                 reset_camera=False, copy_mesh=False)
            self._actor.prop.interpolation = "phong"
        return np.asarray(self._plotter.screenshot(None, return_img=True))[..., :3].copy()

    def close(self) -> None:
        if self._plotter is not None:
            self._plotter.close()
            self._plotter = None
