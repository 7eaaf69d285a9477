"""Nearest training shapes of the shape on screen in discriminator-feature space (Wu et al. 2016, sec. 4.4:
the generator does not memorise), with a novelty score; click one to load it (projected into z).

The panel follows the workspace: the current shape on Interpolate, the result on Arithmetic, the
reconstruction on Reconstruct, the chosen preview sample of the training run on Training (the window calls
:meth:`RetrievalPanel.set_source` when the tab changes)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import (
    QComboBox, QLabel, QListWidget, QListWidgetItem, QPushButton, QSpinBox, QStackedWidget, QWidget,
)

from explorer.context import AppContext, ShapeChannel
from explorer.panels.bank_picker import project_bank_shape
from explorer.state import ARITH_FIELDS, LOOK_FIELDS, PATH_FIELDS
from explorer.thumbs import voxel_pixmap
from explorer.widgets import describe, hbox, vbox

ICON_CACHE = 256  # thumbnails kept (88x88 each): neighbours recur along a path, a whole bank need not stay
# workspace -> (what the neighbours are of, the state fields that change it, what to do when there is none)
SOURCES: dict[str, tuple[str, frozenset[str], str]] = {
    "interpolate": ("the current shape", PATH_FIELDS, "Fill endpoints A and B to see the current shape's neighbours."),
    "arithmetic": ("the arithmetic result", ARITH_FIELDS, "Fill a, b and c to see the result's neighbours."),
    "reconstruct": ("the reconstruction", frozenset({"reconstruction"}),
                    "Reconstruct an image to see its shape's neighbours."),
    "training": ("the chosen preview sample of the training run", frozenset(),
                 "No preview samples yet: start or watch a run; click a sample to see its neighbours."),
}
TRAINING_TARGET = "retrieval:training"  # a grid of the run, not of the loaded model: queried without z
KIND_TEXT = {
    "last": "D's last conv layer (the paper's retrieval features)",
    "paper": "D's pooled conv layers (the paper's classification features)",
}


def nearest_job(bank: Any, kind: str, k: int, metric: str = "cosine") -> Callable[[Any, np.ndarray], Any]:
    """A job for GenerationService: the k nearest bank rows of a generated grid (runs on the worker)."""
    def job(model: Any, voxels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = bank.query(None, voxels=voxels[None], model=model, k=min(k, len(bank)), kind=kind,
                               metric=metric)
        return dist[0], idx[0]
    return job


class RetrievalPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.stack = QStackedWidget()
        # page 0: no bank
        self.no_bank = QLabel(
            "<b>No feature bank loaded.</b><br>A bank holds discriminator features of the training shapes; "
            "with one, this panel lists the training shapes nearest to the current shape.<br>"
            "Build one with <code>gan3d features</code>, then open it.")
        self.no_bank.setWordWrap(True)
        self.open_bank = describe(QPushButton("Open bank\u2026"), "Open feature bank",
                                  "Open a feature bank file (.h5) built by gan3d features")
        self.open_bank.clicked.connect(self._open_bank)
        page0 = QWidget()
        page0.setLayout(vbox(self.no_bank, hbox(self.open_bank, 1), 1, margins=8))
        # page 1: results
        self.kind = describe(QComboBox(), "Feature kind", "Which discriminator features compare shapes")
        for key, text in KIND_TEXT.items():
            self.kind.addItem(text, key)
        self.k = describe(QSpinBox(), "Number of neighbours", "How many nearest training shapes to list")
        self.k.setRange(1, 20)
        self.k.setValue(5)
        self.source = "interpolate"
        self.sample_of: Callable[[], tuple[np.ndarray, str] | None] = lambda: None  # the Training tab's choice
        self._training_label = ""
        self.heading = QLabel("")
        self.heading.setWordWrap(True)
        self.heading.setAccessibleName("Whose neighbours these are")
        self.novelty = QLabel("")
        self.novelty.setWordWrap(True)
        self.list = describe(QListWidget(), "Nearest training shapes",
                             "Click a training shape to load it (projected into z) as the current shape")
        self.list.setIconSize(QSize(88, 88))
        self.list.setSpacing(2)
        self.list.itemActivated.connect(self._load)
        self.list.itemClicked.connect(self._load)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #a33;")
        page1 = QWidget()
        page1.setLayout(vbox(self.kind, hbox(QLabel("Neighbours:"), self.k, 1), self.heading, self.novelty, self.list,
                             self.status, margins=4))
        self.stack.addWidget(page0)
        self.stack.addWidget(page1)
        self.setLayout(vbox(self.stack))
        self.result: Any = None
        self._loading: int | None = None
        self._icons: dict[int, QIcon] = {}  # thumbnails of this bank's shapes: neighbours recur along a path
        # A search runs D on the shape: following every shape of a slider drag took a third of its CPU (32 ->
        # 24 shapes/s drawn), so the neighbours follow a drag about three times a second.
        self.channel = ShapeChannel(ctx, "retrieval", self, self._source_z, PATH_FIELDS, display="none",
                                    link_camera=False, job_of=self._job, min_interval_ms=300)
        ctx.service.subscribe(TRAINING_TARGET, self._training_result)
        self.kind.currentIndexChanged.connect(lambda _i: self.channel.refresh())
        self.k.valueChanged.connect(lambda _v: self.channel.refresh())
        ctx.state.bankChanged.connect(self._bank_changed)
        self._show_heading()
        self._bank_changed(ctx.state.bank)

    # -- which shape ---------------------------------------------------------------------------------------
    def set_source(self, source: str) -> None:
        """Follow the shape of workspace ``source`` (a key of SOURCES): its neighbours replace the list."""
        if source not in SOURCES or source == self.source:
            return
        self.source = source
        self.channel.fields = SOURCES[source][1] | LOOK_FIELDS
        self.ctx.service.cancel(TRAINING_TARGET)
        self._show_heading()
        self.channel.refresh()  # a z-less source (training) arrives in set_status("empty") below

    def _source_z(self) -> np.ndarray | None:
        st = self.ctx.state
        if self.source == "arithmetic":
            return st.arithmetic_z()
        if self.source == "reconstruct":
            return None if st.reconstruction is None else st.reconstruction.z
        if self.source == "training":
            return None
        return st.current_z()

    def _show_heading(self) -> None:
        self.heading.setText(f"Nearest to <b>{SOURCES[self.source][0]}</b>")

    def refresh_training(self) -> None:
        """The Training tab's chosen sample changed (a click, new samples): search again if it is followed."""
        if self.source == "training":
            self.channel.refresh()

    def _query_training(self) -> None:
        bank, sample = self.ctx.state.bank, self.sample_of()
        if bank is None or sample is None or not self.isVisible():
            self.ctx.service.cancel(TRAINING_TARGET)
            self._clear(SOURCES["training"][2] if bank is not None else "")
            return
        voxels, label = sample
        self._training_label = label
        self.set_status("searching\u2026")
        self.ctx.service.request(TRAINING_TARGET, np.zeros(0, np.float32), display="none", voxels=voxels,
                                 job=nearest_job(bank, self.kind.currentData(), self.k.value()))

    def _training_result(self, result: Any) -> None:
        if self.source == "training":
            self.set_result(result)

    def _clear(self, note: str) -> None:
        self.result = None
        self.list.clear()
        self.novelty.setText(note)
        self.status.setVisible(False)

    def _job(self) -> Any:
        bank = self.ctx.state.bank
        if bank is None:
            return None
        self.set_status("searching\u2026")
        return nearest_job(bank, self.kind.currentData(), self.k.value())

    def _bank_changed(self, bank: Any) -> None:
        self._icons.clear()
        self.stack.setCurrentIndex(0 if bank is None else 1)
        if bank is not None:
            have = [k for k in KIND_TEXT if k in getattr(bank, "features_", KIND_TEXT)]
            for i in range(self.kind.count()):
                self.kind.model().item(i).setEnabled(self.kind.itemData(i) in have)  # type: ignore[union-attr]
            self.channel.refresh()

    # ShapeChannel view interface
    def set_status(self, text: str) -> None:
        if text == "empty":  # the followed workspace shows no shape (of this model): no stale list
            if self.source == "training":
                self._query_training()
            else:
                self._clear(SOURCES[self.source][2])
            return
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def set_result(self, result: Any) -> None:
        bank = self.ctx.state.bank
        if bank is None or result.extra is None:
            return
        self.result = result
        dist, idx = result.extra
        self.list.clear()
        for d, i in zip(dist, idx):
            if int(i) not in self._icons:
                if len(self._icons) >= ICON_CACHE:  # the oldest goes
                    del self._icons[next(iter(self._icons))]
                self._icons[int(i)] = QIcon(voxel_pixmap(bank.thumbnail(int(i)), 0.5, 88))
            text = f"{bank.label_name(int(i))}  #{int(i)}\ndistance {float(d):.3f}"
            item = QListWidgetItem(self._icons[int(i)], text)
            item.setData(Qt.ItemDataRole.UserRole, int(i))
            item.setToolTip(f"Training shape {int(i)} ({bank.label_name(int(i))}); click to load it")
            self.list.addItem(item)
        kind = self.kind.currentData()
        of = f" of {self._training_label}" if result.target == TRAINING_TARGET else ""
        self.novelty.setText(
            f"<b>Novelty{of} {float(dist[0]):.3f}</b> (cosine distance to the nearest training shape, {kind!r} "
            f"features; 0 would be a copy)")
        self.set_status("")

    def _load(self, item: QListWidgetItem) -> None:
        i = int(item.data(Qt.ItemDataRole.UserRole))
        if self._loading == i and self.ctx.jobs.busy:
            return  # a click and an activation of the same item: one projection
        self._loading = i
        project_bank_shape(self.ctx, i, lambda z, label: self.ctx.state.set_current(z, label))

    def _open_bank(self) -> None:
        act = self.ctx.actions.get("open_bank")
        if act is not None:
            act.trigger()
