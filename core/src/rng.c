/* rng.c - xoshiro256** with splitmix64 seeding; see hl/rng.h. */
#include "hl/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void hl_rng_seed(hl_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

void hl_rng_split(hl_rng *r, uint64_t seed, uint64_t index)
{
    uint64_t x = seed ^ 0x5851F42D4C957F2DULL;
    uint64_t a = splitmix64(&x);
    x = a ^ (index * 0xD1342543DE82EF95ULL + 1);
    hl_rng_seed(r, splitmix64(&x));
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t hl_rng_next(hl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double hl_rng_uniform(hl_rng *r)
{
    return (double)(hl_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t hl_rng_below(hl_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do {
        v = hl_rng_next(r);
    } while (v >= limit);
    return v % n;
}

double hl_rng_normal(hl_rng *r)
{
    double u1 = hl_rng_uniform(r);
    double u2 = hl_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void hl_rng_shuffle_i32(hl_rng *r, int32_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)hl_rng_below(r, (uint64_t)i);
        int32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}
