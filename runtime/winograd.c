/*
 * winograd.c — 3×3 stride-1 convolutions by Winograd's minimal filtering
 * algorithm F(2×2, 3×3) (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016), AVX-512 (see kernels.h,
 * RT_CONV_WINOGRAD).
 *
 * A 2×2 block of output pixels (a tile) of one output channel reads a 4×4
 * block d of each input channel's zero-padded image. Computed directly it
 * takes 2·2·9 = 36 multiplications per input channel; Winograd's identity
 *
 *     Y = Aᵀ [ Σ_c (G f_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
 *
 * takes 16, the elementwise products ⊙ of two 4×4 transforms:
 *
 *     Bᵀ = | 1  0 -1  0 |     G = | 1    0    0   |     Aᵀ = | 1  1  1  0 |
 *          | 0  1  1  0 |         | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *          | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
 *          | 0  1  0 -1 |         | 0    0    1   |
 *
 * Summed over the input channels, each of the 16 positions ξ of the 4×4
 * transforms is a matrix product: M[ξ][tile][o] = Σ_c V[ξ][c][tile] ·
 * U[ξ][c][o], with V the transformed input and U the transformed filters.
 * Those 16 products are 2.25 times fewer multiply-adds than the
 * convolution; the transforms are additions only (G's halves are exact).
 *
 * The three steps, for a pass of `rows` rows of tiles of one image; a row
 * of tiles is cut in groups of 7, each group in 8 slots (kernels.h,
 * RtWino), so that every store of V is a whole 8-float vector and every
 * group one block of the products:
 *   input     4 rows of an image's channel, 16 columns (7 tiles) at a
 *             time, straight from the tensor (masked loads make the zero
 *             padding): Bᵀ's row sums are 4 vector additions, B's column
 *             sums 16 more over the rows' even and odd columns, picked by
 *             permutes. V is [16][src_c][slots].
 *   products  direct.c's block kernel, with the slots as its pixels, one
 *             tap, and the input channels as its planes: a group's 7
 *             tiles by 64 output channels (or 32, or 16) in registers. M
 *             is [16][oc / vb][slots][vb].
 *   output    Aᵀ M A for each tile, 16 output channels a vector, into a
 *             row of 16 output pixels; direct.c's tile transpose puts the
 *             row in place in the [oc, oh, ow] result.
 *
 * The adjoint in x of a stride-1 convolution is the convolution of dy,
 * padded by 2 - padding on each side, with the filters flipped and
 * transposed: the same three steps, over dy.
 *
 * The adjoint in w follows the identity backwards: the gradient of M is
 * A dY Aᵀ for each tile's 2×2 dY, that of U is Σ_tiles (A dY Aᵀ) ⊙ V,
 * and that of each filter Gᵀ dU G. So x is transformed as in the forward
 * pass; dy, transposed to channels in vectors, into D [16][oc / vb]
 * [slots][vb]; the 16 products dU[ξ][c][o] = Σ_slots V[ξ][c][slot] ·
 * D[ξ][slot][o] run on direct.c's filter-gradient kernel (input channels
 * as its taps, slots as its pixels) and add up over a part's images; Gᵀ
 * dU G at the end gives the part's share of dw.
 *
 * Rounding: each output sums 16·src_c products of transformed values, as
 * the direct kernel sums 9·src_c; the transforms add at most 4 values.
 * Measured against float64 (unit_codegen), errors stay within the direct
 * kernel's tolerance.
 *
 * Built only where GCC targets x86-64; the compiler picks RT_CONV_WINOGRAD
 * only when the CPU has AVX-512 (rt_avx512).
 */
#include "runtime/direct.h"

#include <stdint.h>
#include <string.h>

#if RT_HAVE_AVX512
#include <immintrin.h>

/* U = G f Gᵀ for 16 output channels [o, o + 16) and input channel c, into
 * u[ξ·stride]: f is each channel's 3×3 filter as direction dir reads it,
 * forward w[o, c], for the adjoint in x w[c, o] flipped; its 9 values
 * gathered a vector each. */
__attribute__((target("avx512f"))) static void pack_16(int dir, const int64_t *g, const float *w, int64_t o, int64_t c,
                                                       float *u, int64_t stride) {
  int64_t C = g[RT_GEOM_C];
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  /* lane v's filter starts at w + base + v·step, tap k at +k (flipped: -k) */
  int64_t base = dir == 0 ? (o * C + c) * 9 : (c * C + o) * 9 + 8, step = dir == 0 ? C * 9 : 9, sign = dir == 0 ? 1 : -1;
  __m512i idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)step));
  __m512 f[9];
  for (int k = 0; k < 9; k++)
    f[k] = _mm512_i32gather_ps(idx, w + base + sign * k, 4);
  const __m512 half = _mm512_set1_ps(0.5f);
  __m512 gf[4][3];   /* G f: rows 0 and 3 as they are, rows 1 and 2 (f0 ± f1 + f2) / 2 */
  for (int b = 0; b < 3; b++) {
    __m512 outer = _mm512_add_ps(f[b], f[6 + b]);
    gf[0][b] = f[b];
    gf[1][b] = _mm512_mul_ps(half, _mm512_add_ps(outer, f[3 + b]));
    gf[2][b] = _mm512_mul_ps(half, _mm512_sub_ps(outer, f[3 + b]));
    gf[3][b] = f[6 + b];
  }
  for (int i = 0; i < 4; i++) {   /* (G f) Gᵀ, the same along the columns */
    __m512 outer = _mm512_add_ps(gf[i][0], gf[i][2]);
    _mm512_storeu_ps(u + (i * 4 + 0) * stride, gf[i][0]);
    _mm512_storeu_ps(u + (i * 4 + 1) * stride, _mm512_mul_ps(half, _mm512_add_ps(outer, gf[i][1])));
    _mm512_storeu_ps(u + (i * 4 + 2) * stride, _mm512_mul_ps(half, _mm512_sub_ps(outer, gf[i][1])));
    _mm512_storeu_ps(u + (i * 4 + 3) * stride, gf[i][2]);
  }
}

/* U [16][oc / vb][src_c][vb] (the last block of 16 channels alone when oc
 * is not a multiple of vb; oc is a multiple of 16, rt_winograd_fits). */
void rt_winograd_pack(int dir, const int64_t *g, const float *w, float *shared) {
  if (dir == 2) return;
  RtWino q = rt_wino(g, dir);
  for (int64_t o0 = 0; o0 < q.oc; o0 += q.vb) {
    int64_t vb = q.oc - o0 < q.vb ? q.oc - o0 : q.vb;
    for (int64_t c = 0; c < q.src_c; c++)
      for (int64_t v = 0; v < vb; v += 16)
        pack_16(dir, g, w, o0 + v, c, shared + o0 * q.src_c + c * vb + v, q.src_c * q.oc);
  }
}

/* Bᵀ d B for 7 tiles side by side: r[i] holds row i of their 4×4 blocks
 * as 16 columns, tile k in columns 2k .. 2k + 3. Stores the 16 results as
 * 8 slots each at v[ξ·stride] (the eighth, and those of tiles past the
 * row, hold finite values that no output reads). */
__attribute__((target("avx512f"))) static void input_tiles(const __m512 r[4], float *v, int64_t stride) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
  __m512 e[4] = {_mm512_sub_ps(r[0], r[2]), _mm512_add_ps(r[1], r[2]), _mm512_sub_ps(r[2], r[1]),
                 _mm512_sub_ps(r[1], r[3])};
  for (int i = 0; i < 4; i++) {
    __m512 c0 = _mm512_permutexvar_ps(even, e[i]), c1 = _mm512_permutexvar_ps(_mm512_add_epi32(even, one), e[i]);
    __m512 c2 = _mm512_permutexvar_ps(_mm512_add_epi32(even, two), e[i]);
    __m512 c3 = _mm512_permutexvar_ps(_mm512_add_epi32(even, three), e[i]);
    _mm256_storeu_ps(v + (i * 4 + 0) * stride, _mm512_castps512_ps256(_mm512_sub_ps(c0, c2)));
    _mm256_storeu_ps(v + (i * 4 + 1) * stride, _mm512_castps512_ps256(_mm512_add_ps(c1, c2)));
    _mm256_storeu_ps(v + (i * 4 + 2) * stride, _mm512_castps512_ps256(_mm512_sub_ps(c2, c1)));
    _mm256_storeu_ps(v + (i * 4 + 3) * stride, _mm512_castps512_ps256(_mm512_sub_ps(c1, c3)));
  }
}

/* The transformed input of tile rows [ty0, ty0 + nr) of one image: V
 * [16][src_c][slots], group gi of row ty0 + r in the 8 slots from (r·groups
 * + gi)·8. */
__attribute__((target("avx512f"))) static void input_pass(const RtWino *q, const float *src, int64_t ty0, int64_t nr,
                                                          float *V, int64_t slots) {
  int64_t hw = q->src_h * q->src_w, stride = q->src_c * slots;
  for (int64_t r = 0; r < nr; r++)
    for (int64_t gi = 0; gi < q->groups; gi++) {
      int64_t col0 = 14 * gi - q->pl;   /* the source column of lane 0 */
      __mmask16 cols = rt_lanes(-col0, q->src_w - col0);
      int64_t row0 = 2 * (ty0 + r) - q->pt;
      __mmask16 m[4];
      for (int i = 0; i < 4; i++) m[i] = row0 + i >= 0 && row0 + i < q->src_h ? cols : 0;
      float *v = V + (r * q->groups + gi) * 8;
      for (int64_t c = 0; c < q->src_c; c++) {
        const float *img = src + c * hw + row0 * q->src_w + col0;   /* masked lanes are not read */
        __m512 rows[4];
        for (int i = 0; i < 4; i++) rows[i] = _mm512_maskz_loadu_ps(m[i], img + i * q->src_w);
        input_tiles(rows, v + c * slots, stride);
      }
    }
}

/* Aᵀ m A for one tile and 16 channels: m[ξ] at p[ξ·stride]; the 2×2
 * pixels into y0 (the upper row) and y1, the right one `next` floats on. */
__attribute__((target("avx512f"))) static void output_tile(const float *p, int64_t stride, float *y0, float *y1,
                                                           int64_t next) {
  __m512 s0[4], s1[4];
  for (int j = 0; j < 4; j++) {
    __m512 m0 = _mm512_loadu_ps(p + j * stride), m1 = _mm512_loadu_ps(p + (4 + j) * stride);
    __m512 m2 = _mm512_loadu_ps(p + (8 + j) * stride), m3 = _mm512_loadu_ps(p + (12 + j) * stride);
    s0[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
    s1[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
  }
  _mm512_storeu_ps(y0, _mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]));
  _mm512_storeu_ps(y1, _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]));
  _mm512_storeu_ps(y0 + next, _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]));
  _mm512_storeu_ps(y1 + next, _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]));
}

/* The output of tile rows [ty0, ty0 + nr) from M, a row of 16 pixels (8
 * tiles) and a block of channels at a time, through rows[2][16][vb]. */
static void output_pass(const RtWino *q, const float *M, int64_t ty0, int64_t nr, int64_t slots, float *rows,
                        float *out) {
  int64_t ohw = q->oh * q->ow, stride = q->oc * slots;
  float *upper = rows, *lower = rows + 16 * q->vb;
  for (int64_t r = 0; r < nr; r++) {
    int64_t oy = 2 * (ty0 + r);
    for (int64_t x0 = 0; x0 < q->ow; x0 += 16)
      for (int64_t o0 = 0; o0 < q->oc; o0 += q->vb) {
        int64_t vb = q->oc - o0 < q->vb ? q->oc - o0 : q->vb;
        int64_t tiles = (q->ow - x0 + 1) / 2 < 8 ? (q->ow - x0 + 1) / 2 : 8;
        for (int64_t k = 0; k < tiles; k++) {
          int64_t tx = x0 / 2 + k, slot = (r * q->groups + tx / 7) * 8 + tx % 7;
          const float *m = M + o0 * slots + slot * vb;
          for (int64_t v = 0; v < vb; v += 16)
            output_tile(m + v, stride, upper + 2 * k * vb + v, lower + 2 * k * vb + v, vb);
        }
        RtRun run = {0, (int)(q->ow - x0 < 16 ? q->ow - x0 : 16), oy * q->ow + x0};
        rt_store_tile(upper, vb, &run, 1, out + o0 * ohw, ohw);
        if (oy + 1 < q->oh) {
          run.dst += q->ow;
          rt_store_tile(lower, vb, &run, 1, out + o0 * ohw, ohw);
        }
      }
  }
}

/* A dy Aᵀ (the adjoint of Aᵀ m A) of tile rows [ty0, ty0 + nr) of one
 * image: D [16][oc / vb][slots][vb], as the products of the forward pass;
 * zero where no output pixel is (a group's eighth slot, tiles past the
 * row, the half tile past an odd edge). Each tile's dy is transposed to
 * channels in vectors first, 16 channels by 16 pixels at a time. */
__attribute__((target("avx512f"))) static void grad_pass(const RtWino *q, const float *dy, int64_t ty0, int64_t nr,
                                                         float *D, int64_t slots) {
  int64_t ohw = q->oh * q->ow, stride = q->oc * slots;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = 0; r < nr; r++)
    for (int64_t gi = 0; gi < q->groups; gi++) {
      int64_t oy = 2 * (ty0 + r), x0 = 14 * gi, slot0 = (r * q->groups + gi) * 8;
      __mmask16 upper = rt_lanes(0, q->ow - x0 < 14 ? q->ow - x0 : 14), lower = oy + 1 < q->oh ? upper : 0;
      for (int64_t o16 = 0; o16 < q->oc; o16 += 16) {
        int64_t b0 = o16 / q->vb * q->vb, vb = q->oc - b0 < q->vb ? q->oc - b0 : q->vb;
        __m512 p0[16], p1[16];
        for (int k = 0; k < 16; k++) {
          const float *row = dy + (o16 + k) * ohw + oy * q->ow + x0;   /* masked lanes are not read */
          p0[k] = _mm512_maskz_loadu_ps(upper, row);
          p1[k] = _mm512_maskz_loadu_ps(lower, row + q->ow);
        }
        rt_transpose16(p0);   /* p0[j]: pixel j's 16 channels */
        rt_transpose16(p1);
        float *d = D + b0 * slots + slot0 * vb + o16 - b0;
        for (int k = 0; k < 7; k++) {
          __m512 t[4][2];   /* A y: rows y0, y0 + y1, y0 - y1, -y1 */
          for (int j = 0; j < 2; j++) {
            __m512 y0 = p0[2 * k + j], y1 = p1[2 * k + j];
            t[0][j] = y0, t[1][j] = _mm512_add_ps(y0, y1), t[2][j] = _mm512_sub_ps(y0, y1);
            t[3][j] = _mm512_sub_ps(zero, y1);
          }
          for (int i = 0; i < 4; i++) {   /* (A y) Aᵀ, the same along the columns */
            float *u = d + i * 4 * stride + k * vb;
            _mm512_storeu_ps(u, t[i][0]);
            _mm512_storeu_ps(u + stride, _mm512_add_ps(t[i][0], t[i][1]));
            _mm512_storeu_ps(u + 2 * stride, _mm512_sub_ps(t[i][0], t[i][1]));
            _mm512_storeu_ps(u + 3 * stride, _mm512_sub_ps(zero, t[i][1]));
          }
        }
        for (int xi = 0; xi < 16; xi++) _mm512_storeu_ps(d + xi * stride + 7 * vb, zero);
      }
    }
}

/* dw += Gᵀ dU G for every filter: dU [16][oc / vb][src_c][vb], 16 output
 * channels a vector. */
__attribute__((target("avx512f"))) static void filter_grads(const RtWino *q, const float *dU, float *dw) {
  const __m512 half = _mm512_set1_ps(0.5f);
  int64_t stride = q->src_c * q->oc;
  for (int64_t o0 = 0; o0 < q->oc; o0 += q->vb) {
    int64_t vb = q->oc - o0 < q->vb ? q->oc - o0 : q->vb;
    for (int64_t c = 0; c < q->src_c; c++)
      for (int64_t v = 0; v < vb; v += 16) {
        const float *u = dU + o0 * q->src_c + c * vb + v;
        __m512 a[3][4], f[3][3];
        for (int j = 0; j < 4; j++) {   /* Gᵀ dU: rows d0 + (d1 + d2)/2, (d1 - d2)/2, (d1 + d2)/2 + d3 */
          __m512 d0 = _mm512_loadu_ps(u + j * stride), d1 = _mm512_loadu_ps(u + (4 + j) * stride);
          __m512 d2 = _mm512_loadu_ps(u + (8 + j) * stride), d3 = _mm512_loadu_ps(u + (12 + j) * stride);
          __m512 mid = _mm512_mul_ps(half, _mm512_add_ps(d1, d2));
          a[0][j] = _mm512_add_ps(d0, mid), a[1][j] = _mm512_mul_ps(half, _mm512_sub_ps(d1, d2));
          a[2][j] = _mm512_add_ps(mid, d3);
        }
        for (int i = 0; i < 3; i++) {   /* (Gᵀ dU) G, the same along the columns */
          __m512 mid = _mm512_mul_ps(half, _mm512_add_ps(a[i][1], a[i][2]));
          f[i][0] = _mm512_add_ps(a[i][0], mid), f[i][1] = _mm512_mul_ps(half, _mm512_sub_ps(a[i][1], a[i][2]));
          f[i][2] = _mm512_add_ps(mid, a[i][3]);
        }
        float lanes[9][16];
        for (int k = 0; k < 9; k++) _mm512_storeu_ps(lanes[k], f[k / 3][k % 3]);
        for (int64_t l = 0; l < 16; l++)
          for (int k = 0; k < 9; k++) dw[((o0 + v + l) * q->src_c + c) * 9 + k] += lanes[k][l];
      }
  }
}

/* The adjoint in w: the products Σ_slots D[ξ][slot][o] · V[ξ][c][slot] by
 * direct.c's filter-gradient kernel, the slots as its pixels (one row of
 * them) and input channels as its taps (6 at a time with 64 output
 * channels, else 9), added up in dU [16][oc / vb][src_c][vb]. */
static void grad_products(const RtWino *q, const float *V, const float *D, int64_t slots, float *dU) {
  RtGrid k = {.oh = 1, .wg = slots, .ow = slots};
  int64_t off[RT_DIRECT_MAX_TAPS];
  for (int t = 0; t < RT_DIRECT_MAX_TAPS; t++) off[t] = t * slots;
  for (int64_t xi = 0; xi < 16; xi++)
    for (int64_t o0 = 0; o0 < q->oc; o0 += q->vb) {
      int64_t vb = q->oc - o0 < q->vb ? q->oc - o0 : q->vb, most = vb == 64 ? 6 : RT_DIRECT_MAX_TAPS;
      for (int64_t c0 = 0; c0 < q->src_c; c0 += most)
        rt_direct_wgrad(&k, off, V + (xi * q->src_c + c0) * slots, D + (xi * q->oc + o0) * slots,
                        dU + xi * q->src_c * q->oc + o0 * q->src_c + c0 * vb, vb,
                        q->src_c - c0 < most ? q->src_c - c0 : most);
    }
}

void rt_winograd_part(int dir, const int64_t *g, const float *a, const float *b, float *out, const float *shared,
                      float *scratch, int64_t lo, int64_t hi, float *dw) {
  RtWino q = rt_wino(g, dir);
  /* V from a 64-byte boundary: each group's 8 slots on 32 bytes */
  float *V = scratch + (16 - (int64_t)((uintptr_t)scratch / sizeof(float) % 16)) % 16;
  float *M = V + 16 * q.src_c * q.slots, *rest = M + 16 * q.oc * q.slots;   /* M: products, or D */
  int64_t src_size = q.src_c * q.src_h * q.src_w, out_size = q.oc * q.oh * q.ow, off[1] = {0};
  memset(rest, 0, sizeof(float) * (size_t)(dir == 2 ? 16 * q.src_c * q.oc : 2 * 16 * q.vb));
  for (int64_t i = lo; i < hi; i++)
    for (int64_t ty0 = 0; ty0 < q.th; ty0 += q.rows) {
      int64_t nr = q.th - ty0 < q.rows ? q.th - ty0 : q.rows, slots = nr * q.groups * 8;
      input_pass(&q, a + i * src_size, ty0, nr, V, slots);
      if (dir == 2) {
        grad_pass(&q, b + i * out_size, ty0, nr, M, slots);
        grad_products(&q, V, M, slots, rest);
        continue;
      }
      /* the products, as the direct kernel's blocks of 7 pixels: the
       * planes are input channels of `slots` slots, one tap */
      RtGrid k = {.cin = q.src_c, .plane = slots, .taps = 1};
      for (int64_t xi = 0; xi < 16; xi++)
        for (int64_t o0 = 0; o0 < q.oc; o0 += q.vb) {
          int64_t vb = q.oc - o0 < q.vb ? q.oc - o0 : q.vb;
          const float *u = shared + xi * q.src_c * q.oc + o0 * q.src_c;
          float *m = M + xi * q.oc * slots + o0 * slots;
          for (int64_t s0 = 0; s0 < slots; s0 += 8)
            rt_direct_block(&k, off, V + xi * q.src_c * slots + s0, u, m + s0 * vb, 7, vb);
        }
      output_pass(&q, M, ty0, nr, slots, rest, out + i * out_size);
    }
  if (dir == 2) filter_grads(&q, rest, dw);
}

#else   /* the compiler never picks RT_CONV_WINOGRAD here (rt_avx512) */
void rt_winograd_pack(int dir, const int64_t *g, const float *w, float *shared) {
  (void)dir, (void)g, (void)w, (void)shared;
}
void rt_winograd_part(int dir, const int64_t *g, const float *a, const float *b, float *out, const float *shared,
                      float *scratch, int64_t lo, int64_t hi, float *dw) {
  (void)dir, (void)g, (void)a, (void)b, (void)out, (void)shared, (void)scratch, (void)lo, (void)hi, (void)dw;
}
#endif
