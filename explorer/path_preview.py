"""A slider path computed ahead, so dragging the slider costs no generation and no marching cubes.

When the endpoints (or the mode, iso level, display or model) change, :class:`PathPreview` asks the
generation service for the shapes at ``steps`` evenly spaced positions of t, a few per batched forward pass,
as *background* requests: they run when no view waits, coarse positions first, and the service meshes each
one into its cache (the model caches the grids). While the slider is dragged or the path plays, the centre
view asks for the nearest of these positions (:meth:`PathPreview.z_near`), a cached shape; on release it
asks for the exact t again (the refinement).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject
from PyQt6.QtWidgets import QWidget

from explorer.context import AppContext
from explorer.state import LOOK_FIELDS
from explorer.visibility import Visibility
from explorer.workers import ShapeResult

PATH_STEPS = 101  # t in steps of 0.01, the play step: a drag shows a new shape every 0.01
CHUNK = 8  # shapes per forward pass: batched, yet short enough not to hold up a click for long


def coarse_to_fine(n: int) -> np.ndarray:
    """Indices 0..n-1: both ends, then every 16th, every 8th, ... (a drag early on finds a shape near by)."""
    order: list[int] = []
    for stride in (max(n - 1, 1), 16, 8, 4, 2, 1):
        order += [i for i in range(0, n, stride) if i not in order]
    return np.array(order)


class PathPreview(QObject):
    """Precomputes the path ``path_z(t)`` of ``panel`` at ``steps`` positions while ``panel`` is on screen.

    ``fields`` are the state fields the path depends on (besides level, display and model).
    """

    TARGET = "path-preview"

    def __init__(self, ctx: AppContext, panel: QWidget, path_z: Callable[[np.ndarray], np.ndarray | None],
                 fields: frozenset[str], steps: int = PATH_STEPS, chunk: int = CHUNK) -> None:
        super().__init__(panel)
        self.ctx, self.panel, self.path_z = ctx, panel, path_z
        self.fields = frozenset(fields) | LOOK_FIELDS
        self.t = np.linspace(0.0, 1.0, steps)
        self.chunk = chunk
        self.zs: np.ndarray | None = None  # (steps, z_dim) float32, the path's positions
        self._order = coarse_to_fine(steps)
        self._next = 0  # into _order: the first position not yet asked for
        self.visibility = Visibility(panel, self.restart)
        ctx.service.subscribe(self.TARGET, self._chunk_done)
        ctx.state.changed.connect(lambda fields: self.restart() if fields & self.fields else None)
        ctx.state.modelChanged.connect(lambda _m: self.restart())
        self.restart()

    @property
    def done(self) -> bool:
        """Every position was generated and meshed (for tests and the benchmark)."""
        return self.zs is not None and self._next >= len(self._order)

    def z_near(self, t: float) -> np.ndarray | None:
        """z of the precomputed position nearest to ``t`` (cached once its batch ran), or None without a path."""
        if self.zs is None:
            return None
        return self.zs[int(round(float(np.clip(t, 0.0, 1.0)) * (len(self.t) - 1)))]

    def restart(self) -> None:
        """A new path: forget the old positions and ask for the new ones (once the panel is on screen)."""
        if not self.visibility.due():
            return
        zs = self.path_z(self.t)
        self.zs = None if zs is None else np.ascontiguousarray(zs, np.float32)
        self._next = 0
        if self.zs is None:
            self.ctx.service.cancel(self.TARGET)
        else:
            self._send()

    def _send(self) -> None:
        if self.zs is None or self._next >= len(self._order):
            return
        idx = self._order[self._next:self._next + self.chunk]
        st = self.ctx.state
        self.ctx.service.request(self.TARGET, self.zs[idx], level=st.level, display=st.display, background=True)

    def _chunk_done(self, _result: ShapeResult) -> None:
        self._next += self.chunk
        self._send()

    def detach(self, *_args: Any) -> None:
        self.ctx.service.unsubscribe(self.TARGET)
        self.ctx.service.cancel(self.TARGET)
