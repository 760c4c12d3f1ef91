#!/usr/bin/env bash
# check-install.sh BUILD_DIR: installs the build into a temporary prefix and
# compiles every example against the installed header and library through
# pkg-config only, as a user of libtaskq would. Run by ctest (examples_installed).
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
for src in "$root"/examples/*.c; do
    out="$prefix/$(basename "$src" .c)"
    cc -std=c11 -Wall -Wextra -Werror "$src" -o "$out" $(pkg-config --cflags --libs taskq) \
        -Wl,-rpath,"$prefix/lib"
    echo "ok: $(basename "$src") compiles and links against the installed taskq.h"
done
# the installed library must run: an unreachable broker is a clean error
"$prefix/submit_and_wait" tcp://127.0.0.1:1 >/dev/null 2>&1 && exit 1
echo "ok: installed submit_and_wait runs"
