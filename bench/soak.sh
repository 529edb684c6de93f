#!/usr/bin/env bash
# bench/soak.sh [KILLS] [FLAP_S] [PLUGS] [TEST_BINARY]: issue 16's soak with long settings
# (default 500 kill -9 of the daemon, 600 s of broker flapping, 200 unplugs of the serial
# device): tests/test_soak.c, the same test CI runs with 100, 60 and 50. A count of 0 skips
# that part. The seed is random and printed; BMSFLEET_SOAK_SEED=N reruns a sequence.
# Needs the asan build (cmake --preset asan && cmake --build --preset asan), or give another
# build's test_soak. Takes about 3 s per kill, 3 s per unplug, plus the flapping.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
export BMSFLEET_SOAK_KILLS="${1:-500}" BMSFLEET_SOAK_FLAP_S="${2:-600}" \
    BMSFLEET_SOAK_PLUGS="${3:-200}"
bench_run soak "${4:-build/asan/tests/test_soak}" asan "$BMSFLEET_SOAK_KILLS kills, \
$BMSFLEET_SOAK_FLAP_S s of broker flapping, $BMSFLEET_SOAK_PLUGS unplugs"
