#!/usr/bin/env bash
# Build the bundled assets from trained runs, with the project's own CLI, and record their provenance.
#   scripts/build_assets.sh DATA.npz GAN_RUN_CHECKPOINT [VAE_CHECKPOINT]
# Writes assets/fast32_modelnet10.pt (G + D [+ E], fp16), assets/fast32_modelnet10_bank.h5, a sample sheet,
# and prints the evaluation numbers that assets/README.md records.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="$1"; GAN="$2"; VAE="${3:-}"
G3D=.venv/bin/gan3d
NAME=fast32_modelnet10
WORK="${WORK:-runs/assets}"
mkdir -p assets "$WORK"
echo "data sha256: $(sha256sum "$DATA" | cut -d' ' -f1)"
echo "commit: $(git rev-parse HEAD)"
if [ -n "$VAE" ]; then
    $G3D pack --checkpoint "$GAN" --encoder-from "$VAE" --out "assets/$NAME.pt"
else
    $G3D pack --checkpoint "$GAN" --out "assets/$NAME.pt"
fi
time $G3D features --checkpoint "assets/$NAME.pt" --data "$DATA" --out "assets/${NAME}_bank.h5"
$G3D sample --checkpoint "assets/$NAME.pt" --n 300 --seed 0 --out "$WORK/samples300.npz"
$G3D sample --checkpoint "assets/$NAME.pt" --n 24 --seed 1 --out "$WORK/sheet.npz" --grid "assets/${NAME}_samples.png"
# real-vs-real reference: two disjoint halves of the data (even / odd rows)
.venv/bin/python - "$DATA" "$WORK" <<'PY'
import sys, numpy as np
from gan_core.data.dataset import save_voxel_npz
with np.load(sys.argv[1]) as f:
    v, l, c = f["voxels"], f["labels"], f["classes"]
save_voxel_npz(f"{sys.argv[2]}/half_a.npz", v[0::2], l[0::2], c)
save_voxel_npz(f"{sys.argv[2]}/half_b.npz", v[1::2], l[1::2], c)
PY
echo "== samples vs half A"; $G3D evaluate --samples "$WORK/samples300.npz" --reference "$WORK/half_a.npz" --max-n 300 --json
echo "== half B vs half A (real vs real)"; $G3D evaluate --samples "$WORK/half_b.npz" --reference "$WORK/half_a.npz" --max-n 300 --json
ls -la assets
