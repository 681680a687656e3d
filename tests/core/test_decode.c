/*
 * test_decode.c - hl_decode_parents (spec 4.2 steps 3-4) and hl_decode_roots (step 5):
 * the parent rule on hand-made and random graphs, roots against a naive walk, cycle and
 * range detection, and the forest property of the decode on random graphs.
 */
#include "hl/decode.h"
#include "hl/graph.h"
#include "hl/rng.h"

#include <check.h>

#include "test_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

Suite *decode_suite(void);

/* A graph whose arrays the test owns (the struct is plain data). */
static hl_graph graph_alloc(size_t n, int width)
{
    hl_graph g;
    g.n = n;
    g.width = width;
    size_t slots = n * (size_t)width + 1;
    g.nbr = malloc(slots * sizeof(int32_t));
    g.sim = malloc(slots * sizeof(float));
    g.w = malloc(slots * sizeof(float));
    g.deg = malloc((n + 1) * sizeof(int32_t));
    EXPECT(g.nbr && g.sim && g.w && g.deg);
    for (size_t s = 0; s < slots; s++) {
        g.nbr[s] = -1;
        g.sim[s] = 0.0f;
        g.w[s] = 0.0f;
    }
    memset(g.deg, 0, (n + 1) * sizeof(int32_t));
    return g;
}

static void graph_free(hl_graph *g)
{
    free(g->nbr);
    free(g->sim);
    free(g->w);
    free(g->deg);
}

static void set_row(hl_graph *g, size_t i, int deg, const int32_t *nb, const float *sim)
{
    g->deg[i] = deg;
    for (int s = 0; s < deg; s++) {
        g->nbr[i * (size_t)g->width + (size_t)s] = nb[s];
        g->sim[i * (size_t)g->width + (size_t)s] = sim[s];
    }
}

START_TEST(test_parents_hand)
{
    /* width 4; densities: node 0 is the densest. */
    hl_graph g = graph_alloc(7, 4);
    const float dens[7] = {0.9f, 0.5f, 0.5f, 0.2f, 0.1f, 0.7f, 0.0f};
    float score[7 * 4];
    for (int s = 0; s < 7 * 4; s++)
        score[s] = NAN; /* unused slots hold NaN */
    /* node 1: node 2 has equal density (not strictly denser) with the best score; node 5 is
     * denser with score 0.6; node 0 denser with 0.8 -> 0 wins. */
    set_row(&g, 1, 3, (int32_t[]){2, 5, 0}, (float[]){0.9f, 0.8f, 0.7f});
    score[4] = 0.99f;
    score[5] = 0.6f;
    score[6] = 0.8f;
    /* node 2: equal best scores 0.75 on slots 1 and 2 -> first (node 5). */
    set_row(&g, 2, 4, (int32_t[]){3, 5, 0, 1}, (float[]){0.9f, 0.8f, 0.7f, 0.6f});
    score[8] = 0.99f; /* node 3 is less dense */
    score[9] = 0.75f;
    score[10] = 0.75f;
    score[11] = 0.74f; /* node 1: equal density */
    /* node 3: a score exactly tau is not enough; the other is denser but below tau. */
    set_row(&g, 3, 2, (int32_t[]){1, 2}, (float[]){0.9f, 0.8f});
    score[12] = 0.5f;
    score[13] = 0.25f;
    /* node 4: one candidate just above tau. */
    set_row(&g, 4, 2, (int32_t[]){6, 3}, (float[]){0.9f, 0.8f});
    score[16] = 1.0f; /* node 6 is less dense */
    score[17] = 0.5000001f;
    /* node 0: the densest node never gets a parent. */
    set_row(&g, 0, 2, (int32_t[]){5, 1}, (float[]){0.9f, 0.8f});
    score[0] = 1.0f;
    score[1] = 1.0f;
    /* node 5: only the densest neighbour, NaN score -> no parent. */
    set_row(&g, 5, 1, (int32_t[]){0}, (float[]){0.9f});
    score[20] = NAN;
    /* node 6: zero degree (slots hold garbage ids that must be ignored). */
    g.nbr[24] = 0;
    score[24] = 1.0f;

    int32_t parent[7];
    memset(parent, 0x7f, sizeof(parent));
    size_t links = hl_decode_parents(&g, score, dens, 0.5f, parent);
    ck_assert_int_eq(parent[0], -1);
    ck_assert_int_eq(parent[1], 0);
    ck_assert_int_eq(parent[2], 5);
    ck_assert_int_eq(parent[3], -1);
    ck_assert_int_eq(parent[4], 3);
    ck_assert_int_eq(parent[5], -1);
    ck_assert_int_eq(parent[6], -1);
    ck_assert_uint_eq(links, 3);

    /* tau below every score: node 3 now takes node 1 (0.5 > 0.25, first of the two). */
    links = hl_decode_parents(&g, score, dens, 0.0f, parent);
    ck_assert_int_eq(parent[3], 1);
    ck_assert_int_eq(parent[4], 3);
    ck_assert_uint_eq(links, 4);

    /* tau above every score: nothing links. */
    links = hl_decode_parents(&g, score, dens, 1.0f, parent);
    ck_assert_uint_eq(links, 0);
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(parent[i], -1);
    graph_free(&g);
}
END_TEST

START_TEST(test_parents_sim_threshold)
{
    /* NULL score: the edge similarity is the score. */
    hl_graph g = graph_alloc(4, 3);
    const float dens[4] = {0.1f, 0.4f, 0.8f, 0.3f};
    set_row(&g, 0, 3, (int32_t[]){1, 2, 3}, (float[]){0.6f, 0.85f, 0.95f});
    set_row(&g, 1, 2, (int32_t[]){2, 0}, (float[]){0.7f, 0.99f});
    set_row(&g, 3, 2, (int32_t[]){2, 1}, (float[]){0.7f, 0.7f});
    int32_t parent[4];
    size_t links = hl_decode_parents(&g, NULL, dens, 0.65f, parent);
    ck_assert_int_eq(parent[0], 3); /* highest similarity among denser nodes */
    ck_assert_int_eq(parent[1], 2); /* node 0 is less dense */
    ck_assert_int_eq(parent[2], -1);
    ck_assert_int_eq(parent[3], 2); /* tie -> first slot */
    ck_assert_uint_eq(links, 3);
    links = hl_decode_parents(&g, NULL, dens, 0.9f, parent);
    ck_assert_int_eq(parent[0], 3);
    ck_assert_int_eq(parent[1], -1);
    ck_assert_int_eq(parent[3], -1);
    ck_assert_uint_eq(links, 1);
    /* With scores the similarity is ignored. */
    float score[12] = {0.9f, 0.1f, 0.1f, 0.1f, 0.9f, 0, 0, 0, 0, 0.2f, 0.3f, 0};
    links = hl_decode_parents(&g, score, dens, 0.15f, parent);
    ck_assert_int_eq(parent[0], 1);
    ck_assert_int_eq(parent[1], -1);
    ck_assert_int_eq(parent[3], 1);
    ck_assert_uint_eq(links, 2);
    graph_free(&g);
}
END_TEST

/* A random graph: distinct neighbours != i, random degrees (some zero), quantised
 * similarities, scores and densities so that ties happen. */
static hl_graph random_graph(hl_rng *r, size_t n, int width, float *score, float *dens)
{
    hl_graph g = graph_alloc(n, width);
    for (size_t i = 0; i < n; i++) {
        int maxdeg = n - 1 < (size_t)width ? (int)(n - 1) : width;
        int deg = (int)hl_rng_below(r, (uint64_t)maxdeg + 1);
        g.deg[i] = deg;
        for (int s = 0; s < deg; s++) {
            int32_t j;
            int dup;
            do {
                j = (int32_t)hl_rng_below(r, n);
                dup = (size_t)j == i;
                for (int t = 0; t < s; t++)
                    dup |= g.nbr[i * (size_t)width + (size_t)t] == j;
            } while (dup);
            g.nbr[i * (size_t)width + (size_t)s] = j;
            g.sim[i * (size_t)width + (size_t)s] = (float)(1 + hl_rng_below(r, 8)) / 8.0f;
        }
    }
    for (size_t s = 0; s < n * (size_t)width; s++)
        score[s] = (float)hl_rng_below(r, 9) / 8.0f;
    uint64_t levels = 1 + hl_rng_below(r, 2 * n);
    for (size_t i = 0; i < n; i++)
        dens[i] = (float)hl_rng_below(r, levels) / (float)levels - 0.5f;
    return g;
}

/* The rule, written as "max over eligible slots, then the first slot attaining it". */
/* The decode's order: strictly denser, or equally dense with a smaller index. */
static int denser(const float *dens, int32_t j, int32_t i)
{
    return dens[j] > dens[i] || (dens[j] == dens[i] && j < i);
}

static int32_t ref_parent(const hl_graph *g, const float *score, const float *dens, float tau,
                          size_t i)
{
    size_t w = (size_t)g->width;
    const float *sc = score != NULL ? score + i * w : g->sim + i * w;
    float best = -INFINITY;
    int any = 0;
    for (int s = 0; s < g->deg[i]; s++) {
        int32_t j = g->nbr[i * w + (size_t)s];
        if (denser(dens, j, i) && sc[s] > tau) {
            any = 1;
            best = fmaxf(best, sc[s]);
        }
    }
    if (!any)
        return -1;
    for (int s = 0; s < g->deg[i]; s++) {
        int32_t j = g->nbr[i * w + (size_t)s];
        if (denser(dens, j, i) && sc[s] > tau && sc[s] == best)
            return j;
    }
    return -2; /* unreachable */
}

/* Naive root: follow parents (at most n steps), or -3 on a cycle / bad id. */
static int32_t naive_root(const int32_t *parent, size_t n, size_t i)
{
    size_t cur = i;
    for (size_t steps = 0; steps <= n; steps++) {
        if (parent[cur] == -1)
            return (int32_t)cur;
        if (parent[cur] < -1 || (size_t)parent[cur] >= n)
            return -3;
        cur = (size_t)parent[cur];
    }
    return -3;
}

START_TEST(test_parents_random)
{
    hl_rng r;
    hl_rng_seed(&r, 17);
    for (int rep = 0; rep < 300; rep++) {
        size_t n = 1 + (size_t)hl_rng_below(&r, 120);
        int width = 1 + (int)hl_rng_below(&r, 12);
        float *score = malloc((n * (size_t)width + 1) * sizeof(float));
        float *dens = malloc(n * sizeof(float));
        int32_t *parent = malloc(n * sizeof(int32_t));
        int32_t *root = malloc(n * sizeof(int32_t));
        EXPECT(score && dens && parent && root);
        hl_graph g = random_graph(&r, n, width, score, dens);
        float tau = (float)hl_rng_below(&r, 9) / 8.0f - 0.0625f * (float)hl_rng_below(&r, 2);
        for (int with_score = 0; with_score < 2; with_score++) {
            const float *sc = with_score ? score : NULL;
            size_t links = hl_decode_parents(&g, sc, dens, tau, parent);
            size_t want_links = 0;
            for (size_t i = 0; i < n; i++) {
                int32_t want = ref_parent(&g, sc, dens, tau, i);
                EXPECT_MSG(parent[i] == want, "rep %d node %zu: parent %d, expected %d", rep, i,
                           parent[i], want);
                want_links += want >= 0;
            }
            ck_assert_uint_eq(links, want_links);
            ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_OK);
            size_t roots = 0;
            for (size_t i = 0; i < n; i++) {
                EXPECT(root[i] == naive_root(parent, n, i));
                roots += parent[i] == -1;
            }
            /* a forest: every link removes one tree */
            ck_assert_uint_eq(roots + links, n);
        }
        graph_free(&g);
        free(score);
        free(dens);
        free(parent);
        free(root);
    }
}
END_TEST

/* Property: whatever the graph, densities and scores, the parents form a forest in which
 * (density, -index) strictly increases towards the root and each parent is an in-neighbour. */
START_TEST(test_parents_never_cycle)
{
    hl_rng r;
    hl_rng_seed(&r, 23);
    for (int rep = 0; rep < 200; rep++) {
        size_t n = 2 + (size_t)hl_rng_below(&r, 400);
        int width = 1 + (int)hl_rng_below(&r, 16);
        float *score = malloc((n * (size_t)width + 1) * sizeof(float));
        float *dens = malloc(n * sizeof(float));
        int32_t *parent = malloc(n * sizeof(int32_t));
        int32_t *root = malloc(n * sizeof(int32_t));
        EXPECT(score && dens && parent && root);
        hl_graph g = random_graph(&r, n, width, score, dens);
        if (rep % 4 == 0) { /* few density levels: many equal densities */
            for (size_t i = 0; i < n; i++)
                dens[i] = (float)hl_rng_below(&r, 3);
        }
        size_t links = hl_decode_parents(&g, score, dens, -1.0f, parent);
        ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_OK);
        size_t n_links = 0;
        for (size_t i = 0; i < n; i++) {
            if (parent[i] < 0)
                continue;
            n_links++;
            int32_t p = parent[i];
            EXPECT(denser(dens, p, (int32_t)i));
            int found = 0;
            for (int s = 0; s < g.deg[i]; s++)
                found |= g.nbr[i * (size_t)width + (size_t)s] == p;
            EXPECT(found);
            EXPECT_MSG(naive_root(parent, n, i) >= 0, "cycle through node %zu", i);
            EXPECT(root[i] == naive_root(parent, n, i));
            EXPECT(parent[root[i]] == -1);
        }
        ck_assert_uint_eq(links, n_links);
        graph_free(&g);
        free(score);
        free(dens);
        free(parent);
        free(root);
    }
}
END_TEST

START_TEST(test_roots_random_forests)
{
    hl_rng r;
    hl_rng_seed(&r, 29);
    for (int rep = 0; rep < 300; rep++) {
        size_t n = (size_t)hl_rng_below(&r, 600);
        int32_t *order = malloc((n + 1) * sizeof(int32_t));
        int32_t *parent = malloc((n + 1) * sizeof(int32_t));
        int32_t *root = malloc((n + 1) * sizeof(int32_t));
        EXPECT(order && parent && root);
        for (size_t i = 0; i < n; i++)
            order[i] = (int32_t)i;
        hl_rng_shuffle_i32(&r, order, n);
        /* Node order[t] takes a parent among order[0..t-1] (or none): a forest whose ids are
         * in no particular order, with deep chains when `chain` is high. */
        double p_root = hl_rng_uniform(&r) * 0.3;
        double chain = hl_rng_uniform(&r);
        for (size_t t = 0; t < n; t++) {
            int32_t v = order[t];
            if (t == 0 || hl_rng_uniform(&r) < p_root)
                parent[v] = -1;
            else if (hl_rng_uniform(&r) < chain)
                parent[v] = order[t - 1];
            else
                parent[v] = order[hl_rng_below(&r, t)];
        }
        for (size_t i = 0; i < n; i++)
            root[i] = 12345;
        ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_OK);
        for (size_t i = 0; i < n; i++)
            EXPECT(root[i] == naive_root(parent, n, i));
        free(order);
        free(parent);
        free(root);
    }
}
END_TEST

/* The first level's merge equals the general merge on counts of 1 and a copy of x, bit for
 * bit, and writes only the first m rows of cmean. */
START_TEST(test_merge_first_equals_merge)
{
    hl_rng r;
    hl_rng_seed(&r, 31);
    for (int rep = 0; rep < 100; rep++) {
        size_t n = 1 + (size_t)hl_rng_below(&r, 400), d = 1 + (size_t)hl_rng_below(&r, 9);
        int32_t *parent = malloc(n * sizeof(int32_t)), *root = malloc(n * sizeof(int32_t));
        int32_t *cnt_a = malloc(n * sizeof(int32_t)), *cnt_b = malloc(n * sizeof(int32_t));
        int32_t *id_a = malloc(n * sizeof(int32_t)), *id_b = malloc(n * sizeof(int32_t));
        float *xa = malloc(n * d * sizeof(float)), *xb = malloc(n * d * sizeof(float));
        float *ca = malloc(n * d * sizeof(float)), *cb = malloc(n * d * sizeof(float));
        EXPECT(parent && root && cnt_a && cnt_b && id_a && id_b && xa && xb && ca && cb);
        double p_root = 0.05 + hl_rng_uniform(&r) * 0.5;
        for (size_t i = 0; i < n; i++) /* parents point backwards: always a forest */
            parent[i] = i == 0 || hl_rng_uniform(&r) < p_root ? -1 : (int32_t)hl_rng_below(&r, i);
        for (size_t i = 0; i < n * d; i++)
            xa[i] = xb[i] = ca[i] = (float)(hl_rng_uniform(&r) * 2.0 - 1.0);
        for (size_t i = 0; i < n; i++)
            cnt_a[i] = 1;
        for (size_t i = 0; i < n * d; i++)
            cb[i] = NAN; /* rows past m must stay untouched */
        ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_OK);
        size_t ma = hl_decode_merge(parent, root, n, d, xa, ca, cnt_a, id_a);
        size_t mb = hl_decode_merge_first(parent, root, n, d, xb, cb, cnt_b, id_b);
        ck_assert_uint_eq(ma, mb);
        ck_assert_mem_eq(id_a, id_b, n * sizeof(int32_t));
        ck_assert_mem_eq(cnt_a, cnt_b, ma * sizeof(int32_t));
        ck_assert_mem_eq(ca, cb, ma * d * sizeof(float));
        ck_assert_mem_eq(xa, xb, ma * d * sizeof(float));
        for (size_t i = ma * d; i < n * d; i++)
            EXPECT(isnan(cb[i]));
        free(parent);
        free(root);
        free(cnt_a);
        free(cnt_b);
        free(id_a);
        free(id_b);
        free(xa);
        free(xb);
        free(ca);
        free(cb);
    }
}
END_TEST

/* Long chains in both id directions: a quadratic walk would time out here. */
START_TEST(test_roots_long_chains)
{
    size_t n = 300000;
    int32_t *parent = malloc(n * sizeof(int32_t));
    int32_t *root = malloc(n * sizeof(int32_t));
    EXPECT(parent && root);
    for (size_t i = 0; i < n; i++)
        parent[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
    ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_OK);
    for (size_t i = 0; i < n; i++)
        EXPECT(root[i] == (int32_t)(n - 1));
    for (size_t i = 0; i < n; i++)
        parent[i] = (int32_t)i - 1;
    ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_OK);
    for (size_t i = 0; i < n; i++)
        EXPECT(root[i] == 0);
    /* Two interleaved chains: even ids to 0, odd ids to 1. */
    for (size_t i = 0; i < n; i++)
        parent[i] = i < 2 ? -1 : (int32_t)(i - 2);
    ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_OK);
    for (size_t i = 0; i < n; i++)
        EXPECT(root[i] == (int32_t)(i % 2));
    /* The same chain closed into a cycle at the far end. */
    for (size_t i = 0; i < n; i++)
        parent[i] = i + 1 < n ? (int32_t)(i + 1) : 0;
    ck_assert_int_eq(hl_decode_roots(parent, n, root), HL_INTERNAL);
    free(parent);
    free(root);
}
END_TEST

START_TEST(test_roots_bad_input)
{
    int32_t root[8];
    ck_assert_int_eq(hl_decode_roots(NULL, 0, root), HL_OK);
    /* self loop */
    int32_t p1[1] = {0};
    ck_assert_int_eq(hl_decode_roots(p1, 1, root), HL_INTERNAL);
    int32_t p1b[3] = {-1, 1, 0};
    ck_assert_int_eq(hl_decode_roots(p1b, 3, root), HL_INTERNAL);
    /* two-cycle */
    int32_t p2[4] = {-1, 2, 1, 0};
    ck_assert_int_eq(hl_decode_roots(p2, 4, root), HL_INTERNAL);
    /* a tree whose walk runs into a cycle it is not part of */
    int32_t p3[8] = {-1, 0, 5, 2, 3, 6, 4, 3};
    ck_assert_int_eq(hl_decode_roots(p3, 8, root), HL_INTERNAL);
    /* the cycle is reached only after valid trees were resolved */
    int32_t p4[8] = {-1, 0, 1, 2, -1, 6, 7, 5};
    ck_assert_int_eq(hl_decode_roots(p4, 8, root), HL_INTERNAL);
    /* ids out of range: n, far beyond, and negatives other than -1 */
    int32_t p5[4] = {-1, 0, 4, 1};
    ck_assert_int_eq(hl_decode_roots(p5, 4, root), HL_INTERNAL);
    int32_t p6[4] = {-1, INT32_MAX, 0, 1};
    ck_assert_int_eq(hl_decode_roots(p6, 4, root), HL_INTERNAL);
    int32_t p7[4] = {-1, 0, -2, 1};
    ck_assert_int_eq(hl_decode_roots(p7, 4, root), HL_INTERNAL);
    int32_t p8[3] = {INT32_MIN, -1, 1};
    ck_assert_int_eq(hl_decode_roots(p8, 3, root), HL_INTERNAL);
    /* and a valid forest still passes */
    int32_t ok[8] = {-1, 0, 1, -1, 3, 0, 5, -1};
    ck_assert_int_eq(hl_decode_roots(ok, 8, root), HL_OK);
    const int32_t want[8] = {0, 0, 0, 3, 3, 0, 0, 7};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(root[i], want[i]);
}
END_TEST

Suite *decode_suite(void)
{
    Suite *s = suite_create("decode");
    TCase *tc = tcase_create("parents");
    tcase_add_test(tc, test_parents_hand);
    tcase_add_test(tc, test_parents_sim_threshold);
    tcase_add_test(tc, test_parents_random);
    tcase_add_test(tc, test_parents_never_cycle);
    suite_add_tcase(s, tc);
    tc = tcase_create("roots");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_roots_random_forests);
    tcase_add_test(tc, test_merge_first_equals_merge);
    tcase_add_test(tc, test_roots_long_chains);
    tcase_add_test(tc, test_roots_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
