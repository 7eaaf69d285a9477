"""Off-screen training renders: images, view ranges, determinism, the HDF5 cache round trip and its resume."""

import json

import h5py
import numpy as np
import pytest

from gan_core.cli import main
from gan_core.data.render import ELEVATION_RANGE, Renderer, render_shapes, shape_rng
from gan_core.data.render_cache import RenderSet, render_dataset
from gan_core.data.synthetic import chair, make_synthetic_dataset, save_npz
from gan_core.errors import BadInputError

S = 64


@pytest.fixture
def small_npz(tmp_path):
    return save_npz(tmp_path / "s.npz", *make_synthetic_dataset(2, resolution=16, classes=["chair", "table"]))


@pytest.mark.render
def test_views_show_the_object_from_all_round():
    with Renderer(S) as r:
        images, az, el = r.render_views(chair(16), 6, shape_rng(0, 0))
        again, az2, _ = r.render_views(chair(16), 6, shape_rng(0, 0))
        empty, _, _ = r.render_views(np.zeros((16, 16, 16), np.uint8), 2, shape_rng(0, 1))
    assert images.shape == (6, S, S, 3) and images.dtype == np.uint8
    assert ((0 <= az) & (az < 360)).all() and ((ELEVATION_RANGE[0] <= el) & (el <= ELEVATION_RANGE[1])).all()
    assert np.ptp(np.sort(az)) > 180  # spread all round
    assert np.array_equal(images, again) and np.array_equal(az, az2)  # (seed, row) decides everything
    for im in images:  # something in the middle that differs from the corners (the background)
        centre = im[S // 4:3 * S // 4, S // 4:3 * S // 4].reshape(-1, 3).astype(int)
        assert np.abs(centre - im[0, 0].astype(int)).max(axis=1).mean() > 5 or im.std() > 5
    assert empty.shape == (2, S, S, 3)  # an empty grid gives background-only images, not an error


@pytest.mark.render
def test_cache_round_trip_and_resume(small_npz, tmp_path):
    out = tmp_path / "r.h5"
    seen = []

    def stop_after_two(done, total):
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_dataset(small_npz, out, views=2, size=S, seed=5, progress=stop_after_two)
    assert not out.exists() and (tmp_path / "r.partial.h5").exists()
    stats = render_dataset(small_npz, out, views=2, size=S, seed=5)
    assert stats.rendered_now == 2 and stats.n_shapes == 4  # the two done shapes were skipped
    assert out.exists() and not (tmp_path / "r.partial.h5").exists()
    with RenderSet(out) as rs:
        assert (rs.views, rs.size, rs.seed, len(rs)) == (2, S, 5, 4)
        assert rs.images(rs.rows_for([3, 0]), [1, 0]).shape == (2, S, S, 3)
        with pytest.raises(BadInputError, match="not rendered"):
            rs.rows_for([7])
    with h5py.File(out) as f:
        assert f["images"].shape == (4, 2, S, S, 3) and f["images"].chunks == (1, 2, S, S, 3)
        assert f["azimuth"].shape == (4, 2) and f["done"][()].all() and list(f["shape_index"][()]) == [0, 1, 2, 3]
        assert len(f.attrs["data_sha256"]) == 64 and f.attrs["complete"]
        resumed = f["images"][()]
    # the resumed cache equals an uninterrupted render, and a finished cache is not redone
    fresh, _, _ = render_shapes(np.load(small_npz)["voxels"], views=2, size=S, seed=5)
    assert np.array_equal(resumed, fresh)
    assert render_dataset(small_npz, out, views=2, size=S, seed=5).rendered_now == 0
    with pytest.raises(BadInputError, match="views=2, not 3"):
        render_dataset(small_npz, out, views=3, size=S, seed=5)


@pytest.mark.render
def test_render_command(small_npz, tmp_path, capsys):
    rc = main(["render", "--data", str(small_npz), "--out", str(tmp_path / "c.h5"), "--views", "1", "--size",
               str(S), "--limit", "2"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["shapes"] == 2 and rec["rendered_now"] == 2 and rec["renders_per_s"] > 0


def test_render_command_errors_are_one_line(small_npz, tmp_path, capsys):
    cases = [
        (["--data", str(small_npz), "--out", str(tmp_path / "r.png")], "BadInputError: --out must end in .h5, got r.png"),
        (["--data", str(small_npz), "--out", str(tmp_path / "r.h5"), "--views", "0"],
         "BadInputError: --views must be in 1..64, got 0"),
        (["--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "r.h5")],
         f"BadFileError: --data {tmp_path / 'none.npz'}: no such file"),
    ]
    for argv, line in cases:
        rc = main(["render", *argv])
        out, err = capsys.readouterr()
        assert rc == 1 and err.strip() == line and out == ""


def test_render_set_refuses_foreign_and_unfinished_files(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["voxels"] = np.zeros((1, 4, 4, 4))
    with pytest.raises(Exception, match="not a gan3d render cache"):
        RenderSet(tmp_path / "x.h5")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f["images"] = np.zeros((1, 1, 4, 4, 3), np.uint8)
        f["shape_index"] = np.zeros(1, np.int64)
        f.attrs["gan3d_renders"] = 1
        f.attrs["complete"] = False
    with pytest.raises(Exception, match="incomplete"):
        RenderSet(tmp_path / "y.h5")
