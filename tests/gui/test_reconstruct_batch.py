"""Several photos at once in the Reconstruct panel: dropped (or picked together) they are reconstructed one after
another on a worker with progress and Cancel; the list holds each photo with its shape and confidence; an
unreadable file is one message and the rest go on; choosing an entry shows its photo and shape."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image
from PyQt6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PyQt6.QtGui import QDropEvent
from PyQt6.QtWidgets import QFileDialog

from explorer.panels.reconstruct import ReconstructPanel
from explorer.widgets import unnamed_controls


@pytest.fixture
def photos(tmp_path):
    """Two small valid pictures (a box and a slab on white) and a corrupt PNG, in drop order."""
    box = np.full((64, 64, 3), 255, np.uint8)
    box[16:48, 20:44] = (120, 80, 40)
    slab = np.full((48, 72, 3), 240, np.uint8)
    slab[20:36, 8:64] = (40, 60, 120)
    Image.fromarray(box).save(tmp_path / "box.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a picture")
    Image.fromarray(slab).save(tmp_path / "slab.png")
    return [tmp_path / "box.png", tmp_path / "broken.png", tmp_path / "slab.png"]


def drop(panel, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    panel.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                               Qt.KeyboardModifier.NoModifier))


@pytest.fixture
def panel(qtbot, ctx):
    p = ReconstructPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 600)
    p.show()
    yield p
    p.close_views()


def test_dropping_three_files_gives_two_results_and_one_message(qtbot, ctx, panel, photos, wait_idle):
    messages = []
    ctx.notifier.message.connect(lambda level, text: messages.append((level, text)))
    assert panel.photos.isHidden() and panel.batch.row.isHidden()  # nothing yet: no list, no progress
    drop(panel, photos)
    assert panel.photos.count() == 3 and not panel.batch.row.isHidden()
    qtbot.waitUntil(lambda: not panel.running, timeout=30000)
    wait_idle(ctx)
    assert [e.name for e in panel.results] == ["box.png", "slab.png"]
    assert [e.status for e in panel.entries] == ["done", "failed", "done"]
    errors = [t for lv, t in messages if lv == "error"]
    assert len(errors) == 1 and "broken.png" in errors[0] and "\n" not in errors[0]
    assert "Traceback" not in errors[0]
    assert panel.progress.value() == panel.progress.maximum() == 3  # the progress reached the end
    assert "2 reconstructed" in panel.batch.status.text() and "1 could not be read" in panel.batch.status.text()
    assert not panel.cancel.isEnabled()
    # each result: the photo and its shape side by side, the confidence, in the text and for screen readers
    for e in panel.results:
        assert not e.item.icon().isNull() and "confidence" in e.item.text()
        assert e.item.data(Qt.ItemDataRole.AccessibleTextRole).startswith(e.name)
        assert e.z.shape == (ctx.state.z_dim,) and np.isfinite(e.z).all()
    assert "cannot read" in panel.entries[1].item.text() and "broken.png" in panel.entries[1].item.toolTip()
    # the run's first result is shown by itself, and the list marks it
    rec = ctx.state.reconstruction
    assert rec.image.endswith("box.png") and panel.photos.currentRow() == 0
    assert not panel.image.pixmap().isNull() and not panel.confidence.isHidden()


def test_clicking_an_entry_shows_its_photo_and_shape(qtbot, ctx, panel, photos, wait_idle):
    drop(panel, photos)
    qtbot.waitUntil(lambda: not panel.running, timeout=30000)
    wait_idle(ctx)
    first_pixmap = panel.image.pixmap().toImage()
    slab = panel.entries[2]
    rect = panel.photos.visualItemRect(slab.item)
    qtbot.mouseClick(panel.photos.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert ctx.state.reconstruction.image == slab.path
    np.testing.assert_array_equal(ctx.state.reconstruction.z, slab.z)
    wait_idle(ctx)
    assert panel.channel.result is not None
    np.testing.assert_array_equal(panel.channel.result.z, slab.z)  # the view shows that entry's shape
    np.testing.assert_allclose(panel.channel.result.voxels, ctx.state.model.generate(slab.z[None])[0], atol=1e-6)
    assert "slab.png" in panel.view._caption.text()
    assert panel.image.pixmap().toImage() != first_pixmap  # and its photo
    # the unreadable entry shows nothing; the keyboard moves between entries
    panel.show_entry(1)
    assert ctx.state.reconstruction.image == slab.path
    panel.photos.setFocus()
    panel.photos.setCurrentRow(0)
    assert ctx.state.reconstruction.image.endswith("box.png")
    ctx.state.undo_stack.undo()  # back to the slab: the list follows
    assert panel.photos.currentRow() == 2


def test_cancel_stops_the_rest(qtbot, ctx, panel, photos, monkeypatch, wait_idle):
    """The first photo is held on the worker until Cancel is pressed: it finishes, the others do not run."""
    model = ctx.state.model
    gate, started = threading.Event(), []
    real = model.reconstruct_image

    def slow(path, **kw):
        started.append(path)
        gate.wait(20)
        return real(path, **kw)

    monkeypatch.setattr(model, "reconstruct_image", slow)
    drop(panel, [photos[0], photos[2], photos[0]])
    try:
        qtbot.waitUntil(lambda: bool(started) and panel.entries[0].status == "running", timeout=10000)
        assert panel.running and panel.cancel.isEnabled() and "Reconstructing box.png" in panel.batch.status.text()
        qtbot.mouseClick(panel.cancel, Qt.MouseButton.LeftButton)
        assert not panel.cancel.isEnabled() and "Cancelling" in panel.batch.status.text()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    wait_idle(ctx)
    assert len(started) == 1
    assert [e.status for e in panel.entries] == ["done", "cancelled", "cancelled"]
    assert "1 reconstructed" in panel.batch.status.text() and "2 cancelled" in panel.batch.status.text()
    assert panel.progress.value() == 1 and panel.progress.maximum() == 3
    # a new drop after a Cancel runs as usual
    monkeypatch.setattr(model, "reconstruct_image", real)
    drop(panel, [photos[2]])
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    wait_idle(ctx)
    assert panel.entries[-1].status == "done" and ctx.state.reconstruction.image.endswith("slab.png")


def test_the_gui_stays_responsive_while_photos_are_reconstructed(qtbot, ctx, panel, photos, monkeypatch, wait_idle):
    model = ctx.state.model
    gate = threading.Event()
    real = model.reconstruct_image
    monkeypatch.setattr(model, "reconstruct_image", lambda path, **kw: (gate.wait(20), real(path, **kw))[1])
    drop(panel, photos[:1])
    QTimer.singleShot(20000, gate.set)  # never left blocked, whatever fails below
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    qtbot.wait(300)  # the worker is blocked, the event loop is not
    assert len(ticks) >= 5 and panel.running
    gate.set()
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    timer.stop()
    wait_idle(ctx)


def test_the_file_dialog_takes_several_photos(qtbot, ctx, panel, photos, monkeypatch, wait_idle):
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(photos[0]), str(photos[2])], "")))
    qtbot.mouseClick(panel.open, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=30000)
    wait_idle(ctx)
    assert [e.name for e in panel.results] == ["box.png", "slab.png"]


def test_every_control_is_named_and_reachable_by_keyboard(qtbot, ctx, panel, photos, wait_idle):
    drop(panel, photos)
    qtbot.waitUntil(lambda: not panel.running, timeout=30000)
    wait_idle(ctx)
    assert unnamed_controls(panel) == []
    for w in (panel.open, panel.send, panel.cancel, panel.batch.clear, panel.photos, panel.progress,
              panel.batch.status, panel.image, panel.confidence):
        assert w.accessibleName(), w
    chain, w = [], panel.open
    for _ in range(30):  # the tab chain from "Open images" passes the batch controls and the list
        chain.append(w)
        w = w.nextInFocusChain()
        if w is panel.open:
            break
    for w in (panel.send, panel.cancel, panel.batch.clear, panel.photos):
        assert w in chain and w.focusPolicy() & Qt.FocusPolicy.TabFocus
    assert chain.index(panel.send) < chain.index(panel.cancel) < chain.index(panel.batch.clear) < chain.index(panel.photos)


def test_clear_empties_the_list_and_a_folder_drop_takes_its_images(qtbot, ctx, panel, photos, wait_idle):
    drop(panel, [photos[0].parent])  # a folder: its images by name (broken.png is one, by its name)
    qtbot.waitUntil(lambda: not panel.running, timeout=30000)
    wait_idle(ctx)
    assert [e.name for e in panel.entries] == ["box.png", "broken.png", "slab.png"]
    shown = ctx.state.reconstruction
    qtbot.mouseClick(panel.batch.clear, Qt.MouseButton.LeftButton)
    assert panel.photos.count() == 0 and panel.photos.isHidden() and panel.batch.row.isHidden()
    assert ctx.state.reconstruction is shown


def test_opening_another_model_mid_run_drops_the_list_and_its_results(qtbot, ctx, panel, photos, fresh_model,
                                                                      monkeypatch, wait_idle):
    """The list's z belong to the model they were reconstructed with: another model empties it, and a result
    still on its way is dropped, not shown through the new model's generator."""
    model = ctx.state.model
    gate = threading.Event()
    real = model.reconstruct_image
    monkeypatch.setattr(model, "reconstruct_image", lambda path, **kw: (gate.wait(20), real(path, **kw))[1])
    drop(panel, [photos[0], photos[2]])
    try:
        qtbot.waitUntil(lambda: panel.entries[0].status == "running", timeout=10000)
        ctx.state.set_model(fresh_model)
        assert panel.photos.count() == 0 and panel.batch.row.isHidden()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    wait_idle(ctx)
    assert ctx.state.reconstruction is None and panel.entries == []
