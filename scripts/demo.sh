#!/usr/bin/env bash
# demo.sh - installs what is missing, builds taskq, and runs the main job on
# loopback: a broker (SQLite in ./.taskq-demo/taskq.db), a worker with 4
# children, and a client that submits a batch of taskq.primes and taskq.sleep
# tasks and shows them running with live progress and the worker status
# table; then results, a throughput line, and a clean poison-pill shutdown.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/deps.sh"
taskq_install_deps

build="$root/build/normal"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" \
    --target taskq-broker taskq-worker taskq_cli demo >/dev/null
bin="$build/bin"

work="$root/.taskq-demo"
mkdir -p "$work"
rm -f "$work"/taskq.db*
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# The broker prints "ready endpoint=..." once it serves; we wait for it.
exec 3< <("$bin/taskq-broker" --bind 'tcp://127.0.0.1:*' --db "$work/taskq.db" \
          2>"$work/broker.log")
broker_pid=$!
pids+=("$broker_pid")
read -r -t 10 line <&3 || { echo "broker did not start; see $work/broker.log" >&2; exit 1; }
export TASKQ_BROKER=${line#ready endpoint=}
echo "broker  pid $broker_pid at $TASKQ_BROKER, store $work/taskq.db"

"$bin/taskq-worker" -n 4 --node-id demo-node 2>"$work/worker.log" &
worker_pid=$!
pids+=("$worker_pid")
echo "worker  pid $worker_pid with 4 children (taskq-worker -n 4)"
echo

"$bin/demo" "$@"
status=$?

echo
echo "-- worker status (taskq workers) --"
"$bin/taskq" workers
echo
echo "-- stats (taskq stats) --"
"$bin/taskq" stats
echo
echo "-- shutdown: SIGTERM to the worker (warm: poison pill to each child) --"
kill -TERM "$worker_pid"
wait "$worker_pid" && echo "worker exited cleanly" || echo "worker exited with $?"
grep -iE "shutdown|stop|exit" "$work/worker.log" | tail -n 6 || true
kill -TERM "$broker_pid"
wait "$broker_pid" 2>/dev/null && echo "broker exited cleanly" || true
pids=()
exit $status
