/*
 * hl/mat.h - dense row-major float helpers over cblas.
 *
 * All matrices are row-major float32 with an explicit leading dimension. These functions
 * never allocate. Thread-safety: reentrant; BLAS threading is the caller's business.
 */
#ifndef HL_MAT_H
#define HL_MAT_H

#include "hl/status.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Writes the row-wise L2-normalised `src` (n x d) into `dst` (which may equal `src`).
 * A zero row stays zero (no NaN). Returns the number of zero rows.
 */
size_t hl_l2norm_rows(const float *src, float *dst, size_t n, size_t d);

/**
 * Checks that every value of `x` (n x d) is finite. On the first NaN or Inf returns
 * HL_NUMERIC and records its row and column in `err` (field "embeddings").
 */
hl_status hl_check_finite(const float *x, size_t n, size_t d, hl_error *err);

/** C (m x n) = alpha * A (m x k) * B^T (B is n x k) + beta * C. */
void hl_gemm_nt(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc);

/** C (m x n) = alpha * A (m x k) * B (k x n) + beta * C. */
void hl_gemm_nn(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc);

/** C (m x n) = alpha * A^T (A is k x m) * B (k x n) + beta * C. */
void hl_gemm_tn(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc);

/** Dot product of two float vectors of length n, accumulated in float. */
float hl_dot(const float *a, const float *b, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* HL_MAT_H */
