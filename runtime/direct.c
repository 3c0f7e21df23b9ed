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
 * + kx: one offset per tap, whatever the pixel, so pixels run along the
 * grid in blocks of XB regardless of where rows end. The wg - OW columns
 * past each output row are computed and thrown away (2 of 16 on a 14×14
 * image with padding 1).
 *
 * Stride s. The padded image is split into s·s phase planes, plane (c, a,
 * b) holding rows a, a+s, ... and columns b, b+s, ...; a stride-s
 * convolution with a KH×KW window is then a stride-1 convolution over
 * C·s·s planes with a ⌈KH/s⌉×⌈KW/s⌉ window (the taps past the window
 * weigh 0). A 4×4 stride-2 convolution becomes a 2×2 one over 4C planes.
 *
 * The kernel. A block of XB pixels and 2 vectors of 16 output channels
 * keeps 2·XB accumulators in registers; for each plane and tap it loads
 * the two weight vectors and broadcasts each pixel's input value into two
 * multiply-adds. The block is then transposed into the [O, OH, OW] output
 * through a small tile.
 *
 * The three directions:
 *   forward   y = conv(x, w): the grid above, over x's planes.
 *   adjoint in x (stride 1): dx = conv(dy padded by KH-1-ph, KW-1-pw, w
 *             flipped and transposed): the same kernel, over dy's planes.
 *   adjoint in w: dw[o, plane, tap] = Σ_images Σ_p dy[o, p] · plane[p +
 *             tap]: dy is transposed to [p, O] on the grid (zero on the
 *             thrown-away columns), and a plane's taps accumulate in
 *             registers over every pixel.
 *
 * Built only where GCC targets x86-64; the compiler picks RT_CONV_VECTOR
 * only when the CPU has AVX-512 (rt_avx512).
 */
#include "runtime/kernels.h"

#include <stdbool.h>
#include <string.h>

enum { XB = RT_DIRECT_PIXELS, VB = RT_DIRECT_CHANNELS, MAX_TAPS = RT_DIRECT_MAX_TAPS };
typedef RtGrid Grid;

static Grid grid(const int64_t *g, int dir) { return rt_grid(g, dir); }

#if RT_HAVE_AVX512
#include <immintrin.h>

/* The planes of one image: [cin][hg·wg], zero outside the image. */
static void fill_planes(const Grid *q, const float *src, float *planes) {
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
          for (int64_t j = 0; j < j0; j++) row[j] = 0.0f;
          if (q->s == 1 && j1 - j0 >= 32) memcpy(row + j0, in + j0, sizeof(float) * (size_t)(j1 - j0));
          else if (q->s == 1)   /* a short row: a call to memcpy costs more */
            for (int64_t j = j0; j < j1; j++) row[j] = in[j];
          else
            for (int64_t j = j0; j < j1; j++) row[j] = in[j * q->s];
          for (int64_t j = j1; j < q->wg; j++) row[j] = 0.0f;
        }
      }
}

/* The weights as the kernel reads them, [oc/VB][cin][taps][VB] (the last
 * block of 16 channels alone when oc is not a multiple of 32): forward,
 * w [O, C, KH, KW] split into phases; for the adjoint in x, w flipped and
 * transposed. Taps past the window weigh 0. */
static void pack_weights(const Grid *q, const int64_t *g, int dir, const float *w, float *wp) {
  int64_t C = g[RT_GEOM_C], KH = g[RT_GEOM_KH], KW = g[RT_GEOM_KW], s = q->s, ksz = KH * KW;
  for (int64_t o0 = 0; o0 < q->oc; o0 += VB) {
    int64_t vb = q->oc - o0 < VB ? q->oc - o0 : VB;
    float *blk = wp + o0 * q->cin * q->taps;   /* [cin][taps][vb] */
    for (int64_t ci = 0; ci < q->cin; ci++) {
      int64_t c = ci / (s * s), pa = ci / s % s, pb = ci % s;   /* the plane's channel and phase */
      for (int64_t ky = 0; ky < q->kh; ky++)
        for (int64_t kx = 0; kx < q->kw; kx++) {
          float *dst = blk + ((ci * q->kh + ky) * q->kw + kx) * vb;
          if (dir == 1) {   /* out channel o0 + v is x's channel; plane ci is dy's channel */
            const float *src = w + (ci * C + o0) * ksz + (KH - 1 - ky) * KW + (KW - 1 - kx);
            for (int64_t v = 0; v < vb; v++) dst[v] = src[v * ksz];
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
 * off[tap]] for the XB pixels at `in`, into tile [XB][16·V]. */
#define BLOCK_KERNEL(NAME, V)                                                                               \
  __attribute__((target("avx512f"))) static void NAME(const Grid *q, const int64_t *off, const float *in,     \
                                                      const float *wp, float *tile) {                         \
    __m512 acc[XB][V];                                                                                       \
    _Pragma("GCC unroll 14") for (int j = 0; j < XB; j++) _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) \
        acc[j][v] = _mm512_setzero_ps();                                                                     \
    for (int64_t ci = 0; ci < q->cin; ci++, in += q->plane)                                                  \
      for (int64_t t = 0; t < q->taps; t++, wp += 16 * V) {                                                  \
        const float *x = in + off[t];                                                                        \
        __m512 w[V];                                                                                         \
        _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) w[v] = _mm512_loadu_ps(wp + 16 * v);             \
        _Pragma("GCC unroll 14") for (int j = 0; j < XB; j++) {                                              \
          __m512 b = _mm512_set1_ps(x[j]);                                                                   \
          _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) acc[j][v] = _mm512_fmadd_ps(w[v], b, acc[j][v]); \
        }                                                                                                    \
      }                                                                                                      \
    _Pragma("GCC unroll 14") for (int j = 0; j < XB; j++) _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) \
        _mm512_storeu_ps(tile + (j * V + v) * 16, acc[j][v]);                                                \
  }
BLOCK_KERNEL(block2, 2)
BLOCK_KERNEL(block1, 1)

/* A 16×16 transpose: r[j] holds pixel j's 16 channels; afterwards r[k]
 * holds channel k's 16 pixels. Interleaves of 32 and 64 bits within each
 * 128-bit lane, then two shuffles of whole lanes. */
__attribute__((target("avx512f"))) static void transpose16(__m512 r[16]) {
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

/* The runs of a block's pixels that are output pixels: each lies in one
 * output row. Lanes [j0, j0 + len) go to out[dst ..]. */
typedef struct {
  int j0, len;
  int64_t dst;
} Run;

static int block_runs(const Grid *q, int64_t p0, Run runs[XB]) {
  int count = 0;
  for (int j = 0; j < XB && p0 + j < q->pixels;) {
    int64_t oy = (p0 + j) / q->wg, ox = (p0 + j) % q->wg;
    if (ox >= q->ow) {   /* the grid's extra columns */
      j += (int)(q->wg - ox);
      continue;
    }
    int len = (int)(q->ow - ox < XB - j ? q->ow - ox : XB - j);
    if (p0 + j + len > q->pixels) len = (int)(q->pixels - p0 - j);
    runs[count++] = (Run){j, len, oy * q->ow + ox};
    j += len;
  }
  return count;
}

/* The tile [16][vb] (pixels × channels) into out [oc, oh·ow] at channel o0. */
__attribute__((target("avx512f"))) static void store_tile(const float *tile, int64_t vb, const Run *runs, int nruns,
                                                          float *out, int64_t ohw) {
  for (int64_t v = 0; v < vb; v += 16) {
    __m512 r[16];
    for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(tile + j * vb + v);
    transpose16(r);
    for (int i = 0; i < nruns; i++) {
      __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(runs[i].j0), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8,
                                                                                         9, 10, 11, 12, 13, 14, 15));
      __mmask16 m = (__mmask16)((1u << runs[i].len) - 1);
      float *dst = out + v * ohw + runs[i].dst;
      for (int k = 0; k < 16; k++) _mm512_mask_storeu_ps(dst + k * ohw, m, _mm512_permutexvar_ps(idx, r[k]));
    }
  }
}

/* Whether blocks go row by row (each block within one output row; a short
 * last block per row) rather than along the whole grid (blocks across row
 * ends, the grid's extra columns computed): whichever computes fewer
 * pixels. Row by row wins when XB divides the rows: 14×14 and 28×28
 * images compute no extra pixel at all, where the grid computes 2 extra
 * columns a row. */
static bool row_blocks(const Grid *q) {
  int64_t by_rows = q->oh * ((q->ow + XB - 1) / XB) * XB, by_grid = (q->pixels + XB - 1) / XB * XB;
  return by_rows <= by_grid;
}

/* One block of pixels from p0 on the grid, every block of output channels. */
static void grid_block(const Grid *q, const int64_t *off, const float *planes, const float *wp, float *tile,
                       int64_t p0, const Run *runs, int nruns, float *out) {
  int64_t ohw = q->oh * q->ow;
  for (int64_t o0 = 0; o0 < q->oc; o0 += VB) {
    int64_t vb = q->oc - o0 < VB ? q->oc - o0 : VB;
    const float *w = wp + o0 * q->cin * q->taps;
    if (vb == VB) block2(q, off, planes + p0, w, tile);
    else block1(q, off, planes + p0, w, tile);
    store_tile(tile, vb, runs, nruns, out + o0 * ohw, ohw);
  }
}

/* One image, forward or adjoint in x: its planes are filled; out [oc, oh, ow]. */
static void grid_image(const Grid *q, const float *planes, const float *wp, float *tile, float *out) {
  int64_t off[RT_DIRECT_MAX_OFFSETS];
  for (int64_t t = 0; t < q->taps; t++) off[t] = t / q->kw * q->wg + t % q->kw;
  Run runs[XB];
  if (row_blocks(q)) {
    for (int64_t oy = 0; oy < q->oh; oy++)
      for (int64_t x0 = 0; x0 < q->ow; x0 += XB) {
        runs[0] = (Run){0, (int)(q->ow - x0 < XB ? q->ow - x0 : XB), oy * q->ow + x0};
        grid_block(q, off, planes, wp, tile, oy * q->wg + x0, runs, 1, out);
      }
    return;
  }
  for (int64_t p0 = 0; p0 < q->pixels; p0 += XB) {
    int nruns = block_runs(q, p0, runs);
    grid_block(q, off, planes, wp, tile, p0, runs, nruns, out);
  }
}

/* dy of one image on the grid, transposed and in blocks of output
 * channels as the kernels take them: [oc/VB][p][VB], 0 on the extra
 * columns; 16 channels by 16 pixels at a time. A block's rows lie together
 * so that a sweep over them stays in the L1 cache (rows of all oc channels
 * put a block's lines 4·oc bytes apart, on a fraction of the cache's sets). */
__attribute__((target("avx512f"))) static void transpose_dy(const Grid *q, const float *dy, float *dyt) {
  int64_t ohw = q->oh * q->ow;
  for (int64_t oy = 0; oy < q->oh; oy++)
    for (int64_t x0 = 0; x0 < q->wg; x0 += 16) {
      int64_t valid = q->ow - x0 < 0 ? 0 : q->ow - x0 < 16 ? q->ow - x0 : 16;
      int64_t cols = q->wg - x0 < 16 ? q->wg - x0 : 16;   /* grid columns here, zeros past ow */
      __mmask16 m = (__mmask16)((1u << valid) - 1);
      for (int64_t o0 = 0; o0 < q->oc; o0 += 16) {
        __m512 r[16];
        for (int k = 0; k < 16; k++) r[k] = _mm512_maskz_loadu_ps(m, dy + (o0 + k) * ohw + oy * q->ow + x0);
        transpose16(r);
        int64_t b0 = o0 / VB * VB, vb = q->oc - b0 < VB ? q->oc - b0 : VB;
        float *blk = dyt + b0 * q->pixels + o0 - b0;
        for (int64_t j = 0; j < cols; j++) _mm512_storeu_ps(blk + (oy * q->wg + x0 + j) * vb, r[j]);
      }
    }
}

/* sum[tap][o] += Σ_p dyt[p][o] · plane[p + off[tap]] for NT taps and 16·V
 * output channels: NT·V sums in registers, each row of dy loaded once for
 * all of them. (Two planes at once, 16 sums, ran slower: 52 against 87
 * GFLOP/s on a 4×4 stride-2 window.) */
#define WGRAD_KERNEL(NAME, V, NT)                                                                             \
  __attribute__((target("avx512f"))) static void NAME(const Grid *q, const int64_t *off, const float *plane,  \
                                                      const float *dyt, float *sum) {                         \
    __m512 acc[NT][V];                                                                                       \
    for (int t = 0; t < NT; t++)                                                                             \
      for (int v = 0; v < V; v++) acc[t][v] = _mm512_setzero_ps();                                           \
    for (int64_t oy = 0; oy < q->oh; oy++)                                                                  \
      for (int64_t p = oy * q->wg; p < oy * q->wg + q->ow; p++) { /* the grid's extra columns are 0 */      \
        __m512 d[V];                                                                                         \
        for (int v = 0; v < V; v++) d[v] = _mm512_loadu_ps(dyt + p * 16 * V + 16 * v);                       \
        _Pragma("GCC unroll 9") for (int t = 0; t < NT; t++) {                                               \
          __m512 b = _mm512_set1_ps(plane[p + off[t]]);                                                      \
          for (int v = 0; v < V; v++) acc[t][v] = _mm512_fmadd_ps(d[v], b, acc[t][v]);                       \
        }                                                                                                    \
      }                                                                                                      \
    for (int t = 0; t < NT; t++)                                                                             \
      for (int v = 0; v < V; v++) {                                                                          \
        float *s = sum + (t * V + v) * 16;                                                                   \
        _mm512_storeu_ps(s, _mm512_add_ps(_mm512_loadu_ps(s), acc[t][v]));                                   \
      }                                                                                                      \
  }
#define WGRAD_TAPS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)
#define WGRAD_V2(NT) WGRAD_KERNEL(wgrad2_##NT, 2, NT)
#define WGRAD_V1(NT) WGRAD_KERNEL(wgrad1_##NT, 1, NT)
WGRAD_TAPS(WGRAD_V2)
WGRAD_TAPS(WGRAD_V1)

typedef void WgradFn(const Grid *, const int64_t *, const float *, const float *, float *);
#define WGRAD_ROW(PREFIX) {NULL, PREFIX##1, PREFIX##2, PREFIX##3, PREFIX##4, PREFIX##5, PREFIX##6, PREFIX##7, PREFIX##8, PREFIX##9}
/* [vectors - 1][taps] */
static WgradFn *const wgrad[2][MAX_TAPS + 1] = {WGRAD_ROW(wgrad1_), WGRAD_ROW(wgrad2_)};

void rt_direct_pack(int dir, const int64_t *g, const float *w, float *shared) {
  if (dir == 2) return;
  Grid q = grid(g, dir);
  pack_weights(&q, g, dir, w, shared);
}

void rt_direct_part(int dir, const int64_t *g, const float *a, const float *b, float *out, const float *shared,
                    float *scratch, int64_t lo, int64_t hi, float *dw) {
  int64_t C = g[RT_GEOM_C], H = g[RT_GEOM_H], W = g[RT_GEOM_W], O = g[RT_GEOM_O];
  int64_t xsz = C * H * W, ysz = O * g[RT_GEOM_OH] * g[RT_GEOM_OW];
  Grid q = grid(g, dir == 1 ? 1 : 0);
  float *planes = scratch, *rest = planes + q.cin * q.plane + q.slack;
  memset(planes + q.cin * q.plane, 0, sizeof(float) * (size_t)q.slack);
  if (dir != 2) {   /* forward: x's planes into y; adjoint in x: dy's into dx */
    int64_t src_sz = dir == 1 ? ysz : xsz, out_sz = dir == 1 ? xsz : ysz;
    for (int64_t i = lo; i < hi; i++) {
      fill_planes(&q, a + i * src_sz, planes);
      grid_image(&q, planes, shared, rest, out + i * out_sz);
    }
    return;
  }
  /* the adjoint in w: a = x, b = dy; sums [O][cin][taps], then into dw [O, C, KH, KW] */
  float *dyt = rest, *sum = dyt + q.pixels * q.oc;
  memset(sum, 0, sizeof(float) * (size_t)(q.oc * q.cin * q.taps));
  int64_t off[MAX_TAPS];
  for (int64_t t = 0; t < q.taps; t++) off[t] = t / q.kw * q.wg + t % q.kw;
  for (int64_t i = lo; i < hi; i++) {
    fill_planes(&q, a + i * xsz, planes);
    transpose_dy(&q, b + i * ysz, dyt);
    for (int64_t o0 = 0; o0 < q.oc; o0 += VB) {
      int64_t vb = q.oc - o0 < VB ? q.oc - o0 : VB;
      for (int64_t ci = 0; ci < q.cin; ci++) {
        /* sum's block for o0: [cin][taps][vb] */
        float *sp = sum + o0 * q.cin * q.taps + ci * q.taps * vb;
        wgrad[vb == VB][q.taps](&q, off, planes + ci * q.plane, dyt + o0 * q.pixels, sp);
      }
    }
  }
  /* the phases' taps back into the window; dw was zeroed by the caller */
  int64_t KH = g[RT_GEOM_KH], KW = g[RT_GEOM_KW], s = q.s;
  for (int64_t o0 = 0; o0 < q.oc; o0 += VB) {
    int64_t vb = q.oc - o0 < VB ? q.oc - o0 : VB;
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
void rt_direct_pack(int dir, const int64_t *g, const float *w, float *shared) { (void)dir, (void)g, (void)w, (void)shared; }
void rt_direct_part(int dir, const int64_t *g, const float *a, const float *b, float *out, const float *shared,
                    float *scratch, int64_t lo, int64_t hi, float *dw) {
  (void)dir, (void)g, (void)a, (void)b, (void)out, (void)shared, (void)scratch, (void)lo, (void)hi, (void)dw;
}
#endif
