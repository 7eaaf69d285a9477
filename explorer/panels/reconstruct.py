"""Single-image 3D reconstruction (3D-VAE-GAN): open or drop an image, see it beside the shape its encoded
z generates with how far to trust it (a confidence label, a warning when the picture does not look like furniture),
and send that z to an endpoint or an arithmetic slot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QFileDialog, QLabel, QMenu, QPushButton, QSizePolicy, QSplitter, QToolButton, QWidget

from gan_core.errors import Gan3dError
from gan_core.runtime import bundled_encoder_name, load_encoder_model

from explorer.context import AppContext, ShapeChannel
from explorer.viewport import make_view
from explorer.widgets import describe, hbox, vbox

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"


class ReconstructPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        st = ctx.state
        self.setAcceptDrops(True)
        self._fallback_name = bundled_encoder_name(getattr(ctx.state.model, "name", None))
        self._fallbacks: dict[str, Any] = {}  # bundled encoder models by name, loaded on first use (on a worker)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff4d6; padding: 6px; border-radius: 4px;")
        self.notice.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.open = describe(QPushButton("Open image\u2026"), "Open image to reconstruct",
                             "Pick a photo or render of one object; you can also drop an image file here")
        self.open.clicked.connect(self._choose)
        self.image = QLabel("Drop an image here")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 200)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)  # the pixmap follows the pane
        self.image.setStyleSheet("border: 2px dashed #bbb; color: #777; background: #fafafa;")
        self.image.setAccessibleName("Input image")
        self.confidence = QLabel()  # the last reconstruction's confidence (gan_core.recon_confidence)
        self.confidence.setWordWrap(True)
        self.confidence.setAccessibleName("Reconstruction confidence")
        self.confidence.setVisible(False)
        self._confidence: tuple[str, Any] | None = None  # (image path, Confidence) of the last reconstruction
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
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.image)
        split.addWidget(self.view)
        split.setSizes([400, 600])
        lay = vbox(self.notice, hbox(self.open, self.send, 1), self.confidence, split, margins=6)
        lay.setStretch(3, 1)
        self.setLayout(lay)
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

    def _model_changed(self, model: Any) -> None:
        self._fallback_name = bundled_encoder_name(getattr(model, "name", None))  # chair model: chair encoder
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

    def _caption(self) -> str:
        rec = self.ctx.state.reconstruction
        return "Reconstruction" if rec is None else f"Reconstruction of {Path(rec.image or '').name}"

    def _show_image(self) -> None:
        rec = self.ctx.state.reconstruction
        if rec is None or not rec.image:
            self.image.setText("Drop an image here")
            return
        pix = QPixmap(rec.image)
        if pix.isNull():
            self.image.setText(f"(cannot preview {Path(rec.image).name})")
        else:
            self.image.setPixmap(pix.scaled(self.image.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation))

    def _show_confidence(self) -> None:
        """The confidence of the shown reconstruction: a short grey line, or a red warning when it is low."""
        rec = self.ctx.state.reconstruction
        conf = self._confidence[1] if self._confidence and rec is not None and rec.image == self._confidence[0] \
            else None
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

    def _set_result(self, z: Any, path: str, label: str, conf: Any) -> None:
        self._confidence = (path, conf)
        self.ctx.state.set_reconstruction(z, path, label)
        self._show_confidence()  # also when the state saw the same reconstruction again
        if conf.low:
            self.ctx.notifier.warning(f"{Path(path).name}: {conf.label()}")

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.ctx.state.reconstruction is not None:
            self._show_image()  # keep the picture fitted to its pane

    # -- actions -------------------------------------------------------------------------------------------
    def _choose(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if name:
            self.reconstruct(name)

    def reconstruct(self, path: str) -> Any:
        """Encode ``path`` on a worker; the result becomes the session's reconstruction."""
        model = self.ctx.state.model
        if not self.can_reconstruct:
            self.ctx.notifier.warning("this model has no image encoder; open a 3D-VAE-GAN checkpoint")
            return None
        p = str(Path(path).resolve())
        name = Path(p).name
        if self.has_encoder:
            return self.ctx.jobs.start(f"Reconstructing {name}", model.reconstruct_image, p,
                                       on_done=lambda r: self._set_result(r[1], p, f"image {name}", r[2]))
        steps, restarts = self.ctx.project_steps, self.ctx.project_restarts
        via = self._fallback_name

        def job(report: Any) -> tuple[Any, float, Any]:
            # The stand-in encoder's z means nothing to this model's generator: decode it with its own, then
            # project that shape into this model's z (the same projection training shapes get).
            if self._fallbacks.get(via) is None:
                self._fallbacks[via] = load_encoder_model(via, device=str(model.device))
            stand_in = self._fallbacks[via]
            if stand_in is None:
                raise Gan3dError(f"the bundled 3D-VAE-GAN {via} is no longer installed")
            voxels, _, conf = stand_in.reconstruct_image(p)
            return (*model.project(voxels, steps=steps, restarts=restarts, progress=report), conf)

        def done(res: tuple[Any, float, Any]) -> None:
            z, iou, conf = res
            self._set_result(z, p, f"image {name} (via {via}, IoU {iou:.2f})", conf)

        return self.ctx.jobs.start(f"Reconstructing {name}", job, on_done=done, progress=True)

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
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.reconstruct(url.toLocalFile())
                event.acceptProposedAction()
                return

    def close_views(self) -> None:
        self.view.close_view()
