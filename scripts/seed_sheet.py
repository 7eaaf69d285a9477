"""A sheet of one shape per seed (the app's seed boxes: seed s gives model.sample_z(1, s)), to pick a model's
showcase seeds for assets/models.json by looking, and the judge's class for each, to count recognisable shapes.

    python scripts/seed_sheet.py assets/fast32_chair.pt --seeds 0-47 --png runs/chair_seeds.png
"""

from __future__ import annotations

import argparse

import numpy as np

from gan_core.preview import render_grid
from gan_core.runtime import load_judge, load_model


def seed_range(text: str) -> list[int]:
    """'0-47' or '3,5,9' -> the seeds."""
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="model checkpoint (.pt) or registry name")
    p.add_argument("--seeds", default="0-47", help="seeds: 'LO-HI' or a comma list (default: 0-47)")
    p.add_argument("--png", required=True, help="the sheet to write")
    args = p.parse_args(argv)

    model = load_model(args.checkpoint, device="cpu", precision="fp32")
    seeds = seed_range(args.seeds)
    occ = np.concatenate([model.generate(model.sample_z(1, s), use_cache=False) for s in seeds])
    judge = load_judge()
    names = [judge.class_names[i] for i in judge.predict(occ > 0.5)]
    render_grid(occ, args.png, titles=[f"seed {s}: {n}" for s, n in zip(seeds, names)], ncols=8)
    counts = {c: names.count(c) for c in sorted(set(names))}
    print(f"{args.png}: {len(seeds)} seeds; the judge's classes: {counts}")


if __name__ == "__main__":
    main()
