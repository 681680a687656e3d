/*
 * json_query.c - the query string of binary request bodies (?model=x&k=10&dim=128); see
 * hl/json_codec.h. Values are validated by the same parameter table as the JSON "params"
 * object (json_params.c), after percent-decoding ('+' is a space).
 */
#include "hl/json_codec.h"

#include "json_internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>

/* Bits of `seen` beyond the parameter indices. */
#define SEEN_MODEL (1u << 16)
#define SEEN_DIM   (1u << 17)

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated) and returns the decoded
 * length; -1 for a bad escape or %00 (*bad is its index), -2 when out is too small. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap, size_t *bad)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hex_val(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_val(s[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0)) {
                *bad = i;
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (k + 1 >= cap)
            return -2;
        out[k++] = c;
    }
    out[k] = '\0';
    return (long)k;
}

/* A JSON-style integer -?(0|[1-9][0-9]*) filling all of s; saturates near +-1e18. */
static int parse_int(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    long long v = 0;
    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i == n || !hl__is_digit(s[i]) || (s[i] == '0' && i + 1 < n))
        return 0;
    for (; i < n; i++) {
        if (!hl__is_digit(s[i]))
            return 0;
        if (v < 100000000000000000LL) /* saturate near 1e18: far out of every range */
            v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

/* Turns the text of parameter idx into a typed value; text that is not of the parameter's
 * type stays a string, which hl__param_set() refuses with "must be <type>". */
static void typed_value(int idx, const char *v, size_t n, hl__pvalue *pv)
{
    memset(pv, 0, sizeof(*pv));
    pv->type = HL__PV_STRING;
    pv->s = v;
    pv->slen = n;
    if (hl__param_is_int(idx)) {
        if (parse_int(v, n, &pv->i))
            pv->type = HL__PV_INT;
    } else if (hl__param_is_number(idx)) {
        const char *e;
        float f = 0.0f;
        hl_status st = n > 0 ? hl__json_number(v, v + n, &f, &e) : HL_FORMAT;
        if (st != HL_FORMAT && e == v + n) {
            pv->type = HL__PV_NUMBER;
            pv->d = st == HL_OK ? (double)f : HUGE_VAL;
        }
    } else if (hl__param_is_bool(idx)) {
        if ((n == 4 && memcmp(v, "true", 4) == 0) || (n == 1 && v[0] == '1')) {
            pv->type = HL__PV_BOOL;
            pv->b = 1;
        } else if ((n == 5 && memcmp(v, "false", 5) == 0) || (n == 1 && v[0] == '0')) {
            pv->type = HL__PV_BOOL;
        }
    }
}

/* One decoded key=value pair found at byte `at`. */
static hl_status take_pair(const char *key, const char *val, size_t vlen, size_t at,
                           hl_request_params *params, char model[65], size_t *dim, unsigned *seen,
                           hl_error *err)
{
    char field[48];
    if (strcmp(key, "model") == 0) {
        if (*seen & SEEN_MODEL)
            return hl_error_set_at(err, HL_INVAL, "model", at, "model is repeated");
        *seen |= SEEN_MODEL;
        if (!hl__model_name_ok(val, vlen))
            return hl_error_set_at(err, HL_INVAL, "model", at,
                                   "model must be 1 to 64 characters [A-Za-z0-9_.-]");
        memcpy(model, val, vlen + 1);
        return HL_OK;
    }
    if (strcmp(key, "dim") == 0) {
        long long d;
        if (dim == NULL)
            return hl_error_set_at(err, HL_INVAL, "dim", at,
                                   "dim is not accepted here (only for raw float32 bodies)");
        if (*seen & SEEN_DIM)
            return hl_error_set_at(err, HL_INVAL, "dim", at, "dim is repeated");
        *seen |= SEEN_DIM;
        if (!parse_int(val, vlen, &d) || d < 1 || d > INT32_MAX)
            return hl_error_set_at(err, HL_INVAL, "dim", at, "dim must be an integer from 1 to %ld",
                                   (long)INT32_MAX);
        *dim = (size_t)d;
        return HL_OK;
    }
    int idx = hl__param_index(key, strlen(key));
    char name[41];
    hl__printable(key, strlen(key), name, sizeof(name));
    (void)snprintf(field, sizeof(field), "params/%s", name);
    if (idx < 0)
        return hl_error_set_at(err, HL_INVAL, field, at, "unknown query parameter \"%s\"", name);
    if (*seen & (1u << idx))
        return hl_error_set_at(err, HL_INVAL, field, at, "%s is repeated", key);
    *seen |= 1u << idx;
    hl__pvalue pv;
    typed_value(idx, val, vlen, &pv);
    return hl__param_set(params, idx, &pv, 1, at, err);
}

hl_status hl_query_decode(const char *query, hl_request_params *params, char model[65], size_t *dim,
                          hl_error *err)
{
    memset(params, 0, sizeof(*params));
    model[0] = '\0';
    if (dim != NULL)
        *dim = 0;
    if (query == NULL)
        return HL_OK;
    size_t len = 0, i = query[0] == '?' ? 1 : 0;
    while (len <= HL_QUERY_MAX_BYTES && query[len] != '\0')
        len++;
    if (len > HL_QUERY_MAX_BYTES)
        return hl_error_set(err, HL_INVAL, "query", "query string longer than %d bytes",
                            HL_QUERY_MAX_BYTES);
    char key[64], val[HL_QUERY_MAX_BYTES + 1];
    unsigned seen = 0;
    hl_status st = HL_OK;
    while (st == HL_OK && i < len) {
        const char *a = query + i, *amp = memchr(a, '&', len - i);
        size_t n = amp != NULL ? (size_t)(amp - a) : len - i, bad = 0;
        const char *eq = memchr(a, '=', n);
        size_t kn = eq != NULL ? (size_t)(eq - a) : n;
        long kl = n > 0 ? pct_decode(a, kn, key, sizeof(key), &bad) : 0, vl = 0;
        val[0] = '\0';
        if (kl >= 0 && eq != NULL) {
            vl = pct_decode(eq + 1, n - kn - 1, val, sizeof(val), &bad);
            bad += kn + 1;
        }
        if (kl == -2)
            st = hl_error_set_at(err, HL_INVAL, "query", i,
                                 "unknown query parameter (name too long)");
        else if (kl < 0 || vl < 0)
            st = hl_error_set_at(err, HL_INVAL, "query", i + bad,
                                 "bad percent-encoding in the query string");
        else if (n > 0) /* empty pairs ("a=1&&b=2") are skipped */
            st = take_pair(key, val, (size_t)vl, i, params, model, dim, &seen, err);
        i += n + 1;
    }
    if (st != HL_OK) {
        memset(params, 0, sizeof(*params));
        model[0] = '\0';
        if (dim != NULL)
            *dim = 0;
    }
    return st;
}
