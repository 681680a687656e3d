/*
 * hl/crc32c.h - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), as used by iSCSI,
 * ext4 and our model files. Incremental: start with crc = 0 and feed the pieces in order.
 *
 *     uint32_t c = hl_crc32c(0, a, na);
 *     c = hl_crc32c(c, b, nb);           // == hl_crc32c(0, a ++ b, na + nb)
 *
 * Thread-safety: reentrant (tables are const).
 */
#ifndef HL_CRC32C_H
#define HL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Extends `crc` (0 to start) over `len` bytes of `data`. hl_crc32c(0, "123456789", 9) is
 * 0xE3069283. */
uint32_t hl_crc32c(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* HL_CRC32C_H */
