#!/usr/bin/env bash
# Reproduces the shipped models from scratch: models/glyphs-128.hlm and models/universal.hlm.
# Needs a build (make build) and ../shared/data/glyphs. Deterministic: the same build gives
# byte-identical model files, whatever the thread count.
#
# Two stages per model. Stage "select" holds out 20% of the train classes (--val 0.2) to
# pick the epoch budget and the link threshold tau on classes the model never saw (the
# figures in the model cards); stage "final" (the default) retrains on every train class
# with that budget and tau. The glyphs test split is never used here.
# Usage: scripts/train-models.sh [glyphs-128|universal|all] [OUT_DIR] [final|select]
# THREADS=N in the environment sets --threads (the result does not depend on it).
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
out=${2:-models}
stage=${3:-final}
B=build
G=../shared/data/glyphs
syn=$(mktemp -d /tmp/hilander-syn.XXXXXX)
trap 'rm -rf "$syn"' EXIT
mkdir -p "$out"

# Synthetic training sets for the universal model: long-tailed vMF mixtures of several
# dimensions and spreads (64 and 512 are left out: the accuracy benchmark tests on them).
gen() { # gen NAME DIM SPREAD GROUP_SIM SEED
  "$B/bench/gen_vmf" --n 20000 --dim "$2" --clusters 1500 --spread "$3" --groups 150 \
    --group-sim "$4" --seed "$5" --out-features "$syn/$1.x.npy" --out-labels "$syn/$1.y.npy"
}

# Stage options: select = hold out classes and tune tau; final = all classes, tau from select.
stage_args() { # stage_args TAU_FROM_SELECT
  if [ "$stage" = select ]; then
    echo "--val 0.2 --eval-every 5 --patience 4"
  else
    echo "--tau $1"
  fi
  [ -z "${THREADS:-}" ] || echo "--threads $THREADS"
}

if [ "$which" = all ] || [ "$which" = glyphs-128 ]; then
  # shellcheck disable=SC2046
  "$B/cli/hilander" train --kind lander --data "$G/train.features.npy" \
    --labels "$G/train.labels.npy" --n-conv 2 --hidden 256 --epochs 60 --lr 0.003 \
    $(stage_args 0.7) --seed 1 --name glyphs-128 \
    --trained-on "glyphs train, all 3000 classes (tau chosen on 600 held-out train classes)" \
    --out "$out/glyphs-128.hlm"
fi
if [ "$which" = all ] || [ "$which" = universal ]; then
  gen s32 32 0.85 0.75 101
  gen s128 128 0.8 0.8 102
  gen s256 256 0.75 0.8 103
  # shellcheck disable=SC2046
  "$B/cli/hilander" train --kind universal \
    --data "$G/train.features.npy,$syn/s32.x.npy,$syn/s128.x.npy,$syn/s256.x.npy" \
    --labels "$G/train.labels.npy,$syn/s32.y.npy,$syn/s128.y.npy,$syn/s256.y.npy" \
    --n-conv 2 --hidden 128 --epochs 60 --lr 0.003 $(stage_args 0.5) --seed 1 --name universal \
    --trained-on "glyphs train (3000 classes) + synthetic vMF mixtures, D = 32, 128, 256" \
    --out "$out/universal.hlm"
fi
