/*
 * hl/metrics.h - clustering quality against ground truth (spec section 5).
 *
 * All three metrics come from the contingency table n_ij = |gt class i ∩ predicted cluster j|,
 * built with a hash map over (gt, pred) pairs in O(N + distinct pairs):
 *   - pairwise (Fp): tk = sum n_ij^2 - N, pk = sum b_j^2 - N, qk = sum a_i^2 - N;
 *     P = tk/pk, R = tk/qk, F = 2PR/(P+R). NaN where the reference gives NaN (pk = 0, qk = 0,
 *     or P = R = 0).
 *   - BCubed (Fb): P = sum n_ij^2/b_j / N, R = sum n_ij^2/a_i / N, F = 2PR/(P+R).
 *   - NMI: sklearn's arithmetic normalisation, MI / max(mean(H_gt, H_pred), eps) with natural
 *     logs; 1.0 when both labelings have one cluster; 0.0 when MI is 0 otherwise.
 * Labels are arbitrary int32 values. A predicted label of -1 (unassigned) counts as its own
 * singleton cluster for every -1 item, as an unassigned point is alone.
 *
 * Thread-safety: reentrant. Allocates its hash table with malloc and frees it before return.
 */
#ifndef HL_METRICS_H
#define HL_METRICS_H

#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_metrics {
    double fp, fp_precision, fp_recall; /**< pairwise */
    double fb, fb_precision, fb_recall; /**< BCubed */
    double nmi;
    size_t n;      /**< items */
    size_t n_true; /**< distinct ground-truth classes */
    size_t n_pred; /**< distinct predicted clusters (each -1 item counted as one) */
} hl_metrics;

/**
 * Computes every metric of `pred` against `truth` (both n long). Returns HL_INVAL for n = 0
 * or NULL arrays, HL_NOMEM if the hash table cannot be allocated.
 */
hl_status hl_metrics_compute(const int32_t *truth, const int32_t *pred, size_t n, hl_metrics *out);

#ifdef __cplusplus
}
#endif

#endif /* HL_METRICS_H */
