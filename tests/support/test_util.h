/* test_util.h - helpers shared by the check suites (random data, temp files, references). */
#ifndef HL_TEST_UTIL_H
#define HL_TEST_UTIL_H

#include "hl/rng.h"

#include <stddef.h>
#include <stdint.h>

/** n x d standard-normal matrix from `seed` (malloc'd). */
float *tu_randn(size_t n, size_t d, uint64_t seed);

/** n x d points around `c` random centres with noise `sigma`, labels in *labels (malloc'd). */
float *tu_blobs(size_t n, size_t d, size_t c, float sigma, uint64_t seed, int32_t **labels);

/** Creates a fresh temporary directory and returns its path (malloc'd). */
char *tu_tmpdir(void);

/** Joins dir and name into a malloc'd path. */
char *tu_path(const char *dir, const char *name);

/** Removes a directory tree created by tu_tmpdir (best effort). */
void tu_rmtree(const char *dir);

/* ck_assert records a checkpoint on every success (a write to check's pipe when it forks), which
 * is slow in hot loops: these test first and call into check only on failure. Include check.h
 * before this header to use them. */
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("Assertion '%s' failed", #cond);                                          \
    } while (0)
#define EXPECT_MSG(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

#endif
