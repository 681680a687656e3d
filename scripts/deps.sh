#!/usr/bin/env bash
# Installs the Debian packages hilander needs, if any are missing (idempotent).
# As root it runs apt-get non-interactively; otherwise it prints the command and fails.
# Usage: scripts/deps.sh [build|test|bench]   (each set includes the previous ones)
set -euo pipefail
want=${1:-build}
pkgs=(build-essential cmake pkg-config libopenblas-dev libopenblas0-pthread libjansson-dev
      libmicrohttpd-dev libuv1-dev libhiredis-dev libxxhash-dev curl ca-certificates)
if [ "$want" = test ] || [ "$want" = bench ]; then
  pkgs+=(check redis-server libcurl4-openssl-dev clang libclang-rt-14-dev clang-format)
  # node and npm run the OpenAPI lint (tools/package.json); a node installed another way
  # (with its own npm) is kept as it is.
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
if [ "$want" = bench ]; then
  # nginx-light: bench/load/run.sh puts deploy/nginx.conf in front of two replicas (Debian
  # may start its default site on :80 where services start on install; the script does not
  # use it).
  pkgs+=(python3-numpy python3-sklearn python3-faiss python3-torch wrk valgrind time nginx-light)
fi
missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
