#!/usr/bin/env bash
# Builds bench_json (Release, in its own build directory so that it never reconfigures a
# developer's build/), writes the benchmark body once (bench/data/, reused) and runs it.
# Usage: bench/json.sh [N [D [REPS]]]   (default 100000 128 5)
# BUILD selects the build directory (default: build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-bench}
n=${1:-100000}
d=${2:-128}
reps=${3:-5}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHL_BUILD_BENCH=ON -DHL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j 2 --target bench_json >/dev/null
mkdir -p bench/data
body=bench/data/json_${n}x${d}.json
[ -f "$body" ] && [ -f "$body.f32" ] || /usr/bin/python3 bench/gen_json_body.py "$body" --n "$n" --d "$d"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$build/bench/bench_json" "$body" "$reps"
