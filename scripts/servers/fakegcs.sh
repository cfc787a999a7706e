#!/usr/bin/env bash
# Starts or stops fake-gcs-server (the Google Cloud Storage emulator the gcs
# target is tested against) on 127.0.0.1, with everything under
# $STATE_DIR/fakegcs/. Install it first: bash scripts/servers/install.sh fakegcs
#
#   bash scripts/servers/fakegcs.sh start|stop
#
# FAKEGCS_BACKEND=memory (default, fastest) or filesystem (objects under
# $STATE_DIR/fakegcs/storage, kept across restarts). FAKEGCS_PORT picks the
# port (default: a free one).
#
# Writes $STATE_DIR/fakegcs.env:
#   ENDPOINT  http://127.0.0.1:PORT (Config.Endpoint, with Config.Anonymous)
#   HOST      127.0.0.1:PORT (for STORAGE_EMULATOR_HOST)
#   PROJECT   the project ID buckets are created in
#   BUCKET    a bucket that exists (created here)
#   URL_GS    the --target URL of the CLI tests, and its CLI_ environment
set -euo pipefail
SERVER=fakegcs
. "$(dirname "$0")/lib.sh"

DIR=$STATE_DIR/fakegcs
PIDFILE=$DIR/fake-gcs-server.pid
LOGFILE=$DIR/fake-gcs-server.log
BIN=$(go env GOPATH)/bin/fake-gcs-server
BACKEND=${FAKEGCS_BACKEND:-memory}
PROJECT=test
BUCKET=chunkback-ci

# http_status METHOD URL prints the HTTP status of a request (000 if none).
http_status() {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[2], method=sys.argv[1], data=b'{"name":"chunkback-ci"}' if sys.argv[1] == "POST" else None,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

start() {
    if alive "$PIDFILE" && env_ready fakegcs; then
        log "already running ($(grep ^ENDPOINT= "$STATE_DIR/fakegcs.env"))"
        return 0
    fi
    stop_pid "$PIDFILE"
    drop_env fakegcs
    [ -x "$BIN" ] || die "$BIN is missing: run bash scripts/servers/install.sh fakegcs"
    mkdir -p "$DIR"
    : >"$LOGFILE"

    local port=${FAKEGCS_PORT:-$(free_port)}
    local args=(-scheme http -host 127.0.0.1 -port "$port"
        -public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port"
        -location US -log-level warn -backend "$BACKEND")
    case $BACKEND in
    memory) ;;
    filesystem) mkdir -p "$DIR/storage" && args+=(-filesystem-root "$DIR/storage") ;;
    *) die "FAKEGCS_BACKEND=$BACKEND: use memory or filesystem" ;;
    esac
    spawn "$PIDFILE" "$LOGFILE" "$BIN" "${args[@]}" || die "fake-gcs-server did not start"
    wait_tcp 127.0.0.1 "$port" 30 || die "fake-gcs-server does not listen on 127.0.0.1:$port"

    local endpoint=http://127.0.0.1:$port i code
    for i in $(seq 1 50); do
        code=$(http_status GET "$endpoint/storage/v1/b?project=$PROJECT")
        [ "$code" = 200 ] && break
        alive "$PIDFILE" || die "fake-gcs-server exited"
        sleep 0.1
    done
    [ "$code" = 200 ] || die "fake-gcs-server does not answer (HTTP $code)"
    # The bucket of URL_GS, so the URL works without --create too (409: it
    # is kept from an earlier run of the filesystem backend).
    code=$(http_status POST "$endpoint/storage/v1/b?project=$PROJECT")
    case $code in 200 | 409) ;; *) die "cannot create bucket $BUCKET (HTTP $code)" ;; esac

    write_env fakegcs \
        "ENDPOINT=$endpoint" \
        "HOST=127.0.0.1:$port" \
        "PROJECT=$PROJECT" \
        "BUCKET=$BUCKET" \
        "URL_GS=gs://$BUCKET/ci" \
        "CLI_STORAGE_EMULATOR_HOST=127.0.0.1:$port" \
        "CLI_GOOGLE_CLOUD_PROJECT=$PROJECT"
    log "running on $endpoint (backend $BACKEND, pid $(cat "$PIDFILE"))"
}

stop() {
    drop_env fakegcs
    stop_pid "$PIDFILE"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
