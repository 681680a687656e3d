/*
 * test_base.c - the small building blocks: status names and positioned errors, checked size
 * arithmetic, the arena, the random generator, hl_parallel_for and the dense helpers of mat.h.
 */
#include "hl/arena.h"
#include "hl/mat.h"
#include "hl/parallel.h"
#include "hl/rng.h"
#include "hl/status.h"

#include <check.h>

#include "test_util.h"
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

Suite *base_suite(void);

/* ------------------------------------------------------------------ status */

START_TEST(test_status_names)
{
    static const struct {
        hl_status s;
        int code;
        const char *name, *text;
    } want[] = {
        {HL_OK, 0, "OK", "success"},
        {HL_INVAL, -1, "INVAL", "invalid argument"},
        {HL_RANGE, -2, "RANGE", "value out of range"},
        {HL_NOMEM, -3, "NOMEM", "out of memory"},
        {HL_FORMAT, -4, "FORMAT", "malformed data"},
        {HL_VERSION, -5, "VERSION", "unsupported version"},
        {HL_CHECKSUM, -6, "CHECKSUM", "checksum mismatch"},
        {HL_NUMERIC, -7, "NUMERIC", "non-finite value"},
        {HL_CANCELED, -8, "CANCELED", "canceled"},
        {HL_TIMEOUT, -9, "TIMEOUT", "timed out"},
        {HL_BUSY, -10, "BUSY", "busy"},
        {HL_NOTFOUND, -11, "NOTFOUND", "not found"},
        {HL_UNAVAILABLE, -12, "UNAVAILABLE", "unavailable"},
        {HL_IO, -13, "IO", "i/o error"},
        {HL_INTERNAL, -14, "INTERNAL", "internal error"},
    };
    size_t count = sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; i < count; i++) {
        ck_assert_int_eq((int)want[i].s, want[i].code);
        ck_assert_str_eq(hl_status_name(want[i].s), want[i].name);
        ck_assert_str_eq(hl_status_str(want[i].s), want[i].text);
    }
    /* The table above lists every code of the map. */
    size_t in_map = 0;
#define COUNT_(name, code, text) in_map++;
    HL_STATUS_MAP(COUNT_)
#undef COUNT_
    ck_assert_uint_eq(in_map, count);
    const int unknown[] = {1, 7, -15, -100, 1000, INT32_MIN};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        ck_assert_str_eq(hl_status_name((hl_status)unknown[i]), "UNKNOWN");
        ck_assert_str_eq(hl_status_str((hl_status)unknown[i]), "unknown status");
    }
    ck_assert_str_eq(hl_stage_name(HL_STAGE_KNN), "knn");
    ck_assert_str_eq(hl_stage_name(HL_STAGE_GNN), "gnn");
    ck_assert_str_eq(hl_stage_name(HL_STAGE_DECODE), "decode");
    ck_assert_str_eq(hl_stage_name(HL_STAGE_TRAIN), "train");
    ck_assert_str_eq(hl_stage_name((hl_stage)9), "unknown");
}
END_TEST

START_TEST(test_error_first_wins)
{
    hl_error err;
    memset(&err, 0x5a, sizeof(err));
    hl_error_clear(&err);
    ck_assert_int_eq(err.code, HL_OK);
    ck_assert_str_eq(err.field, "");
    ck_assert_str_eq(err.msg, "");
    EXPECT(err.has_offset == 0 && err.has_col == 0 && err.offset == 0 && err.col == 0);
    hl_error_clear(NULL);

    ck_assert_int_eq(hl_error_set(&err, HL_FORMAT, "/k", "bad %s at %d", "value", 42), HL_FORMAT);
    ck_assert_int_eq(err.code, HL_FORMAT);
    ck_assert_str_eq(err.field, "/k");
    ck_assert_str_eq(err.msg, "bad value at 42");
    ck_assert_int_eq(err.has_offset, 0);
    ck_assert_int_eq(err.has_col, 0);
    /* Later errors return their own code but leave the first one alone. */
    ck_assert_int_eq(hl_error_set(&err, HL_RANGE, "/other", "second"), HL_RANGE);
    ck_assert_int_eq(hl_error_set_at(&err, HL_IO, "x", 99, "third"), HL_IO);
    ck_assert_int_eq(hl_error_set_cell(&err, HL_NUMERIC, "y", 3, 4, "fourth"), HL_NUMERIC);
    ck_assert_int_eq(err.code, HL_FORMAT);
    ck_assert_str_eq(err.field, "/k");
    ck_assert_str_eq(err.msg, "bad value at 42");
    ck_assert_int_eq(err.has_offset, 0);
    ck_assert_int_eq(err.has_col, 0);

    /* NULL error and NULL field. */
    ck_assert_int_eq(hl_error_set(NULL, HL_NOMEM, "f", "m"), HL_NOMEM);
    ck_assert_int_eq(hl_error_set_at(NULL, HL_NOMEM, "f", 1, "m"), HL_NOMEM);
    ck_assert_int_eq(hl_error_set_cell(NULL, HL_NOMEM, "f", 1, 2, "m"), HL_NOMEM);
    hl_error_clear(&err);
    hl_error_set(&err, HL_INVAL, NULL, "no field");
    ck_assert_str_eq(err.field, "");
    ck_assert_str_eq(err.msg, "no field");
}
END_TEST

START_TEST(test_error_positions)
{
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_error_set_at(&err, HL_FORMAT, "body", 1234, "at %zu", (size_t)1234),
                     HL_FORMAT);
    ck_assert_uint_eq(err.offset, 1234);
    ck_assert_int_eq(err.has_offset, 1);
    ck_assert_int_eq(err.has_col, 0);
    ck_assert_str_eq(err.msg, "at 1234");
    /* A later cell error does not move the position. */
    hl_error_set_cell(&err, HL_NUMERIC, "x", 7, 8, "later");
    ck_assert_uint_eq(err.offset, 1234);
    ck_assert_int_eq(err.has_col, 0);

    hl_error_clear(&err);
    ck_assert_int_eq(hl_error_set_cell(&err, HL_NUMERIC, "embeddings", 5, SIZE_MAX, "cell"),
                     HL_NUMERIC);
    ck_assert_uint_eq(err.offset, 5);
    ck_assert_uint_eq(err.col, SIZE_MAX);
    ck_assert_int_eq(err.has_offset, 1);
    ck_assert_int_eq(err.has_col, 1);
    ck_assert_str_eq(err.field, "embeddings");
    hl_error_set_at(&err, HL_IO, "y", 77, "later");
    ck_assert_uint_eq(err.offset, 5);
    ck_assert_uint_eq(err.col, SIZE_MAX);
    ck_assert_int_eq(err.code, HL_NUMERIC);
}
END_TEST

START_TEST(test_error_truncation)
{
    char longfield[200], longmsg[600];
    for (size_t i = 0; i < sizeof(longfield) - 1; i++)
        longfield[i] = (char)('a' + i % 26);
    longfield[sizeof(longfield) - 1] = '\0';
    for (size_t i = 0; i < sizeof(longmsg) - 1; i++)
        longmsg[i] = (char)('0' + i % 10);
    longmsg[sizeof(longmsg) - 1] = '\0';
    hl_error err;
    hl_error_clear(&err);
    hl_error_set(&err, HL_FORMAT, longfield, "%s", longmsg);
    ck_assert_uint_eq(strlen(err.field), sizeof(err.field) - 1);
    ck_assert_int_eq(memcmp(err.field, longfield, sizeof(err.field) - 1), 0);
    ck_assert_uint_eq(strlen(err.msg), sizeof(err.msg) - 1);
    ck_assert_int_eq(memcmp(err.msg, longmsg, sizeof(err.msg) - 1), 0);
    /* Exactly fitting strings are kept whole. */
    longfield[sizeof(err.field) - 1] = '\0';
    longmsg[sizeof(err.msg) - 1] = '\0';
    hl_error_clear(&err);
    hl_error_set_cell(&err, HL_FORMAT, longfield, 1, 2, "%s", longmsg);
    ck_assert_str_eq(err.field, longfield);
    ck_assert_str_eq(err.msg, longmsg);
}
END_TEST

static int stop_flag_fn(void *ud)
{
    return *(int *)ud;
}

typedef struct progress_log {
    int calls;
    hl_stage stage;
    int level;
    double fraction;
} progress_log;

static void progress_fn(void *ud, hl_stage stage, int level, double fraction)
{
    progress_log *p = ud;
    p->calls++;
    p->stage = stage;
    p->level = level;
    p->fraction = fraction;
}

START_TEST(test_hooks)
{
    int flag = 0;
    hl_cancel c = {stop_flag_fn, &flag};
    ck_assert_int_eq(hl_cancel_requested(NULL), 0);
    ck_assert_int_eq(hl_cancel_requested(&(hl_cancel){NULL, &flag}), 0);
    ck_assert_int_eq(hl_cancel_requested(&c), 0);
    flag = 5;
    ck_assert_int_ne(hl_cancel_requested(&c), 0);
    progress_log log = {0, HL_STAGE_KNN, 0, 0.0};
    hl_progress p = {progress_fn, &log};
    hl_progress_report(NULL, HL_STAGE_GNN, 1, 0.5);
    hl_progress_report(&(hl_progress){NULL, &log}, HL_STAGE_GNN, 1, 0.5);
    ck_assert_int_eq(log.calls, 0);
    hl_progress_report(&p, HL_STAGE_DECODE, 3, 0.25);
    ck_assert_int_eq(log.calls, 1);
    ck_assert_int_eq(log.stage, HL_STAGE_DECODE);
    ck_assert_int_eq(log.level, 3);
    ck_assert_double_eq(log.fraction, 0.25);
}
END_TEST

/* -------------------------------------------------------------- size math */

START_TEST(test_size_math)
{
    size_t out = 777;
    ck_assert_int_eq(hl_mul_size(3, 5, &out), HL_OK);
    ck_assert_uint_eq(out, 15);
    ck_assert_int_eq(hl_mul_size(0, SIZE_MAX, &out), HL_OK);
    ck_assert_uint_eq(out, 0);
    ck_assert_int_eq(hl_mul_size(SIZE_MAX, 0, &out), HL_OK);
    ck_assert_uint_eq(out, 0);
    ck_assert_int_eq(hl_mul_size(SIZE_MAX, 1, &out), HL_OK);
    ck_assert_uint_eq(out, SIZE_MAX);
    ck_assert_int_eq(hl_mul_size(1, SIZE_MAX, &out), HL_OK);
    ck_assert_uint_eq(out, SIZE_MAX);
    out = 777;
    ck_assert_int_eq(hl_mul_size(SIZE_MAX / 2 + 1, 2, &out), HL_RANGE);
    ck_assert_int_eq(hl_mul_size(2, SIZE_MAX / 2 + 1, &out), HL_RANGE);
    ck_assert_int_eq(hl_mul_size(SIZE_MAX, SIZE_MAX, &out), HL_RANGE);
    ck_assert_uint_eq(out, 777); /* untouched on failure */
    ck_assert_int_eq(hl_mul_size(SIZE_MAX / 3, 3, &out), HL_OK);
    ck_assert_uint_eq(out, SIZE_MAX / 3 * 3);

    out = 777;
    ck_assert_int_eq(hl_add_size(SIZE_MAX, 0, &out), HL_OK);
    ck_assert_uint_eq(out, SIZE_MAX);
    ck_assert_int_eq(hl_add_size(SIZE_MAX - 5, 5, &out), HL_OK);
    ck_assert_uint_eq(out, SIZE_MAX);
    out = 777;
    ck_assert_int_eq(hl_add_size(SIZE_MAX, 1, &out), HL_RANGE);
    ck_assert_int_eq(hl_add_size(1, SIZE_MAX, &out), HL_RANGE);
    ck_assert_int_eq(hl_add_size(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, &out), HL_RANGE);
    ck_assert_uint_eq(out, 777);

    /* Random operands against the compiler's checked arithmetic. */
    hl_rng r;
    hl_rng_seed(&r, 1);
    for (int i = 0; i < 100000; i++) {
        int bits_a = (int)hl_rng_below(&r, 65), bits_b = (int)hl_rng_below(&r, 65);
        size_t a = bits_a == 0 ? 0 : (size_t)(hl_rng_next(&r) >> (64 - bits_a));
        size_t b = bits_b == 0 ? 0 : (size_t)(hl_rng_next(&r) >> (64 - bits_b));
        size_t want, got = 12345;
        int ovf = __builtin_mul_overflow(a, b, &want);
        EXPECT(hl_mul_size(a, b, &got) == (ovf ? HL_RANGE : HL_OK));
        EXPECT(got == (ovf ? 12345 : want));
        got = 12345;
        ovf = __builtin_add_overflow(a, b, &want);
        EXPECT(hl_add_size(a, b, &got) == (ovf ? HL_RANGE : HL_OK));
        EXPECT(got == (ovf ? 12345 : want));
    }
}
END_TEST

/* ------------------------------------------------------------------ arena */

START_TEST(test_arena_alignment)
{
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, 1 << 16), HL_OK);
    ck_assert_int_eq(a.owns, 1);
    ck_assert_uint_eq(a.cap, 1 << 16);
    unsigned char *prev_end = NULL;
    for (size_t align = 1; align <= 4096; align <<= 1) {
        for (size_t size = 1; size < 40; size += 13) {
            unsigned char *p = hl_arena_alloc(&a, size, align);
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_eq((uintptr_t)p % align, 0);
            EXPECT(p >= a.base && p + size <= a.base + a.used);
            EXPECT(prev_end == NULL || p >= prev_end); /* no overlap with the last block */
            memset(p, (int)size, size);
            prev_end = p + size;
        }
    }
    /* Invalid alignments. */
    size_t used = a.used;
    ck_assert_ptr_null(hl_arena_alloc(&a, 8, 0));
    ck_assert_ptr_null(hl_arena_alloc(&a, 8, 3));
    ck_assert_ptr_null(hl_arena_alloc(&a, 8, 48));
    ck_assert_ptr_null(hl_arena_alloc(&a, 8, 8192));
    ck_assert_uint_eq(a.used, used);
    hl_arena_deinit(&a);
    ck_assert_ptr_null(a.base);
    ck_assert_uint_eq(a.cap, 0);
    hl_arena_deinit(&a); /* twice is harmless */
    hl_arena zero;
    memset(&zero, 0, sizeof(zero));
    hl_arena_deinit(&zero);
}
END_TEST

START_TEST(test_arena_exhaustion)
{
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, 1000), HL_OK);
    size_t total = 0;
    for (;;) {
        size_t used = a.used;
        void *p = hl_arena_alloc(&a, 24, 8);
        if (p == NULL) {
            ck_assert_uint_eq(a.used, used); /* a failed allocation changes nothing */
            break;
        }
        total += 24;
        ck_assert_uint_le(a.used, a.cap);
    }
    ck_assert_uint_ge(total, 1000 - 24 - 8);
    ck_assert_uint_le(a.used, 1000);
    /* A smaller block may still fit; a huge one never does. */
    size_t left = a.cap - a.used;
    if (left > 0)
        ck_assert_ptr_nonnull(hl_arena_alloc(&a, left, 1));
    ck_assert_uint_eq(a.used, a.cap);
    ck_assert_ptr_null(hl_arena_alloc(&a, 1, 1));
    hl_arena_reset(&a, 0);
    ck_assert_ptr_null(hl_arena_alloc(&a, SIZE_MAX, 1));
    ck_assert_ptr_null(hl_arena_alloc(&a, SIZE_MAX - 10, 64));
    ck_assert_ptr_null(hl_arena_alloc(&a, 1001, 1));
    ck_assert_uint_eq(a.used, 0);
    ck_assert_ptr_nonnull(hl_arena_alloc(&a, 1000, 1));
    hl_arena_deinit(&a);

    /* An empty arena hands out nothing. */
    ck_assert_int_eq(hl_arena_init(&a, 0), HL_OK);
    ck_assert_ptr_null(hl_arena_alloc(&a, 1, 1));
    hl_arena_deinit(&a);
}
END_TEST

START_TEST(test_arena_mark_reset_peak)
{
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, 4096), HL_OK);
    ck_assert_uint_eq(hl_arena_mark(&a), 0);
    ck_assert_uint_eq(a.peak, 0);
    void *first = hl_arena_alloc(&a, 100, 16);
    ck_assert_ptr_nonnull(first);
    size_t m = hl_arena_mark(&a);
    ck_assert_uint_eq(m, a.used);
    unsigned char *p1 = hl_arena_alloc(&a, 1000, 64);
    unsigned char *p2 = hl_arena_alloc(&a, 500, 64);
    EXPECT(p1 != NULL && p2 != NULL);
    size_t high = a.used;
    ck_assert_uint_eq(a.peak, high);
    hl_arena_reset(&a, m);
    ck_assert_uint_eq(a.used, m);
    ck_assert_uint_eq(a.peak, high); /* the peak survives a reset */
    /* The released space is handed out again, from the same place. */
    unsigned char *q1 = hl_arena_alloc(&a, 1000, 64);
    ck_assert_ptr_eq(q1, p1);
    ck_assert_uint_eq(a.peak, high);
    unsigned char *q2 = hl_arena_alloc(&a, 2000, 64);
    ck_assert_ptr_nonnull(q2);
    ck_assert_uint_gt(a.peak, high);
    ck_assert_uint_eq(a.peak, a.used);
    /* A mark beyond the fill level is ignored. */
    size_t used = a.used;
    hl_arena_reset(&a, used + 100);
    ck_assert_uint_eq(a.used, used);
    hl_arena_reset(&a, 0);
    ck_assert_uint_eq(a.used, 0);
    ck_assert_ptr_eq(hl_arena_alloc(&a, 1, 1), a.base);
    hl_arena_deinit(&a);
}
END_TEST

START_TEST(test_arena_view)
{
    /* A stack buffer: deinit must not free it (ASan would report it). */
    _Alignas(64) unsigned char buf[512];
    hl_arena a;
    hl_arena_init_view(&a, buf + 3, 400);
    ck_assert_int_eq(a.owns, 0);
    ck_assert_uint_eq(a.cap, 400);
    unsigned char *p = hl_arena_alloc(&a, 10, 64);
    ck_assert_ptr_eq(p, buf + 64);
    unsigned char *q = hl_arena_alloc(&a, 1, 1);
    ck_assert_ptr_eq(q, buf + 74);
    ck_assert_ptr_null(hl_arena_alloc(&a, 400 - 72 + 1, 1));
    ck_assert_uint_eq(a.used, 72);
    unsigned char *r = hl_arena_alloc(&a, 400 - 72, 1);
    ck_assert_ptr_eq(r, buf + 75);
    ck_assert_uint_eq(a.used, a.cap);
    hl_arena_deinit(&a);
    ck_assert_ptr_null(a.base);
    buf[0] = 1; /* still ours */

    hl_arena_init_view(&a, NULL, 100);
    ck_assert_uint_eq(a.cap, 0);
    ck_assert_ptr_null(hl_arena_alloc(&a, 1, 1));
    hl_arena_deinit(&a);
}
END_TEST

START_TEST(test_arena_array_and_block)
{
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, 4096), HL_OK);
    double *d = hl_arena_alloc_array(&a, 100, sizeof(double), 64);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq((uintptr_t)d % 64, 0);
    ck_assert_uint_ge(a.used, 800);
    size_t used = a.used;
    ck_assert_ptr_null(hl_arena_alloc_array(&a, SIZE_MAX / 2 + 1, 2, 1));
    ck_assert_ptr_null(hl_arena_alloc_array(&a, 2, SIZE_MAX / 2 + 1, 1));
    ck_assert_ptr_null(hl_arena_alloc_array(&a, SIZE_MAX, SIZE_MAX, 8));
    ck_assert_ptr_null(hl_arena_alloc_array(&a, 1u << 20, 1u << 20, 8));
    ck_assert_uint_eq(a.used, used);
    ck_assert_ptr_nonnull(hl_arena_alloc_array(&a, 0, 8, 8));
    hl_arena_deinit(&a);

    ck_assert_uint_eq(hl_arena_block(0), 64);
    ck_assert_uint_eq(hl_arena_block(1), 128);
    ck_assert_uint_eq(hl_arena_block(64), 128);
    ck_assert_uint_eq(hl_arena_block(65), 192);
    ck_assert_uint_eq(hl_arena_block(1000), 1024 + 64);

    /* The planning contract: a sum of hl_arena_block() sizes holds those blocks with any
     * alignment up to 64, whatever the alignment of the base. */
    hl_rng r;
    hl_rng_seed(&r, 77);
    unsigned char *buf = malloc(1 << 16);
    ck_assert_ptr_nonnull(buf);
    for (int rep = 0; rep < 500; rep++) {
        size_t sizes[12], plan = 0;
        int nb = 1 + (int)hl_rng_below(&r, 12);
        for (int i = 0; i < nb; i++) {
            sizes[i] = (size_t)hl_rng_below(&r, 3) == 0 ? (size_t)hl_rng_below(&r, 4)
                                                        : (size_t)hl_rng_below(&r, 2000);
            plan += hl_arena_block(sizes[i]);
        }
        hl_arena v;
        hl_arena_init_view(&v, buf + hl_rng_below(&r, 64), plan);
        for (int i = 0; i < nb; i++) {
            size_t align = (size_t)1 << hl_rng_below(&r, 7);
            ck_assert_ptr_nonnull(hl_arena_alloc(&v, sizes[i], align));
        }
    }
    free(buf);
}
END_TEST

/* -------------------------------------------------------------------- rng */

START_TEST(test_rng_known_answers)
{
    /* xoshiro256** seeded by splitmix64, computed independently from the published
     * algorithms: the stream must be the same on every platform. */
    static const struct {
        uint64_t seed;
        uint64_t out[4];
    } kat[] = {
        {0,
         {0x99EC5F36CB75F2B4ULL, 0xBF6E1F784956452AULL, 0x1A5F849D4933E6E0ULL,
          0x6AA594F1262D2D2CULL}},
        {42,
         {0x15780B2E0C2EC716ULL, 0x6104D9866D113A7EULL, 0xAE17533239E499A1ULL,
          0xECB8AD4703B360A1ULL}},
        {UINT64_MAX,
         {0x8F5520D52A7EAD08ULL, 0xC476A018CAA1802DULL, 0x81DE31C0D260469EULL,
          0xBF658D7E065F3C2FULL}},
    };
    for (size_t k = 0; k < sizeof(kat) / sizeof(kat[0]); k++) {
        hl_rng r;
        hl_rng_seed(&r, kat[k].seed);
        for (int i = 0; i < 4; i++)
            EXPECT_MSG(hl_rng_next(&r) == kat[k].out[i], "seed %llu output %d",
                       (unsigned long long)kat[k].seed, i);
    }
}
END_TEST

START_TEST(test_rng_determinism)
{
    hl_rng a, b, c;
    hl_rng_seed(&a, 123);
    hl_rng_seed(&b, 123);
    hl_rng_seed(&c, 124);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = hl_rng_next(&a);
        EXPECT(x == hl_rng_next(&b));
        differ += x != hl_rng_next(&c);
    }
    ck_assert_int_ge(differ, 999);
    /* Re-seeding restarts the stream; every draw function is deterministic. */
    hl_rng_seed(&a, 123);
    hl_rng_seed(&b, 123);
    for (int i = 0; i < 200; i++) {
        EXPECT(hl_rng_uniform(&a) == hl_rng_uniform(&b));
        EXPECT(hl_rng_normal(&a) == hl_rng_normal(&b));
        EXPECT(hl_rng_below(&a, 1000003) == hl_rng_below(&b, 1000003));
    }
    /* uniform in [0, 1) with mean 1/2; normal with mean 0 and variance 1 */
    hl_rng_seed(&a, 9);
    double su = 0.0, sn = 0.0, sn2 = 0.0;
    const int draws = 200000;
    for (int i = 0; i < draws; i++) {
        double u = hl_rng_uniform(&a);
        EXPECT(u >= 0.0 && u < 1.0);
        su += u;
        double z = hl_rng_normal(&a);
        EXPECT(isfinite(z));
        sn += z;
        sn2 += z * z;
    }
    ck_assert_double_eq_tol(su / draws, 0.5, 0.005);
    ck_assert_double_eq_tol(sn / draws, 0.0, 0.01);
    ck_assert_double_eq_tol(sn2 / draws, 1.0, 0.02);
}
END_TEST

START_TEST(test_rng_below)
{
    hl_rng r;
    hl_rng_seed(&r, 2024);
    const uint64_t ns[] = {1,
                           2,
                           3,
                           7,
                           10,
                           1000,
                           1ULL << 32,
                           (1ULL << 32) + 1,
                           1ULL << 63,
                           (1ULL << 63) + 5,
                           UINT64_MAX - 1,
                           UINT64_MAX};
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        for (int i = 0; i < 2000; i++)
            EXPECT(hl_rng_below(&r, ns[k]) < ns[k]);
    }
    for (int i = 0; i < 100; i++)
        EXPECT(hl_rng_below(&r, 1) == 0);

    /* Rough uniformity: chi-square over 10 and 37 buckets, bounded well above the 99.99th
     * percentile (9 df: 33.7; 36 df: 74.5) yet far below what a skewed generator gives. */
    const uint64_t buckets[] = {10, 37};
    const double bound[] = {40.0, 85.0};
    for (int t = 0; t < 2; t++) {
        uint64_t nb = buckets[t];
        long count[37] = {0};
        const long draws = 100000;
        for (long i = 0; i < draws; i++)
            count[hl_rng_below(&r, nb)]++;
        double chi2 = 0.0, expect = (double)draws / (double)nb;
        for (uint64_t b = 0; b < nb; b++)
            chi2 += ((double)count[b] - expect) * ((double)count[b] - expect) / expect;
        EXPECT_MSG(chi2 < bound[t], "chi-square %g over %llu buckets", chi2,
                   (unsigned long long)nb);
    }
    /* No modulo bias: with n = 2/3 of 2^64, a plain `next % n` puts 4/9 of the draws in the
     * lowest third of [0, n); an unbiased draw puts 1/3 there. */
    uint64_t n = UINT64_MAX / 3 * 2;
    long low = 0;
    const long draws = 60000;
    for (long i = 0; i < draws; i++)
        low += hl_rng_below(&r, n) < n / 3;
    ck_assert_double_eq_tol((double)low / (double)draws, 1.0 / 3.0, 0.02);
}
END_TEST

START_TEST(test_rng_shuffle)
{
    hl_rng r;
    hl_rng_seed(&r, 31);
    int32_t v[200];
    int seen[200];
    for (size_t n = 0; n <= 200; n += n < 10 ? 1 : 37) {
        for (size_t i = 0; i < n; i++)
            v[i] = (int32_t)i * 3 - 7;
        hl_rng_shuffle_i32(&r, v, n);
        memset(seen, 0, sizeof(seen));
        size_t moved = 0;
        for (size_t i = 0; i < n; i++) {
            EXPECT(v[i] >= -7 && (v[i] + 7) % 3 == 0 && (v[i] + 7) / 3 < (int32_t)n);
            seen[(v[i] + 7) / 3]++;
            moved += v[i] != (int32_t)i * 3 - 7;
        }
        for (size_t i = 0; i < n; i++)
            EXPECT(seen[i] == 1);
        if (n >= 20)
            ck_assert_uint_gt(moved, n / 2);
    }
    hl_rng_shuffle_i32(&r, NULL, 0);
    /* Each of the 6 orders of 3 items is equally likely (a naive swap-with-any shuffle gives
     * 4:5:5:4:4:5 ratios and fails this). */
    long count[6] = {0};
    const long draws = 60000;
    for (long i = 0; i < draws; i++) {
        int32_t w[3] = {0, 1, 2};
        hl_rng_shuffle_i32(&r, w, 3);
        int code = w[0] * 2 + (w[1] > w[2]); /* the 6 permutations, 0..5 */
        count[code]++;
    }
    double chi2 = 0.0, expect = (double)draws / 6.0;
    for (int k = 0; k < 6; k++)
        chi2 += ((double)count[k] - expect) * ((double)count[k] - expect) / expect;
    EXPECT_MSG(chi2 < 30.0, "shuffle chi-square %g", chi2);
}
END_TEST

START_TEST(test_rng_split)
{
    enum { TASKS = 200 };
    uint64_t first[TASKS];
    hl_rng r, s, base;
    hl_rng_seed(&base, 5);
    uint64_t base_first = hl_rng_next(&base);
    for (int t = 0; t < TASKS; t++) {
        hl_rng_split(&r, 5, (uint64_t)t);
        hl_rng_split(&s, 5, (uint64_t)t);
        first[t] = hl_rng_next(&r);
        EXPECT(first[t] == hl_rng_next(&s)); /* deterministic */
        EXPECT(first[t] != base_first);
        for (int u = 0; u < t; u++)
            EXPECT_MSG(first[t] != first[u], "tasks %d and %d share a stream", t, u);
    }
    /* Streams of neighbouring tasks stay apart for many draws. */
    hl_rng_split(&r, 5, 0);
    hl_rng_split(&s, 5, 1);
    int same = 0;
    for (int i = 0; i < 10000; i++)
        same += hl_rng_next(&r) == hl_rng_next(&s);
    ck_assert_int_eq(same, 0);
    /* The parent seed matters too. */
    hl_rng_split(&r, 5, 3);
    hl_rng_split(&s, 6, 3);
    EXPECT(hl_rng_next(&r) != hl_rng_next(&s));
}
END_TEST

/* --------------------------------------------------------------- parallel */

#define MAX_TASKS 1000

typedef struct par_check {
    atomic_int runs[MAX_TASKS];
    atomic_int bad_thread;
    atomic_int max_thread;
    int limit; /* exclusive upper bound on thread ids, known after the call */
} par_check;

static void count_task(void *arg, size_t task, int thread)
{
    par_check *c = arg;
    atomic_fetch_add(&c->runs[task], 1);
    if (thread < 0 || thread >= HL_MAX_THREADS)
        atomic_store(&c->bad_thread, 1);
    int m = atomic_load(&c->max_thread);
    while (thread > m && !atomic_compare_exchange_weak(&c->max_thread, &m, thread)) {
    }
}

/* Task counts 0..1000: every one with 1 and 2 threads; with 3..8 threads (thread creation is
 * slow under sanitizers) every count up to 40, then a sweep ending exactly at 1000. */
static size_t next_count(int nt, size_t n)
{
    if (nt <= 2 || n < 40 || n == MAX_TASKS)
        return n + 1;
    return n + 37 < MAX_TASKS ? n + 37 : MAX_TASKS;
}

START_TEST(test_parallel_every_task_once)
{
    static par_check c;
    for (int nt = 1; nt <= 8; nt++) {
        for (size_t n = 0; n <= MAX_TASKS; n = next_count(nt, n)) {
            for (size_t t = 0; t < MAX_TASKS; t++)
                atomic_init(&c.runs[t], 0);
            atomic_init(&c.bad_thread, 0);
            atomic_init(&c.max_thread, -1);
            int used = hl_parallel_for(nt, n, count_task, &c);
            size_t expect_max = n < (size_t)nt ? (n > 0 ? n : 1) : (size_t)nt;
            EXPECT_MSG(used >= 1 && (size_t)used <= expect_max, "threads %d, tasks %zu: used %d",
                       nt, n, used);
            for (size_t t = 0; t < MAX_TASKS; t++)
                EXPECT_MSG(atomic_load(&c.runs[t]) == (t < n ? 1 : 0),
                           "threads %d, tasks %zu: task %zu ran %d times", nt, n, t,
                           atomic_load(&c.runs[t]));
            EXPECT(atomic_load(&c.bad_thread) == 0);
            EXPECT_MSG(atomic_load(&c.max_thread) < used, "threads %d, tasks %zu: thread id %d", nt,
                       n, atomic_load(&c.max_thread));
        }
    }
}
END_TEST

typedef struct order_check {
    size_t next;
    int ok;
} order_check;

static void order_task(void *arg, size_t task, int thread)
{
    order_check *o = arg;
    if (task != o->next || thread != 0)
        o->ok = 0;
    o->next++;
}

START_TEST(test_parallel_single_thread_order)
{
    /* One thread (or a request <= 0) runs the tasks in order on the caller. */
    const int req[] = {1, 0, -5};
    for (int k = 0; k < 3; k++) {
        order_check o = {0, 1};
        ck_assert_int_eq(hl_parallel_for(req[k], 500, order_task, &o), 1);
        ck_assert_int_eq(o.ok, 1);
        ck_assert_uint_eq(o.next, 500);
    }
    ck_assert_int_eq(hl_threads_clamp(-3), 1);
    ck_assert_int_eq(hl_threads_clamp(0), 1);
    ck_assert_int_eq(hl_threads_clamp(1), 1);
    ck_assert_int_eq(hl_threads_clamp(17), 17);
    ck_assert_int_eq(hl_threads_clamp(HL_MAX_THREADS), HL_MAX_THREADS);
    ck_assert_int_eq(hl_threads_clamp(HL_MAX_THREADS + 1), HL_MAX_THREADS);
    ck_assert_int_eq(hl_threads_clamp(1 << 30), HL_MAX_THREADS);
    /* A request above the maximum still runs every task once. */
    static par_check c;
    for (size_t t = 0; t < MAX_TASKS; t++)
        atomic_init(&c.runs[t], 0);
    atomic_init(&c.bad_thread, 0);
    atomic_init(&c.max_thread, -1);
    int used = hl_parallel_for(1000, 300, count_task, &c);
    ck_assert_int_le(used, HL_MAX_THREADS);
    for (size_t t = 0; t < 300; t++)
        EXPECT(atomic_load(&c.runs[t]) == 1);
    ck_assert_int_eq(atomic_load(&c.bad_thread), 0);
    ck_assert_int_lt(atomic_load(&c.max_thread), used);
}
END_TEST

typedef struct rendezvous {
    atomic_int arrived;
    atomic_int met;
} rendezvous;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Two tasks wait for each other (up to 5 s): they only meet if they run concurrently. */
static void meet_task(void *arg, size_t task, int thread)
{
    (void)task;
    (void)thread;
    rendezvous *rv = arg;
    atomic_fetch_add(&rv->arrived, 1);
    double t0 = now_s();
    while (atomic_load(&rv->arrived) < 2) {
        if (now_s() - t0 > 5.0)
            return;
    }
    atomic_fetch_add(&rv->met, 1);
}

START_TEST(test_parallel_is_concurrent)
{
    rendezvous rv;
    atomic_init(&rv.arrived, 0);
    atomic_init(&rv.met, 0);
    ck_assert_int_eq(hl_parallel_for(2, 2, meet_task, &rv), 2);
    ck_assert_int_eq(atomic_load(&rv.met), 2);
}
END_TEST

/* All n tasks wait (up to 10 s) until every one of them has started, so they can only all
 * complete on n distinct threads; each records the thread id it ran on. */
typedef struct gather {
    atomic_int arrived;
    int n;
    int thread_of[HL_MAX_THREADS];
    atomic_int timed_out;
} gather;

static void gather_task(void *arg, size_t task, int thread)
{
    gather *g = arg;
    g->thread_of[task] = thread;
    atomic_fetch_add(&g->arrived, 1);
    double t0 = now_s();
    while (atomic_load(&g->arrived) < g->n) {
        if (now_s() - t0 > 10.0) {
            atomic_store(&g->timed_out, 1);
            return;
        }
        sched_yield();
    }
}

START_TEST(test_parallel_thread_ids)
{
    for (int nt = 1; nt <= 8; nt++) {
        gather g;
        atomic_init(&g.arrived, 0);
        atomic_init(&g.timed_out, 0);
        g.n = nt;
        for (int t = 0; t < HL_MAX_THREADS; t++)
            g.thread_of[t] = -1;
        int used = hl_parallel_for(nt, (size_t)nt, gather_task, &g);
        ck_assert_int_eq(used, nt);
        ck_assert_int_eq(atomic_load(&g.timed_out), 0);
        int seen[HL_MAX_THREADS] = {0};
        for (int t = 0; t < nt; t++) {
            ck_assert_msg(g.thread_of[t] >= 0 && g.thread_of[t] < used,
                          "%d threads: task %d ran on thread %d", nt, t, g.thread_of[t]);
            seen[g.thread_of[t]]++;
        }
        for (int t = 0; t < nt; t++)
            ck_assert_int_eq(seen[t], 1);
    }
}
END_TEST

/* -------------------------------------------------------------------- mat */

START_TEST(test_l2norm_rows)
{
    hl_rng r;
    hl_rng_seed(&r, 8);
    for (int rep = 0; rep < 50; rep++) {
        size_t n = 1 + (size_t)hl_rng_below(&r, 40), d = 1 + (size_t)hl_rng_below(&r, 70);
        float *x = malloc(n * d * sizeof(float));
        float *y = malloc(n * d * sizeof(float));
        EXPECT(x && y);
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++) {
            int kind = (int)hl_rng_below(&r, 6);
            double scale = kind == 1 ? 1e-30 : kind == 2 ? 1e30 : kind == 3 ? 1e-42 : 1.0;
            int all_zero = 1;
            for (size_t j = 0; j < d; j++) {
                x[i * d + j] =
                    kind == 0 ? (j % 2 ? 0.0f : -0.0f) : (float)(hl_rng_normal(&r) * scale);
                all_zero &= x[i * d + j] == 0.0f;
            }
            zeros += (size_t)all_zero;
        }
        for (size_t k = 0; k < n * d; k++)
            y[k] = NAN;
        ck_assert_uint_eq(hl_l2norm_rows(x, y, n, d), zeros);
        for (size_t i = 0; i < n; i++) {
            double ss = 0.0, xs = 0.0;
            for (size_t j = 0; j < d; j++) {
                ss += (double)y[i * d + j] * y[i * d + j];
                xs += (double)x[i * d + j] * x[i * d + j];
            }
            if (xs == 0.0) {
                for (size_t j = 0; j < d; j++)
                    EXPECT_MSG(y[i * d + j] == 0.0f, "zero row %zu col %zu: %g", i, j,
                               (double)y[i * d + j]);
            } else {
                EXPECT_MSG(fabs(sqrt(ss) - 1.0) < 1e-5, "row %zu norm %.9g", i, sqrt(ss));
                for (size_t j = 0; j < d; j++)
                    EXPECT(fabs(y[i * d + j] - x[i * d + j] / sqrt(xs)) < 1e-6);
            }
        }
        /* In place gives the same result. */
        ck_assert_uint_eq(hl_l2norm_rows(x, x, n, d), zeros);
        ck_assert_int_eq(memcmp(x, y, n * d * sizeof(float)), 0);
        free(x);
        free(y);
    }
}
END_TEST

START_TEST(test_check_finite)
{
    enum { N = 6, D = 9 };
    float x[N * D];
    for (int i = 0; i < N * D; i++)
        x[i] = (float)i - 20.0f;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_check_finite(x, N, D, &err), HL_OK);
    ck_assert_int_eq(err.code, HL_OK);
    ck_assert_int_eq(hl_check_finite(x, 0, D, &err), HL_OK);
    ck_assert_int_eq(hl_check_finite(x, N, 0, &err), HL_OK);
    x[4 * D + 2] = NAN;
    x[2 * D + 7] = INFINITY; /* earlier in row-major order */
    ck_assert_int_eq(hl_check_finite(x, N, D, &err), HL_NUMERIC);
    ck_assert_int_eq(err.code, HL_NUMERIC);
    ck_assert_str_eq(err.field, "embeddings");
    ck_assert_int_eq(err.has_offset, 1);
    ck_assert_int_eq(err.has_col, 1);
    ck_assert_uint_eq(err.offset, 2);
    ck_assert_uint_eq(err.col, 7);
    ck_assert_ptr_nonnull(strstr(err.msg, "Inf"));
    x[2 * D + 7] = 1.0f;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_check_finite(x, N, D, &err), HL_NUMERIC);
    ck_assert_uint_eq(err.offset, 4);
    ck_assert_uint_eq(err.col, 2);
    ck_assert_ptr_nonnull(strstr(err.msg, "NaN"));
    ck_assert_int_eq(hl_check_finite(x, 4, D, NULL), HL_OK); /* rows 0..3 are finite */
    ck_assert_int_eq(hl_check_finite(x, N, D, NULL), HL_NUMERIC);
    x[4 * D + 2] = 0.0f;
    x[N * D - 1] = -INFINITY;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_check_finite(x, N, D, &err), HL_NUMERIC);
    ck_assert_uint_eq(err.offset, N - 1);
    ck_assert_uint_eq(err.col, D - 1);
    /* Large finite values and subnormals are fine. */
    x[N * D - 1] = 3.4e38f;
    x[0] = 1e-44f;
    ck_assert_int_eq(hl_check_finite(x, N, D, NULL), HL_OK);
}
END_TEST

/* op(A)(i, p): A is m x k (lda) when !ta, or k x m when ta. */
static double mat_at(const float *a, size_t lda, int trans, size_t i, size_t p)
{
    return trans ? (double)a[p * lda + i] : (double)a[i * lda + p];
}

/* Checks C = alpha * op(A) * op(B) + beta * C0 against naive loops, for random shapes,
 * leading dimensions wider than the data, and a few alpha/beta. */
static void check_gemm(int kind)
{
    hl_rng r;
    hl_rng_seed(&r, 100 + (uint64_t)kind);
    const float alphas[] = {1.0f, -0.5f, 2.0f};
    const float betas[] = {0.0f, 1.0f, 0.25f};
    for (int rep = 0; rep < 60; rep++) {
        size_t m = 1 + (size_t)hl_rng_below(&r, 33), n = 1 + (size_t)hl_rng_below(&r, 33);
        size_t k = 1 + (size_t)hl_rng_below(&r, 40);
        int ta = kind == 2, tb = kind == 0; /* nt: B^T; nn: none; tn: A^T */
        size_t arows = ta ? k : m, acols = ta ? m : k;
        size_t brows = tb ? n : k, bcols = tb ? k : n;
        size_t lda = acols + (size_t)hl_rng_below(&r, 4);
        size_t ldb = bcols + (size_t)hl_rng_below(&r, 4);
        size_t ldc = n + (size_t)hl_rng_below(&r, 4);
        float *a = malloc(arows * lda * sizeof(float));
        float *b = malloc(brows * ldb * sizeof(float));
        float *c = malloc(m * ldc * sizeof(float));
        float *c0 = malloc(m * ldc * sizeof(float));
        EXPECT(a && b && c && c0);
        for (size_t i = 0; i < arows * lda; i++)
            a[i] = (float)hl_rng_normal(&r);
        for (size_t i = 0; i < brows * ldb; i++)
            b[i] = (float)hl_rng_normal(&r);
        for (size_t i = 0; i < m * ldc; i++)
            c0[i] = (float)hl_rng_normal(&r);
        memcpy(c, c0, m * ldc * sizeof(float));
        float alpha = alphas[rep % 3], beta = betas[(rep / 3) % 3];
        if (kind == 0)
            hl_gemm_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (kind == 1)
            hl_gemm_nn(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            hl_gemm_tn(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < ldc; j++) {
                float got = c[i * ldc + j];
                if (j >= n) { /* padding columns are untouched */
                    EXPECT(got == c0[i * ldc + j]);
                    continue;
                }
                double acc = 0.0, mag = 0.0;
                for (size_t p = 0; p < k; p++) {
                    double bv = tb ? (double)b[j * ldb + p] : (double)b[p * ldb + j];
                    double t = mat_at(a, lda, ta, i, p) * bv;
                    acc += t;
                    mag += fabs(t);
                }
                double want = alpha * acc + beta * (double)c0[i * ldc + j];
                double tol = 1e-5 * (fabs(alpha) * mag + fabs(beta * c0[i * ldc + j])) + 1e-6;
                EXPECT_MSG(fabs(got - want) <= tol,
                           "kind %d m=%zu n=%zu k=%zu (%zu,%zu): %.9g vs %.9g", kind, m, n, k, i, j,
                           (double)got, want);
            }
        }
        free(a);
        free(b);
        free(c);
        free(c0);
    }
    /* Empty outputs are no-ops. */
    float one = 1.0f, cc = 42.0f;
    if (kind == 0)
        hl_gemm_nt(0, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &cc, 1);
    else if (kind == 1)
        hl_gemm_nn(1, 0, 1, 1.0f, &one, 1, &one, 1, 0.0f, &cc, 1);
    else
        hl_gemm_tn(0, 0, 1, 1.0f, &one, 1, &one, 1, 0.0f, &cc, 1);
    EXPECT(cc == 42.0f);
}

START_TEST(test_gemm_nt)
{
    check_gemm(0);
}
END_TEST

START_TEST(test_gemm_nn)
{
    check_gemm(1);
}
END_TEST

START_TEST(test_gemm_tn)
{
    check_gemm(2);
}
END_TEST

START_TEST(test_dot)
{
    hl_rng r;
    hl_rng_seed(&r, 12);
    float a[300], b[300];
    for (int i = 0; i < 300; i++) {
        a[i] = (float)hl_rng_normal(&r);
        b[i] = (float)hl_rng_normal(&r);
    }
    for (size_t n = 0; n <= 300; n += 23) {
        double want = 0.0, mag = 0.0;
        for (size_t i = 0; i < n; i++) {
            want += (double)a[i] * b[i];
            mag += fabs((double)a[i] * b[i]);
        }
        EXPECT(fabs(hl_dot(a, b, n) - want) <= 1e-5 * mag + 1e-7);
    }
    EXPECT(hl_dot(a, b, 0) == 0.0f);
}
END_TEST

Suite *base_suite(void)
{
    Suite *s = suite_create("base");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, test_status_names);
    tcase_add_test(tc, test_error_first_wins);
    tcase_add_test(tc, test_error_positions);
    tcase_add_test(tc, test_error_truncation);
    tcase_add_test(tc, test_hooks);
    tcase_add_test(tc, test_size_math);
    suite_add_tcase(s, tc);
    tc = tcase_create("arena");
    tcase_add_test(tc, test_arena_alignment);
    tcase_add_test(tc, test_arena_exhaustion);
    tcase_add_test(tc, test_arena_mark_reset_peak);
    tcase_add_test(tc, test_arena_view);
    tcase_add_test(tc, test_arena_array_and_block);
    suite_add_tcase(s, tc);
    tc = tcase_create("rng");
    tcase_add_test(tc, test_rng_known_answers);
    tcase_add_test(tc, test_rng_determinism);
    tcase_add_test(tc, test_rng_below);
    tcase_add_test(tc, test_rng_shuffle);
    tcase_add_test(tc, test_rng_split);
    suite_add_tcase(s, tc);
    tc = tcase_create("parallel");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parallel_every_task_once);
    tcase_add_test(tc, test_parallel_single_thread_order);
    tcase_add_test(tc, test_parallel_is_concurrent);
    tcase_add_test(tc, test_parallel_thread_ids);
    suite_add_tcase(s, tc);
    tc = tcase_create("mat");
    tcase_add_test(tc, test_l2norm_rows);
    tcase_add_test(tc, test_check_finite);
    tcase_add_test(tc, test_gemm_nt);
    tcase_add_test(tc, test_gemm_nn);
    tcase_add_test(tc, test_gemm_tn);
    tcase_add_test(tc, test_dot);
    suite_add_tcase(s, tc);
    return s;
}
