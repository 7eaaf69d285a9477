"""Pick a training shape from the feature bank (paged thumbnails, a class filter); it is projected into z."""

from __future__ import annotations

from typing import Callable

import numpy as np
from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QPushButton, QWidget,
)

from explorer.context import AppContext
from explorer.thumbs import voxel_pixmap
from explorer.widgets import describe, hbox, vbox

PAGE = 24


class BankPicker(QDialog):
    """A page of bank thumbnails at a time (drawing all few thousand would take seconds)."""

    def __init__(self, bank: object, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.bank = bank
        self.page = 0
        self.classes = describe(QComboBox(), "Class filter", "Show only training shapes of this class")
        self.classes.addItem("All classes", -1)
        for i, name in enumerate(bank.class_names_):  # type: ignore[attr-defined]
            self.classes.addItem(str(name), i)
        self.classes.currentIndexChanged.connect(self._refilter)
        self.list = describe(QListWidget(), "Training shapes", "Double-click a shape to use it")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(88, 88))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMinimumSize(640, 420)
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        self.prev = describe(QPushButton("\u25c0 Previous"), "Previous page")
        self.next = describe(QPushButton("Next \u25b6"), "Next page")
        self.prev.clicked.connect(lambda: self._go(-1))
        self.next.clicked.connect(lambda: self._go(+1))
        self.where = QLabel()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        for b in buttons.buttons():
            describe(b, b.text().replace("&", ""))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.setLayout(vbox(hbox(QLabel("Class:"), self.classes, 1, self.prev, self.where, self.next), self.list,
                            buttons, margins=10))
        self._rows = np.arange(len(bank))  # type: ignore[arg-type]
        self._show_page()

    def _refilter(self) -> None:
        cls = self.classes.currentData()
        labels = self.bank.labels_  # type: ignore[attr-defined]
        self._rows = np.arange(len(labels)) if cls == -1 else np.flatnonzero(labels == cls)
        self.page = 0
        self._show_page()

    def _go(self, step: int) -> None:
        pages = max(1, -(-len(self._rows) // PAGE))
        self.page = (self.page + step) % pages
        self._show_page()

    def _show_page(self) -> None:
        self.list.clear()
        rows = self._rows[self.page * PAGE:(self.page + 1) * PAGE]
        for i in rows:
            item = QListWidgetItem(QIcon(voxel_pixmap(self.bank.thumbnail(int(i)), 0.5, 88)),  # type: ignore[attr-defined]
                                   f"{self.bank.label_name(int(i))} #{int(i)}")  # type: ignore[attr-defined]
            item.setData(Qt.ItemDataRole.UserRole, int(i))
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        pages = max(1, -(-len(self._rows) // PAGE))
        self.where.setText(f"page {self.page + 1} / {pages}")

    def selected(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))


def pick_training_shape(ctx: AppContext, parent: QWidget, title: str,
                        apply: Callable[[np.ndarray, str], None]) -> None:
    """Ask for a bank shape, then project it into z on a worker and ``apply(z, label)``."""
    bank = ctx.state.bank
    if bank is None:
        ctx.notifier.warning("Training shapes come from a feature bank: open one with File > Open bank\u2026")
        return
    dlg = BankPicker(bank, title, parent)
    if dlg.exec() != QDialog.DialogCode.Accepted or dlg.selected() is None:
        return
    i = int(dlg.selected())  # type: ignore[arg-type]
    project_bank_shape(ctx, i, apply)


def project_bank_shape(ctx: AppContext, i: int, apply: Callable[[np.ndarray, str], None]) -> None:
    bank = ctx.state.bank
    ctx.project(bank.thumbnail(i).astype(np.float32), f"{bank.label_name(i)} #{i}", apply)
