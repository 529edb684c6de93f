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
