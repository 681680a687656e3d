/*
 * http_status.h - the one table from problems and hl_status codes to HTTP statuses and RFC
 * 9457 problem types (/problems/<suffix>). Handlers name a problem; http_status.c knows
 * its status code and title. Thread-safety: read-only tables.
 */
#ifndef SRV_HTTP_STATUS_H
#define SRV_HTTP_STATUS_H

#include "hl/status.h"

/* X-macro: id, HTTP status, type suffix, title. */
#define SRV_PROBLEM_MAP(XX)                                                                        \
    XX(MALFORMED_BODY, 400, "malformed-body", "The body is not valid JSON of the expected shape")  \
    XX(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported-media-type", "Unsupported Content-Type")          \
    XX(INVALID_EMBEDDINGS, 422, "invalid-embeddings", "The embeddings are not a valid matrix")     \
    XX(NON_FINITE_VALUE, 422, "non-finite-value", "The embeddings contain NaN or Inf")             \
    XX(INVALID_NPY, 400, "invalid-npy", "The body is not a valid .npy float matrix")               \
    XX(INVALID_RAW, 400, "invalid-raw", "The body is not valid raw float32 rows")                  \
    XX(SIZE_TOO_SMALL, 422, "size-out-of-range", "Too few points")                                 \
    XX(SIZE_TOO_LARGE, 413, "size-out-of-range", "Too many points or dimensions")                  \
    XX(BODY_TOO_LARGE, 413, "body-too-large", "The body is larger than the server accepts")        \
    XX(INVALID_PARAMETER, 422, "invalid-parameter", "A parameter has a bad type or value")         \
    XX(UNKNOWN_MODEL_SUBMIT, 422, "unknown-model", "No model has this name")                       \
    XX(UNKNOWN_MODEL, 404, "unknown-model", "No model has this name")                              \
    XX(DIMENSION_MISMATCH, 422, "dimension-mismatch", "The model expects another dimension")       \
    XX(JOB_NOT_FOUND, 404, "job-not-found", "No such job (unknown, deleted or expired)")           \
    XX(JOB_NOT_FINISHED, 409, "job-not-finished", "The job has not finished")                      \
    XX(JOB_NO_RESULT, 409, "job-has-no-result", "The job ended without a result")                  \
    XX(CLUSTERING_NOT_FOUND, 404, "clustering-not-found",                                          \
       "No clustering state with this id (unknown, deleted, expired or not saved)")                \
    XX(IDEMPOTENCY_KEY_REUSED, 422, "idempotency-key-reused",                                      \
       "The Idempotency-Key was used with another body")                                           \
    XX(IDEMPOTENCY_KEY_IN_PROGRESS, 409, "idempotency-key-in-progress",                            \
       "The first request with this Idempotency-Key is still being admitted")                      \
    XX(QUEUE_FULL, 429, "queue-full", "The job queue is full")                                     \
    XX(RATE_LIMITED, 429, "rate-limited", "Too many requests for this API key")                    \
    XX(UNAUTHORIZED, 401, "unauthorized", "A valid API key is required")                           \
    XX(UNAVAILABLE, 503, "unavailable", "The service cannot take this request now")                \
    XX(NOT_FOUND, 404, "not-found", "No such route")                                               \
    XX(METHOD_NOT_ALLOWED, 405, "method-not-allowed", "The route does not allow this method")      \
    XX(BAD_REQUEST, 400, "bad-request", "The request is malformed")                                \
    XX(TIMEOUT, 504, "timeout", "The operation timed out")                                         \
    XX(INTERNAL, 500, "internal-error", "Internal error")

typedef enum srv_problem {
#define SRV_PROBLEM_ENUM_(id, st, suffix, title) SRV_P_##id,
    SRV_PROBLEM_MAP(SRV_PROBLEM_ENUM_)
#undef SRV_PROBLEM_ENUM_
        SRV_P_COUNT_
} srv_problem;

int srv_problem_status(srv_problem p);
/** The type suffix ("queue-full"); the type URI is "/problems/" + suffix. */
const char *srv_problem_suffix(srv_problem p);
const char *srv_problem_title(srv_problem p);

/**
 * The generic mapping for a status that no handler mapped more precisely (architecture.md):
 * INVAL/FORMAT 400, RANGE/VERSION/NUMERIC 422, NOTFOUND 404, BUSY 429, NOMEM/UNAVAILABLE 503,
 * TIMEOUT 504, anything else 500.
 */
srv_problem srv_problem_for_status(hl_status st);

/** Reason phrase for an HTTP status ("Not Found"), "" if unknown. */
const char *srv_http_reason(int status);

#endif
