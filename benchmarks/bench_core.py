"""Print the core speed table (generator, slider frame, training step) with ratios to a plain fp32 baseline.

    python benchmarks/bench_core.py [--checkpoint CKPT] [--repeats 15] [--skip-paper64-train]
"""

import argparse

from gan_core import bench
from gan_core.commands.bench import add_arguments

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    add_arguments(ap)
    bench.run(ap.parse_args())
