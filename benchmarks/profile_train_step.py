"""Where one gan3d training step spends its time: torch.profiler over a few Trainer.train_step calls (D updated
every step), the operators that take longest, and the step's wall time next to the device's total time. On a GPU
a wide gap between them is launch and synchronisation overhead, not arithmetic.

    python benchmarks/profile_train_step.py [--profile fast32] [--batch 32] [--steps 10] [--device auto]
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from gan_core.bench import gan3d_train_step, wait_for_gpu
from gan_core.device import describe, pick_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="fast32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default=None)
    ap.add_argument("--rows", type=int, default=15)
    args = ap.parse_args()
    device = pick_device(args.device)
    gpu = device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        step, _ = gan3d_train_step(args.profile, args.batch, Path(tmp), device)
        for _ in range(3):
            step()
        wait_for_gpu()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
        with profile(activities=activities) as prof:
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            wait_for_gpu()
            wall = (time.perf_counter() - t) * 1000 / args.steps
    events = prof.key_averages()
    key = "self_device_time_total" if gpu else "self_cpu_time_total"
    print(f"\n{args.profile} train step, batch {args.batch}, {describe(device)}, torch {torch.__version__}: "
          f"{wall:.2f} ms a step (wall, under the profiler)")
    print(events.table(sort_by=key, row_limit=args.rows))
    if gpu:
        print(f"(the footer's device total is for {args.steps} steps: compare it with {wall * args.steps:.1f} ms of wall "
              "time; kernels also appear inside the operators that launched them, so the rows overlap)")


if __name__ == "__main__":
    main()
