"""Images per second of the training renderer, clean style against photo style, on one thread.

Each round renders the same shapes (``--views`` each, meshing included, HDF5 writing not) in both styles, the
styles alternating, in renderers made before timing (the photo style's distractor pool is built outside the
timed part too). Prints the median over rounds of images/s per style, and their ratio. Needs a display
(``xvfb-run -a``) as the renderer does.

    OMP_NUM_THREADS=1 xvfb-run -a python benchmarks/bench_render_styles.py --data runs/split/train.npz
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="voxel set (.npz); shapes spread over it are rendered")
    p.add_argument("--shapes", type=int, default=40)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    from gan_core.data.dataset import VoxelDataset
    from gan_core.data.render import Renderer
    from gan_core.data.render_scene import shape_rng

    ds = VoxelDataset(args.data)
    rows = np.linspace(0, len(ds) - 1, args.shapes).astype(int)
    grids = ds.read(rows)
    renderers = {"clean": Renderer(args.size), "photo": Renderer(args.size, style="photo", distractors=grids[:8])}
    renderers["photo"].render_views(grids[0], 1, shape_rng(0, 0))  # builds the distractor pool
    rates: dict[str, list[float]] = {k: [] for k in renderers}
    for _ in range(args.rounds):
        for style, r in renderers.items():
            t0 = time.perf_counter()
            for g, row in zip(grids, rows):
                r.render_views(g, args.views, shape_rng(1, int(row)))
            rates[style].append(len(grids) * args.views / (time.perf_counter() - t0))
    for r in renderers.values():
        r.close()
    med = {k: float(np.median(v)) for k, v in rates.items()}
    print(json.dumps({"images_per_s": {k: round(v, 1) for k, v in med.items()},
                      "rounds": {k: [round(x, 1) for x in v] for k, v in rates.items()},
                      "photo_over_clean": round(med["photo"] / med["clean"], 2), "shapes": len(grids),
                      "views": args.views, "size": args.size, "omp_threads": os.environ.get("OMP_NUM_THREADS")}))


if __name__ == "__main__":
    main()
