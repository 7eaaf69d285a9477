"""Paths through 3 or more shapes: keyframes in the session state, sessions, the keyframe strip and the
filmstrip's editing menu (offscreen stand-in views)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QSize, Qt

from gan_core.errors import BadInputError
from explorer.panels.interpolate import FRAMES
from explorer.panels.keyframes import insert_position


def _z(state, seed):
    return state.model.sample_z(1, seed=seed)[0]


def test_keyframes_put_the_path_through_each_shape_at_its_t(state):
    k1, k2 = _z(state, 11), _z(state, 12)
    state.insert_key(1, k1, "k1")
    state.insert_key(2, k2, "k2")
    assert [k.label for k in state.keys] == ["k1", "k2"] and state.key_t(1) == pytest.approx(1 / 3)
    for mode in ("slerp", "lerp", "spline"):
        state.set_mode(mode)
        at = state.path_z(np.array([0, 1 / 3, 2 / 3, 1]))
        np.testing.assert_allclose(at, [state.slot("A").z, k1, k2, state.slot("B").z], atol=1e-5)
    state.set_t(1 / 3)
    np.testing.assert_allclose(state.current_z(), k1, atol=1e-5)


def test_keyframe_edits_emit_keys_and_are_undoable(state):
    seen = []
    state.changed.connect(lambda f: seen.append(f))
    two_point = state.path_z(0.5)
    state.insert_key(1, _z(state, 11), "k1")
    assert "keys" in seen[-1]
    state.insert_key(1, _z(state, 12), "k2")  # before k1
    state.move_key(1, 2)
    assert [k.label for k in state.keys] == ["k1", "k2"]
    state.replace_key(2, _z(state, 13), "k3")
    state.remove_key(1)
    assert [k.label for k in state.keys] == ["k3"]
    state.clear_keys()
    np.testing.assert_allclose(state.path_z(0.5), two_point)
    for _ in range(6):
        state.undo_stack.undo()
    assert state.keys == ()
    state.undo_stack.redo()
    assert [k.label for k in state.keys] == ["k1"]


@pytest.mark.parametrize("call,match", [
    (lambda s: s.insert_key(0, _z(s, 1)), "position 1 to 1, got 0"),
    (lambda s: s.insert_key(2, _z(s, 1)), "position 1 to 1, got 2"),
    (lambda s: s.remove_key(1), "no keyframe 1: the path has 0"),
    (lambda s: s.insert_key(1, np.full(32, np.nan)), "NaN"),
    (lambda s: s.insert_key(1, np.zeros(7)), "7 values"),
])
def test_bad_keyframe_edits_are_refused(state, call, match):
    with pytest.raises(BadInputError, match=match):
        call(state)
    assert state.keys == ()


def test_spline_with_two_points_is_smooth_and_a_new_model_clears_keys(state, fresh_model):
    state.set_mode("spline")
    zs = state.path_z(np.linspace(0, 1, 5))
    assert zs.shape == (5, 32) and np.allclose(zs[0], state.slot("A").z, atol=1e-5)
    state.insert_key(1, _z(state, 11), "k1")
    import types

    other = types.SimpleNamespace(profile=types.SimpleNamespace(z_dim=16), sample_z=lambda n, seed: np.ones((n, 16)))
    state.set_model(other)  # another z size: the keyframes cannot be kept
    assert state.keys == ()


def test_sessions_keep_keyframes(tmp_path, state, tiny_model):
    from explorer.session import load_session, save_session
    from explorer.state import SessionState

    state.insert_key(1, _z(state, 11), "k1")
    state.insert_key(2, _z(state, 12), "k2")
    state.set_mode("spline")
    sess = load_session(save_session(state, tmp_path / "s.json"))
    other = SessionState(tiny_model)
    other.restore(sess.values)
    assert [k.label for k in other.keys] == ["k1", "k2"] and other.mode == "spline"
    np.testing.assert_allclose(other.path_z(0.4), state.path_z(0.4))


def test_insert_position_follows_t():
    assert [insert_position(0, t) for t in (0.0, 0.5, 1.0)] == [1, 1, 1]
    assert [insert_position(2, t) for t in (0.1, 0.4, 0.7, 1.0)] == [1, 2, 3, 3]


@pytest.fixture
def panel(interpolate_panel):
    return interpolate_panel


def test_strip_shows_a_keys_and_b_and_the_filmstrip_follows(qtbot, panel, ctx, wait_idle):
    strip = panel.keyframes
    assert sum(th.isVisible() for th in strip.thumbs) == 2 and not strip.clear.isEnabled()
    old_mid = panel.frames[FRAMES // 2].voxels.copy()
    ctx.state.set_t(0.5)
    ctx.state.set_current(_z(ctx.state, 40), "seed 40")  # e.g. picked on the map: it goes in at t = 0.5
    qtbot.mouseClick(strip.add, Qt.MouseButton.LeftButton)
    assert [k.label for k in ctx.state.keys] == ["seed 40"]
    wait_idle(ctx)
    shown = [th for th in strip.thumbs if th.isVisible()]
    assert [th.text() for th in shown] == ["A", "1", "B"] and all(th.voxels is not None for th in shown)
    np.testing.assert_array_equal(shown[1].voxels, ctx.state.model.generate(_z(ctx.state, 40))[0])
    assert panel.film.result.voxels.shape[0] == FRAMES  # still one batch
    assert not np.array_equal(old_mid, panel.frames[FRAMES // 2].voxels)  # the middle frame is now the key
    qtbot.mouseClick(shown[2], Qt.MouseButton.LeftButton)
    assert ctx.state.t == 1.0
    qtbot.mouseClick(shown[1], Qt.MouseButton.LeftButton)
    assert ctx.state.t == pytest.approx(0.5)


def test_filmstrip_menu_adds_and_removes_keyframes(panel, ctx):
    st = ctx.state
    menu = panel.keyframes.frame_menu(2 / 6)
    texts = [a.text() for a in menu.actions()]
    assert texts == ["Insert the current shape as a keyframe here", "Make this frame a keyframe"]
    frame_z = st.path_z(2 / 6)
    menu.actions()[1].trigger()
    assert len(st.keys) == 1
    np.testing.assert_allclose(st.keys[0].z, frame_z, atol=1e-6)
    menu = panel.keyframes.frame_menu(0.5)  # the keyframe now sits at t = 0.5
    remove = [a for a in menu.actions() if a.text().startswith("Remove keyframe 1")]
    assert len(remove) == 1
    remove[0].trigger()
    assert st.keys == ()


def test_key_menu_moves_replaces_and_removes(panel, ctx):
    st = ctx.state
    st.insert_key(1, _z(st, 11), "k1")
    st.insert_key(2, _z(st, 12), "k2")
    assert panel.keyframes.key_menu(0) is None  # A is edited in its slot editor
    menu = panel.keyframes.key_menu(1)
    assert [a.text() for a in menu.actions()] == ["Replace with the current shape", "Move later", "Remove"]
    menu.actions()[1].trigger()
    assert [k.label for k in st.keys] == ["k2", "k1"]
    st.set_current(_z(st, 50), "seed 50")
    panel.keyframes.key_menu(2).actions()[0].trigger()
    assert [k.label for k in st.keys] == ["k2", "seed 50"]
    panel.keyframes.clear.click()
    assert st.keys == ()


def test_mode_combo_offers_the_spline(panel, ctx):
    st = ctx.state
    panel.mode.setCurrentText("spline")
    assert st.mode == "spline"
    st.insert_key(1, _z(st, 11), "k1")
    zs = st.path_z(np.linspace(0.0, 1.0, 5))
    np.testing.assert_allclose(zs[2], _z(st, 11), atol=1e-5)
    assert not np.allclose(zs[1], (zs[0] + zs[2]) / 2, atol=1e-3)  # a curve, not per-segment lerp


# -- the strip's height (issue 26, item 7) -------------------------------------------------------------------
def test_a_thumbnail_asks_for_its_picture_and_caption_before_it_has_them(qtbot):
    from gan_core.data.synthetic import chair
    from explorer.widgets import Thumb

    for size, caption in ((56, "A"), (92, "t = 0.00"), (120, "")):
        th = Thumb("a shape", size)
        qtbot.addWidget(th)
        empty = th.sizeHint()
        assert empty.height() >= size + th.fontMetrics().height() and th.minimumSizeHint() == empty
        th.setText(caption)
        th.set_voxels(chair(16))
        assert th.sizeHint() == empty, "no jump when the shape and its caption arrive"


@pytest.mark.parametrize("size", [(1400, 900), (1600, 1000)])
def test_keyframe_strip_keeps_readable_thumbnails_and_captions(qtbot, tiny_model, settings, size):
    """As the app starts: the window is laid out before a model is loaded, its thumbnails still empty. The strip
    was then one text line high (21 px: bare buttons) and kept that until something re-laid the window out, so
    its pictures came in ~20 px high without captions; now it has its full height from the first layout, with
    or without a message bar, and the 3D views above do not move when the shapes arrive."""
    from explorer.panels.keyframes import SIZE
    from explorer.state import SessionState
    from explorer.window import MainWindow

    state = SessionState()
    win = MainWindow(state, settings)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(50)  # the first layout
    strip = win.interpolate.keyframes

    def readable(captions):
        thumbs = [t for t in strip.thumbs if t.isVisible()]
        need = SIZE + strip.fontMetrics().height()
        assert [t.text() for t in thumbs] == captions
        assert all(t.height() >= need and t.iconSize() == QSize(SIZE, SIZE) for t in thumbs)
        assert strip.height() >= need and strip.minimumHeight() >= need

    readable(["A", "B"])
    first = (strip.height(), win.interpolate.view_cur.height())
    try:
        state.set_model(tiny_model)
        state.insert_key(1, state.current_z(), "k1")
        qtbot.waitUntil(lambda: all(t.shown_count for t in strip.thumbs[:3]) and not win.ctx.busy, timeout=20000)
        qtbot.wait(50)
        readable(["A", "1", "B"])
        assert (strip.height(), win.interpolate.view_cur.height()) == first
        win.show_message("info", "a message bar")
        qtbot.wait(50)
        readable(["A", "1", "B"])
        win.messages.dismiss()
        qtbot.wait(50)
        readable(["A", "1", "B"])
    finally:
        win.shutdown()
        qtbot.waitUntil(lambda: not win.ctx.jobs.busy, timeout=10000)
