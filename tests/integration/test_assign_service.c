/*
 * test_assign_service.c - POST /v1/clusterings/{id}/assign end to end over loopback, with
 * the embedded store (one hilanderd) and with Redis (two hilanderd replicas sharing one
 * redis-server from tests/support/redis_harness.c): the flow and stable ids (points joining
 * existing clusters, new clusters above every existing id, -1 with new_clusters=unassigned,
 * stored points keeping their ids), every bad input as problem+json leaving the clustering
 * as it was, concurrent assigns to one clustering (through both replicas with Redis) each
 * writing its own version and ending with one state that holds every point, a reader seeing
 * whole versions meanwhile, DELETE removing the state, and cache hits getting an independent
 * clone of the source's state.
 *
 * Usage: test_assign_service HILANDERD HILANDER PROJECT_DIR. Prints "N passed, N failed".
 * A missing redis-server fails the Redis part (it is not skipped). Every wait is bounded.
 */
#include "harness.h"
#include "redis_harness.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUITE_SECONDS 280
#define N_BLOBS       300 /* tests/cli/data/blobs.features.npy: 300 x 16, 12 blobs */
#define D             16
#define N_STORED      100
#define N_CONC        6 /* concurrent assigns */
/* (blob rows: [0, N_STORED) clustered, the next 50 assigned in case_flow, the next
 * N_CONC * PER_ASSIGN assigned concurrently) */
#define PER_ASSIGN 20 /* points each */

static float g_x[N_BLOBS * D];
static int32_t g_truth[N_BLOBS];

/* ---- data ---- */

static int load_npy(const char *name, void *out, size_t bytes)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/cli/data/%s", g_root, name);
    size_t n;
    unsigned char *b = read_file(path, &n);
    if (b == NULL || n < 10 + bytes)
        return -1;
    size_t hl = (size_t)b[8] | (size_t)b[9] << 8; /* v1 header length */
    int ok = 10 + hl + bytes == n;
    if (ok)
        memcpy(out, b + 10 + hl, bytes);
    free(b);
    return ok ? 0 : -1;
}

/* A JSON body with rows [first, first + n) of x, ids "p<first + i>" and extra text. */
static char *body_of(const float *x, size_t first, size_t n, const char *extra)
{
    size_t cap = 64 + n * (D * 16 + 24) + strlen(extra);
    char *b = malloc(cap), *p = b;
    p += sprintf(p, "{\"embeddings\":[");
    for (size_t i = 0; i < n; i++) {
        p += sprintf(p, "%s[", i ? "," : "");
        for (size_t c = 0; c < D; c++)
            p += sprintf(p, "%s%.9g", c ? "," : "", (double)x[(first + i) * D + c]);
        p += sprintf(p, "]");
    }
    p += sprintf(p, "],\"ids\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s\"p%zu\"", i ? "," : "", first + i);
    sprintf(p, "]%s}", extra);
    return b;
}

static char *body_rows(size_t first, size_t n, const char *extra)
{
    return body_of(g_x, first, n, extra);
}

static const char *const WAIT[] = {"Prefer: wait=60", NULL};

_Static_assert(N_STORED + 50 + N_CONC * PER_ASSIGN <= N_BLOBS, "not enough test points");

/* Clusters the first N_STORED points; returns 0 and the job id, the labels in `lab`. */
static int cluster_stored(int port, char *id, int32_t *lab)
{
    char *b = body_rows(0, N_STORED, "");
    hresp r;
    long st = http(port, "POST", "/v1/cluster", "application/json", b, strlen(b), WAIT, 0, &r);
    free(b);
    CHECK(st == 200, "cluster: %ld %.200s", st, r.body);
    int ok = st == 200 && jstr(r.json, "id") != NULL;
    if (ok) {
        snprintf(id, 40, "%s", jstr(r.json, "id"));
        json_t *l = json_object_get(r.json, "labels");
        for (size_t i = 0; i < N_STORED; i++)
            lab[i] = (int32_t)json_integer_value(json_array_get(l, i));
    }
    hfree(&r);
    return ok ? 0 : -1;
}

/* POST an assign (JSON) and wait for its result; fills labels; returns the HTTP status of
 * the final answer (200 with the result), or -2 when that result does not echo the ids or
 * lacks scores (the reason on stderr), and the state version it wrote. No CHECK here: the
 * concurrent case calls this from several threads, and its callers check the status. */
static long assign_rows(int port, const char *cid, size_t first, size_t n, const char *extra,
                        int32_t *lab, long long *version)
{
    char path[128], *b = body_rows(first, n, extra);
    snprintf(path, sizeof(path), "/v1/clusterings/%s/assign", cid);
    hresp r;
    long st = http(port, "POST", path, "application/json", b, strlen(b), WAIT, 0, &r);
    free(b);
    if (st == 202) { /* slower than Prefer: wait on a loaded box: poll, then fetch */
        char id[64], got[32] = "", rp[128];
        snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));
        hfree(&r);
        if (wait_status(port, id, "succeeded,failed", 120, got) != 0 ||
            strcmp(got, "succeeded") != 0)
            fprintf(stderr, "assign job %s ended %s\n", id, got);
        snprintf(rp, sizeof(rp), "/v1/jobs/%s/result", id);
        st = GET(port, rp, &r);
    }
    if (st == 200) {
        json_t *l = json_object_get(r.json, "labels"), *ids = json_object_get(r.json, "ids");
        for (size_t i = 0; lab != NULL && i < n; i++)
            lab[i] = (int32_t)json_integer_value(json_array_get(l, i));
        *version = json_integer_value(json_object_get(r.json, "state_version"));
        char want[32];
        snprintf(want, sizeof(want), "p%zu", first);
        const char *id0 = json_string_value(json_array_get(ids, 0));
        if (id0 == NULL || strcmp(id0, want) != 0 || json_array_size(l) != n ||
            json_array_size(json_object_get(r.json, "scores")) != n) {
            fprintf(stderr, "assign of rows from %zu: ids, labels or scores wrong: %.200s\n", first,
                    r.body);
            st = -2;
        }
    }
    hfree(&r);
    return st;
}

/* The cluster job's state (version, n) from its job object. */
static void state_of(int port, const char *cid, long long *version, long long *n)
{
    char p[96];
    snprintf(p, sizeof(p), "/v1/jobs/%s", cid);
    hresp r;
    GET(port, p, &r);
    json_t *s = json_object_get(r.json, "state");
    *version = json_integer_value(json_object_get(s, "version"));
    *n = json_integer_value(json_object_get(s, "n"));
    hfree(&r);
}

/* ---- cases ---- */

/* New points of existing blobs get the id their blob has among the stored points; far points
 * get -1 with the unassigned policy (the state keeps its version) and new ids with the open
 * one; the stored points keep their ids throughout. */
static void case_flow(int port, char *cid, int32_t *stored)
{
    int32_t lab[50];
    if (cluster_stored(port, cid, stored) != 0)
        return;
    long long v = 0, sv = 0, sn = 0;
    long st = assign_rows(port, cid, N_STORED, 50, "", lab, &v);
    CHECK(st == 200 && v == 2, "assign: %ld, version %lld", st, v);
    size_t agree = 0;
    for (size_t i = 0; i < 50; i++) {
        int32_t want = -2;
        for (size_t j = 0; j < N_STORED && want == -2; j++)
            if (g_truth[j] == g_truth[N_STORED + i])
                want = stored[j];
        agree += lab[i] == want;
    }
    CHECK(agree >= 48, "%zu of 50 new points got their blob's stored id", agree);
    state_of(port, cid, &sv, &sn);
    CHECK(sv == 2 && sn == N_STORED + 50, "state after one assign: v%lld n%lld", sv, sn);
    /* Far points (negated) with the unassigned policy: -1, the state is unchanged. */
    float far[10 * D];
    for (size_t i = 0; i < 10 * D; i++)
        far[i] = -g_x[i];
    char *b = body_of(far, 0, 10, ",\"params\":{\"new_clusters\":\"unassigned\"}");
    char path[128];
    snprintf(path, sizeof(path), "/v1/clusterings/%s/assign", cid);
    hresp r;
    http(port, "POST", path, "application/json", b, strlen(b), WAIT, 0, &r);
    free(b);
    json_t *l = json_object_get(r.json, "labels");
    int all_minus = r.status == 200 && json_array_size(l) == 10;
    for (size_t i = 0; all_minus && i < 10; i++)
        all_minus = json_integer_value(json_array_get(l, i)) == -1;
    CHECK(all_minus, "far points with unassigned: %ld %.300s", r.status, r.body);
    hfree(&r);
    state_of(port, cid, &sv, &sn);
    CHECK(sv == 2 && sn == N_STORED + 50, "unassigned points changed the state: v%lld n%lld", sv,
          sn);
    /* The same far points with the open policy: new ids, above every existing one, one per
     * blob they came from. */
    int32_t max_id = -1, far_lab[10];
    for (size_t i = 0; i < N_STORED; i++)
        max_id = stored[i] > max_id ? stored[i] : max_id;
    for (size_t i = 0; i < 50; i++)
        max_id = lab[i] > max_id ? lab[i] : max_id;
    b = body_of(far, 0, 10, "");
    http(port, "POST", path, "application/json", b, strlen(b), WAIT, 0, &r);
    free(b);
    l = json_object_get(r.json, "labels");
    int fresh = r.status == 200 && json_array_size(l) == 10 &&
                json_integer_value(json_object_get(r.json, "n_new_clusters")) >= 1 &&
                json_integer_value(json_object_get(r.json, "state_version")) == 3;
    for (size_t i = 0; fresh && i < 10; i++) {
        far_lab[i] = (int32_t)json_integer_value(json_array_get(l, i));
        fresh = far_lab[i] > max_id;
    }
    for (size_t i = 0; fresh && i < 10; i++)
        for (size_t j = 0; j < i; j++)
            fresh = fresh && (g_truth[i] == g_truth[j]) == (far_lab[i] == far_lab[j]);
    CHECK(fresh, "far points with open (ids above %d): %ld %.300s", max_id, r.status, r.body);
    hfree(&r);
    state_of(port, cid, &sv, &sn);
    CHECK(sv == 3 && sn == N_STORED + 60, "state after the new clusters: v%lld n%lld", sv, sn);
    /* The stored points, assigned again, meet their twins: each gets its original id. */
    int32_t again[N_STORED];
    st = assign_rows(port, cid, 0, N_STORED, ",\"params\":{\"new_clusters\":\"unassigned\"}", again,
                     &v);
    CHECK(st == 200 && memcmp(again, stored, sizeof(again)) == 0,
          "stored points re-assigned: %ld, ids %s", st,
          memcmp(again, stored, sizeof(again)) == 0 ? "kept" : "changed");
}

/* The clustering's labels from its own result (what assigns must never change). */
static int result_labels(int port, const char *cid, int32_t *lab, size_t n)
{
    char p[128];
    snprintf(p, sizeof(p), "/v1/jobs/%s/result", cid);
    hresp r;
    long st = GET(port, p, &r);
    json_t *l = json_object_get(r.json, "labels");
    int ok = st == 200 && json_array_size(l) == n;
    for (size_t i = 0; ok && i < n; i++)
        lab[i] = (int32_t)json_integer_value(json_array_get(l, i));
    hfree(&r);
    return ok ? 0 : -1;
}

static void case_errors(int port, const char *cid, const int32_t *stored)
{
    hresp r;
    char path[128], qpath[192];
    long long v0 = 0, n0 = 0, v = 0, n = 0;
    state_of(port, cid, &v0, &n0);
    const char *one = "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}";
    http(port, "POST", "/v1/clusterings/j_unknown/assign", "application/json", one, strlen(one),
         NULL, 0, &r);
    CHECK_PROBLEM(&r, 404, "clustering-not-found");
    hfree(&r);
    snprintf(path, sizeof(path), "/v1/clusterings/%s/assign", cid);
    const char *two_d = "{\"embeddings\":[[1,0]]}";
    http(port, "POST", path, "application/json", two_d, strlen(two_d), NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "dimension-mismatch");
    hfree(&r);
    float raw[2 * D] = {1, 0};
    snprintf(qpath, sizeof(qpath), "%s?dim=%d", path, 2 * D);
    http(port, "POST", qpath, "application/octet-stream", raw, sizeof(float) * 2 * D, NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "dimension-mismatch");
    hfree(&r);
    char bad[256];
    snprintf(bad, sizeof(bad),
             "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]],"
             "\"params\":{\"new_clusters\":\"maybe\"}}");
    http(port, "POST", path, "application/json", bad, strlen(bad), NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "invalid-parameter");
    hfree(&r);
    snprintf(bad, sizeof(bad),
             "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]],"
             "\"params\":{\"k\":5}}");
    http(port, "POST", path, "application/json", bad, strlen(bad), NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "invalid-parameter");
    hfree(&r);
    snprintf(bad, sizeof(bad),
             "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]],\"labels\":[3]}");
    http(port, "POST", path, "application/json", bad, strlen(bad), NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "invalid-parameter");
    hfree(&r);
    snprintf(qpath, sizeof(qpath), "%s?dim=%d&new_clusters=never", path, D);
    http(port, "POST", qpath, "application/octet-stream", raw, sizeof(float) * D, NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "invalid-parameter");
    hfree(&r);
    http(port, "POST", path, "application/json", "{\"embeddings\":", 14, NULL, 0, &r);
    CHECK_PROBLEM(&r, 400, "malformed-body");
    hfree(&r);
    http(port, "POST", path, "text/plain", "x", 1, NULL, 0, &r);
    CHECK_PROBLEM(&r, 415, "unsupported-media-type");
    hfree(&r);
    /* NaN and Inf, in JSON (a bare NaN, an overflowing number) and in raw float32. */
    snprintf(bad, sizeof(bad), "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,NaN]]}");
    http(port, "POST", path, "application/json", bad, strlen(bad), NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "non-finite-value");
    hfree(&r);
    snprintf(bad, sizeof(bad), "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1e39]]}");
    http(port, "POST", path, "application/json", bad, strlen(bad), NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "non-finite-value");
    hfree(&r);
    float nan_rows[2 * D];
    memcpy(nan_rows, g_x, sizeof(nan_rows));
    nan_rows[D + 3] = 0.0f / 0.0f;
    snprintf(qpath, sizeof(qpath), "%s?dim=%d", path, D);
    http(port, "POST", qpath, "application/octet-stream", nan_rows, sizeof(nan_rows), NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "non-finite-value");
    hfree(&r);
    http(port, "POST", qpath, "application/octet-stream", nan_rows, sizeof(float) * D + 2, NULL, 0,
         &r);
    CHECK_PROBLEM(&r, 400, "invalid-raw");
    hfree(&r);
    /* None of that touched the clustering: same version, same points, same labels. */
    state_of(port, cid, &v, &n);
    CHECK(v == v0 && n == n0, "bad input changed the state: v%lld n%lld (was v%lld n%lld)", v, n,
          v0, n0);
    int32_t now_lab[N_STORED];
    CHECK(result_labels(port, cid, now_lab, N_STORED) == 0 &&
              memcmp(now_lab, stored, sizeof(now_lab)) == 0,
          "the clustering's labels changed");
    /* A good raw float32 assign: an assign job, which is not itself a clustering. */
    raw[0] = 1;
    snprintf(qpath, sizeof(qpath), "%s?dim=16&new_clusters=unassigned", path);
    http(port, "POST", qpath, "application/octet-stream", raw, sizeof(float) * D, WAIT, 0, &r);
    CHECK(r.status == 200 || r.status == 202, "raw f32 assign: %ld %.200s", r.status, r.body);
    char aid[64] = "j_none";
    if (jstr(r.json, "id") != NULL)
        snprintf(aid, sizeof(aid), "%s", jstr(r.json, "id"));
    hfree(&r);
    snprintf(path, sizeof(path), "/v1/clusterings/%s/assign", aid);
    http(port, "POST", path, "application/json", one, strlen(one), NULL, 0, &r);
    CHECK_PROBLEM(&r, 404, "clustering-not-found");
    hfree(&r);
    /* A clustering still running (40,000 points take seconds): 409 job-not-finished; once
     * canceled: 409 job-has-no-result. */
    size_t nb = 40000;
    float *big = rand_f32(nb, 32, 7);
    http(port, "POST", "/v1/cluster?dim=32", "application/octet-stream", big,
         nb * 32 * sizeof(float), NULL, 0, &r);
    free(big);
    char running[64] = "j_none", got[32] = "";
    CHECK(r.status == 202, "running clustering: %ld", r.status);
    if (r.status == 202)
        snprintf(running, sizeof(running), "%s", jstr(r.json, "id"));
    hfree(&r);
    snprintf(path, sizeof(path), "/v1/clusterings/%s/assign", running);
    const char *thirty_two = "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
                             "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}";
    http(port, "POST", path, "application/json", thirty_two, strlen(thirty_two), NULL, 0, &r);
    CHECK_PROBLEM(&r, 409, "job-not-finished");
    hfree(&r);
    snprintf(qpath, sizeof(qpath), "/v1/jobs/%s", running);
    http(port, "DELETE", qpath, NULL, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 || r.status == 202, "cancel the running clustering: %ld", r.status);
    hfree(&r);
    CHECK(wait_status(port, running, "canceled,succeeded,failed", 120, got) == 0 &&
              strcmp(got, "canceled") == 0,
          "the running clustering ended %s", got);
    http(port, "POST", path, "application/json", thirty_two, strlen(thirty_two), NULL, 0, &r);
    CHECK_PROBLEM(&r, 409, "job-has-no-result");
    hfree(&r);
}

typedef struct conc {
    int port;
    const char *cid;
    size_t first;
    long status;
    long long version;
    int32_t lab[PER_ASSIGN];
} conc;

static void *conc_main(void *arg)
{
    conc *c = arg;
    c->status = assign_rows(c->port, c->cid, c->first, PER_ASSIGN, "", c->lab, &c->version);
    return NULL;
}

/* A clustering big enough (N_FILL random points besides the stored blob rows) that reading,
 * assigning and writing its state takes long enough for concurrent assigns to overlap. */
#define N_FILL 30000

static int cluster_big(int port, char *id)
{
    float *x = rand_f32(N_STORED + N_FILL, D, 11);
    memcpy(x, g_x, N_STORED * D * sizeof(float));
    hresp r;
    long st = http(port, "POST", "/v1/cluster?dim=16", "application/octet-stream", x,
                   (N_STORED + N_FILL) * D * sizeof(float), NULL, 0, &r);
    free(x);
    char got[32] = "";
    int ok = st == 202 && jstr(r.json, "id") != NULL;
    if (ok) {
        snprintf(id, 40, "%s", jstr(r.json, "id"));
        ok = wait_status(port, id, "succeeded,failed", 120, got) == 0 &&
             strcmp(got, "succeeded") == 0;
    }
    CHECK(ok, "big clustering: %ld %s", st, got);
    hfree(&r);
    return ok ? 0 : -1;
}

/* N_CONC assigns at once (alternating between the given ports): every one succeeds, each
 * writes its own version, and the final state holds every point with the label it got. With
 * Redis (`h`), the test holds the clustering's lock for a moment first, so the assigns pile
 * up behind it and then race for it. */

/* A reader running while the assigns do: every read finds a whole version. Through the API
 * the clustering's job shows a version in [v0, v0 + N_CONC] that never goes back and the
 * points that version holds, and its result stays readable; with Redis, the state pointer
 * always names a version whose blob is there (or has just been replaced). */
typedef struct reader {
    int port;
    const char *cid;
    long long v0, n0;
    const rh_server *h;
    atomic_int stop;
    int reads, bad;
    long long last, max_seen;
    char why[300];
} reader;

#define READER_FAIL(rd, ...)                                                                       \
    do {                                                                                           \
        if ((rd)->bad++ == 0)                                                                      \
            snprintf((rd)->why, sizeof((rd)->why), __VA_ARGS__);                                   \
    } while (0)

static void reader_redis(reader *rd, redisContext *c)
{
    redisReply *p = redisCommand(c, "GET hl:state:%s", rd->cid);
    if (p == NULL || p->type != REDIS_REPLY_STRING) {
        READER_FAIL(rd, "redis: no state pointer (reply type %d)", p != NULL ? p->type : -1);
        if (p != NULL)
            freeReplyObject(p);
        return;
    }
    /* "n:g:...": the version and the hex nonce of its blob (a base or a delta),
     * hl:state:{id}:v{n}.{g}:meta (store_redis_state.c) */
    char ver[32] = "", nonce[32] = "";
    if (sscanf(p->str, "%31[0-9]:%31[0-9a-f]", ver, nonce) != 2)
        READER_FAIL(rd, "redis: state pointer '%s' unreadable", p->str);
    redisReply *m = redisCommand(c, "EXISTS hl:state:%s:v%s.%s:meta", rd->cid, ver, nonce);
    redisReply *q = redisCommand(c, "GET hl:state:%s", rd->cid);
    int whole = m != NULL && m->type == REDIS_REPLY_INTEGER && m->integer == 1;
    int moved = q != NULL && q->type == REDIS_REPLY_STRING && strcmp(q->str, p->str) != 0;
    if (!whole && !moved)
        READER_FAIL(rd, "redis: version %s (nonce %s) named but not stored", ver, nonce);
    freeReplyObject(p);
    if (m != NULL)
        freeReplyObject(m);
    if (q != NULL)
        freeReplyObject(q);
}

static void *reader_main(void *arg)
{
    reader *rd = arg;
    redisContext *c = rd->h != NULL ? rh_connect(rd->h) : NULL;
    if (rd->h != NULL && c == NULL)
        READER_FAIL(rd, "redis: no connection");
    char jp[96], rp[128];
    snprintf(jp, sizeof(jp), "/v1/jobs/%s", rd->cid);
    snprintf(rp, sizeof(rp), "/v1/jobs/%s/result?limit=1", rd->cid);
    rd->last = rd->v0;
    for (double t0 = now(); !atomic_load(&rd->stop) && now() - t0 < 150 && rd->reads < 100000;
         rd->reads++) {
        hresp r;
        GET(rd->port, jp, &r);
        json_t *st = json_object_get(r.json, "state");
        long long v = json_integer_value(json_object_get(st, "version"));
        long long n = json_integer_value(json_object_get(st, "n"));
        if (r.status != 200 || !json_is_object(st))
            READER_FAIL(rd, "job read: %ld, state %s", r.status,
                        json_is_object(st) ? "{}" : "null");
        else if (v < rd->last || v > rd->v0 + N_CONC)
            READER_FAIL(rd, "version %lld after %lld", v, rd->last);
        else if (n != rd->n0 + (v - rd->v0) * PER_ASSIGN)
            READER_FAIL(rd, "version %lld holds %lld points", v, n);
        rd->last = v > rd->last ? v : rd->last;
        hfree(&r);
        if (GET(rd->port, rp, &r) != 200)
            READER_FAIL(rd, "result read: %ld", r.status);
        hfree(&r);
        if (c != NULL)
            reader_redis(rd, c);
        sleep_ms(5);
    }
    if (c != NULL)
        redisFree(c);
    return NULL;
}

static void case_concurrent(const int *ports, int n_ports, const char *cid, long long v0,
                            long long n0, const rh_server *h)
{
    reader rd = {.port = ports[n_ports - 1], .cid = cid, .v0 = v0, .n0 = n0, .h = h};
    atomic_init(&rd.stop, 0);
    pthread_t rt;
    int reading = pthread_create(&rt, NULL, reader_main, &rd) == 0;
    CHECK(reading, "reader thread");
    if (h != NULL)
        CHECK(rh_command(h, "SET hl:lock:%s test-holder PX 1500", cid) == 0, "hold the lock");
    conc c[N_CONC];
    pthread_t t[N_CONC];
    size_t first = N_STORED + 50;
    for (int i = 0; i < N_CONC; i++) {
        c[i] = (conc){ports[i % n_ports], cid, first + (size_t)i * PER_ASSIGN, 0, 0, {0}};
        pthread_create(&t[i], NULL, conc_main, &c[i]);
    }
    for (int i = 0; i < N_CONC; i++)
        pthread_join(t[i], NULL);
    atomic_store(&rd.stop, 1);
    if (reading)
        pthread_join(rt, NULL);
    CHECK(rd.reads > 0 && rd.bad == 0,
          "reader during the assigns: %d reads, %d bad (%s), last version %lld", rd.reads, rd.bad,
          rd.why, rd.last);
    unsigned seen = 0;
    for (int i = 0; i < N_CONC; i++) {
        CHECK(c[i].status == 200, "concurrent assign %d: %ld", i, c[i].status);
        long long k = c[i].version - v0;
        CHECK(k >= 1 && k <= N_CONC && (seen & (1u << k)) == 0,
              "assign %d wrote version %lld (from %lld)", i, c[i].version, v0);
        if (k >= 1 && k <= N_CONC)
            seen |= 1u << k;
    }
    long long v = 0, n = 0;
    state_of(ports[0], cid, &v, &n);
    CHECK(v == v0 + N_CONC && n == n0 + N_CONC * PER_ASSIGN,
          "state after %d concurrent assigns: v%lld n%lld (want v%lld n%lld)", N_CONC, v, n,
          v0 + N_CONC, n0 + N_CONC * PER_ASSIGN);
    /* Every point is stored: assigned again (model-free, duplicates join their twins), each
     * gets exactly the label it got before. */
    int32_t again[N_CONC * PER_ASSIGN];
    long long v2 = 0;
    long st = assign_rows(ports[0], cid, first, N_CONC * PER_ASSIGN,
                          ",\"params\":{\"new_clusters\":\"unassigned\"}", again, &v2);
    CHECK(st == 200, "re-assign: %ld", st);
    size_t same = 0;
    for (int i = 0; i < N_CONC; i++)
        for (int p = 0; p < PER_ASSIGN; p++)
            same += again[i * PER_ASSIGN + p] == c[i].lab[p];
    CHECK(same == N_CONC * PER_ASSIGN, "%zu of %d points kept their label in the final state", same,
          N_CONC * PER_ASSIGN);
}

/* DELETE of the cluster job removes its state: assigns answer 404, and with Redis no key of
 * the state is left. */
static void case_delete(int port, const char *cid, const rh_server *h)
{
    char p[128];
    snprintf(p, sizeof(p), "/v1/jobs/%s", cid);
    hresp r;
    CHECK(http(port, "DELETE", p, NULL, NULL, 0, NULL, 0, &r) == 204, "delete %ld", r.status);
    hfree(&r);
    snprintf(p, sizeof(p), "/v1/clusterings/%s/assign", cid);
    const char *one = "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}";
    http(port, "POST", p, "application/json", one, strlen(one), NULL, 0, &r);
    CHECK_PROBLEM(&r, 404, "clustering-not-found");
    hfree(&r);
    if (h == NULL)
        return;
    redisContext *c = rh_connect(h);
    redisReply *k = c != NULL ? redisCommand(c, "KEYS hl:state:%s*", cid) : NULL;
    CHECK(k != NULL && k->type == REDIS_REPLY_ARRAY && k->elements == 0,
          "state keys left after DELETE: %zu", k != NULL ? k->elements : (size_t)-1);
    if (k != NULL)
        freeReplyObject(k);
    if (c != NULL)
        redisFree(c);
}

/* POST /v1/cluster of rows [0, N_STORED) with k=8 (work no other case asks for): raw float32
 * (no ids: a cache hit is answered at once on the HTTP thread) or JSON with ids (a hit is
 * finished by a worker). Waits for success; returns 0, the job id and whether it was cached. */
static int cluster_k8(int port, int json, char *id, int *cached)
{
    hresp r;
    long st;
    if (json) {
        char *b = body_rows(0, N_STORED, ",\"params\":{\"k\":8}");
        st = http(port, "POST", "/v1/cluster", "application/json", b, strlen(b), WAIT, 0, &r);
        free(b);
    } else {
        st = http(port, "POST", "/v1/cluster?dim=16&k=8", "application/octet-stream", g_x,
                  N_STORED * D * sizeof(float), WAIT, 0, &r);
    }
    char got[32] = "";
    int ok = (st == 200 || st == 202) && jstr(r.json, "id") != NULL;
    if (ok) {
        snprintf(id, 40, "%s", jstr(r.json, "id"));
        ok = wait_status(port, id, "succeeded,failed", 120, got) == 0 &&
             strcmp(got, "succeeded") == 0;
    }
    CHECK(ok, "cluster (k=8, %s): %ld %s %.200s", json ? "json" : "raw", st, got, r.body);
    hfree(&r);
    if (ok) { /* (the job object says; a 200 answer is the result) */
        char p[96];
        snprintf(p, sizeof(p), "/v1/jobs/%s", id);
        GET(port, p, &r);
        *cached = json_is_true(json_object_get(r.json, "cached"));
        hfree(&r);
    }
    return ok ? 0 : -1;
}

/* Counts the Redis keys of a state: hl:state:{id} and hl:state:{id}:... */
static long state_keys(const rh_server *h, const char *id)
{
    redisContext *c = rh_connect(h);
    redisReply *k = c != NULL ? redisCommand(c, "KEYS hl:state:%s*", id) : NULL;
    long n = k != NULL && k->type == REDIS_REPLY_ARRAY ? (long)k->elements : -1;
    if (k != NULL)
        freeReplyObject(k);
    if (c != NULL)
        redisFree(c);
    return n;
}

/* Cache hits (a repeat of a cluster request) get a clone of the source's state made in the
 * store: each one is version 1 with the source's points, and assigns to a clone and to the
 * source are independent (the same points get the same labels from each, and neither sees
 * the other's version). Once an assign changed the source, a hit gets no state (its assigns
 * answer 404). Deleting the source leaves the clones whole (with Redis: none of the source's
 * keys is left, the clone's are). */
static void case_cached(const int *ports, int n_ports, const rh_server *h)
{
    char src[40] = "", hit_raw[40] = "", hit_json[40] = "", late[40] = "";
    int c_src = 1, c_raw = 0, c_json = 0, c_late = 0;
    if (cluster_k8(ports[0], 0, src, &c_src) != 0 ||
        cluster_k8(ports[n_ports - 1], 0, hit_raw, &c_raw) != 0 ||
        cluster_k8(ports[0], 1, hit_json, &c_json) != 0)
        return;
    CHECK(!c_src && c_raw && c_json, "cached: source %d, raw repeat %d, json repeat %d", c_src,
          c_raw, c_json);
    long long v = 0, n = 0;
    const char *ids[3] = {src, hit_raw, hit_json};
    for (int i = 0; i < 3; i++) {
        state_of(ports[0], ids[i], &v, &n);
        CHECK(v == 1 && n == N_STORED, "state of %s (%d of 3): v%lld n%lld", ids[i], i, v, n);
    }
    int32_t lab_hit[20], lab_src[20], lab_after[20];
    long long v2 = 0;
    long st = assign_rows(ports[n_ports - 1], hit_raw, N_STORED, 20, "", lab_hit, &v2);
    CHECK(st == 200 && v2 == 2, "assign to the raw hit: %ld v%lld", st, v2);
    for (int i = 0; i < 3; i += 2) {
        state_of(ports[0], ids[i], &v, &n);
        CHECK(v == 1 && n == N_STORED, "%s after an assign to a clone: v%lld n%lld", ids[i], v, n);
    }
    st = assign_rows(ports[0], src, N_STORED, 20, "", lab_src, &v2);
    CHECK(st == 200 && v2 == 2 && memcmp(lab_src, lab_hit, sizeof(lab_hit)) == 0,
          "assign to the source: %ld v%lld, labels %s", st, v2,
          memcmp(lab_src, lab_hit, sizeof(lab_hit)) == 0 ? "as the clone's" : "differ");
    /* The source is at version 2 now: a new hit gets its labels but no state. */
    if (cluster_k8(ports[0], 0, late, &c_late) == 0) {
        state_of(ports[0], late, &v, &n);
        CHECK(c_late && v == 0, "hit of a changed source: cached %d, state v%lld", c_late, v);
        char p[128];
        snprintf(p, sizeof(p), "/v1/clusterings/%s/assign", late);
        const char *one = "{\"embeddings\":[[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}";
        hresp r;
        http(ports[0], "POST", p, "application/json", one, strlen(one), NULL, 0, &r);
        CHECK_PROBLEM(&r, 404, "clustering-not-found");
        hfree(&r);
    }
    /* Deleting the source leaves the JSON hit's clone, which is still version 1. */
    char p[96];
    snprintf(p, sizeof(p), "/v1/jobs/%s", src);
    hresp r;
    CHECK(http(ports[0], "DELETE", p, NULL, NULL, 0, NULL, 0, &r) == 204, "delete %ld", r.status);
    hfree(&r);
    if (h != NULL)
        CHECK(state_keys(h, src) == 0 && state_keys(h, hit_json) >= 3,
              "redis keys: source %ld (want 0), clone %ld (want pointer, meta, chunk)",
              state_keys(h, src), state_keys(h, hit_json));
    st = assign_rows(ports[n_ports - 1], hit_json, N_STORED, 20, "", lab_after, &v2);
    CHECK(st == 200 && v2 == 2 && memcmp(lab_after, lab_hit, sizeof(lab_hit)) == 0,
          "assign to the json hit after the source's delete: %ld v%lld, labels %s", st, v2,
          memcmp(lab_after, lab_hit, sizeof(lab_hit)) == 0 ? "as the other clone's" : "differ");
}

static void stop(server *s)
{
    kill(s->pid, SIGTERM);
    int st = -1;
    pid_t w = 0;
    for (double t0 = now(); now() - t0 < 60 && (w = waitpid(s->pid, &st, WNOHANG)) == 0;)
        sleep_ms(20);
    CHECK(w == s->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: exit status %d", s->log, st);
    for (int i = 0; i < g_npids; i++)
        if (g_pids[i] == s->pid && w == s->pid)
            g_pids[i] = 0;
    size_t n;
    char *text = read_file(s->log, &n);
    CHECK(text != NULL && strstr(text, "Sanitizer") == NULL &&
              strstr(text, "runtime error") == NULL && strstr(text, "\"level\":\"error\"") == NULL,
          "sanitizer report or error line in %s", s->log);
    free(text);
}

static void run_all(const int *ports, int n_ports, const rh_server *h)
{
    char cid[40] = "";
    int32_t stored[N_STORED];
    case_flow(ports[0], cid, stored);
    if (cid[0] == '\0')
        return;
    if (n_ports == 1) { /* one replica: its assigns reused the state the cluster job left */
        hresp m;
        GET(ports[0], "/metrics", &m);
        const char *name = "\nhilander_state_cache_hits_total ";
        const char *at = m.body != NULL ? strstr(m.body, name) : NULL;
        long long hits = at != NULL ? atoll(at + strlen(name)) : -1;
        CHECK(hits >= 3, "state cache hits after case_flow: %lld", hits);
        hfree(&m);
    }
    case_errors(ports[n_ports - 1], cid, stored);
    case_delete(ports[0], cid, h);
    case_cached(ports, n_ports, h);
    char big[40] = "";
    if (cluster_big(ports[0], big) != 0)
        return;
    long long v = 0, n = 0;
    state_of(ports[0], big, &v, &n);
    CHECK(v == 1 && n == N_STORED + N_FILL, "big state v%lld n%lld", v, n);
    case_concurrent(ports, n_ports, big, v, n, h);
}

static void run_cases(void)
{
    char models[400];
    snprintf(models, sizeof(models), "%s/models", g_tmp);
    mkdir(models, 0700);
    const char *mem[] = {"--model-dir",      models, "--default-model", "none", "--workers", "3",
                         "--engine-threads", "1",    "--drain-seconds", "0",    NULL};
    server a;
    if (start(&a, "memory", mem, NULL) == 0) {
        int ports[1] = {a.port};
        run_all(ports, 1, NULL);
        stop(&a);
    } else {
        CHECK(0, "hilanderd (memory) did not start");
    }
    rh_server h;
    if (rh_start(&h) != 0) {
        CHECK(0, "redis: %s", h.msg);
        return;
    }
    const char *red[] = {"--model-dir",
                         models,
                         "--default-model",
                         "none",
                         "--workers",
                         "2",
                         "--engine-threads",
                         "1",
                         "--drain-seconds",
                         "0",
                         "--redis",
                         h.url,
                         NULL};
    server r1, r2;
    int up1 = start(&r1, "redis1", red, NULL),
        up2 = up1 == 0 ? start(&r2, "redis2", red, NULL) : -1;
    CHECK(up1 == 0 && up2 == 0, "hilanderd --redis did not start");
    if (up1 == 0 && up2 == 0) {
        int ports[2] = {r1.port, r2.port};
        run_all(ports, 2, &h);
    }
    if (up2 == 0)
        stop(&r2);
    if (up1 == 0)
        stop(&r1);
    rh_stop(&h);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_assign_service HILANDERD HILANDER PROJECT_DIR\n");
        return 2;
    }
    g_daemon = argv[1];
    g_cli = argv[2];
    g_root = argv[3];
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/hltest.assign.XXXXXX");
    if (mkdtemp(g_tmp) == NULL)
        return 2;
    if (load_npy("blobs.features.npy", g_x, sizeof(g_x)) != 0 ||
        load_npy("blobs.labels.npy", g_truth, sizeof(g_truth)) != 0) {
        fprintf(stderr, "cannot read tests/cli/data/blobs.*.npy\n");
        return 2;
    }
    atexit(kill_servers);
    signal(SIGALRM, on_fatal);
    signal(SIGSEGV, on_fatal);
    signal(SIGABRT, on_fatal);
    signal(SIGINT, on_fatal);
    signal(SIGTERM, on_fatal);
    signal(SIGPIPE, SIG_IGN);
    alarm(SUITE_SECONDS);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    run_cases();
    kill_servers();
    curl_global_cleanup();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    if (getenv("HL_KEEP") == NULL && g_failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_tmp);
    else if (g_failed > 0)
        fprintf(stderr, "server logs kept in %s\n", g_tmp);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
