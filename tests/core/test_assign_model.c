/* test_assign_model.c - the model and the structural features on new nodes agree with the
 * batch code (hl_features_compute, hl_lander_forward) on the same graph. */
#include "test_util.h"

#include "assign_internal.h"
#include "hl/assign.h"
#include "hl/features.h"
#include "hl/graph.h"
#include "hl/mat.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int close_to(float a, float b, float tol)
{
    return fabsf(a - b) <= tol * (1.0f + fabsf(b));
}

/* kNN rows (self included) from a symmetric similarity matrix, ties by index. */
static void knn_rows(const float *sm, size_t n, int k, int32_t *idx, float *sim)
{
    for (size_t i = 0; i < n; i++) {
        int32_t *ir = idx + i * (size_t)k;
        float *sr = sim + i * (size_t)k;
        for (int c = 0; c < k; c++) {
            ir[c] = -1;
            sr[c] = -INFINITY;
        }
        for (size_t j = 0; j < n; j++) {
            float v = sm[i * n + j];
            if (!(v > sr[k - 1]))
                continue;
            int pos = k - 1;
            while (pos > 0 && sr[pos - 1] < v) {
                sr[pos] = sr[pos - 1];
                ir[pos] = ir[pos - 1];
                pos--;
            }
            sr[pos] = v;
            ir[pos] = (int32_t)j;
        }
    }
}

/* The features of the "new" nodes of a split graph equal hl_features_compute()'s. */
START_TEST(test_features_match_batch)
{
    size_t n = 300, d = 8, ns = 200, nn = n - ns;
    int k = 10, w = k - 1, level = 1;
    float *x = tu_randn(n, d, 5);
    hl_l2norm_rows(x, x, n, d);
    float *sm = malloc(n * n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double acc = 0.0;
            for (size_t c = 0; c < d; c++)
                acc += (double)x[i * d + c] * x[j * d + c];
            sm[i * n + j] = sm[j * n + i] = (float)acc;
        }
    int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
    float *sim = malloc(n * (size_t)k * sizeof(float));
    knn_rows(sm, n, k, idx, sim);
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, 1 << 22), HL_OK);
    hl_graph g;
    ck_assert_int_eq(hl_graph_init(&g, n, k, &a), HL_OK);
    hl_graph_from_knn(&g, idx, sim, k);
    float *size = malloc(n * sizeof(float));
    int32_t *cnt = malloc(n * sizeof(int32_t)), *indeg = calloc(n, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        cnt[i] = 1 + (int32_t)(i % 7);
        size[i] = (float)cnt[i];
        for (int c = 0; c < g.deg[i]; c++)
            indeg[g.nbr[i * (size_t)w + (size_t)c]]++;
    }
    float *node = malloc(n * HL_FEAT_NODE * sizeof(float));
    float *edge = malloc(n * (size_t)w * HL_FEAT_EDGE * sizeof(float));
    ck_assert_int_eq(hl_features_compute(&g, size, level, 2, &a, node, edge), HL_OK);

    float fstats[HL_ASSIGN_FSTATS];
    hl__assign_fstats(g.sim, g.deg, n, w, fstats);
    /* New node v is node ns + v: with ns stored nodes first, unified ids are the graph's. */
    hl__mixed mx = {w,
                    level,
                    ns,
                    nn,
                    g.nbr,
                    g.deg,
                    cnt,
                    g.sim,
                    g.nbr + ns * (size_t)w,
                    g.deg + ns,
                    cnt + ns,
                    g.sim + ns * (size_t)w,
                    g.w + ns * (size_t)w,
                    indeg + ns,
                    fstats};
    float *node2 = malloc(nn * HL_FEAT_NODE * sizeof(float));
    float *edge2 = malloc(nn * (size_t)w * HL_FEAT_EDGE * sizeof(float));
    hl__assign_features(&mx, 0, nn, node2, edge2);
    for (size_t v = 0; v < nn; v++) {
        for (int f = 0; f < HL_FEAT_NODE; f++)
            EXPECT_MSG(close_to(node2[v * HL_FEAT_NODE + (size_t)f],
                                node[(ns + v) * HL_FEAT_NODE + (size_t)f], 1e-5f),
                       "node %zu feature %d: %g vs %g", v, f, node2[v * HL_FEAT_NODE + (size_t)f],
                       node[(ns + v) * HL_FEAT_NODE + (size_t)f]);
        for (size_t e = 0; e < (size_t)w * HL_FEAT_EDGE; e++)
            EXPECT_MSG(close_to(edge2[v * (size_t)w * HL_FEAT_EDGE + e],
                                edge[(ns + v) * (size_t)w * HL_FEAT_EDGE + e], 1e-5f),
                       "node %zu edge value %zu: %g vs %g", v, e,
                       edge2[v * (size_t)w * HL_FEAT_EDGE + e],
                       edge[(ns + v) * (size_t)w * HL_FEAT_EDGE + e]);
    }
    hl_arena_deinit(&a);
    free(node2);
    free(edge2);
    free(node);
    free(edge);
    free(size);
    free(cnt);
    free(indeg);
    free(idx);
    free(sim);
    free(sm);
    free(x);
}
END_TEST

static hl_model *model(hl_model_kind kind, int32_t d)
{
    hl_model_config cfg;
    hl_model_config_default(&cfg, kind, d);
    cfg.hidden = 16;
    cfg.n_conv = 2;
    cfg.in_features = kind == HL_MODEL_UNIVERSAL ? HL_FEAT_NODE : 2 * d + HL_FEAT_NODE;
    cfg.edge_features = kind == HL_MODEL_UNIVERSAL ? HL_FEAT_EDGE : 0;
    cfg.tau = 0.3f;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&cfg, NULL, &m), HL_OK);
    hl_model_init_params(m, 3);
    return m;
}

/*
 * After an assign and apply, the state's level 0 is a graph whose stored rows point only at
 * stored nodes. Running hl_lander_forward on that graph (inputs from the state) must give
 * back every node's cached S and hidden state, and the new nodes' densities: stored nodes
 * were not recomputed, and new nodes saw exactly the stored values.
 */
static void forward_matches(hl_model_kind kind)
{
    size_t d = 12, ns = 700, nn = 300;
    int32_t *y;
    float *x = tu_blobs(ns + nn, d, 25, 0.3f, 41, &y);
    hl_model *m = model(kind, (int32_t)d);
    hl_cluster_params cp;
    hl_cluster_params_default(&cp);
    cp.tau = m->cfg.tau;
    hl_clustering *c;
    hl_assign_state *s;
    ck_assert_int_eq(hl_cluster_run_state(x, ns, d, m, 1, &cp, &c, &s, NULL), HL_OK);
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.model_checksum = 1;
    hl_assignment *as;
    ck_assert_int_eq(hl_assign_run(s, m, x + ns * d, nn, d, &ap, &as, NULL), HL_OK);
    ck_assert_int_eq(hl_assign_apply(s, as, NULL), HL_OK);
    const hl_assign_level *L = &s->levels[0];
    size_t n = L->n, w = (size_t)L->width, h2 = (size_t)m->cfg.hidden / 2;
    size_t hid = (size_t)m->conv_out[0];
    ck_assert_uint_eq(n, ns + nn);

    hl_graph g = {n, L->width, L->nbr, L->sim, malloc(n * w * sizeof(float)), L->deg};
    for (size_t i = 0; i < n; i++) {
        double sum = 0.0;
        for (int e = 0; e < L->deg[i]; e++)
            sum += L->sim[i * w + (size_t)e];
        for (size_t e = 0; e < w; e++)
            g.w[i * w + e] = (int)e < L->deg[i] ? (float)((double)L->sim[i * w + e] / sum) : 0.0f;
    }
    hl_node_input in;
    memset(&in, 0, sizeof(in));
    if (kind == HL_MODEL_LANDER) {
        in = (hl_node_input){3, {s->x, s->x, L->node}, {d, d, HL_FEAT_NODE}};
    } else {
        in = (hl_node_input){1, {L->node}, {HL_FEAT_NODE}};
    }
    float *edge = calloc(n * w * HL_FEAT_EDGE, sizeof(float));
    float *prob = malloc(n * w * sizeof(float)), *dens = malloc(n * sizeof(float));
    float *S = malloc(n * h2 * sizeof(float)), *H = malloc(n * hid * sizeof(float));
    hl_forward_params fp;
    memset(&fp, 0, sizeof(fp));
    fp.n_threads = 2;
    fp.keep_S = S;
    fp.keep_hidden[0] = H;
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, hl_lander_plan(m, n, (int)w + 1, 2)), HL_OK);
    ck_assert_int_eq(hl_lander_forward(m, &g, &in, edge, &fp, &a, prob, dens), HL_OK);
    for (size_t i = 0; i < n; i++) {
        for (size_t c2 = 0; c2 < h2; c2++)
            EXPECT_MSG(close_to(S[i * h2 + c2], L->S[i * h2 + c2], 1e-4f), "node %zu S[%zu]", i,
                       c2);
        for (size_t c2 = 0; c2 < hid; c2++)
            EXPECT_MSG(close_to(H[i * hid + c2], L->hidden[0][i * hid + c2], 1e-4f),
                       "node %zu hidden[%zu]", i, c2);
    }
    if (kind == HL_MODEL_LANDER) /* no edge features: densities comparable too */
        for (size_t i = 0; i < n; i++)
            EXPECT_MSG(fabsf(dens[i] - L->dens[i]) < 1e-4f, "node %zu density %g vs %g", i, dens[i],
                       L->dens[i]);
    hl_arena_deinit(&a);
    free(g.w);
    free(edge);
    free(prob);
    free(dens);
    free(S);
    free(H);
    hl_assignment_free(as);
    hl_assign_state_free(s);
    hl_clustering_free(c);
    hl_model_free(m);
    free(x);
    free(y);
}

START_TEST(test_forward_matches_lander)
{
    forward_matches(HL_MODEL_LANDER);
}
END_TEST

START_TEST(test_forward_matches_universal)
{
    forward_matches(HL_MODEL_UNIVERSAL);
}
END_TEST

Suite *assign_model_suite(void);

Suite *assign_model_suite(void)
{
    Suite *s = suite_create("assign_model");
    TCase *tc = tcase_create("assign_model");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_features_match_batch);
    tcase_add_test(tc, test_forward_matches_lander);
    tcase_add_test(tc, test_forward_matches_universal);
    suite_add_tcase(s, tc);
    return s;
}
