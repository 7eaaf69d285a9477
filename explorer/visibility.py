"""Whether a widget is really on screen, and the one way work waits until it is.

``isVisible()`` alone has two blind spots here: a side panel in a dock that is a tab behind another tabbed dock
stays ``isVisible()`` (Qt reports the tab change only through ``QDockWidget.visibilityChanged``, and the dock
behind is covered, with an empty ``visibleRegion()``), and a widget gets no Show event when its dock's tab is
chosen. :func:`on_screen` merges the three (visible, in the chosen workspace tab, its docks open and in front);
:class:`Visibility` watches one widget for an owner that works only while the widget is on screen: a view that
renders, a channel that asks for shapes, a panel that opens files. The owner asks :meth:`Visibility.due` before
the work; off screen that marks the work stale, and the owner is called back when the widget is next on screen.
"""

from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import QEvent, QObject
from PyQt6.QtWidgets import QDockWidget, QWidget


def docks_around(widget: QWidget) -> list[QDockWidget]:
    """The dock widgets ``widget`` sits in, innermost first (usually none or one)."""
    out = []
    w = widget.parentWidget()
    while w is not None:
        if isinstance(w, QDockWidget):
            out.append(w)
        w = w.parentWidget()
    return out


def on_screen(widget: QWidget, docks: list[QDockWidget] | None = None) -> bool:
    """Visible (its window shown, its workspace tab chosen, no ancestor hidden or closed) and not in a dock
    that is a tab behind another one. ``docks``: :func:`docks_around` the widget, if known."""
    if not widget.isVisible():
        return False
    docks = docks_around(widget) if docks is None else docks
    return all(dock.isFloating() or not dock.visibleRegion().isEmpty() for dock in docks)


class Visibility(QObject):
    """Watches ``widget`` for an owner whose work waits until the widget is on screen (see the module docstring).

    ``on_due`` is called when the widget comes on screen (a Show event, or a dock around it opened or brought to
    the front) while the work is stale (marked by :meth:`due` or :meth:`mark_stale`); it usually redoes the
    work, asking :meth:`due` again.
    """

    def __init__(self, widget: QWidget, on_due: Callable[[], object], *, stale: bool = False) -> None:
        super().__init__(widget)
        self.widget = widget
        self._on_due = on_due
        self.stale = stale
        self._docks: list[QDockWidget] = []  # around the widget (found again at each Show and re-parenting)
        self._listening: list[QDockWidget] = []
        widget.installEventFilter(self)
        self._follow_docks()

    def shown(self) -> bool:
        """Whether the widget is on screen now (:func:`on_screen`)."""
        return on_screen(self.widget, self._docks)

    def due(self) -> bool:
        """True if the work can run now (the widget is on screen); False marks it stale until then."""
        self.stale = not self.shown()
        return not self.stale

    def mark_stale(self) -> None:
        """Have ``on_due`` called when the widget is next on screen."""
        self.stale = True

    def check(self) -> None:
        """Call ``on_due`` if the widget is on screen and the work stale."""
        if self.stale and self.shown():
            self._on_due()

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 (Qt's name)
        if event is not None and event.type() in (QEvent.Type.Show, QEvent.Type.ParentChange):
            self._follow_docks()
            if event.type() == QEvent.Type.Show:
                self.check()
        return False

    def _follow_docks(self) -> None:
        """Find the docks around the widget and listen to them (it gets no Show event when its dock's tab is
        chosen). Not on every call: walking up the parents made PyQt wrap each one, ~0.7 ms a call on a loaded
        2-core machine, against ~0.1 us for isVisible(); a widget moved to another dock is hidden and shown."""
        self._docks = docks_around(self.widget)
        for dock in self._docks:
            if dock not in self._listening:
                self._listening.append(dock)
                dock.visibilityChanged.connect(self._dock_changed)

    def _dock_changed(self, visible: bool) -> None:
        if visible:
            self.check()
