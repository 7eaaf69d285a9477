"""Training memory against data set size: peak RSS of `gan3d train` on synthetic sets of N and 10 N shapes at
32^3, stored as HDF5 (read a batch at a time: RSS should stay flat) and as npz (read whole: RSS grows with N).

    python benchmarks/bench_memory.py [--n 2000] [--steps 3] [--keep DIR]

Each training run is its own subprocess (`python -m gan_core.cli train --profile fast32 --batch-size 32
--max-steps K`); its peak RSS is its VmHWM (Linux /proc), polled while it runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from gan_core.data.synthetic import CLASSES, make_synthetic_dataset
from gan_core.data.dataset import save_voxel_npz, write_h5_dataset

RESOLUTION = 32
MAX_SHIFT = 2  # voxels, along the two horizontal axes


def _shift(grids: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``grids`` (N, R, R, R) moved by (dx, dy) voxels along axes 1 and 2, zero-filled (no wrap-around)."""
    out = np.zeros_like(grids)
    r = grids.shape[1]
    src_x, dst_x = slice(max(-dx, 0), r - max(dx, 0)), slice(max(dx, 0), r - max(-dx, 0))
    src_y, dst_y = slice(max(-dy, 0), r - max(dy, 0)), slice(max(dy, 0), r - max(-dy, 0))
    out[:, dst_x, dst_y] = grids[:, src_x, src_y]
    return out


def shape_batches(n: int, seed: int = 0, base_per_class: int = 100, chunk: int = 1000
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n`` labelled shapes in chunks: a small procedural set tiled with random horizontal flips and shifts,
    whole groups at a time (several times faster than drawing every shape procedurally)."""
    base, base_labels, _ = make_synthetic_dataset(base_per_class, RESOLUTION, seed=seed)
    g = np.random.default_rng(seed + 1)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        pick = g.integers(0, len(base), m)
        vox = base[pick]
        flip_x, flip_y = g.random(m) < 0.5, g.random(m) < 0.5
        vox[flip_x] = vox[flip_x, ::-1]
        vox[flip_y] = vox[flip_y, :, ::-1]
        shifts = g.integers(-MAX_SHIFT, MAX_SHIFT + 1, (m, 2))
        for dx, dy in np.unique(shifts, axis=0):
            group = (shifts == (dx, dy)).all(axis=1)
            vox[group] = _shift(vox[group], int(dx), int(dy))
        yield vox, base_labels[pick]


def write_sets(workdir: Path, n: int) -> dict[tuple[str, int], Path]:
    """HDF5 and npz files of ``n`` and ``10 n`` shapes (the same shapes in both formats)."""
    paths = {}
    for count in (n, 10 * n):
        h5 = workdir / f"synthetic_{count}.h5"
        write_h5_dataset(h5, shape_batches(count), classes=CLASSES)
        paths["HDF5", count] = h5
        vox, labels = zip(*shape_batches(count))
        paths["npz", count] = save_voxel_npz(workdir / f"synthetic_{count}.npz", np.concatenate(vox),
                                             np.concatenate(labels), CLASSES)
        del vox, labels
    return paths


def train_peak_rss_mb(data: Path, out: Path, steps: int) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (s) of one `gan3d train` subprocess on ``data``.

    The peak is the child's VmHWM, polled: the child's ru_maxrss would also count this process's own memory,
    which a fork copies into the child's accounting before exec.
    """
    cmd = [sys.executable, "-m", "gan_core.cli", "train", "--data", str(data), "--out", str(out),
           "--profile", "fast32", "--batch-size", "32", "--max-steps", str(steps), "--epochs", "1",
           "--threads", "1"]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            time.sleep(0.1)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"training on {data.name} failed (exit {proc.returncode}):\n{err.read().decode(errors='replace')}")
    return peak_kb / 1024, time.perf_counter() - t0


def _vm_hwm_kb(pid: int) -> int:
    """The peak resident set of a running process (kB), 0 once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="shapes in the small set (the large one has 10x)")
    ap.add_argument("--steps", type=int, default=3, help="training steps per run (batch 32)")
    ap.add_argument("--keep", default=None, help="write the sets and runs here and keep them (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths = write_sets(workdir, args.n)
        print(f"wrote {len(paths)} synthetic sets in {time.perf_counter() - t0:.0f} s")
        rows = []
        for (fmt, count), path in sorted(paths.items()):
            rss, secs = train_peak_rss_mb(path, workdir / f"run_{fmt}_{count}", args.steps)
            rows.append((fmt, count, path.stat().st_size / 1e6, count * RESOLUTION**3 / 1e6, rss, secs))
        print(f"\n`gan3d train --profile fast32 --batch-size 32 --max-steps {args.steps} --threads 1`; "
              "peak RSS of the training process\n")
        print("| input | shapes | file (MB) | voxels uncompressed (MB) | trainer peak RSS (MB) | RSS vs N shapes | "
              "run (s) |")
        print("|---|---|---|---|---|---|---|")
        small = {fmt: rss for fmt, count, _, _, rss, _ in rows if count == args.n}
        for fmt, count, disk, raw, rss, secs in rows:
            print(f"| {fmt} | {count} | {disk:.1f} | {raw:.0f} | {rss:.0f} | {rss / small[fmt]:.2f}x | {secs:.0f} |")


if __name__ == "__main__":
    main()
