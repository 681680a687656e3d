/*
 * hl/npy.h - NumPy .npy files: features in, labels in and out.
 *
 * Accepted: format versions 1.0, 2.0 and 3.0; dtypes '<f4' and '<f2' (converted to float32)
 * for features, '<i4' and '<i8' (range-checked into int32) for labels ('|', "byte order not
 * applicable", is read as little-endian, as NumPy on x86 does; '>' is refused); C order only;
 * features 2-D, labels 1-D. Every refusal
 * names the problem in one line: bad magic, unsupported version, malformed header dict,
 * big-endian or unsupported dtype, Fortran order, wrong rank, data shorter or longer than the
 * shape says, NaN/Inf (with row and column), and sizes whose product overflows.
 *
 * Zero-copy: hl_npy_decode_f32() returns a view into the caller's buffer when the data is
 * '<f4' and 4-byte aligned; otherwise it converts into a new buffer owned by the matrix.
 *
 * Ownership: hl_fmatrix.owned, when non-NULL, is the malloc'd block that holds the data (data
 * may point inside it, e.g. past a file header) and is freed by hl_fmatrix_free().
 * Encoders return malloc'd buffers that the caller frees with free().
 * Thread-safety: reentrant.
 */
#ifndef HL_NPY_H
#define HL_NPY_H

#include "hl/file.h" /* hl_file_read, hl_file_write (used to live here) */
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hl_dtype {
    HL_DT_F32 = 0,
    HL_DT_F16 = 1,
    HL_DT_I32 = 2,
    HL_DT_I64 = 3,
} hl_dtype;

/** Bytes per element of a dtype. */
size_t hl_dtype_size(hl_dtype dt);

#define HL_NPY_MAX_NDIM 8

/** Longest header (magic, version, length field and dict) accepted, in bytes. Plain arrays
 * need about 128; the cap bounds what a streaming reader must buffer before the data. */
#define HL_NPY_MAX_HEADER ((size_t)1 << 20)

typedef struct hl_npy_header {
    int major, minor;
    hl_dtype dtype;
    int ndim;
    size_t shape[HL_NPY_MAX_NDIM];
    size_t count;       /**< product of shape (1 for a 0-d array) */
    size_t data_offset; /**< bytes from the start of the file to the data */
    size_t data_bytes;  /**< count * element size */
} hl_npy_header;

/**
 * Returns the total header length (magic, version, length field, dict, padding) once `len`
 * bytes of a file's prefix are enough to know it, in *header_len; HL_BUSY (err untouched)
 * when more bytes are needed (at most 12); HL_FORMAT (bad magic, header over
 * HL_NPY_MAX_HEADER) or HL_VERSION (with err) when the prefix can never become valid.
 * This lets a streaming reader find where the data starts. `buf` may be NULL when len is 0.
 */
hl_status hl_npy_header_len(const void *buf, size_t len, size_t *header_len, hl_error *err);

/**
 * Parses and validates the header at the start of buf (len bytes available, which must
 * cover at least the header, else HL_FORMAT "truncated"). Checks magic, version (HL_VERSION),
 * the dict (HL_FORMAT: malformed, unsupported or big-endian dtype, Fortran order, shape
 * whose byte size overflows). Does not check the data length or the rank.
 */
hl_status hl_npy_parse_header(const void *buf, size_t len, hl_npy_header *h, hl_error *err);

/** A row-major float32 matrix, possibly a view into someone else's memory. */
typedef struct hl_fmatrix {
    const float *data;
    size_t rows, cols;
    float *owned; /**< non-NULL when data was copied or converted */
} hl_fmatrix;

/** Frees the owned buffer (if any) and zeroes the struct. */
void hl_fmatrix_free(hl_fmatrix *m);

/**
 * Decodes a complete .npy holding a 2-D float matrix (f32 or f16). Checks that the data
 * length equals rows*cols*size exactly (HL_FORMAT "data truncated" / "trailing data") and that
 * every value is finite (HL_NUMERIC with row and column). On error *out is zeroed.
 */
hl_status hl_npy_decode_f32(const void *buf, size_t len, hl_fmatrix *out, hl_error *err);

/** Decodes a complete 1-D int32/int64 .npy into a new int32 array (*out, malloc'd, never NULL
 * on success). HL_RANGE for an int64 value outside int32, HL_FORMAT as hl_npy_decode_f32. */
hl_status hl_npy_decode_i32(const void *buf, size_t len, int32_t **out, size_t *n, hl_error *err);

/** Encodes a float32 array of `ndim` (1..2) dims as a version 1.0 .npy whose header is padded
 * to 64 bytes; *out is malloc'd. HL_INVAL (bad ndim, NULL data), HL_RANGE, HL_NOMEM. */
hl_status hl_npy_encode_f32(const float *x, int ndim, const size_t *shape, void **out, size_t *len);

/** Encodes an int32 array of `ndim` (1..2) dims as a version 1.0 .npy; *out is malloc'd. */
hl_status hl_npy_encode_i32(const int32_t *x, int ndim, const size_t *shape, void **out,
                            size_t *len);

/** hl_file_read + hl_npy_decode_f32; the matrix always owns its data. Errors name the file. */
hl_status hl_npy_load_f32(const char *path, hl_fmatrix *out, hl_error *err);

/** hl_file_read + hl_npy_decode_i32. Errors name the file. */
hl_status hl_npy_load_i32(const char *path, int32_t **out, size_t *n, hl_error *err);

/** Encodes and writes atomically. */
hl_status hl_npy_save_f32(const char *path, const float *x, int ndim, const size_t *shape,
                          hl_error *err);
hl_status hl_npy_save_i32(const char *path, const int32_t *x, int ndim, const size_t *shape,
                          hl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HL_NPY_H */
