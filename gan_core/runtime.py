"""The service API the app and the CLI use: the bundled model registry, ``load_model`` (bundled, from a
checkpoint, or untrained), and a facade over the modules that take a :class:`~gan_core.model.Model` (feature
banks, the judge, the latent map, semantic directions, what D's units respond to).

Nothing above this module (explorer/, commands/) touches training internals or builds networks itself. The
Model type lives below, in :mod:`gan_core.model`, with everything that takes one; this module is the only one
that makes one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gan_core import directions, latent_map as lmaps, units
from gan_core.checkpoint import load_checkpoint
from gan_core.config import Profile, check_same_architecture, get_profile
from gan_core.d_features import prepare_voxels
from gan_core.directions import ClassMeans, Direction, PcaParams
from gan_core.errors import BadCheckpointError, Gan3dError
from gan_core.features import FeatureBank
from gan_core.judge import JudgeClassifier
from gan_core.latent_map import LatentMap, MapParams
from gan_core.model import Model
from gan_core.units import UnitResponses, VoxelSource

__all__ = [
    "ASSETS_DIR", "REGISTRY", "Model", "ModelEntry", "bundled_bank_for", "bundled_encoder_name", "bundled_judge",
    "class_directions", "find_model", "latent_map", "list_models", "load_bank", "load_encoder_model", "load_judge",
    "load_model", "named_encoder", "place_on_map", "semantic_directions", "unit_heat_colours", "unit_responses",
]

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
    # the default, else the one for the most classes: a per-category model never stands in for the all-class one
    return next((m for m in candidates if m.default), max(candidates, key=lambda m: len(m.classes)))


def load_bank(path: str | Path, model: Model | None = None) -> FeatureBank:
    """Open a feature bank; with ``model``, refuse a bank built with another discriminator."""
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


def load_judge(path: str | Path | None = None, *, device: str | None = None) -> JudgeClassifier:
    """A judge from ``path``, or the bundled one; a Gan3dError when none is given and none is installed."""
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
def latent_map(model: Model, bank: FeatureBank, *, build: bool = True, cache: str | Path | None = None,
               progress: Callable[[int, int], None] | None = None, **params: Any) -> LatentMap | None:
    """The 2D map (gan_core.latent_map.LatentMap) of ``bank`` and samples of ``model``; ``params`` are MapParams
    fields. Cached: instant when cached, a minute or two to build on a CPU; ``build=False`` gives None then."""
    p = MapParams(**params)
    if not build and not lmaps.map_cache_path(model, bank, p, cache).is_file():
        return None
    return lmaps.load_or_build_map(model, bank, p, cache=cache, progress=progress)


def place_on_map(lmap: LatentMap, bank: FeatureBank, model: Model, voxels: np.ndarray) -> np.ndarray:
    """Map positions (Q, 2) of grids (Q, R, R, R), by their nearest map points in D-feature space."""
    return lmaps.place_shapes(lmap, bank, model, voxels)


def semantic_directions(model: Model, bank: FeatureBank | None = None, *, cache: str | Path | None = None,
                        progress: Callable[[int, int], None] | None = None, **params: Any) -> list[Direction]:
    """GANSpace directions (gan_core.directions.Direction) of ``model``, the first few named by what they do
    to shapes when ``bank`` is given; ``params`` are PcaParams fields. Cached."""
    return directions.load_or_build_pca(model, bank, PcaParams(**params), cache=cache, progress=progress)


def class_directions(model: Model, bank: FeatureBank, *, per_class: int = 6, steps: int = 20,
                     cache: str | Path | None = None, progress: Callable[[int, int], None] | None = None) -> ClassMeans:
    """Class means of projected training shapes (gan_core.directions.ClassMeans; ``.direction("chair",
    "sofa")``). Minutes on a CPU the first time; cached."""
    return directions.load_or_build_class_means(model, bank, per_class=per_class, steps=steps, cache=cache,
                                                progress=progress)


# -- what D's units respond to, for the app (the CLI calls gan_core.units) -------------------------------------
def unit_responses(model: Model, source: VoxelSource, *,
                   progress: Callable[[int, int], None] | None = None) -> UnitResponses:
    """Every unit's response (activation max over space) of every layer of ``model``'s discriminator to every
    shape of ``source`` (a feature bank: its training-shape thumbnails; a voxel set; or grids (N, R, R, R)):
    a gan_core.units.UnitResponses, whose ``layers`` describe D's blocks and ``top(layer, unit, k)`` ranks the
    shapes for a unit. One pass over the set (seconds per thousand shapes at 32^3 on a CPU)."""
    return units.unit_responses(model, source, progress=progress)


def unit_heat_colours(model: Model, voxels: np.ndarray, layer: int, unit: int) -> tuple[np.ndarray, np.ndarray]:
    """The voxels that drive a unit (the gradient of its response, positive part, smoothed and scaled per
    shape; gan_core.units) as colours in the palette of ``gan3d units --png``: (grids (N, r, r, r) float32,
    colours (N, r, r, r, 3) float32 in [0, 1]) for grids (N, R, R, R), brought to the model's resolution r."""
    grids = prepare_voxels(voxels, model.resolution)
    grads = units.unit_heatmaps(model, grids, layer, unit)
    return grids, units.heat_colours(np.stack([units.surface_heat(g, h) for g, h in zip(grids, grads)]))
