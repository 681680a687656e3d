#!/usr/bin/env bash
# Incremental assignment benchmark (issue 8): glyphs `test` split into halves A and B by point
# (seeded), A clustered with the model, B assigned in batches of 1000; then one batch of 1000
# perturbed test points against a clustering of all 30,986 test points, in the engine and
# through the CLI (state file read, assign, state file written).
# Usage: bench/assign.sh [MODEL [THREADS [TAU_A]]]   (default models/universal.hlm, 2, the
# model's tau): TAU_A is the link threshold of A's clustering, which B's assignment then uses
# too (bench_assign --tau-a); the clustering of all points at once keeps the model's.
# BUILD selects the build directory (default: build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-bench}
model=${1:-models/universal.hlm}
threads=${2:-2}
tau_a=${3:-}
data=../shared/data/glyphs
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHL_BUILD_BENCH=ON -DHL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j 2 --target bench_assign hilander >/dev/null
tmp=$(mktemp -d /tmp/hl-assign-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD); model: $model; threads: $threads; tau of A: ${tau_a:-as the model}"
set -x
"$build/bench/bench_assign" --data "$data/test.features.npy" --labels "$data/test.labels.npy" \
  --model "$model" --threads "$threads" --seed 1 --batch 1000 --extra 1000 --sigma 0.02 \
  --extra-out "$tmp/extra.npy" ${tau_a:+--tau-a "$tau_a"}
"$build/cli/hilander" cluster --in "$data/test.features.npy" --model "$model" --out "$tmp/l.npy" \
  --save-state "$tmp/s.hls" --threads "$threads" --quiet
/usr/bin/time -f "CLI assign: %e s wall, %U s user, %S s system, %M KiB peak RSS" \
  "$build/cli/hilander" assign --state "$tmp/s.hls" --model "$model" --in "$tmp/extra.npy" \
  --out "$tmp/a.npy" --update-state "$tmp/s2.hls" --threads "$threads" --quiet
set +x
echo "state file: $(stat -c %s "$tmp/s.hls") bytes for 30,986 points"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
