"""What the app benchmark (bench_app.py) observes from outside the app: CPU time by thread, the X server's CPU,
RSS, and the frames a 3D view really drew. The app keeps no counters for it."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any


def _ticks(stat: str) -> float:
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def process_cpu(pid: int) -> float:
    """CPU seconds so far of process ``pid``."""
    return _ticks(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu() -> Counter[str]:
    """CPU seconds so far of this process's threads, by thread name (python, llvmpipe-0, ...)."""
    out: Counter[str] = Counter()
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        out["llvmpipe" if name.startswith("llvmpipe") else name] += _ticks(stat)
    return out


def xserver_cpu() -> float:
    """CPU seconds so far of the Xvfb serving $DISPLAY (0 when there is none to see)."""
    display = os.environ.get("DISPLAY", "").encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if cmd[0].endswith(b"Xvfb") and display in cmd:
                return _ticks(Path(f"/proc/{pid}/stat").read_text())
        except (OSError, IndexError):
            continue
    return 0.0


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class FrameCounter:
    """Counts the renders of a :class:`explorer.viewport.VtkView` (its render window's EndEvents) and, of those,
    the frames that put a new shape on screen (the first render after each ``set_result``), watching the view
    from outside: an observer on its render window and a wrapper around its ``set_result``. A camera move or a
    repaint of the same shape is a render, not a new frame."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.renders = 0
        self.frames = 0
        self._new_shape = False
        self._observer = view.plotter.ren_win.AddObserver("EndEvent", self._rendered)
        shown = view.set_result

        def set_result(result: Any) -> None:
            shown(result)
            self._new_shape = True  # drawn by the next render (the view schedules it)

        view.set_result = set_result

    def _rendered(self, _window: Any, _event: str) -> None:
        self.renders += 1
        if self._new_shape:
            self._new_shape = False
            self.frames += 1

    def detach(self) -> None:
        """Stop counting; the view is as it was."""
        if self.view.built:
            self.view.plotter.ren_win.RemoveObserver(self._observer)
        vars(self.view).pop("set_result", None)
