/*
 * store_redis_state.c - clustering states and locks in the Redis store (store.h).
 *
 * Keys:
 *   hl:state:{id}                  string  the current version and its write nonce, "n:g"
 *   hl:state:{id}:v{n}.{g}:{c}     string  chunk c of that version (store_redis_blob.c)
 *   hl:state:{id}:v{n}.{g}:meta    hash    its meta
 *   hl:lock:{key}                  string  the owner token, with a PX expiry
 *
 * A write stores version n as a new blob under its own nonce g (two writers racing for the
 * same version never share a blob), then moves the pointer with a compare-and-set script
 * (only from version n - 1), then deletes the blob of version n - 1. Until the pointer moves,
 * readers read n - 1 whole; a reader that loses a race with the delete (it read the pointer,
 * then the old blob vanished) reads the pointer again. A write that loses the CAS deletes its
 * own blob and returns HL_BUSY.
 */
#include "store_redis_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_STATE_PREFIX   "hl:state:"
#define RS_STATE_ATTEMPTS 8 /* reads racing a rewrite */

/* KEYS: pointer; ARGV: expected current version (0 = none), new "n:g", ttl (0 = none). */
static const char LUA_STATE_CAS[] = "local cur = redis.call('GET', KEYS[1])\n"
                                    "local v = '0'\n"
                                    "if cur then v = string.match(cur, '^(%d+):') or 'x' end\n"
                                    "if v ~= ARGV[1] then return 0 end\n"
                                    "if tonumber(ARGV[3]) > 0 then\n"
                                    "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\n"
                                    "else\n"
                                    "  redis.call('SET', KEYS[1], ARGV[2])\n"
                                    "end\n"
                                    "return 1\n";

/* KEYS: lock; ARGV: token, ttl ms. 1 = held by the token now, 0 = held by another. */
static const char LUA_LOCK[] = "local v = redis.call('GET', KEYS[1])\n"
                               "if v == false then\n"
                               "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                               "  return 1\n"
                               "end\n"
                               "if v == ARGV[1] then\n"
                               "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                               "  return 1\n"
                               "end\n"
                               "return 0\n";

/* KEYS: lock; ARGV: token. 1 = released, 0 = not held by the token. */
static const char LUA_UNLOCK[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                 "  return redis.call('DEL', KEYS[1])\n"
                                 "end\n"
                                 "return 0\n";

/* "{id}:v{n}.{g}": the blob id of version n written with nonce g. */
static char *version_id(const char *id, uint64_t v, uint64_t g)
{
    size_t n = strlen(id) + 48;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s:v%" PRIu64 ".%016" PRIx64, id, v, g);
    return p;
}

/* Parses a pointer value "n:g" (decimal version, hex nonce). */
static int parse_pointer(const char *p, size_t len, uint64_t *v, uint64_t *g)
{
    char buf[48];
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end = NULL;
    unsigned long long a = strtoull(buf, &end, 10);
    if (end == buf || *end != ':' || a == 0)
        return 0;
    char *e2 = NULL;
    unsigned long long b = strtoull(end + 1, &e2, 16);
    if (e2 == end + 1 || *e2 != '\0')
        return 0;
    *v = (uint64_t)a;
    *g = (uint64_t)b;
    return 1;
}

/* Reads the pointer: HL_NOTFOUND when there is no state. */
static hl_status read_version(rs_store *s, const char *id, uint64_t *version, uint64_t *gen)
{
    char *key = srv__redis_key(RS_STATE_PREFIX, id, NULL);
    if (key == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[2] = {"GET", key};
        redisReply *r = NULL;
        st = srv__redis_op_cmd(&op, &r, 2, argv, NULL);
        if (st == HL_OK) {
            if (r->type == REDIS_REPLY_NIL)
                st = HL_NOTFOUND;
            else if (r->type != REDIS_REPLY_STRING)
                st = srv__redis_reply_fail(&op, "GET state");
            else if (!parse_pointer(r->str, r->len, version, gen))
                st = srv__redis_fail(s, HL_CHECKSUM, "redis: %s is malformed", key);
            freeReplyObject(r);
        }
        st = srv__redis_op_end(&op, st);
    }
    free(key);
    return st;
}

/* Runs one of the scripts above with one key and up to three arguments; *result its reply. */
static hl_status eval1(rs_store *s, const char *script, const char *key, const char *a1,
                       const char *a2, const char *a3, long long *result)
{
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st != HL_OK)
        return st;
    const char *argv[7] = {"EVAL", script, "1", key, a1, a2, a3};
    int argc = a3 != NULL ? 7 : a2 != NULL ? 6 : 5;
    st = srv__redis_op_int(&op, result, argc, argv, NULL);
    return srv__redis_op_end(&op, st);
}

static hl_status delete_version(rs_store *s, const char *id, uint64_t v, uint64_t g)
{
    char *vid = version_id(id, v, g);
    if (vid == NULL)
        return HL_NOMEM;
    hl_status st = srv__redis_blob_delete(s, RS_STATE_PREFIX, vid);
    free(vid);
    return st;
}

hl_status srv__redis_state_put(srv_store *base, const char *id, const void *data, size_t len,
                               uint64_t version, uint64_t ttl)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id) || version < 1)
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    uint64_t cur = 0, cur_gen = 0;
    hl_status st = read_version(s, id, &cur, &cur_gen);
    if (st == HL_NOTFOUND)
        cur = 0;
    else if (st != HL_OK)
        return st;
    if (cur != version - 1)
        return HL_BUSY; /* early: do not write a blob that cannot win */
    uint64_t gen = s->gen_seed + atomic_fetch_add(&s->gen_next, 1) * 0x9E3779B97F4A7C15ull;
    char *vid = version_id(id, version, gen), *key = srv__redis_key(RS_STATE_PREFIX, id, NULL);
    if (vid == NULL || key == NULL) {
        free(vid);
        free(key);
        return HL_NOMEM;
    }
    st = srv__redis_blob_put(s, RS_STATE_PREFIX, vid, data, len, ttl);
    if (st == HL_OK) {
        char expect[24], next[48], t[24];
        snprintf(expect, sizeof(expect), "%" PRIu64, version - 1);
        snprintf(next, sizeof(next), "%" PRIu64 ":%016" PRIx64, version, gen);
        snprintf(t, sizeof(t), "%" PRIu64, ttl);
        long long won = 0;
        st = eval1(s, LUA_STATE_CAS, key, expect, next, t, &won);
        if (st == HL_OK && won != 1)
            st = HL_BUSY;
        if (st == HL_BUSY) /* another writer moved the pointer first: drop ours */
            srv__redis_blob_delete(s, RS_STATE_PREFIX, vid);
    }
    if (st == HL_OK && version > 1) /* best effort: it is no longer reachable */
        delete_version(s, id, version - 1, cur_gen);
    free(vid);
    free(key);
    return st;
}

hl_status srv__redis_state_get(srv_store *base, const char *id, void **data, size_t *len,
                               uint64_t *version)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id) || version == NULL)
        return HL_INVAL;
    hl_status st = HL_BUSY;
    for (int attempt = 0; attempt < RS_STATE_ATTEMPTS; attempt++) {
        uint64_t v = 0, g = 0, again = 0, again_g = 0;
        st = read_version(s, id, &v, &g);
        if (st != HL_OK || data == NULL) {
            if (st == HL_OK)
                *version = v;
            return st;
        }
        char *vid = version_id(id, v, g);
        if (vid == NULL)
            return HL_NOMEM;
        st = srv__redis_blob_get(s, RS_STATE_PREFIX, vid, data, len);
        free(vid);
        if (st == HL_OK) {
            *version = v;
            return HL_OK;
        }
        if (st != HL_NOTFOUND && st != HL_BUSY)
            return st;
        /* Gone or rewritten under us: a newer version replaced it, or it expired. */
        hl_status again_st = read_version(s, id, &again, &again_g);
        if (again_st != HL_OK)
            return again_st;
        if (again == v && again_g == g && st == HL_NOTFOUND)
            return HL_NOTFOUND; /* expiring: the pointer outlives its blob by a moment */
    }
    return srv__redis_fail(s, st, "redis: state %s was rewritten during %d reads", id,
                           RS_STATE_ATTEMPTS);
}

hl_status srv__redis_state_delete(srv_store *base, const char *id)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id))
        return HL_INVAL;
    uint64_t v = 0, g = 0;
    hl_status st = read_version(s, id, &v, &g);
    if (st != HL_OK)
        return st;
    char *key = srv__redis_key(RS_STATE_PREFIX, id, NULL);
    if (key == NULL)
        return HL_NOMEM;
    rs_op op;
    st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[2] = {"DEL", key};
        long long n = 0;
        st = srv__redis_op_end(&op, srv__redis_op_int(&op, &n, 2, argv, NULL));
    }
    free(key);
    hl_status ds = delete_version(s, id, v, g);
    return st != HL_OK ? st : ds == HL_NOTFOUND ? HL_OK : ds;
}

hl_status srv__redis_lock(srv_store *base, const char *key, const char *token, uint64_t ttl_ms)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(key) || !srv__redis_name_ok(token) || ttl_ms == 0)
        return HL_INVAL;
    char *k = srv__redis_key("hl:lock:", key, NULL);
    if (k == NULL)
        return HL_NOMEM;
    char t[24];
    snprintf(t, sizeof(t), "%" PRIu64, ttl_ms);
    long long held = 0;
    hl_status st = eval1(s, LUA_LOCK, k, token, t, NULL, &held);
    free(k);
    return st == HL_OK && held != 1 ? HL_BUSY : st;
}

hl_status srv__redis_unlock(srv_store *base, const char *key, const char *token)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(key) || !srv__redis_name_ok(token))
        return HL_INVAL;
    char *k = srv__redis_key("hl:lock:", key, NULL);
    if (k == NULL)
        return HL_NOMEM;
    long long released = 0;
    hl_status st = eval1(s, LUA_UNLOCK, k, token, NULL, NULL, &released);
    free(k);
    return st == HL_OK && released != 1 ? HL_NOTFOUND : st;
}
