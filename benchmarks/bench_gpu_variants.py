"""Which precision and memory format to run on a GPU: the baseline networks (gan_core.bench) in fp32 / bf16 and
contiguous / channels_last_3d, with cuDNN's autotuner off and on, for generation and a training step. Medians of
alternating calls on the device `pick_device` chooses; ratios are to fp32 contiguous without autotuning.

    python benchmarks/bench_gpu_variants.py [--repeats 20] [--train-repeats 10]
"""

import argparse
import itertools

import torch

from gan_core.bench import median_timing, plain_generator, plain_train_step
from gan_core.config import get_profile
from gan_core.device import describe, pick_device

CL, CONTIG = torch.channels_last_3d, torch.contiguous_format
VARIANTS = [(None, CONTIG), (None, CL), (torch.bfloat16, CONTIG), (torch.bfloat16, CL)]


def _name(dtype: torch.dtype | None, fmt: torch.memory_format) -> str:
    return f"{'bf16' if dtype else 'fp32'} {'channels_last_3d' if fmt is CL else 'contiguous'}"


def generate_fn(profile: str, batch: int, dtype: torch.dtype | None, fmt: torch.memory_format,
                device: torch.device):  # type: ignore[no-untyped-def]
    p = get_profile(profile)
    g = plain_generator(p).to(device, memory_format=fmt).eval()
    z = torch.randn(batch, p.z_dim, 1, 1, 1, device=device)

    def run() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            g(z).float()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--train-repeats", type=int, default=10)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    device = pick_device(args.device)
    cases = [("paper64 generator, batch 1", lambda d, f: generate_fn("paper64", 1, d, f, device), args.repeats),
             ("paper64 generator, batch 64", lambda d, f: generate_fn("paper64", 64, d, f, device), args.repeats),
             ("fast32 train step, batch 32",
              lambda d, f: plain_train_step(get_profile("fast32"), 32, d, f, device), args.train_repeats),
             ("paper64 train step, batch 32",
              lambda d, f: plain_train_step(get_profile("paper64"), 32, d, f, device), args.train_repeats)]
    print(f"\ntorch {torch.__version__}, {describe(device)}; medians, ms (ratio to fp32 contiguous, no autotuning)\n")
    print("| measurement | " + " | ".join(f"{_name(*v)}{' tuned' if b else ''}"
                                         for b, v in itertools.product((False, True), VARIANTS)) + " |")
    print("|---|" + "---|" * (2 * len(VARIANTS)))
    for name, make, repeats in cases:
        times = []
        for bench_on, (dtype, fmt) in itertools.product((False, True), VARIANTS):
            torch.backends.cudnn.benchmark = bench_on
            times.append(median_timing(make(dtype, fmt), repeats, warmup=3).wall_ms)
        torch.backends.cudnn.benchmark = False
        print(f"| {name} | " + " | ".join(f"{t:.2f} ({times[0] / t:.2f}x)" for t in times) + " |")


if __name__ == "__main__":
    main()
