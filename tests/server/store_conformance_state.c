/* store_conformance_state.c - the clustering state and lock operations of store.h, for every
 * backend (see store_conformance.h): versions with compare-and-set, whole versions under
 * concurrent writers and readers, TTLs, and mutual exclusion. */
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

static void put_version(srv_store *s, const char *id, uint64_t v, uint64_t ttl, hl_status want)
{
    size_t len;
    unsigned char *p = version_bytes(v, &len);
    hl_status st = s->ops->state_put(s, id, p, len, v, ttl);
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
    ck_assert_int_eq(s->ops->state_get(s, "c1", &d, &len, &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_get(s, "c1", NULL, NULL, &v), HL_NOTFOUND);
    put_version(s, "c1", 2, 0, HL_BUSY); /* the first version is 1 */
    put_version(s, "c1", 1, 0, HL_OK);
    put_version(s, "c1", 1, 0, HL_BUSY);
    ck_assert_int_eq(s->ops->state_get(s, "c1", &d, &len, &v), HL_OK);
    ck_assert_uint_eq(v, 1);
    ck_assert(is_version(d, len, 1));
    free(d);
    put_version(s, "c1", 3, 0, HL_BUSY);
    put_version(s, "c1", 2, 0, HL_OK);
    v = 0;
    ck_assert_int_eq(s->ops->state_get(s, "c1", NULL, NULL, &v), HL_OK);
    ck_assert_uint_eq(v, 2);
    ck_assert_int_eq(s->ops->state_get(s, "c1", &d, &len, &v), HL_OK);
    ck_assert(is_version(d, len, 2));
    free(d);
    /* Independent of results, inputs and other states of the same id space. */
    ck_assert_int_eq(s->ops->result_put(s, "c1", "r", 1, 0), HL_OK);
    ck_assert_int_eq(s->ops->state_get(s, "c2", NULL, NULL, &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_delete(s, "c1"), HL_OK);
    ck_assert_int_eq(s->ops->state_get(s, "c1", &d, &len, &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_delete(s, "c1"), HL_NOTFOUND);
    put_version(s, "c1", 1, 0, HL_OK); /* after a delete the versions start again */
    ck_assert_int_eq(s->ops->state_put(s, "c1", "x", 1, 0, 0), HL_INVAL);
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
    ck_assert_int_eq(s->ops->state_put(s, "big", big, SC_LARGE_BYTES, 1, 0), HL_OK);
    ck_assert_int_eq(s->ops->state_put(s, "big", big, SC_LARGE_BYTES - 1, 2, 0), HL_OK);
    void *d = NULL;
    size_t len = 0;
    uint64_t v = 0;
    ck_assert_int_eq(s->ops->state_get(s, "big", &d, &len, &v), HL_OK);
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
        st = s->ops->state_get(s, "short", NULL, NULL, &v);
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
        hl_status st = r->s->ops->state_get(r->s, "hot", NULL, NULL, &v);
        if (st != HL_OK && st != HL_NOTFOUND)
            continue;
        size_t len;
        unsigned char *p = version_bytes(v + 1, &len);
        if (r->s->ops->state_put(r->s, "hot", p, len, v + 1, 0) == HL_OK)
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
        hl_status st = r->s->ops->state_get(r->s, "hot", &d, &len, &v);
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
    ck_assert_int_eq(r.s->ops->state_get(r.s, "hot", NULL, NULL, &v), HL_OK);
    /* No lost update: every successful write made exactly one version. */
    ck_assert_uint_eq(v, (uint64_t)atomic_load(&r.won));
    ck_assert_int_ge(atomic_load(&r.won), 10);
    ck_assert_int_eq(atomic_load(&r.torn), 0);
    r.s->ops->destroy(r.s);
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
    tcase_add_test(tc, lock_semantics);
    tcase_add_test(tc, lock_mutual_exclusion);
    return tc;
}
