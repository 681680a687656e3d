/*
 * hl/arena.h - a bump allocator sized once per job (plan, then compute).
 *
 * The cluster driver asks each module for the scratch bytes it needs (the `_plan` functions),
 * allocates one arena of that size at admission and hands it down. Hot loops never call
 * malloc. Per-level scratch is released with hl_arena_mark()/hl_arena_reset().
 *
 * Ownership: hl_arena_init() allocates the backing store and hl_arena_deinit() frees it;
 * hl_arena_init_view() borrows caller memory. Blocks handed out are never freed one by one.
 * Thread-safety: one user at a time.
 *
 *     hl_arena a;
 *     if (hl_arena_init(&a, bytes) != HL_OK) return HL_NOMEM;
 *     size_t m = hl_arena_mark(&a);
 *     float *tmp = hl_arena_alloc(&a, n * sizeof(float), 64);
 *     ...
 *     hl_arena_reset(&a, m);
 *     hl_arena_deinit(&a);
 */
#ifndef HL_ARENA_H
#define HL_ARENA_H

#include "hl/status.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t peak;
    int owns;
} hl_arena;

/** Worst-case padding to add per allocation when summing a plan. */
#define HL_ARENA_SLACK 64

/** Allocates `cap` bytes of backing store. Returns HL_NOMEM if malloc fails. */
hl_status hl_arena_init(hl_arena *a, size_t cap);

/** Uses caller memory `buf` of `cap` bytes (borrowed; must outlive the arena). */
void hl_arena_init_view(hl_arena *a, void *buf, size_t cap);

/** Frees the backing store if the arena owns it. Safe on a zeroed arena. */
void hl_arena_deinit(hl_arena *a);

/**
 * Returns `size` bytes aligned to `align` (a power of two, at most 4096), or NULL if the
 * arena is exhausted. The memory is uninitialised.
 */
void *hl_arena_alloc(hl_arena *a, size_t size, size_t align);

/** Like hl_arena_alloc for `count` elements of `elem` bytes, with an overflow check. */
void *hl_arena_alloc_array(hl_arena *a, size_t count, size_t elem, size_t align);

/** Current fill level, to be passed back to hl_arena_reset(). */
size_t hl_arena_mark(const hl_arena *a);

/** Releases everything allocated after `mark`. */
void hl_arena_reset(hl_arena *a, size_t mark);

/** Rounds `bytes` up to a multiple of 64 and adds HL_ARENA_SLACK: the plan of one block. */
size_t hl_arena_block(size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* HL_ARENA_H */
