/*
 * cmd_train.c - `hilander train`: meta-train a model on labelled embeddings.
 *
 * Data: one or more (features, labels) .npy pairs. With --val F, a seeded fraction F of the
 * classes of the first pair is held out: the model is evaluated on it every --eval-every
 * epochs (hierarchical clustering, pairwise F), the best epoch is kept, training stops after
 * --patience evaluations without improvement, and at the end the link threshold tau is
 * chosen on the held-out classes. The same data, seed and options give a byte-identical model
 * file for any --threads.
 */
#include "cli.h"
#include "opts.h"

#include "hl/cluster.h"
#include "hl/features.h"
#include "hl/metrics.h"
#include "hl/modelfile.h"
#include "hl/npy.h"
#include "hl/rng.h"
#include "hl/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 8

typedef struct train_opts {
    const char *data, *labels, *kind, *out, *optim, *resume, *name, *trained_on, *settings;
    const char *ablate;
    int epochs, hidden, n_conv, threads, eval_every, patience, quiet, no_features;
    float lr, val, tau;
    int seed;
} train_opts;

typedef struct loaded {
    size_t n_sets;
    hl_fmatrix x[MAX_SETS];
    int32_t *y[MAX_SETS];
    size_t ny[MAX_SETS];
    /* training view of set 0 after the validation split, and the held-out part */
    float *tr_x, *va_x;
    int32_t *tr_y, *va_y;
    size_t tr_n, va_n;
} loaded;

static void loaded_free(loaded *L)
{
    for (size_t i = 0; i < L->n_sets; i++) {
        hl_fmatrix_free(&L->x[i]);
        free(L->y[i]);
    }
    free(L->tr_x);
    free(L->va_x);
    free(L->tr_y);
    free(L->va_y);
}

/* Splits "a,b,c" into at most MAX_SETS pieces (modifies `s`). */
static size_t split_list(char *s, char **out)
{
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok != NULL && n < MAX_SETS + 1; tok = strtok(NULL, ","))
        out[n++] = tok;
    return n;
}

static int load_sets(const train_opts *o, loaded *L)
{
    char *dbuf = strdup(o->data), *lbuf = strdup(o->labels);
    char *dp[MAX_SETS + 1], *lp[MAX_SETS + 1];
    size_t nd = split_list(dbuf, dp), nl = split_list(lbuf, lp);
    int rc = 0;
    if (nd == 0 || nd > MAX_SETS || nd != nl) {
        fprintf(stderr,
                "hilander train: --data and --labels need the same number (1..%d) of "
                "comma-separated files, got %zu and %zu\n",
                MAX_SETS, nd, nl);
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < nd; i++) {
        hl_error err;
        hl_error_clear(&err);
        hl_status st = hl_npy_load_f32(dp[i], &L->x[i], &err);
        if (st == HL_OK)
            st = hl_npy_load_i32(lp[i], &L->y[i], &L->ny[i], &err);
        L->n_sets = i + 1;
        if (st != HL_OK) {
            rc = cli_fail("train", &err, st);
            goto out;
        }
        if (L->ny[i] != L->x[i].rows) {
            fprintf(stderr, "hilander train: %s has %zu labels for the %zu rows of %s\n", lp[i],
                    L->ny[i], L->x[i].rows, dp[i]);
            rc = 2;
            goto out;
        }
    }
out:
    free(dbuf);
    free(lbuf);
    return rc;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Holds out a seeded fraction of the classes of set 0. */
static int split_val(loaded *L, float frac, uint64_t seed)
{
    size_t n = L->x[0].rows, d = L->x[0].cols;
    const int32_t *y = L->y[0];
    /* Distinct classes (sorted), shuffled by the seed; the first ceil(frac*C) are held out. */
    int32_t *cls = malloc(n * sizeof(int32_t));
    memcpy(cls, y, n * sizeof(int32_t));
    qsort(cls, n, sizeof(int32_t), cmp_i32);
    size_t C = 0;
    for (size_t i = 0; i < n; i++)
        if (C == 0 || cls[C - 1] != cls[i])
            cls[C++] = cls[i];
    hl_rng r;
    hl_rng_seed(&r, seed ^ 0x76616cu);
    hl_rng_shuffle_i32(&r, cls, C);
    size_t hold = (size_t)ceil((double)frac * (double)C);
    if (hold < 1 || hold >= C) {
        fprintf(stderr,
                "hilander train: --val %.3f holds out %zu of %zu classes; need at least "
                "one on each side\n",
                (double)frac, hold, C);
        free(cls);
        return 2;
    }
    int32_t *held = cls;
    qsort(held, hold, sizeof(int32_t), cmp_i32);
    L->tr_x = malloc(n * d * sizeof(float));
    L->va_x = malloc(n * d * sizeof(float));
    L->tr_y = malloc(n * sizeof(int32_t));
    L->va_y = malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = hold;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (held[mid] < y[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        int is_val = lo < hold && held[lo] == y[i];
        float *dst = is_val ? L->va_x + L->va_n * d : L->tr_x + L->tr_n * d;
        memcpy(dst, L->x[0].data + i * d, d * sizeof(float));
        if (is_val)
            L->va_y[L->va_n++] = y[i];
        else
            L->tr_y[L->tr_n++] = y[i];
    }
    free(cls);
    return 0;
}

static int parse_settings(const char *s, hl_train_params *tp)
{
    tp->n_settings = 0;
    const char *p = s;
    while (*p != '\0') {
        int k, lv, used;
        if (sscanf(p, "%d:%d%n", &k, &lv, &used) != 2 || tp->n_settings >= HL_TRAIN_MAX_SETTINGS)
            return -1;
        tp->knn_k[tp->n_settings] = k;
        tp->levels[tp->n_settings] = lv;
        tp->n_settings++;
        p += used;
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return -1;
    }
    return tp->n_settings > 0 ? 0 : -1;
}

/* Clusters the held-out classes and returns their metrics. */
static hl_status evaluate(const hl_model *m, const loaded *L, float tau, int threads,
                          hl_metrics *out)
{
    hl_cluster_params cp;
    hl_cluster_params_default(&cp);
    cp.k = m->cfg.k;
    cp.tau = tau;
    cp.n_threads = threads;
    hl_clustering *c = NULL;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = hl_cluster_run(L->va_x, L->va_n, L->x[0].cols, m, &cp, &c, &err);
    if (st == HL_OK)
        st = hl_metrics_compute(L->va_y, c->labels, L->va_n, out);
    hl_clustering_free(c);
    return st;
}

static int make_model(const train_opts *o, const loaded *L, const hl_train_params *tp,
                      hl_model **out)
{
    if (o->resume != NULL) {
        int rc = cli_load_model("train", o->resume, out);
        if (rc != 0)
            return rc;
        hl_model *m = *out;
        if (m->cfg.kind == HL_MODEL_LANDER && (size_t)m->cfg.dim != L->x[0].cols) {
            fprintf(stderr,
                    "hilander train: --resume model '%s' has dimension %d, the data has %zu\n",
                    o->resume, (int)m->cfg.dim, L->x[0].cols);
            hl_model_free(m);
            *out = NULL;
            return 2;
        }
        return 0;
    }
    hl_model_config cfg;
    hl_model_kind kind = strcmp(o->kind, "universal") == 0 ? HL_MODEL_UNIVERSAL : HL_MODEL_LANDER;
    hl_model_config_default(&cfg, kind, (int32_t)L->x[0].cols);
    if (kind == HL_MODEL_UNIVERSAL) {
        cfg.in_features = HL_FEAT_NODE;
        cfg.edge_features = HL_FEAT_EDGE;
    } else if (!o->no_features) {
        cfg.in_features += HL_FEAT_NODE;
        cfg.edge_features = HL_FEAT_EDGE;
    }
    if (o->hidden > 0)
        cfg.hidden = o->hidden;
    cfg.n_conv = o->n_conv;
    cfg.k = tp->knn_k[0];
    cfg.tau = o->tau >= 0.0f ? o->tau : 0.5f;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = hl_model_new(&cfg, &err, out);
    if (st != HL_OK)
        return cli_fail("train", &err, st);
    hl_model_init_params(*out, (uint64_t)o->seed);
    return 0;
}

static void set_meta(hl_model *m, const train_opts *o)
{
    if (o->name != NULL)
        snprintf(m->name, sizeof(m->name), "%s", o->name);
    else if (m->name[0] == '\0')
        snprintf(m->name, sizeof(m->name), "%s", o->kind);
    if (o->trained_on != NULL)
        snprintf(m->trained_on, sizeof(m->trained_on), "%s", o->trained_on);
}

/* Chooses tau on the held-out classes (best pairwise F, then BCubed F). */
static float tune_tau(const hl_model *m, const loaded *L, int threads, int quiet)
{
    static const float cand[] = {0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};
    float best = m->cfg.tau;
    double best_s = -1.0;
    for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
        hl_metrics mt;
        if (evaluate(m, L, cand[i], threads, &mt) != HL_OK)
            continue;
        double s = (isnan(mt.fp) ? 0.0 : mt.fp) + 1e-3 * mt.fb;
        if (!quiet)
            fprintf(stderr, "tau %.2f: val Fp %.4f Fb %.4f NMI %.4f\n", (double)cand[i], mt.fp,
                    mt.fb, mt.nmi);
        if (s > best_s) {
            best_s = s;
            best = cand[i];
        }
    }
    return best;
}

/* --ablate node:3,5;edge:1 switches structural features off: a column whose std is huge
 * normalises to 0 in training and at inference alike, so the model never sees it. */
static int ablate(hl_model *m, const char *spec)
{
    char *buf = strdup(spec);
    int rc = 0;
    for (char *part = strtok(buf, ";"); part != NULL && rc == 0; part = strtok(NULL, ";")) {
        int edge = strncmp(part, "edge:", 5) == 0;
        if (!edge && strncmp(part, "node:", 5) != 0) {
            rc = -1;
            break;
        }
        int count = edge ? m->cfg.edge_features : hl_model_node_features(m);
        float *mean = edge ? m->edge_mean : m->node_mean, *std = edge ? m->edge_std : m->node_std;
        for (char *p = part + 5; *p != '\0';) {
            char *end;
            long c = strtol(p, &end, 10);
            if (end == p || c < 0 || c >= count) {
                rc = -1;
                break;
            }
            mean[c] = 0.0f;
            std[c] = 1e30f;
            p = *end == ',' ? end + 1 : end;
            if (*end != ',' && *end != '\0') {
                rc = -1;
                break;
            }
        }
    }
    free(buf);
    if (rc != 0)
        fprintf(stderr,
                "hilander train: --ablate must look like node:3,5;edge:1 with columns the "
                "model has, got '%s'\n",
                spec);
    return rc;
}

/* Training state shared by the phases. */
typedef struct trainer {
    const train_opts *o;
    loaded *L;
    hl_model *m, *best;
    double best_fp, t0;
} trainer;

/* Keeps a copy of the model when its validation Fp is the best so far. Returns 1 when it
 * improved, 0 when not, -1 on failure. */
static int track_best(trainer *T, double fp)
{
    if (fp <= T->best_fp)
        return 0;
    T->best_fp = fp;
    hl_model_free(T->best);
    T->best = NULL;
    return hl_model_clone(T->m, &T->best) == HL_OK ? 1 : -1;
}

/* Runs `epochs` epochs on `td` with a fresh optimiser starting at `lr`, evaluating on the
 * held-out classes and stopping early after `patience` evaluations without a better Fp. */
static int train_phase(trainer *T, hl_train_data *td, const hl_train_params *tp, int epochs,
                       float lr)
{
    const train_opts *o = T->o;
    hl_optim_params op;
    hl_optim_params_default(&op);
    op.kind = strcmp(o->optim, "adam") == 0 ? HL_OPTIM_ADAM : HL_OPTIM_SGD;
    op.lr = lr;
    op.total_steps = (size_t)epochs * td->n_graphs;
    hl_optim *opt = NULL;
    if (hl_optim_new(T->m, &op, &opt) != HL_OK) {
        fprintf(stderr, "hilander train: bad optimiser settings\n");
        return 2;
    }
    double t_phase = cli_now();
    int stale = 0, rc = 0;
    for (int e = 0; e < epochs; e++) {
        hl_epoch_stats es;
        hl_status st = hl_train_epoch(T->m, td, opt, tp, e, &es);
        if (st != HL_OK) {
            rc = cli_fail("train", NULL, st);
            break;
        }
        double el = cli_now() - t_phase, eta = el / (e + 1) * (epochs - e - 1);
        char vbuf[96] = "";
        int stop = 0;
        if (T->L->va_x != NULL && ((e + 1) % o->eval_every == 0 || e == epochs - 1)) {
            hl_metrics mt;
            if (evaluate(T->m, T->L, T->m->cfg.tau, o->threads, &mt) == HL_OK) {
                snprintf(vbuf, sizeof(vbuf), "  val Fp %.4f Fb %.4f", mt.fp, mt.fb);
                int better = track_best(T, isnan(mt.fp) ? 0.0 : mt.fp);
                if (better < 0) {
                    rc = 1;
                    break;
                }
                stale = better ? 0 : stale + 1;
                stop = stale >= o->patience;
            }
        }
        if (!o->quiet)
            fprintf(stderr,
                    "epoch %3d/%d loss %.4f (link %.4f, density %.5f) link acc %.4f lr %.2e "
                    "%.1fs ETA %.0fs%s\n",
                    e + 1, epochs, es.loss, es.loss_conn, es.loss_den, es.link_acc,
                    (double)hl_optim_lr(opt), el, eta, vbuf);
        if (stop) {
            if (!o->quiet)
                fprintf(stderr, "early stop: no better val Fp in %d evaluations\n", o->patience);
            break;
        }
    }
    hl_optim_free(opt);
    return rc;
}

/* The training sets: set 0 without its held-out classes, the others whole. */
static size_t training_sets(const loaded *L, hl_train_set *sets)
{
    size_t ns = 0;
    for (size_t i = 0; i < L->n_sets; i++) {
        if (i == 0 && L->tr_x != NULL)
            sets[ns++] = (hl_train_set){L->tr_x, L->tr_n, L->x[0].cols, L->tr_y};
        else
            sets[ns++] = (hl_train_set){L->x[i].data, L->x[i].rows, L->x[i].cols, L->y[i]};
    }
    return ns;
}

static int run_training(const train_opts *o, loaded *L, hl_train_params *tp)
{
    hl_train_set sets[MAX_SETS];
    size_t ns = training_sets(L, sets);
    trainer T = {o, L, NULL, NULL, -1.0, cli_now()};
    hl_train_data *td = NULL;
    int rc = make_model(o, L, tp, &T.m);
    if (rc != 0)
        return rc;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = hl_train_data_build(sets, ns, tp, &td, &err);
    if (st != HL_OK) {
        rc = cli_fail("train", &err, st);
        goto out;
    }
    if (o->resume != NULL) {
        hl_train_apply_normalizer(T.m, td);
    } else {
        hl_train_fit_normalizer_stats(T.m, td);
        if (o->ablate != NULL && ablate(T.m, o->ablate) != 0) {
            rc = 2;
            goto out;
        }
        hl_train_apply_normalizer(T.m, td);
    }
    if (!o->quiet)
        fprintf(stderr, "built %zu training graphs in %.1f s; model %s, %zu parameters\n",
                td->n_graphs, cli_now() - T.t0, hl_model_kind_name(T.m->cfg.kind), T.m->n_params);
    rc = train_phase(&T, td, tp, o->epochs, o->lr);
    hl_train_data_free(td);
    td = NULL;
    if (rc != 0)
        goto out;
    hl_model *final = T.best != NULL ? T.best : T.m;
    if (L->va_x != NULL && o->tau < 0.0f)
        final->cfg.tau = tune_tau(final, L, o->threads, o->quiet);
    set_meta(final, o);
    st = hl_modelfile_save(final, o->out, &err);
    if (st != HL_OK) {
        rc = cli_fail("train", &err, st);
        goto out;
    }
    if (!o->quiet)
        fprintf(stderr, "wrote %s (tau %.2f) after %.1f s, peak RSS %.0f MiB\n", o->out,
                (double) final->cfg.tau, cli_now() - T.t0, cli_peak_rss_mib());
out:
    hl_train_data_free(td);
    hl_model_free(T.best);
    hl_model_free(T.m);
    return rc;
}

int cli_cmd_train(int argc, char **argv)
{
    train_opts o;
    memset(&o, 0, sizeof(o));
    o.kind = "lander";
    o.optim = "adam";
    o.settings = "10:3";
    o.epochs = 100;
    o.n_conv = 1;
    o.threads = cli_default_threads();
    o.eval_every = 5;
    o.patience = 4;
    o.lr = 0.003f;
    o.tau = -1.0f;
    o.seed = 1;
    cli_opt opts[] = {
        {"data", CLI_STR, &o.data, 1, 0, 0, "X.npy[,X2.npy]", "features (N, D), float32/16"},
        {"labels", CLI_STR, &o.labels, 1, 0, 0, "Y.npy[,Y2.npy]", "class labels (N,), int32/64"},
        {"kind", CLI_STR, &o.kind, 0, 0, 0, "lander|universal", "model kind (default lander)"},
        {"out", CLI_STR, &o.out, 1, 0, 0, "M.hlm", "model file to write"},
        {"epochs", CLI_INT, &o.epochs, 0, 1, 100000, "N", "epochs (default 100)"},
        {"lr", CLI_FLOAT, &o.lr, 0, 1e-7, 10, "LR", "initial learning rate (default 0.003)"},
        {"optim", CLI_STR, &o.optim, 0, 0, 0, "adam|sgd", "optimiser (default adam)"},
        {"hidden", CLI_INT, &o.hidden, 0, 2, 8192, "H", "hidden width (default 512 / 128)"},
        {"n-conv", CLI_INT, &o.n_conv, 0, 1, 4, "L", "GraphConv layers (default 1)"},
        {"no-features", CLI_FLAG, &o.no_features, 0, 0, 0, NULL,
         "lander: coordinates only (the paper's inputs)"},
        {"settings", CLI_STR, &o.settings, 0, 0, 0, "K:L[,K:L]",
         "hierarchy settings, k and levels (default 10:3)"},
        {"val", CLI_FLOAT, &o.val, 0, 0, 0.9, "F", "hold out this fraction of classes"},
        {"eval-every", CLI_INT, &o.eval_every, 0, 1, 100000, "N", "epochs between evaluations"},
        {"patience", CLI_INT, &o.patience, 0, 1, 100000, "N", "evaluations without gain"},
        {"tau", CLI_FLOAT, &o.tau, 0, 0, 1, "T", "link threshold to store (default: tuned on val)"},
        {"seed", CLI_INT, &o.seed, 0, 0, 2147483647, "S", "random seed (default 1)"},
        {"threads", CLI_INT, &o.threads, 0, 1, 64, "N", "threads (default: all cores)"},
        {"resume", CLI_STR, &o.resume, 0, 0, 0, "M.hlm", "continue from a model"},
        {"name", CLI_STR, &o.name, 0, 0, 0, "NAME", "model name (default: the kind)"},
        {"trained-on", CLI_STR, &o.trained_on, 0, 0, 0, "TEXT", "provenance text"},
        {"ablate", CLI_STR, &o.ablate, 0, 0, 0, "node:I,J;edge:K",
         "switch structural feature columns off (ablation studies)"},
        {"quiet", CLI_FLAG, &o.quiet, 0, 0, 0, NULL, "no progress on stderr"},
    };
    int r = cli_opts_parse("train", "Meta-train a LANDER model on labelled embeddings.", opts,
                           sizeof(opts) / sizeof(opts[0]), argc, argv);
    if (r != CLI_PARSE_OK)
        return r == CLI_PARSE_HELP ? 0 : 2;
    if (strcmp(o.kind, "lander") != 0 && strcmp(o.kind, "universal") != 0) {
        fprintf(stderr, "hilander train: --kind must be lander or universal, got '%s'\n", o.kind);
        return 2;
    }
    if (strcmp(o.optim, "adam") != 0 && strcmp(o.optim, "sgd") != 0) {
        fprintf(stderr, "hilander train: --optim must be adam or sgd, got '%s'\n", o.optim);
        return 2;
    }
    hl_train_params tp;
    hl_train_params_default(&tp);
    if (parse_settings(o.settings, &tp) != 0) {
        fprintf(stderr, "hilander train: --settings must look like 10:3 or 10:3,5:3, got '%s'\n",
                o.settings);
        return 2;
    }
    tp.n_threads = o.threads;
    tp.seed = (uint64_t)o.seed;
    loaded L;
    memset(&L, 0, sizeof(L));
    int rc = load_sets(&o, &L);
    for (size_t i = 1; rc == 0 && i < L.n_sets; i++) {
        if (strcmp(o.kind, "lander") == 0 && L.x[i].cols != L.x[0].cols) {
            fprintf(stderr,
                    "hilander train: a lander model needs one dimension; the sets have "
                    "%zu and %zu\n",
                    L.x[0].cols, L.x[i].cols);
            rc = 2;
        }
    }
    if (rc == 0 && o.val > 0.0f)
        rc = split_val(&L, o.val, (uint64_t)o.seed);
    if (rc == 0)
        rc = run_training(&o, &L, &tp);
    loaded_free(&L);
    return rc;
}
