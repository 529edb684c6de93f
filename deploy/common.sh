# shellcheck shell=bash
# deploy/common.sh: helpers sourced by deploy/test.sh and deploy/demo.sh.
# Owns: repo root detection, the build job count, installing missing Debian packages, and
# building a CMake preset. Works on a minimal Debian bookworm (no sudo, git, python3 or cmake).

# Packages needed to build bmsfleet at all (used by the scripts that source this file).
# shellcheck disable=SC2034
BMSFLEET_BUILD_PACKAGES=(
    build-essential cmake pkg-config
    libmodbus-dev libpaho-mqtt-dev libsqlite3-dev libyaml-dev libcmocka-dev libcjson-dev
    libmicrohttpd-dev
    libsystemd-dev
)

# The checkout this file lives in (deploy/..); scripts cd here so presets and paths resolve.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export REPO_ROOT

repo_root() {
    cd "$REPO_ROOT" || {
        echo "error: cannot cd to repo root $REPO_ROOT" >&2
        exit 1
    }
}

# Parallel build jobs: JOBS from the environment, else one per CPU.
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

log() {
    printf '==> %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# True when dpkg reports PKG as fully installed for this machine's architecture (or as an
# architecture-independent package). A PKG:ARCH name is checked as it is. With multiarch, a
# package can be installed for several architectures (deploy/arm64.sh adds arm64 -dev
# packages): one status line per architecture.
package_installed() {
    local native status arch
    if [[ "$1" == *:* ]]; then
        status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
        [[ "$status" == "install ok installed" ]]
        return
    fi
    native="$(dpkg --print-architecture)"
    while IFS='|' read -r status arch; do
        if [[ "$status" == "install ok installed" && ("$arch" == "$native" || "$arch" == all) ]]; then
            return 0
        fi
    done < <(dpkg-query -W -f='${Status}|${Architecture}\n' "$1" 2>/dev/null)
    return 1
}

_BMSFLEET_APT_UPDATED=0

# ensure_packages PKG...: installs whichever of PKG... are not installed yet, with one
# `apt-get update` per script run. Uses sudo when not root; fails listing the packages when
# neither root nor sudo is available. Never removes or upgrades anything else.
ensure_packages() {
    local pkg
    local -a missing=() sudo=()

    command -v dpkg-query >/dev/null 2>&1 ||
        die "dpkg-query not found: this script expects Debian/Ubuntu. Install by hand: $*"

    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            printf 'error: missing Debian packages and not root (no sudo available):\n' >&2
            printf '    %s\n' "${missing[@]}" >&2
            printf 'install them as root:\n    apt-get install -y --no-install-recommends %s\n' \
                "${missing[*]}" >&2
            exit 1
        fi
    fi

    log "installing missing packages: ${missing[*]}"
    if ((_BMSFLEET_APT_UPDATED == 0)); then
        "${sudo[@]}" apt-get update || die "apt-get update failed"
        _BMSFLEET_APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed for: ${missing[*]}"
}

# build_preset NAME: configure and build the CMake preset NAME (from the repo root).
build_preset() {
    local name="$1"
    log "configuring preset '$name'"
    cmake --preset "$name"
    log "building preset '$name' with $JOBS jobs"
    cmake --build --preset "$name" -j "$JOBS"
}
