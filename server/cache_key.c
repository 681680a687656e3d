/* cache_key.c - XXH3-128 work keys; see cache_key.h. */
#include "cache_key.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

void srv_params_canonical(const hl_cluster_params *p, char *out, size_t len)
{
    snprintf(out, len, "k=%d;tau=%.9g;max_levels=%d;early_stop=%d;min_cluster_size=%d;knn=%s", p->k,
             (double)p->tau, p->max_levels, p->early_stop ? 1 : 0, p->min_cluster_size,
             hl_knn_method_name(p->knn));
}

void srv_params_json(const hl_cluster_params *p, char *out, size_t len)
{
    snprintf(out, len,
             "{\"k\":%d,\"tau\":%.6g,\"max_levels\":%d,\"min_cluster_size\":%d,"
             "\"early_stop\":%s,\"knn\":\"%s\"}",
             p->k, (double)p->tau, p->max_levels, p->min_cluster_size,
             p->early_stop ? "true" : "false", hl_knn_method_name(p->knn));
}

static void to_hex(XXH128_hash_t h, char out[33])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[c.digest[i] >> 4];
        out[2 * i + 1] = hex[c.digest[i] & 15];
    }
    out[32] = '\0';
}

int srv_cache_key(const float *x, size_t n, size_t d, const char *model_name,
                  uint32_t model_checksum, const hl_cluster_params *p, char out[33])
{
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL)
        return -1;
    XXH3_128bits_reset(st);
    static const char tag[] = "hilander-cache-v1";
    XXH3_128bits_update(st, tag, sizeof(tag));
    uint64_t shape[2] = {(uint64_t)n, (uint64_t)d};
    XXH3_128bits_update(st, shape, sizeof(shape));
    XXH3_128bits_update(st, x, n * d * sizeof(float));
    XXH3_128bits_update(st, model_name, strlen(model_name) + 1);
    XXH3_128bits_update(st, &model_checksum, sizeof(model_checksum));
    char canon[160];
    srv_params_canonical(p, canon, sizeof(canon));
    XXH3_128bits_update(st, canon, strlen(canon) + 1);
    to_hex(XXH3_128bits_digest(st), out);
    XXH3_freeState(st);
    return 0;
}

void srv_hash_hex(const void *data, size_t len, char out[33])
{
    to_hex(XXH3_128bits(data, len), out);
}
