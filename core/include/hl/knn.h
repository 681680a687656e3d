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
 * Approximate search (hl_knn_ivf, self search only) is an inverted-file index over spherical
 * k-means cells: every point of a cell searches the lists its cell probes, with one sgemm per
 * (cell block, candidate chunk), then up to three refinement rounds compare every point with
 * the neighbours and reverse neighbours of its neighbours and reverse neighbours. The
 * similarities it returns are exact inner products of the candidates it saw; only neighbours
 * it never saw can be missed (recall@10 0.976 at 1M x 128 on the benchmark set, 0.889 on a
 * harder one: bench/RESULTS.md, "Scale"). The output follows the same rules as the exact search
 * (sorting, ties, padding, k counts the point). It is deterministic for a seed and identical for
 * any thread count. hl_knn_self() picks exact or IVF by size (HL_KNN_AUTO) or as told.
 *
 * Thread-safety: reentrant. The cancel hook may be called from several engine threads at
 * once and must be thread-safe; the progress hook is called from the calling thread only.
 * BLAS should run single-threaded (openblas_set_num_threads(1)): parallelism comes from
 * p->n_threads.
 *
 *     size_t bytes = hl_knn_exact_plan(n, n, d, &p);
 *     hl_arena_init(&a, bytes);
 *     hl_knn_exact(xn, n, xn, n, d, &p, &a, idx, sim);   // idx, sim: n * k
 *
 *     p.method = HL_KNN_AUTO;                             // or HL_KNN_EXACT, HL_KNN_IVF
 *     hl_arena_init(&a, hl_knn_self_plan(n, d, &p));
 *     hl_knn_self(xn, n, d, &p, &a, idx, sim);
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

/** Search methods of hl_knn_self(). */
typedef enum hl_knn_method {
    HL_KNN_AUTO = 0,  /**< exact up to exact_max points, IVF above */
    HL_KNN_EXACT = 1, /**< exact tiled search */
    HL_KNN_IVF = 2,   /**< approximate inverted-file search */
} hl_knn_method;

/*
 * Default size limit of the exact search under HL_KNN_AUTO: up to this many points the
 * exact search is used (bench/RESULTS.md, "Scale"). The glyphs test set (31k points) stays
 * exact, so the shipped model cards still hold; the exact search of 50k x 128 takes a few
 * CPU seconds.
 */
#define HL_KNN_EXACT_MAX_DEFAULT 50000

typedef struct hl_knn_params {
    int k;                /**< neighbours per query, >= 1 */
    int n_threads;        /**< engine threads, >= 1 */
    hl_cancel cancel;     /**< polled once per tile (exact) or cell block (IVF) */
    hl_progress progress; /**< stage HL_STAGE_KNN */
    int level;            /**< reported with progress */
    /* hl_knn_self() and hl_knn_ivf() only; zero values select the defaults. */
    hl_knn_method method; /**< HL_KNN_AUTO by default */
    size_t exact_max;     /**< AUTO: exact when n <= exact_max (0: HL_KNN_EXACT_MAX_DEFAULT) */
    int nlist;            /**< IVF cells (0: automatic, see hl_knn_ivf_shape) */
    int nprobe;           /**< IVF lists searched per cell (0: automatic) */
    uint64_t seed;        /**< IVF training sample and initial centroids */
} hl_knn_params;

/** Fills `p` with k = 10, one thread, no hooks, HL_KNN_AUTO and default IVF settings. */
void hl_knn_params_default(hl_knn_params *p);

/** "auto", "exact" or "ivf" ("?" for other values). */
const char *hl_knn_method_name(hl_knn_method m);

/** Parses a method name as hl_knn_method_name() writes it. Returns HL_OK or HL_INVAL. */
hl_status hl_knn_method_parse(const char *name, hl_knn_method *out);

/** The method hl_knn_self() uses for n points: HL_KNN_EXACT or HL_KNN_IVF, never AUTO. */
hl_knn_method hl_knn_choose(const hl_knn_params *p, size_t n);

/**
 * The IVF shape hl_knn_ivf() uses for n points: *nlist cells (p->nlist, or ceil(n / 64)
 * by default; at most n) and *nprobe lists per cell (p->nprobe, default 128; at
 * most *nlist). n = 0 gives 0 and 0.
 */
void hl_knn_ivf_shape(const hl_knn_params *p, size_t n, int *nlist, int *nprobe);

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
 * Scratch bytes hl_knn_ivf() needs for n points of dimension d with these parameters: the
 * index (centroids, lists, probe table, O(n) ids), the training sample, and fixed buffers per
 * thread. Never O(n^2); also enough for any smaller n.
 */
size_t hl_knn_ivf_plan(size_t n, size_t d, const hl_knn_params *p);

/**
 * Approximate self search: the top-k neighbours of every row of `x` (n x d, L2-normalised
 * rows) among the rows of `x`, in `idx` and `sim` (each n x k, caller-allocated), with the
 * output rules of hl_knn_exact(). Rows that are entirely zero get the exact answer (the
 * first min(k, n) indices with similarity 0), as in the exact search. Scratch comes from
 * `scratch` and is released before returning. Returns HL_OK (also for n == 0), HL_INVAL as
 * hl_knn_exact(), HL_NOMEM if `scratch` is too small, HL_CANCELED if the hook asked to stop
 * (polled during training, assignment and once per cell block of the search).
 */
hl_status hl_knn_ivf(const float *x, size_t n, size_t d, const hl_knn_params *p, hl_arena *scratch,
                     int32_t *idx, float *sim);

/**
 * Scratch bytes hl_knn_self() needs for up to n points: the larger of the exact plan and,
 * when the method may be IVF for some size up to n, the IVF plan.
 */
size_t hl_knn_self_plan(size_t n, size_t d, const hl_knn_params *p);

/**
 * Self search of `x` (n x d, normalised rows) with the method hl_knn_choose() picks:
 * hl_knn_exact(x, n, x, n, ...) or hl_knn_ivf(). Same outputs and return values.
 */
hl_status hl_knn_self(const float *x, size_t n, size_t d, const hl_knn_params *p, hl_arena *scratch,
                      int32_t *idx, float *sim);

/**
 * Recall of `approx` against `exact` (both nq x k index lists): the share of exact
 * neighbours, ignoring -1 padding, that appear in the approximate row.
 */
double hl_knn_recall(const int32_t *approx, const int32_t *exact, size_t nq, int k);

#ifdef __cplusplus
}
#endif

#endif /* HL_KNN_H */
