"""A 2D map of the latent space: the training shapes of a feature bank and shapes sampled from the generator,
embedded together by their discriminator features (PCA, then t-SNE), so that one can see which classes the
generator covers, where a sample sits among the training shapes, and where an interpolation path goes.

The map embeds the rows the bank searches (``FeatureBank.search_rows``: "paper" features, cosine), so near
on the map means near in retrieval. t-SNE cannot embed a new point into a finished map, so new shapes (the
current shape, path frames) are placed by their nearest neighbours in the PCA space the map was made from:
the inverse-distance-weighted mean of the map positions of their ``PLACE_K`` nearest map points. Building
takes a minute or two on a CPU (t-SNE dominates), so maps are cached, keyed by the bank, the generator and
the parameters (:func:`load_or_build_map`).
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from gan_core.cache import cache_dir, cache_key, load_or_make, load_tagged_npz, save_tagged_npz
from gan_core.errors import BadFileError, BadInputError
from gan_core.files import atomic_path

if TYPE_CHECKING:
    from gan_core.features import FeatureBank
    from gan_core.model import Model

log = logging.getLogger(__name__)

MAP_FORMAT, MAP_VERSION = "gan3d-map", 1
PLACE_K = 5  # map points averaged to place a new shape
THUMB_RES = 32  # side of the stored sample thumbnails (as the bank's)
BATCH = 32  # samples generated and featurised at a time (a progress step)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class MapParams:
    """How a map is made: ``n_samples`` generated shapes (prior samples of ``seed``) beside the bank's, the
    bank's ``kind`` of features reduced to ``n_pca`` PCA components, then t-SNE with ``perplexity``."""

    n_samples: int = 500
    seed: int = 0
    kind: str = "paper"
    n_pca: int = 50
    perplexity: float = 30.0

    def check(self) -> MapParams:
        if self.n_samples < 0:
            raise BadInputError(f"number of samples must be >= 0, got {self.n_samples}")
        if self.kind not in ("paper", "last"):
            raise BadInputError(f"unknown feature kind {self.kind!r}; use 'paper' or 'last'")
        if self.n_pca < 2:
            raise BadInputError(f"PCA components must be >= 2, got {self.n_pca}")
        if not self.perplexity > 0:
            raise BadInputError(f"perplexity must be positive, got {self.perplexity}")
        return self


@dataclass
class LatentMap:
    """A finished map. Rows are the bank's shapes (in bank order) then the generated samples.

    Attributes: ``coords`` (N, 2) float32 map positions; ``points`` (N, P) float32 PCA scores (where new
    shapes are placed); ``pca_mean`` (D,), ``pca_components`` (P, D) the PCA of the search rows; ``labels``
    (N,) int64 class of each row (samples: by a vote of their nearest bank shapes, ``FeatureBank.predict``);
    ``n_bank``; ``sample_z`` (S, z_dim) float32; ``sample_thumbnails`` (S, 32^3 / 8) uint8 bit-packed grids.
    """

    coords: np.ndarray
    points: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray
    labels: np.ndarray
    n_bank: int
    sample_z: np.ndarray
    sample_thumbnails: np.ndarray
    class_names: list[str]
    params: MapParams = field(default_factory=MapParams)
    key: str = ""
    build_seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def n_samples(self) -> int:
        return len(self.sample_z)

    def source(self, i: int) -> tuple[str, int]:
        """("bank", bank row) or ("sample", sample index) of map row ``i``."""
        if not 0 <= i < len(self):
            raise BadInputError(f"map row {i} out of range (0..{len(self) - 1})")
        return ("bank", i) if i < self.n_bank else ("sample", i - self.n_bank)

    def colours(self) -> list[str]:
        """One colour (#rrggbb) per class, as the PNG draws them."""
        return class_colours(len(self.class_names))

    def sample_thumbnail(self, j: int) -> np.ndarray:
        """The grid of sample ``j``, (32, 32, 32) uint8."""
        return np.unpackbits(self.sample_thumbnails[j], count=THUMB_RES**3).reshape((THUMB_RES,) * 3)

    def place_rows(self, rows: np.ndarray, k: int = PLACE_K) -> np.ndarray:
        """Map positions (Q, 2) of shapes given as bank search rows (Q, D): the inverse-distance-weighted mean
        position of their ``k`` nearest map points in PCA space (a row equal to a map point lands on it)."""
        q = np.asarray(rows, np.float32)
        q = q[None] if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.pca_mean.shape[0] or not np.isfinite(q).all():
            raise BadInputError(f"rows must be finite (Q, {self.pca_mean.shape[0]}), got {q.shape}")
        p = (q - self.pca_mean) @ self.pca_components.T  # (Q, P)
        d2 = (p**2).sum(1)[:, None] - 2 * p @ self.points.T + (self.points**2).sum(1)[None]  # (Q, N)
        k = min(k, len(self))
        near = np.argpartition(d2, k - 1, axis=1)[:, :k]  # (Q, k)
        d = np.sqrt(np.maximum(np.take_along_axis(d2, near, 1), 0.0))
        w = 1.0 / (d + 1e-6 * (1.0 + d.max(axis=1, keepdims=True)))
        return ((w[..., None] * self.coords[near]).sum(1) / w.sum(1, keepdims=True)).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Write the map as an npz (no pickle), atomically."""
        meta = {"params": asdict(self.params), "class_names": list(self.class_names), "n_bank": int(self.n_bank),
                "key": self.key, "build_seconds": float(self.build_seconds)}
        arrays = {"coords": self.coords, "points": self.points, "pca_mean": self.pca_mean,
                  "pca_components": self.pca_components, "labels": self.labels, "sample_z": self.sample_z,
                  "sample_thumbnails": self.sample_thumbnails}
        return save_tagged_npz(path, MAP_FORMAT, MAP_VERSION, meta, arrays)

    @classmethod
    def load(cls, path: str | Path) -> LatentMap:
        """Read a map written by :meth:`save`; BadFileError for a damaged or foreign file."""
        meta, a = load_tagged_npz(path, MAP_FORMAT, MAP_VERSION)
        try:
            m = cls(a["coords"], a["points"], a["pca_mean"], a["pca_components"], a["labels"], int(meta["n_bank"]),
                    a["sample_z"], a["sample_thumbnails"], [str(c) for c in meta["class_names"]],
                    MapParams(**meta["params"]), str(meta.get("key", "")), float(meta.get("build_seconds", 0.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise BadFileError(f"{path}: damaged latent map ({type(e).__name__}: {e})") from None
        n = len(m.coords)
        if (m.coords.shape != (n, 2) or m.points.shape[0] != n or m.labels.shape != (n,)
                or m.pca_components.shape != (m.points.shape[1], m.pca_mean.shape[0])
                or n != m.n_bank + len(m.sample_z) or len(m.sample_thumbnails) != len(m.sample_z)):
            raise BadFileError(f"{path}: damaged latent map (array shapes disagree)")
        return m


def map_key(model: Model, bank: FeatureBank, params: MapParams) -> str:
    """Identifies what a map depends on: the bank (its discriminator, data, creation time and size), the
    generator's weights and the parameters."""
    parts = [MAP_VERSION, bank.weights_hash, bank.data_sha256, bank.created_, len(bank),
             model.weights_hash("generator"), asdict(params)]
    return cache_key(*parts)


def build_map(model: Model, bank: FeatureBank, params: MapParams = MapParams(), *,
              progress: Progress | None = None) -> LatentMap:
    """Make a map of ``bank`` and ``params.n_samples`` shapes from ``model`` (whose discriminator made the
    bank). ``progress(done, total)`` is called per batch of samples and once more after the embedding."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from gan_core.features import pack_voxels

    params.check()
    bank.check_model(model)
    t0 = time.perf_counter()
    z = model.sample_z(params.n_samples, seed=params.seed)  # (S, z_dim)
    n_batches = -(-len(z) // BATCH)
    feats, thumbs = [], []
    for b, s in enumerate(range(0, len(z), BATCH)):
        vox = model.generate(z[s:s + BATCH], use_cache=False)  # (B, R, R, R)
        feats.append(model.features(vox, kind=params.kind))
        thumbs.append(pack_voxels(vox, THUMB_RES))
        if progress is not None:
            progress(b + 1, n_batches + 1)
    rows = bank.search_rows(kind=params.kind)  # (N_bank, D)
    if feats:
        sample_feats = np.concatenate(feats)
        rows = np.concatenate([rows, bank.search_rows(sample_feats, kind=params.kind)])
        sample_labels = bank.predict(sample_feats, kind=params.kind)
    else:
        sample_labels = np.zeros(0, np.int64)
    if len(rows) < 4:
        raise BadInputError(f"a map needs at least 4 shapes, got {len(rows)}")
    n_pca = min(params.n_pca, len(rows) - 1, rows.shape[1])
    pca = PCA(n_pca, random_state=0).fit(rows)
    points = pca.transform(rows).astype(np.float32)  # (N, P)
    perplexity = min(params.perplexity, (len(rows) - 1) / 3)  # t-SNE needs perplexity < N
    coords = TSNE(2, perplexity=perplexity, init="pca", random_state=params.seed).fit_transform(points)
    if progress is not None:
        progress(n_batches + 1, n_batches + 1)
    log.info("latent map of %d shapes (%d generated) in %.1f s", len(rows), len(z), time.perf_counter() - t0)
    return LatentMap(
        coords=coords.astype(np.float32), points=points, pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
        labels=np.concatenate([bank.labels_, sample_labels]).astype(np.int64), n_bank=len(bank),
        sample_z=z.astype(np.float32),
        sample_thumbnails=np.concatenate(thumbs) if thumbs else np.zeros((0, THUMB_RES**3 // 8), np.uint8),
        class_names=list(bank.class_names_), params=params, key=map_key(model, bank, params),
        build_seconds=time.perf_counter() - t0)


def load_or_build_map(model: Model, bank: FeatureBank, params: MapParams = MapParams(), *,
                      cache: str | Path | None = None, progress: Progress | None = None) -> LatentMap:
    """The cached map for (model, bank, params) from ``cache`` (default :func:`gan_core.cache.cache_dir`),
    or a new one built and cached. A damaged cache file is rebuilt; an unwritable cache only logs a warning."""
    path = map_cache_path(model, bank, params, cache)
    return load_or_make(path, LatentMap.load, lambda: build_map(model, bank, params, progress=progress),
                        LatentMap.save)


def map_cache_path(model: Model, bank: FeatureBank, params: MapParams = MapParams(),
                   cache: str | Path | None = None) -> Path:
    """Where :func:`load_or_build_map` keeps the map of (model, bank, params)."""
    params.check()
    return Path(cache if cache is not None else cache_dir()) / f"map-{map_key(model, bank, params)}.npz"


def place_shapes(lmap: LatentMap, bank: FeatureBank, model: Model, voxels: np.ndarray) -> np.ndarray:
    """Map positions (Q, 2) of grids (Q, R, R, R) (generated or not), via their discriminator features."""
    feats = model.features(voxels, kind=lmap.params.kind)
    return lmap.place_rows(bank.search_rows(feats, kind=lmap.params.kind))


def write_csv(lmap: LatentMap, path: str | Path) -> Path:
    """One row per map point: row, x, y, source (bank / sample), index within its source, class."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["row", "x", "y", "source", "index", "class"])
        for i, (x, y) in enumerate(lmap.coords):
            src, j = lmap.source(i)
            w.writerow([i, f"{x:.4f}", f"{y:.4f}", src, j, lmap.class_names[int(lmap.labels[i])]])
    return path


def render_png(lmap: LatentMap, path: str | Path, *, path_xy: np.ndarray | None = None,
               marks: Sequence[tuple[str, np.ndarray]] = (), title: str = "") -> Path:
    """A scatter of the map, coloured by class: training shapes as dots, generated samples as rings;
    ``path_xy`` (T, 2) drawn as a line, ``marks`` [(label, (2,) position)] as stars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = class_colours(len(lmap.class_names))
    bank, samp = slice(0, lmap.n_bank), slice(lmap.n_bank, len(lmap))
    for c, name in enumerate(lmap.class_names):
        sel = lmap.labels[bank] == c
        ax.scatter(*lmap.coords[bank][sel].T, s=6, color=colours[c], label=name, alpha=0.8, linewidths=0)
        sel = lmap.labels[samp] == c
        ax.scatter(*lmap.coords[samp][sel].T, s=22, facecolors="none", edgecolors=[colours[c]], linewidths=0.9)
    if lmap.n_samples:
        ax.scatter([], [], s=22, facecolors="none", edgecolors="black", linewidths=0.9, label="generated")
    if path_xy is not None and len(path_xy):
        ax.plot(*np.asarray(path_xy).T, "-o", color="black", ms=3, lw=1.5, label="path")
    for label, xy in marks:
        ax.scatter(*np.asarray(xy).reshape(2), marker="*", s=220, color="black", edgecolors="white", zorder=5)
        ax.annotate(label, np.asarray(xy).reshape(2), xytext=(6, 6), textcoords="offset points")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{lmap.n_bank} training shapes and {lmap.n_samples} samples "
                          f"(t-SNE of {lmap.params.kind!r} D features)", fontsize=10)
    ax.legend(loc="best", fontsize=8, markerscale=2, framealpha=0.8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def class_colours(n: int) -> list[str]:
    """``n`` distinct colours (#rrggbb), the same in the PNG and the app: matplotlib's tab10 / tab20."""
    tab10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
             "#17becf"]
    if n <= 10:
        return tab10[:n]
    import colorsys

    return [tab10[i] if i < 10 else "#%02x%02x%02x" % tuple(int(255 * v) for v in colorsys.hsv_to_rgb(i / n, 0.6, 0.8))
            for i in range(n)]


__all__ = ["LatentMap", "MapParams", "build_map", "class_colours", "load_or_build_map", "map_cache_path", "map_key",
           "place_shapes", "render_png", "write_csv"]
