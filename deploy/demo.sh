#!/usr/bin/env bash
# deploy/demo.sh: the whole bmsfleet chain on one machine, without hardware. Builds the
# `default` preset, then starts in a temporary directory: a private mosquitto on a free loopback
# port (never the system broker on 1883), two simulated RS485 buses (Daren packs on one, PACE
# packs on the other), the daemon polling both into SQLite and publishing to that broker with
# Home Assistant discovery, and `bmsfleet top`, a live view of the bank, until Ctrl-C. Then it
# stops everything it started and removes the directory. docs/demo.md explains what to look at.
#
# Environment (all optional):
#   DEMO_PACKS       addresses on each bus (default 1-4; e.g. 1-8 or 1,3,7)
#   DEMO_PROTOCOL_A  protocol of the first bus (default daren)
#   DEMO_PROTOCOL_B  protocol of the second bus (default pace)
#   DEMO_TIME_SCALE  simulated seconds per second (default 30: values move visibly)
#   DEMO_INTERVAL    poll interval of the daemon in seconds (default 5)
#   DEMO_PORT        broker port (default: a free one)
#   DEMO_LISTEN      broker address (default 127.0.0.1; 0.0.0.0 for Home Assistant on the LAN)
#   DEMO_PAUSE       seconds to read the commands before the live view (default 10)
#   DEMO_FAULT       a simulator fault on the first bus, e.g. silent:3 (pack a3 never answers
#                    and goes offline); see `bmsfleet simulate --help`
#   DEMO_BIN         an already built bmsfleet to use instead of building one
set -euo pipefail

# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo_root

packs="${DEMO_PACKS:-1-4}"
protocol_a="${DEMO_PROTOCOL_A:-daren}"
protocol_b="${DEMO_PROTOCOL_B:-pace}"
time_scale="${DEMO_TIME_SCALE:-30}"
interval="${DEMO_INTERVAL:-5}"
listen="${DEMO_LISTEN:-127.0.0.1}"
pause="${DEMO_PAUSE:-10}"

[[ "$interval" =~ ^[1-9][0-9]*$ ]] || die "DEMO_INTERVAL must be a whole number of seconds"
[[ "$pause" =~ ^[0-9]+$ ]] || die "DEMO_PAUSE must be a whole number of seconds"
if [[ -n "${DEMO_PORT:-}" ]]; then
    if ! [[ "$DEMO_PORT" =~ ^[1-9][0-9]{0,4}$ ]] || ((DEMO_PORT > 65535)); then
        die "DEMO_PORT must be a port number (1..65535)"
    fi
fi

if [[ -n "${DEMO_BIN:-}" ]]; then
    ensure_packages mosquitto mosquitto-clients sqlite3
    bin="$(cd "$(dirname "$DEMO_BIN")" && pwd -P)/$(basename "$DEMO_BIN")"
else
    ensure_packages "${BMSFLEET_BUILD_PACKAGES[@]}" mosquitto mosquitto-clients sqlite3
    build_preset default
    bin="$REPO_ROOT/build/default/bmsfleet"
fi
[[ -x "$bin" ]] || die "no bmsfleet binary at $bin"
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
[[ -x "$mosquitto_bin" ]] || die "mosquitto not found (package mosquitto)"

dir=""
broker_pid=""
daemon_pid=""
top_pid=""
sim_pids=()

# (These functions run from the traps below; shellcheck cannot see that.)
# shellcheck disable=SC2317
# stop_pid PID [SECONDS]: TERM, up to SECONDS (default 3) to go, then KILL; reaps it. Only ever
# our own children.
stop_pid() {
    local i
    if kill -TERM "$1" 2>/dev/null; then
        for ((i = 0; i < ${2:-3} * 10; i++)); do
            kill -0 "$1" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}

# shellcheck disable=SC2317
# Stops everything this script started, the daemon before the simulators and the broker it
# talks to, and removes the temp dir; runs once, on any exit.
cleanup() {
    local pid
    trap - EXIT INT TERM HUP
    trap '' PIPE # output piped to a reader that Ctrl-C ended: finish the cleanup all the same
    if [[ -n "$top_pid" ]]; then
        stop_pid "$top_pid"
    fi
    if [[ -n "$daemon_pid" ]]; then
        stop_pid "$daemon_pid" 15 # it commits what it holds and says goodbye to the broker
    fi
    for pid in "${sim_pids[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n "$broker_pid" ]]; then
        stop_pid "$broker_pid"
    fi
    if [[ -n "$dir" ]]; then
        rm -rf -- "$dir"
        log "demo stopped: everything it started has ended, $dir removed" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_accepts() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A loopback port the kernel says is free right now (as tests/broker.h picks it); perl-base is
# part of every Debian system. Without perl: a random high port that nothing answers on.
free_port() {
    local port i
    if perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
            LocalPort => 0, Proto => "tcp", Listen => 1) or exit 1; print $s->sockport, "\n";' \
        2>/dev/null; then
        return 0
    fi
    for ((i = 0; i < 50; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! port_accepts "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# A whole address list (1-4, 0x01-0x04, 1,3,7) as one decimal address per line.
expand_addresses() {
    local part lo hi a
    local -a parts
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        [[ "$part" =~ ^(0[xX][0-9a-fA-F]+|[0-9]+)(-(0[xX][0-9a-fA-F]+|[0-9]+))?$ ]] || return 1
        lo="${BASH_REMATCH[1]}"
        hi="${BASH_REMATCH[3]:-$lo}"
        if [[ "$lo" == 0[xX]* ]]; then lo=$((lo)); else lo=$((10#$lo)); fi
        if [[ "$hi" == 0[xX]* ]]; then hi=$((hi)); else hi=$((10#$hi)); fi
        ((lo <= hi && hi <= 254)) || return 1
        for ((a = lo; a <= hi; a++)); do
            echo "$a"
        done
    done
}

# A YAML single-quoted scalar.
yaml_quote() {
    printf "'%s'" "${1//\'/\'\'}"
}

# wait_for_link PID LINK LOGFILE: until the simulator made its pty link, or die with its log.
wait_for_link() {
    local i status=0
    for ((i = 0; i < 50; i++)); do
        [[ -e "$2" ]] && return 0
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1" || status=$?
            cat "$3" >&2
            die "the simulator exited (status $status) before creating $2"
        fi
        sleep 0.1
    done
    cat "$3" >&2
    die "the simulator did not create $2 within 5 s"
}

address_lines="$(expand_addresses "$packs")" ||
    die "DEMO_PACKS: bad address list '$packs' (e.g. 1-4, 0x01-0x04, 1,3,7; at most 254)"
mapfile -t addresses <<<"$address_lines"

dir="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-demo.XXXXXX")"
db="$dir/history.db"

# --- the broker: private, on its own port, nothing kept on disk
start_broker() {
    local attempt i
    for ((attempt = 0; attempt < 3; attempt++)); do
        port="${DEMO_PORT:-$(free_port)}" || die "no free TCP port found on 127.0.0.1"
        if port_accepts "$port"; then
            if [[ -n "${DEMO_PORT:-}" ]]; then
                die "port $port is already in use: choose another DEMO_PORT"
            fi
            continue
        fi
        {
            echo "# written by deploy/demo.sh; a real broker needs users or TLS"
            echo "listener $port $listen"
            echo "allow_anonymous true"
            echo "persistence false"
            echo "log_dest file $dir/mosquitto.log"
            printf 'log_type %s\n' error warning notice information
            echo "connection_messages true"
            if ((EUID == 0)); then
                # as root mosquitto would switch to its own user, who cannot write in $dir
                echo "user root"
            fi
        } >"$dir/mosquitto.conf"
        "$mosquitto_bin" -c "$dir/mosquitto.conf" >"$dir/mosquitto.out" 2>&1 &
        broker_pid=$!
        for ((i = 0; i < 100; i++)); do
            kill -0 "$broker_pid" 2>/dev/null || break
            if port_accepts "$port"; then
                return 0
            fi
            sleep 0.1
        done
        stop_pid "$broker_pid"
        broker_pid=""
        cat "$dir/mosquitto.out" "$dir/mosquitto.log" >&2 2>/dev/null || true
        if [[ -n "${DEMO_PORT:-}" ]]; then
            break # a fixed port: no other to try (a free one may have been taken meanwhile)
        fi
    done
    die "mosquitto did not start (configuration: $dir/mosquitto.conf)"
}
port=""
start_broker
log "mosquitto listening on $listen:$port (log: $dir/mosquitto.log)"

# --- two buses of simulated packs
seed=1
for bus in bus-a bus-b; do
    protocol="$protocol_a"
    [[ "$bus" == bus-b ]] && protocol="$protocol_b"
    sim_args=(--protocol "$protocol" --addresses "$packs" --link "$dir/$bus" --seed "$seed"
        --time-scale "$time_scale")
    if [[ "$bus" == bus-a && -n "${DEMO_FAULT:-}" ]]; then
        sim_args+=(--fault "$DEMO_FAULT")
        log "fault on bus-a: $DEMO_FAULT"
    fi
    log "simulator: $protocol packs $packs on $dir/$bus (time x$time_scale)"
    "$bin" simulate "${sim_args[@]}" >"$dir/simulator-$bus.log" 2>&1 &
    sim_pids+=($!)
    wait_for_link "$!" "$dir/$bus" "$dir/simulator-$bus.log"
    seed=$((seed + 1))
done

# --- the daemon's configuration: both buses in one bank, history here, MQTT to our broker
{
    echo "# written by deploy/demo.sh for this run"
    echo "node: {id: demo, name: bmsfleet demo}" # MQTT client bmsfleet-demo
    echo "log: {level: info}"
    echo "ports:"
    for bus in bus-a bus-b; do
        protocol="$protocol_a"
        letter=a
        if [[ "$bus" == bus-b ]]; then
            protocol="$protocol_b"
            letter=b
        fi
        echo "  - name: $bus"
        echo "    device: $(yaml_quote "$dir/$bus")"
        echo "    protocol: $protocol"
        echo "    interval_s: $interval"
        echo "    packs:"
        for a in "${addresses[@]}"; do
            echo "      - { address: $a, id: $letter$a, bank: house }"
        done
    done
    echo "banks:"
    echo "  - { id: house, name: House bank }"
    echo "storage:"
    echo "  path: $(yaml_quote "$db")"
    echo "  commit_interval_s: 2"
    echo "mqtt:"
    echo "  host: 127.0.0.1"
    echo "  port: $port"
} >"$dir/config.yaml"
"$bin" check -c "$dir/config.yaml" || die "the generated configuration $dir/config.yaml is invalid"

log "daemon: bmsfleet run -c $dir/config.yaml (log: $dir/daemon.log)"
"$bin" run -c "$dir/config.yaml" >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
daemon_died() {
    local status=0
    wait "$daemon_pid" || status=$?
    daemon_pid=""
    cat "$dir/daemon.log" >&2
    die "the daemon exited (status $status)"
}
for ((i = 0; i < 100; i++)); do
    [[ -e "$db" ]] && break
    kill -0 "$daemon_pid" 2>/dev/null || daemon_died
    sleep 0.1
done
[[ -e "$db" ]] || die "the daemon did not create $db within 10 s (log: $dir/daemon.log)"

today="$(date +%F)"
tomorrow="$(date -d tomorrow +%F)"
if [[ "$listen" == 127.0.0.1 ]]; then
    ha_lan="This broker listens on 127.0.0.1 only; for a Home Assistant elsewhere on the LAN the
listener line of $dir/mosquitto.conf must read \"listener $port 0.0.0.0\": run the demo as
DEMO_LISTEN=0.0.0.0 DEMO_PORT=1884 deploy/demo.sh (anonymous access: a trusted LAN only)."
else
    ha_lan="This broker listens on $listen (\"listener $port $listen\" in $dir/mosquitto.conf),
without authentication: a trusted LAN only."
fi
cat >"$dir/what-to-try.txt" <<EOF

The whole chain is running; Ctrl-C in this terminal stops all of it. In another terminal:

  # the state of every pack and of the bank, a JSON message per sample (Ctrl-C to stop)
  mosquitto_sub -h 127.0.0.1 -p $port -v -t 'bmsfleet/#'
  # the Home Assistant discovery configurations (retained: they arrive at once)
  mosquitto_sub -h 127.0.0.1 -p $port -v -t 'homeassistant/#'
  # the history (read-only: safe while the daemon writes)
  sqlite3 -readonly -header -column $db 'SELECT * FROM v_bank_latest'
  sqlite3 -readonly -header -column $db 'SELECT * FROM v_latest'
  sqlite3 -readonly -header -column $db 'SELECT time, pack, kind, detail FROM v_events'
  # today's samples as CSV
  $bin export --db $db --from $today --to $tomorrow | head
  # logs
  tail -f $dir/daemon.log $dir/mosquitto.log

Home Assistant: Settings > Devices & services > Add integration > MQTT, broker = the address
of this machine, port $port, no user name. The bank "House bank" and the packs appear by
themselves as devices of "bmsfleet demo".
$ha_lan

These commands are also in $dir/what-to-try.txt.
EOF
cat "$dir/what-to-try.txt"
# The chain runs: from now on Ctrl-C is the way to stop the demo, exit status 0.
trap 'exit 0' INT

# The live view starts once the first samples are stored, after a pause to read the above.
log "the live view starts in $pause s (Enter: now; Ctrl-C stops everything)"
start=$SECONDS
while :; do
    kill -0 "$daemon_pid" 2>/dev/null || daemon_died
    samples="$(sqlite3 -readonly "$db" 'SELECT EXISTS (SELECT 1 FROM samples)' 2>/dev/null ||
        echo 0)"
    if ((SECONDS - start >= 60)); then
        log "no samples after 60 s; see $dir/daemon.log"
        break
    fi
    if [[ "$samples" =~ ^[0-9]+$ ]] && ((samples > 0 && SECONDS - start >= pause)); then
        break
    fi
    if [[ -t 0 ]]; then
        if read -r -t 1 _; then
            pause=0 # Enter: as soon as there are samples
        fi
    else
        sleep 1
    fi
done

# In the foreground for the user (terminal stdin/stdout), but run as a child we `wait` for:
# bash runs a TERM/HUP trap only after a foreground command returns, while `wait` is
# interrupted at once, so `kill <this script>` also cleans up. Ctrl-C reaches the whole
# process group; the INT trap then stops whatever is still running.
"$bin" top --db "$db" --interval 2 <&0 &
top_pid=$!
status=0
wait "$top_pid" || status=$?
top_pid=""
exit "$status"
