#!/usr/bin/env bash
# The citizen's hot path before and after a change, in one run (issue 24: the form in the
# citizen's language must not slow the form view nor the vote):
#   - form:  GET of a form link (French), before and after; and after in Arabic (`&lang=ar`, the
#            heaviest page: right to left, two bytes a letter);
#   - vote:  POST of a valid vote answered 303, before and after; and after from the Arabic form
#            (`/Demarches/1/avis?lang=ar`, stored with its langue).
# widget-server built from BEFORE_REV (default HEAD: what this checkout changes) or the binary
# BEFORE_BIN, and from this checkout. wrk -t1 -c50 for SECS seconds a line, ROUNDS rounds in a
# rotating order so that a slow moment of the shared machine hits every line alike; figures are
# medians over the rounds, and each ratio is the median of the per-round ratios. SQLite stores,
# flushing held off during the run (the intake path only, the same for both builds); rate limits
# open. Prints a Markdown section for docs/BENCHMARKS.md. Loopback only.
#
#   BEFORE_REV=0df4fcd scripts/formbench.sh
#   SECS=5 ROUNDS=5 BEFORE_BIN=/path/widget-server NO_BUILD=1 scripts/formbench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$(pwd)
secs=${SECS:-5}
rounds=${ROUNDS:-5}

die() { echo "formbench.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v python3 >/dev/null || need+=(python3)
apt_install "${need[@]}"

work=$(mktemp -d /tmp/monavis-formbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  git worktree remove --force "$work/before-src" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bin=$root/target/release

[ -n "${BEFORE_BIN:-}" ] || build_before "${BEFORE_REV:-HEAD}"
before_label=${before_label:-"widget-server $BEFORE_BIN"}
after_label="widget-server at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- widget-server || echo ' with uncommitted changes')"
if [ -z "${NO_BUILD:-}" ]; then
  say "building (release)"
  cargo build --release --locked -p widget-server --bin widget-server >&2
fi
cmp -s "$BEFORE_BIN" "$bin/widget-server" && die "the before and after binaries are the same file contents"

open_limits=(--rate-per-minute 1000000000 --rate-per-minute-demarche 1000000000)
hold=(--flush-interval-ms 3600000 --flush-max-votes 100000000 --buffer-max-votes 100000000)
declare -A server_bin=([before]=$BEFORE_BIN [after]=$bin/widget-server)
for v in before after; do
  mkdir -p "$work/$v"
  (cd "$work/$v" && "${server_bin[$v]}" --database-url "sqlite://$work/$v/monavis.db" --log warn \
    demarche add --id 1 --name "Demande de titre de séjour" --administration "Ministère de l'Intérieur" >/dev/null)
  cd "$work/$v"
  start_listener "$v" "${server_bin[$v]}" --database-url "sqlite://$work/$v/monavis.db" --listen 127.0.0.1:0 \
    --log warn "${open_limits[@]}" "${hold[@]}"
  cd "$root"
done
key=$(python3 - "$work/after/data/secret" <<'PY'
import hmac, hashlib, sys
print(hmac.new(open(sys.argv[1], 'rb').read(), b"demarche:1", hashlib.sha256).hexdigest()[:32])
PY
)
keyb=$(python3 - "$work/before/data/secret" <<'PY'
import hmac, hashlib, sys
print(hmac.new(open(sys.argv[1], 'rb').read(), b"demarche:1", hashlib.sha256).hexdigest()[:32])
PY
)
for v in before after; do
  k=$key; [ "$v" = before ] && k=$keyb
  cat >"$work/post-$v.lua" <<EOF
wrk.method = "POST"
wrk.body = "key=$k&nd_source=button&satisfaction=moyen&facilite=difficile&clarte=clair&aide=agent&aide=internet"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOF
done
ab=$(cat "$work/before.addr"); aa=$(cat "$work/after.addr")
declare -A spec=(
  [form_before]="$ab/Demarches/1?view-mode=formulaire-avis&nd_source=button&key=$keyb"
  [form_after]="$aa/Demarches/1?view-mode=formulaire-avis&nd_source=button&key=$key"
  [form_after_ar]="$aa/Demarches/1?view-mode=formulaire-avis&nd_source=button&key=$key&lang=ar"
  [vote_before]="$ab/Demarches/1/avis -s $work/post-before.lua"
  [vote_after]="$aa/Demarches/1/avis -s $work/post-after.lua"
  [vote_after_ar]="$aa/Demarches/1/avis?lang=ar -s $work/post-after.lua"
)
# Sanity: each line answers as expected before it is measured.
curl -fsS -o /dev/null "${spec[form_after_ar]}" || die "the Arabic form does not answer"
curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
  --data "key=$key&satisfaction=bien" "$aa/Demarches/1/avis?lang=ar" | grep -q 303 || die "the Arabic vote is not a 303"

order=(form_before form_after form_after_ar vote_before vote_after vote_after_ar)
for r in $(seq 1 "$rounds"); do
  say "round $r of $rounds: ${order[*]}"
  for name in "${order[@]}"; do
    read -r url extra <<<"${spec[$name]}"
    # shellcheck disable=SC2086
    wrk -t1 -c50 -d"${secs}s" --latency $extra "$url" >"$work/r$r-$name.txt" 2>&1 || { cat "$work/r$r-$name.txt" >&2; die "wrk failed: $name"; }
    grep -q "Non-2xx or 3xx responses" "$work/r$r-$name.txt" && { cat "$work/r$r-$name.txt" >&2; die "errors on $name"; }
  done
  order=("${order[@]:1}" "${order[0]}")
done

python3 - "$work" "$rounds" "$secs" "$before_label" "$after_label" <<'PY'
import re, statistics, sys, os
work, rounds, secs, before, after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def ms(v):
    m = re.match(r'([\d.]+)(us|ms|s)', v)
    x = float(m.group(1))
    return x / 1000 if m.group(2) == 'us' else x * 1000 if m.group(2) == 's' else x
def parse(path):
    t = open(path).read()
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', t).group(1))
    p50 = ms(re.search(r'\s50%\s+(\S+)', t).group(1))
    p99 = ms(re.search(r'\s99%\s+(\S+)', t).group(1))
    return rps, p50, p99
names = ['form_before', 'form_after', 'form_after_ar', 'vote_before', 'vote_after', 'vote_after_ar']
res = {n: [parse(f"{work}/r{r}-{n}.txt") for r in range(1, rounds + 1)] for n in names}
med = lambda xs: statistics.median(xs)
label = {
    'form_before': 'form, French (before)', 'form_after': 'form, French (after)',
    'form_after_ar': 'form, Arabic (after)', 'vote_before': 'vote → 303 (before)',
    'vote_after': 'vote → 303 (after)', 'vote_after_ar': 'vote → 303 from the Arabic form (after)',
}
print(f"`scripts/formbench.sh`: {before} against {after}, wrk -t1 -c50 -d{secs}s, {rounds} rotating rounds, "
      f"SQLite, flushing held off (intake only), load average {os.getloadavg()[0]:.2f} at the end.\n")
print("| line | req/s | p50 ms | p99 ms |")
print("|---|---:|---:|---:|")
for n in names:
    r = res[n]
    print(f"| {label[n]} | {med([x[0] for x in r]):,.0f} | {med([x[1] for x in r]):.2f} | {med([x[2] for x in r]):.2f} |")
def ratio(a, b, i):
    xs = [x[i] / y[i] for x, y in zip(res[a], res[b])]
    return med(xs), min(xs), max(xs)
print()
for what, a, b in [('form (French)', 'form_after', 'form_before'), ('vote', 'vote_after', 'vote_before'),
                   ('Arabic form / French form, after', 'form_after_ar', 'form_after'),
                   ('Arabic vote / French vote, after', 'vote_after_ar', 'vote_after')]:
    m, lo, hi = ratio(a, b, 0)
    p, plo, phi = ratio(a, b, 2)
    print(f"- {what}: req/s **{m:.2f}×** ({lo:.2f}–{hi:.2f}), p99 {p:.2f}× ({plo:.2f}–{phi:.2f})")
PY
