/* test_sha256.c - SHA-256 against the FIPS 180-4 examples (and the NIST short messages). */
#include "sha256.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

Suite *sha256_suite(void);

static void check_hex(const void *msg, size_t len, const char *want)
{
    unsigned char d[32];
    char hex[65];
    srv_sha256(msg, len, d);
    srv_sha256_hex(d, hex);
    ck_assert_str_eq(hex, want);
}

START_TEST(fips_examples)
{
    check_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_hex(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *l896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnop"
        "qklmnopqrlmnopqrsmnopqrstnopqrstu";
    check_hex(l896, strlen(l896),
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

/* One million 'a', fed in uneven pieces so every buffering path runs. */
START_TEST(million_a_in_pieces)
{
    char *a = malloc(1000000);
    ck_assert_ptr_nonnull(a);
    memset(a, 'a', 1000000);
    srv_sha256_ctx c;
    srv_sha256_init(&c);
    size_t off = 0, step = 1;
    while (off < 1000000) {
        size_t n = 1000000 - off < step ? 1000000 - off : step;
        srv_sha256_update(&c, a + off, n);
        off += n;
        step = step * 7 % 131 + 1;
    }
    unsigned char d[32];
    char hex[65];
    srv_sha256_final(&c, d);
    srv_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    check_hex(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}
END_TEST

/* Messages whose padding lands on either side of a block boundary (55, 56, 63, 64 bytes). */
START_TEST(block_boundaries)
{
    char m[64];
    memset(m, 'a', sizeof(m));
    check_hex(m, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check_hex(m, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    check_hex(m, 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
    check_hex(m, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}
END_TEST

Suite *sha256_suite(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("sha256");
    tcase_add_test(tc, fips_examples);
    tcase_add_test(tc, million_a_in_pieces);
    tcase_add_test(tc, block_boundaries);
    suite_add_tcase(s, tc);
    return s;
}
