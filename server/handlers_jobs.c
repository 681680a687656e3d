/*
 * handlers_jobs.c - GET /v1/jobs/{id}, DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/result.
 *
 * The store record is the truth for a job's state; results are decoded from their compact
 * binary form (result.h) and rendered as JSON (paged) or .npy per request.
 */
#include "buf.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "result.h"
#include "server.h"
#include "state_cache.h"

#include "hl/npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PAGE 100000
#define MAX_PAGE     10000000

static const char *rec(const srv_record *r, const char *name, const char *def)
{
    const char *v = srv_record_get(r, name);
    return v != NULL && v[0] != '\0' ? v : def;
}

/* A raw JSON token from a record field (numbers, objects), or `def`. */
static void put_raw(srv_buf *b, const srv_record *r, const char *name, const char *def)
{
    srv_buf_puts(b, rec(r, name, def));
}

char *srv_job_render(const srv_ctx *ctx, const char *id, const srv_record *r, size_t *len)
{
    (void)ctx;
    srv_buf b;
    srv_buf_init(&b, 1024);
    srv_buf_puts(&b, "{\"id\":");
    srv_buf_json_str(&b, id);
    srv_buf_puts(&b, ",\"status\":");
    srv_buf_json_str(&b, rec(r, "status", "queued"));
    srv_buf_printf(&b, ",\"cached\":%s",
                   strcmp(rec(r, "cached", "0"), "1") == 0 ? "true" : "false");
    static const char *times[] = {"created_at", "started_at", "finished_at"};
    for (int i = 0; i < 3; i++) {
        srv_buf_printf(&b, ",\"%s\":", times[i]);
        srv_buf_json_str(&b, rec(r, times[i], NULL));
    }
    srv_buf_puts(&b, ",\"progress\":{\"stage\":");
    srv_buf_json_str(&b, rec(r, "stage", "queued"));
    srv_buf_puts(&b, ",\"level\":");
    put_raw(&b, r, "level", "0");
    srv_buf_puts(&b, ",\"fraction\":");
    put_raw(&b, r, "fraction", "0");
    srv_buf_puts(&b, "},\"n\":");
    put_raw(&b, r, "n", "0");
    srv_buf_puts(&b, ",\"dim\":");
    put_raw(&b, r, "dim", "0");
    srv_buf_puts(&b, ",\"model\":");
    srv_buf_json_str(&b, rec(r, "model", NULL));
    srv_buf_puts(&b, ",\"params\":");
    put_raw(&b, r, "params", "{}");
    srv_buf_puts(&b, ",\"attempts\":");
    put_raw(&b, r, "attempts", "0");
    srv_buf_puts(&b, ",\"replica\":");
    srv_buf_json_str(&b, rec(r, "replica", NULL));
    srv_buf_puts(&b, ",\"error\":");
    put_raw(&b, r, "error", "null");
    /* Assign jobs name their clustering; cluster jobs show their state for assigns. */
    int assign = strcmp(rec(r, "kind", "cluster"), "assign") == 0;
    srv_buf_printf(&b, ",\"kind\":\"%s\"", assign ? "assign" : "cluster");
    if (assign) {
        srv_buf_puts(&b, ",\"clustering\":");
        srv_buf_json_str(&b, rec(r, "clustering", NULL));
    } else if (srv_record_get(r, "state_version") != NULL) {
        srv_buf_puts(&b, ",\"state\":{\"version\":");
        put_raw(&b, r, "state_version", "0");
        srv_buf_puts(&b, ",\"n\":");
        put_raw(&b, r, "state_n", "0");
        srv_buf_puts(&b, "}");
    } else {
        srv_buf_puts(&b, ",\"state\":null");
    }
    srv_buf_puts(&b, ",\"links\":{\"self\":\"/v1/jobs/");
    srv_buf_puts(&b, id);
    srv_buf_puts(&b, "\",\"result\":\"/v1/jobs/");
    srv_buf_puts(&b, id);
    srv_buf_puts(&b, "/result\"}}");
    return srv_buf_take(&b, len);
}

/* Reads a job record, answering 404/503 itself when it cannot. */
static hl_status load_record(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const char *id,
                             srv_record *r)
{
    hl_status st = ctx->store->ops->job_get(ctx->store, id, r);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_GET, st);
    if (st == HL_NOTFOUND)
        srv_resp_problem(resp, req, SRV_P_JOB_NOT_FOUND, NULL, "no job '%s'", id);
    else if (st != HL_OK)
        srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                         hl_status_str(st));
    return st;
}

hl_status srv_resp_job(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const char *id, int status)
{
    srv_record r;
    if (load_record(ctx, req, resp, id, &r) != HL_OK)
        return HL_OK;
    size_t len;
    char *body = srv_job_render(ctx, id, &r, &len);
    int st = srv_job_status_parse(srv_record_get(&r, "status"));
    srv_record_free(&r);
    if (srv_resp_json(resp, status, body, len) != HL_OK)
        return HL_NOMEM;
    if (status == 202)
        srv_resp_header(resp, "Location", "/v1/jobs/%s", id);
    if (status == 202 || (st >= 0 && !srv_job_status_terminal((srv_job_status)st)))
        srv_resp_header(resp, "Retry-After", "1");
    return HL_OK;
}

hl_status srv_h_job_get(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    return srv_resp_job(ctx, req, resp, req->param, 200);
}

/* Redis mode: a queued job is canceled in the store (whichever replica claims its entry
 * then just acknowledges it); a running one gets cancel_requested, which its replica's
 * cancel hook reads. Returns 1 when it answered. */
static int cancel_in_store(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const char *id, int st)
{
    srv_store *s = ctx->store;
    if (st == SRV_JOB_QUEUED) {
        char ts[32];
        srv_now_rfc3339(ts);
        srv_field f[2] = {{"finished_at", ts}, {"error", ""}};
        hl_status cs =
            srv_job_transition(s, id, NULL, "queued", SRV_JOB_CANCELED, f, 2, ctx->cfg->result_ttl);
        srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, cs);
        if (cs == HL_OK) {
            srv_metrics_job_end(ctx->metrics, SRV_JOB_CANCELED);
            s->ops->input_delete(s, id);
            if (ctx->job_done != NULL)
                ctx->job_done(ctx, id);
            srv_resp_job(ctx, req, resp, id, 200);
            return 1;
        }
        if (cs != HL_BUSY) { /* HL_BUSY: it started meanwhile; cancel it as running */
            srv_resp_problem(resp, req, srv_problem_for_status(cs), NULL, "the store failed: %s",
                             hl_status_str(cs));
            return 1;
        }
    }
    srv_field f[1] = {{"cancel_requested", "1"}};
    hl_status us = s->ops->job_update(s, id, f, 1, "running", 0);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, us);
    if (us == HL_BUSY) /* it ended meanwhile: show how */
        return srv_resp_job(ctx, req, resp, id, 200) == HL_OK;
    if (us != HL_OK) {
        srv_resp_problem(resp, req, srv_problem_for_status(us), NULL, "the store failed: %s",
                         hl_status_str(us));
        return 1;
    }
    srv_job *j = srv_jobs_find(ctx->jobs, id); /* running here: no need to wait for the poll */
    if (j != NULL) {
        int none = SRV_STOP_NONE;
        atomic_compare_exchange_strong(&j->cancel, &none, SRV_STOP_CANCEL);
        srv_job_release(j);
    }
    srv_resp_job(ctx, req, resp, id, 202);
    return 1;
}

hl_status srv_h_job_delete(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    const char *id = req->param;
    srv_record r;
    if (load_record(ctx, req, resp, id, &r) != HL_OK)
        return HL_OK;
    int st = srv_job_status_parse(srv_record_get(&r, "status"));
    srv_record_free(&r);
    if (ctx->use_stream && (st == SRV_JOB_QUEUED || st == SRV_JOB_RUNNING) &&
        cancel_in_store(ctx, req, resp, id, st))
        return HL_OK;
    srv_job *j = srv_jobs_find(ctx->jobs, id);
    if (st == SRV_JOB_QUEUED && j != NULL && srv_job_cancel_queued(ctx, j, NULL) == HL_OK) {
        srv_job_release(j);
        return srv_resp_job(ctx, req, resp, id, 200);
    }
    if ((st == SRV_JOB_QUEUED || st == SRV_JOB_RUNNING) && j != NULL) {
        /* Running (or just popped): the engine's cancel hook sees this at its next check. */
        atomic_store(&j->cancel, SRV_STOP_CANCEL);
        srv_job_release(j);
        return srv_resp_job(ctx, req, resp, id, 202);
    }
    srv_job_release(j);
    if (st == SRV_JOB_QUEUED || st == SRV_JOB_RUNNING) /* another replica's job */
        return srv_resp_problem(resp, req, SRV_P_JOB_NOT_FINISHED, NULL,
                                "job '%s' runs on another replica", id);
    hl_status ss = ctx->store->ops->state_delete(ctx->store, id); /* a clustering's state */
    srv_state_cache_drop(ctx->state_cache, id);
    srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_DELETE, ss);
    hl_status ds = ctx->store->ops->job_delete(ctx->store, id);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_DELETE, ds);
    hl_status rs = ctx->store->ops->result_delete(ctx->store, id);
    srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_DELETE, rs);
    if (ds == HL_NOTFOUND)
        return srv_resp_problem(resp, req, SRV_P_JOB_NOT_FOUND, NULL, "no job '%s'", id);
    if (ds != HL_OK)
        return srv_resp_problem(resp, req, srv_problem_for_status(ds), NULL, "the store failed: %s",
                                hl_status_str(ds));
    resp->status = 204;
    return HL_OK;
}

/* Parses an unsigned query parameter; returns 0 when absent (keeps *out), 1 when set, -1 bad. */
static int query_size(const srv_req *req, const char *name, size_t max, size_t *out)
{
    const char *v = srv_req_query(req, name);
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || x > max)
        return -1;
    *out = (size_t)x;
    return 1;
}

static void put_ids_page(srv_buf *b, const srv_result *r, size_t off, size_t cnt)
{
    const char *p = r->ids, *end = r->ids + r->ids_bytes;
    for (size_t i = 0; i < off && p < end; i++)
        p += strlen(p) + 1;
    srv_buf_puts(b, ",\"ids\":[");
    for (size_t i = 0; i < cnt && p < end; i++) {
        if (i > 0)
            srv_buf_put(b, ",", 1);
        srv_buf_json_str(b, p);
        p += strlen(p) + 1;
    }
    srv_buf_puts(b, "]");
}

static hl_status put_cluster_sizes(srv_buf *b, const srv_result *r)
{
    int32_t *sizes = calloc(r->n_clusters > 0 ? r->n_clusters : 1, sizeof(int32_t));
    if (sizes == NULL)
        return HL_NOMEM;
    for (size_t i = 0; i < r->n; i++) {
        if (r->labels[i] >= 0 && (size_t)r->labels[i] < r->n_clusters)
            sizes[r->labels[i]]++;
    }
    srv_buf_puts(b, ",\"cluster_sizes\":");
    srv_buf_json_i32s(b, sizes, r->n_clusters);
    free(sizes);
    return HL_OK;
}

/* The JSON result for points [off, off + cnt). */
static char *render_json(const char *id, const srv_result *r, size_t off, size_t cnt, size_t limit,
                         size_t *len)
{
    srv_buf b;
    srv_buf_init(&b, 64 + cnt * 8 * (size_t)(r->n_levels + 1) + r->n_clusters * 6);
    srv_buf_puts(&b, "{\"id\":");
    srv_buf_json_str(&b, id);
    srv_buf_printf(&b,
                   ",\"n\":%zu,\"n_clusters\":%zu,\"offset\":%zu,\"limit\":%zu,\"labels\":", r->n,
                   r->n_clusters, off, limit);
    srv_buf_json_i32s(&b, r->labels + off, cnt);
    srv_buf_puts(&b, ",\"levels\":[");
    for (int l = 0; l < r->n_levels; l++) {
        srv_buf_printf(&b, "%s{\"level\":%d,\"n_clusters\":%d,\"labels\":", l ? "," : "", l,
                       (int)r->level_clusters[l]);
        srv_buf_json_i32s(&b, r->level_labels + (size_t)l * r->n + off, cnt);
        srv_buf_puts(&b, "}");
    }
    srv_buf_puts(&b, "]");
    if (put_cluster_sizes(&b, r) != HL_OK)
        b.oom = 1;
    if (r->ids != NULL)
        put_ids_page(&b, r, off, cnt);
    if (r->has_metrics) {
        static const char *names[7] = {"fp",           "fp_precision", "fp_recall", "fb",
                                       "fb_precision", "fb_recall",    "nmi"};
        srv_buf_puts(&b, ",\"metrics\":{");
        for (int i = 0; i < 7; i++) {
            srv_buf_printf(&b, "%s\"%s\":", i ? "," : "", names[i]);
            srv_buf_json_num(&b, r->metrics[i]);
        }
        srv_buf_puts(&b, "}");
    }
    srv_buf_puts(&b, "}");
    return srv_buf_take(&b, len);
}

/* An assign job's JSON result for points [off, off + cnt). */
static char *render_assign_json(const char *id, const srv_assign_result *r, size_t off, size_t cnt,
                                size_t limit, size_t *len)
{
    srv_buf b;
    srv_buf_init(&b, 256 + cnt * 24);
    srv_buf_puts(&b, "{\"id\":");
    srv_buf_json_str(&b, id);
    srv_buf_puts(&b, ",\"clustering\":");
    srv_buf_json_str(&b, r->clustering);
    srv_buf_printf(&b,
                   ",\"state_version\":%llu,\"n\":%zu,\"n_attached\":%llu,\"n_new_clusters\":"
                   "%llu,\"n_unassigned\":%llu,\"offset\":%zu,\"limit\":%zu,\"labels\":",
                   (unsigned long long)r->version, r->n, (unsigned long long)r->attached,
                   (unsigned long long)r->new_clusters, (unsigned long long)r->unassigned, off,
                   limit);
    srv_buf_json_i32s(&b, r->labels + off, cnt);
    srv_buf_puts(&b, ",\"scores\":[");
    for (size_t i = 0; i < cnt; i++) {
        if (i > 0)
            srv_buf_put(&b, ",", 1);
        srv_buf_printf(&b, "%.6g", (double)r->scores[off + i]);
    }
    srv_buf_puts(&b, "]");
    if (r->ids != NULL) {
        srv_result ids = {.ids = r->ids, .ids_bytes = r->ids_bytes};
        put_ids_page(&b, &ids, off, cnt);
    }
    srv_buf_puts(&b, "}");
    return srv_buf_take(&b, len);
}

/* An assign job's result: JSON paged like the clustering's, or .npy (labels, or scores with
 * ?values=scores). */
static hl_status render_assign(srv_resp *resp, const srv_req *req, const char *id, const void *buf,
                               size_t len, const char *format, size_t off, size_t limit)
{
    srv_assign_result r;
    hl_status st = srv_assign_result_decode(buf, len, &r);
    if (st != HL_OK)
        return st;
    if (format != NULL && strcmp(format, "npy") == 0) {
        const char *values = srv_req_query(req, "values");
        size_t shape[1] = {r.n};
        void *out;
        size_t olen;
        st = values != NULL && strcmp(values, "scores") == 0
                 ? hl_npy_encode_f32(r.scores, 1, shape, &out, &olen)
                 : hl_npy_encode_i32(r.labels, 1, shape, &out, &olen);
        if (st == HL_OK) {
            resp->status = 200;
            resp->content_type = "application/x-npy";
            resp->body = out;
            resp->len = olen;
        }
        return st;
    }
    size_t start = off < r.n ? off : r.n;
    size_t cnt = r.n - start < limit ? r.n - start : limit, blen;
    char *body = render_assign_json(id, &r, start, cnt, limit, &blen);
    st = srv_resp_json(resp, 200, body, blen);
    if (st == HL_OK && start + cnt < r.n)
        srv_resp_header(resp, "Link", "</v1/jobs/%s/result?offset=%zu&limit=%zu>; rel=\"next\"", id,
                        start + cnt, limit);
    return st;
}

static hl_status render_npy(srv_resp *resp, const srv_result *r, int all_levels)
{
    void *out;
    size_t len;
    size_t shape[2] = {all_levels ? (size_t)r->n_levels : r->n, r->n};
    hl_status st = all_levels ? hl_npy_encode_i32(r->level_labels, 2, shape, &out, &len)
                              : hl_npy_encode_i32(r->labels, 1, shape, &out, &len);
    if (st != HL_OK)
        return st;
    resp->status = 200;
    resp->content_type = "application/x-npy";
    resp->body = out;
    resp->len = len;
    return HL_OK;
}

hl_status srv_render_result(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const char *id,
                            int paged)
{
    const char *format = paged ? srv_req_query(req, "format") : NULL;
    const char *levels = paged ? srv_req_query(req, "levels") : NULL;
    size_t off = 0, limit = DEFAULT_PAGE;
    hl_error e;
    hl_error_clear(&e);
    if (format != NULL && strcmp(format, "json") != 0 && strcmp(format, "npy") != 0)
        hl_error_set(&e, HL_INVAL, "format", "format must be json or npy, got '%s'", format);
    else if (levels != NULL && strcmp(levels, "all") != 0 && strcmp(levels, "final") != 0)
        hl_error_set(&e, HL_INVAL, "levels", "levels must be final or all, got '%s'", levels);
    else if (paged && query_size(req, "offset", SIZE_MAX / 2, &off) < 0)
        hl_error_set(&e, HL_INVAL, "offset", "offset must be a non-negative integer");
    else if (paged && (query_size(req, "limit", MAX_PAGE, &limit) < 0 || limit == 0))
        hl_error_set(&e, HL_INVAL, "limit", "limit must be an integer in [1, %d]", MAX_PAGE);
    if (e.code != HL_OK)
        return srv_resp_problem(resp, req, SRV_P_INVALID_PARAMETER, &e, "%s", e.msg);
    void *buf;
    size_t len;
    hl_status st = ctx->store->ops->result_get(ctx->store, id, &buf, &len);
    srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_GET, st);
    if (st == HL_NOTFOUND)
        return srv_resp_problem(resp, req, SRV_P_JOB_NOT_FOUND, NULL,
                                "the result of job '%s' expired or was evicted", id);
    if (st != HL_OK)
        return srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                                hl_status_str(st));
    srv_result r;
    int assign = srv_result_is_assign(buf, len);
    st = assign ? render_assign(resp, req, id, buf, len, format, off, limit)
                : srv_result_decode(buf, len, &r);
    if (assign) {
        /* rendered above */
    } else if (st == HL_OK && format != NULL && strcmp(format, "npy") == 0) {
        st = render_npy(resp, &r, levels != NULL && strcmp(levels, "all") == 0);
    } else if (st == HL_OK) {
        size_t start = off < r.n ? off : r.n;
        size_t cnt = r.n - start < limit ? r.n - start : limit;
        size_t blen;
        char *body = render_json(id, &r, start, cnt, limit, &blen);
        st = srv_resp_json(resp, 200, body, blen);
        if (st == HL_OK && start + cnt < r.n)
            srv_resp_header(resp, "Link", "</v1/jobs/%s/result?offset=%zu&limit=%zu>; rel=\"next\"",
                            id, start + cnt, limit);
    }
    free(buf);
    if (st != HL_OK)
        return srv_resp_problem(resp, req, srv_problem_for_status(st), NULL,
                                "rendering the result failed: %s", hl_status_str(st));
    return HL_OK;
}

hl_status srv_h_job_result(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    const char *id = req->param;
    srv_record r;
    if (load_record(ctx, req, resp, id, &r) != HL_OK)
        return HL_OK;
    int st = srv_job_status_parse(srv_record_get(&r, "status"));
    srv_record_free(&r);
    if (st == SRV_JOB_QUEUED || st == SRV_JOB_RUNNING)
        return srv_resp_problem(resp, req, SRV_P_JOB_NOT_FINISHED, NULL, "job '%s' is %s", id,
                                srv_job_status_name((srv_job_status)st));
    if (st != SRV_JOB_SUCCEEDED)
        return srv_resp_problem(resp, req, SRV_P_JOB_NO_RESULT, NULL,
                                "job '%s' ended %s and has no result", id,
                                st >= 0 ? srv_job_status_name((srv_job_status)st) : "badly");
    return srv_render_result(ctx, req, resp, id, 1);
}
