#!/usr/bin/env bash
# The whole test suite, on a fresh machine (Debian 12, Go 1.26, root or sudo).
# It installs what the tests need first: real OpenStack Cinder from Debian
# (the compatibility tests restore with it), staticcheck, and every storage
# server the targets are tested against (scripts/servers/start.sh installs
# and starts them on loopback: Ceph with radosgw, MinIO, OpenStack Swift,
# fake-gcs-server, Azurite, nfs-ganesha, a go-nfs server and glusterd).
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh ./backup/  # only some packages (checks still run;
#                                   # the fuzzers run only with everything)
#
# FUZZTIME (default 10s) is how long each fuzzer runs.
# A developer may skip parts (CI never does):
#   CHUNKBACK_SKIP_CINDER=1              the real-Cinder tests
#   CHUNKBACK_SKIP_RESTIC=1              the restic peer's tests
#   CHUNKBACK_SKIP_SERVERS=minio,swift   those servers' tests ("all": every one)
# The servers keep running afterwards (a second run starts in seconds);
# bash scripts/servers/stop.sh stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if [ "${CHUNKBACK_SKIP_CINDER:-}" != 1 ]; then
    step "installing real Cinder 21.3.1 (Debian python3-cinder) for the compatibility tests"
    sh scripts/cinder/install.sh
fi

if [ "${CHUNKBACK_SKIP_RESTIC:-}" != 1 ]; then
    step "installing restic (Debian), the benchmarks' peer"
    bash scripts/bench/install.sh
fi

step "installing staticcheck"
STATICCHECK_VERSION=2026.2.2
GOBIN=$(go env GOPATH)/bin
if ! "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "$STATICCHECK_VERSION"; then
    go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

all_servers=(ceph minio swift fakegcs azurite ganesha gonfs gluster)
servers=()
for s in "${all_servers[@]}"; do
    case ",${CHUNKBACK_SKIP_SERVERS:-}," in
    *,all,* | *,"$s",*) ;;
    *) servers+=("$s") ;;
    esac
done
# The cgo targets build only with their C libraries (installed with their
# servers): build tags turn them on.
tags=()
for s in "${servers[@]}"; do
    case $s in
    ceph) tags+=(ceph pacific) ;;
    gluster) tags+=(gluster) ;;
    esac
done
TAGS=$(IFS=,; echo "${tags[*]}")
if [ ${#servers[@]} -gt 0 ]; then
    step "installing and starting the storage servers: ${servers[*]}"
    bash scripts/servers/start.sh "${servers[@]}"
fi

step "gofmt, go vet, staticcheck (without build tags, then with: $TAGS)"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
    echo "gofmt would change: $unformatted" >&2
    exit 1
fi
go vet ./...
"$GOBIN/staticcheck" ./...
if [ -n "$TAGS" ]; then
    go vet -tags "$TAGS" ./...
    "$GOBIN/staticcheck" -tags "$TAGS" ./...
fi

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

step "benchmarks, one round each (they must keep working)"
go test -tags "$TAGS" -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/...

step "go test -race -tags '$TAGS' ${pkgs[*]}"
go test -race -count=1 -tags "$TAGS" -timeout 45m "${pkgs[@]}"

if [ $# -eq 0 ] && [ -n "$TAGS" ] && [ ${#servers[@]} -eq ${#all_servers[@]} ]; then
    # Alone, after everything else: it kills and restarts shared servers.
    table=${CHUNKBACK_FAULT_TABLE:-/tmp/chunkback-fault-table.md}
    step "the fault matrix over every target of every server (outcome table: $table)"
    CHUNKBACK_FAULT_TABLE=$table go test -count=1 -tags "faultmatrix,$TAGS" -timeout 40m ./internal/faultmatrix/
fi

if [ $# -eq 0 ]; then
    FUZZTIME=${FUZZTIME:-10s}
    step "fuzzing the parsers and decompressors, $FUZZTIME each (scripts/fuzz.sh)"
    FUZZTIME=$FUZZTIME FUZZ_TAGS="$TAGS" bash scripts/fuzz.sh
fi
