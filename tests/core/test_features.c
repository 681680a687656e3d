/* test_features.c - structural features against a direct recomputation from hl/features.h's
 * definitions, thread invariance and normalisation. */
#include "test_util.h"

#include "hl/features.h"
#include "hl/graph.h"
#include "hl/knn.h"
#include "hl/mat.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    hl_arena a;
    hl_graph g;
    size_t n;
    int k;
    float *size;
} fixture;

static void fixture_make(fixture *f, size_t n, size_t d, int k, uint64_t seed, int zero_rows)
{
    int32_t *y;
    float *x = tu_blobs(n, d, 8, 0.5f, seed, &y);
    for (int z = 0; z < zero_rows; z++)
        memset(x + (size_t)z * d, 0, d * sizeof(float));
    hl_l2norm_rows(x, x, n, d);
    hl_knn_params kp;
    hl_knn_params_default(&kp);
    kp.k = k;
    ck_assert_int_eq(hl_arena_init(&f->a, hl_knn_exact_plan(n, n, d, &kp) + hl_graph_plan(n, k) +
                                              n * (size_t)k * 8 + 4096),
                     HL_OK);
    int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
    float *sim = malloc(n * (size_t)k * sizeof(float));
    ck_assert_int_eq(hl_knn_exact(x, n, x, n, d, &kp, &f->a, idx, sim), HL_OK);
    ck_assert_int_eq(hl_graph_init(&f->g, n, k, &f->a), HL_OK);
    hl_graph_from_knn(&f->g, idx, sim, k);
    f->n = n;
    f->k = k;
    f->size = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        f->size[i] = (float)(1 + i % 7);
    free(idx);
    free(sim);
    free(x);
    free(y);
}

static void fixture_free(fixture *f)
{
    hl_arena_deinit(&f->a);
    free(f->size);
}

static double dens_of(const hl_graph *g, size_t i)
{
    size_t w = (size_t)g->width;
    double a = 0;
    for (int s = 0; s < g->deg[i]; s++) {
        double v = g->sim[i * w + (size_t)s];
        a += v * (2 * v - 1);
    }
    return g->deg[i] > 0 ? a / g->deg[i] : 0;
}

static double mean_of(const hl_graph *g, size_t i)
{
    size_t w = (size_t)g->width;
    double a = 0;
    for (int s = 0; s < g->deg[i]; s++)
        a += g->sim[i * w + (size_t)s];
    return g->deg[i] > 0 ? a / g->deg[i] : 0;
}

static int in_list(const hl_graph *g, size_t j, size_t i)
{
    size_t w = (size_t)g->width;
    for (int s = 0; s < g->deg[j]; s++)
        if ((size_t)g->nbr[j * w + (size_t)s] == i)
            return s + 1;
    return 0;
}

/* Recomputes a few features per node and edge straight from the definitions. */
static void check_against_definitions(const fixture *f, const float *node, const float *edge)
{
    const hl_graph *g = &f->g;
    size_t n = f->n, w = (size_t)g->width;
    double W = (double)g->width;
    for (size_t i = 0; i < n; i++) {
        const float *fn = node + i * HL_FEAT_NODE;
        int deg = g->deg[i];
        double dn = 0;
        int indeg = 0, mutual = 0;
        for (size_t j = 0; j < n; j++)
            indeg += in_list(g, j, i) > 0;
        for (int s = 0; s < deg; s++) {
            size_t j = (size_t)g->nbr[i * w + (size_t)s];
            dn += dens_of(g, j);
            mutual += in_list(g, j, i) > 0;
        }
        dn = deg > 0 ? dn / deg : 0;
        ck_assert(fabs(fn[0] - (deg > 0 ? g->sim[i * w] : 0)) < 1e-6);
        ck_assert(fabs(fn[4] - mean_of(g, i)) < 1e-5);
        ck_assert(fabs(fn[6] - dens_of(g, i)) < 1e-5);
        ck_assert(fabs(fn[7] - dn) < 1e-5);
        ck_assert(fabs(fn[9] - indeg / W) < 1e-6);
        ck_assert(fabs(fn[10] - (deg > 0 ? (double)mutual / deg : 0)) < 1e-6);
        ck_assert(fabs(fn[11] - log(f->size[i])) < 1e-5);
        ck_assert(fabs(fn[12] - 0.2) < 1e-6); /* level 2 */
        ck_assert(fabs(fn[15] - deg / W) < 1e-6);
        for (size_t s = 0; s < w; s++) {
            const float *fe = edge + (i * w + s) * HL_FEAT_EDGE;
            if ((int)s >= deg) {
                for (int c = 0; c < HL_FEAT_EDGE; c++)
                    ck_assert(fe[c] == 0.0f);
                continue;
            }
            size_t j = (size_t)g->nbr[i * w + s];
            double sim = g->sim[i * w + s];
            int rr = in_list(g, j, i);
            int shared = 0;
            for (int a = 0; a < deg; a++)
                for (int b = 0; b < g->deg[j]; b++)
                    shared += g->nbr[i * w + (size_t)a] == g->nbr[j * w + (size_t)b];
            ck_assert(fabs(fe[0] - sim) < 1e-6);
            ck_assert(fabs(fe[1] - (double)(s + 1) / W) < 1e-6);
            ck_assert(fabs(fe[2] - (rr > 0 ? rr : g->width + 1) / W) < 1e-6);
            ck_assert(fe[3] == (rr > 0 ? 1.0f : 0.0f));
            ck_assert(fabs(fe[4] - shared / W) < 1e-6);
            ck_assert(fabs(fe[7] - (sim - mean_of(g, j))) < 1e-5);
            ck_assert(fabs(fe[9] - (dens_of(g, j) - dens_of(g, i))) < 1e-5);
            ck_assert(fabs(fe[10] - (log(f->size[j]) - log(f->size[i]))) < 1e-5);
        }
    }
}

START_TEST(test_definitions)
{
    fixture f;
    fixture_make(&f, 300, 6, 8, 3, 4);
    float *node = malloc(f.n * HL_FEAT_NODE * sizeof(float));
    float *edge = malloc(f.n * (size_t)f.g.width * HL_FEAT_EDGE * sizeof(float));
    hl_arena s;
    ck_assert_int_eq(hl_arena_init(&s, hl_features_plan(f.n, f.g.width)), HL_OK);
    ck_assert_int_eq(hl_features_compute(&f.g, f.size, 2, 1, &s, node, edge), HL_OK);
    check_against_definitions(&f, node, edge);
    /* Zero rows have no edges: their node features are zero except the level. */
    for (int z = 0; z < 4; z++) {
        ck_assert_int_eq(f.g.deg[z], 0);
        ck_assert(node[(size_t)z * HL_FEAT_NODE + 0] == 0.0f);
    }
    /* Too small an arena. */
    hl_arena tiny;
    ck_assert_int_eq(hl_arena_init(&tiny, 64), HL_OK);
    ck_assert_int_eq(hl_features_compute(&f.g, f.size, 0, 1, &tiny, node, edge), HL_NOMEM);
    hl_arena_deinit(&tiny);
    hl_arena_deinit(&s);
    free(node);
    free(edge);
    fixture_free(&f);
}
END_TEST

START_TEST(test_threads_and_normalize)
{
    fixture f;
    fixture_make(&f, 5000, 8, 10, 5, 0);
    size_t nn = f.n * HL_FEAT_NODE, ne = f.n * (size_t)f.g.width * HL_FEAT_EDGE;
    float *n1 = malloc(nn * sizeof(float)), *e1 = malloc(ne * sizeof(float));
    float *n3 = malloc(nn * sizeof(float)), *e3 = malloc(ne * sizeof(float));
    hl_arena s;
    ck_assert_int_eq(hl_arena_init(&s, hl_features_plan(f.n, f.g.width)), HL_OK);
    ck_assert_int_eq(hl_features_compute(&f.g, NULL, 0, 1, &s, n1, e1), HL_OK);
    ck_assert_int_eq(hl_features_compute(&f.g, NULL, 0, 3, &s, n3, e3), HL_OK);
    ck_assert_mem_eq(n1, n3, nn * sizeof(float));
    ck_assert_mem_eq(e1, e3, ne * sizeof(float));
    /* Level-standardised columns have mean ~0 and std ~1 over the level. */
    double s13 = 0, q13 = 0;
    for (size_t i = 0; i < f.n; i++) {
        double v = n1[i * HL_FEAT_NODE + 13];
        s13 += v;
        q13 += v * v;
    }
    ck_assert(fabs(s13 / (double)f.n) < 1e-3);
    ck_assert(fabs(q13 / (double)f.n - 1.0) < 1e-2);
    /* Normalisation: (x - mean) / std per column; std <= 0 counts as 1. */
    float nm[HL_FEAT_NODE], ns[HL_FEAT_NODE], em[HL_FEAT_EDGE], es[HL_FEAT_EDGE];
    for (int c = 0; c < HL_FEAT_NODE; c++) {
        nm[c] = 0.5f;
        ns[c] = c == 3 ? 0.0f : 2.0f;
    }
    for (int c = 0; c < HL_FEAT_EDGE; c++) {
        em[c] = -1.0f;
        es[c] = 4.0f;
    }
    hl_features_normalize(&f.g, n3, e3, nm, ns, em, es);
    ck_assert(fabsf(n3[1] - (n1[1] - 0.5f) / 2.0f) < 1e-6f);
    ck_assert(fabsf(n3[3] - (n1[3] - 0.5f)) < 1e-6f);
    ck_assert(fabsf(e3[0] - (e1[0] + 1.0f) / 4.0f) < 1e-6f);
    hl_arena_deinit(&s);
    free(n1);
    free(e1);
    free(n3);
    free(e3);
    fixture_free(&f);
}
END_TEST

Suite *features_suite(void);

Suite *features_suite(void)
{
    Suite *s = suite_create("features");
    TCase *tc = tcase_create("features");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_definitions);
    tcase_add_test(tc, test_threads_and_normalize);
    suite_add_tcase(s, tc);
    return s;
}
