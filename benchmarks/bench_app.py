"""Measure the explorer's responsiveness and print one table; run under a display:

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_app.py [--checkpoint C]

* launch: wall time from starting ``gan3d-explorer --screenshot`` to its "first shape on screen" line (median
  of ``--launches`` runs), and that process's peak RSS.
* slider frame: one shape generated and meshed (wall and CPU time of the calling thread, medians), against
  the same from the precomputed path (a batched forward pass, then the z and mesh caches).
* mesh swap: a new mesh drawn in a view by re-adding its actor (the naive loop) against updating it in place.
* drag: mouse events drag the t slider back and forth (60 moves a second); counts the new shapes the centre
  view really drew (render-window EndEvents), and the CPU the app and the X server spent per drawn shape. The
  baseline drag generates every position exactly, through the worker (the app before the path preview and
  the GUI-side shape cache).
* RSS: this process (the app, with its caches filled) after the drags.

Timings on a shared machine are noisy: every row is a median or a count over a stretch, baseline and
optimised are measured in the same run, and the load average is printed beside them. The app keeps no counters
for this: frames and CPU are observed from outside (app_observers.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the benchmarks/ package

from benchmarks.app_observers import FrameCounter, process_cpu, rss_mb, thread_cpu, xserver_cpu  # noqa: E402

Row = tuple[str, str, str, str]  # measurement, baseline, optimised, ratio


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median (wall ms, CPU ms of this thread) of ``fn``."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        cpus.append((time.thread_time() - c) * 1000)
        walls.append((time.perf_counter() - w) * 1000)
    return statistics.median(walls), statistics.median(cpus)


# -- launch ------------------------------------------------------------------------------------------------
def launch_once(checkpoint: str | None, timeout: float = 180.0) -> tuple[float | None, float, float]:
    """(seconds to the first shape, CPU seconds the app used until then, peak RSS MB) of one
    ``gan3d-explorer --screenshot`` run."""
    exe = Path(sys.executable).with_name("gan3d-explorer")
    shot = Path(tempfile.mkdtemp()) / "shot.png"
    cmd = [str(exe), "--screenshot", str(shot), "--quit-after", str(timeout)]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    first, cpu = None, 0.0
    assert proc.stderr is not None
    for line in proc.stderr:
        if "first shape on screen" in line and first is None:
            first = time.perf_counter() - t0
            cpu = process_cpu(proc.pid)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return first, cpu, usage.ru_maxrss / 1024


# -- slider frame ------------------------------------------------------------------------------------------
def slider_frame_rows(model: Any, repeats: int) -> list[Row]:
    """generate + mesh of one new shape, against one shape of a batched path and a cached position."""
    import numpy as np

    from gan_core.mesh import voxels_to_mesh
    from explorer.path_preview import CHUNK

    zs = model.sample_z(2, 11)
    rng = np.random.default_rng(0)

    def exact() -> None:
        t = rng.random()
        voxels_to_mesh(model.generate(zs[0] * (1 - t) + zs[1] * t, use_cache=False)[0])

    def batch() -> None:
        ts = rng.random(CHUNK)[:, None]
        for v in model.generate(zs[0] * (1 - ts) + zs[1] * ts, use_cache=False):
            voxels_to_mesh(v)

    from explorer.workers import ShapeCache

    cached_z = zs[0] * 0.5 + zs[1] * 0.5
    cache = ShapeCache()
    grid = model.generate(cached_z)[0]
    cache.put(model, cached_z, 0.5, "mesh", grid, voxels_to_mesh(grid))

    def cached() -> None:  # what a drag frame costs with the path precomputed (GenerationService.cached)
        cache.get(model, cached_z, 0.5, "mesh")

    for fn in (exact, batch):
        fn()  # warm up
    ew, ec = timed(exact, repeats)
    bw, bc = timed(batch, max(3, repeats // CHUNK))
    cw, cc = timed(cached, repeats)
    r = f"{model.resolution}^3"
    return [
        (f"slider frame, generate + mesh, {r}: wall ms", f"{ew:.1f}", "", ""),
        (f"slider frame, generate + mesh, {r}: CPU ms", f"{ec:.1f}", "", ""),
        (f"  per shape in a batch of {CHUNK} (path precompute): CPU ms", f"{ec:.1f}", f"{bc / CHUNK:.1f}",
         f"{ec / (bc / CHUNK):.1f}x"),
        ("  from the precomputed path (shape cache, GUI thread): wall ms", f"{ew:.1f}", f"{cw:.3f}",
         f"{ew / cw:.0f}x"),
    ]


# -- mesh swap ---------------------------------------------------------------------------------------------
def mesh_swap_row(app: Any, results: list[Any], frames: int = 30) -> Row:
    """CPU (app + X server) per drawn frame: remove and re-add the actor, against the in-place update."""
    from PyQt6.QtWidgets import QMainWindow

    from explorer.viewport import VtkView

    win = QMainWindow()
    view = VtkView("swap")
    win.setCentralWidget(view)
    win.resize(620, 560)
    win.show()
    for _ in range(10):
        app.processEvents()
    view.set_result(results[0])
    view.plotter.render()

    def readd(r: Any) -> None:
        pl = view.plotter
        pl.remove_actor("mesh", render=False)
        pl.add_mesh(r.mesh.copy(), color=(0.8, 0.6, 0.4), name="mesh", reset_camera=False, render=False)
        pl.render()

    def in_place(r: Any) -> None:
        view.set_result(r)  # schedules the repaint that renders it (processEvents below): one render, as above

    cost = []
    for draw in (readd, in_place):
        c0, x0 = sum(thread_cpu().values()), xserver_cpu()
        for i in range(frames):
            draw(results[i % len(results)])
            app.processEvents()
        cost.append((sum(thread_cpu().values()) - c0 + xserver_cpu() - x0) / frames * 1000)
    view.close_view()
    win.close()
    return ("mesh swap + render, 620x560 view: CPU ms / frame", f"{cost[0]:.1f}", f"{cost[1]:.1f}",
            f"{cost[0] / cost[1]:.2f}x")


# -- drag --------------------------------------------------------------------------------------------------
def drag(app: Any, win: Any, counters: dict[Any, FrameCounter], seconds: float, period: float = 4.0
         ) -> dict[str, float]:
    """Drag the t slider with mouse events, 0 -> 1 -> 0 every ``period`` s, 60 moves a second; ``counters``:
    a :class:`FrameCounter` per built view."""
    from PyQt6.QtCore import QEvent, QPointF, Qt, QTimer
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QStyle, QStyleOptionSlider

    panel = win.interpolate
    slider, view = panel.slider, panel.view_cur
    win.state.set_t(0.0)
    app.processEvents()
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    handle = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                           QStyle.SubControl.SC_SliderHandle, slider)
    x0, y, span = handle.center().x(), handle.center().y(), slider.width() - handle.width()

    def send(kind: QEvent.Type, x: float) -> None:
        pos = QPointF(x, y)
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
        app.sendEvent(slider, QMouseEvent(kind, pos, QPointF(slider.mapToGlobal(pos)), button, held,
                                          Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, x0)
    moves, start = 0, time.perf_counter()
    counter = counters[view]
    frames0, renders0 = counter.frames, counter.renders
    others0 = {c: c.renders for v, c in counters.items() if v is not view}
    cpu0, x_0 = thread_cpu(), xserver_cpu()

    def move() -> None:
        nonlocal moves
        moves += 1
        phase = ((time.perf_counter() - start) / period) % 1.0
        send(QEvent.Type.MouseMove, x0 + span * (1 - abs(2 * phase - 1)))
        if time.perf_counter() - start > seconds:
            timer.stop()
            app.exit(0)

    timer = QTimer()
    timer.setInterval(16)
    timer.timeout.connect(move)
    timer.start()
    app.exec()
    elapsed = time.perf_counter() - start
    cpu1, x_1 = thread_cpu(), xserver_cpu()
    frames = counter.frames - frames0
    send(QEvent.Type.MouseButtonRelease, x0)
    used = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    total = sum(used.values()) + x_1 - x_0
    return {
        "fps": frames / elapsed, "frames": frames, "moves": moves, "seconds": elapsed,
        "renders": counter.renders - renders0,
        "other_renders": sum(c.renders - n for c, n in others0.items()),
        "cpu_ms_frame": total / max(frames, 1) * 1000,
        "python_ms_frame": used.get("python", 0.0) / max(frames, 1) * 1000,
        "gl_ms_frame": used.get("llvmpipe", 0.0) / max(frames, 1) * 1000,
        "x_ms_frame": (x_1 - x_0) / max(frames, 1) * 1000,
        "cpu_share": total / elapsed, "load": os.getloadavg()[0],
        "idle_bound": 2 * frames / max(total, 1e-9),  # shapes per second if two whole cores were the app's
    }


def wait_until(app: Any, cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        app.processEvents()
        time.sleep(0.005)
        if time.perf_counter() > deadline:
            raise SystemExit(f"benchmark: {what} not within {timeout:.0f} s")


def drag_rows(app: Any, checkpoint: str | None, seconds: float, size: tuple[int, int],
              repeats: int) -> list[Row]:
    from gan_core.runtime import bundled_bank_for, load_model
    from explorer.app import set_threads
    from explorer.state import SessionState
    from explorer.viewport import VtkView
    from explorer.window import MainWindow

    set_threads(None)
    model = load_model(checkpoint) if checkpoint else load_model()
    win = MainWindow(SessionState(model))
    win.resize(*size)
    win.show()
    panel, svc = win.interpolate, win.ctx.service
    if (bank := bundled_bank_for(model)) is not None:  # as the app opens it: the neighbours follow the drag
        win.open_bank(str(bank))
        wait_until(app, lambda: win.state.bank is not None, 120, "the feature bank")
    wait_until(app, lambda: all(v.settled() for v in win.views() if v.isVisible()) and not svc.busy, 120,
               "first shapes")
    counters = {v: FrameCounter(v) for v in win.views() if isinstance(v, VtkView) and v.built}
    t_pre = time.perf_counter()
    wait_until(app, lambda: panel.preview.done and svc.idle, 300, "the path precompute")
    precompute_s = time.perf_counter() - t_pre
    runs: list[dict[str, float]] = []
    for _ in range(repeats):
        for optimised in (False, True):
            panel.live_preview = optimised
            if optimised:
                vars(svc).pop("cached", None)
            else:  # every shape through the worker, as before the shape cache
                svc.cached = lambda *_a, **_k: None  # type: ignore[method-assign]
            r = drag(app, win, counters, seconds)
            r["optimised"] = optimised
            runs.append(r)
            wait_until(app, lambda: svc.idle and not svc.busy, 60, "the drag's last shape")
    win.shutdown()
    rows: list[Row] = [(f"path precompute ({len(panel.preview.t)} positions, batches of {panel.preview.chunk}),"
                        " wall s", "", f"{precompute_s:.1f}", "")]
    med = {k: {o: statistics.median(r[k] for r in runs if r["optimised"] == o) for o in (False, True)}
           for k in runs[0] if k != "optimised"}

    def row(name: str, key: str, fmt: str, better: str | None = None) -> Row:
        b, o = med[key][False], med[key][True]
        ratio = "" if better is None or not (b and o) else f"{(o / b if better == 'higher' else b / o):.1f}x"
        return (name, format(b, fmt), format(o, fmt), ratio)

    w, h = size
    rows += [
        row(f"drag, {w}x{h} window: new shapes drawn per second", "fps", ".1f", "higher"),
        row("  CPU per drawn shape (app + X server), ms", "cpu_ms_frame", ".0f", "lower"),
        row("    of which Python threads (GUI, generation), ms", "python_ms_frame", ".0f", "lower"),
        row("    of which software GL (llvmpipe threads), ms", "gl_ms_frame", ".0f", "lower"),
        row("  upper bound with 2 idle cores (2 s / CPU per shape), per second", "idle_bound", ".0f", "higher"),
        row("  CPU cores the app got while dragging", "cpu_share", ".2f"),
        row("  slider moves the GUI thread handled", "moves", ".0f", "higher"),
        row("  renders of the other views during the drag", "other_renders", ".0f"),
        row("  load average (1 min) at the end of the drag", "load", ".1f"),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="model to use (default: the bundled default model)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each simulated drag")
    p.add_argument("--drags", type=int, default=2, help="baseline/optimised drag pairs (medians are reported)")
    p.add_argument("--launches", type=int, default=3, help="app launches timed (median reported)")
    p.add_argument("--repeats", type=int, default=25, help="repeats of each slider-frame timing")
    p.add_argument("--window", default="1400x900", help="window size for the drag, WxH")
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        raise SystemExit("benchmark: needs an X display; run it under xvfb-run -a")
    print(f"start: {load()}, {os.cpu_count()} CPUs", flush=True)
    rows: list[Row] = []
    launches = [launch_once(args.checkpoint) for _ in range(args.launches)]
    firsts = [(f, c) for f, c, _ in launches if f is not None]
    n = f"median of {len(launches)}"
    rows.append((f"launch to first shape on screen, wall s ({n})", "",
                 f"{statistics.median(f for f, _ in firsts):.2f}" if firsts else "none", ""))
    rows.append((f"  CPU the app used until then, s ({n})", "",
                 f"{statistics.median(c for _, c in firsts):.2f}" if firsts else "", ""))
    rows.append(("  peak RSS of the launched app, MB", "", f"{max(m for _, _, m in launches):.0f}", ""))
    print(f"launch measured: {load()}", flush=True)

    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from gan_core.runtime import load_model

    model = load_model(args.checkpoint) if args.checkpoint else load_model()
    rows += slider_frame_rows(model, args.repeats)
    print(f"slider frame measured: {load()}", flush=True)
    w, h = (int(v) for v in args.window.lower().split("x"))
    rows += drag_rows(app, args.checkpoint, args.seconds, (w, h), args.drags)
    rows.append(("app RSS after the drags (caches full), MB; peak", "", f"{rss_mb():.0f}; {rss_mb('VmHWM'):.0f}",
                 ""))
    print(f"drags measured: {load()}", flush=True)
    from gan_core.mesh import voxels_to_mesh
    from explorer.workers import ShapeResult

    zs = model.sample_z(12, 5)
    vox = model.generate(zs)
    swap = [ShapeResult("swap", i, zs[i], vox[i], voxels_to_mesh(vox[i])) for i in range(len(vox))]
    rows.append(mesh_swap_row(app, swap))

    print(f"\nend: {load()}; model {model.name} ({model.profile.name}), medians\n")
    print("| measurement | baseline | optimised | ratio (>1: better) |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
