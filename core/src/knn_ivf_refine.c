/*
 * knn_ivf_refine.c - the refinement rounds of the IVF search (knn_ivf.h): a deterministic,
 * pull-style neighbourhood descent over the lists the cell search produced.
 *
 * A round starts from a snapshot of all lists (n x k) and the reverse lists built from it
 * (for each point, up to k points that list it, lowest ids first). Point i is then compared
 * with every point j that is a neighbour or reverse neighbour of one of its own neighbours or
 * reverse neighbours, unless j is i, is already in i's list, or lies in a cell that i's cell
 * probed (the cell search compared those already). Only i's own list changes, and the
 * candidates of i depend only on the snapshot, so the result does not depend on the thread
 * count or schedule. Similarities are plain dot products of the two rows.
 *
 * Rounds stop after R->rounds or when a round changed fewer than n * k / 1000 entries.
 */
#include "knn_ivf.h"

#include "internal.h"

#include <string.h>

/* Points per task. */
#define REFINE_BLOCK 256

typedef struct refine_ctx {
    hl__ivf *V;
    const hl__ivf_refine *R;
    const int32_t *snap, *roff, *rids;
    int32_t *idx;
    float *sim;
} refine_ctx;

static float dot(const float *a, const float *b, size_t d)
{
    float s[8] = {0};
    size_t t = 0;
    for (; t + 8 <= d; t += 8)
        for (size_t u = 0; u < 8; u++)
            s[u] += a[t + u] * b[t + u];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; t < d; t++)
        r += a[t] * b[t];
    return r;
}

/* The chunk of candidate similarities of one point, merged into its list when full. */
typedef struct cand {
    float *row;
    int32_t *ids;
    size_t fill;
    float *s;
    int32_t *ix;
    size_t k;
} cand;

static void cand_flush(cand *c)
{
    if (c->fill > 0)
        hl__knn_merge_row_ids(c->row, c->fill, c->ids, c->s, c->ix, c->k, 1);
    c->fill = 0;
}

/* Candidates of i reached through u: u's neighbours and reverse neighbours. */
static void expand(const refine_ctx *C, int thread, size_t i, int32_t u, int32_t cs, cand *c)
{
    hl__ivf *V = C->V;
    const hl__ivf_refine *R = C->R;
    size_t k = V->k, d = V->d;
    int32_t *seen = V->seen[thread], *cmark = V->cmark[thread];
    const int32_t *lists[2] = {C->snap + (size_t)u * k, C->rids + C->roff[u]};
    size_t lens[2] = {k, (size_t)(C->roff[u + 1] - C->roff[u])};
    const float *xi = V->x + i * d;
    for (int w = 0; w < 2; w++) {
        for (size_t v = 0; v < lens[w]; v++) {
            int32_t j = lists[w][v];
            if (j < 0)
                break;
            if (seen[j] == cs || cmark[R->cell[(size_t)j * R->cell_stride]] == cs)
                continue;
            seen[j] = cs;
            c->ids[c->fill] = j;
            c->row[c->fill] = dot(xi, V->x + (size_t)j * d, d);
            if (++c->fill == HL_IVF_CB)
                cand_flush(c);
        }
    }
}

static void refine_point(const refine_ctx *C, int thread, size_t i)
{
    hl__ivf *V = C->V;
    const hl__ivf_refine *R = C->R;
    size_t k = V->k;
    int32_t cs = ++V->stamp[thread];
    int32_t *seen = V->seen[thread], *cmark = V->cmark[thread];
    int32_t A = R->cell[i * R->cell_stride];
    for (size_t s = 0; s < R->np; s++) {
        int32_t b = R->probe[(size_t)A * R->np + s];
        if (b < 0)
            break;
        cmark[b] = cs;
    }
    seen[i] = cs;
    cand c = {V->tile[thread], V->gid[thread], 0, C->sim + i * k, C->idx + i * k, k};
    for (size_t t = 0; t < k; t++) /* the current list: already compared */
        if (c.ix[t] >= 0)
            seen[c.ix[t]] = cs;
    const int32_t *nb = C->snap + i * k;
    for (size_t t = 0; t < k && nb[t] >= 0; t++)
        expand(C, thread, i, nb[t], cs, &c);
    for (int32_t t = C->roff[i]; t < C->roff[i + 1]; t++)
        expand(C, thread, i, C->rids[t], cs, &c);
    cand_flush(&c);
}

static void refine_task(void *arg, size_t task, int thread)
{
    refine_ctx *C = arg;
    hl__ivf *V = C->V;
    if (atomic_load(&V->stop))
        return;
    size_t i1 = hl__min_size(V->n, (task + 1) * REFINE_BLOCK);
    for (size_t i = task * REFINE_BLOCK; i < i1; i++)
        refine_point(C, thread, i);
}

size_t hl__ivf_refine_plan(size_t n, size_t k)
{
    return 2 * hl_arena_block(n * k * sizeof(int32_t)) + hl_arena_block((n + 1) * sizeof(int32_t)) +
           hl_arena_block(n * sizeof(int32_t));
}

/*
 * Reverse lists of `snap` (n x k): point j gets the sources i with j in i's list (j != i),
 * up to k of them, lowest i first, in rids[roff[j] .. roff[j + 1]). cur: n ints of scratch.
 */
static void reverse_lists(const int32_t *snap, size_t n, size_t k, int32_t *roff, int32_t *rids,
                          int32_t *cur)
{
    memset(cur, 0, n * sizeof(int32_t));
    for (size_t e = 0; e < n * k; e++) {
        int32_t j = snap[e];
        if (j >= 0 && (size_t)j != e / k && cur[j] < (int32_t)k)
            cur[j]++;
    }
    roff[0] = 0;
    for (size_t j = 0; j < n; j++) {
        roff[j + 1] = roff[j] + cur[j];
        cur[j] = roff[j];
    }
    for (size_t e = 0; e < n * k; e++) {
        int32_t j = snap[e];
        if (j >= 0 && (size_t)j != e / k && cur[j] < roff[j + 1])
            rids[cur[j]++] = (int32_t)(e / k);
    }
}

hl_status hl__ivf_refine_run(hl__ivf *V, const hl__ivf_refine *R, int32_t *idx, float *sim)
{
    size_t n = V->n, k = V->k;
    size_t mark = hl_arena_mark(V->a);
    int32_t *snap = hl_arena_alloc_array(V->a, n * k, sizeof(int32_t), 64);
    int32_t *rids = hl_arena_alloc_array(V->a, n * k, sizeof(int32_t), 64);
    int32_t *roff = hl_arena_alloc_array(V->a, n + 1, sizeof(int32_t), 64);
    int32_t *cur = hl_arena_alloc_array(V->a, n, sizeof(int32_t), 64);
    if (snap == NULL || rids == NULL || roff == NULL || cur == NULL)
        return HL_NOMEM;
    refine_ctx C = {V, R, snap, roff, rids, idx, sim};
    size_t tasks = (n + REFINE_BLOCK - 1) / REFINE_BLOCK;
    hl_status st = HL_OK;
    for (int r = 0; r < R->rounds && st == HL_OK; r++) {
        memcpy(snap, idx, n * k * sizeof(int32_t));
        reverse_lists(snap, n, k, roff, rids, cur);
        for (size_t t = 0; t < V->nt; t++) { /* fresh stamps: no overflow across rounds */
            memset(V->seen[t], 0, n * sizeof(int32_t));
            memset(V->cmark[t], 0, V->n_cells * sizeof(int32_t));
            V->stamp[t] = 0;
        }
        double f0 = R->f0 + (R->f1 - R->f0) * r / R->rounds;
        double f1 = R->f0 + (R->f1 - R->f0) * (r + 1) / R->rounds;
        st = hl__parallel_sliced((int)V->nt, tasks, 16 * V->nt, refine_task, &C, &V->p->cancel,
                                 &V->p->progress, HL_STAGE_KNN, V->p->level, f0, f1);
        if (atomic_load(&V->stop))
            st = HL_CANCELED;
        size_t changed = 0;
        for (size_t e = 0; e < n * k; e++)
            changed += idx[e] != snap[e];
        if (changed * 1000 < n * k)
            break;
    }
    hl_arena_reset(V->a, mark);
    return st;
}
