/*
 * direct.h — the pieces of direct.c's kernels that winograd.c builds on:
 * the register-blocked block and filter-gradient kernels, the tile store
 * and the 16×16 transpose. Only for the AVX-512 kernel files: it brings
 * in <immintrin.h>, which kernels.h (read by the whole compiler) keeps
 * out.
 */
#ifndef NNC_RUNTIME_DIRECT_H
#define NNC_RUNTIME_DIRECT_H

#include "runtime/kernels.h"

#if RT_HAVE_AVX512
#include <immintrin.h>

/* One block of the direct kernel: tile[j][v] = Σ_plane Σ_tap
 * wp[plane][tap][v] · in[plane·q->plane + j + off[tap]] for vb (64, 32 or
 * 16) output channels v and xb pixels j (7, or 14 with fewer than 64
 * channels); tile is [xb][vb]. */
void rt_direct_block(const RtGrid *q, const int64_t *off, const float *in, const float *wp, float *tile, int64_t xb,
                     int64_t vb);
/* The runs of a block's pixels that are output pixels, each in one output
 * row: lanes [j0, j0 + len) go to out[dst ..]. */
typedef struct {
  int j0, len;
  int64_t dst;
} RtRun;
/* A tile [16][vb] (pixels × channels) transposed into out [vb][ohw]: for
 * each run, its pixels of each channel. */
void rt_store_tile(const float *tile, int64_t vb, const RtRun *runs, int nruns, float *out, int64_t ohw);
/* The filter gradient's kernel: sum[t][v] += Σ_p dyt[p][v] · plane[p +
 * off[t]] for taps t < `taps` (at most RT_DIRECT_MAX_TAPS; 6 with 64
 * channels) and vb (64, 32 or 16) channels v, over the pixels p of q's
 * output rows (p from oy·wg, ow of them a row); dyt is [p][vb], sum
 * [taps][vb]. */
void rt_direct_wgrad(const RtGrid *q, const int64_t *off, const float *plane, const float *dyt, float *sum, int64_t vb,
                     int64_t taps);
/* A 16×16 transpose in registers: r[j] holds row j; afterwards r[k]
 * holds column k. */
void rt_transpose16(__m512 r[16]);
#endif

#endif
