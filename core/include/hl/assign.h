/*
 * hl/assign.h - incremental assignment: new points join a finished clustering with stable ids
 * (hilander.md section 9.2).
 *
 * A clustering state keeps what placing new points needs without recomputing the stored
 * graph. For every point: its L2-normalised features, its final label and its label at every
 * level. For every level the stored clustering ran (level l's nodes are the peaks of level
 * l - 1; level 0's nodes are the points): each node's peak (a point index), member count,
 * kNN row (in-neighbours and similarities), density, and what the model needs of a stored
 * node when it is the source of an edge into a new node: its normalised structural node
 * features, the outputs of the conv layers before the last (the next layer aggregates them)
 * and the link head's source projection S = h W_src^T + b_src; at levels >= 1 of a lander
 * model with cluster features also its cluster mean. Plus each level's statistics for the
 * standardised structural features, the clustering's k and tau, and the model's
 * configuration, name and checksum.
 *
 * hl_assign_run() places new points level by level, starting at level 0 with one node per
 * new point:
 *   1. kNN of the new nodes against the stored nodes of the level (exact, 2k candidates) and
 *      against each other; each new node's row keeps the k - 1 best of both with similarity
 *      > 0, as the graph of hl/graph.h does.
 *   2. Structural features of each new node from its row, its neighbours' rows (stored rows
 *      as they were) and the level's stored statistics. A new node's in-degree counts the
 *      new rows that contain it plus the stored candidates whose row it would enter (its
 *      similarity beats their last kept neighbour); reverse neighbours outside the 2k
 *      candidates are not counted.
 *   3. The model on the new nodes only: each conv layer aggregates stored neighbours' cached
 *      inputs and hidden states and new neighbours' freshly computed ones; the link head
 *      scores every in-edge j -> q of a new node q with S[j] (cached for stored j) + T[q];
 *      the density of q is the mean of sim (2 p - 1) over its in-edges. Stored nodes are
 *      never recomputed: their rows, densities and cached values stay as they were.
 *   4. The decode rule: q's parent is its most probable in-neighbour with p > tau among the
 *      new neighbours that are denser (by (density, -index), as in hl/decode.h) and the
 *      stored neighbours. With HL_ATTACH_DENSER a stored neighbour must be denser too (its
 *      stored density); with HL_ATTACH_ANY (the default) any stored neighbour qualifies, since
 *      stored clusters are fixed and a new node's density, computed with the new points in
 *      its neighbourhood, is not comparable with densities computed without them (new points
 *      of an existing class would otherwise peak on their own and open duplicate clusters).
 *      Parent chains among new nodes climb the density order, so they end at a stored node
 *      (the new node joins that node's cluster) or at a new root.
 *   5. The new roots become the new nodes of the next level (peak feature, members' count and
 *      cluster mean, as in the driver), up to the stored clustering's last level.
 * A point whose chain reaches a stored node gets that node's final label. Trees that reach
 * nothing form new clusters with fresh ids (greater than every existing id, in order of
 * first appearance), or get -1 with HL_NEW_UNASSIGNED. Existing ids never change. The score
 * of a point is the link probability of the edge that gave its node a parent at the lowest
 * level where it got one (the similarity without a model), 0 for a new cluster's root.
 *
 * hl_assign_apply() appends the new points to the state (with HL_NEW_UNASSIGNED the -1
 * points are left out, and stored rows never point at them), so the next assign sees them as
 * stored points and keeps their ids too. Stored super-node statistics (counts, means) stay
 * as they were.
 *
 * Ownership: states and assignments are created by this library and freed with their _free
 * function. Every array of a state is an individual malloc() block (proto's decoder builds
 * states this way). Thread-safety: reentrant; a state may be read by several hl_assign_run()
 * calls at once, but hl_assign_apply() needs exclusive access.
 *
 *     hl_assign_state *s;
 *     hl_cluster_run_state(x, n, d, model, crc, &cp, &c, &s, &err);
 *     hl_assign_params ap; hl_assign_params_default(&ap); ap.model_checksum = crc;
 *     hl_assignment *a;
 *     if (hl_assign_run(s, model, y, m, d, &ap, &a, &err) == HL_OK) {
 *         ... a->labels, a->scores ...;
 *         hl_assign_apply(s, a, &err);
 *         hl_assignment_free(a);
 *     }
 *     hl_assign_state_free(s);
 */
#ifndef HL_ASSIGN_H
#define HL_ASSIGN_H

#include "hl/cluster.h"
#include "hl/lander.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HL_ASSIGN_MAX_LEVELS 64
/** Level statistics kept for the standardised features: means of (node mean similarity,
 * node density, edge similarity), then their standard deviations. */
#define HL_ASSIGN_FSTATS 6

/** One level of a stored clustering. Arrays have n rows (capacity cap). */
typedef struct hl_assign_level {
    size_t n, cap;
    int width;    /**< slots per node, k - 1 of this level */
    int32_t *rep; /**< the node's peak (point index); at level 0 rep[i] == i */
    int32_t *cnt; /**< members when the level ran (>= 1) */
    int32_t *nbr; /**< n x width in-neighbours (node ids of this level); -1 in unused
                       slots and for a neighbour that is no longer in the state */
    float *sim;   /**< n x width similarities (0 in unused slots) */
    int32_t *deg; /**< kept in-degree, 0..width */
    float *dens;  /**< density */
    float *cmean; /**< n x d cluster means, or NULL (not needed by the model) */
    float *node;  /**< n x HL_FEAT_NODE normalised node features, or NULL */
    float *hidden[HL_MAX_CONV - 1]; /**< n x conv_out[l] for l < n_conv - 1, else NULL */
    float *S;                       /**< n x hidden/2, or NULL without a model */
    float fstats[HL_ASSIGN_FSTATS];
    int32_t *labels; /**< point labels after this level's merge (state n points, >= 0) */
} hl_assign_level;

typedef struct hl_assign_state {
    size_t n, cap;   /**< points (capacity) */
    size_t d;        /**< dimension */
    float *x;        /**< n x d L2-normalised features */
    int32_t *labels; /**< n final labels; -1 for clusters below min_cluster_size */
    int n_levels;    /**< 1..HL_ASSIGN_MAX_LEVELS */
    hl_assign_level *levels;
    int k;     /**< the clustering's k (self included) */
    float tau; /**< the clustering's link threshold */
    /* The model that made the state (has_model 0: the model-free mode). */
    int has_model;
    uint32_t model_checksum; /**< CRC-32C of the model file's payload */
    char model_name[64];
    hl_model_config model_cfg; /**< zeroed when has_model is 0 */
} hl_assign_state;

/** Releases a state and every array it owns. NULL is a no-op. */
void hl_assign_state_free(hl_assign_state *s);

/**
 * Checks everything the engine relies on before it reads a state: sizes and capacities,
 * every id in range (reps, neighbours), degrees, widths, which cached arrays exist for the
 * model configuration, level node counts that never grow with the level, finite values,
 * labels >= -1 (final) and >= 0 (levels). HL_FORMAT with `err` on the first violation.
 */
hl_status hl_assign_state_check(const hl_assign_state *s, hl_error *err);

/**
 * Widths of the cached arrays for a model configuration: node features (0 when the model
 * reads none), conv outputs before the last (hidden[l], 0 beyond n_conv - 1), S (hidden/2),
 * and whether levels >= 1 keep cluster means. All 0 for has_model == 0.
 */
typedef struct hl_assign_widths {
    size_t node, hidden[HL_MAX_CONV - 1], S;
    int cmean;
} hl_assign_widths;
void hl_assign_widths_of(int has_model, const hl_model_config *cfg, hl_assign_widths *w);

/**
 * hl_cluster_run() that also returns the clustering's state (*state, free with
 * hl_assign_state_free). `model_checksum` identifies `m` (the model file's CRC) and is
 * recorded; `m` may be NULL (model-free). Needs n >= 2. Errors as hl_cluster_run().
 */
hl_status hl_cluster_run_state(const float *x, size_t n, size_t d, const hl_model *m,
                               uint32_t model_checksum, const hl_cluster_params *p,
                               hl_clustering **out, hl_assign_state **state, hl_error *err);

typedef enum hl_new_clusters {
    HL_NEW_OPEN = 0,       /**< trees that reach no stored node open new clusters */
    HL_NEW_UNASSIGNED = 1, /**< they get -1 and are not added to the state */
} hl_new_clusters;

typedef enum hl_attach_rule {
    HL_ATTACH_ANY = 0,    /**< any stored in-neighbour with p > tau may be the parent */
    HL_ATTACH_DENSER = 1, /**< a stored in-neighbour must also be denser (batch decode rule) */
} hl_attach_rule;

typedef struct hl_assign_params {
    hl_new_clusters new_clusters;
    hl_attach_rule attach;
    uint32_t model_checksum; /**< must equal the state's when it has a model */
    int n_threads;
    hl_cancel cancel;     /**< polled per kNN tile, per layer and per level */
    hl_progress progress; /**< stages knn, gnn, decode with the level */
} hl_assign_params;

/** HL_NEW_OPEN, HL_ATTACH_ANY, checksum 0, one thread, no hooks. */
void hl_assign_params_default(hl_assign_params *p);

typedef struct hl_assignment {
    size_t n;
    int32_t *labels;   /**< n: an existing id, a new id, or -1 */
    float *scores;     /**< n: link probability of the deciding edge, 0 for a new root */
    int32_t *level;    /**< n: level at which the point's tree joined a stored node, -1 if none */
    size_t n_attached; /**< points that joined existing clusters */
    size_t n_new_clusters;
    size_t n_unassigned;
    size_t n_kept; /**< points hl_assign_apply() adds to the state */
    void *priv;    /**< the state additions */
} hl_assignment;

/**
 * Places the n new points `x` (n x d, rows need not be normalised) into the clustering of
 * `s` with model `m` (which must be the state's: same configuration and checksum; NULL for
 * a model-free state). The state is only read. Deterministic, identical for any thread
 * count. Errors (with `err`): HL_INVAL for bad parameters, n = 0 or a model/state mismatch
 * (field "model"); HL_RANGE for a dimension that differs from the state's (field "dim");
 * HL_NUMERIC for NaN/Inf (row, column); HL_NOMEM; HL_CANCELED; HL_FORMAT for a state that
 * fails hl_assign_state_check().
 */
hl_status hl_assign_run(const hl_assign_state *s, const hl_model *m, const float *x, size_t n,
                        size_t d, const hl_assign_params *p, hl_assignment **out, hl_error *err);

/**
 * Appends an assignment's points to the state it was computed from (the state must not have
 * changed since). All or nothing: on HL_NOMEM the state is unchanged. HL_INVAL when the
 * assignment does not belong to this state.
 */
hl_status hl_assign_apply(hl_assign_state *s, const hl_assignment *a, hl_error *err);

/** Releases an assignment. NULL is a no-op. */
void hl_assignment_free(hl_assignment *a);

#ifdef __cplusplus
}
#endif

#endif /* HL_ASSIGN_H */
