/*
 * json_number.c - the slow path of the JSON float parser (see json_internal.h).
 *
 * The number is rewritten as "[-]DIGITSe<exp>": leading zeros and the decimal point go, the
 * exponent absorbs the point's position, so strtof() never meets a locale-dependent decimal
 * point. At most HL__JSON_SLOW_DIGITS significant digits are kept; when a dropped digit is
 * non-zero, a final '1' is appended as a sticky digit. Every float midpoint has at most 113
 * significant digits, so no rounding boundary lies strictly between the kept prefix and the
 * prefix plus one unit in its last place: the rounded result is that of the full number, and
 * the copy is bounded whatever the length of the input.
 */
#include "json_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

hl_status hl__json_number_slow(const char *p, const char *end, float *out)
{
    char buf[HL__JSON_SLOW_DIGITS + 32];
    size_t k = 0, nsig = 0;
    int64_t point = 0, ex = 0;
    int neg = 0, frac = 0, sticky = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (neg)
        buf[k++] = '-';
    for (; p < end && (hl__is_digit(*p) || *p == '.'); p++) {
        if (*p == '.') {
            frac = 1;
            continue;
        }
        if (nsig == 0 && *p == '0') {
            point -= frac; /* a leading zero of the fraction shifts the point */
            continue;
        }
        if (nsig < HL__JSON_SLOW_DIGITS) {
            buf[k++] = *p;
            nsig++;
            point -= frac;
        } else {
            sticky |= *p != '0';
            point += !frac; /* a dropped integer digit still counts */
        }
    }
    if (nsig == 0) {
        *out = neg ? -0.0f : 0.0f;
        return HL_OK;
    }
    if (sticky) {
        buf[k++] = '1';
        point--;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        if (++p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        for (; p < end && hl__is_digit(*p); p++)
            if (ex < 1000000000)
                ex = ex * 10 + (*p - '0');
        if (eneg)
            ex = -ex;
    }
    /* |point| is at most the input length and |ex| <= 1e10: no overflow, and anything past
     * +-2e9 is far beyond float32's range either way. */
    int64_t e = point + ex;
    if (e > 2000000000)
        e = 2000000000;
    if (e < -2000000000)
        e = -2000000000;
    (void)snprintf(buf + k, sizeof(buf) - k, "e%lld", (long long)e);
    float f = strtof(buf, NULL);
    if (isinf(f))
        return HL_NUMERIC;
    *out = f;
    return HL_OK;
}
