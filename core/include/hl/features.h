/*
 * hl/features.h - structural node and edge features of a kNN graph.
 *
 * These describe a point's neighbourhood without its coordinates, so a model that reads
 * only them works for any embedding dimension and domain (the "universal" model), and a
 * dimension-specific model can add them to its coordinates. Everything is computed from the
 * graph (similarities, ranks, reciprocity, shared neighbours, the parameter-free density)
 * plus each node's cluster size and the level index.
 *
 * Node features (HL_FEAT_NODE per node), with s_1 >= s_2 >= ... the node's kept similarities:
 *   0 s_1            1 s_3            2 s_5           3 s_last (the last kept)
 *   4 mean s         5 std s          6 density d = mean s(2s - 1)
 *   7 mean of the neighbours' d       8 d - (7)       9 in-degree / width
 *  10 share of mutual edges          11 log(cluster size)   12 level / 10
 *  13 mean s, standardised over the level's nodes    14 d, standardised over the level
 *  15 kept degree / width
 * Edge features (HL_FEAT_EDGE per slot j -> i; zero in unused slots):
 *   0 sim            1 rank of j in i's list / width
 *   2 rank of i in j's list / width (width + 1 when absent) / width
 *   3 mutual (1/0)   4 shared neighbours / width
 *   5 sim - s_1(i)   6 sim - mean s(i)   7 sim - mean s(j)   8 sim - s_last(i)
 *   9 d(j) - d(i)   10 log size(j) - log size(i)   11 sim - s_1(j)
 *  12 sim, standardised over the level's edges
 * A model stores the training mean and standard deviation of every feature and applies them
 * with hl_features_normalize().
 *
 * Thread-safety: reentrant; computed in parallel over node blocks (results do not depend on
 * the thread count).
 */
#ifndef HL_FEATURES_H
#define HL_FEATURES_H

#include "hl/arena.h"
#include "hl/graph.h"
#include "hl/status.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HL_FEAT_NODE 16
#define HL_FEAT_EDGE 13
/** Version of the feature definitions above; models record it and refuse another. */
#define HL_FEAT_VERSION 1

/** Arena bytes hl_features_compute() takes for n nodes. */
size_t hl_features_plan(size_t n, int width);

/**
 * Computes node (n x HL_FEAT_NODE) and edge (n x width x HL_FEAT_EDGE) features of `g`.
 * `size` holds each node's member count (NULL: all 1); `level` is the hierarchy level.
 * Returns HL_NOMEM if the arena is too small.
 */
hl_status hl_features_compute(const hl_graph *g, const float *size, int level, int n_threads,
                              hl_arena *scratch, float *node, float *edge);

/**
 * Standardises features in place with a model's statistics: x = (x - mean) / std per column
 * (std values <= 0 count as 1). `node` (may be NULL) has g->n rows of HL_FEAT_NODE; `edge`
 * (may be NULL) has g->n * width rows of HL_FEAT_EDGE, and unused slots stay zero.
 */
void hl_features_normalize(const hl_graph *g, float *node, float *edge, const float *node_mean,
                           const float *node_std, const float *edge_mean, const float *edge_std);

#ifdef __cplusplus
}
#endif

#endif /* HL_FEATURES_H */
