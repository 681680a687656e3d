/*
 * assign_job.c - clustering states in the service: saved when a cluster job succeeds, and
 * extended by assign jobs (POST /v1/clusterings/{id}/assign); see jobs.h.
 *
 * DESIGN
 * A cluster job's state (hl/statefile.h bytes) is stored under the job's id as version 1,
 * with the result's TTL, and its record gets state_version and state_n. An assign job:
 *   1. takes the clustering's lock in the store (token: its own id; TTL LOCK_TTL_MS), waiting
 *      with back-off while another assign holds it (polling its cancel hook, at most
 *      LOCK_WAIT_S), so assigns to one clustering run one at a time on every replica;
 *   2. reads the current version v, decodes it, runs hl_assign_run() and hl_assign_apply();
 *   3. writes version v + 1 with the store's compare-and-set (nothing when no point was kept:
 *      all unassigned). It can only lose if its lock
 *      expired and another assign wrote meanwhile; it then starts again from 2 with the newer
 *      state (at most CAS_ATTEMPTS times), so no assign is ever lost or applied twice;
 *   4. refreshes the cluster job's record (state_version, state_n, and its TTL, so the record
 *      lives as long as the state it describes) while still holding the lock, releases the
 *      lock and stores its result (labels, scores, ids).
 * Readers of the state (other assigns) see version v until v + 1 is completely written.
 */
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "result.h"

#include "hl/statefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCK_TTL_MS  300000 /* an assign holding the lock longer is covered by the CAS */
#define LOCK_WAIT_S  600.0  /* then the job fails with a timeout */
#define CAS_ATTEMPTS 3

static void nap(double seconds)
{
    struct timespec t = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&t, NULL);
}

static void log_state(srv_log_level lv, const char *msg, const char *id, const char *why)
{
    const char *kv[] = {"job_id", id, "reason", why};
    srv_log(lv, msg, kv, why != NULL ? 2 : 1);
}

/* Records a state version in the cluster job's record (and renews the record's TTL): the
 * version, the points it holds and the checksum of the model it needs. */
static void record_state(srv_ctx *ctx, const char *id, uint64_t version, size_t n, uint32_t crc,
                         uint64_t ttl)
{
    char v[24], np[24], c[12];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)version);
    snprintf(np, sizeof(np), "%zu", n);
    snprintf(c, sizeof(c), "%08x", (unsigned)crc);
    srv_field f[3] = {{"state_version", v}, {"state_n", np}, {"state_model", c}};
    hl_status st = ctx->store->ops->job_update(ctx->store, id, f, 3, NULL, ttl);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, st);
}

void srv__state_save(srv_ctx *ctx, srv_job *j, const hl_assign_state *s)
{
    if (s == NULL)
        return;
    void *buf = NULL;
    size_t len = 0;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_encode(s, &buf, &len, NULL, &e);
    if (st == HL_OK) {
        st = ctx->store->ops->state_put(ctx->store, j->id, buf, len, 1, ctx->cfg->result_ttl);
        srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_PUT, st);
        if (st == HL_BUSY) /* an earlier attempt of this job saved the same state */
            st = HL_OK;
    }
    free(buf);
    if (st == HL_OK)
        record_state(ctx, j->id, 1, s->n, s->model_checksum, 0);
    else
        log_state(SRV_LOG_WARN, "clustering state not saved: assigns to this job will answer 404",
                  j->id, e.msg[0] != '\0' ? e.msg : hl_status_str(st));
}

void srv__state_copy(srv_ctx *ctx, const char *src, srv_job *j)
{
    srv_store *s = ctx->store;
    void *buf = NULL;
    size_t len = 0;
    uint64_t v = 0;
    srv_record r;
    memset(&r, 0, sizeof(r));
    hl_status st = s->ops->state_get(s, src, &buf, &len, &v);
    if (st == HL_OK && v != 1)
        st = HL_BUSY; /* assigns changed it: it is no longer this request's clustering */
    if (st == HL_OK)
        st = s->ops->job_get(s, src, &r);
    const char *n = st == HL_OK ? srv_record_get(&r, "state_n") : NULL;
    const char *crc = st == HL_OK ? srv_record_get(&r, "state_model") : NULL;
    if (st == HL_OK && (n == NULL || crc == NULL))
        st = HL_NOTFOUND;
    if (st == HL_OK)
        st = s->ops->state_put(s, j->id, buf, len, 1, ctx->cfg->result_ttl);
    if (st == HL_OK)
        record_state(ctx, j->id, 1, (size_t)strtoull(n, NULL, 10), (uint32_t)strtoul(crc, NULL, 16),
                     0);
    else
        log_state(SRV_LOG_INFO, "cached clustering without a state: assigns will answer 404", j->id,
                  st == HL_BUSY ? "the source's state has changed" : hl_status_str(st));
    srv_record_free(&r);
    free(buf);
}

/* Step 1: the clustering's lock. */
static hl_status take_lock(srv_ctx *ctx, srv_job *j, hl_error *err)
{
    hl_cancel cancel = srv__job_cancel_hook(j);
    double start = srv_mono(), wait = 0.01;
    for (;;) {
        hl_status st = ctx->store->ops->lock(ctx->store, j->clustering, j->id, LOCK_TTL_MS);
        if (st == HL_OK)
            return HL_OK;
        if (st != HL_BUSY)
            return hl_error_set(err, st, NULL, "the store failed taking the clustering's lock: %s",
                                hl_status_str(st));
        if (hl_cancel_requested(&cancel))
            return hl_error_set(err, HL_CANCELED, NULL, "canceled");
        if (srv_mono() - start > LOCK_WAIT_S)
            return hl_error_set(err, HL_TIMEOUT, NULL,
                                "another assign held clustering '%s' for over %.0f s",
                                j->clustering, LOCK_WAIT_S);
        nap(wait);
        wait = wait * 2 < 0.2 ? wait * 2 : 0.2;
    }
}

/* Step 2 on one version: the assignment, applied; the next version's bytes in *out. */
static hl_status assign_once(srv_ctx *ctx, srv_job *j, const void *buf, size_t len,
                             hl_assignment **a, void **out, size_t *out_len, size_t *n_state,
                             hl_error *err)
{
    hl_assign_state *s = NULL;
    hl_error local;
    hl_error_clear(&local);
    hl_status st = hl_statefile_decode(buf, len, &s, &local);
    if (st != HL_OK)
        return hl_error_set(err, HL_INTERNAL, NULL, "the stored clustering state is corrupt: %s",
                            local.msg);
    hl_assign_params p;
    hl_assign_params_default(&p);
    p.new_clusters = j->new_clusters;
    p.model_checksum = j->model != NULL ? j->model->checksum : 0;
    p.n_threads = ctx->cfg->engine_threads;
    p.cancel = srv__job_cancel_hook(j);
    p.progress = srv__job_progress_hook(j);
    st = hl_assign_run(s, j->model != NULL ? j->model->m : NULL, j->x.data, j->x.rows, j->x.cols,
                       &p, a, err);
    if (st == HL_OK)
        st = hl_assign_apply(s, *a, err);
    if (st == HL_OK)
        st = hl_statefile_encode(s, out, out_len, NULL, err);
    if (st == HL_OK)
        *n_state = s->n;
    hl_assign_state_free(s);
    return st;
}

/* Step 4: the job's result. */
static hl_status store_assign_result(srv_ctx *ctx, srv_job *j, const hl_assignment *a,
                                     uint64_t version)
{
    srv_assign_result r;
    memset(&r, 0, sizeof(r));
    r.n = a->n;
    r.labels = a->labels;
    r.scores = a->scores;
    snprintf(r.clustering, sizeof(r.clustering), "%s", j->clustering);
    r.version = version;
    r.attached = a->n_attached;
    r.new_clusters = a->n_new_clusters;
    r.unassigned = a->n_unassigned;
    char *ids = NULL;
    hl_status st = HL_OK;
    if (j->ids != NULL)
        st = srv_ids_pack(j->ids, j->x.rows, &ids, &r.ids_bytes);
    r.ids = ids;
    void *buf = NULL;
    size_t len = 0;
    if (st == HL_OK)
        st = srv_assign_result_encode(&r, &buf, &len);
    free(ids);
    if (st == HL_OK) {
        st = ctx->store->ops->result_put(ctx->store, j->id, buf, len, ctx->cfg->result_ttl);
        srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_PUT, st);
    }
    free(buf);
    return st;
}

/* Steps 2-3 under the lock; *a and *version describe the write that won. */
static hl_status assign_locked(srv_ctx *ctx, srv_job *j, hl_assignment **a, uint64_t *version,
                               size_t *n_state, hl_error *err)
{
    srv_store *s = ctx->store;
    hl_status st = HL_BUSY;
    for (int attempt = 0; attempt < CAS_ATTEMPTS && st == HL_BUSY; attempt++) {
        void *buf = NULL, *next = NULL;
        size_t len = 0, next_len = 0;
        uint64_t v = 0;
        st = s->ops->state_get(s, j->clustering, &buf, &len, &v);
        srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_GET, st);
        if (st == HL_NOTFOUND)
            return hl_error_set(err, HL_NOTFOUND, "clustering",
                                "the state of clustering '%s' is gone (expired or deleted)",
                                j->clustering);
        if (st != HL_OK)
            return hl_error_set(err, st, NULL, "reading the clustering state failed: %s",
                                hl_status_str(st));
        hl_assignment_free(*a);
        *a = NULL;
        st = assign_once(ctx, j, buf, len, a, &next, &next_len, n_state, err);
        free(buf);
        if (st == HL_OK && (*a)->n_kept == 0) { /* nothing to add: the version stays */
            *version = v;
            free(next);
            return HL_OK;
        }
        if (st == HL_OK) {
            srv_field f[3] = {{"stage", "store"}, {"level", "0"}, {"fraction", "0"}};
            s->ops->job_update(s, j->id, f, 3, "running", 0);
            st = s->ops->state_put(s, j->clustering, next, next_len, v + 1, ctx->cfg->result_ttl);
            srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_PUT, st);
            if (st == HL_BUSY)
                log_state(SRV_LOG_WARN, "assign lost the state's compare-and-set: retrying", j->id,
                          "the lock expired and another assign wrote first");
            *version = v + 1;
        }
        free(next);
    }
    if (st == HL_BUSY)
        return hl_error_set(err, HL_BUSY, NULL,
                            "clustering '%s' changed under this assign %d times", j->clustering,
                            CAS_ATTEMPTS);
    if (st != HL_OK && err->code == HL_OK)
        hl_error_set(err, st, NULL, "writing the clustering state failed: %s", hl_status_str(st));
    return st;
}

hl_status srv__assign_execute(srv_ctx *ctx, srv_job *j, hl_error *err)
{
    double t0 = srv_mono();
    hl_status st = take_lock(ctx, j, err);
    if (st != HL_OK)
        return st;
    hl_assignment *a = NULL;
    uint64_t version = 0;
    size_t n_state = 0;
    st = assign_locked(ctx, j, &a, &version, &n_state, err);
    /* The record is written under the lock: the next assign's write comes after it, so the
     * record's state_version never goes back. */
    if (st == HL_OK)
        record_state(ctx, j->clustering, version, n_state,
                     j->model != NULL ? j->model->checksum : 0, ctx->cfg->result_ttl);
    hl_status us = ctx->store->ops->unlock(ctx->store, j->clustering, j->id);
    if (us != HL_OK && us != HL_NOTFOUND)
        log_state(SRV_LOG_WARN, "releasing the clustering's lock failed (it expires)", j->id,
                  hl_status_str(us));
    if (st == HL_OK) {
        srv_metrics_computed(ctx->metrics);
        srv_metrics_points(ctx->metrics, j->x.rows);
        st = store_assign_result(ctx, j, a, version);
        if (st != HL_OK)
            hl_error_set(err, st, NULL, "storing the result failed: %s", hl_status_str(st));
    }
    srv_metrics_stage(ctx->metrics, SRV_STAGE_STORE, srv_mono() - t0);
    hl_assignment_free(a);
    return st;
}
