/*
 * loop.h - the uv_loop thread (the main thread once serving): completion notices from the
 * workers (uv_async; sends coalesce, so the callback drains the whole list), the 100 ms tick
 * (Prefer: wait deadlines, and once a second the embedded store's TTL sweep), and SIGTERM /
 * SIGINT (uv_signal) which start the drain.
 *
 * Lock order: l->mu (the completion list) is a leaf.
 */
#ifndef SRV_LOOP_H
#define SRV_LOOP_H

#include "http.h"
#include "server.h"

typedef struct srv_loop srv_loop;

/** Creates the loop and installs ctx->job_done. */
hl_status srv_loop_new(srv_ctx *ctx, srv_loop **out);
/** Starts the timers and signal handlers once the HTTP side is up. */
hl_status srv_loop_start(srv_loop *l, srv_http *http);
/** Runs until the drain period after a signal ends (the listener is then quiesced). */
void srv_loop_run(srv_loop *l);
/** Handles completions that arrived after srv_loop_run returned (shutdown). */
void srv_loop_flush(srv_loop *l);
/** Closes every handle and frees. */
void srv_loop_free(srv_loop *l);

#endif
