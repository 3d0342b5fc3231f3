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
# A real SMTP server for the console's e-mail tests (Debian's python3, whatever python3 is first
# on PATH).
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
# Headless Chromium driven over WebDriver, and axe-core (npm) for the accessibility tests; Node.js
# also runs the OpenID Connect provider of the ProConnect tests (oidc-provider, npm).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
# Debian's Prometheus (the server and promtool): deploy/prometheus/'s rules are unit-tested with
# promtool and evaluated by a real Prometheus scraping a real server (widget-server/tests/prometheus.rs).
command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ] || missing+=(prometheus)
# systemd-analyze verify checks deploy/monavis.service (widget-server/tests/deploy_unit.rs).
command -v systemd-analyze >/dev/null || [ -x /usr/bin/systemd-analyze ] || missing+=(systemd)
apt_install "${missing[@]}"

say "axe-core (npm ci, scripts/a11y)"
npm ci --prefix scripts/a11y --no-audit --no-fund --loglevel=error
export MONAVIS_TEST_AXE_JS="$PWD/scripts/a11y/node_modules/axe-core/axe.min.js"
export MONAVIS_TEST_CHROMIUM=/usr/bin/chromium MONAVIS_TEST_CHROMEDRIVER=/usr/bin/chromedriver
[ -s "$MONAVIS_TEST_AXE_JS" ] || die "axe-core was not installed at $MONAVIS_TEST_AXE_JS"
echo "$($MONAVIS_TEST_CHROMIUM --version), $($MONAVIS_TEST_CHROMEDRIVER --version | cut -d' ' -f1-2), axe-core $(node -p "require('./scripts/a11y/node_modules/axe-core/package.json').version")"

say "OpenID Connect provider (npm ci, scripts/oidc)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
  || die "the OpenID Connect provider of the tests (oidc-provider 8) needs Node.js 18 or later, found $(node --version)"
npm ci --prefix scripts/oidc --no-audit --no-fund --loglevel=error
export MONAVIS_TEST_OIDC_PROVIDER="$PWD/scripts/oidc/provider.js"
echo "oidc-provider $(node -p "require('./scripts/oidc/node_modules/oidc-provider/package.json').version") on Node.js $(node --version)"

work=$(mktemp -d /tmp/monavis-test.XXXXXX)
smtp_pid=""
oidc_pid=""
cleanup() {
  scripts/pg.sh stop "$work/pg" 2>/dev/null || true
  [ -z "$smtp_pid" ] || kill "$smtp_pid" 2>/dev/null || true
  [ -z "$oidc_pid" ] || kill "$oidc_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "starting an ephemeral PostgreSQL"
scripts/pg.sh start "$work/pg" >/dev/null
# shellcheck disable=SC1091
. "$work/pg/env"
echo "PostgreSQL on port $MONAVIS_TEST_PG_PORT ($MONAVIS_TEST_PG_DIR)"

say "starting an SMTP sink (aiosmtpd, Maildir)"
mkdir -p "$work/maildir/tmp" "$work/maildir/new" "$work/maildir/cur"
for _ in $(seq 1 20); do
  port=$(( 20000 + RANDOM % 30000 ))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
  /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$work/maildir" \
    >"$work/smtp.log" 2>&1 &
  smtp_pid=$!
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill "$smtp_pid" 2>/dev/null || true; smtp_pid=""
done
[ -n "$smtp_pid" ] || { cat "$work/smtp.log" >&2; die "could not start the SMTP sink"; }
export MONAVIS_TEST_SMTP_URL="smtp://127.0.0.1:$port" MONAVIS_TEST_MAILDIR="$work/maildir"
echo "SMTP sink on port $port ($MONAVIS_TEST_MAILDIR)"

say "starting the OpenID Connect provider (oidc-provider set up like ProConnect)"
node "$MONAVIS_TEST_OIDC_PROVIDER" >"$work/oidc.out" 2>"$work/oidc.err" &
oidc_pid=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$work/oidc.out" 2>/dev/null && break
  kill -0 "$oidc_pid" 2>/dev/null || break
  sleep 0.05
done
MONAVIS_TEST_OIDC_ISSUER=$(sed -n 's/^oidc-provider listening on //p' "$work/oidc.out" | head -1)
[ -n "$MONAVIS_TEST_OIDC_ISSUER" ] || { cat "$work/oidc.err" >&2; die "could not start the OpenID Connect provider"; }
export MONAVIS_TEST_OIDC_ISSUER
echo "OpenID Connect provider at $MONAVIS_TEST_OIDC_ISSUER"

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

say "flushbench smoke run"
scripts/flushbench-smoke.sh

say "consolebench smoke run"
scripts/consolebench-smoke.sh

passed=$(grep -o '[0-9]* passed' "$work/test.log" | awk '{s += $1} END {print s + 3}')
say "all tests passed"
# One closing line for CI: cargo's tests plus the loadtest, flushbench and consolebench smoke runs.
echo "summary: $passed passed, 0 failed"
