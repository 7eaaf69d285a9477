"""Menus, shortcuts and the view toolbar of the main window (kept apart so window.py stays readable).

:func:`build_menus` makes them for a window and returns them as one :class:`WindowActions`, which the window
owns (``window.commands``). What it needs of the window is :class:`MenuHost`: this module does not import
explorer.window, which imports it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable, Protocol

from PyQt6.QtCore import QObject, QStandardPaths, Qt
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import (
    QDockWidget, QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QTabWidget, QToolBar,
)
from superqt import QLabeledDoubleSlider

from gan_core.runtime import list_models

from explorer.context import AppContext
from explorer.panels.interpolate import InterpolatePanel
from explorer.session import RecentFiles
from explorer.state import SessionState
from explorer.widgets import describe

CKPT_FILTER = "Checkpoints (*.pt);;All files (*)"
BANK_FILTER = "Feature banks (*.h5);;All files (*)"
SESSION_FILTER = "Explorer sessions (*.json)"
EXPORT_FILTER = ("STL mesh (*.stl);;OBJ mesh (*.obj);;PLY mesh (*.ply);;glTF binary (*.glb);;glTF (*.gltf);;"
                 "3MF (*.3mf);;binvox voxels (*.binvox)")
REPO = Path(__file__).resolve().parents[1]  # the source checkout (README.md, explorer/README.md) when run from it


class MenuHost(Protocol):
    """What the menus use of the main window, besides its being a QMainWindow: its state, panels, docks and
    commands."""

    state: SessionState
    ctx: AppContext
    recent: RecentFiles
    tabs: QTabWidget
    interpolate: InterpolatePanel
    dock: QDockWidget
    map_dock: QDockWidget
    directions_dock: QDockWidget
    units_dock: QDockWidget
    commands: WindowActions

    def load_checkpoint(self, path: str) -> Any: ...
    def open_bank(self, path: str) -> Any: ...
    def open_session(self, path: str) -> None: ...
    def save_session(self, path: str) -> None: ...
    def export_current(self, path: str, level: float | None = None) -> Any: ...
    def save_screenshot(self, path: str) -> bool: ...
    def ask_open(self, title: str, filter_: str, kind: str) -> str: ...
    def show_message(self, level: str, text: str) -> None: ...


class WindowActions(QObject):
    """The window's menu commands, its Recent and Model menus and the view toolbar's iso-level slider and undo /
    redo buttons, made by :func:`build_menus`; a child of the window."""

    undo: QAction
    redo: QAction
    mesh: QAction
    voxels: QAction
    link: QAction
    reset: QAction
    open_bank: QAction
    save_session: QAction
    recent_menu: QMenu
    model_menu: QMenu
    level: QLabeledDoubleSlider
    toolbar_undo: QAction  # fixed labels; the command's name goes to the tooltip (set_undo_tip)
    toolbar_redo: QAction
    help_box: QMessageBox | None = None  # the Help box shown last

    def set_undo_tip(self, command: str) -> None:
        self.toolbar_undo.setToolTip(f"Undo {command}" if command else "Undo")

    def set_redo_tip(self, command: str) -> None:
        self.toolbar_redo.setToolTip(f"Redo {command}" if command else "Redo")


def _main_window(win: MenuHost) -> QMainWindow:
    """``win`` as the QMainWindow it is (dialogs, toolbars and actions need a QWidget or QObject)."""
    if not isinstance(win, QMainWindow):
        raise TypeError(f"menus belong to a QMainWindow, not {type(win).__name__}")
    return win


def _action(parent: QObject, text: str, slot: Callable[..., object], shortcut: object = None, tip: str = "",
            checkable: bool = False) -> QAction:
    act = QAction(text, parent)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))  # type: ignore[arg-type]
    act.setToolTip(tip or text.replace("&", "").rstrip("\u2026"))
    act.setStatusTip(act.toolTip())
    act.setCheckable(checkable)
    act.triggered.connect(slot)
    return act


def build_menus(win: MenuHost) -> WindowActions:
    """The menus and the view toolbar of ``win``; returns their actions (the window keeps them as ``commands``)."""
    a = WindowActions(_main_window(win))
    st, ctx = win.state, win.ctx
    mb = _main_window(win).menuBar()
    assert mb is not None
    # File
    f = mb.addMenu("&File")
    f.addAction(_action(a, "Open &checkpoint\u2026", lambda: _open(win, "Open checkpoint", CKPT_FILTER,
                                                                     "checkpoints", win.load_checkpoint),
                        QKeySequence.StandardKey.Open, "Load a trained model (.pt)"))
    a.open_bank = _action(a, "Open feature &bank\u2026",
                          lambda: _open(win, "Open feature bank", BANK_FILTER, "banks", win.open_bank), "Ctrl+B",
                          "Open a feature bank for nearest-neighbour retrieval")
    f.addAction(a.open_bank)
    ctx.actions["open_bank"] = a.open_bank
    f.addSeparator()
    f.addAction(_action(a, "Open &session\u2026", lambda: _open(win, "Open session", SESSION_FILTER, "sessions",
                                                                  win.open_session), "Ctrl+Shift+O"))
    a.save_session = _action(a, "&Save session\u2026", lambda: _save(win, "Save session", "session.json",
                                                                      SESSION_FILTER, win.save_session),
                             QKeySequence.StandardKey.Save)
    f.addAction(a.save_session)
    a.recent_menu = f.addMenu("&Recent files")
    a.recent_menu.aboutToShow.connect(lambda: _fill_recent(win, a.recent_menu))
    f.addSeparator()
    f.addAction(_action(a, "&Export current shape\u2026", lambda: _save(win, "Export current shape", "shape.stl",
                                                                        EXPORT_FILTER, win.export_current), "Ctrl+E",
                        "Save the current shape as STL, OBJ, PLY, GLB, glTF, 3MF or binvox"))
    f.addAction(_action(a, "Save screens&hot\u2026", lambda: _save(win, "Save screenshot", "explorer.png",
                                                                    "PNG image (*.png)", win.save_screenshot),
                        "F12", "Save a PNG of the whole window"))
    f.addSeparator()
    f.addAction(_action(a, "&Quit", _main_window(win).close, QKeySequence.StandardKey.Quit))
    # Edit
    e = mb.addMenu("&Edit")
    a.undo = st.undo_stack.createUndoAction(a, "&Undo")
    a.undo.setShortcut(QKeySequence.StandardKey.Undo)
    a.redo = st.undo_stack.createRedoAction(a, "&Redo")
    a.redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    e.addActions([a.undo, a.redo])
    # View
    v = mb.addMenu("&View")
    group = QActionGroup(a)
    a.mesh = _action(a, "Smooth &mesh", lambda: st.set_display("mesh"), "Ctrl+1",
                     "Show shapes as smooth marching-cubes surfaces", checkable=True)
    a.voxels = _action(a, "&Voxels", lambda: st.set_display("voxels"), "Ctrl+2", "Show shapes as voxel cubes",
                       checkable=True)
    for act in (a.mesh, a.voxels):
        group.addAction(act)
        v.addAction(act)
    v.addSeparator()
    a.link = _action(a, "&Link cameras", lambda on: st.set_linked(on), "Ctrl+L", "Rotate all 3D views together",
                     checkable=True)
    v.addAction(a.link)
    a.reset = _action(a, "&Reset view", ctx.cameras.reset, "Ctrl+R", "Back to the default 3/4 view")
    v.addAction(a.reset)
    v.addAction(_action(a, "&Play / pause", lambda: win.interpolate.play.toggle(), "Ctrl+P",
                        "Animate the interpolation"))
    v.addSeparator()
    for dock in (win.dock, win.map_dock, win.directions_dock, win.units_dock):
        v.addAction(dock.toggleViewAction())
    for i in range(win.tabs.count()):
        v.addAction(_action(a, f"Go to {win.tabs.tabText(i)}", lambda _c=False, i=i: win.tabs.setCurrentIndex(i),
                            f"Alt+{i + 1}"))
    # Model
    a.model_menu = mb.addMenu("&Model")
    _fill_model_menu(win, a)
    # Help
    h = mb.addMenu("&Help")
    h.addAction(_action(a, "&Keyboard shortcuts", lambda: _show_help(win, "Keyboard shortcuts", shortcuts_html(win)),
                        "F1", "The keys of every menu command"))
    h.addAction(_action(a, "&Documentation", lambda: _show_help(win, "Documentation", docs_html()), None,
                        "Where the documentation is: the READMEs, gan3d --help, the log"))
    h.addSeparator()
    h.addAction(_action(a, "&About 3D-GAN Explorer", lambda: _show_help(win, "About 3D-GAN Explorer",
                                                                         about_html(win)), None,
                        "Version, the model and device in use, and where this comes from"))
    _build_toolbar(win, a)
    sync_view_actions(st, a)
    return a


def _build_toolbar(win: MenuHost, a: WindowActions) -> None:
    st = win.state
    tb = QToolBar("View")
    tb.setObjectName("view-toolbar")
    tb.setAccessibleName("View toolbar")
    tb.setMovable(False)
    _main_window(win).addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    for act in (a.mesh, a.voxels):
        tb.addAction(act)
    tb.addSeparator()
    tb.addWidget(QLabel(" Iso level "))
    a.level = level = describe(QLabeledDoubleSlider(Qt.Orientation.Horizontal), "Iso level",
                               "Occupancy threshold of the surface (0.05 to 0.95, steps of 0.01)")
    level.setRange(0.05, 0.95)
    level.setSingleStep(0.01)
    level.setDecimals(2)
    level.setValue(st.level)
    level.setMaximumWidth(260)
    level.setTracking(False)  # regenerate on release / typing, not on every pixel of a drag
    level.valueChanged.connect(lambda v: st.set_level(round(float(v), 2)))
    for child in level.findChildren(object):
        if hasattr(child, "setAccessibleName") and hasattr(child, "setToolTip"):
            child.setAccessibleName("Iso level")
            child.setToolTip("Occupancy threshold of the surface")
    tb.addWidget(level)
    tb.addSeparator()
    tb.addAction(a.link)
    tb.addAction(a.reset)
    tb.addSeparator()
    # Fixed labels: the menu's actions carry the command's name ("Undo Set B to seed 23"), which would make
    # the toolbar jump in width at every edit; here the name goes to the tooltip.
    stack = st.undo_stack
    a.toolbar_undo = _action(a, "Undo", stack.undo, None, "Undo")
    a.toolbar_redo = _action(a, "Redo", stack.redo, None, "Redo")
    for act, can, can_changed, text_changed, tip in (
            (a.toolbar_undo, stack.canUndo, stack.canUndoChanged, stack.undoTextChanged, a.set_undo_tip),
            (a.toolbar_redo, stack.canRedo, stack.canRedoChanged, stack.redoTextChanged, a.set_redo_tip)):
        act.setEnabled(can())
        can_changed.connect(act.setEnabled)
        text_changed.connect(tip)  # a bound method of the window's child: disconnected when the window goes
        tb.addAction(act)
    for act in tb.actions():
        btn = tb.widgetForAction(act)
        if btn is not None and not btn.accessibleName() and act.text():
            describe(btn, act.text().replace("&", ""), act.toolTip())


def sync_view_actions(st: SessionState, a: WindowActions) -> None:
    """The View menu's checks and the iso-level slider follow the state (an undo, a session opened)."""
    a.mesh.setChecked(st.display == "mesh")
    a.voxels.setChecked(st.display == "voxels")
    a.link.setChecked(st.linked)
    if abs(a.level.value() - st.level) > 1e-6:
        a.level.blockSignals(True)
        a.level.setValue(st.level)
        a.level.blockSignals(False)


def fill_model_menu(win: MenuHost) -> None:
    """The Model menu anew: the bundled models (the current one checked), then Open checkpoint."""
    _fill_model_menu(win, win.commands)


def _fill_model_menu(win: MenuHost, a: WindowActions) -> None:
    menu = a.model_menu
    menu.clear()
    try:
        models = list_models()
    except Exception as e:  # noqa: BLE001 (a broken registry is a message, not a crash)
        models = []
        win.show_message("warning", str(e))
    current = win.state.model
    for m in models:
        act = _action(a, m.name, lambda _c=False, m=m: _load_bundled(win, m), None,
                      m.description or str(m.checkpoint), checkable=True)
        act.setChecked(current is not None and current.checkpoint_path == m.checkpoint)
        menu.addAction(act)
    if not models:
        none = menu.addAction("(no bundled models installed)")
        assert none is not None
        none.setEnabled(False)
    menu.addSeparator()
    menu.addAction(_action(a, "Open checkpoint\u2026", lambda: _open(win, "Open checkpoint", CKPT_FILTER,
                                                                        "checkpoints", win.load_checkpoint)))


def _load_bundled(win: MenuHost, entry: object) -> None:
    win.load_checkpoint(entry.name)  # type: ignore[attr-defined]  # by name: the registry's name and seeds
    bank = getattr(entry, "bank", None)
    if bank is not None and Path(bank).exists():
        # the bank opens once the model is in (it checks the discriminator's hash)
        win.state.modelChanged.connect(lambda _m, b=str(bank): win.open_bank(b), Qt.ConnectionType.SingleShotConnection)


def _open(win: MenuHost, title: str, filter_: str, kind: str, then: Callable[[str], object]) -> None:
    name = win.ask_open(title, filter_, kind)
    if name:
        then(name)


def _save(win: MenuHost, title: str, default: str, filter_: str, then: Callable[[str], object]) -> None:
    name, _ = QFileDialog.getSaveFileName(_main_window(win), title, default, filter_)
    if name:
        then(name)


def _fill_recent(win: MenuHost, menu: QMenu) -> None:
    menu.clear()
    for kind, then in (("sessions", win.open_session), ("checkpoints", win.load_checkpoint),
                       ("banks", win.open_bank)):
        for p in win.recent.get(kind):
            menu.addAction(f"{kind[:-1]}: {p}", lambda _c=False, p=p, then=then: then(p))
    if menu.isEmpty():
        none = menu.addAction("(none yet)")
        assert none is not None
        none.setEnabled(False)


# -- Help ------------------------------------------------------------------------------------------------------
def shortcuts_html(win: MenuHost) -> str:
    """A table of every menu command that has a key, in menu order, and the keys of the views."""
    rows = []
    bar = _main_window(win).menuBar()
    for menu in bar.actions() if bar is not None else ():
        for act in menu.menu().actions() if menu.menu() is not None else ():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts())
            if keys and act.text():
                rows.append(f"<tr><td>{html.escape(keys)}</td><td>{html.escape(act.text().replace('&', ''))}</td></tr>")
    rows += ["<tr><td>Esc</td><td>Cancel the running job</td></tr>",
             "<tr><td>Ctrl+K</td><td>Add the current shape as a keyframe (Interpolate)</td></tr>",
             "<tr><td>Left / Right, Page Up / Down</td><td>Move the focused slider</td></tr>",
             "<tr><td>Mouse drag / wheel</td><td>Rotate / zoom a 3D view (all of them when linked)</td></tr>"]
    return "<table cellspacing=4>" + "".join(rows) + "</table>"


def docs_html() -> str:
    """Where the documentation is: the READMEs of the source checkout, the command line's help, the log."""
    readme, app_readme = REPO / "README.md", REPO / "explorer" / "README.md"
    logs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    items = [f"<a href='{p.as_uri()}'>{html.escape(str(p))}</a>: {what}" for p, what in (
        (readme, "the project, the command line, file formats, the models"),
        (app_readme, "this app: layout of the code, speed, running without a display")) if p.is_file()]
    if not items:
        items = ["README.md and explorer/README.md of the 3D-GAN Explorer source repository"]
    items += ["<code>gan3d --help</code> and <code>gan3d COMMAND --help</code>: every command, with an example",
              "<code>gan3d-explorer --help</code>: this app's options (--checkpoint, --tab map, --screenshot, ...)",
              f"the log of this app: {html.escape(str(Path(logs or '.') / 'explorer.log'))}"]
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def about_html(win: MenuHost) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("gan3d-explorer")
    except PackageNotFoundError:
        ver = "(not installed)"
    model = win.state.model
    using = ("no model loaded" if model is None else
             f"model {html.escape(model.name)} ({model.profile.name}, {model.resolution}\u00b3) on "
             f"{html.escape(model.device_name)}")
    return (f"<b>3D-GAN Explorer {ver}</b><br>Generate, explore and reconstruct 3D shapes with the 3D-GAN and "
            "3D-VAE-GAN of Wu, Zhang, Xue, Freeman and Tenenbaum (NIPS 2016).<br><br>"
            f"Now: {using}.<br>Help > Documentation says where the docs are.")


def _show_help(win: MenuHost, title: str, text: str) -> QMessageBox:
    """A non-blocking box (open(), not exec()): the app keeps running behind it."""
    box = QMessageBox(_main_window(win))
    box.setWindowTitle(title)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(text)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    box.setAccessibleName(title)
    win.commands.help_box = box
    box.open()
    return box
