/*
 * test_lander.c - the LANDER model: configuration checks, parameter table and initialisation,
 * and the forward pass against golden outputs of an independent PyTorch implementation
 * (tests/golden/make_lander_golden.py writes tests/golden/lander/<case>/).
 *
 * Each golden case loads model.hlm (or, for the hidden=512 case, rebuilds the weights from
 * the counter-based generator documented in the script), normalises x, builds the kNN graph
 * and checks it against the expected graph, then runs the forward pass with one and with two
 * threads and compares the link probabilities and densities with the float64 torch model.
 */
#include "test_util.h"

#include "hl/arena.h"
#include "hl/graph.h"
#include "hl/knn.h"
#include "hl/lander.h"
#include "hl/mat.h"
#include "hl/modelfile.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_DIR HL_TEST_DATA "/golden/lander"
#define PROB_TOL   1e-4
#define SIM_TOL    1e-5

static const char *const golden_cases[] = {"a_level0", "b_twoconv", "c_ties", "d_wide", "e_blocks"};
#define N_GOLDEN ((int)(sizeof(golden_cases) / sizeof(golden_cases[0])))

/* ---------------------------------------------------------------------------------------- */
/* Golden case files. */

typedef struct golden {
    const char *name;
    char dir[512];
    size_t n, dim;
    int k, hidden, n_conv, c_is_xnorm, generated;
    uint64_t wseed;
    double gain_conv, gain_head;
    float *x, *c, *sim, *prob, *dens, *prob32, *dens32;
    int32_t *nbr;
} golden;

/* Reads dir/name, which must hold exactly count elements of elem bytes. */
static void *read_exact(const char *dir, const char *name, size_t elem, size_t count)
{
    char path[640];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t bytes = elem * count;
    void *buf = malloc(bytes + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got = fread(buf, 1, bytes + 1, f);
    fclose(f);
    ck_assert_msg(got == bytes, "%s: %zu bytes, expected %zu", path, got, bytes);
    return buf;
}

static void parse_meta(golden *g)
{
    char path[640];
    snprintf(path, sizeof(path), "%s/meta.txt", g->dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[256];
    int seen = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        const char *key = line, *val = eq + 1;
        if (strcmp(key, "n") == 0)
            g->n = (size_t)strtoul(val, NULL, 10), seen |= 1;
        else if (strcmp(key, "dim") == 0)
            g->dim = (size_t)strtoul(val, NULL, 10), seen |= 2;
        else if (strcmp(key, "k") == 0)
            g->k = atoi(val), seen |= 4;
        else if (strcmp(key, "hidden") == 0)
            g->hidden = atoi(val), seen |= 8;
        else if (strcmp(key, "n_conv") == 0)
            g->n_conv = atoi(val), seen |= 16;
        else if (strcmp(key, "c_is_xnorm") == 0)
            g->c_is_xnorm = atoi(val), seen |= 32;
        else if (strcmp(key, "model") == 0)
            g->generated = strncmp(val, "generated", 9) == 0, seen |= 64;
        else if (strcmp(key, "wseed") == 0)
            g->wseed = strtoull(val, NULL, 10);
        else if (strcmp(key, "gain_conv") == 0)
            g->gain_conv = strtod(val, NULL);
        else if (strcmp(key, "gain_head") == 0)
            g->gain_head = strtod(val, NULL);
    }
    fclose(f);
    ck_assert_msg(seen == 127, "%s: missing keys (mask %d)", path, seen);
    ck_assert(g->n > 0 && g->dim > 0 && g->k >= 2 && g->hidden >= 2 && g->n_conv >= 1);
    if (g->generated)
        ck_assert(g->wseed != 0 && g->gain_conv > 0.0 && g->gain_head > 0.0);
}

static void golden_load(golden *g, const char *name)
{
    memset(g, 0, sizeof(*g));
    g->name = name;
    snprintf(g->dir, sizeof(g->dir), "%s/%s", GOLDEN_DIR, name);
    parse_meta(g);
    size_t n = g->n, d = g->dim, w = (size_t)g->k - 1;
    g->x = read_exact(g->dir, "x.f32", 4, n * d);
    g->c = read_exact(g->dir, "c.f32", 4, n * d);
    g->nbr = read_exact(g->dir, "nbr.i32", 4, n * w);
    g->sim = read_exact(g->dir, "sim.f32", 4, n * w);
    g->prob = read_exact(g->dir, "prob.f32", 4, n * w);
    g->dens = read_exact(g->dir, "dens.f32", 4, n);
    g->prob32 = read_exact(g->dir, "prob_t32.f32", 4, n * w);
    g->dens32 = read_exact(g->dir, "dens_t32.f32", 4, n);
}

static void golden_free(golden *g)
{
    free(g->x);
    free(g->c);
    free(g->nbr);
    free(g->sim);
    free(g->prob);
    free(g->dens);
    free(g->prob32);
    free(g->dens32);
}

/* The weight generator of make_lander_golden.py (splitmix64 finaliser over a counter). */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void fill_generated(hl_model *m, uint64_t wseed, double gain_conv, double gain_head)
{
    for (size_t t = 0; t < m->n_tensors; t++) {
        const hl_tensor_view *tv = &m->tensors[t];
        int prelu = strcmp(tv->name, "classifier.0.weight") == 0 ||
                    strcmp(tv->name, "classifier.2.weight") == 0;
        int bias = strstr(tv->name, ".bias") != NULL;
        double bound = 0.0;
        if (!prelu) {
            /* fan_in is the width of the layer's weight (for a bias, of its sibling). */
            char wname[48];
            snprintf(wname, sizeof(wname), "%s", tv->name);
            if (bias)
                snprintf(strstr(wname, ".bias"), 8, ".weight");
            const hl_tensor_view *wv = hl_model_tensor(m, wname);
            ck_assert_ptr_nonnull(wv);
            ck_assert_int_eq(wv->ndim, 2);
            double gain = bias ? 1.0 : strncmp(tv->name, "conv.", 5) == 0 ? gain_conv : gain_head;
            bound = gain / sqrt((double)wv->dims[1]);
        }
        for (size_t e = 0; e < tv->count; e++) {
            uint64_t state = wseed * UINT64_C(0x9E3779B97F4A7C15) + ((uint64_t)t << 32) + e;
            double u = (double)(mix64(state) >> 40) * 0x1p-24;
            tv->data[e] = prelu ? (float)(-0.2 + 0.9 * u) : (float)((2.0 * u - 1.0) * bound);
        }
    }
}

/* The golden model: model.hlm, or the generated weights round-tripped through the format. */
static hl_model *golden_model(const golden *g)
{
    hl_error err;
    hl_error_clear(&err);
    hl_model *m = NULL;
    if (!g->generated) {
        char path[640];
        snprintf(path, sizeof(path), "%s/model.hlm", g->dir);
        uint32_t crc = 0;
        hl_status st = hl_modelfile_load(path, &m, &crc, &err);
        ck_assert_msg(st == HL_OK, "%s: %s (%s)", path, hl_status_name(st), err.msg);
        char want[64];
        snprintf(want, sizeof(want), "golden-%s", g->name);
        ck_assert_str_eq(m->name, want);
    } else {
        hl_model_config cfg;
        hl_model_config_default(&cfg, HL_MODEL_LANDER, (int32_t)g->dim);
        cfg.hidden = g->hidden;
        cfg.n_conv = g->n_conv;
        cfg.k = g->k;
        hl_model *gen = NULL;
        ck_assert_int_eq(hl_model_new(&cfg, &err, &gen), HL_OK);
        fill_generated(gen, g->wseed, g->gain_conv, g->gain_head);
        void *buf = NULL;
        size_t len = 0;
        ck_assert_int_eq(hl_modelfile_encode(gen, &buf, &len), HL_OK);
        ck_assert_int_eq(hl_modelfile_decode(buf, len, &m, NULL, &err), HL_OK);
        ck_assert_uint_eq(m->n_params, gen->n_params);
        ck_assert(memcmp(m->params, gen->params, gen->n_params * sizeof(float)) == 0);
        free(buf);
        hl_model_free(gen);
    }
    const hl_model_config *c = &m->cfg;
    ck_assert_int_eq(c->kind, HL_MODEL_LANDER);
    ck_assert_int_eq(c->dim, (int32_t)g->dim);
    ck_assert_int_eq(c->in_features, 2 * (int32_t)g->dim);
    ck_assert_int_eq(c->edge_features, 0);
    ck_assert_int_eq(c->use_cluster_feat, 1);
    ck_assert_int_eq(c->hidden, g->hidden);
    ck_assert_int_eq(c->n_conv, g->n_conv);
    ck_assert_int_eq(c->k, g->k);
    return m;
}

/* ---------------------------------------------------------------------------------------- */
/* The golden comparison. */

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = d; /* also catches NaN */
    }
    return m;
}

START_TEST(test_golden)
{
    golden g;
    golden_load(&g, golden_cases[_i]);
    hl_model *m = golden_model(&g);
    size_t n = g.n, d = g.dim, w = (size_t)g.k - 1;
    int k = g.k;

    float *xn = malloc(n * d * sizeof(float));
    hl_l2norm_rows(g.x, xn, n, d);
    if (g.c_is_xnorm)
        ck_assert_double_le(max_abs_diff(xn, g.c, n * d), 1e-6);

    hl_knn_params kp;
    hl_knn_params_default(&kp);
    kp.k = k;
    hl_arena a;
    size_t cap = hl_knn_exact_plan(n, n, d, &kp) + hl_graph_plan(n, k) + hl_lander_plan(m, n, k, 2);
    ck_assert_int_eq(hl_arena_init(&a, cap), HL_OK);
    int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
    float *ksim = malloc(n * (size_t)k * sizeof(float));
    ck_assert_int_eq(hl_knn_exact(xn, n, xn, n, d, &kp, &a, idx, ksim), HL_OK);
    hl_graph gr;
    ck_assert_int_eq(hl_graph_init(&gr, n, k, &a), HL_OK);
    hl_graph_from_knn(&gr, idx, ksim, k);

    /* The graph equals the expected one: same neighbours in the same slots. */
    ck_assert_int_eq(gr.width, (int)w);
    for (size_t i = 0; i < n; i++) {
        int deg = 0;
        for (size_t s = 0; s < w; s++) {
            ck_assert_msg(gr.nbr[i * w + s] == g.nbr[i * w + s],
                          "%s: node %zu slot %zu: neighbour %d, expected %d", g.name, i, s,
                          (int)gr.nbr[i * w + s], (int)g.nbr[i * w + s]);
            ck_assert_msg(fabsf(gr.sim[i * w + s] - g.sim[i * w + s]) <= SIM_TOL,
                          "%s: node %zu slot %zu: sim %.9g, expected %.9g", g.name, i, s,
                          (double)gr.sim[i * w + s], (double)g.sim[i * w + s]);
            deg += g.nbr[i * w + s] >= 0;
        }
        ck_assert_int_eq(gr.deg[i], deg);
    }

    /* The forward pass, with one and with two threads. */
    hl_node_input in = {2, {xn, g.c_is_xnorm ? xn : g.c}, {d, d}};
    float *prob[2], *dens[2];
    for (int t = 0; t < 2; t++) {
        prob[t] = malloc(n * w * sizeof(float));
        dens[t] = malloc(n * sizeof(float));
        hl_forward_params fp;
        memset(&fp, 0, sizeof(fp));
        fp.n_threads = t + 1;
        ck_assert_int_eq(hl_lander_forward(m, &gr, &in, NULL, &fp, &a, prob[t], dens[t]), HL_OK);
    }
    ck_assert_msg(memcmp(prob[0], prob[1], n * w * sizeof(float)) == 0,
                  "%s: probabilities differ between 1 and 2 threads", g.name);
    ck_assert_msg(memcmp(dens[0], dens[1], n * sizeof(float)) == 0,
                  "%s: densities differ between 1 and 2 threads", g.name);

    double dp64 = max_abs_diff(prob[0], g.prob, n * w);
    double dd64 = max_abs_diff(dens[0], g.dens, n);
    double dp32 = max_abs_diff(prob[0], g.prob32, n * w);
    double dd32 = max_abs_diff(dens[0], g.dens32, n);
    printf("golden %-10s max|prob - torch f64| %.3g  max|dens - torch f64| %.3g  "
           "max|prob - torch f32| %.3g  max|dens - torch f32| %.3g\n",
           g.name, dp64, dd64, dp32, dd32);
    for (size_t i = 0; i < n * w; i++)
        ck_assert_msg(fabs((double)prob[0][i] - (double)g.prob[i]) <= PROB_TOL,
                      "%s: node %zu slot %zu: p1 %.7f, torch %.7f", g.name, i / w, i % w,
                      (double)prob[0][i], (double)g.prob[i]);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double)dens[0][i] - (double)g.dens[i]) <= PROB_TOL,
                      "%s: node %zu: density %.7f, torch %.7f", g.name, i, (double)dens[0][i],
                      (double)g.dens[i]);
    ck_assert_double_le(dp32, PROB_TOL);
    ck_assert_double_le(dd32, PROB_TOL);

    /* The comparison has teeth: aggregating with a plain mean (GCN-V) instead of the
     * similarity-weighted mean moves the probabilities well past the tolerance. */
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < gr.deg[i]; s++)
            gr.w[i * w + (size_t)s] = 1.0f / (float)gr.deg[i];
    hl_forward_params fp;
    memset(&fp, 0, sizeof(fp));
    fp.n_threads = 1;
    ck_assert_int_eq(hl_lander_forward(m, &gr, &in, NULL, &fp, &a, prob[1], dens[1]), HL_OK);
    ck_assert_double_gt(max_abs_diff(prob[1], g.prob, n * w), 10 * PROB_TOL);

    for (int t = 0; t < 2; t++) {
        free(prob[t]);
        free(dens[t]);
    }
    free(idx);
    free(ksim);
    free(xn);
    hl_arena_deinit(&a);
    hl_model_free(m);
    golden_free(&g);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Configuration. */

typedef struct cfg_case {
    hl_model_kind kind;
    const char *field;
    void (*mutate)(hl_model_config *c);
} cfg_case;

static void bad_kind(hl_model_config *c)
{
    c->kind = (hl_model_kind)7;
}
static void odd_hidden(hl_model_config *c)
{
    c->hidden = 7;
}
static void zero_hidden(hl_model_config *c)
{
    c->hidden = 0;
}
static void no_conv(hl_model_config *c)
{
    c->n_conv = 0;
}
static void five_conv(hl_model_config *c)
{
    c->n_conv = 5;
}
static void in_mismatch(hl_model_config *c)
{
    c->in_features = 2 * c->dim - 1; /* fewer inputs than [x ; cluster mean] */
}
static void k_one(hl_model_config *c)
{
    c->k = 1;
}
static void tau_big(hl_model_config *c)
{
    c->tau = 1.5f;
}
static void tau_nan(hl_model_config *c)
{
    c->tau = NAN;
}
static void zero_dim(hl_model_config *c)
{
    c->dim = 0;
}
static void lander_edges(hl_model_config *c)
{
    c->edge_features = 5000;
}
static void no_cluster_feat_mismatch(hl_model_config *c)
{
    c->in_features = c->dim; /* use_cluster_feat stays on: needs 2 * dim */
}
static void universal_dim(hl_model_config *c)
{
    c->dim = 5;
}
static void universal_cluster_feat(hl_model_config *c)
{
    c->use_cluster_feat = 1;
}
static void universal_no_inputs(hl_model_config *c)
{
    c->in_features = 0;
}
static void universal_many_edges(hl_model_config *c)
{
    c->edge_features = 5000;
}

static const cfg_case cfg_cases[] = {
    {HL_MODEL_LANDER, "kind", bad_kind},
    {HL_MODEL_LANDER, "hidden", odd_hidden},
    {HL_MODEL_LANDER, "hidden", zero_hidden},
    {HL_MODEL_LANDER, "n_conv", no_conv},
    {HL_MODEL_LANDER, "n_conv", five_conv},
    {HL_MODEL_LANDER, "in_features", in_mismatch},
    {HL_MODEL_LANDER, "k", k_one},
    {HL_MODEL_LANDER, "tau", tau_big},
    {HL_MODEL_LANDER, "tau", tau_nan},
    {HL_MODEL_LANDER, "dim", zero_dim},
    {HL_MODEL_LANDER, "edge_features", lander_edges},
    {HL_MODEL_LANDER, "in_features", no_cluster_feat_mismatch},
    {HL_MODEL_UNIVERSAL, "dim", universal_dim},
    {HL_MODEL_UNIVERSAL, "use_cluster_feat", universal_cluster_feat},
    {HL_MODEL_UNIVERSAL, "in_features", universal_no_inputs},
    {HL_MODEL_UNIVERSAL, "edge_features", universal_many_edges},
};
#define N_CFG_CASES ((int)(sizeof(cfg_cases) / sizeof(cfg_cases[0])))

static void valid_config(hl_model_config *c, hl_model_kind kind)
{
    hl_model_config_default(c, kind, 16);
    if (kind == HL_MODEL_UNIVERSAL) {
        c->in_features = 12;
        c->edge_features = 4;
    }
}

START_TEST(test_config_defaults)
{
    hl_model_config c;
    hl_model_config_default(&c, HL_MODEL_LANDER, 128);
    ck_assert_int_eq(c.kind, HL_MODEL_LANDER);
    ck_assert_int_eq(c.dim, 128);
    ck_assert_int_eq(c.in_features, 256);
    ck_assert_int_eq(c.hidden, 512);
    ck_assert_int_eq(c.n_conv, 1);
    ck_assert_int_eq(c.use_cluster_feat, 1);
    ck_assert_int_eq(c.k, 10);
    ck_assert_int_eq(hl_model_config_check(&c, NULL), HL_OK);
    for (int kind = HL_MODEL_LANDER; kind <= HL_MODEL_UNIVERSAL; kind++) {
        valid_config(&c, (hl_model_kind)kind);
        hl_error err;
        hl_error_clear(&err);
        ck_assert_int_eq(hl_model_config_check(&c, &err), HL_OK);
        ck_assert_int_eq(err.code, HL_OK);
    }
    ck_assert_str_eq(hl_model_kind_name(HL_MODEL_LANDER), "lander");
    ck_assert_str_eq(hl_model_kind_name(HL_MODEL_UNIVERSAL), "universal");
    ck_assert_str_eq(hl_model_kind_name((hl_model_kind)9), "unknown");
}
END_TEST

START_TEST(test_config_errors)
{
    const cfg_case *cc = &cfg_cases[_i];
    hl_model_config c;
    valid_config(&c, cc->kind);
    cc->mutate(&c);
    hl_error err;
    hl_error_clear(&err);
    ck_assert_int_eq(hl_model_config_check(&c, &err), HL_INVAL);
    ck_assert_int_eq(err.code, HL_INVAL);
    ck_assert_str_eq(err.field, cc->field);
    ck_assert_uint_gt(strlen(err.msg), 0);

    hl_model dummy;
    hl_model *m = &dummy; /* must be reset to NULL */
    hl_error_clear(&err);
    ck_assert_int_eq(hl_model_new(&c, &err, &m), HL_INVAL);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err.field, cc->field);
    ck_assert_int_eq(hl_model_new(&c, NULL, &m), HL_INVAL); /* err is optional */
    ck_assert_ptr_null(m);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Parameters: table, initialisation. */

static hl_model *small_model(int n_conv, int32_t dim, int32_t hidden)
{
    hl_model_config c;
    hl_model_config_default(&c, HL_MODEL_LANDER, dim);
    c.hidden = hidden;
    c.n_conv = n_conv;
    hl_model *m = NULL;
    ck_assert_int_eq(hl_model_new(&c, NULL, &m), HL_OK);
    ck_assert_ptr_nonnull(m);
    return m;
}

START_TEST(test_tensor_table)
{
    int n_conv = _i + 1;
    const int32_t dim = 16, h = 8, h2 = 4;
    hl_model *m = small_model(n_conv, dim, h);
    const size_t ins[4] = {2 * (size_t)dim, (size_t)h, (size_t)h, (size_t)h2};
    const size_t outs[4] = {(size_t)h, (size_t)h, (size_t)h2, (size_t)h2};
    size_t out_last = outs[n_conv - 1];

    struct {
        char name[32];
        size_t d0, d1;
    } want[HL_MAX_TENSORS];
    size_t nw = 0;
    for (int l = 0; l < n_conv; l++) {
        snprintf(want[nw].name, 32, "conv.%d.weight", l);
        want[nw].d0 = outs[l], want[nw].d1 = 2 * ins[l], nw++;
        snprintf(want[nw].name, 32, "conv.%d.bias", l);
        want[nw].d0 = outs[l], want[nw].d1 = 0, nw++;
    }
    const struct {
        const char *name;
        size_t d0, d1;
    } head[] = {
        {"src_mlp.weight", (size_t)h2, out_last}, {"src_mlp.bias", (size_t)h2, 0},
        {"dst_mlp.weight", (size_t)h2, out_last}, {"dst_mlp.bias", (size_t)h2, 0},
        {"classifier.0.weight", (size_t)h2, 0},   {"classifier.1.weight", (size_t)h2, (size_t)h2},
        {"classifier.1.bias", (size_t)h2, 0},     {"classifier.2.weight", (size_t)h2, 0},
        {"classifier.3.weight", 2, (size_t)h2},   {"classifier.3.bias", 2, 0},
    };
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++) {
        snprintf(want[nw].name, 32, "%s", head[i].name);
        want[nw].d0 = head[i].d0, want[nw].d1 = head[i].d1, nw++;
    }

    ck_assert_uint_eq(m->n_tensors, nw);
    size_t off = 0;
    for (size_t i = 0; i < nw; i++) {
        const hl_tensor_view *t = &m->tensors[i];
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_int_eq(t->ndim, want[i].d1 > 0 ? 2 : 1);
        ck_assert_uint_eq(t->dims[0], want[i].d0);
        if (want[i].d1 > 0)
            ck_assert_uint_eq(t->dims[1], want[i].d1);
        ck_assert_uint_eq(t->count, want[i].d1 > 0 ? want[i].d0 * want[i].d1 : want[i].d0);
        ck_assert_ptr_eq(t->data, m->params + off); /* contiguous, in table order */
        ck_assert_ptr_eq(hl_model_tensor(m, want[i].name), t);
        off += t->count;
    }
    ck_assert_uint_eq(off, m->n_params);
    ck_assert_ptr_null(hl_model_tensor(m, "conv.4.weight"));
    ck_assert_ptr_null(hl_model_tensor(m, "edge_mlp.weight"));
    ck_assert_ptr_null(hl_model_tensor(m, ""));
    ck_assert_int_eq(hl_model_out_dim(m), (int32_t)out_last);

    /* The named fields point at the same tensors. */
    ck_assert_ptr_eq(m->conv_w[0], hl_model_tensor(m, "conv.0.weight")->data);
    ck_assert_ptr_eq(m->src_w, hl_model_tensor(m, "src_mlp.weight")->data);
    ck_assert_ptr_eq(m->dst_b, hl_model_tensor(m, "dst_mlp.bias")->data);
    ck_assert_ptr_eq(m->prelu1, hl_model_tensor(m, "classifier.0.weight")->data);
    ck_assert_ptr_eq(m->fc1_w, hl_model_tensor(m, "classifier.1.weight")->data);
    ck_assert_ptr_eq(m->prelu2, hl_model_tensor(m, "classifier.2.weight")->data);
    ck_assert_ptr_eq(m->fc2_b, hl_model_tensor(m, "classifier.3.bias")->data);
    ck_assert_ptr_null(m->edge_w);
    hl_model_free(m);
}
END_TEST

/* Spec section 1.8: the face configuration has 2048 * D + 329,986 parameters. */
START_TEST(test_param_counts)
{
    const int32_t dims[] = {128, 256, 512};
    const size_t want[] = {592130, 854274, 1378562};
    for (int i = 0; i < 3; i++) {
        hl_model_config c;
        hl_model_config_default(&c, HL_MODEL_LANDER, dims[i]);
        hl_model *m = NULL;
        ck_assert_int_eq(hl_model_new(&c, NULL, &m), HL_OK);
        ck_assert_uint_eq(m->n_params, want[i]);
        hl_model_free(m);
    }
}
END_TEST

START_TEST(test_init_params)
{
    hl_model *a = small_model(2, 16, 8);
    hl_model *b = small_model(2, 16, 8);
    hl_model *c = small_model(2, 16, 8);
    for (size_t i = 0; i < a->n_params; i++)
        ck_assert(a->params[i] == 0.0f); /* hl_model_new zeroes */
    hl_model_init_params(a, 42);
    hl_model_init_params(b, 42);
    hl_model_init_params(c, 43);
    ck_assert(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    ck_assert(memcmp(a->params, c->params, a->n_params * sizeof(float)) != 0);
    hl_model_init_params(b, 42); /* re-initialising gives the same values again */
    ck_assert(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);

    /* PyTorch defaults: Linear U(+-1/sqrt(fan_in)) for weight and bias, PReLU 0.25. */
    for (size_t t = 0; t < a->n_tensors; t++) {
        const hl_tensor_view *tv = &a->tensors[t];
        if (strcmp(tv->name, "classifier.0.weight") == 0 ||
            strcmp(tv->name, "classifier.2.weight") == 0) {
            for (size_t e = 0; e < tv->count; e++)
                ck_assert(tv->data[e] == 0.25f);
            continue;
        }
        char wname[48];
        snprintf(wname, sizeof(wname), "%s", tv->name);
        char *dot = strstr(wname, ".bias");
        if (dot != NULL)
            snprintf(dot, 8, ".weight");
        const hl_tensor_view *wv = hl_model_tensor(a, wname);
        ck_assert_ptr_nonnull(wv);
        double bound = 1.0 / sqrt((double)wv->dims[1]);
        double lo = 0.0, hi = 0.0;
        for (size_t e = 0; e < tv->count; e++) {
            ck_assert_double_le(fabs((double)tv->data[e]), bound);
            lo = fmin(lo, (double)tv->data[e]);
            hi = fmax(hi, (double)tv->data[e]);
        }
        /* Both signs appear in every tensor of more than a few values. */
        if (tv->count >= 8) {
            ck_assert_double_lt(lo, 0.0);
            ck_assert_double_gt(hi, 0.0);
        }
    }
    hl_model_free(a);
    hl_model_free(b);
    hl_model_free(c);
}
END_TEST

START_TEST(test_clone)
{
    hl_model *a = small_model(3, 8, 6);
    hl_model_init_params(a, 7);
    snprintf(a->name, sizeof(a->name), "clone-me");
    hl_model *b = NULL;
    ck_assert_int_eq(hl_model_clone(a, &b), HL_OK);
    ck_assert_ptr_ne(a->params, b->params);
    ck_assert_uint_eq(a->n_params, b->n_params);
    ck_assert(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    ck_assert_str_eq(b->name, "clone-me");
    ck_assert_ptr_eq(b->tensors[0].data, b->params);
    ck_assert_ptr_eq(b->conv_w[0], b->params);
    hl_model_free(a);
    hl_model_free(b);
    hl_model_free(NULL);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Forward-pass argument checks. */

START_TEST(test_forward_shape_mismatch)
{
    const size_t n = 12, d = 4;
    const int k = 4;
    hl_model *m = small_model(1, (int32_t)d, 8);
    hl_model_init_params(m, 3);
    float *x = tu_randn(n, d, 99);
    hl_l2norm_rows(x, x, n, d);
    hl_knn_params kp;
    hl_knn_params_default(&kp);
    kp.k = k;
    hl_arena a;
    ck_assert_int_eq(hl_arena_init(&a, hl_knn_exact_plan(n, n, d, &kp) + hl_graph_plan(n, k) +
                                           hl_lander_plan(m, n, k, 1)),
                     HL_OK);
    int32_t idx[12 * 4];
    float sim[12 * 4];
    ck_assert_int_eq(hl_knn_exact(x, n, x, n, d, &kp, &a, idx, sim), HL_OK);
    hl_graph g;
    ck_assert_int_eq(hl_graph_init(&g, n, k, &a), HL_OK);
    hl_graph_from_knn(&g, idx, sim, k);
    float prob[12 * 3], dens[12];
    hl_forward_params fp;
    memset(&fp, 0, sizeof(fp));
    fp.n_threads = 1;

    hl_node_input ok = {2, {x, x}, {d, d}};
    ck_assert_int_eq(hl_lander_forward(m, &g, &ok, NULL, &fp, &a, prob, dens), HL_OK);
    for (size_t i = 0; i < n * 3; i++)
        ck_assert(prob[i] >= 0.0f && prob[i] <= 1.0f);

    /* The same input as one block [x | x] of the right width gives the same result. */
    float *xx = malloc(n * 2 * d * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        memcpy(xx + i * 2 * d, x + i * d, d * sizeof(float));
        memcpy(xx + i * 2 * d + d, x + i * d, d * sizeof(float));
    }
    float prob2[12 * 3], dens2[12];
    hl_node_input one_block = {1, {xx}, {2 * d}};
    ck_assert_int_eq(hl_lander_forward(m, &g, &one_block, NULL, &fp, &a, prob2, dens2), HL_OK);
    ck_assert(memcmp(prob, prob2, sizeof(prob)) == 0);
    ck_assert(memcmp(dens, dens2, sizeof(dens)) == 0);
    free(xx);

    /* Widths that do not add up to in_features (2 * dim) are refused. */
    hl_node_input only_x = {1, {x}, {d}};
    ck_assert_int_eq(hl_lander_forward(m, &g, &only_x, NULL, &fp, &a, prob2, dens2), HL_INVAL);
    hl_node_input too_wide = {2, {x, x}, {d, d + 1}};
    ck_assert_int_eq(hl_lander_forward(m, &g, &too_wide, NULL, &fp, &a, prob2, dens2), HL_INVAL);
    hl_node_input too_narrow = {2, {x, x}, {d - 1, d}};
    ck_assert_int_eq(hl_lander_forward(m, &g, &too_narrow, NULL, &fp, &a, prob2, dens2), HL_INVAL);
    hl_node_input null_b = {2, {x, NULL}, {d, d}};
    ck_assert_int_eq(hl_lander_forward(m, &g, &null_b, NULL, &fp, &a, prob2, dens2), HL_INVAL);

    hl_arena_deinit(&a);
    free(x);
    hl_model_free(m);
}
END_TEST

Suite *lander_suite(void);

Suite *lander_suite(void)
{
    Suite *s = suite_create("lander");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_config_defaults);
    tcase_add_loop_test(tc, test_config_errors, 0, N_CFG_CASES);
    suite_add_tcase(s, tc);

    tc = tcase_create("params");
    tcase_add_loop_test(tc, test_tensor_table, 0, HL_MAX_CONV);
    tcase_add_test(tc, test_param_counts);
    tcase_add_test(tc, test_init_params);
    tcase_add_test(tc, test_clone);
    suite_add_tcase(s, tc);

    tc = tcase_create("forward");
    tcase_add_test(tc, test_forward_shape_mismatch);
    suite_add_tcase(s, tc);

    tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_golden, 0, N_GOLDEN);
    suite_add_tcase(s, tc);
    return s;
}
