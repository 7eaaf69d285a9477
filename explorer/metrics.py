"""Incremental reading of a training run's ``metrics.jsonl`` (no Qt): only new bytes are read on each
poll, a partial last line (the trainer is mid-write) waits for its newline, a shrunk file means a new run."""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class MetricsTail:
    """``poll()`` returns the records appended since the last poll (dicts), oldest first."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self._partial = b""
        self.bad_lines = 0
        self.restarted = False  # set by poll() when the file was replaced or truncated

    def poll(self) -> list[dict[str, Any]]:
        self.restarted = False
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:  # truncated or replaced: start over
            self.offset, self._partial, self.restarted = 0, b"", True
        if size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(size - self.offset)
        except OSError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" after a complete last line; else the unfinished line
        out = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                self.bad_lines += 1
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out


@dataclass
class Curves:
    """Series for the training plots, built from metrics records."""

    window: int = 50
    step: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_loss: list[float] = field(default_factory=list)
    d_acc: list[float] = field(default_factory=list)
    d_rate: list[float] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] | None = None
    stopped: bool = False
    _recent: deque = field(default_factory=lambda: deque(maxlen=50))

    def add(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            kind = r.get("type")
            if kind == "config":
                self.config = r
                self.stopped = False
                resumed = r.get("resumed_at_step") or 0
                if isinstance(resumed, (int, float)) and not isinstance(resumed, bool):
                    self._cut(resumed)  # a resumed run rewrites from its checkpoint's step
            elif kind == "step":
                try:
                    s, g, d, a = float(r["step"]), float(r["g_loss"]), float(r["d_loss"]), float(r["d_acc"])
                except (KeyError, TypeError, ValueError):
                    continue
                if not math.isfinite(s):
                    continue  # a step number is needed for the x axis (losses may be NaN: they show as gaps)
                self._recent.append(1.0 if r.get("d_updated") else 0.0)
                self.step.append(s)
                self.g_loss.append(g)
                self.d_loss.append(d)
                self.d_acc.append(a)
                self.d_rate.append(sum(self._recent) / len(self._recent))
            elif kind == "epoch":
                self.epochs.append(r)
            elif kind == "stopped":
                self.stopped = True

    def _cut(self, step: float) -> None:
        keep = sum(1 for s in self.step if s <= step)
        for name in ("step", "g_loss", "d_loss", "d_acc", "d_rate"):
            del getattr(self, name)[keep:]

    def summary(self) -> str:
        if not self.step and not self.epochs:
            return "no metrics yet"
        parts = []
        if self.epochs:
            e = self.epochs[-1]
            parts.append(f"epoch {e.get('epoch')}")
            if e.get("warning"):
                parts.append(f"\u26a0 {e['warning']}")
        if self.step:
            parts.append(f"step {int(self.step[-1])}: G {self.g_loss[-1]:.3f}, D {self.d_loss[-1]:.3f}, "
                         f"D acc {self.d_acc[-1]:.2f}, D updates {self.d_rate[-1]:.0%}")
        return " \u00b7 ".join(parts)
