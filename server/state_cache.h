/*
 * state_cache.h - decoded clustering states kept by this replica between assigns.
 *
 * An assign needs the decoded state of the clustering's current version. Rebuilding it from
 * the store means reading the base and the deltas, checking their CRCs and decoding them
 * (tens of MB at ~30k points); the cache keeps the state the last assign left behind, keyed
 * by (clustering id, version, tag), where the tag identifies the write that made the version
 * (srv_state_head.tag). An assign reads the store's head (one small request) and reuses the
 * cached state only when all three match, so a replica whose cache is stale (another replica
 * wrote since) rebuilds from the store instead.
 *
 * An entry is taken out while an assign uses it (take), and given back under the version the
 * assign wrote (put): two threads never share a state, and a state whose write lost the
 * compare-and-set is simply freed. Bounded by bytes (the states' arrays), least recently used
 * out first; a state larger than the whole cap is not kept. A cache with max_bytes 0 keeps
 * nothing. Thread-safety: every function, any thread (one mutex; states are freed outside it).
 */
#ifndef SRV_STATE_CACHE_H
#define SRV_STATE_CACHE_H

#include "hl/assign.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct srv_state_cache srv_state_cache;

hl_status srv_state_cache_new(size_t max_bytes, srv_state_cache **out);
void srv_state_cache_free(srv_state_cache *c);

/** Takes the state of (id, version, tag) out of the cache (the caller owns it), or NULL.
 * Entries of `id` under any other version or tag are dropped: they can never match again. */
hl_assign_state *srv_state_cache_take(srv_state_cache *c, const char *id, uint64_t version,
                                      uint64_t tag);

/** Gives `s` to the cache as (id, version, tag), evicting least recently used entries to
 * make room; frees it when it cannot be kept. NULL `c` or `s`: frees s. */
void srv_state_cache_put(srv_state_cache *c, const char *id, uint64_t version, uint64_t tag,
                         hl_assign_state *s);

/** Drops every entry of `id` (its state was deleted). */
void srv_state_cache_drop(srv_state_cache *c, const char *id);

/** The bytes a state's arrays take (capacities), as the cache counts them. */
size_t srv_state_bytes(const hl_assign_state *s);

#endif
