#!/usr/bin/env bash
# The test command (README, .ci/run): on a fresh Debian machine with Rust, installs what is
# missing, starts an ephemeral PostgreSQL, builds everything, runs every test, stops PostgreSQL.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."
. scripts/lib.sh

say() { printf '\n== %s\n' "$*"; }
die() { echo "test.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"

# System packages: a C compiler for the bundled SQLite, PostgreSQL server binaries for the
# store tests (scripts/pg.sh installs postgresql itself when missing).
missing=()
command -v cc >/dev/null || missing+=(gcc libc6-dev)
command -v runuser >/dev/null || missing+=(util-linux)
command -v psql >/dev/null || missing+=(postgresql-client)
apt_install "${missing[@]}"

work=$(mktemp -d /tmp/monavis-test.XXXXXX)
cleanup() { scripts/pg.sh stop "$work/pg" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

say "starting an ephemeral PostgreSQL"
scripts/pg.sh start "$work/pg" >/dev/null
# shellcheck disable=SC1091
. "$work/pg/env"
echo "PostgreSQL on port $MONAVIS_TEST_PG_PORT ($MONAVIS_TEST_PG_DIR)"

say "build"
cargo build --locked --workspace --all-targets

if cargo fmt --version >/dev/null 2>&1; then
  say "rustfmt"
  cargo fmt --all --check
else
  echo "test.sh: NOTE rustfmt is not installed; format check not run" >&2
fi

if cargo clippy --version >/dev/null 2>&1; then
  say "clippy"
  cargo clippy --locked --workspace --all-targets -- -D warnings
else
  echo "test.sh: NOTE clippy is not installed; lint step not run" >&2
fi

say "tests"
cargo test --locked --workspace 2>&1 | tee "$work/test.log"

say "loadtest smoke run"
scripts/loadtest-smoke.sh

passed=$(grep -o '[0-9]* passed' "$work/test.log" | awk '{s += $1} END {print s + 1}')
say "all tests passed"
# One closing line for CI: cargo's tests plus the loadtest smoke run.
echo "summary: $passed passed, 0 failed"
