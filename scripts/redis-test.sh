#!/usr/bin/env bash
# Starts a throw-away redis-server in the foreground for trying the Redis
# storage backend by hand: loopback only, data in a temporary directory that
# is removed on exit.
#
#   scripts/redis-test.sh            # port 6379, no persistence
#   scripts/redis-test.sh 6390 aof   # port 6390, append-only file (fsync always)
#
# Then point [storage.redis] addr at 127.0.0.1:<port>. The Go tests do not
# need this script: they start their own servers (kalamdb-store/redis/redistest).
set -euo pipefail
port=${1:-6379}
mode=${2:-volatile}
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is not installed; install it with: apt-get install redis-server (or make deps)" >&2
  exit 1
fi
case "$mode" in
  volatile) persist=(--appendonly no) ;;
  aof) persist=(--appendonly yes --appendfsync always) ;;
  *) echo "unknown mode '$mode': want volatile or aof" >&2; exit 2 ;;
esac
dir=$(mktemp -d -t kalamdb-redis-XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "redis-server on 127.0.0.1:$port ($mode), data in $dir; Ctrl-C to stop" >&2
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" \
  --maxmemory-policy noeviction --daemonize no "${persist[@]}"
