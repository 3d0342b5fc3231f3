#!/usr/bin/env bash
# Ephemeral PostgreSQL cluster for tests and benchmarks, from the system's binaries.
#
#   scripts/pg.sh start DIR    create a cluster in DIR (must not exist), start it on a free
#                              loopback port, write DIR/env (shell exports) and print it
#   scripts/pg.sh start DIR --ssl
#                              the same with TLS on (see make_tls below): DIR/env also exports
#                              MONAVIS_TEST_PG_CA (the CA that signed the server's certificate,
#                              made for DNS:localhost only), MONAVIS_TEST_PG_WRONG_CA (another
#                              CA) and MONAVIS_TEST_PG_TLS_URL, a URL (no sslmode) for the role
#                              monavis_tls, which the server accepts over TLS only
#   scripts/pg.sh start DIR --stat-statements
#                              with pg_stat_statements preloaded (benchmarks count statements)
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
    echo "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200${ssl_opts:-}" >"$dir/opts"
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

# A throw-away PKI in $1: ca.pem signs server.crt (SAN DNS:localhost only, so a client checking
# names accepts "localhost" and refuses "127.0.0.1"); wrong-ca.pem signs nothing. EC P-256 keys:
# instant to make. The server's key belongs to the user the server runs as, mode 0600, or
# PostgreSQL refuses it.
make_tls() {
  local tls=$1
  command -v openssl >/dev/null || apt_get_install openssl
  mkdir -p "$tls"
  (
    cd "$tls"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=monavis test CA" -keyout ca.key -out ca.pem \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=monavis unrelated CA" -keyout wrong-ca.key -out wrong-ca.pem \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req "${ec[@]}" -subj "/CN=localhost" -keyout server.key -out server.csr
    printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -days 3650 -extfile server.ext -out server.crt
  ) >"$tls/openssl.log" 2>&1 || { cat "$tls/openssl.log" >&2; die "openssl could not make the test certificates"; }
  chmod 0600 "$tls/server.key"
  [ "$(id -u)" = 0 ] && chown postgres "$tls/server.key" "$tls/server.crt"
  return 0
}

apt_get_install() {
  [ "$(id -u)" = 0 ] || die "$* not found and not root: install it"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "$@" >&2
}

# Before initdb's own lines, which let every role in: the role monavis_tls over TLS only.
tls_only_role_hba() {
  local hba=$1 rest
  rest=$(cat "$hba")
  {
    echo "# pg.sh --ssl: the role monavis_tls is accepted over TLS only"
    echo "hostssl   all monavis_tls 127.0.0.1/32 trust"
    echo "hostnossl all monavis_tls 127.0.0.1/32 reject"
    echo "hostssl   all monavis_tls ::1/128      trust"
    echo "hostnossl all monavis_tls ::1/128      reject"
    echo "$rest"
  } >"$hba"
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pg.sh start|stop|pause|resume DIR [--ssl] [--stat-statements], or pg.sh replica PRIMARY DIR"
ssl=""; stat_statements=""
[ "$cmd" = replica ] || for opt in "${@:3}"; do
  case "$opt" in
    --ssl) [ "$cmd" = start ] || die "--ssl goes with start"; ssl=1 ;;
    --stat-statements) [ "$cmd" = start ] || die "--stat-statements goes with start"; stat_statements=1 ;;
    *) die "unknown option $opt" ;;
  esac
done

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
  ssl_opts=""
  if [ -n "$ssl" ]; then
    make_tls "$dir/tls"
    tls_only_role_hba "$dir/data/pg_hba.conf"
    ssl_opts=" -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key"
  fi
  # --stat-statements: pg_stat_statements loaded, so a benchmark can count the statements a
  # command runs (CREATE EXTENSION pg_stat_statements in its database, then read the view).
  [ -z "$stat_statements" ] || ssl_opts="${ssl_opts} -c shared_preload_libraries=pg_stat_statements"
  start_on_free_port
  if [ -n "$ssl" ]; then
    as_owner "$bindir/psql" -h "$dir" -p "$started" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE monavis_tls LOGIN" -c "CREATE DATABASE monavis_tls OWNER monavis_tls" >/dev/null \
      || die "could not create the role monavis_tls"
    cat >>"$dir/env" <<ENV
export MONAVIS_TEST_PG_CA=$dir/tls/ca.pem
export MONAVIS_TEST_PG_WRONG_CA=$dir/tls/wrong-ca.pem
export MONAVIS_TEST_PG_TLS_URL=postgres://monavis_tls@localhost:$started/monavis_tls
ENV
  fi
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
