/*
 * parts.c — the two threads a compiled step runs on (see kernels.h).
 *
 * A step's big kernels are split in two parts run at once: part 0 by the
 * step's own thread, part 1 by one worker thread. Matrix products split
 * their larger side (nnc_sgemm), elementwise loops their outer loop
 * (nnc_parallel), convolutions and poolings their images (kernels.c).
 * Small kernels run whole on the step's thread: waking the worker would
 * cost more than they do.
 *
 * Why not OpenBLAS's own threads: on the thin products of a training step
 * (128 rows, a few hundred columns) two OpenBLAS threads run no faster
 * than one, and often slower, while two halves side by side, one OpenBLAS
 * thread each, run 1.4-1.9 times faster (measured per product of the
 * benchmark autoencoder). So when the worker runs, OpenBLAS gets half its
 * threads (one on two cores) for the whole process, and never runs threads
 * of its own beside ours.
 *
 * The worker spins for a while after each part, so that the next part of
 * the same step starts within a microsecond (a sleeping thread takes tens
 * of microseconds to wake, as long as a small kernel); then it sleeps on a
 * condition variable, so that between steps, and in a process that no
 * longer trains, it takes no CPU.
 *
 * The second part is claimed, not handed over: whichever thread is free
 * first runs it. When the step's thread has finished its own part and the
 * worker has not started the other (it is asleep, or another process has
 * its core), the step's thread runs both, so a busy machine costs at worst
 * the time of one thread and never a wait for a descheduled worker.
 *
 * How many threads: NNC_KERNEL_THREADS=1 says one; otherwise two when
 * OpenBLAS would run two or more (OPENBLAS_NUM_THREADS, by default the
 * CPUs) and the machine has two CPUs. `OPENBLAS_NUM_THREADS=1 nnc ...`
 * therefore runs everything on one core, as a one-thread comparison needs.
 */
#include "runtime/kernels.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#else
static inline void cpu_relax(void) {}
#endif

/* How long the worker waits, spinning, for the next part before it sleeps. */
enum { SPIN_NS = 200 * 1000 };
/* A product of fewer multiply-adds runs whole. */
enum { MIN_GEMM_MADDS = 1 << 19 };

static struct {
  pthread_mutex_t mu;
  pthread_cond_t go;
  RtPartFn *fn;
  void *arg;
  atomic_uint_fast64_t posted;     /* the ticket of the latest call */
  atomic_uint_fast64_t claimed;    /* the latest ticket whose part 1 a thread took */
  atomic_uint_fast64_t finished;   /* the latest ticket whose part 1 the worker ran */
  atomic_int sleeping;
  int threads;   /* 0: not decided yet; else 1 or 2 */
} pool2 = {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The next ticket after `seen`: spun for, then slept for. The store of
 * `sleeping` and the load of `posted` are sequentially consistent, as are
 * the poster's store of `posted` and load of `sleeping`, so one of the two
 * always sees the other: no post is missed. */
static uint64_t wait_posted(uint64_t seen) {
  uint64_t start = now_ns();
  for (int spins = 0;; spins++) {
    uint64_t t = atomic_load(&pool2.posted);
    if (t != seen) return t;
    cpu_relax();
    if (spins % 64 == 63 && now_ns() - start > SPIN_NS) break;
  }
  pthread_mutex_lock(&pool2.mu);
  atomic_store(&pool2.sleeping, 1);
  uint64_t t;
  while ((t = atomic_load(&pool2.posted)) == seen) pthread_cond_wait(&pool2.go, &pool2.mu);
  atomic_store(&pool2.sleeping, 0);
  pthread_mutex_unlock(&pool2.mu);
  return t;
}

/* Takes part 1 of call `ticket` if no thread has yet. */
static bool claim(uint64_t ticket) {
  uint_fast64_t before = ticket - 1;
  return atomic_compare_exchange_strong(&pool2.claimed, &before, ticket);
}

static void *worker_main(void *unused) {
  (void)unused;
  uint64_t seen = 0;
  for (;;) {
    seen = wait_posted(seen);
    if (!claim(seen)) continue;   /* the step's thread ran it */
    pool2.fn(pool2.arg, 1);
    atomic_store(&pool2.finished, seen);
  }
  return NULL;
}

int nnc_threads(void) {
  if (pool2.threads == 0) {
    pool2.threads = 1;
    const char *env = getenv("NNC_KERNEL_THREADS");
    int blas = openblas_get_num_threads();
    if (!(env && !strcmp(env, "1")) && blas >= 2 && sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
      pthread_t t;
      pthread_attr_t at;
      pthread_attr_init(&at);
      pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
      if (pthread_create(&t, &at, worker_main, NULL) == 0) {
        pool2.threads = 2;
        openblas_set_num_threads(blas / 2);
      }
      pthread_attr_destroy(&at);
    }
  }
  return pool2.threads;
}

void rt_run_parts(RtPartFn *fn, void *arg) {
  if (nnc_threads() < 2) {
    fn(arg, 0);
    fn(arg, 1);
    return;
  }
  pool2.fn = fn, pool2.arg = arg;
  uint64_t ticket = atomic_load(&pool2.posted) + 1;
  atomic_store(&pool2.posted, ticket);
  if (atomic_load(&pool2.sleeping)) {
    pthread_mutex_lock(&pool2.mu);
    pthread_cond_signal(&pool2.go);
    pthread_mutex_unlock(&pool2.mu);
  }
  fn(arg, 0);
  if (claim(ticket)) {   /* the worker has not started: run part 1 here */
    fn(arg, 1);
    return;
  }
  /* the worker runs it, and started before this part ended: spin, but
   * yield if the worker was descheduled */
  for (int spins = 0; atomic_load(&pool2.finished) != ticket; spins++) {
    cpu_relax();
    if (spins > 100000) sched_yield();
  }
}

/* ---- loops -------------------------------------------------------------- */

typedef struct {
  void (*fn)(void *ctx, int64_t lo, int64_t hi);
  void *ctx;
  int64_t mid, total;
} Loop;

static void loop_part(void *arg, int part) {
  const Loop *l = arg;
  if (part == 0) l->fn(l->ctx, 0, l->mid);
  else l->fn(l->ctx, l->mid, l->total);
}

/* Runs fn over [0, total) as two halves at once, if worth it; returns
 * whether it did. */
static bool run_halves(void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx, int64_t total, int64_t elements) {
  if (total < 2 || elements < RT_MIN_PARALLEL_ELEMENTS || nnc_threads() < 2) {
    fn(ctx, 0, total);
    return false;
  }
  int64_t mid = total / 2;
  if (total >= 64) mid &= ~(int64_t)15;   /* a 1-d loop's halves start on whole vectors */
  Loop l = {.fn = fn, .ctx = ctx, .mid = mid, .total = total};
  rt_run_parts(loop_part, &l);
  return true;
}

void nnc_parallel(void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx, int64_t total, int64_t elements) {
  run_halves(fn, ctx, total, elements);
}

/* The halves always split at the same row for the same loop, and the two
 * results are combined in one order, so that a run is repeatable (one
 * thread sums in another order: the last bits may differ from it). */
void nnc_parallel_reduce(void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx, int64_t total, int64_t elements,
                         float *result, const float *partial, int64_t count, int64_t is_max) {
  if (!run_halves(fn, ctx, total, elements)) return;
  for (int64_t i = 0; i < count; i++)
    if (!is_max) result[i] += partial[i];
    else if (partial[i] > result[i]) result[i] = partial[i];
}

/* ---- matrix products ------------------------------------------------------ */

typedef struct {
  bool ta, tb, split_m;
  int64_t M, N, K, lda, ldb, ldc, mid;
  const float *A, *B;
  float *C;
} Gemm;

static void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (rt_narrow_sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc)) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
              1.0f, A, (int)(lda > 0 ? lda : 1), B, (int)(ldb > 0 ? ldb : 1), 0.0f, C, (int)(ldc > 0 ? ldc : 1));
}

/* Rows [lo, hi) of C (split_m) or its columns [lo, hi). */
static void gemm_part(void *arg, int part) {
  const Gemm *g = arg;
  int64_t lo = part == 0 ? 0 : g->mid, hi = part == 0 ? g->mid : g->split_m ? g->M : g->N;
  if (g->split_m) {
    const float *a = g->ta ? g->A + lo : g->A + lo * g->lda;   /* Aᵀ: columns of the stored A */
    gemm(g->ta, g->tb, hi - lo, g->N, g->K, a, g->lda, g->B, g->ldb, g->C + lo * g->ldc, g->ldc);
  } else {
    const float *b = g->tb ? g->B + lo * g->ldb : g->B + lo;   /* Bᵀ: rows of the stored B */
    gemm(g->ta, g->tb, g->M, hi - lo, g->K, g->A, g->lda, b, g->ldb, g->C + lo, g->ldc);
  }
}

void nnc_sgemm(int64_t ta, int64_t tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
               int64_t ldb, float *C, int64_t ldc) {
  if (M * N * K < MIN_GEMM_MADDS || (M < 32 && N < 32) || nnc_threads() < 2) {
    gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    return;
  }
  Gemm g = {.ta = ta, .tb = tb, .split_m = M >= N, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc,
            .A = A, .B = B, .C = C};
  int64_t side = g.split_m ? M : N;
  g.mid = side / 2;
  if (!g.split_m && side >= 64) g.mid &= ~(int64_t)15;   /* columns on whole vectors */
  rt_run_parts(gemm_part, &g);
}
