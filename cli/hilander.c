/*
 * hilander.c - the command-line harness over the engine and the file formats.
 *
 *   hilander cluster --in X.npy [--model FILE|none] --out labels.npy [--levels-out L.npy]
 *                    [--save-state STATE]
 *   hilander assign --state STATE --in new.npy --out labels.npy [--model FILE|none] ...
 *   hilander eval --pred P.npy --true T.npy
 *   hilander knn --in X.npy --k K --out idx.npy [--sims-out sims.npy]
 *   hilander model-info FILE
 *
 * Exit codes: 0 success, 2 bad arguments or bad input files (one line on stderr), 1 any
 * other failure (out of memory, I/O while writing).
 */
#include "cli.h"
#include "opts.h"

#include "hl/assign.h"
#include "hl/cluster.h"
#include "hl/knn.h"
#include "hl/mat.h"
#include "hl/metrics.h"
#include "hl/modelfile.h"
#include "hl/npy.h"
#include "hl/statefile.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cli_peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_maxrss / 1024.0;
}

int cli_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 64 ? 64 : (int)n);
}

int cli_fail(const char *cmd, const hl_error *err, hl_status st)
{
    const char *msg = err != NULL && err->msg[0] != '\0' ? err->msg : hl_status_str(st);
    fprintf(stderr, "hilander %s: %s\n", cmd, msg);
    switch (st) {
        case HL_NOMEM:
        case HL_INTERNAL:
        case HL_CANCELED:
            return 1;
        default:
            return 2;
    }
}

/* Progress on stderr: one line per stage change and at most one every half second. */
static void progress_report(void *ud, hl_stage stage, int level, double fraction)
{
    cli_progress *p = ud;
    double t = cli_now();
    int changed = (int)stage != p->last_stage || level != p->last_level;
    if (!changed && fraction < 1.0 && t - p->last_print < 0.5)
        return;
    if (!changed && fraction >= 1.0 && p->last_fraction >= 1.0)
        return;
    p->last_print = t;
    p->last_stage = (int)stage;
    p->last_level = level;
    p->last_fraction = fraction;
    fprintf(stderr, "[%7.1fs] %-6s level %d %5.1f%%\n", t - p->start, hl_stage_name(stage), level,
            100.0 * fraction);
}

void cli_progress_init(cli_progress *p, int quiet, hl_progress *hook)
{
    memset(p, 0, sizeof(*p));
    p->start = cli_now();
    p->last_stage = -1;
    p->last_level = -1;
    hook->report = quiet ? NULL : progress_report;
    hook->ud = p;
}

int cli_load_model_crc(const char *cmd, const char *spec, hl_model **out, uint32_t *crc)
{
    *out = NULL;
    *crc = 0;
    if (spec == NULL || strcmp(spec, "none") == 0)
        return 0;
    hl_error err;
    hl_error_clear(&err);
    hl_status st = hl_modelfile_load(spec, out, crc, &err);
    return st == HL_OK ? 0 : cli_fail(cmd, &err, st);
}

int cli_load_model(const char *cmd, const char *spec, hl_model **out)
{
    uint32_t crc;
    return cli_load_model_crc(cmd, spec, out, &crc);
}

static void print_stats(const hl_clustering *c, double seconds)
{
    fprintf(stderr, "level      nodes      edges      links   clusters  knn      knn_s    gnn_s  "
                    "decode_s\n");
    for (int l = 0; l < c->n_levels; l++) {
        const hl_level_stats *s = &c->levels[l];
        fprintf(stderr, "%5d %10zu %10zu %10zu %10zu  %-5s %8.2f %8.2f %9.2f\n", l, s->nodes,
                s->edges, s->links, s->clusters, hl_knn_method_name(s->knn), s->sec_knn, s->sec_gnn,
                s->sec_decode);
    }
    /* CPU time and load average: on a shared machine wall time alone says little. */
    struct rusage ru;
    double cpu = -1.0, load = -1.0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1.0;
        fclose(f);
    }
    fprintf(stderr,
            "total %.2f s, peak RSS %.1f MiB, engine arena peak %.1f MiB, CPU %.2f s, load %.2f\n",
            seconds, cli_peak_rss_mib(), (double)c->arena_peak / 1048576.0, cpu, load);
}

static int print_metrics(const char *cmd, const int32_t *truth, const int32_t *pred, size_t n,
                         int json)
{
    hl_metrics m;
    hl_status st = hl_metrics_compute(truth, pred, n, &m);
    if (st != HL_OK)
        return cli_fail(cmd, NULL, st);
    if (json) {
        /* NaN (an undefined precision or recall) is not JSON: it prints as null. */
        const char *key[7] = {"fp",           "fp_precision", "fp_recall", "fb",
                              "fb_precision", "fb_recall",    "nmi"};
        double val[7] = {m.fp,           m.fp_precision, m.fp_recall, m.fb,
                         m.fb_precision, m.fb_recall,    m.nmi};
        printf("{\"n\": %zu, \"n_true\": %zu, \"n_pred\": %zu", m.n, m.n_true, m.n_pred);
        for (int i = 0; i < 7; i++) {
            if (isnan(val[i]))
                printf(", \"%s\": null", key[i]);
            else
                printf(", \"%s\": %.6f", key[i], val[i]);
        }
        printf("}\n");
    } else {
        printf("items %zu, true classes %zu, predicted clusters %zu\n", m.n, m.n_true, m.n_pred);
        printf("pairwise  F %.4f  P %.4f  R %.4f\n", m.fp, m.fp_precision, m.fp_recall);
        printf("bcubed    F %.4f  P %.4f  R %.4f\n", m.fb, m.fb_precision, m.fb_recall);
        printf("nmi       %.4f\n", m.nmi);
    }
    return 0;
}

static int cmd_cluster(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *levels_out = NULL, *model_path = "none", *truth = NULL;
    const char *knn = "auto";
    int exact_max = 0;
    const char *save_state = NULL;
    hl_cluster_params p;
    hl_cluster_params_default(&p);
    int no_early = 0, quiet = 0, stats = 0, threads = cli_default_threads();
    float tau = -1.0f;
    cli_opt opts[] = {
        {"in", CLI_STR, &in, 1, 0, 0, "X.npy", "features, float32/float16 (N, D)"},
        {"out", CLI_STR, &out, 1, 0, 0, "L.npy", "final labels, int32 (N,)"},
        {"levels-out", CLI_STR, &levels_out, 0, 0, 0, "F.npy", "every level's labels (L, N)"},
        {"save-state", CLI_STR, &save_state, 0, 0, 0, "STATE",
         "also write the clustering state for `hilander assign`"},
        {"model", CLI_STR, &model_path, 0, 0, 0, "FILE|none",
         "model file, or none for the model-free mode (default none)"},
        {"k", CLI_INT, &p.k, 0, 2, 1024, "K", "neighbours including the point (default 10)"},
        {"tau", CLI_FLOAT, &tau, 0, 0, 1, "T", "link threshold (default: the model's, else 0.8)"},
        {"max-levels", CLI_INT, &p.max_levels, 0, 1, 64, "N", "level limit (default 10)"},
        {"no-early-stop", CLI_FLAG, &no_early, 0, 0, 0, NULL, "disable the early-stop test"},
        {"min-cluster-size", CLI_INT, &p.min_cluster_size, 0, 1, 1e9, "M",
         "smaller clusters get label -1 (default 1)"},
        {"threads", CLI_INT, &threads, 0, 1, 64, "N", "engine threads (default: all cores)"},
        {"knn", CLI_STR, &knn, 0, 0, 0, "auto|exact|ivf",
         "kNN method per level (default auto: exact up to --knn-exact-max nodes, else ivf)"},
        {"knn-exact-max", CLI_INT, &exact_max, 0, 0, 2e9, "N",
         "auto: exact kNN up to N nodes (default 0: the built-in threshold)"},
        {"nlist", CLI_INT, &p.knn_nlist, 0, 0, 1e8, "L", "IVF cells (default 0: about n / 64)"},
        {"nprobe", CLI_INT, &p.knn_nprobe, 0, 0, 1e6, "P", "IVF lists per cell (default 0: 128)"},
        {"labels", CLI_STR, &truth, 0, 0, 0, "T.npy", "true labels: print Fp/Fb/NMI"},
        {"stats", CLI_FLAG, &stats, 0, 0, 0, NULL, "print per-level times and peak RSS"},
        {"quiet", CLI_FLAG, &quiet, 0, 0, 0, NULL, "no progress on stderr"},
    };
    int r = cli_opts_parse("cluster", "Cluster embeddings hierarchically (Hi-LANDER).", opts,
                           ARRAY_LEN(opts), argc, argv);
    if (r != CLI_PARSE_OK)
        return r == CLI_PARSE_HELP ? 0 : 2;
    if (hl_knn_method_parse(knn, &p.knn) != HL_OK) {
        fprintf(stderr, "hilander cluster: --knn must be auto, exact or ivf, got '%s'\n", knn);
        return 2;
    }
    p.knn_exact_max = (size_t)exact_max;
    hl_error err;
    hl_error_clear(&err);
    hl_fmatrix x;
    hl_status st = hl_npy_load_f32(in, &x, &err);
    if (st != HL_OK)
        return cli_fail("cluster", &err, st);
    int32_t *tl = NULL;
    size_t tn = 0;
    hl_model *model = NULL;
    hl_clustering *c = NULL;
    hl_assign_state *state = NULL;
    uint32_t crc = 0;
    int rc = 0;
    if (truth != NULL) {
        st = hl_npy_load_i32(truth, &tl, &tn, &err);
        if (st != HL_OK || tn != x.rows) {
            rc = st != HL_OK ? cli_fail("cluster", &err, st) : 2;
            if (st == HL_OK)
                fprintf(stderr, "hilander cluster: %s has %zu labels for %zu points\n", truth, tn,
                        x.rows);
            goto out;
        }
    }
    rc = cli_load_model_crc("cluster", model_path, &model, &crc);
    if (rc != 0)
        goto out;
    p.tau = tau >= 0.0f ? tau : (model != NULL ? model->cfg.tau : 0.8f);
    p.early_stop = !no_early;
    p.n_threads = threads;
    cli_progress prog;
    cli_progress_init(&prog, quiet, &p.progress);
    double t0 = cli_now();
    if (save_state != NULL)
        st = hl_cluster_run_state(x.data, x.rows, x.cols, model, crc, &p, &c, &state, &err);
    else
        /* x is not needed afterwards: the engine may use its rows (x.owned holds them, as a
         * conversion or as the file image with x.data inside it) instead of a copy. */
        st = hl_cluster_run_inplace(x.owned + (x.data - x.owned), x.rows, x.cols, model, &p, &c,
                                    &err);
    if (st != HL_OK) {
        rc = cli_fail("cluster", &err, st);
        goto out;
    }
    double secs = cli_now() - t0;
    size_t shape[2] = {x.rows, 0};
    st = hl_npy_save_i32(out, c->labels, 1, shape, &err);
    if (st == HL_OK && levels_out != NULL) {
        size_t ls[2] = {(size_t)c->n_levels, x.rows};
        st = hl_npy_save_i32(levels_out, c->level_labels, 2, ls, &err);
    }
    if (st == HL_OK && state != NULL)
        st = hl_statefile_save(state, save_state, &err);
    if (st != HL_OK) {
        rc = cli_fail("cluster", &err, st);
        goto out;
    }
    if (!quiet)
        fprintf(stderr, "clustered %zu points into %zu clusters over %d levels in %.2f s\n", x.rows,
                c->n_clusters, c->n_levels, secs);
    if (stats)
        print_stats(c, secs);
    if (tl != NULL)
        rc = print_metrics("cluster", tl, c->labels, x.rows, 0);
out:
    hl_assign_state_free(state);
    hl_clustering_free(c);
    hl_model_free(model);
    free(tl);
    hl_fmatrix_free(&x);
    return rc;
}

static int cmd_eval(int argc, char **argv)
{
    const char *pred = NULL, *truth = NULL;
    int json = 0;
    cli_opt opts[] = {
        {"pred", CLI_STR, &pred, 1, 0, 0, "P.npy", "predicted labels, int32/int64 (N,)"},
        {"true", CLI_STR, &truth, 1, 0, 0, "T.npy", "true labels, int32/int64 (N,)"},
        {"json", CLI_FLAG, &json, 0, 0, 0, NULL, "print one JSON object"},
    };
    int r = cli_opts_parse("eval", "Pairwise F, BCubed F and NMI of a labelling.", opts,
                           ARRAY_LEN(opts), argc, argv);
    if (r != CLI_PARSE_OK)
        return r == CLI_PARSE_HELP ? 0 : 2;
    hl_error err;
    hl_error_clear(&err);
    int32_t *p = NULL, *t = NULL;
    size_t np = 0, nt = 0;
    hl_status st = hl_npy_load_i32(pred, &p, &np, &err);
    if (st == HL_OK)
        st = hl_npy_load_i32(truth, &t, &nt, &err);
    int rc;
    if (st != HL_OK) {
        rc = cli_fail("eval", &err, st);
    } else if (np != nt || np == 0) {
        fprintf(stderr, "hilander eval: %s has %zu labels but %s has %zu\n", pred, np, truth, nt);
        rc = 2;
    } else {
        rc = print_metrics("eval", t, p, np, json);
    }
    free(p);
    free(t);
    return rc;
}

static int cmd_knn(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *sims_out = NULL, *method = "exact";
    int k = 10, threads = cli_default_threads(), quiet = 0, exact_max = 0, nlist = 0, nprobe = 0;
    cli_opt opts[] = {
        {"in", CLI_STR, &in, 1, 0, 0, "X.npy", "features, float32/float16 (N, D)"},
        {"k", CLI_INT, &k, 0, 1, 1024, "K", "neighbours including the point (default 10)"},
        {"knn", CLI_STR, &method, 0, 0, 0, "exact|ivf|auto",
         "method (default exact; auto: exact up to --knn-exact-max points, else ivf)"},
        {"knn-exact-max", CLI_INT, &exact_max, 0, 0, 2e9, "N",
         "auto: exact up to N points (default 0: the built-in threshold)"},
        {"nlist", CLI_INT, &nlist, 0, 0, 1e8, "L", "IVF cells (default 0: about n / 64)"},
        {"nprobe", CLI_INT, &nprobe, 0, 0, 1e6, "P", "IVF lists per cell (default 0: 128)"},
        {"out", CLI_STR, &out, 1, 0, 0, "I.npy", "neighbour ids, int32 (N, K); -1 = none"},
        {"sims-out", CLI_STR, &sims_out, 0, 0, 0, "S.npy", "cosine similarities, float32 (N, K)"},
        {"threads", CLI_INT, &threads, 0, 1, 64, "N", "threads (default: all cores)"},
        {"quiet", CLI_FLAG, &quiet, 0, 0, 0, NULL, "no progress on stderr"},
    };
    int r =
        cli_opts_parse("knn", "Cosine k nearest neighbours of every point (k counts the point).",
                       opts, ARRAY_LEN(opts), argc, argv);
    if (r != CLI_PARSE_OK)
        return r == CLI_PARSE_HELP ? 0 : 2;
    hl_knn_method m;
    if (hl_knn_method_parse(method, &m) != HL_OK) {
        fprintf(stderr, "hilander knn: --knn must be exact, ivf or auto, got '%s'\n", method);
        return 2;
    }
    hl_error err;
    hl_error_clear(&err);
    hl_fmatrix x;
    hl_status st = hl_npy_load_f32(in, &x, &err);
    if (st != HL_OK)
        return cli_fail("knn", &err, st);
    int rc = 1;
    size_t n = x.rows, d = x.cols;
    float *xn = malloc(n * d * sizeof(float));
    int32_t *idx = malloc(n * (size_t)k * sizeof(int32_t));
    float *sim = malloc(n * (size_t)k * sizeof(float));
    hl_arena a = {0};
    hl_knn_params kp;
    hl_knn_params_default(&kp);
    kp.k = k;
    kp.n_threads = threads;
    kp.method = m;
    kp.exact_max = (size_t)exact_max;
    kp.nlist = nlist;
    kp.nprobe = nprobe;
    cli_progress prog;
    cli_progress_init(&prog, quiet, &kp.progress);
    if (xn == NULL || idx == NULL || sim == NULL ||
        hl_arena_init(&a, hl_knn_self_plan(n, d, &kp)) != HL_OK) {
        fprintf(stderr, "hilander knn: out of memory for %zu points\n", n);
        goto out;
    }
    hl_l2norm_rows(x.data, xn, n, d);
    st = hl_knn_self(xn, n, d, &kp, &a, idx, sim);
    if (st != HL_OK) {
        rc = cli_fail("knn", NULL, st);
        goto out;
    }
    size_t shape[2] = {n, (size_t)k};
    st = hl_npy_save_i32(out, idx, 2, shape, &err);
    if (st == HL_OK && sims_out != NULL)
        st = hl_npy_save_f32(sims_out, sim, 2, shape, &err);
    rc = st == HL_OK ? 0 : cli_fail("knn", &err, st);
out:
    hl_arena_deinit(&a);
    free(xn);
    free(idx);
    free(sim);
    hl_fmatrix_free(&x);
    return rc;
}

static int cmd_model_info(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        printf("usage: hilander model-info FILE\nPrint a model file's configuration and "
               "tensors after verifying its checksums.\n");
        return argc == 1 ? 0 : 2;
    }
    hl_error err;
    hl_error_clear(&err);
    hl_model *m = NULL;
    uint32_t crc = 0;
    hl_status st = hl_modelfile_load(argv[0], &m, &crc, &err);
    if (st != HL_OK)
        return cli_fail("model-info", &err, st);
    const hl_model_config *c = &m->cfg;
    printf("name            %s\nkind            %s\n", m->name, hl_model_kind_name(c->kind));
    if (c->kind == HL_MODEL_LANDER)
        printf("dim             %d\n", (int)c->dim);
    else
        printf("dim             any\n");
    printf("in_features     %d\nedge_features   %d\nhidden          %d\nn_conv          %d\n"
           "cluster_feat    %d\nk               %d\ntau             %.3f\nparameters      %zu\n"
           "checksum        crc32c:%08x\ntrained_on      %s\n",
           (int)c->in_features, (int)c->edge_features, (int)c->hidden, (int)c->n_conv,
           (int)c->use_cluster_feat, (int)c->k, (double)c->tau, m->n_params, crc, m->trained_on);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const hl_tensor_view *t = &m->tensors[i];
        if (t->ndim == 2)
            printf("  %-22s %zu x %zu\n", t->name, t->dims[0], t->dims[1]);
        else
            printf("  %-22s %zu\n", t->name, t->dims[0]);
    }
    hl_model_free(m);
    return 0;
}

typedef struct cli_cmd {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cli_cmd;

static const cli_cmd commands[] = {
    {"cluster", cmd_cluster, "cluster embeddings (.npy) into a hierarchy of labels"},
    {"assign", cli_cmd_assign, "add new points to a saved clustering (stable cluster ids)"},
    {"eval", cmd_eval, "score predicted labels against true labels (Fp, Fb, NMI)"},
    {"knn", cmd_knn, "exact cosine k nearest neighbours"},
    {"train", cli_cmd_train, "meta-train a model on labelled embeddings"},
    {"model-info", cmd_model_info, "verify and describe a model file"},
    {"state-info", cli_cmd_state_info, "verify and describe a clustering state file"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: hilander <command> [options]    (hilander <command> --help)\n\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-12s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    /* Parallelism comes from engine threads; BLAS runs single-threaded inside them. */
    openblas_set_num_threads(1);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("hilander %s\n", HILANDER_VERSION);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 2, argv + 2);
    }
    fprintf(stderr, "hilander: unknown command '%s' (see hilander --help)\n", argv[1]);
    return 2;
}
