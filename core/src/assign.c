/*
 * assign.c - the incremental assignment driver; see hl/assign.h for the algorithm.
 *
 * DESIGN
 * One arena per call. Per level, the decode results that the final labelling reads (parent,
 * score, terminal, next-level index of each new node) are allocated before the level's
 * mark and survive; kNN buffers, weights, in-degrees, edge features and the model's scratch
 * are released when the level ends. What the state keeps of the new nodes (rows, densities,
 * features, hidden states, S, peaks, counts, means) is malloc'd into the pending additions
 * that hl_assign_apply() appends.
 * A new node's terminal is the stored node its parent chain reaches (>= 0) or -(r + 1) for
 * the new root r of its tree. Chains are resolved with memoisation, O(nn) per level.
 */
#include "assign_internal.h"

#include "hl/knn.h"
#include "hl/mat.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TERM_UNKNOWN INT32_MIN

void hl_assign_params_default(hl_assign_params *p)
{
    memset(p, 0, sizeof(*p));
    p->new_clusters = HL_NEW_OPEN;
    p->attach = HL_ATTACH_ANY;
    p->n_threads = 1;
}

/* Per-level decode results (arena, kept until the labels are done). */
typedef struct as_dec {
    int32_t *parent; /* unified id or -1 */
    float *pscore;
    int32_t *term;
    int32_t *up; /* roots: index among the next level's new nodes; else -1 */
} as_dec;

typedef struct as_run {
    const hl_assign_state *s;
    const hl_model *m;
    const hl_assign_params *p;
    hl_assign_widths w;
    size_t n, d;
    int nf, ef; /* structural node / edge features the model reads */
    hl_arena arena;
    hl__apending *P;
    hl_assignment *A;
    as_dec dec[HL_ASSIGN_MAX_LEVELS];
    int n_run; /* levels that had new nodes */
} as_run;

/* Per-level scratch. */
typedef struct as_lvl {
    size_t ns, nn;
    int width, ks, kq;
    const float *xs, *xq;
    int32_t *idx_s, *idx_n, *indeg;
    float *sim_s, *sim_n, *w, *prob, *edge, *node_raw;
} as_lvl;

static int stored_k(int width, size_t ns)
{
    size_t k = 2 * ((size_t)width + 1);
    return (int)(k < ns ? k : ns);
}

static int new_k(int width, size_t nn)
{
    size_t k = (size_t)width + 1;
    return (int)(k < nn ? k : nn);
}

/* Scratch bytes of one level with up to nn new nodes. */
static size_t level_plan(const as_run *R, const hl_assign_level *L, int l, size_t nn)
{
    size_t ns = L->n, d = R->d, w = (size_t)L->width;
    size_t ks = (size_t)stored_k(L->width, ns), kq = (size_t)new_k(L->width, nn);
    size_t b = 0;
    if (l > 0)
        b += hl_arena_block(ns * d * 4) + hl_arena_block(nn * d * 4);
    b += 2 * hl_arena_block(nn * ks * 4) + 2 * hl_arena_block(nn * kq * 4);
    b += 2 * hl_arena_block(nn * w * 4) + hl_arena_block(nn * 4);
    if (R->m != NULL) {
        b += hl_arena_block(nn * w * HL_FEAT_EDGE * 4) + hl_arena_block(nn * HL_FEAT_NODE * 4);
        b += hl__assign_forward_plan(R->m, nn, L->width, R->p->n_threads);
    }
    hl_knn_params kp;
    hl_knn_params_default(&kp);
    kp.n_threads = R->p->n_threads;
    return b + hl_knn_exact_plan(nn, ns, d, &kp);
}

static size_t run_plan(const as_run *R)
{
    size_t most = 0;
    for (int l = 0; l < R->s->n_levels; l++) {
        size_t b = level_plan(R, &R->s->levels[l], l, R->n);
        most = b > most ? b : most;
    }
    /* Decode results of every level. */
    return most + (size_t)R->s->n_levels * 4 * hl_arena_block(R->n * 4) + 4096;
}

/* ------------------------------------------------------------------ rows */

/* Merges the stored and new candidates of every new node into its row (the k - 1 best with
 * similarity > 0, equal similarities by unified id) and counts in-degrees. */
static void build_rows(const as_run *R, const hl_assign_level *L, as_lvl *V, hl__anodes *A)
{
    size_t w = (size_t)V->width, ns = V->ns;
    for (size_t i = 0; i < V->nn; i++) {
        const int32_t *ia = V->idx_s + i * (size_t)V->ks, *ib = V->idx_n + i * (size_t)V->kq;
        const float *sa = V->sim_s + i * (size_t)V->ks, *sb = V->sim_n + i * (size_t)V->kq;
        int32_t *nb = A->nbr + i * w;
        float *sm = A->sim + i * w, *ww = V->w + i * w;
        int a = 0, b = 0, deg = 0, rev = 0;
        double sum = 0.0;
        while (deg < V->width) {
            while (b < V->kq && (ib[b] < 0 || (size_t)ib[b] == i))
                b++;
            int has_a = a < V->ks && ia[a] >= 0, has_b = b < V->kq;
            if (!has_a && !has_b)
                break;
            int take_a = has_a && (!has_b || sa[a] >= sb[b]);
            float s = take_a ? sa[a] : sb[b];
            if (!(s > 0.0f))
                break;
            nb[deg] = take_a ? ia[a++] : (int32_t)(ns + (size_t)ib[b++]);
            sm[deg] = s;
            sum += (double)s;
            deg++;
        }
        for (int c = 0; c < deg; c++)
            ww[c] = (float)((double)sm[c] / sum);
        for (size_t c = (size_t)deg; c < w; c++) {
            nb[c] = -1;
            sm[c] = 0.0f;
            ww[c] = 0.0f;
        }
        A->deg[i] = deg;
        /* Stored candidates whose row this node would enter. */
        for (int c = 0; c < V->ks && ia[c] >= 0; c++) {
            size_t j = (size_t)ia[c];
            float thr = L->deg[j] == L->width ? L->sim[j * w + w - 1] : 0.0f;
            rev += sa[c] > 0.0f && sa[c] > thr;
        }
        V->indeg[i] = rev;
    }
    (void)R;
    for (size_t i = 0; i < V->nn; i++)
        for (int c = 0; c < A->deg[i]; c++)
            if ((size_t)A->nbr[i * w + (size_t)c] >= ns)
                V->indeg[(size_t)A->nbr[i * w + (size_t)c] - ns]++;
}

static hl_status find_neighbours(as_run *R, int l, as_lvl *V, hl__anodes *A)
{
    const hl_assign_level *L = &R->s->levels[l];
    hl_arena *a = &R->arena;
    size_t d = R->d, nn = V->nn, ns = V->ns;
    if (l == 0) {
        V->xs = R->s->x;
        V->xq = R->P->xn;
    } else {
        float *xs = hl_arena_alloc_array(a, ns * d, sizeof(float), 64);
        float *xq = hl_arena_alloc_array(a, nn * d, sizeof(float), 64);
        if (xs == NULL || xq == NULL)
            return HL_NOMEM;
        for (size_t j = 0; j < ns; j++)
            memcpy(xs + j * d, R->s->x + (size_t)L->rep[j] * d, d * sizeof(float));
        for (size_t v = 0; v < nn; v++)
            memcpy(xq + v * d, R->P->xn + (size_t)A->pt[v] * d, d * sizeof(float));
        V->xs = xs;
        V->xq = xq;
    }
    V->idx_s = hl_arena_alloc_array(a, nn * (size_t)V->ks, sizeof(int32_t), 64);
    V->sim_s = hl_arena_alloc_array(a, nn * (size_t)V->ks, sizeof(float), 64);
    V->idx_n = hl_arena_alloc_array(a, nn * (size_t)V->kq, sizeof(int32_t), 64);
    V->sim_n = hl_arena_alloc_array(a, nn * (size_t)V->kq, sizeof(float), 64);
    V->w = hl_arena_alloc_array(a, nn * (size_t)V->width, sizeof(float), 64);
    V->indeg = hl_arena_alloc_array(a, nn, sizeof(int32_t), 64);
    if (V->idx_s == NULL || V->sim_s == NULL || V->idx_n == NULL || V->sim_n == NULL ||
        V->w == NULL || V->indeg == NULL)
        return HL_NOMEM;
    const hl_assign_params *p = R->p;
    hl_knn_params kp = {V->ks, p->n_threads, p->cancel, p->progress, l};
    hl_status st = hl_knn_exact(V->xq, nn, V->xs, ns, d, &kp, a, V->idx_s, V->sim_s);
    kp.k = V->kq;
    if (st == HL_OK)
        st = hl_knn_exact(V->xq, nn, V->xq, nn, d, &kp, a, V->idx_n, V->sim_n);
    if (st != HL_OK)
        return st;
    build_rows(R, L, V, A);
    return HL_OK;
}

/* ------------------------------------------------------------------ scores */

static void standardize(float *x, size_t cols, const float *mean, const float *std)
{
    for (size_t c = 0; c < cols; c++) {
        float sd = std[c] > 0.0f ? std[c] : 1.0f;
        x[c] = (x[c] - mean[c]) / sd;
    }
}

/* Structural features of the new nodes, normalised with the model's statistics. */
static hl_status level_features(as_run *R, const hl__mixed *g, as_lvl *V, hl__anodes *A)
{
    size_t nn = V->nn, w = (size_t)V->width;
    const hl_model *m = R->m;
    V->edge = hl_arena_alloc_array(&R->arena, nn * w * HL_FEAT_EDGE, sizeof(float), 64);
    float *node = A->node;
    if (node == NULL)
        node = V->node_raw = hl_arena_alloc_array(&R->arena, nn * HL_FEAT_NODE, 4, 64);
    if (V->edge == NULL || node == NULL)
        return HL_NOMEM;
    hl__assign_features(g, 0, nn, node, V->edge);
    for (size_t v = 0; v < nn; v++) {
        if (R->nf > 0)
            standardize(node + v * HL_FEAT_NODE, HL_FEAT_NODE, m->node_mean, m->node_std);
        if (R->ef > 0)
            for (int c = 0; c < A->deg[v]; c++)
                standardize(V->edge + (v * w + (size_t)c) * HL_FEAT_EDGE, HL_FEAT_EDGE,
                            m->edge_mean, m->edge_std);
    }
    return HL_OK;
}

static hl_status score_level(as_run *R, int l, as_lvl *V, hl__anodes *A)
{
    const hl_assign_level *L = &R->s->levels[l];
    size_t nn = V->nn, w = (size_t)V->width, d = R->d;
    V->prob = hl_arena_alloc_array(&R->arena, nn * w, sizeof(float), 64);
    if (V->prob == NULL)
        return HL_NOMEM;
    hl__mixed g = {V->width,
                   l,
                   V->ns,
                   nn,
                   L->nbr,
                   L->deg,
                   l > 0 ? L->cnt : NULL,
                   L->sim,
                   A->nbr,
                   A->deg,
                   l > 0 ? A->cnt : NULL,
                   A->sim,
                   V->w,
                   V->indeg,
                   L->fstats};
    if (R->m == NULL) { /* model-free: the similarity is the score */
        memcpy(V->prob, A->sim, nn * w * sizeof(float));
        hl_graph gg = {nn, V->width, A->nbr, A->sim, V->w, A->deg};
        hl_graph_density(&gg, NULL, A->dens);
        return HL_OK;
    }
    const hl_model *m = R->m;
    if (R->nf > 0 || R->ef > 0) {
        hl_status st = level_features(R, &g, V, A);
        if (st != HL_OK)
            return st;
    }
    hl__ainput in;
    memset(&in, 0, sizeof(in));
    if (m->cfg.kind == HL_MODEL_LANDER) {
        const int32_t *idx = l == 0 ? NULL : L->rep;
        in.part[in.n_parts++] = (hl__apart){R->s->x, idx, V->xq, d};
        if (m->cfg.use_cluster_feat) {
            if (l == 0)
                in.part[in.n_parts++] = (hl__apart){R->s->x, NULL, V->xq, d};
            else
                in.part[in.n_parts++] = (hl__apart){L->cmean, NULL, A->cmean, d};
        }
    }
    if (R->nf > 0)
        in.part[in.n_parts++] = (hl__apart){L->node, NULL, A->node, HL_FEAT_NODE};
    hl__astored st;
    memset(&st, 0, sizeof(st));
    hl__anew_out out;
    memset(&out, 0, sizeof(out));
    for (int h = 0; h < HL_MAX_CONV - 1; h++) {
        st.hidden[h] = L->hidden[h];
        out.hidden[h] = A->hidden[h];
    }
    st.S = L->S;
    out.S = A->S;
    out.prob = V->prob;
    out.dens = A->dens;
    hl_forward_params fp;
    memset(&fp, 0, sizeof(fp));
    fp.n_threads = R->p->n_threads;
    fp.cancel = R->p->cancel;
    fp.progress = R->p->progress;
    fp.level = l;
    return hl__assign_forward(m, &g, &in, &st, V->edge, &fp, &R->arena, &out);
}

/* ------------------------------------------------------------------ decode */

static void decode_parents(const as_run *R, const hl_assign_level *L, const as_lvl *V,
                           const hl__anodes *A, as_dec *D)
{
    size_t w = (size_t)V->width, ns = V->ns;
    float tau = R->s->tau;
    int any = R->p->attach == HL_ATTACH_ANY;
    for (size_t v = 0; v < V->nn; v++) {
        float dq = A->dens[v], bp = 0.0f;
        int32_t best = -1;
        for (int c = 0; c < A->deg[v]; c++) {
            int32_t j = A->nbr[v * w + (size_t)c];
            float p = V->prob[v * w + (size_t)c];
            if (!(p > tau))
                continue;
            int ok;
            if ((size_t)j < ns) {
                ok = any || L->dens[j] >= dq; /* equal: the stored id is lower */
            } else {
                size_t u = (size_t)j - ns;
                ok = A->dens[u] > dq || (A->dens[u] == dq && u < v);
            }
            if (ok && (best < 0 || p > bp)) {
                best = j;
                bp = p;
            }
        }
        D->parent[v] = best;
        D->pscore[v] = best >= 0 ? bp : 0.0f;
    }
}

/* Terminal of every new node: the stored node its chain reaches, or -(root + 1). */
static hl_status resolve_chains(size_t nn, size_t ns, as_dec *D)
{
    for (size_t v = 0; v < nn; v++)
        D->term[v] = TERM_UNKNOWN;
    for (size_t v = 0; v < nn; v++) {
        size_t cur = v, steps = 0;
        while (D->term[cur] == TERM_UNKNOWN && D->parent[cur] >= 0 &&
               (size_t)D->parent[cur] >= ns) {
            if (++steps > nn)
                return HL_INTERNAL; /* a cycle: the density order forbids it */
            cur = (size_t)D->parent[cur] - ns;
        }
        int32_t t = D->term[cur];
        if (t == TERM_UNKNOWN)
            t = D->parent[cur] >= 0 ? D->parent[cur] : -(int32_t)cur - 1;
        for (size_t u = v; D->term[u] == TERM_UNKNOWN; u = (size_t)D->parent[u] - ns) {
            D->term[u] = t;
            if (D->parent[u] < 0 || (size_t)D->parent[u] < ns)
                break;
        }
    }
    return HL_OK;
}

static hl_status alloc_nodes(hl__anodes *A, size_t nn, int width, size_t d, int l,
                             const hl_assign_widths *w)
{
    size_t wd = (size_t)width, b = nn > 0 ? nn : 1;
    A->nbr = malloc(b * wd * sizeof(int32_t));
    A->sim = malloc(b * wd * sizeof(float));
    A->deg = malloc(b * sizeof(int32_t));
    A->dens = malloc(b * sizeof(float));
    A->keep = malloc(b * sizeof(int32_t));
    if (A->nbr == NULL || A->sim == NULL || A->deg == NULL || A->dens == NULL || A->keep == NULL)
        return HL_NOMEM;
    if (w->node > 0 && (A->node = malloc(b * w->node * sizeof(float))) == NULL)
        return HL_NOMEM;
    for (int h = 0; h < HL_MAX_CONV - 1; h++)
        if (w->hidden[h] > 0 && (A->hidden[h] = malloc(b * w->hidden[h] * sizeof(float))) == NULL)
            return HL_NOMEM;
    if (w->S > 0 && (A->S = malloc(b * w->S * sizeof(float))) == NULL)
        return HL_NOMEM;
    (void)d;
    (void)l;
    return HL_OK;
}

/* The roots of level l become the new nodes of level l + 1 (peak, count, cluster mean). */
static hl_status next_level(as_run *R, int l, const hl__anodes *A, as_dec *D)
{
    size_t nn = A->nn, d = R->d, roots = 0;
    for (size_t v = 0; v < nn; v++)
        D->up[v] = D->parent[v] < 0 ? (int32_t)roots++ : -1;
    if (l + 1 >= R->s->n_levels || roots == 0)
        return HL_OK;
    hl__anodes *B = &R->P->lv[l + 1];
    B->nn = roots;
    B->pt = malloc(roots * sizeof(int32_t));
    B->cnt = calloc(roots, sizeof(int32_t));
    int means = R->w.cmean;
    if (means)
        B->cmean = calloc(roots * d, sizeof(float));
    if (B->pt == NULL || B->cnt == NULL || (means && B->cmean == NULL))
        return HL_NOMEM;
    for (size_t v = 0; v < nn; v++)
        if (D->up[v] >= 0)
            B->pt[D->up[v]] = A->pt[v];
    for (size_t v = 0; v < nn; v++) {
        if (D->term[v] >= 0)
            continue;
        size_t r = (size_t)D->up[(size_t)(-(D->term[v] + 1))];
        int32_t c = A->cnt[v];
        B->cnt[r] += c;
        if (!means)
            continue;
        const float *src = l == 0 ? R->P->xn + (size_t)A->pt[v] * d : A->cmean + v * d;
        float *dst = B->cmean + r * d;
        for (size_t k = 0; k < d; k++)
            dst[k] += (float)c * src[k];
    }
    if (means)
        for (size_t r = 0; r < roots; r++)
            for (size_t k = 0; k < d; k++)
                B->cmean[r * d + k] /= (float)B->cnt[r];
    return HL_OK;
}

static int finite(const float *x, size_t n)
{
    for (size_t i = 0; x != NULL && i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Everything the state would keep of the new nodes, and their scores, is finite. */
static int finite_outputs(const as_run *R, const as_lvl *V, const hl__anodes *A)
{
    size_t nn = V->nn;
    int ok = finite(V->prob, nn * (size_t)V->width) && finite(A->dens, nn) &&
             finite(A->node, nn * R->w.node) && finite(A->S, nn * R->w.S);
    for (int h = 0; h < HL_MAX_CONV - 1; h++)
        ok = ok && finite(A->hidden[h], nn * R->w.hidden[h]);
    return ok;
}

static hl_status run_level(as_run *R, int l)
{
    const hl_assign_level *L = &R->s->levels[l];
    hl__anodes *A = &R->P->lv[l];
    as_dec *D = &R->dec[l];
    as_lvl V;
    memset(&V, 0, sizeof(V));
    V.ns = L->n;
    V.nn = A->nn;
    V.width = L->width;
    V.ks = stored_k(L->width, L->n);
    V.kq = new_k(L->width, A->nn);
    hl_status st = alloc_nodes(A, V.nn, V.width, R->d, l, &R->w);
    if (st != HL_OK)
        return st;
    hl_arena *a = &R->arena;
    D->parent = hl_arena_alloc_array(a, V.nn, sizeof(int32_t), 64);
    D->pscore = hl_arena_alloc_array(a, V.nn, sizeof(float), 64);
    D->term = hl_arena_alloc_array(a, V.nn, sizeof(int32_t), 64);
    D->up = hl_arena_alloc_array(a, V.nn, sizeof(int32_t), 64);
    if (D->parent == NULL || D->pscore == NULL || D->term == NULL || D->up == NULL)
        return HL_NOMEM;
    size_t mark = hl_arena_mark(a);
    st = find_neighbours(R, l, &V, A);
    if (st == HL_OK)
        st = score_level(R, l, &V, A);
    if (st == HL_OK && !finite_outputs(R, &V, A))
        st = HL_FORMAT; /* only a forged state can make finite inputs overflow */
    if (st == HL_OK && hl_cancel_requested(&R->p->cancel))
        st = HL_CANCELED;
    if (st == HL_OK) {
        hl_progress_report(&R->p->progress, HL_STAGE_DECODE, l, 0.0);
        decode_parents(R, L, &V, A, D);
        st = resolve_chains(V.nn, V.ns, D);
    }
    if (st == HL_OK)
        st = next_level(R, l, A, D);
    hl_progress_report(&R->p->progress, HL_STAGE_DECODE, l, 1.0);
    hl_arena_reset(a, mark);
    return st;
}

/* ------------------------------------------------------------------ labels */

static int32_t max_label(const int32_t *lab, size_t n)
{
    int32_t mx = -1;
    for (size_t i = 0; i < n; i++)
        mx = lab[i] > mx ? lab[i] : mx;
    return mx;
}

/* Where point i ended: the level and stored node it joined (att_l -1: none), the new root
 * of its tree at each level before that (key), and its score. */
typedef struct as_path {
    int att_l;
    int32_t att_j;
    float score;
    int32_t key[HL_ASSIGN_MAX_LEVELS];
} as_path;

static void trace(const as_run *R, size_t i, as_path *pa)
{
    int32_t v = (int32_t)i;
    int scored = 0;
    pa->att_l = -1;
    pa->att_j = -1;
    pa->score = 0.0f;
    for (int l = 0; l < R->n_run; l++) {
        const as_dec *D = &R->dec[l];
        if (!scored && D->parent[v] >= 0) {
            pa->score = D->pscore[v];
            scored = 1;
        }
        int32_t t = D->term[v];
        if (t >= 0) {
            pa->att_l = l;
            pa->att_j = t;
            return;
        }
        pa->key[l] = -(t + 1);
        if (l + 1 < R->n_run)
            v = D->up[pa->key[l]];
    }
}

/* Fresh ids: map[key] assigned in order of first appearance from *next. */
static int32_t fresh(int32_t *map, int32_t key, int32_t *next)
{
    if (map[key] < 0)
        map[key] = (*next)++;
    return map[key];
}

static hl_status label_points(as_run *R, hl_error *err)
{
    const hl_assign_state *s = R->s;
    hl__apending *P = R->P;
    hl_assignment *A = R->A;
    int L = s->n_levels, top = R->n_run - 1;
    int32_t next[HL_ASSIGN_MAX_LEVELS], next_final = max_label(s->labels, s->n) + 1;
    int32_t *map[HL_ASSIGN_MAX_LEVELS];
    size_t mark = hl_arena_mark(&R->arena);
    for (int l = 0; l < L; l++) {
        next[l] = max_label(s->levels[l].labels, s->n) + 1;
        if ((int64_t)next[l] + (int64_t)R->n > INT32_MAX)
            return hl_error_set(err, HL_RANGE, "labels", "cluster ids would overflow int32");
    }
    if ((int64_t)next_final + (int64_t)R->n > INT32_MAX)
        return hl_error_set(err, HL_RANGE, "labels", "cluster ids would overflow int32");
    for (int l = 0; l < R->n_run; l++) {
        map[l] = hl_arena_alloc_array(&R->arena, P->lv[l].nn, sizeof(int32_t), 64);
        if (map[l] == NULL)
            return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
        for (size_t v = 0; v < P->lv[l].nn; v++)
            map[l][v] = -1;
    }
    /* Final ids of new clusters, by top-level root. */
    int32_t *map_top = hl_arena_alloc_array(&R->arena, P->lv[top].nn, sizeof(int32_t), 64);
    if (map_top == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    for (size_t v = 0; v < P->lv[top].nn; v++)
        map_top[v] = -1;
    size_t kept = 0;
    for (size_t i = 0; i < R->n; i++) {
        as_path pa;
        trace(R, i, &pa);
        int last = pa.att_l >= 0 ? pa.att_l : L;
        for (int l = 0; l < L; l++) {
            if (l < last) {
                /* Levels past the last run (no new nodes left) cannot be reached here. */
                P->level_labels[l][i] = fresh(map[l], pa.key[l], &next[l]);
            } else {
                const hl_assign_level *SL = &s->levels[pa.att_l];
                P->level_labels[l][i] = s->levels[l].labels[SL->rep[pa.att_j]];
            }
        }
        A->scores[i] = pa.score;
        A->level[i] = pa.att_l;
        if (pa.att_l >= 0) {
            A->labels[i] = s->labels[s->levels[pa.att_l].rep[pa.att_j]];
            A->n_attached++;
        } else if (R->p->new_clusters == HL_NEW_OPEN) {
            int32_t before = next_final;
            A->labels[i] = fresh(map_top, pa.key[top], &next_final);
            A->n_new_clusters += next_final != before;
        } else {
            A->labels[i] = -1;
            A->n_unassigned++;
        }
        int keep = pa.att_l >= 0 || R->p->new_clusters == HL_NEW_OPEN;
        P->keep[i] = keep ? (int32_t)kept++ : -1;
    }
    A->n_kept = kept;
    hl_arena_reset(&R->arena, mark);
    return HL_OK;
}

/* Which new nodes of each level the state keeps: those whose peak point it keeps. */
static void keep_nodes(as_run *R)
{
    for (int l = 0; l < R->n_run; l++) {
        hl__anodes *N = &R->P->lv[l];
        size_t k = 0;
        for (size_t v = 0; v < N->nn; v++)
            N->keep[v] = R->P->keep[N->pt[v]] >= 0 ? (int32_t)k++ : -1;
        N->n_kept = k;
    }
}

/* ------------------------------------------------------------------ entry points */

void hl__apending_free(hl__apending *P)
{
    if (P == NULL)
        return;
    free(P->xn);
    free(P->keep);
    for (int l = 0; l < HL_ASSIGN_MAX_LEVELS; l++) {
        hl__anodes *A = &P->lv[l];
        free(P->level_labels[l]);
        free(A->pt);
        free(A->cnt);
        free(A->cmean);
        free(A->nbr);
        free(A->sim);
        free(A->deg);
        free(A->dens);
        free(A->node);
        for (int h = 0; h < HL_MAX_CONV - 1; h++)
            free(A->hidden[h]);
        free(A->S);
        free(A->keep);
    }
    free(P);
}

void hl_assignment_free(hl_assignment *a)
{
    if (a == NULL)
        return;
    free(a->labels);
    free(a->scores);
    free(a->level);
    hl__apending_free(a->priv);
    free(a);
}

static hl_status check_inputs(const hl_assign_state *s, const hl_model *m, const float *x, size_t n,
                              size_t d, const hl_assign_params *p, hl_error *err)
{
    if (p == NULL || (p->new_clusters != HL_NEW_OPEN && p->new_clusters != HL_NEW_UNASSIGNED) ||
        (p->attach != HL_ATTACH_ANY && p->attach != HL_ATTACH_DENSER))
        return hl_error_set(err, HL_INVAL, "params", "bad assignment parameters");
    if (p->n_threads < 1 || p->n_threads > HL_MAX_THREADS)
        return hl_error_set(err, HL_INVAL, "threads", "threads must be in [1, %d], got %d",
                            HL_MAX_THREADS, p->n_threads);
    if (s == NULL || s->levels == NULL || s->n_levels < 1 || s->n_levels > HL_ASSIGN_MAX_LEVELS ||
        s->levels[0].n != s->n)
        return hl_error_set(err, HL_FORMAT, "state", "not a valid clustering state");
    if (x == NULL || n == 0 || n > INT32_MAX || s->n > (size_t)INT32_MAX - n)
        return hl_error_set(err, HL_INVAL, "embeddings", "need 1 to %zu new points",
                            (size_t)INT32_MAX - s->n);
    if (d != s->d)
        return hl_error_set(err, HL_RANGE, "dim",
                            "the new points have dimension %zu, the clustering %zu", d, s->d);
    if ((m != NULL) != (s->has_model != 0)) {
        if (m == NULL)
            return hl_error_set(err, HL_INVAL, "model",
                                "the clustering was made with model '%s' (crc32c:%08x); pass it",
                                s->model_name, (unsigned)s->model_checksum);
        return hl_error_set(err, HL_INVAL, "model",
                            "the clustering was made without a model; assign without one");
    }
    if (m != NULL) {
        const hl_model_config *a = &m->cfg, *b = &s->model_cfg;
        int same = a->kind == b->kind && a->dim == b->dim && a->in_features == b->in_features &&
                   a->edge_features == b->edge_features && a->hidden == b->hidden &&
                   a->n_conv == b->n_conv && a->use_cluster_feat == b->use_cluster_feat;
        if (!same || p->model_checksum != s->model_checksum)
            return hl_error_set(err, HL_INVAL, "model",
                                "the clustering was made with model '%s' (crc32c:%08x), not "
                                "'%s' (crc32c:%08x)",
                                s->model_name, (unsigned)s->model_checksum, m->name,
                                (unsigned)p->model_checksum);
    }
    return hl_check_finite(x, n, d, err);
}

static hl_status setup(as_run *R, const float *x, hl_error *err)
{
    const hl_assign_state *s = R->s;
    size_t n = R->n, d = R->d;
    R->A = calloc(1, sizeof(hl_assignment));
    if (R->A == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    hl_assignment *A = R->A;
    A->n = n;
    A->labels = malloc(n * sizeof(int32_t));
    A->scores = malloc(n * sizeof(float));
    A->level = malloc(n * sizeof(int32_t));
    R->P = A->priv = calloc(1, sizeof(hl__apending));
    if (A->labels == NULL || A->scores == NULL || A->level == NULL || R->P == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    hl__apending *P = R->P;
    P->base_n = s->n;
    P->n_levels = s->n_levels;
    P->n_new = n;
    P->d = d;
    for (int l = 0; l < s->n_levels; l++) {
        P->base_ln[l] = s->levels[l].n;
        if ((P->level_labels[l] = malloc(n * sizeof(int32_t))) == NULL)
            return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    }
    P->xn = malloc(n * d * sizeof(float));
    P->keep = malloc(n * sizeof(int32_t));
    hl__anodes *L0 = &P->lv[0];
    L0->nn = n;
    L0->pt = malloc(n * sizeof(int32_t));
    L0->cnt = malloc(n * sizeof(int32_t));
    if (P->xn == NULL || P->keep == NULL || L0->pt == NULL || L0->cnt == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    hl_l2norm_rows(x, P->xn, n, d);
    for (size_t i = 0; i < n; i++) {
        L0->pt[i] = (int32_t)i;
        L0->cnt[i] = 1;
    }
    size_t bytes = run_plan(R);
    if (hl_arena_init(&R->arena, bytes) != HL_OK)
        return hl_error_set(err, HL_NOMEM, NULL, "cannot reserve %zu bytes for the assignment",
                            bytes);
    return HL_OK;
}

hl_status hl_assign_run(const hl_assign_state *s, const hl_model *m, const float *x, size_t n,
                        size_t d, const hl_assign_params *p, hl_assignment **out, hl_error *err)
{
    *out = NULL;
    hl_status st = check_inputs(s, m, x, n, d, p, err);
    if (st != HL_OK)
        return st;
    as_run R;
    memset(&R, 0, sizeof(R));
    R.s = s;
    R.m = m;
    R.p = p;
    R.n = n;
    R.d = d;
    hl_assign_widths_of(s->has_model, &s->model_cfg, &R.w);
    R.nf = (int)R.w.node;
    R.ef = m != NULL ? m->cfg.edge_features : 0;
    st = setup(&R, x, err);
    for (int l = 0; st == HL_OK && l < s->n_levels && R.P->lv[l].nn > 0; l++) {
        st = run_level(&R, l);
        R.n_run = l + 1;
        if (st != HL_OK) {
            if (st == HL_CANCELED)
                hl_error_set(err, st, NULL, "canceled");
            else if (st == HL_FORMAT)
                hl_error_set(err, st, "state",
                             "the clustering state gives non-finite values at level %d "
                             "(a corrupt state?)",
                             l);
            else
                hl_error_set(err, st, NULL, "assignment failed at level %d: %s", l,
                             hl_status_str(st));
        }
    }
    if (st == HL_OK)
        st = label_points(&R, err);
    if (st == HL_OK)
        keep_nodes(&R);
    hl_arena_deinit(&R.arena);
    if (st != HL_OK) {
        hl_assignment_free(R.A);
        return st;
    }
    *out = R.A;
    return HL_OK;
}
