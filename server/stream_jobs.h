/*
 * stream_jobs.h - jobs across replicas through the Redis stream hl:jobs (only with --redis).
 *
 * Submit (an HTTP thread, handlers_cluster.c): input_put of the job spec (jobspec.h), the job
 * record (queued), then XADD hl:jobs * id <job> (srv_stream_submit).
 *
 * Claim (the claimer thread of every replica): XREADGROUP GROUP workers <replica> BLOCK <ms>
 * COUNT <free workers> STREAMS hl:jobs >, and every second XAUTOCLAIM of entries idle longer
 * than --claim-timeout (a dead replica's). Each entry becomes a job shell (id + entry) in the
 * table of this replica's jobs and in the bounded worker queue. Every claim-timeout/3 the
 * claimer refreshes the entries it holds (XCLAIM ... JUSTID after checking they are still
 * its own); an entry found taken over stops its run (SRV_STOP_LOST).
 *
 * Run (a worker, srv_stream_run_job): HINCRBY attempts (past --max-attempts: failed, XACK);
 * status running + replica; load the input; run the engine (the cancel hook reads the record
 * every 500 ms for cancel_requested); store the result; CAS running -> succeeded; then XACK +
 * XDEL and delete the input, in that order, so a crash before XACK leaves the entry pending
 * for XAUTOCLAIM. A store failure (Redis unreachable) leaves the entry unacknowledged: it is
 * run again after the claim timeout.
 *
 * Shutdown: on SIGTERM the claimer stops taking entries and hands the ones still queued here
 * back (idle time set past the claim timeout, so another replica's next XAUTOCLAIM takes
 * them); when the drain period ends, running jobs stop (SRV_STOP_ABANDON) and are handed back
 * the same way, their attempt uncounted.
 *
 * Thread-safety: the claimer is one thread; srv_stream_* may be called from any thread.
 */
#ifndef SRV_STREAM_JOBS_H
#define SRV_STREAM_JOBS_H

#include "jobs.h"

typedef struct srv_claimer srv_claimer;

/** Starts the claimer thread (it creates the consumer group itself, retrying while Redis is
 * unreachable). */
hl_status srv_claimer_start(srv_ctx *ctx, srv_claimer **out);

/** Stops the thread and frees; call after the workers are joined. NULL is a no-op. */
void srv_claimer_join(srv_claimer *c);

/** Stores the job's input (jobspec) under its id; HL_UNAVAILABLE etc. from the store. */
hl_status srv_stream_put_input(srv_ctx *ctx, const srv_job *j);

/** Appends the job to the stream (after its input and record are stored). */
hl_status srv_stream_submit(srv_ctx *ctx, const srv_job *j);

/** Runs one claimed job on the calling worker (see above). */
void srv_stream_run_job(srv_ctx *ctx, srv_job *j);

/** Shutdown: hands back the claimed jobs that never started (from srv_jobq_close). Drops the
 * references in `left`. */
void srv_stream_release_queued(srv_ctx *ctx, srv_job **left, size_t n);

/** Shutdown: asks every running claimed job to stop and be handed back. */
void srv_stream_abandon_running(srv_ctx *ctx);

#endif
