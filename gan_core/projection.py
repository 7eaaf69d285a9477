"""Shrink feature vectors for nearest-neighbour search: PCA, plus a sketch of what PCA leaves out.

A feature bank of the 3991 ModelNet10 training shapes holds 16384-d "last" features at fast32: 162 MB as
float16, and 2 s per exact query. PCA to C = 256 dims keeps 95% of the variance of the unit-length rows, but
the rest is a large share of the distance between *close* shapes: ranked by PCA alone, 86% of the exact
top-5 cosine neighbours of a bank shape survive (83% for generated shapes) and distances come out ~17% low.

So the residual (the part of a vector outside the PCA subspace) is summarised too, by a CountSketch: m signed
sums of its coordinates, coordinate j added with sign s_j into bucket h_j (Charikar et al. 2002). The sketch is
linear and keeps squared lengths in expectation, so in the mapped space

    |T(a) - T(b)|^2 = |W(a - b)|^2 + |S(I - W'W)(a - b)|^2

is the squared distance within the PCA subspace plus an unbiased estimate of the squared residual distance: it
is exact (0) for a vector and itself, and unbiased for any pair. With C = 256 and m = 512 the fast32 bank keeps
94% of the exact top-5 cosine neighbours of its shapes (91% for generated shapes) in 768 dims, and the distance to
the nearest shape within 0.5%. The sketch costs two (F,) arrays and m columns per row; plain PCA needs C = 768
(three times the components, 12 MB more) to keep 91% / 90%.
"""

from __future__ import annotations

import numpy as np

from gan_core.errors import BadInputError

_CHUNK = 1024  # rows mapped at a time: the residual is a (rows, F) float32 temporary


class SketchedPCA:
    """Linear map of F-d vectors to C + m dims: the top-C PCA scores and an m-d CountSketch of the residual.

    Parameters
    ----------
    n_components : int
        PCA components C (at most the number of rows and F of the data).
    n_sketch : int
        Sketch dimensions m of the PCA residual; 0 gives plain PCA (distances then lower bounds).
    dtype : "float16" or "float32"
        Precision of the stored components. The map uses the rounded components, so a bank row and the same
        vector given as a query map alike; float16 keeps the same top-5 neighbours as float32 (measured).
    random_state : int
        Seed of the randomized SVD and of the sketch's buckets and signs.

    Fitted attributes: ``mean_`` (F,) float32, ``components_`` (C, F) ``dtype`` (orthonormal rows, up to
    rounding), ``sketch_bucket_`` (F,) int32 in [0, m), ``sketch_sign_`` (F,) int8 of +-1,
    ``explained_variance_ratio_`` (C,) (NaN when loaded), ``n_features_in_`` F.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(50, 300)).astype(np.float32)
    >>> p = SketchedPCA(8, n_sketch=16).fit(x)
    >>> p.transform(x).shape
    (50, 24)
    """

    def __init__(self, n_components: int = 256, *, n_sketch: int = 512, dtype: str = "float16",
                 random_state: int = 0) -> None:
        self.n_components = n_components
        self.n_sketch = n_sketch
        self.dtype = dtype
        self.random_state = random_state

    def fit(self, x: np.ndarray) -> SketchedPCA:
        """Fit PCA to rows ``x`` (N, F) float and draw the sketch; returns self."""
        from sklearn.decomposition import PCA

        self._check_params()
        x = np.asarray(x, np.float32)  # sklearn would widen float16 to float64: twice the memory
        if x.ndim != 2 or len(x) < 2:
            raise BadInputError(f"SketchedPCA needs at least 2 rows (N, F), got {x.shape}")
        n, f = x.shape
        c = min(self.n_components, n, f)
        # randomized SVD: 16x faster than a full SVD of 3991 x 16384; exact solver when C is most of the rank
        solver = "randomized" if c < 0.8 * min(n, f) else "full"
        pca = PCA(c, svd_solver=solver, random_state=self.random_state).fit(x)
        rng = np.random.default_rng(self.random_state)
        self._set(pca.mean_, pca.components_.astype(self.dtype),
                  rng.integers(0, max(self.n_sketch, 1), f), rng.choice(np.array([-1, 1], np.int8), f))
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        return self

    @classmethod
    def from_arrays(cls, mean: np.ndarray, components: np.ndarray, sketch_bucket: np.ndarray,
                    sketch_sign: np.ndarray, *, n_sketch: int, random_state: int = 0) -> SketchedPCA:
        """A fitted map from stored arrays (a bank file); BadInputError when they do not fit together."""
        comp = np.asarray(components)
        if comp.dtype not in (np.float16, np.float32):
            raise BadInputError(f"components must be float16 or float32, got {comp.dtype}")
        p = cls(len(comp), n_sketch=n_sketch, dtype=str(comp.dtype), random_state=random_state)
        p._check_params()
        p._set(mean, comp, sketch_bucket, sketch_sign)
        p.explained_variance_ratio_ = np.full(len(comp), np.nan)
        return p

    def _check_params(self) -> None:
        if isinstance(self.n_components, bool) or not isinstance(self.n_components, (int, np.integer)) \
                or self.n_components < 1:
            raise BadInputError(f"n_components must be a positive integer, got {self.n_components!r}")
        if isinstance(self.n_sketch, bool) or not isinstance(self.n_sketch, (int, np.integer)) or self.n_sketch < 0:
            raise BadInputError(f"n_sketch must be an integer >= 0, got {self.n_sketch!r}")
        if self.dtype not in ("float16", "float32"):
            raise BadInputError(f"dtype must be 'float16' or 'float32', got {self.dtype!r}")

    def _set(self, mean: np.ndarray, components: np.ndarray, bucket: np.ndarray, sign: np.ndarray) -> None:
        mean, comp = np.asarray(mean, np.float32), np.asarray(components)
        bucket, sign = np.asarray(bucket), np.asarray(sign)
        f = mean.shape[0] if mean.ndim == 1 else -1
        if comp.ndim != 2 or comp.shape[1] != f or len(comp) == 0 or bucket.shape != (f,) or sign.shape != (f,):
            raise BadInputError(f"projection arrays disagree: mean {mean.shape}, components {comp.shape}, "
                                f"sketch {bucket.shape} / {sign.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(comp).all()):
            raise BadInputError("projection arrays contain NaN or Inf")
        m = self.n_sketch
        if bucket.dtype.kind not in "iu" or (m and (bucket.min() < 0 or bucket.max() >= m)) or \
                not np.isin(sign, (-1, 1)).all():
            raise BadInputError(f"sketch buckets must index 0..{m - 1} and signs be +-1")
        self.mean_, self.components_ = mean, comp
        self.sketch_bucket_, self.sketch_sign_ = bucket.astype(np.int32), sign.astype(np.int8)
        self.n_features_in_ = f
        self._w = comp.astype(np.float32)  # (C, F): the map runs in float32 on the rounded components
        self._sketch = None
        if m:
            import scipy.sparse

            # (F, m): column b sums the signed coordinates hashed to bucket b
            self._sketch = scipy.sparse.csr_matrix(
                (self.sketch_sign_.astype(np.float32), (np.arange(f), self.sketch_bucket_)), shape=(f, m))

    @property
    def n_output_(self) -> int:
        """Mapped dimensions: C + m."""
        return len(self.components_) + self.n_sketch

    def project(self, x: np.ndarray) -> np.ndarray:
        """The linear map T: (N, F) -> (N, C + m) float32, without centering (T(a) - T(b) = T(a - b))."""
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise BadInputError(f"expected (N, {self.n_features_in_}) rows, got {x.shape}")
        out = np.empty((len(x), self.n_output_), np.float32)
        c = len(self._w)
        for s in range(0, len(x), _CHUNK):
            xs = x[s:s + _CHUNK]
            p = xs @ self._w.T  # (B, C)
            out[s:s + len(xs), :c] = p
            if self._sketch is not None:
                out[s:s + len(xs), c:] = (self._sketch.T @ (xs - p @ self._w).T).T  # (B, m) of the residual
        return out

    def transform(self, x: np.ndarray) -> np.ndarray:
        """T(x - mean_): PCA scores of ``x`` (N, F) and the sketch of their residual, (N, C + m) float32."""
        return self.project(np.asarray(x, np.float32) - self.mean_)


__all__ = ["SketchedPCA"]
