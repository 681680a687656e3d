/*
 * store_redis_int.h - private to the Redis store: store_redis.c (URL, jobs, cache, idem,
 * ping), store_redis_conn.c (connection pool, calls, errors), store_redis_blob.c
 * (chunked results and inputs) and store_redis_state.c (clustering states, locks). See
 * store_redis.c for the design and key layout, and store_redis_conn.c for the lock order.
 *
 * A call is op_begin (checks a connection out), any number of op_cmd/op_int, op_end (gives
 * it back and passes the status through). Failures are recorded with srv__redis_fail.
 */
#ifndef SRV_STORE_REDIS_INT_H
#define SRV_STORE_REDIS_INT_H

#include "store_redis.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_REDIS_MAX_POOL       256
#define SRV_REDIS_MAX_TIMEOUT_MS 600000

typedef struct rs_store {
    srv_store base;
    char host[64]; /* literal address (no brackets) or "localhost" */
    int port;
    int db;
    int timeout_ms;
    int pool_size;
    uint64_t gen_seed;             /* makes blob write nonces unique across processes */
    atomic_uint_fast64_t gen_next; /* per-write counter for blob write nonces */
    pthread_mutex_t lock;          /* guards idle, n_idle, n_open, last_error */
    pthread_cond_t freed;          /* signalled when a connection or a slot is given back */
    redisContext **idle;           /* pool_size entries */
    int n_idle;
    int n_open; /* idle + checked out + being opened */
    char last_error[192];
} rs_store;

/* One call's state: the checked-out connection and the caller's signal mask. */
typedef struct rs_op {
    rs_store *s;
    redisContext *c;
    int broken;
    int sigpipe_was_blocked;
    sigset_t oldmask;
} rs_op;

/** Records the reason of a failure for srv_store_redis_last_error and returns `st`. */
hl_status srv__redis_fail(rs_store *s, hl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** Starts a call: blocks SIGPIPE in this thread and checks out a live connection (opening
 * one if needed, waiting at most timeout_ms for a free one). On failure nothing is held. */
hl_status srv__redis_op_begin(rs_store *s, rs_op *op);

/** Ends a call started by op_begin: gives the connection back (frees it if it failed),
 * restores the signal mask and returns `st`. */
hl_status srv__redis_op_end(rs_op *op, hl_status st);

/** Runs one command (binary-safe; `lens` may be NULL for C strings). On HL_OK *out is a
 * reply that is not an error reply; the caller frees it with freeReplyObject. */
hl_status srv__redis_op_cmd(rs_op *op, redisReply **out, int argc, const char **argv,
                            const size_t *lens);

/** As srv__redis_op_cmd, and copies the text of an error reply into errbuf ("" otherwise). */
hl_status srv__redis_op_cmd_err(rs_op *op, redisReply **out, int argc, const char **argv,
                                const size_t *lens, char *errbuf, size_t errlen);

/** Runs one command whose reply must be an integer, stored in *value. */
hl_status srv__redis_op_int(rs_op *op, long long *value, int argc, const char **argv,
                            const size_t *lens);

/** Records an unexpected reply shape for command `what`; returns HL_INTERNAL. */
hl_status srv__redis_reply_fail(rs_op *op, const char *what);

/** prefix + id, plus ":" + suffix when suffix is non-NULL; malloc'd, NULL on OOM. */
char *srv__redis_key(const char *prefix, const char *id, const char *suffix);

/** prefix + id + ":" + the decimal chunk number; malloc'd, NULL on OOM. */
char *srv__redis_chunk_key(const char *prefix, const char *id, uint64_t i);

/** Blob operations (results: prefix "hl:res:", inputs: "hl:in:"), as in store.h. */
hl_status srv__redis_blob_put(rs_store *s, const char *prefix, const char *id, const void *data,
                              size_t len, uint64_t ttl);
hl_status srv__redis_blob_get(rs_store *s, const char *prefix, const char *id, void **data,
                              size_t *len);
hl_status srv__redis_blob_delete(rs_store *s, const char *prefix, const char *id);

/** Clustering states and locks (store_redis_state.c), as in store.h. */
hl_status srv__redis_state_put(srv_store *base, const char *id, const void *data, size_t len,
                               uint64_t version, uint64_t ttl, uint64_t *tag);
hl_status srv__redis_state_append(srv_store *base, const char *id, const void *data, size_t len,
                                  uint64_t version, uint64_t ttl, uint64_t *tag);
hl_status srv__redis_state_head(srv_store *base, const char *id, srv_state_head *out);
hl_status srv__redis_state_get(srv_store *base, const char *id, srv_state_chain *out);
hl_status srv__redis_state_delete(srv_store *base, const char *id);
hl_status srv__redis_state_clone(srv_store *base, const char *src, const char *dst,
                                 uint64_t src_version, uint64_t ttl, uint64_t *tag);
hl_status srv__redis_lock(srv_store *base, const char *key, const char *token, uint64_t ttl_ms);
hl_status srv__redis_unlock(srv_store *base, const char *key, const char *token);

/** Ids and keys must be non-empty C strings. */
static inline int srv__redis_name_ok(const char *s)
{
    return s != NULL && s[0] != '\0';
}

#endif
