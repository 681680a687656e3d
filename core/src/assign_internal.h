/*
 * assign_internal.h - the pieces of incremental assignment shared by assign.c (the driver),
 * assign_model.c (features and the model on new nodes) and assign_state.c (states). Not part
 * of the public API (hl__ prefix); the core tests call these directly.
 *
 * A "mixed level" is one level seen by hl_assign_run(): ns stored nodes (the state's rows, as
 * they were) and nn new nodes (rows computed now). Node ids are unified: j < ns is stored
 * node j, j >= ns is new node j - ns. New rows may point at both kinds; stored rows only ever
 * point at stored nodes (or hold -1).
 */
#ifndef HL_ASSIGN_INTERNAL_H
#define HL_ASSIGN_INTERNAL_H

#include "hl/arena.h"
#include "hl/assign.h"
#include "hl/features.h"
#include "hl/lander.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct hl__mixed {
    int width;
    int level;
    size_t ns, nn;
    /* Stored side (the state's level). cnt is read for the size features (level >= 1). */
    const int32_t *s_nbr, *s_deg, *s_cnt;
    const float *s_sim;
    /* New side. */
    const int32_t *n_nbr, *n_deg, *n_cnt;
    const float *n_sim, *n_w; /* n_w: aggregation weights (sim / row sum) */
    const int32_t *n_indeg;   /* in-degrees of the new nodes (see hl/assign.h step 2) */
    const float *fstats;      /* the level's HL_ASSIGN_FSTATS statistics */
} hl__mixed;

/** The level statistics of hl_features_compute() (means, then standard deviations, of node
 * mean similarity, node density and edge similarity) for rows nbr/sim/deg of n nodes. */
void hl__assign_fstats(const float *sim, const int32_t *deg, size_t n, int width,
                       float out[HL_ASSIGN_FSTATS]);

/**
 * Structural features (hl/features.h, not yet normalised) of new nodes [i0, i1): node rows
 * (HL_FEAT_NODE each, indexed by new node) and edge rows (width x HL_FEAT_EDGE each). A
 * stored neighbour's statistics come from its stored row; the rank of a new node in a stored
 * neighbour's list is where its similarity would place it (absent past the width).
 */
void hl__assign_features(const hl__mixed *g, size_t i0, size_t i1, float *node, float *edge);

/** One part of a node input: stored rows (through `s_idx` when not NULL) and new rows. */
typedef struct hl__apart {
    const float *s_data;
    const int32_t *s_idx;
    const float *n_data;
    size_t dim;
} hl__apart;

typedef struct hl__ainput {
    int n_parts;
    hl__apart part[HL_MAX_INPUT_PARTS];
} hl__ainput;

/** What the model needs of the stored side besides the layer-0 input. */
typedef struct hl__astored {
    const float *hidden[HL_MAX_CONV - 1]; /* ns x conv_out[l] */
    const float *S;                       /* ns x hidden/2 */
} hl__astored;

/** Outputs for the new nodes (caller-allocated, kept in the state). */
typedef struct hl__anew_out {
    float *hidden[HL_MAX_CONV - 1]; /* nn x conv_out[l], l < n_conv - 1 */
    float *S;                       /* nn x hidden/2 */
    float *prob;                    /* nn x width */
    float *dens;                    /* nn */
} hl__anew_out;

/** Arena bytes hl__assign_forward() takes for nn new nodes of a level of this width. */
size_t hl__assign_forward_plan(const hl_model *m, size_t nn, int width, int n_threads);

/**
 * The model on the new nodes of a mixed level: conv layers (aggregating stored neighbours'
 * cached inputs and hidden states and new neighbours' computed ones), the link head on every
 * in-edge of a new node, and its density. `edge` (nn x width x edge_features, normalised) is
 * needed when the model has edge features. HL_NOMEM if the arena is too small, HL_CANCELED.
 */
hl_status hl__assign_forward(const hl_model *m, const hl__mixed *g, const hl__ainput *in0,
                             const hl__astored *st, const float *edge, const hl_forward_params *fp,
                             hl_arena *scratch, hl__anew_out *out);

/* ------------------------------------------------------------------ pending additions */

/** The new nodes of one level, as hl_assign_run() computed them. Arrays are malloc'd. */
typedef struct hl__anodes {
    size_t nn;
    int32_t *pt;  /* the node's peak, as a new-point index */
    int32_t *cnt; /* members */
    float *cmean; /* nn x d at levels >= 1 when the model reads cluster means, else NULL */
    int32_t *nbr; /* nn x width rows, unified ids */
    float *sim;   /* nn x width */
    int32_t *deg; /* nn */
    float *dens;  /* nn */
    float *node;  /* nn x HL_FEAT_NODE normalised, or NULL */
    float *hidden[HL_MAX_CONV - 1];
    float *S;      /* nn x hidden/2, or NULL */
    int32_t *keep; /* nn: rank among the nodes the state keeps, or -1 */
    size_t n_kept;
} hl__anodes;

/** hl_assignment.priv: what hl_assign_apply() appends. */
typedef struct hl__apending {
    size_t base_n;                        /* state points when computed */
    size_t base_ln[HL_ASSIGN_MAX_LEVELS]; /* state level nodes when computed */
    int n_levels;                         /* the state's levels */
    size_t n_new, d;
    float *xn;                                   /* n_new x d normalised */
    int32_t *keep;                               /* n_new: rank among kept points, or -1 */
    int32_t *level_labels[HL_ASSIGN_MAX_LEVELS]; /* n_new labels per level */
    hl__anodes lv[HL_ASSIGN_MAX_LEVELS];
} hl__apending;

/** Frees a pending structure and everything in it (NULL: no-op). */
void hl__apending_free(hl__apending *p);

#endif
