/* test_rawf32.c - raw little-endian float32 rows: views, copies, and every refusal. */
#include "hl/rawf32.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Little-endian bytes of n floats, at buf + off. */
static unsigned char *le_floats(const float *x, size_t n, size_t off, unsigned char **block)
{
    *block = malloc(4 * n + off + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int k = 0; k < 4; k++)
            (*block)[off + 4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    return *block + off;
}

START_TEST(test_view_when_aligned)
{
    float x[6] = {1, -2, 0.5f, 0, -0.0f, 3e-42f};
    unsigned char *block, *p = le_floats(x, 6, 0, &block);
    hl_fmatrix m;
    ck_assert_int_eq(hl_rawf32_decode(p, 24, 3, &m, NULL), HL_OK);
    ck_assert_uint_eq(m.rows, 2);
    ck_assert_uint_eq(m.cols, 3);
    ck_assert_ptr_eq(m.data, (const float *)(void *)p);
    ck_assert_ptr_null(m.owned);
    ck_assert_mem_eq(m.data, x, sizeof(x));
    hl_fmatrix_free(&m);
    free(block);
}
END_TEST

START_TEST(test_copy_when_misaligned)
{
    float x[4] = {1, 2, 3, 4};
    for (size_t off = 1; off < 4; off++) {
        unsigned char *block, *p = le_floats(x, 4, off, &block);
        hl_fmatrix m;
        ck_assert_int_eq(hl_rawf32_decode(p, 16, 1, &m, NULL), HL_OK);
        ck_assert_uint_eq(m.rows, 4);
        ck_assert_ptr_nonnull(m.owned);
        ck_assert_ptr_eq(m.data, m.owned);
        ck_assert_mem_eq(m.data, x, sizeof(x));
        hl_fmatrix_free(&m);
        free(block);
    }
}
END_TEST

START_TEST(test_bad_lengths)
{
    unsigned char z[16] = {0};
    hl_fmatrix m;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_rawf32_decode(z, 16, 0, &m, &e), HL_FORMAT);
    ck_assert_str_eq(e.field, "dim");
    ck_assert_ptr_nonnull(strstr(e.msg, "dim must be at least 1"));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_rawf32_decode(z, 12, 2, &m, &e), HL_FORMAT);
    ck_assert_str_eq(e.field, "dim");
    ck_assert_ptr_nonnull(strstr(e.msg, "12 bytes is not a non-zero multiple of 4 * dim = 8"));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_rawf32_decode(NULL, 0, 2, &m, &e), HL_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "0 bytes"));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_rawf32_decode(z, 16, SIZE_MAX / 2, &m, &e), HL_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "too large"));
    ck_assert_ptr_null(m.data);
}
END_TEST

START_TEST(test_nonfinite_position)
{
    float x[6] = {0, 1, 2, 3, 4, 5};
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const char *name[3] = {"(NaN)", "(Inf)", "(-Inf)"};
    for (int k = 0; k < 3; k++) {
        x[5] = bad[k]; /* row 2, column 1 of 3 x 2 */
        unsigned char *block, *p = le_floats(x, 6, (size_t)k, &block);
        hl_fmatrix m;
        hl_error e;
        hl_error_clear(&e);
        ck_assert_int_eq(hl_rawf32_decode(p, 24, 2, &m, &e), HL_NUMERIC);
        ck_assert_int_eq(e.has_col, 1);
        ck_assert_uint_eq(e.offset, 2);
        ck_assert_uint_eq(e.col, 1);
        ck_assert_ptr_nonnull(strstr(e.msg, name[k]));
        ck_assert_ptr_nonnull(strstr(e.msg, "at row 2, column 1"));
        ck_assert_ptr_null(m.data);
        ck_assert_ptr_null(m.owned);
        free(block);
    }
}
END_TEST

Suite *rawf32_suite(void);
Suite *rawf32_suite(void)
{
    Suite *s = suite_create("rawf32");
    TCase *tc = tcase_create("rawf32");
    tcase_add_test(tc, test_view_when_aligned);
    tcase_add_test(tc, test_copy_when_misaligned);
    tcase_add_test(tc, test_bad_lengths);
    tcase_add_test(tc, test_nonfinite_position);
    suite_add_tcase(s, tc);
    return s;
}
