#!/usr/bin/env bash
# bench/run.sh - taskq benchmark W1..W4 in one command (docs/performance.md).
# Builds build-bench (Release) if needed, starts its own brokers and workers
# on 127.0.0.1, prints one JSON line per result on stdout (also written to
# $BENCH_OUT) and a table on stderr. Every process it starts is killed at exit.
#
# Sizes (env): W1_N=50000 W1_CHUNK=20000 W2_N=2000 W3_N=200 W3_PRIMES=100000
#   W4_N=1000000 W4_DRAIN_S=30 WORKLOADS="w1 w2 w3 w4" DURABILITIES="full normal"
#   W1_SLOTS=2 (worker -n for W1/W2/W4)  BUILD=dir  BENCH_KEEP=1 keeps the temp dir
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

W1_N=${W1_N:-50000}
W1_CHUNK=${W1_CHUNK:-20000}
W1_SLOTS=${W1_SLOTS:-2}
W2_N=${W2_N:-2000}
W3_N=${W3_N:-200}
W3_PRIMES=${W3_PRIMES:-100000}
W4_N=${W4_N:-1000000}
W4_DRAIN_S=${W4_DRAIN_S:-30}
WORKLOADS=${WORKLOADS:-w1 w2 w3 w4}
DURABILITIES=${DURABILITIES:-full normal}
BENCH_OUT=${BENCH_OUT:-$BENCH_TMP/results.jsonl}

bench_build
: >"$BENCH_OUT"
emit() { echo "$1" | tee -a "$BENCH_OUT"; }
has() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }

for dur in $DURABILITIES; do
    if has w1 || has w2; then
        log "W1/W2 durability=$dur, worker -n $W1_SLOTS"
        start_broker "b-$dur" "$dur"
        start_worker "$EP" "$W1_SLOTS"
        if has w1; then
            emit "$("$BIN/taskq-bench" w1 --broker "$EP" -N "$W1_N" --chunk "$W1_CHUNK" --label "$dur")"
        fi
        if has w2; then
            emit "$("$BIN/taskq-bench" w2 --broker "$EP" -N "$W2_N" --label "$dur")"
        fi
        stop_pid "$WORKER_PID"
        stop_pid "$BROKER_PID"
    fi
done

if has w3; then
    for n in 1 2; do
        log "W3 taskq.primes($W3_PRIMES) x $W3_N, worker -n $n"
        start_broker "b-w3-$n" normal
        start_worker "$EP" "$n"
        emit "$("$BIN/taskq-bench" w3 --broker "$EP" -N "$W3_N" --primes "$W3_PRIMES" --slots "$n")"
        stop_pid "$WORKER_PID"
        stop_pid "$BROKER_PID"
    done
fi

if has w4; then
    dur=full
    log "W4 backlog of $W4_N tasks, durability=$dur, no worker"
    start_broker b-w4 "$dur"
    emit "$("$BIN/taskq-bench" w4 --broker "$EP" -N "$W4_N" --label "$dur")"
    rss=$(rss_kb "$BROKER_PID" VmRSS)
    hwm=$(rss_kb "$BROKER_PID" VmHWM)
    bytes=$(db_bytes b-w4)
    stop_pid "$BROKER_PID"
    # restart: exec to the `ready endpoint=` line, then to the first answer
    t0=$(now_ms)
    start_broker b-w4 "$dur"
    t1=$(now_ms)
    "$BIN/taskq-bench" ready --broker "$EP" --slots 0
    t2=$(now_ms)
    rss2=$(rss_kb "$BROKER_PID" VmRSS)
    emit "{\"bench\":\"taskq\",\"workload\":\"w4_backlog\",\"durability\":\"$dur\",\"tasks\":$W4_N,\"rss_kb\":$rss,\"hwm_kb\":$hwm,\"db_bytes\":$bytes,\"restart_ready_ms\":$((t1 - t0)),\"restart_answer_ms\":$((t2 - t0)),\"rss_after_restart_kb\":$rss2}"
    start_worker "$EP" "$W1_SLOTS"
    emit "$("$BIN/taskq-bench" drain --broker "$EP" -N "$W4_N" --seconds "$W4_DRAIN_S" --label "$dur")"
    stop_pid "$WORKER_PID"
    stop_pid "$BROKER_PID"
fi

/usr/bin/python3 "$ROOT/bench/report.py" "$BENCH_OUT" >&2
