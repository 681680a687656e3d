/* store_conformance.c - see store_conformance.h. Every case uses the store.h interface only. */
#include "store_conformance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SC_EXPIRY_WAIT_S 5.0 /* a 1 s TTL must have expired by then */
#define SC_CAS_ROUNDS    25
#define SC_CREATE_ROUNDS 10
#define SC_TORN_WRITES   200

static sc_backend g_backend;

/* ---------------------------------------------------------------- helpers */

static srv_store *sc_make(void)
{
    srv_store *s = NULL;
    hl_status st = g_backend.make(g_backend.ud, &s);
    ck_assert_msg(st == HL_OK && s != NULL, "%s: cannot create a store: %s", g_backend.name,
                  hl_status_name(st));
    return s;
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

/* A deterministic byte pattern (xorshift64), streamable: fill in pieces with one state. */
static void pattern(uint64_t *state, unsigned char *p, size_t n)
{
    uint64_t x = *state;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        p[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
    *state = x;
}

static unsigned char *make_blob(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(p);
    uint64_t st = seed | 1;
    pattern(&st, p, n);
    return p;
}

/* Returns a malloc'd copy of one field of a job, or NULL if the job or field is missing. */
static char *job_field(srv_store *s, const char *id, const char *name)
{
    srv_record r = {0};
    if (s->ops->job_get(s, id, &r) != HL_OK)
        return NULL;
    const char *v = srv_record_get(&r, name);
    char *copy = v != NULL ? strdup(v) : NULL;
    srv_record_free(&r);
    return copy;
}

static void assert_field(srv_store *s, const char *id, const char *name, const char *want)
{
    char *v = job_field(s, id, name);
    if (want == NULL)
        ck_assert_msg(v == NULL, "%s.%s: expected no value, got '%s'", id, name, v);
    else
        ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s.%s: expected '%s', got '%s'", id, name,
                      want, v != NULL ? v : "(none)");
    free(v);
}

enum blob_kind { RESULT, INPUT };

static hl_status blob_put(srv_store *s, enum blob_kind k, const char *id, const void *p, size_t n,
                          uint64_t ttl)
{
    return k == RESULT ? s->ops->result_put(s, id, p, n, ttl) : s->ops->input_put(s, id, p, n, ttl);
}

static hl_status blob_get(srv_store *s, enum blob_kind k, const char *id, void **p, size_t *n)
{
    return k == RESULT ? s->ops->result_get(s, id, p, n) : s->ops->input_get(s, id, p, n);
}

static hl_status blob_del(srv_store *s, enum blob_kind k, const char *id)
{
    return k == RESULT ? s->ops->result_delete(s, id) : s->ops->input_delete(s, id);
}

static void assert_blob(srv_store *s, enum blob_kind k, const char *id, const void *want, size_t n)
{
    void *got = NULL;
    size_t len = 0;
    hl_status st = blob_get(s, k, id, &got, &len);
    ck_assert_msg(st == HL_OK, "%s %s: get: %s", k == RESULT ? "result" : "input", id,
                  hl_status_name(st));
    ck_assert_uint_eq(len, n);
    ck_assert_msg(n == 0 || memcmp(got, want, n) == 0, "%s: bytes differ", id);
    free(got);
}

/* One probe per kind of record: HL_NOTFOUND once it has expired. */
typedef hl_status (*probe_fn)(srv_store *s, const char *id);

static hl_status probe_job(srv_store *s, const char *id)
{
    srv_record r = {0};
    hl_status st = s->ops->job_get(s, id, &r);
    srv_record_free(&r);
    return st;
}

static hl_status probe_result(srv_store *s, const char *id)
{
    void *p = NULL;
    size_t n = 0;
    hl_status st = s->ops->result_get(s, id, &p, &n);
    free(p);
    return st;
}

static hl_status probe_input(srv_store *s, const char *id)
{
    void *p = NULL;
    size_t n = 0;
    hl_status st = s->ops->input_get(s, id, &p, &n);
    free(p);
    return st;
}

static hl_status probe_cache(srv_store *s, const char *id)
{
    char *v = NULL;
    hl_status st = s->ops->cache_get(s, id, &v);
    free(v);
    return st;
}

/* Waits (bounded) until probe says HL_NOTFOUND; returns the seconds waited or -1. */
static double wait_gone(srv_store *s, probe_fn probe, const char *id)
{
    double t0 = now_s();
    while (now_s() - t0 < SC_EXPIRY_WAIT_S) {
        hl_status st = probe(s, id);
        if (st == HL_NOTFOUND)
            return now_s() - t0;
        ck_assert_msg(st == HL_OK, "%s: probe failed: %s", id, hl_status_name(st));
        sleep_ms(50);
    }
    return -1;
}

/* ---------------------------------------------------------------- jobs */

START_TEST(job_create_get)
{
    srv_store *s = sc_make();
    const srv_field f[] = {{"status", "queued"},
                           {"created", "2024-01-01T00:00:00Z"},
                           {"empty", ""},
                           {"text", "a b \"c\"\n\xc3\xa9,d"}};
    ck_assert_int_eq(s->ops->job_create(s, "j1", f, 4), HL_OK);
    srv_record r = {0};
    ck_assert_int_eq(s->ops->job_get(s, "j1", &r), HL_OK);
    ck_assert_uint_eq(r.n, 4);
    for (size_t i = 0; i < 4; i++) {
        const char *v = srv_record_get(&r, f[i].name);
        ck_assert_msg(v != NULL && strcmp(v, f[i].value) == 0, "field %s", f[i].name);
    }
    ck_assert_ptr_null(srv_record_get(&r, "missing"));
    srv_record_free(&r);
    ck_assert_uint_eq(r.n, 0);
    ck_assert_ptr_null(r.names);
    ck_assert_ptr_null(r.values);
    ck_assert_int_eq(probe_job(s, "j2"), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->ping(s), HL_OK);
    s->ops->destroy(s);
}
END_TEST

START_TEST(job_create_busy)
{
    srv_store *s = sc_make();
    const srv_field a[] = {{"status", "queued"}};
    const srv_field b[] = {{"status", "running"}, {"other", "1"}};
    ck_assert_int_eq(s->ops->job_create(s, "j", a, 1), HL_OK);
    ck_assert_int_eq(s->ops->job_create(s, "j", b, 2), HL_BUSY);
    assert_field(s, "j", "status", "queued");
    assert_field(s, "j", "other", NULL);
    s->ops->destroy(s);
}
END_TEST

START_TEST(job_update_fields)
{
    srv_store *s = sc_make();
    const srv_field a[] = {{"status", "queued"}, {"progress", "0"}};
    const srv_field b[] = {{"progress", "0.5"}, {"stage", "knn"}};
    ck_assert_int_eq(s->ops->job_create(s, "j", a, 2), HL_OK);
    ck_assert_int_eq(s->ops->job_update(s, "j", b, 2, NULL, 0), HL_OK);
    srv_record r = {0};
    ck_assert_int_eq(s->ops->job_get(s, "j", &r), HL_OK);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_str_eq(srv_record_get(&r, "status"), "queued");
    ck_assert_str_eq(srv_record_get(&r, "progress"), "0.5");
    ck_assert_str_eq(srv_record_get(&r, "stage"), "knn");
    srv_record_free(&r);
    s->ops->destroy(s);
}
END_TEST

START_TEST(job_update_cas)
{
    srv_store *s = sc_make();
    const srv_field q[] = {{"status", "queued"}};
    const srv_field run[] = {{"status", "running"}, {"worker", "w1"}};
    const srv_field done[] = {{"status", "succeeded"}};
    const srv_field cancel[] = {{"status", "canceled"}};
    ck_assert_int_eq(s->ops->job_create(s, "j", q, 1), HL_OK);
    ck_assert_int_eq(s->ops->job_update(s, "j", run, 2, "running", 0), HL_BUSY);
    assert_field(s, "j", "worker", NULL); /* a failed precondition changes nothing */
    ck_assert_int_eq(s->ops->job_update(s, "j", run, 2, "queued", 0), HL_OK);
    assert_field(s, "j", "worker", "w1");
    ck_assert_int_eq(s->ops->job_update(s, "j", run, 2, "queued", 0), HL_BUSY);
    ck_assert_int_eq(s->ops->job_update(s, "j", done, 1, "queued,running", 0), HL_OK);
    assert_field(s, "j", "status", "succeeded");
    /* Values match whole: neither a prefix nor a suffix of the status is enough. */
    ck_assert_int_eq(s->ops->job_update(s, "j", cancel, 1, "succeed,ucceeded", 0), HL_BUSY);
    ck_assert_int_eq(s->ops->job_update(s, "j", cancel, 1, "succeededx", 0), HL_BUSY);
    ck_assert_int_eq(s->ops->job_update(s, "j", cancel, 1, "queued,running", 0), HL_BUSY);
    assert_field(s, "j", "status", "succeeded");
    ck_assert_int_eq(s->ops->job_update(s, "j", cancel, 1, "failed,succeeded", 0), HL_OK);
    assert_field(s, "j", "status", "canceled");
    s->ops->destroy(s);
}
END_TEST

START_TEST(job_update_missing)
{
    srv_store *s = sc_make();
    const srv_field f[] = {{"status", "running"}};
    ck_assert_int_eq(s->ops->job_update(s, "nope", f, 1, NULL, 0), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->job_update(s, "nope", f, 1, "queued", 0), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->job_update(s, "nope", f, 1, NULL, 60), HL_NOTFOUND);
    ck_assert_int_eq(probe_job(s, "nope"), HL_NOTFOUND); /* an update never creates */
    s->ops->destroy(s);
}
END_TEST

START_TEST(job_delete)
{
    srv_store *s = sc_make();
    const srv_field a[] = {{"status", "queued"}};
    const srv_field b[] = {{"status", "running"}};
    ck_assert_int_eq(s->ops->job_create(s, "j", a, 1), HL_OK);
    ck_assert_int_eq(s->ops->job_create(s, "k", a, 1), HL_OK);
    ck_assert_int_eq(s->ops->job_delete(s, "j"), HL_OK);
    ck_assert_int_eq(probe_job(s, "j"), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->job_delete(s, "j"), HL_NOTFOUND);
    ck_assert_int_eq(probe_job(s, "k"), HL_OK);
    ck_assert_int_eq(s->ops->job_create(s, "j", b, 1), HL_OK);
    assert_field(s, "j", "status", "running");
    s->ops->destroy(s);
}
END_TEST

START_TEST(job_ttl_expires)
{
    srv_store *s = sc_make();
    const srv_field a[] = {{"status", "running"}};
    const srv_field b[] = {{"status", "succeeded"}};
    ck_assert_int_eq(s->ops->job_create(s, "short", a, 1), HL_OK);
    ck_assert_int_eq(s->ops->job_create(s, "keep", a, 1), HL_OK);
    ck_assert_int_eq(s->ops->job_update(s, "short", b, 1, "running", 1), HL_OK);
    ck_assert_int_eq(s->ops->job_update(s, "keep", b, 1, "running", 0), HL_OK);
    assert_field(s, "short", "status", "succeeded");
    double waited = wait_gone(s, probe_job, "short");
    ck_assert_msg(waited >= 0, "a job with a 1 s TTL still exists after %.0f s", SC_EXPIRY_WAIT_S);
    ck_assert_int_eq(probe_job(s, "keep"), HL_OK); /* ttl 0: no expiry */
    s->ops->destroy(s);
}
END_TEST

/* ---------------------------------------------------------------- races */

typedef struct race_ctx {
    srv_store *s;
    pthread_barrier_t *bar;
    int tid;
    hl_status cas[SC_CAS_ROUNDS];
    hl_status create[SC_CREATE_ROUNDS];
} race_ctx;

static void *cas_worker(void *arg)
{
    race_ctx *c = arg;
    char tid[16], expect[16], next[16];
    snprintf(tid, sizeof(tid), "t%d", c->tid);
    for (int k = 0; k < SC_CAS_ROUNDS; k++) {
        snprintf(expect, sizeof(expect), "s%d", k);
        snprintf(next, sizeof(next), "s%d", k + 1);
        const srv_field f[] = {{"status", next}, {"winner", tid}};
        pthread_barrier_wait(c->bar); /* everyone starts round k together */
        c->cas[k] = c->s->ops->job_update(c->s, "race", f, 2, expect, 0);
    }
    for (int k = 0; k < SC_CREATE_ROUNDS; k++) {
        char id[32];
        snprintf(id, sizeof(id), "create-%d", k);
        const srv_field f[] = {{"status", "queued"}, {"creator", tid}};
        pthread_barrier_wait(c->bar);
        c->create[k] = c->s->ops->job_create(c->s, id, f, 2);
    }
    return NULL;
}

/* SC_THREADS threads race on every transition s<k> -> s<k+1> of one job (CAS), then on
 * creating the same ids: exactly one wins each time, the others get HL_BUSY. */
START_TEST(races_have_one_winner)
{
    srv_store *s = sc_make();
    const srv_field f[] = {{"status", "s0"}};
    ck_assert_int_eq(s->ops->job_create(s, "race", f, 1), HL_OK);
    pthread_barrier_t bar;
    ck_assert_int_eq(pthread_barrier_init(&bar, NULL, SC_THREADS), 0);
    race_ctx ctx[SC_THREADS];
    pthread_t th[SC_THREADS];
    for (int i = 0; i < SC_THREADS; i++) {
        ctx[i] = (race_ctx){.s = s, .bar = &bar, .tid = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, cas_worker, &ctx[i]), 0);
    }
    for (int i = 0; i < SC_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    int last_winner = -1;
    for (int k = 0; k < SC_CAS_ROUNDS; k++) {
        int ok = 0, busy = 0;
        for (int i = 0; i < SC_THREADS; i++) {
            ok += ctx[i].cas[k] == HL_OK;
            busy += ctx[i].cas[k] == HL_BUSY;
            if (ctx[i].cas[k] == HL_OK)
                last_winner = i;
        }
        ck_assert_msg(ok == 1 && busy == SC_THREADS - 1, "CAS round %d: %d won, %d busy", k, ok,
                      busy);
    }
    char want[16];
    snprintf(want, sizeof(want), "s%d", SC_CAS_ROUNDS);
    assert_field(s, "race", "status", want);
    snprintf(want, sizeof(want), "t%d", last_winner);
    assert_field(s, "race", "winner", want);
    for (int k = 0; k < SC_CREATE_ROUNDS; k++) {
        int ok = 0, busy = 0, winner = -1;
        for (int i = 0; i < SC_THREADS; i++) {
            ok += ctx[i].create[k] == HL_OK;
            busy += ctx[i].create[k] == HL_BUSY;
            if (ctx[i].create[k] == HL_OK)
                winner = i;
        }
        ck_assert_msg(ok == 1 && busy == SC_THREADS - 1, "create round %d: %d won, %d busy", k, ok,
                      busy);
        char id[32];
        snprintf(id, sizeof(id), "create-%d", k);
        snprintf(want, sizeof(want), "t%d", winner);
        assert_field(s, id, "creator", want);
    }
    s->ops->destroy(s);
}
END_TEST

/* ---------------------------------------------------------------- blobs */

START_TEST(blob_roundtrip)
{
    srv_store *s = sc_make();
    for (int k = RESULT; k <= INPUT; k++) {
        unsigned char *a = make_blob(10000, 1 + (uint64_t)k);
        unsigned char *b = make_blob(333, 7);
        unsigned char *c = make_blob(20000, 9);
        void *p = NULL;
        size_t n = 0;
        ck_assert_int_eq(blob_get(s, k, "b", &p, &n), HL_NOTFOUND);
        ck_assert_int_eq(blob_put(s, k, "b", a, 10000, 0), HL_OK);
        assert_blob(s, k, "b", a, 10000);
        ck_assert_int_eq(blob_put(s, k, "b", b, 333, 0), HL_OK); /* shorter */
        assert_blob(s, k, "b", b, 333);
        ck_assert_int_eq(blob_put(s, k, "b", c, 20000, 0), HL_OK); /* longer */
        assert_blob(s, k, "b", c, 20000);
        ck_assert_int_eq(blob_del(s, k, "b"), HL_OK);
        ck_assert_int_eq(blob_get(s, k, "b", &p, &n), HL_NOTFOUND);
        ck_assert_int_eq(blob_del(s, k, "b"), HL_NOTFOUND);
        free(a);
        free(b);
        free(c);
    }
    s->ops->destroy(s);
}
END_TEST

START_TEST(blob_kinds_are_separate)
{
    srv_store *s = sc_make();
    unsigned char *a = make_blob(1000, 11), *b = make_blob(2000, 12);
    const srv_field f[] = {{"status", "queued"}};
    ck_assert_int_eq(s->ops->job_create(s, "x", f, 1), HL_OK);
    ck_assert_int_eq(s->ops->result_put(s, "x", a, 1000, 0), HL_OK);
    ck_assert_int_eq(s->ops->input_put(s, "x", b, 2000, 0), HL_OK);
    assert_blob(s, RESULT, "x", a, 1000);
    assert_blob(s, INPUT, "x", b, 2000);
    ck_assert_int_eq(s->ops->input_delete(s, "x"), HL_OK);
    ck_assert_int_eq(probe_input(s, "x"), HL_NOTFOUND);
    assert_blob(s, RESULT, "x", a, 1000);
    ck_assert_int_eq(probe_job(s, "x"), HL_OK);
    ck_assert_int_eq(s->ops->job_delete(s, "x"), HL_OK);
    assert_blob(s, RESULT, "x", a, 1000); /* records are independent */
    ck_assert_int_eq(probe_result(s, "y"), HL_NOTFOUND);
    free(a);
    free(b);
    s->ops->destroy(s);
}
END_TEST

START_TEST(blob_empty)
{
    srv_store *s = sc_make();
    static const char nothing[1] = {0};
    unsigned char *a = make_blob(500, 3);
    for (int k = RESULT; k <= INPUT; k++) {
        ck_assert_int_eq(blob_put(s, k, "e", nothing, 0, 0), HL_OK);
        assert_blob(s, k, "e", nothing, 0);
        ck_assert_int_eq(blob_put(s, k, "e", a, 500, 0), HL_OK);
        ck_assert_int_eq(blob_put(s, k, "e", nothing, 0, 0), HL_OK); /* non-empty -> empty */
        assert_blob(s, k, "e", nothing, 0);
        ck_assert_int_eq(blob_del(s, k, "e"), HL_OK);
        ck_assert_int_eq(blob_del(s, k, "e"), HL_NOTFOUND);
    }
    free(a);
    s->ops->destroy(s);
}
END_TEST

/* Just over 64 MiB. The source is freed before reading back and the copy is checked against
 * the regenerated pattern piece by piece, so at most one copy lives in this process. */
START_TEST(blob_large)
{
    srv_store *s = sc_make();
    const size_t n = SC_LARGE_BYTES;
    unsigned char *a = make_blob(n, 42);
    ck_assert_int_eq(s->ops->result_put(s, "big", a, n, 0), HL_OK);
    free(a);
    void *got = NULL;
    size_t len = 0;
    ck_assert_int_eq(s->ops->result_get(s, "big", &got, &len), HL_OK);
    ck_assert_uint_eq(len, n);
    uint64_t st = 42 | 1;
    unsigned char window[1 << 16];
    for (size_t off = 0; off < n; off += sizeof(window)) {
        size_t m = n - off < sizeof(window) ? n - off : sizeof(window);
        pattern(&st, window, m);
        ck_assert_msg(memcmp((unsigned char *)got + off, window, m) == 0,
                      "large blob differs in [%zu, %zu)", off, off + m);
    }
    free(got);
    unsigned char *b = make_blob(100, 5); /* replacing a large blob by a small one */
    ck_assert_int_eq(s->ops->result_put(s, "big", b, 100, 0), HL_OK);
    assert_blob(s, RESULT, "big", b, 100);
    ck_assert_int_eq(s->ops->result_delete(s, "big"), HL_OK);
    ck_assert_int_eq(probe_result(s, "big"), HL_NOTFOUND);
    free(b);
    s->ops->destroy(s);
}
END_TEST

START_TEST(blob_ttl_expires)
{
    srv_store *s = sc_make();
    unsigned char *a = make_blob(3000, 8);
    ck_assert_int_eq(s->ops->result_put(s, "r", a, 3000, 1), HL_OK);
    ck_assert_int_eq(s->ops->input_put(s, "i", a, 3000, 1), HL_OK);
    ck_assert_int_eq(s->ops->result_put(s, "keep", a, 3000, 0), HL_OK);
    assert_blob(s, RESULT, "r", a, 3000);
    assert_blob(s, INPUT, "i", a, 3000);
    ck_assert_msg(wait_gone(s, probe_result, "r") >= 0, "result with a 1 s TTL did not expire");
    ck_assert_msg(wait_gone(s, probe_input, "i") >= 0, "input with a 1 s TTL did not expire");
    assert_blob(s, RESULT, "keep", a, 3000);
    free(a);
    s->ops->destroy(s);
}
END_TEST

typedef struct torn_ctx {
    srv_store *s;
    const unsigned char *a, *b;
    size_t na, nb;
    atomic_int done;
    atomic_int reads_ok, reads_gone, reads_busy, reads_bad;
} torn_ctx;

static void *torn_writer(void *arg)
{
    torn_ctx *c = arg;
    for (int i = 0; i < SC_TORN_WRITES; i++) {
        int odd = i % 2;
        if (c->s->ops->result_put(c->s, "t", odd ? c->b : c->a, odd ? c->nb : c->na, 0) != HL_OK)
            atomic_fetch_add(&c->reads_bad, 1000000); /* a failed write fails the test too */
    }
    atomic_store(&c->done, 1);
    return NULL;
}

static void *torn_reader(void *arg)
{
    torn_ctx *c = arg;
    for (int i = 0; i < 1000000 && !atomic_load(&c->done); i++) {
        void *p = NULL;
        size_t n = 0;
        hl_status st = c->s->ops->result_get(c->s, "t", &p, &n);
        if (st == HL_OK &&
            ((n == c->na && memcmp(p, c->a, n) == 0) || (n == c->nb && memcmp(p, c->b, n) == 0)))
            atomic_fetch_add(&c->reads_ok, 1);
        else if (st == HL_NOTFOUND)
            atomic_fetch_add(&c->reads_gone, 1); /* between a rewrite's delete and its meta */
        else if (st == HL_BUSY)
            atomic_fetch_add(&c->reads_busy, 1); /* rewritten during every attempt */
        else
            atomic_fetch_add(&c->reads_bad, 1);
        free(p);
    }
    return NULL;
}

/* While one thread rewrites a result over and over with two different contents, readers get
 * one content or the other whole, or "not there right now", never a mix or a checksum error. */
START_TEST(blob_readers_never_see_torn_writes)
{
    srv_store *s = sc_make();
    torn_ctx c = {.s = s, .na = 5000, .nb = 12345};
    unsigned char *a = make_blob(c.na, 21), *b = make_blob(c.nb, 22);
    c.a = a;
    c.b = b;
    ck_assert_int_eq(s->ops->result_put(s, "t", a, c.na, 0), HL_OK);
    pthread_t w, r[2];
    ck_assert_int_eq(pthread_create(&r[0], NULL, torn_reader, &c), 0);
    ck_assert_int_eq(pthread_create(&r[1], NULL, torn_reader, &c), 0);
    ck_assert_int_eq(pthread_create(&w, NULL, torn_writer, &c), 0);
    pthread_join(w, NULL);
    pthread_join(r[0], NULL);
    pthread_join(r[1], NULL);
    ck_assert_msg(atomic_load(&c.reads_bad) == 0, "%d bad reads (ok %d, not found %d, busy %d)",
                  atomic_load(&c.reads_bad), atomic_load(&c.reads_ok), atomic_load(&c.reads_gone),
                  atomic_load(&c.reads_busy));
    assert_blob(s, RESULT, "t", (SC_TORN_WRITES - 1) % 2 ? b : a,
                (SC_TORN_WRITES - 1) % 2 ? c.nb : c.na);
    free(a);
    free(b);
    s->ops->destroy(s);
}
END_TEST

/* ---------------------------------------------------------------- cache and idempotency */

START_TEST(cache_get_put)
{
    srv_store *s = sc_make();
    char *v = NULL;
    ck_assert_int_eq(s->ops->cache_get(s, "h1", &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->cache_put(s, "h1", "job-1", 0), HL_OK);
    ck_assert_int_eq(s->ops->cache_get(s, "h1", &v), HL_OK);
    ck_assert_str_eq(v, "job-1");
    free(v);
    ck_assert_int_eq(s->ops->cache_put(s, "h1", "job-2", 0), HL_OK); /* replaces */
    ck_assert_int_eq(s->ops->cache_get(s, "h1", &v), HL_OK);
    ck_assert_str_eq(v, "job-2");
    free(v);
    v = NULL;
    ck_assert_int_eq(s->ops->cache_get(s, "h2", &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->cache_put(s, "short", "job-3", 1), HL_OK);
    ck_assert_int_eq(probe_cache(s, "short"), HL_OK);
    ck_assert_msg(wait_gone(s, probe_cache, "short") >= 0, "cache entry with 1 s TTL stayed");
    ck_assert_int_eq(probe_cache(s, "h1"), HL_OK);
    s->ops->destroy(s);
}
END_TEST

START_TEST(idem_claim)
{
    srv_store *s = sc_make();
    char *old = NULL;
    ck_assert_int_eq(s->ops->idem_claim(s, "k", "job-1 hash-a", 0, &old), HL_OK);
    ck_assert_int_eq(s->ops->idem_claim(s, "k", "job-2 hash-b", 0, &old), HL_BUSY);
    ck_assert_ptr_nonnull(old);
    ck_assert_str_eq(old, "job-1 hash-a");
    free(old);
    old = NULL;
    ck_assert_int_eq(s->ops->idem_claim(s, "k", "job-3 hash-c", 0, &old), HL_BUSY);
    ck_assert_str_eq(old, "job-1 hash-a"); /* a failed claim does not overwrite */
    free(old);
    old = NULL;
    ck_assert_int_eq(s->ops->idem_claim(s, "other", "job-4", 0, &old), HL_OK);
    free(old);
    s->ops->destroy(s);
}
END_TEST

START_TEST(idem_ttl_expires)
{
    srv_store *s = sc_make();
    char *old = NULL;
    ck_assert_int_eq(s->ops->idem_claim(s, "short", "v1", 1, &old), HL_OK);
    ck_assert_int_eq(s->ops->idem_claim(s, "keep", "v1", 0, &old), HL_OK);
    double t0 = now_s();
    hl_status st = HL_BUSY;
    while (st == HL_BUSY && now_s() - t0 < SC_EXPIRY_WAIT_S) {
        free(old);
        old = NULL;
        st = s->ops->idem_claim(s, "short", "v2", 0, &old);
        if (st == HL_BUSY) {
            ck_assert_str_eq(old, "v1");
            sleep_ms(50);
        }
    }
    ck_assert_msg(st == HL_OK, "an idempotency key with a 1 s TTL was still claimed: %s",
                  hl_status_name(st));
    free(old);
    old = NULL;
    ck_assert_int_eq(s->ops->idem_claim(s, "keep", "v2", 0, &old), HL_BUSY);
    ck_assert_str_eq(old, "v1");
    free(old);
    s->ops->destroy(s);
}
END_TEST

START_TEST(job_incr_counts)
{
    srv_store *s = sc_make();
    const srv_field q[] = {{"status", "queued"}, {"bad", "x1"}};
    const srv_field done[] = {{"status", "failed"}};
    long long v = -7;
    ck_assert_int_eq(s->ops->job_incr(s, "nope", "attempts", 1, NULL, &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->job_create(s, "j", q, 2), HL_OK);
    ck_assert_int_eq(s->ops->job_incr(s, "j", "attempts", 1, "queued,running", &v), HL_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(s->ops->job_incr(s, "j", "attempts", 2, NULL, &v), HL_OK);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(s->ops->job_incr(s, "j", "attempts", -1, "queued", &v), HL_OK);
    ck_assert_int_eq(v, 2);
    assert_field(s, "j", "attempts", "2");
    ck_assert_int_eq(s->ops->job_incr(s, "j", "bad", 1, NULL, &v), HL_FORMAT);
    assert_field(s, "j", "bad", "x1");
    ck_assert_int_eq(s->ops->job_incr(s, "j", "attempts", 1, "running", &v), HL_BUSY);
    ck_assert_int_eq(s->ops->job_update(s, "j", done, 1, NULL, 0), HL_OK);
    ck_assert_int_eq(s->ops->job_incr(s, "j", "attempts", 1, "queued,running", &v), HL_BUSY);
    assert_field(s, "j", "attempts", "2"); /* a failed precondition changes nothing */
    s->ops->destroy(s);
}
END_TEST

typedef struct incr_arg {
    srv_store *s;
    int n;
} incr_arg;

static void *incr_worker(void *arg)
{
    incr_arg *a = arg;
    for (int i = 0; i < a->n; i++)
        ck_assert_int_eq(a->s->ops->job_incr(a->s, "j", "attempts", 1, "running", NULL), HL_OK);
    return NULL;
}

START_TEST(job_incr_races_all_count)
{
    srv_store *s = sc_make();
    const srv_field r[] = {{"status", "running"}};
    ck_assert_int_eq(s->ops->job_create(s, "j", r, 1), HL_OK);
    pthread_t t[SC_THREADS];
    incr_arg a = {s, 25};
    for (int i = 0; i < SC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, incr_worker, &a), 0);
    for (int i = 0; i < SC_THREADS; i++)
        pthread_join(t[i], NULL);
    char want[16];
    snprintf(want, sizeof(want), "%d", SC_THREADS * 25);
    assert_field(s, "j", "attempts", want);
    s->ops->destroy(s);
}
END_TEST

START_TEST(owner_limits_active_jobs)
{
    srv_store *s = sc_make();
    const srv_field q[] = {{"status", "queued"}};
    const srv_field done[] = {{"status", "succeeded"}};
    ck_assert_int_eq(s->ops->job_create(s, "a", q, 1), HL_OK);
    ck_assert_int_eq(s->ops->job_create(s, "b", q, 1), HL_OK);
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "a", 2, 60), HL_OK);
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "a", 2, 60), HL_OK); /* twice: still one */
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "b", 2, 60), HL_OK);
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "c", 2, 60), HL_BUSY);
    ck_assert_int_eq(s->ops->owner_admit(s, "bob", "c", 2, 60), HL_OK); /* per owner */
    /* A job that ended frees its place; so does a release. */
    ck_assert_int_eq(s->ops->job_update(s, "a", done, 1, NULL, 0), HL_OK);
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "c", 2, 60), HL_OK);
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "d", 2, 60), HL_BUSY);
    ck_assert_int_eq(s->ops->owner_release(s, "alice", "c"), HL_OK);
    ck_assert_int_eq(s->ops->owner_release(s, "alice", "c"), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "d", 2, 60), HL_OK);
    /* "d" never got a record: it counts during the grace period only. */
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "e", 2, 60), HL_BUSY);
    sleep_ms(2100);
    ck_assert_int_eq(s->ops->owner_admit(s, "alice", "e", 2, 1), HL_OK);
    s->ops->destroy(s);
}
END_TEST

START_TEST(idem_replace_cas)
{
    srv_store *s = sc_make();
    char *old = NULL;
    ck_assert_int_eq(s->ops->idem_replace(s, "k", "a", "b", 0), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->idem_claim(s, "k", "a", 0, NULL), HL_OK);
    ck_assert_int_eq(s->ops->idem_replace(s, "k", "x", "b", 0), HL_BUSY);
    ck_assert_int_eq(s->ops->idem_replace(s, "k", "a", "b", 60), HL_OK);
    ck_assert_int_eq(s->ops->idem_replace(s, "k", "a", "c", 60), HL_BUSY); /* one winner */
    ck_assert_int_eq(s->ops->idem_claim(s, "k", "z", 0, &old), HL_BUSY);
    ck_assert_str_eq(old, "b");
    free(old);
    s->ops->destroy(s);
}
END_TEST

TCase *sc_tcase(const sc_backend *b)
{
    g_backend = *b;
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, job_create_get);
    tcase_add_test(tc, job_create_busy);
    tcase_add_test(tc, job_update_fields);
    tcase_add_test(tc, job_update_cas);
    tcase_add_test(tc, job_update_missing);
    tcase_add_test(tc, job_delete);
    tcase_add_test(tc, job_ttl_expires);
    tcase_add_test(tc, races_have_one_winner);
    tcase_add_test(tc, blob_roundtrip);
    tcase_add_test(tc, blob_kinds_are_separate);
    tcase_add_test(tc, blob_empty);
    tcase_add_test(tc, blob_large);
    tcase_add_test(tc, blob_ttl_expires);
    tcase_add_test(tc, blob_readers_never_see_torn_writes);
    tcase_add_test(tc, cache_get_put);
    tcase_add_test(tc, idem_claim);
    tcase_add_test(tc, idem_ttl_expires);
    tcase_add_test(tc, job_incr_counts);
    tcase_add_test(tc, job_incr_races_all_count);
    tcase_add_test(tc, owner_limits_active_jobs);
    tcase_add_test(tc, idem_replace_cas);
    return tc;
}
