"""Core speed: generator latency, slider frame (generate + mesh) and training step, each against a plain fp32
PyTorch baseline measured in the same run and reported as a ratio. Used by `gan3d bench` and
benchmarks/bench_core.py. Runs on the device `pick_device` chooses (a CUDA or MPS GPU when present) or the one
asked for; both sides run there, and every timed call waits for the device to finish.

The baseline is the network as public reimplementations write it, built here from stock layers
(nn.ConvTranspose3d / nn.Conv3d / nn.BatchNorm3d / ReLU / LeakyReLU / Sigmoid), fp32, default memory format, no
autocast; inference under torch.no_grad in eval mode; training with Adam, D updated every step. It has the same
weights as ours. Ours is what the app and `gan3d train` run: model.Model.generate and Trainer.train_step.

Each row also gives the arithmetic of one call (floating-point operations of the convolutions and matrix
products, counted by torch.utils.flop_counter on the baseline, which computes the same network) and the rate ours
reaches, next to the device's matrix-product rate in gan3d's precision, measured in the same run: no
implementation in that precision runs faster than that, so it bounds the speed-up any such code can reach over the
baseline.

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
from gan_core.device import autocast, describe, pick_device
from gan_core.mesh import voxels_to_mesh
from gan_core.model import Model
from gan_core.runtime import load_model


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


def matmul_peak_gflops(n: int = 2048, repeats: int = 5, device: torch.device | str = "cpu",
                       dtype: torch.dtype = torch.float32) -> float:
    """The device's rate on a large square matrix product in ``dtype`` (on the CPU: oneDNN / MKL, all torch
    threads), best of ``repeats``: the practical ceiling of arithmetic in that precision there."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2 * n**3 / (best / 1000) / 1e9


def wait_for_gpu() -> None:
    """GPU work is queued, not done, when a call returns: wait for it so that it is timed."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.synchronize()


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    wait_for_gpu()
    w, c = time.perf_counter(), time.process_time()
    fn()
    wait_for_gpu()
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
    return g.to(model.device).eval()


def plain_generate(g: nn.Sequential, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        zt = torch.from_numpy(z).to(next(g.parameters()).device)
        return g(zt.view(*zt.shape, 1, 1, 1))[:, 0].cpu().numpy()


def plain_train_step(p: Profile, batch: int, amp_dtype: torch.dtype | None = None,
                     memory_format: torch.memory_format = torch.contiguous_format,
                     device: torch.device | str = "cpu", update_d: bool = True) -> Callable[[], None]:
    """One step of the paper's recipe on the baseline networks; the baseline is fp32 (``amp_dtype`` None) in the
    default memory format. ``update_d`` False is the gated recipe's step when D is accurate enough: D's losses
    are computed (their accuracy is the gate) but D is not updated; G's step is the same."""
    dev = torch.device(device)
    g = plain_generator(p).to(dev, memory_format=memory_format)
    d = PlainDiscriminator(p).to(dev, memory_format=memory_format)
    opt_g = torch.optim.Adam(g.parameters(), p.g_lr, betas=(p.beta1, p.beta2))
    opt_d = torch.optim.Adam(d.parameters(), p.d_lr, betas=(p.beta1, p.beta2))
    real = (torch.rand(batch, 1, *(p.resolution,) * 3, device=dev) > 0.9).float()
    real = real.contiguous(memory_format=memory_format)

    def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))

    def step() -> None:
        with autocast(dev, amp_dtype):
            fake = g(torch.randn(batch, p.z_dim, 1, 1, 1, device=dev))
            d_loss = bce(d(real), 1.0) + bce(d(fake.detach()), 0.0)
        if update_d:
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
        with autocast(dev, amp_dtype):
            g_loss = bce(d(fake), 1.0)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()

    return step


# -- ours ----------------------------------------------------------------------------------------------------
def gan3d_train_step(profile_name: str, batch: int, workdir: Path, device: torch.device | str = "cpu",
                     update_d: bool = True) -> tuple[Callable[[], None], list[bool]]:
    """Trainer.train_step on a random batch, D updated every step (threshold 1) or, ``update_d`` False, never
    (threshold 1e-9); also returns the list that records, per call, whether D was updated."""
    from gan_core.data.synthetic import make_synthetic_dataset, save_npz
    from gan_core.train import Trainer, TrainConfig

    res = get_profile(profile_name).resolution
    data = save_npz(workdir / f"{profile_name}.npz", *make_synthetic_dataset(1, res))
    trainer = Trainer(TrainConfig(data=str(data), out=str(workdir / profile_name), profile=profile_name,
                                  batch_size=batch, d_acc_threshold=1.0 if update_d else 1e-9, device=str(device)))
    real = (np.random.default_rng(0).random((batch,) + (res,) * 3) > 0.9).astype(np.uint8)
    updated: list[bool] = []
    return lambda: updated.append(trainer.train_step(real)["d_updated"]), updated


# -- the table -----------------------------------------------------------------------------------------------
def generator_row(model: Model, repeats: int, batch: int = 1) -> Row:
    z = model.sample_z(batch, 0)
    plain = plain_copy_of(model)
    base, ours = paired_medians(lambda: plain_generate(plain, z), lambda: model.generate(z, use_cache=False), repeats)
    return Row(f"{model.profile.name} generator, batch {batch}", base, ours,
               count_gflop(lambda: plain_generate(plain, z)))


def slider_frame_row(model: Model, repeats: int) -> Row:
    z = model.sample_z(1, model.default_seeds[0] if model.default_seeds else 0)
    plain = plain_copy_of(model)
    base, ours = paired_medians(lambda: voxels_to_mesh(plain_generate(plain, z)[0]),
                                lambda: voxels_to_mesh(model.generate(z, use_cache=False)[0]), repeats)
    return Row(f"{model.profile.name} slider frame (generate + mesh)", base, ours,
               count_gflop(lambda: plain_generate(plain, z)))


def train_row(profile_name: str, batch: int, repeats: int, device: torch.device | str = "cpu",
              update_d: bool = True) -> Row:
    """A training step of both, D updated every step or (``update_d`` False) in none: the two kinds of step
    the gated recipe mixes."""
    with tempfile.TemporaryDirectory(prefix="gan3d_bench_") as tmp:
        ours, updated = gan3d_train_step(profile_name, batch, Path(tmp), device, update_d)
        plain = plain_train_step(get_profile(profile_name), batch, device=device, update_d=update_d)
        base, mine = paired_medians(plain, ours, repeats, warmup=1)
    kind = "" if update_d else ", D not updated"
    odd = updated.count(not update_d)
    note = f" (gan3d's D gate disagreed in {odd} of {len(updated)} steps)" if odd else ""
    return Row(f"{profile_name} train step, batch {batch}{kind}{note}", base, mine, count_gflop(plain))


def run(args: argparse.Namespace) -> list[Row]:
    """Measure and print the table; returns its rows."""
    device = pick_device(args.device)
    try:
        model = load_model(args.checkpoint, device=str(device))
    except Exception as e:  # no bundled model yet: measure an untrained fast32 (same cost)
        print(f"(no trained model: {e}; timing an untrained fast32)")
        model = load_model(profile="fast32", device=str(device))
    prof = model.profile.name
    paper64 = load_model(profile="paper64", device=str(device))
    rows = [generator_row(model, args.repeats)]
    if not args.skip_mesh:
        rows.append(slider_frame_row(model, args.repeats))
    rows.append(generator_row(paper64, args.repeats))
    if device.type != "cpu":  # a GPU's strength is batches: the throughput of generating many shapes at once
        rows.append(generator_row(paper64, args.repeats, batch=64))
    rows.append(train_row(prof, 32, args.train_repeats, device))
    rows.append(train_row(prof, 32, args.train_repeats, device, update_d=False))
    if not args.skip_paper64_train:
        rows.append(train_row("paper64", 32, args.train_repeats, device))
    grid = model.generate(model.sample_z(1, model.default_seeds[0] if model.default_seeds else 0))[0]  # a shape
    mesh = None if args.skip_mesh else median_timing(lambda: voxels_to_mesh(grid), args.repeats)
    dtype = model.amp_dtype or torch.float32
    precision = str(dtype).removeprefix("torch.")
    peak = matmul_peak_gflops(device=device, dtype=dtype)

    threads = f", {torch.get_num_threads()} torch thread(s)" if device.type == "cpu" else ""
    print(f"\ntorch {torch.__version__}, {describe(device)}{threads}, gan3d in {precision}, model {model.name}; "
          f"medians of {args.repeats} calls ({args.train_repeats} training steps), baseline and gan3d alternating\n")
    print("| measurement | baseline wall (ms) | gan3d wall (ms) | speed-up wall | baseline CPU (ms) | gan3d CPU (ms) "
          f"| speed-up CPU | GFLOP | gan3d GFLOP/s | {precision} ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, b, o, gflop in rows:
        base_rate = gflop / (b.wall_ms / 1000)
        print(f"| {name} | {b.wall_ms:.1f} | {o.wall_ms:.1f} | {b.wall_ms / o.wall_ms:.2f}x | {b.cpu_ms:.1f} | "
              f"{o.cpu_ms:.1f} | {b.cpu_ms / o.cpu_ms:.2f}x | {gflop:.1f} | {gflop / (o.wall_ms / 1000):.0f} | "
              f"{peak / base_rate:.2f}x |")
    if mesh is not None:
        print(f"| marching cubes + largest component, {model.resolution}^3 | | {mesh.wall_ms:.1f} | | | "
              f"{mesh.cpu_ms:.1f} | | | | |")
    print(f"\n{precision} matrix product (2048^2, best of 5): {peak:.0f} GFLOP/s. {precision} ceiling = that rate / "
          f"the baseline's rate: the most any {precision} code could gain over the fp32 baseline on this device "
          "(lower precision can go past it).")
    return rows
