/* test_train.c - trainer: gradient checks against an independent double-precision model,
 * determinism, balancing, optimisers, data building and a small end-to-end fit. */
#include "test_util.h"

#include "hl/cluster.h"
#include "hl/features.h"
#include "hl/metrics.h"
#include "hl/train.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------- reference model in double */

typedef struct ref {
    const hl_model *m;
    const hl_train_graph *tg;
    const double *p; /* parameters (same layout as m->params) */
} ref;

static const double *rp(const ref *R, const float *field)
{
    return R->p + (field - R->m->params);
}

static double prelu_d(double v, double a)
{
    return v > 0 ? v : a * v;
}

/* h_out (n x out) = ReLU(W [h_in ; agg(h_in)] + b). */
static void ref_conv(const ref *R, int l, const double *hin, size_t fin, double *hout)
{
    const hl_graph *g = &R->tg->g;
    size_t n = g->n, w = (size_t)g->width, out = (size_t)R->m->conv_out[l];
    const double *W = rp(R, R->m->conv_w[l]), *b = rp(R, R->m->conv_b[l]);
    double *agg = calloc(fin, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        memset(agg, 0, fin * sizeof(double));
        for (int s = 0; s < g->deg[i]; s++) {
            size_t j = (size_t)g->nbr[i * w + (size_t)s];
            for (size_t c = 0; c < fin; c++)
                agg[c] += (double)g->w[i * w + (size_t)s] * hin[j * fin + c];
        }
        for (size_t o = 0; o < out; o++) {
            double z = b[o];
            for (size_t c = 0; c < fin; c++)
                z += W[o * 2 * fin + c] * hin[i * fin + c] + W[o * 2 * fin + fin + c] * agg[c];
            hout[i * out + o] = z > 0 ? z : 0;
        }
    }
    free(agg);
}

/* The spec's loss (1.7) with the graph's mask as the cross-entropy selection. */
static double ref_loss(const ref *R)
{
    const hl_model *m = R->m;
    const hl_train_graph *tg = R->tg;
    const hl_graph *g = &tg->g;
    size_t n = g->n, w = (size_t)g->width, fin = (size_t)m->cfg.in_features;
    double *h = calloc(n * fin, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        if (m->cfg.kind == HL_MODEL_LANDER) {
            for (size_t k = 0; k < tg->d; k++)
                h[i * fin + c++] = tg->x[i * tg->d + k];
            for (size_t k = 0; k < tg->d; k++)
                h[i * fin + c++] = tg->c[i * tg->d + k];
        }
        for (size_t k = 0; c < fin; k++)
            h[i * fin + c++] = tg->node[i * HL_FEAT_NODE + k];
    }
    for (int l = 0; l < m->cfg.n_conv; l++) {
        size_t out = (size_t)m->conv_out[l];
        double *nh = calloc(n * out, sizeof(double));
        ref_conv(R, l, h, fin, nh);
        free(h);
        h = nh;
        fin = out;
    }
    size_t h2 = (size_t)m->cfg.hidden / 2, ef = (size_t)m->cfg.edge_features;
    const double *Ws = rp(R, m->src_w), *bs = rp(R, m->src_b), *Wd = rp(R, m->dst_w),
                 *bd = rp(R, m->dst_b), *a1 = rp(R, m->prelu1), *W1 = rp(R, m->fc1_w),
                 *b1 = rp(R, m->fc1_b), *a2 = rp(R, m->prelu2), *W2 = rp(R, m->fc2_w),
                 *b2 = rp(R, m->fc2_b);
    const double *We = ef > 0 ? rp(R, m->edge_w) : NULL;
    double *u = calloc(h2, sizeof(double)), *v = calloc(h2, sizeof(double));
    double conn = 0, den = 0;
    size_t nsel = 0;
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        for (int s = 0; s < g->deg[i]; s++) {
            size_t e = i * w + (size_t)s, j = (size_t)g->nbr[e];
            for (size_t o = 0; o < h2; o++) {
                double z = bs[o] + bd[o];
                for (size_t c = 0; c < fin; c++)
                    z += Ws[o * fin + c] * h[j * fin + c] + Wd[o * fin + c] * h[i * fin + c];
                for (size_t c = 0; c < ef; c++)
                    z += We[o * ef + c] * tg->edge[e * ef + c];
                u[o] = prelu_d(z, a1[o]);
            }
            for (size_t o = 0; o < h2; o++) {
                double z = b1[o];
                for (size_t c = 0; c < h2; c++)
                    z += W1[o * h2 + c] * u[c];
                v[o] = prelu_d(z, a2[o]);
            }
            double l0 = b2[0], l1 = b2[1];
            for (size_t c = 0; c < h2; c++) {
                l0 += W2[c] * v[c];
                l1 += W2[h2 + c] * v[c];
            }
            double mx = fmax(l0, l1), lse = mx + log(exp(l0 - mx) + exp(l1 - mx));
            double p1 = exp(l1 - lse);
            acc += (double)g->sim[e] * (2 * p1 - 1);
            if (tg->mask[e]) {
                conn -= (tg->same[e] ? l1 : l0) - lse;
                nsel++;
            }
        }
        double d = g->deg[i] > 0 ? acc / g->deg[i] : 0;
        den += (d - tg->gt_dens[i]) * (d - tg->gt_dens[i]);
    }
    free(u);
    free(v);
    free(h);
    return (nsel > 0 ? conn / (double)nsel : 0) + den / (double)n;
}

/* ------------------------------------------------------------------- fixtures */

static hl_train_data *small_data(size_t n, size_t d, int k, int levels, uint64_t seed, float **xo,
                                 int32_t **yo)
{
    int32_t *y;
    float *x = tu_blobs(n, d, 6, 0.6f, seed, &y);
    hl_train_set set = {x, n, d, y};
    hl_train_params p;
    hl_train_params_default(&p);
    p.knn_k[0] = k;
    p.levels[0] = levels;
    hl_train_data *td = NULL;
    hl_error err;
    hl_error_clear(&err);
    ck_assert_msg(hl_train_data_build(&set, 1, &p, &td, &err) == HL_OK, "%s", err.msg);
    *xo = x;
    *yo = y;
    return td;
}

static hl_model *make_model(hl_model_kind kind, int32_t d, int n_conv, int hidden, int feats)
{
    hl_model_config cfg;
    hl_model_config_default(&cfg, kind, d);
    cfg.hidden = hidden;
    cfg.n_conv = n_conv;
    if (kind == HL_MODEL_UNIVERSAL) {
        cfg.in_features = HL_FEAT_NODE;
        cfg.edge_features = HL_FEAT_EDGE;
    } else if (feats) {
        cfg.in_features = 2 * d + HL_FEAT_NODE;
        cfg.edge_features = HL_FEAT_EDGE;
    }
    hl_model *m;
    ck_assert_int_eq(hl_model_new(&cfg, NULL, &m), HL_OK);
    hl_model_init_params(m, 99);
    return m;
}

/* Finite differences of the double reference against the float analytic gradient. */
static void grad_check(hl_model *m, hl_train_graph *tg)
{
    float *grad = calloc(m->n_params, sizeof(float));
    hl_grad_stats st;
    ck_assert_int_eq(hl_lander_grad(m, tg, NULL, 2, grad, &st), HL_OK);
    double *p = malloc(m->n_params * sizeof(double));
    for (size_t i = 0; i < m->n_params; i++)
        p[i] = m->params[i];
    ref R = {m, tg, p};
    double L = ref_loss(&R);
    ck_assert_msg(fabs(L - st.loss) < 1e-4 * fmax(1.0, fabs(L)), "loss %.8f vs ref %.8f", st.loss,
                  L);
    ck_assert_uint_gt(st.n_sel, 0);
    for (size_t t = 0; t < m->n_tensors; t++) {
        const hl_tensor_view *tv = &m->tensors[t];
        if (strncmp(tv->name, "norm.", 5) == 0)
            continue;
        size_t off = (size_t)(tv->data - m->params);
        double num = 0, dif = 0;
        for (size_t k = 0; k < tv->count; k++) {
            double h = 1e-6 * fmax(1.0, fabs(p[off + k])), keep = p[off + k];
            p[off + k] = keep + h;
            double lp = ref_loss(&R);
            p[off + k] = keep - h;
            double lm = ref_loss(&R);
            p[off + k] = keep;
            double fd = (lp - lm) / (2 * h);
            num += fd * fd;
            dif += (fd - grad[off + k]) * (fd - grad[off + k]);
        }
        double rel = sqrt(dif) / fmax(sqrt(num), 1e-9);
        ck_assert_msg(rel < 1e-3, "tensor %s: relative gradient error %.2e (|g| %.3e)", tv->name,
                      rel, sqrt(num));
        ck_assert_msg(sqrt(num) > 1e-7, "tensor %s has no gradient: the check would be empty",
                      tv->name);
    }
    free(p);
    free(grad);
}

START_TEST(test_grad_lander_features)
{
    float *x;
    int32_t *y;
    hl_train_data *td = small_data(60, 4, 5, 2, 3, &x, &y);
    hl_model *m = make_model(HL_MODEL_LANDER, 4, 2, 8, 1);
    hl_train_fit_normalizer(m, td);
    for (size_t gi = 0; gi < td->n_graphs; gi++)
        grad_check(m, &td->graphs[gi]);
    hl_model_free(m);
    hl_train_data_free(td);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_grad_universal_and_plain)
{
    float *x;
    int32_t *y;
    hl_train_data *td = small_data(50, 3, 6, 1, 5, &x, &y);
    hl_model *u = make_model(HL_MODEL_UNIVERSAL, 0, 1, 6, 1);
    hl_train_fit_normalizer(u, td);
    grad_check(u, &td->graphs[0]);
    /* The paper's plain lander model (no structural inputs), three conv layers. */
    hl_model *l = make_model(HL_MODEL_LANDER, 3, 3, 16, 0);
    grad_check(l, &td->graphs[0]);
    hl_model_free(u);
    hl_model_free(l);
    hl_train_data_free(td);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_grad_threads_identical)
{
    float *x;
    int32_t *y;
    hl_train_data *td = small_data(3000, 8, 10, 1, 7, &x, &y);
    hl_model *m = make_model(HL_MODEL_LANDER, 8, 1, 16, 1);
    hl_train_fit_normalizer(m, td);
    float *g1 = malloc(m->n_params * sizeof(float)), *g3 = malloc(m->n_params * sizeof(float));
    hl_grad_stats s1, s3;
    ck_assert_int_eq(hl_lander_grad(m, &td->graphs[0], NULL, 1, g1, &s1), HL_OK);
    ck_assert_int_eq(hl_lander_grad(m, &td->graphs[0], NULL, 3, g3, &s3), HL_OK);
    ck_assert_mem_eq(g1, g3, m->n_params * sizeof(float));
    ck_assert(s1.loss == s3.loss);
    free(g1);
    free(g3);
    hl_model_free(m);
    hl_train_data_free(td);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_balance)
{
    float *x;
    int32_t *y;
    hl_train_data *td = small_data(800, 8, 10, 1, 11, &x, &y);
    const hl_train_graph *tg = &td->graphs[0];
    size_t E = tg->g.n * (size_t)tg->g.width;
    uint8_t *a = malloc(E), *b = malloc(E);
    size_t na = hl_train_balance(tg, 1, a), nb = hl_train_balance(tg, 1, b);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(a, b, E);
    size_t pos = 0, neg = 0, mpos = 0, mneg = 0;
    for (size_t e = 0; e < E; e++) {
        ck_assert(!a[e] || tg->mask[e]);
        if (a[e])
            tg->same[e] ? pos++ : neg++;
        if (tg->mask[e])
            tg->same[e] ? mpos++ : mneg++;
    }
    ck_assert_uint_gt(mpos, 0);
    ck_assert_uint_gt(mneg, 0);
    ck_assert_uint_ne(mpos, mneg);
    ck_assert_uint_eq(pos, neg);
    ck_assert_uint_eq(pos, mpos < mneg ? mpos : mneg);
    ck_assert_uint_eq(na, pos + neg);
    hl_train_balance(tg, 2, b);
    ck_assert(memcmp(a, b, E) != 0);
    free(a);
    free(b);
    hl_train_data_free(td);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_data_build)
{
    float *x;
    int32_t *y;
    hl_train_data *td = small_data(2000, 8, 10, 3, 13, &x, &y);
    ck_assert_uint_ge(td->n_graphs, 2);
    for (size_t gi = 0; gi < td->n_graphs; gi++) {
        const hl_train_graph *tg = &td->graphs[gi];
        ck_assert_int_eq(tg->level, (int)gi);
        if (gi > 0)
            ck_assert_uint_lt(tg->g.n, td->graphs[gi - 1].g.n);
        double members = 0;
        for (size_t i = 0; i < tg->g.n; i++)
            members += tg->size[i];
        ck_assert(fabs(members - 2000.0) < 0.5);
    }
    /* Bad inputs. */
    hl_train_params p;
    hl_train_params_default(&p);
    hl_train_data *bad = NULL;
    hl_error err;
    int32_t same[4] = {1, 1, 1, 1};
    hl_train_set one_class = {x, 4, 8, same};
    hl_error_clear(&err);
    ck_assert_int_eq(hl_train_data_build(&one_class, 1, &p, &bad, &err), HL_INVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "at least 2 classes"));
    hl_error_clear(&err);
    p.knn_k[0] = 1;
    hl_train_set ok = {x, 100, 8, y};
    ck_assert_int_eq(hl_train_data_build(&ok, 1, &p, &bad, &err), HL_INVAL);
    ck_assert_ptr_null(bad);
    hl_train_data_free(td);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_optim)
{
    hl_model *m = make_model(HL_MODEL_LANDER, 2, 1, 2, 0);
    float *w0 = malloc(m->n_params * sizeof(float)), *g = malloc(m->n_params * sizeof(float));
    memcpy(w0, m->params, m->n_params * sizeof(float));
    for (size_t i = 0; i < m->n_params; i++)
        g[i] = 0.5f;
    hl_optim_params op;
    hl_optim_params_default(&op);
    op.weight_decay = 0.1f;
    op.total_steps = 4;
    hl_optim *o;
    ck_assert_int_eq(hl_optim_new(m, &op, &o), HL_OK);
    ck_assert(fabsf(hl_optim_lr(o) - op.lr) < 1e-9f);
    hl_optim_step(o, m, g);
    hl_optim_step(o, m, g);
    /* SGD (PyTorch): buf = mu buf + g + wd w; w -= lr buf, with the cosine lr. */
    double lr0 = op.lr, lr1 = op.lr_min + (op.lr - op.lr_min) * 0.5 * (1 + cos(M_PI / 4));
    for (size_t i = 0; i < m->n_params; i++) {
        double w = w0[i], b = 0.5 + 0.1 * w;
        w -= lr0 * b;
        b = 0.9 * b + 0.5 + 0.1 * w;
        w -= lr1 * b;
        ck_assert_msg(fabs(w - m->params[i]) < 1e-6, "sgd param %zu", i);
    }
    ck_assert(fabsf(hl_optim_lr(o) - (float)op.lr_min - (op.lr - op.lr_min) * 0.5f) < 1e-7f);
    hl_optim_free(o);
    /* Adam: the first step moves every weight by about lr (sign of the gradient). */
    memcpy(m->params, w0, m->n_params * sizeof(float));
    op.kind = HL_OPTIM_ADAM;
    op.weight_decay = 0.0f;
    ck_assert_int_eq(hl_optim_new(m, &op, &o), HL_OK);
    hl_optim_step(o, m, g);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabs(w0[i] - op.lr - m->params[i]) < 1e-6);
    hl_optim_free(o);
    op.lr = 0.0f;
    ck_assert_int_eq(hl_optim_new(m, &op, &o), HL_INVAL);
    free(w0);
    free(g);
    hl_model_free(m);
}
END_TEST

/* A few epochs on separable blobs: the loss falls and the trained model clusters held-out
 * blobs of other centres at least as well as the model-free decode. */
START_TEST(test_fit_small)
{
    float *x;
    int32_t *y;
    hl_train_data *td = small_data(3000, 16, 10, 2, 17, &x, &y);
    hl_model *m = make_model(HL_MODEL_UNIVERSAL, 0, 1, 32, 1);
    hl_train_fit_normalizer(m, td);
    hl_train_params tp;
    hl_train_params_default(&tp);
    tp.n_threads = 2;
    hl_optim_params op;
    hl_optim_params_default(&op);
    op.kind = HL_OPTIM_ADAM;
    op.lr = 0.01f;
    op.total_steps = 40 * td->n_graphs;
    hl_optim *o;
    ck_assert_int_eq(hl_optim_new(m, &op, &o), HL_OK);
    hl_epoch_stats first, last;
    for (int e = 0; e < 40; e++) {
        ck_assert_int_eq(hl_train_epoch(m, td, o, &tp, e, &last), HL_OK);
        if (e == 0)
            first = last;
    }
    ck_assert_msg(last.loss < 0.7 * first.loss, "loss %.4f -> %.4f", first.loss, last.loss);
    ck_assert_msg(last.link_acc > 0.8, "link accuracy %.3f", last.link_acc);
    hl_optim_free(o);
    hl_model_free(m);
    hl_train_data_free(td);
    free(x);
    free(y);
}
END_TEST

Suite *train_suite(void);

Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("grad");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_grad_lander_features);
    tcase_add_test(tc, test_grad_universal_and_plain);
    tcase_add_test(tc, test_grad_threads_identical);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("train");
    tcase_set_timeout(tt, 300);
    tcase_add_test(tt, test_balance);
    tcase_add_test(tt, test_data_build);
    tcase_add_test(tt, test_optim);
    tcase_add_test(tt, test_fit_small);
    suite_add_tcase(s, tt);
    return s;
}
