/* test_jobspec.c - a job's input blob (jobspec.h): round trips with and without ids and true
 * labels, and every truncation or bad header is HL_FORMAT (never a crash). */
#include "jobspec.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

Suite *jobspec_suite(void);

static srv_model g_model = {.name = "none", .m = NULL, .checksum = 0x1234abcd};

static srv_job *make_job(int with_ids, int with_labels)
{
    srv_job *j = NULL;
    ck_assert_int_eq(srv_job_new(&j), HL_OK);
    size_t n = 5, d = 3;
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)i * 0.5f - 2.0f;
    j->x.data = x;
    j->x.owned = x;
    j->x.rows = n;
    j->x.cols = d;
    j->model = &g_model;
    hl_cluster_params_default(&j->params);
    j->params.k = 4;
    j->params.tau = 0.625f;
    j->params.max_levels = 3;
    j->params.min_cluster_size = 2;
    j->params.early_stop = 0;
    strcpy(j->cache_key, "0123456789abcdef0123456789abcdef");
    strcpy(j->cache_src, "j_src");
    strcpy(j->request_id, "req-1");
    if (with_labels) {
        j->labels = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++)
            j->labels[i] = (int32_t)(i % 2);
    }
    if (with_ids) { /* one block: the pointers, then the strings */
        static const char *names[] = {"a", "bb", "", "dddd", "e"};
        char **v = malloc(n * sizeof(char *) + 64);
        char *p = (char *)(v + n);
        for (size_t i = 0; i < n; i++) {
            strcpy(p, names[i]);
            v[i] = p;
            p += strlen(names[i]) + 1;
        }
        j->ids = v;
    }
    return j;
}

static void roundtrip(int with_ids, int with_labels)
{
    srv_job *a = make_job(with_ids, with_labels), *b = NULL;
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(srv_jobspec_encode(a, &buf, &len), HL_OK);
    ck_assert_int_eq(srv_job_new(&b), HL_OK);
    char model[64];
    uint32_t sum = 0;
    ck_assert_int_eq(srv_jobspec_decode(buf, len, b, model, &sum), HL_OK);
    ck_assert_str_eq(model, "none");
    ck_assert_uint_eq(sum, 0x1234abcd);
    ck_assert_uint_eq(b->x.rows, 5);
    ck_assert_uint_eq(b->x.cols, 3);
    ck_assert_mem_eq(b->x.data, a->x.data, 15 * sizeof(float));
    ck_assert_int_eq(b->params.k, 4);
    ck_assert_float_eq(b->params.tau, 0.625f);
    ck_assert_int_eq(b->params.max_levels, 3);
    ck_assert_int_eq(b->params.min_cluster_size, 2);
    ck_assert_int_eq(b->params.early_stop, 0);
    ck_assert_str_eq(b->cache_key, a->cache_key);
    ck_assert_str_eq(b->cache_src, "j_src");
    ck_assert_str_eq(b->request_id, "req-1");
    ck_assert_int_eq(b->labels != NULL, with_labels);
    if (with_labels)
        ck_assert_mem_eq(b->labels, a->labels, 5 * sizeof(int32_t));
    ck_assert_int_eq(b->ids != NULL, with_ids);
    for (size_t i = 0; with_ids && i < 5; i++)
        ck_assert_str_eq(b->ids[i], a->ids[i]);
    srv_job_release(a);
    srv_job_release(b); /* frees the blob it took over */
}

START_TEST(roundtrips)
{
    roundtrip(0, 0);
    roundtrip(1, 0);
    roundtrip(0, 1);
    roundtrip(1, 1);
}
END_TEST

START_TEST(damage_is_format)
{
    srv_job *a = make_job(1, 1);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(srv_jobspec_encode(a, &buf, &len), HL_OK);
    char model[64];
    uint32_t sum;
    for (size_t cut = 0; cut < len; cut += (cut < SRV_JOBSPEC_HEADER ? 37 : 1)) {
        void *copy = malloc(cut > 0 ? cut : 1);
        memcpy(copy, buf, cut);
        srv_job *b = NULL;
        ck_assert_int_eq(srv_job_new(&b), HL_OK);
        ck_assert_int_eq(srv_jobspec_decode(copy, cut, b, model, &sum), HL_FORMAT);
        srv_job_release(b);
    }
    static const size_t offsets[] = {0, 4, 8, 16}; /* magic, flags, rows, cols */
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, buf, len);
        copy[offsets[i]] ^= 0x5a;
        srv_job *b = NULL;
        ck_assert_int_eq(srv_job_new(&b), HL_OK);
        ck_assert_int_eq(srv_jobspec_decode(copy, len, b, model, &sum), HL_FORMAT);
        srv_job_release(b);
    }
    /* Ids that do not add up to n strings. */
    unsigned char *copy = malloc(len);
    memcpy(copy, buf, len);
    memset(copy + len - 8, 'x', 8);
    srv_job *b = NULL;
    ck_assert_int_eq(srv_job_new(&b), HL_OK);
    ck_assert_int_eq(srv_jobspec_decode(copy, len, b, model, &sum), HL_FORMAT);
    srv_job_release(b);
    free(buf);
    srv_job_release(a);
}
END_TEST

Suite *jobspec_suite(void)
{
    Suite *s = suite_create("jobspec");
    TCase *tc = tcase_create("jobspec");
    tcase_add_test(tc, roundtrips);
    tcase_add_test(tc, damage_is_format);
    suite_add_tcase(s, tc);
    return s;
}
