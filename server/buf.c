/* buf.c - growable and fixed byte buffers; see buf.h. */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_buf_init(srv_buf *b, size_t hint)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = 0;
    if (hint > 0) {
        b->p = malloc(hint);
        if (b->p == NULL)
            b->oom = 1;
        else
            b->cap = hint;
    }
}

void srv_buf_free(srv_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int reserve(srv_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

char *srv_buf_take(srv_buf *b, size_t *len)
{
    if (b->oom || reserve(b, 0) != 0) {
        srv_buf_free(b);
        b->oom = 0;
        return NULL;
    }
    b->p[b->len] = '\0';
    char *p = b->p;
    *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void srv_buf_put(srv_buf *b, const void *data, size_t n)
{
    if (n == 0 || reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void srv_buf_puts(srv_buf *b, const char *s)
{
    srv_buf_put(b, s, strlen(s));
}

void srv_buf_printf(srv_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        srv_buf_put(b, tmp, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void srv_buf_i64(srv_buf *b, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp), *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    srv_buf_put(b, p, (size_t)(e - p));
}

void srv_buf_json_num(srv_buf *b, double v)
{
    if (!isfinite(v)) {
        srv_buf_puts(b, "null");
        return;
    }
    srv_buf_printf(b, "%.6g", v);
}

void srv_json_escape(const char *s, size_t n, void (*put)(void *ud, const char *p, size_t n),
                     void *ud)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (i > start)
            put(ud, s + start, i - start);
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
            case '"':
                esc[1] = '"';
                break;
            case '\\':
                esc[1] = '\\';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
        }
        put(ud, esc, el);
        start = i + 1;
    }
    if (n > start)
        put(ud, s + start, n - start);
}

static void buf_put_cb(void *ud, const char *p, size_t n)
{
    srv_buf_put(ud, p, n);
}

void srv_buf_json_str(srv_buf *b, const char *s)
{
    if (s == NULL) {
        srv_buf_puts(b, "null");
        return;
    }
    srv_buf_put(b, "\"", 1);
    srv_json_escape(s, strlen(s), buf_put_cb, b);
    srv_buf_put(b, "\"", 1);
}

void srv_buf_json_i32s(srv_buf *b, const int32_t *v, size_t n)
{
    /* At most 12 bytes per value: reserve once, then write digits directly. */
    if (reserve(b, n * 12 + 2) != 0)
        return;
    char *p = b->p + b->len;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        int32_t x = v[i];
        uint32_t u = x < 0 ? (uint32_t)0 - (uint32_t)x : (uint32_t)x;
        if (x < 0)
            *p++ = '-';
        char tmp[12];
        int k = 0;
        do {
            tmp[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        while (k > 0)
            *p++ = tmp[--k];
    }
    *p++ = ']';
    b->len = (size_t)(p - b->p);
}

void srv_fixbuf_init(srv_fixbuf *b, char *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    b->full = 0;
}

static void fix_put(void *ud, const char *s, size_t n)
{
    srv_fixbuf *b = ud;
    if (b->full)
        return;
    if (b->len + n + 2 > b->cap) { /* keep room for the closing "}\n" */
        b->full = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void srv_fixbuf_puts(srv_fixbuf *b, const char *s)
{
    fix_put(b, s, strlen(s));
}

void srv_fixbuf_json_str(srv_fixbuf *b, const char *s)
{
    fix_put(b, "\"", 1);
    srv_json_escape(s, strlen(s), fix_put, b);
    fix_put(b, "\"", 1);
}
