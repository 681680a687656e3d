/*
 * test_bad_input.c - the bad-input catalogue. hilanderd runs on a loopback port with the
 * embedded store and small limits (1 MiB bodies, 1000 points, dimension 64) and gets every
 * kind of malformed request of api.md's error catalogue, five rounds over. Each answer must
 * carry the documented status and a valid RFC 9457 problem: Content-Type
 * application/problem+json, an object with the documented `type`, a `title`, `status` equal
 * to the HTTP status, a `detail` and an `instance`.
 *
 * Between rounds /livez must answer 200 and the server's VmRSS (/proc/<pid>/status) must not
 * grow: round 5 within RSS_MARGIN_KB of round 2 (round 1 warms the allocator). The server runs
 * with MALLOC_ARENA_MAX=1: with glibc's default of one arena per thread, each of the HTTP
 * threads' arenas grows once to the largest body it has held (1 MiB here), whenever the
 * scheduler first gives that thread such a body, which looks like growth for a few rounds and
 * then stops (12.9 MB after 20 rounds, flat from round 9); one arena warms up in round 1, so
 * a leak is what would still show.
 * During round 1, slow clients (a few body bytes a second, with Content-Length and chunked)
 * run beside the catalogue: hilanderd must cut them (http.c's body rate rule, well before
 * MHD's 120 s idle timeout) while it keeps answering everyone else.
 *
 * Requests go over plain sockets (Connection: close), so every byte on the wire is the test's
 * choice: wrong Content-Lengths, bodies never sent, chunked encoding, raw request lines.
 * Loopback only; every wait is bounded; the whole run is under SUITE_SECONDS.
 *
 * Usage: test_bad_input HILANDERD HILANDER PROJECT_DIR
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUITE_SECONDS 240
#ifndef ROUNDS
#define ROUNDS 5
#endif
#define RSS_MARGIN_KB 512
#define MAX_BODY      (1024 * 1024)
#define IO_SECONDS    30.0
#define SLOW_CLIENTS  6

/* Under ASan freed memory sits in a quarantine and under TSan in shadow-tracked pools, so the
 * RSS figure says nothing about leaks there; LeakSanitizer checks the server's exit instead. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HL_SANITIZED 1
#endif
#endif
#ifndef HL_SANITIZED
#define HL_SANITIZED 0
#endif

/* ---- a plain-socket HTTP client ---- */

typedef struct rresp {
    int status; /* -1: no answer (closed or timed out) */
    char ctype[128], allow[128];
    char *body;
    size_t blen;
} rresp;

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {(time_t)IO_SECONDS, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends all of p; returns 0, or -1 when the peer closed or stalled (the answer may still be
 * readable: a server may answer and close before the body is through). */
static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void hdr_value(const char *hdrs, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = hdrs; p != NULL && *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL)
            return;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = (size_t)(eol - v) < outlen - 1 ? (size_t)(eol - v) : outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
        p = eol + 2;
    }
}

/* Reads the answer until the server closes (the requests say Connection: close). */
static void read_answer(int fd, rresp *r)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    double t0 = now();
    while (buf != NULL && now() - t0 < IO_SECONDS) {
        if (len == cap) {
            if (cap >= (size_t)16 << 20)
                break;
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    memset(r, 0, sizeof(*r));
    r->status = -1;
    if (buf == NULL)
        return;
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    int code;
    if (sep != NULL && sscanf(buf, "HTTP/1.%*1[01] %3d", &code) == 1) {
        r->status = code;
        sep[2] = '\0'; /* headers end with their last CRLF */
        hdr_value(buf, "Content-Type", r->ctype, sizeof(r->ctype));
        hdr_value(buf, "Allow", r->allow, sizeof(r->allow));
        char cl[32];
        hdr_value(buf, "Content-Length", cl, sizeof(cl));
        size_t off = (size_t)(sep + 4 - buf);
        size_t n = len - off;
        if (cl[0] != '\0' && strtoull(cl, NULL, 10) < n)
            n = strtoull(cl, NULL, 10);
        r->body = malloc(n + 1);
        if (r->body != NULL) {
            memcpy(r->body, buf + off, n);
            r->body[n] = '\0';
            r->blen = n;
        }
    }
    free(buf);
}

enum { SEND_BODY, SEND_CHUNKED, SEND_HEAD_ONLY };

/* One request. `extra` holds whole header lines ("Name: v\r\n"); ctype NULL sends none. */
static int exchange(int port, const char *method, const char *path, const char *ctype,
                    const char *extra, const void *body, size_t len, int mode, size_t declared,
                    rresp *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    int fd = dial(port);
    if (fd < 0)
        return -1;
    size_t hcap = strlen(path) + 1024 + (extra != NULL ? strlen(extra) : 0);
    char *head = malloc(hcap);
    if (head == NULL) {
        close(fd);
        return -1;
    }
    int n = snprintf(head, hcap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n",
                     method, path, port);
    if (ctype != NULL)
        n += snprintf(head + n, hcap - (size_t)n, "Content-Type: %s\r\n", ctype);
    if (mode == SEND_CHUNKED)
        n += snprintf(head + n, hcap - (size_t)n, "Transfer-Encoding: chunked\r\n");
    else if (mode == SEND_HEAD_ONLY)
        n += snprintf(head + n, hcap - (size_t)n, "Content-Length: %zu\r\n", declared);
    else if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        n += snprintf(head + n, hcap - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, hcap - (size_t)n, "%s\r\n", extra != NULL ? extra : "");
    int ok = send_all(fd, head, (size_t)n) == 0;
    free(head);
    if (ok && mode == SEND_BODY && len > 0)
        send_all(fd, body, len);
    if (ok && mode == SEND_CHUNKED) {
        const char *c = body;
        for (size_t off = 0; off < len && ok;) {
            size_t k = len - off < 65536 ? len - off : 65536;
            char sz[32];
            int m = snprintf(sz, sizeof(sz), "%zx\r\n", k);
            ok = send_all(fd, sz, (size_t)m) == 0 && send_all(fd, c + off, k) == 0 &&
                 send_all(fd, "\r\n", 2) == 0;
            off += k;
        }
        if (ok)
            send_all(fd, "0\r\n\r\n", 5);
    }
    read_answer(fd, r);
    close(fd);
    return r->status;
}

static void rfree(rresp *r)
{
    free(r->body);
    r->body = NULL;
}

/* Whether r is a complete RFC 9457 problem of this status and type suffix; why not in `why`. */
static int valid_problem(const rresp *r, int status, const char *suffix, char *why, size_t wl)
{
    why[0] = '\0';
    if (r->status != status) {
        snprintf(why, wl, "status %d", r->status);
        return 0;
    }
    if (strcmp(r->ctype, "application/problem+json") != 0) {
        snprintf(why, wl, "Content-Type '%s'", r->ctype);
        return 0;
    }
    json_t *j = r->body != NULL ? json_loadb(r->body, r->blen, 0, NULL) : NULL;
    char type[96];
    snprintf(type, sizeof(type), "/problems/%s", suffix);
    const char *t = json_string_value(json_object_get(j, "type"));
    const char *title = json_string_value(json_object_get(j, "title"));
    const char *detail = json_string_value(json_object_get(j, "detail"));
    const char *inst = json_string_value(json_object_get(j, "instance"));
    json_t *st = json_object_get(j, "status");
    int ok = 0;
    if (!json_is_object(j))
        snprintf(why, wl, "the body is not a JSON object");
    else if (t == NULL || strcmp(t, type) != 0)
        snprintf(why, wl, "type '%s'", t != NULL ? t : "(none)");
    else if (!json_is_integer(st) || json_integer_value(st) != status)
        snprintf(why, wl, "\"status\" member is not %d", status);
    else if (title == NULL || title[0] == '\0' || detail == NULL || inst == NULL || inst[0] == '\0')
        snprintf(why, wl, "title, detail or instance missing");
    else
        ok = 1;
    json_decref(j);
    return ok;
}

/* ---- bodies ---- */

typedef struct blob {
    char *p;
    size_t n, cap;
} blob;

static void blob_put(blob *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) { /* geometric growth: bodies are built a few bytes at a time */
        size_t cap = b->cap > 0 ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL)
            abort();
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void blob_printf(blob *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void blob_printf(blob *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    blob_put(b, tmp, (size_t)n);
}

/* A .npy: `major` 1 or 2, the header dict from descr/fortran/shape, then `data`. */
static void npy(blob *b, int major, const char *descr, const char *fortran, const char *shape,
                const void *data, size_t n)
{
    char dict[256];
    int dl = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                      descr, fortran, shape);
    size_t pre = major == 1 ? 10 : 12;
    size_t pad = (64 - (pre + (size_t)dl + 1) % 64) % 64;
    size_t hl = (size_t)dl + pad + 1;
    unsigned char head[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    head[8] = (unsigned char)(hl & 0xff);
    head[9] = (unsigned char)(hl >> 8);
    blob_put(b, head, pre);
    blob_put(b, dict, (size_t)dl);
    for (size_t i = 0; i < pad; i++)
        blob_put(b, " ", 1);
    blob_put(b, "\n", 1);
    if (n > 0)
        blob_put(b, data, n);
}

static void floats(blob *b, size_t n, float special, size_t at)
{
    for (size_t i = 0; i < n; i++) {
        float v = i == at ? special : (float)(i % 7) * 0.25f + 0.1f;
        blob_put(b, &v, sizeof(v));
    }
}

enum gen {
    G_TEXT = 0,
    G_NPY_TRUNCATED,
    G_NPY_HEADER_ONLY,
    G_NPY_BAD_MAGIC,
    G_NPY_BAD_VERSION,
    G_NPY_F8,
    G_NPY_I4,
    G_NPY_BIG_ENDIAN,
    G_NPY_FORTRAN,
    G_NPY_RANK1,
    G_NPY_RANK3,
    G_NPY_BAD_HEADER,
    G_NPY_TRAILING,
    G_NPY_HUGE_DIMS,
    G_NPY_HUGE_ROWS,
    G_NPY_NAN,
    G_NPY_INF,
    G_NPY_ONE_POINT,
    G_NPY_TOO_MANY,
    G_NPY_DIM_BIG,
    G_NPY_OK,
    G_RAW_16,
    G_RAW_NAN,
    G_JSON_TOO_MANY,
    G_JSON_DIM_BIG,
    G_OVERSIZE,
};

static blob make_body(int g, const char *text)
{
    blob b = {NULL, 0, 0};
    blob_put(&b, "", 0);
    float f8[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    switch (g) {
        case G_TEXT:
            blob_put(&b, text, strlen(text));
            break;
        case G_NPY_TRUNCATED:
            npy(&b, 1, "<f4", "False", "(4, 2)", f8, 24);
            break;
        case G_NPY_HEADER_ONLY:
            npy(&b, 1, "<f4", "False", "(4, 2)", NULL, 0);
            b.n = 20; /* cut inside the header */
            break;
        case G_NPY_BAD_MAGIC:
            npy(&b, 1, "<f4", "False", "(4, 2)", f8, sizeof(f8));
            b.p[5] = 'Z';
            break;
        case G_NPY_BAD_VERSION:
            npy(&b, 1, "<f4", "False", "(4, 2)", f8, sizeof(f8));
            b.p[6] = 9;
            break;
        case G_NPY_F8: {
            double d[4] = {1, 2, 3, 4};
            npy(&b, 1, "<f8", "False", "(2, 2)", d, sizeof(d));
            break;
        }
        case G_NPY_I4: {
            int32_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
            npy(&b, 1, "<i4", "False", "(4, 2)", v, sizeof(v));
            break;
        }
        case G_NPY_BIG_ENDIAN:
            npy(&b, 1, ">f4", "False", "(4, 2)", f8, sizeof(f8));
            break;
        case G_NPY_FORTRAN:
            npy(&b, 1, "<f4", "True", "(4, 2)", f8, sizeof(f8));
            break;
        case G_NPY_RANK1:
            npy(&b, 1, "<f4", "False", "(8,)", f8, sizeof(f8));
            break;
        case G_NPY_RANK3:
            npy(&b, 1, "<f4", "False", "(2, 2, 2)", f8, sizeof(f8));
            break;
        case G_NPY_BAD_HEADER:
            npy(&b, 1, "<f4", "False", "(4, 2", f8, sizeof(f8));
            break;
        case G_NPY_TRAILING:
            npy(&b, 1, "<f4", "False", "(4, 2)", f8, sizeof(f8));
            blob_put(&b, "xxxx", 4);
            break;
        case G_NPY_HUGE_DIMS: /* declares 32 GB, sends 32 bytes: nothing may be allocated */
            npy(&b, 1, "<f4", "False", "(2, 4000000000)", f8, sizeof(f8));
            break;
        case G_NPY_HUGE_ROWS:
            npy(&b, 2, "<f4", "False", "(4000000000, 2)", f8, sizeof(f8));
            break;
        case G_NPY_NAN:
        case G_NPY_INF: {
            blob d = {NULL, 0, 0};
            floats(&d, 8, g == G_NPY_NAN ? __builtin_nanf("") : __builtin_inff(), 3);
            npy(&b, 1, "<f4", "False", "(4, 2)", d.p, d.n);
            free(d.p);
            break;
        }
        case G_NPY_ONE_POINT:
            npy(&b, 1, "<f4", "False", "(1, 2)", f8, 8);
            break;
        case G_NPY_TOO_MANY:
        case G_NPY_DIM_BIG:
        case G_NPY_OK: {
            size_t rows = g == G_NPY_TOO_MANY ? 1001 : (g == G_NPY_DIM_BIG ? 2 : 4);
            size_t cols = g == G_NPY_DIM_BIG ? 65 : 2;
            char shape[64];
            snprintf(shape, sizeof(shape), "(%zu, %zu)", rows, cols);
            blob d = {NULL, 0, 0};
            floats(&d, rows * cols, 0.0f, (size_t)-1);
            npy(&b, 1, "<f4", "False", shape, d.p, d.n);
            free(d.p);
            break;
        }
        case G_RAW_16:
        case G_RAW_NAN:
            floats(&b, 4, __builtin_nanf(""), g == G_RAW_NAN ? 2 : (size_t)-1);
            break;
        case G_JSON_TOO_MANY:
            blob_put(&b, "{\"embeddings\": [", 16);
            for (int i = 0; i < 1001; i++)
                blob_printf(&b, "%s[%d, 1]", i > 0 ? "," : "", i);
            blob_put(&b, "]}", 2);
            break;
        case G_JSON_DIM_BIG:
            blob_put(&b, "{\"embeddings\": [[", 17);
            for (int i = 0; i < 65; i++)
                blob_printf(&b, "%s%d", i > 0 ? "," : "", i);
            blob_put(&b, "],[1,2]]}", 9);
            break;
        case G_OVERSIZE: /* 64 KiB over the limit, in a JSON shape */
            blob_put(&b, "{\"embeddings\": [[", 17);
            while (b.n < MAX_BODY + 65536)
                blob_put(&b, "0.125,0.25,0.5,1.0,", 19);
            blob_put(&b, "1]]}", 4);
            break;
        default:
            abort();
    }
    return b;
}

/* ---- the catalogue ---- */

#define JSON "application/json"
#define NPY  "application/x-npy"
#define RAW  "application/octet-stream"
#define E2   "[[1,2],[3,4]]"

typedef struct tcase {
    const char *name;
    const char *method, *path, *ctype;
    int gen;
    const char *text;
    int mode;
    const char *extra; /* header lines */
    int status;
    const char *type;
} tcase;

/* "{J}" in a path is the id of a finished job made before round 1. */
// clang-format off
static const tcase cases[] = {
    /* JSON bodies: malformed (400) */
    {"json truncated", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,2],[3,4]", 0, NULL, 400, "malformed-body"},
    {"json trailing comma", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ",}", 0, NULL, 400, "malformed-body"},
    {"json garbage", "POST", "/v1/cluster", JSON, 0, "not json at all", 0, NULL, 400, "malformed-body"},
    {"json top-level array", "POST", "/v1/cluster", JSON, 0, E2, 0, NULL, 400, "malformed-body"},
    {"json top-level string", "POST", "/v1/cluster", JSON, 0, "\"embeddings\"", 0, NULL, 400, "malformed-body"},
    {"json missing embeddings", "POST", "/v1/cluster", JSON, 0, "{\"model\": \"none\"}", 0, NULL, 400, "malformed-body"},
    {"json embeddings an object", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": {\"a\": 1}}", 0, NULL, 400, "malformed-body"},
    {"json empty body", "POST", "/v1/cluster", JSON, 0, "", 0, NULL, 400, "malformed-body"},
    {"json duplicate key", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"embeddings\": " E2 "}", 0, NULL, 400, "malformed-body"},
    {"json invalid utf-8", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"model\": \"\xff\xfe\"}", 0, NULL, 400, "malformed-body"},
    {"json trailing data", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 "} {}", 0, NULL, 400, "malformed-body"},
    /* JSON bodies: not a matrix (422) */
    {"json ragged rows", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,2],[3]]}", 0, NULL, 422, "invalid-embeddings"},
    {"json string in a row", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,\"2\"],[3,4]]}", 0, NULL, 422, "invalid-embeddings"},
    {"json null in a row", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,null],[3,4]]}", 0, NULL, 422, "invalid-embeddings"},
    {"json bool in a row", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[true,1],[3,4]]}", 0, NULL, 422, "invalid-embeddings"},
    {"json nested array", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[[1],2],[3,4]]}", 0, NULL, 422, "invalid-embeddings"},
    {"json row not an array", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [1, 2]}", 0, NULL, 422, "invalid-embeddings"},
    {"json empty rows", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[],[]]}", 0, NULL, 422, "invalid-embeddings"},
    {"json ids length", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"ids\": [\"a\"]}", 0, NULL, 422, "invalid-embeddings"},
    {"json ids not strings", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"ids\": [1, 2]}", 0, NULL, 422, "invalid-embeddings"},
    {"json labels not integers", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"labels\": [1.5, 2]}", 0, NULL, 422, "invalid-embeddings"},
    {"json labels length", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"labels\": [1, 2, 3]}", 0, NULL, 422, "invalid-embeddings"},
    /* JSON bodies: non-finite values */
    {"json NaN", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,NaN],[3,4]]}", 0, NULL, 422, "non-finite-value"},
    {"json Infinity", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,2],[Infinity,4]]}", 0, NULL, 422, "non-finite-value"},
    {"json -Infinity", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,2],[3,-Infinity]]}", 0, NULL, 422, "non-finite-value"},
    {"json float32 overflow", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1e39,2],[3,4]]}", 0, NULL, 422, "non-finite-value"},
    /* JSON bodies: sizes */
    {"json one point", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,2]]}", 0, NULL, 422, "size-out-of-range"},
    {"json no points", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": []}", 0, NULL, 422, "size-out-of-range"},
    {"json N above max-points", "POST", "/v1/cluster", JSON, G_JSON_TOO_MANY, NULL, 0, NULL, 413, "size-out-of-range"},
    {"json dim above max-dim", "POST", "/v1/cluster", JSON, G_JSON_DIM_BIG, NULL, 0, NULL, 413, "size-out-of-range"},
    /* JSON bodies: parameters and models */
    {"json unknown key", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"colour\": 1}", 0, NULL, 422, "invalid-parameter"},
    {"json params not an object", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": [1]}", 0, NULL, 422, "invalid-parameter"},
    {"json k a string", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": {\"k\": \"ten\"}}", 0, NULL, 422, "invalid-parameter"},
    {"json k out of range", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": {\"k\": 100000}}", 0, NULL, 422, "invalid-parameter"},
    {"json tau out of range", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": {\"tau\": 1.5}}", 0, NULL, 422, "invalid-parameter"},
    {"json max_levels 0", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": {\"max_levels\": 0}}", 0, NULL, 422, "invalid-parameter"},
    {"json unknown param", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": {\"kk\": 3}}", 0, NULL, 422, "invalid-parameter"},
    {"json knn not built", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": {\"knn\": \"hnsw\"}}", 0, NULL, 422, "invalid-parameter"},
    {"json new_clusters on submit", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"params\": {\"new_clusters\": \"open\"}}", 0, NULL, 422, "invalid-parameter"},
    {"json model bad characters", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"model\": \"../x\"}", 0, NULL, 422, "invalid-parameter"},
    {"json model not a string", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"model\": 5}", 0, NULL, 422, "invalid-parameter"},
    {"json unknown model", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": " E2 ", \"model\": \"nope\"}", 0, NULL, 422, "unknown-model"},
    /* .npy bodies */
    {"npy truncated data", "POST", "/v1/cluster", NPY, G_NPY_TRUNCATED, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy truncated header", "POST", "/v1/cluster", NPY, G_NPY_HEADER_ONLY, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy empty body", "POST", "/v1/cluster", NPY, 0, "", 0, NULL, 400, "invalid-npy"},
    {"npy bad magic", "POST", "/v1/cluster", NPY, G_NPY_BAD_MAGIC, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy bad version", "POST", "/v1/cluster", NPY, G_NPY_BAD_VERSION, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy dtype <f8", "POST", "/v1/cluster", NPY, G_NPY_F8, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy dtype <i4", "POST", "/v1/cluster", NPY, G_NPY_I4, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy big-endian", "POST", "/v1/cluster", NPY, G_NPY_BIG_ENDIAN, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy fortran order", "POST", "/v1/cluster", NPY, G_NPY_FORTRAN, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy rank 1", "POST", "/v1/cluster", NPY, G_NPY_RANK1, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy rank 3", "POST", "/v1/cluster", NPY, G_NPY_RANK3, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy malformed header", "POST", "/v1/cluster", NPY, G_NPY_BAD_HEADER, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy trailing data", "POST", "/v1/cluster", NPY, G_NPY_TRAILING, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy declares 4e9 columns", "POST", "/v1/cluster", NPY, G_NPY_HUGE_DIMS, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy v2 declares 4e9 rows", "POST", "/v1/cluster", NPY, G_NPY_HUGE_ROWS, NULL, 0, NULL, 400, "invalid-npy"},
    {"npy NaN", "POST", "/v1/cluster", NPY, G_NPY_NAN, NULL, 0, NULL, 422, "non-finite-value"},
    {"npy Inf", "POST", "/v1/cluster", NPY, G_NPY_INF, NULL, 0, NULL, 422, "non-finite-value"},
    {"npy one point", "POST", "/v1/cluster", NPY, G_NPY_ONE_POINT, NULL, 0, NULL, 422, "size-out-of-range"},
    {"npy N above max-points", "POST", "/v1/cluster", NPY, G_NPY_TOO_MANY, NULL, 0, NULL, 413, "size-out-of-range"},
    {"npy dim above max-dim", "POST", "/v1/cluster", NPY, G_NPY_DIM_BIG, NULL, 0, NULL, 413, "size-out-of-range"},
    /* query strings (a valid .npy body; the query is read first) */
    {"query k not an integer", "POST", "/v1/cluster?k=ten", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query k out of range", "POST", "/v1/cluster?k=100000", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query tau out of range", "POST", "/v1/cluster?tau=1.5", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query early_stop not a bool", "POST", "/v1/cluster?early_stop=maybe", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query unknown key", "POST", "/v1/cluster?colour=blue", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query key repeated", "POST", "/v1/cluster?k=5&k=6", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query empty model", "POST", "/v1/cluster?model=", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query model with a slash", "POST", "/v1/cluster?model=..%2Fx", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query %00 in a value", "POST", "/v1/cluster?model=none%00x", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query dim on .npy", "POST", "/v1/cluster?dim=2", NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query unknown model", "POST", "/v1/cluster?model=nope", NPY, G_NPY_OK, NULL, 0, NULL, 422, "unknown-model"},
    {"query too long", "POST", NULL /* built: 5000-byte model */, NPY, G_NPY_OK, NULL, 0, NULL, 422, "invalid-parameter"},
    {"query too many parameters", "POST", NULL /* built: 100 pairs */, NPY, G_NPY_OK, NULL, 0, NULL, 400, "bad-request"},
    /* raw float32 bodies */
    {"raw without dim", "POST", "/v1/cluster", RAW, G_RAW_16, NULL, 0, NULL, 400, "invalid-raw"},
    {"raw size not a multiple", "POST", "/v1/cluster?dim=3", RAW, G_RAW_16, NULL, 0, NULL, 400, "invalid-raw"},
    {"raw empty body", "POST", "/v1/cluster?dim=2", RAW, 0, "", 0, NULL, 400, "invalid-raw"},
    {"raw dim 0", "POST", "/v1/cluster?dim=0", RAW, G_RAW_16, NULL, 0, NULL, 422, "invalid-parameter"},
    {"raw dim not a number", "POST", "/v1/cluster?dim=two", RAW, G_RAW_16, NULL, 0, NULL, 422, "invalid-parameter"},
    {"raw dim above max-dim", "POST", "/v1/cluster?dim=100000", RAW, G_RAW_16, NULL, 0, NULL, 413, "size-out-of-range"},
    {"raw NaN", "POST", "/v1/cluster?dim=2", RAW, G_RAW_NAN, NULL, 0, NULL, 422, "non-finite-value"},
    /* content types */
    {"content-type text/plain", "POST", "/v1/cluster", "text/plain", 0, "{\"embeddings\": " E2 "}", 0, NULL, 415, "unsupported-media-type"},
    {"no content-type", "POST", "/v1/cluster", NULL, 0, "{\"embeddings\": " E2 "}", 0, NULL, 415, "unsupported-media-type"},
    {"content-type form", "POST", "/v1/cluster", "application/x-www-form-urlencoded", 0, "embeddings=1", 0, NULL, 415, "unsupported-media-type"},
    {"content-type multipart", "POST", "/v1/cluster", "multipart/form-data; boundary=x", 0, "--x--", 0, NULL, 415, "unsupported-media-type"},
    {"content-type xml", "POST", "/v1/cluster", "application/xml", 0, "<e/>", 0, NULL, 415, "unsupported-media-type"},
    /* oversized bodies */
    {"Content-Length over the limit, no body", "POST", "/v1/cluster", JSON, 0, "", SEND_HEAD_ONLY, NULL, 413, "body-too-large"},
    {"Content-Length 1 TB, no body", "POST", "/v1/cluster", NPY, 0, "", SEND_HEAD_ONLY, NULL, 413, "body-too-large"},
    {"chunked body over the limit", "POST", "/v1/cluster", JSON, G_OVERSIZE, NULL, SEND_CHUNKED, NULL, 413, "body-too-large"},
    /* ids, models, routes, methods */
    {"unknown job", "GET", "/v1/jobs/j_doesnotexist", NULL, 0, NULL, 0, NULL, 404, "job-not-found"},
    {"unknown job result", "GET", "/v1/jobs/j_doesnotexist/result", NULL, 0, NULL, 0, NULL, 404, "job-not-found"},
    {"unknown job delete", "DELETE", "/v1/jobs/j_doesnotexist", NULL, 0, NULL, 0, NULL, 404, "job-not-found"},
    {"job id over 64 bytes", "GET", "/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, 0, NULL, 0, NULL, 404, "not-found"},
    {"job id with a bad character", "GET", "/v1/jobs/j!x", NULL, 0, NULL, 0, NULL, 404, "not-found"},
    {"job path too deep", "GET", "/v1/jobs/a/b/c", NULL, 0, NULL, 0, NULL, 404, "not-found"},
    {"unknown model", "GET", "/v1/models/nope", NULL, 0, NULL, 0, NULL, 404, "unknown-model"},
    {"unknown route", "GET", "/v1/nothing", NULL, 0, NULL, 0, NULL, 404, "not-found"},
    {"root", "GET", "/", NULL, 0, NULL, 0, NULL, 404, "not-found"},
    {"PUT /v1/cluster", "PUT", "/v1/cluster", JSON, 0, "{}", 0, NULL, 405, "method-not-allowed"},
    {"GET /v1/cluster", "GET", "/v1/cluster", NULL, 0, NULL, 0, NULL, 405, "method-not-allowed"},
    {"DELETE /v1/models", "DELETE", "/v1/models", NULL, 0, NULL, 0, NULL, 405, "method-not-allowed"},
    {"POST /livez", "POST", "/livez", JSON, 0, "{}", 0, NULL, 405, "method-not-allowed"},
    {"PATCH a job", "PATCH", "/v1/jobs/j_x", JSON, 0, "{}", 0, NULL, 405, "method-not-allowed"},
    /* a finished job's result with bad options */
    {"result format xml", "GET", "/v1/jobs/{J}/result?format=xml", NULL, 0, NULL, 0, NULL, 422, "invalid-parameter"},
    {"result limit 0", "GET", "/v1/jobs/{J}/result?limit=0", NULL, 0, NULL, 0, NULL, 422, "invalid-parameter"},
    {"result limit not a number", "GET", "/v1/jobs/{J}/result?limit=ten", NULL, 0, NULL, 0, NULL, 422, "invalid-parameter"},
    {"result offset negative", "GET", "/v1/jobs/{J}/result?offset=-1", NULL, 0, NULL, 0, NULL, 422, "invalid-parameter"},
    {"result levels bad", "GET", "/v1/jobs/{J}/result?format=npy&levels=some", NULL, 0, NULL, 0, NULL, 422, "invalid-parameter"},
    /* Idempotency-Key reused with another body */
    {"Idempotency-Key reused", "POST", "/v1/cluster", JSON, 0, "{\"embeddings\": [[1,0],[0,1],[1,0.2]]}", 0, "Idempotency-Key: bad-input-key\r\n", 422, "idempotency-key-reused"},
};
// clang-format on

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static char g_job[80];
static char *g_long_query, *g_many_query;

static const char *case_path(const tcase *c, char *buf, size_t len)
{
    if (c->path == NULL)
        return strstr(c->name, "long") != NULL ? g_long_query : g_many_query;
    const char *j = strstr(c->path, "{J}");
    if (j == NULL)
        return c->path;
    snprintf(buf, len, "%.*s%s%s", (int)(j - c->path), c->path, g_job, j + 3);
    return buf;
}

/* Runs every case once; returns how many answered as documented. */
static int run_catalogue(int port, int round)
{
    int good = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        const tcase *c = &cases[i];
        blob b = make_body(c->gen, c->text != NULL ? c->text : "");
        char pbuf[512];
        const char *path = case_path(c, pbuf, sizeof(pbuf));
        size_t declared = strstr(c->name, "1 TB") != NULL ? (size_t)1 << 40 : (size_t)2 * MAX_BODY;
        int has_body = c->text != NULL || c->gen != 0;
        rresp r;
        exchange(port, c->method, path, c->ctype, c->extra, has_body ? b.p : NULL, b.n, c->mode,
                 declared, &r);
        char why[160];
        int ok = valid_problem(&r, c->status, c->type, why, sizeof(why));
        if (ok && c->status == 405)
            ok = r.allow[0] != '\0';
        CHECK(ok, "round %d, %s: want %d %s, %s: %.300s", round, c->name, c->status, c->type,
              why[0] != '\0' ? why : "no Allow header", r.body != NULL ? r.body : "");
        good += ok;
        rfree(&r);
        free(b.p);
    }
    return good;
}

/* ---- slow clients ---- */

typedef struct slow_client {
    int port, chunked;
    double cut_after; /* seconds until the server closed; -1 if it never did */
    int status;       /* an HTTP status if one came back, else -1 */
} slow_client;

/* Sends a body of 1000 declared bytes at 4 bytes every 0.8 s (about 5 B/s) and waits for the
 * server to close the connection; gives up after 40 s (the full body would take 200 s). */
static void *slow_run(void *arg)
{
    slow_client *s = arg;
    s->cut_after = -1;
    s->status = -1;
    int fd = dial(s->port);
    if (fd < 0)
        return NULL;
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST /v1/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\n%s\r\n",
                     s->chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 1000\r\n");
    double t0 = now();
    if (send_all(fd, head, (size_t)n) != 0) {
        close(fd);
        return NULL;
    }
    while (now() - t0 < 40.0) {
        const char *piece = s->chunked ? "4\r\n[[1,\r\n" : "[[1,";
        if (send_all(fd, piece, strlen(piece)) != 0) {
            s->cut_after = now() - t0;
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 800) > 0) {
            char buf[512];
            ssize_t k = recv(fd, buf, sizeof(buf) - 1, 0);
            if (k > 0) {
                buf[k] = '\0';
                int code;
                if (sscanf(buf, "HTTP/1.%*1[01] %3d", &code) == 1)
                    s->status = code;
            }
            s->cut_after = now() - t0;
            break;
        }
    }
    close(fd);
    return NULL;
}

/* ---- extra robustness: requests MHD answers (or drops) before hilanderd sees them ---- */

static void transport_cases(int port)
{
    static const char *raw[] = {
        "HELLO\r\n\r\n",
        "GET /livez HTTP/9.9\r\nHost: x\r\n\r\n",
        "POST /v1/cluster HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST /v1/cluster HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        int fd = dial(port);
        CHECK(fd >= 0, "transport case %zu: cannot connect", i);
        if (fd < 0)
            continue;
        send_all(fd, raw[i], strlen(raw[i]));
        shutdown(fd, SHUT_WR);
        rresp r;
        read_answer(fd, &r);
        close(fd);
        CHECK(r.status == -1 || r.status >= 400,
              "transport case %zu: status %d (want an error status or a closed connection)", i,
              r.status);
        rfree(&r);
    }
    /* a 300 KB header: over MHD's 256 KiB connection memory */
    size_t big = 300 * 1024;
    char *h = malloc(big + 128);
    int n = snprintf(h, 128, "GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(h + n, 'a', big);
    memcpy(h + n + big, "\r\n\r\n", 5);
    int fd = dial(port);
    if (fd >= 0) {
        send_all(fd, h, (size_t)n + big + 4);
        rresp r;
        read_answer(fd, &r);
        close(fd);
        CHECK(r.status == -1 || r.status >= 400,
              "300 KB header: status %d (want an error status or a closed connection)", r.status);
        rfree(&r);
    }
    free(h);
}

/* ---- process checks ---- */

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    return kb;
}

static int alive(const server *s)
{
    int st;
    if (waitpid(s->pid, &st, WNOHANG) != 0)
        return 0;
    rresp r;
    exchange(s->port, "GET", "/livez", NULL, NULL, NULL, 0, SEND_BODY, 0, &r);
    int ok = r.status == 200 && r.body != NULL && strstr(r.body, "alive") != NULL;
    rfree(&r);
    return ok;
}

static int healthcheck(const char *url)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        execl(g_daemon, g_daemon, "--healthcheck", url, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    for (double t0 = now(); now() - t0 < 10.0; sleep_ms(20)) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* A finished job to ask bad result options of, claiming the Idempotency-Key the catalogue
 * then reuses with another body. */
static int make_job(int port)
{
    const char *body = "{\"embeddings\": [[1,0],[0.9,0.1],[0,1]]}";
    rresp r;
    exchange(port, "POST", "/v1/cluster", JSON,
             "Prefer: wait=30\r\nIdempotency-Key: bad-input-key\r\n", body, strlen(body), SEND_BODY,
             0, &r);
    json_t *j = r.body != NULL ? json_loads(r.body, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(j, "id"));
    snprintf(g_job, sizeof(g_job), "%s", id != NULL ? id : "");
    int ok = r.status == 200 && g_job[0] != '\0';
    CHECK(ok, "setup job: %d %.200s", r.status, r.body != NULL ? r.body : "");
    json_decref(j);
    rfree(&r);
    return ok ? 0 : -1;
}

static void build_queries(void)
{
    size_t n = 5000;
    g_long_query = malloc(n + 32);
    int k = snprintf(g_long_query, 32, "/v1/cluster?model=");
    memset(g_long_query + k, 'a', n);
    g_long_query[k + (int)n] = '\0';
    g_many_query = malloc(2048);
    k = snprintf(g_many_query, 2048, "/v1/cluster?");
    for (int i = 0; i < 100; i++)
        k += snprintf(g_many_query + k, 2048 - (size_t)k, "%sp%d=1", i > 0 ? "&" : "", i);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_bad_input HILANDERD HILANDER PROJECT_DIR\n");
        return 2;
    }
    g_daemon = argv[1];
    g_cli = argv[2];
    g_root = argv[3];
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/hltest.badinput.XXXXXX");
    if (mkdtemp(g_tmp) == NULL)
        return 2;
    atexit(kill_servers);
    signal(SIGALRM, on_fatal);
    signal(SIGSEGV, on_fatal);
    signal(SIGABRT, on_fatal);
    signal(SIGINT, on_fatal);
    signal(SIGTERM, on_fatal);
    signal(SIGPIPE, SIG_IGN);
    alarm(SUITE_SECONDS);
    build_queries();

    server s;
    setenv("MALLOC_ARENA_MAX", "1", 1); /* see the top of the file */
    const char *flags[] = {"--default-model", "none", "--workers", "1",  "--max-body-bytes", "1M",
                           "--max-points",    "1000", "--max-dim", "64", "--log-level",      "warn",
                           "--drain-seconds", "0",    NULL};
    if (start(&s, "badinput", flags, NULL) != 0) {
        fprintf(stderr, "hilanderd did not start\n");
        return 1;
    }
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/livez", s.port);
    CHECK(healthcheck(url) == 0, "--healthcheck %s: not 0", url);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", s.port);
    CHECK(healthcheck(url) == 1, "--healthcheck on a 404 route: not 1");
    CHECK(healthcheck("http://127.0.0.1:1/livez") == 1, "--healthcheck on a closed port: not 1");

    if (make_job(s.port) != 0) {
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return 1;
    }
    long rss[ROUNDS + 1];
    rss[0] = rss_kb(s.pid);
    int all_good = 1;
    for (int round = 1; round <= ROUNDS; round++) {
        double t0 = now();
        slow_client slow[SLOW_CLIENTS];
        pthread_t th[SLOW_CLIENTS];
        int nslow = round == 1 ? SLOW_CLIENTS : 0;
        for (int i = 0; i < nslow; i++) {
            slow[i] = (slow_client){s.port, i % 2, -1, -1};
            pthread_create(&th[i], NULL, slow_run, &slow[i]);
        }
        int good = run_catalogue(s.port, round);
        all_good &= good == (int)N_CASES;
        if (round == 1)
            transport_cases(s.port);
        for (int i = 0; i < nslow; i++) {
            pthread_join(th[i], NULL);
            CHECK(slow[i].cut_after >= 9.0 && slow[i].cut_after <= 30.0,
                  "slow client %d (%s): closed after %.1f s (want 10-30 s)", i,
                  slow[i].chunked ? "chunked" : "Content-Length", slow[i].cut_after);
            CHECK(slow[i].status < 200 || slow[i].status >= 300, "slow client %d got a %d", i,
                  slow[i].status);
        }
        CHECK(alive(&s), "round %d: /livez did not answer 200", round);
        sleep_ms(200);
        rss[round] = rss_kb(s.pid);
        printf("round %d: %d/%zu cases as documented, %.1f s, VmRSS %ld kB%s\n", round, good,
               N_CASES, now() - t0, rss[round],
               nslow > 0 ? " (with slow clients and transport cases)" : "");
        fflush(stdout);
    }
    printf(
        "catalogue: %zu cases x %d rounds; VmRSS start %ld kB, round 2 %ld kB, round %d %ld kB\n",
        N_CASES, ROUNDS, rss[0], rss[2], ROUNDS, rss[ROUNDS]);
    CHECK(all_good, "some cases did not answer as documented (see above)");
    if (HL_SANITIZED)
        printf("VmRSS check skipped in a sanitizer build; the server's exit is checked instead\n");
    else
        CHECK(rss[2] > 0 && rss[ROUNDS] <= rss[2] + RSS_MARGIN_KB,
              "VmRSS grew from %ld kB (round 2) to %ld kB (round %d): over %d kB", rss[2],
              rss[ROUNDS], ROUNDS, RSS_MARGIN_KB);

    /* SIGTERM: the server drains (0 s here) and exits 0; in an ASan build LeakSanitizer runs
     * at that exit and turns any leak into a non-zero status. */
    kill(s.pid, SIGTERM);
    int st = -1, exited = 0;
    for (double t0 = now(); now() - t0 < 60.0 && !exited; sleep_ms(20))
        exited = waitpid(s.pid, &st, WNOHANG) == s.pid;
    for (int i = 0; i < g_npids; i++)
        if (exited && g_pids[i] == s.pid)
            g_pids[i] = 0;
    CHECK(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "after SIGTERM the server %s (status %d); see %s",
          exited ? "exited badly" : "did not exit", exited && WIFEXITED(st) ? WEXITSTATUS(st) : -1,
          s.log);
    kill_servers();
    free(g_long_query);
    free(g_many_query);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    if (getenv("HL_KEEP") == NULL && g_failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_tmp);
    else if (g_failed > 0)
        fprintf(stderr, "server logs kept in %s\n", g_tmp);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
