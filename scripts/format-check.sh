#!/usr/bin/env bash
# Fails (and lists the files) when any tracked C file differs from clang-format's output.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format-check: clang-format not installed" >&2; exit 1; }
bad=()
while IFS= read -r f; do
  [ -f "$f" ] || continue
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.c' '*.h' '*.cc' '*.cpp')
if [ ${#bad[@]} -gt 0 ]; then
  echo "format-check: not clang-formatted (run 'make format'): ${bad[*]}" >&2
  exit 1
fi
