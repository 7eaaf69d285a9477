"""Core speed on the CPU: generator latency, slider frame (generate + mesh) and training step, each against a plain
fp32 PyTorch baseline measured in the same run and reported as a ratio. Used by `gan3d bench` and
benchmarks/bench_core.py.

The baseline is the network as public reimplementations write it, built here from stock layers
(nn.ConvTranspose3d / nn.Conv3d / nn.BatchNorm3d / ReLU / LeakyReLU / Sigmoid), fp32, default memory format, no
autocast; inference under torch.no_grad in eval mode; training with Adam, D updated every step. It has the same
weights as ours. Ours is what the app and `gan3d train` run: runtime.Model.generate and Trainer.train_step.

Each row also gives the arithmetic of one call (floating-point operations of the convolutions and matrix
products, counted by torch.utils.flop_counter on the baseline, which computes the same network) and the rate ours
reaches, next to this CPU's fp32 matrix-product rate measured in the same run: no fp32 implementation runs
faster than that, so it bounds the speed-up any fp32 code can reach over the baseline.

Baseline and ours alternate call by call, so a change in the machine's load hits both; each is reported as the
median of wall time and of CPU time (this process, all threads). On a shared machine the CPU time is the steadier
measure: it leaves out the time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_core.config import Profile, get_profile
from gan_core.device import autocast
from gan_core.mesh import voxels_to_mesh
from gan_core.runtime import Model, load_model

CPU = torch.device("cpu")


class Timing(NamedTuple):
    wall_ms: float
    cpu_ms: float


class Row(NamedTuple):
    name: str
    baseline: Timing
    ours: Timing
    gflop: float = float("nan")  # arithmetic of one call


def count_gflop(fn: Callable[[], object]) -> float:
    """Floating-point operations (in billions) of one call of ``fn``: convolutions and matrix products."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This CPU's fp32 rate on a large square matrix product (oneDNN / MKL sgemm, all torch threads), best of
    ``repeats``: the practical ceiling of fp32 arithmetic here."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2 * n**3 / (best / 1000) / 1e9


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000


def _median(samples: list[tuple[float, float]]) -> Timing:
    return Timing(statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))


def median_timing(fn: Callable[[], object], repeats: int, warmup: int = 2) -> Timing:
    """Median wall and CPU time of ``repeats`` calls of ``fn``."""
    for _ in range(warmup):
        fn()
    return _median([_timed(fn) for _ in range(repeats)])


def paired_medians(baseline: Callable[[], object], ours: Callable[[], object], repeats: int,
                   warmup: int = 2) -> tuple[Timing, Timing]:
    """Median wall and CPU time of ``baseline`` and ``ours``, called alternately ``repeats`` times each."""
    for _ in range(warmup):
        baseline()
        ours()
    pairs = [(_timed(baseline), _timed(ours)) for _ in range(repeats)]
    return _median([b for b, _ in pairs]), _median([o for _, o in pairs])


# -- the baseline networks ---------------------------------------------------------------------------------
def plain_generator(p: Profile) -> nn.Sequential:
    """G from stock layers: input z as (N, z_dim, 1, 1, 1), output (N, 1, R, R, R)."""
    ch = p.g_channels
    layers: list[nn.Module] = [nn.ConvTranspose3d(p.z_dim, ch[0], 4, 1, 0, bias=False), nn.BatchNorm3d(ch[0]), nn.ReLU(True)]
    for a, b in zip(ch, ch[1:]):
        layers += [nn.ConvTranspose3d(a, b, 4, 2, 1, bias=False), nn.BatchNorm3d(b), nn.ReLU(True)]
    layers += [nn.ConvTranspose3d(ch[-1], 1, 4, 2, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class PlainDiscriminator(nn.Module):
    """D from stock layers, with the parameter names of models.Discriminator: (N, 1, R, R, R) -> logits (N,)."""

    def __init__(self, p: Profile) -> None:
        super().__init__()
        ch = p.d_channels
        self.blocks = nn.Sequential(*[
            nn.Sequential(nn.Conv3d(a, b, 4, 2, 1, bias=False), nn.BatchNorm3d(b), nn.LeakyReLU(0.2, True))
            for a, b in zip((1,) + ch[:-1], ch)
        ])
        self.head = nn.Conv3d(ch[-1], 1, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x)).flatten()


def plain_copy_of(model: Model) -> nn.Sequential:
    """The baseline generator with ``model``'s weights, in eval mode."""
    g = plain_generator(model.profile)
    g.load_state_dict({k.removeprefix("net."): v.cpu() for k, v in model.generator.state_dict().items()})
    return g.eval()


def plain_generate(g: nn.Sequential, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        zt = torch.from_numpy(z)
        return g(zt.view(*zt.shape, 1, 1, 1))[:, 0].numpy()


def plain_train_step(p: Profile, batch: int, amp_dtype: torch.dtype | None = None,
                     memory_format: torch.memory_format = torch.contiguous_format) -> Callable[[], None]:
    """One step of the paper's recipe on the baseline networks (D updated every step); the baseline is fp32
    (``amp_dtype`` None) in the default memory format."""
    g, d = plain_generator(p).to(memory_format=memory_format), PlainDiscriminator(p).to(memory_format=memory_format)
    opt_g = torch.optim.Adam(g.parameters(), p.g_lr, betas=(p.beta1, p.beta2))
    opt_d = torch.optim.Adam(d.parameters(), p.d_lr, betas=(p.beta1, p.beta2))
    real = (torch.rand(batch, 1, *(p.resolution,) * 3) > 0.9).float().contiguous(memory_format=memory_format)

    def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))

    def step() -> None:
        with autocast(CPU, amp_dtype):
            fake = g(torch.randn(batch, p.z_dim, 1, 1, 1))
            d_loss = bce(d(real), 1.0) + bce(d(fake.detach()), 0.0)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        with autocast(CPU, amp_dtype):
            g_loss = bce(d(fake), 1.0)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()

    return step


# -- ours ----------------------------------------------------------------------------------------------------
def gan3d_train_step(profile_name: str, batch: int, workdir: Path) -> tuple[Callable[[], None], list[bool]]:
    """Trainer.train_step on a random batch, D updated every step like the baseline (threshold 1); also returns
    the list that records, per call, whether D was updated."""
    from gan_core.data.synthetic import make_synthetic_dataset, save_npz
    from gan_core.train import Trainer, TrainConfig

    res = get_profile(profile_name).resolution
    data = save_npz(workdir / f"{profile_name}.npz", *make_synthetic_dataset(1, res))
    trainer = Trainer(TrainConfig(data=str(data), out=str(workdir / profile_name), profile=profile_name,
                                  batch_size=batch, d_acc_threshold=1.0, device="cpu"))
    real = (np.random.default_rng(0).random((batch,) + (res,) * 3) > 0.9).astype(np.uint8)
    updated: list[bool] = []
    return lambda: updated.append(trainer.train_step(real)["d_updated"]), updated


# -- the table -----------------------------------------------------------------------------------------------
def generator_row(model: Model, repeats: int) -> Row:
    z = model.sample_z(1, 0)
    plain = plain_copy_of(model)
    base, ours = paired_medians(lambda: plain_generate(plain, z), lambda: model.generate(z, use_cache=False), repeats)
    return Row(f"{model.profile.name} generator, batch 1", base, ours, count_gflop(lambda: plain_generate(plain, z)))


def slider_frame_row(model: Model, repeats: int) -> Row:
    z = model.sample_z(1, model.default_seeds[0] if model.default_seeds else 0)
    plain = plain_copy_of(model)
    base, ours = paired_medians(lambda: voxels_to_mesh(plain_generate(plain, z)[0]),
                                lambda: voxels_to_mesh(model.generate(z, use_cache=False)[0]), repeats)
    return Row(f"{model.profile.name} slider frame (generate + mesh)", base, ours,
               count_gflop(lambda: plain_generate(plain, z)))


def train_row(profile_name: str, batch: int, repeats: int) -> Row:
    with tempfile.TemporaryDirectory(prefix="gan3d_bench_") as tmp:
        ours, updated = gan3d_train_step(profile_name, batch, Path(tmp))
        plain = plain_train_step(get_profile(profile_name), batch)
        base, mine = paired_medians(plain, ours, repeats, warmup=1)
    skipped = "" if all(updated) else f" (D skipped {updated.count(False)} of {len(updated)} updates)"
    return Row(f"{profile_name} train step, batch {batch}{skipped}", base, mine, count_gflop(plain))


def run(args: argparse.Namespace) -> list[Row]:
    """Measure and print the table; returns its rows."""
    try:
        model = load_model(args.checkpoint, device="cpu")
    except Exception as e:  # no bundled model yet: measure an untrained fast32 (same cost)
        print(f"(no trained model: {e}; timing an untrained fast32)")
        model = load_model(profile="fast32", device="cpu")
    prof = model.profile.name
    rows = [generator_row(model, args.repeats), slider_frame_row(model, args.repeats),
            generator_row(load_model(profile="paper64", device="cpu"), args.repeats),
            train_row(prof, 32, args.train_repeats)]
    if not args.skip_paper64_train:
        rows.append(train_row("paper64", 32, args.train_repeats))
    grid = model.generate(model.sample_z(1, model.default_seeds[0] if model.default_seeds else 0))[0]  # a shape
    mesh = median_timing(lambda: voxels_to_mesh(grid), args.repeats)
    peak = matmul_peak_gflops()

    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} torch thread(s), CPU, model {model.name}; medians of "
          f"{args.repeats} calls ({args.train_repeats} training steps), baseline and gan3d alternating\n")
    print("| measurement | baseline wall (ms) | gan3d wall (ms) | speed-up wall | baseline CPU (ms) | gan3d CPU (ms) "
          "| speed-up CPU | GFLOP | gan3d GFLOP/s | fp32 ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, b, o, gflop in rows:
        base_rate = gflop / (b.wall_ms / 1000)
        print(f"| {name} | {b.wall_ms:.1f} | {o.wall_ms:.1f} | {b.wall_ms / o.wall_ms:.2f}x | {b.cpu_ms:.1f} | "
              f"{o.cpu_ms:.1f} | {b.cpu_ms / o.cpu_ms:.2f}x | {gflop:.1f} | {gflop / (o.wall_ms / 1000):.0f} | "
              f"{peak / base_rate:.2f}x |")
    print(f"| marching cubes + largest component, {model.resolution}^3 | | {mesh.wall_ms:.1f} | | | {mesh.cpu_ms:.1f} "
          "| | | | |")
    print(f"\nfp32 matrix product (2048^2, best of 5): {peak:.0f} GFLOP/s. fp32 ceiling = that rate / the baseline's "
          "rate: the most any fp32 code could gain over the baseline on this CPU (lower precision can go past it).")
    return rows
