"""Quality a fresh training run reaches in a fixed time (issue 9, target 3): train, then score every snapshot.

    python benchmarks/bench_training_quality.py --data modelnet10_train_32.npz --reference half_a.npz \
        --minutes 60 --out runs/hour -- --profile fast32 --recipe stable --batch-size 8 --threads 2
    python benchmarks/bench_training_quality.py --reference half_a.npz --out runs/hour   # score a run only

Training is `gan3d train --epochs 1000 --snapshot-every 2` in a subprocess (arguments after `--` are passed
on), stopped by SIGTERM when the time is up (it finishes its step and saves latest.pt). Each snapshot then
draws N shapes per sample seed and is scored as `gan3d evaluate --max-n N` scores them (COV, MMD, 1-NNA under
1 - IoU, against a random N of the reference shapes); the table shows the mean over the seeds. `--baseline`
(default: the bundled model) is scored the same way in the same run, so its row is the target to compare with.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gan_core.commands.evaluate import read_subset
from gan_core.data import VoxelDataset
from gan_core.evaluate import generation_metrics
from gan_core.runtime import load_model


def train_for(minutes: float, data: str, out: Path, extra: list[str]) -> None:
    """Run `gan3d train` for ``minutes`` of wall time, then stop it as the app's Stop button does."""
    cmd = [sys.executable, "-m", "gan_core.cli", "train", "--data", data, "--out", str(out), "--epochs", "1000",
           "--snapshot-every", "2", *extra]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    if proc.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"gan3d train exited with {proc.returncode}")


def run_clock(out: Path) -> dict[int, tuple[float, int]]:
    """{epoch: (minutes since the run started, optimiser steps)} from the run's metrics.jsonl, plus -1 for its
    last record (where latest.pt was saved)."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    t0 = records[0]["t"]
    clock = {r["epoch"]: ((r["t"] - t0) / 60, r["step"]) for r in records if r.get("type") == "epoch"}
    last = max((r for r in records if "step" in r), key=lambda r: r["t"], default=records[0])
    clock[-1] = ((last["t"] - t0) / 60, last.get("step", 0))
    return clock


def score(checkpoint: Path | str | None, reference: np.ndarray, n: int, seeds: list[int]) -> tuple[float, ...]:
    """Mean COV, MMD and 1-NNA over ``seeds`` of ``n`` shapes drawn from ``checkpoint``."""
    model = load_model(checkpoint)
    rows = []
    for seed in seeds:
        shapes = model.generate(model.sample_z(n, seed), use_cache=False)  # batched inside
        m = generation_metrics(shapes, reference)["iou"]
        rows.append((m["cov"], m["mmd"], m["1nna"]))
    return tuple(float(v) for v in np.mean(rows, axis=0))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="run folder (trained into unless --minutes is 0)")
    p.add_argument("--reference", required=True, help="reference shapes (.npz/.h5), e.g. half of the data")
    p.add_argument("--data", help="training data (needed when training)")
    p.add_argument("--minutes", type=float, default=0, help="train a fresh run for this long first (0: score only)")
    p.add_argument("--n", type=int, default=300, help="shapes per sample seed, and reference shapes")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 7], help="sample seeds")
    p.add_argument("--every", type=int, default=2, help="score the snapshots of epochs divisible by this (latest.pt always)")
    p.add_argument("--baseline", default="", help="a checkpoint scored in the same run (default: the bundled model)")
    p.add_argument("--no-baseline", action="store_true", help="do not score a baseline")
    args = p.parse_args(argv)
    if args.minutes > 0:
        if not args.data:
            p.error("--data is needed to train")
        if (args.out / "metrics.jsonl").exists():
            p.error(f"{args.out} already holds a run: give a new --out, or --minutes 0 to score it")
        train_for(args.minutes, args.data, args.out, extra)
    reference = read_subset(VoxelDataset(args.reference), args.n, np.random.default_rng(0))
    clock = run_clock(args.out)
    snaps = sorted(args.out.glob("epoch_*.pt"))
    picked = [(e, s) for e, s in ((int(s.stem.split("_")[1]), s) for s in snaps) if e % max(1, args.every) == 0]
    picked.append((-1, args.out / "latest.pt"))
    print(f"\n{args.out}: {len(snaps)} snapshots; {args.n} samples x seeds {args.seeds} vs {len(reference)} "
          f"reference shapes ({Path(args.reference).name})\n")
    print("| snapshot | minutes | steps | COV | MMD | 1-NNA |\n|---|---|---|---|---|---|")
    for epoch, path in picked:
        if not path.exists():
            continue
        minutes, steps = clock.get(epoch, (float("nan"), 0))
        cov, mmd, nna = score(path, reference, args.n, args.seeds)
        name = f"epoch {epoch}" if epoch >= 0 else "latest.pt (end)"
        print(f"| {name} | {minutes:.1f} | {steps} | {cov:.3f} | {mmd:.3f} | {nna:.3f} |", flush=True)
    if not args.no_baseline:
        t = time.perf_counter()
        cov, mmd, nna = score(args.baseline or None, reference, args.n, args.seeds)
        print(f"| baseline: {args.baseline or 'the bundled model'} | | | {cov:.3f} | {mmd:.3f} | {nna:.3f} |")
        print(f"\n(scoring one checkpoint: {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
