/* test_util.c - see test_util.h. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

float *tu_randn(size_t n, size_t d, uint64_t seed)
{
    hl_rng r;
    hl_rng_seed(&r, seed);
    float *x = malloc(n * d * sizeof(float) + 1);
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)hl_rng_normal(&r);
    return x;
}

float *tu_blobs(size_t n, size_t d, size_t c, float sigma, uint64_t seed, int32_t **labels)
{
    float *centres = tu_randn(c, d, seed);
    hl_rng r;
    hl_rng_seed(&r, seed + 1);
    float *x = malloc(n * d * sizeof(float) + 1);
    int32_t *lab = malloc(n * sizeof(int32_t) + 1);
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)hl_rng_below(&r, c);
        lab[i] = (int32_t)k;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = centres[k * d + j] + sigma * (float)hl_rng_normal(&r);
    }
    free(centres);
    *labels = lab;
    return x;
}

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/hltest.XXXXXX", base != NULL ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d != NULL ? strdup(d) : NULL;
}

char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void tu_rmtree(const char *dir)
{
    if (dir == NULL || strncmp(dir, "/tmp/", 5) != 0 || strstr(dir, "hltest.") == NULL)
        return;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}
