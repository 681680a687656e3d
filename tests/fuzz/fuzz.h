/* fuzz.h - shared by the fuzz targets and the corpus replayer. */
#ifndef HL_FUZZ_H
#define HL_FUZZ_H

#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** The libFuzzer entry point every target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant must crash, so the fuzzer records the input. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A failing call must report the same code in its hl_error with a one-line message. */
static inline void fuzz_check_error(hl_status st, const hl_error *e)
{
    if (st == HL_OK)
        return;
    FUZZ_CHECK(e->code == st);
    FUZZ_CHECK(e->msg[0] != '\0');
    FUZZ_CHECK(strchr(e->msg, '\n') == NULL);
}

/* Error fields and messages end up in problem+json: they must be valid UTF-8 without control
 * characters (RFC 3629 rules: no overlongs, surrogates or code points past U+10FFFF). */
static inline void fuzz_check_printable(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u != 0) {
        unsigned c = *u, cp, min, n;
        FUZZ_CHECK(c >= 0x20 && c != 0x7F);
        if (c < 0x80) {
            u++;
            continue;
        }
        n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        min = n == 4 ? 0x10000 : n == 3 ? 0x800 : 0x80;
        FUZZ_CHECK(c >= 0xC2 && c <= 0xF4);
        cp = c & (0x7Fu >> n);
        for (unsigned i = 1; i < n; i++) {
            FUZZ_CHECK((u[i] & 0xC0u) == 0x80u);
            cp = cp << 6 | (u[i] & 0x3Fu);
        }
        FUZZ_CHECK(cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF));
        u += n;
    }
}

/* A copy of the input at an address that is 1 mod 4, to exercise the unaligned paths. */
static inline uint8_t *fuzz_misaligned_copy(const uint8_t *data, size_t size, uint8_t **block)
{
    *block = malloc(size + 1);
    FUZZ_CHECK(*block != NULL);
    if (size > 0)
        memcpy(*block + 1, data, size);
    return *block + 1;
}

#endif
