/* test_cache_key.c - cache keys are stable and change with every input that changes work. */
#include "cache_key.h"

#include <check.h>
#include <string.h>

Suite *cache_key_suite(void);

static float x[6 * 4];

static void key(const float *data, size_t n, size_t d, const char *model, uint32_t crc,
                const hl_cluster_params *p, char out[33])
{
    ck_assert_int_eq(srv_cache_key(data, n, d, model, crc, p, out), 0);
    ck_assert_uint_eq(strlen(out), 32);
    ck_assert_uint_eq(strspn(out, "0123456789abcdef"), 32);
}

START_TEST(stable_and_sensitive)
{
    for (int i = 0; i < 24; i++)
        x[i] = (float)i * 0.25f - 2.0f;
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    char base[33], again[33], k[33];
    key(x, 6, 4, "none", 0, &p, base);
    key(x, 6, 4, "none", 0, &p, again);
    ck_assert_str_eq(base, again);
    /* Threads and hooks do not change the result, so not the key either. */
    hl_cluster_params q = p;
    q.n_threads = 7;
    key(x, 6, 4, "none", 0, &q, k);
    ck_assert_str_eq(base, k);
    /* One bit of one value. */
    float y[24];
    memcpy(y, x, sizeof(y));
    uint32_t bits;
    memcpy(&bits, &y[13], 4);
    bits ^= 1u;
    memcpy(&y[13], &bits, 4);
    key(y, 6, 4, "none", 0, &p, k);
    ck_assert_str_ne(base, k);
    /* Same bytes, other shape. */
    key(x, 4, 6, "none", 0, &p, k);
    ck_assert_str_ne(base, k);
    key(x, 6, 4, "universal", 0, &p, k);
    ck_assert_str_ne(base, k);
    key(x, 6, 4, "none", 0x1234, &p, k);
    ck_assert_str_ne(base, k);
    hl_cluster_params v;
    v = p;
    v.k = 11;
    key(x, 6, 4, "none", 0, &v, k);
    ck_assert_str_ne(base, k);
    v = p;
    v.tau = 0.8000001f;
    key(x, 6, 4, "none", 0, &v, k);
    ck_assert_str_ne(base, k);
    v = p;
    v.max_levels = 9;
    key(x, 6, 4, "none", 0, &v, k);
    ck_assert_str_ne(base, k);
    v = p;
    v.early_stop = 0;
    key(x, 6, 4, "none", 0, &v, k);
    ck_assert_str_ne(base, k);
    v = p;
    v.min_cluster_size = 2;
    key(x, 6, 4, "none", 0, &v, k);
    ck_assert_str_ne(base, k);
}
END_TEST

START_TEST(canonical_params)
{
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    char c[160], j[256];
    srv_params_canonical(&p, c, sizeof(c));
    ck_assert_str_eq(c, "k=10;tau=0.800000012;max_levels=10;early_stop=1;min_cluster_size=1;"
                        "knn=auto");
    srv_params_json(&p, j, sizeof(j));
    ck_assert_str_eq(j, "{\"k\":10,\"tau\":0.8,\"max_levels\":10,\"min_cluster_size\":1,"
                        "\"early_stop\":true,\"knn\":\"auto\"}");
    /* The method is part of the key and of the job's params. */
    p.knn = HL_KNN_IVF;
    srv_params_canonical(&p, c, sizeof(c));
    ck_assert_str_eq(c, "k=10;tau=0.800000012;max_levels=10;early_stop=1;min_cluster_size=1;"
                        "knn=ivf");
    srv_params_json(&p, j, sizeof(j));
    ck_assert(strstr(j, "\"knn\":\"ivf\"") != NULL);
    char h1[33], h2[33];
    srv_hash_hex("abc", 3, h1);
    srv_hash_hex("abd", 3, h2);
    ck_assert_str_ne(h1, h2);
}
END_TEST

Suite *cache_key_suite(void)
{
    Suite *s = suite_create("cache_key");
    TCase *tc = tcase_create("cache_key");
    tcase_add_test(tc, stable_and_sensitive);
    tcase_add_test(tc, canonical_params);
    suite_add_tcase(s, tc);
    return s;
}
