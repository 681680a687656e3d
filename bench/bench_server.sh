#!/usr/bin/env bash
# hilanderd benchmarks, loopback only (127.0.0.1), every loop bounded:
#   1. ingestion of a 100k x 128 body, .npy (float32) and JSON (bench/gen_json_body.py, the
#      way a Python client writes it): MB/s from the request's first byte to the job queued
#      (the server's own request duration and curl's total), the CPU time of the HTTP
#      threads, and the RSS it costs; .npy both with every body kept queued (fresh memory)
#      and with each queued job canceled (its buffer goes back to the body pool);
#   2. GET /v1/jobs/{id} latency at 200 connections (wrk -t2 -c200 -d10s --latency);
#   3. end-to-end time of the 30,986-point glyphs test split (model none) through the API
#      (Prefer: wait, JSON result) against the CLI with the same engine threads.
# Usage: bench/bench_server.sh [BUILD_DIR]   (needs wrk and curl; make deps-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$root/build}
data=$root/bench/data
out=$root/bench/out
mkdir -p "$data" "$out/nomodels"
: >"$out/server.log" # request durations are read back from this run's log
glyphs=$root/../shared/data/glyphs/test.features.npy
big=$data/vmf100k.features.npy
json=$data/json_100000x128.json
[ -f "$json" ] || /usr/bin/python3 "$root/bench/gen_json_body.py" "$json" --n 100000 --d 128
[ -f "$big" ] || "$B/bench/gen_vmf" --n 100000 --dim 128 --clusters 5000 --seed 1 \
  --out-features "$big" --out-labels "$data/vmf100k.labels.npy"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap cleanup EXIT
start() { # start ARGS...: hilanderd on 127.0.0.1, any free port
  rm -f "$out/port"
  "$B/server/hilanderd" --listen 127.0.0.1 --port 0 --port-file "$out/port" \
    --model-dir "$out/nomodels" --default-model none "$@" 2>>"$out/server.log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$out/port" ] && break; sleep 0.1; done
  port=$(cat "$out/port")
  url=http://127.0.0.1:$port
}
rss_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
id_of() { sed -n 's/.*"id":"\([^"]*\)".*/\1/p'; }

echo "== machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"
mhd_ticks() { # CPU time (1/100 s) of hilanderd's HTTP threads so far
  local t=0 f u k
  for f in /proc/"$pid"/task/*; do
    grep -q MHD "$f/comm" 2>/dev/null || continue
    read -r u k < <(cut -d' ' -f14,15 "$f/stat")
    t=$((t + u + k))
  done
  echo "$t"
}
ingest() { # ingest FILE CONTENT_TYPE TAG MODE: five submissions
  # MODE queued: every body stays queued (each lands in fresh memory); MODE reused: each queued
  # job is canceled once admitted, so its buffer returns to the body pool for the next upload;
  # MODE hit: no blocker, the same request again after it ran once (cache hits: the whole
  # ingestion path with both cores idle, each buffer back in the pool after its request).
  local file=$1 ctype=$2 tag=$3 mode=$4 bytes ticks=0
  bytes=$(stat -c %s "$file")
  echo "== 1. ingestion ($mode): $bytes bytes of $ctype"
  start --workers 1 --engine-threads "$([ "$mode" = hit ] && echo 2 || echo 1)" \
    --queue-capacity 16 --max-body-bytes 2G --log-level info
  if [ "$mode" = hit ]; then # the work once, then the same request again: answered from the cache
    curl -s -o /dev/null -X POST -H 'Prefer: wait=300' -H "Content-Type: $ctype" \
      --data-binary @"$file" "$url/v1/cluster?k=10"
  else
    curl -s -o /dev/null -X POST -H 'Content-Type: application/x-npy' --data-binary @"$glyphs" \
      "$url/v1/cluster?k=12"
  fi
  sleep 0.5
  local base_rss
  base_rss=$(rss_kib VmRSS)
  for i in 1 2 3 4 5; do
    local q="?k=$((10 + i))" t ms t0 t1 id
    [ "$ctype" = application/json ] && q="" # params live in the body; queued jobs are no cache hits
    [ "$mode" = hit ] && q="?k=10"
    t0=$(mhd_ticks)
    t=$(curl -s -o "$out/ingest.json" -w '%{time_total}' -X POST -H "Content-Type: $ctype" \
      -H "X-Request-Id: $tag-$mode-$i" --data-binary @"$file" "$url/v1/cluster$q")
    t1=$(mhd_ticks)
    ticks=$((ticks + t1 - t0))
    id=$(id_of <"$out/ingest.json")
    [ "$mode" = reused ] && curl -s -o /dev/null -X DELETE "$url/v1/jobs/$id"
    sleep 0.2 # the request line is logged when MHD reports the request complete
    ms=$(grep "\"request_id\":\"$tag-$mode-$i\"" "$out/server.log" | grep '"msg":"request"' |
      sed -n 's/.*"duration_ms":\([0-9.]*\).*/\1/p')
    awk -v b="$bytes" -v ms="$ms" -v t="$t" -v rss="$(rss_kib VmRSS)" 'BEGIN {
      printf "ingest %.1f MB: server %.1f ms (%.0f MB/s), curl %.1f ms (%.0f MB/s), rss %d KiB\n",
        b / 1e6, ms, b / 1e6 / (ms / 1e3), t * 1e3, b / 1e6 / t, rss }'
  done
  awk -v b="$bytes" -v t="$ticks" 'BEGIN { printf "HTTP threads CPU: %.2f s for 5 bodies = %.0f MB/s of CPU\n", t / 100, (t > 0) ? 5 * b / 1e6 / (t / 100) : 0 }'
  curl -s "$url/metrics" | grep '^hilander_body_buffers_total' | tr '\n' ' '
  echo
  echo "rss before $base_rss KiB, after 5 submissions $(rss_kib VmRSS) KiB, peak $(rss_kib VmHWM) KiB"
  cleanup
}
# One worker busy on a blocker job, so the measured submissions only queue (no compute).
ingest "$big" application/x-npy npy queued
ingest "$big" application/x-npy npy reused
ingest "$big" application/x-npy npy hit
ingest "$json" application/json json queued

echo "== 2. GET /v1/jobs/{id}: wrk -t2 -c200 -d10s --latency"
start --http-threads 4 --log-level warn
job=$(curl -s -H 'Prefer: wait=10' -H 'Content-Type: application/json' \
  -d '{"embeddings": [[1,0],[0.9,0.1],[0,1]]}' "$url/v1/cluster" | id_of)
wrk -t2 -c200 -d10s --latency "$url/v1/jobs/$job" | tee "$out/wrk.txt"
cleanup

echo "== 3. end to end: glyphs test (30986 x 128), model none, 2 engine threads"
start --workers 1 --engine-threads 2 --log-level warn
for i in 1 2 3; do
  t=$(curl -s -o "$out/e2e.json" -w '%{time_total}' -H 'Prefer: wait=60' \
    -H 'Content-Type: application/x-npy' --data-binary @"$glyphs" "$url/v1/cluster")
  id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$out/e2e.json")
  echo "api run $i: ${t}s ($(stat -c %s "$out/e2e.json") bytes of JSON result)"
  curl -s -o /dev/null -X DELETE "$url/v1/jobs/$id" # so the next run is not a cache hit
done
cleanup
for i in 1 2 3; do
  /usr/bin/time -f "cli run $i: %es, peak RSS %M KiB" "$B/cli/hilander" cluster --in "$glyphs" \
    --model none --threads 2 --out "$out/cli_labels.npy" --quiet
done
