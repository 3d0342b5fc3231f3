#!/usr/bin/env bash
# REDbot (the HTTP linter, from PyPI) over what a CDN and browsers fetch from us: both buttons,
# the form, the thank-you page, the observatory, its CSV and JSON, a public démarche page.
# Prints every note REDbot makes (nested ones too) and fails on any WARN or BAD. Starts its own
# server on an SQLite store in a temporary directory; loopback only. About a minute.
#
#   scripts/redbot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

die() { echo "redbot.sh: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is needed"

work=$(mktemp -d /tmp/monavis-redbot.XXXXXX)
server=""
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== REDbot (pip, in a virtualenv)" >&2
python3 -m venv "$work/venv" >&2 || die "python3 -m venv failed (apt-get install python3-venv)"
"$work/venv/bin/pip" install -q redbot >&2

echo "== widget-server" >&2
cargo build -q --locked -p widget-server --bin widget-server >&2
bin=$root/target/debug/widget-server
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
db="sqlite://$work/monavis.db"
cd "$work"
"$bin" --database-url "$db" --log warn demarche add --id 5 --name "Demande de carte grise" >/dev/null
key=$("$bin" --database-url "$db" --public-url "$base" --log warn snippet --demarche 5 | grep -o 'key=[0-9a-f]*' | head -1)
"$bin" --database-url "$db" --listen "127.0.0.1:$port" --public-url "$base" --log warn >"$work/out" 2>"$work/err" &
server=$!
for _ in $(seq 1 100); do grep -q "http://" "$work/out" 2>/dev/null && break; sleep 0.1; done
grep -q "http://" "$work/out" || { cat "$work/err" >&2; die "the server did not start"; }

status=0
for path in /static/bouton-bleu.svg /static/bouton-blanc.svg \
            "/Demarches/5?view-mode=formulaire-avis&nd_source=button&$key" /Demarches/5/merci \
            /observatoire /observatoire.csv /observatoire.json /observatoire.schema.json /Demarches/5; do
  "$work/venv/bin/redbot" -o har "$base$path" >"$work/har.json" 2>"$work/redbot.err" || { cat "$work/redbot.err" >&2; die "redbot failed on $path"; }
  python3 - "$path" "$work/har.json" <<'PY' || status=1
import json, sys
path, har = sys.argv[1], json.load(open(sys.argv[2]))
entry = har["log"]["entries"][0]
status = entry["response"]["status"]
notes = []
def walk(ns, depth):
    for n in ns:
        notes.append((depth, n["level"], n["summary"]))
        walk(n.get("subnotes") or [], depth + 1)
walk(entry.get("_red_messages") or [], 0)
bad = [n for n in notes if n[1] in ("WARN", "BAD")]
print(f"{path}: {status}, {len(notes)} notes, {len(bad)} WARN/BAD")
for depth, level, summary in notes:
    print(f"  {'  ' * depth}{level:5} {summary}")
sys.exit(1 if bad or status != 200 else 0)
PY
done
[ "$status" = 0 ] && echo "redbot.sh: no WARN or BAD" || echo "redbot.sh: WARN or BAD found (above)" >&2
exit "$status"
