#!/usr/bin/env bash
# Installs the system packages the build and the tests need, when missing.
# As root it installs them with apt-get; otherwise it says what to install.
set -euo pipefail

need=()
[ -f /usr/include/rocksdb/c.h ] || need+=(librocksdb-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
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
