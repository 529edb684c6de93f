# shellcheck shell=bash
# bench/sims.sh: what the daemon benchmarks share (sourced): a temporary directory removed at
# exit with every process started in it, and two simulated buses of 8 Daren packs at 115200
# baud, $dir/a and $dir/b. Needs $bin (the bmsfleet binary) set first.
dir="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-bench.XXXXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf -- "$dir"
}
trap cleanup EXIT
for bus in a b; do
    "$bin" simulate --protocol daren --addresses 1-8 --link "$dir/$bus" --seed 5 \
        --baud 115200 --turnaround 2 >/dev/null 2>&1 &
    pids+=($!)
done
for _ in $(seq 50); do [[ -e "$dir/a" && -e "$dir/b" ]] && break; sleep 0.1; done

# sims_config INTERVAL_S [BANK NAME]: the ports: of the two buses (8 packs each, in bank BANK
# when given) and the history in $dir, as YAML on stdout.
sims_config() {
    local interval=$1 bank=${2:-} name=${3:-}
    echo "ports:"
    for bus in a b; do
        printf '  - name: %s\n    device: %s\n    baud: 115200\n    gap_ms: 5\n    interval_s: %d\n    packs:\n' \
            "$bus" "$dir/$bus" "$interval"
        for i in 1 2 3 4 5 6 7 8; do
            printf '      - { address: %d, id: %s%d%s }\n' "$i" "$bus" "$i" "${bank:+, bank: $bank}"
        done
    done
    if [[ -n $bank ]]; then printf 'banks:\n  - { id: %s, name: %s }\n' "$bank" "$name"; fi
    printf 'storage:\n  path: %s/history.db\n' "$dir"
}
