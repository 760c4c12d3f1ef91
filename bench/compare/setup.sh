#!/usr/bin/env bash
# bench/compare/setup.sh - the other queues of the comparison, from Debian
# packages: beanstalkd, redis-server, python3-celery, python3-redis (Celery's
# Redis transport is kombu's, which needs only python3-redis; python3-kombu
# comes with python3-celery), rabbitmq-server and python3-amqp (Celery's AMQP
# transport), gearman-job-server (gearmand) and libgearman-dev (for
# bench/compare/gearman_bench.c). Run it to install what is missing (apt-get,
# as root; the packages' own daemons are not started). Sourced (by
# bench/compare/run.sh, after bench/lib.sh) it also gives start_redis,
# start_beanstalkd, start_gearmand and start_rabbitmq, which listen on
# 127.0.0.1 only, on free ports, and record their pids in PIDS for the
# caller's cleanup trap.

compare_install() {
    local missing=() p
    for p in beanstalkd redis-server python3-celery python3-redis python3-amqp \
        rabbitmq-server gearman-job-server libgearman-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        # no daemons from the packages' own start scripts (rabbitmq-server,
        # gearman-job-server, redis-server would start system-wide ones, with
        # an epmd on 4369): the bench starts its own. policy-rc.d says so to
        # invoke-rc.d; one already there (Docker images have one) is kept.
        local policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        fi
        local rc=0
        apt-get update >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                "${missing[@]}" >&2 || rc=$?
        [ -z "$policy" ] || rm -f "$policy"
        [ "$rc" -eq 0 ] || return "$rc"
    fi
    /usr/bin/python3 -c 'import celery, redis, amqp' ||
        { echo "python3-celery/redis/amqp unusable" >&2; return 1; }
}

# A port nobody listens on now (bound to 127.0.0.1:0 and released).
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS [PID]]: until something accepts on 127.0.0.1:PORT
# (10 s by default); fails at once if PID (a process, or -PGID) is gone.
wait_port() {
    local _
    for _ in $(seq $((${2:-10} * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        if [ -n "${3:-}" ] && ! kill -0 -- "$3" 2>/dev/null; then
            echo "process $3 exited before listening on 127.0.0.1:$1" >&2
            return 1
        fi
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

# start_gearmand: gearmand with its in-memory queue only (no persistent
# queue module: jobs are lost if it stops, unlike taskq's, beanstalkd's
# binlog or RabbitMQ's durable queues). GEARMAND_THREADS I/O threads (1 by
# default: on this 2-core machine it measured faster than gearmand's 4).
# Sets GEARMAN_PORT, GEARMAND_PID.
start_gearmand() {
    GEARMAN_PORT=$(free_port)
    gearmand --listen 127.0.0.1 --port "$GEARMAN_PORT" --threads "${GEARMAND_THREADS:-1}" \
        --log-file "$BENCH_TMP/gearmand.log" --pid-file "$BENCH_TMP/gearmand.pid" \
        2>>"$BENCH_TMP/gearmand.err" &
    GEARMAND_PID=$!
    PIDS+=("$GEARMAND_PID")
    wait_port "$GEARMAN_PORT" 10 "$GEARMAND_PID"
}

# start_rabbitmq: a private RabbitMQ node (rabbitmq-server's scripts run
# directly, as the calling user): node bench-PID@localhost, data, logs, config,
# Erlang cookie (HOME) under $BENCH_TMP/rabbitmq, AMQP and Erlang
# distribution on free ports of 127.0.0.1, no plugins, and its own epmd on a
# free port (ERL_EPMD_PORT), started here in the foreground so that no
# system epmd on 4369 is used or left behind. The node runs in its own
# process group (its script, beam.smp, erl_child_setup), recorded as -PGID.
# Waits for the AMQP listener (RabbitMQ opens it last in its boot; up to 90 s).
# Sets RABBITMQ_PORT, RABBITMQ_NODE, RABBITMQ_PGID, RABBITMQ_EPMD_PID.
start_rabbitmq() {
    local d="$BENCH_TMP/rabbitmq" epmd_port dist_port
    mkdir -p "$d/home" "$d/mnesia" "$d/log"
    RABBITMQ_PORT=$(free_port)
    dist_port=$(free_port)
    epmd_port=$(free_port)
    RABBITMQ_NODE="bench-$$@localhost"
    printf 'listeners.tcp.1 = 127.0.0.1:%s\n' "$RABBITMQ_PORT" >"$d/rabbitmq.conf"
    echo '[].' >"$d/enabled_plugins"
    epmd -port "$epmd_port" -address 127.0.0.1 2>>"$d/epmd.log" &
    RABBITMQ_EPMD_PID=$!
    PIDS+=("$RABBITMQ_EPMD_PID")
    wait_port "$epmd_port" 10 "$RABBITMQ_EPMD_PID" || return 1
    # RABBITMQ_CONF_ENV_FILE: not /etc/rabbitmq/rabbitmq-env.conf
    (export HOME="$d/home" ERL_EPMD_PORT="$epmd_port" RABBITMQ_NODENAME="$RABBITMQ_NODE" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBITMQ_PORT" \
        RABBITMQ_DIST_PORT="$dist_port" RABBITMQ_MNESIA_BASE="$d/mnesia" \
        RABBITMQ_LOG_BASE="$d/log" RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
        RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
        exec setsid /usr/lib/rabbitmq/bin/rabbitmq-server >>"$d/server.out" 2>&1) &
    RABBITMQ_PGID=$!
    PIDS+=("-$RABBITMQ_PGID")
    local t0
    t0=$(now_ms)
    if ! wait_port "$RABBITMQ_PORT" 90 "-$RABBITMQ_PGID"; then
        tail -20 "$d/server.out" >&2
        return 1
    fi
    log "rabbitmq $RABBITMQ_NODE up in $(($(now_ms) - t0)) ms"
}

# stop_rabbitmq: the node's process group, then its epmd.
stop_rabbitmq() {
    stop_pid "-$RABBITMQ_PGID"
    stop_pid "$RABBITMQ_EPMD_PID"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    compare_install
fi
