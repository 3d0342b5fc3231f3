#!/usr/bin/env bash
# A short, bounded loadtest run in CI, so the tool never rots: a real widget-server on
# PostgreSQL, a few seconds of mixed traffic over loopback from many source addresses, then the
# end-to-end check that every vote answered 303 is stored once and avis_daily agrees.
# Needs MONAVIS_TEST_DATABASE_URL (scripts/test.sh sets it) and debug builds of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MONAVIS_TEST_DATABASE_URL:?run through scripts/test.sh}"

bin=target/debug
work=$(mktemp -d /tmp/monavis-smoke.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

psql "$MONAVIS_TEST_DATABASE_URL" -q -c "DROP DATABASE IF EXISTS loadtest_smoke" -c "CREATE DATABASE loadtest_smoke"
db="${MONAVIS_TEST_DATABASE_URL%/*}/loadtest_smoke"

cd "$work"
"$OLDPWD/$bin/widget-server" --database-url "$db" --log warn demarche add --id 1 --name "Smoke" >/dev/null
"$OLDPWD/$bin/widget-server" --database-url "$db" --log warn demarche add --id 2 --name "Smoke 2" >/dev/null
"$OLDPWD/$bin/widget-server" --database-url "$db" --listen 127.0.0.1:0 --log warn \
  --rate-per-minute 1000000000 --rate-per-minute-demarche 1000000000 --flush-interval-ms 200 >server.out 2>server.err &
server_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" server.out 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on //p' server.out)
[ -n "$addr" ] || { cat server.err >&2; echo "smoke: server did not start" >&2; exit 1; }

"$OLDPWD/$bin/loadtest" --target "$addr" --duration 3s --requests 20000 --concurrency 8 --source-ips 8 \
  --demarches 1,2 --secret-file data/secret --check-postgres "$db" --check-timeout 30s --check-settle 1s

kill -TERM "$server_pid"
status=0; wait "$server_pid" || status=$?
server_pid=""
[ "$status" = 0 ] || { cat server.err >&2; echo "smoke: server exited with $status" >&2; exit 1; }
echo "loadtest smoke run: OK"
