"""Bad inputs fed to the running explorer through the handlers a user reaches: File > Open checkpoint,
Open feature bank and Open session (their file dialogs pick the file), a drop and the Open image button on
the Reconstruct tab, the Training tab's data file and run folder.

The checkpoint, bank and voxel-set files are gan_core's bad-input corpus (tests/reliability_corpus.py) and
the images those of tests/test_reliability_images.py; the damaged sessions are in reliability_sessions.py.

:func:`run_gui_case` says what happened (:class:`GuiOutcome`): ``clean`` a one-line message in the window
naming the file, ``accepted`` odd but valid input taken, ``wrong`` no message where one was due, a message
that is several lines, an "internal error" or does not name the file, or valid input refused; ``crash`` an
exception escaped (see :class:`Guard`); ``slow`` nothing within the budget (a hang for a user). ``lost``
lists the session fields (endpoints, slots, history, undo stack...) the input changed; it must be empty.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tests.gui.reliability_harness import (
    Guard, choose_in_menu, dialogs, drop_files, idle, lost, names_file, quiet, snapshot, wait_for,
)
from tests.reliability_corpus import _header_npy, all_cases

BUDGET_S = 30.0  # a loaded 2-core machine; a user would call anything longer a hang
QUIET_S = 1.5  # idle this long without a message: the input was taken without one
TOOK: dict[str, Callable[[Any, Path], bool]] = {  # how valid input of a route shows in the session
    "checkpoint": lambda w, p: w.state.model.checkpoint_path is not None and Path(w.state.model.checkpoint_path) == p,
    "bank": lambda w, p: w.state.bank_path == str(p),
    "image": lambda w, p: w.state.reconstruction is not None and w.state.reconstruction.image == str(p.resolve()),
}
ACCEPT_CHANGES = {  # what valid input of a route may change
    "checkpoint": frozenset({"model"}),
    "bank": frozenset({"bank", "bank_path"}),
    "image": frozenset({"reconstruction", "history", "undo"}),
}
EVERYTHING = frozenset({"slot:A", "slot:B", "slot:a", "slot:b", "slot:c", "t", "mode", "weights", "current",
                        "reconstruction", "level", "display", "linked", "history", "undo", "model", "bank",
                        "bank_path"})


@dataclass
class GuiCase:
    route: str  # checkpoint, bank, session, image drop, image button, training data, run folder
    name: str
    make: Callable[[Path, Any], Path]  # (directory, window) -> the file
    expect: str = "error"  # "error", "ok" or "any" (a clear message or accepted, never anything else)
    names_file: bool = True  # a message must name the file
    changes: frozenset[str] = frozenset()  # fields valid input may change
    took: Callable[[Any, Path], bool] | None = None  # for valid input: did the app really use it?


@dataclass
class GuiOutcome:
    case: GuiCase
    result: str  # clean, accepted, wrong, crash, slow
    detail: str = ""
    lost: list[str] = field(default_factory=list)
    seconds: float = 0.0


def feed(window: Any, route: str, path: Path) -> None:
    """Give ``path`` to the window the way a user would on ``route``."""
    if route in ("checkpoint", "bank", "session"):
        text = {"checkpoint": "Open checkpoint\u2026", "bank": "Open feature bank\u2026", "session": "Open session\u2026"}
        choose_in_menu(window, text[route], path)
    elif route == "image drop":
        window.tabs.setCurrentWidget(window.reconstruct)
        drop_files(window.reconstruct, path)
    elif route == "image button":
        window.tabs.setCurrentWidget(window.reconstruct)
        with dialogs(path):
            window.reconstruct.open.click()
    elif route == "training data":
        window.tabs.setCurrentWidget(window.training)
        with dialogs(path):
            window.training.data_browse.click()
    elif route == "run folder":
        window.tabs.setCurrentWidget(window.training)
        with dialogs(path):
            window.training.out_browse.click()
    else:
        raise ValueError(route)


def messages(window: Any) -> list[tuple[str, str]]:
    """(level, text) of the error and warning messages shown since the last dismiss."""
    return [(lv, tx) for _, lv, tx in window.messages.messages if lv in ("error", "warning")]


def run_gui_case(window: Any, case: GuiCase, directory: Path, guard: Guard, budget: float = BUDGET_S) -> GuiOutcome:
    directory.mkdir(parents=True, exist_ok=True)
    path = case.make(directory, window)
    window.messages.dismiss()
    before, n_errors = snapshot(window.state), len(guard.errors)
    t0 = time.perf_counter()
    feed(window, case.route, path)
    done = wait_for(lambda: idle(window) and (bool(messages(window)) or quiet(window, QUIET_S)), budget)
    wait_for(lambda: False, 0.05)  # let queued signals land
    seconds = time.perf_counter() - t0
    msgs = messages(window)
    changes = frozenset() if msgs else (case.changes if case.expect != "error" else frozenset())
    out = GuiOutcome(case, "clean" if msgs else "accepted", "", lost(before, snapshot(window.state), changes), seconds)
    escaped = guard.since(n_errors)
    if escaped:
        out.result, out.detail = "crash", escaped[0].splitlines()[-1][:300]
    elif not done:
        out.result, out.detail = "slow", f"no message or result within {budget:.0f} s"
    elif case.expect == "error" and not msgs:
        out.result, out.detail = "wrong", "accepted without a message"
    elif case.expect == "ok" and msgs:
        out.result, out.detail = "wrong", f"refused valid input: {msgs[-1][1]}"
    elif case.expect == "ok" and case.took is not None and not case.took(window, path):
        out.result, out.detail = "wrong", "valid input was not used"
    else:
        for _, text in msgs:
            bad = [why for why, hit in (("several lines", "\n" in text), ("internal error", "internal error" in text),
                                        ("does not name the file", case.names_file and not names_file(text, path))) if hit]
            if bad:
                out.result, out.detail = "wrong", f"{', '.join(bad)}: {text[:300]!r}"
                break
        else:
            out.detail = msgs[-1][1][:300] if msgs else ""
    window.messages.dismiss()
    return out


# -- checkpoints, banks and voxel sets: gan_core's corpus through the window ----------------------------------
def _corpus(category: str, route: str, suffixes: tuple[str, ...] = ()) -> list[GuiCase]:
    out = []
    for c in all_cases():
        if c.category != category or c.name in ("asked for another profile", "another discriminator"):
            continue  # the same file as the control, read with other arguments the app never passes
        expect = c.expect
        if route == "bank":
            expect = "error"  # the corpus banks were built by no discriminator of ours: a clear refusal
        elif route == "training data":
            expect = "any"  # the tab lists class names only; the trainer validates the rest
        out.append(GuiCase(route, f"{category}: {c.name}", lambda d, w, c=c: c.make(d), expect,
                           changes=ACCEPT_CHANGES.get(route, frozenset()), took=TOOK.get(route)))
    if suffixes:
        return [g for g in out if _suffix_of(g) in suffixes]
    return out


def _suffix_of(case: GuiCase) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            return case.make(Path(tmp), None).suffix
        except Exception:  # noqa: BLE001 (a make that needs the window: not a voxel set)
            return ""


def _bank_of(window: Any, d: Path) -> Path:
    """A valid bank built with the window's own discriminator (the accepted control)."""
    from gan_core.data.synthetic import make_synthetic_dataset
    from gan_core.features import FeatureBank

    model = window.state.model
    vox, labels, classes = make_synthetic_dataset(1, resolution=model.resolution, seed=0)
    feats = {k: model.features(vox, kind=k) for k in ("paper", "last")}
    bank = FeatureBank(weights_hash=model.weights_hash(), profile=model.profile.name, dtype="float32")
    return bank.fit(feats, labels=labels, class_names=list(classes), thumbnails=vox).save(d / "ours.h5")


def _write(name: str, data: bytes) -> Callable[[Path, Any], Path]:
    def make(d: Path, _w: Any) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return make


def checkpoint_cases() -> list[GuiCase]:
    extra = [
        GuiCase("checkpoint", "a feature bank chosen as checkpoint", lambda d, w: _bank_of(w, d)),
        GuiCase("checkpoint", "a PNG chosen as checkpoint", _write("picture.pt", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)),
    ]
    return extra + _corpus("checkpoint", "checkpoint")  # the valid control (a generator only) comes last


def bank_cases() -> list[GuiCase]:
    ours = GuiCase("bank", "bank of the loaded model (control)", lambda d, w: _bank_of(w, d), "ok",
                   changes=ACCEPT_CHANGES["bank"], took=TOOK["bank"])
    return _corpus("feature bank", "bank") + [ours]


def training_data_cases() -> list[GuiCase]:
    return _corpus("voxel set", "training data") + _corpus("voxel file", "training data", (".npz", ".h5"))


# -- images: dropped on and opened in the Reconstruct tab -----------------------------------------------------
def image_cases() -> list[GuiCase]:
    from tests.test_reliability_images import BAD_FILES, GOOD

    cases = []
    for route in ("image drop", "image button"):
        for name, data in sorted(BAD_FILES.items()):
            cases.append(GuiCase(route, name, _write(name, data)))
        for name, build in sorted(GOOD.items()):
            cases.append(GuiCase(route, name, lambda d, w, n=name, b=build: _write(n, b())(d, w), "ok",
                                 changes=ACCEPT_CHANGES["image"], took=TOOK["image"]))
        cases += [
            GuiCase(route, "a directory", lambda d, w: _mkdir(d / "photos.png")),
            GuiCase(route, "missing file", lambda d, w: d / "nothere.png"),
            GuiCase(route, "a voxel grid (.npy)", lambda d, w: _save_npy(d / "chair.npy", np.ones((8, 8, 8), np.uint8))),
            GuiCase(route, "a checkpoint (.pt)", lambda d, w: _torch_zeros(d / "model.pt")),
        ]
    return cases


def _mkdir(p: Path) -> Path:
    p.mkdir()
    return p


def _save_npy(p: Path, arr: np.ndarray) -> Path:
    np.save(p, arr)
    return p


def _torch_zeros(p: Path) -> Path:
    import torch

    torch.save({"w": torch.zeros(3)}, p)
    return p


# -- a run folder the Training tab watches: samples and metrics written by someone else -----------------------
def _run(samples: Callable[[Path], Any] | None = None, metrics: bytes | None = None) -> Callable[[Path, Any], Path]:
    def make(d: Path, _w: Any) -> Path:
        run = d / "run"
        (run / "samples").mkdir(parents=True)
        if samples is not None:
            samples(run / "samples" / "latest.npz")
        if metrics is not None:
            (run / "metrics.jsonl").write_bytes(metrics)
        return run
    return make


def _npz(**arrays: Any) -> Callable[[Path], None]:
    return lambda p: np.savez(p, **arrays)


def run_folder_cases() -> list[GuiCase]:
    rng = np.random.default_rng(0)
    step = {"type": "step", "epoch": 0, "step": 1, "g_loss": 1.0, "d_loss": 1.0, "d_acc": 0.5, "d_updated": True}
    lines = lambda *recs: b"".join(json.dumps(r).encode() + b"\n" for r in recs)  # noqa: E731
    c = [
        ("samples garbage", _run(lambda p: p.write_bytes(b"garbage"))),
        ("samples truncated zip", _run(lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40))),
        ("samples 2-d grids", _run(_npz(voxels=np.ones((8, 16, 16), np.uint8)))),
        ("samples 5-d", _run(_npz(voxels=np.ones((2, 2, 8, 8, 8), np.uint8)))),
        ("samples 1-d", _run(_npz(voxels=np.ones(8, np.uint8)))),
        ("samples scalar", _run(_npz(voxels=np.float32(1)))),
        ("samples NaN", _run(_npz(voxels=np.full((8, 16, 16, 16), np.nan, np.float32)))),
        ("samples all zero", _run(_npz(voxels=np.zeros((8, 16, 16, 16), np.uint8)))),
        ("samples strings", _run(_npz(voxels=np.full((2, 4, 4, 4), "x")))),
        ("samples pickled", _run(_npz(voxels=np.array([None, None], dtype=object)))),
        ("samples without voxels", _run(_npz(z=rng.random((8, 32))))),
        ("samples header claims 10^12", _run(lambda p: _zip_member(p, "voxels.npy", _header_npy((10_000,) * 3)))),
        ("samples a directory", _run(lambda p: p.mkdir())),
        ("metrics binary garbage", _run(metrics=bytes(range(256)) * 8 + b"\n")),
        ("metrics not objects", _run(metrics=b"[1, 2]\n3\n\"x\"\nnull\n")),
        ("metrics resumed_at_step a string", _run(metrics=lines(step, {"type": "config", "resumed_at_step": "abc"}))),
        ("metrics step values strings", _run(metrics=lines({**step, "g_loss": "high", "step": "one"}))),
        ("metrics NaN and Infinity", _run(metrics=b'{"type": "step", "step": NaN, "g_loss": Infinity, "d_loss": 1,'
                                                  b' "d_acc": -Infinity}\n')),
        ("metrics epoch not an object", _run(metrics=lines({"type": "epoch", "epoch": [1], "warning": {"a": 1}}))),
        ("metrics one 8 MB line", _run(metrics=b"{" + b" " * 8_000_000)),
        ("metrics a directory", lambda d, w: _mkdir_metrics(d)),
    ]
    cases = [GuiCase("run folder", name, make, "any") for name, make in c]
    shapes = (rng.random((8, 16, 16, 16)) > 0.5).astype(np.uint8)
    cases += [GuiCase("run folder", "samples and metrics (control)", _run(_npz(voxels=shapes), lines(step)), "ok",
                      took=lambda w, p: w.training.curves.step == [1.0] and all(
                          np.array_equal(th.voxels, v) for th, v in zip(w.training.previews, shapes)))]
    return cases


def _zip_member(p: Path, name: str, data: bytes) -> None:
    import zipfile

    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr(name, data)


def _mkdir_metrics(d: Path) -> Path:
    run = _run()(d, None)
    (run / "metrics.jsonl").mkdir()
    return run


def session_cases() -> list[GuiCase]:
    from tests.gui.reliability_sessions import session_cases as cases

    return cases()


ROUTES: dict[str, Callable[[], list[GuiCase]]] = {
    "checkpoint": checkpoint_cases, "bank": bank_cases, "session": session_cases, "image": image_cases,
    "training data": training_data_cases, "run folder": run_folder_cases,
}


def prepare(window: Any) -> None:
    """Give the session something to lose: endpoints, operands, an explicit current shape, history, undo."""
    st = window.state
    for i, slot in enumerate("ABabc"):
        st.seed_slot(slot, 40 + i)
    st.break_merge()
    st.set_t(0.3)
    st.set_weights((1.0, 0.5, 1.0))
    st.set_current(st.path_z(0.7), "picked")
    st.set_current(None)
