/* status.c - status names, positioned errors, checked size arithmetic, hooks. */
#include "hl/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hl_status_name(hl_status s)
{
    switch (s) {
#define HL_STATUS_NAME_(name, code, text)                                                          \
    case HL_##name:                                                                                \
        return #name;
        HL_STATUS_MAP(HL_STATUS_NAME_)
#undef HL_STATUS_NAME_
    }
    return "UNKNOWN";
}

const char *hl_status_str(hl_status s)
{
    switch (s) {
#define HL_STATUS_STR_(name, code, text)                                                           \
    case HL_##name:                                                                                \
        return text;
        HL_STATUS_MAP(HL_STATUS_STR_)
#undef HL_STATUS_STR_
    }
    return "unknown status";
}

void hl_error_clear(hl_error *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
    err->code = HL_OK;
}

/* The format attribute lets -Wformat-nonliteral (clang's -Wformat=2) accept the vsnprintf. */
static hl_status error_vset(hl_error *err, hl_status code, const char *field, const char *fmt,
                            va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 0)))
#endif
    ;

static hl_status error_vset(hl_error *err, hl_status code, const char *field, const char *fmt,
                            va_list ap)
{
    if (err == NULL || err->code != HL_OK)
        return code;
    err->code = code;
    if (field != NULL) {
        size_t n = strlen(field);
        if (n >= sizeof(err->field))
            n = sizeof(err->field) - 1;
        memcpy(err->field, field, n);
        err->field[n] = '\0';
    } else {
        err->field[0] = '\0';
    }
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return code;
}

hl_status hl_error_set(hl_error *err, hl_status code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hl_status r = error_vset(err, code, field, fmt, ap);
    va_end(ap);
    return r;
}

hl_status hl_error_set_at(hl_error *err, hl_status code, const char *field, size_t offset,
                          const char *fmt, ...)
{
    int fresh = err != NULL && err->code == HL_OK;
    va_list ap;
    va_start(ap, fmt);
    hl_status r = error_vset(err, code, field, fmt, ap);
    va_end(ap);
    if (fresh) {
        err->offset = offset;
        err->has_offset = 1;
    }
    return r;
}

hl_status hl_error_set_cell(hl_error *err, hl_status code, const char *field, size_t row,
                            size_t col, const char *fmt, ...)
{
    int fresh = err != NULL && err->code == HL_OK;
    va_list ap;
    va_start(ap, fmt);
    hl_status r = error_vset(err, code, field, fmt, ap);
    va_end(ap);
    if (fresh) {
        err->offset = row;
        err->col = col;
        err->has_offset = 1;
        err->has_col = 1;
    }
    return r;
}

hl_status hl_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return HL_RANGE;
    *out = a * b;
    return HL_OK;
}

hl_status hl_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return HL_RANGE;
    *out = a + b;
    return HL_OK;
}

const char *hl_stage_name(hl_stage s)
{
    switch (s) {
        case HL_STAGE_KNN:
            return "knn";
        case HL_STAGE_GNN:
            return "gnn";
        case HL_STAGE_DECODE:
            return "decode";
        case HL_STAGE_TRAIN:
            return "train";
    }
    return "unknown";
}

int hl_cancel_requested(const hl_cancel *c)
{
    return c != NULL && c->should_stop != NULL && c->should_stop(c->ud) != 0;
}

void hl_progress_report(const hl_progress *p, hl_stage stage, int level, double fraction)
{
    if (p != NULL && p->report != NULL)
        p->report(p->ud, stage, level, fraction);
}
