"""The running explorer under the abuse of an impatient user, for tests/gui/test_reliability_stress.py and
the report: hundreds of slider events, tab and dock switching while shapes generate, undo/redo hammering,
a checkpoint swapped in mid-drag, and closing the window while every kind of worker runs.

Each scenario returns a :class:`~tests.gui.reliability_faults_gui.FaultOutcome` and the number of events it
sent; afterwards every view must show the shape the session says it shows (newest request won, nothing
stale stuck on screen), and one drag must be one undo step.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QProcess, QThreadPool
from PyQt6.QtWidgets import QApplication

from tests.gui.reliability_faults_gui import FaultOutcome
from tests.gui.reliability_harness import Guard, idle, wait_for

BUDGET_S = 60.0


def _views_agree(window: Any) -> list[str]:
    """Views of the visible tab whose shape is not the session's (after the window went idle)."""
    st, p = window.state, window.interpolate
    wrong = []
    for ch, z in ((p.channels[0], st.slot("A").z), (p.channels[1], st.current_z()), (p.channels[2], st.slot("B").z)):
        if ch.result is None or not np.allclose(ch.result.z, z) or ch.result.level != st.level:
            wrong.append(f"view {ch.target} shows a stale shape")
        elif ch.result.model is not st.model:
            wrong.append(f"view {ch.target} shows the old model's shape")
    return wrong


def _run(window: Any, guard: Guard, act: Callable[[], list[str]]) -> FaultOutcome:
    n = len(guard.errors)
    t0 = time.perf_counter()
    problems = act()
    settled = wait_for(lambda: idle(window), BUDGET_S)
    window.tabs.setCurrentWidget(window.interpolate)  # a hidden view catches up when shown
    settled = settled and wait_for(lambda: idle(window) and not _views_agree(window), BUDGET_S)
    escaped = guard.since(n)
    if escaped:
        return FaultOutcome("crash", escaped[0].splitlines()[-1][:300])
    if not settled:
        return FaultOutcome("slow", f"not settled {time.perf_counter() - t0:.0f} s later: {_views_agree(window)}")
    problems += _views_agree(window)
    return FaultOutcome("wrong" if problems else "clean", "; ".join(problems))


def slider_drag(window: Any, guard: Guard, events: int = 500, switch_tabs: bool = False) -> FaultOutcome:
    """One long drag of the t slider: ``events`` valueChanged, the event loop running every 5th; with
    ``switch_tabs`` the workspace tab and the retrieval dock change every 25th event too."""
    p, st = window.interpolate, window.state
    window.tabs.setCurrentWidget(p)

    def act() -> list[str]:
        steps = st.undo_stack.count()
        values = np.random.default_rng(events).integers(0, 1001, events)
        p.slider.setSliderDown(True)  # sliderPressed: a new undo step begins
        for i, v in enumerate(values):
            p.slider.setValue(int(v))
            if i % 5 == 0:
                QApplication.processEvents()
            if switch_tabs and i % 25 == 0:
                window.tabs.setCurrentIndex((i // 25) % window.tabs.count())
                window.dock.setVisible(not window.dock.isVisible())
        p.slider.setSliderDown(False)  # sliderReleased: the throttled last value lands
        window.dock.setVisible(True)
        out = []
        if abs(st.t - values[-1] / 1000) > 1e-9:
            out.append(f"t is {st.t}, the slider ended at {values[-1] / 1000}")
        if st.undo_stack.count() != steps + 1:
            out.append(f"the drag made {st.undo_stack.count() - steps} undo steps, not 1")
        return out
    return _run(window, guard, act)


def iso_and_seeds(window: Any, guard: Guard, events: int = 300) -> FaultOutcome:
    """The iso-level slider and the seed box of A, changed ``events`` times each as fast as they go."""
    st = window.state
    window.tabs.setCurrentWidget(window.interpolate)
    seed = window.interpolate.edit_a.seed

    def act() -> list[str]:
        rng = np.random.default_rng(events)
        levels = np.round(rng.uniform(0.05, 0.95, events), 2)
        seeds = rng.integers(0, 10_000, events)
        for i in range(events):
            window.commands.level.setValue(float(levels[i]))
            seed.setValue(int(seeds[i]))
            if i % 5 == 0:
                QApplication.processEvents()
        out = []
        if abs(st.level - levels[-1]) > 1e-9:
            out.append(f"level is {st.level}, the slider ended at {levels[-1]}")
        if st.slot("A").seed != seeds[-1]:
            out.append(f"A has seed {st.slot('A').seed}, the box ended at {seeds[-1]}")
        return out
    return _run(window, guard, act)


def undo_redo(window: Any, guard: Guard, events: int = 200) -> FaultOutcome:
    """Undo and redo ``events`` times while the views regenerate, then undo everything and redo it all."""
    st = window.state

    def act() -> list[str]:
        stack = st.undo_stack
        top = stack.index()
        for i in range(events):
            (window.commands.undo if i % 2 == 0 else window.commands.redo).trigger()
            if i % 4 == 0:
                QApplication.processEvents()
        while stack.canUndo():
            window.commands.undo.trigger()
        while stack.canRedo():
            window.commands.redo.trigger()
        return [] if stack.index() == top else [f"undo stack at {stack.index()}, was {top}"]
    return _run(window, guard, act)


def swap_mid_drag(window: Any, guard: Guard, checkpoint: Path, events: int = 200) -> FaultOutcome:
    """Open a checkpoint from the File menu in the middle of a drag."""
    from tests.gui.reliability_harness import choose_in_menu

    p, st = window.interpolate, window.state
    window.tabs.setCurrentWidget(p)

    def act() -> list[str]:
        old = st.model
        p.slider.setSliderDown(True)
        for i in range(events):
            p.slider.setValue(int(i * 1000 / events))
            if i == events // 3:
                choose_in_menu(window, "Open checkpoint\u2026", checkpoint)
            if i % 5 == 0:
                QApplication.processEvents()
        p.slider.setSliderDown(False)
        wait_for(lambda: st.model is not old, BUDGET_S)
        return [] if st.model is not old else ["the checkpoint was not swapped in"]
    return _run(window, guard, act)


FAKE_TRAINER = (  # saves and exits on SIGTERM, as gan3d train does
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
    "print('training', file=sys.stderr, flush=True)\n"
    "time.sleep(600)\n")


def close_while_busy(window: Any, guard: Guard, checkpoint: Path, close_budget: float = 30.0) -> FaultOutcome:
    """Close the window while a drag is generating, a projection runs, a checkpoint loads, a slow job that
    cannot be cancelled runs and a trainer process lives. Closing must not hang, every thread and process
    must end, and nothing may fail afterwards (late results arriving at a closed window)."""
    from tests.gui.reliability_harness import choose_in_menu

    n = len(guard.errors)
    st, ctx, p = window.state, window.ctx, window.interpolate
    panel = window.training
    panel.start_process(sys.executable, ["-c", FAKE_TRAINER])
    wait_for(lambda: "training" in list(panel.stderr), BUDGET_S)
    ctx.project_steps = 100_000  # runs until cancelled
    ctx.project(np.ones((st.model.resolution,) * 3, np.float32), "a box", lambda z, label: st.set_current(z, label))
    ctx.jobs.start("Uncancellable", time.sleep, 2.0, on_done=lambda _r: st.set_t(0.0))
    choose_in_menu(window, "Open checkpoint\u2026", checkpoint)
    p.slider.setSliderDown(True)
    for i in range(100):
        p.slider.setValue(i * 10)
        if i % 10 == 0:
            QApplication.processEvents()
    process = panel.process
    t0 = time.perf_counter()
    window.close()
    seconds = time.perf_counter() - t0
    pool = QThreadPool.globalInstance()
    threads_done = wait_for(lambda: pool.activeThreadCount() == 0, BUDGET_S)
    wait_for(lambda: False, 3.0)  # late results and signals arrive now, at a closed window
    problems = []
    if seconds > close_budget:
        problems.append(f"closing took {seconds:.1f} s")
    if ctx.service._thread.is_alive():
        problems.append("the generation thread is still alive")
    if not threads_done:
        problems.append(f"{pool.activeThreadCount()} worker threads still running")
    if process is not None and process.state() != QProcess.ProcessState.NotRunning:
        problems.append("the trainer process is still running")
        process.kill()
    escaped = guard.since(n)
    if escaped:
        return FaultOutcome("crash", escaped[0].splitlines()[-1][:300])
    return FaultOutcome("wrong" if problems else "clean", "; ".join(problems) or f"closed in {seconds:.1f} s")
