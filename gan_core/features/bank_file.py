"""The feature bank's HDF5 file: what is stored where, written atomically and read defensively.

Layout: ``features_<kind>`` (N, D) for each kind; for a reduced kind ``projection_<kind>/`` (``mean``,
``components``, ``sketch_bucket``, ``sketch_sign``, attr ``n_sketch``) and ``norms_<kind>`` (N,); ``labels``,
``class_names`` (UTF-8), ``source_index``, optional ``thumbnails`` (gzip); attrs ``format`` ("gan3d-bank"),
``version``, ``weights_hash``, ``profile``, ``created``, ``data_name``, ``data_sha256``, ``dtype``,
``thumbnail_resolution``, ``n_components`` (0: full features), ``n_sketch``, ``random_state``, ``meta`` (JSON).
No pickled objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_core.d_features import KINDS
from gan_core.errors import BadCheckpointError, BadFileError, BadInputError
from gan_core.guarded_h5 import atomic_h5, check_hdf5_heaps
from gan_core.projection import SketchedPCA

BANK_FORMAT = "gan3d-bank"
BANK_VERSION = 2  # 2: reduced kinds (projection_<kind>/ and norms_<kind>); 1: full features only, still read


@dataclass
class BankFile:
    """What a bank file holds (read but not yet checked, or about to be written): ``params`` are FeatureBank's
    keyword arguments."""

    params: dict[str, Any]
    features: dict[str, np.ndarray]
    projections: dict[str, SketchedPCA]
    norms: dict[str, np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    source_index: np.ndarray
    thumbnails: np.ndarray | None


def write_bank_file(bank: BankFile, path: str | Path) -> Path:
    """Write a fitted bank's contents as HDF5, atomically (a crash or a full disk leaves any previous file
    intact)."""
    import h5py

    p = bank.params
    with atomic_h5(path) as h5:
        for kind, arr in bank.features.items():
            h5.create_dataset(f"features_{kind}", data=arr, chunks=(min(len(arr), 64), arr.shape[1]))
            if kind in bank.projections:
                proj, g = bank.projections[kind], h5.create_group(f"projection_{kind}")
                g.create_dataset("mean", data=proj.mean_)
                g.create_dataset("components", data=proj.components_)
                g.create_dataset("sketch_bucket", data=proj.sketch_bucket_)
                g.create_dataset("sketch_sign", data=proj.sketch_sign_)
                g.attrs["n_sketch"] = proj.n_sketch
                h5.create_dataset(f"norms_{kind}", data=bank.norms[kind])
        h5.create_dataset("labels", data=bank.labels)
        h5.create_dataset("class_names", data=bank.class_names, dtype=h5py.string_dtype("utf-8"))
        h5.create_dataset("source_index", data=bank.source_index)
        if bank.thumbnails is not None:
            h5.create_dataset("thumbnails", data=bank.thumbnails, compression="gzip", shuffle=False,
                              chunks=(min(len(bank.labels), 256), bank.thumbnails.shape[1]))
        a = h5.attrs
        a["format"], a["version"] = BANK_FORMAT, BANK_VERSION
        a["weights_hash"], a["profile"], a["created"] = p["weights_hash"], p["profile"], p["created"]
        a["data_name"], a["data_sha256"], a["dtype"] = p["data_name"], p["data_sha256"], p["dtype"]
        a["thumbnail_resolution"] = p["thumbnail_resolution"]
        a["n_components"], a["n_sketch"] = p["n_components"] or 0, p["n_sketch"]  # 0: full features
        a["random_state"] = p["random_state"]
        a["meta"] = json.dumps(dict(p["meta"] or {}))
    return Path(path)


def read_bank_file(path: str | Path) -> BankFile:
    """Read what the search needs from a bank file (a reduced bank holds no full-size features); a missing
    file is a BadFileError, a corrupt, truncated, foreign or newer one a BadCheckpointError."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise BadFileError(f"{p}: no such feature bank; build one with gan3d features")
    try:
        check_hdf5_heaps(p)  # a damaged string heap can make HDF5 allocate gigabytes or loop forever
    except BadFileError as e:
        raise BadCheckpointError(str(e)) from None
    try:
        h5 = h5py.File(p, "r")
    except OSError as e:
        raise BadCheckpointError(f"{p}: not a readable feature bank (not HDF5, corrupt or truncated: {e})") from None
    with h5:
        try:  # attributes live in HDF5 heaps that a damaged file can break too
            marker, version = h5.attrs.get("format"), h5.attrs.get("version")
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:
            raise BadCheckpointError(f"{p}: damaged feature bank ({type(e).__name__}: {first_line(e)})") from None
        if marker != BANK_FORMAT:
            raise BadCheckpointError(f"{p}: not a gan3d feature bank (no '{BANK_FORMAT}' marker)")
        if not isinstance(version, (int, np.integer)) or version < 1:
            raise BadCheckpointError(f"{p}: invalid feature bank version {version!r}")
        if version > BANK_VERSION:
            raise BadCheckpointError(f"{p}: feature bank version {version} is newer than this gan3d supports")
        try:
            return _read_contents(h5)
        except (OSError, KeyError, RuntimeError, ValueError, TypeError, BadInputError) as e:
            raise BadCheckpointError(f"{p}: damaged feature bank ({type(e).__name__}: {first_line(e)})") from None


def _read_contents(h5: Any) -> BankFile:
    a = h5.attrs
    params = dict(weights_hash=str(a["weights_hash"]), profile=str(a["profile"]), data_name=str(a["data_name"]),
                  data_sha256=str(a["data_sha256"]), dtype=str(a["dtype"]),
                  n_components=int(a.get("n_components", 0)) or None, n_sketch=int(a.get("n_sketch", 0)),
                  random_state=int(a.get("random_state", 0)), thumbnail_resolution=int(a["thumbnail_resolution"]),
                  created=str(a["created"]), meta=json.loads(a["meta"]))
    features = {k: h5[f"features_{k}"][()] for k in KINDS if f"features_{k}" in h5}
    projections, norms = {}, {}
    for k in features:
        if f"projection_{k}" in h5:
            g = h5[f"projection_{k}"]
            projections[k] = SketchedPCA.from_arrays(
                g["mean"][()], g["components"][()], g["sketch_bucket"][()], g["sketch_sign"][()],
                n_sketch=int(g.attrs["n_sketch"]), random_state=params["random_state"])
            norms[k] = h5[f"norms_{k}"][()]
    names = [c.decode() if isinstance(c, bytes) else str(c) for c in h5["class_names"][()]]
    thumbs = h5["thumbnails"][()] if "thumbnails" in h5 else None
    return BankFile(params, features, projections, norms, labels=h5["labels"][()], class_names=names,
                    source_index=h5["source_index"][()], thumbnails=thumbs)


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else "no details"
