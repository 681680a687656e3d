/*
 * store_redis.c - the Redis backend of store.h (hiredis 0.14, blocking API).
 *
 * DESIGN
 *
 * Key layout (docs/api.md "Redis layout"):
 *   hl:job:{id}          hash    the job's fields
 *   hl:res:{id}:{n}      string  chunk n (0, 1, ...) of the result, <= 64 MiB each
 *   hl:res:{id}:meta     hash    count, size, chunk_size (decimal), crc32c (8 hex digits of
 *                                the CRC-32C of the whole blob), gen (16 hex digits, a nonce
 *                                that differs for every write)
 *   hl:in:{id}:{n}       string  chunk n of the input embeddings
 *   hl:in:{id}:meta      hash    as for results
 *   hl:cache:{key}       string  job id
 *   hl:idem:{key}        string  the claimed value
 *   hl:owner:{name}      zset    job ids of an API key that may be active, scored by the
 *                                admission time (ms since the epoch)
 *   hl:jobs              stream  job ids to run, consumer group "workers" (store_redis_stream.c)
 *   hl:state:{id}...     clustering states, versioned; hl:lock:{key} locks
 *                                (store_redis_state.c)
 *
 * Atomicity. job_create, job_update (with its status precondition and expiry), the blob
 * meta write and idem_claim are each one Lua script (EVAL), so each is atomic on the server
 * and safe across threads and replicas. Every script names the keys it touches in KEYS.
 * A job_update on a missing record is HL_NOTFOUND (it never creates one); the precondition
 * matches the record's "status" exactly against one of the comma-separated values.
 *
 * Blobs (store_redis_blob.c). A write first removes the old blob (meta first, then its
 * chunks), then SETs the chunks (each with EX ttl, so an interrupted write expires), then
 * writes the meta last. The meta script checks that every chunk still exists and, with a TTL,
 * sets the meta's expiry to ttl and every chunk's to ttl + 1 s in the same script, so the
 * meta always expires first: whenever the meta exists, all its chunks do unless someone
 * damaged them (deletes also remove the meta first). A reader reads the meta, then the
 * chunks, and verifies each chunk's length and the CRC-32C of the whole. On a mismatch it
 * reads the meta again: gone means the blob was deleted under it (HL_NOTFOUND); a different
 * `gen` means it was rewritten under it (read again, at most 8 times, then HL_BUSY); the
 * same `gen` means the stored bytes are damaged (HL_CHECKSUM). So a reader never returns a
 * half-written or mixed blob.
 *
 * Connections, timeouts, errors, SIGPIPE and the lock order: store_redis_conn.c. The store
 * connects lazily: srv_store_redis_new only validates, so the daemon can start before Redis
 * and report it through ping (readyz).
 */
#include "store_redis_int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const srv_store_ops rs_ops;

/* ---------------------------------------------------------------- scripts */

static const char LUA_JOB_CREATE[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "return 1\n";

/* ARGV: check ('0'/'1'), expected statuses (comma-separated), ttl, then name/value pairs. */
static const char LUA_JOB_UPDATE[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "if ARGV[1] == '1' then\n"
    "  local st = redis.call('HGET', KEYS[1], 'status')\n"
    "  local ok = false\n"
    "  if st then\n"
    "    for tok in string.gmatch(ARGV[2], '[^,]+') do\n"
    "      if tok == st then ok = true; break end\n"
    "    end\n"
    "  end\n"
    "  if not ok then return 0 end\n"
    "end\n"
    "for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "local ttl = tonumber(ARGV[3])\n"
    "if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end\n"
    "return 1\n";

/* ARGV: expected, value, ttl. Returns 1 replaced, 0 another value, -1 absent. */
static const char LUA_IDEM_REPLACE[] = "local v = redis.call('GET', KEYS[1])\n"
                                       "if not v then return -1 end\n"
                                       "if v ~= ARGV[1] then return 0 end\n"
                                       "if ARGV[3] ~= '0' then\n"
                                       "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\n"
                                       "else\n"
                                       "  redis.call('SET', KEYS[1], ARGV[2])\n"
                                       "end\n"
                                       "return 1\n";

/* ARGV: value, ttl. Returns {1} when stored, {0, existing} otherwise. */
static const char LUA_IDEM[] = "local v = redis.call('GET', KEYS[1])\n"
                               "if v then return {0, v} end\n"
                               "if ARGV[2] ~= '0' then\n"
                               "  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])\n"
                               "else\n"
                               "  redis.call('SET', KEYS[1], ARGV[1], 'NX')\n"
                               "end\n"
                               "return {1}\n";

/* ARGV: check ('0'/'1'), expected statuses, field, delta. {-1} missing, {0} precondition
 * failed, {-2} not an integer, {1, value} done. */
static const char LUA_JOB_INCR[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end\n"
                                   "if ARGV[1] == '1' then\n"
                                   "  local st = redis.call('HGET', KEYS[1], 'status')\n"
                                   "  local ok = false\n"
                                   "  if st then\n"
                                   "    for tok in string.gmatch(ARGV[2], '[^,]+') do\n"
                                   "      if tok == st then ok = true; break end\n"
                                   "    end\n"
                                   "  end\n"
                                   "  if not ok then return {0} end\n"
                                   "end\n"
                                   "local v = redis.call('HGET', KEYS[1], ARGV[3])\n"
                                   "if v and not string.match(v, '^%-?%d+$') then return {-2} end\n"
                                   "return {1, redis.call('HINCRBY', KEYS[1], ARGV[3], ARGV[4])}\n";

/* KEYS: the owner zset, then hl:job:{m} for each member m in ARGV[5..]. ARGV: now (ms), grace
 * (ms), limit, the new job id, the members read just before. Drops members whose job is
 * terminal, or absent past the grace period; members added since the read count as active.
 * Returns 1 when the new id is (or already was) in, 0 at the limit. */
static const char LUA_OWNER_ADMIT[] =
    "local now = tonumber(ARGV[1])\n"
    "local grace = tonumber(ARGV[2])\n"
    "for i = 5, #ARGV do\n"
    "  local st = redis.call('HGET', KEYS[i - 3], 'status')\n"
    "  local drop = false\n"
    "  if st then\n"
    "    drop = st == 'succeeded' or st == 'failed' or st == 'canceled'\n"
    "  else\n"
    "    local t = redis.call('ZSCORE', KEYS[1], ARGV[i])\n"
    "    drop = t and (now - tonumber(t) > grace)\n"
    "  end\n"
    "  if drop then redis.call('ZREM', KEYS[1], ARGV[i]) end\n"
    "end\n"
    "if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end\n"
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[1], 604800000)\n"
    "return 1\n";

/* ---------------------------------------------------------------- arguments */

static int fields_ok(const srv_field *f, size_t n)
{
    if (n > 0 && f == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!srv__redis_name_ok(f[i].name) || f[i].value == NULL)
            return 0;
    }
    return 1;
}

/* An argument vector built up front: fixed entries first, then field pairs. */
typedef struct rs_argv {
    int n;
    const char **v;
    size_t *len;
} rs_argv;

static hl_status argv_alloc(rs_argv *a, size_t fixed, const srv_field *f, size_t nf)
{
    a->n = 0;
    a->v = NULL;
    a->len = NULL;
    if (nf > ((size_t)INT_MAX - fixed) / 2)
        return HL_RANGE;
    size_t total = fixed + 2 * nf;
    a->v = malloc(total * sizeof(*a->v));
    a->len = malloc(total * sizeof(*a->len));
    if (a->v == NULL || a->len == NULL) {
        free(a->v);
        free(a->len);
        a->v = NULL;
        a->len = NULL;
        return HL_NOMEM;
    }
    for (size_t i = 0; i < nf; i++) {
        a->v[fixed + 2 * i] = f[i].name;
        a->len[fixed + 2 * i] = strlen(f[i].name);
        a->v[fixed + 2 * i + 1] = f[i].value;
        a->len[fixed + 2 * i + 1] = strlen(f[i].value);
    }
    a->n = (int)total;
    return HL_OK;
}

static void argv_set(rs_argv *a, int i, const char *s)
{
    a->v[i] = s;
    a->len[i] = strlen(s);
}

static void argv_free(rs_argv *a)
{
    free(a->v);
    free(a->len);
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        if (n > 0)
            memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

/* ---------------------------------------------------------------- job records */

static hl_status rs_job_create(srv_store *base, const char *id, const srv_field *f, size_t n)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id) || n == 0 || !fields_ok(f, n))
        return HL_INVAL;
    char *key = srv__redis_key("hl:job:", id, NULL);
    rs_argv a;
    hl_status st = key != NULL ? argv_alloc(&a, 4, f, n) : HL_NOMEM;
    if (st != HL_OK) {
        free(key);
        return st;
    }
    argv_set(&a, 0, "EVAL");
    argv_set(&a, 1, LUA_JOB_CREATE);
    argv_set(&a, 2, "1");
    argv_set(&a, 3, key);
    rs_op op;
    st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        long long created = 0;
        st = srv__redis_op_int(&op, &created, a.n, a.v, a.len);
        if (st == HL_OK && created != 1)
            st = HL_BUSY;
        st = srv__redis_op_end(&op, st);
    }
    argv_free(&a);
    free(key);
    return st;
}

/* Fills *out from an HGETALL reply (name, value, name, value, ...). */
static hl_status record_from_reply(const redisReply *r, srv_record *out)
{
    size_t n = r->elements / 2;
    out->names = calloc(n > 0 ? n : 1, sizeof(char *));
    out->values = calloc(n > 0 ? n : 1, sizeof(char *));
    if (out->names == NULL || out->values == NULL) {
        srv_record_free(out);
        return HL_NOMEM;
    }
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            srv_record_free(out);
            return HL_INTERNAL;
        }
        out->names[i] = dup_bytes(k->str, k->len);
        out->values[i] = dup_bytes(v->str, v->len);
        if (out->names[i] == NULL || out->values[i] == NULL) {
            srv_record_free(out);
            return HL_NOMEM;
        }
    }
    return HL_OK;
}

static hl_status rs_job_get(srv_store *base, const char *id, srv_record *out)
{
    rs_store *s = (rs_store *)base;
    if (out == NULL)
        return HL_INVAL;
    memset(out, 0, sizeof(*out));
    if (!srv__redis_name_ok(id))
        return HL_INVAL;
    char *key = srv__redis_key("hl:job:", id, NULL);
    if (key == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[2] = {"HGETALL", key};
        redisReply *r = NULL;
        st = srv__redis_op_cmd(&op, &r, 2, argv, NULL);
        if (st == HL_OK) {
            if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
                st = srv__redis_reply_fail(&op, "HGETALL");
            else if (r->elements == 0)
                st = HL_NOTFOUND;
            else if ((st = record_from_reply(r, out)) == HL_INTERNAL)
                srv__redis_reply_fail(&op, "HGETALL");
            freeReplyObject(r);
        }
        st = srv__redis_op_end(&op, st);
    }
    free(key);
    return st;
}

static hl_status rs_job_update(srv_store *base, const char *id, const srv_field *f, size_t n,
                               const char *expect_status, uint64_t ttl)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id) || !fields_ok(f, n))
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    char ttlbuf[24];
    snprintf(ttlbuf, sizeof(ttlbuf), "%" PRIu64, ttl);
    char *key = srv__redis_key("hl:job:", id, NULL);
    rs_argv a;
    hl_status st = key != NULL ? argv_alloc(&a, 7, f, n) : HL_NOMEM;
    if (st != HL_OK) {
        free(key);
        return st;
    }
    argv_set(&a, 0, "EVAL");
    argv_set(&a, 1, LUA_JOB_UPDATE);
    argv_set(&a, 2, "1");
    argv_set(&a, 3, key);
    argv_set(&a, 4, expect_status != NULL ? "1" : "0");
    argv_set(&a, 5, expect_status != NULL ? expect_status : "");
    argv_set(&a, 6, ttlbuf);
    rs_op op;
    st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        long long res = 0;
        st = srv__redis_op_int(&op, &res, a.n, a.v, a.len);
        if (st == HL_OK && res != 1)
            st = res < 0 ? HL_NOTFOUND : HL_BUSY;
        st = srv__redis_op_end(&op, st);
    }
    argv_free(&a);
    free(key);
    return st;
}

static hl_status rs_job_delete(srv_store *base, const char *id)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id))
        return HL_INVAL;
    char *key = srv__redis_key("hl:job:", id, NULL);
    if (key == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[2] = {"DEL", key};
        long long removed = 0;
        st = srv__redis_op_int(&op, &removed, 2, argv, NULL);
        if (st == HL_OK && removed == 0)
            st = HL_NOTFOUND;
        st = srv__redis_op_end(&op, st);
    }
    free(key);
    return st;
}

static hl_status rs_job_incr(srv_store *base, const char *id, const char *field, long long delta,
                             const char *expect_status, long long *value)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(id) || !srv__redis_name_ok(field))
        return HL_INVAL;
    char *key = srv__redis_key("hl:job:", id, NULL);
    if (key == NULL)
        return HL_NOMEM;
    char d[24];
    snprintf(d, sizeof(d), "%lld", delta);
    const char *argv[8] = {"EVAL",
                           LUA_JOB_INCR,
                           "1",
                           key,
                           expect_status != NULL ? "1" : "0",
                           expect_status != NULL ? expect_status : "",
                           field,
                           d};
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        redisReply *r = NULL;
        st = srv__redis_op_cmd(&op, &r, 8, argv, NULL);
        if (st == HL_OK) {
            if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                r->element[0]->type != REDIS_REPLY_INTEGER)
                st = srv__redis_reply_fail(&op, "EVAL");
            else if (r->element[0]->integer == -1)
                st = HL_NOTFOUND;
            else if (r->element[0]->integer == 0)
                st = HL_BUSY;
            else if (r->element[0]->integer == -2)
                st = HL_FORMAT;
            else if (r->elements != 2 || r->element[1]->type != REDIS_REPLY_INTEGER)
                st = srv__redis_reply_fail(&op, "EVAL");
            else if (value != NULL)
                *value = r->element[1]->integer;
            freeReplyObject(r);
        }
        st = srv__redis_op_end(&op, st);
    }
    free(key);
    return st;
}

/* ---------------------------------------------------------------- cache and idempotency */

static hl_status rs_cache_get(srv_store *base, const char *key, char **job_id)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(key) || job_id == NULL)
        return HL_INVAL;
    *job_id = NULL;
    char *k = srv__redis_key("hl:cache:", key, NULL);
    if (k == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[2] = {"GET", k};
        redisReply *r = NULL;
        st = srv__redis_op_cmd(&op, &r, 2, argv, NULL);
        if (st == HL_OK) {
            if (r->type == REDIS_REPLY_NIL)
                st = HL_NOTFOUND;
            else if (r->type != REDIS_REPLY_STRING)
                st = srv__redis_reply_fail(&op, "GET");
            else if ((*job_id = dup_bytes(r->str, r->len)) == NULL)
                st = HL_NOMEM;
            freeReplyObject(r);
        }
        st = srv__redis_op_end(&op, st);
    }
    free(k);
    return st;
}

static hl_status rs_cache_put(srv_store *base, const char *key, const char *job_id, uint64_t ttl)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(key) || job_id == NULL)
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    char ttlbuf[24];
    snprintf(ttlbuf, sizeof(ttlbuf), "%" PRIu64, ttl);
    char *k = srv__redis_key("hl:cache:", key, NULL);
    if (k == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[5] = {"SET", k, job_id, "EX", ttlbuf};
        redisReply *r = NULL;
        st = srv__redis_op_cmd(&op, &r, ttl > 0 ? 5 : 3, argv, NULL);
        if (r != NULL)
            freeReplyObject(r);
        st = srv__redis_op_end(&op, st);
    }
    free(k);
    return st;
}

/* Interprets LUA_IDEM's reply: {1} stored, {0, existing} taken. */
static hl_status idem_reply(rs_op *op, const redisReply *r, char **existing)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return srv__redis_reply_fail(op, "EVAL");
    if (r->element[0]->integer == 1)
        return HL_OK;
    if (r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING)
        return srv__redis_reply_fail(op, "EVAL");
    if (existing != NULL) {
        *existing = dup_bytes(r->element[1]->str, r->element[1]->len);
        if (*existing == NULL)
            return HL_NOMEM;
    }
    return HL_BUSY;
}

static hl_status rs_idem_claim(srv_store *base, const char *key, const char *value, uint64_t ttl,
                               char **existing)
{
    rs_store *s = (rs_store *)base;
    if (existing != NULL)
        *existing = NULL;
    if (!srv__redis_name_ok(key) || value == NULL)
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    char ttlbuf[24];
    snprintf(ttlbuf, sizeof(ttlbuf), "%" PRIu64, ttl);
    char *k = srv__redis_key("hl:idem:", key, NULL);
    if (k == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[6] = {"EVAL", LUA_IDEM, "1", k, value, ttlbuf};
        redisReply *r = NULL;
        st = srv__redis_op_cmd(&op, &r, 6, argv, NULL);
        if (st == HL_OK) {
            st = idem_reply(&op, r, existing);
            freeReplyObject(r);
        }
        st = srv__redis_op_end(&op, st);
    }
    free(k);
    return st;
}

/* ---------------------------------------------------------------- owners */

#define RS_OWNER_MAX_MEMBERS 1024 /* members read (and so pruned) per admission */

/* ZRANGE of the owner set into a new array of malloc'd strings. */
static hl_status owner_members(rs_op *op, const char *zkey, char ***out, size_t *n)
{
    char last[16];
    snprintf(last, sizeof(last), "%d", RS_OWNER_MAX_MEMBERS - 1);
    const char *argv[4] = {"ZRANGE", zkey, "0", last};
    redisReply *r = NULL;
    *out = NULL;
    *n = 0;
    hl_status st = srv__redis_op_cmd(op, &r, 4, argv, NULL);
    if (st != HL_OK)
        return st;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return srv__redis_reply_fail(op, "ZRANGE");
    }
    char **m = calloc(r->elements > 0 ? r->elements : 1, sizeof(char *));
    st = m != NULL ? HL_OK : HL_NOMEM;
    for (size_t i = 0; st == HL_OK && i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            st = srv__redis_reply_fail(op, "ZRANGE");
        else if ((m[i] = dup_bytes(r->element[i]->str, r->element[i]->len)) == NULL)
            st = HL_NOMEM;
        *n = i + 1;
    }
    freeReplyObject(r);
    *out = m;
    return st;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

/* EVAL LUA_OWNER_ADMIT over the members read before. */
static hl_status owner_admit_eval(rs_op *op, const char *zkey, char **m, size_t nm,
                                  const char *job_id, unsigned limit, uint64_t grace)
{
    size_t argc = 4 + nm + 4 + nm;
    const char **argv = calloc(argc, sizeof(char *));
    char **jkeys = calloc(nm > 0 ? nm : 1, sizeof(char *));
    hl_status st = argv != NULL && jkeys != NULL ? HL_OK : HL_NOMEM;
    for (size_t i = 0; st == HL_OK && i < nm; i++)
        if ((jkeys[i] = srv__redis_key("hl:job:", m[i], NULL)) == NULL)
            st = HL_NOMEM;
    if (st == HL_OK) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        char nk[24], now[24], gr[24], lim[16];
        snprintf(nk, sizeof(nk), "%zu", nm + 1);
        snprintf(now, sizeof(now), "%lld", (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000);
        snprintf(gr, sizeof(gr), "%" PRIu64, grace * 1000);
        snprintf(lim, sizeof(lim), "%u", limit);
        size_t k = 0;
        argv[k++] = "EVAL";
        argv[k++] = LUA_OWNER_ADMIT;
        argv[k++] = nk;
        argv[k++] = zkey;
        for (size_t i = 0; i < nm; i++)
            argv[k++] = jkeys[i];
        argv[k++] = now;
        argv[k++] = gr;
        argv[k++] = lim;
        argv[k++] = job_id;
        for (size_t i = 0; i < nm; i++)
            argv[k++] = m[i];
        long long ok = 0;
        st = srv__redis_op_int(op, &ok, (int)argc, argv, NULL);
        if (st == HL_OK && ok != 1)
            st = HL_BUSY;
    }
    free_strings(jkeys, nm);
    free(argv);
    return st;
}

static hl_status rs_owner_admit(srv_store *base, const char *owner, const char *job_id,
                                unsigned limit, uint64_t grace)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(owner) || !srv__redis_name_ok(job_id) || grace > SRV_REDIS_MAX_TTL)
        return HL_INVAL;
    char *zkey = srv__redis_key("hl:owner:", owner, NULL);
    if (zkey == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        char **m = NULL;
        size_t nm = 0;
        st = owner_members(&op, zkey, &m, &nm);
        if (st == HL_OK)
            st = owner_admit_eval(&op, zkey, m, nm, job_id, limit, grace);
        free_strings(m, nm);
        st = srv__redis_op_end(&op, st);
    }
    free(zkey);
    return st;
}

static hl_status rs_owner_release(srv_store *base, const char *owner, const char *job_id)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(owner) || !srv__redis_name_ok(job_id))
        return HL_INVAL;
    char *zkey = srv__redis_key("hl:owner:", owner, NULL);
    if (zkey == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[3] = {"ZREM", zkey, job_id};
        long long removed = 0;
        st = srv__redis_op_int(&op, &removed, 3, argv, NULL);
        if (st == HL_OK && removed == 0)
            st = HL_NOTFOUND;
        st = srv__redis_op_end(&op, st);
    }
    free(zkey);
    return st;
}

static hl_status rs_idem_replace(srv_store *base, const char *key, const char *expected,
                                 const char *value, uint64_t ttl)
{
    rs_store *s = (rs_store *)base;
    if (!srv__redis_name_ok(key) || expected == NULL || value == NULL)
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    char ttlbuf[24];
    snprintf(ttlbuf, sizeof(ttlbuf), "%" PRIu64, ttl);
    char *k = srv__redis_key("hl:idem:", key, NULL);
    if (k == NULL)
        return HL_NOMEM;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st == HL_OK) {
        const char *argv[7] = {"EVAL", LUA_IDEM_REPLACE, "1", k, expected, value, ttlbuf};
        long long res = 0;
        st = srv__redis_op_int(&op, &res, 7, argv, NULL);
        if (st == HL_OK && res != 1)
            st = res < 0 ? HL_NOTFOUND : HL_BUSY;
        st = srv__redis_op_end(&op, st);
    }
    free(k);
    return st;
}

static hl_status rs_ping(srv_store *base)
{
    rs_store *s = (rs_store *)base;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st != HL_OK)
        return st;
    const char *argv[1] = {"PING"};
    redisReply *r = NULL;
    st = srv__redis_op_cmd(&op, &r, 1, argv, NULL);
    if (st == HL_OK) {
        if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
            st = srv__redis_reply_fail(&op, "PING");
        freeReplyObject(r);
    }
    return srv__redis_op_end(&op, st);
}

/* ---------------------------------------------------------------- blobs (store_redis_blob.c) */

static hl_status rs_result_put(srv_store *s, const char *id, const void *data, size_t len,
                               uint64_t ttl)
{
    return srv__redis_blob_put((rs_store *)s, "hl:res:", id, data, len, ttl);
}

static hl_status rs_result_get(srv_store *s, const char *id, void **data, size_t *len)
{
    return srv__redis_blob_get((rs_store *)s, "hl:res:", id, data, len);
}

static hl_status rs_result_delete(srv_store *s, const char *id)
{
    return srv__redis_blob_delete((rs_store *)s, "hl:res:", id);
}

static hl_status rs_input_put(srv_store *s, const char *id, const void *data, size_t len,
                              uint64_t ttl)
{
    return srv__redis_blob_put((rs_store *)s, "hl:in:", id, data, len, ttl);
}

static hl_status rs_input_get(srv_store *s, const char *id, void **data, size_t *len)
{
    return srv__redis_blob_get((rs_store *)s, "hl:in:", id, data, len);
}

static hl_status rs_input_delete(srv_store *s, const char *id)
{
    return srv__redis_blob_delete((rs_store *)s, "hl:in:", id);
}

/* ---------------------------------------------------------------- URL */

/* Parses 1..maxdigits decimal digits at *p into *out (advancing *p); 0 when there are none,
 * too many, or the value exceeds max. */
static int parse_small(const char **p, int maxdigits, long max, long *out)
{
    long v = 0;
    int n = 0;
    while (**p >= '0' && **p <= '9') {
        if (++n > maxdigits)
            return 0;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    if (n == 0 || v > max)
        return 0;
    *out = v;
    return 1;
}

/* Splits the authority's host at *p into s->host, advancing *p past it. */
static hl_status parse_host(const char **pp, rs_store *s, hl_error *err)
{
    const char *p = *pp, *hs = p, *he;
    int bracketed = *p == '[';
    if (bracketed) {
        hs = p + 1;
        he = strchr(hs, ']');
        if (he == NULL)
            return hl_error_set(err, HL_INVAL, "redis_url", "unterminated '[' in the host");
        p = he + 1;
    } else {
        he = p + strcspn(p, ":/?#[]");
        p = he;
    }
    size_t n = (size_t)(he - hs);
    if (n == 0)
        return hl_error_set(err, HL_INVAL, "redis_url",
                            "missing host (an IPv6 address goes in brackets: "
                            "redis://[::1]:6379)");
    if (n >= sizeof(s->host))
        return hl_error_set(err, HL_INVAL, "redis_url", "host is too long");
    memcpy(s->host, hs, n);
    s->host[n] = '\0';
    unsigned char addr[16];
    if (bracketed) {
        if (inet_pton(AF_INET6, s->host, addr) != 1)
            return hl_error_set(err, HL_INVAL, "redis_url", "'%s' is not an IPv6 address", s->host);
    } else if (strcasecmp(s->host, "localhost") == 0) {
        snprintf(s->host, sizeof(s->host), "localhost");
    } else if (inet_pton(AF_INET, s->host, addr) != 1) {
        return hl_error_set(err, HL_INVAL, "redis_url",
                            "host '%s' must be a literal IPv4 address, [IPv6 address] or "
                            "localhost (no name lookups)",
                            s->host);
    }
    *pp = p;
    return HL_OK;
}

/* redis://host:port[/db] with host a literal IPv4 address, [IPv6] or localhost, port 1-65535
 * and db 0-15. Nothing else is accepted (no user info, query or fragment). */
static hl_status parse_url(const char *url, rs_store *s, hl_error *err)
{
    static const char scheme[] = "redis://";
    if (url == NULL)
        return hl_error_set(err, HL_INVAL, "redis_url", "missing Redis URL");
    if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
        return hl_error_set(err, HL_INVAL, "redis_url",
                            "Redis URL must look like redis://host:port/db (got '%.60s')", url);
    if (strchr(url, '@') != NULL)
        return hl_error_set(err, HL_INVAL, "redis_url",
                            "user names and passwords in the Redis URL are not supported");
    const char *p = url + sizeof(scheme) - 1;
    hl_status st = parse_host(&p, s, err);
    if (st != HL_OK)
        return st;
    if (*p != ':')
        return hl_error_set(err, HL_INVAL, "redis_url", "missing ':port' after the host in '%.60s'",
                            url);
    p++;
    long port = 0, db = 0;
    if (!parse_small(&p, 5, 65535, &port) || port < 1)
        return hl_error_set(err, HL_INVAL, "redis_url", "port must be a number in 1-65535");
    if (*p == '/') {
        p++;
        if (!parse_small(&p, 2, 15, &db))
            return hl_error_set(err, HL_INVAL, "redis_url",
                                "database must be a number in 0-15 after '/'");
    }
    if (*p != '\0')
        return hl_error_set(err, HL_INVAL, "redis_url",
                            "unexpected '%.20s' in the Redis URL (expected redis://host:port/db)",
                            p);
    s->port = (int)port;
    s->db = (int)db;
    return HL_OK;
}

/* ---------------------------------------------------------------- lifecycle */

/* A seed for blob write nonces, different in every process (replicas share Redis). */
static uint64_t gen_seed(void)
{
    uint64_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof(seed)) != (ssize_t)sizeof(seed))
            seed = 0;
        close(fd);
    }
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    seed ^= (uint64_t)t.tv_sec * 1000000007ull ^ (uint64_t)t.tv_nsec ^ ((uint64_t)getpid() << 32);
    return seed;
}

static void rs_destroy(srv_store *base)
{
    rs_store *s = (rs_store *)base;
    if (s == NULL)
        return;
    /* No call may be in flight (store.h): only idle connections remain. */
    for (int i = 0; i < s->n_idle; i++)
        redisFree(s->idle[i]);
    free(s->idle);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void srv_store_redis_last_error(srv_store *s, char *buf, size_t n)
{
    if (buf == NULL || n == 0)
        return;
    buf[0] = '\0';
    if (s == NULL || s->ops != &rs_ops)
        return;
    rs_store *rs = (rs_store *)s;
    pthread_mutex_lock(&rs->lock);
    (void)snprintf(buf, n, "%s", rs->last_error);
    pthread_mutex_unlock(&rs->lock);
}

static const srv_store_ops rs_ops = {
    .name = "redis",
    .job_create = rs_job_create,
    .job_get = rs_job_get,
    .job_update = rs_job_update,
    .job_delete = rs_job_delete,
    .job_incr = rs_job_incr,
    .result_put = rs_result_put,
    .result_get = rs_result_get,
    .result_delete = rs_result_delete,
    .input_put = rs_input_put,
    .input_get = rs_input_get,
    .input_delete = rs_input_delete,
    .cache_get = rs_cache_get,
    .cache_put = rs_cache_put,
    .idem_claim = rs_idem_claim,
    .idem_replace = rs_idem_replace,
    .owner_admit = rs_owner_admit,
    .owner_release = rs_owner_release,
    .state_put = srv__redis_state_put,
    .state_append = srv__redis_state_append,
    .state_head = srv__redis_state_head,
    .state_get = srv__redis_state_get,
    .state_delete = srv__redis_state_delete,
    .state_clone = srv__redis_state_clone,
    .lock = srv__redis_lock,
    .unlock = srv__redis_unlock,
    .ping = rs_ping,
    .destroy = rs_destroy,
};

/* The pool's mutex and a condition variable on the monotonic clock (deadlines use it). */
static hl_status sync_init(rs_store *s)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return HL_NOMEM;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&s->freed, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return HL_NOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pthread_cond_destroy(&s->freed);
        return HL_NOMEM;
    }
    return HL_OK;
}

hl_status srv_store_redis_new(const char *url, int timeout_ms, int pool_size, srv_store **out,
                              hl_error *err)
{
    if (out == NULL)
        return hl_error_set(err, HL_INVAL, NULL, "srv_store_redis_new: out is NULL");
    *out = NULL;
    if (timeout_ms < 1 || timeout_ms > SRV_REDIS_MAX_TIMEOUT_MS)
        return hl_error_set(err, HL_INVAL, "redis_timeout_ms", "Redis timeout must be 1-%d ms",
                            SRV_REDIS_MAX_TIMEOUT_MS);
    if (pool_size < 1 || pool_size > SRV_REDIS_MAX_POOL)
        return hl_error_set(err, HL_INVAL, "redis_pool", "Redis pool size must be 1-%d",
                            SRV_REDIS_MAX_POOL);
    rs_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "cannot allocate the Redis store");
    hl_status st = parse_url(url, s, err);
    if (st != HL_OK) {
        free(s);
        return st;
    }
    s->idle = calloc((size_t)pool_size, sizeof(redisContext *));
    if (s->idle == NULL || sync_init(s) != HL_OK) {
        free(s->idle);
        free(s);
        return hl_error_set(err, HL_NOMEM, NULL, "cannot allocate the Redis connection pool");
    }
    s->base.ops = &rs_ops;
    s->timeout_ms = timeout_ms;
    s->pool_size = pool_size;
    s->gen_seed = gen_seed();
    atomic_init(&s->gen_next, 1);
    *out = &s->base;
    return HL_OK;
}
