"""Exact nearest-neighbour search behind the feature bank: the sklearn and FAISS backends, the rows a cosine
search runs on, and the one-thread limit of small searches."""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Iterator

import numpy as np

from gan_core.errors import BadInputError

METRICS = ("cosine", "euclidean")
FAISS_MIN_ROWS = 200_000  # above this many rows "auto" picks FAISS (when importable): exact search stays fast
# Below this many multiply-adds a query runs on one thread: waking BLAS / OpenMP threads costs more than the work,
# and far more on a busy CPU (the 3991-shape bank with a training job on 2 cores: 570 ms vs 5 ms a query).
ONE_THREAD_WORK = 1 << 26


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


class SklearnIndex:
    """Exact brute-force Euclidean search with sklearn's NearestNeighbors (the bank maps each metric to a
    Euclidean search: see FeatureBank._rows)."""

    def __init__(self, data: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.nn = NearestNeighbors(metric="euclidean", algorithm="brute").fit(data)
        _thread_controller()  # now, so that it sees the OpenMP runtime sklearn just loaded

    def kneighbors(self, q: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        return self.nn.kneighbors(q, n_neighbors)


class FaissIndex:
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
def few_threads(work: int) -> Iterator[None]:
    """One BLAS / OpenMP thread for a search of at most ONE_THREAD_WORK multiply-adds. The BLAS setting is
    process-wide: the lock keeps two threads' limit-and-restore from interleaving (which could leave it at 1)."""
    if work > ONE_THREAD_WORK:
        yield
        return
    with _THREAD_LIMIT_LOCK, _thread_controller().limit(limits=1):
        yield


def unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (a zero row stays zero) (N, F) float32, and the row norms (N,) float32."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1)  # (N,)
    return np.divide(x, n[:, None], out=np.zeros_like(x), where=n[:, None] > 0), n


def with_zero_flag(rows: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D + 1) float32: a spare coordinate, 1 for a zero feature vector, so that its cosine distance
    to any non-zero vector stays 1 as with metric="cosine" (and two zero vectors are at distance 0)."""
    return np.concatenate([rows.astype(np.float32, copy=False), (norms == 0)[:, None].astype(np.float32)], axis=1)
