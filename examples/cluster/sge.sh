#!/usr/bin/env bash
# The SGE (Grid Engine, also Son of Grid Engine / Altair) equivalent of slurm.sh:
#   bash sge.sh IN.zarr OUT.zarr
# --part auto reads SGE_TASK_ID, SGE_TASK_FIRST, SGE_TASK_LAST and SGE_TASK_STEPSIZE.
set -euo pipefail
IN=$1
OUT=$2
TASKS=${TASKS:-16}
OP=(gaussian --sigma 2)
FLAGS=(--chunks 64,128,128 --shards 256,512,512 --threads 4)

# 1. Create the output once; note the jobs and the memory per task it prints.
haloflow init "${OP[0]}" "$IN" "$OUT" "${OP[@]:1}" "${FLAGS[@]}"

# 2. The array job (tasks 1..N; SGE counts from 1). `-pe smp 4` is site-specific.
qsub -terse -sync n -N haloflow -t 1-"$TASKS" -pe smp 4 -l h_vmem=1G -cwd -b y -j y \
    haloflow "${OP[@]}" "$IN" "$OUT" "${FLAGS[@]}" --part auto --quiet

# 3. Held until every task of `haloflow` has ended; fails if any shard is missing.
qsub -N haloflow-verify -hold_jid haloflow -cwd -b y -j y haloflow verify "$OUT"
