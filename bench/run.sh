#!/usr/bin/env bash
# bench/run.sh - taskq benchmark W1..W5 in one command (docs/performance.md).
# Builds build-bench (Release) if needed, starts its own brokers and workers
# on 127.0.0.1, prints one JSON line per result on stdout (also written to
# $BENCH_OUT) and a table on stderr. Every process it starts is killed at exit.
#
# Sizes (env): W1_N=50000 W1_CHUNK=20000 W2_N=2000 W3_N=200 W3_PRIMES=100000
#   W4_N=1000000 W4_DRAIN_S=30 WORKLOADS="w1 w2 w3 w4" DURABILITIES="full normal"
#   W1_SLOTS=2 (worker -n for W1/W2/W4/W5)  BUILD=dir  BENCH_KEEP=1 keeps the temp dir
#   W5: the W1 shape with the dispatch policy engaged (5 queues weighted
#   5,4,3,2,1 through the worker's -Q, 10 limits that never bind) against the
#   bare W1 path, alternated W5_REPEAT times on fresh brokers; prints both
#   and the median ratio. W5_N=20000 W5_CHUNK=W5_N W5_REPEAT=3
#   W5_DURABILITY=full
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
W5_N=${W5_N:-20000}
W5_CHUNK=${W5_CHUNK:-$W5_N}
W5_REPEAT=${W5_REPEAT:-3}
W5_DURABILITY=${W5_DURABILITY:-full}
W5_QUEUES="w5q1=5,w5q2=4,w5q3=3,w5q4=2,w5q5=1"
WORKLOADS=${WORKLOADS:-w1 w2 w3 w4 w5}
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

if has w5; then
    dur=$W5_DURABILITY
    for r in $(seq "$W5_REPEAT"); do
        log "W5 run $r/$W5_REPEAT: bare W1 path, $W5_N echo, durability=$dur, worker -n $W1_SLOTS"
        start_broker "b-w5bare-$r" "$dur"
        start_worker "$EP" "$W1_SLOTS"
        line=$("$BIN/taskq-bench" w5 --broker "$EP" -N "$W5_N" --chunk "$W5_CHUNK" --queues 0 --limits 0 --label "$dur")
        emit "$line"
        stop_pid "$WORKER_PID"
        stop_pid "$BROKER_PID"
        log "W5 run $r/$W5_REPEAT: 5 weighted queues ($W5_QUEUES) + 10 limits"
        start_broker "b-w5-$r" "$dur"
        WORKER_ARGS="${WORKER_ARGS:-} -Q $W5_QUEUES" start_worker "$EP" "$W1_SLOTS"
        line=$("$BIN/taskq-bench" w5 --broker "$EP" -N "$W5_N" --chunk "$W5_CHUNK" --queues 5 --limits 10 --label "$dur")
        emit "$line"
        stop_pid "$WORKER_PID"
        stop_pid "$BROKER_PID"
    done
    # medians of the alternated runs, and the policy path's share of the bare one
    line=$(/usr/bin/python3 - "$BENCH_OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
w5 = [r for r in rows if r.get("workload") == "w5"]
bare = [r["rate"] for r in w5 if r["queues"] == 0 and r["limits"] == 0]
pol = [r["rate"] for r in w5 if r["queues"] > 0 or r["limits"] > 0]
b, p = statistics.median(bare), statistics.median(pol)
# the runs alternate (bare, policy, bare, ...): each pair ran at nearly the
# same time, so the median of the pairs' ratios is robust to a machine whose
# speed drifts during the benchmark
pairs = statistics.median(q / r for r, q in zip(bare, pol))
print(json.dumps({"bench": "taskq", "workload": "w5_compare", "durability": w5[0]["durability"],
                  "runs": len(bare), "bare_rate": round(b, 1), "policy_rate": round(p, 1),
                  "policy_vs_bare": round(p / b, 3), "pair_ratio_median": round(pairs, 3),
                  "bare_rates": bare, "policy_rates": pol},
                 separators=(",", ":")))
PY
)
    emit "$line"
    log "W5: 5 weighted queues + 10 limits vs bare W1 (median tasks/s): $line"
fi

/usr/bin/python3 "$ROOT/bench/report.py" "$BENCH_OUT" >&2
