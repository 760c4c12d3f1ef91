#!/usr/bin/env bash
# faults.sh - runs every fault test at full size (TASKQ_FAULT_SCALE=full):
# the process faults (it_fault_*: broker kill, worker chaos, paused worker,
# poison, long tasks, network partition) and the storage/overload ones
# (it_power_loss, it_storage_errors, it_overload, it_slow_client,
# it_history), then prints each test's result and its measured figures
# (lines with FIGURES or the checker's summary). it_fault_partition needs
# root and `ip` (else it is reported as skipped).
#
# Usage: scripts/faults.sh [BUILD_DIR] [extra ctest args]
#   BUILD_DIR defaults to build/faults (configured and built here, -Werror).
# Exits non-zero if a build or any test fails. Logs: BUILD_DIR/faults.log
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build/faults}
[ $# -gt 0 ] && shift
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2

cmake -S "$root" -B "$dir" -DTASKQ_WERROR=ON >/dev/null
cmake --build "$dir" -j"$jobs" >/dev/null

tests='^(it_fault_.*|it_power_loss|it_storage_errors|it_overload|it_slow_client|it_history)$'
log="$dir/faults.log"
rc=0
# one at a time: the figures are timings, and the machine is shared
TASKQ_FAULT_SCALE=full ctest --test-dir "$dir" -R "$tests" -V --timeout 1800 "$@" \
    >"$log" 2>&1 || rc=$?

echo "== fault tests (TASKQ_FAULT_SCALE=full), log: $log =="
# ctest -V prefixes each test's output with "<test number>: "
grep -E '^[0-9]+/[0-9]+ Test +#' "$log" | sed 's/^/  /' || true
echo "== measured figures =="
grep -E '^[0-9]+: (FIGURES|checker: submitted|.*\bmeasured\b)' "$log" | sed -E 's/^[0-9]+: /  /' || true
grep -E 'tests passed|tests failed' "$log" || true
exit "$rc"
