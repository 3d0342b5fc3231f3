#!/usr/bin/env bash
# Fuzzes the code that reads hostile input, each target for a bounded time (libFuzzer through
# cargo-fuzz; the targets are in fuzz/fuzz_targets/, one paragraph each on what they check):
#
#   vote           a vote body: form::parse_vote, the key check, the scrubbed comment, the
#                  accepted vote's journal line, or the re-rendered form
#   key            snippet::KeySigner::verify: a key verifies exactly when it is the signed one
#   scrub          privacy::scrub on any UTF-8: text without `@` and digits is kept, scrubbing is
#                  idempotent
#   console_forms  the console's form extractor into every posted form, its size limit, and the
#                  checks on addresses, domains, free text and search keys
#
# Usage: scripts/fuzz.sh [TARGET…]   (all targets by default)
#   FUZZ_SECONDS     per target (default 60)
#   FUZZ_SANITIZER   cargo fuzz --sanitizer (default none, see below)
#
# Each run starts from the committed seeds (fuzz/seeds/TARGET) in a fresh corpus that is deleted
# afterwards. Prints executions and the verdict per target; exits 1 if any target found a crash,
# kept in fuzz/artifacts/TARGET/ (not committed) with the command that replays it.
# Not run in CI: it takes minutes and keeps both cores busy.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."
. scripts/lib.sh

die() { echo "fuzz.sh: $*" >&2; exit 2; }

seconds=${FUZZ_SECONDS:-60}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "FUZZ_SECONDS must be a positive number of seconds, not '$seconds'"
# Our crates hold no `unsafe`, so what fuzzing can find is a panic (an assertion of a target, an
# index out of bounds, an overflow: builds keep debug assertions), which needs no sanitizer;
# AddressSanitizer would only halve the executions.
sanitizer=${FUZZ_SANITIZER:-none}

command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
# libfuzzer-sys compiles libFuzzer, which is C++.
missing=()
command -v c++ >/dev/null || missing+=(g++)
apt_install "${missing[@]}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# cargo fuzz compiles with flags only a nightly rustc accepts (-Z options for the coverage
# instrumentation libFuzzer is guided by). Only the stable toolchain is installed here and no
# other can be fetched; RUSTC_BOOTSTRAP=1 makes stable rustc accept them. It is the same
# compiler, so what is fuzzed is what is shipped.
export RUSTC_BOOTSTRAP=1

all_targets=(vote key scrub console_forms)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || die "no target '$t' (targets: ${all_targets[*]})"
done

work=$(mktemp -d /tmp/monavis-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Release with debug assertions (cargo fuzz's default), in fuzz/target; every target at once.
printf '\n== building the targets (sanitizer: %s)\n' "$sanitizer"
if ! (cd fuzz && cargo fuzz build --sanitizer "$sanitizer") >"$work/build.log" 2>&1; then
  tail -n 30 "$work/build.log" >&2
  die "cargo fuzz build failed"
fi
tail -n 1 "$work/build.log"

report=()
failed=0
for t in "${targets[@]}"; do
  printf '\n== fuzzing %s for %s s\n' "$t" "$seconds"
  mkdir -p "$work/corpus/$t"
  cp fuzz/seeds/"$t"/* "$work/corpus/$t/" 2>/dev/null || true
  flags=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
  [ -f "fuzz/dicts/$t.dict" ] && flags+=(-dict="$PWD/fuzz/dicts/$t.dict")
  log="$work/$t.log"
  set +e
  (cd fuzz && cargo fuzz run --sanitizer "$sanitizer" "$t" "$work/corpus/$t" -- "${flags[@]}") >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's final statistics; the last status line if it stopped before printing them.
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  units=$(grep -oE 'corp: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || true)
  if [ "$rc" -eq 0 ]; then
    verdict="no crash"
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    verdict="CRASH (exit $rc)${artifact:+: $artifact}"
    # The panic and its message (or libFuzzer's error: timeout, out of memory).
    grep -m 1 -A 1 "panicked at" "$log" | sed 's/^/    /' ||
      grep -m 1 "ERROR: libFuzzer" "$log" | sed 's/^/    /' || true
    [ -z "$artifact" ] ||
      echo "    replay: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $t $artifact"
    [ -n "$artifact" ] || tail -n 20 "$log" | sed 's/^/    /'
  fi
  line=$(printf '%-14s %12s executions  %5s corpus units  %s' "$t" "${execs:-?}" "${units:-?}" "$verdict")
  echo "$line"
  report+=("$line")
done

printf '\n== summary (%s s per target)\n' "$seconds"
printf '%s\n' "${report[@]}"
exit "$failed"
