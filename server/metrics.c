/* metrics.c - lock-free Prometheus series; see metrics.h. */
#include "metrics.h"

#include "bodies.h"

#include "buf.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int codes[] = {200, 202, 204, 400, 401, 404, 405, 409,
                            413, 415, 422, 429, 500, 503, 504, 0};
#define N_CODES (sizeof(codes) / sizeof(codes[0])) /* the last slot counts other codes */

static const double req_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,     2.5,  5,     10,   30,  60};
#define N_REQ_B (sizeof(req_buckets) / sizeof(req_buckets[0]))
static const double job_buckets[] = {0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800};
#define N_JOB_B (sizeof(job_buckets) / sizeof(job_buckets[0]))

#define MAX_ROUTES 16 /* the route table plus "unmatched" */

static const char *stage_names[SRV_STAGE_COUNT_] = {"queued", "parse",  "knn",
                                                    "gnn",    "decode", "store"};
static const char *op_names[SRV_OP_COUNT_] = {
    "job_create",    "job_get",   "job_update", "job_delete", "result_put", "result_get",
    "result_delete", "cache_get", "cache_put",  "idem_claim", "ping"};
static const char *end_names[] = {"queued", "running", "succeeded", "failed", "canceled"};

typedef struct hist {
    atomic_uint_fast64_t b[16]; /* cumulative counts are computed when rendering */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
} hist;

struct srv_metrics {
    atomic_uint_fast64_t req[MAX_ROUTES][SRV_M_COUNT_][N_CODES];
    hist req_dur[MAX_ROUTES];
    atomic_uint_fast64_t jobs[5];
    hist stage[SRV_STAGE_COUNT_];
    atomic_uint_fast64_t points, cache_hits, cache_misses, computed;
    atomic_uint_fast64_t state_hits, state_misses, state_writes[2]; /* [0] delta, [1] base */
    atomic_uint_fast64_t store_err[SRV_OP_COUNT_];
    atomic_int running;
};

const char *srv_stage_name(srv_stage s)
{
    return (unsigned)s < SRV_STAGE_COUNT_ ? stage_names[s] : "unknown";
}

hl_status srv_metrics_new(srv_metrics **out)
{
    srv_metrics *m = calloc(1, sizeof(*m)); /* all-zero atomics are valid zeros */
    if (m == NULL)
        return HL_NOMEM;
    *out = m;
    return HL_OK;
}

void srv_metrics_free(srv_metrics *m)
{
    free(m);
}

static void observe(hist *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    atomic_fetch_add(&h->b[i], 1); /* i == nb is the +Inf bucket */
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint_fast64_t)(v > 0 ? v * 1e6 : 0));
}

void srv_metrics_request(srv_metrics *m, size_t route_idx, srv_method method, int code,
                         double seconds)
{
    size_t n_routes;
    srv_routes(&n_routes);
    size_t r = route_idx <= n_routes && route_idx < MAX_ROUTES ? route_idx : MAX_ROUTES - 1;
    size_t c = 0;
    while (c + 1 < N_CODES && codes[c] != code)
        c++;
    atomic_fetch_add(&m->req[r][(unsigned)method < SRV_M_COUNT_ ? method : SRV_M_OTHER][c], 1);
    observe(&m->req_dur[r], req_buckets, N_REQ_B, seconds);
}

void srv_metrics_job_end(srv_metrics *m, int status)
{
    if (status >= 0 && status < 5)
        atomic_fetch_add(&m->jobs[status], 1);
}

void srv_metrics_stage(srv_metrics *m, srv_stage s, double seconds)
{
    if ((unsigned)s < SRV_STAGE_COUNT_)
        observe(&m->stage[s], job_buckets, N_JOB_B, seconds);
}

void srv_metrics_points(srv_metrics *m, uint64_t n)
{
    atomic_fetch_add(&m->points, n);
}

void srv_metrics_cache(srv_metrics *m, int hit)
{
    atomic_fetch_add(hit ? &m->cache_hits : &m->cache_misses, 1);
}

void srv_metrics_state_cache(srv_metrics *m, int hit)
{
    atomic_fetch_add(hit ? &m->state_hits : &m->state_misses, 1);
}

void srv_metrics_state_write(srv_metrics *m, int base)
{
    atomic_fetch_add(&m->state_writes[base ? 1 : 0], 1);
}

uint64_t srv_metrics_state_cache_hits(srv_metrics *m)
{
    return atomic_load(&m->state_hits);
}

void srv_metrics_store_result(srv_metrics *m, srv_store_op op, hl_status st)
{
    if (st == HL_OK || st == HL_NOTFOUND || st == HL_BUSY || (unsigned)op >= SRV_OP_COUNT_)
        return;
    atomic_fetch_add(&m->store_err[op], 1);
}

void srv_metrics_running(srv_metrics *m, int delta)
{
    atomic_fetch_add(&m->running, delta);
}

uint64_t srv_metrics_cache_hits(srv_metrics *m)
{
    return atomic_load(&m->cache_hits);
}

void srv_metrics_computed(srv_metrics *m)
{
    atomic_fetch_add(&m->computed, 1);
}

uint64_t srv_metrics_jobs_computed(srv_metrics *m)
{
    return atomic_load(&m->computed);
}

/* `labels` is the series' label set without braces, e.g. route="/livez",method="GET". */
static void render_hist(srv_buf *b, const char *name, const char *labels, const hist *h,
                        const double *bounds, size_t nb)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += atomic_load(&h->b[i]);
        if (i < nb)
            srv_buf_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bounds[i],
                           (unsigned long long)cum);
        else
            srv_buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
                           (unsigned long long)cum);
    }
    srv_buf_printf(b, "%s_sum{%s} %.6f\n", name, labels, (double)atomic_load(&h->sum_us) * 1e-6);
    srv_buf_printf(b, "%s_count{%s} %llu\n", name, labels,
                   (unsigned long long)atomic_load(&h->count));
}

static void render_requests(srv_metrics *m, srv_buf *b)
{
    size_t n_routes;
    const srv_route *rt = srv_routes(&n_routes);
    srv_buf_puts(b, "# HELP hilander_http_requests_total HTTP requests answered.\n"
                    "# TYPE hilander_http_requests_total counter\n");
    for (size_t r = 0; r <= n_routes && r < MAX_ROUTES; r++) {
        const char *route = r < n_routes ? rt[r].pattern : "unmatched";
        for (int me = 0; me < (int)SRV_M_COUNT_; me++) {
            for (size_t c = 0; c < N_CODES; c++) {
                uint64_t v = atomic_load(&m->req[r][me][c]);
                if (v == 0)
                    continue;
                char code[8] = "other";
                if (codes[c] != 0)
                    snprintf(code, sizeof(code), "%d", codes[c]);
                srv_buf_printf(b,
                               "hilander_http_requests_total{route=\"%s\",method=\"%s\","
                               "code=\"%s\"} %llu\n",
                               route, srv_method_name((srv_method)me), code, (unsigned long long)v);
            }
        }
    }
    srv_buf_puts(b, "# HELP hilander_http_request_duration_seconds Time to answer a request.\n"
                    "# TYPE hilander_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= n_routes && r < MAX_ROUTES; r++) {
        /* Two routes share a path (GET and DELETE /v1/jobs/{id}): the method keeps the
         * series distinct. Unmatched requests have no single method. */
        char labels[160];
        snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\"",
                 r < n_routes ? rt[r].pattern : "unmatched",
                 r < n_routes ? srv_method_name(rt[r].method) : "any");
        render_hist(b, "hilander_http_request_duration_seconds", labels, &m->req_dur[r],
                    req_buckets, N_REQ_B);
    }
}

char *srv_metrics_render(srv_metrics *m, size_t queue_len, const srv_bodies_stats *bodies,
                         size_t *len)
{
    srv_buf b;
    srv_buf_init(&b, 16384);
    render_requests(m, &b);
    srv_buf_puts(&b, "# HELP hilander_jobs_total Jobs that reached a terminal state.\n"
                     "# TYPE hilander_jobs_total counter\n");
    for (int s = 2; s < 5; s++)
        srv_buf_printf(&b, "hilander_jobs_total{status=\"%s\"} %llu\n", end_names[s],
                       (unsigned long long)atomic_load(&m->jobs[s]));
    srv_buf_printf(&b,
                   "# HELP hilander_jobs_in_queue Jobs waiting for a worker.\n"
                   "# TYPE hilander_jobs_in_queue gauge\nhilander_jobs_in_queue %zu\n"
                   "# HELP hilander_jobs_running Jobs a worker is running.\n"
                   "# TYPE hilander_jobs_running gauge\nhilander_jobs_running %d\n",
                   queue_len, atomic_load(&m->running));
    srv_buf_puts(&b, "# HELP hilander_job_duration_seconds Time jobs spend in each stage.\n"
                     "# TYPE hilander_job_duration_seconds histogram\n");
    for (int s = 0; s < (int)SRV_STAGE_COUNT_; s++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "stage=\"%s\"", stage_names[s]);
        render_hist(&b, "hilander_job_duration_seconds", labels, &m->stage[s], job_buckets,
                    N_JOB_B);
    }
    srv_buf_printf(&b,
                   "# HELP hilander_points_clustered_total Points clustered by the engine.\n"
                   "# TYPE hilander_points_clustered_total counter\n"
                   "hilander_points_clustered_total %llu\n"
                   "# HELP hilander_cache_hits_total Submissions answered from the cache.\n"
                   "# TYPE hilander_cache_hits_total counter\nhilander_cache_hits_total %llu\n"
                   "# HELP hilander_cache_misses_total Submissions that had to be computed.\n"
                   "# TYPE hilander_cache_misses_total counter\n"
                   "hilander_cache_misses_total %llu\n",
                   (unsigned long long)atomic_load(&m->points),
                   (unsigned long long)atomic_load(&m->cache_hits),
                   (unsigned long long)atomic_load(&m->cache_misses));
    srv_buf_printf(&b,
                   "# HELP hilander_state_cache_hits_total Assigns that reused this replica's "
                   "decoded clustering state.\n"
                   "# TYPE hilander_state_cache_hits_total counter\n"
                   "hilander_state_cache_hits_total %llu\n"
                   "# HELP hilander_state_cache_misses_total Assigns that rebuilt the clustering "
                   "state from the store.\n"
                   "# TYPE hilander_state_cache_misses_total counter\n"
                   "hilander_state_cache_misses_total %llu\n"
                   "# HELP hilander_state_writes_total Clustering state versions written, as a "
                   "delta or as a new base (compaction).\n"
                   "# TYPE hilander_state_writes_total counter\n"
                   "hilander_state_writes_total{kind=\"delta\"} %llu\n"
                   "hilander_state_writes_total{kind=\"base\"} %llu\n",
                   (unsigned long long)atomic_load(&m->state_hits),
                   (unsigned long long)atomic_load(&m->state_misses),
                   (unsigned long long)atomic_load(&m->state_writes[0]),
                   (unsigned long long)atomic_load(&m->state_writes[1]));
    if (bodies != NULL)
        srv_buf_printf(&b,
                       "# HELP hilander_body_pool_bytes Request-body buffers kept for reuse.\n"
                       "# TYPE hilander_body_pool_bytes gauge\nhilander_body_pool_bytes %zu\n"
                       "# HELP hilander_body_buffers_total Large request-body buffers handed "
                       "out, reused from the pool or newly allocated.\n"
                       "# TYPE hilander_body_buffers_total counter\n"
                       "hilander_body_buffers_total{source=\"pool\"} %llu\n"
                       "hilander_body_buffers_total{source=\"new\"} %llu\n",
                       bodies->bytes, bodies->reused, bodies->fresh);
    srv_buf_puts(&b, "# HELP hilander_store_errors_total Store operations that failed.\n"
                     "# TYPE hilander_store_errors_total counter\n");
    for (int o = 0; o < (int)SRV_OP_COUNT_; o++)
        srv_buf_printf(&b, "hilander_store_errors_total{op=\"%s\"} %llu\n", op_names[o],
                       (unsigned long long)atomic_load(&m->store_err[o]));
    srv_buf_printf(&b,
                   "# HELP hilander_build_info Build information.\n"
                   "# TYPE hilander_build_info gauge\nhilander_build_info{version=\"%s\"} 1\n",
                   HILANDER_VERSION);
    return srv_buf_take(&b, len);
}
