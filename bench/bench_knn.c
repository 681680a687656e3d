/*
 * bench_knn.c - times hl_knn_exact() self-search on a raw float32 matrix.
 *
 * Usage: bench_knn --data FILE --n N --d D [--k 10] [--threads T] [--out FILE] [--copy 1]
 *
 * FILE holds N x D little-endian float32 values, row-major, rows already L2-normalised (see
 * bench/knn.py). BLAS runs single-threaded inside our tasks (openblas_set_num_threads(1)) and
 * the engine uses T threads, by default one per online CPU. Only the hl_knn_exact() call is
 * timed. --copy 1 passes a copy of the matrix as the queries, which takes the general
 * query-vs-database path instead of the symmetric self search. The neighbour indices (N x k int32)
 * are written to --out for checking. One line of key=value results goes to stdout, including this
 * process's peak RSS (VmHWM).
 */
#include "hl/arena.h"
#include "hl/knn.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Peak resident set of this process (VmHWM). Not getrusage(): Linux carries ru_maxrss across
 * execve, so a child started by a large parent would report the parent's size.
 */
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

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = (size_t)v;
    return 0;
}

typedef struct opts {
    const char *data, *out;
    size_t n, d, k, threads, copy;
} opts;

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof(*o));
    o->k = 10;
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = nproc > 0 ? (size_t)nproc : 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        int bad = 0;
        if (strcmp(f, "--data") == 0)
            o->data = v;
        else if (strcmp(f, "--out") == 0)
            o->out = v;
        else if (strcmp(f, "--n") == 0)
            bad = parse_size(v, &o->n);
        else if (strcmp(f, "--d") == 0)
            bad = parse_size(v, &o->d);
        else if (strcmp(f, "--k") == 0)
            bad = parse_size(v, &o->k);
        else if (strcmp(f, "--threads") == 0)
            bad = parse_size(v, &o->threads);
        else if (strcmp(f, "--copy") == 0)
            bad = parse_size(v, &o->copy);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "bench_knn: bad option %s %s\n", f, v);
            return -1;
        }
    }
    if (argc % 2 == 0 || o->data == NULL || o->n == 0 || o->d == 0 || o->k == 0 || o->k > 1024 ||
        o->threads == 0 || o->threads > 64) {
        fprintf(stderr, "usage: bench_knn --data FILE --n N --d D [--k 10] [--threads T] "
                        "[--out FILE] [--copy 1]\n");
        return -1;
    }
    return 0;
}

static float *read_matrix(const char *path, size_t n, size_t d)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    float *x = malloc(n * d * sizeof(float));
    size_t got = x != NULL ? fread(x, sizeof(float), n * d, f) : 0;
    int extra = fgetc(f);
    fclose(f);
    if (got != n * d || extra != EOF) {
        fprintf(stderr, "bench_knn: %s is not %zu x %zu float32\n", path, n, d);
        free(x);
        return NULL;
    }
    return x;
}

static int write_idx(const char *path, const int32_t *idx, size_t count)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t put = fwrite(idx, sizeof(int32_t), count, f);
    if (fclose(f) != 0 || put != count) {
        fprintf(stderr, "bench_knn: short write to %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    openblas_set_num_threads(1);
    float *x = read_matrix(o.data, o.n, o.d);
    int32_t *idx = malloc(o.n * o.k * sizeof(int32_t));
    float *sim = malloc(o.n * o.k * sizeof(float));
    if (x == NULL || idx == NULL || sim == NULL)
        return 1;
    hl_knn_params p;
    hl_knn_params_default(&p);
    p.k = (int)o.k;
    p.n_threads = (int)o.threads;
    hl_arena a;
    if (hl_arena_init(&a, hl_knn_exact_plan(o.n, o.n, o.d, &p)) != HL_OK)
        return 1;

    float *q = x;
    if (o.copy) {
        q = malloc(o.n * o.d * sizeof(float));
        if (q == NULL)
            return 1;
        memcpy(q, x, o.n * o.d * sizeof(float));
    }
    double t0 = now_sec();
    hl_status st = hl_knn_exact(q, o.n, x, o.n, o.d, &p, &a, idx, sim);
    double t1 = now_sec();
    if (st != HL_OK) {
        fprintf(stderr, "bench_knn: hl_knn_exact: %s\n", hl_status_str(st));
        return 1;
    }
    if (o.out != NULL && write_idx(o.out, idx, o.n * o.k) != 0)
        return 1;
    long hwm_kb = peak_rss_kb();
    printf("impl=hilander%s n=%zu d=%zu k=%zu threads=%zu seconds=%.3f maxrss_kb=%ld "
           "scratch_bytes=%zu openblas=\"%s\"\n",
           o.copy ? "-general" : "", o.n, o.d, o.k, o.threads, t1 - t0, hwm_kb, a.cap,
           openblas_get_corename());
    if (q != x)
        free(q);
    hl_arena_deinit(&a);
    free(x);
    free(idx);
    free(sim);
    return 0;
}
