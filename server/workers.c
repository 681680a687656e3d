/*
 * workers.c - N threads (uv_thread_create) that pop the bounded queue and run one job at a
 * time: hl_cluster_run_state() for a cluster job (its state is then saved for assigns), or
 * an assign (assign_job.c). Only workers run engine code; BLAS is single-threaded (main.c),
 * and a job's parallelism is its engine threads.
 *
 * A job's life on a worker: CAS queued->running (a lost CAS means it was canceled: skip),
 * compute (or copy a cached result), encode the result, result_put with the TTL, CAS
 * running->succeeded|failed|canceled, cache_put, then drop it from the table and notify the
 * loop so waiting connections resume. Progress is throttled into the store record.
 * No lock is held across any of this; the store takes its own.
 */
#include "buf.h"
#include "cache_key.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "result.h"
#include "stream_jobs.h"

#include "hl/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct srv_workers {
    srv_ctx *ctx;
    int n;
    uv_thread_t *t;
};

/* A job claimed from the stream may be canceled through any replica: DELETE sets the
 * record's cancel_requested. Read the record at most every 500 ms; a record that another
 * replica already ended means this run lost the job. */
static void poll_cancel_request(srv_job *j)
{
    double now = srv_mono();
    if (now - j->last_cancel_poll < 0.5)
        return;
    j->last_cancel_poll = now;
    srv_store *s = j->ctx->store;
    srv_record r;
    hl_status st = s->ops->job_get(s, j->id, &r);
    srv_metrics_store_result(j->ctx->metrics, SRV_OP_JOB_GET, st);
    if (st != HL_OK)
        return; /* unreachable or gone: the finish step sorts it out */
    const char *c = srv_record_get(&r, "cancel_requested");
    int status = srv_job_status_parse(srv_record_get(&r, "status"));
    if (status >= 0 && srv_job_status_terminal((srv_job_status)status))
        atomic_store(&j->cancel, SRV_STOP_LOST);
    else if (c != NULL && strcmp(c, "1") == 0)
        atomic_store(&j->cancel, SRV_STOP_CANCEL);
    srv_record_free(&r);
}

static int should_stop(void *ud)
{
    srv_job *j = ud;
    if (atomic_load(&j->cancel) == SRV_STOP_NONE && j->entry[0] != '\0')
        poll_cancel_request(j);
    return atomic_load(&j->cancel) != SRV_STOP_NONE;
}

/* Writes progress into the store at most every 250 ms per job, and on every stage or
 * level change, so GET /v1/jobs/{id} sees it without a round trip per kNN tile. */
static void on_progress(void *ud, hl_stage stage, int level, double fraction)
{
    srv_job *j = ud;
    double now = srv_mono();
    int changed = (int)stage != j->last_stage || level != j->last_level;
    if (!changed && fraction < 1.0 && now - j->last_write < 0.25)
        return;
    j->last_write = now;
    j->last_stage = (int)stage;
    j->last_level = level;
    char lv[16], fr[16];
    snprintf(lv, sizeof(lv), "%d", level);
    snprintf(fr, sizeof(fr), "%.3f", fraction);
    srv_field f[3] = {{"stage", hl_stage_name(stage)}, {"level", lv}, {"fraction", fr}};
    srv_store *s = j->ctx->store;
    hl_status st = s->ops->job_update(s, j->id, f, 3, "running", 0);
    srv_metrics_store_result(j->ctx->metrics, SRV_OP_JOB_UPDATE, st);
}

hl_cancel srv__job_cancel_hook(srv_job *j)
{
    return (hl_cancel){should_stop, j};
}

hl_progress srv__job_progress_hook(srv_job *j)
{
    return (hl_progress){on_progress, j};
}

void srv_job_log(const srv_job *j, const char *from, const char *to, double seconds)
{
    char dur[32];
    snprintf(dur, sizeof(dur), "#%.3f", seconds);
    const char *kv[] = {"job_id", j->id, "request_id", j->request_id, "from",
                        from,     "to",  to,           "duration",    dur};
    srv_log(SRV_LOG_INFO, "job", kv, 5);
}

/* Builds the stored result from labels (and the job's ids and true labels). */
static hl_status store_result(srv_ctx *ctx, srv_job *j, srv_result *r)
{
    char *ids = NULL;
    hl_status st = HL_OK;
    if (j->ids != NULL)
        st = srv_ids_pack(j->ids, j->x.rows, &ids, &r->ids_bytes);
    r->ids = ids;
    r->has_metrics = 0;
    if (st == HL_OK && j->labels != NULL) {
        hl_metrics m;
        st = hl_metrics_compute(j->labels, r->labels, r->n, &m);
        double v[7] = {m.fp, m.fp_precision, m.fp_recall, m.fb, m.fb_precision, m.fb_recall, m.nmi};
        memcpy(r->metrics, v, sizeof(v));
        r->has_metrics = st == HL_OK;
    }
    void *buf = NULL;
    size_t len = 0;
    if (st == HL_OK)
        st = srv_result_encode(r, &buf, &len);
    free(ids);
    if (st == HL_OK) {
        st = ctx->store->ops->result_put(ctx->store, j->id, buf, len, ctx->cfg->result_ttl);
        srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_PUT, st);
    }
    free(buf);
    return st;
}

/* A cache hit that still needs this request's ids or metrics: copy the source's labels. */
static hl_status copy_cached(srv_ctx *ctx, srv_job *j)
{
    void *buf;
    size_t len;
    hl_status st = ctx->store->ops->result_get(ctx->store, j->cache_src, &buf, &len);
    if (st != HL_OK)
        return st;
    srv_result r;
    st = srv_result_decode(buf, len, &r);
    if (st == HL_OK && r.n != j->x.rows)
        st = HL_FORMAT;
    if (st == HL_OK)
        st = store_result(ctx, j, &r);
    free(buf);
    if (st == HL_OK)
        srv__state_copy(ctx, j->cache_src, j);
    return st;
}

static hl_status compute(srv_ctx *ctx, srv_job *j, hl_error *err)
{
    hl_cluster_params p = j->params;
    p.n_threads = ctx->cfg->engine_threads;
    p.cancel = (hl_cancel){should_stop, j};
    p.progress = (hl_progress){on_progress, j};
    hl_clustering *c = NULL;
    hl_assign_state *state = NULL;
    hl_status st =
        hl_cluster_run_state(j->x.data, j->x.rows, j->x.cols, j->model != NULL ? j->model->m : NULL,
                             j->model != NULL ? j->model->checksum : 0, &p, &c, &state, err);
    if (st != HL_OK)
        return st;
    srv_metrics_computed(ctx->metrics);
    srv_metrics_points(ctx->metrics, j->x.rows);
    double knn = 0, gnn = 0, dec = 0;
    int32_t lc[64];
    for (int l = 0; l < c->n_levels && l < 64; l++) {
        knn += c->levels[l].sec_knn;
        gnn += c->levels[l].sec_gnn;
        dec += c->levels[l].sec_decode;
        lc[l] = (int32_t)c->levels[l].clusters;
    }
    srv_metrics_stage(ctx->metrics, SRV_STAGE_KNN, knn);
    srv_metrics_stage(ctx->metrics, SRV_STAGE_GNN, gnn);
    srv_metrics_stage(ctx->metrics, SRV_STAGE_DECODE, dec);
    srv_field f[3] = {{"stage", "store"}, {"level", "0"}, {"fraction", "0"}};
    ctx->store->ops->job_update(ctx->store, j->id, f, 3, "running", 0);
    double t0 = srv_mono();
    srv_result r = {.n = c->n,
                    .n_levels = c->n_levels,
                    .n_clusters = c->n_clusters,
                    .labels = c->labels,
                    .level_labels = c->level_labels,
                    .level_clusters = lc};
    st = store_result(ctx, j, &r);
    hl_clustering_free(c);
    if (st == HL_OK)
        srv__state_save(ctx, j, state); /* takes the state */
    else
        hl_assign_state_free(state);
    srv_metrics_stage(ctx->metrics, SRV_STAGE_STORE, srv_mono() - t0);
    if (st != HL_OK)
        hl_error_set(err, st, NULL, "storing the result failed: %s", hl_status_str(st));
    return st;
}

void srv__job_error_json(hl_status st, const hl_error *err, char *out, size_t len)
{
    srv_problem p = srv_problem_for_status(st);
    char detail[200];
    srv_fixbuf b;
    srv_fixbuf_init(&b, detail, sizeof(detail));
    srv_fixbuf_json_str(&b, err->msg[0] != '\0' ? err->msg : hl_status_str(st));
    detail[b.len] = '\0';
    snprintf(out, len, "{\"type\":\"/problems/%s\",\"title\":\"%s\",\"status\":%d,\"detail\":%s}",
             srv_problem_suffix(p), srv_problem_title(p), srv_problem_status(p), detail);
}

hl_status srv__job_finish(srv_ctx *ctx, srv_job *j, srv_job_status to, const char *error)
{
    char ts[32];
    srv_now_rfc3339(ts);
    srv_field f[5] = {{"finished_at", ts},
                      {"error", error != NULL ? error : ""},
                      {"fraction", "1"},
                      {"stage", "store"},
                      {"level", "0"}};
    size_t nf = to == SRV_JOB_SUCCEEDED ? 5 : 2;
    hl_status st =
        srv_job_transition(ctx->store, j->id, j, "running", to, f, nf, ctx->cfg->result_ttl);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, st);
    if (st == HL_OK) {
        srv_metrics_job_end(ctx->metrics, (int)to);
        srv_job_log(j, "running", srv_job_status_name(to), srv_mono() - j->t_started);
    }
    if (st == HL_OK && to == SRV_JOB_SUCCEEDED && j->cache_src[0] == '\0' &&
        j->cache_key[0] != '\0') {
        hl_status cs =
            ctx->store->ops->cache_put(ctx->store, j->cache_key, j->id, ctx->cfg->result_ttl);
        srv_metrics_store_result(ctx->metrics, SRV_OP_CACHE_PUT, cs);
    }
    return st;
}

hl_status srv__job_execute(srv_ctx *ctx, srv_job *j, hl_error *err)
{
    if (j->kind == SRV_KIND_ASSIGN)
        return srv__assign_execute(ctx, j, err);
    hl_status st = HL_NOTFOUND;
    if (j->cache_src[0] != '\0')
        st = copy_cached(ctx, j);
    if (st != HL_OK) {
        j->cache_src[0] = '\0'; /* the source is gone: compute after all */
        st = compute(ctx, j, err);
    }
    return st;
}

void srv_worker_run_job(srv_ctx *ctx, srv_job *j)
{
    if (j->entry[0] != '\0') {
        srv_stream_run_job(ctx, j);
        return;
    }
    char ts[32];
    srv_now_rfc3339(ts);
    srv_field f[5] = {
        {"started_at", ts}, {"attempts", "1"}, {"stage", "knn"}, {"level", "0"}, {"fraction", "0"}};
    hl_status st = srv_job_transition(ctx->store, j->id, j, "queued", SRV_JOB_RUNNING, f, 5, 0);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, st);
    if (st != HL_OK) /* canceled while queued (or gone): nothing to do */
        return;
    j->t_started = srv_mono();
    srv_metrics_stage(ctx->metrics, SRV_STAGE_QUEUED, j->t_started - j->t_created);
    srv_job_log(j, "queued", "running", j->t_started - j->t_created);
    srv_metrics_running(ctx->metrics, 1);
    hl_error err;
    hl_error_clear(&err);
    st = srv__job_execute(ctx, j, &err);
    srv_job_drop_input(j);
    if (st == HL_OK) {
        srv__job_finish(ctx, j, SRV_JOB_SUCCEEDED, NULL);
    } else if (st == HL_CANCELED) {
        srv__job_finish(ctx, j, SRV_JOB_CANCELED, NULL);
    } else {
        char ej[512];
        srv__job_error_json(st, &err, ej, sizeof(ej));
        srv__job_finish(ctx, j, SRV_JOB_FAILED, ej);
    }
    srv_metrics_running(ctx->metrics, -1);
    srv_jobs_remove(ctx->jobs, j->id);
    if (ctx->job_done != NULL)
        ctx->job_done(ctx, j->id);
}

static void worker_main(void *arg)
{
    srv_workers *w = arg;
    srv_job *j;
    while ((j = srv_jobq_pop(w->ctx->queue)) != NULL) {
        srv_worker_run_job(w->ctx, j);
        srv_job_release(j);
    }
}

hl_status srv_workers_start(srv_ctx *ctx, int n, srv_workers **out)
{
    srv_workers *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HL_NOMEM;
    w->ctx = ctx;
    w->t = calloc((size_t)n, sizeof(uv_thread_t));
    if (w->t == NULL) {
        free(w);
        return HL_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        if (uv_thread_create(&w->t[i], worker_main, w) != 0) {
            srv_jobq_close(ctx->queue, NULL, NULL);
            srv_workers_join(w);
            return HL_INTERNAL;
        }
        w->n++;
    }
    *out = w;
    return HL_OK;
}

void srv_workers_join(srv_workers *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < w->n; i++)
        uv_thread_join(&w->t[i]);
    free(w->t);
    free(w);
}

hl_status srv_job_cancel_queued(srv_ctx *ctx, srv_job *j, const char *reason)
{
    char ts[32];
    srv_now_rfc3339(ts);
    char ej[400] = "";
    if (reason != NULL) {
        hl_error e;
        hl_error_clear(&e);
        hl_error_set(&e, HL_UNAVAILABLE, NULL, "%s", reason);
        srv__job_error_json(HL_UNAVAILABLE, &e, ej, sizeof(ej));
    }
    srv_field f[2] = {{"finished_at", ts}, {"error", ej}};
    hl_status st = srv_job_transition(ctx->store, j->id, j, "queued", SRV_JOB_CANCELED, f, 2,
                                      ctx->cfg->result_ttl);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, st);
    if (st != HL_OK)
        return st;
    srv_metrics_job_end(ctx->metrics, SRV_JOB_CANCELED);
    srv_job_log(j, "queued", "canceled", srv_mono() - j->t_created);
    srv_jobq_remove(ctx->queue, j);
    srv_jobs_remove(ctx->jobs, j->id);
    if (ctx->job_done != NULL)
        ctx->job_done(ctx, j->id);
    return HL_OK;
}
