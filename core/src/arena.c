/* arena.c - bump allocator; see hl/arena.h. */
#include "hl/arena.h"

#include <stdint.h>
#include <stdlib.h>

hl_status hl_arena_init(hl_arena *a, size_t cap)
{
    a->base = NULL;
    a->cap = 0;
    a->used = 0;
    a->peak = 0;
    a->owns = 1;
    if (cap == 0)
        return HL_OK;
    a->base = malloc(cap);
    if (a->base == NULL)
        return HL_NOMEM;
    a->cap = cap;
    return HL_OK;
}

void hl_arena_init_view(hl_arena *a, void *buf, size_t cap)
{
    a->base = buf;
    a->cap = buf != NULL ? cap : 0;
    a->used = 0;
    a->peak = 0;
    a->owns = 0;
}

void hl_arena_deinit(hl_arena *a)
{
    if (a->owns)
        free(a->base);
    a->base = NULL;
    a->cap = 0;
    a->used = 0;
}

void *hl_arena_alloc(hl_arena *a, size_t size, size_t align)
{
    if (align == 0 || (align & (align - 1)) != 0 || align > 4096 || a->base == NULL)
        return NULL;
    uintptr_t start = (uintptr_t)a->base + a->used;
    uintptr_t aligned = (start + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t pad = (size_t)(aligned - start);
    size_t need;
    if (hl_add_size(pad, size, &need) != HL_OK || need > a->cap - a->used)
        return NULL;
    a->used += need;
    if (a->used > a->peak)
        a->peak = a->used;
    return (void *)aligned;
}

void *hl_arena_alloc_array(hl_arena *a, size_t count, size_t elem, size_t align)
{
    size_t bytes;
    if (hl_mul_size(count, elem, &bytes) != HL_OK)
        return NULL;
    return hl_arena_alloc(a, bytes, align);
}

size_t hl_arena_mark(const hl_arena *a)
{
    return a->used;
}

void hl_arena_reset(hl_arena *a, size_t mark)
{
    if (mark <= a->used)
        a->used = mark;
}

size_t hl_arena_block(size_t bytes)
{
    return ((bytes + 63) & ~(size_t)63) + HL_ARENA_SLACK;
}
