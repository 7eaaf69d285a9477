"""The latent map panel: opening, building, live current shape and path, hover thumbnails, click to load."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.panels.map import PATH_STEPS, MapPanel

PARAMS = {"n_samples": 6, "n_pca": 8, "perplexity": 4}


@pytest.fixture
def panel(qtbot, ctx, tiny_bank, wait_idle, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN3D_CACHE_DIR", str(tmp_path / "cache"))
    p = MapPanel(ctx)
    p.map_params = dict(PARAMS)
    qtbot.addWidget(p)
    p.show()
    ctx.state.set_bank(tiny_bank)
    wait_idle(ctx)
    return p


def _built(qtbot, panel, ctx, wait_idle):
    panel.build_map()
    qtbot.waitUntil(lambda: panel.lmap is not None, timeout=60000)
    wait_idle(ctx)
    return panel.lmap


def test_without_a_bank_it_says_what_to_do(qtbot, ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN3D_CACHE_DIR", str(tmp_path))
    p = MapPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    assert "Open a feature bank" in p.status.text() and not p.build.isEnabled() and p.lmap is None


def test_a_hidden_panel_does_no_work(qtbot, ctx, tiny_bank):
    p = MapPanel(ctx)
    qtbot.addWidget(p)
    ctx.state.set_bank(tiny_bank)
    assert not ctx.jobs.busy and p.lmap is None and p.visibility.stale


def test_build_then_draw_the_current_shape_and_path_live(qtbot, panel, ctx, tiny_bank, wait_idle):
    assert "No map of this bank yet" in panel.status.text() and panel.build.isEnabled()
    lmap = _built(qtbot, panel, ctx, wait_idle)
    assert len(lmap) == len(tiny_bank) + PARAMS["n_samples"] and not panel.build.isEnabled()
    assert len(panel._class_items) == 2 * len(tiny_bank.class_names_)
    qtbot.waitUntil(lambda: len(panel.current_item.data) == 1, timeout=20000)
    model = ctx.state.model
    want = lmap.place_rows(tiny_bank.search_rows(model.features(model.generate(ctx.state.current_z()))))
    star = panel.current_item.data[0]
    np.testing.assert_allclose([star["x"], star["y"]], want[0], atol=1e-4)
    x, _ = panel.path_item.getData()
    assert len(x) == PATH_STEPS + 1  # A -> B, no keyframes
    ctx.state.insert_key(1, model.sample_z(1, seed=9)[0], "k")
    qtbot.waitUntil(lambda: len(panel.path_item.getData()[0]) == 2 * PATH_STEPS + 1, timeout=20000)
    ctx.state.set_t(0.9)
    qtbot.waitUntil(lambda: not np.allclose([panel.current_item.data[0]["x"], panel.current_item.data[0]["y"]],
                                            [star["x"], star["y"]]), timeout=20000)


def test_hover_shows_a_thumbnail_and_click_loads_the_shape(qtbot, panel, ctx, wait_idle):
    lmap = _built(qtbot, panel, ctx, wait_idle)
    x, y = lmap.coords[3]
    assert panel.row_at(x, y) == 3
    far = lmap.coords.max(0) + 1000 * np.ptp(lmap.coords, axis=0)
    assert panel.row_at(*far) is None
    panel.show_preview(3)
    assert not panel.preview.pixmap().isNull() and lmap.class_names[int(lmap.labels[3])] in panel.preview_text.text()
    sample_row = lmap.n_bank + 2
    panel.show_preview(sample_row)
    assert "generated sample 2" in panel.preview_text.text()
    panel.activate(sample_row)
    np.testing.assert_array_equal(ctx.state.current_z(), lmap.sample_z[2])
    panel.activate(3)  # a training shape: projected into z on a worker
    qtbot.waitUntil(lambda: "projected" in ctx.state.current_label(), timeout=60000)
    panel.samples.setChecked(False)
    assert panel.row_at(*lmap.coords[sample_row]) != sample_row
    assert not panel._class_items[1].isVisible()


def test_a_built_map_opens_from_the_cache_next_time(qtbot, panel, ctx, wait_idle):
    lmap = _built(qtbot, panel, ctx, wait_idle)
    other = MapPanel(ctx)
    other.map_params = dict(PARAMS)
    qtbot.addWidget(other)
    other.show()
    qtbot.waitUntil(lambda: other.lmap is not None, timeout=20000)
    np.testing.assert_array_equal(other.lmap.coords, lmap.coords)
    ctx.state.set_bank(None)
    assert other.lmap is None and not other.build.isEnabled()
