/* jobspec.c - see jobspec.h. */
#include "jobspec.h"

#include "result.h"

#include <stdlib.h>
#include <string.h>

typedef struct spec_header {
    char magic[4];
    uint32_t flags;
    uint64_t rows, cols;
    int32_t k;
    float tau;
    int32_t max_levels, early_stop, min_cluster_size;
    uint32_t checksum;
    uint64_t ids_bytes;
    char model[64];
    char cache_key[33];
    char cache_src[32];
    char request_id[72];
    int32_t kind, new_clusters; /* srv_job.kind, hl_new_clusters (assign jobs) */
    char clustering[32];
} spec_header;

_Static_assert(sizeof(spec_header) <= SRV_JOBSPEC_HEADER, "job spec header too large");

enum { SPEC_IDS = 1, SPEC_LABELS = 2 };

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

hl_status srv_jobspec_encode(const srv_job *j, void **out, size_t *len)
{
    size_t rows = j->x.rows, cols = j->x.cols;
    if (cols != 0 && rows > SIZE_MAX / 8 / cols)
        return HL_RANGE;
    char *ids = NULL;
    size_t ids_bytes = 0;
    if (j->ids != NULL && srv_ids_pack(j->ids, rows, &ids, &ids_bytes) != HL_OK)
        return HL_NOMEM;
    size_t xb = rows * cols * sizeof(float), lb = j->labels != NULL ? rows * sizeof(int32_t) : 0;
    size_t total = SRV_JOBSPEC_HEADER + xb + lb + ids_bytes;
    unsigned char *p = calloc(1, total);
    if (p == NULL) {
        free(ids);
        return HL_NOMEM;
    }
    spec_header h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, "HLJ1", 4);
    h.flags = (j->ids != NULL ? SPEC_IDS : 0) | (j->labels != NULL ? SPEC_LABELS : 0);
    h.rows = rows;
    h.cols = cols;
    h.k = j->params.k;
    h.tau = j->params.tau;
    h.max_levels = j->params.max_levels;
    h.early_stop = j->params.early_stop;
    h.min_cluster_size = j->params.min_cluster_size;
    h.checksum = j->model != NULL ? j->model->checksum : 0;
    h.ids_bytes = ids_bytes;
    copy_str(h.model, sizeof(h.model), j->model != NULL ? j->model->name : "");
    copy_str(h.cache_key, sizeof(h.cache_key), j->cache_key);
    copy_str(h.cache_src, sizeof(h.cache_src), j->cache_src);
    copy_str(h.request_id, sizeof(h.request_id), j->request_id);
    h.kind = j->kind;
    h.new_clusters = (int32_t)j->new_clusters;
    copy_str(h.clustering, sizeof(h.clustering), j->clustering);
    memcpy(p, &h, sizeof(h));
    if (xb > 0)
        memcpy(p + SRV_JOBSPEC_HEADER, j->x.data, xb);
    if (lb > 0)
        memcpy(p + SRV_JOBSPEC_HEADER + xb, j->labels, lb);
    if (ids_bytes > 0)
        memcpy(p + SRV_JOBSPEC_HEADER + xb + lb, ids, ids_bytes);
    free(ids);
    *out = p;
    *len = total;
    return HL_OK;
}

/* Builds the one-block id table (pointers, then the strings) from packed strings. */
static hl_status unpack_ids(const char *packed, size_t bytes, size_t n, char ***out)
{
    if (n > (SIZE_MAX - bytes) / sizeof(char *))
        return HL_FORMAT;
    char **v = malloc(n * sizeof(char *) + bytes + 1);
    if (v == NULL)
        return HL_NOMEM;
    char *s = (char *)(v + n);
    memcpy(s, packed, bytes);
    s[bytes] = '\0';
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (off >= bytes) {
            free(v);
            return HL_FORMAT;
        }
        v[i] = s + off;
        off += strlen(s + off) + 1;
    }
    if (off != bytes) {
        free(v);
        return HL_FORMAT;
    }
    *out = v;
    return HL_OK;
}

static int header_ok(const spec_header *h, size_t len)
{
    if (memcmp(h->magic, "HLJ1", 4) != 0 || (h->flags & ~3u) != 0 || h->cols == 0 ||
        h->rows > SIZE_MAX / 8 / h->cols || memchr(h->model, 0, sizeof(h->model)) == NULL ||
        memchr(h->cache_key, 0, sizeof(h->cache_key)) == NULL ||
        memchr(h->cache_src, 0, sizeof(h->cache_src)) == NULL ||
        memchr(h->request_id, 0, sizeof(h->request_id)) == NULL ||
        memchr(h->clustering, 0, sizeof(h->clustering)) == NULL ||
        (h->kind != SRV_KIND_CLUSTER && h->kind != SRV_KIND_ASSIGN) ||
        (h->new_clusters != HL_NEW_OPEN && h->new_clusters != HL_NEW_UNASSIGNED))
        return 0;
    size_t need = (size_t)(h->rows * h->cols * sizeof(float));
    if ((h->flags & SPEC_LABELS) != 0)
        need += (size_t)h->rows * sizeof(int32_t);
    if ((h->flags & SPEC_IDS) == 0 && h->ids_bytes != 0)
        return 0;
    return len >= SRV_JOBSPEC_HEADER && h->ids_bytes <= SIZE_MAX / 2 &&
           len - SRV_JOBSPEC_HEADER == need + (size_t)h->ids_bytes;
}

hl_status srv_jobspec_decode(void *buf, size_t len, srv_job *j, char model[64], uint32_t *checksum)
{
    spec_header h;
    if (len < SRV_JOBSPEC_HEADER) {
        free(buf);
        return HL_FORMAT;
    }
    memcpy(&h, buf, sizeof(h));
    if (!header_ok(&h, len)) {
        free(buf);
        return HL_FORMAT;
    }
    const unsigned char *p = (const unsigned char *)buf + SRV_JOBSPEC_HEADER;
    size_t rows = (size_t)h.rows, xb = rows * (size_t)h.cols * sizeof(float);
    hl_status st = HL_OK;
    if ((h.flags & SPEC_LABELS) != 0) {
        j->labels = malloc(rows > 0 ? rows * sizeof(int32_t) : 1);
        if (j->labels == NULL)
            st = HL_NOMEM;
        else
            memcpy(j->labels, p + xb, rows * sizeof(int32_t));
    }
    size_t lb = (h.flags & SPEC_LABELS) != 0 ? rows * sizeof(int32_t) : 0;
    if (st == HL_OK && (h.flags & SPEC_IDS) != 0)
        st = unpack_ids((const char *)p + xb + lb, (size_t)h.ids_bytes, rows, &j->ids);
    if (st != HL_OK) {
        free(j->labels);
        j->labels = NULL;
        free(buf);
        return st;
    }
    j->body = buf;
    j->x.data = (const float *)(const void *)p; /* the header keeps the floats aligned */
    j->x.rows = rows;
    j->x.cols = (size_t)h.cols;
    j->x.owned = NULL;
    hl_cluster_params_default(&j->params);
    j->params.k = h.k;
    j->params.tau = h.tau;
    j->params.max_levels = h.max_levels;
    j->params.early_stop = h.early_stop;
    j->params.min_cluster_size = h.min_cluster_size;
    memcpy(j->cache_key, h.cache_key, sizeof(j->cache_key));
    memcpy(j->cache_src, h.cache_src, sizeof(j->cache_src));
    copy_str(j->request_id, sizeof(j->request_id), h.request_id);
    j->kind = h.kind;
    j->new_clusters = (hl_new_clusters)h.new_clusters;
    copy_str(j->clustering, sizeof(j->clustering), h.clustering);
    memcpy(model, h.model, 64);
    *checksum = h.checksum;
    return HL_OK;
}
