/*
 * jobs.h - jobs in this process: the job struct, the table of unfinished jobs, the state
 * machine over the store's records, and the bounded queue the workers pop.
 *
 * A job is refcounted (stdatomic): the table, the queue, a worker and a waiting connection
 * each hold a reference. Its state lives in the store record ("status" field) and moves
 * queued -> running -> succeeded | failed | canceled (or queued -> canceled) only through
 * srv_job_transition(), a compare-and-set on the store (job_update with expect_status), so
 * terminal states never change and a cancel racing a worker has exactly one winner. The
 * struct mirrors the status in an atomic so the cancel hook and waiters read it cheaply.
 *
 * Lock order: the table (srv_jobs.mu) and the queue (srv_jobq.mu) are leaves: nothing else is
 * locked while either is held, and they are never held together.
 */
#ifndef SRV_JOBS_H
#define SRV_JOBS_H

#include "model_registry.h"
#include "server.h"

#include "hl/assign.h"
#include "hl/cluster.h"
#include "hl/npy.h"

#include <stdatomic.h>
#include <stdint.h>

typedef enum srv_job_status {
    SRV_JOB_QUEUED = 0,
    SRV_JOB_RUNNING,
    SRV_JOB_SUCCEEDED,
    SRV_JOB_FAILED,
    SRV_JOB_CANCELED,
    SRV_JOB_STATUS_COUNT_
} srv_job_status;

const char *srv_job_status_name(srv_job_status s);
/** Parses a status name; -1 if unknown. */
int srv_job_status_parse(const char *s);
int srv_job_status_terminal(srv_job_status s);
/** Whether the state machine allows from -> to. */
int srv_job_can_transition(srv_job_status from, srv_job_status to);

struct srv_job {
    atomic_int refs;
    char id[32];
    char request_id[SRV_ID_MAX + 8];
    atomic_int status; /* srv_job_status, mirrors the store */
    atomic_int cancel; /* srv_job_stop: why the engine should stop (0 = it should not) */
    char *body;        /* owned bytes the input matrix may view (ctx->bodies) */
    size_t body_cap;   /* body's capacity, to give it back to ctx->bodies */
    hl_fmatrix x;      /* the input (owned or a view into body) */
    char **ids;        /* n strings or NULL (owned) */
    int32_t *labels;   /* n true labels or NULL (owned) */
    const srv_model *model;
    hl_cluster_params params;
    /* Assign jobs (POST /v1/clusterings/{id}/assign): kind SRV_KIND_ASSIGN, the cluster job
     * whose state they extend, and the policy for points that join no cluster. */
    int kind;
    char clustering[32];
    hl_new_clusters new_clusters;
    char cache_key[33];
    char cache_src[32]; /* copy this job's result instead of clustering ("" = compute) */
    double t_created;   /* monotonic */
    double t_started;
    /* progress, written by the worker (throttled into the store) */
    double last_write;
    int last_stage, last_level;
    srv_ctx *ctx;
    /* Redis mode: the stream entry this replica claimed ("" for a job of the in-process
     * queue), and when the worker last read the record for a cancel request (monotonic). */
    char entry[48];
    double last_cancel_poll;
};

/** What a job computes (srv_job.kind). */
enum { SRV_KIND_CLUSTER = 0, SRV_KIND_ASSIGN = 1 };

/** Why a running job's engine is asked to stop (srv_job.cancel). */
typedef enum srv_job_stop {
    SRV_STOP_NONE = 0,
    SRV_STOP_CANCEL = 1,  /* DELETE: the job ends canceled */
    SRV_STOP_ABANDON = 2, /* Redis mode, shutdown: hand the job back to the stream */
    SRV_STOP_LOST = 3,    /* Redis mode: another replica took the entry over */
} srv_job_stop;

/** A new job with refs = 1 and a fresh id; HL_NOMEM. */
hl_status srv_job_new(srv_job **out);
void srv_job_retain(srv_job *j);
/** Drops a reference; the last one frees the input and the job. NULL is a no-op. */
void srv_job_release(srv_job *j);
/** Frees the input early (after the run); keeps the job. */
void srv_job_drop_input(srv_job *j);

/** Fills `id` with "j_" + 26 base32 characters from getrandom (HL_IO if it fails). */
hl_status srv_job_id(char id[32]);
/** Random base32 characters from getrandom into out (n chars + NUL). */
hl_status srv_random_base32(char *out, size_t n);

/**
 * Moves the job's store record from one of `from` (comma-separated names) to `to`, setting
 * the extra fields too; terminal states get the result TTL. HL_INVAL when a `from` state may
 * not move to `to` (srv_job_can_transition), HL_BUSY when the record is no longer in a
 * `from` state (someone else won), HL_NOTFOUND when it is gone. On success the
 * struct's atomic status follows (when j is non-NULL).
 */
hl_status srv_job_transition(srv_store *s, const char *id, srv_job *j, const char *from,
                             srv_job_status to, const srv_field *extra, size_t n_extra,
                             uint64_t ttl);

/** Whether the job's store record is terminal or gone (Redis mode: a job that may run on
 * another replica). 0 when it is not, or the store cannot be read. */
int srv_job_ended_in_store(srv_ctx *ctx, const char *id);

/* ---- the table of unfinished jobs (id -> job) ---- */
hl_status srv_jobs_new(srv_jobs **out);
void srv_jobs_free(srv_jobs *t);
/** Adds (takes a reference). */
hl_status srv_jobs_add(srv_jobs *t, srv_job *j);
/** Finds and retains, or NULL. */
srv_job *srv_jobs_find(srv_jobs *t, const char *id);
/** Removes (drops the table's reference). */
void srv_jobs_remove(srv_jobs *t, const char *id);
/** Retains up to `max` jobs of the table into out (the caller releases each); returns how
 * many. */
size_t srv_jobs_snapshot(srv_jobs *t, srv_job **out, size_t max);
size_t srv_jobs_count(srv_jobs *t);

/* ---- the bounded queue ---- */
hl_status srv_jobq_new(size_t capacity, srv_jobq **out);
void srv_jobq_free(srv_jobq *q);
/** Appends (takes a reference); HL_BUSY when full, HL_UNAVAILABLE once closed. */
hl_status srv_jobq_push(srv_jobq *q, srv_job *j);
/** Blocks for the next job (the caller owns the reference); NULL once closed and empty. */
srv_job *srv_jobq_pop(srv_jobq *q);
/** Reserves a slot so that a later srv_jobq_push_reserved() cannot fail for lack of room:
 * HL_BUSY when full, HL_UNAVAILABLE once closed. Admission reserves before it writes
 * anything to the store, so a full queue is answered (429) with no side effect. */
hl_status srv_jobq_reserve(srv_jobq *q);
/** Gives a reservation back. */
void srv_jobq_unreserve(srv_jobq *q);
/** Appends using a reservation (takes a reference); HL_UNAVAILABLE once closed (the
 * reservation is consumed either way). */
hl_status srv_jobq_push_reserved(srv_jobq *q, srv_job *j);
/** Removes a queued job (DELETE); returns 1 if it was there (its reference is dropped). */
int srv_jobq_remove(srv_jobq *q, srv_job *j);
/** Closes the queue: pushes fail, pops return what is left then NULL. Returns the jobs still
 * queued (each with its reference) via *left / *n_left (malloc'd array) when left != NULL. */
void srv_jobq_close(srv_jobq *q, srv_job ***left, size_t *n_left);
size_t srv_jobq_length(srv_jobq *q);

/* ---- workers (workers.c) ---- */
typedef struct srv_workers srv_workers;
/** Starts n threads popping ctx->queue. */
hl_status srv_workers_start(srv_ctx *ctx, int n, srv_workers **out);
/** Joins every worker (after srv_jobq_close) and frees. */
void srv_workers_join(srv_workers *w);
/** Runs one job to its end on the calling thread (what a worker does; tests use it). */
void srv_worker_run_job(srv_ctx *ctx, srv_job *j);

/* ---- what the stream worker (stream_jobs.c) shares with workers.c ---- */
/** Computes the job (or copies its cached source) and stores the result; HL_CANCELED when
 * the cancel hook stopped it. Progress goes to the store record (throttled). */
hl_status srv__job_execute(srv_ctx *ctx, srv_job *j, hl_error *err);
/** Moves the record from running to `to` (a problem object in `error` for failed), records
 * metrics and logs, and fills the cache on success. Returns the store's status. */
hl_status srv__job_finish(srv_ctx *ctx, srv_job *j, srv_job_status to, const char *error);
/** The engine hooks of a running job: cancel (DELETE, shutdown, a lost stream entry) and
 * throttled progress into its store record. */
hl_cancel srv__job_cancel_hook(srv_job *j);
hl_progress srv__job_progress_hook(srv_job *j);

/** Runs an assign job (assign_job.c): takes the clustering's lock, reads its state, assigns,
 * writes the next state version (compare-and-set; retried if it lost) and the result. */
hl_status srv__assign_execute(srv_ctx *ctx, srv_job *j, hl_error *err);

/** Saves a finished cluster job's state as version 1 (assign_job.c); failures are logged and
 * leave the job without a state (assigns to it then answer 404). */
void srv__state_save(srv_ctx *ctx, srv_job *j, hl_assign_state *s);

/** A cluster job answered from the cache of job `src` gets a clone of src's state when src
 * still has version 1 (no assign changed it); otherwise it has none. The clone is made in the
 * store (state_clone): the state's bytes never pass through the calling thread. */
void srv__state_copy(srv_ctx *ctx, const char *src, srv_job *j);

/** The problem object stored in a failed job's "error" field. */
void srv__job_error_json(hl_status st, const hl_error *err, char *out, size_t len);

/** Logs a state change (job_id, request_id, from, to, duration in seconds). */
void srv_job_log(const srv_job *j, const char *from, const char *to, double seconds);

/** Ends a queued job as canceled (DELETE, or shutdown with `reason`): CAS queued->canceled,
 * remove from the queue and the table, notify. HL_BUSY if it was no longer queued. */
hl_status srv_job_cancel_queued(srv_ctx *ctx, srv_job *j, const char *reason);

#endif
