# Shared shell functions of the server scripts; source it, don't run it.
#
# Every server keeps its data, logs and pid files under $STATE_DIR/<server>/
# and, once it answers, writes what a client needs to $STATE_DIR/<server>.env
# (KEY=VALUE lines, read by internal/servertest). Stop removes the .env file
# first, so a stopped server is never taken for a running one.

STATE_DIR=${CHUNKBACK_SERVERS_DIR:-/tmp/chunkback-servers}
mkdir -p "$STATE_DIR"

# log prints a line on stderr, prefixed with the server's name ($SERVER).
log() { printf '%s: %s\n' "${SERVER:-servers}" "$*" >&2; }

# die prints a line and, if a log file is given in $LOGFILE, its tail.
die() {
    log "$*"
    if [ -n "${LOGFILE:-}" ] && [ -f "$LOGFILE" ]; then
        log "last lines of $LOGFILE:"
        tail -n 30 "$LOGFILE" >&2
    fi
    exit 1
}

# free_port prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_tcp HOST PORT SECONDS waits until HOST:PORT accepts a connection.
wait_tcp() {
    local host=$1 port=$2 secs=${3:-30} i
    for i in $(seq 1 $((secs * 10))); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# spawn PIDFILE LOGFILE CMD... starts CMD in the background, detached from
# this shell, its pid in PIDFILE and its output in LOGFILE.
spawn() {
    local pidfile=$1 logfile=$2
    shift 2
    setsid sh -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
    local i
    for i in $(seq 1 50); do
        [ -s "$pidfile" ] && return 0
        sleep 0.1
    done
    return 1
}

# pid_alive PID tells whether PID runs. A zombie does not: where pid 1 does
# not reap orphans (some sandboxes), a killed daemon stays a zombie.
pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}

# alive PIDFILE tells whether the process in PIDFILE runs.
alive() { [ -s "$1" ] && pid_alive "$(cat "$1")"; }

# stop_pid PIDFILE stops the process in PIDFILE (TERM, then KILL after 10 s).
stop_pid() {
    local pidfile=$1 pid i
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if pid_alive "$pid"; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        pid_alive "$pid" && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}

# write_env SERVER KEY=VALUE... writes $STATE_DIR/SERVER.env atomically.
write_env() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$STATE_DIR/$name.env.tmp"
    mv "$STATE_DIR/$name.env.tmp" "$STATE_DIR/$name.env"
}

# env_ready SERVER tells whether SERVER's .env exists (it is running).
env_ready() { [ -s "$STATE_DIR/$1.env" ]; }

# drop_env SERVER removes SERVER's .env file.
drop_env() { rm -f "$STATE_DIR/$1.env"; }
