"""Before / after the CPU fast paths (gan_core/fast_conv.py, the folded inference copy of G, D frozen in G's step),
in one run: "before" is the optimised path as it was, stock layers under bf16 autocast in channels_last_3d;
"after" is what gan3d runs now (runtime.Model.generate, Trainer.train_step). Medians, alternating calls.

    python benchmarks/bench_fast_paths.py [--repeats 9] [--train-repeats 2] [--skip-paper64-train]
"""

import argparse
import tempfile
from pathlib import Path

import torch

from gan_core.bench import gan3d_train_step, paired_medians, plain_copy_of, plain_train_step
from gan_core.config import get_profile
from gan_core.runtime import load_model

BF16, CL = torch.bfloat16, torch.channels_last_3d


def stock_bf16_generate(model):  # type: ignore[no-untyped-def]
    g = plain_copy_of(model).to(memory_format=CL)

    def run(z):  # type: ignore[no-untyped-def]
        with torch.inference_mode(), torch.autocast("cpu", dtype=BF16):
            zt = torch.from_numpy(z)
            return g(zt.view(*zt.shape, 1, 1, 1))[:, 0].float().numpy()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--train-repeats", type=int, default=2)
    ap.add_argument("--skip-paper64-train", action="store_true")
    args = ap.parse_args()
    rows = []
    for model in (load_model(device="cpu"), load_model(profile="paper64", device="cpu")):
        z, before = model.sample_z(1, 0), stock_bf16_generate(model)
        rows.append((f"{model.profile.name} generator, batch 1",
                     *paired_medians(lambda: before(z), lambda: model.generate(z, use_cache=False), args.repeats)))
    for name in ("fast32",) + (() if args.skip_paper64_train else ("paper64",)):
        with tempfile.TemporaryDirectory() as tmp:
            after, _ = gan3d_train_step(name, 32, Path(tmp))
            before_step = plain_train_step(get_profile(name), 32, BF16, CL)
            rows.append((f"{name} train step, batch 32", *paired_medians(before_step, after, args.train_repeats, 1)))
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} torch thread(s); medians, before and after alternating\n")
    print("| measurement | before wall (ms) | after wall (ms) | speed-up wall | before CPU (ms) | after CPU (ms) "
          "| speed-up CPU |")
    print("|---|---|---|---|---|---|---|")
    for name, b, a in rows:
        print(f"| {name} | {b.wall_ms:.1f} | {a.wall_ms:.1f} | {b.wall_ms / a.wall_ms:.2f}x | {b.cpu_ms:.1f} | "
              f"{a.cpu_ms:.1f} | {b.cpu_ms / a.cpu_ms:.2f}x |")


if __name__ == "__main__":
    main()
