/*
 * hl/modelfile.h - the hilander model file (.hlm), version 1.0.
 *
 * Layout (all integers little-endian, offsets from the start of the file):
 *
 *   fixed header, header_bytes long (76 in v1.0; a reader skips fields it does not know):
 *     0  char[4] magic "HLMD"        36 u32 in_features
 *     4  u16 major (1)               40 u32 edge_features
 *     6  u16 minor (0)               44 u32 hidden
 *     8  u32 header_bytes            48 u32 n_conv
 *    12  u32 flags (0)               52 u32 use_cluster_feat
 *    16  u64 payload_bytes           56 u32 k
 *    24  u32 n_tensors               60 f32 tau
 *    28  u32 kind (1 lander,         64 u32 meta_bytes
 *            2 universal)            68 u32 reserved (0)
 *    32  u32 dim                     72 u32 reserved (0)
 *   meta: meta_bytes of UTF-8 text, "key=value\n" lines (name, trained_on, ...)
 *   tensor table: n_tensors entries of 128 bytes:
 *     char name[64] (NUL-padded), u32 dtype (0 = f32), u32 ndim (1..4), u64 dims[4],
 *     u64 offset (from the payload start, a multiple of 64), u64 nbytes, u8 pad[8]
 *   u32 header_crc: CRC-32C of every byte before it (fixed header, meta, table)
 *   zero padding up to the next multiple of 64: the payload starts there
 *   payload: payload_bytes bytes of tensor data
 *   u32 payload_crc: CRC-32C of the payload; the file ends here
 *
 * The loader refuses, each with a one-line message that says which: a file shorter than the
 * fixed header, a bad magic, an unknown major version, a header CRC mismatch, a tensor whose
 * offset or size falls outside the payload, a payload CRC mismatch, trailing or missing
 * bytes, a bad configuration, and tensors missing, duplicated, unknown or of the wrong
 * shape for the configuration. A newer minor version is accepted (unknown tensors skipped).
 *
 * Details a writer must follow (checked by the decoder; the layout above is unchanged):
 *   - header_bytes is exactly 76 in minor 0 (a newer minor may make it larger); flags is 0;
 *     the reserved u32s and each entry's pad are 0 (a newer minor may use them).
 *   - meta is valid UTF-8 without NUL bytes; every non-empty line is key=value (split at the
 *     first '='; the final '\n' is optional); name <= 63 bytes, trained_on <= 127 bytes, each
 *     at most once; other keys are ignored.
 *   - a name is 1..63 printable ASCII bytes (0x21..0x7E) followed by NULs only; dims[i] is 0
 *     for i >= ndim; nbytes = 4 * product(dims); tensors may come in any order.
 *   - the bytes between header_crc and the payload are 0; payload_bytes must cover every
 *     tensor (hl_modelfile_encode writes the end of the last one); every value is finite.
 * Errors: HL_FORMAT for everything above except a wrong major (HL_VERSION), a CRC mismatch
 * (HL_CHECKSUM) and a NaN/Inf parameter (HL_NUMERIC).
 *
 * Ownership: decode/load return a new hl_model (hl_model_free). encode returns a malloc'd
 * buffer. Thread-safety: reentrant.
 */
#ifndef HL_MODELFILE_H
#define HL_MODELFILE_H

#include "hl/lander.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HL_MODELFILE_MAJOR 1
#define HL_MODELFILE_MINOR 0

/** Serialises `m` (its config, name, trained_on and tensors) into a malloc'd buffer. Returns
 * HL_INVAL (bad configuration, name/trained_on not NUL-terminated UTF-8 without '\n'),
 * HL_NUMERIC (a NaN/Inf parameter) or HL_NOMEM. */
hl_status hl_modelfile_encode(const hl_model *m, void **out, size_t *len);

/** Parses and verifies a model file image; *out is a new model. `checksum` (may be NULL) gets the
 * payload CRC. */
hl_status hl_modelfile_decode(const void *buf, size_t len, hl_model **out, uint32_t *checksum,
                              hl_error *err);

/** Encodes and writes atomically (hl_file_write); errors name the file. */
hl_status hl_modelfile_save(const hl_model *m, const char *path, hl_error *err);

/** Reads and decodes; errors name the file. */
hl_status hl_modelfile_load(const char *path, hl_model **out, uint32_t *checksum, hl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HL_MODELFILE_H */
