#!/usr/bin/env bash
# bench/fault_soak.sh [FAULTS] [PORTS] [PACKS] [TEST_BINARY]: issue 16's fault soak with long
# settings (default 100 000 faults over 16 ports x 32 packs): tests/test_fault_soak.c, the same
# test CI runs with 3000 faults over 8 x 32. The simulators answer every 0x42 with a fault of the
# seeded mix (`bmsfleet simulate --mix soak`: noise, a late answer of another address, a second
# master, garbage, bad checksums, truncation, silence, RTN error codes, another family's VER),
# unpaced, and log the values of every valid answer; afterwards every stored sample must equal
# a valid answer sent, none missing, and the daemon's counters must equal the faults of each
# class for every pack. BMSFLEET_FAULT_SEED=N changes the mix (default 1). Needs the asan build
# (cmake --preset asan && cmake --build --preset asan), or give another build's test_fault_soak.
# Takes about 5 min for 100 000 faults (about 330 faults a second with 512 packs).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
export BMSFLEET_FAULT_TARGET="${1:-100000}" BMSFLEET_FAULT_PORTS="${2:-16}" \
    BMSFLEET_FAULT_PACKS="${3:-32}"
# a generous bound: the run ends when the faults are injected
export BMSFLEET_FAULT_MAX_S="${BMSFLEET_FAULT_MAX_S:-$((BMSFLEET_FAULT_TARGET / 20 + 60))}"
bench_run fault_soak "${4:-build/asan/tests/test_fault_soak}" asan "$BMSFLEET_FAULT_TARGET \
faults, $BMSFLEET_FAULT_PORTS ports x $BMSFLEET_FAULT_PACKS packs"
