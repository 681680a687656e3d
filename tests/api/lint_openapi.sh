#!/usr/bin/env bash
# Lints openapi.yaml with @redocly/cli, installed into tools/node_modules from the committed
# tools/package.json + package-lock.json (npm ci). Fails - never skips - when node or npm is
# missing. Usage: lint_openapi.sh PROJECT_DIR
set -euo pipefail
root=$1
command -v node >/dev/null || { echo "lint_openapi: node is not installed (scripts/deps.sh test)"; exit 1; }
command -v npm >/dev/null || { echo "lint_openapi: npm is not installed (scripts/deps.sh test)"; exit 1; }
redocly=$root/tools/node_modules/.bin/redocly
if [ ! -x "$redocly" ]; then
  echo "lint_openapi: installing @redocly/cli into tools/node_modules (npm ci)"
  (cd "$root/tools" && npm ci --no-audit --no-fund --loglevel=error)
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
"$redocly" lint --config "$root/tools/redocly.yaml" "$root/openapi.yaml"
