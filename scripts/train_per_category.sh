#!/usr/bin/env bash
# Per-category 3D-GANs (issue 21 item 3): fine-tune the all-class model on one class at a time with the fast
# recipe, each for a fixed wall-clock budget, on the train part of the held-out split only. Resumable: a class
# whose run folder has latest.pt continues from it; otherwise it starts from INIT's G and D.
#
#   scripts/train_per_category.sh INIT "chair:40 sofa:25 table:25 bed:20 desk:20" [OUT_ROOT] [THREADS]
#
# The minutes are wall time; SIGTERM at the end makes the trainer finish its step and save (training_loop).
set -euo pipefail
init=${1:?usage: train_per_category.sh INIT "class:minutes ..." [OUT_ROOT] [THREADS]}
plan=${2:?give "class:minutes ..."}
root=${3:-runs/percat}
threads=${4:-1}
data=${DATA:-runs/split/train.npz}
for item in $plan; do
    cls=${item%%:*}
    minutes=${item##*:}
    out=$root/$cls
    mkdir -p "$out"
    if [[ -f $out/latest.pt ]]; then start=(--resume); else start=(--init-from "$init"); fi
    echo "== $cls for $minutes min at $(date -u) (${start[*]})"
    timeout -s TERM "$((minutes * 60))" gan3d train --data "$data" --classes "$cls" --profile fast32 \
        --recipe fast --epochs 100000 --threads "$threads" --seed 0 --snapshot-every 25 \
        --checkpoint-minutes 5 --out "$out" "${start[@]}" || [[ $? == 124 ]]
done
echo "== done at $(date -u)"
