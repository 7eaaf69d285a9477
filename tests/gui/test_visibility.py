"""One meaning of "on screen" for every piece of work that waits for it: visible, in the chosen workspace tab, in
an open dock that is in front of its tabbed siblings."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDockWidget, QLabel, QMainWindow, QTabWidget, QWidget

from explorer.visibility import Visibility, on_screen


def _window(qtbot):
    win = QMainWindow()
    qtbot.addWidget(win)
    tabs = QTabWidget()
    pages = [QLabel("first"), QLabel("second")]
    for i, page in enumerate(pages):
        tabs.addTab(page, str(i))
    win.setCentralWidget(tabs)
    docks = []
    for name in ("front", "behind"):
        dock = QDockWidget(name, win)
        dock.setWidget(QWidget())
        win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        docks.append(dock)
    win.tabifyDockWidget(docks[0], docks[1])
    docks[0].raise_()
    return win, tabs, pages, docks


def test_a_dock_behind_another_tab_is_not_on_screen_and_its_work_runs_when_chosen(qtbot):
    win, _tabs, _pages, (front, behind) = _window(qtbot)
    panel = behind.widget()
    calls = []
    vis = Visibility(panel, lambda: calls.append(vis.due()))
    win.show()
    qtbot.waitExposed(win)
    assert panel.isVisible() and not on_screen(panel)  # Qt keeps it visible behind the tab
    assert on_screen(front.widget())
    assert not vis.due() and vis.stale and calls == []
    behind.raise_()
    qtbot.waitUntil(lambda: calls == [True], timeout=2000)
    assert not vis.stale
    front.raise_()
    qtbot.wait(20)
    assert calls == [True]  # nothing was stale: no call


def test_a_closed_dock_and_a_hidden_tab_are_off_screen_until_shown_again(qtbot):
    win, tabs, pages, (front, _behind) = _window(qtbot)
    calls = []
    in_dock = Visibility(front.widget(), lambda: in_dock.due() and calls.append("dock"))  # as owners do: redo
    in_tab = Visibility(pages[1], lambda: in_tab.due() and calls.append("tab"))  # the work, asking due() again
    win.show()
    qtbot.waitExposed(win)
    assert not in_tab.due()  # the second workspace tab is not chosen
    front.close()
    assert not in_dock.due()
    tabs.setCurrentIndex(1)
    assert calls == ["tab"]
    front.show()
    qtbot.waitUntil(lambda: calls == ["tab", "dock"], timeout=2000)
    qtbot.wait(20)
    assert calls == ["tab", "dock"]  # once: the dock's Show event and its visibilityChanged are one change
