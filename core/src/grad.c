/*
 * grad.c - loss and exact gradient of a LANDER model on one training graph; see hl/train.h.
 *
 * DESIGN
 * Forward (saved for the backward pass):
 *   X_l = [H_{l-1} | sum_s w_is H_{l-1}[nbr]]  (n x 2F_l),  H_l = ReLU(X_l W_l^T + b_l)
 *   S = H W_src^T + b_src,  T = H W_dst^T + b_dst                        (n x h2)
 *   U_e = S[j] + T[i] + E_e W_edge^T,  V_e = PReLU1(U_e) W1^T + b1        (slot rows e = i*W+s)
 *   logits_e = PReLU2(V_e) W2^T + b2,  p_e = softmax(logits_e)[1]
 *   dens_i = mean over i's edges of sim_e (2 p_e - 1)
 *   L = mean_i (dens_i - gt_i)^2 + mean over selected edges of CE(logits_e, same_e)
 * Backward runs the same chain in reverse. Edges are processed in chunks of CB centre nodes
 * (a node's edges never straddle chunks, so its density is chunk-local); PReLU outputs are
 * recomputed per chunk instead of stored. Gradients that sum over edges or nodes are
 * accumulated into per-chunk partial buffers and reduced in chunk order; gradients that
 * flow back to a neighbour (S[j], and H_{l-1}[j] through the aggregation) are gathered over
 * a reverse adjacency listed in ascending edge order. Chunk boundaries never depend on the
 * thread count, so the gradient is bit-identical for any number of threads.
 */
#include "hl/features.h"
#include "hl/gnn.h"
#include "hl/mat.h"
#include "hl/parallel.h"
#include "hl/train.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CB 256  /* centre nodes per edge chunk */
#define NB 2048 /* nodes per node chunk */

typedef struct gctx {
    const hl_model *m;
    const hl_train_graph *tg;
    const hl_graph *g;
    const uint8_t *sel;
    size_t n, W, E, h2, ef;
    int L; /* conv layers */
    int want_grad;
    double inv_sel, inv_n;
    /* forward */
    hl_node_input in0;
    float *X[HL_MAX_CONV], *H[HL_MAX_CONV];
    float *S, *T, *U, *V, *P, *dens;
    /* backward */
    float *gU, *gS, *gT, *gH, *gX;
    int32_t *rev_ptr, *rev_e;
    size_t head_part, node_part; /* floats per partial buffer */
    float *head_parts, *node_parts;
    double *chunk_loss; /* per edge chunk: conn, den, correct */
    /* per thread scratch: A1, A2, gA, gV (CB*W x h2 each) */
    float *scratch[HL_MAX_THREADS];
} gctx;

/* Offsets inside a head partial: gWe, gW1, gb1, gW2, gb2, ga1, ga2. */
typedef struct head_off {
    size_t we, w1, b1, w2, b2, a1, a2;
} head_off;

static head_off head_offsets(const gctx *C)
{
    head_off o;
    o.we = 0;
    o.w1 = o.we + C->h2 * C->ef;
    o.b1 = o.w1 + C->h2 * C->h2;
    o.w2 = o.b1 + C->h2;
    o.b2 = o.w2 + 2 * C->h2;
    o.a1 = o.b2 + 2;
    o.a2 = o.a1 + C->h2;
    return o;
}

static size_t n_chunks(size_t n, size_t b)
{
    return (n + b - 1) / b;
}

/* ------------------------------------------------------------------ forward */

static void conv_task(void *arg, size_t task, int thread)
{
    (void)thread;
    gctx *C = arg;
    int l = (int)(task >> 32);
    size_t c = task & 0xFFFFFFFFu;
    size_t i0 = c * NB, bn = hl__min_size(NB, C->n - i0);
    const hl_model *m = C->m;
    size_t fin2 = 2 * (size_t)m->conv_in[l], out = (size_t)m->conv_out[l];
    hl_node_input prev = {1, {l > 0 ? C->H[l - 1] : NULL}, {l > 0 ? (size_t)m->conv_in[l] : 0}};
    const hl_node_input *in = l == 0 ? &C->in0 : &prev;
    hl_gnn_gather(C->g, in, i0, bn, C->X[l] + i0 * fin2);
    hl_gnn_dense_relu(C->X[l] + i0 * fin2, bn, fin2, m->conv_w[l], m->conv_b[l], out,
                      C->H[l] + i0 * out);
}

static void st_task(void *arg, size_t c, int thread)
{
    (void)thread;
    gctx *C = arg;
    const hl_model *m = C->m;
    size_t i0 = c * NB, bn = hl__min_size(NB, C->n - i0), h2 = C->h2;
    size_t out = (size_t)hl_model_out_dim(m);
    const float *H = C->H[C->L - 1] + i0 * out;
    hl_gnn_link_halves(m, H, bn, out, C->S + i0 * h2, C->T + i0 * h2);
}

static void prelu(const float *x, float *y, size_t rows, size_t h2, const float *a)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < h2; c++) {
            float v = x[r * h2 + c];
            y[r * h2 + c] = v > 0.0f ? v : a[c] * v;
        }
}

/* Head forward for one chunk; leaves PReLU outputs in the thread's A1/A2 scratch. */
static void head_forward(gctx *C, size_t c, float *A1, float *A2)
{
    const hl_model *m = C->m;
    const hl_graph *g = C->g;
    size_t W = C->W, h2 = C->h2;
    size_t i0 = c * CB, bn = hl__min_size(CB, C->n - i0), rows = bn * W, e0 = i0 * W;
    float *U = C->U + e0 * h2, *V = C->V + e0 * h2;
    for (size_t r = 0; r < bn; r++) {
        size_t i = i0 + r;
        const float *Ti = C->T + i * h2;
        for (size_t s = 0; s < W; s++) {
            float *u = U + (r * W + s) * h2;
            int32_t j = g->nbr[i * W + s];
            const float *Sj = C->S + (size_t)(j >= 0 ? j : 0) * h2;
            for (size_t k = 0; k < h2; k++)
                u[k] = (j >= 0 ? Sj[k] : 0.0f) + Ti[k];
        }
    }
    if (C->ef > 0)
        hl_gemm_nt(rows, h2, C->ef, 1.0f, C->tg->edge + e0 * C->ef, C->ef, m->edge_w, C->ef, 1.0f,
                   U, h2);
    prelu(U, A1, rows, h2, m->prelu1);
    for (size_t r = 0; r < rows; r++)
        memcpy(V + r * h2, m->fc1_b, h2 * sizeof(float));
    hl_gemm_nt(rows, h2, h2, 1.0f, A1, h2, m->fc1_w, h2, 1.0f, V, h2);
    prelu(V, A2, rows, h2, m->prelu2);
}

/* Logits of one slot row from its PReLU2 output. */
static void logits_of(const hl_model *m, const float *a2, size_t h2, double *l0, double *l1)
{
    *l0 = (double)m->fc2_b[0] + (double)hl_dot(a2, m->fc2_w, h2);
    *l1 = (double)m->fc2_b[1] + (double)hl_dot(a2, m->fc2_w + h2, h2);
}

static void edge_forward_task(void *arg, size_t c, int thread)
{
    gctx *C = arg;
    const hl_graph *g = C->g;
    const hl_train_graph *tg = C->tg;
    size_t W = C->W, h2 = C->h2;
    size_t i0 = c * CB, bn = hl__min_size(CB, C->n - i0);
    float *A1 = C->scratch[thread], *A2 = A1 + (size_t)CB * W * h2;
    head_forward(C, c, A1, A2);
    double conn = 0.0, den = 0.0, correct = 0.0;
    for (size_t r = 0; r < bn; r++) {
        size_t i = i0 + r;
        double acc = 0.0;
        for (size_t s = 0; s < W; s++) {
            size_t e = i * W + s;
            if ((int)s >= g->deg[i]) {
                C->P[e] = 0.0f;
                continue;
            }
            double l0, l1;
            logits_of(C->m, A2 + (r * W + s) * h2, h2, &l0, &l1);
            double mx = l0 > l1 ? l0 : l1;
            double lse = mx + log(exp(l0 - mx) + exp(l1 - mx));
            double p1 = exp(l1 - lse);
            C->P[e] = (float)p1;
            acc += (double)g->sim[e] * (2.0 * p1 - 1.0);
            if (C->sel[e]) {
                int y = tg->same[e] != 0;
                conn -= (y ? l1 : l0) - lse;
                correct += (p1 > 0.5) == (y != 0);
            }
        }
        float d = g->deg[i] > 0 ? (float)(acc / g->deg[i]) : 0.0f;
        C->dens[i] = d;
        double diff = (double)d - (double)tg->gt_dens[i];
        den += diff * diff;
    }
    double *cl = C->chunk_loss + c * 3;
    cl[0] = conn;
    cl[1] = den;
    cl[2] = correct;
}

/* ----------------------------------------------------------------- backward */

static void prelu_back(const float *x, const float *gy, float *gx, float *ga, size_t rows,
                       size_t h2, const float *a)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < h2; c++) {
            float v = x[r * h2 + c], g = gy[r * h2 + c];
            if (v > 0.0f) {
                gx[r * h2 + c] = g;
            } else {
                gx[r * h2 + c] = a[c] * g;
                ga[c] += g * v;
            }
        }
}

static void col_sums(const float *x, size_t rows, size_t cols, float *out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            out[c] += x[r * cols + c];
}

static void edge_backward_task(void *arg, size_t c, int thread)
{
    gctx *C = arg;
    const hl_model *m = C->m;
    const hl_graph *g = C->g;
    const hl_train_graph *tg = C->tg;
    size_t W = C->W, h2 = C->h2;
    size_t i0 = c * CB, bn = hl__min_size(CB, C->n - i0), rows = bn * W, e0 = i0 * W;
    size_t blk = (size_t)CB * W * h2;
    float *A1 = C->scratch[thread], *A2 = A1 + blk, *gA = A2 + blk, *gV = gA + blk;
    float *gl = gV + blk; /* rows x 2 logit gradients */
    head_off o = head_offsets(C);
    float *part = C->head_parts + c * C->head_part;
    memset(part, 0, C->head_part * sizeof(float));
    /* Recompute the PReLU outputs (U and V are stored). */
    prelu(C->U + e0 * h2, A1, rows, h2, m->prelu1);
    prelu(C->V + e0 * h2, A2, rows, h2, m->prelu2);
    for (size_t r = 0; r < bn; r++) {
        size_t i = i0 + r;
        double coeff = 2.0 * ((double)C->dens[i] - (double)tg->gt_dens[i]) * C->inv_n;
        for (size_t s = 0; s < W; s++) {
            size_t e = i * W + s, row = r * W + s;
            double g0 = 0.0, g1 = 0.0;
            if ((int)s < g->deg[i]) {
                double p1 = C->P[e], p0 = 1.0 - p1;
                if (C->sel[e]) {
                    int y = tg->same[e] != 0;
                    g0 += (p0 - (y ? 0.0 : 1.0)) * C->inv_sel;
                    g1 += (p1 - (y ? 1.0 : 0.0)) * C->inv_sel;
                }
                double dp = coeff * 2.0 * (double)g->sim[e] / g->deg[i] * p1 * p0;
                g1 += dp;
                g0 -= dp;
            }
            gl[row * 2] = (float)g0;
            gl[row * 2 + 1] = (float)g1;
        }
    }
    /* logits = A2 W2^T + b2 */
    hl_gemm_tn(2, h2, rows, 1.0f, gl, 2, A2, h2, 0.0f, part + o.w2, h2);
    col_sums(gl, rows, 2, part + o.b2);
    hl_gemm_nn(rows, h2, 2, 1.0f, gl, 2, m->fc2_w, h2, 0.0f, gA, h2);
    prelu_back(C->V + e0 * h2, gA, gV, part + o.a2, rows, h2, m->prelu2);
    /* V = A1 W1^T + b1 */
    hl_gemm_tn(h2, h2, rows, 1.0f, gV, h2, A1, h2, 0.0f, part + o.w1, h2);
    col_sums(gV, rows, h2, part + o.b1);
    hl_gemm_nn(rows, h2, h2, 1.0f, gV, h2, m->fc1_w, h2, 0.0f, gA, h2);
    float *gU = C->gU + e0 * h2;
    prelu_back(C->U + e0 * h2, gA, gU, part + o.a1, rows, h2, m->prelu1);
    /* Unused slots carry no gradient to S, T or the edge weights. */
    for (size_t r = 0; r < bn; r++)
        for (size_t s = (size_t)g->deg[i0 + r]; s < W; s++)
            memset(gU + (r * W + s) * h2, 0, h2 * sizeof(float));
    if (C->ef > 0)
        hl_gemm_tn(h2, C->ef, rows, 1.0f, gU, h2, tg->edge + e0 * C->ef, C->ef, 0.0f, part + o.we,
                   C->ef);
    for (size_t r = 0; r < bn; r++) {
        float *gt = C->gT + (i0 + r) * h2;
        memset(gt, 0, h2 * sizeof(float));
        col_sums(gU + r * W * h2, W, h2, gt);
    }
}

/* Reverse adjacency: for each node j, the slot rows e (ascending) with nbr[e] == j. */
static hl_status build_reverse(gctx *C)
{
    const hl_graph *g = C->g;
    size_t n = C->n, W = C->W;
    C->rev_ptr = calloc(n + 1, sizeof(int32_t));
    C->rev_e = malloc((C->E > 0 ? C->E : 1) * sizeof(int32_t));
    if (C->rev_ptr == NULL || C->rev_e == NULL)
        return HL_NOMEM;
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < g->deg[i]; s++)
            C->rev_ptr[g->nbr[i * W + (size_t)s] + 1]++;
    for (size_t j = 0; j < n; j++)
        C->rev_ptr[j + 1] += C->rev_ptr[j];
    int32_t *fill = malloc((n > 0 ? n : 1) * sizeof(int32_t));
    if (fill == NULL)
        return HL_NOMEM;
    memcpy(fill, C->rev_ptr, n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < g->deg[i]; s++)
            C->rev_e[fill[g->nbr[i * W + (size_t)s]]++] = (int32_t)(i * W + (size_t)s);
    free(fill);
    return HL_OK;
}

static void gather_gs_task(void *arg, size_t c, int thread)
{
    (void)thread;
    gctx *C = arg;
    size_t h2 = C->h2, j0 = c * NB, j1 = hl__min_size(C->n, j0 + NB);
    for (size_t j = j0; j < j1; j++) {
        float *gs = C->gS + j * h2;
        memset(gs, 0, h2 * sizeof(float));
        for (int32_t q = C->rev_ptr[j]; q < C->rev_ptr[j + 1]; q++) {
            const float *gu = C->gU + (size_t)C->rev_e[q] * h2;
            for (size_t k = 0; k < h2; k++)
                gs[k] += gu[k];
        }
    }
}

/* Node-chunk partial layout: gWs, gbs, gWd, gbd, then per layer gW_l, gb_l. */
static size_t layer_off(const gctx *C, int l)
{
    const hl_model *m = C->m;
    size_t out = (size_t)hl_model_out_dim(m);
    size_t off = 2 * (C->h2 * out + C->h2);
    for (int q = 0; q < l; q++)
        off += (size_t)m->conv_out[q] * (2 * (size_t)m->conv_in[q] + 1);
    return off;
}

static void st_backward_task(void *arg, size_t c, int thread)
{
    (void)thread;
    gctx *C = arg;
    const hl_model *m = C->m;
    size_t h2 = C->h2, out = (size_t)hl_model_out_dim(m);
    size_t i0 = c * NB, bn = hl__min_size(NB, C->n - i0);
    float *part = C->node_parts + c * C->node_part;
    memset(part, 0, C->node_part * sizeof(float));
    const float *H = C->H[C->L - 1] + i0 * out;
    const float *gS = C->gS + i0 * h2, *gT = C->gT + i0 * h2;
    hl_gemm_tn(h2, out, bn, 1.0f, gS, h2, H, out, 0.0f, part, out);
    col_sums(gS, bn, h2, part + h2 * out);
    float *pd = part + h2 * out + h2;
    hl_gemm_tn(h2, out, bn, 1.0f, gT, h2, H, out, 0.0f, pd, out);
    col_sums(gT, bn, h2, pd + h2 * out);
    float *gH = C->gH + i0 * out;
    hl_gemm_nn(bn, out, h2, 1.0f, gS, h2, m->src_w, out, 0.0f, gH, out);
    hl_gemm_nn(bn, out, h2, 1.0f, gT, h2, m->dst_w, out, 1.0f, gH, out);
}

static void conv_backward_task(void *arg, size_t task, int thread)
{
    (void)thread;
    gctx *C = arg;
    const hl_model *m = C->m;
    int l = (int)(task >> 32);
    size_t c = task & 0xFFFFFFFFu;
    size_t i0 = c * NB, bn = hl__min_size(NB, C->n - i0);
    size_t fin2 = 2 * (size_t)m->conv_in[l], out = (size_t)m->conv_out[l];
    float *part = C->node_parts + c * C->node_part + layer_off(C, l);
    float *gZ = C->gH + i0 * out; /* in place: gH becomes gZ */
    const float *H = C->H[l] + i0 * out;
    for (size_t k = 0; k < bn * out; k++)
        if (!(H[k] > 0.0f))
            gZ[k] = 0.0f;
    hl_gemm_tn(out, fin2, bn, 1.0f, gZ, out, C->X[l] + i0 * fin2, fin2, 0.0f, part, fin2);
    memset(part + out * fin2, 0, out * sizeof(float));
    col_sums(gZ, bn, out, part + out * fin2);
    if (l > 0)
        hl_gemm_nn(bn, fin2, out, 1.0f, gZ, out, m->conv_w[l], fin2, 0.0f, C->gX + i0 * fin2, fin2);
}

/* gH_{l-1}[j] = gX[j, :F] + sum over edges e = (i, s) into j of w_e gX[i, F:]. */
static void conv_input_task(void *arg, size_t task, int thread)
{
    (void)thread;
    gctx *C = arg;
    int l = (int)(task >> 32);
    size_t c = task & 0xFFFFFFFFu;
    size_t F = (size_t)C->m->conv_in[l], fin2 = 2 * F, W = C->W;
    size_t j0 = c * NB, j1 = hl__min_size(C->n, j0 + NB);
    for (size_t j = j0; j < j1; j++) {
        float *gh = C->gH + j * F;
        memcpy(gh, C->gX + j * fin2, F * sizeof(float));
        for (int32_t q = C->rev_ptr[j]; q < C->rev_ptr[j + 1]; q++) {
            size_t e = (size_t)C->rev_e[q], i = e / W;
            float w = C->g->w[e];
            const float *src = C->gX + i * fin2 + F;
            for (size_t k = 0; k < F; k++)
                gh[k] += w * src[k];
        }
    }
}

typedef struct layered {
    gctx *C;
    int l;
    hl_task_fn fn;
} layered;

static void layered_task(void *arg, size_t c, int thread)
{
    layered *L = arg;
    L->fn(L->C, ((size_t)L->l << 32) | c, thread);
}

static void run_layer(gctx *C, int nt, int l, size_t chunks, hl_task_fn fn)
{
    layered L = {C, l, fn};
    hl_parallel_for(nt, chunks, layered_task, &L);
}

/* ------------------------------------------------------------------- driver */

static void reduce_parts(const float *parts, size_t n_parts, size_t stride, size_t off,
                         size_t count, float *dst)
{
    for (size_t k = 0; k < count; k++)
        dst[k] = 0.0f;
    for (size_t p = 0; p < n_parts; p++) {
        const float *src = parts + p * stride + off;
        for (size_t k = 0; k < count; k++)
            dst[k] += src[k];
    }
}

static void collect_grad(gctx *C, float *grad)
{
    const hl_model *m = C->m;
    size_t ec = n_chunks(C->n, CB), nc = n_chunks(C->n, NB);
    size_t h2 = C->h2, out = (size_t)hl_model_out_dim(m);
    memset(grad, 0, m->n_params * sizeof(float));
    head_off o = head_offsets(C);
#define HL_OFF_(p) ((size_t)((p)-m->params))
    if (C->ef > 0)
        reduce_parts(C->head_parts, ec, C->head_part, o.we, h2 * C->ef, grad + HL_OFF_(m->edge_w));
    reduce_parts(C->head_parts, ec, C->head_part, o.w1, h2 * h2, grad + HL_OFF_(m->fc1_w));
    reduce_parts(C->head_parts, ec, C->head_part, o.b1, h2, grad + HL_OFF_(m->fc1_b));
    reduce_parts(C->head_parts, ec, C->head_part, o.w2, 2 * h2, grad + HL_OFF_(m->fc2_w));
    reduce_parts(C->head_parts, ec, C->head_part, o.b2, 2, grad + HL_OFF_(m->fc2_b));
    reduce_parts(C->head_parts, ec, C->head_part, o.a1, h2, grad + HL_OFF_(m->prelu1));
    reduce_parts(C->head_parts, ec, C->head_part, o.a2, h2, grad + HL_OFF_(m->prelu2));
    reduce_parts(C->node_parts, nc, C->node_part, 0, h2 * out, grad + HL_OFF_(m->src_w));
    reduce_parts(C->node_parts, nc, C->node_part, h2 * out, h2, grad + HL_OFF_(m->src_b));
    reduce_parts(C->node_parts, nc, C->node_part, h2 * out + h2, h2 * out,
                 grad + HL_OFF_(m->dst_w));
    reduce_parts(C->node_parts, nc, C->node_part, 2 * h2 * out + h2, h2, grad + HL_OFF_(m->dst_b));
    for (int l = 0; l < C->L; l++) {
        size_t fin2 = 2 * (size_t)m->conv_in[l], lo = (size_t)m->conv_out[l];
        size_t off = layer_off(C, l);
        reduce_parts(C->node_parts, nc, C->node_part, off, lo * fin2, grad + HL_OFF_(m->conv_w[l]));
        reduce_parts(C->node_parts, nc, C->node_part, off + lo * fin2, lo,
                     grad + HL_OFF_(m->conv_b[l]));
    }
#undef HL_OFF_
}

static void gctx_free(gctx *C)
{
    for (int l = 0; l < HL_MAX_CONV; l++) {
        free(C->X[l]);
        free(C->H[l]);
    }
    free(C->S);
    free(C->T);
    free(C->U);
    free(C->V);
    free(C->P);
    free(C->dens);
    free(C->gU);
    free(C->gS);
    free(C->gT);
    free(C->gH);
    free(C->gX);
    free(C->rev_ptr);
    free(C->rev_e);
    free(C->head_parts);
    free(C->node_parts);
    free(C->chunk_loss);
    for (int t = 0; t < HL_MAX_THREADS; t++)
        free(C->scratch[t]);
}

static hl_status gctx_input(gctx *C)
{
    const hl_model *m = C->m;
    const hl_train_graph *tg = C->tg;
    hl_node_input *in = &C->in0;
    memset(in, 0, sizeof(*in));
    if (m->cfg.kind == HL_MODEL_LANDER) {
        if (tg->d != (size_t)m->cfg.dim || tg->x == NULL)
            return HL_RANGE;
        in->part[in->n_parts] = tg->x;
        in->dim[in->n_parts++] = tg->d;
        if (m->cfg.use_cluster_feat) {
            in->part[in->n_parts] = tg->c;
            in->dim[in->n_parts++] = tg->d;
        }
    }
    int nf = hl_model_node_features(m);
    if (nf > 0) {
        if (nf != HL_FEAT_NODE)
            return HL_RANGE;
        in->part[in->n_parts] = tg->node;
        in->dim[in->n_parts++] = (size_t)nf;
    }
    if (m->cfg.edge_features != 0 && m->cfg.edge_features != HL_FEAT_EDGE)
        return HL_RANGE;
    return hl_node_input_width(in) == (size_t)m->cfg.in_features ? HL_OK : HL_RANGE;
}

static hl_status gctx_alloc(gctx *C, int nt)
{
    const hl_model *m = C->m;
    size_t n = C->n, h2 = C->h2, E = C->E, maxw = 0;
    for (int l = 0; l < C->L; l++) {
        size_t fin2 = 2 * (size_t)m->conv_in[l];
        C->X[l] = malloc((n * fin2 + 1) * sizeof(float));
        C->H[l] = malloc((n * (size_t)m->conv_out[l] + 1) * sizeof(float));
        if (C->X[l] == NULL || C->H[l] == NULL)
            return HL_NOMEM;
        if (fin2 > maxw)
            maxw = fin2;
        if ((size_t)m->conv_out[l] > maxw)
            maxw = (size_t)m->conv_out[l];
    }
    C->S = malloc((n * h2 + 1) * sizeof(float));
    C->T = malloc((n * h2 + 1) * sizeof(float));
    C->U = malloc((E * h2 + 1) * sizeof(float));
    C->V = malloc((E * h2 + 1) * sizeof(float));
    C->P = malloc((E + 1) * sizeof(float));
    C->dens = malloc((n + 1) * sizeof(float));
    size_t ec = n_chunks(n, CB);
    C->chunk_loss = calloc(ec * 3 + 1, sizeof(double));
    size_t per = (size_t)CB * C->W * h2 * 4 + (size_t)CB * C->W * 2;
    for (int t = 0; t < nt; t++) {
        C->scratch[t] = malloc(per * sizeof(float));
        if (C->scratch[t] == NULL)
            return HL_NOMEM;
    }
    if (C->S == NULL || C->T == NULL || C->U == NULL || C->V == NULL || C->P == NULL ||
        C->dens == NULL || C->chunk_loss == NULL)
        return HL_NOMEM;
    if (!C->want_grad)
        return HL_OK;
    head_off o = head_offsets(C);
    C->head_part = o.a2 + h2;
    C->node_part = layer_off(C, C->L);
    C->head_parts = malloc((ec * C->head_part + 1) * sizeof(float));
    C->node_parts = malloc((n_chunks(n, NB) * C->node_part + 1) * sizeof(float));
    C->gU = malloc((E * h2 + 1) * sizeof(float));
    C->gS = malloc((n * h2 + 1) * sizeof(float));
    C->gT = malloc((n * h2 + 1) * sizeof(float));
    C->gH = malloc((n * maxw + 1) * sizeof(float));
    C->gX = malloc((n * maxw + 1) * sizeof(float));
    if (C->head_parts == NULL || C->node_parts == NULL || C->gU == NULL || C->gS == NULL ||
        C->gT == NULL || C->gH == NULL || C->gX == NULL)
        return HL_NOMEM;
    return build_reverse(C);
}

static hl_status run(const hl_model *m, const hl_train_graph *tg, const uint8_t *sel, int n_threads,
                     float *grad, hl_grad_stats *st)
{
    gctx C;
    memset(&C, 0, sizeof(C));
    C.m = m;
    C.tg = tg;
    C.g = &tg->g;
    C.sel = sel != NULL ? sel : tg->mask;
    C.n = tg->g.n;
    C.W = (size_t)tg->g.width;
    C.E = C.n * C.W;
    C.h2 = (size_t)m->cfg.hidden / 2;
    C.ef = (size_t)m->cfg.edge_features;
    C.L = m->cfg.n_conv;
    C.want_grad = grad != NULL;
    memset(st, 0, sizeof(*st));
    hl_status rc = gctx_input(&C);
    if (rc != HL_OK)
        return rc;
    if (C.ef > 0 && tg->edge == NULL)
        return HL_RANGE;
    size_t n_sel = 0;
    for (size_t i = 0; i < C.n; i++)
        for (int s = 0; s < tg->g.deg[i]; s++)
            n_sel += C.sel[i * C.W + (size_t)s] != 0;
    C.inv_sel = n_sel > 0 ? 1.0 / (double)n_sel : 0.0;
    C.inv_n = C.n > 0 ? 1.0 / (double)C.n : 0.0;
    int nt = hl_threads_clamp(n_threads);
    rc = gctx_alloc(&C, nt);
    if (rc != HL_OK) {
        gctx_free(&C);
        return rc;
    }
    size_t nc = n_chunks(C.n, NB), ec = n_chunks(C.n, CB);
    for (int l = 0; l < C.L; l++)
        run_layer(&C, nt, l, nc, conv_task);
    hl_parallel_for(nt, nc, st_task, &C);
    hl_parallel_for(nt, ec, edge_forward_task, &C);
    double conn = 0.0, den = 0.0, correct = 0.0;
    for (size_t c = 0; c < ec; c++) {
        conn += C.chunk_loss[c * 3];
        den += C.chunk_loss[c * 3 + 1];
        correct += C.chunk_loss[c * 3 + 2];
    }
    st->loss_conn = conn * C.inv_sel;
    st->loss_den = den * C.inv_n;
    st->loss = st->loss_conn + st->loss_den;
    st->n_sel = n_sel;
    st->n_correct = (size_t)correct;
    st->n_nodes = C.n;
    if (C.want_grad) {
        hl_parallel_for(nt, ec, edge_backward_task, &C);
        hl_parallel_for(nt, nc, gather_gs_task, &C);
        hl_parallel_for(nt, nc, st_backward_task, &C);
        for (int l = C.L - 1; l >= 0; l--) {
            run_layer(&C, nt, l, nc, conv_backward_task);
            if (l > 0)
                run_layer(&C, nt, l, nc, conv_input_task);
        }
        collect_grad(&C, grad);
    }
    gctx_free(&C);
    return HL_OK;
}

hl_status hl_lander_grad(const hl_model *m, const hl_train_graph *tg, const uint8_t *sel,
                         int n_threads, float *grad, hl_grad_stats *st)
{
    return run(m, tg, sel, n_threads, grad, st);
}

hl_status hl_lander_loss(const hl_model *m, const hl_train_graph *tg, const uint8_t *sel,
                         int n_threads, hl_grad_stats *st)
{
    return run(m, tg, sel, n_threads, NULL, st);
}
