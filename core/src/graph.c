/* graph.c - the dense-slot kNN graph; see hl/graph.h. */
#include "hl/graph.h"

#include <string.h>

size_t hl_graph_plan(size_t n, int k)
{
    size_t w = k > 1 ? (size_t)(k - 1) : 1;
    return 3 * hl_arena_block(n * w * 4) + hl_arena_block(n * 4);
}

hl_status hl_graph_init(hl_graph *g, size_t n, int k, hl_arena *a)
{
    if (k < 2)
        return HL_INVAL;
    size_t w = (size_t)(k - 1);
    g->n = n;
    g->width = k - 1;
    g->nbr = hl_arena_alloc_array(a, n * w, sizeof(int32_t), 64);
    g->sim = hl_arena_alloc_array(a, n * w, sizeof(float), 64);
    g->w = hl_arena_alloc_array(a, n * w, sizeof(float), 64);
    g->deg = hl_arena_alloc_array(a, n > 0 ? n : 1, sizeof(int32_t), 64);
    if (g->nbr == NULL || g->sim == NULL || g->w == NULL || g->deg == NULL)
        return HL_NOMEM;
    return HL_OK;
}

void hl_graph_from_knn(hl_graph *g, const int32_t *idx, const float *sim, int k)
{
    size_t w = (size_t)g->width;
    for (size_t i = 0; i < g->n; i++) {
        const int32_t *ir = idx + i * (size_t)k;
        const float *sr = sim + i * (size_t)k;
        int32_t *nb = g->nbr + i * w;
        float *sm = g->sim + i * w;
        float *ww = g->w + i * w;
        int deg = 0;
        double sum = 0.0;
        for (int c = 0; c < k && deg < g->width; c++) {
            int32_t j = ir[c];
            if (j < 0 || (size_t)j == i || !(sr[c] > 0.0f))
                continue;
            nb[deg] = j;
            sm[deg] = sr[c];
            sum += (double)sr[c];
            deg++;
        }
        for (int s = 0; s < deg; s++)
            ww[s] = (float)((double)sm[s] / sum);
        for (int s = deg; s < g->width; s++) {
            nb[s] = -1;
            sm[s] = 0.0f;
            ww[s] = 0.0f;
        }
        g->deg[i] = deg;
    }
}

size_t hl_graph_edges(const hl_graph *g)
{
    size_t e = 0;
    for (size_t i = 0; i < g->n; i++)
        e += (size_t)g->deg[i];
    return e;
}

void hl_graph_density(const hl_graph *g, const float *score, float *dens)
{
    size_t w = (size_t)g->width;
    for (size_t i = 0; i < g->n; i++) {
        int deg = g->deg[i];
        if (deg == 0) {
            dens[i] = 0.0f;
            continue;
        }
        const float *sm = g->sim + i * w;
        const float *sc = score != NULL ? score + i * w : sm;
        float acc = 0.0f;
        for (int s = 0; s < deg; s++)
            acc += sm[s] * (2.0f * sc[s] - 1.0f);
        dens[i] = acc / (float)deg;
    }
}

void hl_density_truth(const int32_t *idx, const float *sim, size_t n, int k, const int32_t *labels,
                      float *dens)
{
    for (size_t i = 0; i < n; i++) {
        const int32_t *ir = idx + i * (size_t)k;
        const float *sr = sim + i * (size_t)k;
        double acc = 0.0;
        int used = 0;
        for (int c = 0; c < k && used < k - 1; c++) {
            int32_t j = ir[c];
            if (j < 0 || (size_t)j == i)
                continue;
            acc += labels[j] == labels[i] ? (double)sr[c] : -(double)sr[c];
            used++;
        }
        dens[i] = k > 1 ? (float)(acc / (double)(k - 1)) : 0.0f;
    }
}
