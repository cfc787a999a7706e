#!/usr/bin/env bash
# The whole test suite, on a fresh machine (Debian 12, Go 1.26, root or sudo).
# It installs what the tests need first: real OpenStack Cinder from Debian
# (the compatibility tests restore with it) and staticcheck.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh ./backup/  # only some packages (checks still run)
#
# Set CHUNKBACK_SKIP_CINDER=1 to skip the real-Cinder tests (a developer's
# choice; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if [ "${CHUNKBACK_SKIP_CINDER:-}" != 1 ]; then
    step "installing real Cinder 21.3.1 (Debian python3-cinder) for the compatibility tests"
    sh scripts/cinder/install.sh
fi

step "installing staticcheck"
STATICCHECK_VERSION=2026.2.2
GOBIN=$(go env GOPATH)/bin
if ! "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "$STATICCHECK_VERSION"; then
    go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

step "gofmt, go vet, staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
    echo "gofmt would change: $unformatted" >&2
    exit 1
fi
go vet ./...
"$GOBIN/staticcheck" ./...

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

step "benchmarks, one round each (they must keep working)"
go test -run '^$' -bench . -benchtime 1x -timeout 20m ./bench/...

step "go test -race ${pkgs[*]}"
go test -race -count=1 -timeout 30m "${pkgs[@]}"
