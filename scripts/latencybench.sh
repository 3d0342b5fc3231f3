#!/usr/bin/env bash
# Vote tail latency (issue 13, item 6): the open-model latency of vote POSTs at half the maximum
# vote rate, in one run, for
#   - hello:   the bare hyper server (benches/src/bin/hello.rs), GETs: the floor of our stack;
#   - before:  widget-server built from the commit BEFORE_REV (default HEAD: what this checkout
#              changes), or the binary BEFORE_BIN;
#   - after:   widget-server as built from this checkout;
#   - noflush: the same binary with flushing held off for the whole run (a control: what is left
#              of the gap to hello once flushing costs nothing).
# Every variant runs once per round, in a rotating order, so that a slow moment of the shared
# machine hits them alike; the figures are medians over the rounds, and after/before is the
# median of the per-round ratios. Each server has its own database in one ephemeral PostgreSQL,
# on this machine (as in production, PostgreSQL's COPY work competes for the same cores). At the
# end every server is stopped and its rows are checked against the 303s it answered.
# Prints a Markdown section for docs/BENCHMARKS.md. Loopback only; with the defaults about
# 4 minutes plus the builds.
#
#   BEFORE_REV=ce6e852 scripts/latencybench.sh
#   SECS=8 ROUNDS=5 RATE=20000 scripts/latencybench.sh      fixed rate instead of half the maximum
#   BEFORE_BIN=/path/widget-server NO_BUILD=1 scripts/latencybench.sh
#   PG_NICE=10 scripts/latencybench.sh      PostgreSQL at nice 10: it gets the CPU the servers leave,
#                                           as if it ran on a machine of its own (production)
#   PG_QUIET=1 scripts/latencybench.sh      no autovacuum and no checkpoint during the run either
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$(pwd)
secs=${SECS:-8}
rounds=${ROUNDS:-5}

die() { echo "latencybench.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }
need=()
command -v psql >/dev/null || need+=(postgresql-client)
command -v python3 >/dev/null || need+=(python3)
apt_install "${need[@]}"

work=$(mktemp -d /tmp/monavis-latbench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  git worktree remove --force "$work/before-src" >/dev/null 2>&1 || true
  scripts/pg.sh stop "$work/pg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
bin=$root/target/release

[ -n "${BEFORE_BIN:-}" ] || build_before "${BEFORE_REV:-HEAD}"
before_label=${before_label:-"widget-server $BEFORE_BIN"}
after_label="widget-server at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- widget-server || echo ' with uncommitted changes')"

if [ -z "${NO_BUILD:-}" ]; then
  say "building (release)"
  cargo build --release --locked -p widget-server -p loadtest -p monavis-benches --bins >&2
fi
cmp -s "$BEFORE_BIN" "$bin/widget-server" && die "the before and after binaries are the same file contents"

say "PostgreSQL"
scripts/pg.sh start "$work/pg" >/dev/null
. "$work/pg/env"
if [ -n "${PG_QUIET:-}" ]; then
  psql "$MONAVIS_TEST_DATABASE_URL" -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET autovacuum = off" \
    -c "ALTER SYSTEM SET max_wal_size = '20GB'" -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
fi
if [ -n "${PG_NICE:-}" ]; then
  # Backends are forked by the postmaster: they inherit its nice value.
  renice -n "$PG_NICE" -p "$(head -1 "$MONAVIS_TEST_PG_DIR/data/postmaster.pid")" >/dev/null
fi
pg_url() { echo "${MONAVIS_TEST_DATABASE_URL%/*}/$1"; }
open_limits=(--rate-per-minute 1000000000 --rate-per-minute-demarche 1000000000)
# No flush during the run: interval and batch far beyond it; all flushed at shutdown.
hold=(--flush-interval-ms 3600000 --flush-max-votes 100000000 --buffer-max-votes 100000000 --shutdown-timeout 300s)
declare -A server_bin=([before]=$BEFORE_BIN [after]=$bin/widget-server [noflush]=$bin/widget-server)
for v in before after noflush; do
  psql "$MONAVIS_TEST_DATABASE_URL" -q -c "CREATE DATABASE $v"
  mkdir -p "$work/$v"
  for d in 1 2 3 4 5 6 7 8 9 10; do
    (cd "$work/$v" && "${server_bin[$v]}" --database-url "$(pg_url $v)" --log warn demarche add --id $d --name "Démarche $d" >/dev/null)
  done
done

say "servers"
start_listener hello "$bin/hello" --listen 127.0.0.1:0
# Each in its own directory (its data/secret, its spill files).
cd "$work/before"
start_listener before "$BEFORE_BIN" --database-url "$(pg_url before)" --listen 127.0.0.1:0 --log warn "${open_limits[@]}"
cd "$work/after"
start_listener after "$bin/widget-server" --database-url "$(pg_url after)" --listen 127.0.0.1:0 --log warn "${open_limits[@]}"
cd "$work/noflush"
start_listener noflush "$bin/widget-server" --database-url "$(pg_url noflush)" --listen 127.0.0.1:0 --log warn \
  "${open_limits[@]}" "${hold[@]}"
cd "$root"

# load VARIANT JSON ARGS…: loadtest against VARIANT, results in JSON.
load() {
  local v=$1 json=$2; shift 2
  local mix=(--demarches 1,2,3,4,5,6,7,8,9,10 --secret-file "$work/$v/data/secret" --mix vote=100)
  [ "$v" = hello ] && mix=(--demarches 1 --secret-file "$work/after/data/secret" --mix button=100)
  "$bin/loadtest" --target "$(cat "$work/$v.addr")" "${mix[@]}" --concurrency 50 --source-ips 50 \
    --duration "${secs}s" --json "$json" "$@" >&2
}

if [ -n "${RATE:-}" ]; then
  rate=$RATE
else
  say "maximum vote rate (after, closed model, 50 connections, ${secs}s)"
  load after "$work/max.json"
  rate=$(python3 -c "import json;print(int(json.load(open('$work/max.json'))['rps']) // 2)")
fi

order=(hello before after noflush)
for r in $(seq 1 "$rounds"); do
  say "round $r of $rounds: open model, $rate req/s, ${secs}s each: ${order[*]}"
  for v in "${order[@]}"; do
    load "$v" "$work/r$r-$v.json" --rate "$rate"
  done
  order=("${order[@]:1}" "${order[0]}")
done

say "stopping the servers; checking the rows"
declare -A rows
for v in before after noflush; do
  kill -TERM "$(cat "$work/$v.pid")"
  wait "$(cat "$work/$v.pid")" || die "widget-server ($v) exited with $?"
  rows[$v]=$(psql "$(pg_url $v)" -Atc "SELECT count(*) FROM avis")
done

python3 - "$work" "$rounds" "$rate" "${rows[before]}" "${rows[after]}" "${rows[noflush]}" "${PG_NICE:-}" "${PG_QUIET:-}" "$before_label" "$after_label" <<'PY'
import json, os, statistics, sys
work, rounds, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = dict(zip(("before", "after", "noflush"), map(int, sys.argv[4:7])))
pg_nice, pg_quiet, before_label, after_label = sys.argv[7:11]
def load(name): return json.load(open(os.path.join(work, name)))
runs = {v: [load(f"r{r}-{v}.json") for r in range(1, rounds + 1)] for v in ("hello", "before", "after", "noflush")}
answered = {v: sum(j["total"]["status"].get("303", 0) for j in runs[v]) for v in rows}
if os.path.exists(os.path.join(work, "max.json")):
    answered["after"] += load("max.json")["total"]["status"].get("303", 0)
for v in rows:
    if rows[v] != answered[v]:
        sys.exit(f"latencybench: {v}: {rows[v]} rows stored but {answered[v]} votes answered 303")
def p(v, q): return [j["total"]["latency_ms"][q] for j in runs[v]]
def med(xs): return statistics.median(xs)
def span(xs): return f"{min(xs):.2f}–{max(xs):.2f}"
label = {
    "hello": "bare hyper `hello`, GET (floor)",
    "before": f"before: {before_label}",
    "after": f"after: {after_label}",
    "noflush": "widget-server (after), no flush during the run (control)",
}
print(f"### Open model, {rate:,} req/s" + (f", PostgreSQL at nice {pg_nice}" if pg_nice else "")
      + (", no autovacuum or checkpoint" if pg_quiet else "") + "\n")
mx = f"half the maximum of {rate * 2:,} votes/s measured in the same run" if os.path.exists(os.path.join(work, "max.json")) else "a fixed rate"
print(f"Open model at **{rate:,} req/s** ({mx}), 50 connections from 50 source addresses, "
      f"varied votes over 10 démarches; {rounds} interleaved rounds of {load('r1-after.json')['elapsed_s']:.0f} s per variant. "
      "Medians over the rounds (min–max in brackets)."
      + (f" PostgreSQL at nice {pg_nice} (`PG_NICE={pg_nice}`): it gets the CPU the servers leave." if pg_nice else
         " PostgreSQL at the servers' priority, on the same two cores.")
      + (" No autovacuum and no checkpoint during the run (`PG_QUIET=1`)." if pg_quiet else "") + "\n")
print("| variant | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | statuses (all rounds) |")
print("|---|---:|---:|---:|---:|---:|---|")
for v in ("hello", "before", "after", "noflush"):
    st = {}
    for j in runs[v]:
        for k, n in j["total"]["status"].items():
            st[k] = st.get(k, 0) + n
    sts = ", ".join(f"{k}: {n:,}" for k, n in sorted(st.items()))
    print(f"| {label[v]} | {med(p(v, 'p50')):.2f} | {med(p(v, 'p90')):.2f} | **{med(p(v, 'p99')):.2f}** ({span(p(v, 'p99'))}) "
          f"| {med(p(v, 'p999')):.2f} | {med(p(v, 'max')):.2f} | {sts} |")
ratio = [a / b for a, b in zip(p("after", "p99"), p("before", "p99"))]
print()
print(f"- p99 after / before, paired per round: **{med(ratio):.2f}×** ({span(ratio)}); each round: "
      + ", ".join(f"{r:.2f}" for r in ratio) + f" ({sum(r < 1 for r in ratio)} of {len(ratio)} below 1).")
print(f"- p99 after / bare hyper: {med([a / h for a, h in zip(p('after', 'p99'), p('hello', 'p99'))]):.2f}×; "
      f"no-flush control / bare hyper: {med([a / h for a, h in zip(p('noflush', 'p99'), p('hello', 'p99'))]):.2f}×.")
lag = max(j.get("schedule", {}).get("max_lag_ms", 0) for v in runs for j in runs[v])
print(f"- Rows stored = votes answered 303, checked after SIGTERM: before {rows['before']:,}, after {rows['after']:,}, "
      f"control {rows['noflush']:,}. Largest schedule lag of the generator itself: {lag:.1f} ms.")
PY
