/* test_assign_state.c - assigns through the job code (srv__assign_execute) with the decoded-state
 * cache and delta versions, against the embedded store and a private redis-server: a cache hit
 * gives byte-identical results and states to the cold path, a replica with a stale cache picks
 * up another replica's versions, deltas + compaction + a restart serve every version, two
 * replicas racing on one clustering stay linear, and a corrupt delta fails with a clear error
 * while nothing stored is lost. "Replicas" are srv_ctx values with their own caches sharing
 * one store, as hilanderd processes share one Redis. */
#include "jobs.h"
#include "metrics.h"
#include "redis_harness.h"
#include "result.h"
#include "state_cache.h"
#include "store.h"
#include "test_util.h"

#include "hl/statefile.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *assign_state_suite(void);

#define D        8
#define N_BASE   400
#define BATCH    60
#define N_ASSIGN 8

static rh_server g_rh;
static int g_redis; /* the cases run against Redis (1) or the embedded store (0) */
static srv_config g_cfg;
static float *g_x; /* N_BASE + N_ASSIGN * BATCH + 2 * BATCH points */

static void setup_data(void)
{
    size_t n = N_BASE + (N_ASSIGN + 2) * BATCH;
    int32_t *y = NULL;
    g_x = tu_blobs(n, D, 12, 0.15f, 5, &y);
    free(y);
    for (size_t i = N_BASE; i < n; i++) /* every 9th new point is far: new clusters */
        if (i % 9 == 0)
            g_x[i * D + i % D] = 6.0f + (float)(i % 5);
    memset(&g_cfg, 0, sizeof(g_cfg));
    g_cfg.result_ttl = 3600;
    g_cfg.engine_threads = 1;
}

static void teardown_data(void)
{
    free(g_x);
    g_x = NULL;
}

static srv_store *new_store(void)
{
    srv_store *s = NULL;
    if (!g_redis) {
        ck_assert_int_eq(srv_store_mem_new((size_t)512 << 20, &s), HL_OK);
        return s;
    }
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_store_redis_new(g_rh.url, 10000, 4, &s, &err), HL_OK);
    return s;
}

/* A replica: its own metrics and state cache (none when cache_bytes is 0), on `store`. */
static srv_ctx *replica(srv_store *store, size_t cache_bytes)
{
    srv_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->cfg = &g_cfg;
    c->store = store;
    ck_assert_int_eq(srv_metrics_new(&c->metrics), HL_OK);
    if (cache_bytes > 0)
        ck_assert_int_eq(srv_state_cache_new(cache_bytes, &c->state_cache), HL_OK);
    return c;
}

static void replica_free(srv_ctx *c)
{
    srv_state_cache_free(c->state_cache);
    srv_metrics_free(c->metrics);
    free(c);
}

/* Clusters the first N_BASE points model-free and saves the state as `cid` version 1. */
static void save_clustering(srv_ctx *c, const char *cid)
{
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.8f;
    hl_clustering *cl = NULL;
    hl_assign_state *s = NULL;
    ck_assert_int_eq(hl_cluster_run_state(g_x, N_BASE, D, NULL, 0, &p, &cl, &s, NULL), HL_OK);
    hl_clustering_free(cl);
    srv_job *j;
    ck_assert_int_eq(srv_job_new(&j), HL_OK);
    snprintf(j->id, sizeof(j->id), "%s", cid);
    j->ctx = c;
    srv__state_save(c, j, s);
    srv_job_release(j);
    srv_state_head h;
    ck_assert_int_eq(c->store->ops->state_head(c->store, cid, &h), HL_OK);
    ck_assert_uint_eq(h.version, 1);
}

/* Assigns batch k (BATCH points) to `cid` through replica c; returns the result's bytes
 * (NULL when the job failed: *err says why) and the version it wrote. */
static void *assign_batch(srv_ctx *c, const char *cid, int k, size_t *len, uint64_t *version,
                          hl_error *err)
{
    srv_job *j;
    ck_assert_int_eq(srv_job_new(&j), HL_OK);
    j->ctx = c;
    j->kind = SRV_KIND_ASSIGN;
    snprintf(j->clustering, sizeof(j->clustering), "%s", cid);
    j->new_clusters = HL_NEW_OPEN;
    j->x.data = g_x + (size_t)(N_BASE + k * BATCH) * D;
    j->x.rows = BATCH;
    j->x.cols = D;
    hl_error_clear(err);
    hl_status st = srv__assign_execute(c, j, err);
    void *r = NULL;
    *len = 0;
    if (st == HL_OK) {
        ck_assert_int_eq(c->store->ops->result_get(c->store, j->id, &r, len), HL_OK);
        srv_assign_result ar;
        ck_assert_int_eq(srv_assign_result_decode(r, *len, &ar), HL_OK);
        *version = ar.version;
    }
    j->x.data = NULL; /* borrowed */
    srv_job_release(j);
    return r;
}

/* The whole current state of `cid` as the cold path reads it, re-encoded (canonical bytes). */
static void *stored_state(srv_store *s, const char *cid, size_t *len, srv_state_head *h)
{
    srv_state_chain c;
    ck_assert_int_eq(s->ops->state_get(s, cid, &c), HL_OK);
    hl_assign_state *st = NULL;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_statefile_decode_chain(c.base, c.base_len, (const void *const *)c.deltas,
                                            c.delta_lens, c.head.n_deltas, &st, &e) == HL_OK,
                  "%s", e.msg);
    *h = c.head;
    srv_state_chain_free(&c);
    void *b = NULL;
    ck_assert_int_eq(hl_statefile_encode(st, &b, len, NULL, NULL), HL_OK);
    hl_assign_state_free(st);
    return b;
}

static uint64_t state_hits(srv_ctx *c)
{
    return srv_metrics_state_cache_hits(c->metrics);
}

static void flush(void)
{
    if (g_redis)
        ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
}

/* The hot path (cache) and the cold path (no cache: every assign rebuilds from base + deltas)
 * give the same result bytes for every batch and the same stored state; deltas are written,
 * a compaction happens, and the hot replica hit its cache on every assign. */
START_TEST(hit_equals_cold)
{
    flush();
    srv_store *s1 = new_store();
    srv_store *s2 = g_redis ? s1 : new_store(); /* with Redis: two ids on one server */
    srv_ctx *hot = replica(s1, (size_t)256 << 20), *cold = replica(s2, 0);
    save_clustering(hot, "hot1");
    save_clustering(cold, "cold1");
    uint64_t bases = 0, max_deltas = 0;
    for (int k = 0; k < N_ASSIGN; k++) {
        size_t l1, l2;
        uint64_t v1 = 0, v2 = 0;
        hl_error e1, e2;
        void *r1 = assign_batch(hot, "hot1", k, &l1, &v1, &e1);
        void *r2 = assign_batch(cold, "cold1", k, &l2, &v2, &e2);
        ck_assert_msg(r1 != NULL && r2 != NULL, "batch %d: %s / %s", k, e1.msg, e2.msg);
        ck_assert_uint_eq(v1, (uint64_t)k + 2);
        ck_assert_uint_eq(v2, (uint64_t)k + 2);
        /* The results differ only in the clustering id they name. */
        srv_assign_result a1, a2;
        ck_assert_int_eq(srv_assign_result_decode(r1, l1, &a1), HL_OK);
        ck_assert_int_eq(srv_assign_result_decode(r2, l2, &a2), HL_OK);
        ck_assert_uint_eq(a1.n, a2.n);
        ck_assert_mem_eq(a1.labels, a2.labels, a1.n * sizeof(int32_t));
        ck_assert_mem_eq(a1.scores, a2.scores, a1.n * sizeof(float));
        ck_assert(a1.attached == a2.attached && a1.new_clusters == a2.new_clusters);
        free(r1);
        free(r2);
        size_t sl1, sl2;
        srv_state_head h1, h2;
        void *b1 = stored_state(s1, "hot1", &sl1, &h1), *b2 = stored_state(s2, "cold1", &sl2, &h2);
        ck_assert_uint_eq(sl1, sl2);
        ck_assert_mem_eq(b1, b2, sl1);
        ck_assert_uint_eq(h1.n_deltas, h2.n_deltas);
        bases += h1.n_deltas == 0;
        max_deltas = h1.n_deltas > max_deltas ? h1.n_deltas : max_deltas;
        /* compaction keeps the deltas under half the base */
        ck_assert_uint_le(h1.delta_bytes, h1.base_bytes / 2);
        free(b1);
        free(b2);
    }
    ck_assert_uint_ge(bases, 1);      /* a compaction happened */
    ck_assert_uint_ge(max_deltas, 2); /* and deltas were chained before it */
    ck_assert_uint_eq(state_hits(hot), N_ASSIGN);
    ck_assert_uint_eq(state_hits(cold), 0);
    replica_free(hot);
    replica_free(cold);
    if (s2 != s1)
        s2->ops->destroy(s2);
    s1->ops->destroy(s1);
}
END_TEST

/* Replicas A and B share the store: A writes v2 (its cache keeps v2), B writes v3, then A must
 * notice its cache is stale and rebuild v3, so its v4 holds B's points; a restarted replica
 * (empty cache) rebuilds from base + deltas. Every result equals a reference run on a store
 * of its own. */
START_TEST(stale_replica)
{
    flush();
    srv_store *s = new_store(), *rs = g_redis ? s : new_store();
    srv_ctx *a = replica(s, (size_t)256 << 20), *b = replica(s, (size_t)256 << 20);
    srv_ctx *ref = replica(rs, (size_t)256 << 20);
    save_clustering(a, "sh1");
    save_clustering(ref, "ref1");
    srv_ctx *order[5] = {a, b, a, b, NULL};
    for (int k = 0; k < 5; k++) {
        srv_ctx *c = order[k];
        int restarted = c == NULL;
        if (restarted)
            c = replica(s, (size_t)256 << 20);
        size_t l1, l2;
        uint64_t v1 = 0, v2 = 0;
        hl_error e1, e2;
        uint64_t hits0 = state_hits(c);
        void *r1 = assign_batch(c, "sh1", k, &l1, &v1, &e1);
        void *r2 = assign_batch(ref, "ref1", k, &l2, &v2, &e2);
        ck_assert_msg(r1 != NULL && r2 != NULL, "step %d: %s / %s", k, e1.msg, e2.msg);
        ck_assert_uint_eq(v1, (uint64_t)k + 2);
        srv_assign_result x1, x2;
        ck_assert_int_eq(srv_assign_result_decode(r1, l1, &x1), HL_OK);
        ck_assert_int_eq(srv_assign_result_decode(r2, l2, &x2), HL_OK);
        ck_assert_mem_eq(x1.labels, x2.labels, x1.n * sizeof(int32_t));
        ck_assert_mem_eq(x1.scores, x2.scores, x1.n * sizeof(float));
        /* A hits only on its first assign (v1 from the save); B and the restart never do. */
        ck_assert_uint_eq(state_hits(c) - hits0, k == 0 ? 1 : 0);
        free(r1);
        free(r2);
        if (restarted)
            replica_free(c);
    }
    size_t l1, l2;
    srv_state_head h1, h2;
    void *b1 = stored_state(s, "sh1", &l1, &h1), *b2 = stored_state(rs, "ref1", &l2, &h2);
    ck_assert_uint_eq(h1.version, 6);
    ck_assert_uint_eq(l1, l2);
    ck_assert_mem_eq(b1, b2, l1);
    free(b1);
    free(b2);
    replica_free(a);
    replica_free(b);
    replica_free(ref);
    if (rs != s)
        rs->ops->destroy(rs);
    s->ops->destroy(s);
}
END_TEST

typedef struct racer {
    srv_ctx *c;
    int k;
    uint64_t version;
    void *r;
    size_t len;
    hl_error e;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    r->r = assign_batch(r->c, "race1", r->k, &r->len, &r->version, &r->e);
    return NULL;
}

/* Two replicas assign to one clustering at once: both succeed, one writes v2 and the other
 * v3, and the final state holds both batches (its points = base + 2 batches, and a cold
 * rebuild equals the loser's cached state). */
START_TEST(replicas_race)
{
    flush();
    srv_store *s = new_store();
    srv_ctx *a = replica(s, (size_t)256 << 20), *b = replica(s, (size_t)256 << 20);
    save_clustering(a, "race1");
    racer r[2] = {{.c = a, .k = 0}, {.c = b, .k = 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_msg(r[0].r != NULL && r[1].r != NULL, "%s / %s", r[0].e.msg, r[1].e.msg);
    ck_assert((r[0].version == 2 && r[1].version == 3) || (r[0].version == 3 && r[1].version == 2));
    size_t len;
    srv_state_head h;
    void *bytes = stored_state(s, "race1", &len, &h);
    hl_assign_state *st = NULL;
    ck_assert_int_eq(hl_statefile_decode(bytes, len, &st, NULL), HL_OK);
    srv_assign_result x0, x1;
    ck_assert_int_eq(srv_assign_result_decode(r[0].r, r[0].len, &x0), HL_OK);
    ck_assert_int_eq(srv_assign_result_decode(r[1].r, r[1].len, &x1), HL_OK);
    size_t kept = 0;
    for (size_t i = 0; i < BATCH; i++)
        kept += (x0.labels[i] >= 0) + (x1.labels[i] >= 0);
    ck_assert_uint_eq(h.version, 3);
    ck_assert_uint_eq(st->n, N_BASE + kept); /* no lost points */
    /* Each batch's kept points follow in the order of the versions, with their labels. */
    const srv_assign_result *order[2] = {r[0].version == 2 ? &x0 : &x1,
                                         r[0].version == 2 ? &x1 : &x0};
    size_t at = N_BASE;
    for (int o = 0; o < 2; o++)
        for (size_t i = 0; i < BATCH; i++)
            if (order[o]->labels[i] >= 0)
                ck_assert_int_eq(st->labels[at++], order[o]->labels[i]);
    hl_assign_state_free(st);
    free(bytes);
    free(r[0].r);
    free(r[1].r);
    replica_free(a);
    replica_free(b);
    s->ops->destroy(s);
}
END_TEST

/* A delta whose payload was damaged after its CRC was computed: every assign fails with a
 * message naming the delta and the CRC, on a hot replica (its cache is older) and a cold one;
 * the base and the good delta stay readable and the version stays where it was. */
START_TEST(corrupt_delta)
{
    flush();
    srv_store *s = new_store();
    srv_ctx *a = replica(s, (size_t)256 << 20), *cold = replica(s, 0);
    save_clustering(a, "bad1");
    size_t len;
    uint64_t v = 0;
    hl_error e;
    void *r = assign_batch(a, "bad1", 0, &len, &v, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    free(r);
    /* Version 3: a real delta of batch 1, one payload byte flipped. */
    srv_state_chain c;
    ck_assert_int_eq(s->ops->state_get(s, "bad1", &c), HL_OK);
    ck_assert_uint_eq(c.head.n_deltas, 1);
    hl_assign_state *st = NULL;
    ck_assert_int_eq(hl_statefile_decode_chain(c.base, c.base_len, (const void *const *)c.deltas,
                                               c.delta_lens, 1, &st, NULL),
                     HL_OK);
    hl_statefile_mark mk;
    hl_statefile_mark_of(st, &mk);
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    hl_assignment *as = NULL;
    ck_assert_int_eq(
        hl_assign_run(st, NULL, g_x + (size_t)(N_BASE + BATCH) * D, BATCH, D, &ap, &as, NULL),
        HL_OK);
    ck_assert_int_eq(hl_assign_apply(st, as, NULL), HL_OK);
    hl_assignment_free(as);
    unsigned char *d = NULL;
    size_t dl = 0;
    ck_assert_int_eq(hl_statefile_delta_encode(st, &mk, (void **)&d, &dl, NULL), HL_OK);
    hl_assign_state_free(st);
    d[dl - 40] ^= 0x10;
    ck_assert_int_eq(s->ops->state_append(s, "bad1", d, dl, 3, 3600, NULL), HL_OK);
    free(d);
    srv_ctx *who[2] = {a, cold};
    for (int i = 0; i < 2; i++) {
        r = assign_batch(who[i], "bad1", 2, &len, &v, &e);
        ck_assert_ptr_null(r);
        ck_assert_int_eq(e.code, HL_INTERNAL);
        ck_assert_msg(strstr(e.msg, "corrupt") != NULL && strstr(e.msg, "delta 2 of 2") != NULL &&
                          strstr(e.msg, "CRC") != NULL,
                      "%s", e.msg);
    }
    /* Nothing stored was lost: still version 3; base + the good delta decode. */
    srv_state_head h;
    ck_assert_int_eq(s->ops->state_head(s, "bad1", &h), HL_OK);
    ck_assert_uint_eq(h.version, 3);
    srv_state_chain c2;
    ck_assert_int_eq(s->ops->state_get(s, "bad1", &c2), HL_OK);
    ck_assert_mem_eq(c2.base, c.base, c.base_len);
    ck_assert_mem_eq(c2.deltas[0], c.deltas[0], c.delta_lens[0]);
    st = NULL;
    ck_assert_int_eq(hl_statefile_decode_chain(c2.base, c2.base_len, (const void *const *)c2.deltas,
                                               c2.delta_lens, 1, &st, NULL),
                     HL_OK);
    ck_assert_uint_ge(st->n, N_BASE + BATCH / 2);
    hl_assign_state_free(st);
    srv_state_chain_free(&c);
    srv_state_chain_free(&c2);
    replica_free(a);
    replica_free(cold);
    s->ops->destroy(s);
}
END_TEST

static void use_memory(void)
{
    setup_data();
    g_redis = 0;
}

static void use_redis(void)
{
    setup_data();
    g_redis = 1;
    ck_assert_msg(rh_start(&g_rh) == 0, "redis: %s", g_rh.msg);
}

static void stop_redis(void)
{
    rh_stop(&g_rh);
    teardown_data();
}

static void add_cases(TCase *tc)
{
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, hit_equals_cold);
    tcase_add_test(tc, stale_replica);
    tcase_add_test(tc, replicas_race);
    tcase_add_test(tc, corrupt_delta);
}

Suite *assign_state_suite(void)
{
    Suite *s = suite_create("assign_state");
    TCase *mem = tcase_create("memory");
    tcase_add_unchecked_fixture(mem, use_memory, teardown_data);
    add_cases(mem);
    suite_add_tcase(s, mem);
    TCase *red = tcase_create("redis");
    tcase_add_unchecked_fixture(red, use_redis, stop_redis);
    add_cases(red);
    suite_add_tcase(s, red);
    return s;
}
