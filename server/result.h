/*
 * result.h - a finished job's result in compact binary form (what the store keeps), and the
 * view used to render JSON and .npy on GET.
 *
 * Layout (host byte order, 8-byte aligned sections):
 *   header (96 bytes): "HLR1", u32 flags (1 = ids, 2 = metrics), u64 n, u32 n_levels, u32 0,
 *                      u64 n_clusters, u64 ids_bytes, f64 metrics[7]
 *   i32 labels[n], i32 level_labels[n_levels * n], i32 level_clusters[n_levels], padding
 *   to 8, then ids_bytes of n NUL-terminated strings.
 * Thread-safety: reentrant. Views borrow the buffer they were decoded from.
 */
#ifndef SRV_RESULT_H
#define SRV_RESULT_H

#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct srv_result {
    size_t n;
    int n_levels;
    size_t n_clusters;
    const int32_t *labels;         /* n */
    const int32_t *level_labels;   /* n_levels * n */
    const int32_t *level_clusters; /* n_levels */
    int has_metrics;
    double metrics[7]; /* fp, fp_precision, fp_recall, fb, fb_precision, fb_recall, nmi */
    const char *ids;   /* n NUL-terminated strings back to back, or NULL */
    size_t ids_bytes;
} srv_result;

/** Serialises a view into a malloc'd buffer. */
hl_status srv_result_encode(const srv_result *r, void **out, size_t *len);

/** Checks the buffer and fills a view into it (HL_FORMAT when inconsistent). */
hl_status srv_result_decode(const void *buf, size_t len, srv_result *r);

/*
 * An assign job's result (POST /v1/clusterings/{id}/assign):
 *   header (88 bytes): "HLA1", u32 flags (1 = ids), u64 n, u64 state version, u64 attached,
 *                      u64 new clusters, u64 unassigned, u64 ids_bytes, char clustering[32]
 *   i32 labels[n], f32 scores[n], padding to 8, then ids_bytes of n NUL-terminated strings.
 */
typedef struct srv_assign_result {
    size_t n;
    const int32_t *labels; /* n */
    const float *scores;   /* n */
    char clustering[32];   /* the cluster job's id */
    uint64_t version;      /* the state version this assign wrote */
    uint64_t attached, new_clusters, unassigned;
    const char *ids; /* as in srv_result */
    size_t ids_bytes;
} srv_assign_result;

hl_status srv_assign_result_encode(const srv_assign_result *r, void **out, size_t *len);

/** HL_FORMAT when the buffer is not a consistent assign result. */
hl_status srv_assign_result_decode(const void *buf, size_t len, srv_assign_result *r);

/** Whether a stored result is an assign result (by its magic). */
int srv_result_is_assign(const void *buf, size_t len);

/** Packs n strings into the ids block (malloc'd). */
hl_status srv_ids_pack(char *const *ids, size_t n, char **out, size_t *bytes);

#endif
