/*
 * hl/gnn.h - the GraphConv layer (spec section 1.3a), in row blocks.
 *
 * out_i = ReLU(W [h_i ; sum_j w_ij h_j] + b), where j runs over i's in-neighbours and w_ij is
 * the row-normalised similarity (graph->w). The node itself is not among its neighbours.
 * Blocks let the caller bound memory: only the block's gathered input is ever materialised.
 *
 * Thread-safety: reentrant; blocks may be computed concurrently into disjoint outputs.
 */
#ifndef HL_GNN_H
#define HL_GNN_H

#include "hl/graph.h"
#include "hl/lander.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Writes rows [i0, i0 + bn) of the GraphConv input into X (bn x 2F, F = the input's width):
 * the node's own input, then the weighted sum of its neighbours' inputs.
 */
void hl_gnn_gather(const hl_graph *g, const hl_node_input *in, size_t i0, size_t bn, float *x);

/** H (bn x out) = ReLU(X (bn x fin2) W^T + b), W is out x fin2 (PyTorch layout). */
void hl_gnn_dense_relu(const float *x, size_t bn, size_t fin2, const float *w, const float *b,
                       size_t out, float *h);

/**
 * The link head's first layer, split per node (spec section 1.5): S = H W_src^T + b_src and
 * T = H W_dst^T + b_dst for bn rows of the last GraphConv's output H (bn x out); S and T are
 * bn x hidden/2. An edge's pre-activation is then S[src] + T[dst] (+ its edge features' term).
 */
void hl_gnn_link_halves(const hl_model *m, const float *h, size_t bn, size_t out, float *s,
                        float *t);

/** z (rows x h2) = PReLU(z) with one slope per column. */
void hl_gnn_prelu_rows(float *z, size_t rows, size_t h2, const float *slope);

#ifdef __cplusplus
}
#endif

#endif /* HL_GNN_H */
