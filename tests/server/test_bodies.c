/* test_bodies.c - the request-body pool: reuse, the size rule, the byte and slot bounds. */
#include "bodies.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

Suite *bodies_suite(void);

#define MB ((size_t)1 << 20)

START_TEST(reuse_and_size_rule)
{
    srv_bodies *b = srv_bodies_new(64 * MB);
    ck_assert_ptr_nonnull(b);
    size_t cap;
    char *p = srv_bodies_get(b, 10 * MB, &cap);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(cap, 10 * MB);
    memset(p, 7, cap); /* the whole capacity is usable */
    srv_bodies_put(b, p, cap);
    srv_bodies_stats st;
    srv_bodies_get_stats(b, &st);
    ck_assert_uint_eq(st.buffers, 1);
    ck_assert_uint_eq(st.bytes, 10 * MB);
    ck_assert_uint_eq(st.fresh, 1);
    /* Larger than the kept buffer: a new one. */
    size_t cap2;
    char *q = srv_bodies_get(b, 11 * MB, &cap2);
    ck_assert_ptr_ne(q, p);
    ck_assert_uint_eq(cap2, 11 * MB);
    /* Under half of it: a small body does not pin the 10 MB buffer. */
    size_t cap3;
    char *r = srv_bodies_get(b, 4 * MB, &cap3);
    ck_assert_ptr_ne(r, p);
    ck_assert_uint_eq(cap3, 4 * MB);
    /* Between half and all of it: the kept buffer, with its whole capacity. */
    size_t cap4;
    char *s = srv_bodies_get(b, 6 * MB, &cap4);
    ck_assert_ptr_eq(s, p);
    ck_assert_uint_eq(cap4, 10 * MB);
    srv_bodies_get_stats(b, &st);
    ck_assert_uint_eq(st.buffers, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.reused, 1);
    ck_assert_uint_eq(st.fresh, 3);
    srv_bodies_put(b, q, cap2);
    srv_bodies_put(b, r, cap3);
    srv_bodies_put(b, s, cap4);
    srv_bodies_get_stats(b, &st);
    ck_assert_uint_eq(st.buffers, 3);
    ck_assert_uint_eq(st.bytes, 25 * MB);
    /* The smallest buffer that fits is taken. */
    size_t cap5;
    char *t = srv_bodies_get(b, 9 * MB, &cap5);
    ck_assert_uint_eq(cap5, 10 * MB);
    srv_bodies_put(b, t, cap5);
    srv_bodies_free(b); /* frees what it keeps (ASan checks) */
}
END_TEST

START_TEST(bounds)
{
    srv_bodies *b = srv_bodies_new(5 * MB);
    ck_assert_ptr_nonnull(b);
    size_t c1, c2, c3;
    char *p1 = srv_bodies_get(b, 3 * MB, &c1);
    char *p2 = srv_bodies_get(b, 3 * MB, &c2);
    char *p3 = srv_bodies_get(b, 6 * MB, &c3);
    srv_bodies_put(b, p1, c1);
    srv_bodies_put(b, p2, c2); /* 3 + 3 > 5 MB: freed */
    srv_bodies_put(b, p3, c3); /* larger than the whole pool: freed */
    srv_bodies_stats st;
    srv_bodies_get_stats(b, &st);
    ck_assert_uint_eq(st.buffers, 1);
    ck_assert_uint_eq(st.bytes, 3 * MB);
    /* Small buffers are never kept. */
    size_t cs;
    char *small = srv_bodies_get(b, 1000, &cs);
    ck_assert_uint_eq(cs, 1000);
    srv_bodies_put(b, small, cs);
    srv_bodies_get_stats(b, &st);
    ck_assert_uint_eq(st.buffers, 1);
    srv_bodies_free(b);
    /* At most SRV_BODIES_SLOTS buffers, whatever the bytes. */
    b = srv_bodies_new(1024 * MB);
    char *many[SRV_BODIES_SLOTS + 2];
    size_t caps[SRV_BODIES_SLOTS + 2];
    for (int i = 0; i < SRV_BODIES_SLOTS + 2; i++)
        many[i] = srv_bodies_get(b, SRV_BODIES_MIN, &caps[i]);
    for (int i = 0; i < SRV_BODIES_SLOTS + 2; i++)
        srv_bodies_put(b, many[i], caps[i]);
    srv_bodies_get_stats(b, &st);
    ck_assert_uint_eq(st.buffers, SRV_BODIES_SLOTS);
    srv_bodies_free(b);
    /* A pool of 0 bytes keeps nothing; a NULL pool is plain malloc and free. */
    b = srv_bodies_new(0);
    char *z = srv_bodies_get(b, 2 * MB, &cs);
    srv_bodies_put(b, z, cs);
    srv_bodies_get_stats(b, &st);
    ck_assert_uint_eq(st.buffers, 0);
    srv_bodies_free(b);
    z = srv_bodies_get(NULL, 2 * MB, &cs);
    ck_assert_ptr_nonnull(z);
    ck_assert_uint_eq(cs, 2 * MB);
    srv_bodies_put(NULL, z, cs);
    srv_bodies_put(NULL, NULL, 0);
    srv_bodies_get_stats(NULL, &st);
    ck_assert_uint_eq(st.buffers + st.bytes + st.reused + st.fresh, 0);
}
END_TEST

Suite *bodies_suite(void)
{
    Suite *s = suite_create("bodies");
    TCase *tc = tcase_create("bodies");
    tcase_add_test(tc, reuse_and_size_rule);
    tcase_add_test(tc, bounds);
    suite_add_tcase(s, tc);
    return s;
}
