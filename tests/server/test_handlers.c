/*
 * test_handlers.c - the handlers called directly (no sockets): submission in every media
 * type, every submission error, the cache, idempotency, the queue limit, cancellation,
 * Prefer: wait, results (JSON pages, .npy), models, health and metrics. Workers are driven by
 * hand (pop + srv_worker_run_job), so every step is deterministic.
 */
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "model_registry.h"
#include "server.h"

#include "hl/cluster.h"
#include "hl/file.h"
#include "hl/npy.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

Suite *handlers_suite(void);

static srv_config cfg;
static srv_ctx ctx;
static srv_models *models;
static void *blobs;
static size_t blobs_len;

static void setup(void)
{
    char *argv[] = {"hilanderd", NULL};
    char msg[256];
    ck_assert_int_eq(srv_config_parse(1, argv, NULL, 2, &cfg, msg, sizeof(msg)), 0);
    cfg.queue_capacity = 2;
    srv_log_set_level(SRV_LOG_ERROR);
    cfg.engine_threads = 1;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_models_load(HL_TEST_DATA "/golden/lander/a_level0", "none", &models, &err),
                     HL_OK);
    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = &cfg;
    ctx.models = models;
    ck_assert_int_eq(srv_store_mem_new(64 << 20, &ctx.store), HL_OK);
    ck_assert_int_eq(srv_jobs_new(&ctx.jobs), HL_OK);
    ck_assert_int_eq(srv_jobq_new((size_t)cfg.queue_capacity, &ctx.queue), HL_OK);
    ck_assert_int_eq(srv_metrics_new(&ctx.metrics), HL_OK);
    snprintf(ctx.replica, sizeof(ctx.replica), "test");
    ctx.openapi = "openapi: 3.1.0\n";
    ctx.openapi_len = strlen(ctx.openapi);
    ck_assert_int_eq(
        hl_file_read(HL_TEST_DATA "/cli/data/blobs.features.npy", &blobs, &blobs_len, &err), HL_OK);
}

static void teardown(void)
{
    srv_jobq_close(ctx.queue, NULL, NULL);
    srv_jobq_free(ctx.queue);
    srv_jobs_free(ctx.jobs);
    srv_metrics_free(ctx.metrics);
    ctx.store->ops->destroy(ctx.store);
    srv_models_free(models);
    free(blobs);
}

/* A request with a copy of `body`. */
typedef struct treq {
    srv_req r;
    srv_body b;
} treq;

static void mkreq(treq *t, srv_method m, const char *param, const char *media, const void *body,
                  size_t len, const char *qs)
{
    srv_req_init(&t->r);
    memset(&t->b, 0, sizeof(t->b));
    t->r.method = m;
    t->r.body = &t->b;
    snprintf(t->r.request_id, sizeof(t->r.request_id), "r_test");
    snprintf(t->r.param, sizeof(t->r.param), "%s", param != NULL ? param : "");
    snprintf(t->r.media_type, sizeof(t->r.media_type), "%s", media != NULL ? media : "");
    if (body != NULL) {
        t->b.data = malloc(len + 1);
        memcpy(t->b.data, body, len);
        t->b.len = t->b.cap = len;
    }
    if (qs != NULL)
        ck_assert_int_eq(srv_req_parse_query(&t->r, qs), HL_OK);
}

static void freereq(treq *t)
{
    srv_req_deinit(&t->r);
    free(t->b.data);
}

/* Calls a handler and returns the response's JSON (or NULL for non-JSON bodies). */
static json_t *call(srv_handler h, treq *t, srv_resp *resp)
{
    srv_resp_init(resp);
    ck_assert_int_eq(h(&ctx, &t->r, resp), HL_OK);
    if (resp->body == NULL || resp->content_type == NULL ||
        strstr(resp->content_type, "json") == NULL)
        return NULL;
    json_error_t je;
    json_t *o = json_loadb(resp->body, resp->len, 0, &je);
    ck_assert_msg(o != NULL, "bad JSON: %.200s", resp->body);
    return o;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* POST /v1/cluster; returns the status and the job id (if any) in id. */
static int submit(const char *media, const void *body, size_t len, const char *qs, char *id,
                  json_t **out)
{
    treq t;
    mkreq(&t, SRV_M_POST, NULL, media, body, len, qs);
    srv_resp resp;
    json_t *o = call(srv_h_cluster, &t, &resp);
    int status = resp.status;
    if (id != NULL)
        snprintf(id, 32, "%s", o != NULL && jstr(o, "id") != NULL ? jstr(o, "id") : "");
    if (status == 202)
        ck_assert_ptr_nonnull(srv_resp_get_header(&resp, "Location"));
    if (out != NULL)
        *out = o;
    else
        json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    return status;
}

static void run_queue(void)
{
    while (srv_jobq_length(ctx.queue) > 0) {
        srv_job *j = srv_jobq_pop(ctx.queue);
        srv_worker_run_job(&ctx, j);
        srv_job_release(j);
    }
}

static json_t *get(srv_handler h, const char *id, const char *qs, srv_resp *resp)
{
    treq t;
    mkreq(&t, SRV_M_GET, id, NULL, NULL, 0, qs);
    json_t *o = call(h, &t, resp);
    freereq(&t);
    return o;
}

static void expect_problem(int status, const char *suffix, const char *media, const void *body,
                           size_t len, const char *qs)
{
    json_t *o;
    int st = submit(media, body, len, qs, NULL, &o);
    char type[80];
    snprintf(type, sizeof(type), "/problems/%s", suffix);
    ck_assert_msg(st == status && o != NULL && strcmp(jstr(o, "type"), type) == 0,
                  "%s %.40s?%s: got %d %s, want %d %s", media, (const char *)body,
                  qs != NULL ? qs : "", st, o != NULL ? jstr(o, "type") : "-", status, type);
    ck_assert_str_eq(jstr(o, "instance"), "r_test");
    json_decref(o);
}

/* Random n x d float32 .npy (distinct data per seed: no cache hits between tests). */
static void *rand_npy(size_t n, size_t d, unsigned seed, size_t *len)
{
    float *x = malloc(n * d * sizeof(float));
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n * d; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    size_t shape[2] = {n, d};
    void *out;
    ck_assert_int_eq(hl_npy_encode_f32(x, 2, shape, &out, len), HL_OK);
    free(x);
    return out;
}

START_TEST(npy_submit_result_matches_engine)
{
    char id[32];
    json_t *o;
    ck_assert_int_eq(submit("application/x-npy", blobs, blobs_len, NULL, id, &o), 202);
    ck_assert_str_eq(jstr(o, "status"), "queued");
    ck_assert(json_is_false(json_object_get(o, "cached")));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "n")), 300);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "dim")), 16);
    ck_assert_str_eq(jstr(o, "model"), "none");
    json_decref(o);
    srv_resp resp;
    o = get(srv_h_job_result, id, NULL, &resp);
    ck_assert_int_eq(resp.status, 409);
    ck_assert_str_eq(jstr(o, "type"), "/problems/job-not-finished");
    json_decref(o);
    srv_resp_clear(&resp);
    run_queue();
    o = get(srv_h_job_get, id, NULL, &resp);
    ck_assert_str_eq(jstr(o, "status"), "succeeded");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "attempts")), 1);
    json_decref(o);
    srv_resp_clear(&resp);
    /* Same labels as the engine called directly. */
    hl_fmatrix x;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_npy_decode_f32(blobs, blobs_len, &x, &err), HL_OK);
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    hl_clustering *c;
    ck_assert_int_eq(hl_cluster_run(x.data, x.rows, x.cols, NULL, &p, &c, &err), HL_OK);
    o = get(srv_h_job_result, id, NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    json_t *labels = json_object_get(o, "labels");
    ck_assert_uint_eq(json_array_size(labels), 300);
    for (size_t i = 0; i < 300; i++)
        ck_assert_int_eq(json_integer_value(json_array_get(labels, i)), c->labels[i]);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "n_clusters")), (int)c->n_clusters);
    ck_assert_uint_eq(json_array_size(json_object_get(o, "levels")), (size_t)c->n_levels);
    json_t *sizes = json_object_get(o, "cluster_sizes");
    json_int_t total = 0;
    for (size_t i = 0; i < json_array_size(sizes); i++)
        total += json_integer_value(json_array_get(sizes, i));
    ck_assert_int_eq(total, 300);
    ck_assert_ptr_null(json_object_get(o, "ids"));
    ck_assert_ptr_null(json_object_get(o, "metrics"));
    json_decref(o);
    srv_resp_clear(&resp);
    /* .npy: final labels (N,) and all levels (L, N). */
    get(srv_h_job_result, id, "format=npy", &resp);
    ck_assert_str_eq(resp.content_type, "application/x-npy");
    int32_t *l;
    size_t n;
    ck_assert_int_eq(hl_npy_decode_i32(resp.body, resp.len, &l, &n, &err), HL_OK);
    ck_assert_uint_eq(n, 300);
    ck_assert_int_eq(memcmp(l, c->labels, 300 * sizeof(int32_t)), 0);
    free(l);
    srv_resp_clear(&resp);
    get(srv_h_job_result, id, "format=npy&levels=all", &resp);
    hl_npy_header h;
    ck_assert_int_eq(hl_npy_parse_header(resp.body, resp.len, &h, &err), HL_OK);
    ck_assert_int_eq(h.ndim, 2);
    ck_assert_uint_eq(h.shape[0], (size_t)c->n_levels);
    ck_assert_uint_eq(h.shape[1], 300);
    ck_assert_int_eq(
        memcmp((char *)resp.body + h.data_offset, c->level_labels, (size_t)c->n_levels * 300 * 4),
        0);
    srv_resp_clear(&resp);
    hl_clustering_free(c);
    hl_fmatrix_free(&x);
}
END_TEST

START_TEST(result_paging)
{
    char id[32];
    ck_assert_int_eq(submit("application/x-npy", blobs, blobs_len, NULL, id, NULL), 202);
    run_queue();
    srv_resp resp;
    json_t *o = get(srv_h_job_result, id, "limit=100", &resp);
    ck_assert_uint_eq(json_array_size(json_object_get(o, "labels")), 100);
    char want[160];
    snprintf(want, sizeof(want), "</v1/jobs/%s/result?offset=100&limit=100>; rel=\"next\"", id);
    ck_assert_str_eq(srv_resp_get_header(&resp, "Link"), want);
    json_t *lv = json_array_get(json_object_get(o, "levels"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(lv, "labels")), 100);
    json_decref(o);
    srv_resp_clear(&resp);
    o = get(srv_h_job_result, id, "offset=250&limit=100", &resp);
    ck_assert_uint_eq(json_array_size(json_object_get(o, "labels")), 50);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "offset")), 250);
    ck_assert_ptr_null(srv_resp_get_header(&resp, "Link"));
    json_decref(o);
    srv_resp_clear(&resp);
    static const char *bad[] = {"format=csv", "limit=0", "limit=x", "offset=-1", "levels=2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = get(srv_h_job_result, id, bad[i], &resp);
        ck_assert_msg(resp.status == 422, "%s gave %d", bad[i], resp.status);
        ck_assert_str_eq(jstr(o, "type"), "/problems/invalid-parameter");
        json_decref(o);
        srv_resp_clear(&resp);
    }
    o = get(srv_h_job_result, "j_nope", NULL, &resp);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_str_eq(jstr(o, "type"), "/problems/job-not-found");
    json_decref(o);
    srv_resp_clear(&resp);
}
END_TEST

START_TEST(cache_hits)
{
    char a[32], b[32], c[32];
    json_t *o;
    ck_assert_int_eq(submit("application/x-npy", blobs, blobs_len, NULL, a, NULL), 202);
    run_queue();
    uint64_t computed = srv_metrics_jobs_computed(ctx.metrics);
    /* The same work again: finished at once from the cache. */
    ck_assert_int_eq(submit("application/x-npy", blobs, blobs_len, NULL, b, &o), 202);
    ck_assert_str_ne(a, b);
    ck_assert(json_is_true(json_object_get(o, "cached")));
    ck_assert_str_eq(jstr(o, "status"), "succeeded");
    ck_assert_uint_eq(srv_jobq_length(ctx.queue), 0);
    json_decref(o);
    /* The same floats as raw float32: the same key. */
    hl_npy_header h;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_npy_parse_header(blobs, blobs_len, &h, &err), HL_OK);
    ck_assert_int_eq(submit("application/octet-stream", (char *)blobs + h.data_offset, h.data_bytes,
                            "dim=16", c, &o),
                     202);
    ck_assert(json_is_true(json_object_get(o, "cached")));
    json_decref(o);
    ck_assert_uint_eq(srv_metrics_cache_hits(ctx.metrics), 2);
    ck_assert_uint_eq(srv_metrics_jobs_computed(ctx.metrics), computed);
    /* Other parameters: computed again. */
    ck_assert_int_eq(submit("application/x-npy", blobs, blobs_len, "k=5", c, &o), 202);
    ck_assert(json_is_false(json_object_get(o, "cached")));
    json_decref(o);
    run_queue();
    ck_assert_uint_eq(srv_metrics_jobs_computed(ctx.metrics), computed + 1);
    srv_resp ra, rb;
    json_t *ja = get(srv_h_job_result, a, NULL, &ra), *jb = get(srv_h_job_result, b, NULL, &rb);
    ck_assert(json_equal(json_object_get(ja, "labels"), json_object_get(jb, "labels")));
    json_decref(ja);
    json_decref(jb);
    srv_resp_clear(&ra);
    srv_resp_clear(&rb);
}
END_TEST

static const char json_small[] = "{\"embeddings\": [[1,0],[0.9,0.1],[0,1],[0.1,0.9]], "
                                 "\"ids\": [\"a\",\"b\",\"c\",\"d\"], \"labels\": [1,1,2,2]}";

START_TEST(json_ids_metrics_and_cached_copy)
{
    char id[32], id2[32];
    ck_assert_int_eq(submit("application/json", json_small, strlen(json_small), NULL, id, NULL),
                     202);
    run_queue();
    srv_resp resp;
    json_t *o = get(srv_h_job_result, id, NULL, &resp);
    json_t *ids = json_object_get(o, "ids");
    ck_assert_uint_eq(json_array_size(ids), 4);
    ck_assert_str_eq(json_string_value(json_array_get(ids, 3)), "d");
    json_t *m = json_object_get(o, "metrics");
    static const char *names[] = {"fp",           "fp_precision", "fp_recall", "fb",
                                  "fb_precision", "fb_recall",    "nmi"};
    for (int i = 0; i < 7; i++)
        ck_assert_msg(json_is_number(json_object_get(m, names[i])), "metrics.%s", names[i]);
    json_decref(o);
    srv_resp_clear(&resp);
    /* A cache hit with other ids: the worker copies the labels and adds these ids. */
    static const char other[] = "{\"embeddings\": [[1,0],[0.9,0.1],[0,1],[0.1,0.9]], "
                                "\"ids\": [\"w\",\"x\",\"y\",\"z\"]}";
    json_t *j;
    ck_assert_int_eq(submit("application/json", other, strlen(other), NULL, id2, &j), 202);
    ck_assert(json_is_true(json_object_get(j, "cached")));
    json_decref(j);
    uint64_t computed = srv_metrics_jobs_computed(ctx.metrics);
    run_queue();
    ck_assert_uint_eq(srv_metrics_jobs_computed(ctx.metrics), computed);
    o = get(srv_h_job_result, id2, NULL, &resp);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "ids"), 0)), "w");
    ck_assert_ptr_null(json_object_get(o, "metrics"));
    json_decref(o);
    srv_resp_clear(&resp);
}
END_TEST

START_TEST(submission_errors)
{
    const char *J = "application/json", *N = "application/x-npy", *R = "application/octet-stream";
#define P(status, suffix, media, body, qs)                                                         \
    expect_problem(status, suffix, media, body, strlen(body), qs)
    P(400, "malformed-body", J, "{\"embeddings\": [[1,2]", NULL);
    P(400, "malformed-body", J, "[1,2]", NULL);
    P(400, "malformed-body", J, "{\"ids\": []}", NULL);
    P(400, "malformed-body", J, "", NULL);
    P(422, "invalid-embeddings", J, "{\"embeddings\": [[1,2],[3]]}", NULL);
    P(422, "invalid-embeddings", J, "{\"embeddings\": [[1,2],[3,\"x\"]]}", NULL);
    P(422, "invalid-embeddings", J, "{\"embeddings\": [[1,2],[3,4]], \"ids\": [\"a\"]}", NULL);
    P(422, "invalid-embeddings", J, "{\"embeddings\": [[1,2],[3,4]], \"labels\": [1,2,3]}", NULL);
    P(422, "non-finite-value", J, "{\"embeddings\": [[1,2],[3,1e39]]}", NULL);
    P(422, "size-out-of-range", J, "{\"embeddings\": [[1,2]]}", NULL);
    P(422, "invalid-parameter", J, "{\"embeddings\": [[1,2],[3,4]], \"params\": {\"k\": 1}}", NULL);
    P(422, "invalid-parameter", J, "{\"embeddings\": [[1,2],[3,4]], \"params\": {\"tau\": 2}}",
      NULL);
    P(422, "invalid-parameter", J,
      "{\"embeddings\": [[1,2],[3,4]], \"params\": {\"knn\": \"hnsw\"}}", NULL);
    P(422, "invalid-parameter", J,
      "{\"embeddings\": [[1,2],[3,4]], \"params\": {\"new_clusters\": \"open\"}}", NULL);
    P(422, "invalid-parameter", J, "{\"embeddings\": [[1,2],[3,4]], \"params\": {\"zz\": 1}}",
      NULL);
    P(422, "unknown-model", J, "{\"embeddings\": [[1,2],[3,4]], \"model\": \"nope\"}", NULL);
    P(400, "invalid-npy", N, "not an npy file", NULL);
    P(400, "invalid-raw", R, "abcdefgh", NULL);        /* no dim */
    P(400, "invalid-raw", R, "abcdefghijkl", "dim=2"); /* 12 bytes, not rows of 8 */
    P(422, "invalid-parameter", N, "x", "k=abc");
    P(422, "invalid-parameter", N, "x", "bogus=1");
    P(422, "invalid-parameter", N, "x", "dim=4"); /* dim is for raw bodies only */
#undef P
    expect_problem(422, "invalid-parameter", N, blobs, blobs_len, "k=1");
    expect_problem(422, "unknown-model", N, blobs, blobs_len, "model=nope");
    /* A NaN in a .npy: 422 with row and column. */
    hl_npy_header h;
    hl_error err;
    hl_error_clear(&err);
    hl_npy_parse_header(blobs, blobs_len, &h, &err);
    char *bad = malloc(blobs_len);
    memcpy(bad, blobs, blobs_len);
    float nan = 0.0f / 0.0f;
    memcpy(bad + h.data_offset + (5 * 16 + 3) * 4, &nan, 4);
    json_t *o;
    ck_assert_int_eq(submit(N, bad, blobs_len, NULL, NULL, &o), 422);
    ck_assert_str_eq(jstr(o, "type"), "/problems/non-finite-value");
    json_t *off = json_object_get(o, "offset");
    ck_assert_int_eq(json_integer_value(json_object_get(off, "row")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(off, "column")), 3);
    json_decref(o);
    free(bad);
    /* Limits: too many points, too large a dimension. */
    cfg.max_points = 100;
    expect_problem(413, "size-out-of-range", N, blobs, blobs_len, NULL);
    cfg.max_points = 5000000;
    cfg.max_dim = 8;
    expect_problem(413, "size-out-of-range", N, blobs, blobs_len, NULL);
    expect_problem(413, "size-out-of-range", R, "abcdefgh", 8, "dim=16");
    cfg.max_dim = 4096;
    ck_assert_uint_eq(srv_jobq_length(ctx.queue), 0);
}
END_TEST

START_TEST(dimension_mismatch)
{
    /* "model" is a lander model for dimension 8; the blobs have 16. */
    json_t *o;
    ck_assert_int_eq(submit("application/x-npy", blobs, blobs_len, "model=model", NULL, &o), 422);
    ck_assert_str_eq(jstr(o, "type"), "/problems/dimension-mismatch");
    ck_assert_ptr_nonnull(strstr(jstr(o, "detail"), "8"));
    ck_assert_ptr_nonnull(strstr(jstr(o, "detail"), "16"));
    json_decref(o);
    size_t len;
    void *x8 = rand_npy(40, 8, 3, &len);
    char id[32];
    ck_assert_int_eq(submit("application/x-npy", x8, len, "model=model", id, &o), 202);
    ck_assert_str_eq(jstr(o, "model"), "model");
    json_decref(o);
    run_queue();
    srv_resp resp;
    o = get(srv_h_job_get, id, NULL, &resp);
    ck_assert_str_eq(jstr(o, "status"), "succeeded");
    json_decref(o);
    srv_resp_clear(&resp);
    free(x8);
}
END_TEST

START_TEST(idempotency)
{
    size_t la, lb;
    void *a = rand_npy(30, 4, 1, &la), *b = rand_npy(30, 4, 2, &lb);
    char id1[32], id2[32];
    treq t;
    srv_resp resp;
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", a, la, NULL);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-1");
    json_t *o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 202);
    snprintf(id1, sizeof(id1), "%s", jstr(o, "id"));
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    /* Same key, same body: the same job. */
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", a, la, NULL);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-1");
    o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 202);
    snprintf(id2, sizeof(id2), "%s", jstr(o, "id"));
    ck_assert_str_eq(id1, id2);
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    ck_assert_uint_eq(srv_jobq_length(ctx.queue), 1);
    run_queue();
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", a, la, NULL);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-1");
    o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 200); /* finished by now */
    ck_assert_str_eq(jstr(o, "id"), id1);
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    /* Same key, another body: 422. */
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", b, lb, NULL);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-1");
    o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 422);
    ck_assert_str_eq(jstr(o, "type"), "/problems/idempotency-key-reused");
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    /* A key claimed by a request whose job record does not exist yet: 409. */
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", b, lb, NULL);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-2");
    char hash[33], value[80];
    srv_request_hash(&t.r, hash);
    snprintf(value, sizeof(value), "j_notyetcreated %s", hash);
    ck_assert_int_eq(ctx.store->ops->idem_claim(ctx.store, "key-2", value, 60, NULL), HL_OK);
    o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 409);
    ck_assert_str_eq(jstr(o, "type"), "/problems/idempotency-key-in-progress");
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    /* The same, claimed recently (still 409), then long ago: its admission died, this request
     * takes the key over and gets a job of its own; a replay then finds that job. */
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", b, lb, NULL);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-3");
    snprintf(value, sizeof(value), "j_diedwhileadmitting %s %lld", hash, (long long)time(NULL));
    ck_assert_int_eq(ctx.store->ops->idem_claim(ctx.store, "key-3", value, 60, NULL), HL_OK);
    o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 409);
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", b, lb, NULL);
    snprintf(value, sizeof(value), "j_diedwhileadmitting %s %lld", hash,
             (long long)time(NULL) - 3600);
    ck_assert_int_eq(ctx.store->ops->idem_claim(ctx.store, "key-4", value, 60, NULL), HL_OK);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-4");
    o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 202);
    snprintf(id2, sizeof(id2), "%s", jstr(o, "id"));
    ck_assert_str_ne(id2, "j_diedwhileadmitting");
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", b, lb, NULL);
    snprintf(t.r.idem_key, sizeof(t.r.idem_key), "key-4");
    o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 202);
    ck_assert_str_eq(jstr(o, "id"), id2);
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    run_queue();
    free(a);
    free(b);
}
END_TEST

START_TEST(queue_full)
{
    for (unsigned i = 0; i < 2; i++) {
        size_t len;
        void *x = rand_npy(20, 4, 10 + i, &len);
        ck_assert_int_eq(submit("application/x-npy", x, len, NULL, NULL, NULL), 202);
        free(x);
    }
    size_t len;
    void *x = rand_npy(20, 4, 99, &len);
    treq t;
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", x, len, NULL);
    srv_resp resp;
    json_t *o = call(srv_h_cluster, &t, &resp);
    ck_assert_int_eq(resp.status, 429);
    ck_assert_str_eq(jstr(o, "type"), "/problems/queue-full");
    ck_assert_ptr_nonnull(srv_resp_get_header(&resp, "Retry-After"));
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    run_queue();
    ck_assert_int_eq(submit("application/x-npy", x, len, NULL, NULL, NULL), 202);
    run_queue();
    free(x);
}
END_TEST

START_TEST(delete_jobs)
{
    size_t len;
    void *x = rand_npy(50, 4, 7, &len);
    char id[32];
    ck_assert_int_eq(submit("application/x-npy", x, len, NULL, id, NULL), 202);
    treq t;
    srv_resp resp;
    mkreq(&t, SRV_M_DELETE, id, NULL, NULL, 0, NULL);
    json_t *o = call(srv_h_job_delete, &t, &resp);
    ck_assert_int_eq(resp.status, 200); /* queued: canceled at once */
    ck_assert_str_eq(jstr(o, "status"), "canceled");
    json_decref(o);
    srv_resp_clear(&resp);
    ck_assert_uint_eq(srv_jobq_length(ctx.queue), 0);
    o = get(srv_h_job_result, id, NULL, &resp);
    ck_assert_int_eq(resp.status, 409);
    ck_assert_str_eq(jstr(o, "type"), "/problems/job-has-no-result");
    json_decref(o);
    srv_resp_clear(&resp);
    call(srv_h_job_delete, &t, &resp); /* terminal: deleted */
    ck_assert_int_eq(resp.status, 204);
    srv_resp_clear(&resp);
    o = call(srv_h_job_delete, &t, &resp);
    ck_assert_int_eq(resp.status, 404);
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    /* Running: DELETE raises the cancel flag (202) and the engine stops at a check point. */
    ck_assert_int_eq(submit("application/x-npy", x, len, "k=4", id, NULL), 202);
    srv_job *j = srv_jobq_pop(ctx.queue);
    srv_job_transition(ctx.store, id, j, "queued", SRV_JOB_RUNNING, NULL, 0, 0);
    mkreq(&t, SRV_M_DELETE, id, NULL, NULL, 0, NULL);
    o = call(srv_h_job_delete, &t, &resp);
    ck_assert_int_eq(resp.status, 202);
    ck_assert_str_eq(jstr(o, "status"), "running");
    ck_assert_int_eq(atomic_load(&j->cancel), 1);
    json_decref(o);
    srv_resp_clear(&resp);
    freereq(&t);
    srv_job_release(j);
    /* The engine's cancel hook: a job whose flag is up ends canceled. */
    ck_assert_int_eq(submit("application/x-npy", x, len, "k=3", id, NULL), 202);
    j = srv_jobq_pop(ctx.queue);
    atomic_store(&j->cancel, 1);
    srv_worker_run_job(&ctx, j);
    srv_job_release(j);
    o = get(srv_h_job_get, id, NULL, &resp);
    ck_assert_str_eq(jstr(o, "status"), "canceled");
    json_decref(o);
    srv_resp_clear(&resp);
    free(x);
}
END_TEST

START_TEST(prefer_wait)
{
    size_t len;
    void *x = rand_npy(60, 4, 21, &len);
    treq t;
    mkreq(&t, SRV_M_POST, NULL, "application/x-npy", x, len, NULL);
    t.r.prefer_wait = 5;
    srv_resp resp;
    srv_resp_init(&resp);
    ck_assert_int_eq(srv_h_cluster(&ctx, &t.r, &resp), HL_OK);
    ck_assert_ptr_nonnull(resp.wait_job); /* http.c suspends the connection on this */
    ck_assert_int_eq(resp.wait_seconds, 5);
    srv_job *j = resp.wait_job;
    srv_job_retain(j);
    srv_resp_clear(&resp);
    /* Not finished when the wait ends: 202 with the job. */
    json_t *o;
    srv_resp_init(&resp);
    srv_cluster_after_wait(&ctx, &t.r, j, &resp);
    ck_assert_int_eq(resp.status, 202);
    srv_resp_clear(&resp);
    run_queue();
    srv_resp_init(&resp);
    srv_cluster_after_wait(&ctx, &t.r, j, &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(srv_resp_get_header(&resp, "Preference-Applied"), "wait=5");
    o = json_loadb(resp.body, resp.len, 0, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(o, "labels")), 60);
    json_decref(o);
    srv_resp_clear(&resp);
    srv_job_release(j);
    freereq(&t);
    free(x);
}
END_TEST

START_TEST(draining_and_health)
{
    srv_resp resp;
    json_t *o = get(srv_h_readyz, NULL, NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    json_decref(o);
    srv_resp_clear(&resp);
    o = get(srv_h_livez, NULL, NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    json_decref(o);
    srv_resp_clear(&resp);
    atomic_store(&ctx.draining, 1);
    o = get(srv_h_readyz, NULL, NULL, &resp);
    ck_assert_int_eq(resp.status, 503);
    ck_assert_str_eq(jstr(o, "type"), "/problems/unavailable");
    json_decref(o);
    srv_resp_clear(&resp);
    expect_problem(503, "unavailable", "application/x-npy", blobs, blobs_len, NULL);
    o = get(srv_h_livez, NULL, NULL, &resp);
    ck_assert_int_eq(resp.status, 200); /* alive while draining */
    json_decref(o);
    srv_resp_clear(&resp);
    atomic_store(&ctx.draining, 0);
}
END_TEST

START_TEST(models_and_ops)
{
    srv_resp resp;
    json_t *o = get(srv_h_models, NULL, NULL, &resp);
    json_t *list = json_object_get(o, "models");
    ck_assert_uint_eq(json_array_size(list), 2);
    json_t *m = json_array_get(list, 0);
    ck_assert_str_eq(jstr(m, "name"), "model");
    ck_assert_str_eq(jstr(m, "kind"), "lander");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "dim")), 8);
    ck_assert(strncmp(jstr(m, "checksum"), "crc32c:", 7) == 0);
    ck_assert_uint_eq(strlen(jstr(m, "checksum")), 15);
    ck_assert(json_is_false(json_object_get(m, "default")));
    json_t *none = json_array_get(list, 1);
    ck_assert_str_eq(jstr(none, "name"), "none");
    ck_assert_str_eq(jstr(none, "dim"), "any");
    ck_assert(json_is_true(json_object_get(none, "default")));
    ck_assert_str_eq(jstr(o, "default"), "none");
    json_decref(o);
    srv_resp_clear(&resp);
    o = get(srv_h_model, "model", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(jstr(o, "trained_on"), models->v[0].m->trained_on);
    json_decref(o);
    srv_resp_clear(&resp);
    o = get(srv_h_model, "nope", NULL, &resp);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_str_eq(jstr(o, "type"), "/problems/unknown-model");
    json_decref(o);
    srv_resp_clear(&resp);
    get(srv_h_metrics, NULL, NULL, &resp);
    ck_assert_str_eq(resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
    static const char *names[] = {"hilander_http_requests_total",
                                  "hilander_http_request_duration_seconds_bucket",
                                  "hilander_jobs_total{status=\"succeeded\"}",
                                  "hilander_jobs_in_queue",
                                  "hilander_jobs_running",
                                  "hilander_job_duration_seconds_bucket{stage=\"knn\"",
                                  "hilander_points_clustered_total",
                                  "hilander_cache_hits_total",
                                  "hilander_cache_misses_total",
                                  "hilander_store_errors_total{op=",
                                  "hilander_build_info{version="};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(strstr(resp.body, names[i]) != NULL, "/metrics lacks %s", names[i]);
    srv_resp_clear(&resp);
    get(srv_h_openapi, NULL, NULL, &resp);
    ck_assert_str_eq(resp.body, "openapi: 3.1.0\n");
    srv_resp_clear(&resp);
}
END_TEST

Suite *handlers_suite(void)
{
    Suite *s = suite_create("handlers");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, npy_submit_result_matches_engine);
    tcase_add_test(tc, result_paging);
    tcase_add_test(tc, cache_hits);
    tcase_add_test(tc, json_ids_metrics_and_cached_copy);
    tcase_add_test(tc, submission_errors);
    tcase_add_test(tc, dimension_mismatch);
    tcase_add_test(tc, idempotency);
    tcase_add_test(tc, queue_full);
    tcase_add_test(tc, delete_jobs);
    tcase_add_test(tc, prefer_wait);
    tcase_add_test(tc, draining_and_health);
    tcase_add_test(tc, models_and_ops);
    suite_add_tcase(s, tc);
    return s;
}
