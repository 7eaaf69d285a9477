"""Discriminator features of voxel sets, and the FeatureBank that stores them for retrieval.

Two feature sets (Wu et al. 2016, section 4.2 and 4.4):

* ``"paper"``: the responses of D's last three hidden conv blocks, each max-pooled to 2x2x2 and flattened
  (channel-major, then x, y, z) and concatenated. At paper64 those blocks are D's 2nd, 3rd and 4th conv
  layers, 128@16^3, 256@8^3 and 512@4^3, pooled with stride 8, 4 and 2: 8 * (128 + 256 + 512) = 7168 values,
  the paper's SVM features. The same rule gives 8 * (64 + 128 + 256) = 3584 at fast32 (taps 64@16^3,
  128@8^3, 256@4^3) and 8 * (16 + 32) = 384 at tiny16 (which has only two hidden blocks).
* ``"last"``: the last hidden block's full response, flattened: 512 * 4^3 = 32768 values at paper64,
  256 * 4^3 = 16384 at fast32. The paper uses D's last conv layer for nearest-neighbour retrieval of
  generated shapes (to show that G does not memorise).

A bank is an HDF5 file (no pickled objects) with both feature sets, labels, class names, the rows of the
source file and 32^3 bit-packed thumbnails; it records the hash of the discriminator that made it and
refuses queries from another one. Long feature sets are stored reduced (PCA plus a sketch of the residual,
see gan_core.projection), with the map that takes a query's features to the same space.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.config import Profile, get_profile
from gan_core.data.resample import resample
from gan_core.device import autocast
from gan_core.errors import BadCheckpointError, BadFileError, BadInputError, ProfileMismatchError
from gan_core.io_utils import atomic_h5, check_hdf5_heaps, file_sha256
from gan_core.models import Discriminator
from gan_core.projection import SketchedPCA

if TYPE_CHECKING:
    from gan_core.data.dataset import VoxelDataset
    from gan_core.runtime import Model

log = logging.getLogger(__name__)

KINDS = ("paper", "last")
METRICS = ("cosine", "euclidean")
BANK_FORMAT = "gan3d-bank"
BANK_VERSION = 2  # 2: reduced kinds (projection_<kind>/ and norms_<kind>); 1: full features only, still read
FAISS_MIN_ROWS = 200_000  # above this many rows "auto" picks FAISS (when importable): exact search stays fast
# Below this many multiply-adds a query runs on one thread: waking BLAS / OpenMP threads costs more than the work,
# and far more on a busy CPU (the 3991-shape bank with a training job on 2 cores: 570 ms vs 5 ms a query).
ONE_THREAD_WORK = 1 << 26


# -- features ----------------------------------------------------------------------------------------------
def feature_dim(profile: Profile | str, kind: str = "paper") -> int:
    """Length of one feature vector: 7168 ("paper") / 32768 ("last") at paper64, 3584 / 16384 at fast32."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    _check_kind(kind)
    if kind == "paper":
        return 8 * sum(prof.d_channels[-3:])
    return prof.d_channels[-1] * 4**3  # the last hidden block is always 4^3


def extract_features(
    discriminator: Discriminator,
    voxels: np.ndarray,
    *,
    kind: str = "paper",
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Discriminator features of voxel grids.

    Parameters
    ----------
    discriminator : Discriminator
        Run in eval mode under ``torch.inference_mode``; its train/eval flag is restored afterwards.
    voxels : ndarray (N, R, R, R) or (R, R, R), uint8, bool or float
        Occupancy. Grids at the profile's resolution are used as given (float grids in [0, 1] included, e.g.
        generator outputs); other sizes with an integer factor are thresholded (> 0, or > 0.5 for float) and
        resampled with :func:`gan_core.data.resample.resample`.
    kind : "paper" or "last"
        See the module docstring.
    batch_size : int
        Grids per forward pass.
    device : torch device, optional
        Where to run; the discriminator is moved there (as ``nn.Module.to`` does). Default: where it is.
    amp_dtype : torch dtype, optional
        Autocast dtype (bf16 / fp16); None runs in fp32.

    Returns
    -------
    ndarray (N, feature_dim(profile, kind)) float32

    Examples
    --------
    >>> d = Discriminator(get_profile("fast32"))
    >>> extract_features(d, np.zeros((2, 32, 32, 32), np.uint8)).shape
    (2, 3584)
    """
    _check_kind(kind)
    return extract_feature_sets(discriminator, voxels, kinds=(kind,), batch_size=batch_size, device=device,
                                amp_dtype=amp_dtype)[kind]


def extract_feature_sets(
    discriminator: Discriminator,
    voxels: np.ndarray,
    *,
    kinds: Sequence[str] = KINDS,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, np.ndarray]:
    """Several feature sets from one forward pass: ``{kind: (N, F_kind) float32}``. See extract_features."""
    for k in kinds:
        _check_kind(k)
    if batch_size < 1:
        raise BadInputError(f"batch_size must be >= 1, got {batch_size}")
    r = discriminator.profile.resolution
    vox = _check_voxel_stack(voxels)  # converted a batch at a time: a 64^3 float copy of a whole set is GBs
    dev = torch.device(device) if device is not None else next(discriminator.parameters()).device
    was_training = discriminator.training
    discriminator.to(dev).eval()
    out = {k: np.empty((len(vox), feature_dim(discriminator.profile, k)), np.float32) for k in kinds}
    try:
        with torch.inference_mode():
            for s in range(0, len(vox), batch_size):
                x = torch.from_numpy(prepare_voxels(vox[s:s + batch_size], r)).to(dev)  # (B, R, R, R)
                with autocast(dev, amp_dtype):
                    acts = discriminator.activations(x)  # [(B, C_i, S_i, S_i, S_i)]
                for k, feats in _features_from_activations(acts, kinds).items():
                    out[k][s:s + len(x)] = feats.float().cpu().numpy()
    finally:
        discriminator.train(was_training)
    return out


def _features_from_activations(acts: list[torch.Tensor], kinds: Sequence[str]) -> dict[str, torch.Tensor]:
    res = {}
    if "paper" in kinds:
        pooled = [F.adaptive_max_pool3d(a.float(), 2).flatten(1) for a in acts[-3:]]  # (B, 8 * C_i) each
        res["paper"] = torch.cat(pooled, dim=1)
    if "last" in kinds:
        res["last"] = acts[-1].float().flatten(1)  # (B, C_last * 4^3)
    return res


def prepare_voxels(voxels: np.ndarray, resolution: int) -> np.ndarray:
    """Validate grids (N, R, R, R) or (R, R, R) and bring them to ``resolution``: float32 (N, r, r, r)."""
    vox = _check_voxel_stack(voxels)
    if vox.shape[1] == resolution:
        return vox.astype(np.float32) if vox.dtype.kind == "f" else (vox > 0).astype(np.float32)
    r = vox.shape[1]
    if max(r, resolution) % min(r, resolution):
        raise BadInputError(f"voxels are {r}^3 but the model needs {resolution}^3 (not an integer factor apart)")
    binary = vox > 0.5 if vox.dtype.kind == "f" else vox > 0
    return resample(binary, resolution).astype(np.float32)


def _check_voxel_stack(voxels: np.ndarray) -> np.ndarray:
    vox = np.asarray(voxels)
    if vox.ndim == 3:
        vox = vox[None]
    if vox.ndim != 4 or not (vox.shape[1] == vox.shape[2] == vox.shape[3]) or vox.shape[1] == 0:
        raise BadInputError(f"voxels must have shape (N, R, R, R), got {vox.shape}")
    if len(vox) == 0:
        raise BadInputError("voxels: empty set (N = 0)")
    if vox.dtype.kind not in "biuf":
        raise BadInputError(f"voxels must be numeric or bool, got dtype {vox.dtype}")
    if vox.dtype.kind == "f" and not np.isfinite(vox).all():
        raise BadInputError("voxels contain NaN or Inf")
    return vox


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise BadInputError(f"unknown feature kind {kind!r}; use 'paper' or 'last'")


# -- nearest-neighbour backends ----------------------------------------------------------------------------
def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def select_backend(n_rows: int, backend: str = "auto", *, have_faiss: bool | None = None) -> str:
    """"sklearn" or "faiss": "auto" picks FAISS only when it is importable and the bank has more than
    FAISS_MIN_ROWS rows; asking for "faiss" without it installed is an error that says how to install it."""
    have = faiss_available() if have_faiss is None else have_faiss
    if backend == "sklearn":
        return "sklearn"
    if backend == "faiss":
        if not have:
            raise BadInputError("backend 'faiss' needs the faiss package: pip install faiss-cpu (or use 'sklearn')")
        return "faiss"
    if backend == "auto":
        return "faiss" if have and n_rows > FAISS_MIN_ROWS else "sklearn"
    raise BadInputError(f"unknown backend {backend!r}; use auto, sklearn or faiss")


class _SklearnIndex:
    """Exact brute-force Euclidean search with sklearn's NearestNeighbors (the bank maps each metric to a
    Euclidean search: see FeatureBank._rows)."""

    def __init__(self, data: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.nn = NearestNeighbors(metric="euclidean", algorithm="brute").fit(data)
        _thread_controller()  # now, so that it sees the OpenMP runtime sklearn just loaded

    def kneighbors(self, q: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        return self.nn.kneighbors(q, n_neighbors)


class _FaissIndex:
    """Exact FAISS Euclidean search with sklearn's ``kneighbors`` interface and distances."""

    def __init__(self, data: np.ndarray) -> None:
        import faiss

        x = np.ascontiguousarray(data, np.float32)
        self.index = faiss.IndexFlatL2(x.shape[1])
        self.index.add(x)

    def kneighbors(self, q: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        d2, idx = self.index.search(np.ascontiguousarray(q, np.float32), n_neighbors)
        return np.sqrt(np.maximum(d2, 0.0)), idx


@functools.lru_cache(maxsize=1)
def _thread_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_THREAD_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _few_threads(work: int) -> Iterator[None]:
    """One BLAS / OpenMP thread for a search of at most ONE_THREAD_WORK multiply-adds. The BLAS setting is
    process-wide: the lock keeps two threads' limit-and-restore from interleaving (which could leave it at 1)."""
    if work > ONE_THREAD_WORK:
        yield
        return
    with _THREAD_LIMIT_LOCK, _thread_controller().limit(limits=1):
        yield


def _unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (a zero row stays zero) (N, F) float32, and the row norms (N,) float32."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1)  # (N,)
    return np.divide(x, n[:, None], out=np.zeros_like(x), where=n[:, None] > 0), n


def _with_zero_flag(rows: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D + 1) float32: a spare coordinate, 1 for a zero feature vector, so that its cosine distance
    to any non-zero vector stays 1 as with metric="cosine" (and two zero vectors are at distance 0)."""
    return np.concatenate([rows.astype(np.float32, copy=False), (norms == 0)[:, None].astype(np.float32)], axis=1)


# -- the feature bank --------------------------------------------------------------------------------------
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
            unit, norms[kind] = _unit_rows(a)  # (N, F) float32, (N,)
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
            _check_kind(kind)
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
        with _few_threads(work):
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
        _check_kind(kind)
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
                return _with_zero_flag(*_unit_rows(f)) if metric == "cosine" else f
            norms = self.norms_[kind]
            if metric == "cosine":
                return _with_zero_flag(f, norms)
            return norms[:, None] * (f + proj.project(proj.mean_[None]))
        if metric == "euclidean":
            return q if proj is None else proj.project(q)
        unit, norms = _unit_rows(q)
        return _with_zero_flag(unit if proj is None else proj.transform(unit), norms)

    def _get_index(self, kind: str, metric: str) -> Any:
        key = (kind, metric)
        if key not in self._index:
            rows = self._rows(None, kind, metric)
            self._index[key] = (_FaissIndex if self.backend_ == "faiss" else _SklearnIndex)(rows)
        return self._index[key]

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the bank as HDF5, atomically (a crash leaves any previous file intact)."""
        import h5py

        self._check_fitted()
        with atomic_h5(path) as h5:
            for kind, arr in self.features_.items():
                h5.create_dataset(f"features_{kind}", data=arr, chunks=(min(len(arr), 64), arr.shape[1]))
                if kind in self.projections_:
                    proj, g = self.projections_[kind], h5.create_group(f"projection_{kind}")
                    g.create_dataset("mean", data=proj.mean_)
                    g.create_dataset("components", data=proj.components_)
                    g.create_dataset("sketch_bucket", data=proj.sketch_bucket_)
                    g.create_dataset("sketch_sign", data=proj.sketch_sign_)
                    g.attrs["n_sketch"] = proj.n_sketch
                    h5.create_dataset(f"norms_{kind}", data=self.norms_[kind])
            h5.create_dataset("labels", data=self.labels_)
            h5.create_dataset("class_names", data=self.class_names_, dtype=h5py.string_dtype("utf-8"))
            h5.create_dataset("source_index", data=self.source_index_)
            if self.thumbnails_ is not None:
                h5.create_dataset("thumbnails", data=self.thumbnails_, compression="gzip", shuffle=False,
                                  chunks=(min(len(self), 256), self.thumbnails_.shape[1]))
            a = h5.attrs
            a["format"], a["version"] = BANK_FORMAT, BANK_VERSION
            a["weights_hash"], a["profile"], a["created"] = self.weights_hash, self.profile, self.created_
            a["data_name"], a["data_sha256"], a["dtype"] = self.data_name, self.data_sha256, self.dtype
            a["thumbnail_resolution"] = self.thumbnail_resolution
            a["n_components"], a["n_sketch"] = self.n_components or 0, self.n_sketch  # 0: full features
            a["random_state"] = self.random_state
            a["meta"] = json.dumps(dict(self.meta or {}))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, *, backend: str = "auto") -> FeatureBank:
        """Read a bank written by :meth:`save`; a corrupt, truncated or foreign file is a BadCheckpointError.

        Reads what the search needs and nothing more (a reduced bank holds no full-size features); version 1
        files (full features only) are read as banks with ``n_components=None``."""
        import h5py

        p = Path(path)
        if not p.is_file():
            raise BadFileError(f"{p}: no such feature bank; build one with gan3d features")
        try:
            check_hdf5_heaps(p)  # a damaged string heap can make HDF5 allocate gigabytes or loop forever
        except BadFileError as e:
            raise BadCheckpointError(str(e)) from None
        try:
            h5 = h5py.File(p, "r")
        except OSError as e:
            raise BadCheckpointError(f"{p}: not a readable feature bank (not HDF5, corrupt or truncated: {e})") from None
        with h5:
            try:  # attributes live in HDF5 heaps that a damaged file can break too
                marker, version = h5.attrs.get("format"), h5.attrs.get("version")
            except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:
                raise BadCheckpointError(f"{p}: damaged feature bank ({type(e).__name__}: {_first_line(e)})") from None
            if marker != BANK_FORMAT:
                raise BadCheckpointError(f"{p}: not a gan3d feature bank (no '{BANK_FORMAT}' marker)")
            if not isinstance(version, (int, np.integer)) or version < 1:
                raise BadCheckpointError(f"{p}: invalid feature bank version {version!r}")
            if version > BANK_VERSION:
                raise BadCheckpointError(f"{p}: feature bank version {version} is newer than this gan3d supports")
            try:
                a = h5.attrs
                bank = cls(weights_hash=str(a["weights_hash"]), profile=str(a["profile"]),
                           data_name=str(a["data_name"]), data_sha256=str(a["data_sha256"]), dtype=str(a["dtype"]),
                           n_components=int(a.get("n_components", 0)) or None, n_sketch=int(a.get("n_sketch", 0)),
                           random_state=int(a.get("random_state", 0)),
                           thumbnail_resolution=int(a["thumbnail_resolution"]), backend=backend,
                           created=str(a["created"]), meta=json.loads(a["meta"]))
                bank._check_params()
                feats, _ = cls._check_features({k: h5[f"features_{k}"][()] for k in KINDS if f"features_{k}" in h5})
                projections, norms = {}, {}
                for k in feats:
                    if f"projection_{k}" in h5:
                        g = h5[f"projection_{k}"]
                        projections[k] = SketchedPCA.from_arrays(
                            g["mean"][()], g["components"][()], g["sketch_bucket"][()], g["sketch_sign"][()],
                            n_sketch=int(g.attrs["n_sketch"]), random_state=bank.random_state)
                        norms[k] = h5[f"norms_{k}"][()]
                names = [c.decode() if isinstance(c, bytes) else str(c) for c in h5["class_names"][()]]
                thumbs = h5["thumbnails"][()] if "thumbnails" in h5 else None
                bank._set_fitted(feats, projections, norms, labels=h5["labels"][()], class_names=names,
                                 source_index=h5["source_index"][()], thumbnails=thumbs)
            except (OSError, KeyError, RuntimeError, ValueError, TypeError, BadInputError) as e:
                raise BadCheckpointError(f"{p}: damaged feature bank ({type(e).__name__}: {_first_line(e)})") from None
        return bank

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k}={v}" + (f"->{self.features_[k].shape[1]}" if k in self.projections_ else "")
                          for k, v in getattr(self, "n_features_", {}).items())
        return f"FeatureBank(n={len(self)}, {kinds or 'unfitted'}, profile={self.profile!r}, data={self.data_name!r})"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else "no details"


def pack_voxels(voxels: np.ndarray, resolution: int = 32) -> np.ndarray:
    """Grids (N, R, R, R) -> bit-packed rows (N, r^3 / 8) uint8 at ``resolution`` (resampled if R differs)."""
    vox = np.asarray(voxels)
    binary = vox > 0.5 if vox.dtype.kind == "f" else vox > 0
    if binary.shape[-1] != resolution:
        binary = resample(binary, resolution)
    return np.packbits(binary.reshape(len(binary), -1).astype(bool), axis=1)


def dataset_features(
    model: Model,
    dataset: VoxelDataset,
    *,
    kinds: Sequence[str] = ("paper",),
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """Features ``{kind: (N, F) dtype}`` of every shape of ``dataset``, read and computed a batch at a time
    with ``model``'s discriminator on its device and precision. ``progress(done, total)`` is called per batch."""
    if model.discriminator is None:
        raise BadInputError(f"model {model.name!r} has no discriminator; use a full training checkpoint")
    if batch_size < 1:
        raise BadInputError(f"batch_size must be >= 1, got {batch_size}")
    n = len(dataset)
    feats = {k: np.empty((n, feature_dim(model.profile, k)), dtype) for k in kinds}
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        vox = dataset.read(np.arange(s, e))  # (B, R, R, R) uint8
        with model._lock:  # the runtime's lock: the app may share this model
            got = extract_feature_sets(model.discriminator, vox, kinds=kinds, batch_size=batch_size,
                                       device=model.device, amp_dtype=model.amp_dtype)
        for k in kinds:
            feats[k][s:e] = got[k]
        if progress is not None:
            progress(e, n)
    return feats


def build_bank(
    model: Model,
    dataset: VoxelDataset,
    *,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    dtype: str = "float16",
    n_components: int | None = 256,
    n_sketch: int = 512,
) -> FeatureBank:
    """A fitted bank of ``dataset``: both feature sets (one forward pass) with ``model``'s discriminator, labels,
    provenance and 32^3 thumbnails, each kind reduced as FeatureBank's ``n_components`` and ``n_sketch`` say.
    ``progress(done, total)`` is called per batch."""
    feats = dataset_features(model, dataset, kinds=KINDS, batch_size=batch_size, progress=progress, dtype=dtype)
    n = len(dataset)
    thumbs = np.concatenate([pack_voxels(dataset.read(np.arange(s, min(n, s + 256))), 32) for s in range(0, n, 256)])
    bank = FeatureBank(
        weights_hash=model.weights_hash(), profile=model.profile.name, data_name=dataset.path.name,
        data_sha256=file_sha256(dataset.path), dtype=dtype, n_components=n_components, n_sketch=n_sketch,
        meta={"classes": dataset.classes, "limit": dataset.limit, "checkpoint": str(model.checkpoint_path or ""),
              "model": model.name},
    )
    return bank.fit(feats, labels=dataset.labels, class_names=dataset.class_names, source_index=dataset.indices,
                    thumbnails=thumbs)


__all__ = [
    "KINDS", "METRICS", "FeatureBank", "build_bank", "dataset_features", "extract_feature_sets", "extract_features", "feature_dim",
    "file_sha256", "pack_voxels", "prepare_voxels", "select_backend",
]
