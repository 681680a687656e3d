/*
 * train.c - training data (the ground-truth hierarchy), normalisation, balancing and epochs;
 * see hl/train.h.
 *
 * DESIGN
 * Each training graph owns one arena holding its graph and arrays, so freeing the data is
 * one loop. The hierarchy of a set is built exactly like inference builds levels (the same
 * kNN, graph, merge code), except that parents come from the ground-truth density with the
 * similarity as score and tau = 0 (spec 3.1), and labels follow the peaks.
 */
#include "hl/train.h"

#include "hl/arena.h"
#include "hl/decode.h"
#include "hl/features.h"
#include "hl/knn.h"
#include "hl/mat.h"
#include "hl/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct train_priv {
    hl_arena *arenas; /* one per graph */
    size_t cap;
} train_priv;

void hl_train_params_default(hl_train_params *p)
{
    memset(p, 0, sizeof(*p));
    p->n_settings = 1;
    p->knn_k[0] = 10;
    p->levels[0] = 3;
    p->balance = 1;
    p->n_threads = 1;
    p->seed = 1;
}

void hl_train_data_free(hl_train_data *td)
{
    if (td == NULL)
        return;
    train_priv *pv = td->priv;
    if (pv != NULL) {
        for (size_t i = 0; i < td->n_graphs; i++)
            hl_arena_deinit(&pv->arenas[i]);
        free(pv->arenas);
        free(pv);
    }
    free(td->graphs);
    free(td);
}

static hl_status check_sets(const hl_train_set *sets, size_t n_sets, const hl_train_params *p,
                            hl_error *err)
{
    if (n_sets == 0)
        return hl_error_set(err, HL_INVAL, "data", "no training data");
    if (p->n_settings < 1 || p->n_settings > HL_TRAIN_MAX_SETTINGS)
        return hl_error_set(err, HL_INVAL, "settings", "between 1 and %d (k, levels) settings",
                            HL_TRAIN_MAX_SETTINGS);
    for (int s = 0; s < p->n_settings; s++)
        if (p->knn_k[s] < 2 || p->knn_k[s] > 1024 || p->levels[s] < 1 || p->levels[s] > 16)
            return hl_error_set(err, HL_INVAL, "knn_k", "setting %d: k %d, levels %d out of range",
                                s, p->knn_k[s], p->levels[s]);
    for (size_t i = 0; i < n_sets; i++) {
        const hl_train_set *t = &sets[i];
        if (t->x == NULL || t->labels == NULL || t->n < 2 || t->d < 1 || t->n > INT32_MAX)
            return hl_error_set(err, HL_INVAL, "data", "set %zu: needs at least 2 points", i);
        if (hl_check_finite(t->x, t->n, t->d, err) != HL_OK)
            return HL_NUMERIC;
        int32_t first = t->labels[0];
        size_t j = 1;
        while (j < t->n && t->labels[j] == first)
            j++;
        if (j == t->n)
            return hl_error_set(err, HL_INVAL, "labels",
                                "set %zu: all %zu labels are equal; training needs at least 2 "
                                "classes",
                                i, t->n);
    }
    return HL_OK;
}

/* Allocates one graph's arrays from its own arena. */
static hl_status graph_alloc(hl_train_graph *tg, hl_arena *a, size_t n, size_t d, int k)
{
    size_t w = (size_t)(k - 1);
    size_t bytes =
        hl_graph_plan(n, k) + 2 * hl_arena_block(n * d * sizeof(float)) +
        3 * hl_arena_block(n * sizeof(float)) + hl_arena_block(n * HL_FEAT_NODE * sizeof(float)) +
        hl_arena_block(n * w * HL_FEAT_EDGE * sizeof(float)) + 2 * hl_arena_block(n * w) + 4096;
    if (hl_arena_init(a, bytes) != HL_OK || hl_graph_init(&tg->g, n, k, a) != HL_OK)
        return HL_NOMEM;
    tg->x = hl_arena_alloc_array(a, n * d, sizeof(float), 64);
    tg->c = hl_arena_alloc_array(a, n * d, sizeof(float), 64);
    tg->size = hl_arena_alloc_array(a, n, sizeof(float), 64);
    tg->gt_dens = hl_arena_alloc_array(a, n, sizeof(float), 64);
    tg->node = hl_arena_alloc_array(a, n * HL_FEAT_NODE, sizeof(float), 64);
    tg->edge = hl_arena_alloc_array(a, n * w * HL_FEAT_EDGE, sizeof(float), 64);
    tg->same = hl_arena_alloc_array(a, n * w, 1, 64);
    tg->mask = hl_arena_alloc_array(a, n * w, 1, 64);
    if (tg->x == NULL || tg->c == NULL || tg->size == NULL || tg->gt_dens == NULL ||
        tg->node == NULL || tg->edge == NULL || tg->same == NULL || tg->mask == NULL)
        return HL_NOMEM;
    return HL_OK;
}

/* Per-level working state of one (set, setting) hierarchy. */
typedef struct hier {
    size_t n, d;
    float *xn, *cm;
    int32_t *cnt, *y, *parent, *root, *newid, *idx;
    float *sim, *sizef;
} hier;

static void hier_free(hier *h)
{
    free(h->xn);
    free(h->cm);
    free(h->cnt);
    free(h->y);
    free(h->parent);
    free(h->root);
    free(h->newid);
    free(h->idx);
    free(h->sim);
    free(h->sizef);
}

static hl_status hier_init(hier *h, const hl_train_set *t, int k)
{
    memset(h, 0, sizeof(*h));
    size_t n = t->n, d = t->d, kk = (size_t)k;
    h->n = n;
    h->d = d;
    h->xn = malloc(n * d * sizeof(float));
    h->cm = malloc(n * d * sizeof(float));
    h->cnt = malloc(n * sizeof(int32_t));
    h->y = malloc(n * sizeof(int32_t));
    h->parent = malloc(n * sizeof(int32_t));
    h->root = malloc(n * sizeof(int32_t));
    h->newid = malloc(n * sizeof(int32_t));
    h->idx = malloc(n * kk * sizeof(int32_t));
    h->sim = malloc(n * kk * sizeof(float));
    h->sizef = malloc(n * sizeof(float));
    if (h->xn == NULL || h->cm == NULL || h->cnt == NULL || h->y == NULL || h->parent == NULL ||
        h->root == NULL || h->newid == NULL || h->idx == NULL || h->sim == NULL || h->sizef == NULL)
        return HL_NOMEM;
    hl_l2norm_rows(t->x, h->xn, n, d);
    memcpy(h->cm, h->xn, n * d * sizeof(float));
    memcpy(h->y, t->labels, n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        h->cnt[i] = 1;
    return HL_OK;
}

/* Builds one level's training graph from the hierarchy's current state. */
static hl_status build_graph(hier *h, int k, int level, int n_threads, hl_train_graph *tg,
                             hl_arena *a)
{
    size_t n = h->n, d = h->d, w = (size_t)(k - 1);
    hl_status st = graph_alloc(tg, a, n, d, k);
    if (st != HL_OK)
        return st;
    hl_knn_params kp;
    hl_knn_params_default(&kp);
    kp.k = k;
    kp.n_threads = n_threads;
    hl_arena scratch;
    if (hl_arena_init(&scratch, hl_knn_exact_plan(n, n, d, &kp) + hl_features_plan(n, k - 1)) !=
        HL_OK)
        return HL_NOMEM;
    st = hl_knn_exact(h->xn, n, h->xn, n, d, &kp, &scratch, h->idx, h->sim);
    if (st == HL_OK) {
        hl_graph_from_knn(&tg->g, h->idx, h->sim, k);
        hl_density_truth(h->idx, h->sim, n, k, h->y, tg->gt_dens);
        for (size_t i = 0; i < n; i++)
            h->sizef[i] = (float)h->cnt[i];
        st = hl_features_compute(&tg->g, h->sizef, level, n_threads, &scratch, tg->node, tg->edge);
    }
    hl_arena_deinit(&scratch);
    if (st != HL_OK)
        return st;
    memcpy(tg->x, h->xn, n * d * sizeof(float));
    memcpy(tg->c, h->cm, n * d * sizeof(float));
    memcpy(tg->size, h->sizef, n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        for (size_t s = 0; s < w; s++) {
            size_t e = i * w + s;
            int32_t j = tg->g.nbr[e];
            int used = (int)s < tg->g.deg[i];
            tg->same[e] = used && h->y[j] == h->y[i];
            tg->mask[e] = used && tg->gt_dens[j] > tg->gt_dens[i];
        }
    }
    tg->d = d;
    tg->k = k;
    tg->level = level;
    return HL_OK;
}

/* Decodes with the ground truth (similarity scores, tau 0) and moves to the next level. */
static hl_status next_level(hier *h, const hl_train_graph *tg)
{
    hl_decode_parents(&tg->g, NULL, tg->gt_dens, 0.0f, h->parent);
    hl_status st = hl_decode_roots(h->parent, h->n, h->root);
    if (st != HL_OK)
        return st;
    size_t m = hl_decode_merge(h->parent, h->root, h->n, h->d, h->xn, h->cm, h->cnt, h->newid);
    for (size_t i = 0; i < h->n; i++)
        if (h->newid[i] >= 0)
            h->y[h->newid[i]] = h->y[i];
    h->n = m;
    return HL_OK;
}

static hl_status push_graph(hl_train_data *td, train_priv *pv, hl_train_graph **tg, hl_arena **a)
{
    if (td->n_graphs == pv->cap) {
        size_t cap = pv->cap == 0 ? 8 : pv->cap * 2;
        hl_train_graph *g = realloc(td->graphs, cap * sizeof(*g));
        if (g == NULL)
            return HL_NOMEM;
        td->graphs = g;
        hl_arena *ar = realloc(pv->arenas, cap * sizeof(*ar));
        if (ar == NULL)
            return HL_NOMEM;
        pv->arenas = ar;
        pv->cap = cap;
    }
    *tg = &td->graphs[td->n_graphs];
    *a = &pv->arenas[td->n_graphs];
    memset(*tg, 0, sizeof(**tg));
    memset(*a, 0, sizeof(**a));
    td->n_graphs++;
    return HL_OK;
}

static hl_status build_hierarchy(hl_train_data *td, const hl_train_set *t, int set, int setting,
                                 const hl_train_params *p)
{
    int k = p->knn_k[setting];
    hier h;
    hl_status st = hier_init(&h, t, k);
    for (int level = 0; st == HL_OK && level < p->levels[setting]; level++) {
        if (h.n <= (size_t)k)
            break;
        hl_train_graph *tg;
        hl_arena *a;
        st = push_graph(td, td->priv, &tg, &a);
        if (st == HL_OK)
            st = build_graph(&h, k, level, p->n_threads, tg, a);
        if (st != HL_OK)
            break;
        tg->set = set;
        tg->setting = setting;
        hl_progress_report(&p->progress, HL_STAGE_TRAIN, level, 1.0);
        if (level + 1 < p->levels[setting])
            st = next_level(&h, tg);
    }
    hier_free(&h);
    return st;
}

hl_status hl_train_data_build(const hl_train_set *sets, size_t n_sets, const hl_train_params *p,
                              hl_train_data **out, hl_error *err)
{
    *out = NULL;
    hl_status st = check_sets(sets, n_sets, p, err);
    if (st != HL_OK)
        return st;
    hl_train_data *td = calloc(1, sizeof(*td));
    train_priv *pv = calloc(1, sizeof(*pv));
    if (td == NULL || pv == NULL) {
        free(td);
        free(pv);
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    }
    td->priv = pv;
    for (size_t i = 0; st == HL_OK && i < n_sets; i++)
        for (int s = 0; st == HL_OK && s < p->n_settings; s++)
            st = build_hierarchy(td, &sets[i], (int)i, s, p);
    if (st != HL_OK) {
        hl_train_data_free(td);
        return hl_error_set(err, st, NULL, "building the training graphs failed: %s",
                            hl_status_str(st));
    }
    *out = td;
    return HL_OK;
}

/* Mean and standard deviation of `cols` columns over the used rows of every graph. */
static void column_stats(const hl_train_data *td, int edges, size_t cols, float *mean, float *std)
{
    double s[64] = {0}, q[64] = {0}, cnt = 0.0;
    for (size_t gi = 0; gi < td->n_graphs; gi++) {
        const hl_train_graph *tg = &td->graphs[gi];
        size_t w = (size_t)tg->g.width;
        for (size_t i = 0; i < tg->g.n; i++) {
            size_t rows = edges ? (size_t)tg->g.deg[i] : 1;
            for (size_t r = 0; r < rows; r++) {
                const float *x =
                    edges ? tg->edge + (i * w + r) * HL_FEAT_EDGE : tg->node + i * HL_FEAT_NODE;
                for (size_t c = 0; c < cols; c++) {
                    s[c] += x[c];
                    q[c] += (double)x[c] * x[c];
                }
                cnt += 1.0;
            }
        }
    }
    for (size_t c = 0; c < cols; c++) {
        double mu = cnt > 0 ? s[c] / cnt : 0.0;
        double var = cnt > 0 ? q[c] / cnt - mu * mu : 0.0;
        double sd = var > 1e-12 ? sqrt(var) : 1.0;
        mean[c] = (float)mu;
        std[c] = (float)sd;
    }
}

void hl_train_fit_normalizer_stats(hl_model *m, const hl_train_data *td)
{
    int nf = hl_model_node_features(m), ef = m->cfg.edge_features;
    if (td->normalized)
        return;
    if (nf > 0)
        column_stats(td, 0, HL_FEAT_NODE, m->node_mean, m->node_std);
    if (ef > 0)
        column_stats(td, 1, HL_FEAT_EDGE, m->edge_mean, m->edge_std);
}

void hl_train_fit_normalizer(hl_model *m, hl_train_data *td)
{
    hl_train_fit_normalizer_stats(m, td);
    hl_train_apply_normalizer(m, td);
}

void hl_train_apply_normalizer(const hl_model *m, hl_train_data *td)
{
    int nf = hl_model_node_features(m), ef = m->cfg.edge_features;
    if (td->normalized || (nf == 0 && ef == 0))
        return;
    for (size_t gi = 0; gi < td->n_graphs; gi++) {
        hl_train_graph *tg = &td->graphs[gi];
        hl_features_normalize(&tg->g, nf > 0 ? tg->node : NULL, ef > 0 ? tg->edge : NULL,
                              m->node_mean, m->node_std, m->edge_mean, m->edge_std);
    }
    td->normalized = 1;
}

size_t hl_train_balance(const hl_train_graph *tg, uint64_t seed, uint8_t *sel)
{
    size_t w = (size_t)tg->g.width, E = tg->g.n * w, pos = 0, neg = 0;
    for (size_t e = 0; e < E; e++) {
        sel[e] = tg->mask[e];
        if (tg->mask[e])
            tg->same[e] ? pos++ : neg++;
    }
    if (pos == neg || pos == 0 || neg == 0)
        return pos + neg;
    uint8_t major = pos > neg ? 1 : 0;
    size_t n_major = pos > neg ? pos : neg, keep = pos > neg ? neg : pos;
    int32_t *ids = malloc(n_major * sizeof(int32_t));
    if (ids == NULL)
        return pos + neg; /* unbalanced but valid: every masked edge */
    size_t k = 0;
    for (size_t e = 0; e < E; e++)
        if (tg->mask[e] && tg->same[e] == major)
            ids[k++] = (int32_t)e;
    /* Partial Fisher-Yates: the first `keep` ids are a uniform sample; drop the rest. */
    hl_rng r;
    hl_rng_seed(&r, seed);
    for (size_t i = 0; i < keep; i++) {
        size_t j = i + (size_t)hl_rng_below(&r, (uint64_t)(n_major - i));
        int32_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    for (size_t i = keep; i < n_major; i++)
        sel[ids[i]] = 0;
    free(ids);
    return 2 * keep;
}

hl_status hl_train_epoch(hl_model *m, hl_train_data *td, hl_optim *o, const hl_train_params *p,
                         int epoch, hl_epoch_stats *st)
{
    memset(st, 0, sizeof(*st));
    size_t ng = td->n_graphs, max_e = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t e = td->graphs[i].g.n * (size_t)td->graphs[i].g.width;
        if (e > max_e)
            max_e = e;
    }
    int32_t *order = malloc((ng + 1) * sizeof(int32_t));
    uint8_t *sel = malloc(max_e + 1);
    float *grad = malloc(m->n_params * sizeof(float));
    hl_status rc = HL_OK;
    if (order == NULL || sel == NULL || grad == NULL) {
        rc = HL_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < ng; i++)
        order[i] = (int32_t)i;
    hl_rng r;
    hl_rng_split(&r, p->seed, (uint64_t)epoch);
    hl_rng_shuffle_i32(&r, order, ng);
    size_t sel_total = 0, correct = 0;
    for (size_t q = 0; q < ng; q++) {
        const hl_train_graph *tg = &td->graphs[order[q]];
        uint64_t bseed =
            p->seed ^ ((uint64_t)epoch * (uint64_t)0x9E3779B97F4A7C15u) ^ (uint64_t)order[q];
        if (p->balance)
            hl_train_balance(tg, bseed, sel);
        hl_grad_stats gs;
        rc = hl_lander_grad(m, tg, p->balance ? sel : NULL, p->n_threads, grad, &gs);
        if (rc != HL_OK)
            goto done;
        hl_optim_step(o, m, grad);
        st->loss += gs.loss;
        st->loss_conn += gs.loss_conn;
        st->loss_den += gs.loss_den;
        sel_total += gs.n_sel;
        correct += gs.n_correct;
        st->steps++;
    }
    if (st->steps > 0) {
        st->loss /= (double)st->steps;
        st->loss_conn /= (double)st->steps;
        st->loss_den /= (double)st->steps;
    }
    st->link_acc = sel_total > 0 ? (double)correct / (double)sel_total : 0.0;
done:
    free(order);
    free(sel);
    free(grad);
    return rc;
}
