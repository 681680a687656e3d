/*
 * store_redis_conn.c - the Redis store's connection pool and calls (see store_redis_int.h).
 *
 * A redisContext is not thread-safe, so each call checks one out of a pool of at most
 * `pool_size` connections and gives it back afterwards. Connections are opened lazily, with
 * redisConnectWithTimeout, then redisSetTimeout (every command is bounded by timeout_ms),
 * TCP keepalive and SELECT db. A connection whose call failed (I/O error, timeout, EOF,
 * protocol error) is freed instead of given back, so the next call reconnects; an idle one
 * that became readable (the server closed it, e.g. on restart) is replaced at checkout.
 * Waiting for a free connection is bounded by timeout_ms as well.
 *
 * Errors: refused connections, timeouts, EOF and I/O errors are HL_UNAVAILABLE, as are error
 * replies meaning "not now" (LOADING, READONLY, MASTERDOWN, ...); an OOM reply is HL_NOMEM;
 * anything else unexpected is HL_INTERNAL. The reason is kept for srv_store_redis_last_error.
 *
 * SIGPIPE: hiredis writes with write(2), which raises SIGPIPE on a connection the server has
 * reset. Each call blocks SIGPIPE in the calling thread, discards one its own write raised,
 * and restores the mask, so the store cannot kill the process whatever the disposition.
 *
 * Lock order: a single mutex, rs_store.lock, guards the idle list, the open count and the
 * last error. It is a leaf lock: no other lock is taken while it is held, and no Redis call,
 * connect, poll or large allocation happens under it.
 */
#include "store_redis_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Records the reason of a failure (outside the lock, then copied under it) and returns st. */
hl_status srv__redis_fail(rs_store *s, hl_status st, const char *fmt, ...)
{
    char msg[sizeof(s->last_error)];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->lock);
    memcpy(s->last_error, msg, sizeof(msg));
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* Error replies that mean "Redis cannot serve this now" rather than "this request is wrong". */
static hl_status map_reply_error(const char *msg)
{
    static const char *const unavailable[] = {"LOADING",  "BUSY",        "MASTERDOWN",
                                              "READONLY", "NOREPLICAS",  "TRYAGAIN",
                                              "NOAUTH",   "CLUSTERDOWN", "MISCONF"};
    if (strncmp(msg, "OOM", 3) == 0)
        return HL_NOMEM;
    for (size_t i = 0; i < sizeof(unavailable) / sizeof(unavailable[0]); i++) {
        size_t n = strlen(unavailable[i]);
        if (strncmp(msg, unavailable[i], n) == 0 && (msg[n] == ' ' || msg[n] == '\0'))
            return HL_UNAVAILABLE;
    }
    return HL_INTERNAL;
}

/* The status and reason for a failed call on context c (c->err is set). */
static hl_status context_fail(rs_store *s, const redisContext *c, const char *what)
{
    if (c->err == REDIS_ERR_OOM)
        return srv__redis_fail(s, HL_NOMEM, "redis %s:%d: %s: out of memory", s->host, s->port,
                               what);
    /* hiredis 0.14 reports an expired SO_RCVTIMEO/SO_SNDTIMEO as EAGAIN's text. */
    if (c->err == REDIS_ERR_IO && (strstr(c->errstr, "temporarily unavailable") != NULL ||
                                   strstr(c->errstr, "timed out") != NULL))
        return srv__redis_fail(s, HL_UNAVAILABLE, "redis %s:%d: %s: timed out after %d ms", s->host,
                               s->port, what, s->timeout_ms);
    return srv__redis_fail(s, HL_UNAVAILABLE, "redis %s:%d: %s: %s", s->host, s->port, what,
                           c->errstr[0] != '\0' ? c->errstr : "connection lost");
}

/* ---------------------------------------------------------------- SIGPIPE guard */

static void sigpipe_block(rs_op *op)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &op->oldmask);
    op->sigpipe_was_blocked = sigismember(&op->oldmask, SIGPIPE) == 1;
}

static void sigpipe_restore(rs_op *op)
{
    if (op->sigpipe_was_blocked)
        return; /* the caller blocks SIGPIPE itself; leave whatever is pending to it */
    sigset_t pending;
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&set, NULL, &zero); /* a standard signal is pending at most once */
    }
    pthread_sigmask(SIG_SETMASK, &op->oldmask, NULL);
}

/* ---------------------------------------------------------------- connections */

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    return tv;
}

static hl_status rs_connect(rs_store *s, redisContext **out)
{
    struct timeval tv = ms_to_tv(s->timeout_ms);
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (c == NULL)
        return srv__redis_fail(s, HL_NOMEM, "redis %s:%d: cannot allocate a context", s->host,
                               s->port);
    if (c->err != 0) {
        hl_status st = context_fail(s, c, "connect");
        redisFree(c);
        return st;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        hl_status st = context_fail(s, c, "socket options");
        redisFree(c);
        return st;
    }
    if (s->db != 0) {
        char db[8];
        snprintf(db, sizeof(db), "%d", s->db);
        const char *argv[2] = {"SELECT", db};
        redisReply *r = redisCommandArgv(c, 2, argv, NULL);
        hl_status st = HL_OK;
        if (r == NULL)
            st = context_fail(s, c, "SELECT");
        else if (r->type != REDIS_REPLY_STATUS)
            st = srv__redis_fail(s, HL_UNAVAILABLE, "redis %s:%d: SELECT %d: %s", s->host, s->port,
                                 s->db, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        if (r != NULL)
            freeReplyObject(r);
        if (st != HL_OK) {
            redisFree(c);
            return st;
        }
    }
    *out = c;
    return HL_OK;
}

/* An idle connection has no reply pending, so if it is readable the server closed it (or
 * sent garbage): either way it is not reusable. */
static int conn_stale(const redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN, .revents = 0};
    return c->err != 0 || poll(&p, 1, 0) != 0;
}

static struct timespec deadline_after_ms(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec += 1;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Takes an idle connection or a free slot (waiting at most timeout_ms); *c is NULL for a
 * slot, which the caller must fill or give back. */
static hl_status pool_take(rs_store *s, redisContext **c)
{
    struct timespec deadline = deadline_after_ms(s->timeout_ms);
    hl_status st = HL_OK;
    *c = NULL;
    pthread_mutex_lock(&s->lock);
    for (;;) { /* ends by deadline: every wait is timed */
        if (s->n_idle > 0) {
            *c = s->idle[--s->n_idle];
            break;
        }
        if (s->n_open < s->pool_size) {
            s->n_open++;
            break;
        }
        if (pthread_cond_timedwait(&s->freed, &s->lock, &deadline) == ETIMEDOUT) {
            st = HL_UNAVAILABLE;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (st != HL_OK)
        srv__redis_fail(s, st, "redis %s:%d: all %d connections busy for %d ms", s->host, s->port,
                        s->pool_size, s->timeout_ms);
    return st;
}

static void pool_give_back(rs_store *s, redisContext *c, int broken)
{
    if (c != NULL && broken) {
        redisFree(c);
        c = NULL;
    }
    pthread_mutex_lock(&s->lock);
    if (c != NULL)
        s->idle[s->n_idle++] = c;
    else
        s->n_open--;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* Starts a call: blocks SIGPIPE and checks a live connection out of the pool. */
hl_status srv__redis_op_begin(rs_store *s, rs_op *op)
{
    memset(op, 0, sizeof(*op));
    op->s = s;
    sigpipe_block(op);
    redisContext *c = NULL;
    hl_status st = pool_take(s, &c);
    if (st != HL_OK) {
        sigpipe_restore(op);
        return st;
    }
    if (c != NULL && conn_stale(c)) {
        redisFree(c); /* keep the slot and open a fresh connection in it */
        c = NULL;
    }
    if (c == NULL) {
        st = rs_connect(s, &c);
        if (st != HL_OK) {
            pool_give_back(s, NULL, 1);
            sigpipe_restore(op);
            return st;
        }
    }
    op->c = c;
    return HL_OK;
}

/* Ends a call: returns the connection (or frees it if it failed) and restores the mask. */
hl_status srv__redis_op_end(rs_op *op, hl_status st)
{
    if (op->c != NULL)
        pool_give_back(op->s, op->c, op->broken || op->c->err != 0);
    op->c = NULL;
    sigpipe_restore(op);
    return st;
}

/* Runs one command. On HL_OK *out is a reply that is not an error; the caller frees it. */
hl_status srv__redis_op_cmd(rs_op *op, redisReply **out, int argc, const char **argv,
                            const size_t *lens)
{
    return srv__redis_op_cmd_err(op, out, argc, argv, lens, NULL, 0);
}

hl_status srv__redis_op_cmd_err(rs_op *op, redisReply **out, int argc, const char **argv,
                                const size_t *lens, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    redisReply *r = redisCommandArgv(op->c, argc, argv, lens);
    if (r == NULL) {
        op->broken = 1;
        return context_fail(op->s, op->c, argv[0]);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (errbuf != NULL && errlen > 0)
            (void)snprintf(errbuf, errlen, "%s", r->str);
        hl_status st = map_reply_error(r->str);
        srv__redis_fail(op->s, st, "redis %s:%d: %s: %s", op->s->host, op->s->port, argv[0],
                        r->str);
        freeReplyObject(r);
        return st;
    }
    *out = r;
    return HL_OK;
}

/* Runs one command that must answer with an integer, stored in *value. */
hl_status srv__redis_op_int(rs_op *op, long long *value, int argc, const char **argv,
                            const size_t *lens)
{
    redisReply *r = NULL;
    hl_status st = srv__redis_op_cmd(op, &r, argc, argv, lens);
    if (st != HL_OK || r == NULL)
        return st != HL_OK ? st : HL_INTERNAL;
    if (r->type == REDIS_REPLY_INTEGER)
        *value = r->integer;
    else
        st = srv__redis_fail(op->s, HL_INTERNAL, "redis: %s: expected an integer reply", argv[0]);
    freeReplyObject(r);
    return st;
}

hl_status srv__redis_reply_fail(rs_op *op, const char *what)
{
    return srv__redis_fail(op->s, HL_INTERNAL, "redis: %s: unexpected reply type", what);
}

/* ---------------------------------------------------------------- keys and arguments */

/* "prefix" + id + (":" + suffix when suffix is non-NULL), malloc'd; NULL when out of memory. */
char *srv__redis_key(const char *prefix, const char *id, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(id) + (suffix != NULL ? strlen(suffix) + 1 : 0) + 1;
    char *k = malloc(n);
    if (k == NULL)
        return NULL;
    if (suffix != NULL)
        snprintf(k, n, "%s%s:%s", prefix, id, suffix);
    else
        snprintf(k, n, "%s%s", prefix, id);
    return k;
}

char *srv__redis_chunk_key(const char *prefix, const char *id, uint64_t i)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, i);
    return srv__redis_key(prefix, id, num);
}
