"""The training-quality benchmark trains for a time, then scores each snapshot the way `gan3d evaluate` does."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from gan_core.commands.evaluate import read_subset
from gan_core.data import VoxelDataset
from gan_core.evaluate import generation_metrics
from gan_core.runtime import load_model
from tests.core_data import boxes_npz

pytestmark = pytest.mark.usefixtures("one_thread")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training_quality.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_training_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for line in text.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}


def test_trains_then_scores_every_snapshot_and_the_baseline(tmp_path, capsys):
    bench = _bench()
    data, out = boxes_npz(tmp_path / "boxes.npz"), tmp_path / "run"
    bench.main(["--data", str(data), "--reference", str(data), "--out", str(out), "--minutes", "5", "--n", "6",
                "--seeds", "0", "1", "--baseline", str(out / "epoch_0002.pt"), "--",
                "--profile", "tiny16", "--batch-size", "8", "--threads", "1", "--max-steps", "7"])
    rows = _rows(capsys.readouterr().out)
    assert list(rows)[1:] == ["epoch 2", "latest.pt (end)", f"baseline: {out / 'epoch_0002.pt'}"]
    minutes, steps, *scores = rows["epoch 2"]  # 24 shapes in batches of 8: epoch 2 ends at step 6
    assert steps == "6" and rows["latest.pt (end)"][1] == "7"
    assert 0 <= float(minutes) <= float(rows["latest.pt (end)"][0]) < 5
    assert rows["baseline: " + str(out / "epoch_0002.pt")][2:] == scores  # the same checkpoint, the same score
    # the score is `gan3d evaluate`'s: the seeds' mean of COV, MMD and 1-NNA against the same reference subset
    model, reference = load_model(out / "latest.pt"), read_subset(VoxelDataset(data), 6, np.random.default_rng(0))
    want = np.mean([[generation_metrics(model.generate(model.sample_z(6, s), use_cache=False), reference)["iou"][k]
                     for k in ("cov", "mmd", "1nna")] for s in (0, 1)], axis=0)
    assert [float(v) for v in rows["latest.pt (end)"][2:]] == pytest.approx(want, abs=5e-4)


def test_a_run_folder_is_never_trained_into_twice(tmp_path, capsys):
    bench = _bench()
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("")
    with pytest.raises(SystemExit):
        bench.main(["--data", "x.npz", "--reference", "x.npz", "--out", str(out), "--minutes", "1"])
    assert re.search("already holds a run", capsys.readouterr().err)
