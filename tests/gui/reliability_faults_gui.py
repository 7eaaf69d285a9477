"""Faults injected into the running explorer, for tests/gui/test_reliability_faults.py and the report.

* Writes from the File menu and the sequence export (shape, screenshot, session, GIF, mesh folder) into a
  read-only folder, onto a "full disk" (ENOSPC from the rename, as tests/reliability_faults.enospc) and
  past a real file-size limit mid-write (RLIMIT_FSIZE: EFBIG inside the C/C++ writers). Each must give a
  one-line message naming the file, leave the previous file byte-identical and no temporary file behind.
* The trainer the Training tab starts (the real `gan3d train`): bad data, a read-only run folder, a full
  disk, SIGKILL mid-run, a program that cannot start. Its last lines must show in the tab, and the app
  must go on generating shapes.

Each fault returns a :class:`FaultOutcome`: ``clean`` or ``wrong`` / ``crash`` / ``slow`` with why, and
``lost`` (files changed or left behind, session fields changed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from tests.gui.reliability_harness import Guard, choose_in_menu, dialogs, idle, lost, names_file, snapshot, wait_for
from tests.gui.reliability_inputs import messages
from tests.reliability_faults import enospc, file_size_limit, stray_temps

PREVIOUS = b"previous contents"


@dataclass
class FaultOutcome:
    result: str = "clean"  # clean, wrong, crash, slow
    detail: str = ""
    lost: list[str] = field(default_factory=list)


# -- writes ---------------------------------------------------------------------------------------------------
def _sequence(suffix: str) -> Callable[[Any, Path], None]:
    def go(window: Any, path: Path) -> None:
        window.tabs.setCurrentWidget(window.interpolate)
        with dialogs(path):
            window.interpolate.export_sequence(suffix)
    return go


WRITES: dict[str, tuple[str, Callable[[Any, Path], None]]] = {  # what -> (file name, how the user asks)
    "export STL": ("shape.stl", lambda w, p: choose_in_menu(w, "Export current shape\u2026", p)),
    "export binvox": ("shape.binvox", lambda w, p: choose_in_menu(w, "Export current shape\u2026", p)),
    "screenshot": ("explorer.png", lambda w, p: choose_in_menu(w, "Save screenshot\u2026", p)),
    "save session": ("session.json", lambda w, p: choose_in_menu(w, "Save session\u2026", p)),
    "GIF sequence": ("path.gif", _sequence(".gif")),
    "mesh sequence": ("frames", _sequence("")),
}
WRITE_FAULTS = ("read-only folder", "disk full (ENOSPC on rename)", "file too large mid-write (EFBIG)")


@contextlib.contextmanager
def _replace_raises_enospc() -> Iterator[None]:
    real = os.replace
    os.replace = enospc  # type: ignore[assignment]  (atomic_path looks os.replace up at call time)
    try:
        yield
    finally:
        os.replace = real


@contextlib.contextmanager
def _second_half_fails() -> Iterator[None]:
    """The disk fills between a session's two halves: the .npz is written, the .json write fails."""
    real = Path.write_text

    def full(self: Path, *a: Any, **k: Any) -> int:
        if self.suffix == ".json":
            enospc()
        return real(self, *a, **k)
    Path.write_text = full  # type: ignore[method-assign]
    try:
        yield
    finally:
        Path.write_text = real  # type: ignore[method-assign]


def _previous(target: Path) -> list[Path]:
    """Put 'previous' files where the write goes; returns them."""
    if target.suffix == "":
        target.mkdir(parents=True)
        files = [target / "frame_000.stl"]
    else:
        files = [target] + ([target.with_suffix(".npz")] if target.suffix == ".json" else [])
    for f in files:
        f.write_bytes(PREVIOUS)
    return files


def write_fault(window: Any, what: str, fault: str, directory: Path, guard: Guard, read_only: Path | None,
                budget: float = 90.0) -> FaultOutcome:
    """Ask for one write (``what``) under one fault; see the module docstring for what must hold."""
    name, ask = WRITES[what]
    directory.mkdir(parents=True, exist_ok=True)
    out = FaultOutcome()
    if fault == "read-only folder":
        if read_only is None:
            return FaultOutcome("clean", "skipped: no read-only folder")
        target, before_files = read_only / name, []
    else:
        target = directory / name
        before_files = _previous(target)
    context = {"read-only folder": contextlib.nullcontext, "disk full (ENOSPC on rename)": _replace_raises_enospc,
               "file too large mid-write (EFBIG)": lambda: file_size_limit(len(PREVIOUS)),
               "disk fills between the two halves": _second_half_fails}[fault]
    window.messages.dismiss()
    state_before, n_errors = snapshot(window.state), len(guard.errors)
    with context():
        ask(window, target)  # an export goes on after its first job: wait for its last word, error or info
        done = wait_for(lambda: idle(window) and bool(window.messages.messages), budget)
    wait_for(lambda: False, 0.1)
    msgs = messages(window)
    escaped = guard.since(n_errors)
    if escaped:
        out.result, out.detail = "crash", escaped[0].splitlines()[-1][:300]
    elif not done:
        out.result, out.detail = "slow", f"no message within {budget:.0f} s"
    elif not msgs:
        out.result, out.detail = "wrong", f"no error: {window.messages.messages[-1][2][:200]}"
    else:
        text = msgs[-1][1]
        bad = [why for why, hit in (("several lines", "\n" in text), ("internal error", "internal error" in text),
                                    ("does not name the file", not names_file(text, target))) if hit]
        if bad:
            out.result = "wrong"
        out.detail = f"{', '.join(bad) + ': ' if bad else ''}{text[:300]}"
    out.lost = [f"{f.name} changed" for f in before_files if not f.is_file() or f.read_bytes() != PREVIOUS]
    out.lost += [f"temp file left: {p.name}" for p in stray_temps(directory)]
    if fault == "read-only folder" and target.exists():
        out.lost.append(f"{target} was created")
    out.lost += [f"session field {k}" for k in lost(state_before, snapshot(window.state))]
    window.messages.dismiss()
    return out


# -- the trainer ----------------------------------------------------------------------------------------------
DISK_FULL_TRAINER = (
    "import resource, runpy, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (30000, resource.RLIM_INFINITY))\n"
    "sys.argv = ['gan3d'] + sys.argv[1:]\n"
    "runpy.run_module('gan_core.cli', run_name='__main__')\n"
)


def trainer_fault(window: Any, fault: str, directory: Path, guard: Guard, read_only: Path | None,
                  budget: float = 240.0) -> FaultOutcome:
    """Run the real trainer from the Training tab into ``fault``; its last lines must show in the tab, a
    one-line message in the window, and the app must still generate a new shape afterwards."""
    from tests.reliability_train import tiny_data, train_args

    panel = window.training
    window.tabs.setCurrentWidget(panel)
    directory.mkdir(parents=True, exist_ok=True)
    good = tiny_data(directory / "boxes.npz")
    out_dir = directory / "run"
    window.messages.dismiss()
    state_before, n_errors = snapshot(window.state), len(guard.errors)
    expect = ""  # a text the tab's error box must show
    if fault == "bad data file (wrong-shaped voxels)":
        import numpy as np

        bad = directory / "flat.npz"
        np.savez(bad, voxels=np.zeros((4, 16, 16, 8), np.uint8), labels=np.zeros(4, np.int64), classes=np.array(["a"]))
        panel.data.setText(str(bad))
        panel.out.setText(str(out_dir))
        panel.profile.setCurrentText("tiny16")
        panel.epochs.setValue(1)
        panel.start_btn.click()  # the tab's own command line
        expect = "BadFileError"
    elif fault == "read-only run folder":
        if read_only is None:
            return FaultOutcome("clean", "skipped: no read-only folder")
        panel.out.setText(str(read_only / "run"))
        panel.start_process(sys.executable, ["-m", "gan_core.cli", *train_args(good, read_only / "run", epochs=1)])
        expect = "cannot write"
    elif fault == "disk full":
        panel.out.setText(str(out_dir))
        panel.start_process(sys.executable, ["-c", DISK_FULL_TRAINER, *train_args(good, out_dir, epochs=1)])
        expect = "cannot write"
    elif fault == "SIGKILL mid-run":
        panel.out.setText(str(out_dir))
        panel.start_process(sys.executable, ["-m", "gan_core.cli", *train_args(good, out_dir, epochs=1000)])
        if not wait_for(lambda: bool(panel.curves.step) or not panel.running, budget):
            return FaultOutcome("slow", "no training step within the budget")
        if panel.running:
            os.kill(int(panel.process.processId()), signal.SIGKILL)
        expect = "step"  # it wrote nothing to stderr: the tab shows where its log ended
    elif fault == "program cannot start":
        panel.out.setText(str(out_dir))
        panel.start_process(str(directory / "no-such-python"), ["-m", "gan_core.cli"])
        expect = ""
    else:
        raise ValueError(fault)
    done = wait_for(lambda: not panel.running and bool(messages(window)), budget)
    out = FaultOutcome()
    escaped = guard.since(n_errors)
    if escaped:
        return FaultOutcome("crash", escaped[0].splitlines()[-1][:300])
    if not done:
        return FaultOutcome("slow", f"trainer still running or no message after {budget:.0f} s")
    text = messages(window)[-1][1]
    shown = panel.errors.toPlainText()
    problems = [why for why, hit in (
        ("message is several lines", "\n" in text), ("internal error", "internal error" in text),
        ("the tab shows no error output", fault != "program cannot start" and panel.errors.isHidden()),
        (f"the tab does not show {expect!r}", bool(expect) and expect not in shown),
        ("Start is not enabled again", not panel.start_btn.isEnabled())) if hit]
    out.detail = f"{'; '.join(problems) + ': ' if problems else ''}{text[:300]}"
    if problems:
        out.result = "wrong"
    out.lost = [f"session field {k}" for k in lost(state_before, snapshot(window.state))]
    if not still_generates(window):
        out.result, out.detail = "wrong", "the app stopped generating shapes after the fault"
    window.messages.dismiss()
    return out


TRAINER_FAULTS = ("bad data file (wrong-shaped voxels)", "read-only run folder", "disk full", "SIGKILL mid-run",
                  "program cannot start")


def still_generates(window: Any, timeout: float = 30.0) -> bool:
    """A new endpoint B is generated and shown in the Interpolate tab."""
    window.tabs.setCurrentWidget(window.interpolate)
    view = window.interpolate.view_b
    before = view.shown_count
    slot = window.state.slot("B")  # a seed other than the current one: the same shape asks for nothing new
    window.state.seed_slot("B", ((slot.seed or 0) + 1 if slot is not None else 0) % 100_000)
    return wait_for(lambda: idle(window) and view.shown_count > before, timeout)
