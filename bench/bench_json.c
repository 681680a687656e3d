/*
 * bench_json.c - throughput and peak memory of hl_json_request_decode().
 *
 * Usage: bench_json BODY.json [REPS]
 * Reads the body, notes the peak RSS (getrusage ru_maxrss), decodes once and notes the peak
 * again: the difference is what decoding needed besides the body, reported against the
 * float payload N*D*4. Then decodes REPS more times (default 5) and prints the best and the
 * median throughput in MB/s of body, by wall time and by CPU time of the process (user +
 * system, getrusage), which a busy machine disturbs less. When BODY.json.f32 exists
 * (bench/gen_json_body.py writes it), every decoded value is checked bit for bit against it.
 */
#include "hl/json_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static long peak_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int check_reference(const char *body_path, const hl_fmatrix *x)
{
    char ref_path[4096];
    snprintf(ref_path, sizeof(ref_path), "%s.f32", body_path);
    void *ref;
    size_t n;
    hl_error e;
    hl_error_clear(&e);
    if (hl_file_read(ref_path, &ref, &n, &e) != HL_OK) {
        printf("reference: none (%s)\n", e.msg);
        return 0;
    }
    int bad = n != x->rows * x->cols * sizeof(float) || memcmp(ref, x->data, n) != 0;
    printf("reference: %s\n", bad ? "MISMATCH" : "every value equal, bit for bit");
    free(ref);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BODY.json [REPS]\n", argv[0]);
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1)
        reps = 1;
    void *body;
    size_t len;
    hl_error e;
    hl_error_clear(&e);
    if (hl_file_read(argv[1], &body, &len, &e) != HL_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    hl_request_limits lim = {HL_REQUEST_MAX_POINTS_DEFAULT, HL_REQUEST_MAX_DIM_DEFAULT, 2};
    long before = peak_kb();
    hl_cluster_request r;
    double t0 = now();
    hl_status st = hl_json_request_decode(body, len, &lim, &r, &e);
    double first = now() - t0;
    long after = peak_kb();
    if (st != HL_OK) {
        fprintf(stderr, "decode: %s (%s)\n", e.msg, hl_status_name(st));
        return 1;
    }
    double payload = (double)(r.x.rows * r.x.cols * sizeof(float));
    printf("body: %s, %.1f MB, N=%zu D=%zu, float payload %.1f MB\n", argv[1], (double)len / 1e6,
           r.x.rows, r.x.cols, payload / 1e6);
    printf("peak RSS: %.1f MB after reading the body, %.1f MB after decoding: +%.1f MB = "
           "%.2fx the float payload\n",
           (double)before / 1024.0, (double)after / 1024.0, (double)(after - before) / 1024.0,
           (double)(after - before) * 1024.0 / payload);
    int bad = check_reference(argv[1], &r.x);
    hl_cluster_request_free(&r);
    double *t = malloc(2 * (size_t)reps * sizeof(double)), *c = t + reps;
    for (int i = 0; i < reps; i++) {
        double c0 = cpu_seconds();
        t0 = now();
        st = hl_json_request_decode(body, len, &lim, &r, &e);
        t[i] = now() - t0;
        c[i] = cpu_seconds() - c0;
        hl_cluster_request_free(&r);
        if (st != HL_OK)
            return 1;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    qsort(c, (size_t)reps, sizeof(double), cmp_double);
    double mb = (double)len / 1e6;
    printf("decode: first %.3f s; %d reps: wall best %.3f s = %.0f MB/s, median %.3f s = %.0f "
           "MB/s; CPU best %.3f s = %.0f MB/s, median %.3f s = %.0f MB/s\n",
           first, reps, t[0], mb / t[0], t[reps / 2], mb / t[reps / 2], c[0], mb / c[0],
           c[reps / 2], mb / c[reps / 2]);
    free(t);
    free(body);
    return bad;
}
