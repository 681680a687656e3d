/*
 * hl/json_codec.h - the HTTP API's request bodies and query strings, decoded into plain
 * structs (jansson trees never escape proto), and the result encoders.
 *
 * Request body (application/json), see ../shared/docs/api.md:
 *   {"embeddings": [[...], ...], "ids": ["a", ...], "labels": [3, ...], "model": "name",
 *    "params": {"k": 10, "tau": 0.8, "max_levels": 10, "min_cluster_size": 1,
 *               "knn": "auto", "early_stop": true, "new_clusters": "open"}}
 * Only "embeddings" is required. The embeddings array is scanned directly by a fast number
 * parser (it is most of the body) while jansson parses the rest, each other top-level value on
 * its own (with JSON_REJECT_DUPLICATES), so decoding runs at >= 100 MB/s with peak memory
 * <= 3x the float payload besides the body. Unknown keys (top level or in params) are errors.
 *
 * Errors fill hl_error with a status and a `field` that the server maps to a problem type.
 * Positions: "byte" is err->offset (has_offset), "(row, col)" is err->offset and err->col
 * (has_offset and has_col).
 *   HL_FORMAT  "body"        malformed JSON, not an object, trailing data (byte)  -> malformed-body
 *   HL_FORMAT  "embeddings"  missing, or not an array (byte when present)         -> malformed-body
 *   HL_FORMAT  <key>         a top-level key given twice (byte)                   -> malformed-body
 *   HL_RANGE   "embeddings"  ragged or empty row, an element that is not a number: a
 *                            string, nested array, object, true/false/null (row, col)
 *                                                                          -> invalid-embeddings
 *   HL_NUMERIC "embeddings"  NaN/Infinity literals (NaN, Infinity, -Infinity, nan, inf in any
 *                            case; not JSON, but clients send them) and values that overflow
 *                            float32 (row, col)                               -> non-finite-value
 *   HL_RANGE   "ids"         not an array of strings of <= 256 bytes (element: (i, 0)), or
 *                            its length differs from N (byte of the array)  -> invalid-embeddings
 *   HL_RANGE   "labels"      not an array of int32 integers (element: (i, 0)), or its length
 *                            differs from N (byte of the array)             -> invalid-embeddings
 *   HL_INVAL   "n"           N < min_points (no position), or more than max_points rows:
 *                            detected while scanning, position (max_points, 0) -> size-out-of-range
 *   HL_INVAL   "dim"         row 0 longer than max_dim, position (0, max_dim)  -> size-out-of-range
 *   HL_INVAL   "model"       not a string matching [A-Za-z0-9_.-]{1,64} (byte) -> invalid-parameter
 *   HL_INVAL   "params", "params/<name>"  not an object, unknown parameter, wrong type or range
 *                            (byte of the params object)                     -> invalid-parameter
 *   HL_INVAL   <key>         an unknown top-level key (byte of the key)      -> invalid-parameter
 *   HL_NOMEM                 out of memory
 * Errors are reported in the order a single left-to-right pass meets them (a NaN in row 3
 * wins over a syntax error in row 9); the missing "embeddings", N < min_points and the
 * ids/labels length checks come after the whole body has been read.
 *
 * Number parsing: integers, decimals and exponents in JSON syntax; every value becomes the
 * float32 that strtof() gives for its text (correctly rounded, -0 kept, denormals included).
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
    char knn[16]; /**< "auto" (default), "exact", "ivf" or "hnsw" */
    int has_knn;
    char new_clusters[16]; /**< assign only: "open" (default) or "unassigned" */
    int has_new_clusters;
} hl_request_params;

/** Limits of the HTTP API (api.md: --max-points, --max-dim), used when `lim` is NULL. */
#define HL_REQUEST_MAX_POINTS_DEFAULT 5000000
#define HL_REQUEST_MAX_DIM_DEFAULT    4096

/** The longest query string hl_query_decode() accepts, in bytes. */
#define HL_QUERY_MAX_BYTES 4096

/** Limits checked while decoding. */
typedef struct hl_request_limits {
    size_t max_points; /**< N <= max_points */
    size_t max_dim;    /**< D <= max_dim */
    size_t min_points; /**< N >= min_points (2 for clustering) */
} hl_request_limits;

typedef struct hl_cluster_request {
    hl_fmatrix x;    /**< N x D embeddings (owned) */
    char **ids;      /**< N strings or NULL; one block with the strings (free only via
                          hl_cluster_request_free) */
    int32_t *labels; /**< N true labels or NULL */
    char model[65];  /**< "" when absent */
    hl_request_params params;
} hl_cluster_request;

/**
 * Decodes a JSON request body of `len` bytes (need not be NUL-terminated; body may be NULL
 * when len is 0). `lim` may be NULL for the API defaults (HL_REQUEST_MAX_POINTS_DEFAULT,
 * HL_REQUEST_MAX_DIM_DEFAULT, min_points 2). On success out->x has N rows of D floats and owns
 * them; params carry has_ flags for what the body set. On error *out is left empty (nothing
 * to free, hl_cluster_request_free is harmless) and err says why (see the table above).
 */
hl_status hl_json_request_decode(const void *body, size_t len, const hl_request_limits *lim,
                                 hl_cluster_request *out, hl_error *err);

/**
 * Parses a URL query string ("model=x&k=10&tau=0.8&dim=128", an optional leading '?') into
 * params (zeroed first, has_ flags set for what the query sets), the model name ("" when
 * absent) and, when `dim` is non-NULL, the dim parameter (0 when absent). Keys and values are
 * percent-decoded ('+' is a space); values are checked as in the JSON body (k 2..1024, tau
 * 0..1, max_levels 1..64, min_cluster_size >= 1, knn auto|exact|ivf|hnsw, early_stop
 * true|false|1|0, new_clusters open|unassigned; model [A-Za-z0-9_.-]{1,64}; dim 1..2^31-1, to
 * be checked against max_dim by the caller). `query` may be NULL (nothing set). Empty pairs
 * ("a=1&&b=2") are skipped. Errors, all HL_INVAL with err->offset the byte of the pair:
 * unknown keys (the result options format, levels, offset, limit among them) and bad values
 * with field "params/<name>" (or "model", "dim"; dim when `dim` is NULL); a key given twice,
 * likewise; bad percent-encoding (or %00) and a query longer than HL_QUERY_MAX_BYTES
 * with field "query". On error the outputs are zeroed again.
 */
hl_status hl_query_decode(const char *query, hl_request_params *params, char model[65], size_t *dim,
                          hl_error *err);

/** Frees everything the request owns and zeroes it. */
void hl_cluster_request_free(hl_cluster_request *r);

#ifdef __cplusplus
}
#endif

#endif /* HL_JSON_CODEC_H */
