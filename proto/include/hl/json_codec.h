/*
 * hl/json_codec.h - the HTTP API's request bodies and query strings, decoded into plain
 * structs (jansson trees never escape proto), and the result encoders.
 *
 * Request body (application/json), see ../shared/docs/api.md:
 *   {"embeddings": [[...], ...], "ids": ["a", ...], "labels": [3, ...], "model": "name",
 *    "params": {"k": 10, "tau": 0.8, "max_levels": 10, "min_cluster_size": 1,
 *               "knn": "auto", "early_stop": true, "new_clusters": "open"}}
 * Only "embeddings" is required. The embeddings array is scanned directly by a fast number
 * parser (it is most of the body) while jansson parses the rest, so decoding runs at
 * >= 100 MB/s with peak memory <= 3x the float payload. Numbers may be integers or decimals
 * with exponents; NaN/Infinity literals and overflowing values are non-finite.
 *
 * Errors fill hl_error with a status and a `field` that the server maps to a problem type:
 *   HL_FORMAT   field ""/"body"        malformed JSON, not an object      -> malformed-body 400
 *   HL_FORMAT   field "embeddings"     missing or not an array            -> malformed-body 400
 *   HL_RANGE    field "embeddings"     ragged rows, non-numbers, empty rows -> invalid-embeddings
 * 422 HL_NUMERIC  field "embeddings"     NaN/Inf (err row/col)              -> non-finite-value 422
 *   HL_RANGE    field "ids"/"labels"   wrong length or type               -> invalid-embeddings 422
 *   HL_INVAL    field "n"/"dim"        too few/too many points, dim too large -> size-out-of-range
 *   HL_INVAL    field "params/<name>" or "model" or an unknown key        -> invalid-parameter 422
 * `offset` carries the byte offset of the problem in the body where known, or (row, col).
 *
 * Thread-safety: reentrant. Ownership: hl_cluster_request owns everything it points to;
 * free it with hl_cluster_request_free().
 */
#ifndef HL_JSON_CODEC_H
#define HL_JSON_CODEC_H

#include "hl/npy.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Request parameters; each has a `has_` flag so the server can apply model defaults. */
typedef struct hl_request_params {
    int k, has_k;
    float tau;
    int has_tau;
    int max_levels, has_max_levels;
    int min_cluster_size, has_min_cluster_size;
    int early_stop, has_early_stop;
    char knn[16]; /**< "auto" (default), "exact", or another method name */
    int has_knn;
    char new_clusters[16]; /**< assign only: "open" (default) or "unassigned" */
    int has_new_clusters;
} hl_request_params;

/** Limits checked while decoding. */
typedef struct hl_request_limits {
    size_t max_points; /**< N <= max_points */
    size_t max_dim;    /**< D <= max_dim */
    size_t min_points; /**< N >= min_points (2 for clustering) */
} hl_request_limits;

typedef struct hl_cluster_request {
    hl_fmatrix x;    /**< N x D embeddings (owned) */
    char **ids;      /**< N strings or NULL */
    int32_t *labels; /**< N true labels or NULL */
    char model[65];  /**< "" when absent */
    hl_request_params params;
} hl_cluster_request;

/** Decodes a JSON request body. On error *out is left empty (nothing to free). */
hl_status hl_json_request_decode(const void *body, size_t len, const hl_request_limits *lim,
                                 hl_cluster_request *out, hl_error *err);

/**
 * Parses a URL query string ("model=x&k=10&tau=0.8&dim=128", percent-decoded) into params,
 * the model name and, when `dim` is non-NULL, the dim parameter (0 when absent). Unknown
 * keys and bad values are HL_INVAL with field "params/<name>" (or "model", "dim").
 */
hl_status hl_query_decode(const char *query, hl_request_params *params, char model[65], size_t *dim,
                          hl_error *err);

/** Frees everything the request owns and zeroes it. */
void hl_cluster_request_free(hl_cluster_request *r);

#ifdef __cplusplus
}
#endif

#endif /* HL_JSON_CODEC_H */
