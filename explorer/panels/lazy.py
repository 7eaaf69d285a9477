"""A panel whose work (opening files, computing on workers) waits until it is on screen."""

from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import QWidget


class LazyPanel(QWidget):
    """Subclasses call :meth:`due` at the start of ``reload``: off screen it returns False and the reload is
    redone when the panel is shown or made active. A tab of a tabbed dock stays ``isVisible()`` behind the
    current tab, so the window also reports the dock's visibility through :meth:`set_active`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stale = True
        self._active = True

    def reload(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Catch up with changes missed while inactive (a reload does more)."""

    def due(self) -> bool:
        self._stale = not (self._active and self.isVisible())
        return not self._stale

    def showEvent(self, event: Any) -> None:  # noqa: N802
        super().showEvent(event)
        if self._stale:
            self.reload()

    def set_active(self, on: bool) -> None:
        """Whether the panel is on screen; an inactive one does no work and catches up when active again."""
        self._active = on
        if on and self._stale:
            self.reload()
        elif on:
            self.refresh()
