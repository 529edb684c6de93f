# shellcheck shell=bash
# bench/lib.sh: what the long-run scripts share (sourced by soak.sh, fault_soak.sh, rss.sh).
# bench_run NAME BIN PRESET LINE: runs the test binary BIN (built by the cmake preset PRESET)
# with the settings the caller exported, after printing "NAME: LINE (date, cores)"; prints how
# long it took and exits with its status (2 when BIN is not built, with the command that builds
# it).
bench_run() {
    local name=$1 bin=$2 preset=$3 line=$4 start rc=0
    if [[ ! -x "$bin" ]]; then
        echo "$name.sh: no $bin; build it: cmake --preset $preset && cmake --build --preset $preset" >&2
        exit 2
    fi
    echo "$name: $line ($(date -u +%FT%TZ), $(nproc) cores, $bin)"
    start=$(date +%s)
    "$bin" || rc=$?
    echo "$name: $(($(date +%s) - start)) s, exit $rc"
    exit "$rc"
}
