/* internal.h - helpers shared by core modules; not part of the public API (hl__ prefix). */
#ifndef HL_INTERNAL_H
#define HL_INTERNAL_H

#include "hl/parallel.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

/**
 * Runs fn over [0, n_tasks) in slices of `slice` tasks. Between slices it polls `cancel`
 * and reports progress linearly from f0 to f1. Returns HL_CANCELED if the hook asked to stop
 * (remaining slices are skipped), else HL_OK.
 */
hl_status hl__parallel_sliced(int n_threads, size_t n_tasks, size_t slice, hl_task_fn fn, void *arg,
                              const hl_cancel *cancel, const hl_progress *progress, hl_stage stage,
                              int level, double f0, double f1);

/*
 * kNN list helpers shared by knn.c and knn_ivf.c. A list is k (similarity, index) pairs
 * sorted by similarity descending, then index ascending; padding is (-INFINITY, -1).
 */

/** Sets `count` list entries to the padding (-INFINITY, -1). */
void hl__knn_lists_pad(float *sim, int32_t *idx, size_t count);

/**
 * Offers the `len` similarities of `row` (candidate t is database row ids[t]) to the list
 * (s, ix) of length k, then zeroes `row` (tiles are kept zero so that sgemm can accumulate
 * with beta = 1; see knn.c). With `unique`, ids already in the list are not entered again.
 */
void hl__knn_merge_row_ids(float *row, size_t len, const int32_t *ids, float *s, int32_t *ix,
                           size_t k, int unique);

static inline size_t hl__min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

#endif /* HL_INTERNAL_H */
