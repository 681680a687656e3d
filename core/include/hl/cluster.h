/*
 * hl/cluster.h - the hierarchical clustering driver (spec section 4, Appendix A).
 *
 * Level by level: L2-normalise, kNN over the current nodes (exact, or approximate IVF above a
 * size threshold: see knn in hl_cluster_params), graph, model (or the
 * model-free scores), decode into trees, merge trees into super-nodes whose feature is the
 * peak's and whose cluster feature is the mean of all original members, and repeat until a
 * level adds no link, the level limit is reached, the early-stop ratio test fires, or (from
 * level 1 on) a level has no more than k nodes. Level 0 always runs when N >= 2, with k
 * clamped to N, so tiny inputs still cluster (the reference stops before level 0 there).
 *
 * Every level's labels are returned (a hierarchy of nested partitions): level l is the
 * partition after the merges of levels 0..l. Only levels that added links are recorded,
 * except level 0, which is always recorded. Labels are 0-based in order of first appearance;
 * after min_cluster_size filtering, members of smaller clusters get -1 in the final labels.
 *
 * Memory: one arena sized by hl_cluster_plan() holds every engine buffer; pages the run never
 * touches cost nothing. The result arrays are malloc'd and owned by the hl_clustering.
 * Thread-safety: reentrant; the model is only read. See hl/knn.h for the hooks' rules.
 *
 *     hl_cluster_params p; hl_cluster_params_default(&p);
 *     hl_clustering *c;
 *     if (hl_cluster_run(x, n, d, model_or_NULL, &p, &c, &err) == HL_OK) { ...;
 * hl_clustering_free(c); }
 */
#ifndef HL_CLUSTER_H
#define HL_CLUSTER_H

#include "hl/knn.h"
#include "hl/lander.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * One level as the driver sees it after the level's decode and before its merge, for
 * hl_cluster_params.level_hook. Every pointer is a borrowed view, valid during the call only.
 */
typedef struct hl_level_view {
    int level;
    size_t n, d;        /**< nodes of the level, dimension */
    const hl_graph *g;  /**< the level's kNN graph (k = g->width + 1) */
    const int32_t *rep; /**< n: each node's peak, an index of the original points */
    const int32_t *cnt; /**< n: members per node; NULL at level 0 (all 1) */
    const float *x;     /**< n x d: normalised node features (the peaks' features) */
    const float *cmean; /**< n x d: cluster means (at level 0 the same as x) */
    const float *dens;  /**< n: density (model head, or the parameter-free estimate) */
    const float *prob;  /**< n x width link probabilities, NULL without a model */
    const float *node;  /**< n x HL_FEAT_NODE normalised structural features, or NULL when the
                             model reads none */
    const float *hidden[HL_MAX_CONV - 1]; /**< outputs of the conv layers before the last */
    const float *S; /**< n x hidden/2: the link head's source projection, or NULL */
    size_t links;   /**< links the decode made at this level */
} hl_level_view;

/** Called once per level that ran (recorded or not); a non-OK status aborts the run. */
typedef struct hl_level_hook {
    hl_status (*fn)(void *ud, const hl_level_view *v);
    void *ud;
} hl_level_hook;

typedef struct hl_cluster_params {
    int k;                /**< kNN size including the point itself, 2..1024 (default 10) */
    float tau;            /**< link threshold on P(same) (or similarity without a model) */
    int max_levels;       /**< 1..64 (default 10) */
    int early_stop;       /**< stop when e(l-1)/e(l) < k-1 (default on) */
    int min_cluster_size; /**< final clusters smaller than this become -1 (default 1) */
    int n_threads;        /**< engine threads (default 1) */
    hl_cancel cancel;
    hl_progress progress;
    hl_knn_method knn;    /**< kNN per level: HL_KNN_AUTO (default), EXACT or IVF (hl/knn.h) */
    size_t knn_exact_max; /**< AUTO: exact up to this many nodes (0: HL_KNN_EXACT_MAX_DEFAULT) */
    int knn_nlist;        /**< IVF cells, >= 0 (0: automatic) */
    int knn_nprobe;       /**< IVF lists searched per cell, >= 0 (0: automatic) */
    hl_level_hook level_hook; /**< optional; see hl_level_view (used by hl/assign.h) */
} hl_cluster_params;

/**
 * k 10, tau 0.8, max_levels 10, early_stop 1, min_cluster_size 1, 1 thread, no hooks, kNN
 * auto with the default IVF settings.
 */
void hl_cluster_params_default(hl_cluster_params *p);

/** Validates parameters; on error fills `err` with the parameter's name as field. */
hl_status hl_cluster_params_check(const hl_cluster_params *p, hl_error *err);

typedef struct hl_level_stats {
    size_t nodes;    /**< nodes at this level */
    size_t edges;    /**< graph edges kept */
    size_t links;    /**< tree links added (nodes - peaks) */
    size_t clusters; /**< clusters after this level */
    double sec_knn, sec_gnn, sec_decode;
    hl_knn_method knn; /**< the kNN method this level used (EXACT or IVF) */
} hl_level_stats;

typedef struct hl_clustering {
    size_t n;
    int n_levels;
    int32_t *labels;        /**< n final labels (-1 = below min_cluster_size) */
    size_t n_clusters;      /**< distinct final labels other than -1 */
    int32_t *level_labels;  /**< n_levels * n, level-major */
    hl_level_stats *levels; /**< n_levels */
    size_t arena_bytes;     /**< arena reserved (virtual) */
    size_t arena_peak;      /**< arena high-water mark */
} hl_clustering;

/** Arena bytes hl_cluster_run() reserves for n points of dimension d. */
size_t hl_cluster_plan(const hl_cluster_params *p, const hl_model *m, size_t n, size_t d);

/**
 * Clusters `x` (n x d, row-major; rows need not be normalised; zero rows become
 * singletons). `m` is a loaded model or NULL for the model-free mode (link score =
 * similarity, density = the parameter-free estimate). Returns, with `err` filled:
 * HL_INVAL for bad parameters or n = 0, d = 0; HL_NUMERIC for NaN/Inf (row, column);
 * HL_RANGE when a lander model's dimension differs from d; HL_NOMEM when the arena cannot
 * be reserved; HL_CANCELED when the cancel hook fired.
 */
hl_status hl_cluster_run(const float *x, size_t n, size_t d, const hl_model *m,
                         const hl_cluster_params *p, hl_clustering **out, hl_error *err);

/**
 * hl_cluster_run() without a copy of the features: `x` is normalised in place and then
 * holds each level's node features, so its contents are unspecified afterwards (the labels
 * are the same as hl_cluster_run()'s, bit for bit). For callers that no longer need the
 * rows; it saves n x d floats of peak memory.
 */
hl_status hl_cluster_run_inplace(float *x, size_t n, size_t d, const hl_model *m,
                                 const hl_cluster_params *p, hl_clustering **out, hl_error *err);

/** Releases a result. NULL is a no-op. */
void hl_clustering_free(hl_clustering *c);

/**
 * Relabels `labels` (n values, -1 kept as -1) to 0-based ids in order of first appearance,
 * in place, using `scratch` (n int32 values). Returns the number of distinct ids.
 */
size_t hl_relabel_first_appearance(int32_t *labels, size_t n, int32_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* HL_CLUSTER_H */
