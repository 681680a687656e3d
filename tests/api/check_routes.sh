#!/usr/bin/env bash
# The routes hilanderd registers (--print-routes) must be exactly the operations of
# openapi.yaml (paths x methods), both ways. Usage: check_routes.sh HILANDERD OPENAPI_YAML
set -euo pipefail
bin=$1
spec=$2
tmp=$(mktemp -d /tmp/hltest.routes.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$bin" --print-routes | sort >"$tmp/server"
# openapi.yaml: a path is a two-space-indented key under `paths:` starting with '/', an
# operation a four-space-indented HTTP method key under it.
awk '
  /^paths:/ { inpaths = 1; next }
  /^[^ ]/ { inpaths = 0 }
  inpaths && /^  \/[^ ]*:[ ]*$/ { path = $1; sub(/:$/, "", path); next }
  inpaths && /^    (get|put|post|delete|options|head|patch|trace):/ {
    m = $1; sub(/:$/, "", m); print toupper(m) " " path
  }' "$spec" | sort >"$tmp/spec"
[ -s "$tmp/server" ] || { echo "check_routes: $bin printed no routes"; exit 1; }
[ -s "$tmp/spec" ] || { echo "check_routes: no operations found in $spec"; exit 1; }
if ! diff -u --label "hilanderd --print-routes" --label "$spec" "$tmp/server" "$tmp/spec"; then
  echo "check_routes: the server's routes and openapi.yaml differ (see the diff above)"
  exit 1
fi
echo "check_routes: $(wc -l <"$tmp/server") routes agree"
