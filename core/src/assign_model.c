/*
 * assign_model.c - structural features and the model on the new nodes of a mixed level; see
 * assign_internal.h and hl/assign.h (steps 2 and 3).
 *
 * DESIGN
 * The formulas are those of features.c and lander.c, applied to new nodes only. Where those
 * files read a neighbour from one graph, these read a stored neighbour from the state (its
 * row as it was, its cached layer inputs, hidden states and S) and a new neighbour from the
 * arrays computed in this call. A test feeds a full graph through both paths and compares.
 * Work is split into fixed blocks of new nodes, so results do not depend on the thread count.
 */
#include "assign_internal.h"

#include "hl/gnn.h"
#include "hl/mat.h"
#include "hl/parallel.h"
#include "internal.h"

#include <math.h>
#include <string.h>

#define AF_B 128 /* new nodes per block (features and forward) */

/* ------------------------------------------------------------------ features */

typedef struct af_stat {
    float s1, s3, s5, slast, mean, std, dens, lsize;
} af_stat;

/* features.c pass_stats for one row. */
static void row_stat(const float *s, int deg, float size, int with_size, af_stat *t)
{
    memset(t, 0, sizeof(*t));
    t->lsize = with_size ? logf(size > 1.0f ? size : 1.0f) : 0.0f;
    if (deg == 0)
        return;
    double sum = 0.0, sq = 0.0, dn = 0.0;
    for (int c = 0; c < deg; c++) {
        sum += s[c];
        sq += (double)s[c] * s[c];
        dn += (double)s[c] * (2.0 * s[c] - 1.0);
    }
    double mean = sum / deg, var = sq / deg - mean * mean;
    t->s1 = s[0];
    t->s3 = s[deg > 2 ? 2 : deg - 1];
    t->s5 = s[deg > 4 ? 4 : deg - 1];
    t->slast = s[deg - 1];
    t->mean = (float)mean;
    t->std = (float)sqrt(var > 0.0 ? var : 0.0);
    t->dens = (float)(dn / deg);
}

void hl__assign_fstats(const float *sim, const int32_t *deg, size_t n, int width,
                       float out[HL_ASSIGN_FSTATS])
{
    double tot[7] = {0};
    size_t with_edges = 0;
    for (size_t i = 0; i < n; i++) {
        int dg = deg[i];
        if (dg == 0)
            continue;
        af_stat t;
        row_stat(sim + i * (size_t)width, dg, 1.0f, 0, &t);
        double sum = 0.0;
        for (int c = 0; c < dg; c++) {
            float s = sim[i * (size_t)width + (size_t)c];
            sum += s;
            tot[4] += s;
            tot[5] += (double)s * s;
        }
        double mean = sum / dg;
        tot[0] += mean;
        tot[1] += mean * mean;
        tot[2] += t.dens;
        tot[3] += (double)t.dens * t.dens;
        tot[6] += dg;
        with_edges++;
    }
    double cn = with_edges > 0 ? (double)with_edges : 1.0, ce = tot[6] > 0 ? tot[6] : 1.0;
    double m0 = tot[0] / cn, m1 = tot[2] / cn, m2 = tot[4] / ce;
    out[0] = (float)m0;
    out[1] = (float)m1;
    out[2] = (float)m2;
    out[3] = (float)sqrt(fmax(tot[1] / cn - m0 * m0, 0.0));
    out[4] = (float)sqrt(fmax(tot[3] / cn - m1 * m1, 0.0));
    out[5] = (float)sqrt(fmax(tot[5] / ce - m2 * m2, 0.0));
}

/* Row of node j (unified id). */
static void row_of(const hl__mixed *g, int32_t j, const int32_t **nb, const float **s, int *deg,
                   float *size)
{
    size_t w = (size_t)g->width;
    if ((size_t)j < g->ns) {
        *nb = g->s_nbr + (size_t)j * w;
        *s = g->s_sim + (size_t)j * w;
        *deg = g->s_deg[j];
        *size = g->s_cnt != NULL ? (float)g->s_cnt[j] : 1.0f;
    } else {
        size_t v = (size_t)j - g->ns;
        *nb = g->n_nbr + v * w;
        *s = g->n_sim + v * w;
        *deg = g->n_deg[v];
        *size = g->n_cnt != NULL ? (float)g->n_cnt[v] : 1.0f;
    }
}

static void stat_of(const hl__mixed *g, int32_t j, af_stat *t)
{
    const int32_t *nb;
    const float *s;
    int deg;
    float size;
    row_of(g, j, &nb, &s, &deg, &size);
    row_stat(s, deg, size, g->level > 0, t);
}

/* Position (1-based) of new node q (unified id) in j's list, or width + 1. A stored row
 * does not contain q: q goes where its similarity places it, after equal similarities
 * (its id is larger than every stored id). */
static int rank_in(const hl__mixed *g, int32_t j, int32_t q, float s_qj)
{
    const int32_t *nb;
    const float *s;
    int deg;
    float size;
    row_of(g, j, &nb, &s, &deg, &size);
    if ((size_t)j >= g->ns) {
        for (int c = 0; c < deg; c++)
            if (nb[c] == q)
                return c + 1;
        return g->width + 1;
    }
    int before = 0;
    for (int c = 0; c < deg; c++)
        before += s[c] >= s_qj && nb[c] != q;
    return before < g->width ? before + 1 : g->width + 1;
}

static int shared(const hl__mixed *g, int32_t q, int32_t j)
{
    const int32_t *a, *b;
    const float *s;
    int da, db;
    float size;
    row_of(g, q, &a, &s, &da, &size);
    row_of(g, j, &b, &s, &db, &size);
    int cnt = 0;
    for (int x = 0; x < da; x++)
        for (int y = 0; y < db; y++)
            cnt += a[x] == b[y] && b[y] >= 0;
    return cnt;
}

static float zs(double v, double mu, double sd)
{
    return sd > 1e-12 ? (float)((v - mu) / sd) : 0.0f;
}

/* features.c pass_features for new node v. */
static void node_features(const hl__mixed *g, size_t v, float *f, float *e)
{
    size_t w = (size_t)g->width;
    float fw = (float)g->width;
    int32_t q = (int32_t)(g->ns + v);
    const float *fs = g->fstats;
    af_stat t;
    stat_of(g, q, &t);
    const int32_t *nb = g->n_nbr + v * w;
    const float *s = g->n_sim + v * w;
    int deg = g->n_deg[v];
    double dnb = 0.0;
    int mutual = 0;
    memset(e, 0, w * HL_FEAT_EDGE * sizeof(float));
    for (int c = 0; c < deg; c++) {
        int32_t j = nb[c];
        af_stat u;
        stat_of(g, j, &u);
        int rr = rank_in(g, j, q, s[c]);
        float *ec = e + (size_t)c * HL_FEAT_EDGE;
        dnb += u.dens;
        mutual += rr <= g->width;
        ec[0] = s[c];
        ec[1] = (float)(c + 1) / fw;
        ec[2] = (float)rr / fw;
        ec[3] = rr <= g->width ? 1.0f : 0.0f;
        ec[4] = (float)shared(g, q, j) / fw;
        ec[5] = s[c] - t.s1;
        ec[6] = s[c] - t.mean;
        ec[7] = s[c] - u.mean;
        ec[8] = s[c] - t.slast;
        ec[9] = u.dens - t.dens;
        ec[10] = u.lsize - t.lsize;
        ec[11] = s[c] - u.s1;
        ec[12] = zs(s[c], fs[2], fs[5]);
    }
    float dn = deg > 0 ? (float)(dnb / deg) : 0.0f;
    f[0] = t.s1;
    f[1] = t.s3;
    f[2] = t.s5;
    f[3] = t.slast;
    f[4] = t.mean;
    f[5] = t.std;
    f[6] = t.dens;
    f[7] = dn;
    f[8] = t.dens - dn;
    f[9] = (float)g->n_indeg[v] / fw;
    f[10] = deg > 0 ? (float)mutual / (float)deg : 0.0f;
    f[11] = t.lsize;
    f[12] = (float)g->level / 10.0f;
    f[13] = deg > 0 ? zs(t.mean, fs[0], fs[3]) : 0.0f;
    f[14] = deg > 0 ? zs(t.dens, fs[1], fs[4]) : 0.0f;
    f[15] = (float)deg / fw;
}

void hl__assign_features(const hl__mixed *g, size_t i0, size_t i1, float *node, float *edge)
{
    size_t w = (size_t)g->width;
    for (size_t v = i0; v < i1; v++)
        node_features(g, v, node + v * HL_FEAT_NODE, edge + v * w * HL_FEAT_EDGE);
}

/* ------------------------------------------------------------------ the model */

typedef struct af_thread {
    float *x, *h, *z1, *z2;
} af_thread;

typedef struct af_job {
    const hl_model *m;
    const hl__mixed *g;
    hl__ainput in; /* input of the current layer */
    int layer;
    const hl__astored *st;
    const float *edge;
    hl__anew_out *out;
    float *T;
    const float *wdiff; /* h2 + 1: fc2 row difference, then bias difference */
    af_thread th[HL_MAX_THREADS];
} af_job;

static size_t model_max_in(const hl_model *m)
{
    size_t v = 0;
    for (int l = 0; l < m->cfg.n_conv; l++)
        v = (size_t)m->conv_in[l] > v ? (size_t)m->conv_in[l] : v;
    return v;
}

static size_t model_max_out(const hl_model *m)
{
    size_t v = 0;
    for (int l = 0; l < m->cfg.n_conv; l++)
        v = (size_t)m->conv_out[l] > v ? (size_t)m->conv_out[l] : v;
    return v;
}

size_t hl__assign_forward_plan(const hl_model *m, size_t nn, int width, int n_threads)
{
    size_t h2 = (size_t)m->cfg.hidden / 2, w = (size_t)width;
    size_t nt = (size_t)hl_threads_clamp(n_threads);
    size_t per = hl_arena_block((size_t)AF_B * 2 * model_max_in(m) * sizeof(float)) +
                 hl_arena_block((size_t)AF_B * model_max_out(m) * sizeof(float)) +
                 2 * hl_arena_block((size_t)AF_B * w * h2 * sizeof(float));
    return hl_arena_block(nn * h2 * sizeof(float)) + hl_arena_block((h2 + 1) * sizeof(float)) +
           nt * per;
}

static const float *part_row(const hl__mixed *g, const hl__apart *p, int32_t j)
{
    if ((size_t)j < g->ns) {
        size_t r = p->s_idx != NULL ? (size_t)p->s_idx[j] : (size_t)j;
        return p->s_data + r * p->dim;
    }
    return p->n_data + ((size_t)j - g->ns) * p->dim;
}

/* hl_gnn_gather for new nodes [i0, i0 + bn): own input, then the weighted neighbour sum. */
static void gather(const hl__mixed *g, const hl__ainput *in, size_t i0, size_t bn, float *x)
{
    size_t f = 0, w = (size_t)g->width;
    for (int p = 0; p < in->n_parts; p++)
        f += in->part[p].dim;
    for (size_t r = 0; r < bn; r++) {
        size_t v = i0 + r;
        float *row = x + r * 2 * f;
        const int32_t *nb = g->n_nbr + v * w;
        const float *ww = g->n_w + v * w;
        size_t off = 0;
        for (int p = 0; p < in->n_parts; p++) {
            const hl__apart *pt = &in->part[p];
            size_t d = pt->dim;
            float *self = row + off, *agg = row + f + off;
            memcpy(self, part_row(g, pt, (int32_t)(g->ns + v)), d * sizeof(float));
            for (size_t c = 0; c < d; c++)
                agg[c] = 0.0f;
            for (int s = 0; s < g->n_deg[v]; s++) {
                const float *src = part_row(g, pt, nb[s]);
                float a = ww[s];
                for (size_t c = 0; c < d; c++)
                    agg[c] += a * src[c];
            }
            off += d;
        }
    }
}

static void conv_task(void *arg, size_t task, int thread)
{
    af_job *J = arg;
    const hl_model *m = J->m;
    af_thread *t = &J->th[thread];
    size_t i0 = task * AF_B, bn = hl__min_size(AF_B, J->g->nn - i0);
    int l = J->layer;
    size_t fin2 = 2 * (size_t)m->conv_in[l], out = (size_t)m->conv_out[l];
    gather(J->g, &J->in, i0, bn, t->x);
    if (l < m->cfg.n_conv - 1) {
        hl_gnn_dense_relu(t->x, bn, fin2, m->conv_w[l], m->conv_b[l], out,
                          J->out->hidden[l] + i0 * out);
        return;
    }
    hl_gnn_dense_relu(t->x, bn, fin2, m->conv_w[l], m->conv_b[l], out, t->h);
    size_t h2 = (size_t)m->cfg.hidden / 2;
    hl_gnn_link_halves(m, t->h, bn, out, J->out->S + i0 * h2, J->T + i0 * h2);
}

/* lander.c edge_task for new centres: z = PReLU(S[j] + T[q] (+ E W_edge^T)), ... */
static void edge_task(void *arg, size_t task, int thread)
{
    af_job *J = arg;
    const hl_model *m = J->m;
    const hl__mixed *g = J->g;
    af_thread *t = &J->th[thread];
    size_t h2 = (size_t)m->cfg.hidden / 2, w = (size_t)g->width;
    size_t i0 = task * AF_B, bn = hl__min_size(AF_B, g->nn - i0), rows = bn * w;
    for (size_t r = 0; r < bn; r++) {
        size_t v = i0 + r;
        const float *Tv = J->T + v * h2;
        for (size_t s = 0; s < w; s++) {
            float *z = t->z1 + (r * w + s) * h2;
            int32_t j = g->n_nbr[v * w + s];
            if ((int)s < g->n_deg[v]) {
                const float *Sj = (size_t)j < g->ns ? J->st->S + (size_t)j * h2
                                                    : J->out->S + ((size_t)j - g->ns) * h2;
                for (size_t c = 0; c < h2; c++)
                    z[c] = Sj[c] + Tv[c];
            } else {
                memcpy(z, Tv, h2 * sizeof(float));
            }
        }
    }
    if (m->edge_w != NULL) {
        size_t ef = (size_t)m->cfg.edge_features;
        hl_gemm_nt(rows, h2, ef, 1.0f, J->edge + i0 * w * ef, ef, m->edge_w, ef, 1.0f, t->z1, h2);
    }
    hl_gnn_prelu_rows(t->z1, rows, h2, m->prelu1);
    for (size_t r = 0; r < rows; r++)
        memcpy(t->z2 + r * h2, m->fc1_b, h2 * sizeof(float));
    hl_gemm_nt(rows, h2, h2, 1.0f, t->z1, h2, m->fc1_w, h2, 1.0f, t->z2, h2);
    hl_gnn_prelu_rows(t->z2, rows, h2, m->prelu2);
    float bd = J->wdiff[h2];
    for (size_t r = 0; r < bn; r++) {
        size_t v = i0 + r;
        for (size_t s = 0; s < w; s++) {
            float *pr = J->out->prob + v * w + s;
            if ((int)s >= g->n_deg[v]) {
                *pr = 0.0f;
                continue;
            }
            float ld = bd + hl_dot(t->z2 + (r * w + s) * h2, J->wdiff, h2);
            *pr = 1.0f / (1.0f + expf(-ld));
        }
    }
}

static hl_status alloc_job(af_job *J, int nt, hl_arena *a)
{
    const hl_model *m = J->m;
    size_t h2 = (size_t)m->cfg.hidden / 2, w = (size_t)J->g->width;
    J->T = hl_arena_alloc_array(a, J->g->nn * h2, sizeof(float), 64);
    float *wd = hl_arena_alloc_array(a, h2 + 1, sizeof(float), 64);
    if (J->T == NULL || wd == NULL)
        return HL_NOMEM;
    for (size_t c = 0; c < h2; c++)
        wd[c] = m->fc2_w[h2 + c] - m->fc2_w[c];
    wd[h2] = m->fc2_b[1] - m->fc2_b[0];
    J->wdiff = wd;
    for (int t = 0; t < nt; t++) {
        af_thread *th = &J->th[t];
        th->x = hl_arena_alloc_array(a, (size_t)AF_B * 2 * model_max_in(m), sizeof(float), 64);
        th->h = hl_arena_alloc_array(a, (size_t)AF_B * model_max_out(m), sizeof(float), 64);
        th->z1 = hl_arena_alloc_array(a, (size_t)AF_B * w * h2, sizeof(float), 64);
        th->z2 = hl_arena_alloc_array(a, (size_t)AF_B * w * h2, sizeof(float), 64);
        if (th->x == NULL || th->h == NULL || th->z1 == NULL || th->z2 == NULL)
            return HL_NOMEM;
    }
    return HL_OK;
}

hl_status hl__assign_forward(const hl_model *m, const hl__mixed *g, const hl__ainput *in0,
                             const hl__astored *st, const float *edge, const hl_forward_params *fp,
                             hl_arena *scratch, hl__anew_out *out)
{
    size_t width = 0;
    for (int p = 0; p < in0->n_parts; p++)
        width += in0->part[p].dim;
    if (width != (size_t)m->cfg.in_features || (m->cfg.edge_features > 0 && edge == NULL))
        return HL_INVAL;
    size_t nn = g->nn;
    if (nn == 0)
        return HL_OK;
    size_t n_blocks = (nn + AF_B - 1) / AF_B;
    int nt = hl_threads_clamp(fp->n_threads);
    if ((size_t)nt > n_blocks)
        nt = (int)n_blocks;
    size_t mark = hl_arena_mark(scratch);
    af_job J;
    memset(&J, 0, sizeof(J));
    J.m = m;
    J.g = g;
    J.st = st;
    J.edge = edge;
    J.out = out;
    hl_status rc = alloc_job(&J, nt, scratch);
    int phases = m->cfg.n_conv + 1;
    J.in = *in0;
    for (int l = 0; rc == HL_OK && l < m->cfg.n_conv; l++) {
        J.layer = l;
        rc = hl__parallel_sliced(nt, n_blocks, (size_t)nt * 16, conv_task, &J, &fp->cancel,
                                 &fp->progress, HL_STAGE_GNN, fp->level, (double)l / phases,
                                 (double)(l + 1) / phases);
        if (l < m->cfg.n_conv - 1) {
            J.in.n_parts = 1;
            J.in.part[0].s_data = st->hidden[l];
            J.in.part[0].s_idx = NULL;
            J.in.part[0].n_data = out->hidden[l];
            J.in.part[0].dim = (size_t)m->conv_out[l];
        }
    }
    if (rc == HL_OK)
        rc = hl__parallel_sliced(nt, n_blocks, (size_t)nt * 16, edge_task, &J, &fp->cancel,
                                 &fp->progress, HL_STAGE_GNN, fp->level,
                                 (double)(phases - 1) / phases, 1.0);
    if (rc == HL_OK) {
        size_t w = (size_t)g->width;
        for (size_t v = 0; v < nn; v++) {
            int deg = g->n_deg[v];
            const float *sm = g->n_sim + v * w, *pr = out->prob + v * w;
            float acc = 0.0f;
            for (int s = 0; s < deg; s++)
                acc += sm[s] * (2.0f * pr[s] - 1.0f);
            out->dens[v] = deg > 0 ? acc / (float)deg : 0.0f;
        }
    }
    hl_arena_reset(scratch, mark);
    return rc;
}
