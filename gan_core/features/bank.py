"""The FeatureBank: discriminator features of a labelled voxel set, stored reduced and searched by nearest
neighbour (see :mod:`gan_core.features`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from gan_core.d_features import check_kind
from gan_core.data.resample import resample
from gan_core.errors import BadCheckpointError, BadInputError, ProfileMismatchError
from gan_core.features.bank_file import BankFile, first_line, read_bank_file, write_bank_file
from gan_core.features.search import (
    METRICS, ONE_THREAD_WORK, FaissIndex, SklearnIndex, few_threads, select_backend, unit_rows, with_zero_flag,
)
from gan_core.projection import SketchedPCA

if TYPE_CHECKING:
    from gan_core.model import Model

log = logging.getLogger(__name__)


class FeatureBank:
    """Discriminator features of a labelled voxel set, searchable by nearest neighbour.

    Parameters (keyword-only, stored as given; ``fit`` validates them)
    ----------
    weights_hash : str
        ``Model.weights_hash()`` of the discriminator that made the features; queries from another are refused.
    profile, data_name, data_sha256 : str
        Provenance: profile name, source file name and its sha256.
    dtype : "float16" or "float32"
        Storage type of the features (and of the projection's components). float16 halves the file and keeps
        99.5-100% of the top-5 neighbours of float32 (relative distance error < 1e-3).
    n_components : int or None
        PCA components per feature kind (default 256); None keeps the full features. A kind with more than
        ``n_components + n_sketch`` dims is searched through a :class:`~gan_core.projection.SketchedPCA`
        fitted on the bank's unit-length rows: its PCA scores plus a sketch of the residual. At fast32 (3991
        shapes) that takes the bank from 162 MB to 23.5 MB, loading from seconds to ~0.1 s and a query from
        ~2 s to a few ms, and keeps 93-95% of the exact top-5 neighbours of bank shapes and 91-92% of
        generated ones, both kinds and metrics (plain PCA to 256, "last": 83-87%). Both metrics use the same map:
        cosine the unit rows, Euclidean the rows scaled back by their stored norms (the map is linear).
    n_sketch : int
        Sketch dimensions of the PCA residual (default 512); 0 gives plain PCA, whose distances are lower bounds.
    random_state : int
        Seed of the randomized PCA and of the sketch.
    thumbnail_resolution : int
        Side of the stored thumbnails (32).
    backend : "auto", "sklearn" or "faiss"
        Search backend; "auto" uses FAISS only above FAISS_MIN_ROWS rows and when it is installed.
    created : str, optional
        ISO time of creation (``created_`` is this, or the time of ``fit``).
    meta : mapping, optional
        JSON-serialisable extras (class filter, limit, checkpoint path).

    Fitted attributes: ``features_`` {kind: (N, D) array}: what the bank searches, the features as given
    (D = F) or, for a reduced kind, ``projections_[kind].transform`` of the unit-length rows (D = C + m);
    ``projections_`` {kind: SketchedPCA} for the reduced kinds; ``norms_`` {kind: (N,) float32} the full rows'
    lengths, for the reduced kinds; ``n_features_`` {kind: F} (the length of a query); ``labels_`` (N,) int64,
    ``class_names_`` list[str], ``source_index_`` (N,) int64 (rows of the source file), ``thumbnails_``
    (N, r^3 / 8) uint8 bit-packed or None, ``backend_`` ("sklearn" or "faiss"), ``created_``.

    Examples
    --------
    >>> bank = build_bank(model, VoxelDataset("train.npz"), batch_size=64)     # doctest: +SKIP
    >>> bank.save("bank.h5")                                                   # doctest: +SKIP
    >>> dist, idx = FeatureBank.load("bank.h5").query(voxels=grids, model=model, k=5, kind="last")  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        weights_hash: str = "",
        profile: str = "",
        data_name: str = "",
        data_sha256: str = "",
        dtype: str = "float16",
        n_components: int | None = 256,
        n_sketch: int = 512,
        random_state: int = 0,
        thumbnail_resolution: int = 32,
        backend: str = "auto",
        created: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.weights_hash = weights_hash
        self.profile = profile
        self.data_name = data_name
        self.data_sha256 = data_sha256
        self.dtype = dtype
        self.n_components = n_components
        self.n_sketch = n_sketch
        self.random_state = random_state
        self.thumbnail_resolution = thumbnail_resolution
        self.backend = backend
        self.created = created
        self.meta = meta
        self._index: dict[tuple[str, str], Any] = {}

    # -- fitting -------------------------------------------------------------------------------------------
    def fit(
        self,
        features: Mapping[str, np.ndarray],
        *,
        labels: np.ndarray,
        class_names: Sequence[str],
        source_index: np.ndarray | None = None,
        thumbnails: np.ndarray | None = None,
    ) -> FeatureBank:
        """Validate the data, fit the projection of each kind with more than ``n_components + n_sketch`` dims,
        and store; returns self.

        ``features`` maps "paper" and/or "last" to (N, F) arrays; ``thumbnails`` are grids (N, R, R, R)
        (resampled to ``thumbnail_resolution``) or already bit-packed rows (N, r^3 / 8) uint8.
        """
        self._check_params()
        feats, n = self._check_features(features)
        searched, projections, norms = {}, {}, {}
        for kind, a in feats.items():
            if self.n_components is None or a.shape[1] <= self.n_components + self.n_sketch or n < 2:
                if self.dtype == "float16" and a.dtype != np.float16 and np.abs(a).max() > np.finfo(np.float16).max:
                    raise BadInputError(f"features[{kind!r}] exceed the float16 range; use dtype='float32'")
                searched[kind] = a.astype(self.dtype, copy=False)
                continue
            t0 = time.perf_counter()
            unit, norms[kind] = unit_rows(a)  # (N, F) float32, (N,)
            projections[kind] = SketchedPCA(self.n_components, n_sketch=self.n_sketch, dtype=self.dtype,
                                            random_state=self.random_state).fit(unit)
            searched[kind] = projections[kind].transform(unit).astype(self.dtype)
            log.info("%s features: %d -> %d dims (PCA %d + sketch %d) in %.1f s", kind, a.shape[1],
                     searched[kind].shape[1], len(projections[kind].components_), self.n_sketch,
                     time.perf_counter() - t0)
        return self._set_fitted(searched, projections, norms, labels=labels, class_names=class_names,
                                source_index=source_index, thumbnails=thumbnails)

    def _check_params(self) -> None:
        if self.dtype not in ("float16", "float32"):
            raise BadInputError(f"dtype must be 'float16' or 'float32', got {self.dtype!r}")
        if self.thumbnail_resolution not in (8, 16, 32, 64):
            raise BadInputError(f"thumbnail_resolution must be 8, 16, 32 or 64, got {self.thumbnail_resolution}")
        if self.n_components is not None and (isinstance(self.n_components, bool) or
                                              not isinstance(self.n_components, (int, np.integer)) or
                                              self.n_components < 1):
            raise BadInputError(f"n_components must be a positive integer or None, got {self.n_components!r}")
        if isinstance(self.n_sketch, bool) or not isinstance(self.n_sketch, (int, np.integer)) or self.n_sketch < 0:
            raise BadInputError(f"n_sketch must be an integer >= 0, got {self.n_sketch!r}")

    @staticmethod
    def _check_features(features: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        if not features:
            raise BadInputError("features: give at least one of 'paper' and 'last'")
        feats: dict[str, np.ndarray] = {}
        n = None
        for kind, arr in features.items():
            check_kind(kind)
            a = np.asarray(arr)
            if a.ndim != 2 or a.shape[0] == 0 or a.dtype.kind != "f":
                raise BadInputError(f"features[{kind!r}] must be a non-empty float (N, F) array, got {a.shape} {a.dtype}")
            if n is not None and a.shape[0] != n:
                raise BadInputError(f"features disagree on N: {n} vs {a.shape[0]} ({kind!r})")
            n = a.shape[0]
            if not np.isfinite(a).all():
                raise BadInputError(f"features[{kind!r}] contain NaN or Inf")
            feats[kind] = a
        assert n is not None
        return feats, n

    def _set_fitted(
        self,
        searched: dict[str, np.ndarray],
        projections: dict[str, SketchedPCA],
        norms: dict[str, np.ndarray],
        *,
        labels: np.ndarray,
        class_names: Sequence[str],
        source_index: np.ndarray | None,
        thumbnails: np.ndarray | None,
    ) -> FeatureBank:
        """Store checked search rows and their projections (shared by fit and load); returns self."""
        n = len(next(iter(searched.values())))
        for kind, proj in projections.items():
            if searched[kind].shape[1] != proj.n_output_ or norms[kind].shape != (n,) or \
                    not np.isfinite(norms[kind]).all() or (norms[kind] < 0).any():
                raise BadInputError(f"{kind!r}: the features, norms and projection disagree")
        names = [str(c) for c in class_names]
        if not names or len(set(names)) != len(names):
            raise BadInputError(f"class_names must be unique and non-empty, got {names}")
        lab = np.asarray(labels)
        if lab.shape != (n,) or lab.dtype.kind not in "iu" or lab.min() < 0 or lab.max() >= len(names):
            raise BadInputError(f"labels must be {n} integers indexing class_names (0..{len(names) - 1})")
        src = np.arange(n) if source_index is None else np.asarray(source_index)
        if src.shape != (n,) or src.dtype.kind not in "iu":
            raise BadInputError(f"source_index must be {n} integers, got shape {src.shape} dtype {src.dtype}")
        self.features_ = searched
        self.projections_ = projections
        self.norms_ = {k: v.astype(np.float32) for k, v in norms.items()}
        self.n_features_ = {k: projections[k].n_features_in_ if k in projections else a.shape[1]
                            for k, a in searched.items()}
        self.labels_ = lab.astype(np.int64)
        self.class_names_ = names
        self.source_index_ = src.astype(np.int64)
        self.thumbnails_ = None if thumbnails is None else self._pack_thumbnails(thumbnails, n)
        self.backend_ = select_backend(n, self.backend)
        self.created_ = self.created or time.strftime("%Y-%m-%dT%H:%M:%S")
        self._index = {}
        return self

    def _pack_thumbnails(self, thumbnails: np.ndarray, n: int) -> np.ndarray:
        r = self.thumbnail_resolution
        t = np.asarray(thumbnails)
        if t.ndim == 2 and t.shape == (n, r**3 // 8) and t.dtype == np.uint8:
            return t
        if t.ndim != 4 or len(t) != n:
            raise BadInputError(f"thumbnails must be {n} grids (N, R, R, R) or packed rows ({n}, {r**3 // 8}), got {t.shape}")
        return pack_voxels(t, r)

    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise BadInputError("this FeatureBank is not fitted yet; call fit() or FeatureBank.load()")

    # -- access --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels_) if hasattr(self, "labels_") else 0

    def thumbnail(self, i: int) -> np.ndarray:
        """Grid of bank row ``i`` as uint8 (r, r, r), r = thumbnail_resolution (32)."""
        self._check_fitted()
        if self.thumbnails_ is None:
            raise BadInputError("this bank stores no thumbnails")
        r = self.thumbnail_resolution
        return np.unpackbits(self.thumbnails_[i], count=r**3).reshape(r, r, r)

    def label_name(self, i: int) -> str:
        self._check_fitted()
        return self.class_names_[int(self.labels_[i])]

    def check_model(self, model: Model) -> None:
        """Raise ProfileMismatchError unless ``model``'s discriminator is the one that built the bank."""
        h = model.weights_hash()
        if h != self.weights_hash:
            raise ProfileMismatchError(
                f"bank was built with another discriminator (hash {self.weights_hash}, model has {h}); "
                "rebuild it with gan3d features"
            )

    # -- search --------------------------------------------------------------------------------------------
    def query(
        self,
        features: np.ndarray | None = None,
        *,
        voxels: np.ndarray | None = None,
        model: Model | None = None,
        k: int = 5,
        kind: str = "last",
        metric: str = "cosine",
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest bank rows of each query: distances (Q, k) float32 ascending, indices (Q, k) int64.

        Give query ``features`` (Q, F) / (F,) of the same ``kind``, or ``voxels`` and the ``model`` that built
        the bank (checked by weights hash). ``kind`` "last" is the paper's retrieval feature. ``metric``
        "cosine" gives 1 - cos(a, b), "euclidean" ||a - b||. The index of each (kind, metric) is built on
        first use (exact search) and cached. For a reduced kind the search runs in the projected space: the
        distances estimate the full ones (unbiased in the square; 0 for a bank row's own features).
        """
        self._check_search(kind, metric)
        if features is None:
            if voxels is None or model is None:
                raise BadInputError("query needs features, or voxels together with the model that built the bank")
            self.check_model(model)
            features = model.features(voxels, kind=kind)
        elif voxels is not None:
            raise BadInputError("query takes features or voxels, not both")
        q = self._check_query(features, kind)
        if not 1 <= k <= len(self):
            raise BadInputError(f"k must be between 1 and the bank size {len(self)}, got {k}")
        index = self._get_index(kind, metric)
        d = self.features_[kind].shape[1]
        work = len(q) * (len(self) + 2 * q.shape[1]) * d if self.backend_ == "sklearn" else ONE_THREAD_WORK + 1
        with few_threads(work):
            dist, idx = index.kneighbors(self._rows(q, kind, metric), n_neighbors=k)
        if metric == "cosine":
            dist = dist**2 / 2  # 1 - cos(a, b) = |a/|a| - b/|b||^2 / 2
        return np.asarray(dist, np.float32), np.asarray(idx, np.int64)

    def predict(self, features: np.ndarray, *, k: int = 5, kind: str = "paper", metric: str = "cosine") -> np.ndarray:
        """The class of each query (Q, F) features by a vote of its ``k`` nearest bank shapes: (Q,) int64 indices
        into ``class_names_``; a tie goes to the class of the nearer shapes. "paper" features are the ones the
        paper classifies with."""
        _, idx = self.query(features, k=min(k, len(self)), kind=kind, metric=metric)  # (Q, k) nearest first
        votes = np.zeros((len(idx), len(self.class_names_)))
        rank_bonus = np.linspace(1e-3, 0.0, idx.shape[1], endpoint=False)  # (k,): only breaks ties
        np.add.at(votes, (np.arange(len(idx))[:, None], self.labels_[idx]), 1.0 + rank_bonus)
        return votes.argmax(axis=1).astype(np.int64)

    def search_rows(self, features: np.ndarray | None = None, *, kind: str = "paper",
                    metric: str = "cosine") -> np.ndarray:
        """The bank's own rows (``features`` None) or query features (Q, F) as rows of the space its search runs
        in, (N or Q, D) float32: Euclidean distances there are the search's (cosine: squared distance / 2).
        For maps of the bank (gan_core.latent_map) that must agree with what retrieval calls near."""
        self._check_search(kind, metric)
        return self._rows(None if features is None else self._check_query(features, kind), kind, metric)

    def _check_search(self, kind: str, metric: str) -> None:
        self._check_fitted()
        check_kind(kind)
        if metric not in METRICS:
            raise BadInputError(f"unknown metric {metric!r}; use cosine or euclidean")
        if kind not in self.features_:
            raise BadInputError(f"this bank has no {kind!r} features (it has {', '.join(self.features_)})")

    def _check_query(self, features: np.ndarray, kind: str) -> np.ndarray:
        q = np.asarray(features, np.float32)
        q = q[None] if q.ndim == 1 else q
        f = self.n_features_[kind]
        if q.ndim != 2 or q.shape[1] != f or not np.isfinite(q).all():
            raise BadInputError(f"query features must be finite (Q, {f}) for kind {kind!r}, got {q.shape}")
        return q

    def _rows(self, q: np.ndarray | None, kind: str, metric: str) -> np.ndarray:
        """Query features (Q, F) float32, or the bank's own rows for None, as rows of a Euclidean search:
        cosine searches unit-length rows (with a zero flag), Euclidean the rows as they are; a reduced kind maps
        both through its projection T, linear, so T(x) = |x| (T(x / |x| - mean) + T(mean))."""
        proj = self.projections_.get(kind)
        if q is None:  # the bank's rows, from what it stores
            f = self.features_[kind].astype(np.float32)  # (N, D)
            if proj is None:
                return with_zero_flag(*unit_rows(f)) if metric == "cosine" else f
            norms = self.norms_[kind]
            if metric == "cosine":
                return with_zero_flag(f, norms)
            return norms[:, None] * (f + proj.project(proj.mean_[None]))
        if metric == "euclidean":
            return q if proj is None else proj.project(q)
        unit, norms = unit_rows(q)
        return with_zero_flag(unit if proj is None else proj.transform(unit), norms)

    def _get_index(self, kind: str, metric: str) -> Any:
        key = (kind, metric)
        if key not in self._index:
            rows = self._rows(None, kind, metric)
            self._index[key] = (FaissIndex if self.backend_ == "faiss" else SklearnIndex)(rows)
        return self._index[key]

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the bank as HDF5, atomically (a crash leaves any previous file intact)."""
        self._check_fitted()
        params = dict(weights_hash=self.weights_hash, profile=self.profile, data_name=self.data_name,
                      data_sha256=self.data_sha256, dtype=self.dtype, n_components=self.n_components,
                      n_sketch=self.n_sketch, random_state=self.random_state,
                      thumbnail_resolution=self.thumbnail_resolution, created=self.created_, meta=self.meta)
        return write_bank_file(BankFile(params, self.features_, self.projections_, self.norms_, labels=self.labels_,
                                        class_names=self.class_names_, source_index=self.source_index_,
                                        thumbnails=self.thumbnails_), path)

    @classmethod
    def load(cls, path: str | Path, *, backend: str = "auto") -> FeatureBank:
        """Read a bank written by :meth:`save`; a corrupt, truncated or foreign file is a BadCheckpointError.

        Reads what the search needs and nothing more (a reduced bank holds no full-size features); version 1
        files (full features only) are read as banks with ``n_components=None``."""
        f = read_bank_file(path)
        try:
            bank = cls(**f.params, backend=backend)
            bank._check_params()
            feats, _ = cls._check_features(f.features)
            return bank._set_fitted(feats, f.projections, f.norms, labels=f.labels, class_names=f.class_names,
                                    source_index=f.source_index, thumbnails=f.thumbnails)
        except BadInputError as e:
            raise BadCheckpointError(f"{path}: damaged feature bank (BadInputError: {first_line(e)})") from None

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k}={v}" + (f"->{self.features_[k].shape[1]}" if k in self.projections_ else "")
                          for k, v in getattr(self, "n_features_", {}).items())
        return f"FeatureBank(n={len(self)}, {kinds or 'unfitted'}, profile={self.profile!r}, data={self.data_name!r})"


def pack_voxels(voxels: np.ndarray, resolution: int = 32) -> np.ndarray:
    """Grids (N, R, R, R) -> bit-packed rows (N, r^3 / 8) uint8 at ``resolution`` (resampled if R differs)."""
    vox = np.asarray(voxels)
    binary = vox > 0.5 if vox.dtype.kind == "f" else vox > 0
    if binary.shape[-1] != resolution:
        binary = resample(binary, resolution)
    return np.packbits(binary.reshape(len(binary), -1).astype(bool), axis=1)
