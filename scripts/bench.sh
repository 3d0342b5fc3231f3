#!/usr/bin/env bash
# Benchmarks, all in one run on this machine, side by side (README: "Benchmarks"):
#   - a bare hyper server (benches/src/bin/hello.rs): the ceiling of our stack;
#   - nginx serving the same button SVG with gzip_static and ETag;
#   - widget-server: buttons (200, 304, gzip), the form, vote POSTs against PostgreSQL;
#   - storage: our batched flush vs one INSERT per vote vs psql \copy of the same rows;
#   - partitioned avis: the flush into the month-partitioned avis vs the unpartitioned one (a
#     second database migrated only up to version 6), in alternating rounds, and a month's
#     primary-key index size;
#   - the flush into a month already holding 5,000,000 avis with varied comments and every
#     console index, against \copy into the same, in alternating rounds (flushbench --prefill);
#   - memory: RSS with 1,000,000 votes buffered, bytes per vote without comment;
#   - end to end: 1,000,000 votes through loadtest into PostgreSQL, zero loss checked.
# Static comparisons use wrk (a tool we did not write); the vote path uses our loadtest and wrk.
# Writes docs/BENCHMARKS.md. Loopback only; every run is bounded in time. Takes about 15 minutes after
# the build (2026-12-07, with other builds sharing the 2 cores).
#
#   scripts/bench.sh            full run
#   BENCH_SECONDS=3 BENCH_VOTES=100000 BENCH_PREFILL=500000 scripts/bench.sh     a quicker, rougher run
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$(pwd)
secs=${BENCH_SECONDS:-10}
votes=${BENCH_VOTES:-1000000}
out=${BENCH_OUT:-docs/BENCHMARKS.md}

die() { echo "bench.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v python3 >/dev/null || need+=(python3)
command -v psql >/dev/null || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  apt_install "${need[@]}"
  # Debian starts nginx on port 80 on install; we run our own.
  (systemctl stop nginx || service nginx stop || pkill -x nginx) >/dev/null 2>&1 || true
fi

say "building (release)"
cargo build --release --locked -p widget-server -p loadtest -p monavis-benches -p snippet --bins >&2
bin=$root/target/release

work=$(mktemp -d /tmp/monavis-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  scripts/pg.sh stop "$work/pg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  die "no free port"
}

# wrk run: prints "rps p50_ms p99_ms".
wrk_run() {
  local url=$1; shift
  wrk -t1 -c50 -d"${secs}s" --latency "$@" "$url" >"$work/wrk.txt" 2>&1 || { cat "$work/wrk.txt" >&2; die "wrk failed on $url"; }
  grep -q "Non-2xx or 3xx responses" "$work/wrk.txt" && { cat "$work/wrk.txt" >&2; die "errors from $url"; }
  python3 - "$work/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))
def ms(p):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
print(f"{rps:.0f} {ms(50):.3f} {ms(99):.3f}")
PY
}

# Best of N interleaved rounds: every comparison is run once per round, in turn, so a slow
# moment of the shared machine hits them alike; each keeps its best round.
rounds=${BENCH_ROUNDS:-2}
declare -A best
wrk_rounds() {
  local r name spec result
  for r in $(seq 1 "$rounds"); do
    for name in "${wrk_order[@]}"; do
      spec=${wrk_specs[$name]}
      # shellcheck disable=SC2086
      result=$(eval "wrk_run $spec")
      if [ -z "${best[$name]:-}" ] || [ "${result%% *}" -gt "${best[$name]%% *}" ]; then best[$name]=$result; fi
    done
  done
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

say "PostgreSQL"
scripts/pg.sh start "$work/pg" >/dev/null
. "$work/pg/env"
pg_url() { echo "${MONAVIS_TEST_DATABASE_URL%/*}/$1"; }
for db in serve flush flushplain prefill memory e2e; do psql "$MONAVIS_TEST_DATABASE_URL" -q -c "CREATE DATABASE $db"; done

say "servers"
start_listener hello "$bin/hello" --listen 127.0.0.1:0
hello=$(cat "$work/hello.addr")
start_listener hellolike "$bin/hello" --listen 127.0.0.1:0 --like-widget-server
hellolike=$(cat "$work/hellolike.addr")
mkdir -p "$work/static" "$work/ws"
cp assets/bouton-bleu.svg "$work/static/"
gzip -9 -k "$work/static/bouton-bleu.svg"
touch -r "$work/static/bouton-bleu.svg" "$work/static/bouton-bleu.svg.gz"
nginx_port=$(free_port)
cat >"$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 10000000;
  etag on;
  types { image/svg+xml svg; }
  client_body_temp_path $work/nginx-tmp;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/static;
    gzip_static on;
    location / { add_header Cache-Control "max-age=86400, s-maxage=604800"; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"
nginx_url="http://127.0.0.1:$nginx_port"
cd "$work/ws"
for d in 1 2 3 4 5 6 7 8 9 10; do
  "$bin/widget-server" --database-url "$(pg_url serve)" --log warn demarche add --id $d --name "Démarche $d" >/dev/null
done
open_limits=(--rate-per-minute 1000000000 --rate-per-minute-demarche 1000000000)
start_listener ws-serve "$bin/widget-server" --database-url "$(pg_url serve)" --listen 127.0.0.1:0 --log warn "${open_limits[@]}"
ws=$(cat "$work/ws-serve.addr")
ws_pid=$(cat "$work/ws-serve.pid")
start_listener ws-journal "$bin/widget-server" --database-url "$(pg_url serve)" --listen 127.0.0.1:0 --log warn "${open_limits[@]}" \
  --journal "$work/ws/journal"
wsj=$(cat "$work/ws-journal.addr")
wsj_pid=$(cat "$work/ws-journal.pid")
cd "$root"
key=$("$bin/snippet" --secret-file "$work/ws/data/secret" --public-url "$ws" --demarche 1 | sed -n 's/.*key=\([0-9a-f]*\)".*/\1/p')
[ -n "$key" ] || die "no key"
# GET URL; prints header NAME, or the body when NAME is empty.
http_get() {
  python3 - "$1" "${2:-}" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r:
    print(r.headers.get(sys.argv[2]) if sys.argv[2] else r.read().decode())
PY
}
etag_ws=$(http_get "$ws/static/bouton-bleu.svg" ETag)
etag_nginx=$(http_get "$nginx_url/bouton-bleu.svg" ETag)

say "static, pages and votes: wrk -t1 -c50 -d${secs}s, best of $rounds interleaved rounds"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "key=$key&nd_source=button&satisfaction=bien&facilite=facile&clarte=clair&aide=aucune"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
declare -A wrk_specs=(
  [hello]="'$hello/'"
  [hellolike]="'$hellolike/'"
  [ws200]="'$ws/static/bouton-bleu.svg'"
  [nginx200]="'$nginx_url/bouton-bleu.svg'"
  [ws304]="'$ws/static/bouton-bleu.svg' -H 'If-None-Match: $etag_ws'"
  [nginx304]="'$nginx_url/bouton-bleu.svg' -H 'If-None-Match: $etag_nginx'"
  [wsgz]="'$ws/static/bouton-bleu.svg' -H 'Accept-Encoding: gzip'"
  [nginxgz]="'$nginx_url/bouton-bleu.svg' -H 'Accept-Encoding: gzip'"
  [form]="'$ws/Demarches/1?view-mode=formulaire-avis&nd_source=button&key=$key'"
  [wrkvote]="'$ws/Demarches/1/avis' -s '$work/post.lua'"
  [wrkvotej]="'$wsj/Demarches/1/avis' -s '$work/post.lua'"
)
wrk_order=(hello hellolike ws200 nginx200 ws304 nginx304 wsgz nginxgz form wrkvote wrkvotej)
wrk_rounds
r_hello=${best[hello]}; r_hellolike=${best[hellolike]}; r_ws200=${best[ws200]}; r_nginx200=${best[nginx200]}; r_ws304=${best[ws304]}
r_nginx304=${best[nginx304]}; r_wsgz=${best[wsgz]}; r_nginxgz=${best[nginxgz]}; r_form=${best[form]}; r_wrkvote=${best[wrkvote]}; r_wrkvotej=${best[wrkvotej]}

say "votes: loadtest (varied votes over 10 démarches, 50 source addresses)"
lt=("$bin/loadtest" --target "$ws" --demarches 1,2,3,4,5,6,7,8,9,10 --secret-file "$work/ws/data/secret" --mix vote=100)
"${lt[@]}" --concurrency 50 --source-ips 50 --duration "${secs}s" --json "$work/vote-closed.json" >&2
# The same closed model against the bare hyper server, so the vote ratio is like for like too.
"$bin/loadtest" --target "$hello" --demarches 1 --secret-file "$work/ws/data/secret" --mix button=100 \
  --concurrency 50 --source-ips 50 --duration "${secs}s" --json "$work/hello-closed.json" >&2
max_rate=$(python3 -c "import json;print(int(json.load(open('$work/vote-closed.json'))['rps']))")
half=$(( max_rate / 2 ))
"${lt[@]}" --concurrency 50 --source-ips 50 --rate "$half" --duration "${secs}s" --json "$work/vote-open.json" >&2
# The same open model against the bare hyper server (GETs), as a same-run baseline for tails.
"$bin/loadtest" --target "$hello" --demarches 1 --secret-file "$work/ws/data/secret" --mix button=100 \
  --concurrency 50 --source-ips 50 --rate "$half" --duration "${secs}s" --json "$work/hello-open.json" >&2
kill -TERM "$ws_pid" "$wsj_pid"
wait "$ws_pid" || die "widget-server (serve) exited with $?"
wait "$wsj_pid" || die "widget-server (journal) exited with $?"

say "storage: batched flush vs one INSERT per vote vs psql \\copy"
"$bin/flushbench" --database-url "$(pg_url flush)" --votes "$votes" --naive 20000 --parallel 1 --csv "$work/rows.csv" >"$work/flush1.json"
"$bin/flushbench" --database-url "$(pg_url flush)" --votes "$votes" --naive 1000 --parallel 2 --csv "$work/rows.csv" >"$work/flush2.json"

say "partitioned avis: flush rate vs unpartitioned, primary-key index size per month"
# Half the votes of the storage step, 5 rounds each; this month only, then over two months.
pvotes=$(( votes / 2 ))
prounds=${BENCH_PARTITION_ROUNDS:-5}
postmaster=$(head -1 "$work/pg/data/postmaster.pid")
pflags=(--compare-partitioning --database-url "$(pg_url flush)" --plain-database-url "$(pg_url flushplain)"
  --votes "$pvotes" --rounds "$prounds" --parallel 2 --server-pid "$postmaster")
"$bin/flushbench" "${pflags[@]}" >"$work/partition1.json"
"$bin/flushbench" "${pflags[@]}" --two-months >"$work/partition2.json"
psql "$(pg_url flush)" -q -c "TRUNCATE avis, avis_daily"
psql "$(pg_url flushplain)" -q -c "TRUNCATE avis, avis_daily"

prefill=${BENCH_PREFILL:-5000000}
say "flush into a month holding $prefill avis vs \\copy (flushbench --prefill)"
"$bin/flushbench" --database-url "$(pg_url prefill)" --prefill "$prefill" --votes "$votes" --rounds "${BENCH_PREFILL_ROUNDS:-5}" \
  --parallel 2 --server-pid "$postmaster" --csv "$work/rows.csv" >"$work/prefill.json"
psql "$MONAVIS_TEST_DATABASE_URL" -q -c "DROP DATABASE prefill"

say "memory: $votes votes buffered, no comment"
mkdir -p "$work/mem" && cd "$work/mem"
"$bin/widget-server" --database-url "$(pg_url memory)" --log warn demarche add --id 1 --name "Mémoire" >/dev/null
start_listener ws-mem "$bin/widget-server" --database-url "$(pg_url memory)" --listen 127.0.0.1:0 --log info \
  "${open_limits[@]}" --flush-interval-ms 3600000 --flush-max-votes 10000000 --buffer-max-votes 10000000 --shutdown-timeout 120s
mem=$(cat "$work/ws-mem.addr")
mem_pid=$(cat "$work/ws-mem.pid")
cd "$root"
sleep 0.5
rss_before=$(rss_kib "$mem_pid")
"$bin/loadtest" --target "$mem" --demarches 1 --secret-file "$work/mem/data/secret" --mix vote=100 --comment-percent 0 \
  --concurrency 50 --source-ips 50 --requests "$votes" --json "$work/mem.json" >&2
buffered=$(http_get "$mem/metrics" | awk '/^monavis_votes_buffered / {print $2}')
rss_after=$(rss_kib "$mem_pid")
t0=$(date +%s.%N)
kill -TERM "$mem_pid"; wait "$mem_pid" || die "widget-server (memory) exited with $?"
t1=$(date +%s.%N)
stored_mem=$(psql "$(pg_url memory)" -Atc "SELECT count(*) FROM avis")

say "end to end: $votes votes into PostgreSQL, checked"
mkdir -p "$work/e2e" && cd "$work/e2e"
for d in 1 2 3 4 5 6 7 8 9 10; do
  "$bin/widget-server" --database-url "$(pg_url e2e)" --log warn demarche add --id $d --name "Démarche $d" >/dev/null
done
start_listener ws-e2e "$bin/widget-server" --database-url "$(pg_url e2e)" --listen 127.0.0.1:0 --log warn "${open_limits[@]}"
e2e=$(cat "$work/ws-e2e.addr")
e2e_pid=$(cat "$work/ws-e2e.pid")
cd "$root"
"$bin/loadtest" --target "$e2e" --demarches 1,2,3,4,5,6,7,8,9,10 --secret-file "$work/e2e/data/secret" --mix vote=100 \
  --concurrency 50 --source-ips 50 --requests "$votes" --check-postgres "$(pg_url e2e)" --check-timeout 120s \
  --json "$work/e2e.json" >&2
kill -TERM "$e2e_pid"; wait "$e2e_pid" || die "widget-server (e2e) exited with $?"

say "writing $out"
export r_hello r_hellolike r_wrkvotej r_ws200 r_nginx200 r_ws304 r_nginx304 r_wsgz r_nginxgz r_form r_wrkvote secs votes \
  rss_before rss_after buffered t0 t1 stored_mem work half max_rate rounds
python3 - "$out" <<'PY'
import json, os, platform, re, subprocess, sys, datetime
e = os.environ
def wrk(name):
    rps, p50, p99 = e[name].split()
    return float(rps), float(p50), float(p99)
def load(name):
    return json.load(open(os.path.join(e["work"], name)))
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip() or "?"
    except Exception:
        return "?"
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
mem_total = sh("free -h | awk '/Mem:/ {print $2}'")
pg_version = sh("psql --version | cut -d' ' -f3")
hello = wrk("r_hello")
rows = [
    ("bare hyper `hello` (ceiling)", hello, None),
    ("`hello --like-widget-server`: same headers and header-read timeout as widget-server", wrk("r_hellolike"), "hello"),
    ("widget-server button 200", wrk("r_ws200"), "hello"),
    ("nginx button 200 (`gzip_static`, ETag)", wrk("r_nginx200"), "hello"),
    ("widget-server button 304", wrk("r_ws304"), "hello"),
    ("nginx button 304", wrk("r_nginx304"), "hello"),
    ("widget-server button 200 gzip", wrk("r_wsgz"), "hello"),
    ("nginx button 200 gzip", wrk("r_nginxgz"), "hello"),
    ("widget-server form page", wrk("r_form"), "hello"),
    ("widget-server vote POST → 303 (wrk, fixed body)", wrk("r_wrkvote"), "hello"),
    ("widget-server vote POST → 303 with `--journal` (fsync before each 303, group commit)", wrk("r_wrkvotej"), "hello"),
]
closed, openm = load("vote-closed.json"), load("vote-open.json")
f1, f2 = load("flush1.json"), load("flush2.json")
mem, e2e = load("mem.json"), load("e2e.json")
# --- partitioned avis (flushbench --compare-partitioning) ---
def partition_section(one, two, cmd, note=None):
    """Markdown lines of the section; `one` and `two` are flushbench's JSON, this month only and
    over two months; cmd(j) is the command line that produced j; note, lines added at the end."""
    def key(t):
        m = re.search(r"\((.*)\)", t.get("pk_definition") or "")
        return f"`({m.group(1)})`" if m else "?"
    S = []
    S.append("## Partitioned `avis`: flush rate and index size per month\n")
    av = "left on" if one["autovacuum"] else "off on the tables written (`--autovacuum` leaves it on)"
    S.append(f"`flushbench --compare-partitioning`, {one['measured_at'][:10]}: the flusher's path (`Store::store_batch`, batches of "
             f"{one['batch']:,}, {one['parallel']} in flight) writes the same {one['votes']:,} votes into the month-partitioned `avis` "
             f"(every migration; primary key {key(one['partitions'][0])}, also the order « Tous les avis » reads) and into the unpartitioned "
             f"`avis` of a second database on the same server, migrated only up to version 6 (primary key {key(one['unpartitioned'])}, "
             f"plus `avis_demarche_received_id` for « Tous les avis »; the same other indexes). {one['rounds']} rounds, each "
             f"emptying both tables and then writing into one and the other in turn (unpartitioned first in odd rounds), after a "
             f"`CHECKPOINT` each; rows, rows per partition and `avis_daily` checked after each; autovacuum {av}. "
             f"PostgreSQL {one['server_version'].split()[0]}; machine load average (1, 5, 15 min) "
             f"{one['loadavg_before']} before, {two['loadavg_after']} after: other work shared the two cores.\n")
    S.append("| votes | partitioned / unpartitioned rows/s, each round | median | min | max | server CPU per row, partitioned / unpartitioned: median (min–max) | WAL per row, partitioned / unpartitioned |")
    S.append("|---|---|---:|---:|---:|---:|---:|")
    for label, j in (("this month: one partition", one), ("this month and the previous, every other vote: two partitions a batch", two)):
        per = ", ".join(f"{r['ratio']:.2f}" for r in j["per_round"])
        c = j.get("server_cpu_ratio")
        cpu = f"{c['median']:.2f}× ({c['min']:.2f}–{c['max']:.2f})" if c else "not measured"
        r = j["ratio"]
        S.append(f"| {label} | {per} | **{r['median']:.2f}×** | {r['min']:.2f}× | {r['max']:.2f}× | {cpu} | {j['wal_ratio']['median']:.3f}× |")
    S.append("")
    S.append("| votes | unpartitioned rows/s, median | partitioned rows/s, median | server CPU µs per row, unpartitioned / partitioned, median | WAL bytes per row, unpartitioned / partitioned |")
    S.append("|---|---:|---:|---:|---:|")
    def med(j, k):
        v = sorted(r[k] for r in j["per_round"] if r.get(k) is not None)
        return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2 if v else None
    for label, j in (("this month", one), ("two months", two)):
        u, p = med(j, "plain_server_cpu_us_per_row"), med(j, "partitioned_server_cpu_us_per_row")
        cpu = f"{u:.2f} / {p:.2f}" if u is not None and p is not None else "not measured"
        S.append(f"| {label} | {j['plain_rows_per_s']['median']:,.0f} | {j['partitioned_rows_per_s']['median']:,.0f} | {cpu} | "
                 f"{med(j, 'plain_wal_bytes_per_row'):.0f} / {med(j, 'partitioned_wal_bytes_per_row'):.0f} |")
    S.append("")
    for j in (one, two):
        r = j["ratio"]["median"]
        pf, qf = j.get("ratio_plain_first"), j.get("ratio_partitioned_first")
        order = (f" (median {pf['median']:.2f} in the rounds where the unpartitioned table went first, {qf['median']:.2f} where the "
                 f"partitioned one did)") if pf and qf else ""
        S.append(f"- {'Two months' if j['two_months'] else 'This month'}: the partitioned table flushes at **{j['ratio']['median']:.2f}×** "
                 f"the unpartitioned one's rate, median of the paired rounds{order}: "
                 + ("not slower." if r >= 1 else "less than 10 % slower." if r >= 0.9 else "**more** than 10 % slower."))
    S.append("")
    p, u = one["partitions"][0], one["unpartitioned"]
    S.append(f"**A month's primary key**, after this month's last round ({p['rows']:,} avis in `{p['table']}`, the same in the "
             f"unpartitioned `avis`, by `pg_relation_size` of `{p['pk_index']}`, attached to `{p.get('pk_index_parent') or 'avis_pkey'}`). "
             f"As flushed, leaves are about {90 * p['pk_rebuilt_bytes'] / p['pk_bytes']:.0f} % full: the benchmark makes thousands of votes a millisecond, whose UUIDv7 ids are "
             f"random within it, so leaves split in the middle. Rebuilt (`REINDEX`), leaves are filled to btree's default fillfactor of "
             f"90, as ids that only grow (a month's real votes, a few a second) leave them: the figure to extrapolate from.\n")
    S.append("| index | key | bytes per avis, as flushed | rebuilt | MiB per million avis, rebuilt | at 5 million avis a month, rebuilt |")
    S.append("|---|---|---:|---:|---:|---:|")
    for t in (p, u):
        key_t = key(t)
        S.append(f"| `{t['pk_index']}` | {key_t} | {t['pk_bytes_per_avis']:.1f} | {t['pk_rebuilt_bytes_per_avis']:.1f} | "
                 f"{t['pk_rebuilt_mib_per_million']:.1f} | {t['pk_rebuilt_mib_at_5_million']:.0f} MiB |")
    S.append("")
    S.append(f"- The partition's key weighs {p['pk_bytes_per_avis'] / u['pk_bytes_per_avis']:.2f}× the old `avis_pkey` per entry as flushed, "
             f"{p['pk_rebuilt_bytes_per_avis'] / u['pk_rebuilt_bytes_per_avis']:.2f}× rebuilt (the démarche and `received_at` in every entry); "
             f"but it is also the order « Tous les avis » reads, which the unpartitioned table keeps a second index for, and a month's key is "
             f"a month's size: {p['pk_rebuilt_mib_at_5_million']:.0f} MiB at 5 million avis, where one `avis_pkey` grows with every month kept.")
    S.append(f"- The whole partition (`pg_total_relation_size`: heap, TOAST, every index, as flushed): "
             f"{p['total_bytes_per_avis']:.0f} bytes per avis, **{p['total_mib_per_million']:.0f} MiB per million avis**, "
             f"{p['total_mib_at_5_million'] / 1024:.2f} GiB at 5 million; the unpartitioned `avis`, same rows: {u['total_bytes_per_avis']:.0f} "
             f"bytes per avis, {u['total_mib_per_million']:.0f} MiB per million.")
    idx = ", ".join(f"`{k}` {v['bytes'] / p['rows']:.0f}" for k, v in p["indexes"].items())
    S.append(f"- Bytes per avis in the partition: heap {p['heap_bytes'] / p['rows']:.0f}; indexes as flushed (by the name of the index on `avis` they belong to): {idx}.")
    if two["partitions"]:
        S.append("- Over two months: " + "; ".join(
            f"`{t['table']}` {t['rows']:,} avis, key {t['pk_bytes_per_avis']:.1f} bytes per avis as flushed, {t['pk_rebuilt_bytes_per_avis']:.1f} rebuilt"
            for t in two["partitions"]) + ".")
    S.append("")
    S.extend(note or [])
    S.append("Reproduce (two databases on one server, the second new: flushbench migrates it only up to version 6):\n")
    S.append("```sh")
    S.append(cmd(one))
    S.append(cmd(two))
    S.append("```\n")
    return S

L = []
L.append("# Benchmarks\n")
L.append(f"Produced by `scripts/bench.sh` on {datetime.date.today()}; every figure from « Machine » to « End to end » comes from")
L.append("that one run, so the ratios are what to read (the machine is shared and noisy; absolute numbers move from")
L.append("run to run). The sections after « End to end » come from other scripts or were measured by hand: each")
L.append("names its command and its date, and `scripts/bench.sh` keeps them as they are.\n")
L.append("## Machine\n")
L.append(f"- CPU: {cpu}, {os.cpu_count()} cores; memory: {mem_total}; kernel {platform.release()}")
L.append(f"- {sh('rustc --version')}; {sh('nginx -v 2>&1')}; {sh('wrk -v 2>&1 | head -1')}; PostgreSQL {pg_version}")
L.append("- Servers, load generator and PostgreSQL all share the same cores over loopback.\n")
L.append(f"## Static, pages, votes: wrk -t1 -c50 -d{e['secs']}s, best of {e['rounds']} interleaved rounds\n")
L.append("| what | req/s | p50 ms | p99 ms | vs hello |")
L.append("|---|---:|---:|---:|---:|")
for name, (rps, p50, p99), ref in rows:
    ratio = f"{rps / hello[0]:.2f}×" if ref else "1.00×"
    L.append(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {ratio} |")
ws200, ng200 = wrk("r_ws200")[0], wrk("r_nginx200")[0]
ws304, ng304 = wrk("r_ws304")[0], wrk("r_nginx304")[0]
L.append("")
L.append(f"- Button 200: widget-server / nginx = **{ws200 / ng200:.2f}×**; widget-server / hello = **{ws200 / hello[0]:.2f}×** (targets ≥ 1.3× and ≥ 0.9×).")
L.append(f"- Button 304: widget-server / nginx = **{ws304 / ng304:.2f}×**; widget-server / hello = **{ws304 / hello[0]:.2f}×**.")
L.append(f"- Button 200: widget-server / `hello --like-widget-server` = **{ws200 / wrk('r_hellolike')[0]:.2f}×**: what separates us from the bare")
L.append("  server is the response headers DESIGN §8 requires and the per-request header-read timer, not our routing or asset code.\n")
L.append("## Vote path (loadtest, varied votes over 10 démarches, 50 connections from 50 source addresses)\n")
L.append("| model | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | statuses |")
L.append("|---|---:|---:|---:|---:|---:|---:|---|")
hello_open, hello_closed = load("hello-open.json"), load("hello-closed.json")
for label, j in (("closed, 50 connections (maximum)", closed), ("bare hyper `hello`, GET, closed, 50 connections (baseline)", hello_closed),
                 (f"open, {e['half']} req/s (half the maximum)", openm),
                 (f"bare hyper `hello`, GET, open, {e['half']} req/s (baseline)", hello_open)):
    t = j["total"]; l = t["latency_ms"]
    st = ", ".join(f"{k}: {v}" for k, v in t["status"].items())
    L.append(f"| {label} | {j['rps']:,.0f} | {l['p50']:.2f} | {l['p90']:.2f} | {l['p99']:.2f} | {l['p999']:.2f} | {l['max']:.2f} | {st} |")
L.append("")
L.append(f"- Vote 303 / hello, both driven by loadtest (closed) = **{closed['rps'] / hello_closed['rps']:.2f}×**; both driven by wrk = **{wrk('r_wrkvote')[0] / hello[0]:.2f}×** (target ≥ 0.5×).")
L.append(f"- p99 at half the maximum rate: **{openm['total']['latency_ms']['p99']:.2f} ms** (target < 5 ms); the bare hyper server,"
         f" same rate, same generator: {hello_open['total']['latency_ms']['p99']:.2f} ms. Open-model schedule lag of the generator itself:"
         f" {openm.get('schedule', {}).get('max_lag_ms', 0):.1f} ms (votes), {hello_open.get('schedule', {}).get('max_lag_ms', 0):.1f} ms (hello).\n")
L.append(f"## Storage: the same {f1['votes']:,} votes into PostgreSQL three ways\n")
L.append("| path | rows/s | vs one INSERT per vote | vs psql \\copy |")
L.append("|---|---:|---:|---:|")
naive, copy = f1["naive_rows_per_s"], f1["copy_rows_per_s"]
L.append(f"| one INSERT per vote, autocommit ({f1['naive_votes']:,} votes) | {naive:,.0f} | 1.00× | {naive / copy:.3f}× |")
L.append(f"| `psql \\copy` CSV straight into `avis` (ceiling) | {copy:,.0f} | {copy / naive:.0f}× | 1.00× |")
for f in (f1, f2):
    b = f["batched_rows_per_s"]
    L.append(f"| flusher path, batches of {f['batch']:,}, {f['parallel']} in flight | {b:,.0f} | {b / naive:.0f}× | {b / f['copy_rows_per_s']:.2f}× |")
L.append("")
L.append("The flusher path is binary COPY into `avis` plus the `avis_daily` upsert of the batch, one transaction per batch;")
L.append("the widget-server default is 2 flushers in flight (`--flush-parallelism`). The \\copy ceiling is measured in each")
L.append("flushbench run; the ratio of each line is to its own run.\n")
pf = load("prefill.json")
L.append(f"## Flush into a month already holding {pf['prefill']:,} avis\n")
ld = pf["load"]
loaded = ("filled by an earlier run" if ld.get("reused") else
          f"filled in {ld['total_s']:.0f} s: binary COPY {ld['copy_s']:.0f} s, attached with every index built {ld['attach_and_index_s']:.0f} s, "
          f"`avis_daily` and `VACUUM ANALYZE` {ld['daily_and_vacuum_s']:.0f} s")
ps = pf["partition_sizes"]
idx = ", ".join(f"`{k}` {v / 1048576:.0f} MiB" for k, v in sorted(ps["indexes"].items()))
L.append(f"`flushbench --prefill {pf['prefill']} --votes {pf['votes']} --rounds {len(pf['rounds'])} --parallel {pf['parallel']}`, "
         f"{pf['measured_at'][:10]}: this month's partition `{pf['partition']}` holds {pf['prefill']:,} avis received since the month began "
         f"(1,000 démarches, a comment on one in five from consolebench's 40 sentences, one or two a comment), {loaded}: "
         f"{ps['total_bytes'] / 1073741824:.2f} GiB (heap {ps['heap_bytes'] / 1048576:.0f} MiB; {idx}). Each round the flusher's path "
         f"(`Store::store_batch`, batches of {pf['batch']:,}, {pf['parallel']} in flight) and `psql \\copy` (CSV, one stream) write the "
         f"same {pf['votes']:,} new votes (varied comments too) into it, in turn (the flusher first in odd rounds); after each, its rows "
         f"are deleted, today's `avis_daily` recounted and the partition vacuumed, so each starts from the same {pf['prefill']:,} avis. "
         f"Machine load average {pf['loadavg_before']} before, {pf['loadavg_after']} after.\n")
L.append("| round | first | flusher rows/s | `\\copy` rows/s | flusher / `\\copy` | server CPU µs per row, flusher / `\\copy` |")
L.append("|---:|---|---:|---:|---:|---:|")
for r in pf["rounds"]:
    fc, cc = r["flusher"].get("server_cpu_us_per_row"), r["copy"].get("server_cpu_us_per_row")
    cpu = f"{fc:.2f} / {cc:.2f}" if fc is not None and cc is not None else "not measured"
    L.append(f"| {r['round']} | {r['first']} | {r['flusher']['rows_per_s']:,.0f} | {r['copy']['rows_per_s']:,.0f} | {r['ratio']:.2f}× | {cpu} |")
fr, cr, ra = pf["flusher_rows_per_s"], pf["copy_rows_per_s"], pf["flusher_over_copy"]
L.append("")
L.append(f"- Flusher: **{fr['median']:,.0f} rows/s** median ({fr['min']:,.0f}–{fr['max']:,.0f}); `\\copy`: {cr['median']:,.0f} "
         f"({cr['min']:,.0f}–{cr['max']:,.0f}); paired ratio **{ra['median']:.2f}×** ({ra['min']:.2f}–{ra['max']:.2f}).\n")
def partition_cmd(j):
    return ("target/release/flushbench --compare-partitioning --database-url postgres://…/flush --plain-database-url postgres://…/flushplain "
            f"--votes {j['votes']} --rounds {j['rounds']} --batch {j['batch']} --parallel {j['parallel']} --server-pid POSTMASTER_PID"
            + (" --two-months" if j["two_months"] else ""))
L.extend(partition_section(load("partition1.json"), load("partition2.json"), partition_cmd))
before, after, n = int(e["rss_before"]), int(e["rss_after"]), int(e["buffered"] or 0)
flush_s = float(e["t1"]) - float(e["t0"])
L.append(f"## Memory: {n:,} votes buffered (no comment), store idle\n")
L.append(f"- RSS before: {before / 1024:,.1f} MiB; with {n:,} votes buffered: {after / 1024:,.1f} MiB.")
if n:
    L.append(f"- **{(after - before) * 1024 / n:,.0f} bytes per buffered vote** (target ≤ 200), including the allocator's and the map's overhead.")
L.append(f"- Shutdown then flushed all of them: {int(e['stored_mem']):,} rows stored in {flush_s:.1f} s "
         f"(**{int(e['stored_mem']) / flush_s:,.0f} votes/s** through the real flusher, 2 in flight).\n")
L.append(f"## End to end: {e2e['requests']:,} votes through loadtest into PostgreSQL\n")
c = e2e.get("check", {})
L.append(f"- {e2e['rps']:,.0f} votes/s over {e2e['elapsed_s']:.1f} s, p99 {e2e['total']['latency_ms']['p99']:.2f} ms; statuses: "
         + ", ".join(f"{k}: {v}" for k, v in e2e["total"]["status"].items()) + ".")
L.append(f"- Check: {json.dumps(c, ensure_ascii=False)}\n")
# Sections written by other scripts or by hand (console at scale, comment scrubbing, the
# observatory) are kept, after ours.
import os, re
ours = ("Machine", "Static, pages, votes", "Vote path", "Storage", "Flush into a month", "Partitioned `avis`", "Memory", "End to end")
kept = []
if os.path.exists(sys.argv[1]):
    for m in re.finditer(r"^## (.*?)\n.*?(?=^## |\Z)", open(sys.argv[1]).read(), flags=re.S | re.M):
        if not m.group(1).startswith(ours):
            kept.append(m.group(0).rstrip() + "\n")
open(sys.argv[1], "w").write("\n".join(L) + "\n" + "".join("\n" + k for k in kept))
PY
say "done: $out"
cat "$out"
