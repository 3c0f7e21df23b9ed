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
 * The input image is copied once into zero-padded planes, [C][hp·wp], so
 * that output pixel (oy, ox) reads tap (ky, kx) at (oy + ky)·wp + ox + kx:
 * a tap's 16 inputs are one unaligned load. The last vector of a row is
 * masked (a 28-pixel row is 16 + 12).
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

/* An image's sizes as the kernels see them. */
typedef struct {
  int64_t c, h, w;          /* the input image */
  int64_t o, oh, ow;        /* the output */
  int64_t kh, kw, taps, k;  /* the window; k = c·taps, a filter's weights */
  int64_t ph, pw;           /* zero padding before the image */
  int64_t hp, wp, plane;    /* a padded plane: oh + kh - 1 rows of ow + kw - 1 */
} Rows;

static Rows rows_of(const int64_t *g) {
  Rows r = {.c = g[RT_GEOM_C], .h = g[RT_GEOM_H], .w = g[RT_GEOM_W], .o = g[RT_GEOM_O], .oh = g[RT_GEOM_OH],
            .ow = g[RT_GEOM_OW], .kh = g[RT_GEOM_KH], .kw = g[RT_GEOM_KW], .ph = g[RT_GEOM_PH], .pw = g[RT_GEOM_PW]};
  r.taps = r.kh * r.kw, r.k = r.c * r.taps;
  r.hp = r.oh + r.kh - 1, r.wp = r.ow + r.kw - 1, r.plane = r.hp * r.wp;
  return r;
}

/* The zero-padded planes of one image. */
static void fill(const Rows *r, const float *img, float *planes) {
  for (int64_t c = 0; c < r->c; c++)
    for (int64_t i = 0; i < r->hp; i++) {
      float *row = planes + c * r->plane + i * r->wp;
      int64_t y = i - r->ph;
      memset(row, 0, sizeof(float) * (size_t)r->wp);
      if (y < 0 || y >= r->h) continue;
      /* columns j with 0 <= j - pw < w */
      int64_t j0 = r->pw, j1 = r->w + r->pw < r->wp ? r->w + r->pw : r->wp;
      if (j1 > j0) memcpy(row + j0, img + (c * r->h + y) * r->w, sizeof(float) * (size_t)(j1 - j0));
    }
}

/* The mask of the `left` pixels that remain from a vector's start (all 16
 * when at least 16 do, none when none do). */
static __mmask16 lanes(int64_t left) {
  return left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

/* Forward: output row oy, pixels [x0, x0 + 16·nv) (masks m[0], m[1]), output
 * channels [o0, o0 + 8). nv is 1 or 2, a constant where it is inlined. */
__attribute__((target("avx512f"), always_inline)) static inline void
forward_block(const Rows *r, const float *planes, const float *w, float *y, int64_t oy, int64_t x0, int64_t o0,
              const __mmask16 m[2], int nv) {
  __m512 acc[8][2];
#pragma GCC unroll 8
  for (int o = 0; o < 8; o++) acc[o][0] = acc[o][1] = _mm512_setzero_ps();
  for (int64_t c = 0; c < r->c; c++)
    for (int64_t ky = 0; ky < r->kh; ky++) {
      const float *in = planes + c * r->plane + (oy + ky) * r->wp + x0;
      const float *wt = w + o0 * r->k + c * r->taps + ky * r->kw;
      for (int64_t kx = 0; kx < r->kw; kx++) {
        __m512 v[2];
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) v[j] = _mm512_maskz_loadu_ps(m[j], in + kx + 16 * j);
#pragma GCC unroll 8
        for (int o = 0; o < 8; o++) {
          __m512 wv = _mm512_set1_ps(wt[o * r->k + kx]);
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

__attribute__((target("avx512f"))) static void forward_image(const Rows *r, const float *planes, const float *w,
                                                             float *y) {
  for (int64_t oy = 0; oy < r->oh; oy++)
    for (int64_t x0 = 0; x0 < r->ow; x0 += 32) {
      __mmask16 m[2] = {lanes(r->ow - x0), lanes(r->ow - x0 - 16)};
      for (int64_t o0 = 0; o0 < r->o; o0 += 8) {
        if (m[1]) forward_block(r, planes, w, y, oy, x0, o0, m, 2);
        else forward_block(r, planes, w, y, oy, x0, o0, m, 1);
      }
    }
}

/* Adjoint in w, one image: output channels o0 and o0 + 1 and input channel
 * c; sums [2][taps] vectors at `sum` (read, added to, written back). taps
 * is a constant where it is inlined, so the sums stay in registers. */
__attribute__((target("avx512f"), always_inline)) static inline void
wgrad_block(const Rows *r, const float *plane, const float *dy, float *sum, int taps) {
  __m512 acc[2][RT_DIRECT_MAX_TAPS];
  int64_t off[RT_DIRECT_MAX_TAPS];
#pragma GCC unroll 9
  for (int t = 0; t < taps; t++) {
    off[t] = t / r->kw * r->wp + t % r->kw;
    acc[0][t] = _mm512_loadu_ps(sum + 16 * t);
    acc[1][t] = _mm512_loadu_ps(sum + 16 * (taps + t));
  }
  int64_t ohw = r->oh * r->ow;
  for (int64_t oy = 0; oy < r->oh; oy++)
    for (int64_t x0 = 0; x0 < r->ow; x0 += 16) {
      __mmask16 m = lanes(r->ow - x0);
      const float *d = dy + oy * r->ow + x0, *in = plane + oy * r->wp + x0;
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

typedef void WgradFn(const Rows *r, const float *plane, const float *dy, float *sum);
#define WGRAD(T)                                                                                             \
  __attribute__((target("avx512f"))) static void wgrad##T(const Rows *r, const float *plane, const float *dy, \
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
  Rows r = rows_of(g);
  int64_t xsz = r.c * r.h * r.w, ysz = r.o * r.oh * r.ow;
  float *planes = scratch;
  if (dir == 0) {   /* a = x, b = w, out = y */
    for (int64_t i = lo; i < hi; i++) {
      fill(&r, a + i * xsz, planes);
      forward_image(&r, planes, b, out + i * ysz);
    }
    return;
  }
  /* the adjoint in w: a = x, b = dy; vector sums [o][c][taps][16], then
   * added into dw [O, C, KH, KW] (zeroed by the caller) */
  float *sums = planes + r.c * r.plane;
  memset(sums, 0, sizeof(float) * (size_t)(r.o * r.k * 16));
  for (int64_t i = lo; i < hi; i++) {
    fill(&r, a + i * xsz, planes);
    for (int64_t o0 = 0; o0 < r.o; o0 += 2)
      for (int64_t c = 0; c < r.c; c++)
        wgrad[r.taps](&r, planes + c * r.plane, b + i * ysz + o0 * r.oh * r.ow, sums + (o0 * r.c + 2 * c) * r.taps * 16);
  }
  /* sums of the pair (o0, o0 + 1) and channel c: [2][taps][16] at (o0·c + 2c)·taps */
  for (int64_t o0 = 0; o0 < r.o; o0 += 2)
    for (int64_t c = 0; c < r.c; c++)
      for (int64_t j = 0; j < 2; j++)
        for (int64_t t = 0; t < r.taps; t++)
          dw[(o0 + j) * r.k + c * r.taps + t] += sum16(sums + ((o0 * r.c + 2 * c + j) * r.taps + t) * 16);
}

#else   /* the compiler never picks RT_CONV_ROWS here (rt_avx512) */
void rt_rows_part(int dir, const int64_t *g, const float *a, const float *b, float *out, float *scratch, int64_t lo,
                  int64_t hi, float *dw) {
  (void)dir, (void)g, (void)a, (void)b, (void)out, (void)scratch, (void)lo, (void)hi, (void)dw;
}
#endif
