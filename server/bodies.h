/*
 * bodies.h - a bounded pool of large request-body buffers.
 *
 * A 100k x 128 .npy body is 51 MB. Written into fresh memory, every 4 KiB page of it costs
 * a page fault (allocate, zero, charge, map): perf showed that as about a third of the
 * receiving thread's time, the largest single cost of an upload. Buffers of finished jobs
 * and requests are kept here instead of being returned to the system, and the next body of
 * a similar size is read into one whose pages are already mapped.
 *
 * Buffers under SRV_BODIES_MIN bytes are plain malloc/free. A request for len bytes takes
 * the smallest kept buffer of capacity in [len, 2 len] (so a small body never pins a huge
 * buffer), else mallocs len bytes. A returned buffer is kept while the pool holds at most
 * max_bytes (and SRV_BODIES_SLOTS buffers), else freed; max_bytes 0 keeps nothing. The
 * caller tracks each buffer's capacity (srv_body.cap, srv_job.body_cap) and returns it with
 * it. Thread-safety: every function, any thread (one mutex; no system call under it).
 */
#ifndef SRV_BODIES_H
#define SRV_BODIES_H

#include <stddef.h>

#define SRV_BODIES_MIN   ((size_t)1 << 20)
#define SRV_BODIES_SLOTS 16

typedef struct srv_bodies srv_bodies;

/** A pool keeping up to max_bytes of buffers; NULL when out of memory. */
srv_bodies *srv_bodies_new(size_t max_bytes);
/** Frees the kept buffers and the pool. NULL is a no-op. */
void srv_bodies_free(srv_bodies *b);

/** A buffer of at least len bytes, its capacity in *cap; NULL (and *cap 0) when out of
 * memory. NULL `b` behaves as a pool that keeps nothing. */
char *srv_bodies_get(srv_bodies *b, size_t len, size_t *cap);
/** Gives back a buffer of capacity `cap` from srv_bodies_get (NULL p: no-op). */
void srv_bodies_put(srv_bodies *b, char *p, size_t cap);

typedef struct srv_bodies_stats {
    size_t buffers, bytes;     /**< kept now */
    unsigned long long reused; /**< large buffers handed out from the pool */
    unsigned long long fresh;  /**< large buffers that had to be allocated */
} srv_bodies_stats;

/** The pool's figures (for tests and /metrics); all zero for NULL `b`. */
void srv_bodies_get_stats(srv_bodies *b, srv_bodies_stats *out);

#endif /* SRV_BODIES_H */
