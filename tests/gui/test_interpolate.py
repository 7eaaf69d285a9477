"""Interpolation panel: state <-> widgets, live slider, filmstrip batch, play, export (offscreen stand-in views)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from explorer.panels.interpolate import FRAMES, STEPS, InterpolatePanel


@pytest.fixture
def panel(qtbot, ctx, wait_idle):
    p = InterpolatePanel(ctx)
    qtbot.addWidget(p)
    p.show()
    wait_idle(ctx)
    yield p
    p.close_views()


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
