#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go, on a machine where python3 has PyTorch and the core dependencies
# (no Qt or PyVista needed): the GPU tests, the speed table on the GPU, the precision / memory-format variants,
# and a timed training run of the default profile, each snapshot evaluated against a reference set.
#
#   DATA=train.npz OUT=gpu_out TRAIN_SECONDS=150 bash scripts/gpu_check.sh   [REF=reference.npz: default half of DATA]
#
# Everything it prints also goes to $OUT/gpu_check.log; the run's metrics.jsonl and each evaluation land in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
DATA=${DATA:-../shared/data/modelnet10_train_32.npz}
REF=${REF:-$OUT/half_a.npz}  # made below when missing: the even-numbered shapes of DATA, as build_assets.sh does
TRAIN_SECONDS=${TRAIN_SECONDS:-150}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
gan3d() { python3 -m gan_core.cli "$@"; }
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

echo "== machine"; date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
nproc

echo "== GPU tests"; python3 -m pytest -p no:cacheprovider -q tests/test_gpu.py
echo "== speed table"; gan3d bench --skip-mesh --repeats 30 --train-repeats 10
echo "== variants"; python3 benchmarks/bench_gpu_variants.py --repeats 20 --train-repeats 8

[ -f "$REF" ] || python3 -c "import sys, numpy as np; from gan_core.data.dataset import save_voxel_npz; \
f = np.load(sys.argv[1]); save_voxel_npz(sys.argv[2], f['voxels'][0::2], f['labels'][0::2], f['classes'])" "$DATA" "$REF"

echo "== training: fast32, --recipe stable, $TRAIN_SECONDS s"
t0=$(date +%s)
timeout -s TERM "$TRAIN_SECONDS" python3 -m gan_core.cli train --data "$DATA" --profile fast32 --recipe stable \
    --epochs 1000 --snapshot-every 10 --checkpoint-minutes 1 --out "$OUT/run"
echo "trained for $(( $(date +%s) - t0 )) s"
tail -n 3 "$OUT/run/metrics.jsonl"
for ck in "$OUT"/run/epoch_*.pt "$OUT/run/latest.pt"; do
    [ -f "$ck" ] || continue
    gan3d sample --checkpoint "$ck" --n 300 --seed 0 --out "$OUT/s.npz" >/dev/null
    echo "-- $(basename "$ck")"; gan3d evaluate --samples "$OUT/s.npz" --reference "$REF" --max-n 300
done
rm -f "$OUT/s.npz"
