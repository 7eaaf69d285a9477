"""Tests that draw with VTK (run under Xvfb: scripts/test.sh does `xvfb-run pytest -m "render and not slow"`)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtWidgets import QWidget

from gan_core.mesh import voxels_to_cubes, voxels_to_mesh
from explorer.thumbs import BASE_COLOR
from explorer.viewport import CameraLink, FrameRenderer, VtkView
from explorer.workers import ShapeResult

pytestmark = pytest.mark.render


def shape_pixels(img: np.ndarray) -> int:
    """Pixels whose colour is a shade of the clay material (the background is grey-blue)."""
    rgb = img[..., :3].astype(np.float32)
    hue = rgb / np.maximum(rgb.sum(-1, keepdims=True), 1)
    clay = np.asarray(BASE_COLOR) / np.sum(BASE_COLOR)
    return int((np.abs(hue - clay).sum(-1) < 0.06).sum())


def result(display: str = "mesh", size: int = 6) -> ShapeResult:
    vox = np.zeros((16, 16, 16), np.float32)
    vox[8 - size // 2:8 + size // 2, 5:11, 2:14] = 1.0
    mesh = voxels_to_mesh(vox) if display == "mesh" else voxels_to_cubes(vox)
    return ShapeResult("t", 1, np.zeros(4), vox, mesh, 0.5, display)


@pytest.fixture
def view(qtbot):
    v = VtkView("test")
    qtbot.addWidget(v)
    v.resize(320, 260)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.close_view()


def test_view_shows_a_shape(view):
    blank = view.image()
    assert shape_pixels(blank) == 0
    view.set_result(result())
    img = view.image()
    assert shape_pixels(img) > 500, "the shape is not visible"


def test_mesh_is_updated_in_place(view):
    view.set_result(result(size=4))
    actor, poly = view._actors["mesh"], view._polys["mesh"]
    n_actors = len(view.plotter.renderer.actors)
    view.set_result(result(size=8))
    assert view._actors["mesh"] is actor and actor.mapper.dataset is poly
    assert len(view.plotter.renderer.actors) == n_actors
    assert poly.n_points == result(size=8).mesh.n_points


def test_voxel_mode_uses_cubes_and_hides_the_mesh(view):
    view.set_result(result("mesh"))
    view.set_result(result("voxels"))
    assert view._actors["voxels"].visibility and not view._actors["mesh"].visibility
    assert shape_pixels(view.image()) > 500


def test_hidden_view_skips_rendering_and_catches_up_when_shown(qtbot, view, monkeypatch):
    calls = []
    monkeypatch.setattr(view.plotter, "update", lambda: calls.append(1))
    view.hide()
    view.set_result(result())
    assert calls == [] and view.visibility.stale
    view.show()
    qtbot.waitUntil(lambda: bool(calls), timeout=5000)
    assert not view.visibility.stale


def test_linked_views_share_one_camera(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    views = [VtkView(f"v{i}", parent) for i in range(2)]
    parent.show()
    link = CameraLink()
    for v in views:
        link.add(v)
    link.set_linked(True)
    cams = {id(v.plotter.renderer.GetActiveCamera()) for v in views}
    assert len(cams) == 1
    link.set_linked(False)
    assert views[0].plotter.renderer.GetActiveCamera() is not views[1].plotter.renderer.GetActiveCamera()
    cam = views[0].plotter.renderer.camera
    assert cam.up == pytest.approx((0, 0, 1))  # axis 2 is up
    for v in views:
        v.close_view()


def test_close_stops_the_interactor(view):
    view.close_view()
    assert view.plotter._closed and not view.plotter.render_timer.isActive()
    view.set_result(result())  # ignored, no crash


def test_offscreen_frames_for_export_are_not_blank():
    fr = FrameRenderer((160, 160), vtk=True)
    try:
        r = result()
        img = fr.frame(r.voxels, r.mesh)
    finally:
        fr.close()
    assert img.shape == (160, 160, 3) and shape_pixels(img) > 200


def test_window_screenshot_shows_shapes_in_every_view(qtbot, window, tmp_path):
    window.state.set_level(0.45)
    qtbot.waitUntil(lambda: window.ctx.service.idle, timeout=20000)
    qtbot.wait(50)
    pix = window.grab_composite()
    img = pix.toImage()
    path = tmp_path / "shot.png"
    img.save(str(path))
    from PIL import Image

    arr = np.asarray(Image.open(path).convert("RGB"))
    for v in window.views():
        if not v.isVisible():
            continue
        pos = v.mapTo(window, v.rect().topLeft())
        crop = arr[pos.y():pos.y() + v.height(), pos.x():pos.x() + v.width()]
        assert shape_pixels(crop) > 100, f"view {v._caption.text()!r} looks empty in the screenshot"


def test_the_benchmarks_frame_counter_counts_renders_that_put_a_new_shape_on_screen(qtbot, view):
    from benchmarks.app_observers import FrameCounter

    counter = FrameCounter(view)  # watches from outside: the view keeps no counters
    view.set_result(result())
    qtbot.waitUntil(lambda: counter.frames == 1, timeout=5000)
    view.plotter.render()  # the same shape again (a camera move, a repaint): a render, not a new frame
    assert counter.renders >= 2 and counter.frames == 1
    counter.detach()
    view.set_result(result())
    view.plotter.render()
    assert counter.frames == 1 and "set_result" not in vars(view)


def test_a_view_never_shown_makes_no_interactor_and_draws_its_shape_when_shown(qtbot):
    v = VtkView("later")
    qtbot.addWidget(v)
    v.resize(320, 260)
    v.set_result(result())  # before it was ever shown: kept, nothing drawn
    assert not v.built and v.visibility.stale
    v.show()
    qtbot.waitExposed(v)
    assert v.built
    assert v._pending is None and v._polys["mesh"].n_points > 0  # the shape kept went to VTK
    assert shape_pixels(v.image()) > 500
    v.close_view()


def test_closing_a_view_never_shown_makes_no_interactor(qtbot):
    v = VtkView("never")
    qtbot.addWidget(v)
    v.set_shared_camera(None)
    v.reset_view()
    v.close_view()
    assert not v.built and v.plotter is None


def test_hidden_tabs_make_their_interactors_when_first_shown(qtbot, window):
    """At launch only the shown workspace's views have an interactor (a native GL window each); another tab's
    views make theirs when the tab is first opened, with the shape they were given meanwhile, and a linked
    camera."""
    hidden = [window.arithmetic.result_view, window.reconstruct.view]
    assert all(v.built for v in window.interpolate.views)
    assert not any(v.built for v in hidden)
    window.state.set_linked(True)
    window.tabs.setCurrentWidget(window.arithmetic)
    view = window.arithmetic.result_view
    qtbot.waitUntil(lambda: view.built and view.shown_count > 0, timeout=20000)
    assert view.plotter.renderer.camera is window.ctx.cameras.camera
    assert shape_pixels(view.image()) > 100
