#!/usr/bin/env bash
# A short consolebench run in CI, so the console benchmark never rots (issue 23): the real
# server (debug build) over a few thousand avis on the test cluster and on SQLite, every request
# kind once, both exports, the votes with and without an export; then the report's fields that
# docs/BENCHMARKS.md is built from are checked. consolebench itself fails on any step that errs.
# Needs MONAVIS_TEST_DATABASE_URL (scripts/test.sh sets it) and debug builds of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MONAVIS_TEST_DATABASE_URL:?run through scripts/test.sh}"
work=$(mktemp -d /tmp/monavis-consolesmoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
PGOPTIONS="-c client_min_messages=warning" psql "$MONAVIS_TEST_DATABASE_URL" -q -c "DROP DATABASE IF EXISTS consolesmoke WITH (FORCE)" -c "CREATE DATABASE consolesmoke"
target/debug/consolebench --database-url "${MONAVIS_TEST_DATABASE_URL%/*}/consolesmoke" \
  --bin target/debug/widget-server --work "$work/run" --avis 4000 --sqlite-avis 2000 \
  --warmup 0 --repeat 1 --vote-seconds 1 --concurrency 4 --json "$work/console.json" \
  >"$work/section.md" 2>"$work/consolebench.log" || { tail -30 "$work/consolebench.log" >&2; exit 1; }
psql "$MONAVIS_TEST_DATABASE_URL" -q -c "DROP DATABASE IF EXISTS consolesmoke WITH (FORCE)"
python3 - "$work/console.json" "$work/section.md" <<'PY'
import json, sys
r, md = json.load(open(sys.argv[1])), open(sys.argv[2]).read()
kinds = ["dashboard", "list", "deep", "filtered", "search", "search_two", "search_rare", "search_absent",
         "search_filtered", "api_stats"]
pg = r["postgres"]
load = pg["load"]
# The load: partitions first, the three indexes of avis rebuilt, sizes summed over partitions.
assert load["partitions"] >= 37, load
assert [i["index"] for i in load["indexes"]] == ["avis_pkey", "avis_commentaire_tsv", "avis_demarche_commented"], \
    load["indexes"]
assert load["copy_rows_per_s"] > 0 and load["avis_daily_rows"] > 0 and load["comments_d1"] > 0, load
assert load["avis_total_bytes"] > load["avis_heap_bytes"] > 0 and load["avis_indexes_bytes"] > 0, load
assert len(load["index_sizes"]) == 3 and all(i["bytes"] > 0 for i in load["index_sizes"]), load["index_sizes"]
# Every request kind, for both démarches, on both stores: answered 200 and timed once.
for store, requests in [("postgres", pg["requests"]), ("sqlite", r["sqlite"]["requests"])]:
    for d in ["1", "2"]:
        for k in kinds:
            q = requests[d][k]
            assert q["status"] == 200 and q["n"] == 1 and q["p99_ms"] > 0, (store, d, k, q)
# Exports: every row of the 12 months in the CSV; an XLSX (a zip) of them.
e = pg["exports"]
assert e["sql_rows"] > 0 and e["csv"]["status"] == 200 and e["csv"]["rows"] == e["sql_rows"], e
assert e["xlsx"]["status"] == 200 and e["xlsx"]["starts_with_pk"] and e["xlsx"]["bytes"] > 0, e
for k in ["csv", "xlsx"]:
    assert e[k]["rss_peak_kib"] > 0 and e[k]["first_byte_ms"] > 0, e[k]
# Votes, without and during an export: accepted, nothing else answered.
v = pg["votes"]
for k in ["alone", "during_export"]:
    assert v[k]["accepted"] > 0 and v[k]["other"] == 0, v
assert r["sqlite"]["load"]["avis"] == 2000 and r["sqlite"]["load"]["file_bytes"] > 0, r["sqlite"]["load"]
for heading in ["## Console at scale", "### Loading PostgreSQL", "### Pages and API on PostgreSQL",
                "### Exports of démarche 1", "### Votes during an export", "### SQLite", "### Slow spots"]:
    assert heading in md, heading
assert "status" not in md.split("### Slow spots")[0].split("### Pages and API")[1], "a request failed"
print(f"consolebench smoke run: OK ({load['partitions']} partitions, {len(kinds)} request kinds x 2 démarches x 2 stores, "
      f"CSV {e['csv']['rows']} rows, XLSX, votes)")
PY
