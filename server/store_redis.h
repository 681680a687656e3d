/*
 * store_redis.h - what the Redis store (store_redis.c) offers beyond the store.h interface.
 *
 * srv_store_redis_new (declared in store.h) validates the URL and parameters and returns a
 * store without connecting: connections are opened lazily, on the first call that needs one,
 * so the daemon can start before Redis does and report it through ping() (readyz). A call
 * that cannot reach Redis returns HL_UNAVAILABLE; the reason (connection refused, timed out,
 * closed by the server, an error reply) is kept and can be read back here for logs.
 *
 * Thread-safety: srv_store_redis_last_error may be called from any thread.
 */
#ifndef SRV_STORE_REDIS_H
#define SRV_STORE_REDIS_H

#include "store.h"

#include <stddef.h>

/** Bytes per chunk of a result or input blob (64 MiB); the last chunk may be shorter. */
#define SRV_REDIS_CHUNK_BYTES ((size_t)64 << 20)

/** Largest TTL accepted, in seconds (about 68 years); larger TTLs are HL_RANGE. */
#define SRV_REDIS_MAX_TTL ((uint64_t)2147483647)

/**
 * Copies the reason of the most recent failed call of store `s` (a NUL-terminated line, ""
 * when nothing failed yet) into `buf` of `n` bytes, truncating. `s` must come from
 * srv_store_redis_new; for any other store the result is "".
 */
void srv_store_redis_last_error(srv_store *s, char *buf, size_t n);

#endif
