"""Interpolation panel: state <-> widgets, live slider, filmstrip batch, play, export (offscreen stand-in views)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from explorer.panels.interpolate import FRAMES, STEPS
from explorer.path_preview import coarse_to_fine


@pytest.fixture
def panel(interpolate_panel):
    return interpolate_panel


def test_views_and_filmstrip_show_the_session(panel, ctx):
    assert all(v.shown_count for v in panel.views)
    assert all(th.voxels is not None for th in panel.frames) and len(panel.frames) == FRAMES
    assert panel.frames[0].text() == "t = 0.00" and panel.frames[-1].text() == "t = 1.00"
    np.testing.assert_allclose(panel.channels[1].result.z, ctx.state.current_z())


def test_state_changes_update_the_widgets(panel, ctx):
    ctx.state.set_t(0.123)
    assert panel.slider.value() == 123 and panel.spin.value() == pytest.approx(0.123)
    ctx.state.set_mode("lerp")
    assert panel.mode.currentText() == "lerp"
    ctx.state.seed_slot("A", 1234)
    assert panel.edit_a.seed.value() == 1234 and panel.edit_a.label.text() == "seed 1234"
    ctx.state.undo_stack.undo()
    assert panel.edit_a.seed.value() == 0


def test_slider_steps_finely_and_updates_the_centre_view_live(qtbot, panel, ctx, wait_idle):
    assert panel.slider.maximum() == STEPS >= 1000 and panel.slider.singleStep() == 1
    panel.slider.setFocus()
    before = panel.views[1].shown_count
    ctx.state.break_merge()
    for v in (600, 650, 700, 750):
        panel.slider.setValue(v)  # as a drag would, faster than the throttle lets through
    qtbot.waitUntil(lambda: ctx.state.t == pytest.approx(0.75), timeout=5000)
    wait_idle(ctx)
    assert panel.views[1].shown_count > before
    np.testing.assert_allclose(panel.channels[1].result.z, ctx.state.path_z(0.75), atol=1e-6)
    assert ctx.state.undo_stack.count() == 1  # one drag, one undo step
    qtbot.keyClick(panel.slider, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: ctx.state.t == pytest.approx(0.751), timeout=5000)


def test_mode_combo_and_spinbox_write_to_the_state(panel, ctx):
    panel.mode.setCurrentText("lerp")
    assert ctx.state.mode == "lerp"
    panel.spin.setValue(0.25)
    assert ctx.state.t == pytest.approx(0.25)


def test_filmstrip_click_jumps_to_its_t(qtbot, panel, ctx):
    qtbot.mouseClick(panel.frames[FRAMES - 1], Qt.MouseButton.LeftButton)
    assert ctx.state.t == 1.0


def test_filmstrip_is_regenerated_in_one_batch_when_an_endpoint_changes(qtbot, panel, ctx, wait_idle):
    old = [th.voxels for th in panel.frames]
    ctx.state.seed_slot("B", 77)
    wait_idle(ctx)
    assert panel.film.result.voxels.shape[0] == FRAMES
    assert not np.array_equal(old[-1], panel.frames[-1].voxels)


def test_play_advances_t_and_stops_at_b_without_loop(qtbot, panel, ctx):
    panel.loop.setChecked(False)
    ctx.state.set_t(0.95)
    panel.play.setChecked(True)
    qtbot.waitUntil(lambda: not panel.play.isChecked(), timeout=5000)
    assert ctx.state.t == 1.0


def test_export_gif_and_meshes(qtbot, panel, ctx, tmp_path, wait_idle):
    import imageio.v3 as iio

    done = []
    job = panel.start_export(str(tmp_path / "seq.gif"), frames=5)
    job.done.connect(done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    frames = iio.imread(tmp_path / "seq.gif", index=None)
    assert frames.shape[0] == 5 and frames.shape[1] >= 64
    done.clear()
    job = panel.start_export(str(tmp_path / "meshes"), frames=3)
    job.done.connect(done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    assert len(list((tmp_path / "meshes").glob("frame_*.stl"))) >= 1
    wait_idle(ctx)


# -- the precomputed path (explorer.path_preview): filled in the background, shown while dragging, refined on release
def test_coarse_to_fine_visits_every_position_once_ends_first():
    order = coarse_to_fine(101)
    assert sorted(order.tolist()) == list(range(101))
    assert order[:2].tolist() == [0, 100] and order[2:8].tolist() == [16, 32, 48, 64, 80, 96]
    assert coarse_to_fine(1).tolist() == [0]


def filled(qtbot, panel, ctx):
    qtbot.waitUntil(lambda: panel.preview.done and ctx.service.idle, timeout=30000)


def cached(ctx, z):
    return ctx.service.cached("probe", z, level=ctx.state.level, display=ctx.state.display)


def test_every_position_of_the_path_is_generated_and_meshed_in_the_background(qtbot, panel, ctx):
    filled(qtbot, panel, ctx)
    zs = panel.preview.zs
    assert zs.shape == (len(panel.preview.t), ctx.state.z_dim)
    np.testing.assert_allclose(zs[25], ctx.state.path_z(0.25), atol=1e-6)
    hits = [cached(ctx, z) for z in zs]
    assert all(h is not None and h.mesh is not None for h in hits)
    assert not ctx.service.busy  # background work never shows as busy


def test_a_drag_shows_cached_positions_without_the_worker_and_refines_on_release(qtbot, panel, ctx, wait_idle,
                                                                                 monkeypatch):
    filled(qtbot, panel, ctx)
    sent, request = [], ctx.service.request

    def spy(target, *args, **kwargs):
        sent.append(target)
        return request(target, *args, **kwargs)

    monkeypatch.setattr(ctx.service, "request", spy)
    shown = panel.view_cur.shown_count
    panel.slider.setSliderDown(True)  # a mouse press on the handle
    panel.slider.setValue(733)
    qtbot.waitUntil(lambda: ctx.state.t == pytest.approx(0.733), timeout=5000)
    assert panel.view_cur.shown_count > shown  # shown at once, in the same event
    np.testing.assert_array_equal(panel.channels[1].result.z, panel.preview.zs[73])
    assert "current" not in sent
    panel.slider.setSliderDown(False)
    wait_idle(ctx)
    np.testing.assert_allclose(panel.channels[1].result.z, ctx.state.path_z(0.733), atol=1e-6)
    assert "current" in sent


def test_a_new_endpoint_recomputes_the_path(qtbot, panel, ctx):
    filled(qtbot, panel, ctx)
    old = panel.preview.zs.copy()
    ctx.state.seed_slot("B", 99)
    assert not np.array_equal(panel.preview.zs, old) and not panel.preview.done
    qtbot.waitUntil(lambda: panel.preview.done, timeout=30000)
    assert cached(ctx, panel.preview.zs[-1]) is not None
