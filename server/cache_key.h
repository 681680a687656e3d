/*
 * cache_key.h - the cache key of a clustering: XXH3-128 over the embedding bytes (float32,
 * row-major), the shape, the model's name and checksum, and the canonical parameters, as 32
 * lower-case hex digits. Two requests with the same key do the same work, whatever their
 * encoding (JSON, .npy f32/f16, raw) or their ids and true labels.
 * Thread-safety: reentrant.
 */
#ifndef SRV_CACHE_KEY_H
#define SRV_CACHE_KEY_H

#include "hl/cluster.h"

#include <stddef.h>
#include <stdint.h>

/** Canonical text of the parameters that change a result ("k=10;tau=0.8;..."). */
void srv_params_canonical(const hl_cluster_params *p, char *out, size_t len);

/** The parameters as a JSON object (the job object's "params"). */
void srv_params_json(const hl_cluster_params *p, char *out, size_t len);

/** Computes the key into out (33 bytes: 32 hex digits and a NUL). HL_NOMEM if the hash state
 * cannot be allocated. */
int srv_cache_key(const float *x, size_t n, size_t d, const char *model_name,
                  uint32_t model_checksum, const hl_cluster_params *p, char out[33]);

/** XXH3-128 of arbitrary bytes as 32 hex digits (idempotency body hashes). */
void srv_hash_hex(const void *data, size_t len, char out[33]);

#endif
