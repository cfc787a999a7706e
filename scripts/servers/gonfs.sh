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
    if env_ready gonfs && alive "$DIR/gonfsd.pid"; then
        return 0
    fi
    drop_env gonfs
    mkdir -p "$DIR/export"
    build
    local port
    if alive "$DIR/gonfsd.pid" && [ -s "$DIR/port" ]; then
        port=$(cat "$DIR/port")
    else
        port=${GONFS_PORT:-$(free_port)}
        echo "$port" >"$DIR/port"
        spawn "$DIR/gonfsd.pid" "$LOGFILE" "$BIN" -root "$DIR/export" -listen "127.0.0.1:$port" ||
            die "gonfsd did not start"
    fi
    wait_tcp 127.0.0.1 "$port" 20 || die "gonfsd does not answer on 127.0.0.1:$port"
    alive "$DIR/gonfsd.pid" || die "gonfsd exited"
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
    stop_pid "$DIR/gonfsd.pid"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
