/*
 * hl/knn.h - k nearest neighbours by inner product (cosine on L2-normalised rows).
 *
 * The exact search cuts the rows into fixed blocks, computes each block-pair tile with one
 * cblas_sgemm and keeps a sorted top-k per query row. Memory is O(nq * k) for the output plus
 * one tile per thread (hl_knn_exact_plan); nothing is ever nq x ndb. When `q` and `db` are
 * the same pointer with nq == ndb (self search), only half of the tiles of the symmetric
 * X * X^T are computed and each is merged in both directions, which about halves the time.
 *
 * Output rows are sorted by similarity, highest first; equal similarities are ordered by
 * ascending database index, so results are deterministic and identical for any thread
 * count. When fewer than k database rows exist, the tail of a row is padded with index -1
 * and similarity -INFINITY. In self search the query point is a candidate like any other:
 * k counts the point itself, as in the reference implementation. Rows are not normalised
 * here: pass L2-normalised rows (hl_l2norm_rows) for cosine similarity.
 *
 * Thread-safety: reentrant. The cancel hook may be called from several engine threads at
 * once and must be thread-safe; the progress hook is called from the calling thread only.
 * BLAS should run single-threaded (openblas_set_num_threads(1)): parallelism comes from
 * p->n_threads.
 *
 *     size_t bytes = hl_knn_exact_plan(n, n, d, &p);
 *     hl_arena_init(&a, bytes);
 *     hl_knn_exact(xn, n, xn, n, d, &p, &a, idx, sim);   // idx, sim: n * k
 */
#ifndef HL_KNN_H
#define HL_KNN_H

#include "hl/arena.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_knn_params {
    int k;                /**< neighbours per query, >= 1 */
    int n_threads;        /**< engine threads, >= 1 */
    hl_cancel cancel;     /**< polled once per tile */
    hl_progress progress; /**< stage HL_STAGE_KNN */
    int level;            /**< reported with progress */
} hl_knn_params;

/** Fills `p` with k = 10, one thread, no hooks. */
void hl_knn_params_default(hl_knn_params *p);

/**
 * Scratch bytes hl_knn_exact() needs from its arena for these sizes and p->n_threads (NULL
 * means one thread): one tile per thread actually used, independent of d and ndb.
 */
size_t hl_knn_exact_plan(size_t nq, size_t ndb, size_t d, const hl_knn_params *p);

/**
 * Exact top-k inner-product search of `q` (nq x d) against `db` (ndb x d). Writes `idx` and
 * `sim`, each nq x k (caller-allocated). Scratch comes from `scratch` and is released before
 * returning. Returns HL_OK (also for nq == 0, where nothing is touched), HL_INVAL for a NULL
 * p, scratch or data pointer, k < 1, d < 1 or sizes over INT32_MAX, HL_NOMEM if `scratch` is
 * too small, HL_CANCELED if the hook asked to stop (the outputs are then unspecified).
 */
hl_status hl_knn_exact(const float *q, size_t nq, const float *db, size_t ndb, size_t d,
                       const hl_knn_params *p, hl_arena *scratch, int32_t *idx, float *sim);

/**
 * Recall of `approx` against `exact` (both nq x k index lists): the share of exact
 * neighbours, ignoring -1 padding, that appear in the approximate row.
 */
double hl_knn_recall(const int32_t *approx, const int32_t *exact, size_t nq, int k);

#ifdef __cplusplus
}
#endif

#endif /* HL_KNN_H */
