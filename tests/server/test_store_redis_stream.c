/*
 * test_store_redis_stream.c - the job stream (store_redis.h "the job stream") against a real
 * redis-server on a loopback port: group setup, add/read/ack, XAUTOCLAIM of idle entries
 * only, touch (ownership kept, loss reported), release, and a group lost with its data.
 * A missing redis-server fails the cases (the unchecked fixture aborts); it never skips.
 */
#include "redis_harness.h"
#include "store.h"
#include "store_redis.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

Suite *store_redis_stream_suite(void);

static rh_server g_rh;

static void up(void)
{
    if (rh_start(&g_rh) != 0)
        ck_abort_msg("cannot start redis-server: %s", g_rh.msg);
}

static void down(void)
{
    rh_stop(&g_rh);
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static srv_store *fresh(void)
{
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0);
    srv_store *s = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_store_redis_new(g_rh.url, 3000, 4, &s, &err), HL_OK);
    ck_assert_int_eq(srv_redis_stream_setup(s), HL_OK);
    ck_assert_int_eq(srv_redis_stream_setup(s), HL_OK); /* BUSYGROUP is fine */
    return s;
}

START_TEST(add_read_ack)
{
    srv_store *s = fresh();
    srv_stream_msg m[4];
    size_t n = 9;
    ck_assert_int_eq(srv_redis_stream_read(s, "r1", 4, 10, m, &n), HL_OK);
    ck_assert_uint_eq(n, 0); /* empty: the block ends with nothing */
    ck_assert_int_eq(srv_redis_stream_add(s, "j_one"), HL_OK);
    ck_assert_int_eq(srv_redis_stream_add(s, "j_two"), HL_OK);
    long long len = 0;
    ck_assert_int_eq(srv_redis_stream_length(s, &len), HL_OK);
    ck_assert_int_eq(len, 2);
    ck_assert_int_eq(srv_redis_stream_read(s, "r1", 1, 10, m, &n), HL_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(m[0].job, "j_one");
    srv_stream_msg first = m[0];
    ck_assert_int_eq(srv_redis_stream_read(s, "r2", 4, 10, m, &n), HL_OK);
    ck_assert_uint_eq(n, 1); /* each entry goes to one consumer */
    ck_assert_str_eq(m[0].job, "j_two");
    ck_assert_int_eq(srv_redis_stream_ack(s, first.entry), HL_OK);
    ck_assert_int_eq(srv_redis_stream_ack(s, m[0].entry), HL_OK);
    ck_assert_int_eq(srv_redis_stream_length(s, &len), HL_OK);
    ck_assert_int_eq(len, 0); /* acknowledged entries are deleted */
    s->ops->destroy(s);
}
END_TEST

START_TEST(autoclaim_takes_idle_entries_only)
{
    srv_store *s = fresh();
    srv_stream_msg m[4], got[4];
    size_t n = 0, k = 0;
    ck_assert_int_eq(srv_redis_stream_add(s, "j_a"), HL_OK);
    ck_assert_int_eq(srv_redis_stream_read(s, "dead", 4, 10, m, &n), HL_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(srv_redis_stream_autoclaim(s, "alive", 5000, 4, got, &k), HL_OK);
    ck_assert_uint_eq(k, 0); /* not idle long enough */
    sleep_ms(300);
    ck_assert_int_eq(srv_redis_stream_autoclaim(s, "alive", 200, 4, got, &k), HL_OK);
    ck_assert_uint_eq(k, 1);
    ck_assert_str_eq(got[0].job, "j_a");
    ck_assert_str_eq(got[0].entry, m[0].entry);
    /* The old owner finds out it lost the entry; the new one keeps it. */
    int lost[1] = {-1};
    ck_assert_int_eq(srv_redis_stream_touch(s, "dead", m, 1, lost), HL_OK);
    ck_assert_int_eq(lost[0], 1);
    ck_assert_int_eq(srv_redis_stream_touch(s, "alive", got, 1, lost), HL_OK);
    ck_assert_int_eq(lost[0], 0);
    /* An entry deleted under a pending claim is not handed out again. */
    ck_assert_int_eq(srv_redis_stream_ack(s, got[0].entry), HL_OK);
    sleep_ms(300);
    ck_assert_int_eq(srv_redis_stream_autoclaim(s, "third", 200, 4, got, &k), HL_OK);
    ck_assert_uint_eq(k, 0);
    s->ops->destroy(s);
}
END_TEST

START_TEST(touch_keeps_long_jobs)
{
    srv_store *s = fresh();
    srv_stream_msg m[2], got[2];
    size_t n = 0, k = 0;
    ck_assert_int_eq(srv_redis_stream_add(s, "j_long"), HL_OK);
    ck_assert_int_eq(srv_redis_stream_read(s, "busy", 2, 10, m, &n), HL_OK);
    ck_assert_uint_eq(n, 1);
    for (int i = 0; i < 4; i++) { /* 4 x 150 ms > the 400 ms timeout, refreshed in between */
        sleep_ms(150);
        int lost = -1;
        ck_assert_int_eq(srv_redis_stream_touch(s, "busy", m, 1, &lost), HL_OK);
        ck_assert_int_eq(lost, 0);
        ck_assert_int_eq(srv_redis_stream_autoclaim(s, "thief", 400, 2, got, &k), HL_OK);
        ck_assert_uint_eq(k, 0);
    }
    s->ops->destroy(s);
}
END_TEST

START_TEST(release_hands_back_at_once)
{
    srv_store *s = fresh();
    srv_stream_msg m[2], got[2];
    size_t n = 0, k = 0;
    ck_assert_int_eq(srv_redis_stream_add(s, "j_r"), HL_OK);
    ck_assert_int_eq(srv_redis_stream_read(s, "leaving", 2, 10, m, &n), HL_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(srv_redis_stream_release(s, "other", m[0].entry, 60000), HL_NOTFOUND);
    ck_assert_int_eq(srv_redis_stream_release(s, "leaving", m[0].entry, 60000), HL_OK);
    ck_assert_int_eq(srv_redis_stream_autoclaim(s, "taker", 60000, 2, got, &k), HL_OK);
    ck_assert_uint_eq(k, 1);
    ck_assert_str_eq(got[0].job, "j_r");
    s->ops->destroy(s);
}
END_TEST

START_TEST(lost_group_is_notfound)
{
    srv_store *s = fresh();
    srv_stream_msg m[2];
    size_t n = 0;
    ck_assert_int_eq(rh_command(&g_rh, "FLUSHALL"), 0); /* as after a restart without data */
    ck_assert_int_eq(srv_redis_stream_read(s, "r", 2, 10, m, &n), HL_NOTFOUND);
    ck_assert_int_eq(srv_redis_stream_autoclaim(s, "r", 10, 2, m, &n), HL_NOTFOUND);
    ck_assert_int_eq(srv_redis_stream_setup(s), HL_OK);
    ck_assert_int_eq(srv_redis_stream_add(s, "j_back"), HL_OK);
    ck_assert_int_eq(srv_redis_stream_read(s, "r", 2, 10, m, &n), HL_OK);
    ck_assert_uint_eq(n, 1);
    s->ops->destroy(s);
}
END_TEST

START_TEST(unreachable_is_unavailable)
{
    char url[64];
    int port = rh_free_port();
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    srv_store *s = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(srv_store_redis_new(url, 300, 2, &s, &err), HL_OK);
    srv_stream_msg m[2];
    size_t n = 0;
    long long len = 0;
    int lost = 0;
    ck_assert_int_eq(srv_redis_stream_setup(s), HL_UNAVAILABLE);
    ck_assert_int_eq(srv_redis_stream_add(s, "j"), HL_UNAVAILABLE);
    ck_assert_int_eq(srv_redis_stream_length(s, &len), HL_UNAVAILABLE);
    ck_assert_int_eq(srv_redis_stream_read(s, "r", 2, 10, m, &n), HL_UNAVAILABLE);
    ck_assert_int_eq(srv_redis_stream_autoclaim(s, "r", 10, 2, m, &n), HL_UNAVAILABLE);
    snprintf(m[0].entry, sizeof(m[0].entry), "1-0");
    ck_assert_int_eq(srv_redis_stream_touch(s, "r", m, 1, &lost), HL_UNAVAILABLE);
    ck_assert_int_eq(srv_redis_stream_ack(s, "1-0"), HL_UNAVAILABLE);
    s->ops->destroy(s);
}
END_TEST

Suite *store_redis_stream_suite(void)
{
    Suite *s = suite_create("store_redis_stream");
    TCase *tc = tcase_create("stream");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, up, down);
    tcase_add_test(tc, add_read_ack);
    tcase_add_test(tc, autoclaim_takes_idle_entries_only);
    tcase_add_test(tc, touch_keeps_long_jobs);
    tcase_add_test(tc, release_hands_back_at_once);
    tcase_add_test(tc, lost_group_is_notfound);
    tcase_add_test(tc, unreachable_is_unavailable);
    suite_add_tcase(s, tc);
    return s;
}
