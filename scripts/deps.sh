#!/usr/bin/env bash
# Installs the system packages the build and the tests need, when missing.
# As root it installs them with apt-get; otherwise it says what to install.
set -euo pipefail

cd "$(dirname "$0")/.."

need=()
[ -f /usr/include/rocksdb/c.h ] || need+=(librocksdb-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# The etcd backend's tests start their own clusters of etcd (3.4) processes.
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
# node and npm run the DuckDB check of the Parquet segments (tools/duckdb-check).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]}" >&2
    echo "install them with: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

# The DuckDB check reads Parquet with @duckdb/node-api, pinned by
# tools/duckdb-check/package-lock.json.
if [ ! -f tools/duckdb-check/node_modules/@duckdb/node-api/package.json ]; then
  echo "installing tools/duckdb-check (npm ci)"
  (cd tools/duckdb-check && npm ci --no-audit --no-fund --loglevel=error)
fi
