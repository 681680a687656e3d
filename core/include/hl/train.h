/*
 * hl/train.h - meta-training LANDER models on labelled embeddings (spec section 3).
 *
 * Training data is a set of graphs built offline from the ground truth: for every (k, L)
 * setting, level 0 is the kNN graph of the points; each next level decodes the current one
 * with the ground-truth density (spec 2.3) and the similarity as link score (tau = 0), and
 * keeps the peaks, whose cluster features are the means of their members (spec 3.1). Every
 * graph carries its structural features, link labels (same class) and the loss mask (edges
 * whose source is strictly denser than the centre by ground-truth density).
 *
 * The loss is the spec's (1.7): density MSE over all nodes plus cross-entropy over the masked
 * edges, balanced by dropping random majority-class edges until both classes are equal.
 * Gradients are exact (checked against finite differences in the tests) and computed over
 * the full graph in fixed blocks whose partial sums are reduced in block order, so a given
 * seed produces byte-identical parameters for any thread count.
 *
 *     hl_train_data *td;
 *     hl_train_data_build(&sets, n_sets, &tp, &td, &err);       // the hierarchy graphs
 *     hl_train_fit_normalizer(model, td);                        // feature statistics
 *     hl_optim *o; hl_optim_new(model, &op, &o);
 *     for (e = 0; e < epochs; e++) hl_train_epoch(model, td, o, &tp, e, &stats);
 *
 * Ownership: _new/_build return objects freed by the matching _free. Thread-safety: one
 * user per object; the model is modified only by hl_optim_step().
 */
#ifndef HL_TRAIN_H
#define HL_TRAIN_H

#include "hl/graph.h"
#include "hl/lander.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One labelled data set (borrowed). Coordinates are used by lander models only. */
typedef struct hl_train_set {
    const float *x; /**< n x d */
    size_t n, d;
    const int32_t *labels; /**< n */
} hl_train_set;

#define HL_TRAIN_MAX_SETTINGS 8

typedef struct hl_train_params {
    int n_settings;                    /**< (k, levels) pairs for the hierarchy */
    int knn_k[HL_TRAIN_MAX_SETTINGS];  /**< e.g. 10 */
    int levels[HL_TRAIN_MAX_SETTINGS]; /**< e.g. 3 */
    int balance;                       /**< drop majority edges to balance (spec: on) */
    int n_threads;
    uint64_t seed;
    hl_progress progress; /**< stage HL_STAGE_TRAIN while building */
} hl_train_params;

/** k = 10 with 3 levels, balance on, 1 thread, seed 1. */
void hl_train_params_default(hl_train_params *p);

/** One training graph of the hierarchy. All arrays owned by the hl_train_data. */
typedef struct hl_train_graph {
    hl_graph g;
    int set, setting, level, k;
    size_t d;       /**< coordinate dimension (0 if the set has none) */
    float *x;       /**< n x d normalised peak features */
    float *c;       /**< n x d cluster means */
    float *size;    /**< n member counts */
    float *node;    /**< n x HL_FEAT_NODE structural features (normalised after fit) */
    float *edge;    /**< n x width x HL_FEAT_EDGE */
    float *gt_dens; /**< n ground-truth densities */
    uint8_t *same;  /**< n x width: 1 when both ends share a label */
    uint8_t *mask;  /**< n x width: gt_dens[j] > gt_dens[i] (the loss mask) */
} hl_train_graph;

typedef struct hl_train_data {
    size_t n_graphs;
    hl_train_graph *graphs;
    int normalized; /**< features standardised with a model's statistics */
    void *priv;
} hl_train_data;

/**
 * Builds the hierarchy graphs of every set and setting. Errors (with `err`): HL_INVAL for
 * labels/feature counts that disagree, fewer than 2 classes in a set, bad settings;
 * HL_NOMEM.
 */
hl_status hl_train_data_build(const hl_train_set *sets, size_t n_sets, const hl_train_params *p,
                              hl_train_data **out, hl_error *err);

void hl_train_data_free(hl_train_data *td);

/**
 * Measures the mean and standard deviation of every structural feature over all graphs
 * (edge features over used slots only), stores them in the model's norm tensors and applies
 * them (hl_train_apply_normalizer). Models without structural inputs: no-op.
 */
void hl_train_fit_normalizer(hl_model *m, hl_train_data *td);

/** Only measures and stores the statistics (the first half of hl_train_fit_normalizer). */
void hl_train_fit_normalizer_stats(hl_model *m, const hl_train_data *td);

/**
 * Standardises the graphs' features with the model's stored statistics, once (a resumed
 * model keeps the statistics it was trained with).
 */
void hl_train_apply_normalizer(const hl_model *m, hl_train_data *td);

/** Per-call training statistics. */
typedef struct hl_grad_stats {
    double loss, loss_conn, loss_den;
    size_t n_sel;     /**< edges in the cross-entropy */
    size_t n_correct; /**< of those, predicted on the right side of 0.5 */
    size_t n_nodes;
} hl_grad_stats;

/**
 * Loss and exact gradient of the model on one graph. `sel` (n x width, may be NULL = the
 * graph's mask) selects the cross-entropy edges. `grad` (n_params floats) is overwritten.
 * The model's structural inputs must already be normalised (hl_train_fit_normalizer).
 */
hl_status hl_lander_grad(const hl_model *m, const hl_train_graph *tg, const uint8_t *sel,
                         int n_threads, float *grad, hl_grad_stats *st);

/** The same loss without the gradient (for checks and validation). */
hl_status hl_lander_loss(const hl_model *m, const hl_train_graph *tg, const uint8_t *sel,
                         int n_threads, hl_grad_stats *st);

/**
 * The balanced selection of the spec: among masked edges, keeps every edge of the minority
 * class and as many random majority-class edges (without replacement, from `seed`).
 * Writes sel (n x width). Returns the number selected.
 */
size_t hl_train_balance(const hl_train_graph *tg, uint64_t seed, uint8_t *sel);

typedef enum hl_optim_kind {
    HL_OPTIM_SGD = 0,
    HL_OPTIM_ADAM = 1,
} hl_optim_kind;

typedef struct hl_optim_params {
    hl_optim_kind kind;
    float lr, lr_min;        /**< cosine from lr to lr_min over total_steps */
    float momentum;          /**< SGD */
    float weight_decay;      /**< L2 added to the gradient, as PyTorch */
    float beta1, beta2, eps; /**< Adam */
    size_t total_steps;
} hl_optim_params;

/** SGD, lr 0.01, lr_min 1e-5, momentum 0.9, weight decay 1e-5 (spec 3.3). */
void hl_optim_params_default(hl_optim_params *p);

typedef struct hl_optim hl_optim;

hl_status hl_optim_new(const hl_model *m, const hl_optim_params *p, hl_optim **out);
void hl_optim_free(hl_optim *o);

/** One step with gradient `grad`; the learning rate follows the cosine schedule. */
void hl_optim_step(hl_optim *o, hl_model *m, const float *grad);

/** The learning rate the next step will use. */
float hl_optim_lr(const hl_optim *o);

typedef struct hl_epoch_stats {
    double loss, loss_conn, loss_den;
    double link_acc; /**< on the selected edges */
    size_t steps;
} hl_epoch_stats;

/**
 * One epoch: every graph once, in an order shuffled from (seed, epoch), one optimiser step
 * per graph with a freshly balanced edge selection.
 */
hl_status hl_train_epoch(hl_model *m, hl_train_data *td, hl_optim *o, const hl_train_params *p,
                         int epoch, hl_epoch_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* HL_TRAIN_H */
