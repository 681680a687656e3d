#!/usr/bin/env bash
# `make image-test`: runs the image with host networking on a free loopback port, checks the
# container (non-root, healthy, no compiler or package lists), replays the README's curl lines
# (scripts/readme-flow.sh), stops it with SIGTERM (exit 0) and removes the container.
#
#   scripts/image-test.sh [IMAGE]        (default hilander:dev, built by `make image`)
#
# Not part of `make test`: it needs a running Docker daemon. Every wait is bounded.
set -uo pipefail
image=${1:-hilander:dev}
root=$(cd "$(dirname "$0")/.." && pwd)
docker image inspect "$image" >/dev/null 2>&1 || { echo "image-test: no image $image (run make image)" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=hl-image-test-$$
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "image-test: $image on 127.0.0.1:$port ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}'))"
docker run -d --name "$name" --network host \
  -e HILANDER_LISTEN=127.0.0.1 -e HILANDER_PORT="$port" -e HILANDER_WORKERS=2 \
  -e HILANDER_DRAIN_SECONDS=1 "$image" >/dev/null || { echo "image-test: docker run failed" >&2; exit 1; }

up=0
for _ in $(seq 150); do
  if curl -sf --noproxy '*' --max-time 2 -o /dev/null "http://127.0.0.1:$port/livez"; then up=1; break; fi
  [ "$(docker inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
  sleep 0.2
done
if [ "$up" != 1 ]; then
  bad "the container did not answer /livez within 30 s"
  docker logs "$name" 2>&1 | tail -20
  echo "image-test: $passed passed, $failed failed"
  exit 1
fi
ok "/livez answers on 127.0.0.1:$port"

uid=$(docker exec "$name" id -u)
[ -n "$uid" ] && [ "$uid" != 0 ] && ok "runs as uid $uid" || bad "runs as uid '$uid'"
docker exec "$name" hilanderd --healthcheck && ok "hilanderd --healthcheck exits 0" || bad "--healthcheck failed"
# Nothing to build with and no package lists in the runtime image.
if docker exec "$name" sh -c 'for c in cc gcc clang make cmake curl; do command -v $c && exit 1; done; [ -z "$(ls /var/lib/apt/lists)" ] && [ -z "$(ls /usr/include 2>/dev/null)" ]'; then
  ok "no compilers, headers or package lists"
else
  bad "the runtime image carries build tools, headers or package lists"
fi
health=""
for _ in $(seq 40); do # the first check runs 10 s after the start
  health=$(docker inspect --format '{{.State.Health.Status}}' "$name")
  [ "$health" = healthy ] && break
  sleep 1
done
[ "$health" = healthy ] && ok "HEALTHCHECK: healthy" || bad "HEALTHCHECK: '$health'"

# The shipped models: every models/*.hlm of the tree loads in the container, and the default
# is the one `make image` chose (universal when it ships).
want=$(cd "$root/models" 2>/dev/null && ls -- *.hlm 2>/dev/null | sed 's/\.hlm$//' | sort | tr '\n' ' ' | sed 's/ $//')
want_default=none
[ -f "$root/models/universal.hlm" ] && want_default=universal
if curl -sf --noproxy '*' --max-time 10 "http://127.0.0.1:$port/v1/models" |
  python3 -c 'import json, sys
j = json.load(sys.stdin)
names = {m["name"] for m in j["models"]}
want = set(sys.argv[1].split())
sys.exit(0 if want <= names and j["default"] == sys.argv[2] else 1)' "$want" "$want_default"; then
  ok "models shipped and loaded: ${want:-(none)}; default $want_default"
else
  bad "models: wanted ${want:-(none)} with default $want_default"
fi

if "$root/scripts/readme-flow.sh" "http://127.0.0.1:$port"; then ok "README curl flow"; else bad "README curl flow"; fi

docker stop -t 30 "$name" >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] && ok "SIGTERM: drained and exited 0" || bad "exit code $code after docker stop"
docker logs "$name" 2>&1 | grep -q '"msg":"stopped"' && ok "logged its stop" || bad "no stop line in the log"

echo "image-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
