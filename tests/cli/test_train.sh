#!/usr/bin/env bash
# `hilander train`: reproducibility across thread counts, the model it writes, and errors.
# Usage: test_train.sh HILANDER_BINARY PROJECT_DIR
set -uo pipefail
bin=$1
root=$2
data=$root/tests/cli/data
tmp=$(mktemp -d /tmp/hltest.train.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
X=$data/blobs.features.npy
Y=$data/blobs.labels.npy

run() { # run CODE ARGS...: exit code check, stderr kept in $tmp/err
  local code=$1
  shift
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "hilander $*: exit $rc, want $code: $(head -c 400 "$tmp/err")"
}
one_line() { # one_line TEXT: the error is one line containing TEXT
  grep -qF -- "$1" "$tmp/err" || fail "stderr lacks '$1': $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "error is not one line: $(cat "$tmp/err")"
}

# Same data and seed: byte-identical model files for 1 and 2 threads, for both kinds.
for kind in universal lander; do
  run 0 train --data "$X" --labels "$Y" --kind "$kind" --epochs 3 --hidden 16 --seed 7 \
    --threads 1 --out "$tmp/$kind-1.hlm" --quiet
  run 0 train --data "$X" --labels "$Y" --kind "$kind" --epochs 3 --hidden 16 --seed 7 \
    --threads 2 --out "$tmp/$kind-2.hlm" --quiet
  cmp -s "$tmp/$kind-1.hlm" "$tmp/$kind-2.hlm" || fail "$kind: thread count changed the model"
  run 0 model-info "$tmp/$kind-1.hlm"
  grep -q "kind            $kind" "$tmp/out" || fail "$kind: model-info shows another kind"
done
# Another seed gives another model.
run 0 train --data "$X" --labels "$Y" --kind universal --epochs 3 --hidden 16 --seed 8 \
  --out "$tmp/seed8.hlm" --quiet
cmp -s "$tmp/universal-1.hlm" "$tmp/seed8.hlm" && fail "the seed does not change the model"

# The trained models cluster: the universal one runs on another dimension, the lander one
# refuses it naming both dimensions.
run 0 cluster --in "$data/blobs8.features.npy" --model "$tmp/universal-1.hlm" --out "$tmp/p.npy" --quiet
run 2 cluster --in "$data/blobs8.features.npy" --model "$tmp/lander-1.hlm" --out "$tmp/p.npy" --quiet
one_line "expects dimension 16, the embeddings have 8"

# Validation split, early stopping and tau tuning print their progress; the name is stored.
run 0 train --data "$X" --labels "$Y" --kind universal --epochs 4 --hidden 16 --val 0.3 \
  --eval-every 2 --name tiny --trained-on "blobs" --out "$tmp/v.hlm"
grep -q "val Fp" "$tmp/err" || fail "--val prints no validation score"
grep -q "^tau 0.50" "$tmp/err" || fail "--val does not tune tau"
grep -q "^epoch   1/4 loss" "$tmp/err" || fail "no per-epoch progress"
run 0 model-info "$tmp/v.hlm"
grep -q "^name            tiny" "$tmp/out" || fail "--name not stored"
grep -q "^trained_on      blobs" "$tmp/out" || fail "--trained-on not stored"

# Errors: one line, exit 2.
run 2 train --data "$X" --labels "$data/blobs.labels_short.npy" --out "$tmp/x.hlm"
one_line "has 10 labels for the 300 rows"
run 2 train --data "$X" --labels "$data/blobs.labels_one.npy" --out "$tmp/x.hlm" --quiet
one_line "training needs at least 2 classes"
run 2 train --data "$X" --labels "$Y" --kind forest --out "$tmp/x.hlm"
one_line "--kind must be lander or universal"
run 2 train --data "$X" --labels "$Y" --settings 10-3 --out "$tmp/x.hlm"
one_line "--settings must look like 10:3"
run 2 train --data "$X,$data/blobs8.features.npy" --labels "$Y" --out "$tmp/x.hlm"
one_line "the same number"
run 2 train --data "$X,$data/blobs8.features.npy" --labels "$Y,$data/blobs8.labels.npy" \
  --kind lander --out "$tmp/x.hlm"
one_line "a lander model needs one dimension"
run 2 train --data "$data/blobs8.features.npy" --labels "$data/blobs8.labels.npy" \
  --resume "$tmp/lander-1.hlm" --out "$tmp/x.hlm" --quiet
one_line "has dimension 16, the data has 8"
run 2 train --data "$data/blobs8.features.npy" --labels "$data/blobs8.labels.npy" --val 0.9 \
  --out "$tmp/x.hlm" --quiet
one_line "need at least one on each side"
run 2 train --data "$tmp/missing.npy" --labels "$Y" --out "$tmp/x.hlm"
one_line "missing.npy"
run 2 train --data "$X" --labels "$Y" --kind universal --ablate "node:99" --out "$tmp/x.hlm" --quiet
one_line "--ablate must look like node:3,5;edge:1"
# An ablated column is off for good: its statistics make it 0 after normalisation.
run 0 train --data "$X" --labels "$Y" --kind universal --epochs 1 --hidden 16 \
  --ablate "node:0,1;edge:4" --out "$tmp/ab.hlm" --quiet
# The universal model trains on several sets of different dimensions.
run 0 train --data "$X,$data/blobs8.features.npy" --labels "$Y,$data/blobs8.labels.npy" \
  --kind universal --epochs 2 --hidden 16 --out "$tmp/multi.hlm" --quiet

if [ "$fails" -ne 0 ]; then
  echo "$fails train check(s) failed"
  exit 1
fi
echo "train checks passed"
