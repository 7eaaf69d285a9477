"""Interpolation: endpoints A and B, a fine slider t that updates the centre view live, lerp/slerp, a
filmstrip of the path (generated in one batch), play/loop, and export of the sequence. While the slider is
dragged or the path plays, the centre view shows the nearest precomputed position (explorer.path_preview)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QLabel, QMenu, QPushButton, QSlider, QSplitter,
    QToolButton, QWidget,
)
from superqt.utils import QSignalThrottler

from explorer.context import AppContext, ShapeChannel
from explorer.panels.export import SequenceExport
from explorer.panels.keyframes import KeyframeStrip
from explorer.panels.slot import SlotEditor
from explorer.path_preview import PathPreview
from explorer.state import PATH_FIELDS
from explorer.viewport import make_view
from explorer.widgets import Thumb, describe, hbox, vbox

STEPS = 1000  # slider resolution: t in steps of 0.001
FRAMES = 7


class InterpolatePanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        st = ctx.state
        self.view_a = make_view("A", self)
        self.view_cur = make_view("Current shape", self)
        self.view_b = make_view("B", self)
        self.views = [self.view_a, self.view_cur, self.view_b]
        self.channels = [
            ShapeChannel(ctx, "A", self.view_a, lambda: _z(st.slot("A")), frozenset({"slot:A"}),
                         caption=lambda: "A"),
            ShapeChannel(ctx, "current", self.view_cur, self._current_z, PATH_FIELDS,
                         caption=lambda: f"Current: {st.current_label()}"),
            ShapeChannel(ctx, "B", self.view_b, lambda: _z(st.slot("B")), frozenset({"slot:B"}),
                         caption=lambda: "B"),
        ]
        self.edit_a = SlotEditor(ctx, "A", "A")
        self.edit_b = SlotEditor(ctx, "B", "B")

        # t slider, its spin box, mode, play
        self.slider = describe(QSlider(Qt.Orientation.Horizontal), "Interpolation position t",
                               "Position between A (0) and B (1); arrow keys step 0.001, Page Up/Down 0.05")
        self.slider.setRange(0, STEPS)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(50)
        self.slider.setMinimumWidth(240)
        self.spin = describe(QDoubleSpinBox(), "t value", "Exact position t between A and B")
        self.spin.setRange(0.0, 1.0)
        self.spin.setDecimals(3)
        self.spin.setSingleStep(0.001)
        self.mode = describe(QComboBox(), "Interpolation mode",
                             "slerp keeps the norm of z (crisper middle shapes); lerp is a straight line; spline "
                             "is one smooth curve through every keyframe")
        self.mode.addItems(["slerp", "lerp", "spline"])
        self.play = describe(QPushButton("\u25b6 Play"), "Play animation", "Animate t from A to B (Ctrl+P)")
        self.play.setCheckable(True)
        self.loop = describe(QCheckBox("Loop"), "Loop animation", "Bounce back and forth instead of stopping at B")
        self.loop.setChecked(True)
        self.export = describe(QToolButton(), "Export sequence",
                               "Export the A \u2192 B sequence as a GIF, an MP4 or one mesh per frame")
        self.export.setText("Export\u2026")
        self.export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export)
        menu.addAction("Animated GIF\u2026", lambda: self.export_sequence(".gif"))
        menu.addAction("MP4 video\u2026", lambda: self.export_sequence(".mp4"))
        menu.addAction("Meshes (one STL per frame)\u2026", lambda: self.export_sequence(""))
        self.export.setMenu(menu)

        self.throttler = QSignalThrottler(parent=self)
        self.throttler.setTimeout(16)  # at most ~60 state updates a second while dragging
        self.slider.valueChanged.connect(self.throttler.throttle)
        self.throttler.triggered.connect(lambda: st.set_t(self.slider.value() / STEPS))
        self._dragging = False
        self.live_preview = True  # False: every drag position is generated exactly (the benchmark's baseline)
        self.preview = PathPreview(ctx, self, st.path_z, PATH_FIELDS - {"t", "current"})
        self.slider.sliderPressed.connect(self._pressed)
        self.slider.sliderReleased.connect(self._released)
        self.spin.valueChanged.connect(lambda v: st.set_t(v))
        self.mode.currentTextChanged.connect(st.set_mode)
        self.play.toggled.connect(self._toggle_play)
        self._timer = QTimer(self)
        self._timer.setInterval(40)
        self._timer.timeout.connect(self._tick)
        self._direction = 1

        # filmstrip: FRAMES thumbnails of the path, generated as one batch
        self._highlight = -2
        self.frames = [Thumb(f"Frame {i + 1} of the path", 92, fit=0.62, largest=True) for i in range(FRAMES)]
        for i, th in enumerate(self.frames):
            th.clicked.connect(lambda _c=False, i=i: self._jump(i))
        self.film = ShapeChannel(ctx, "filmstrip", self, self.path_zs, frozenset({"slot:A", "slot:B", "keys", "mode"}),
                                 display="none", link_camera=False)

        top = QSplitter(Qt.Orientation.Horizontal)
        for w, stretch in ((vbox(self.view_a, self.edit_a), 1), (vbox(self.view_cur), 2),
                           (vbox(self.view_b, self.edit_b), 1)):
            box = QWidget()
            box.setLayout(w)
            top.addWidget(box)
        top.setSizes([300, 600, 300])
        for i in range(3):
            top.setStretchFactor(i, (1, 2, 1)[i])
        controls = hbox(QLabel("A"), self.slider, QLabel("B"), QLabel("t"), self.spin, self.mode, self.play,
                        self.loop, self.export, spacing=8)
        film = hbox(1, *self.frames, 1, spacing=2)
        self.keyframes = KeyframeStrip(ctx, self.frames, lambda i: i / (FRAMES - 1))  # keys of a multi-shape path
        self.setLayout(vbox(top, controls, film, self.keyframes, margins=6))
        top.setSizes([300, 600, 300])
        st.changed.connect(self._on_changed)
        self._sync()

    # -- state -> widgets ----------------------------------------------------------------------------------
    def path_zs(self) -> np.ndarray | None:
        return self.ctx.state.path_z(np.linspace(0.0, 1.0, FRAMES))

    def _current_z(self) -> np.ndarray | None:
        st = self.ctx.state
        if self.live_preview and (self._dragging or self.play.isChecked()) and st.current is None:
            return self.preview.z_near(st.t)  # cached: no generation, no marching cubes
        return st.current_z()

    def _on_changed(self, fields: frozenset[str]) -> None:
        if fields & {"t", "mode", "current"}:
            self._sync()

    def _sync(self) -> None:
        st = self.ctx.state
        for w, v in ((self.slider, round(st.t * STEPS)), (self.spin, st.t)):
            if w.value() != v and not (w is self.slider and self.slider.isSliderDown()):
                w.blockSignals(True)
                w.setValue(v)
                w.blockSignals(False)
        if self.mode.currentText() != st.mode:
            self.mode.blockSignals(True)
            self.mode.setCurrentText(st.mode)
            self.mode.blockSignals(False)
        near = int(round(st.t * (FRAMES - 1))) if st.current is None else -1
        if near != self._highlight:  # restyling is costly: only the two frames whose highlight changes
            for i in {self._highlight, near} & set(range(FRAMES)):
                self.frames[i].setStyleSheet(
                    "QToolButton { border: 2px solid #3b82f6; border-radius: 4px; }" if i == near else "")
            self._highlight = near

    def set_result(self, result: object) -> None:
        """The filmstrip channel's result: (FRAMES, R, R, R) voxels in one batch."""
        for th, vox in zip(self.frames, result.voxels):  # type: ignore[attr-defined]
            th.set_voxels(vox, result.level)  # type: ignore[attr-defined]
        for i, th in enumerate(self.frames):
            th.setText(f"t = {i / (FRAMES - 1):.2f}")

    def set_status(self, _text: str) -> None:
        pass

    # -- widgets -> state ----------------------------------------------------------------------------------
    def _pressed(self) -> None:
        self._dragging = True
        self.ctx.state.break_merge()

    def _released(self) -> None:
        self._dragging = False
        self.throttler.flush()
        self.ctx.state.remember_current()
        self.channels[1].refresh()  # the exact t instead of the nearest precomputed position

    def _jump(self, i: int) -> None:
        self.ctx.state.break_merge()
        self.ctx.state.set_t(i / (FRAMES - 1))

    def _toggle_play(self, on: bool) -> None:
        self.play.setText("\u23f8 Pause" if on else "\u25b6 Play")
        if on:
            self.ctx.state.break_merge()
            if self.ctx.state.t >= 1.0 and not self.loop.isChecked():
                self.ctx.state.set_t(0.0)
            self._timer.start()
        else:
            self._timer.stop()
            self.channels[1].refresh()

    def _tick(self) -> None:
        st = self.ctx.state
        t = st.t + self._direction * 0.01
        if t > 1.0 or t < 0.0:
            if not self.loop.isChecked():
                st.set_t(1.0)
                self.play.setChecked(False)
                return
            self._direction *= -1
            t = min(1.0, max(0.0, t))
        st.set_t(t)

    def export_sequence(self, suffix: str) -> None:
        if suffix:
            name, _ = QFileDialog.getSaveFileName(self, "Export sequence", f"interpolation{suffix}",
                                                  f"{suffix[1:].upper()} (*{suffix})")
        else:
            name = QFileDialog.getExistingDirectory(self, "Folder for one mesh per frame")
        if name:
            self.start_export(name)

    def start_export(self, path: str, frames: int = 48) -> SequenceExport:
        job = SequenceExport(self.ctx, Path(path), frames=frames)
        job.start()
        return job

    def close_views(self) -> None:
        self._timer.stop()
        self.preview.detach()
        for v in self.views:
            v.close_view()


def _z(lat: object) -> np.ndarray | None:
    return None if lat is None else lat.z  # type: ignore[attr-defined]
