/* test_crc32c.c - CRC-32C test vectors, incremental use, and a bitwise reference. */
#include "hl/crc32c.h"
#include "hl/rng.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The definition, one bit at a time: the reference the tables must agree with. */
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
    }
    return ~c;
}

START_TEST(test_vectors)
{
    unsigned char b[48];
    ck_assert_uint_eq(hl_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(hl_crc32c(0, "", 0), 0u);
    ck_assert_uint_eq(hl_crc32c(0, NULL, 0), 0u);
    ck_assert_uint_eq(hl_crc32c(0, "a", 1), 0xC1D04330u);
    /* RFC 3720 (iSCSI), appendix B.4. */
    memset(b, 0, 32);
    ck_assert_uint_eq(hl_crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xFF, 32);
    ck_assert_uint_eq(hl_crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    ck_assert_uint_eq(hl_crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    ck_assert_uint_eq(hl_crc32c(0, b, 32), 0x113FDB5Cu);
    static const unsigned char iscsi_read[48] = {
        0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(hl_crc32c(0, iscsi_read, 48), 0xD9963A56u);
}
END_TEST

START_TEST(test_incremental_every_split)
{
    const char *s = "The quick brown fox jumps over the lazy dog, twice over.";
    size_t n = strlen(s);
    uint32_t whole = hl_crc32c(0, s, n);
    ck_assert_uint_eq(whole, crc_bitwise(0, (const unsigned char *)s, n));
    for (size_t k = 0; k <= n; k++) {
        uint32_t c = hl_crc32c(0, s, k);
        ck_assert_uint_eq(hl_crc32c(c, s + k, n - k), whole);
    }
}
END_TEST

START_TEST(test_matches_bitwise_any_length_and_alignment)
{
    enum { N = 1100 };
    unsigned char *buf = malloc(N + 8);
    hl_rng r;
    hl_rng_seed(&r, 42);
    for (size_t i = 0; i < N + 8; i++)
        buf[i] = (unsigned char)hl_rng_below(&r, 256);
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len <= N; len += (len < 40 ? 1 : 37)) {
            uint32_t seed = (uint32_t)(off * 2654435761u);
            ck_assert_uint_eq(hl_crc32c(seed, buf + off, len), crc_bitwise(seed, buf + off, len));
        }
    }
    free(buf);
}
END_TEST

Suite *crc32c_suite(void);
Suite *crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("crc32c");
    tcase_add_test(tc, test_vectors);
    tcase_add_test(tc, test_incremental_every_split);
    tcase_add_test(tc, test_matches_bitwise_any_length_and_alignment);
    suite_add_tcase(s, tc);
    return s;
}
