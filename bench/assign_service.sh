#!/usr/bin/env bash
# Incremental assignment through hilanderd (issue 8), loopback only, every loop bounded:
# glyphs `test` (30,986 x 128) is clustered through POST /v1/cluster (its state is stored as
# version 1), then BATCHES batches of 1,000 points (copies of random test points plus Gaussian
# noise, sigma 0.02 per coordinate, seeded) are assigned one after the other through
# POST /v1/clusterings/{id}/assign (.npy bodies, Prefer: wait=60). Each assign reads the
# state's head (version and tag), reuses the replica's decoded state when it matches (else
# rebuilds it from base + deltas), runs the engine, writes the next version as a delta (a new
# base, about 48 MB, once the deltas pass half of it) and stores its result, so the figures
# include the store's cost. Run with the embedded store and with Redis (a private
# redis-server on a free loopback port).
# Usage: bench/assign_service.sh [MODEL_NAME [ENGINE_THREADS [BATCHES]]]
#   (default universal, 2, 5; BUILD selects the build directory, default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-universal}
threads=${2:-2}
batches=${3:-5}
B=$root/${BUILD:-build}
glyphs=$root/../shared/data/glyphs/test.features.npy
tmp=$(mktemp -d /tmp/hl-assign-service.XXXXXX)
pid=
rpid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# The batches: .npy v1, float32 (1000, 128), from the test features (header parsed here).
/usr/bin/python3 - "$glyphs" "$tmp" "$batches" <<'EOF'
import ast, random, struct, sys
src, out, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = open(src, "rb").read()
hl = struct.unpack("<H", b[8:10])[0]
hdr = ast.literal_eval(b[10:10 + hl].decode("latin1"))
n, d = hdr["shape"]
assert hdr["descr"] == "<f4" and not hdr["fortran_order"]
data = b[10 + hl:]
rng = random.Random(1)
for k in range(batches):
    rows = []
    for _ in range(1000):
        i = rng.randrange(n)
        v = struct.unpack("<%df" % d, data[i * d * 4:(i + 1) * d * 4])
        rows.append(struct.pack("<%df" % d, *[x + rng.gauss(0, 0.02) for x in v]))
    h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, %d), }" % d
    h += " " * (63 - (10 + len(h)) % 64) + "\n"
    with open("%s/batch%d.npy" % (out, k), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1"))
        f.write(b"".join(rows))
EOF

start() { # start ARGS...: hilanderd on 127.0.0.1, any free port
  rm -f "$tmp/port"
  "$B/server/hilanderd" --listen 127.0.0.1 --port 0 --port-file "$tmp/port" \
    --model-dir "$root/models" --default-model "$model" --workers 1 \
    --engine-threads "$threads" --drain-seconds 0 "$@" 2>>"$tmp/server.log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  url=http://127.0.0.1:$(cat "$tmp/port")
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
field() { sed -n "s/.*\"$1\":\\([0-9.]*\\).*/\\1/p"; }

run() { # run TAG: cluster, then the batches
  local tag=$1 id st t total=0
  id=$(curl -s -X POST -H 'Content-Type: application/x-npy' --data-binary @"$glyphs" \
    "$url/v1/cluster?model=$model&tau=0.5&k=10" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  for _ in $(seq 600); do
    st=$(curl -s "$url/v1/jobs/$id" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    [ "$st" = succeeded ] || [ "$st" = failed ] && break
    sleep 1
  done
  echo "$tag: clustering $id $st; state $(curl -s "$url/v1/jobs/$id" |
    sed -n 's/.*"state":\({[^}]*}\).*/\1/p')"
  for k in $(seq 0 $((batches - 1))); do
    t=$(curl -s -o "$tmp/r.json" -w '%{http_code} %{time_total}' -X POST \
      -H 'Prefer: wait=60' -H 'Content-Type: application/x-npy' \
      --data-binary @"$tmp/batch$k.npy" "$url/v1/clusterings/$id/assign")
    echo "$tag: batch $k: HTTP ${t% *}, ${t#* } s, state_version $(field state_version <"$tmp/r.json"), attached $(field n_attached <"$tmp/r.json"), new clusters $(field n_new_clusters <"$tmp/r.json")"
    total=$(echo "$total + ${t#* }" | bc -l)
  done
  printf '%s: %d batches of 1000 in %.2f s: %.0f points/s\n' "$tag" "$batches" "$total" \
    "$(echo "$batches * 1000 / $total" | bc -l)"
}

echo "machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git -C "$root" rev-parse --short HEAD); model: $model; engine threads: $threads"
start
run memory
stop
rport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$tmp" >"$tmp/redis.log" 2>&1 &
rpid=$!
for _ in $(seq 50); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
start --redis "redis://127.0.0.1:$rport/0"
run redis
stop
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
