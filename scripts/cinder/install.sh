#!/bin/sh
# Install real OpenStack Cinder (Debian python3-cinder, 21.3.1 on bookworm)
# and python3-zstd, for scripts/cinder/cinder_posix.py and the Go package
# internal/cindertest.
#
# Idempotent and fast when already installed (a dpkg check, no apt at all).
# Runs `apt-get update` only when the package lists do not know the packages
# (or an install fails on stale lists). Waits for dpkg/apt locks held by
# another process. Re-runs itself with sudo when not root.
set -eu

PKGS="python3-cinder python3-zstd"
PY=/usr/bin/python3
LOCK_WAIT=${CHUNKBACK_APT_LOCK_WAIT:-1800}   # seconds

log() { printf '%s\n' "install.sh: $*" >&2; }

installed() {
    for p in $PKGS; do
        st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$st" in ii*) ;; *) return 1 ;; esac
    done
    return 0
}

check_import() {
    "$PY" -c 'import cinder.backup.drivers.posix, cinder.backup.chunkeddriver, zstd' 2>/dev/null
}

if installed && check_import; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n env CHUNKBACK_APT_LOCK_WAIT="$LOCK_WAIT" sh "$0" "$@"
    fi
    log "not root and no sudo: run as root: apt-get install $PKGS"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Wait until no other process holds the dpkg/apt locks (fcntl locks: try to
# take each one briefly). apt's own DPkg::Lock::Timeout is passed as well.
lock_free() {
    if [ -x "$PY" ]; then
        "$PY" - "$1" <<'EOF' 2>/dev/null
import fcntl, os, sys
p = sys.argv[1]
if not os.path.exists(p):
    sys.exit(0)
with open(p, 'a') as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.lockf(f, fcntl.LOCK_UN)
EOF
    elif command -v fuser >/dev/null 2>&1; then
        ! fuser "$1" >/dev/null 2>&1
    else
        return 0
    fi
}

wait_locks() {
    waited=0
    for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock \
             /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
        while ! lock_free "$f"; do
            if [ "$waited" -ge "$LOCK_WAIT" ]; then
                log "gave up after ${waited}s waiting for $f"
                exit 1
            fi
            [ $((waited % 30)) -eq 0 ] && log "waiting for $f (held by another apt/dpkg)"
            sleep 3
            waited=$((waited + 3))
        done
    done
}

APT="apt-get -y -q -o DPkg::Lock::Timeout=$LOCK_WAIT"

known() {
    for p in $PKGS; do
        apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]' || return 1
    done
    return 0
}

wait_locks
# Another process may just have finished installing them.
if installed && check_import; then
    exit 0
fi

if ! known; then
    log "apt-get update"
    wait_locks
    $APT update
fi

wait_locks
if ! $APT install --no-install-recommends $PKGS; then
    log "install failed; refreshing package lists and retrying"
    wait_locks
    $APT update
    wait_locks
    $APT install --no-install-recommends $PKGS
fi

if ! check_import; then
    log "installed, but $PY cannot import cinder.backup.drivers.posix and zstd"
    exit 1
fi
log "ok: $(dpkg-query -W -f='${Package} ${Version}  ' $PKGS)"
