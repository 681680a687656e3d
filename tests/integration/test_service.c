/*
 * test_service.c - hilanderd end to end over loopback: start it on 127.0.0.1 port 0 (the
 * port comes from --port-file), drive every endpoint and every error with libcurl, compare
 * results with the CLI on the same input, and check the SIGTERM drain (harness.h has the
 * plumbing). Every server started here is killed on exit, on failure and on the global
 * alarm; every loop is bounded.
 *
 * Usage: test_service HILANDERD HILANDER PROJECT_DIR. Prints "N passed, N failed".
 */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUITE_SECONDS 240 /* the whole program; normally well under a minute */

/* ---- cases ---- */

static void case_start_failures(void)
{
    char err[2048], dir[400], path[512];
    snprintf(dir, sizeof(dir), "%s/badmodels", g_tmp);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/broken.hlm", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not a model file", f);
    fclose(f);
    const char *bad_model[] = {"--model-dir", dir, "--default-model", "none", NULL};
    int rc = start_fails("badmodel", bad_model, err, sizeof(err));
    CHECK(rc > 0 && strstr(err, "broken.hlm") != NULL && strchr(err, '\n') == err + strlen(err) - 1,
          "corrupt model: exit %d, stderr '%s'", rc, err);
    snprintf(dir, sizeof(dir), "%s/nomodels", g_tmp);
    mkdir(dir, 0700);
    const char *no_default[] = {"--model-dir", dir, NULL};
    rc = start_fails("nodefault", no_default, err, sizeof(err));
    CHECK(rc == 2 && strstr(err, "universal") != NULL, "missing default: exit %d, '%s'", rc, err);
    const char *bad_flag[] = {"--workers", "zero", NULL};
    rc = start_fails("badflag", bad_flag, err, sizeof(err));
    CHECK(rc == 2 && strstr(err, "--workers") != NULL, "bad flag: exit %d, '%s'", rc, err);
}

static void case_basics(int port)
{
    hresp r;
    CHECK(GET(port, "/livez", &r) == 200, "livez %ld", r.status);
    char v[256];
    CHECK(header(&r, "X-Request-Id", v, sizeof(v)) != NULL, "no X-Request-Id");
    CHECK(header(&r, "Access-Control-Expose-Headers", v, sizeof(v)) != NULL &&
              strcmp(v, "Location, Retry-After") == 0,
          "expose headers");
    hfree(&r);
    CHECK(GET(port, "/readyz", &r) == 200, "readyz %ld", r.status);
    hfree(&r);
    CHECK(GET(port, "/openapi.yaml", &r) == 200, "openapi %ld", r.status);
    char path[512];
    snprintf(path, sizeof(path), "%s/openapi.yaml", g_root);
    size_t n;
    char *file = read_file(path, &n);
    CHECK(file != NULL && r.len == n && memcmp(file, r.body, n) == 0,
          "/openapi.yaml differs from the file");
    CHECK(header(&r, "Content-Type", v, sizeof(v)) && strcmp(v, "application/yaml") == 0, "yaml");
    free(file);
    hfree(&r);
    const char *rid[] = {"X-Request-Id: test-req-123", NULL};
    http(port, "GET", "/nowhere", NULL, NULL, 0, rid, 0, &r);
    CHECK_PROBLEM(&r, 404, "not-found");
    CHECK(header(&r, "X-Request-Id", v, sizeof(v)) && strcmp(v, "test-req-123") == 0, "echo");
    CHECK(strcmp(jstr(r.json, "instance"), "test-req-123") == 0, "instance");
    hfree(&r);
    http(port, "PUT", "/v1/jobs/abc", NULL, NULL, 0, NULL, 0, &r);
    CHECK_PROBLEM(&r, 405, "method-not-allowed");
    CHECK(header(&r, "Allow", v, sizeof(v)) && strcmp(v, "GET, DELETE, OPTIONS") == 0, "Allow");
    hfree(&r);
    const char *pre[] = {"Origin: http://example.test", "Access-Control-Request-Method: POST",
                         NULL};
    http(port, "OPTIONS", "/v1/cluster", NULL, NULL, 0, pre, 0, &r);
    CHECK(r.status == 204 && header(&r, "Access-Control-Allow-Methods", v, sizeof(v)) &&
              strstr(v, "POST") != NULL,
          "preflight %ld", r.status);
    hfree(&r);
    CHECK(GET(port, "/v1/models", &r) == 200 &&
              json_array_size(json_object_get(r.json, "models")) == 3,
          "models %.200s", r.body);
    hfree(&r);
    CHECK(GET(port, "/v1/models/lander8", &r) == 200 &&
              json_integer_value(json_object_get(r.json, "dim")) == 8 &&
              strcmp(jstr(r.json, "kind"), "lander") == 0,
          "lander8 %.200s", r.body);
    hfree(&r);
    CHECK(GET(port, "/v1/models/universal", &r) == 200 && strcmp(jstr(r.json, "dim"), "any") == 0,
          "universal %.200s", r.body);
    hfree(&r);
    GET(port, "/v1/models/nope", &r);
    CHECK_PROBLEM(&r, 404, "unknown-model");
    hfree(&r);
    GET(port, "/v1/jobs/j_nope", &r);
    CHECK_PROBLEM(&r, 404, "job-not-found");
    hfree(&r);
    GET(port, "/v1/jobs/j_nope/result", &r);
    CHECK_PROBLEM(&r, 404, "job-not-found");
    hfree(&r);
    http(port, "DELETE", "/v1/jobs/j_nope", NULL, NULL, 0, NULL, 0, &r);
    CHECK_PROBLEM(&r, 404, "job-not-found");
    hfree(&r);
}

/* Submits blobs.npy, compares with the CLI, pages, npy formats, cache, delete. */
static void case_cluster_flow(int port)
{
    char path[512], out[512], lv[512], cmd[2048], id[64] = "", got[32], v[256];
    snprintf(path, sizeof(path), "%s/tests/cli/data/blobs.features.npy", g_root);
    size_t n;
    void *npy = read_file(path, &n);
    hresp r;
    http(port, "POST", "/v1/cluster", "application/x-npy", npy, n, NULL, 0, &r);
    CHECK(r.status == 202 && header(&r, "Location", v, sizeof(v)) &&
              strncmp(v, "/v1/jobs/j_", 11) == 0 && header(&r, "Retry-After", v, sizeof(v)),
          "submit %ld %.300s", r.status, r.body);
    snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));
    hfree(&r);
    CHECK(wait_status(port, id, "succeeded", 60, got) == 0, "job ended %s", got);
    snprintf(out, sizeof(out), "%s/cli.npy", g_tmp);
    snprintf(lv, sizeof(lv), "%s/cli_levels.npy", g_tmp);
    snprintf(cmd, sizeof(cmd),
             "'%s' cluster --in '%s' --model none --out '%s' --levels-out '%s' --quiet", g_cli,
             path, out, lv);
    CHECK(system(cmd) == 0, "CLI failed: %s", cmd);
    size_t cn, ln;
    char *cli = read_file(out, &cn), *cli_levels = read_file(lv, &ln);
    char url[256];
    snprintf(url, sizeof(url), "/v1/jobs/%s/result?format=npy", id);
    GET(port, url, &r);
    CHECK(r.status == 200 && cli != NULL && r.len == cn && memcmp(r.body, cli, cn) == 0,
          "service labels differ from the CLI's (%zu vs %zu bytes)", r.len, cn);
    hfree(&r);
    snprintf(url, sizeof(url), "/v1/jobs/%s/result?format=npy&levels=all", id);
    GET(port, url, &r);
    CHECK(r.status == 200 && cli_levels != NULL && r.len == ln &&
              memcmp(r.body, cli_levels, ln) == 0,
          "service levels differ from the CLI's");
    hfree(&r);
    free(cli);
    free(cli_levels);
    snprintf(url, sizeof(url), "/v1/jobs/%s/result?limit=120", id);
    GET(port, url, &r);
    char want[200];
    snprintf(want, sizeof(want), "</v1/jobs/%s/result?offset=120&limit=120>; rel=\"next\"", id);
    CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "labels")) == 120 &&
              header(&r, "Link", v, sizeof(v)) && strcmp(v, want) == 0,
          "paging: %s", r.hdrs);
    hfree(&r);
    snprintf(url, sizeof(url), "/v1/jobs/%s/result?offset=240&limit=120", id);
    GET(port, url, &r);
    CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "labels")) == 60 &&
              header(&r, "Link", v, sizeof(v)) == NULL,
          "last page");
    hfree(&r);
    /* The same work again: the cache answers, nothing is recomputed. */
    double hits = metric(port, "hilander_cache_hits_total");
    double points = metric(port, "hilander_points_clustered_total");
    http(port, "POST", "/v1/cluster", "application/x-npy", npy, n, NULL, 0, &r);
    CHECK(r.status == 202 && json_is_true(json_object_get(r.json, "cached")) &&
              strcmp(jstr(r.json, "status"), "succeeded") == 0,
          "cache: %.300s", r.body);
    char id2[64];
    snprintf(id2, sizeof(id2), "%s", jstr(r.json, "id"));
    hfree(&r);
    CHECK(metric(port, "hilander_cache_hits_total") == hits + 1, "cache hits not counted");
    CHECK(metric(port, "hilander_points_clustered_total") == points, "recomputed on a hit");
    snprintf(url, sizeof(url), "/v1/jobs/%s/result?format=npy", id2);
    GET(port, url, &r);
    CHECK(r.status == 200 && r.len == cn, "cached result");
    hfree(&r);
    /* Finished jobs are deleted. */
    snprintf(url, sizeof(url), "/v1/jobs/%s", id2);
    http(port, "DELETE", url, NULL, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 204, "delete finished: %ld", r.status);
    hfree(&r);
    GET(port, url, &r);
    CHECK_PROBLEM(&r, 404, "job-not-found");
    hfree(&r);
    /* The lander model refuses 16-d input, naming both dimensions. */
    http(port, "POST", "/v1/cluster?model=lander8", "application/x-npy", npy, n, NULL, 0, &r);
    CHECK_PROBLEM(&r, 422, "dimension-mismatch");
    CHECK(strstr(jstr(r.json, "detail"), "8") && strstr(jstr(r.json, "detail"), "16"), "dims");
    hfree(&r);
    free(npy);
}

/* A .npy v1 image of x (n x d float32) in a malloc'd buffer of *len bytes. */
static char *npy_image(const float *x, size_t n, size_t d, size_t *len)
{
    char dict[128];
    int dl = snprintf(dict, sizeof(dict),
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", n, d);
    size_t head = ((size_t)10 + (size_t)dl + 1 + 63) / 64 * 64;
    *len = head + n * d * sizeof(float);
    char *b = malloc(*len);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (char)((head - 10) & 0xff);
    b[9] = (char)((head - 10) >> 8);
    memset(b + 10, ' ', head - 10);
    memcpy(b + 10, dict, (size_t)dl);
    b[head - 1] = '\n';
    memcpy(b + head, x, n * d * sizeof(float));
    return b;
}

/* Large bodies reuse the buffers of finished jobs (the body pool): the second upload lands in
 * the first one's buffer, which still holds the first body's bytes, and must still give
 * exactly the CLI's labels for its own input. */
static void case_body_pool(int port)
{
    size_t n = 9000, d = 32, la, lb; /* 1.15 MB: over the pool's 1 MiB minimum */
    float *xa = rand_f32(n, d, 101), *xb = rand_f32(n, d, 202);
    char *a = npy_image(xa, n, d, &la), *b = npy_image(xb, n, d, &lb);
    hresp r;
    char id[64], got[32], path[512], out[512], cmd[2048], url[256];
    double reused = metric(port, "hilander_body_buffers_total{source=\"pool\"}");
    http(port, "POST", "/v1/cluster", "application/x-npy", a, la, NULL, 0, &r);
    CHECK(r.status == 202, "submit a: %ld %.200s", r.status, r.body);
    snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));
    hfree(&r);
    CHECK(wait_status(port, id, "succeeded", 60, got) == 0, "job a ended %s", got);
    http(port, "POST", "/v1/cluster", "application/x-npy", b, lb, NULL, 0, &r);
    CHECK(r.status == 202, "submit b: %ld %.200s", r.status, r.body);
    snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));
    hfree(&r);
    CHECK(metric(port, "hilander_body_buffers_total{source=\"pool\"}") >= reused + 1,
          "the second large body did not reuse a pooled buffer");
    CHECK(wait_status(port, id, "succeeded", 60, got) == 0, "job b ended %s", got);
    snprintf(path, sizeof(path), "%s/pool_b.npy", g_tmp);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(b, 1, lb, f) == lb && fclose(f) == 0, "write %s", path);
    snprintf(out, sizeof(out), "%s/pool_b_cli.npy", g_tmp);
    snprintf(cmd, sizeof(cmd), "'%s' cluster --in '%s' --model none --out '%s' --quiet", g_cli,
             path, out);
    CHECK(system(cmd) == 0, "CLI failed: %s", cmd);
    size_t cn;
    char *cli = read_file(out, &cn);
    snprintf(url, sizeof(url), "/v1/jobs/%s/result?format=npy", id);
    GET(port, url, &r);
    CHECK(r.status == 200 && cli != NULL && r.len == cn && memcmp(r.body, cli, cn) == 0,
          "labels of a body read into a reused buffer differ from the CLI's");
    hfree(&r);
    free(cli);
    free(a);
    free(b);
    free(xa);
    free(xb);
}

static void case_json_wait_idempotency(int port)
{
    static const char body[] = "{\"embeddings\": [[1,0],[0.9,0.1],[0,1],[0.1,0.9]], "
                               "\"ids\": [\"a\",\"b\",\"c\",\"d\"], \"labels\": [0,0,1,1]}";
    const char *wait[] = {"Prefer: wait=20", NULL};
    hresp r;
    char v[256];
    http(port, "POST", "/v1/cluster", "application/json", body, strlen(body), wait, 0, &r);
    CHECK(
        r.status == 200 && header(&r, "Preference-Applied", v, sizeof(v)) &&
            strcmp(v, "wait=20") == 0 && json_array_size(json_object_get(r.json, "labels")) == 4 &&
            json_is_number(json_object_get(json_object_get(r.json, "metrics"), "nmi")) &&
            strcmp(json_string_value(json_array_get(json_object_get(r.json, "ids"), 2)), "c") == 0,
        "Prefer: wait %ld %.300s", r.status, r.body);
    hfree(&r);
    /* Idempotency-Key: same body -> same job; another body -> 422. */
    static const char b1[] = "{\"embeddings\": [[1,2],[2,1],[3,3]]}";
    static const char b2[] = "{\"embeddings\": [[1,2],[2,1],[3,4]]}";
    const char *key[] = {"Idempotency-Key: idem-it-1", NULL};
    http(port, "POST", "/v1/cluster", "application/json", b1, strlen(b1), key, 0, &r);
    char id[64];
    snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));
    CHECK(r.status == 202, "idem first %ld", r.status);
    hfree(&r);
    http(port, "POST", "/v1/cluster", "application/json", b1, strlen(b1), key, 0, &r);
    CHECK((r.status == 200 || r.status == 202) && strcmp(jstr(r.json, "id"), id) == 0,
          "idem replay %ld %.200s", r.status, r.body);
    hfree(&r);
    http(port, "POST", "/v1/cluster", "application/json", b2, strlen(b2), key, 0, &r);
    CHECK_PROBLEM(&r, 422, "idempotency-key-reused");
    hfree(&r);
}

static void case_errors(int port)
{
    static const struct {
        const char *ctype, *query, *body;
        long status;
        const char *suffix;
    } cases[] = {
        {"application/json", "", "{\"embeddings\": [[1,2]", 400, "malformed-body"},
        {"application/json", "", "{\"ids\": []}", 400, "malformed-body"},
        {"application/json", "", "{\"embeddings\": [[1,2],[3]]}", 422, "invalid-embeddings"},
        {"application/json", "", "{\"embeddings\": [[1,2],[3,1e39]]}", 422, "non-finite-value"},
        {"application/json", "", "{\"embeddings\": [[1,2]]}", 422, "size-out-of-range"},
        {"application/json", "", "{\"embeddings\": [[1,2],[3,4]], \"params\": {\"k\": 0}}", 422,
         "invalid-parameter"},
        {"application/json", "", "{\"embeddings\": [[1,2],[3,4]], \"model\": \"zz\"}", 422,
         "unknown-model"},
        {"application/x-npy", "", "garbage", 400, "invalid-npy"},
        {"application/octet-stream", "", "12345678", 400, "invalid-raw"},
        {"application/octet-stream", "?dim=3", "12345678", 400, "invalid-raw"},
        {"application/octet-stream", "?dim=2&tau=x", "12345678", 422, "invalid-parameter"},
        {"text/csv", "", "1,2\n3,4\n", 415, "unsupported-media-type"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/cluster%s", cases[i].query);
        hresp r;
        http(port, "POST", path, cases[i].ctype, cases[i].body, strlen(cases[i].body), NULL, 0, &r);
        CHECK(is_problem(&r, cases[i].status, cases[i].suffix), "case %zu (%s): got %ld %.200s", i,
              cases[i].body, r.status, r.body != NULL ? r.body : "");
        hfree(&r);
    }
    /* Too large a dimension: 413 size-out-of-range (this server allows 64). */
    float *x = rand_f32(2, 100, 1);
    hresp r;
    http(port, "POST", "/v1/cluster?dim=100", "application/octet-stream", x, 800, NULL, 0, &r);
    CHECK_PROBLEM(&r, 413, "size-out-of-range");
    hfree(&r);
    free(x);
    /* Over --max-body-bytes (4 MiB): from Content-Length, and while a chunked body streams. */
    size_t big = 5u << 20;
    char *blob = calloc(1, big);
    /* With 100-continue the 413 comes before any body byte is sent (as curl does by default
     * for large bodies); without it the client may see the early close before the answer. */
    const char *expect[] = {"Expect: 100-continue", NULL};
    http(port, "POST", "/v1/cluster?dim=4", "application/octet-stream", blob, big, expect, 0, &r);
    CHECK_PROBLEM(&r, 413, "body-too-large");
    hfree(&r);
    http(port, "POST", "/v1/cluster?dim=4", "application/octet-stream", blob, big, NULL, 1, &r);
    CHECK_PROBLEM(&r, 413, "body-too-large");
    hfree(&r);
    free(blob);
    CHECK(GET(port, "/readyz", &r) == 200, "still ready after errors");
    hfree(&r);
    /* Requests are counted when MHD reports them complete, just after the answer is sent. */
    const char *series = "hilander_http_requests_total{route=\"/v1/cluster\",method=\"POST\","
                         "code=\"413\"}";
    double t0 = now();
    while (metric(port, series) != 3 && now() - t0 < 5)
        sleep_ms(20);
    CHECK(metric(port, series) == 3, "413s counted: %g", metric(port, series)); /* dim + 2 bodies */
}

/* One worker, queue of one: running/queued/full, cancel both, Prefer: wait timing out. */
static void case_queue_and_cancel(int port)
{
    size_t n = 40000, d = 64;
    float *slow = rand_f32(n, d, 11), *other = rand_f32(n, d, 12), *third = rand_f32(n, d, 13);
    size_t bytes = n * d * 4;
    hresp r;
    char got[32], v[256], url[160];
    http(port, "POST", "/v1/cluster?dim=64", "application/octet-stream", slow, bytes, NULL, 0, &r);
    char a[64];
    snprintf(a, sizeof(a), "%s", jstr(r.json, "id"));
    CHECK(r.status == 202, "slow job %ld", r.status);
    hfree(&r);
    CHECK(wait_status(port, a, "running", 30, got) == 0, "slow job is %s", got);
    snprintf(url, sizeof(url), "/v1/jobs/%s/result", a);
    GET(port, url, &r);
    CHECK_PROBLEM(&r, 409, "job-not-finished");
    hfree(&r);
    sleep_ms(300);
    snprintf(url, sizeof(url), "/v1/jobs/%s", a);
    GET(port, url, &r);
    json_t *pg = json_object_get(r.json, "progress");
    const char *stage = jstr(pg, "stage");
    CHECK(strcmp(stage, "knn") == 0 || strcmp(stage, "gnn") == 0 || strcmp(stage, "decode") == 0,
          "progress stage '%s'", stage);
    CHECK(json_is_number(json_object_get(pg, "fraction")), "fraction");
    hfree(&r);
    /* Prefer: wait=1 on a job that cannot start: 202 after about a second. */
    const char *wait1[] = {"Prefer: wait=1", NULL};
    double t0 = now();
    http(port, "POST", "/v1/cluster?dim=64", "application/octet-stream", other, bytes, wait1, 0,
         &r);
    double waited = now() - t0;
    CHECK(r.status == 202 && waited >= 0.9 &&
              header(&r, "Preference-Applied", v, sizeof(v)) == NULL,
          "wait timeout: %ld after %.2f s", r.status, waited);
    char b[64];
    snprintf(b, sizeof(b), "%s", jstr(r.json, "id"));
    hfree(&r);
    http(port, "POST", "/v1/cluster?dim=64", "application/octet-stream", third, bytes, NULL, 0, &r);
    CHECK_PROBLEM(&r, 429, "queue-full");
    CHECK(header(&r, "Retry-After", v, sizeof(v)) != NULL, "429 Retry-After");
    hfree(&r);
    snprintf(url, sizeof(url), "/v1/jobs/%s", b);
    http(port, "DELETE", url, NULL, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && strcmp(jstr(r.json, "status"), "canceled") == 0,
          "cancel queued %ld %.200s", r.status, r.body);
    hfree(&r);
    snprintf(url, sizeof(url), "/v1/jobs/%s", a);
    http(port, "DELETE", url, NULL, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 202, "cancel running %ld", r.status);
    hfree(&r);
    CHECK(wait_status(port, a, "canceled,succeeded", 60, got) == 0 && strcmp(got, "canceled") == 0,
          "running job ended %s", got);
    static const char small[] = "{\"embeddings\": [[1,2],[2,1],[5,5]]}";
    const char *wait[] = {"Prefer: wait=30", NULL};
    http(port, "POST", "/v1/cluster", "application/json", small, strlen(small), wait, 0, &r);
    CHECK(r.status == 200, "worker free again: %ld", r.status);
    hfree(&r);
    free(slow);
    free(other);
    free(third);
}

typedef struct bg_post {
    int port;
    const void *body;
    size_t len;
    hresp r;
} bg_post;

static void *bg_main(void *arg)
{
    bg_post *p = arg;
    const char *wait[] = {"Prefer: wait=60", NULL};
    http(p->port, "POST", "/v1/cluster?dim=64", "application/octet-stream", p->body, p->len, wait,
         0, &p->r);
    return NULL;
}

/* SIGTERM: readyz 503 at once, submissions 503, the in-flight request completes, exit 0. */
static void case_drain(server *s)
{
    size_t n = 12000, d = 64;
    float *x = rand_f32(n, d, 21);
    bg_post p = {s->port, x, n * d * 4, {0}};
    pthread_t t;
    pthread_create(&t, NULL, bg_main, &p);
    /* Wait until the job is running (its id is only known from the job list: poll metrics). */
    for (double t0 = now(); now() - t0 < 30 && metric(s->port, "hilander_jobs_running") < 1;)
        sleep_ms(10);
    CHECK(metric(s->port, "hilander_jobs_running") == 1, "job not running before SIGTERM");
    kill(s->pid, SIGTERM);
    /* The signal reaches the loop thread asynchronously: on a loaded machine that can take
     * longer than a fixed sleep, so poll (bounded) until readyz turns. */
    hresp r;
    GET(s->port, "/readyz", &r);
    for (double t0 = now(); r.status == 200 && now() - t0 < 10;) {
        hfree(&r);
        sleep_ms(20);
        GET(s->port, "/readyz", &r);
    }
    CHECK_PROBLEM(&r, 503, "unavailable");
    hfree(&r);
    static const char small[] = "{\"embeddings\": [[1,2],[2,1]]}";
    http(s->port, "POST", "/v1/cluster", "application/json", small, strlen(small), NULL, 0, &r);
    CHECK_PROBLEM(&r, 503, "unavailable");
    hfree(&r);
    pthread_join(t, NULL);
    CHECK(p.r.status == 200 && json_array_size(json_object_get(p.r.json, "labels")) == n,
          "in-flight request: %ld", p.r.status);
    hfree(&p.r);
    int st = -1;
    pid_t w = 0;
    for (double t0 = now(); now() - t0 < 60 && (w = waitpid(s->pid, &st, WNOHANG)) == 0;)
        sleep_ms(20);
    CHECK(w == s->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    for (int i = 0; i < g_npids; i++)
        if (g_pids[i] == s->pid && w == s->pid)
            g_pids[i] = 0;
    CHECK(GET(s->port, "/livez", &r) == -1, "still accepting after shutdown");
    hfree(&r);
    free(x);
}

static void stop(server *s);
static void check_log(const server *s);

/* A free loopback port (bound, read, released). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* With --redis: the same results through Redis, then 503s once Redis is gone. Skipped (and
 * said so) when redis-server is not installed. */
static void case_redis(const char *models)
{
    const char *redis = "/usr/bin/redis-server";
    if (access(redis, X_OK) != 0) {
        printf("redis case skipped: %s is not installed\n", redis);
        return;
    }
    int rport = free_port();
    char port_s[16], url[64];
    snprintf(port_s, sizeof(port_s), "%d", rport);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", rport);
    pid_t rp = fork();
    if (rp == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execl(redis, redis, "--port", port_s, "--bind", "127.0.0.1", "--save", "", "--appendonly",
              "no", (char *)NULL);
        _exit(127);
    }
    if (g_npids < (int)(sizeof(g_pids) / sizeof(g_pids[0])))
        g_pids[g_npids++] = rp;
    server s;
    const char *args[] = {"--model-dir", models, "--default-model", "none",
                          "--redis",     url,    "--drain-seconds", "0",
                          NULL};
    int up = -1;
    for (double t0 = now(); up != 0 && now() - t0 < 10; sleep_ms(100))
        up = start(&s, "redis", args, NULL); /* redis-server may take a moment to listen */
    CHECK(up == 0, "hilanderd --redis did not start");
    if (up != 0)
        return;
    hresp r;
    CHECK(GET(s.port, "/readyz", &r) == 200 && strcmp(jstr(r.json, "store"), "redis") == 0,
          "readyz with redis: %.200s", r.body);
    hfree(&r);
    char path[512], cli[512];
    snprintf(path, sizeof(path), "%s/tests/cli/data/blobs.features.npy", g_root);
    snprintf(cli, sizeof(cli), "%s/cli.npy", g_tmp); /* written by case_cluster_flow */
    size_t n, cn;
    void *npy = read_file(path, &n);
    char *want = read_file(cli, &cn);
    const char *wait[] = {"Prefer: wait=30", NULL};
    http(s.port, "POST", "/v1/cluster", "application/x-npy", npy, n, wait, 0, &r);
    char id[64], u[160];
    snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));
    CHECK(r.status == 200, "redis submit %ld", r.status);
    hfree(&r);
    snprintf(u, sizeof(u), "/v1/jobs/%s/result?format=npy", id);
    GET(s.port, u, &r);
    CHECK(r.status == 200 && want != NULL && r.len == cn && memcmp(r.body, want, cn) == 0,
          "redis result differs from the CLI's");
    hfree(&r);
    http(s.port, "POST", "/v1/cluster", "application/x-npy", npy, n, NULL, 0, &r);
    CHECK(r.status == 202 && json_is_true(json_object_get(r.json, "cached")), "redis cache");
    hfree(&r);
    for (int i = 0; i < g_npids; i++)
        if (g_pids[i] == rp)
            g_pids[i] = 0;
    kill(rp, SIGKILL);
    waitpid(rp, NULL, 0);
    GET(s.port, "/readyz", &r);
    CHECK_PROBLEM(&r, 503, "unavailable");
    hfree(&r);
    http(s.port, "POST", "/v1/cluster", "application/x-npy", npy, n, NULL, 0, &r);
    CHECK_PROBLEM(&r, 503, "unavailable");
    hfree(&r);
    snprintf(u, sizeof(u), "/v1/jobs/%s", id);
    GET(s.port, u, &r);
    CHECK_PROBLEM(&r, 503, "unavailable");
    hfree(&r);
    free(npy);
    free(want);
    stop(&s);
    check_log(&s);
}

/* SIGTERM, then the exit status must be 0 (under sanitizers: no leak, no report). */
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
}

/* No sanitizer report and no error-level line in a server's log. */
static void check_log(const server *s)
{
    size_t n;
    char *text = read_file(s->log, &n);
    CHECK(text != NULL, "no log %s", s->log);
    if (text == NULL)
        return;
    CHECK(strstr(text, "Sanitizer") == NULL && strstr(text, "runtime error") == NULL,
          "sanitizer report in %s", s->log);
    CHECK(strstr(text, "\"level\":\"error\"") == NULL, "error line in %s", s->log);
    free(text);
}

static void run_cases(void)
{
    char models[400], from[512], to[512];
    snprintf(models, sizeof(models), "%s/models", g_tmp);
    mkdir(models, 0700);
    snprintf(from, sizeof(from), "%s/tests/golden/lander/a_level0/model.hlm", g_root);
    snprintf(to, sizeof(to), "%s/lander8.hlm", models);
    copy_file(from, to);
    snprintf(from, sizeof(from), "%s/tests/proto/cases/valid/model_universal_python/input.hlm",
             g_root);
    snprintf(to, sizeof(to), "%s/universal.hlm", models);
    copy_file(from, to);
    case_start_failures();
    server a;
    const char *main_args[] = {
        "--model-dir", models, "--default-model", "none", "--max-body-bytes", "4M",
        "--max-dim",   "64",   "--workers",       "2",    "--drain-seconds",  "0",
        NULL};
    if (start(&a, "main", main_args, NULL) != 0) {
        CHECK(0, "hilanderd did not start");
        return;
    }
    case_basics(a.port);
    case_cluster_flow(a.port);
    case_body_pool(a.port);
    case_json_wait_idempotency(a.port);
    case_errors(a.port);
    stop(&a);
    check_log(&a);
    server b;
    const char *one[] = {"--model-dir",
                         models,
                         "--default-model",
                         "none",
                         "--workers",
                         "1",
                         "--queue-capacity",
                         "1",
                         "--engine-threads",
                         "1",
                         "--drain-seconds",
                         "0",
                         NULL};
    if (start(&b, "single", one, NULL) == 0) {
        case_queue_and_cancel(b.port);
        stop(&b);
        check_log(&b);
    } else
        CHECK(0, "hilanderd (one worker) did not start");
    case_redis(models);
    server c;
    const char *drain[] = {"--model-dir", models, "--default-model", "none",
                           "--workers",   "1",    "--drain-seconds", "1",
                           NULL};
    if (start(&c, "drain", drain, NULL) == 0) {
        case_drain(&c);
        check_log(&c);
    } else
        CHECK(0, "hilanderd (drain) did not start");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_service HILANDERD HILANDER PROJECT_DIR\n");
        return 2;
    }
    g_daemon = argv[1];
    g_cli = argv[2];
    g_root = argv[3];
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/hltest.service.XXXXXX");
    if (mkdtemp(g_tmp) == NULL)
        return 2;
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
