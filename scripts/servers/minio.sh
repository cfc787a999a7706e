#!/usr/bin/env bash
# MinIO for the s3 target tests: two single-drive servers on loopback, one
# over plain HTTP (the main tests, the CLI round trip) and one over HTTPS with
# a certificate signed by a private CA made here (the TLS tests; the s3
# package also kills and restarts this one to test a server dying
# mid-upload, so nothing else should use it).
#
#   bash scripts/servers/minio.sh start|stop
#
# Everything lives under $STATE_DIR/minio/; the ports are kept there too, so
# a restart (after a test killed a server) reuses them. Writes
# $STATE_DIR/minio.env last:
#   ENDPOINT, ACCESS_KEY, SECRET_KEY, REGION   the HTTP server, test credentials
#   TLS_ENDPOINT, CA_FILE                      the HTTPS server and the CA that signed it
#   PID_FILE, TLS_PID_FILE                     the servers' pid files
#   URL_S3, CLI_AWS_*                          the CLI's --target URL and environment
set -euo pipefail
SERVER=minio
. "$(dirname "$0")/lib.sh"

BIN=${MINIO_BIN:-$(go env GOPATH)/bin/minio}
DIR=$STATE_DIR/minio
ACCESS_KEY=chunkback
SECRET_KEY=chunkback-minio-secret
REGION=us-east-1
BUCKET=chunkback-minio

# port_of NAME prints the port kept in $DIR/NAME.port, choosing a free one
# the first time (or when the server is down and something else took it).
port_of() {
    local f=$DIR/$1.port p
    p=$(cat "$f" 2>/dev/null || true)
    if [ -n "$p" ] && alive "$DIR/$1.pid"; then
        echo "$p"
        return
    fi
    if [ -z "$p" ] || (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        p=$(free_port)
        echo "$p" >"$f"
    fi
    echo "$p"
}

# make_certs writes a private CA and a server certificate for 127.0.0.1 and
# localhost signed by it (once: they are kept across restarts).
make_certs() {
    local c=$DIR/certs
    [ -s "$c/public.crt" ] && [ -s "$DIR/ca.crt" ] && return 0
    mkdir -p "$c"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=chunkback test CA" \
        -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$c/private.key" -out "$DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$DIR/server.ext"
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
        -days 3650 -extfile "$DIR/server.ext" -out "$c/public.crt" 2>/dev/null
    chmod 600 "$c/private.key" "$DIR/ca.key"
}

# run NAME PORT [minio flags...] starts one server unless it runs already.
run() {
    local name=$1 port=$2
    shift 2
    alive "$DIR/$name.pid" && return 0
    rm -f "$DIR/$name.pid" # stale: spawn waits for a new one
    mkdir -p "$DIR/$name-data"
    LOGFILE=$DIR/$name.log
    (
        export MINIO_ROOT_USER=$ACCESS_KEY MINIO_ROOT_PASSWORD=$SECRET_KEY MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1
        spawn "$DIR/$name.pid" "$LOGFILE" "$BIN" server "$DIR/$name-data" \
            --address "127.0.0.1:$port" --quiet --anonymous "$@"
    ) || die "$name did not start"
}

# ready URL [curl flags...] waits until the server at URL answers its health check.
ready() {
    local url=$1 i
    shift
    if ! command -v curl >/dev/null; then
        wait_tcp 127.0.0.1 "${url##*:}" 30
        return
    fi
    for i in $(seq 1 300); do
        if curl -fsS -o /dev/null "$@" "$url/minio/health/ready" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

start() {
    [ -x "$BIN" ] || die "no MinIO binary at $BIN: run bash scripts/servers/install.sh minio"
    mkdir -p "$DIR"
    make_certs
    local port tls_port
    port=$(port_of http)
    tls_port=$(port_of tls)
    run http "$port"
    run tls "$tls_port" --certs-dir "$DIR/certs"
    LOGFILE=$DIR/http.log ready "http://127.0.0.1:$port" || LOGFILE=$DIR/http.log die "MinIO on port $port does not answer"
    LOGFILE=$DIR/tls.log ready "https://127.0.0.1:$tls_port" --cacert "$DIR/ca.crt" ||
        LOGFILE=$DIR/tls.log die "MinIO over TLS on port $tls_port does not answer"
    local endpoint=http://127.0.0.1:$port
    write_env minio \
        "ENDPOINT=$endpoint" \
        "ACCESS_KEY=$ACCESS_KEY" \
        "SECRET_KEY=$SECRET_KEY" \
        "REGION=$REGION" \
        "TLS_ENDPOINT=https://127.0.0.1:$tls_port" \
        "CA_FILE=$DIR/ca.crt" \
        "PID_FILE=$DIR/http.pid" \
        "TLS_PID_FILE=$DIR/tls.pid" \
        "URL_S3=s3://$BUCKET/ci?endpoint=$endpoint&region=$REGION&path_style=true" \
        "CLI_AWS_ACCESS_KEY_ID=$ACCESS_KEY" \
        "CLI_AWS_SECRET_ACCESS_KEY=$SECRET_KEY" \
        "CLI_AWS_REGION=$REGION"
}

stop() {
    drop_env minio
    local name
    for name in http tls; do
        alive "$DIR/$name.pid" || rm -f "$DIR/$name.pid"
        stop_pid "$DIR/$name.pid"
    done
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
