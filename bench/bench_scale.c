/*
 * bench_scale.c - times the approximate (IVF) and exact self kNN on a .npy matrix and measures
 * the recall of the approximate one against the exact search on a sample of queries.
 *
 *   bench_scale --in X.npy [--k 10] [--threads T] [--method ivf|exact|auto|none]
 *               [--nlist L] [--nprobe P] [--queries Q] [--no-exact] [--sample-out S.npy]
 *
 * Steps, each timed (wall and process CPU) with the load average next to it:
 *   1. load the .npy and L2-normalise the rows in place (the only copy of the features);
 *   2. the self search with --method (default ivf) over all rows; "none" skips it;
 *   3. unless --no-exact: the exact search of Q sample queries (rows floor(j * n / Q), the
 *      generator shuffles its rows, so this is a random sample) against all n rows, through
 *      the query-vs-database path; then recall@k of step 2 on those rows, and the estimate of
 *      the full exact self search, n / Q times the sample time (the symmetric self path is
 *      cheaper per pair; bench/scale.sh measures that factor at 100k).
 * One key=value line per step on stdout; --sample-out writes the sample's exact neighbour ids
 * (Q x k int32) so that the FAISS side can score itself on the same queries.
 */
#include "hl/arena.h"
#include "hl/knn.h"
#include "hl/mat.h"
#include "hl/npy.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_sec(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Peak resident set (VmHWM): ru_maxrss would carry a large parent's size across execve. */
static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    return kb;
}

static double load1(void)
{
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1.0;
        fclose(f);
    }
    return l;
}

typedef struct opts {
    const char *in, *sample_out, *method, *idx_out;
    long k, threads, nlist, nprobe, queries, no_exact;
} opts;

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof(*o));
    o->k = 10;
    o->threads = sysconf(_SC_NPROCESSORS_ONLN);
    o->queries = 10000;
    o->method = "ivf";
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--no-exact") == 0) {
            o->no_exact = 1;
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        long *dst = NULL;
        if (strcmp(f, "--in") == 0)
            o->in = v;
        else if (strcmp(f, "--sample-out") == 0)
            o->sample_out = v;
        else if (strcmp(f, "--idx-out") == 0)
            o->idx_out = v;
        else if (strcmp(f, "--method") == 0)
            o->method = v;
        else if (strcmp(f, "--k") == 0)
            dst = &o->k;
        else if (strcmp(f, "--threads") == 0)
            dst = &o->threads;
        else if (strcmp(f, "--nlist") == 0)
            dst = &o->nlist;
        else if (strcmp(f, "--nprobe") == 0)
            dst = &o->nprobe;
        else if (strcmp(f, "--queries") == 0)
            dst = &o->queries;
        else
            return -1;
        if (dst != NULL) {
            char *end;
            errno = 0;
            *dst = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || *dst < 0)
                return -1;
        }
    }
    if (o->in == NULL || o->k < 1 || o->k > 1024 || o->threads < 1 || o->threads > 64)
        return -1;
    return 0;
}

static int run_self(const opts *o, const float *x, size_t n, size_t d, const hl_knn_params *p,
                    int32_t *idx, float *sim)
{
    hl_arena a;
    if (hl_arena_init(&a, hl_knn_self_plan(n, d, p)) != HL_OK)
        return 1;
    int L = 0, P = 0;
    hl_knn_method m = hl_knn_choose(p, n);
    if (m == HL_KNN_IVF)
        hl_knn_ivf_shape(p, n, &L, &P);
    double l0 = load1(), c0 = cpu_sec(), t0 = now_sec();
    hl_status st = hl_knn_self(x, n, d, p, &a, idx, sim);
    double t1 = now_sec(), c1 = cpu_sec();
    if (st != HL_OK) {
        fprintf(stderr, "bench_scale: %s\n", hl_status_str(st));
        return 1;
    }
    printf("step=self method=%s n=%zu d=%zu k=%ld threads=%ld nlist=%d nprobe=%d seconds=%.3f "
           "cpu_seconds=%.3f load1=%.2f scratch_mib=%.1f arena_peak_mib=%.1f maxrss_kb=%ld\n",
           hl_knn_method_name(m), n, d, o->k, o->threads, L, P, t1 - t0, c1 - c0, l0,
           (double)a.cap / 1048576.0, (double)a.peak / 1048576.0, peak_rss_kb());
    hl_arena_deinit(&a);
    if (o->idx_out != NULL) {
        hl_error err;
        hl_error_clear(&err);
        size_t shape[2] = {n, (size_t)o->k};
        if (hl_npy_save_i32(o->idx_out, idx, 2, shape, &err) != HL_OK) {
            fprintf(stderr, "bench_scale: %s\n", err.msg);
            return 1;
        }
    }
    return 0;
}

static int run_sample(const opts *o, const float *x, size_t n, size_t d, const hl_knn_params *p,
                      const int32_t *idx, int have_self)
{
    size_t nq = (size_t)o->queries < n ? (size_t)o->queries : n, k = (size_t)o->k;
    float *q = malloc(nq * d * sizeof(float));
    int32_t *ei = malloc(nq * k * sizeof(int32_t)), *ai = malloc(nq * k * sizeof(int32_t));
    float *es = malloc(nq * k * sizeof(float));
    hl_arena a;
    if (q == NULL || ei == NULL || ai == NULL || es == NULL ||
        hl_arena_init(&a, hl_knn_exact_plan(nq, n, d, p)) != HL_OK)
        return 1;
    for (size_t j = 0; j < nq; j++) {
        size_t r = j * n / nq;
        memcpy(q + j * d, x + r * d, d * sizeof(float));
        if (have_self)
            memcpy(ai + j * k, idx + r * k, k * sizeof(int32_t));
    }
    double l0 = load1(), c0 = cpu_sec(), t0 = now_sec();
    hl_status st = hl_knn_exact(q, nq, x, n, d, p, &a, ei, es);
    double t1 = now_sec(), c1 = cpu_sec();
    if (st != HL_OK)
        return 1;
    double scale = (double)n / (double)nq;
    printf("step=exact_sample n=%zu queries=%zu seconds=%.3f cpu_seconds=%.3f load1=%.2f "
           "full_estimate_seconds=%.1f full_estimate_cpu_seconds=%.1f",
           n, nq, t1 - t0, c1 - c0, l0, (t1 - t0) * scale, (c1 - c0) * scale);
    if (have_self)
        printf(" recall=%.4f", hl_knn_recall(ai, ei, nq, (int)k));
    printf("\n");
    int rc = 0;
    if (o->sample_out != NULL) {
        hl_error err;
        hl_error_clear(&err);
        size_t shape[2] = {nq, k};
        if (hl_npy_save_i32(o->sample_out, ei, 2, shape, &err) != HL_OK) {
            fprintf(stderr, "bench_scale: %s\n", err.msg);
            rc = 1;
        }
    }
    hl_arena_deinit(&a);
    free(q);
    free(ei);
    free(ai);
    free(es);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: bench_scale --in X.npy [--k 10] [--threads T] "
                        "[--method ivf|exact|auto|none] [--nlist L] [--nprobe P] [--queries Q] "
                        "[--no-exact] [--sample-out S.npy] [--idx-out I.npy]\n");
        return 2;
    }
    openblas_set_num_threads(1);
    hl_knn_params p;
    hl_knn_params_default(&p);
    p.k = (int)o.k;
    p.n_threads = (int)o.threads;
    p.nlist = (int)o.nlist;
    p.nprobe = (int)o.nprobe;
    int self = strcmp(o.method, "none") != 0;
    if (self && hl_knn_method_parse(o.method, &p.method) != HL_OK) {
        fprintf(stderr, "bench_scale: unknown method '%s'\n", o.method);
        return 2;
    }
    hl_error err;
    hl_error_clear(&err);
    hl_fmatrix m;
    double t0 = now_sec();
    if (hl_npy_load_f32(o.in, &m, &err) != HL_OK) {
        fprintf(stderr, "bench_scale: %s\n", err.msg);
        return 2;
    }
    size_t n = m.rows, d = m.cols;
    float *x = m.owned + (m.data - m.owned); /* the loader's own, writable copy */
    hl_l2norm_rows(x, x, n, d);
    printf("step=load n=%zu d=%zu seconds=%.3f maxrss_kb=%ld openblas=\"%s\"\n", n, d,
           now_sec() - t0, peak_rss_kb(), openblas_get_corename());
    int32_t *idx = malloc(n * (size_t)o.k * sizeof(int32_t));
    float *sim = malloc(n * (size_t)o.k * sizeof(float));
    int rc = idx == NULL || sim == NULL;
    if (rc == 0 && self)
        rc = run_self(&o, x, n, d, &p, idx, sim);
    free(sim);
    if (rc == 0 && !o.no_exact)
        rc = run_sample(&o, x, n, d, &p, idx, self);
    free(idx);
    hl_fmatrix_free(&m);
    return rc;
}
