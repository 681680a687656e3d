/* test_store_mem.c - the embedded store: records, CAS, NX, TTLs, LRU eviction by bytes, and
 * the rule that queued inputs and unfinished jobs are never evicted. */
#include "store_conformance.h"
#include "store_mem.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *store_mem_suite(void);

static double fake_now;

static double clock_fn(void *ud)
{
    (void)ud;
    return fake_now;
}

static srv_store *mk(size_t max)
{
    srv_store *s;
    ck_assert_int_eq(srv_store_mem_new(max, &s), HL_OK);
    fake_now = 1000.0;
    srv_store_mem_set_clock(s, clock_fn, NULL);
    ck_assert(srv_store_is_mem(s));
    return s;
}

static void job(srv_store *s, const char *id, const char *status)
{
    srv_field f[2] = {{"status", status}, {"n", "10"}};
    ck_assert_int_eq(s->ops->job_create(s, id, f, 2), HL_OK);
}

START_TEST(records_and_cas)
{
    srv_store *s = mk(1 << 20);
    job(s, "j1", "queued");
    srv_field dup[1] = {{"status", "running"}};
    ck_assert_int_eq(s->ops->job_create(s, "j1", dup, 1), HL_BUSY); /* NX */
    srv_record r;
    ck_assert_int_eq(s->ops->job_get(s, "j1", &r), HL_OK);
    ck_assert_str_eq(srv_record_get(&r, "status"), "queued");
    ck_assert_str_eq(srv_record_get(&r, "n"), "10");
    ck_assert_ptr_null(srv_record_get(&r, "missing"));
    srv_record_free(&r);
    srv_field run[2] = {{"status", "running"}, {"stage", "knn"}};
    ck_assert_int_eq(s->ops->job_update(s, "j1", run, 2, "running", 0), HL_BUSY);
    ck_assert_int_eq(s->ops->job_update(s, "j1", run, 2, "succeeded,queued", 0), HL_OK);
    ck_assert_int_eq(s->ops->job_update(s, "j1", run, 2, "queued", 0), HL_BUSY);
    ck_assert_int_eq(s->ops->job_update(s, "j1", run, 1, NULL, 0), HL_OK); /* no condition */
    ck_assert_int_eq(s->ops->job_get(s, "j1", &r), HL_OK);
    ck_assert_str_eq(srv_record_get(&r, "stage"), "knn");
    ck_assert_uint_eq(r.n, 3);
    srv_record_free(&r);
    ck_assert_int_eq(s->ops->job_update(s, "nope", run, 1, NULL, 0), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->job_delete(s, "j1"), HL_OK);
    ck_assert_int_eq(s->ops->job_get(s, "j1", &r), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->job_delete(s, "j1"), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->ping(s), HL_OK);
    s->ops->destroy(s);
}
END_TEST

START_TEST(blobs_and_strings)
{
    srv_store *s = mk(1 << 20);
    char data[100];
    memset(data, 7, sizeof(data));
    ck_assert_int_eq(s->ops->result_put(s, "j1", data, sizeof(data), 0), HL_OK);
    data[0] = 9; /* the store kept a copy */
    void *out;
    size_t len;
    ck_assert_int_eq(s->ops->result_get(s, "j1", &out, &len), HL_OK);
    ck_assert_uint_eq(len, 100);
    ck_assert_int_eq(((char *)out)[0], 7);
    free(out);
    ck_assert_int_eq(s->ops->input_get(s, "j1", &out, &len), HL_NOTFOUND); /* kinds differ */
    ck_assert_int_eq(s->ops->input_put(s, "j1", data, 10, 0), HL_OK);
    ck_assert_int_eq(s->ops->input_get(s, "j1", &out, &len), HL_OK);
    ck_assert_uint_eq(len, 10);
    free(out);
    ck_assert_int_eq(s->ops->input_delete(s, "j1"), HL_OK);
    ck_assert_int_eq(s->ops->result_delete(s, "j1"), HL_OK);
    ck_assert_int_eq(s->ops->result_get(s, "j1", &out, &len), HL_NOTFOUND);
    char *v;
    ck_assert_int_eq(s->ops->cache_get(s, "k", &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->cache_put(s, "k", "j1", 0), HL_OK);
    ck_assert_int_eq(s->ops->cache_put(s, "k", "j2", 0), HL_OK); /* overwrite */
    ck_assert_int_eq(s->ops->cache_get(s, "k", &v), HL_OK);
    ck_assert_str_eq(v, "j2");
    free(v);
    char *existing = NULL;
    ck_assert_int_eq(s->ops->idem_claim(s, "key", "j1 h1", 0, &existing), HL_OK);
    ck_assert_ptr_null(existing);
    ck_assert_int_eq(s->ops->idem_claim(s, "key", "j2 h2", 0, &existing), HL_BUSY); /* NX */
    ck_assert_str_eq(existing, "j1 h1");
    free(existing);
    s->ops->destroy(s);
}
END_TEST

START_TEST(ttl_expiry)
{
    srv_store *s = mk(1 << 20);
    ck_assert_int_eq(s->ops->result_put(s, "a", "xy", 2, 10), HL_OK);
    ck_assert_int_eq(s->ops->cache_put(s, "c", "a", 5), HL_OK);
    ck_assert_int_eq(s->ops->result_put(s, "forever", "z", 1, 0), HL_OK);
    job(s, "j", "running");
    srv_field done[1] = {{"status", "succeeded"}};
    ck_assert_int_eq(s->ops->job_update(s, "j", done, 1, "running", 20), HL_OK);
    void *out;
    size_t len;
    char *v;
    fake_now += 4.9;
    ck_assert_int_eq(s->ops->cache_get(s, "c", &v), HL_OK);
    free(v);
    fake_now += 0.2; /* 5.1 s: the cache entry is gone, read lazily */
    ck_assert_int_eq(s->ops->cache_get(s, "c", &v), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->result_get(s, "a", &out, &len), HL_OK);
    free(out);
    fake_now += 5.0; /* 10.1 s: the sweep reclaims the result nobody read */
    size_t before = srv_store_mem_bytes(s);
    ck_assert_uint_eq(srv_store_mem_sweep(s), 1);
    ck_assert_uint_lt(srv_store_mem_bytes(s), before);
    ck_assert_int_eq(s->ops->result_get(s, "a", &out, &len), HL_NOTFOUND);
    srv_record r;
    ck_assert_int_eq(s->ops->job_get(s, "j", &r), HL_OK);
    srv_record_free(&r);
    fake_now += 10.0;
    ck_assert_uint_eq(srv_store_mem_sweep(s), 1);
    ck_assert_int_eq(s->ops->job_get(s, "j", &r), HL_NOTFOUND);
    fake_now += 1e6;
    ck_assert_int_eq(s->ops->result_get(s, "forever", &out, &len), HL_OK);
    free(out);
    s->ops->destroy(s);
}
END_TEST

/* Results are evicted least recently used first, by bytes. */
START_TEST(lru_by_bytes)
{
    srv_store *s = mk(64 * 1024);
    static char blob[10000];
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        ck_assert_int_eq(s->ops->result_put(s, id, blob, sizeof(blob), 0), HL_OK);
    }
    void *out;
    size_t len;
    ck_assert_int_eq(s->ops->result_get(s, "r0", &out, &len), HL_OK); /* r0 is now recent */
    free(out);
    for (int i = 5; i < 8; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        ck_assert_int_eq(s->ops->result_put(s, id, blob, sizeof(blob), 0), HL_OK);
        ck_assert_uint_le(srv_store_mem_bytes(s), 64 * 1024);
    }
    ck_assert_int_eq(s->ops->result_get(s, "r1", &out, &len), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->result_get(s, "r2", &out, &len), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->result_get(s, "r0", &out, &len), HL_OK);
    free(out);
    ck_assert_int_eq(s->ops->result_get(s, "r7", &out, &len), HL_OK);
    free(out);
    /* Bigger than the whole store: refused, nothing else lost for it. */
    static char huge[70000];
    ck_assert_int_eq(s->ops->result_put(s, "huge", huge, sizeof(huge), 0), HL_NOMEM);
    s->ops->destroy(s);
}
END_TEST

/* Queued inputs and unfinished job records are never evicted; terminal records are. */
START_TEST(never_evicts_queued)
{
    srv_store *s = mk(64 * 1024);
    static char blob[30000];
    job(s, "queued-job", "queued");
    job(s, "done-job", "succeeded");
    ck_assert_int_eq(s->ops->input_put(s, "queued-job", blob, sizeof(blob), 0), HL_OK);
    ck_assert_int_eq(s->ops->result_put(s, "old", blob, sizeof(blob), 0), HL_OK);
    /* Needs the old result's room: it goes, the input stays. */
    ck_assert_int_eq(s->ops->result_put(s, "new", blob, sizeof(blob), 0), HL_OK);
    void *out;
    size_t len;
    ck_assert_int_eq(s->ops->result_get(s, "old", &out, &len), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->input_get(s, "queued-job", &out, &len), HL_OK);
    free(out);
    /* No result left to evict but "new": a second input cannot fit without the first. */
    ck_assert_int_eq(s->ops->input_put(s, "other", blob, sizeof(blob), 0), HL_OK);
    ck_assert_int_eq(s->ops->result_get(s, "new", &out, &len), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->input_put(s, "third", blob, sizeof(blob), 0), HL_NOMEM);
    ck_assert_int_eq(s->ops->input_get(s, "queued-job", &out, &len), HL_OK);
    free(out);
    ck_assert_int_eq(s->ops->input_get(s, "other", &out, &len), HL_OK);
    free(out);
    srv_record r;
    ck_assert_int_eq(s->ops->job_get(s, "queued-job", &r), HL_OK);
    srv_record_free(&r);
    ck_assert_int_eq(s->ops->job_get(s, "done-job", &r), HL_NOTFOUND); /* evicted */
    s->ops->destroy(s);
}
END_TEST

/* A clone shares the source's base but is accounted in full (never under the cap), makes
 * room like any write (results first, never by evicting its own source: HL_NOMEM then,
 * nothing half made), and every byte is given back when both are deleted. */
START_TEST(state_clone_bytes)
{
    srv_store *s = mk(64 * 1024);
    static char base[25000], res[20000], big[40000];
    for (size_t i = 0; i < sizeof(base); i++)
        base[i] = (char)(i * 7);
    size_t empty = srv_store_mem_bytes(s);
    ck_assert_int_eq(s->ops->state_put(s, "src", base, sizeof(base), 1, 0, NULL), HL_OK);
    size_t one = srv_store_mem_bytes(s);
    ck_assert_int_eq(s->ops->result_put(s, "r", res, sizeof(res), 0), HL_OK);
    ck_assert_int_eq(s->ops->state_clone(s, "src", "dst", 1, 0, NULL), HL_OK);
    ck_assert_uint_le(srv_store_mem_bytes(s), 64 * 1024);
    void *out;
    size_t len;
    ck_assert_int_eq(s->ops->result_get(s, "r", &out, &len), HL_NOTFOUND); /* made room */
    /* (keys "src" and "dst" have the same length: exactly twice the bytes) */
    ck_assert_uint_eq(srv_store_mem_bytes(s), empty + 2 * (one - empty));
    ck_assert_int_eq(s->ops->state_delete(s, "dst"), HL_OK);
    ck_assert_uint_eq(srv_store_mem_bytes(s), one);
    /* Room for one clone beside the source: the next evicts the older clone, never the
     * source it is made from. */
    ck_assert_int_eq(s->ops->state_clone(s, "src", "d1", 1, 0, NULL), HL_OK);
    ck_assert_int_eq(s->ops->state_clone(s, "src", "d2", 1, 0, NULL), HL_OK);
    srv_state_head h;
    ck_assert_int_eq(s->ops->state_head(s, "d1", &h), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_head(s, "src", &h), HL_OK);
    ck_assert_int_eq(s->ops->state_head(s, "d2", &h), HL_OK); /* the source is now colder */
    /* A big state evicts the source (the cold end): its clone d2 keeps the shared bytes. */
    ck_assert_int_eq(s->ops->state_put(s, "bsrc", big, sizeof(big), 1, 0, NULL), HL_OK);
    ck_assert_int_eq(s->ops->state_head(s, "src", &h), HL_NOTFOUND);
    srv_state_chain c;
    ck_assert_int_eq(s->ops->state_get(s, "d2", &c), HL_OK);
    ck_assert_uint_eq(c.base_len, sizeof(base));
    ck_assert(memcmp(c.base, base, sizeof(base)) == 0);
    srv_state_chain_free(&c);
    /* No room for a clone of the big one without evicting its source: refused, nothing made. */
    ck_assert_int_eq(s->ops->state_clone(s, "bsrc", "bdst", 1, 0, NULL), HL_NOMEM);
    ck_assert_int_eq(s->ops->state_head(s, "bdst", &h), HL_NOTFOUND);
    ck_assert_int_eq(s->ops->state_get(s, "bsrc", &c), HL_OK);
    ck_assert_uint_eq(c.base_len, sizeof(big));
    srv_state_chain_free(&c);
    ck_assert_int_eq(s->ops->state_delete(s, "bsrc"), HL_OK);
    hl_status st = s->ops->state_delete(s, "d2"); /* (evicted by the refused attempt or not) */
    ck_assert(st == HL_OK || st == HL_NOTFOUND);
    ck_assert_uint_eq(srv_store_mem_bytes(s), empty);
    s->ops->destroy(s);
}
END_TEST

/* The backend-independent cases of store.h (shared with the Redis suite). */
static hl_status make_mem(void *ud, srv_store **out)
{
    (void)ud;
    return srv_store_mem_new((size_t)256 << 20, out);
}

Suite *store_mem_suite(void)
{
    static const sc_backend mem = {"memory", make_mem, NULL};
    Suite *s = suite_create("store_mem");
    TCase *tc = tcase_create("store_mem");
    tcase_add_test(tc, records_and_cas);
    tcase_add_test(tc, blobs_and_strings);
    tcase_add_test(tc, ttl_expiry);
    tcase_add_test(tc, lru_by_bytes);
    tcase_add_test(tc, never_evicts_queued);
    tcase_add_test(tc, state_clone_bytes);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, sc_tcase(&mem));
    suite_add_tcase(s, sc_state_tcase(&mem));
    return s;
}
