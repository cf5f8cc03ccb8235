#!/usr/bin/env bash
# Runs the storage benchmarks with -count >= 5 and prints the figures.
set -euo pipefail
count=${COUNT:-6}
benchtime=${BENCHTIME:-1s}
out=${BENCH_OUT:-bench.txt}
go test -run '^$' -bench . -benchmem -count "$count" -benchtime "$benchtime" \
  ./kalamdb-store/... | tee "$out"
