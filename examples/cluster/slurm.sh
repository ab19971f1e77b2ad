#!/usr/bin/env bash
# A haloflow run as a SLURM array job: create the output once, run N tasks that each
# take their share of the shards, then check that every shard is there before the next
# step. Submit from a login node:   bash slurm.sh IN.zarr OUT.zarr
#
# Each task writes whole shards (one file each, atomically), so no two tasks ever write
# the same file. A failed or cancelled task leaves its shards absent: `scontrol requeue`
# (or resubmitting with the same --array) reruns it, and it skips the shards done.
set -euo pipefail
IN=$1
OUT=$2
TASKS=${TASKS:-16}
CPUS=${CPUS:-4}
OP=(gaussian --sigma 2)                     # any haloflow op and its flags
FLAGS=(--chunks 64,128,128 --shards 256,512,512 --threads "$CPUS")

# 1. Metadata first (also computes whole-array statistics once, for ops that need
#    them): it prints the number of jobs (shards) and the memory one task needs.
haloflow init "${OP[0]}" "$IN" "$OUT" "${OP[@]:1}" "${FLAGS[@]}"

# 2. The array job: task I of N runs part I/N (--part auto reads SLURM_ARRAY_TASK_ID
#    and SLURM_ARRAY_TASK_COUNT). Size --mem from what init printed.
JOB=$(sbatch --parsable --array=0-$((TASKS - 1)) --cpus-per-task="$CPUS" --mem=4G \
    --requeue --job-name=haloflow --output=haloflow-%A_%a.log \
    --wrap "haloflow ${OP[*]} $IN $OUT ${FLAGS[*]} --part auto --quiet")

# 3. The next step waits for every task, and starts by checking the output: verify
#    exits non-zero, naming the missing shards, if any task did not finish.
sbatch --dependency=afterok:"$JOB" --job-name=haloflow-verify --output=haloflow-verify.log \
    --wrap "haloflow verify $OUT"
