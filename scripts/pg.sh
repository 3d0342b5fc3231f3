#!/usr/bin/env bash
# Ephemeral PostgreSQL cluster for tests and benchmarks, from the system's binaries.
#
#   scripts/pg.sh start DIR    create a cluster in DIR (must not exist), start it on a free
#                              loopback port, write DIR/env (shell exports) and print it
#   scripts/pg.sh stop DIR     stop it (the directory is left for inspection; remove it yourself)
#   scripts/pg.sh pause DIR    stop the server only (tests cut the store off mid-run)
#   scripts/pg.sh resume DIR   start it again on the same port
#   scripts/pg.sh replica PRIMARY DIR
#                              a streaming replica (hot standby) of the cluster in PRIMARY, made
#                              by pg_basebackup in DIR (must not exist), started on a free port;
#                              writes DIR/env and prints it, as start does
#
# Installs the postgresql Debian package when no server binaries are found (needs root).
# initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { echo "$d"; return 0; }
  done
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return 0
  fi
  return 1
}

ensure_postgres() {
  find_bindir >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "PostgreSQL server binaries not found and not root: install the postgresql package"
  echo "pg.sh: installing postgresql (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  # Debian's package starts a default cluster on 5432; we do not need it.
  (command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | while read -r v n _; do pg_ctlcluster "$v" "$n" stop || true; done) >&2 || true
  find_bindir >/dev/null || die "postgresql installed but initdb not found"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts the cluster in $dir/data on a free loopback port; writes $dir/opts and $dir/env.
start_on_free_port() {
  started=""
  for _ in $(seq 1 20); do
    port=$(( 20000 + RANDOM % 30000 ))
    port_free "$port" || continue
    # Durability settings are PostgreSQL's defaults, so benchmarks measure what production pays.
    echo "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200" >"$dir/opts"
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "$(cat "$dir/opts")" start >/dev/null 2>&1; then
      started=$port; break
    fi
  done
  [ -n "$started" ] || { tail -20 "$dir/server.log" >&2 || true; die "could not start PostgreSQL"; }
  cat >"$dir/env" <<ENV
export MONAVIS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$started/postgres
export MONAVIS_TEST_PG_DIR=$dir
export MONAVIS_TEST_PG_PORT=$started
ENV
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pg.sh start|stop|pause|resume DIR, or pg.sh replica PRIMARY DIR"

case "$cmd" in
start)
  ensure_postgres
  bindir=$(find_bindir)
  [ -e "$dir" ] && die "$dir already exists"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    chown postgres "$dir"
    chmod 0755 "$dir"
    # Every parent must be traversable by postgres.
    p=$dir; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
  fi
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  start_on_free_port
  cat "$dir/env"
  ;;
replica)
  primary=$dir; dir=${3:-}
  [ -n "$dir" ] || die "usage: pg.sh replica PRIMARY DIR"
  [ -f "$primary/env" ] || die "no cluster started in $primary"
  bindir=$(find_bindir) || die "PostgreSQL binaries not found"
  [ -e "$dir" ] && die "$dir already exists"
  primary_port=$(sed -n 's/^export MONAVIS_TEST_PG_PORT=//p' "$primary/env")
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"; chmod 0755 "$dir"
    p=$dir; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
  fi
  # -R writes standby.signal and primary_conninfo: the copy starts as a hot standby that
  # streams the primary's WAL (initdb's pg_hba.conf trusts replication from loopback).
  as_owner "$bindir/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/data" -R -X stream --checkpoint=fast \
    >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; die "pg_basebackup failed"; }
  start_on_free_port
  cat "$dir/env"
  ;;
stop)
  bindir=$(find_bindir) || die "PostgreSQL binaries not found"
  [ -d "$dir/data" ] || die "no cluster in $dir"
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
pause)
  bindir=$(find_bindir) || die "PostgreSQL binaries not found"
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
resume)
  bindir=$(find_bindir) || die "PostgreSQL binaries not found"
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "$(cat "$dir/opts")" start >/dev/null
  ;;
*)
  die "unknown command $cmd"
  ;;
esac
