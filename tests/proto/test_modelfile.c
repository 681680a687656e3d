/*
 * test_modelfile.c - the .hlm model file: round trips, and every refusal listed in
 * hl/modelfile.h. Files with a particular defect are made by build(), a second writer of the
 * documented layout (it must agree byte for byte with hl_modelfile_encode), followed by a
 * field edit and fix_crcs(), so each test reaches the check it is about.
 */
#include "hl/crc32c.h"
#include "hl/file.h"
#include "hl/modelfile.h"

#include "modelfile_crc.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)tu_le32(p) | (uint64_t)tu_le32(p + 4) << 32;
}

static void put64(unsigned char *p, uint64_t v)
{
    tu_put_le32(p, (uint32_t)v);
    tu_put_le32(p + 4, (uint32_t)(v >> 32));
}

static hl_model *make_model(hl_model_kind kind, int n_conv, int edge, uint64_t seed)
{
    hl_model_config c;
    hl_model_config_default(&c, kind, 3);
    c.hidden = 8;
    c.n_conv = n_conv;
    if (kind == HL_MODEL_UNIVERSAL) {
        c.in_features = 5;
        c.edge_features = edge;
    }
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&c, NULL, &m), HL_OK);
    hl_model_init_params(m, seed);
    snprintf(m->name, sizeof(m->name), "test-%s-%d", hl_model_kind_name(kind), n_conv);
    snprintf(m->trained_on, sizeof(m->trained_on), "seed %u, caf\xc3\xa9", (unsigned)seed);
    return m;
}

static void assert_same_model(const hl_model *a, const hl_model *b)
{
    ck_assert_mem_eq(&a->cfg, &b->cfg, sizeof(a->cfg));
    ck_assert_uint_eq(a->n_params, b->n_params);
    ck_assert_mem_eq(a->params, b->params, a->n_params * sizeof(float));
    ck_assert_str_eq(a->name, b->name);
    ck_assert_str_eq(a->trained_on, b->trained_on);
}

/* ------------------------------------------------------------------ a second writer */

typedef struct bopts {
    unsigned major, minor;
    size_t extra_header;    /* unknown fixed-header bytes of a newer minor */
    const char *meta;       /* NULL: the model's name and trained_on */
    size_t meta_len;        /* used when meta is set */
    int drop;               /* tensor left out, or -1 */
    int dup;                /* tensor listed twice, or -1 */
    const char *extra_name; /* an extra tensor of 4 floats, or NULL */
} bopts;

static const bopts defaults = {1, 0, 0, NULL, 0, -1, -1, NULL};

typedef struct mfile {
    unsigned char *b;
    size_t len, table_off, crc_off, payload_off, n;
} mfile;

static void build(const hl_model *m, const bopts *o, mfile *f)
{
    char meta[256];
    size_t meta_len;
    if (o->meta != NULL) {
        meta_len = o->meta_len;
        memcpy(meta, o->meta, meta_len);
    } else {
        meta_len = (size_t)snprintf(meta, sizeof(meta), "name=%s\ntrained_on=%s\n", m->name,
                                    m->trained_on);
    }
    const hl_tensor_view *list[HL_MAX_TENSORS + 2];
    size_t n = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        if ((int)i != o->drop)
            list[n++] = &m->tensors[i];
        if ((int)i == o->dup)
            list[n++] = &m->tensors[i];
    }
    static float extra_data[4] = {1, 2, 3, 4};
    hl_tensor_view extra = {o->extra_name, 1, {4, 0}, extra_data, 4};
    if (o->extra_name != NULL)
        list[n++] = &extra;
    size_t hb = 76 + o->extra_header, off[HL_MAX_TENSORS + 2], cur = 0;
    for (size_t i = 0; i < n; i++) {
        off[i] = (cur + 63) / 64 * 64;
        cur = off[i] + 4 * list[i]->count;
    }
    f->n = n;
    f->table_off = hb + meta_len;
    f->crc_off = f->table_off + 128 * n;
    f->payload_off = (f->crc_off + 4 + 63) / 64 * 64;
    f->len = f->payload_off + cur + 4;
    unsigned char *b = f->b = calloc(f->len, 1);
    const hl_model_config *c = &m->cfg;
    memcpy(b, "HLMD", 4);
    b[4] = (unsigned char)o->major;
    b[6] = (unsigned char)o->minor;
    tu_put_le32(b + 8, (uint32_t)hb);
    put64(b + 16, cur);
    tu_put_le32(b + 24, (uint32_t)n);
    const int32_t cf[8] = {c->kind,   c->dim,    c->in_features,      c->edge_features,
                           c->hidden, c->n_conv, c->use_cluster_feat, c->k};
    for (int i = 0; i < 8; i++)
        tu_put_le32(b + 28 + 4 * i, (uint32_t)cf[i]);
    memcpy(b + 60, &c->tau, 4); /* little-endian host, as every test machine here */
    tu_put_le32(b + 64, (uint32_t)meta_len);
    memcpy(b + hb, meta, meta_len);
    for (size_t i = 0; i < n; i++) {
        unsigned char *e = b + f->table_off + 128 * i;
        memcpy(e, list[i]->name, strlen(list[i]->name));
        tu_put_le32(e + 68, (uint32_t)list[i]->ndim);
        for (int d = 0; d < list[i]->ndim; d++)
            put64(e + 72 + 8 * d, list[i]->dims[d]);
        put64(e + 104, off[i]);
        put64(e + 112, 4 * list[i]->count);
        memcpy(b + f->payload_off + off[i], list[i]->data, 4 * list[i]->count);
    }
    tu_put_le32(b + f->crc_off, hl_crc32c(0, b, f->crc_off));
    tu_put_le32(b + f->len - 4, hl_crc32c(0, b + f->payload_off, cur));
}

/* Recomputes both CRCs where the (edited) header puts them; they must be in bounds. */
static void fix_crcs(unsigned char *b, size_t len)
{
    ck_assert_int_eq(tu_modelfile_fix_crcs(b, len), 1);
}

/* Decodes f and expects failure with `code` and `phrase` in the message. */
static void expect_error(const mfile *f, hl_status code, const char *phrase)
{
    hl_model *m = (hl_model *)1;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_modelfile_decode(f->b, f->len, &m, NULL, &e);
    ck_assert_msg(st == code, "status %s, want %s (%s)", hl_status_name(st), hl_status_name(code),
                  e.msg);
    ck_assert_int_eq(e.code, code);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(e.msg, phrase) != NULL, "\"%s\" lacks \"%s\"", e.msg, phrase);
    ck_assert_ptr_null(strchr(e.msg, '\n'));
}

/* ------------------------------------------------------------------ round trips */

START_TEST(test_roundtrip_every_shape)
{
    const struct {
        hl_model_kind kind;
        int edge;
    } kinds[3] = {{HL_MODEL_LANDER, 0}, {HL_MODEL_UNIVERSAL, 0}, {HL_MODEL_UNIVERSAL, 3}};
    for (int k = 0; k < 3; k++) {
        for (int nc = 1; nc <= HL_MAX_CONV; nc++) {
            hl_model *m = make_model(kinds[k].kind, nc, kinds[k].edge, (uint64_t)(10 * k + nc));
            void *buf;
            size_t len;
            ck_assert_int_eq(hl_modelfile_encode(m, &buf, &len), HL_OK);
            /* The independent writer produces the same bytes. */
            mfile f;
            build(m, &defaults, &f);
            ck_assert_uint_eq(f.len, len);
            ck_assert_mem_eq(f.b, buf, len);
            ck_assert_uint_eq(f.payload_off % 64, 0);
            for (size_t i = 0; i < f.n; i++)
                ck_assert_uint_eq(get64(f.b + f.table_off + 128 * i + 104) % 64, 0);
            hl_model *back;
            uint32_t crc = 0;
            hl_error e;
            hl_error_clear(&e);
            ck_assert_int_eq(hl_modelfile_decode(buf, len, &back, &crc, &e), HL_OK);
            ck_assert_uint_eq(crc, hl_crc32c(0, f.b + f.payload_off, len - 4 - f.payload_off));
            assert_same_model(m, back);
            hl_model_free(back);
            free(f.b);
            free(buf);
            hl_model_free(m);
        }
    }
}
END_TEST

START_TEST(test_save_load)
{
    char *dir = tu_tmpdir();
    char *p = tu_path(dir, "m.hlm");
    hl_model *m = make_model(HL_MODEL_LANDER, 2, 0, 5), *back;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_modelfile_save(m, p, &e), HL_OK);
    uint32_t crc = 0;
    ck_assert_int_eq(hl_modelfile_load(p, &back, &crc, &e), HL_OK);
    ck_assert_uint_ne(crc, 0);
    assert_same_model(m, back);
    hl_model_free(back);
    /* A damaged file: the error names it. */
    void *buf;
    size_t len;
    ck_assert_int_eq(hl_file_read(p, &buf, &len, NULL), HL_OK);
    ((unsigned char *)buf)[len - 5] ^= 0x20;
    ck_assert_int_eq(hl_file_write(p, buf, len, NULL), HL_OK);
    free(buf);
    back = (hl_model *)1;
    ck_assert_int_eq(hl_modelfile_load(p, &back, NULL, &e), HL_CHECKSUM);
    ck_assert_ptr_null(back);
    ck_assert_ptr_nonnull(strstr(e.msg, p));
    ck_assert_ptr_nonnull(strstr(e.msg, "payload checksum mismatch"));
    char *missing = tu_path(dir, "none.hlm"), *nodir = tu_path(dir, "x/y.hlm");
    hl_error_clear(&e);
    ck_assert_int_eq(hl_modelfile_load(missing, &back, NULL, &e), HL_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, missing));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_modelfile_save(m, nodir, &e), HL_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, nodir));
    m->params[3] = NAN;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_modelfile_save(m, p, &e), HL_NUMERIC);
    ck_assert_ptr_nonnull(strstr(e.msg, "cannot encode the model"));
    free(nodir);
    free(missing);
    hl_model_free(m);
    free(p);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_encode_refusals)
{
    hl_model *m = make_model(HL_MODEL_UNIVERSAL, 1, 2, 1);
    void *buf = (void *)1;
    size_t len = 1;
    ck_assert_int_eq(hl_modelfile_encode(NULL, &buf, &len), HL_INVAL);
    ck_assert_ptr_null(buf);
    ck_assert_uint_eq(len, 0);
    snprintf(m->name, sizeof(m->name), "two\nlines");
    ck_assert_int_eq(hl_modelfile_encode(m, &buf, &len), HL_INVAL);
    snprintf(m->name, sizeof(m->name), "bad \xff utf-8");
    ck_assert_int_eq(hl_modelfile_encode(m, &buf, &len), HL_INVAL);
    memset(m->trained_on, 'x', sizeof(m->trained_on)); /* no terminating NUL */
    snprintf(m->name, sizeof(m->name), "ok");
    ck_assert_int_eq(hl_modelfile_encode(m, &buf, &len), HL_INVAL);
    m->trained_on[0] = '\0';
    ck_assert_int_eq(hl_modelfile_encode(m, &buf, &len), HL_OK);
    free(buf);
    m->params[m->n_params - 1] = -INFINITY;
    ck_assert_int_eq(hl_modelfile_encode(m, &buf, &len), HL_NUMERIC);
    m->params[m->n_params - 1] = 0;
    m->cfg.hidden = 3;
    ck_assert_int_eq(hl_modelfile_encode(m, &buf, &len), HL_INVAL);
    hl_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ damage */

START_TEST(test_every_byte_flip_is_caught)
{
    hl_model *m = make_model(HL_MODEL_UNIVERSAL, 2, 1, 3);
    mfile f;
    build(m, &defaults, &f);
    for (size_t i = 0; i < f.len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            f.b[i] ^= (unsigned char)(1u << bit);
            hl_model *out = NULL;
            hl_error e;
            hl_error_clear(&e);
            hl_status st = hl_modelfile_decode(f.b, f.len, &out, NULL, &e);
            f.b[i] ^= (unsigned char)(1u << bit);
            ck_assert_msg(st != HL_OK, "flip of bit %d at byte %zu went unnoticed", bit, i);
            ck_assert_ptr_null(out);
            ck_assert_int_eq(e.code, st);
            hl_status want = HL_CHECKSUM; /* header fields, meta, table, both CRCs, payload */
            if (i < 4)
                want = HL_FORMAT; /* magic */
            else if (i < 6)
                want = HL_VERSION;
            else if ((i >= 8 && i < 12) || (i >= 24 && i < 28) || (i >= 64 && i < 68))
                want = st; /* sizes: a truncation error or a checksum error, both fine */
            else if (i >= f.crc_off + 4 && i < f.payload_off)
                want = HL_FORMAT; /* padding */
            ck_assert_msg(st == want, "byte %zu: %s (%s)", i, hl_status_name(st), e.msg);
        }
    }
    free(f.b);
    hl_model_free(m);
}
END_TEST

START_TEST(test_every_truncation_is_caught)
{
    hl_model *m = make_model(HL_MODEL_LANDER, 1, 0, 9);
    mfile f;
    build(m, &defaults, &f);
    for (size_t n = 0; n < f.len; n++) {
        /* An exact-size copy, so a sanitizer sees any read past the end. */
        unsigned char *cut = malloc(n > 0 ? n : 1);
        memcpy(cut, f.b, n);
        hl_model *out = NULL;
        hl_error e;
        hl_error_clear(&e);
        ck_assert_int_eq(hl_modelfile_decode(cut, n, &out, NULL, &e), HL_FORMAT);
        ck_assert_ptr_null(out);
        ck_assert_msg(strstr(e.msg, "truncated") != NULL || strstr(e.msg, "too short") != NULL,
                      "%zu bytes: %s", n, e.msg);
        free(cut);
    }
    hl_model *out = (hl_model *)1;
    ck_assert_int_eq(hl_modelfile_decode(NULL, 0, &out, NULL, NULL), HL_FORMAT);
    ck_assert_ptr_null(out);
    unsigned char *longer = calloc(f.len + 3, 1);
    memcpy(longer, f.b, f.len);
    mfile g = f;
    g.b = longer;
    g.len = f.len + 3;
    expect_error(&g, HL_FORMAT, "trailing bytes: 3 after the payload checksum");
    free(longer);
    free(f.b);
    hl_model_free(m);
}
END_TEST

START_TEST(test_versions)
{
    hl_model *m = make_model(HL_MODEL_UNIVERSAL, 1, 2, 4);
    bopts o = defaults;
    mfile f;
    for (unsigned major = 0; major < 4; major += 2) {
        o.major = major;
        build(m, &o, &f);
        char want[64];
        snprintf(want, sizeof(want), "unsupported model file version %u.0 (this build reads 1.x)",
                 major);
        expect_error(&f, HL_VERSION, want);
        free(f.b);
    }
    /* A newer minor: unknown fixed-header fields and an unknown tensor are skipped. */
    o = defaults;
    o.minor = 2;
    o.extra_header = 8;
    o.extra_name = "future.weight";
    build(m, &o, &f);
    tu_put_le32(f.b + 72, 7); /* reserved fields may be used by a newer minor */
    fix_crcs(f.b, f.len);
    hl_model *back;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_modelfile_decode(f.b, f.len, &back, NULL, &e) == HL_OK, "%s", e.msg);
    assert_same_model(m, back);
    hl_model_free(back);
    free(f.b);
    /* The same in our own minor is an error. */
    o.minor = 0;
    o.extra_name = NULL;
    build(m, &o, &f);
    expect_error(&f, HL_FORMAT, "bad header_bytes 84 for version 1.0");
    free(f.b);
    o = defaults;
    o.extra_name = "future.weight";
    build(m, &o, &f);
    expect_error(&f, HL_FORMAT, "unknown tensor 'future.weight'");
    free(f.b);
    hl_model_free(m);
}
END_TEST

START_TEST(test_tensor_set_errors)
{
    hl_model *m = make_model(HL_MODEL_LANDER, 2, 0, 6);
    bopts o = defaults;
    mfile f;
    o.drop = (int)m->n_tensors - 1;
    build(m, &o, &f);
    expect_error(&f, HL_FORMAT, "missing tensor 'classifier.3.bias'");
    free(f.b);
    o = defaults;
    o.drop = 0;
    build(m, &o, &f);
    expect_error(&f, HL_FORMAT, "missing tensor 'conv.0.weight'");
    free(f.b);
    o = defaults;
    o.dup = 2;
    build(m, &o, &f);
    expect_error(&f, HL_FORMAT, "duplicate tensor 'conv.1.weight'");
    free(f.b);
    hl_model_free(m);
}
END_TEST

/* Builds a default file, lets edit() change it, fixes the CRCs, expects the error. */
static void edited(const hl_model *m, void (*edit)(mfile *f, void *ud), void *ud, hl_status code,
                   const char *phrase)
{
    mfile f;
    build(m, &defaults, &f);
    edit(&f, ud);
    fix_crcs(f.b, f.len);
    expect_error(&f, code, phrase);
    free(f.b);
}

typedef struct poke {
    size_t entry; /* table entry, or SIZE_MAX for the fixed header */
    size_t off;
    int width; /* 1, 4 or 8 */
    uint64_t value;
} poke;

static void apply_poke(mfile *f, void *ud)
{
    const poke *p = ud;
    unsigned char *at = f->b + p->off + (p->entry == SIZE_MAX ? 0 : f->table_off + 128 * p->entry);
    if (p->width == 1)
        *at = (unsigned char)p->value;
    else if (p->width == 4)
        tu_put_le32(at, (uint32_t)p->value);
    else
        put64(at, p->value);
}

START_TEST(test_table_entry_errors)
{
    hl_model *m = make_model(HL_MODEL_LANDER, 1, 0, 7);
    /* Entry 0 is conv.0.weight, 8 x 12; entry 1 is conv.0.bias, 8. */
    const struct {
        poke p;
        hl_status code;
        const char *phrase;
    } t[] = {
        {{0, 64, 4, 1}, HL_FORMAT, "tensor 'conv.0.weight': unsupported dtype 1 (0 = f32)"},
        {{0, 68, 4, 0}, HL_FORMAT, "ndim 0 is not in 1..4"},
        {{0, 68, 4, 5}, HL_FORMAT, "ndim 5 is not in 1..4"},
        {{0, 96, 8, 1}, HL_FORMAT, "unused dimension 3 is not zero"},
        {{0, 72, 8, 9}, HL_FORMAT, "has shape [9, 12], the configuration needs [8, 12]"},
        {{1, 68, 4, 2}, HL_FORMAT, "tensor 'conv.0.bias' has shape [8, 0]"},
        {{0, 104, 8, 4}, HL_FORMAT, "not 64-byte aligned"},
        {{0, 104, 8, 1ull << 20}, HL_FORMAT, "fall outside"},
        {{0, 104, 8, UINT64_MAX - 63}, HL_FORMAT, "fall outside"},
        {{0, 112, 8, UINT64_MAX}, HL_FORMAT, "fall outside"},
        {{0, 112, 8, 4}, HL_FORMAT, "nbytes 4 does not match its shape (96 floats)"},
        {{0, 120, 1, 1}, HL_FORMAT, "padding is not zero"},
        {{0, 0, 1, 0}, HL_FORMAT, "tensor 0: empty name"},
        {{1, 3, 1, '\t'}, HL_FORMAT, "tensor 1: bad byte 0x09 in the name field"},
        {{1, 40, 1, 'x'}, HL_FORMAT, "tensor 1: bad byte 0x78"},
        {{2, 0, 1, 'q'}, HL_FORMAT, "unknown tensor 'qrc_mlp.weight'"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        poke p = t[i].p;
        edited(m, apply_poke, &p, t[i].code, t[i].phrase);
    }
    hl_model_free(m);
}
END_TEST

static void fill_name(mfile *f, void *ud)
{
    (void)ud;
    memset(f->b + f->table_off + 128, 'n', 64);
}

static void nan_in_payload(mfile *f, void *ud)
{
    (void)ud; /* the third float of the first tensor */
    tu_put_le32(f->b + f->payload_off + 8, 0x7FC00000u);
}

static void padding_byte(mfile *f, void *ud)
{
    (void)ud;
    ck_assert_uint_lt(f->crc_off + 4, f->payload_off); /* the test model leaves padding */
    f->b[f->payload_off - 1] = 1;
}

START_TEST(test_misc_entry_and_payload_errors)
{
    hl_model *m = make_model(HL_MODEL_LANDER, 1, 0, 8);
    edited(m, fill_name, NULL, HL_FORMAT, "tensor 1: name is not NUL-terminated");
    edited(m, nan_in_payload, NULL, HL_NUMERIC,
           "tensor 'conv.0.weight': non-finite value (NaN) at index 2");
    edited(m, padding_byte, NULL, HL_FORMAT, "non-zero padding before the payload");
    hl_model_free(m);
}
END_TEST

START_TEST(test_fixed_header_errors)
{
    hl_model *m = make_model(HL_MODEL_LANDER, 1, 0, 9);
    const size_t H = SIZE_MAX;
    const struct {
        poke p;
        hl_status code;
        const char *phrase;
    } t[] = {
        {{H, 12, 4, 4}, HL_FORMAT, "unknown flags 0x4"},
        {{H, 68, 4, 1}, HL_FORMAT, "reserved header fields are not zero"},
        {{H, 8, 4, 75}, HL_FORMAT, "bad header_bytes 75"},
        {{H, 44, 4, 7}, HL_FORMAT, "bad model configuration: hidden must be even"},
        {{H, 28, 4, 9}, HL_FORMAT, "bad model configuration: unknown model kind 9"},
        {{H, 44, 4, 0x80000000u}, HL_FORMAT, "hidden = 2147483648 is out of range"},
        {{H, 48, 4, 5}, HL_FORMAT, "n_conv must be in [1, 4]"},
        {{H, 36, 4, 5}, HL_FORMAT, "in_features 5 is less than the 6 coordinates of dim 3"},
        {{H, 60, 4, 0x7FC00000u}, HL_FORMAT, "tau must be in [0, 1]"},
        {{H, 44, 4, 8192}, HL_FORMAT, "cannot hold the configured model"},
        {{H, 16, 8, 1ull << 40}, HL_FORMAT, "truncated"},
        {{H, 16, 8, UINT64_MAX}, HL_FORMAT, "truncated"},
        {{H, 24, 4, 0xFFFFFFFFu}, HL_FORMAT, "truncated"},
        {{H, 64, 4, 0xFFFFFFF0u}, HL_FORMAT, "truncated"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        poke p = t[i].p;
        mfile f;
        build(m, &defaults, &f);
        apply_poke(&f, &p);
        /* Where the edit moved the CRC out of the file there is nothing to fix. */
        (void)tu_modelfile_fix_crcs(f.b, f.len);
        expect_error(&f, t[i].code, t[i].phrase);
        free(f.b);
    }
    /* A shorter payload_bytes leaves bytes after the payload CRC. */
    mfile f;
    build(m, &defaults, &f);
    put64(f.b + 16, get64(f.b + 16) - 4);
    fix_crcs(f.b, f.len);
    expect_error(&f, HL_FORMAT, "trailing bytes: 4");
    free(f.b);
    hl_model_free(m);
}
END_TEST

/* Builds a file whose meta is `meta` and returns the decode status (model in *out). */
static hl_status with_meta(const hl_model *m, const char *meta, size_t n, hl_model **out,
                           hl_error *e)
{
    bopts o = defaults;
    o.meta = meta;
    o.meta_len = n;
    mfile f;
    build(m, &o, &f);
    hl_error_clear(e);
    hl_status st = hl_modelfile_decode(f.b, f.len, out, NULL, e);
    free(f.b);
    return st;
}

START_TEST(test_meta)
{
    hl_model *m = make_model(HL_MODEL_UNIVERSAL, 1, 0, 2), *out;
    hl_error e;
    const char ok[] = "trained_on=a=b\n\nwriter=x\nname=n1";
    ck_assert_int_eq(with_meta(m, ok, sizeof(ok) - 1, &out, &e), HL_OK);
    ck_assert_str_eq(out->name, "n1");        /* last line without '\n' */
    ck_assert_str_eq(out->trained_on, "a=b"); /* split at the first '=' */
    hl_model_free(out);
    ck_assert_int_eq(with_meta(m, "", 0, &out, &e), HL_OK);
    ck_assert_str_eq(out->name, "");
    hl_model_free(out);
    char longname[100], longtrained[200];
    snprintf(longname, sizeof(longname), "name=%064d\n", 0);
    snprintf(longtrained, sizeof(longtrained), "trained_on=%0127d\n", 0);
    ck_assert_int_eq(with_meta(m, longtrained, strlen(longtrained), &out, &e), HL_OK);
    hl_model_free(out);
    snprintf(longtrained, sizeof(longtrained), "trained_on=%0128d\n", 0);
    const struct {
        const char *meta;
        size_t n;
        const char *phrase;
    } bad[] = {
        {"name=a\nname=b\n", 14, "duplicate meta key 'name'"},
        {"name=a\ngarbage\n", 15, "meta line 2 is not key=value"},
        {"=x\n", 3, "meta line 1 is not key=value"},
        {longname, strlen(longname), "meta name is 64 bytes, longer than 63"},
        {longtrained, strlen(longtrained), "meta trained_on is 128 bytes, longer than 127"},
        {"name=\xff\n", 7, "meta is not valid UTF-8 at byte 81"},
        {"name=\xc0\x80\n", 8, "not valid UTF-8"},          /* overlong NUL */
        {"name=\xed\xa0\x80\n", 9, "not valid UTF-8"},      /* surrogate */
        {"name=\xf4\x90\x80\x80\n", 10, "not valid UTF-8"}, /* above U+10FFFF */
        {"name=\xe5\xad\n", 8, "not valid UTF-8"},          /* cut sequence */
        {"name=a\0b\n", 9, "meta contains a NUL byte"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out = (hl_model *)1;
        ck_assert_int_eq(with_meta(m, bad[i].meta, bad[i].n, &out, &e), HL_FORMAT);
        ck_assert_ptr_null(out);
        ck_assert_msg(strstr(e.msg, bad[i].phrase) != NULL, "\"%s\" lacks \"%s\"", e.msg,
                      bad[i].phrase);
    }
    hl_model_free(m);
}
END_TEST

Suite *modelfile_suite(void);
Suite *modelfile_suite(void)
{
    Suite *s = suite_create("modelfile");
    TCase *tc = tcase_create("modelfile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_roundtrip_every_shape);
    tcase_add_test(tc, test_save_load);
    tcase_add_test(tc, test_encode_refusals);
    tcase_add_test(tc, test_every_byte_flip_is_caught);
    tcase_add_test(tc, test_every_truncation_is_caught);
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_tensor_set_errors);
    tcase_add_test(tc, test_table_entry_errors);
    tcase_add_test(tc, test_misc_entry_and_payload_errors);
    tcase_add_test(tc, test_fixed_header_errors);
    tcase_add_test(tc, test_meta);
    suite_add_tcase(s, tc);
    return s;
}
