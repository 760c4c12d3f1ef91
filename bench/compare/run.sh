#!/usr/bin/env bash
# bench/compare/run.sh - taskq side by side with beanstalkd (binlog),
# Celery+Redis, Gearman (gearmand, in memory) and Celery+RabbitMQ (publisher
# confirms, durable queue, rpc:// results), in the same run, on the same
# machine: the W1 (throughput) and W2 (latency) shapes of bench/run.sh, two
# worker processes each. Installs what is missing (setup.sh), starts
# everything on 127.0.0.1, prints JSON lines on stdout (also $BENCH_OUT) and a
# table with taskq's ratio to each on stderr. Every process it starts is
# killed at exit. Gearman is skipped (with a message) if gearman-bench could
# not be built (no libgearman).
#
# Sizes (env): W1_N=50000 (taskq, beanstalkd) CELERY_W1_N=5000 W2_N=2000
#   CELERY_W2_N=2000 GEARMAN_W1_N=W1_N GEARMAN_W2_N=W2_N GEARMAN_W1_CHUNK=1000
#   (jobs in flight) GEARMAND_THREADS=1 CELERY_AMQP_W1_N=5000
#   CELERY_AMQP_W2_N=CELERY_W2_N DURABILITIES="full normal" (taskq)
#   BENCH_KEEP=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
. "$ROOT/bench/lib.sh"
. "$HERE/setup.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

W1_N=${W1_N:-50000}
W1_CHUNK=${W1_CHUNK:-20000}
W2_N=${W2_N:-2000}
CELERY_W1_N=${CELERY_W1_N:-5000}
CELERY_W2_N=${CELERY_W2_N:-2000}
GEARMAN_W1_N=${GEARMAN_W1_N:-$W1_N}
GEARMAN_W2_N=${GEARMAN_W2_N:-$W2_N}
GEARMAN_W1_CHUNK=${GEARMAN_W1_CHUNK:-1000}
CELERY_AMQP_W1_N=${CELERY_AMQP_W1_N:-5000}
CELERY_AMQP_W2_N=${CELERY_AMQP_W2_N:-$CELERY_W2_N}
DURABILITIES=${DURABILITIES:-full normal}
BENCH_OUT=${BENCH_OUT:-$BENCH_TMP/compare.jsonl}

compare_install
bench_build
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    # gearman-bench exists only if CMake found libgearman: configure again, in
    # case this tree was configured before setup.sh installed it
    cmake "$BUILD" >/dev/null
    cmake --build "$BUILD" -j2 --target gearman_bench >&2 || log "gearman-bench not built"
fi
: >"$BENCH_OUT"
emit() { echo "$1" | tee -a "$BENCH_OUT"; }

for dur in $DURABILITIES; do
    log "taskq W1/W2 durability=$dur, worker -n 2"
    start_broker "c-$dur" "$dur"
    start_worker "$EP" 2
    emit "$("$BIN/taskq-bench" w1 --broker "$EP" -N "$W1_N" --chunk "$W1_CHUNK" --label "$dur")"
    emit "$("$BIN/taskq-bench" w2 --broker "$EP" -N "$W2_N" --label "$dur")"
    stop_pid "$WORKER_PID"
    stop_pid "$BROKER_PID"
done

log "beanstalkd W1/W2 (binlog, 2 worker processes)"
start_beanstalkd
bpid=${PIDS[-1]}
emit "$("$BIN/bstalk-bench" w1 --port "$BEANSTALK_PORT" -N "$W1_N" --workers 2)"
emit "$("$BIN/bstalk-bench" w2 --port "$BEANSTALK_PORT" -N "$W2_N" --workers 2)"
stop_pid "$bpid"

# run_celery LOG W1_N W2_N: a Celery worker (-c 2, prefork) on the broker
# that CELERY_BENCH_REDIS or CELERY_BENCH_AMQP names, then W1 and W2
run_celery() {
    # its own process group, so that the prefork children go with it
    (cd "$HERE" && exec setsid /usr/bin/python3 -m celery -A celery_bench worker -c 2 \
        --pool prefork -l warning >>"$BENCH_TMP/$1" 2>&1) &
    local cpid=$!
    PIDS+=("-$cpid")
    (cd "$HERE" && timeout 90 /usr/bin/python3 celery_bench.py ready)
    emit "$(cd "$HERE" && /usr/bin/python3 celery_bench.py w1 -N "$2")"
    emit "$(cd "$HERE" && /usr/bin/python3 celery_bench.py w2 -N "$3")"
    stop_pid "-$cpid"
}

log "Celery W1/W2 (Redis broker and backend in memory, -c 2 --pool prefork)"
start_redis
rpid=${PIDS[-1]}
export CELERY_BENCH_REDIS="redis://127.0.0.1:$REDIS_PORT"
run_celery celery.log "$CELERY_W1_N" "$CELERY_W2_N"
stop_pid "$rpid"
unset CELERY_BENCH_REDIS

if [ -x "$BIN/gearman-bench" ]; then
    log "Gearman W1/W2 (gearmand in memory: jobs not durable; 2 worker processes)"
    start_gearmand
    emit "$("$BIN/gearman-bench" w1 --port "$GEARMAN_PORT" -N "$GEARMAN_W1_N" --workers 2 \
        --chunk "$GEARMAN_W1_CHUNK")"
    emit "$("$BIN/gearman-bench" w2 --port "$GEARMAN_PORT" -N "$GEARMAN_W2_N" --workers 2)"
    stop_pid "$GEARMAND_PID"
else
    log "no $BIN/gearman-bench (libgearman missing at configure): Gearman skipped"
fi

log "Celery W1/W2 (RabbitMQ, publisher confirms, durable queue; rpc:// results; -c 2 prefork)"
start_rabbitmq
export CELERY_BENCH_AMQP="amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT//"
run_celery celery-amqp.log "$CELERY_AMQP_W1_N" "$CELERY_AMQP_W2_N"
stop_rabbitmq
unset CELERY_BENCH_AMQP

/usr/bin/python3 "$ROOT/bench/report.py" "$BENCH_OUT" >&2
