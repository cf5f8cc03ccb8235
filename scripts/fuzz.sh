#!/usr/bin/env bash
# Runs every native fuzz target of the workspace for the given time each.
set -euo pipefail
fuzztime=${1:-60s}
found=0
for dir in $(go list -f '{{.Dir}}' work); do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    found=1
    echo "== $target in ${dir#$PWD/} for $fuzztime"
    (cd "$dir" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s .)
  done
done
[ "$found" -eq 1 ] || { echo "no fuzz targets found" >&2; exit 1; }
