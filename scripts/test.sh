#!/usr/bin/env bash
# test.sh - installs what is missing, then builds taskq twice and runs the
# whole test suite in both builds:
#   build/normal  -Wall -Wextra -Werror
#   build/asan    the same with AddressSanitizer + UndefinedBehaviorSanitizer
# Exits non-zero if any build or test fails. Usage: scripts/test.sh [ctest args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/deps.sh"
taskq_install_deps

jobs=$(nproc 2>/dev/null || echo 2)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_suite() {
    local name=$1; shift
    local dir="$root/build/$name"
    echo "== taskq: $name build =="
    cmake -S "$root" -B "$dir" -DTASKQ_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    echo "== taskq: $name tests =="
    (cd "$dir" && ctest --output-on-failure --timeout 600 ${CTEST_ARGS:-})
}

start=$(date +%s)
run_suite normal -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite asan -DCMAKE_BUILD_TYPE=Debug -DTASKQ_SANITIZE=ON
echo "== taskq: all tests passed in $(( $(date +%s) - start )) s =="
