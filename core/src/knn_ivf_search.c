/*
 * knn_ivf_search.c - the grouped searches of the IVF index (knn_ivf.h): a group of query
 * rows against a stream of gathered database rows, one sgemm per (block, chunk) tile.
 *
 * A task takes one query group, gathers up to HL_IVF_RB of its rows into a block, then
 * gathers candidate rows into chunks of up to HL_IVF_CB rows (chunks run across list
 * boundaries, so small lists still make one large sgemm), computes each tile with one sgemm
 * and merges every tile row into its query's top-k (knn.c's merge, strict (similarity,
 * index) order). Tasks write only the lists of their own group's rows, and the candidates of
 * a row depend only on the pass's inputs, so results do not depend on the schedule.
 */
#include "knn_ivf.h"

#include "hl/mat.h"
#include "internal.h"

#include <string.h>

size_t hl__ivf_threads_plan(size_t n, size_t d, size_t cells, size_t nt)
{
    return nt * (hl_arena_block((size_t)HL_IVF_RB * d * sizeof(float)) +
                 hl_arena_block((size_t)HL_IVF_CB * d * sizeof(float)) +
                 hl_arena_block((size_t)HL_IVF_RB * HL_IVF_CB * sizeof(float)) +
                 hl_arena_block((size_t)HL_IVF_CB * sizeof(int32_t)) +
                 hl_arena_block(n * sizeof(int32_t)) + hl_arena_block(cells * sizeof(int32_t)));
}

hl_status hl__ivf_threads_alloc(hl__ivf *V, size_t cells)
{
    hl_arena *a = V->a;
    size_t d = V->d;
    V->n_cells = cells;
    for (size_t t = 0; t < V->nt; t++) {
        V->qbuf[t] = hl_arena_alloc_array(a, (size_t)HL_IVF_RB * d, sizeof(float), 64);
        V->gbuf[t] = hl_arena_alloc_array(a, (size_t)HL_IVF_CB * d, sizeof(float), 64);
        V->tile[t] = hl_arena_alloc_array(a, (size_t)HL_IVF_RB * HL_IVF_CB, sizeof(float), 64);
        V->gid[t] = hl_arena_alloc_array(a, HL_IVF_CB, sizeof(int32_t), 64);
        V->seen[t] = hl_arena_alloc_array(a, V->n, sizeof(int32_t), 64);
        V->cmark[t] = hl_arena_alloc_array(a, cells > 0 ? cells : 1, sizeof(int32_t), 64);
        if (V->qbuf[t] == NULL || V->gbuf[t] == NULL || V->tile[t] == NULL || V->gid[t] == NULL ||
            V->seen[t] == NULL || V->cmark[t] == NULL)
            return HL_NOMEM;
        /* Tiles stay zero between uses: sgemm accumulates with beta = 1 (see knn.c). */
        memset(V->tile[t], 0, (size_t)HL_IVF_RB * HL_IVF_CB * sizeof(float));
        memset(V->seen[t], 0, V->n * sizeof(int32_t));
        memset(V->cmark[t], 0, (cells > 0 ? cells : 1) * sizeof(int32_t));
        V->stamp[t] = 0;
    }
    return HL_OK;
}

/* A block of query rows and the chunk being filled, for one task. */
typedef struct blk {
    hl__ivf *V;
    const hl__ivf_pass *P;
    int thread;
    const int32_t *rows; /* the block's query row ids */
    size_t rb;
    size_t fill; /* candidates in the chunk */
} blk;

/* tile (rb x fill) = block * chunk^T, merged into the block rows' lists. */
static void flush(blk *b)
{
    hl__ivf *V = b->V;
    const hl__ivf_pass *P = b->P;
    int t = b->thread;
    if (b->fill == 0)
        return;
    float *tile = V->tile[t];
    hl_gemm_nt(b->rb, b->fill, V->d, 1.0f, V->qbuf[t], V->d, V->gbuf[t], V->d, 1.0f, tile, b->fill);
    for (size_t r = 0; r < b->rb; r++) {
        size_t i = (size_t)b->rows[r];
        hl__knn_merge_row_ids(tile + r * b->fill, b->fill, V->gid[t], P->sim + i * P->k,
                              P->idx + i * P->k, P->k, 0);
    }
    b->fill = 0;
}

/* Appends database row j to the chunk, flushing a full chunk. */
static void take(blk *b, int32_t j)
{
    hl__ivf *V = b->V;
    int t = b->thread;
    V->gid[t][b->fill] = j;
    memcpy(V->gbuf[t] + b->fill * V->d, b->P->drows + (size_t)j * V->d, V->d * sizeof(float));
    if (++b->fill == HL_IVF_CB)
        flush(b);
}

/* Candidates of a plain pass: every row of every probed list. */
static void probe_lists(blk *b, size_t g)
{
    const hl__ivf_pass *P = b->P;
    for (size_t s = 0; s < P->np; s++) {
        int32_t l = P->probe[g * P->np + s];
        if (l < 0)
            break;
        for (int32_t u = P->doff[l]; u < P->doff[l + 1]; u++)
            take(b, P->dmem[u]);
    }
}

typedef struct pass_ctx {
    hl__ivf *V;
    const hl__ivf_pass *P;
} pass_ctx;

static int pass_stop(hl__ivf *V)
{
    if (atomic_load(&V->stop))
        return 1;
    if (hl_cancel_requested(&V->p->cancel)) {
        atomic_store(&V->stop, 1);
        return 1;
    }
    return 0;
}

static void pass_task(void *arg, size_t task, int thread)
{
    pass_ctx *c = arg;
    hl__ivf *V = c->V;
    const hl__ivf_pass *P = c->P;
    size_t g = P->order != NULL ? (size_t)P->order[task] : task, d = V->d;
    const int32_t *mem = P->qmem + P->qoff[g];
    size_t na = (size_t)(P->qoff[g + 1] - P->qoff[g]);
    for (size_t r0 = 0; r0 < na; r0 += HL_IVF_RB) {
        if (pass_stop(V))
            return;
        blk b = {V, P, thread, mem + r0, hl__min_size(na - r0, HL_IVF_RB), 0};
        for (size_t r = 0; r < b.rb; r++) {
            size_t i = (size_t)b.rows[r];
            memcpy(V->qbuf[thread] + r * d, P->qrows + i * d, d * sizeof(float));
            hl__knn_lists_pad(P->sim + i * P->k, P->idx + i * P->k, P->k);
        }
        probe_lists(&b, g);
        flush(&b);
    }
}

hl_status hl__ivf_pass_run(hl__ivf *V, const hl__ivf_pass *P)
{
    pass_ctx c = {V, P};
    hl_progress none = {NULL, NULL};
    const hl_progress *pr = P->f1 > P->f0 ? &V->p->progress : &none;
    /* Slices of 16 groups per thread: cancel and progress between slices (tasks poll too). */
    hl_status st = hl__parallel_sliced((int)V->nt, P->ng, 16 * V->nt, pass_task, &c, &V->p->cancel,
                                       pr, HL_STAGE_KNN, V->p->level, P->f0, P->f1);
    return atomic_load(&V->stop) ? HL_CANCELED : st;
}
