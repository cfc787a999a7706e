#!/usr/bin/env bash
# A pure-Go NFSv3 server (github.com/willscott/go-nfs v0.0.4 over a
# directory, internal/testservers/gonfsd) on 127.0.0.1, the nfs target's
# second test peer.
#
#   bash scripts/servers/gonfs.sh start|stop
#
# Layout under $STATE_DIR/gonfs/: gonfsd (the binary, rebuilt when its
# sources or go.mod change), export/ (the exported directory), gonfsd.log,
# gonfsd.pid. MOUNT and NFS share one port (GONFS_PORT, default: a free one)
# and there is no portmapper.
set -euo pipefail
SERVER=gonfs
source "$(dirname "$0")/lib.sh"

# running PIDFILE tells whether the process in PIDFILE runs. Unlike lib.sh's
# alive it does not take a zombie for a running process: a daemon killed
# here stays one while nobody reaps it (a container's init may not).
running() {
    alive "$1" || return 1
    local state
    state=$(awk '{print $3}' "/proc/$(cat "$1")/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}

# stop_daemon PIDFILE stops the process in PIDFILE, if it runs (TERM, then
# KILL after 10 s), and removes PIDFILE.
stop_daemon() {
    local pid i
    if running "$1"; then
        pid=$(cat "$1")
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            running "$1" || break
            sleep 0.1
        done
        running "$1" && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$1"
}
REPO=$(cd "$(dirname "$0")/../.." && pwd)

DIR=$STATE_DIR/gonfs
BIN=$DIR/gonfsd
LOGFILE=$DIR/gonfsd.log
# go-nfs's MOUNT answers any path with the one exported file system; the
# path still names the export in URLs and error messages.
EXPORT=/export

build() {
    local src=$REPO/internal/testservers/gonfsd
    if [ -x "$BIN" ] && [ -z "$(find "$src" "$REPO/go.mod" "$REPO/go.sum" -newer "$BIN" 2>/dev/null | head -1)" ]; then
        return 0
    fi
    log "building gonfsd"
    (cd "$REPO" && go build -o "$BIN.tmp" ./internal/testservers/gonfsd) || die "go build ./internal/testservers/gonfsd failed"
    mv "$BIN.tmp" "$BIN"
}

start() {
    if env_ready gonfs && running "$DIR/gonfsd.pid"; then
        return 0
    fi
    drop_env gonfs
    mkdir -p "$DIR/export"
    build
    local port
    if running "$DIR/gonfsd.pid" && [ -s "$DIR/port" ]; then
        port=$(cat "$DIR/port")
    else
        port=${GONFS_PORT:-$(free_port)}
        echo "$port" >"$DIR/port"
        spawn "$DIR/gonfsd.pid" "$LOGFILE" "$BIN" -root "$DIR/export" -listen "127.0.0.1:$port" ||
            die "gonfsd did not start"
    fi
    wait_tcp 127.0.0.1 "$port" 20 || die "gonfsd does not answer on 127.0.0.1:$port"
    running "$DIR/gonfsd.pid" || die "gonfsd exited"
    write_env gonfs \
        "HOST=127.0.0.1" \
        "NFS_PORT=$port" \
        "MOUNT_PORT=$port" \
        "EXPORT=$EXPORT" \
        "EXPORT_DIR=$DIR/export" \
        "PID_FILE=$DIR/gonfsd.pid" \
        "URL_NFS=nfs://127.0.0.1:$port$EXPORT/ci?mount_port=$port"
}

stop() {
    drop_env gonfs
    stop_daemon "$DIR/gonfsd.pid"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
