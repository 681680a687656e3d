/*
 * test_graph.c - hl_graph_from_knn (edge filtering, slot layout, weights), the density
 * estimates (hl_graph_density, hl_density_truth against spec section 2.3) and arena sizing.
 */
#include "hl/arena.h"
#include "hl/graph.h"
#include "hl/rng.h"

#include <check.h>

#include "test_util.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

Suite *graph_suite(void);

/* A graph with its own arena (sized by hl_graph_plan). */
typedef struct owned_graph {
    hl_arena arena;
    hl_graph g;
} owned_graph;

static void og_init(owned_graph *og, size_t n, int k)
{
    ck_assert_int_eq(hl_arena_init(&og->arena, hl_graph_plan(n, k)), HL_OK);
    ck_assert_int_eq(hl_graph_init(&og->g, n, k, &og->arena), HL_OK);
}

static void og_free(owned_graph *og)
{
    hl_arena_deinit(&og->arena);
}

/* Random kNN rows (n x k): self usually in column 0, sometimes elsewhere or absent; distinct
 * other ids; similarities descending in [-0.6, 1] with some exact zeros; rows of small
 * graphs padded with -1 like hl_knn_exact does when n < k. */
static void random_knn(hl_rng *r, size_t n, int k, int32_t *idx, float *sim)
{
    int32_t *perm = malloc(n * sizeof(int32_t));
    EXPECT(perm != NULL);
    for (size_t i = 0; i < n; i++) {
        int32_t *ir = idx + i * (size_t)k;
        float *sr = sim + i * (size_t)k;
        for (size_t j = 0; j < n; j++)
            perm[j] = (int32_t)j;
        hl_rng_shuffle_i32(r, perm, n);
        int self_pos = -1;
        uint64_t u = hl_rng_below(r, 10);
        if (u < 7)
            self_pos = 0;
        else if (u < 9)
            self_pos = (int)hl_rng_below(r, (uint64_t)k);
        size_t avail = n - 1; /* other ids */
        size_t pi = 0;
        float s = 1.0f;
        for (int c = 0; c < k; c++) {
            if (c == self_pos) {
                ir[c] = (int32_t)i;
            } else {
                while (pi < n && (size_t)perm[pi] == i)
                    pi++;
                if (pi < n && avail > 0) {
                    ir[c] = perm[pi++];
                    avail--;
                } else {
                    ir[c] = -1;
                }
            }
            uint64_t z = hl_rng_below(r, 12);
            s = fmaxf(s - (float)hl_rng_uniform(r) * 0.35f, -1.0f);
            sr[c] = z == 0 ? 0.0f : s;
            if (ir[c] == -1)
                sr[c] = -INFINITY; /* hl_knn_exact pads with -1 / -inf */
        }
    }
    free(perm);
}

/* The rule of hl/graph.h, written out: keep j in kNN order unless it is padding, the node
 * itself or has sim <= 0; at most k-1. */
static int ref_row(const int32_t *ir, const float *sr, int k, size_t i, int32_t *nb, float *sm)
{
    int deg = 0;
    for (int c = 0; c < k; c++) {
        if (ir[c] < 0 || (size_t)ir[c] == i || sr[c] <= 0.0f)
            continue;
        if (deg == k - 1)
            break;
        nb[deg] = ir[c];
        sm[deg] = sr[c];
        deg++;
    }
    return deg;
}

static void check_graph_matches(const hl_graph *g, const int32_t *idx, const float *sim, int k)
{
    int w = g->width;
    ck_assert_int_eq(w, k - 1);
    int32_t nb[64];
    float sm[64];
    size_t edges = 0;
    for (size_t i = 0; i < g->n; i++) {
        int deg = ref_row(idx + i * (size_t)k, sim + i * (size_t)k, k, i, nb, sm);
        EXPECT_MSG(g->deg[i] == deg, "row %zu: deg %d, expected %d", i, g->deg[i], deg);
        edges += (size_t)deg;
        double sum = 0.0, wsum = 0.0;
        for (int s = 0; s < deg; s++)
            sum += sm[s];
        for (int s = 0; s < w; s++) {
            size_t at = i * (size_t)w + (size_t)s;
            if (s < deg) {
                EXPECT(g->nbr[at] == nb[s]);
                EXPECT(g->sim[at] == sm[s]);
                EXPECT_MSG(fabs(g->w[at] - sm[s] / sum) <= 1e-6 * (sm[s] / sum) + 1e-12,
                           "row %zu slot %d: w %g, expected %g", i, s, (double)g->w[at],
                           sm[s] / sum);
                EXPECT(g->w[at] > 0.0f);
                wsum += g->w[at];
            } else {
                EXPECT(g->nbr[at] == -1);
                EXPECT(g->sim[at] == 0.0f);
                EXPECT(g->w[at] == 0.0f);
            }
        }
        if (deg > 0)
            EXPECT_MSG(fabs(wsum - 1.0) < 1e-5, "row %zu: weights sum to %.9g", i, wsum);
    }
    ck_assert_uint_eq(hl_graph_edges(g), edges);
}

START_TEST(test_from_knn_hand)
{
    enum { N = 5, K = 4 };
    /* row 0: self first, a zero and a negative similarity dropped;
     * row 1: self absent -> only the first k-1 = 3 kept;
     * row 2: self in the middle, padding at the end;
     * row 3: nothing positive -> zero degree;
     * row 4: only itself and padding -> zero degree. */
    const int32_t idx[N * K] = {0,      2, 3, 1, /**/ 0, 2,  3,  4, /**/ 1, 2, 3, -1,
                                /**/ 3, 0, 1, 2, /**/ 4, -1, -1, -1};
    const float sim[N * K] = {1.0f, 0.5f,  0.0f, -0.2f,     /**/ 0.9f, 0.6f,      0.3f,
                              0.1f, 0.8f,  1.0f, 0.2f,      -INFINITY, /**/ 1.0f, -0.1f,
                              0.0f, -0.5f, 1.0f, -INFINITY, -INFINITY, -INFINITY};
    owned_graph og;
    og_init(&og, N, K);
    hl_graph *g = &og.g;
    /* Stale contents must be overwritten. */
    memset(g->nbr, 0x55, N * (K - 1) * sizeof(int32_t));
    memset(g->sim, 0x55, N * (K - 1) * sizeof(float));
    memset(g->w, 0x55, N * (K - 1) * sizeof(float));
    memset(g->deg, 0x55, N * sizeof(int32_t));
    hl_graph_from_knn(g, idx, sim, K);

    ck_assert_int_eq(g->deg[0], 1);
    ck_assert_int_eq(g->nbr[0], 2);
    EXPECT(g->sim[0] == 0.5f && g->w[0] == 1.0f);
    ck_assert_int_eq(g->nbr[1], -1);
    ck_assert_int_eq(g->nbr[2], -1);

    ck_assert_int_eq(g->deg[1], 3);
    ck_assert_int_eq(g->nbr[3], 0);
    ck_assert_int_eq(g->nbr[4], 2);
    ck_assert_int_eq(g->nbr[5], 3);
    ck_assert_float_eq_tol(g->w[3], 0.9f / 1.8f, 1e-7f);
    ck_assert_float_eq_tol(g->w[4], 0.6f / 1.8f, 1e-7f);
    ck_assert_float_eq_tol(g->w[5], 0.3f / 1.8f, 1e-7f);

    ck_assert_int_eq(g->deg[2], 2);
    ck_assert_int_eq(g->nbr[6], 1);
    ck_assert_int_eq(g->nbr[7], 3);
    ck_assert_int_eq(g->nbr[8], -1);
    ck_assert_float_eq_tol(g->w[6], 0.8f, 1e-6f);
    ck_assert_float_eq_tol(g->w[7], 0.2f, 1e-6f);

    ck_assert_int_eq(g->deg[3], 0);
    ck_assert_int_eq(g->deg[4], 0);
    for (int s = 9; s < 15; s++) {
        ck_assert_int_eq(g->nbr[s], -1);
        EXPECT(g->w[s] == 0.0f && g->sim[s] == 0.0f);
    }
    ck_assert_uint_eq(hl_graph_edges(g), 6);
    check_graph_matches(g, idx, sim, K);
    og_free(&og);
}
END_TEST

START_TEST(test_from_knn_random)
{
    hl_rng r;
    hl_rng_seed(&r, 7);
    for (int rep = 0; rep < 200; rep++) {
        size_t n = 1 + (size_t)hl_rng_below(&r, 60);
        int k = 2 + (int)hl_rng_below(&r, 15);
        int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
        float *sim = malloc(n * (size_t)k * sizeof(float));
        EXPECT(idx != NULL && sim != NULL);
        random_knn(&r, n, k, idx, sim);
        owned_graph og;
        og_init(&og, n, k);
        hl_graph_from_knn(&og.g, idx, sim, k);
        ck_assert_uint_eq(og.g.n, n);
        check_graph_matches(&og.g, idx, sim, k);
        og_free(&og);
        free(idx);
        free(sim);
    }
}
END_TEST

/* Density: mean over kept in-edges of sim * (2 * score - 1); score = sim when NULL. */
static void ref_density(const hl_graph *g, const float *score, double *out)
{
    size_t w = (size_t)g->width;
    for (size_t i = 0; i < g->n; i++) {
        double acc = 0.0;
        for (int s = 0; s < g->deg[i]; s++) {
            double sm = g->sim[i * w + (size_t)s];
            double sc = score != NULL ? score[i * w + (size_t)s] : sm;
            acc += sm * (2.0 * sc - 1.0);
        }
        out[i] = g->deg[i] > 0 ? acc / g->deg[i] : 0.0;
    }
}

START_TEST(test_density)
{
    hl_rng r;
    hl_rng_seed(&r, 11);
    for (int rep = 0; rep < 100; rep++) {
        size_t n = 1 + (size_t)hl_rng_below(&r, 80);
        int k = 2 + (int)hl_rng_below(&r, 12);
        size_t w = (size_t)(k - 1);
        int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
        float *sim = malloc(n * (size_t)k * sizeof(float));
        float *score = malloc(n * w * sizeof(float));
        float *dens = malloc(n * sizeof(float));
        double *want = malloc(n * sizeof(double));
        EXPECT(idx && sim && score && dens && want);
        random_knn(&r, n, k, idx, sim);
        owned_graph og;
        og_init(&og, n, k);
        hl_graph_from_knn(&og.g, idx, sim, k);
        for (size_t s = 0; s < n * w; s++)
            score[s] = (float)hl_rng_uniform(&r);
        for (int with_score = 0; with_score < 2; with_score++) {
            const float *sc = with_score ? score : NULL;
            for (size_t i = 0; i < n; i++)
                dens[i] = NAN;
            hl_graph_density(&og.g, sc, dens);
            ref_density(&og.g, sc, want);
            for (size_t i = 0; i < n; i++) {
                if (og.g.deg[i] == 0)
                    EXPECT_MSG(dens[i] == 0.0f, "zero-degree node %zu: %g", i, (double)dens[i]);
                else
                    EXPECT_MSG(fabs(dens[i] - want[i]) < 1e-5, "node %zu: %g vs %g", i,
                               (double)dens[i], want[i]);
            }
        }
        og_free(&og);
        free(idx);
        free(sim);
        free(score);
        free(dens);
        free(want);
    }
}
END_TEST

START_TEST(test_density_hand)
{
    enum { N = 3, K = 3 };
    const int32_t idx[N * K] = {0, 1, 2, /**/ 1, 0, 2, /**/ 2, 0, 1};
    const float sim[N * K] = {1.0f, 0.8f, 0.4f, /**/ 1.0f, 0.8f, -0.3f, /**/ 1.0f, 0.0f, -0.1f};
    owned_graph og;
    og_init(&og, N, K);
    hl_graph_from_knn(&og.g, idx, sim, K);
    float score[N * (K - 1)] = {0.9f, 0.25f, /**/ 1.0f, 0.7f, /**/ 0.3f, 0.6f};
    float dens[N];
    hl_graph_density(&og.g, score, dens);
    /* node 0: (0.8 * 0.8 + 0.4 * -0.5) / 2; node 1: only edge 0 kept: 0.8 * 1; node 2: none */
    ck_assert_float_eq_tol(dens[0], (0.8f * 0.8f + 0.4f * -0.5f) / 2.0f, 1e-6f);
    ck_assert_float_eq_tol(dens[1], 0.8f, 1e-6f);
    EXPECT(dens[2] == 0.0f);
    hl_graph_density(&og.g, NULL, dens);
    ck_assert_float_eq_tol(dens[0], (0.8f * 0.6f + 0.4f * -0.2f) / 2.0f, 1e-6f);
    ck_assert_float_eq_tol(dens[1], 0.8f * 0.6f, 1e-6f);
    EXPECT(dens[2] == 0.0f);
    og_free(&og);
}
END_TEST

/* Spec 2.3 written out: over every listed neighbour of row i except i itself and padding,
 * including negative similarities (which the graph drops), the first k-1 of them,
 * sum sim * (+1 same label / -1 otherwise), divided by k-1. */
static double ref_density_truth(const int32_t *ir, const float *sr, int k, size_t i,
                                const int32_t *labels)
{
    double acc = 0.0;
    int used = 0;
    for (int c = 0; c < k; c++) {
        if (ir[c] == -1 || (size_t)ir[c] == i)
            continue;
        if (used == k - 1)
            break;
        double s = sr[c];
        acc += labels[ir[c]] == labels[i] ? s : -s;
        used++;
    }
    return acc / (double)(k - 1);
}

START_TEST(test_density_truth)
{
    hl_rng r;
    hl_rng_seed(&r, 13);
    for (int rep = 0; rep < 150; rep++) {
        size_t n = 1 + (size_t)hl_rng_below(&r, 80);
        int k = 2 + (int)hl_rng_below(&r, 12);
        int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
        float *sim = malloc(n * (size_t)k * sizeof(float));
        int32_t *lab = malloc(n * sizeof(int32_t));
        float *dens = malloc(n * sizeof(float));
        EXPECT(idx && sim && lab && dens);
        random_knn(&r, n, k, idx, sim);
        uint64_t classes = 1 + hl_rng_below(&r, 6);
        for (size_t i = 0; i < n; i++)
            lab[i] = (int32_t)hl_rng_below(&r, classes) - 3;
        hl_density_truth(idx, sim, n, k, lab, dens);
        for (size_t i = 0; i < n; i++) {
            double want = ref_density_truth(idx + i * (size_t)k, sim + i * (size_t)k, k, i, lab);
            EXPECT_MSG(fabs(dens[i] - want) < 1e-6, "rep %d node %zu: %g vs %g", rep, i,
                       (double)dens[i], want);
        }
        free(idx);
        free(sim);
        free(lab);
        free(dens);
    }
}
END_TEST

START_TEST(test_density_truth_hand)
{
    enum { N = 5, K = 4 };
    /* row 0: self first; neighbours 1 (same), 2 (other, negative sim: still counted), 3 (same);
     * row 1: self absent: the first k-1 = 3 listed neighbours count, the last one does not;
     * row 2: padding after one neighbour: still divided by k-1;
     * row 3: self in the middle;
     * row 4: only itself: 0. */
    const int32_t idx[N * K] = {0,      1, 2, 3, /**/ 0, 2,  3,  4, /**/ 2, 1, -1, -1,
                                /**/ 1, 3, 0, 2, /**/ 4, -1, -1, -1};
    const float sim[N * K] = {1.0f,    0.5f,  -0.25f, 0.125f,    /**/ 0.5f, 0.25f,     0.125f,
                              0.0625f, 1.0f,  0.75f,  -INFINITY, -INFINITY, /**/ 0.5f, 1.0f,
                              0.25f,   -0.5f, 1.0f,   -INFINITY, -INFINITY, -INFINITY};
    const int32_t lab[N] = {7, 7, 9, 7, 7};
    float dens[N];
    hl_density_truth(idx, sim, N, K, lab, dens);
    ck_assert_float_eq_tol(dens[0], (0.5f + 0.25f + 0.125f) / 3.0f, 1e-7f);
    ck_assert_float_eq_tol(dens[1], (0.5f - 0.25f + 0.125f) / 3.0f, 1e-7f);
    ck_assert_float_eq_tol(dens[2], -0.75f / 3.0f, 1e-7f);
    ck_assert_float_eq_tol(dens[3], (0.5f + 0.25f + 0.5f) / 3.0f, 1e-7f);
    EXPECT(dens[4] == 0.0f);
}
END_TEST

START_TEST(test_plan_and_init)
{
    ck_assert_int_eq(hl_graph_init(&(hl_graph){0}, 4, 1, &(hl_arena){0}), HL_INVAL);
    ck_assert_int_eq(hl_graph_init(&(hl_graph){0}, 4, 0, &(hl_arena){0}), HL_INVAL);
    const size_t ns[] = {0, 1, 2, 3, 17, 100, 1001};
    const int ks[] = {2, 3, 10, 31};
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++) {
        for (size_t b = 0; b < sizeof(ks) / sizeof(ks[0]); b++) {
            size_t n = ns[a];
            int k = ks[b];
            size_t w = (size_t)(k - 1);
            size_t plan = hl_graph_plan(n, k);
            size_t raw = 3 * n * w * 4 + (n > 0 ? n : 1) * 4; /* bytes without any padding */
            ck_assert_uint_ge(plan, raw);
            unsigned char *buf = malloc(plan + 64);
            EXPECT(buf != NULL);
            /* The plan covers every alignment of the arena's base. */
            for (size_t off = 0; off < 64; off += 1 + off / 4) {
                hl_arena ar;
                hl_graph g;
                hl_arena_init_view(&ar, buf + off, plan);
                EXPECT_MSG(hl_graph_init(&g, n, k, &ar) == HL_OK, "n=%zu k=%d off=%zu", n, k, off);
                ck_assert_uint_le(ar.used, plan);
                ck_assert_uint_eq(g.n, n);
                ck_assert_int_eq(g.width, k - 1);
                /* 64-byte aligned, disjoint, inside the arena. */
                uintptr_t lo = (uintptr_t)(buf + off), hi = lo + plan;
                uintptr_t p[4] = {(uintptr_t)g.nbr, (uintptr_t)g.sim, (uintptr_t)g.w,
                                  (uintptr_t)g.deg};
                size_t sz[4] = {n * w * 4, n * w * 4, n * w * 4, (n > 0 ? n : 1) * 4};
                for (int x = 0; x < 4; x++) {
                    EXPECT(p[x] % 64 == 0);
                    EXPECT(p[x] >= lo && p[x] + sz[x] <= hi);
                    for (int y = 0; y < x; y++)
                        EXPECT(p[x] >= p[y] + sz[y] || p[y] >= p[x] + sz[x]);
                }
            }
            /* Without room for the arrays themselves: HL_NOMEM, whatever the alignment. */
            for (size_t off = 0; off < 64; off += 16) {
                hl_arena ar;
                hl_graph g;
                hl_arena_init_view(&ar, buf + off, raw - 1);
                ck_assert_int_eq(hl_graph_init(&g, n, k, &ar), HL_NOMEM);
            }
            free(buf);
        }
    }
    /* A too-small owned arena, and an exhausted one. */
    hl_arena ar;
    hl_graph g;
    ck_assert_int_eq(hl_arena_init(&ar, hl_graph_plan(100, 10) / 2), HL_OK);
    ck_assert_int_eq(hl_graph_init(&g, 100, 10, &ar), HL_NOMEM);
    hl_arena_deinit(&ar);
    ck_assert_int_eq(hl_arena_init(&ar, hl_graph_plan(50, 5)), HL_OK);
    ck_assert_int_eq(hl_graph_init(&g, 50, 5, &ar), HL_OK);
    ck_assert_int_eq(hl_graph_init(&g, 50, 5, &ar), HL_NOMEM);
    hl_arena_deinit(&ar);
}
END_TEST

/* A graph built in an arena of exactly its plan can be filled completely (ASan/valgrind
 * would flag an undersized array). */
START_TEST(test_init_then_fill)
{
    hl_rng r;
    hl_rng_seed(&r, 3);
    size_t n = 257;
    int k = 9;
    int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
    float *sim = malloc(n * (size_t)k * sizeof(float));
    EXPECT(idx && sim);
    random_knn(&r, n, k, idx, sim);
    owned_graph og;
    og_init(&og, n, k);
    hl_graph_from_knn(&og.g, idx, sim, k);
    check_graph_matches(&og.g, idx, sim, k);
    og_free(&og);
    free(idx);
    free(sim);
}
END_TEST

Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("from_knn");
    tcase_add_test(tc, test_from_knn_hand);
    tcase_add_test(tc, test_from_knn_random);
    tcase_add_test(tc, test_init_then_fill);
    suite_add_tcase(s, tc);
    tc = tcase_create("density");
    tcase_add_test(tc, test_density_hand);
    tcase_add_test(tc, test_density);
    tcase_add_test(tc, test_density_truth_hand);
    tcase_add_test(tc, test_density_truth);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_add_test(tc, test_plan_and_init);
    suite_add_tcase(s, tc);
    return s;
}
