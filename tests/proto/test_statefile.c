/* test_statefile.c - the clustering state file: round trips, every bit flip and truncation,
 * and each structural and semantic corruption behind valid checksums. */
#include "hl/assign.h"
#include "hl/features.h"
#include "hl/file.h"
#include "hl/statefile.h"

#include "statefile_crc.h"
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D 6

static hl_model *lander(void)
{
    hl_model_config cfg;
    hl_model_config_default(&cfg, HL_MODEL_LANDER, D);
    cfg.hidden = 8;
    cfg.n_conv = 3;
    cfg.in_features = 2 * D + HL_FEAT_NODE;
    cfg.tau = 0.3f;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&cfg, NULL, &m), HL_OK);
    hl_model_init_params(m, 11);
    snprintf(m->name, sizeof(m->name), "tiny-lander");
    return m;
}

/* A state of n blob points, made with `m` (or model-free), after one assign of `extra`
 * points with the given policy. */
static hl_assign_state *state(size_t n, size_t extra, const hl_model *m, hl_new_clusters pol)
{
    int32_t *y;
    float *x = tu_blobs(n + extra, D, 40, 0.2f, 3, &y);
    for (size_t i = n + extra / 2; i < n + extra; i++) /* far points: new clusters */
        for (size_t c = 0; c < D; c++)
            x[i * D + c] = c == i % D ? -5.0f : 0.1f * (float)(i % 3);
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = m != NULL ? m->cfg.tau : 0.8f;
    hl_clustering *c;
    hl_assign_state *s;
    ck_assert_int_eq(hl_cluster_run_state(x, n, D, m, 0xfeedu, &p, &c, &s, NULL), HL_OK);
    if (extra > 0) {
        hl_assign_params ap;
        hl_assign_params_default(&ap);
        ap.new_clusters = pol;
        ap.model_checksum = 0xfeedu;
        hl_assignment *a;
        ck_assert_int_eq(hl_assign_run(s, m, x + n * D, extra, D, &ap, &a, NULL), HL_OK);
        ck_assert_int_eq(hl_assign_apply(s, a, NULL), HL_OK);
        hl_assignment_free(a);
    }
    hl_clustering_free(c);
    free(x);
    free(y);
    return s;
}

static void *encode(const hl_assign_state *s, size_t *len)
{
    void *b;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_statefile_encode(s, &b, len, NULL, &e) == HL_OK, "%s", e.msg);
    return b;
}

static void check_same(const hl_assign_state *a, const hl_assign_state *b)
{
    ck_assert_uint_eq(a->n, b->n);
    ck_assert_uint_eq(a->d, b->d);
    ck_assert_int_eq(a->n_levels, b->n_levels);
    ck_assert_int_eq(a->k, b->k);
    ck_assert(a->tau == b->tau);
    ck_assert_int_eq(a->has_model, b->has_model);
    ck_assert_uint_eq(a->model_checksum, b->model_checksum);
    ck_assert_str_eq(a->model_name, b->model_name);
    ck_assert_mem_eq(&a->model_cfg, &b->model_cfg, sizeof(a->model_cfg));
    ck_assert_mem_eq(a->x, b->x, a->n * a->d * sizeof(float));
    ck_assert_mem_eq(a->labels, b->labels, a->n * sizeof(int32_t));
    hl_assign_widths w;
    hl_assign_widths_of(a->has_model, &a->model_cfg, &w);
    for (int l = 0; l < a->n_levels; l++) {
        const hl_assign_level *p = &a->levels[l], *q = &b->levels[l];
        size_t n = p->n, wd = (size_t)p->width;
        ck_assert_uint_eq(n, q->n);
        ck_assert_int_eq(p->width, q->width);
        ck_assert_mem_eq(p->rep, q->rep, n * 4);
        ck_assert_mem_eq(p->cnt, q->cnt, n * 4);
        ck_assert_mem_eq(p->nbr, q->nbr, n * wd * 4);
        ck_assert_mem_eq(p->sim, q->sim, n * wd * 4);
        ck_assert_mem_eq(p->deg, q->deg, n * 4);
        ck_assert_mem_eq(p->dens, q->dens, n * 4);
        ck_assert_mem_eq(p->labels, q->labels, a->n * 4);
        ck_assert_mem_eq(p->fstats, q->fstats, sizeof(p->fstats));
        ck_assert((p->node == NULL) == (q->node == NULL));
        if (p->node != NULL)
            ck_assert_mem_eq(p->node, q->node, n * w.node * 4);
        for (int h = 0; h < HL_MAX_CONV - 1; h++) {
            ck_assert((p->hidden[h] == NULL) == (q->hidden[h] == NULL));
            if (p->hidden[h] != NULL)
                ck_assert_mem_eq(p->hidden[h], q->hidden[h], n * w.hidden[h] * 4);
        }
        ck_assert((p->S == NULL) == (q->S == NULL));
        if (p->S != NULL)
            ck_assert_mem_eq(p->S, q->S, n * w.S * 4);
        ck_assert((p->cmean == NULL) == (q->cmean == NULL));
        if (p->cmean != NULL)
            ck_assert_mem_eq(p->cmean, q->cmean, n * a->d * 4);
    }
}

static void roundtrip(const hl_assign_state *s)
{
    size_t len, len2;
    void *b = encode(s, &len);
    hl_assign_state *t;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_statefile_decode(b, len, &t, &e) == HL_OK, "%s", e.msg);
    check_same(s, t);
    void *b2 = encode(t, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert_mem_eq(b, b2, len);
    /* Misaligned input decodes alike. */
    unsigned char *mis = malloc(len + 1);
    memcpy(mis + 1, b, len);
    hl_assign_state *u;
    ck_assert_int_eq(hl_statefile_decode(mis + 1, len, &u, NULL), HL_OK);
    check_same(s, u);
    hl_assign_state_free(u);
    free(mis);
    /* Through a file. */
    char *dir = tu_tmpdir(), *path = tu_path(dir, "s.hls");
    ck_assert_int_eq(hl_statefile_save(s, path, NULL), HL_OK);
    hl_assign_state *v;
    ck_assert_int_eq(hl_statefile_load(path, &v, NULL), HL_OK);
    check_same(s, v);
    hl_assign_state_free(v);
    tu_rmtree(dir);
    free(path);
    free(dir);
    free(b);
    free(b2);
    hl_assign_state_free(t);
}

START_TEST(test_roundtrip)
{
    hl_model *m = lander();
    hl_assign_state *s[4] = {state(300, 0, NULL, HL_NEW_OPEN), state(300, 60, NULL, HL_NEW_OPEN),
                             state(300, 60, m, HL_NEW_OPEN), state(300, 60, m, HL_NEW_UNASSIGNED)};
    ck_assert_int_ge(s[2]->n_levels, 2);
    ck_assert_ptr_nonnull(s[2]->levels[1].cmean);
    ck_assert_ptr_nonnull(s[2]->levels[0].hidden[1]);
    for (int i = 0; i < 4; i++) {
        roundtrip(s[i]);
        hl_assign_state_free(s[i]);
    }
    hl_model_free(m);
}
END_TEST

/* Every single-bit flip and every truncation of a file is refused, never crashes. */
START_TEST(test_every_flip_and_truncation)
{
    hl_assign_state *s = state(40, 0, NULL, HL_NEW_OPEN);
    size_t len;
    unsigned char *b = encode(s, &len);
    unsigned char *c = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(c, b, len);
            c[i] ^= (unsigned char)(1u << bit);
            hl_assign_state *t = NULL;
            hl_error e;
            hl_error_clear(&e);
            hl_status st = hl_statefile_decode(c, len, &t, &e);
            EXPECT_MSG(st != HL_OK && t == NULL, "flip of byte %zu bit %d decoded", i, bit);
            EXPECT_MSG(e.code == st && e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL,
                       "flip of byte %zu: bad error '%s'", i, e.msg);
        }
    }
    for (size_t n = 0; n < len; n++) {
        hl_assign_state *t = NULL;
        hl_error e;
        hl_error_clear(&e);
        hl_status st = hl_statefile_decode(b, n, &t, &e);
        EXPECT_MSG(st == HL_FORMAT && t == NULL, "truncation to %zu: %s", n, hl_status_name(st));
        EXPECT(strstr(e.msg, "truncated") != NULL || strstr(e.msg, "too short") != NULL);
    }
    memcpy(c, b, len);
    c[len] = 0;
    hl_assign_state *t = NULL;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_statefile_decode(c, len + 1, &t, &e), HL_FORMAT);
    ck_assert_msg(strstr(e.msg, "trailing bytes") != NULL, "%s", e.msg);
    free(c);
    free(b);
    hl_assign_state_free(s);
}
END_TEST

/* ------------------------------------------------------------------ edits behind the CRCs */

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)tu_sf_le32(p) | (uint64_t)tu_sf_le32(p + 4) << 32;
}

/* Byte position of a table entry and of its data. */
static size_t entry_at(const unsigned char *b, const char *name)
{
    size_t n = tu_sf_le32(b + 92);
    for (size_t i = 0; i < n; i++)
        if (strcmp((const char *)b + 176 + i * 64, name) == 0)
            return 176 + i * 64;
    ck_abort_msg("no array %s", name);
    return 0;
}

static size_t data_at(const unsigned char *b, const char *name)
{
    size_t crc_off = 176 + 64 * (size_t)tu_sf_le32(b + 92);
    return (crc_off + 4 + 63) / 64 * 64 + (size_t)le64(b + entry_at(b, name) + 56);
}

typedef void (*edit_fn)(unsigned char *b, size_t len);

/* Applies an edit to a fresh encoding, fixes the CRCs and expects the decoder to refuse
 * with `status` and a message containing `msg`. */
static void expect_refused(const hl_assign_state *s, edit_fn edit, hl_status status,
                           const char *msg)
{
    size_t len;
    unsigned char *b = encode(s, &len);
    edit(b, len);
    tu_statefile_fix_crcs(b, len);
    hl_assign_state *t = NULL;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_decode(b, len, &t, &e);
    ck_assert_msg(st == status, "want %s, got %s (%s)", hl_status_name(status), hl_status_name(st),
                  e.msg);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(e.msg, msg) != NULL, "message '%s' lacks '%s'", e.msg, msg);
    ck_assert_int_eq(e.code, st);
    free(b);
}

static void e_magic(unsigned char *b, size_t len)
{
    (void)len;
    b[3] = 'X';
}
static void e_major(unsigned char *b, size_t len)
{
    (void)len;
    b[4] = 2;
}
static void e_flags(unsigned char *b, size_t len)
{
    (void)len;
    b[12] = 1;
}
static void e_reserved(unsigned char *b, size_t len)
{
    (void)len;
    b[170] = 1;
}
static void e_levels0(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + 36, 0);
}
static void e_levels_more(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + 36, tu_sf_le32(b + 36) + 1);
}
static void e_n(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + 24, tu_sf_le32(b + 24) + 1);
}
static void e_has_model(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + 48, 2);
}
static void e_model_fields(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + 72, 8); /* hidden set without a model */
}
static void e_name(unsigned char *b, size_t len)
{
    (void)len;
    memcpy(b + entry_at(b, "labels"), "lab\x01", 4);
}
static void e_unknown(unsigned char *b, size_t len)
{
    (void)len;
    memcpy(b + entry_at(b, "labels"), "lebals", 6);
}
static void e_dtype(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + entry_at(b, "labels") + 32, 0);
}
static void e_shape(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + entry_at(b, "x") + 48, D + 1);
}
static void e_misaligned(unsigned char *b, size_t len)
{
    (void)len;
    size_t at = entry_at(b, "labels") + 56;
    tu_sf_put_le32(b + at, tu_sf_le32(b + at) + 4);
}
static void e_overlap(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + entry_at(b, "labels") + 56, 0); /* on top of x */
}
static void e_past_end(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + entry_at(b, "l0.deg") + 40, 1u << 30);
}
static void e_nan(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + data_at(b, "l0.sim") + 8, 0x7fc00000u);
}
static void e_nbr_range(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + data_at(b, "l0.nbr") + 4, 4000);
}
static void e_rep(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + data_at(b, "l0.rep") + 8, 0);
}
static void e_deg(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + data_at(b, "l0.deg"), 100);
}
static void e_label(unsigned char *b, size_t len)
{
    (void)len;
    tu_sf_put_le32(b + data_at(b, "labels") + 12, (uint32_t)-5);
}
static void e_padding(unsigned char *b, size_t len)
{
    (void)len;
    size_t crc_off = 176 + 64 * (size_t)tu_sf_le32(b + 92);
    if ((crc_off + 4) % 64 != 0)
        b[crc_off + 4] = 1;
    else
        ck_abort_msg("no padding to corrupt");
}

START_TEST(test_corruptions)
{
    hl_assign_state *s = state(60, 0, NULL, HL_NEW_OPEN);
    expect_refused(s, e_magic, HL_FORMAT, "bad magic");
    expect_refused(s, e_major, HL_VERSION, "unsupported state file version 2.0");
    expect_refused(s, e_flags, HL_FORMAT, "unknown flags");
    expect_refused(s, e_reserved, HL_FORMAT, "reserved");
    expect_refused(s, e_levels0, HL_FORMAT, "bad level count 0");
    expect_refused(s, e_levels_more, HL_FORMAT, "missing array 'l");
    expect_refused(s, e_n, HL_FORMAT, "array 'x' has type 0 shape");
    expect_refused(s, e_has_model, HL_FORMAT, "has_model");
    expect_refused(s, e_model_fields, HL_FORMAT, "model fields are set");
    expect_refused(s, e_name, HL_FORMAT, "bad byte 0x01");
    expect_refused(s, e_unknown, HL_FORMAT, "missing array 'labels'");
    expect_refused(s, e_dtype, HL_FORMAT, "expected type 1");
    expect_refused(s, e_shape, HL_FORMAT, "array 'labels': 240 bytes at offset");
    expect_refused(s, e_misaligned, HL_FORMAT, "not 64-byte aligned");
    expect_refused(s, e_overlap, HL_FORMAT, "overlap");
    expect_refused(s, e_past_end, HL_FORMAT, "larger than the payload");
    expect_refused(s, e_nan, HL_NUMERIC, "non-finite value (NaN)");
    expect_refused(s, e_nbr_range, HL_FORMAT, "neighbour 4000");
    expect_refused(s, e_rep, HL_FORMAT, "has peak 0");
    expect_refused(s, e_deg, HL_FORMAT, "degree 100");
    expect_refused(s, e_label, HL_FORMAT, "label -5");
    expect_refused(s, e_padding, HL_FORMAT, "padding");
    hl_assign_state_free(s);

    /* The encoder refuses an inconsistent state. */
    s = state(60, 0, NULL, HL_NEW_OPEN);
    s->levels[0].nbr[0] = (int32_t)s->levels[0].n;
    void *b;
    size_t len;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_statefile_encode(s, &b, &len, NULL, &e), HL_INVAL);
    ck_assert_ptr_null(b);
    ck_assert(strstr(e.msg, "cannot encode") != NULL);
    hl_assign_state_free(s);
}
END_TEST

/* A file names itself in load errors, and the model fields survive. */
START_TEST(test_load_errors)
{
    char *dir = tu_tmpdir(), *path = tu_path(dir, "bad.hls");
    ck_assert_int_eq(hl_file_write(path, "HLST", 4, NULL), HL_OK);
    hl_assign_state *s = NULL;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_statefile_load(path, &s, &e), HL_FORMAT);
    ck_assert_msg(strncmp(e.msg, path, strlen(path)) == 0, "%s", e.msg);
    hl_error_clear(&e);
    ck_assert_int_eq(hl_statefile_load("/nonexistent/x.hls", &s, &e), HL_IO);
    ck_assert_ptr_null(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------ deltas */

/* One assign of `extra` blob points (seeded) applied to s; returns the delta it wrote. */
static void *grow_delta(hl_assign_state *s, const hl_model *m, size_t extra, uint64_t seed,
                        size_t *len)
{
    int32_t *y;
    float *x = tu_blobs(extra, D, 40, 0.2f, 3, &y);
    for (size_t i = 0; i < extra; i++) /* a few far points open new clusters */
        if (i % 7 == 0)
            x[i * D + (i + seed) % D] = -4.0f - (float)seed;
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.model_checksum = 0xfeedu;
    hl_statefile_mark mk;
    hl_statefile_mark_of(s, &mk);
    hl_assignment *a;
    ck_assert_int_eq(hl_assign_run(s, m, x, extra, D, &ap, &a, NULL), HL_OK);
    ck_assert_int_eq(hl_assign_apply(s, a, NULL), HL_OK);
    hl_assignment_free(a);
    void *d = NULL;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_statefile_delta_encode(s, &mk, &d, len, &e) == HL_OK, "%s", e.msg);
    free(x);
    free(y);
    return d;
}

/* base + deltas decode to exactly the state the deltas were taken from (same file bytes),
 * with and without a model; a chain of one base and no deltas is the base. */
START_TEST(test_delta_chain)
{
    hl_model *m = lander();
    for (int with_model = 0; with_model < 2; with_model++) {
        const hl_model *mm = with_model ? m : NULL;
        hl_assign_state *s = state(200, 0, mm, HL_NEW_OPEN);
        size_t blen, dl[3];
        void *base = encode(s, &blen), *d[3];
        for (int i = 0; i < 3; i++)
            d[i] = grow_delta(s, mm, 30 + 10 * (size_t)i, (uint64_t)i + 1, &dl[i]);
        ck_assert_uint_lt(dl[0], blen / 2); /* O(batch), not O(state) */
        hl_assign_state *t = NULL, *b0 = NULL;
        hl_error e;
        hl_error_clear(&e);
        ck_assert_msg(
            hl_statefile_decode_chain(base, blen, (const void *const *)d, dl, 3, &t, &e) == HL_OK,
            "%s", e.msg);
        check_same(s, t);
        size_t l1, l2;
        void *f1 = encode(s, &l1), *f2 = encode(t, &l2);
        ck_assert_uint_eq(l1, l2);
        ck_assert_mem_eq(f1, f2, l1);
        ck_assert_int_eq(hl_statefile_decode_chain(base, blen, NULL, NULL, 0, &b0, NULL), HL_OK);
        ck_assert_uint_eq(b0->n, 200);
        /* Out of order or skipped: refused, naming the delta. */
        hl_assign_state *u = NULL;
        const void *skip[2] = {d[0], d[2]};
        size_t skl[2] = {dl[0], dl[2]};
        hl_error_clear(&e);
        ck_assert_int_eq(hl_statefile_decode_chain(base, blen, skip, skl, 2, &u, &e), HL_FORMAT);
        ck_assert_ptr_null(u);
        ck_assert_msg(strstr(e.msg, "delta 2 of 2") != NULL, "%s", e.msg);
        /* A delta applied to the wrong base: refused. */
        hl_error_clear(&e);
        ck_assert_int_eq(hl_statefile_decode_chain(f1, l1, (const void *const *)d, dl, 1, &u, &e),
                         HL_FORMAT);
        ck_assert_msg(strstr(e.msg, "delta 1 of 1") != NULL, "%s", e.msg);
        free(f1);
        free(f2);
        hl_assign_state_free(t);
        hl_assign_state_free(b0);
        for (int i = 0; i < 3; i++)
            free(d[i]);
        free(base);
        hl_assign_state_free(s);
    }
    hl_model_free(m);
}
END_TEST

/* Every single-bit flip (bits 0 and 7 of each byte) and every truncation of a delta is
 * refused with a one-line message; the state is never half-applied. */
START_TEST(test_delta_flips)
{
    hl_assign_state *s = state(40, 0, NULL, HL_NEW_OPEN);
    size_t blen, dlen;
    void *base = encode(s, &blen);
    unsigned char *d = grow_delta(s, NULL, 12, 5, &dlen);
    unsigned char *c = malloc(dlen + 1);
    for (size_t i = 0; i < dlen; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(c, d, dlen);
            c[i] ^= (unsigned char)(1u << bit);
            const void *p = c;
            hl_assign_state *t = NULL;
            hl_error e;
            hl_error_clear(&e);
            hl_status st = hl_statefile_decode_chain(base, blen, &p, &dlen, 1, &t, &e);
            EXPECT_MSG(st != HL_OK && t == NULL, "flip of delta byte %zu bit %d applied", i, bit);
            EXPECT_MSG(e.code == st && strstr(e.msg, "delta 1 of 1") != NULL &&
                           strchr(e.msg, '\n') == NULL,
                       "flip of delta byte %zu: bad error '%s'", i, e.msg);
        }
    }
    for (size_t n = 0; n < dlen + 1; n++) {
        if (n == dlen)
            continue;
        memcpy(c, d, dlen);
        c[dlen] = 0;
        const void *p = c;
        hl_assign_state *t = NULL;
        hl_error e;
        hl_error_clear(&e);
        hl_status st = hl_statefile_decode_chain(base, blen, &p, &n, 1, &t, &e);
        EXPECT_MSG(st != HL_OK && t == NULL, "delta cut to %zu bytes applied", n);
    }
    free(c);
    free(d);
    free(base);
    hl_assign_state_free(s);
}
END_TEST

Suite *statefile_suite(void);

Suite *statefile_suite(void)
{
    Suite *s = suite_create("statefile");
    TCase *tc = tcase_create("statefile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_every_flip_and_truncation);
    tcase_add_test(tc, test_corruptions);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_delta_chain);
    tcase_add_test(tc, test_delta_flips);
    suite_add_tcase(s, tc);
    return s;
}
