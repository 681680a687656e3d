/*
 * fuzz_query.c - the query-string decoder. The input, cut at its first NUL, is the query.
 * Checks the hl_error invariants, that a failure zeroes the outputs and points inside the
 * query, that what decodes is within the documented ranges, and that writing the decoded
 * values back as a canonical query string decodes to the same values.
 */
#include "hl/json_codec.h"

#include "fuzz.h"

static int same_params(const hl_request_params *a, const hl_request_params *b)
{
    return a->has_k == b->has_k && (!a->has_k || a->k == b->k) && a->has_tau == b->has_tau &&
           (!a->has_tau || a->tau == b->tau) && a->has_max_levels == b->has_max_levels &&
           (!a->has_max_levels || a->max_levels == b->max_levels) &&
           a->has_min_cluster_size == b->has_min_cluster_size &&
           (!a->has_min_cluster_size || a->min_cluster_size == b->min_cluster_size) &&
           a->has_knn == b->has_knn && (!a->has_knn || strcmp(a->knn, b->knn) == 0) &&
           a->has_early_stop == b->has_early_stop &&
           (!a->has_early_stop || a->early_stop == b->early_stop) &&
           a->has_new_clusters == b->has_new_clusters &&
           (!a->has_new_clusters || strcmp(a->new_clusters, b->new_clusters) == 0);
}

/* The canonical query for decoded values. */
static void canonical(const hl_request_params *p, const char *model, size_t dim, char *out,
                      size_t cap)
{
    size_t n = 0;
#define PUT_(cond, ...)                                                                            \
    if (cond)                                                                                      \
        n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__);
    PUT_(model[0] != '\0', "model=%s&", model)
    PUT_(dim != 0, "dim=%zu&", dim)
    PUT_(p->has_k, "k=%d&", p->k)
    PUT_(p->has_tau, "tau=%.9g&", (double)p->tau)
    PUT_(p->has_max_levels, "max_levels=%d&", p->max_levels)
    PUT_(p->has_min_cluster_size, "min_cluster_size=%d&", p->min_cluster_size)
    PUT_(p->has_knn, "knn=%s&", p->knn)
    PUT_(p->has_early_stop, "early_stop=%s&", p->early_stop ? "true" : "0")
    PUT_(p->has_new_clusters, "new_clusters=%s", p->new_clusters)
#undef PUT_
    out[n] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    FUZZ_CHECK(q != NULL);
    if (size > 0)
        memcpy(q, data, size);
    q[size] = '\0';
    size_t len = strlen(q);
    hl_request_params p;
    char model[65];
    size_t dim = 12345;
    hl_error e;
    hl_error_clear(&e);
    /* The first byte's low bit says whether dim is wanted (data is not modified). */
    int want_dim = size > 0 && (data[0] & 1) != 0;
    hl_status st = hl_query_decode(q, &p, model, want_dim ? &dim : NULL, &e);
    fuzz_check_error(st, &e);
    fuzz_check_printable(e.msg);
    fuzz_check_printable(e.field);
    if (st != HL_OK) {
        FUZZ_CHECK(st == HL_INVAL);
        FUZZ_CHECK(!p.has_k && !p.has_tau && !p.has_knn && model[0] == '\0');
        FUZZ_CHECK(!want_dim || dim == 0);
        FUZZ_CHECK(e.field[0] != '\0');
        FUZZ_CHECK(!e.has_offset || e.offset <= len);
    } else {
        FUZZ_CHECK(len <= HL_QUERY_MAX_BYTES);
        FUZZ_CHECK(!p.has_k || (p.k >= 2 && p.k <= 1024));
        FUZZ_CHECK(!p.has_tau || (p.tau >= 0.0f && p.tau <= 1.0f));
        FUZZ_CHECK(!p.has_max_levels || (p.max_levels >= 1 && p.max_levels <= 64));
        FUZZ_CHECK(!p.has_min_cluster_size || p.min_cluster_size >= 1);
        FUZZ_CHECK(strlen(model) <= 64 &&
                   strspn(model, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                                 "opqrstuvwxyz0123456789_.-") == strlen(model));
        char c[1024], model2[65];
        hl_request_params p2;
        size_t dim2 = 0;
        canonical(&p, model, want_dim ? dim : 0, c, sizeof(c));
        FUZZ_CHECK(hl_query_decode(c, &p2, model2, &dim2, NULL) == HL_OK);
        FUZZ_CHECK(same_params(&p, &p2) && strcmp(model, model2) == 0);
        FUZZ_CHECK(dim2 == (want_dim ? dim : 0));
    }
    free(q);
    return 0;
}
