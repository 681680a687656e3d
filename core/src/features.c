/*
 * features.c - structural node and edge features; see hl/features.h.
 *
 * DESIGN
 * Three passes over node blocks (fixed block boundaries, so the result does not depend on
 * the thread count): (1) per-node statistics of the node's own row (s_1, mean, density, ...)
 * and in-degree counts; (2) the level-wide means and standard deviations used by the
 * standardised features, reduced in block order; (3) the features, which read neighbours'
 * statistics from pass 1. Reverse ranks and shared neighbours scan the neighbour's row
 * (width is small, k - 1 = 9 by default), so the cost is O(n * width^2).
 */
#include "hl/features.h"

#include "hl/parallel.h"
#include "internal.h"

#include <math.h>
#include <string.h>

#define FEAT_B 1024

typedef struct node_stat {
    float s1, s3, s5, slast, mean, std, dens, lsize;
} node_stat;

typedef struct feat_job {
    const hl_graph *g;
    const float *size;
    int level;
    node_stat *st;
    int32_t *indeg; /* per block partial counts would race: computed serially */
    float *dens_nb;
    double
        *blk; /* per block: sum mean, sum mean^2, sum dens, sum dens^2, sum sim, sum sim^2, edges */
    double mu[3], sd[3];
    float *node, *edge;
} feat_job;

#define BLK_STATS 7

static size_t n_blocks(size_t n)
{
    return (n + FEAT_B - 1) / FEAT_B;
}

static void pass_stats(void *arg, size_t task, int thread)
{
    (void)thread;
    feat_job *J = arg;
    const hl_graph *g = J->g;
    size_t w = (size_t)g->width;
    size_t i0 = task * FEAT_B, i1 = hl__min_size(g->n, i0 + FEAT_B);
    double *b = J->blk + task * BLK_STATS;
    memset(b, 0, BLK_STATS * sizeof(double));
    for (size_t i = i0; i < i1; i++) {
        const float *s = g->sim + i * w;
        int deg = g->deg[i];
        node_stat *t = &J->st[i];
        memset(t, 0, sizeof(*t));
        t->lsize = J->size != NULL ? logf(J->size[i] > 1.0f ? J->size[i] : 1.0f) : 0.0f;
        if (deg == 0)
            continue;
        double sum = 0.0, sq = 0.0, dn = 0.0;
        for (int c = 0; c < deg; c++) {
            sum += s[c];
            sq += (double)s[c] * s[c];
            dn += (double)s[c] * (2.0 * s[c] - 1.0);
            b[4] += s[c];
            b[5] += (double)s[c] * s[c];
        }
        b[6] += deg;
        double mean = sum / deg, var = sq / deg - mean * mean;
        t->s1 = s[0];
        t->s3 = s[deg > 2 ? 2 : deg - 1];
        t->s5 = s[deg > 4 ? 4 : deg - 1];
        t->slast = s[deg - 1];
        t->mean = (float)mean;
        t->std = (float)sqrt(var > 0.0 ? var : 0.0);
        t->dens = (float)(dn / deg);
        b[0] += mean;
        b[1] += mean * mean;
        b[2] += t->dens;
        b[3] += (double)t->dens * t->dens;
    }
}

/* Position (1-based) of `i` in node j's list, or width + 1. */
static int rank_in(const hl_graph *g, int32_t j, int32_t i)
{
    const int32_t *nb = g->nbr + (size_t)j * (size_t)g->width;
    for (int c = 0; c < g->deg[j]; c++)
        if (nb[c] == i)
            return c + 1;
    return g->width + 1;
}

static int shared(const hl_graph *g, int32_t i, int32_t j)
{
    size_t w = (size_t)g->width;
    const int32_t *a = g->nbr + (size_t)i * w, *b = g->nbr + (size_t)j * w;
    int cnt = 0;
    for (int x = 0; x < g->deg[i]; x++)
        for (int y = 0; y < g->deg[j]; y++)
            cnt += a[x] == b[y];
    return cnt;
}

static float z(double v, double mu, double sd)
{
    return sd > 1e-12 ? (float)((v - mu) / sd) : 0.0f;
}

static void pass_features(void *arg, size_t task, int thread)
{
    (void)thread;
    feat_job *J = arg;
    const hl_graph *g = J->g;
    size_t w = (size_t)g->width;
    float fw = (float)g->width;
    size_t i0 = task * FEAT_B, i1 = hl__min_size(g->n, i0 + FEAT_B);
    for (size_t i = i0; i < i1; i++) {
        const node_stat *t = &J->st[i];
        const int32_t *nb = g->nbr + i * w;
        const float *s = g->sim + i * w;
        int deg = g->deg[i];
        double dnb = 0.0;
        int mutual = 0;
        float *e = J->edge + i * w * HL_FEAT_EDGE;
        memset(e, 0, w * HL_FEAT_EDGE * sizeof(float));
        for (int c = 0; c < deg; c++) {
            int32_t j = nb[c];
            const node_stat *u = &J->st[j];
            int rr = rank_in(g, j, (int32_t)i);
            float *ec = e + (size_t)c * HL_FEAT_EDGE;
            dnb += u->dens;
            mutual += rr <= g->width;
            ec[0] = s[c];
            ec[1] = (float)(c + 1) / fw;
            ec[2] = (float)rr / fw;
            ec[3] = rr <= g->width ? 1.0f : 0.0f;
            ec[4] = (float)shared(g, (int32_t)i, j) / fw;
            ec[5] = s[c] - t->s1;
            ec[6] = s[c] - t->mean;
            ec[7] = s[c] - u->mean;
            ec[8] = s[c] - t->slast;
            ec[9] = u->dens - t->dens;
            ec[10] = u->lsize - t->lsize;
            ec[11] = s[c] - u->s1;
            ec[12] = z(s[c], J->mu[2], J->sd[2]);
        }
        float *f = J->node + i * HL_FEAT_NODE;
        float dn = deg > 0 ? (float)(dnb / deg) : 0.0f;
        f[0] = t->s1;
        f[1] = t->s3;
        f[2] = t->s5;
        f[3] = t->slast;
        f[4] = t->mean;
        f[5] = t->std;
        f[6] = t->dens;
        f[7] = dn;
        f[8] = t->dens - dn;
        f[9] = (float)J->indeg[i] / fw;
        f[10] = deg > 0 ? (float)mutual / (float)deg : 0.0f;
        f[11] = t->lsize;
        f[12] = (float)J->level / 10.0f;
        f[13] = deg > 0 ? z(t->mean, J->mu[0], J->sd[0]) : 0.0f;
        f[14] = deg > 0 ? z(t->dens, J->mu[1], J->sd[1]) : 0.0f;
        f[15] = (float)deg / fw;
    }
}

size_t hl_features_plan(size_t n, int width)
{
    (void)width;
    return hl_arena_block(n * sizeof(node_stat)) + hl_arena_block(n * sizeof(int32_t)) +
           hl_arena_block(n_blocks(n) * BLK_STATS * sizeof(double));
}

hl_status hl_features_compute(const hl_graph *g, const float *size, int level, int n_threads,
                              hl_arena *scratch, float *node, float *edge)
{
    size_t n = g->n;
    if (n == 0)
        return HL_OK;
    size_t mark = hl_arena_mark(scratch);
    feat_job J;
    memset(&J, 0, sizeof(J));
    J.g = g;
    J.size = size;
    J.level = level;
    J.node = node;
    J.edge = edge;
    size_t nb = n_blocks(n);
    J.st = hl_arena_alloc_array(scratch, n, sizeof(node_stat), 64);
    J.indeg = hl_arena_alloc_array(scratch, n, sizeof(int32_t), 64);
    J.blk = hl_arena_alloc_array(scratch, nb * BLK_STATS, sizeof(double), 64);
    if (J.st == NULL || J.indeg == NULL || J.blk == NULL) {
        hl_arena_reset(scratch, mark);
        return HL_NOMEM;
    }
    hl_parallel_for(n_threads, nb, pass_stats, &J);
    memset(J.indeg, 0, n * sizeof(int32_t));
    size_t w = (size_t)g->width;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < g->deg[i]; c++)
            J.indeg[g->nbr[i * w + (size_t)c]]++;
    double tot[BLK_STATS] = {0};
    for (size_t b = 0; b < nb; b++)
        for (int k = 0; k < BLK_STATS; k++)
            tot[k] += J.blk[b * BLK_STATS + (size_t)k];
    size_t with_edges = 0;
    for (size_t i = 0; i < n; i++)
        with_edges += g->deg[i] > 0;
    double cn = with_edges > 0 ? (double)with_edges : 1.0, ce = tot[6] > 0 ? tot[6] : 1.0;
    double m0 = tot[0] / cn, m1 = tot[2] / cn, m2 = tot[4] / ce;
    J.mu[0] = m0;
    J.mu[1] = m1;
    J.mu[2] = m2;
    J.sd[0] = sqrt(fmax(tot[1] / cn - m0 * m0, 0.0));
    J.sd[1] = sqrt(fmax(tot[3] / cn - m1 * m1, 0.0));
    J.sd[2] = sqrt(fmax(tot[5] / ce - m2 * m2, 0.0));
    hl_parallel_for(n_threads, nb, pass_features, &J);
    hl_arena_reset(scratch, mark);
    return HL_OK;
}

static void standardize(float *x, size_t cols, const float *mean, const float *std)
{
    for (size_t c = 0; c < cols; c++) {
        float sd = std[c] > 0.0f ? std[c] : 1.0f;
        x[c] = (x[c] - mean[c]) / sd;
    }
}

void hl_features_normalize(const hl_graph *g, float *node, float *edge, const float *node_mean,
                           const float *node_std, const float *edge_mean, const float *edge_std)
{
    size_t w = (size_t)g->width;
    for (size_t i = 0; i < g->n; i++) {
        if (node != NULL)
            standardize(node + i * HL_FEAT_NODE, HL_FEAT_NODE, node_mean, node_std);
        if (edge != NULL)
            for (int c = 0; c < g->deg[i]; c++)
                standardize(edge + (i * w + (size_t)c) * HL_FEAT_EDGE, HL_FEAT_EDGE, edge_mean,
                            edge_std);
    }
}
