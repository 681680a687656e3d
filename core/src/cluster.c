/*
 * cluster.c - the multi-level driver; see hl/cluster.h.
 *
 * DESIGN
 * State across levels, all in one arena:
 *   xcur  (n x d): level-l node features, the normalised feature of each node's peak. Level 0
 *                  is the normalised input; afterwards peak rows are compacted in place
 *                  (peaks are kept in ascending order, so a row only ever moves forward).
 *   cmean (n x d): the mean of the normalised level-0 features of each node's members (the
 *                  "cluster feature"). At level 0 it is xcur itself; afterwards it is a
 *                  separate buffer updated in place: rows become sums, children are added
 *                  into their root's row, roots are compacted, sums become means again.
 *   cnt   (n):     members per node.
 *   node_of (N):   for every original point, the node that holds it at the current level.
 * Each level's labels come from node_of after the merge, relabelled by first appearance.
 * Work per level is O(n_l) plus O(N) for the labels, which the caller asked for anyway.
 */
#include "hl/cluster.h"

#include "hl/arena.h"
#include "hl/decode.h"
#include "hl/features.h"
#include "hl/graph.h"
#include "hl/knn.h"
#include "hl/mat.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hl_cluster_params_default(hl_cluster_params *p)
{
    memset(p, 0, sizeof(*p));
    p->k = 10;
    p->tau = 0.8f;
    p->max_levels = 10;
    p->early_stop = 1;
    p->min_cluster_size = 1;
    p->n_threads = 1;
}

hl_status hl_cluster_params_check(const hl_cluster_params *p, hl_error *err)
{
    if (p->k < 2 || p->k > 1024)
        return hl_error_set(err, HL_INVAL, "k", "k must be in [2, 1024], got %d", p->k);
    if (!(p->tau >= 0.0f && p->tau <= 1.0f))
        return hl_error_set(err, HL_INVAL, "tau", "tau must be in [0, 1], got %g", (double)p->tau);
    if (p->max_levels < 1 || p->max_levels > 64)
        return hl_error_set(err, HL_INVAL, "max_levels", "max_levels must be in [1, 64], got %d",
                            p->max_levels);
    if (p->min_cluster_size < 1)
        return hl_error_set(err, HL_INVAL, "min_cluster_size",
                            "min_cluster_size must be >= 1, got %d", p->min_cluster_size);
    if (p->knn != HL_KNN_AUTO && p->knn != HL_KNN_EXACT && p->knn != HL_KNN_IVF)
        return hl_error_set(err, HL_INVAL, "knn", "knn must be auto, exact or ivf");
    if (p->knn_nlist < 0 || p->knn_nprobe < 0)
        return hl_error_set(err, HL_INVAL, p->knn_nlist < 0 ? "nlist" : "nprobe",
                            "nlist and nprobe must be >= 0 (0: automatic)");
    if (p->n_threads < 1 || p->n_threads > HL_MAX_THREADS)
        return hl_error_set(err, HL_INVAL, "threads", "threads must be in [1, %d], got %d",
                            HL_MAX_THREADS, p->n_threads);
    return HL_OK;
}

static double now_sec(void)
{
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) == 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int eff_k(int k, size_t n)
{
    return (size_t)k > n ? (int)n : k;
}

/* The kNN parameters of one level. */
static hl_knn_params level_knn(const hl_cluster_params *p, int k, int level)
{
    hl_knn_params kp;
    hl_knn_params_default(&kp);
    kp.k = k;
    kp.n_threads = p->n_threads;
    kp.cancel = p->cancel;
    kp.progress = p->progress;
    kp.level = level;
    kp.method = p->knn;
    kp.exact_max = p->knn_exact_max;
    kp.nlist = p->knn_nlist;
    kp.nprobe = p->knn_nprobe;
    return kp;
}

size_t hl_cluster_plan(const hl_cluster_params *p, const hl_model *m, size_t n, size_t d)
{
    int k = eff_k(p->k, n > 1 ? n : 2);
    size_t kk = (size_t)k;
    size_t w = kk > 1 ? kk - 1 : 1;
    size_t b = 2 * hl_arena_block(n * d * sizeof(float)); /* xcur, cmean */
    b += hl_arena_block(n * sizeof(int32_t)) * 6; /* cnt, node_of, parent, root, newid, rep */
    b += hl_arena_block(n * kk * sizeof(int32_t)) + hl_arena_block(n * kk * sizeof(float));
    b += hl_graph_plan(n, k);
    b += hl_arena_block(n * w * sizeof(float)) + hl_arena_block(n * sizeof(float));
    hl_knn_params kp = level_knn(p, k, 0);
    size_t scratch = hl_knn_self_plan(n, d, &kp);
    if (m != NULL) {
        size_t lp = hl_lander_plan(m, n, k, p->n_threads);
        if (lp > scratch)
            scratch = lp;
        if (p->level_hook.fn != NULL) /* the kept hidden states and S of a level */
            b += (size_t)m->cfg.n_conv * hl_arena_block(n * (size_t)m->cfg.hidden * sizeof(float));
        if (hl_model_node_features(m) > 0 || m->cfg.edge_features > 0) {
            b += hl_arena_block(n * HL_FEAT_NODE * sizeof(float)) +
                 hl_arena_block(n * w * HL_FEAT_EDGE * sizeof(float)) +
                 hl_arena_block(n * sizeof(float)) + hl_features_plan(n, k - 1);
        }
    }
    return b + scratch + 4096;
}

size_t hl_relabel_first_appearance(int32_t *labels, size_t n, int32_t *map)
{
    for (size_t i = 0; i < n; i++)
        map[i] = -1;
    int32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t l = labels[i];
        if (l < 0)
            continue;
        if (map[l] < 0)
            map[l] = next++;
        labels[i] = map[l];
    }
    return (size_t)next;
}

void hl_clustering_free(hl_clustering *c)
{
    if (c == NULL)
        return;
    free(c->labels);
    free(c->level_labels);
    free(c->levels);
    free(c);
}

typedef struct cl_state {
    const hl_cluster_params *p;
    const hl_model *m;
    size_t N, d;
    hl_arena arena;
    float *xcur, *cmean;
    int32_t *cnt, *node_of, *parent, *root, *newid, *rep;
    int32_t *knn_idx;
    float *knn_sim, *prob, *dens;
    /* The level's views for the level hook (arena memory of the current level). */
    float *lv_node, *lv_hidden[HL_MAX_CONV - 1], *lv_S;
    hl_clustering *res;
    int cap_levels;
} cl_state;

static hl_status record_level(cl_state *S, const hl_level_stats *st)
{
    hl_clustering *r = S->res;
    if (r->n_levels == S->cap_levels) {
        int cap = S->cap_levels == 0 ? 4 : S->cap_levels * 2;
        int32_t *ll = realloc(r->level_labels, (size_t)cap * S->N * sizeof(int32_t));
        if (ll == NULL)
            return HL_NOMEM;
        r->level_labels = ll;
        hl_level_stats *ls = realloc(r->levels, (size_t)cap * sizeof(hl_level_stats));
        if (ls == NULL)
            return HL_NOMEM;
        r->levels = ls;
        S->cap_levels = cap;
    }
    int32_t *lab = r->level_labels + (size_t)r->n_levels * S->N;
    memcpy(lab, S->node_of, S->N * sizeof(int32_t));
    hl_level_stats s = *st;
    s.clusters = hl_relabel_first_appearance(lab, S->N, S->parent);
    r->levels[r->n_levels] = s;
    r->n_levels++;
    return HL_OK;
}

/* Structural features of the level, normalised with the model's statistics. */
static hl_status level_features(cl_state *S, const hl_graph *g, int level, float **node,
                                float **edge)
{
    size_t n = g->n, w = (size_t)g->width;
    hl_arena *a = &S->arena;
    float *size = hl_arena_alloc_array(a, n, sizeof(float), 64);
    *node = hl_arena_alloc_array(a, n * HL_FEAT_NODE, sizeof(float), 64);
    *edge = hl_arena_alloc_array(a, n * w * HL_FEAT_EDGE, sizeof(float), 64);
    if (size == NULL || *node == NULL || *edge == NULL)
        return HL_NOMEM;
    for (size_t i = 0; i < n; i++)
        size[i] = level == 0 ? 1.0f : (float)S->cnt[i];
    hl_status st = hl_features_compute(g, size, level, S->p->n_threads, a, *node, *edge);
    if (st != HL_OK)
        return st;
    const hl_model *m = S->m;
    hl_features_normalize(g, hl_model_node_features(m) > 0 ? *node : NULL,
                          m->cfg.edge_features > 0 ? *edge : NULL, m->node_mean, m->node_std,
                          m->edge_mean, m->edge_std);
    return HL_OK;
}

/* Scores and densities for the current level: the model, or the similarities themselves. */
static hl_status score_level(cl_state *S, const hl_graph *g, int level, size_t d)
{
    if (S->m == NULL) {
        hl_graph_density(g, NULL, S->dens);
        return HL_OK;
    }
    const hl_model *m = S->m;
    int nf = hl_model_node_features(m);
    float *node = NULL, *edge = NULL;
    if (nf > 0 || m->cfg.edge_features > 0) {
        hl_status st = level_features(S, g, level, &node, &edge);
        if (st != HL_OK)
            return st;
    }
    hl_node_input in;
    memset(&in, 0, sizeof(in));
    if (m->cfg.kind == HL_MODEL_LANDER) {
        in.part[in.n_parts] = S->xcur;
        in.dim[in.n_parts++] = d;
        if (m->cfg.use_cluster_feat) {
            in.part[in.n_parts] = level == 0 ? S->xcur : S->cmean;
            in.dim[in.n_parts++] = d;
        }
    }
    if (nf > 0) {
        in.part[in.n_parts] = node;
        in.dim[in.n_parts++] = (size_t)nf;
    }
    hl_forward_params fp;
    memset(&fp, 0, sizeof(fp));
    fp.n_threads = S->p->n_threads;
    fp.cancel = S->p->cancel;
    fp.progress = S->p->progress;
    fp.level = level;
    S->lv_node = nf > 0 ? node : NULL;
    if (S->p->level_hook.fn != NULL) {
        size_t n = g->n;
        for (int l = 0; l < m->cfg.n_conv - 1; l++) {
            fp.keep_hidden[l] = S->lv_hidden[l] =
                hl_arena_alloc_array(&S->arena, n * (size_t)m->conv_out[l], sizeof(float), 64);
            if (fp.keep_hidden[l] == NULL)
                return HL_NOMEM;
        }
        fp.keep_S = S->lv_S =
            hl_arena_alloc_array(&S->arena, n * (size_t)(m->cfg.hidden / 2), sizeof(float), 64);
        if (fp.keep_S == NULL)
            return HL_NOMEM;
    }
    return hl_lander_forward(m, g, &in, edge, &fp, &S->arena, S->prob, S->dens);
}

/* Merges the level's trees and moves every original point to its tree's new node. */
static void merge_level(cl_state *S, int level, size_t n)
{
    if (level == 0) /* every node is one point and its own mean: cmean gets the tree rows only */
        hl_decode_merge_first(S->parent, S->root, n, S->d, S->xcur, S->cmean, S->cnt, S->newid);
    else
        hl_decode_merge(S->parent, S->root, n, S->d, S->xcur, S->cmean, S->cnt, S->newid);
    for (size_t i = 0; i < n; i++) /* peaks move forward, as in hl_decode_merge */
        if (S->newid[i] >= 0)
            S->rep[S->newid[i]] = S->rep[i];
    for (size_t p = 0; p < S->N; p++)
        S->node_of[p] = S->newid[S->root[S->node_of[p]]];
}

static hl_status call_hook(cl_state *S, const hl_graph *g, int level, size_t links)
{
    hl_level_view v;
    memset(&v, 0, sizeof(v));
    v.level = level;
    v.n = g->n;
    v.d = S->d;
    v.g = g;
    v.rep = S->rep;
    v.cnt = level == 0 ? NULL : S->cnt;
    v.x = S->xcur;
    v.cmean = level == 0 ? S->xcur : S->cmean;
    v.dens = S->dens;
    v.links = links;
    if (S->m != NULL) {
        v.prob = S->prob;
        v.node = S->lv_node;
        for (int l = 0; l < S->m->cfg.n_conv - 1; l++)
            v.hidden[l] = S->lv_hidden[l];
        v.S = S->lv_S;
    }
    return S->p->level_hook.fn(S->p->level_hook.ud, &v);
}

static hl_status run_levels(cl_state *S)
{
    const hl_cluster_params *p = S->p;
    size_t n = S->N, d = S->d;
    double e_prev = INFINITY;
    for (int level = 0; level < p->max_levels; level++) {
        if (n < 2 || (level > 0 && n <= (size_t)p->k))
            break;
        hl_level_stats st;
        memset(&st, 0, sizeof(st));
        st.nodes = n;
        int k = eff_k(p->k, n);
        size_t mark = hl_arena_mark(&S->arena);
        double t0 = now_sec();
        hl_knn_params kp = level_knn(p, k, level);
        st.knn = hl_knn_choose(&kp, n);
        hl_status rc = hl_knn_self(S->xcur, n, d, &kp, &S->arena, S->knn_idx, S->knn_sim);
        if (rc != HL_OK)
            return rc;
        hl_graph g;
        if (hl_graph_init(&g, n, k, &S->arena) != HL_OK)
            return HL_NOMEM;
        hl_graph_from_knn(&g, S->knn_idx, S->knn_sim, k);
        st.edges = hl_graph_edges(&g);
        double t1 = now_sec();
        rc = score_level(S, &g, level, d);
        if (rc != HL_OK)
            return rc;
        double t2 = now_sec();
        if (hl_cancel_requested(&p->cancel))
            return HL_CANCELED;
        hl_progress_report(&p->progress, HL_STAGE_DECODE, level, 0.0);
        st.links = hl_decode_parents(&g, S->m != NULL ? S->prob : NULL, S->dens, p->tau, S->parent);
        rc = hl_decode_roots(S->parent, n, S->root);
        if (rc != HL_OK)
            return rc;
        size_t n_next = n - st.links;
        if (p->level_hook.fn != NULL) {
            rc = call_hook(S, &g, level, st.links);
            if (rc != HL_OK)
                return rc;
        }
        if (st.links > 0 || level == 0)
            merge_level(S, level, n);
        st.sec_knn = t1 - t0;
        st.sec_gnn = t2 - t1;
        st.sec_decode = now_sec() - t2;
        hl_progress_report(&p->progress, HL_STAGE_DECODE, level, 1.0);
        hl_arena_reset(&S->arena, mark);
        if (st.links == 0 && level > 0)
            break;
        rc = record_level(S, &st);
        if (rc != HL_OK)
            return rc;
        double e = (double)st.links;
        if (st.links == 0 || (p->early_stop && e_prev / e < (double)(p->k - 1)))
            break;
        e_prev = e;
        n = n_next;
    }
    return HL_OK;
}

static hl_status alloc_state(cl_state *S, size_t n, size_t d)
{
    int k = eff_k(S->p->k, n > 1 ? n : 2);
    size_t kk = (size_t)k;
    size_t w = kk > 1 ? kk - 1 : 1;
    hl_arena *a = &S->arena;
    if (S->xcur == NULL) /* not the caller's rows (hl_cluster_run_inplace) */
        S->xcur = hl_arena_alloc_array(a, n * d, sizeof(float), 64);
    S->cmean = hl_arena_alloc_array(a, n * d, sizeof(float), 64);
    S->cnt = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    S->node_of = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    S->parent = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    S->root = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    S->newid = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    S->rep = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    S->knn_idx = hl_arena_alloc_array(a, n * kk, sizeof(int32_t), 64);
    S->knn_sim = hl_arena_alloc_array(a, n * kk, sizeof(float), 64);
    S->prob = hl_arena_alloc_array(a, n * w, sizeof(float), 64);
    S->dens = hl_arena_alloc_array(a, n, sizeof(float), 64);
    if (S->xcur == NULL || S->cmean == NULL || S->cnt == NULL || S->node_of == NULL ||
        S->parent == NULL || S->root == NULL || S->newid == NULL || S->rep == NULL ||
        S->knn_idx == NULL || S->knn_sim == NULL || S->prob == NULL || S->dens == NULL)
        return HL_NOMEM;
    return HL_OK;
}

static hl_status finish(cl_state *S)
{
    hl_clustering *r = S->res;
    size_t N = S->N;
    r->labels = malloc(N * sizeof(int32_t));
    if (r->labels == NULL)
        return HL_NOMEM;
    memcpy(r->labels, r->level_labels + (size_t)(r->n_levels - 1) * N, N * sizeof(int32_t));
    if (S->p->min_cluster_size > 1) {
        int32_t *size = S->parent;
        memset(size, 0, N * sizeof(int32_t));
        for (size_t i = 0; i < N; i++)
            size[r->labels[i]]++;
        for (size_t i = 0; i < N; i++)
            if (size[r->labels[i]] < S->p->min_cluster_size)
                r->labels[i] = -1;
    }
    r->n_clusters = hl_relabel_first_appearance(r->labels, N, S->parent);
    r->arena_bytes = S->arena.cap;
    r->arena_peak = S->arena.peak;
    return HL_OK;
}

/* hl_cluster_run() and hl_cluster_run_inplace(): `own` is x itself when the rows may be
 * overwritten (they become the level-0 node features), NULL for a copy in the arena. */
static hl_status run(const float *x, float *own, size_t n, size_t d, const hl_model *m,
                     const hl_cluster_params *p, hl_clustering **out, hl_error *err)
{
    *out = NULL;
    hl_status st = hl_cluster_params_check(p, err);
    if (st != HL_OK)
        return st;
    if (x == NULL || n == 0 || d == 0)
        return hl_error_set(err, HL_INVAL, "embeddings",
                            "need at least one point of dimension >= 1");
    if (n > INT32_MAX || d > INT32_MAX)
        return hl_error_set(err, HL_INVAL, "embeddings", "too many points or dimensions");
    if (m != NULL && m->cfg.kind == HL_MODEL_LANDER && (size_t)m->cfg.dim != d)
        return hl_error_set(err, HL_RANGE, "model",
                            "model '%s' expects dimension %d, the embeddings have %zu", m->name,
                            (int)m->cfg.dim, d);
    if (m != NULL) {
        int nf = hl_model_node_features(m), ef = m->cfg.edge_features;
        if ((nf != 0 && nf != HL_FEAT_NODE) || (ef != 0 && ef != HL_FEAT_EDGE) ||
            (m->cfg.kind == HL_MODEL_UNIVERSAL && nf == 0))
            return hl_error_set(err, HL_RANGE, "model",
                                "model '%s' reads %d structural node and %d edge features; this "
                                "build computes %d and %d",
                                m->name, nf, ef, HL_FEAT_NODE, HL_FEAT_EDGE);
    }
    st = hl_check_finite(x, n, d, err);
    if (st != HL_OK)
        return st;

    cl_state S;
    memset(&S, 0, sizeof(S));
    S.p = p;
    S.m = m;
    S.N = n;
    S.d = d;
    S.res = calloc(1, sizeof(hl_clustering));
    if (S.res == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    S.res->n = n;
    size_t bytes = hl_cluster_plan(p, m, n, d);
    if (hl_arena_init(&S.arena, bytes) != HL_OK) {
        hl_clustering_free(S.res);
        return hl_error_set(err, HL_NOMEM, NULL, "cannot reserve %zu bytes for the job", bytes);
    }
    S.xcur = own;
    st = alloc_state(&S, n, d);
    if (st == HL_OK) {
        hl_l2norm_rows(x, S.xcur, n, d);
        for (size_t i = 0; i < n; i++)
            S.node_of[i] = S.rep[i] = (int32_t)i;
        st = run_levels(&S);
    }
    if (st == HL_OK && S.res->n_levels == 0) {
        /* A single point: one trivial level. */
        hl_level_stats ls;
        memset(&ls, 0, sizeof(ls));
        ls.nodes = n;
        st = record_level(&S, &ls);
    }
    if (st == HL_OK)
        st = finish(&S);
    hl_arena_deinit(&S.arena);
    if (st != HL_OK) {
        hl_clustering_free(S.res);
        if (st == HL_CANCELED)
            return hl_error_set(err, st, NULL, "canceled");
        return hl_error_set(err, st, NULL, "clustering failed: %s", hl_status_str(st));
    }
    *out = S.res;
    return HL_OK;
}

hl_status hl_cluster_run(const float *x, size_t n, size_t d, const hl_model *m,
                         const hl_cluster_params *p, hl_clustering **out, hl_error *err)
{
    return run(x, NULL, n, d, m, p, out, err);
}

hl_status hl_cluster_run_inplace(float *x, size_t n, size_t d, const hl_model *m,
                                 const hl_cluster_params *p, hl_clustering **out, hl_error *err)
{
    return run(x, x, n, d, m, p, out, err);
}
