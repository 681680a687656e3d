/*
 * npy.c - NumPy .npy reader and writer; see hl/npy.h.
 *
 * A .npy file is "\x93NUMPY", a major and a minor version byte, the length of the header
 * dict (u16 little-endian for 1.0, u32 for 2.0 and 3.0), the dict itself as a Python
 * literal, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", padded with
 * spaces and ended by '\n', and then the raw array data. NumPy pads the header so the data
 * starts at a multiple of 64 bytes, which is what lets us hand out aligned zero-copy views.
 *
 * The dict is parsed by a small recursive-descent scanner that accepts exactly the literals
 * NumPy and other writers produce for plain arrays: the three keys in any order, single or
 * double quotes, any whitespace, an optional trailing comma, and integer tuples including
 * "()" and "(3,)" (with Python 2's "3L" suffix). Everything else is refused with the byte
 * offset where the scanner stopped.
 */
#include "hl/npy.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAGIC_LEN 6

static const unsigned char npy_magic[NPY_MAGIC_LEN] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

size_t hl_dtype_size(hl_dtype dt)
{
    switch (dt) {
        case HL_DT_F32:
        case HL_DT_I32:
            return 4;
        case HL_DT_F16:
            return 2;
        case HL_DT_I64:
            return 8;
    }
    return 0;
}

static const char *dtype_descr(hl_dtype dt)
{
    switch (dt) {
        case HL_DT_F32:
            return "<f4";
        case HL_DT_F16:
            return "<f2";
        case HL_DT_I32:
            return "<i4";
        case HL_DT_I64:
            return "<i8";
    }
    return "?";
}

/* Formats a shape as Python prints it: "()", "(3,)", "(3, 4)". Truncates safely. */
static void shape_str(int ndim, const size_t *shape, char *out, size_t cap)
{
    size_t k = 0;
    int n = snprintf(out, cap, "(");
    for (int i = 0; n >= 0 && i < ndim; i++) {
        k += (size_t)n;
        if (k >= cap)
            return;
        n = snprintf(out + k, cap - k, i == 0 ? "%zu" : ", %zu", shape[i]);
    }
    if (n < 0)
        return;
    k += (size_t)n;
    if (k < cap)
        (void)snprintf(out + k, cap - k, ndim == 1 ? ",)" : ")");
}

/* ------------------------------------------------------------------ header length */

static size_t prefix_len(unsigned major)
{
    return major == 1 ? 10 : 12;
}

hl_status hl_npy_header_len(const void *buf, size_t len, size_t *header_len, hl_error *err)
{
    const unsigned char *b = buf;
    *header_len = 0;
    size_t m = len < NPY_MAGIC_LEN ? len : NPY_MAGIC_LEN;
    if (m > 0 && memcmp(b, npy_magic, m) != 0)
        return hl_error_set_at(err, HL_FORMAT, "magic", 0,
                               "bad magic: not a .npy file (it must start with \\x93NUMPY)");
    if (len < 8)
        return HL_BUSY;
    unsigned major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return hl_error_set_at(err, HL_VERSION, "version", 6,
                               "unsupported .npy version %u.%u (1.0, 2.0 and 3.0 are read)", major,
                               minor);
    size_t prefix = prefix_len(major);
    if (len < prefix)
        return HL_BUSY;
    size_t dict = major == 1 ? hl__get_le16(b + 8) : hl__get_le32(b + 8);
    if (dict > HL_NPY_MAX_HEADER - prefix)
        return hl_error_set_at(err, HL_FORMAT, "header", 8,
                               "malformed .npy header: length %zu exceeds the limit of %u bytes",
                               dict, (unsigned)HL_NPY_MAX_HEADER);
    *header_len = prefix + dict;
    return HL_OK;
}

/* ------------------------------------------------------------------ header dict */

typedef struct npy_scan {
    const unsigned char *s; /* the dict text */
    size_t n, i;            /* its length and the read position */
    size_t base;            /* file offset of s[0], for messages */
    hl_error *err;
} npy_scan;

static hl_status malformed(npy_scan *sc, const char *what)
{
    size_t at = sc->base + sc->i;
    return hl_error_set_at(sc->err, HL_FORMAT, "header", at,
                           "malformed .npy header: %s at byte %zu", what, at);
}

static void skip_ws(npy_scan *sc)
{
    while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' ||
                             sc->s[sc->i] == '\r'))
        sc->i++;
}

/* Skips whitespace, then consumes `c` if it is next. */
static int accept(npy_scan *sc, int c)
{
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == c) {
        sc->i++;
        return 1;
    }
    return 0;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* A quoted string without escapes, as Python's repr writes plain ASCII, into out[cap]. */
static hl_status parse_string(npy_scan *sc, char *out, size_t cap)
{
    skip_ws(sc);
    if (sc->i >= sc->n || (sc->s[sc->i] != '\'' && sc->s[sc->i] != '"'))
        return malformed(sc, "expected a quoted string");
    unsigned char q = sc->s[sc->i++];
    size_t start = sc->i;
    for (;; sc->i++) {
        unsigned char c = sc->i < sc->n ? sc->s[sc->i] : '\n';
        if (c == q)
            break;
        if (c == '\n') /* a Python string literal cannot span lines */
            return malformed(sc, "unterminated string");
        if (c == '\\')
            return malformed(sc, "escape sequences are not supported");
        if (c < 0x20 || c > 0x7E)
            return malformed(sc, "control or non-ASCII character in a string");
    }
    size_t k = sc->i - start;
    if (k >= cap)
        return malformed(sc, "string too long");
    memcpy(out, sc->s + start, k);
    out[k] = '\0';
    sc->i++;
    return HL_OK;
}

static int accept_word(npy_scan *sc, const char *w)
{
    size_t len = strlen(w);
    if (sc->n - sc->i < len || memcmp(sc->s + sc->i, w, len) != 0)
        return 0;
    size_t end = sc->i + len;
    if (end < sc->n && (is_digit(sc->s[end]) || sc->s[end] == '_' ||
                        ((sc->s[end] | 0x20) >= 'a' && (sc->s[end] | 0x20) <= 'z')))
        return 0;
    sc->i = end;
    return 1;
}

static hl_status parse_bool(npy_scan *sc, int *v)
{
    skip_ws(sc);
    if (accept_word(sc, "True"))
        *v = 1;
    else if (accept_word(sc, "False"))
        *v = 0;
    else
        return malformed(sc, "fortran_order must be True or False");
    return HL_OK;
}

static hl_status parse_dim(npy_scan *sc, size_t *v)
{
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == '-')
        return malformed(sc, "negative dimension");
    if (sc->i >= sc->n || !is_digit(sc->s[sc->i]))
        return malformed(sc, "expected a dimension");
    size_t x = 0;
    while (sc->i < sc->n && is_digit(sc->s[sc->i])) {
        if (hl_mul_size(x, 10, &x) != HL_OK ||
            hl_add_size(x, (size_t)(sc->s[sc->i] - '0'), &x) != HL_OK)
            return hl_error_set_at(sc->err, HL_FORMAT, "shape", sc->base + sc->i,
                                   "shape overflows: a dimension does not fit in %zu bits",
                                   8 * sizeof(size_t));
        sc->i++;
    }
    if (sc->i < sc->n && (sc->s[sc->i] == 'L' || sc->s[sc->i] == 'l'))
        sc->i++; /* Python 2 long literal, as written by old NumPy versions */
    *v = x;
    return HL_OK;
}

static hl_status parse_shape(npy_scan *sc, hl_npy_header *h)
{
    if (!accept(sc, '('))
        return malformed(sc, "shape must be a tuple such as (3, 4)");
    h->ndim = 0;
    if (accept(sc, ')'))
        return HL_OK;
    for (;;) {
        if (h->ndim == HL_NPY_MAX_NDIM)
            return hl_error_set_at(sc->err, HL_FORMAT, "shape", sc->base + sc->i,
                                   "malformed .npy header: more than %d dimensions",
                                   HL_NPY_MAX_NDIM);
        hl_status st = parse_dim(sc, &h->shape[h->ndim]);
        if (st != HL_OK)
            return st;
        h->ndim++;
        if (accept(sc, ',')) {
            if (accept(sc, ')'))
                return HL_OK;
            continue;
        }
        if (accept(sc, ')')) {
            if (h->ndim == 1)
                return malformed(sc, "a 1-element shape needs a trailing comma, as in (3,)");
            return HL_OK;
        }
        return malformed(sc, "expected ',' or ')' in the shape");
    }
}

static hl_status parse_descr(npy_scan *sc, hl_npy_header *h)
{
    static const struct {
        const char *code;
        hl_dtype dt;
    } known[] = {{"f4", HL_DT_F32}, {"f2", HL_DT_F16}, {"i4", HL_DT_I32}, {"i8", HL_DT_I64}};
    skip_ws(sc);
    size_t at = sc->base + sc->i;
    if (sc->i < sc->n && sc->s[sc->i] == '[')
        return hl_error_set_at(sc->err, HL_FORMAT, "descr", at,
                               "unsupported dtype: structured arrays are not supported");
    char d[32] = {0};
    hl_status st = parse_string(sc, d, sizeof(d));
    if (st != HL_OK)
        return st;
    for (size_t i = 0; d[0] != '\0' && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(d + 1, known[i].code) != 0)
            continue;
        if (d[0] == '<' || d[0] == '|') {
            h->dtype = known[i].dt;
            return HL_OK;
        }
        if (d[0] == '>')
            return hl_error_set_at(sc->err, HL_FORMAT, "descr", at,
                                   "big-endian dtype '%s' is not supported (write '<%s')", d,
                                   known[i].code);
    }
    return hl_error_set_at(sc->err, HL_FORMAT, "descr", at,
                           "unsupported dtype '%s' (supported: '<f4', '<f2', '<i4', '<i8')", d);
}

/* Parses one "key: value" pair; seen[] tracks descr, fortran_order and shape. */
static hl_status parse_entry(npy_scan *sc, hl_npy_header *h, int seen[3], int *fortran)
{
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    size_t at = sc->base + sc->i;
    char key[32];
    hl_status st = parse_string(sc, key, sizeof(key));
    if (st != HL_OK)
        return st;
    int k = 0;
    while (k < 3 && strcmp(key, keys[k]) != 0)
        k++;
    if (k == 3)
        return hl_error_set_at(sc->err, HL_FORMAT, "header", at,
                               "malformed .npy header: unknown key '%s'", key);
    if (seen[k])
        return hl_error_set_at(sc->err, HL_FORMAT, "header", at,
                               "malformed .npy header: duplicate key '%s'", key);
    seen[k] = 1;
    if (!accept(sc, ':'))
        return malformed(sc, "expected ':' after a key");
    if (k == 0)
        return parse_descr(sc, h);
    if (k == 1)
        return parse_bool(sc, fortran);
    return parse_shape(sc, h);
}

static hl_status parse_dict(npy_scan *sc, hl_npy_header *h)
{
    int seen[3] = {0, 0, 0}, fortran = 0;
    if (!accept(sc, '{'))
        return malformed(sc, "expected '{'");
    while (!accept(sc, '}')) {
        hl_status st = parse_entry(sc, h, seen, &fortran);
        if (st != HL_OK)
            return st;
        if (!accept(sc, ',')) {
            if (accept(sc, '}'))
                break;
            return malformed(sc, "expected ',' or '}'");
        }
    }
    skip_ws(sc);
    if (sc->i != sc->n)
        return malformed(sc, "unexpected text after the dict");
    static const char *const names[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; k++) {
        if (!seen[k])
            return hl_error_set_at(sc->err, HL_FORMAT, "header", sc->base,
                                   "malformed .npy header: missing key '%s'", names[k]);
    }
    if (fortran)
        return hl_error_set_at(sc->err, HL_FORMAT, "fortran_order", sc->base,
                               "fortran_order True is not supported (write a C-order array)");
    return HL_OK;
}

hl_status hl_npy_parse_header(const void *buf, size_t len, hl_npy_header *h, hl_error *err)
{
    const unsigned char *b = buf;
    memset(h, 0, sizeof(*h));
    size_t total;
    hl_status st = hl_npy_header_len(buf, len, &total, err);
    if (st == HL_BUSY)
        return hl_error_set_at(err, HL_FORMAT, "header", len,
                               "truncated .npy header: the file has only %zu bytes", len);
    if (st != HL_OK)
        return st;
    if (total > len)
        return hl_error_set_at(err, HL_FORMAT, "header", len,
                               "truncated .npy header: it needs %zu bytes, the file has %zu", total,
                               len);
    h->major = b[6];
    h->minor = b[7];
    size_t prefix = prefix_len(b[6]);
    npy_scan sc = {b + prefix, total - prefix, 0, prefix, err};
    st = parse_dict(&sc, h);
    if (st != HL_OK)
        return st;
    size_t count = 1, bytes = 0, end = 0;
    for (int i = 0; i < h->ndim && st == HL_OK; i++)
        st = hl_mul_size(count, h->shape[i], &count);
    if (st != HL_OK || hl_mul_size(count, hl_dtype_size(h->dtype), &bytes) != HL_OK ||
        hl_add_size(total, bytes, &end) != HL_OK) {
        char s[96];
        shape_str(h->ndim, h->shape, s, sizeof(s));
        return hl_error_set_at(err, HL_FORMAT, "shape", prefix,
                               "shape %s overflows: its size does not fit in memory", s);
    }
    h->count = count;
    h->data_offset = total;
    h->data_bytes = bytes;
    return HL_OK;
}

/* ------------------------------------------------------------------ decoding */

void hl_fmatrix_free(hl_fmatrix *m)
{
    if (m == NULL)
        return;
    free(m->owned);
    memset(m, 0, sizeof(*m));
}

static hl_status check_data_len(const hl_npy_header *h, size_t len, hl_error *err)
{
    size_t have = len - h->data_offset;
    if (have == h->data_bytes)
        return HL_OK;
    char s[96];
    shape_str(h->ndim, h->shape, s, sizeof(s));
    if (have < h->data_bytes)
        return hl_error_set_at(err, HL_FORMAT, "data", len,
                               "data truncated: shape %s of '%s' needs %zu bytes, the file has %zu",
                               s, dtype_descr(h->dtype), h->data_bytes, have);
    return hl_error_set_at(err, HL_FORMAT, "data", h->data_offset + h->data_bytes,
                           "trailing data: %zu bytes after the %s array", have - h->data_bytes, s);
}

static hl_status nonfinite(hl_error *err, uint32_t bits, size_t row, size_t col)
{
    return hl_error_set_cell(err, HL_NUMERIC, NULL, row, col,
                             "non-finite value (%s) at row %zu, column %zu",
                             hl__nonfinite_name(bits), row, col);
}

hl_status hl__f32_matrix(const unsigned char *p, size_t rows, size_t cols, hl_fmatrix *out,
                         hl_error *err)
{
    memset(out, 0, sizeof(*out));
    size_t count, bytes;
    if (hl_mul_size(rows, cols, &count) != HL_OK || hl_mul_size(count, 4, &bytes) != HL_OK)
        return hl_error_set(err, HL_FORMAT, NULL, "matrix of %zu x %zu floats overflows", rows,
                            cols);
    /* Validate before allocating, so a rejected input costs no memory. One flat pass over the
     * values: a shape such as (4294967296, 0) has no values and must cost nothing (a loop over
     * its rows took seconds). */
    for (size_t i = 0; i < count; i++) {
        uint32_t u = hl__get_le32(p + 4 * i);
        if (hl__f32_bits_nonfinite(u))
            return nonfinite(err, u, i / cols, i % cols);
    }
    if (hl__host_is_le() && ((uintptr_t)p % sizeof(float)) == 0) {
        out->data = (const float *)(const void *)p;
    } else {
        float *f = malloc(bytes > 0 ? bytes : 1);
        if (f == NULL)
            return hl_error_set(err, HL_NOMEM, NULL, "out of memory for %zu floats", count);
        for (size_t i = 0; i < count; i++)
            f[i] = hl__f32_from_bits(hl__get_le32(p + 4 * i));
        out->owned = f;
        out->data = f;
    }
    out->rows = rows;
    out->cols = cols;
    return HL_OK;
}

/* IEEE-754 binary16 -> binary32 bit pattern. Exact for every finite half, including
 * subnormals (mant * 2^-24) and signed zeros; Inf/NaN keep their class. */
static uint32_t half_to_f32_bits(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (uint32_t)(h >> 10) & 0x1Fu, mant = (uint32_t)h & 0x3FFu;
    if (exp == 0x1F)
        return sign | 0x7F800000u | (mant << 13);
    if (exp == 0)
        return sign | hl__f32_bits((float)mant * 0x1p-24f);
    return sign | ((exp + 112u) << 23) | (mant << 13);
}

static hl_status f16_matrix(const unsigned char *p, size_t rows, size_t cols, hl_fmatrix *out,
                            hl_error *err)
{
    memset(out, 0, sizeof(*out));
    size_t count = rows * cols, bytes; /* the product is checked by hl_npy_parse_header */
    if (hl_mul_size(count, sizeof(float), &bytes) != HL_OK)
        return hl_error_set(err, HL_NOMEM, NULL, "%zu floats do not fit in memory", count);
    float *f = malloc(bytes > 0 ? bytes : 1);
    if (f == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory for %zu floats", count);
    for (size_t i = 0; i < count; i++) { /* flat, as in hl__f32_matrix */
        uint32_t u = half_to_f32_bits(hl__get_le16(p + 2 * i));
        if (hl__f32_bits_nonfinite(u)) {
            free(f);
            return nonfinite(err, u, i / cols, i % cols);
        }
        f[i] = hl__f32_from_bits(u);
    }
    out->data = f;
    out->owned = f;
    out->rows = rows;
    out->cols = cols;
    return HL_OK;
}

hl_status hl_npy_decode_f32(const void *buf, size_t len, hl_fmatrix *out, hl_error *err)
{
    memset(out, 0, sizeof(*out));
    hl_npy_header h;
    hl_status st = hl_npy_parse_header(buf, len, &h, err);
    if (st != HL_OK)
        return st;
    if (h.dtype != HL_DT_F32 && h.dtype != HL_DT_F16)
        return hl_error_set(err, HL_FORMAT, "descr",
                            "dtype '%s' is not a float type (features must be '<f4' or '<f2')",
                            dtype_descr(h.dtype));
    if (h.ndim != 2) {
        char s[96];
        shape_str(h.ndim, h.shape, s, sizeof(s));
        return hl_error_set(err, HL_FORMAT, "shape", "expected a 2-D array, got %d-D shape %s",
                            h.ndim, s);
    }
    st = check_data_len(&h, len, err);
    if (st != HL_OK)
        return st;
    const unsigned char *p = (const unsigned char *)buf + h.data_offset;
    if (h.dtype == HL_DT_F16)
        return f16_matrix(p, h.shape[0], h.shape[1], out, err);
    return hl__f32_matrix(p, h.shape[0], h.shape[1], out, err);
}

/* Two's-complement reinterpretation without implementation-defined conversions. */
static int64_t i64_from_bits(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

hl_status hl_npy_decode_i32(const void *buf, size_t len, int32_t **out, size_t *n, hl_error *err)
{
    *out = NULL;
    *n = 0;
    hl_npy_header h;
    hl_status st = hl_npy_parse_header(buf, len, &h, err);
    if (st != HL_OK)
        return st;
    if (h.dtype != HL_DT_I32 && h.dtype != HL_DT_I64)
        return hl_error_set(err, HL_FORMAT, "descr",
                            "dtype '%s' is not an integer type (labels must be '<i4' or '<i8')",
                            dtype_descr(h.dtype));
    if (h.ndim != 1) {
        char s[96];
        shape_str(h.ndim, h.shape, s, sizeof(s));
        return hl_error_set(err, HL_FORMAT, "shape", "expected a 1-D array, got %d-D shape %s",
                            h.ndim, s);
    }
    st = check_data_len(&h, len, err);
    if (st != HL_OK)
        return st;
    const unsigned char *p = (const unsigned char *)buf + h.data_offset;
    int32_t *v = malloc(h.count > 0 ? h.count * sizeof(int32_t) : 1);
    if (v == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory for %zu labels", h.count);
    for (size_t i = 0; i < h.count; i++) {
        int64_t x;
        if (h.dtype == HL_DT_I32) {
            uint32_t u = hl__get_le32(p + 4 * i);
            x = (u & 0x80000000u) != 0 ? (int64_t)u - 0x100000000 : (int64_t)u;
        } else {
            x = i64_from_bits(hl__get_le64(p + 8 * i));
        }
        if (x < INT32_MIN || x > INT32_MAX) {
            free(v);
            return hl_error_set_at(err, HL_RANGE, "data", h.data_offset + 8 * i,
                                   "label %lld at index %zu does not fit in int32", (long long)x,
                                   i);
        }
        v[i] = (int32_t)x;
    }
    *out = v;
    *n = h.count;
    return HL_OK;
}

/* ------------------------------------------------------------------ encoding */

/* Allocates a v1.0 file for `ndim` (1..2) dims of `dt` and writes its header, padded with
 * spaces and '\n' to a multiple of 64 bytes as NumPy does; *data points at the array. */
static hl_status encode_header(hl_dtype dt, int ndim, const size_t *shape, const void *x,
                               void **out, size_t *len, unsigned char **data, size_t *count)
{
    *out = NULL;
    *len = 0;
    if (ndim < 1 || ndim > 2 || shape == NULL)
        return HL_INVAL;
    size_t n = 1, bytes, total;
    for (int i = 0; i < ndim; i++) {
        if (hl_mul_size(n, shape[i], &n) != HL_OK)
            return HL_RANGE;
    }
    if (x == NULL && n > 0)
        return HL_INVAL;
    char s[64], dict[160];
    shape_str(ndim, shape, s, sizeof(s));
    int dn = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                      dtype_descr(dt), s);
    if (dn < 0 || (size_t)dn >= sizeof(dict))
        return HL_INTERNAL;
    size_t hdr = 10 + (size_t)dn + 1;
    hdr += (64 - hdr % 64) % 64;
    if (hl_mul_size(n, hl_dtype_size(dt), &bytes) != HL_OK ||
        hl_add_size(hdr, bytes, &total) != HL_OK)
        return HL_RANGE;
    unsigned char *b = malloc(total);
    if (b == NULL)
        return HL_NOMEM;
    memcpy(b, npy_magic, NPY_MAGIC_LEN);
    b[6] = 1;
    b[7] = 0;
    hl__put_le16(b + 8, (uint16_t)(hdr - 10));
    memcpy(b + 10, dict, (size_t)dn);
    memset(b + 10 + dn, ' ', hdr - 10 - (size_t)dn - 1);
    b[hdr - 1] = '\n';
    *out = b;
    *len = total;
    *data = b + hdr;
    *count = n;
    return HL_OK;
}

hl_status hl_npy_encode_f32(const float *x, int ndim, const size_t *shape, void **out, size_t *len)
{
    unsigned char *d;
    size_t n;
    hl_status st = encode_header(HL_DT_F32, ndim, shape, x, out, len, &d, &n);
    for (size_t i = 0; st == HL_OK && i < n; i++)
        hl__put_le32(d + 4 * i, hl__f32_bits(x[i]));
    return st;
}

hl_status hl_npy_encode_i32(const int32_t *x, int ndim, const size_t *shape, void **out,
                            size_t *len)
{
    unsigned char *d;
    size_t n;
    hl_status st = encode_header(HL_DT_I32, ndim, shape, x, out, len, &d, &n);
    for (size_t i = 0; st == HL_OK && i < n; i++)
        hl__put_le32(d + 4 * i, (uint32_t)x[i]);
    return st;
}

/* ------------------------------------------------------------------ files */

hl_status hl_npy_load_f32(const char *path, hl_fmatrix *out, hl_error *err)
{
    memset(out, 0, sizeof(*out));
    void *buf;
    size_t len;
    hl_status st = hl_file_read(path, &buf, &len, err);
    if (st != HL_OK)
        return st;
    hl_error local;
    hl_error_clear(&local);
    st = hl_npy_decode_f32(buf, len, out, &local);
    if (st != HL_OK) {
        free(buf);
        return hl__error_wrap(err, &local, path);
    }
    if (out->owned != NULL)
        free(buf); /* converted: the file image is no longer needed */
    else
        out->owned = buf; /* a view: the matrix keeps the whole file image */
    return HL_OK;
}

hl_status hl_npy_load_i32(const char *path, int32_t **out, size_t *n, hl_error *err)
{
    *out = NULL;
    *n = 0;
    void *buf;
    size_t len;
    hl_status st = hl_file_read(path, &buf, &len, err);
    if (st != HL_OK)
        return st;
    hl_error local;
    hl_error_clear(&local);
    st = hl_npy_decode_i32(buf, len, out, n, &local);
    free(buf);
    return st == HL_OK ? HL_OK : hl__error_wrap(err, &local, path);
}

static hl_status save(const char *path, hl_status st, void *buf, size_t len, hl_error *err)
{
    if (st != HL_OK) {
        free(buf);
        return hl_error_set(err, st, NULL, "cannot encode '%s': %s", path, hl_status_str(st));
    }
    st = hl_file_write(path, buf, len, err);
    free(buf);
    return st;
}

hl_status hl_npy_save_f32(const char *path, const float *x, int ndim, const size_t *shape,
                          hl_error *err)
{
    void *buf;
    size_t len;
    hl_status st = hl_npy_encode_f32(x, ndim, shape, &buf, &len);
    return save(path, st, buf, len, err);
}

hl_status hl_npy_save_i32(const char *path, const int32_t *x, int ndim, const size_t *shape,
                          hl_error *err)
{
    void *buf;
    size_t len;
    hl_status st = hl_npy_encode_i32(x, ndim, shape, &buf, &len);
    return save(path, st, buf, len, err);
}
