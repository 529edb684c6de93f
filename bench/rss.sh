#!/usr/bin/env bash
# bench/rss.sh [MINUTES] [PORTS] [PACKS] [TEST_BINARY]: issue 16's flat-memory run with long
# settings (default 10 minutes over 16 ports x 32 packs: about 250 000 polls): tests/test_rss.c,
# the same test CI runs for 30 s over 8 x 32 packs. The daemon polls unpaced simulators with the
# fault mix every second into SQLite and MQTT (a private mosquitto); its VmRSS is read after a
# 60 s warm-up and every 5 s after; the test prints the first and the last figure, the peak and
# the series, and fails when the growth exceeds BMSFLEET_RSS_MAX_GROWTH_KB (default 1536).
# Measures a build without sanitizers: the default preset (cmake --preset default && cmake
# --build --preset default); give the asan build's test_rss to run it under ASan.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
export BMSFLEET_RSS_RUN_S="$((${1:-10} * 60))" BMSFLEET_RSS_PORTS="${2:-16}" \
    BMSFLEET_RSS_PACKS="${3:-32}" BMSFLEET_RSS_WARMUP_S="${BMSFLEET_RSS_WARMUP_S:-60}"
bench_run rss "${4:-build/default/tests/test_rss}" default "$BMSFLEET_RSS_RUN_S s after a \
$BMSFLEET_RSS_WARMUP_S s warm-up, $BMSFLEET_RSS_PORTS ports x $BMSFLEET_RSS_PACKS packs"
