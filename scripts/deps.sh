#!/usr/bin/env bash
# deps.sh - installs the Debian 12 packages taskq needs, only those missing.
# Sourced by demo.sh and test.sh; safe to run on its own. tzdata: time zones
# of periodic schedules (the system tz database).
set -euo pipefail

TASKQ_PACKAGES=(build-essential cmake pkg-config libzmq3-dev libmsgpack-dev
                libsqlite3-dev libjansson-dev libcmocka-dev tzdata)

taskq_install_deps() {
    local missing=()
    for p in "${TASKQ_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "taskq: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    taskq_install_deps
fi
