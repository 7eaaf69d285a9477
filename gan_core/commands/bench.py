"""gan3d bench: measured speed of this machine against a plain fp32 baseline."""

from __future__ import annotations

import argparse

HELP = "time generation, the slider frame (generate + mesh) and a training step against a plain fp32 baseline"
EXAMPLE = "gan3d bench --repeats 15 --skip-paper64-train"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="default: the bundled default model")
    p.add_argument("--repeats", type=int, default=15, help="timed repetitions per measurement (median)")
    p.add_argument("--train-repeats", type=int, default=3, help="timed training steps per measurement")
    p.add_argument("--device", default=None, help="auto (a CUDA or MPS GPU when present, else the CPU), cpu, cuda, "
                   "cuda:N or mps (default: auto)")
    p.add_argument("--skip-paper64-train", action="store_true", help="skip the slow paper64 training step")
    p.add_argument("--skip-mesh", action="store_true",
                   help="leave out the rows that build meshes (a machine without PyVista, such as a GPU server)")


def run(args: argparse.Namespace) -> int:
    from gan_core.bench import run as bench_run

    bench_run(args)
    return 0
