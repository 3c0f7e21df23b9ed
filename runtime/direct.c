/*
 * direct.c — convolutions computed directly, 16 output channels a vector
 * (AVX-512), without im2col's columns (see kernels.h, RT_CONV_VECTOR).
 *
 * im2col copies every input value KH·KW times into columns, and the BLAS
 * then packs those columns once more before it multiplies: on a 14×14
 * image with 32 channels about half a convolution's time went to those
 * copies. Here the input is copied once, into zero-padded planes, and each
 * output pixel reads its window from them in place.
 *
 * The grid. An image's planes are laid out [cin][hg·wg] with the padding
 * already in them, so that output pixel (oy, ox) of a stride-1 convolution
 * reads tap (ky, kx) at plane offset (oy + ky)·wg + ox + kx. Numbering the
 * output pixels on the same grid, p = oy·wg + ox, that offset is p + ky·wg
 * + kx: one offset per tap, whatever the pixel, so a block of pixels may
 * run along the grid regardless of where rows end, the wg - OW columns
 * past each output row computed and thrown away; or row by row, when the
 * block divides the rows (row_blocks takes whichever computes less).
 *
 * Stride s. The padded image is split into s·s phase planes, plane (c, a,
 * b) holding rows a, a+s, ... and columns b, b+s, ...; a stride-s
 * convolution with a KH×KW window is then a stride-1 convolution over
 * C·s·s planes with a ⌈KH/s⌉×⌈KW/s⌉ window (the taps past the window
 * weigh 0). A 4×4 stride-2 convolution becomes a 2×2 one over 4C planes.
 *
 * The kernel. A block of 14 pixels by 2 vectors of 16 output channels (7
 * by 4 on rows of 7) keeps 28 sums in registers; for each plane and tap
 * it loads the weight vectors and broadcasts each pixel's input value into
 * a multiply-add per vector. The block is then transposed, 16×16 in
 * registers, into the [O, OH, OW] output.
 *
 * The three directions:
 *   forward   y = conv(x, w): the grid above, over x's planes.
 *   adjoint in x: with stride 1, dx = conv(dy padded by KH-1-ph, KW-1-pw,
 *             w flipped and transposed): the same kernel, over dy's
 *             planes. With stride s, each of the s·s phases of dx (rows
 *             a, a+s, ..., columns b, b+s, ...) is such a convolution of
 *             dy with the taps of the flipped window in that phase
 *             (⌈KH/s⌉×⌈KW/s⌉ of them), put in place after: a transposed
 *             convolution without the zeros a dilated dy would multiply.
 *   adjoint in w: dw[o, plane, tap] = Σ_images Σ_p dy[o, p] · plane[p +
 *             tap]: dy is transposed to [p, O] on the grid (zero on the
 *             thrown-away columns), and a plane's taps accumulate in
 *             registers over every pixel.
 *
 * Built only where GCC targets x86-64; the compiler picks RT_CONV_VECTOR
 * only when the CPU has AVX-512 (rt_avx512).
 */
#include "runtime/direct.h"

#include <stdbool.h>
#include <string.h>

enum { XB = RT_DIRECT_PIXELS, MAX_TAPS = RT_DIRECT_MAX_TAPS };
typedef RtGrid Grid;

static Grid grid(const int64_t *g, int dir) { return rt_grid(g, dir); }

#if RT_HAVE_AVX512
#include <immintrin.h>

/* A padded row of wg floats: in[j] for j in [j0, j1), zero elsewhere, 16
 * at a time (masked lanes are neither read nor written). */
__attribute__((target("avx512f"))) static void copy_row(float *row, const float *in, int64_t j0, int64_t j1,
                                                        int64_t wg) {
  for (int64_t j = 0; j < wg; j += 16) {
    __m512 v = _mm512_maskz_loadu_ps(rt_lanes(j0 - j, j1 - j), in + j);
    _mm512_mask_storeu_ps(row + j, rt_lanes(0, wg - j), v);
  }
}

/* The planes of one image: [cin][hg·wg], zero outside the image. */
void rt_fill_planes(const Grid *q, const float *src, float *planes) {
  for (int64_t c = 0; c < q->src_c; c++)
    for (int64_t a = 0; a < q->s; a++)
      for (int64_t b = 0; b < q->s; b++) {
        float *pl = planes + ((c * q->s + a) * q->s + b) * q->plane;
        const float *img = src + c * q->src_h * q->src_w;
        /* the columns j with 0 <= j·s + b - pl < src_w: [j0, j1) */
        int64_t j0 = q->pl - b <= 0 ? 0 : (q->pl - b + q->s - 1) / q->s;
        int64_t j1 = q->src_w + q->pl - b <= 0 ? 0 : (q->src_w + q->pl - b + q->s - 1) / q->s;
        if (j1 > q->wg) j1 = q->wg;
        if (j0 > j1) j0 = j1;
        for (int64_t i = 0; i < q->hg; i++) {
          float *row = pl + i * q->wg;
          int64_t r = i * q->s + a - q->pt;   /* the source row */
          if (r < 0 || r >= q->src_h) {
            memset(row, 0, sizeof(float) * (size_t)q->wg);
            continue;
          }
          const float *in = img + r * q->src_w + b - q->pl;   /* column j reads in[j·s] */
          if (q->s == 1) {
            copy_row(row, in, j0, j1, q->wg);
            continue;
          }
          for (int64_t j = 0; j < j0; j++) row[j] = 0.0f;
          for (int64_t j = j0; j < j1; j++) row[j] = in[j * q->s];
          for (int64_t j = j1; j < q->wg; j++) row[j] = 0.0f;
        }
      }
}

/* The weights as the kernel reads them, [oc/vb][cin][taps][vb] (the last
 * block of 16 channels alone when oc is not a multiple of vb): forward,
 * w [O, C, KH, KW] split into phases; for the adjoint in x, phase (a, b) =
 * ((dir - 1) / s, (dir - 1) % s) of w flipped and transposed. Taps past the
 * window weigh 0. */
static void pack_weights(const Grid *q, const int64_t *g, int dir, const float *w, float *wp) {
  int64_t C = g[RT_GEOM_C], KH = g[RT_GEOM_KH], KW = g[RT_GEOM_KW], s = q->s, ksz = KH * KW;
  for (int64_t o0 = 0; o0 < q->oc; o0 += q->vb) {
    int64_t vb = q->oc - o0 < q->vb ? q->oc - o0 : q->vb;
    float *blk = wp + o0 * q->cin * q->taps;   /* [cin][taps][vb] */
    for (int64_t ci = 0; ci < q->cin; ci++) {
      int64_t c = ci / (s * s), pa = ci / s % s, pb = ci % s;   /* the plane's channel and phase */
      for (int64_t ky = 0; ky < q->kh; ky++)
        for (int64_t kx = 0; kx < q->kw; kx++) {
          float *dst = blk + ((ci * q->kh + ky) * q->kw + kx) * vb;
          if (dir > 0) {   /* out channel o0 + v is x's channel; plane ci is dy's channel */
            int64_t gs = g[RT_GEOM_SH], a = (dir - 1) / gs, b = (dir - 1) % gs;
            int64_t wy = gs * (q->kh - 1 - ky) + a, wx = gs * (q->kw - 1 - kx) + b;
            const float *src = w + (ci * C + o0) * ksz + wy * KW + wx;
            for (int64_t v = 0; v < vb; v++) dst[v] = wy < KH && wx < KW ? src[v * ksz] : 0.0f;
            continue;
          }
          int64_t wy = ky * s + pa, wx = kx * s + pb;
          const float *src = w + (o0 * C + c) * ksz + wy * KW + wx;
          for (int64_t v = 0; v < vb; v++) dst[v] = wy < KH && wx < KW ? src[v * C * ksz] : 0.0f;
        }
    }
  }
}

/* One block: acc[j][v] = Σ_plane Σ_tap wp[plane][tap][v] · in[plane][j +
 * off[tap]] for the NX pixels at `in`, into tile [NX][16·V]. */
#define BLOCK_KERNEL(NAME, NX, V)                                                                           \
  __attribute__((target("avx512f"))) static void NAME(const Grid *q, const int64_t *off, const float *in,     \
                                                      const float *wp, float *tile) {                         \
    __m512 acc[NX][V];                                                                                       \
    _Pragma("GCC unroll 14") for (int j = 0; j < NX; j++) _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) \
        acc[j][v] = _mm512_setzero_ps();                                                                     \
    for (int64_t ci = 0; ci < q->cin; ci++, in += q->plane)                                                  \
      for (int64_t t = 0; t < q->taps; t++, wp += 16 * V) {                                                  \
        const float *x = in + off[t];                                                                        \
        __m512 w[V];                                                                                         \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) w[v] = _mm512_loadu_ps(wp + 16 * v);             \
        _Pragma("GCC unroll 14") for (int j = 0; j < NX; j++) {                                              \
          __m512 b = _mm512_set1_ps(x[j]);                                                                   \
          _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) acc[j][v] = _mm512_fmadd_ps(w[v], b, acc[j][v]); \
        }                                                                                                    \
      }                                                                                                      \
    _Pragma("GCC unroll 14") for (int j = 0; j < NX; j++) _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) \
        _mm512_storeu_ps(tile + (j * V + v) * 16, acc[j][v]);                                                \
  }
BLOCK_KERNEL(block14x2, 14, 2)
BLOCK_KERNEL(block14x1, 14, 1)
BLOCK_KERNEL(block7x4, 7, 4)
BLOCK_KERNEL(block7x2, 7, 2)
BLOCK_KERNEL(block7x1, 7, 1)

void rt_direct_block(const Grid *q, const int64_t *off, const float *in, const float *wp, float *tile, int64_t xb,
                     int64_t vb) {
  if (vb == 64) block7x4(q, off, in, wp, tile);
  else if (xb == 7) (vb == 32 ? block7x2 : block7x1)(q, off, in, wp, tile);
  else (vb == 32 ? block14x2 : block14x1)(q, off, in, wp, tile);
}

/* A 16×16 transpose: r[j] holds pixel j's 16 channels; afterwards r[k]
 * holds channel k's 16 pixels. Interleaves of 32 and 64 bits within each
 * 128-bit lane, then two shuffles of whole lanes. */
__attribute__((target("avx512f"))) void rt_transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {   /* u[i + m]: rows i .. i+3 at element m of each lane */
    __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int m = 0; m < 4; m++) {   /* lane L of u[4i + m] becomes lane i of r[4L + m] */
    __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
    __m512 v2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88), v3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
    r[m] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
    r[4 + m] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
  }
}

typedef RtRun Run;

static int block_runs(const Grid *q, int64_t p0, Run runs[XB]) {
  int count = 0, xb = (int)q->xb;
  for (int j = 0; j < xb && p0 + j < q->pixels;) {
    int64_t oy = (p0 + j) / q->wg, ox = (p0 + j) % q->wg;
    if (ox >= q->ow) {   /* the grid's extra columns */
      j += (int)(q->wg - ox);
      continue;
    }
    int len = (int)(q->ow - ox < xb - j ? q->ow - ox : xb - j);
    if (p0 + j + len > q->pixels) len = (int)(q->pixels - p0 - j);
    runs[count++] = (Run){j, len, oy * q->ow + ox};
    j += len;
  }
  return count;
}

__attribute__((target("avx512f"))) void rt_store_tile(const float *tile, int64_t vb, const Run *runs, int nruns,
                                                   float *out, int64_t ohw) {
  for (int64_t v = 0; v < vb; v += 16) {
    __m512 r[16];
    for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(tile + j * vb + v);
    rt_transpose16(r);
    for (int i = 0; i < nruns; i++) {
      __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(runs[i].j0), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8,
                                                                                         9, 10, 11, 12, 13, 14, 15));
      __mmask16 m = rt_lanes(0, runs[i].len);
      float *dst = out + v * ohw + runs[i].dst;
      for (int k = 0; k < 16; k++) _mm512_mask_storeu_ps(dst + k * ohw, m, _mm512_permutexvar_ps(idx, r[k]));
    }
  }
}

/* Whether blocks go row by row (each block within one output row; a short
 * last block per row) rather than along the whole grid (blocks across row
 * ends, the grid's extra columns computed): whichever computes fewer
 * pixels. Row by row wins when the block divides the rows: 14×14 and
 * 28×28 images compute no extra pixel at all, where the grid computes 2
 * extra columns a row. */
static bool row_blocks(const Grid *q) {
  int64_t xb = q->xb, by_rows = q->oh * ((q->ow + xb - 1) / xb) * xb, by_grid = (q->pixels + xb - 1) / xb * xb;
  return by_rows <= by_grid;
}

/* One block of pixels from p0 on the grid, every block of output channels. */
static void grid_block(const Grid *q, const int64_t *off, const float *planes, const float *wp, float *tile,
                       int64_t p0, const Run *runs, int nruns, float *out) {
  int64_t ohw = q->oh * q->ow;
  for (int64_t o0 = 0; o0 < q->oc; o0 += q->vb) {
    int64_t vb = q->oc - o0 < q->vb ? q->oc - o0 : q->vb;
    rt_direct_block(q, off, planes + p0, wp + o0 * q->cin * q->taps, tile, q->xb, vb);
    rt_store_tile(tile, vb, runs, nruns, out + o0 * ohw, ohw);
  }
}

/* One image, forward or adjoint in x: its planes are filled; out [oc, oh, ow]. */
static void grid_image(const Grid *q, const float *planes, const float *wp, float *tile, float *out) {
  int64_t off[RT_DIRECT_MAX_OFFSETS];
  for (int64_t t = 0; t < q->taps; t++) off[t] = t / q->kw * q->wg + t % q->kw;
  Run runs[XB];
  if (row_blocks(q)) {
    for (int64_t oy = 0; oy < q->oh; oy++)
      for (int64_t x0 = 0; x0 < q->ow; x0 += q->xb) {
        runs[0] = (Run){0, (int)(q->ow - x0 < q->xb ? q->ow - x0 : q->xb), oy * q->ow + x0};
        grid_block(q, off, planes, wp, tile, oy * q->wg + x0, runs, 1, out);
      }
    return;
  }
  for (int64_t p0 = 0; p0 < q->pixels; p0 += q->xb) {
    int nruns = block_runs(q, p0, runs);
    grid_block(q, off, planes, wp, tile, p0, runs, nruns, out);
  }
}

/* dy of one image on the grid, transposed and in blocks of output
 * channels as the kernels take them: [oc/vb][p][vb], 0 on the extra
 * columns; 16 channels by 16 pixels at a time. A block's rows lie together
 * so that a sweep over them stays in the L1 cache (rows of all oc channels
 * put a block's lines 4·oc bytes apart, on a fraction of the cache's sets). */
__attribute__((target("avx512f"))) static void transpose_dy(const Grid *q, const float *dy, float *dyt) {
  int64_t ohw = q->oh * q->ow;
  for (int64_t oy = 0; oy < q->oh; oy++)
    for (int64_t x0 = 0; x0 < q->wg; x0 += 16) {
      int64_t valid = q->ow - x0 < 0 ? 0 : q->ow - x0 < 16 ? q->ow - x0 : 16;
      int64_t cols = q->wg - x0 < 16 ? q->wg - x0 : 16;   /* grid columns here, zeros past ow */
      __mmask16 m = rt_lanes(0, valid);
      for (int64_t o0 = 0; o0 < q->oc; o0 += 16) {
        __m512 r[16];
        for (int k = 0; k < 16; k++) r[k] = _mm512_maskz_loadu_ps(m, dy + (o0 + k) * ohw + oy * q->ow + x0);
        rt_transpose16(r);
        int64_t b0 = o0 / q->vb * q->vb, vb = q->oc - b0 < q->vb ? q->oc - b0 : q->vb;
        float *blk = dyt + b0 * q->pixels + o0 - b0;
        for (int64_t j = 0; j < cols; j++) _mm512_storeu_ps(blk + (oy * q->wg + x0 + j) * vb, r[j]);
      }
    }
}

/* sum[tap][o] += Σ_p dyt[p][o] · plane[p + off[tap]] for NT taps and 16·V
 * output channels: NT·V sums in registers, each row of dy loaded once for
 * all of them. (Two planes at once, 16 sums, ran slower: 52 against 87
 * GFLOP/s on a 4×4 stride-2 window.) */
#define WGRAD_KERNEL(NAME, V, NT)                                                                               \
  __attribute__((target("avx512f"))) static void NAME(const Grid *q, const int64_t *off, const float *plane,    \
                                                      const float *dyt, float *sum) {                           \
    __m512 acc[NT][V];                                                                                          \
    _Pragma("GCC unroll 9") for (int t = 0; t < NT; t++)                                                        \
      _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) acc[t][v] = _mm512_setzero_ps();                      \
    for (int64_t oy = 0; oy < q->oh; oy++)                                                                      \
      for (int64_t p = oy * q->wg; p < oy * q->wg + q->ow; p++) { /* the grid's extra columns are 0 */          \
        __m512 d[V];                                                                                            \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) d[v] = _mm512_loadu_ps(dyt + (p * V + v) * 16);     \
        _Pragma("GCC unroll 9") for (int t = 0; t < NT; t++) {                                                  \
          __m512 b = _mm512_set1_ps(plane[p + off[t]]);                                                         \
          _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) acc[t][v] = _mm512_fmadd_ps(d[v], b, acc[t][v]);  \
        }                                                                                                       \
      }                                                                                                         \
    _Pragma("GCC unroll 9") for (int t = 0; t < NT; t++)                                                        \
      _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {                                                     \
        float *s = sum + (t * V + v) * 16;                                                                      \
        _mm512_storeu_ps(s, _mm512_add_ps(_mm512_loadu_ps(s), acc[t][v]));                                      \
      }                                                                                                         \
  }
#define WGRAD_TAPS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)
#define WGRAD_V4(NT) WGRAD_KERNEL(wgrad4_##NT, 4, NT)
#define WGRAD_V2(NT) WGRAD_KERNEL(wgrad2_##NT, 2, NT)
#define WGRAD_V1(NT) WGRAD_KERNEL(wgrad1_##NT, 1, NT)
WGRAD_TAPS(WGRAD_V4)
WGRAD_TAPS(WGRAD_V2)
WGRAD_TAPS(WGRAD_V1)

typedef void WgradFn(const Grid *, const int64_t *, const float *, const float *, float *);
#define WGRAD_ROW(PREFIX) \
  {NULL, PREFIX##1, PREFIX##2, PREFIX##3, PREFIX##4, PREFIX##5, PREFIX##6, PREFIX##7, PREFIX##8, PREFIX##9}
/* [vectors / 2][taps] */
static WgradFn *const wgrad[3][MAX_TAPS + 1] = {WGRAD_ROW(wgrad1_), WGRAD_ROW(wgrad2_), WGRAD_ROW(wgrad4_)};

void rt_direct_wgrad(const Grid *q, const int64_t *off, const float *plane, const float *dyt, float *sum, int64_t vb,
                     int64_t taps) {
  wgrad[vb / 32][taps](q, off, plane, dyt, sum);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Phase (a, b) of the adjoint in x: x's rows s·i + a - ph for i in [*i0,
 * *i0 + oh) (those inside the image), its columns likewise from *j0. Row
 * i reads dy's rows i - (kh - 1) .. i, with the phase's taps of the
 * flipped window. */
static Grid phase_grid(const int64_t *g, int64_t a, int64_t b, int64_t *i0, int64_t *j0) {
  Grid q = grid(g, 1);
  int64_t st = g[RT_GEOM_SH], ph = g[RT_GEOM_PH], pw = g[RT_GEOM_PW], H = g[RT_GEOM_H], W = g[RT_GEOM_W];
  *i0 = a >= ph ? 0 : ceil_div(ph - a, st);
  *j0 = b >= pw ? 0 : ceil_div(pw - b, st);
  int64_t i1 = H + ph - a <= 0 ? 0 : ceil_div(H + ph - a, st), j1 = W + pw - b <= 0 ? 0 : ceil_div(W + pw - b, st);
  q.oh = i1 > *i0 ? i1 - *i0 : 0, q.ow = j1 > *j0 ? j1 - *j0 : 0;
  q.pt = q.kh - 1 - *i0, q.pl = q.kw - 1 - *j0;
  q.hg = q.oh + q.kh - 1, q.wg = q.ow + q.kw - 1;
  q.pixels = q.oh * q.wg, q.plane = q.hg * q.wg;
  return q;
}

void rt_direct_pack(int dir, const int64_t *g, const float *w, float *shared) {
  if (dir == 2) return;
  Grid q = grid(g, dir);
  if (dir == 0) {
    pack_weights(&q, g, 0, w, shared);
    return;
  }
  int64_t st = g[RT_GEOM_SH], size = q.oc * q.cin * q.taps;
  for (int64_t ph = 0; ph < st * st; ph++) pack_weights(&q, g, (int)(1 + ph), w, shared + ph * size);
}

/* The adjoint in x of one image. dy's planes are filled once, with the
 * most padding any phase needs, and each phase reads them from its own
 * corner: one grid for all. Each phase of dx is computed and, with a
 * stride, put in place from `buf`. */
static void adjoint_x_image(const int64_t *g, const float *dy, const float *shared, float *planes, float *tile,
                            float *buf, float *dx) {
  int64_t st = g[RT_GEOM_SH], H = g[RT_GEOM_H], W = g[RT_GEOM_W], C = g[RT_GEOM_C];
  Grid all = grid(g, 1);
  int64_t size = all.oc * all.cin * all.taps, pt = 0, pl = 0, hg = 0, wg = 0, i0, j0;
  for (int64_t a = 0; a < st; a++)
    for (int64_t b = 0; b < st; b++) {
      Grid q = phase_grid(g, a, b, &i0, &j0);
      pt = q.pt > pt ? q.pt : pt, pl = q.pl > pl ? q.pl : pl;
    }
  for (int64_t a = 0; a < st; a++)
    for (int64_t b = 0; b < st; b++) {
      Grid q = phase_grid(g, a, b, &i0, &j0);
      int64_t h = pt - q.pt + q.hg, w = pl - q.pl + q.wg;
      hg = h > hg ? h : hg, wg = w > wg ? w : wg;
    }
  all.pt = pt, all.pl = pl, all.hg = hg, all.wg = wg, all.plane = hg * wg;
  all.slack = XB + (all.kh - 1) * wg + all.kw + wg;
  memset(planes + all.cin * all.plane, 0, sizeof(float) * (size_t)all.slack);
  rt_fill_planes(&all, dy, planes);
  for (int64_t a = 0; a < st; a++)
    for (int64_t b = 0; b < st; b++) {
      Grid q = phase_grid(g, a, b, &i0, &j0);
      if (q.oh <= 0 || q.ow <= 0) continue;
      const float *corner = planes + (pt - q.pt) * wg + (pl - q.pl);
      q.wg = wg, q.plane = all.plane, q.pixels = q.oh * wg;
      const float *wp = shared + (a * st + b) * size;
      if (st == 1) {   /* the one phase is dx */
        grid_image(&q, corner, wp, tile, dx);
        continue;
      }
      grid_image(&q, corner, wp, tile, buf);   /* [C, oh, ow] */
      int64_t y0 = st * i0 + a - g[RT_GEOM_PH], x0 = st * j0 + b - g[RT_GEOM_PW];
      for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < q.oh; i++) {
          const float *src = buf + (c * q.oh + i) * q.ow;
          float *row = dx + (c * H + y0 + st * i) * W + x0;
          for (int64_t j = 0; j < q.ow; j++) row[st * j] = src[j];
        }
    }
}

void rt_direct_part(int dir, const int64_t *g, const float *a, const float *b, float *out, const float *shared,
                    float *scratch, int64_t lo, int64_t hi, float *dw) {
  int64_t C = g[RT_GEOM_C], H = g[RT_GEOM_H], W = g[RT_GEOM_W], O = g[RT_GEOM_O];
  int64_t xsz = C * H * W, ysz = O * g[RT_GEOM_OH] * g[RT_GEOM_OW];
  Grid q = grid(g, dir == 1 ? 1 : 0);
  float *planes = scratch, *rest = planes + q.cin * q.plane + q.slack;
  if (dir == 1) {
    float *tile = rest, *buf = tile + 16 * q.vb;
    for (int64_t i = lo; i < hi; i++) adjoint_x_image(g, a + i * ysz, shared, planes, tile, buf, out + i * xsz);
    return;
  }
  memset(planes + q.cin * q.plane, 0, sizeof(float) * (size_t)q.slack);
  if (dir == 0) {
    for (int64_t i = lo; i < hi; i++) {
      rt_fill_planes(&q, a + i * xsz, planes);
      grid_image(&q, planes, shared, rest, out + i * ysz);
    }
    return;
  }
  /* the adjoint in w: a = x, b = dy; sums [O][cin][taps], then into dw [O, C, KH, KW] */
  float *dyt = rest, *sum = dyt + q.pixels * q.oc;
  memset(sum, 0, sizeof(float) * (size_t)(q.oc * q.cin * q.taps));
  int64_t off[MAX_TAPS];
  for (int64_t t = 0; t < q.taps; t++) off[t] = t / q.kw * q.wg + t % q.kw;
  for (int64_t i = lo; i < hi; i++) {
    rt_fill_planes(&q, a + i * xsz, planes);
    transpose_dy(&q, b + i * ysz, dyt);
    for (int64_t o0 = 0; o0 < q.oc; o0 += q.vb) {
      int64_t vb = q.oc - o0 < q.vb ? q.oc - o0 : q.vb;
      for (int64_t ci = 0; ci < q.cin; ci++) {
        /* sum's block for o0: [cin][taps][vb] */
        float *sp = sum + o0 * q.cin * q.taps + ci * q.taps * vb;
        rt_direct_wgrad(&q, off, planes + ci * q.plane, dyt + o0 * q.pixels, sp, vb, q.taps);
      }
    }
  }
  /* the phases' taps back into the window; dw was zeroed by the caller */
  int64_t KH = g[RT_GEOM_KH], KW = g[RT_GEOM_KW], s = q.s;
  for (int64_t o0 = 0; o0 < q.oc; o0 += q.vb) {
    int64_t vb = q.oc - o0 < q.vb ? q.oc - o0 : q.vb;
    const float *blk = sum + o0 * q.cin * q.taps;
    for (int64_t ci = 0; ci < q.cin; ci++)
      for (int64_t t = 0; t < q.taps; t++) {
        int64_t c = ci / (s * s), pa = ci / s % s, pb = ci % s;
        int64_t wy = t / q.kw * s + pa, wx = t % q.kw * s + pb;
        if (wy >= KH || wx >= KW) continue;
        for (int64_t v = 0; v < vb; v++)
          dw[(((o0 + v) * C + c) * KH + wy) * KW + wx] += blk[(ci * q.taps + t) * vb + v];
      }
  }
}

#else   /* the compiler never picks RT_CONV_VECTOR here (rt_avx512) */
void rt_direct_pack(int dir, const int64_t *g, const float *w, float *shared) {
  (void)dir, (void)g, (void)w, (void)shared;
}
void rt_direct_part(int dir, const int64_t *g, const float *a, const float *b, float *out, const float *shared,
                    float *scratch, int64_t lo, int64_t hi, float *dw) {
  (void)dir, (void)g, (void)a, (void)b, (void)out, (void)shared, (void)scratch, (void)lo, (void)hi, (void)dw;
}
#endif
