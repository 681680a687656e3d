/*
 * handlers_cluster.c - POST /v1/cluster and POST /v1/clusterings/{id}/assign: decode,
 * validate, dedupe, admit.
 *
 * Order of admission (each step may answer and stop):
 *   1. draining -> 503;  2. decode the body by media type (JSON codec, .npy, raw f32) into a
 *   matrix, zero-copy where the bytes allow;  3. resolve the model and the parameters;
 *   4. the cache key (XXH3-128 of the float32 bytes, model, checksum, canonical params) and a
 *   cache lookup;  5. reserve a queue slot (429 here, before any side effect);
 *   6. Idempotency-Key claim (replay, 422 on another body, 409 while the first is admitted);
 *   7. create the job record (queued) and push the job.  A cache hit that needs neither this
 *   request's ids nor its true labels is finished here (the stored labels are copied);
 *   otherwise the worker copies them and adds ids and metrics, so no engine code ever runs
 *   on an HTTP thread.
 */
#include "buf.h"
#include "cache_key.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "model_registry.h"
#include "result.h"
#include "server.h"
#include "store_redis.h"
#include "stream_jobs.h"

#include "hl/json_codec.h"
#include "hl/npy.h"
#include "hl/rawf32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the body decodes to. */
typedef struct admission {
    hl_fmatrix x;
    char **ids;
    int32_t *labels;
    char model[65];
    hl_request_params rp;
} admission;

static void admission_free(admission *a)
{
    free(a->ids); /* one block (hl/json_codec.h) */
    free(a->labels);
    hl_fmatrix_free(&a->x);
    memset(a, 0, sizeof(*a));
}

/* Maps a decode error to its problem and answers. */
static hl_status decode_problem(srv_resp *resp, const srv_req *req, hl_status st,
                                const hl_error *err, srv_problem format_problem)
{
    srv_problem p;
    const char *f = err->field;
    if (st == HL_NOMEM)
        p = SRV_P_UNAVAILABLE;
    else if (st == HL_NUMERIC)
        p = SRV_P_NON_FINITE_VALUE;
    else if (st == HL_INVAL && format_problem != SRV_P_INVALID_PARAMETER &&
             (strcmp(f, "n") == 0 || strcmp(f, "dim") == 0))
        p = SRV_P_SIZE_TOO_LARGE; /* a body over the limits (the lower bound is checked after
                                     decoding); a query's "dim" is a parameter */
    else if (st == HL_INVAL)
        p = SRV_P_INVALID_PARAMETER;
    else if (st == HL_RANGE && format_problem == SRV_P_MALFORMED_BODY)
        p = SRV_P_INVALID_EMBEDDINGS;
    else
        p = format_problem;
    return srv_resp_problem(resp, req, p, err, "%s",
                            err->msg[0] != '\0' ? err->msg : hl_status_str(st));
}

static hl_status decode_json(srv_ctx *ctx, const srv_req *req, admission *a, hl_error *err)
{
    hl_request_limits lim = {(size_t)ctx->cfg->max_points, (size_t)ctx->cfg->max_dim, 0};
    hl_cluster_request cr;
    memset(&cr, 0, sizeof(cr));
    hl_status st = hl_json_request_decode(req->body->data, req->body->len, &lim, &cr, err);
    if (st != HL_OK)
        return st;
    a->x = cr.x; /* the request's buffers move into the admission */
    a->ids = cr.ids;
    a->labels = cr.labels;
    memcpy(a->model, cr.model, sizeof(a->model));
    a->rp = cr.params;
    return HL_OK;
}

static hl_status decode_query(const srv_req *req, admission *a, size_t *dim, hl_error *err)
{
    char *qs = srv_req_query_string(req);
    if (qs == NULL)
        return HL_NOMEM;
    hl_status st = hl_query_decode(qs, &a->rp, a->model, dim, err);
    free(qs);
    return st;
}

/* Decodes the body into a->x. On error the problem is already in resp (returns non-OK). */
static hl_status decode_body(srv_ctx *ctx, const srv_req *req, srv_resp *resp, admission *a,
                             size_t min_points)
{
    hl_error err;
    hl_error_clear(&err);
    unsigned kind = srv_media_flag(req->media_type);
    hl_status st;
    size_t dim = 0;
    srv_problem fp = SRV_P_MALFORMED_BODY;
    const char *data = req->body->data != NULL ? req->body->data : "";
    if (kind == SRV_BODY_JSON) {
        st = decode_json(ctx, req, a, &err);
    } else if ((st = decode_query(req, a, kind == SRV_BODY_F32 ? &dim : NULL, &err)) != HL_OK) {
        fp = SRV_P_INVALID_PARAMETER;
    } else if (kind == SRV_BODY_NPY) {
        fp = SRV_P_INVALID_NPY;
        st = hl_npy_decode_f32(data, req->body->len, &a->x, &err);
    } else {
        fp = SRV_P_INVALID_RAW;
        if (dim == 0)
            st = hl_error_set(&err, HL_FORMAT, "dim",
                              "application/octet-stream needs ?dim=D (floats per row)");
        else if (dim > ctx->cfg->max_dim)
            st = hl_error_set(&err, HL_INVAL, "dim", "dim %zu is over the limit %llu", dim,
                              (unsigned long long)ctx->cfg->max_dim);
        else
            st = hl_rawf32_decode(data, req->body->len, dim, &a->x, &err);
    }
    if (st != HL_OK) {
        decode_problem(resp, req, st, &err, fp);
        return st;
    }
    hl_error_clear(&err);
    if (a->x.rows < min_points)
        st = hl_error_set(&err, HL_RANGE, "embeddings", "at least %zu points are needed, got %zu",
                          min_points, a->x.rows);
    else if (a->x.rows > ctx->cfg->max_points || a->x.cols > ctx->cfg->max_dim)
        st = hl_error_set(&err, HL_INVAL, "embeddings",
                          "%zu points of dimension %zu exceed the limits (%llu points, "
                          "dimension %llu)",
                          a->x.rows, a->x.cols, (unsigned long long)ctx->cfg->max_points,
                          (unsigned long long)ctx->cfg->max_dim);
    if (st != HL_OK)
        srv_resp_problem(resp, req, st == HL_RANGE ? SRV_P_SIZE_TOO_SMALL : SRV_P_SIZE_TOO_LARGE,
                         &err, "%s", err.msg);
    return st;
}

/* Resolves the model and the parameters (model defaults, then the request's). */
static hl_status resolve(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const admission *a,
                         const srv_model **model, hl_cluster_params *p)
{
    hl_error err;
    hl_error_clear(&err);
    const char *name =
        a->model[0] != '\0' ? a->model : ctx->models->v[ctx->models->default_idx].name;
    const srv_model *m = srv_models_find(ctx->models, name);
    if (m == NULL) {
        hl_error_set(&err, HL_INVAL, "model", "unknown model '%s'", name);
        srv_resp_problem(resp, req, SRV_P_UNKNOWN_MODEL_SUBMIT, &err, "%s (see /v1/models)",
                         err.msg);
        return HL_INVAL;
    }
    if (m->m != NULL && m->m->cfg.kind == HL_MODEL_LANDER && (size_t)m->m->cfg.dim != a->x.cols) {
        hl_error_set(&err, HL_RANGE, "embeddings", "dimension mismatch");
        srv_resp_problem(resp, req, SRV_P_DIMENSION_MISMATCH, &err,
                         "model '%s' expects dimension %d, the embeddings have dimension %zu",
                         m->name, (int)m->m->cfg.dim, a->x.cols);
        return HL_RANGE;
    }
    hl_cluster_params_default(p);
    if (m->m != NULL) {
        p->k = m->m->cfg.k;
        p->tau = m->m->cfg.tau;
    }
    const hl_request_params *rp = &a->rp;
    if (rp->has_k)
        p->k = rp->k;
    if (rp->has_tau)
        p->tau = rp->tau;
    if (rp->has_max_levels)
        p->max_levels = rp->max_levels;
    if (rp->has_min_cluster_size)
        p->min_cluster_size = rp->min_cluster_size;
    if (rp->has_early_stop)
        p->early_stop = rp->early_stop;
    hl_status st = HL_OK;
    if (rp->has_new_clusters)
        st = hl_error_set(&err, HL_INVAL, "params/new_clusters",
                          "new_clusters belongs to assignment, not to POST /v1/cluster");
    else if (rp->has_knn && hl_knn_method_parse(rp->knn, &p->knn) != HL_OK)
        st = hl_error_set(&err, HL_INVAL, "params/knn",
                          "knn must be auto, exact or ivf, got '%s' (HNSW is not built)", rp->knn);
    hl_error pe;
    hl_error_clear(&pe);
    if (st == HL_OK && (st = hl_cluster_params_check(p, &pe)) != HL_OK)
        hl_error_set(&err, HL_INVAL, NULL, "%s", pe.msg);
    if (st != HL_OK) {
        if (err.field[0] == '\0')
            snprintf(err.field, sizeof(err.field), "params/%.40s", pe.field);
        srv_resp_problem(resp, req, SRV_P_INVALID_PARAMETER, &err, "%s", err.msg);
    }
    *model = m;
    return st;
}

void srv_request_hash(const srv_req *req, char out[33])
{
    char *qs = srv_req_query_string(req);
    srv_buf b;
    srv_buf_init(&b, 128);
    srv_buf_puts(&b, req->media_type);
    srv_buf_put(&b, "\n", 1);
    srv_buf_puts(&b, qs != NULL ? qs : "");
    free(qs);
    char head[33], whole[70];
    srv_hash_hex(b.p != NULL ? b.p : "", b.len, head);
    srv_buf_free(&b);
    srv_hash_hex(req->body->data != NULL ? req->body->data : "", req->body->len, whole);
    memcpy(whole + 32, head, 33);
    srv_hash_hex(whole, 64, out);
}

/* Finishes a cache hit at once: copies the source's labels without its ids or metrics. */
static hl_status finish_from_cache(srv_ctx *ctx, srv_job *j)
{
    void *buf;
    size_t len;
    srv_store *s = ctx->store;
    hl_status st = s->ops->result_get(s, j->cache_src, &buf, &len);
    if (st != HL_OK)
        return st;
    srv_result r;
    void *out = NULL;
    size_t olen = 0;
    st = srv_result_decode(buf, len, &r);
    if (st == HL_OK && r.n != j->x.rows)
        st = HL_FORMAT;
    if (st == HL_OK) {
        r.ids = NULL;
        r.ids_bytes = 0;
        r.has_metrics = 0;
        st = srv_result_encode(&r, &out, &olen);
    }
    free(buf);
    if (st == HL_OK)
        st = s->ops->result_put(s, j->id, out, olen, ctx->cfg->result_ttl);
    free(out);
    if (st == HL_OK)
        srv__state_copy(ctx, j->cache_src, j);
    return st;
}

/* Looks the work up in the cache: sets j->cache_src when a succeeded job has it. */
static void cache_lookup(srv_ctx *ctx, srv_job *j)
{
    char *src = NULL;
    srv_store *s = ctx->store;
    hl_status st = s->ops->cache_get(s, j->cache_key, &src);
    srv_metrics_store_result(ctx->metrics, SRV_OP_CACHE_GET, st);
    if (st == HL_OK) {
        srv_record r;
        if (s->ops->job_get(s, src, &r) == HL_OK) {
            const char *status = srv_record_get(&r, "status");
            if (status != NULL && strcmp(status, "succeeded") == 0)
                snprintf(j->cache_src, sizeof(j->cache_src), "%s", src);
            srv_record_free(&r);
        }
    }
    free(src);
    srv_metrics_cache(ctx->metrics, j->cache_src[0] != '\0');
}

/* A claimed Idempotency-Key whose job still does not exist after this long belongs to an
 * admission that died (its replica was killed): the next request with the key takes it over.
 * Admission takes far less (a 1 GiB body reaches Redis over loopback in seconds). */
#define SRV_IDEM_ABANDONED_SECONDS 60

/* Idempotency-Key: 0 = claimed (go on), 1 = answered (replay or problem). The stored value
 * is "<job id> <body hash> <claim time, seconds since the epoch>". */
static int idempotency(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const srv_job *j,
                       const char *hash)
{
    char value[100], *existing = NULL;
    snprintf(value, sizeof(value), "%s %s %lld", j->id, hash, (long long)time(NULL));
    srv_store *s = ctx->store;
    uint64_t ttl = ctx->cfg->result_ttl + 86400;
    hl_status st = s->ops->idem_claim(s, req->idem_key, value, ttl, &existing);
    srv_metrics_store_result(ctx->metrics, SRV_OP_IDEM_CLAIM, st);
    if (st == HL_OK)
        return 0;
    if (st != HL_BUSY || existing == NULL) {
        free(existing);
        srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                         hl_status_str(st));
        return 1;
    }
    char old_id[40] = "", old_hash[40] = "";
    long long claimed = 0;
    if (sscanf(existing, "%39s %39s %lld", old_id, old_hash, &claimed) < 2 ||
        strcmp(old_hash, hash) != 0) {
        free(existing);
        hl_error e;
        hl_error_clear(&e);
        hl_error_set(&e, HL_INVAL, "Idempotency-Key", "reused");
        srv_resp_problem(resp, req, SRV_P_IDEMPOTENCY_KEY_REUSED, &e,
                         "Idempotency-Key '%s' was first used with another request body",
                         req->idem_key);
        return 1;
    }
    srv_record r;
    st = s->ops->job_get(s, old_id, &r);
    if (st == HL_NOTFOUND && claimed > 0 &&
        (long long)time(NULL) - claimed > SRV_IDEM_ABANDONED_SECONDS &&
        s->ops->idem_replace(s, req->idem_key, existing, value, ttl) == HL_OK) {
        /* The first admission died between its claim and its job (a replica killed): this
         * one takes the key over and admits the request itself. */
        free(existing);
        return 0;
    }
    free(existing);
    if (st == HL_NOTFOUND) {
        srv_resp_problem(resp, req, SRV_P_IDEMPOTENCY_KEY_IN_PROGRESS, NULL,
                         "the first request with Idempotency-Key '%s' is still being admitted",
                         req->idem_key);
        return 1;
    }
    if (st != HL_OK) {
        srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                         hl_status_str(st));
        return 1;
    }
    int status = srv_job_status_parse(srv_record_get(&r, "status"));
    srv_record_free(&r);
    int terminal = status >= 0 && srv_job_status_terminal((srv_job_status)status);
    srv_job *local = terminal ? NULL : srv_jobs_find(ctx->jobs, old_id);
    if (local == NULL && !terminal && ctx->use_stream && req->prefer_wait > 0 &&
        strlen(old_id) < sizeof(local->id) &&
        srv_job_new(&local) == HL_OK) /* a shell to wait on: the job may run anywhere */
        memcpy(local->id, old_id, strlen(old_id) + 1);
    if (local != NULL && req->prefer_wait > 0) {
        resp->wait_job = local;
        resp->wait_seconds = req->prefer_wait;
        return 1;
    }
    srv_job_release(local);
    srv_resp_job(ctx, req, resp, old_id, terminal ? 200 : 202);
    return 1;
}

static hl_status create_record(srv_ctx *ctx, srv_job *j, const char *model, hl_status *st)
{
    char created[32], n[24], dim[24], params[256];
    srv_now_rfc3339(created);
    snprintf(n, sizeof(n), "%zu", j->x.rows);
    snprintf(dim, sizeof(dim), "%zu", j->x.cols);
    int assign = j->kind == SRV_KIND_ASSIGN;
    if (assign)
        snprintf(params, sizeof(params), "{\"new_clusters\":\"%s\"}",
                 j->new_clusters == HL_NEW_UNASSIGNED ? "unassigned" : "open");
    else
        srv_params_json(&j->params, params, sizeof(params));
    srv_field f[] = {{"kind", assign ? "assign" : "cluster"},
                     {"clustering", j->clustering},
                     {"status", "queued"},
                     {"cached", j->cache_src[0] ? "1" : "0"},
                     {"created_at", created},
                     {"stage", "queued"},
                     {"level", "0"},
                     {"fraction", "0"},
                     {"n", n},
                     {"dim", dim},
                     {"model", model},
                     {"params", params},
                     {"attempts", "0"},
                     {"replica", ctx->replica},
                     {"request_id", j->request_id}};
    *st = ctx->store->ops->job_create(ctx->store, j->id, f, sizeof(f) / sizeof(f[0]));
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_CREATE, *st);
    return *st;
}

/* Marks a job finished from the cache right away (queued -> running -> succeeded). */
static void complete_cached(srv_ctx *ctx, srv_job *j)
{
    char ts[32];
    srv_now_rfc3339(ts);
    srv_field run[2] = {{"started_at", ts}, {"attempts", "1"}};
    srv_field done[4] = {{"finished_at", ts}, {"stage", "store"}, {"fraction", "1"}, {"error", ""}};
    srv_job_transition(ctx->store, j->id, j, "queued", SRV_JOB_RUNNING, run, 2, 0);
    srv_job_transition(ctx->store, j->id, j, "running", SRV_JOB_SUCCEEDED, done, 4,
                       ctx->cfg->result_ttl);
    srv_metrics_job_end(ctx->metrics, SRV_JOB_SUCCEEDED);
    srv_job_log(j, "queued", "succeeded", 0.0);
}

/* Per-key job limit (--key-max-jobs): 0 = admitted or no limit, 1 = answered (429/503). */
static int owner_admit(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const srv_job *j)
{
    if (ctx->cfg->key_max_jobs <= 0 || req->key_name[0] == '\0')
        return 0;
    srv_store *s = ctx->store;
    hl_status st =
        s->ops->owner_admit(s, req->key_name, j->id, (unsigned)ctx->cfg->key_max_jobs, 60);
    if (st == HL_OK)
        return 0;
    if (st == HL_BUSY)
        srv_resp_problem(resp, req, SRV_P_QUEUE_FULL, NULL,
                         "API key '%s' has %d jobs queued or running (--key-max-jobs); retry "
                         "when one has ended",
                         req->key_name, ctx->cfg->key_max_jobs);
    else
        srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                         hl_status_str(st));
    return 1;
}

/* Takes back an owner_admit whose job was not created (a replay, a store failure). */
static void owner_undo(srv_ctx *ctx, const srv_req *req, const srv_job *j)
{
    if (ctx->cfg->key_max_jobs > 0 && req->key_name[0] != '\0')
        ctx->store->ops->owner_release(ctx->store, req->key_name, j->id);
}

/* Answers a submission once admitted: wait (Prefer), the result of an immediate cache hit,
 * or 202 + the job object. */
static hl_status admitted(srv_ctx *ctx, const srv_req *req, srv_resp *resp, srv_job *j,
                          int immediate)
{
    if (req->prefer_wait > 0 && !immediate) {
        srv_job_retain(j);
        resp->wait_job = j;
        resp->wait_seconds = req->prefer_wait;
        return HL_OK;
    }
    if (req->prefer_wait > 0 && immediate)
        return srv_cluster_after_wait(ctx, req, j, resp);
    return srv_resp_job(ctx, req, resp, j->id, 202);
}

/* Redis mode, steps 5-7: the stream's length bounds the backlog of every replica (429), the
 * input and the record are stored, then the job id goes into the stream. */
static hl_status admit_stream(srv_ctx *ctx, const srv_req *req, srv_resp *resp, srv_job *j,
                              const char *model_name, const char *hash)
{
    int immediate = j->cache_src[0] != '\0' && j->ids == NULL && j->labels == NULL;
    long long backlog = 0;
    hl_status st = immediate ? HL_OK : srv_redis_stream_length(ctx->store, &backlog);
    if (st != HL_OK)
        return srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                                hl_status_str(st));
    if (backlog >= ctx->cfg->queue_capacity)
        return srv_resp_problem(resp, req, SRV_P_QUEUE_FULL, NULL,
                                "%lld jobs are queued or running on the replicas; retry later",
                                backlog);
    if (!immediate && owner_admit(ctx, req, resp, j) != 0)
        return HL_OK;
    if (req->idem_key[0] != '\0' && idempotency(ctx, req, resp, j, hash) != 0) {
        owner_undo(ctx, req, j);
        return HL_OK;
    }
    if ((!immediate && (st = srv_stream_put_input(ctx, j)) != HL_OK) ||
        create_record(ctx, j, model_name, &st) != HL_OK) {
        owner_undo(ctx, req, j);
        return srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                                hl_status_str(st));
    }
    srv_job_log(j, "", "queued", srv_mono() - j->t_created);
    if (immediate && finish_from_cache(ctx, j) == HL_OK) {
        complete_cached(ctx, j);
        return admitted(ctx, req, resp, j, 1);
    }
    j->cache_src[0] = '\0'; /* (an immediate hit whose source vanished: compute after all) */
    st = immediate ? srv_stream_put_input(ctx, j) : HL_OK;
    if (st == HL_OK)
        st = srv_stream_submit(ctx, j);
    if (st != HL_OK) {
        srv_job_cancel_queued(ctx, j, "the job could not be queued: the store failed");
        ctx->store->ops->input_delete(ctx->store, j->id);
        return srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                                hl_status_str(st));
    }
    return admitted(ctx, req, resp, j, 0);
}

/* Steps 4-7 for a decoded, resolved request. Takes the admission's buffers into j. */
static hl_status admit(srv_ctx *ctx, const srv_req *req, srv_resp *resp, srv_job *j,
                       const char *model_name, const char *hash)
{
    if (ctx->use_stream)
        return admit_stream(ctx, req, resp, j, model_name, hash);
    int immediate = j->cache_src[0] != '\0' && j->ids == NULL && j->labels == NULL;
    hl_status st = immediate ? HL_OK : srv_jobq_reserve(ctx->queue);
    if (st != HL_OK)
        return srv_resp_problem(
            resp, req, st == HL_BUSY ? SRV_P_QUEUE_FULL : SRV_P_UNAVAILABLE, NULL, "%s",
            st == HL_BUSY ? "the job queue is full; retry later" : "the server is shutting down");
    if (!immediate && owner_admit(ctx, req, resp, j) != 0) {
        srv_jobq_unreserve(ctx->queue);
        return HL_OK;
    }
    if (req->idem_key[0] != '\0') {
        if (idempotency(ctx, req, resp, j, hash) != 0) {
            if (!immediate)
                srv_jobq_unreserve(ctx->queue);
            owner_undo(ctx, req, j);
            return HL_OK;
        }
    }
    if (create_record(ctx, j, model_name, &st) != HL_OK) {
        if (!immediate)
            srv_jobq_unreserve(ctx->queue);
        owner_undo(ctx, req, j);
        return srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                                hl_status_str(st));
    }
    srv_job_log(j, "", "queued", srv_mono() - j->t_created);
    if (immediate) {
        if (finish_from_cache(ctx, j) == HL_OK) {
            complete_cached(ctx, j);
        } else { /* the source vanished: compute after all */
            j->cache_src[0] = '\0';
            immediate = 0;
            if (srv_jobq_reserve(ctx->queue) != HL_OK) {
                srv_job_cancel_queued(ctx, j, "the job queue is full");
                return srv_resp_problem(resp, req, SRV_P_QUEUE_FULL, NULL,
                                        "the job queue is full; retry later");
            }
        }
    }
    if (!immediate) {
        srv_jobs_add(ctx->jobs, j);
        if (srv_jobq_push_reserved(ctx->queue, j) != HL_OK) {
            srv_job_cancel_queued(ctx, j, "the server is shutting down");
            return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL,
                                    "the server is shutting down");
        }
    }
    return admitted(ctx, req, resp, j, immediate);
}

hl_status srv_h_cluster(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    if (atomic_load(&ctx->draining))
        return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL, "the server is shutting down");
    double t0 = srv_mono();
    char hash[33] = ""; /* of the bytes as sent, before the body is taken over below */
    if (req->idem_key[0] != '\0')
        srv_request_hash(req, hash);
    admission a;
    memset(&a, 0, sizeof(a));
    const srv_model *model = NULL;
    hl_cluster_params p;
    if (decode_body(ctx, req, resp, &a, 2) != HL_OK ||
        resolve(ctx, req, resp, &a, &model, &p) != HL_OK) {
        admission_free(&a);
        return HL_OK;
    }
    srv_job *j;
    hl_status st = srv_job_new(&j);
    if (st != HL_OK) {
        admission_free(&a);
        return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL, "cannot create a job: %s",
                                hl_status_str(st));
    }
    j->ctx = ctx;
    j->t_created = t0;
    snprintf(j->request_id, sizeof(j->request_id), "%s", req->request_id);
    j->model = model;
    j->params = p;
    j->x = a.x;
    j->ids = a.ids;
    j->labels = a.labels;
    memset(&a, 0, sizeof(a));
    if (j->x.owned == NULL && req->body->data != NULL) {
        j->body = req->body->data; /* zero-copy: the matrix views the request's bytes */
        j->body_cap = req->body->cap;
        req->body->data = NULL;
    }
    if (srv_cache_key(j->x.data, j->x.rows, j->x.cols, model->name, model->checksum, &p,
                      j->cache_key) != 0)
        j->cache_key[0] = '\0';
    else
        cache_lookup(ctx, j);
    srv_metrics_stage(ctx->metrics, SRV_STAGE_PARSE, srv_mono() - t0);
    st = admit(ctx, req, resp, j, model->name, hash);
    srv_job_release(j);
    return st;
}

/* Redis mode: the job's status from its record (it may have run on another replica). */
static int status_in_store(srv_ctx *ctx, const char *id)
{
    srv_record r;
    if (ctx->store->ops->job_get(ctx->store, id, &r) != HL_OK)
        return -1;
    int st = srv_job_status_parse(srv_record_get(&r, "status"));
    srv_record_free(&r);
    return st;
}

hl_status srv_cluster_after_wait(srv_ctx *ctx, const srv_req *req, srv_job *job, srv_resp *resp)
{
    int st = ctx->use_stream ? status_in_store(ctx, job->id) : atomic_load(&job->status);
    if (st == SRV_JOB_SUCCEEDED) {
        hl_status r = srv_render_result(ctx, req, resp, job->id, 0);
        if (resp->status == 200) {
            srv_resp_header(resp, "Preference-Applied", "wait=%d", req->prefer_wait);
            srv_resp_header(resp, "Location", "/v1/jobs/%s", job->id);
        }
        return r;
    }
    return srv_resp_job(ctx, req, resp, job->id, 202);
}

/* ---------------------------------------------------------------- assign */

/* The cluster job an assign extends must have finished with a state of the points'
 * dimension, made by a model this server has (same checksum). Answers and returns non-OK
 * when not. */
static hl_status resolve_clustering(srv_ctx *ctx, const srv_req *req, srv_resp *resp,
                                    const admission *a, const srv_model **model)
{
    const char *id = req->param;
    srv_record r;
    hl_status st = strlen(id) < sizeof(((srv_job *)NULL)->clustering)
                       ? ctx->store->ops->job_get(ctx->store, id, &r)
                       : HL_NOTFOUND; /* longer than any job id */
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_GET, st);
    if (st == HL_NOTFOUND)
        return srv_resp_problem(resp, req, SRV_P_CLUSTERING_NOT_FOUND, NULL,
                                "no clustering '%s' (unknown, deleted or expired)", id),
               HL_NOTFOUND;
    if (st != HL_OK)
        return srv_resp_problem(resp, req, srv_problem_for_status(st), NULL, "the store failed: %s",
                                hl_status_str(st)),
               st;
    const char *kind = srv_record_get(&r, "kind"), *ver = srv_record_get(&r, "state_version");
    const char *dim = srv_record_get(&r, "dim"), *mname = srv_record_get(&r, "model");
    const char *mcrc = srv_record_get(&r, "state_model");
    int status = srv_job_status_parse(srv_record_get(&r, "status"));
    hl_error e;
    hl_error_clear(&e);
    srv_problem p = SRV_P_COUNT_;
    char detail[200] = "";
    srv_state_head head;
    if (kind != NULL && strcmp(kind, "assign") == 0) {
        p = SRV_P_CLUSTERING_NOT_FOUND;
        snprintf(detail, sizeof(detail), "'%s' is an assign job, not a clustering", id);
    } else if (status == SRV_JOB_QUEUED || status == SRV_JOB_RUNNING) {
        p = SRV_P_JOB_NOT_FINISHED;
        snprintf(detail, sizeof(detail), "clustering job '%s' has not finished", id);
    } else if (status != SRV_JOB_SUCCEEDED) {
        p = SRV_P_JOB_NO_RESULT;
        snprintf(detail, sizeof(detail), "clustering job '%s' did not succeed", id);
    } else if (ver == NULL || ctx->store->ops->state_head(ctx->store, id, &head) != HL_OK) {
        p = SRV_P_CLUSTERING_NOT_FOUND;
        snprintf(detail, sizeof(detail),
                 "clustering '%s' has no stored state (not saved, expired or evicted)", id);
    } else if (dim == NULL || strtoull(dim, NULL, 10) != a->x.cols) {
        p = SRV_P_DIMENSION_MISMATCH;
        hl_error_set(&e, HL_RANGE, "embeddings", "dimension mismatch");
        snprintf(detail, sizeof(detail),
                 "clustering '%s' has dimension %s, the new points have dimension %zu", id,
                 dim != NULL ? dim : "?", a->x.cols);
    } else if ((*model = srv_models_find(ctx->models, mname != NULL ? mname : "")) == NULL ||
               (mcrc != NULL && strtoul(mcrc, NULL, 16) != (*model)->checksum)) {
        p = SRV_P_UNKNOWN_MODEL_SUBMIT;
        hl_error_set(&e, HL_INVAL, "model", "unknown model");
        snprintf(detail, sizeof(detail),
                 "clustering '%s' was made with model '%s' (crc32c:%s), which this server does "
                 "not have",
                 id, mname != NULL ? mname : "", mcrc != NULL ? mcrc : "?");
    } else if (a->model[0] != '\0' && strcmp(a->model, (*model)->name) != 0) {
        p = SRV_P_INVALID_PARAMETER;
        hl_error_set(&e, HL_INVAL, "model", "model");
        snprintf(detail, sizeof(detail),
                 "clustering '%s' was made with model '%s'; omit model or name that one", id,
                 (*model)->name);
    }
    srv_record_free(&r);
    if (p == SRV_P_COUNT_)
        return HL_OK;
    srv_resp_problem(resp, req, p, e.code != HL_OK ? &e : NULL, "%s", detail);
    return HL_NOTFOUND;
}

/* Only new_clusters applies to an assign: the clustering keeps its own parameters. */
static hl_status assign_params(const srv_req *req, srv_resp *resp, const admission *a,
                               hl_new_clusters *pol)
{
    const hl_request_params *rp = &a->rp;
    hl_error e;
    hl_error_clear(&e);
    if (a->labels != NULL)
        hl_error_set(&e, HL_INVAL, "labels", "labels (true classes) are not used by assignment");
    else if (rp->has_k || rp->has_tau || rp->has_max_levels || rp->has_min_cluster_size ||
             rp->has_early_stop || rp->has_knn)
        hl_error_set(&e, HL_INVAL, "params",
                     "only new_clusters applies to assignment; the clustering keeps its own k, "
                     "tau and levels");
    if (e.code != HL_OK)
        return srv_resp_problem(resp, req, SRV_P_INVALID_PARAMETER, &e, "%s", e.msg), HL_INVAL;
    *pol = rp->has_new_clusters && strcmp(rp->new_clusters, "unassigned") == 0 ? HL_NEW_UNASSIGNED
                                                                               : HL_NEW_OPEN;
    return HL_OK;
}

hl_status srv_h_assign(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    if (atomic_load(&ctx->draining))
        return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL, "the server is shutting down");
    double t0 = srv_mono();
    char hash[33] = "";
    if (req->idem_key[0] !=
        '\0') { /* the same body sent to another clustering is another request */
        char h[33], mix[33 + SRV_ID_MAX + 8];
        srv_request_hash(req, h);
        int n = snprintf(mix, sizeof(mix), "%s%s", h, req->param);
        srv_hash_hex(mix, (size_t)n, hash);
    }
    admission a;
    memset(&a, 0, sizeof(a));
    const srv_model *model = NULL;
    hl_new_clusters pol = HL_NEW_OPEN;
    if (decode_body(ctx, req, resp, &a, 1) != HL_OK ||
        assign_params(req, resp, &a, &pol) != HL_OK ||
        resolve_clustering(ctx, req, resp, &a, &model) != HL_OK) {
        admission_free(&a);
        return HL_OK;
    }
    srv_job *j;
    hl_status st = srv_job_new(&j);
    if (st != HL_OK) {
        admission_free(&a);
        return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL, "cannot create a job: %s",
                                hl_status_str(st));
    }
    j->ctx = ctx;
    j->t_created = t0;
    snprintf(j->request_id, sizeof(j->request_id), "%s", req->request_id);
    j->model = model;
    hl_cluster_params_default(&j->params);
    j->kind = SRV_KIND_ASSIGN;
    memcpy(j->clustering, req->param, strlen(req->param) + 1); /* fits: resolve_clustering */
    j->new_clusters = pol;
    j->x = a.x;
    j->ids = a.ids;
    memset(&a, 0, sizeof(a));
    if (j->x.owned == NULL && req->body->data != NULL) {
        j->body = req->body->data;
        j->body_cap = req->body->cap;
        req->body->data = NULL;
    }
    srv_metrics_stage(ctx->metrics, SRV_STAGE_PARSE, srv_mono() - t0);
    st = admit(ctx, req, resp, j, model->name, hash); /* never cached: it changes the state */
    srv_job_release(j);
    return st;
}
