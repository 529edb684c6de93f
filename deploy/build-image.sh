#!/usr/bin/env bash
# deploy/build-image.sh [OUT]: the stages of deploy/Dockerfile without a registry. The build
# stage runs on this Debian bookworm machine (the same packages the Dockerfile installs): a
# Release build, stripped, and deploy/image-rootfs.sh assembles the image's files in
# OUT/rootfs (default build/image). Then it checks that file set: its size (under
# BMSFLEET_IMAGE_MAX_MB, default 15), and, chrooted into it as the image's user, `--help`,
# `check` of a configuration, `health` against histories, and the daemon itself polling a
# simulated pack until `health` says healthy. Where podman can build and run FROM scratch, it
# builds the runtime stage of deploy/Dockerfile from that file set (image bmsfleet:local) and
# runs the same checks in a container; where it cannot, it says so and the file set stands.
# BMSFLEET_IMAGE_ENGINE=none skips podman. BMSFLEET_IMAGE_DOCKERFILE=1 also builds
# deploy/Dockerfile itself with podman, from a bookworm base made here with debootstrap (the
# Debian archive, no registry): the whole two-stage build as on a machine with a registry.
# Run as root (chroot, chown).
set -euo pipefail

# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo_root

((EUID == 0)) || die "run as root: the file set is owned by the image's user and tested with chroot"
out="${1:-build/image}"
mkdir -p "$out"
out="$(cd "$out" && pwd -P)" # absolute: podman's bind mounts need it
max_mb="${BMSFLEET_IMAGE_MAX_MB:-15}"
engine="${BMSFLEET_IMAGE_ENGINE:-podman}"
uid=10001
gid=20

ensure_packages "${BMSFLEET_BUILD_PACKAGES[@]}" ca-certificates
started=$SECONDS

# ---------------------------------------------------------------- build stage
log "build stage: Release build (the Dockerfile's flags), stripped"
# No sd_notify in a container (no systemd to tell): libsystemd and its libraries stay out.
cmake -S . -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DBMSFLEET_TESTS=OFF -DBMSFLEET_BENCH=OFF \
    -DBMSFLEET_WERROR=ON -DBMSFLEET_SYSTEMD=OFF >/dev/null
cmake --build "$out/build" -j "$JOBS" >/dev/null
cp "$out/build/bmsfleet" "$out/bmsfleet.unstripped"
strip --strip-all "$out/build/bmsfleet"
rm -rf "$out/rootfs"
bash deploy/image-rootfs.sh "$out/build/bmsfleet" "$out/rootfs"

# ---------------------------------------------------------------- the file set
rootfs="$(cd "$out/rootfs" && pwd -P)"
bytes="$(du -sb --apparent-size "$rootfs" | cut -f1)"
mb="$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
log "image file set: $rootfs, $bytes bytes ($mb MiB), $(find "$rootfs" -type f | wc -l) files"
find "$rootfs" -type f -printf '%s\t/%P\n' | sort -rn | awk -F'\t' '{ printf "    %9d  %s\n", $1, $2 }' >&2
awk -v b="$bytes" -v m="$max_mb" 'BEGIN { exit !(b < m * 1048576) }' ||
    die "the image's files take $mb MiB, more than $max_mb MiB"

# ---------------------------------------------------------------- checks in the file set
work="$(mktemp -d "$rootfs/tmp/check.XXXXXX")"
sim_pid=""
daemon_pid=""
cleanup() {
    mountpoint -q "$rootfs/dev/ttyBMS0" 2>/dev/null && umount "$rootfs/dev/ttyBMS0"
    [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
    rm -rf "$work" "${rootfs:?}/dev"
    true
}
trap cleanup EXIT
in_image=/tmp/${work##*/}
chown "$uid:$gid" "$work"

# As the image's user, with nothing but the file set (no host library can leak in).
image_run() {
    chroot --userspec="$uid:$gid" "$rootfs" /usr/bin/bmsfleet "$@"
}

expect() { # expect STATUS WHAT COMMAND...: runs it, prints its output, checks its exit code
    local want="$1" what="$2" rc=0
    shift 2
    "$@" >"$out/expect.out" 2>&1 || rc=$?
    sed 's/^/    | /' "$out/expect.out" >&2
    ((rc == want)) || die "$what: exit $rc, expected $want"
    log "ok: $what (exit $rc)"
}

expect 0 "bmsfleet --help in the file set" image_run --help
expect 0 "bmsfleet --version" image_run --version

# The simulator runs on the host; its pty becomes /dev/ttyBMS0 in the file set, group dialout
# as the adapter on the host (a bind mount: a pty opens only through its devpts node).
bash -c "exec '$out/build/bmsfleet' simulate --protocol pace --addresses 1,2 --link '$work/tty' \
    --baud 115200 --time-scale 0" >/dev/null 2>&1 &
sim_pid=$!
for _ in $(seq 50); do [[ -e "$work/tty" ]] && break; sleep 0.1; done
[[ -e "$work/tty" ]] || die "the simulator did not start"
pty="$(readlink -f "$work/tty")"
chgrp "$gid" "$pty"
chmod 0660 "$pty"
mkdir -p "$rootfs/dev"
touch "$rootfs/dev/ttyBMS0"
mount --bind "$pty" "$rootfs/dev/ttyBMS0"
mknod -m 0666 "$rootfs/dev/null" c 1 3
cat >"$work/config.yaml" <<EOF
ports:
  - name: rack
    device: /dev/ttyBMS0
    protocol: pace
    baud: 115200
    timeout_ms: 300
    interval_s: 1
    packs:
      - { address: 1, id: p1 }
      - { address: 2, id: p2 }
storage: { path: $in_image/history.db, commit_interval_s: 1 }
EOF
chmod 0644 "$work/config.yaml"
expect 0 "bmsfleet check -c config.yaml" image_run check -c "$in_image/config.yaml"
expect 1 "bmsfleet health before any daemon ran (no history)" \
    image_run health -c "$in_image/config.yaml"

chroot --userspec="$uid:$gid" "$rootfs" /usr/bin/bmsfleet run -c "$in_image/config.yaml" \
    >"$work/daemon.out" 2>"$work/daemon.err" &
daemon_pid=$!
healthy=0
for _ in $(seq 60); do
    if image_run health -c "$in_image/config.yaml" >"$work/health" 2>&1; then
        healthy=1
        break
    fi
    sleep 0.5
done
sed 's/^/    | /' "$work/health" >&2
((healthy)) || {
    sed 's/^/    daemon: /' "$work/daemon.err" >&2
    die "the daemon in the file set did not become healthy within 30 s"
}
log "ok: bmsfleet run in the file set polls the simulator; health says healthy"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=""
((rc == 0)) || die "the daemon exited $rc on SIGTERM"
expect 1 "bmsfleet health after the daemon stopped" image_run health -c "$in_image/config.yaml"
kill "$sim_pid" 2>/dev/null || true
wait "$sim_pid" 2>/dev/null || true
sim_pid=""
umount "$rootfs/dev/ttyBMS0"
cp "$work/config.yaml" "$out/config.yaml"
rm -rf "$work" "${rootfs:?}/dev"
trap - EXIT

# ---------------------------------------------------------------- an image, where podman runs
# The runtime stage of deploy/Dockerfile, its COPY pointed at the assembled file set, built
# with podman (no registry needed: FROM scratch) in Docker format (the OCI format has no
# HEALTHCHECK: podman would drop it), then run: --help, and the daemon polling the simulator
# with the compose file's hardening until the image's own HEALTHCHECK says healthy.
image_result="no container engine used (BMSFLEET_IMAGE_ENGINE=$engine)"
podman_args=()
ctr=""
podman_cleanup() {
    [[ -n "$ctr" ]] && podman rm -f "$ctr" >/dev/null 2>&1
    [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
    rm -rf "$out/context" "$out/run"
    true
}
# podman_check: builds and runs; sets image_result; non-zero only for a failure of the image
# (an engine that cannot run here is reported, not an error).
podman_check() {
    local ctx="$out/context" run="$out/run"
    local -a run_args=()
    rm -rf "$ctx" "$run"
    mkdir -p "$ctx" "$run"
    cp -a "$rootfs" "$ctx/rootfs"
    sed -n '/^FROM scratch/,$p' deploy/Dockerfile |
        sed 's|^COPY --from=build /rootfs/ /|COPY rootfs/ /|' >"$ctx/Containerfile"
    if ! podman build --quiet --format docker -t bmsfleet:local -f "$ctx/Containerfile" "$ctx" >"$out/podman.log" 2>&1; then
        image_result="podman cannot build here: $(tail -n 1 "$out/podman.log")"
        return 0
    fi
    rm -rf "$ctx"
    local size
    size="$(podman image inspect bmsfleet:local --format '{{.Size}}')"
    image_result="podman built bmsfleet:local ($size bytes)"
    log "$image_result"
    # crun refuses a host with hybrid cgroups and podman's default rlimits may exceed the
    # host's: then runc, with the rlimits of this shell.
    if ! podman run --rm --network none bmsfleet:local --version >>"$out/podman.log" 2>&1; then
        if command -v runc >/dev/null 2>&1; then
            podman_args=(--runtime runc)
            run_args=(--ulimit "nofile=$(ulimit -Sn):$(ulimit -Sn)" --ulimit "nproc=1024:1024")
        fi
        if ((${#podman_args[@]} == 0)) ||
            ! podman "${podman_args[@]}" run --rm --network none "${run_args[@]}" bmsfleet:local \
                --version >>"$out/podman.log" 2>&1; then
            image_result="$image_result; podman cannot run a container here: $(tail -n 1 "$out/podman.log")"
            return 0
        fi
    fi
    expect 0 "podman run bmsfleet:local --help" \
        podman "${podman_args[@]}" run --rm --network none "${run_args[@]}" bmsfleet:local --help

    bash -c "exec '$out/build/bmsfleet' simulate --protocol pace --addresses 1,2 --link '$run/tty' \
        --baud 115200 --time-scale 0" >/dev/null 2>&1 &
    sim_pid=$!
    for _ in $(seq 50); do [[ -e "$run/tty" ]] && break; sleep 0.1; done
    [[ -e "$run/tty" ]] || die "the simulator did not start"
    local pty
    pty="$(readlink -f "$run/tty")"
    chgrp "$gid" "$pty"
    chmod 0660 "$pty"
    sed 's|path: [^,]*/history.db|path: /data/history.db|' "$out/config.yaml" >"$run/config.yaml"
    chmod 0644 "$run/config.yaml"
    mkdir -p "$run/data"
    chown "$uid:$gid" "$run/data"
    # As deploy/compose.yaml runs it; the pty is bound in (a --device copy of a pty does not
    # open: only its devpts node does), a real adapter comes with --device.
    ctr="bmsfleet-image-check-$$"
    podman "${podman_args[@]}" run -d --name "$ctr" --network none "${run_args[@]}" \
        -v "$pty:/dev/ttyBMS0" -v "$run/data:/data" \
        -v "$run/config.yaml:/etc/bmsfleet/config.yaml:ro" \
        --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
        bmsfleet:local run -c /etc/bmsfleet/config.yaml >/dev/null 2>>"$out/podman.log"
    # (without systemd podman cannot schedule the HEALTHCHECK's timer and says so in that log;
    # `podman healthcheck run` runs the check itself)
    local healthy=0 state
    for _ in $(seq 60); do
        if podman "${podman_args[@]}" healthcheck run "$ctr" >"$run/health" 2>&1; then
            healthy=1
            break
        fi
        sleep 0.5
    done
    state="$(podman inspect "$ctr" --format '{{.State.Health.Status}}' 2>/dev/null || true)"
    if ((!healthy)); then
        podman logs "$ctr" 2>&1 | sed 's/^/    container: /' >&2
        die "the container did not become healthy within 30 s ($(cat "$run/health"))"
    fi
    log "ok: the container polls the simulator; its HEALTHCHECK says ${state:-healthy}"
    podman exec "$ctr" /usr/bin/bmsfleet health -c /etc/bmsfleet/config.yaml | sed 's/^/    | /' >&2
    local user
    user="$(podman inspect "$ctr" --format '{{.Config.User}}')"
    podman stop -t 10 "$ctr" >/dev/null 2>>"$out/podman.log"
    local code
    code="$(podman inspect "$ctr" --format '{{.State.ExitCode}}')"
    [[ "$code" == 0 ]] || die "the container's daemon exited $code on stop"
    podman rm "$ctr" >/dev/null 2>>"$out/podman.log"
    ctr=""
    image_result="$image_result; in a container (user $user, read-only, no capabilities) the daemon polled the simulator, HEALTHCHECK healthy, clean stop"
    [[ ${#podman_args[@]} -eq 0 ]] || image_result="$image_result (podman ${podman_args[*]})"
}
if [[ "$engine" == podman ]]; then
    if ! command -v podman >/dev/null 2>&1; then
        image_result="podman is not installed (apt-get install podman): the file set stands alone"
    else
        trap podman_cleanup EXIT
        podman_check
        podman_cleanup
        trap - EXIT
    fi
fi
log "$image_result"

# ---------------------------------------------------------------- deploy/Dockerfile itself
if [[ "${BMSFLEET_IMAGE_DOCKERFILE:-0}" == 1 ]]; then
    command -v podman >/dev/null 2>&1 || die "BMSFLEET_IMAGE_DOCKERFILE=1 needs podman"
    ensure_packages debootstrap
    base=localhost/bmsfleet-bookworm-base:local
    if ! podman image exists "$base"; then
        log "making the build stage's base, $base, with debootstrap (minbase bookworm)"
        rm -rf "$out/debootstrap"
        debootstrap --variant=minbase bookworm "$out/debootstrap" http://deb.debian.org/debian \
            >"$out/debootstrap.log" 2>&1 || die "debootstrap failed: see $out/debootstrap.log"
        rm -rf "$out/debootstrap/var/cache/apt/archives/"*.deb
        tar -C "$out/debootstrap" -c . | podman import - "$base" >/dev/null
        rm -rf "$out/debootstrap"
    fi
    log "podman build -f deploy/Dockerfile (DEBIAN_IMAGE=$base)"
    podman build "${podman_args[@]}" --network host --format docker \
        --ulimit "nofile=$(ulimit -Sn):$(ulimit -Sn)" --ulimit nproc=1024:1024 \
        --build-arg DEBIAN_IMAGE="$base" -f deploy/Dockerfile -t bmsfleet:dockerfile . \
        >"$out/dockerfile-build.log" 2>&1 || die "podman build failed: see $out/dockerfile-build.log"
    size="$(podman image inspect bmsfleet:dockerfile --format '{{.Size}}')"
    ((size < max_mb * 1048576)) || die "bmsfleet:dockerfile is $size bytes, more than $max_mb MiB"
    log "deploy/Dockerfile built as bmsfleet:dockerfile: $size bytes, $(podman image inspect \
        bmsfleet:dockerfile --format 'user {{.Config.User}}, healthcheck {{.Config.Healthcheck.Test}}')"
fi
log "done in $((SECONDS - started)) s: the image's files are $mb MiB (limit $max_mb MiB) in $rootfs"
