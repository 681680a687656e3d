/*
 * fuzz_statefile.c - the clustering state decoder on arbitrary bytes.
 *
 * As fuzz_modelfile.c, each input is decoded twice: as it is, and with both CRCs recomputed
 * where the (mutated) header says they lie, so mutations reach the header, table and content
 * checks. Whatever decodes must re-encode to a file that decodes to the same state, and a
 * model-free state must take an assignment (and its apply) without a crash: the engine relies
 * on hl_assign_state_check() alone.
 */
#include "hl/assign.h"
#include "hl/statefile.h"

#include "fuzz.h"
#include "fuzz_assign.h"
#include "statefile_crc.h"

static void check_roundtrip(const hl_assign_state *s)
{
    void *enc, *enc2;
    size_t len, len2;
    hl_assign_state *t;
    FUZZ_CHECK(hl_statefile_encode(s, &enc, &len, NULL, NULL) == HL_OK);
    FUZZ_CHECK(hl_statefile_decode(enc, len, &t, NULL) == HL_OK);
    FUZZ_CHECK(hl_statefile_encode(t, &enc2, &len2, NULL, NULL) == HL_OK);
    FUZZ_CHECK(len == len2 && memcmp(enc, enc2, len) == 0);
    hl_assign_state_free(t);
    free(enc);
    free(enc2);
}

/* Three new points: copies of stored points and one far away. */
static void check_assign(hl_assign_state *s)
{
    hl_assignment *a;
    if (fuzz_assign_three(s, &a)) {
        FUZZ_CHECK(hl_assign_apply(s, a, NULL) == HL_OK);
        FUZZ_CHECK(hl_assign_state_check(s, NULL) == HL_OK);
    }
    hl_assignment_free(a);
}

static void decode(const uint8_t *data, size_t size)
{
    hl_assign_state *s = NULL;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_decode(data, size, &s, &e);
    fuzz_check_error(st, &e);
    fuzz_check_printable(e.msg);
    fuzz_check_printable(e.field);
    FUZZ_CHECK((st == HL_OK) == (s != NULL));
    if (s != NULL) {
        check_roundtrip(s);
        check_assign(s);
    }
    hl_assign_state_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(data, size);
    uint8_t *copy = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    if (tu_statefile_fix_crcs(copy, size))
        decode(copy, size);
    free(copy);
    return 0;
}
