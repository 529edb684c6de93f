#!/usr/bin/env bash
# deploy/package.sh: builds the `release` preset and makes the .deb with CPack
# (cmake/install.cmake), then checks it with deploy/check-deb.sh. Prints the .deb's path on the
# last line of stdout. Build it on the Debian release and architecture it is for: the
# dependencies are those of the libraries it was linked against (dpkg-shlibdeps).
set -euo pipefail

# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo_root

# dpkg-dev: dpkg-shlibdeps for the Depends line; groff-base, man-db: to check the man pages.
ensure_packages "${BMSFLEET_BUILD_PACKAGES[@]}" dpkg-dev file groff-base man-db

build_preset release

log "making the .deb (cpack)"
rm -rf build/release/bmsfleet_*.deb build/release/_CPack_Packages # no files of an earlier run
(cd build/release && cpack -G DEB) >&2
deb="$(ls build/release/bmsfleet_*.deb)"
[[ -f "$deb" ]] || die "cpack made no build/release/bmsfleet_*.deb"

bash deploy/check-deb.sh "$deb" >&2
log "$(du -h "$deb" | cut -f1) $deb"
echo "$REPO_ROOT/$deb"
