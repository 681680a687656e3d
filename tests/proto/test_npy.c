/*
 * test_npy.c - .npy header scanning, decoding, encoding, files. The case folders
 * (tests/proto/cases) are walked by test_cases.c; here are the properties that need code:
 * streaming, zero-copy, exhaustive float16, round trips, NumPy reading our output, I/O errors.
 */
#include "hl/npy.h"

#include "test_util.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A .npy image with a hand-written dict (v1.0 or v2.0), padded to 64 bytes. */
static unsigned char *make_npy(int major, const char *dict, const void *data, size_t n, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hdr = pre + dl + 1;
    hdr += (64 - hdr % 64) % 64;
    unsigned char *b = malloc(hdr + n + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    size_t hl = hdr - pre;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hdr - pre - dl - 1);
    b[hdr - 1] = '\n';
    if (n > 0)
        memcpy(b + hdr, data, n);
    *len = hdr + n;
    return b;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

START_TEST(test_dtype_size)
{
    ck_assert_uint_eq(hl_dtype_size(HL_DT_F32), 4);
    ck_assert_uint_eq(hl_dtype_size(HL_DT_F16), 2);
    ck_assert_uint_eq(hl_dtype_size(HL_DT_I32), 4);
    ck_assert_uint_eq(hl_dtype_size(HL_DT_I64), 8);
}
END_TEST

START_TEST(test_header_len_streaming)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    size_t shape[2] = {2, 3}, len, hl = 99;
    void *buf;
    ck_assert_int_eq(hl_npy_encode_f32(x, 2, shape, &buf, &len), HL_OK);
    hl_error e;
    for (size_t n = 0; n < 10; n++) {
        hl_error_clear(&e);
        ck_assert_int_eq(hl_npy_header_len(buf, n, &hl, &e), HL_BUSY);
        ck_assert_int_eq(e.code, HL_OK); /* BUSY is not an error */
    }
    for (size_t n = 10; n <= len; n++) {
        ck_assert_int_eq(hl_npy_header_len(buf, n, &hl, &e), HL_OK);
        ck_assert_uint_eq(hl, 128);
    }
    ck_assert_int_eq(hl_npy_header_len(NULL, 0, &hl, NULL), HL_BUSY);
    /* v2.0 needs 12 bytes before the length is known. */
    size_t l2;
    unsigned char *v2 =
        make_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", NULL, 0, &l2);
    ck_assert_int_eq(hl_npy_header_len(v2, 11, &hl, NULL), HL_BUSY);
    ck_assert_int_eq(hl_npy_header_len(v2, 12, &hl, NULL), HL_OK);
    ck_assert_uint_eq(hl, l2);
    free(v2);
    /* A wrong first byte is final at once; so is a bad version once 8 bytes are there. */
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_header_len("P", 1, &hl, &e), HL_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "bad magic"));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_header_len("\x93NUMPY\x05\x00", 8, &hl, &e), HL_VERSION);
    ck_assert_ptr_nonnull(strstr(e.msg, "unsupported .npy version 5.0"));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_header_len("\x93NUMPY\x03\x00\xff\xff\xff\xff", 12, &hl, &e),
                     HL_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "exceeds the limit"));
    free(buf);
}
END_TEST

START_TEST(test_parse_header_fields)
{
    size_t len;
    unsigned char *b =
        make_npy(1, "{'shape': (7,5,), 'descr': '<f2', 'fortran_order': False}", NULL, 0, &len);
    hl_npy_header h;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_parse_header(b, len, &h, &e), HL_OK);
    ck_assert_int_eq(h.major, 1);
    ck_assert_int_eq(h.minor, 0);
    ck_assert_int_eq(h.dtype, HL_DT_F16);
    ck_assert_int_eq(h.ndim, 2);
    ck_assert_uint_eq(h.shape[0], 7);
    ck_assert_uint_eq(h.shape[1], 5);
    ck_assert_uint_eq(h.count, 35);
    ck_assert_uint_eq(h.data_offset, len);
    ck_assert_uint_eq(h.data_bytes, 70);
    free(b);
    b = make_npy(1, "{'descr':'<i8','fortran_order':False,'shape':()}", NULL, 0, &len);
    ck_assert_int_eq(hl_npy_parse_header(b, len, &h, &e), HL_OK);
    ck_assert_int_eq(h.ndim, 0);
    ck_assert_uint_eq(h.count, 1);
    ck_assert_uint_eq(h.data_bytes, 8);
    free(b);
    /* The header must be complete even though the data is not checked. */
    b = make_npy(1, "{'descr':'<i8','fortran_order':False,'shape':(3,)}", NULL, 0, &len);
    ck_assert_int_eq(hl_npy_parse_header(b, len - 1, &h, &e), HL_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "truncated .npy header"));
    free(b);
}
END_TEST

START_TEST(test_zero_copy_view_and_copy)
{
    float x[6] = {1.5f, -2, 0, -0.0f, 1e-40f, 3};
    size_t shape[2] = {3, 2}, len;
    void *buf;
    ck_assert_int_eq(hl_npy_encode_f32(x, 2, shape, &buf, &len), HL_OK);
    hl_fmatrix m;
    ck_assert_int_eq(hl_npy_decode_f32(buf, len, &m, NULL), HL_OK);
    ck_assert_ptr_null(m.owned); /* aligned '<f4': a view */
    ck_assert_ptr_eq(m.data, (const float *)((unsigned char *)buf + 128));
    ck_assert_uint_eq(m.rows, 3);
    ck_assert_uint_eq(m.cols, 2);
    ck_assert_mem_eq(m.data, x, sizeof(x));
    hl_fmatrix_free(&m);
    unsigned char *odd = malloc(len + 1);
    memcpy(odd + 1, buf, len);
    ck_assert_int_eq(hl_npy_decode_f32(odd + 1, len, &m, NULL), HL_OK);
    ck_assert_ptr_nonnull(m.owned); /* misaligned: converted into a new buffer */
    ck_assert_ptr_eq(m.data, m.owned);
    ck_assert_mem_eq(m.data, x, sizeof(x));
    hl_fmatrix_free(&m);
    ck_assert_ptr_null(m.data);
    hl_fmatrix_free(NULL);
    free(odd);
    free(buf);
}
END_TEST

/* The value of a finite half, computed independently of the decoder. */
static float half_ref(unsigned h)
{
    unsigned e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp((double)m, -24) : ldexp((double)(1024 + m), (int)e - 25);
    return (float)((h & 0x8000) ? -v : v);
}

START_TEST(test_f16_every_value)
{
    enum { N = 65536 };
    uint16_t *h = malloc(N * 2);
    unsigned char *le = malloc(N * 2);
    size_t n = 0;
    for (unsigned v = 0; v < N; v++) {
        if (((v >> 10) & 31) == 31)
            continue;
        le[2 * n] = (unsigned char)(v & 0xFF);
        le[2 * n + 1] = (unsigned char)(v >> 8);
        h[n++] = (uint16_t)v;
    }
    char dict[128];
    snprintf(dict, sizeof(dict), "{'descr': '<f2', 'fortran_order': False, 'shape': (1, %zu), }",
             n);
    size_t len;
    unsigned char *b = make_npy(1, dict, le, n * 2, &len);
    hl_fmatrix m;
    ck_assert_int_eq(hl_npy_decode_f32(b, len, &m, NULL), HL_OK);
    ck_assert_uint_eq(m.cols, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(bits(m.data[i]) == bits(half_ref(h[i])), "half 0x%04x", (unsigned)h[i]);
    ck_assert_uint_eq(bits(m.data[1]), bits(0x1p-24f)); /* smallest subnormal */
    hl_fmatrix_free(&m);
    free(b);
    /* Every Inf and NaN pattern is refused, with its position. */
    for (unsigned v = 0x7C00; v < 0x10000; v += (v == 0x7FFF ? 0x7C01 : 1)) {
        if (((v >> 10) & 31) != 31)
            continue;
        unsigned char cell[6] = {0, 0, 0, 0, (unsigned char)(v & 0xFF), (unsigned char)(v >> 8)};
        b = make_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 3), }", cell, 6,
                     &len);
        hl_error e;
        hl_error_clear(&e);
        ck_assert_int_eq(hl_npy_decode_f32(b, len, &m, &e), HL_NUMERIC);
        ck_assert_int_eq(e.has_col, 1);
        ck_assert_uint_eq(e.offset, 0);
        ck_assert_uint_eq(e.col, 2);
        ck_assert_ptr_nonnull(strstr(e.msg, (v & 0x3FF)    ? "(NaN)"
                                            : (v & 0x8000) ? "(-Inf)"
                                                           : "(Inf)"));
        free(b);
    }
    free(le);
    free(h);
}
END_TEST

START_TEST(test_nonfinite_position)
{
    float x[12] = {0};
    x[7] = NAN; /* row 1, column 3 of a 3 x 4 matrix */
    size_t shape[2] = {3, 4}, len;
    void *buf;
    ck_assert_int_eq(hl_npy_encode_f32(x, 2, shape, &buf, &len), HL_OK);
    hl_fmatrix m;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_decode_f32(buf, len, &m, &e), HL_NUMERIC);
    ck_assert_int_eq(e.code, HL_NUMERIC);
    ck_assert_uint_eq(e.offset, 1);
    ck_assert_uint_eq(e.col, 3);
    ck_assert_str_eq(e.msg, "non-finite value (NaN) at row 1, column 3");
    ck_assert_ptr_null(m.data);
    free(buf);
}
END_TEST

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A shape with no values decodes at once, however many rows it names (a row-by-row check took
 * ten seconds for (4294967296, 0), found by fuzz_npy); positions of bad values in float16 data
 * still name the row and column. */
START_TEST(test_empty_rows_cost_nothing)
{
    const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 0), }",
        "{'descr': '<f2', 'fortran_order': False, 'shape': (4294967296, 0), }",
    };
    for (size_t k = 0; k < sizeof(dicts) / sizeof(dicts[0]); k++) {
        size_t len;
        unsigned char *b = make_npy(1, dicts[k], NULL, 0, &len);
        hl_fmatrix m;
        hl_error e;
        hl_error_clear(&e);
        double t0 = mono_seconds();
        hl_status st = hl_npy_decode_f32(b, len, &m, &e);
        double took = mono_seconds() - t0;
        ck_assert_msg(took < 1.0, "%s took %.2f s", dicts[k], took);
        ck_assert_int_eq(st, HL_OK);
        ck_assert_uint_eq(m.rows, 4294967296ULL);
        ck_assert_uint_eq(m.cols, 0);
        hl_fmatrix_free(&m);
        free(b);
    }
    uint16_t h[6] = {0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x7e00, 0x3c00}; /* NaN at row 1, col 1 */
    size_t len;
    unsigned char *b = make_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", h,
                                sizeof(h), &len);
    hl_fmatrix m;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_decode_f32(b, len, &m, &e), HL_NUMERIC);
    ck_assert_str_eq(e.msg, "non-finite value (NaN) at row 1, column 1");
    ck_assert_ptr_null(m.data);
    free(b);
}
END_TEST

START_TEST(test_encode_layout_and_roundtrip)
{
    int32_t v[5] = {0, -1, 2147483647, -2147483647 - 1, 42};
    size_t n5 = 5, len;
    void *buf;
    ck_assert_int_eq(hl_npy_encode_i32(v, 1, &n5, &buf, &len), HL_OK);
    static const char want[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<i4', 'fortran_order': "
                               "False, 'shape': (5,), }";
    ck_assert_mem_eq(buf, want, sizeof(want) - 1);
    ck_assert_uint_eq(len, 128 + 20);
    ck_assert_int_eq(((char *)buf)[127], '\n');
    int32_t *out;
    size_t n;
    ck_assert_int_eq(hl_npy_decode_i32(buf, len, &out, &n, NULL), HL_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(out, v, sizeof(v));
    free(out);
    free(buf);
    /* 2-D int32 (the levels x N result) encodes; the 1-D label decoder refuses it. */
    size_t shape2[2] = {1, 5};
    ck_assert_int_eq(hl_npy_encode_i32(v, 2, shape2, &buf, &len), HL_OK);
    hl_npy_header h;
    ck_assert_int_eq(hl_npy_parse_header(buf, len, &h, NULL), HL_OK);
    ck_assert_int_eq(h.ndim, 2);
    ck_assert_int_eq(h.dtype, HL_DT_I32);
    ck_assert_int_eq(hl_npy_decode_i32(buf, len, &out, &n, NULL), HL_FORMAT);
    ck_assert_ptr_null(out);
    free(buf);
    /* Empty arrays encode too. */
    size_t zero[2] = {0, 4};
    ck_assert_int_eq(hl_npy_encode_f32(NULL, 2, zero, &buf, &len), HL_OK);
    ck_assert_uint_eq(len, 128);
    free(buf);
}
END_TEST

START_TEST(test_encode_bad_arguments)
{
    float x[2] = {1, 2};
    size_t shape[3] = {1, 2, 1}, len = 7, huge[2] = {SIZE_MAX / 2, 3};
    void *buf = (void *)1;
    ck_assert_int_eq(hl_npy_encode_f32(x, 0, shape, &buf, &len), HL_INVAL);
    ck_assert_ptr_null(buf);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(hl_npy_encode_f32(x, 3, shape, &buf, &len), HL_INVAL);
    ck_assert_int_eq(hl_npy_encode_f32(x, 2, NULL, &buf, &len), HL_INVAL);
    ck_assert_int_eq(hl_npy_encode_f32(NULL, 2, shape, &buf, &len), HL_INVAL);
    ck_assert_int_eq(hl_npy_encode_i32(NULL, 1, shape, &buf, &len), HL_INVAL);
    ck_assert_int_eq(hl_npy_encode_f32(x, 2, huge, &buf, &len), HL_RANGE);
    ck_assert_ptr_null(buf);
}
END_TEST

static int numpy_available(void)
{
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

START_TEST(test_numpy_reads_our_files)
{
    if (!numpy_available()) {
        fprintf(stderr, "test_numpy_reads_our_files: /usr/bin/python3 has no numpy, skipped\n");
        return;
    }
    char *dir = tu_tmpdir();
    char *pf = tu_path(dir, "f.npy"), *pi = tu_path(dir, "i.npy");
    float x[6] = {0.5f, -1, 3.25f, 1e30f, -0.0f, 7};
    int32_t v[3] = {-5, 0, 2147483647};
    size_t sf[2] = {2, 3}, si = 3;
    ck_assert_int_eq(hl_npy_save_f32(pf, x, 2, sf, NULL), HL_OK);
    ck_assert_int_eq(hl_npy_save_i32(pi, v, 1, &si, NULL), HL_OK);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c \"import numpy as np, sys\n"
             "f = np.load('%s'); i = np.load('%s')\n"
             "ok = f.dtype == np.float32 and f.shape == (2, 3) and f[0, 2] == 3.25 and "
             "f[1, 0] == np.float32(1e30) and i.dtype == np.int32 and i.tolist() == [-5, 0, "
             "2147483647]\n"
             "sys.exit(0 if ok else 3)\"",
             pf, pi);
    ck_assert_int_eq(system(cmd), 0);
    free(pf);
    free(pi);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_save_load_files)
{
    char *dir = tu_tmpdir();
    char *p = tu_path(dir, "x.npy");
    float x[4] = {1, 2, 3, 4};
    size_t shape[2] = {2, 2};
    ck_assert_int_eq(hl_npy_save_f32(p, x, 2, shape, NULL), HL_OK);
    hl_fmatrix m;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_load_f32(p, &m, &e), HL_OK);
    ck_assert_ptr_nonnull(m.owned); /* the loaded matrix always owns its memory */
    ck_assert_mem_eq(m.data, x, sizeof(x));
    hl_fmatrix_free(&m);
    /* Decoding errors name the file. */
    int32_t *lab;
    size_t n;
    ck_assert_int_eq(hl_npy_load_i32(p, &lab, &n, &e), HL_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, p));
    ck_assert_ptr_nonnull(strstr(e.msg, "not an integer type"));
    ck_assert_ptr_null(lab);
    /* I/O errors name the file and the reason. */
    char *missing = tu_path(dir, "missing.npy");
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_load_f32(missing, &m, &e), HL_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, missing));
    ck_assert_ptr_nonnull(strstr(e.msg, "No such file"));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_load_i32(dir, &lab, &n, &e), HL_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "Is a directory"));
    char *nodir = tu_path(dir, "no/such/dir/x.npy");
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_save_f32(nodir, x, 2, shape, &e), HL_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, nodir));
    hl_error_clear(&e);
    ck_assert_int_eq(hl_npy_save_i32(p, NULL, 1, shape, &e), HL_INVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "cannot encode"));
    free(nodir);
    free(missing);
    free(p);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(test_file_write_atomic_and_read)
{
    char *dir = tu_tmpdir();
    char *p = tu_path(dir, "blob");
    size_t n = 3 * 1000 * 1000 + 7; /* several read() calls */
    unsigned char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 31 + 7);
    ck_assert_int_eq(hl_file_write(p, big, n, NULL), HL_OK);
    ck_assert_int_eq(hl_file_write(p, "xy", 2, NULL), HL_OK); /* replaces */
    ck_assert_int_eq(hl_file_write(p, big, n, NULL), HL_OK);
    ck_assert_uint_eq(count_entries(dir), 1); /* no temporary file left behind */
    void *back;
    size_t len;
    ck_assert_int_eq(hl_file_read(p, &back, &len, NULL), HL_OK);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(memcmp(back, big, n), 0);
    free(back);
    ck_assert_int_eq(hl_file_write(p, NULL, 0, NULL), HL_OK);
    ck_assert_int_eq(hl_file_read(p, &back, &len, NULL), HL_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(back);
    free(back);
    /* Files whose size stat() does not know are read to their end. */
    ck_assert_int_eq(hl_file_read("/proc/self/status", &back, &len, NULL), HL_OK);
    ck_assert_uint_gt(len, 100);
    ck_assert_int_eq(memcmp(back, "Name:", 5), 0);
    free(back);
    /* A failed write leaves the old file and no temporary behind. */
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_file_write(dir, "z", 1, &e), HL_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, dir));
    ck_assert_uint_eq(count_entries(dir), 1);
    hl_error_clear(&e);
    ck_assert_int_eq(hl_file_read(NULL, &back, &len, &e), HL_INVAL);
    ck_assert_int_eq(hl_file_write(NULL, "z", 1, NULL), HL_INVAL);
    free(big);
    free(p);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

Suite *npy_suite(void);
Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_test(tc, test_dtype_size);
    tcase_add_test(tc, test_header_len_streaming);
    tcase_add_test(tc, test_parse_header_fields);
    tcase_add_test(tc, test_zero_copy_view_and_copy);
    tcase_add_test(tc, test_f16_every_value);
    tcase_add_test(tc, test_nonfinite_position);
    tcase_add_test(tc, test_empty_rows_cost_nothing);
    tcase_add_test(tc, test_encode_layout_and_roundtrip);
    tcase_add_test(tc, test_encode_bad_arguments);
    tcase_add_test(tc, test_numpy_reads_our_files);
    tcase_add_test(tc, test_save_load_files);
    tcase_add_test(tc, test_file_write_atomic_and_read);
    suite_add_tcase(s, tc);
    return s;
}
