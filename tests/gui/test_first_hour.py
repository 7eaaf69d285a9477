"""What a new user met in the first hour (issue 26): the neighbours panel follows the workspace on screen, a
model that cannot be opened, the map from the command line and in a large window, the arithmetic switch, the
Help menu."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from gan_core.latent import arithmetic


def _names(panel) -> list[int]:
    return [int(panel.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(panel.list.count())]


def _nearest(bank, model, grid, k=5) -> list[int]:
    """The bank rows nearest to ``grid``, computed here, apart from the panel."""
    _dist, idx = bank.query(None, voxels=np.asarray(grid, np.float32)[None], model=model, k=k, kind="last")
    return [int(i) for i in idx[0]]


def test_neighbours_follow_the_shape_of_every_workspace(qtbot, window, tiny_bank, synthetic_set, wait_idle):
    st, panel, model = window.state, window.retrieval, window.state.model
    st.set_bank(tiny_bank, "bank.h5")
    wait_idle(window.ctx)
    on_path = _nearest(tiny_bank, model, model.generate(st.current_z())[0])
    assert _names(panel) == on_path and "current shape" in panel.heading.text()

    window.tabs.setCurrentIndex(1)  # Arithmetic: the result's neighbours, not the path's
    wait_idle(window.ctx)
    z = arithmetic(*(st.slot(s).z for s in "abc"), prior=model.profile.z_prior)
    np.testing.assert_allclose(panel.channel.result.z, z, rtol=1e-6)
    assert _names(panel) == _nearest(tiny_bank, model, model.generate(z)[0])
    assert "arithmetic result" in panel.heading.text()
    st.set_weights((1.0, 0.5, 1.0))  # and it keeps following the result
    wait_idle(window.ctx)
    z2 = arithmetic(*(st.slot(s).z for s in "abc"), (1.0, 0.5, 1.0), prior=model.profile.z_prior)
    np.testing.assert_allclose(panel.channel.result.z, z2, rtol=1e-6)

    window.tabs.setCurrentIndex(2)  # Reconstruct: nothing reconstructed yet, so no list at all
    wait_idle(window.ctx)
    assert panel.list.count() == 0 and "Reconstruct an image" in panel.novelty.text()
    zr = model.sample_z(1, seed=5)[0]
    st.set_reconstruction(zr, "chair.png", "image chair.png")
    wait_idle(window.ctx)
    assert _names(panel) == _nearest(tiny_bank, model, model.generate(zr)[0])

    window.tabs.setCurrentIndex(3)  # Training: no samples yet, then the chosen preview sample
    wait_idle(window.ctx)
    assert panel.list.count() == 0 and "No preview samples" in panel.novelty.text()
    vox = synthetic_set[0]
    for i, th in enumerate(window.training.previews[:3]):
        th.set_voxels(vox[4 + i].astype(np.float32))
    window.training.choose_sample(2)  # a training shape itself: it is its own nearest neighbour
    wait_idle(window.ctx)
    assert _names(panel)[0] == 6 and panel.list.item(0).text().endswith("distance 0.000")
    assert _names(panel) == _nearest(tiny_bank, model, vox[6])
    assert "preview sample 3" in panel.novelty.text()

    window.tabs.setCurrentIndex(0)  # back on the path
    wait_idle(window.ctx)
    assert _names(panel) == on_path


# -- a model that cannot be opened ------------------------------------------------------------------------------
def _app(tmp_path, *argv):
    import os
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "GAN3D_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "explorer.app", *map(str, argv)], env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.parametrize("content", [None, b"not a checkpoint"], ids=["missing file", "not a checkpoint"])
def test_an_explicit_checkpoint_that_cannot_be_opened_is_one_error_and_exit_1(tmp_path, content):
    bad = tmp_path / "bad.pt"
    if content is not None:
        bad.write_bytes(content)
    shot = tmp_path / "shot.png"
    proc = _app(tmp_path, "--checkpoint", bad, "--screenshot", shot, "--quit-after", "60")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gan3d-explorer: cannot open --checkpoint {bad}: "), proc.stderr
    assert not shot.exists()  # never a picture of an untrained stand-in


def test_an_unknown_model_name_lists_the_bundled_ones():
    from gan_core.runtime import list_models

    from explorer.app import ModelError, check_checkpoint_arg

    with pytest.raises(ModelError, match="cannot open --checkpoint no_such_model: no such file, and no bundled model"):
        check_checkpoint_arg("no_such_model")
    for m in list_models():
        check_checkpoint_arg(m.name)  # a bundled name passes


def test_the_file_menu_keeps_the_current_model_when_a_file_cannot_be_opened(qtbot, window, tmp_path, wait_idle):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    model = window.state.model
    window.load_checkpoint(str(bad))
    qtbot.waitUntil(lambda: "bad.pt" in window.messages.text(), timeout=20000)
    wait_idle(window.ctx)
    assert window.state.model is model and window.banner.isHidden()
    assert window.recent.get("checkpoints") == []


# -- the map from the command line, large, with its legend outside ------------------------------------------------
def test_tab_map_and_directions_are_accepted(qtbot, window):
    from explorer.app import parse_args

    assert parse_args(["--tab", "map"]).tab == "map" and parse_args(["--tab", "directions"]).tab == "directions"
    for name, dock in (("map", window.map_dock), ("directions", window.directions_dock)):
        window.show_workspace(name)
        assert not dock.visibleRegion().isEmpty() and window.dock.visibleRegion().isEmpty()
        # wider than the ~380 px side panel it was cramped in (the workspace keeps its minimum width)
        qtbot.waitUntil(lambda: dock.width() >= 500, timeout=5000)


def test_the_map_can_be_enlarged_and_its_legend_is_off_the_plot(qtbot, window, tiny_bank, wait_idle, tmp_path,
                                                                 monkeypatch):
    import pyqtgraph as pg

    monkeypatch.setenv("GAN3D_CACHE_DIR", str(tmp_path / "cache"))
    panel = window.map
    panel.map_params = {"n_samples": 6, "n_pca": 8, "perplexity": 4}
    window.show_workspace("map")
    window.state.set_bank(tiny_bank, "bank.h5")
    wait_idle(window.ctx)
    panel.build_map()
    qtbot.waitUntil(lambda: panel.lmap is not None, timeout=60000)
    wait_idle(window.ctx)
    for name in tiny_bank.class_names_:
        assert name in panel.legend.text()
    assert not [i for i in panel.plot.getPlotItem().items if isinstance(i, pg.LegendItem)]
    assert not [i for i in panel.plot.scene().items() if isinstance(i, pg.LegendItem)]
    assert panel.legend.geometry().top() >= panel.plot.geometry().bottom()  # under the plot, not on it

    qtbot.mouseClick(panel.enlarge, Qt.MouseButton.LeftButton)
    assert window.map_dock.isFloating()
    screen = window.screen().availableGeometry()  # a window of its own, two thirds of the screen or so
    qtbot.waitUntil(lambda: window.map_dock.width() >= 0.6 * screen.width(), timeout=5000)
    assert window.map_dock.height() >= 0.6 * screen.height()
    assert panel.visibility.shown() and panel.lmap is not None  # still the same map, shown
    qtbot.mouseClick(panel.enlarge, Qt.MouseButton.LeftButton)
    assert not window.map_dock.isFloating() and window.map_dock in window.tabifiedDockWidgets(window.dock)
    window.map_dock.setFloating(True)  # floated by its title bar: the button follows
    assert panel.enlarge.isChecked()
    window.map_dock.setFloating(False)
    assert not panel.enlarge.isChecked()


# -- arithmetic in the app ---------------------------------------------------------------------------------------
def test_arithmetic_is_rescaled_by_default_with_a_switch_for_the_raw_sum(qtbot, window, tmp_path):
    from explorer.session import apply_session, load_session, save_session

    st, box = window.state, window.arithmetic.rescale
    a, b, c = (st.slot(s).z.astype(np.float64) for s in "abc")
    assert box.isChecked() and st.rescale
    assert np.linalg.norm(st.arithmetic_z()) == pytest.approx(np.sqrt(32), rel=1e-5)  # tiny16: z of 32
    box.click()
    assert not st.rescale
    np.testing.assert_allclose(st.arithmetic_z(), a - b + c, rtol=1e-5)
    assert "raw sum" in window.arithmetic._caption()
    path = save_session(st, tmp_path / "s.json")
    st.undo_stack.undo()
    assert st.rescale and box.isChecked()  # undo shows in the box
    apply_session(st, load_session(path))
    assert not st.rescale and not box.isChecked()


# -- Help ---------------------------------------------------------------------------------------------------------
def test_help_menu_has_about_shortcuts_and_where_the_docs_are(qtbot, window):
    from explorer.menus import REPO, docs_html

    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    texts = [a.text().replace("&", "") for a in help_menu.actions() if a.text()]
    assert texts == ["Keyboard shortcuts", "Documentation", "About 3D-GAN Explorer"]
    acts = {a.text().replace("&", ""): a for a in help_menu.actions()}
    acts["Keyboard shortcuts"].trigger()
    box = window.commands.help_box
    assert box.isVisible() and "Export current shape" in box.text() and "Ctrl+E" in box.text()
    assert "Undo" in box.text() and "Go to Arithmetic" in box.text()
    box.close()
    acts["About 3D-GAN Explorer"].trigger()
    assert window.state.model.name in window.commands.help_box.text() and "Wu" in window.commands.help_box.text()
    window.commands.help_box.close()
    if (REPO / "README.md").is_file():
        assert str(REPO / "README.md") in docs_html() and "gan3d --help" in docs_html()
