/*
 * store_redis_state.c - clustering states and locks in the Redis store (store.h).
 *
 * Keys:
 *   hl:state:{id}                  string  the current version's chain (the pointer):
 *                                  "v:g:b:B:D:gb,gb+1,...,gv" = version v written with nonce g,
 *                                  its base is version b (B bytes), then v - b deltas (D bytes
 *                                  in all), and the nonce of every version from b to v
 *   hl:state:{id}:v{n}.{g}:{c}     string  chunk c of version n written with nonce g: a base
 *                                  (a whole state file) or a delta (store_redis_blob.c)
 *   hl:state:{id}:v{n}.{g}:meta    hash    its meta
 *   hl:lock:{key}                  string  the owner token, with a PX expiry
 * A pointer "n:g" (written before deltas existed) reads as a base without deltas.
 *
 * A write stores version n as a new blob under its own nonce g (two writers racing for the
 * same version never share a blob), then moves the pointer with a compare-and-set script.
 * A base write (state_put) needs version n - 1 current and afterwards deletes the old chain's
 * blobs. A delta write (state_append) needs exactly the chain it read (same pointer string)
 * and, in the same script, renews the expiry of every blob of the chain, so the TTL covers
 * the base and all the deltas. Until the pointer moves, readers read n - 1 whole; a reader
 * that loses a race with the delete after a base write (it read the pointer, then a blob
 * vanished) reads the pointer again. A write that loses the CAS deletes its own blob and
 * returns HL_BUSY.
 *
 * A clone (state_clone, a cache hit) never moves the bytes through the server: one script
 * (LUA_STATE_CLONE) checks the source's pointer is still exactly the one read (version
 * src_version, a base alone) and that the destination has no state, COPYs the base's chunks
 * and meta to a blob of the destination's own (v1 under a new nonce, its meta's gen renewed),
 * gives them the destination's TTL (COPY would keep the source's) and only then sets the
 * destination's pointer: the clone appears whole or not at all, and shares no key with the
 * source, so deleting or expiring either leaves the other intact. COPY needs Redis >= 6.2 (as
 * XAUTOCLAIM does, store_redis_stream.c).
 */
#include "store_redis_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_STATE_PREFIX   "hl:state:"
#define RS_STATE_ATTEMPTS 8    /* reads racing a rewrite */
#define RS_STATE_GRACE_MS 1000 /* chunks outlive their meta by this much (as blobs do) */
#define RS_POINTER_MAX    (96 + 17 * (SRV_STATE_MAX_DELTAS + 1))

/* KEYS: pointer; ARGV: expected current version (0 = none), new pointer, ttl (0 = none). */
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

/* KEYS: pointer, then the meta keys of every blob of the current chain; ARGV: expected
 * pointer, new pointer, ttl (0 = none), chunk grace ms. 0 = the pointer changed, -1 = a blob
 * of the chain is gone (expired), 1 = written and the chain's expiry renewed. */
static const char LUA_STATE_APPEND[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "for i = 2, #KEYS do\n"
    "  if redis.call('EXISTS', KEYS[i]) == 0 then return -1 end\n"
    "end\n"
    "local ttl = tonumber(ARGV[3])\n"
    "if ttl > 0 then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)\n"
    "  for i = 2, #KEYS do\n"
    "    local c = tonumber(redis.call('HGET', KEYS[i], 'count')) or 0\n"
    "    local stem = string.sub(KEYS[i], 1, -5)\n"
    "    for j = 0, c - 1 do\n"
    "      redis.call('PEXPIRE', stem .. j, ttl * 1000 + tonumber(ARGV[4]))\n"
    "    end\n"
    "    redis.call('PEXPIRE', KEYS[i], ttl * 1000)\n"
    "  end\n"
    "else\n"
    "  redis.call('SET', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 1\n";

/* KEYS: source pointer, destination pointer, the source base's meta, the destination
 * base's meta (chunk c of a blob is its meta key with "meta" replaced by c). ARGV: expected
 * source pointer, destination pointer before and after the base's size (taken from the
 * source's meta), ttl (0 = none), chunk grace ms, the new blob's gen. 1 = cloned, 0 = the
 * source's pointer changed (or is gone), -1 = a blob of the source is gone (expiring),
 * -2 = the destination has a state. Nothing is written unless it returns 1. */
static const char LUA_STATE_CLONE[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end\n"
    "local c = tonumber(redis.call('HGET', KEYS[3], 'count'))\n"
    "local size = redis.call('HGET', KEYS[3], 'size')\n"
    "if not c or not size then return -1 end\n"
    "local src = string.sub(KEYS[3], 1, -5)\n"
    "local dst = string.sub(KEYS[4], 1, -5)\n"
    "for j = 0, c - 1 do\n"
    "  if redis.call('EXISTS', src .. j) == 0 then return -1 end\n"
    "end\n"
    "local ttl = tonumber(ARGV[4])\n"
    "for j = 0, c - 1 do\n"
    "  redis.call('COPY', src .. j, dst .. j, 'REPLACE')\n"
    "  if ttl > 0 then\n"
    "    redis.call('PEXPIRE', dst .. j, ttl * 1000 + tonumber(ARGV[5]))\n"
    "  else\n"
    "    redis.call('PERSIST', dst .. j)\n"
    "  end\n"
    "end\n"
    "redis.call('COPY', KEYS[3], KEYS[4], 'REPLACE')\n"
    "redis.call('HSET', KEYS[4], 'gen', ARGV[6])\n"
    "local ptr = ARGV[2] .. size .. ARGV[3]\n"
    "if ttl > 0 then\n"
    "  redis.call('PEXPIRE', KEYS[4], ttl * 1000)\n"
    "  redis.call('SET', KEYS[2], ptr, 'EX', ttl)\n"
    "else\n"
    "  redis.call('PERSIST', KEYS[4])\n"
    "  redis.call('SET', KEYS[2], ptr)\n"
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

/* A parsed pointer: the head and the nonce of every version from the base to the current. */
typedef struct rs_chain {
    srv_state_head head;
    uint64_t gen[SRV_STATE_MAX_DELTAS + 1];
    char text[RS_POINTER_MAX]; /* the pointer as read (the CAS of an append compares it) */
} rs_chain;

/* Parses all of p[0..n) as an unsigned number; 0 on junk or overflow. */
static int parse_num(const char *p, size_t n, int base, uint64_t *out)
{
    char buf[24];
    if (n == 0 || n >= sizeof(buf))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (base == 16 && c >= 'a' && c <= 'f')))
            return 0;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end = NULL;
    unsigned long long v = strtoull(buf, &end, base);
    if (end != buf + n || (base == 10 && n > 19) || (base == 16 && n > 16))
        return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Splits p[0..len) at `sep` into at most max fields; returns the count (0 when too many). */
static size_t split(const char *p, size_t len, char sep, const char **f, size_t *fl, size_t max)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == sep) {
            if (k == max)
                return 0;
            f[k] = p + start;
            fl[k++] = i - start;
            start = i + 1;
        }
    }
    return k;
}

/* Parses a pointer "v:g:b:B:D:gb,...,gv", or the older "n:g" (a base alone). */
static int parse_pointer(const char *p, size_t len, rs_chain *c)
{
    memset(&c->head, 0, sizeof(c->head));
    if (len == 0 || len >= sizeof(c->text))
        return 0;
    const char *f[6];
    size_t fl[6];
    size_t nf = split(p, len, ':', f, fl, 6);
    uint64_t v = 0, g = 0, b = 0, bb = 0, db = 0;
    if ((nf != 2 && nf != 6) || !parse_num(f[0], fl[0], 10, &v) || v == 0 ||
        !parse_num(f[1], fl[1], 16, &g))
        return 0;
    memcpy(c->text, p, len);
    c->text[len] = '\0';
    c->head.version = v;
    c->head.tag = g;
    if (nf == 2) {
        c->head.base_version = v;
        c->gen[0] = g;
        return 1;
    }
    if (!parse_num(f[2], fl[2], 10, &b) || b == 0 || b > v || v - b > SRV_STATE_MAX_DELTAS ||
        !parse_num(f[3], fl[3], 10, &bb) || !parse_num(f[4], fl[4], 10, &db) || bb > SIZE_MAX ||
        db > SIZE_MAX)
        return 0;
    const char *gf[SRV_STATE_MAX_DELTAS + 1];
    size_t gl[SRV_STATE_MAX_DELTAS + 1];
    size_t ng = split(f[5], fl[5], ',', gf, gl, SRV_STATE_MAX_DELTAS + 1);
    if (ng != v - b + 1)
        return 0;
    for (size_t i = 0; i < ng; i++)
        if (!parse_num(gf[i], gl[i], 16, &c->gen[i]))
            return 0;
    if (c->gen[ng - 1] != g)
        return 0;
    c->head.base_version = b;
    c->head.n_deltas = (size_t)(v - b);
    c->head.base_bytes = (size_t)bb;
    c->head.delta_bytes = (size_t)db;
    return 1;
}

/* Formats the pointer of chain c (its head and gens) into buf. */
static void format_pointer(const rs_chain *c, char *buf, size_t cap)
{
    const srv_state_head *h = &c->head;
    int n = snprintf(buf, cap, "%" PRIu64 ":%016" PRIx64 ":%" PRIu64 ":%zu:%zu:", h->version,
                     h->tag, h->base_version, h->base_bytes, h->delta_bytes);
    for (size_t i = 0; i <= h->n_deltas && n > 0 && (size_t)n < cap; i++)
        n += snprintf(buf + n, cap - (size_t)n, "%s%016" PRIx64, i > 0 ? "," : "", c->gen[i]);
}

/* Reads the pointer: HL_NOTFOUND when there is no state. */
static hl_status read_chain(rs_store *s, const char *id, rs_chain *c)
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
            else if (!parse_pointer(r->str, r->len, c))
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

/* Deletes every blob of a chain (best effort past the first failure). */
static hl_status delete_chain(rs_store *s, const char *id, const rs_chain *c)
{
    hl_status st = HL_OK;
    for (size_t i = 0; i <= c->head.n_deltas; i++) {
        hl_status ds = delete_version(s, id, c->head.base_version + i, c->gen[i]);
        if (ds != HL_OK && ds != HL_NOTFOUND && st == HL_OK)
            st = ds;
    }
    return st;
}

static uint64_t new_gen(rs_store *s)
{
    return s->gen_seed + atomic_fetch_add(&s->gen_next, 1) * 0x9E3779B97F4A7C15ull;
}

/* The checks every state write starts with: a valid id and ttl, version >= min_version, and
 * the current chain (none: version 0) exactly at version - 1, else HL_BUSY before any blob is
 * written (it could not win). On HL_OK *out holds two chains, the current one first; free it. */
static hl_status chain_for_write(rs_store *s, const char *id, uint64_t version,
                                 uint64_t min_version, uint64_t ttl, rs_chain **out)
{
    if (!srv__redis_name_ok(id) || version < min_version)
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    rs_chain *cur = calloc(2, sizeof(rs_chain));
    if (cur == NULL)
        return HL_NOMEM;
    hl_status st = read_chain(s, id, cur);
    if (st == HL_NOTFOUND) {
        cur->head.version = 0;
        st = HL_OK;
    }
    if (st == HL_OK && cur->head.version != version - 1)
        st = HL_BUSY;
    if (st != HL_OK) {
        free(cur);
        return st;
    }
    *out = cur;
    return HL_OK;
}

hl_status srv__redis_state_put(srv_store *base, const char *id, const void *data, size_t len,
                               uint64_t version, uint64_t ttl, uint64_t *tag)
{
    rs_store *s = (rs_store *)base;
    rs_chain *cur;
    hl_status st = chain_for_write(s, id, version, 1, ttl, &cur);
    if (st != HL_OK)
        return st;
    rs_chain *next = cur + 1;
    uint64_t gen = new_gen(s);
    char *vid = version_id(id, version, gen), *key = srv__redis_key(RS_STATE_PREFIX, id, NULL);
    if (vid == NULL || key == NULL) {
        free(vid);
        free(key);
        free(cur);
        return HL_NOMEM;
    }
    st = srv__redis_blob_put(s, RS_STATE_PREFIX, vid, data, len, ttl);
    if (st == HL_OK) {
        next->head = (srv_state_head){
            .version = version, .tag = gen, .base_version = version, .base_bytes = len};
        next->gen[0] = gen;
        char expect[24], ptr[RS_POINTER_MAX], t[24];
        format_pointer(next, ptr, sizeof(ptr));
        snprintf(expect, sizeof(expect), "%" PRIu64, version - 1);
        snprintf(t, sizeof(t), "%" PRIu64, ttl);
        long long won = 0;
        st = eval1(s, LUA_STATE_CAS, key, expect, ptr, t, &won);
        if (st == HL_OK && won != 1)
            st = HL_BUSY;
        if (st == HL_BUSY) /* another writer moved the pointer first: drop ours */
            srv__redis_blob_delete(s, RS_STATE_PREFIX, vid);
    }
    if (st == HL_OK && version > 1) /* best effort: the old chain is no longer reachable */
        delete_chain(s, id, cur);
    if (st == HL_OK && tag != NULL)
        *tag = gen;
    free(vid);
    free(key);
    free(cur);
    return st;
}

hl_status srv__redis_state_append(srv_store *base, const char *id, const void *data, size_t len,
                                  uint64_t version, uint64_t ttl, uint64_t *tag)
{
    rs_store *s = (rs_store *)base;
    rs_chain *cur;
    hl_status st = chain_for_write(s, id, version, 2, ttl, &cur);
    if (st != HL_OK)
        return st;
    if (cur->head.n_deltas >= SRV_STATE_MAX_DELTAS) {
        free(cur);
        return HL_RANGE;
    }
    rs_chain *next = cur + 1;
    size_t nk = cur->head.n_deltas + 2;
    uint64_t gen = new_gen(s);
    char *vid = version_id(id, version, gen);
    const char **argv = calloc(nk + 7, sizeof(char *));
    char **keys = calloc(nk, sizeof(char *));
    st = vid != NULL && argv != NULL && keys != NULL ? HL_OK : HL_NOMEM;
    if (st == HL_OK)
        keys[0] = srv__redis_key(RS_STATE_PREFIX, id, NULL);
    for (size_t i = 1; st == HL_OK && i < nk; i++) {
        char *bid = version_id(id, cur->head.base_version + i - 1, cur->gen[i - 1]);
        keys[i] = bid != NULL ? srv__redis_key(RS_STATE_PREFIX, bid, "meta") : NULL;
        free(bid);
    }
    for (size_t i = 0; st == HL_OK && i < nk; i++)
        if (keys[i] == NULL)
            st = HL_NOMEM;
    if (st == HL_OK)
        st = srv__redis_blob_put(s, RS_STATE_PREFIX, vid, data, len, ttl);
    if (st == HL_OK) {
        *next = *cur;
        next->head.version = version;
        next->head.tag = gen;
        next->head.n_deltas++;
        next->head.delta_bytes += len;
        next->gen[next->head.n_deltas] = gen;
        char ptr[RS_POINTER_MAX], t[24], nk_s[24], grace[24];
        format_pointer(next, ptr, sizeof(ptr));
        snprintf(t, sizeof(t), "%" PRIu64, ttl);
        snprintf(nk_s, sizeof(nk_s), "%zu", nk);
        snprintf(grace, sizeof(grace), "%d", RS_STATE_GRACE_MS);
        int argc = 0;
        argv[argc++] = "EVAL";
        argv[argc++] = LUA_STATE_APPEND;
        argv[argc++] = nk_s;
        for (size_t i = 0; i < nk; i++)
            argv[argc++] = keys[i];
        argv[argc++] = cur->text;
        argv[argc++] = ptr;
        argv[argc++] = t;
        argv[argc++] = grace;
        rs_op op;
        long long won = 0;
        st = srv__redis_op_begin(s, &op);
        if (st == HL_OK)
            st = srv__redis_op_end(&op, srv__redis_op_int(&op, &won, argc, argv, NULL));
        if (st == HL_OK && won == 0)
            st = HL_BUSY;
        else if (st == HL_OK && won != 1) /* the chain is expiring under us */
            st = srv__redis_fail(s, HL_NOTFOUND, "redis: state %s lost a blob of its chain", id);
        if (st != HL_OK) /* ours is unreachable */
            srv__redis_blob_delete(s, RS_STATE_PREFIX, vid);
    }
    if (st == HL_OK && tag != NULL)
        *tag = gen;
    for (size_t i = 0; keys != NULL && i < nk; i++)
        free(keys[i]);
    free(keys);
    free(argv);
    free(vid);
    free(cur);
    return st;
}

hl_status srv__redis_state_head(srv_store *base, const char *id, srv_state_head *out)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id) || out == NULL)
        return HL_INVAL;
    rs_chain *c = malloc(sizeof(*c));
    if (c == NULL)
        return HL_NOMEM;
    hl_status st = read_chain(s, id, c);
    if (st == HL_OK)
        *out = c->head;
    free(c);
    return st;
}

/* Reads every blob of chain c into out; HL_NOTFOUND/HL_BUSY when one vanished or changed. */
static hl_status read_blobs(rs_store *s, const char *id, const rs_chain *c, srv_state_chain *out)
{
    memset(out, 0, sizeof(*out));
    out->head = c->head;
    size_t nd = c->head.n_deltas;
    if (nd > 0) {
        out->deltas = calloc(nd, sizeof(void *));
        out->delta_lens = calloc(nd, sizeof(size_t));
        if (out->deltas == NULL || out->delta_lens == NULL) {
            srv_state_chain_free(out);
            return HL_NOMEM;
        }
    }
    hl_status st = HL_OK;
    for (size_t i = 0; i <= nd && st == HL_OK; i++) {
        char *vid = version_id(id, c->head.base_version + i, c->gen[i]);
        if (vid == NULL) {
            st = HL_NOMEM;
            break;
        }
        st = srv__redis_blob_get(s, RS_STATE_PREFIX, vid, i == 0 ? &out->base : &out->deltas[i - 1],
                                 i == 0 ? &out->base_len : &out->delta_lens[i - 1]);
        free(vid);
    }
    if (st != HL_OK)
        srv_state_chain_free(out);
    return st;
}

hl_status srv__redis_state_get(srv_store *base, const char *id, srv_state_chain *out)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id) || out == NULL)
        return HL_INVAL;
    memset(out, 0, sizeof(*out));
    rs_chain *c = calloc(2, sizeof(rs_chain));
    if (c == NULL)
        return HL_NOMEM;
    rs_chain *again = c + 1;
    hl_status st = HL_BUSY;
    for (int attempt = 0; attempt < RS_STATE_ATTEMPTS; attempt++) {
        st = read_chain(s, id, c);
        if (st != HL_OK)
            break;
        st = read_blobs(s, id, c, out);
        if (st == HL_OK || (st != HL_NOTFOUND && st != HL_BUSY))
            break;
        /* Gone or rewritten under us: a newer base replaced the chain, or it expired. */
        hl_status again_st = read_chain(s, id, again);
        if (again_st != HL_OK) {
            st = again_st;
            break;
        }
        if (strcmp(again->text, c->text) == 0 && st == HL_NOTFOUND) {
            st = HL_NOTFOUND; /* expiring: the pointer outlives its blobs by a moment */
            break;
        }
        st = HL_BUSY;
    }
    free(c);
    if (st == HL_BUSY)
        return srv__redis_fail(s, st, "redis: state %s was rewritten during %d reads", id,
                               RS_STATE_ATTEMPTS);
    return st;
}

hl_status srv__redis_state_delete(srv_store *base, const char *id)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id))
        return HL_INVAL;
    rs_chain *c = malloc(sizeof(*c));
    if (c == NULL)
        return HL_NOMEM;
    hl_status st = read_chain(s, id, c);
    if (st != HL_OK) {
        free(c);
        return st;
    }
    char *key = srv__redis_key(RS_STATE_PREFIX, id, NULL);
    if (key == NULL) {
        free(c);
        return HL_NOMEM;
    }
    rs_op op;
    st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[2] = {"DEL", key};
        long long n = 0;
        st = srv__redis_op_end(&op, srv__redis_op_int(&op, &n, 2, argv, NULL));
    }
    free(key);
    hl_status ds = delete_chain(s, id, c);
    free(c);
    return st != HL_OK ? st : ds;
}

/* Runs LUA_STATE_CLONE for source chain `c` (a base alone) into version 1 of `dst` under
 * nonce `gen`; *result its reply. *aborted is set when Redis answered with an error (the
 * script stopped, maybe after copying some chunks). */
static hl_status clone_script(rs_store *s, const char *src, const char *dst, const rs_chain *c,
                              uint64_t gen, uint64_t ttl, long long *result, int *aborted)
{
    *aborted = 0;
    char *sid = version_id(src, c->head.base_version, c->gen[0]);
    char *did = version_id(dst, 1, gen);
    char *keys[4] = {srv__redis_key(RS_STATE_PREFIX, src, NULL),
                     srv__redis_key(RS_STATE_PREFIX, dst, NULL),
                     sid != NULL ? srv__redis_key(RS_STATE_PREFIX, sid, "meta") : NULL,
                     did != NULL ? srv__redis_key(RS_STATE_PREFIX, did, "meta") : NULL};
    hl_status st = HL_OK;
    for (int i = 0; i < 4; i++)
        if (keys[i] == NULL)
            st = HL_NOMEM;
    if (st == HL_OK) {
        /* The pointer format_pointer would write for a base alone of version 1, its byte
         * count (known in the script, from the source's meta) left out. */
        char before[48], after[32], t[24], grace[16], g[20];
        snprintf(before, sizeof(before), "1:%016" PRIx64 ":1:", gen);
        snprintf(after, sizeof(after), ":0:%016" PRIx64, gen);
        snprintf(t, sizeof(t), "%" PRIu64, ttl);
        snprintf(grace, sizeof(grace), "%d", RS_STATE_GRACE_MS);
        snprintf(g, sizeof(g), "%016" PRIx64, gen);
        const char *argv[13] = {"EVAL",  LUA_STATE_CLONE, "4",   keys[0], keys[1], keys[2], keys[3],
                                c->text, before,          after, t,       grace,   g};
        rs_op op;
        st = srv__redis_op_begin(s, &op);
        if (st == HL_OK) {
            char err[8];
            redisReply *r = NULL;
            st = srv__redis_op_cmd_err(&op, &r, 13, argv, NULL, err, sizeof(err));
            *aborted = err[0] != '\0';
            if (st == HL_OK && r->type != REDIS_REPLY_INTEGER)
                st = srv__redis_reply_fail(&op, "EVAL state clone");
            else if (st == HL_OK)
                *result = r->integer;
            if (r != NULL)
                freeReplyObject(r);
            st = srv__redis_op_end(&op, st);
        }
    }
    for (int i = 0; i < 4; i++)
        free(keys[i]);
    free(sid);
    free(did);
    return st;
}

hl_status srv__redis_state_clone(srv_store *base, const char *src, const char *dst,
                                 uint64_t src_version, uint64_t ttl, uint64_t *tag)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(src) || !srv__redis_name_ok(dst) || strcmp(src, dst) == 0 ||
        src_version < 1)
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    rs_chain *c = malloc(sizeof(*c));
    if (c == NULL)
        return HL_NOMEM;
    hl_status st = read_chain(s, src, c);
    if (st == HL_OK && (c->head.version != src_version || c->head.n_deltas != 0))
        st = HL_BUSY; /* the source moved on: it is no longer the state asked for */
    if (st != HL_OK) {
        free(c);
        return st;
    }
    uint64_t gen = new_gen(s);
    long long done = 0;
    int aborted = 0;
    st = clone_script(s, src, dst, c, gen, ttl, &done, &aborted);
    free(c);
    if (st == HL_OK && done == -1) /* the pointer outlives its blobs by a moment */
        return srv__redis_fail(s, HL_NOTFOUND, "redis: state %s lost its base", src);
    if (st == HL_OK && done != 1)
        return HL_BUSY; /* 0: the source changed; -2: the destination has a state */
    if (aborted) {
        /* The script stopped at an error (e.g. a COPY refused under maxmemory): chunks it
         * copied are unreachable (no meta, no pointer); best effort, remove them. A timeout
         * is not an abort (the script may still finish): nothing is removed then. */
        char *did = version_id(dst, 1, gen);
        if (did != NULL)
            srv__redis_blob_delete(s, RS_STATE_PREFIX, did);
        free(did);
    }
    if (st == HL_OK && tag != NULL)
        *tag = gen;
    return st;
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
