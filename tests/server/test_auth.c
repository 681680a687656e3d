/* test_auth.c - the API key file, the Bearer check and the per-key token bucket. */
#include "auth.h"
#include "log.h"
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

Suite *auth_suite(void);

static char *g_dir;

static char *write_keys(const char *text)
{
    char *p = tu_path(g_dir, "keys");
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void setup(void)
{
    g_dir = tu_tmpdir();
}

static void teardown(void)
{
    tu_rmtree(g_dir);
    free(g_dir);
}

/* A file of two keys made with the same code as --hash-key. */
static srv_auth *two_keys(int rate)
{
    char a[128], b[128], text[300];
    ck_assert_int_eq(srv_auth_hash_line("alice", "alice-key-0123456789", a, sizeof(a)), HL_OK);
    ck_assert_int_eq(srv_auth_hash_line("bob.ci", "bob-key-abcdefghijkl==", b, sizeof(b)), HL_OK);
    snprintf(text, sizeof(text), "# keys\n\n%s\n%s\r\n", a, b);
    char *p = write_keys(text);
    srv_auth *auth = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_auth_load(p, rate, &auth, &err), HL_OK);
    free(p);
    ck_assert_uint_eq(srv_auth_count(auth), 2);
    return auth;
}

START_TEST(hash_line_format)
{
    char line[128];
    /* SHA-256("0123456789abcdef") */
    ck_assert_int_eq(srv_auth_hash_line("k1", "0123456789abcdef", line, sizeof(line)), HL_OK);
    ck_assert_str_eq(line,
                     "k1 sha256:9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f");
    ck_assert_int_eq(srv_auth_hash_line("k1", "short", line, sizeof(line)), HL_INVAL);
    ck_assert_int_eq(srv_auth_hash_line("k1", "has a space in it!!", line, sizeof(line)), HL_INVAL);
    ck_assert_int_eq(srv_auth_hash_line("bad name", "0123456789abcdef", line, sizeof(line)),
                     HL_INVAL);
}
END_TEST

START_TEST(bearer_check)
{
    srv_auth *a = two_keys(0);
    char name[64];
    ck_assert_int_eq(srv_auth_check(a, "Bearer alice-key-0123456789", name), 1);
    ck_assert_str_eq(name, "alice");
    ck_assert_int_eq(srv_auth_check(a, "bearer bob-key-abcdefghijkl==", name), 1);
    ck_assert_str_eq(name, "bob.ci");
    ck_assert_int_eq(srv_auth_check(a, NULL, name), 0);
    ck_assert_str_eq(name, "");
    ck_assert_int_eq(srv_auth_check(a, "Bearer alice-key-0123456788", name), 0);
    ck_assert_int_eq(srv_auth_check(a, "Bearer alice-key-012345678", name), 0);
    ck_assert_int_eq(srv_auth_check(a, "Basic YWxpY2U6eA==", name), 0);
    ck_assert_int_eq(srv_auth_check(a, "Bearer ", name), 0);
    ck_assert_int_eq(srv_auth_check(a, "Bearer alice-key 0123456789", name), 0);
    ck_assert_int_eq(srv_auth_check(NULL, "Bearer alice-key-0123456789", name), 0);
    srv_auth_free(a);
}
END_TEST

START_TEST(bad_files_name_the_line)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"alice sha256:00\n", "keys:1: the hash must be 64"},
        {"# c\nalice md5:0123\n", "keys:2: the hash must start with 'sha256:'"},
        {"alice\n", "keys:1: expected 'NAME sha256:HEX'"},
        {"b@d sha256:9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f\n",
         "keys:1: the name"},
        {"a sha256:9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f\n"
         "a sha256:9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929e\n",
         "keys:2: the name 'a' is used twice"},
        {"a sha256:9F9F5111F7B27A781F1F1DDDE5EBC2DD2B796BFC7365C9C28B548E564176929F\n",
         "keys:1: the hash must be 64 lower-case"},
        {"# nothing\n\n", "no keys"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = write_keys(cases[i].text);
        srv_auth *a = NULL;
        hl_error err;
        hl_error_clear(&err);
        ck_assert_int_ne(srv_auth_load(p, 0, &a, &err), HL_OK);
        ck_assert_ptr_null(a);
        ck_assert_msg(strstr(err.msg, cases[i].want) != NULL, "case %zu: '%s' lacks '%s'", i,
                      err.msg, cases[i].want);
        ck_assert_ptr_null(strstr(err.msg, "9f9f")); /* never a hash in a message */
        free(p);
    }
    srv_auth *a = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_auth_load("/nonexistent/keys", 0, &a, &err), HL_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/keys"));
}
END_TEST

START_TEST(rate_bucket)
{
    srv_auth *a = two_keys(3);
    int retry = -1;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(srv_auth_rate(a, "alice", &retry), 1);
    ck_assert_int_eq(srv_auth_rate(a, "alice", &retry), 0);
    ck_assert_int_ge(retry, 1);
    ck_assert_int_eq(srv_auth_rate(a, "bob.ci", &retry), 1); /* per key */
    struct timespec t = {0, 400000000L};                     /* 0.4 s: more than one token back */
    nanosleep(&t, NULL);
    ck_assert_int_eq(srv_auth_rate(a, "alice", &retry), 1);
    srv_auth_free(a);
    a = two_keys(0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(srv_auth_rate(a, "alice", &retry), 1);
    srv_auth_free(a);
}
END_TEST

Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, hash_line_format);
    tcase_add_test(tc, bearer_check);
    tcase_add_test(tc, bad_files_name_the_line);
    tcase_add_test(tc, rate_bucket);
    suite_add_tcase(s, tc);
    return s;
}
