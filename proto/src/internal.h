/*
 * internal.h - helpers shared by the proto sources (not installed, not part of the API).
 *
 * Every multi-byte integer in our file formats is little-endian; these helpers read and
 * write them byte by byte so the code is correct on any host and at any alignment.
 */
#ifndef HL_PROTO_INTERNAL_H
#define HL_PROTO_INTERNAL_H

#include "hl/npy.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t hl__get_le16(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t hl__get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t hl__get_le64(const unsigned char *p)
{
    return (uint64_t)hl__get_le32(p) | (uint64_t)hl__get_le32(p + 4) << 32;
}

static inline void hl__put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xFFu);
    p[1] = (unsigned char)(v >> 8);
}

static inline void hl__put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xFFu);
}

static inline void hl__put_le64(unsigned char *p, uint64_t v)
{
    hl__put_le32(p, (uint32_t)(v & 0xFFFFFFFFu));
    hl__put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t hl__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float hl__f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/** True when the IEEE-754 single-precision bit pattern is NaN or +-Inf. */
static inline int hl__f32_bits_nonfinite(uint32_t u)
{
    return (u & 0x7F800000u) == 0x7F800000u;
}

/** "NaN", "Inf" or "-Inf" for a non-finite bit pattern, for error messages. */
static inline const char *hl__nonfinite_name(uint32_t u)
{
    if ((u & 0x007FFFFFu) != 0)
        return "NaN";
    return (u & 0x80000000u) != 0 ? "-Inf" : "Inf";
}

/** True on little-endian hosts, where a float array can alias little-endian file bytes. */
static inline int hl__host_is_le(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/**
 * Turns rows*cols little-endian float32 values at `p` into a matrix: a view of `p` when the
 * host is little-endian and `p` is 4-byte aligned, else a converted copy (out->owned).
 * Returns HL_NUMERIC (row, column) for NaN/Inf, HL_NOMEM, HL_FORMAT when the size overflows.
 * The caller has checked that `p` holds rows*cols*4 bytes. Defined in npy.c.
 */
hl_status hl__f32_matrix(const unsigned char *p, size_t rows, size_t cols, hl_fmatrix *out,
                         hl_error *err);

/**
 * Records `src` (an error from decoding the file `path`) into `dst` as "path: message",
 * keeping its code, field and position. Returns src->code. Defined in file.c.
 */
hl_status hl__error_wrap(hl_error *dst, const hl_error *src, const char *path);

#endif /* HL_PROTO_INTERNAL_H */
