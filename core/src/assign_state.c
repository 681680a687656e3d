/*
 * assign_state.c - clustering states: built from a clustering run, checked, grown by
 * assignments; see hl/assign.h.
 *
 * DESIGN
 * The builder is a level hook of the cluster driver (hl_level_view): at every level it copies
 * the graph rows, densities, peaks, counts and what the model cached (normalised node
 * features, hidden states, S), and the level's feature statistics. Levels the driver ran but
 * did not record (a last level without links) are dropped at the end, so the state has
 * exactly the clustering's levels.
 * hl_assign_apply() first grows every array to its new size (realloc; a failure leaves the
 * logical sizes, and so the state, unchanged), then appends the kept new points and nodes,
 * renumbering new ids into the state's id space.
 */
#include "assign_internal.h"

#include "hl/mat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hl_assign_widths_of(int has_model, const hl_model_config *cfg, hl_assign_widths *w)
{
    memset(w, 0, sizeof(*w));
    if (!has_model)
        return;
    int32_t h = cfg->hidden, h2 = cfg->hidden / 2;
    const int32_t outs[HL_MAX_CONV] = {h, h, h2, h2};
    int32_t coords = cfg->kind == HL_MODEL_LANDER ? cfg->dim * (cfg->use_cluster_feat ? 2 : 1) : 0;
    w->node = cfg->in_features > coords ? (size_t)(cfg->in_features - coords) : 0;
    for (int l = 0; l < cfg->n_conv - 1 && l < HL_MAX_CONV - 1; l++)
        w->hidden[l] = (size_t)outs[l];
    w->S = (size_t)h2;
    w->cmean = cfg->kind == HL_MODEL_LANDER && cfg->use_cluster_feat;
}

static void level_free(hl_assign_level *L)
{
    free(L->rep);
    free(L->cnt);
    free(L->nbr);
    free(L->sim);
    free(L->deg);
    free(L->dens);
    free(L->cmean);
    free(L->node);
    for (int l = 0; l < HL_MAX_CONV - 1; l++)
        free(L->hidden[l]);
    free(L->S);
    free(L->labels);
    memset(L, 0, sizeof(*L));
}

void hl_assign_state_free(hl_assign_state *s)
{
    if (s == NULL)
        return;
    if (s->levels != NULL)
        for (int l = 0; l < HL_ASSIGN_MAX_LEVELS; l++)
            level_free(&s->levels[l]);
    free(s->levels);
    free(s->x);
    free(s->labels);
    free(s);
}

/* ------------------------------------------------------------------ checks */

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Rows of normalised features or means have a norm of at most 1 (0 for zero rows); the
 * engine's inner products rely on it. Returns the first row that exceeds it, or n. */
static size_t first_long_row(const float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (size_t j = 0; j < d; j++)
            ss += (double)x[i * d + j] * (double)x[i * d + j];
        if (!(ss <= 1.0 + 1e-3))
            return i;
    }
    return n;
}

/* An optional array must exist exactly when its width is non-zero, and be finite. */
static hl_status check_opt(const float *a, size_t rows, size_t width, int l, const char *name,
                           hl_error *err)
{
    if ((a != NULL) != (width > 0))
        return hl_error_set(err, HL_FORMAT, name, "level %d: %s is %s for this model", l, name,
                            a != NULL ? "present but not used" : "missing");
    if (a != NULL && !all_finite(a, rows * width))
        return hl_error_set(err, HL_FORMAT, name, "level %d: non-finite value in %s", l, name);
    return HL_OK;
}

static hl_status check_rows(const hl_assign_state *s, const hl_assign_level *L, int l,
                            hl_error *err)
{
    size_t w = (size_t)L->width;
    for (size_t i = 0; i < L->n; i++) {
        if (L->rep[i] < 0 || (size_t)L->rep[i] >= s->n || (l == 0 && (size_t)L->rep[i] != i))
            return hl_error_set(err, HL_FORMAT, "rep", "level %d: node %zu has peak %d", l, i,
                                (int)L->rep[i]);
        if (L->cnt[i] < 1)
            return hl_error_set(err, HL_FORMAT, "cnt", "level %d: node %zu has count %d", l, i,
                                (int)L->cnt[i]);
        if (L->deg[i] < 0 || L->deg[i] > L->width)
            return hl_error_set(err, HL_FORMAT, "deg", "level %d: node %zu has degree %d", l, i,
                                (int)L->deg[i]);
        for (size_t c = 0; c < w; c++) {
            int32_t j = L->nbr[i * w + c];
            int bad = (int)c < L->deg[i]
                          ? (j < -1 || (j >= 0 && (size_t)j >= L->n) || (j >= 0 && (size_t)j == i))
                          : j != -1;
            if (bad)
                return hl_error_set(err, HL_FORMAT, "nbr",
                                    "level %d: node %zu has neighbour %d in slot %zu", l, i, (int)j,
                                    c);
        }
    }
    return HL_OK;
}

static hl_status check_level(const hl_assign_state *s, const hl_assign_widths *wd, int l,
                             hl_error *err)
{
    const hl_assign_level *L = &s->levels[l];
    size_t prev = l == 0 ? s->n : s->levels[l - 1].n;
    if (L->n < 1 || L->n > prev || L->n > L->cap || L->n > INT32_MAX)
        return hl_error_set(err, HL_FORMAT, "levels", "level %d has %zu nodes (previous %zu)", l,
                            L->n, prev);
    if (L->width < 1 || L->width > 1023)
        return hl_error_set(err, HL_FORMAT, "width", "level %d: width %d is not in [1, 1023]", l,
                            L->width);
    if (L->rep == NULL || L->cnt == NULL || L->nbr == NULL || L->sim == NULL || L->deg == NULL ||
        L->dens == NULL || L->labels == NULL)
        return hl_error_set(err, HL_FORMAT, "levels", "level %d: an array is missing", l);
    size_t w = (size_t)L->width;
    if (!all_finite(L->sim, L->n * w) || !all_finite(L->dens, L->n) ||
        !all_finite(L->fstats, HL_ASSIGN_FSTATS))
        return hl_error_set(err, HL_FORMAT, "levels", "level %d: non-finite value", l);
    hl_status st = check_rows(s, L, l, err);
    if (st != HL_OK)
        return st;
    for (size_t i = 0; i < L->n * w; i++)
        if (!(fabsf(L->sim[i]) <= 1.001f))
            return hl_error_set(err, HL_FORMAT, "sim",
                                "level %d: similarity %g is not a cosine similarity", l,
                                (double)L->sim[i]);
    st = check_opt(L->node, L->n, wd->node, l, "node", err);
    if (st == HL_OK)
        st = check_opt(L->S, L->n, wd->S, l, "S", err);
    if (st == HL_OK)
        st = check_opt(L->cmean, L->n, l > 0 && wd->cmean ? s->d : 0, l, "cmean", err);
    if (st == HL_OK && L->cmean != NULL && first_long_row(L->cmean, L->n, s->d) < L->n)
        return hl_error_set(err, HL_FORMAT, "cmean", "level %d: cluster mean %zu has norm > 1", l,
                            first_long_row(L->cmean, L->n, s->d));
    for (int h = 0; st == HL_OK && h < HL_MAX_CONV - 1; h++)
        st = check_opt(L->hidden[h], L->n, wd->hidden[h], l, "hidden", err);
    for (size_t i = 0; st == HL_OK && i < s->n; i++)
        if (L->labels[i] < 0)
            return hl_error_set(err, HL_FORMAT, "labels", "level %d: point %zu has label %d", l, i,
                                (int)L->labels[i]);
    return st;
}

static hl_status check_model(const hl_assign_state *s, hl_error *err)
{
    if (s->has_model != 0 && s->has_model != 1)
        return hl_error_set(err, HL_FORMAT, "model", "bad has_model flag %d", s->has_model);
    if (!s->has_model)
        return HL_OK;
    const hl_model_config *c = &s->model_cfg;
    hl_error local;
    hl_error_clear(&local);
    if (hl_model_config_check(c, &local) != HL_OK)
        return hl_error_set(err, HL_FORMAT, "model", "bad model configuration: %s", local.msg);
    if (c->kind == HL_MODEL_LANDER && (size_t)c->dim != s->d)
        return hl_error_set(err, HL_FORMAT, "model", "model dimension %d, state dimension %zu",
                            (int)c->dim, s->d);
    hl_assign_widths w;
    hl_assign_widths_of(1, c, &w);
    if ((w.node != 0 && w.node != HL_FEAT_NODE) ||
        (c->edge_features != 0 && c->edge_features != HL_FEAT_EDGE) ||
        (c->kind == HL_MODEL_UNIVERSAL && w.node == 0))
        return hl_error_set(err, HL_FORMAT, "model",
                            "the model reads %zu node and %d edge features; this build "
                            "computes %d and %d",
                            w.node, (int)c->edge_features, HL_FEAT_NODE, HL_FEAT_EDGE);
    size_t len = 0; /* (a loop, not memchr: the engine's symbol list stays as it is) */
    while (len < sizeof(s->model_name) && s->model_name[len] != '\0')
        len++;
    if (len == sizeof(s->model_name))
        return hl_error_set(err, HL_FORMAT, "model", "model name is not terminated");
    return HL_OK;
}

hl_status hl_assign_state_check(const hl_assign_state *s, hl_error *err)
{
    if (s == NULL || s->x == NULL || s->labels == NULL || s->levels == NULL)
        return hl_error_set(err, HL_FORMAT, NULL, "incomplete clustering state");
    size_t nd;
    if (s->n < 2 || s->n > s->cap || s->n > INT32_MAX || s->d < 1 || s->d > INT32_MAX ||
        hl_mul_size(s->n, s->d, &nd) != HL_OK)
        return hl_error_set(err, HL_FORMAT, "n", "bad state size: %zu points of dimension %zu",
                            s->n, s->d);
    if (s->n_levels < 1 || s->n_levels > HL_ASSIGN_MAX_LEVELS)
        return hl_error_set(err, HL_FORMAT, "levels", "bad level count %d", s->n_levels);
    if (s->k < 2 || s->k > 1024 || !(s->tau >= 0.0f && s->tau <= 1.0f))
        return hl_error_set(err, HL_FORMAT, "params", "bad clustering parameters k %d tau %g", s->k,
                            (double)s->tau);
    hl_status st = check_model(s, err);
    if (st != HL_OK)
        return st;
    if (!all_finite(s->x, nd))
        return hl_error_set(err, HL_FORMAT, "x", "non-finite value in the features");
    size_t row = first_long_row(s->x, s->n, s->d);
    if (row < s->n)
        return hl_error_set(err, HL_FORMAT, "x", "point %zu: features are not L2-normalised", row);
    for (size_t i = 0; i < s->n; i++)
        if (s->labels[i] < -1)
            return hl_error_set(err, HL_FORMAT, "labels", "point %zu has label %d", i,
                                (int)s->labels[i]);
    hl_assign_widths w;
    hl_assign_widths_of(s->has_model, &s->model_cfg, &w);
    for (int l = 0; l < s->n_levels; l++) {
        st = check_level(s, &w, l, err);
        if (st != HL_OK)
            return st;
    }
    for (int l = s->n_levels; l < HL_ASSIGN_MAX_LEVELS; l++)
        if (s->levels[l].n != 0)
            return hl_error_set(err, HL_FORMAT, "levels", "level %d past the last is not empty", l);
    return HL_OK;
}

/* ------------------------------------------------------------------ building */

typedef struct builder {
    hl_assign_state *s;
    hl_assign_widths w;
    int n_hooked;
} builder;

static void *dup_rows(const void *src, size_t rows, size_t row_bytes)
{
    size_t bytes = rows * row_bytes;
    void *p = malloc(bytes > 0 ? bytes : 1);
    if (p != NULL && bytes > 0)
        memcpy(p, src, bytes);
    return p;
}

static hl_status copy_level(hl_assign_level *L, const hl_level_view *v, const hl_assign_widths *w)
{
    size_t n = v->n, wd = (size_t)v->g->width;
    L->n = L->cap = n;
    L->width = v->g->width;
    L->rep = dup_rows(v->rep, n, sizeof(int32_t));
    L->cnt = malloc(n * sizeof(int32_t));
    L->nbr = dup_rows(v->g->nbr, n, wd * sizeof(int32_t));
    L->sim = dup_rows(v->g->sim, n, wd * sizeof(float));
    L->deg = dup_rows(v->g->deg, n, sizeof(int32_t));
    L->dens = dup_rows(v->dens, n, sizeof(float));
    if (L->rep == NULL || L->cnt == NULL || L->nbr == NULL || L->sim == NULL || L->deg == NULL ||
        L->dens == NULL)
        return HL_NOMEM;
    for (size_t i = 0; i < n; i++)
        L->cnt[i] = v->cnt != NULL ? v->cnt[i] : 1;
    if (w->node > 0 && (L->node = dup_rows(v->node, n, w->node * sizeof(float))) == NULL)
        return HL_NOMEM;
    for (int h = 0; h < HL_MAX_CONV - 1; h++)
        if (w->hidden[h] > 0 &&
            (L->hidden[h] = dup_rows(v->hidden[h], n, w->hidden[h] * sizeof(float))) == NULL)
            return HL_NOMEM;
    if (w->S > 0 && (L->S = dup_rows(v->S, n, w->S * sizeof(float))) == NULL)
        return HL_NOMEM;
    if (v->level > 0 && w->cmean &&
        (L->cmean = dup_rows(v->cmean, n, v->d * sizeof(float))) == NULL)
        return HL_NOMEM;
    hl__assign_fstats(L->sim, L->deg, n, L->width, L->fstats);
    return HL_OK;
}

static hl_status on_level(void *ud, const hl_level_view *v)
{
    builder *b = ud;
    if (v->level >= HL_ASSIGN_MAX_LEVELS || v->level != b->n_hooked)
        return HL_INTERNAL;
    if ((b->w.node > 0 && v->node == NULL) || (b->w.S > 0 && v->S == NULL))
        return HL_INTERNAL;
    b->n_hooked++;
    return copy_level(&b->s->levels[v->level], v, &b->w);
}

static hl_status finish_state(hl_assign_state *s, const hl_clustering *c, const float *x)
{
    size_t n = c->n;
    for (int l = c->n_levels; l < HL_ASSIGN_MAX_LEVELS; l++)
        level_free(&s->levels[l]);
    s->n_levels = c->n_levels;
    s->x = malloc(n * s->d * sizeof(float));
    s->labels = dup_rows(c->labels, n, sizeof(int32_t));
    if (s->x == NULL || s->labels == NULL)
        return HL_NOMEM;
    hl_l2norm_rows(x, s->x, n, s->d);
    for (int l = 0; l < c->n_levels; l++) {
        if (s->levels[l].rep == NULL) /* recorded but never hooked: cannot happen */
            return HL_INTERNAL;
        s->levels[l].labels = dup_rows(c->level_labels + (size_t)l * n, n, sizeof(int32_t));
        if (s->levels[l].labels == NULL)
            return HL_NOMEM;
    }
    return HL_OK;
}

hl_status hl_cluster_run_state(const float *x, size_t n, size_t d, const hl_model *m,
                               uint32_t model_checksum, const hl_cluster_params *p,
                               hl_clustering **out, hl_assign_state **state, hl_error *err)
{
    *out = NULL;
    *state = NULL;
    if (n < 2)
        return hl_error_set(err, HL_INVAL, "embeddings",
                            "a clustering state needs at least 2 points, got %zu", n);
    hl_assign_state *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->levels = calloc(HL_ASSIGN_MAX_LEVELS, sizeof(hl_assign_level))) == NULL) {
        free(s);
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    }
    s->n = s->cap = n;
    s->d = d;
    s->k = p->k;
    s->tau = p->tau;
    s->has_model = m != NULL;
    s->model_checksum = m != NULL ? model_checksum : 0;
    if (m != NULL) {
        s->model_cfg = m->cfg;
        memcpy(s->model_name, m->name, sizeof(s->model_name) - 1);
    }
    builder b;
    memset(&b, 0, sizeof(b));
    b.s = s;
    hl_assign_widths_of(s->has_model, &s->model_cfg, &b.w);
    hl_cluster_params cp = *p;
    cp.level_hook.fn = on_level;
    cp.level_hook.ud = &b;
    hl_clustering *c = NULL;
    hl_status st = hl_cluster_run(x, n, d, m, &cp, &c, err);
    if (st == HL_OK) {
        st = finish_state(s, c, x);
        if (st != HL_OK)
            hl_error_set(err, st, NULL, "cannot build the clustering state: %s", hl_status_str(st));
    }
    if (st != HL_OK) {
        hl_clustering_free(c);
        hl_assign_state_free(s);
        return st;
    }
    *out = c;
    *state = s;
    return HL_OK;
}

/* ------------------------------------------------------------------ appending */

static size_t next_cap(size_t cap, size_t need)
{
    if (need <= cap)
        return cap;
    size_t c = cap + cap / 2;
    return c > need ? c : need;
}

static void *realloc_rows(void *p, size_t rows, size_t row_bytes)
{
    size_t bytes;
    if (hl_mul_size(rows, row_bytes, &bytes) != HL_OK)
        return NULL;
    return realloc(p, bytes > 0 ? bytes : 1);
}

/* Grows `field` to `rows` rows of `rb` bytes unless it is absent; sets st on failure. */
#define GROW(field, rows, rb)                                                                      \
    do {                                                                                           \
        if (st == HL_OK && (field) != NULL && (rb) > 0) {                                          \
            void *q_ = realloc_rows((field), (rows), (rb));                                        \
            if (q_ == NULL)                                                                        \
                st = HL_NOMEM;                                                                     \
            else                                                                                   \
                (field) = q_;                                                                      \
        }                                                                                          \
    } while (0)

static hl_status grow_level(hl_assign_level *L, size_t need, size_t d, const hl_assign_widths *w)
{
    size_t cap = next_cap(L->cap, need), wd = (size_t)L->width;
    if (cap == L->cap)
        return HL_OK;
    hl_status st = HL_OK;
    GROW(L->rep, cap, sizeof(int32_t));
    GROW(L->cnt, cap, sizeof(int32_t));
    GROW(L->nbr, cap, wd * sizeof(int32_t));
    GROW(L->sim, cap, wd * sizeof(float));
    GROW(L->deg, cap, sizeof(int32_t));
    GROW(L->dens, cap, sizeof(float));
    GROW(L->cmean, cap, d * sizeof(float));
    GROW(L->node, cap, w->node * sizeof(float));
    for (int h = 0; h < HL_MAX_CONV - 1; h++)
        GROW(L->hidden[h], cap, w->hidden[h] * sizeof(float));
    GROW(L->S, cap, w->S * sizeof(float));
    if (st == HL_OK)
        L->cap = cap;
    return st;
}

static hl_status grow_all(hl_assign_state *s, const hl__apending *P, size_t n_kept)
{
    hl_assign_widths w;
    hl_assign_widths_of(s->has_model, &s->model_cfg, &w);
    size_t cap = next_cap(s->cap, s->n + n_kept);
    if (cap != s->cap) {
        hl_status st = HL_OK;
        GROW(s->x, cap, s->d * sizeof(float));
        GROW(s->labels, cap, sizeof(int32_t));
        for (int l = 0; l < s->n_levels; l++)
            GROW(s->levels[l].labels, cap, sizeof(int32_t));
        if (st != HL_OK)
            return st;
        s->cap = cap;
    }
    for (int l = 0; l < s->n_levels; l++) {
        hl_status st = grow_level(&s->levels[l], s->levels[l].n + P->lv[l].n_kept, s->d, &w);
        if (st != HL_OK)
            return st;
    }
    return HL_OK;
}

/* Appends the kept new nodes of level l, renumbering new ids (unified id ns + v) and peaks. */
static void append_level(hl_assign_state *s, int l, const hl__apending *P, size_t base_points)
{
    hl_assign_level *L = &s->levels[l];
    const hl__anodes *A = &P->lv[l];
    hl_assign_widths w;
    hl_assign_widths_of(s->has_model, &s->model_cfg, &w);
    size_t ns = L->n, wd = (size_t)L->width;
    for (size_t v = 0; v < A->nn; v++) {
        if (A->keep[v] < 0)
            continue;
        size_t r = ns + (size_t)A->keep[v];
        L->rep[r] = (int32_t)(base_points + (size_t)P->keep[A->pt[v]]);
        L->cnt[r] = A->cnt[v];
        L->deg[r] = A->deg[v];
        L->dens[r] = A->dens[v];
        for (size_t c = 0; c < wd; c++) {
            int32_t j = A->nbr[v * wd + c];
            if (j >= 0 && (size_t)j >= ns) {
                int32_t k = A->keep[(size_t)j - ns];
                j = k < 0 ? -1 : (int32_t)(ns + (size_t)k);
            }
            L->nbr[r * wd + c] = j;
            L->sim[r * wd + c] = A->sim[v * wd + c];
        }
        if (L->cmean != NULL)
            memcpy(L->cmean + r * s->d, A->cmean + v * s->d, s->d * sizeof(float));
        if (L->node != NULL)
            memcpy(L->node + r * w.node, A->node + v * w.node, w.node * sizeof(float));
        for (int h = 0; h < HL_MAX_CONV - 1; h++)
            if (L->hidden[h] != NULL)
                memcpy(L->hidden[h] + r * w.hidden[h], A->hidden[h] + v * w.hidden[h],
                       w.hidden[h] * sizeof(float));
        if (L->S != NULL)
            memcpy(L->S + r * w.S, A->S + v * w.S, w.S * sizeof(float));
    }
    L->n = ns + A->n_kept;
}

hl_status hl_assign_apply(hl_assign_state *s, const hl_assignment *a, hl_error *err)
{
    const hl__apending *P = a != NULL ? a->priv : NULL;
    if (s == NULL || P == NULL || P->base_n != s->n || P->n_levels != s->n_levels || P->d != s->d)
        return hl_error_set(err, HL_INVAL, NULL, "the assignment was not computed on this state");
    for (int l = 0; l < s->n_levels; l++)
        if (P->base_ln[l] != s->levels[l].n)
            return hl_error_set(err, HL_INVAL, NULL,
                                "the assignment was not computed on this state");
    if (grow_all(s, P, a->n_kept) != HL_OK)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory growing the clustering state");
    size_t base = s->n;
    for (size_t i = 0; i < P->n_new; i++) {
        if (P->keep[i] < 0)
            continue;
        size_t r = base + (size_t)P->keep[i];
        memcpy(s->x + r * s->d, P->xn + i * s->d, s->d * sizeof(float));
        s->labels[r] = a->labels[i];
        for (int l = 0; l < s->n_levels; l++)
            s->levels[l].labels[r] = P->level_labels[l][i];
    }
    for (int l = 0; l < s->n_levels; l++)
        append_level(s, l, P, base);
    s->n = base + a->n_kept;
    return HL_OK;
}
