/*
 * rawf32.c - raw little-endian float32 rows; see hl/rawf32.h.
 *
 * The format has no header, so all there is to check is the length against the caller's
 * row width and that every value is finite; the view-or-copy logic is shared with npy.c.
 */
#include "hl/rawf32.h"

#include "internal.h"

#include <string.h>

hl_status hl_rawf32_decode(const void *buf, size_t len, size_t dim, hl_fmatrix *out, hl_error *err)
{
    memset(out, 0, sizeof(*out));
    size_t row_bytes;
    if (dim == 0)
        return hl_error_set(err, HL_FORMAT, "dim", "dim must be at least 1");
    if (hl_mul_size(dim, sizeof(float), &row_bytes) != HL_OK)
        return hl_error_set(err, HL_FORMAT, "dim", "dim %zu is too large", dim);
    if (len == 0 || len % row_bytes != 0)
        return hl_error_set(err, HL_FORMAT, "dim",
                            "raw float32 body of %zu bytes is not a non-zero multiple of 4 * dim "
                            "= %zu bytes",
                            len, row_bytes);
    return hl__f32_matrix(buf, len / row_bytes, dim, out, err);
}
