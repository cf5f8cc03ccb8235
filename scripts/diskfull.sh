#!/usr/bin/env bash
# Reproduces a full Parquet disk against the real server and shows that it
# stays up: storage.parquet_dir on a 2 MiB tmpfs, RocksDB on the normal
# disk, a shared table flushed every 500 rows, and 3,000 rows of 2 KiB of
# random text written into it. The policy flushes fill the tmpfs; the
# script then checks that the process is still running, that /readyz says
# "degraded" naming the Parquet directory and "no space left on device",
# that kalamdb_cold_tier_healthy is 0, and that reads and writes still
# work. It grows the tmpfs to 64 MiB and waits until a retry of the
# scheduler has flushed every row (kalamdb_cold_tier_healthy 1, no
# buffered row), then stops the server with SIGTERM and checks its exit.
#
#   scripts/diskfull.sh        (make diskfull)
#   DISKFULL_BIN=path/to/kalamdb-server scripts/diskfull.sh   (a binary built before)
#
# It needs root and a kernel that lets it mount a tmpfs; without them it
# says so and exits 0. It takes about half a minute (the backoff's retries) and
# is not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "diskfull: skipped: mounting a tmpfs needs root" >&2
  exit 0
fi
work=$(mktemp -d -t kalamdb-diskfull-XXXXXX)
mnt="$work/parquet"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=2m tmpfs "$mnt" 2>"$work/mount.err"; then
  echo "diskfull: skipped: cannot mount a tmpfs here: $(cat "$work/mount.err")" >&2
  rm -rf "$work"
  exit 0
fi
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  umount "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "diskfull: FAIL: $*" >&2
  echo "--- server log (last 40 lines) ---" >&2
  tail -n 40 "$work/server.log" >&2 || true
  exit 1
}

bin=${DISKFULL_BIN:-}
if [ -z "$bin" ]; then
  echo "diskfull: building the server" >&2
  bin="$work/kalamdb-server"
  go build -o "$bin" ./kalamdb-server/cmd/kalamdb-server
fi

token=diskfull-token
cat >"$work/config.toml" <<EOF
[server]
host = "127.0.0.1"
port = 0
[storage]
backend = "rocksdb"
parquet_dir = "$mnt"
[storage.rocksdb]
path = "$work/rocksdb"
[[auth.users]]
id = "admin"
role = "admin"
token = "$token"
EOF

"$bin" serve --config "$work/config.toml" >"$work/server.log" 2>&1 &
pid=$!
addr=
for _ in $(seq 1 100); do
  addr=$(sed -n 's/.*kalamdb-server listening" addr=\([^ ]*\).*/\1/p' "$work/server.log" | head -n 1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the server did not start"
  sleep 0.1
done
[ -n "$addr" ] || fail "the server did not log its address"
base="http://$addr"
echo "diskfull: server $pid on $base, Parquet on a 2 MiB tmpfs at $mnt" >&2

api() { # method path [body]
  if [ $# -ge 3 ]; then
    curl -sS -o "$work/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' --data-binary "@$3" "$base$2"
  else
    curl -sS -o "$work/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token" "$base$2"
  fi
}
metric() { curl -sS "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
expect() { # status method path [body]
  local want=$1
  shift
  local got
  got=$(api "$@") || fail "$1 $2: curl failed (is the server down?)"
  [ "$got" = "$want" ] || fail "$1 $2: status $got, want $want: $(cat "$work/body")"
}
# wait_for description command...: polls for up to 120 s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 240); do
    if "$@"; then return 0; fi
    kill -0 "$pid" 2>/dev/null || fail "the server died while waiting for: $what"
    sleep 0.5
  done
  fail "timed out waiting for: $what"
}

echo '{"name":"app"}' >"$work/ns.json"
expect 201 POST /v1/namespaces "$work/ns.json"
echo '{"name":"blobs","type":"shared","columns":[{"name":"id","type":"int64"},{"name":"body","type":"string"}],"primary_key":"id","flush":{"rows":500,"interval_seconds":0}}' >"$work/table.json"
expect 201 POST /v1/namespaces/app/tables "$work/table.json"

echo "diskfull: writing 3000 rows of 2 KiB (about 6 MB for a 2 MiB disk)" >&2
for batch in $(seq 0 59); do
  {
    printf '{"rows":['
    for i in $(seq 1 50); do
      id=$((batch * 50 + i))
      [ "$i" -gt 1 ] && printf ','
      printf '{"id":%d,"body":"%s"}' "$id" "$(head -c 1536 /dev/urandom | base64 -w 0)"
    done
    printf ']}'
  } >"$work/rows.json"
  expect 201 POST /v1/namespaces/app/tables/blobs/rows "$work/rows.json"
done

unhealthy() { [ "$(metric kalamdb_cold_tier_healthy)" = 0 ]; }
wait_for "kalamdb_cold_tier_healthy 0" unhealthy
echo "diskfull: the Parquet disk is full: $(df -h "$mnt" | tail -n 1)" >&2
kill -0 "$pid" 2>/dev/null || fail "the server died"
readyz=$(curl -sS -w ' %{http_code}' "$base/readyz" | tr -d '\n')
case "$readyz" in
  *'"degraded":true'*"no space left on device"*" 200") ;;
  *) fail "/readyz: $readyz" ;;
esac
case "$readyz" in
  *"$mnt"*) ;;
  *) fail "/readyz does not name the Parquet directory: $readyz" ;;
esac
echo "diskfull: /readyz: $readyz" >&2
echo "diskfull: kalamdb_flush_total{result=\"error\",trigger=\"policy\"} = $(metric 'kalamdb_flush_total{result="error",trigger="policy"}')" >&2
expect 200 GET '/v1/namespaces/app/tables/blobs/rows?limit=5'
expect 200 GET /v1/namespaces/app/tables/blobs/rows/2999
echo '{"rows":[{"id":100000,"body":"written while the disk is full"}]}' >"$work/one.json"
expect 201 POST /v1/namespaces/app/tables/blobs/rows "$work/one.json"
echo "diskfull: reads and writes work while the disk is full" >&2

echo "diskfull: growing the tmpfs to 64 MiB" >&2
mount -o remount,size=64m "$mnt"
flushed() {
  [ "$(metric kalamdb_cold_tier_healthy)" = 1 ] || return 1
  [ "$(api GET /v1/namespaces/app/tables/blobs)" = 200 ] || return 1
  grep -q '"buffered_rows":0' "$work/body"
}
wait_for "a retry that flushes every row" flushed
echo "diskfull: flushed after the space returned: $(cat "$work/body")" >&2
expect 200 GET /v1/namespaces/app/tables/blobs/rows/100000
grep -q 'level=ERROR msg="cold tier: writing' "$work/server.log" || fail "the failure was not logged"
grep -q 'flushes work again' "$work/server.log" || fail "the recovery was not logged"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || fail "the server exited with status $status"
if grep -q 'panic' "$work/server.log"; then fail "the log mentions a panic"; fi
echo "diskfull: PASS: the server stayed up through a full Parquet disk and flushed everything once there was space" >&2
