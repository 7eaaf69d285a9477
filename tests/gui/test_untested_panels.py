"""Panels no test covered (issue 24): the bank picker dialog (pages, class filter, choice), the slot editor's
"From..." menu (each entry fills the slot with the right z), and the A -> B export to .mp4. Values are checked
against the fixture's own data (the synthetic set's labels and class names), closed forms (the arithmetic
result on the prior's shell), and a second encoder (the same export as a GIF)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDialog

import explorer.panels.bank_picker as bank_picker
from explorer.panels.slot import NO_SEED, SlotEditor


def _rows(dlg) -> list[int]:
    return [int(dlg.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(dlg.list.count())]


def test_bank_picker_pages_wrap_and_the_class_filter_shows_that_class_only(qtbot, tiny_bank, synthetic_set,
                                                                          monkeypatch):
    _, labels, classes = synthetic_set  # 15 shapes, 3 of each of 5 classes
    monkeypatch.setattr(bank_picker, "PAGE", 4)
    dlg = bank_picker.BankPicker(tiny_bank, "Pick a shape")
    qtbot.addWidget(dlg)
    assert _rows(dlg) == [0, 1, 2, 3] and dlg.where.text() == "page 1 / 4"  # ceil(15 / 4) pages
    qtbot.mouseClick(dlg.next, Qt.MouseButton.LeftButton)
    assert _rows(dlg) == [4, 5, 6, 7] and dlg.where.text() == "page 2 / 4"
    qtbot.mouseClick(dlg.prev, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dlg.prev, Qt.MouseButton.LeftButton)  # before the first page: the last one
    assert _rows(dlg) == [12, 13, 14] and dlg.where.text() == "page 4 / 4"
    assert [dlg.classes.itemText(i) for i in range(dlg.classes.count())] == ["All classes", *classes]
    for c in range(len(classes)):
        dlg.classes.setCurrentIndex(1 + c)
        want = [i for i in range(len(labels)) if labels[i] == c]
        assert _rows(dlg) == want and dlg.where.text() == "page 1 / 1"
        assert [dlg.list.item(k).text() for k in range(dlg.list.count())] == [f"{classes[c]} #{i}" for i in want]
    dlg.classes.setCurrentIndex(0)
    assert _rows(dlg) == [0, 1, 2, 3]


def test_bank_picker_double_click_accepts_the_clicked_shape(qtbot, tiny_bank):
    dlg = bank_picker.BankPicker(tiny_bank, "Pick a shape")
    qtbot.addWidget(dlg)
    dlg.show()
    item = dlg.list.item(5)
    dlg.list.scrollToItem(item)
    centre = dlg.list.visualItemRect(item).center()
    qtbot.mouseClick(dlg.list.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(dlg.list.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert dlg.result() == QDialog.DialogCode.Accepted and dlg.selected() == 5


def _menu(editor: SlotEditor) -> dict:
    menu = editor.source.menu()
    menu.aboutToShow.emit()  # what opening it does: the entries are made then, from the state of the moment
    return {a.text(): a for a in menu.actions()}


@pytest.fixture
def editor(qtbot, ctx):
    ed = SlotEditor(ctx, "A", "A")
    qtbot.addWidget(ed)
    return ed


def test_slot_menu_entries_are_enabled_by_what_exists(editor, ctx):
    st = ctx.state
    acts = _menu(editor)
    assert list(acts) == ["Current shape", "Reconstruction", "Arithmetic result", "Training shape\u2026", "History"]
    assert acts["Current shape"].isEnabled() and acts["Arithmetic result"].isEnabled()
    assert not acts["Reconstruction"].isEnabled()  # nothing reconstructed yet
    assert acts["History"].isEnabled() == bool(st.history)
    st.set_reconstruction(np.ones(st.z_dim, np.float32), "photo.png")
    assert _menu(editor)["Reconstruction"].isEnabled()


def test_slot_menu_fills_the_slot_from_the_current_shape_reconstruction_and_history(editor, ctx):
    st = ctx.state
    st.set_mode("slerp")
    st.set_t(0.5)
    a, b = st.slot("A").z.astype(np.float64), st.slot("B").z.astype(np.float64)
    _menu(editor)["Current shape"].trigger()
    # the path's midpoint, by the closed form of slerp at t = 1/2: (a + b) sin(theta / 2) / sin(theta)
    theta = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    np.testing.assert_allclose(st.slot("A").z, (a + b) * np.sin(theta / 2) / np.sin(theta), rtol=1e-5, atol=1e-5)
    assert st.slot("A").label.startswith("A \u2192 B, t = 0.500")
    assert editor.seed.value() == NO_SEED and editor.label.text() == st.slot("A").label
    z_rec = np.linspace(-1, 1, st.z_dim).astype(np.float32)
    st.set_reconstruction(z_rec, "photo.png", "a photo")
    _menu(editor)["Reconstruction"].trigger()
    np.testing.assert_array_equal(st.slot("A").z, z_rec)
    assert st.slot("A").label == "a photo"
    st.seed_slot("B", 321)  # history, newest first: seed 321, a photo, ...
    hist = _menu(editor)["History"].menu()
    assert [x.text() for x in hist.actions()][:2] == ["seed 321", "a photo"]
    hist.actions()[0].trigger()
    np.testing.assert_array_equal(st.slot("A").z, st.model.sample_z(1, seed=321)[0])
    assert st.slot("A").label == "seed 321"


def test_slot_menu_arithmetic_result_is_a_minus_b_plus_c_on_the_priors_shell(editor, ctx):
    st = ctx.state
    st.set_weights((1.0, 0.5, 2.0))
    a, b, c = (st.slot(s).z.astype(np.float64) for s in "abc")
    raw = 1.0 * a - 0.5 * b + 2.0 * c
    want = raw / np.linalg.norm(raw) * np.sqrt(st.z_dim)  # N(0, 1) prior: its typical norm sqrt(z_dim), about 0
    assert st.model.profile.z_prior == "normal" and st.rescale
    _menu(editor)["Arithmetic result"].trigger()
    np.testing.assert_allclose(st.slot("A").z, want, rtol=1e-5, atol=1e-5)
    assert st.slot("A").label == "a \u2212 b + c"


def test_slot_menu_training_shape_projects_the_picked_bank_shape(qtbot, editor, ctx, tiny_bank, synthetic_set,
                                                                 monkeypatch, wait_idle):
    _, labels, classes = synthetic_set
    st = ctx.state
    before = st.slot("A").z.copy()
    messages: list = []
    ctx.notifier.message.connect(lambda level, text: messages.append((level, text)))
    _menu(editor)["Training shape\u2026"].trigger()  # no bank yet: a message, the slot unchanged
    assert messages and messages[-1][0] == "warning" and "feature bank" in messages[-1][1]
    np.testing.assert_array_equal(st.slot("A").z, before)
    st.set_bank(tiny_bank)
    chosen = {}

    def pick(dlg):  # the user filters by the last class and takes its second shape
        dlg.classes.setCurrentIndex(dlg.classes.count() - 1)
        dlg.list.setCurrentRow(1)
        chosen["i"] = dlg.selected()
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(bank_picker.BankPicker, "exec", pick)
    _menu(editor)["Training shape\u2026"].trigger()
    i = chosen["i"]
    assert labels[i] == len(classes) - 1 and i == [k for k in range(len(labels)) if labels[k] == len(classes) - 1][1]
    want = f"{classes[labels[i]]} #{i}"
    qtbot.waitUntil(lambda: st.slot("A").label.startswith(f"{want} (projected, IoU "), timeout=30000)
    wait_idle(ctx)
    assert not np.array_equal(st.slot("A").z, before) and editor.seed.value() == NO_SEED


def test_export_mp4_holds_every_frame_in_order(qtbot, interpolate_panel, ctx, tmp_path, wait_idle):
    import imageio.v2 as imageio

    panel = interpolate_panel
    done: list = []
    for name in ("seq.mp4", "seq.gif"):
        job = panel.start_export(str(tmp_path / name), frames=6)
        job.done.connect(done.append)
        qtbot.waitUntil(lambda n=len(done): len(done) > n, timeout=60000)
    assert done[0] == f"6 frames to {tmp_path / 'seq.mp4'}"
    with imageio.get_reader(tmp_path / "seq.mp4", format="FFMPEG") as r:
        meta = r.get_meta_data()
        mp4 = [np.asarray(f, np.float64) for f in r]
    assert len(mp4) == 6 and meta["codec"] == "h264" and meta["fps"] == 16
    assert mp4[0].shape == (480, 480, 3)  # the export's 480 x 480, a multiple of H.264's 16-pixel blocks
    gif = [np.asarray(f, np.float64)[..., :3] for f in imageio.mimread(tmp_path / "seq.gif")]
    # the same sequence through two encoders (lossy H.264, a 256-colour GIF palette): frame i of one is nearest
    # frame i of the other, and A's frame differs from B's
    d = np.array([[np.abs(m - g).mean() for g in gif] for m in mp4])
    assert list(d.argmin(axis=1)) == list(range(6)), d.round(2)
    assert np.abs(mp4[0] - mp4[-1]).mean() > 3 * d.diagonal().max()
    wait_idle(ctx)
