"""The HDF5 cache of training renders, written once by :func:`render_dataset` and read by :class:`RenderSet`.

Layout:

* ``images`` (N, K, S, S, 3) uint8, one chunk per shape (lzf);
* ``azimuth``, ``elevation`` (N, K) float32 degrees; ``shape_index`` (N,) int64 rows of the data file;
  ``labels`` (N,) int64; ``classes`` str; ``done`` (N,) uint8;
* attrs ``data_sha256`` (of the data file), ``views`` (K), ``size`` (S), ``seed``, ``smooth_iterations``,
  ``style`` (``clean`` or ``photo``; caches made before styles existed have none and are ``clean``),
  ``complete``, ``gan3d_renders`` (format version).

A run writes ``OUT.partial.h5`` and renames it to ``OUT`` when every shape is done; a killed run resumes
from the partial file, skipping the shapes already rendered. View parameters depend only on (seed, row), so
a resumed file equals an uninterrupted one. A shape is marked done only after its images are on disk, and the
partial file is written through :class:`gan_core.guarded_h5.GuardedH5`, so a full disk is one BadFileError
(never an HDF5 crash) and rolls the file back to its last commit: the next run resumes from the shapes done
by then. A partial file made with another ``style`` is refused, not restarted (it may hold hours of work).

The photo style pastes renders of other shapes of the same data behind each object: DISTRACTORS rows drawn
from the selected shapes by ``seed`` alone, so a shape's images depend on (data selection, seed, row), and a
resumed file still equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gan_core.data.dataset import VoxelDataset
from gan_core.data.render import STYLES, Renderer
from gan_core.data.render_scene import SMOOTH_ITERATIONS, shape_rng
from gan_core.errors import BadFileError, BadInputError
from gan_core.files import file_sha256
from gan_core.guarded_h5 import GuardedH5

log = logging.getLogger(__name__)

__all__ = ["FORMAT_VERSION", "RenderSet", "RenderStats", "render_dataset"]

FORMAT_VERSION = 1
DISTRACTORS = 8  # photo style: shapes of the data whose renders are pasted behind objects as clutter
DEFAULTS = {"style": "clean"}  # attrs that caches made before they existed lack
COMMIT_SECONDS = 2.0  # rendered shapes are marked done on disk this often: a kill loses at most this much work


@dataclass
class RenderStats:
    """What one ``render_dataset`` call did."""

    path: Path
    n_shapes: int
    views: int
    rendered_now: int  # shapes rendered by this call (the rest were done before)
    seconds: float

    @property
    def renders_per_s(self) -> float:
        return self.rendered_now * self.views / self.seconds if self.seconds > 0 else float("nan")


def _partial_path(out: Path) -> Path:
    return out.with_name(out.stem + ".partial" + out.suffix)


def render_dataset(
    dataset: Any,
    out_h5: str | Path,
    views: int = 4,
    size: int = 128,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    *,
    smooth_iterations: int = SMOOTH_ITERATIONS,
    positions: Sequence[int] | np.ndarray | None = None,
    style: str = "clean",
) -> RenderStats:
    """Render every shape of ``dataset`` ``views`` times into an HDF5 cache; resumable.

    Parameters
    ----------
    dataset : VoxelDataset or path to a voxel set (.npz / .h5)
        The shapes; rendered from their stored grids. A VoxelDataset's class / limit selection is kept.
    out_h5 : path of the cache. If it exists, complete and made with the same data and settings, nothing
        is done; if it was made otherwise, BadInputError (delete it or pick another path).
    views, size, seed : K images per shape of S x S pixels; view parameters depend on (seed, shape row).
    progress : called as ``progress(done, total)`` after each shape (also for shapes done before).
    smooth_iterations : Taubin smoothing passes on each mesh.
    positions : render only these dataset positions (e.g. a held-out split); default all.
    style : ``"clean"`` or ``"photo"`` (domain-randomised, :mod:`gan_core.data.render_photo`); stored in the
        cache, and a cache (finished or partial) made with another style is refused.

    Returns
    -------
    RenderStats (renders_per_s measures this call's rendering, meshing and writing included).
    """
    ds = dataset if isinstance(dataset, VoxelDataset) else VoxelDataset(dataset)
    if views < 1:
        raise BadInputError(f"--views must be >= 1, got {views}")
    if style not in STYLES:
        raise BadInputError(f"unknown render style {style!r}; known: {', '.join(STYLES)}")
    out = Path(out_h5)
    want = {"data_sha256": file_sha256(ds.path), "views": int(views), "size": int(size), "seed": int(seed),
            "smooth_iterations": int(smooth_iterations), "style": style}
    pos = np.arange(len(ds)) if positions is None else np.unique(np.asarray(positions, np.int64))
    if len(pos) == 0 or pos[0] < 0 or pos[-1] >= len(ds):
        raise BadInputError(f"positions must be non-empty and within 0..{len(ds) - 1}")
    rows = np.asarray(ds.indices, np.int64)[pos]
    n = len(rows)
    t0 = time.perf_counter()
    if out.exists():
        RenderSet(out).check(want, rows, what=str(out)).close()
        if progress:
            progress(n, n)
        return RenderStats(out, n, views, 0, time.perf_counter() - t0)
    part = _partial_path(out)
    cache = _open_partial(part, want, rows, np.asarray(ds.labels)[pos], ds.class_names, views, size)
    h5 = cache.h5
    rendered, pending = 0, []
    done = np.zeros(n, bool)
    try:
        done = h5["done"][()].astype(bool)
        if progress:
            progress(int(done.sum()), n)
        distractors = None
        if style == "photo":
            picks = np.random.default_rng([int(seed), 0xD15]).choice(len(ds), min(DISTRACTORS, len(ds)), replace=False)
            distractors = ds.read(np.sort(picks))
        renderer = Renderer(size, smooth_iterations=smooth_iterations, style=style, distractors=distractors)
        last_commit = time.monotonic()
        try:
            for i in np.flatnonzero(~done):
                grid = ds.read([pos[i]])[0]  # (R, R, R) as stored
                imgs, az, el = renderer.render_views(grid, views, shape_rng(seed, rows[i]))
                h5["images"][i] = imgs
                h5["azimuth"][i] = az
                h5["elevation"][i] = el
                rendered += 1
                done[i] = True
                pending.append(int(i))
                if time.monotonic() - last_commit > COMMIT_SECONDS:
                    _commit(cache, pending)
                    last_commit = time.monotonic()
                if progress:
                    progress(int(done.sum()), n)
        except BaseException:
            with contextlib.suppress(BadFileError):  # keep what was rendered before a stop (Ctrl-C, an error)
                _commit(cache, pending)
            raise
        finally:
            renderer.close()
        _commit(cache, pending)
        h5.attrs["complete"] = True
        cache.close()
    except (BadFileError, OSError):
        e = cache.error
        if e is None:
            raise
        with contextlib.suppress(BadFileError):
            cache.close()  # rolled back to its last commit: the shapes marked done there are kept
        if not cache.intact:
            part.unlink(missing_ok=True)
            raise BadFileError(f"{e}; nothing could be kept: free space and run again") from None
        raise BadFileError(f"{e}; {int(done.sum()) - len(pending)} of {n} shapes are kept there: free space and "
                           "run again to resume") from None
    finally:
        with contextlib.suppress(BadFileError):
            cache.close()
    try:
        os.replace(part, out)  # same directory: an atomic rename
    except OSError as e:
        raise BadFileError(f"{out}: cannot write ({e.strerror or e}); the finished cache is {part}") from None
    stats = RenderStats(out, n, views, rendered, time.perf_counter() - t0)
    log.info("rendered %d shapes x %d views in %.1f s (%.1f renders/s)", rendered, views, stats.seconds,
             stats.renders_per_s)
    return stats


def _commit(cache: GuardedH5, pending: list[int]) -> None:
    """Mark rendered shapes done on disk: their images are committed first, then the flags, so a shape is never
    marked done without its images (a failed write rolls the file back to the last commit)."""
    if not pending:
        return
    cache.commit()
    cache.h5["done"][sorted(pending)] = 1
    cache.commit()
    pending.clear()


def _attr(h5: Any, key: str) -> Any:
    """An attribute of a cache, with DEFAULTS for those older caches lack."""
    v = h5.attrs.get(key, DEFAULTS.get(key))
    return v.decode() if isinstance(v, bytes) else v


def _open_partial(part: Path, want: dict[str, Any], rows: np.ndarray, labels: np.ndarray, class_names: list[str],
                  views: int, size: int) -> GuardedH5:
    """Open a partial cache to continue, or create a fresh one (a partial one made otherwise is replaced)."""
    import h5py

    if part.exists():
        try:
            cache = GuardedH5(part, "r+")
            h5 = cache.h5
            have_style = _attr(h5, "style")
            if have_style != want["style"] and "done" in h5:
                cache.close()
                raise BadInputError(f"{part} was started with --style {have_style}, not {want['style']}: run with "
                                    f"--style {have_style} to resume it, or delete it")
            same = all(_attr(h5, k) == v for k, v in want.items()) and np.array_equal(h5["shape_index"][()], rows)
            if same and "done" in h5:
                log.info("resuming %s: %d of %d shapes done", part, int(h5["done"][()].sum()), len(rows))
                return cache
            cache.close()
            log.warning("%s was made with other data or settings; starting it again", part)
        except (OSError, KeyError, ValueError) as e:
            log.warning("%s is unreadable (%s); starting it again", part, e)
        part.unlink()
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadFileError(f"{part}: cannot write ({e.strerror or e})") from None
    cache = GuardedH5(part, "w")
    try:
        h5, n = cache.h5, len(rows)
        h5.create_dataset("images", shape=(n, views, size, size, 3), dtype=np.uint8,
                          chunks=(1, views, size, size, 3), compression="lzf")
        h5.create_dataset("azimuth", shape=(n, views), dtype=np.float32)
        h5.create_dataset("elevation", shape=(n, views), dtype=np.float32)
        h5.create_dataset("shape_index", data=rows)
        h5.create_dataset("labels", data=np.asarray(labels, np.int64))
        h5.create_dataset("classes", data=list(class_names), dtype=h5py.string_dtype("utf-8"))
        h5.create_dataset("done", shape=(n,), dtype=np.uint8, fillvalue=0)
        for k, v in want.items():
            h5.attrs[k] = v
        h5.attrs["complete"] = False
        h5.attrs["gan3d_renders"] = FORMAT_VERSION
        cache.commit()
    except BaseException:  # nothing worth keeping: leave no half-made file
        with contextlib.suppress(BadFileError):
            cache.close()
        part.unlink(missing_ok=True)
        raise
    return cache


class RenderSet:
    """A finished render cache, read lazily.

    ``images(h5_rows, view)`` gives uint8 (B, S, S, 3); ``rows_for(file_rows)`` maps data-file rows to cache
    rows (BadInputError naming how many are missing).
    """

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise BadFileError(f"{self.path}: no such render cache")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise BadFileError(f"{self.path}: not a readable HDF5 file ({e})") from None
        h5 = self._h5
        if "images" not in h5 or "shape_index" not in h5 or "gan3d_renders" not in h5.attrs:
            self.close()
            raise BadFileError(f"{self.path}: not a gan3d render cache (make one with `gan3d render`)")
        if not bool(h5.attrs.get("complete", False)):
            self.close()
            raise BadFileError(f"{self.path}: render cache is incomplete; run `gan3d render` again to finish it")
        self.views = int(h5.attrs["views"])
        self.size = int(h5.attrs["size"])
        self.seed = int(h5.attrs["seed"])
        self.data_sha256 = str(h5.attrs["data_sha256"])
        self.style = str(_attr(h5, "style"))
        self.shape_index = h5["shape_index"][()]
        self._row_of = {int(r): i for i, r in enumerate(self.shape_index)}

    def __len__(self) -> int:
        return len(self.shape_index)

    def check(self, want: dict[str, Any], rows: np.ndarray | None = None, what: str = "renders") -> RenderSet:
        """Refuse a cache made from other data or settings (BadInputError naming the first difference)."""
        for k, v in want.items():
            have = _attr(self._h5, k)
            if have != v:
                self.close()
                hint = "another data file" if k == "data_sha256" else f"{k}={have}, not {v}"
                raise BadInputError(f"{what} was rendered from {hint}; delete it or choose another path")
        if rows is not None and not np.isin(rows, self.shape_index).all():
            self.close()
            raise BadInputError(f"{what} lacks some of the selected shapes; delete it or choose another path")
        return self

    def rows_for(self, file_rows: Sequence[int] | np.ndarray) -> np.ndarray:
        missing = [int(r) for r in file_rows if int(r) not in self._row_of]
        if missing:
            raise BadInputError(f"{self.path}: {len(missing)} of the selected shapes were not rendered "
                                f"(e.g. row {missing[0]}); render the same data selection again")
        return np.array([self._row_of[int(r)] for r in file_rows], np.int64)

    def images(self, h5_rows: Sequence[int] | np.ndarray, views: Sequence[int] | np.ndarray | int = 0) -> np.ndarray:
        """Images (B, S, S, 3) uint8 of cache rows, one view each (an int or one per row)."""
        r = np.asarray(h5_rows, np.int64)
        v = np.broadcast_to(np.asarray(views, np.int64), r.shape)
        ds = self._h5["images"]
        out = np.empty((len(r), self.size, self.size, 3), np.uint8)
        for j, (row, view) in enumerate(zip(r, v)):
            out[j] = ds[row, view]
        return out

    def angles(self, h5_rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.sort(np.asarray(h5_rows, np.int64))
        return self._h5["azimuth"][r], self._h5["elevation"][r]

    def close(self) -> None:
        if getattr(self, "_h5", None) is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> RenderSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
