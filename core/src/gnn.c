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

void hl_gnn_gather(const hl_graph *g, const hl_node_input *in, size_t i0, size_t bn, float *x)
{
    size_t f = in->da + in->db;
    for (size_t r = 0; r < bn; r++) {
        size_t i = i0 + r;
        float *row = x + r * 2 * f;
        gather_part(g, in->a, in->da, i, row, row + f);
        if (in->db > 0)
            gather_part(g, in->b, in->db, i, row + in->da, row + f + in->da);
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
