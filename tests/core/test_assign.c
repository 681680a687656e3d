/* test_assign.c - incremental assignment: stable ids, new clusters, policies, repeated
 * assigns, threads, bad inputs, corrupt states, cancellation. */
#include "test_util.h"

#include "hl/assign.h"
#include "hl/features.h"
#include "hl/train.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D 16

/* Blobs around `c` centres drawn from `seed`: n points, labels in *y. */
static float *blobs(size_t n, size_t c, uint64_t seed, int32_t **y)
{
    return tu_blobs(n, D, c, 0.15f, seed, y);
}

static hl_assign_state *make_state(const float *x, size_t n, const hl_model *m, uint32_t crc,
                                   hl_clustering **c)
{
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    if (m != NULL)
        p.tau = m->cfg.tau;
    hl_assign_state *s = NULL;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = hl_cluster_run_state(x, n, D, m, crc, &p, c, &s, &err);
    ck_assert_msg(st == HL_OK, "cluster_run_state: %s (%s)", hl_status_name(st), err.msg);
    ck_assert_int_eq(hl_assign_state_check(s, &err), HL_OK);
    return s;
}

static hl_assignment *assign_ok(const hl_assign_state *s, const hl_model *m, uint32_t crc,
                                const float *y, size_t n, hl_new_clusters pol, int threads)
{
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.new_clusters = pol;
    ap.model_checksum = crc;
    ap.n_threads = threads;
    hl_assignment *a = NULL;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = hl_assign_run(s, m, y, n, D, &ap, &a, &err);
    ck_assert_msg(st == HL_OK, "assign: %s (%s)", hl_status_name(st), err.msg);
    ck_assert_uint_eq(a->n, n);
    return a;
}

static void apply_ok(hl_assign_state *s, const hl_assignment *a)
{
    hl_error err;
    hl_error_clear(&err);
    size_t before = s->n;
    ck_assert_int_eq(hl_assign_apply(s, a, &err), HL_OK);
    ck_assert_uint_eq(s->n, before + a->n_kept);
    ck_assert_msg(hl_assign_state_check(s, &err) == HL_OK, "state after apply: %s", err.msg);
}

static int32_t max_id(const int32_t *v, size_t n)
{
    int32_t m = -1;
    for (size_t i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* The stored points keep their final and per-level labels exactly. */
static void check_prefix(const hl_assign_state *s, const hl_clustering *c)
{
    ck_assert_uint_ge(s->n, c->n);
    ck_assert_int_eq(s->n_levels, c->n_levels);
    ck_assert_mem_eq(s->labels, c->labels, c->n * sizeof(int32_t));
    for (int l = 0; l < s->n_levels; l++)
        ck_assert_mem_eq(s->levels[l].labels, c->level_labels + (size_t)l * c->n,
                         c->n * sizeof(int32_t));
}

/* Scores: 0 exactly for the roots of new trees, else a link above tau. */
static void check_scores(const hl_assignment *a, float tau, size_t roots)
{
    size_t zero = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->scores[i] == 0.0f)
            zero++;
        else
            EXPECT_MSG(a->scores[i] > tau && a->scores[i] <= 1.0f, "score %g", a->scores[i]);
        /* Attached points have a parent somewhere, so a score. */
        EXPECT(a->level[i] < 0 || a->scores[i] > 0.0f);
    }
    ck_assert_uint_eq(zero, roots);
}

/* Share of new points whose label is the stored label most common among stored points of
 * the same blob. */
static double share_majority(const int32_t *ys, const int32_t *stored, size_t ns, const int32_t *yn,
                             const int32_t *lab, size_t nn, size_t c)
{
    size_t ok = 0;
    int32_t *major = malloc(c * sizeof(int32_t));
    for (size_t k = 0; k < c; k++) {
        size_t best = 0;
        major[k] = -2;
        for (size_t i = 0; i < ns; i++) {
            if ((size_t)ys[i] != k)
                continue;
            size_t cnt = 0;
            for (size_t j = 0; j < ns; j++)
                cnt += (size_t)ys[j] == k && stored[j] == stored[i];
            if (cnt > best) {
                best = cnt;
                major[k] = stored[i];
            }
        }
    }
    for (size_t i = 0; i < nn; i++)
        ok += lab[i] == major[yn[i]];
    free(major);
    return (double)ok / (double)nn;
}

/* ------------------------------------------------------------------ model-free */

START_TEST(test_stable_ids_model_free)
{
    int32_t *y;
    size_t n = 2400, ns = 1500, c = 40;
    float *x = blobs(n, c, 3, &y);
    hl_clustering *cl;
    hl_assign_state *s = make_state(x, ns, NULL, 0, &cl);
    ck_assert_int_ge(s->n_levels, 2);
    int32_t before_max = max_id(cl->labels, ns);
    /* Three batches of points from the same blobs. */
    size_t at = ns;
    for (int b = 0; b < 3; b++) {
        size_t bn = 300;
        hl_assignment *a = assign_ok(s, NULL, 0, x + at * D, bn, HL_NEW_OPEN, 1);
        double share = share_majority(y, cl->labels, ns, y + at, a->labels, bn, c);
        ck_assert_msg(share > 0.97, "batch %d: %.3f of new points got their blob's id", b, share);
        ck_assert_uint_ge(a->n_attached, bn * 97 / 100);
        check_scores(a, s->tau, a->n_new_clusters);
        for (size_t i = 0; i < bn; i++)
            ck_assert_int_le(a->labels[i], before_max + (int32_t)a->n_new_clusters);
        apply_ok(s, a);
        /* Points added by earlier batches keep their ids too. */
        ck_assert_mem_eq(s->labels + at, a->labels, bn * sizeof(int32_t));
        at += bn;
        check_prefix(s, cl);
        hl_assignment_free(a);
    }
    /* A fourth batch re-submits points of the first: they are stored now, so their
     * duplicates join exactly their clusters. */
    hl_assignment *a = assign_ok(s, NULL, 0, x + ns * D, 100, HL_NEW_OPEN, 1);
    for (size_t i = 0; i < 100; i++)
        ck_assert_int_eq(a->labels[i], s->labels[ns + i]);
    hl_assignment_free(a);
    hl_assign_state_free(s);
    hl_clustering_free(cl);
    free(x);
    free(y);
}
END_TEST

/* Points of unseen blobs open new clusters with fresh ids (one blob, one id), or get -1. */
START_TEST(test_far_points)
{
    int32_t *y, *yf;
    size_t ns = 1200, nf = 300, cf = 5;
    float *x = blobs(ns, 30, 5, &y);
    float *f = blobs(nf, cf, 77, &yf);
    hl_clustering *cl;
    hl_assign_state *s = make_state(x, ns, NULL, 0, &cl);
    int32_t top = max_id(cl->labels, ns);

    hl_assignment *a = assign_ok(s, NULL, 0, f, nf, HL_NEW_UNASSIGNED, 1);
    ck_assert_uint_eq(a->n_attached, 0);
    ck_assert_uint_eq(a->n_unassigned, nf);
    ck_assert_uint_eq(a->n_kept, 0);
    for (size_t i = 0; i < nf; i++) {
        ck_assert_int_eq(a->labels[i], -1);
        ck_assert_int_eq(a->level[i], -1);
    }
    apply_ok(s, a); /* nothing is added */
    ck_assert_uint_eq(s->n, ns);
    check_prefix(s, cl);
    hl_assignment_free(a);

    a = assign_ok(s, NULL, 0, f, nf, HL_NEW_OPEN, 1);
    ck_assert_uint_eq(a->n_attached, 0);
    ck_assert_uint_ge(a->n_new_clusters, cf);
    ck_assert_uint_le(a->n_new_clusters, 2 * cf);
    check_scores(a, s->tau, a->n_new_clusters);
    /* Fresh ids: above every existing id, contiguous in order of first appearance, pure. */
    int32_t next = top + 1;
    for (size_t i = 0; i < nf; i++) {
        ck_assert_int_gt(a->labels[i], top);
        ck_assert_int_le(a->labels[i], next);
        if (a->labels[i] == next)
            next++;
        for (size_t j = 0; j < i; j++)
            if (a->labels[j] == a->labels[i])
                ck_assert_int_eq(yf[j], yf[i]);
    }
    apply_ok(s, a);
    check_prefix(s, cl);
    /* The new clusters are stored: more points of those blobs join them. */
    int32_t *yf2;
    float *f2 = blobs(100, cf, 77, &yf2); /* same centres, same points: seed reuse */
    hl_assignment *b = assign_ok(s, NULL, 0, f2 + 50 * D, 50, HL_NEW_UNASSIGNED, 1);
    ck_assert_uint_eq(b->n_attached, 50);
    for (size_t i = 0; i < 50; i++)
        ck_assert_int_gt(b->labels[i], top);
    hl_assignment_free(b);
    hl_assignment_free(a);
    hl_assign_state_free(s);
    hl_clustering_free(cl);
    free(f2);
    free(yf2);
    free(x);
    free(y);
    free(f);
    free(yf);
}
END_TEST

/* With the unassigned policy, a batch that mixes near and far points keeps only the near
 * ones; stored rows never point at the points left out. */
START_TEST(test_unassigned_mixed)
{
    int32_t *y, *yf;
    size_t ns = 1200;
    float *x = blobs(ns + 200, 30, 9, &y);
    float *f = blobs(100, 4, 123, &yf);
    float *mix = malloc(300 * D * sizeof(float));
    for (size_t i = 0; i < 300; i++)
        memcpy(mix + i * D, i % 3 == 2 ? f + (i / 3) * D : x + (ns + i - i / 3) * D,
               D * sizeof(float));
    hl_clustering *cl;
    hl_assign_state *s = make_state(x, ns, NULL, 0, &cl);
    hl_assignment *a = assign_ok(s, NULL, 0, mix, 300, HL_NEW_UNASSIGNED, 1);
    for (size_t i = 0; i < 300; i++) {
        if (i % 3 == 2)
            ck_assert_int_eq(a->labels[i], -1);
        else
            EXPECT_MSG(a->labels[i] >= 0, "near point %zu unassigned", i);
    }
    ck_assert_uint_eq(a->n_kept, a->n_attached);
    apply_ok(s, a);
    check_prefix(s, cl);
    hl_assignment_free(a);
    hl_assign_state_free(s);
    hl_clustering_free(cl);
    free(mix);
    free(x);
    free(y);
    free(f);
    free(yf);
}
END_TEST

/* ------------------------------------------------------------------ with models */

static hl_model *tiny_trained_universal(void)
{
    int32_t *y;
    size_t n = 1500;
    float *x = tu_blobs(n, 12, 30, 0.35f, 4242, &y);
    hl_train_set set = {x, n, 12, y};
    hl_train_params tp;
    hl_train_params_default(&tp);
    tp.levels[0] = 2;
    tp.n_threads = 2;
    hl_train_data *td;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_msg(hl_train_data_build(&set, 1, &tp, &td, &err) == HL_OK, "%s", err.msg);
    hl_model_config cfg;
    hl_model_config_default(&cfg, HL_MODEL_UNIVERSAL, 0);
    cfg.hidden = 32;
    cfg.n_conv = 2;
    cfg.in_features = HL_FEAT_NODE;
    cfg.edge_features = HL_FEAT_EDGE;
    cfg.tau = 0.5f;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&cfg, NULL, &m), HL_OK);
    hl_model_init_params(m, 7);
    snprintf(m->name, sizeof(m->name), "tiny");
    hl_train_fit_normalizer(m, td);
    hl_optim_params op;
    hl_optim_params_default(&op);
    op.kind = HL_OPTIM_ADAM;
    op.lr = 0.01f;
    op.total_steps = 30 * td->n_graphs;
    hl_optim *o;
    ck_assert_int_eq(hl_optim_new(m, &op, &o), HL_OK);
    hl_epoch_stats es;
    for (int e = 0; e < 30; e++)
        ck_assert_int_eq(hl_train_epoch(m, td, o, &tp, e, &es), HL_OK);
    ck_assert_msg(es.link_acc > 0.8, "tiny model link accuracy %.3f", es.link_acc);
    hl_optim_free(o);
    hl_train_data_free(td);
    free(x);
    free(y);
    return m;
}

START_TEST(test_trained_model)
{
    hl_model *m = tiny_trained_universal();
    uint32_t crc = 0x1234abcdu;
    int32_t *y, *yf;
    size_t n = 2000, ns = 1400, c = 40;
    float *x = blobs(n, c, 21, &y);
    float *f = blobs(200, 4, 321, &yf);
    hl_clustering *cl;
    hl_assign_state *s = make_state(x, ns, m, crc, &cl);
    ck_assert_ptr_nonnull(s->levels[0].S);
    ck_assert_ptr_nonnull(s->levels[0].hidden[0]);
    int32_t top = max_id(cl->labels, ns);
    for (int b = 0; b < 2; b++) {
        hl_assignment *a =
            assign_ok(s, m, crc, x + (ns + 300 * (size_t)b) * D, 300, HL_NEW_OPEN, 2);
        double share =
            share_majority(y, cl->labels, ns, y + ns + 300 * (size_t)b, a->labels, 300, c);
        ck_assert_msg(share > 0.9, "batch %d: %.3f of new points got their blob's id", b, share);
        check_scores(a, s->tau, a->n_new_clusters);
        apply_ok(s, a);
        check_prefix(s, cl);
        hl_assignment_free(a);
    }
    hl_assignment *a = assign_ok(s, m, crc, f, 200, HL_NEW_OPEN, 2);
    ck_assert_uint_le(a->n_attached, 10);
    for (size_t i = 0; i < 200; i++)
        if (a->level[i] < 0)
            ck_assert_int_gt(a->labels[i], top);
    apply_ok(s, a);
    check_prefix(s, cl);
    hl_assignment_free(a);
    hl_assign_state_free(s);
    hl_clustering_free(cl);
    hl_model_free(m);
    free(x);
    free(y);
    free(f);
    free(yf);
}
END_TEST

static hl_model *random_model(hl_model_kind kind, int n_conv)
{
    hl_model_config cfg;
    hl_model_config_default(&cfg, kind, D);
    cfg.hidden = 16;
    cfg.n_conv = n_conv;
    cfg.in_features = kind == HL_MODEL_UNIVERSAL ? HL_FEAT_NODE : 2 * D + HL_FEAT_NODE;
    cfg.edge_features = kind == HL_MODEL_UNIVERSAL ? HL_FEAT_EDGE : 0;
    cfg.tau = 0.4f;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&cfg, NULL, &m), HL_OK);
    hl_model_init_params(m, 31);
    return m;
}

static void check_states_equal(const hl_assign_state *a, const hl_assign_state *b)
{
    ck_assert_uint_eq(a->n, b->n);
    ck_assert_int_eq(a->n_levels, b->n_levels);
    ck_assert_mem_eq(a->x, b->x, a->n * a->d * sizeof(float));
    ck_assert_mem_eq(a->labels, b->labels, a->n * sizeof(int32_t));
    hl_assign_widths w;
    hl_assign_widths_of(a->has_model, &a->model_cfg, &w);
    for (int l = 0; l < a->n_levels; l++) {
        const hl_assign_level *p = &a->levels[l], *q = &b->levels[l];
        size_t n = p->n, wd = (size_t)p->width;
        ck_assert_uint_eq(n, q->n);
        ck_assert_mem_eq(p->nbr, q->nbr, n * wd * sizeof(int32_t));
        ck_assert_mem_eq(p->sim, q->sim, n * wd * sizeof(float));
        ck_assert_mem_eq(p->dens, q->dens, n * sizeof(float));
        ck_assert_mem_eq(p->rep, q->rep, n * sizeof(int32_t));
        ck_assert_mem_eq(p->cnt, q->cnt, n * sizeof(int32_t));
        ck_assert_mem_eq(p->labels, q->labels, a->n * sizeof(int32_t));
        if (w.node > 0)
            ck_assert_mem_eq(p->node, q->node, n * w.node * sizeof(float));
        if (w.S > 0)
            ck_assert_mem_eq(p->S, q->S, n * w.S * sizeof(float));
        for (int h = 0; h < HL_MAX_CONV - 1; h++)
            if (w.hidden[h] > 0)
                ck_assert_mem_eq(p->hidden[h], q->hidden[h], n * w.hidden[h] * sizeof(float));
        if (p->cmean != NULL)
            ck_assert_mem_eq(p->cmean, q->cmean, n * a->d * sizeof(float));
    }
}

/* One and three engine threads give identical labels, scores and states. */
START_TEST(test_threads_identical)
{
    hl_model_kind kinds[2] = {HL_MODEL_UNIVERSAL, HL_MODEL_LANDER};
    int32_t *y;
    size_t ns = 1200, nn = 700;
    float *x = blobs(ns + nn, 30, 13, &y);
    for (int k = 0; k < 2; k++) {
        hl_model *m = random_model(kinds[k], 2);
        hl_clustering *c1, *c3;
        hl_assign_state *s1 = make_state(x, ns, m, 9, &c1);
        hl_assign_state *s3 = make_state(x, ns, m, 9, &c3);
        for (int b = 0; b < 2; b++) {
            const float *yb = x + (ns + 350 * (size_t)b) * D;
            hl_assignment *a1 = assign_ok(s1, m, 9, yb, 350, HL_NEW_OPEN, 1);
            hl_assignment *a3 = assign_ok(s3, m, 9, yb, 350, HL_NEW_OPEN, 3);
            ck_assert_mem_eq(a1->labels, a3->labels, 350 * sizeof(int32_t));
            ck_assert_mem_eq(a1->scores, a3->scores, 350 * sizeof(float));
            ck_assert_mem_eq(a1->level, a3->level, 350 * sizeof(int32_t));
            apply_ok(s1, a1);
            apply_ok(s3, a3);
            check_states_equal(s1, s3);
            hl_assignment_free(a1);
            hl_assignment_free(a3);
        }
        hl_assign_state_free(s1);
        hl_assign_state_free(s3);
        hl_clustering_free(c1);
        hl_clustering_free(c3);
        hl_model_free(m);
    }
    free(x);
    free(y);
}
END_TEST

/* ------------------------------------------------------------------ bad input */

START_TEST(test_bad_inputs)
{
    int32_t *y;
    size_t ns = 600;
    float *x = blobs(ns + 50, 20, 17, &y);
    hl_model *m = random_model(HL_MODEL_UNIVERSAL, 1);
    hl_model *other = random_model(HL_MODEL_UNIVERSAL, 2);
    hl_clustering *c, *cf;
    hl_assign_state *s = make_state(x, ns, m, 77, &c);
    hl_assign_state *sf = make_state(x, ns, NULL, 0, &cf);
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.model_checksum = 77;
    hl_assignment *a = NULL;
    hl_error err;
    const float *yb = x + ns * D;

    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_run(s, m, yb, 50, D - 1, &ap, &a, &err), HL_RANGE);
    ck_assert_str_eq(err.field, "dim");
    ck_assert_ptr_null(a);
    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_run(s, m, yb, 0, D, &ap, &a, &err), HL_INVAL);
    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_run(s, NULL, yb, 50, D, &ap, &a, &err), HL_INVAL);
    ck_assert_str_eq(err.field, "model");
    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_run(sf, m, yb, 50, D, &ap, &a, &err), HL_INVAL);
    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_run(s, other, yb, 50, D, &ap, &a, &err), HL_INVAL);
    ck_assert_msg(strstr(err.msg, "crc32c:0000004d") != NULL, "%s", err.msg);
    hl_error_clear(&err);
    ap.model_checksum = 78; /* same configuration, other checksum */
    ck_assert_int_eq(hl_assign_run(s, m, yb, 50, D, &ap, &a, &err), HL_INVAL);
    ap.model_checksum = 77;
    float *bad = malloc(50 * D * sizeof(float));
    memcpy(bad, yb, 50 * D * sizeof(float));
    bad[7 * D + 3] = NAN;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_run(s, m, bad, 50, D, &ap, &a, &err), HL_NUMERIC);
    ck_assert_uint_eq(err.offset, 7);
    ck_assert_uint_eq(err.col, 3);
    ap.n_threads = 0;
    ck_assert_int_eq(hl_assign_run(s, m, yb, 50, D, &ap, &a, NULL), HL_INVAL);
    ap.n_threads = 1;
    ap.new_clusters = (hl_new_clusters)7;
    ck_assert_int_eq(hl_assign_run(s, m, yb, 50, D, &ap, &a, NULL), HL_INVAL);
    ap.new_clusters = HL_NEW_OPEN;

    /* An assignment only applies to the state (and version) it was computed on. */
    a = assign_ok(s, m, 77, yb, 50, HL_NEW_OPEN, 1);
    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_apply(sf, a, &err), HL_INVAL);
    apply_ok(s, a);
    ck_assert_int_eq(hl_assign_apply(s, a, NULL), HL_INVAL); /* twice */
    hl_assignment_free(a);

    /* Zero vectors are fine: they have no edges and open singletons. */
    float zero[2 * D];
    memset(zero, 0, sizeof(zero));
    a = assign_ok(sf, NULL, 0, zero, 2, HL_NEW_OPEN, 1);
    ck_assert_int_ne(a->labels[0], a->labels[1]);
    ck_assert_uint_eq(a->n_new_clusters, 2);
    hl_assignment_free(a);

    /* A state needs two points. */
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    hl_assign_state *s1 = NULL;
    hl_clustering *c1 = NULL;
    ck_assert_int_eq(hl_cluster_run_state(x, 1, D, NULL, 0, &p, &c1, &s1, NULL), HL_INVAL);
    ck_assert_ptr_null(s1);
    free(bad);
    hl_assign_state_free(s);
    hl_assign_state_free(sf);
    hl_clustering_free(c);
    hl_clustering_free(cf);
    hl_model_free(m);
    hl_model_free(other);
    free(x);
    free(y);
}
END_TEST

/* Every corruption of a state is found by hl_assign_state_check(). */
START_TEST(test_state_check)
{
    int32_t *y;
    float *x = blobs(500, 15, 19, &y);
    hl_model *m = random_model(HL_MODEL_LANDER, 2);
    hl_clustering *c;
    hl_assign_state *s = make_state(x, 500, m, 1, &c);
    ck_assert_int_ge(s->n_levels, 2);
    hl_assign_level *L0 = &s->levels[0], *L1 = &s->levels[1];
    size_t w = (size_t)L0->width;
    hl_error err;
#define CORRUPT(stmt, undo)                                                                        \
    do {                                                                                           \
        stmt;                                                                                      \
        hl_error_clear(&err);                                                                      \
        ck_assert_msg(hl_assign_state_check(s, &err) == HL_FORMAT, "not caught: %s", #stmt);       \
        ck_assert(err.msg[0] != '\0');                                                             \
        undo;                                                                                      \
        ck_assert_int_eq(hl_assign_state_check(s, NULL), HL_OK);                                   \
    } while (0)
    int32_t keep = L0->rep[3];
    CORRUPT(L0->rep[3] = 4, L0->rep[3] = keep);
    keep = L1->rep[2];
    CORRUPT(L1->rep[2] = 500, L1->rep[2] = keep);
    keep = L0->nbr[5 * w];
    CORRUPT(L0->nbr[5 * w] = 5, L0->nbr[5 * w] = keep);
    CORRUPT(L0->nbr[5 * w] = (int32_t)L0->n, L0->nbr[5 * w] = keep);
    CORRUPT(L0->nbr[5 * w] = -2, L0->nbr[5 * w] = keep);
    keep = L0->deg[5];
    CORRUPT(L0->deg[5] = L0->width + 1, L0->deg[5] = keep);
    CORRUPT(L0->deg[5] = -1, L0->deg[5] = keep);
    keep = L1->cnt[0];
    CORRUPT(L1->cnt[0] = 0, L1->cnt[0] = keep);
    float fk = L0->dens[2];
    CORRUPT(L0->dens[2] = NAN, L0->dens[2] = fk);
    fk = L0->S[10];
    CORRUPT(L0->S[10] = INFINITY, L0->S[10] = fk);
    fk = s->x[17];
    CORRUPT(s->x[17] = NAN, s->x[17] = fk);
    keep = s->labels[9];
    CORRUPT(s->labels[9] = -2, s->labels[9] = keep);
    keep = L1->labels[9];
    CORRUPT(L1->labels[9] = -1, L1->labels[9] = keep);
    int wk = L0->width;
    CORRUPT(L0->width = 0, L0->width = wk);
    size_t nk = L1->n;
    CORRUPT(L1->n = L0->n + 1, L1->n = nk);
    CORRUPT(s->n_levels = 0, s->n_levels = c->n_levels);
    CORRUPT(s->n_levels = 65, s->n_levels = c->n_levels);
    CORRUPT(s->k = 1, s->k = 10);
    CORRUPT(s->tau = 1.5f, s->tau = m->cfg.tau);
    float *cm = L1->cmean;
    CORRUPT(L1->cmean = NULL, L1->cmean = cm);
    float *node = L0->node;
    CORRUPT(L0->node = NULL, L0->node = node);
    float *h = L0->hidden[0];
    CORRUPT(L0->hidden[0] = NULL, L0->hidden[0] = h);
    CORRUPT(L0->hidden[1] = h, L0->hidden[1] = NULL); /* present but not used */
    CORRUPT(s->model_cfg.hidden = 15, s->model_cfg.hidden = 16);
    CORRUPT(s->model_cfg.dim = D + 1, s->model_cfg.dim = D);
    CORRUPT(s->has_model = 2, s->has_model = 1);
    fk = s->x[3 * D];
    CORRUPT(s->x[3 * D] = 1.5f, s->x[3 * D] = fk);
    fk = L0->sim[0];
    CORRUPT(L0->sim[0] = 1.01f, L0->sim[0] = fk);
    fk = L1->cmean[D];
    CORRUPT(L1->cmean[D] = 2.0f, L1->cmean[D] = fk);
#undef CORRUPT
    hl_assign_state_free(s);
    hl_clustering_free(c);
    hl_model_free(m);
    free(x);
    free(y);
}
END_TEST

static int stop_after(void *ud)
{
    int *calls = ud;
    return ++*calls > 2;
}

START_TEST(test_cancel)
{
    int32_t *y;
    size_t ns = 1000;
    float *x = blobs(ns + 600, 20, 23, &y);
    hl_model *m = random_model(HL_MODEL_UNIVERSAL, 2);
    hl_clustering *c;
    hl_assign_state *s = make_state(x, ns, m, 5, &c);
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.model_checksum = 5;
    int calls = 0;
    ap.cancel.should_stop = stop_after;
    ap.cancel.ud = &calls;
    hl_assignment *a = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_assign_run(s, m, x + ns * D, 600, D, &ap, &a, &err), HL_CANCELED);
    ck_assert_ptr_null(a);
    ck_assert_uint_eq(s->n, ns);
    hl_assign_state_free(s);
    hl_clustering_free(c);
    hl_model_free(m);
    free(x);
    free(y);
}
END_TEST

Suite *assign_suite(void);

Suite *assign_suite(void)
{
    Suite *s = suite_create("assign");
    TCase *tc = tcase_create("assign");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_stable_ids_model_free);
    tcase_add_test(tc, test_far_points);
    tcase_add_test(tc, test_unassigned_mixed);
    tcase_add_test(tc, test_trained_model);
    tcase_add_test(tc, test_threads_identical);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_state_check);
    tcase_add_test(tc, test_cancel);
    suite_add_tcase(s, tc);
    return s;
}
