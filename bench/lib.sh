# bench/lib.sh - shared by bench/run.sh and bench/compare/run.sh (sourced).
# Starts taskq processes in a private temp dir, remembers every pid it
# started, and kills exactly those at exit (trap). Needs: ROOT, BUILD.

BIN="$BUILD/bin"
BENCH_TMP=${BENCH_TMP:-$(mktemp -d /tmp/taskq-bench-XXXXXX)}
PIDS=()

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        # bounded wait, then SIGKILL: cleanup must never hang
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
    if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$BENCH_TMP"; else echo "kept $BENCH_TMP" >&2; fi
}

log() { echo "[bench $(date +%T)] $*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Builds the Release tree if a binary is missing (cmake is incremental anyway).
bench_build() {
    if [ -z "${BENCH_NO_BUILD:-}" ]; then
        if [ ! -f "$BUILD/CMakeCache.txt" ]; then
            cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTASKQ_WERROR=ON >&2
        fi
        cmake --build "$BUILD" -j2 --target taskq-broker taskq-worker taskq_bench bstalk_bench >&2
    fi
}

# start_broker NAME DURABILITY [extra args]: sets BROKER_PID, EP. The db is
# $BENCH_TMP/NAME.db; waits up to 20 s for the `ready endpoint=` line.
start_broker() {
    local name=$1 dur=$2
    shift 2
    local out="$BENCH_TMP/$name.out"
    : >"$out"
    "$BIN/taskq-broker" --bind 'tcp://127.0.0.1:*' --db "$BENCH_TMP/$name.db" \
        --durability "$dur" --log-level ${BROKER_LOG:-warn} "$@" >"$out" 2>>"$BENCH_TMP/$name.log" &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    local deadline=$(($(now_ms) + 20000))
    EP=""
    while [ -z "$EP" ]; do
        EP=$(sed -n 's/^ready endpoint=//p' "$out")
        [ -n "$EP" ] && break
        if ! kill -0 "$BROKER_PID" 2>/dev/null || [ "$(now_ms)" -gt "$deadline" ]; then
            log "broker $name did not start:"; tail -20 "$BENCH_TMP/$name.log" >&2; return 1
        fi
        sleep 0.02
    done
}

# stop_pid PID: SIGTERM and wait (30 s), then SIGKILL.
stop_pid() {
    local p=$1
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    # forget it, so that cleanup never signals a recycled pid
    local keep=() q
    for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
}

# start_worker EP N: sets WORKER_PID; waits until N children are idle.
start_worker() {
    local ep=$1 n=$2
    # WORKER_ARGS: extra worker options, e.g. "--prefetch 64" (word-split)
    # shellcheck disable=SC2086
    "$BIN/taskq-worker" --broker "$ep" -n "$n" --log-level warn ${WORKER_ARGS:-} \
        >>"$BENCH_TMP/worker.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
    "$BIN/taskq-bench" ready --broker "$ep" --slots "$n" --seconds 30
}

# rss_kb PID FIELD (VmRSS or VmHWM)
rss_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# db_bytes NAME: the database with its WAL and shm files
db_bytes() { cat "$BENCH_TMP/$1".db* 2>/dev/null | wc -c; }
