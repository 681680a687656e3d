/*
 * fuzz_statechain.c - the state delta decoder (hl_statefile_decode_chain: a base state file
 * and its "HLSD" deltas) on arbitrary bytes.
 *
 * An input is a base followed by its deltas: it is cut before every "HLSD" (the delta magic)
 * after its first byte, into at most MAX_DELTAS deltas (the rest stays in the last one). As in
 * fuzz_statefile.c, each input is decoded twice: as it is, and with every CRC recomputed where
 * the (mutated) headers say it lies, so mutations reach the checks behind the checksums.
 * Invariants:
 *   - a failure fills hl_error with the same code and a one-line printable message; a chain
 *     whose base fails fails exactly as hl_statefile_decode() of the base, and any other
 *     failure names a delta;
 *   - a chain without deltas is hl_statefile_decode() of its base;
 *   - deltas compose: the decoded chain equals its base plus the single delta that
 *     hl_statefile_delta_encode() makes from the base's mark, and it re-encodes to a file
 *     that decodes to the same state;
 *   - a model-free result takes an assignment and its apply, and the delta of that apply
 *     turns the state before it into the state after it (the service's assign path).
 * "Equal" states are states whose encodings are byte for byte the same.
 */
#include "hl/assign.h"
#include "hl/statefile.h"

#include "fuzz.h"
#include "fuzz_assign.h"
#include "statefile_crc.h"

#define MAX_DELTAS 8

typedef struct parts {
    const void *p[MAX_DELTAS + 1]; /* p[0] the base, then the deltas */
    size_t len[MAX_DELTAS + 1];
    size_t n; /* parts: 1 + deltas */
} parts;

static void split(const uint8_t *d, size_t size, parts *pt)
{
    size_t start = 0;
    pt->n = 1;
    pt->p[0] = d;
    for (size_t i = 1; i + 4 <= size && pt->n <= MAX_DELTAS; i++) {
        if (memcmp(d + i, "HLSD", 4) == 0) {
            pt->len[pt->n - 1] = i - start;
            pt->p[pt->n++] = d + i;
            start = i;
        }
    }
    pt->len[pt->n - 1] = size - start;
}

/* The encoding of a state that decoded (so it passes hl_assign_state_check). */
static void *encode(const hl_assign_state *s, size_t *len)
{
    void *b = NULL;
    FUZZ_CHECK(hl_statefile_encode(s, &b, len, NULL, NULL) == HL_OK);
    return b;
}

static void check_same(const hl_assign_state *a, const hl_assign_state *b)
{
    size_t la, lb;
    void *ea = encode(a, &la), *eb = encode(b, &lb);
    FUZZ_CHECK(la == lb && memcmp(ea, eb, la) == 0);
    free(ea);
    free(eb);
}

/* base + the single delta from `from` (a mark of the base) to s decodes to s. */
static void check_delta(const void *base, size_t base_len, const hl_statefile_mark *from,
                        const hl_assign_state *s)
{
    void *d = NULL;
    size_t dl = 0;
    hl_assign_state *t = NULL;
    FUZZ_CHECK(hl_statefile_delta_encode(s, from, &d, &dl, NULL) == HL_OK);
    const void *ds[1] = {d};
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_statefile_decode_chain(base, base_len, ds, &dl, 1, &t, &e);
    if (st != HL_OK)
        fprintf(stderr, "composed delta refused: %s\n", e.msg);
    FUZZ_CHECK(st == HL_OK);
    check_same(s, t);
    hl_assign_state_free(t);
    free(d);
}

/* Three new points (copies of stored points and one far away), assigned and applied; the
 * delta of the apply extends the state before it to the state after it. */
static void check_assign(hl_assign_state *s)
{
    hl_assignment *a;
    size_t before_len;
    if (fuzz_assign_three(s, &a)) {
        void *before = encode(s, &before_len);
        hl_statefile_mark m;
        hl_statefile_mark_of(s, &m);
        FUZZ_CHECK(hl_assign_apply(s, a, NULL) == HL_OK);
        FUZZ_CHECK(hl_assign_state_check(s, NULL) == HL_OK);
        check_delta(before, before_len, &m, s);
        free(before);
    }
    hl_assignment_free(a);
}

static void decode(const parts *pt)
{
    size_t nd = pt->n - 1;
    hl_assign_state *s = NULL, *b = NULL;
    hl_error e, be;
    hl_error_clear(&e);
    hl_error_clear(&be);
    hl_status st =
        hl_statefile_decode_chain(pt->p[0], pt->len[0], pt->p + 1, pt->len + 1, nd, &s, &e);
    fuzz_check_error(st, &e);
    fuzz_check_printable(e.msg);
    fuzz_check_printable(e.field);
    FUZZ_CHECK((st == HL_OK) == (s != NULL));
    hl_status bst = hl_statefile_decode(pt->p[0], pt->len[0], &b, &be);
    if (bst != HL_OK) {
        FUZZ_CHECK(st == bst && strcmp(e.msg, be.msg) == 0);
    } else if (nd == 0) {
        FUZZ_CHECK(st == HL_OK);
        check_same(s, b);
    } else if (st != HL_OK) {
        FUZZ_CHECK(strstr(e.msg, "delta") != NULL);
    } else {
        hl_statefile_mark m;
        hl_statefile_mark_of(b, &m);
        check_delta(pt->p[0], pt->len[0], &m, s);
    }
    if (s != NULL) {
        size_t len, len2;
        void *enc = encode(s, &len);
        hl_assign_state *t = NULL;
        FUZZ_CHECK(hl_statefile_decode(enc, len, &t, NULL) == HL_OK);
        void *enc2 = encode(t, &len2);
        FUZZ_CHECK(len == len2 && memcmp(enc, enc2, len) == 0);
        hl_assign_state_free(t);
        free(enc);
        free(enc2);
        check_assign(s);
    }
    hl_assign_state_free(s);
    hl_assign_state_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parts pt;
    split(data, size, &pt);
    decode(&pt);
    uint8_t *copy = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    split(copy, size, &pt);
    int fixed = tu_statefile_fix_crcs(copy, pt.len[0]);
    for (size_t i = 1; i < pt.n; i++)
        fixed |= tu_statedelta_fix_crcs(copy + ((const uint8_t *)pt.p[i] - copy), pt.len[i]);
    if (fixed)
        decode(&pt);
    free(copy);
    return 0;
}
