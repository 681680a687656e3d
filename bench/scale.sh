#!/usr/bin/env bash
# Scaling benchmark (issue 6): for each N, synthetic 128-d vMF data (bench/gen_vmf), then
#   1. bench_scale: the IVF self kNN (time, CPU time, arena, peak RSS), the exact search of a
#      query sample (recall@10 of the IVF on it, full exact time estimated as n / Q times the
#      sample), and for N <= 100k the full exact self search;
#   2. bench/scale_faiss.py: FAISS IndexFlatIP and IndexIVFFlat on the same data and the same
#      sample, with our/FAISS ratios;
#   3. hilander cluster --stats (auto kNN, model models/universal.hlm): per level kNN method and
#      time, GNN and decode time, peak RSS, Fp/Fb/NMI against the generator's labels;
#   4. for the largest N, the F-score reference: the same pipeline with exact kNN on the
#      subset of its first 100k rows (the generator shuffles rows, so a random subset).
# Usage: bench/scale.sh [N...] (default 10000 100000 1000000). THREADS (default 2), BUILD
# (default build, configured with HL_BUILD_BENCH=ON), HNSW=M adds FAISS IndexHNSWFlat with
# that M for N <= 100k (bench/RESULTS.md ran it separately:
# scale_faiss.py --hnsw 16 --no-ivf). Output: bench/out/scale/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}
T=${THREADS:-2}
NS=${*:-10000 100000 1000000}
out=bench/out/scale
mkdir -p bench/data "$out"
py=/usr/bin/python3
model=models/universal.hlm

info() {
  echo "date=$(date -u +%FT%TZ) host=$(hostname) cpus=$(nproc) threads=$T"
  echo "cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\""
  echo "blas=\"$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null |
    sed -n 's/^Value: //p')\" OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}" \
    "OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
  echo "uptime=\"$(uptime)\""
}

gen() { # gen N PREFIX
  [ -f "$2.x.npy" ] && [ -f "$2.y.npy" ] && return 0
  "$B/bench/gen_vmf" --n "$1" --dim 128 --clusters $(($1 / 15)) --groups $(($1 / 150)) \
    --min-size 8 --spread 0.84 --group-sim 0.79 --seed 1 --out-features "$2.x.npy" \
    --out-labels "$2.y.npy"
}

cluster() { # cluster IN LABELS [options]
  local in=$1 lab=$2
  shift 2
  echo "uptime=\"$(uptime)\""
  echo "command=hilander cluster --in $in --out $out/labels.npy --labels $lab --model $model" \
    "--threads $T --stats --quiet $*"
  "$B/cli/hilander" cluster --in "$in" --out "$out/labels.npy" --labels "$lab" --model "$model" \
    --threads "$T" --stats --quiet "$@" 2>&1
  echo
}

info | tee "$out/info.log"
last=
for n in $NS; do
  last=$n
  d=bench/data/scale_$n
  gen "$n" "$d"
  q=$((n < 10000 ? n : 10000))
  log=$out/n$n.log
  {
    info
    echo "## bench_scale ivf, exact sample of $q queries"
    "$B/bench/bench_scale" --in "$d.x.npy" --threads "$T" --method ivf --queries "$q" \
      --sample-out "$out/gt_$n.npy" | tee "$out/ours_$n.txt"
    ivf_s=$(sed -n 's/^step=self .* seconds=\([0-9.]*\) .*/\1/p' "$out/ours_$n.txt")
    rec=$(sed -n 's/^step=exact_sample .* recall=\([0-9.]*\).*/\1/p' "$out/ours_$n.txt")
    ex_s=$(sed -n 's/^step=exact_sample .* full_estimate_seconds=\([0-9.]*\) .*/\1/p' \
      "$out/ours_$n.txt")
    if [ "$n" -le 100000 ]; then
      echo "## bench_scale exact (full self search)"
      "$B/bench/bench_scale" --in "$d.x.npy" --threads "$T" --method exact --no-exact |
        tee "$out/ours_exact_$n.txt"
      ex_s=$(sed -n 's/^step=self .* seconds=\([0-9.]*\) .*/\1/p' "$out/ours_exact_$n.txt")
    fi
    echo "ours ivf_seconds=$ivf_s recall=$rec exact_seconds=$ex_s" \
      "exact_over_ivf=$($py -c "print(round($ex_s / $ivf_s, 1))")"
    echo "## FAISS"
    $py bench/scale_faiss.py --in "$d.x.npy" --gt "$out/gt_$n.npy" --threads "$T" \
      --flat-queries $((q < 2000 ? q : 2000)) --ours-ivf-seconds "$ivf_s" --ours-recall "$rec" \
      --ours-exact-seconds "$ex_s" $([ -n "${HNSW:-}" ] && [ "$n" -le 100000 ] && echo --hnsw "$HNSW")
    echo "## hilander cluster (auto kNN)"
    cluster "$d.x.npy" "$d.y.npy"
  } 2>&1 | tee "$log"
done
if [ -n "$last" ] && [ "$last" -gt 100000 ]; then
  d=bench/data/scale_$last
  $py -c "import numpy as np, sys
x = np.load('$d.x.npy', mmap_mode='r'); y = np.load('$d.y.npy')
np.save('$d.sub100k.x.npy', np.ascontiguousarray(x[:100000])); np.save('$d.sub100k.y.npy', y[:100000])"
  {
    echo "## F reference: exact kNN on the first 100k rows of N = $last"
    cluster "$d.sub100k.x.npy" "$d.sub100k.y.npy" --knn exact
    echo "## the same subset with the IVF forced"
    cluster "$d.sub100k.x.npy" "$d.sub100k.y.npy" --knn ivf
  } 2>&1 | tee "$out/fref_$last.log"
fi
