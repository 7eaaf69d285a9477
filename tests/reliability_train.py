"""Run `gan3d train` in a subprocess on tiny data, to kill it at chosen moments (tests and the report).

``slow_save_s`` > 0 runs the trainer through a wrapper that makes every torch.save take about that long
(the bytes are produced first, then written in small flushed pieces), so a kill can be aimed at the middle
of a checkpoint write. Test-only: gan_core has no hook for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

_WRAPPER = r"""
import io, os, sys, time
import torch

delay = float(os.environ.get("GAN3D_TEST_SLOW_SAVE_S", "0"))
if delay > 0:
    real_save = torch.save

    def slow_save(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        pieces = max(1, len(data) // 4096)
        with open(f, "wb") as fh:
            for i in range(pieces):
                fh.write(data[i * len(data) // pieces:(i + 1) * len(data) // pieces])
                fh.flush()
                time.sleep(delay / pieces)

    torch.save = slow_save
from gan_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def tiny_data(path: Path, n: int = 16) -> Path:
    from tests.core_data import boxes_npz

    return boxes_npz(path, n=n, r=16, seed=0)


def train_args(data: Path, out: Path, *extra: str, epochs: int = 1000) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--profile", "tiny16", "--batch-size", "8",
            "--epochs", str(epochs), "--precision", "fp32", "--no-channels-last", "--threads", "1",
            "--device", "cpu", "--checkpoint-minutes", "0", "--snapshot-every", "1000", *extra]


def start(args: list[str], slow_save_s: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "GAN3D_TEST_SLOW_SAVE_S": str(slow_save_s), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GAN3D_PROGRESS", None)
    return subprocess.Popen([sys.executable, "-c", _WRAPPER, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0, what: str = "") -> None:
    """Poll ``cond`` until it holds; fail if the process exits first or the timeout passes."""
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"trainer exited ({proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def temps(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob(".*.tmp*") if p.is_file())


def metrics(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: only the last can be
            pass
    return rows


def last_step(out: Path) -> int:
    return max((r.get("step", 0) for r in metrics(out) if r.get("type") == "step"), default=0)


def checkpoint_step(out: Path) -> int | None:
    """The step stored in latest.pt, None if there is none; raises if it does not load."""
    from gan_core.checkpoint import load_checkpoint

    p = out / "latest.pt"
    if not p.exists():
        return None
    return int(load_checkpoint(p)["state"]["step"])


def kill_during_write(data: Path, out: Path, slow_save_s: float = 1.0, timeout: float = 120.0) -> dict:
    """Start a trainer with slow saves, SIGKILL it while it writes a checkpoint that replaces an older one.
    Returns what was seen: the temp file caught, and the step in latest.pt after the kill."""
    proc = start(train_args(data, out, "--resume"), slow_save_s)
    had_latest = (out / "latest.pt").exists()
    wait_for(lambda: ((out / "latest.pt").exists() or had_latest) and any(
        p.name.startswith(".latest.pt.") and p.stat().st_size > 0 for p in temps(out)), proc, timeout,
        "a checkpoint write in progress")
    caught = [p.name for p in temps(out)]
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return {"returncode": proc.returncode, "temp": caught, "step": checkpoint_step(out)}


def kill_at_random(data: Path, out: Path, rng: np.random.Generator, max_delay: float,
                   slow_save_s: float = 0.2, timeout: float = 120.0) -> dict:
    """Start a (resuming) trainer and SIGKILL it after a random delay once it has started training."""
    before = checkpoint_step(out)
    proc = start(train_args(data, out, "--resume"), slow_save_s)
    steps_before = last_step(out)
    wait_for(lambda: last_step(out) > steps_before or bool(temps(out)), proc, timeout, "training to start")
    time.sleep(float(rng.uniform(0, max_delay)))
    writing = bool(temps(out))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return {"before": before, "after": checkpoint_step(out), "writing": writing}


def stop_with_sigterm(data: Path, out: Path, extra_steps: int = 1, timeout: float = 120.0) -> dict:
    """Resume, wait for ``extra_steps`` new steps, send SIGTERM; return exit code, output and last rows."""
    proc = start(train_args(data, out, "--resume"))
    start_step = last_step(out)
    wait_for(lambda: last_step(out) >= start_step + extra_steps, proc, timeout, "new training steps")
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the trainer did not stop within the timeout after SIGTERM") from None
    return {"returncode": proc.returncode, "stdout": stdout, "stderr": stderr, "rows": metrics(out),
            "step": checkpoint_step(out), "start_step": start_step}
