/*
 * bench_assign.c - incremental assignment on a labelled split (bench/assign.sh runs it).
 *
 *   bench_assign --data X.npy --labels Y.npy [--model M.hlm|none] [--seed S] [--batch B]
 *                [--threads T] [--attach any|denser] [--extra E] [--sigma F]
 *                [--extra-out Y.npy] [--dump DIR] [--tau-a T]
 *
 * 1. Splits the points into halves A and B by a seeded shuffle.
 * 2. Clusters A (keeping the state), then assigns B in batches of B points, applying each.
 * 3. Checks that no point of A changed its final or per-level label, and scores A u B
 *    (Fp, Fb, NMI) against clustering A u B at once (same point order).
 * 4. Clusters all points (keeping the state) and times assigning E extra points, copies of
 *    random points with Gaussian noise of standard deviation F per coordinate.
 * Times are wall and process CPU seconds of hl_assign_run() (and apply) only.
 * --extra-out writes the perturbed points (for timing the CLI); --dump writes the label
 * arrays of step 3 as .npy files into DIR (truth, a_alone, incremental, at_once, levels).
 * --tau-a clusters A (and so assigns B, which uses the stored clustering's tau) with link
 * threshold T instead of the model's; the at-once clustering and part 4 keep the model's.
 */
#include "hl/assign.h"
#include "hl/metrics.h"
#include "hl/modelfile.h"
#include "hl/npy.h"
#include "hl/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const hl_error *e)
{
    fprintf(stderr, "bench_assign: %s: %s\n", what, e->msg);
    exit(1);
}

typedef struct opts {
    const char *data, *labels, *model, *dump, *extra_out;
    uint64_t seed;
    size_t batch, extra;
    int threads;
    hl_attach_rule attach;
    float sigma;
    float tau_a; /* < 0: the model's */
} opts;

static void parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof(*o));
    o->model = "none";
    o->seed = 1;
    o->batch = 1000;
    o->extra = 1000;
    o->threads = 1;
    o->sigma = 0.02f;
    o->tau_a = -1.0f;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--data") == 0)
            o->data = v;
        else if (strcmp(k, "--labels") == 0)
            o->labels = v;
        else if (strcmp(k, "--model") == 0)
            o->model = v;
        else if (strcmp(k, "--seed") == 0)
            o->seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "--batch") == 0)
            o->batch = strtoull(v, NULL, 10);
        else if (strcmp(k, "--extra") == 0)
            o->extra = strtoull(v, NULL, 10);
        else if (strcmp(k, "--threads") == 0)
            o->threads = atoi(v);
        else if (strcmp(k, "--extra-out") == 0)
            o->extra_out = v;
        else if (strcmp(k, "--dump") == 0)
            o->dump = v;
        else if (strcmp(k, "--sigma") == 0)
            o->sigma = strtof(v, NULL);
        else if (strcmp(k, "--tau-a") == 0)
            o->tau_a = strtof(v, NULL);
        else if (strcmp(k, "--attach") == 0)
            o->attach = strcmp(v, "denser") == 0 ? HL_ATTACH_DENSER : HL_ATTACH_ANY;
        else {
            fprintf(stderr, "bench_assign: unknown option %s\n", k);
            exit(2);
        }
    }
    if (o->data == NULL || o->labels == NULL || o->batch == 0 || o->threads < 1) {
        fprintf(stderr, "usage: bench_assign --data X.npy --labels Y.npy [--model M.hlm|none] "
                        "[--seed S] [--batch B] [--threads T] [--attach any|denser] [--extra E] "
                        "[--sigma F] [--extra-out Y.npy] [--dump DIR] [--tau-a T]\n");
        exit(2);
    }
}

static void metrics(const char *what, const int32_t *truth, const int32_t *pred, size_t n,
                    hl_metrics *m)
{
    if (hl_metrics_compute(truth, pred, n, m) != HL_OK) {
        fprintf(stderr, "bench_assign: metrics failed\n");
        exit(1);
    }
    printf("%-34s Fp %.4f (P %.4f R %.4f)  Fb %.4f  NMI %.4f  clusters %zu\n", what, m->fp,
           m->fp_precision, m->fp_recall, m->fb, m->nmi, m->n_pred);
}

/* Assigns `y` (n rows) in batches, applying each; returns labels in *lab (malloc'd). */
static void assign_batches(hl_assign_state *s, const hl_model *m, uint32_t crc, const float *y,
                           size_t n, size_t d, const opts *o, int32_t *lab, double *t_wall,
                           double *t_cpu, size_t *attached, size_t *fresh)
{
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.model_checksum = crc;
    ap.n_threads = o->threads;
    ap.attach = o->attach;
    *t_wall = *t_cpu = 0.0;
    *attached = *fresh = 0;
    for (size_t b0 = 0; b0 < n; b0 += o->batch) {
        size_t bn = n - b0 < o->batch ? n - b0 : o->batch;
        hl_error e;
        hl_error_clear(&e);
        hl_assignment *a;
        double w0 = wall(), c0 = cpu();
        if (hl_assign_run(s, m, y + b0 * d, bn, d, &ap, &a, &e) != HL_OK)
            die("assign", &e);
        if (hl_assign_apply(s, a, &e) != HL_OK)
            die("apply", &e);
        *t_wall += wall() - w0;
        *t_cpu += cpu() - c0;
        memcpy(lab + b0, a->labels, bn * sizeof(int32_t));
        *attached += a->n_attached;
        *fresh += a->n_new_clusters;
        hl_assignment_free(a);
    }
}

static hl_assign_state *cluster_state(const float *x, size_t n, size_t d, const hl_model *m,
                                      uint32_t crc, const opts *o, float tau, hl_clustering **c,
                                      double *sec)
{
    hl_cluster_params cp;
    hl_cluster_params_default(&cp);
    cp.n_threads = o->threads;
    if (m != NULL)
        cp.tau = m->cfg.tau;
    if (tau >= 0.0f)
        cp.tau = tau;
    hl_assign_state *s;
    hl_error e;
    hl_error_clear(&e);
    double t0 = wall();
    if (hl_cluster_run_state(x, n, d, m, crc, &cp, c, &s, &e) != HL_OK)
        die("cluster", &e);
    *sec = wall() - t0;
    return s;
}

/* Part 4: a clustering of every point, then `extra` perturbed copies in one batch. */
static void time_full(const float *x, size_t n, size_t d, const hl_model *m, uint32_t crc,
                      const opts *o)
{
    hl_clustering *c;
    double sec;
    hl_assign_state *s = cluster_state(x, n, d, m, crc, o, -1.0f, &c, &sec);
    hl_rng r;
    hl_rng_seed(&r, o->seed + 7);
    float *y = malloc(o->extra * d * sizeof(float));
    for (size_t i = 0; i < o->extra; i++) {
        size_t src = (size_t)hl_rng_below(&r, n);
        for (size_t k = 0; k < d; k++)
            y[i * d + k] = x[src * d + k] + o->sigma * (float)hl_rng_normal(&r);
    }
    if (o->extra_out != NULL) {
        size_t shape[2] = {o->extra, d};
        hl_error e;
        hl_error_clear(&e);
        if (hl_npy_save_f32(o->extra_out, y, 2, shape, &e) != HL_OK)
            die("extra-out", &e);
    }
    int32_t *lab = malloc(o->extra * sizeof(int32_t));
    double tw, tc;
    size_t att, fresh;
    opts one = *o;
    one.batch = o->extra;
    assign_batches(s, m, crc, y, o->extra, d, &one, lab, &tw, &tc, &att, &fresh);
    printf("full clustering of %zu points: %.2f s; one batch of %zu perturbed points (sigma "
           "%.3f): %.3f s wall, %.3f s CPU, %.0f points/s (wall); attached %zu, new clusters "
           "%zu\n",
           n, sec, o->extra, (double)o->sigma, tw, tc, (double)o->extra / tw, att, fresh);
    free(lab);
    free(y);
    hl_assign_state_free(s);
    hl_clustering_free(c);
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    opts o;
    parse(argc, argv, &o);
    hl_error e;
    hl_error_clear(&e);
    hl_fmatrix X;
    int32_t *truth;
    size_t nt;
    if (hl_npy_load_f32(o.data, &X, &e) != HL_OK || hl_npy_load_i32(o.labels, &truth, &nt, &e))
        die("load", &e);
    hl_model *m = NULL;
    uint32_t crc = 0;
    if (strcmp(o.model, "none") != 0 && hl_modelfile_load(o.model, &m, &crc, &e) != HL_OK)
        die("model", &e);
    size_t n = X.rows, d = X.cols, na = n / 2, nb = n - na;
    printf("data %s: %zu points, dim %zu; model %s (%s, crc32c:%08x); threads %d; attach %s\n",
           o.data, n, d, o.model, m != NULL ? hl_model_kind_name(m->cfg.kind) : "model-free",
           (unsigned)crc, o.threads, o.attach == HL_ATTACH_ANY ? "any" : "denser");

    /* Split by a seeded permutation: A = first half, B = second half. */
    int32_t *perm = malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    hl_rng r;
    hl_rng_seed(&r, o.seed);
    hl_rng_shuffle_i32(&r, perm, n);
    float *xs = malloc(n * d * sizeof(float));
    int32_t *ts = malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        memcpy(xs + i * d, X.data + (size_t)perm[i] * d, d * sizeof(float));
        ts[i] = truth[perm[i]];
    }

    hl_clustering *ca;
    double sec_a;
    hl_assign_state *s = cluster_state(xs, na, d, m, crc, &o, o.tau_a, &ca, &sec_a);
    printf("clustered A (%zu points, tau %.2f) in %.2f s: %zu clusters over %d levels\n", na,
           (double)s->tau, sec_a, ca->n_clusters, ca->n_levels);
    int32_t *lab = malloc(n * sizeof(int32_t));
    memcpy(lab, ca->labels, na * sizeof(int32_t));
    double tw, tc;
    size_t att, fresh;
    assign_batches(s, m, crc, xs + na * d, nb, d, &o, lab + na, &tw, &tc, &att, &fresh);
    size_t changed = 0;
    for (size_t i = 0; i < na; i++) {
        int same = s->labels[i] == ca->labels[i];
        for (int l = 0; l < s->n_levels; l++)
            same = same && s->levels[l].labels[i] == ca->level_labels[(size_t)l * na + i];
        changed += !same;
    }
    printf("assigned B (%zu points) in batches of %zu: %.3f s wall, %.3f s CPU, %.0f points/s "
           "(wall), %.0f points/s (CPU); attached %zu, new clusters %zu\n",
           nb, o.batch, tw, tc, (double)nb / tw, (double)nb / tc, att, fresh);
    printf("points of A whose final or level label changed: %zu\n", changed);
    printf("state after the assigns: %zu points, level nodes", s->n);
    for (int l = 0; l < s->n_levels; l++)
        printf(" %zu", s->levels[l].n);
    printf("\n");
    hl_metrics mi, ma, mb;
    metrics("A alone (clustered)", ts, ca->labels, na, &ma);
    metrics("A u B, incremental", ts, s->labels, n, &mi);
    hl_clustering *call;
    double sec_all;
    hl_assign_state *sall = cluster_state(xs, n, d, m, crc, &o, -1.0f, &call, &sec_all);
    metrics("A u B, clustered at once", ts, call->labels, n, &mb);
    if (o.dump != NULL) {
        char path[4096];
        size_t sh[1] = {n}, sa[1] = {na}, sl[2] = {(size_t)ca->n_levels, na};
        size_t so[2] = {(size_t)call->n_levels, n};
        const struct {
            const char *name;
            const int32_t *v;
            size_t *shape;
        } out[] = {{"truth", ts, sh},
                   {"a_alone", ca->labels, sa},
                   {"incremental", s->labels, sh},
                   {"at_once", call->labels, sh},
                   {"a_levels", ca->level_labels, sl},
                   {"at_once_levels", call->level_labels, so}};
        for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s.npy", o.dump, out[i].name);
            if (hl_npy_save_i32(path, out[i].v, out[i].shape == sl || out[i].shape == so ? 2 : 1,
                                out[i].shape, &e) != HL_OK)
                die("dump", &e);
        }
    }
    printf("Fp incremental - at once: %+.4f (target >= -0.03); Fb: %+.4f\n", mi.fp - mb.fp,
           mi.fb - mb.fb);
    hl_assign_state_free(sall);
    hl_clustering_free(call);
    if (o.extra > 0)
        time_full(X.data, n, d, m, crc, &o);

    hl_assign_state_free(s);
    hl_clustering_free(ca);
    free(lab);
    free(xs);
    free(ts);
    free(perm);
    free(truth);
    hl_model_free(m);
    hl_fmatrix_free(&X);
    return changed == 0 ? 0 : 3;
}
