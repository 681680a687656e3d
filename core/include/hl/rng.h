/*
 * hl/rng.h - a small deterministic random generator (xoshiro256** seeded by splitmix64).
 *
 * The same seed gives the same stream on every platform, which the trainer relies on for
 * byte-identical models. Thread-safety: one generator per thread; hl_rng_split() derives
 * independent generators for parallel tasks from a parent seed and a task index.
 */
#ifndef HL_RNG_H
#define HL_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_rng {
    uint64_t s[4];
} hl_rng;

/** Seeds `r` from `seed` (any value, including 0). */
void hl_rng_seed(hl_rng *r, uint64_t seed);

/** Seeds `r` for task `index` of a computation seeded with `seed`. */
void hl_rng_split(hl_rng *r, uint64_t seed, uint64_t index);

/** Next 64 random bits. */
uint64_t hl_rng_next(hl_rng *r);

/** Uniform double in [0, 1). */
double hl_rng_uniform(hl_rng *r);

/** Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t hl_rng_below(hl_rng *r, uint64_t n);

/** Standard normal deviate (Box-Muller, both values consumed one at a time). */
double hl_rng_normal(hl_rng *r);

/** Fisher-Yates shuffle of `n` int32 values. */
void hl_rng_shuffle_i32(hl_rng *r, int32_t *v, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* HL_RNG_H */
