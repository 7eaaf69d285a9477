"""What every panel is given: the session state, the generation service, the job runner, the camera link
and the notifier; plus :class:`ShapeChannel`, which binds one view to a latent of the state."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Protocol

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import QWidget

from explorer.state import LOOK_FIELDS, SessionState
from explorer.viewport import CameraLink, ShapeView
from explorer.visibility import Visibility
from explorer.workers import GenerationService, JobRunner, ShapeResult

log = logging.getLogger(__name__)


class Notifier(QObject):
    """The one place user messages go (panels, workers, the excepthook); the window shows them.
    Safe to call from any thread (the signal is queued to the GUI thread)."""

    message = pyqtSignal(str, str)  # level ("info", "warning", "error"), text

    def info(self, text: str) -> None:
        self.message.emit("info", text)

    def warning(self, text: str) -> None:
        self.message.emit("warning", text)

    def error(self, text: str) -> None:
        log.info("user error: %s", text)
        self.message.emit("error", text)


class AppContext(QObject):
    """Shared services. Panels keep no session data: they read ``state`` and write through it."""

    def __init__(self, state: SessionState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.service = GenerationService(self)
        self.jobs = JobRunner(self)
        self.notifier = Notifier(self)
        self.cameras = CameraLink()
        self.actions: dict[str, Any] = {}  # window actions panels may trigger ("open_bank", ...)
        self.waiting: set[Any] = set()  # ShapeChannels holding back a request (min_interval_ms)
        # Model.project's effort. Its default (200 steps x 4 restarts) took 140 s for fast32 on this loaded
        # 2-core machine (150 x 4 measured), and it holds the model's lock, so no view updates meanwhile:
        # a fifth of that, with progress and a Cancel button, is the interactive compromise.
        self.project_steps = 60
        self.project_restarts = 2
        self.service.failed.connect(lambda target, msg: self.notifier.error(f"{target}: {msg}"))
        self.jobs.failed.connect(self.notifier.error)
        state.modelChanged.connect(self.service.set_model)
        if state.model is not None:
            self.service.set_model(state.model)

    def project(self, voxels: np.ndarray, label: str, apply: Callable[[np.ndarray, str], None]) -> Any:
        """Project a voxel grid into z on a worker (progress in the status bar), then ``apply(z, label)``.

        Model.project runs a few hundred optimiser steps; its progress callback is also the abort check.
        """
        model = self.state.model
        if model is None:
            self.notifier.error("no model is loaded")
            return None
        grid = np.array(voxels, np.float32)

        def job(report: Callable[[int, int], None]) -> tuple[np.ndarray, float]:
            return model.project(grid, steps=self.project_steps, restarts=self.project_restarts, progress=report)

        def done(res: tuple[np.ndarray, float]) -> None:
            z, iou = res
            apply(z, f"{label} (projected, IoU {iou:.2f})")

        return self.jobs.start(f"Projecting {label}", job, on_done=done, progress=True)

    @property
    def busy(self) -> bool:
        """Something is still to come: generation or a job pending or running, or a view about to ask."""
        return self.service.busy or self.jobs.busy or bool(self.waiting)

    def shutdown(self) -> None:
        self.jobs.shutdown()
        self.service.shutdown()


class ShapeSink(Protocol):
    """What a :class:`ShapeChannel` shows its shapes on, a widget: a :class:`ShapeView`, a
    :class:`explorer.widgets.Thumb`, or a panel that shows them its own way (the map's points, the keyframe
    strip, the neighbours list)."""

    def set_result(self, result: ShapeResult) -> None:
        """Show ``result`` (voxels, mesh or a job's ``extra``)."""

    def set_status(self, text: str) -> None:
        """A line about the shape: "empty" (no shape to show), an error message, or "" (all well)."""


class ShapeChannel(QObject):
    """Keeps ``view`` showing ``z_of()``: re-requests when one of ``fields`` (or the iso level, display mode
    or model) changes, shows only the service's current result for its target. A view off screen (another
    tab, a closed dock or one behind another tab: :mod:`explorer.visibility`) asks for nothing until it is on
    screen, so the views on screen get the generator first.

    At most one request per view is in flight: changes that arrive meanwhile are folded into one request
    sent when it returns (with the newest z, read then). So during a slider drag the view shows a new
    shape each time the worker finishes one, instead of every result being superseded before it arrives
    and the view standing still until the drag ends. A shape the service has cached is shown at once,
    without the worker; a change that leaves the shape as it is (the same z, level, display and model: a
    slider snapped to a precomputed position) asks for nothing.

    ``display`` None follows the state's display mode; "none" asks for voxels only (thumbnails). A
    ``caption`` needs a :class:`ShapeView`.
    """

    shown = pyqtSignal(object)  # the ShapeResult now on screen

    def __init__(self, ctx: AppContext, target: str, view: ShapeSink, z_of: Callable[[], np.ndarray | None],
                 fields: frozenset[str], *, caption: Callable[[], str] | None = None, display: str | None = None,
                 link_camera: bool = True, job_of: Callable[[], Any] | None = None,
                 min_interval_ms: int = 0) -> None:
        if not isinstance(view, QWidget):
            raise TypeError(f"a ShapeChannel shows its shapes on a widget, not {type(view).__name__}")
        if caption is not None and not isinstance(view, ShapeView):
            raise TypeError(f"a caption needs a ShapeView, not {type(view).__name__}")
        super().__init__(view)
        self.ctx, self.target, self.view, self.z_of = ctx, target, view, z_of
        self.job_of = job_of
        self.min_interval_ms = min_interval_ms  # at most one request per this interval (the last one always goes)
        self._last_request = -1e9
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(self.refresh)
        self.fields = frozenset(fields) | LOOK_FIELDS
        self.caption = caption
        self.display = display
        self.result: ShapeResult | None = None
        self.visibility = Visibility(view, self.refresh)
        self._inflight = 0  # id of the request on its way, 0 if none
        self._again = False  # something changed while it was on its way
        self._sent: tuple[Any, ...] | None = None  # what the last request asked for (shown or on its way)
        ctx.service.subscribe(target, self._show)
        ctx.service.failed.connect(self._failed)
        ctx.state.changed.connect(self._on_changed)
        ctx.state.modelChanged.connect(self._on_model)
        if link_camera and isinstance(view, ShapeView):
            ctx.cameras.add(view)
        self.refresh()

    def _on_changed(self, fields: frozenset[str]) -> None:
        if fields & self.fields:
            self.refresh()

    def _on_model(self, _model: Any) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.ctx.waiting.discard(self)
        if not self.visibility.due():
            return  # asked again once the view is on screen
        z = self.z_of()
        if z is None:
            self._sent = None
            self.ctx.service.cancel(self.target)
            self.view.set_status("empty")
            return
        state = self.ctx.state
        display = self.display or state.display
        sent = (np.asarray(z, np.float32).tobytes(), state.level, display, id(state.model))
        if self.job_of is None and sent == self._sent:
            self._again = False
            return  # that shape is shown or on its way
        hit = self.ctx.service.cached(self.target, z, level=state.level, display=display) if not self.job_of else None
        if hit is not None:  # shown now, in this event: the slider and the shape reach the screen together
            self.ctx.service.cancel(self.target)  # a result still on its way must not replace it
            self._again = False
            self._sent = sent
            self._show_result(hit)
            return
        if self._inflight and self.ctx.service.is_current(self.target, self._inflight):
            self._again = True  # fold into one request when the one in flight returns
            return
        wait = self._last_request + self.min_interval_ms / 1000 - time.perf_counter()
        if wait > 0:  # too soon after the last request: ask once the interval is over, with the newest z then
            if not self._later.isActive():
                self._later.start(int(wait * 1000) + 1)
            self.ctx.waiting.add(self)
            return
        job = self.job_of() if self.job_of is not None else None
        if self.job_of is not None and job is None:
            return  # nothing to compute (e.g. no bank)
        self._again = False
        self._last_request = time.perf_counter()
        self._inflight = self.ctx.service.request(self.target, z, level=state.level, display=display, job=job)
        self._sent = sent if self._inflight else None  # 0: the service has no model yet

    def _returned(self) -> None:
        self._inflight = 0
        if self._again:
            self._again = False
            self.refresh()

    def _failed(self, target: str, message: str) -> None:
        if target != self.target:
            return
        self._sent = None
        self.view.set_status(message)
        self._returned()

    def _show(self, result: ShapeResult) -> None:
        self._show_result(result)
        self._returned()

    def _show_result(self, result: ShapeResult) -> None:
        self.result = result
        if self.caption is not None and isinstance(self.view, ShapeView):
            self.view.set_caption(self.caption())  # with the shape, in the same repaint
        self.view.set_result(result)
        self.shown.emit(result)

    def detach(self) -> None:
        self._later.stop()
        self.ctx.waiting.discard(self)
        self.ctx.service.unsubscribe(self.target)
        if isinstance(self.view, ShapeView):
            self.ctx.cameras.remove(self.view)
