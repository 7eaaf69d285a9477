"""Work off the GUI thread.

:class:`GenerationService`: one worker thread that owns all generator calls of the loaded model. Requests
are keyed by *target* (a view: "A", "current", "filmstrip", ...). Newest request wins, as in stylegan3's
AsyncRenderer and napari's layer slicer: each request carries an id taken on the GUI thread; a new request
for a target replaces that target's pending one, a request that became stale while running is dropped before
meshing, and a result is delivered only if its id is still the target's newest. Generation and marching
cubes both run on the worker thread; the GUI thread only copies the finished mesh into its actor.

:class:`JobRunner`: one-off long jobs (projecting a shape to z, loading a checkpoint or bank, exporting)
on superqt workers, with progress, an abort flag checked between steps, and errors turned into messages.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from superqt.utils import create_worker

from gan_core.errors import Gan3dError
from gan_core.mesh import largest_component, voxels_to_cubes, voxels_to_mesh

log = logging.getLogger(__name__)


def error_message(exc: BaseException) -> str:
    """One line for the user: a Gan3dError's own message, or the type and text of a bug (logged in full)."""
    if isinstance(exc, Gan3dError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; close other views or use a smaller profile"
    log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    return f"internal error: {type(exc).__name__}: {exc} (details in the log)"


@dataclass(frozen=True)
class Request:
    """Immutable inputs of one job, captured on the GUI thread."""

    target: str
    id: int
    model: Any
    z: np.ndarray  # (z_dim,) one shape, or (N, z_dim) a batch (a path)
    level: float = 0.5
    display: str = "mesh"  # "mesh", "voxels" (cubes) or "none" (voxels only, e.g. thumbnails)
    job: Callable[[Any, np.ndarray], Any] | None = None  # a custom step after generation (retrieval)


@dataclass
class ShapeResult:
    """What a request produced. ``voxels`` (R, R, R) or (N, R, R, R) float32; ``mesh`` a PolyData (or None)."""

    target: str
    id: int
    z: np.ndarray
    voxels: np.ndarray
    mesh: Any = None
    level: float = 0.5
    display: str = "mesh"
    generate_ms: float = 0.0
    mesh_ms: float = 0.0
    extra: Any = None
    model: Any = field(default=None, repr=False)


class GenerationService(QObject):
    """Newest-request-wins generation and meshing for the loaded model, on one worker thread.

    Signals
    -------
    resultReady(ShapeResult)   a current result (stale ones are never emitted)
    failed(str target, str message)
    busyChanged(bool)
    """

    resultReady = pyqtSignal(object)
    failed = pyqtSignal(str, str)
    busyChanged = pyqtSignal(bool)
    _delivered = pyqtSignal(object)  # worker thread -> GUI thread (queued)
    _errored = pyqtSignal(str, int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model: Any = None
        self._ids = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._pending: dict[str, Request] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._running: Request | None = None
        self._in_queue = 0  # results, errors and idle markers posted to the GUI thread, not yet handled there
        self._busy = False
        self._subs: dict[str, list[Callable[[ShapeResult], None]]] = {}
        self.dropped = 0  # stale results dropped (for tests and the benchmark)
        self.last_generate_ms = 0.0
        self._delivered.connect(self._deliver)
        self._errored.connect(self._report_error)
        self._thread = threading.Thread(target=self._loop, name="gan3d-generation", daemon=True)
        self._thread.start()

    # -- GUI thread ----------------------------------------------------------------------------------------
    def set_model(self, model: Any) -> None:
        """Serve ``model`` from now on; everything pending for the old one becomes stale."""
        with self._cond:
            self.model = model
            self._pending.clear()
            self._latest = {k: next(self._ids) for k in self._latest}

    def subscribe(self, target: str, callback: Callable[[ShapeResult], None]) -> None:
        self._subs.setdefault(target, []).append(callback)

    def unsubscribe(self, target: str) -> None:
        self._subs.pop(target, None)

    def request(self, target: str, z: np.ndarray, *, level: float = 0.5, display: str = "mesh",
                job: Callable[[Any, np.ndarray], Any] | None = None) -> int:
        """Queue a shape (z (z_dim,)) or a batch (z (N, z_dim)) for ``target``; returns the request id.
        A pending request for the same target is replaced."""
        with self._cond:
            if self.model is None:
                return 0
            rid = next(self._ids)
            self._latest[target] = rid
            self._pending[target] = Request(target, rid, self.model, np.array(z, np.float32), float(level),
                                            display, job)
            self._cond.notify()
        self._set_busy(True)
        return rid

    def cancel(self, target: str) -> None:
        """Forget ``target``'s pending and running requests."""
        with self._cond:
            self._pending.pop(target, None)
            self._latest[target] = next(self._ids)

    def is_current(self, target: str, rid: int) -> bool:
        with self._cond:
            return self._latest.get(target) == rid

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._pending and self._running is None

    @property
    def busy(self) -> bool:
        """True from a request until its results (and all before them) reached the GUI thread."""
        return self._busy

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _deliver(self, result: ShapeResult) -> None:
        try:
            if result.id < 0:  # an idle marker: only settles busy
                pass
            elif not self.is_current(result.target, result.id):
                self.dropped += 1
            else:
                self.last_generate_ms = result.generate_ms
                for cb in list(self._subs.get(result.target, ())):
                    cb(result)
                self.resultReady.emit(result)
        finally:
            self._handled()

    def _report_error(self, target: str, rid: int, message: str) -> None:
        try:
            if self.is_current(target, rid):
                self.failed.emit(target, message)
        finally:
            self._handled()

    def _handled(self) -> None:
        """One posted item handled: busy ends when nothing is pending, running or still queued for us."""
        with self._cond:
            self._in_queue -= 1
            quiet = not self._pending and self._running is None and self._in_queue == 0
        self._set_busy(not quiet)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    # -- worker thread -------------------------------------------------------------------------------------
    def _stale(self, req: Request) -> bool:
        with self._cond:
            return self._latest.get(req.target) != req.id

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                target = next(iter(self._pending))  # the target waiting longest goes first
                req = self._running = self._pending.pop(target)
            try:
                result = self._run(req)
                if result is None:
                    self.dropped += 1
                else:
                    self._post(self._delivered, result)
            except BaseException as e:  # noqa: BLE001 (reported, never raised on the worker thread)
                self._post(self._errored, req.target, req.id, error_message(e))
            finally:
                with self._cond:
                    self._running = None
                    idle = not self._pending
                if idle:  # lets the GUI thread settle busy even when the last result was dropped here
                    self._post(self._delivered, ShapeResult("", -1, np.zeros(0), np.zeros(0)))

    def _post(self, signal: Any, *args: Any) -> None:
        with self._cond:
            self._in_queue += 1
        signal.emit(*args)

    def _run(self, req: Request) -> ShapeResult | None:
        t0 = time.perf_counter()
        vox = req.model.generate(req.z)  # (N, R, R, R)
        gen_ms = (time.perf_counter() - t0) * 1000
        if self._stale(req):
            return None  # superseded while generating: skip meshing
        single = req.z.ndim == 1
        vox = vox[0] if single else vox
        t1 = time.perf_counter()
        mesh = extra = None
        if req.job is not None:
            extra = req.job(req.model, vox)
        elif single and req.display == "mesh":
            mesh = voxels_to_mesh(vox, level=req.level, largest_component=True)
        elif single and req.display == "voxels":
            keep = largest_component(vox > req.level)  # as the smooth mesh shows it (the paper's figures)
            mesh = voxels_to_cubes(np.where(keep, vox, 0.0), level=req.level)
        return ShapeResult(req.target, req.id, req.z, vox, mesh, req.level, req.display, gen_ms,
                           (time.perf_counter() - t1) * 1000, extra, req.model)


class JobAborted(Exception):
    """Raised inside a job by its progress callback once abort was requested."""


class JobRunner(QObject):
    """Long one-off jobs on superqt workers, with one shared progress report for the status bar.

    ``start(label, fn, *args, on_done=..., progress=True)`` calls ``fn(*args, report=report)`` on a thread
    pool; ``report(done, total)`` updates the progress bar and raises JobAborted after :meth:`abort`.
    """

    progress = pyqtSignal(str, int, int)  # label, done, total (total 0: unknown)
    busyChanged = pyqtSignal(bool)
    failed = pyqtSignal(str)
    _progress = pyqtSignal(str, int, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: set[Any] = set()
        self._abort = threading.Event()
        self._progress.connect(self.progress)

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def start(self, label: str, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None, progress: bool = False) -> Any:
        self._abort.clear()
        kwargs: dict[str, Any] = {}
        if progress:
            def report(done: int, total: int) -> None:
                if self._abort.is_set():
                    raise JobAborted(label)
                self._progress.emit(label, int(done), int(total))
            kwargs["report"] = report
        worker = create_worker(fn, *args, **kwargs, _start_thread=False, _ignore_errors=True)
        self._workers.add(worker)

        def done(result: Any) -> None:
            if on_done is not None:
                try:
                    on_done(result)
                except Exception as e:  # noqa: BLE001 (a failed GUI update is a message, not a crash)
                    self._fail(label, e, on_error)

        worker.returned.connect(done)
        worker.errored.connect(lambda e: self._fail(label, e, on_error))
        worker.finished.connect(lambda: self._finished(worker))
        was_busy = self.busy
        self.progress.emit(label, 0, 0)
        worker.start()
        if not was_busy:
            self.busyChanged.emit(True)
        return worker

    def _fail(self, label: str, exc: BaseException, on_error: Callable[[str], None] | None) -> None:
        msg = f"{label}: cancelled" if isinstance(exc, JobAborted) else f"{label}: {error_message(exc)}"
        if on_error is not None:
            on_error(msg)
        self.failed.emit(msg)

    def _finished(self, worker: Any) -> None:
        self._workers.discard(worker)
        if not self.busy:
            self.busyChanged.emit(False)

    def abort(self) -> None:
        """Ask running jobs to stop at their next progress report."""
        self._abort.set()
