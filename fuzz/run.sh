#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]: builds the `fuzz` preset (clang, libFuzzer, ASan+UBSan)
# and fuzzes each target (default: all) for SECONDS (default 60) from its seed corpus in
# fuzz/corpus/<target>. Non-zero when a target crashes, leaks, times out or breaks an
# invariant; the input is kept as fuzz/corpus/<target>/crash-<sha1> in the checkout, so that
# committing it makes it a regression test (the ordinary test suite replays every corpus
# file). What a run found is in build/fuzz/fuzz-<target>.log.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/common.sh"
repo_root

seconds="${1:-60}"
shift || true
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "usage: fuzz/run.sh [SECONDS] [TARGET...]"
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(fuzz_s42_frame fuzz_s42_info fuzz_modbus fuzz_config_yaml fuzz_config_env fuzz_args)
fi

ensure_packages "${BMSFLEET_BUILD_PACKAGES[@]}" clang libclang-rt-dev
build_preset fuzz

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
failed=()
for t in "${targets[@]}"; do
    bin="build/fuzz/fuzz/$t"
    seeds="fuzz/corpus/$t"
    [[ -x "$bin" && -d "$seeds" ]] || die "no target $t"
    work="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-fuzz-$t.XXXXXX")"
    log="build/fuzz/fuzz-$t.log"
    log "fuzzing $t for $seconds s (log: $log)"
    rc=0
    # new inputs go to the scratch corpus; the committed seeds are read only
    # -close_fd_mask=1: what the commands print on stdout is noise (stderr stays for reports)
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -close_fd_mask=1 \
        -print_final_stats=1 -artifact_prefix="$work/" "$work" "$seeds" >"$log" 2>&1 || rc=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$log" |
        sed "s/^/    $t: /" >&2 || true
    if ((rc != 0)); then
        failed+=("$t")
        for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
            [[ -e "$a" ]] || continue
            keep="$seeds/$(basename "$a")"
            cp "$a" "$keep"
            log "$t: $(basename "$a") kept as $keep: commit it with the fix (it becomes a regression test)"
        done
        tail -n 40 "$log" >&2
    fi
    rm -rf -- "$work"
done
if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, $seconds s each: no crash"
