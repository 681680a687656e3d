/* store_conformance_state.c - the clustering state and lock operations of store.h, for every
 * backend (see store_conformance.h): versions with compare-and-set, whole versions under
 * concurrent writers and readers, TTLs, clones (state_clone) and mutual exclusion. */
#include "store_conformance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sc_backend g_backend;

static srv_store *make(void)
{
    srv_store *s = NULL;
    hl_status st = g_backend.make(g_backend.ud, &s);
    ck_assert_msg(st == HL_OK && s != NULL, "%s: cannot create a store", g_backend.name);
    return s;
}

static void nap_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* The bytes of version v of a test state: its length and every byte depend on v. */
static unsigned char *version_bytes(uint64_t v, size_t *len)
{
    *len = 1000 + (size_t)(v % 7) * 333;
    unsigned char *p = malloc(*len);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < *len; i++)
        p[i] = (unsigned char)(v * 131 + i * 7 + (i >> 8));
    return p;
}

static int is_version(const void *data, size_t len, uint64_t v)
{
    size_t want;
    unsigned char *p = version_bytes(v, &want);
    int ok = len == want && memcmp(p, data, len) == 0;
    free(p);
    return ok;
}

/* state_put without the tag. */
static hl_status sput(srv_store *s, const char *id, const void *p, size_t len, uint64_t v,
                      uint64_t ttl)
{
    return s->ops->state_put(s, id, p, len, v, ttl, NULL);
}

/* The current version (state_head when d is NULL) and, with d, its bytes: the chain must be
 * a base alone here (these cases write bases only). */
static hl_status sget(srv_store *s, const char *id, void **d, size_t *len, uint64_t *v)
{
    if (d == NULL) {
        srv_state_head h;
        hl_status st = s->ops->state_head(s, id, &h);
        if (st == HL_OK)
            *v = h.version;
        return st;
    }
    srv_state_chain c;
    hl_status st = s->ops->state_get(s, id, &c);
    if (st != HL_OK)
        return st;
    ck_assert_uint_eq(c.head.n_deltas, 0);
    ck_assert_uint_eq(c.head.base_version, c.head.version);
    *v = c.head.version;
    *d = c.base;
    *len = c.base_len;
    c.base = NULL;
    srv_state_chain_free(&c);
    return HL_OK;
}

static void put_version(srv_store *s, const char *id, uint64_t v, uint64_t ttl, hl_status want)
{
    size_t len;
    unsigned char *p = version_bytes(v, &len);
    hl_status st = sput(s, id, p, len, v, ttl);
    ck_assert_msg(st == want, "%s: state_put v%llu: %s, want %s", g_backend.name,
                  (unsigned long long)v, hl_status_name(st), hl_status_name(want));
    free(p);
}

START_TEST(state_versions)
{
    srv_store *s = make();
    void *d = NULL;
    size_t len = 0;
    uint64_t v = 0;
    ck_assert_int_eq(sget(s, "c1", &d, &len, &v), HL_NOTFOUND);
    ck_assert_int_eq(sget(s, "c1", NULL, NULL, &v), HL_NOTFOUND);
    put_version(s, "c1", 2, 0, HL_BUSY); /* the first version is 1 */
    put_version(s, "c1", 1, 0, HL_OK);
    put_version(s, "c1", 1, 0, HL_BUSY);
    ck_assert_int_eq(sget(s, "c1", &d, &len, &v), HL_OK);
    ck_assert_uint_eq(v, 1);
    ck_assert(is_version(d, len, 1));
    free(d);
    put_version(s, "c1", 3, 0, HL_BUSY);
    put_version(s, "c1", 2, 0, HL_OK);
    v = 0;
    ck_assert_int_eq(sget(s, "c1", NULL, NULL, &v), HL_OK);
    ck_assert_uint_eq(v, 2);
    ck_assert_int_eq(sget(s, "c1", &d, &len, &v), HL_OK);
    ck_assert(is_version(d, len, 2));
    free(d);
    /* Independent of results, inputs and other states of the same id space. */
    ck_assert_int_eq(s->ops->result_put(s, "c1", "r", 1, 0), HL_OK);
    ck_assert_int_eq(sget(s, "c2", NULL, NULL, &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_delete(s, "c1"), HL_OK);
    ck_assert_int_eq(sget(s, "c1", &d, &len, &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_delete(s, "c1"), HL_NOTFOUND);
    put_version(s, "c1", 1, 0, HL_OK); /* after a delete the versions start again */
    ck_assert_int_eq(sput(s, "c1", "x", 1, 0, 0), HL_INVAL);
    void *r = NULL;
    ck_assert_int_eq(s->ops->result_get(s, "c1", &r, &len), HL_OK);
    free(r);
    s->ops->destroy(s);
}
END_TEST

START_TEST(state_large_and_ttl)
{
    srv_store *s = make();
    unsigned char *big = malloc(SC_LARGE_BYTES);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < SC_LARGE_BYTES; i++)
        big[i] = (unsigned char)(i * 2654435761u >> 13);
    ck_assert_int_eq(sput(s, "big", big, SC_LARGE_BYTES, 1, 0), HL_OK);
    ck_assert_int_eq(sput(s, "big", big, SC_LARGE_BYTES - 1, 2, 0), HL_OK);
    void *d = NULL;
    size_t len = 0;
    uint64_t v = 0;
    ck_assert_int_eq(sget(s, "big", &d, &len, &v), HL_OK);
    ck_assert_uint_eq(v, 2);
    ck_assert_uint_eq(len, SC_LARGE_BYTES - 1);
    ck_assert(memcmp(d, big, len) == 0);
    free(d);
    free(big);
    ck_assert_int_eq(s->ops->state_delete(s, "big"), HL_OK);
    put_version(s, "short", 1, 1, HL_OK);
    hl_status st = HL_OK;
    for (int i = 0; i < 50 && st == HL_OK; i++) {
        nap_ms(100);
        st = sget(s, "short", NULL, NULL, &v);
    }
    ck_assert_int_eq(st, HL_NOTFOUND);
    s->ops->destroy(s);
}
END_TEST

typedef struct race {
    srv_store *s;
    atomic_int won, torn, stop;
} race;

/* Writers: read the version, write the next; count wins. */
static void *writer(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 20; i++) {
        uint64_t v = 0;
        hl_status st = sget(r->s, "hot", NULL, NULL, &v);
        if (st != HL_OK && st != HL_NOTFOUND)
            continue;
        size_t len;
        unsigned char *p = version_bytes(v + 1, &len);
        if (sput(r->s, "hot", p, len, v + 1, 0) == HL_OK)
            atomic_fetch_add(&r->won, 1);
        free(p);
    }
    return NULL;
}

/* Readers: every read is one whole version. */
static void *reader(void *arg)
{
    race *r = arg;
    while (!atomic_load(&r->stop)) {
        void *d = NULL;
        size_t len = 0;
        uint64_t v = 0;
        hl_status st = sget(r->s, "hot", &d, &len, &v);
        if ((st == HL_OK && !is_version(d, len, v)) ||
            (st != HL_OK && st != HL_NOTFOUND && st != HL_BUSY)) {
            fprintf(stderr, "%s: read of version %llu: %s, %zu bytes\n", g_backend.name,
                    (unsigned long long)v, hl_status_name(st), len);
            atomic_fetch_add(&r->torn, 1);
        }
        free(d);
    }
    return NULL;
}

START_TEST(state_concurrent_writers)
{
    race r = {.s = make()};
    atomic_init(&r.won, 0);
    atomic_init(&r.torn, 0);
    atomic_init(&r.stop, 0);
    pthread_t w[SC_THREADS], rd[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&rd[i], NULL, reader, &r), 0);
    for (int i = 0; i < SC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&w[i], NULL, writer, &r), 0);
    for (int i = 0; i < SC_THREADS; i++)
        pthread_join(w[i], NULL);
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    uint64_t v = 0;
    ck_assert_int_eq(sget(r.s, "hot", NULL, NULL, &v), HL_OK);
    /* No lost update: every successful write made exactly one version. */
    ck_assert_uint_eq(v, (uint64_t)atomic_load(&r.won));
    ck_assert_int_ge(atomic_load(&r.won), 10);
    ck_assert_int_eq(atomic_load(&r.torn), 0);
    r.s->ops->destroy(r.s);
}
END_TEST

/* Deltas: the chain base + deltas, heads, tags, the CAS on appends, the cap on deltas, a new
 * base restarting the chain, and a delete removing everything. */
static void append_version(srv_store *s, const char *id, uint64_t v, uint64_t ttl, hl_status want,
                           uint64_t *tag)
{
    size_t len;
    unsigned char *p = version_bytes(v, &len);
    hl_status st = s->ops->state_append(s, id, p, len, v, ttl, tag);
    ck_assert_msg(st == want, "%s: state_append v%llu: %s, want %s", g_backend.name,
                  (unsigned long long)v, hl_status_name(st), hl_status_name(want));
    free(p);
}

/* The chain of `id` is base version b then deltas b+1..v, each with its version's bytes. */
static void expect_chain(srv_store *s, const char *id, uint64_t b, uint64_t v)
{
    srv_state_chain c;
    ck_assert_int_eq(s->ops->state_get(s, id, &c), HL_OK);
    ck_assert_uint_eq(c.head.version, v);
    ck_assert_uint_eq(c.head.base_version, b);
    ck_assert_uint_eq(c.head.n_deltas, v - b);
    ck_assert(is_version(c.base, c.base_len, b));
    ck_assert_uint_eq(c.head.base_bytes, c.base_len);
    size_t total = 0;
    for (size_t i = 0; i < c.head.n_deltas; i++) {
        ck_assert_msg(is_version(c.deltas[i], c.delta_lens[i], b + 1 + i), "%s: delta %zu",
                      g_backend.name, i);
        total += c.delta_lens[i];
    }
    ck_assert_uint_eq(c.head.delta_bytes, total);
    srv_state_head h;
    ck_assert_int_eq(s->ops->state_head(s, id, &h), HL_OK);
    ck_assert_mem_eq(&h, &c.head, sizeof(h));
    srv_state_chain_free(&c);
}

START_TEST(state_deltas)
{
    srv_store *s = make();
    uint64_t t1 = 0, t2 = 0, t3 = 0;
    append_version(s, "d1", 2, 0, HL_BUSY, NULL); /* no state yet */
    ck_assert_int_eq(s->ops->state_append(s, "d1", "x", 1, 1, 0, NULL), HL_INVAL);
    size_t len;
    unsigned char *p = version_bytes(1, &len);
    ck_assert_int_eq(s->ops->state_put(s, "d1", p, len, 1, 0, &t1), HL_OK);
    free(p);
    expect_chain(s, "d1", 1, 1);
    append_version(s, "d1", 3, 0, HL_BUSY, NULL);
    append_version(s, "d1", 2, 0, HL_OK, &t2);
    append_version(s, "d1", 2, 0, HL_BUSY, NULL); /* the version is taken */
    append_version(s, "d1", 3, 0, HL_OK, &t3);
    ck_assert(t1 != t2 && t2 != t3 && t1 != t3);
    srv_state_head h;
    ck_assert_int_eq(s->ops->state_head(s, "d1", &h), HL_OK);
    ck_assert_uint_eq(h.tag, t3);
    expect_chain(s, "d1", 1, 3);
    /* A new base restarts the chain; appends continue on it. */
    put_version(s, "d1", 4, 0, HL_OK);
    expect_chain(s, "d1", 4, 4);
    append_version(s, "d1", 5, 0, HL_OK, NULL);
    expect_chain(s, "d1", 4, 5);
    /* At most SRV_STATE_MAX_DELTAS deltas. */
    for (uint64_t v = 6; v < 5 + SRV_STATE_MAX_DELTAS; v++)
        append_version(s, "d1", v, 0, HL_OK, NULL);
    append_version(s, "d1", 5 + SRV_STATE_MAX_DELTAS, 0, HL_RANGE, NULL);
    expect_chain(s, "d1", 4, 4 + SRV_STATE_MAX_DELTAS);
    put_version(s, "d1", 5 + SRV_STATE_MAX_DELTAS, 0, HL_OK);
    expect_chain(s, "d1", 5 + SRV_STATE_MAX_DELTAS, 5 + SRV_STATE_MAX_DELTAS);
    append_version(s, "d1", 6 + SRV_STATE_MAX_DELTAS, 0, HL_OK, NULL);
    ck_assert_int_eq(s->ops->state_delete(s, "d1"), HL_OK);
    srv_state_chain c;
    ck_assert_int_eq(s->ops->state_get(s, "d1", &c), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_head(s, "d1", &h), HL_NOTFOUND);
    append_version(s, "d1", 2, 0, HL_BUSY, NULL);
    s->ops->destroy(s);
}
END_TEST

/* An append renews the TTL of the whole chain: the base written with a 2 s TTL is still
 * there 2.4 s later because a delta was appended at 1.2 s, and the chain then expires as one. */
START_TEST(state_deltas_ttl)
{
    srv_store *s = make();
    put_version(s, "dt", 1, 2, HL_OK);
    nap_ms(1200);
    append_version(s, "dt", 2, 2, HL_OK, NULL);
    nap_ms(1200);
    expect_chain(s, "dt", 1, 2);
    hl_status st = HL_OK;
    srv_state_head h;
    for (int i = 0; i < 60 && st == HL_OK; i++) {
        nap_ms(100);
        st = s->ops->state_head(s, "dt", &h);
    }
    ck_assert_int_eq(st, HL_NOTFOUND);
    srv_state_chain c;
    ck_assert_int_eq(s->ops->state_get(s, "dt", &c), HL_NOTFOUND);
    s->ops->destroy(s);
}
END_TEST

/* Appenders racing: each reads the head and appends the next version; every win makes
 * exactly one version, and readers always see a whole chain (each delta its version's). */
static void *appender(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 12; i++) {
        srv_state_head h;
        if (r->s->ops->state_head(r->s, "hotd", &h) != HL_OK || h.version >= SRV_STATE_MAX_DELTAS)
            continue;
        size_t len;
        unsigned char *p = version_bytes(h.version + 1, &len);
        if (r->s->ops->state_append(r->s, "hotd", p, len, h.version + 1, 0, NULL) == HL_OK)
            atomic_fetch_add(&r->won, 1);
        free(p);
    }
    return NULL;
}

static void *chain_reader(void *arg)
{
    race *r = arg;
    while (!atomic_load(&r->stop)) {
        srv_state_chain c;
        hl_status st = r->s->ops->state_get(r->s, "hotd", &c);
        int ok = st == HL_OK && c.head.base_version == 1 && is_version(c.base, c.base_len, 1);
        for (size_t i = 0; ok && i < c.head.n_deltas; i++)
            ok = is_version(c.deltas[i], c.delta_lens[i], 2 + i);
        if (!ok) {
            fprintf(stderr, "%s: chain read: %s\n", g_backend.name, hl_status_name(st));
            atomic_fetch_add(&r->torn, 1);
        }
        if (st == HL_OK)
            srv_state_chain_free(&c);
    }
    return NULL;
}

START_TEST(state_concurrent_appends)
{
    race r = {.s = make()};
    atomic_init(&r.won, 0);
    atomic_init(&r.torn, 0);
    atomic_init(&r.stop, 0);
    put_version(r.s, "hotd", 1, 0, HL_OK);
    pthread_t w[SC_THREADS], rd;
    ck_assert_int_eq(pthread_create(&rd, NULL, chain_reader, &r), 0);
    for (int i = 0; i < SC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&w[i], NULL, appender, &r), 0);
    for (int i = 0; i < SC_THREADS; i++)
        pthread_join(w[i], NULL);
    atomic_store(&r.stop, 1);
    pthread_join(rd, NULL);
    srv_state_head h;
    ck_assert_int_eq(r.s->ops->state_head(r.s, "hotd", &h), HL_OK);
    ck_assert_uint_eq(h.version, 1 + (uint64_t)atomic_load(&r.won));
    ck_assert_int_ge(atomic_load(&r.won), 10);
    ck_assert_int_eq(atomic_load(&r.torn), 0);
    expect_chain(r.s, "hotd", 1, h.version);
    r.s->ops->destroy(r.s);
}
END_TEST

/* ---- state_clone ---- */

static hl_status sclone(srv_store *s, const char *src, const char *dst, uint64_t v, uint64_t ttl,
                        uint64_t *tag)
{
    return s->ops->state_clone(s, src, dst, v, ttl, tag);
}

/* The base of `a` and of `b` are the same bytes. */
static void expect_same_base(srv_store *s, const char *a, const char *b)
{
    srv_state_chain ca, cb;
    ck_assert_int_eq(s->ops->state_get(s, a, &ca), HL_OK);
    ck_assert_int_eq(s->ops->state_get(s, b, &cb), HL_OK);
    ck_assert_uint_eq(ca.base_len, cb.base_len);
    ck_assert(memcmp(ca.base, cb.base, ca.base_len) == 0);
    srv_state_chain_free(&ca);
    srv_state_chain_free(&cb);
}

/* A clone is version 1 of its own, byte-identical to the source's base, refused when the
 * source changed or the destination exists, and independent of the source afterwards:
 * appends, new bases and deletes of either leave the other as it was. */
START_TEST(state_clone)
{
    srv_store *s = make();
    srv_state_head h;
    uint64_t t1 = 0, t2 = 0;
    ck_assert_int_eq(sclone(s, "cs", "cd", 1, 0, NULL), HL_NOTFOUND);
    put_version(s, "cs", 1, 0, HL_OK);
    ck_assert_int_eq(sclone(s, "cs", "cs", 1, 0, NULL), HL_INVAL);
    ck_assert_int_eq(sclone(s, "cs", "cd", 0, 0, NULL), HL_INVAL);
    ck_assert_int_eq(sclone(s, "cs", "cd", 2, 0, NULL), HL_BUSY); /* not the version asked */
    ck_assert_int_eq(s->ops->state_head(s, "cd", &h), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_head(s, "cs", &h), HL_OK);
    t1 = h.tag;
    ck_assert_int_eq(sclone(s, "cs", "cd", 1, 0, &t2), HL_OK);
    expect_chain(s, "cd", 1, 1);
    expect_chain(s, "cs", 1, 1);
    expect_same_base(s, "cs", "cd");
    ck_assert_int_eq(s->ops->state_head(s, "cd", &h), HL_OK);
    ck_assert_uint_eq(h.tag, t2);
    ck_assert(t2 != 0 && t2 != t1);
    ck_assert_int_eq(sclone(s, "cs", "cd", 1, 0, NULL), HL_BUSY); /* cd has a state */
    /* The source gains a delta: a clone of version 1 is refused, and so is one of version 2
     * (a chain with deltas); the existing clone does not see the delta. */
    append_version(s, "cs", 2, 0, HL_OK, NULL);
    ck_assert_int_eq(sclone(s, "cs", "ce", 1, 0, NULL), HL_BUSY);
    ck_assert_int_eq(sclone(s, "cs", "ce", 2, 0, NULL), HL_BUSY);
    ck_assert_int_eq(s->ops->state_head(s, "ce", &h), HL_NOTFOUND);
    expect_chain(s, "cd", 1, 1);
    /* The clone's own versions go on from 1; the source is untouched by them. */
    append_version(s, "cd", 2, 0, HL_OK, NULL);
    append_version(s, "cd", 3, 0, HL_OK, NULL);
    expect_chain(s, "cd", 1, 3);
    expect_chain(s, "cs", 1, 2);
    /* A new base of the source (version 3, a base alone) can be cloned as version 3; the
     * clone is version 1 holding those bytes. */
    put_version(s, "cs", 3, 0, HL_OK);
    expect_chain(s, "cd", 1, 3);
    ck_assert_int_eq(sclone(s, "cs", "ce", 3, 0, NULL), HL_OK);
    void *d = NULL;
    size_t len = 0;
    uint64_t v = 0;
    ck_assert_int_eq(sget(s, "ce", &d, &len, &v), HL_OK);
    ck_assert_uint_eq(v, 1);
    ck_assert(is_version(d, len, 3));
    free(d);
    /* Deleting the source leaves both clones whole. */
    ck_assert_int_eq(s->ops->state_delete(s, "cs"), HL_OK);
    expect_chain(s, "cd", 1, 3);
    ck_assert_int_eq(sget(s, "ce", &d, &len, &v), HL_OK);
    ck_assert(is_version(d, len, 3));
    free(d);
    ck_assert_int_eq(sclone(s, "cs", "cf", 1, 0, NULL), HL_NOTFOUND);
    /* Deleting a clone leaves its source whole, and the source can be cloned again. */
    put_version(s, "cs2", 1, 0, HL_OK);
    ck_assert_int_eq(sclone(s, "cs2", "cd2", 1, 0, NULL), HL_OK);
    ck_assert_int_eq(s->ops->state_delete(s, "cd2"), HL_OK);
    ck_assert_int_eq(s->ops->state_head(s, "cd2", &h), HL_NOTFOUND);
    expect_chain(s, "cs2", 1, 1);
    append_version(s, "cs2", 2, 0, HL_OK, NULL);
    expect_chain(s, "cs2", 1, 2);
    put_version(s, "cd2", 1, 0, HL_OK); /* the deleted clone's id starts again at 1 */
    s->ops->destroy(s);
}
END_TEST

/* A multi-chunk base (for Redis: two chunks) clones whole, and outlives its source. */
START_TEST(state_clone_large)
{
    srv_store *s = make();
    unsigned char *big = malloc(SC_LARGE_BYTES);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < SC_LARGE_BYTES; i++)
        big[i] = (unsigned char)(i * 2654435761u >> 11);
    ck_assert_int_eq(sput(s, "lbs", big, SC_LARGE_BYTES, 1, 0), HL_OK);
    ck_assert_int_eq(sclone(s, "lbs", "lbd", 1, 0, NULL), HL_OK);
    ck_assert_int_eq(s->ops->state_delete(s, "lbs"), HL_OK);
    void *d = NULL;
    size_t len = 0;
    uint64_t v = 0;
    ck_assert_int_eq(sget(s, "lbd", &d, &len, &v), HL_OK);
    ck_assert_uint_eq(v, 1);
    ck_assert_uint_eq(len, SC_LARGE_BYTES);
    ck_assert(memcmp(d, big, len) == 0);
    srv_state_head h;
    ck_assert_int_eq(s->ops->state_head(s, "lbd", &h), HL_OK);
    ck_assert_uint_eq(h.base_bytes, SC_LARGE_BYTES);
    free(d);
    free(big);
    s->ops->destroy(s);
}
END_TEST

/* Waits (bounded, 6 s) until `id` has no state; returns its last status. */
static hl_status wait_gone(srv_store *s, const char *id)
{
    srv_state_head h;
    hl_status st = HL_OK;
    for (int i = 0; i < 60 && st == HL_OK; i++) {
        nap_ms(100);
        st = s->ops->state_head(s, id, &h);
    }
    return st;
}

/* The clone has its own TTL: a source expiring leaves a clone without TTL whole, and a clone
 * with a 1 s TTL expires while its source (no TTL) stays. */
START_TEST(state_clone_ttl)
{
    srv_store *s = make();
    put_version(s, "tsrc", 1, 1, HL_OK);
    ck_assert_int_eq(sclone(s, "tsrc", "tdst", 1, 0, NULL), HL_OK);
    ck_assert_int_eq(wait_gone(s, "tsrc"), HL_NOTFOUND);
    nap_ms(1200); /* past every grace period of the source's keys */
    expect_chain(s, "tdst", 1, 1);
    put_version(s, "tsrc2", 1, 0, HL_OK);
    ck_assert_int_eq(sclone(s, "tsrc2", "tdst2", 1, 1, NULL), HL_OK);
    expect_chain(s, "tdst2", 1, 1);
    ck_assert_int_eq(wait_gone(s, "tdst2"), HL_NOTFOUND);
    srv_state_chain c;
    ck_assert_int_eq(s->ops->state_get(s, "tdst2", &c), HL_NOTFOUND);
    expect_chain(s, "tsrc2", 1, 1);
    s->ops->destroy(s);
}
END_TEST

typedef struct clone_race {
    srv_store *s;
    char src[16];
    hl_status appended;
} clone_race;

static void *clone_race_append(void *arg)
{
    clone_race *r = arg;
    size_t len;
    unsigned char *p = version_bytes(2, &len);
    r->appended = r->s->ops->state_append(r->s, r->src, p, len, 2, 0, NULL);
    free(p);
    return NULL;
}

/* A clone racing an append to its source: either the clone is the whole version 1, or it was
 * refused and nothing of it exists. */
START_TEST(state_clone_races_append)
{
    srv_store *s = make();
    int cloned = 0, refused = 0;
    for (int i = 0; i < 24; i++) {
        clone_race r = {.s = s};
        char dst[16];
        snprintf(r.src, sizeof(r.src), "rs%d", i);
        snprintf(dst, sizeof(dst), "rd%d", i);
        put_version(s, r.src, 1, 0, HL_OK);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, clone_race_append, &r), 0);
        if (i % 3 == 0)
            nap_ms(1); /* vary who goes first */
        hl_status st = sclone(s, r.src, dst, 1, 0, NULL);
        pthread_join(t, NULL);
        ck_assert_int_eq(r.appended, HL_OK);
        srv_state_head h;
        if (st == HL_OK) {
            expect_chain(s, dst, 1, 1);
            cloned++;
        } else {
            ck_assert_msg(st == HL_BUSY, "%s: clone racing an append: %s", g_backend.name,
                          hl_status_name(st));
            ck_assert_int_eq(s->ops->state_head(s, dst, &h), HL_NOTFOUND);
            refused++;
        }
        expect_chain(s, r.src, 1, 2);
    }
    ck_assert_int_eq(cloned + refused, 24);
    s->ops->destroy(s);
}
END_TEST

START_TEST(lock_semantics)
{
    srv_store *s = make();
    ck_assert_int_eq(s->ops->lock(s, "k", "A", 10000), HL_OK);
    ck_assert_int_eq(s->ops->lock(s, "k", "B", 10000), HL_BUSY);
    ck_assert_int_eq(s->ops->lock(s, "k", "A", 10000), HL_OK); /* renewal */
    ck_assert_int_eq(s->ops->unlock(s, "k", "B"), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->lock(s, "other", "B", 10000), HL_OK);
    ck_assert_int_eq(s->ops->unlock(s, "k", "A"), HL_OK);
    ck_assert_int_eq(s->ops->unlock(s, "k", "A"), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->lock(s, "k", "B", 10000), HL_OK);
    /* An expired lock is free for another token. */
    ck_assert_int_eq(s->ops->lock(s, "short", "A", 200), HL_OK);
    hl_status st = HL_BUSY;
    for (int i = 0; i < 50 && st == HL_BUSY; i++) {
        nap_ms(100);
        st = s->ops->lock(s, "short", "B", 10000);
    }
    ck_assert_int_eq(st, HL_OK);
    ck_assert_int_eq(s->ops->unlock(s, "short", "A"), HL_NOTFOUND);
    s->ops->destroy(s);
}
END_TEST

typedef struct mutex_race {
    srv_store *s;
    atomic_int inside, overlap, done;
    atomic_int counter; /* read and written in two steps: a lost update shows a broken lock */
} mutex_race;

static void *locker(void *arg)
{
    mutex_race *m = arg;
    char token[32];
    snprintf(token, sizeof(token), "t%p", (void *)&token);
    for (int i = 0; i < 10; i++) {
        int spins = 0;
        while (m->s->ops->lock(m->s, "mx", token, 30000) != HL_OK && spins++ < 20000)
            nap_ms(1);
        if (atomic_fetch_add(&m->inside, 1) != 0)
            atomic_fetch_add(&m->overlap, 1);
        int c = atomic_load_explicit(&m->counter, memory_order_relaxed);
        nap_ms(1);
        atomic_store_explicit(&m->counter, c + 1, memory_order_relaxed);
        atomic_fetch_sub(&m->inside, 1);
        if (m->s->ops->unlock(m->s, "mx", token) != HL_OK)
            atomic_fetch_add(&m->overlap, 1);
        atomic_fetch_add(&m->done, 1);
    }
    return NULL;
}

START_TEST(lock_mutual_exclusion)
{
    mutex_race m = {.s = make()};
    atomic_init(&m.inside, 0);
    atomic_init(&m.overlap, 0);
    atomic_init(&m.done, 0);
    atomic_init(&m.counter, 0);
    pthread_t t[SC_THREADS];
    for (int i = 0; i < SC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, locker, &m), 0);
    for (int i = 0; i < SC_THREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&m.overlap), 0);
    ck_assert_int_eq(atomic_load(&m.counter), SC_THREADS * 10);
    m.s->ops->destroy(m.s);
}
END_TEST

TCase *sc_state_tcase(const sc_backend *b)
{
    g_backend = *b;
    TCase *tc = tcase_create("conformance_state");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, state_versions);
    tcase_add_test(tc, state_large_and_ttl);
    tcase_add_test(tc, state_concurrent_writers);
    tcase_add_test(tc, state_deltas);
    tcase_add_test(tc, state_deltas_ttl);
    tcase_add_test(tc, state_concurrent_appends);
    tcase_add_test(tc, state_clone);
    tcase_add_test(tc, state_clone_large);
    tcase_add_test(tc, state_clone_ttl);
    tcase_add_test(tc, state_clone_races_append);
    tcase_add_test(tc, lock_semantics);
    tcase_add_test(tc, lock_mutual_exclusion);
    return tc;
}
