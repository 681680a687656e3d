/*
 * model_registry.h - the models this process serves: every *.hlm file of the model
 * directory (loaded once at start, immutable afterwards) plus the built-in model-free mode
 * "none". A model's name is its file name without ".hlm".
 *
 * Thread-safety: built before any thread starts, read-only afterwards (models are shared by
 * every job, as hl/lander.h allows).
 */
#ifndef SRV_MODEL_REGISTRY_H
#define SRV_MODEL_REGISTRY_H

#include "hl/lander.h"
#include "hl/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct srv_model {
    char name[64];
    hl_model *m; /* NULL for "none" */
    uint32_t checksum;
    char path[1024];
} srv_model;

struct srv_models {
    srv_model *v;
    size_t n;
    size_t default_idx;
};

/**
 * Loads every *.hlm in `dir` (sorted by name) and adds "none"; a missing directory holds no
 * models. A file that fails to load stops everything: HL_* with err->msg naming the file.
 * `default_name` must name a loaded model (or "none"), else HL_NOTFOUND with a message.
 */
hl_status srv_models_load(const char *dir, const char *default_name, struct srv_models **out,
                          hl_error *err);

void srv_models_free(struct srv_models *ms);

/** The model called `name`, or NULL. */
const srv_model *srv_models_find(const struct srv_models *ms, const char *name);

/** "lander", "universal" or "none". */
const char *srv_model_kind(const srv_model *m);

/** Appends the model's JSON object (api.md "GET /v1/models/{name}") to `b` (a srv_buf). */
struct srv_buf;
void srv_model_json(const struct srv_models *ms, const srv_model *m, struct srv_buf *b);

#endif
