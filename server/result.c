/* result.c - the compact result format; see result.h. */
#include "result.h"

#include <stdlib.h>
#include <string.h>

#define HDR 96 /* 40 bytes of fields + 7 doubles */

static size_t pad8(size_t x)
{
    return (x + 7) & ~(size_t)7;
}

static hl_status sizes(size_t n, size_t levels, size_t ids_bytes, size_t *total)
{
    size_t cells, b;
    if (hl_mul_size(n, levels + 1, &cells) != HL_OK ||
        hl_add_size(cells, levels, &cells) != HL_OK || hl_mul_size(cells, 4, &b) != HL_OK)
        return HL_FORMAT;
    b = pad8(b);
    if (hl_add_size(b, ids_bytes, &b) != HL_OK || hl_add_size(b, HDR, &b) != HL_OK)
        return HL_FORMAT;
    *total = b;
    return HL_OK;
}

hl_status srv_result_encode(const srv_result *r, void **out, size_t *len)
{
    size_t total;
    size_t ids_bytes = r->ids != NULL ? r->ids_bytes : 0;
    if (r->n_levels < 1 || sizes(r->n, (size_t)r->n_levels, ids_bytes, &total) != HL_OK)
        return HL_INVAL;
    unsigned char *p = calloc(1, total);
    if (p == NULL)
        return HL_NOMEM;
    uint32_t flags = (r->ids != NULL ? 1u : 0u) | (r->has_metrics ? 2u : 0u);
    uint64_t n = r->n, nc = r->n_clusters, ib = ids_bytes;
    uint32_t nl = (uint32_t)r->n_levels;
    memcpy(p, "HLR1", 4);
    memcpy(p + 4, &flags, 4);
    memcpy(p + 8, &n, 8);
    memcpy(p + 16, &nl, 4);
    memcpy(p + 24, &nc, 8);
    memcpy(p + 32, &ib, 8);
    memcpy(p + 40, r->metrics, sizeof(r->metrics));
    unsigned char *q = p + HDR;
    memcpy(q, r->labels, r->n * 4);
    q += r->n * 4;
    memcpy(q, r->level_labels, r->n * (size_t)nl * 4);
    q += r->n * (size_t)nl * 4;
    memcpy(q, r->level_clusters, (size_t)nl * 4);
    q += (size_t)nl * 4;
    q = p + HDR + pad8((size_t)(q - (p + HDR)));
    if (ids_bytes > 0)
        memcpy(q, r->ids, ids_bytes);
    *out = p;
    *len = total;
    return HL_OK;
}

hl_status srv_result_decode(const void *buf, size_t len, srv_result *r)
{
    memset(r, 0, sizeof(*r));
    const unsigned char *p = buf;
    if (len < HDR || memcmp(p, "HLR1", 4) != 0)
        return HL_FORMAT;
    uint32_t flags, nl;
    uint64_t n, nc, ib;
    memcpy(&flags, p + 4, 4);
    memcpy(&n, p + 8, 8);
    memcpy(&nl, p + 16, 4);
    memcpy(&nc, p + 24, 8);
    memcpy(&ib, p + 32, 8);
    size_t total;
    if (nl < 1 || nl > 64 || n > SIZE_MAX / 8 ||
        sizes((size_t)n, nl, (size_t)ib, &total) != HL_OK || total != len)
        return HL_FORMAT;
    r->n = (size_t)n;
    r->n_levels = (int)nl;
    r->n_clusters = (size_t)nc;
    r->has_metrics = (flags & 2u) != 0;
    memcpy(r->metrics, p + 40, sizeof(r->metrics));
    const unsigned char *q = p + HDR;
    r->labels = (const int32_t *)(const void *)q;
    r->level_labels = r->labels + r->n;
    r->level_clusters = r->level_labels + r->n * nl;
    if ((flags & 1u) != 0) {
        r->ids = (const char *)p + (len - (size_t)ib);
        r->ids_bytes = (size_t)ib;
        if (ib == 0 || r->ids[ib - 1] != '\0')
            return HL_FORMAT;
    }
    return HL_OK;
}

hl_status srv_ids_pack(char *const *ids, size_t n, char **out, size_t *bytes)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(ids[i]) + 1;
    char *p = malloc(total > 0 ? total : 1);
    if (p == NULL)
        return HL_NOMEM;
    char *q = p;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]) + 1;
        memcpy(q, ids[i], l);
        q += l;
    }
    *out = p;
    *bytes = total;
    return HL_OK;
}

#define AHDR 88

static hl_status assign_size(size_t n, size_t ids_bytes, size_t *total)
{
    size_t b;
    if (hl_mul_size(n, 8, &b) != HL_OK || hl_add_size(b, ids_bytes, &b) != HL_OK ||
        hl_add_size(b, AHDR, &b) != HL_OK)
        return HL_FORMAT;
    *total = b; /* 8 bytes per point keep the ids 8-aligned: no padding */
    return HL_OK;
}

hl_status srv_assign_result_encode(const srv_assign_result *r, void **out, size_t *len)
{
    size_t total, ids_bytes = r->ids != NULL ? r->ids_bytes : 0;
    if (assign_size(r->n, ids_bytes, &total) != HL_OK ||
        memchr(r->clustering, '\0', sizeof(r->clustering)) == NULL)
        return HL_INVAL;
    unsigned char *p = calloc(1, total);
    if (p == NULL)
        return HL_NOMEM;
    uint32_t flags = r->ids != NULL ? 1u : 0u;
    uint64_t v[7] = {r->n, r->version, r->attached, r->new_clusters, r->unassigned, ids_bytes, 0};
    memcpy(p, "HLA1", 4);
    memcpy(p + 4, &flags, 4);
    memcpy(p + 8, v, 6 * 8);
    memcpy(p + 56, r->clustering, sizeof(r->clustering));
    memcpy(p + AHDR, r->labels, r->n * 4);
    memcpy(p + AHDR + r->n * 4, r->scores, r->n * 4);
    if (ids_bytes > 0)
        memcpy(p + AHDR + r->n * 8, r->ids, ids_bytes);
    *out = p;
    *len = total;
    return HL_OK;
}

int srv_result_is_assign(const void *buf, size_t len)
{
    return len >= 4 && memcmp(buf, "HLA1", 4) == 0;
}

hl_status srv_assign_result_decode(const void *buf, size_t len, srv_assign_result *r)
{
    memset(r, 0, sizeof(*r));
    const unsigned char *p = buf;
    if (len < AHDR || !srv_result_is_assign(buf, len))
        return HL_FORMAT;
    uint32_t flags;
    uint64_t v[6];
    memcpy(&flags, p + 4, 4);
    memcpy(v, p + 8, sizeof(v));
    size_t total;
    if ((flags & ~1u) != 0 || v[0] > SIZE_MAX / 16 || v[5] > SIZE_MAX / 2 ||
        assign_size((size_t)v[0], (size_t)v[5], &total) != HL_OK || total != len)
        return HL_FORMAT;
    memcpy(r->clustering, p + 56, sizeof(r->clustering));
    if (memchr(r->clustering, '\0', sizeof(r->clustering)) == NULL)
        return HL_FORMAT;
    r->n = (size_t)v[0];
    r->version = v[1];
    r->attached = v[2];
    r->new_clusters = v[3];
    r->unassigned = v[4];
    r->labels = (const int32_t *)(const void *)(p + AHDR);
    r->scores = (const float *)(const void *)(p + AHDR + r->n * 4);
    if ((flags & 1u) != 0) {
        r->ids = (const char *)p + AHDR + r->n * 8;
        r->ids_bytes = (size_t)v[5];
        if (v[5] == 0 || r->ids[v[5] - 1] != '\0')
            return HL_FORMAT;
    }
    return HL_OK;
}
