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
# dimensions, spreads and class similarities (64 and 512 are left out: the accuracy benchmark
# tests on them).
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
  gen s96 96 0.75 0.85 104
  gen s128 128 0.8 0.8 102
  gen s256 256 0.7 0.9 103
  gen s384 384 0.65 0.85 105
  sets="s32 s96 s128 s256 s384"
  # select: 60 epochs with early stopping; final: the best epoch select found (30).
  u_epochs=30
  [ "$stage" = select ] && u_epochs=60
  xs=$G/train.features.npy ys=$G/train.labels.npy
  for s in $sets; do xs="$xs,$syn/$s.x.npy" ys="$ys,$syn/$s.y.npy"; done
  # shellcheck disable=SC2046
  "$B/cli/hilander" train --kind universal --data "$xs" --labels "$ys" \
    --n-conv 2 --hidden 128 --epochs "$u_epochs" --lr 0.003 $(stage_args 0.5) --seed 1 \
    --name universal \
    --trained-on "glyphs train (3000 classes) + synthetic vMF mixtures, D = 32, 96, 128, 256, 384" \
    --out "$out/universal.hlm"
fi
