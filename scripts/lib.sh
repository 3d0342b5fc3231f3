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
