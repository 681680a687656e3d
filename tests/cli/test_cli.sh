#!/usr/bin/env bash
# CLI contract: exit codes, one-line errors, help, and the cluster/eval/knn/model-info flows.
# Usage: test_cli.sh HILANDER_BINARY PROJECT_DIR
set -uo pipefail
bin=$1
root=$2
data=$root/tests/cli/data
tmp=$(mktemp -d /tmp/hltest.cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { :; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE "substring-of-stderr" ARGS...: exit code, one stderr line containing the text.
expect() {
  local code=$1 text=$2
  shift 2
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || { fail "hilander $*: exit $rc, want $code ($(head -c 300 "$tmp/err"))"; return; }
  if [ -n "$text" ]; then
    grep -qF -- "$text" "$tmp/err" || fail "hilander $*: stderr lacks '$text': $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "hilander $*: error is not one line: $(cat "$tmp/err")"
  fi
}

# Usage and argument errors.
expect 2 ""
grep -q "usage: hilander" "$tmp/err" || fail "no usage without arguments"
expect 0 "" --help
grep -q "cluster" "$tmp/out" || fail "--help does not list cluster"
expect 2 "unknown command 'frobnicate'" frobnicate
for cmd in cluster eval knn model-info; do
  expect 0 "" "$cmd" --help
  grep -q "usage: hilander $cmd" "$tmp/out" || fail "$cmd --help lacks usage"
done
expect 2 "--out is required" cluster --in "$data/blobs.features.npy"
expect 2 "--k must be an integer in [2, 1024], got '1'" cluster --in x --out y --k 1
expect 2 "--tau must be a number in [0, 1], got 'abc'" cluster --in x --out y --tau abc
expect 2 "unknown option '--bogus'" cluster --bogus 1
expect 2 "option --k given twice" cluster --k 3 --k 4
expect 2 "--in needs a value" cluster --in
expect 2 "--threads must be an integer" knn --in x --out y --threads 0

# Bad files: one line naming the file.
expect 2 "$tmp/missing.npy" cluster --in "$tmp/missing.npy" --out "$tmp/l.npy"
echo "not a numpy file" >"$tmp/bad.npy"
expect 2 "magic" cluster --in "$tmp/bad.npy" --out "$tmp/l.npy"
expect 2 "$tmp/bad.hlm" cluster --in "$data/blobs.features.npy" --out "$tmp/l.npy" --model "$tmp/bad.hlm"
cp "$tmp/bad.npy" "$tmp/bad.hlm"
expect 2 "bad.hlm" model-info "$tmp/bad.hlm"
expect 2 "has 10 labels for 300 points" cluster --in "$data/blobs.features.npy" --out "$tmp/l.npy" \
  --labels "$data/blobs.labels_short.npy"
expect 2 "has 300 labels but" eval --pred "$data/blobs.labels.npy" --true "$data/blobs.labels_short.npy"
expect 2 "" eval --pred "$data/blobs.features.npy" --true "$data/blobs.labels.npy"

# A model whose dimension differs from the data's is refused with both dimensions named.
model=$root/tests/proto/cases/valid/model_lander_reversed_table/input.hlm
if [ -f "$model" ]; then
  expect 0 "" model-info "$model"
  grep -q "kind            lander" "$tmp/out" || fail "model-info: no kind line"
  dim=$(awk '/^dim/ {print $2}' "$tmp/out")
  [ "$dim" != 16 ] && expect 2 "expects dimension $dim" cluster --in "$data/blobs.features.npy" \
    --out "$tmp/l.npy" --model "$model"
else
  fail "missing test model $model"
fi

# The model-free flow end to end.
expect 0 "" cluster --in "$data/blobs.features.npy" --out "$tmp/l.npy" --levels-out "$tmp/lv.npy" \
  --labels "$data/blobs.labels.npy" --stats --threads 2
grep -q "pairwise  F" "$tmp/out" || fail "cluster --labels prints no metrics"
grep -q "peak RSS" "$tmp/err" || fail "cluster --stats prints no peak RSS"
grep -q "level 0" "$tmp/err" || fail "cluster prints no progress"
[ "$(stat -c %s "$tmp/l.npy")" -eq $((128 + 300 * 4)) ] || fail "labels file has the wrong size"
expect 0 "" eval --pred "$tmp/l.npy" --true "$data/blobs.labels.npy" --json
fp=$(sed -n 's/.*"fp": \([0-9.]*\).*/\1/p' "$tmp/out")
awk -v f="$fp" 'BEGIN { exit !(f > 0.9) }' || fail "blobs Fp $fp <= 0.9"
expect 0 "" cluster --in "$data/blobs.features.npy" --out "$tmp/l2.npy" --quiet --threads 1
[ -s "$tmp/err" ] && fail "--quiet still wrote to stderr: $(cat "$tmp/err")"
cmp -s "$tmp/l.npy" "$tmp/l2.npy" || fail "same input, different labels across thread counts"

# Every point its own cluster: pairwise precision is undefined and prints as JSON null.
expect 0 "" eval --pred "$data/blobs.labels_unique.npy" --true "$data/blobs.labels.npy" --json
grep -q '"fp_precision": null' "$tmp/out" || fail "undefined precision is not null: $(cat "$tmp/out")"

# kNN method flags: the per-level method shows in --stats; the IVF is thread-count invariant.
expect 2 "--knn must be auto, exact or ivf, got 'hnsw'" cluster --in "$data/blobs.features.npy" \
  --out "$tmp/l.npy" --knn hnsw
expect 2 "--nlist must be an integer" cluster --in x --out y --nlist -1
expect 2 "--nprobe must be an integer" cluster --in x --out y --nprobe abc
expect 2 "--knn-exact-max must be an integer" cluster --in x --out y --knn-exact-max -5
stats_re='^ +0 +300 +[0-9]+ +[0-9]+ +[0-9]+  '
for m in ivf exact; do
  expect 0 "" cluster --in "$data/blobs.features.npy" --out "$tmp/k_$m.npy" --knn $m --stats \
    --quiet --threads 2 --labels "$data/blobs.labels.npy"
  grep -Eq "${stats_re}$m " "$tmp/err" || fail "--knn $m: level 0 is not $m: $(cat "$tmp/err")"
  grep -Eq "^total [0-9.]+ s, peak RSS [1-9][0-9.]* MiB, .*, CPU [0-9.]+ s, load [0-9.]+$" \
    "$tmp/err" || fail "--stats: no peak RSS, CPU time or load: $(cat "$tmp/err")"
  fp=$(sed -n 's/^pairwise  F \([0-9.]*\).*/\1/p' "$tmp/out")
  awk -v f="$fp" 'BEGIN { exit !(f > 0.9) }' || fail "--knn $m: blobs Fp $fp <= 0.9"
done
expect 0 "" cluster --in "$data/blobs.features.npy" --out "$tmp/k_ivf1.npy" --knn ivf --quiet \
  --threads 1
cmp -s "$tmp/k_ivf.npy" "$tmp/k_ivf1.npy" || fail "--knn ivf: labels differ across thread counts"
# auto: exact up to --knn-exact-max nodes (300 > 100: the IVF at level 0), else exact.
expect 0 "" cluster --in "$data/blobs.features.npy" --out "$tmp/l3.npy" --knn-exact-max 100 \
  --stats --quiet
grep -Eq "${stats_re}ivf " "$tmp/err" || fail "auto above --knn-exact-max is not ivf"
expect 0 "" cluster --in "$data/blobs.features.npy" --out "$tmp/l3.npy" --stats --quiet
grep -Eq "${stats_re}exact " "$tmp/err" || fail "auto below the threshold is not exact"

# kNN output shape: (300, 5) int32 and float32.
expect 0 "" knn --in "$data/blobs.features.npy" --k 5 --out "$tmp/i.npy" --sims-out "$tmp/s.npy" --quiet
[ "$(stat -c %s "$tmp/i.npy")" -eq $((128 + 300 * 5 * 4)) ] || fail "knn ids file has the wrong size"
[ "$(stat -c %s "$tmp/s.npy")" -eq $((128 + 300 * 5 * 4)) ] || fail "knn sims file has the wrong size"
# The IVF through `hilander knn`: 300 points make 5 cells and every cell is probed, so the
# lists are the exact ones; a bad method is refused.
expect 0 "" knn --in "$data/blobs.features.npy" --k 5 --knn ivf --out "$tmp/i_ivf.npy" --quiet
cmp -s "$tmp/i.npy" "$tmp/i_ivf.npy" || fail "knn --knn ivf with every cell probed differs from exact"
expect 0 "" knn --in "$data/blobs.features.npy" --k 5 --knn auto --knn-exact-max 100 --nprobe 2 \
  --out "$tmp/i_auto.npy" --quiet
expect 2 "--knn must be exact, ivf or auto, got 'hnsw'" knn --in "$data/blobs.features.npy" \
  --out "$tmp/i_bad.npy" --knn hnsw

if [ "$fails" -ne 0 ]; then
  echo "$fails CLI check(s) failed"
  exit 1
fi
echo "CLI checks passed"
