/* test_cluster.c - the multi-level driver: invariants, stopping rules, edge cases. */
#include "test_util.h"

#include "hl/cluster.h"
#include "hl/metrics.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every level labels every point with a 0-based id in first-appearance order. */
static void check_labels_dense(const int32_t *lab, size_t n, size_t clusters)
{
    int32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_ge(lab[i], 0);
        ck_assert_int_le(lab[i], next);
        if (lab[i] == next)
            next++;
    }
    ck_assert_uint_eq((size_t)next, clusters);
}

/* Level l+1 never splits a cluster of level l: same label at l => same label at l+1. */
static void check_nested(const hl_clustering *c)
{
    size_t n = c->n;
    int32_t *map = malloc(n * sizeof(int32_t));
    for (int l = 0; l + 1 < c->n_levels; l++) {
        const int32_t *a = c->level_labels + (size_t)l * n;
        const int32_t *b = c->level_labels + (size_t)(l + 1) * n;
        for (size_t i = 0; i < n; i++)
            map[i] = -1;
        for (size_t i = 0; i < n; i++) {
            if (map[a[i]] < 0)
                map[a[i]] = b[i];
            ck_assert_int_eq(map[a[i]], b[i]);
        }
        ck_assert_uint_lt(c->levels[l + 1].clusters, c->levels[l].clusters);
    }
    free(map);
}

static void check_invariants(const hl_clustering *c, const hl_cluster_params *p)
{
    ck_assert_int_ge(c->n_levels, 1);
    ck_assert_int_le(c->n_levels, p->max_levels);
    for (int l = 0; l < c->n_levels; l++)
        check_labels_dense(c->level_labels + (size_t)l * c->n, c->n, c->levels[l].clusters);
    check_nested(c);
    /* Links, nodes and clusters agree: each level merges nodes - clusters trees. */
    for (int l = 0; l < c->n_levels; l++) {
        const hl_level_stats *s = &c->levels[l];
        ck_assert_uint_eq(s->nodes - s->links, s->clusters);
        if (l > 0) {
            ck_assert_uint_eq(s->nodes, c->levels[l - 1].clusters);
            ck_assert_uint_gt(s->nodes, (size_t)p->k);
            ck_assert_uint_gt(s->links, 0);
        }
        /* Early stop: every level before the last merged at least (k-1)x fewer links. */
        if (p->early_stop && l > 0 && l < c->n_levels - 1)
            ck_assert((double)c->levels[l - 1].links / (double)s->links >= (double)(p->k - 1));
    }
    if (p->min_cluster_size == 1)
        ck_assert_mem_eq(c->labels, c->level_labels + (size_t)(c->n_levels - 1) * c->n,
                         c->n * sizeof(int32_t));
}

static hl_clustering *run_ok(const float *x, size_t n, size_t d, const hl_model *m,
                             const hl_cluster_params *p)
{
    hl_clustering *c = NULL;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = hl_cluster_run(x, n, d, m, p, &c, &err);
    ck_assert_msg(st == HL_OK, "cluster_run: %s (%s)", hl_status_name(st), err.msg);
    check_invariants(c, p);
    return c;
}

START_TEST(test_blobs_model_free)
{
    int32_t *truth;
    size_t n = 3000, d = 32;
    float *x = tu_blobs(n, d, 60, 0.15f, 7, &truth);
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    hl_clustering *c = run_ok(x, n, d, NULL, &p);
    hl_metrics m;
    ck_assert_int_eq(hl_metrics_compute(truth, c->labels, n, &m), HL_OK);
    /* Well-separated blobs: the model-free decode must recover them almost perfectly. */
    ck_assert_msg(m.fp > 0.95 && m.fb > 0.95, "fp %.3f fb %.3f", m.fp, m.fb);
    ck_assert_int_ge(c->n_levels, 2);
    hl_clustering_free(c);
    free(x);
    free(truth);
}
END_TEST

START_TEST(test_threads_identical)
{
    int32_t *truth;
    size_t n = 1500, d = 16;
    float *x = tu_blobs(n, d, 40, 0.3f, 11, &truth);
    hl_model_config cfg;
    hl_model_config_default(&cfg, HL_MODEL_LANDER, (int32_t)d);
    cfg.hidden = 32;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&cfg, NULL, &m), HL_OK);
    hl_model_init_params(m, 5);
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.3f;
    hl_clustering *c1 = run_ok(x, n, d, m, &p);
    p.n_threads = 3;
    hl_clustering *c3 = run_ok(x, n, d, m, &p);
    ck_assert_int_eq(c1->n_levels, c3->n_levels);
    ck_assert_mem_eq(c1->level_labels, c3->level_labels,
                     (size_t)c1->n_levels * n * sizeof(int32_t));
    /* Without the copy (the rows are the engine's to overwrite): the same labels. */
    float *own = malloc(n * d * sizeof(float));
    ck_assert_ptr_nonnull(own);
    memcpy(own, x, n * d * sizeof(float));
    hl_clustering *ci = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_run_inplace(own, n, d, m, &p, &ci, &err), HL_OK);
    ck_assert_int_eq(c1->n_levels, ci->n_levels);
    ck_assert_mem_eq(c1->level_labels, ci->level_labels,
                     (size_t)c1->n_levels * n * sizeof(int32_t));
    free(own);
    hl_clustering_free(ci);
    hl_clustering_free(c1);
    hl_clustering_free(c3);
    hl_model_free(m);
    free(x);
    free(truth);
}
END_TEST

START_TEST(test_tiny_inputs)
{
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.5f;
    /* One point: one trivial level. */
    float one[2] = {1.0f, 0.0f};
    hl_clustering *c = run_ok(one, 1, 2, NULL, &p);
    ck_assert_int_eq(c->labels[0], 0);
    hl_clustering_free(c);
    /* N <= k still clusters at level 0 (k clamps to N). */
    float three[6] = {1.0f, 0.0f, 0.9f, 0.1f, 0.0f, 1.0f};
    c = run_ok(three, 3, 2, NULL, &p);
    ck_assert_int_eq(c->labels[0], c->labels[1]);
    ck_assert_int_ne(c->labels[0], c->labels[2]);
    ck_assert_uint_eq(c->n_clusters, 2);
    hl_clustering_free(c);
}
END_TEST

START_TEST(test_zero_and_duplicates)
{
    size_t n = 200, d = 8;
    int32_t *truth;
    float *x = tu_blobs(n, d, 5, 0.05f, 3, &truth);
    /* Rows 0..9 are zero vectors; rows 10..39 copy row 40. */
    memset(x, 0, 10 * d * sizeof(float));
    for (size_t i = 10; i < 40; i++)
        memcpy(x + i * d, x + 40 * d, d * sizeof(float));
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.5f;
    hl_clustering *c = run_ok(x, n, d, NULL, &p);
    for (size_t i = 0; i < 10; i++) {
        for (size_t j = 0; j < n; j++)
            if (j != i)
                ck_assert_int_ne(c->labels[i], c->labels[j]);
    }
    for (size_t i = 10; i < 40; i++)
        ck_assert_int_eq(c->labels[i], c->labels[40]);
    hl_clustering_free(c);
    free(x);
    free(truth);
}
END_TEST

START_TEST(test_max_levels_and_early_stop)
{
    int32_t *truth;
    size_t n = 2000, d = 16;
    float *x = tu_blobs(n, d, 30, 0.4f, 21, &truth);
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.2f;
    p.max_levels = 1;
    hl_clustering *c = run_ok(x, n, d, NULL, &p);
    ck_assert_int_eq(c->n_levels, 1);
    hl_clustering_free(c);
    p.max_levels = 10;
    p.early_stop = 0;
    c = run_ok(x, n, d, NULL, &p);
    hl_clustering *c2;
    p.early_stop = 1;
    c2 = run_ok(x, n, d, NULL, &p);
    ck_assert_int_le(c2->n_levels, c->n_levels);
    hl_clustering_free(c);
    hl_clustering_free(c2);
    free(x);
    free(truth);
}
END_TEST

START_TEST(test_min_cluster_size)
{
    int32_t *truth;
    size_t n = 600, d = 8;
    float *x = tu_blobs(n, d, 20, 0.1f, 5, &truth);
    memset(x, 0, 5 * d * sizeof(float)); /* five zero rows: singletons */
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.5f;
    p.min_cluster_size = 2;
    hl_clustering *c = run_ok(x, n, d, NULL, &p);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(c->labels[i], -1);
    int32_t *size = calloc(n, sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        if (c->labels[i] >= 0)
            size[c->labels[i]]++;
    for (size_t i = 0; i < c->n_clusters; i++)
        ck_assert_int_ge(size[i], 2);
    free(size);
    hl_clustering_free(c);
    free(x);
    free(truth);
}
END_TEST

START_TEST(test_errors)
{
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    hl_clustering *c = NULL;
    hl_error err;
    float x[8] = {1, 2, 3, 4, 5, NAN, 7, 8};
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_run(x, 4, 2, NULL, &p, &c, &err), HL_NUMERIC);
    ck_assert_uint_eq(err.offset, 2);
    ck_assert_uint_eq(err.col, 1);
    ck_assert_ptr_null(c);
    x[5] = 6;
    p.k = 1;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_run(x, 4, 2, NULL, &p, &c, &err), HL_INVAL);
    ck_assert_str_eq(err.field, "k");
    hl_cluster_params_default(&p);
    p.tau = 1.5f;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_run(x, 4, 2, NULL, &p, &c, &err), HL_INVAL);
    ck_assert_str_eq(err.field, "tau");
    hl_cluster_params_default(&p);
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_run(x, 0, 2, NULL, &p, &c, &err), HL_INVAL);
    /* A lander model refuses another dimension, naming both. */
    hl_model_config cfg;
    hl_model_config_default(&cfg, HL_MODEL_LANDER, 3);
    cfg.hidden = 8;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&cfg, NULL, &m), HL_OK);
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_run(x, 4, 2, m, &p, &c, &err), HL_RANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "3"));
    ck_assert_ptr_nonnull(strstr(err.msg, "2"));
    hl_model_free(m);
}
END_TEST

static int stop_now(void *ud)
{
    int *calls = ud;
    return ++*calls > 2;
}

START_TEST(test_cancel)
{
    int32_t *truth;
    size_t n = 4000, d = 16;
    float *x = tu_blobs(n, d, 30, 0.3f, 9, &truth);
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    int calls = 0;
    p.cancel.should_stop = stop_now;
    p.cancel.ud = &calls;
    hl_clustering *c = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_cluster_run(x, n, d, NULL, &p, &c, &err), HL_CANCELED);
    ck_assert_ptr_null(c);
    free(x);
    free(truth);
}
END_TEST

START_TEST(test_relabel)
{
    int32_t lab[7] = {5, 5, -1, 2, 6, 2, 0};
    int32_t scratch[7];
    ck_assert_uint_eq(hl_relabel_first_appearance(lab, 7, scratch), 4);
    const int32_t want[7] = {0, 0, -1, 1, 2, 1, 3};
    ck_assert_mem_eq(lab, want, sizeof(want));
}
END_TEST

Suite *cluster_suite(void);

Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_blobs_model_free);
    tcase_add_test(tc, test_threads_identical);
    tcase_add_test(tc, test_tiny_inputs);
    tcase_add_test(tc, test_zero_and_duplicates);
    tcase_add_test(tc, test_max_levels_and_early_stop);
    tcase_add_test(tc, test_min_cluster_size);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_relabel);
    suite_add_tcase(s, tc);
    return s;
}
