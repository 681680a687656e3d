/*
 * metrics.h - Prometheus counters, gauges and histograms (text format 0.0.4).
 *
 * Every series is a fixed slot of C11 atomics, so recording never locks or allocates;
 * rendering reads the atomics (a scrape may see a request counted in one series and not yet
 * in another, as with any lock-free exporter). Thread-safety: all functions, any thread.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include "server.h"

#include <stddef.h>
#include <stdint.h>

typedef enum srv_stage {
    SRV_STAGE_QUEUED = 0, /* admission to start */
    SRV_STAGE_PARSE,      /* body decode and validation */
    SRV_STAGE_KNN,
    SRV_STAGE_GNN,
    SRV_STAGE_DECODE,
    SRV_STAGE_STORE, /* result encode and store */
    SRV_STAGE_COUNT_
} srv_stage;

const char *srv_stage_name(srv_stage s);

typedef enum srv_store_op {
    SRV_OP_JOB_CREATE = 0,
    SRV_OP_JOB_GET,
    SRV_OP_JOB_UPDATE,
    SRV_OP_JOB_DELETE,
    SRV_OP_RESULT_PUT,
    SRV_OP_RESULT_GET,
    SRV_OP_RESULT_DELETE,
    SRV_OP_CACHE_GET,
    SRV_OP_CACHE_PUT,
    SRV_OP_IDEM_CLAIM,
    SRV_OP_PING,
    SRV_OP_COUNT_
} srv_store_op;

hl_status srv_metrics_new(srv_metrics **out);
void srv_metrics_free(srv_metrics *m);

void srv_metrics_request(srv_metrics *m, size_t route_idx, srv_method method, int code,
                         double seconds);
void srv_metrics_job_end(srv_metrics *m, int status /* srv_job_status */);
void srv_metrics_stage(srv_metrics *m, srv_stage s, double seconds);
void srv_metrics_points(srv_metrics *m, uint64_t n);
void srv_metrics_cache(srv_metrics *m, int hit);
/** Assigns: the decoded state reused (hit) or rebuilt from the store (miss); a state version
 * written as a delta or as a new base. */
void srv_metrics_state_cache(srv_metrics *m, int hit);
void srv_metrics_state_write(srv_metrics *m, int base);
uint64_t srv_metrics_state_cache_hits(srv_metrics *m);
/** Counts a store failure (any status other than OK/NOTFOUND/BUSY). */
void srv_metrics_store_result(srv_metrics *m, srv_store_op op, hl_status st);
void srv_metrics_running(srv_metrics *m, int delta);

uint64_t srv_metrics_cache_hits(srv_metrics *m);
uint64_t srv_metrics_jobs_computed(srv_metrics *m);
void srv_metrics_computed(srv_metrics *m);

struct srv_bodies_stats;

/** Renders every series; queue_len is the current queue length, `bodies` the body pool's
 * figures (NULL: none). malloc'd text. */
char *srv_metrics_render(srv_metrics *m, size_t queue_len, const struct srv_bodies_stats *bodies,
                         size_t *len);

#endif
