"""Measure the explorer's responsiveness; run under a display (``xvfb-run -a python -m explorer.benchmark``).

* launch: wall time from starting ``gan3d-explorer --screenshot`` to its "first shape on screen" line.
* drag: the t slider is moved every 16 ms (a 60 Hz mouse drag) for a few seconds; counts the shapes the
  centre view actually displayed per second, and how many requests were superseded (newest wins).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def launch_time(checkpoint: str | None, timeout: float = 180.0) -> float | None:
    exe = Path(sys.executable).with_name("gan3d-explorer")
    cmd = [str(exe), "--screenshot", str(Path(tempfile.mkdtemp()) / "shot.png"), "--quit-after", str(timeout)]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    first = None
    assert proc.stderr is not None
    for line in proc.stderr:
        if "first shape on screen" in line and first is None:
            first = time.perf_counter() - t0
    proc.wait(timeout)
    return first


def drag_fps(checkpoint: str | None, seconds: float = 5.0, size: tuple[int, int] = (1400, 900)) -> dict[str, float]:
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from gan_core.runtime import load_model
    from explorer.state import SessionState
    from explorer.window import MainWindow

    from explorer.app import set_threads

    app = QApplication.instance() or QApplication(sys.argv[:1])
    set_threads(None)
    model = load_model(checkpoint) if checkpoint else load_model(profile="fast32")
    win = MainWindow(SessionState(model))
    win.resize(*size)
    win.show()
    view, slider, svc = win.interpolate.view_cur, win.interpolate.slider, win.ctx.service
    deadline = time.perf_counter() + 60
    while not (all(v.shown_count for v in win.views() if v.isVisible()) and not svc.busy):
        app.processEvents()
        if time.perf_counter() > deadline:
            raise SystemExit("no shapes within 60 s")
    for _ in range(20):  # drain paint events queued at start-up
        app.processEvents()
    shown0, dropped0, moves = view.shown_count, svc.dropped, 0
    win.state.break_merge()
    t0 = time.perf_counter()

    def move() -> None:
        nonlocal moves, shown0, t0
        if moves == 0:
            shown0, t0 = view.shown_count, time.perf_counter()
        moves += 1
        slider.setValue((moves * 7) % (slider.maximum() + 1))  # 7 steps of 0.001 per 16 ms
        if time.perf_counter() - t0 > seconds:
            timer.stop()
            app.exit(0)

    timer = QTimer()
    timer.setInterval(16)
    timer.timeout.connect(move)
    timer.start()
    app.exec()
    elapsed = time.perf_counter() - t0
    out = {"seconds": elapsed, "slider_moves": moves, "frames_shown": view.shown_count - shown0,
           "fps": (view.shown_count - shown0) / elapsed, "superseded": svc.dropped - dropped0,
           "generate_ms": svc.last_generate_ms}
    win.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="model to use (default: an untrained fast32)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of the simulated drag")
    p.add_argument("--skip-launch", action="store_true", help="only measure the drag")
    p.add_argument("--window", default="1400x900", help="window size for the drag, WxH")
    args = p.parse_args(argv)
    if not args.skip_launch:
        t = launch_time(args.checkpoint)
        print(f"launch to first shape: {t:.2f} s" if t is not None else "launch: no shape appeared")
    w, h = (int(v) for v in args.window.lower().split("x"))
    r = drag_fps(args.checkpoint, args.seconds, (w, h))
    print(f"drag ({w}x{h}): {r['frames_shown']} shapes displayed in {r['seconds']:.1f} s = {r['fps']:.1f} fps "
          f"({r['slider_moves']} slider moves, {r['superseded']} superseded requests dropped, "
          f"last generate {r['generate_ms']:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
