/*
 * test_metrics.c - hl_metrics_compute against direct O(N^2) definitions (spec section 5), the
 * edge cases of the reference (NaN, NMI special cases), the -1 "unassigned" rule, and golden
 * numbers from sklearn written by tests/golden/make_metrics_golden.py.
 */
#include "hl/metrics.h"
#include "hl/rng.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *metrics_suite(void);

#define TOL 1e-9

enum { M_FP_P, M_FP_R, M_FP, M_FB_P, M_FB_R, M_FB, M_NMI, M_COUNT };

static const char *const metric_names[M_COUNT] = {"fp_precision", "fp_recall", "fp", "fb_precision",
                                                  "fb_recall",    "fb",        "nmi"};

static void metrics_vec(const hl_metrics *m, double v[M_COUNT])
{
    v[M_FP_P] = m->fp_precision;
    v[M_FP_R] = m->fp_recall;
    v[M_FP] = m->fp;
    v[M_FB_P] = m->fb_precision;
    v[M_FB_R] = m->fb_recall;
    v[M_FB] = m->fb;
    v[M_NMI] = m->nmi;
}

/* Reference results plus the cluster counts. */
typedef struct ref_result {
    double v[M_COUNT];
    size_t n_true, n_pred;
} ref_result;

/* Two items share a predicted cluster iff they are the same item, or have the same label and
 * that label is not -1 (each unassigned item is alone). */
static int same_pred(const int32_t *p, size_t x, size_t y)
{
    return x == y || (p[x] == p[y] && p[x] != -1);
}

/*
 * Direct definitions, O(N^2):
 *  - pairwise: ordered pairs (x, y), x != y; tp = same class and same cluster, pp = same
 *    cluster, qq = same class; P = tp/pp, R = tp/qq, F = 2PR/(P+R);
 *  - BCubed: item averages of |C(x) ∩ L(x)| / |C(x)| and / |L(x)|, F of the averages;
 *  - NMI: from an explicit dense contingency table (labels found by linear search), natural
 *    logs, arithmetic mean of the entropies, sklearn's special cases.
 */
static void ref_compute(const int32_t *t, const int32_t *p, size_t n, ref_result *r)
{
    double tp = 0.0, pp = 0.0, qq = 0.0, bp = 0.0, br = 0.0;
    for (size_t x = 0; x < n; x++) {
        size_t c = 0, l = 0, both = 0;
        for (size_t y = 0; y < n; y++) {
            int sp = same_pred(p, x, y);
            int st = t[x] == t[y];
            c += (size_t)sp;
            l += (size_t)st;
            both += (size_t)(sp && st);
        }
        /* The item itself is counted once in each; pairs exclude it. */
        tp += (double)(both - 1);
        pp += (double)(c - 1);
        qq += (double)(l - 1);
        bp += (double)both / (double)c;
        br += (double)both / (double)l;
    }
    double N = (double)n;
    r->v[M_FP_P] = tp / pp;
    r->v[M_FP_R] = tp / qq;
    r->v[M_FP] = 2.0 * r->v[M_FP_P] * r->v[M_FP_R] / (r->v[M_FP_P] + r->v[M_FP_R]);
    r->v[M_FB_P] = bp / N;
    r->v[M_FB_R] = br / N;
    r->v[M_FB] = 2.0 * r->v[M_FB_P] * r->v[M_FB_R] / (r->v[M_FB_P] + r->v[M_FB_R]);

    /* Row (class) and column (cluster) index of every item. */
    size_t *row = malloc(n * sizeof(size_t));
    size_t *col = malloc(n * sizeof(size_t));
    ck_assert(row != NULL && col != NULL);
    size_t C = 0, K = 0;
    for (size_t x = 0; x < n; x++) {
        size_t y = 0;
        while (y < x && t[y] != t[x])
            y++;
        row[x] = y < x ? row[y] : C++;
        y = 0;
        while (y < x && !same_pred(p, x, y))
            y++;
        col[x] = y < x ? col[y] : K++;
    }
    size_t *cont = calloc(C * K, sizeof(size_t));
    size_t *a = calloc(C, sizeof(size_t));
    size_t *b = calloc(K, sizeof(size_t));
    ck_assert(cont != NULL && a != NULL && b != NULL);
    for (size_t x = 0; x < n; x++) {
        cont[row[x] * K + col[x]]++;
        a[row[x]]++;
        b[col[x]]++;
    }
    double mi = 0.0, ht = 0.0, hp = 0.0;
    for (size_t i = 0; i < C; i++) {
        for (size_t j = 0; j < K; j++) {
            double nij = (double)cont[i * K + j];
            if (nij > 0.0)
                mi += nij / N * log(N * nij / ((double)a[i] * (double)b[j]));
        }
    }
    for (size_t i = 0; i < C; i++)
        ht -= (double)a[i] / N * log((double)a[i] / N);
    for (size_t j = 0; j < K; j++)
        hp -= (double)b[j] / N * log((double)b[j] / N);
    if (C == 1 && K == 1)
        r->v[M_NMI] = 1.0;
    else if (mi <= 0.0)
        r->v[M_NMI] = 0.0;
    else
        r->v[M_NMI] = mi / fmax(0.5 * (ht + hp), DBL_EPSILON);
    r->n_true = C;
    r->n_pred = K;
    free(row);
    free(col);
    free(cont);
    free(a);
    free(b);
}

static int close_or_both_nan(double got, double want, double tol)
{
    if (isnan(want))
        return isnan(got);
    return !isnan(got) && fabs(got - want) <= tol;
}

static void expect_metrics(const hl_metrics *m, const double want[M_COUNT], double tol,
                           const char *what)
{
    double got[M_COUNT];
    metrics_vec(m, got);
    for (int k = 0; k < M_COUNT; k++)
        ck_assert_msg(close_or_both_nan(got[k], want[k], tol), "%s: %s = %.17g, expected %.17g",
                      what, metric_names[k], got[k], want[k]);
}

static void compute_ok(const int32_t *t, const int32_t *p, size_t n, hl_metrics *m)
{
    hl_status st = hl_metrics_compute(t, p, n, m);
    ck_assert_msg(st == HL_OK, "hl_metrics_compute returned %s", hl_status_name(st));
}

static void check_against_ref(const int32_t *t, const int32_t *p, size_t n, const char *what)
{
    hl_metrics m;
    ref_result r;
    compute_ok(t, p, n, &m);
    ref_compute(t, p, n, &r);
    expect_metrics(&m, r.v, TOL, what);
    ck_assert_uint_eq(m.n, n);
    ck_assert_uint_eq(m.n_true, r.n_true);
    ck_assert_uint_eq(m.n_pred, r.n_pred);
}

/* An arbitrary int32 label: often an extreme or special value, else any 32-bit pattern. */
static int32_t any_label(hl_rng *r, int allow_neg1)
{
    static const int32_t special[] = {INT32_MIN, INT32_MAX, 0, 1, -2, -1, 1 << 30, -1000000};
    for (;;) {
        int32_t v;
        if (hl_rng_below(r, 5) == 0)
            v = special[hl_rng_below(r, sizeof(special) / sizeof(special[0]))];
        else
            v = (int32_t)(uint32_t)hl_rng_next(r);
        if (v != -1 || allow_neg1)
            return v;
    }
}

/* Random truth/pred labelings of size n; `mode` selects how pred relates to the truth. */
static void random_labelings(hl_rng *r, size_t n, int mode, int32_t *t, int32_t *p)
{
    size_t C = 1 + (size_t)hl_rng_below(r, hl_rng_below(r, 2) ? n : (n < 8 ? n : 8));
    size_t K = 1 + (size_t)hl_rng_below(r, hl_rng_below(r, 2) ? n : (n < 8 ? n : 8));
    int32_t *tv = malloc(C * sizeof(int32_t));
    int32_t *pv = malloc(K * sizeof(int32_t));
    ck_assert(tv != NULL && pv != NULL);
    for (size_t i = 0; i < C; i++)
        tv[i] = any_label(r, 1); /* truth may use -1 like any other value */
    for (size_t j = 0; j < K; j++)
        pv[j] = any_label(r, 0);
    double noise = hl_rng_uniform(r);
    double unassigned = mode == 2 ? hl_rng_uniform(r) : 0.0;
    for (size_t x = 0; x < n; x++) {
        size_t ci = (size_t)hl_rng_below(r, C);
        t[x] = tv[ci];
        if (mode == 0 || hl_rng_uniform(r) < noise)
            p[x] = pv[hl_rng_below(r, K)]; /* independent of the truth */
        else
            p[x] = pv[ci % K]; /* follows the truth class */
        if (hl_rng_uniform(r) < unassigned)
            p[x] = -1;
    }
    free(tv);
    free(pv);
}

START_TEST(test_random_vs_direct)
{
    hl_rng r;
    hl_rng_seed(&r, 20240601);
    int32_t *t = malloc(500 * sizeof(int32_t));
    int32_t *p = malloc(500 * sizeof(int32_t));
    ck_assert(t != NULL && p != NULL);
    for (int rep = 0; rep < 360; rep++) {
        size_t n = rep < 20 ? (size_t)rep + 1 : 1 + (size_t)hl_rng_below(&r, 500);
        int mode = rep % 3;
        random_labelings(&r, n, mode, t, p);
        char what[64];
        snprintf(what, sizeof(what), "rep %d (n=%zu, mode %d)", rep, n, mode);
        check_against_ref(t, p, n, what);
    }
    free(t);
    free(p);
}
END_TEST

/* Swapping the roles of truth and prediction swaps pairwise/BCubed P and R; NMI is symmetric. */
START_TEST(test_symmetry)
{
    hl_rng r;
    hl_rng_seed(&r, 99);
    int32_t t[300], p[300];
    for (int rep = 0; rep < 40; rep++) {
        size_t n = 2 + (size_t)hl_rng_below(&r, 299);
        random_labelings(&r, n, 1, t, p);
        for (size_t x = 0; x < n; x++) {
            if (t[x] == -1) /* -1 is special only as a prediction */
                t[x] = -3;
        }
        hl_metrics m1, m2;
        compute_ok(t, p, n, &m1);
        compute_ok(p, t, n, &m2);
        ck_assert(close_or_both_nan(m1.fp_precision, m2.fp_recall, TOL));
        ck_assert(close_or_both_nan(m1.fp_recall, m2.fp_precision, TOL));
        ck_assert(close_or_both_nan(m1.fb_precision, m2.fb_recall, TOL));
        ck_assert(close_or_both_nan(m1.fb_recall, m2.fb_precision, TOL));
        ck_assert_double_eq_tol(m1.nmi, m2.nmi, TOL);
    }
}
END_TEST

START_TEST(test_all_pred_singletons)
{
    int32_t t[6] = {4, 4, 4, -9, -9, 2};
    int32_t distinct[6] = {10, 11, 12, 13, 14, 15};
    int32_t unassigned[6] = {-1, -1, -1, -1, -1, -1};
    const int32_t *preds[2] = {distinct, unassigned};
    for (int k = 0; k < 2; k++) {
        hl_metrics m;
        compute_ok(t, preds[k], 6, &m);
        ck_assert_msg(isnan(m.fp_precision), "pk = 0 must give P = NaN, got %g", m.fp_precision);
        ck_assert_double_eq(m.fp_recall, 0.0);
        ck_assert(isnan(m.fp));
        ck_assert_double_eq_tol(m.fb_precision, 1.0, 1e-15);
        /* recall: 3 items at 1/3, 2 at 1/2, one at 1 -> 3/6 */
        ck_assert_double_eq_tol(m.fb_recall, 0.5, 1e-15);
        ck_assert_double_eq_tol(m.fb, 2.0 * 0.5 / 1.5, 1e-15);
        ck_assert_uint_eq(m.n_pred, 6);
        ck_assert_uint_eq(m.n_true, 3);
    }
}
END_TEST

START_TEST(test_all_truth_singletons)
{
    int32_t t[5] = {INT32_MIN, -1, 0, 5, INT32_MAX};
    int32_t p[5] = {3, 3, 3, 8, 8};
    hl_metrics m;
    compute_ok(t, p, 5, &m);
    ck_assert_msg(isnan(m.fp_recall), "qk = 0 must give R = NaN, got %g", m.fp_recall);
    ck_assert_double_eq(m.fp_precision, 0.0);
    ck_assert(isnan(m.fp));
    ck_assert_double_eq_tol(m.fb_recall, 1.0, 1e-15);
    ck_assert_double_eq_tol(m.fb_precision, (3 * (1.0 / 3) + 2 * 0.5) / 5, 1e-15);
    ck_assert_uint_eq(m.n_true, 5);
    ck_assert_uint_eq(m.n_pred, 2);
}
END_TEST

START_TEST(test_zero_precision_and_recall)
{
    /* Pairs are split in both directions: tk = 0, pk = qk = 4 -> P = R = 0 -> F = NaN. */
    int32_t t[4] = {0, 0, 1, 1};
    int32_t p[4] = {5, 6, 5, 6};
    hl_metrics m;
    compute_ok(t, p, 4, &m);
    ck_assert_double_eq(m.fp_precision, 0.0);
    ck_assert_double_eq(m.fp_recall, 0.0);
    ck_assert_msg(isnan(m.fp), "P = R = 0 must give F = NaN, got %g", m.fp);
    ck_assert_double_eq_tol(m.fb_precision, 0.5, 1e-15);
    ck_assert_double_eq_tol(m.fb_recall, 0.5, 1e-15);
    ck_assert_double_eq(m.nmi, 0.0); /* independent labelings: MI = 0 */
}
END_TEST

START_TEST(test_both_one_cluster)
{
    int32_t t[7] = {-5, -5, -5, -5, -5, -5, -5};
    int32_t p[7] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    hl_metrics m;
    compute_ok(t, p, 7, &m);
    ck_assert_double_eq(m.nmi, 1.0);
    ck_assert_double_eq(m.fp_precision, 1.0);
    ck_assert_double_eq(m.fp_recall, 1.0);
    ck_assert_double_eq(m.fp, 1.0);
    ck_assert_double_eq(m.fb, 1.0);
    ck_assert_uint_eq(m.n_true, 1);
    ck_assert_uint_eq(m.n_pred, 1);

    /* A single item: one class, one cluster (even when unassigned). */
    int32_t t1 = 3, p1 = -1;
    compute_ok(&t1, &p1, 1, &m);
    ck_assert_double_eq(m.nmi, 1.0);
    ck_assert(isnan(m.fp_precision) && isnan(m.fp_recall) && isnan(m.fp));
    ck_assert_double_eq(m.fb_precision, 1.0);
    ck_assert_double_eq(m.fb_recall, 1.0);
}
END_TEST

START_TEST(test_mi_zero)
{
    hl_metrics m;
    /* Truth is one class, prediction splits it: MI = 0 exactly, so NMI = 0.0. */
    int32_t t[12], p[12];
    for (int x = 0; x < 12; x++) {
        t[x] = 42;
        p[x] = x % 5;
    }
    compute_ok(t, p, 12, &m);
    ck_assert_msg(m.nmi == 0.0, "one truth class: nmi = %.17g", m.nmi);
    /* Prediction is one cluster, truth has several. */
    compute_ok(p, t, 12, &m);
    ck_assert_msg(m.nmi == 0.0, "one predicted cluster: nmi = %.17g", m.nmi);
    /* Crossed (independent) labelings of unequal sizes: 3 classes x 4 clusters. */
    for (int x = 0; x < 12; x++) {
        t[x] = x % 3;
        p[x] = 100 + x / 3;
    }
    compute_ok(t, p, 12, &m);
    ck_assert_msg(m.nmi == 0.0, "independent: nmi = %.17g", m.nmi);
    /* Not independent any more: NMI > 0. */
    p[0] = 101;
    compute_ok(t, p, 12, &m);
    ck_assert_msg(m.nmi > 0.0, "dependent: nmi = %.17g", m.nmi);
}
END_TEST

START_TEST(test_unassigned_are_singletons)
{
    int32_t t[6] = {1, 1, 1, 2, 2, 2};
    int32_t with_neg[6] = {-1, -1, 7, 7, -1, 9};
    int32_t fresh[6] = {100, 101, 7, 7, 102, 9};
    int32_t merged[6] = {55, 55, 7, 7, 55, 9}; /* what treating -1 as a label would give */
    hl_metrics a, b, c;
    compute_ok(t, with_neg, 6, &a);
    compute_ok(t, fresh, 6, &b);
    compute_ok(t, merged, 6, &c);
    double va[M_COUNT], vc[M_COUNT];
    metrics_vec(&a, va);
    metrics_vec(&c, vc);
    expect_metrics(&b, va, 1e-15, "-1 vs fresh labels");
    ck_assert_uint_eq(a.n_pred, 5);
    ck_assert_uint_eq(c.n_pred, 3);
    ck_assert(fabs(va[M_FP_P] - vc[M_FP_P]) > 0.1);

    /* Other negative predictions are ordinary labels. */
    int32_t neg2[6] = {-2, -2, 7, 7, -2, 9};
    compute_ok(t, neg2, 6, &b);
    metrics_vec(&b, va);
    expect_metrics(&c, va, 1e-15, "-2 is an ordinary label");
    ck_assert_uint_eq(b.n_pred, 3);

    /* -1 is an ordinary label in the truth. */
    int32_t tneg[6] = {-1, -1, -1, 2, 2, 2};
    compute_ok(tneg, fresh, 6, &a);
    compute_ok(t, fresh, 6, &b);
    metrics_vec(&b, va);
    expect_metrics(&a, va, 1e-15, "-1 truth label");
    ck_assert_uint_eq(a.n_true, 2);
}
END_TEST

START_TEST(test_invalid_args)
{
    int32_t t[2] = {0, 1}, p[2] = {0, 1};
    hl_metrics m;
    ck_assert_int_eq(hl_metrics_compute(t, p, 0, &m), HL_INVAL);
    ck_assert_int_eq(hl_metrics_compute(NULL, p, 2, &m), HL_INVAL);
    ck_assert_int_eq(hl_metrics_compute(t, NULL, 2, &m), HL_INVAL);
    ck_assert_int_eq(hl_metrics_compute(t, p, 2, NULL), HL_INVAL);
}
END_TEST

START_TEST(test_perfect_and_relabelled)
{
    /* Any bijective relabelling of a perfect prediction scores 1 everywhere. */
    hl_rng r;
    hl_rng_seed(&r, 5);
    int32_t t[200], p[200];
    for (int x = 0; x < 200; x++) {
        int c = (int)hl_rng_below(&r, 17);
        t[x] = c * 1000003 - 9000000;
        p[x] = INT32_MAX - c * 7;
    }
    hl_metrics m;
    compute_ok(t, p, 200, &m);
    double ones[M_COUNT] = {1, 1, 1, 1, 1, 1, 1};
    expect_metrics(&m, ones, 1e-12, "perfect");
}
END_TEST

/* ---- golden numbers from sklearn ---- */

static char *read_line(FILE *f, char *buf, size_t cap)
{
    while (fgets(buf, (int)cap, f) != NULL) {
        if (buf[0] != '#')
            return buf;
    }
    return NULL;
}

START_TEST(test_sklearn_golden)
{
    char dir[512], path[700], line[1024];
    snprintf(dir, sizeof(dir), "%s/golden/metrics", HL_TEST_DATA);
    snprintf(path, sizeof(path), "%s/cases.txt", dir);
    FILE *list = fopen(path, "r");
    ck_assert_msg(list != NULL, "cannot open %s", path);
    char name[128];
    int cases = 0;
    while (fscanf(list, "%127s", name) == 1) {
        snprintf(path, sizeof(path), "%s/%s.txt", dir, name);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        ck_assert(read_line(f, line, sizeof(line)) != NULL);
        long long nn = strtoll(line, NULL, 10);
        ck_assert(nn > 0 && nn <= 1000000);
        size_t n = (size_t)nn;
        int32_t *t = malloc(n * sizeof(int32_t));
        int32_t *p = malloc(n * sizeof(int32_t));
        ck_assert(t != NULL && p != NULL);
        for (size_t x = 0; x < n; x++) {
            long long a, b;
            ck_assert(read_line(f, line, sizeof(line)) != NULL);
            ck_assert_int_eq(sscanf(line, "%lld %lld", &a, &b), 2);
            ck_assert(a >= INT32_MIN && a <= INT32_MAX && b >= INT32_MIN && b <= INT32_MAX);
            t[x] = (int32_t)a;
            p[x] = (int32_t)b;
        }
        ck_assert(read_line(f, line, sizeof(line)) != NULL);
        double want[M_COUNT];
        char *s = line;
        for (int k = 0; k < M_COUNT; k++) {
            char *end;
            want[k] = strtod(s, &end);
            ck_assert_msg(end != s, "%s: bad reference line", name);
            s = end;
        }
        fclose(f);

        hl_metrics m;
        compute_ok(t, p, n, &m);
        expect_metrics(&m, want, TOL, name);
        /* The direct reference agrees with sklearn too. */
        ref_result r;
        ref_compute(t, p, n, &r);
        expect_metrics(&m, r.v, TOL, name);
        free(t);
        free(p);
        cases++;
    }
    fclose(list);
    ck_assert_int_ge(cases, 8);
}
END_TEST

Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("direct");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_vs_direct);
    tcase_add_test(tc, test_symmetry);
    tcase_add_test(tc, test_perfect_and_relabelled);
    suite_add_tcase(s, tc);
    tc = tcase_create("edge");
    tcase_add_test(tc, test_all_pred_singletons);
    tcase_add_test(tc, test_all_truth_singletons);
    tcase_add_test(tc, test_zero_precision_and_recall);
    tcase_add_test(tc, test_both_one_cluster);
    tcase_add_test(tc, test_mi_zero);
    tcase_add_test(tc, test_unassigned_are_singletons);
    tcase_add_test(tc, test_invalid_args);
    suite_add_tcase(s, tc);
    tc = tcase_create("sklearn");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sklearn_golden);
    suite_add_tcase(s, tc);
    return s;
}
