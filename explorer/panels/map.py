"""The latent map: the bank's training shapes and generated samples in 2D (t-SNE of D features), coloured by
class, with the current shape (a star) and the interpolation path (a line through its keyframes) placed on
it live. Hover a point for its thumbnail; click it to load it (a training shape is projected into z). The
legend sits under the plot, off the points; "Enlarge" asks the window to show the panel in a window of its own."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QPointF, Qt, pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QLabel, QPushButton, QSizePolicy, QWidget

from gan_core.runtime import latent_map, place_on_map

from explorer.context import AppContext, ShapeChannel
from explorer.panels.bank_picker import project_bank_shape
from explorer.panels.lazy import LazyPanel
from explorer.state import PATH_FIELDS
from explorer.thumbs import voxel_pixmap
from explorer.widgets import describe, hbox, pyqtgraph, vbox

PATH_STEPS = 6  # map points per path segment (keyframes fall on every 6th)
PICK_PX = 8  # how near (pixels) the pointer must be to pick a point
PREVIEW = 112


def placement_job(lmap: Any, bank: Any) -> Callable[[Any, np.ndarray], np.ndarray]:
    """A job for GenerationService: map positions (Q, 2) of a generated grid or batch (on the worker)."""
    def job(model: Any, voxels: np.ndarray) -> np.ndarray:
        return place_on_map(lmap, bank, model, voxels[None] if voxels.ndim == 3 else voxels)
    return job


def legend_html(names: list[str], colours: list[str]) -> str:
    """The legend under the plot: one coloured dot per class, then what the marks mean."""
    items = "&nbsp;&nbsp; ".join(f"<span style='color:{c}; font-size: 13pt'>\u25cf</span>&nbsp;{name}"
                                 for name, c in zip(names, colours))
    return (f"{items}<br><span style='color:#555'>dots: training shapes \u00b7 rings: generated samples \u00b7 "
            "\u2605 the current shape \u00b7 line: the path</span>")


class MapPanel(LazyPanel):
    enlargeToggled = pyqtSignal(bool)  # the user asks for the map in a large window of its own (True) or back

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.lmap: Any = None
        self.map_params: dict[str, Any] = {}  # MapParams fields (defaults: 500 samples, PCA 50, perplexity 30)
        self.plot: Any = None  # the pyqtgraph plot and its marks: made when the panel is first on screen (_make_plot)
        self.path_item: Any = None
        self.current_item: Any = None
        self._plot_slot = QWidget()  # where the plot goes
        self.legend = QLabel("")  # under the plot: a legend inside it covered points
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setAccessibleName("Map legend")
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._class_items: list[Any] = []
        self.samples = describe(QCheckBox("Generated samples"), "Show generated samples",
                                "Show the generated samples (rings) beside the training shapes")
        self.samples.setChecked(True)
        self.samples.toggled.connect(self._show_samples)
        self.build = describe(QPushButton("Build map"), "Build latent map",
                              "Embed the training shapes and 500 samples with t-SNE (a minute or two; cached)")
        self.build.clicked.connect(self.build_map)
        self.enlarge = describe(QPushButton("Enlarge"), "Show the map in a large window",
                                "Show the map in a window of its own (click again, or close that window, to put it "
                                "back in the side panel)")
        self.enlarge.setCheckable(True)
        self.enlarge.toggled.connect(lambda on: self.enlarge.setText("Back to the side" if on else "Enlarge"))
        self.enlarge.toggled.connect(self.enlargeToggled)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW, PREVIEW)
        self.preview.setAccessibleName("Hovered shape")
        self.preview_text = QLabel("Hover a point to see its shape")
        self.preview_text.setWordWrap(True)
        layout = vbox(self.status, hbox(self.build, self.samples, 1, self.enlarge), self._plot_slot, self.legend,
                      hbox(self.preview, self.preview_text, margins=2), margins=4)
        layout.setStretch(2, 1)  # the plot takes the height
        self.setLayout(layout)
        self._box = layout
        self.hovered: int | None = None
        st = ctx.state
        self.current = ShapeChannel(ctx, "map-current", self, st.current_z, PATH_FIELDS, display="none",
                                    link_camera=False, job_of=self._job)
        self.path = ShapeChannel(ctx, "map-path", self, self.path_zs, frozenset({"slot:A", "slot:B", "keys", "mode"}),
                                 display="none", link_camera=False, job_of=self._job)
        st.bankChanged.connect(lambda _b: self.reload())
        st.modelChanged.connect(lambda _m: self.reload())
        self.reload()

    def _make_plot(self) -> None:
        """The plot, its current-shape star and path line, in place of the empty slot (once)."""
        if self.plot is not None:
            return
        pg = pyqtgraph()  # here, not at the top: the map is a hidden dock, and importing pyqtgraph slowed the launch
        self.plot = describe(pg.PlotWidget(background="w"), "Latent map",
                             "Training shapes (dots) and generated samples (rings) by their D features, coloured "
                             "by class; the star is the current shape, the line the path. Click a point to load it")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.path_item = pg.PlotDataItem(pen=pg.mkPen("#222", width=2), symbol="o", symbolSize=9,
                                         symbolBrush="#fff", symbolPen=pg.mkPen("#222"))
        self.current_item = pg.ScatterPlotItem(symbol="star", size=22, brush=pg.mkBrush("#111"), pen=pg.mkPen("w"))
        self._box.replaceWidget(self._plot_slot, self.plot)
        self._plot_slot.deleteLater()
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._mouse_clicked)

    # -- the map -------------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Forget the map; open the cached one for the state's model and bank, if there is one (once shown:
        a hidden panel does nothing)."""
        self._clear()
        if not self.due():
            return
        self._make_plot()
        st = self.ctx.state
        if st.bank is None or st.model is None:
            self._set_status("Open a feature bank (File > Open feature bank) to map its training shapes.")
            self.build.setEnabled(False)
            return
        self.build.setEnabled(True)
        self._set_status("Looking for a cached map\u2026")
        model, bank = st.model, st.bank
        self.ctx.jobs.start("Opening the latent map", lambda: latent_map(model, bank, build=False, **self.map_params),
                            on_done=lambda m: self._loaded(m, model, bank))

    def build_map(self) -> Any:
        st = self.ctx.state
        if st.bank is None or st.model is None:
            return None
        model, bank = st.model, st.bank
        self.build.setEnabled(False)
        self._set_status("Building the map (t-SNE of the training shapes and 500 samples; cached afterwards)\u2026")

        def job(report: Callable[[int, int], None]) -> Any:
            return latent_map(model, bank, progress=report, **self.map_params)

        return self.ctx.jobs.start("Building the latent map", job, progress=True,
                                   on_done=lambda m: self._loaded(m, model, bank),
                                   on_error=lambda msg: (self.build.setEnabled(True), self._set_status(msg)))

    def _loaded(self, lmap: Any, model: Any, bank: Any) -> None:
        st = self.ctx.state
        if st.model is not model or st.bank is not bank:
            return  # made for a model or bank that has gone since
        if lmap is None:
            self._set_status("No map of this bank yet. Build one (a minute or two on a CPU; then cached).")
            return
        self.set_map(lmap)

    def set_map(self, lmap: Any) -> None:
        """Draw ``lmap``: one scatter per class for the bank (dots) and the samples (rings)."""
        pg = pyqtgraph()  # (see _make_plot)
        self._make_plot()
        self._clear()
        self.lmap = lmap
        colours = lmap.colours()
        n = lmap.n_bank
        for c, name in enumerate(lmap.class_names):
            bank_xy = lmap.coords[:n][lmap.labels[:n] == c]
            samp_xy = lmap.coords[n:][lmap.labels[n:] == c]
            dots = pg.ScatterPlotItem(*bank_xy.T, size=5, pen=None, brush=pg.mkBrush(colours[c]))
            rings = pg.ScatterPlotItem(*samp_xy.T, size=9, pen=pg.mkPen(colours[c], width=1.5), brush=None)
            for item in (dots, rings):
                self.plot.addItem(item)
                self._class_items.append(item)
        self.plot.addItem(self.path_item)
        self.plot.addItem(self.current_item)
        self.legend.setText(legend_html(lmap.class_names, colours))
        self._show_samples(self.samples.isChecked())
        self.build.setEnabled(False)
        self._set_status(f"{n} training shapes and {lmap.n_samples} generated samples "
                         f"({lmap.params.kind!r} D features, PCA + t-SNE).")
        self.current.refresh()
        self.path.refresh()

    def _clear(self) -> None:
        self.lmap = None
        if self.plot is None:  # never shown: nothing drawn
            return
        for item in self._class_items:
            self.plot.removeItem(item)
        self._class_items = []
        self.legend.setText("")
        for item in (self.path_item, self.current_item):
            self.plot.removeItem(item)
        self.path_item.setData([], [])
        self.current_item.setData([], [])

    def _show_samples(self, on: bool) -> None:
        for item in self._class_items[1::2]:
            item.setVisible(on)

    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    # -- live current shape and path (ShapeChannel view interface) -----------------------------------------
    def path_zs(self) -> np.ndarray | None:
        steps = (len(self.ctx.state.keys) + 1) * PATH_STEPS + 1
        return self.ctx.state.path_z(np.linspace(0.0, 1.0, steps))

    def _job(self) -> Any:
        if self.lmap is None:  # (the channels ask only while the panel is on screen)
            return None
        return placement_job(self.lmap, self.ctx.state.bank)

    def set_result(self, result: Any) -> None:
        if self.lmap is None or result.extra is None:
            return
        xy = np.asarray(result.extra)
        if result.target == "map-current":
            self.current_item.setData(xy[:, 0], xy[:, 1])
        else:
            self.path_item.setData(xy[:, 0], xy[:, 1], symbolSize=[11 if i % PATH_STEPS == 0 else 0 for i in range(len(xy))])

    def set_status(self, text: str) -> None:
        if text and text != "empty":
            self._set_status(text)

    # -- hover and click -----------------------------------------------------------------------------------
    def row_at(self, x: float, y: float, radius_px: float = PICK_PX) -> int | None:
        """The map row drawn nearest to (x, y) in data coordinates, if within ``radius_px`` pixels."""
        if self.lmap is None:
            return None
        sx, sy = (abs(v) or 1.0 for v in self.plot.getViewBox().viewPixelSize())
        d2 = ((self.lmap.coords[:, 0] - x) / sx) ** 2 + ((self.lmap.coords[:, 1] - y) / sy) ** 2
        if not self.samples.isChecked():
            d2[self.lmap.n_bank:] = np.inf
        i = int(np.argmin(d2))
        return i if d2[i] <= radius_px**2 else None

    def show_preview(self, row: int | None) -> None:
        """Thumbnail and description of map row ``row`` (None: clear)."""
        self.hovered = row
        if row is None or self.lmap is None:
            self.preview.clear()
            self.preview_text.setText("Hover a point to see its shape")
            return
        src, j = self.lmap.source(row)
        cls = self.lmap.class_names[int(self.lmap.labels[row])]
        if src == "bank":
            grid, text = self.ctx.state.bank.thumbnail(j), f"<b>{cls}</b> #{j}<br>training shape; click to load it (projected)"
        else:
            grid, text = self.lmap.sample_thumbnail(j), f"<b>generated sample {j}</b><br>looks like a {cls}; click to load it"
        self.preview.setPixmap(voxel_pixmap(grid, 0.5, PREVIEW))
        self.preview_text.setText(text)

    def activate(self, row: int) -> None:
        """Load map row ``row`` as the current shape."""
        src, j = self.lmap.source(row)
        st = self.ctx.state
        if src == "sample":
            st.set_current(self.lmap.sample_z[j], f"map sample {j}")
        else:
            project_bank_shape(self.ctx, j, lambda z, label: st.set_current(z, label))

    def _mouse_moved(self, pos: QPointF) -> None:
        p = self.plot.getViewBox().mapSceneToView(pos)
        row = self.row_at(p.x(), p.y())
        if row != self.hovered:
            self.show_preview(row)

    def _mouse_clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        p = self.plot.getViewBox().mapSceneToView(event.scenePos())
        row = self.row_at(p.x(), p.y())
        if row is not None:
            self.activate(row)
