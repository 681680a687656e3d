/* model.c - LANDER parameter layout, creation and initialisation; see hl/lander.h. */
#include "hl/features.h"
#include "hl/lander.h"
#include "hl/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *hl_model_kind_name(hl_model_kind kind)
{
    switch (kind) {
        case HL_MODEL_LANDER:
            return "lander";
        case HL_MODEL_UNIVERSAL:
            return "universal";
    }
    return "unknown";
}

void hl_model_config_default(hl_model_config *cfg, hl_model_kind kind, int32_t dim)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->kind = kind;
    cfg->n_conv = 1;
    cfg->k = 10;
    cfg->tau = 0.8f;
    if (kind == HL_MODEL_UNIVERSAL) {
        cfg->dim = 0;
        cfg->in_features = 0; /* set by the structural feature builder */
        cfg->edge_features = 0;
        cfg->hidden = 128;
        cfg->use_cluster_feat = 0;
    } else {
        cfg->dim = dim;
        cfg->use_cluster_feat = 1;
        cfg->in_features = 2 * dim;
        cfg->edge_features = 0;
        cfg->hidden = 512;
    }
}

hl_status hl_model_config_check(const hl_model_config *c, hl_error *err)
{
    if (c->kind != HL_MODEL_LANDER && c->kind != HL_MODEL_UNIVERSAL)
        return hl_error_set(err, HL_INVAL, "kind", "unknown model kind %d", (int)c->kind);
    if (c->hidden < 2 || c->hidden > 8192 || c->hidden % 2 != 0)
        return hl_error_set(err, HL_INVAL, "hidden", "hidden must be even and in [2, 8192], got %d",
                            (int)c->hidden);
    if (c->n_conv < 1 || c->n_conv > HL_MAX_CONV)
        return hl_error_set(err, HL_INVAL, "n_conv", "n_conv must be in [1, %d], got %d",
                            HL_MAX_CONV, (int)c->n_conv);
    if (c->in_features < 1 || c->in_features > 65536)
        return hl_error_set(err, HL_INVAL, "in_features", "in_features must be in [1, 65536]");
    if (c->k < 2 || c->k > 1024)
        return hl_error_set(err, HL_INVAL, "k", "k must be in [2, 1024], got %d", (int)c->k);
    if (!(c->tau >= 0.0f && c->tau <= 1.0f))
        return hl_error_set(err, HL_INVAL, "tau", "tau must be in [0, 1]");
    if (c->edge_features < 0 || c->edge_features > 4096)
        return hl_error_set(err, HL_INVAL, "edge_features", "edge_features must be in [0, 4096]");
    if (c->kind == HL_MODEL_LANDER) {
        if (c->dim < 1 || c->dim > 65536)
            return hl_error_set(err, HL_INVAL, "dim", "dim must be in [1, 65536], got %d",
                                (int)c->dim);
        int32_t want = c->use_cluster_feat ? 2 * c->dim : c->dim;
        if (c->in_features < want)
            return hl_error_set(err, HL_INVAL, "in_features",
                                "in_features %d is less than the %d coordinates of dim %d",
                                (int)c->in_features, (int)want, (int)c->dim);
    } else {
        if (c->dim != 0)
            return hl_error_set(err, HL_INVAL, "dim", "universal models have dim 0");
        if (c->use_cluster_feat)
            return hl_error_set(err, HL_INVAL, "use_cluster_feat",
                                "universal models take no cluster features");
    }
    return HL_OK;
}

/* Adds a tensor to the table at parameter offset *off; bind() turns offsets into pointers. */
static void add_tensor(hl_model *m, size_t *off, float **slot, const char *name, size_t d0,
                       size_t d1)
{
    size_t i = m->n_tensors++;
    hl_tensor_view *t = &m->tensors[i];
    (void)snprintf(m->names[i], sizeof(m->names[i]), "%s", name);
    t->name = m->names[i];
    t->ndim = d1 > 0 ? 2 : 1;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->count = d1 > 0 ? d0 * d1 : d0;
    t->data = NULL;
    m->tensor_off[i] = *off;
    m->tensor_slot[i] = slot;
    *off += t->count;
}

static void layout(hl_model *m)
{
    const hl_model_config *c = &m->cfg;
    int32_t h = c->hidden, h2 = c->hidden / 2;
    const int32_t ins[HL_MAX_CONV] = {c->in_features, h, h, h2};
    const int32_t outs[HL_MAX_CONV] = {h, h, h2, h2};
    size_t off = 0;
    char nm[32];
    m->n_tensors = 0;
    for (int l = 0; l < HL_MAX_CONV; l++) {
        m->conv_w[l] = NULL;
        m->conv_b[l] = NULL;
    }
    m->edge_w = NULL;
    for (int l = 0; l < c->n_conv; l++) {
        m->conv_in[l] = ins[l];
        m->conv_out[l] = outs[l];
        (void)snprintf(nm, sizeof(nm), "conv.%d.weight", l);
        add_tensor(m, &off, &m->conv_w[l], nm, (size_t)outs[l], 2 * (size_t)ins[l]);
        (void)snprintf(nm, sizeof(nm), "conv.%d.bias", l);
        add_tensor(m, &off, &m->conv_b[l], nm, (size_t)outs[l], 0);
    }
    size_t out_last = (size_t)outs[c->n_conv - 1];
    add_tensor(m, &off, &m->src_w, "src_mlp.weight", (size_t)h2, out_last);
    add_tensor(m, &off, &m->src_b, "src_mlp.bias", (size_t)h2, 0);
    add_tensor(m, &off, &m->dst_w, "dst_mlp.weight", (size_t)h2, out_last);
    add_tensor(m, &off, &m->dst_b, "dst_mlp.bias", (size_t)h2, 0);
    if (c->edge_features > 0)
        add_tensor(m, &off, &m->edge_w, "edge_mlp.weight", (size_t)h2, (size_t)c->edge_features);
    add_tensor(m, &off, &m->prelu1, "classifier.0.weight", (size_t)h2, 0);
    add_tensor(m, &off, &m->fc1_w, "classifier.1.weight", (size_t)h2, (size_t)h2);
    add_tensor(m, &off, &m->fc1_b, "classifier.1.bias", (size_t)h2, 0);
    add_tensor(m, &off, &m->prelu2, "classifier.2.weight", (size_t)h2, 0);
    add_tensor(m, &off, &m->fc2_w, "classifier.3.weight", 2, (size_t)h2);
    add_tensor(m, &off, &m->fc2_b, "classifier.3.bias", 2, 0);
    size_t nf = (size_t)hl_model_node_features(m), ef = (size_t)c->edge_features;
    m->node_mean = m->node_std = m->edge_mean = m->edge_std = NULL;
    if (nf > 0) {
        (void)snprintf(nm, sizeof(nm), "norm.v%d.node_mean", HL_FEAT_VERSION);
        add_tensor(m, &off, &m->node_mean, nm, nf, 0);
        (void)snprintf(nm, sizeof(nm), "norm.v%d.node_std", HL_FEAT_VERSION);
        add_tensor(m, &off, &m->node_std, nm, nf, 0);
    }
    if (ef > 0) {
        (void)snprintf(nm, sizeof(nm), "norm.v%d.edge_mean", HL_FEAT_VERSION);
        add_tensor(m, &off, &m->edge_mean, nm, ef, 0);
        (void)snprintf(nm, sizeof(nm), "norm.v%d.edge_std", HL_FEAT_VERSION);
        add_tensor(m, &off, &m->edge_std, nm, ef, 0);
    }
    m->n_params = off;
}

static void bind(hl_model *m)
{
    for (size_t i = 0; i < m->n_tensors; i++) {
        float *p = m->params + m->tensor_off[i];
        m->tensors[i].data = p;
        if (m->tensor_slot[i] != NULL)
            *m->tensor_slot[i] = p;
    }
}

hl_status hl_model_new(const hl_model_config *cfg, hl_error *err, hl_model **out)
{
    *out = NULL;
    hl_status st = hl_model_config_check(cfg, err);
    if (st != HL_OK)
        return st;
    hl_model *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory for the model");
    m->cfg = *cfg;
    layout(m);
    m->params = calloc(m->n_params, sizeof(float));
    if (m->params == NULL) {
        size_t np = m->n_params;
        free(m);
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory for %zu parameters", np);
    }
    bind(m);
    *out = m;
    return HL_OK;
}

void hl_model_free(hl_model *m)
{
    if (m == NULL)
        return;
    free(m->params);
    free(m);
}

hl_status hl_model_clone(const hl_model *src, hl_model **out)
{
    hl_status st = hl_model_new(&src->cfg, NULL, out);
    if (st != HL_OK)
        return st;
    memcpy((*out)->params, src->params, src->n_params * sizeof(float));
    memcpy((*out)->name, src->name, sizeof(src->name));
    memcpy((*out)->trained_on, src->trained_on, sizeof(src->trained_on));
    return HL_OK;
}

static void fill_uniform(hl_rng *r, float *p, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * hl_rng_uniform(r) - 1.0) * bound);
}

static void init_linear(hl_rng *r, float *w, float *b, size_t out, size_t in)
{
    double bound = 1.0 / sqrt((double)in);
    fill_uniform(r, w, out * in, bound);
    if (b != NULL)
        fill_uniform(r, b, out, bound);
}

void hl_model_init_params(hl_model *m, uint64_t seed)
{
    hl_rng r;
    hl_rng_seed(&r, seed);
    size_t h2 = (size_t)m->cfg.hidden / 2;
    size_t out_last = (size_t)hl_model_out_dim(m);
    for (int l = 0; l < m->cfg.n_conv; l++)
        init_linear(&r, m->conv_w[l], m->conv_b[l], (size_t)m->conv_out[l],
                    2 * (size_t)m->conv_in[l]);
    init_linear(&r, m->src_w, m->src_b, h2, out_last);
    init_linear(&r, m->dst_w, m->dst_b, h2, out_last);
    if (m->edge_w != NULL)
        init_linear(&r, m->edge_w, NULL, h2, (size_t)m->cfg.edge_features);
    for (size_t i = 0; i < h2; i++) {
        m->prelu1[i] = 0.25f;
        m->prelu2[i] = 0.25f;
    }
    init_linear(&r, m->fc1_w, m->fc1_b, h2, h2);
    init_linear(&r, m->fc2_w, m->fc2_b, 2, h2);
    /* Identity normalisation until the trainer measures the features. */
    size_t nf = (size_t)hl_model_node_features(m), ef = (size_t)m->cfg.edge_features;
    for (size_t i = 0; i < nf; i++) {
        m->node_mean[i] = 0.0f;
        m->node_std[i] = 1.0f;
    }
    for (size_t i = 0; i < ef; i++) {
        m->edge_mean[i] = 0.0f;
        m->edge_std[i] = 1.0f;
    }
}

const hl_tensor_view *hl_model_tensor(const hl_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++) {
        if (strcmp(m->tensors[i].name, name) == 0)
            return &m->tensors[i];
    }
    return NULL;
}

int32_t hl_model_node_features(const hl_model *m)
{
    const hl_model_config *c = &m->cfg;
    if (c->kind != HL_MODEL_LANDER)
        return c->in_features;
    return c->in_features - (c->use_cluster_feat ? 2 * c->dim : c->dim);
}

int32_t hl_model_out_dim(const hl_model *m)
{
    return m->conv_out[m->cfg.n_conv - 1];
}
