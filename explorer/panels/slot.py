"""One latent slot's editor (endpoint A/B or operand a/b/c): a seed, a random button, and a "From" menu
(history, the current shape, the reconstruction, the arithmetic result, a training shape from the bank)."""

from __future__ import annotations

import random
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDoubleSpinBox, QLabel, QMenu, QPushButton, QSpinBox, QToolButton, QWidget

from explorer.context import AppContext
from explorer.panels.bank_picker import pick_training_shape
from explorer.state import MAX_SEED
from explorer.widgets import describe, hbox, vbox

NO_SEED = -1  # the seed box's value, shown as a dash, while the slot holds a shape no seed makes


class SlotEditor(QWidget):
    """Edits ``state.slot(name)``; shows its label. With ``weight_index`` also one arithmetic weight."""

    def __init__(self, ctx: AppContext, name: str, title: str, *, weight_index: int | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.name, self.title = ctx, name, title
        self.weight_index = weight_index
        self.seed = describe(QSpinBox(), f"Seed for {title}",
                             f"Random seed of {title}'s z (same seed, same shape); a dash while {title} holds a "
                             "shape of no seed (a training shape, a reconstruction, a result)")
        self.seed.setRange(NO_SEED, MAX_SEED)
        self.seed.setSpecialValueText("\u2014")  # shown at NO_SEED
        self.seed.setKeyboardTracking(False)
        self.seed.valueChanged.connect(self._seed_changed)
        self.random = describe(QPushButton("Random"), f"Random {title}", f"Fill {title} from a new random seed")
        self.random.clicked.connect(lambda: self.seed.setValue(random.randint(0, 99999)))
        self.source = describe(QToolButton(), f"Fill {title} from\u2026",
                               f"Fill {title} from the history, the current shape, a reconstruction or a training shape")
        self.source.setText("From\u2026")
        self.source.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.source)
        menu.aboutToShow.connect(lambda: self._fill_menu(menu))
        self.source.setMenu(menu)
        self.label = QLabel()
        self.label.setStyleSheet("color: #555;")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        widgets: list[Any] = [QLabel(f"<b>{title}</b>"), self.seed, self.random, self.source]
        self.weight: QDoubleSpinBox | None = None
        if weight_index is not None:
            self.weight = describe(QDoubleSpinBox(), f"Weight of {title}",
                                   f"Multiplier of {title}'s z in w_a a - w_b b + w_c c")
            self.weight.setRange(-3.0, 3.0)
            self.weight.setSingleStep(0.05)
            self.weight.setDecimals(2)
            self.weight.valueChanged.connect(self._weight_changed)
            widgets.insert(1, QLabel("\u00d7"))
            widgets.insert(1, self.weight)
        self.setLayout(vbox(hbox(*widgets, 1), self.label, spacing=2))
        ctx.state.changed.connect(self._on_changed)
        self._sync()

    # -- state -> widgets ----------------------------------------------------------------------------------
    def _on_changed(self, fields: frozenset[str]) -> None:
        if f"slot:{self.name}" in fields or "weights" in fields:
            self._sync()

    def _sync(self) -> None:
        lat = self.ctx.state.slot(self.name)
        self.label.setText(lat.label if lat is not None else "empty")
        self.label.setToolTip(lat.label if lat is not None else "")
        # the slot's own seed, or none: a box still showing the seed of a shape the slot no longer holds (after
        # a session, a training shape, undo) would say the wrong thing, and typing that seed again would do nothing
        seed = lat.seed if lat is not None and lat.seed is not None else NO_SEED
        if seed != self.seed.value():
            self.seed.blockSignals(True)
            self.seed.setValue(seed)
            self.seed.blockSignals(False)
        if self.weight is not None and self.weight_index is not None:
            w = self.ctx.state.weights[self.weight_index]
            if abs(self.weight.value() - w) > 1e-9:
                self.weight.blockSignals(True)
                self.weight.setValue(w)
                self.weight.blockSignals(False)

    # -- widgets -> state ----------------------------------------------------------------------------------
    def _seed_changed(self, seed: int) -> None:
        if seed != NO_SEED and self.ctx.state.model is not None:
            self.ctx.state.seed_slot(self.name, seed)

    def _weight_changed(self, value: float) -> None:
        w = list(self.ctx.state.weights)
        w[self.weight_index or 0] = value
        self.ctx.state.set_weights((w[0], w[1], w[2]))

    def _set(self, z: Any, label: str) -> None:
        self.ctx.state.set_slot(self.name, z, label)

    def _fill_menu(self, menu: QMenu) -> None:
        st = self.ctx.state
        menu.clear()
        cur = st.current_z()
        act = menu.addAction("Current shape", lambda: self._set(st.current_z(), st.current_label()))
        act.setEnabled(cur is not None)
        rec = st.reconstruction
        act = menu.addAction("Reconstruction", lambda: self._set(rec.z, rec.label) if rec else None)
        act.setEnabled(rec is not None)
        arith = st.arithmetic_z()
        act = menu.addAction("Arithmetic result", lambda: self._set(st.arithmetic_z(), "a \u2212 b + c"))
        act.setEnabled(arith is not None)
        menu.addAction("Training shape\u2026", self._from_bank)
        hist = menu.addMenu("History")
        hist.setEnabled(bool(st.history))
        for lat in st.history[:20]:
            hist.addAction(lat.label, lambda lat=lat: self._set(lat.z, lat.label))

    def _from_bank(self) -> None:
        pick_training_shape(self.ctx, self, f"Training shape for {self.title}",
                            lambda z, label: self._set(z, label))
