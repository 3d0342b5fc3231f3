#!/usr/bin/env bash
# The observatory at national scale (issue 11): an ephemeral PostgreSQL holding N démarches
# (default 1,000) with three sources each and 400 days of avis_daily (1.2 million rows), a
# release widget-server on it, then timings over loopback of
#   - the first GET /observatoire.json of a process: the one statement over a year of
#     avis_daily, computed while the visitor waits (then cached, DESIGN §12);
#   - the next ones (served from the snapshot in memory), and /observatoire (HTML, page 1).
# Prints a Markdown section for docs/BENCHMARKS.md. Loopback only; about 2 minutes.
#
#   scripts/observatorybench.sh                 1,000 démarches
#   OBS_DEMARCHES=10000 scripts/observatorybench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${OBS_DEMARCHES:-1000}

die() { echo "observatorybench.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }
command -v psql >/dev/null || die "psql is needed (apt-get install postgresql-client)"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"

say "building (release)"
cargo build --release --locked -p widget-server --bin widget-server >&2
bin=target/release/widget-server

work=$(mktemp -d /tmp/monavis-obsbench.XXXXXX)
chmod 755 "$work"
server=""
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  scripts/pg.sh stop "$work/pg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "PostgreSQL, $n démarches × 3 sources × 400 days"
scripts/pg.sh start "$work/pg" >/dev/null
. "$work/pg/env"
url=$MONAVIS_TEST_DATABASE_URL
(cd "$work" && "$OLDPWD/$bin" --database-url "$url" --log warn migrate >&2)
psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO demarche (id, name, administration)
  SELECT i, 'Démarche ' || i, 'Administration ' || (i % 40) FROM generate_series(1, $n) i;
INSERT INTO avis_daily (demarche_id, day, source, n, sat_bien, sat_moyen, sat_pas_bien,
                        fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair,
                        aide_aucune, aide_proche, aide_agent)
  SELECT d, current_date - k, s, 6, 3, 2, 1, 3, 2, 1, 3, 2, 1, 4, 1, 1
  FROM generate_series(1, $n) d, generate_series(1, 400) k, unnest(ARRAY['button', 'mail', 'sms']) s;
ANALYZE;
SQL
rows=$(psql "$url" -Atc "SELECT count(*) FROM avis_daily")

say "widget-server"
(cd "$work" && exec "$OLDPWD/$bin" --database-url "$url" --listen 127.0.0.1:0 --log warn >"$work/out" 2>"$work/err") &
server=$!
for _ in $(seq 1 100); do grep -q "http://" "$work/out" 2>/dev/null && break; sleep 0.1; done
base=$(grep -o 'http://[0-9.:]*' "$work/out" | head -1)
[ -n "$base" ] || { cat "$work/err" >&2; die "the server did not start"; }

t() { curl -s -o /dev/null -w '%{time_total} %{http_code} %{size_download}\n' "$base$1"; }
first=$(t /observatoire.json)
json=(); html=()
for _ in $(seq 1 20); do json+=("$(t /observatoire.json | cut -d' ' -f1)"); html+=("$(t /observatoire | cut -d' ' -f1)"); done
group() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}'; }
read -r first_s first_code first_size <<<"$first"
[ "$first_code" = 200 ] || die "GET /observatoire.json answered $first_code"

cat <<MD
## Observatory: $(group "$n") démarches, $(group "$rows") avis_daily rows (PostgreSQL)

\`scripts/observatorybench.sh\` (OBS_DEMARCHES=$n), $(date -u +%F); loopback, curl, release build.

| Request | Time |
|---|---|
| First \`GET /observatoire.json\` of a process (the statement over 365 days of \`avis_daily\`, $(group "$first_size") bytes) | $(ms "$first_s") ms |
| Next \`GET /observatoire.json\` (snapshot in memory), median of 20 | $(ms "$(median "${json[@]}")") ms |
| \`GET /observatoire\` (HTML, first page of 100), median of 20 | $(ms "$(median "${html[@]}")") ms |

A visitor waits for the statement only on the first request of a process and of a day; past
the snapshot's 5 minutes the old one is served while one background task computes the next.
MD
