#!/usr/bin/env bash
# deploy/check-deb.sh DEB: checks a bmsfleet .deb without installing it on this system (for CI):
# the control fields (name, section, maintainer, Depends from dpkg-shlibdeps, paho recommended),
# the file list (binary, man pages, examples, the unit when the checkout has one, nothing in
# /etc), the maintainer scripts; then unpacks it into a temporary root (dpkg -x), checks that
# the installed binary finds its libraries, runs its --help and --version, checks the shipped
# example configuration with it and renders the man pages. Exit 0 when all holds.
set -euo pipefail

deb="${1:?usage: deploy/check-deb.sh FILE.deb}"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
fails=0
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    fails=$((fails + 1))
}
ok() {
    printf 'ok: %s\n' "$*"
}

field() {
    dpkg-deb -f "$deb" "$1"
}
[[ "$(field Package)" == bmsfleet ]] || fail "Package is '$(field Package)', not bmsfleet"
[[ -n "$(field Maintainer)" ]] || fail "no Maintainer"
[[ "$(field Section)" == electronics ]] || fail "Section is '$(field Section)'"
[[ -n "$(field Description)" ]] || fail "no Description"
depends="$(field Depends)"
# the libraries bmsfleet links against, as dpkg-shlibdeps names them on bookworm
for lib in libc6 libcjson1 libmodbus5 libsqlite3-0 libyaml-0-2; do
    grep -qE "(^|, )$lib( |,|$)" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
# paho is dlopen()ed when MQTT is configured: dpkg-shlibdeps cannot see it
grep -q 'libpaho-mqtt1.3' <<<"$(field Recommends)" || fail "Recommends lacks libpaho-mqtt1.3"
if grep -q 'libpaho' <<<"$depends"; then fail "paho in Depends: $depends"; fi
# libmicrohttpd too, when `http:` is configured
grep -q 'libmicrohttpd12' <<<"$(field Recommends)" || fail "Recommends lacks libmicrohttpd12"
if grep -q 'libmicrohttpd' <<<"$depends"; then fail "libmicrohttpd in Depends: $depends"; fi
ok "control: $(field Package) $(field Version) $(field Architecture); Depends: $depends;" \
    "Recommends: $(field Recommends)"

files="$(dpkg-deb -c "$deb" | awk '{print $NF}')"
want=(./usr/bin/bmsfleet ./usr/share/man/man1/bmsfleet.1.gz ./usr/share/man/man5/bmsfleet.yaml.5.gz
    ./usr/share/doc/bmsfleet/config.example.yaml ./usr/share/doc/bmsfleet/99-bmsfleet.rules
    ./usr/share/doc/bmsfleet/mosquitto-bridge.conf ./usr/share/doc/bmsfleet/install.md)
if [[ -e "$src/deploy/bmsfleet.service" ]]; then
    want+=(./usr/lib/systemd/system/bmsfleet.service)
else
    echo "note: no deploy/bmsfleet.service in this checkout: the unit is not required"
fi
for f in "${want[@]}"; do
    grep -qxF "$f" <<<"$files" || fail "$f not in the package"
done
if grep -q '^\./etc/' <<<"$files"; then fail "the package ships files in /etc"; fi
ok "files: $(grep -vc '/$' <<<"$files") ($(tr '\n' ' ' <<<"$files"))"

root="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-check-deb.XXXXXX")"
trap 'rm -rf "$root"' EXIT
dpkg -x "$deb" "$root"
dpkg -e "$deb" "$root/DEBIAN"
for script in postinst prerm postrm; do
    [[ -x "$root/DEBIAN/$script" ]] || fail "no executable $script in the control archive"
    sh -n "$root/DEBIAN/$script" || fail "$script is not valid sh"
done
bin="$root/usr/bin/bmsfleet"
if ldd "$bin" | grep -q 'not found'; then fail "libraries not found: $(ldd "$bin")"; fi
"$bin" --help | grep -q '^  run ' || fail "the installed binary's --help lists no run"
version="$("$bin" --version)" || fail "--version failed"
[[ "$version" == "bmsfleet $(field Version)" ]] || fail "--version says '$version'"
"$bin" check -c "$root/usr/share/doc/bmsfleet/config.example.yaml" >/dev/null ||
    fail "the shipped config.example.yaml does not check"
for page in man1/bmsfleet.1.gz man5/bmsfleet.yaml.5.gz; do
    out="$(man -l "$root/usr/share/man/$page" 2>&1 >/dev/null)" || fail "man -l $page failed"
    [[ -z "$out" ]] || fail "man -l $page warns: $out"
done
ok "unpacked and ran: $version"

((fails == 0)) || {
    echo "$fails problem(s) in $deb" >&2
    exit 1
}
ok "$deb: $(du -h "$deb" | cut -f1)"
