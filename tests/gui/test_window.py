"""The main window: size, accessibility, menus, status bar, messages instead of tracebacks, hot-swap,
sessions and export through the window, the app's start-up without a trained model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QAbstractButton

from explorer.widgets import unnamed_controls
from explorer.workers import ShapeResult


def test_window_fits_a_1600x1000_screen(window):
    assert window.width() <= 1600 and window.height() <= 1000
    assert (window.width(), window.height()) == (1400, 900)
    assert window.minimumWidth() <= 1024 and window.minimumHeight() <= 700
    assert window.windowTitle().startswith("3D-GAN Explorer")


def test_every_control_has_an_accessible_name_and_tooltip(window):
    for i in range(window.tabs.count()):  # hidden tabs too
        window.tabs.setCurrentIndex(i)
    missing = unnamed_controls(window)
    assert not missing, [f"{type(w).__name__} {w.objectName()} in {type(w.parentWidget()).__name__}" for w in missing]
    named = [w for w in window.findChildren(QAbstractButton) if w.accessibleName()]
    assert len(named) > 20
    for menu_action in window.menuBar().actions():
        for act in menu_action.menu().actions():
            assert act.isSeparator() or act.menu() is not None or act.toolTip()


def test_keyboard_focus_moves_through_the_interpolation_controls(qtbot, window):
    p = window.interpolate
    p.edit_a.seed.setFocus()
    seen = set()
    for _ in range(40):
        window.focusNextChild()
        seen.add(window.focusWidget())
    assert {p.slider, p.spin, p.mode, p.play} <= seen


def test_status_bar_shows_device_model_and_generation_time(window):
    assert window.device_label.text().startswith("Device: ")
    assert "tiny16" in window.model_label.text()
    assert "ms" in window.time_label.text()
    shapes = ShapeResult("a", 1, np.zeros((2, 200)), np.zeros((2, 16, 16, 16)), generate_ms=0.004)
    window._generated(shapes)  # both served from the cache
    assert window.time_label.text() == "Generated 2 shapes in under 1 ms"
    window._generated(ShapeResult("a", 1, np.zeros(200), np.zeros((16, 16, 16)), generate_ms=12.4, mesh_ms=3.6))
    assert window.time_label.text() == "Generated in 12 ms, meshed in 4 ms"


def test_view_actions_and_iso_slider_go_through_the_state(qtbot, window):
    st = window.state
    window.commands.voxels.trigger()
    assert st.display == "voxels"
    window.commands.level.setValue(0.3)
    assert st.level == pytest.approx(0.3)
    window.commands.link.trigger()
    assert st.linked is False
    window.commands.undo.trigger()
    assert st.level == pytest.approx(0.5) and window.commands.level.value() == pytest.approx(0.5)
    window.commands.undo.trigger()
    assert st.display == "mesh" and window.commands.mesh.isChecked()
    window.commands.redo.trigger()
    assert st.display == "voxels"


def test_errors_are_messages_in_the_window_never_tracebacks(qtbot, window, tmp_path):
    from explorer.app import install_excepthook

    window.load_checkpoint(str(tmp_path / "missing.pt"))
    qtbot.waitUntil(lambda: window.messages.isVisible(), timeout=10000)
    assert "missing.pt" in window.messages.text() and "Traceback" not in window.messages.text()
    old = sys.excepthook
    try:
        install_excepthook(window.ctx.notifier.error)
        sys.excepthook(ZeroDivisionError, ZeroDivisionError("division by zero"), None)
        qtbot.waitUntil(lambda: "internal error: ZeroDivisionError" in window.messages.text(), timeout=5000)
    finally:
        sys.excepthook = old
    window.messages.dismiss()
    assert not window.messages.isVisible()


def test_long_jobs_show_progress_and_can_be_cancelled(qtbot, window):
    import threading

    started = threading.Event()

    def long(report):
        started.set()
        for i in range(100_000):
            report(i, 100_000)
            threading.Event().wait(0.001)

    window.ctx.jobs.start("Projecting chair #3", long, progress=True)
    assert started.wait(10)
    qtbot.waitUntil(lambda: window.progress.isVisible() and window.cancel.isVisible(), timeout=5000)
    qtbot.mouseClick(window.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.ctx.jobs.busy, timeout=10000)
    assert "Projecting chair #3: cancelled" in window.messages.text()
    assert not window.progress.isVisible() and not window.cancel.isVisible()


def test_hot_swapping_a_checkpoint_updates_every_view(qtbot, window, tmp_path, wait_idle):
    from gan_core.checkpoint import save_checkpoint
    from gan_core.runtime import load_model

    other = load_model(profile="tiny16", device="cpu", precision="fp32")
    for p in other.generator.parameters():
        p.data.mul_(1.5)
    ckpt = save_checkpoint(tmp_path / "other.pt", profile=other.profile, models={"generator": other.generator})
    before = {v: v.shown_count for v in window.views() if v.isVisible()}
    z_a = window.state.slot("A").z.copy()
    window.load_checkpoint(str(ckpt))
    qtbot.waitUntil(lambda: window.state.model is not None and window.state.model.name == "other", timeout=20000)
    wait_idle(window.ctx)
    assert all(v.shown_count > n for v, n in before.items())
    np.testing.assert_array_equal(window.state.slot("A").z, z_a)  # same z, new weights
    assert "other" in window.model_label.text()


def test_model_menu_loads_a_bundled_model_by_its_registry_name(qtbot, window, tmp_path, monkeypatch, wait_idle):
    from gan_core.checkpoint import save_checkpoint
    from gan_core.runtime import list_models, load_model

    other = load_model(profile="tiny16", device="cpu", precision="fp32")
    save_checkpoint(tmp_path / "weights_file.pt", profile=other.profile, models={"generator": other.generator})
    reg = tmp_path / "models.json"
    reg.write_text('{"default": "chairs", "models": [{"name": "chairs", "checkpoint": "weights_file.pt"}]}')
    monkeypatch.setattr("gan_core.runtime.list_models", lambda registry=reg: list_models(registry))
    monkeypatch.setattr("explorer.menus.list_models", lambda: list_models(reg))
    from explorer.menus import fill_model_menu

    fill_model_menu(window)
    act = next(a for a in window.commands.model_menu.actions() if a.text() == "chairs")
    act.trigger()
    qtbot.waitUntil(lambda: window.state.model.name == "chairs", timeout=20000)  # the entry's name, not the file's
    wait_idle(window.ctx)
    fill_model_menu(window)
    assert next(a for a in window.commands.model_menu.actions() if a.text() == "chairs").isChecked()


def test_session_save_and_open_through_the_window(qtbot, window, tmp_path):
    window.state.seed_slot("A", 55)
    window.state.set_t(0.2)
    window.save_session(str(tmp_path / "s.json"))
    window.state.seed_slot("A", 1)
    window.state.set_t(0.9)
    window.open_session(str(tmp_path / "s.json"))
    assert window.state.slot("A").seed == 55 and window.state.t == pytest.approx(0.2)
    assert window.interpolate.slider.value() == 200
    assert window.recent.get("sessions")[0].endswith("s.json")
    (tmp_path / "junk.json").write_text("[]")
    window.open_session(str(tmp_path / "junk.json"))
    assert "not a gan3d session" in window.messages.text()


def test_opening_a_session_updates_every_seed_box(qtbot, window, tmp_path):
    """Issue 26, item 7: after File > Open session the seed boxes showed the seeds from before. A slot holding a
    seed's shape shows that seed; one holding a shape of no seed (a training shape, a reconstruction) a dash."""
    st = window.state
    st.seed_slot("A", 55)
    st.set_slot("B", st.slot("A").z * 0.5, "training shape 12 (chair)")
    st.seed_slot("a", 21)
    st.set_slot("b", st.slot("A").z, "the reconstruction of chair.png")
    window.save_session(str(tmp_path / "s.json"))
    st.seed_slot("A", 1)
    st.seed_slot("B", 2)
    st.seed_slot("a", 3)
    st.seed_slot("b", 4)
    window.open_session(str(tmp_path / "s.json"))
    boxes = {"A": window.interpolate.edit_a, "B": window.interpolate.edit_b, **window.arithmetic.editors}
    shown = {name: (ed.seed.text(), ed.label.text()) for name, ed in boxes.items()}
    assert shown["A"] == ("55", "seed 55") and shown["a"] == ("21", "seed 21")
    assert shown["B"] == ("\u2014", "training shape 12 (chair)") and shown["b"] == ("\u2014", "the reconstruction of chair.png")
    assert shown["c"][0] == str(st.slot("c").seed)
    boxes["B"].seed.setValue(2)  # a seed typed into a dashed box fills the slot as before
    assert st.slot("B").seed == 2 and boxes["B"].label.text() == "seed 2"
    st.undo_stack.undo()
    assert boxes["B"].seed.text() == "\u2014" and st.slot("B").seed is None


@pytest.mark.parametrize("suffix", [".stl", ".glb", ".binvox"])
def test_export_current_shape(qtbot, window, tmp_path, suffix):
    window.state.set_level(0.45)  # untrained tiny16 output hovers around 0.5
    path = tmp_path / f"shape{suffix}"
    window.export_current(str(path))
    qtbot.waitUntil(lambda: not window.ctx.jobs.busy, timeout=10000)
    assert path.exists() and path.stat().st_size > 0, window.messages.text()


def test_screenshot_writes_the_whole_window(qtbot, window, tmp_path):
    from PyQt6.QtGui import QImage

    path = tmp_path / "shot.png"
    assert window.save_screenshot(str(path))
    img = QImage(str(path))
    assert (img.width(), img.height()) == (window.width(), window.height())


def test_start_without_a_trained_model_shows_the_banner(qtbot, monkeypatch):
    from explorer.app import initial_model, parse_args

    monkeypatch.setattr("gan_core.runtime.list_models", lambda *a, **k: [])  # nothing bundled
    model, banner = initial_model(parse_args(["--profile", "tiny16"]))
    assert model.checkpoint_path is None and model.profile.name == "tiny16"
    assert banner.startswith("No trained model installed: showing an untrained generator")


def test_window_closes_its_views_and_workers(qtbot, tiny_model, settings):
    from explorer.state import SessionState
    from explorer.window import MainWindow

    win = MainWindow(SessionState(tiny_model), settings)
    qtbot.addWidget(win)
    win.show()
    win.close()
    assert win._closed and not win.ctx.service._thread.is_alive()


def test_screenshot_of_a_workspace_without_shapes_exits_cleanly(tmp_path):
    """--screenshot on the Training tab (no 3D view there): the PNG is written and the exit is 0."""
    import os
    import subprocess
    import sys

    from gan_core.checkpoint import save_checkpoint
    from gan_core.runtime import load_model

    m = load_model(profile="tiny16", device="cpu", precision="fp32")
    ckpt = save_checkpoint(tmp_path / "tiny.pt", profile=m.profile, models={"generator": m.generator})
    shot = tmp_path / "training.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "GAN3D_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "explorer.app",
                           "--checkpoint", str(ckpt), "--tab", "training", "--screenshot", str(shot),
                           "--quit-after", "60"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.stat().st_size > 1000 and "Traceback" not in proc.stderr


def test_the_bank_opens_after_the_first_shape_is_on_screen(qtbot):
    """Opening the bank (scikit-learn import, HDF5 read) waits for the first shape; a workspace without visible
    views does not wait; a view that never draws does not block it forever."""
    from types import SimpleNamespace

    from explorer.app import AfterFirstShape

    view = SimpleNamespace(shown_count=0, isVisible=lambda: True)
    window = SimpleNamespace(views=lambda: [view])
    opened = []
    d = AfterFirstShape(window, lambda: opened.append("bank"))
    qtbot.wait(200)
    assert opened == [] and d.pending
    view.shown_count = 1
    qtbot.waitUntil(lambda: opened == ["bank"], timeout=2000)
    assert not d.pending
    qtbot.wait(150)
    assert opened == ["bank"]  # once
    hidden = SimpleNamespace(views=lambda: [SimpleNamespace(shown_count=0, isVisible=lambda: False)])
    none = AfterFirstShape(hidden, lambda: opened.append("no views"))
    never = SimpleNamespace(views=lambda: [SimpleNamespace(shown_count=0, isVisible=lambda: True)])
    stuck = AfterFirstShape(never, lambda: opened.append("deadline"), limit_s=0.2)
    qtbot.waitUntil(lambda: "no views" in opened and "deadline" in opened, timeout=3000)
    assert not stuck.pending and not none.pending
