"""Derived data that is slow to make and safe to delete (latent maps, semantic directions, SVM features):
where it lives, the key it is filed under, and the tagged npz it is stored in.

One key rule for every cache: :func:`cache_key` hashes its parts (JSON, sorted keys) to 20 hex digits; a
cache names its inputs (weights hashes, data hashes, parameters, a format version) as the parts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from gan_core.errors import BadFileError, BadInputError
from gan_core.files import atomic_path, open_npz

__all__ = ["cache_dir", "cache_key", "load_or_make", "load_tagged_npz", "save_tagged_npz"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def cache_dir() -> Path:
    """Where derived data that is slow to make and safe to delete lives (latent maps, semantic directions):
    $GAN3D_CACHE_DIR, else $XDG_CACHE_HOME/gan3d, else ~/.cache/gan3d. Not beside the inputs: bundled models
    and banks sit in a package folder that may be read-only (and is under version control)."""
    env = os.environ.get("GAN3D_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan3d"


def cache_key(*parts: Any) -> str:
    """The key of a cached thing made from ``parts`` (anything JSON takes; other values by ``str``): 20 hex
    digits of the sha256 of their JSON with sorted keys. Equal parts, equal key; any change, another key."""
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True, default=str).encode()).hexdigest()[:20]


def save_tagged_npz(path: str | Path, fmt: str, version: int, meta: dict[str, Any],
                    arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and a JSON ``meta`` tagged with a format name and version, atomically, as an npz that
    loads without pickle (see :func:`load_tagged_npz`)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise BadInputError(f"{path.name}: expected a .npz path")
    head = json.dumps({"format": fmt, "version": int(version), **meta})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, _meta=np.array(head), **arrays)  # type: ignore[arg-type]  # numpy's stub: **arrays vs allow_pickle
    return path


def load_tagged_npz(path: str | Path, fmt: str, version: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by :func:`save_tagged_npz` with this ``fmt`` and at most ``version``;
    BadFileError for a missing, damaged or foreign file."""
    p = Path(path)
    if not p.is_file():
        raise BadFileError(f"{p}: no such file")
    try:
        with open_npz(p) as f:
            meta = json.loads(str(f["_meta"]))
            arrays = {k: f[k] for k in f.files if k != "_meta"}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise BadFileError(f"{p}: not a readable {fmt} file ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise BadFileError(f"{p}: not a {fmt} file")
    if not isinstance(meta.get("version"), int) or not 1 <= meta["version"] <= version:
        raise BadFileError(f"{p}: {fmt} version {meta.get('version')!r} is not supported (this gan3d reads <= {version})")
    return meta, arrays


def load_or_make(path: str | Path, load: Callable[[Path], "_T"], make: Callable[[], "_T"],
                 save: Callable[["_T", Path], object]) -> "_T":
    """``load(path)`` when a readable file is there; otherwise ``make()``, saved with ``save(obj, path)`` for
    next time. A damaged file (BadFileError) is remade; a cache that cannot be written only logs a warning."""
    path = Path(path)
    if path.is_file():
        try:
            return load(path)
        except BadFileError as e:
            log.warning("remaking %s: %s", path.name, e)
    obj = make()
    try:
        save(obj, path)
    except OSError as e:
        log.warning("could not cache %s in %s: %s", path.name, path.parent, e)
    return obj
