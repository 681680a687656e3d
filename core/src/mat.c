/* mat.c - row-major helpers over cblas; see hl/mat.h. */
#include "hl/mat.h"

#include <cblas.h>
#include <math.h>

size_t hl_l2norm_rows(const float *src, float *dst, size_t n, size_t d)
{
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        const float *s = src + i * d;
        float *o = dst + i * d;
        double ss = 0.0;
        for (size_t j = 0; j < d; j++)
            ss += (double)s[j] * (double)s[j];
        if (ss > 0.0) {
            /* In double: for a row of norm below 1/FLT_MAX the inverse overflows a float. */
            double inv = 1.0 / sqrt(ss);
            for (size_t j = 0; j < d; j++)
                o[j] = (float)((double)s[j] * inv);
        } else {
            zeros++;
            for (size_t j = 0; j < d; j++)
                o[j] = 0.0f;
        }
    }
    return zeros;
}

hl_status hl_check_finite(const float *x, size_t n, size_t d, hl_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        for (size_t j = 0; j < d; j++) {
            if (!isfinite(r[j]))
                return hl_error_set_cell(err, HL_NUMERIC, "embeddings", i, j,
                                         "%s at row %zu, column %zu", isnan(r[j]) ? "NaN" : "Inf",
                                         i, j);
        }
    }
    return HL_OK;
}

/* cblas takes int dimensions; callers keep blocks far below INT_MAX. */
void hl_gemm_nt(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, beta, c, (int)ldc);
}

void hl_gemm_nn(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
                (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void hl_gemm_tn(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, beta, c, (int)ldc);
}

float hl_dot(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}
