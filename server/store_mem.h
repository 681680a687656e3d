/*
 * store_mem.h - extras of the embedded store beyond store.h: the expiry sweep that the loop's
 * timer runs, and a clock hook for tests. Expired keys are also dropped lazily on access,
 * so the sweep only reclaims memory of keys nobody reads.
 */
#ifndef SRV_STORE_MEM_H
#define SRV_STORE_MEM_H

#include "store.h"

/** True when `s` is the embedded store. */
int srv_store_is_mem(const srv_store *s);

/** Drops every expired entry; returns how many. Safe from any thread. */
size_t srv_store_mem_sweep(srv_store *s);

/** Bytes currently accounted (keys, values, per-entry overhead). */
size_t srv_store_mem_bytes(srv_store *s);

/** Replaces the monotonic clock (seconds) - tests only; call before any other use. */
void srv_store_mem_set_clock(srv_store *s, double (*now)(void *ud), void *ud);

#endif
