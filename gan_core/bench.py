"""Core speed: generator latency, slider frame (generate + mesh), training step; each against a plain fp32
PyTorch baseline (eval, no_grad, default memory format: how public reimplementations run it) measured in the
same run and reported as a ratio. Used by `gan3d bench` and benchmarks/bench_core.py.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from gan_core.config import get_profile
from gan_core.device import autocast
from gan_core.mesh import voxels_to_mesh
from gan_core.models import Discriminator, Generator, bce_logits
from gan_core.runtime import load_model


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)


def baseline_generate(profile_name: str, repeats: int) -> float:
    """What public reimplementations do: eval(), no_grad, fp32, default memory format."""
    g = Generator(get_profile(profile_name)).eval()
    z = torch.randn(1, g.profile.z_dim)

    def run():
        with torch.no_grad():
            g(z).numpy()

    return median_ms(run, repeats)


def ours_generate(model, repeats: int) -> float:
    z = model.sample_z(1, 0)
    return median_ms(lambda: model.generate(z, use_cache=False), repeats)


def train_step_ms(profile_name: str, batch: int, optimized: bool, repeats: int) -> float:
    p = get_profile(profile_name)
    fmt = torch.channels_last_3d if optimized else torch.contiguous_format
    dtype = torch.bfloat16 if optimized else None
    dev = torch.device("cpu")
    g, d = Generator(p).to(memory_format=fmt), Discriminator(p).to(memory_format=fmt)
    og, od = torch.optim.Adam(g.parameters(), 1e-4), torch.optim.Adam(d.parameters(), 1e-4)
    real = (torch.rand(batch, 1, *(p.resolution,) * 3) > 0.9).float().contiguous(memory_format=fmt)

    def step():
        z = torch.randn(batch, p.z_dim)
        with autocast(dev, dtype):
            fake = g(z).unsqueeze(1)
            dl = bce_logits(d.logits(real), 1.0) + bce_logits(d.logits(fake.detach()), 0.0)
        od.zero_grad()
        dl.backward()
        od.step()
        with autocast(dev, dtype):
            gl = bce_logits(d.logits(fake), 1.0)
        og.zero_grad()
        gl.backward()
        og.step()

    return median_ms(step, repeats, warmup=1)


def run(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    """Measure and print the table; returns its rows (name, baseline ms, ours ms)."""
    rows = []
    try:
        model = load_model(args.checkpoint)
    except Exception as e:  # no bundled model yet: measure an untrained fast32 (same cost)
        print(f"(no trained model: {e}; timing an untrained fast32)")
        model = load_model(profile="fast32")
    prof = model.profile.name

    base = baseline_generate(prof, args.repeats)
    ours = ours_generate(model, args.repeats)
    rows.append((f"{prof} generator, batch 1", base, ours))

    z = model.sample_z(1, 1)
    grid = model.generate(z)[0]
    mesh_ms = median_ms(lambda: voxels_to_mesh(grid), args.repeats)
    frame = median_ms(lambda: voxels_to_mesh(model.generate(model.sample_z(1, None), use_cache=False)[0]),
                      args.repeats)
    rows.append((f"{prof} slider frame (generate + mesh)", base + mesh_ms, frame))

    p64 = load_model(profile="paper64")
    rows.append(("paper64 generator, batch 1", baseline_generate("paper64", args.repeats),
                 ours_generate(p64, args.repeats)))
    rows.append((f"{prof} train step, batch 32", train_step_ms(prof, 32, False, args.train_repeats),
                 train_step_ms(prof, 32, True, args.train_repeats)))
    if not args.skip_paper64_train:
        rows.append(("paper64 train step, batch 32", train_step_ms("paper64", 32, False, args.train_repeats),
                     train_step_ms("paper64", 32, True, args.train_repeats)))

    print(f"\nmachine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"model {model.name}; medians\n")
    print("| measurement | plain fp32 baseline (ms) | gan3d (ms) | speed-up |")
    print("|---|---|---|---|")
    for name, b, o in rows:
        print(f"| {name} | {b:.1f} | {o:.1f} | {b / o:.2f}x |")
    print(f"| marching cubes + largest component, {model.resolution}^3 | | {mesh_ms:.1f} | |")
    return rows
