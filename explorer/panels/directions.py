"""Semantic directions: sliders that move the current shape along directions in z found without labels
(GANSpace PCA of the generator's first layer; the first few shown, named by the classes they move shapes
towards) and with labels (class-mean differences of projected training shapes, e.g. chair -> sofa).

The sliders are offsets from a base shape: the current shape when a slider first moves. Any other change of
the current shape (a new t, a map click, undo) makes that the new base and sets the sliders back to 0.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget
from superqt.utils import QSignalThrottler

from gan_core.runtime import class_directions, semantic_directions

from explorer.context import AppContext
from explorer.panels.lazy import LazyPanel
from explorer.state import PATH_FIELDS
from explorer.widgets import describe, hbox, vbox

SHOWN = 5  # unsupervised directions shown at first
TICKS = 100  # slider positions per span, either way


class DirectionRow(QWidget):
    """One direction: its name, a slider from -span to +span, the offset, and a remove button."""

    def __init__(self, direction: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.direction = direction
        self.name = QLabel(direction.name)
        self.name.setWordWrap(True)
        tip = f"Move the current shape along {direction.name} (\u00b1{direction.span:.1f} in z)"
        if direction.kind == "pca" and np.isfinite(direction.explained):
            tip += f"; explains {100 * direction.explained:.1f}% of the first layer's variance"
        self.slider = describe(QSlider(Qt.Orientation.Horizontal), f"Direction {direction.name}", tip)
        self.slider.setRange(-TICKS, TICKS)
        self.slider.setPageStep(TICKS // 5)
        self.value = QLabel("+0.0")
        self.value.setMinimumWidth(36)
        self.remove = describe(QPushButton("\u2715"), f"Remove direction {direction.name}", "Hide this slider")
        self.remove.setFlat(True)
        self.setLayout(vbox(self.name, hbox(self.slider, self.value, self.remove), spacing=2))

    def offset(self) -> float:
        """The slider's offset in z units."""
        return self.slider.value() / TICKS * self.direction.span

    def zero(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.value.setText("+0.0")


class DirectionsPanel(LazyPanel):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.directions: list[Any] = []
        self.means: Any = None
        self.pca_params: dict[str, Any] = {}  # PcaParams fields (defaults: 2000 samples, 10 directions, 5 named)
        self.rows: list[DirectionRow] = []
        self._base: np.ndarray | None = None
        self._base_label = ""
        self._last: np.ndarray | None = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self._rows = QVBoxLayout()
        self._rows.setSpacing(8)
        self.more = describe(QComboBox(), "More directions", "Add a slider for another unsupervised direction")
        self.more.activated.connect(self._add_more)
        self.reset = describe(QPushButton("Reset"), "Reset sliders", "Back to the shape the sliders started from")
        self.reset.clicked.connect(self.reset_sliders)
        self.compute_classes = describe(
            QPushButton("Class directions\u2026"), "Compute class directions",
            "Project a few training shapes of each class into z (minutes on a CPU, then cached) for directions "
            "like chair \u2192 sofa")
        self.compute_classes.clicked.connect(self.start_class_directions)
        self.from_class = describe(QComboBox(), "From class", "The class a class direction starts from")
        self.to_class = describe(QComboBox(), "To class", "The class a class direction leads to")
        self.add_pair = describe(QPushButton("Add"), "Add class direction", "Add a slider from one class to another")
        self.add_pair.clicked.connect(lambda: self.add_class_direction(self.from_class.currentText(),
                                                                       self.to_class.currentText()))
        self.pair_box = QWidget()
        self.pair_box.setLayout(hbox(self.from_class, QLabel("\u2192"), self.to_class, self.add_pair))
        self.pair_box.setVisible(False)
        self.setLayout(vbox(self.status, self._rows, hbox(self.more, self.reset), self.compute_classes, self.pair_box,
                            1, margins=6))
        self.throttler = QSignalThrottler(parent=self)
        self.throttler.setTimeout(16)
        self.throttler.triggered.connect(self._apply)
        ctx.state.changed.connect(self._on_changed)
        ctx.state.modelChanged.connect(lambda _m: self.reload())
        ctx.state.bankChanged.connect(lambda _b: self.reload())
        self.reload()

    # -- directions ----------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Find (or open the cached) directions of the state's model, named with its bank; once shown."""
        if not self.due() or self.ctx.state.model is None:
            return
        model, bank = self.ctx.state.model, self.ctx.state.bank
        self._set_directions([])
        self.means = None
        self._base = self._last = None
        self.pair_box.setVisible(False)
        self.compute_classes.setEnabled(bank is not None)
        self.status.setText("Finding directions (PCA of the generator's first layer)\u2026" +
                            (" Open a feature bank to name them and for class directions." if bank is None else ""))

        def job(report: Callable[[int, int], None]) -> list[Any]:
            return semantic_directions(model, bank, progress=report, **self.pca_params)

        def done(dirs: list[Any]) -> None:
            if self.ctx.state.model is model and self.ctx.state.bank is bank:
                self._set_directions(dirs)

        self.ctx.jobs.start("Finding semantic directions", job, on_done=done, progress=True)

    def _set_directions(self, dirs: list[Any]) -> None:
        self.directions = list(dirs)
        for row in self.rows:
            row.deleteLater()
        self.rows = []
        for d in self.directions[:SHOWN]:
            self._add_row(d)
        self._fill_more()
        if dirs:
            self.status.setText("Drag a slider to move the current shape along a direction. Directions found "
                                "without labels are named after the classes they turn shapes into, where one does.")

    def _fill_more(self) -> None:
        shown = {r.direction.name for r in self.rows}
        self.more.clear()
        self.more.addItem("More directions\u2026")
        for d in self.directions:
            if d.name not in shown:
                self.more.addItem(d.name, d.name)
        self.more.setEnabled(self.more.count() > 1)

    def _add_more(self, index: int) -> None:
        name = self.more.itemData(index)
        d = next((d for d in self.directions if d.name == name), None)
        if d is not None:
            self._add_row(d)
            self._fill_more()
        self.more.setCurrentIndex(0)

    def _add_row(self, direction: Any) -> DirectionRow:
        row = DirectionRow(direction, self)
        row.slider.valueChanged.connect(self.throttler.throttle)
        row.slider.sliderPressed.connect(self.ctx.state.break_merge)
        row.slider.sliderReleased.connect(self._released)
        row.remove.clicked.connect(lambda: self._remove_row(row))
        self._rows.addWidget(row)
        self.rows.append(row)
        return row

    def _remove_row(self, row: DirectionRow) -> None:
        self.rows.remove(row)
        row.deleteLater()
        self._fill_more()
        if self._base is not None:
            self._apply()

    # -- class directions ----------------------------------------------------------------------------------
    def start_class_directions(self, per_class: int = 6, steps: int = 20) -> Any:
        model, bank = self.ctx.state.model, self.ctx.state.bank
        if model is None or bank is None:
            self.ctx.notifier.warning("Class directions need a feature bank: open one with File > Open feature bank")
            return None
        self.compute_classes.setEnabled(False)

        def job(report: Callable[[int, int], None]) -> Any:
            return class_directions(model, bank, per_class=per_class, steps=steps, progress=report)

        def done(means: Any) -> None:
            if self.ctx.state.model is model and self.ctx.state.bank is bank:
                self.set_class_means(means)

        return self.ctx.jobs.start("Projecting training shapes for class directions", job, on_done=done,
                                   on_error=lambda _m: self.compute_classes.setEnabled(True), progress=True)

    def set_class_means(self, means: Any) -> None:
        """Offer class directions; add sliders for the default pairs (chair -> sofa, table -> desk, ...)."""
        self.means = means
        names = [c for c, n in zip(means.class_names, means.counts) if n]
        for combo in (self.from_class, self.to_class):
            combo.clear()
            combo.addItems(names)
        self.to_class.setCurrentIndex(min(1, len(names) - 1))
        self.pair_box.setVisible(True)
        for a, b in means.default_pairs()[:2]:
            self.add_class_direction(a, b)

    def add_class_direction(self, a: str, b: str) -> None:
        if self.means is None or a == b:
            return
        d = self.means.direction(a, b)
        if all(r.direction.name != d.name for r in self.rows):
            self._add_row(d)

    # -- sliders -> state ----------------------------------------------------------------------------------
    def _apply(self) -> None:
        """The base shape moved by every slider's offset becomes the current shape (one undo step a drag)."""
        st = self.ctx.state
        if self._base is None:
            self._base, self._base_label = st.current_z(), st.current_label()
            if self._base is None:
                return
        z = self._base.astype(np.float64)
        moved = []
        for row in self.rows:
            row.value.setText(f"{row.offset():+.1f}")
            if row.slider.value():
                z = z + row.offset() * row.direction.vector
                moved.append(f"{row.direction.name.split(':')[0]} {row.offset():+.1f}")
        self._last = z.astype(np.float32)
        st.set_current(self._last, f"{self._base_label} + " + ", ".join(moved) if moved else self._base_label,
                       merge=True)

    def _released(self) -> None:
        self.throttler.flush()
        self.ctx.state.remember_current()

    def reset_sliders(self) -> None:
        for row in self.rows:
            row.zero()
        if self._base is not None:
            self.ctx.state.break_merge()
            self._apply()

    def _on_changed(self, fields: frozenset[str]) -> None:
        if not fields & PATH_FIELDS or self._base is None:
            return
        z = self.ctx.state.current_z()
        if self._last is None or z is None or not np.allclose(z, self._last, atol=1e-6):
            self._base = self._last = None  # changed elsewhere: that shape is the new base
            for row in self.rows:
                row.zero()
