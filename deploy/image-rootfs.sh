#!/usr/bin/env bash
# deploy/image-rootfs.sh BIN OUT: assembles the container's whole file set in OUT from a built
# (stripped) bmsfleet: the binary, the shared libraries it loads (its ldd closure, plus
# libpaho-mqtt3a.so.1 and libpaho-mqtt3as.so.1, which src/mqtt/mqtt.c dlopen()s by name, the
# latter with its OpenSSL), libgcc_s
# (glibc loads it for thread cancellation), /etc/passwd and /etc/group with the non-root user
# bmsfleet (uid 10001) in dialout (gid 20, which owns the serial adapters on Debian hosts),
# the CA bundle for MQTT over TLS, /data for the history and an empty /etc/bmsfleet for the
# configuration. No shell, no package manager. Run as root (OUT/data is chowned to the user).
# Used by the build stage of deploy/Dockerfile and by deploy/build-image.sh: one definition.
set -euo pipefail

BMSFLEET_UID="${BMSFLEET_UID:-10001}"
BMSFLEET_GID_DIALOUT="${BMSFLEET_GID_DIALOUT:-20}"
# src/mqtt/mqtt.c loads the plain one for a broker without TLS (no OpenSSL in memory), the TLS
# one for TLS
PAHO_SONAMES="libpaho-mqtt3a.so.1 libpaho-mqtt3as.so.1"

die() {
    printf 'image-rootfs: %s\n' "$*" >&2
    exit 1
}

(($# == 2)) || die "usage: image-rootfs.sh BIN OUT"
bin="$1"
out="$2"
[[ -x "$bin" ]] || die "$bin: not an executable"
command -v ldd >/dev/null || die "ldd not found"
if [[ -e "$out" ]] && [[ -n "$(ls -A "$out")" ]]; then
    die "$out exists and is not empty"
fi

multiarch="$(gcc -print-multiarch 2>/dev/null || true)"
[[ -n "$multiarch" ]] || multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)"
[[ -n "$multiarch" ]] || die "cannot tell the multiarch triplet (gcc -print-multiarch)"

# Debian's merged /usr: /lib and /lib64 are links into /usr, as on the build host, so every
# path ldd prints (/lib/x86_64-linux-gnu/..., /lib64/ld-linux-x86-64.so.2) resolves.
mkdir -p "$out/usr/bin" "$out/usr/lib/$multiarch" "$out/etc/bmsfleet" "$out/data" "$out/tmp" \
    "$out/var/lib"
ln -s usr/lib "$out/lib"
case "$multiarch" in
x86_64-linux-gnu)
    mkdir -p "$out/usr/lib64"
    ln -s usr/lib64 "$out/lib64"
    ;;
esac

install -m 0755 "$bin" "$out/usr/bin/bmsfleet"

# The path a shared object is known by inside the image: /usr + its path without /usr.
image_path() {
    local p="$1"
    p="${p#/usr}"
    printf '/usr%s' "$p"
}

copy_lib() {
    local src="$1" dst
    dst="$out$(image_path "$src")"
    [[ -e "$dst" ]] && return 0
    mkdir -p "$(dirname "$dst")"
    cp -L "$src" "$dst"
    case "${dst##*/}" in
    ld-linux*) chmod 0755 "$dst" ;; # the kernel executes the loader: it needs its x bits
    *) chmod 0644 "$dst" ;;
    esac
}

# Every object ldd names for FILE (libraries by their resolved path, and the loader).
closure() {
    ldd "$1" | awk '
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $1 ~ /^\// { print $1 }'
}

find_lib() {
    local name="$1" d
    for d in "/usr/lib/$multiarch" "/lib/$multiarch" /usr/lib /lib; do
        if [[ -e "$d/$name" ]]; then
            printf '%s/%s\n' "$d" "$name"
            return 0
        fi
    done
    return 1
}

paho=()
for soname in $PAHO_SONAMES; do
    lib="$(find_lib "$soname")" ||
        die "$soname not found: install libpaho-mqtt1.3 (MQTT would not load in the image)"
    paho+=("$lib")
done
gcc_s="$(find_lib libgcc_s.so.1)" || die "libgcc_s.so.1 not found (libgcc-s1)"

for obj in "$bin" "${paho[@]}" "$gcc_s"; do
    [[ "$obj" == "$bin" ]] || copy_lib "$obj"
    while read -r lib; do
        copy_lib "$lib"
    done < <(closure "$obj")
done

# Users and groups: root for completeness, the daemon's user, dialout for the adapters.
cat >"$out/etc/passwd" <<EOF
root:x:0:0:root:/root:/usr/sbin/nologin
bmsfleet:x:${BMSFLEET_UID}:${BMSFLEET_GID_DIALOUT}:bmsfleet:/data:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$out/etc/group" <<EOF
root:x:0:
dialout:x:${BMSFLEET_GID_DIALOUT}:bmsfleet
nogroup:x:65534:
EOF
# The broker's name through the container's /etc/hosts, then DNS (glibc has both built in).
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"

# TLS: `tls_ca_file: /etc/ssl/certs/ca-certificates.crt` for a broker with a public
# certificate; OpenSSL's default paths (a client certificate without a CA file) lead there too.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
    mkdir -p "$out/usr/lib/ssl"
    ln -s /etc/ssl/certs "$out/usr/lib/ssl/certs"
    ln -s /etc/ssl/certs/ca-certificates.crt "$out/usr/lib/ssl/cert.pem"
else
    printf 'image-rootfs: warning: no CA bundle (ca-certificates): MQTT over TLS needs tls_ca_file\n' >&2
fi

# The history: /data (a volume); the daemon's default path /var/lib/bmsfleet leads there too,
# so a configuration without storage.path, and the replaced program's variables, keep it.
ln -s /data "$out/var/lib/bmsfleet"
chown "$BMSFLEET_UID:$BMSFLEET_GID_DIALOUT" "$out/data"
chmod 0750 "$out/data"
chmod 1777 "$out/tmp"
chmod 0755 "$out/etc/bmsfleet"
