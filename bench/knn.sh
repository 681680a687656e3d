#!/usr/bin/env bash
# Builds bench_knn (Release, core only, in its own build directory so that it never
# reconfigures a developer's build/) and runs the hilander-vs-FAISS exact kNN benchmark.
# Usage: bench/knn.sh [bench/knn.py options], e.g. bench/knn.sh --n 20000 --reps 1
# BUILD selects the build directory (default: build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHL_BUILD_BENCH=ON -DHL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j 2 --target bench_knn >/dev/null
exec /usr/bin/python3 bench/knn.py --build "$build" "$@"
