/*
 * store.h - where job records, results, inputs, the cache and idempotency keys live.
 *
 * One interface, two backends: the embedded in-memory store (store_mem.c, the default; bounded
 * by bytes, with TTLs and LRU eviction) and Redis (store_redis.c, hiredis; layout in
 * ../shared/docs/api.md "Redis layout"). The server never touches a backend directly.
 *
 * Records
 *   job      a flat map of string fields (the job object: status, timestamps, progress, ...).
 *            Created once (NX), read whole, updated field by field. An update may carry a
 *            status precondition (compare-and-set), which is how state transitions are made
 *            safe across threads and replicas.
 *   result   the bytes of a finished job's result (any size; Redis stores chunks of <= 64 MiB
 *            plus a meta hash with the count, sizes and a checksum, and verifies on read).
 *   input    the request's embeddings for a queued job (same chunking), deleted when it ends.
 *   cache    cache key (hex hash of the work) -> job id of a stored result.
 *   idem     Idempotency-Key -> "job id + body hash", set only if absent (SET NX EX).
 *   owner    an API key's name -> the ids of its jobs that may still be queued or running
 *            (per-key job limits; pruned by looking at the jobs' records, never decremented).
 *   state    a clustering's state for incremental assignment, keyed by the cluster job's
 *            id, versioned: version 1 is written when the cluster job succeeds, each assign
 *            writes the next one with a compare-and-set on the version. A version is a chain:
 *            a base (a whole hl/statefile.h file) and the deltas (hl_statefile_delta_encode)
 *            of the versions after it, at most SRV_STATE_MAX_DELTAS. state_put writes a new
 *            base (the chain restarts there), state_append adds one delta. Readers always get
 *            one whole version (state_get); the old one stays readable until the new one is
 *            completely written, and a TTL or a delete covers the base and every delta.
 *   lock     a key held by one owner token for a bounded time (per-clustering mutual
 *            exclusion of assigns, across threads and replicas).
 * TTLs are in seconds; 0 means no expiry.
 *
 * Errors: HL_NOTFOUND for a missing or expired key, HL_BUSY when a precondition fails (NX or
 * status CAS), HL_UNAVAILABLE when the backend cannot be reached or timed out (every Redis
 * call has a timeout; an unreachable Redis never crashes the server), HL_NOMEM when the
 * embedded store cannot make room, HL_CHECKSUM when stored bytes fail verification.
 *
 * Ownership: values returned through `void **` / `char **` are malloc'd copies the caller
 * frees. Keys and fields are borrowed.
 * Thread-safety: every operation is safe to call from any thread (the embedded store takes
 * its own lock; the Redis store checks a connection out of a small pool per call).
 */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct srv_store srv_store;

/** One field of a job record. */
typedef struct srv_field {
    const char *name;
    const char *value;
} srv_field;

/** A job record read back: n fields, names and values malloc'd; free with srv_record_free. */
typedef struct srv_record {
    size_t n;
    char **names;
    char **values;
} srv_record;

/** The deltas a state chain may hold; state_append answers HL_RANGE past it. */
#define SRV_STATE_MAX_DELTAS 64

/** What state_head reads of a clustering's state: a few numbers, never the bytes. */
typedef struct srv_state_head {
    uint64_t version;      /* the current version */
    uint64_t tag;          /* identifies the write that made it (unique per write) */
    uint64_t base_version; /* the version of the chain's base (version - n_deltas) */
    size_t n_deltas;       /* deltas after the base */
    size_t base_bytes;     /* bytes of the base */
    size_t delta_bytes;    /* bytes of all the deltas */
} srv_state_head;

/** One whole version of a state (state_get): its head, the base and the deltas in order,
 * all malloc'd; free with srv_state_chain_free. */
typedef struct srv_state_chain {
    srv_state_head head;
    void *base;
    size_t base_len;
    void **deltas; /* head.n_deltas entries */
    size_t *delta_lens;
} srv_state_chain;

/** Frees the bytes of a chain and zeroes it. */
void srv_state_chain_free(srv_state_chain *c);

/** Returns the value of a field or NULL. */
const char *srv_record_get(const srv_record *r, const char *name);

/** Frees the arrays and strings of a record and zeroes it. */
void srv_record_free(srv_record *r);

typedef struct srv_store_ops {
    const char *name; /* "memory" or "redis" */
    /* Job records. job_create fails with HL_BUSY if the id exists. */
    hl_status (*job_create)(srv_store *s, const char *id, const srv_field *f, size_t n);
    hl_status (*job_get)(srv_store *s, const char *id, srv_record *out);
    /* Sets fields; when `expect_status` is non-NULL, only if the current "status" field is
     * one of the comma-separated values in it (HL_BUSY otherwise). ttl > 0 sets the record's
     * expiry (used once a job is terminal). */
    hl_status (*job_update)(srv_store *s, const char *id, const srv_field *f, size_t n,
                            const char *expect_status, uint64_t ttl);
    hl_status (*job_delete)(srv_store *s, const char *id);
    /* Adds `delta` to the integer field `field` (absent = 0) when the status precondition
     * holds (as for job_update) and stores the new value in *value. HL_NOTFOUND when the record
     * is missing, HL_BUSY when the precondition fails, HL_FORMAT when the field is not an
     * integer. Atomic: concurrent increments from any thread or replica all count. */
    hl_status (*job_incr)(srv_store *s, const char *id, const char *field, long long delta,
                          const char *expect_status, long long *value);
    /* Result and input blobs. */
    hl_status (*result_put)(srv_store *s, const char *id, const void *data, size_t len,
                            uint64_t ttl);
    hl_status (*result_get)(srv_store *s, const char *id, void **data, size_t *len);
    hl_status (*result_delete)(srv_store *s, const char *id);
    hl_status (*input_put)(srv_store *s, const char *id, const void *data, size_t len,
                           uint64_t ttl);
    hl_status (*input_get)(srv_store *s, const char *id, void **data, size_t *len);
    hl_status (*input_delete)(srv_store *s, const char *id);
    /* Cache and idempotency. */
    hl_status (*cache_get)(srv_store *s, const char *key, char **job_id);
    hl_status (*cache_put)(srv_store *s, const char *key, const char *job_id, uint64_t ttl);
    /* Stores `value` under `key` only if absent (HL_OK). If present, returns HL_BUSY and
     * the existing value in *existing (malloc'd). */
    hl_status (*idem_claim)(srv_store *s, const char *key, const char *value, uint64_t ttl,
                            char **existing);
    /* Replaces the value of `key` only if it is exactly `expected` (HL_BUSY otherwise,
     * HL_NOTFOUND when absent), with a new TTL: how an admission takes over the key of one
     * that died before creating its job. */
    hl_status (*idem_replace)(srv_store *s, const char *key, const char *expected,
                              const char *value, uint64_t ttl);
    /* Per-owner job limits. owner_admit adds job_id to `owner`'s set unless `limit` of the
     * jobs in it are still active (HL_BUSY then, nothing added). A member is dropped first when
     * its record is terminal, or missing more than `grace` seconds after it was added (an
     * admission that never created its record). Adding a member twice is HL_OK. owner_release
     * removes one (HL_NOTFOUND when absent). Atomic across threads and replicas. */
    hl_status (*owner_admit)(srv_store *s, const char *owner, const char *job_id, unsigned limit,
                             uint64_t grace);
    hl_status (*owner_release)(srv_store *s, const char *owner, const char *job_id);
    /* Clustering states. state_put writes the base `data` as version `version` (>= 1) of
     * `id` only if the current version is version - 1 (0 = no state): HL_BUSY otherwise.
     * state_append writes the delta `data` as version `version` (>= 2) on top of the current
     * chain, only if the current version is version - 1 (HL_BUSY otherwise, also without a
     * state) and the chain has fewer than SRV_STATE_MAX_DELTAS deltas (HL_RANGE). Both are
     * atomic (the new version appears whole or not at all), give the TTL to the whole chain
     * and store the new version's tag in *tag (may be NULL). state_head reads the current
     * version's head (one small request); state_get reads the whole current version (its
     * chain). Both answer HL_NOTFOUND without a state. state_delete removes every version. */
    hl_status (*state_put)(srv_store *s, const char *id, const void *data, size_t len,
                           uint64_t version, uint64_t ttl, uint64_t *tag);
    hl_status (*state_append)(srv_store *s, const char *id, const void *data, size_t len,
                              uint64_t version, uint64_t ttl, uint64_t *tag);
    hl_status (*state_head)(srv_store *s, const char *id, srv_state_head *out);
    hl_status (*state_get)(srv_store *s, const char *id, srv_state_chain *out);
    hl_status (*state_delete)(srv_store *s, const char *id);
    /* Makes the current base of `src` version 1 of `dst` without the bytes passing through
     * the caller: only if src's current version is exactly `src_version` and has no deltas
     * (HL_BUSY otherwise: the source changed; HL_NOTFOUND without a state) and dst has no
     * state (HL_BUSY). Atomic (dst's version 1 appears whole or not at all), with `ttl` for
     * dst's chain and dst's new tag in *tag (may be NULL). The two states are independent
     * from then on: writing, deleting or expiring one never changes the other. The embedded
     * store shares the immutable base blob (reference counted, no copy); Redis copies it
     * server-side (COPY, Redis >= 6.2). */
    hl_status (*state_clone)(srv_store *s, const char *src, const char *dst, uint64_t src_version,
                             uint64_t ttl, uint64_t *tag);
    /* Locks. lock takes `key` for `token` for ttl_ms milliseconds (HL_OK; taking it again
     * with the same token renews it) unless another token holds it (HL_BUSY). unlock releases
     * it only when `token` holds it (HL_NOTFOUND otherwise, e.g. after it expired). */
    hl_status (*lock)(srv_store *s, const char *key, const char *token, uint64_t ttl_ms);
    hl_status (*unlock)(srv_store *s, const char *key, const char *token);
    /* Reachability (readyz). */
    hl_status (*ping)(srv_store *s);
    void (*destroy)(srv_store *s);
} srv_store_ops;

struct srv_store {
    const srv_store_ops *ops;
};

/** Creates the embedded store, capped at `max_bytes` of keys and values (LRU eviction of
 * terminal jobs' results first; never a queued job's input). */
hl_status srv_store_mem_new(size_t max_bytes, srv_store **out);

/** Creates the Redis store for a URL redis://host:port/db (host must be a literal address or
 * localhost), with per-call timeouts in milliseconds and a pool of `pool_size` connections. */
hl_status srv_store_redis_new(const char *url, int timeout_ms, int pool_size, srv_store **out,
                              hl_error *err);

#endif
