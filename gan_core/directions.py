"""Semantic directions in z: move a shape by meaning rather than by seed.

* Without labels (GANSpace, Härkönen et al. 2020): sample z from the prior, take the generator's first block's
  activations (the 4^3 volume after BatchNorm and ReLU), find their principal components, and map each one
  back to a direction in z by least-squares regression of z on the PCA scores, as GANSpace does for BigGAN
  (whose first layer cannot be inverted). A direction is then named by what it does to shapes, where a label
  explains it: shapes moved along it are classified in D-feature space (``FeatureBank.predict``) and the
  classes it moves them towards, at either end, become its name ("PC2: - table / + bed").
* With labels: the mean z of each class's projected training shapes (a small subset per class, projected in
  one batch from their nearest generated look-alikes); "chair -> sofa" is mean(sofa) - mean(chair).

Directions are unit vectors with a ``span``: a slider runs from -span to +span in z units. Along any unit
vector a prior sample has unit spread, so +-3 covers the prior for the unsupervised ones; a class direction
spans the distance between its class means (1.5 times that took the fast32 model's chairs into solid boxes).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from gan_core.cache import cache_dir, cache_key, load_or_make, load_tagged_npz, save_tagged_npz
from gan_core.errors import BadFileError, BadInputError
from gan_core.latent import project_many

if TYPE_CHECKING:
    from gan_core.features import FeatureBank
    from gan_core.model import Model
    from gan_core.models import Generator

log = logging.getLogger(__name__)

FORMAT, VERSION = "gan3d-directions", 1
PCA_SPAN = 3.0  # prior standard deviations either way
CLASS_SPAN = 1.0  # class-mean distances either way: the slider's end moves a shape by the whole difference
NAME_SHARE = 0.25  # a class names a direction when moving along it changes that class's share by this much
DEFAULT_PAIRS = (("chair", "sofa"), ("table", "desk"), ("night_stand", "dresser"), ("bed", "sofa"))
Progress = Callable[[int, int], None]


@dataclass
class Direction:
    """A unit ``vector`` (z_dim,) in z, its slider ``span``, a ``name``, its ``kind`` ("pca" or "class"),
    and for "pca" the share of activation variance it explains and the measured ``effects`` (class shares at
    -span and +span, mean relative change of volume and extents)."""

    name: str
    vector: np.ndarray
    span: float
    kind: str = "pca"
    explained: float = float("nan")
    effects: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PcaParams:
    """GANSpace settings: ``n_samples`` prior samples, ``n_components`` directions, the first ``n_named``
    named from ``n_probe`` shapes moved to either end (needs a bank)."""

    n_samples: int = 2000
    n_components: int = 10
    seed: int = 0
    n_named: int = 5
    n_probe: int = 24

    def check(self) -> PcaParams:
        if self.n_components < 1 or self.n_samples <= self.n_components:
            raise BadInputError(f"need 1 <= components < samples, got {self.n_components} and {self.n_samples}")
        if not 0 <= self.n_named <= self.n_components or self.n_probe < 1:
            raise BadInputError(f"named directions must be 0..{self.n_components} with >= 1 probe shape")
        return self


@dataclass
class ClassMeans:
    """Mean z (C, z_dim) of each class's projected training shapes, how many (C,), their mean IoU (C,)."""

    means: np.ndarray
    counts: np.ndarray
    iou: np.ndarray
    class_names: list[str]

    def direction(self, a: str, b: str) -> Direction:
        """The unit direction from class ``a``'s mean to class ``b``'s ("chair -> sofa")."""
        for name in (a, b):
            if name not in self.class_names:
                raise BadInputError(f"unknown class {name!r}; known: {', '.join(self.class_names)}")
            if self.counts[self.class_names.index(name)] == 0:
                raise BadInputError(f"class {name!r} has no projected shapes")
        d = self.means[self.class_names.index(b)] - self.means[self.class_names.index(a)]
        length = float(np.linalg.norm(d))
        if length < 1e-6:
            raise BadInputError(f"classes {a!r} and {b!r} have the same mean z")
        return Direction(f"{a} \u2192 {b}", (d / length).astype(np.float32), CLASS_SPAN * length, "class")

    def default_pairs(self) -> list[tuple[str, str]]:
        """Of DEFAULT_PAIRS, those whose classes both have projected shapes."""
        have = {c for c, n in zip(self.class_names, self.counts) if n}
        return [(a, b) for a, b in DEFAULT_PAIRS if a in have and b in have]


# -- unsupervised ------------------------------------------------------------------------------------------
def first_block(generator: torch.nn.Module, z: np.ndarray, batch: int = 256) -> np.ndarray:
    """Activations (N, C0 * 4^3) float32 of the generator's first block (ConvTranspose3d, BatchNorm, ReLU:
    ``Generator.net[:3]``) for z (N, z_dim)."""
    block = generator.net[:3]
    zd = generator.profile.z_dim
    out = []
    with torch.inference_mode():
        for s in range(0, len(z), batch):
            zt = torch.from_numpy(np.ascontiguousarray(z[s:s + batch], np.float32))
            out.append(block(zt.view(-1, zd, 1, 1, 1)).flatten(1).float().numpy())  # (B, C0 * 64)
    return np.concatenate(out)


def pca_directions(model: Model, params: PcaParams = PcaParams()) -> list[Direction]:
    """GANSpace directions "PC1".."PCk" (unnamed) of ``model``'s generator, most variance first."""
    from sklearn.decomposition import PCA

    params.check()
    z = model.sample_z(params.n_samples, seed=params.seed)  # (N, z_dim)
    acts = first_block(_private_generator(model), z)  # (N, F)
    pca = PCA(params.n_components, svd_solver="randomized", random_state=params.seed).fit(acts)
    scores = pca.transform(acts)  # (N, k)
    u, *_ = np.linalg.lstsq(scores, z - z.mean(0), rcond=None)  # (k, z_dim): z ~ scores @ u
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return [Direction(f"PC{i + 1}", u[i].astype(np.float32), PCA_SPAN, "pca", float(r))
            for i, r in enumerate(pca.explained_variance_ratio_)]


def name_directions(model: Model, bank: FeatureBank, directions: Sequence[Direction], *, n_probe: int = 24,
                    seed: int = 1, progress: Progress | None = None) -> list[Direction]:
    """Name each direction by the classes it moves shapes towards: ``n_probe`` prior samples moved to -span
    and +span are classified in D-feature space; a class whose share grows by NAME_SHARE or more towards one
    end names that end ("PC2: \u2212 table / + bed", "PC4: + sofa"). Effects are recorded either way."""
    z = model.sample_z(n_probe, seed=seed)
    out = []
    for i, d in enumerate(directions):
        ends = [_effects(model, bank, z + s * d.span * d.vector) for s in (-1.0, 1.0)]
        minus, plus = (e["shares"] for e in ends)
        gain = np.array(plus) - np.array(minus)
        names = bank.class_names_
        lo = names[int(gain.argmin())] if -gain.min() >= NAME_SHARE else ""
        hi = names[int(gain.argmax())] if gain.max() >= NAME_SHARE else ""
        label = " / ".join(x for x in (lo and f"\u2212 {lo}", hi and f"+ {hi}") if x)
        base = d.name.split(":")[0]
        effects = {"minus": minus, "plus": plus, "classes": list(names),
                   **{k: ends[1][k] / max(ends[0][k], 1e-6) - 1.0 for k in ("volume", "height", "width", "depth")}}
        out.append(Direction(f"{base}: {label}" if label else base, d.vector, d.span, d.kind, d.explained, effects))
        if progress is not None:
            progress(i + 1, len(directions))
    return out


def _effects(model: Model, bank: FeatureBank, z: np.ndarray) -> dict:
    """Class shares (C,) of the shapes of z by a vote in D-feature space, and their mean volume and extents
    (voxels; height is axis 2, width axis 0, depth axis 1)."""
    vox = model.generate(z, use_cache=False) > 0.5  # (N, R, R, R)
    labels = bank.predict(model.features(vox.astype(np.uint8), kind="paper"))
    shares = np.bincount(labels, minlength=len(bank.class_names_)) / len(labels)
    ext = {"volume": float(vox.sum((1, 2, 3)).mean())}
    for name, axis in (("width", 0), ("depth", 1), ("height", 2)):
        occ = vox.any(axis=tuple(a + 1 for a in range(3) if a != axis))  # (N, R) occupied slices
        first, last = occ.argmax(1), occ.shape[1] - occ[:, ::-1].argmax(1)
        ext[name] = float(np.where(occ.any(1), last - first, 0).mean())
    return {"shares": shares.round(4).tolist(), **ext}


# -- supervised --------------------------------------------------------------------------------------------
def class_means(model: Model, bank: FeatureBank, *, per_class: int = 6, steps: int = 20, pool: int = 256,
                seed: int = 0, progress: Progress | None = None) -> ClassMeans:
    """Project ``per_class`` training shapes of each class (bank thumbnails, a seeded random subset) into z and
    average per class. Each projection starts from the nearest of ``pool`` generated shapes in D-feature space
    and runs ``steps`` Adam steps (:func:`gan_core.latent.project_many`), on a private copy of the generator
    so that the app's views keep generating meanwhile. ``progress`` counts steps."""
    if per_class < 1 or steps < 0 or pool < 1:
        raise BadInputError(f"need per_class >= 1, steps >= 0 and pool >= 1, got {per_class}, {steps}, {pool}")
    if bank.thumbnails_ is None:
        raise BadInputError("class directions need a bank with thumbnails (the training shapes)")
    bank.check_model(model)
    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.permutation(np.flatnonzero(bank.labels_ == c))[:per_class]
                           for c in range(len(bank.class_names_))]).astype(np.int64)
    targets = np.stack([bank.thumbnail(int(i)) for i in rows])  # (T, 32, 32, 32) uint8
    zp = model.sample_z(pool, seed=seed + 1)
    looks = bank.search_rows(model.features(model.generate(zp, use_cache=False), kind="paper"), kind="paper")
    mine = bank.search_rows(kind="paper")[rows]  # (T, D) the targets' own rows
    nearest = ((mine**2).sum(1)[:, None] - 2 * mine @ looks.T + (looks**2).sum(1)[None]).argmin(1)  # (T,)
    z, iou = project_many(_private_generator(model), targets, steps=steps, restarts=1, seed=seed,
                          init=zp[nearest], progress=progress)
    log.info("projected %d training shapes, mean IoU %.3f", len(rows), float(iou.mean()))
    labels = bank.labels_[rows]
    c = len(bank.class_names_)
    counts = np.bincount(labels, minlength=c)
    means = np.zeros((c, z.shape[1]), np.float32)
    mean_iou = np.zeros(c, np.float32)
    for k in np.flatnonzero(counts):
        means[k], mean_iou[k] = z[labels == k].mean(0), iou[labels == k].mean()
    return ClassMeans(means, counts.astype(np.int64), mean_iou, list(bank.class_names_))


def _private_generator(model: Model) -> Generator:
    """A float32 copy of the generator on the CPU (eval mode), taken under the model's lock: long work on it
    neither blocks the app's generation nor races with it."""
    with model.lock:  # as features.dataset_features takes it
        g = copy.deepcopy(model.generator)
    return g.float().cpu().to(memory_format=torch.contiguous_format).eval()


# -- smoothness --------------------------------------------------------------------------------------------
def class_flip_rate(model: Model, bank: FeatureBank, z: np.ndarray, direction: Direction,
                    steps: int = 41) -> np.ndarray:
    """How jumpy a slider is: for each start z (M, z_dim), the fraction of its ``steps - 1`` slider steps
    (from -span to +span) at which the shape's class in D-feature space changes. (M,) float."""
    if steps < 2:
        raise BadInputError(f"a slider needs at least 2 steps, got {steps}")
    s = np.linspace(-direction.span, direction.span, steps)  # (S,)
    out = []
    for z0 in np.atleast_2d(z):
        zs = z0[None] + s[:, None] * direction.vector[None]  # (S, z_dim)
        vox = model.generate(zs.astype(np.float32), use_cache=False)
        labels = bank.predict(model.features(vox, kind="paper"))
        out.append(float((labels[1:] != labels[:-1]).mean()))
    return np.array(out)


# -- files and cache ---------------------------------------------------------------------------------------
def save_directions(path: str | Path, directions: Sequence[Direction], means: ClassMeans | None = None,
                    meta: dict | None = None) -> Path:
    """Write directions (and class means) as an npz without pickle, atomically."""
    arrays = {"vectors": np.stack([d.vector for d in directions]) if directions else np.zeros((0, 0), np.float32)}
    head = {"directions": [{k: v for k, v in asdict(d).items() if k != "vector"} for d in directions],
            **(meta or {})}
    if means is not None:
        arrays |= {"class_means": means.means, "class_counts": means.counts, "class_iou": means.iou}
        head["class_names"] = means.class_names
    return save_tagged_npz(path, FORMAT, VERSION, head, arrays)


def load_directions(path: str | Path) -> tuple[list[Direction], ClassMeans | None]:
    """Directions and class means (None if the file has none) from :func:`save_directions`."""
    meta, a = load_tagged_npz(path, FORMAT, VERSION)
    try:
        dirs = [Direction(vector=a["vectors"][i].astype(np.float32), **d) for i, d in enumerate(meta["directions"])]
        means = None
        if "class_means" in a:
            means = ClassMeans(a["class_means"], a["class_counts"], a["class_iou"], list(meta["class_names"]))
    except (KeyError, TypeError, IndexError) as e:
        raise BadFileError(f"{path}: damaged directions file ({type(e).__name__}: {e})") from None
    return dirs, means


def load_or_build_pca(model: Model, bank: FeatureBank | None, params: PcaParams = PcaParams(), *,
                      cache: str | Path | None = None, progress: Progress | None = None) -> list[Direction]:
    """GANSpace directions of ``model``, the first ``params.n_named`` named with ``bank`` (when given), from
    the cache or computed and cached."""
    params.check()
    parts = [model.weights_hash("generator"), asdict(params)]
    if bank is not None:
        bank.check_model(model)
        parts += [bank.weights_hash, bank.data_sha256, bank.created_]
    path = Path(cache if cache is not None else cache_dir()) / f"directions-pca-{cache_key(VERSION, *parts)}.npz"

    def make() -> list[Direction]:
        dirs = pca_directions(model, params)
        if bank is not None and params.n_named:
            dirs[:params.n_named] = name_directions(model, bank, dirs[:params.n_named], n_probe=params.n_probe,
                                                    seed=params.seed + 1, progress=progress)
        return dirs

    return load_or_make(path, lambda p: load_directions(p)[0], make, lambda d, p: save_directions(p, d))


def load_or_build_class_means(model: Model, bank: FeatureBank, *, per_class: int = 6, steps: int = 20,
                              seed: int = 0, cache: str | Path | None = None,
                              progress: Progress | None = None) -> ClassMeans:
    """:func:`class_means` from the cache, or computed (minutes on a CPU) and cached."""
    bank.check_model(model)
    parts = [model.weights_hash("generator"), bank.weights_hash, bank.data_sha256, bank.created_, per_class,
             steps, seed]
    path = Path(cache if cache is not None else cache_dir()) / f"directions-class-{cache_key(VERSION, *parts)}.npz"

    def load(p: Path) -> ClassMeans:
        means = load_directions(p)[1]
        if means is None:
            raise BadFileError(f"{p}: holds no class means")
        return means

    return load_or_make(path, load, lambda: class_means(model, bank, per_class=per_class, steps=steps, seed=seed,
                                                        progress=progress),
                        lambda m, p: save_directions(p, [], m))


__all__ = ["ClassMeans", "Direction", "PcaParams", "class_flip_rate", "class_means", "first_block",
           "load_directions", "load_or_build_class_means", "load_or_build_pca", "name_directions",
           "pca_directions", "save_directions"]
