/*
 * test_knn_ivf.c - the approximate IVF self search (hl_knn_ivf) and the method choice
 * (hl_knn_self, hl_knn_choose): recall against hl_knn_exact on seeded data, well-formed
 * output (order, ties, no repeats, exact similarities of the returned pairs), identical
 * results for any thread count, n <= k, duplicates, zero rows, cancel, progress, arena limits
 * and bad arguments.
 */
#include "test_util.h"

#include "hl/arena.h"
#include "hl/cluster.h"
#include "hl/knn.h"
#include "hl/mat.h"

#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Recall bounds, set below the measured values: clustered data (small blobs, as the
 * embeddings the service clusters) 0.97, measured 0.997; unclustered Gaussian data in 32
 * dimensions 0.6, measured 0.75 (no structure for the cells to follow).
 */
#define RECALL_CLUSTERED 0.97
#define RECALL_RANDOM    0.6

typedef struct out {
    int32_t *idx;
    float *sim;
    hl_status st;
    size_t peak, plan;
} out;

static void out_free(out *o)
{
    free(o->idx);
    free(o->sim);
}

static hl_knn_params params(int k, int threads, hl_knn_method m)
{
    hl_knn_params p;
    hl_knn_params_default(&p);
    p.k = k;
    p.n_threads = threads;
    p.method = m;
    return p;
}

/* hl_knn_self with an arena of exactly hl_knn_self_plan bytes. */
static out run_self(const float *x, size_t n, size_t d, const hl_knn_params *p)
{
    out o;
    size_t k = (size_t)p->k;
    o.idx = malloc(n * k * sizeof(int32_t) + 1);
    o.sim = malloc(n * k * sizeof(float) + 1);
    o.plan = hl_knn_self_plan(n, d, p);
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, o.plan > 0 ? o.plan : 1), HL_OK);
    o.st = hl_knn_self(x, n, d, p, &a, o.idx, o.sim);
    ck_assert_uint_eq(hl_arena_mark(&a), 0);
    o.peak = a.peak;
    hl_arena_deinit(&a);
    return o;
}

static double dot_d(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t t = 0; t < d; t++)
        s += (double)a[t] * (double)b[t];
    return s;
}

/*
 * Every row: min(k, n) entries, then -1 padding with -inf; no id twice; order by similarity
 * descending, then id ascending; each similarity the true dot product of the pair.
 */
static void check_wellformed(const float *x, size_t n, size_t d, size_t k, const out *o)
{
    size_t m = k < n ? k : n;
    for (size_t i = 0; i < n; i++) {
        const int32_t *ix = o->idx + i * k;
        const float *s = o->sim + i * k;
        for (size_t t = 0; t < k; t++) {
            if (t >= m) {
                ck_assert_msg(ix[t] == -1 && isinf(s[t]) && s[t] < 0, "row %zu pad %zu", i, t);
                continue;
            }
            ck_assert_msg(ix[t] >= 0 && (size_t)ix[t] < n, "row %zu entry %zu id %d", i, t, ix[t]);
            double ref = dot_d(x + i * d, x + (size_t)ix[t] * d, d);
            ck_assert_msg(fabs(ref - (double)s[t]) < 1e-5, "row %zu: sim %g, true %g", i,
                          (double)s[t], ref);
            for (size_t u = 0; u < t; u++)
                ck_assert_msg(ix[u] != ix[t], "row %zu: id %d twice", i, ix[t]);
            if (t > 0)
                ck_assert_msg(s[t - 1] > s[t] || (s[t - 1] == s[t] && ix[t - 1] < ix[t]),
                              "row %zu: order at %zu", i, t);
        }
    }
}

static out exact_of(const float *x, size_t n, size_t d, int k)
{
    hl_knn_params p = params(k, 2, HL_KNN_EXACT);
    return run_self(x, n, d, &p);
}

static float *unit_blobs(size_t n, size_t d, size_t c, float sigma, uint64_t seed)
{
    int32_t *lab;
    float *x = tu_blobs(n, d, c, sigma, seed, &lab);
    free(lab);
    hl_l2norm_rows(x, x, n, d);
    return x;
}

static float *unit_randn(size_t n, size_t d, uint64_t seed)
{
    float *x = tu_randn(n, d, seed);
    hl_l2norm_rows(x, x, n, d);
    return x;
}

/* Recall of the IVF against the exact search; also checks the IVF output is well formed. */
static double ivf_recall(const float *x, size_t n, size_t d, int k, int threads)
{
    hl_knn_params p = params(k, threads, HL_KNN_IVF);
    out a = run_self(x, n, d, &p);
    ck_assert_int_eq(a.st, HL_OK);
    ck_assert_uint_le(a.peak, a.plan);
    check_wellformed(x, n, d, (size_t)k, &a);
    out e = exact_of(x, n, d, k);
    ck_assert_int_eq(e.st, HL_OK);
    double r = hl_knn_recall(a.idx, e.idx, n, k);
    out_free(&a);
    out_free(&e);
    return r;
}

START_TEST(test_recall_clustered)
{
    /* 8000 points in 500 small clusters: ~125 cells of 64 points, as at scale. */
    size_t n = 8000, d = 32;
    float *x = unit_blobs(n, d, 500, 0.35f, 71);
    double r = ivf_recall(x, n, d, 10, 2);
    ck_assert_msg(r >= RECALL_CLUSTERED, "clustered recall %.4f < %.2f", r, RECALL_CLUSTERED);
    free(x);
}
END_TEST

START_TEST(test_recall_random)
{
    size_t n = 5000, d = 32;
    float *x = unit_randn(n, d, 72);
    double r = ivf_recall(x, n, d, 10, 1);
    ck_assert_msg(r >= RECALL_RANDOM, "random recall %.4f < %.2f", r, RECALL_RANDOM);
    free(x);
}
END_TEST

/* One probe per cell searches the cell itself: every point finds itself first (random
 * unit rows have no duplicates). A probe row once lost its own cell when nprobe was 1. */
START_TEST(test_one_probe_keeps_own_cell)
{
    size_t n = 2000, d = 16;
    float *x = unit_randn(n, d, 73);
    hl_knn_params p = params(5, 1, HL_KNN_IVF);
    p.nprobe = 1;
    out o = run_self(x, n, d, &p);
    ck_assert_int_eq(o.st, HL_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(o.idx[i * 5] == (int32_t)i, "row %zu starts with %d", i, o.idx[i * 5]);
    out_free(&o);
    free(x);
}
END_TEST

START_TEST(test_threads_identical)
{
    size_t n = 7000, d = 24;
    float *x = unit_blobs(n, d, 300, 0.4f, 73);
    hl_knn_params p = params(10, 1, HL_KNN_IVF);
    out ref = run_self(x, n, d, &p);
    ck_assert_int_eq(ref.st, HL_OK);
    for (int threads = 2; threads <= 4; threads++) {
        p.n_threads = threads;
        out o = run_self(x, n, d, &p);
        ck_assert_int_eq(o.st, HL_OK);
        ck_assert_msg(memcmp(o.idx, ref.idx, n * 10 * sizeof(int32_t)) == 0, "ids, %d threads",
                      threads);
        ck_assert_msg(memcmp(o.sim, ref.sim, n * 10 * sizeof(float)) == 0, "sims, %d threads",
                      threads);
        out_free(&o);
    }
    /* Same seed, same result; the seed is used (another seed, another index). */
    out again = run_self(x, n, d, &p);
    ck_assert(memcmp(again.idx, ref.idx, n * 10 * sizeof(int32_t)) == 0);
    out_free(&again);
    out_free(&ref);
    free(x);
}
END_TEST

START_TEST(test_small_n)
{
    /* n <= k and tiny n: every point sees all others, so the IVF is exact. */
    size_t d = 6;
    float *x = unit_randn(40, d, 74);
    size_t ns[5] = {1, 2, 5, 10, 11};
    for (int c = 0; c < 5; c++) {
        size_t n = ns[c];
        hl_knn_params p = params(10, 2, HL_KNN_IVF);
        out a = run_self(x, n, d, &p);
        ck_assert_int_eq(a.st, HL_OK);
        check_wellformed(x, n, d, 10, &a);
        out e = exact_of(x, n, d, 10);
        ck_assert_msg(memcmp(a.idx, e.idx, n * 10 * sizeof(int32_t)) == 0, "n = %zu", n);
        out_free(&a);
        out_free(&e);
    }
    /* nlist and nprobe beyond n are clamped. */
    hl_knn_params p = params(3, 1, HL_KNN_IVF);
    p.nlist = 1000;
    p.nprobe = 1000;
    int L, P;
    hl_knn_ivf_shape(&p, 7, &L, &P);
    ck_assert_int_eq(L, 7);
    ck_assert_int_eq(P, 7);
    out a = run_self(x, 7, d, &p);
    ck_assert_int_eq(a.st, HL_OK);
    check_wellformed(x, 7, d, 3, &a);
    out_free(&a);
    hl_knn_ivf_shape(&p, 0, &L, &P);
    ck_assert_int_eq(L, 0);
    ck_assert_int_eq(P, 0);
    free(x);
}
END_TEST

START_TEST(test_duplicates)
{
    /* Every row appears twice (rows i and i + m): each finds itself and its twin at the top. */
    size_t m = 1500, n = 2 * m, d = 16;
    float *x = unit_blobs(m, d, 100, 0.3f, 75);
    x = realloc(x, n * d * sizeof(float));
    memcpy(x + m * d, x, m * d * sizeof(float));
    hl_knn_params p = params(5, 2, HL_KNN_IVF);
    out a = run_self(x, n, d, &p);
    ck_assert_int_eq(a.st, HL_OK);
    check_wellformed(x, n, d, 5, &a);
    for (size_t i = 0; i < n; i++) {
        /* Twins may differ in the last bit (sgemm), so either may come first. */
        int32_t lo = (int32_t)(i % m), hi = (int32_t)(i % m + m);
        int32_t a0 = a.idx[i * 5], a1 = a.idx[i * 5 + 1];
        ck_assert_msg((a0 == lo && a1 == hi) || (a0 == hi && a1 == lo), "row %zu: %d %d", i, a0,
                      a1);
        ck_assert(fabsf(a.sim[i * 5] - a.sim[i * 5 + 1]) < 1e-6f);
    }
    out_free(&a);
    /* All rows identical: the answer is the k lowest ids, as in the exact search. */
    size_t n2 = 500;
    float *y = malloc(n2 * d * sizeof(float));
    for (size_t i = 0; i < n2; i++)
        memcpy(y + i * d, x, d * sizeof(float));
    p.nlist = 8;
    out b = run_self(y, n2, d, &p);
    ck_assert_int_eq(b.st, HL_OK);
    check_wellformed(y, n2, d, 5, &b);
    out_free(&b);
    free(y);
    free(x);
}
END_TEST

START_TEST(test_zero_rows)
{
    size_t n = 3000, d = 12;
    float *x = unit_blobs(n, d, 60, 0.3f, 76);
    for (size_t i = 7; i < n; i += 97)
        memset(x + i * d, 0, d * sizeof(float));
    hl_knn_params p = params(6, 2, HL_KNN_IVF);
    out a = run_self(x, n, d, &p);
    out e = exact_of(x, n, d, 6);
    ck_assert_int_eq(a.st, HL_OK);
    check_wellformed(x, n, d, 6, &a);
    for (size_t i = 7; i < n; i += 97)
        ck_assert_msg(memcmp(a.idx + i * 6, e.idx + i * 6, 6 * sizeof(int32_t)) == 0 &&
                          a.sim[i * 6] == 0.0f,
                      "zero row %zu", i);
    ck_assert(hl_knn_recall(a.idx, e.idx, n, 6) > RECALL_CLUSTERED);
    out_free(&a);
    out_free(&e);
    free(x);
}
END_TEST

typedef struct hook_state {
    int polls, stop_after, reports, bad;
    double last;
} hook_state;

static int stop_hook(void *ud)
{
    hook_state *h = ud;
    return __atomic_add_fetch(&h->polls, 1, __ATOMIC_SEQ_CST) > h->stop_after;
}

static void progress_hook(void *ud, hl_stage stage, int level, double f)
{
    hook_state *h = ud;
    if (stage != HL_STAGE_KNN || level != 2 || f < h->last || f > 1.0)
        h->bad++;
    h->last = f;
    h->reports++;
}

static hl_status run_hooked(const float *x, size_t n, size_t d, int threads, hook_state *h)
{
    hl_knn_params p = params(10, threads, HL_KNN_IVF);
    p.level = 2;
    p.cancel.should_stop = stop_hook;
    p.cancel.ud = h;
    p.progress.report = progress_hook;
    p.progress.ud = h;
    out o = run_self(x, n, d, &p);
    out_free(&o);
    return o.st;
}

START_TEST(test_cancel_and_progress)
{
    size_t n = 6000, d = 16;
    float *x = unit_blobs(n, d, 200, 0.3f, 77);
    for (int threads = 1; threads <= 2; threads++) {
        hook_state h = {0, 1 << 30, 0, 0, 0.0};
        ck_assert_int_eq(run_hooked(x, n, d, threads, &h), HL_OK);
        ck_assert_int_gt(h.polls, 5);
        ck_assert_int_gt(h.reports, 3);
        ck_assert_int_eq(h.bad, 0);
        ck_assert(h.last == 1.0);
        int full = h.polls;
        hook_state now = {0, 0, 0, 0, 0.0};
        ck_assert_int_eq(run_hooked(x, n, d, threads, &now), HL_CANCELED);
        ck_assert_int_le(now.polls, 2 * threads + 2);
        /* Cancels at several points along the way: all stop early with HL_CANCELED. */
        for (int at = 1; at < full; at += full / 5 + 1) {
            hook_state later = {0, at, 0, 0, 0.0};
            ck_assert_int_eq(run_hooked(x, n, d, threads, &later), HL_CANCELED);
            ck_assert_int_lt(later.polls, full + 2 * threads + 2);
            ck_assert_int_eq(later.bad, 0);
        }
    }
    free(x);
}
END_TEST

START_TEST(test_arena_limits)
{
    size_t n = 2500, d = 8;
    float *x = unit_blobs(n, d, 80, 0.3f, 78);
    int32_t *idx = malloc(n * 10 * sizeof(int32_t));
    float *sim = malloc(n * 10 * sizeof(float));
    for (int threads = 1; threads <= 3; threads++) {
        hl_knn_params p = params(10, threads, HL_KNN_IVF);
        size_t need = hl_knn_ivf_plan(n, d, &p);
        ck_assert_uint_gt(need, 0);
        ck_assert_uint_le(need, hl_knn_self_plan(n, d, &p));
        unsigned char *buf = malloc(need);
        hl_arena a;
        size_t small[3] = {need / 2, need / 10, 0};
        for (int c = 0; c < 3; c++) {
            hl_arena_init_view(&a, buf, small[c]);
            ck_assert_int_eq(hl_knn_ivf(x, n, d, &p, &a, idx, sim), HL_NOMEM);
            ck_assert_uint_eq(hl_arena_mark(&a), 0);
        }
        hl_arena_init_view(&a, buf, need);
        ck_assert_int_eq(hl_knn_ivf(x, n, d, &p, &a, idx, sim), HL_OK);
        ck_assert_uint_eq(hl_arena_mark(&a), 0);
        free(buf);
    }
    /* O(n) memory: 1M x 128 plans well under 1 GB (an n x n matrix would be 4 TB), and
     * doubling n at most doubles the plan, plus a little. */
    hl_knn_params p = params(10, 2, HL_KNN_IVF);
    size_t m1 = hl_knn_ivf_plan(1000000, 128, &p), m2 = hl_knn_ivf_plan(2000000, 128, &p);
    ck_assert_uint_lt(m1, (size_t)1 << 30);
    ck_assert_uint_lt(m2, m1 * 21 / 10);
    free(idx);
    free(sim);
    free(x);
}
END_TEST

START_TEST(test_invalid_args)
{
    float x[4 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0};
    int32_t idx[4 * 2];
    float sim[4 * 2];
    hl_knn_params p = params(2, 1, HL_KNN_IVF);
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, hl_knn_ivf_plan(4, 3, &p)), HL_OK);
    ck_assert_int_eq(hl_knn_ivf(x, 4, 3, NULL, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_ivf(x, 4, 0, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_ivf(NULL, 4, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_ivf(x, 4, 3, &p, NULL, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_ivf(x, 4, 3, &p, &a, NULL, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_ivf(x, 4, 3, &p, &a, idx, NULL), HL_INVAL);
    ck_assert_int_eq(hl_knn_ivf(x, (size_t)INT32_MAX + 1, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_self(x, 4, 3, NULL, &a, idx, sim), HL_INVAL);
    p.k = 0;
    ck_assert_int_eq(hl_knn_ivf(x, 4, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_self(x, 4, 3, &p, &a, idx, sim), HL_INVAL);
    p.k = 2;
    ck_assert_uint_eq(hl_arena_mark(&a), 0);
    ck_assert_int_eq(hl_knn_ivf(x, 0, 3, &p, &a, NULL, NULL), HL_OK);
    ck_assert_int_eq(hl_knn_ivf(x, 4, 3, &p, &a, idx, sim), HL_OK);
    ck_assert_int_eq(idx[0], 0);
    ck_assert_int_eq(idx[1], 3);
    hl_arena_deinit(&a);
    /* Cluster parameters: bad method, negative nlist or nprobe. */
    hl_cluster_params cp;
    hl_cluster_params_default(&cp);
    ck_assert_int_eq(cp.knn, HL_KNN_AUTO);
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_params_check(&cp, &err), HL_OK);
    cp.knn = (hl_knn_method)7;
    ck_assert_int_eq(hl_cluster_params_check(&cp, &err), HL_INVAL);
    ck_assert_str_eq(err.field, "knn");
    cp.knn = HL_KNN_IVF;
    cp.knn_nlist = -1;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_params_check(&cp, &err), HL_INVAL);
    ck_assert_str_eq(err.field, "nlist");
    cp.knn_nlist = 0;
    cp.knn_nprobe = -2;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_params_check(&cp, &err), HL_INVAL);
    ck_assert_str_eq(err.field, "nprobe");
}
END_TEST

START_TEST(test_choose_and_names)
{
    hl_knn_params p;
    hl_knn_params_default(&p);
    ck_assert_int_eq(p.method, HL_KNN_AUTO);
    ck_assert_int_eq(hl_knn_choose(&p, HL_KNN_EXACT_MAX_DEFAULT), HL_KNN_EXACT);
    ck_assert_int_eq(hl_knn_choose(&p, HL_KNN_EXACT_MAX_DEFAULT + 1), HL_KNN_IVF);
    p.exact_max = 100;
    ck_assert_int_eq(hl_knn_choose(&p, 100), HL_KNN_EXACT);
    ck_assert_int_eq(hl_knn_choose(&p, 101), HL_KNN_IVF);
    p.method = HL_KNN_EXACT;
    ck_assert_int_eq(hl_knn_choose(&p, 1000000), HL_KNN_EXACT);
    p.method = HL_KNN_IVF;
    ck_assert_int_eq(hl_knn_choose(&p, 3), HL_KNN_IVF);
    const char *names[3] = {"auto", "exact", "ivf"};
    for (int m = 0; m < 3; m++) {
        hl_knn_method got = HL_KNN_IVF;
        ck_assert_str_eq(hl_knn_method_name((hl_knn_method)m), names[m]);
        ck_assert_int_eq(hl_knn_method_parse(names[m], &got), HL_OK);
        ck_assert_int_eq(got, m);
    }
    hl_knn_method got = HL_KNN_IVF;
    ck_assert_int_eq(hl_knn_method_parse("hnsw", &got), HL_INVAL);
    ck_assert_int_eq(hl_knn_method_parse("", &got), HL_INVAL);
    ck_assert_int_eq(hl_knn_method_parse(NULL, &got), HL_INVAL);
    ck_assert_int_eq(got, HL_KNN_IVF);
    ck_assert_str_eq(hl_knn_method_name((hl_knn_method)9), "?");
    /* AUTO below the limit is the exact search, bit for bit; above it the IVF. */
    size_t n = 900, d = 8;
    float *x = unit_blobs(n, d, 40, 0.3f, 79);
    hl_knn_params q = params(5, 2, HL_KNN_AUTO);
    q.exact_max = n;
    out a = run_self(x, n, d, &q);
    out e = exact_of(x, n, d, 5);
    ck_assert(memcmp(a.idx, e.idx, n * 5 * sizeof(int32_t)) == 0);
    ck_assert(memcmp(a.sim, e.sim, n * 5 * sizeof(float)) == 0);
    q.exact_max = n - 1;
    out b = run_self(x, n, d, &q);
    q.method = HL_KNN_IVF;
    out c = run_self(x, n, d, &q);
    ck_assert(memcmp(b.idx, c.idx, n * 5 * sizeof(int32_t)) == 0);
    out_free(&a);
    out_free(&b);
    out_free(&c);
    out_free(&e);
    free(x);
}
END_TEST

START_TEST(test_cluster_levels)
{
    /* Forced IVF, and AUTO with a low limit: level 0 runs the IVF, and a level with no more
     * nodes than the limit runs the exact search. */
    size_t n = 4000, d = 16;
    float *x = unit_blobs(n, d, 200, 0.3f, 80);
    hl_cluster_params cp;
    hl_cluster_params_default(&cp);
    cp.n_threads = 2;
    cp.knn_exact_max = 1000;
    hl_error err;
    hl_error_clear(&err);
    hl_clustering *c = NULL;
    ck_assert_int_eq(hl_cluster_run(x, n, d, NULL, &cp, &c, &err), HL_OK);
    ck_assert_int_ge(c->n_levels, 2);
    for (int l = 0; l < c->n_levels; l++)
        ck_assert_int_eq(c->levels[l].knn, c->levels[l].nodes > 1000 ? HL_KNN_IVF : HL_KNN_EXACT);
    ck_assert_int_eq(c->levels[0].knn, HL_KNN_IVF);
    ck_assert_int_eq(c->levels[c->n_levels - 1].knn, HL_KNN_EXACT);
    hl_clustering_free(c);
    cp.knn = HL_KNN_EXACT;
    ck_assert_int_eq(hl_cluster_run(x, n, d, NULL, &cp, &c, &err), HL_OK);
    for (int l = 0; l < c->n_levels; l++)
        ck_assert_int_eq(c->levels[l].knn, HL_KNN_EXACT);
    hl_clustering_free(c);
    free(x);
}
END_TEST

static void blas_single_thread(void)
{
    openblas_set_num_threads(1);
}

Suite *knn_ivf_suite(void);

Suite *knn_ivf_suite(void)
{
    Suite *s = suite_create("knn_ivf");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, blas_single_thread, NULL);
    tcase_add_test(tc, test_recall_clustered);
    tcase_add_test(tc, test_recall_random);
    tcase_add_test(tc, test_one_probe_keeps_own_cell);
    tcase_add_test(tc, test_threads_identical);
    tcase_add_test(tc, test_small_n);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_zero_rows);
    tcase_add_test(tc, test_cancel_and_progress);
    tcase_add_test(tc, test_arena_limits);
    tcase_add_test(tc, test_invalid_args);
    tcase_add_test(tc, test_choose_and_names);
    tcase_add_test(tc, test_cluster_levels);
    suite_add_tcase(s, tc);
    return s;
}
