"""The main window: workspace tabs (interpolate, arithmetic, reconstruct, training), the docks (retrieval,
latent map, directions), menus, the view toolbar, the status bar and the message area."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QBuffer, QIODevice, QPoint, QSettings, Qt
from PyQt6.QtGui import QCloseEvent, QKeySequence, QPainter, QPixmap
from PyQt6.QtWidgets import (
    QDockWidget, QFileDialog, QLabel, QMainWindow, QProgressBar, QTabWidget, QToolButton, QWidget,
)

from gan_core.errors import Gan3dError
from gan_core.files import atomic_path
from gan_core.mesh import export_mesh, export_voxels, voxels_to_mesh
from gan_core.runtime import load_bank, load_model

from explorer.context import AppContext
from explorer.menus import build_menus, fill_model_menu, sync_view_actions
from explorer.panels.arithmetic import ArithmeticPanel
from explorer.panels.directions import DirectionsPanel
from explorer.panels.interpolate import InterpolatePanel
from explorer.panels.map import MapPanel
from explorer.panels.reconstruct import ReconstructPanel
from explorer.panels.retrieval import RetrievalPanel
from explorer.panels.training import TrainingPanel
from explorer.panels.units import UnitsPanel
from explorer.session import RecentFiles, apply_session, load_session, save_session
from explorer.state import SessionState
from explorer.viewport import ShapeView, VtkView
from explorer.widgets import MessageArea, describe, vbox

log = logging.getLogger(__name__)
WORKSPACES = ("interpolate", "arithmetic", "reconstruct", "training")  # the tabs, in order
UNTRAINED_BANNER = "No trained model installed: showing an untrained generator"
SHAPE_FILTER = "STL mesh (*.stl);;OBJ mesh (*.obj);;PLY mesh (*.ply);;binvox voxels (*.binvox)"


class MainWindow(QMainWindow):
    def __init__(self, state: SessionState, settings: QSettings | None = None, banner: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("3D-GAN Explorer")
        self.setAccessibleName("3D-GAN Explorer main window")
        self.state = state
        if state.parent() is None:
            state.setParent(self)  # the session (and its undo stack) lives as long as the window
        self.ctx = AppContext(state, self)
        self.settings = settings if settings is not None else QSettings("gan3d", "explorer")
        self.recent = RecentFiles(self.settings)
        self.ctx.actions["load_checkpoint"] = self.load_checkpoint
        self.banner = QLabel(banner or "")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fff4d6; color: #7a4b00; padding: 6px 10px; font-weight: 600;")
        self.banner.setVisible(bool(banner))
        self.messages = MessageArea()
        self.ctx.notifier.message.connect(self.show_message)

        self.interpolate = InterpolatePanel(self.ctx)
        self.arithmetic = ArithmeticPanel(self.ctx)
        self.reconstruct = ReconstructPanel(self.ctx)
        self.training = TrainingPanel(self.ctx)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Workspaces")
        self.tabs.setToolTip("Interpolate, Arithmetic, Reconstruct and Training workspaces (Alt+1..4)")
        for panel, name in ((self.interpolate, "Interpolate"), (self.arithmetic, "Arithmetic"),
                            (self.reconstruct, "Reconstruct"), (self.training, "Training")):
            self.tabs.addTab(panel, name)
        central = QWidget()
        central.setLayout(vbox(self.banner, self.tabs, self.messages))
        self.setCentralWidget(central)

        self.retrieval = RetrievalPanel(self.ctx)
        self.retrieval.sample_of = self.training.chosen_sample
        self.training.sampleChosen.connect(self.retrieval.refresh_training)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.dock = QDockWidget("Nearest training shapes", self)
        self.dock.setObjectName("retrieval-dock")
        self.dock.setAccessibleName("Nearest training shapes panel")
        self.dock.setWidget(self.retrieval)
        self.dock.setMinimumWidth(240)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.resizeDocks([self.dock], [300], Qt.Orientation.Horizontal)
        # the map and the directions share the right side with retrieval, as tabs: they work only when shown
        self.map = MapPanel(self.ctx)
        self.directions = DirectionsPanel(self.ctx)
        self.map_dock = self._tab_dock(self.map, "Latent map", "map-dock")
        self.directions_dock = self._tab_dock(self.directions, "Directions", "directions-dock")
        self.units = UnitsPanel(self.ctx)
        self.units_dock = self._tab_dock(self.units, "D's units", "units-dock")
        self.map.enlargeToggled.connect(self.set_map_enlarged)
        self.map_dock.topLevelChanged.connect(self._map_floated)
        self.dock.raise_()

        self._build_status_bar()
        self.commands = build_menus(self)  # menus, actions, the view toolbar (not .actions: QWidget.actions())
        state.modelChanged.connect(self._model_changed)
        state.changed.connect(self._state_changed)
        self.ctx.service.resultReady.connect(self._generated)
        self.ctx.service.busyChanged.connect(self._busy)
        self.ctx.jobs.busyChanged.connect(self._busy)
        self.ctx.jobs.progress.connect(self._progress)
        self.resize(1400, 900)
        self.setMinimumSize(960, 640)
        self._closed = False
        if state.model is not None:
            self._model_changed(state.model)
        self.ctx.cameras.set_linked(state.linked)

    def show_workspace(self, name: str) -> None:
        """A workspace tab by name (``WORKSPACES``), or a side panel ("map", "directions") brought to the front
        with half the window's width (``gan3d-explorer --tab``)."""
        if name in WORKSPACES:
            self.tabs.setCurrentIndex(WORKSPACES.index(name))
            return
        docks = {"map": self.map_dock, "directions": self.directions_dock, "units": self.units_dock}
        if name not in docks:
            raise ValueError(f"unknown workspace or panel {name!r}")
        dock = docks[name]
        dock.show()
        dock.raise_()
        self.resizeDocks([dock], [self.width() // 2], Qt.Orientation.Horizontal)

    def set_map_enlarged(self, on: bool) -> None:
        """The latent map in a window of its own, about two thirds of the screen (``on``), or back among the
        side panels."""
        dock = self.map_dock
        if on == dock.isFloating():
            return
        if on:
            dock.setFloating(True)
            screen = (self.screen() or dock.screen()).availableGeometry()
            w, h = int(screen.width() * 0.66), int(screen.height() * 0.75)
            dock.setGeometry(screen.x() + (screen.width() - w) // 2, screen.y() + (screen.height() - h) // 2, w, h)
            dock.show()
            dock.raise_()
        else:
            dock.setFloating(False)
            self.tabifyDockWidget(self.dock, dock)
            dock.raise_()

    def _map_floated(self, floating: bool) -> None:
        if self.map.enlarge.isChecked() != floating:  # a double click on the dock's title floats it too
            self.map.enlarge.setChecked(floating)  # (set_map_enlarged then finds nothing to do)

    def _tab_changed(self, i: int) -> None:
        """The neighbours panel follows the shape of the workspace on screen."""
        self.retrieval.set_source(WORKSPACES[i])

    def _tab_dock(self, widget: MapPanel | DirectionsPanel | UnitsPanel, title: str, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setAccessibleName(f"{title} panel")
        dock.setWidget(widget)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.tabifyDockWidget(self.dock, dock)  # a tab behind retrieval until chosen: it works once in front
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.device_label = QLabel()
        self.model_label = QLabel()
        self.time_label = QLabel("")
        self.time_label.setToolTip("Time of the last generation (generator + marching cubes)")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Progress of long work")
        self.progress.setToolTip("Progress of the running job (projection, loading, export)")
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel = describe(QToolButton(), "Cancel running job",
                               "Stop the running projection or export at its next step (Esc)")
        self.cancel.setText("Cancel")
        self.cancel.setShortcut(QKeySequence("Esc"))
        self.cancel.clicked.connect(self.ctx.jobs.abort)
        self.cancel.setVisible(False)
        for w in (self.model_label, self.device_label, self.time_label):
            sb.addPermanentWidget(w)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel)

    # -- state -> window -----------------------------------------------------------------------------------
    def _model_changed(self, model: Any) -> None:
        self.setWindowTitle(f"3D-GAN Explorer \u2014 {model.name} ({model.profile.name})")
        self.model_label.setText(f"Model: {model.name} ({model.profile.name}, {model.resolution}\u00b3)")
        self.device_label.setText(f"Device: {model.device_name}")
        if model.checkpoint_path is not None:
            self.banner.setVisible(False)
        bank = self.state.bank
        if bank is not None:
            try:
                bank.check_model(model)
            except Gan3dError as e:
                self.show_message("warning", f"Closed the feature bank: {e}")
                self.state.set_bank(None)
        fill_model_menu(self)

    def _state_changed(self, fields: frozenset[str]) -> None:
        if "linked" in fields:
            self.ctx.cameras.set_linked(self.state.linked)
        sync_view_actions(self.state, self.commands)

    def _generated(self, result: Any) -> None:
        if result.extra is not None:
            return  # a retrieval query, not a shape
        if result.voxels.ndim == 4:
            self.time_label.setText(f"Generated {len(result.voxels)} shapes in {_ms(result.generate_ms)}")
        else:
            self.time_label.setText(f"Generated in {_ms(result.generate_ms)}, meshed in {_ms(result.mesh_ms)}")

    def _busy(self, _busy: bool) -> None:
        busy = self.ctx.jobs.busy
        self.progress.setVisible(busy)
        self.cancel.setVisible(busy)
        if not busy:
            self.statusBar().clearMessage()

    def _progress(self, label: str, done: int, total: int) -> None:
        self.progress.setVisible(True)
        self.cancel.setVisible(True)
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        self.statusBar().showMessage(label + ("\u2026" if total == 0 else f" ({done}/{total})"))

    def show_message(self, level: str, text: str) -> None:
        self.messages.show_message(level, text)
        self.statusBar().showMessage(text, 8000)

    # -- actions -------------------------------------------------------------------------------------------
    def load_checkpoint(self, path: str) -> Any:
        """Load a checkpoint (or bundled model name) on a worker and swap it into every view. A file that
        cannot be opened is a message naming it; the current model stays (and the file stays out of Recent)."""
        def done(model: Any) -> None:
            self.state.set_model(model)
            if Path(path).exists():
                self.recent.add("checkpoints", path)
            self.show_message("info", f"Loaded {model.name} ({model.profile.name})")

        return self.ctx.jobs.start(f"Loading {Path(path).name}", load_model, path, on_done=done)

    def open_bank(self, path: str) -> Any:
        model = self.state.model

        def done(bank: Any) -> None:
            self.state.set_bank(bank, str(path))
            self.recent.add("banks", path)
            self.show_message("info", f"Opened feature bank {Path(path).name} ({len(bank)} shapes)")

        return self.ctx.jobs.start(f"Opening {Path(path).name}", load_bank, path, model, on_done=done)

    def open_session(self, path: str) -> None:
        try:
            sess = load_session(path)
        except Gan3dError as e:
            self.show_message("error", str(e))
            return
        self.recent.add("sessions", path)
        model = self.state.model
        current = str(model.checkpoint_path) if model is not None and model.checkpoint_path else None

        def apply(_m: Any = None) -> None:
            try:
                apply_session(self.state, sess, Path(path).name)
            except Gan3dError as e:
                name = Path(path).name
                self.show_message("error", str(e) if name in str(e) else f"{name}: {e}")
                return
            if sess.bank and sess.bank != self.state.bank_path and Path(sess.bank).exists():
                self.open_bank(sess.bank)
            self.show_message("info", f"Opened session {Path(path).name}")

        if sess.checkpoint and sess.checkpoint != current and Path(sess.checkpoint).exists():
            self.ctx.jobs.start(f"Loading {Path(sess.checkpoint).name}", load_model, sess.checkpoint,
                                on_done=lambda m: (self.state.set_model(m), apply()))
        else:
            apply()

    def save_session(self, path: str) -> None:
        try:
            p = save_session(self.state, path)
        except Gan3dError as e:
            self.show_message("error", str(e))
            return
        self.recent.add("sessions", p)
        self.show_message("info", f"Saved session to {p}")

    def export_current(self, path: str, level: float | None = None) -> Any:
        """Write the current shape as a mesh (gan_core.mesh.MESH_FORMATS: .stl .obj .ply .glb .gltf .3mf) or voxels
        (.binvox), on a worker."""
        z, model = self.state.current_z(), self.state.model
        lvl = self.state.level if level is None else level
        if z is None or model is None:
            self.show_message("error", "there is no current shape to export")
            return None

        def job() -> Path:
            vox = model.generate(z)[0]
            if Path(path).suffix.lower() == ".binvox":
                return export_voxels(vox, path, level=lvl)
            return export_mesh(voxels_to_mesh(vox, level=lvl), path)

        return self.ctx.jobs.start(f"Exporting {Path(path).name}", job,
                                   on_done=lambda p: self.show_message("info", f"Exported the current shape to {p}"))

    def views(self) -> list[ShapeView]:
        return self.findChildren(ShapeView)

    def grab_composite(self) -> QPixmap:
        """The whole window as a picture, with each visible VTK view's own render painted in (QWidget.grab
        does not capture OpenGL content reliably)."""
        pix = self.grab()
        painter = QPainter(pix)
        ratio = pix.devicePixelRatio()
        from explorer.thumbs import to_qimage

        for v in self.views():
            if isinstance(v, VtkView) and v.isVisible() and not v._closed:
                img = to_qimage(np.ascontiguousarray(v.image()))
                img.setDevicePixelRatio(ratio)
                pos = v.plotter.mapTo(self, QPoint(0, 0))
                painter.drawImage(pos, img)
        painter.end()
        return pix

    def save_screenshot(self, path: str) -> bool:
        """Write a PNG of the window atomically: a full disk or a read-only folder is a message, and the
        previous file (if any) stays whole."""
        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self.grab_composite().save(buf, "PNG")  # encoded in memory: the write below raises a real OSError
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(bytes(buf.data()))
        except Gan3dError as e:
            self.show_message("error", f"Screenshot not saved: {e}")
            return False
        self.show_message("info", f"Screenshot saved to {path}")
        return True

    def ask_open(self, title: str, filter_: str, kind: str) -> str:
        start = (self.recent.get(kind) or [""])[0]
        name, _ = QFileDialog.getOpenFileName(self, title, str(Path(start).parent) if start else "", filter_)
        return name

    # -- shutdown ------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop timers, workers, the trainer and close every 3D view (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.training.shutdown()
        self.ctx.shutdown()
        for panel in (self.interpolate, self.arithmetic, self.reconstruct):
            panel.close_views()
        for v in self.views():
            v.close_view()


def _ms(ms: float) -> str:
    """A duration for the status bar: shapes served from the cache take microseconds, not "0 ms"."""
    return f"{ms:.0f} ms" if ms >= 1 else "under 1 ms"
