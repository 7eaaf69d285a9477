"""Session files and recent-file lists.

A session is two files side by side: ``NAME.json`` (settings, labels, seeds, which checkpoint and bank) and
``NAME.npz`` (the z vectors, read with ``allow_pickle=False``). Both are written atomically.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QSettings

from gan_core.errors import BadFileError
from gan_core.files import atomic_path
from explorer.state import DISPLAYS, MAX_SEED, MODES, SLOTS, Latent, SessionState

FORMAT = "gan3d-session"
VERSION = 1
_LATENT_KEYS = [f"slot:{s}" for s in SLOTS] + ["current", "reconstruction"]


@dataclass
class SessionFile:
    """What a session file holds: ``values`` for :meth:`SessionState.restore`, plus model and bank paths."""

    values: dict[str, Any]
    checkpoint: str | None = None
    model_name: str | None = None
    z_dim: int | None = None
    bank: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _npz_path(path: Path) -> Path:
    return path.with_suffix(".npz")


def save_session(state: SessionState, path: str | Path) -> Path:
    """Write ``path`` (.json) and its .npz sibling."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        p = p.with_suffix(".json")
    snap = state.snapshot()
    arrays: dict[str, np.ndarray] = {}
    latents: dict[str, Any] = {}
    for key in _LATENT_KEYS:
        lat = snap[key]
        if lat is None:
            latents[key] = None
            continue
        arrays[key.replace(":", "_")] = lat.z
        latents[key] = {"label": lat.label, "seed": lat.seed, "image": lat.image}
    hist = snap["history"]
    if hist:
        arrays["history"] = np.stack([h.z for h in hist])
    if snap["keys"]:
        arrays["keys"] = np.stack([k.z for k in snap["keys"]])
    model = state.model
    doc = {
        "format": FORMAT, "version": VERSION,
        "model": {"checkpoint": str(model.checkpoint_path) if model is not None and model.checkpoint_path else None,
                  "name": getattr(model, "name", None), "z_dim": state.z_dim},
        "bank": state.bank_path,
        "t": snap["t"], "mode": snap["mode"], "weights": list(snap["weights"]), "rescale": snap["rescale"],
        "level": snap["level"],
        "display": snap["display"], "linked": snap["linked"], "latents": latents,
        "history": [{"label": h.label, "seed": h.seed} for h in hist],
        "keys": [{"label": k.label} for k in snap["keys"]],
    }
    # both halves are written before either replaces its old file, so a failed write (full disk) leaves the
    # previous session whole rather than a new .npz beside an old .json
    with atomic_path(p) as tmp_json, atomic_path(_npz_path(p)) as tmp_npz:
        with open(tmp_npz, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
        tmp_json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return p


def load_session(path: str | Path) -> SessionFile:
    """Read and validate a session; BadFileError names what is wrong."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadFileError(f"{p}: no such session file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadFileError(f"{p}: not a readable session file ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadFileError(f"{p}: not a gan3d session (no '{FORMAT}' marker)")
    version = doc.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise BadFileError(f"{p}: session version {version!r} is not one this explorer supports (up to {VERSION})")
    try:
        with np.load(_npz_path(p), allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except FileNotFoundError:
        raise BadFileError(f"{p}: its z vectors file {_npz_path(p).name} is missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, MemoryError) as e:
        raise BadFileError(f"{_npz_path(p)}: not a readable npz ({type(e).__name__}: {e})") from None
    try:
        values: dict[str, Any] = {
            "t": float(doc["t"]), "mode": str(doc["mode"]), "weights": tuple(float(w) for w in doc["weights"]),
            "level": float(doc["level"]), "display": str(doc["display"]), "linked": bool(doc.get("linked", True)),
            "rescale": doc.get("rescale", True),  # sessions saved before it existed: today's default
        }
        if not isinstance(values["rescale"], bool):
            raise ValueError(f"rescale {values['rescale']!r} is not true or false")
        _check_values(values)
        for key in _LATENT_KEYS:
            meta = doc["latents"].get(key)
            if meta is None:
                values[key] = None
                continue
            z = arrays[key.replace(":", "_")]
            values[key] = Latent.of(z, str(meta["label"]), _seed(meta.get("seed")), _text(meta.get("image")))
        hz = arrays.get("history", np.zeros((0, 1), np.float32))
        values["history"] = [Latent.of(hz[i], str(h["label"]), _seed(h.get("seed"))) for i, h in enumerate(doc["history"])]
        kz = arrays.get("keys", np.zeros((0, 1), np.float32))  # keyframes between A and B (none before they existed)
        values["keys"] = tuple(Latent.of(kz[i], str(k["label"])) for i, k in enumerate(doc.get("keys", [])))
        model = doc.get("model") or {}
        paths = {"checkpoint": _text(model.get("checkpoint")), "model_name": _text(model.get("name")),
                 "bank": _text(doc.get("bank"))}
        z_dim = model.get("z_dim")
        if z_dim is not None and (not isinstance(z_dim, int) or isinstance(z_dim, bool)):
            raise ValueError(f"z_dim {z_dim!r} is not a whole number")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise BadFileError(f"{p}: damaged session ({type(e).__name__}: {e})") from None
    return SessionFile(values, z_dim=z_dim, **paths)


def _check_values(values: dict[str, Any]) -> None:
    """What the state's setters would refuse (t, level, weights, mode, display), as a ValueError."""
    if not 0.0 <= values["t"] <= 1.0:
        raise ValueError(f"t {values['t']} is not between 0 and 1")
    if not 0.0 < values["level"] < 1.0:
        raise ValueError(f"iso level {values['level']} is not between 0 and 1")
    if len(values["weights"]) != 3 or not all(np.isfinite(values["weights"])):
        raise ValueError(f"weights {values['weights']} are not three finite numbers")
    if values["mode"] not in MODES or values["display"] not in DISPLAYS:
        raise ValueError(f"unknown mode {values['mode']!r} or display {values['display']!r}")


def _seed(seed: Any) -> int | None:
    """A seed as the slot editors show it (0 to 2^31 - 1), or None."""
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed!r} is not a whole number from 0 to {MAX_SEED}")
    return seed


def _text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def apply_session(state: SessionState, session: SessionFile, where: str = "session") -> None:
    """Restore ``session`` into ``state``; a z_dim mismatch with the loaded model is a clear error."""
    if state.z_dim is not None and session.z_dim is not None and session.z_dim != state.z_dim:
        raise BadFileError(
            f"{where}: saved with a model taking z of {session.z_dim} values ({session.model_name}); the loaded "
            f"model takes {state.z_dim}. Open that checkpoint first (File > Open checkpoint).")
    state.restore(session.values)


class RecentFiles:
    """Most-recent-first path lists in QSettings ("recent/<kind>")."""

    def __init__(self, settings: QSettings, size: int = 8) -> None:
        self.settings = settings
        self.size = size

    def get(self, kind: str) -> list[str]:
        val = self.settings.value(f"recent/{kind}", [])
        if isinstance(val, str):
            val = [val] if val else []
        return [str(v) for v in (val or [])]

    def add(self, kind: str, path: str | Path) -> None:
        p = str(Path(path).resolve())
        items = [p] + [x for x in self.get(kind) if x != p]
        self.settings.setValue(f"recent/{kind}", items[: self.size])
        self.settings.sync()
