#!/usr/bin/env bash
# bench/bench_daemon.sh [POLLS] [BIN]: CPU time and memory of `bmsfleet run` with 2 ports × 8
# packs (two simulators at 115200 baud, interval 1 s, history in SQLite, JSON lines on stdout)
# until POLLS polls (default 1000) are done.
# Prints RSS (current and peak), CPU seconds, CPU per poll, and what 16 packs every 30 s cost.
set -euo pipefail
polls="${1:-1000}"
bin="$(realpath "${2:-build/release/bmsfleet}")"
# shellcheck source=bench/sims.sh
source "$(dirname "${BASH_SOURCE[0]}")/sims.sh"
sims_config 1 >"$dir/config.yaml"
"$bin" run -c "$dir/config.yaml" --stdout --log-level warn >"$dir/out" 2>"$dir/err" &
run=$!
pids+=("$run")
tck=$(getconf CLK_TCK)
while :; do
    n=$(grep -c '"voltage"' "$dir/out" || true)
    ((n >= polls)) && break
    kill -0 "$run" 2>/dev/null || { cat "$dir/err" >&2; exit 1; }
    sleep 0.5
done
read -r -a stat <"/proc/$run/stat"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$run/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$run/status")
anon=$(awk '/RssAnon/ {print $2}' "/proc/$run/status")
pss=$(awk '/^Pss:/ {print $2}' "/proc/$run/smaps_rollup")
cpu_ticks=$((stat[13] + stat[14]))
kill -TERM "$run"
wait "$run" || true
awk -v n="$n" -v t="$cpu_ticks" -v hz="$tck" -v rss="$rss" -v hwm="$hwm" -v anon="$anon" \
    -v pss="$pss" 'BEGIN {
    cpu = t / hz
    printf "polls %d, RSS %.1f MB (peak %.1f MB; private anonymous %.1f MB, PSS %.1f MB), CPU %.2f s, %.0f us per poll\n",
        n, rss / 1024, hwm / 1024, anon / 1024, pss / 1024, cpu, cpu / n * 1e6
    printf "16 packs every 30 s: %.4f %% of one core\n", cpu / n * 16 / 30 * 100
}'
