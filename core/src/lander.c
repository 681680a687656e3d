/*
 * lander.c - LANDER inference forward pass; see hl/lander.h.
 *
 * DESIGN
 * Phase 1 runs the GraphConv layers over row blocks of FWD_B nodes. Only the last layer's
 * output feeds the link head, and the head's first layer is linear in (h_j, h_i), so it is
 * applied once per node: S = h W_src^T + b_src and T = h W_dst^T + b_dst (n x h2 each,
 * spec section 8.2). Layers before the last are materialised (n x hidden) because the next
 * layer aggregates over arbitrary neighbours.
 * Phase 2 walks centre blocks: every slot (i, s) becomes one row Z = PReLU(S[j] + T[i]
 * [+ E_is W_edge^T]), one GEMM applies the 256x256 layer to all rows of the block, and the
 * last layer only needs the logit difference l1 - l0, so p1 = sigmoid(Z2 (w1 - w0) + b1 - b0).
 * Phase 3 is the density head. Block boundaries never depend on the thread count.
 */
#include "hl/lander.h"

#include "hl/gnn.h"
#include "hl/mat.h"
#include "hl/parallel.h"
#include "internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define FWD_B 128

typedef struct fwd_thread {
    float *x;  /* FWD_B x 2*max_in */
    float *h;  /* FWD_B x max_out */
    float *z1; /* FWD_B*width x h2 */
    float *z2; /* FWD_B*width x h2 */
    float *wd; /* h2 + 1: fc2 row difference, then bias difference */
} fwd_thread;

typedef struct fwd_job {
    const hl_model *m;
    const hl_graph *g;
    hl_node_input in; /* input of the current layer */
    int layer;
    float *out; /* output of a non-final layer, n x conv_out */
    float *S, *T;
    const float *edge_feat;
    float *prob;
    fwd_thread th[HL_MAX_THREADS];
} fwd_job;

static size_t max_in(const hl_model *m)
{
    size_t v = 0;
    for (int l = 0; l < m->cfg.n_conv; l++)
        if ((size_t)m->conv_in[l] > v)
            v = (size_t)m->conv_in[l];
    return v;
}

static size_t max_out(const hl_model *m)
{
    size_t v = 0;
    for (int l = 0; l < m->cfg.n_conv; l++)
        if ((size_t)m->conv_out[l] > v)
            v = (size_t)m->conv_out[l];
    return v;
}

size_t hl_lander_plan(const hl_model *m, size_t n, int k, int n_threads)
{
    size_t h2 = (size_t)m->cfg.hidden / 2;
    size_t width = k > 1 ? (size_t)(k - 1) : 1;
    size_t nt = (size_t)hl_threads_clamp(n_threads);
    size_t b = 2 * hl_arena_block(n * h2 * sizeof(float));
    if (m->cfg.n_conv > 1)
        b += 2 * hl_arena_block(n * max_out(m) * sizeof(float));
    size_t per = hl_arena_block((size_t)FWD_B * 2 * max_in(m) * sizeof(float)) +
                 hl_arena_block((size_t)FWD_B * max_out(m) * sizeof(float)) +
                 2 * hl_arena_block((size_t)FWD_B * width * h2 * sizeof(float)) +
                 hl_arena_block((h2 + 1) * sizeof(float));
    return b + nt * per;
}

/* Phase 1: one block of one conv layer (and, for the last layer, the per-node head). */
static void conv_task(void *arg, size_t task, int thread)
{
    fwd_job *J = arg;
    const hl_model *m = J->m;
    fwd_thread *t = &J->th[thread];
    size_t i0 = task * FWD_B;
    size_t bn = hl__min_size(FWD_B, J->g->n - i0);
    int l = J->layer;
    size_t fin2 = 2 * (size_t)m->conv_in[l];
    size_t out = (size_t)m->conv_out[l];
    hl_gnn_gather(J->g, &J->in, i0, bn, t->x);
    if (l < m->cfg.n_conv - 1) {
        hl_gnn_dense_relu(t->x, bn, fin2, m->conv_w[l], m->conv_b[l], out, J->out + i0 * out);
        return;
    }
    hl_gnn_dense_relu(t->x, bn, fin2, m->conv_w[l], m->conv_b[l], out, t->h);
    size_t h2 = (size_t)m->cfg.hidden / 2;
    hl_gnn_link_halves(m, t->h, bn, out, J->S + i0 * h2, J->T + i0 * h2);
}

/* Phase 2: link probabilities for every slot of one block of centre nodes. */
static void edge_task(void *arg, size_t task, int thread)
{
    fwd_job *J = arg;
    const hl_model *m = J->m;
    const hl_graph *g = J->g;
    fwd_thread *t = &J->th[thread];
    size_t h2 = (size_t)m->cfg.hidden / 2;
    size_t w = (size_t)g->width;
    size_t i0 = task * FWD_B;
    size_t bn = hl__min_size(FWD_B, g->n - i0);
    size_t rows = bn * w;
    for (size_t r = 0; r < bn; r++) {
        size_t i = i0 + r;
        const float *Ti = J->T + i * h2;
        for (size_t s = 0; s < w; s++) {
            float *z = t->z1 + (r * w + s) * h2;
            int32_t j = g->nbr[i * w + s];
            if (j >= 0) {
                const float *Sj = J->S + (size_t)j * h2;
                for (size_t c = 0; c < h2; c++)
                    z[c] = Sj[c] + Ti[c];
            } else {
                memcpy(z, Ti, h2 * sizeof(float));
            }
        }
    }
    if (m->edge_w != NULL) {
        size_t ef = (size_t)m->cfg.edge_features;
        hl_gemm_nt(rows, h2, ef, 1.0f, J->edge_feat + i0 * w * ef, ef, m->edge_w, ef, 1.0f, t->z1,
                   h2);
    }
    hl_gnn_prelu_rows(t->z1, rows, h2, m->prelu1);
    for (size_t r = 0; r < rows; r++)
        memcpy(t->z2 + r * h2, m->fc1_b, h2 * sizeof(float));
    hl_gemm_nt(rows, h2, h2, 1.0f, t->z1, h2, m->fc1_w, h2, 1.0f, t->z2, h2);
    hl_gnn_prelu_rows(t->z2, rows, h2, m->prelu2);
    const float *wd = t->wd;
    float bd = t->wd[h2];
    for (size_t r = 0; r < bn; r++) {
        size_t i = i0 + r;
        for (size_t s = 0; s < w; s++) {
            float *pr = J->prob + i * w + s;
            if ((int)s >= g->deg[i]) {
                *pr = 0.0f;
                continue;
            }
            float ld = bd + hl_dot(t->z2 + (r * w + s) * h2, wd, h2);
            *pr = 1.0f / (1.0f + expf(-ld));
        }
    }
}

static hl_status alloc_threads(fwd_job *J, int nt, size_t width, hl_arena *a)
{
    const hl_model *m = J->m;
    size_t h2 = (size_t)m->cfg.hidden / 2;
    for (int t = 0; t < nt; t++) {
        fwd_thread *th = &J->th[t];
        th->x = hl_arena_alloc_array(a, (size_t)FWD_B * 2 * max_in(m), sizeof(float), 64);
        th->h = hl_arena_alloc_array(a, (size_t)FWD_B * max_out(m), sizeof(float), 64);
        th->z1 = hl_arena_alloc_array(a, (size_t)FWD_B * width * h2, sizeof(float), 64);
        th->z2 = hl_arena_alloc_array(a, (size_t)FWD_B * width * h2, sizeof(float), 64);
        th->wd = hl_arena_alloc_array(a, h2 + 1, sizeof(float), 64);
        if (th->x == NULL || th->h == NULL || th->z1 == NULL || th->z2 == NULL || th->wd == NULL)
            return HL_NOMEM;
        for (size_t c = 0; c < h2; c++)
            th->wd[c] = m->fc2_w[h2 + c] - m->fc2_w[c];
        th->wd[h2] = m->fc2_b[1] - m->fc2_b[0];
    }
    return HL_OK;
}

hl_status hl_lander_forward(const hl_model *m, const hl_graph *g, const hl_node_input *in,
                            const float *edge_feat, const hl_forward_params *p, hl_arena *scratch,
                            float *prob, float *dens)
{
    if (in->n_parts < 1 || in->n_parts > HL_MAX_INPUT_PARTS ||
        hl_node_input_width(in) != (size_t)m->cfg.in_features)
        return HL_INVAL;
    for (int q = 0; q < in->n_parts; q++)
        if (in->part[q] == NULL && in->dim[q] > 0)
            return HL_INVAL;
    if (m->cfg.edge_features > 0 && edge_feat == NULL)
        return HL_INVAL;
    size_t n = g->n;
    if (n == 0)
        return HL_OK;
    int nt = hl_threads_clamp(p->n_threads);
    size_t n_blocks = (n + FWD_B - 1) / FWD_B;
    if ((size_t)nt > n_blocks)
        nt = (int)n_blocks;
    size_t h2 = (size_t)m->cfg.hidden / 2;
    size_t mark = hl_arena_mark(scratch);
    hl_status st = HL_NOMEM;
    fwd_job J;
    memset(&J, 0, sizeof(J));
    J.m = m;
    J.g = g;
    J.edge_feat = edge_feat;
    J.prob = prob;
    J.S = p->keep_S != NULL ? p->keep_S : hl_arena_alloc_array(scratch, n * h2, sizeof(float), 64);
    J.T = hl_arena_alloc_array(scratch, n * h2, sizeof(float), 64);
    float *hbuf[2] = {NULL, NULL};
    int keep = 1;
    for (int l = 0; l < m->cfg.n_conv - 1; l++)
        keep = keep && p->keep_hidden[l] != NULL;
    if (m->cfg.n_conv > 1 && !keep) {
        hbuf[0] = hl_arena_alloc_array(scratch, n * max_out(m), sizeof(float), 64);
        hbuf[1] = hl_arena_alloc_array(scratch, n * max_out(m), sizeof(float), 64);
        if (hbuf[0] == NULL || hbuf[1] == NULL)
            goto done;
    }
    if (J.S == NULL || J.T == NULL || alloc_threads(&J, nt, (size_t)g->width, scratch) != HL_OK)
        goto done;

    int phases = m->cfg.n_conv + 1;
    J.in = *in;
    for (int l = 0; l < m->cfg.n_conv; l++) {
        J.layer = l;
        J.out = l < m->cfg.n_conv - 1 ? (keep ? p->keep_hidden[l] : hbuf[l % 2]) : NULL;
        st = hl__parallel_sliced(nt, n_blocks, (size_t)nt * 16, conv_task, &J, &p->cancel,
                                 &p->progress, HL_STAGE_GNN, p->level, (double)l / phases,
                                 (double)(l + 1) / phases);
        if (st != HL_OK)
            goto done;
        if (J.out != NULL) {
            J.in.n_parts = 1;
            J.in.part[0] = J.out;
            J.in.dim[0] = (size_t)m->conv_out[l];
        }
    }
    st = hl__parallel_sliced(nt, n_blocks, (size_t)nt * 16, edge_task, &J, &p->cancel, &p->progress,
                             HL_STAGE_GNN, p->level, (double)(phases - 1) / phases, 1.0);
    if (st != HL_OK)
        goto done;
    hl_graph_density(g, prob, dens);
done:
    hl_arena_reset(scratch, mark);
    return st;
}
