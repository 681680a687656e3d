/*
 * json_request.c - the POST /v1/cluster JSON body; see hl/json_codec.h.
 *
 * DESIGN. The body is almost entirely the "embeddings" array, and a jansson tree of it would
 * cost tens of bytes per number, so the decoder is one strict pass over the bytes:
 *   - the top level (an object, its keys, the separators, nothing after the closing brace) is
 *     scanned here; keys that are plain ASCII are compared as bytes, any other key is decoded
 *     by jansson so escapes and UTF-8 are judged exactly as jansson judges them;
 *   - the "embeddings" value is scanned here, numbers going straight into a float32 buffer
 *     that grows by half each time (the first row fixes D; N and D are checked against the
 *     limits as soon as a row or column would exceed them);
 *   - every other top-level value is skipped to find its end, then parsed on its own by
 *     json_loadb(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) and copied into the request, so no
 *     jansson tree outlives the call.
 * Errors are reported where a single left-to-right pass meets them (first error wins);
 * what needs the whole body (a missing "embeddings", N below the minimum, ids/labels whose
 * length differs from N) is checked after the closing brace.
 */
#include "hl/json_codec.h"

#include "json_internal.h"

#include <jansson.h>
#include <stdlib.h>

#define IDS_MAX_BYTES 256

enum { K_EMBEDDINGS, K_IDS, K_LABELS, K_MODEL, K_PARAMS, K_N };
static const char *const key_names[K_N] = {"embeddings", "ids", "labels", "model", "params"};

typedef struct req_scan {
    const char *b; /* the body */
    size_t len;
    const hl_request_limits *lim;
    hl_error *err;
    float *x; /* embeddings, x_n of x_cap floats */
    size_t x_n, x_cap, rows, cols;
    size_t n_ids, ids_at, n_labels, labels_at;
} req_scan;

static int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static size_t strnlen_(const char *s, size_t cap)
{
    const char *z = memchr(s, '\0', cap);
    return z != NULL ? (size_t)(z - s) : cap;
}

static size_t off(const req_scan *s, const char *p)
{
    return (size_t)(p - s->b);
}

static hl_status malformed(req_scan *s, const char *p, const char *what)
{
    if (p >= s->b + s->len)
        return hl_error_set_at(s->err, HL_FORMAT, "body", s->len,
                               "malformed JSON: unexpected end of the body, %s", what);
    return hl_error_set_at(s->err, HL_FORMAT, "body", off(s, p), "malformed JSON at byte %zu: %s",
                           off(s, p), what);
}

/* Maps a jansson failure on the span starting at `base` to our error. Numbers that overflow
 * and \u0000 in strings are valid JSON that jansson refuses: they are bad values of `field`
 * (status `bad_value`); anything else is malformed JSON. */
static hl_status jansson_error(req_scan *s, const json_error_t *je, const char *base,
                               const char *field, hl_status bad_value)
{
    size_t at = off(s, base) + (je->position > 0 ? (size_t)je->position : 0);
    char text[sizeof(je->text)]; /* jansson quotes the input near the error: make it one line */
    if (at > s->len)
        at = s->len;
    hl__printable(je->text, strnlen_(je->text, sizeof(je->text)), text, sizeof(text));
    switch (json_error_code(je)) {
        case json_error_out_of_memory:
            return hl_error_set(s->err, HL_NOMEM, field, "out of memory parsing %s", field);
        case json_error_numeric_overflow:
        case json_error_null_character:
            return hl_error_set_at(s->err, bad_value, field, at, "%s: %s", field, text);
        default:
            return hl_error_set_at(s->err, HL_FORMAT, "body", at, "malformed JSON at byte %zu: %s",
                                   at, text);
    }
}

/* Points past the string that starts at p (*p == '"'), or returns NULL when it is not
 * closed. Escapes are skipped, not judged: jansson judges every string we keep. */
static const char *skip_string(const char *p, const char *end, int *plain)
{
    *plain = 1;
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\') {
            *plain = 0;
            if (++p == end)
                break;
        }
    }
    return NULL;
}

/* Points past the value that starts at p, judging only brackets and strings; the span is then
 * parsed by jansson, which finds whatever else is wrong with it. */
static const char *skip_value(const char *p, const char *end)
{
    int plain;
    if (p == end)
        return p;
    if (*p == '"') {
        const char *q = skip_string(p, end, &plain);
        return q != NULL ? q : end;
    }
    if (*p == '[' || *p == '{') {
        size_t depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, end, &plain);
                if (p == NULL)
                    return end;
                continue;
            }
            if (c == '[' || c == '{')
                depth++;
            else if ((c == ']' || c == '}') && --depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    while (p < end && !is_ws(*p) && *p != ',' && *p != '}' && *p != ']' && *p != ':' && *p != '[' &&
           *p != '{' && *p != '"')
        p++;
    return p;
}

/* ------------------------------------------------------------------ embeddings */

static hl_status grow(req_scan *s)
{
    size_t cap = s->x_cap < 1024 ? 1024 : s->x_cap + s->x_cap / 2, bytes;
    if (hl_mul_size(cap, sizeof(float), &bytes) != HL_OK)
        return hl_error_set(s->err, HL_NOMEM, "embeddings", "embeddings too large");
    float *x = realloc(s->x, bytes);
    if (x == NULL)
        return hl_error_set(s->err, HL_NOMEM, "embeddings",
                            "out of memory for %zu embedding values", cap);
    s->x = x;
    s->x_cap = cap;
    return HL_OK;
}

/* Non-zero when the case-insensitive ASCII word w is at p. */
static int word_at(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != w[i])
            return 0;
    }
    return 1;
}

/* Non-zero when p starts NaN or Infinity as clients write them (NaN, Infinity, -Infinity,
 * nan, inf, -inf, +inf, any case): not JSON, but meant as numbers. */
static int nonfinite_at(const char *p, const char *end)
{
    if (p < end && (*p == '-' || *p == '+'))
        p++;
    return word_at(p, end, "nan") || word_at(p, end, "inf");
}

/* What the JSON value that starts at p is, when it is not a number: "an array", "a string",
 * ..., or NULL when p starts no value at all (malformed JSON). */
static const char *non_number(const char *p, const char *end)
{
    if (p == end)
        return NULL;
    switch (*p) {
        case '[':
            return "an array";
        case '{':
            return "an object";
        case '"':
            return "a string";
        case 't':
            return (size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0 ? "true" : NULL;
        case 'f':
            return (size_t)(end - p) >= 5 && memcmp(p, "false", 5) == 0 ? "false" : NULL;
        case 'n':
            return (size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0 ? "null" : NULL;
        default:
            return NULL;
    }
}

/* An element at p that did not parse as a number (the parser stopped at bad). */
static hl_status bad_element(req_scan *s, const char *p, const char *bad, size_t row, size_t col)
{
    const char *end = s->b + s->len;
    if (nonfinite_at(p, end))
        return hl_error_set_cell(s->err, HL_NUMERIC, "embeddings", row, col,
                                 "embeddings[%zu][%zu] is not finite (NaN or Infinity)", row, col);
    const char *what = non_number(p, end);
    if (what != NULL)
        return hl_error_set_cell(s->err, HL_RANGE, "embeddings", row, col,
                                 "embeddings[%zu][%zu] is %s, not a number", row, col, what);
    return malformed(s, bad, "expected a number");
}

/* Non-zero when p starts a JSON value (or NaN/Infinity) other than an array. */
static int other_value_at(const char *p, const char *end)
{
    return p < end &&
           (hl__is_digit(*p) || *p == '-' || nonfinite_at(p, end) || non_number(p, end) != NULL);
}

/* One row "[v, v, ...]" at *pp (just past its '['); appends its values. */
static hl_status scan_row(req_scan *s, const char **pp, size_t row)
{
    const char *p = skip_ws(*pp, s->b + s->len), *end = s->b + s->len;
    size_t col = 0, limit = row == 0 ? s->lim->max_dim : s->cols;
    if (p < end && *p == ']')
        return hl_error_set_cell(s->err, HL_RANGE, "embeddings", row, 0,
                                 "embeddings[%zu] is an empty row", row);
    for (;;) {
        if (col == limit) {
            if (row == 0)
                return hl_error_set_cell(s->err, HL_INVAL, "dim", 0, col,
                                         "dimension exceeds the limit of %zu", limit);
            return hl_error_set_cell(s->err, HL_RANGE, "embeddings", row, col,
                                     "embeddings[%zu] has more than %zu values, like row 0", row,
                                     limit);
        }
        if (p == end)
            return malformed(s, p, "expected a number");
        if (s->x_n == s->x_cap) {
            hl_status g = grow(s);
            if (g != HL_OK)
                return g;
        }
        const char *q;
        hl_status st = hl__json_number(p, end, &s->x[s->x_n], &q);
        if (st == HL_NUMERIC)
            return hl_error_set_cell(s->err, HL_NUMERIC, "embeddings", row, col,
                                     "embeddings[%zu][%zu] = %.*s overflows float32", row, col,
                                     (int)(q - p < 40 ? q - p : 40), p);
        if (st != HL_OK)
            return q == p || (q == p + 1 && *p == '-') ? bad_element(s, p, q, row, col)
                                                       : malformed(s, q, "invalid number");
        s->x_n++;
        col++;
        p = skip_ws(q, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            break;
        return malformed(s, p, "expected ',' or ']' after a number");
    }
    if (row > 0 && col != s->cols)
        return hl_error_set_cell(s->err, HL_RANGE, "embeddings", row, col,
                                 "embeddings[%zu] has %zu values, row 0 has %zu", row, col,
                                 s->cols);
    if (row == 0)
        s->cols = col;
    *pp = p + 1;
    return HL_OK;
}

/* The "embeddings" value at *pp: an array of equally long arrays of numbers. */
static hl_status scan_embeddings(req_scan *s, const char **pp)
{
    const char *p = *pp, *end = s->b + s->len;
    if (p == end || *p != '[') {
        if (other_value_at(p, end))
            return hl_error_set_at(s->err, HL_FORMAT, "embeddings", off(s, p),
                                   "embeddings must be an array of arrays of numbers");
        return malformed(s, p, "expected a value");
    }
    p = skip_ws(p + 1, end);
    size_t row = 0;
    if (p < end && *p == ']') {
        *pp = p + 1;
        return HL_OK;
    }
    for (;; row++) {
        if (row == s->lim->max_points)
            return hl_error_set_cell(s->err, HL_INVAL, "n", row, 0,
                                     "more than %zu points (the limit)", s->lim->max_points);
        if (p == end || *p != '[') {
            if (other_value_at(p, end))
                return hl_error_set_cell(s->err, HL_RANGE, "embeddings", row, 0,
                                         "embeddings[%zu] is not an array", row);
            return malformed(s, p, "expected a row '['");
        }
        p++;
        hl_status st = scan_row(s, &p, row);
        if (st != HL_OK)
            return st;
        s->rows = row + 1;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            break;
        return malformed(s, p, "expected ',' or ']' after a row");
    }
    *pp = p + 1;
    return HL_OK;
}

/* ------------------------------------------------------------------ other members */

static hl_status take_ids(req_scan *s, const json_t *v, const char *at, hl_cluster_request *out)
{
    if (!json_is_array(v))
        return hl_error_set_at(s->err, HL_RANGE, "ids", off(s, at),
                               "ids must be an array of strings");
    size_t n = json_array_size(v), total;
    if (hl_mul_size(n, sizeof(char *), &total) != HL_OK)
        return hl_error_set(s->err, HL_NOMEM, "ids", "too many ids");
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return hl_error_set_cell(s->err, HL_RANGE, "ids", i, 0, "ids[%zu] is not a string", i);
        size_t l = json_string_length(e);
        if (l > IDS_MAX_BYTES)
            return hl_error_set_cell(s->err, HL_RANGE, "ids", i, 0,
                                     "ids[%zu] is longer than %d bytes", i, IDS_MAX_BYTES);
        if (hl_add_size(total, l + 1, &total) != HL_OK)
            return hl_error_set(s->err, HL_NOMEM, "ids", "ids too large");
    }
    /* One block: the pointer array, then the strings it points to. */
    char **ids = malloc(total > 0 ? total : 1);
    if (ids == NULL)
        return hl_error_set(s->err, HL_NOMEM, "ids", "out of memory for %zu ids", n);
    char *q = (char *)(ids + n);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        size_t l = json_string_length(e);
        memcpy(q, json_string_value(e), l + 1);
        ids[i] = q;
        q += l + 1;
    }
    out->ids = ids;
    s->n_ids = n;
    s->ids_at = off(s, at);
    return HL_OK;
}

static hl_status take_labels(req_scan *s, const json_t *v, const char *at, hl_cluster_request *out)
{
    if (!json_is_array(v))
        return hl_error_set_at(s->err, HL_RANGE, "labels", off(s, at),
                               "labels must be an array of integers");
    size_t n = json_array_size(v), bytes;
    if (hl_mul_size(n, sizeof(int32_t), &bytes) != HL_OK)
        return hl_error_set(s->err, HL_NOMEM, "labels", "too many labels");
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e))
            return hl_error_set_cell(s->err, HL_RANGE, "labels", i, 0,
                                     "labels[%zu] is not an integer", i);
        json_int_t l = json_integer_value(e);
        if (l < INT32_MIN || l > INT32_MAX)
            return hl_error_set_cell(s->err, HL_RANGE, "labels", i, 0,
                                     "labels[%zu] is outside the int32 range", i);
    }
    int32_t *lab = malloc(bytes > 0 ? bytes : 1);
    if (lab == NULL)
        return hl_error_set(s->err, HL_NOMEM, "labels", "out of memory for %zu labels", n);
    for (size_t i = 0; i < n; i++)
        lab[i] = (int32_t)json_integer_value(json_array_get(v, i));
    out->labels = lab;
    s->n_labels = n;
    s->labels_at = off(s, at);
    return HL_OK;
}

static hl_status take_model(req_scan *s, const json_t *v, const char *at, hl_cluster_request *out)
{
    size_t l = json_is_string(v) ? json_string_length(v) : 0;
    if (!json_is_string(v) || !hl__model_name_ok(json_string_value(v), l))
        return hl_error_set_at(s->err, HL_INVAL, "model", off(s, at),
                               "model must be a string of 1 to 64 characters [A-Za-z0-9_.-]");
    memcpy(out->model, json_string_value(v), l + 1);
    return HL_OK;
}

static hl_status take_params(req_scan *s, json_t *v, const char *at, hl_cluster_request *out)
{
    if (!json_is_object(v))
        return hl_error_set_at(s->err, HL_INVAL, "params", off(s, at), "params must be an object");
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e)
    {
        int idx = hl__param_index(key, strlen(key));
        if (idx < 0) {
            char field[48], name[41];
            hl__printable(key, strlen(key), name, sizeof(name));
            (void)snprintf(field, sizeof(field), "params/%s", name);
            return hl_error_set_at(s->err, HL_INVAL, field, off(s, at), "unknown parameter %s",
                                   field);
        }
        hl__pvalue pv = {HL__PV_OTHER, 0, 0.0, 0, NULL, 0};
        if (json_is_integer(e)) {
            pv.type = HL__PV_INT;
            pv.i = json_integer_value(e);
        } else if (json_is_real(e)) {
            pv.type = HL__PV_NUMBER;
            pv.d = json_real_value(e);
        } else if (json_is_boolean(e)) {
            pv.type = HL__PV_BOOL;
            pv.b = json_is_true(e);
        } else if (json_is_string(e)) {
            pv.type = HL__PV_STRING;
            pv.s = json_string_value(e);
            pv.slen = json_string_length(e);
        }
        hl_status st = hl__param_set(&out->params, idx, &pv, 1, off(s, at), s->err);
        if (st != HL_OK)
            return st;
    }
    return HL_OK;
}

/* A member other than "embeddings": its value is parsed by jansson and copied out. */
static hl_status take_member(req_scan *s, int key, const char **pp, hl_cluster_request *out)
{
    const char *p = *pp, *end = skip_value(p, s->b + s->len);
    json_error_t je;
    json_t *v = json_loadb(p, (size_t)(end - p), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (v == NULL)
        return jansson_error(s, &je, p, key_names[key],
                             key == K_IDS || key == K_LABELS ? HL_RANGE : HL_INVAL);
    hl_status st;
    if (key == K_IDS)
        st = take_ids(s, v, p, out);
    else if (key == K_LABELS)
        st = take_labels(s, v, p, out);
    else if (key == K_MODEL)
        st = take_model(s, v, p, out);
    else
        st = take_params(s, v, p, out);
    json_decref(v);
    *pp = end;
    return st;
}

/* ------------------------------------------------------------------ top level */

/* Which known key the decoded name[0..len) is, or -1. */
static int key_index(const char *name, size_t len)
{
    for (int k = 0; k < K_N; k++)
        if (strlen(key_names[k]) == len && memcmp(key_names[k], name, len) == 0)
            return k;
    return -1;
}

/* The key at *pp (a string) and the ':' after it; *key is its index. Unknown keys are
 * HL_INVAL naming the key, duplicates HL_FORMAT. */
static hl_status scan_key(req_scan *s, const char **pp, unsigned *seen, int *key)
{
    const char *p = *pp, *end = s->b + s->len;
    if (p == end || *p != '"')
        return malformed(s, p, "expected a string key");
    int plain;
    const char *q = skip_string(p, end, &plain);
    if (q == NULL)
        return malformed(s, end, "unterminated string");
    *key = plain ? key_index(p + 1, (size_t)(q - p - 2)) : -1;
    if (*key < 0) {
        /* Not a plain known key: let jansson decode it (escapes, UTF-8) and judge it. */
        json_error_t je;
        json_t *k = json_loadb(p, (size_t)(q - p), JSON_DECODE_ANY, &je);
        if (k == NULL)
            return jansson_error(s, &je, p, "body", HL_INVAL);
        *key = key_index(json_string_value(k), json_string_length(k));
        hl_status st = HL_OK;
        if (*key < 0) { /* the field names the key; "" would read as no field at all */
            char name[48];
            hl__printable(json_string_value(k), json_string_length(k), name, sizeof(name));
            st = hl_error_set_at(s->err, HL_INVAL, name[0] != '\0' ? name : "\"\"", off(s, p),
                                 "unknown key \"%s\"", name);
        }
        json_decref(k);
        if (st != HL_OK)
            return st;
    }
    if (*seen & (1u << *key))
        return hl_error_set_at(s->err, HL_FORMAT, key_names[*key], off(s, p),
                               "duplicate key \"%s\"", key_names[*key]);
    *seen |= 1u << *key;
    p = skip_ws(q, end);
    if (p == end || *p != ':')
        return malformed(s, p, "expected ':' after a key");
    *pp = skip_ws(p + 1, end);
    return HL_OK;
}

static hl_status scan_body(req_scan *s, hl_cluster_request *out, unsigned *seen)
{
    const char *end = s->b + s->len, *p = skip_ws(s->b, end);
    if (p == end)
        return malformed(s, p, "the body is empty");
    if (*p != '{')
        return hl_error_set_at(s->err, HL_FORMAT, "body", off(s, p),
                               "the body is not a JSON object");
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            int key = -1;
            hl_status st = scan_key(s, &p, seen, &key);
            if (st == HL_OK)
                st = key == K_EMBEDDINGS ? scan_embeddings(s, &p) : take_member(s, key, &p, out);
            if (st != HL_OK)
                return st;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return malformed(s, p, "expected ',' or '}' after a member");
        }
    }
    p = skip_ws(p, end);
    if (p != end)
        return malformed(s, p, "trailing data after the JSON object");
    return HL_OK;
}

/* The checks that need the whole body. */
static hl_status check_counts(req_scan *s, unsigned seen)
{
    if ((seen & (1u << K_EMBEDDINGS)) == 0)
        return hl_error_set(s->err, HL_FORMAT, "embeddings", "the body has no \"embeddings\"");
    if (s->rows < s->lim->min_points)
        return hl_error_set(s->err, HL_INVAL, "n", "%zu points, at least %zu are needed", s->rows,
                            s->lim->min_points);
    if ((seen & (1u << K_IDS)) && s->n_ids != s->rows)
        return hl_error_set_at(s->err, HL_RANGE, "ids", s->ids_at, "%zu ids for %zu embeddings",
                               s->n_ids, s->rows);
    if ((seen & (1u << K_LABELS)) && s->n_labels != s->rows)
        return hl_error_set_at(s->err, HL_RANGE, "labels", s->labels_at,
                               "%zu labels for %zu embeddings", s->n_labels, s->rows);
    return HL_OK;
}

hl_status hl_json_request_decode(const void *body, size_t len, const hl_request_limits *lim,
                                 hl_cluster_request *out, hl_error *err)
{
    static const hl_request_limits defaults = {HL_REQUEST_MAX_POINTS_DEFAULT,
                                               HL_REQUEST_MAX_DIM_DEFAULT, 2};
    memset(out, 0, sizeof(*out));
    if (body == NULL && len > 0)
        return hl_error_set(err, HL_INVAL, "body", "NULL body");
    req_scan s;
    memset(&s, 0, sizeof(s));
    s.b = body != NULL ? body : "";
    s.len = len;
    s.lim = lim != NULL ? lim : &defaults;
    s.err = err;
    unsigned seen = 0;
    hl_status st = scan_body(&s, out, &seen);
    if (st == HL_OK)
        st = check_counts(&s, seen);
    if (st != HL_OK) {
        free(s.x);
        hl_cluster_request_free(out);
        return st;
    }
    if (s.x_n < s.x_cap && s.x_n > 0) {
        float *x = realloc(s.x, s.x_n * sizeof(float)); /* shrink: cannot overflow */
        if (x != NULL)
            s.x = x;
    }
    out->x.data = s.x;
    out->x.owned = s.x;
    out->x.rows = s.rows;
    out->x.cols = s.cols;
    return HL_OK;
}

void hl_cluster_request_free(hl_cluster_request *r)
{
    if (r == NULL)
        return;
    hl_fmatrix_free(&r->x);
    free(r->ids);
    free(r->labels);
    memset(r, 0, sizeof(*r));
}
