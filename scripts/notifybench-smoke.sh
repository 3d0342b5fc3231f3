#!/usr/bin/env bash
# A short notifybench run in CI, so the notifications benchmark never rots (issue 21): the real
# server (debug build) over 200 accounts carrying 500 démarches on a cluster of its own (with
# pg_stat_statements), the four runs of scripts/notifybench.sh, then the report's fields that
# docs/BENCHMARKS.md is built from are checked, and that the work stays set-based: a handful of
# statements over avis_daily whatever the number of démarches, the digests batched, nothing read
# again in the minute after them. Needs debug builds of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/monavis-notifysmoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
NB_ACCOUNTS=200 NB_DEMARCHES=500 BIN=target/debug/widget-server NOTIFYBENCH_JSON="$work/notify.json" \
  scripts/notifybench.sh >"$work/section.md" 2>"$work/notifybench.log" || { tail -30 "$work/notifybench.log" >&2; exit 1; }
python3 - "$work/notify.json" "$work/section.md" <<'PY'
import json, sys
r, md = json.load(open(sys.argv[1])), open(sys.argv[2]).read()
assert r["accounts"] == 200 and r["demarches"] == 500 and r["avis_daily_rows"] > 0 and r["subscriptions"] >= 500, r
runs = r["runs"]["after"]
for name in ["hourly", "minute", "digest", "after"]:
    x = runs[name]
    assert x["seconds"] > 0 and x["statements"] > 0 and x["transactions"] >= 0, (name, x)
    assert x["queued"] == sum(x["sent"].values()), (name, x)
hourly, minute, digest, after = runs["hourly"], runs["minute"], runs["digest"], runs["after"]
# The planted drop, silent sources and comments, each mailed once.
assert hourly["sent"].get("baisse", 0) >= 1 and hourly["sent"].get("silencieux", 0) >= 2, hourly
assert hourly["sent"].get("commentaires", 0) >= 20, hourly
assert minute["queued"] == 0 and after["queued"] == 0, (minute, after)
assert digest["sent"].get("synthese", 0) >= 150 and set(digest["sent"]) == {"synthese"}, digest
# Set-based: two statements over avis_daily for the hourly checks, three for the three digests
# (and that hour's checks), none in an ordinary minute or the minute after the digests.
assert hourly["statements_avis_daily"] <= 2, hourly
assert digest["statements_avis_daily"] <= 5, digest
assert minute["statements_avis_daily"] == 0 and after["statements_avis_daily"] == 0, (minute, after)
# Batched: far fewer statements than mails.
assert digest["statements"] < 100 and digest["statements"] < digest["queued"] / 2, digest
assert hourly["statements"] < 100, hourly
for heading in ["## Notifications at scale", "| hourly |", "| digest |"]:
    assert heading in md, heading
print(f"notifybench smoke run: OK ({hourly['queued']} alerts, {digest['queued']} digests; "
      f"{hourly['statements']} and {digest['statements']} statements)")
PY
