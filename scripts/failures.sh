#!/usr/bin/env bash
# Prints what failed in a `go test` output file: each failing test and the
# messages the tests reported (file:line), without the logs around them.
# Used by `make test`, so that the end of a long output names the failure.
set -euo pipefail
log=${1:?usage: failures.sh go-test-output-file}
echo
echo "=== what failed (the whole output is in $log)"
grep -E -A12 '^[[:space:]]*--- FAIL|^[[:space:]]+[A-Za-z0-9_]+_test\.go:[0-9]+:|^panic:|^FAIL|race detected' "$log" |
	grep -v -E 'level=(DEBUG|INFO)' | head -200
