/* gnn.c - GraphConv forward in row blocks; see hl/gnn.h. */
#include "hl/gnn.h"

#include "hl/mat.h"

#include <string.h>

static void gather_part(const hl_graph *g, const float *src, size_t d, size_t i, float *self,
                        float *agg)
{
    size_t w = (size_t)g->width;
    const int32_t *nb = g->nbr + i * w;
    const float *ww = g->w + i * w;
    memcpy(self, src + i * d, d * sizeof(float));
    for (size_t c = 0; c < d; c++)
        agg[c] = 0.0f;
    for (int s = 0; s < g->deg[i]; s++) {
        const float *r = src + (size_t)nb[s] * d;
        float a = ww[s];
        for (size_t c = 0; c < d; c++)
            agg[c] += a * r[c];
    }
}

size_t hl_node_input_width(const hl_node_input *in)
{
    size_t f = 0;
    for (int p = 0; p < in->n_parts; p++)
        f += in->dim[p];
    return f;
}

void hl_gnn_gather(const hl_graph *g, const hl_node_input *in, size_t i0, size_t bn, float *x)
{
    size_t f = hl_node_input_width(in);
    for (size_t r = 0; r < bn; r++) {
        size_t i = i0 + r;
        float *row = x + r * 2 * f;
        size_t off = 0;
        for (int p = 0; p < in->n_parts; p++) {
            gather_part(g, in->part[p], in->dim[p], i, row + off, row + f + off);
            off += in->dim[p];
        }
    }
}

void hl_gnn_dense_relu(const float *x, size_t bn, size_t fin2, const float *w, const float *b,
                       size_t out, float *h)
{
    for (size_t r = 0; r < bn; r++)
        memcpy(h + r * out, b, out * sizeof(float));
    hl_gemm_nt(bn, out, fin2, 1.0f, x, fin2, w, fin2, 1.0f, h, out);
    for (size_t i = 0; i < bn * out; i++)
        h[i] = h[i] > 0.0f ? h[i] : 0.0f;
}

void hl_gnn_link_halves(const hl_model *m, const float *h, size_t bn, size_t out, float *s,
                        float *t)
{
    size_t h2 = (size_t)m->cfg.hidden / 2;
    for (size_t r = 0; r < bn; r++) {
        memcpy(s + r * h2, m->src_b, h2 * sizeof(float));
        memcpy(t + r * h2, m->dst_b, h2 * sizeof(float));
    }
    hl_gemm_nt(bn, h2, out, 1.0f, h, out, m->src_w, out, 1.0f, s, h2);
    hl_gemm_nt(bn, h2, out, 1.0f, h, out, m->dst_w, out, 1.0f, t, h2);
}

void hl_gnn_prelu_rows(float *z, size_t rows, size_t h2, const float *slope)
{
    for (size_t r = 0; r < rows; r++) {
        float *zr = z + r * h2;
        for (size_t c = 0; c < h2; c++)
            zr[c] = zr[c] > 0.0f ? zr[c] : slope[c] * zr[c];
    }
}
