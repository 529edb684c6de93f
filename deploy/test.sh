#!/usr/bin/env bash
# deploy/test.sh: the project's test command. Installs what is missing, builds the `asan`
# preset (Debug, ASan+UBSan, -Werror) and runs the whole CTest suite; exits non-zero on any
# failure. Extra arguments go to ctest, e.g. `deploy/test.sh -R serial` or `-V`.
set -euo pipefail

# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo_root

# Tests run the real binary against the simulator, a private mosquitto (started by the tests
# on a free port; a system broker on 1883 is neither used nor touched), sqlite3 and valgrind.
# groff-base: tests/man_pages.sh renders the man pages (a minimal Debian has no groff).
# prometheus (promtool) and chromium (headless): tests/test_http.c checks /metrics and opens the
# status page in a real browser; it fails without them (chromium is about 110 MB to download,
# 360 MB installed, a minute or two of apt).
ensure_packages "${BMSFLEET_BUILD_PACKAGES[@]}" \
    mosquitto mosquitto-clients sqlite3 valgrind socat openssl groff-base prometheus chromium

# Defaults first so that values already in the environment override them.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

build_preset asan

log "running tests (ctest --preset asan $*)"
ctest_log="$(mktemp "${TMPDIR:-/tmp}/bmsfleet-ctest.XXXXXX")"
trap 'rm -f "$ctest_log"' EXIT

rc=0
ctest --preset asan "$@" 2>&1 | tee "$ctest_log" || rc=$?

echo
echo "==================== ctest summary ===================="
if grep -q 'tests passed, ' "$ctest_log"; then
    sed -n '/tests passed, /,$p' "$ctest_log"
else
    tail -n 5 "$ctest_log"
fi
if ((rc == 0)); then
    echo "RESULT: all tests passed"
else
    echo "RESULT: FAILED (ctest exit status $rc)"
fi
exit "$rc"
