"""Session files and recent-file lists.

A session is two files side by side: ``NAME.json`` (settings, labels, seeds, which checkpoint and bank) and
``NAME.npz`` (the z vectors, read with ``allow_pickle=False``). Both are written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QSettings

from gan_core.errors import BadFileError
from gan_core.io_utils import atomic_path
from explorer.state import DISPLAYS, MODES, SLOTS, Latent, SessionState

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
    model = state.model
    doc = {
        "format": FORMAT, "version": VERSION,
        "model": {"checkpoint": str(model.checkpoint_path) if model is not None and model.checkpoint_path else None,
                  "name": getattr(model, "name", None), "z_dim": state.z_dim},
        "bank": state.bank_path,
        "t": snap["t"], "mode": snap["mode"], "weights": list(snap["weights"]), "level": snap["level"],
        "display": snap["display"], "linked": snap["linked"], "latents": latents,
        "history": [{"label": h.label, "seed": h.seed} for h in hist],
    }
    with atomic_path(_npz_path(p)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    with atomic_path(p) as tmp:
        tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return p


def load_session(path: str | Path) -> SessionFile:
    """Read and validate a session; BadFileError names what is wrong."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadFileError(f"{p}: no such session file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadFileError(f"{p}: not a readable session file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadFileError(f"{p}: not a gan3d session (no '{FORMAT}' marker)")
    if int(doc.get("version", 0)) > VERSION:
        raise BadFileError(f"{p}: session version {doc.get('version')} is newer than this explorer supports")
    try:
        with np.load(_npz_path(p), allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except FileNotFoundError:
        raise BadFileError(f"{p}: its z vectors file {_npz_path(p).name} is missing") from None
    except (OSError, ValueError) as e:
        raise BadFileError(f"{_npz_path(p)}: not a readable npz ({e})") from None
    try:
        values: dict[str, Any] = {
            "t": float(doc["t"]), "mode": str(doc["mode"]), "weights": tuple(float(w) for w in doc["weights"]),
            "level": float(doc["level"]), "display": str(doc["display"]), "linked": bool(doc.get("linked", True)),
        }
        if values["mode"] not in MODES or values["display"] not in DISPLAYS or len(values["weights"]) != 3:
            raise ValueError("bad mode, display or weights")
        for key in _LATENT_KEYS:
            meta = doc["latents"].get(key)
            if meta is None:
                values[key] = None
                continue
            z = arrays[key.replace(":", "_")]
            values[key] = Latent.of(z, str(meta["label"]), meta.get("seed"), meta.get("image"))
        hz = arrays.get("history", np.zeros((0, 1), np.float32))
        values["history"] = [Latent.of(hz[i], str(h["label"]), h.get("seed")) for i, h in enumerate(doc["history"])]
        model = doc.get("model") or {}
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise BadFileError(f"{p}: damaged session ({type(e).__name__}: {e})") from None
    return SessionFile(values, checkpoint=model.get("checkpoint"), model_name=model.get("name"),
                       z_dim=model.get("z_dim"), bank=doc.get("bank"))


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
