"""The photo render style (domain randomisation): stored in the cache, never resumed into a cache of another
style, and its images differ from clean renders in the ways promised (busy backgrounds, a JPEG round trip,
detector-like crops inside the frame, the same images for the same seed), staying (3, S, S) float in [0, 1] for
the encoder."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import gan_core.data.render_photo as photo
from gan_core.cli import main
from gan_core.data.render import Renderer, render_shapes
from gan_core.data.render_cache import RenderSet, render_dataset
from gan_core.data.render_scene import shape_rng
from gan_core.data.synthetic import chair, make_synthetic_dataset, save_npz, table
from gan_core.errors import BadInputError
from tests.test_reliability_render_cache import FakeRenderer

S = 64


@pytest.fixture
def small_npz(tmp_path):
    return save_npz(tmp_path / "s.npz", *make_synthetic_dataset(2, resolution=16, classes=["chair", "table"]))


def test_style_is_stored_and_a_resume_with_another_style_is_refused(small_npz, tmp_path, monkeypatch):
    monkeypatch.setattr("gan_core.data.render_cache.Renderer", FakeRenderer)
    monkeypatch.setattr("gan_core.data.render_cache.COMMIT_SECONDS", 0.0)
    out, part = tmp_path / "r.h5", tmp_path / "r.partial.h5"

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_dataset(small_npz, out, views=2, size=16, seed=1, style="photo", progress=stop_after_two)
    with pytest.raises(BadInputError, match="started with --style photo, not clean"):
        render_dataset(small_npz, out, views=2, size=16, seed=1)  # the default style is clean
    assert part.exists(), "a refused resume must keep the partial file"
    assert render_dataset(small_npz, out, views=2, size=16, seed=1, style="photo").rendered_now == 2
    with RenderSet(out) as rs:
        assert rs.style == "photo"
    with pytest.raises(BadInputError, match="style=photo, not clean"):
        render_dataset(small_npz, out, views=2, size=16, seed=1, style="clean")
    with pytest.raises(BadInputError, match="unknown render style 'cad'"):
        render_dataset(small_npz, tmp_path / "x.h5", views=2, size=16, seed=1, style="cad")

    clean = render_dataset(small_npz, tmp_path / "c.h5", views=2, size=16, seed=1).path
    with h5py.File(clean, "r+") as f:
        assert f.attrs["style"] == "clean"
        del f.attrs["style"]  # a cache made before styles existed
    with RenderSet(clean) as rs:
        assert rs.style == "clean"
    assert render_dataset(small_npz, clean, views=2, size=16, seed=1).rendered_now == 0  # still valid as clean
    with pytest.raises(BadInputError, match="style=clean, not photo"):
        render_dataset(small_npz, clean, views=2, size=16, seed=1, style="photo")


def test_render_command_style_flag(small_npz, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("gan_core.data.render_cache.Renderer", FakeRenderer)
    out = tmp_path / "p.h5"
    assert main(["render", "--data", str(small_npz), "--out", str(out), "--views", "1", "--size", "16",
                 "--style", "photo"]) == 0
    assert json.loads(capsys.readouterr().out)["style"] == "photo"
    rc = main(["render", "--data", str(small_npz), "--out", str(out), "--views", "1", "--size", "16"])
    _, err = capsys.readouterr()
    assert rc == 1 and err.strip() == f"BadInputError: {out} was rendered from style=photo, not clean; delete it " \
                                      "or choose another path"


def test_detector_box_stays_inside_the_frame_and_is_off_centre():
    g = np.random.default_rng(0)
    centres = []
    for _ in range(500):
        h, w = (int(v) for v in g.integers(3, 400, 2))
        t, b, l, r = photo.detector_box(h, w, S, g)
        assert 0 <= t < b <= S and 0 <= l < r <= S
        fill = max(b - t, r - l) / S
        assert photo.FILL_RANGE[0] - 1.0 / S <= fill <= photo.FILL_RANGE[1]
        centres.append(((t + b) / 2, (l + r) / 2))
    c = np.array(centres)
    assert c.std(axis=0).min() > 2 and np.abs(c - S / 2).max() > S / 8  # not always centred


def test_finish_always_ends_in_a_jpeg_round_trip():
    g = np.random.default_rng(1)
    img = np.zeros((S, S, 3), np.float32)
    img[10:40, 20:50] = (0.9, 0.2, 0.1)  # sharp edges: JPEG rings around them
    u8 = (img * 255 + 0.5).astype(np.uint8)
    for q in (25, 60, 95):
        out = photo.apply_finish(img, photo.Finish.identity(q), g)
        assert np.array_equal(out, photo.jpeg_round_trip(u8, q)) and not np.array_equal(out, u8)
    qualities = {photo.draw_finish(g).jpeg_quality for _ in range(200)}
    assert min(qualities) >= photo.JPEG_QUALITY[0] and max(qualities) <= photo.JPEG_QUALITY[1]
    assert len(qualities) > 20


def test_photo_backgrounds_are_not_uniform():
    g = np.random.default_rng(2)
    kinds = set()
    for _ in range(60):
        kind, bg = photo.photo_background(S, g)
        kinds.add(kind)
        assert bg.shape == (S, S, 3) and bg.dtype == np.float32 and 0 <= bg.min() and bg.max() <= 1
        assert bg.reshape(-1, 3).std(axis=0).max() > 0.01, kind
    assert kinds == set(photo.PHOTO_BACKGROUNDS)


@pytest.mark.render
def test_photo_renders_differ_from_clean_ones_as_promised(monkeypatch):
    rounds = []
    real = photo.jpeg_round_trip
    monkeypatch.setattr(photo, "jpeg_round_trip", lambda u8, q: rounds.append(q) or real(u8, q))
    grids = np.stack([chair(16), table(16)])
    distractors = np.stack([table(16, rng=5)])
    with Renderer(S, style="photo", distractors=distractors) as r:
        images, az, el = r.render_views(grids[0], 6, shape_rng(0, 0))
        info = list(r.last_info)
        again, _, _ = r.render_views(grids[0], 6, shape_rng(0, 0))
    assert rounds == [i["jpeg_quality"] for i in info] * 2  # every image went through one JPEG round trip
    assert images.shape == (6, S, S, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again)  # same seed and row: the same images
    fresh, _, _ = render_shapes(grids[:1], views=6, size=S, seed=0, style="photo", distractors=distractors)
    assert np.array_equal(fresh[0], images)  # in another renderer too (the distractor pool is fixed)
    assert ((photo.PHOTO_ELEVATION_RANGE[0] <= el) & (el <= photo.PHOTO_ELEVATION_RANGE[1])).all()
    clean, _, _ = render_shapes(grids[:1], views=6, size=S, seed=0)
    assert not np.array_equal(clean, fresh)
    fills = []
    for im, i in zip(images, info):
        t, b, l, r = i["box"]
        assert 0 <= t < b <= S and 0 <= l < r <= S  # the crop box is inside the frame
        fills.append(max(b - t, r - l) / S)
        border = np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]]).astype(np.float32)
        assert border.std(axis=0).max() > 3  # the background is not uniform
    assert min(fills) >= photo.FILL_RANGE[0] - 1.0 / S and max(fills) <= 1.0
    # images reach the encoder as (3, S, S) float in [0, 1], as clean ones do
    from gan_core.vae_train import images_to_tensor

    x = images_to_tensor(images, "cpu")
    assert tuple(x.shape) == (6, 3, S, S) and str(x.dtype) == "torch.float32"
    assert 0 <= float(x.min()) and float(x.max()) <= 1


@pytest.mark.render
def test_photo_cache_resumes_to_the_uninterrupted_cache(small_npz, tmp_path):
    out = tmp_path / "r.h5"

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_dataset(small_npz, out, views=2, size=S, seed=4, style="photo", progress=stop_after_two)
    render_dataset(small_npz, out, views=2, size=S, seed=4, style="photo")
    whole = render_dataset(small_npz, tmp_path / "w.h5", views=2, size=S, seed=4, style="photo").path
    with h5py.File(out) as a, h5py.File(whole) as b:
        assert a.attrs["style"] == "photo" and np.array_equal(a["images"][()], b["images"][()])
