/*
 * stream_jobs.c - the claimer thread and the run of a claimed job (see stream_jobs.h for the
 * protocol and the order of its steps).
 *
 * Failure handling: every Redis call has the store's timeout. When Redis is unreachable the
 * claimer backs off (100 ms doubling to 2 s) and tries again, logging once when it goes away
 * and once when it is back; it never exits early and never crashes. A consumer group that
 * vanished (Redis restarted without its data) is created again.
 *
 * Lock order: this file owns no lock. It calls the job table and the queue (leaf locks) and
 * the store (its own leaf lock), one at a time and never around a Redis call or a log line.
 */
#include "stream_jobs.h"

#include "jobspec.h"
#include "log.h"
#include "metrics.h"
#include "store_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define MAX_CLAIM        64  /* entries read per XREADGROUP / XAUTOCLAIM */
#define MAX_TOUCH        256 /* entries refreshed per round */
#define BLOCK_MS         500 /* XREADGROUP BLOCK (under the store's 2 s timeout) */
#define AUTOCLAIM_PERIOD 1.0 /* seconds between XAUTOCLAIM rounds (at most) */
#define BACKOFF_MIN      0.1 /* seconds */
#define BACKOFF_MAX      2.0 /* seconds */
#define IDLE_MS          20  /* nap when there is nothing to do */

struct srv_claimer {
    srv_ctx *ctx;
    uv_thread_t thread;
    atomic_int stop;
    int started;
    /* claimer thread only */
    int group_ready;
    int released; /* the queued jobs were handed back (draining) */
    int down;     /* Redis was unreachable at the last try (for the log) */
    double backoff;
};

static void nap(double seconds)
{
    struct timespec t = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&t, NULL);
}

static long long claim_timeout_ms(const srv_ctx *ctx)
{
    return (long long)ctx->cfg->claim_timeout * 1000;
}

static void log_job(srv_log_level lv, const char *msg, const srv_job *j, const char *why)
{
    const char *kv[] = {"job_id",  j->id,           "entry",  j->entry,
                        "replica", j->ctx->replica, "reason", why};
    srv_log(lv, msg, kv, why != NULL ? 4 : 3);
}

/* ---------------------------------------------------------------- submit */

hl_status srv_stream_put_input(srv_ctx *ctx, const srv_job *j)
{
    void *spec = NULL;
    size_t len = 0;
    hl_status st = srv_jobspec_encode(j, &spec, &len);
    if (st != HL_OK)
        return st;
    /* The input outlives an unclaimed job by at most the result TTL plus a day. */
    st = ctx->store->ops->input_put(ctx->store, j->id, spec, len, ctx->cfg->result_ttl + 86400);
    free(spec);
    return st;
}

hl_status srv_stream_submit(srv_ctx *ctx, const srv_job *j)
{
    return srv_redis_stream_add(ctx->store, j->id);
}

/* ---------------------------------------------------------------- the run of one job */

typedef enum outcome {
    OUT_ACK,      /* the job ended (or is gone): XACK + XDEL, delete the input */
    OUT_LEAVE,    /* leave the entry pending: the claim timeout brings it back */
    OUT_RELEASE,  /* hand it back now; the attempt does not count */
    OUT_UNSTARTED /* hand it back now; no attempt was counted */
} outcome;

/* Past --max-attempts: the job fails with a problem saying so. */
static outcome give_up(srv_ctx *ctx, srv_job *j, long long attempts)
{
    char ts[32], ej[512];
    srv_now_rfc3339(ts);
    hl_error e;
    hl_error_clear(&e);
    hl_error_set(&e, HL_UNAVAILABLE, NULL,
                 "the job was claimed %lld times without finishing (--max-attempts %d): the "
                 "replicas running it stopped or crashed",
                 attempts - 1, ctx->cfg->max_attempts);
    srv__job_error_json(HL_UNAVAILABLE, &e, ej, sizeof(ej));
    srv_field f[3] = {{"status", "failed"}, {"finished_at", ts}, {"error", ej}};
    hl_status st = ctx->store->ops->job_update(ctx->store, j->id, f, 3, "queued,running",
                                               ctx->cfg->result_ttl);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, st);
    if (st == HL_OK) {
        srv_metrics_job_end(ctx->metrics, SRV_JOB_FAILED);
        log_job(SRV_LOG_WARN, "job failed: attempt limit reached", j, e.msg);
    }
    return st == HL_OK || st == HL_BUSY || st == HL_NOTFOUND ? OUT_ACK : OUT_LEAVE;
}

/* Counts the attempt and marks the record running on this replica. Returns 1 to go on. */
static int begin(srv_ctx *ctx, srv_job *j, outcome *out)
{
    srv_store *s = ctx->store;
    long long attempts = 0;
    hl_status st = s->ops->job_incr(s, j->id, "attempts", 1, "queued,running", &attempts);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, st);
    if (st != HL_OK) {
        *out = st == HL_NOTFOUND || st == HL_BUSY ? OUT_ACK : OUT_LEAVE; /* ended or gone */
        return 0;
    }
    if (attempts > ctx->cfg->max_attempts) {
        *out = give_up(ctx, j, attempts);
        return 0;
    }
    char ts[32];
    srv_now_rfc3339(ts);
    srv_field f[6] = {{"status", "running"}, {"replica", ctx->replica},
                      {"started_at", ts},    {"stage", "knn"},
                      {"level", "0"},        {"fraction", "0"}};
    st = s->ops->job_update(s, j->id, f, 6, "queued,running", 0);
    srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, st);
    if (st != HL_OK) {
        *out = st == HL_NOTFOUND || st == HL_BUSY ? OUT_ACK : OUT_LEAVE;
        return 0;
    }
    atomic_store(&j->status, SRV_JOB_RUNNING);
    j->t_started = srv_mono();
    srv_metrics_stage(ctx->metrics, SRV_STAGE_QUEUED, j->t_started - j->t_created);
    char n[24];
    snprintf(n, sizeof(n), "#%lld", attempts);
    const char *kv[] = {"job_id", j->id, "entry", j->entry, "replica", ctx->replica, "attempt", n};
    srv_log(SRV_LOG_INFO, "job claimed", kv, 4);
    return 1;
}

/* Loads the input and resolves the model; a failure that is not the store's fails the job. */
static hl_status load(srv_ctx *ctx, srv_job *j, hl_error *err)
{
    void *buf = NULL;
    size_t len = 0;
    hl_status st = ctx->store->ops->input_get(ctx->store, j->id, &buf, &len);
    srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_GET, st);
    if (st == HL_NOTFOUND)
        return hl_error_set(err, HL_INTERNAL, NULL, "the job's input is gone from the store");
    if (st != HL_OK)
        return hl_error_set(err, st, NULL, "reading the job's input failed: %s", hl_status_str(st));
    char model[64];
    uint32_t checksum = 0;
    st = srv_jobspec_decode(buf, len, j, model, &checksum);
    if (st != HL_OK)
        return hl_error_set(err, HL_INTERNAL, NULL, "the job's stored input is malformed");
    j->model = srv_models_find(ctx->models, model);
    if (j->model == NULL || j->model->checksum != checksum)
        return hl_error_set(err, HL_INTERNAL, "model",
                            "replica %s has no model '%s' with checksum %08x", ctx->replica, model,
                            (unsigned)checksum);
    return HL_OK;
}

/* Store trouble and memory are worth another attempt; bad input is not. */
static int transient(hl_status st)
{
    return st == HL_UNAVAILABLE || st == HL_NOMEM || st == HL_BUSY || st == HL_IO ||
           st == HL_TIMEOUT;
}

static outcome ended(hl_status fst)
{
    return fst == HL_OK || fst == HL_BUSY || fst == HL_NOTFOUND ? OUT_ACK : OUT_LEAVE;
}

static outcome run_claimed(srv_ctx *ctx, srv_job *j)
{
    int stop = atomic_load(&j->cancel);
    if (stop == SRV_STOP_LOST)
        return OUT_LEAVE;
    if (stop == SRV_STOP_ABANDON || atomic_load(&ctx->draining) != 0)
        return OUT_UNSTARTED;
    outcome out = OUT_LEAVE;
    if (!begin(ctx, j, &out))
        return out;
    srv_metrics_running(ctx->metrics, 1);
    hl_error err;
    hl_error_clear(&err);
    hl_status st = load(ctx, j, &err);
    if (st == HL_OK)
        st = srv__job_execute(ctx, j, &err);
    srv_metrics_running(ctx->metrics, -1);
    stop = atomic_load(&j->cancel);
    if (st == HL_CANCELED && stop == SRV_STOP_ABANDON)
        return OUT_RELEASE;
    if (st == HL_CANCELED && stop == SRV_STOP_LOST) {
        log_job(SRV_LOG_WARN, "job stopped: another replica ended or took it", j, NULL);
        return OUT_LEAVE;
    }
    if (st == HL_OK)
        return ended(srv__job_finish(ctx, j, SRV_JOB_SUCCEEDED, NULL));
    if (st == HL_CANCELED)
        return ended(srv__job_finish(ctx, j, SRV_JOB_CANCELED, NULL));
    if (transient(st)) {
        log_job(SRV_LOG_WARN, "job left for another attempt", j, err.msg);
        return OUT_LEAVE;
    }
    char ej[512];
    srv__job_error_json(st, &err, ej, sizeof(ej));
    return ended(srv__job_finish(ctx, j, SRV_JOB_FAILED, ej));
}

/* Hands an entry back; with `uncount` the attempt counted by begin() is taken back. */
static void hand_back(srv_ctx *ctx, srv_job *j, int uncount)
{
    hl_status st =
        srv_redis_stream_release(ctx->store, ctx->replica, j->entry, claim_timeout_ms(ctx) + 1000);
    if (uncount) {
        hl_status is =
            ctx->store->ops->job_incr(ctx->store, j->id, "attempts", -1, "running", NULL);
        srv_metrics_store_result(ctx->metrics, SRV_OP_JOB_UPDATE, is);
    }
    log_job(SRV_LOG_INFO, "job handed back to the stream", j,
            st == HL_OK ? "shutdown" : "shutdown (not ours any more, or Redis unreachable)");
}

void srv_stream_run_job(srv_ctx *ctx, srv_job *j)
{
    outcome out = run_claimed(ctx, j);
    if (out == OUT_ACK) {
        hl_status st = srv_redis_stream_ack(ctx->store, j->entry);
        if (st != HL_OK)
            log_job(SRV_LOG_WARN, "XACK failed: the entry will be claimed again", j,
                    hl_status_str(st));
        st = ctx->store->ops->input_delete(ctx->store, j->id);
        srv_metrics_store_result(ctx->metrics, SRV_OP_RESULT_DELETE, st);
    } else if (out == OUT_RELEASE || out == OUT_UNSTARTED) {
        hand_back(ctx, j, out == OUT_RELEASE);
    }
    srv_job_drop_input(j);
    srv_jobs_remove(ctx->jobs, j->id);
    atomic_fetch_sub(&ctx->stream_busy, 1);
    if (ctx->job_done != NULL)
        ctx->job_done(ctx, j->id);
}

void srv_stream_release_queued(srv_ctx *ctx, srv_job **left, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hand_back(ctx, left[i], 0);
        srv_jobs_remove(ctx->jobs, left[i]->id);
        atomic_fetch_sub(&ctx->stream_busy, 1);
        srv_job_release(left[i]);
    }
}

void srv_stream_abandon_running(srv_ctx *ctx)
{
    srv_job *v[MAX_TOUCH];
    size_t n = srv_jobs_snapshot(ctx->jobs, v, MAX_TOUCH);
    for (size_t i = 0; i < n; i++) {
        int none = SRV_STOP_NONE;
        if (v[i]->entry[0] != '\0')
            atomic_compare_exchange_strong(&v[i]->cancel, &none, SRV_STOP_ABANDON);
        srv_job_release(v[i]);
    }
}

/* ---------------------------------------------------------------- the claimer */

/* Makes a job shell for a claimed entry and queues it for the workers. */
static void take(srv_claimer *c, const srv_stream_msg *m)
{
    srv_ctx *ctx = c->ctx;
    srv_job *dup = srv_jobs_find(ctx->jobs, m->job);
    if (dup != NULL) { /* already ours (reclaimed from ourselves): keep the one we have */
        srv_job_release(dup);
        return;
    }
    srv_job *j = NULL;
    if (strlen(m->job) >= sizeof(j->id)) {
        srv_redis_stream_ack(ctx->store, m->entry); /* not a job id: drop the junk entry */
        return;
    }
    if (srv_job_new(&j) != HL_OK)
        return;                                /* stays pending: claimed again after the timeout */
    memcpy(j->id, m->job, strlen(m->job) + 1); /* checked above */
    memcpy(j->entry, m->entry, sizeof(j->entry));
    j->ctx = ctx;
    j->t_created = srv_mono();
    atomic_fetch_add(&ctx->stream_busy, 1);
    if (srv_jobs_add(ctx->jobs, j) != HL_OK || srv_jobq_push(ctx->queue, j) != HL_OK) {
        hand_back(ctx, j, 0);
        srv_jobs_remove(ctx->jobs, j->id);
        atomic_fetch_sub(&ctx->stream_busy, 1);
    }
    srv_job_release(j);
}

static size_t free_workers(const srv_claimer *c)
{
    int busy = atomic_load(&c->ctx->stream_busy);
    int n = c->ctx->cfg->workers - busy;
    if (n <= 0)
        return 0;
    return (size_t)n < MAX_CLAIM ? (size_t)n : MAX_CLAIM;
}

/* Refreshes the entries this replica holds; marks the ones it lost. */
static hl_status touch(srv_claimer *c)
{
    srv_job *v[MAX_TOUCH];
    srv_stream_msg m[MAX_TOUCH];
    int lost[MAX_TOUCH];
    size_t n = srv_jobs_snapshot(c->ctx->jobs, v, MAX_TOUCH), k = 0;
    srv_job *mine[MAX_TOUCH];
    for (size_t i = 0; i < n; i++) {
        if (v[i]->entry[0] != '\0') {
            _Static_assert(sizeof(m[k].entry) == sizeof(v[i]->entry), "entry sizes");
            memcpy(m[k].entry, v[i]->entry, sizeof(m[k].entry));
            memcpy(m[k].job, v[i]->id, sizeof(v[i]->id));
            mine[k++] = v[i];
        }
    }
    hl_status st = srv_redis_stream_touch(c->ctx->store, c->ctx->replica, m, k, lost);
    for (size_t i = 0; st == HL_OK && i < k; i++) {
        if (lost[i]) {
            int none = SRV_STOP_NONE;
            atomic_compare_exchange_strong(&mine[i]->cancel, &none, SRV_STOP_LOST);
        }
    }
    for (size_t i = 0; i < n; i++)
        srv_job_release(v[i]);
    return st;
}

static hl_status claim_new(srv_claimer *c, size_t want, int block_ms)
{
    srv_stream_msg m[MAX_CLAIM];
    size_t n = 0;
    hl_status st = srv_redis_stream_read(c->ctx->store, c->ctx->replica, want, block_ms, m, &n);
    for (size_t i = 0; i < n; i++)
        take(c, &m[i]);
    return st;
}

static hl_status claim_idle(srv_claimer *c, size_t want)
{
    srv_stream_msg m[MAX_CLAIM];
    size_t n = 0;
    hl_status st = srv_redis_stream_autoclaim(c->ctx->store, c->ctx->replica,
                                              claim_timeout_ms(c->ctx), want, m, &n);
    for (size_t i = 0; i < n; i++) {
        const char *kv[] = {"job_id", m[i].job, "entry", m[i].entry, "replica", c->ctx->replica};
        srv_log(SRV_LOG_WARN, "reclaimed an idle job (its replica stopped refreshing it)", kv, 3);
        take(c, &m[i]);
    }
    return st;
}

/* Logs reachability changes once and sets the backoff after a failed round. */
static void note(srv_claimer *c, hl_status st)
{
    if (st == HL_OK) {
        if (c->down)
            srv_log(SRV_LOG_INFO, "job stream reachable again", NULL, 0);
        c->down = 0;
        c->backoff = 0;
        return;
    }
    if (st == HL_NOTFOUND)
        c->group_ready = 0; /* NOGROUP: Redis lost the group; create it again */
    if (!c->down) {
        char why[192];
        srv_store_redis_last_error(c->ctx->store, why, sizeof(why));
        const char *kv[] = {"status", hl_status_str(st), "reason", why};
        srv_log(SRV_LOG_WARN, "job stream unreachable: retrying with backoff", kv, 2);
    }
    c->down = 1;
    c->backoff = c->backoff < BACKOFF_MIN ? BACKOFF_MIN : c->backoff * 2;
    if (c->backoff > BACKOFF_MAX)
        c->backoff = BACKOFF_MAX;
}

/* On the first round after SIGTERM: hand back the claimed jobs that have not started. */
static void release_on_drain(srv_claimer *c)
{
    if (c->released || !atomic_load(&c->ctx->draining))
        return;
    c->released = 1;
    srv_job **left = NULL;
    size_t n = 0;
    srv_jobq_close(c->ctx->queue, &left, &n);
    srv_stream_release_queued(c->ctx, left, n);
    free(left);
}

/* One round: refresh held entries when due, then take new and idle entries. */
static hl_status round_once(srv_claimer *c, double *next_touch, double *next_autoclaim)
{
    double now = srv_mono();
    hl_status st = HL_OK;
    if (!c->group_ready) {
        st = srv_redis_stream_setup(c->ctx->store);
        c->group_ready = st == HL_OK;
    }
    double touch_period = (double)c->ctx->cfg->claim_timeout / 3.0;
    if (st == HL_OK && now >= *next_touch) {
        st = touch(c);
        *next_touch = now + touch_period;
    }
    release_on_drain(c);
    if (st != HL_OK || c->released) {
        if (st == HL_OK)
            nap(IDLE_MS / 1000.0);
        return st;
    }
    size_t want = free_workers(c);
    double ac_period = touch_period < AUTOCLAIM_PERIOD ? touch_period : AUTOCLAIM_PERIOD;
    if (want > 0 && now >= *next_autoclaim) {
        st = claim_idle(c, want);
        *next_autoclaim = now + ac_period;
        want = free_workers(c);
    }
    if (st == HL_OK && want > 0)
        st = claim_new(c, want, BLOCK_MS);
    else if (st == HL_OK)
        nap(IDLE_MS / 1000.0);
    return st;
}

static void claimer_main(void *arg)
{
    srv_claimer *c = arg;
    double next_touch = 0, next_autoclaim = 0;
    while (!atomic_load(&c->stop)) { /* each round is bounded by the store's timeouts */
        hl_status st = round_once(c, &next_touch, &next_autoclaim);
        note(c, st);
        for (double slept = 0; slept < c->backoff && !atomic_load(&c->stop); slept += 0.05)
            nap(0.05);
    }
}

hl_status srv_claimer_start(srv_ctx *ctx, srv_claimer **out)
{
    srv_claimer *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return HL_NOMEM;
    c->ctx = ctx;
    atomic_init(&c->stop, 0);
    if (uv_thread_create(&c->thread, claimer_main, c) != 0) {
        free(c);
        return HL_INTERNAL;
    }
    c->started = 1;
    *out = c;
    return HL_OK;
}

void srv_claimer_join(srv_claimer *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, 1);
    if (c->started)
        uv_thread_join(&c->thread);
    free(c);
}
