/*
 * fuzz_rawf32.c - raw float32 decoding. The first input byte picks the row width
 * (0..16, where 0 must be refused); the rest is the body, decoded from an aligned and from a
 * misaligned address. Whatever decodes must reproduce the input bits exactly.
 */
#include "hl/rawf32.h"

#include "fuzz.h"
#include "modelfile_crc.h" /* tu_le32 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t dim = data[0] % 17u, len = size - 1;
    uint8_t *aligned = malloc(len > 0 ? len : 1), *block;
    FUZZ_CHECK(aligned != NULL);
    if (len > 0)
        memcpy(aligned, data + 1, len);
    const uint8_t *odd = fuzz_misaligned_copy(data + 1, len, &block);
    const uint8_t *bufs[2] = {aligned, odd};
    for (int k = 0; k < 2; k++) {
        hl_fmatrix m;
        hl_error e;
        hl_error_clear(&e);
        hl_status st = hl_rawf32_decode(bufs[k], len, dim, &m, &e);
        fuzz_check_error(st, &e);
        FUZZ_CHECK(st != HL_OK || (dim > 0 && m.rows * dim * 4 == len && m.cols == dim));
        if (dim == 0 || len == 0 || len % (4 * dim) != 0)
            FUZZ_CHECK(st == HL_FORMAT);
        for (size_t i = 0; st == HL_OK && i < m.rows * m.cols; i++) {
            uint32_t u;
            memcpy(&u, &m.data[i], 4);
            FUZZ_CHECK(u == tu_le32(data + 1 + 4 * i));
        }
        hl_fmatrix_free(&m);
    }
    free(aligned);
    free(block);
    return 0;
}
