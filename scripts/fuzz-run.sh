#!/usr/bin/env bash
# Runs libFuzzer targets of build-fuzz/ for SECONDS each, JOBS at a time (one per core), each
# on a scratch copy of its seed corpus in tests/fuzz/corpus/<target> (new inputs do not land in
# the repository). Crashes and slow inputs are written as build-fuzz/<target>-*. Each target's
# log is printed when it ends; the exit status is non-zero if any target failed.
# Usage: scripts/fuzz-run.sh SECONDS JOBS TARGET...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=$1 jobs=$2
shift 2
one() { # one TARGET: runs it, log in build-fuzz/fuzz-TARGET.log
  local t=$1 log=build-fuzz/fuzz-$1.log
  rm -rf "build-fuzz/corpus-$t"
  cp -r "tests/fuzz/corpus/$t" "build-fuzz/corpus-$t"
  if "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="build-fuzz/$t-" "build-fuzz/corpus-$t" >"$log" 2>&1; then
    echo "== fuzz_$t: ${seconds} s, no crash" && grep -E '^stat::number_of_executed_units' "$log"
  else
    echo "== fuzz_$t FAILED; its log:" && cat "$log" && return 1
  fi
}
export -f one
export seconds
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'one "$1"' _ {}
