#!/usr/bin/env bash
# Runs the storage benchmarks with -count >= 5 and -benchmem, keeps the raw
# output in $BENCH_OUT (bench.txt), then prints the backend/direct ratio of
# every BenchmarkDispatch operation (median ns/op and allocs/op of each side).
#
#   COUNT=6 BENCHTIME=1s bash scripts/bench.sh
#   BENCH=Dispatch PKGS=./kalamdb-store/rocksdb/ bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

count=${COUNT:-6}
benchtime=${BENCHTIME:-1s}
out=${BENCH_OUT:-bench.txt}
bench=${BENCH:-.}
# BenchmarkPartitions1000, BenchmarkCreatePartitions, BenchmarkCreateStall and
# BenchmarkGetAfterDrops take minutes per run, and BenchmarkGetVariants,
# BenchmarkPrefixCost and BenchmarkWriteBufferSize are one-off comparisons;
# run them on their own, e.g.:
#   go test -run '^$' -bench Partitions1000 -benchtime 1x ./kalamdb-store/rocksdb/
skip=${SKIP-Partitions1000|GetVariants|CreatePartitions|CreateStall|GetAfterDrops|PrefixCost|WriteBufferSize}
target=${TARGET:-1.02}
# Word-split on purpose: PKGS may list several patterns.
pkgs=${PKGS:-./kalamdb-store/...}

if [ "$count" -lt 5 ]; then
  echo "COUNT is $count; ratios need at least 5 runs of each benchmark" >&2
  exit 1
fi

# shellcheck disable=SC2086
go test -run '^$' -bench "$bench" -skip "$skip" -benchmem -count "$count" -benchtime "$benchtime" \
  -timeout 60m $pkgs | tee "$out"

if grep -q '^BenchmarkDispatch/.*/direct' "$out"; then
  echo
  echo "backend/direct (target <= $target; the ADR allows < 1.05):"
  go run ./tools/benchratio -target "$target" < "$out"
fi
