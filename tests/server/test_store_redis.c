/*
 * test_store_redis.c - the Redis store: the shared conformance cases (store_conformance.c)
 * against a real redis-server on a loopback port, then what is specific to Redis: URL and
 * parameter validation, the exact key layout (a state clone's too), corruption detection, error
 * replies, the connection pool, and outages (nothing listening, a silent peer, a frozen server, a
 * restarted server, killed connections, a peer that hangs up mid-write).
 *
 * A missing redis-server fails the "conformance" and "redis" cases with a message (the
 * unchecked fixture aborts); it never skips them.
 */
#include "hl/crc32c.h"
#include "redis_harness.h"
#include "store.h"
#include "store_conformance.h"
#include "store_redis.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 5000 /* per call: generous, for sanitizer builds moving 64 MiB chunks */

static rh_server g_rh; /* the shared server of the "conformance" and "redis" cases */

static void shared_up(void)
{
    if (rh_start(&g_rh) != 0)
        ck_abort_msg("cannot start redis-server: %s", g_rh.msg);
}

static void shared_down(void)
{
    rh_stop(&g_rh);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static srv_store *open_store(const char *url, int timeout_ms, int pool)
{
    srv_store *s = NULL;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = srv_store_redis_new(url, timeout_ms, pool, &s, &err);
    ck_assert_msg(st == HL_OK && s != NULL, "srv_store_redis_new(%s): %s: %s", url,
                  hl_status_name(st), err.msg);
    return s;
}

/* The conformance factory: an empty database and a new store. */
static hl_status make_redis(void *ud, srv_store **out)
{
    (void)ud;
    if (rh_command(&g_rh, "FLUSHALL") != 0)
        return HL_UNAVAILABLE;
    hl_error err;
    hl_error_clear(&err);
    return srv_store_redis_new(g_rh.url, TIMEOUT_MS, 4, out, &err);
}

static void assert_last_error(srv_store *s, const char *needle)
{
    char msg[256];
    srv_store_redis_last_error(s, msg, sizeof(msg));
    ck_assert_msg(strstr(msg, needle) != NULL, "last error '%s' does not mention '%s'", msg,
                  needle);
}

/* A direct command on the shared server; the reply is returned (never an error reply). */
static redisReply *direct(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL && r->type != REDIS_REPLY_ERROR, "direct '%s': %s", fmt,
                  r != NULL ? r->str : c->errstr);
    return r;
}

static long long direct_int(redisContext *c, const char *fmt, const char *key)
{
    redisReply *r = direct(c, fmt, key);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static char *direct_str(redisContext *c, const char *fmt, const char *a, const char *b)
{
    redisReply *r = direct(c, fmt, a, b);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static void assert_direct_str(redisContext *c, const char *fmt, const char *a, const char *b,
                              const char *want)
{
    char *v = direct_str(c, fmt, a, b);
    ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s %s %s: '%s', expected '%s'", fmt, a,
                  b != NULL ? b : "", v != NULL ? v : "(nil)", want);
    free(v);
}

static unsigned char *bytes(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 2654435761u + seed) >> 7);
    return p;
}

/* ---------------------------------------------------------------- configuration */

START_TEST(url_rejected)
{
    static const char *const bad[] = {
        "",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://127.0.0.1",
        "redis://127.0.0.1:",
        "redis://127.0.0.1:0",
        "redis://127.0.0.1:65536",
        "redis://127.0.0.1:123456",
        "redis://127.0.0.1:+6379",
        "redis://127.0.0.1:6379x",
        "redis://127.0.0.1:6379/",
        "redis://127.0.0.1:6379/16",
        "redis://127.0.0.1:6379/-1",
        "redis://127.0.0.1:6379/1/2",
        "redis://127.0.0.1:6379?db=1",
        "redis://127.0.0.1:6379#x",
        "redis://example.com:6379",
        "redis://redis:6379",
        "redis://user:secret@127.0.0.1:6379",
        "redis://::1:6379",
        "redis://[::1:6379",
        "redis://[127.0.0.1]:6379",
        "redis://[::1]6379",
        "redis://256.1.1.1:6379",
        "redis://1.2.3:6379",
        "redis:// 127.0.0.1:6379",
        "redis://127.0.0.1 :6379",
        "rediss://127.0.0.1:6379",
        "unix:///tmp/redis.sock",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        static srv_store dummy;
        srv_store *s = &dummy; /* must be reset to NULL */
        hl_error err;
        hl_error_clear(&err);
        hl_status st = srv_store_redis_new(bad[i], 1000, 2, &s, &err);
        ck_assert_msg(st == HL_INVAL, "'%s' accepted (%s)", bad[i], hl_status_name(st));
        ck_assert_int_eq(err.code, HL_INVAL);
        ck_assert_msg(err.msg[0] != '\0', "'%s': no message", bad[i]);
        ck_assert_ptr_null(s);
    }
    srv_store *s = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_store_redis_new(NULL, 1000, 2, &s, &err), HL_INVAL);
    ck_assert_ptr_null(s);
}
END_TEST

/* Valid URLs give a store without connecting (nothing listens on these ports). */
START_TEST(url_accepted)
{
    static const char *const good[] = {
        "redis://127.0.0.1:6379",  "redis://127.0.0.1:1/15", "redis://localhost:6379/0",
        "REDIS://LOCALHOST:65535", "redis://[::1]:6379/3",   "redis://[::ffff:127.0.0.1]:9",
        "redis://10.0.0.1:6379/7",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        srv_store *s = open_store(good[i], 1000, 2);
        ck_assert_str_eq(s->ops->name, "redis");
        s->ops->destroy(s);
    }
}
END_TEST

START_TEST(params_rejected)
{
    static const int bad[][2] = {{0, 2}, {-1, 2}, {600001, 2}, {1000, 0}, {1000, -3}, {1000, 257}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        srv_store *s = NULL;
        hl_error err;
        hl_error_clear(&err);
        hl_status st =
            srv_store_redis_new("redis://127.0.0.1:6379", bad[i][0], bad[i][1], &s, &err);
        ck_assert_msg(st == HL_INVAL && s == NULL && err.msg[0] != '\0', "timeout %d pool %d: %s",
                      bad[i][0], bad[i][1], hl_status_name(st));
    }
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_store_redis_new("redis://127.0.0.1:6379", 1000, 1, NULL, &err), HL_INVAL);
}
END_TEST

START_TEST(arguments_rejected)
{
    srv_store *s = open_store("redis://127.0.0.1:6379", 1000, 1); /* no call reaches Redis */
    const srv_field f[] = {{"status", "queued"}};
    const srv_field nameless[] = {{"", "x"}};
    const srv_field valueless[] = {{"status", NULL}};
    char *v = NULL;
    void *p = NULL;
    size_t n = 0;
    ck_assert_int_eq(s->ops->job_create(s, "", f, 1), HL_INVAL);
    ck_assert_int_eq(s->ops->job_create(s, NULL, f, 1), HL_INVAL);
    ck_assert_int_eq(s->ops->job_create(s, "j", f, 0), HL_INVAL); /* Redis has no empty hash */
    ck_assert_int_eq(s->ops->job_create(s, "j", nameless, 1), HL_INVAL);
    ck_assert_int_eq(s->ops->job_update(s, "j", valueless, 1, NULL, 0), HL_INVAL);
    ck_assert_int_eq(s->ops->job_update(s, "j", f, 1, NULL, SRV_REDIS_MAX_TTL + 1), HL_RANGE);
    ck_assert_int_eq(s->ops->result_put(s, "r", NULL, 5, 0), HL_INVAL);
    ck_assert_int_eq(s->ops->result_get(s, "", &p, &n), HL_INVAL);
    ck_assert_int_eq(s->ops->cache_get(s, "", &v), HL_INVAL);
    ck_assert_int_eq(s->ops->cache_put(s, "k", NULL, 0), HL_INVAL);
    ck_assert_int_eq(s->ops->idem_claim(s, "k", NULL, 0, &v), HL_INVAL);
    s->ops->destroy(s);
    char msg[16] = "junk";
    srv_store_ops other = {.name = "memory"};
    srv_store fake = {.ops = &other};
    srv_store_redis_last_error(&fake, msg, sizeof(msg));
    ck_assert_str_eq(msg, "");
}
END_TEST

/* ---------------------------------------------------------------- layout and integrity */

START_TEST(key_layout)
{
    srv_store *s = open_store(g_rh.url, TIMEOUT_MS, 2);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    redisContext *c = rh_connect(&g_rh);
    ck_assert_ptr_nonnull(c);
    const srv_field f[] = {{"status", "queued"}, {"n", "1"}};
    ck_assert_int_eq(s->ops->job_create(s, "j1", f, 2), HL_OK);
    assert_direct_str(c, "HGET %s %s", "hl:job:j1", "status", "queued");
    ck_assert_int_eq(direct_int(c, "TTL %s", "hl:job:j1"), -1);
    ck_assert_int_eq(s->ops->job_update(s, "j1", f, 1, "queued", 100), HL_OK);
    long long ttl = direct_int(c, "TTL %s", "hl:job:j1");
    ck_assert_msg(ttl > 0 && ttl <= 100, "job TTL %lld", ttl);

    unsigned char *data = bytes(3000, 1);
    ck_assert_int_eq(s->ops->result_put(s, "r1", data, 3000, 100), HL_OK);
    ck_assert_int_eq(direct_int(c, "STRLEN %s", "hl:res:r1:0"), 3000);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:res:r1:1"), 0);
    assert_direct_str(c, "HGET %s %s", "hl:res:r1:meta", "count", "1");
    assert_direct_str(c, "HGET %s %s", "hl:res:r1:meta", "size", "3000");
    assert_direct_str(c, "HGET %s %s", "hl:res:r1:meta", "chunk_size", "67108864");
    char crc[16];
    snprintf(crc, sizeof(crc), "%08x", (unsigned)hl_crc32c(0, data, 3000));
    assert_direct_str(c, "HGET %s %s", "hl:res:r1:meta", "crc32c", crc);
    char *gen = direct_str(c, "HGET %s %s", "hl:res:r1:meta", "gen");
    ck_assert_msg(gen != NULL && strlen(gen) == 16 && strspn(gen, "0123456789abcdef") == 16,
                  "gen '%s'", gen);
    free(gen);
    long long pttl_chunk = direct_int(c, "PTTL %s", "hl:res:r1:0");
    long long pttl_meta = direct_int(c, "PTTL %s", "hl:res:r1:meta");
    /* The meta expires first: the chunks get a second more. */
    ck_assert_msg(pttl_meta > 0 && pttl_meta <= 100000 && pttl_chunk > pttl_meta + 500 &&
                      pttl_chunk <= 101000,
                  "meta PTTL %lld, chunk PTTL %lld", pttl_meta, pttl_chunk);

    ck_assert_int_eq(s->ops->input_put(s, "r1", data, 3000, 0), HL_OK);
    ck_assert_int_eq(direct_int(c, "STRLEN %s", "hl:in:r1:0"), 3000);
    ck_assert_int_eq(direct_int(c, "TTL %s", "hl:in:r1:0"), -1);
    ck_assert_int_eq(direct_int(c, "TTL %s", "hl:in:r1:meta"), -1);

    ck_assert_int_eq(s->ops->cache_put(s, "abc", "j1", 50), HL_OK);
    assert_direct_str(c, "GET %s", "hl:cache:abc", NULL, "j1");
    ttl = direct_int(c, "TTL %s", "hl:cache:abc");
    ck_assert_msg(ttl > 0 && ttl <= 50, "cache TTL %lld", ttl);
    char *old = NULL;
    ck_assert_int_eq(s->ops->idem_claim(s, "key1", "j1 body", 60, &old), HL_OK);
    assert_direct_str(c, "GET %s", "hl:idem:key1", NULL, "j1 body");
    ttl = direct_int(c, "TTL %s", "hl:idem:key1");
    ck_assert_msg(ttl > 0 && ttl <= 60, "idem TTL %lld", ttl);

    ck_assert_int_eq(s->ops->result_delete(s, "r1"), HL_OK);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:res:r1:meta"), 0);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:res:r1:0"), 0);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:in:r1:0"), 1);
    free(data);
    redisFree(c);
    s->ops->destroy(s);
}
END_TEST

/* A clone's keys: its own pointer ("1:g:1:B:0:g", B the base's bytes), its own meta (same
 * count, size and CRC, a gen of its own) and chunks, with the clone's TTL (chunks outliving
 * the meta) whatever the source's; deleting the source leaves every key of the clone. */
START_TEST(state_clone_layout)
{
    srv_store *s = open_store(g_rh.url, TIMEOUT_MS, 2);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    redisContext *c = rh_connect(&g_rh);
    ck_assert_ptr_nonnull(c);
    unsigned char *data = bytes(5000, 3);
    uint64_t tag = 0;
    ck_assert_int_eq(s->ops->state_put(s, "src", data, 5000, 1, 0, NULL), HL_OK);
    ck_assert_int_eq(s->ops->state_clone(s, "src", "dst", 1, 100, &tag), HL_OK);
    char g[17], want[96], meta[96], chunk[96], smeta[96];
    snprintf(g, sizeof(g), "%016llx", (unsigned long long)tag);
    snprintf(want, sizeof(want), "1:%s:1:5000:0:%s", g, g);
    assert_direct_str(c, "GET %s", "hl:state:dst", NULL, want);
    snprintf(meta, sizeof(meta), "hl:state:dst:v1.%s:meta", g);
    snprintf(chunk, sizeof(chunk), "hl:state:dst:v1.%s:0", g);
    assert_direct_str(c, "HGET %s %s", meta, "size", "5000");
    assert_direct_str(c, "HGET %s %s", meta, "count", "1");
    char crc[16];
    snprintf(crc, sizeof(crc), "%08x", (unsigned)hl_crc32c(0, data, 5000));
    assert_direct_str(c, "HGET %s %s", meta, "crc32c", crc);
    char *src_ptr = direct_str(c, "GET %s", "hl:state:src", NULL);
    ck_assert_ptr_nonnull(src_ptr);
    snprintf(smeta, sizeof(smeta), "hl:state:src:v1.%.16s:meta", strchr(src_ptr, ':') + 1);
    char *sgen = direct_str(c, "HGET %s %s", smeta, "gen"),
         *dgen = direct_str(c, "HGET %s %s", meta, "gen");
    ck_assert_msg(sgen != NULL && dgen != NULL && strcmp(sgen, dgen) != 0, "gens %s %s", sgen,
                  dgen);
    free(sgen);
    free(dgen);
    free(src_ptr);
    ck_assert_int_eq(direct_int(c, "STRLEN %s", chunk), 5000);
    long long pm = direct_int(c, "PTTL %s", meta), pc = direct_int(c, "PTTL %s", chunk),
              pp = direct_int(c, "PTTL %s", "hl:state:dst");
    ck_assert_msg(pm > 0 && pm <= 100000 && pc > pm + 500 && pc <= 101000 && pp > 0 && pp <= 100000,
                  "PTTL pointer %lld, meta %lld, chunk %lld", pp, pm, pc);
    ck_assert_int_eq(direct_int(c, "PTTL %s", "hl:state:src"), -1);
    ck_assert_int_eq(s->ops->state_delete(s, "src"), HL_OK);
    redisReply *k = direct(c, "KEYS hl:state:src*");
    ck_assert_uint_eq(k->elements, 0);
    freeReplyObject(k);
    k = direct(c, "KEYS hl:state:dst*");
    ck_assert_uint_eq(k->elements, 3);
    freeReplyObject(k);
    free(data);
    redisFree(c);
    s->ops->destroy(s);
}
END_TEST

/* Two chunks for a blob just over 64 MiB; a smaller rewrite and a delete leave no chunk
 * behind; chunks without a meta (an interrupted write) are invisible and cleaned up. */
START_TEST(chunk_layout)
{
    srv_store *s = open_store(g_rh.url, TIMEOUT_MS, 2);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    redisContext *c = rh_connect(&g_rh);
    ck_assert_ptr_nonnull(c);
    size_t n = SRV_REDIS_CHUNK_BYTES + 5;
    unsigned char *big = calloc(n, 1);
    ck_assert_ptr_nonnull(big);
    big[n - 1] = 7;
    ck_assert_int_eq(s->ops->result_put(s, "big", big, n, 0), HL_OK);
    free(big);
    ck_assert_int_eq(direct_int(c, "STRLEN %s", "hl:res:big:0"), (long long)SRV_REDIS_CHUNK_BYTES);
    ck_assert_int_eq(direct_int(c, "STRLEN %s", "hl:res:big:1"), 5);
    assert_direct_str(c, "HGET %s %s", "hl:res:big:meta", "count", "2");
    ck_assert_int_eq(s->ops->result_put(s, "big", "tiny", 4, 0), HL_OK);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:res:big:1"), 0);
    ck_assert_int_eq(direct_int(c, "STRLEN %s", "hl:res:big:0"), 4);
    ck_assert_int_eq(s->ops->result_delete(s, "big"), HL_OK);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:res:big:0"), 0);

    freeReplyObject(direct(c, "SET hl:res:orphan:0 x"));
    freeReplyObject(direct(c, "SET hl:res:orphan:1 y"));
    void *p = NULL;
    size_t len = 0;
    ck_assert_int_eq(s->ops->result_get(s, "orphan", &p, &len), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->result_delete(s, "orphan"), HL_NOTFOUND);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:res:orphan:0"), 0);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:res:orphan:1"), 0);
    redisFree(c);
    s->ops->destroy(s);
}
END_TEST

/* Puts `data` as result `id`, damages it with `fmt` (a direct command) and expects
 * HL_CHECKSUM with `why` in the last error. */
static void expect_damage(srv_store *s, redisContext *c, const unsigned char *data, size_t n,
                          const char *why, const char *fmt, ...)
{
    ck_assert_int_eq(s->ops->result_put(s, "c", data, n, 0), HL_OK);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL && r->type != REDIS_REPLY_ERROR, "damage '%s' failed", fmt);
    freeReplyObject(r);
    void *p = NULL;
    size_t len = 0;
    hl_status st = s->ops->result_get(s, "c", &p, &len);
    ck_assert_msg(st == HL_CHECKSUM, "after '%s': %s", fmt, hl_status_name(st));
    ck_assert_ptr_null(p);
    assert_last_error(s, why);
}

START_TEST(damage_detected)
{
    srv_store *s = open_store(g_rh.url, TIMEOUT_MS, 2);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    redisContext *c = rh_connect(&g_rh);
    ck_assert_ptr_nonnull(c);
    const size_t n = 10000;
    unsigned char *data = bytes(n, 3);
    char flipped = (char)(data[100] ^ 0x5a);
    expect_damage(s, c, data, n, "CRC-32C", "SETRANGE hl:res:c:0 100 %b", &flipped, (size_t)1);
    expect_damage(s, c, data, n, "bytes, expected", "SET hl:res:c:0 %b", data, n - 1);
    expect_damage(s, c, data, n, "missing", "DEL hl:res:c:0");
    expect_damage(s, c, data, n, "malformed", "HSET hl:res:c:meta crc32c zz");
    expect_damage(s, c, data, n, "malformed", "HDEL hl:res:c:meta gen");
    expect_damage(s, c, data, n, "malformed", "HSET hl:res:c:meta count 2");
    expect_damage(s, c, data, n, "bytes, expected", "HSET hl:res:c:meta size 9999");
    ck_assert_int_eq(s->ops->result_put(s, "c", data, n, 0), HL_OK); /* a rewrite heals it */
    void *p = NULL;
    size_t len = 0;
    ck_assert_int_eq(s->ops->result_get(s, "c", &p, &len), HL_OK);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(memcmp(p, data, n), 0);
    free(p);
    ck_assert_int_eq(s->ops->input_put(s, "c", data, n, 0), HL_OK);
    freeReplyObject(direct(c, "SETRANGE hl:in:c:0 9999 %b", &flipped, (size_t)1));
    p = NULL;
    ck_assert_int_eq(s->ops->input_get(s, "c", &p, &len), HL_CHECKSUM);
    free(data);
    redisFree(c);
    s->ops->destroy(s);
}
END_TEST

START_TEST(database_selected)
{
    char url[80];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", g_rh.port);
    srv_store *s = open_store(url, TIMEOUT_MS, 2);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    const srv_field f[] = {{"status", "queued"}};
    ck_assert_int_eq(s->ops->job_create(s, "d", f, 1), HL_OK);
    redisContext *c = rh_connect(&g_rh);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:job:d"), 0);
    freeReplyObject(direct(c, "SELECT 3"));
    ck_assert_int_eq(direct_int(c, "EXISTS %s", "hl:job:d"), 1);
    redisFree(c);
    s->ops->destroy(s);
}
END_TEST

/* Error replies map to statuses and leave the connection usable. */
START_TEST(error_replies)
{
    srv_store *s = open_store(g_rh.url, TIMEOUT_MS, 1);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    ck_assert_int_eq(rh_command(&g_rh, "SET hl:job:w notahash"), 0);
    ck_assert_int_eq(rh_command(&g_rh, "HSET hl:cache:h f v"), 0);
    srv_record r = {0};
    char *v = NULL;
    const srv_field f[] = {{"status", "x"}};
    ck_assert_int_eq(s->ops->job_get(s, "w", &r), HL_INTERNAL);
    assert_last_error(s, "WRONGTYPE");
    ck_assert_int_eq(s->ops->job_update(s, "w", f, 1, "x", 0), HL_INTERNAL);
    ck_assert_int_eq(s->ops->cache_get(s, "h", &v), HL_INTERNAL);
    ck_assert_int_eq(s->ops->ping(s), HL_OK);

    /* A full Redis (maxmemory reached, no eviction) is HL_NOMEM; restore before asserting. */
    int set = rh_command(&g_rh, "CONFIG SET maxmemory 1");
    hl_status put = s->ops->cache_put(s, "k", "j", 0);
    hl_status create = s->ops->job_create(s, "new", f, 1);
    int reset = rh_command(&g_rh, "CONFIG SET maxmemory 0");
    ck_assert_int_eq(set, 0);
    ck_assert_int_eq(reset, 0);
    ck_assert_int_eq(put, HL_NOMEM);
    ck_assert_int_eq(create, HL_NOMEM);
    ck_assert_int_eq(s->ops->cache_put(s, "k", "j", 0), HL_OK);
    s->ops->destroy(s);
}
END_TEST

typedef struct pool_ctx {
    srv_store *s;
    int tid;
    int failures;
} pool_ctx;

static void *pool_worker(void *arg)
{
    pool_ctx *c = arg;
    char id[16];
    snprintf(id, sizeof(id), "p%d", c->tid);
    const srv_field f[] = {{"status", "queued"}};
    c->failures += c->s->ops->job_create(c->s, id, f, 1) != HL_OK;
    for (int i = 0; i < 50; i++) {
        srv_record r = {0};
        c->failures += c->s->ops->job_update(c->s, id, f, 1, "queued", 0) != HL_OK;
        c->failures += c->s->ops->job_get(c->s, id, &r) != HL_OK;
        srv_record_free(&r);
    }
    return NULL;
}

/* More threads than connections: calls wait for a free connection instead of failing. */
START_TEST(pool_smaller_than_threads)
{
    srv_store *s = open_store(g_rh.url, TIMEOUT_MS, 1);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    pool_ctx ctx[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        ctx[i] = (pool_ctx){.s = s, .tid = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, pool_worker, &ctx[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(ctx[i].failures == 0, "thread %d: %d failed calls", i, ctx[i].failures);
    s->ops->destroy(s);
}
END_TEST

/* Redis closes every client connection; the store's next calls reconnect and see the data. */
START_TEST(data_survives_reconnect)
{
    srv_store *s = open_store(g_rh.url, TIMEOUT_MS, 2);
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    const srv_field f[] = {{"status", "running"}};
    unsigned char *data = bytes(4096, 5);
    ck_assert_int_eq(s->ops->job_create(s, "j", f, 1), HL_OK);
    ck_assert_int_eq(s->ops->result_put(s, "j", data, 4096, 0), HL_OK);
    redisContext *c = rh_connect(&g_rh);
    ck_assert_ptr_nonnull(c);
    redisReply *r = direct(c, "CLIENT KILL TYPE normal SKIPME yes");
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_ge(r->integer, 1); /* the store's idle connection was among them */
    freeReplyObject(r);
    redisFree(c);
    sleep_ms(50);
    srv_record rec = {0};
    ck_assert_int_eq(s->ops->job_get(s, "j", &rec), HL_OK); /* first call after the kill */
    ck_assert_str_eq(srv_record_get(&rec, "status"), "running");
    srv_record_free(&rec);
    void *p = NULL;
    size_t n = 0;
    ck_assert_int_eq(s->ops->result_get(s, "j", &p, &n), HL_OK);
    ck_assert_uint_eq(n, 4096);
    ck_assert_int_eq(memcmp(p, data, n), 0);
    free(p);
    free(data);
    s->ops->destroy(s);
}
END_TEST

/* ---------------------------------------------------------------- outages */

/* Every kind of call fails with HL_UNAVAILABLE; returns the seconds they took together. */
static double expect_unavailable(srv_store *s)
{
    const srv_field f[] = {{"status", "queued"}};
    srv_record r = {0};
    void *p = NULL;
    size_t n = 0;
    char *v = NULL;
    double t0 = now_s();
    ck_assert_int_eq(s->ops->ping(s), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->job_create(s, "u", f, 1), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->job_get(s, "u", &r), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->job_update(s, "u", f, 1, "queued", 0), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->job_delete(s, "u"), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->result_put(s, "u", "abc", 3, 0), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->result_get(s, "u", &p, &n), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->input_delete(s, "u"), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->cache_put(s, "u", "j", 0), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->cache_get(s, "u", &v), HL_UNAVAILABLE);
    ck_assert_int_eq(s->ops->idem_claim(s, "u", "j", 0, &v), HL_UNAVAILABLE);
    ck_assert_ptr_null(p);
    ck_assert_ptr_null(v);
    return now_s() - t0;
}

START_TEST(nothing_listening)
{
    int port = rh_free_port();
    ck_assert_int_gt(port, 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/2", port);
    srv_store *s = open_store(url, 1000, 2);
    double took = expect_unavailable(s);
    ck_assert_msg(took < 3.0, "11 refused calls took %.2f s", took);
    assert_last_error(s, "refused");
    s->ops->destroy(s);
}
END_TEST

/* A peer that accepts connections (the kernel does) but never answers: each call gives up
 * after the timeout. */
START_TEST(silent_peer_times_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(a.sin_port));
    srv_store *s = open_store(url, 200, 2);
    double t0 = now_s();
    ck_assert_int_eq(s->ops->ping(s), HL_UNAVAILABLE);
    double took = now_s() - t0;
    ck_assert_msg(took >= 0.15 && took < 2.0, "a 200 ms timeout took %.3f s", took);
    assert_last_error(s, "timed out");
    t0 = now_s();
    srv_record r = {0};
    ck_assert_int_eq(s->ops->job_get(s, "x", &r), HL_UNAVAILABLE);
    ck_assert_msg(now_s() - t0 < 2.0, "second call took %.3f s", now_s() - t0);
    s->ops->destroy(s);
    close(fd);
}
END_TEST

/* A frozen server (SIGSTOP): calls time out; once it runs again, so do the calls. */
START_TEST(frozen_server)
{
    rh_server h;
    if (rh_start(&h) != 0)
        ck_abort_msg("cannot start redis-server: %s", h.msg);
    srv_store *s = open_store(h.url, 300, 2);
    const srv_field f[] = {{"status", "queued"}};
    ck_assert_int_eq(s->ops->job_create(s, "j", f, 1), HL_OK);
    ck_assert_int_eq(rh_pause(&h), 0);
    double t0 = now_s();
    srv_record r = {0};
    hl_status st = s->ops->job_get(s, "j", &r);
    double took = now_s() - t0;
    ck_assert_int_eq(rh_resume(&h), 0);
    ck_assert_int_eq(st, HL_UNAVAILABLE);
    ck_assert_msg(took < 2.0, "a call to a frozen server took %.3f s", took);
    ck_assert_int_eq(s->ops->job_get(s, "j", &r), HL_OK);
    ck_assert_str_eq(srv_record_get(&r, "status"), "queued");
    srv_record_free(&r);
    s->ops->destroy(s);
    rh_stop(&h);
}
END_TEST

/* Redis goes away and comes back on the same port: the same store fails fast while it is
 * gone and works again afterwards, on its first call, with or without failed calls between. */
START_TEST(restarted_server)
{
    rh_server h;
    if (rh_start(&h) != 0)
        ck_abort_msg("cannot start redis-server: %s", h.msg);
    srv_store *s = open_store(h.url, 1000, 3);
    const srv_field f[] = {{"status", "queued"}};
    ck_assert_int_eq(s->ops->job_create(s, "a", f, 1), HL_OK);
    ck_assert_int_eq(s->ops->result_put(s, "a", "xyz", 3, 0), HL_OK);
    rh_halt(&h);
    double took = expect_unavailable(s);
    ck_assert_msg(took < 3.0, "calls during the outage took %.2f s", took);
    if (rh_restart(&h) != 0)
        ck_abort_msg("cannot restart redis-server: %s", h.msg);
    ck_assert_int_eq(s->ops->ping(s), HL_OK);
    srv_record r = {0};
    ck_assert_int_eq(s->ops->job_get(s, "a", &r), HL_NOTFOUND); /* nothing was persisted */
    ck_assert_int_eq(s->ops->job_create(s, "b", f, 1), HL_OK);
    ck_assert_int_eq(s->ops->result_put(s, "b", "xyz", 3, 0), HL_OK);
    /* Restart again while the store holds idle connections, with no call in between. */
    if (rh_restart(&h) != 0)
        ck_abort_msg("cannot restart redis-server: %s", h.msg);
    ck_assert_int_eq(s->ops->job_create(s, "c", f, 1), HL_OK);
    void *p = NULL;
    size_t n = 0;
    ck_assert_int_eq(s->ops->result_get(s, "b", &p, &n), HL_NOTFOUND);
    s->ops->destroy(s);
    rh_stop(&h);
}
END_TEST

/* A fake server that answers the store's SELECT, then hangs up with that reply (the FIN
 * travels with it), so the store's next write goes to a closed connection: the write raises
 * SIGPIPE, which by default kills the process. The store must survive and report
 * HL_UNAVAILABLE. */
typedef struct hangup_ctx {
    int lfd;
} hangup_ctx;

static void *hangup_server(void *arg)
{
    hangup_ctx *h = arg;
    struct pollfd p = {.fd = h->lfd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 5000) != 1)
        return NULL;
    int c = accept(h->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    static const char select_cmd[] = "*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n";
    char buf[64];
    size_t got = 0;
    while (got < sizeof(select_cmd) - 1) { /* bounded by the poll timeouts */
        p = (struct pollfd){.fd = c, .events = POLLIN, .revents = 0};
        if (poll(&p, 1, 5000) != 1)
            break;
        ssize_t n = read(c, buf + got, sizeof(buf) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)); /* reply and FIN together */
    ssize_t wrote = write(c, "+OK\r\n", 5);
    (void)wrote; /* if the reply is lost, the store fails all the same */
    close(c);
    return NULL;
}

START_TEST(peer_hangup_does_not_kill)
{
    void (*old)(int) = signal(SIGPIPE, SIG_DFL);
    hangup_ctx h;
    h.lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(h.lfd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(h.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(h.lfd, 4), 0);
    ck_assert_int_eq(getsockname(h.lfd, (struct sockaddr *)&a, &len), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hangup_server, &h), 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/1", ntohs(a.sin_port));
    srv_store *s = open_store(url, 2000, 1);
    size_t n = (size_t)16 << 20; /* many writes: the first hits the closed peer */
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'j', n);
    big[n] = '\0';
    hl_status st = s->ops->cache_put(s, "k", big, 0);
    pthread_join(t, NULL);
    (void)signal(SIGPIPE, old);
    ck_assert_int_eq(st, HL_UNAVAILABLE);
    free(big);
    s->ops->destroy(s);
    close(h.lfd);
}
END_TEST

START_TEST(harness_reports_missing_server)
{
    const char *saved = getenv("HL_REDIS_SERVER");
    char *copy = saved != NULL ? strdup(saved) : NULL;
    setenv("HL_REDIS_SERVER", "/nonexistent/redis-server", 1);
    rh_server h;
    int rc = rh_start(&h);
    if (copy != NULL)
        setenv("HL_REDIS_SERVER", copy, 1);
    else
        unsetenv("HL_REDIS_SERVER");
    free(copy);
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(h.msg, "/nonexistent/redis-server") != NULL, "message: %s", h.msg);
    ck_assert_int_eq(h.pid, 0);
}
END_TEST

Suite *store_redis_suite(void);

Suite *store_redis_suite(void)
{
    static const sc_backend redis = {"redis", make_redis, NULL};
    Suite *s = suite_create("store_redis");

    TCase *conf = sc_tcase(&redis);
    tcase_add_unchecked_fixture(conf, shared_up, shared_down);
    suite_add_tcase(s, conf);
    TCase *conf_state = sc_state_tcase(&redis);
    tcase_add_unchecked_fixture(conf_state, shared_up, shared_down);
    suite_add_tcase(s, conf_state);

    TCase *cfg = tcase_create("config");
    tcase_add_test(cfg, url_rejected);
    tcase_add_test(cfg, url_accepted);
    tcase_add_test(cfg, params_rejected);
    tcase_add_test(cfg, arguments_rejected);
    tcase_add_test(cfg, harness_reports_missing_server);
    suite_add_tcase(s, cfg);

    TCase *rd = tcase_create("redis");
    tcase_set_timeout(rd, 120);
    tcase_add_unchecked_fixture(rd, shared_up, shared_down);
    tcase_add_test(rd, key_layout);
    tcase_add_test(rd, chunk_layout);
    tcase_add_test(rd, state_clone_layout);
    tcase_add_test(rd, damage_detected);
    tcase_add_test(rd, database_selected);
    tcase_add_test(rd, error_replies);
    tcase_add_test(rd, pool_smaller_than_threads);
    tcase_add_test(rd, data_survives_reconnect);
    suite_add_tcase(s, rd);

    TCase *out = tcase_create("outage");
    tcase_set_timeout(out, 60);
    tcase_add_test(out, nothing_listening);
    tcase_add_test(out, silent_peer_times_out);
    tcase_add_test(out, frozen_server);
    tcase_add_test(out, restarted_server);
    tcase_add_test(out, peer_hangup_does_not_kill);
    suite_add_tcase(s, out);
    return s;
}
