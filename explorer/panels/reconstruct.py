"""Single-image 3D reconstruction (3D-VAE-GAN): open or drop images, see each beside the shape its encoded z
generates with how far to trust it (a confidence label, a warning when the picture does not look like furniture),
and send that z to an endpoint or an arithmetic slot. Several photos at once (dropped together, a folder, or
picked together in the file dialog) are reconstructed in turn on a worker, with progress and Cancel, into a list
of the photos with their results (:mod:`explorer.panels.photo_batch`); choosing an entry shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QFileDialog, QLabel, QMenu, QPushButton, QSizePolicy, QSplitter, QToolButton, QWidget

from gan_core.errors import Gan3dError
from gan_core.runtime import bundled_encoder_name, load_encoder_model

from explorer.context import AppContext, ShapeChannel
from explorer.panels.photo_batch import PhotoBatch, PhotoEntry
from explorer.viewport import make_view
from explorer.widgets import describe, hbox, vbox

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")  # what a dropped folder offers


class ReconstructPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        st = ctx.state
        self.setAcceptDrops(True)
        self._fallback_name = bundled_encoder_name(getattr(ctx.state.model, "name", None))
        self._fallbacks: dict[str, Any] = {}  # bundled encoder models by name, loaded on first use (on a worker)
        self._pixmap: tuple[str, QPixmap] | None = None  # the image pane's picture read from disk, by path
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff4d6; padding: 6px; border-radius: 4px;")
        self.notice.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.open = describe(QPushButton("Open images\u2026"), "Open images to reconstruct",
                             "Pick one or several photos or renders of one object each (Ctrl or Shift picks "
                             "several); you can also drop image files or a folder here")
        self.open.clicked.connect(self._choose)
        self.image = QLabel("Drop images here")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 200)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)  # the pixmap follows the pane
        self.image.setStyleSheet("border: 2px dashed #bbb; color: #777; background: #fafafa;")
        self.image.setAccessibleName("Input image")
        self.confidence = QLabel()  # the shown reconstruction's confidence (gan_core.recon_confidence)
        self.confidence.setWordWrap(True)
        self.confidence.setAccessibleName("Reconstruction confidence")
        self.confidence.setVisible(False)
        self._confidences: dict[str, Any] = {}  # image path -> Confidence of its last reconstruction
        self.view = make_view("Reconstruction", self)
        self.channel = ShapeChannel(ctx, "reconstruction", self.view,
                                    lambda: None if st.reconstruction is None else st.reconstruction.z,
                                    frozenset({"reconstruction"}), caption=self._caption)
        self.send = describe(QToolButton(), "Send reconstruction to\u2026",
                             "Use the reconstructed z as endpoint A or B, an arithmetic operand, or the current shape")
        self.send.setText("Send to\u2026")
        self.send.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.send)
        for slot, text in (("A", "Endpoint A"), ("B", "Endpoint B"), ("a", "Operand a"), ("b", "Operand b"),
                           ("c", "Operand c"), (None, "Current shape")):
            menu.addAction(text, lambda s=slot: self.send_to(s))
        self.send.setMenu(menu)
        self.batch = PhotoBatch(ctx, self)
        self.photos, self.progress, self.cancel = self.batch.photos, self.batch.progress, self.batch.cancel
        self.batch.firstResult.connect(lambda e, n: self._set_result(e.z, e.path, e.label, e.conf, n == 1))
        self.batch.resultReady.connect(self._on_result)
        self.batch.chosen.connect(self.show_entry)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.photos)
        split.addWidget(self.image)
        split.addWidget(self.view)
        split.setSizes([290, 330, 530])
        lay = vbox(self.notice, hbox(self.open, self.send, 1), self.batch.row, self.confidence, split, margins=6)
        lay.setStretch(4, 1)
        self.setLayout(lay)
        for a, b in ((self.open, self.send), (self.send, self.cancel), (self.cancel, self.batch.clear),
                     (self.batch.clear, self.photos)):
            self.setTabOrder(a, b)
        st.changed.connect(self._on_changed)
        st.modelChanged.connect(self._model_changed)
        self._model_changed(st.model)
        self._show_image()

    @property
    def has_encoder(self) -> bool:
        m = self.ctx.state.model
        return m is not None and getattr(m, "encoder", None) is not None

    @property
    def can_reconstruct(self) -> bool:
        """The loaded model has an encoder, or a bundled 3D-VAE-GAN can stand in for it."""
        return self.ctx.state.model is not None and (self.has_encoder or self._fallback_name is not None)

    @property
    def running(self) -> bool:
        return self.batch.running

    @property
    def entries(self) -> list[PhotoEntry]:
        return self.batch.entries

    @property
    def results(self) -> list[PhotoEntry]:
        return self.batch.results

    def _model_changed(self, model: Any) -> None:
        self._fallback_name = bundled_encoder_name(getattr(model, "name", None))  # chair model: chair encoder
        if self.batch.entries:  # their z belong to the model before
            self.batch.clear_list()
        if self.has_encoder or self.ctx.state.model is None:
            text = ""
        elif self._fallback_name is not None:
            text = (f"This model has no image encoder: images are encoded by the bundled 3D-VAE-GAN "
                    f"<b>{self._fallback_name}</b>, and its shape is projected into this model's latent space.")
        else:
            text = ("<b>This model has no image encoder</b>, so it cannot reconstruct images. Train a "
                    "3D-VAE-GAN with <code>gan3d train-vae</code> or open a checkpoint that has one.")
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self.open.setEnabled(self.can_reconstruct)
        self._sync_send()

    def _sync_send(self) -> None:
        self.send.setEnabled(self.ctx.state.reconstruction is not None)

    def _on_changed(self, fields: frozenset[str]) -> None:
        if "reconstruction" in fields:
            self._show_image()
            self._sync_send()
            self._show_confidence()
            rec = self.ctx.state.reconstruction  # the list follows what is shown (after an undo, say)
            self.batch.select(None if rec is None else self.batch.entry_of(rec.image, rec.z))

    def _caption(self) -> str:
        rec = self.ctx.state.reconstruction
        return "Reconstruction" if rec is None else f"Reconstruction of {Path(rec.image or '').name}"

    def _show_image(self) -> None:
        rec = self.ctx.state.reconstruction
        if rec is None or not rec.image:
            self.image.setText("Drop images here")
            return
        preview = self.batch.preview_of(rec.image)  # read on the worker
        if preview is not None:
            pix = QPixmap.fromImage(preview)
        elif self._pixmap is not None and self._pixmap[0] == rec.image:
            pix = self._pixmap[1]
        else:  # a reconstruction of no entry (a session opened): read once, not on every resize
            pix = QPixmap(rec.image)
            self._pixmap = (rec.image, pix)
        if pix.isNull():
            self.image.setText(f"(cannot preview {Path(rec.image).name})")
        else:
            self.image.setPixmap(pix.scaled(self.image.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation))

    def _show_confidence(self) -> None:
        """The confidence of the shown reconstruction: a short grey line, or a red warning when it is low."""
        rec = self.ctx.state.reconstruction
        conf = None if rec is None or not rec.image else self._confidences.get(rec.image)
        self.confidence.setVisible(conf is not None)
        if conf is None:
            return
        if conf.low:
            self.confidence.setText("<b>\u26a0 Low confidence"
                                    + ("" if conf.score is None else f" ({conf.score:.2f})") + ":</b> "
                                    + "; ".join(conf.warnings) + ". The shape may be nonsense.")
            self.confidence.setStyleSheet("background: #fde2e1; color: #8a1c17; padding: 6px; border-radius: 4px;")
        else:
            self.confidence.setText(conf.label()[0].upper() + conf.label()[1:])
            self.confidence.setStyleSheet("color: #555; padding: 2px 6px;")
        self.confidence.setToolTip(conf.label())

    def _set_result(self, z: Any, path: str, label: str, conf: Any, announce: bool = True) -> None:
        self._confidences[path] = conf
        self.ctx.state.set_reconstruction(z, path, label)
        self._show_image()  # also when the state saw the same reconstruction again
        self._show_confidence()
        if announce and conf.low:
            self.ctx.notifier.warning(f"{Path(path).name}: {conf.label()}")

    def _on_result(self, e: PhotoEntry) -> None:
        self._confidences[e.path] = e.conf
        rec = self.ctx.state.reconstruction
        if rec is not None and rec.image == e.path:  # the same photo again: its newest confidence
            self._show_confidence()

    def show_entry(self, entry: PhotoEntry | int) -> None:
        """Show a reconstructed photo of the list (or its row) and its shape; other entries show nothing."""
        e = self.batch.entries[entry] if isinstance(entry, int) else entry
        if e.status != "done" or e.model is not self.ctx.state.model:
            return
        rec = self.ctx.state.reconstruction
        if rec is None or self.batch.entry_of(rec.image, rec.z) is not e:
            self._set_result(e.z, e.path, e.label, e.conf, announce=False)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.ctx.state.reconstruction is not None:
            self._show_image()  # keep the picture fitted to its pane

    # -- actions -------------------------------------------------------------------------------------------
    def _choose(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Open images", "", IMAGE_FILTER)
        if names:
            self.reconstruct_many(names)

    def reconstruct(self, path: str) -> Any:
        """Reconstruct one image on a worker; the result becomes the session's reconstruction."""
        return self.reconstruct_many([path])

    def reconstruct_many(self, paths: list[str]) -> Any:
        """Add ``paths`` to the list and reconstruct them in turn on a worker (after any still waiting); the
        first result of a run is shown, the others wait in the list. Returns the worker."""
        model = self.ctx.state.model
        if not self.can_reconstruct:
            self.ctx.notifier.warning("this model has no image encoder; open a 3D-VAE-GAN checkpoint")
            return None
        if not paths:
            return None
        return self.batch.add(list(paths), self._one_photo(model), model, self.ctx.state.level)

    def _one_photo(self, model: Any) -> Callable[[str, Callable[[int, int], None]], tuple[Any, ...]]:
        """How the worker reconstructs one photo with ``model``: (path, check) -> (z, label, confidence, voxels)."""
        if self.has_encoder:
            def own(path: str, _check: Callable[[int, int], None]) -> tuple[Any, ...]:
                voxels, z, conf = model.reconstruct_image(path)
                return z, f"image {Path(path).name}", conf, voxels
            return own
        steps, restarts = self.ctx.project_steps, self.ctx.project_restarts
        via = self._fallback_name

        def stand_in(path: str, check: Callable[[int, int], None]) -> tuple[Any, ...]:
            # The stand-in encoder's z means nothing to this model's generator: decode it with its own, then
            # project that shape into this model's z (the same projection training shapes get).
            if self._fallbacks.get(via) is None:
                self._fallbacks[via] = load_encoder_model(via, device=str(model.device))
            other = self._fallbacks[via]
            if other is None:
                raise Gan3dError(f"the bundled 3D-VAE-GAN {via} is no longer installed")
            grid, _, conf = other.reconstruct_image(path)
            z, iou = model.project(grid, steps=steps, restarts=restarts, progress=check)
            voxels = model.generate(np.asarray(z, np.float32)[None])[0]
            return z, f"image {Path(path).name} (via {via}, IoU {iou:.2f})", conf, voxels
        return stand_in

    def send_to(self, slot: str | None) -> None:
        rec = self.ctx.state.reconstruction
        if rec is None:
            return
        if slot is None:
            self.ctx.state.set_current(rec.z, rec.label)
        else:
            self.ctx.state.set_slot(slot, rec.z, rec.label)

    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:  # noqa: N802
        paths: list[str] = []
        for url in event.mimeData().urls():
            if not url.isLocalFile():
                continue
            p = Path(url.toLocalFile())
            if p.is_dir():  # a folder: its images, by name
                found = [str(f) for f in sorted(p.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
                if not found:
                    self.ctx.notifier.warning(f"{p}: no images in this folder (PNG, JPEG, BMP, TIFF or WebP)")
                paths += found
            else:
                paths.append(str(p))
        if paths:
            self.reconstruct_many(paths)
        event.acceptProposedAction()

    def close_views(self) -> None:
        self.batch.cancel_run()
        self.view.close_view()
