/*
 * hl/rawf32.h - raw little-endian float32 rows (application/octet-stream bodies, .bin files).
 *
 * The caller supplies the row width `dim`; the byte length must be a non-zero multiple of
 * 4 * dim. Values must be finite. Thread-safety: reentrant.
 */
#ifndef HL_RAWF32_H
#define HL_RAWF32_H

#include "hl/npy.h"
#include "hl/status.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Decodes `len` bytes as rows of `dim` floats. Returns a view when `buf` is 4-byte aligned
 * (on little-endian hosts), else a copy. HL_FORMAT when dim is 0 or the length is not a
 * multiple of 4 * dim (field "dim"), HL_NUMERIC (row, column) for NaN/Inf.
 */
hl_status hl_rawf32_decode(const void *buf, size_t len, size_t dim, hl_fmatrix *out, hl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HL_RAWF32_H */
