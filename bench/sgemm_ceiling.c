/* sgemm_ceiling: how fast OpenBLAS's cblas_sgemm runs the matrix products of
 * one training step of the GEMM-bound benchmark workloads, alone. This is the
 * ceiling a compiled step that calls cblas_sgemm can reach: nnc's achieved
 * GFLOP/s (the same products' FLOPs divided by its whole step time) is
 * compared with it.
 *
 * A Linear(in, out) layer on a batch of B rows costs three products, all
 * row-major as nnc emits them:
 *   forward  Y[B,out]  = X[B,in] . W[out,in]^T     (NoTrans, Trans)
 *   input    dX[B,in]  = dY[B,out] . W[out,in]     (NoTrans, NoTrans)  not for the first layer
 *   weight   dW[out,in] = dY[B,out]^T . X[B,in]    (Trans, NoTrans)
 *
 * Build and run (bench/run.sh does this):
 *   cc -O2 -o sgemm_ceiling bench/sgemm_ceiling.c -lopenblas
 *   OPENBLAS_NUM_THREADS=1 ./sgemm_ceiling [-v] [repeats]
 *   ./sgemm_ceiling --core       only the name of the kernels OpenBLAS chose
 *
 * Prints which kernels OpenBLAS chose for this CPU, then one line per workload
 * (and with -v one per product):
 *   openblas core=NAME threads=N
 *   sgemm WORKLOAD gemms=N mflop=F ms=T gflops=G best_ms=T best_gflops=G
 * where ms is the median over the repeats of the time of all N products in a
 * row, gflops = mflop / ms / 1000, and best_ms the fastest repeat. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  int ta, tb;      /* transposed A / B */
  int m, n, k;     /* C[m,n] = op(A)[m,k] . op(B)[k,n] */
} Gemm;

typedef struct {
  const char *name;
  int batch;
  int nlayers;
  int dims[8];     /* layer i is Linear(dims[i], dims[i+1]) */
} Workload;

static const Workload WORKLOADS[] = {
    {"fmnist_mlp", 128, 3, {784, 512, 256, 10}},
    {"autoencoder", 128, 4, {784, 128, 64, 128, 784}},
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static int gemms_of(const Workload *w, Gemm *g) {
  int n = 0, b = w->batch;
  for (int i = 0; i < w->nlayers; i++) {
    int in = w->dims[i], out = w->dims[i + 1];
    g[n++] = (Gemm){0, 1, b, out, in};                /* forward */
    if (i > 0) g[n++] = (Gemm){0, 0, b, in, out};     /* gradient of the input */
    g[n++] = (Gemm){1, 0, out, in, b};                /* gradient of the weight */
  }
  return n;
}

static void run(const Gemm *g, float *a, float *b, float *c) {
  int lda = g->ta ? g->m : g->k;   /* A is stored [m,k], or [k,m] when transposed */
  int ldb = g->tb ? g->k : g->n;   /* B is stored [k,n], or [n,k] when transposed */
  cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, g->m, g->n,
              g->k, 1.0f, a, lda, b, ldb, 0.0f, c, g->n);
}

/* median ms of running the products g[0..n) in a row (and in *best the
 * fastest), each measurement long enough (>= 50 ms) to be above the clock's
 * noise */
static double time_gemms(const Gemm *g, int n, int repeats, float *a, float *b, float *c, double *best) {
  double once = now();
  for (int i = 0; i < n; i++) run(&g[i], a, b, c);
  once = now() - once;
  long inner = 1;
  while ((double)inner * once < 0.05 && inner < 1000000) inner *= 2;
  for (int w = 0; w < 3; w++)
    for (int i = 0; i < n; i++) run(&g[i], a, b, c);
  double ms[64];
  if (repeats > 64) repeats = 64;
  for (int r = 0; r < repeats; r++) {
    double t0 = now();
    for (long k = 0; k < inner; k++)
      for (int i = 0; i < n; i++) run(&g[i], a, b, c);
    ms[r] = (now() - t0) * 1000 / (double)inner;
  }
  qsort(ms, (size_t)repeats, sizeof ms[0], cmp_double);
  if (best) *best = ms[0];
  return ms[repeats / 2];
}

static double mflop(const Gemm *g, int n) {
  double f = 0;
  for (int i = 0; i < n; i++) f += 2.0 * g[i].m * g[i].n * g[i].k;
  return f * 1e-6;
}

int main(int argc, char **argv) {
  int verbose = 0, repeats = 11;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--core")) {
      printf("%s\n", openblas_get_corename());
      return 0;
    }
    if (!strcmp(argv[i], "-v")) verbose = 1;
    else if (atoi(argv[i]) > 0) repeats = atoi(argv[i]);
    else {
      fprintf(stderr, "usage: sgemm_ceiling [-v] [repeats] | --core\n");
      return 2;
    }
  }
  /* one buffer each for A, B, C, large enough for every product; the values
   * are small and finite (no denormals, no infinities) */
  size_t cap = 1024 * 1024;
  float *a = malloc(cap * sizeof(float)), *b = malloc(cap * sizeof(float)), *c = malloc(cap * sizeof(float));
  if (!a || !b || !c) return 1;
  for (size_t i = 0; i < cap; i++) {
    a[i] = (float)((i * 7) % 13) * 0.01f;
    b[i] = (float)((i * 5) % 11) * 0.01f;
    c[i] = 0;
  }
  /* DYNAMIC_ARCH OpenBLAS picks its kernels at load time; a CPU it does not
   * know gets a generic core (OPENBLAS_CORETYPE overrides the choice) */
  printf("openblas core=%s threads=%d\n", openblas_get_corename(), openblas_get_num_threads());
  for (size_t w = 0; w < sizeof WORKLOADS / sizeof WORKLOADS[0]; w++) {
    Gemm g[32];
    int n = gemms_of(&WORKLOADS[w], g);
    double best, ms = time_gemms(g, n, repeats, a, b, c, &best);
    printf("sgemm %s gemms=%d mflop=%.2f ms=%.4f gflops=%.1f best_ms=%.4f best_gflops=%.1f\n", WORKLOADS[w].name, n,
           mflop(g, n), ms, mflop(g, n) / ms, best, mflop(g, n) / best);
    if (verbose)
      for (int i = 0; i < n; i++) {
        double t = time_gemms(&g[i], 1, repeats, a, b, c, NULL);
        printf("  %s%s m=%d n=%d k=%d  %.4f ms  %.1f GFLOP/s\n", g[i].ta ? "T" : "N", g[i].tb ? "T" : "N", g[i].m,
               g[i].n, g[i].k, t, mflop(&g[i], 1) / t);
      }
  }
  Gemm big = {0, 0, 512, 512, 512};
  double best, ms = time_gemms(&big, 1, repeats, a, b, c, &best);
  printf("sgemm square512 gemms=1 mflop=%.2f ms=%.4f gflops=%.1f best_ms=%.4f best_gflops=%.1f\n", mflop(&big, 1), ms,
         mflop(&big, 1) / ms, best, mflop(&big, 1) / best);
  free(a);
  free(b);
  free(c);
  return 0;
}
