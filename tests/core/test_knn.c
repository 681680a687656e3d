/*
 * test_knn.c - exact kNN against a brute-force double-precision reference; ties, padding,
 * zero rows, query-vs-database, thread-count invariance, cancel, arena limits, bad args.
 *
 * Self search (q == db, same pointer) and query-vs-database search take different code paths
 * in knn.c, so most checks run both: `self` passes the same pointer, `copy` a separate copy
 * of the same rows. Sizes go up to a few thousand rows so that every path crosses several
 * tiles (knn.c uses 768-row blocks; anything from 512 to 1024 keeps that true), with even and
 * odd block counts, ending on a partial tile or not. The reference is O(nq * ndb * d) in
 * double, so dimensions stay small except where they matter.
 */
#include "test_util.h"

#include "hl/arena.h"
#include "hl/knn.h"
#include "hl/mat.h"

#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Similarities must match the reference this closely; indices may differ only on ties. */
#define SIM_TOL 1e-5
#define TIE_TOL 1e-6

typedef struct cand {
    double s;
    int32_t j;
} cand;

/* The reference order: similarity descending, then database index ascending. */
static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->s != b->s)
        return a->s > b->s ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

static double dot_d(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t t = 0; t < d; t++)
        s += (double)a[t] * (double)b[t];
    return s;
}

/*
 * The reference: for every query, the best min(k, ndb) database rows scored in double, in
 * the reference order, found by plain insertion into a sorted list. Computed once per data
 * set (it is the O(nq * ndb * d) part) and checked against several results.
 */
typedef struct ref {
    const float *q, *db;
    size_t nq, ndb, d;
    int k;
    cand *top; /* nq x k; entries past ndb are unused */
} ref;

static void ref_row(const ref *R, size_t r, cand *top)
{
    size_t len = 0, cap = (size_t)R->k;
    for (size_t j = 0; j < R->ndb; j++) {
        cand c = {dot_d(R->q + r * R->d, R->db + j * R->d, R->d), (int32_t)j};
        if (len == cap && cand_cmp(&c, &top[len - 1]) >= 0)
            continue;
        size_t pos = len < cap ? len++ : cap - 1;
        while (pos > 0 && cand_cmp(&c, &top[pos - 1]) < 0) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos] = c;
    }
}

static ref ref_build(const float *q, size_t nq, const float *db, size_t ndb, size_t d, int k)
{
    ref R = {q, db, nq, ndb, d, k, malloc(nq * (size_t)k * sizeof(cand) + 1)};
    for (size_t r = 0; r < nq; r++)
        ref_row(&R, r, R.top + r * (size_t)k);
    return R;
}

/* Checks one output row against the reference row `c`. */
static void check_row(const ref *R, size_t r, const cand *c, const int32_t *idx, const float *sim)
{
    for (int t = 0; t < R->k; t++) {
        if ((size_t)t >= R->ndb) {
            EXPECT_MSG(idx[t] == -1 && isinf(sim[t]) && sim[t] < 0,
                       "row %zu col %d: expected padding, got %d %g", r, t, idx[t], (double)sim[t]);
            continue;
        }
        int32_t j = idx[t];
        EXPECT_MSG(j >= 0 && (size_t)j < R->ndb, "row %zu col %d: index %d", r, t, j);
        for (int u = 0; u < t; u++)
            EXPECT_MSG(idx[u] != j, "row %zu: index %d twice", r, j);
        double s = (double)sim[t];
        double true_s = dot_d(R->q + r * R->d, R->db + (size_t)j * R->d, R->d);
        EXPECT_MSG(fabs(s - true_s) <= SIM_TOL, "row %zu col %d: sim %.9g, true %.9g", r, t, s,
                   true_s);
        EXPECT_MSG(fabs(s - c[t].s) <= SIM_TOL, "row %zu col %d: sim %.9g, reference %.9g", r, t, s,
                   c[t].s);
        /* A different index is only acceptable where the reference itself ties. */
        EXPECT_MSG(j == c[t].j || fabs(true_s - c[t].s) <= TIE_TOL,
                   "row %zu col %d: index %d (sim %.9g), reference %d (sim %.9g)", r, t, j, true_s,
                   c[t].j, c[t].s);
        if (t > 0)
            EXPECT_MSG(sim[t - 1] > sim[t] || (sim[t - 1] == sim[t] && idx[t - 1] < j),
                       "row %zu col %d: order (%g,%d) before (%g,%d)", r, t, (double)sim[t - 1],
                       idx[t - 1], (double)sim[t], j);
    }
}

static void check_ref(const ref *R, const int32_t *idx, const float *sim)
{
    size_t k = (size_t)R->k;
    for (size_t r = 0; r < R->nq; r++)
        check_row(R, r, R->top + r * k, idx + r * k, sim + r * k);
}

typedef struct result {
    int32_t *idx;
    float *sim;
    hl_status st;
} result;

static void result_free(result *res)
{
    free(res->idx);
    free(res->sim);
}

/* Runs hl_knn_exact with an arena of exactly the planned size. */
static result run_knn(const float *q, size_t nq, const float *db, size_t ndb, size_t d, int k,
                      int threads)
{
    hl_knn_params p;
    hl_knn_params_default(&p);
    p.k = k;
    p.n_threads = threads;
    result res;
    res.idx = malloc(nq * (size_t)k * sizeof(int32_t) + 1);
    res.sim = malloc(nq * (size_t)k * sizeof(float) + 1);
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, hl_knn_exact_plan(nq, ndb, d, &p)), HL_OK);
    res.st = hl_knn_exact(q, nq, db, ndb, d, &p, &a, res.idx, res.sim);
    ck_assert_uint_eq(hl_arena_mark(&a), 0);
    hl_arena_deinit(&a);
    return res;
}

/* Runs the search of R's problem from `q` (R->q or a copy of it) and checks the result. */
static void run_and_check_ref(const ref *R, const float *q, int threads)
{
    result res = run_knn(q, R->nq, R->db, R->ndb, R->d, R->k, threads);
    ck_assert_msg(res.st == HL_OK, "nq=%zu ndb=%zu d=%zu k=%d: %s", R->nq, R->ndb, R->d, R->k,
                  hl_status_name(res.st));
    check_ref(R, res.idx, res.sim);
    result_free(&res);
}

static void run_and_check(const float *q, size_t nq, const float *db, size_t ndb, size_t d, int k,
                          int threads)
{
    ref R = ref_build(q, nq, db, ndb, d, k);
    run_and_check_ref(&R, q, threads);
    free(R.top);
}

static float *unit_randn(size_t n, size_t d, uint64_t seed)
{
    float *x = tu_randn(n, d, seed);
    hl_l2norm_rows(x, x, n, d);
    return x;
}

static float *unit_blobs(size_t n, size_t d, size_t c, float sigma, uint64_t seed)
{
    int32_t *lab;
    float *x = tu_blobs(n, d, c, sigma, seed, &lab);
    free(lab);
    hl_l2norm_rows(x, x, n, d);
    return x;
}

static float *copy_rows(const float *x, size_t n, size_t d)
{
    float *y = malloc(n * d * sizeof(float) + 1);
    memcpy(y, x, n * d * sizeof(float));
    return y;
}

/* Self search (same pointer) and the same rows through the query-vs-database path. */
static void check_self_and_copy(const float *x, size_t n, size_t d, int k, int threads)
{
    ref R = ref_build(x, n, x, n, d, k);
    run_and_check_ref(&R, x, threads);
    float *y = copy_rows(x, n, d);
    run_and_check_ref(&R, y, threads);
    free(y);
    free(R.top);
}

START_TEST(test_random_shapes)
{
    static const struct {
        size_t n, d;
        int k;
    } cfg[] = {
        {1, 8, 1},    {1, 8, 5},      {5, 8, 5},     {3, 4, 10},      {10, 3, 10},
        {50, 16, 10}, {700, 32, 10},  {1100, 3, 20}, {1200, 128, 10}, {2400, 8, 10},
        {2049, 5, 1}, {1025, 16, 33}, {1536, 8, 10},
    };
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        float *x = unit_randn(cfg[c].n, cfg[c].d, 100 + c);
        check_self_and_copy(x, cfg[c].n, cfg[c].d, cfg[c].k, 2);
        free(x);
    }
}
END_TEST

START_TEST(test_clustered)
{
    /* Tight blobs: many high, close similarities, so the merge sees many replacements. */
    float *x = unit_blobs(2400, 16, 30, 0.05f, 7);
    check_self_and_copy(x, 2400, 16, 10, 2);
    free(x);
}
END_TEST

START_TEST(test_query_vs_database)
{
    float *q = unit_randn(300, 40, 11);
    float *db = unit_randn(2100, 40, 12);
    run_and_check(q, 300, db, 2100, 40, 10, 2);
    run_and_check(db, 2100, q, 300, 40, 10, 3);
    run_and_check(q, 300, db, 4, 40, 10, 2);  /* fewer database rows than k: padding */
    run_and_check(q, 300, db, 10, 40, 10, 1); /* exactly k */
    run_and_check(q, 1, db, 2100, 40, 50, 2);
    free(q);
    free(db);
}
END_TEST

START_TEST(test_empty_database)
{
    float *q = unit_randn(7, 5, 13);
    run_and_check(q, 7, q + 35, 0, 5, 3, 2);
    free(q);
}
END_TEST

/*
 * Rows are ±0.25 in d = 16, so every row has norm exactly 1 and every product and partial sum
 * is a multiple of 1/16: sgemm computes each similarity exactly in any summation order. With
 * rows drawn from a few patterns, exact ties are everywhere and the index order must match
 * the reference exactly.
 */
static float *sign_rows(size_t n, size_t patterns, uint64_t seed)
{
    hl_rng r;
    hl_rng_seed(&r, seed);
    float *pat = malloc(patterns * 16 * sizeof(float));
    for (size_t i = 0; i < patterns * 16; i++)
        pat[i] = (hl_rng_next(&r) & 1) ? 0.25f : -0.25f;
    float *x = malloc(n * 16 * sizeof(float));
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * 16, pat + hl_rng_below(&r, patterns) * 16, 16 * sizeof(float));
    free(pat);
    return x;
}

/* With exact similarities the result must equal the reference bit for bit. */
static void check_exact_ties(const ref *R, const float *q, int threads)
{
    result res = run_knn(q, R->nq, R->db, R->ndb, 16, R->k, threads);
    ck_assert_int_eq(res.st, HL_OK);
    for (size_t o = 0; o < R->nq * (size_t)R->k; o++) {
        const cand *c = &R->top[o];
        EXPECT_MSG(res.idx[o] == c->j && (double)res.sim[o] == c->s,
                   "row %zu col %zu: got (%d, %.9g), want (%d, %.9g)", o / (size_t)R->k,
                   o % (size_t)R->k, res.idx[o], (double)res.sim[o], c->j, c->s);
    }
    result_free(&res);
}

START_TEST(test_duplicates_tie_by_index)
{
    float *x = sign_rows(2000, 40, 21);
    float *y = copy_rows(x, 2000, 16);
    ref R = ref_build(x, 2000, x, 2000, 16, 10);
    for (int threads = 1; threads <= 3; threads++) {
        check_exact_ties(&R, x, threads);
        check_exact_ties(&R, y, threads);
    }
    free(R.top);
    /* Many patterns: a handful of copies each, so a row's list fills from several blocks
     * and exact ties at lower similarities decide the k-th places across blocks. */
    float *w = sign_rows(2000, 300, 23);
    R = ref_build(w, 2000, w, 2000, 16, 20);
    for (int threads = 1; threads <= 2; threads++)
        check_exact_ties(&R, w, threads);
    free(R.top);
    free(w);
    /* Few patterns and large k: whole rows of exact ties, many tied at the k-th place. */
    float *z = sign_rows(1500, 3, 22);
    R = ref_build(z, 1500, z, 1500, 16, 40);
    check_exact_ties(&R, z, 2);
    free(R.top);
    free(z);
    free(y);
    free(x);
}
END_TEST

START_TEST(test_duplicates_random)
{
    /* Copies of a few random unit rows: ties up to float rounding, checked by index sets. */
    size_t n = 1800, d = 32;
    float *pool = unit_randn(25, d, 23);
    float *x = malloc(n * d * sizeof(float));
    hl_rng r;
    hl_rng_seed(&r, 24);
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * d, pool + hl_rng_below(&r, 25) * d, d * sizeof(float));
    check_self_and_copy(x, n, d, 10, 2);
    free(pool);
    free(x);
}
END_TEST

START_TEST(test_zero_vectors)
{
    size_t n = 1300, d = 20;
    float *x = unit_randn(n, d, 31);
    for (size_t i = 0; i < n; i += 97)
        memset(x + i * d, 0, d * sizeof(float));
    check_self_and_copy(x, n, d, 10, 2);
    /* A zero row has similarity exactly 0 to everything: its list is 0..k-1 in order. */
    result res = run_knn(x, n, x, n, d, 10, 2);
    ck_assert_int_eq(res.st, HL_OK);
    for (size_t i = 0; i < n; i += 97) {
        for (int t = 0; t < 10; t++) {
            ck_assert_int_eq(res.idx[i * 10 + (size_t)t], t);
            ck_assert(res.sim[i * 10 + (size_t)t] == 0.0f);
        }
    }
    result_free(&res);
    free(x);
}
END_TEST

static void check_thread_invariance(const float *q, size_t nq, const float *db, size_t ndb,
                                    size_t d, int k)
{
    result base = run_knn(q, nq, db, ndb, d, k, 1);
    ck_assert_int_eq(base.st, HL_OK);
    for (int threads = 2; threads <= 4; threads++) {
        result res = run_knn(q, nq, db, ndb, d, k, threads);
        ck_assert_int_eq(res.st, HL_OK);
        size_t m = nq * (size_t)k;
        ck_assert_msg(memcmp(res.idx, base.idx, m * sizeof(int32_t)) == 0,
                      "indices differ with %d threads", threads);
        ck_assert_msg(memcmp(res.sim, base.sim, m * sizeof(float)) == 0,
                      "similarities differ with %d threads", threads);
        result_free(&res);
    }
    result_free(&base);
}

START_TEST(test_threads_identical)
{
    size_t n = 3100, d = 48;
    float *x = unit_blobs(n, d, 40, 0.2f, 41);
    check_thread_invariance(x, n, x, n, d, 10);
    float *y = copy_rows(x, n, d);
    check_thread_invariance(y, n, x, n, d, 10);
    check_thread_invariance(y, 1700, x, n, d, 7);
    free(y);
    float *z = sign_rows(2500, 30, 42);
    check_thread_invariance(z, 2500, z, 2500, 16, 10);
    free(z);
    free(x);
}
END_TEST

typedef struct hook_state {
    int polls;
    int stop_after;
    int reports;
    double last;
    int bad;
} hook_state;

static int stop_hook(void *ud)
{
    hook_state *h = ud;
    int n = __atomic_add_fetch(&h->polls, 1, __ATOMIC_SEQ_CST);
    return n > h->stop_after;
}

static void progress_hook(void *ud, hl_stage stage, int level, double f)
{
    hook_state *h = ud;
    if (stage != HL_STAGE_KNN || level != 3 || f < h->last || f > 1.0)
        h->bad++;
    h->last = f;
    h->reports++;
}

static hl_status run_hooked(const float *q, const float *db, size_t n, size_t d, int threads,
                            hook_state *h)
{
    hl_knn_params p;
    hl_knn_params_default(&p);
    p.n_threads = threads;
    p.level = 3;
    p.cancel.should_stop = stop_hook;
    p.cancel.ud = h;
    p.progress.report = progress_hook;
    p.progress.ud = h;
    int32_t *idx = malloc(n * 10 * sizeof(int32_t));
    float *sim = malloc(n * 10 * sizeof(float));
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, hl_knn_exact_plan(n, n, d, &p)), HL_OK);
    hl_status st = hl_knn_exact(q, n, db, n, d, &p, &a, idx, sim);
    ck_assert_uint_eq(hl_arena_mark(&a), 0);
    hl_arena_deinit(&a);
    free(idx);
    free(sim);
    return st;
}

START_TEST(test_cancel_and_progress)
{
    size_t n = 4000, d = 16;
    float *x = unit_randn(n, d, 51);
    float *y = copy_rows(x, n, d);
    const float *queries[2] = {x, y};
    for (int path = 0; path < 2; path++) {
        for (int threads = 1; threads <= 2; threads++) {
            hook_state h = {0, 1 << 30, 0, 0.0, 0};
            ck_assert_int_eq(run_hooked(queries[path], x, n, d, threads, &h), HL_OK);
            ck_assert_int_gt(h.polls, 2); /* polled per tile, several tiles */
            ck_assert_int_gt(h.reports, 0);
            ck_assert_int_eq(h.bad, 0);
            ck_assert(h.last == 1.0);
            int full = h.polls;

            hook_state now = {0, 0, 0, 0.0, 0};
            ck_assert_int_eq(run_hooked(queries[path], x, n, d, threads, &now), HL_CANCELED);
            ck_assert_int_le(now.polls, 2 * threads + 2);

            hook_state later = {0, 2, 0, 0.0, 0};
            ck_assert_int_eq(run_hooked(queries[path], x, n, d, threads, &later), HL_CANCELED);
            ck_assert_int_lt(later.polls, full);
            ck_assert_int_eq(later.bad, 0);
        }
    }
    free(y);
    free(x);
}
END_TEST

START_TEST(test_arena_too_small)
{
    size_t n = 600, d = 8;
    float *x = unit_randn(n, d, 61);
    int32_t *idx = malloc(n * 10 * sizeof(int32_t));
    float *sim = malloc(n * 10 * sizeof(float));
    for (int path = 0; path < 2; path++) {
        const float *q = path == 0 ? x : x + d; /* second: query-vs-database path */
        size_t nq = path == 0 ? n : n - 1;
        for (int threads = 1; threads <= 3; threads++) {
            hl_knn_params p;
            hl_knn_params_default(&p);
            p.n_threads = threads;
            size_t need = hl_knn_exact_plan(nq, n, d, &p);
            ck_assert_uint_gt(need, 0);
            unsigned char *buf = malloc(need);
            hl_arena a;
            /* Too small by any amount that the allocations cannot absorb: HL_NOMEM, and the
             * arena is left as it was. */
            size_t small[3] = {need / 2, 1, 0};
            for (int c = 0; c < 3; c++) {
                hl_arena_init_view(&a, buf, small[c]);
                ck_assert_int_eq(hl_knn_exact(q, nq, x, n, d, &p, &a, idx, sim), HL_NOMEM);
                ck_assert_uint_eq(hl_arena_mark(&a), 0);
            }
            hl_arena_init_view(&a, buf, need);
            ck_assert_int_eq(hl_knn_exact(q, nq, x, n, d, &p, &a, idx, sim), HL_OK);
            ck_assert_uint_eq(hl_arena_mark(&a), 0);
            ck_assert_uint_le(a.peak, need);
            hl_arena_init_view(&a, NULL, 0);
            ck_assert_int_eq(hl_knn_exact(q, nq, x, n, d, &p, &a, idx, sim), HL_NOMEM);
            free(buf);
        }
    }
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
    unsigned char buf[1 << 16];
    hl_arena a;
    hl_arena_init_view(&a, buf, sizeof(buf));
    hl_knn_params p;
    hl_knn_params_default(&p);
    ck_assert_int_eq(p.k, 10);
    ck_assert_int_eq(p.n_threads, 1);
    p.k = 2;
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, 3, NULL, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, 0, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(NULL, 4, x, 4, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, 4, NULL, 4, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, 3, &p, NULL, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, 3, &p, &a, NULL, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, 3, &p, &a, idx, NULL), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, (size_t)INT32_MAX + 1, x, 4, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, 4, x, (size_t)INT32_MAX + 1, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, (size_t)INT32_MAX + 1, &p, &a, idx, sim), HL_INVAL);
    p.k = 0;
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, 3, &p, &a, idx, sim), HL_INVAL);
    p.k = -3;
    ck_assert_int_eq(hl_knn_exact(x, 4, x, 4, 3, &p, &a, idx, sim), HL_INVAL);
    ck_assert_uint_eq(hl_arena_mark(&a), 0);
    /* No queries: nothing to do, whatever the output pointers. */
    p.k = 2;
    ck_assert_int_eq(hl_knn_exact(x, 0, x, 4, 3, &p, &a, NULL, NULL), HL_OK);
    /* n == 1: the point is its own only neighbour, the rest is padding. */
    hl_arena big;
    ck_assert_int_eq(hl_arena_init(&big, hl_knn_exact_plan(1, 1, 3, &p)), HL_OK);
    ck_assert_int_eq(hl_knn_exact(x, 1, x, 1, 3, &p, &big, idx, sim), HL_OK);
    hl_arena_deinit(&big);
    ck_assert_int_eq(idx[0], 0);
    ck_assert_float_eq_tol(sim[0], 1.0f, 1e-6f);
    ck_assert_int_eq(idx[1], -1);
    ck_assert(isinf(sim[1]) && sim[1] < 0);
}
END_TEST

START_TEST(test_recall)
{
    const int32_t exact[2 * 3] = {0, 1, 2, 3, 4, -1};
    const int32_t same[2 * 3] = {2, 1, 0, 4, 3, -1};
    const int32_t half[2 * 3] = {0, 9, 8, 7, 4, 6};
    const int32_t none[2 * 3] = {5, 6, 7, 8, 9, 10};
    ck_assert_double_eq_tol(hl_knn_recall(exact, exact, 2, 3), 1.0, 1e-12);
    ck_assert_double_eq_tol(hl_knn_recall(same, exact, 2, 3), 1.0, 1e-12);
    ck_assert_double_eq_tol(hl_knn_recall(half, exact, 2, 3), 2.0 / 5.0, 1e-12);
    ck_assert_double_eq_tol(hl_knn_recall(none, exact, 2, 3), 0.0, 1e-12);
    /* -1 padding in the exact list is not a neighbour; all padding counts as perfect. */
    const int32_t pad[3] = {-1, -1, -1};
    ck_assert_double_eq_tol(hl_knn_recall(none, pad, 1, 3), 1.0, 1e-12);
    ck_assert_double_eq_tol(hl_knn_recall(exact, exact, 0, 3), 1.0, 1e-12);
}
END_TEST

/* As the service does at start-up: BLAS runs single-threaded inside our own tasks. */
static void blas_single_thread(void)
{
    openblas_set_num_threads(1);
}

Suite *knn_suite(void);

Suite *knn_suite(void)
{
    Suite *s = suite_create("knn");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, blas_single_thread, NULL);
    tcase_add_test(tc, test_random_shapes);
    tcase_add_test(tc, test_clustered);
    tcase_add_test(tc, test_query_vs_database);
    tcase_add_test(tc, test_empty_database);
    tcase_add_test(tc, test_duplicates_tie_by_index);
    tcase_add_test(tc, test_duplicates_random);
    tcase_add_test(tc, test_zero_vectors);
    tcase_add_test(tc, test_threads_identical);
    tcase_add_test(tc, test_cancel_and_progress);
    tcase_add_test(tc, test_arena_too_small);
    tcase_add_test(tc, test_invalid_args);
    tcase_add_test(tc, test_recall);
    suite_add_tcase(s, tc);
    return s;
}
