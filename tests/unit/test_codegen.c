/*
 * test_codegen.c — JIT-compiled steps against the reference interpreter.
 *
 * Each test builds a small graph with the ir.h builders, fuses it, places
 * every buffer with a trivial memory planner (one slot per materialized
 * node, sized for the largest batch, views at their source's offset),
 * compiles it, and runs it for batch sizes 1, 7 and 256 on random data.
 * interp_run evaluates the same graph in double precision; every stored
 * node and every leaf (after the ASSIGNs) must agree within a relative
 * tolerance of 1e-5 (absolute 1e-5 near zero).
 *
 * Leaves get their data by name: "pos…" uniform in [0.1, 2), "ids…"
 * integers in [0, 7), anything else uniform in [-1, 1).
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "compiler/codegen.h"

enum { NMAX = 256 };
static const Loc L0;

/* "B,3" -> [B, 3]; "2B" is 2·B; "" is a scalar. */
static Shape S(const char *spec) {
  Shape s = {0};
  const char *p = spec;
  while (*p) {
    int64_t c = 0;
    bool num = false;
    while (*p >= '0' && *p <= '9') c = c * 10 + (*p++ - '0'), num = true;
    if (*p == 'B') {
      Dim d = dim_sym("B");
      d.c = num ? c : 1;
      s.d[s.rank++] = d;
      p++;
    } else {
      s.d[s.rank++] = dim_int(c);
    }
    if (*p == ',') p++;
  }
  return s;
}

static IrNode *leaf(Graph *g, IrOp op, const char *name, const char *shape) {
  Shape s = S(shape);
  return ir_leaf(g, op, DT_FLOAT, &s, name, L0);
}

static IrNode *input(Graph *g, const char *name, const char *shape) { return leaf(g, IR_INPUT, name, shape); }

/* ---- the harness ------------------------------------------------------ */

/* The trivial planner: every buffer its own slot, sized for nmax rows. */
static int64_t plan_for(const Graph *g, const Fusion *f, int64_t nmax) {
  int64_t next = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    IrNode *x = g->nodes.items[i];
    x->offset = -1;
    if (x->op == IR_RESHAPE) {
      const IrNode *r = x;
      while (r->op == IR_RESHAPE) r = r->src[0];
      x->offset = r->offset;
    } else if (f->materialized[i]) {
      x->offset = next;
      next += cg_numel(&x->shape, nmax);
    }
  }
  int64_t scratch = 0;   /* the convolutions' columns, after everything */
  for (int i = 0; i < g->nodes.len; i++)
    if (ir_scratch(g->nodes.items[i], nmax) > scratch) scratch = ir_scratch(g->nodes.items[i], nmax);
  ((Graph *)g)->scratch = scratch ? next : -1;
  return next + scratch;
}

static int64_t plan(const Graph *g, const Fusion *f) { return plan_for(g, f, NMAX); }

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* Element e of the leaf `name`: "pos..." positive, "ids..." class ids,
 * "rows" its index (a row's, for a [B, 1]), else uniform in [-1, 1]. */
static float sample(const char *name, int64_t e) {
  if (name && !strcmp(name, "rows")) return (float)e;
  if (name && !strncmp(name, "pos", 3)) return (float)(0.1 + 1.9 * urand());
  if (name && !strncmp(name, "ids", 3)) return (float)(int)(7 * urand());
  return (float)(2 * urand() - 1);
}

static Jit *jit;
static int step_no;

/* `terms`: how many float32 values each element sums (its rounding grows
 * as their square root, times their size, which cancellation can hide from
 * the result: a sum of 256 values in [-1, 1] near 0 is off by ~1e-5; 1 for
 * everything but long reductions). */
static void check_close(const char *what, int id, const float *got, const double *ref, int64_t count, int64_t n,
                        double terms) {
  for (int64_t i = 0; i < count; i++) {
    double tol = 1e-5 * fmax(fabs(ref[i]), 1.0) * fmax(1.0, sqrt(terms) / 4);
    if (!(fabs((double)got[i] - ref[i]) <= tol))
      fail_msg("n=%lld: %s %%%d element %lld: compiled %.9g, reference %.9g", (long long)n, what, id,
               (long long)i, (double)got[i], ref[i]);
  }
}

/* The values a convolution (or its adjoint in x) sums per output element:
 * a window over the input channels (output channels) of a group. */
static double window_terms(const IrNode *x) {
  int64_t g[RT_GEOM_COUNT];
  ir_window_geom(x, g);
  int64_t channels = x->op == IR_CONV2D ? g[RT_GEOM_C] : g[RT_GEOM_O];
  return (double)(channels / g[RT_GEOM_GROUPS] * g[RT_GEOM_KH] * g[RT_GEOM_KW]);
}

/* Fuses, plans, compiles and runs g for n = 1, 7, 256, comparing with the
 * interpreter. Returns the fusion for further checks. */
static Fusion *check_graph(Arena *a, Graph *g) {
  assert_true(ir_verify(g));
  Fusion *f = fuse_graph(a, g);
  int64_t size = plan(g, f);
  char err[512] = "", name[32];
  snprintf(name, sizeof name, "step%d", step_no++);
  StepFn step = jit_compile(jit, g, f, name, NULL, err, sizeof err);
  if (!step) fail_msg("jit_compile: %s", err);
  const int64_t ns[] = {1, 7, NMAX};
  int nn = g->nodes.len;
  for (int t = 0; t < 3; t++) {
    int64_t n = ns[t];
    float *arena = malloc(sizeof(float) * (size_t)(size + 1));
    double **vals = calloc((size_t)nn, sizeof *vals);
    assert_non_null(arena);
    for (int64_t i = 0; i <= size; i++) arena[i] = NAN;   /* unwritten = visible */
    for (int i = 0; i < nn; i++) {
      IrNode *x = g->nodes.items[i];
      if (ir_op_kind(x->op) != OPK_LEAF || x->op == IR_CONST) continue;
      int64_t c = cg_numel(&x->shape, n);
      vals[i] = malloc(sizeof(double) * (size_t)(c + 1));
      for (int64_t e = 0; e < c; e++) {
        float v = sample(x->name, e);
        arena[x->offset + e] = v;
        vals[i][e] = v;
      }
    }
    step(arena, n);
    interp_run(g, vals, n);
    for (int i = 0; i < nn; i++) {
      IrNode *x = g->nodes.items[i];
      bool is_leaf = ir_op_kind(x->op) == OPK_LEAF && x->op != IR_CONST;
      if (f->materialized[i] || is_leaf)
        check_close(is_leaf ? "leaf" : ir_op_name(x->op), i, arena + x->offset, vals[i], cg_numel(&x->shape, n), n,
                    x->op == IR_CONV2D_BWD_W ? (double)cg_numel(&x->src[1]->shape, n)
                    : x->op == IR_CONV2D || x->op == IR_CONV2D_BWD_X ? window_terms(x)
                    : x->op == IR_SUM        ? (double)cg_numel(&x->src[0]->shape, n) / (double)cg_numel(&x->shape, n)
                                             : 1);
    }
    for (int i = 0; i < nn; i++) free(vals[i]);
    free(vals);
    free(arena);
  }
  return f;
}

static int setup(void **state) {
  (void)state;
  char err[512];
  jit = jit_new(err, sizeof err);
  if (!jit) fprintf(stderr, "jit_new: %s\n", err);
  return jit ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  jit_free(jit);
  return 0;
}

/* ---- elementwise ------------------------------------------------------ */

static void elementwise_broadcasts_rows_columns_and_scalars(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,5"), *w = leaf(g, IR_PARAM, "w", "5"), *c = input(g, "c", "B,1");
  IrNode *y = ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, x, w, L0), c, L0);     /* [B, 5] */
  y = ir_binary(g, IR_SUB, ir_binary(g, IR_MUL, y, ir_const(g, 0.5, L0), L0), ir_const(g, 2, L0), L0);
  ir_output(g, y, "y");
  ir_output(g, ir_binary(g, IR_MAX2, x, c, L0), "max");
  ir_output(g, ir_binary(g, IR_MIN2, w, c, L0), "min");                      /* [5] with [B,1] */
  ir_output(g, ir_select(g, ir_binary(g, IR_GT, x, c, L0), x, w, L0), "select");
  ir_output(g, ir_binary(g, IR_DIV, ir_const(g, 1, L0), ir_binary(g, IR_SUB, c, ir_const(g, 3, L0), L0), L0), "div");
  check_graph(a, g);
  arena_free(a);
}

static void every_unary_op_matches(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *p = input(g, "pos", "B,3"), *x = input(g, "x", "B,3"), *ids = input(g, "ids", "B,3");
  IrOp ops[] = {IR_NEG, IR_RELU, IR_SIGMOID, IR_TANH, IR_EXP, IR_ABS, IR_SIGN, IR_STEP};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) ir_output(g, ir_unary(g, ops[i], x, L0), "u");
  ir_output(g, ir_unary(g, IR_LOG, p, L0), "log");
  ir_output(g, ir_unary(g, IR_SQRT, p, L0), "sqrt");
  ir_output(g, ir_binary(g, IR_POW, p, x, L0), "pow");
  ir_output(g, ir_binary(g, IR_EQ, ids, ir_const(g, 3, L0), L0), "eq");
  check_graph(a, g);
  arena_free(a);
}

/* The error of got in units in the last place of the float nearest ref
 * (subnormals: 2^-149), counting inf as 2^128 so that a result that
 * overflows one way and not the other is a small error, not an infinite
 * one. NaN must meet NaN. */
static double ulp_error(float got, double ref) {
  if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got) ? 0 : INFINITY;
  double g = isinf(got) ? copysign(0x1p128, got) : got;
  double r = fabs(ref) > 0x1p128 ? copysign(0x1p128, ref) : ref;
  int ex = 0;
  frexp(r, &ex);   /* |r| = m · 2^ex, m in [0.5, 1) */
  double ulp = r == 0 ? 0x1p-149 : ldexp(1, (ex - 1 > -126 ? ex - 1 : -126) - 23);
  return fabs(g - r) / ulp;
}

static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }

/* exp, log, tanh and sigmoid are inline polynomials (codegen.c), not libm:
 * each must be within its bound in ulp of the exact value (libm's double
 * functions) on a sweep over float bit patterns (every exponent of both
 * signs, subnormals, inf and NaN) and on the edges: ±0, ±inf, NaN, the
 * smallest subnormal, FLT_MAX, where exp overflows and underflows. The
 * bounds are the largest errors on a sweep 16 times finer (exp 1.01, log
 * 0.75, tanh 1.50, sigmoid 2.33), rounded up. */
static void transcendentals_are_within_their_ulp_bounds(void **state) {
  (void)state;
  static const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0x1p-149f, -0x1p-149f, FLT_MIN, FLT_MAX,
                                -FLT_MAX, 1.0f, -1.0f, 88.72283f, 88.72284f, 89.0f, -87.33654f, -103.9f, -104.0f,
                                -150.0f, 0.625f, -0.625f, 0.6249999f, 9.0f, 1e-8f, -1e-8f, 0.70710677f, 1.4142135f};
  const int64_t nedge = sizeof edges / sizeof *edges, stride = 4093;
  const int64_t n = nedge + (int64_t)(0x100000000ull / stride) + 1;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B");
  IrOp ops[] = {IR_EXP, IR_LOG, IR_TANH, IR_SIGMOID};
  double (*ref[])(double) = {exp, log, tanh, sigmoid_ref};
  const double max_ulp[] = {1.5, 1, 2, 2.5};
  IrNode *y[4];
  for (int k = 0; k < 4; k++) ir_output(g, y[k] = ir_unary(g, ops[k], x, L0), ir_op_name(ops[k]));
  Fusion *f = fuse_graph(a, g);
  float *arena = malloc(sizeof(float) * (size_t)plan_for(g, f, n));
  assert_non_null(arena);
  char err[512] = "";
  StepFn step = jit_compile(jit, g, f, "transcendentals", NULL, err, sizeof err);
  if (!step) fail_msg("jit_compile: %s", err);
  float *in = arena + x->offset;
  for (int64_t i = 0; i < n; i++) {
    uint32_t bits = (uint32_t)((uint64_t)(i - nedge) * (uint64_t)stride);
    if (i < nedge) in[i] = edges[i];
    else memcpy(&in[i], &bits, sizeof bits);
  }
  step(arena, n);
  for (int k = 0; k < 4; k++) {
    double worst = 0;
    float worst_x = 0;
    for (int64_t i = 0; i < n; i++) {
      double e = ulp_error(arena[y[k]->offset + i], ref[k]((double)in[i]));
      if (e > worst) worst = e, worst_x = in[i];
    }
    if (!(worst <= max_ulp[k]))
      fail_msg("%s is %.2f ulp off at x = %.9g (%a)", ir_op_name(ops[k]), worst, (double)worst_x, (double)worst_x);
  }
  free(arena);
  arena_free(a);
}

static void fused_chain_is_one_kernel(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,16"), *w = leaf(g, IR_PARAM, "w", "16"), *b = leaf(g, IR_PARAM, "b", "B,1");
  IrNode *m = ir_binary(g, IR_MUL, x, w, L0);
  IrNode *s = ir_binary(g, IR_ADD, m, b, L0);
  IrNode *r = ir_unary(g, IR_RELU, s, L0);
  IrNode *y = ir_binary(g, IR_MUL, r, ir_const(g, 2, L0), L0);
  ir_output(g, y, "y");
  Fusion *f = check_graph(a, g);
  assert_int_equal(f->nkernels, 1);
  assert_int_equal(f->kernels[0].kind, FK_LOOP);
  assert_int_equal(f->kernels[0].nodes.len, 4);
  assert_false(f->materialized[m->id]);
  assert_false(f->materialized[s->id]);
  assert_false(f->materialized[r->id]);
  assert_true(f->materialized[y->id]);

  /* the printed form names the kernel, what it reads and writes */
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  fusion_print(out, g, f);
  fclose(out);
  assert_non_null(strstr(text, "kernel 0: loop over [B, 16]"));
  char want[64];
  snprintf(want, sizeof want, "reads  %%%d %%%d %%%d", x->id, w->id, b->id);
  if (!strstr(text, want)) fail_msg("fusion_print lacks \"%s\":\n%s", want, text);
  snprintf(want, sizeof want, "writes %%%d", y->id);
  assert_non_null(strstr(text, want));
  free(text);

  /* compiled: the loop is vectorized, and the compile time is reported */
  CgText t = {0};
  char err[256];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  StepFn fn = jit_compile(jit, g, f, "fused_text", &t, err, sizeof err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_non_null(fn);
  print_message("compile time of a 4-op fused kernel, with IR and assembly text: %.1f ms\n",
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  assert_non_null(strstr(t.ir_before, "define internal void @fused_text.k0"));
  assert_non_null(strstr(t.ir_after, "define void @fused_text"));
  assert_non_null(strstr(t.ir_after, "void @fused_text.k0("));   /* a function of its own */
  assert_non_null(strstr(t.ir_after, " x float>"));      /* vectorized */
  assert_non_null(t.assembly);
  assert_true(strlen(t.assembly) > 100);
  cg_text_free(&t);
  arena_free(a);
}

static int count_of(const char *text, const char *what) {
  int k = 0;
  for (const char *p = text; (p = strstr(p, what)); p++) k++;
  return k;
}

/* A step of many kernels is cut into parts that compile on several threads
 * (jit.c) and still matches the interpreter; kernels that come out the same
 * (the chain's repeated links) are merged into one function. */
static void many_kernels_split_and_merged(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,8");
  for (int chain = 0; chain < 2; chain++) {   /* links: all different, then all the same */
    IrNode *y = x;
    for (int i = 0; i < 24; i++) {
      double scale = chain == 0 ? 0.125 + i / 1024.0 : 0.125;
      IrNode *w = ir_binary(g, IR_MUL, leaf(g, IR_PARAM, "w", "8"), ir_const(g, scale, L0), L0);
      IrNode *s = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, y, w, L0), 2u, true, L0);   /* [B, 1] */
      y = ir_unary(g, IR_TANH, ir_binary(g, IR_ADD, x, s, L0), L0);                      /* [B, 8] */
    }
    ir_output(g, y, "y");
  }
  Fusion *f = check_graph(a, g);
  assert_true(f->nkernels >= 80);
  CgText t = {0};
  char err[256];
  assert_non_null(jit_compile(jit, g, f, "merged", &t, err, sizeof err));   /* kernels are the internal functions */
  int before = count_of(t.ir_before, "define internal ");
  int after = count_of(t.ir_after, "define internal ");
  if (!(after < before - 40)) fail_msg("%d kernel functions generated, %d after merging", before, after);
  cg_text_free(&t);
  arena_free(a);
}

static void expand_and_reshape_views(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,4");
  IrNode *s = ir_reduce(g, IR_SUM, x, 2u, false, L0);            /* [B] */
  Shape b1 = S("B,1"), b4 = S("B,4"), b22 = S("B,2,2");
  IrNode *e = ir_expand(g, ir_reshape(g, s, &b1, L0), &b4, L0);  /* [B, 4] */
  IrNode *d = ir_binary(g, IR_SUB, x, e, L0);
  ir_output(g, ir_binary(g, IR_ADD, ir_reshape(g, d, &b22, L0), ir_const(g, 1, L0), L0), "v");
  ir_output(g, ir_expand(g, ir_const(g, 3, L0), &b4, L0), "threes");
  ir_output(g, ir_binary(g, IR_MUL, ir_reshape(g, x, &b22, L0), ir_reshape(g, x, &b22, L0), L0), "sq");
  check_graph(a, g);
  arena_free(a);
}

static void kernels_merge_and_seal_in_a_valid_order(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,4"), *y = input(g, "y", "B,4");
  IrNode *w1 = leaf(g, IR_PARAM, "w1", "4"), *w2 = leaf(g, IR_PARAM, "w2", "1,4");
  IrNode *p = ir_binary(g, IR_MUL, x, w1, L0), *q = ir_binary(g, IR_MUL, y, w2, L0);  /* two kernels... */
  IrNode *r = ir_binary(g, IR_ADD, p, q, L0);                                        /* ...merged here */
  IrNode *sm = ir_reduce(g, IR_SUM, r, 1u, true, L0);       /* sums r in its loop, and seals it */
  IrNode *W = leaf(g, IR_PARAM, "W", "4,4");
  IrNode *m = ir_matmul(g, r, W, false, false, L0);         /* needs r stored first */
  IrNode *d = ir_binary(g, IR_ADD, ir_binary(g, IR_SUB, m, r, L0), sm, L0);   /* a new kernel */
  ir_output(g, d, "d");
  Fusion *f = check_graph(a, g);
  assert_int_equal(f->kernel[p->id], f->kernel[r->id]);
  assert_int_equal(f->kernel[q->id], f->kernel[r->id]);
  assert_false(f->materialized[p->id]);
  assert_true(f->materialized[r->id]);
  assert_true(f->kernel[d->id] != f->kernel[r->id]);
  assert_int_equal(f->kernel[sm->id], f->kernel[r->id]);
  assert_int_equal(f->kernels[f->kernel[r->id]].kind, FK_REDUCE);
  assert_true(f->kernel[r->id] < f->kernel[m->id] && f->kernel[m->id] < f->kernel[d->id]);
  assert_int_equal(f->runs_at[p->id], sm->id);   /* p is computed in the loop that sums r */
  assert_int_equal(f->runs_at[m->id], m->id);
  arena_free(a);
}

/* ---- reductions ------------------------------------------------------- */

static void sum_over_leading_trailing_and_all_axes(void **state) {
  (void)state;
  unsigned masks[] = {1u, 2u, 4u, 3u, 6u, 5u, 7u};
  for (int keep = 0; keep < 2; keep++)
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
      Arena *a = arena_new();
      Graph *g = ir_new(a);
      IrNode *x = input(g, "x", "B,3,5");
      ir_output(g, ir_reduce(g, IR_SUM, x, masks[m], keep, L0), "sum");
      ir_output(g, ir_reduce(g, IR_MAXR, x, masks[m], keep, L0), "max");
      check_graph(a, g);
      arena_free(a);
    }
}

static void sum_of_fused_chain(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,16"), *y = input(g, "y", "B,16");
  IrNode *d = ir_binary(g, IR_SUB, x, y, L0);
  IrNode *sq = ir_binary(g, IR_MUL, d, d, L0);
  IrNode *loss = ir_binary(g, IR_MUL, ir_reduce(g, IR_SUM, sq, 3u, false, L0), ir_const(g, 0.01, L0), L0);
  ir_output(g, loss, "loss");
  Fusion *f = check_graph(a, g);
  assert_int_equal(f->nkernels, 2);   /* (x - y)² summed as it goes, the scaling */
  assert_false(f->materialized[d->id]);
  assert_false(f->materialized[sq->id]);
  arena_free(a);
}

/* ---- matmul ----------------------------------------------------------- */

static void matmul_all_transposes_with_batch_rows(void **state) {
  (void)state;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      Arena *a = arena_new();
      Graph *g = ir_new(a);
      IrNode *x = input(g, "x", ta ? "6,B" : "B,6");        /* M = n, K = 6 */
      IrNode *w = leaf(g, IR_PARAM, "w", tb ? "5,6" : "6,5");
      IrNode *y = ir_matmul(g, x, w, ta, tb, L0);          /* [B, 5] */
      ir_output(g, ir_unary(g, IR_RELU, y, L0), "h");
      check_graph(a, g);
      arena_free(a);
    }
}

/* ---- convolution and pooling: the runtime's float kernels ------------- */

/* "C,H,W" of x, O, k, stride, padding, dilation, groups: y = conv(x, w),
 * and both adjoints from an independent dy, in one step; the method the
 * compiler picks (im2col + sgemm, sgemm for 1x1, direct for depthwise) is
 * checked too. */
static void convolutions_and_both_adjoints_match(void **state) {
  (void)state;
  static const struct {
    const char *x, *w, *y, *method;
    int64_t k, s, p, d, groups;
  } cases[] = {
      {"B,2,7,7", "4,2,3,3", "B,4,7,7", "im2col + sgemm", 3, 1, 1, 1, 1},
      {"B,3,8,6", "5,3,3,3", "B,5,4,3", "im2col + sgemm", 3, 2, 1, 1, 1},
      {"B,2,7,7", "3,2,3,3", "B,3,5,5", "im2col + sgemm", 3, 1, 1, 2, 1},
      {"B,4,6,6", "6,2,3,3", "B,6,6,6", "im2col + sgemm", 3, 1, 1, 1, 2},
      {"B,4,6,6", "8,1,3,3", "B,8,3,3", "direct", 3, 2, 1, 1, 4},
      {"B,6,5,5", "4,6,1,1", "B,4,5,5", "sgemm", 1, 1, 0, 1, 1},
      /* 20,480 floats of columns per image: 102 images per GEMM, so a
       * batch of 256 runs in three chunks, the last one short */
      {"B,8,16,16", "8,8,3,3", "B,8,16,16", "im2col + sgemm", 3, 1, 1, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Arena *a = arena_new();
    Graph *g = ir_new(a);
    IrWindow win = {.kh = cases[i].k, .kw = cases[i].k, .sh = cases[i].s, .sw = cases[i].s, .ph = cases[i].p,
                    .pw = cases[i].p, .dh = cases[i].d, .dw = cases[i].d, .groups = cases[i].groups};
    IrNode *x = input(g, "x", cases[i].x), *w = leaf(g, IR_PARAM, "w", cases[i].w), *dy = input(g, "dy", cases[i].y);
    Shape ys = S(cases[i].y);
    IrNode *y = ir_window(g, IR_CONV2D, x, w, &ys, &win, L0);
    assert_string_equal(ir_conv_method(y), cases[i].method);
    ir_output(g, y, "y");
    ir_output(g, ir_window(g, IR_CONV2D_BWD_X, dy, w, &x->shape, &win, L0), "dx");
    ir_output(g, ir_window(g, IR_CONV2D_BWD_W, x, dy, &w->shape, &win, L0), "dw");
    check_graph(a, g);
    arena_free(a);
  }
}

/* The direct kernels (runtime/direct.c, 16 output channels a vector) on
 * the geometries they take: both vector widths (32 and 16 channels a
 * block), strides 2 and 3 (split into phases), no padding, a 5×5 window
 * (whose filter gradient has too many taps and goes to im2col), images
 * that are not square, padding wider than the window, batches split in
 * two parts; a strided adjoint in x, split into a convolution per phase;
 * an image too small for the direct kernels; first layers of 1 to 4
 * input channels, rows.c's kernels, with rows that end mid-vector. Each
 * direction's method is checked: "V" direct.c's kernels (16 channels a
 * vector), "R" rows.c's (16 pixels a vector), "I" im2col. Without AVX-512
 * every direction runs im2col, and is checked the same way. */
static void direct_convolutions_match(void **state) {
  (void)state;
  static const struct {
    const char *x, *w, *y, *methods;   /* forward, adjoint in x, adjoint in w */
    int64_t k, s, p;
  } cases[] = {
      {"B,16,9,9", "32,16,3,3", "B,32,9,9", "WWW", 3, 1, 1},   /* 3×3, stride 1: Winograd, odd: a half tile */
      {"B,16,14,14", "16,16,4,4", "B,16,7,7", "VVV", 4, 2, 1},   /* stride 2: four phases, 16 channels a block */
      {"B,64,14,14", "128,64,4,4", "B,128,7,7", "VVV", 4, 2, 1},   /* a DCGAN's: rows of 7, 64 channels a block */
      {"B,16,23,25", "16,16,5,5", "B,16,8,9", "VVV", 5, 3, 2},   /* 9 phases of dx, some of them short */
      {"B,16,8,12", "48,16,3,3", "B,48,6,10", "VWV", 3, 1, 0},   /* 6 rows: direct; dx of dy padded by 2 */
      {"B,16,7,7", "16,16,5,5", "B,16,7,7", "VVI", 5, 1, 2},
      {"B,4,9,9", "16,4,3,3", "B,16,9,9", "RIR", 3, 1, 1},   /* few input channels: 16 pixels a vector */
      {"B,1,28,28", "32,1,3,3", "B,32,28,28", "RIR", 3, 1, 1},   /* a first layer on gray images: rows of 16 + 12 */
      {"B,3,20,37", "16,3,5,5", "B,16,18,35", "RII", 5, 1, 1},   /* 35 = 32 + 3; 25 taps: the adjoint in w by im2col */
      {"B,1,16,16", "8,1,3,3", "B,8,16,16", "RIR", 3, 1, 1},   /* one whole vector a row */
      {"B,1,28,28", "16,1,3,3", "B,16,14,14", "III", 3, 2, 1},   /* stride 2: im2col */
      {"B,1,12,12", "6,1,5,5", "B,6,8,8", "III", 5, 1, 0},   /* 6 output channels, not in eights: im2col */
      {"B,6,9,9", "16,6,3,3", "B,16,9,9", "III", 3, 1, 1},   /* 6 input channels: neither direct kernel */
      {"B,16,14,14", "64,16,3,3", "B,64,14,14", "WWW", 3, 1, 1},   /* 7 tiles by 64 channels a block */
      {"B,16,10,10", "16,16,3,3", "B,16,8,8", "WWW", 3, 1, 0},   /* no padding; dx of dy padded by 2 */
      {"B,16,9,10", "16,16,3,3", "B,16,11,12", "WWW", 3, 1, 2},   /* padding 2: dx of dy unpadded */
      {"B,16,8,8", "16,16,3,3", "B,16,12,12", "VVV", 3, 1, 3},   /* padding past the window: dy read from row 1 */
      {"B,32,4,4", "32,32,3,3", "B,32,4,4", "III", 3, 1, 1},   /* a small image: im2col */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Arena *a = arena_new();
    Graph *g = ir_new(a);
    IrWindow win = {.kh = cases[i].k, .kw = cases[i].k, .sh = cases[i].s, .sw = cases[i].s, .ph = cases[i].p,
                    .pw = cases[i].p, .dh = 1, .dw = 1, .groups = 1};
    IrNode *x = input(g, "x", cases[i].x), *w = leaf(g, IR_PARAM, "w", cases[i].w), *dy = input(g, "dy", cases[i].y);
    Shape ys = S(cases[i].y);
    IrNode *calls[3] = {ir_window(g, IR_CONV2D, x, w, &ys, &win, L0),
                        ir_window(g, IR_CONV2D_BWD_X, dy, w, &x->shape, &win, L0),
                        ir_window(g, IR_CONV2D_BWD_W, x, dy, &w->shape, &win, L0)};
    for (int d = 0; d < 3; d++) {
      /* cppcheck sees rt_avx512's stand-in for other compilers (always 0),
       * and then m as always 'I' */
      /* cppcheck-suppress knownConditionTrueFalse */
      char m = rt_avx512() ? cases[i].methods[d] : 'I';
      static const char letters[] = "VRWI";
      static const char *const names[] = {"direct, 16 channels a vector", "direct, 16 pixels a vector",
                                          "Winograd F(2x2, 3x3)", "im2col + sgemm"};
      const char *want = names[strchr(letters, m) - letters];
      if (strcmp(ir_conv_method(calls[d]), want))
        fail_msg("case %zu (x %s), direction %d: %s, expected %s", i, cases[i].x, d, ir_conv_method(calls[d]), want);
    }
    ir_output(g, calls[0], "y");
    ir_output(g, calls[1], "dx");
    ir_output(g, calls[2], "dw");
    check_graph(a, g);
    arena_free(a);
  }
}

/* Max and average pooling with overlapping, padded windows, adaptive
 * pooling to a size that does not divide the image, and their adjoints;
 * on relu'd input, so that windows hold ties at 0 (the first maximum wins,
 * in both). */
static void poolings_and_their_adjoints_match(void **state) {
  (void)state;
  static const struct {
    int64_t k, s, p;
    bool adaptive;
    const char *x, *y;
  } cases[] = {{2, 2, 0, false, "B,3,7,7", "B,3,3,3"},
               {2, 2, 0, false, "B,2,5,42", "B,2,2,21"},   /* 2×2 rows of 21 windows: 16 at once, then 5 */
               {2, 2, 0, false, "B,2,4,32", "B,2,2,16"},   /* exactly one vector of 16 windows */
               {3, 2, 1, false, "B,3,7,7", "B,3,4,4"},
               {0, 0, 0, true, "B,3,7,7", "B,3,4,4"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Arena *a = arena_new();
    Graph *g = ir_new(a);
    IrWindow win = {.kh = cases[i].k, .kw = cases[i].k, .sh = cases[i].s, .sw = cases[i].s, .ph = cases[i].p,
                    .pw = cases[i].p, .dh = 1, .dw = 1, .groups = 1, .adaptive = cases[i].adaptive};
    /* relu's zeros tie in many windows: the first maximum must win */
    IrNode *x = ir_unary(g, IR_RELU, input(g, "x", cases[i].x), L0), *dy = input(g, "dy", cases[i].y);
    IrNode *h = input(g, "h", cases[i].x);
    Shape ys = S(cases[i].y);
    if (!cases[i].adaptive) {
      ir_output(g, ir_window(g, IR_MAXPOOL2D, x, NULL, &ys, &win, L0), "max");
      ir_output(g, ir_window(g, IR_MAXPOOL2D_BWD, x, dy, &x->shape, &win, L0), "dmax");
      ir_output(g, ir_window(g, IR_MAXPOOL2D_PICK, x, h, &ys, &win, L0), "pick");
    }
    ir_output(g, ir_window(g, IR_AVGPOOL2D, x, NULL, &ys, &win, L0), "avg");
    ir_output(g, ir_window(g, IR_AVGPOOL2D_BWD, dy, NULL, &x->shape, &win, L0), "davg");
    check_graph(a, g);
    arena_free(a);
  }
}

/* Slices along the batch's neighbour, the middle and the last axis (with a
 * step), an int index, and SLICE_BWD placing parts as concat does. */
static void slices_and_their_adjoints_match(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,5,4,6");
  IrNode *s1 = ir_slice(g, x, 1, 1, 4, 1, L0), *s2 = ir_slice(g, x, 2, 2, 3, 1, L0), *s3 = ir_slice(g, x, 3, 0, 6, 2, L0);
  ir_output(g, s1, "s1");
  ir_output(g, s2, "s2");
  ir_output(g, ir_slice(g, s3, 1, 4, 5, 1, L0), "s3");
  IrNode *dy = input(g, "dy", "B,5,4,3");
  IrWindow win = {.axis = 3, .start = 1, .stop = 6, .step = 2};
  ir_output(g, ir_window(g, IR_SLICE_BWD, dy, NULL, &x->shape, &win, L0), "placed");
  check_graph(a, g);
  arena_free(a);
}

static void matmul_with_batch_as_inner_dimension(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,6"), *dy = input(g, "dy", "B,5");
  ir_output(g, ir_matmul(g, x, dy, true, false, L0), "dw");    /* [6, 5], K = n */
  IrNode *w = leaf(g, IR_PARAM, "w", "5,6");
  ir_output(g, ir_matmul(g, dy, w, false, false, L0), "dx");  /* [B, 6] */
  check_graph(a, g);
  arena_free(a);
}

/* At n = 256 these run in two halves on the step's two threads (on a
 * machine with two CPUs): the products split along M (256 rows, and
 * 300 of a transposed A) and along N (600 columns, at 288: not the middle), the
 * loops their outer loop, the update of a parameter its flat range. At
 * n = 1 and 7 the same step runs whole. */
static void big_products_and_loops_run_in_halves(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,300"), *w = leaf(g, IR_PARAM, "w", "300,200"), *b = leaf(g, IR_PARAM, "b", "200");
  IrNode *h = ir_unary(g, IR_RELU, ir_binary(g, IR_ADD, ir_matmul(g, x, w, false, false, L0), b, L0), L0);
  ir_output(g, h, "h");                                                       /* [B, 200] = 51,200 at n = 256 */
  IrNode *v = leaf(g, IR_PARAM, "v", "600,300");
  ir_output(g, ir_matmul(g, x, v, false, true, L0), "wide");                  /* [B, 600]: split along N */
  IrNode *gw = ir_matmul(g, x, input(g, "dy", "B,200"), true, false, L0);    /* [300, 200]: Aᵀ split along M */
  ir_assign(g, w, ir_binary(g, IR_SUB, w, ir_binary(g, IR_MUL, gw, ir_const(g, 1e-3, L0), L0), L0), L0);
  /* sums split by rows of the batch, each half into a result of its own
   * (ir_reduce_partial): a bias gradient's columns, a batch norm's
   * channels; and one split along its outermost kept dim (the images) */
  ir_output(g, ir_reduce(g, IR_SUM, h, 1u, false, L0), "db");                  /* [200] */
  IrNode *im = input(g, "im", "B,8,12,12");
  ir_output(g, ir_reduce(g, IR_SUM, im, 1u | 4u | 8u, true, L0), "per_channel");   /* [1, 8, 1, 1] */
  ir_output(g, ir_reduce(g, IR_MAXR, im, 4u | 8u, false, L0), "per_image");      /* [B, 8] */
  check_graph(a, g);
  arena_free(a);
}

/* Reductions over the batch split by rows: the half from row 0 reduces
 * into the result, the other into a partial result the step adds in (or
 * maxes). A loss's sum of squares to a scalar, with the squares' inputs
 * stored by the same loop; a bias gradient; a max over the batch with
 * its largest values in the second half, and one in the first; an
 * output too large for a partial (split along its columns instead). The
 * batch of 256 runs in two halves (two threads), 7 and 1 whole. */
static void sums_over_the_batch_split_by_rows(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *y = input(g, "y", "B,100"), *t = input(g, "t", "B,100");
  IrNode *p = ir_unary(g, IR_SIGMOID, y, L0), *d = ir_binary(g, IR_SUB, p, t, L0);
  ir_output(g, p, "p");
  ir_output(g, d, "d");
  IrNode *loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, d, d, L0), 3u, false, L0);   /* [] */
  ir_output(g, loss, "loss");
  IrNode *db = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, d, p, L0), 1u, false, L0);     /* [100] */
  ir_output(g, db, "db");
  IrNode *rows = input(g, "rows", "B,1");   /* grows with the row: the largest values in the second half */
  IrNode *up = ir_binary(g, IR_ADD, y, rows, L0), *down = ir_binary(g, IR_SUB, y, rows, L0);
  IrNode *max_up = ir_reduce(g, IR_MAXR, up, 1u, true, L0), *max_down = ir_reduce(g, IR_MAXR, down, 1u, true, L0);
  ir_output(g, max_up, "max_up");       /* [1, 100] */
  ir_output(g, max_down, "max_down");
  IrNode *wide = input(g, "wide", "B,5000");
  IrNode *wide_sum = ir_reduce(g, IR_SUM, wide, 1u, false, L0);   /* [5000]: more than a partial takes */
  ir_output(g, wide_sum, "wide_sum");
  const IrNode *split[] = {loss, db, max_up, max_down};
  for (int i = 0; i < 4; i++) assert_true(ir_reduce_partial(split[i]) > 0);
  assert_int_equal(ir_reduce_partial(wide_sum), 0);
  Fusion *f = check_graph(a, g);
  CgText text = {0};
  char err[256];
  assert_non_null(jit_compile(jit, g, f, "split_sums", &text, err, sizeof err));
  assert_int_equal(count_of(text.ir_before, "call void @nnc_parallel_reduce("), 4);
  cg_text_free(&text);
  arena_free(a);
}

/* Which vectorized loops mask their last, partial vector (loop_md): a
 * loop kernel does, so no scalar loop follows its vector loop; a
 * reduction's inner loop does not (a masked one ran twice as slow), and
 * keeps a scalar loop for the rest of the row; a row kernel's sum does
 * not either, and its last pass, which stores, does. Rows of 100 floats,
 * not a multiple of the vector, so each has a partial vector. */
static void reductions_keep_a_scalar_tail_and_loops_mask_theirs(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *u = input(g, "u", "B,100"), *b = leaf(g, IR_PARAM, "b", "100");
  ir_output(g, ir_unary(g, IR_RELU, ir_binary(g, IR_ADD, u, b, L0), L0), "h");
  IrNode *y = input(g, "y", "B,100"), *t = input(g, "t", "B,100");
  IrNode *e = ir_binary(g, IR_MUL, ir_unary(g, IR_SIGMOID, y, L0), t, L0);
  ir_output(g, ir_reduce(g, IR_SUM, e, 2u, false, L0), "rows");   /* [B]: one sum a row */
  ir_output(g, ir_row(g, IR_LOG_SOFTMAX, input(g, "z", "B,100"), 0, L0), "logp");
  Fusion *f = check_graph(a, g);
  CgText text = {0};
  char err[256];
  assert_non_null(jit_compile(jit, g, f, "tails", &text, err, sizeof err));
  /* the masked loads of each kernel that sums: none in the reduction's,
   * one in log_softmax's (its last pass, which stores) */
  int masked_loops = 0, summing = 0, loads_when_summing[2] = {0, 0};
  for (const char *p = text.ir_after; (p = strstr(p, "define internal void @tails.k")); p++) {
    const char *end = strstr(p, "\n}\n");
    assert_non_null(end);
    char *body = strndup(p, (size_t)(end - p));
    assert_non_null(body);
    if (strstr(body, "llvm.vector.reduce.fadd")) {
      assert_true(summing < 2);
      loads_when_summing[summing++] = count_of(body, "@llvm.masked.load");
    } else if (strstr(body, "@llvm.masked.store")) {
      masked_loops++;
    }
    free(body);
  }
  assert_int_equal(summing, 2);
  assert_int_equal(masked_loops, 1);
  int fewer = loads_when_summing[0] < loads_when_summing[1] ? 0 : 1;
  if (loads_when_summing[fewer] != 0 || loads_when_summing[1 - fewer] != 1)
    fail_msg("masked loads in the kernels that sum: %d and %d, expected 0 (the reduction) and 1 (log_softmax)",
             loads_when_summing[0], loads_when_summing[1]);
  cg_text_free(&text);
  arena_free(a);
}

/* nnc_sgemm against a plain triple loop, in each transposition, split
 * along M and along N (and not split, when small); and the narrow
 * products narrow.c computes (C 16 or fewer columns wide, M >= 128), with
 * whole and partial blocks of rows and of columns, K at its limit and past
 * it, and which of them it takes. */
static void nnc_sgemm_halves_match_the_whole_product(void **state) {
  (void)state;
  const int64_t shapes[][3] = {{257, 100, 64}, {40, 301, 64}, {9, 7, 5},   {256, 16, 117}, {131, 10, 64},
                               {128, 1, 1024}, {300, 16, 1025}, {127, 16, 8}, {256, 17, 32}};
  for (int s = 0; s < 9; s++) {
    int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    bool narrow = s >= 3 && s <= 5;   /* the three after the split ones */
    if (rt_narrow_fits(false, M, N, K) != narrow || rt_narrow_fits(true, M, N, K))
      fail_msg("%lldx%lldx%lld: narrow.c %s it", (long long)M, (long long)N, (long long)K, narrow ? "does not take" : "takes");
  }
  for (int s = 0; s < 9; s++)
    for (int t = 0; t < 4; t++) {
      int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
      bool ta = t & 1, tb = t & 2;
      float *A = malloc(sizeof(float) * (size_t)(M * K)), *B = malloc(sizeof(float) * (size_t)(K * N));
      float *C = malloc(sizeof(float) * (size_t)(M * N));
      for (int64_t i = 0; i < M * K; i++) A[i] = (float)urand();
      for (int64_t i = 0; i < K * N; i++) B[i] = (float)urand();
      nnc_sgemm(ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, C, N);
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          double ref = 0;
          for (int64_t k = 0; k < K; k++) ref += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
          if (fabs(C[i * N + j] - ref) > 1e-4 * fmax(1.0, fabs(ref)))
            fail_msg("%lldx%lldx%lld ta %d tb %d: C[%lld, %lld] = %g, want %g", (long long)M, (long long)N,
                     (long long)K, ta, tb, (long long)i, (long long)j, C[i * N + j], ref);
        }
      free(A), free(B), free(C);
    }
}

/* Winograd's kernels over images too large for one pass (a pass a row of
 * tiles, or two and a short last one), called directly on 3 images (two
 * parts, one short), against float64 sums: the forward pass and both
 * adjoints. */
static void winograd_passes_match_the_sums(void **state) {
  (void)state;
  /* cppcheck-suppress knownConditionTrueFalse */
  if (!rt_avx512()) skip();
  /* C, O, H, W, padding; the second: rows of 36 tiles (5 groups of 7 and 1), 32 + 16 output channels */
  static const int64_t cases[][5] = {{64, 64, 8, 80, 1}, {32, 48, 9, 71, 1}};
  enum { N = 3 };
  for (int i = 0; i < 2; i++) {
    int64_t C = cases[i][0], O = cases[i][1], H = cases[i][2], W = cases[i][3], p = cases[i][4];
    int64_t OH = H + 2 * p - 2, OW = W + 2 * p - 2;
    int64_t g[RT_GEOM_COUNT] = {[RT_GEOM_C] = C, [RT_GEOM_H] = H, [RT_GEOM_W] = W, [RT_GEOM_O] = O,
                                [RT_GEOM_OH] = OH, [RT_GEOM_OW] = OW, [RT_GEOM_KH] = 3, [RT_GEOM_KW] = 3,
                                [RT_GEOM_SH] = 1, [RT_GEOM_SW] = 1, [RT_GEOM_PH] = p, [RT_GEOM_PW] = p,
                                [RT_GEOM_DH] = 1, [RT_GEOM_DW] = 1, [RT_GEOM_GROUPS] = 1,
                                [RT_GEOM_METHOD] = RT_CONV_WINOGRAD, [RT_GEOM_CHUNK] = 1};
    int64_t sn = 0;
    for (int dir = 0; dir < 3; dir++) {
      RtWino q = rt_wino(g, dir);
      if (!rt_winograd_fits(g, dir) || q.rows >= q.th) fail_msg("case %d direction %d: not several passes", i, dir);
      sn = rt_conv_scratch(g, dir, N) > sn ? rt_conv_scratch(g, dir, N) : sn;
    }
    int64_t xs = N * C * H * W, ys = N * O * OH * OW, ws = O * C * 9;
    float *x = malloc(sizeof(float) * (size_t)xs), *y = malloc(sizeof(float) * (size_t)ys);
    float *dx = malloc(sizeof(float) * (size_t)xs), *dy = malloc(sizeof(float) * (size_t)ys);
    float *w = malloc(sizeof(float) * (size_t)ws), *dw = malloc(sizeof(float) * (size_t)ws);
    float *scratch = malloc(sizeof(float) * (size_t)sn);
    for (int64_t e = 0; e < xs; e++) x[e] = (float)(2 * urand() - 1);
    for (int64_t e = 0; e < ys; e++) dy[e] = (float)(2 * urand() - 1);
    for (int64_t e = 0; e < ws; e++) w[e] = (float)(2 * urand() - 1);
    nnc_conv2d(x, w, y, scratch, N, g);
    nnc_conv2d_bwd_x(dy, w, dx, scratch, N, g);
    nnc_conv2d_bwd_w(x, dy, dw, scratch, N, g);
    for (int64_t e = 0; e < ws; e++) {   /* dw[o, c, k] sums dy[o] times x[c] under tap k over images and pixels */
      int64_t o = e / (C * 9), c = e / 9 % C, k = e % 9;
      double ref = 0;
      for (int64_t n = 0; n < N; n++)
        for (int64_t oy = 0; oy < OH; oy++)
          for (int64_t ox = 0; ox < OW; ox++) {
            int64_t r = oy + k / 3 - p, col = ox + k % 3 - p;
            if (r >= 0 && r < H && col >= 0 && col < W)
              ref += (double)dy[((n * O + o) * OH + oy) * OW + ox] * x[((n * C + c) * H + r) * W + col];
          }
      check_close("winograd dw", i, dw + e, &ref, 1, N, (double)(N * OH * OW));
    }
    for (int dir = 0; dir < 2; dir++) {   /* y[o] sums x[c] under the window, dx[c] sums dy[o] under it flipped */
      int64_t in_c = dir ? O : C, out_c = dir ? C : O, ih = dir ? OH : H, iw = dir ? OW : W;
      int64_t oh = dir ? H : OH, ow = dir ? W : OW, sign = dir ? -1 : 1;
      const float *in = dir ? dy : x, *got = dir ? dx : y;
      for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < out_c; o++)
          for (int64_t e = 0; e < oh * ow; e++) {
            double ref = 0;
            for (int64_t c = 0; c < in_c; c++)
              for (int64_t k = 0; k < 9; k++) {
                int64_t r = e / ow + sign * (k / 3 - p), col = e % ow + sign * (k % 3 - p);
                const float *wk = w + (dir ? c * C + o : o * C + c) * 9 + k;
                if (r >= 0 && r < ih && col >= 0 && col < iw) ref += (double)in[((n * in_c + c) * ih + r) * iw + col] * *wk;
              }
            check_close(dir ? "winograd dx" : "winograd y", i, got + (n * out_c + o) * oh * ow + e, &ref, 1, N,
                        (double)(9 * in_c));
          }
    }
    free(x), free(y), free(dx), free(dy), free(w), free(dw), free(scratch);
  }
}

/* ---- rows ------------------------------------------------------------- */

static void log_softmax_softmax_argmax_one_hot(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,10"), *ids = input(g, "ids", "B");
  IrNode *big = ir_binary(g, IR_MUL, x, ir_const(g, 40, L0), L0);   /* exp would overflow unshifted */
  ir_output(g, ir_row(g, IR_LOG_SOFTMAX, big, 0, L0), "logp");
  ir_output(g, ir_row(g, IR_SOFTMAX, x, 0, L0), "p");
  ir_output(g, ir_row(g, IR_ARGMAX, x, 0, L0), "pred");
  ir_output(g, ir_row(g, IR_ONE_HOT, ids, 7, L0), "onehot");
  check_graph(a, g);
  arena_free(a);
}

/* ---- assignments ------------------------------------------------------ */

static void sgd_with_momentum_updates_in_place(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *p = leaf(g, IR_PARAM, "p", "5,3"), *v = leaf(g, IR_STATE, "v", "5,3");
  IrNode *x = input(g, "x", "B,5");
  IrNode *y = ir_matmul(g, x, p, false, false, L0);            /* reads p before the update */
  ir_output(g, y, "y");
  IrNode *gr = ir_matmul(g, x, ir_unary(g, IR_TANH, y, L0), true, false, L0);  /* [5, 3] */
  IrNode *vn = ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, v, ir_const(g, 0.9, L0), L0), gr, L0);
  IrNode *pn = ir_binary(g, IR_SUB, p, ir_binary(g, IR_MUL, vn, ir_const(g, 0.1, L0), L0), L0);
  IrNode *av = ir_assign(g, v, vn, L0);
  IrNode *ap = ir_assign(g, p, pn, L0);
  IrNode *cnt = leaf(g, IR_STATE, "count", "");
  ir_assign(g, cnt, ir_binary(g, IR_ADD, cnt, ir_const(g, 1, L0), L0), L0);
  IrNode *z = leaf(g, IR_STATE, "z", "3");
  Shape s3 = S("3");
  ir_assign(g, z, ir_expand(g, ir_const(g, 0, L0), &s3, L0), L0);  /* zeroing */
  Fusion *f = check_graph(a, g);
  /* the whole update is one loop that stores only into the leaves */
  assert_int_equal(f->kernel[av->id], f->kernel[ap->id]);
  assert_false(f->materialized[vn->id]);
  assert_false(f->materialized[pn->id]);
  arena_free(a);
}

static void assign_copies_a_matmul_result(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *p = leaf(g, IR_STATE, "p", "4,3"), *q = leaf(g, IR_PARAM, "q", "4,2"), *r = leaf(g, IR_PARAM, "r", "2,3");
  ir_assign(g, p, ir_matmul(g, q, r, false, false, L0), L0);
  check_graph(a, g);
  arena_free(a);
}

/* ---- a whole small step ---------------------------------------------- */

static void linear_classifier_training_step(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,8"), *ids = input(g, "ids", "B");
  IrNode *w = leaf(g, IR_PARAM, "w", "8,7"), *b = leaf(g, IR_PARAM, "b", "7");
  IrNode *logits = ir_binary(g, IR_ADD, ir_matmul(g, x, w, false, false, L0), b, L0);   /* [B, 7] */
  IrNode *logp = ir_row(g, IR_LOG_SOFTMAX, logits, 0, L0);
  IrNode *onehot = ir_row(g, IR_ONE_HOT, ids, 7, L0);
  IrNode *nll = ir_unary(g, IR_NEG, ir_binary(g, IR_MUL, logp, onehot, L0), L0);
  IrNode *loss = ir_reduce(g, IR_SUM, nll, 3u, false, L0);
  ir_output(g, loss, "loss");
  ir_output(g, ir_row(g, IR_ARGMAX, logits, 0, L0), "pred");
  /* d loss / d logits = softmax - onehot; then the parameters' gradients */
  IrNode *dl = ir_binary(g, IR_SUB, ir_unary(g, IR_EXP, logp, L0), onehot, L0);
  IrNode *dw = ir_matmul(g, x, dl, true, false, L0);
  IrNode *db = ir_reduce(g, IR_SUM, dl, 1u, false, L0);
  IrNode *lr = ir_const(g, 0.05, L0);
  ir_assign(g, w, ir_binary(g, IR_SUB, w, ir_binary(g, IR_MUL, dw, lr, L0), L0), L0);
  ir_assign(g, b, ir_binary(g, IR_SUB, b, ir_binary(g, IR_MUL, db, lr, L0), L0), L0);
  Fusion *f = check_graph(a, g);

  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  fusion_print(out, g, f);
  fclose(out);
  assert_non_null(strstr(text, "cblas_sgemm"));
  free(text);
  arena_free(a);
}

/* ---- errors ----------------------------------------------------------- */

/* A constant folded once (2·3) and found again later (CSE matches the
 * literal 6 to it) is placed once: the simplified graph still verifies. */
static void a_folded_constant_used_twice_is_placed_once(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  IrNode *x = input(g, "x", "B,3");
  IrNode *c = ir_binary(g, IR_MUL, ir_const(g, 2, L0), ir_const(g, 3, L0), L0);
  IrNode *six = ir_const(g, 6, L0);
  ir_output(g, ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, x, c, L0), six, L0), "y");
  ir_simplify(g);
  assert_true(ir_verify(g));
  check_graph(a, g);
  arena_free(a);
}

static void unbound_symbol_is_an_error_not_a_crash(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  Shape s = {.rank = 2};
  s.d[0] = dim_sym("B");
  s.d[1] = dim_sym("T");
  IrNode *x = ir_leaf(g, IR_INPUT, DT_FLOAT, &s, "x", L0);
  ir_output(g, ir_unary(g, IR_EXP, x, L0), "y");
  Fusion *f = fuse_graph(a, g);
  plan(g, f);
  char err[256] = "";
  assert_null(jit_compile(jit, g, f, "bad_sym", NULL, err, sizeof err));
  assert_non_null(strstr(err, "dimension T"));

  Graph *g2 = ir_new(a);
  IrNode *y = input(g2, "y", "B,2");
  ir_output(g2, ir_unary(g2, IR_EXP, y, L0), "e");
  Fusion *f2 = fuse_graph(a, g2);   /* and no memory plan */
  assert_null(jit_compile(jit, g2, f2, "no_plan", NULL, err, sizeof err));
  assert_non_null(strstr(err, "memory planner"));
  arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(elementwise_broadcasts_rows_columns_and_scalars),
      cmocka_unit_test(every_unary_op_matches),
      cmocka_unit_test(transcendentals_are_within_their_ulp_bounds),
      cmocka_unit_test(fused_chain_is_one_kernel),
      cmocka_unit_test(expand_and_reshape_views),
      cmocka_unit_test(kernels_merge_and_seal_in_a_valid_order),
      cmocka_unit_test(sum_over_leading_trailing_and_all_axes),
      cmocka_unit_test(sum_of_fused_chain),
      cmocka_unit_test(matmul_all_transposes_with_batch_rows),
      cmocka_unit_test(matmul_with_batch_as_inner_dimension),
      cmocka_unit_test(big_products_and_loops_run_in_halves),
      cmocka_unit_test(sums_over_the_batch_split_by_rows),
      cmocka_unit_test(reductions_keep_a_scalar_tail_and_loops_mask_theirs),
      cmocka_unit_test(nnc_sgemm_halves_match_the_whole_product),
      cmocka_unit_test(convolutions_and_both_adjoints_match),
      cmocka_unit_test(direct_convolutions_match),
      cmocka_unit_test(winograd_passes_match_the_sums),
      cmocka_unit_test(poolings_and_their_adjoints_match),
      cmocka_unit_test(slices_and_their_adjoints_match),
      cmocka_unit_test(log_softmax_softmax_argmax_one_hot),
      cmocka_unit_test(sgd_with_momentum_updates_in_place),
      cmocka_unit_test(assign_copies_a_matmul_result),
      cmocka_unit_test(linear_classifier_training_step),
      cmocka_unit_test(a_folded_constant_used_twice_is_placed_once),
      cmocka_unit_test(unbound_symbol_is_an_error_not_a_crash),
      cmocka_unit_test(many_kernels_split_and_merged),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
