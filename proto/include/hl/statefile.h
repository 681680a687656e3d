/*
 * hl/statefile.h - the clustering state file (.hls), version 1.0: what incremental assignment
 * keeps of a finished clustering (hl/assign.h).
 *
 * Layout (all integers little-endian, offsets from the start of the file):
 *
 *   fixed header, header_bytes long (176 in v1.0):
 *     0  char[4] magic "HLST"          56  u32 model kind (0 without a model)
 *     4  u16 major (1)                 60  u32 model dim
 *     6  u16 minor (0)                 64  u32 model in_features
 *     8  u32 header_bytes              68  u32 model edge_features
 *    12  u32 flags (0)                 72  u32 model hidden
 *    16  u64 payload_bytes             76  u32 model n_conv
 *    24  u64 n (points)                80  u32 model use_cluster_feat
 *    32  u32 dim                       84  u32 model k
 *    36  u32 n_levels                  88  f32 model tau
 *    40  u32 k (of the clustering)     92  u32 n_arrays
 *    44  f32 tau (of the clustering)   96  char[64] model name (NUL-padded)
 *    48  u32 has_model (0 or 1)       160  u32 reserved[4] (0)
 *    52  u32 model checksum (CRC-32C of the model file's payload)
 *   array table: n_arrays entries of 64 bytes:
 *     char name[32] (NUL-padded), u32 dtype (0 = f32, 1 = i32), u32 ndim (1 or 2),
 *     u64 dims[2] (dims[1] = 0 when ndim is 1), u64 offset (from the payload start, a
 *     multiple of 64)
 *   u32 header_crc: CRC-32C of every byte before it (fixed header and table)
 *   zero padding up to the next multiple of 64: the payload starts there
 *   payload: payload_bytes bytes of array data (each 4-byte value little-endian)
 *   u32 payload_crc: CRC-32C of the payload; the file ends here
 *
 * Arrays (the fields of hl_assign_state / hl_assign_level; n_l nodes and width w_l per level):
 *   x f32 [n, dim]    labels i32 [n]
 *   for each level l (names "l<l>.<field>"): rep i32 [n_l], cnt i32 [n_l], nbr i32 [n_l, w_l],
 *   sim f32 [n_l, w_l], deg i32 [n_l], dens f32 [n_l], labels i32 [n], fstats f32 [6], and as
 *   the model needs them (hl_assign_widths_of): node f32 [n_l, 16], hidden0..2 f32
 *   [n_l, conv_out], S f32 [n_l, hidden/2], cmean f32 [n_l, dim] (levels >= 1).
 * Arrays appear in the table in increasing offset order without overlapping (so the decoded
 * state is never larger than the file), and the payload ends where the last one ends.
 *
 * The decoder refuses, each with a one-line message saying which: a bad magic, a file shorter
 * than its header, an unknown major version (HL_VERSION), a header or payload CRC mismatch
 * (HL_CHECKSUM), trailing or missing bytes, non-zero flags, reserved fields or padding, a
 * table entry out of bounds, misaligned, overlapping or out of order, an unknown, duplicate or
 * missing array, a shape that disagrees with the header or the other arrays, a NaN/Inf value
 * (HL_NUMERIC), and any content hl_assign_state_check() rejects (ids out of range, ...).
 * Everything else is HL_FORMAT. A newer minor version is accepted (unknown arrays skipped).
 *
 * Ownership: decode/load return a new state (hl_assign_state_free); encode returns a malloc'd
 * buffer. Thread-safety: reentrant.
 */
#ifndef HL_STATEFILE_H
#define HL_STATEFILE_H

#include "hl/assign.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HL_STATEFILE_MAJOR 1
#define HL_STATEFILE_MINOR 0

/** Serialises a state that passes hl_assign_state_check() (else HL_INVAL, with `err`).
 * HL_NOMEM. `checksum` (may be NULL) gets the payload CRC. */
hl_status hl_statefile_encode(const hl_assign_state *s, void **out, size_t *len, uint32_t *checksum,
                              hl_error *err);

/** Parses and verifies a state file image; *out is a new state. */
hl_status hl_statefile_decode(const void *buf, size_t len, hl_assign_state **out, hl_error *err);

/** Encodes and writes atomically (hl_file_write); errors name the file. */
hl_status hl_statefile_save(const hl_assign_state *s, const char *path, hl_error *err);

/** Reads and decodes; errors name the file. */
hl_status hl_statefile_load(const char *path, hl_assign_state **out, hl_error *err);

/*
 * Deltas: what a state gained since a mark (hl_assign_apply() only appends rows), so a store
 * can keep a base file plus small deltas instead of rewriting the whole state per assign.
 *
 * Layout (little-endian; header_bytes = 64 + 16 * n_levels):
 *     0  char[4] magic "HLSD"          32  u32 dim
 *     4  u16 major (1), u16 minor (0)  36  u32 n_arrays (of the state, as in the table above)
 *     8  u32 header_bytes              40  u32 model checksum (0 without a model)
 *    12  u32 n_levels                  44  u32 k, 48 f32 tau, 52 u32 flags (0)
 *    16  u64 from_n, 24 u64 to_n       56  u64 payload_bytes
 *    64  per level: u64 from_ln, u64 to_ln
 *   u32 header_crc (CRC-32C of the header_bytes before it), then the payload: for every array
 *   of the state in file order, its rows [from, to) (fstats never grows), then u32 payload_crc.
 * A delta applies only to a state whose sizes are exactly its "from" sizes and whose levels,
 * dim, k, tau and model checksum match; anything else, a CRC mismatch, a wrong length or a
 * NaN/Inf value is refused with a one-line message.
 */

/** The sizes of a state (points and nodes per level), where a delta starts. */
typedef struct hl_statefile_mark {
    size_t n;
    int n_levels;
    size_t ln[HL_ASSIGN_MAX_LEVELS];
} hl_statefile_mark;

void hl_statefile_mark_of(const hl_assign_state *s, hl_statefile_mark *m);

/** Encodes the rows `s` gained since `from` (a mark of the same state taken before
 * hl_assign_apply()). O(new rows); the state is not re-checked. HL_INVAL for a mark of another
 * state, HL_NOMEM. */
hl_status hl_statefile_delta_encode(const hl_assign_state *s, const hl_statefile_mark *from,
                                    void **out, size_t *len, hl_error *err);

/** Decodes a base state file and applies n_deltas deltas in order, verifying every CRC, then
 * runs hl_assign_state_check() on the result. Errors name the delta ("delta 3 of 5: ..."). */
hl_status hl_statefile_decode_chain(const void *base, size_t base_len, const void *const *deltas,
                                    const size_t *delta_lens, size_t n_deltas,
                                    hl_assign_state **out, hl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HL_STATEFILE_H */
