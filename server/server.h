/*
 * server.h - the request model shared by http.c, router.c and the handlers.
 *
 * A request reaches a handler as a srv_req (method, path, route parameter, query, body,
 * the headers the API uses) and leaves as a srv_resp (status, headers, body). Handlers have
 * the signature `hl_status handler(srv_ctx *, const srv_req *, srv_resp *)` and never see
 * libmicrohttpd, so the unit tests call them directly. A handler fills `resp` (a problem
 * response included) and returns HL_OK; a non-OK return without a filled response is mapped
 * by http_status.c. srv_ctx is the process's shared state; everything reachable from it is
 * thread-safe as documented in each module's header.
 *
 * Ownership: the request owns its query strings and body; a handler may steal the body's
 * bytes (set body->data to NULL). The response owns `body` (malloc'd) and a job reference
 * in `wait_job`; srv_resp_clear() releases both.
 */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include "config.h"
#include "http_status.h"
#include "store.h"

#include "hl/status.h"

#include <stdatomic.h>
#include <stddef.h>

typedef struct srv_models srv_models;
typedef struct srv_jobs srv_jobs;
typedef struct srv_jobq srv_jobq;
typedef struct srv_job srv_job;
typedef struct srv_metrics srv_metrics;

typedef enum srv_method {
    SRV_M_GET = 0,
    SRV_M_POST,
    SRV_M_DELETE,
    SRV_M_OPTIONS,
    SRV_M_HEAD,
    SRV_M_PUT,
    SRV_M_PATCH,
    SRV_M_OTHER,
    SRV_M_COUNT_
} srv_method;

srv_method srv_method_parse(const char *m);
const char *srv_method_name(srv_method m);

typedef struct srv_ctx {
    const srv_config *cfg;
    srv_store *store;
    const srv_models *models;
    srv_jobs *jobs;  /* jobs admitted by this process and not yet finished */
    srv_jobq *queue; /* bounded FIFO the workers pop */
    srv_metrics *metrics;
    struct srv_state_cache *state_cache; /* decoded states for assigns; NULL = none */
    struct srv_bodies *bodies;           /* request body buffers for reuse; NULL = none */
    atomic_int draining;
    char replica[64];
    /* Redis mode (--redis): jobs go through the stream hl:jobs (stream_jobs.c); the
     * in-process queue only feeds this replica's workers the entries it claimed. */
    int use_stream;
    atomic_int stream_busy; /* claimed entries not yet finished on this replica */
    struct srv_auth *auth;  /* API keys and per-key limits (auth.h); NULL = no keys */
    const char *openapi;
    size_t openapi_len;
    /* Called by a worker (or a handler) when a job reaches a terminal state; the loop
     * resumes connections waiting on it. NULL in unit tests. */
    void (*job_done)(struct srv_ctx *ctx, const char *job_id);
    void *job_done_ud;
} srv_ctx;

typedef struct srv_body {
    char *data;
    size_t len, cap;
} srv_body;

#define SRV_MAX_QUERY 16
#define SRV_ID_MAX    64

typedef struct srv_route srv_route;

typedef struct srv_req {
    srv_method method;
    const char *path;
    const srv_route *route;
    char param[SRV_ID_MAX + 8]; /* the {id} or {name} segment */
    char request_id[SRV_ID_MAX + 8];
    char media_type[64]; /* Content-Type without parameters, lower case; "" if absent */
    size_t n_query;
    char *qk[SRV_MAX_QUERY], *qv[SRV_MAX_QUERY]; /* decoded, owned */
    srv_body *body;
    char idem_key[256]; /* "" when absent */
    int prefer_wait;    /* seconds (capped at 60), -1 when absent */
    char key_name[64];  /* the API key's name once authenticated; "" without keys */
} srv_req;

#define SRV_MAX_HEADERS 8

typedef struct srv_resp {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'd, owned */
    size_t len;
    size_t n_headers;
    char hname[SRV_MAX_HEADERS][32];
    char hval[SRV_MAX_HEADERS][256];
    srv_job *wait_job; /* set by POST /v1/cluster with Prefer: wait: suspend until it ends */
    int wait_seconds;
    int is_problem;
    srv_problem problem;
} srv_resp;

typedef hl_status (*srv_handler)(srv_ctx *ctx, const srv_req *req, srv_resp *resp);

enum {
    SRV_BODY_JSON = 1u << 0,  /* application/json */
    SRV_BODY_NPY = 1u << 1,   /* application/x-npy */
    SRV_BODY_F32 = 1u << 2,   /* application/octet-stream */
    SRV_IDEMPOTENT = 1u << 3, /* honours Idempotency-Key */
    SRV_PUBLIC = 1u << 4      /* needs no API key (health, metrics, the contract) */
};
#define SRV_BODY_ANY (SRV_BODY_JSON | SRV_BODY_NPY | SRV_BODY_F32)

struct srv_route {
    srv_method method;
    const char *pattern; /* "/v1/jobs/{id}": a {x} segment matches one id-like segment */
    srv_handler fn;
    unsigned flags;
};

/* ---- router.c ---- */
typedef enum srv_match {
    SRV_MATCH_OK = 0,
    SRV_MATCH_NOT_FOUND,
    SRV_MATCH_BAD_METHOD,
} srv_match;

/** The route table and its size. */
const srv_route *srv_routes(size_t *n);

/** Finds the route for (method, path); fills param. HEAD matches GET routes. On
 * SRV_MATCH_BAD_METHOD `allow` gets the allowed methods ("GET, DELETE"). */
srv_match srv_route_match(srv_method m, const char *path, const srv_route **out,
                          char param[SRV_ID_MAX + 8], char *allow, size_t allow_len);

/** Index of a route in the table (metrics), or the table size for "no route". */
size_t srv_route_index(const srv_route *r);

/** Checks a body-carrying request before any byte is read: the media type (415) and a
 * declared Content-Length against max (413). Returns -1 when fine, else the problem. */
int srv_route_check_body(const srv_route *r, const char *media_type, int has_length,
                         unsigned long long length, unsigned long long max);

/** The flag (SRV_BODY_*) of a media type, 0 if none. */
unsigned srv_media_flag(const char *media_type);

/** Prints the table as "METHOD PATH" lines (--print-routes). */
void srv_routes_print(FILE *f);

/* ---- request/response helpers (router.c) ---- */
/** Zeroes a request; prefer_wait -1. */
void srv_req_init(srv_req *r);
/** Frees the query strings (the body belongs to whoever set it). */
void srv_req_deinit(srv_req *r);
/** Adds a decoded query parameter (copied). HL_RANGE past SRV_MAX_QUERY. */
hl_status srv_req_add_query(srv_req *r, const char *k, const char *v);
/** Parses "a=1&b=x%20y" into the query list (test helper and raw-query fallback). */
hl_status srv_req_parse_query(srv_req *r, const char *qs);
/** The value of a query parameter or NULL. */
const char *srv_req_query(const srv_req *r, const char *k);
/** Rebuilds the query string (percent-encoded) for hl_query_decode; malloc'd. */
char *srv_req_query_string(const srv_req *r);

void srv_resp_init(srv_resp *r);
void srv_resp_clear(srv_resp *r);
void srv_resp_header(srv_resp *r, const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *srv_resp_get_header(const srv_resp *r, const char *name);
/** Sets a JSON body (takes ownership of body). HL_NOMEM when body is NULL. */
hl_status srv_resp_json(srv_resp *r, int status, char *body, size_t len);
/** Fills an application/problem+json response: type, title, status, detail, instance (the
 * request id), and field/offset/row/column from `err` when present. Always returns HL_OK. */
hl_status srv_resp_problem(srv_resp *r, const srv_req *req, srv_problem p, const hl_error *err,
                           const char *detail_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* ---- handlers ---- */
hl_status srv_h_cluster(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_assign(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_job_get(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_job_delete(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_job_result(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_models(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_model(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_livez(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_readyz(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_metrics(srv_ctx *ctx, const srv_req *req, srv_resp *resp);
hl_status srv_h_openapi(srv_ctx *ctx, const srv_req *req, srv_resp *resp);

/** XXH3-128 (hex) of what the client sent - media type, query and body - which an
 * Idempotency-Key replay must match. */
void srv_request_hash(const srv_req *req, char out[33]);

/** After a Prefer: wait suspension ends: 200 + result if the job succeeded, else 202 + the
 * job object. */
hl_status srv_cluster_after_wait(srv_ctx *ctx, const srv_req *req, srv_job *job, srv_resp *resp);

/** Renders a succeeded job's result (200): JSON paged by ?offset=&limit= with a Link header,
 * or .npy with ?format=npy[&levels=all]; `paged` = 0 ignores the query (Prefer: wait). */
hl_status srv_render_result(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const char *id,
                            int paged);

/** Renders the job object for a store record into a malloc'd JSON string. */
char *srv_job_render(const srv_ctx *ctx, const char *id, const srv_record *rec, size_t *len);

/** Fills 200/202 + Location + Retry-After + the job object for `id` read from the store. */
hl_status srv_resp_job(srv_ctx *ctx, const srv_req *req, srv_resp *resp, const char *id,
                       int status);

#endif
