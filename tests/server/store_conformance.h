/*
 * store_conformance.h - the semantics of server/store.h as check test cases, written against
 * the interface only, so every backend (memory, Redis) runs the same cases:
 *
 *     static hl_status make_mem(void *ud, srv_store **out)
 *     {
 *         (void)ud;
 *         return srv_store_mem_new((size_t)256 << 20, out);
 *     }
 *     ...
 *     static const sc_backend mem = {"memory", make_mem, NULL};
 *     suite_add_tcase(s, sc_tcase(&mem));
 *
 * `make` must return a fresh, empty store on every call (cases reuse ids) that can hold a
 * blob of SC_LARGE_BYTES plus a few small records. The cases include TTL expiry (1 s TTLs,
 * waits bounded at a few seconds) and races of SC_THREADS threads.
 *
 * Semantics checked beyond what store.h spells out (a backend must agree):
 *   - job_update on a missing record is HL_NOTFOUND, with or without a precondition, and
 *     never creates it; a failed precondition changes nothing;
 *   - the precondition matches the "status" field exactly against one of the
 *     comma-separated values ("succeed" does not match "succeeded");
 *   - deleting a missing job, result or input is HL_NOTFOUND;
 *   - a zero-length blob round-trips (the returned pointer is freed with free());
 *   - results and inputs of the same id, and the job record, are independent;
 *   - a 1 s TTL is gone within 5 s, a 0 TTL stays; idem_claim after expiry succeeds;
 *   - a reader racing a writer of the same result gets one whole version, HL_NOTFOUND or
 *     HL_BUSY, never mixed bytes or HL_CHECKSUM.
 *
 * Check cases take no arguments, so the backend is kept in a global: one backend per test
 * binary. The returned TCase has a generous timeout; add fixtures to it as needed.
 */
#ifndef HL_STORE_CONFORMANCE_H
#define HL_STORE_CONFORMANCE_H

#include "store.h"

#include <check.h>

/** Threads in the race cases. */
#define SC_THREADS 8

/** The large blob: just over 64 MiB, so a chunking backend needs two chunks. */
#define SC_LARGE_BYTES (((size_t)64 << 20) + 4099)

typedef struct sc_backend {
    const char *name;                             /* for messages: "memory", "redis" */
    hl_status (*make)(void *ud, srv_store **out); /* a fresh, empty store */
    void *ud;
} sc_backend;

/** Returns a new TCase named "conformance" holding every case, run against `b` (copied). */
TCase *sc_tcase(const sc_backend *b);

/** The clustering state and lock cases (store_conformance_state.c), TCase
 * "conformance_state". */
TCase *sc_state_tcase(const sc_backend *b);

#endif
