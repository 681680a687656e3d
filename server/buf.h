/*
 * buf.h - byte buffers for building response bodies and log lines.
 *
 * srv_buf grows geometrically on the heap; an allocation failure sets `oom` and later appends
 * are ignored, so builders check once at the end (jansson's first-error-wins idea applied to
 * memory). srv_fixbuf writes into caller storage and sets `full` instead of growing.
 * Ownership: srv_buf_take() hands the malloc'd bytes to the caller.
 * Thread-safety: a buffer has one user at a time.
 */
#ifndef SRV_BUF_H
#define SRV_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_buf {
    char *p;
    size_t len, cap;
    int oom;
} srv_buf;

void srv_buf_init(srv_buf *b, size_t hint);
void srv_buf_free(srv_buf *b);
/** Returns the bytes (NUL-terminated, len in *len) and resets b; NULL if an append failed. */
char *srv_buf_take(srv_buf *b, size_t *len);
void srv_buf_put(srv_buf *b, const void *data, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
void srv_buf_printf(srv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void srv_buf_i64(srv_buf *b, int64_t v);
/** A JSON number for a double: shortest round-trip-ish (%.6g), null for NaN/Inf. */
void srv_buf_json_num(srv_buf *b, double v);
/** A quoted, escaped JSON string; NULL writes null. */
void srv_buf_json_str(srv_buf *b, const char *s);
/** A JSON array of int32 values. */
void srv_buf_json_i32s(srv_buf *b, const int32_t *v, size_t n);

typedef struct srv_fixbuf {
    char *p;
    size_t len, cap;
    int full;
} srv_fixbuf;

void srv_fixbuf_init(srv_fixbuf *b, char *mem, size_t cap);
void srv_fixbuf_puts(srv_fixbuf *b, const char *s);
void srv_fixbuf_json_str(srv_fixbuf *b, const char *s);

/** Writes the JSON-escaped form of s[0..n) through `put`. */
void srv_json_escape(const char *s, size_t n, void (*put)(void *ud, const char *p, size_t n),
                     void *ud);

#endif
