"""Work off the GUI thread.

:class:`GenerationService`: one worker thread that owns all generator calls of the loaded model. Requests
are keyed by *target* (a view: "A", "current", "filmstrip", ...). Newest request wins, as in stylegan3's
AsyncRenderer and napari's layer slicer: each request carries an id taken on the GUI thread; a new request
for a target replaces that target's pending one, a request that became stale while running is dropped before
meshing, and a result is delivered only if its id is still the target's newest. Generation and marching
cubes both run on the worker thread; the GUI thread only copies the finished mesh into its actor.
Finished shapes (grid and mesh) are cached by (z, level, display) for the loaded model (:class:`ShapeCache`),
and :meth:`GenerationService.cached` hands one to the GUI thread at once, so a slider position seen before
costs no generation, no marching cubes and no trip through the worker. *Background* requests (precomputing
a slider's path) run only when no other request waits, and do not count as busy.

:class:`JobRunner`: one-off long jobs (projecting a shape to z, loading a checkpoint or bank, exporting)
on superqt workers, with progress, an abort flag checked between steps, and errors turned into messages.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, QThreadPool, pyqtSignal
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
    background: bool = False  # runs after every other pending request; a batch is meshed into the cache
    voxels: np.ndarray | None = None  # a grid given instead of generated from z (a shape not of this model)


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
    background: bool = False


class ShapeCache:
    """Finished shapes (voxels, mesh) of one model by (z, level, display), least recently used dropped first.
    Thread-safe: the worker fills it, the GUI thread reads it without waiting for a generation."""

    def __init__(self, size: int = 160) -> None:  # a 101-position slider path and the views around it
        self.size = size
        self._lock = threading.Lock()
        self._model: Any = None  # the model whose shapes these are
        self._items: OrderedDict[tuple[bytes, float, str], tuple[np.ndarray, Any]] = OrderedDict()

    def get(self, model: Any, z: np.ndarray, level: float, display: str) -> tuple[np.ndarray, Any] | None:
        with self._lock:
            if model is not self._model:
                return None
            key = (np.asarray(z, np.float32).tobytes(), float(level), display)
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, model: Any, z: np.ndarray, level: float, display: str, voxels: np.ndarray, mesh: Any) -> None:
        with self._lock:
            if model is not self._model:
                self._items.clear()
                self._model = model
            self._items[(np.asarray(z, np.float32).tobytes(), float(level), display)] = (voxels, mesh)
            if len(self._items) > self.size:
                self._items.popitem(last=False)


class GenerationService(QObject):
    """Newest-request-wins generation and meshing for the loaded model, on one worker thread.

    Signals
    -------
    resultReady(ShapeResult)   a current result (stale and background ones are never emitted)
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
        self.shapes = ShapeCache()
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
                job: Callable[[Any, np.ndarray], Any] | None = None, background: bool = False,
                voxels: np.ndarray | None = None) -> int:
        """Queue a shape (z (z_dim,)) or a batch (z (N, z_dim)) for ``target``; returns the request id.
        A pending request for the same target is replaced. A ``background`` batch waits for every other
        request and, with display "mesh" or "voxels", meshes each shape into the cache. ``voxels`` (R, R, R)
        is a grid to use instead of generating one (a training run's sample; ``z`` is then only carried)."""
        with self._cond:
            if self.model is None:
                return 0
            rid = next(self._ids)
            self._latest[target] = rid
            self._pending[target] = Request(target, rid, self.model, np.array(z, np.float32), float(level),
                                            display, job, background,
                                            None if voxels is None else np.array(voxels, np.float32))
            self._cond.notify()
        if not background:
            self._set_busy(True)
        return rid

    def cached(self, target: str, z: np.ndarray, *, level: float = 0.5, display: str = "mesh") -> ShapeResult | None:
        """The finished shape for one z (z_dim,) if it is cached: shown at once, without the worker."""
        hit = self.shapes.get(self.model, z, level, display) if display in ("mesh", "voxels") else None
        if hit is None:
            return None
        return ShapeResult(target, 0, np.array(z, np.float32), hit[0], hit[1], float(level), display,
                           model=self.model)

    def cancel(self, target: str) -> None:
        """Forget ``target``'s pending and running requests."""
        with self._cond:
            self._pending.pop(target, None)
            self._latest[target] = next(self._ids)
        self._handled(counted=False)  # a cancelled pending request posts nothing: busy may end here

    def is_current(self, target: str, rid: int) -> bool:
        with self._cond:
            return self._latest.get(target) == rid

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._pending and self._running is None

    @property
    def busy(self) -> bool:
        """True from a request until its results (and all before them) reached the GUI thread; background
        requests do not count (see :attr:`idle`)."""
        return self._busy

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _deliver(self, result: ShapeResult) -> None:
        counted = result.id < 0 or not result.background
        try:
            if result.id < 0:  # an idle marker: only settles busy
                pass
            elif not self.is_current(result.target, result.id):
                self.dropped += 1
            else:
                self.last_generate_ms = result.generate_ms
                for cb in list(self._subs.get(result.target, ())):
                    cb(result)
                if not result.background:  # cache filling is nobody's news (the status bar's timing)
                    self.resultReady.emit(result)
        finally:
            self._handled(counted)

    def _report_error(self, target: str, rid: int, message: str) -> None:
        try:
            if self.is_current(target, rid):
                self.failed.emit(target, message)
        finally:
            self._handled()

    def _handled(self, counted: bool = True) -> None:
        """One posted item handled (``counted``), or work withdrawn: busy ends when no foreground request is
        pending, running or queued."""
        with self._cond:
            self._in_queue -= counted
            quiet = self._in_queue == 0 and not any(not r.background for r in self._pending.values())
            quiet = quiet and (self._running is None or self._running.background)
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
                # the target waiting longest goes first, background work last
                target = min(self._pending, key=lambda k: self._pending[k].background)
                req = self._running = self._pending.pop(target)
            try:
                result = self._run(req)
                if result is None:
                    self.dropped += 1
                else:
                    self._post(self._delivered, result, counted=not req.background)
            except BaseException as e:  # noqa: BLE001 (reported, never raised on the worker thread)
                self._post(self._errored, req.target, req.id, error_message(e))
            finally:
                with self._cond:
                    self._running = None
                    idle = not self._pending
                if idle:  # lets the GUI thread settle busy even when the last result was dropped here
                    self._post(self._delivered, ShapeResult("", -1, np.zeros(0), np.zeros(0)))

    def _post(self, signal: Any, *args: Any, counted: bool = True) -> None:
        with self._cond:
            self._in_queue += counted
        signal.emit(*args)

    def _run(self, req: Request) -> ShapeResult | None:
        t0 = time.perf_counter()
        given = req.voxels is not None
        vox = req.voxels[None] if given else req.model.generate(req.z)  # (N, R, R, R)
        gen_ms = (time.perf_counter() - t0) * 1000
        if self._stale(req):
            return None  # superseded while generating: skip meshing
        single = req.z.ndim == 1 or given
        vox = vox[0] if single else vox
        t1 = time.perf_counter()
        mesh = extra = None
        if req.job is not None:
            extra = req.job(req.model, vox)
        elif single and not given:  # a given grid has no z to cache its mesh by
            mesh = self._mesh(req.model, req.z, vox, req.level, req.display)
        elif req.background and req.display != "none":
            for zi, vi in zip(req.z, vox):  # fill the cache; stop early once superseded
                if self._stale(req):
                    return None
                self._mesh(req.model, zi, vi, req.level, req.display)
        return ShapeResult(req.target, req.id, req.z, vox, mesh, req.level, req.display, gen_ms,
                           (time.perf_counter() - t1) * 1000, extra, req.model, req.background)

    def _mesh(self, model: Any, z: np.ndarray, vox: np.ndarray, level: float, display: str) -> Any:
        """The mesh of one grid ("mesh": marching cubes; "voxels": cubes; "none": None), cached by z."""
        if display not in ("mesh", "voxels"):
            return None
        hit = self.shapes.get(model, z, level, display)
        if hit is not None:
            return hit[1]
        if display == "mesh":
            mesh = voxels_to_mesh(vox, level=level, largest_component=True)
        else:
            keep = largest_component(vox > level)  # as the smooth mesh shows it (the paper's figures)
            mesh = voxels_to_cubes(np.where(keep, vox, 0.0), level=level)
        self.shapes.put(model, z, level, display, vox, mesh)
        return mesh


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
        self._closed = False  # after shutdown(): results and errors of jobs still running are dropped
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
            if on_done is not None and not self._closed:
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
        if self._closed:
            return
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

    def shutdown(self, timeout: float = 5.0) -> None:
        """For good (the window is closing): abort, drop what running jobs still deliver (their panels are going
        away), and give the thread pool ``timeout`` seconds to drain so no job runs on into interpreter exit."""
        self._closed = True
        self._abort.set()
        QThreadPool.globalInstance().waitForDone(int(timeout * 1000))
