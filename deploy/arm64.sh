#!/usr/bin/env bash
# deploy/arm64.sh: cross-compiles bmsfleet for arm64 (aarch64) with Debian's cross toolchain
# and multiarch -dev packages (CMake preset `arm64`: Release, -Werror, tests on, toolchain file
# cmake/aarch64-linux-gnu.cmake) and runs the test suite under qemu-user. Installs what is
# missing (adding the arm64 architecture to dpkg once). Prints the binary's size, stripped and
# not, and the ctest summary; exits non-zero when the build or a test fails. Extra arguments
# go to ctest (e.g. -R s42). See docs/arm64.md.
#
# ctest starts each test executable through qemu-aarch64-static (CMAKE_CROSSCOMPILING_EMULATOR).
# Ten tests also start the real bmsfleet binary (arm64 as well), which needs the kernel to run
# arm64 executables through qemu: binfmt_misc. The script registers it when it can (root); where
# it cannot (a container without binfmt_misc), those tests are excluded, by name, with the
# reason printed, and the pure unit tests still run.
set -euo pipefail

# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo_root
started=$SECONDS

# The tests that exec the bmsfleet binary (or the simulator): they need binfmt_misc.
BINARY_TESTS=(test_cli test_config test_daemon test_export test_health test_http test_mqtt
    test_mqtt_scale test_robust test_scan test_top)

sudo_cmd=()
((EUID == 0)) || sudo_cmd=(sudo)

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "adding the arm64 architecture to dpkg (multiarch)"
    "${sudo_cmd[@]}" dpkg --add-architecture arm64
    _BMSFLEET_APT_UPDATED=0 # the arm64 package lists come with the next apt-get update
fi
# Multiarch: a library's arm64 -dev package installs beside the amd64 one only at the very same
# version, so apt may upgrade an amd64 package (libssl3, ...) to the version of the archive.
ensure_packages build-essential cmake pkg-config crossbuild-essential-arm64 \
    libmodbus-dev:arm64 libpaho-mqtt-dev:arm64 libsqlite3-dev:arm64 libyaml-dev:arm64 \
    libcmocka-dev:arm64 libcjson-dev:arm64 libmicrohttpd-dev \
    qemu-user-static binfmt-support mosquitto mosquitto-clients sqlite3 socat openssl file

# binfmt_misc: arm64 executables started by the tests run through qemu.
binfmt=/proc/sys/fs/binfmt_misc
binfmt_ok() {
    [[ -e "$binfmt/qemu-aarch64" ]] && grep -qx enabled "$binfmt/qemu-aarch64"
}
if ! binfmt_ok && ((EUID == 0)); then
    if [[ ! -e "$binfmt/register" ]]; then
        mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
    fi
    if [[ -e "$binfmt/register" ]]; then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 ||
            update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
    fi
fi
# test_soak repeats the daemon's crash, broker and unplug loops for minutes, and the
# reliability tests (test_fault_soak, test_clock, test_rss) run a dozen simulators against the
# daemon with timeouts of 300 ms that an emulated simulator would miss: what they prove does not
# depend on the architecture, and the native suite runs them; under emulation test_soak alone
# would take a quarter of an hour. Always excluded here, and said so.
# test_http needs the arm64 libmicrohttpd12 (and its GnuTLS) at run time, which multiarch would
# install only at the amd64 packages' very version; its header (libmicrohttpd-dev, the host's)
# is all the build needs, and the native suite runs the test.
skipped=(test_soak test_fault_soak test_clock test_rss test_http)
if binfmt_ok; then
    log "binfmt_misc runs arm64 executables through $(sed -n 's/^interpreter //p' "$binfmt/qemu-aarch64")"
else
    log "binfmt_misc cannot run arm64 executables here (not mounted or not registrable: a container"
    log "without it, or not root): excluding the tests that start the bmsfleet binary:"
    log "    ${BINARY_TESTS[*]}"
    skipped+=("${BINARY_TESTS[@]}")
fi
log "excluded under qemu: ${skipped[*]}"
exclude=(-E "^($(IFS='|'; echo "${skipped[*]}"))\$")

build_started=$SECONDS
build_preset arm64
build_s=$((SECONDS - build_started))

bin=build/arm64/bmsfleet
file -b "$bin" | grep -q 'ARM aarch64' || die "$bin is not an arm64 executable: $(file -b "$bin")"
aarch64-linux-gnu-strip --strip-all -o build/arm64/bmsfleet.stripped "$bin"
unstripped=$(stat -c %s "$bin")
stripped=$(stat -c %s build/arm64/bmsfleet.stripped)
log "arm64 binary: $bin $unstripped bytes, stripped $stripped bytes ($(file -b "$bin" | cut -d, -f1-2))"
# The binary runs at all under the emulator (the loader and every library resolve).
qemu-aarch64-static "$bin" --version

log "running tests under qemu-user (ctest --preset arm64 ${exclude[*]} $*)"
ctest_log="$(mktemp "${TMPDIR:-/tmp}/bmsfleet-arm64-ctest.XXXXXX")"
trap 'rm -f "$ctest_log"' EXIT
test_started=$SECONDS
rc=0
ctest --preset arm64 "${exclude[@]}" "$@" 2>&1 | tee "$ctest_log" || rc=$?
test_s=$((SECONDS - test_started))

echo
echo "==================== arm64 summary ===================="
echo "binary: $unstripped bytes, stripped $stripped bytes"
if ((${#skipped[@]})); then
    echo "excluded under qemu: ${skipped[*]}"
fi
if grep -q 'tests passed, ' "$ctest_log"; then
    sed -n '/tests passed, /,$p' "$ctest_log"
else
    tail -n 5 "$ctest_log"
fi
echo "build ${build_s} s, tests ${test_s} s, whole script $((SECONDS - started)) s"
if ((rc == 0)); then
    echo "RESULT: arm64 build and tests passed"
else
    echo "RESULT: FAILED (ctest exit status $rc)"
fi
exit "$rc"
