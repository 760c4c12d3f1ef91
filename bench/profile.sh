#!/usr/bin/env bash
# bench/profile.sh - where the broker's (and the worker supervisor's) time
# goes during W1: perf record -g (software cpu-clock: this machine has no
# hardware counters) on each process for the whole run, CPU seconds per
# process from /proc, and fsync/fdatasync counts from syscall tracepoints.
# Env: PROF_N=20000 PROF_DUR=full PROF_SLOTS=2 PROF_OUT=dir (default: a temp dir,
# kept). Prints the summary on stdout; perf.data files stay in PROF_OUT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
BENCH_KEEP=1
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
N=${PROF_N:-20000}
DUR=${PROF_DUR:-full}
SLOTS=${PROF_SLOTS:-2}
OUT=${PROF_OUT:-$BENCH_TMP}
mkdir -p "$OUT"
bench_build

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start_broker prof "$DUR"
start_worker "$EP" "$SLOTS"
b0=$(cpu_ticks "$BROKER_PID"); w0=$(cpu_ticks "$WORKER_PID")
perf record -g -e cpu-clock -F 4000 -o "$OUT/broker.perf.data" -p "$BROKER_PID" 2>>"$OUT/perf.log" &
PB=$!; PIDS+=("$PB")
perf record -g -e cpu-clock -F 4000 -o "$OUT/worker.perf.data" -p "$WORKER_PID" 2>>"$OUT/perf.log" &
PW=$!; PIDS+=("$PW")
perf stat -e 'syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_poll,syscalls:sys_enter_pwrite64' \
    -p "$BROKER_PID" -o "$OUT/broker.syscalls.txt" 2>>"$OUT/perf.log" &
PS=$!; PIDS+=("$PS")
sleep 1 # perf attaches asynchronously; the run below lasts many seconds
"$BIN/taskq-bench" w1 --broker "$EP" -N "$N" --label "$DUR" | tee "$OUT/w1.json"
b1=$(cpu_ticks "$BROKER_PID"); w1=$(cpu_ticks "$WORKER_PID")
for p in $PB $PW $PS; do kill -INT "$p"; done
for p in $PB $PW $PS; do wait "$p" 2>/dev/null || true; done
PIDS=("$BROKER_PID" "$WORKER_PID")
hz=$(getconf CLK_TCK)
secs=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$OUT/w1.json")
echo "broker CPU: $(( (b1 - b0) * 1000 / hz )) ms for $N tasks in $secs s wall"
echo "supervisor CPU: $(( (w1 - w0) * 1000 / hz )) ms"
cat "$OUT/broker.syscalls.txt"
set +o pipefail # head closes the pipe early
for who in broker worker; do
    echo "== $who: top functions (self) =="
    perf report -i "$OUT/$who.perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null \
        | grep '%' | head -30
    echo "== $who: by library =="
    perf report -i "$OUT/$who.perf.data" --no-children -g none --sort dso --stdio 2>/dev/null \
        | grep '%' | head -10
done
echo "perf data in $OUT"
