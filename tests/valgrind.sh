#!/usr/bin/env bash
# tests/valgrind.sh BIN: runs the main code paths of a non-sanitised bmsfleet binary under
# valgrind (memcheck, leak check full) and fails on any error or leak. CI runs it on the
# release build after the ASan/UBSan suite.
set -euo pipefail
bin="$(realpath "${1:?usage: tests/valgrind.sh path/to/bmsfleet}")"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
dir="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-vg.XXXXXX")"
sim=""
cleanup() {
    [[ -n "$sim" ]] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
    rm -rf -- "$dir"
}
trap cleanup EXIT
vg=(valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all
    --error-exitcode=99 --track-fds=no
    --suppressions="$(dirname "${BASH_SOURCE[0]}")/valgrind.supp")
fails=0
check() { # check NAME EXPECTED_STATUS CMD...
    local name="$1" want="$2" st=0
    shift 2
    "${vg[@]}" "$@" >"$dir/out" 2>"$dir/err" || st=$?
    if [[ "$st" != "$want" ]]; then
        echo "valgrind: $name: exit $st, expected $want" >&2
        cat "$dir/err" >&2
        fails=$((fails + 1))
    else
        echo "valgrind: $name: clean"
    fi
}

"$bin" simulate --protocol daren --addresses 1-4 --link "$dir/bms0" --seed 3 \
    --baud 115200 --turnaround 2 >/dev/null 2>&1 &
sim=$!
for _ in $(seq 50); do [[ -e "$dir/bms0" ]] && break; sleep 0.1; done

check "decode" 0 "$bin" decode '~22014A00E002C8FD14' --command 4F
check "decode rejected" 1 "$bin" decode '~22014A00E002C8FD15'
check "read" 0 "$bin" read --port "$dir/bms0" --address 1-4 --baud 115200 --json --identity
check "read missing pack" 3 "$bin" read --port "$dir/bms0" --address 9 --timeout 200
check "usage" 2 "$bin" read --bogus

cat >"$dir/config.yaml" <<YAML
ports:
  - name: a
    device: $dir/bms0
    baud: 115200
    timeout_ms: 300
    interval_s: 1
    packs:
      - { address: 1, id: p1 }
      - { address: 2, id: p2 }
      - { address: 7, id: dead }
YAML
check "check" 0 "$bin" check -c "$dir/config.yaml"
check "scan" 0 "$bin" scan --port "$dir/bms0" --from 1 --to 3 --baud 115200 --listen 0
{
    st=0
    "${vg[@]}" "$bin" run -c "$dir/config.yaml" --stdout >"$dir/run.out" 2>"$dir/run.err" &
    run=$!
    sleep 4
    kill -HUP "$run" # the reload path: the configuration read again and compared
    sleep 2
    kill -TERM "$run"
    wait "$run" || st=$?
    if [[ "$st" != 0 ]] || ! grep -q '"pack":"p2"' "$dir/run.out" ||
        ! grep -q 'reload: the rest of the configuration is unchanged' "$dir/run.err"; then
        echo "valgrind: run: exit $st" >&2
        cat "$dir/run.err" >&2
        fails=$((fails + 1))
    else
        echo "valgrind: run (3 packs, one dead, SIGHUP, SIGTERM): clean"
    fi
}
# The whole daemon, as it runs on a site: 2 ports x 8 packs, SQLite history, MQTT to a private
# mosquitto (with Home Assistant discovery), until VALGRIND_POLLS polls (default 1000).
polls="${VALGRIND_POLLS:-1000}"
free_port() { # a loopback port the kernel says is free (perl-base is on every Debian)
    perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
        LocalPort => 0, Proto => "tcp", Listen => 1) or exit 1; print $s->sockport, "\n";'
}
if command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]]; then
    port="$(free_port)"
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n%s' "$port" \
        "$( ((EUID == 0)) && echo 'user root')" >"$dir/mosquitto.conf"
    "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$dir/mosquitto.conf" \
        >"$dir/mosquitto.log" 2>&1 &
    broker=$!
    sims=()
    for bus in a b; do
        "$bin" simulate --protocol pace --addresses 1-8 --link "$dir/bus-$bus" --seed 9 \
            --baud 115200 --turnaround 2 >/dev/null 2>&1 &
        sims+=($!)
    done
    for _ in $(seq 50); do [[ -e "$dir/bus-a" && -e "$dir/bus-b" ]] && break; sleep 0.1; done
    {
        echo "node: { id: vg }"
        echo "ports:"
        for bus in a b; do
            printf '  - name: %s\n    device: %s\n    protocol: pace\n    baud: 115200\n' \
                "$bus" "$dir/bus-$bus"
            printf '    gap_ms: 5\n    timeout_ms: 300\n    interval_s: 1\n    packs:\n'
            for i in 1 2 3 4 5 6 7 8; do printf '      - { address: %d, id: %s%d }\n' "$i" "$bus" "$i"; done
        done
        printf 'storage:\n  path: %s/history.db\n  commit_interval_s: 1\n' "$dir"
        printf 'mqtt:\n  host: 127.0.0.1\n  port: %s\n' "$port"
    } >"$dir/site.yaml"
    st=0
    "${vg[@]}" "$bin" run -c "$dir/site.yaml" --stdout >"$dir/site.out" 2>"$dir/site.err" &
    run=$!
    n=0
    for _ in $(seq 900); do # at most 15 minutes
        n=$(grep -c '"voltage"' "$dir/site.out" || true)
        ((n >= polls)) && break
        kill -0 "$run" 2>/dev/null || break
        sleep 1
    done
    kill -TERM "$run" 2>/dev/null || true
    wait "$run" || st=$?
    kill "${sims[@]}" "$broker" 2>/dev/null || true
    wait "${sims[@]}" "$broker" 2>/dev/null || true
    stored=$(sqlite3 -readonly "$dir/history.db" 'SELECT count(*) FROM samples' 2>/dev/null || echo 0)
    if [[ "$st" != 0 ]] || ((n < polls)) || ((stored < polls)) ||
        ! grep -q 'mqtt: connected' "$dir/site.err" || ! grep -q ', 0 given up' "$dir/site.err"; then
        echo "valgrind: site run: exit $st, $n polls, $stored stored" >&2
        tail -n 60 "$dir/site.err" >&2
        fails=$((fails + 1))
    else
        echo "valgrind: run (2 ports x 8 packs, SQLite, MQTT, $n polls, $stored stored): clean"
    fi
else
    echo "valgrind: mosquitto not installed: the site run is needed" >&2
    fails=$((fails + 1))
fi

if ((fails)); then
    echo "valgrind: $fails failure(s)" >&2
    exit 1
fi
echo "valgrind: all clean"
