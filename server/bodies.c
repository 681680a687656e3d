/* bodies.c - a bounded pool of large request-body buffers; see bodies.h. */
#define _DEFAULT_SOURCE /* madvise, MADV_POPULATE_WRITE */
#include "bodies.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

typedef struct slot {
    char *p;
    size_t cap;
} slot;

struct srv_bodies {
    uv_mutex_t mu;
    size_t max_bytes, bytes, n;
    unsigned long long reused, fresh;
    slot s[SRV_BODIES_SLOTS];
};

/* Maps the pages of a fresh buffer in one call instead of one fault per page as the body
 * streams in (advice: without MADV_POPULATE_WRITE, Linux < 5.14, the faults stay lazy). */
static void populate(char *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) / page * page, e = ((uintptr_t)p + len) / page * page;
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)len;
#endif
}

srv_bodies *srv_bodies_new(size_t max_bytes)
{
    srv_bodies *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (uv_mutex_init(&b->mu) != 0) {
        free(b);
        return NULL;
    }
    b->max_bytes = max_bytes;
    return b;
}

void srv_bodies_free(srv_bodies *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->s[i].p);
    uv_mutex_destroy(&b->mu);
    free(b);
}

char *srv_bodies_get(srv_bodies *b, size_t len, size_t *cap)
{
    char *p = NULL;
    if (b != NULL && len >= SRV_BODIES_MIN) {
        uv_mutex_lock(&b->mu);
        size_t best = b->n;
        for (size_t i = 0; i < b->n; i++)
            if (b->s[i].cap >= len && b->s[i].cap / 2 <= len &&
                (best == b->n || b->s[i].cap < b->s[best].cap))
                best = i;
        if (best < b->n) {
            p = b->s[best].p;
            *cap = b->s[best].cap;
            b->bytes -= *cap;
            b->s[best] = b->s[--b->n];
            b->reused++;
        } else {
            b->fresh++;
        }
        uv_mutex_unlock(&b->mu);
        if (p != NULL)
            return p;
    }
    p = malloc(len > 0 ? len : 1);
    *cap = p != NULL ? len : 0;
    if (p != NULL && len >= SRV_BODIES_MIN)
        populate(p, len);
    return p;
}

void srv_bodies_put(srv_bodies *b, char *p, size_t cap)
{
    if (p == NULL)
        return;
    if (b != NULL && cap >= SRV_BODIES_MIN) {
        uv_mutex_lock(&b->mu);
        int kept = b->n < SRV_BODIES_SLOTS && cap <= b->max_bytes - b->bytes; /* bytes <= max */
        if (kept) {
            b->s[b->n].p = p;
            b->s[b->n].cap = cap;
            b->n++;
            b->bytes += cap;
        }
        uv_mutex_unlock(&b->mu);
        if (kept)
            return;
    }
    free(p);
}

void srv_bodies_get_stats(srv_bodies *b, srv_bodies_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (b == NULL)
        return;
    uv_mutex_lock(&b->mu);
    out->buffers = b->n;
    out->bytes = b->bytes;
    out->reused = b->reused;
    out->fresh = b->fresh;
    uv_mutex_unlock(&b->mu);
}
