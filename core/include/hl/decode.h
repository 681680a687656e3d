/*
 * hl/decode.h - turning link scores into trees (spec section 4.2, steps 3-5).
 *
 * Each node keeps at most one parent: among its in-neighbours j that are denser and whose
 * link score exceeds tau (score > tau), the one with the highest score; ties go to the first
 * slot (kNN order). "Denser" is the reference's strict dens[j] > dens[i], extended to a total
 * order by index for exactly equal densities (dens[j] == dens[i] and j < i). Without that
 * extension exact duplicates, whose densities are identical, could never link and would stay
 * singletons. Every chain climbs the total order, so the parents form a forest whose roots
 * are the peaks.
 *
 * Thread-safety: reentrant; no allocation.
 */
#ifndef HL_DECODE_H
#define HL_DECODE_H

#include "hl/graph.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Writes parent[i] (a node id, or -1) for every node of `g`. `score` holds one value per
 * slot (n * width; the link probability, or NULL to use the edge similarity). Returns the
 * number of nodes that got a parent.
 */
size_t hl_decode_parents(const hl_graph *g, const float *score, const float *dens, float tau,
                         int32_t *parent);

/**
 * Resolves the root of every node of a parent forest (parent[i] = -1 for roots) into
 * root[i], in O(n). Returns HL_INTERNAL if the parents contain a cycle or an id out of
 * range (which the decode rule never produces), HL_OK otherwise.
 */
hl_status hl_decode_roots(const int32_t *parent, size_t n, int32_t *root);

/**
 * Merges a level's trees into the next level's nodes (spec 4.2 step 8), in place:
 * peaks keep their order and get new ids 0..m-1 (newid[i], -1 for non-peaks); the peak rows
 * of `x` (n x d) move to their new ids; `cmean` (n x d, each row the mean of a node's
 * members) and `cnt` (members per node) become the members-weighted means and counts of the
 * merged trees. `root` comes from hl_decode_roots(). Returns m, the number of peaks.
 * `x` may be NULL (d rows of cluster means only), and `cmean` may be NULL (counts only).
 */
size_t hl_decode_merge(const int32_t *parent, const int32_t *root, size_t n, size_t d, float *x,
                       float *cmean, int32_t *cnt, int32_t *newid);

/**
 * The first level's merge, where every node is one point (count 1) and its own mean:
 * the same result as hl_decode_merge() with cnt[i] = 1 and cmean a copy of `x`, bit for bit,
 * but `cmean` is written only in its first m rows (the tree means, compacted), so a caller
 * never touches the n x d copy. `x` is compacted as in hl_decode_merge(); cnt gets the m
 * tree sizes. Returns m.
 */
size_t hl_decode_merge_first(const int32_t *parent, const int32_t *root, size_t n, size_t d,
                             float *x, float *cmean, int32_t *cnt, int32_t *newid);

#ifdef __cplusplus
}
#endif

#endif /* HL_DECODE_H */
