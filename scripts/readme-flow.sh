#!/usr/bin/env bash
# Replays the README's curl lines against a running hilanderd (or nginx in front of replicas)
# and checks every status and body. Used by `make image-test` and deploy/README.md.
#
#   scripts/readme-flow.sh BASE_URL [FEATURES.npy]
#
# BASE_URL must be a loopback URL (http://127.0.0.1:PORT or http://[::1]:PORT). FEATURES.npy
# defaults to the glyphs test split beside the project (30,986 x 128 float32). Every wait is
# bounded; prints one line per check and "N passed, N failed" at the end; exit 1 on a failure.
set -uo pipefail
base=${1:?usage: readme-flow.sh BASE_URL [FEATURES.npy]}
root=$(cd "$(dirname "$0")/.." && pwd)
npy=${2:-$root/../shared/data/glyphs/test.features.npy}
case "$base" in
  http://127.0.0.1:* | http://\[::1\]:*) ;;
  *) echo "readme-flow: BASE_URL must be a loopback URL, got $base" >&2; exit 2 ;;
esac
[ -r "$npy" ] || { echo "readme-flow: cannot read $npy" >&2; exit 2; }
command -v python3 >/dev/null || { echo "readme-flow: python3 is needed for JSON checks" >&2; exit 2; }

tmp=$(mktemp -d /tmp/hl-readme-flow.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# req NAME CURL_ARGS...: runs curl, leaves the status in $code, headers in $tmp/NAME.h and the
# body in $tmp/NAME.b.
req() {
  local name=$1
  shift
  code=$(curl -sS --noproxy '*' --max-time 120 -o "$tmp/$name.b" -D "$tmp/$name.h" \
           -w '%{http_code}' "$@" 2>"$tmp/$name.err") || code=000
}
expect() { # expect NAME WANT_STATUS...
  local name=$1 w
  shift
  for w in "$@"; do
    if [ "$code" = "$w" ]; then ok "$name: $code"; return 0; fi
  done
  bad "$name: status $code, want $*: $(head -c 300 "$tmp/$name.b" 2>/dev/null) $(cat "$tmp/$name.err")"
  return 1
}
# js FILE EXPR: evaluates a Python expression over the parsed JSON `j`; prints the result.
js() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null; }
check() { # check NAME FILE PY_BOOL_EXPR
  if [ "$(js "$2" "$3")" = True ]; then ok "$1"; else bad "$1: $3 is not true for $(head -c 300 "$2")"; fi
}
hdr() { tr -d '\r' <"$tmp/$1.h" | sed -n "s/^$2: *//Ip" | tail -1; }
rows=$(python3 -c 'import sys,ast; h=open(sys.argv[1],"rb").read(256); s=h.index(b"{"); print(ast.literal_eval(h[s:h.index(b"}")+1].decode())["shape"][0])' "$npy")

# 1. Submit the .npy: 202, Location: /v1/jobs/<id>
req submit -X POST -H 'Content-Type: application/x-npy' --data-binary "@$npy" "$base/v1/cluster"
expect submit 202
id=$(js "$tmp/submit.b" 'j["id"]')
loc=$(hdr submit Location)
[ -n "$id" ] && [ "$loc" = "/v1/jobs/$id" ] && ok "Location: $loc" || bad "Location '$loc' for id '$id'"
[ -n "$(hdr submit Retry-After)" ] && ok "Retry-After present" || bad "no Retry-After"

# 2. Status and progress
req status "$base/v1/jobs/$id"
expect status 200
check "job object" "$tmp/status.b" "j['id']=='$id' and j['status'] in ('queued','running','succeeded') and j['n']==$rows and 'stage' in j['progress']"

# Poll until it ends (bounded: 180 s)
st=""
for _ in $(seq 900); do
  req poll "$base/v1/jobs/$id"
  st=$(js "$tmp/poll.b" 'j["status"]')
  case "$st" in succeeded | failed | canceled) break ;; esac
  sleep 0.2
done
[ "$st" = succeeded ] && ok "job $id succeeded" || bad "job $id ended '$st'"

# 3. Result JSON, paged
req result "$base/v1/jobs/$id/result?limit=1000"
expect result 200
check "result page" "$tmp/result.b" "j['id']=='$id' and j['n']==$rows and len(j['labels'])==1000 and j['n_clusters']>=1 and len(j['levels'])>=1 and all(len(l['labels'])==1000 for l in j['levels'])"
case "$(hdr result Link)" in *'rel="next"'*) ok "Link rel=next" ;; *) bad "no Link rel=next header" ;; esac

# 4. Labels and levels as .npy
code=$(curl -sS --noproxy '*' --max-time 60 -o "$tmp/labels.npy" -w '%{http_code}' "$base/v1/jobs/$id/result?format=npy")
expect labels.npy 200
python3 - "$tmp/labels.npy" "$rows" <<'EOF' && ok "labels.npy: int32 ($rows,)" || bad "labels.npy is not int32 ($rows,)"
import ast, struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:6] == b"\x93NUMPY"
hl = struct.unpack("<H", b[8:10])[0] if b[6] == 1 else struct.unpack("<I", b[8:12])[0]
off = 10 if b[6] == 1 else 12
h = ast.literal_eval(b[off:off + hl].decode())
n = int(sys.argv[2])
assert h["descr"] == "<i4" and h["shape"] == (n,) and len(b) == off + hl + 4 * n
EOF
code=$(curl -sS --noproxy '*' --max-time 60 -o "$tmp/levels.npy" -w '%{http_code}' "$base/v1/jobs/$id/result?format=npy&levels=all")
expect levels.npy 200
python3 - "$tmp/levels.npy" "$rows" <<'EOF' && ok "levels.npy: int32 (L, $rows)" || bad "levels.npy is not int32 (L, $rows)"
import ast, struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:6] == b"\x93NUMPY"
hl = struct.unpack("<H", b[8:10])[0]
h = ast.literal_eval(b[10:10 + hl].decode())
n = int(sys.argv[2])
assert h["descr"] == "<i4" and len(h["shape"]) == 2 and h["shape"][1] == n and h["shape"][0] >= 1
EOF

# 5. Small job with Prefer: wait=30: 200 with the result
req wait -H 'Prefer: wait=30' -H 'Content-Type: application/json' \
  -d '{"embeddings": [[1,0],[0.9,0.1],[0,1]]}' "$base/v1/cluster"
expect wait 200
check "wait result" "$tmp/wait.b" "j['n']==3 and len(j['labels'])==3 and j['labels'][0]==j['labels'][1]"
[ "$(hdr wait Preference-Applied)" = "wait=30" ] && ok "Preference-Applied: wait=30" || bad "no Preference-Applied"

# 6. The same .npy again is answered from the cache
req again -X POST -H 'Content-Type: application/x-npy' --data-binary "@$npy" "$base/v1/cluster"
expect again 200 202
id2=$(js "$tmp/again.b" 'j["id"]')
for _ in $(seq 150); do
  req again2 "$base/v1/jobs/$id2"
  [ "$(js "$tmp/again2.b" 'j["status"]')" = succeeded ] && break
  sleep 0.2
done
check "cached repeat" "$tmp/again2.b" "j['status']=='succeeded' and j['cached'] is True"

# 7. Cancel a running job (other parameters, so not a cache hit), then delete finished ones
tau=0.7$(printf %04d $((RANDOM % 10000))) # parameters no earlier run used: not a cache hit
req cjob -X POST -H 'Content-Type: application/x-npy' --data-binary "@$npy" "$base/v1/cluster?k=12&tau=$tau"
expect cancel-submit 202
cid=$(js "$tmp/cjob.b" 'j["id"]')
# Behind a load balancer the DELETE may reach a replica that does not run the job: with Redis
# any replica cancels it through the store, so one DELETE must do.
req cancel -X DELETE "$base/v1/jobs/$cid"
expect cancel 200 202
for _ in $(seq 300); do
  req cpoll "$base/v1/jobs/$cid"
  case "$(js "$tmp/cpoll.b" 'j["status"]')" in canceled | succeeded | failed) break ;; esac
  sleep 0.2
done
check "canceled job" "$tmp/cpoll.b" "j['status']=='canceled'"
req del -X DELETE "$base/v1/jobs/$id2"
expect delete-finished 204
req gone "$base/v1/jobs/$id2"
expect deleted-is-404 404
check "404 problem" "$tmp/gone.b" "j['type']=='/problems/job-not-found' and j['status']==404"

# 8. Models, readiness, metrics
req models "$base/v1/models"
expect models 200
check "models list" "$tmp/models.b" "any(m['name']=='none' for m in (j['models'] if isinstance(j, dict) else j))"
req ready "$base/readyz"
expect readyz 200
req metrics "$base/metrics"
expect metrics 200
for m in hilander_build_info hilander_jobs_total hilander_http_requests_total; do
  grep -q "^$m" "$tmp/metrics.b" && ok "metric $m" || bad "metric $m missing"
done

echo "readme-flow: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
