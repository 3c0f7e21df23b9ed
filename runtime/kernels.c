/*
 * kernels.c — convolution and pooling for compiled steps (see kernels.h).
 *
 * A convolution of one group is a matrix product once the input is
 * unrolled into columns (im2col): column p of `col` holds the
 * C/groups·KH·KW input values under output pixel p, and the columns of
 * CHUNK images sit side by side, so that
 *
 *     y[O/groups, CHUNK·OH·OW] = w[O/groups, C/groups·KH·KW] @ col[.., CHUNK·OH·OW]
 *
 * is one GEMM large enough for the BLAS's threads (one per image would be
 * too small for them on a 28×28 image); its result is then put in place
 * image by image. The two adjoints are the other two products of the same
 * matrices: dcol = wᵀ @ dy folded back into the images (col2im), and
 * dw += dy @ colᵀ.
 * A 1×1 convolution with stride 1 and no padding needs no columns: the
 * image is already the matrix. A depthwise convolution (one input channel
 * per group) would be a product of one row; it runs as a direct loop.
 * On a CPU with AVX-512, a convolution with whole vectors of output
 * channels and enough input channels runs in direct.c instead, without
 * columns (RT_CONV_VECTOR); a 3×3 one with stride 1 and few
 * channels by Winograd's F(2×2, 3×3) in winograd.c (RT_CONV_WINOGRAD).
 */
#include "runtime/kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  int64_t c, h, w, o, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups, method, chunk;
} Geom;

static Geom geom(const int64_t *g) {
  return (Geom){g[RT_GEOM_C], g[RT_GEOM_H], g[RT_GEOM_W], g[RT_GEOM_O], g[RT_GEOM_OH], g[RT_GEOM_OW],
                g[RT_GEOM_KH], g[RT_GEOM_KW], g[RT_GEOM_SH], g[RT_GEOM_SW], g[RT_GEOM_PH], g[RT_GEOM_PW],
                g[RT_GEOM_DH], g[RT_GEOM_DW], g[RT_GEOM_GROUPS], g[RT_GEOM_METHOD],
                g[RT_GEOM_CHUNK] > 0 ? g[RT_GEOM_CHUNK] : 1};
}

/* The output columns ox in [*lo, *hi) whose input column
 * ox·sw - pw + kx·dw falls inside the image (the rest read padding). */
static void valid_range(int64_t out, int64_t in, int64_t s, int64_t p, int64_t shift, int64_t *lo, int64_t *hi) {
  /* ox·s - p + shift >= 0  and  < in */
  int64_t a = p - shift, l = a <= 0 ? 0 : (a + s - 1) / s;
  int64_t b = in + p - shift, h = b <= 0 ? 0 : (b + s - 1) / s;
  *lo = l < out ? l : out;
  *hi = h < out ? h : out;
  if (*hi < *lo) *hi = *lo;
}

/* Columns of one group of one image: x [cg, H, W] -> col [cg·KH·KW, OH·OW]
 * with rows `ld` floats apart. */
static void im2col(const Geom *k, int64_t cg, const float *x, float *col, int64_t ld) {
  for (int64_t c = 0; c < cg; c++)
    for (int64_t ky = 0; ky < k->kh; ky++)
      for (int64_t kx = 0; kx < k->kw; kx++) {
        float *row = col + ((c * k->kh + ky) * k->kw + kx) * ld;
        const float *plane = x + c * k->h * k->w;
        int64_t lo, hi, shift = kx * k->dw - k->pw;
        valid_range(k->ow, k->w, k->sw, k->pw, kx * k->dw, &lo, &hi);
        for (int64_t oy = 0; oy < k->oh; oy++) {
          int64_t iy = oy * k->sh - k->ph + ky * k->dh;
          float *dst = row + oy * k->ow;
          if (iy < 0 || iy >= k->h) {
            memset(dst, 0, sizeof(float) * (size_t)k->ow);
            continue;
          }
          const float *src = plane + iy * k->w;   /* output column ox reads src[ox·sw + shift] */
          for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
          if (k->sw == 1 && hi > lo) memcpy(dst + lo, src + lo + shift, sizeof(float) * (size_t)(hi - lo));
          else
            for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * k->sw + shift];
          for (int64_t ox = hi; ox < k->ow; ox++) dst[ox] = 0.0f;
        }
      }
}

/* The adjoint of im2col: x [cg, H, W] += the columns folded back. */
static void col2im(const Geom *k, int64_t cg, const float *col, int64_t ld, float *x) {
  for (int64_t c = 0; c < cg; c++)
    for (int64_t ky = 0; ky < k->kh; ky++)
      for (int64_t kx = 0; kx < k->kw; kx++) {
        const float *row = col + ((c * k->kh + ky) * k->kw + kx) * ld;
        float *plane = x + c * k->h * k->w;
        int64_t lo, hi, shift = kx * k->dw - k->pw;
        valid_range(k->ow, k->w, k->sw, k->pw, kx * k->dw, &lo, &hi);
        for (int64_t oy = 0; oy < k->oh; oy++) {
          int64_t iy = oy * k->sh - k->ph + ky * k->dh;
          if (iy < 0 || iy >= k->h) continue;
          const float *src = row + oy * k->ow;
          float *dst = plane + iy * k->w;
          for (int64_t ox = lo; ox < hi; ox++) dst[ox * k->sw + shift] += src[ox];
        }
      }
}

static void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
              1.0f, A, (int)(lda > 0 ? lda : 1), B, (int)(ldb > 0 ? ldb : 1), beta, C, (int)(ldc > 0 ? ldc : 1));
}

/* The three directions of a depthwise convolution (C/groups = 1), as direct
 * loops: 0 forward, 1 adjoint in x, 2 adjoint in w. */
static void depthwise(int dir, const Geom *k, const float *x, const float *w, float *y, int64_t n) {
  int64_t per = k->o / k->groups;   /* output channels per input channel */
  for (int64_t i = 0; i < n; i++)
    for (int64_t o = 0; o < k->o; o++) {
      int64_t c = o / per;
      const float *xp = x + (i * k->c + c) * k->h * k->w;
      float *xg = (float *)xp;   /* the adjoint in x writes here */
      const float *wo = w + o * k->kh * k->kw;
      float *wg = (float *)wo;   /* the adjoint in w writes here */
      float *yp = y + (i * k->o + o) * k->oh * k->ow;
      for (int64_t oy = 0; oy < k->oh; oy++)
        for (int64_t ox = 0; ox < k->ow; ox++) {
          float acc = 0, g = dir ? yp[oy * k->ow + ox] : 0.0f;
          for (int64_t ky = 0; ky < k->kh; ky++) {
            int64_t iy = oy * k->sh - k->ph + ky * k->dh;
            if (iy < 0 || iy >= k->h) continue;
            for (int64_t kx = 0; kx < k->kw; kx++) {
              int64_t ix = ox * k->sw - k->pw + kx * k->dw;
              if (ix < 0 || ix >= k->w) continue;
              int64_t xi = iy * k->w + ix, wi = ky * k->kw + kx;
              if (dir == 0) acc += xp[xi] * wo[wi];
              else if (dir == 1) xg[xi] += g * wo[wi];
              else wg[wi] += g * xp[xi];
            }
          }
          if (dir == 0) yp[oy * k->ow + ox] = acc;
        }
    }
}

/* Copies between an image-major tensor t [n, C, P] (the images i0 ..
 * i0+m of channels g·og .. g·og+og) and a channel-major block b [og, m·P]. */
static void to_block(const float *t, float *b, int64_t i0, int64_t m, int64_t g, int64_t og, int64_t C, int64_t P) {
  for (int64_t o = 0; o < og; o++)
    for (int64_t j = 0; j < m; j++)
      memcpy(b + (o * m + j) * P, t + ((i0 + j) * C + g * og + o) * P, sizeof(float) * (size_t)P);
}

static void from_block(const float *b, float *t, int64_t i0, int64_t m, int64_t g, int64_t og, int64_t C, int64_t P) {
  for (int64_t o = 0; o < og; o++)
    for (int64_t j = 0; j < m; j++)
      memcpy(t + ((i0 + j) * C + g * og + o) * P, b + (o * m + j) * P, sizeof(float) * (size_t)P);
}

/* The columns of images i0 .. i0+m of group g, side by side: [K, m·P]. */
static void columns(const Geom *k, const float *x, int64_t i0, int64_t m, int64_t g, float *col) {
  int64_t cg = k->c / k->groups, P = k->oh * k->ow;
  for (int64_t j = 0; j < m; j++) im2col(k, cg, x + ((i0 + j) * k->c + g * cg) * k->h * k->w, col + j * P, m * P);
}

/* A call's images are split in RT_PARTS parts, run at once on the step's
 * two threads (parts.c): two single-threaded GEMMs side by side, and the
 * image loops (im2col, col2im, pooling) on both cores too. With one
 * thread, the step's thread runs both parts. */

/* ---- convolutions --------------------------------------------------------------- */

/* One call of a convolution kernel: dir 0 forward (a = x, b = w, out =
 * y), 1 the adjoint in x (a = dy, b = w, out = dx), 2 the adjoint in w
 * (a = x, b = dy, out = dw). */
typedef struct {
  Geom k;
  const int64_t *g;
  int dir;
  const float *a, *b;
  float *out, *scratch;
  int64_t n;
} Conv;

/* Where a call's parts keep their columns (per part, `chunk` images) and
 * the second part's share of a filter gradient. */
static int64_t part_chunk(const Geom *k, int64_t n) {
  int64_t per_part = rt_part_images(n);
  return k->chunk < per_part ? k->chunk : per_part;
}

/* Part `part` of a convolution: its images [lo, hi), its own columns in
 * the scratch, and, for the filter gradient, its own sum (part 0 the
 * output, part 1 the scratch after the columns). */
static void conv_part(void *arg, int part) {
  const Conv *cv = arg;
  const Geom *k = &cv->k;
  int64_t per_part = rt_part_images(cv->n), lo = part * per_part, hi = lo + per_part < cv->n ? lo + per_part : cv->n;
  int64_t cg = k->c / k->groups, og = k->o / k->groups, K = cg * k->kh * k->kw, P = k->oh * k->ow;
  int64_t chunk = part_chunk(k, cv->n), per_image = k->method == RT_CONV_IM2COL ? (K + og) * P : 0;
  /* only im2col has columns; only the filter gradient a second sum */
  float *col = per_image ? cv->scratch + part * per_image * chunk : NULL, *blk = col ? col + K * chunk * P : NULL;
  float *dw = cv->dir != 2 ? NULL : part == 0 ? cv->out : cv->scratch + rt_conv_shared(cv->g, 2) + RT_PARTS * rt_conv_part_scratch(cv->g, 2, cv->n);
  if (dw) memset(dw, 0, sizeof(float) * (size_t)(k->o * K));
  if (hi <= lo) return;
  if (k->method == RT_CONV_VECTOR || k->method == RT_CONV_ROWS || k->method == RT_CONV_WINOGRAD) {
    /* what the parts share first (packed weights), then each part's own */
    float *own = cv->scratch + rt_conv_shared(cv->g, cv->dir) + part * rt_conv_part_scratch(cv->g, cv->dir, cv->n);
    if (k->method == RT_CONV_ROWS) rt_rows_part(cv->dir, cv->g, cv->a, cv->b, cv->out, own, lo, hi, dw);
    else if (k->method == RT_CONV_WINOGRAD)
      rt_winograd_part(cv->dir, cv->g, cv->a, cv->b, cv->out, cv->scratch, own, lo, hi, dw);
    else rt_direct_part(cv->dir, cv->g, cv->a, cv->b, cv->out, cv->scratch, own, lo, hi, dw);
    return;
  }
  int64_t xsz = k->c * k->h * k->w, ysz = k->o * P;
  if (cv->dir == 1) memset(cv->out + lo * xsz, 0, sizeof(float) * (size_t)((hi - lo) * xsz));
  if (k->method == RT_CONV_DIRECT) {
    if (cv->dir == 0) depthwise(0, k, cv->a + lo * xsz, cv->b, cv->out + lo * ysz, hi - lo);
    else if (cv->dir == 1) depthwise(1, k, cv->out + lo * xsz, cv->b, (float *)cv->a + lo * ysz, hi - lo);
    else depthwise(2, k, cv->a + lo * xsz, dw, (float *)cv->b + lo * ysz, hi - lo);
    return;
  }
  if (k->method == RT_CONV_GEMM) {   /* 1×1: the image is its own columns */
    for (int64_t i = lo; i < hi; i++)
      for (int64_t g = 0; g < k->groups; g++) {
        if (cv->dir == 0)
          sgemm(false, false, og, P, K, cv->b + g * og * K, K, cv->a + (i * k->c + g * cg) * P, P, 0.0f,
                cv->out + (i * k->o + g * og) * P, P);
        else if (cv->dir == 1)
          sgemm(true, false, K, P, og, cv->b + g * og * K, K, cv->a + (i * k->o + g * og) * P, P, 0.0f,
                cv->out + (i * k->c + g * cg) * P, P);
        else
          sgemm(false, true, og, K, P, cv->b + (i * k->o + g * og) * P, P, cv->a + (i * k->c + g * cg) * P, P, 1.0f,
                dw + g * og * K, K);
      }
    return;
  }
  for (int64_t i0 = lo; i0 < hi; i0 += chunk) {
    int64_t m = hi - i0 < chunk ? hi - i0 : chunk;
    for (int64_t g = 0; g < k->groups; g++) {
      /* one image's block [og, P] is where it sits in the tensor: no copy */
      float *own = m == 1 ? NULL : blk;
      if (cv->dir == 0) {
        columns(k, cv->a, i0, m, g, col);
        float *y = own ? own : cv->out + (i0 * k->o + g * og) * P;
        sgemm(false, false, og, m * P, K, cv->b + g * og * K, K, col, m * P, 0.0f, y, m * P);
        if (own) from_block(own, cv->out, i0, m, g, og, k->o, P);
      } else if (cv->dir == 1) {
        const float *dy = own ? own : cv->a + (i0 * k->o + g * og) * P;
        if (own) to_block(cv->a, own, i0, m, g, og, k->o, P);
        sgemm(true, false, K, m * P, og, cv->b + g * og * K, K, dy, m * P, 0.0f, col, m * P);
        for (int64_t j = 0; j < m; j++)   /* the columns folded back into each image of the group */
          col2im(k, cg, col + j * P, m * P, cv->out + ((i0 + j) * k->c + g * cg) * k->h * k->w);
      } else {
        columns(k, cv->a, i0, m, g, col);
        const float *dy = own ? own : cv->b + (i0 * k->o + g * og) * P;
        if (own) to_block(cv->b, own, i0, m, g, og, k->o, P);
        sgemm(false, true, og, K, m * P, dy, m * P, col, m * P, 1.0f, dw + g * og * K, K);
      }
    }
  }
}

static void conv(int dir, const float *a, const float *b, float *out, float *scratch, int64_t n, const int64_t *gp) {
  Conv cv = {.k = geom(gp), .g = gp, .dir = dir, .a = a, .b = b, .out = out, .scratch = scratch, .n = n};
  if (cv.k.method == RT_CONV_VECTOR) rt_direct_pack(dir, gp, b, scratch);
  if (cv.k.method == RT_CONV_WINOGRAD) rt_winograd_pack(dir, gp, b, scratch);
  rt_run_parts(conv_part, &cv);
  if (dir == 2) {   /* the second part's share of the filter gradient */
    const Geom *k = &cv.k;
    int64_t K = k->c / k->groups * k->kh * k->kw;
    const float *second = scratch + rt_conv_shared(gp, 2) + RT_PARTS * rt_conv_part_scratch(gp, 2, n);
    for (int64_t i = 0; i < k->o * K; i++) out[i] += second[i];
  }
}

void nnc_conv2d(const float *x, const float *w, float *y, float *scratch, int64_t n, const int64_t *gp) {
  conv(0, x, w, y, scratch, n, gp);
}

void nnc_conv2d_bwd_x(const float *dy, const float *w, float *dx, float *scratch, int64_t n, const int64_t *gp) {
  conv(1, dy, w, dx, scratch, n, gp);
}

void nnc_conv2d_bwd_w(const float *x, const float *dy, float *dw, float *scratch, int64_t n, const int64_t *gp) {
  conv(2, x, dy, dw, scratch, n, gp);
}

/* ---- pooling ------------------------------------------------------------ */

/* The window of output pixel (oy, ox), clipped to the image: rows
 * [*y0, *y1), columns [*x0, *x1); returns the count PyTorch divides by. */
static int64_t window(const Geom *k, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1) {
  if (k->method == RT_POOL_ADAPTIVE) {
    *y0 = oy * k->h / k->oh, *y1 = ((oy + 1) * k->h + k->oh - 1) / k->oh;
    *x0 = ox * k->w / k->ow, *x1 = ((ox + 1) * k->w + k->ow - 1) / k->ow;
    return (*y1 - *y0) * (*x1 - *x0);
  }
  int64_t ya = oy * k->sh - k->ph, xa = ox * k->sw - k->pw;
  int64_t yb = ya + k->kh, xb = xa + k->kw;
  int64_t count = (yb < k->h + k->ph ? yb : k->h + k->ph) - ya;   /* padding counts, the image's far edge pad too */
  count *= (xb < k->w + k->pw ? xb : k->w + k->pw) - xa;
  *y0 = ya < 0 ? 0 : ya, *y1 = yb > k->h ? k->h : yb;
  *x0 = xa < 0 ? 0 : xa, *x1 = xb > k->w ? k->w : xb;
  return count;
}

/* Whether the windows are 2×2 with stride 2 and no padding: the usual
 * pooling, with a loop of its own (every window lies inside the image). */
static bool two_by_two(const Geom *k) {
  return k->method == RT_POOL_WINDOW && k->kh == 2 && k->kw == 2 && k->sh == 2 && k->sw == 2 && k->ph == 0 &&
         k->pw == 0;
}

/* The index (in the plane) of the first maximum of a window, or -1. */
static int64_t argmax_window(const Geom *k, const float *plane, int64_t oy, int64_t ox) {
  int64_t y0, y1, x0, x1, best = -1;
  window(k, oy, ox, &y0, &y1, &x0, &x1);
  float m = -INFINITY;
  for (int64_t iy = y0; iy < y1; iy++)
    for (int64_t ix = x0; ix < x1; ix++) {
      float v = plane[iy * k->w + ix];
      if (best < 0 || v > m || (v != v && m == m)) m = v, best = iy * k->w + ix;   /* NaN wins, as in PyTorch */
    }
  return best;
}

/* What a pooling loop reads and writes. */
typedef struct {
  const Geom *k;
  const float *a, *b;
  float *out;
  int op;
} Job;

/* The pooling loops, over n image planes of a Job. */
enum { POOL_MAX, POOL_MAX_BWD, POOL_MAX_PICK, POOL_AVG, POOL_AVG_BWD };

/* The maximum of a window of four, branch-free (maxss), with a NaN among
 * them propagating, as in PyTorch (a branch taken almost never). With
 * random data a branch per comparison would be mispredicted half the time:
 * several times slower than the loads. */
static inline float max4(float a, float b, float c, float d) {
  float ab = b > a ? b : a, cd = d > c ? d : c, m = cd > ab ? cd : ab;
  bool nan = (a != a) | (b != b) | (c != c) | (d != d);
  return nan ? a + b + c + d : m;
}
/* x is the maximum m (both NaN counts). */
static inline bool same(float x, float m) { return (x == m) | ((x != x) & (m != m)); }
/* v where t holds, else 0, by masking its bits (branch-free, exact). */
static inline float keep(float v, bool t) {
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  u &= 0u - (uint32_t)t;
  memcpy(&v, &u, sizeof v);
  return v;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_POOLING 1

/* One row of 2×2 windows (rows r0 and r1 of the input), forward (o: the
 * row of maxima) or backward (g: their gradients, spread into rows d0 and
 * d1), 16 windows a vector, the last ones masked. Exactly the scalar
 * loop's arithmetic: the same comparisons in the same order, NaN first. */
__attribute__((target("avx512f"))) static void max2x2_row_avx512(int op, const float *r0, const float *r1,
                                                                 const float *g, float *o, float *d1, int64_t OW) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t ox = 0; ox < OW; ox += 16) {
    int64_t left = OW - ox < 16 ? OW - ox : 16;   /* windows in this vector */
    __mmask16 m = (__mmask16)((1u << left) - 1);
    /* the 2·left input floats of each row: the first 16, then the rest */
    __mmask16 m0 = (__mmask16)(left >= 8 ? 0xffffu : (1u << (2 * left)) - 1);
    __mmask16 m1 = (__mmask16)(left > 8 ? (1u << (2 * left - 16)) - 1 : 0);
    const float *p0 = r0 + 2 * ox, *p1 = r1 + 2 * ox;
    __m512 x0 = _mm512_maskz_loadu_ps(m0, p0), x1 = _mm512_maskz_loadu_ps(m1, p0 + 16);
    __m512 y0 = _mm512_maskz_loadu_ps(m0, p1), y1 = _mm512_maskz_loadu_ps(m1, p1 + 16);
    __m512 a = _mm512_permutex2var_ps(x0, even, x1), b = _mm512_permutex2var_ps(x0, odd, x1);
    __m512 e = _mm512_permutex2var_ps(y0, even, y1), f = _mm512_permutex2var_ps(y0, odd, y1);
    /* max4: ab = b > a ? b : a, cd = f > e ? f : e, mx = cd > ab ? cd : ab; a NaN makes the sum */
    __m512 ab = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, a, _CMP_GT_OQ), a, b);
    __m512 cd = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(f, e, _CMP_GT_OQ), e, f);
    __m512 mx = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(cd, ab, _CMP_GT_OQ), ab, cd);
    __mmask16 nan = _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(e, f, _CMP_UNORD_Q);
    mx = _mm512_mask_blend_ps(nan, mx, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), e), f));
    if (op == POOL_MAX) {
      _mm512_mask_storeu_ps(o + ox, m, mx);
      continue;
    }
    /* same(x, mx): equal, or both NaN */
    __mmask16 mnan = _mm512_cmp_ps_mask(mx, mx, _CMP_UNORD_Q);
    __mmask16 t0 = _mm512_cmp_ps_mask(a, mx, _CMP_EQ_OQ) | (_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) & mnan);
    __mmask16 t1 = (__mmask16)(~t0 & (_mm512_cmp_ps_mask(b, mx, _CMP_EQ_OQ) | (_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q) & mnan)));
    __mmask16 t2 = (__mmask16)(~t0 & ~t1 & (_mm512_cmp_ps_mask(e, mx, _CMP_EQ_OQ) | (_mm512_cmp_ps_mask(e, e, _CMP_UNORD_Q) & mnan)));
    __mmask16 t3 = (__mmask16)(~(t0 | t1 | t2));
    __m512 v = _mm512_maskz_loadu_ps(m, g + ox);
    __m512 va = _mm512_maskz_mov_ps(t0, v), vb = _mm512_maskz_mov_ps(t1, v);
    __m512 ve = _mm512_maskz_mov_ps(t2, v), vf = _mm512_maskz_mov_ps(t3, v);
    float *q0 = o + 2 * ox, *q1 = d1 + 2 * ox;
    _mm512_mask_storeu_ps(q0, m0, _mm512_permutex2var_ps(va, lo, vb));
    _mm512_mask_storeu_ps(q0 + 16, m1, _mm512_permutex2var_ps(va, hi, vb));
    _mm512_mask_storeu_ps(q1, m0, _mm512_permutex2var_ps(ve, lo, vf));
    _mm512_mask_storeu_ps(q1 + 16, m1, _mm512_permutex2var_ps(ve, hi, vf));
  }
}

/* A load of libgcc's CPU model (set before main), so no cache of our own:
 * both parts' threads ask at once. */
static bool avx512(void) { return __builtin_cpu_supports("avx512f"); }
#else
#define HAVE_AVX512_POOLING 0
#endif

/* 2×2 max pooling with stride 2 and no padding, forward, backward or
 * picking: the usual case, as straight loops over pairs of rows. The first
 * maximum of a window wins, as in argmax_window. With AVX-512, the
 * forward and backward rows run 16 windows at a time. */
static void max2x2_planes(const Job *jb, int64_t n) {
  const Geom *k = jb->k;
  int64_t W = k->w, HW = k->h * k->w, OW = k->ow, OHW = k->oh * k->ow;
  for (int64_t p = 0; p < n; p++) {
    const float *plane = jb->a + p * HW;
    float *out = jb->out + (jb->op == POOL_MAX_BWD ? p * HW : p * OHW);
    /* the windows cover the plane but an odd last row or column */
    if (jb->op == POOL_MAX_BWD && (k->h % 2 || k->w % 2)) memset(out, 0, sizeof(float) * (size_t)HW);
    for (int64_t oy = 0; oy < k->oh; oy++) {
      const float *r0 = plane + 2 * oy * W, *r1 = r0 + W;
#if HAVE_AVX512_POOLING
      if (jb->op != POOL_MAX_PICK && avx512()) {
        if (jb->op == POOL_MAX) max2x2_row_avx512(POOL_MAX, r0, r1, NULL, out + oy * OW, NULL, OW);
        else max2x2_row_avx512(POOL_MAX_BWD, r0, r1, jb->b + p * OHW + oy * OW, out + 2 * oy * W,
                               out + 2 * oy * W + W, OW);
        continue;
      }
#endif
      if (jb->op == POOL_MAX) {
        float *o = out + oy * OW;
        for (int64_t ox = 0; ox < OW; ox++) o[ox] = max4(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
        continue;
      }
      const float *g = jb->b + (jb->op == POOL_MAX_BWD ? p * OHW + oy * OW : p * HW + 2 * oy * W);
      float *d0 = out + (jb->op == POOL_MAX_BWD ? 2 * oy * W : oy * OW), *d1 = d0 + W;
      for (int64_t ox = 0; ox < OW; ox++) {
        int64_t c = 2 * ox;
        float a = r0[c], b = r0[c + 1], e = r1[c], f = r1[c + 1], m = max4(a, b, e, f);
        bool t0 = same(a, m), t1 = (!t0) & same(b, m), t2 = (!t0) & (!t1) & same(e, m), t3 = (!t0) & (!t1) & (!t2);
        if (jb->op == POOL_MAX_BWD) {
          float v = g[ox];
          d0[c] = keep(v, t0), d0[c + 1] = keep(v, t1), d1[c] = keep(v, t2), d1[c + 1] = keep(v, t3);
        } else {
          d0[ox] = keep(g[c], t0) + keep(g[c + 1], t1) + keep(g[W + c], t2) + keep(g[W + c + 1], t3);
        }
      }
    }
  }
}

static void pool_planes(const Job *jb, int64_t n) {
  const Geom *k = jb->k;
  if (two_by_two(k) && (jb->op == POOL_MAX || jb->op == POOL_MAX_BWD || jb->op == POOL_MAX_PICK)) {
    max2x2_planes(jb, n);
    return;
  }
  int64_t HW = k->h * k->w, OHW = k->oh * k->ow;
  for (int64_t p = 0; p < n; p++) {
    const float *plane = jb->a + (jb->op == POOL_AVG_BWD ? 0 : p * HW);
    float *out = jb->out + (jb->op == POOL_MAX_BWD || jb->op == POOL_AVG_BWD ? p * HW : p * OHW);
    if (jb->op == POOL_MAX_BWD || jb->op == POOL_AVG_BWD) memset(out, 0, sizeof(float) * (size_t)HW);
    for (int64_t oy = 0; oy < k->oh; oy++)
      for (int64_t ox = 0; ox < k->ow; ox++) {
        int64_t o = oy * k->ow + ox;
        if (jb->op == POOL_MAX || jb->op == POOL_MAX_BWD || jb->op == POOL_MAX_PICK) {
          int64_t at = argmax_window(k, plane, oy, ox);
          if (jb->op == POOL_MAX) out[o] = at >= 0 ? plane[at] : -INFINITY;
          else if (jb->op == POOL_MAX_BWD) {
            if (at >= 0) out[at] += jb->b[p * OHW + o];
          } else {
            out[o] = at >= 0 ? jb->b[p * HW + at] : 0.0f;
          }
          continue;
        }
        int64_t y0, y1, x0, x1, count = window(k, oy, ox, &y0, &y1, &x0, &x1);
        if (jb->op == POOL_AVG) {
          float sum = 0;
          for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) sum += plane[iy * k->w + ix];
          out[o] = count > 0 ? sum / (float)count : 0.0f;
        } else if (count > 0) {
          float share = jb->a[p * OHW + o] / (float)count;
          for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) out[iy * k->w + ix] += share;
        }
      }
  }
}

/* A pooling call, its planes split in parts as a convolution's images. */
typedef struct {
  Geom k;
  int op;
  const float *a, *b;
  float *out;
  int64_t n;
} Pool;

static void pool_part(void *arg, int part) {
  const Pool *pl = arg;
  int64_t per_part = rt_part_images(pl->n), lo = part * per_part, hi = lo + per_part < pl->n ? lo + per_part : pl->n;
  if (hi <= lo) return;
  /* each operand's floats per plane: an image's (HW) or a window grid's (OHW) */
  int64_t HW = pl->k.h * pl->k.w, OHW = pl->k.oh * pl->k.ow;
  int64_t sa = pl->op == POOL_AVG_BWD ? OHW : HW, sb = pl->op == POOL_MAX_BWD ? OHW : HW;
  int64_t so = pl->op == POOL_MAX_BWD || pl->op == POOL_AVG_BWD ? HW : OHW;
  Job jb = {.k = &pl->k, .a = pl->a + lo * sa, .b = pl->b ? pl->b + lo * sb : NULL, .out = pl->out + lo * so,
            .op = pl->op};
  pool_planes(&jb, hi - lo);
}

static void pool(int op, const float *a, const float *b, float *out, int64_t n, const int64_t *gp) {
  Pool pl = {.k = geom(gp), .op = op, .a = a, .b = b, .out = out, .n = n};
  rt_run_parts(pool_part, &pl);
}

void nnc_maxpool2d(const float *x, const float *unused, float *y, float *scratch, int64_t n, const int64_t *gp) {
  (void)unused, (void)scratch;
  pool(POOL_MAX, x, NULL, y, n, gp);
}

void nnc_maxpool2d_bwd(const float *x, const float *dy, float *dx, float *scratch, int64_t n, const int64_t *gp) {
  (void)scratch;
  pool(POOL_MAX_BWD, x, dy, dx, n, gp);
}

void nnc_maxpool2d_pick(const float *x, const float *h, float *y, float *scratch, int64_t n, const int64_t *gp) {
  (void)scratch;
  pool(POOL_MAX_PICK, x, h, y, n, gp);
}

void nnc_avgpool2d(const float *x, const float *unused, float *y, float *scratch, int64_t n, const int64_t *gp) {
  (void)unused, (void)scratch;
  pool(POOL_AVG, x, NULL, y, n, gp);
}

void nnc_avgpool2d_bwd(const float *dy, const float *unused, float *dx, float *scratch, int64_t n, const int64_t *gp) {
  (void)unused, (void)scratch;
  pool(POOL_AVG_BWD, dy, NULL, dx, n, gp);
}

/* ---- slicing ---------------------------------------------------------------- */

/* Rows of INNER floats: y's row j of block p is x's row START + j·STEP. */
void nnc_slice(const float *x, const float *unused, float *y, float *scratch, int64_t n, const int64_t *g) {
  (void)unused, (void)scratch;
  int64_t len = g[RT_SLICE_LEN], out = g[RT_SLICE_OUT], inner = g[RT_SLICE_INNER];
  int64_t start = g[RT_SLICE_START], step = g[RT_SLICE_STEP];
  for (int64_t p = 0; p < n; p++)
    for (int64_t j = 0; j < out; j++)
      memcpy(y + (p * out + j) * inner, x + (p * len + start + j * step) * inner, sizeof(float) * (size_t)inner);
}

void nnc_slice_bwd(const float *dy, const float *unused, float *dx, float *scratch, int64_t n, const int64_t *g) {
  (void)unused, (void)scratch;
  int64_t len = g[RT_SLICE_LEN], out = g[RT_SLICE_OUT], inner = g[RT_SLICE_INNER];
  int64_t start = g[RT_SLICE_START], step = g[RT_SLICE_STEP];
  memset(dx, 0, sizeof(float) * (size_t)(n * len * inner));
  for (int64_t p = 0; p < n; p++)
    for (int64_t j = 0; j < out; j++)
      memcpy(dx + (p * len + start + j * step) * inner, dy + (p * out + j) * inner, sizeof(float) * (size_t)inner);
}

/* ---- per-kernel timing ---------------------------------------------------- */

/* The profiler's table: process-wide, written only by the thread running a
 * step (and only in a step compiled for profiling). */
static double prof_seconds[RT_PROF_MAX];
static struct timespec prof_start;

static double elapsed(const struct timespec *a, const struct timespec *b) {
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

void nnc_prof_begin(int64_t k) {
  (void)k;
  clock_gettime(CLOCK_MONOTONIC, &prof_start);
}

void nnc_prof_end(int64_t k) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (k >= 0 && k < RT_PROF_MAX) prof_seconds[k] += elapsed(&prof_start, &now);
}

void nnc_prof_reset(void) { memset(prof_seconds, 0, sizeof prof_seconds); }

double nnc_prof_seconds(int64_t k) { return k >= 0 && k < RT_PROF_MAX ? prof_seconds[k] : 0; }
