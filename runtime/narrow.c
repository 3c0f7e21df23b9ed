/*
 * narrow.c — matrix products 16 or fewer columns wide, a row of the
 * result one AVX-512 vector (see kernels.h, rt_narrow_sgemm).
 *
 * A small network's layers are narrow: HW1's first layer is a batch of 256
 * rows of 117 inputs times a 117 × 16 weight. On such a product OpenBLAS
 * spends much of its time packing and on its per-call work: 12.5 µs,
 * about 40% of HW1's training step. A row of 16 outputs is one vector,
 * so C = A · op(B) is computed here directly: a row of C is Σ_k A[i, k] ·
 * B'[k, :], one vector of B' (op(B) packed, 16 floats a row, zero past N)
 * times a broadcast element of A, for 8 rows of C at once: 7 µs.
 *
 * The sum over k runs in order, one rounding a multiply-add. The weight
 * gradient of the same layer (16 × 117 from the 256 rows) was tried the
 * same way, a column of the result a vector, and ran no faster than
 * OpenBLAS (11 against 10.5 µs): it is left to cblas_sgemm. Built only
 * where GCC targets x86-64, and used only on a CPU with AVX-512.
 */
#include "runtime/kernels.h"

#include <stdbool.h>

enum { ROWS = 8, MAX_K = 1024 };   /* rows of C at a time; K at most (rt_narrow_fits) */

#if RT_HAVE_AVX512
#include <immintrin.h>

/* C[M, N] = A[M, K] · B'[K, N] with B' packed [K][16]; `rows` rows at a time
 * (a constant where it is inlined, so the sums stay in registers). */
__attribute__((target("avx512f"), always_inline)) static inline void
rows_times(const float *A, int64_t lda, const float *bp, int64_t K, float *C, int64_t ldc, __mmask16 m, int rows) {
  __m512 acc[ROWS];
#pragma GCC unroll 8
  for (int r = 0; r < rows; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    __m512 b = _mm512_load_ps(bp + 16 * k);
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(A[r * lda + k]), b, acc[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < rows; r++) _mm512_mask_storeu_ps(C + r * ldc, m, acc[r]);
}

__attribute__((target("avx512f"))) static void times_packed(int64_t M, int64_t N, int64_t K, const float *A,
                                                            int64_t lda, const float *bp, float *C, int64_t ldc) {
  __mmask16 m = rt_lanes(0, N);
  int64_t i = 0;
  for (; i + ROWS <= M; i += ROWS) rows_times(A + i * lda, lda, bp, K, C + i * ldc, ldc, m, ROWS);
  for (; i < M; i++) rows_times(A + i * lda, lda, bp, K, C + i * ldc, ldc, m, 1);
}

bool rt_narrow_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                     int64_t ldb, float *C, int64_t ldc) {
  if (!rt_narrow_fits(ta, M, N, K) || !rt_avx512()) return false;
  /* op(B) as [K][16], zero past N: a row of B for each k */
  _Alignas(64) float bp[16 * MAX_K];
  for (int64_t k = 0; k < K; k++)
    for (int64_t j = 0; j < 16; j++) bp[16 * k + j] = j >= N ? 0.0f : tb ? B[j * ldb + k] : B[k * ldb + j];
  times_packed(M, N, K, A, lda, bp, C, ldc);
  return true;
}

#else   /* no AVX-512 kernels here: cblas_sgemm does every product */
bool rt_narrow_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                     int64_t ldb, float *C, int64_t ldc) {
  (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)C, (void)ldc;
  return false;
}
#endif
