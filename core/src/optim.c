/* optim.c - SGD with momentum and Adam, with a cosine learning-rate schedule; see hl/train.h. */
#include "hl/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct hl_optim {
    hl_optim_params p;
    size_t n, step;
    float *m1, *m2; /* SGD: momentum buffer in m1; Adam: first and second moments */
};

void hl_optim_params_default(hl_optim_params *p)
{
    memset(p, 0, sizeof(*p));
    p->kind = HL_OPTIM_SGD;
    p->lr = 0.01f;
    p->lr_min = 1e-5f;
    p->momentum = 0.9f;
    p->weight_decay = 1e-5f;
    p->beta1 = 0.9f;
    p->beta2 = 0.999f;
    p->eps = 1e-8f;
    p->total_steps = 1;
}

hl_status hl_optim_new(const hl_model *m, const hl_optim_params *p, hl_optim **out)
{
    *out = NULL;
    if (!(p->lr > 0.0f) || p->lr_min < 0.0f || p->momentum < 0.0f || p->momentum >= 1.0f ||
        p->weight_decay < 0.0f || (p->kind != HL_OPTIM_SGD && p->kind != HL_OPTIM_ADAM))
        return HL_INVAL;
    hl_optim *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return HL_NOMEM;
    o->p = *p;
    o->n = m->n_params;
    o->m1 = calloc(o->n, sizeof(float));
    o->m2 = p->kind == HL_OPTIM_ADAM ? calloc(o->n, sizeof(float)) : NULL;
    if (o->m1 == NULL || (p->kind == HL_OPTIM_ADAM && o->m2 == NULL)) {
        hl_optim_free(o);
        return HL_NOMEM;
    }
    *out = o;
    return HL_OK;
}

void hl_optim_free(hl_optim *o)
{
    if (o == NULL)
        return;
    free(o->m1);
    free(o->m2);
    free(o);
}

float hl_optim_lr(const hl_optim *o)
{
    double T = o->p.total_steps > 0 ? (double)o->p.total_steps : 1.0;
    double t = (double)o->step < T ? (double)o->step : T;
    double c = 0.5 * (1.0 + cos(3.14159265358979323846 * t / T));
    return (float)(o->p.lr_min + (o->p.lr - o->p.lr_min) * c);
}

/* The normalisation statistics are data, not weights: they never change by training. */
static int trainable(const hl_model *m, size_t i)
{
    const float *p = m->params + i;
    const float *stats[4] = {m->node_mean, m->node_std, m->edge_mean, m->edge_std};
    int32_t nf = hl_model_node_features(m);
    size_t len[4] = {(size_t)nf, (size_t)nf, (size_t)m->cfg.edge_features,
                     (size_t)m->cfg.edge_features};
    for (int k = 0; k < 4; k++)
        if (stats[k] != NULL && p >= stats[k] && p < stats[k] + len[k])
            return 0;
    return 1;
}

void hl_optim_step(hl_optim *o, hl_model *m, const float *grad)
{
    float lr = hl_optim_lr(o);
    o->step++;
    const hl_optim_params *p = &o->p;
    double bc1 = 1.0 - pow((double)p->beta1, (double)o->step);
    double bc2 = 1.0 - pow((double)p->beta2, (double)o->step);
    for (size_t i = 0; i < o->n; i++) {
        if (!trainable(m, i))
            continue;
        float w = m->params[i];
        float g = grad[i] + p->weight_decay * w;
        if (p->kind == HL_OPTIM_SGD) {
            o->m1[i] = p->momentum * o->m1[i] + g;
            m->params[i] = w - lr * o->m1[i];
        } else {
            o->m1[i] = p->beta1 * o->m1[i] + (1.0f - p->beta1) * g;
            o->m2[i] = p->beta2 * o->m2[i] + (1.0f - p->beta2) * g * g;
            double mh = o->m1[i] / bc1, vh = o->m2[i] / bc2;
            m->params[i] = (float)((double)w - (double)lr * mh / (sqrt(vh) + (double)p->eps));
        }
    }
}
