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
    --error-exitcode=99 --track-fds=no)
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
if ((fails)); then
    echo "valgrind: $fails failure(s)" >&2
    exit 1
fi
echo "valgrind: all clean"
