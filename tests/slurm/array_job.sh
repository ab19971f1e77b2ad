#!/usr/bin/env bash
# A haloflow run as a real SLURM array job, on a one-node cluster on localhost
# (cluster.sh): `init`, then `sbatch --array` of tasks taking their part with
# `--part auto`, one task cancelled mid-run (scancel) and requeued, `verify` before
# and after, and sacct's record of the tasks. The output must equal one
# uninterrupted run byte for byte.
#
# Usage: tests/slurm/array_job.sh HALOFLOW PYTHON   (PYTHON with numpy and zarr)
# Needs root (munged, slurmd) and slurmctld, slurmd, slurm-client and munge.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
haloflow=$(realpath "$1")
python=$2
work=$(mktemp -d /tmp/haloflow-slurm.XXXXXX)
chmod 755 "$work"
# shellcheck source=tests/slurm/cluster.sh
. "$here/cluster.sh"
cleanup() {
    slurm_cluster_stop "$work/cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "slurm: FAIL $*" >&2
    for log in "$work"/task-*.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; cat "$log" >&2; }
    done
    exit 1
}
started=$SECONDS

# 16 shards of 4 x 256 x 256 (uint16), four tasks of four shards; a median of 7^3
# keeps each shard busy for a tenth of a second (release build) to a few seconds
# (the tests' build) on one core.
"$python" - "$work/in.zarr" <<'EOF'
import sys
import numpy as np
import zarr
x = np.random.default_rng(7).integers(0, 4000, (16, 512, 512), dtype=np.uint16)
zarr.create_array(store=sys.argv[1], shape=x.shape, chunks=(4, 128, 128), dtype=x.dtype,
                  zarr_format=3)[...] = x
EOF
op=(median "$work/in.zarr")
flags=(--size 7 --chunks 4,128,128 --shards 4,256,256 --quiet --device cpu)
tasks=4

"$haloflow" "${op[@]}" "$work/reference.zarr" "${flags[@]}" --threads 2

slurm_cluster_start "$work/cluster"
out="$work/out.zarr"
"$haloflow" init "${op[@]}" "$out" "${flags[@]}" | tee "$work/init.txt"
grep -q '^jobs      16 (shards of \[4, 256, 256\])' "$work/init.txt" || fail "init did not count 16 shards"
if "$haloflow" verify "$out" >/dev/null 2>&1; then fail "verify passed before any task ran"; fi

# The last task's shards are the last four (z = 3). Its first run holds still
# (SIGSTOP) once it has written one, so that the test cancels it mid-run however fast
# or loaded this machine is; requeued, it runs freely.
cat >"$work/task.sh" <<EOF
#!/usr/bin/env bash
run=("$haloflow" ${op[*]} "$out" ${flags[*]} --threads 1 --part auto)
if [ "\$SLURM_ARRAY_TASK_ID" = $((tasks - 1)) ] && [ "\${SLURM_RESTART_COUNT:-0}" = 0 ]; then
    "\${run[@]}" &
    pid=\$!
    until [ -d "$out/c/3" ] && [ "\$(find "$out/c/3" -type f | wc -l)" -ge 1 ]; do
        kill -0 \$pid 2>/dev/null || exit 1
        sleep 0.01
    done
    kill -STOP \$pid
    # Held until the test cancels this task; never longer than 10 minutes.
    for _ in \$(seq 600); do kill -0 \$pid 2>/dev/null || exit 1; sleep 1; done
    kill -KILL \$pid
    exit 1
fi
exec "\${run[@]}"
EOF
chmod +x "$work/task.sh"
job=$(sbatch --parsable --array=0-$((tasks - 1)) --cpus-per-task=1 --requeue \
    --output="$work/task-%A_%a.log" "$work/task.sh")
echo "slurm: submitted array job $job ($tasks tasks)"

# Cancel the last task once it has written at least one of its shards and before it
# writes the last (its first run waits for that, stopped).
last="${job}_$((tasks - 1))"
state() { squeue -h -r -t all -j "$1" -o %T 2>/dev/null | head -1 || true; }
# Waits until job $1 is in state $2, for at most $3 seconds; a state among $4 (a
# |-separated list) fails at once. Every wait of this test has a deadline, so a stuck
# task fails the test with its logs instead of hanging CI.
await() {
    local job=$1 want=$2 limit=$3 bad=${4:-} s end=$((SECONDS + $3))
    while :; do
        s=$(state "$job")
        [ "$s" = "$want" ] && return 0
        if [ -n "$bad" ] && [[ "|$bad|" == *"|$s|"* ]]; then fail "task $job: $s while waiting for $want"; fi
        [ $SECONDS -lt $end ] || fail "task $job not $want after $limit s (state: ${s:-none})"
        sleep 0.1
    done
}
mine() { if [ -d "$out/c/3" ]; then find "$out/c/3" -type f | wc -l; else echo 0; fi; }
deadline=$((SECONDS + 120))
while :; do
    s=$(state "$last")
    n=$(mine)
    if [ "$s" = RUNNING ] && [ "$n" -ge 1 ] && [ "$n" -lt 4 ]; then
        scancel --signal=KILL "$last"
        break
    fi
    case "$s" in COMPLETED | FAILED | CANCELLED) fail "task $last ended ($s, $n of 4 shards) before it could be cancelled mid-run" ;; esac
    [ $SECONDS -lt $deadline ] || fail "task $last never ran (state $s)"
    sleep 0.02
done
await "$last" CANCELLED 60
echo "slurm: cancelled $last mid-run with $n of its 4 shards written"

# Every other task finishes; the output is still incomplete, and verify says so.
for t in $(seq 0 $((tasks - 2))); do
    await "${job}_$t" COMPLETED 600 "FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL"
done
if "$haloflow" verify "$out"; then fail "verify passed with task $last cancelled"; fi
echo "slurm: verify fails before the last task finishes, as it must"

# Requeued, the task resumes its part and the run completes; a job submitted to
# run after it (afterok), as a pipeline's next step, verifies the output.
scontrol requeue "$last"
check=$(sbatch --parsable --dependency="afterok:$last" --output="$work/check.log" \
    --wrap "\"$haloflow\" verify \"$out\"")
deadline=$((SECONDS + 120))
until [ "$(state "$check")" = COMPLETED ]; do
    case "$(state "$check")" in FAILED | CANCELLED) fail "the verify job after the requeued task: $(cat "$work/check.log")" ;; esac
    case "$(state "$last")" in FAILED | TIMEOUT) fail "requeued task $last: $(state "$last")" ;; esac
    [ $SECONDS -lt $deadline ] || fail "requeued task $last or the verify job after it did not complete"
    sleep 0.2
done
[ "$(state "$last")" = COMPLETED ] || fail "the verify job ran before $last completed"
"$haloflow" verify "$out" || fail "verify failed after every task completed"

# sacct's record (job completion log): every task's last run COMPLETED.
echo "slurm: sacct -c (JobIDRaw|State|ExitCode, one line per run):"
sacct -c -n -P -X -o JobIDRaw,State,ExitCode 2>/dev/null | sed 's/^/  /'
slurm_cluster_tasks "$work/cluster" "$job" | tee "$work/tasks.txt"
[ "$(grep -c ' COMPLETED ' "$work/tasks.txt")" -eq "$tasks" ] || fail "not every task's last run COMPLETED"

# Byte for byte: every file but haloflow's temporary directory.
(cd "$work/reference.zarr" && find . -path ./.haloflow-tmp -prune -o -type f -print | sort) >"$work/ref.list"
(cd "$out" && find . -path ./.haloflow-tmp -prune -o -type f -print | sort) >"$work/out.list"
cmp -s "$work/ref.list" "$work/out.list" || fail "the array job wrote other files than one run: $(diff "$work/ref.list" "$work/out.list" | head -5)"
while read -r f; do
    cmp -s "$work/reference.zarr/$f" "$out/$f" || fail "$f differs from one uninterrupted run"
done <"$work/ref.list"
echo "slurm: $(wc -l <"$work/ref.list") files byte-identical to one uninterrupted run; $tasks tasks, one cancelled and requeued; $((SECONDS - started)) s"
