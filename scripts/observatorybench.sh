#!/usr/bin/env bash
# The observatory at national scale (issues 11 and 23): an ephemeral PostgreSQL holding
# OBS_BUSY démarches (default 5,000) with avis every day on two sources for OBS_DAYS days
# (default 400) and OBS_QUIET démarches (default 15,000) with avis on 20 of those days: 4.3
# million avis_daily rows, and their rollup avis_monthly. A release widget-server on it, then,
# over loopback with curl:
#   - the first GET /observatoire.json of a process: the statement over the year (whole months
#     from avis_monthly, the days around them from avis_daily), computed while the visitor
#     waits (then cached, DESIGN §12);
#   - pages served from the snapshot: /observatoire.json and .csv (whole), /observatoire (HTML,
#     page 1, by default and by satisfaction), a filtered page; medians of 20.
# With BEFORE_BIN (another widget-server, e.g. one built before the rollup), both run on the same
# database, ROUNDS times each in alternation (a fresh process each time), and the ratios are
# paired per round. Prints a Markdown section for docs/BENCHMARKS.md. Loopback only; about
# 5 minutes with the defaults (most of it loading).
#
#   scripts/observatorybench.sh
#   BEFORE_BIN=/tmp/widget-server-main ROUNDS=3 scripts/observatorybench.sh
#   OBS_BUSY=500 OBS_QUIET=1500 scripts/observatorybench.sh       smaller
set -euo pipefail
cd "$(dirname "$0")/.."
busy=${OBS_BUSY:-5000}
quiet=${OBS_QUIET:-15000}
days=${OBS_DAYS:-400}
rounds=${ROUNDS:-3}

die() { echo "observatorybench.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }
command -v psql >/dev/null || die "psql is needed (apt-get install postgresql-client)"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
[ "$days" -ge 40 ] || die "OBS_DAYS must be at least 40"

if [ -z "${NO_BUILD:-}" ]; then
  say "building (release)"
  cargo build --release --locked -p widget-server --bin widget-server >&2
fi
after=$(pwd)/target/release/widget-server
before=${BEFORE_BIN:-}
[ -z "$before" ] || [ -x "$before" ] || die "BEFORE_BIN=$before is not an executable"

work=$(mktemp -d /tmp/monavis-obsbench.XXXXXX)
chmod 755 "$work"
server=""
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  scripts/pg.sh stop "$work/pg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "PostgreSQL: $busy démarches × 2 sources × $days days, $quiet démarches × 20 days"
scripts/pg.sh start "$work/pg" >/dev/null
. "$work/pg/env"
url=$MONAVIS_TEST_DATABASE_URL
(cd "$work" && "$after" --database-url "$url" --log warn migrate >&2)
load_start=$(date +%s)
psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO demarche (id, name, administration, volume_annuel)
  SELECT i, 'Démarche ' || i, 'Administration ' || (i % 40), CASE WHEN i % 3 = 0 THEN NULL ELSE i * 100 END
  FROM generate_series(1, $busy + $quiet) i;
-- Loaded with avis_daily's triggers off (superuser), the rollup then made in one statement.
SET session_replication_role = replica;
INSERT INTO avis_daily (demarche_id, day, source, n, sat_bien, sat_moyen, sat_pas_bien,
                        fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair,
                        aide_aucune, aide_proche, aide_agent)
  SELECT d, current_date - k, s, 6 + d % 5, 3 + d % 5, 2, 1, 3, 2, 1, 3, 2, 1, 4, 1, 1
  FROM generate_series(1, $busy) d, generate_series(1, $days) k, unnest(ARRAY['button', 'mail']) s;
INSERT INTO avis_daily (demarche_id, day, source, n, sat_bien, sat_moyen, sat_pas_bien,
                        fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair,
                        aide_aucune, aide_proche, aide_agent)
  SELECT d, current_date - 1 - (d * 13 + j * 19) % $days, 'button', 5 + d % 7, 2 + d % 7, 2, 1, 3, 1, 1, 3, 1, 1, 3, 1, 1
  FROM generate_series($busy + 1, $busy + $quiet) d, generate_series(1, 20) j;
SET session_replication_role = origin;
INSERT INTO avis_monthly (demarche_id, month, n, sat_bien, sat_moyen, sat_pas_bien, fac_facile, fac_moyen,
                          fac_difficile, cla_clair, cla_moyen, cla_pas_clair, aide_aucune, aide_proche,
                          aide_association, aide_agent, aide_internet, aide_autre)
  SELECT demarche_id, date_trunc('month', day)::date, sum(n), sum(sat_bien), sum(sat_moyen), sum(sat_pas_bien),
         sum(fac_facile), sum(fac_moyen), sum(fac_difficile), sum(cla_clair), sum(cla_moyen), sum(cla_pas_clair),
         sum(aide_aucune), sum(aide_proche), sum(aide_association), sum(aide_agent), sum(aide_internet), sum(aide_autre)
  FROM avis_daily GROUP BY 1, 2;
VACUUM ANALYZE;
SQL
load_s=$(( $(date +%s) - load_start ))
rows=$(psql "$url" -Atc "SELECT count(*) FROM avis_daily")
monthly=$(psql "$url" -Atc "SELECT count(*) FROM avis_monthly")
demarches=$((busy + quiet))

t() { curl -s -o /dev/null -w '%{time_total} %{http_code} %{size_download}\n' "$base$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# run LABEL BIN ROUND: a fresh server, its first answer, then 20 of each page; one JSON line.
run() {
  local label=$1 bin=$2 round=$3
  (cd "$work" && exec "$bin" --database-url "$url" --listen 127.0.0.1:0 --log warn >"$work/out" 2>"$work/err") &
  server=$!
  base=""
  for _ in $(seq 1 100); do grep -q "http://" "$work/out" 2>/dev/null && break; sleep 0.1; done
  base=$(grep -o 'http://[0-9.:]*' "$work/out" | head -1)
  [ -n "$base" ] || { cat "$work/err" >&2; die "the server did not start"; }
  read -r first_s first_code first_size <<<"$(t /observatoire.json)"
  [ "$first_code" = 200 ] || die "$label: GET /observatoire.json answered $first_code"
  local line="{\"label\": \"$label\", \"round\": $round, \"first_s\": $first_s, \"json_bytes\": $first_size"
  for page in "json /observatoire.json" "csv /observatoire.csv" "html /observatoire" \
              "html_satisfaction /observatoire?tri=satisfaction" "html_filtered /observatoire?administration=Administration+7&q=9"; do
    set -- $page
    local times=() code size
    t "$2" >/dev/null
    for _ in $(seq 1 20); do read -r s code size <<<"$(t "$2")"; times+=("$s"); done
    [ "$code" = 200 ] || die "$label: GET $2 answered $code"
    line="$line, \"$1_s\": $(median "${times[@]}"), \"$1_bytes\": $size"
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  echo "$line}" >>"$work/runs.jsonl"
  say "$label round $round: first $(awk -v s="$first_s" 'BEGIN {printf "%.0f", s * 1000}') ms"
}

for r in $(seq 1 "$rounds"); do
  if [ -n "$before" ] && [ $((r % 2)) = 0 ]; then run before "$before" "$r"; fi
  run after "$after" "$r"
  if [ -n "$before" ] && [ $((r % 2)) = 1 ]; then run before "$before" "$r"; fi
done

python3 - "$work/runs.jsonl" "$demarches" "$rows" "$monthly" "$busy" "$quiet" "$days" "$load_s" "${before:-}" <<'PY'
import json, statistics, sys, datetime
runs = [json.loads(l) for l in open(sys.argv[1])]
demarches, rows, monthly, busy, quiet, days, load_s, before = sys.argv[2:10]
g = lambda n: f"{int(n):,}"
ms = lambda s: f"{s * 1000:.1f}"
after = [r for r in runs if r["label"] == "after"]
bef = [r for r in runs if r["label"] == "before"]
def med(rs, k):
    return statistics.median(r[k] for r in rs)
def spread(rs, k):
    v = sorted(r[k] for r in rs)
    return f"{ms(v[0])}–{ms(v[-1])}"
print(f"## Observatory: {g(demarches)} démarches, {g(rows)} avis_daily rows (PostgreSQL)\n")
print(f"`scripts/observatorybench.sh` ({'BEFORE_BIN=… ' if before else ''}OBS_BUSY={busy} OBS_QUIET={quiet} OBS_DAYS={days}, "
      f"{len(after)} rounds), {datetime.date.today()}: {g(busy)} démarches with avis every day on two sources for {days} days, "
      f"{g(quiet)} with avis on 20 days; {g(monthly)} rows in the rollup `avis_monthly`; loaded in {load_s} s. "
      "Loopback, curl, release build; each round a fresh process; medians over the rounds (min–max), "
      "pages medians of 20 requests each.\n")
cols = ["after"] + (["before", "before / after, paired per round"] if bef else [])
print("| request | " + " | ".join(cols) + " |")
print("|---|" + "---:|" * len(cols))
label = {
    "first_s": f"First `GET /observatoire.json` of a process (the year's statement, {g(after[0]['json_bytes'])} bytes)",
    "json_s": "`GET /observatoire.json`, whole, from the snapshot",
    "csv_s": "`GET /observatoire.csv`, whole, from the snapshot",
    "html_s": "`GET /observatoire` (HTML, page 1 of 100 rows, default sort)",
    "html_satisfaction_s": "`GET /observatoire?tri=satisfaction`",
    "html_filtered_s": "`GET /observatoire?administration=…&q=9` (filtered)",
}
for k, name in label.items():
    cells = [f"{ms(med(after, k))} ms ({spread(after, k)})"]
    if bef:
        ratios = sorted(b[k] / a[k] for a in after for b in bef if b["round"] == a["round"])
        cells += [f"{ms(med(bef, k))} ms ({spread(bef, k)})",
                  f"**{statistics.median(ratios):.1f}×** ({ratios[0]:.1f}–{ratios[-1]:.1f})"]
    print(f"| {name} | " + " | ".join(cells) + " |")
print()
print("A visitor waits for the statement only on the first request of a process and of a day; past "
      "the snapshot's 5 minutes the old one is served while one background task computes the next. "
      "The whole JSON and CSV are made once per snapshot and kept with their ETag; each sort's order "
      "is made once per snapshot.")
PY
