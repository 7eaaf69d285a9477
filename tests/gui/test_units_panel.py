"""The units panel: D's units scored on the bank's shapes off the GUI thread, the top shapes as thumbnails with
heat maps, accessible names, and the dock in the window."""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.runtime import unit_responses

from explorer.panels.units import UnitsPanel
from explorer.thumbs import voxel_pixmap
from explorer.widgets import unnamed_controls


@pytest.fixture
def panel(qtbot, ctx, tiny_bank, wait_idle):
    ctx.state.set_bank(tiny_bank)
    p = UnitsPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(lambda: p.heat_of == (0, 0), timeout=30000)  # scored on a worker, then the heat maps
    wait_idle(ctx)
    return p


def shown(p):
    return [t for t in p.thumbs if not t.isHidden()]


def test_top_shapes_heat_maps_and_names(qtbot, panel, ctx, tiny_bank, tiny_model, wait_idle):
    want = unit_responses(tiny_model, tiny_bank).top(0, 0, 8)
    thumbs = shown(panel)
    assert [t.bank_index for t in thumbs] == want.indices.tolist()
    for rank, (t, i) in enumerate(zip(thumbs, want.indices), 1):
        name = tiny_bank.label_name(int(i))
        assert t.accessibleName() == f"Top shape {rank} of unit 0: {name} #{i}"
        assert t.text().startswith(f"{name} #{i}\n") and "click to load it" in t.toolTip()
        np.testing.assert_array_equal(t.voxels, tiny_bank.thumbnail(int(i)))
        heat = t.icon().pixmap(104, 104).toImage()
        assert not heat.isNull() and heat != voxel_pixmap(t.voxels, 0.5, 104).toImage()  # coloured by the heat map
    assert not unnamed_controls(panel)
    assert panel.layer.maximum() == 1 and panel.unit.maximum() == 15  # tiny16: layers 0-1, 16 units in layer 0

    panel.layer.setValue(1)
    panel.unit.setValue(5)
    panel.k.setValue(3)
    assert panel.unit.maximum() == 31 and "32 units on a 4\u00b3 grid" in panel.about.text()
    qtbot.waitUntil(lambda: panel.heat_of == (1, 5), timeout=30000)
    wait_idle(ctx)
    assert [t.bank_index for t in shown(panel)] == unit_responses(tiny_model, tiny_bank).top(1, 5, 3).indices.tolist()
    assert shown(panel)[0].accessibleName().startswith("Top shape 1 of unit 5: ")

    first = shown(panel)[0]
    first.click()  # loads the training shape, projected into z
    qtbot.waitUntil(lambda: f"#{first.bank_index}" in ctx.state.current_label(), timeout=60000)
    wait_idle(ctx)


def test_without_a_bank_the_panel_says_what_to_do(qtbot, ctx, wait_idle):
    p = UnitsPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    assert not shown(p) and not p.open_bank.isHidden() and "Open a feature bank" in p.status.text()
    assert not unnamed_controls(p)


def test_the_window_has_the_units_dock(qtbot, window, tiny_bank, wait_idle):
    assert window.units_dock.accessibleName() == "D's units panel"
    from PyQt6.QtWidgets import QMenu

    menus = window.menuBar().findChildren(QMenu)
    assert any(window.units_dock.toggleViewAction() in m.actions() for m in menus)  # View > D's units
    window.state.set_bank(tiny_bank)
    window.show_workspace("units")
    qtbot.waitUntil(lambda: len(shown(window.units)) == 8, timeout=30000)
    wait_idle(window.ctx)


def test_thumbnails_take_a_colour_per_voxel():
    from explorer.thumbs import BASE_COLOR, shade_voxels

    grid = np.zeros((16, 16, 16), np.uint8)
    grid[3:13, 3:13, 2:14] = 1
    plain = shade_voxels(grid)
    same = shade_voxels(grid, colors=np.broadcast_to(BASE_COLOR, (16, 16, 16, 3)))
    seen = plain[..., 3] > 0
    np.testing.assert_array_equal(plain[..., 3], same[..., 3])
    np.testing.assert_array_equal(plain[seen], same[seen])  # one colour everywhere: the plain picture
    colours = np.zeros((16, 16, 16, 3), np.float32)
    colours[:, :, 8:] = (1.0, 0.0, 0.0)  # the top half red, the bottom blue
    colours[:, :, :8] = (0.0, 0.0, 1.0)
    two = shade_voxels(grid, size=96, colors=colours).astype(int)
    rows = np.flatnonzero(seen.any(axis=1))
    top, bottom = two[rows[0] + 4][seen[rows[0] + 4]], two[rows[-1] - 4][seen[rows[-1] - 4]]
    assert (top[:, 0] > top[:, 2]).all() and (bottom[:, 2] > bottom[:, 0]).all()
