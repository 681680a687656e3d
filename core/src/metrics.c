/*
 * metrics.c - pairwise F, BCubed F and NMI from a hashed contingency table; see hl/metrics.h.
 *
 * DESIGN
 * Labels are first mapped to dense ids (truth 0..C-1, prediction 0..K-1; every -1 prediction
 * gets its own id) with an open-addressing hash map of int32 keys. The contingency table is a
 * second map keyed by (truth id, pred id) packed into 64 bits. Sizes are O(N); all sums are
 * accumulated in double, as the reference does with numpy int64/float64.
 */
#include "hl/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct hmap {
    uint64_t *keys;
    int64_t *vals;
    size_t mask;
    size_t used;
} hmap;

#define HMAP_EMPTY UINT64_MAX

static hl_status hmap_init(hmap *h, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2 + 1)
        cap <<= 1;
    h->keys = malloc(cap * sizeof(uint64_t));
    h->vals = calloc(cap, sizeof(int64_t));
    if (h->keys == NULL || h->vals == NULL) {
        free(h->keys);
        free(h->vals);
        return HL_NOMEM;
    }
    for (size_t i = 0; i < cap; i++)
        h->keys[i] = HMAP_EMPTY;
    h->mask = cap - 1;
    h->used = 0;
    return HL_OK;
}

static void hmap_free(hmap *h)
{
    free(h->keys);
    free(h->vals);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB93FE53B1A85ULL;
    x ^= x >> 33;
    return x;
}

/* Returns the slot of `key`, inserting it with value `init` if absent. The map never fills:
 * it was sized for at least twice the number of keys that can be inserted. */
static size_t hmap_slot(hmap *h, uint64_t key, int64_t init)
{
    size_t i = (size_t)mix64(key) & h->mask;
    while (h->keys[i] != HMAP_EMPTY && h->keys[i] != key)
        i = (i + 1) & h->mask;
    if (h->keys[i] == HMAP_EMPTY) {
        h->keys[i] = key;
        h->vals[i] = init;
        h->used++;
    }
    return i;
}

/* Maps labels to dense ids; with `unassigned_alone`, every -1 label gets a fresh id (other
 * negative values are ordinary labels, as hl/metrics.h documents). */
static hl_status dense_ids(const int32_t *lab, size_t n, int unassigned_alone, int32_t *ids,
                           size_t *count)
{
    hmap h;
    if (hmap_init(&h, n) != HL_OK)
        return HL_NOMEM;
    int64_t next = 0;
    for (size_t i = 0; i < n; i++) {
        if (unassigned_alone && lab[i] == -1) {
            ids[i] = (int32_t)next++;
            continue;
        }
        size_t s = hmap_slot(&h, (uint64_t)(uint32_t)lab[i], -1);
        if (h.vals[s] < 0)
            h.vals[s] = next++;
        ids[i] = (int32_t)h.vals[s];
    }
    hmap_free(&h);
    *count = (size_t)next;
    return HL_OK;
}

static double entropy(const int64_t *sizes, size_t k, double n)
{
    double h = 0.0;
    for (size_t i = 0; i < k; i++) {
        if (sizes[i] > 0) {
            double p = (double)sizes[i] / n;
            h -= p * log(p);
        }
    }
    return h;
}

static double f_of(double p, double r)
{
    return 2.0 * p * r / (p + r);
}

hl_status hl_metrics_compute(const int32_t *truth, const int32_t *pred, size_t n, hl_metrics *out)
{
    if (truth == NULL || pred == NULL || n == 0 || out == NULL)
        return HL_INVAL;
    memset(out, 0, sizeof(*out));
    hl_status st = HL_NOMEM;
    int32_t *ti = malloc(n * sizeof(int32_t));
    int32_t *pi = malloc(n * sizeof(int32_t));
    int64_t *a = NULL, *b = NULL;
    hmap cont = {NULL, NULL, 0, 0};
    size_t C = 0, K = 0;
    if (ti == NULL || pi == NULL)
        goto done;
    if (dense_ids(truth, n, 0, ti, &C) != HL_OK || dense_ids(pred, n, 1, pi, &K) != HL_OK)
        goto done;
    a = calloc(C, sizeof(int64_t));
    b = calloc(K, sizeof(int64_t));
    if (a == NULL || b == NULL || hmap_init(&cont, n) != HL_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        a[ti[i]]++;
        b[pi[i]]++;
        size_t s = hmap_slot(&cont, ((uint64_t)(uint32_t)ti[i] << 32) | (uint32_t)pi[i], 0);
        cont.vals[s]++;
    }
    double N = (double)n;
    double sum_nij2 = 0.0, sum_a2 = 0.0, sum_b2 = 0.0, pre = 0.0, rec = 0.0, mi = 0.0;
    for (size_t i = 0; i < C; i++)
        sum_a2 += (double)a[i] * (double)a[i];
    for (size_t j = 0; j < K; j++)
        sum_b2 += (double)b[j] * (double)b[j];
    for (size_t s = 0; s <= cont.mask; s++) {
        if (cont.keys[s] == HMAP_EMPTY)
            continue;
        size_t i = (size_t)(cont.keys[s] >> 32);
        size_t j = (size_t)(cont.keys[s] & 0xFFFFFFFFu);
        double nij = (double)cont.vals[s];
        sum_nij2 += nij * nij;
        pre += nij * nij / (double)b[j];
        rec += nij * nij / (double)a[i];
        mi += (nij / N) * (log(nij) + log(N) - log((double)a[i]) - log((double)b[j]));
    }
    double tk = sum_nij2 - N, pk = sum_b2 - N, qk = sum_a2 - N;
    out->fp_precision = tk / pk; /* NaN when pk == 0, as in the reference */
    out->fp_recall = tk / qk;
    out->fp = f_of(out->fp_precision, out->fp_recall);
    out->fb_precision = pre / N;
    out->fb_recall = rec / N;
    out->fb = f_of(out->fb_precision, out->fb_recall);
    if (C == 1 && K == 1) {
        out->nmi = 1.0;
    } else {
        if (mi < 0.0)
            mi = 0.0;
        double hm = 0.5 * (entropy(a, C, N) + entropy(b, K, N));
        double den = hm > 2.220446049250313e-16 ? hm : 2.220446049250313e-16;
        out->nmi = mi == 0.0 ? 0.0 : mi / den;
    }
    out->n = n;
    out->n_true = C;
    out->n_pred = K;
    st = HL_OK;
done:
    free(ti);
    free(pi);
    free(a);
    free(b);
    hmap_free(&cont);
    return st;
}
