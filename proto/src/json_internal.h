/*
 * json_internal.h - pieces shared by the JSON request decoder and the query-string decoder
 * (not installed, not part of the API): the float32 number parser and the request parameter
 * table.
 *
 * Number parsing. hl__json_number() reads one JSON number (RFC 8259 grammar, nothing more)
 * and returns the float32 that strtof() would return for the same text, i.e. the correctly
 * rounded one. The fast path keeps up to 19 significant digits in a uint64 and, when the
 * decimal exponent is within +-22, computes w * 10^e or w / 10^e in double: 10^e is exact
 * there, so the result d is within about 2 ulp (double) of the exact value x. Rounding d to
 * float gives the correctly rounded float of x unless a float rounding boundary (a midpoint
 * between two floats) lies between d and x; midpoints have the low 29 bits of the double
 * significand equal to 0x10000000, so when d is within 8 double ulps of one (or the result is
 * not a normal float, or digits were dropped, or the exponent is larger) we fall back to
 * hl__json_number_slow(), which hands strtof() a canonical copy of the digits.
 */
#ifndef HL_PROTO_JSON_INTERNAL_H
#define HL_PROTO_JSON_INTERNAL_H

#include "hl/json_codec.h"
#include "hl/status.h"

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The error analysis above needs double arithmetic done in double (SSE2, not x87). */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define HL__JSON_FAST_PATH 1
#else
#define HL__JSON_FAST_PATH 0
#endif

/** Significant digits the slow path keeps; float midpoints have at most 113 of them. */
#define HL__JSON_SLOW_DIGITS 128

/**
 * Converts the syntactically valid JSON number in [p, end) to the correctly rounded float.
 * Returns HL_OK, or HL_NUMERIC when the value rounds to infinity. Defined in json_number.c.
 */
hl_status hl__json_number_slow(const char *p, const char *end, float *out);

static inline int hl__is_digit(char c)
{
    return (unsigned)((unsigned char)c - (unsigned char)'0') < 10u;
}

/**
 * Parses the JSON number that starts at p (p < end). On HL_OK, *out is the correctly rounded
 * float and *endp points past the number. HL_FORMAT: p does not start a valid number, and
 * *endp points at the offending byte. HL_NUMERIC: the value overflows float32 (*endp is past
 * the number). Nothing is read at or beyond end.
 */
static inline hl_status hl__json_number(const char *p, const char *end, float *out,
                                        const char **endp)
{
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *start = p;
    int neg = 0, nd = 0, dropped = 0;
    uint64_t w = 0;
    int64_t e10 = 0;
    if (*p == '-') {
        neg = 1;
        if (++p == end)
            goto bad;
    }
    if (*p == '0') {
        p++;
    } else if (hl__is_digit(*p)) {
        do {
            unsigned d = (unsigned)(*p - '0');
            if (nd < 19) {
                w = w * 10u + d;
                nd++;
            } else {
                e10++;
                dropped |= d != 0;
            }
        } while (++p < end && hl__is_digit(*p));
    } else {
        goto bad;
    }
    if (p < end && *p == '.') {
        if (++p == end || !hl__is_digit(*p))
            goto bad;
        do {
            unsigned d = (unsigned)(*p - '0');
            if (nd < 19) {
                if (w != 0 || d != 0) {
                    w = w * 10u + d;
                    nd++;
                }
                e10--;
            } else {
                dropped |= d != 0;
            }
        } while (++p < end && hl__is_digit(*p));
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        int64_t x = 0;
        if (++p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !hl__is_digit(*p))
            goto bad;
        do {
            if (x < 100000000)
                x = x * 10 + (*p - '0');
        } while (++p < end && hl__is_digit(*p));
        e10 += eneg ? -x : x;
    }
    *endp = p;
    if (w == 0) {
        *out = neg ? -0.0f : 0.0f;
        return HL_OK;
    }
    if (HL__JSON_FAST_PATH && !dropped && e10 >= -22 && e10 <= 22) {
        double d = (double)w;
        d = e10 < 0 ? d / pow10[-e10] : d * pow10[e10];
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        uint64_t be = (bits >> 52) & 0x7FFu, low = bits & 0x1FFFFFFFu;
        if (be >= 1023u - 125u && be <= 1023u + 126u && low - (0x10000000u - 8u) > 16u) {
            float f = (float)d;
            *out = neg ? -f : f;
            return HL_OK;
        }
    }
    return hl__json_number_slow(start, p, out);
bad:
    *endp = p;
    return HL_FORMAT;
}

/* ------------------------------------------------------------------ request parameters */

/** A parameter value as the JSON or the query decoder found it. */
typedef enum hl__pv_type {
    HL__PV_INT,    /* i */
    HL__PV_NUMBER, /* d (a JSON real) */
    HL__PV_BOOL,   /* b */
    HL__PV_STRING, /* s, slen (not NUL-terminated) */
    HL__PV_OTHER,  /* null, an array, an object */
} hl__pv_type;

typedef struct hl__pvalue {
    hl__pv_type type;
    long long i;
    double d;
    int b;
    const char *s;
    size_t slen;
} hl__pvalue;

/** The index of the parameter called name[0..len) in the table, or -1. */
int hl__param_index(const char *name, size_t len);

/** The parameter's name, e.g. "max_levels". */
const char *hl__param_name(int idx);

/** Non-zero when the parameter takes a number (tau) rather than an integer, bool or string. */
int hl__param_is_number(int idx);

/** Non-zero when the parameter takes an integer. */
int hl__param_is_int(int idx);

/** Non-zero when the parameter takes a bool. */
int hl__param_is_bool(int idx);

/**
 * Checks the value's type and range for parameter idx and stores it (setting has_<name>).
 * Errors: HL_INVAL with field "params/<name>" at byte offset `at` when has_at is set.
 */
hl_status hl__param_set(hl_request_params *p, int idx, const hl__pvalue *v, int has_at, size_t at,
                        hl_error *err);

/**
 * Copies s[0..n) into out (cap >= 1 bytes, NUL-terminated) for an error field or message:
 * control characters and bytes that are not valid UTF-8 become '?', and the copy is cut at a
 * character boundary, so the result is one line of valid UTF-8 (it ends up in problem+json).
 */
void hl__printable(const char *s, size_t n, char *out, size_t cap);

/** Non-zero when s[0..len) matches [A-Za-z0-9_.-]{1,64}. */
int hl__model_name_ok(const char *s, size_t len);

#endif /* HL_PROTO_JSON_INTERNAL_H */
