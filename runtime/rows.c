/*
 * rows.c — convolutions of few input channels computed directly, 16
 * output pixels a vector (AVX-512), without im2col's columns (see
 * kernels.h, RT_CONV_ROWS).
 *
 * A first layer reads a gray or a colour image: 1 or 3 input channels.
 * im2col then makes columns of only C·KH·KW = 9 or 27 rows, a GEMM too
 * thin to run well, and direct.c's kernel, which sums over input channels
 * and taps with 16 output channels a vector, has too short a sum to pay
 * for its copies. Here a vector holds 16 neighbouring output pixels of one
 * row instead, which is how the output is laid out: no transpose.
 *
 * The input image is copied once into zero-padded planes, [C][hg·wg], by
 * direct.c's rt_fill_planes (the stride-1 grid of rt_grid), so that output
 * pixel (oy, ox) reads tap (ky, kx) at (oy + ky)·wg + ox + kx: a tap's 16
 * inputs are one unaligned load. The last vector of a row is masked (a
 * 28-pixel row is 16 + 12).
 *
 *   forward   for a row's two vectors of pixels and 8 output channels,
 *             16 sums in registers; each input channel and tap loads two
 *             vectors of inputs and multiplies them by each channel's
 *             weight, broadcast.
 *   adjoint in w  dw[o, c, tap] = Σ_images Σ_pixels dy[o, p] · plane_c[p +
 *             tap]: for 2 output channels and an input channel, taps × 2
 *             vector sums stay in registers over an image's rows; each
 *             vector of dy is multiplied by the tap's vector of inputs.
 *             The sums are kept as vectors over a part's images and added
 *             up once at its end.
 *
 * The adjoint in x, which a first layer never needs, stays with im2col.
 * Built only where GCC targets x86-64; the compiler picks RT_CONV_ROWS
 * only when the CPU has AVX-512 (rt_avx512).
 */
#include "runtime/kernels.h"

#include <string.h>

#if RT_HAVE_AVX512
#include <immintrin.h>

typedef RtGrid Grid;   /* rt_grid(g, 0): a stride-1 grid, its planes filled by direct.c */

/* Forward: output row oy, pixels [x0, x0 + 16·nv) (masks m[0], m[1]), output
 * channels [o0, o0 + 8). nv is 1 or 2, a constant where it is inlined. */
__attribute__((target("avx512f"), always_inline)) static inline void
forward_block(const Grid *r, const float *planes, const float *w, float *y, int64_t oy, int64_t x0, int64_t o0,
              const __mmask16 m[2], int nv) {
  __m512 acc[8][2];
#pragma GCC unroll 8
  for (int o = 0; o < 8; o++) acc[o][0] = acc[o][1] = _mm512_setzero_ps();
  for (int64_t c = 0; c < r->cin; c++)
    for (int64_t ky = 0; ky < r->kh; ky++) {
      const float *in = planes + c * r->plane + (oy + ky) * r->wg + x0;
      int64_t k = r->cin * r->taps;   /* a filter's weights */
      const float *wt = w + o0 * k + c * r->taps + ky * r->kw;
      for (int64_t kx = 0; kx < r->kw; kx++) {
        __m512 v[2];
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) v[j] = _mm512_maskz_loadu_ps(m[j], in + kx + 16 * j);
#pragma GCC unroll 8
        for (int o = 0; o < 8; o++) {
          __m512 wv = _mm512_set1_ps(wt[o * k + kx]);
#pragma GCC unroll 2
          for (int j = 0; j < nv; j++) acc[o][j] = _mm512_fmadd_ps(v[j], wv, acc[o][j]);
        }
      }
    }
#pragma GCC unroll 8
  for (int o = 0; o < 8; o++)
#pragma GCC unroll 2
    for (int j = 0; j < nv; j++)
      _mm512_mask_storeu_ps(y + ((o0 + o) * r->oh + oy) * r->ow + x0 + 16 * j, m[j], acc[o][j]);
}

__attribute__((target("avx512f"))) static void forward_image(const Grid *r, const float *planes, const float *w,
                                                             float *y) {
  for (int64_t oy = 0; oy < r->oh; oy++)
    for (int64_t x0 = 0; x0 < r->ow; x0 += 32) {
      __mmask16 m[2] = {rt_lanes(0, r->ow - x0), rt_lanes(0, r->ow - x0 - 16)};
      for (int64_t o0 = 0; o0 < r->oc; o0 += 8) {
        if (m[1]) forward_block(r, planes, w, y, oy, x0, o0, m, 2);
        else forward_block(r, planes, w, y, oy, x0, o0, m, 1);
      }
    }
}

/* Adjoint in w, one image: output channels o0 and o0 + 1 and input channel
 * c; sums [2][taps] vectors at `sum` (read, added to, written back). taps
 * is a constant where it is inlined, so the sums stay in registers. */
__attribute__((target("avx512f"), always_inline)) static inline void
wgrad_block(const Grid *r, const float *plane, const float *dy, float *sum, int taps) {
  __m512 acc[2][RT_DIRECT_MAX_TAPS];
  int64_t off[RT_DIRECT_MAX_TAPS];
#pragma GCC unroll 9
  for (int t = 0; t < taps; t++) {
    off[t] = t / r->kw * r->wg + t % r->kw;
    acc[0][t] = _mm512_loadu_ps(sum + 16 * t);
    acc[1][t] = _mm512_loadu_ps(sum + 16 * (taps + t));
  }
  int64_t ohw = r->oh * r->ow;
  for (int64_t oy = 0; oy < r->oh; oy++)
    for (int64_t x0 = 0; x0 < r->ow; x0 += 16) {
      __mmask16 m = rt_lanes(0, r->ow - x0);
      const float *d = dy + oy * r->ow + x0, *in = plane + oy * r->wg + x0;
      __m512 d0 = _mm512_maskz_loadu_ps(m, d), d1 = _mm512_maskz_loadu_ps(m, d + ohw);
#pragma GCC unroll 9
      for (int t = 0; t < taps; t++) {
        __m512 v = _mm512_maskz_loadu_ps(m, in + off[t]);
        acc[0][t] = _mm512_fmadd_ps(d0, v, acc[0][t]);
        acc[1][t] = _mm512_fmadd_ps(d1, v, acc[1][t]);
      }
    }
#pragma GCC unroll 9
  for (int t = 0; t < taps; t++) {
    _mm512_storeu_ps(sum + 16 * t, acc[0][t]);
    _mm512_storeu_ps(sum + 16 * (taps + t), acc[1][t]);
  }
}

typedef void WgradFn(const Grid *r, const float *plane, const float *dy, float *sum);
#define WGRAD(T)                                                                                             \
  __attribute__((target("avx512f"))) static void wgrad##T(const Grid *r, const float *plane, const float *dy, \
                                                         float *sum) {                                        \
    wgrad_block(r, plane, dy, sum, T);                                                                       \
  }
WGRAD(1)
WGRAD(2)
WGRAD(3)
WGRAD(4)
WGRAD(5)
WGRAD(6)
WGRAD(7)
WGRAD(8)
WGRAD(9)
static WgradFn *const wgrad[RT_DIRECT_MAX_TAPS + 1] = {NULL,   wgrad1, wgrad2, wgrad3, wgrad4,
                                                        wgrad5, wgrad6, wgrad7, wgrad8, wgrad9};

__attribute__((target("avx512f"))) static float sum16(const float *v) {
  return _mm512_reduce_add_ps(_mm512_loadu_ps(v));
}

void rt_rows_part(int dir, const int64_t *g, const float *a, const float *b, float *out, float *scratch, int64_t lo,
                  int64_t hi, float *dw) {
  Grid r = rt_grid(g, 0);
  int64_t xsz = r.src_c * r.src_h * r.src_w, ysz = r.oc * r.oh * r.ow, k = r.cin * r.taps;
  float *planes = scratch;
  if (dir == 0) {   /* a = x, b = w, out = y */
    for (int64_t i = lo; i < hi; i++) {
      rt_fill_planes(&r, a + i * xsz, planes);
      forward_image(&r, planes, b, out + i * ysz);
    }
    return;
  }
  /* the adjoint in w: a = x, b = dy; vector sums [o][c][taps][16], then
   * added into dw [O, C, KH, KW] (zeroed by the caller) */
  float *sums = planes + r.cin * r.plane;
  memset(sums, 0, sizeof(float) * (size_t)(r.oc * k * 16));
  for (int64_t i = lo; i < hi; i++) {
    rt_fill_planes(&r, a + i * xsz, planes);
    for (int64_t o0 = 0; o0 < r.oc; o0 += 2)
      for (int64_t c = 0; c < r.cin; c++)
        wgrad[r.taps](&r, planes + c * r.plane, b + i * ysz + o0 * r.oh * r.ow, sums + (o0 * r.cin + 2 * c) * r.taps * 16);
  }
  /* sums of the pair (o0, o0 + 1) and channel c: [2][taps][16] at (o0·c + 2c)·taps */
  for (int64_t o0 = 0; o0 < r.oc; o0 += 2)
    for (int64_t c = 0; c < r.cin; c++)
      for (int64_t j = 0; j < 2; j++)
        for (int64_t t = 0; t < r.taps; t++)
          dw[(o0 + j) * k + c * r.taps + t] += sum16(sums + ((o0 * r.cin + 2 * c + j) * r.taps + t) * 16);
}

#else   /* the compiler never picks RT_CONV_ROWS here (rt_avx512) */
void rt_rows_part(int dir, const int64_t *g, const float *a, const float *b, float *out, float *scratch, int64_t lo,
                  int64_t hi, float *dw) {
  (void)dir, (void)g, (void)a, (void)b, (void)out, (void)scratch, (void)lo, (void)hi, (void)dw;
}
#endif
