#!/usr/bin/env bash
# The shipped models load, verify, and reproduce the figures their model cards state.
# Each models/<name>.md carries one machine-readable line
#   <!-- check: model=<file> in=<features.npy> labels=<labels.npy> fp=F fb=F nmi=F -->
# (paths relative to the project root); the test reruns that clustering and compares the
# metrics within 0.002 (BLAS kernels may round differently on another CPU).
# Usage: test_models.sh HILANDER_BINARY PROJECT_DIR
set -uo pipefail
bin=$1
root=$2
cd "$root" || exit 1
tmp=$(mktemp -d /tmp/hltest.models.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
for m in glyphs-128 universal; do
  [ -f "models/$m.hlm" ] || fail "models/$m.hlm is missing"
  [ -f "models/$m.md" ] || fail "models/$m.md (the model card) is missing"
done
for card in models/*.md; do
  line=$(grep -o '<!-- check: [^>]*-->' "$card" | head -1)
  [ -n "$line" ] || { fail "$card has no check line"; continue; }
  get() { echo "$line" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
  model=$(get model) in=$(get in) labels=$(get labels)
  want_fp=$(get fp) want_fb=$(get fb) want_nmi=$(get nmi)
  "$bin" model-info "$model" >"$tmp/info" 2>&1 || { fail "$model does not verify: $(cat "$tmp/info")"; continue; }
  "$bin" cluster --in "$in" --model "$model" --out "$tmp/p.npy" --quiet || { fail "$model: cluster failed"; continue; }
  "$bin" eval --pred "$tmp/p.npy" --true "$labels" --json >"$tmp/m.json" || { fail "$model: eval failed"; continue; }
  for k in fp fb nmi; do
    want=$(eval echo "\$want_$k")
    got=$(sed -n "s/.*\"$k\": \([0-9.]*\).*/\1/p" "$tmp/m.json")
    awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.002) }' ||
      fail "$model: $k $got, the card says $want"
  done
  echo "$model: $(cat "$tmp/m.json")"
done
[ "$fails" -eq 0 ] || { echo "$fails model check(s) failed"; exit 1; }
echo "model checks passed"
