"""What the GUI reliability tests (tests/gui/test_reliability_*.py) and benchmarks/reliability_report.py share:
a guard that records every exception escaping a slot or a thread and every Qt critical message, a
snapshot of the user's session to prove nothing was lost, file dialogs that "pick" a given path, the real
menu actions, and a wait that keeps the event loop running.

No pytest here: the report drives the same code with a plain QApplication.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from PyQt6.QtCore import QtMsgType, qInstallMessageHandler
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QFileDialog

# Qt warnings of the offscreen platform and of widgets being torn down, not faults of the app
BENIGN_QT = ("propagateSizeHints", "This plugin does not support", "QFont::", "Populating font family")


class Guard:
    """Records what must never happen while it is active: an exception escaping a slot, a timer, a thread,
    a superqt worker or a __del__ (sys.excepthook, threading.excepthook, sys.unraisablehook), a Qt critical
    or fatal message, a Qt
    warning not in :data:`BENIGN_QT`, or an "internal error" message in a watched window."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __enter__(self) -> Guard:
        self._hook, self._thread_hook = sys.excepthook, threading.excepthook
        sys.excepthook = self._exception
        threading.excepthook = lambda a: self._exception(a.exc_type, a.exc_value, a.exc_traceback)  # type: ignore[arg-type]
        self._unraisable = sys.unraisablehook  # an exception in __del__, "ignored" by Python, is one too
        sys.unraisablehook = lambda u: self._exception(u.exc_type, u.exc_value, u.exc_traceback)
        self._qt_handler = qInstallMessageHandler(self._qt)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.excepthook, threading.excepthook, sys.unraisablehook = self._hook, self._thread_hook, self._unraisable
        qInstallMessageHandler(self._qt_handler)

    def _exception(self, tp: type[BaseException], val: BaseException | None, tb: Any) -> None:
        self.errors.append("".join(traceback.format_exception(tp, val, tb)).strip())

    def _qt(self, kind: QtMsgType, context: Any, message: str | None) -> None:
        text = message or ""
        if kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg) or (
                kind == QtMsgType.QtWarningMsg and not any(b in text for b in BENIGN_QT)):
            self.errors.append(f"Qt {kind.name}: {text}")

    def watch(self, window: Any) -> None:
        """Count the window's 'internal error' messages (an exception the app caught but did not expect)."""
        def seen(level: str, text: str) -> None:
            if "internal error" in text or "Traceback" in text:
                self.errors.append(f"window message: {text}")
        window.ctx.notifier.message.connect(seen)

    def since(self, n: int) -> list[str]:
        return self.errors[n:]


# -- the user's state ----------------------------------------------------------------------------------------
def snapshot(state: Any) -> dict[str, Any]:
    """Everything a user would miss: every latent (z bytes, label, seed, image), t, mode, weights, level,
    display, the history, the undo stack (count, position, command texts), the model and bank objects."""
    out: dict[str, Any] = {}
    for key, val in state.snapshot().items():
        if key == "history":
            out[key] = [(h.z.tobytes(), h.label, h.seed) for h in val]
        elif hasattr(val, "z"):
            out[key] = (val.z.tobytes(), val.label, val.seed, val.image)
        else:
            out[key] = val
    stack = state.undo_stack
    out["undo"] = (stack.count(), stack.index(), tuple(stack.text(i) for i in range(stack.count())))
    out["model"], out["bank"], out["bank_path"] = id(state.model), id(state.bank), state.bank_path
    return out


def names_file(text: str, path: Path) -> bool:
    """A message names ``path`` (a session's may name its .npz half instead)."""
    return path.name in text or (path.suffix == ".json" and path.with_suffix(".npz").name in text)


def lost(before: dict[str, Any], after: dict[str, Any], allowed: frozenset[str] = frozenset()) -> list[str]:
    """Names of the fields that changed, beyond ``allowed``."""
    return sorted(k for k in before if k not in allowed and before[k] != after.get(k))


# -- driving the window as a user does ------------------------------------------------------------------------
@contextlib.contextmanager
def dialogs(path: str | Path) -> Iterator[None]:
    """Every QFileDialog picker returns ``path`` at once, as if the user had chosen it."""
    names = ("getOpenFileName", "getOpenFileNames", "getSaveFileName", "getExistingDirectory")
    saved = {n: getattr(QFileDialog, n) for n in names}
    QFileDialog.getOpenFileName = staticmethod(lambda *a, **k: (str(path), ""))  # type: ignore[method-assign]
    QFileDialog.getOpenFileNames = staticmethod(lambda *a, **k: ([str(path)], ""))  # type: ignore[method-assign]
    QFileDialog.getSaveFileName = staticmethod(lambda *a, **k: (str(path), ""))  # type: ignore[method-assign]
    QFileDialog.getExistingDirectory = staticmethod(lambda *a, **k: str(path))  # type: ignore[method-assign]
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(QFileDialog, n, f)


def menu_action(window: Any, text: str) -> Any:
    """The menu bar action whose text (without '&') is ``text``."""
    for top in window.menuBar().actions():
        for act in top.menu().actions():
            if act.text().replace("&", "") == text:
                return act
    raise KeyError(text)


def choose_in_menu(window: Any, text: str, path: str | Path) -> None:
    """Trigger a File menu command whose file dialog picks ``path``."""
    with dialogs(path):
        menu_action(window, text).trigger()


def idle(window: Any) -> bool:
    return not window.ctx.busy


def quiet(window: Any, seconds: float) -> bool:
    """True once the window has been idle for ``seconds`` in a row (call it repeatedly, as wait_for does)."""
    now = time.perf_counter()
    if not idle(window):
        window._quiet_since = None
        return False
    since = getattr(window, "_quiet_since", None) or now
    window._quiet_since = since
    return now - since >= seconds


def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    """Run the event loop until ``cond()`` holds (True) or ``timeout`` seconds pass (False)."""
    end = time.perf_counter() + timeout
    while True:
        QApplication.processEvents()
        if cond():
            return True
        if time.perf_counter() > end:
            return False
        QTest.qWait(10)


def drop_files(widget: Any, *paths: str | Path, urls: list[Any] | None = None) -> bool:
    """Drag ``paths`` (or ``urls``) over ``widget`` and drop them, through Qt's event delivery. Returns
    whether the widget accepted the drag."""
    from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent

    mime = QMimeData()
    mime.setUrls(urls if urls is not None else [QUrl.fromLocalFile(str(p)) for p in paths])
    action, button, mods = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(10, 10), action, mime, button, mods)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDropEvent(QPointF(10, 10), action, mime, button, mods))
    return True
