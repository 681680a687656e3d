#!/usr/bin/env bash
# Memory of one hilanderd for sizing containers (deploy/k8s resources): VmRSS when idle, then
# the peak (VmHWM) while it runs one job, then two jobs at once, of the glyphs test set
# (30,986 x 128, .npy) with the shipped default model. Embedded store, loopback port picked
# free, two workers; every wait is bounded.
#
#   bench/load/rss.sh [--build DIR] [--model NAME] [--npy FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build model=universal npy=$root/../shared/data/glyphs/test.features.npy
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --npy) npy=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--model NAME] [--npy FILE]" >&2; exit 2 ;;
  esac
done
[ -x "$build/server/hilanderd" ] || { echo "rss: no $build/server/hilanderd (make build)" >&2; exit 2; }
[ -f "$npy" ] || { echo "rss: no $npy" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
"$build/server/hilanderd" --listen 127.0.0.1 --port "$port" --model-dir "$root/models" \
  --default-model "$model" --workers 2 --engine-threads 1 --drain-seconds 0 --log-level warn &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  curl -sf --noproxy '*' -o /dev/null --max-time 1 "$url/readyz" && break
  sleep 0.1
done
curl -sf --noproxy '*' -o /dev/null --max-time 1 "$url/readyz" || { echo "rss: no answer" >&2; exit 1; }
kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
submit() { # submit TAU: one job, distinct parameters so never a cache hit; waits for its end
  local id st
  id=$(curl -sf --noproxy '*' --max-time 120 -H 'Content-Type: application/x-npy' \
    --data-binary "@$npy" "$url/v1/cluster?tau=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for _ in $(seq 1200); do # at most 300 s
    st=$(curl -sf --noproxy '*' --max-time 5 "$url/v1/jobs/$id" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    case "$st" in succeeded) return 0 ;; failed | canceled) echo "rss: job $id $st" >&2; return 1 ;; esac
    sleep 0.25
  done
  echo "rss: job $id did not finish in 300 s" >&2
  return 1
}
sleep 1
idle=$(kib VmRSS)
echo "idle: VmRSS $idle KiB (model $model)"
t0=$(date +%s.%N)
submit 0.7001
one=$(kib VmHWM)
echo "one job: VmHWM $one KiB ($(python3 -c "print('%.1f' % ($(date +%s.%N) - $t0))") s)"
t0=$(date +%s.%N)
submit 0.7002 &
a=$!
submit 0.7003 &
b=$!
wait "$a"
wait "$b"
two=$(kib VmHWM)
echo "two jobs at once: VmHWM $two KiB ($(python3 -c "print('%.1f' % ($(date +%s.%N) - $t0))") s)"
echo "rss: idle $((idle / 1024)) MiB, one job $((one / 1024)) MiB, two jobs $((two / 1024)) MiB"
