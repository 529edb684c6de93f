#!/usr/bin/env bash
# deploy/demo.sh: a live look at bmsfleet without any hardware. Builds the `default` preset,
# starts the built-in simulator (a bank of BMS packs on a pseudo-terminal) and shows a table
# of what `bmsfleet read` gets from it, redrawn every 2 s, until Ctrl-C.
#
# Environment: DEMO_PROTOCOL (default daren), DEMO_PACKS (address list, default 1-4).
#
# Later issues extend this to the full chain: the daemon (`bmsfleet run`) polling the
# simulator, writing to SQLite and publishing to a private local mosquitto (never the system
# broker on 1883), with sqlite3/mosquitto_sub views of the result.
set -euo pipefail

# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo_root

protocol="${DEMO_PROTOCOL:-daren}"
packs="${DEMO_PACKS:-1-4}"
bin="build/default/bmsfleet"

ensure_packages "${BMSFLEET_BUILD_PACKAGES[@]}" mosquitto mosquitto-clients sqlite3
build_preset default
[[ -x "$bin" ]] || die "build did not produce $bin"

dir=""
sim_pid=""
read_pid=""

# (Both functions run from the traps below; shellcheck cannot see that.)
# shellcheck disable=SC2317
# stop_pid PID: TERM, up to 3 s to go, then KILL; reaps it. Only ever our own children.
stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null || return 0
    for ((i = 0; i < 30; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# shellcheck disable=SC2317
# Stops everything this script started and removes the temp dir; runs once, on any exit.
cleanup() {
    trap - EXIT INT TERM HUP
    if [[ -n "$read_pid" ]]; then
        stop_pid "$read_pid"
    fi
    if [[ -n "$sim_pid" ]]; then
        stop_pid "$sim_pid"
    fi
    if [[ -n "$dir" ]]; then
        rm -rf -- "$dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

dir="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-demo.XXXXXX")"
link="$dir/bms0"

log "starting simulator: $protocol packs $packs on $link"
# Its output goes to a file so it does not tear up the live table; shown below and on failure.
"$bin" simulate --protocol "$protocol" --addresses "$packs" --link "$link" --seed 42 \
    >"$dir/simulator.log" 2>&1 &
sim_pid=$!

for ((i = 0; i < 50; i++)); do
    [[ -e "$link" ]] && break
    if ! kill -0 "$sim_pid" 2>/dev/null; then
        status=0
        wait "$sim_pid" || status=$?
        sim_pid=""
        cat "$dir/simulator.log" >&2
        die "the simulator exited (status $status) before creating $link"
    fi
    sleep 0.1
done
if [[ ! -e "$link" ]]; then
    cat "$dir/simulator.log" >&2
    die "the simulator did not create $link within 5 s"
fi
cat "$dir/simulator.log"

read_args=(--port "$link" --address "$packs" --watch 2)
if [[ "$protocol" != daren ]]; then
    read_args+=(--protocol "$protocol")
fi
log "reading packs $packs every 2 s; Ctrl-C to stop"
# In the foreground for the user (terminal stdin/stdout), but run as a child we `wait` for:
# bash runs a TERM/HUP trap only after a foreground command returns, while `wait` is
# interrupted at once, so `kill <this script>` also cleans up. Ctrl-C reaches the whole
# process group; the INT trap then stops whatever is still running.
"$bin" read "${read_args[@]}" <&0 &
read_pid=$!
status=0
wait "$read_pid" || status=$?
read_pid=""
exit "$status"
