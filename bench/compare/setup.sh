#!/usr/bin/env bash
# bench/compare/setup.sh - the other queues of the comparison, from Debian
# packages: beanstalkd, redis-server, python3-celery, python3-redis (Celery's
# Redis transport is kombu's, which needs only python3-redis; python3-kombu
# comes with python3-celery). Run it to install what is missing (apt-get, as
# root). Sourced (by bench/compare/run.sh, after bench/lib.sh) it also gives
# start_redis and start_beanstalkd, which listen on 127.0.0.1 only, on a free
# port, and record their pids in PIDS for the caller's cleanup trap.

compare_install() {
    local missing=() p
    for p in beanstalkd redis-server python3-celery python3-redis; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        # no daemons from the packages' own start scripts: the bench starts its own
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
    fi
    /usr/bin/python3 -c 'import celery, redis' || { echo "python3-celery/redis unusable" >&2; return 1; }
}

# A port nobody listens on now (bound to 127.0.0.1:0 and released).
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s).
wait_port() {
    local i
    for i in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# start_redis: in memory only (no RDB snapshots, no AOF). Sets REDIS_PORT.
start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --daemonize no --logfile "$BENCH_TMP/redis.log" --dir "$BENCH_TMP" &
    PIDS+=($!)
    wait_port "$REDIS_PORT"
}

# start_beanstalkd: with a binlog in BENCH_TMP/binlog (fsync at most every
# 50 ms, beanstalkd's default). Sets BEANSTALK_PORT.
start_beanstalkd() {
    BEANSTALK_PORT=$(free_port)
    mkdir -p "$BENCH_TMP/binlog"
    beanstalkd -l 127.0.0.1 -p "$BEANSTALK_PORT" -b "$BENCH_TMP/binlog" \
        2>>"$BENCH_TMP/beanstalkd.log" &
    PIDS+=($!)
    wait_port "$BEANSTALK_PORT"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    compare_install
fi
