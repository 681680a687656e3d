/*
 * modelfile.c - the .hlm model file; see hl/modelfile.h for the layout.
 *
 * DESIGN. The decoder never trusts a number it has not checked: it reads the fixed header
 * only after checking the length, computes every region end with overflow-checked
 * arithmetic and compares it with the buffer length before touching the region, verifies
 * the header CRC before interpreting any header field beyond the version, and verifies the
 * payload CRC before reading any tensor. The steps, in order:
 *
 *   magic, length >= 76, major  ->  header region bounds, header CRC  ->  flags, reserved
 *   ->  payload bounds (exact file length), zero padding, payload CRC  ->  configuration
 *   ->  meta  ->  hl_model_new  ->  tensor table, copied by name with shapes checked.
 *
 * A forged file with valid CRCs could still declare a huge configuration, so before the
 * model is allocated the payload must be large enough for the tensors every configuration
 * has (see config_fits); that ties the allocation to the file size.
 */
#include "hl/modelfile.h"

#include "hl/crc32c.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MF_FIXED  76  /* fixed header bytes in v1.0 */
#define MF_ENTRY  128 /* tensor table entry */
#define MF_ALIGN  64  /* payload and tensor alignment */
#define MF_NAME   64  /* name field of an entry */
#define MF_MAXDIM 4

/* Fixed header fields. */
enum {
    OFF_MAJOR = 4,
    OFF_MINOR = 6,
    OFF_HEADER_BYTES = 8,
    OFF_FLAGS = 12,
    OFF_PAYLOAD_BYTES = 16,
    OFF_N_TENSORS = 24,
    OFF_KIND = 28,
    OFF_DIM = 32,
    OFF_IN_FEATURES = 36,
    OFF_EDGE_FEATURES = 40,
    OFF_HIDDEN = 44,
    OFF_N_CONV = 48,
    OFF_USE_CLUSTER_FEAT = 52,
    OFF_K = 56,
    OFF_TAU = 60,
    OFF_META_BYTES = 64,
    OFF_RESERVED0 = 68,
    OFF_RESERVED1 = 72,
};

/* Tensor table entry fields. */
enum { E_DTYPE = 64, E_NDIM = 68, E_DIMS = 72, E_OFFSET = 104, E_NBYTES = 112, E_PAD = 120 };

static const unsigned char mf_magic[4] = {'H', 'L', 'M', 'D'};

/* Where each region of a file lies, all checked against the file length. */
typedef struct mf_layout {
    unsigned major, minor;
    size_t meta_off, meta_bytes;
    size_t table_off, n_tensors;
    size_t crc_off;     /* the header CRC */
    size_t payload_off; /* multiple of 64 */
    size_t payload_bytes;
    uint32_t payload_crc;
} mf_layout;

static hl_status align_up(size_t x, size_t *out)
{
    if (hl_add_size(x, MF_ALIGN - 1, &x) != HL_OK)
        return HL_RANGE;
    *out = x & ~(size_t)(MF_ALIGN - 1);
    return HL_OK;
}

/* Returns the offset of the first byte that is not valid UTF-8 (RFC 3629), or n. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp, min;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0u) == 0xC0u) {
            k = 1, cp = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0u) == 0xE0u) {
            k = 2, cp = c & 0x0Fu, min = 0x800;
        } else if ((c & 0xF8u) == 0xF0u) {
            k = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return i;
        }
        if (n - i <= k)
            return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0u) != 0x80u)
                return i;
            cp = cp << 6 | (s[i + j] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += k + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ encoding */

/* A meta value must be a NUL-terminated, newline-free UTF-8 string inside its field. */
static int meta_value_ok(const char *v, size_t cap)
{
    const char *end = memchr(v, '\0', cap);
    if (end == NULL)
        return 0;
    size_t n = (size_t)(end - v);
    return memchr(v, '\n', n) == NULL && utf8_check((const unsigned char *)v, n) == n;
}

static hl_status build_meta(const hl_model *m, char *meta, size_t cap, size_t *len)
{
    if (!meta_value_ok(m->name, sizeof(m->name)) ||
        !meta_value_ok(m->trained_on, sizeof(m->trained_on)))
        return HL_INVAL;
    int n = snprintf(meta, cap, "name=%s\ntrained_on=%s\n", m->name, m->trained_on);
    if (n < 0 || (size_t)n >= cap)
        return HL_INTERNAL;
    *len = (size_t)n;
    return HL_OK;
}

static void put_fixed_header(unsigned char *b, const hl_model *m, size_t meta_len,
                             size_t payload_bytes)
{
    const hl_model_config *c = &m->cfg;
    memcpy(b, mf_magic, 4);
    hl__put_le16(b + OFF_MAJOR, HL_MODELFILE_MAJOR);
    hl__put_le16(b + OFF_MINOR, HL_MODELFILE_MINOR);
    hl__put_le32(b + OFF_HEADER_BYTES, MF_FIXED);
    hl__put_le32(b + OFF_FLAGS, 0);
    hl__put_le64(b + OFF_PAYLOAD_BYTES, (uint64_t)payload_bytes);
    hl__put_le32(b + OFF_N_TENSORS, (uint32_t)m->n_tensors);
    hl__put_le32(b + OFF_KIND, (uint32_t)c->kind);
    hl__put_le32(b + OFF_DIM, (uint32_t)c->dim);
    hl__put_le32(b + OFF_IN_FEATURES, (uint32_t)c->in_features);
    hl__put_le32(b + OFF_EDGE_FEATURES, (uint32_t)c->edge_features);
    hl__put_le32(b + OFF_HIDDEN, (uint32_t)c->hidden);
    hl__put_le32(b + OFF_N_CONV, (uint32_t)c->n_conv);
    hl__put_le32(b + OFF_USE_CLUSTER_FEAT, (uint32_t)c->use_cluster_feat);
    hl__put_le32(b + OFF_K, (uint32_t)c->k);
    hl__put_le32(b + OFF_TAU, hl__f32_bits(c->tau));
    hl__put_le32(b + OFF_META_BYTES, (uint32_t)meta_len);
}

static void put_entry(unsigned char *e, const hl_tensor_view *t, size_t offset)
{
    size_t n = strlen(t->name); /* < 32: hl_model names fit their field */
    memcpy(e, t->name, n);
    hl__put_le32(e + E_DTYPE, 0);
    hl__put_le32(e + E_NDIM, (uint32_t)t->ndim);
    for (int d = 0; d < t->ndim; d++)
        hl__put_le64(e + E_DIMS + 8 * d, (uint64_t)t->dims[d]);
    hl__put_le64(e + E_OFFSET, (uint64_t)offset);
    hl__put_le64(e + E_NBYTES, (uint64_t)t->count * 4u);
}

hl_status hl_modelfile_encode(const hl_model *m, void **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (m == NULL || m->params == NULL || m->n_tensors > HL_MAX_TENSORS ||
        hl_model_config_check(&m->cfg, NULL) != HL_OK)
        return HL_INVAL;
    for (size_t i = 0; i < m->n_params; i++) {
        if (hl__f32_bits_nonfinite(hl__f32_bits(m->params[i])))
            return HL_NUMERIC;
    }
    char meta[256];
    size_t meta_len, off[HL_MAX_TENSORS], cur = 0, payload_off, total;
    hl_status st = build_meta(m, meta, sizeof(meta), &meta_len);
    if (st != HL_OK)
        return st;
    for (size_t i = 0; i < m->n_tensors; i++) {
        if (align_up(cur, &off[i]) != HL_OK ||
            hl_add_size(off[i], m->tensors[i].count * sizeof(float), &cur) != HL_OK)
            return HL_RANGE;
    }
    size_t crc_off = MF_FIXED + meta_len + m->n_tensors * MF_ENTRY;
    if (align_up(crc_off + 4, &payload_off) != HL_OK ||
        hl_add_size(payload_off, cur, &total) != HL_OK || hl_add_size(total, 4, &total) != HL_OK)
        return HL_RANGE;
    unsigned char *b = calloc(total, 1); /* zero: name and alignment padding */
    if (b == NULL)
        return HL_NOMEM;
    put_fixed_header(b, m, meta_len, cur);
    memcpy(b + MF_FIXED, meta, meta_len);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const hl_tensor_view *t = &m->tensors[i];
        put_entry(b + MF_FIXED + meta_len + i * MF_ENTRY, t, off[i]);
        unsigned char *p = b + payload_off + off[i];
        for (size_t j = 0; j < t->count; j++)
            hl__put_le32(p + 4 * j, hl__f32_bits(t->data[j]));
    }
    hl__put_le32(b + crc_off, hl_crc32c(0, b, crc_off));
    hl__put_le32(b + payload_off + cur, hl_crc32c(0, b + payload_off, cur));
    *out = b;
    *len = total;
    return HL_OK;
}

/* ------------------------------------------------------------------ decoding */

/* Magic, length, version, header region bounds and header CRC, then flags and reserved. */
static hl_status parse_fixed(const unsigned char *b, size_t len, mf_layout *L, hl_error *err)
{
    size_t m = len < 4 ? len : 4;
    if (m > 0 && memcmp(b, mf_magic, m) != 0)
        return hl_error_set_at(err, HL_FORMAT, "magic", 0, "bad magic: not a model file (HLMD)");
    if (len < MF_FIXED)
        return hl_error_set_at(err, HL_FORMAT, NULL, len,
                               "model file too short: %zu bytes, the fixed header needs %d", len,
                               MF_FIXED);
    L->major = hl__get_le16(b + OFF_MAJOR);
    L->minor = hl__get_le16(b + OFF_MINOR);
    if (L->major != HL_MODELFILE_MAJOR)
        return hl_error_set_at(err, HL_VERSION, "major", OFF_MAJOR,
                               "unsupported model file version %u.%u (this build reads %d.x)",
                               L->major, L->minor, HL_MODELFILE_MAJOR);
    size_t header_bytes = hl__get_le32(b + OFF_HEADER_BYTES);
    int newer = L->minor > HL_MODELFILE_MINOR;
    if (header_bytes < MF_FIXED || (!newer && header_bytes != MF_FIXED))
        return hl_error_set_at(err, HL_FORMAT, "header_bytes", OFF_HEADER_BYTES,
                               "bad header_bytes %zu for version %u.%u", header_bytes, L->major,
                               L->minor);
    L->meta_off = header_bytes;
    L->meta_bytes = hl__get_le32(b + OFF_META_BYTES);
    L->n_tensors = hl__get_le32(b + OFF_N_TENSORS);
    size_t table_bytes, end;
    if (hl_add_size(L->meta_off, L->meta_bytes, &L->table_off) != HL_OK ||
        hl_mul_size(L->n_tensors, MF_ENTRY, &table_bytes) != HL_OK ||
        hl_add_size(L->table_off, table_bytes, &L->crc_off) != HL_OK ||
        hl_add_size(L->crc_off, 4, &end) != HL_OK || end > len)
        return hl_error_set_at(err, HL_FORMAT, NULL, len,
                               "model file truncated: the header, %zu bytes of meta and %zu "
                               "tensor entries do not fit in %zu bytes",
                               L->meta_bytes, L->n_tensors, len);
    uint32_t stored = hl__get_le32(b + L->crc_off), crc = hl_crc32c(0, b, L->crc_off);
    if (stored != crc)
        return hl_error_set_at(err, HL_CHECKSUM, "header_crc", L->crc_off,
                               "header checksum mismatch (stored 0x%08x, computed 0x%08x)",
                               (unsigned)stored, (unsigned)crc);
    uint32_t flags = hl__get_le32(b + OFF_FLAGS);
    if (flags != 0)
        return hl_error_set_at(err, HL_FORMAT, "flags", OFF_FLAGS, "unknown flags 0x%x",
                               (unsigned)flags);
    if (!newer && (hl__get_le32(b + OFF_RESERVED0) != 0 || hl__get_le32(b + OFF_RESERVED1) != 0))
        return hl_error_set_at(err, HL_FORMAT, "reserved", OFF_RESERVED0,
                               "reserved header fields are not zero");
    return HL_OK;
}

/* Payload position and exact file length, zero padding, payload CRC. */
static hl_status check_payload(const unsigned char *b, size_t len, mf_layout *L, hl_error *err)
{
    uint64_t pb = hl__get_le64(b + OFF_PAYLOAD_BYTES);
    size_t want = 0;
    if (align_up(L->crc_off + 4, &L->payload_off) != HL_OK || pb > (uint64_t)SIZE_MAX ||
        hl_add_size(L->payload_off, (size_t)pb, &want) != HL_OK ||
        hl_add_size(want, 4, &want) != HL_OK || want > len)
        return hl_error_set_at(err, HL_FORMAT, "payload_bytes", len,
                               "model file truncated: %llu payload bytes do not fit in %zu bytes",
                               (unsigned long long)pb, len);
    if (want < len)
        return hl_error_set_at(err, HL_FORMAT, NULL, want,
                               "trailing bytes: %zu after the payload checksum", len - want);
    L->payload_bytes = (size_t)pb;
    for (size_t i = L->crc_off + 4; i < L->payload_off; i++) {
        if (b[i] != 0)
            return hl_error_set_at(err, HL_FORMAT, NULL, i,
                                   "non-zero padding before the payload at byte %zu", i);
    }
    const unsigned char *p = b + L->payload_off;
    uint32_t stored = hl__get_le32(p + L->payload_bytes);
    L->payload_crc = hl_crc32c(0, p, L->payload_bytes);
    if (stored != L->payload_crc)
        return hl_error_set_at(err, HL_CHECKSUM, "payload_crc", L->payload_off + L->payload_bytes,
                               "payload checksum mismatch (stored 0x%08x, computed 0x%08x)",
                               (unsigned)stored, (unsigned)L->payload_crc);
    return HL_OK;
}

/* The model must fit the payload; see the DESIGN note. conv.0.weight (hidden x
 * 2*in_features), classifier.1.weight ((hidden/2)^2) and edge_mlp.weight (hidden/2 x
 * edge_features) exist in every configuration and bound all other tensors within a small
 * factor, so requiring them to fit bounds the allocation by about 20 times the file size. */
static hl_status config_fits(const hl_model_config *c, size_t payload_bytes, hl_error *err)
{
    size_t h = (size_t)c->hidden, h2 = h / 2, a, b, e, need;
    if (hl_mul_size(h, 2 * (size_t)c->in_features, &a) != HL_OK ||
        hl_mul_size(h2, h2, &b) != HL_OK ||
        hl_mul_size(h2, (size_t)c->edge_features, &e) != HL_OK ||
        hl_add_size(a, b, &need) != HL_OK || hl_add_size(need, e, &need) != HL_OK ||
        hl_mul_size(need, sizeof(float), &need) != HL_OK || need > payload_bytes)
        return hl_error_set(err, HL_FORMAT, "payload_bytes",
                            "payload of %zu bytes cannot hold the configured model", payload_bytes);
    return HL_OK;
}

static hl_status read_config(const unsigned char *b, const mf_layout *L, hl_model_config *cfg,
                             hl_error *err)
{
    static const struct {
        size_t off;
        const char *name;
    } f[] = {{OFF_KIND, "kind"},
             {OFF_DIM, "dim"},
             {OFF_IN_FEATURES, "in_features"},
             {OFF_EDGE_FEATURES, "edge_features"},
             {OFF_HIDDEN, "hidden"},
             {OFF_N_CONV, "n_conv"},
             {OFF_USE_CLUSTER_FEAT, "use_cluster_feat"},
             {OFF_K, "k"}};
    int32_t v[8];
    for (size_t i = 0; i < 8; i++) {
        uint32_t u = hl__get_le32(b + f[i].off);
        if (u > INT32_MAX)
            return hl_error_set_at(err, HL_FORMAT, f[i].name, f[i].off,
                                   "bad model configuration: %s = %u is out of range", f[i].name,
                                   (unsigned)u);
        v[i] = (int32_t)u;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->kind = (hl_model_kind)v[0];
    cfg->dim = v[1];
    cfg->in_features = v[2];
    cfg->edge_features = v[3];
    cfg->hidden = v[4];
    cfg->n_conv = v[5];
    cfg->use_cluster_feat = v[6];
    cfg->k = v[7];
    cfg->tau = hl__f32_from_bits(hl__get_le32(b + OFF_TAU));
    hl_error local;
    hl_error_clear(&local);
    if (hl_model_config_check(cfg, &local) != HL_OK)
        return hl_error_set(err, HL_FORMAT, local.field, "bad model configuration: %s", local.msg);
    return config_fits(cfg, L->payload_bytes, err);
}

/* Copies one meta value into a fixed field; *seen catches duplicates. */
static hl_status meta_set(char *dst, size_t cap, int *seen, const char *key, const unsigned char *v,
                          size_t n, size_t at, hl_error *err)
{
    if (*seen)
        return hl_error_set_at(err, HL_FORMAT, "meta", at, "duplicate meta key '%s'", key);
    if (n >= cap)
        return hl_error_set_at(err, HL_FORMAT, "meta", at, "meta %s is %zu bytes, longer than %zu",
                               key, n, cap - 1);
    memcpy(dst, v, n);
    dst[n] = '\0';
    *seen = 1;
    return HL_OK;
}

/* "key=value\n" lines (the last '\n' optional, empty lines skipped); name and trained_on
 * fill the model, other keys are ignored for forward compatibility. */
static hl_status parse_meta(const unsigned char *s, size_t n, size_t base, hl_model *m,
                            hl_error *err)
{
    size_t bad = utf8_check(s, n);
    if (bad < n)
        return hl_error_set_at(err, HL_FORMAT, "meta", base + bad,
                               "meta is not valid UTF-8 at byte %zu", base + bad);
    if (memchr(s, '\0', n) != NULL)
        return hl_error_set_at(err, HL_FORMAT, "meta", base, "meta contains a NUL byte");
    int seen_name = 0, seen_trained = 0;
    size_t line = 0;
    for (size_t i = 0; i < n; line++) {
        const unsigned char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl != NULL ? (size_t)(nl - s) : n;
        const unsigned char *eq = memchr(s + i, '=', end - i);
        hl_status st = HL_OK;
        if (end > i && (eq == NULL || eq == s + i))
            return hl_error_set_at(err, HL_FORMAT, "meta", base + i,
                                   "meta line %zu is not key=value", line + 1);
        if (end > i) {
            size_t k = (size_t)(eq - s), vn = end - k - 1;
            if (k - i == 4 && memcmp(s + i, "name", 4) == 0)
                st = meta_set(m->name, sizeof(m->name), &seen_name, "name", eq + 1, vn, base + i,
                              err);
            else if (k - i == 10 && memcmp(s + i, "trained_on", 10) == 0)
                st = meta_set(m->trained_on, sizeof(m->trained_on), &seen_trained, "trained_on",
                              eq + 1, vn, base + i, err);
        }
        if (st != HL_OK)
            return st;
        i = end + 1;
    }
    return HL_OK;
}

static void dims_str(unsigned ndim, const uint64_t *dims, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = '\0';
    for (unsigned d = 0; d < ndim && k < cap; d++) {
        int n =
            snprintf(out + k, cap - k, d == 0 ? "[%llu" : ", %llu", (unsigned long long)dims[d]);
        if (n < 0)
            return;
        k += (size_t)n;
    }
    if (k < cap)
        (void)snprintf(out + k, cap - k, "]");
}

/* Checks the name field of entry i and copies it into name[MF_NAME]. */
static hl_status entry_name(const unsigned char *e, size_t i, size_t at, char *name, hl_error *err)
{
    const unsigned char *nul = memchr(e, '\0', MF_NAME);
    if (nul == NULL)
        return hl_error_set_at(err, HL_FORMAT, "tensors", at,
                               "tensor %zu: name is not NUL-terminated", i);
    size_t k = (size_t)(nul - e);
    if (k == 0)
        return hl_error_set_at(err, HL_FORMAT, "tensors", at, "tensor %zu: empty name", i);
    for (size_t j = 0; j < MF_NAME; j++) {
        if (j < k ? (e[j] < 0x21 || e[j] > 0x7E) : e[j] != 0)
            return hl_error_set_at(err, HL_FORMAT, "tensors", at + j,
                                   "tensor %zu: bad byte 0x%02x in the name field", i,
                                   (unsigned)e[j]);
    }
    memcpy(name, e, k + 1);
    return HL_OK;
}

/* One decoded table entry. */
typedef struct mf_entry {
    char name[MF_NAME];
    uint32_t dtype, ndim;
    uint64_t dims[MF_MAXDIM], offset, nbytes;
} mf_entry;

/* Reads entry i and checks what holds for every tensor, known or not. */
static hl_status read_entry(const unsigned char *b, const mf_layout *L, size_t i, mf_entry *t,
                            hl_error *err)
{
    size_t at = L->table_off + i * MF_ENTRY;
    const unsigned char *e = b + at;
    hl_status st = entry_name(e, i, at, t->name, err);
    if (st != HL_OK)
        return st;
    t->dtype = hl__get_le32(e + E_DTYPE);
    t->ndim = hl__get_le32(e + E_NDIM);
    for (int d = 0; d < MF_MAXDIM; d++)
        t->dims[d] = hl__get_le64(e + E_DIMS + 8 * d);
    t->offset = hl__get_le64(e + E_OFFSET);
    t->nbytes = hl__get_le64(e + E_NBYTES);
    if (t->ndim < 1 || t->ndim > MF_MAXDIM)
        return hl_error_set_at(err, HL_FORMAT, t->name, at + E_NDIM,
                               "tensor '%s': ndim %u is not in 1..%d", t->name, (unsigned)t->ndim,
                               MF_MAXDIM);
    for (uint32_t d = t->ndim; d < MF_MAXDIM; d++) {
        if (t->dims[d] != 0)
            return hl_error_set_at(err, HL_FORMAT, t->name, at + E_DIMS,
                                   "tensor '%s': unused dimension %u is not zero", t->name,
                                   (unsigned)d);
    }
    if (t->offset % MF_ALIGN != 0 || t->offset > L->payload_bytes ||
        t->nbytes > L->payload_bytes - t->offset)
        return hl_error_set_at(err, HL_FORMAT, t->name, at + E_OFFSET,
                               "tensor '%s': %llu bytes at offset %llu fall outside the %zu-byte "
                               "payload or are not 64-byte aligned",
                               t->name, (unsigned long long)t->nbytes,
                               (unsigned long long)t->offset, L->payload_bytes);
    if (L->minor <= HL_MODELFILE_MINOR && hl__get_le64(e + E_PAD) != 0)
        return hl_error_set_at(err, HL_FORMAT, t->name, at + E_PAD,
                               "tensor '%s': padding is not zero", t->name);
    return HL_OK;
}

/* Checks entry t against the model's tensor v and copies its data. */
static hl_status copy_tensor(const unsigned char *payload, const mf_entry *t,
                             const hl_tensor_view *v, hl_error *err)
{
    uint64_t want[MF_MAXDIM] = {v->dims[0], v->ndim > 1 ? v->dims[1] : 0, 0, 0};
    if (t->dtype != 0)
        return hl_error_set(err, HL_FORMAT, t->name, "tensor '%s': unsupported dtype %u (0 = f32)",
                            t->name, (unsigned)t->dtype);
    int same = t->ndim == (uint32_t)v->ndim;
    for (int d = 0; same && d < v->ndim; d++)
        same = t->dims[d] == want[d];
    if (!same) {
        char got[96], need[64];
        dims_str(t->ndim, t->dims, got, sizeof(got));
        dims_str((unsigned)v->ndim, want, need, sizeof(need));
        return hl_error_set(err, HL_FORMAT, t->name,
                            "tensor '%s' has shape %s, the configuration needs %s", t->name, got,
                            need);
    }
    if (t->nbytes != (uint64_t)v->count * 4u)
        return hl_error_set(err, HL_FORMAT, t->name,
                            "tensor '%s': nbytes %llu does not match its shape (%zu floats)",
                            t->name, (unsigned long long)t->nbytes, v->count);
    const unsigned char *p = payload + t->offset;
    for (size_t j = 0; j < v->count; j++) {
        uint32_t u = hl__get_le32(p + 4 * j);
        if (hl__f32_bits_nonfinite(u))
            return hl_error_set(err, HL_NUMERIC, t->name,
                                "tensor '%s': non-finite value (%s) at index %zu", t->name,
                                hl__nonfinite_name(u), j);
        v->data[j] = hl__f32_from_bits(u);
    }
    return HL_OK;
}

static hl_status load_tensors(const unsigned char *b, const mf_layout *L, hl_model *m,
                              hl_error *err)
{
    int seen[HL_MAX_TENSORS] = {0};
    for (size_t i = 0; i < L->n_tensors; i++) {
        mf_entry t;
        hl_status st = read_entry(b, L, i, &t, err);
        if (st != HL_OK)
            return st;
        const hl_tensor_view *v = hl_model_tensor(m, t.name);
        if (v == NULL) {
            if (L->minor > HL_MODELFILE_MINOR)
                continue; /* added by a newer minor version: not ours to read */
            return hl_error_set(err, HL_FORMAT, t.name, "unknown tensor '%s'", t.name);
        }
        size_t idx = (size_t)(v - m->tensors);
        if (seen[idx])
            return hl_error_set(err, HL_FORMAT, t.name, "duplicate tensor '%s'", t.name);
        seen[idx] = 1;
        st = copy_tensor(b + L->payload_off, &t, v, err);
        if (st != HL_OK)
            return st;
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        if (!seen[i])
            return hl_error_set(err, HL_FORMAT, m->tensors[i].name, "missing tensor '%s'",
                                m->tensors[i].name);
    }
    return HL_OK;
}

hl_status hl_modelfile_decode(const void *buf, size_t len, hl_model **out, uint32_t *checksum,
                              hl_error *err)
{
    *out = NULL;
    if (buf == NULL && len > 0)
        return hl_error_set(err, HL_INVAL, NULL, "no model file data");
    const unsigned char *b = buf;
    mf_layout L;
    memset(&L, 0, sizeof(L));
    hl_model_config cfg;
    hl_status st = parse_fixed(b, len, &L, err);
    if (st == HL_OK)
        st = check_payload(b, len, &L, err);
    if (st == HL_OK)
        st = read_config(b, &L, &cfg, err);
    if (st != HL_OK)
        return st;
    hl_model *m;
    st = hl_model_new(&cfg, err, &m);
    if (st != HL_OK)
        return st;
    st = parse_meta(b + L.meta_off, L.meta_bytes, L.meta_off, m, err);
    if (st == HL_OK)
        st = load_tensors(b, &L, m, err);
    if (st != HL_OK) {
        hl_model_free(m);
        return st;
    }
    if (checksum != NULL)
        *checksum = L.payload_crc;
    *out = m;
    return HL_OK;
}

hl_status hl_modelfile_save(const hl_model *m, const char *path, hl_error *err)
{
    void *buf;
    size_t len;
    hl_status st = hl_modelfile_encode(m, &buf, &len);
    if (st != HL_OK)
        return hl_error_set(err, st, NULL, "cannot encode the model for '%s': %s", path,
                            hl_status_str(st));
    st = hl_file_write(path, buf, len, err);
    free(buf);
    return st;
}

hl_status hl_modelfile_load(const char *path, hl_model **out, uint32_t *checksum, hl_error *err)
{
    *out = NULL;
    void *buf;
    size_t len;
    hl_status st = hl_file_read(path, &buf, &len, err);
    if (st != HL_OK)
        return st;
    hl_error local;
    hl_error_clear(&local);
    st = hl_modelfile_decode(buf, len, out, checksum, &local);
    free(buf);
    return st == HL_OK ? HL_OK : hl__error_wrap(err, &local, path);
}
