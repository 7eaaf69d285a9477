"""Arithmetic, retrieval and reconstruction panels (offscreen stand-in views, tiny16 model and bank)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from explorer.panels.arithmetic import ArithmeticPanel
from explorer.panels.reconstruct import ReconstructPanel
from explorer.panels.retrieval import RetrievalPanel


def show(qtbot, widget):
    qtbot.addWidget(widget)
    widget.show()
    return widget


# -- arithmetic ------------------------------------------------------------------------------------------
def test_arithmetic_shows_operands_and_result(qtbot, ctx, wait_idle):
    p = show(qtbot, ArithmeticPanel(ctx))
    wait_idle(ctx)
    assert all(th.voxels is not None for th in p.thumbs.values())
    np.testing.assert_allclose(p.channels[-1].result.z, ctx.state.arithmetic_z())
    assert "Result = 1" in p.result_view._caption.text()
    p.close_views()


def test_arithmetic_weights_and_seeds_write_to_the_state(qtbot, ctx, wait_idle):
    p = show(qtbot, ArithmeticPanel(ctx))
    p.editors["b"].weight.setValue(0.5)
    assert ctx.state.weights == (1.0, 0.5, 1.0)
    p.editors["c"].seed.setValue(321)
    assert ctx.state.slot("c").seed == 321
    wait_idle(ctx)
    np.testing.assert_allclose(p.channels[-1].result.z, ctx.state.arithmetic_z())
    ctx.state.undo_stack.undo()
    ctx.state.undo_stack.undo()
    assert p.editors["b"].weight.value() == 1.0 and p.editors["c"].seed.value() == 4
    p.close_views()


def test_arithmetic_result_can_become_the_current_shape_or_an_endpoint(qtbot, ctx):
    p = show(qtbot, ArithmeticPanel(ctx))
    qtbot.mouseClick(p.make_current, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(ctx.state.current_z(), ctx.state.arithmetic_z())
    qtbot.mouseClick(p.to_b, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(ctx.state.slot("B").z, ctx.state.arithmetic_z())
    p.close_views()


def test_arithmetic_nearest_training_shape_with_a_bank(qtbot, ctx, tiny_bank, wait_idle):
    p = show(qtbot, ArithmeticPanel(ctx))
    assert "Open a feature bank" in p.nearest_text.text()
    ctx.state.set_bank(tiny_bank, "bank.h5")
    wait_idle(ctx)
    assert "Nearest training shape" in p.nearest_text.text()
    assert any(name in p.nearest_text.text() for name in tiny_bank.class_names_)
    assert p.nearest.voxels is not None
    p.close_views()


# -- retrieval -------------------------------------------------------------------------------------------
def test_retrieval_without_a_bank_offers_to_open_one(qtbot, ctx):
    p = show(qtbot, RetrievalPanel(ctx))
    assert p.stack.currentIndex() == 0 and "No feature bank" in p.no_bank.text()
    opened = []
    from PyQt6.QtGui import QAction

    act = QAction()
    act.triggered.connect(lambda: opened.append(True))
    ctx.actions["open_bank"] = act
    qtbot.mouseClick(p.open_bank, Qt.MouseButton.LeftButton)
    assert opened


def test_retrieval_lists_k_nearest_with_distances_and_novelty(qtbot, ctx, tiny_bank, wait_idle):
    p = show(qtbot, RetrievalPanel(ctx))
    ctx.state.set_bank(tiny_bank, "bank.h5")
    wait_idle(ctx)
    assert p.stack.currentIndex() == 1 and p.list.count() == 5
    first = p.list.item(0).text()
    assert "distance" in first and any(c in first for c in tiny_bank.class_names_)
    assert "Novelty" in p.novelty.text() and "'last'" in p.novelty.text()
    dist = [float(p.list.item(i).text().rsplit(" ", 1)[-1]) for i in range(5)]
    assert dist == sorted(dist)
    p.k.setValue(3)
    p.kind.setCurrentIndex(p.kind.findData("paper"))
    wait_idle(ctx)
    assert p.list.count() == 3 and "'paper'" in p.novelty.text()


def test_retrieval_thumbnails_are_cached_within_a_bound(qtbot, ctx, tiny_bank, wait_idle, monkeypatch):
    """Thumbnails are kept by bank row (neighbours recur along a path), but never more than ICON_CACHE."""
    monkeypatch.setattr("explorer.panels.retrieval.ICON_CACHE", 3)
    p = show(qtbot, RetrievalPanel(ctx))
    ctx.state.set_bank(tiny_bank, "bank.h5")
    for t in np.linspace(0, 1, 4):
        ctx.state.set_t(float(t))
        wait_idle(ctx)
        assert p.list.count() == 5 and all(not p.list.item(i).icon().isNull() for i in range(5))
        assert len(p._icons) == 3


def test_retrieval_follows_the_current_shape(qtbot, ctx, tiny_bank, wait_idle):
    p = show(qtbot, RetrievalPanel(ctx))
    ctx.state.set_bank(tiny_bank, "bank.h5")
    wait_idle(ctx)
    first = p.channel.result.id
    ctx.state.set_t(0.9)
    wait_idle(ctx)
    assert p.channel.result.id != first
    np.testing.assert_allclose(p.channel.result.z, ctx.state.current_z())


def test_clicking_a_neighbour_projects_it_into_the_current_shape(qtbot, ctx, tiny_bank, wait_idle):
    p = show(qtbot, RetrievalPanel(ctx))
    ctx.state.set_bank(tiny_bank, "bank.h5")
    wait_idle(ctx)
    item = p.list.item(0)
    i = int(item.data(Qt.ItemDataRole.UserRole))
    p._load(item)
    qtbot.waitUntil(lambda: ctx.state.current is not None, timeout=30000)
    assert f"#{i}" in ctx.state.current.label and "projected" in ctx.state.current.label
    wait_idle(ctx)


def test_a_bank_from_another_discriminator_shows_a_message_in_place(qtbot, ctx, tiny_bank, wait_idle):
    from gan_core.features import FeatureBank

    foreign = FeatureBank(weights_hash="0" * 16, profile="tiny16", dtype="float32").fit(
        tiny_bank.features_, labels=tiny_bank.labels_, class_names=tiny_bank.class_names_)
    p = show(qtbot, RetrievalPanel(ctx))
    messages = []
    ctx.notifier.message.connect(lambda lv, tx: messages.append(tx))
    ctx.state.set_bank(foreign, "foreign.h5")
    wait_idle(ctx)
    assert "another discriminator" in p.status.text()
    assert any("another discriminator" in m for m in messages)


# -- reconstruction --------------------------------------------------------------------------------------
@pytest.fixture
def image_file(tmp_path):
    from PIL import Image

    img = np.full((64, 64, 3), 255, np.uint8)
    img[16:48, 20:44] = (120, 80, 40)
    path = tmp_path / "chair.png"
    Image.fromarray(img).save(path)
    return path


def test_reconstruct_an_image_and_send_its_z(qtbot, ctx, image_file, wait_idle):
    p = show(qtbot, ReconstructPanel(ctx))
    assert p.has_encoder and p.open.isEnabled() and not p.send.isEnabled()
    p.reconstruct(str(image_file))
    qtbot.waitUntil(lambda: ctx.state.reconstruction is not None, timeout=20000)
    wait_idle(ctx)
    assert p.view.shown_count >= 1 and "chair.png" in p.view._caption.text()
    assert p.image.pixmap() is not None and not p.image.pixmap().isNull()
    assert p.send.isEnabled()
    p.send_to("a")
    np.testing.assert_array_equal(ctx.state.slot("a").z, ctx.state.reconstruction.z)
    p.close_views()


def test_dropping_an_image_file_reconstructs_it(qtbot, ctx, image_file, wait_idle):
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    p = show(qtbot, ReconstructPanel(ctx))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_file))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    p.dropEvent(event)
    qtbot.waitUntil(lambda: ctx.state.reconstruction is not None, timeout=20000)
    assert ctx.state.reconstruction.image.endswith("chair.png")
    wait_idle(ctx)
    p.close_views()


def test_reconstructing_a_non_image_is_a_message(qtbot, ctx, tmp_path, wait_idle):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    p = show(qtbot, ReconstructPanel(ctx))
    with qtbot.waitSignal(ctx.notifier.message, timeout=20000) as sig:
        p.reconstruct(str(bad))
    assert sig.args[0] == "error" and "notes.png" in sig.args[1] and "Traceback" not in sig.args[1]
    assert ctx.state.reconstruction is None
    wait_idle(ctx)
    p.close_views()


def test_model_without_encoder_says_so(qtbot, fresh_model, monkeypatch):
    from explorer.context import AppContext
    from explorer.state import SessionState

    monkeypatch.setattr("explorer.panels.reconstruct.bundled_encoder_name", lambda *_: None)
    fresh_model.encoder = None
    c = AppContext(SessionState(fresh_model))
    p = show(qtbot, ReconstructPanel(c))
    assert not p.notice.isHidden() and "no image encoder" in p.notice.text()
    assert not p.open.isEnabled()
    p.close_views()
    c.shutdown()


def test_model_without_encoder_reconstructs_through_the_bundled_one(qtbot, fresh_model, monkeypatch, image_file,
                                                                     wait_idle):
    """No encoder of its own: the bundled 3D-VAE-GAN encodes and decodes, the shape is projected into z."""
    from explorer.context import AppContext
    from explorer.state import SessionState
    from gan_core.runtime import load_model

    stand_in = load_model(profile="tiny16", device="cpu", precision="fp32", name="bundled_vae")
    loads = []
    monkeypatch.setattr("explorer.panels.reconstruct.bundled_encoder_name", lambda *_: "bundled_vae")
    monkeypatch.setattr("explorer.panels.reconstruct.load_encoder_model",
                        lambda name, **kw: loads.append(name) or stand_in)
    fresh_model.encoder = None
    c = AppContext(SessionState(fresh_model))
    c.project_steps, c.project_restarts = 3, 1
    p = show(qtbot, ReconstructPanel(c))
    assert p.open.isEnabled() and "bundled_vae" in p.notice.text() and "no image encoder" in p.notice.text()
    p.reconstruct(str(image_file))
    qtbot.waitUntil(lambda: c.state.reconstruction is not None, timeout=30000)
    wait_idle(c)
    other = image_file.with_name("other.png")
    other.write_bytes(image_file.read_bytes())
    p.reconstruct(str(other))  # the stand-in is loaded only once
    qtbot.waitUntil(lambda: "other.png" in c.state.reconstruction.label, timeout=30000)
    wait_idle(c)
    rec = c.state.reconstruction
    assert loads == ["bundled_vae"] and "bundled_vae" in rec.label and "IoU" in rec.label
    assert rec.z.shape == (32,) and np.isfinite(rec.z).all()
    p.close_views()
    c.shutdown()


def test_the_stand_in_encoder_follows_the_loaded_model(qtbot, fresh_model, monkeypatch):
    """A per-category model names its own encoder in the registry: loading it switches the stand-in."""
    from explorer.context import AppContext
    from explorer.state import SessionState
    from gan_core.runtime import load_model

    monkeypatch.setattr("explorer.panels.reconstruct.bundled_encoder_name",
                        lambda name=None: "chair_vae" if name == "chair" else "all_vae")
    fresh_model.encoder = None
    c = AppContext(SessionState(fresh_model))
    p = show(qtbot, ReconstructPanel(c))
    assert "all_vae" in p.notice.text()
    chair = load_model(profile="tiny16", device="cpu", precision="fp32", name="chair")
    chair.encoder = None
    c.state.set_model(chair)
    assert "chair_vae" in p.notice.text() and p.open.isEnabled()
    p.close_views()
    c.shutdown()


def test_retrieval_follows_a_drag_a_few_times_a_second_and_ends_on_its_last_shape(qtbot, ctx, tiny_bank, wait_idle):
    """A search runs D: during a drag the neighbours are searched at most every 300 ms, always for the newest
    shape, and the last position is searched once the interval is over."""
    p = show(qtbot, RetrievalPanel(ctx))
    ctx.state.set_bank(tiny_bank, "bank.h5")
    wait_idle(ctx)
    asked = []
    request = ctx.service.request
    ctx.service.request = lambda target, *a, **kw: asked.append(target) or request(target, *a, **kw)
    for i in range(40):  # 40 slider moves in about 0.4 s
        ctx.state.set_t(i / 40)
        qtbot.wait(10)
    assert ctx.busy  # the last shape is still to be searched
    wait_idle(ctx)
    assert 1 <= asked.count("retrieval") <= 4
    np.testing.assert_allclose(p.channel.result.z, ctx.state.current_z())
