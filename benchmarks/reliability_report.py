"""Run the bad-input corpus, the fuzzers and the fault injections; print what happened.

    python benchmarks/reliability_report.py [--fuzz 100] [--kills 6] [--seed 0] [--only gui ...]

Outcomes: ``clean`` a one-line Gan3dError (the expected class for corpus cases; for a fault, handled as
specified: a one-line error, or for kills a loadable latest.pt and a run that resumes), ``accepted`` odd but
valid input loaded, ``wrong`` the wrong verdict (error vs success, class, message form), ``crash`` any other
exception (a traceback for a user), ``slow`` past the time budget (a hang for a user). ``lost`` counts files
a fault damaged or removed: a previous file changed by a failed write, a latest.pt that no longer loads or
went back in steps after a kill, temp files left after the next run started. All but clean/accepted must be 0.

The ``gui`` section drives the explorer's main window (tests/gui/reliability_*.py): ``clean`` there is a
one-line message in the window naming the file, ``crash`` an exception escaping a slot, thread or __del__,
``lost`` a session field (endpoints, operands, history, undo stack, model, bank) or a file the input changed.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from gan_core.errors import Gan3dError  # noqa: E402
from tests import reliability_fuzz as fz  # noqa: E402
from tests import reliability_train as rt  # noqa: E402
from tests.reliability_corpus import all_cases, run_case  # noqa: E402
from tests.reliability_faults import checkpoint, enospc, file_size_limit, stray_temps, writers  # noqa: E402

COLUMNS = ("tried", "clean", "accepted", "wrong", "crash", "slow", "lost")
SECTIONS = ("corpus", "fuzz", "write faults", "training faults", "gui")


class Table:
    def __init__(self) -> None:
        self.rows: dict[str, collections.Counter] = {}
        self.notes: list[str] = []

    def add(self, section: str, row: str, outcome: str, note: str = "") -> None:
        c = self.rows.setdefault(f"{section}|{row}", collections.Counter())
        c["tried"] += 1
        c[{"ok": "accepted"}.get(outcome, outcome)] += 1
        if note and outcome not in ("clean", "ok", "accepted"):
            self.notes.append(f"{section} / {row}: {outcome}: {note}")

    def lost(self, section: str, row: str, note: str) -> None:
        self.rows.setdefault(f"{section}|{row}", collections.Counter())["lost"] += 1
        self.notes.append(f"{section} / {row}: LOST: {note}")

    def print(self) -> None:
        width = max(len(k.split("|")[1]) for k in self.rows) + 2
        section = None
        total: collections.Counter = collections.Counter()
        print(f"{'':{width + 2}}" + "".join(f"{c:>9}" for c in COLUMNS))
        for key, c in self.rows.items():
            sec, row = key.split("|")
            if sec != section:
                print(f"{sec}")
                section = sec
            print(f"  {row:{width}}" + "".join(f"{c[k]:>9}" for k in COLUMNS))
            total.update(c)
        print(f"{'TOTAL':{width + 2}}" + "".join(f"{total[k]:>9}" for k in COLUMNS))
        bad = total["wrong"] + total["crash"] + total["slow"] + total["lost"]
        for n in self.notes:
            print("  !", n)
        print(f"\n{total['tried']} inputs and faults tried: {total['clean']} clean errors, {total['accepted']} accepted, "
              f"{total['wrong']} wrong, {total['crash']} crashes, {total['slow']} slow, {total['lost']} files lost"
              + ("" if bad else " -- all as required"))


def corpus(table: Table, d: Path) -> None:
    for i, case in enumerate(all_cases()):
        o = run_case(case, d / f"c{i}")
        table.add("bad-input corpus", case.category, o.result, f"{case.name}: {o.detail}")


def fuzz(table: Table, d: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for kind, (suffix, data) in fz.seeds(d / "seeds").items():
        for _ in range(n):
            ops = fz.random_ops(rng)
            outcome, detail = fz.check(kind, fz.mutate(data, ops), d / f"mutant{suffix}")
            table.add(f"fuzzing ({n} mutants each)", kind, outcome, f"{detail} ops={ops}")


def write_faults(table: Table, d: Path) -> None:
    """Each writer under a real failed write (RLIMIT_FSIZE), ENOSPC from os.replace, and a read-only dir."""
    import gan_core.files  # noqa: F401  (os.replace is looked up in the os module at call time)

    sec = "write faults"
    for name, (fname, write) in writers().items():
        for fault in ("file too large", "ENOSPC on rename", "read-only dir"):
            w = d / f"{name}-{fault.split()[0]}"
            w.mkdir(parents=True)
            checkpoint(w / "src.pt")
            target = w / fname
            if fault == "read-only dir":
                target = Path("/sys/fs") / fname  # refuses new files even to root
            else:
                target.write_bytes(b"previous")
            try:
                if fault == "file too large":
                    with file_size_limit(4096):
                        write(target)
                elif fault == "ENOSPC on rename":
                    real = os.replace
                    os.replace = enospc  # type: ignore[assignment]
                    try:
                        write(target)
                    finally:
                        os.replace = real
                else:
                    write(target)
                outcome, note = "wrong", "no error"
            except Gan3dError as e:
                outcome, note = ("clean", "") if "\n" not in str(e) else ("wrong", f"multi-line: {e!r}")
            except Exception as e:  # noqa: BLE001
                outcome, note = "crash", f"{type(e).__name__}: {e}"
            table.add(sec, fault, outcome, f"{name}: {note}")
            if fault != "read-only dir" and (not target.exists() or target.read_bytes() != b"previous"):
                table.lost(sec, fault, f"{name}: {target} changed")
            if stray_temps(w):
                table.lost(sec, fault, f"{name}: temp files left: {stray_temps(w)}")


def training_faults(table: Table, d: Path, kills: int, seed: int) -> None:
    from gan_core.train import TrainConfig, Trainer

    sec = "training faults"
    d.mkdir(parents=True, exist_ok=True)
    data = rt.tiny_data(d / "boxes.npz")
    out = d / "run"
    rng = np.random.default_rng(seed)
    # SIGKILL aimed at checkpoint writes (slowed by the test-only wrapper), then at random moments
    for i in range(kills):
        before = rt.checkpoint_step(out) if (out / "latest.pt").exists() else None
        try:
            if i % 2 == 0:
                r = rt.kill_during_write(d / "boxes.npz", out, slow_save_s=0.5)
                row, after = "SIGKILL during torch.save", r["step"]
            else:
                r = rt.kill_at_random(d / "boxes.npz", out, rng, max_delay=2.0, slow_save_s=0.2)
                row, after = "SIGKILL at a random moment", r["after"]
        except Exception as e:  # noqa: BLE001 - latest.pt did not load, or the trainer failed
            table.add(sec, "SIGKILL", "crash", f"{type(e).__name__}: {e}")
            table.lost(sec, "SIGKILL", f"latest.pt after kill {i}: {e}")
            continue
        table.add(sec, row, "clean")
        if before is not None and (after is None or after < before):
            table.lost(sec, row, f"latest.pt went from step {before} to {after}")
    # SIGTERM: save, 'stopped' line, exit 0, no temps (the start also removes the killed runs' temps)
    s = rt.stop_with_sigterm(data, out, extra_steps=1)
    ok = s["returncode"] == 0 and s["rows"] and s["rows"][-1]["type"] == "stopped" and s["step"] >= s["start_step"]
    table.add(sec, "SIGTERM (save, exit 0)", "clean" if ok else "wrong", f"exit {s['returncode']}: {s['stderr'][-300:]}")
    if rt.temps(out):
        table.lost(sec, "SIGTERM (save, exit 0)", f"temp files left: {rt.temps(out)}")
    # disk full during training, divergence: one-line error, latest.pt byte-identical
    cfg = dict(data=str(data), out=str(out), profile="tiny16", batch_size=8, precision="fp32", channels_last=False,
               threads=1, resume=True)
    for row, extra, fault in (("disk full mid-run", {}, "fsize"), ("loss diverges (lr 1e36)",
                                                                   {"g_lr": 1e36, "d_lr": 1e36, "d_acc_threshold": 1.0}, None)):
        good = (out / "latest.pt").read_bytes()
        tr = Trainer(TrainConfig(**cfg, epochs=tr_epochs(out) + 3, **extra))
        try:
            if fault:
                with file_size_limit(len(good) // 2):
                    tr.run()
            else:
                tr.run()
            outcome, note = "wrong", "no error"
        except Gan3dError as e:
            outcome, note = ("clean", "") if "\n" not in str(e) else ("wrong", repr(e))
        except Exception as e:  # noqa: BLE001
            outcome, note = "crash", f"{type(e).__name__}: {e}"
        table.add(sec, row, outcome, note)
        if (out / "latest.pt").read_bytes() != good or stray_temps(out):
            table.lost(sec, row, "latest.pt changed or temp files left")
    # finally the run must still resume and train
    final = Trainer(TrainConfig(**cfg, epochs=tr_epochs(out) + 1))
    step0 = final.step
    final.run()
    table.add(sec, "resume after all of the above", "clean" if final.step > step0 else "wrong", f"step {final.step}")


def gui(table: Table, d: Path, trainer: bool = True) -> None:
    """The running explorer (Qt offscreen, a tiny16 model): every bad file through its menus, drops and
    pickers; read-only, ENOSPC and EFBIG faults in its writes; its trainer failing; an impatient user.
    A fresh window per route; the guard counts what escaped (crash), the snapshot what changed (lost)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from tests.gui import reliability_stress as stress
    from tests.gui.reliability_faults_gui import TRAINER_FAULTS, WRITE_FAULTS, WRITES, trainer_fault, write_fault
    from tests.gui.reliability_harness import Guard, wait_for
    from tests.gui.reliability_inputs import ROUTES, run_gui_case
    from tests.gui.reliability_sessions import pickle_ran
    from tests.reliability_faults import read_only_dir

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 (kept alive)
    (d / "probe").mkdir(parents=True)
    try:
        read_only: Path | None = read_only_dir(d / "probe")
    except BaseException:  # noqa: BLE001 (pytest.skip: none on this machine)
        read_only = None
    # each run yields (row, name, outcome)
    runs = [(f"GUI bad inputs ({route})", lambda w, g, r=route, k=i: (
        (c.route, c.name, run_gui_case(w, c, d / f"in{k}" / f"c{j}", g)) for j, c in enumerate(ROUTES[r]())))
            for i, route in enumerate(ROUTES)]
    runs.append(("GUI write faults", lambda w, g: (
        (f, what, write_fault(w, what, f, d / "writes" / f"{i}-{j}", g, read_only))
        for i, what in enumerate(WRITES) for j, f in enumerate(
            WRITE_FAULTS + (("disk fills between the two halves",) if what == "save session" else ())))))
    if trainer:
        runs.append(("GUI trainer faults", lambda w, g: (
            (f, f, trainer_fault(w, f, d / "trainer" / str(i), g, read_only)) for i, f in enumerate(TRAINER_FAULTS))))
    ckpt = checkpoint(d / "other.pt")
    stress_runs = {
        "t slider: 500 events in one drag": lambda w, g: stress.slider_drag(w, g, 500),
        "t slider: 500 events, switching tabs and dock": lambda w, g: stress.slider_drag(w, g, 500, switch_tabs=True),
        "iso slider and seed box: 300 events each": lambda w, g: stress.iso_and_seeds(w, g, 300),
        "undo/redo: 200 while generating": lambda w, g: stress.undo_redo(w, g, 200),
        "checkpoint opened mid-drag": lambda w, g: stress.swap_mid_drag(w, g, ckpt),
        "window closed while every worker runs": lambda w, g: stress.close_while_busy(w, g, ckpt),
    }
    runs.append(("GUI stress", lambda w, g: ((row, row, f(w, g)) for row, f in stress_runs.items())))
    for section, run in runs:
        window = _window(d / "settings.ini")
        with Guard() as guard:
            guard.watch(window)
            for row, name, o in run(window, guard):
                table.add(section, row, o.result, f"{name}: {o.detail}")
                for what in o.lost:
                    table.lost(section, row, f"{name}: {what}")
            counted = len(guard.errors)  # each case reported what escaped during it
            window.shutdown()
            wait_for(lambda: False, 1.0)
        if guard.errors[counted:]:  # escaped while the window closed, or late, after its last case
            table.add(section, "after the last case", "crash", guard.errors[counted].splitlines()[-1])
    if pickle_ran(d):
        table.lost("GUI bad inputs (session)", "session", "a pickle in a session ran")


def _window(settings: Path) -> Any:
    from PyQt6.QtCore import QSettings

    from explorer.state import SessionState
    from explorer.window import MainWindow
    from gan_core.runtime import load_model
    from tests.gui.reliability_harness import idle, wait_for
    from tests.gui.reliability_inputs import prepare

    win = MainWindow(SessionState(load_model(profile="tiny16", device="cpu", precision="fp32")),
                     QSettings(str(settings), QSettings.Format.IniFormat))
    win.show()
    prepare(win)
    wait_for(lambda: idle(win), 60)
    return win


def tr_epochs(out: Path) -> int:
    from gan_core.checkpoint import load_checkpoint

    return int(load_checkpoint(out / "latest.pt")["state"]["epoch"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fuzz", type=int, default=100, help="mutants per reader (17 readers)")
    ap.add_argument("--kills", type=int, default=6, help="SIGKILLs of a training subprocess (half aimed at writes)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fuzzer and the kill times")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    ap.add_argument("--no-gui-trainer", action="store_true", help="GUI section without the real trainer runs")
    args = ap.parse_args()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    table = Table()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, step in (("corpus", lambda: corpus(table, d / "corpus")),
                           ("fuzz", lambda: fuzz(table, d / "fuzz", args.fuzz, args.seed)),
                           ("write faults", lambda: write_faults(table, d / "writes")),
                           ("training faults", lambda: training_faults(table, d / "train", args.kills, args.seed)),
                           ("gui", lambda: gui(table, d / "gui", not args.no_gui_trainer))):
            if name not in args.only:
                continue
            t = time.perf_counter()
            step()
            print(f"[{name}: {time.perf_counter() - t:.0f} s]", file=sys.stderr)
    table.print()
    print(f"({time.perf_counter() - t0:.0f} s)")
    bad = sum(c[k] for c in table.rows.values() for k in ("wrong", "crash", "slow", "lost"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
