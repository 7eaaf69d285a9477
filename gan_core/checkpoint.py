"""The one checkpoint format, used by training, the runtime, the CLI, the app and the bundled assets.

A checkpoint is a ``torch.save`` dict of tensors and plain values only (so ``torch.load(weights_only=True)``
reads it, and a checkpoint can never run code):

    format "gan3d-checkpoint", version 1, kind "gan" | "vaegan",
    profile (Profile.to_dict()), generator / discriminator / encoder (state dicts, any may be absent),
    optimizers {name: state dict} (training checkpoints only), state {epoch, step, ...},
    rng {name: ByteTensor}, data_hash, meta {command, created, ...}

A judge checkpoint (kind "judge": the shape classifier of gan_core.judge that scores samples) is the same
envelope with ``judge`` (its state dict) and ``judge_config`` (its architecture and class names, plain values)
in place of a profile and the GAN's networks; each reader asks for the kind it can use.

Files are written atomically: a killed writer leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_core.config import Profile
from gan_core.errors import BadCheckpointError, BadFileError, ProfileMismatchError
from gan_core.files import atomic_path

log = logging.getLogger(__name__)

FORMAT = "gan3d-checkpoint"
VERSION = 1
MODEL_KEYS = ("generator", "discriminator", "encoder")
# Weights only a resumed run reads: the generator being optimised, when "generator" holds its moving average.
TRAINING_KEYS = ("generator_train",)
JUDGE_KIND = "judge"
# An 8-bit packed tensor W is stored as int8 Q under its own name and a scale per slice of its first dimension
# under name + INT8_SCALE, W ~ Q * scale; load_checkpoint restores floats, so only this module knows.
INT8_SCALE = "#int8_scale"
INT8_MIN_NUMEL = 1024  # smaller tensors (BatchNorm, biases) stay fp16: they are a rounding error in the file size


def save_checkpoint(
    path: str | Path,
    *,
    profile: Profile,
    kind: str = "gan",
    models: dict[str, nn.Module] | None = None,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    state: dict[str, Any] | None = None,
    rng: dict[str, torch.Tensor] | None = None,
    data_hash: str = "",
    meta: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write a checkpoint atomically. ``half`` stores floating weights as fp16 (for compact assets)."""
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "profile": profile.to_dict(),
        "state": dict(state or {}),
        "rng": dict(rng or {}),
        "data_hash": data_hash,
        "meta": {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": str(torch.__version__), **(meta or {})},
    }
    for name, model in (models or {}).items():
        if name not in MODEL_KEYS + TRAINING_KEYS:
            raise ValueError(f"unknown model key {name!r}")
        sd = _unwrap(model).state_dict()
        if half:
            sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
        ckpt[name] = {k: v.detach().cpu() for k, v in sd.items()}
    if optimizers:
        ckpt["optimizers"] = {k: o.state_dict() for k, o in optimizers.items()}
    path = Path(path)
    _save(ckpt, path)
    return path


def save_judge_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    config: dict[str, Any],
    data_hash: str = "",
    meta: dict[str, Any] | None = None,
    half: bool = True,
) -> Path:
    """Write a judge (a shape classifier, gan_core.judge) atomically: its weights, fp16 by default (an asset),
    and ``config``, the plain values that rebuild it."""
    sd = _unwrap(model).state_dict()
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": JUDGE_KIND,
        "judge_config": dict(config),
        "judge": {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in sd.items()},
        "state": {},
        "rng": {},
        "data_hash": data_hash,
        "meta": {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": str(torch.__version__), **(meta or {})},
    }
    path = Path(path)
    _save(ckpt, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *,
                    judge: bool = False) -> dict[str, Any]:
    """Read and validate a checkpoint; any problem is a BadCheckpointError that names the file.

    ``judge`` asks for a judge checkpoint (see the module docstring); otherwise a generative model's (GAN or
    VAE-GAN). Either kind given to the other's reader is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise BadCheckpointError(f"{path}: {'not a file' if path.exists() else 'no such checkpoint file'}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles it then refuses: our message says it
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        raise BadCheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated: {_short(e)})") from None
    except pickle.UnpicklingError:  # torch's text suggests weights_only=False: exactly what must not be done
        raise BadCheckpointError(f"{path}: refused to load: not a tensors-only torch file (it is another format, "
                                 "or holds pickled Python objects, which could run code)") from None
    except Exception as e:
        raise BadCheckpointError(f"{path}: refused to load ({type(e).__name__}: {_short(e)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise BadCheckpointError(f"{path}: not a gan3d checkpoint (no '{FORMAT}' marker)")
    version = ckpt.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadCheckpointError(f"{path}: invalid checkpoint version {version!r}")
    if version > VERSION:
        raise BadCheckpointError(f"{path}: checkpoint version {version} is newer than this gan3d supports")
    is_judge = isinstance(ckpt.get("kind"), str) and ckpt["kind"] == JUDGE_KIND
    if is_judge != judge:
        raise BadCheckpointError(f"{path}: a shape classifier (judge), not a GAN or VAE checkpoint" if is_judge else
                                 f"{path}: not a judge checkpoint (kind {ckpt.get('kind')!r})")
    if judge:
        if not isinstance(ckpt.get("judge_config"), dict):
            raise BadCheckpointError(f"{path}: judge checkpoint has no judge_config")
        if JUDGE_KIND not in ckpt:
            raise BadCheckpointError(f"{path}: checkpoint holds no judge weights")
        _check_structure(ckpt, path)
        ckpt["path"] = str(path)
        return ckpt
    if not isinstance(ckpt.get("profile"), dict):
        raise BadCheckpointError(f"{path}: checkpoint has no profile")
    try:
        ckpt["profile"] = Profile.from_dict(ckpt["profile"])
    except Exception as e:
        raise BadCheckpointError(f"{path}: stored profile is invalid ({e})") from None
    if not any(k in ckpt for k in MODEL_KEYS):
        raise BadCheckpointError(f"{path}: checkpoint holds no model weights")
    _check_structure(ckpt, path)
    for key in MODEL_KEYS + TRAINING_KEYS:
        if key in ckpt:
            ckpt[key] = _dequantize(ckpt[key], path, key)
    ckpt["path"] = str(path)
    return ckpt


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric 8-bit quantisation, one scale per slice of the first dimension: (int8 Q, float32 scale) with
    |W - Q * scale| <= scale / 2 everywhere."""
    flat = w.detach().float().reshape(w.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    q = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale


def _dequantize(sd: dict[str, torch.Tensor], path: Path, key: str) -> dict[str, torch.Tensor]:
    """A state dict with its 8-bit tensors (see INT8_SCALE) back as float32; others untouched."""
    if not any(k.endswith(INT8_SCALE) for k in sd):
        return sd
    out = {}
    for name, v in sd.items():
        if name.endswith(INT8_SCALE):
            continue
        scale = sd.get(name + INT8_SCALE)
        if scale is None:
            out[name] = v
            continue
        if v.dtype != torch.int8 or scale.ndim != 1 or len(scale) != v.shape[0]:
            raise BadCheckpointError(f"{path}: {key}.{name}: an 8-bit tensor without a matching scale")
        out[name] = (v.float().reshape(v.shape[0], -1) * scale.float()[:, None]).reshape(v.shape)
    return out


def _check_structure(ckpt: dict[str, Any], path: Path) -> None:
    """The parts code reads later have the types it expects, so a hand-made or damaged file fails here."""
    for key in MODEL_KEYS + TRAINING_KEYS + (JUDGE_KIND,):
        sd = ckpt.get(key)
        if key in ckpt and not (isinstance(sd, dict) and all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items())):
            raise BadCheckpointError(f"{path}: '{key}' is not a state dict of named tensors")
    for key in ("state", "rng", "meta", "optimizers", "judge_config"):
        if key in ckpt and not isinstance(ckpt[key], dict):
            raise BadCheckpointError(f"{path}: '{key}' must be a dict, got {type(ckpt[key]).__name__}")
    for key in ("kind", "data_hash"):
        if key in ckpt and not isinstance(ckpt[key], str):
            raise BadCheckpointError(f"{path}: '{key}' must be a string, got {type(ckpt[key]).__name__}")


def all_finite(tensors: Any) -> bool:
    """Whether every floating-point tensor of ``tensors`` is free of NaN and Inf.

    A float32 sum per tensor first: NaN or Inf anywhere makes it non-finite, so a finite sum settles it in one
    vectorised pass (~20x faster than ``torch.isfinite(t).all()``, which cost 0.2 s of every model load); only
    a non-finite sum (NaN, Inf, or finite values that overflow float32 together) is checked element-wise."""
    return all(bool(torch.isfinite(t.sum(dtype=torch.float32))) or bool(torch.isfinite(t).all())
               for t in tensors if t.is_floating_point())


def load_weights(model: nn.Module, ckpt: dict[str, Any], key: str, *, assign: bool = False) -> nn.Module:
    """Load ``ckpt[key]`` into ``model`` (fp16 weights are cast up); a shape mismatch is a clear error.

    ``assign`` makes the loaded tensors the model's own (for a model built on the meta device)."""
    if key not in ckpt:
        raise BadCheckpointError(f"{ckpt.get('path', 'checkpoint')}: has no {key} weights")
    target = _unwrap(model)
    ref = target.state_dict()
    sd = {k: v.to(ref[k].dtype) if k in ref and v.is_floating_point() else v for k, v in ckpt[key].items()}
    if not all_finite(sd.values()):
        raise BadCheckpointError(f"{ckpt.get('path', 'checkpoint')}: {key} weights contain NaN or Inf "
                                 "(a diverged or damaged run); use an earlier checkpoint")
    try:
        target.load_state_dict(sd, assign=assign)
    except RuntimeError as e:
        raise ProfileMismatchError(
            f"{ckpt.get('path', 'checkpoint')}: {key} weights do not fit {_architecture_name(ckpt)} ({_short(e)})"
        ) from None
    return model


def _architecture_name(ckpt: dict[str, Any]) -> str:
    profile = ckpt.get("profile")
    return f"profile {profile.name!r}" if isinstance(profile, Profile) else "the architecture in judge_config"


def weights_hash(model: nn.Module) -> str:
    """A short hash of a network's weights (as stored in fp16, so an fp16 asset and its fp32 source agree):
    feature banks record it to refuse features from a different discriminator."""
    h = hashlib.sha256()
    sd = _unwrap(model).state_dict()
    for k in sorted(sd):
        h.update(k.encode())
        v = sd[k].detach().cpu()
        h.update((v.half() if v.is_floating_point() else v).numpy().tobytes())
    return h.hexdigest()[:16]


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def _short(e: BaseException, n: int = 160) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s if len(s) <= n else s[: n - 3] + "..."


def pack_checkpoint(
    ckpt: dict[str, Any],
    out: str | Path,
    *,
    parts: tuple[str, ...] | list[str] = MODEL_KEYS,
    half: bool = True,
    encoder_from: dict[str, Any] | None = None,
    int8: bool = False,
) -> Path:
    """Write a weights-only copy of ``ckpt`` (fp16 unless not ``half``; with ``int8`` the large weight tensors
    8-bit, about half an fp16 file; optionally with another checkpoint's encoder)."""
    from gan_core.config import check_same_architecture

    out_ck: dict[str, Any] = {k: ckpt[k] for k in ("format", "version", "kind", "state", "data_hash", "meta")
                              if k in ckpt}
    out_ck["profile"] = ckpt["profile"].to_dict()
    out_ck["rng"] = {}
    out_ck["meta"] = {**ckpt.get("meta", {}), "packed_from": ckpt.get("path", "")}
    nets = {k: ckpt[k] for k in parts if k in ckpt}
    if encoder_from is not None:
        check_same_architecture(encoder_from["profile"], ckpt["profile"], "--encoder-from")
        if "encoder" not in encoder_from:
            raise BadCheckpointError(f"{encoder_from.get('path')}: has no encoder weights")
        nets["encoder"] = encoder_from["encoder"]
        out_ck["kind"] = "vaegan"
    if not nets:
        raise BadCheckpointError(f"{ckpt.get('path')}: none of {list(parts)} is in the checkpoint")
    for k, sd in nets.items():
        packed: dict[str, torch.Tensor] = {}
        for n, v in sd.items():
            if int8 and v.is_floating_point() and v.ndim >= 2 and v.numel() >= INT8_MIN_NUMEL:
                packed[n], packed[n + INT8_SCALE] = quantize_int8(v)
            else:
                packed[n] = v.half() if (half or int8) and v.is_floating_point() else v
        out_ck[k] = packed
    out = Path(out)
    _save(out_ck, out)
    return out


def _save(obj: dict[str, Any], path: Path) -> None:
    """torch.save through atomic_path. A failed write (disk full, quota, file size limit) surfaces from
    torch's C++ zip writer as a RuntimeError, not an OSError: report it as the write error it is."""
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:
            raise BadFileError(f"{path}: cannot write the checkpoint (disk full? {_short(e)})") from None
