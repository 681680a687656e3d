/*
 * knn.c - exact tiled inner-product kNN; see hl/knn.h.
 *
 * DESIGN
 * Queries are cut into blocks of KNN_QB rows; each block is one parallel task. A task walks
 * the database in tiles of KNN_DB rows, computes the KNN_QB x KNN_DB similarity tile with
 * one sgemm into its thread's buffer, then merges every tile row into that query's sorted
 * top-k list, which lives directly in the caller's output arrays. The database is walked in
 * ascending index order and a candidate replaces the k-th entry only when strictly larger,
 * so ties keep the lower index. Block boundaries do not depend on the thread count, so the
 * output is identical for any number of threads.
 */
#include "hl/knn.h"

#include "hl/mat.h"
#include "hl/parallel.h"
#include "internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define KNN_QB 512
#define KNN_DB 1024
/* Values scanned per early-out check in the top-k merge. */
#define KNN_CHUNK 16

void hl_knn_params_default(hl_knn_params *p)
{
    memset(p, 0, sizeof(*p));
    p->k = 10;
    p->n_threads = 1;
}

size_t hl_knn_exact_plan(size_t nq, size_t ndb, size_t d, const hl_knn_params *p)
{
    (void)nq;
    (void)ndb;
    (void)d;
    int nt = hl_threads_clamp(p != NULL ? p->n_threads : 1);
    return (size_t)nt * hl_arena_block((size_t)KNN_QB * KNN_DB * sizeof(float));
}

typedef struct knn_job {
    const float *q;
    const float *db;
    size_t nq, ndb, d;
    int k;
    float *tiles[HL_MAX_THREADS];
    int32_t *idx;
    float *sim;
    const hl_cancel *cancel;
    atomic_int stop;
} knn_job;

/* Inserts (v, j) into the sorted row (s, ix) of length k; v must beat s[k-1]. */
static void topk_insert(float *s, int32_t *ix, int k, float v, int32_t j)
{
    int pos = k - 1;
    while (pos > 0 && s[pos - 1] < v) {
        s[pos] = s[pos - 1];
        ix[pos] = ix[pos - 1];
        pos--;
    }
    s[pos] = v;
    ix[pos] = j;
}

static void merge_row(const float *row, size_t len, size_t base, float *s, int32_t *ix, int k)
{
    float thr = s[k - 1];
    size_t j = 0;
    for (; j + KNN_CHUNK <= len; j += KNN_CHUNK) {
        int any = 0;
        for (int t = 0; t < KNN_CHUNK; t++)
            any |= row[j + (size_t)t] > thr;
        if (!any)
            continue;
        for (int t = 0; t < KNN_CHUNK; t++) {
            float v = row[j + (size_t)t];
            if (v > thr) {
                topk_insert(s, ix, k, v, (int32_t)(base + j + (size_t)t));
                thr = s[k - 1];
            }
        }
    }
    for (; j < len; j++) {
        float v = row[j];
        if (v > thr) {
            topk_insert(s, ix, k, v, (int32_t)(base + j));
            thr = s[k - 1];
        }
    }
}

static void knn_task(void *arg, size_t task, int thread)
{
    knn_job *J = arg;
    if (atomic_load(&J->stop))
        return;
    size_t q0 = task * KNN_QB;
    size_t qn = J->nq - q0 < KNN_QB ? J->nq - q0 : KNN_QB;
    int k = J->k;
    float *tile = J->tiles[thread];
    float *s_out = J->sim + q0 * (size_t)k;
    int32_t *i_out = J->idx + q0 * (size_t)k;
    for (size_t r = 0; r < qn * (size_t)k; r++) {
        s_out[r] = -INFINITY;
        i_out[r] = -1;
    }
    for (size_t b0 = 0; b0 < J->ndb; b0 += KNN_DB) {
        if (hl_cancel_requested(J->cancel)) {
            atomic_store(&J->stop, 1);
            return;
        }
        size_t bn = J->ndb - b0 < KNN_DB ? J->ndb - b0 : KNN_DB;
        hl_gemm_nt(qn, bn, J->d, 1.0f, J->q + q0 * J->d, J->d, J->db + b0 * J->d, J->d, 0.0f, tile,
                   bn);
        for (size_t r = 0; r < qn; r++)
            merge_row(tile + r * bn, bn, b0, s_out + r * (size_t)k, i_out + r * (size_t)k, k);
    }
}

hl_status hl_knn_exact(const float *q, size_t nq, const float *db, size_t ndb, size_t d,
                       const hl_knn_params *p, hl_arena *scratch, int32_t *idx, float *sim)
{
    if (p == NULL || p->k < 1 || d < 1 || nq > INT32_MAX || ndb > INT32_MAX || d > INT32_MAX)
        return HL_INVAL;
    if (nq == 0)
        return HL_OK;
    int nt = hl_threads_clamp(p->n_threads);
    size_t n_tasks = (nq + KNN_QB - 1) / KNN_QB;
    if ((size_t)nt > n_tasks)
        nt = (int)n_tasks;
    size_t mark = hl_arena_mark(scratch);
    knn_job J;
    memset(&J, 0, sizeof(J));
    for (int t = 0; t < nt; t++) {
        J.tiles[t] = hl_arena_alloc(scratch, (size_t)KNN_QB * KNN_DB * sizeof(float), 64);
        if (J.tiles[t] == NULL) {
            hl_arena_reset(scratch, mark);
            return HL_NOMEM;
        }
    }
    J.q = q;
    J.db = db;
    J.nq = nq;
    J.ndb = ndb;
    J.d = d;
    J.k = p->k;
    J.idx = idx;
    J.sim = sim;
    J.cancel = &p->cancel;
    atomic_init(&J.stop, 0);

    hl_status st = hl__parallel_sliced(nt, n_tasks, (size_t)nt, knn_task, &J, &p->cancel,
                                       &p->progress, HL_STAGE_KNN, p->level, 0.0, 1.0);
    hl_arena_reset(scratch, mark);
    return atomic_load(&J.stop) ? HL_CANCELED : st;
}

double hl_knn_recall(const int32_t *approx, const int32_t *exact, size_t nq, int k)
{
    size_t hit = 0, tot = 0;
    for (size_t i = 0; i < nq; i++) {
        const int32_t *a = approx + i * (size_t)k;
        const int32_t *e = exact + i * (size_t)k;
        for (int x = 0; x < k; x++) {
            if (e[x] < 0)
                continue;
            tot++;
            for (int y = 0; y < k; y++) {
                if (a[y] == e[x]) {
                    hit++;
                    break;
                }
            }
        }
    }
    return tot > 0 ? (double)hit / (double)tot : 1.0;
}
