#!/usr/bin/env bash
# A short flushbench run in CI, so the storage benchmark never rots: its three modes against
# the test cluster, a few thousand votes. flushbench itself fails on any lost or extra row; this
# checks that its report holds what docs/BENCHMARKS.md is built from.
# Needs MONAVIS_TEST_DATABASE_URL (scripts/test.sh sets it) and debug builds of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MONAVIS_TEST_DATABASE_URL:?run through scripts/test.sh}"
work=$(mktemp -d /tmp/monavis-flushsmoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
for db in flushsmoke_part flushsmoke_plain flushsmoke_prefill; do
  psql "$MONAVIS_TEST_DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
u=${MONAVIS_TEST_DATABASE_URL%/*}
target/debug/flushbench --database-url "$u/flushsmoke_part" --votes 4000 --batch 1000 --naive 200 \
  --csv "$work/rows.csv" >"$work/default.json"
target/debug/flushbench --compare-partitioning --database-url "$u/flushsmoke_part" \
  --plain-database-url "$u/flushsmoke_plain" --votes 4000 --batch 1000 --rounds 2 --two-months >"$work/compare.json"
target/debug/flushbench --database-url "$u/flushsmoke_prefill" --prefill 6000 --votes 2000 --batch 500 --parallel 2 --rounds 2 \
  --csv "$work/rows.csv" >"$work/prefill.json" 2>"$work/prefill.err" || { cat "$work/prefill.err" >&2; exit 1; }
python3 - "$work/default.json" "$work/compare.json" "$work/prefill.json" <<'PY'
import json, sys
d, c, p = (json.load(open(f)) for f in sys.argv[1:4])
assert p["mode"] == "prefill" and p["prefill"] == 6000 and p["partition_sizes"]["rows"] == 6000, p
assert len(p["rounds"]) == 2 and {r["first"] for r in p["rounds"]} == {"flusher", "copy"}, p["rounds"]
assert all(r["flusher"]["rows_per_s"] > 0 and r["copy"]["rows_per_s"] > 0 for r in p["rounds"]), p["rounds"]
assert sorted(p["partition_sizes"]["indexes"]) == ["avis_commentaire_tsv", "avis_demarche_commented",
                                                   "avis_pkey"], p["partition_sizes"]
assert d["votes"] == 4000 and d["batched_rows_per_s"] > 0 and d["copy_rows_per_s"] > 0 and d["naive_votes"] == 200, d
assert c["mode"] == "compare-partitioning", c
assert c["partitioned_rows_per_s"]["median"] > 0, c
months = sorted(p["table"] for p in c["partition_vs_unpartitioned_bytes_per_avis"])
assert len(months) == 2, months
print(f"flushbench smoke run: OK (partitions {', '.join(months)}; prefill {p['partition']}, ratio {p['flusher_over_copy']['median']:.2f})")
PY
