/*
 * hl/graph.h - the kNN graph the model and the decode run on.
 *
 * Edges point from a neighbour j to the centre i whose kNN list contains j (DGL's
 * graph(src=j, dst=i)); a node's in-edges are its own kNN list. Storage is dense: each node
 * has `width` = k - 1 slots, the first deg[i] of which are used, in kNN order (similarity
 * descending, index ascending). The graph drops self loops and edges of similarity <= 0
 * (so a zero vector has no edges and stays a singleton). When the kNN row does not contain
 * the node itself (more than k duplicates), the last neighbour is dropped, so a node never
 * has more than k - 1 in-edges.
 *
 * Ownership: the arrays come from the arena passed to hl_graph_init(); the graph never frees.
 * Thread-safety: read-only sharing is safe.
 */
#ifndef HL_GRAPH_H
#define HL_GRAPH_H

#include "hl/arena.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_graph {
    size_t n;     /**< nodes */
    int width;    /**< slots per node, k - 1 */
    int32_t *nbr; /**< n * width neighbour ids, -1 in unused slots */
    float *sim;   /**< n * width cosine similarity of each edge */
    float *w;     /**< n * width aggregation weight: sim / sum of the row's sims */
    int32_t *deg; /**< n kept in-degrees */
} hl_graph;

/** Arena bytes hl_graph_init() takes for n nodes and k neighbours (self included). */
size_t hl_graph_plan(size_t n, int k);

/** Allocates the arrays for n nodes from `a`. HL_INVAL for k < 2, HL_NOMEM if `a` is full. */
hl_status hl_graph_init(hl_graph *g, size_t n, int k, hl_arena *a);

/**
 * Fills `g` (already initialised for g->n nodes) from kNN rows `idx`/`sim` (g->n x k, as
 * written by hl_knn_exact).
 */
void hl_graph_from_knn(hl_graph *g, const int32_t *idx, const float *sim, int k);

/** Total number of edges (sum of degrees). */
size_t hl_graph_edges(const hl_graph *g);

/**
 * The parameter-free density estimate: for each node, the mean over its in-edges of
 * sim * (2 * score - 1), where score is `score[i * width + s]`, or the similarity itself when
 * `score` is NULL. A node without edges gets 0. This is the model's density head (with
 * score = link probability) and the model-free density (score = similarity).
 */
void hl_graph_density(const hl_graph *g, const float *score, float *dens);

/**
 * Ground-truth density of the reference (spec section 2.3), used for training: over all
 * k - 1 listed neighbours of each kNN row except the node itself, including those the graph
 * dropped, the mean of sim * (+1 if same label else -1). `idx`/`sim` are n x k.
 */
void hl_density_truth(const int32_t *idx, const float *sim, size_t n, int k, const int32_t *labels,
                      float *dens);

#ifdef __cplusplus
}
#endif

#endif /* HL_GRAPH_H */
