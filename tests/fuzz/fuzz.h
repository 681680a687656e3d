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
