"""Training recipes compared at equal CPU time (issue 21, item 2): score runs that trained side by side.

    python benchmarks/compare_recipes.py --reference runs/split/heldout.npz --real runs/split/train.npz \
        --sheets runs/recipes/sheets runs/recipes/fast runs/recipes/r1 runs/recipes/r1-aug runs/recipes/hinge

Each run is scored from its latest.pt (or the checkpoint given as RUN:FILE): N shapes per sample seed, and the
mean over the seeds of what `gan3d evaluate` reports: the judge's Frechet distance (FCD) to the held-out
reference, the fragmented and tiny rates, the class mix's distance to the reference's (total variation), and
COV / MMD / 1-NNA under 1 - IoU. The real-vs-real row scores N real training shapes the same way: the floor.
Steps and CPU time come from the run's metrics.jsonl and from --cpu-log (lines "epoch_s name cpu_s steps",
written while the runs trained, one line per training process every 30 s: "epoch_s name cpu_s steps pid"), so a
table row says how much work it stood on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gan_core.commands.evaluate import read_subset
from gan_core.data import VoxelDataset
from gan_core.evaluate import generation_metrics
from gan_core.runtime import load_judge, load_model
from gan_core.shape_metrics import shape_metrics

KEYS = ("fcd", "fragmented", "tiny", "class_tv", "cov", "mmd", "1nna")


def scores(shapes: np.ndarray, reference: np.ndarray, judge) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One set's numbers against the reference (FCD and class mix by the judge; the rest as gan3d evaluate)."""
    sm = shape_metrics(shapes, reference, judge=judge)
    iou = generation_metrics(shapes, reference)["iou"]
    return {"fcd": sm["fcd"]["samples"], "fragmented": sm["fragmented_rate"]["samples"],
            "tiny": sm["tiny_rate"]["samples"], "class_tv": sm["class_tv"]["samples"], "cov": iou["cov"],
            "mmd": iou["mmd"], "1nna": iou["1nna"]}


def cpu_at(log: Path | None, name: str) -> tuple[float, int]:
    """(CPU seconds, steps) the log recorded for a run: the CPU time of each process that trained it (a resumed
    run is a new process; lines "t name cpu_s steps pid"), summed, and the last step count."""
    if log is None or not log.exists():
        return float("nan"), 0
    rows = [line.split() for line in log.read_text().splitlines()]
    mine = [r for r in rows if len(r) == 5 and r[1] == name]
    if not mine:
        return float("nan"), 0
    per_process: dict[str, float] = {}
    for r in mine:
        per_process[r[4]] = max(per_process.get(r[4], 0.0), float(r[2]))
    return sum(per_process.values()), max(int(r[3]) for r in mine)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (latest.pt scored), or RUN:CHECKPOINT")
    p.add_argument("--reference", required=True, help="held-out shapes (.npz/.h5) no run trained on")
    p.add_argument("--real", help="real training shapes for the real-vs-real row")
    p.add_argument("--n", type=int, default=400, help="shapes per sample seed, and reference / real shapes")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 7], help="sample seeds")
    p.add_argument("--cpu-log", type=Path, default=None, help="CPU-time log written while the runs trained")
    p.add_argument("--sheets", type=Path, default=None, help="write a 24-shape sample sheet per run (seed 1) here")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON lines here")
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    reference = read_subset(VoxelDataset(args.reference), args.n, rng)
    judge = load_judge()
    rows: list[tuple[str, str, dict[str, float]]] = []
    for spec in args.runs:
        run, _, ck = spec.partition(":")
        path = Path(ck) if ck else Path(run) / "latest.pt"
        model = load_model(path)
        per_seed = [scores(model.generate(model.sample_z(args.n, s), use_cache=False) > 0.5, reference, judge)
                    for s in args.seeds]
        mean = {k: float(np.mean([r[k] for r in per_seed])) for k in KEYS}
        cpu, steps = cpu_at(args.cpu_log, Path(run).name)
        rows.append((Path(run).name, f"{steps} steps, {cpu / 60:.0f} CPU-min" if steps else path.name, mean))
        if args.sheets:
            from gan_core.preview import render_grid

            args.sheets.mkdir(parents=True, exist_ok=True)
            sheet = model.generate(model.sample_z(24, 1), use_cache=False)
            render_grid(sheet, args.sheets / f"{Path(run).name}.png", titles=[f"#{i}" for i in range(24)])
        print(Path(run).name, json.dumps({k: round(v, 4) for k, v in mean.items()}), flush=True)
    if args.real:
        real = read_subset(VoxelDataset(args.real), args.n, np.random.default_rng(1))
        rows.append(("real vs real", f"{len(real)} training shapes", scores(real, reference, judge)))
    print(f"\n{args.n} shapes x seeds {args.seeds} vs {len(reference)} held-out shapes ({Path(args.reference).name})\n")
    print("| run | work | FCD | fragmented | tiny | class TV | COV | MMD | 1-NNA |\n|---|---|---|---|---|---|---|---|---|")
    for name, work, m in rows:
        print(f"| {name} | {work} | " + " | ".join(f"{m[k]:.3f}" for k in KEYS) + " |")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            for name, work, m in rows:
                f.write(json.dumps({"run": name, "work": work, **m}) + "\n")


if __name__ == "__main__":
    main()
