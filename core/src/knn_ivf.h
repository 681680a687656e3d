/*
 * knn_ivf.h - internals shared by knn_ivf.c (the index) and knn_ivf_search.c (the grouped
 * searches); not part of the public API. See knn_ivf.c for the design.
 */
#ifndef HL_KNN_IVF_INTERNAL_H
#define HL_KNN_IVF_INTERNAL_H

#include "hl/knn.h"
#include "hl/parallel.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Query rows per search block and database rows per chunk: the tile is 2 MiB per thread. */
#define HL_IVF_RB 512
#define HL_IVF_CB 1024

/* The state of one hl_knn_ivf() call. */
typedef struct hl__ivf {
    const float *x;
    size_t n, d, k;
    const hl_knn_params *p;
    hl_knn_params inner; /* hl_knn_exact against the coarse centroids: no progress hook */
    hl_arena *a;
    size_t nt; /* threads */
    /* Per-thread search buffers (hl__ivf_threads_alloc). */
    float *qbuf[HL_MAX_THREADS], *gbuf[HL_MAX_THREADS], *tile[HL_MAX_THREADS];
    int32_t *gid[HL_MAX_THREADS];
    int32_t *seen[HL_MAX_THREADS];  /* n stamps: refinement candidates already taken */
    int32_t *cmark[HL_MAX_THREADS]; /* cell stamps: cells the point's cell probed */
    int32_t stamp[HL_MAX_THREADS];
    size_t n_cells; /* size of cmark */
    atomic_int stop;
} hl__ivf;

/*
 * One grouped search: every query group searches database lists. Query group g holds the
 * query rows qmem[qoff[g] .. qoff[g + 1]) of qrows; database list l holds the rows
 * dmem[doff[l] .. doff[l + 1]) of drows; group g searches the lists probe[g * np ..], which
 * end at the first -1. Results go to the k-lists idx/sim of each query row (indexed by the
 * row id), as database row ids; the lists of a group's rows are reset first.
 */
typedef struct hl__ivf_pass {
    const float *qrows;
    const int32_t *qoff, *qmem;
    size_t ng;
    const float *drows;
    const int32_t *doff, *dmem;
    const int32_t *probe;
    size_t np;
    const int32_t *order; /* task order of the groups, or NULL for 0..ng-1 */
    size_t k;
    int32_t *idx;
    float *sim;
    double f0, f1; /* progress range of the pass; none when f1 <= f0 */
} hl__ivf_pass;

/*
 * The refinement rounds (knn_ivf_refine.c): `cell` (stride cell_stride) is each point's cell,
 * probe (np per cell, -1 padded) the cells each cell searched.
 */
typedef struct hl__ivf_refine {
    const int32_t *cell;
    size_t cell_stride;
    const int32_t *probe;
    size_t np;
    int rounds;
    double f0, f1; /* progress range */
} hl__ivf_refine;

/** Plan bytes of hl__ivf_refine_run for n points and k. */
size_t hl__ivf_refine_plan(size_t n, size_t k);

/** Refines the lists idx/sim (n x k) in place. HL_OK, HL_NOMEM or HL_CANCELED. */
hl_status hl__ivf_refine_run(hl__ivf *V, const hl__ivf_refine *R, int32_t *idx, float *sim);

/** Plan bytes of the per-thread buffers for n points, `cells` cells and nt threads. */
size_t hl__ivf_threads_plan(size_t n, size_t d, size_t cells, size_t nt);

/** Allocates the per-thread buffers (V->nt threads) from V->a. HL_NOMEM if short. */
hl_status hl__ivf_threads_alloc(hl__ivf *V, size_t cells);

/** Runs a pass on V->nt threads. HL_OK or HL_CANCELED. */
hl_status hl__ivf_pass_run(hl__ivf *V, const hl__ivf_pass *P);

#endif /* HL_KNN_IVF_INTERNAL_H */
