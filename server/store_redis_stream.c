/*
 * store_redis_stream.c - the job stream hl:jobs and its consumer group (see store_redis.h).
 *
 * hiredis 0.14 has no stream helpers, so every command goes through redisCommandArgv with
 * the raw arguments (srv__redis_op_cmd). Replies are walked defensively: an unexpected shape
 * is HL_INTERNAL, never a crash. A missing group ("NOGROUP" error reply) is HL_NOTFOUND so
 * the caller can run srv_redis_stream_setup again (Redis restarted without its data).
 *
 * Lock order: none here; the connection pool's lock (store_redis_conn.c) is taken and
 * released inside op_begin/op_end, never around a command.
 */
#include "store_redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTOCLAIM_ROUNDS 4 /* cursor steps per srv_redis_stream_autoclaim call */

/* ARGV: group, consumer, entry ids. For each entry still pending for `consumer`, resets its
 * idle time; returns per entry 1 (ours, touched) or 0 (not ours any more). */
static const char LUA_TOUCH[] =
    "local res = {}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)\n"
    "  if p[1] and p[1][2] == ARGV[2] then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')\n"
    "    res[#res + 1] = 1\n"
    "  else\n"
    "    res[#res + 1] = 0\n"
    "  end\n"
    "end\n"
    "return res\n";

/* ARGV: group, consumer, entry id, idle ms. Sets the idle time of an entry of ours. */
static const char LUA_RELEASE[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
    "if p[1] and p[1][2] == ARGV[2] then\n"
    "  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* ARGV: group, entry id. */
static const char LUA_ACK[] = "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
                              "return redis.call('XDEL', KEYS[1], ARGV[2])\n";

/* Runs one command on a fresh op; NOGROUP becomes HL_NOTFOUND. */
static hl_status stream_cmd(rs_store *s, int argc, const char **argv, redisReply **out)
{
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st != HL_OK)
        return st;
    char why[64];
    st = srv__redis_op_cmd_err(&op, out, argc, argv, NULL, why, sizeof(why));
    if (st != HL_OK && strncmp(why, "NOGROUP", 7) == 0)
        st = HL_NOTFOUND;
    return srv__redis_op_end(&op, st);
}

hl_status srv_redis_stream_setup(srv_store *base)
{
    const char *argv[6] = {"XGROUP", "CREATE", SRV_STREAM_KEY, SRV_STREAM_GROUP, "0", "MKSTREAM"};
    rs_store *s = (rs_store *)base;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st != HL_OK)
        return st;
    redisReply *r = redisCommandArgv(op.c, 6, argv, NULL);
    if (r == NULL) {
        op.broken = 1;
        st = srv__redis_fail(s, HL_UNAVAILABLE, "redis %s:%d: XGROUP CREATE: %s", s->host, s->port,
                             op.c->errstr[0] != '\0' ? op.c->errstr : "connection lost");
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        st = srv__redis_fail(s, strncmp(r->str, "LOADING", 7) == 0 ? HL_UNAVAILABLE : HL_INTERNAL,
                             "redis: XGROUP CREATE: %s", r->str);
    }
    if (r != NULL)
        freeReplyObject(r);
    return srv__redis_op_end(&op, st);
}

hl_status srv_redis_stream_add(srv_store *base, const char *job_id)
{
    if (!srv__redis_name_ok(job_id))
        return HL_INVAL;
    const char *argv[5] = {"XADD", SRV_STREAM_KEY, "*", "id", job_id};
    redisReply *r = NULL;
    hl_status st = stream_cmd((rs_store *)base, 5, argv, &r);
    if (st == HL_OK && r->type != REDIS_REPLY_STRING)
        st = srv__redis_fail((rs_store *)base, HL_INTERNAL, "redis: XADD: unexpected reply");
    if (r != NULL)
        freeReplyObject(r);
    return st;
}

hl_status srv_redis_stream_length(srv_store *base, long long *n)
{
    const char *argv[2] = {"XLEN", SRV_STREAM_KEY};
    redisReply *r = NULL;
    hl_status st = stream_cmd((rs_store *)base, 2, argv, &r);
    if (st == HL_OK && r->type != REDIS_REPLY_INTEGER)
        st = srv__redis_fail((rs_store *)base, HL_INTERNAL, "redis: XLEN: unexpected reply");
    else if (st == HL_OK)
        *n = r->integer;
    if (r != NULL)
        freeReplyObject(r);
    return st;
}

/* Copies one stream entry ([id, [field, value, ...]]) into *m; 0 if it has no "id" field
 * (a deleted entry) or a bad shape. */
static int entry_to_msg(const redisReply *e, srv_stream_msg *m)
{
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= sizeof(m->entry))
        return 0;
    memcpy(m->entry, e->element[0]->str, e->element[0]->len);
    m->entry[e->element[0]->len] = '\0';
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING && k->len == 2 &&
            memcmp(k->str, "id", 2) == 0 && v->len > 0 && v->len < sizeof(m->job)) {
            memcpy(m->job, v->str, v->len);
            m->job[v->len] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Appends the entries of an array reply to out (at most max in all). */
static void collect_entries(const redisReply *list, srv_stream_msg *out, size_t max, size_t *n)
{
    if (list == NULL || list->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < list->elements && *n < max; i++) {
        if (entry_to_msg(list->element[i], &out[*n]))
            (*n)++;
    }
}

hl_status srv_redis_stream_read(srv_store *base, const char *consumer, size_t max, int block_ms,
                                srv_stream_msg *out, size_t *n)
{
    *n = 0;
    if (!srv__redis_name_ok(consumer) || max == 0 || block_ms < 0)
        return HL_INVAL;
    char count[24], block[24];
    snprintf(count, sizeof(count), "%zu", max);
    snprintf(block, sizeof(block), "%d", block_ms);
    const char *argv[11] = {"XREADGROUP", "GROUP", SRV_STREAM_GROUP, consumer,       "BLOCK", block,
                            "COUNT",      count,   "STREAMS",        SRV_STREAM_KEY, ">"};
    redisReply *r = NULL;
    hl_status st = stream_cmd((rs_store *)base, 11, argv, &r);
    if (st != HL_OK)
        return st;
    if (r->type == REDIS_REPLY_ARRAY) {
        /* [[stream name, [entries]]] */
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *sr = r->element[i];
            if (sr->type == REDIS_REPLY_ARRAY && sr->elements == 2)
                collect_entries(sr->element[1], out, max, n);
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        st = srv__redis_fail((rs_store *)base, HL_INTERNAL, "redis: XREADGROUP: unexpected reply");
    }
    freeReplyObject(r);
    return st;
}

hl_status srv_redis_stream_autoclaim(srv_store *base, const char *consumer, long long min_idle_ms,
                                     size_t max, srv_stream_msg *out, size_t *n)
{
    *n = 0;
    if (!srv__redis_name_ok(consumer) || max == 0 || min_idle_ms < 0)
        return HL_INVAL;
    char cursor[48] = "0-0", idle[24], count[24];
    snprintf(idle, sizeof(idle), "%lld", min_idle_ms);
    hl_status st = HL_OK;
    for (int round = 0; round < AUTOCLAIM_ROUNDS && *n < max && st == HL_OK; round++) {
        snprintf(count, sizeof(count), "%zu", max - *n);
        const char *argv[8] = {"XAUTOCLAIM", SRV_STREAM_KEY, SRV_STREAM_GROUP, consumer,
                               idle,         cursor,         "COUNT",          count};
        redisReply *r = NULL;
        st = stream_cmd((rs_store *)base, 8, argv, &r);
        if (st != HL_OK)
            break;
        /* [next cursor, [entries], [deleted ids]] */
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor)) {
            st = srv__redis_fail((rs_store *)base, HL_INTERNAL,
                                 "redis: XAUTOCLAIM: unexpected reply");
        } else {
            collect_entries(r->element[1], out, max, n);
            memcpy(cursor, r->element[0]->str, r->element[0]->len);
            cursor[r->element[0]->len] = '\0';
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0-0") == 0)
            break;
    }
    return st;
}

hl_status srv_redis_stream_touch(srv_store *base, const char *consumer, const srv_stream_msg *m,
                                 size_t n, int *lost)
{
    if (n == 0)
        return HL_OK;
    if (!srv__redis_name_ok(consumer) || n > 4096)
        return HL_INVAL;
    const char **argv = calloc(6 + n, sizeof(char *));
    if (argv == NULL)
        return HL_NOMEM;
    argv[0] = "EVAL";
    argv[1] = LUA_TOUCH;
    argv[2] = "1";
    argv[3] = SRV_STREAM_KEY;
    argv[4] = SRV_STREAM_GROUP;
    argv[5] = consumer;
    for (size_t i = 0; i < n; i++)
        argv[6 + i] = m[i].entry;
    redisReply *r = NULL;
    hl_status st = stream_cmd((rs_store *)base, (int)(6 + n), argv, &r);
    free(argv);
    if (st != HL_OK)
        return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
        st = srv__redis_fail((rs_store *)base, HL_INTERNAL, "redis: touch: unexpected reply");
    for (size_t i = 0; st == HL_OK && i < n; i++)
        lost[i] = !(r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1);
    freeReplyObject(r);
    return st;
}

hl_status srv_redis_stream_release(srv_store *base, const char *consumer, const char *entry,
                                   long long idle_ms)
{
    if (!srv__redis_name_ok(consumer) || !srv__redis_name_ok(entry) || idle_ms < 0)
        return HL_INVAL;
    char idle[24];
    snprintf(idle, sizeof(idle), "%lld", idle_ms);
    const char *argv[8] = {"EVAL",           LUA_RELEASE, "1",   SRV_STREAM_KEY,
                           SRV_STREAM_GROUP, consumer,    entry, idle};
    redisReply *r = NULL;
    hl_status st = stream_cmd((rs_store *)base, 8, argv, &r);
    if (st == HL_OK && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        st = HL_NOTFOUND;
    if (r != NULL)
        freeReplyObject(r);
    return st;
}

hl_status srv_redis_stream_ack(srv_store *base, const char *entry)
{
    if (!srv__redis_name_ok(entry))
        return HL_INVAL;
    const char *argv[6] = {"EVAL", LUA_ACK, "1", SRV_STREAM_KEY, SRV_STREAM_GROUP, entry};
    redisReply *r = NULL;
    hl_status st = stream_cmd((rs_store *)base, 6, argv, &r);
    if (r != NULL)
        freeReplyObject(r);
    return st;
}
