# Shared by the scripts: sourced, not run.

# apt_install PKG…: installs the given Debian packages (none given: nothing to do). Needs root.
apt_install() {
  [ $# -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then
    echo "$(basename "$0"): missing packages $*; install them (apt-get install $*)" >&2
    exit 1
  fi
  printf '\n== installing %s\n' "$*" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# start_listener NAME CMD…: starts CMD in the current directory, in the background (a child of
# this shell, so we can wait for its exit status), waits for its "listening on http://ADDR" line;
# ADDR goes to $work/NAME.addr and the pid to $work/NAME.pid. The caller defines $work, the
# array pids (killed by its cleanup) and die.
start_listener() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  echo $! >"$work/$name.pid"
  for _ in $(seq 1 200); do
    if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
      sed -n 's/.*listening on //p' "$work/$name.out" | head -1 >"$work/$name.addr"
      return
    fi
    sleep 0.05
  done
  cat "$work/$name.err" >&2; die "$* did not start"
}

# build_before REV: builds widget-server at REV (release) in a worktree under $work, sharing
# ./target (dependencies are built once), and copies the binary out at once, before a build of
# this checkout puts its own in the same place. Sets BEFORE_BIN and before_label. The caller's
# cleanup removes the worktree ($work/before-src).
build_before() {
  local rev=$1 root
  root=$(pwd)
  printf '\n== building widget-server at %s (before)\n' "$(git rev-parse --short "$rev")" >&2
  git worktree add --detach "$work/before-src" "$rev" >/dev/null 2>&1 || die "git worktree add $rev failed"
  (cd "$work/before-src" && CARGO_TARGET_DIR=$root/target cargo build --release --locked -p widget-server --bin widget-server >&2)
  cp "$root/target/release/widget-server" "$work/ws-before"
  # The workspace's own crates were built from REV's sources into the shared directory, under
  # the same names as this checkout's (cargo does not tell them apart by path): forget them, so
  # the next build compiles this checkout's.
  cargo clean --release --quiet -p widget-server -p snippet
  BEFORE_BIN=$work/ws-before
  before_label="widget-server at $(git rev-parse --short "$rev")"
}
