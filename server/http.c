/*
 * http.c - libmicrohttpd glue: one conn_state per request in MHD's req_cls.
 *
 * Call 1 (headers): allocate the state, pick the request id, match the route; answer at
 * once 404/405/OPTIONS/415, and 413 when Content-Length is over the limit (MHD then drops
 * the body and closes). Calls 2..n: append the body into a buffer preallocated from
 * Content-Length (or grown geometrically for chunked bodies), counting bytes: past the limit
 * the buffer is freed and the rest discarded, and the last call answers 413 - never more than
 * the limit is held. Last call: run the handler, answer, or suspend for Prefer: wait.
 * NOTIFY_COMPLETED logs the request, records metrics and frees the state.
 *
 * Lock order: h->wmu (the waiter list) is a leaf; MHD_resume_connection is called only after
 * it is released.
 */
#include "http.h"

#include "auth.h"
#include "bodies.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_PATH 2048

/* A body must keep coming. MHD's connection timeout (MHD_OPTION_CONNECTION_TIMEOUT, 120 s
 * below) only measures silence, so a client sending a byte every few seconds could hold a
 * connection for as long as it likes. After BODY_GRACE_SECONDS from the headers, a request
 * whose body has averaged less than BODY_MIN_RATE bytes per second since then is cut: MHD
 * cannot queue an answer while a body is still arriving, so the connection is closed. */
#define BODY_GRACE_SECONDS 10.0
#define BODY_MIN_RATE      1024.0

typedef struct conn_state {
    srv_req req;
    srv_body body;
    srv_http *http;
    struct MHD_Connection *conn;
    double t0;
    /* body bytes so far, kept or discarded */
    unsigned long long received;
    int answered_status;
    int overflow;  /* body passed the limit: discard the rest, answer 413 */
    int oom;       /* the body buffer could not grow */
    int bad_query; /* 1: more query parameters than SRV_MAX_QUERY, 2: a %00 in one */
    int waiting;   /* suspended for Prefer: wait */
    srv_job *wait_job;
    double deadline;  /* monotonic */
    double next_poll; /* Redis mode: when to look at the job's record again */
    struct conn_state *wnext;
    char path[MAX_PATH];
} conn_state;

struct srv_http {
    srv_ctx *ctx;
    struct MHD_Daemon *d;
    MHD_socket quiesced_fd;
    uv_mutex_t wmu;
    conn_state *waiters;
    atomic_int inflight;
    atomic_int stopping; /* wake_all ran: resumed waiters answer, never wait again */
    int port;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    const char *kv[] = {"source", "libmicrohttpd"};
    srv_log(SRV_LOG_WARN, msg, kv, 1);
}

/* ---- answering ---- */

static void add_common_headers(struct MHD_Response *r, const conn_state *cs)
{
    MHD_add_response_header(r, "X-Request-Id", cs->req.request_id);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "Location, Retry-After");
    MHD_add_response_header(r, "Cache-Control", "no-store");
}

static enum MHD_Result answer(conn_state *cs, srv_resp *resp)
{
    struct MHD_Response *r;
    if (resp->body != NULL && resp->len > 0) {
        r = MHD_create_response_from_buffer_with_free_callback(resp->len, resp->body, free);
        if (r != NULL)
            resp->body = NULL; /* MHD owns it now */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL) {
        srv_resp_clear(resp);
        return MHD_NO;
    }
    add_common_headers(r, cs);
    if (resp->content_type != NULL && resp->status != 204)
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    for (size_t i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(r, resp->hname[i], resp->hval[i]);
    int status = resp->status > 0 ? resp->status : 500;
    enum MHD_Result ok = MHD_queue_response(cs->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    cs->answered_status = status;
    srv_resp_clear(resp);
    return ok;
}

static enum MHD_Result answer_problem(conn_state *cs, srv_problem p, const char *detail,
                                      const char *allow)
{
    srv_resp resp;
    srv_resp_init(&resp);
    srv_resp_problem(&resp, &cs->req, p, NULL, "%s", detail);
    if (allow != NULL)
        srv_resp_header(&resp, "Allow", "%s", allow);
    return answer(cs, &resp);
}

/* ---- waiters (Prefer: wait) ---- */

static void waiter_add(srv_http *h, conn_state *cs)
{
    uv_mutex_lock(&h->wmu);
    cs->wnext = h->waiters;
    h->waiters = cs;
    uv_mutex_unlock(&h->wmu);
}

/* Removes from the list every waiter `pick` selects and resumes them outside the lock. */
static void wake_where(srv_http *h, int (*pick)(const conn_state *, const void *), const void *arg)
{
    conn_state *woken = NULL;
    uv_mutex_lock(&h->wmu);
    conn_state **pp = &h->waiters;
    while (*pp != NULL) {
        conn_state *cs = *pp;
        if (pick(cs, arg)) {
            *pp = cs->wnext;
            cs->wnext = woken;
            woken = cs;
        } else {
            pp = &cs->wnext;
        }
    }
    uv_mutex_unlock(&h->wmu);
    while (woken != NULL) {
        conn_state *next = woken->wnext;
        woken->wnext = NULL;
        MHD_resume_connection(woken->conn);
        woken = next;
    }
}

static int pick_job(const conn_state *cs, const void *arg)
{
    return strcmp(cs->wait_job->id, (const char *)arg) == 0;
}

static int pick_expired(const conn_state *cs, const void *arg)
{
    double now = *(const double *)arg;
    /* With Redis the job may run on another replica: look at its record every 250 ms. */
    return cs->deadline <= now || (cs->next_poll > 0 && cs->next_poll <= now);
}

static int pick_all(const conn_state *cs, const void *arg)
{
    (void)cs;
    (void)arg;
    return 1;
}

static int pick_self(const conn_state *cs, const void *arg)
{
    return cs == arg;
}

void srv_http_wake_job(srv_http *h, const char *job_id)
{
    wake_where(h, pick_job, job_id);
}

void srv_http_wake_expired(srv_http *h)
{
    double now = srv_mono();
    wake_where(h, pick_expired, &now);
}

void srv_http_wake_all(srv_http *h)
{
    atomic_store(&h->stopping, 1);
    wake_where(h, pick_all, NULL);
}

/* Suspends the connection until the job ends or the deadline passes. A job that ended
 * between the handler's check and the registration is caught by the re-check below. */
static void suspend_for(conn_state *cs, srv_resp *resp)
{
    cs->wait_job = resp->wait_job;
    resp->wait_job = NULL;
    cs->deadline = srv_mono() + (double)resp->wait_seconds;
    cs->next_poll = cs->http->ctx->use_stream ? srv_mono() + 0.25 : 0.0;
    cs->waiting = 1;
    srv_resp_clear(resp);
    MHD_suspend_connection(cs->conn);
    waiter_add(cs->http, cs);
    if (srv_job_status_terminal((srv_job_status)atomic_load(&cs->wait_job->status)))
        wake_where(cs->http, pick_self, cs);
}

/* ---- request parsing ---- */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    conn_state *cs = cls;
    /* MHD has percent-decoded the pair: a %00 would cut the C string short, so refuse it
     * rather than act on a shorter name or value than the client sent. */
    if (strlen(key) != key_size || (value != NULL && strlen(value) != value_size)) {
        cs->bad_query = 2;
        return MHD_YES;
    }
    if (srv_req_add_query(&cs->req, key, value) != HL_OK)
        cs->bad_query = 1;
    return MHD_YES;
}

static int valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return n > 0 && n <= SRV_ID_MAX;
}

static int parse_prefer_wait(const char *v)
{
    if (v == NULL)
        return -1;
    const char *p = strstr(v, "wait=");
    while (p != NULL && p != v && p[-1] != ' ' && p[-1] != ',' && p[-1] != ';')
        p = strstr(p + 1, "wait=");
    if (p == NULL || p[5] < '0' || p[5] > '9')
        return -1;
    long n = strtol(p + 5, NULL, 10);
    return n > 60 ? 60 : (int)n;
}

static void read_headers(conn_state *cs, struct MHD_Connection *c)
{
    const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (rid != NULL && valid_request_id(rid)) {
        snprintf(cs->req.request_id, sizeof(cs->req.request_id), "%s", rid);
    } else {
        cs->req.request_id[0] = 'r';
        cs->req.request_id[1] = '_';
        if (srv_random_base32(cs->req.request_id + 2, 20) != HL_OK)
            snprintf(cs->req.request_id, sizeof(cs->req.request_id), "r_unknown");
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (ct != NULL) {
        size_t i = 0;
        while (ct[i] != '\0' && ct[i] != ';' && ct[i] != ' ' &&
               i + 1 < sizeof(cs->req.media_type)) {
            char ch = ct[i];
            cs->req.media_type[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            i++;
        }
        cs->req.media_type[i] = '\0';
    }
    const char *ik = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    if (ik != NULL)
        snprintf(cs->req.idem_key, sizeof(cs->req.idem_key), "%s", ik);
    cs->req.prefer_wait =
        parse_prefer_wait(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Prefer"));
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, collect_arg, cs);
}

static enum MHD_Result preflight(conn_state *cs, const char *allow)
{
    srv_resp resp;
    srv_resp_init(&resp);
    resp.status = 204;
    srv_resp_header(&resp, "Access-Control-Allow-Methods", "%s", allow);
    srv_resp_header(&resp, "Access-Control-Allow-Headers",
                    "Authorization, Content-Type, Idempotency-Key, Prefer, X-Request-Id");
    srv_resp_header(&resp, "Access-Control-Max-Age", "600");
    srv_resp_header(&resp, "Allow", "%s", allow);
    return answer(cs, &resp);
}

/* API keys: 401 without a valid key (before any body byte is read), 429 past the key's
 * request rate. Returns 1 when the request may go on; 0 when it was answered (*answered is
 * what MHD_queue_response said). */
static int check_key(srv_http *h, struct MHD_Connection *c, conn_state *cs,
                     enum MHD_Result *answered)
{
    const char *az = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    srv_resp resp;
    srv_resp_init(&resp);
    if (!srv_auth_check(h->ctx->auth, az, cs->req.key_name)) {
        srv_resp_problem(&resp, &cs->req, SRV_P_UNAUTHORIZED, NULL, "%s",
                         az == NULL ? "this route needs 'Authorization: Bearer <API key>'"
                                    : "the API key is not valid");
        srv_resp_header(&resp, "WWW-Authenticate", "%s",
                        az == NULL ? "Bearer realm=\"hilander\""
                                   : "Bearer realm=\"hilander\", error=\"invalid_token\"");
    } else {
        int retry = 0;
        if (srv_auth_rate(h->ctx->auth, cs->req.key_name, &retry))
            return 1;
        srv_resp_problem(&resp, &cs->req, SRV_P_RATE_LIMITED, NULL,
                         "API key '%s' is over its rate of %d requests per second",
                         cs->req.key_name, h->ctx->cfg->key_rate);
        srv_resp_header(&resp, "Retry-After", "%d", retry);
    }
    *answered = answer(cs, &resp);
    return 0;
}

/* Call 1. Returns MHD_YES to go on (body or final call follows). */
static enum MHD_Result first_call(srv_http *h, struct MHD_Connection *c, const char *url,
                                  const char *method, conn_state *cs)
{
    srv_req_init(&cs->req);
    cs->req.body = &cs->body;
    cs->http = h;
    cs->conn = c;
    cs->t0 = srv_mono();
    cs->req.method = srv_method_parse(method);
    snprintf(cs->path, sizeof(cs->path), "%s", url);
    cs->req.path = cs->path;
    read_headers(cs, c);
    char allow[96];
    srv_match m = strlen(url) >= MAX_PATH
                      ? SRV_MATCH_NOT_FOUND
                      : srv_route_match(cs->req.method, cs->path, &cs->req.route, cs->req.param,
                                        allow, sizeof(allow));
    if (cs->req.method == SRV_M_OPTIONS && m != SRV_MATCH_NOT_FOUND)
        return preflight(cs, allow[0] != '\0' ? allow : "OPTIONS");
    if (m == SRV_MATCH_NOT_FOUND)
        return answer_problem(cs, SRV_P_NOT_FOUND, "no route for this path", NULL);
    if (m == SRV_MATCH_BAD_METHOD)
        return answer_problem(cs, SRV_P_METHOD_NOT_ALLOWED, "this path allows other methods",
                              allow);
    enum MHD_Result answered = MHD_YES;
    if (h->ctx->auth != NULL && (cs->req.route->flags & SRV_PUBLIC) == 0 &&
        !check_key(h, c, cs, &answered))
        return answered; /* 401 or 429 */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    unsigned long long len = cl != NULL ? strtoull(cl, NULL, 10) : 0;
    unsigned long long max = h->ctx->cfg->max_body_bytes;
    int p = srv_route_check_body(cs->req.route, cs->req.media_type, cl != NULL, len, max);
    if (p == (int)SRV_P_UNSUPPORTED_MEDIA_TYPE)
        return answer_problem(cs, SRV_P_UNSUPPORTED_MEDIA_TYPE,
                              "POST /v1/cluster takes application/json, application/x-npy or "
                              "application/octet-stream",
                              NULL);
    if (p == (int)SRV_P_BODY_TOO_LARGE) {
        char d[128];
        snprintf(d, sizeof(d), "Content-Length %llu is over the limit of %llu bytes", len, max);
        return answer_problem(cs, SRV_P_BODY_TOO_LARGE, d, NULL);
    }
    if ((cs->req.route->flags & SRV_BODY_ANY) != 0 && cl != NULL && len > 0) {
        /* One buffer (from the pool: pages already mapped), no copies while streaming. */
        cs->body.data = srv_bodies_get(cs->http->ctx->bodies, (size_t)len, &cs->body.cap);
    }
    return MHD_YES;
}

static void append_body(conn_state *cs, const char *data, size_t n)
{
    srv_body *b = &cs->body;
    if (cs->overflow || cs->oom || (cs->req.route->flags & SRV_BODY_ANY) == 0)
        return; /* discarded */
    srv_bodies *pool = cs->http->ctx->bodies;
    if (b->len + n > cs->http->ctx->cfg->max_body_bytes) {
        cs->overflow = 1;
        srv_bodies_put(pool, b->data, b->cap);
        b->data = NULL;
        b->len = b->cap = 0;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > cs->http->ctx->cfg->max_body_bytes)
            cap = (size_t)cs->http->ctx->cfg->max_body_bytes;
        size_t got;
        char *p = srv_bodies_get(pool, cap, &got);
        if (p == NULL) {
            cs->oom = 1;
            return;
        }
        if (b->len > 0)
            memcpy(p, b->data, b->len);
        srv_bodies_put(pool, b->data, b->cap);
        b->data = p;
        b->cap = got;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static enum MHD_Result last_call(conn_state *cs)
{
    srv_ctx *ctx = cs->http->ctx;
    if (cs->overflow) {
        char d[128];
        snprintf(d, sizeof(d), "the body is over the limit of %llu bytes",
                 (unsigned long long)ctx->cfg->max_body_bytes);
        return answer_problem(cs, SRV_P_BODY_TOO_LARGE, d, NULL);
    }
    if (cs->oom)
        return answer_problem(cs, SRV_P_UNAVAILABLE, "out of memory reading the request", NULL);
    if (cs->bad_query == 2)
        return answer_problem(cs, SRV_P_INVALID_PARAMETER,
                              "a query parameter contains %00 (a NUL byte)", NULL);
    if (cs->bad_query)
        return answer_problem(cs, SRV_P_BAD_REQUEST, "too many query parameters", NULL);
    srv_resp resp;
    srv_resp_init(&resp);
    hl_status st = cs->req.route->fn(ctx, &cs->req, &resp);
    if (resp.wait_job != NULL) {
        suspend_for(cs, &resp);
        return MHD_YES;
    }
    if (st != HL_OK && resp.status == 0)
        srv_resp_problem(&resp, &cs->req, srv_problem_for_status(st), NULL, "%s",
                         hl_status_str(st));
    return answer(cs, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_cls)
{
    (void)version;
    srv_http *h = cls;
    conn_state *cs = *req_cls;
    if (cs == NULL) {
        cs = calloc(1, sizeof(*cs));
        if (cs == NULL)
            return MHD_NO;
        *req_cls = cs;
        atomic_fetch_add(&h->inflight, 1);
        return first_call(h, c, url, method, cs);
    }
    if (cs->waiting) { /* resumed: the job ended, the wait expired, or time to poll */
        if (h->ctx->use_stream && srv_mono() < cs->deadline && !atomic_load(&h->stopping) &&
            !srv_job_ended_in_store(h->ctx, cs->wait_job->id)) {
            cs->next_poll = srv_mono() + 0.25;
            MHD_suspend_connection(c);
            waiter_add(h, cs);
            if (atomic_load(&h->stopping)) /* wake_all may have run before the add */
                wake_where(h, pick_self, cs);
            return MHD_YES;
        }
        cs->waiting = 0;
        srv_resp resp;
        srv_resp_init(&resp);
        srv_cluster_after_wait(h->ctx, &cs->req, cs->wait_job, &resp);
        return answer(cs, &resp);
    }
    if (*upload_size > 0) {
        cs->received += *upload_size;
        double late = srv_mono() - cs->t0 - BODY_GRACE_SECONDS;
        if (late > 0 && (double)cs->received < late * BODY_MIN_RATE) {
            char got[32], secs[32];
            snprintf(got, sizeof(got), "#%llu", cs->received);
            snprintf(secs, sizeof(secs), "#%.1f", late + BODY_GRACE_SECONDS);
            const char *kv[] = {"request_id", cs->req.request_id, "received_bytes",
                                got,          "seconds",          secs};
            srv_log(SRV_LOG_WARN, "request body too slow: connection closed", kv, 3);
            return MHD_NO;
        }
        append_body(cs, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return last_call(cs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    srv_http *h = cls;
    conn_state *cs = *req_cls;
    if (cs == NULL)
        return;
    *req_cls = NULL;
    double secs = srv_mono() - cs->t0;
    int status = cs->answered_status;
    srv_metrics_request(h->ctx->metrics, srv_route_index(cs->req.route), cs->req.method, status,
                        secs);
    char st[16], dur[32];
    snprintf(st, sizeof(st), "#%d", status);
    snprintf(dur, sizeof(dur), "#%.3f", secs * 1000.0);
    const char *kv[] = {
        "request_id",  cs->req.request_id,
        "method",      srv_method_name(cs->req.method),
        "path",        cs->path,
        "status",      st,
        "duration_ms", dur,
        "key",         cs->req.key_name[0] != '\0' ? cs->req.key_name : NULL,
        "error",       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : "connection"};
    srv_log(status >= 500 ? SRV_LOG_WARN : SRV_LOG_INFO, "request", kv, 7);
    srv_req_deinit(&cs->req);
    srv_bodies_put(h->ctx->bodies, cs->body.data, cs->body.cap);
    srv_job_release(cs->wait_job);
    free(cs);
    atomic_fetch_sub(&h->inflight, 1);
}

/* ---- daemon ---- */

static hl_status parse_listen(const char *addr, int port, struct sockaddr_storage *ss, int *ipv6,
                              hl_error *err)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    const char *a = strcmp(addr, "localhost") == 0 ? "127.0.0.1" : addr;
    if (inet_pton(AF_INET, a, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return HL_OK;
    }
    char tmp[256];
    size_t n = strlen(a);
    if (n >= 2 && a[0] == '[' && a[n - 1] == ']' && n - 2 < sizeof(tmp)) {
        memcpy(tmp, a + 1, n - 2);
        tmp[n - 2] = '\0';
        a = tmp;
    }
    if (inet_pton(AF_INET6, a, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return HL_OK;
    }
    return hl_error_set(err, HL_INVAL, "listen",
                        "--listen must be an IPv4 or IPv6 address or localhost, got '%s'", addr);
}

hl_status srv_http_start(srv_ctx *ctx, srv_http **out, hl_error *err)
{
    struct sockaddr_storage ss;
    int ipv6 = 0;
    hl_status st = parse_listen(ctx->cfg->listen, ctx->cfg->port, &ss, &ipv6, err);
    if (st != HL_OK)
        return st;
    srv_http *h = calloc(1, sizeof(*h));
    if (h == NULL || uv_mutex_init(&h->wmu) != 0) {
        free(h);
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    }
    h->ctx = ctx;
    h->quiesced_fd = MHD_INVALID_SOCKET;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC | (ipv6 ? MHD_USE_IPv6 : 0);
    /* The logger goes first so that MHD's messages about later options reach it. */
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)ctx->cfg->http_threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(256 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (h->d == NULL) {
        uv_mutex_destroy(&h->wmu);
        free(h);
        return hl_error_set(err, HL_IO, "listen", "cannot listen on %s port %d", ctx->cfg->listen,
                            ctx->cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? (int)info->port : ctx->cfg->port;
    *out = h;
    return HL_OK;
}

int srv_http_port(const srv_http *h)
{
    return h->port;
}

void srv_http_quiesce(srv_http *h)
{
    if (h->quiesced_fd == MHD_INVALID_SOCKET)
        h->quiesced_fd = MHD_quiesce_daemon(h->d);
}

int srv_http_inflight(const srv_http *h)
{
    return atomic_load(&h->inflight);
}

void srv_http_stop(srv_http *h)
{
    if (h == NULL)
        return;
    srv_http_wake_all(h);
    MHD_stop_daemon(h->d);
    if (h->quiesced_fd != MHD_INVALID_SOCKET)
        close(h->quiesced_fd);
    uv_mutex_destroy(&h->wmu);
    free(h);
}
