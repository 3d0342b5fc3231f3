#!/usr/bin/env bash
# Notifications at scale (issue 21): an ephemeral PostgreSQL (pg_stat_statements loaded) holding
# NB_ACCOUNTS active accounts (default 20,000) carrying NB_DEMARCHES démarches (default 50,000;
# every 4th has a second porteur), a tenth of them busy (avis every day on two sources), the rest
# quiet (avis on 10 days of 62): about 1.1 million avis_daily rows. Frequencies: a tenth daily, a
# tenth monthly, a tenth none, the rest weekly (the default). Planted: a satisfaction drop on every
# 50th busy démarche, a silent « mail » source on every 40th, « Nouveaux commentaires » on every
# 10th démarche for its first porteur with comments received on every 20th.
#
# The real binary runs `widget-server notifications run --at …` on Monday 1 June 2026 (Paris
# summer time: every frequency is due), no SMTP (mails stay queued in the outbox):
#   hourly   07:00 Paris: the hourly checks (drop, silent button) and the comment alerts
#   minute   07:01: an ordinary minute
#   digest   08:00: the three digests (and that hour's checks)
#   after    08:01: the minute after the digests
# For each: wall time of the process, statements it ran (pg_stat_statements, the process's own
# start included), of them those reading avis_daily, mails queued (and, in the JSON, the
# database's transactions committed meanwhile, autovacuum's included). The
# notification state (notification, notify_alert, the outbox, notify_clock) is emptied before
# each sequence. With BEFORE_BIN (e.g. main's binary), both run on the same database ROUNDS times
# in alternation and the ratios are paired per round. Prints a Markdown section for
# docs/BENCHMARKS.md and writes NOTIFYBENCH_JSON if set. Loopback only.
#
#   scripts/notifybench.sh
#   BEFORE_BIN=/tmp/widget-server-main ROUNDS=2 scripts/notifybench.sh
#   NB_ACCOUNTS=200 NB_DEMARCHES=500 BIN=target/debug/widget-server scripts/notifybench.sh   (CI smoke)
#   NOTIFYBENCH_TOP=1 …                 also print each run's most frequent statements
set -euo pipefail
cd "$(dirname "$0")/.."
accounts=${NB_ACCOUNTS:-20000}
demarches=${NB_DEMARCHES:-50000}
rounds=${ROUNDS:-1}

die() { echo "notifybench.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }
command -v psql >/dev/null || die "psql is needed (apt-get install postgresql-client)"
command -v python3 >/dev/null || die "python3 is needed"
[ "$demarches" -ge "$accounts" ] || die "NB_DEMARCHES must be at least NB_ACCOUNTS"

if [ -z "${BIN:-}" ]; then
  say "building (release)"
  cargo build --release --locked -p widget-server --bin widget-server >&2
  BIN=$(pwd)/target/release/widget-server
fi
after=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
before=${BEFORE_BIN:-}
[ -z "$before" ] || [ -x "$before" ] || die "BEFORE_BIN=$before is not an executable"

work=$(mktemp -d /tmp/monavis-notifybench.XXXXXX)
chmod 755 "$work"
cleanup() {
  scripts/pg.sh stop "$work/pg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "PostgreSQL: $accounts accounts, $demarches démarches"
scripts/pg.sh start "$work/pg" --stat-statements >/dev/null
. "$work/pg/env"
url=$MONAVIS_TEST_DATABASE_URL
(cd "$work" && "$after" --database-url "$url" --log warn migrate >&2)
busy=$((demarches / 10))
load_start=$(date +%s.%N)
psql "$url" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION pg_stat_statements;
INSERT INTO account (email, name, password_hash, status, created_at, status_at)
  SELECT 'porteur' || i || '@bench.example', 'Porteur ' || i, 'x', 'active', '2026-01-01', '2026-01-01'
  FROM generate_series(1, $accounts) i;
INSERT INTO demarche (id, name, administration)
  SELECT d, 'Démarche ' || d, 'Administration ' || (d % 40) FROM generate_series(1, $demarches) d;
INSERT INTO porteur (account_id, demarche_id, created_at)
  SELECT (d - 1) % $accounts + 1, d, '2026-01-01' FROM generate_series(1, $demarches) d;
INSERT INTO porteur (account_id, demarche_id, created_at)
  SELECT (d * 7) % $accounts + 1, d, '2026-01-01' FROM generate_series(4, $demarches, 4) d
  ON CONFLICT DO NOTHING;
INSERT INTO notify_account (account_id, digest)
  SELECT i, CASE i % 10 WHEN 0 THEN 'quotidienne' WHEN 1 THEN 'mensuelle' ELSE 'aucune' END
  FROM generate_series(1, $accounts) i WHERE i % 10 IN (0, 1, 2);
INSERT INTO notify_demarche (account_id, demarche_id, comments, drop_alert, silent)
  SELECT (d - 1) % $accounts + 1, d, true, true, true FROM generate_series(3, $demarches, 10) d;
-- avis_daily over the 62 days before Monday 1 June 2026 (and that day), triggers off: the
-- monthly rollup is not what this measures.
SET session_replication_role = replica;
INSERT INTO avis_daily (demarche_id, day, source, n, sat_bien, sat_moyen, sat_pas_bien,
                        fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair,
                        aide_aucune, aide_proche, aide_agent)
  SELECT d, date '2026-06-01' - k, s, 10 + d % 5,
         CASE WHEN d % 50 = 0 AND k <= 7 THEN 2 ELSE 7 + d % 5 END, 2,
         CASE WHEN d % 50 = 0 AND k <= 7 THEN 6 + d % 5 ELSE 1 END, 5, 3, 2, 5, 3, 2, 6, 2, 2
  FROM generate_series(1, $busy) d, generate_series(1, 62) k, unnest(ARRAY['button', 'mail']) s
  WHERE NOT (s = 'mail' AND d % 40 = 1 AND k <= 3);
INSERT INTO avis_daily (demarche_id, day, source, n, sat_bien, sat_moyen, sat_pas_bien,
                        fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair,
                        aide_aucune, aide_proche, aide_agent)
  SELECT d, date '2026-06-01' - 1 - (d * 13 + j * 7) % 62, 'button', 3 + d % 4, 2 + d % 4, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0
  FROM generate_series($busy + 1, $demarches) d, generate_series(1, 10) j
  ON CONFLICT DO NOTHING;
SET session_replication_role = origin;
SELECT monavis_avis_partition('2026-05-15'), monavis_avis_partition('2026-06-15');
-- Comments: three two days before on every 10th démarche (the digests quote them), three in
-- the night before the run on every 20th (the comment alerts send them).
INSERT INTO avis (id, demarche_id, source, received_at, satisfaction, commentaire)
  SELECT gen_random_uuid(), d, 'button', timestamptz '2026-05-30 10:00Z' + j * interval '1 minute', 'bien',
         'Commentaire ' || j || ' sur la démarche ' || d
  FROM generate_series(3, $demarches, 10) d, generate_series(1, 3) j;
INSERT INTO avis (id, demarche_id, source, received_at, satisfaction, commentaire)
  SELECT gen_random_uuid(), d, 'button', timestamptz '2026-06-01 03:00Z' + j * interval '7 minutes', 'moyen',
         'Remarque ' || j || ' sur la démarche ' || d
  FROM generate_series(3, $demarches, 20) d, generate_series(1, 3) j;
ANALYZE;
SQL
# The search keys of the démarches are filled by the migration step (in Rust): once here, not in
# the first measured run.
(cd "$work" && "$after" --database-url "$url" --log warn migrate >&2)
load_s=$(python3 -c "import time; print(round(time.time() - $load_start, 1))")
daily_rows=$(psql "$url" -tAq -c "SELECT count(*) FROM avis_daily")
subscriptions=$(psql "$url" -tAq -c "SELECT count(*) FROM porteur")
say "loaded in ${load_s} s: $daily_rows avis_daily rows, $subscriptions (account, démarche)"

python3 - "$url" "$work" "$after" "$before" "$rounds" "$accounts" "$demarches" "$daily_rows" "$subscriptions" "$load_s" \
  "${NOTIFYBENCH_JSON:-}" <<'PY'
import json, os, subprocess, sys, time
url, work, after, before, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
accounts, demarches, daily_rows, subscriptions, load_s = map(float, sys.argv[6:11])
json_out = sys.argv[11]

def psql(sql):
    return subprocess.run(["psql", url, "-tAq", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()

RUNS = [("hourly", "2026-06-01T05:00:00Z"), ("minute", "2026-06-01T05:01:00Z"),
        ("digest", "2026-06-01T06:00:00Z"), ("after", "2026-06-01T06:01:00Z")]

def reset():
    tables = ["notification", "notify_alert", "email_outbox"]
    if psql("SELECT to_regclass('notify_clock') IS NOT NULL") == "t":
        tables.append("notify_clock")
    psql("TRUNCATE " + ", ".join(tables))
    psql("VACUUM ANALYZE notification, email_outbox")

def sequence(binary):
    reset()
    out = {}
    for name, at in RUNS:
        psql("SELECT pg_stat_statements_reset()")
        commits0 = int(psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
        queued0 = int(psql("SELECT count(*) FROM email_outbox"))
        t0 = time.monotonic()
        p = subprocess.run([binary, "--database-url", url, "--log", "warn", "notifications", "run", "--at", at],
                           cwd=work, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"notifications run --at {at} failed:\n{p.stdout}\n{p.stderr}")
        # pg_stat_database is updated when a backend reports (at the latest when it ends).
        time.sleep(0.7)
        psql("SELECT pg_stat_clear_snapshot()")
        stats = psql("SELECT coalesce(sum(calls), 0), coalesce(sum(calls) FILTER (WHERE query ILIKE '%avis_daily%'), 0), "
                     "coalesce(sum(calls) FILTER (WHERE query ILIKE '%FROM avis %' OR query ILIKE '%FROM avis\n%'), 0) "
                     "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                     "AND query NOT ILIKE '%pg_stat%'").split("|")
        if os.environ.get("NOTIFYBENCH_TOP"):
            print(psql("SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 150) FROM pg_stat_statements "
                       "WHERE query NOT ILIKE '%pg_stat%' ORDER BY calls DESC LIMIT 8"), file=sys.stderr)
        commits = int(psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")) - commits0
        queued = int(psql("SELECT count(*) FROM email_outbox")) - queued0
        sent = {}
        for line in p.stdout.splitlines()[1:]:
            kind, n = line.split("\t")
            sent[kind] = int(n)
        out[name] = {"at": at, "seconds": round(seconds, 3), "statements": int(stats[0]),
                     "statements_avis_daily": int(stats[1]), "statements_avis": int(stats[2]),
                     "transactions": commits, "queued": queued, "sent": sent}
        print(f"  {os.path.basename(binary)} {name:7} {seconds:8.2f} s  {int(stats[0]):7} statements "
              f"({int(stats[1])} on avis_daily)  {queued:6} mails", file=sys.stderr)
    return out

binaries = [("after", after)] + ([("before", before)] if before else [])
results = {k: [] for k, _ in binaries}
for r in range(rounds):
    for label, b in (binaries if r % 2 == 0 else list(reversed(binaries))):
        print(f"round {r + 1}, {label}:", file=sys.stderr)
        results[label].append(sequence(b))

def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

report = {"accounts": int(accounts), "demarches": int(demarches), "avis_daily_rows": int(daily_rows),
          "subscriptions": int(subscriptions), "load_seconds": load_s, "rounds": rounds, "runs": {}}
for label, seqs in results.items():
    report["runs"][label] = {name: {**seqs[-1][name], "seconds": median([s[name]["seconds"] for s in seqs]),
                                    "seconds_all": [s[name]["seconds"] for s in seqs]} for name, _ in RUNS}
if before:
    report["ratios"] = {name: [round(b[name]["seconds"] / a[name]["seconds"], 2)
                               for a, b in zip(results["after"], results["before"])] for name, _ in RUNS}
if json_out:
    json.dump(report, open(json_out, "w"), indent=1)

fmt = lambda n: f"{int(n):,}".replace(",", " ")
print("## Notifications at scale\n")
print(f"`scripts/notifybench.sh` ({'BEFORE_BIN=… ' if before else ''}ROUNDS={rounds}): an ephemeral PostgreSQL with "
      f"{fmt(accounts)} active accounts carrying {fmt(demarches)} démarches ({fmt(subscriptions)} (account, démarche) pairs), "
      f"{fmt(daily_rows)} avis_daily rows (a tenth of the démarches busy every day on two sources, the rest on 10 days "
      f"of 62), loaded in {load_s:.0f} s. `widget-server notifications run --at …` on Monday 1 June 2026 (every "
      "frequency due), no SMTP: mails are queued in the outbox. Statements are pg_stat_statements' calls during "
      "the process (its start included); time is the process's wall time, median over the rounds.\n")
cols = ["run", "at (UTC)"] + sum([[f"{l} s", f"{l} statements", f"{l} on avis_daily"] for l, _ in binaries], []) + ["mails queued"]
if before:
    cols.append("before / after")
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for name, at in RUNS:
    row = [name, at[11:16]]
    for label, _ in binaries:
        x = report["runs"][label][name]
        row += [f"{x['seconds']:.2f}", fmt(x["statements"]), fmt(x["statements_avis_daily"])]
    row.append(fmt(report["runs"]["after"][name]["queued"]))
    if before:
        rs = report["ratios"][name]
        row.append(f"{median(rs):.1f}×" + (f" ({min(rs):.1f}–{max(rs):.1f})" if len(rs) > 1 else ""))
    print("| " + " | ".join(row) + " |")
kinds = report["runs"]["after"]
print("\nMails queued by kind: " + "; ".join(
    f"{name}: " + (", ".join(f"{k} {fmt(v)}" for k, v in kinds[name]["sent"].items()) or "none") for name, _ in RUNS) + ".")
PY
