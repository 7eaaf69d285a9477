"""Damaged sessions for File > Open session (tests/gui/reliability_inputs.py runs them): a real session saved
from the window, then broken in its JSON half or its z-vector .npz half, one way each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tests.gui.reliability_inputs import EVERYTHING, GuiCase, _mkdir
from tests.reliability_corpus import _header_npy


# -- sessions: a real saved session, damaged ------------------------------------------------------------------
class Evil:
    """Unpickling it would create the file named ``marker``: proof that no session loader runs pickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _session(name: str, doc: Callable[[dict], Any] | None = None, npz: Callable[[dict, Path], Any] | None = None,
             raw: bytes | None = None) -> Callable[[Path, Any], Path]:
    def make(d: Path, window: Any) -> Path:
        from explorer.session import save_session

        p = save_session(window.state, d / name)
        if doc is not None:
            content = json.loads(p.read_text())
            doc(content)
            p.write_text(json.dumps(content))  # NaN and Infinity become JSON's non-standard tokens, as Python reads
        if npz is not None:
            with np.load(p.with_suffix(".npz")) as f:
                arrays = {k: f[k] for k in f.files}
            npz(arrays, d)
            np.savez(p.with_suffix(".npz"), **arrays)
        if raw is not None:
            p.write_bytes(raw)
        return p
    return make


def _set(path: str, value: Any) -> Callable[[dict], None]:
    keys = path.split("/")

    def edit(doc: dict) -> None:
        target = doc
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return edit


def _drop(key: str) -> Callable[[dict], None]:
    return lambda doc: doc.pop(key)


def _with_reconstruction(image: Any) -> tuple[Callable[[dict], None], Callable[[dict, Path], None]]:
    def doc(content: dict) -> None:
        content["latents"]["reconstruction"] = {"label": "photo", "seed": None, "image": image}

    def arrays(a: dict, _d: Path) -> None:
        a["reconstruction"] = a["slot_A"]
    return doc, arrays


def _npz_member(key: str, value: Callable[[np.ndarray, Path], Any]) -> Callable[[dict, Path], None]:
    def edit(a: dict, d: Path) -> None:
        a[key] = value(a[key], d)
    return edit


def _replace_npz(data: bytes | None) -> Callable[[Path, Any], Path]:
    """A valid session whose .npz is replaced by ``data`` (None: removed; b"dir": a directory)."""
    def make(d: Path, window: Any) -> Path:
        p = _session("s.json")(d, window)
        z = p.with_suffix(".npz")
        z.unlink()
        if data == b"dir":
            z.mkdir()
        elif data is not None:
            z.write_bytes(data)
        return p
    return make


def _truncated_npz(d: Path, window: Any) -> Path:
    p = _session("s.json")(d, window)
    z = p.with_suffix(".npz")
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    return p


def _huge_member(d: Path, window: Any) -> Path:
    import zipfile

    p = _session("s.json")(d, window)
    with zipfile.ZipFile(p.with_suffix(".npz"), "a") as zf:
        zf.writestr("extra.npy", _header_npy((1_000_000, 1_000_000)))
    return p


def _foreign_checkpoint(d: Path, window: Any) -> Path:
    bad = d / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    return _session("s.json", _set("model/checkpoint", str(bad)))(d, window)


def session_cases() -> list[GuiCase]:
    nan = float("nan")
    recon_doc, recon_npz = _with_reconstruction(7)
    c = [
        ("not JSON", _session("s.json", raw=b"{not json")),
        ("empty file", _session("s.json", raw=b"")),
        ("not UTF-8", _session("s.json", raw=b"\xff\xfe\x00\x81 garbage")),
        ("a JSON list", _session("s.json", raw=b"[]")),
        ("nested 100000 deep", _session("s.json", raw=b"[" * 100_000)),
        ("no format marker", _session("s.json", _drop("format"))),
        ("version a string", _session("s.json", _set("version", "abc"))),
        ("version a list", _session("s.json", _set("version", [1]))),
        ("newer version", _session("s.json", _set("version", 99))),
        ("latents a list", _session("s.json", _set("latents", []))),
        ("latents missing", _session("s.json", _drop("latents"))),
        ("t NaN", _session("s.json", _set("t", nan))),
        ("t 5", _session("s.json", _set("t", 5.0))),
        ("t a string", _session("s.json", _set("t", "half"))),
        ("level 2", _session("s.json", _set("level", 2.0))),
        ("level NaN", _session("s.json", _set("level", nan))),
        ("weights Infinity", _session("s.json", _set("weights", [float("inf"), 1, 1]))),
        ("two weights", _session("s.json", _set("weights", [1, 1]))),
        ("mode unknown", _session("s.json", _set("mode", "cubic"))),
        ("display unknown", _session("s.json", _set("display", "hologram"))),
        ("seed a string", _session("s.json", _set("latents/slot:A/seed", "abc"))),
        ("seed 2^40", _session("s.json", _set("latents/slot:A/seed", 2**40))),
        ("seed a float", _session("s.json", _set("latents/slot:A/seed", 1.5))),
        ("image a number", _session("s.json", recon_doc, recon_npz)),
        ("history entries strings", _session("s.json", _set("history", ["x", "y"]))),
        ("history longer than its z rows", _session("s.json", lambda doc: doc["history"].extend(
            [{"label": "x", "seed": 1}] * 40))),
        ("checkpoint a number", _session("s.json", _set("model/checkpoint", 5))),
        ("bank a number", _session("s.json", _set("bank", 5))),
        ("z_dim of another model", _session("s.json", _set("model/z_dim", 200))),
        ("npz missing", _replace_npz(None)),
        ("npz garbage", _replace_npz(b"garbage, not a zip")),
        ("npz a directory", _replace_npz(b"dir")),
        ("npz truncated", _truncated_npz),
        ("npz header claims 10^12 values", _huge_member),
        ("z NaN", _session("s.json", npz=_npz_member("slot_A", lambda z, d: np.full_like(z, np.nan)))),
        ("history z NaN", _session("s.json", npz=_npz_member("history", lambda z, d: np.full_like(z, np.nan)))),
        ("z too short", _session("s.json", npz=_npz_member("slot_A", lambda z, d: z[:5]))),
        ("history z too short", _session("s.json", npz=_npz_member("history", lambda z, d: z[:, :5]))),
        ("z strings", _session("s.json", npz=_npz_member("slot_A", lambda z, d: np.full(z.shape, "x")))),
        ("z pickled objects", _session("s.json", npz=_npz_member("slot_A", lambda z, d: np.array([None] * len(z))))),
        ("z a pickle that runs code", _session("s.json", npz=_npz_member(
            "slot_B", lambda z, d: np.array([Evil(str(d / "PICKLE-RAN"))], dtype=object)))),
        ("checkpoint that does not load", _foreign_checkpoint),
        ("a directory", lambda d, w: _mkdir(d / "folder.json")),
        ("missing file", lambda d, w: d / "nothere.json"),
    ]
    cases = [GuiCase("session", name, make) for name, make in c]
    cases[-3].names_file = False  # the message names the checkpoint that failed, not the session
    cases += [GuiCase("session", "valid session (control)", _session("s.json"), "ok", changes=EVERYTHING),
              GuiCase("session", "label a dict", _session("s.json", _set("latents/slot:A/label", {"x": 1})), "ok",
                      changes=EVERYTHING)]
    return cases


def pickle_ran(directory: Path) -> bool:
    return any(directory.rglob("PICKLE-RAN"))
