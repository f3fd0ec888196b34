#!/usr/bin/env bash
# A Docker engine for the tests and the test image, built locally.
#
# Uses the engine at $STRIDE_DOCKER_SOCKET (or /var/run/docker.sock) when
# one answers; otherwise installs Debian's docker.io if needed and starts a
# private dockerd that touches nothing system-wide (its own data root, exec
# root and socket under $STRIDE_DOCKERD_HOME, no iptables, explicit
# ulimits: runc fails "setting rlimit type 7" without them in a sandbox
# lacking CAP_SYS_RESOURCE). Idempotent. Nothing is ever pulled: the image
# `stride-test/busybox:local` is `docker import` of a busybox-static rootfs.
# Also creates the user-defined network `stride-test-net`. Prints the
# engine's socket path as its last line.
set -euo pipefail

home="${STRIDE_DOCKERD_HOME:-/tmp/stride-dockerd}"
image="stride-test/busybox:local"

answers() { [ -S "$1" ] && docker -H "unix://$1" version >/dev/null 2>&1; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

socket=""
for candidate in "${STRIDE_DOCKER_SOCKET:-}" /var/run/docker.sock "$home/docker.sock"; do
    if [ -n "$candidate" ] && answers "$candidate"; then socket="$candidate"; break; fi
done

if [ -z "$socket" ]; then
    socket="$home/docker.sock"
    mkdir -p "$home"
    if [ -f "$home/dockerd.pid" ] && kill -0 "$(cat "$home/dockerd.pid")" 2>/dev/null; then
        kill "$(cat "$home/dockerd.pid")" 2>/dev/null || true   # there but not answering
        sleep 1
    fi
    rm -f "$socket" "$home/dockerd.pid"
    # A dockerd that died without cleaning up leaves mounts (its network
    # namespace) and state under its exec root; a new one trips over them.
    grep -o " $home/exec[^ ]*" /proc/mounts | sort -r | while read -r mount; do
        umount -l "$mount" 2>/dev/null || true
    done
    rm -rf "$home/exec"
    setsid dockerd \
        --data-root "$home/data" --exec-root "$home/exec" --pidfile "$home/dockerd.pid" \
        -H "unix://$socket" --iptables=false --ip6tables=false \
        --default-ulimit nofile=20000:20000 --default-ulimit nproc=4096:4096 \
        </dev/null >"$home/dockerd.log" 2>&1 &
    for _ in $(seq 1 100); do
        answers "$socket" && break
        sleep 0.1
    done
    answers "$socket" || { echo "dockerd did not start; see $home/dockerd.log" >&2; tail -5 "$home/dockerd.log" >&2; exit 1; }
fi

if ! docker -H "unix://$socket" image inspect "$image" >/dev/null 2>&1; then
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/www"
    cp "$(command -v busybox)" "$rootfs/bin/busybox"
    for applet in sh httpd sleep cat echo env ls trap nc wget true false kill ps; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    echo "hello from stride-test/busybox" >"$rootfs/www/index.html"
    tar -C "$rootfs" -c . | docker -H "unix://$socket" import -c 'ENV PATH=/bin' - "$image" >&2
fi

# A user-defined network for USER networking (`networks: [{mode: container}]`).
docker -H "unix://$socket" network inspect stride-test-net >/dev/null 2>&1 \
    || docker -H "unix://$socket" network create stride-test-net >&2

echo "$socket"
