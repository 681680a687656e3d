/*
 * statefile.c - the .hls clustering state file; see hl/statefile.h for the layout.
 *
 * DESIGN. As modelfile.c: nothing read from the file is trusted before it is checked. The
 * decoder checks, in order:
 *
 *   magic, length >= 176, major  ->  header_bytes, table bounds, header CRC  ->  flags,
 *   reserved  ->  payload bounds (exact file length), zero padding, payload CRC  ->  header
 *   fields  ->  table entries (name, dtype, ndim, alignment, bounds, increasing offsets,
 *   no overlap)  ->  the expected arrays (from the header and each level's "nbr" shape),
 *   each present once with its exact shape  ->  copy (finite floats)  ->
 *   hl_assign_state_check().
 *
 * Arrays may not overlap and come in offset order, so everything allocated for the state is
 * bounded by the payload size. Both encoder and decoder derive the list of arrays from one
 * function (state_arrays), so they cannot disagree about names, dtypes or shapes.
 */
#include "hl/statefile.h"

#include "hl/crc32c.h"
#include "hl/file.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SF_FIXED 176 /* fixed header bytes in v1.0 */
#define SF_ENTRY 64  /* table entry */
#define SF_ALIGN 64  /* payload and array alignment */
#define SF_NAME  32  /* name field of an entry */
/* Arrays of a state: x, labels, and at most 14 per level. */
#define SF_MAX_ARRAYS (2 + 14 * HL_ASSIGN_MAX_LEVELS)

enum {
    OFF_MAJOR = 4,
    OFF_MINOR = 6,
    OFF_HEADER_BYTES = 8,
    OFF_FLAGS = 12,
    OFF_PAYLOAD_BYTES = 16,
    OFF_N = 24,
    OFF_DIM = 32,
    OFF_N_LEVELS = 36,
    OFF_K = 40,
    OFF_TAU = 44,
    OFF_HAS_MODEL = 48,
    OFF_CHECKSUM = 52,
    OFF_KIND = 56,
    OFF_MDIM = 60,
    OFF_IN_FEATURES = 64,
    OFF_EDGE_FEATURES = 68,
    OFF_HIDDEN = 72,
    OFF_N_CONV = 76,
    OFF_UCF = 80,
    OFF_MK = 84,
    OFF_MTAU = 88,
    OFF_N_ARRAYS = 92,
    OFF_NAME = 96,
    OFF_RESERVED = 160,
};

enum { E_DTYPE = 32, E_NDIM = 36, E_DIMS = 40, E_OFFSET = 56 };
enum { DT_F32 = 0, DT_I32 = 1 };

static const unsigned char sf_magic[4] = {'H', 'L', 'S', 'T'};

/* One array of a state: its name, type and shape, and where its data lives. */
typedef struct sf_array {
    char name[SF_NAME];
    uint32_t dtype;
    uint32_t ndim;
    size_t dims[2];
    void **slot;  /* the state field that owns the data (a malloc'd array), or */
    float *fixed; /* storage inside the state (fstats) */
} sf_array;

/* Level sizes the array list depends on. */
typedef struct sf_shape {
    size_t n, d;
    int n_levels;
    size_t ln[HL_ASSIGN_MAX_LEVELS];
    int width[HL_ASSIGN_MAX_LEVELS];
    hl_assign_widths w;
} sf_shape;

static sf_array *add(sf_array *a, size_t *k, const char *name, uint32_t dt, size_t d0, size_t d1,
                     void *slot)
{
    sf_array *e = &a[(*k)++];
    memset(e, 0, sizeof(*e));
    (void)snprintf(e->name, sizeof(e->name), "%s", name);
    e->dtype = dt;
    e->ndim = d1 > 0 ? 2 : 1;
    e->dims[0] = d0;
    e->dims[1] = d1;
    e->slot = slot;
    return e;
}

/* The arrays of a state with these sizes, in file order, bound to the fields of `s`. */
static size_t state_arrays(const sf_shape *sh, hl_assign_state *s, sf_array *a)
{
    size_t k = 0;
    char nm[SF_NAME];
    add(a, &k, "x", DT_F32, sh->n, sh->d, &s->x);
    add(a, &k, "labels", DT_I32, sh->n, 0, &s->labels);
    for (int l = 0; l < sh->n_levels; l++) {
        hl_assign_level *L = &s->levels[l];
        size_t n = sh->ln[l], w = (size_t)sh->width[l];
#define LV(field, dt, d0, d1, slot)                                                                \
    do {                                                                                           \
        (void)snprintf(nm, sizeof(nm), "l%d.%s", l, field);                                        \
        add(a, &k, nm, dt, d0, d1, slot);                                                          \
    } while (0)
        LV("rep", DT_I32, n, 0, &L->rep);
        LV("cnt", DT_I32, n, 0, &L->cnt);
        LV("nbr", DT_I32, n, w, &L->nbr);
        LV("sim", DT_F32, n, w, &L->sim);
        LV("deg", DT_I32, n, 0, &L->deg);
        LV("dens", DT_F32, n, 0, &L->dens);
        LV("labels", DT_I32, sh->n, 0, &L->labels);
        LV("fstats", DT_F32, HL_ASSIGN_FSTATS, 0, NULL);
        a[k - 1].fixed = L->fstats;
        if (sh->w.node > 0)
            LV("node", DT_F32, n, sh->w.node, &L->node);
        for (int h = 0; h < HL_MAX_CONV - 1; h++) {
            char hn[16];
            (void)snprintf(hn, sizeof(hn), "hidden%d", h);
            if (sh->w.hidden[h] > 0)
                LV(hn, DT_F32, n, sh->w.hidden[h], &L->hidden[h]);
        }
        if (sh->w.S > 0)
            LV("S", DT_F32, n, sh->w.S, &L->S);
        if (l > 0 && sh->w.cmean)
            LV("cmean", DT_F32, n, sh->d, &L->cmean);
#undef LV
    }
    return k;
}

static size_t array_bytes(const sf_array *e)
{
    return e->dims[0] * (e->ndim > 1 ? e->dims[1] : 1) * 4;
}

static size_t align_up(size_t x)
{
    return (x + SF_ALIGN - 1) & ~(size_t)(SF_ALIGN - 1);
}

/* ------------------------------------------------------------------ encoding */

static void put_header(unsigned char *b, const hl_assign_state *s, size_t n_arrays, size_t payload)
{
    const hl_model_config *c = &s->model_cfg;
    memcpy(b, sf_magic, 4);
    hl__put_le16(b + OFF_MAJOR, HL_STATEFILE_MAJOR);
    hl__put_le16(b + OFF_MINOR, HL_STATEFILE_MINOR);
    hl__put_le32(b + OFF_HEADER_BYTES, SF_FIXED);
    hl__put_le64(b + OFF_PAYLOAD_BYTES, (uint64_t)payload);
    hl__put_le64(b + OFF_N, (uint64_t)s->n);
    hl__put_le32(b + OFF_DIM, (uint32_t)s->d);
    hl__put_le32(b + OFF_N_LEVELS, (uint32_t)s->n_levels);
    hl__put_le32(b + OFF_K, (uint32_t)s->k);
    hl__put_le32(b + OFF_TAU, hl__f32_bits(s->tau));
    hl__put_le32(b + OFF_HAS_MODEL, (uint32_t)s->has_model);
    hl__put_le32(b + OFF_N_ARRAYS, (uint32_t)n_arrays);
    if (!s->has_model)
        return;
    hl__put_le32(b + OFF_CHECKSUM, s->model_checksum);
    hl__put_le32(b + OFF_KIND, (uint32_t)c->kind);
    hl__put_le32(b + OFF_MDIM, (uint32_t)c->dim);
    hl__put_le32(b + OFF_IN_FEATURES, (uint32_t)c->in_features);
    hl__put_le32(b + OFF_EDGE_FEATURES, (uint32_t)c->edge_features);
    hl__put_le32(b + OFF_HIDDEN, (uint32_t)c->hidden);
    hl__put_le32(b + OFF_N_CONV, (uint32_t)c->n_conv);
    hl__put_le32(b + OFF_UCF, (uint32_t)c->use_cluster_feat);
    hl__put_le32(b + OFF_MK, (uint32_t)c->k);
    hl__put_le32(b + OFF_MTAU, hl__f32_bits(c->tau));
    memcpy(b + OFF_NAME, s->model_name, strlen(s->model_name)); /* terminated: checked */
}

static void put_array(unsigned char *p, const sf_array *e, const void *data)
{
    size_t count = array_bytes(e) / 4;
    if (e->dtype == DT_F32) {
        const float *f = data;
        for (size_t i = 0; i < count; i++)
            hl__put_le32(p + 4 * i, hl__f32_bits(f[i]));
    } else {
        const int32_t *v = data;
        for (size_t i = 0; i < count; i++)
            hl__put_le32(p + 4 * i, (uint32_t)v[i]);
    }
}

static void shape_of(const hl_assign_state *s, sf_shape *sh)
{
    memset(sh, 0, sizeof(*sh));
    sh->n = s->n;
    sh->d = s->d;
    sh->n_levels = s->n_levels;
    for (int l = 0; l < s->n_levels; l++) {
        sh->ln[l] = s->levels[l].n;
        sh->width[l] = s->levels[l].width;
    }
    hl_assign_widths_of(s->has_model, &s->model_cfg, &sh->w);
}

hl_status hl_statefile_encode(const hl_assign_state *s, void **out, size_t *len, uint32_t *checksum,
                              hl_error *err)
{
    *out = NULL;
    *len = 0;
    hl_error local;
    hl_error_clear(&local);
    if (hl_assign_state_check(s, &local) != HL_OK)
        return hl_error_set(err, HL_INVAL, local.field, "cannot encode the state: %s", local.msg);
    sf_shape sh;
    shape_of(s, &sh);
    sf_array *a = malloc(SF_MAX_ARRAYS * sizeof(sf_array));
    if (a == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    /* The list binds to a shallow copy: the encoder only reads through it. */
    hl_assign_state tmp = *s;
    size_t n_arrays = state_arrays(&sh, &tmp, a), off[SF_MAX_ARRAYS], cur = 0;
    for (size_t i = 0; i < n_arrays; i++) {
        off[i] = align_up(cur);
        cur = off[i] + array_bytes(&a[i]);
    }
    size_t crc_off = SF_FIXED + n_arrays * SF_ENTRY;
    size_t payload_off = align_up(crc_off + 4), total = payload_off + cur + 4;
    unsigned char *b = calloc(total, 1);
    if (b == NULL) {
        free(a);
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory (%zu bytes)", total);
    }
    put_header(b, s, n_arrays, cur);
    for (size_t i = 0; i < n_arrays; i++) {
        unsigned char *e = b + SF_FIXED + i * SF_ENTRY;
        memcpy(e, a[i].name, strlen(a[i].name));
        hl__put_le32(e + E_DTYPE, a[i].dtype);
        hl__put_le32(e + E_NDIM, a[i].ndim);
        hl__put_le64(e + E_DIMS, (uint64_t)a[i].dims[0]);
        hl__put_le64(e + E_DIMS + 8, (uint64_t)a[i].dims[1]);
        hl__put_le64(e + E_OFFSET, (uint64_t)off[i]);
        const void *data = a[i].fixed != NULL ? (const void *)a[i].fixed : *a[i].slot;
        put_array(b + payload_off + off[i], &a[i], data);
    }
    hl__put_le32(b + crc_off, hl_crc32c(0, b, crc_off));
    uint32_t pcrc = hl_crc32c(0, b + payload_off, cur);
    hl__put_le32(b + payload_off + cur, pcrc);
    free(a);
    if (checksum != NULL)
        *checksum = pcrc;
    *out = b;
    *len = total;
    return HL_OK;
}

/* ------------------------------------------------------------------ decoding */

typedef struct sf_layout {
    unsigned major, minor;
    size_t n_arrays, crc_off, payload_off, payload_bytes;
} sf_layout;

/* Magic, length, version, table bounds and header CRC, then flags and reserved fields. */
static hl_status parse_fixed(const unsigned char *b, size_t len, sf_layout *L, hl_error *err)
{
    size_t m = len < 4 ? len : 4;
    if (m > 0 && memcmp(b, sf_magic, m) != 0)
        return hl_error_set_at(err, HL_FORMAT, "magic", 0,
                               "bad magic: not a clustering state file (HLST)");
    if (len < SF_FIXED)
        return hl_error_set_at(err, HL_FORMAT, NULL, len,
                               "state file too short: %zu bytes, the fixed header needs %d", len,
                               SF_FIXED);
    L->major = hl__get_le16(b + OFF_MAJOR);
    L->minor = hl__get_le16(b + OFF_MINOR);
    if (L->major != HL_STATEFILE_MAJOR)
        return hl_error_set_at(err, HL_VERSION, "major", OFF_MAJOR,
                               "unsupported state file version %u.%u (this build reads %d.x)",
                               L->major, L->minor, HL_STATEFILE_MAJOR);
    size_t hb = hl__get_le32(b + OFF_HEADER_BYTES);
    int newer = L->minor > HL_STATEFILE_MINOR;
    if (hb < SF_FIXED || (!newer && hb != SF_FIXED))
        return hl_error_set_at(err, HL_FORMAT, "header_bytes", OFF_HEADER_BYTES,
                               "bad header_bytes %zu for version %u.%u", hb, L->major, L->minor);
    L->n_arrays = hl__get_le32(b + OFF_N_ARRAYS);
    size_t tb, end;
    if (hl_mul_size(L->n_arrays, SF_ENTRY, &tb) != HL_OK ||
        hl_add_size(hb, tb, &L->crc_off) != HL_OK || hl_add_size(L->crc_off, 4, &end) != HL_OK ||
        end > len)
        return hl_error_set_at(err, HL_FORMAT, NULL, len,
                               "state file truncated: the header and %zu array entries do not "
                               "fit in %zu bytes",
                               L->n_arrays, len);
    uint32_t stored = hl__get_le32(b + L->crc_off), crc = hl_crc32c(0, b, L->crc_off);
    if (stored != crc)
        return hl_error_set_at(err, HL_CHECKSUM, "header_crc", L->crc_off,
                               "header checksum mismatch (stored 0x%08x, computed 0x%08x)",
                               (unsigned)stored, (unsigned)crc);
    if (hl__get_le32(b + OFF_FLAGS) != 0)
        return hl_error_set_at(err, HL_FORMAT, "flags", OFF_FLAGS, "unknown flags 0x%x",
                               (unsigned)hl__get_le32(b + OFF_FLAGS));
    for (int i = 0; i < 4 && !newer; i++)
        if (hl__get_le32(b + OFF_RESERVED + 4 * i) != 0)
            return hl_error_set_at(err, HL_FORMAT, "reserved", OFF_RESERVED + 4 * (size_t)i,
                                   "reserved header fields are not zero");
    /* The table starts after the fixed header of this version. */
    L->crc_off = hb + tb;
    return HL_OK;
}

static hl_status check_payload(const unsigned char *b, size_t len, sf_layout *L, hl_error *err)
{
    uint64_t pb = hl__get_le64(b + OFF_PAYLOAD_BYTES);
    size_t want = 0;
    L->payload_off = align_up(L->crc_off + 4);
    if (pb > (uint64_t)SIZE_MAX || hl_add_size(L->payload_off, (size_t)pb, &want) != HL_OK ||
        hl_add_size(want, 4, &want) != HL_OK || want > len)
        return hl_error_set_at(err, HL_FORMAT, "payload_bytes", len,
                               "state file truncated: %llu payload bytes do not fit in %zu bytes",
                               (unsigned long long)pb, len);
    if (want < len)
        return hl_error_set_at(err, HL_FORMAT, NULL, want,
                               "trailing bytes: %zu after the payload checksum", len - want);
    L->payload_bytes = (size_t)pb;
    for (size_t i = L->crc_off + 4; i < L->payload_off; i++)
        if (b[i] != 0)
            return hl_error_set_at(err, HL_FORMAT, NULL, i,
                                   "non-zero padding before the payload at byte %zu", i);
    const unsigned char *p = b + L->payload_off;
    uint32_t stored = hl__get_le32(p + L->payload_bytes), crc = hl_crc32c(0, p, L->payload_bytes);
    if (stored != crc)
        return hl_error_set_at(err, HL_CHECKSUM, "payload_crc", L->payload_off + L->payload_bytes,
                               "payload checksum mismatch (stored 0x%08x, computed 0x%08x)",
                               (unsigned)stored, (unsigned)crc);
    return HL_OK;
}

static hl_status read_model(const unsigned char *b, hl_assign_state *s, hl_error *err)
{
    static const size_t offs[] = {
        OFF_CHECKSUM, OFF_KIND,   OFF_MDIM, OFF_IN_FEATURES, OFF_EDGE_FEATURES,
        OFF_HIDDEN,   OFF_N_CONV, OFF_UCF,  OFF_MK,          OFF_MTAU};
    s->has_model = (int)(hl__get_le32(b + OFF_HAS_MODEL) & 0xFFu);
    if (hl__get_le32(b + OFF_HAS_MODEL) > 1)
        return hl_error_set_at(err, HL_FORMAT, "has_model", OFF_HAS_MODEL,
                               "has_model must be 0 or 1");
    const unsigned char *name = b + OFF_NAME, *nul = memchr(name, '\0', 64);
    if (nul == NULL)
        return hl_error_set_at(err, HL_FORMAT, "model_name", OFF_NAME,
                               "model name is not NUL-terminated");
    for (const unsigned char *q = nul; q < name + 64; q++)
        if (*q != 0)
            return hl_error_set_at(err, HL_FORMAT, "model_name", (size_t)(q - b),
                                   "model name is not NUL-padded");
    if (!s->has_model) {
        for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
            if (hl__get_le32(b + offs[i]) != 0)
                return hl_error_set_at(err, HL_FORMAT, "model", offs[i],
                                       "model fields are set but has_model is 0");
        if (nul != name)
            return hl_error_set_at(err, HL_FORMAT, "model_name", OFF_NAME,
                                   "model name is set but has_model is 0");
        return HL_OK;
    }
    for (size_t i = 1; i + 1 < sizeof(offs) / sizeof(offs[0]); i++)
        if (hl__get_le32(b + offs[i]) > INT32_MAX)
            return hl_error_set_at(err, HL_FORMAT, "model", offs[i],
                                   "model configuration value out of range");
    hl_model_config *c = &s->model_cfg;
    s->model_checksum = hl__get_le32(b + OFF_CHECKSUM);
    c->kind = (hl_model_kind)hl__get_le32(b + OFF_KIND);
    c->dim = (int32_t)hl__get_le32(b + OFF_MDIM);
    c->in_features = (int32_t)hl__get_le32(b + OFF_IN_FEATURES);
    c->edge_features = (int32_t)hl__get_le32(b + OFF_EDGE_FEATURES);
    c->hidden = (int32_t)hl__get_le32(b + OFF_HIDDEN);
    c->n_conv = (int32_t)hl__get_le32(b + OFF_N_CONV);
    c->use_cluster_feat = (int32_t)hl__get_le32(b + OFF_UCF);
    c->k = (int32_t)hl__get_le32(b + OFF_MK);
    c->tau = hl__f32_from_bits(hl__get_le32(b + OFF_MTAU));
    memcpy(s->model_name, name, (size_t)(nul - name));
    hl_error local;
    hl_error_clear(&local);
    if (hl_model_config_check(c, &local) != HL_OK)
        return hl_error_set_at(err, HL_FORMAT, "model", OFF_KIND, "bad model configuration: %s",
                               local.msg);
    return HL_OK;
}

/* Header fields of the state itself, checked enough to size the arrays safely. */
static hl_status read_header(const unsigned char *b, hl_assign_state *s, sf_shape *sh,
                             hl_error *err)
{
    uint64_t n = hl__get_le64(b + OFF_N);
    uint32_t d = hl__get_le32(b + OFF_DIM), nl = hl__get_le32(b + OFF_N_LEVELS);
    size_t nd;
    if (n < 2 || n > INT32_MAX)
        return hl_error_set_at(err, HL_FORMAT, "n", OFF_N, "bad point count %llu",
                               (unsigned long long)n);
    if (d < 1 || d > INT32_MAX || hl_mul_size((size_t)n, d, &nd) != HL_OK)
        return hl_error_set_at(err, HL_FORMAT, "dim", OFF_DIM, "bad dimension %u", (unsigned)d);
    if (nl < 1 || nl > HL_ASSIGN_MAX_LEVELS)
        return hl_error_set_at(err, HL_FORMAT, "n_levels", OFF_N_LEVELS,
                               "bad level count %u (1..%d)", (unsigned)nl, HL_ASSIGN_MAX_LEVELS);
    s->n = s->cap = (size_t)n;
    s->d = d;
    s->n_levels = (int)nl;
    s->k = (int)(hl__get_le32(b + OFF_K) & 0x7FFFFFFFu);
    s->tau = hl__f32_from_bits(hl__get_le32(b + OFF_TAU));
    if (hl__get_le32(b + OFF_K) > 1024)
        return hl_error_set_at(err, HL_FORMAT, "k", OFF_K, "bad k %u",
                               (unsigned)hl__get_le32(b + OFF_K));
    hl_status st = read_model(b, s, err);
    if (st != HL_OK)
        return st;
    memset(sh, 0, sizeof(*sh));
    sh->n = s->n;
    sh->d = s->d;
    sh->n_levels = s->n_levels;
    hl_assign_widths_of(s->has_model, &s->model_cfg, &sh->w);
    return HL_OK;
}

/* One decoded table entry. */
typedef struct sf_entry {
    char name[SF_NAME];
    uint32_t dtype, ndim;
    uint64_t dims[2], offset;
    size_t at; /* where the entry lies in the file */
    int used;
} sf_entry;

static hl_status read_entry(const unsigned char *b, const sf_layout *L, size_t i, sf_entry *t,
                            uint64_t *prev_end, hl_error *err)
{
    size_t at = L->crc_off - (L->n_arrays - i) * SF_ENTRY;
    const unsigned char *e = b + at, *nul = memchr(e, '\0', SF_NAME);
    memset(t, 0, sizeof(*t));
    t->at = at;
    if (nul == NULL || nul == e)
        return hl_error_set_at(err, HL_FORMAT, "arrays", at, "array %zu: bad name field", i);
    for (size_t j = 0; j < SF_NAME; j++)
        if (e + j < nul ? (e[j] < 0x21 || e[j] > 0x7E) : e[j] != 0)
            return hl_error_set_at(err, HL_FORMAT, "arrays", at + j,
                                   "array %zu: bad byte 0x%02x in the name field", i,
                                   (unsigned)e[j]);
    memcpy(t->name, e, (size_t)(nul - e));
    t->dtype = hl__get_le32(e + E_DTYPE);
    t->ndim = hl__get_le32(e + E_NDIM);
    t->dims[0] = hl__get_le64(e + E_DIMS);
    t->dims[1] = hl__get_le64(e + E_DIMS + 8);
    t->offset = hl__get_le64(e + E_OFFSET);
    if (t->dtype > DT_I32 || t->ndim < 1 || t->ndim > 2 || (t->ndim == 1 && t->dims[1] != 0))
        return hl_error_set_at(err, HL_FORMAT, t->name, at + E_DTYPE,
                               "array '%s': bad dtype %u or ndim %u", t->name, (unsigned)t->dtype,
                               (unsigned)t->ndim);
    uint64_t cnt = t->dims[0], cols = t->ndim > 1 ? t->dims[1] : 1;
    uint64_t lim = (uint64_t)L->payload_bytes / 4;
    if (cols != 0 && cnt > lim / cols)
        return hl_error_set_at(err, HL_FORMAT, t->name, at + E_DIMS,
                               "array '%s' is larger than the payload", t->name);
    uint64_t bytes = cnt * cols * 4;
    if (t->offset % SF_ALIGN != 0 || t->offset < *prev_end || t->offset > L->payload_bytes ||
        bytes > L->payload_bytes - t->offset)
        return hl_error_set_at(err, HL_FORMAT, t->name, at + E_OFFSET,
                               "array '%s': %llu bytes at offset %llu overlap the previous array, "
                               "fall outside the %zu-byte payload or are not 64-byte aligned",
                               t->name, (unsigned long long)bytes, (unsigned long long)t->offset,
                               L->payload_bytes);
    *prev_end = t->offset + bytes;
    return HL_OK;
}

/* Level sizes from each level's "nbr" entry. */
static hl_status level_sizes(const sf_entry *t, size_t ne, sf_shape *sh, hl_error *err)
{
    for (int l = 0; l < sh->n_levels; l++) {
        char nm[SF_NAME];
        (void)snprintf(nm, sizeof(nm), "l%d.nbr", l);
        size_t i = 0;
        while (i < ne && strcmp(t[i].name, nm) != 0)
            i++;
        if (i == ne)
            return hl_error_set(err, HL_FORMAT, nm, "missing array '%s'", nm);
        if (t[i].ndim != 2 || t[i].dims[1] < 1 || t[i].dims[1] > 1023 || t[i].dims[0] < 1 ||
            t[i].dims[0] > sh->n)
            return hl_error_set_at(err, HL_FORMAT, nm, t[i].at + E_DIMS,
                                   "array '%s' has a bad shape", nm);
        sh->ln[l] = (size_t)t[i].dims[0];
        sh->width[l] = (int)t[i].dims[1];
    }
    return HL_OK;
}

static hl_status copy_array(const unsigned char *p, const sf_array *a, void *dst, hl_error *err)
{
    size_t count = array_bytes(a) / 4;
    if (a->dtype == DT_I32) {
        int32_t *v = dst;
        for (size_t i = 0; i < count; i++)
            v[i] = (int32_t)hl__get_le32(p + 4 * i);
        return HL_OK;
    }
    float *f = dst;
    for (size_t i = 0; i < count; i++) {
        uint32_t u = hl__get_le32(p + 4 * i);
        if (hl__f32_bits_nonfinite(u))
            return hl_error_set(err, HL_NUMERIC, a->name,
                                "array '%s': non-finite value (%s) at index %zu", a->name,
                                hl__nonfinite_name(u), i);
        f[i] = hl__f32_from_bits(u);
    }
    return HL_OK;
}

/* Matches every expected array with its entry and copies it into the state. */
static hl_status load_arrays(const unsigned char *b, const sf_layout *L, sf_entry *t, size_t ne,
                             const sf_shape *sh, hl_assign_state *s, hl_error *err)
{
    sf_array *a = malloc(SF_MAX_ARRAYS * sizeof(sf_array));
    if (a == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    size_t na = state_arrays(sh, s, a);
    hl_status st = HL_OK;
    for (size_t k = 0; k < na && st == HL_OK; k++) {
        size_t i = 0;
        while (i < ne && strcmp(t[i].name, a[k].name) != 0)
            i++;
        if (i == ne) {
            st = hl_error_set(err, HL_FORMAT, a[k].name, "missing array '%s'", a[k].name);
            break;
        }
        sf_entry *e = &t[i];
        e->used = 1;
        if (e->dtype != a[k].dtype || e->ndim != a[k].ndim || e->dims[0] != a[k].dims[0] ||
            e->dims[1] != a[k].dims[1]) {
            st = hl_error_set_at(err, HL_FORMAT, e->name, e->at + E_DTYPE,
                                 "array '%s' has type %u shape [%llu, %llu], expected type %u "
                                 "shape [%zu, %zu]",
                                 e->name, (unsigned)e->dtype, (unsigned long long)e->dims[0],
                                 (unsigned long long)e->dims[1], (unsigned)a[k].dtype, a[k].dims[0],
                                 a[k].dims[1]);
            break;
        }
        void *dst = a[k].fixed;
        if (dst == NULL) {
            size_t bytes = array_bytes(&a[k]);
            dst = *a[k].slot = malloc(bytes > 0 ? bytes : 1);
            if (dst == NULL) {
                st = hl_error_set(err, HL_NOMEM, NULL, "out of memory");
                break;
            }
        }
        st = copy_array(b + L->payload_off + e->offset, &a[k], dst, err);
    }
    free(a);
    for (size_t i = 0; st == HL_OK && i < ne; i++) {
        for (size_t j = 0; j < i && st == HL_OK; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                st = hl_error_set_at(err, HL_FORMAT, t[i].name, t[i].at, "duplicate array '%s'",
                                     t[i].name);
        if (st == HL_OK && !t[i].used && L->minor <= HL_STATEFILE_MINOR)
            st = hl_error_set_at(err, HL_FORMAT, t[i].name, t[i].at, "unknown array '%s'",
                                 t[i].name);
    }
    return st;
}

static hl_status decode_body(const unsigned char *b, const sf_layout *L, hl_assign_state *s,
                             hl_error *err)
{
    sf_shape sh;
    hl_status st = read_header(b, s, &sh, err);
    if (st != HL_OK)
        return st;
    if (L->n_arrays > 4 * SF_MAX_ARRAYS)
        return hl_error_set_at(err, HL_FORMAT, "n_arrays", OFF_N_ARRAYS, "too many arrays: %zu",
                               L->n_arrays);
    sf_entry *t = malloc((L->n_arrays > 0 ? L->n_arrays : 1) * sizeof(sf_entry));
    if (t == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    uint64_t prev_end = 0;
    for (size_t i = 0; i < L->n_arrays && st == HL_OK; i++)
        st = read_entry(b, L, i, &t[i], &prev_end, err);
    if (st == HL_OK && prev_end != L->payload_bytes)
        st = hl_error_set_at(err, HL_FORMAT, "payload_bytes", OFF_PAYLOAD_BYTES,
                             "the payload has %zu bytes after the last array",
                             L->payload_bytes - (size_t)prev_end);
    if (st == HL_OK)
        st = level_sizes(t, L->n_arrays, &sh, err);
    for (int l = 0; st == HL_OK && l < s->n_levels; l++) {
        s->levels[l].n = s->levels[l].cap = sh.ln[l];
        s->levels[l].width = sh.width[l];
    }
    if (st == HL_OK)
        st = load_arrays(b, L, t, L->n_arrays, &sh, s, err);
    free(t);
    if (st != HL_OK)
        return st;
    hl_error local;
    hl_error_clear(&local);
    if (hl_assign_state_check(s, &local) != HL_OK)
        return hl_error_set(err, HL_FORMAT, local.field, "bad clustering state: %s", local.msg);
    return HL_OK;
}

hl_status hl_statefile_decode(const void *buf, size_t len, hl_assign_state **out, hl_error *err)
{
    *out = NULL;
    if (buf == NULL && len > 0)
        return hl_error_set(err, HL_INVAL, NULL, "no state file data");
    const unsigned char *b = buf;
    sf_layout L;
    memset(&L, 0, sizeof(L));
    hl_status st = parse_fixed(b, len, &L, err);
    if (st == HL_OK)
        st = check_payload(b, len, &L, err);
    if (st != HL_OK)
        return st;
    hl_assign_state *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->levels = calloc(HL_ASSIGN_MAX_LEVELS, sizeof(hl_assign_level))) == NULL) {
        free(s);
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    }
    st = decode_body(b, &L, s, err);
    if (st != HL_OK) {
        hl_assign_state_free(s);
        return st;
    }
    *out = s;
    return HL_OK;
}

hl_status hl_statefile_save(const hl_assign_state *s, const char *path, hl_error *err)
{
    void *buf;
    size_t len;
    hl_error local;
    hl_error_clear(&local);
    hl_status st = hl_statefile_encode(s, &buf, &len, NULL, &local);
    if (st != HL_OK)
        return hl__error_wrap(err, &local, path);
    st = hl_file_write(path, buf, len, err);
    free(buf);
    return st;
}

hl_status hl_statefile_load(const char *path, hl_assign_state **out, hl_error *err)
{
    *out = NULL;
    void *buf;
    size_t len;
    hl_status st = hl_file_read(path, &buf, &len, err);
    if (st != HL_OK)
        return st;
    hl_error local;
    hl_error_clear(&local);
    st = hl_statefile_decode(buf, len, out, &local);
    free(buf);
    return st == HL_OK ? HL_OK : hl__error_wrap(err, &local, path);
}

/* ------------------------------------------------------------------ deltas */

/*
 * A delta holds the rows a state gained since a mark: for every array of state_arrays() the
 * rows [from, to) of its first dimension (fstats never grows), in table order, each 4-byte
 * value little-endian. Both sides derive the arrays from the same function with the "from"
 * and the "to" shapes, so names, order and row widths cannot disagree.
 */
#define SD_FIXED 64 /* fixed delta header bytes before the per-level sizes */
#define SD_LEVEL 16 /* per level: u64 from_ln, u64 to_ln */

enum {
    SD_MAJOR = 4,
    SD_MINOR = 6,
    SD_HEADER_BYTES = 8,
    SD_N_LEVELS = 12,
    SD_FROM_N = 16,
    SD_TO_N = 24,
    SD_DIM = 32,
    SD_N_ARRAYS = 36,
    SD_CHECKSUM = 40,
    SD_K = 44,
    SD_TAU = 48,
    SD_FLAGS = 52,
    SD_PAYLOAD_BYTES = 56,
};

static const unsigned char sd_magic[4] = {'H', 'L', 'S', 'D'};

void hl_statefile_mark_of(const hl_assign_state *s, hl_statefile_mark *m)
{
    memset(m, 0, sizeof(*m));
    m->n = s->n;
    m->n_levels = s->n_levels;
    for (int l = 0; l < s->n_levels && l < HL_ASSIGN_MAX_LEVELS; l++)
        m->ln[l] = s->levels[l].n;
}

/* Bytes of one row of array e (4-byte values). */
static size_t row_bytes(const sf_array *e)
{
    return (e->ndim > 1 ? e->dims[1] : 1) * 4;
}

/* The payload bytes of a delta between two shapes of one state (same arrays), or 0 with
 * HL_RANGE on overflow. */
static hl_status delta_payload(const sf_array *from, const sf_array *to, size_t na, size_t *out)
{
    size_t total = 0;
    for (size_t i = 0; i < na; i++) {
        size_t rows = to[i].dims[0] - from[i].dims[0], b;
        if (hl_mul_size(rows, row_bytes(&to[i]), &b) != HL_OK || total > SIZE_MAX - b)
            return HL_RANGE;
        total += b;
    }
    *out = total;
    return HL_OK;
}

hl_status hl_statefile_delta_encode(const hl_assign_state *s, const hl_statefile_mark *from,
                                    void **out, size_t *len, hl_error *err)
{
    *out = NULL;
    *len = 0;
    if (s == NULL || from == NULL || from->n_levels != s->n_levels || from->n > s->n)
        return hl_error_set(err, HL_INVAL, NULL, "the mark does not belong to this state");
    for (int l = 0; l < s->n_levels; l++)
        if (from->ln[l] > s->levels[l].n)
            return hl_error_set(err, HL_INVAL, NULL, "the mark does not belong to this state");
    sf_shape to_sh, from_sh;
    shape_of(s, &to_sh);
    from_sh = to_sh;
    from_sh.n = from->n;
    for (int l = 0; l < s->n_levels; l++)
        from_sh.ln[l] = from->ln[l];
    sf_array *a = malloc(2 * SF_MAX_ARRAYS * sizeof(sf_array));
    if (a == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    hl_assign_state tmp = *s; /* read only through the list */
    size_t na = state_arrays(&to_sh, &tmp, a);
    (void)state_arrays(&from_sh, &tmp, a + SF_MAX_ARRAYS);
    size_t payload = 0;
    if (delta_payload(a + SF_MAX_ARRAYS, a, na, &payload) != HL_OK) {
        free(a);
        return hl_error_set(err, HL_RANGE, NULL, "the delta is too large");
    }
    size_t hb = SD_FIXED + SD_LEVEL * (size_t)s->n_levels, total = hb + 4 + payload + 4;
    unsigned char *b = calloc(total, 1);
    if (b == NULL) {
        free(a);
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory (%zu bytes)", total);
    }
    memcpy(b, sd_magic, 4);
    hl__put_le16(b + SD_MAJOR, HL_STATEFILE_MAJOR);
    hl__put_le16(b + SD_MINOR, HL_STATEFILE_MINOR);
    hl__put_le32(b + SD_HEADER_BYTES, (uint32_t)hb);
    hl__put_le32(b + SD_N_LEVELS, (uint32_t)s->n_levels);
    hl__put_le64(b + SD_FROM_N, (uint64_t)from->n);
    hl__put_le64(b + SD_TO_N, (uint64_t)s->n);
    hl__put_le32(b + SD_DIM, (uint32_t)s->d);
    hl__put_le32(b + SD_N_ARRAYS, (uint32_t)na);
    hl__put_le32(b + SD_CHECKSUM, s->has_model ? s->model_checksum : 0);
    hl__put_le32(b + SD_K, (uint32_t)s->k);
    hl__put_le32(b + SD_TAU, hl__f32_bits(s->tau));
    hl__put_le64(b + SD_PAYLOAD_BYTES, (uint64_t)payload);
    for (int l = 0; l < s->n_levels; l++) {
        hl__put_le64(b + SD_FIXED + SD_LEVEL * (size_t)l, (uint64_t)from->ln[l]);
        hl__put_le64(b + SD_FIXED + SD_LEVEL * (size_t)l + 8, (uint64_t)s->levels[l].n);
    }
    hl__put_le32(b + hb, hl_crc32c(0, b, hb));
    unsigned char *p = b + hb + 4;
    for (size_t i = 0; i < na; i++) {
        size_t r0 = a[SF_MAX_ARRAYS + i].dims[0], rows = a[i].dims[0] - r0, rb = row_bytes(&a[i]);
        if (rows == 0)
            continue;
        sf_array part = a[i];
        part.dims[0] = rows;
        const unsigned char *src = (const unsigned char *)*a[i].slot + r0 * rb;
        put_array(p, &part, src);
        p += rows * rb;
    }
    hl__put_le32(p, hl_crc32c(0, b + hb + 4, payload));
    free(a);
    *out = b;
    *len = total;
    return HL_OK;
}

/* Header checks of a delta against the state it must extend; fills the "to" shape. */
static hl_status delta_header(const unsigned char *b, size_t len, const hl_assign_state *s,
                              sf_shape *to, size_t *hb_out, size_t *payload_out, hl_error *err)
{
    if (len < SD_FIXED + 8)
        return hl_error_set(err, HL_FORMAT, NULL, "delta shorter than its header (%zu bytes)", len);
    if (memcmp(b, sd_magic, 4) != 0)
        return hl_error_set_at(err, HL_FORMAT, "magic", 0, "not a state delta (bad magic)");
    if (hl__get_le16(b + SD_MAJOR) != HL_STATEFILE_MAJOR)
        return hl_error_set_at(err, HL_VERSION, "major", SD_MAJOR, "unsupported delta version %u",
                               (unsigned)hl__get_le16(b + 4));
    uint32_t nl = hl__get_le32(b + SD_N_LEVELS);
    size_t hb = hl__get_le32(b + SD_HEADER_BYTES);
    if (nl > HL_ASSIGN_MAX_LEVELS || hb != SD_FIXED + SD_LEVEL * (size_t)nl || hb + 8 > len)
        return hl_error_set_at(err, HL_FORMAT, "header_bytes", SD_HEADER_BYTES,
                               "delta header size %zu is wrong for %u levels and %zu bytes", hb,
                               (unsigned)nl, len);
    if (hl__get_le32(b + hb) != hl_crc32c(0, b, hb))
        return hl_error_set_at(err, HL_CHECKSUM, "header_crc", hb, "delta header CRC mismatch");
    if (hl__get_le32(b + SD_FLAGS) != 0)
        return hl_error_set_at(err, HL_FORMAT, "flags", SD_FLAGS, "non-zero delta flags");
    if ((int)nl != s->n_levels || hl__get_le32(b + SD_DIM) != (uint32_t)s->d ||
        hl__get_le32(b + SD_K) != (uint32_t)s->k ||
        hl__get_le32(b + SD_TAU) != hl__f32_bits(s->tau) ||
        hl__get_le32(b + SD_CHECKSUM) != (s->has_model ? s->model_checksum : 0))
        return hl_error_set(err, HL_FORMAT, NULL,
                            "the delta belongs to another clustering (levels, dim, k, tau or "
                            "model differ)");
    uint64_t from_n = hl__get_le64(b + SD_FROM_N), to_n = hl__get_le64(b + SD_TO_N);
    if (from_n != s->n)
        return hl_error_set_at(err, HL_FORMAT, "from_n", SD_FROM_N,
                               "the delta extends %llu points, the state has %zu",
                               (unsigned long long)from_n, s->n);
    if (to_n < from_n || to_n > (uint64_t)INT32_MAX)
        return hl_error_set_at(err, HL_FORMAT, "to_n", SD_TO_N, "bad delta point count %llu",
                               (unsigned long long)to_n);
    shape_of(s, to);
    to->n = (size_t)to_n;
    for (int l = 0; l < s->n_levels; l++) {
        const unsigned char *q = b + SD_FIXED + SD_LEVEL * (size_t)l;
        uint64_t f = hl__get_le64(q), t = hl__get_le64(q + 8);
        if (f != s->levels[l].n || t < f || t > to_n)
            return hl_error_set_at(err, HL_FORMAT, "levels", (size_t)(q - b),
                                   "delta level %d sizes %llu..%llu do not extend %zu nodes", l,
                                   (unsigned long long)f, (unsigned long long)t, s->levels[l].n);
        to->ln[l] = (size_t)t;
    }
    *hb_out = hb;
    *payload_out = (size_t)hl__get_le64(b + SD_PAYLOAD_BYTES);
    return HL_OK;
}

/* Appends one delta to s. On failure the state's logical sizes are unchanged (arrays may have
 * grown). */
static hl_status delta_apply(hl_assign_state *s, const unsigned char *b, size_t len, hl_error *err)
{
    sf_shape to, from;
    size_t hb = 0, payload = 0, want = 0;
    hl_status st = delta_header(b, len, s, &to, &hb, &payload, err);
    if (st != HL_OK)
        return st;
    shape_of(s, &from);
    sf_array *a = malloc(2 * SF_MAX_ARRAYS * sizeof(sf_array));
    if (a == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    size_t na = state_arrays(&to, s, a);
    (void)state_arrays(&from, s, a + SF_MAX_ARRAYS);
    if (hl__get_le32(b + SD_N_ARRAYS) != (uint32_t)na)
        st = hl_error_set_at(err, HL_FORMAT, "n_arrays", SD_N_ARRAYS,
                             "the delta has %u arrays, the state %zu",
                             (unsigned)hl__get_le32(b + SD_N_ARRAYS), na);
    else if (delta_payload(a + SF_MAX_ARRAYS, a, na, &want) != HL_OK || want != payload ||
             payload > len - hb - 8 || len - hb - 8 != payload)
        st = hl_error_set_at(err, HL_FORMAT, "payload_bytes", SD_PAYLOAD_BYTES,
                             "the delta's payload is %zu bytes, its sizes need %zu, the delta "
                             "has room for %zu",
                             payload, want, len - hb - 8);
    else if (hl__get_le32(b + hb + 4 + payload) != hl_crc32c(0, b + hb + 4, payload))
        st = hl_error_set(err, HL_CHECKSUM, "payload_crc", "delta payload CRC mismatch");
    /* Grow every array first (the logical sizes stay), then copy the new rows. */
    for (size_t i = 0; i < na && st == HL_OK; i++) {
        if (a[i].fixed != NULL || a[i].dims[0] == a[SF_MAX_ARRAYS + i].dims[0])
            continue;
        size_t bytes;
        void *q = NULL;
        if (hl_mul_size(a[i].dims[0], row_bytes(&a[i]), &bytes) == HL_OK)
            q = realloc(*a[i].slot, bytes > 0 ? bytes : 1);
        if (q == NULL)
            st = hl_error_set(err, HL_NOMEM, NULL, "out of memory growing the state");
        else
            *a[i].slot = q;
    }
    const unsigned char *p = b + hb + 4;
    for (size_t i = 0; i < na && st == HL_OK; i++) {
        size_t r0 = a[SF_MAX_ARRAYS + i].dims[0], rows = a[i].dims[0] - r0, rb = row_bytes(&a[i]);
        if (rows == 0)
            continue;
        sf_array part = a[i];
        part.dims[0] = rows;
        st = copy_array(p, &part, (unsigned char *)*a[i].slot + r0 * rb, err);
        p += rows * rb;
    }
    free(a);
    if (st != HL_OK)
        return st;
    s->n = s->cap = to.n;
    for (int l = 0; l < s->n_levels; l++)
        s->levels[l].n = s->levels[l].cap = to.ln[l];
    return HL_OK;
}

hl_status hl_statefile_decode_chain(const void *base, size_t base_len, const void *const *deltas,
                                    const size_t *delta_lens, size_t n_deltas,
                                    hl_assign_state **out, hl_error *err)
{
    *out = NULL;
    hl_assign_state *s = NULL;
    hl_status st = hl_statefile_decode(base, base_len, &s, err);
    if (st != HL_OK)
        return st;
    for (size_t i = 0; i < n_deltas && st == HL_OK; i++) {
        hl_error local;
        hl_error_clear(&local);
        if (deltas[i] == NULL) {
            st = hl_error_set(err, HL_INVAL, NULL, "delta %zu of %zu: no data", i + 1, n_deltas);
            break;
        }
        st = delta_apply(s, deltas[i], delta_lens[i], &local);
        if (st != HL_OK)
            hl_error_set(err, st, local.field[0] != '\0' ? local.field : NULL,
                         "delta %zu of %zu: %s", i + 1, n_deltas, local.msg);
    }
    if (st == HL_OK && n_deltas > 0) {
        hl_error local;
        hl_error_clear(&local);
        if (hl_assign_state_check(s, &local) != HL_OK)
            st = hl_error_set(err, HL_FORMAT, local.field[0] != '\0' ? local.field : NULL,
                              "bad clustering state after %zu deltas: %s", n_deltas, local.msg);
    }
    if (st != HL_OK) {
        hl_assign_state_free(s);
        return st;
    }
    *out = s;
    return HL_OK;
}
