/*
 * fuzz_npy.c - .npy header scanner and decoders on arbitrary bytes.
 *
 * Invariants checked besides memory safety: errors carry their code and a one-line message;
 * hl_npy_header_len on any prefix agrees with the whole input (HL_BUSY, or the same length);
 * aligned and misaligned copies decode to the same values; whatever decodes re-encodes and
 * decodes back to the same values.
 */
#include "hl/npy.h"

#include "fuzz.h"

static void check_prefixes(const uint8_t *data, size_t size)
{
    hl_error e;
    size_t full = 0, lim = size < 80 ? size : 80;
    hl_error_clear(&e);
    hl_status sf = hl_npy_header_len(data, size, &full, &e);
    if (sf != HL_BUSY)
        fuzz_check_error(sf, &e);
    for (size_t n = 0; n <= lim; n++) {
        size_t hlen = 0;
        hl_error_clear(&e);
        hl_status st = hl_npy_header_len(data, n, &hlen, &e);
        if (st == HL_BUSY) {
            FUZZ_CHECK(e.code == HL_OK && n < 12);
            continue;
        }
        fuzz_check_error(st, &e);
        if (st == HL_OK)
            FUZZ_CHECK(sf == HL_OK && hlen == full);
        else
            FUZZ_CHECK(sf == st);
    }
}

static void check_f32(const uint8_t *data, size_t size)
{
    uint8_t *block;
    const uint8_t *odd = fuzz_misaligned_copy(data, size, &block);
    hl_fmatrix a, b;
    hl_error ea, eb;
    hl_error_clear(&ea);
    hl_error_clear(&eb);
    hl_status sa = hl_npy_decode_f32(data, size, &a, &ea);
    hl_status sb = hl_npy_decode_f32(odd, size, &b, &eb);
    fuzz_check_error(sa, &ea);
    fuzz_check_error(sb, &eb);
    FUZZ_CHECK(sa == sb);
    if (sa == HL_OK) {
        size_t n = a.rows * a.cols;
        FUZZ_CHECK(a.rows == b.rows && a.cols == b.cols);
        FUZZ_CHECK(b.owned != NULL || n == 0 || ((uintptr_t)b.data % 4) == 0);
        FUZZ_CHECK(n == 0 || memcmp(a.data, b.data, n * sizeof(float)) == 0);
        size_t shape[2] = {a.rows, a.cols};
        void *enc;
        size_t len;
        FUZZ_CHECK(hl_npy_encode_f32(a.data, 2, shape, &enc, &len) == HL_OK);
        hl_fmatrix c;
        FUZZ_CHECK(hl_npy_decode_f32(enc, len, &c, NULL) == HL_OK);
        FUZZ_CHECK(c.rows == a.rows && c.cols == a.cols);
        FUZZ_CHECK(n == 0 || memcmp(a.data, c.data, n * sizeof(float)) == 0);
        hl_fmatrix_free(&c);
        free(enc);
    }
    hl_fmatrix_free(&a);
    hl_fmatrix_free(&b);
    free(block);
}

static void check_i32(const uint8_t *data, size_t size)
{
    int32_t *v = NULL;
    size_t n = 0;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_npy_decode_i32(data, size, &v, &n, &e);
    fuzz_check_error(st, &e);
    if (st == HL_OK) {
        FUZZ_CHECK(v != NULL);
        void *enc;
        size_t len, m;
        int32_t *w;
        FUZZ_CHECK(hl_npy_encode_i32(v, 1, &n, &enc, &len) == HL_OK);
        FUZZ_CHECK(hl_npy_decode_i32(enc, len, &w, &m, NULL) == HL_OK);
        FUZZ_CHECK(m == n && (n == 0 || memcmp(v, w, n * sizeof(int32_t)) == 0));
        free(w);
        free(enc);
    }
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_prefixes(data, size);
    hl_npy_header h;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_npy_parse_header(data, size, &h, &e);
    fuzz_check_error(st, &e);
    if (st == HL_OK)
        FUZZ_CHECK(h.data_offset <= size && h.ndim >= 0 && h.ndim <= HL_NPY_MAX_NDIM);
    check_f32(data, size);
    check_i32(data, size);
    return 0;
}
