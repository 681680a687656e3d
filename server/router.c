/*
 * router.c - the static route table, path matching, and the request/response helpers.
 *
 * Like redis's command table, the router checks what every route shares (method,
 * Content-Type, declared length) before a handler runs, so handlers only see requests of
 * the shape they declared.
 */
#include "server.h"

#include "buf.h"
#include "jobs.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const srv_route routes[] = {
    {SRV_M_POST, "/v1/cluster", srv_h_cluster, SRV_BODY_ANY | SRV_IDEMPOTENT},
    {SRV_M_POST, "/v1/clusterings/{id}/assign", srv_h_assign, SRV_BODY_ANY | SRV_IDEMPOTENT},
    {SRV_M_GET, "/v1/jobs/{id}", srv_h_job_get, 0},
    {SRV_M_DELETE, "/v1/jobs/{id}", srv_h_job_delete, 0},
    {SRV_M_GET, "/v1/jobs/{id}/result", srv_h_job_result, 0},
    {SRV_M_GET, "/v1/models", srv_h_models, 0},
    {SRV_M_GET, "/v1/models/{name}", srv_h_model, 0},
    {SRV_M_GET, "/livez", srv_h_livez, SRV_PUBLIC},
    {SRV_M_GET, "/readyz", srv_h_readyz, SRV_PUBLIC},
    {SRV_M_GET, "/metrics", srv_h_metrics, SRV_PUBLIC},
    {SRV_M_GET, "/openapi.yaml", srv_h_openapi, SRV_PUBLIC},
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static const char *method_names[SRV_M_COUNT_] = {"GET",  "POST", "DELETE", "OPTIONS",
                                                 "HEAD", "PUT",  "PATCH",  "OTHER"};

srv_method srv_method_parse(const char *m)
{
    for (int i = 0; i < (int)SRV_M_OTHER; i++) {
        if (strcmp(m, method_names[i]) == 0)
            return (srv_method)i;
    }
    return SRV_M_OTHER;
}

const char *srv_method_name(srv_method m)
{
    return (unsigned)m < SRV_M_COUNT_ ? method_names[m] : "OTHER";
}

const srv_route *srv_routes(size_t *n)
{
    *n = N_ROUTES;
    return routes;
}

size_t srv_route_index(const srv_route *r)
{
    if (r == NULL || r < routes || r >= routes + N_ROUTES)
        return N_ROUTES;
    return (size_t)(r - routes);
}

static int id_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* Matches one pattern; a {x} segment takes 1..64 id characters. */
static int path_matches(const char *pat, const char *path, char param[SRV_ID_MAX + 8])
{
    while (*pat != '\0') {
        if (*pat == '{') {
            const char *close = strchr(pat, '}');
            size_t n = 0;
            while (path[n] != '\0' && path[n] != '/') {
                if (!id_char(path[n]))
                    return 0;
                n++;
            }
            if (n == 0 || n > SRV_ID_MAX)
                return 0;
            memcpy(param, path, n);
            param[n] = '\0';
            path += n;
            pat = close + 1;
            continue;
        }
        if (*pat != *path)
            return 0;
        pat++;
        path++;
    }
    return *path == '\0';
}

srv_match srv_route_match(srv_method m, const char *path, const srv_route **out,
                          char param[SRV_ID_MAX + 8], char *allow, size_t allow_len)
{
    srv_method want = m == SRV_M_HEAD ? SRV_M_GET : m;
    int path_found = 0;
    char tmp[SRV_ID_MAX + 8];
    if (allow != NULL && allow_len > 0)
        allow[0] = '\0';
    *out = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!path_matches(routes[i].pattern, path, tmp))
            continue;
        if (routes[i].method == want) {
            *out = &routes[i];
            memcpy(param, tmp, sizeof(tmp));
            return SRV_MATCH_OK;
        }
        if (allow != NULL && allow_len > 0) {
            size_t l = strlen(allow);
            snprintf(allow + l, allow_len - l, "%s%s", path_found ? ", " : "",
                     method_names[routes[i].method]);
        }
        path_found = 1;
    }
    if (path_found && allow != NULL && allow_len > 0) {
        size_t l = strlen(allow);
        snprintf(allow + l, allow_len - l, ", OPTIONS");
    }
    return path_found ? SRV_MATCH_BAD_METHOD : SRV_MATCH_NOT_FOUND;
}

unsigned srv_media_flag(const char *media_type)
{
    if (strcmp(media_type, "application/json") == 0)
        return SRV_BODY_JSON;
    if (strcmp(media_type, "application/x-npy") == 0)
        return SRV_BODY_NPY;
    if (strcmp(media_type, "application/octet-stream") == 0)
        return SRV_BODY_F32;
    return 0;
}

int srv_route_check_body(const srv_route *r, const char *media_type, int has_length,
                         unsigned long long length, unsigned long long max)
{
    if ((r->flags & SRV_BODY_ANY) == 0)
        return -1;
    if ((srv_media_flag(media_type) & r->flags) == 0)
        return (int)SRV_P_UNSUPPORTED_MEDIA_TYPE;
    if (has_length && length > max)
        return (int)SRV_P_BODY_TOO_LARGE;
    return -1;
}

void srv_routes_print(FILE *f)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        fprintf(f, "%s %s\n", method_names[routes[i].method], routes[i].pattern);
}

/* ---- requests ---- */

void srv_req_init(srv_req *r)
{
    memset(r, 0, sizeof(*r));
    r->prefer_wait = -1;
}

void srv_req_deinit(srv_req *r)
{
    for (size_t i = 0; i < r->n_query; i++) {
        free(r->qk[i]);
        free(r->qv[i]);
    }
    r->n_query = 0;
}

hl_status srv_req_add_query(srv_req *r, const char *k, const char *v)
{
    if (r->n_query >= SRV_MAX_QUERY)
        return HL_RANGE;
    char *kk = strdup(k), *vv = strdup(v != NULL ? v : "");
    if (kk == NULL || vv == NULL) {
        free(kk);
        free(vv);
        return HL_NOMEM;
    }
    r->qk[r->n_query] = kk;
    r->qv[r->n_query] = vv;
    r->n_query++;
    return HL_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void url_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

hl_status srv_req_parse_query(srv_req *r, const char *qs)
{
    char *copy = strdup(qs);
    if (copy == NULL)
        return HL_NOMEM;
    hl_status st = HL_OK;
    char *save = NULL;
    for (char *part = strtok_r(copy, "&", &save); part != NULL && st == HL_OK;
         part = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(part, '=');
        if (eq != NULL)
            *eq = '\0';
        url_decode(part);
        if (eq != NULL)
            url_decode(eq + 1);
        st = srv_req_add_query(r, part, eq != NULL ? eq + 1 : "");
    }
    free(copy);
    return st;
}

const char *srv_req_query(const srv_req *r, const char *k)
{
    for (size_t i = 0; i < r->n_query; i++) {
        if (strcmp(r->qk[i], k) == 0)
            return r->qv[i];
    }
    return NULL;
}

static void url_encode(srv_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            srv_buf_put(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            srv_buf_put(b, e, 3);
        }
    }
}

char *srv_req_query_string(const srv_req *r)
{
    srv_buf b;
    srv_buf_init(&b, 64);
    for (size_t i = 0; i < r->n_query; i++) {
        if (i > 0)
            srv_buf_put(&b, "&", 1);
        url_encode(&b, r->qk[i]);
        srv_buf_put(&b, "=", 1);
        url_encode(&b, r->qv[i]);
    }
    size_t len;
    return srv_buf_take(&b, &len);
}

/* ---- responses ---- */

void srv_resp_init(srv_resp *r)
{
    memset(r, 0, sizeof(*r));
}

void srv_resp_clear(srv_resp *r)
{
    free(r->body);
    if (r->wait_job != NULL)
        srv_job_release(r->wait_job);
    srv_resp_init(r);
}

void srv_resp_header(srv_resp *r, const char *name, const char *fmt, ...)
{
    size_t i;
    for (i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->hname[i], name) == 0)
            break;
    }
    if (i == SRV_MAX_HEADERS)
        return;
    snprintf(r->hname[i], sizeof(r->hname[i]), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->hval[i], sizeof(r->hval[i]), fmt, ap);
    va_end(ap);
    if (i == r->n_headers)
        r->n_headers++;
}

const char *srv_resp_get_header(const srv_resp *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->hname[i], name) == 0)
            return r->hval[i];
    }
    return NULL;
}

hl_status srv_resp_json(srv_resp *r, int status, char *body, size_t len)
{
    if (body == NULL)
        return HL_NOMEM;
    free(r->body);
    r->status = status;
    r->content_type = "application/json";
    r->body = body;
    r->len = len;
    return HL_OK;
}

hl_status srv_resp_problem(srv_resp *r, const srv_req *req, srv_problem p, const hl_error *err,
                           const char *detail_fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof(detail), detail_fmt, ap);
    va_end(ap);
    srv_buf b;
    srv_buf_init(&b, 512);
    srv_buf_puts(&b, "{\"type\":\"/problems/");
    srv_buf_puts(&b, srv_problem_suffix(p));
    srv_buf_puts(&b, "\",\"title\":");
    srv_buf_json_str(&b, srv_problem_title(p));
    srv_buf_printf(&b, ",\"status\":%d,\"detail\":", srv_problem_status(p));
    srv_buf_json_str(&b, detail);
    srv_buf_puts(&b, ",\"instance\":");
    srv_buf_json_str(&b, req != NULL && req->request_id[0] != '\0' ? req->request_id : NULL);
    if (err != NULL && err->field[0] != '\0') {
        srv_buf_puts(&b, ",\"field\":");
        srv_buf_json_str(&b, err->field);
    }
    if (err != NULL && err->has_col)
        srv_buf_printf(&b, ",\"offset\":{\"row\":%zu,\"column\":%zu}", err->offset, err->col);
    else if (err != NULL && err->has_offset)
        srv_buf_printf(&b, ",\"offset\":%zu", err->offset);
    srv_buf_puts(&b, "}");
    free(r->body);
    r->body = srv_buf_take(&b, &r->len);
    r->status = srv_problem_status(p);
    r->content_type = "application/problem+json";
    r->is_problem = 1;
    r->problem = p;
    if (p == SRV_P_QUEUE_FULL || p == SRV_P_RATE_LIMITED)
        srv_resp_header(r, "Retry-After", "1");
    else if (p == SRV_P_UNAVAILABLE)
        srv_resp_header(r, "Retry-After", "5");
    return HL_OK;
}
