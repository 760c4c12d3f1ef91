#!/usr/bin/env bash
# bench/cpu.sh - CPU time and context switches per task, per process, during
# one W1 run (or W2: CPU_WORKLOAD=w2, one task at a time, which shows the
# fixed cost of a loop turn): broker, worker supervisor, each child, and the
# client. Shows which process a change made cheaper without perf's distortion.
# Env: CPU_N=50000 CPU_DUR=normal CPU_SLOTS=2 CPU_WORKLOAD=w1|w2
#   WORKER_ARGS (e.g. "--prefetch 64").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
N=${CPU_N:-50000}
DUR=${CPU_DUR:-normal}
SLOTS=${CPU_SLOTS:-2}
WL=${CPU_WORKLOAD:-w1}
bench_build
start_broker cpu "$DUR"
start_worker "$EP" "$SLOTS"
# wait for the children to exist
for _ in $(seq 100); do
    kids=$(pgrep -P "$WORKER_PID" | tr '\n' ' ')
    [ "$(echo $kids | wc -w)" -ge "$SLOTS" ] && break
    sleep 0.05
done
# ticks (utime+stime) and voluntary+involuntary switches summed over threads
sample() {
    local p=$1 t=0 c=0 d
    for d in /proc/$p/task/*; do
        t=$((t + $(awk '{print $14 + $15}' "$d/stat")))
        c=$((c + $(awk '/ctxt_switches/ {s += $2} END {print s}' "$d/status")))
    done
    echo "$t $c"
}
declare -A T0 C0
for p in $BROKER_PID $WORKER_PID $kids; do read -r T0[$p] C0[$p] < <(sample "$p"); done
# the client's own CPU from /usr/bin/time; the others sampled after it ends
# (sampling while it runs would cost CPU itself)
/usr/bin/time -f "%U %S" -o "$BENCH_TMP/client.time" \
    "$BIN/taskq-bench" "$WL" --broker "$EP" -N "$N" --label "$DUR" > "$BENCH_TMP/w1.json"
declare -A T1 C1
for p in $BROKER_PID $WORKER_PID $kids; do read -r T1[$p] C1[$p] < <(sample "$p"); done
cat "$BENCH_TMP/w1.json"
hz=$(getconf CLK_TCK)
report() { # name ticks switches
    awk -v n="$1" -v t="$2" -v c="$3" -v N="$N" -v hz="$hz" \
        'BEGIN { printf "%-12s %8.1f us CPU/task %8.2f switches/task\n", n, t * 1e6 / hz / N, c / N }'
}
report broker $((T1[$BROKER_PID] - T0[$BROKER_PID])) $((C1[$BROKER_PID] - C0[$BROKER_PID]))
report supervisor $((T1[$WORKER_PID] - T0[$WORKER_PID])) $((C1[$WORKER_PID] - C0[$WORKER_PID]))
for k in $kids; do report "child $k" $((T1[$k] - T0[$k])) $((C1[$k] - C0[$k])); done
read -r cu cs < "$BENCH_TMP/client.time"
awk -v u="$cu" -v s="$cs" -v N="$N" 'BEGIN { printf "%-12s %8.1f us CPU/task\n", "client", (u + s) * 1e6 / N }'

