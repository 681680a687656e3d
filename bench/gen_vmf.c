/*
 * gen_vmf.c - synthetic labelled embeddings: a long-tailed mixture of von Mises-Fisher
 * clusters on the unit sphere, reproducible from a seed.
 *
 *   gen_vmf --n 100000 --dim 128 --clusters 5000 --out-features X.npy --out-labels Y.npy
 *           [--alpha 0.5] [--spread 0.75] [--groups 0] [--group-sim 0.5] [--seed 1]
 *
 * Cluster c gets a share of points proportional to (c + 1)^-alpha (a power law: a few big
 * clusters, a long tail of small ones), every cluster at least --min-size points. Points of
 * a cluster are vMF samples around its centre with the concentration chosen so that the
 * mean cosine to the centre is about --spread (Banerjee et al. 2005 approximation). With
 * --groups G > 0, centres are drawn around G group directions with mean cosine about
 * --group-sim to their group, so some classes look alike, as in real embeddings.
 * Sampling uses Wood's (1994) rejection method. Labels are int32 0..clusters-1.
 */
#include "hl/npy.h"
#include "hl/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double gamma_sample(hl_rng *r, double shape)
{
    /* Marsaglia and Tsang; shape < 1 via the boost u^(1/shape). */
    if (shape < 1.0) {
        double u = hl_rng_uniform(r);
        return gamma_sample(r, shape + 1.0) * pow(u > 1e-300 ? u : 1e-300, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = hl_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = hl_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

static double beta_sample(hl_rng *r, double a, double b)
{
    double x = gamma_sample(r, a), y = gamma_sample(r, b);
    return x / (x + y);
}

static void random_unit(hl_rng *r, double *v, size_t d)
{
    double s = 0.0;
    do {
        s = 0.0;
        for (size_t i = 0; i < d; i++) {
            v[i] = hl_rng_normal(r);
            s += v[i] * v[i];
        }
    } while (s < 1e-20);
    s = 1.0 / sqrt(s);
    for (size_t i = 0; i < d; i++)
        v[i] *= s;
}

/* A vMF sample around unit `mu` with concentration kappa (Wood 1994), into out. */
static void vmf_sample(hl_rng *r, const double *mu, size_t d, double kappa, double *tmp, float *out)
{
    double dm1 = (double)d - 1.0;
    double b = dm1 / (2.0 * kappa + sqrt(4.0 * kappa * kappa + dm1 * dm1));
    double x0 = (1.0 - b) / (1.0 + b);
    double c = kappa * x0 + dm1 * log(1.0 - x0 * x0);
    double w;
    for (;;) {
        double z = beta_sample(r, dm1 / 2.0, dm1 / 2.0);
        w = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z);
        double u = hl_rng_uniform(r);
        if (kappa * w + dm1 * log(1.0 - x0 * w) - c >= log(u > 1e-300 ? u : 1e-300))
            break;
    }
    /* A direction orthogonal to mu. */
    random_unit(r, tmp, d);
    double dot = 0.0;
    for (size_t i = 0; i < d; i++)
        dot += tmp[i] * mu[i];
    double s = 0.0;
    for (size_t i = 0; i < d; i++) {
        tmp[i] -= dot * mu[i];
        s += tmp[i] * tmp[i];
    }
    s = s > 1e-30 ? 1.0 / sqrt(s) : 0.0;
    double sw = sqrt(fmax(1.0 - w * w, 0.0));
    for (size_t i = 0; i < d; i++)
        out[i] = (float)(w * mu[i] + sw * tmp[i] * s);
}

/* Concentration whose mean resultant length (mean cosine to the centre) is about rbar. */
static double kappa_for(double rbar, size_t d)
{
    return rbar * ((double)d - rbar * rbar) / (1.0 - rbar * rbar);
}

static int usage(void)
{
    fprintf(stderr, "usage: gen_vmf --n N --dim D --clusters C --out-features X.npy "
                    "--out-labels Y.npy [--alpha A] [--spread R] [--min-size M] [--groups G] "
                    "[--group-sim S] [--seed S]\n");
    return 2;
}

int main(int argc, char **argv)
{
    size_t n = 0, d = 0, C = 0, groups = 0, min_size = 2;
    double alpha = 0.5, spread = 0.75, group_sim = 0.5;
    unsigned long long seed = 1;
    const char *fx = NULL, *fy = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--n") == 0)
            n = strtoull(v, NULL, 10);
        else if (strcmp(k, "--dim") == 0)
            d = strtoull(v, NULL, 10);
        else if (strcmp(k, "--clusters") == 0)
            C = strtoull(v, NULL, 10);
        else if (strcmp(k, "--groups") == 0)
            groups = strtoull(v, NULL, 10);
        else if (strcmp(k, "--min-size") == 0)
            min_size = strtoull(v, NULL, 10);
        else if (strcmp(k, "--alpha") == 0)
            alpha = atof(v);
        else if (strcmp(k, "--spread") == 0)
            spread = atof(v);
        else if (strcmp(k, "--group-sim") == 0)
            group_sim = atof(v);
        else if (strcmp(k, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "--out-features") == 0)
            fx = v;
        else if (strcmp(k, "--out-labels") == 0)
            fy = v;
        else
            return usage();
    }
    if (argc % 2 == 0 || n < 2 || d < 2 || C < 1 || C > n || fx == NULL || fy == NULL ||
        !(spread > 0.0 && spread < 1.0) || !(group_sim > 0.0 && group_sim < 1.0) ||
        min_size * C > n || n > 100000000 || d > 65536)
        return usage();
    hl_rng r;
    hl_rng_seed(&r, seed);
    /* Sizes: power-law shares, at least min_size each, summing to n. */
    size_t *size = malloc(C * sizeof(size_t));
    double tot = 0.0;
    for (size_t c = 0; c < C; c++)
        tot += pow((double)(c + 1), -alpha);
    size_t left = n - min_size * C, used = 0;
    for (size_t c = 0; c < C; c++) {
        size[c] = min_size + (size_t)floor((double)left * pow((double)(c + 1), -alpha) / tot);
        used += size[c];
    }
    for (size_t c = 0; used < n; c = (c + 1) % C, used++)
        size[c]++;
    double *centre = malloc(C * d * sizeof(double)), *gdir = malloc(d * sizeof(double));
    double *tmp = malloc(d * sizeof(double));
    float *cf = malloc(d * sizeof(float));
    for (size_t c = 0; c < C; c++) {
        if (groups > 0) {
            if (c % (C / groups > 0 ? C / groups : 1) == 0)
                random_unit(&r, gdir, d);
            vmf_sample(&r, gdir, d, kappa_for(group_sim, d), tmp, cf);
            for (size_t i = 0; i < d; i++)
                centre[c * d + i] = cf[i];
        } else {
            random_unit(&r, centre + c * d, d);
        }
    }
    float *x = malloc(n * d * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    int32_t *perm = malloc(n * sizeof(int32_t));
    size_t at = 0;
    double kappa = kappa_for(spread, d);
    for (size_t c = 0; c < C; c++)
        for (size_t k = 0; k < size[c]; k++, at++) {
            vmf_sample(&r, centre + c * d, d, kappa, tmp, x + at * d);
            y[at] = (int32_t)c;
        }
    /* Shuffle the rows so classes are not contiguous. */
    for (size_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    hl_rng_shuffle_i32(&r, perm, n);
    float *xs = malloc(n * d * sizeof(float));
    int32_t *ys = malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        memcpy(xs + i * d, x + (size_t)perm[i] * d, d * sizeof(float));
        ys[i] = y[perm[i]];
    }
    hl_error err;
    hl_error_clear(&err);
    size_t shx[2] = {n, d}, shy[1] = {n};
    int rc = 0;
    if (hl_npy_save_f32(fx, xs, 2, shx, &err) != HL_OK ||
        hl_npy_save_i32(fy, ys, 1, shy, &err) != HL_OK) {
        fprintf(stderr, "gen_vmf: %s\n", err.msg);
        rc = 1;
    } else {
        fprintf(stderr,
                "gen_vmf: %zu points, dim %zu, %zu clusters (largest %zu, smallest %zu), "
                "kappa %.1f\n",
                n, d, C, size[0], size[C - 1], kappa);
    }
    free(size);
    free(centre);
    free(gdir);
    free(tmp);
    free(cf);
    free(x);
    free(y);
    free(perm);
    free(xs);
    free(ys);
    return rc;
}
