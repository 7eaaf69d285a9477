"""Small shared widgets: accessible-name helper, a clickable thumbnail, the non-modal message area."""

from __future__ import annotations

import time
from typing import Any, TypeVar

import numpy as np
from PyQt6.QtCore import QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import (
    QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox, QComboBox, QHBoxLayout, QLabel,
    QLineEdit, QListWidget, QPlainTextEdit, QScrollBar, QStyle, QStyleOptionToolButton, QTabBar, QToolButton,
    QVBoxLayout, QWidget,
)

from gan_core.mesh import largest_component

from explorer.thumbs import voxel_pixmap

W = TypeVar("W", bound=QWidget)
INTERACTIVE = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QAbstractItemView,
               QPlainTextEdit)


def describe(widget: W, name: str, tip: str | None = None) -> W:
    """Set the accessible name (what it does) and the tooltip (more detail, defaulting to the name)."""
    widget.setAccessibleName(name)
    widget.setToolTip(tip or name)
    return widget


def unnamed_controls(root: QWidget) -> list[QWidget]:
    """Interactive widgets under ``root`` lacking an accessible name or tooltip.

    Skipped, as Qt names them itself: parts of composite widgets (a spin box's line edit, a combo box's
    popup list, scroll bars of scroll areas, a dock's title buttons) and pyqtgraph's internal items.
    """
    missing = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, INTERACTIVE) or isinstance(w, QScrollBar) or w.objectName().startswith("qt_"):
            continue
        if w.window() is not root.window() or _inside_composite(w, root):
            continue
        if not w.accessibleName() or not w.toolTip():
            missing.append(w)
    return missing


def _inside_composite(w: QWidget, root: QWidget) -> bool:
    p = w.parentWidget()
    while p is not None and p is not root:
        if isinstance(p, (QAbstractSpinBox, QComboBox, QTabBar)) or type(p).__module__.startswith(("pyqtgraph", "superqt")):
            return True
        p = p.parentWidget()
    return False


class Thumb(QToolButton):
    """A clickable picture of a voxel grid with a caption under it."""

    def __init__(self, name: str, size: int = 96, parent: QWidget | None = None, fit: bool | float = True,
                 largest: bool = False) -> None:
        super().__init__(parent)
        self._size = size
        self._fit = fit
        self._largest = largest  # generated shapes: show the largest component, as the 3D views do
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        self.setIconSize(QSize(size, size))
        self.setAutoRaise(True)
        self.setCheckable(False)
        describe(self, name)
        self.voxels: np.ndarray | None = None
        self.shown_count = 0

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Room for the picture and a caption line from the start, set or not: a bare QToolButton is one text
        line tall (21 px), so a row of thumbnails (the keyframe strip, fixed at its row's height) first laid out
        before its shapes were generated stayed that short until something else re-laid the window out (a
        message bar), drawing its pictures ~20 px high with the captions cut off."""
        return super().sizeHint().expandedTo(self._full_size())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return self.sizeHint()

    def _full_size(self) -> QSize:
        """What QToolButton asks for with an icon and a one-line caption under it (its own arithmetic)."""
        opt = QStyleOptionToolButton()
        self.initStyleOption(opt)
        fm = self.fontMetrics()
        text_w = fm.horizontalAdvance(self.text()) + 2 * fm.horizontalAdvance(" ") if self.text() else 0
        content = QSize(max(self._size, text_w), self._size + 4 + fm.height())
        opt.rect.setSize(content)
        return self.style().sizeFromContents(QStyle.ContentsType.CT_ToolButton, opt, content, self)

    def set_voxels(self, voxels: np.ndarray | None, level: float = 0.5) -> None:
        self.voxels = voxels
        if voxels is not None and self._largest:
            voxels = np.where(largest_component(np.asarray(voxels) > level), voxels, 0)
        self.setIcon(QIcon(voxel_pixmap(voxels, level, self._size, self._fit)) if voxels is not None else QIcon())
        self.shown_count += 1

    def set_result(self, result: Any) -> None:
        """ShapeChannel interface (:class:`explorer.context.ShapeSink`)."""
        self.set_voxels(result.voxels, result.level)

    def set_status(self, text: str) -> None:
        """ShapeChannel interface: a thumbnail has no status line (an empty shape shows as an empty picture)."""


class MessageArea(QWidget):
    """Non-modal messages under the views: errors stay until dismissed, info fades after a while."""

    dismissed = pyqtSignal()
    COLORS = {"error": "#fde8e8", "warning": "#fff4d6", "info": "#e8f1fd"}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = QLabel()
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._text.setAccessibleName("Messages")
        self._close = describe(QToolButton(), "Dismiss message", "Hide this message (Esc)")
        self._close.setText("\u2715")
        self._close.setAutoRaise(True)
        self._close.clicked.connect(self.dismiss)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self._text, 1)
        row.addWidget(self._close, 0, Qt.AlignmentFlag.AlignTop)
        self.messages: list[tuple[float, str, str]] = []
        self._fade = QTimer(self)
        self._fade.setSingleShot(True)
        self._fade.timeout.connect(self._fade_info)
        self.setVisible(False)

    def show_message(self, level: str, text: str) -> None:
        self.messages.append((time.time(), level, text))
        self.messages = self.messages[-50:]
        shown = [m for m in self.messages[-3:]]
        worst = "error" if any(m[1] == "error" for m in shown) else shown[-1][1]
        icon = {"error": "\u26a0 ", "warning": "\u26a0 ", "info": ""}
        self._text.setText("\n".join(f"{icon.get(lv, '')}{tx}" for _, lv, tx in shown))
        self.setStyleSheet(f"MessageArea {{ background: {self.COLORS.get(worst, '#eee')}; border-radius: 4px; }}")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setVisible(True)
        if worst == "info":
            self._fade.start(6000)
        else:
            self._fade.stop()

    def _fade_info(self) -> None:
        if all(m[1] == "info" for m in self.messages[-3:]):
            self.dismiss()

    def text(self) -> str:
        return self._text.text()

    def dismiss(self) -> None:
        self.messages.clear()
        self.setVisible(False)
        self.dismissed.emit()


def vbox(*widgets: Any, margins: int = 0, spacing: int = 6) -> QVBoxLayout:
    lay = QVBoxLayout()
    lay.setContentsMargins(margins, margins, margins, margins)
    lay.setSpacing(spacing)
    for w in widgets:
        if isinstance(w, int):
            lay.addStretch(w)
        elif isinstance(w, QWidget):
            lay.addWidget(w)
        else:
            lay.addLayout(w)
    return lay


def hbox(*widgets: Any, margins: int = 0, spacing: int = 6) -> QHBoxLayout:
    lay = QHBoxLayout()
    lay.setContentsMargins(margins, margins, margins, margins)
    lay.setSpacing(spacing)
    for w in widgets:
        if isinstance(w, int):
            lay.addStretch(w)
        elif isinstance(w, QWidget):
            lay.addWidget(w)
        else:
            lay.addLayout(w)
    return lay


def pyqtgraph() -> Any:
    """The pyqtgraph module with the app's plot style, imported when a plot is first made: the plots (the latent
    map, the training curves) sit in a hidden dock and a hidden tab, and importing pyqtgraph delayed the first
    shape at launch (test_startup.py checks that it is not imported before)."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    return pg
