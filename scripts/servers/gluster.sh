#!/usr/bin/env bash
# glusterd 10 with one single-brick volume, for the gluster target's tests.
#
#   bash scripts/servers/gluster.sh start|stop
#
# glusterd refuses bricks on 127.0.0.1 and it and its bricks listen on
# 0.0.0.0, so they run in a private network namespace made here
# ($NETNS), joined to the root namespace by a veth pair: the host side is
# $HOST_IP, the namespace side (glusterd and the brick) $NS_IP. Nothing in
# the namespace is reachable from outside the machine: its only links are
# its own loopback and the veth whose other end is this host, on a private
# /30 with no route beyond it; glusterd and the brick also bind $NS_IP
# only (transport.socket.bind-address). Tests and the CLI run in the root
# namespace and connect to $NS_IP:24007.
#
# glusterd's state, run and log directories, its CLI socket and the brick
# all live under $STATE_DIR/gluster (glusterd.vol options working-directory,
# run-directory, logging-directory, glusterd-sockfile, and bind mounts in a
# private mount namespace for the paths glusterd hard-codes):
# /var/lib/glusterd and /var/run/gluster are left alone. Every start makes a
# fresh volume.
#
# Writes $STATE_DIR/gluster.env: HOST, PORT, VOLUME, NETNS, URL_GLUSTER
# (GlusterFS has no credentials, so there is no CLI_ variable).
set -euo pipefail
SERVER=gluster
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NETNS=chunkback-gluster
VETH_HOST=cbgluster0 # in the root namespace
VETH_NS=cbgluster1   # in $NETNS
HOST_IP=10.203.0.1
NS_IP=10.203.0.2
VOLUME=chunkback
PORT=24007
GSYNCD=/usr/lib/x86_64-linux-gnu/glusterfs/gsyncd

DIR=$STATE_DIR/gluster
LOGFILE=$DIR/log/glusterd.log
PIDFILE=$DIR/glusterd.pid
SOCK=$DIR/run/glusterd.socket

# cli runs the gluster command line tool against our glusterd, with our
# /var/lib/glusterd (it writes geo-replication/gsyncd_template.conf there).
cli() {
    ip netns exec "$NETNS" unshare --mount --propagation private sh -c '
        d=$1; shift
        mount --bind "$d/var-lib" /var/lib/glusterd &&
        exec gluster --mode=script --glusterd-sock="$d/run/glusterd.socket" --log-file="$d/log/cli.log" "$@"' \
        sh "$DIR" "$@"
}

netns_up() {
    ip netns list | grep -qw "^$NETNS" || ip netns add "$NETNS"
    ip netns exec "$NETNS" ip link set lo up
    if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
        ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NETNS"
        ip addr add "$HOST_IP/30" dev "$VETH_HOST"
        ip netns exec "$NETNS" ip addr add "$NS_IP/30" dev "$VETH_NS"
    fi
    ip link set "$VETH_HOST" up
    ip netns exec "$NETNS" ip link set "$VETH_NS" up
}

netns_down() {
    ip link del "$VETH_HOST" 2>/dev/null || true
    ip netns del "$NETNS" 2>/dev/null || true
}

# stop_all stops the bricks (by the pid files glusterd keeps), then glusterd,
# then whatever we started that still runs in the namespace.
stop_all() {
    local f pid
    if [ -d "$DIR/run" ]; then
        while IFS= read -r f; do
            stop_pid "$f"
        done < <(find "$DIR/run" -name '*.pid' ! -path "$PIDFILE")
    fi
    stop_pid "$PIDFILE"
    if ip netns list | grep -qw "^$NETNS"; then
        # Only processes in our own namespace: ones we started.
        for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
            kill "$pid" 2>/dev/null || true
        done
        sleep 0.2
        for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null || true
        done
    fi
}

start() {
    if env_ready gluster && alive "$PIDFILE" &&
        cli volume status "$VOLUME" >/dev/null 2>&1; then
        return 0
    fi
    drop_env gluster
    stop_all
    rm -rf "$DIR"
    mkdir -p "$DIR/lib" "$DIR/run" "$DIR/log" "$DIR/brick"
    netns_up

    cat >"$DIR/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $DIR/lib
    option run-directory $DIR/run
    option logging-directory $DIR/log
    option glusterd-sockfile $SOCK
    option transport-type socket
    option transport.socket.bind-address $NS_IP
    option transport.socket.listen-port $PORT
    option transport.socket.keepalive-time 10
    option transport.socket.keepalive-interval 2
    option transport.socket.read-fail-log off
    option ping-timeout 0
    option event-threads 1
    option base-port 49152
    option max-port 49200
end-volume
EOF
    # glusterd runs gsyncd (python) about 15 times at start to configure
    # geo-replication, which takes seconds; this stand-in answers at once.
    printf '#!/bin/sh\n[ "$1" = --version ] && echo "gsyncd.py 4.0.0"\nexit 0\n' >"$DIR/gsyncd"
    chmod +x "$DIR/gsyncd"
    mkdir -p "$DIR/var-lib" "$DIR/var-run"
    # glusterd runs in its own mount namespace too, where the stand-in
    # gsyncd and the directories it hard-codes (/var/lib/glusterd,
    # /var/run/gluster) are bind mounts of ours: nothing outside $DIR is
    # written. ip netns exec, unshare and sh all exec: the pid spawn
    # records is glusterd's.
    spawn "$PIDFILE" "$LOGFILE" ip netns exec "$NETNS" \
        unshare --mount --propagation private sh -c '
            { [ ! -e "$2" ] || mount --bind "$1/gsyncd" "$2"; } &&
            mkdir -p /var/lib/glusterd /var/run/gluster &&
            mount --bind "$1/var-lib" /var/lib/glusterd &&
            mount --bind "$1/var-run" /var/run/gluster &&
            exec glusterd -N -f "$1/glusterd.vol" -l "$1/log/glusterd.log" -L WARNING' \
        sh "$DIR" "$GSYNCD" ||
        die "glusterd did not start"
    local i
    for i in $(seq 1 100); do
        [ -S "$SOCK" ] && cli volume list >/dev/null 2>&1 && break
        alive "$PIDFILE" || die "glusterd exited"
        sleep 0.05
    done
    cli volume list >/dev/null 2>&1 || die "glusterd does not answer on $SOCK"
    cli volume create "$VOLUME" "$NS_IP:$DIR/brick/$VOLUME" force >/dev/null ||
        die "gluster volume create failed"
    cli volume start "$VOLUME" >/dev/null || die "gluster volume start failed"
    # The brick must be online before a client can mount.
    for i in $(seq 1 100); do
        cli volume status "$VOLUME" detail 2>/dev/null | grep -q '^Online *: Y' && break
        sleep 0.1
    done
    cli volume status "$VOLUME" detail | grep -q '^Online *: Y' || die "the brick of $VOLUME is not online"
    wait_tcp "$NS_IP" "$PORT" 10 || die "glusterd does not answer on $NS_IP:$PORT from the root namespace"
    write_env gluster \
        "HOST=$NS_IP" \
        "PORT=$PORT" \
        "VOLUME=$VOLUME" \
        "NETNS=$NETNS" \
        "URL_GLUSTER=gluster://$NS_IP/$VOLUME/ci"
}

stop() {
    drop_env gluster
    stop_all
    netns_down
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
