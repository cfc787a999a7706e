#!/usr/bin/env bash
# Runs every native Go fuzzer of the module (func FuzzXxx in a *_test.go
# file) for $FUZZTIME each (default 20s), one after the other.
#
#   FUZZTIME=60s bash scripts/fuzz.sh
#
# Environment:
#   FUZZTIME       how long each fuzzer runs (go test -fuzztime; default 20s)
#   FUZZ_PARALLEL  fuzzing workers per fuzzer (default 1: the machine is shared)
#   FUZZ_TAGS      build tags (default ceph,pacific,gluster, so the rados://
#                  and gluster:// URL parsers are fuzzed too)
#
# A failure leaves the input that caused it in the package's
# testdata/fuzz/FuzzXxx/ directory: commit it, so that every later
# `go test` runs it as a regression test, and fix the parser.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-20s}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
FUZZ_TAGS=${FUZZ_TAGS:-ceph,pacific,gluster}

failed=0
# Packages whose tests hold fuzzers, found without compiling every package.
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for fuzzer in $(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
		echo "== fuzz $dir $fuzzer for $FUZZTIME"
		# A short minimization: minimizing a large interesting input (a
		# real _sha256file) can otherwise stall the run for a minute.
		# Go's fuzzer can end with a bare "context deadline exceeded" when
		# -fuzztime runs out while it minimizes a new interesting input (no
		# failing input is written then): that run is repeated once.
		for try in 1 2; do
			out=$(mktemp)
			if go test -tags "$FUZZ_TAGS" -run '^$' -fuzz "^${fuzzer}\$" -fuzztime "$FUZZTIME" \
				-fuzzminimizetime 2s -parallel "$FUZZ_PARALLEL" "$dir" 2>&1 | tee "$out"; then
				rm -f "$out"
				break
			fi
			if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
				echo "== $dir $fuzzer: the fuzzer's deadline expired while minimizing (no failing input); once more"
				rm -f "$out"
				continue
			fi
			rm -f "$out"
			echo "FAIL: $dir $fuzzer: the failing input is in $dir/testdata/fuzz/$fuzzer/" >&2
			failed=1
			break
		done
	done
done
exit $failed
