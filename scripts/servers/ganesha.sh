#!/usr/bin/env bash
# nfs-ganesha (Debian, VFS FSAL) serving one NFSv3 export on 127.0.0.1, for
# the nfs target's tests.
#
#   bash scripts/servers/ganesha.sh start|stop
#
# Layout under $STATE_DIR/ganesha/: export/ (the exported directory),
# ganesha.conf, ganesha.log, ganesha.pid, rpcbind.pid, recovery/.
#
# In NFSv3 mode ganesha refuses to run unless it can register its programs
# with rpcbind, and rpcbind always listens on 0.0.0.0:111. So rpcbind runs
# inside a private network namespace ($NETNS), where that port reaches
# nobody, while ganesha stays in the host's namespace on 127.0.0.1 and
# registers through rpcbind's unix socket /run/rpcbind.sock, which is shared
# by the file system. Clients never ask rpcbind: they dial the fixed NFS and
# MOUNT ports written to ganesha.env.
#
# Ports: GANESHA_NFS_PORT (12049) and GANESHA_MOUNT_PORT (12048).
set -euo pipefail
SERVER=ganesha
source "$(dirname "$0")/lib.sh"

DIR=$STATE_DIR/ganesha
NETNS=chunkback-nfs
NFS_PORT=${GANESHA_NFS_PORT:-12049}
MOUNT_PORT=${GANESHA_MOUNT_PORT:-12048}
PSEUDO=/export
LOGFILE=$DIR/ganesha.log

start() {
    if env_ready ganesha && alive "$DIR/ganesha.pid"; then
        return 0
    fi
    drop_env ganesha
    command -v ganesha.nfsd >/dev/null || die "ganesha.nfsd is not installed: run bash scripts/servers/install.sh ganesha"
    command -v rpcbind >/dev/null || die "rpcbind is not installed: run bash scripts/servers/install.sh ganesha"
    mkdir -p "$DIR/export" "$DIR/recovery"
    # A ganesha started by hand, or left from a run whose pid file is gone,
    # would hold the ports.
    if ! alive "$DIR/ganesha.pid" && (exec 3<>"/dev/tcp/127.0.0.1/$NFS_PORT") 2>/dev/null; then
        die "port $NFS_PORT on 127.0.0.1 is taken by another process; set GANESHA_NFS_PORT"
    fi

    start_rpcbind

    cat >"$DIR/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Protocols = 3;
    Bind_addr = 127.0.0.1;
    NFS_Port = $NFS_PORT;
    MNT_Port = $MOUNT_PORT;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    # NFSv3 clients mount the pseudo path ($PSEUDO), not the real directory.
    mount_path_pseudo = true;
}
NFSV4 {
    # No grace period after a (re)start: the fault tests restart the server
    # and go on at once.
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = "$DIR/recovery";
}
NFS_KRB5 { Active_krb5 = false; }
EXPORT_DEFAULTS {
    SecType = sys;
    Squash = No_Root_Squash;
}
EXPORT {
    Export_Id = 1;
    Path = "$DIR/export";
    Pseudo = "$PSEUDO";
    Access_Type = RW;
    Protocols = 3;
    Transports = TCP;
    FSAL { Name = VFS; }
}
LOG {
    Default_Log_Level = EVENT;
    Components { DBUS = FATAL; }
}
EOF
    if ! alive "$DIR/ganesha.pid"; then
        # -F keeps it in the foreground so spawn's pid is ganesha's own.
        spawn "$DIR/ganesha.pid" "$LOGFILE" ganesha.nfsd -F -f "$DIR/ganesha.conf" \
            -L "$LOGFILE" -p "$DIR/ganesha.pid.own" -N NIV_EVENT ||
            die "ganesha.nfsd did not start"
    fi
    wait_tcp 127.0.0.1 "$NFS_PORT" 20 || die "ganesha does not answer on 127.0.0.1:$NFS_PORT"
    wait_tcp 127.0.0.1 "$MOUNT_PORT" 20 || die "ganesha's mount protocol does not answer on 127.0.0.1:$MOUNT_PORT"
    alive "$DIR/ganesha.pid" || die "ganesha.nfsd exited"

    write_env ganesha \
        "HOST=127.0.0.1" \
        "NFS_PORT=$NFS_PORT" \
        "MOUNT_PORT=$MOUNT_PORT" \
        "EXPORT=$PSEUDO" \
        "EXPORT_DIR=$DIR/export" \
        "PID_FILE=$DIR/ganesha.pid" \
        "URL_NFS=nfs://127.0.0.1:$NFS_PORT$PSEUDO/ci?mount_port=$MOUNT_PORT"
}

# start_rpcbind runs rpcbind in the private network namespace $NETNS unless
# one already answers on /run/rpcbind.sock (ours, another instance's of this
# script, or the host's own).
start_rpcbind() {
    if rpcbind_answers; then
        return 0
    fi
    ip netns list | grep -qw "^$NETNS" || ip netns add "$NETNS"
    ip netns exec "$NETNS" ip link set lo up
    rm -f /run/rpcbind.sock # left by an rpcbind that died
    mkdir -p /run/rpcbind
    # -f: foreground (spawn records its pid); no -w, which would read a
    # stale warm-start file.
    spawn "$DIR/rpcbind.pid" "$DIR/rpcbind.log" ip netns exec "$NETNS" rpcbind -f ||
        die "rpcbind did not start"
    local i
    for i in $(seq 1 50); do
        rpcbind_answers && return 0
        sleep 0.1
    done
    LOGFILE=$DIR/rpcbind.log die "rpcbind does not answer on /run/rpcbind.sock"
}

# rpcbind_answers tells whether a process accepts connections on rpcbind's socket.
rpcbind_answers() {
    [ -S /run/rpcbind.sock ] && /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_UNIX)
s.connect("/run/rpcbind.sock")' 2>/dev/null
}

stop() {
    drop_env ganesha
    stop_pid "$DIR/ganesha.pid"
    # Only the instance that started rpcbind stops it (and its namespace):
    # another instance of this script (a test's private ganesha) may share it.
    if [ -s "$DIR/rpcbind.pid" ]; then
        stop_pid "$DIR/rpcbind.pid"
        if ip netns list 2>/dev/null | grep -qw "^$NETNS"; then
            ip netns del "$NETNS" 2>/dev/null || true
        fi
    fi
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
