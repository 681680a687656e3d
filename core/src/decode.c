/* decode.c - parent selection and forest roots; see hl/decode.h. */
#include "hl/decode.h"

#include <string.h>

size_t hl_decode_parents(const hl_graph *g, const float *score, const float *dens, float tau,
                         int32_t *parent)
{
    size_t w = (size_t)g->width;
    size_t links = 0;
    for (size_t i = 0; i < g->n; i++) {
        const int32_t *nb = g->nbr + i * w;
        const float *sc = score != NULL ? score + i * w : g->sim + i * w;
        int32_t best = -1;
        float best_s = 0.0f;
        for (int s = 0; s < g->deg[i]; s++) {
            int32_t j = nb[s];
            /* Denser, with equal densities ordered by index (see hl/decode.h). */
            int denser = dens[j] > dens[i] || (dens[j] == dens[i] && (size_t)j < i);
            if (!denser || !(sc[s] > tau))
                continue;
            if (best < 0 || sc[s] > best_s) {
                best = j;
                best_s = sc[s];
            }
        }
        parent[i] = best;
        if (best >= 0)
            links++;
    }
    return links;
}

hl_status hl_decode_roots(const int32_t *parent, size_t n, int32_t *root)
{
    /* root[i] = -2 while unknown. Each walk stops at a known root, so every node is visited
     * a bounded number of times; a walk longer than n steps means a cycle. */
    for (size_t i = 0; i < n; i++) {
        if (parent[i] < -1) /* only -1 marks a root; other negatives are out of range */
            return HL_INTERNAL;
        root[i] = -2;
    }
    for (size_t i = 0; i < n; i++) {
        if (root[i] != -2)
            continue;
        size_t cur = i, steps = 0;
        while (root[cur] == -2 && parent[cur] >= 0) {
            if ((size_t)parent[cur] >= n || ++steps > n)
                return HL_INTERNAL;
            cur = (size_t)parent[cur];
        }
        int32_t r = root[cur] != -2 ? root[cur] : (int32_t)cur;
        root[cur] = r;
        /* Second pass: write the root along the path. */
        cur = i;
        while (root[cur] == -2) {
            root[cur] = r;
            cur = (size_t)parent[cur];
        }
    }
    return HL_OK;
}

size_t hl_decode_merge(const int32_t *parent, const int32_t *root, size_t n, size_t d, float *x,
                       float *cmean, int32_t *cnt, int32_t *newid)
{
    size_t next = 0;
    for (size_t i = 0; i < n; i++)
        newid[i] = parent[i] < 0 ? (int32_t)next++ : -1;
    /* Means become sums; children are added into their root's row. */
    if (cmean != NULL) {
        for (size_t i = 0; i < n; i++) {
            float c = (float)cnt[i];
            float *row = cmean + i * d;
            for (size_t j = 0; j < d; j++)
                row[j] *= c;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int32_t r = root[i];
        if ((size_t)r == i)
            continue;
        if (cmean != NULL) {
            float *dst = cmean + (size_t)r * d;
            const float *src = cmean + i * d;
            for (size_t j = 0; j < d; j++)
                dst[j] += src[j];
        }
        cnt[r] += cnt[i];
    }
    /* Roots move forward (new id <= old id), so in-place compaction is safe. */
    for (size_t i = 0; i < n; i++) {
        int32_t ni = newid[i];
        if (ni < 0)
            continue;
        if (cmean != NULL) {
            float inv = 1.0f / (float)cnt[i];
            float *dst = cmean + (size_t)ni * d;
            const float *src = cmean + i * d;
            for (size_t j = 0; j < d; j++)
                dst[j] = src[j] * inv;
        }
        cnt[ni] = cnt[i];
        if (x != NULL && (size_t)ni != i)
            memmove(x + (size_t)ni * d, x + i * d, d * sizeof(float));
    }
    return next;
}

size_t hl_decode_merge_first(const int32_t *parent, const int32_t *root, size_t n, size_t d,
                             float *x, float *cmean, int32_t *cnt, int32_t *newid)
{
    size_t next = 0;
    for (size_t i = 0; i < n; i++)
        newid[i] = parent[i] < 0 ? (int32_t)next++ : -1;
    /* Each tree's sum starts as its root's row; its other members are added in index order,
     * as hl_decode_merge() adds them (a root's row times its count of 1 is the row itself). */
    for (size_t i = 0; i < n; i++) {
        int32_t ni = newid[i];
        if (ni < 0)
            continue;
        memcpy(cmean + (size_t)ni * d, x + i * d, d * sizeof(float));
        cnt[ni] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t r = root[i];
        if ((size_t)r == i)
            continue;
        int32_t nr = newid[r];
        float *dst = cmean + (size_t)nr * d;
        const float *src = x + i * d;
        for (size_t j = 0; j < d; j++)
            dst[j] += src[j];
        cnt[nr]++;
    }
    for (size_t ni = 0; ni < next; ni++) {
        float inv = 1.0f / (float)cnt[ni];
        float *row = cmean + ni * d;
        for (size_t j = 0; j < d; j++)
            row[j] *= inv;
    }
    for (size_t i = 0; i < n; i++) { /* peaks move forward: new id <= old id */
        int32_t ni = newid[i];
        if (ni >= 0 && (size_t)ni != i)
            memmove(x + (size_t)ni * d, x + i * d, d * sizeof(float));
    }
    return next;
}
