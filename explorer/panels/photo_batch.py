"""Several photos reconstructed one after another (the Reconstruct panel's list): a queue drained by one worker
job, a progress bar with Cancel, and a list of the photos with their results (the photo's thumbnail beside a
small picture of its shape, the confidence, a warning mark where it is low). A photo that cannot be read is one
message and a crossed-out entry; the others go on. The panel supplies how one photo is reconstructed."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QIcon, QImage, QImageReader, QPainter, QPixmap
from PyQt6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QProgressBar, QPushButton, QWidget

from gan_core.mesh import largest_component

from explorer.context import AppContext
from explorer.thumbs import shade_voxels, to_qimage
from explorer.widgets import describe, hbox
from explorer.workers import JobAborted, error_message

THUMB = 56  # px: the photo and its shape side by side in the list
PREVIEW = 640  # px: the longest side of the photo kept for the image pane (read on the worker)
# one photo: (path, check) -> (z, label, confidence, voxels); check(i, n) raises JobAborted after Cancel
Reconstruct = Callable[[str, Callable[[int, int], None]], tuple[np.ndarray, str, Any, np.ndarray]]


@dataclass(eq=False)  # entries compare by identity
class PhotoEntry:
    """One photo of the list: its status ("waiting", "running", "done", "failed", "cancelled") and result."""

    path: str
    item: QListWidgetItem
    status: str = "waiting"
    z: np.ndarray | None = None
    label: str = ""
    conf: Any = None
    error: str = ""
    preview: QImage | None = None
    model: Any = None

    @property
    def name(self) -> str:
        return Path(self.path).name


def read_preview(path: str, size: int = PREVIEW) -> QImage:
    """The photo at most ``size`` px on its longer side (decoded at that size where the format allows), upright
    as its EXIF says; a null image when Qt cannot read it. Safe off the GUI thread (QImage, not QPixmap)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and max(full.width(), full.height()) > size:
        reader.setScaledSize(full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    img = reader.read()
    if not img.isNull() and max(img.width(), img.height()) > size:
        img = img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return img


def shape_image(voxels: np.ndarray, level: float, size: int = THUMB) -> QImage:
    """A small shaded picture of the shape as the 3D view shows it (its largest component)."""
    keep = largest_component(np.asarray(voxels) > level)
    return to_qimage(shade_voxels(np.where(keep, voxels, 0.0), level, size))


def entry_icon(photo: QImage | None, shape: QImage | None, size: int = THUMB) -> QIcon:
    """The photo's thumbnail and the shape's picture side by side."""
    pix = QPixmap(2 * size + 6, size)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    for i, img in enumerate((photo, shape)):
        if img is None or img.isNull():
            continue
        small = img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        painter.drawImage(i * (size + 6) + (size - small.width()) // 2, (size - small.height()) // 2, small)
    painter.end()
    return QIcon(pix)


class PhotoBatch(QObject):
    """The queue, its worker and its widgets: ``photos`` (the list) and ``row`` (progress, Cancel, Clear, a
    summary line). ``add(paths, one, model, level)`` queues photos; one worker job reconstructs them in turn.

    Signals: ``firstResult(entry, run_size)`` the first result of a run (the panel shows it); ``resultReady``
    (entry) every result; ``chosen(entry)`` the user picked a reconstructed entry (click, arrow keys, Enter)."""

    firstResult = pyqtSignal(object, int)
    resultReady = pyqtSignal(object)
    chosen = pyqtSignal(object)
    _started = pyqtSignal(object)  # worker thread -> GUI thread (queued: this object lives on the GUI thread)
    _done = pyqtSignal(object, object)  # entry, (z, label, conf, preview QImage, shape QImage, model)
    _failed = pyqtSignal(object, str)  # entry, message ("" when cancelled)

    def __init__(self, ctx: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.entries: list[PhotoEntry] = []  # the list's photos, in order
        self._queue: deque[PhotoEntry] = deque()  # waiting for the worker (shared with it, under _lock)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._worker: Any = None  # the running job
        self._next: tuple[Reconstruct, Any, float] | None = None  # what a run after a Cancel uses
        self._run_done = self._run_total = 0  # the progress of the current (or last) run
        self._run_shown = False
        self.progress = describe(QProgressBar(), "Progress of the photo reconstructions",
                                 "How many of the photos are reconstructed (or could not be read)")
        self.progress.setFormat("%v / %m photos")
        self.cancel = describe(QPushButton("Cancel"), "Cancel the remaining reconstructions",
                               "Stop after the photo being reconstructed now; the results so far stay in the list")
        self.cancel.clicked.connect(self.cancel_run)
        self.clear = describe(QPushButton("Clear list"), "Clear the list of photos",
                              "Remove every photo from the list (cancels what still waits); the shown "
                              "reconstruction stays")
        self.clear.clicked.connect(self.clear_list)
        self.status = QLabel()
        self.status.setAccessibleName("Reconstruction progress")
        self.photos = describe(QListWidget(), "Reconstructed photos",
                               "Each photo with its shape and confidence (\u26a0: low); choose one (click, arrow "
                               "keys or Enter) to show it")
        self.photos.setIconSize(QSize(2 * THUMB + 6, THUMB))
        self.photos.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long names keep their start and suffix
        self.photos.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.photos.setMinimumWidth(200)
        self.photos.currentRowChanged.connect(self._choose)
        self.photos.itemClicked.connect(lambda item: self._choose(self.photos.row(item)))
        self.photos.itemActivated.connect(lambda item: self._choose(self.photos.row(item)))
        self.row = QWidget()
        self.row.setLayout(hbox(self.progress, self.cancel, self.clear, self.status, 1))
        self._started.connect(self._on_started)
        self._done.connect(self._on_done)
        self._failed.connect(self._on_failed)
        self._sync()

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def results(self) -> list[PhotoEntry]:
        """The photos reconstructed so far, in list order."""
        return [e for e in self.entries if e.status == "done"]

    def entry_of(self, path: str | None, z: np.ndarray | None) -> PhotoEntry | None:
        """The entry whose result is this photo and z, if any."""
        return next((e for e in self.entries if path and e.path == path and e.z is not None and z is not None
                     and np.array_equal(e.z, z)), None)

    def preview_of(self, path: str) -> QImage | None:
        return next((e.preview for e in self.entries if e.path == path and e.preview is not None
                     and not e.preview.isNull()), None)

    def select(self, entry: PhotoEntry | None) -> None:
        """Mark ``entry`` in the list (None: nothing) without choosing it."""
        self.photos.blockSignals(True)
        if entry is None:
            self.photos.setCurrentRow(-1)
        else:
            self.photos.setCurrentItem(entry.item)
        self.photos.blockSignals(False)

    def add(self, paths: list[str], one: Reconstruct, model: Any, level: float) -> Any:
        """Queue ``paths`` (after any still waiting); ``one`` reconstructs a photo with ``model`` on the worker."""
        new = [self._add_entry(str(Path(p).resolve())) for p in paths]
        if not self.running:
            self._run_done, self._run_total, self._run_shown = 0, 0, False
        self._run_total += len(new)
        with self._lock:
            self._queue.extend(new)
        self._next = (one, model, level)
        if not self.running:
            self._start()
        self._sync()
        return self._worker

    def _add_entry(self, path: str) -> PhotoEntry:
        e = PhotoEntry(path, QListWidgetItem(entry_icon(None, None), ""))  # a blank icon: rows of one height
        self.entries.append(e)
        self.photos.addItem(e.item)
        self._style(e)
        return e

    def _style(self, e: PhotoEntry) -> None:
        """The entry's text, tooltip, accessible text and colour from its status."""
        colour = None
        if e.status == "done":
            c = e.conf
            value = "unknown" if c.score is None else f"{c.score:.2f}"
            line = f"\u26a0 low confidence {value}" if c.low else f"confidence {value}"
            tip = f"{e.path}\n{e.label}\n{c.label()}" + "".join(f"\n\u2022 {w}" for w in c.warnings[1:])
            colour = "#8a1c17" if c.low else None
        else:
            line = {"waiting": "waiting\u2026", "running": "reconstructing\u2026", "cancelled": "cancelled",
                    "failed": "\u2715 cannot read"}[e.status]
            tip = e.path + (f"\n{e.error}" if e.error else "")
            colour = {"failed": "#8a1c17", "running": None}.get(e.status, "#777")
        e.item.setText(f"{e.name}\n{line}")
        e.item.setToolTip(tip)
        e.item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{e.name}: {line}")
        e.item.setForeground(QBrush(QColor(colour)) if colour else QBrush())

    def _start(self) -> None:
        assert self._next is not None
        one, model, level = self._next
        self._cancel.clear()
        self._worker = self.ctx.jobs.start("Reconstructing photos", self._work, one, model, level,
                                           on_done=self._finished, on_error=lambda _m: self._finished("error"),
                                           progress=True)

    # -- worker thread -------------------------------------------------------------------------------------
    def _emit(self, signal: str, *args: Any) -> None:
        try:
            getattr(self, signal).emit(*args)
        except RuntimeError:  # the panel is gone (the window closed mid-run)
            pass

    def _work(self, one: Reconstruct, model: Any, level: float, report: Callable[[int, int], None]) -> str:
        """Reconstruct queued photos until none is left or Cancel; returns why it stopped."""
        done = 0
        while True:
            with self._lock:
                if self._cancel.is_set():
                    return "cancelled"
                if not self._queue:
                    return "finished"
                entry = self._queue.popleft()
                total = done + 1 + len(self._queue)

            def check(_i: int = 0, _n: int = 0) -> None:  # the panel's Cancel or the status bar's
                if self._cancel.is_set():
                    raise JobAborted("cancelled")
                report(done, total)

            self._emit("_started", entry)
            try:
                check()
                z, label, conf, voxels = one(entry.path, check)
                result = (z, label, conf, read_preview(entry.path), shape_image(voxels, level), model)
            except JobAborted:
                self._emit("_failed", entry, "")
                return "cancelled"
            except Exception as e:  # noqa: BLE001 (one unreadable photo is a message; the others go on)
                self._emit("_failed", entry, error_message(e))
            else:
                self._emit("_done", entry, result)
            done += 1
            try:
                report(done, total)
            except JobAborted:
                return "cancelled"

    # -- back on the GUI thread ----------------------------------------------------------------------------
    def _on_started(self, e: PhotoEntry) -> None:
        if e.status == "waiting":
            e.status = "running"
            self._style(e)
            self._sync(now=e)

    def _on_done(self, e: PhotoEntry, result: tuple[Any, ...]) -> None:
        z, label, conf, preview, shape, model = result
        if e not in self.entries or model is not self.ctx.state.model:
            return  # cleared meanwhile, or another model was opened
        e.status, e.z, e.label, e.conf, e.preview, e.model = ("done", np.asarray(z, np.float32), label, conf,
                                                              preview, model)
        e.item.setIcon(entry_icon(None if preview.isNull() else preview, shape))
        self._style(e)
        self._run_done += 1
        self._sync()
        if not self._run_shown:
            self._run_shown = True
            self.firstResult.emit(e, self._run_total)
        self.resultReady.emit(e)

    def _on_failed(self, e: PhotoEntry, message: str) -> None:
        if e not in self.entries:
            return
        if message:
            e.status, e.error = "failed", message
            self._run_done += 1
            self.ctx.notifier.error(message)  # one line naming the file: "<path>: cannot read image (...)"
        else:
            e.status = "cancelled"
        self._style(e)
        self._sync()

    def _finished(self, why: str) -> None:
        self._worker = None
        if why != "finished":  # stopped by a Cancel (the status bar's too) or an error: nothing else runs
            self._cancel_waiting()
        if self._queue:  # photos added after a Cancel: a run of their own
            self._run_done, self._run_total, self._run_shown = 0, len(self._queue), False
            self._start()
        self._sync()

    def _cancel_waiting(self) -> None:
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
        for e in left:
            e.status = "cancelled"
            self._style(e)

    def cancel_run(self) -> None:
        """Stop after the photo being reconstructed now (a projection stops at its next step)."""
        if self.running:
            self._cancel.set()
        self._cancel_waiting()
        self._sync()

    def clear_list(self) -> None:
        """Cancel what waits and empty the list."""
        self.cancel_run()
        self.entries.clear()
        self.photos.clear()
        self._run_done = self._run_total = 0
        self._sync()

    def _choose(self, row: int) -> None:
        if 0 <= row < len(self.entries):
            e = self.entries[row]
            if e.status == "done" and e.model is self.ctx.state.model:
                self.chosen.emit(e)

    def _sync(self, now: PhotoEntry | None = None) -> None:
        """The progress row and the list's visibility from the entries and the current run."""
        self.photos.setVisible(bool(self.entries))
        self.row.setVisible(bool(self.entries))
        self.progress.setRange(0, max(self._run_total, 1))
        self.progress.setValue(min(self._run_done, self._run_total))
        stopping = self._cancel.is_set()
        self.cancel.setEnabled(self.running and not stopping)
        if self.running and not stopping:
            current = now or next((e for e in self.entries if e.status == "running"), None)
            text = f"Reconstructing {current.name}\u2026" if current is not None else "Reconstructing\u2026"
        elif self.running:
            text = "Cancelling\u2026"
        else:
            count = {s: sum(e.status == s for e in self.entries) for s in ("failed", "cancelled")}
            low = sum(e.status == "done" and e.conf.low for e in self.entries)
            parts = [f"{len(self.results)} reconstructed"] + [f"{low} with low confidence"] * bool(low)
            parts += [f"{count['failed']} could not be read"] * bool(count["failed"])
            parts += [f"{count['cancelled']} cancelled"] * bool(count["cancelled"])
            text = ", ".join(parts) if self.entries else ""
        self.status.setText(text)
