"""What the discriminator's units respond to (Wu et al. 2016, sec. 4.3, Figure 8): pick a layer and a unit; the
training shapes of the feature bank that excite it most, coloured by the voxels that drive it (the gradient of
its response: red). Click one to load it (projected into z). ``gan3d units`` draws the same for any voxel set.

Scoring every unit on the bank's shapes is one pass of D over them (about half a minute for 4000 shapes at 32^3
on a CPU), on a worker, once per model and bank; browsing units afterwards ranks from those scores at once, and
only the shown shapes' heat maps are computed, on a worker too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtCore import QTimer
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import QCheckBox, QGridLayout, QLabel, QPushButton, QScrollArea, QSpinBox, QWidget

from gan_core.runtime import unit_heat_colours, unit_responses

from explorer.context import AppContext
from explorer.panels.bank_picker import project_bank_shape
from explorer.panels.lazy import LazyPanel
from explorer.thumbs import shade_voxels, to_qimage
from explorer.widgets import Thumb, describe, hbox, vbox

MAX_SHOWN = 12
THUMB = 104
COLUMNS = 2


class UnitsPanel(LazyPanel):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.layer = describe(QSpinBox(), "Discriminator layer",
                              "D's hidden block whose units to browse (0 is nearest the input)")
        self.unit = describe(QSpinBox(), "Unit", "The unit (channel) of that layer")
        self.k = describe(QSpinBox(), "Number of top shapes", "How many of the shapes that excite the unit most")
        self.k.setRange(1, MAX_SHOWN)
        self.k.setValue(8)
        self.heat = describe(QCheckBox("Heat map"), "Show heat map",
                             "Colour each shape by the voxels that drive the unit (red): the gradient of its response")
        self.heat.setChecked(True)
        self.open_bank = describe(QPushButton("Open bank\u2026"), "Open feature bank",
                                  "Open a feature bank (.h5): its training shapes are what the units are scored on")
        self.open_bank.clicked.connect(self._open_bank)
        self.about = QLabel("")
        self.about.setWordWrap(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.thumbs = [Thumb(f"Top shape {i + 1}", THUMB) for i in range(MAX_SHOWN)]
        grid = QGridLayout()
        for i, t in enumerate(self.thumbs):
            t.setVisible(False)
            t.clicked.connect(lambda _c=False, t=t: self._load(t))
            grid.addWidget(t, i // COLUMNS, i % COLUMNS)
        shelf = QWidget()
        shelf.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(shelf)
        self.setLayout(vbox(hbox(QLabel("Layer"), self.layer, QLabel("Unit"), self.unit, 1),
                            hbox(QLabel("Shapes"), self.k, self.heat, 1), self.about, self.status,
                            hbox(self.open_bank, 1), scroll, margins=6))
        self.responses: Any = None  # gan_core.units.UnitResponses of the scored model and bank
        self._scored: tuple[Any, Any] | None = None
        self.top: Any = None  # the TopShapes on show
        self.heat_of: tuple[int, int] | None = None  # (layer, unit) whose heat maps the thumbnails show
        self._heat_id = 0
        self._heat_later = QTimer(self)  # a spin box held down: heat maps only for the unit it stops at
        self._heat_later.setSingleShot(True)
        self._heat_later.setInterval(150)
        self._heat_later.timeout.connect(self._request_heat)
        self.layer.valueChanged.connect(self._layer_changed)
        self.unit.valueChanged.connect(lambda _v: self.show_unit())
        self.k.valueChanged.connect(lambda _v: self.show_unit())
        self.heat.toggled.connect(lambda _on: self.show_unit())
        ctx.state.modelChanged.connect(lambda _m: self.reload())
        ctx.state.bankChanged.connect(lambda _b: self.reload())
        self.reload()

    # -- scoring -------------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Score every unit on the bank's shapes (on a worker, once per model and bank), then show the unit."""
        if not self.due():
            return
        model, bank = self.ctx.state.model, self.ctx.state.bank
        self.open_bank.setVisible(bank is None)
        if model is None or bank is None or model.discriminator is None or bank.thumbnails_ is None:
            self.responses, self._scored = None, None
            self._show_thumbs(0)
            self.about.setText("")
            self.status.setText(
                "No model loaded." if model is None else
                "This model has no discriminator: load a full checkpoint." if model.discriminator is None else
                "Open a feature bank: its training shapes are what D's units are scored on." if bank is None else
                "This feature bank holds no thumbnails of its shapes.")
            return
        if self._scored == (model, bank):
            self.show_unit()
            return
        self.responses, self._scored = None, None
        self._show_thumbs(0)
        self.status.setText(f"Scoring D's units on the bank's {len(bank)} training shapes\u2026")

        def job(report: Any) -> Any:
            return unit_responses(model, bank, progress=report)

        def done(resp: Any) -> None:
            if self.ctx.state.model is model and self.ctx.state.bank is bank:
                self.responses, self._scored = resp, (model, bank)
                self._set_ranges()
                self.show_unit()

        self.ctx.jobs.start("Scoring D's units", job, on_done=done, progress=True,
                            on_error=lambda msg: self.status.setText(msg))

    def _set_ranges(self) -> None:
        layers = self.responses.layers
        self.layer.blockSignals(True)
        self.layer.setRange(0, len(layers) - 1)
        self.layer.blockSignals(False)
        self._layer_changed(self.layer.value(), show=False)

    def _layer_changed(self, layer: int, show: bool = True) -> None:
        if self.responses is None:
            return
        info = self.responses.layers[layer]
        self.unit.blockSignals(True)
        self.unit.setRange(0, info.units - 1)
        self.unit.blockSignals(False)
        self.about.setText(f"Layer {layer}: {info.units} units on a {info.size}\u00b3 grid, each position seeing "
                           f"{info.receptive_field}\u00b3 voxels. Red: the voxels that drive the unit.")
        if show:
            self.show_unit()

    # -- showing -------------------------------------------------------------------------------------------
    def show_unit(self) -> None:
        """The top shapes of the chosen unit as plain thumbnails at once; their heat maps follow from a worker."""
        bank = self.ctx.state.bank
        if self.responses is None or bank is None:
            return
        layer, unit = self.layer.value(), self.unit.value()
        self.top = self.responses.top(layer, unit, self.k.value())
        for rank, (thumb, i, s) in enumerate(zip(self.thumbs, self.top.indices, self.top.scores), 1):
            i, name = int(i), bank.label_name(int(i))
            thumb.bank_index = i
            thumb.set_voxels(bank.thumbnail(i))
            thumb.setText(f"{name} #{i}\n{float(s):.2f}")
            describe(thumb, f"Top shape {rank} of unit {unit}: {name} #{i}",
                     f"Training shape {i} ({name}): response {float(s):.3f} of layer {layer} unit {unit}; "
                     "click to load it (projected into z)")
        self._show_thumbs(len(self.top.indices))
        self.heat_of = None
        self.status.setText(f"The {len(self.top.indices)} training shapes that excite unit {unit} of layer {layer} "
                            "most (copies skipped), highest first.")
        if self.heat.isChecked():
            self._heat_later.start()

    def _show_thumbs(self, n: int) -> None:
        for i, t in enumerate(self.thumbs):
            t.setVisible(i < n)

    def _request_heat(self) -> None:
        model, top = self.ctx.state.model, self.top
        if model is None or top is None or not self.heat.isChecked():
            return
        self._heat_id += 1
        ticket = self._heat_id
        bank = self.ctx.state.bank
        vox = np.stack([bank.thumbnail(int(i)) for i in top.indices])

        def job() -> tuple[np.ndarray, np.ndarray]:
            return unit_heat_colours(model, vox, top.layer, top.unit)

        def done(res: tuple[np.ndarray, np.ndarray]) -> None:
            if ticket != self._heat_id or self.top is not top or not self.heat.isChecked():
                return  # another unit since
            grids, colours = res
            for thumb, g, c in zip(self.thumbs, grids, colours):
                thumb.setIcon(QIcon(QPixmap.fromImage(to_qimage(shade_voxels(g, 0.5, THUMB, colors=c)))))
            self.heat_of = (top.layer, top.unit)

        self.ctx.jobs.start("Heat maps of the unit", job, on_done=done)

    def _load(self, thumb: Thumb) -> None:
        i = getattr(thumb, "bank_index", None)
        if i is not None and self.ctx.state.bank is not None:
            project_bank_shape(self.ctx, i, lambda z, label: self.ctx.state.set_current(z, label))

    def _open_bank(self) -> None:
        act = self.ctx.actions.get("open_bank")
        if act is not None:
            act.trigger()
