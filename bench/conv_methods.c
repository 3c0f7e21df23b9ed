/*
 * conv_methods.c — one convolution, one direction, timed with two of the
 * runtime's methods on the same data in the same process: the figures
 * behind the compiler's choice of method (docs/training.md, "How a
 * convolution runs").
 *
 *     cc -O2 -I. bench/conv_methods.c runtime/direct.c runtime/winograd.c runtime/rows.c \
 *        runtime/narrow.c runtime/parts.c runtime/kernels.c -lopenblas -lm -lpthread -o conv_methods
 *     NNC_KERNEL_THREADS=1 OPENBLAS_NUM_THREADS=1 ./conv_methods C H O K S P DIR [N] [A B]
 *
 * A square image H×H of C channels, O output channels, a K×K window,
 * stride S, padding P, DIR 0 forward, 1 the input gradient, 2 the filter
 * gradient, N images (64); A and B are two methods of im2col, vector
 * (direct.c), rows (rows.c) and winograd (direct and winograd by
 * default). Prints, for each, the fastest of 15 calls (CPU time), its
 * GFLOP/s counted as the direct sum's 2·N·OH·OW·O·C·K·K, and the largest
 * difference between the two results. The methods are not checked for
 * fitting the geometry (kernels.h says which do).
 */
#include "runtime/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int method(const char *name) {
  static const char *const names[] = {"im2col", "gemm", "depthwise", "vector", "rows", "winograd"};
  for (int m = 0; m < 6; m++)
    if (!strcmp(name, names[m])) return m;
  fprintf(stderr, "conv_methods: unknown method '%s' (im2col, vector, rows, winograd)\n", name);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: conv_methods C H O K S P DIR [N] [A B]\n");
    return 2;
  }
  int64_t C = atol(argv[1]), H = atol(argv[2]), O = atol(argv[3]), K = atol(argv[4]), S = atol(argv[5]);
  int64_t P = atol(argv[6]), n = argc > 8 ? atol(argv[8]) : 64;
  int dir = atoi(argv[7]);
  const char *names[2] = {argc > 10 ? argv[9] : "vector", argc > 10 ? argv[10] : "winograd"};
  const int methods[2] = {method(names[0]), method(names[1])};
  int64_t OH = (H + 2 * P - K) / S + 1;
  if (C < 1 || H < 1 || O < 1 || K < 1 || S < 1 || P < 0 || OH < 1 || n < 1 || dir < 0 || dir > 2) {
    fprintf(stderr, "conv_methods: no such convolution\n");
    return 2;
  }
  int64_t g[2][RT_GEOM_COUNT];
  for (int m = 0; m < 2; m++) {
    int64_t *q = g[m];
    memset(q, 0, sizeof g[m]);
    q[RT_GEOM_C] = C, q[RT_GEOM_H] = q[RT_GEOM_W] = H, q[RT_GEOM_O] = O, q[RT_GEOM_OH] = q[RT_GEOM_OW] = OH;
    q[RT_GEOM_KH] = q[RT_GEOM_KW] = K, q[RT_GEOM_SH] = q[RT_GEOM_SW] = S, q[RT_GEOM_PH] = q[RT_GEOM_PW] = P;
    q[RT_GEOM_DH] = q[RT_GEOM_DW] = 1, q[RT_GEOM_GROUPS] = 1, q[RT_GEOM_METHOD] = methods[m];
    /* im2col: about 512 output pixels a GEMM, as the compiler chooses */
    q[RT_GEOM_CHUNK] = (512 + OH * OH - 1) / (OH * OH);
  }
  int64_t xs = n * C * H * H, ws = O * C * K * K, ys = n * O * OH * OH, outs = dir == 0 ? ys : dir == 1 ? xs : ws;
  float *x = malloc(sizeof(float) * (size_t)xs), *w = malloc(sizeof(float) * (size_t)ws);
  float *dy = malloc(sizeof(float) * (size_t)ys), *out[2], *scratch[2];
  srand(1);
  for (int64_t i = 0; i < xs; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (int64_t i = 0; i < ws; i++) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (int64_t i = 0; i < ys; i++) dy[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (int m = 0; m < 2; m++) {
    out[m] = malloc(sizeof(float) * (size_t)outs);
    scratch[m] = malloc(sizeof(float) * (size_t)rt_conv_scratch(g[m], dir, n));
  }
  double best[2] = {INFINITY, INFINITY};
  for (int r = 0; r < 15; r++)
    for (int m = 0; m < 2; m++) {   /* the two methods alternate */
      double t0 = cpu_seconds();
      if (dir == 0) nnc_conv2d(x, w, out[m], scratch[m], n, g[m]);
      else if (dir == 1) nnc_conv2d_bwd_x(dy, w, out[m], scratch[m], n, g[m]);
      else nnc_conv2d_bwd_w(x, dy, out[m], scratch[m], n, g[m]);
      double t = cpu_seconds() - t0;
      best[m] = t < best[m] ? t : best[m];
    }
  double diff = 0, largest = 0;
  for (int64_t i = 0; i < outs; i++) {
    diff = fmax(diff, fabs((double)out[0][i] - out[1][i]));
    largest = fmax(largest, fabs((double)out[0][i]));
  }
  double flops = 2.0 * (double)(n * OH * OH * O * C * K * K);
  for (int m = 0; m < 2; m++)
    printf("%-10s %9.3f ms %7.1f GFLOP/s\n", names[m], best[m] * 1e3, flops / best[m] / 1e9);
  printf("largest difference %.2e (largest value %.2f)\n", diff, largest);
  for (int m = 0; m < 2; m++) free(out[m]), free(scratch[m]);
  free(x), free(w), free(dy);
  return 0;
}
