/*
 * test_oom.c - fails every allocation of the decoders and encoders in turn (jansson's
 * test_chaos, SQLite's memfault): each must return HL_NOMEM and leak nothing, and once the
 * walk runs past the last allocation the call must succeed.
 *
 * This binary alone is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (see
 * CMakeLists.txt), which routes the allocations of everything linked statically (hl_proto,
 * hl_core, this file) through the wrappers below; libc and libcheck are unaffected.
 */
#include "hl/assign.h"
#include "hl/file.h"
#include "hl/json_codec.h"
#include "hl/modelfile.h"
#include "hl/npy.h"
#include "hl/rawf32.h"
#include "hl/statefile.h"

#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static long fail_at; /* 0: never; k: the k-th allocation after arming fails */
static long n_allocs;

static int should_fail(void)
{
    if (fail_at == 0)
        return 0;
    return ++n_allocs == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

/* Check allocates inside its assertions, so operations only record whether their hl_error
 * agreed with their status; walk() asserts once the failure injection is disarmed. */
static int error_mismatch;

static void note_error(const hl_error *e, hl_status st)
{
    if (e->code != st)
        error_mismatch = 1;
}

/* An operation under test: runs once, frees what it made, returns its status. */
typedef hl_status (*op_fn)(const void *ud);

/* Fails allocation 1, 2, ... of op until op no longer reaches the failing allocation. Each
 * failure must give HL_NOMEM (or HL_OK where `best_effort` allows a skipped step). */
static void walk(const char *what, op_fn op, const void *ud, int best_effort)
{
    long k;
    for (k = 1;; k++) {
        n_allocs = 0;
        error_mismatch = 0;
        fail_at = k;
        hl_status st = op(ud);
        long used = n_allocs;
        fail_at = 0;
        ck_assert_msg(!error_mismatch, "%s: allocation %ld: hl_error disagrees with %s", what, k,
                      hl_status_name(st));
        if (used < k) {
            ck_assert_msg(st == HL_OK, "%s: %s without a failure", what, hl_status_name(st));
            break;
        }
        ck_assert_msg(st == HL_NOMEM || (best_effort && st == HL_OK),
                      "%s: allocation %ld failed, got %s", what, k, hl_status_name(st));
    }
    ck_assert_msg(k > 1, "%s: made no allocation", what);
}

typedef struct blob {
    const unsigned char *p;
    size_t n;
    const char *path;
} blob;

static hl_status op_decode_f32(const void *ud)
{
    const blob *b = ud;
    hl_fmatrix m;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_npy_decode_f32(b->p, b->n, &m, &e);
    note_error(&e, st);
    hl_fmatrix_free(&m);
    return st;
}

static hl_status op_decode_i32(const void *ud)
{
    const blob *b = ud;
    int32_t *v;
    size_t n;
    hl_status st = hl_npy_decode_i32(b->p, b->n, &v, &n, NULL);
    free(v);
    return st;
}

static hl_status op_load_f32(const void *ud)
{
    const blob *b = ud;
    hl_fmatrix m;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_npy_load_f32(b->path, &m, &e);
    note_error(&e, st);
    hl_fmatrix_free(&m);
    return st;
}

static hl_status op_load_i32(const void *ud)
{
    const blob *b = ud;
    int32_t *v;
    size_t n;
    hl_status st = hl_npy_load_i32(b->path, &v, &n, NULL);
    free(v);
    return st;
}

static hl_status op_encode_f32(const void *ud)
{
    (void)ud;
    float x[4] = {1, 2, 3, 4};
    size_t shape[2] = {2, 2}, len;
    void *out;
    hl_status st = hl_npy_encode_f32(x, 2, shape, &out, &len);
    free(out);
    return st;
}

static hl_status op_encode_i32(const void *ud)
{
    (void)ud;
    int32_t x[3] = {1, 2, 3};
    size_t n = 3, len;
    void *out;
    hl_status st = hl_npy_encode_i32(x, 1, &n, &out, &len);
    free(out);
    return st;
}

static hl_status op_raw(const void *ud)
{
    const blob *b = ud;
    hl_fmatrix m;
    hl_status st = hl_rawf32_decode(b->p, b->n, 2, &m, NULL);
    hl_fmatrix_free(&m);
    return st;
}

static hl_status op_file_read(const void *ud)
{
    const blob *b = ud;
    void *p;
    size_t n;
    hl_status st = hl_file_read(b->path, &p, &n, NULL);
    free(p);
    return st;
}

static hl_status op_model_decode(const void *ud)
{
    const blob *b = ud;
    hl_model *m;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_modelfile_decode(b->p, b->n, &m, NULL, &e);
    note_error(&e, st);
    hl_model_free(m);
    return st;
}

static hl_status op_model_load(const void *ud)
{
    const blob *b = ud;
    hl_model *m;
    hl_status st = hl_modelfile_load(b->path, &m, NULL, NULL);
    hl_model_free(m);
    return st;
}

static hl_status op_model_encode(const void *ud)
{
    void *out;
    size_t len;
    hl_status st = hl_modelfile_encode(ud, &out, &len);
    free(out);
    return st;
}

static hl_status op_model_save(const void *ud)
{
    const blob *b = ud;
    hl_model *m;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_modelfile_decode(b->p, b->n, &m, NULL, NULL);
    if (st != HL_OK)
        return st;
    st = hl_modelfile_save(m, b->path, &e);
    note_error(&e, st);
    hl_model_free(m);
    return st;
}

static hl_status op_json(const void *ud)
{
    const blob *b = ud;
    hl_cluster_request r;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_json_request_decode(b->p, b->n, NULL, &r, &e);
    note_error(&e, st);
    hl_cluster_request_free(&r);
    return st;
}

START_TEST(test_json_oom)
{
    /* 2 x 512 values fill the first buffer exactly, so there is no final shrink. */
    size_t cap = 16384, n = 0;
    char *b = malloc(cap);
    n += (size_t)snprintf(b, cap, "{\"ids\": [\"a\", \"b\"], \"embeddings\": [");
    for (int row = 0; row < 2; row++) {
        b[n++] = '[';
        for (int j = 0; j < 512; j++)
            n += (size_t)snprintf(b + n, cap - n, "%d.5%s", j, j < 511 ? "," : "]");
        b[n++] = row == 0 ? ',' : ']';
    }
    n += (size_t)snprintf(b + n, cap - n,
                          ", \"labels\": [1, 2], \"model\": \"m\", \"params\": {\"k\": 5}}");
    blob full = {(const unsigned char *)b, n, NULL};
    walk("json request", op_json, &full, 0);
    /* 3 x 3 values: the buffer is shrunk at the end, which may fail harmlessly. */
    const char *small = "{\"embeddings\": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}";
    blob sm = {(const unsigned char *)small, strlen(small), NULL};
    walk("json request (shrink)", op_json, &sm, 1);
    free(b);
}
END_TEST

START_TEST(test_npy_oom)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    size_t shape[2] = {3, 2}, len;
    void *enc;
    ck_assert_int_eq(hl_npy_encode_f32(x, 2, shape, &enc, &len), HL_OK);
    unsigned char *odd = malloc(len + 1);
    memcpy(odd + 1, enc, len);
    blob misaligned = {odd + 1, len, NULL};
    walk("decode f32 (misaligned copy)", op_decode_f32, &misaligned, 0);
    /* float16 always converts */
    void *f16;
    size_t f16_len;
    ck_assert_int_eq(
        hl_file_read(HL_TEST_DATA "/proto/cases/valid/f16_special/input.npy", &f16, &f16_len, NULL),
        HL_OK);
    blob half = {f16, f16_len, NULL};
    walk("decode f16", op_decode_f32, &half, 0);
    int32_t v[3] = {7, 8, 9};
    size_t n = 3, ilen;
    void *ienc;
    ck_assert_int_eq(hl_npy_encode_i32(v, 1, &n, &ienc, &ilen), HL_OK);
    blob labels = {ienc, ilen, NULL};
    walk("decode i32", op_decode_i32, &labels, 0);
    walk("encode f32", op_encode_f32, NULL, 0);
    walk("encode i32", op_encode_i32, NULL, 0);
    blob raw = {odd + 1, 16, NULL};
    walk("rawf32 (misaligned copy)", op_raw, &raw, 0);

    char *dir = tu_tmpdir();
    char *pf = tu_path(dir, "f.npy"), *pi = tu_path(dir, "i.npy");
    ck_assert_int_eq(hl_file_write(pf, enc, len, NULL), HL_OK);
    ck_assert_int_eq(hl_file_write(pi, ienc, ilen, NULL), HL_OK);
    blob ff = {NULL, 0, pf}, fi = {NULL, 0, pi}, proc = {NULL, 0, "/proc/self/status"};
    walk("load f32", op_load_f32, &ff, 0);
    walk("load i32", op_load_i32, &fi, 0);
    walk("read a file of unknown size", op_file_read, &proc, 0);
    free(pf);
    free(pi);
    tu_rmtree(dir);
    free(dir);
    free(ienc);
    free(f16);
    free(odd);
    free(enc);
}
END_TEST

START_TEST(test_modelfile_oom)
{
    hl_model_config c;
    hl_model_config_default(&c, HL_MODEL_UNIVERSAL, 0);
    c.in_features = 4;
    c.edge_features = 2;
    c.hidden = 6;
    c.n_conv = 2;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&c, NULL, &m), HL_OK);
    hl_model_init_params(m, 11);
    void *enc;
    size_t len;
    ck_assert_int_eq(hl_modelfile_encode(m, &enc, &len), HL_OK);
    walk("model encode", op_model_encode, m, 0);
    char *dir = tu_tmpdir();
    char *p = tu_path(dir, "m.hlm");
    blob b = {enc, len, p};
    walk("model decode", op_model_decode, &b, 0);
    /* Saving fsyncs the directory when it can get its name: skipping that is allowed. */
    walk("model save", op_model_save, &b, 1);
    walk("model load", op_model_load, &b, 0);
    free(p);
    tu_rmtree(dir);
    free(dir);
    free(enc);
    hl_model_free(m);
}
END_TEST

static hl_status op_state_decode(const void *ud)
{
    const blob *b = ud;
    hl_assign_state *s;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_decode(b->p, b->n, &s, &e);
    note_error(&e, st);
    hl_assign_state_free(s);
    return st;
}

static hl_status op_state_encode(const void *ud)
{
    void *out;
    size_t len;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_encode(ud, &out, &len, NULL, &e);
    note_error(&e, st);
    free(out);
    return st;
}

static hl_status op_state_load(const void *ud)
{
    const blob *b = ud;
    hl_assign_state *s;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_load(b->path, &s, &e);
    note_error(&e, st);
    hl_assign_state_free(s);
    return st;
}

/* Data for the clustering and assignment walks. */
typedef struct assign_case {
    const float *x, *y;
    size_t n, ny, d;
    const hl_model *m;
    const blob *state; /* encoded state of x */
} assign_case;

static hl_status op_cluster_state(const void *ud)
{
    const assign_case *a = ud;
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.3f;
    hl_clustering *c;
    hl_assign_state *s;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_cluster_run_state(a->x, a->n, a->d, a->m, 1, &p, &c, &s, &e);
    note_error(&e, st);
    hl_clustering_free(c);
    hl_assign_state_free(s);
    return st;
}

/* Assign and apply to a decoded copy: a failed apply leaves the state as it was. */
static hl_status op_assign_apply(const void *ud)
{
    const assign_case *a = ud;
    hl_assign_state *s;
    hl_status st = hl_statefile_decode(a->state->p, a->state->n, &s, NULL);
    if (st != HL_OK)
        return st;
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.model_checksum = 1;
    ap.n_threads = 2;
    hl_assignment *as = NULL;
    hl_error e;
    hl_error_clear(&e);
    size_t before = s->n;
    st = hl_assign_run(s, a->m, a->y, a->ny, a->d, &ap, &as, &e);
    note_error(&e, st);
    if (st == HL_OK) {
        hl_error_clear(&e);
        st = hl_assign_apply(s, as, &e);
        note_error(&e, st);
        if (st != HL_OK && (s->n != before || hl_assign_state_check(s, NULL) != HL_OK))
            error_mismatch = 1;
    }
    hl_assignment_free(as);
    hl_assign_state_free(s);
    return st;
}

START_TEST(test_statefile_oom)
{
    size_t n = 120, ny = 40, d = 5;
    float *x = tu_randn(n + ny, d, 8);
    hl_model_config c;
    hl_model_config_default(&c, HL_MODEL_LANDER, (int32_t)d);
    c.hidden = 6;
    c.n_conv = 2;
    c.in_features = 2 * (int32_t)d + 16;
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&c, NULL, &m), HL_OK);
    hl_model_init_params(m, 5);
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    p.tau = 0.3f;
    hl_clustering *cl;
    hl_assign_state *s;
    ck_assert_int_eq(hl_cluster_run_state(x, n, d, m, 1, &p, &cl, &s, NULL), HL_OK);
    void *enc;
    size_t len;
    ck_assert_int_eq(hl_statefile_encode(s, &enc, &len, NULL, NULL), HL_OK);
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "s.hls");
    ck_assert_int_eq(hl_file_write(path, enc, len, NULL), HL_OK);
    blob b = {enc, len, path};
    walk("state decode", op_state_decode, &b, 0);
    walk("state encode", op_state_encode, s, 0);
    walk("state load", op_state_load, &b, 0);
    assign_case ac = {x, x + n * d, n, ny, d, m, &b};
    walk("cluster with state", op_cluster_state, &ac, 0);
    walk("assign and apply", op_assign_apply, &ac, 0);
    free(path);
    tu_rmtree(dir);
    free(dir);
    free(enc);
    hl_assign_state_free(s);
    hl_clustering_free(cl);
    hl_model_free(m);
    free(x);
}
END_TEST

Suite *oom_suite(void);
Suite *oom_suite(void)
{
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("oom");
    tcase_add_test(tc, test_npy_oom);
    tcase_add_test(tc, test_modelfile_oom);
    tcase_add_test(tc, test_json_oom);
    tcase_add_test(tc, test_statefile_oom);
    suite_add_tcase(s, tc);
    return s;
}
