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

/* ---- the job stream (store_redis_stream.c) ----
 *
 * Jobs to run are entries of the stream hl:jobs (one field: id = the job id), read through the
 * consumer group "workers" (api.md "Redis layout"). An entry is pending from the moment a
 * replica (a consumer) reads it until that replica acknowledges it; pending entries idle
 * longer than the claim timeout are taken over by another replica with XAUTOCLAIM. A group
 * that vanished (Redis restarted without persistence) is reported as HL_NOTFOUND by every
 * call that needs it; srv_redis_stream_setup creates it again.
 */

#define SRV_STREAM_KEY   "hl:jobs"
#define SRV_STREAM_GROUP "workers"

/** One entry handed to this replica: the stream entry id and the job id it carries. */
typedef struct srv_stream_msg {
    char entry[48];
    char job[40];
} srv_stream_msg;

/** Creates the group (XGROUP CREATE hl:jobs workers 0 MKSTREAM); an existing group is HL_OK. */
hl_status srv_redis_stream_setup(srv_store *s);

/** Appends a job (XADD hl:jobs * id <job_id>). */
hl_status srv_redis_stream_add(srv_store *s, const char *job_id);

/** Entries in the stream (XLEN): queued or running jobs, as entries are deleted once acked. */
hl_status srv_redis_stream_length(srv_store *s, long long *n);

/** Reads up to `max` new entries for `consumer`, waiting at most block_ms (which must stay
 * under the store's timeout) when there are none: XREADGROUP GROUP workers <consumer> BLOCK
 * <block_ms> COUNT <max> STREAMS hl:jobs >. *n = 0 when the wait ended empty. */
hl_status srv_redis_stream_read(srv_store *s, const char *consumer, size_t max, int block_ms,
                                srv_stream_msg *out, size_t *n);

/** Takes over up to `max` entries idle for at least min_idle_ms (XAUTOCLAIM hl:jobs workers
 * <consumer> <min_idle_ms> 0-0 COUNT <max>, following the cursor a bounded number of times).
 * Entries deleted from the stream meanwhile are dropped from the pending list by Redis. */
hl_status srv_redis_stream_autoclaim(srv_store *s, const char *consumer, long long min_idle_ms,
                                     size_t max, srv_stream_msg *out, size_t *n);

/** Resets the idle time of entries that are still pending for `consumer` (XCLAIM ... 0 ...
 * JUSTID, one atomic script that first checks the owner with XPENDING), so a long job is not
 * taken over. lost[i] is set to 1 when entry i is no longer ours (another replica took it, or
 * it was acknowledged), else 0. */
hl_status srv_redis_stream_touch(srv_store *s, const char *consumer, const srv_stream_msg *m,
                                 size_t n, int *lost);

/** Hands an entry back without acknowledging it: if it is still ours, its idle time is set to
 * idle_ms (XCLAIM ... IDLE idle_ms JUSTID), so the next XAUTOCLAIM of any replica takes it. */
hl_status srv_redis_stream_release(srv_store *s, const char *consumer, const char *entry,
                                   long long idle_ms);

/** Acknowledges and deletes an entry (XACK then XDEL, one script). */
hl_status srv_redis_stream_ack(srv_store *s, const char *entry);

#endif
