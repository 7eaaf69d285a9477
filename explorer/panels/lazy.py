"""A panel whose work (opening files, computing on workers) waits until it is on screen."""

from __future__ import annotations

from PyQt6.QtWidgets import QWidget

from explorer.visibility import Visibility


class LazyPanel(QWidget):
    """Subclasses call :meth:`due` at the start of ``reload``: off screen (a hidden tab, a closed dock, a dock
    behind another tab: :func:`explorer.visibility.on_screen`) it returns False, and the reload is redone when
    the panel is next on screen. What the panel's shape channels missed meanwhile, they catch up themselves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.visibility = Visibility(self, self.reload, stale=True)

    def reload(self) -> None:
        raise NotImplementedError

    def due(self) -> bool:
        return self.visibility.due()
