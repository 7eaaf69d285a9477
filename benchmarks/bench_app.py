"""Print the explorer's speed table: launch to first shape, slider frame, mesh swap, drag fps, RSS, with the
baseline measured in the same run (see explorer/benchmark.py). Needs a display:

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_app.py [--checkpoint C] [--drags 2]
"""

import sys

from explorer.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
