"""The directions panel: sliders move the current shape along semantic directions; class directions."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.panels.directions import SHOWN, TICKS, DirectionsPanel

PARAMS = {"n_samples": 120, "n_components": 8, "n_named": 2, "n_probe": 3}


@pytest.fixture
def panel(qtbot, ctx, wait_idle, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN3D_CACHE_DIR", str(tmp_path / "cache"))
    p = DirectionsPanel(ctx)
    p.pca_params = dict(PARAMS)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(lambda: len(p.rows) == SHOWN, timeout=60000)
    wait_idle(ctx)
    return p


def _drag(qtbot, ctx, row, ticks):
    ctx.state.break_merge()
    for v in np.linspace(0, ticks, 4)[1:]:
        row.slider.setValue(int(v))
    qtbot.waitUntil(lambda: row.value.text() == f"{ticks / TICKS * row.direction.span:+.1f}", timeout=5000)
    row.slider.sliderReleased.emit()


def test_first_directions_are_shown_and_more_can_be_added(panel):
    assert [r.direction.name for r in panel.rows] == [f"PC{i}" for i in range(1, SHOWN + 1)]  # no bank: unnamed
    assert [panel.more.itemText(i) for i in range(1, panel.more.count())] == ["PC6", "PC7", "PC8"]
    panel.more.activated.emit(2)
    assert panel.rows[-1].direction.name == "PC7" and panel.more.count() == 3
    panel.rows[0].remove.click()
    assert panel.rows[0].direction.name == "PC2" and "PC1" in [panel.more.itemText(i) for i in range(panel.more.count())]


def test_a_drag_moves_the_current_shape_along_the_direction_in_one_undo_step(qtbot, panel, ctx):
    st = ctx.state
    base, undo_before = st.current_z().copy(), st.undo_stack.count()
    row = panel.rows[0]
    _drag(qtbot, ctx, row, 50)
    np.testing.assert_allclose(st.current_z(), base + 0.5 * row.direction.span * row.direction.vector, atol=1e-5)
    assert "PC1 +1.5" in st.current_label() and st.undo_stack.count() == undo_before + 1
    _drag(qtbot, ctx, panel.rows[1], -100)  # a second slider adds its own offset to the same base
    want = base + 0.5 * row.direction.span * row.direction.vector - panel.rows[1].direction.span * panel.rows[1].direction.vector
    np.testing.assert_allclose(st.current_z(), want, atol=1e-5)
    panel.reset.click()
    np.testing.assert_allclose(st.current_z(), base, atol=1e-6)
    assert all(r.slider.value() == 0 for r in panel.rows)


def test_a_change_elsewhere_makes_a_new_base(qtbot, panel, ctx):
    _drag(qtbot, ctx, panel.rows[0], 40)
    ctx.state.set_t(0.2)  # back on the path: the sliders start again from there
    assert panel.rows[0].slider.value() == 0 and panel._base is None
    base = ctx.state.current_z().copy()
    _drag(qtbot, ctx, panel.rows[2], 20)
    d = panel.rows[2].direction
    np.testing.assert_allclose(ctx.state.current_z(), base + 0.2 * d.span * d.vector, atol=1e-5)


def test_with_a_bank_directions_are_named_and_class_directions_offered(qtbot, panel, ctx, tiny_bank, wait_idle):
    ctx.state.set_bank(tiny_bank)
    qtbot.waitUntil(lambda: len(panel.rows) == SHOWN and panel.compute_classes.isEnabled(), timeout=60000)
    wait_idle(ctx)
    assert [r.direction.name.split(":")[0] for r in panel.rows] == [f"PC{i}" for i in range(1, SHOWN + 1)]
    assert panel.rows[0].direction.effects  # named ones carry their measured effects
    panel.start_class_directions(per_class=1, steps=3)  # steps: targets must not share their start z
    qtbot.waitUntil(lambda: panel.pair_box.isVisible(), timeout=60000)
    assert panel.from_class.count() == len(tiny_bank.class_names_)
    panel.from_class.setCurrentText("box")
    panel.to_class.setCurrentText("chair")
    panel.add_pair.click()
    row = panel.rows[-1]
    assert row.direction.name == "box \u2192 chair" and row.direction.kind == "class"
    base = ctx.state.current_z().copy()
    _drag(qtbot, ctx, row, TICKS)
    np.testing.assert_allclose(ctx.state.current_z(), base + row.direction.span * row.direction.vector, atol=1e-5)


def test_window_keeps_map_and_directions_idle_until_their_tab_is_chosen(qtbot, window, tmp_path, monkeypatch,
                                                                         wait_idle):
    monkeypatch.setenv("GAN3D_CACHE_DIR", str(tmp_path / "cache"))
    assert not window.map.visibility.shown() and not window.directions.visibility.shown()  # tabs behind retrieval
    assert window.directions.directions == [] and window.map.lmap is None and not (tmp_path / "cache").exists()
    window.directions.pca_params = dict(PARAMS)
    window.directions_dock.raise_()
    qtbot.waitUntil(lambda: len(window.directions.rows) == SHOWN, timeout=60000)
    assert window.directions.visibility.shown() and not window.map.visibility.shown()
    wait_idle(window.ctx)
