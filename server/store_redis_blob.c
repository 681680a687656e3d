/*
 * store_redis_blob.c - results and inputs in the Redis store, chunked (see store_redis.c for
 * the layout and the write/read/delete protocol that keeps readers from ever seeing a
 * half-written blob).
 */
#include "store_redis_int.h"

#include "hl/crc32c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_MAX_CHUNK_BYTES ((uint64_t)512 << 20) /* Redis's own cap on a string value */
#define RS_MAX_CHUNKS      ((uint64_t)1 << 20)   /* bounds every loop over chunk keys */
#define RS_READ_ATTEMPTS   8                     /* reads of a blob rewritten under us */
#define RS_DEL_BATCH       8                     /* chunk keys per DEL */
#define RS_CHUNK_GRACE_MS  1000                  /* chunks outlive their meta by this much */

/* Removes a blob's meta and returns its chunk count (-1 when there was no meta). */
static const char LUA_META_DEL[] = "local c = redis.call('HGET', KEYS[1], 'count')\n"
                                   "redis.call('DEL', KEYS[1])\n"
                                   "if c then return tonumber(c) or 0 end\n"
                                   "return -1\n";

/* KEYS: meta, chunk 0, chunk 1, ...; ARGV: count, size, chunk_size, crc32c, gen, ttl.
 * Returns 0 if a chunk is missing. Otherwise writes the meta and, with a TTL, gives every
 * chunk RS_CHUNK_GRACE_MS more than the meta. Both expiries are set here, with the same
 * command and clock, so the meta always expires first. */
static const char LUA_META_SET[] =
    "for i = 2, #KEYS do\n"
    "  if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 'count', ARGV[1], 'size', ARGV[2], 'chunk_size', ARGV[3],\n"
    "           'crc32c', ARGV[4], 'gen', ARGV[5])\n"
    "local ttl = tonumber(ARGV[6])\n"
    "if ttl > 0 then\n"
    "  for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl * 1000 + tonumber(ARGV[7])) end\n"
    "  redis.call('PEXPIRE', KEYS[1], ttl * 1000)\n"
    "end\n"
    "return 1\n";

typedef struct blob_meta {
    uint64_t count;
    uint64_t size;
    uint64_t chunk_size;
    uint32_t crc;
    uint64_t gen;
} blob_meta;

/* Parses all of p[0..n) as an unsigned number in `base`; 0 on junk, sign or overflow. */
static int parse_u64(const char *p, size_t n, int base, uint64_t *out)
{
    if (n == 0 || n > 20)
        return 0;
    char buf[24];
    memcpy(buf, p, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        int ok = (c >= '0' && c <= '9') ||
                 (base == 16 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
        if (!ok)
            return 0;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(buf, &end, base);
    if (errno != 0 || end != buf + n)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Fills *m from an HGETALL reply; 0 when a field is missing or malformed, or the numbers
 * disagree with each other. */
static int meta_from_reply(const redisReply *r, blob_meta *m)
{
    unsigned seen = 0;
    uint64_t crc = 0;
    static const char *const names[] = {"count", "size", "chunk_size", "crc32c", "gen"};
    uint64_t *dst[] = {&m->count, &m->size, &m->chunk_size, &crc, &m->gen};
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return 0;
        for (unsigned j = 0; j < 5; j++) {
            if (k->len == strlen(names[j]) && memcmp(k->str, names[j], k->len) == 0) {
                int base = j >= 3 ? 16 : 10;
                if (!parse_u64(v->str, v->len, base, dst[j]))
                    return 0;
                seen |= 1u << j;
            }
        }
    }
    if (seen != 0x1f || crc > UINT32_MAX || m->chunk_size == 0 ||
        m->chunk_size > RS_MAX_CHUNK_BYTES || m->count > RS_MAX_CHUNKS || m->size > SIZE_MAX)
        return 0;
    m->crc = (uint32_t)crc;
    uint64_t want = m->size / m->chunk_size + (m->size % m->chunk_size != 0);
    return m->count == want;
}

/* Reads the meta of a blob: HL_NOTFOUND when absent, HL_CHECKSUM when malformed. */
static hl_status meta_read(rs_op *op, const char *prefix, const char *id, blob_meta *m)
{
    char *key = srv__redis_key(prefix, id, "meta");
    if (key == NULL)
        return HL_NOMEM;
    const char *argv[2] = {"HGETALL", key};
    redisReply *r = NULL;
    hl_status st = srv__redis_op_cmd(op, &r, 2, argv, NULL);
    if (st == HL_OK) {
        if (r->type != REDIS_REPLY_ARRAY)
            st = srv__redis_reply_fail(op, "HGETALL");
        else if (r->elements == 0)
            st = HL_NOTFOUND;
        else if (!meta_from_reply(r, m))
            st = srv__redis_fail(op->s, HL_CHECKSUM, "redis: %s is malformed", key);
        freeReplyObject(r);
    }
    free(key);
    return st;
}

/* Reads and verifies the chunks described by *m into a new buffer. HL_CHECKSUM means a chunk
 * is missing, has the wrong length, or the bytes fail the CRC. */
static hl_status chunks_read(rs_op *op, const char *prefix, const char *id, const blob_meta *m,
                             void **data)
{
    size_t size = (size_t)m->size;
    unsigned char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return srv__redis_fail(op->s, HL_NOMEM, "redis: cannot allocate %zu bytes for %s%s", size,
                               prefix, id);
    hl_status st = HL_OK;
    uint32_t crc = 0;
    size_t off = 0;
    for (uint64_t i = 0; i < m->count && st == HL_OK; i++) {
        char *key = srv__redis_chunk_key(prefix, id, i);
        if (key == NULL) {
            st = HL_NOMEM;
            break;
        }
        const char *argv[2] = {"GET", key};
        redisReply *r = NULL;
        st = srv__redis_op_cmd(op, &r, 2, argv, NULL);
        if (st == HL_OK) {
            size_t want = size - off < m->chunk_size ? size - off : (size_t)m->chunk_size;
            if (r->type == REDIS_REPLY_NIL)
                st = srv__redis_fail(op->s, HL_CHECKSUM, "redis: %s is missing", key);
            else if (r->type != REDIS_REPLY_STRING)
                st = srv__redis_reply_fail(op, "GET");
            else if (r->len != want)
                st = srv__redis_fail(op->s, HL_CHECKSUM, "redis: %s has %zu bytes, expected %zu",
                                     key, r->len, want);
            else {
                memcpy(buf + off, r->str, want);
                crc = hl_crc32c(crc, buf + off, want);
                off += want;
            }
            freeReplyObject(r);
        }
        free(key);
    }
    if (st == HL_OK && crc != m->crc)
        st = srv__redis_fail(op->s, HL_CHECKSUM,
                             "redis: %s%s: CRC-32C %08" PRIx32 ", expected %08" PRIx32, prefix, id,
                             crc, m->crc);
    if (st != HL_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    return HL_OK;
}

/* Removes a blob: the meta first (so readers stop at once), then chunks 0, 1, ... up to the
 * meta's count and beyond it while they exist (leftovers of an interrupted write).
 * *existed is set when there was a meta. */
static hl_status blob_remove(rs_op *op, const char *prefix, const char *id, int *existed)
{
    char *mkey = srv__redis_key(prefix, id, "meta");
    if (mkey == NULL)
        return HL_NOMEM;
    const char *margv[4] = {"EVAL", LUA_META_DEL, "1", mkey};
    long long count = -1;
    hl_status st = srv__redis_op_int(op, &count, 4, margv, NULL);
    free(mkey);
    if (st != HL_OK)
        return st;
    *existed = count >= 0;
    uint64_t first = 0;
    for (; first < RS_MAX_CHUNKS && st == HL_OK; first += RS_DEL_BATCH) {
        const char *argv[1 + RS_DEL_BATCH] = {"DEL"};
        char *keys[RS_DEL_BATCH] = {NULL};
        for (int j = 0; j < RS_DEL_BATCH && st == HL_OK; j++) {
            keys[j] = srv__redis_chunk_key(prefix, id, first + (uint64_t)j);
            argv[1 + j] = keys[j];
            if (keys[j] == NULL)
                st = HL_NOMEM;
        }
        long long removed = 0;
        if (st == HL_OK)
            st = srv__redis_op_int(op, &removed, 1 + RS_DEL_BATCH, argv, NULL);
        for (int j = 0; j < RS_DEL_BATCH; j++)
            free(keys[j]);
        /* Past the meta's count, go on only while whole batches existed. */
        if (first + RS_DEL_BATCH >= (uint64_t)(count > 0 ? count : 0) && removed < RS_DEL_BATCH)
            break;
    }
    return st;
}

/* Writes the meta last, after checking every chunk is still there, and sets the expiries
 * (LUA_META_SET). */
static hl_status meta_write(rs_op *op, const char *prefix, const char *id, const blob_meta *m,
                            uint64_t ttl)
{
    size_t nkeys = 1 + (size_t)m->count;
    size_t argc = 3 + nkeys + 7;
    const char **argv = calloc(argc, sizeof(*argv));
    char **keys = calloc(nkeys, sizeof(*keys));
    hl_status st = argv != NULL && keys != NULL ? HL_OK : HL_NOMEM;
    for (size_t i = 0; i < nkeys && st == HL_OK; i++)
        keys[i] =
            i == 0 ? srv__redis_key(prefix, id, "meta") : srv__redis_chunk_key(prefix, id, i - 1);
    for (size_t i = 0; i < nkeys && st == HL_OK; i++)
        st = keys[i] != NULL ? HL_OK : HL_NOMEM;
    if (st == HL_OK) {
        char nk[24], count[24], size[24], chunk[24], crc[12], gen[20], ttlbuf[24], grace[16];
        snprintf(nk, sizeof(nk), "%zu", nkeys);
        snprintf(count, sizeof(count), "%" PRIu64, m->count);
        snprintf(size, sizeof(size), "%" PRIu64, m->size);
        snprintf(chunk, sizeof(chunk), "%" PRIu64, m->chunk_size);
        snprintf(crc, sizeof(crc), "%08" PRIx32, m->crc);
        snprintf(gen, sizeof(gen), "%016" PRIx64, m->gen);
        snprintf(ttlbuf, sizeof(ttlbuf), "%" PRIu64, ttl);
        snprintf(grace, sizeof(grace), "%d", RS_CHUNK_GRACE_MS);
        const char *tail[7] = {count, size, chunk, crc, gen, ttlbuf, grace};
        argv[0] = "EVAL";
        argv[1] = LUA_META_SET;
        argv[2] = nk;
        for (size_t i = 0; i < nkeys; i++)
            argv[3 + i] = keys[i];
        for (size_t i = 0; i < 7; i++)
            argv[3 + nkeys + i] = tail[i];
        long long ok = 0;
        st = srv__redis_op_int(op, &ok, (int)argc, argv, NULL);
        if (st == HL_OK && ok != 1)
            st = srv__redis_fail(op->s, HL_BUSY,
                                 "redis: %s%s: a chunk vanished before the meta was "
                                 "written (concurrent delete or expiry)",
                                 prefix, id);
    }
    for (size_t i = 0; keys != NULL && i < nkeys; i++)
        free(keys[i]);
    free(keys);
    free(argv);
    return st;
}

hl_status srv__redis_blob_put(rs_store *s, const char *prefix, const char *id, const void *data,
                              size_t len, uint64_t ttl)
{
    if (!srv__redis_name_ok(id) || (data == NULL && len > 0))
        return HL_INVAL;
    if (ttl > SRV_REDIS_MAX_TTL)
        return HL_RANGE;
    blob_meta m = {.size = len, .chunk_size = SRV_REDIS_CHUNK_BYTES};
    m.count = len / SRV_REDIS_CHUNK_BYTES + (len % SRV_REDIS_CHUNK_BYTES != 0);
    if (m.count > RS_MAX_CHUNKS)
        return HL_RANGE;
    m.gen = s->gen_seed + atomic_fetch_add(&s->gen_next, 1) * 0x9E3779B97F4A7C15ull;
    char ttlbuf[24];
    snprintf(ttlbuf, sizeof(ttlbuf), "%" PRIu64, ttl);
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st != HL_OK)
        return st;
    int existed = 0;
    st = blob_remove(&op, prefix, id, &existed);
    const unsigned char *p = data;
    for (uint64_t i = 0; i < m.count && st == HL_OK; i++) {
        size_t off = (size_t)i * SRV_REDIS_CHUNK_BYTES;
        size_t n = len - off < SRV_REDIS_CHUNK_BYTES ? len - off : SRV_REDIS_CHUNK_BYTES;
        char *key = srv__redis_chunk_key(prefix, id, i);
        if (key == NULL) {
            st = HL_NOMEM;
            break;
        }
        const char *argv[5] = {"SET", key, (const char *)(p + off), "EX", ttlbuf};
        size_t lens[5] = {3, strlen(key), n, 2, strlen(ttlbuf)};
        redisReply *r = NULL;
        st = srv__redis_op_cmd(&op, &r, ttl > 0 ? 5 : 3, argv, lens);
        if (r != NULL)
            freeReplyObject(r);
        m.crc = hl_crc32c(m.crc, p + off, n);
        free(key);
    }
    if (st == HL_OK)
        st = meta_write(&op, prefix, id, &m, ttl);
    return srv__redis_op_end(&op, st);
}

hl_status srv__redis_blob_get(rs_store *s, const char *prefix, const char *id, void **data,
                              size_t *len)
{
    if (!srv__redis_name_ok(id) || data == NULL || len == NULL)
        return HL_INVAL;
    *data = NULL;
    *len = 0;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st != HL_OK)
        return st;
    st = HL_BUSY; /* what remains if every attempt raced with a rewrite */
    for (int attempt = 0; attempt < RS_READ_ATTEMPTS; attempt++) {
        blob_meta m = {0}, again = {0};
        hl_status rd = meta_read(&op, prefix, id, &m);
        if (rd == HL_OK)
            rd = chunks_read(&op, prefix, id, &m, data);
        if (rd == HL_OK)
            *len = (size_t)m.size;
        if (rd != HL_CHECKSUM) {
            st = rd; /* done, absent, or a hard error */
            break;
        }
        /* A mismatch: look at the meta again to tell damage from a concurrent change. */
        hl_status again_st = meta_read(&op, prefix, id, &again);
        if (again_st != HL_OK) {
            st = again_st; /* HL_NOTFOUND: deleted under us */
            break;
        }
        if (again.gen == m.gen) {
            st = HL_CHECKSUM; /* same write, bad bytes: the stored blob is damaged */
            break;
        }
    }
    if (st == HL_BUSY)
        srv__redis_fail(s, st, "redis: %s%s was rewritten during %d reads", prefix, id,
                        RS_READ_ATTEMPTS);
    return srv__redis_op_end(&op, st);
}

hl_status srv__redis_blob_delete(rs_store *s, const char *prefix, const char *id)
{
    if (!srv__redis_name_ok(id))
        return HL_INVAL;
    rs_op op;
    hl_status st = srv__redis_op_begin(s, &op);
    if (st != HL_OK)
        return st;
    int existed = 0;
    st = blob_remove(&op, prefix, id, &existed);
    if (st == HL_OK && !existed)
        st = HL_NOTFOUND;
    return srv__redis_op_end(&op, st);
}
