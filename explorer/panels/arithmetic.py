"""Shape arithmetic w_a a - w_b b + w_c c (Wu et al. 2016, fig. 7): operands as thumbnails, the result in a
3D view, and the result's nearest training shape when a feature bank is open."""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QCheckBox, QFrame, QLabel, QPushButton, QWidget

from explorer.context import AppContext, ShapeChannel
from explorer.panels.retrieval import nearest_job
from explorer.panels.slot import SlotEditor
from explorer.state import ARITH_FIELDS, OPERANDS
from explorer.viewport import make_view
from explorer.widgets import Thumb, describe, hbox, vbox

SIGNS = {"a": "", "b": "\u2212", "c": "+"}


class ArithmeticPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        st = ctx.state
        self.editors: dict[str, SlotEditor] = {}
        self.thumbs: dict[str, Thumb] = {}
        self.channels: list[ShapeChannel] = []
        rows = []
        for i, name in enumerate(OPERANDS):
            ed = SlotEditor(ctx, name, name, weight_index=i)
            th = Thumb(f"Operand {name}", 120, largest=True)
            self.editors[name], self.thumbs[name] = ed, th
            self.channels.append(ShapeChannel(ctx, f"operand:{name}", th,
                                              lambda n=name: _z(st.slot(n)), frozenset({f"slot:{name}"}),
                                              display="none", link_camera=False))
            sign = QLabel(f"<span style='font-size: 22pt'>{SIGNS[name]}</span>")
            sign.setFixedWidth(22)
            rows.append(hbox(sign, th, ed, 1))
        self.result_view = make_view("Result", self)
        self.channels.append(ShapeChannel(ctx, "arithmetic", self.result_view, st.arithmetic_z, ARITH_FIELDS,
                                          caption=self._caption))
        # the result's nearest training shape
        self.nearest = Thumb("Nearest training shape to the result", 120)
        self.nearest_text = QLabel("Open a feature bank to see the result's nearest training shape.")
        self.nearest_text.setWordWrap(True)
        self.nearest_text.setMinimumWidth(150)
        self.nearest_text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.nn_channel = ShapeChannel(ctx, "arithmetic:nearest", self, st.arithmetic_z, ARITH_FIELDS,
                                       display="none", link_camera=False, job_of=self._job)
        st.bankChanged.connect(self._bank_changed)
        self.rescale = describe(
            QCheckBox("Rescale to the prior's norm"), "Rescale the result to the prior's typical norm",
            "On: the result is brought back to the length of a typical sample from the prior (\u221az_dim for "
            "N(0, 1)), keeping its direction; the raw sum of three samples is about 1.7 times as long and tends to "
            "come out as a block. Off: the raw sum")
        self.rescale.setChecked(st.rescale)
        self.rescale.toggled.connect(st.set_rescale)
        st.changed.connect(self._sync_rescale)
        self.make_current = describe(QPushButton("Show as current"), "Show result as current shape",
                                     "Put the result in the interpolation view's centre (and the retrieval panel)")
        self.to_a = describe(QPushButton("Send to A"), "Send result to endpoint A")
        self.to_b = describe(QPushButton("Send to B"), "Send result to endpoint B")
        self.make_current.clicked.connect(lambda: self._send(None))
        self.to_a.clicked.connect(lambda: self._send("A"))
        self.to_b.clicked.connect(lambda: self._send("B"))
        line = QFrame()
        line.setFrameShape(QFrame.Shape.VLine)
        left = QWidget()
        left.setLayout(vbox(QLabel("<b>Operands</b> (each: seed, random, or From\u2026)"), *rows, self.rescale, 1))
        left.setMaximumWidth(520)
        actions = hbox(self.make_current, self.to_a, self.to_b, 1)
        right = vbox(self.result_view, actions, hbox(self.nearest, vbox(self.nearest_text, 1), 1))
        right.setStretch(0, 1)  # the result view takes the height
        self.setLayout(hbox(left, line, right, margins=6))

    def _sync_rescale(self, fields: frozenset[str]) -> None:
        if "rescale" in fields and self.rescale.isChecked() != self.ctx.state.rescale:
            self.rescale.blockSignals(True)  # undo / a session: show the state, push no new command
            self.rescale.setChecked(self.ctx.state.rescale)
            self.rescale.blockSignals(False)

    def _bank_changed(self, _bank: Any) -> None:
        self.nn_channel.refresh()

    def _caption(self) -> str:
        w = self.ctx.state.weights
        how = ", rescaled" if self.ctx.state.rescale else ", raw sum"
        return f"Result = {w[0]:g}\u00b7a \u2212 {w[1]:g}\u00b7b + {w[2]:g}\u00b7c{how}"

    def _job(self) -> Any:
        bank = self.ctx.state.bank
        if bank is None:
            self.nearest.set_voxels(None)
            self.nearest_text.setText("Open a feature bank to see the result's nearest training shape.")
            return None
        return nearest_job(bank, "last", 1)

    # ShapeChannel view interface (nearest-neighbour channel)
    def set_status(self, text: str) -> None:
        if text and text != "empty":
            self.nearest_text.setText(text)

    def set_result(self, result: Any) -> None:
        bank = self.ctx.state.bank
        if bank is None or result.extra is None:
            return
        dist, idx = result.extra
        i = int(idx[0])
        self.nearest.set_voxels(bank.thumbnail(i))
        self.nearest_text.setText(f"<b>Nearest training shape</b><br>{bank.label_name(i)} #{i}<br>"
                                  f"distance {float(dist[0]):.3f} (D's last conv layer, cosine)")

    def _send(self, slot: str | None) -> None:
        z = self.ctx.state.arithmetic_z()
        if z is None:
            self.ctx.notifier.warning("fill a, b and c first")
            return
        if slot is None:
            self.ctx.state.set_current(z, "a \u2212 b + c")
        else:
            self.ctx.state.set_slot(slot, z, "a \u2212 b + c")

    def close_views(self) -> None:
        self.result_view.close_view()


def _z(lat: Any) -> Any:
    return None if lat is None else lat.z
