/*
 * jobspec.h - a queued job's input as one blob, for the replica that will run it (Redis mode:
 * stored with the store's input_put under the job id, loaded with input_get by the claimer's
 * worker, deleted when the job ends).
 *
 * Layout (host byte order; the replicas of one deployment run the same build):
 *   header (320 bytes): "HLJ1", u32 flags (1 = ids, 2 = true labels), u64 rows, u64 cols,
 *     i32 k, f32 tau, i32 max_levels, i32 early_stop, i32 min_cluster_size, u32 model
 *     checksum, u64 ids_bytes, char model[64], char cache_key[33], char cache_src[32],
 *     char request_id[72] (all NUL-terminated), i32 kind (0 cluster, 1 assign), i32
 *     new_clusters, char clustering[32] (assign jobs: the cluster job's id), zero padding
 *   f32 x[rows * cols], then i32 labels[rows] when flag 2, then ids_bytes of rows
 *   NUL-terminated strings when flag 1.
 * Thread-safety: reentrant.
 */
#ifndef SRV_JOBSPEC_H
#define SRV_JOBSPEC_H

#include "jobs.h"

#define SRV_JOBSPEC_HEADER 320

/** Encodes the job's input, parameters, model and cache fields into a malloc'd blob. */
hl_status srv_jobspec_encode(const srv_job *j, void **out, size_t *len);

/**
 * Decodes a blob into `j`: takes ownership of `buf` (kept as j->body, the matrix views it),
 * allocates ids and labels, and sets the parameters, cache fields and request id. The model
 * is not resolved: its name and checksum are returned for the caller to look up.
 * HL_FORMAT when the blob is inconsistent (buf is then freed).
 */
hl_status srv_jobspec_decode(void *buf, size_t len, srv_job *j, char model[64], uint32_t *checksum);

#endif
