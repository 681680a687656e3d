#!/usr/bin/env bash
# The engine must depend on libc, libm, pthreads and cblas only (architecture: dependency
# direction). Lists every undefined symbol of libhl_core.a that is not defined inside the
# archive and fails on anything outside those libraries.
set -euo pipefail
lib=$1
command -v nm >/dev/null || { echo "nm not found" >&2; exit 1; }
defined=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF==3 {print $3}' | sort -u)
undef=$(nm -u "$lib" | awk '{print $NF}' | grep -v ':$' | sort -u)
allowed='^(cblas_[a-z0-9_]+|__[a-z0-9_]+|_GLOBAL_OFFSET_TABLE_|mem(cpy|set|move|cmp)|str(len|cmp|ncmp|chr|dup|ncpy)|(v?snprintf|__v?snprintf_chk|__memcpy_chk|__memset_chk|__memmove_chk)|(malloc|calloc|realloc|free|abort|qsort)|(sqrt|exp|log|fabs|pow|tanh|cos|sin|floor|ceil|round|lround|isnan|isinf|fmax|fmin)f?|timespec_get|pthread_(create|join)|atomic_[a-z_]+)$'
bad=$(comm -23 <(echo "$undef") <(echo "$defined") | grep -Ev "$allowed" || true)
if [ -n "$bad" ]; then
  echo "libhl_core.a depends on symbols outside libc/libm/pthreads/cblas:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "libhl_core.a: external symbols OK"
