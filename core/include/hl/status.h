/*
 * hl/status.h - status codes and positioned errors shared by every hilander library.
 *
 * Every fallible function returns an hl_status: 0 (HL_OK) on success, a negative code on
 * failure. Parsers and validators additionally fill an hl_error, whose first error wins: once
 * a code is set, later hl_error_set() calls leave it alone, so the root cause is reported.
 *
 * Thread-safety: everything here is reentrant; hl_error values are owned by the caller.
 *
 * Typical use:
 *     hl_error err;
 *     hl_error_clear(&err);
 *     if (hl_npy_decode(buf, len, &view, &err) != HL_OK)
 *         fprintf(stderr, "%s\n", err.msg);
 */
#ifndef HL_STATUS_H
#define HL_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One table generates the enum, hl_status_name() and hl_status_str(). */
#define HL_STATUS_MAP(XX)                                                                          \
    XX(OK, 0, "success")                                                                           \
    XX(INVAL, -1, "invalid argument")                                                              \
    XX(RANGE, -2, "value out of range")                                                            \
    XX(NOMEM, -3, "out of memory")                                                                 \
    XX(FORMAT, -4, "malformed data")                                                               \
    XX(VERSION, -5, "unsupported version")                                                         \
    XX(CHECKSUM, -6, "checksum mismatch")                                                          \
    XX(NUMERIC, -7, "non-finite value")                                                            \
    XX(CANCELED, -8, "canceled")                                                                   \
    XX(TIMEOUT, -9, "timed out")                                                                   \
    XX(BUSY, -10, "busy")                                                                          \
    XX(NOTFOUND, -11, "not found")                                                                 \
    XX(UNAVAILABLE, -12, "unavailable")                                                            \
    XX(IO, -13, "i/o error")                                                                       \
    XX(INTERNAL, -14, "internal error")

typedef enum hl_status {
#define HL_STATUS_ENUM_(name, code, text) HL_##name = (code),
    HL_STATUS_MAP(HL_STATUS_ENUM_)
#undef HL_STATUS_ENUM_
} hl_status;

/** Returns the constant's name without the prefix ("NOMEM"), or "UNKNOWN". Never NULL. */
const char *hl_status_name(hl_status s);

/** Returns a short English description ("out of memory"), or "unknown status". Never NULL. */
const char *hl_status_str(hl_status s);

/*
 * A positioned error. `field` names the offending field or parameter (a JSON pointer, a
 * flag, a tensor name); `offset` is a byte offset into the input, or a row index when
 * `has_col` is set, in which case `col` is the column. `msg` is one human-readable line.
 */
typedef struct hl_error {
    hl_status code;
    char field[48];
    size_t offset;
    size_t col;
    int has_offset;
    int has_col;
    char msg[160];
} hl_error;

/** Resets `err` to HL_OK with empty strings. `err` may be NULL (no-op). */
void hl_error_clear(hl_error *err);

/**
 * Records an error unless one is already recorded (first error wins). `err` may be NULL.
 * `field` may be NULL. Returns `code` so callers can write `return hl_error_set(...)`.
 */
hl_status hl_error_set(hl_error *err, hl_status code, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/** Like hl_error_set, and also records a byte offset. */
hl_status hl_error_set_at(hl_error *err, hl_status code, const char *field, size_t offset,
                          const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/** Like hl_error_set, and also records a (row, column) position. */
hl_status hl_error_set_cell(hl_error *err, hl_status code, const char *field, size_t row,
                            size_t col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/**
 * Overflow-checked size arithmetic for sizes that come from untrusted input. Each stores the
 * result in *out and returns HL_OK, or returns HL_RANGE and leaves *out untouched.
 */
hl_status hl_mul_size(size_t a, size_t b, size_t *out);
hl_status hl_add_size(size_t a, size_t b, size_t *out);

/*
 * Cancellation and progress, polled by long-running engine calls (once per kNN tile, per
 * layer and per level). Both are optional: a NULL function pointer means "never" / "silent".
 */
typedef struct hl_cancel {
    /** Returns non-zero when the caller wants the computation to stop. */
    int (*should_stop)(void *ud);
    void *ud;
} hl_cancel;

/** Stages reported through hl_progress. */
typedef enum hl_stage {
    HL_STAGE_KNN = 0,
    HL_STAGE_GNN = 1,
    HL_STAGE_DECODE = 2,
    HL_STAGE_TRAIN = 3,
} hl_stage;

/** Returns "knn", "gnn", "decode" or "train". */
const char *hl_stage_name(hl_stage s);

typedef struct hl_progress {
    /** Called with the stage, the level (0-based) and the fraction done of that stage. */
    void (*report)(void *ud, hl_stage stage, int level, double fraction);
    void *ud;
} hl_progress;

/** True when the (possibly NULL) cancel hook asks to stop. */
int hl_cancel_requested(const hl_cancel *c);

/** Calls the (possibly NULL) progress hook. */
void hl_progress_report(const hl_progress *p, hl_stage stage, int level, double fraction);

#ifdef __cplusplus
}
#endif

#endif /* HL_STATUS_H */
