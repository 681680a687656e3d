/* internal.h - helpers shared by core modules; not part of the public API (hl__ prefix). */
#ifndef HL_INTERNAL_H
#define HL_INTERNAL_H

#include "hl/parallel.h"
#include "hl/status.h"

#include <stddef.h>

/**
 * Runs fn over [0, n_tasks) in slices of `slice` tasks. Between slices it polls `cancel`
 * and reports progress linearly from f0 to f1. Returns HL_CANCELED if the hook asked to stop
 * (remaining slices are skipped), else HL_OK.
 */
hl_status hl__parallel_sliced(int n_threads, size_t n_tasks, size_t slice, hl_task_fn fn, void *arg,
                              const hl_cancel *cancel, const hl_progress *progress, hl_stage stage,
                              int level, double f0, double f1);

static inline size_t hl__min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

#endif /* HL_INTERNAL_H */
