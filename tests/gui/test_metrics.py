"""Tailing metrics.jsonl: incremental, partial lines wait, a shrunk file restarts."""

from __future__ import annotations

import json

from explorer.metrics import Curves, MetricsTail


def line(**kw) -> str:
    return json.dumps({"t": 0.0, **kw}) + "\n"


def step(i: int, updated: bool = True) -> str:
    return line(type="step", epoch=0, step=i, g_loss=1.0 + i, d_loss=0.5, d_acc=0.6, d_updated=updated)


def test_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.poll() == []  # no file yet
    path.write_text(line(type="config", resumed_at_step=0) + step(1) + '{"type": "step", "st')
    recs = tail.poll()
    assert [r["type"] for r in recs] == ["config", "step"]
    with open(path, "a") as f:
        f.write('ep": 2, "g_loss": 3, "d_loss": 1, "d_acc": 0.9, "d_updated": false}\n')
    recs = tail.poll()
    assert len(recs) == 1 and recs[0]["step"] == 2
    assert tail.poll() == []


def test_bad_lines_are_counted_and_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("garbage\n" + step(1))
    tail = MetricsTail(path)
    assert len(tail.poll()) == 1 and tail.bad_lines == 1


def test_truncated_file_starts_over(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(step(1) + step(2) + step(3))
    tail = MetricsTail(path)
    assert len(tail.poll()) == 3
    path.write_text(step(1))
    assert len(tail.poll()) == 1 and tail.restarted


def test_curves_and_update_rate():
    c = Curves()
    c.add([json.loads(step(i, updated=i % 2 == 0)) for i in range(1, 5)])
    assert c.step == [1, 2, 3, 4] and c.g_loss == [2, 3, 4, 5]
    assert c.d_rate[-1] == 0.5
    c.add([json.loads(line(type="config", resumed_at_step=2))])  # resumed from step 2: later steps redone
    assert c.step == [1, 2]
    c.add([json.loads(line(type="epoch", epoch=1, step=2, warning="collapse: 80% empty"))])
    assert "epoch 1" in c.summary() and "collapse" in c.summary()
