"""The service API the app and the CLI use: load a model (bundled, from a checkpoint, or untrained), sample z,
generate shapes (batched, no_grad, mixed precision, cached by z), project shapes back to z.

Nothing above this module (explorer/, commands/) touches training internals or builds networks itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gan_core.checkpoint import load_checkpoint, load_weights
from gan_core.config import Profile, get_profile
from gan_core.device import autocast, autocast_dtype, describe, pick_device
from gan_core.errors import BadCheckpointError, Gan3dError
from gan_core.latent import check_z, project, sample_z
from gan_core.memory import check_memory
from gan_core.models import Discriminator, Generator, build_encoder, inference_generator

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
REGISTRY = ASSETS_DIR / "models.json"


@dataclass(frozen=True)
class ModelEntry:
    """One entry of the bundled model registry (assets/models.json)."""

    name: str
    checkpoint: Path
    description: str = ""
    classes: tuple[str, ...] = ()
    bank: Path | None = None
    default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def list_models(registry: Path = REGISTRY) -> list[ModelEntry]:
    """The bundled models; an empty list when no registry is installed."""
    if not registry.is_file():
        return []
    try:
        doc = json.loads(registry.read_text(encoding="utf-8"))
        out = []
        for m in doc["models"]:
            out.append(ModelEntry(
                name=m["name"], checkpoint=registry.parent / m["checkpoint"], description=m.get("description", ""),
                classes=tuple(m.get("classes", ())), bank=registry.parent / m["bank"] if m.get("bank") else None,
                default=m["name"] == doc.get("default"),
                extra={k: v for k, v in m.items() if k not in ("name", "checkpoint", "description", "classes", "bank")},
            ))
        return out
    except (KeyError, TypeError, ValueError) as e:
        raise BadCheckpointError(f"{registry}: malformed model registry ({e})") from None


def find_model(name: str | None = None, *, need: str | None = None) -> ModelEntry:
    """A bundled model by name, or the default one. ``need`` ("encoder", "bank") picks the default entry that
    has that part. A clear error when nothing is bundled (train one with `gan3d train`)."""
    models = list_models()
    if not models:
        raise Gan3dError("no bundled model is installed (assets/models.json missing); pass --checkpoint")
    if name:
        for m in models:
            if m.name == name:
                return m
        raise Gan3dError(f"no bundled model named {name!r}; known: {', '.join(m.name for m in models)}")
    candidates = [m for m in models if need is None or m.extra.get(need) or (need == "bank" and m.bank)]
    if not candidates:
        raise Gan3dError(f"no bundled model provides a {need}; pass --checkpoint")
    return next((m for m in candidates if m.default), candidates[0])


class Model:
    """A loaded generator (and, when the checkpoint has them, discriminator and image encoder).

    ``generate(z)`` is thread-safe; results are cached by z (LRU), so revisiting a slider position is free. On the
    CPU it runs a copy of ``generator`` made at load time (BatchNorm folded, weights cast once): treat the
    loaded networks as read-only.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        ckpt: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        precision: str = "auto",
        batch_size: int = 32,
        cache_size: int = 256,
        name: str | None = None,
    ) -> None:
        self.profile = profile
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.amp_dtype = autocast_dtype(self.device, precision)
        self.batch_size = batch_size
        self.checkpoint_path = Path(ckpt["path"]) if ckpt and ckpt.get("path") else None
        self.name = name or (self.checkpoint_path.stem if self.checkpoint_path else f"untrained {profile.name}")
        self.meta: dict[str, Any] = dict(ckpt.get("meta", {})) if ckpt else {}
        self._ckpt = ckpt
        self.generator = self._build(Generator, "generator", required=ckpt is not None)
        self.discriminator = self._build(Discriminator, "discriminator", required=False)
        self.encoder = self._build(build_encoder, "encoder", required=False)  # the kind its profile names
        on_cpu = self.device.type == "cpu"
        self._fast_generator = (  # what generate() runs: BatchNorm folded (fewer kernels), weights cast once
            inference_generator(self.generator, self.amp_dtype or torch.float32,
                                torch.channels_last_3d if on_cpu else torch.contiguous_format)
            if self.amp_dtype in (None, torch.bfloat16) else None)
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.last_generate_ms = 0.0
        self.default_seeds: tuple[int, ...] = ()  # the registry's showcase seeds (first endpoints, operands)

    def _build(self, cls: Callable[..., torch.nn.Module], key: str, required: bool) -> torch.nn.Module | None:
        ck = self._ckpt
        if ck is not None and key not in ck:
            if required:
                raise BadCheckpointError(f"{ck.get('path')}: has no {key} weights")
            return None
        if ck is None:
            net = cls(self.profile)  # untrained, for tests and benchmarks: its random initialisation is the point
        else:
            with torch.device("meta"):  # no random initialisation to overwrite (half of a model's load time)
                net = cls(self.profile)
            load_weights(net, ck, key, assign=True)  # strict: every parameter and buffer comes from the checkpoint
        fmt = torch.channels_last_3d if key != "encoder" and self.device.type == "cpu" else torch.contiguous_format
        return net.to(self.device, memory_format=fmt).eval()

    # -- public API ----------------------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return self.profile.resolution

    @property
    def device_name(self) -> str:
        return describe(self.device)

    @property
    def key(self) -> str:
        """Identifies the weights (for caches keyed by model)."""
        return f"{self.checkpoint_path}:{id(self)}"

    def sample_z(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` latent vectors (n, z_dim) float32 from the prior; the same seed gives the same vectors."""
        return sample_z(n, self.profile, seed=seed).numpy()

    @torch.inference_mode()
    def generate(self, z: np.ndarray | torch.Tensor, *, use_cache: bool = True) -> np.ndarray:
        """Occupancy grids (N, R, R, R) float32 in [0, 1] for z (N, z_dim) or (z_dim,)."""
        zs = check_z(z, self.profile.z_dim)
        check_memory(len(zs) * self.resolution**3 * 4, f"generating {len(zs)} shapes of {self.resolution}^3",
                     hint="generate fewer at a time")
        t0 = time.perf_counter()
        out = np.empty((len(zs),) + (self.resolution,) * 3, np.float32)
        with self._lock:
            todo = []
            for i, zi in enumerate(zs):
                hit = self._cache.get(zi.tobytes()) if use_cache else None
                if hit is not None:
                    self._cache.move_to_end(zi.tobytes())
                    out[i] = hit
                else:
                    todo.append(i)
            for s in range(0, len(todo), self.batch_size):
                idx = todo[s:s + self.batch_size]
                zt = torch.from_numpy(zs[idx]).to(self.device)
                if self._fast_generator is not None:
                    vox = self._fast_generator(zt.to(self.amp_dtype or torch.float32))
                else:
                    with autocast(self.device, self.amp_dtype):
                        vox = self.generator(zt)
                vox = vox.float().cpu().numpy()
                out[idx] = vox
                if use_cache:
                    for j, i in enumerate(idx):
                        self._cache[zs[i].tobytes()] = vox[j]
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        self.last_generate_ms = (time.perf_counter() - t0) * 1000
        return out

    def project(self, voxels: np.ndarray, *, steps: int = 200, restarts: int = 4, seed: int = 0,
                progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, float]:
        """z whose shape best matches ``voxels`` (R, R, R), and the IoU reached."""
        with self._lock:
            return project(self.generator, voxels, steps=steps, restarts=restarts, seed=seed, device=self.device,
                           progress=progress)

    def features(self, voxels: np.ndarray, kind: str = "paper") -> np.ndarray:
        """Discriminator features of grids (N, R, R, R): "paper" (pooled conv 2-4, the SVM's) or "last"
        (the last conv layer, the paper's choice for nearest-neighbour retrieval). See gan_core.features."""
        from gan_core.features import extract_features

        if self.discriminator is None:
            raise Gan3dError(f"model {self.name!r} has no discriminator, so no features; use a full checkpoint")
        with self._lock:
            return extract_features(self.discriminator, voxels, kind=kind, device=self.device,
                                    amp_dtype=self.amp_dtype)

    def encode_image(self, image: Any) -> np.ndarray:
        """z (z_dim,) for an image (path, PIL image or array), by the 3D-VAE-GAN encoder: the posterior mean."""
        from gan_core.reconstruct import encode_image

        if self.encoder is None:
            raise Gan3dError(f"model {self.name!r} has no image encoder; train one with `gan3d train-vae`")
        with self._lock:
            return encode_image(self.encoder, image, device=self.device)

    def reconstruct_image(self, image: Any, *, level: float = 0.5):  # -> (voxels, z, recon_confidence.Confidence)
        """Voxels (R, R, R), z and how far to trust them (:class:`gan_core.recon_confidence.Confidence`: a score,
        below 0.5 a warning, and the reasons) for an image: the same voxels and z as encode_image + generate."""
        from gan_core import recon_confidence as rc

        if self.encoder is None:
            raise Gan3dError(f"model {self.name!r} has no image encoder; train one with `gan3d train-vae`")
        with self._lock:
            if not hasattr(self, "_familiarity"):  # the encoder's calibration file, looked up once
                self._familiarity = rc.load_familiarity(self)
            picture, z, feats = rc.encode_picture(self.encoder, image, self._familiarity, device=self.device)
        voxels = self.generate(z[None])[0]
        return voxels, z, rc.judge_result(picture, feats, voxels, self._familiarity, level)

    def weights_hash(self, part: str = "discriminator") -> str:
        """A short hash of one network's weights (feature banks record the discriminator's)."""
        from gan_core.checkpoint import weights_hash

        net = getattr(self, part)
        if net is None:
            raise Gan3dError(f"model {self.name!r} has no {part}")
        return weights_hash(net)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def __repr__(self) -> str:
        return f"Model({self.name!r}, profile={self.profile.name}, device={self.device})"


def load_bank(path: str | Path, model: Model | None = None):  # -> gan_core.features.FeatureBank
    """Open a feature bank; with ``model``, refuse a bank built with another discriminator."""
    from gan_core.features import FeatureBank

    bank = FeatureBank.load(path)
    if model is not None:
        bank.check_model(model)
    return bank


def bundled_bank_for(model: Model) -> Path | None:
    """The bundled feature bank made for ``model``'s weights, if it is a bundled model that has one."""
    try:
        models = list_models()
    except Gan3dError:
        return None
    for m in models:
        if model.checkpoint_path is not None and m.bank is not None and m.bank.is_file() and \
                Path(m.checkpoint).resolve() == Path(model.checkpoint_path).resolve():
            return m.bank
    return None


def bundled_judge(registry: Path | None = None) -> Path | None:
    """The bundled judge (the shape classifier that scores samples; the registry's top-level "judge" file), or
    None when none is installed."""
    registry = registry or REGISTRY
    if not registry.is_file():
        return None
    try:
        name = json.loads(registry.read_text(encoding="utf-8")).get("judge")
    except (AttributeError, ValueError) as e:
        raise BadCheckpointError(f"{registry}: malformed model registry ({e})") from None
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise BadCheckpointError(f"{registry}: \"judge\" must name a file, got {name!r}")
    path = registry.parent / name
    return path if path.is_file() else None


def load_judge(path: str | Path | None = None, *, device: str | None = None):  # -> gan_core.judge.JudgeClassifier
    """A judge from ``path``, or the bundled one; a Gan3dError when none is given and none is installed."""
    from gan_core.judge import JudgeClassifier

    path = path or bundled_judge()
    if path is None:
        raise Gan3dError("no bundled judge is installed (assets/models.json names none); pass --judge")
    return JudgeClassifier.load(path, device)


def named_encoder(name: str | None) -> ModelEntry | None:
    """The encoder entry that the bundled model ``name`` names as ``"encoder_model"`` (a per-category encoder
    for a per-category model); None when it names none, has an encoder itself or is not a bundled model. A
    Gan3dError when the named encoder is not installed."""
    entry = next((m for m in list_models() if name and m.name == name), None)
    if entry is None or entry.extra.get("encoder") or not entry.extra.get("encoder_model"):
        return None
    return find_model(str(entry.extra["encoder_model"]))


def bundled_encoder_name(for_model: str | None = None) -> str | None:
    """The bundled model whose image encoder serves ``for_model`` (a registry name): :func:`named_encoder`,
    else the default encoder; None when no encoder is bundled. Reads the registry only."""
    try:
        return (named_encoder(for_model) or find_model(need="encoder")).name
    except Gan3dError:
        return None


def load_encoder_model(name: str | None = None, *, device: str | None = None,
                       precision: str = "auto") -> Model | None:
    """The bundled model with an image encoder called ``name`` (default: :func:`bundled_encoder_name`), or None.

    The app falls back to it when the loaded model cannot reconstruct images itself.
    """
    name = name or bundled_encoder_name()
    if name is None:
        return None
    try:
        entry = find_model(name)
    except Gan3dError:
        return None
    return load_model(entry.checkpoint, device=device, precision=precision, name=entry.name)


def load_model(
    checkpoint: str | Path | None = None,
    profile: str | Profile | None = None,
    *,
    device: str | None = None,
    precision: str = "auto",
    name: str | None = None,
) -> Model:
    """Load a model.

    * ``load_model()``: the bundled default model (assets/models.json); a clear error if none is installed.
    * ``load_model("run/latest.pt")`` or a bundled model's name: that checkpoint.
    * ``load_model(profile="fast32")``: an untrained model of that profile (tests, benchmarks).
    """
    if checkpoint is None and profile is not None:
        prof = profile if isinstance(profile, Profile) else get_profile(profile)
        return Model(prof, device=device, precision=precision, name=name)
    seeds: tuple[int, ...] = ()
    if checkpoint is None or (not Path(checkpoint).exists() and not str(checkpoint).endswith(".pt")):
        entry = find_model(str(checkpoint) if checkpoint else None)
        checkpoint, name = entry.checkpoint, name or entry.name
        seeds = _entry_seeds(entry)
    ckpt = load_checkpoint(checkpoint)
    if profile is not None:
        want = profile if isinstance(profile, Profile) else get_profile(profile)
        from gan_core.config import check_same_architecture

        check_same_architecture(ckpt["profile"], want, f"{checkpoint}")
    model = Model(ckpt["profile"], ckpt=ckpt, device=device, precision=precision, name=name)
    model.default_seeds = seeds
    return model


def _entry_seeds(entry: ModelEntry) -> tuple[int, ...]:
    """The registry's showcase seeds for a model (the app's first endpoints and operands), checked."""
    seeds = entry.extra.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds):
        raise BadCheckpointError(f"{REGISTRY}: model {entry.name!r} has malformed \"seeds\" (want a list of "
                                 "non-negative integers)")
    return tuple(seeds)


# -- latent map and semantic directions, for the app (the CLI calls gan_core.latent_map / directions) -------
def latent_map(model: Model, bank: Any, *, build: bool = True, cache: str | Path | None = None,
               progress: Callable[[int, int], None] | None = None, **params: Any) -> Any:
    """The 2D map (gan_core.latent_map.LatentMap) of ``bank`` and samples of ``model``; ``params`` are MapParams
    fields. Cached: instant when cached, a minute or two to build on a CPU; ``build=False`` gives None then."""
    from gan_core.latent_map import MapParams, load_or_build_map, map_cache_path

    p = MapParams(**params)
    if not build and not map_cache_path(model, bank, p, cache).is_file():
        return None
    return load_or_build_map(model, bank, p, cache=cache, progress=progress)


def place_on_map(lmap: Any, bank: Any, model: Model, voxels: np.ndarray) -> np.ndarray:
    """Map positions (Q, 2) of grids (Q, R, R, R), by their nearest map points in D-feature space."""
    from gan_core.latent_map import place_shapes

    return place_shapes(lmap, bank, model, voxels)


def semantic_directions(model: Model, bank: Any = None, *, cache: str | Path | None = None,
                        progress: Callable[[int, int], None] | None = None, **params: Any) -> list[Any]:
    """GANSpace directions (gan_core.directions.Direction) of ``model``, the first few named by what they do
    to shapes when ``bank`` is given; ``params`` are PcaParams fields. Cached."""
    from gan_core.directions import PcaParams, load_or_build_pca

    return load_or_build_pca(model, bank, PcaParams(**params), cache=cache, progress=progress)


def class_directions(model: Model, bank: Any, *, per_class: int = 6, steps: int = 20, cache: str | Path | None = None,
                     progress: Callable[[int, int], None] | None = None) -> Any:
    """Class means of projected training shapes (gan_core.directions.ClassMeans; ``.direction("chair",
    "sofa")``). Minutes on a CPU the first time; cached."""
    from gan_core.directions import load_or_build_class_means

    return load_or_build_class_means(model, bank, per_class=per_class, steps=steps, cache=cache, progress=progress)


# -- what D's units respond to, for the app (the CLI calls gan_core.units) -------------------------------------
def unit_responses(model: Model, source: Any, *, progress: Callable[[int, int], None] | None = None) -> Any:
    """Every unit's response (activation max over space) of every layer of ``model``'s discriminator to every
    shape of ``source`` (a feature bank: its training-shape thumbnails; a voxel set; or grids (N, R, R, R)):
    a gan_core.units.UnitResponses, whose ``layers`` describe D's blocks and ``top(layer, unit, k)`` ranks the
    shapes for a unit. One pass over the set (seconds per thousand shapes at 32^3 on a CPU)."""
    from gan_core.units import unit_responses as responses

    return responses(model, source, progress=progress)


def unit_heat_colours(model: Model, voxels: np.ndarray, layer: int, unit: int) -> tuple[np.ndarray, np.ndarray]:
    """The voxels that drive a unit (the gradient of its response, positive part, smoothed and scaled per
    shape; gan_core.units) as colours in the palette of ``gan3d units --png``: (grids (N, r, r, r) float32,
    colours (N, r, r, r, 3) float32 in [0, 1]) for grids (N, R, R, R), brought to the model's resolution r."""
    from gan_core.features.extract import prepare_voxels
    from gan_core.units import heat_colours, surface_heat, unit_heatmaps

    grids = prepare_voxels(voxels, model.resolution)
    grads = unit_heatmaps(model, grids, layer, unit)
    return grids, heat_colours(np.stack([surface_heat(g, h) for g, h in zip(grids, grads)]))
