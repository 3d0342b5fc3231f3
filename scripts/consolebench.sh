#!/usr/bin/env bash
# The console at scale (issue 10): benches/src/bin/consolebench.rs against its own ephemeral
# PostgreSQL, 10,000,000 avis by default; writes the section "Console at scale" of
# docs/BENCHMARKS.md (replaced if present, the rest of the file kept). Loopback only, every
# phase bounded in time. Takes about 15 minutes on 2 cores, most of it loading.
#
#   scripts/consolebench.sh                                   full run
#   CONSOLEBENCH_AVIS=1000000 CONSOLEBENCH_SQLITE_AVIS=100000 scripts/consolebench.sh   quicker
#   CONSOLEBENCH_ARGS="--repeat 50" scripts/consolebench.sh   extra flags (see consolebench --help)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${CONSOLEBENCH_OUT:-docs/BENCHMARKS.md}
avis=${CONSOLEBENCH_AVIS:-10000000}
sqlite_avis=${CONSOLEBENCH_SQLITE_AVIS:-1000000}

die() { echo "consolebench.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }

command -v python3 >/dev/null || die "python3 is needed to write $out"
command -v psql >/dev/null || die "psql is needed (apt-get install postgresql-client)"

say "building (release)"
# The same packages as scripts/bench.sh builds, so features unify alike and, run after bench.sh
# with the tree and git's refs unchanged (widget-server/build.rs records the commit), this reuses
# its binaries instead of building a second widget-server (BENCHMARKS.md: one set of builds).
cargo build --release --locked -p widget-server -p loadtest -p monavis-benches -p snippet --bins >&2

work=$(mktemp -d /tmp/monavis-consolebench.XXXXXX)
chmod 755 "$work"
cleanup() {
  scripts/pg.sh stop "$work/pg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "PostgreSQL"
scripts/pg.sh start "$work/pg" >/dev/null
. "$work/pg/env"
psql "$MONAVIS_TEST_DATABASE_URL" -q -c "CREATE DATABASE console"
url="${MONAVIS_TEST_DATABASE_URL%/*}/console"

say "consolebench: $avis avis on PostgreSQL, $sqlite_avis on SQLite"
# shellcheck disable=SC2086
"$root/target/release/consolebench" --database-url "$url" --bin "$root/target/release/widget-server" \
  --work "$work/run" --avis "$avis" --sqlite-avis "$sqlite_avis" --json "$work/console.json" \
  ${CONSOLEBENCH_ARGS:-} >"$work/section.md"
[ -n "${CONSOLEBENCH_JSON:-}" ] && cp "$work/console.json" "$CONSOLEBENCH_JSON"

say "writing $out"
python3 - "$out" "$work/section.md" <<'PY'
import os, re, sys
out, section = sys.argv[1], open(sys.argv[2]).read().strip() + "\n"
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n"
# The section runs from its heading to the next level-2 heading (or the end).
m = re.search(r"^## Console at scale\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
if m:
    text = text[:m.start()] + section + ("\n" if m.end() < len(text) else "") + text[m.end():]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(out, "w").write(text)
PY
say "done: $out"
cat "$work/section.md"
