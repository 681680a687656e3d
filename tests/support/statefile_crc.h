/* statefile_crc.h - rewrites the two CRC-32Cs of a state file image, or of a state delta,
 * where its (possibly edited) header places them, so a test or a fuzz target can reach the
 * checks behind the checksums. Shared by tests/proto/test_statefile.c and
 * tests/fuzz/fuzz_statefile.c and fuzz_statechain.c. */
#ifndef HL_TEST_STATEFILE_CRC_H
#define HL_TEST_STATEFILE_CRC_H

#include "hl/crc32c.h"

#include <stddef.h>
#include <stdint.h>

static inline uint32_t tu_sf_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void tu_sf_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Returns 0 (and writes nothing) when the header CRC would lie outside the image, else 1;
 * the payload CRC is written only when it lies inside. */
static inline int tu_statefile_fix_crcs(unsigned char *b, size_t len)
{
    if (len < 176)
        return 0;
    uint64_t crc_off = (uint64_t)tu_sf_le32(b + 8) + 64u * (uint64_t)tu_sf_le32(b + 92);
    if (crc_off + 4 > len)
        return 0;
    tu_sf_put_le32(b + crc_off, hl_crc32c(0, b, (size_t)crc_off));
    uint64_t po = (crc_off + 4 + 63) / 64 * 64;
    uint64_t pb = (uint64_t)tu_sf_le32(b + 16) | (uint64_t)tu_sf_le32(b + 20) << 32;
    if (po <= len && pb <= len - po && len - po - pb >= 4)
        tu_sf_put_le32(b + po + pb, hl_crc32c(0, b + po, (size_t)pb));
    return 1;
}

/* The same for a delta ("HLSD", header_bytes at offset 8, payload_bytes at 56): 0 (nothing
 * written) when the header CRC would lie outside the image, else 1. */
static inline int tu_statedelta_fix_crcs(unsigned char *b, size_t len)
{
    if (len < 64)
        return 0;
    uint64_t hb = tu_sf_le32(b + 8);
    if (hb + 4 > len)
        return 0;
    tu_sf_put_le32(b + hb, hl_crc32c(0, b, (size_t)hb));
    uint64_t pb = (uint64_t)tu_sf_le32(b + 56) | (uint64_t)tu_sf_le32(b + 60) << 32;
    if (pb <= len - hb - 4 && len - hb - 4 - pb >= 4)
        tu_sf_put_le32(b + hb + 4 + pb, hl_crc32c(0, b + hb + 4, (size_t)pb));
    return 1;
}

#endif
