"""The render cache on a full disk or a read-only directory: one clear BadFileError, never an HDF5 crash, no
finished cache that is wrong, and a partial file that the next run resumes to the cache an uninterrupted run
makes (or none at all).

A fake renderer stands in for the off-screen one (images from the shape's own random stream, incompressible,
so the file grows by a known amount per shape): these tests need no display and take seconds."""

from __future__ import annotations

import gc

import h5py
import numpy as np
import pytest

import gan_core.guarded_h5 as guarded_h5
from gan_core.cli import main
from gan_core.data.render_cache import render_dataset
from gan_core.data.render_scene import view_angles
from gan_core.data.synthetic import make_synthetic_dataset, save_npz
from gan_core.errors import BadFileError
from tests.reliability_faults import FillingDisk, file_size_limit, read_only_dir

S, K = 32, 2  # image side, views: 6 kB of images per shape


class FakeRenderer:
    """Renderer's interface; a shape's images and angles depend on its random stream only, as the real ones."""

    def __init__(self, size: int, **kw: object) -> None:
        self.size = size

    def render_views(self, grid, views, g):  # type: ignore[no-untyped-def]
        az, el = view_angles(views, g)
        images = g.integers(0, 256, (views, self.size, self.size, 3), dtype=np.uint8)
        return images, az.astype(np.float32), el.astype(np.float32)

    def close(self) -> None:
        pass


@pytest.fixture
def shapes(tmp_path, monkeypatch):
    monkeypatch.setattr("gan_core.data.render_cache.Renderer", FakeRenderer)
    monkeypatch.setattr("gan_core.data.render_cache.COMMIT_SECONDS", 0.0)  # commit after every shape
    return save_npz(tmp_path / "s.npz", *make_synthetic_dataset(3, resolution=16, classes=["chair", "table"]))


@pytest.fixture
def reference(shapes, tmp_path):
    """The cache an uninterrupted run makes: images (N, K, S, S, 3)."""
    out = render_dataset(shapes, tmp_path / "ref" / "r.h5", views=K, size=S, seed=3).path
    with h5py.File(out) as f:
        return f["images"][()]


def _images(path):
    with h5py.File(path) as f:
        assert f.attrs["complete"] and f["done"][()].all()
        return f["images"][()]


def _resume_and_compare(shapes, out, reference):
    part = out.with_name("r.partial.h5")
    assert not out.exists(), "a failed run must not leave a finished-looking cache"
    stats = render_dataset(shapes, out, views=K, size=S, seed=3)
    assert np.array_equal(_images(out), reference), "the resumed cache must equal an uninterrupted one"
    assert not part.exists()
    return stats


@pytest.mark.parametrize("budget", [3_000, 20_000, 45_000])
def test_full_disk_is_one_error_and_the_next_run_resumes(shapes, reference, tmp_path, monkeypatch, budget):
    """ENOSPC from the file object HDF5 writes through, with the budget spent at different points: while the
    empty cache is made (it takes ~8 kB), after one or two shapes, after most of them."""
    out = tmp_path / "run" / "r.h5"
    disk = FillingDisk(budget)
    monkeypatch.setattr(guarded_h5, "open", disk.open, raising=False)
    with pytest.raises(BadFileError) as info:
        render_dataset(shapes, out, views=K, size=S, seed=3)
    monkeypatch.setattr(guarded_h5, "open", open, raising=False)
    msg = str(info.value)
    assert disk.full and "\n" not in msg and "r.partial.h5: cannot write (No space left on device)" in msg, msg
    gc.collect()  # HDF5 used to crash when the objects of a file with a failed write were collected
    kept = (tmp_path / "run" / "r.partial.h5").exists()
    stats = _resume_and_compare(shapes, out, reference)
    if budget >= 20_000:  # past the empty file: finished shapes are kept and not rendered again
        assert kept and "run again to resume" in msg
        assert stats.rendered_now < stats.n_shapes, "the shapes done before the full disk must be kept"


@pytest.mark.parametrize("limit", [20_000, 40_000])
def test_real_write_failure_keeps_a_resumable_cache(shapes, reference, tmp_path, limit):
    """A real failed write (RLIMIT_FSIZE: HDF5's own writes fail, as on a full disk)."""
    out = tmp_path / "run" / "r.h5"
    with file_size_limit(limit), pytest.raises(BadFileError, match="cannot write") as info:
        render_dataset(shapes, out, views=K, size=S, seed=3)
    assert "\n" not in str(info.value)
    gc.collect()
    stats = _resume_and_compare(shapes, out, reference)
    assert stats.rendered_now < stats.n_shapes


def test_read_only_directory(shapes, tmp_path, capsys):
    d = read_only_dir(tmp_path)
    with pytest.raises(BadFileError, match="cannot write") as info:
        render_dataset(shapes, d / "r.h5", views=K, size=S)
    assert "\n" not in str(info.value) and str(d / "r.partial.h5") in str(info.value)
    assert not (d / "r.partial.h5").exists() and not (d / "r.h5").exists()
    rc = main(["render", "--data", str(shapes), "--out", str(d / "c.h5"), "--views", "1", "--size", str(S)])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"BadFileError: {d / 'c.partial.h5'}: cannot write ("), err


def test_interrupted_run_keeps_its_shapes(shapes, reference, tmp_path):
    """Ctrl-C between shapes: the shapes rendered before it are kept even though no periodic commit ran."""
    out = tmp_path / "run" / "r.h5"

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_dataset(shapes, out, views=K, size=S, seed=3, progress=stop_after_three)
    assert _resume_and_compare(shapes, out, reference).rendered_now == 6 - 3
