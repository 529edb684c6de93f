#!/usr/bin/env bash
# deploy/check-unit.sh: checks deploy/bmsfleet.service without a running systemd (a container,
# CI). `systemd-analyze verify` wants ExecStart's binary to exist, so the unit is checked as a
# copy naming a built binary instead of /usr/bin/bmsfleet; any warning it prints fails the
# check. Then prints `systemd-analyze security` of it and fails when the exposure rises above
# BMSFLEET_MAX_EXPOSURE (default 2.0; 1.5 measured with systemd 252).
# Usage: deploy/check-unit.sh [BINARY]   (default: build/release/bmsfleet, else build/asan/bmsfleet)
set -euo pipefail

# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo_root

ensure_packages systemd

bin="${1:-}"
if [[ -z "$bin" ]]; then
    for b in build/release/bmsfleet build/asan/bmsfleet build/default/bmsfleet; do
        [[ -x "$b" ]] && bin="$b" && break
    done
fi
[[ -n "$bin" && -x "$bin" ]] || die "no bmsfleet binary: build one first or pass its path"
bin="$(cd "$(dirname "$bin")" && pwd -P)/$(basename "$bin")"
max="${BMSFLEET_MAX_EXPOSURE:-2.0}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-unit.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
unit="$tmp/bmsfleet.service"
grep -q '^ExecStart=/usr/bin/bmsfleet ' deploy/bmsfleet.service ||
    die "deploy/bmsfleet.service: ExecStart= no longer starts /usr/bin/bmsfleet"
sed "s|/usr/bin/bmsfleet|$bin|g" deploy/bmsfleet.service >"$unit"

log "systemd-analyze verify deploy/bmsfleet.service (ExecStart=$bin)"
# Warnings (unknown keys, bad syntax) only go to stderr with status 0: they fail here too.
if ! systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1 || [[ -s "$tmp/verify.log" ]]; then
    sed "s|$tmp/||g" "$tmp/verify.log" >&2
    die "systemd-analyze verify found problems in deploy/bmsfleet.service"
fi
echo "verify: OK"

log "systemd-analyze security --offline=yes"
systemd-analyze security --offline=yes --no-pager "$unit" >"$tmp/security.log" 2>&1 || true
grep -v '✓' "$tmp/security.log" | sed "s|$tmp/||g"
score="$(sed -n 's/.*Overall exposure level for bmsfleet.service: \([0-9.]*\).*/\1/p' "$tmp/security.log")"
[[ -n "$score" ]] || die "no exposure level in the output of systemd-analyze security"
awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' ||
    die "exposure $score is above $max: a hardening option was lost"
echo "security: exposure $score (at most $max)"
