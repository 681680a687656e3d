/*
 * http.h - the libmicrohttpd side: the daemon, the per-request state machine that feeds the
 * router and the handlers, and the registry of connections suspended by Prefer: wait.
 *
 * Threads: MHD's internal thread pool runs the access handler (parse, validate, admit,
 * answer; never engine code). The loop thread calls srv_http_wake_* to resume suspended
 * connections; MHD_resume_connection is safe from any thread.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include "server.h"

typedef struct srv_http srv_http;

/** Starts listening on cfg->listen:cfg->port with cfg->http_threads threads. */
hl_status srv_http_start(srv_ctx *ctx, srv_http **out, hl_error *err);

/** The bound port (useful with port 0). */
int srv_http_port(const srv_http *h);

/** Resumes the connections waiting on this job. */
void srv_http_wake_job(srv_http *h, const char *job_id);
/** Resumes the connections whose wait deadline has passed. */
void srv_http_wake_expired(srv_http *h);
/** Resumes every waiting connection (shutdown). */
void srv_http_wake_all(srv_http *h);

/** Stops accepting new connections (existing ones go on). */
void srv_http_quiesce(srv_http *h);
/** Requests between their first byte and their completion. */
int srv_http_inflight(const srv_http *h);
/** Stops the daemon (after srv_http_wake_all) and frees. */
void srv_http_stop(srv_http *h);

#endif
