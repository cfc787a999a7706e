#!/usr/bin/env bash
# Starts or stops Azurite (Microsoft's Azure Storage emulator; the azure target
# is tested against its blob service) on 127.0.0.1, with everything under
# $STATE_DIR/azurite/. Install it first: bash scripts/servers/install.sh azurite
#
#   bash scripts/servers/azurite.sh start|stop
#
# Two blob services run, both in memory:
#   - plain HTTP with Shared Key and SAS authentication (what the tests, the
#     CLI round trip and the benchmarks use);
#   - HTTPS with a self-signed certificate and --oauth basic, so that the
#     token credentials (managed identity, DefaultAzureCredential) are tested
#     against a real blob service too (Azurite accepts bearer tokens only over
#     HTTPS; in basic mode it checks their audience, issuer and expiry, not
#     their signature).
# AZURITE_PORT and AZURITE_OAUTH_PORT pick the ports (default: free ones).
# The HTTP instance keeps blobs on disk under $STATE_DIR/azurite/blob/data:
# Azurite frees the blocks of deleted blobs only every 10 minutes, and the
# tests and benchmarks write several GiB in that time, more than an
# in-memory store holds (writes then fail with 409
# MemoryExtentStoreAtSizeLimit). The OAuth instance, little used, keeps them
# in memory (256 MiB).
#
# Writes $STATE_DIR/azurite.env:
#   ENDPOINT           http://127.0.0.1:PORT/devstoreaccount1 (the account's blob service URL)
#   ACCOUNT, KEY       the well-known development account and its key
#   CONNECTION_STRING  the same as a connection string
#   OAUTH_ENDPOINT     https://127.0.0.1:PORT2/devstoreaccount1 (bearer tokens)
#   OAUTH_CA           the PEM certificate that endpoint presents
#   URL_AZBLOB         the --target URL of the CLI tests, and its CLI_ environment
set -euo pipefail
SERVER=azurite
. "$(dirname "$0")/lib.sh"

DIR=$STATE_DIR/azurite
TOOLS=${CHUNKBACK_TOOLS_DIR:-$HOME/.cache/chunkback/tools}
BIN=$TOOLS/azurite/node_modules/.bin/azurite-blob
ACCOUNT=devstoreaccount1
# The well-known key of Azurite's (and the old storage emulator's) development
# account: public, documented by Microsoft, good for nothing but the emulator.
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
CONTAINER=chunkback-ci

# answers URL tells whether anything answers HTTP(S) at URL (any status).
answers() {
    /usr/bin/python3 - "$1" <<'EOF'
import ssl, sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2, context=ssl._create_unverified_context())
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
EOF
}

# run NAME PORT MEMORY_MB ARGS... starts one azurite-blob instance and waits
# for it; MEMORY_MB 0 keeps its blobs on disk.
run() {
    local name=$1 port=$2 mem=$3 scheme=http
    shift 3
    case " $* " in *" --cert "*) scheme=https ;; esac
    local pidfile=$DIR/$name.pid logfile=$DIR/$name.log
    stop_pid "$pidfile"
    : >"$logfile"
    mkdir -p "$DIR/$name"
    # Azurite writes its debug files and (unused) databases below the
    # current directory: keep them under $DIR.
    local store=(--inMemoryPersistence --extentMemoryLimit "$mem")
    if [ "$mem" = 0 ]; then
        rm -rf "$DIR/$name/data"
        store=(--location "$DIR/$name/data")
    fi
    (cd "$DIR/$name" && spawn "$pidfile" "$logfile" "$BIN" --blobHost 127.0.0.1 --blobPort "$port" \
        "${store[@]}" --skipApiVersionCheck --disableTelemetry \
        --silent "$@") || LOGFILE=$logfile die "$name did not start"
    local i
    for i in $(seq 1 100); do
        answers "$scheme://127.0.0.1:$port/$ACCOUNT?comp=list" && return 0
        alive "$pidfile" || LOGFILE=$logfile die "$name exited"
        sleep 0.1
    done
    LOGFILE=$logfile die "$name does not answer on $scheme://127.0.0.1:$port"
}

start() {
    if alive "$DIR/blob.pid" && alive "$DIR/oauth.pid" && env_ready azurite; then
        log "already running ($(grep ^ENDPOINT= "$STATE_DIR/azurite.env"))"
        return 0
    fi
    drop_env azurite
    [ -x "$BIN" ] || die "$BIN is missing: run bash scripts/servers/install.sh azurite"
    mkdir -p "$DIR"

    if [ ! -s "$DIR/cert.pem" ] || [ ! -s "$DIR/key.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=127.0.0.1 \
            -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
            -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null || die "openssl cannot make a test certificate"
    fi

    local port=${AZURITE_PORT:-$(free_port)} oport=${AZURITE_OAUTH_PORT:-$(free_port)}
    run blob "$port" 0 &
    local p1=$!
    run oauth "$oport" 256 --oauth basic --cert "$DIR/cert.pem" --key "$DIR/key.pem" &
    local p2=$!
    wait "$p1" || exit 1
    wait "$p2" || exit 1

    local endpoint=http://127.0.0.1:$port/$ACCOUNT
    local cs="DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$KEY;BlobEndpoint=$endpoint;"
    write_env azurite \
        "ENDPOINT=$endpoint" \
        "ACCOUNT=$ACCOUNT" \
        "KEY=$KEY" \
        "CONNECTION_STRING=$cs" \
        "OAUTH_ENDPOINT=https://127.0.0.1:$oport/$ACCOUNT" \
        "OAUTH_CA=$DIR/cert.pem" \
        "URL_AZBLOB=azblob://$CONTAINER/ci" \
        "CLI_AZURE_STORAGE_CONNECTION_STRING=$cs"
    log "blob service on $endpoint, OAuth (HTTPS) on https://127.0.0.1:$oport/$ACCOUNT"
}

stop() {
    drop_env azurite
    stop_pid "$DIR/blob.pid"
    stop_pid "$DIR/oauth.pid"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
