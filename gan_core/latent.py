"""Latent-space operations: seeded sampling, lerp / slerp paths, arithmetic, and projection of a voxel grid
back to z (so a user's own or a training shape can be interpolated and combined like a generated one)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.config import Profile
from gan_core.errors import BadInputError
from gan_core.memory import check_memory

if TYPE_CHECKING:
    from gan_core.models import Generator


def sample_z(
    n: int, profile: Profile, *, seed: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` latent vectors (n, z_dim) from the profile's prior (N(0, 1), or U[0, 1) as in the authors' release).

    The same ``seed`` always gives the same vectors, on any device.
    """
    if n < 0:
        raise BadInputError(f"number of samples must be >= 0, got {n}")
    check_memory(n * profile.z_dim * 4, f"{n} latent vectors", hint="ask for fewer samples")
    if seed is not None and not _SEED_MIN <= int(seed) <= _SEED_MAX:  # torch's range; beyond it, OverflowError
        raise BadInputError(f"seed must be an integer in {_SEED_MIN}..{_SEED_MAX}, got {seed}")
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed) if seed is not None else torch.seed())
    if profile.z_prior == "uniform":
        return torch.rand(n, profile.z_dim, generator=generator)
    return torch.randn(n, profile.z_dim, generator=generator)


def check_z(z: np.ndarray | torch.Tensor, z_dim: int, what: str = "z") -> np.ndarray:
    """Validate latent vectors: (z_dim,) or (N, z_dim), finite. Returns float32 (N, z_dim)."""
    arr = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    if arr.dtype.kind not in "fiu":
        raise BadInputError(f"{what} must be numeric, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes Inf: refused below
        arr = arr.astype(np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != z_dim:
        raise BadInputError(f"{what} must have shape (N, {z_dim}) or ({z_dim},), got {tuple(np.shape(z))}")
    if not np.isfinite(arr).all():
        raise BadInputError(f"{what} contains NaN or Inf")
    return arr


_SEED_MIN, _SEED_MAX = -(2**63), 2**64 - 1


def _vectors(names: Sequence[str], *zs: np.ndarray | torch.Tensor) -> list[np.ndarray]:
    """The operands of a latent operation as finite float arrays of one shape, or a BadInputError."""
    out = []
    for name, z in zip(names, zs):
        arr = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
        if arr.dtype.kind not in "fiu" or arr.ndim == 0:
            raise BadInputError(f"z {name} must be a numeric vector, got {arr.dtype} of shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise BadInputError(f"z {name} contains NaN or Inf")
        out.append(arr)
    if len({a.shape for a in out}) > 1:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, out))
        raise BadInputError(f"z vectors must have the same shape, got {shapes}")
    return out


def _weights(t: float | Sequence[float] | np.ndarray, what: str = "t") -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64)
    if arr.ndim > 1 or not np.isfinite(arr).all():
        raise BadInputError(f"{what} must be a finite number or a 1-D array of them, got {t!r}")
    return arr


def lerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Linear interpolation (1 - t) a + t b; ``t`` scalar or (T,) gives (z_dim,) or (T, z_dim)."""
    a, b = _vectors("ab", a, b)
    t = _weights(t).astype(np.float32)
    return ((1 - t)[..., None] * a + t[..., None] * b).astype(np.float32) if t.ndim else ((1 - t) * a + t * b).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation: keeps the norm typical of a Gaussian prior all along the path, so middle
    shapes are as crisp as the ends (lerp shrinks the norm and washes them out). Falls back to lerp
    for (anti)parallel vectors."""
    a, b = (v.astype(np.float64) for v in _vectors("ab", a, b))
    if a.ndim != 1:
        raise BadInputError(f"slerp takes single z vectors (z_dim,), got shape {a.shape}")
    _weights(t)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-8 or nb < 1e-8:
        return lerp(a, b, t)
    cos = np.clip(np.dot(a / na, b / nb), -1.0, 1.0)
    omega = math.acos(cos)
    if omega < 1e-4 or abs(omega - math.pi) < 1e-4:
        return lerp(a, b, t)
    t = np.asarray(t, dtype=np.float64)
    s = math.sin(omega)
    wa, wb = np.sin((1 - t) * omega) / s, np.sin(t * omega) / s
    return (wa[..., None] * a + wb[..., None] * b).astype(np.float32) if t.ndim else (wa * a + wb * b).astype(np.float32)


def interpolate(a: np.ndarray, b: np.ndarray, t: float | np.ndarray, mode: str = "slerp") -> np.ndarray:
    """lerp or slerp by name."""
    if mode == "lerp":
        return lerp(a, b, t)
    if mode == "slerp":
        return slerp(a, b, t)
    raise BadInputError(f"unknown interpolation mode {mode!r}; use lerp or slerp")


def path(a: np.ndarray, b: np.ndarray, steps: int, mode: str = "slerp") -> np.ndarray:
    """``steps`` evenly spaced points from a to b inclusive: (steps, z_dim)."""
    if steps < 2:
        raise BadInputError(f"a path needs at least 2 steps, got {steps}")
    return interpolate(a, b, np.linspace(0.0, 1.0, steps), mode)


KEYFRAME_MODES = ("slerp", "lerp", "spline")


def keyframe_path(keys: Sequence[np.ndarray], steps_per_segment: int, mode: str = "slerp") -> np.ndarray:
    """A path through 2 or more keyframes, segment by segment, without repeating the shared ends:
    ((K - 1) * (steps_per_segment - 1) + 1, z_dim). ``mode`` "spline" is one smooth curve through all keys."""
    if len(keys) < 2:
        raise BadInputError("a keyframe path needs at least 2 keyframes")
    if mode == "spline":
        if steps_per_segment < 2:
            raise BadInputError(f"a path needs at least 2 steps, got {steps_per_segment}")
        return along_keyframes(keys, np.linspace(0.0, 1.0, (len(keys) - 1) * (steps_per_segment - 1) + 1), mode)
    out = [path(keys[i], keys[i + 1], steps_per_segment, mode)[: -1 if i < len(keys) - 2 else None]
           for i in range(len(keys) - 1)]
    return np.concatenate(out)


def along_keyframes(keys: Sequence[np.ndarray], t: float | np.ndarray, mode: str = "slerp") -> np.ndarray:
    """z at position ``t`` in [0, 1] (scalar or (T,)) on a path through ``keys``, key j at t = j / (K - 1):
    (z_dim,) or (T, z_dim).

    "lerp" / "slerp" interpolate each segment on its own (the path turns sharply at a key); "spline" is a
    Catmull-Rom spline through every key, so an animation keeps its speed and direction through the keys. It
    runs on the keys' directions and, apart, their norms, then rescales: like slerp it keeps the norm typical
    of the prior between keys instead of washing the shapes out. Two keys give the plain segment.
    """
    if mode not in KEYFRAME_MODES:
        raise BadInputError(f"unknown interpolation mode {mode!r}; use {', '.join(KEYFRAME_MODES)}")
    if len(keys) < 2:
        raise BadInputError("a keyframe path needs at least 2 keyframes")
    ks = [k.astype(np.float64) for k in _vectors([f"key {i + 1}" for i in range(len(keys))], *keys)]
    if ks[0].ndim != 1:
        raise BadInputError(f"keyframes must be single z vectors (z_dim,), got shape {ks[0].shape}")
    tt = _weights(t)
    scalar = tt.ndim == 0
    pos = np.clip(np.atleast_1d(tt), 0.0, 1.0) * (len(ks) - 1)  # (T,) in segment units
    seg = np.minimum(pos.astype(np.int64), len(ks) - 2)
    local = pos - seg
    out = np.empty((len(pos), ks[0].shape[0]), np.float32)
    for s in np.unique(seg):
        m = seg == s
        out[m] = _spline(ks, int(s), local[m]) if mode == "spline" else interpolate(ks[s], ks[s + 1], local[m], mode)
    return out[0] if scalar else out


def _spline(keys: list[np.ndarray], s: int, u: np.ndarray) -> np.ndarray:
    """Segment ``s`` of the Catmull-Rom spline through ``keys`` at local positions u (T,): (T, z_dim).
    The ends get a reflected neighbour (p0 = 2 p1 - p2), so two keys give a straight segment."""
    norms = np.array([np.linalg.norm(k) for k in keys])  # (K,)
    dirs = np.stack([k / n if n > 1e-8 else k for k, n in zip(keys, norms)])  # (K, z_dim)

    def cr(p: np.ndarray) -> np.ndarray:  # p (K, D) -> (T, D)
        p1, p2 = p[s], p[s + 1]
        p0 = p[s - 1] if s > 0 else 2 * p1 - p2
        p3 = p[s + 2] if s + 2 < len(p) else 2 * p2 - p1
        uu = u[:, None]
        return 0.5 * (2 * p1 + (p2 - p0) * uu + (2 * p0 - 5 * p1 + 4 * p2 - p3) * uu**2
                      + (3 * p1 - p0 - 3 * p2 + p3) * uu**3)

    d = cr(dirs)  # (T, z_dim)
    length = np.linalg.norm(d, axis=1, keepdims=True)
    d = np.divide(d, length, out=np.zeros_like(d), where=length > 1e-8)
    return (d * cr(norms[:, None])).astype(np.float32)


PRIORS = ("normal", "uniform")


def prior_norm(z_dim: int, prior: str = "normal") -> float:
    """The typical distance of a prior sample from the prior's centre (:func:`prior_centre`): sqrt(z_dim) for
    N(0, 1) (E|z|^2 = z_dim; samples lie on that shell), sqrt(z_dim / 12) for U[0, 1) about 0.5."""
    if prior not in PRIORS:
        raise BadInputError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    return math.sqrt(z_dim if prior == "normal" else z_dim / 12.0)


def prior_centre(prior: str = "normal") -> float:
    """The centre of the prior: 0 for N(0, 1), 0.5 for U[0, 1)."""
    if prior not in PRIORS:
        raise BadInputError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    return 0.0 if prior == "normal" else 0.5


def arithmetic(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    *, prior: str | None = "normal",
) -> np.ndarray:
    """Shape arithmetic wa * a - wb * b + wc * c (the paper's "z_a - z_b + z_c").

    With ``prior`` ("normal" or "uniform", the profile's ``z_prior``) the result is brought back to the prior's
    typical norm about its centre (:func:`prior_norm`: sqrt(z_dim) for N(0, 1)), keeping its direction: the
    raw sum of three prior samples is about sqrt(3) = 1.7 times as long as one, off the shell the generator
    was trained on (its shapes come out fuller there). ``prior=None`` keeps the raw sum."""
    a, b, c = _vectors("abc", a, b, c)
    w = _weights(weights, "weights")
    if w.shape != (3,):
        raise BadInputError(f"weights must be three numbers, got {weights!r}")
    wa, wb, wc = w
    raw = wa * a - wb * b + wc * c
    if prior is None:
        return raw.astype(np.float32)
    centre = prior_centre(prior)
    d = np.asarray(raw, np.float64) - centre  # (..., z_dim): each vector along the last axis
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    scale = np.divide(prior_norm(d.shape[-1], prior), length, out=np.zeros_like(length), where=length > 1e-8)
    return (centre + d * scale).astype(np.float32)  # a zero difference (a - a + 0) stays the centre


def project(
    generator: Generator,
    target: np.ndarray,
    *,
    steps: int = 200,
    restarts: int = 4,
    lr: float = 0.05,
    prior_weight: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, float]:
    """Find z with G(z) close to ``target`` (R, R, R) occupancy: Adam on a balanced binary cross-entropy
    plus a small pull towards the prior, from ``restarts`` random starts run as one batch.

    Returns (z (z_dim,), IoU of G(z) > 0.5 with the target).
    """
    tgt = np.asarray(target)
    if tgt.ndim != 3:
        raise BadInputError(f"target must be a cubic grid (R, R, R), got {tgt.shape}")
    z, iou = project_many(generator, tgt[None], steps=steps, restarts=restarts, lr=lr, prior_weight=prior_weight,
                          seed=seed, device=device, progress=progress)
    return z[0], float(iou[0])


def project_many(
    generator: Generator,
    targets: np.ndarray,
    *,
    steps: int = 200,
    restarts: int = 4,
    lr: float = 0.05,
    prior_weight: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    init: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`project` for a stack of targets (T, R, R, R) in one batch of T * restarts (far faster per shape
    than one at a time on a CPU). Returns z (T, z_dim) float32 and IoU (T,) float32; one target gives exactly
    what :func:`project` gives.

    ``init`` (T, z_dim) starts each target's search there instead of at prior samples (with ``restarts`` 1):
    from a generated shape that already looks like the target (its nearest in D-feature space), a few dozen
    steps do what a few hundred from random starts do."""
    profile = generator.profile
    r = profile.resolution
    tgts = np.asarray(targets)
    if tgts.ndim != 4 or len(tgts) == 0:
        raise BadInputError(f"targets must be a non-empty stack of cubic grids (T, R, R, R), got {tgts.shape}")
    if tgts.dtype.kind not in "biuf" or (tgts.dtype.kind == "f" and not np.isfinite(tgts).all()):
        raise BadInputError(f"target must be a numeric grid without NaN or Inf (dtype {tgts.dtype})")
    if tgts.shape[1:] != (r, r, r):
        from gan_core.data.resample import resample

        if tgts.shape[1] == tgts.shape[2] == tgts.shape[3]:
            tgts = resample(tgts > 0.5, r)
        else:
            raise BadInputError(f"target must be a cubic grid ({r}, {r}, {r}), got {tgts.shape[1:]}")
    device = torch.device(device)
    was_training = generator.training
    generator.eval()
    n = len(tgts) * restarts
    y = torch.from_numpy((tgts > 0.5).astype(np.float32)).to(device).repeat_interleave(restarts, 0)  # (n, r, r, r)
    pos = y.mean(dim=(1, 2, 3), keepdim=True).clamp(1e-3, 0.5)  # (n, 1, 1, 1)
    weight = torch.where(y > 0.5, 0.5 / pos, 0.5 / (1 - pos))  # balance thin shapes against empty space
    if init is None:
        z0 = sample_z(n, profile, seed=seed)
    else:
        if restarts != 1:
            raise BadInputError(f"projection from given starting points takes restarts=1, got {restarts}")
        z0 = torch.from_numpy(check_z(init, profile.z_dim, "init"))
        if len(z0) != len(tgts):
            raise BadInputError(f"init must hold one z per target ({len(tgts)}), got {len(z0)}")
    z = z0.to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        out = generator(z).clamp(1e-6, 1 - 1e-6)
        bce = F.binary_cross_entropy(out, y, weight=weight, reduction="none").mean(dim=(1, 2, 3))
        prior = (z.pow(2).mean(dim=1) if profile.z_prior == "normal" else ((z - 0.5).clamp(min=0) - 0.5).pow(2).mean(dim=1))
        (bce + prior_weight * prior).sum().backward()
        opt.step()
        if progress is not None:
            progress(i + 1, steps)
    with torch.no_grad():
        occ = generator(z) > 0.5
        inter = (occ & (y > 0.5)).flatten(1).sum(1).float()
        union = (occ | (y > 0.5)).flatten(1).sum(1).float().clamp(min=1)
        iou = (inter / union).view(len(tgts), restarts)  # (T, restarts)
        best = iou.argmax(dim=1)  # (T,)
        rows = torch.arange(len(tgts), device=device) * restarts + best
    generator.train(was_training)
    return (z[rows].detach().cpu().numpy().astype(np.float32),
            iou.gather(1, best[:, None])[:, 0].cpu().numpy().astype(np.float32))
