#!/usr/bin/env bash
# bench/bench_http.sh [REQUESTS] [BIN]: what the HTTP server costs. The daemon polls 2 ports ×
# 8 packs (two simulators at 115200 baud, interval 5 s, history in SQLite, no MQTT), first
# without `http:`, then with it. Each run: RSS and CPU over IDLE_S seconds of polling with no
# request (the server on but idle); then, with the server, REQUESTS requests (default 1000) of
# each endpoint, one after the other on a kept-alive connection (curl), and the daemon's CPU
# time per request (its user + system time, so curl's own work is not counted).
set -euo pipefail
requests="${1:-1000}"
bin="$(realpath "${2:-build/release/bmsfleet}")"
idle_s="${IDLE_S:-30}"
command -v curl >/dev/null || { echo "bench_http: curl is needed (apt-get install curl)" >&2; exit 1; }
# shellcheck source=bench/sims.sh
source "$(dirname "${BASH_SOURCE[0]}")/sims.sh"
port=$((20000 + RANDOM % 20000))
config() { # $1: 1 with the http section
    sims_config 5 house "House bank"
    if (($1)); then printf 'http:\n  port: %d\n' "$port"; fi
}
tck=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of pid $1
    local -a stat
    read -r -a stat <"/proc/$1/stat"
    echo $((stat[13] + stat[14]))
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

declare -A rss cpu
for on in 0 1; do
    config "$on" >"$dir/config.yaml"
    "$bin" run -c "$dir/config.yaml" --log-level warn >"$dir/out" 2>"$dir/err" &
    run=$!
    pids+=("$run")
    sleep 5 # the ports open, a first round of polls, a commit
    kill -0 "$run" 2>/dev/null || { cat "$dir/err" >&2; exit 1; }
    t0=$(cpu_ticks "$run")
    sleep "$idle_s"
    t1=$(cpu_ticks "$run")
    rss[$on]=$(rss_kb "$run")
    cpu[$on]=$((t1 - t0))
    if ((on)); then
        base="http://127.0.0.1:$port"
        for path in /healthz /metrics /api/latest "/api/history?pack=a1&resolution=raw" /; do
            : >"$dir/urls"
            for _ in $(seq "$requests"); do printf 'url = "%s%s"\noutput = /dev/null\n' "$base" "$path"; done >>"$dir/urls"
            size=$(curl -s -o /dev/null -w '%{size_download}' "$base$path")
            t0=$(cpu_ticks "$run")
            start=$(date +%s.%N)
            curl -s -f -K "$dir/urls"
            end=$(date +%s.%N)
            t1=$(cpu_ticks "$run")
            awk -v p="$path" -v n="$requests" -v t=$((t1 - t0)) -v hz="$tck" -v w="$(echo "$end - $start" | bc)" \
                -v b="$size" 'BEGIN {
                printf "%-38s %6d bytes: daemon CPU %.3f ms per request, %.0f requests/s\n",
                    p, b, t / hz / n * 1000, n / w }'
        done
        rss_after=$(rss_kb "$run")
    fi
    kill -TERM "$run"
    wait "$run" || true
    rm -f "$dir/history.db" "$dir/history.db-wal" "$dir/history.db-shm"
done
awk -v r0="${rss[0]}" -v r1="${rss[1]}" -v c0="${cpu[0]}" -v c1="${cpu[1]}" -v hz="$tck" \
    -v s="$idle_s" -v ra="$rss_after" 'BEGIN {
    printf "idle, %d s, 16 packs every 5 s: without http RSS %.1f MB, CPU %.3f %% of a core\n",
        s, r0 / 1024, c0 / hz / s * 100
    printf "idle, %d s, 16 packs every 5 s: with http    RSS %.1f MB, CPU %.3f %% of a core (+%.1f MB, +%.3f %%)\n",
        s, r1 / 1024, c1 / hz / s * 100, (r1 - r0) / 1024, (c1 - c0) / hz / s * 100
    printf "with http, after the requests: RSS %.1f MB\n", ra / 1024
}'
