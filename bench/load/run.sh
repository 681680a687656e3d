#!/usr/bin/env bash
# Bounded load test: two hilanderd replicas sharing a redis-server, behind nginx configured
# with deploy/nginx.conf, all as plain processes on loopback ports picked free at start; wrk
# drives a mix of GET /v1/jobs/{id} and small POST /v1/cluster with Prefer: wait
# (bench/load/mix.lua) through nginx, then everything is stopped.
#
#   bench/load/run.sh [--duration S] [--connections N] [--post-percent P] [--build DIR]
#                     [--url http://127.0.0.1:PORT]
#
# --url skips the start-up and loads a stack that already runs (for example the compose stack
# of deploy/compose.host.yaml at http://127.0.0.1:18080). Needs wrk, nginx, redis-server and
# curl (make deps-bench installs them; nginx-light is enough). Prints wrk's report, the status
# counts (429s apart: documented back-pressure) and the replicas' RSS; exits 1 when any
# answer other than 2xx/3xx/429 came back or a socket error happened.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
duration=60 conns=16 post=20 build=$root/build url=
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --post-percent) post=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --url) url=$2; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--connections N] [--post-percent P] [--build DIR] [--url URL]" >&2; exit 2 ;;
  esac
done
[ "$duration" -le 600 ] || { echo "load: --duration is capped at 600 s" >&2; exit 2; }
case "${url:-http://127.0.0.1:0}" in http://127.0.0.1:* | http://\[::1\]:*) ;; *) echo "load: loopback URLs only" >&2; exit 2 ;; esac
for c in wrk curl; do command -v $c >/dev/null || { echo "load: $c is missing (make deps-bench)" >&2; exit 2; }; done

tmp=$(mktemp -d /tmp/hl-load.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${HL_KEEP:-}" ] && echo "load: kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # wait_http URL: bounded (20 s)
  for _ in $(seq 200); do curl -sf --noproxy '*' -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
  echo "load: $1 did not answer" >&2; return 1
}

if [ -z "$url" ]; then
  for c in nginx redis-server; do command -v $c >/dev/null || { echo "load: $c is missing (make deps-bench)" >&2; exit 2; }; done
  [ -x "$build/server/hilanderd" ] || { echo "load: no $build/server/hilanderd (make build)" >&2; exit 2; }
  rport=$(free_port) p1=$(free_port) p2=$(free_port) nport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    --logfile "$tmp/redis.log" &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  mkdir -p "$tmp/models"
  rpids=()
  for p in "$p1" "$p2"; do
    "$build/server/hilanderd" --listen 127.0.0.1 --port "$p" --redis "redis://127.0.0.1:$rport/0" \
      --model-dir "$tmp/models" --default-model none --workers 1 --engine-threads 1 \
      --log-level warn 2>>"$tmp/hilanderd-$p.log" &
    pids+=($!) rpids+=($!)
  done
  # nginx with the deploy configuration; the per-network includes point at these ports.
  mkdir -p "$tmp/conf/hilander" "$tmp/prefix/tmp"
  cp "$root/deploy/nginx.conf" "$tmp/conf/nginx.conf"
  cat >"$tmp/conf/hilander/upstream.conf" <<EOF
upstream hilanderd {
    least_conn;
    server 127.0.0.1:$p1 max_fails=1 fail_timeout=5s;
    server 127.0.0.1:$p2 max_fails=1 fail_timeout=5s;
    keepalive 32;
    keepalive_timeout 30s;
}
EOF
  echo "listen 127.0.0.1:$nport;" >"$tmp/conf/hilander/listen.conf"
  nginx -e stderr -p "$tmp/prefix/" -c "$tmp/conf/nginx.conf" -g 'daemon off;' \
    >"$tmp/nginx.access.log" 2>"$tmp/nginx.error.log" &
  pids+=($!)
  url=http://127.0.0.1:$nport
  wait_http "http://127.0.0.1:$p1/readyz"
  wait_http "http://127.0.0.1:$p2/readyz"
  wait_http "$url/readyz"
  echo "== stack: nginx $url -> hilanderd 127.0.0.1:$p1, 127.0.0.1:$p2 (1 worker each) -> redis 127.0.0.1:$rport"
else
  wait_http "$url/readyz"
  echo "== stack: $url (already running)"
fi

# Finished jobs for the GETs: 32 small clusterings through nginx (so on both replicas).
for i in $(seq 32); do
  id=$(curl -sf --noproxy '*' --max-time 30 -H 'Prefer: wait=20' -H 'Content-Type: application/json' \
    -d "{\"embeddings\": [[1,0,$i],[0.9,0.1,$i],[0,1,$i],[0.1,0.9,$i]]}" "$url/v1/cluster" |
    sed -n 's/^{"id":"\([^"]*\)".*/\1/p') || true
  [ -n "$id" ] && echo "$id" >>"$tmp/ids"
done
[ "$(wc -l <"$tmp/ids")" -ge 16 ] || { echo "load: could not create the jobs to GET" >&2; exit 1; }

echo "== machine: $(nproc) cores, $(uptime | sed 's/.*load/load/'), $(date -u +%FT%TZ)"
echo "== wrk -t2 -c$conns -d${duration}s --latency -s bench/load/mix.lua ($post% POST with Prefer: wait=10)"
HL_IDS=$tmp/ids HL_POST_PERCENT=$post wrk -t2 -c"$conns" -d"${duration}s" --timeout 30s --latency \
  -s "$root/bench/load/mix.lua" "$url" | tee "$tmp/wrk.out"
echo "== after: load $(uptime | sed 's/.*average: //')"
if [ -n "${rpids[*]:-}" ]; then
  for p in "${rpids[@]}"; do
    echo "hilanderd pid $p: $(awk '/VmRSS|VmHWM/ {printf "%s %d KiB  ", $1, $2}' "/proc/$p/status")"
  done
  echo "nginx: $(grep -c . "$tmp/nginx.access.log") requests logged; upstreams: $(grep -o '"upstream":"[^"]*"' "$tmp/nginx.access.log" | sort | uniq -c | sort -rn | head -3 | tr -s ' ' | tr '\n' ' ')"
  if grep -q '\[error\]' "$tmp/nginx.error.log"; then
    echo "nginx errors:"; grep '\[error\]' "$tmp/nginx.error.log" | head -5
  fi
fi
res=$(grep '^HL_RESULT ' "$tmp/wrk.out" | sed 's/^HL_RESULT //')
[ -n "$res" ] || { echo "load: no result line from mix.lua" >&2; exit 1; }
bad=$(echo "$res" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["errors_non_429"] + r["socket_errors"])')
echo "load: $(echo "$res" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%d requests, %.0f req/s, p50 %.1f ms, p99 %.1f ms, 429s %d, other errors %d, socket errors %d" % (r["requests"], r["rps"], r["p50_ms"], r["p99_ms"], r["status_429"], r["errors_non_429"], r["socket_errors"]))')"
[ "$bad" -eq 0 ]
