#!/usr/bin/env bash
# A short flushbench run in CI, so the storage benchmark never rots: both of its modes against
# the test cluster, a few thousand votes. flushbench itself fails on any lost or extra row; this
# checks that its report holds what docs/BENCHMARKS.md is built from.
# Needs MONAVIS_TEST_DATABASE_URL (scripts/test.sh sets it) and debug builds of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MONAVIS_TEST_DATABASE_URL:?run through scripts/test.sh}"
work=$(mktemp -d /tmp/monavis-flushsmoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
for db in flushsmoke_part flushsmoke_plain; do
  psql "$MONAVIS_TEST_DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
u=${MONAVIS_TEST_DATABASE_URL%/*}
target/debug/flushbench --database-url "$u/flushsmoke_part" --votes 4000 --batch 1000 --naive 200 \
  --csv "$work/rows.csv" >"$work/default.json"
target/debug/flushbench --compare-partitioning --database-url "$u/flushsmoke_part" \
  --plain-database-url "$u/flushsmoke_plain" --votes 4000 --batch 1000 --rounds 2 --two-months >"$work/compare.json"
python3 - "$work/default.json" "$work/compare.json" <<'PY'
import json, sys
d, c = (json.load(open(p)) for p in sys.argv[1:3])
assert d["votes"] == 4000 and d["batched_rows_per_s"] > 0 and d["copy_rows_per_s"] > 0 and d["naive_votes"] == 200, d
assert c["mode"] == "compare-partitioning", c
assert c["partitioned_rows_per_s"]["median"] > 0, c
months = sorted(p["table"] for p in c["partition_vs_unpartitioned_bytes_per_avis"])
assert len(months) == 2, months
print(f"flushbench smoke run: OK (partitions {', '.join(months)})")
PY
