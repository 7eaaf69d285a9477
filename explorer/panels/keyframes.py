"""Keyframes of a path through 3 or more shapes: a strip under the filmstrip shows A, the keyframes between
and B. Add the current shape as a keyframe, right-click a keyframe to replace, move or remove it, or
right-click a filmstrip frame to put a keyframe there. The path, its filmstrip, play and export follow the
keyframes through :meth:`SessionState.path_z`."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtGui import QKeySequence
from PyQt6.QtWidgets import QLabel, QMenu, QPushButton, QSizePolicy, QWidget

from explorer.context import AppContext, ShapeChannel
from explorer.widgets import Thumb, describe, hbox

SIZE = 56


def insert_position(n_keys: int, t: float) -> int:
    """Where a keyframe added at ``t`` goes among ``n_keys`` keyframes between A and B: after every key
    before t (1 .. n_keys + 1)."""
    return int(min(n_keys + 1, max(1, np.floor(t * (n_keys + 1)) + 1)))


class KeyframeStrip(QWidget):
    """A, the keyframes between and B, as small thumbnails generated in one batch."""

    def __init__(self, ctx: AppContext, frames: Sequence[QWidget] = (), frame_t: Callable[[int], float] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.thumbs: list[Thumb] = []
        self.add = describe(QPushButton("+ Current shape"), "Add keyframe",
                            "Add the current shape to the path as a keyframe at the current t (Ctrl+K)")
        self.add.setShortcut(QKeySequence("Ctrl+K"))
        self.add.clicked.connect(self.add_current)
        self.clear = describe(QPushButton("Clear"), "Clear keyframes", "Remove every keyframe between A and B")
        self.clear.clicked.connect(ctx.state.clear_keys)
        self.caption = QLabel("Keyframes:")
        self._row = hbox(spacing=2)
        self.setLayout(hbox(self.caption, self._row, 1, self.add, self.clear, margins=0))
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)  # the 3D views take the height
        self.channel = ShapeChannel(ctx, "keyframes", self, self.keys_z, frozenset({"slot:A", "slot:B", "keys"}),
                                    display="none", link_camera=False)
        for i, frame in enumerate(frames):
            frame.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            frame.customContextMenuRequested.connect(
                lambda pos, i=i, frame=frame: self.frame_menu(frame_t(i) if frame_t else 0.0).popup(frame.mapToGlobal(pos)))
        ctx.state.changed.connect(self._on_changed)
        self._rebuild()

    # -- state -> widgets ----------------------------------------------------------------------------------
    def keys_z(self) -> np.ndarray | None:
        keys = [self.ctx.state.slot("A"), *self.ctx.state.keys, self.ctx.state.slot("B")]
        return None if any(k is None for k in keys) else np.stack([k.z for k in keys])  # type: ignore[union-attr]

    def _on_changed(self, fields: frozenset[str]) -> None:
        if "keys" in fields:
            self._rebuild()

    def _rebuild(self) -> None:
        n = len(self.ctx.state.keys)
        while len(self.thumbs) < n + 2:
            th = Thumb("", SIZE, fit=0.62, largest=True)
            i = len(self.thumbs)
            th.clicked.connect(lambda _c=False, i=i: self._jump(i))
            th.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            th.customContextMenuRequested.connect(lambda pos, i=i: self._key_menu(i, pos))
            self._row.addWidget(th)
            self.thumbs.append(th)
        for i, th in enumerate(self.thumbs):
            th.setVisible(i < n + 2)
            text = "A" if i == 0 else ("B" if i == n + 1 else str(i))
            th.setText(text)
            where = "start" if i == 0 else ("end" if i == n + 1 else f"keyframe {i} of {n}")
            describe(th, f"Path {where}: {text}", f"Go to the path's {where} (right click: edit keyframes)")
        self.clear.setEnabled(n > 0)
        self.caption.setText("Keyframes:" if n else "Keyframes (none between A and B):")
        # never shorter than a thumbnail with its caption (SIZE px and a text line), shapes generated or not
        self.setMinimumHeight(max(th.sizeHint().height() for th in self.thumbs))

    def set_result(self, result: Any) -> None:
        """The channel's batch: one grid per key, A first."""
        for th, vox in zip(self.thumbs, result.voxels):
            th.set_voxels(vox, result.level)

    def set_status(self, _text: str) -> None:
        pass

    # -- widgets -> state ----------------------------------------------------------------------------------
    def _jump(self, i: int) -> None:
        st = self.ctx.state
        if i <= len(st.keys) + 1:
            st.break_merge()
            st.set_t(st.key_t(i))

    def add_current(self, t: float | None = None) -> None:
        """The current shape as a keyframe at ``t`` (default: the current t)."""
        st = self.ctx.state
        z = st.current_z()
        if z is None:
            self.ctx.notifier.warning("set both endpoints A and B first")
            return
        st.insert_key(insert_position(len(st.keys), st.t if t is None else t), z, st.current_label())

    def frame_menu(self, t: float) -> QMenu:
        """What a filmstrip frame at ``t`` offers: the current shape or the frame itself as a keyframe there,
        or removing the keyframe it shows."""
        st = self.ctx.state
        menu = QMenu(self)
        menu.addAction("Insert the current shape as a keyframe here", lambda: self.add_current(t))
        z = st.path_z(t)
        if z is not None:
            menu.addAction("Make this frame a keyframe",
                           lambda: st.insert_key(insert_position(len(st.keys), t), z, f"path at t = {t:.2f}"))
        n = len(st.keys)
        near = [i for i in range(1, n + 1) if abs(st.key_t(i) - t) < 0.5 / (n + 1)]
        for i in near:
            menu.addAction(f"Remove keyframe {i} ({st.keys[i - 1].label})", lambda i=i: st.remove_key(i))
        return menu

    def key_menu(self, i: int) -> QMenu | None:
        """What keyframe ``i`` (between A and B) offers: replace it by the current shape, move it, remove it."""
        st = self.ctx.state
        n = len(st.keys)
        if not 1 <= i <= n:
            return None
        menu = QMenu(self)
        z = st.current_z()
        if z is not None:
            menu.addAction("Replace with the current shape", lambda: st.replace_key(i, z, st.current_label()))
        if i > 1:
            menu.addAction("Move earlier", lambda: st.move_key(i, i - 1))
        if i < n:
            menu.addAction("Move later", lambda: st.move_key(i, i + 1))
        menu.addAction("Remove", lambda: st.remove_key(i))
        return menu

    def _key_menu(self, i: int, pos: QPoint) -> None:
        menu = self.key_menu(i)
        if menu is not None:
            menu.popup(self.thumbs[i].mapToGlobal(pos))
