/*
 * assign_job.c - clustering states in the service: saved when a cluster job succeeds, and
 * extended by assign jobs (POST /v1/clusterings/{id}/assign); see jobs.h.
 *
 * DESIGN
 * A cluster job's state (hl/statefile.h bytes) is stored under the job's id as version 1 (a
 * base), with the result's TTL, and its record gets state_version and state_n. The decoded
 * state also goes to this replica's state cache (state_cache.h) as version 1. An assign job:
 *   1. takes the clustering's lock in the store (token: its own id; TTL LOCK_TTL_MS), waiting
 *      with back-off while another assign holds it (polling its cancel hook, at most
 *      LOCK_WAIT_S), so assigns to one clustering run one at a time on every replica;
 *   2. reads the head of the current version v (version and tag: one small request) and takes
 *      the decoded state of exactly (v, tag) from the cache; on a miss (restart, another
 *      replica wrote since, evicted) it reads the whole chain (base + deltas) and decodes it,
 *      every CRC checked. It runs hl_assign_run() and hl_assign_apply() on that state;
 *   3. writes version v + 1 with the store's compare-and-set (nothing when no point was kept:
 *      all unassigned): as a delta (the rows the assign added, O(batch) bytes), or as a new
 *      base (compaction) when the chain would pass SRV_STATE_MAX_DELTAS deltas or its deltas
 *      would pass COMPACT_NUM/COMPACT_DEN of the base's bytes, so a cold reader never replays
 *      more than base * (1 + COMPACT_NUM/COMPACT_DEN). It can only lose if its lock expired and
 *      another assign wrote meanwhile; it then drops its (changed) state and starts again from
 *      2 with the newer version (at most CAS_ATTEMPTS times), so no assign is ever lost or
 *      applied twice. Once written, the state goes back to the cache as (v + 1, new tag);
 *   4. refreshes the cluster job's record (state_version, state_n, and its TTL, so the record
 *      lives as long as the state it describes) while still holding the lock, releases the
 *      lock and stores its result (labels, scores, ids).
 * Readers of the state (other assigns) see version v until v + 1 is completely written.
 */
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "result.h"
#include "state_cache.h"

#include "hl/statefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCK_TTL_MS  300000 /* an assign holding the lock longer is covered by the CAS */
#define LOCK_WAIT_S  600.0  /* then the job fails with a timeout */
#define CAS_ATTEMPTS 3
#define COMPACT_NUM  1 /* a new base once the deltas pass 1/2 of the base's bytes */
#define COMPACT_DEN  2

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

void srv__state_save(srv_ctx *ctx, srv_job *j, hl_assign_state *s)
{
    if (s == NULL)
        return;
    void *buf = NULL;
    size_t len = 0;
    uint64_t tag = 0;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_encode(s, &buf, &len, NULL, &e);
    if (st == HL_OK) {
        st = ctx->store->ops->state_put(ctx->store, j->id, buf, len, 1, ctx->cfg->result_ttl, &tag);
        srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_PUT, st);
        if (st == HL_BUSY) { /* an earlier attempt of this job saved the same state */
            st = HL_OK;
            tag = 0; /* not known here: the cache would never match it */
        }
    }
    free(buf);
    if (st == HL_OK) {
        record_state(ctx, j->id, 1, s->n, s->model_checksum, 0);
        if (tag != 0)
            srv_state_cache_put(ctx->state_cache, j->id, 1, tag, s);
        else
            hl_assign_state_free(s);
    } else {
        hl_assign_state_free(s);
        log_state(SRV_LOG_WARN, "clustering state not saved: assigns to this job will answer 404",
                  j->id, e.msg[0] != '\0' ? e.msg : hl_status_str(st));
    }
}

void srv__state_copy(srv_ctx *ctx, const char *src, srv_job *j)
{
    srv_store *s = ctx->store;
    srv_record r;
    memset(&r, 0, sizeof(r));
    /* The record first, then the clone: the clone is refused unless the state is still
     * version 1, so the numbers read here describe what gets cloned. */
    hl_status st = s->ops->job_get(s, src, &r);
    const char *n = st == HL_OK ? srv_record_get(&r, "state_n") : NULL;
    const char *crc = st == HL_OK ? srv_record_get(&r, "state_model") : NULL;
    if (st == HL_OK && (n == NULL || crc == NULL))
        st = HL_NOTFOUND;
    /* Store-side: the bytes (~1.5 KB a point) never pass through this thread, which may be
     * an HTTP thread answering the request. HL_BUSY when assigns changed the source's state:
     * it is no longer this request's clustering. */
    if (st == HL_OK)
        st = s->ops->state_clone(s, src, j->id, 1, ctx->cfg->result_ttl, NULL);
    if (st == HL_OK)
        record_state(ctx, j->id, 1, (size_t)strtoull(n, NULL, 10), (uint32_t)strtoul(crc, NULL, 16),
                     0);
    else
        log_state(SRV_LOG_INFO, "cached clustering without a state: assigns will answer 404", j->id,
                  st == HL_BUSY ? "the source's state has changed" : hl_status_str(st));
    srv_record_free(&r);
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

/* The error of a failed read of the clustering's state (head or chain). */
static hl_status state_read_failed(const srv_job *j, hl_status st, hl_error *err)
{
    if (st == HL_NOTFOUND)
        return hl_error_set(err, HL_NOTFOUND, "clustering",
                            "the state of clustering '%s' is gone (expired or deleted)",
                            j->clustering);
    return hl_error_set(err, st, NULL, "reading the clustering state failed: %s",
                        hl_status_str(st));
}

/* Step 2, the state: from the cache when it holds exactly the version `h` names, else rebuilt
 * from the store's chain (then *h is the head of the version read, which may be newer). */
static hl_status load_state(srv_ctx *ctx, srv_job *j, srv_state_head *h, hl_assign_state **out,
                            hl_error *err)
{
    *out = srv_state_cache_take(ctx->state_cache, j->clustering, h->version, h->tag);
    srv_metrics_state_cache(ctx->metrics, *out != NULL);
    if (*out != NULL)
        return HL_OK;
    srv_store *s = ctx->store;
    srv_state_chain c;
    memset(&c, 0, sizeof(c));
    hl_status st = s->ops->state_get(s, j->clustering, &c);
    srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_GET, st);
    if (st != HL_OK)
        return state_read_failed(j, st, err);
    hl_error local;
    hl_error_clear(&local);
    st = hl_statefile_decode_chain(c.base, c.base_len, (const void *const *)c.deltas, c.delta_lens,
                                   c.head.n_deltas, out, &local);
    *h = c.head;
    srv_state_chain_free(&c);
    if (st != HL_OK)
        return hl_error_set(err, HL_INTERNAL, NULL,
                            "the stored clustering state (version %llu) is corrupt: %s",
                            (unsigned long long)h->version, local.msg);
    return HL_OK;
}

/* Step 2 on one state: the assignment, applied. On failure the state is unchanged. */
static hl_status assign_once(srv_ctx *ctx, srv_job *j, hl_assign_state *s, hl_assignment **a,
                             hl_error *err)
{
    hl_assign_params p;
    hl_assign_params_default(&p);
    p.new_clusters = j->new_clusters;
    p.model_checksum = j->model != NULL ? j->model->checksum : 0;
    p.n_threads = ctx->cfg->engine_threads;
    p.cancel = srv__job_cancel_hook(j);
    p.progress = srv__job_progress_hook(j);
    hl_status st = hl_assign_run(s, j->model != NULL ? j->model->m : NULL, j->x.data, j->x.rows,
                                 j->x.cols, &p, a, err);
    if (st == HL_OK && (*a)->n_kept > 0)
        st = hl_assign_apply(s, *a, err);
    return st;
}

/* Step 3: writes the state (grown since `mark`) as version h->version + 1, a delta or a new
 * base; *tag the new version's tag. HL_BUSY when another write came first. */
static hl_status write_next(srv_ctx *ctx, srv_job *j, const hl_assign_state *s,
                            const hl_statefile_mark *mark, const srv_state_head *h, uint64_t *tag,
                            hl_error *err)
{
    srv_store *store = ctx->store;
    uint64_t v = h->version + 1, ttl = ctx->cfg->result_ttl;
    void *buf = NULL;
    size_t len = 0;
    hl_status st = hl_statefile_delta_encode(s, mark, &buf, &len, err);
    if (st != HL_OK)
        return st;
    int base =
        h->n_deltas + 1 > SRV_STATE_MAX_DELTAS ||
        (uint64_t)(h->delta_bytes + len) * COMPACT_DEN > (uint64_t)h->base_bytes * COMPACT_NUM;
    if (!base) {
        st = store->ops->state_append(store, j->clustering, buf, len, v, ttl, tag);
        base = st == HL_RANGE; /* the chain is full after all: compact */
    }
    free(buf);
    if (base) {
        st = hl_statefile_encode(s, &buf, &len, NULL, err);
        if (st == HL_OK)
            st = store->ops->state_put(store, j->clustering, buf, len, v, ttl, tag);
        free(buf);
    }
    srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_PUT, st);
    if (st == HL_OK)
        srv_metrics_state_write(ctx->metrics, base);
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
        srv_state_head h;
        st = s->ops->state_head(s, j->clustering, &h);
        srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_GET, st);
        if (st != HL_OK)
            return state_read_failed(j, st, err);
        hl_assign_state *state = NULL;
        st = load_state(ctx, j, &h, &state, err);
        if (st != HL_OK)
            return st;
        hl_assignment_free(*a);
        *a = NULL;
        hl_statefile_mark mark;
        hl_statefile_mark_of(state, &mark);
        st = assign_once(ctx, j, state, a, err);
        if (st != HL_OK || (*a)->n_kept == 0) { /* the state is unchanged: keep it */
            *version = h.version;
            *n_state = state->n;
            srv_state_cache_put(ctx->state_cache, j->clustering, h.version, h.tag, state);
            return st;
        }
        srv_field f[3] = {{"stage", "store"}, {"level", "0"}, {"fraction", "0"}};
        s->ops->job_update(s, j->id, f, 3, "running", 0);
        uint64_t tag = 0;
        st = write_next(ctx, j, state, &mark, &h, &tag, err);
        *n_state = state->n;
        if (st == HL_OK) {
            *version = h.version + 1;
            srv_state_cache_put(ctx->state_cache, j->clustering, h.version + 1, tag, state);
        } else {
            hl_assign_state_free(state); /* it holds points no stored version has */
        }
        if (st == HL_BUSY)
            log_state(SRV_LOG_WARN, "assign lost the state's compare-and-set: retrying", j->id,
                      "the lock expired and another assign wrote first");
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
