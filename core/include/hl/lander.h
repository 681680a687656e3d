/*
 * hl/lander.h - the LANDER model: parameters, and the inference forward pass.
 *
 * A model is a GraphConv encoder (1 to 4 layers, spec section 1.3a/1.4) followed by the link
 * head (separate src/dst Linear layers, PReLU, Linear, PReLU, Linear to 2 logits; section 1.5)
 * and the parameter-free density head (section 1.6). Two kinds exist:
 *   - HL_MODEL_LANDER: the paper's model for one embedding dimension `dim`. Its node input is
 *     [x ; cluster mean] (use_cluster_feat) or x, optionally followed by the structural node
 *     features of hl/features.h, so in_features is dim * (1 + use_cluster_feat) + node
 *     features. It may also take the structural edge features.
 *   - HL_MODEL_UNIVERSAL: dimension-agnostic. Its node input is `in_features` structural
 *     features computed from the graph (never coordinates), and `edge_features` per-edge structural
 * inputs enter the link head through an extra Linear (no bias) added to src_mlp(h_j) +
 * dst_mlp(h_i).
 *
 * All parameters live in one contiguous float array (`params`), which the trainer and the
 * optimiser treat as a flat vector; named tensor views index into it. Weights use PyTorch's
 * nn.Linear layout (out x in, row-major).
 *
 * Ownership: hl_model_new() returns a new model, hl_model_free() releases it. A loaded model
 * is immutable during inference and may be shared read-only by any number of threads.
 *
 *     hl_model_config cfg; hl_model_config_default(&cfg, HL_MODEL_LANDER, 128);
 *     hl_model *m; hl_model_new(&cfg, NULL, &m);
 *     hl_model_init_params(m, seed);
 *     size_t bytes = hl_lander_plan(m, n, k);
 *     hl_lander_forward(m, &graph, &input, NULL, &fp, &arena, prob, dens);
 *     hl_model_free(m);
 */
#ifndef HL_LANDER_H
#define HL_LANDER_H

#include "hl/arena.h"
#include "hl/graph.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hl_model_kind {
    HL_MODEL_LANDER = 1,
    HL_MODEL_UNIVERSAL = 2,
} hl_model_kind;

/** Returns "lander" or "universal" (or "unknown"). */
const char *hl_model_kind_name(hl_model_kind kind);

#define HL_MAX_CONV    4
#define HL_MAX_TENSORS (2 * HL_MAX_CONV + 16)

typedef struct hl_model_config {
    hl_model_kind kind;
    int32_t dim;              /**< embedding dimension (lander); 0 for universal */
    int32_t in_features;      /**< GNN node input width F_in */
    int32_t edge_features;    /**< per-edge inputs of the link head (universal), else 0 */
    int32_t hidden;           /**< nhid, even, >= 2 */
    int32_t n_conv;           /**< 1..4 GraphConv layers */
    int32_t use_cluster_feat; /**< lander: input is [x ; cluster mean] */
    int32_t k;                /**< recommended kNN size (self included) */
    float tau;                /**< recommended link threshold */
} hl_model_config;

/**
 * Defaults for a kind: the paper's face configuration for HL_MODEL_LANDER (hidden 512, one
 * conv, cluster features, k 10, tau 0.8); for HL_MODEL_UNIVERSAL, `dim` is ignored, hidden
 * is 128 and the feature counts are left 0 for the structural feature builder to set.
 */
void hl_model_config_default(hl_model_config *cfg, hl_model_kind kind, int32_t dim);

/** Checks a configuration; on error fills `err` (field = the offending member). */
hl_status hl_model_config_check(const hl_model_config *cfg, hl_error *err);

/** A named view of one parameter tensor. */
typedef struct hl_tensor_view {
    const char *name;
    int ndim;
    size_t dims[2];
    float *data;
    size_t count;
} hl_tensor_view;

typedef struct hl_model {
    hl_model_config cfg;
    int32_t conv_in[HL_MAX_CONV];
    int32_t conv_out[HL_MAX_CONV];
    size_t n_params;
    float *params; /**< the flat parameter vector (owned) */
    /* Views into params (PyTorch layout). */
    float *conv_w[HL_MAX_CONV]; /**< conv_out x 2*conv_in: [self | aggregated] */
    float *conv_b[HL_MAX_CONV];
    float *src_w, *src_b; /**< h2 x out_last, h2 */
    float *dst_w, *dst_b;
    float *edge_w;               /**< h2 x edge_features (universal), else NULL */
    float *prelu1;               /**< h2 slopes */
    float *fc1_w, *fc1_b;        /**< h2 x h2, h2 */
    float *prelu2;               /**< h2 slopes */
    float *fc2_w, *fc2_b;        /**< 2 x h2, 2 */
    float *node_mean, *node_std; /**< node_features each, or NULL */
    float *edge_mean, *edge_std; /**< edge_features each, or NULL */
    size_t n_tensors;
    hl_tensor_view tensors[HL_MAX_TENSORS];
    char names[HL_MAX_TENSORS][32];
    size_t tensor_off[HL_MAX_TENSORS];   /**< private: offsets into params */
    float **tensor_slot[HL_MAX_TENSORS]; /**< private: the field each view feeds */
    char name[64];                       /**< registry name, e.g. "glyphs-128" */
    char trained_on[128];                /**< free text for the model card and the API */
} hl_model;

/**
 * Creates a model with the given shapes; parameters are zero. Returns HL_INVAL (with `err`)
 * for a bad configuration, HL_NOMEM on allocation failure.
 */
hl_status hl_model_new(const hl_model_config *cfg, hl_error *err, hl_model **out);

/** Releases a model made by hl_model_new(). NULL is a no-op. */
void hl_model_free(hl_model *m);

/** Deep copy. */
hl_status hl_model_clone(const hl_model *m, hl_model **out);

/**
 * PyTorch default initialisation with a deterministic generator: nn.Linear weights and
 * biases U(+-1/sqrt(fan_in)) (kaiming-uniform, a = sqrt(5)), PReLU slopes 0.25.
 */
void hl_model_init_params(hl_model *m, uint64_t seed);

/** The tensor with this name, or NULL. */
const hl_tensor_view *hl_model_tensor(const hl_model *m, const char *name);

/** Width of the last conv layer's output. */
int32_t hl_model_out_dim(const hl_model *m);

/** Structural node features the model reads (0 for a coordinates-only lander model). */
int32_t hl_model_node_features(const hl_model *m);

#define HL_MAX_INPUT_PARTS 3

/** The GNN node input: row i is the concatenation of part[0..n_parts) rows. Borrowed. */
typedef struct hl_node_input {
    int n_parts;
    const float *part[HL_MAX_INPUT_PARTS];
    size_t dim[HL_MAX_INPUT_PARTS];
} hl_node_input;

/** Total width of an input (sum of the parts' dims). */
size_t hl_node_input_width(const hl_node_input *in);

typedef struct hl_forward_params {
    int n_threads;
    hl_cancel cancel;
    hl_progress progress; /**< stage HL_STAGE_GNN */
    int level;
    /** Optional outputs (NULL: not kept). keep_hidden[l] (n x conv_out[l]) receives the output
     * of conv layer l for every layer before the last; keep_S (n x hidden/2) the link head's
     * source projection S = h W_src^T + b_src. Incremental assignment caches these. */
    float *keep_hidden[HL_MAX_CONV - 1];
    float *keep_S;
} hl_forward_params;

/** Arena bytes hl_lander_forward() needs for n nodes of a graph built with k. */
size_t hl_lander_plan(const hl_model *m, size_t n, int k, int n_threads);

/**
 * Runs the model on graph `g`: writes prob[i * width + s] = P(edge nbr -> i links the same
 * class) for every used slot (0 for unused ones) and dens[i], the density head. The width
 * of `in` must equal in_features. `edge_feat` (n * width * edge_features, already
 * normalised) is required when the model has edge features and ignored otherwise. Returns HL_INVAL
 * on shape mismatch, HL_NOMEM if the arena is too small, HL_CANCELED if the hook asked to stop.
 */
hl_status hl_lander_forward(const hl_model *m, const hl_graph *g, const hl_node_input *in,
                            const float *edge_feat, const hl_forward_params *p, hl_arena *scratch,
                            float *prob, float *dens);

#ifdef __cplusplus
}
#endif

#endif /* HL_LANDER_H */
