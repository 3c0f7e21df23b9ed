/*
 * codegen.c — the LLVM IR of one step: a function `void NAME(ptr arena,
 * i64 n)` that runs the fused kernels in order (fuse.c).
 *
 * Each kernel but MATMUL and CALL becomes an internal function whose
 * parameters are the buffers it touches, each a `noalias` pointer into the
 * arena, its sizes (`dims`, see dim_value) and n. The step function
 * computes those pointers (arena + node->offset) and calls the kernels; a
 * MATMUL is a call to nnc_sgemm (cblas_sgemm, in two halves when big) right
 * in the step. A loop kernel big enough to split is *ranged*: it also takes
 * the bounds of its outer loop, and the step calls it through nnc_parallel
 * (runtime/parts.c) with a trampoline that finds its arguments through a
 * constant descriptor (see gen_part_fn). A step of many kernels calls them
 * from chunk functions of 32 calls each. The step, its chunks and the
 * trampolines are straight-line code, compiled without optimization
 * (jit.c): so the step builds little IR per call. The kernels stay
 * functions (`noinline`): their noalias parameters
 * are what lets LLVM vectorize loops over one big arena, and small
 * functions keep optimization and code generation fast where one inlined
 * step of hundreds of loops made them superlinear. Kernels that come out
 * the same (the same ops on tensors of any size) are merged into one
 * function before optimization (jit.c), and a call costs nanoseconds.
 *
 *   elementwise kernel: a loop nest over the kernel's shape (size-1 dims
 *     dropped, adjacent dims merged where every access is contiguous across
 *     them), each node's value computed once per element, inputs from other
 *     kernels loaded with broadcast strides (0 along broadcast dims);
 *   SUM, MAXR: the output is set to 0 / -inf, then one loop nest over the
 *     input adds (maxes) each element into its output element;
 *   row ops: a loop over rows with loops over the last axis inside;
 *   MATMUL: cblas_sgemm(RowMajor, ...) with M, N, K from the shapes (B = n).
 *
 * Floating point. Elementwise arithmetic may be contracted into FMAs
 * (`contract`); nothing else is rewritten. The accumulating adds of
 * reductions (SUM, the sums of SOFTMAX / LOG_SOFTMAX) are also marked
 * `reassoc`, so that they vectorize: their result may differ from a
 * sequential sum in the last bits, and gradient checks must allow for it.
 * exp, log, tanh and sigmoid are computed inline (see "transcendental
 * functions" below) so that the loops calling them vectorize; pow calls
 * libm's powf.
 */
#include "compiler/codegen.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/TargetMachine.h>
#include <math.h>
#include <ctype.h>
#include <string.h>

typedef struct {
  Arena *arena;                 /* scratch, freed when the module is built */
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, i64, i32, ptr, voidt;
  const Graph *g;
  const Fusion *f;
  const char *name;
  char *err;
  size_t errlen;
  /* the function being built */
  LLVMValueRef fn, n;           /* n: the batch size, i64 */
  LLVMBasicBlockRef entry;
  /* the kernel being built: its buffers (by arena offset) */
  int nbuf, maxbuf;
  int64_t *buf_off;
  LLVMValueRef *buf;
  LLVMValueRef lo, hi;          /* a ranged kernel's outer loop: [lo, hi) */
  struct Nest *loop;            /* the loop kernel just built, if ranged: its nest */
  LLVMValueRef dims;            /* the kernel's sizes (NULL in the step): see dim_value */
  int ndims, maxdims;
  int64_t *dimv;                /* their values, in the order the kernel reads them */
} Cg;

/* ---- small helpers ---------------------------------------------------- */

static LLVMValueRef i64c(Cg *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }
static LLVMValueRef f32c(Cg *c, double v) { return LLVMConstReal(c->f32, v); }

/* Value of a dimension at run time: c · n^k (every symbol is B; checked).
 *
 * Inside a kernel, c (but 0 and 1) is read from the kernel's `dims`
 * parameter, one slot per use, and the step passes the values: so two
 * kernels that do the same thing on tensors of different sizes (the
 * optimizer's update of each parameter, the same block at two widths)
 * are the same function, which mergefunc then compiles once. The loads
 * are hoisted out of the loops (dims is noalias and read-only). */
static LLVMValueRef dim_value(Cg *c, Dim d) {
  LLVMValueRef v = d.c == 1 && d.nsym > 0 ? NULL : i64c(c, d.c);   /* 1 · n is n */
  if (c->dims && d.c != 0 && d.c != 1 && c->ndims < c->maxdims) {
    LLVMValueRef idx = i64c(c, c->ndims);
    c->dimv[c->ndims++] = d.c;
    v = LLVMBuildLoad2(c->b, c->i64, LLVMBuildInBoundsGEP2(c->b, c->i64, c->dims, &idx, 1, ""), "dim");
  }
  for (int k = 0; k < d.nsym; k++) v = v ? LLVMBuildNSWMul(c->b, v, c->n, "") : c->n;
  return v;
}

/* d[0] · d[1] · ... at run time, multiplied out at compile time where
 * the product fits a Dim (in the step: one constant and n). */
static LLVMValueRef dims_product(Cg *c, const Dim *d, int count) {
  Dim p = dim_int(1);
  int i = 0;
  while (i < count && dim_mul(p, d[i], &p)) i++;
  LLVMValueRef v = dim_value(c, p);
  for (; i < count; i++) v = LLVMBuildNSWMul(c->b, v, dim_value(c, d[i]), "");
  return v;
}

static LLVMValueRef numel_value(Cg *c, const Shape *s) {
  Dim r;
  if (shape_numel(s, 0, &r)) return dim_value(c, r);
  LLVMValueRef v = i64c(c, 1);   /* too many symbols for one Dim: multiply out */
  for (int i = 0; i < s->rank; i++) v = LLVMBuildNSWMul(c->b, v, dim_value(c, s->d[i]), "");
  return v;
}

static bool is_one(Dim d) { return dim_known(d) && d.c == 1; }
static bool is_zero(Dim d) { return dim_known(d) && d.c == 0; }

static const IrNode *view_root(const IrNode *x) {
  while (x->op == IR_RESHAPE) x = x->src[0];
  return x;
}

/* The node whose buffer holds x's elements. */
static const IrNode *storage(const IrNode *x) {
  x = view_root(x);
  if (x->op == IR_ASSIGN) x = view_root(x->src[0]);
  return x;
}

static LLVMValueRef declare(Cg *c, const char *name, LLVMTypeRef ty) {
  LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
  return fn ? fn : LLVMAddFunction(c->mod, name, ty);
}

static LLVMValueRef call1(Cg *c, const char *fname, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMFunctionType(c->f32, &c->f32, 1, 0);
  return LLVMBuildCall2(c->b, ty, declare(c, fname, ty), &x, 1, "");
}

static LLVMValueRef call2(Cg *c, const char *fname, LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef params[2] = {c->f32, c->f32};
  LLVMTypeRef ty = LLVMFunctionType(c->f32, params, 2, 0);
  LLVMValueRef args[2] = {x, y};
  return LLVMBuildCall2(c->b, ty, declare(c, fname, ty), args, 2, "");
}

static LLVMValueRef contract(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
  return v;
}

static LLVMValueRef reassoc(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAllowContract | LLVMFastMathAllowReassoc);
  return v;
}

static LLVMValueRef load_f(Cg *c, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->f32, base, &idx, 1, "");
  LLVMValueRef v = LLVMBuildLoad2(c->b, c->f32, p, "");
  LLVMSetAlignment(v, 4);
  return v;
}

static void store_f(Cg *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->f32, base, &idx, 1, "");
  LLVMSetAlignment(LLVMBuildStore(c->b, v, p), 4);
}

/* Slot i (8 bytes) of a ctx or desc, as a ty (ptr or i64). */
static LLVMValueRef load_slot(Cg *c, LLVMTypeRef ty, LLVMValueRef base, int i) {
  LLVMValueRef idx = i64c(c, i);
  return LLVMBuildLoad2(c->b, ty, LLVMBuildInBoundsGEP2(c->b, c->i64, base, &idx, 1, ""), "");
}

static LLVMValueRef select_f(Cg *c, LLVMRealPredicate pred, LLVMValueRef a, LLVMValueRef b,
                             LLVMValueRef t, LLVMValueRef e) {
  return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, pred, a, b, ""), t, e, "");
}

/* ---- transcendental functions ------------------------------------------
 * A loop that calls libm's expf cannot be vectorized (there is no vector
 * expf to call), and a sigmoid, tanh or softmax loop then runs one element
 * at a time, several times slower than the memory allows. So exp, log,
 * tanh and sigmoid are emitted as straight-line IR, the Cephes single
 * precision algorithms: a range reduction, a polynomial, and selects (no
 * branches) for the special cases, each of which vectorizes. Their errors
 * against the exact value are at most 1.5 ulp (exp), 1 (log), 2 (tanh) and
 * 2.5 (sigmoid); tests/unit/test_codegen.c checks them on a sweep over every
 * exponent, subnormals, ±0, ±inf and NaN. exp(-inf) = 0, exp(x) = inf
 * above log(FLT_MAX), NaN stays NaN, log(0) = -inf, log(x < 0) = NaN. */

static LLVMValueRef fma_f(Cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef d) {
  LLVMTypeRef params[3] = {c->f32, c->f32, c->f32};
  LLVMTypeRef ty = LLVMFunctionType(c->f32, params, 3, 0);
  LLVMValueRef args[3] = {a, b, d};
  return LLVMBuildCall2(c->b, ty, declare(c, "llvm.fma.f32", ty), args, 3, "");
}

/* c[0] + x·(c[1] + x·(c[2] + ...)), Horner's rule with FMAs. */
static LLVMValueRef poly_f(Cg *c, LLVMValueRef x, const double *coef, int n) {
  LLVMValueRef p = f32c(c, coef[n - 1]);
  for (int i = n - 2; i >= 0; i--) p = fma_f(c, p, x, f32c(c, coef[i]));
  return p;
}

/* 2^k as a float, for integer k in [-126, 127]. */
static LLVMValueRef pow2_f(Cg *c, LLVMValueRef k) {
  LLVMValueRef bits = LLVMBuildShl(c->b, LLVMBuildAdd(c->b, k, LLVMConstInt(c->i32, 127, 0), ""),
                                   LLVMConstInt(c->i32, 23, 0), "");
  return LLVMBuildBitCast(c->b, bits, c->f32, "");
}

/* exp(x) = 2^k · e^r, k = rint(x / ln 2), r = x - k·ln 2 (ln 2 in two parts,
 * Cody-Waite, so k·ln2_hi is exact), e^r = 1 + r + r²·P(r) on |r| ≤ ln2/2.
 * x is first clamped to [-104, 89], beyond which the result is 0 or inf
 * anyway; k then fits the float's exponent in two halves, and scaling by
 * 2^(k/2) (exact) then by 2^(k - k/2) rounds once even when the result is
 * subnormal. A NaN is clamped too (to keep fptosi defined) and put back at
 * the end. */
static LLVMValueRef emit_exp(Cg *c, LLVMValueRef x) {
  static const double P[] = {5.0000001201E-1, 1.6666665459E-1, 4.1665795894E-2,
                             8.3334519073E-3, 1.3981999507E-3, 1.9875691500E-4};
  LLVMValueRef hi = f32c(c, 89), lo = f32c(c, -104);
  LLVMValueRef t = select_f(c, LLVMRealUGT, x, hi, hi, x);   /* NaN -> 89 */
  t = select_f(c, LLVMRealOLT, t, lo, lo, t);
  LLVMValueRef k = call1(c, "llvm.rint.f32", LLVMBuildFMul(c->b, t, f32c(c, 1.44269504088896341), ""));
  LLVMValueRef r = fma_f(c, k, f32c(c, -0.693359375), t);
  r = fma_f(c, k, f32c(c, 2.12194440e-4), r);
  LLVMValueRef r2 = LLVMBuildFMul(c->b, r, r, "");
  LLVMValueRef y = LLVMBuildFAdd(c->b, fma_f(c, poly_f(c, r, P, 6), r2, r), f32c(c, 1), "");
  LLVMValueRef ki = LLVMBuildFPToSI(c->b, k, c->i32, "");
  LLVMValueRef k1 = LLVMBuildAShr(c->b, ki, LLVMConstInt(c->i32, 1, 0), "");
  y = LLVMBuildFMul(c->b, y, pow2_f(c, k1), "");
  y = LLVMBuildFMul(c->b, y, pow2_f(c, LLVMBuildSub(c->b, ki, k1, "")), "");
  return select_f(c, LLVMRealUNO, x, x, x, y);
}

/* log(x) = e·ln 2 + log(1 + f): x = 2^e · m with m in [sqrt(1/2), sqrt(2))
 * from the float's bits (subnormals scaled by 2^23 first), f = m - 1, and
 * log(1 + f) = f - f²/2 + f³·P(f). */
static LLVMValueRef emit_log(Cg *c, LLVMValueRef x) {
  static const double P[] = {3.3333331174E-1, -2.4999993993E-1, 2.0000714765E-1,
                             -1.6668057665E-1, 1.4249322787E-1, -1.2420140846E-1,
                             1.1676998740E-1, -1.1514610310E-1, 7.0376836292E-2};
  LLVMTypeRef i32 = c->i32;
  LLVMValueRef sub = LLVMBuildFCmp(c->b, LLVMRealOLT, x, f32c(c, 0x1p-126), "");
  LLVMValueRef xs = LLVMBuildSelect(c->b, sub, LLVMBuildFMul(c->b, x, f32c(c, 0x1p23), ""), x, "");
  LLVMValueRef bits = LLVMBuildBitCast(c->b, xs, i32, "");
  LLVMValueRef e = LLVMBuildSub(c->b, LLVMBuildLShr(c->b, bits, LLVMConstInt(i32, 23, 0), ""),
                                LLVMBuildSelect(c->b, sub, LLVMConstInt(i32, 126 + 23, 0), LLVMConstInt(i32, 126, 0), ""), "");
  LLVMValueRef mbits = LLVMBuildOr(c->b, LLVMBuildAnd(c->b, bits, LLVMConstInt(i32, 0x007fffff, 0), ""),
                                   LLVMConstInt(i32, 0x3f000000, 0), "");
  LLVMValueRef m = LLVMBuildBitCast(c->b, mbits, c->f32, "");   /* [0.5, 1) */
  LLVMValueRef low = LLVMBuildFCmp(c->b, LLVMRealOLT, m, f32c(c, 0.707106781186547524), "");
  e = LLVMBuildSelect(c->b, low, LLVMBuildSub(c->b, e, LLVMConstInt(i32, 1, 0), ""), e, "");
  m = LLVMBuildSelect(c->b, low, LLVMBuildFAdd(c->b, m, m, ""), m, "");
  LLVMValueRef f = LLVMBuildFSub(c->b, m, f32c(c, 1), "");
  LLVMValueRef z = LLVMBuildFMul(c->b, f, f, "");
  LLVMValueRef fe = LLVMBuildSIToFP(c->b, e, c->f32, "");
  LLVMValueRef y = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, poly_f(c, f, P, 9), f, ""), z, "");
  y = fma_f(c, fe, f32c(c, -2.12194440e-4), y);
  y = fma_f(c, z, f32c(c, -0.5), y);
  y = fma_f(c, fe, f32c(c, 0.693359375), LLVMBuildFAdd(c->b, f, y, ""));
  y = select_f(c, LLVMRealOEQ, x, f32c(c, INFINITY), x, y);
  y = select_f(c, LLVMRealOEQ, x, f32c(c, 0), f32c(c, -INFINITY), y);
  return select_f(c, LLVMRealULT, x, f32c(c, 0), f32c(c, NAN), y);   /* x < 0 or NaN */
}

/* tanh(x) = sign(x) · (1 - e)/(1 + e), e = exp(-2|x|), which cannot
 * overflow and is 1 at ±inf; below |x| = 0.625, where 1 - e would cancel,
 * |x| + |x|³·P(x²). The sign goes on last, so tanh(-0) = -0. */
static LLVMValueRef emit_tanh(Cg *c, LLVMValueRef x) {
  static const double P[] = {-3.33332819422E-1, 1.33314422036E-1, -5.37397155531E-2,
                             2.06390887954E-2, -5.70498872745E-3};
  LLVMValueRef one = f32c(c, 1);
  LLVMValueRef ax = call1(c, "llvm.fabs.f32", x);
  LLVMValueRef z = LLVMBuildFMul(c->b, ax, ax, "");
  LLVMValueRef small = fma_f(c, LLVMBuildFMul(c->b, poly_f(c, z, P, 5), z, ""), ax, ax);
  LLVMValueRef e = emit_exp(c, LLVMBuildFMul(c->b, ax, f32c(c, -2), ""));
  LLVMValueRef big = LLVMBuildFDiv(c->b, LLVMBuildFSub(c->b, one, e, ""), LLVMBuildFAdd(c->b, one, e, ""), "");
  LLVMValueRef y = select_f(c, LLVMRealOLT, ax, f32c(c, 0.625), small, big);
  return call2(c, "llvm.copysign.f32", y, x);
}

/* sigmoid(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) below, e = exp(-|x|):
 * exp never overflows, so the result is accurate down to subnormals
 * (1/(1 + exp(-x)) would be 0 below x = -88.7). */
static LLVMValueRef emit_sigmoid(Cg *c, LLVMValueRef x) {
  LLVMValueRef one = f32c(c, 1);
  LLVMValueRef e = emit_exp(c, LLVMBuildFNeg(c->b, call1(c, "llvm.fabs.f32", x), ""));
  LLVMValueRef num = select_f(c, LLVMRealOGE, x, f32c(c, 0), one, e);
  return LLVMBuildFDiv(c->b, num, LLVMBuildFAdd(c->b, one, e, ""), "");
}

/* A float accumulator in the entry block (mem2reg makes it a register). */
static LLVMValueRef local_f32(Cg *c, const char *name) {
  LLVMBuilderRef eb = LLVMCreateBuilderInContext(c->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction(c->entry);
  if (first) LLVMPositionBuilderBefore(eb, first);
  else LLVMPositionBuilderAtEnd(eb, c->entry);
  LLVMValueRef v = LLVMBuildAlloca(eb, c->f32, name);
  LLVMDisposeBuilder(eb);
  return v;
}

/* ---- loops -------------------------------------------------------------
 * for (i = from; i < to; i++): the test before the first iteration, then
 * at the bottom, so the body is one block LLVM can rotate and vectorize. */

typedef struct {
  LLVMBasicBlockRef body, exit;
  LLVMValueRef i, to;
} Loop;

static LLVMValueRef loop_begin(Cg *c, Loop *l, LLVMValueRef from, LLVMValueRef to, const char *name) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
  l->body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
  l->exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "");
  l->to = to;
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, from, to, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(c->b, l->body);
  l->i = LLVMBuildPhi(c->b, c->i64, name);
  LLVMAddIncoming(l->i, &from, &pre, 1);
  return l->i;
}

/* A loop's metadata (`llvm.loop`, an id that refers to itself):
 * - `llvm.loop.unroll.disable` on a short inner loop of known length keeps
 *   the early full unroll from flattening it, which would leave the
 *   vectorizer only the outer loop (and gathers across rows);
 * - `llvm.loop.vectorize.predicate.enable`: once vectorized, the loop's
 *   last, partial vector runs in the vector loop itself, with masked loads
 *   and stores (AVX-512 has them at full speed), instead of in a scalar
 *   copy of the loop after it (a loop that cannot be masked keeps the
 *   copy). The kernels' machine code is shorter and quicker to compile
 *   (HW6's: 7,310 instructions with no loop masked, 5,477 with every
 *   loop, 6,583 with every loop but reductions'). A reduction's inner
 *   loop is the exception (no_mask), measured: the autoencoder's sigmoid
 *   and squared error summed into its loss took 0.19-0.22 ms a step
 *   masked, 0.10 ms with the scalar copy (one thread, `nnc bench
 *   --kernels`), while loops that store, not sum, ran as fast either way.
 *   Each masked iteration builds its mask from 64-bit lane indices in
 *   512-bit registers. A row kernel's max, sum and argmax are reductions
 *   too: log_softmax over 128 rows of 2,000 took 0.88-0.90 ms with its
 *   max and sum masked, 0.61-0.76 ms with the scalar copy (the same
 *   measure). Its last pass, which stores, stays masked. */
static void loop_md(Cg *c, LLVMValueRef br, bool keep_rolled, bool no_mask) {
  LLVMMetadataRef ops[3];
  int n = 0;
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->ctx, NULL, 0);
  ops[n++] = tmp;
  if (keep_rolled) {
    LLVMMetadataRef flag = LLVMMDStringInContext2(c->ctx, "llvm.loop.unroll.disable", 24);
    ops[n++] = LLVMMDNodeInContext2(c->ctx, &flag, 1);
  }
  LLVMMetadataRef pair[2] = {LLVMMDStringInContext2(c->ctx, "llvm.loop.vectorize.predicate.enable", 36),
                             LLVMValueAsMetadata(LLVMConstInt(LLVMInt1TypeInContext(c->ctx), !no_mask, 0))};
  ops[n++] = LLVMMDNodeInContext2(c->ctx, pair, 2);
  LLVMMetadataRef id = LLVMMDNodeInContext2(c->ctx, ops, (size_t)n);
  LLVMMetadataReplaceAllUsesWith(tmp, id);   /* frees tmp */
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(c->ctx, "llvm.loop", 9), LLVMMetadataAsValue(c->ctx, id));
}

static void loop_end_x(Cg *c, Loop *l, bool keep_rolled, bool no_mask) {
  LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->i, i64c(c, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
  LLVMAddIncoming(l->i, &next, &latch, 1);
  LLVMValueRef br = LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, next, l->to, ""), l->body, l->exit);
  loop_md(c, br, keep_rolled, no_mask);
  LLVMMoveBasicBlockAfter(l->exit, latch);   /* keep the printed IR in nesting order */
  LLVMPositionBuilderAtEnd(c->b, l->exit);
}

static void loop_end(Cg *c, Loop *l) { loop_end_x(c, l, false, false); }

/* ---- loop nests with strided accesses -------------------------------- */

typedef struct {
  const IrNode *t;          /* the tensor read or written */
  int buf;                  /* its kernel parameter */
  Dim stride[MAX_RANK];     /* elements per step of each loop dim (0: broadcast) */
  LLVMValueRef off;         /* in the body: the element offset */
} Access;

typedef struct Nest {
  int nd;
  Dim dim[MAX_RANK];
  int nacc;
  Access *acc;
  int range_level;          /* this loop runs over [c->lo, c->hi) (-1: none); 0 for a loop kernel */
  int64_t partial_count;    /* a split reduction (ir_reduce_partial): the result's floats (else 0) */
  int partial;              /* ... the buffer of its partial result */
  bool is_max;              /* ... a MAXR */
  bool reduces;             /* a reduction's nest: its inner loop is not masked (loop_md) */
} Nest;

/* Strides of tensor t read as if broadcast to `view` (numpy: trailing dims
 * aligned), one per dim of `view` that is not 1. */
static void view_strides(const Shape *t, const Shape *view, Dim *out, int *nd) {
  int l = 0, extra = view->rank - t->rank;
  for (int j = 0; j < view->rank; j++) {
    if (is_one(view->d[j])) continue;
    int tj = j - extra;
    Dim s = dim_int(0);
    if (tj >= 0 && !is_one(t->d[tj])) {
      bool ok = shape_numel(t, tj + 1, &s);
      NNC_ASSERT(ok && dim_eq(t->d[tj], view->d[j]));
    }
    out[l++] = s;
  }
  *nd = l;
}

/* Merges loop dims l and l+1 wherever every access steps contiguously
 * across them (stride[l] == stride[l+1] · dim[l+1]), so that [B, 16] with
 * plain accesses is one loop of 16·B elements. */
static void nest_merge(Nest *ns) {
  for (int l = ns->nd - 2; l >= 0; l--) {
    bool ok = true;
    Dim merged;
    if (!dim_mul(ns->dim[l], ns->dim[l + 1], &merged)) continue;
    for (int a = 0; a < ns->nacc && ok; a++) {
      Dim want;
      ok = dim_mul(ns->acc[a].stride[l + 1], ns->dim[l + 1], &want) &&
           (dim_eq(want, ns->acc[a].stride[l]) || (is_zero(want) && is_zero(ns->acc[a].stride[l])));
    }
    if (!ok) continue;
    ns->dim[l] = merged;
    for (int a = 0; a < ns->nacc; a++) ns->acc[a].stride[l] = ns->acc[a].stride[l + 1];
    for (int m = l + 1; m < ns->nd - 1; m++) {
      ns->dim[m] = ns->dim[m + 1];
      for (int a = 0; a < ns->nacc; a++) ns->acc[a].stride[m] = ns->acc[a].stride[m + 1];
    }
    ns->nd--;
  }
}

typedef void (*BodyFn)(Cg *c, Nest *ns, void *ctx);

/* Emits the loops of the nest, outermost first, keeping each access's
 * offset as parent offset + index · stride; calls body in the innermost. */
static void nest_emit(Cg *c, Nest *ns, int level, BodyFn body, void *ctx) {
  if (level == ns->nd) {
    body(c, ns, ctx);
    return;
  }
  Loop l;
  bool ranged = level == ns->range_level;
  LLVMValueRef i = loop_begin(c, &l, ranged ? c->lo : i64c(c, 0), ranged ? c->hi : dim_value(c, ns->dim[level]), "i");
  LLVMValueRef *saved = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(ns->nacc + 1));
  for (int a = 0; a < ns->nacc; a++) {
    saved[a] = ns->acc[a].off;
    Dim s = ns->acc[a].stride[level];
    if (is_zero(s)) continue;
    LLVMValueRef step = is_one(s) ? i : LLVMBuildNSWMul(c->b, i, dim_value(c, s), "");
    ns->acc[a].off = LLVMBuildNSWAdd(c->b, ns->acc[a].off, step, "");
  }
  nest_emit(c, ns, level + 1, body, ctx);
  for (int a = 0; a < ns->nacc; a++) ns->acc[a].off = saved[a];
  Dim d = ns->dim[level];
  loop_end_x(c, &l, level == ns->nd - 1 && level > 0 && dim_known(d) && d.c >= 8, level == ns->nd - 1 && ns->reduces);
}

static void nest_run(Cg *c, Nest *ns, BodyFn body, void *ctx) {
  nest_merge(ns);
  for (int a = 0; a < ns->nacc; a++) ns->acc[a].off = i64c(c, 0);
  nest_emit(c, ns, 0, body, ctx);
}

/* ---- kernel functions ------------------------------------------------- */

/* The kernel parameter holding x's buffer (added on first use). */
static int buf_of(Cg *c, const IrNode *x) {
  const IrNode *s = storage(x);
  for (int i = 0; i < c->nbuf; i++)
    if (c->buf_off[i] == s->offset) return i;
  NNC_ASSERT(c->nbuf < c->maxbuf);
  c->buf_off[c->nbuf] = s->offset;
  return c->nbuf++;
}

static LLVMAttributeRef attr(Cg *c, const char *name) {
  return LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName(name, strlen(name)), 0);
}

/* Starts `void NAME.kK(ptr noalias b0, ..., ptr dims, i64 n)` for the
 * buffers collected so far (a ranged kernel: `..., i64 n, i64 lo, i64
 * hi)`); the builder is left in its entry block. */
static LLVMValueRef kernel_begin_x(Cg *c, int k, bool ranged) {
  LLVMTypeRef *params = arena_alloc(c->arena, sizeof(LLVMTypeRef) * (size_t)(c->nbuf + 4));
  for (int i = 0; i <= c->nbuf; i++) params[i] = c->ptr;
  params[c->nbuf + 1] = params[c->nbuf + 2] = params[c->nbuf + 3] = c->i64;
  LLVMTypeRef ty = LLVMFunctionType(c->voidt, params, (unsigned)c->nbuf + (ranged ? 4 : 2), 0);
  char *fname = arena_printf(c->arena, "%s.k%d", c->name, k);
  LLVMValueRef fn = LLVMAddFunction(c->mod, fname, ty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMSetUnnamedAddress(fn, LLVMGlobalUnnamedAddr);   /* its address (a ranged kernel's) may merge */
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attr(c, "noinline"));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attr(c, "nounwind"));
  for (int i = 0; i < c->nbuf; i++) {
    LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, attr(c, "noalias"));
    LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, attr(c, "nocapture"));
    c->buf[i] = LLVMGetParam(fn, (unsigned)i);
    const char *pname = arena_printf(c->arena, "at%lld", (long long)c->buf_off[i]);
    LLVMSetValueName2(c->buf[i], pname, strlen(pname));
  }
  c->fn = fn;
  c->dims = LLVMGetParam(fn, (unsigned)c->nbuf);
  LLVMSetValueName2(c->dims, "dims", 4);
  for (const char *a = "noalias\0nocapture\0readonly\0"; *a; a += strlen(a) + 1)
    LLVMAddAttributeAtIndex(fn, (unsigned)c->nbuf + 1, attr(c, a));
  c->ndims = 0;
  c->n = LLVMGetParam(fn, (unsigned)c->nbuf + 1);
  LLVMSetValueName2(c->n, "n", 1);
  c->lo = c->hi = NULL;
  if (ranged) {
    c->lo = LLVMGetParam(fn, (unsigned)c->nbuf + 2), c->hi = LLVMGetParam(fn, (unsigned)c->nbuf + 3);
    LLVMSetValueName2(c->lo, "lo", 2);
    LLVMSetValueName2(c->hi, "hi", 2);
  }
  c->entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(c->b, c->entry);
  return fn;
}

static LLVMValueRef kernel_begin(Cg *c, int k) { return kernel_begin_x(c, k, false); }

static void kernel_end(Cg *c) {
  LLVMBuildRetVoid(c->b);
  c->dims = NULL;
}

/* ---- elementwise ------------------------------------------------------ */

/* The value of one elementwise node from its inputs' values: codegen's
 * dispatch over ops (the non-elementwise ones are whole kernels below). */
static LLVMValueRef emit_elem(Cg *c, const IrNode *x, LLVMValueRef *v) {
  LLVMValueRef zero = f32c(c, 0), one = f32c(c, 1);
  switch (x->op) {
  case IR_NEG: return LLVMBuildFNeg(c->b, v[0], "");
  case IR_RELU: return select_f(c, LLVMRealOLT, v[0], zero, zero, v[0]);
  case IR_SIGMOID: return emit_sigmoid(c, v[0]);
  case IR_TANH: return emit_tanh(c, v[0]);
  case IR_EXP: return emit_exp(c, v[0]);
  case IR_LOG: return emit_log(c, v[0]);
  case IR_SQRT: return call1(c, "llvm.sqrt.f32", v[0]);
  case IR_ABS: return call1(c, "llvm.fabs.f32", v[0]);
  case IR_SIGN:
    return select_f(c, LLVMRealOGT, v[0], zero, one, select_f(c, LLVMRealOLT, v[0], zero, f32c(c, -1), zero));
  case IR_STEP: return select_f(c, LLVMRealOGT, v[0], zero, one, zero);
  case IR_STOP_GRAD: return v[0];
  case IR_ADD: return contract(LLVMBuildFAdd(c->b, v[0], v[1], ""));
  case IR_SUB: return contract(LLVMBuildFSub(c->b, v[0], v[1], ""));
  case IR_MUL: return contract(LLVMBuildFMul(c->b, v[0], v[1], ""));
  case IR_DIV: return LLVMBuildFDiv(c->b, v[0], v[1], "");
  case IR_POW: return call2(c, "powf", v[0], v[1]);
  case IR_MAX2: return select_f(c, LLVMRealOGT, v[0], v[1], v[0], v[1]);
  case IR_MIN2: return select_f(c, LLVMRealOLT, v[0], v[1], v[0], v[1]);
  case IR_GT: return select_f(c, LLVMRealOGT, v[0], v[1], one, zero);
  case IR_EQ: return select_f(c, LLVMRealOEQ, v[0], v[1], one, zero);
  case IR_SELECT: return select_f(c, LLVMRealUNE, v[0], zero, v[1], v[2]);
  case IR_EXPAND: return v[0];    /* the broadcast is in the load's strides */
  case IR_ASSIGN: return v[1];    /* stored to the leaf by the caller */
  case IR_INPUT: case IR_PARAM: case IR_STATE: case IR_RAND: case IR_CONST:
  case IR_SUM: case IR_MAXR: case IR_ARGMAX: case IR_RESHAPE: case IR_MATMUL:
  case IR_LOG_SOFTMAX: case IR_SOFTMAX: case IR_ONE_HOT: case IR_OP_COUNT:
  case IR_CONV2D: case IR_CONV2D_BWD_X: case IR_CONV2D_BWD_W: case IR_MAXPOOL2D: case IR_MAXPOOL2D_BWD:
  case IR_MAXPOOL2D_PICK: case IR_AVGPOOL2D: case IR_AVGPOOL2D_BWD: case IR_SLICE: case IR_SLICE_BWD:
    break;
  }
  nnc_die(__FILE__, __LINE__, "codegen: %s is not elementwise", ir_op_name(x->op));
}

typedef struct {
  const Kernel *kn;
  int count;         /* the kernel's first `count` nodes are elementwise */
  int *load_acc;     /* [node index in kernel · 3 + src]: access, or -1 */
  int *store_acc;    /* [node index in kernel]: access, or -1 */
  LLVMValueRef *val; /* [node id]: value in this iteration */
} LoopCtx;

static void loop_body(Cg *c, Nest *ns, void *vctx) {
  LoopCtx *lc = vctx;
  for (int i = 0; i < lc->count; i++) {
    const IrNode *x = lc->kn->nodes.items[i];
    LLVMValueRef v[3] = {0};
    for (int s = 0; s < 3 && x->src[s]; s++) {
      if (x->op == IR_ASSIGN && s == 0) continue;
      const IrNode *in = x->src[s], *root = view_root(in);
      int a = lc->load_acc[i * 3 + s];
      if (root->op == IR_CONST) v[s] = f32c(c, root->f);
      else if (a >= 0) v[s] = load_f(c, c->buf[ns->acc[a].buf], ns->acc[a].off);
      else v[s] = lc->val[in->id];
      NNC_ASSERT(v[s]);
    }
    lc->val[x->id] = emit_elem(c, x, v);
    int a = lc->store_acc[i];
    if (a >= 0) store_f(c, lc->val[x->id], c->buf[ns->acc[a].buf], ns->acc[a].off);
  }
}

static void add_access(Cg *c, Nest *ns, const IrNode *t, const Shape *view) {
  Access *a = &ns->acc[ns->nacc++];
  a->t = t;
  a->buf = buf_of(c, t);
  int nd;
  view_strides(&t->shape, view, a->stride, &nd);
  NNC_ASSERT(nd == ns->nd);
}

/* What the step needs of a ranged kernel just built: its nest (c->loop). */
static void keep_nest(Cg *c, const Nest *ns, bool ranged) {
  c->loop = NULL;
  if (ranged) {
    c->loop = arena_alloc(c->arena, sizeof *ns);
    *c->loop = *ns;
  }
}

/* The loads and stores of a kernel's first lc->count (elementwise) nodes,
 * as accesses of ns. */
static void loop_accesses(Cg *c, int k, Nest *ns, LoopCtx *lc) {
  const Fusion *f = c->f;
  const Kernel *kn = lc->kn;
  int nn = lc->count;
  lc->load_acc = arena_alloc(c->arena, sizeof(int) * (size_t)(3 * nn + 1));
  lc->store_acc = arena_alloc(c->arena, sizeof(int) * (size_t)(nn + 1));
  lc->val = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(c->g->nodes.len + 1));
  for (int i = 0; i < nn; i++) {
    const IrNode *x = kn->nodes.items[i];
    for (int s = 0; s < 3; s++) {
      const IrNode *in = x->src[s];
      lc->load_acc[i * 3 + s] = -1;
      if (!in || (x->op == IR_ASSIGN && s == 0) || view_root(in)->op == IR_CONST) continue;
      if (f->kernel[in->id] == k) continue;   /* a value of this iteration */
      lc->load_acc[i * 3 + s] = ns->nacc;
      add_access(c, ns, in, &x->shape);
    }
    lc->store_acc[i] = -1;
    if (x->op == IR_ASSIGN || f->materialized[x->id]) {
      lc->store_acc[i] = ns->nacc;
      add_access(c, ns, x->op == IR_ASSIGN ? x->src[0] : x, &x->shape);
    }
  }
}

static void gen_loop(Cg *c, int k, const Kernel *kn) {
  int nn = kn->nodes.len;
  LoopCtx lc = {.kn = kn, .count = nn};
  Nest ns = {.acc = arena_alloc(c->arena, sizeof(Access) * (size_t)(4 * nn))};
  const IrNode *first = kn->nodes.items[0];
  Shape loop = first->shape;
  for (int j = 0; j < loop.rank; j++)
    if (!is_one(loop.d[j])) ns.dim[ns.nd++] = loop.d[j];
  loop_accesses(c, k, &ns, &lc);
  /* Ranged: the step may run the outer loop in two halves at once
   * (nnc_parallel), when each half writes only its own elements and the
   * loop can be big enough to be worth it. */
  nest_merge(&ns);
  bool ranged = ns.nd >= 1;
  for (int i = 0; i < nn && ranged; i++)
    if (lc.store_acc[i] >= 0) ranged = !is_zero(ns.acc[lc.store_acc[i]].stride[0]);
  Dim total = dim_int(1);
  bool sized = true;   /* total is the loop's size (else nnc_parallel decides when it runs) */
  for (int l = 0; l < ns.nd && sized; l++) sized = dim_mul(total, ns.dim[l], &total);
  if (ranged && sized && dim_known(total) && total.c < RT_MIN_PARALLEL_ELEMENTS) ranged = false;
  ns.range_level = ranged ? 0 : -1;
  kernel_begin_x(c, k, ranged);
  nest_run(c, &ns, loop_body, &lc);
  kernel_end(c);
  keep_nest(c, &ns, ranged);
}

/* ---- reductions ------------------------------------------------------- */

/* A reduction kernel: its last node sums (or maxes) its input over the
 * reduced axes; the nodes before it, if any, compute that input in the
 * same loop (fuse.c), storing only what other kernels read. Access 0 is
 * the result, access 1 the input when it comes from another kernel. */
typedef struct {
  bool is_max;
  LoopCtx *pro;      /* the nodes computing the input, or NULL */
  const IrNode *x;   /* the input */
} ReduceCtx;

static void reduce_body(Cg *c, Nest *ns, void *vctx) {
  ReduceCtx *rc = vctx;
  LLVMValueRef out = c->buf[ns->acc[0].buf], x;
  if (rc->pro) {
    loop_body(c, ns, rc->pro);
    x = rc->pro->val[rc->x->id];
  } else {
    x = load_f(c, c->buf[ns->acc[1].buf], ns->acc[1].off);
  }
  LLVMValueRef acc = load_f(c, out, ns->acc[0].off);
  LLVMValueRef r = rc->is_max ? select_f(c, LLVMRealOGT, x, acc, x, acc)
                              : reassoc(LLVMBuildFAdd(c->b, acc, x, ""));
  store_f(c, r, out, ns->acc[0].off);
}

static void gen_reduce(Cg *c, int k, const Kernel *kn) {
  int np = kn->nodes.len - 1;   /* the prologue's nodes */
  const IrNode *r = kn->nodes.items[np], *x = r->src[0];
  NNC_ASSERT(view_root(x)->op != IR_CONST);   /* a reduction of a scalar is folded earlier */
  Nest ns = {.acc = arena_alloc(c->arena, sizeof(Access) * (size_t)(2 + 4 * np)), .nacc = np ? 1 : 2,
             .range_level = -1, .reduces = true};
  ns.acc[0].t = r;
  ns.acc[0].buf = buf_of(c, r);
  if (!np) {
    ns.acc[1].t = x;
    ns.acc[1].buf = buf_of(c, x);
  }
  /* loop over the input's dims; the output steps only along kept dims */
  int oj = 0;
  for (int j = 0; j < x->shape.rank; j++) {
    bool reduced = (r->axes >> j) & 1u;
    int o = reduced ? (r->keepdim ? oj++ : -1) : oj++;
    if (is_one(x->shape.d[j])) continue;
    Dim xs, os = dim_int(0);
    bool ok = shape_numel(&x->shape, j + 1, &xs);
    if (!reduced) ok = ok && shape_numel(&r->shape, o + 1, &os);
    NNC_ASSERT(ok);
    ns.dim[ns.nd] = x->shape.d[j];
    ns.acc[0].stride[ns.nd] = os;
    ns.acc[1].stride[ns.nd] = xs;
    ns.nd++;
  }
  LoopCtx lc = {.kn = kn, .count = np};
  if (np) loop_accesses(c, k, &ns, &lc);
  /* Ranged, so that two halves run at once, in one of two ways (the
   * prologue's stores split along the same dim):
   * - split (ir_reduce_partial: the outermost dim is reduced, the result
   *   small): each half reduces its own rows of the outermost dim, the
   *   one from row 0 into the result, the other into a partial result
   *   (scratch), which the step then adds in (nnc_parallel_reduce). A
   *   half's rows are the ones the kernels before wrote on its thread.
   * - along the outermost kept dim: each half reduces into its own
   *   outputs (a bias gradient over channels of images: its own
   *   channels), whose offsets are one contiguous range, as every dim
   *   outside it is reduced. */
  nest_merge(&ns);
  int rl = 0;
  while (rl < ns.nd && is_zero(ns.acc[0].stride[rl])) rl++;
  int64_t partial = c->g->scratch >= 0 ? ir_reduce_partial(r) : 0;
  if (partial) rl = 0;
  Dim total = dim_int(1);
  bool sized = true;
  for (int j = 0; j < ns.nd && sized; j++) sized = dim_mul(total, ns.dim[j], &total);
  bool ranged = rl < ns.nd && !(sized && dim_known(total) && total.c < RT_MIN_PARALLEL_ELEMENTS);
  ns.range_level = ranged ? rl : -1;
  bool is_max = r->op == IR_MAXR;
  if (ranged && partial) {
    NNC_ASSERT(is_zero(ns.acc[0].stride[0]) && c->nbuf < c->maxbuf);
    ns.partial = c->nbuf;
    ns.partial_count = partial;
    ns.is_max = is_max;
    c->buf_off[c->nbuf++] = c->g->scratch;
  }
  kernel_begin_x(c, k, ranged);
  Loop l;
  LLVMValueRef from = i64c(c, 0), to = numel_value(c, &r->shape);
  if (ns.partial_count) {
    /* the half from row 0 reduces into the result, the other into the partial */
    LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, c->lo, i64c(c, 0), "");
    c->buf[ns.acc[0].buf] = LLVMBuildSelect(c->b, first, c->buf[ns.acc[0].buf], c->buf[ns.partial], "into");
  } else if (ranged) {
    LLVMValueRef os = dim_value(c, ns.acc[0].stride[rl]);
    from = LLVMBuildNSWMul(c->b, c->lo, os, ""), to = LLVMBuildNSWMul(c->b, c->hi, os, "");
  }
  LLVMValueRef i = loop_begin(c, &l, from, to, "o");
  store_f(c, f32c(c, is_max ? -INFINITY : 0.0), c->buf[ns.acc[0].buf], i);
  loop_end(c, &l);
  ReduceCtx rc = {.is_max = is_max, .pro = np ? &lc : NULL, .x = x};
  nest_run(c, &ns, reduce_body, &rc);
  kernel_end(c);
  keep_nest(c, &ns, ranged);
}

/* ---- rows of the last axis -------------------------------------------- */

static void gen_row(Cg *c, int k, const IrNode *y) {
  const IrNode *x = y->src[0];
  NNC_ASSERT(view_root(x)->op != IR_CONST);
  int bx = buf_of(c, x), by = buf_of(c, y);
  kernel_begin(c, k);
  LLVMValueRef X = c->buf[bx], Y = c->buf[by];
  if (y->op == IR_ONE_HOT) {
    /* y[r, j] = (j == x[r]); ids are exact floats */
    LLVMValueRef ncls = i64c(c, y->n);
    Loop lr, lj;
    LLVMValueRef r = loop_begin(c, &lr, i64c(c, 0), numel_value(c, &x->shape), "row");
    LLVMValueRef id = load_f(c, X, r);
    LLVMValueRef base = LLVMBuildNSWMul(c->b, r, ncls, "");
    LLVMValueRef j = loop_begin(c, &lj, i64c(c, 0), ncls, "j");
    LLVMValueRef jf = LLVMBuildSIToFP(c->b, j, c->f32, "");
    store_f(c, select_f(c, LLVMRealOEQ, jf, id, f32c(c, 1), f32c(c, 0)), Y, LLVMBuildNSWAdd(c->b, base, j, ""));
    loop_end(c, &lj);
    loop_end(c, &lr);
    kernel_end(c);
    return;
  }
  NNC_ASSERT(x->shape.rank >= 1);
  LLVMValueRef L = dim_value(c, x->shape.d[x->shape.rank - 1]);
  Shape rows_shape = x->shape;
  rows_shape.rank--;
  Loop lr;
  LLVMValueRef r = loop_begin(c, &lr, i64c(c, 0), numel_value(c, &rows_shape), "row");
  LLVMValueRef base = LLVMBuildNSWMul(c->b, r, L, "");
  LLVMValueRef m = local_f32(c, "max");
  if (y->op == IR_ARGMAX) {
    /* the first index of the maximum, as torch.argmax and numpy do */
    LLVMValueRef best = local_f32(c, "best");
    LLVMSetAlignment(LLVMBuildStore(c->b, load_f(c, X, base), m), 4);
    LLVMSetAlignment(LLVMBuildStore(c->b, f32c(c, 0), best), 4);
    Loop lj;
    LLVMValueRef j = loop_begin(c, &lj, i64c(c, 1), L, "j");
    LLVMValueRef v = load_f(c, X, LLVMBuildNSWAdd(c->b, base, j, ""));
    LLVMValueRef cur = LLVMBuildLoad2(c->b, c->f32, m, "");
    LLVMValueRef gt = LLVMBuildFCmp(c->b, LLVMRealOGT, v, cur, "");
    LLVMBuildStore(c->b, LLVMBuildSelect(c->b, gt, v, cur, ""), m);
    LLVMValueRef jf = LLVMBuildSIToFP(c->b, j, c->f32, "");
    LLVMBuildStore(c->b, LLVMBuildSelect(c->b, gt, jf, LLVMBuildLoad2(c->b, c->f32, best, ""), ""), best);
    loop_end_x(c, &lj, false, true);   /* a reduction: not masked (loop_md) */
    store_f(c, LLVMBuildLoad2(c->b, c->f32, best, ""), Y, r);
    loop_end(c, &lr);
    kernel_end(c);
    return;
  }
  /* softmax and log_softmax: subtract the row's max so exp cannot overflow */
  LLVMValueRef sum = local_f32(c, "sum");
  LLVMBuildStore(c->b, f32c(c, -INFINITY), m);
  LLVMBuildStore(c->b, f32c(c, 0), sum);
  Loop l1, l2, l3;
  LLVMValueRef j = loop_begin(c, &l1, i64c(c, 0), L, "j");
  LLVMValueRef v = load_f(c, X, LLVMBuildNSWAdd(c->b, base, j, ""));
  LLVMValueRef cur = LLVMBuildLoad2(c->b, c->f32, m, "");
  LLVMBuildStore(c->b, select_f(c, LLVMRealOGT, v, cur, v, cur), m);
  loop_end_x(c, &l1, false, true);   /* reductions: not masked (loop_md) */
  LLVMValueRef mx = LLVMBuildLoad2(c->b, c->f32, m, "");
  j = loop_begin(c, &l2, i64c(c, 0), L, "j");
  LLVMValueRef idx = LLVMBuildNSWAdd(c->b, base, j, "");
  LLVMValueRef e = emit_exp(c, LLVMBuildFSub(c->b, load_f(c, X, idx), mx, ""));
  if (y->op == IR_SOFTMAX) store_f(c, e, Y, idx);
  LLVMBuildStore(c->b, reassoc(LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, sum, ""), e, "")), sum);
  loop_end_x(c, &l2, false, true);
  LLVMValueRef s = LLVMBuildLoad2(c->b, c->f32, sum, "");
  LLVMValueRef shift = y->op == IR_SOFTMAX ? LLVMBuildFDiv(c->b, f32c(c, 1), s, "")
                                           : LLVMBuildFAdd(c->b, mx, emit_log(c, s), "");
  j = loop_begin(c, &l3, i64c(c, 0), L, "j");
  idx = LLVMBuildNSWAdd(c->b, base, j, "");
  if (y->op == IR_SOFTMAX) store_f(c, LLVMBuildFMul(c->b, load_f(c, Y, idx), shift, ""), Y, idx);
  else store_f(c, LLVMBuildFSub(c->b, load_f(c, X, idx), shift, ""), Y, idx);
  loop_end(c, &l3);
  loop_end(c, &lr);
  kernel_end(c);
}

/* ---- the step function ------------------------------------------------ */

/* C = op(A) @ op(B), row-major, straight from the arena: no copies. */
static void gen_matmul(Cg *c, LLVMValueRef arena, const IrNode *y) {
  const IrNode *a = y->src[0], *b = y->src[1];
  LLVMValueRef M = dim_value(c, y->shape.d[0]), N = dim_value(c, y->shape.d[1]);
  LLVMValueRef K = dim_value(c, y->trans_a ? a->shape.d[0] : a->shape.d[1]);
  LLVMValueRef lda = dim_value(c, a->shape.d[1]), ldb = dim_value(c, b->shape.d[1]);
  LLVMTypeRef i64 = c->i64, p = c->ptr;
  LLVMTypeRef pt[11] = {i64, i64, i64, i64, i64, p, i64, p, i64, p, i64};
  LLVMTypeRef ty = LLVMFunctionType(c->voidt, pt, 11, 0);
  LLVMValueRef fn = declare(c, "nnc_sgemm", ty);
  LLVMValueRef ptrs[3];
  const IrNode *ops[3] = {a, b, y};
  for (int i = 0; i < 3; i++) {
    LLVMValueRef off = i64c(c, storage(ops[i])->offset);
    ptrs[i] = LLVMBuildInBoundsGEP2(c->b, c->f32, arena, &off, 1, "");
  }
  LLVMValueRef args[11] = {i64c(c, y->trans_a), i64c(c, y->trans_b), M, N, K, ptrs[0], lda, ptrs[1], ldb, ptrs[2], N};
  LLVMBuildCall2(c->b, ty, fn, args, 11, "");
}

/* A private constant array of i64 in the module (a null pointer if empty). */
static LLVMValueRef const_i64_array(Cg *c, const char *name, const int64_t *v, int count) {
  if (count == 0) return LLVMConstPointerNull(c->ptr);
  LLVMValueRef *vals = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)count);
  for (int i = 0; i < count; i++) vals[i] = i64c(c, v[i]);
  LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMArrayType2(c->i64, (uint64_t)count), name);
  LLVMSetInitializer(gv, LLVMConstArray2(c->i64, vals, (uint64_t)count));
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  return gv;
}

/* A convolution or pooling: a call to its runtime kernel (runtime/kernels.h)
 *     nnc_conv2d(x, w, y, scratch, images, geom)
 * with the geometry as a constant array in the module. */
static void gen_call(Cg *c, LLVMValueRef arena, const IrNode *y) {
  int64_t geom[RT_GEOM_COUNT];
  int lead = ir_window_geom(y, geom);
  const Shape *xs, *ys;
  ir_window_sides(y, &xs, &ys);
  LLVMValueRef count = dims_product(c, xs->d, lead);
  LLVMValueRef gv = const_i64_array(c, "geom", geom, RT_GEOM_COUNT);
  LLVMValueRef ptrs[4];
  const IrNode *ops[3] = {y->src[0], y->src[1], y};
  for (int i = 0; i < 3; i++) {
    LLVMValueRef off = i64c(c, ops[i] ? storage(ops[i])->offset : 0);
    ptrs[i] = ops[i] ? LLVMBuildInBoundsGEP2(c->b, c->f32, arena, &off, 1, "") : LLVMConstPointerNull(c->ptr);
  }
  LLVMValueRef soff = i64c(c, c->g->scratch);
  ptrs[3] = c->g->scratch >= 0 ? LLVMBuildInBoundsGEP2(c->b, c->f32, arena, &soff, 1, "") : LLVMConstPointerNull(c->ptr);
  char fname[48] = "nnc_";
  ir_lowercase(fname + 4, sizeof fname - 4, ir_op_name(y->op));
  LLVMTypeRef pt[6] = {c->ptr, c->ptr, c->ptr, c->ptr, c->i64, c->ptr};
  LLVMTypeRef ty = LLVMFunctionType(c->voidt, pt, 6, 0);
  LLVMValueRef args[6] = {ptrs[0], ptrs[1], ptrs[2], ptrs[3], count, gv};
  LLVMBuildCall2(c->b, ty, declare(c, fname, ty), args, 6, "");
}

/* The shapes may only use the batch symbol, and everything read or written
 * needs an offset from the memory plan. */
static bool check_graph(Cg *c) {
  for (int i = 0; i < c->g->nodes.len; i++) {
    const IrNode *x = c->g->nodes.items[i];
    for (int d = 0; d < x->shape.rank; d++)
      for (int s = 0; s < x->shape.d[d].nsym; s++)
        if (strcmp(x->shape.d[d].sym[s], "B") != 0) {
          snprintf(c->err, c->errlen, "%%%d has the dimension %s, which is not known when the step is compiled",
                   x->id, x->shape.d[d].sym[s]);
          return false;
        }
    if (c->f->kernel[i] < 0) continue;   /* leaves, views: checked where they are read */
    const IrNode *need[4] = {x->op == IR_ASSIGN || c->f->materialized[i] ? x : NULL, x->src[0], x->src[1], x->src[2]};
    for (int k = 0; k < 4; k++) {
      if (!need[k] || view_root(need[k])->op == IR_CONST) continue;
      if (k > 0 && c->f->kernel[need[k]->id] == c->f->kernel[i]) continue;   /* a register */
      if (storage(need[k])->offset < 0) {
        snprintf(c->err, c->errlen, "%%%d has no place in the arena (run the memory planner first)",
                 storage(need[k])->id);
        return false;
      }
    }
  }
  return true;
}

/* A ranged kernel's call is described by a constant in the module, its
 * `desc`: the kernel, its dims, then the arena offset of each of its
 * buffers (8-byte slots). The step passes nnc_parallel a ctx of three
 * slots: the desc, the arena and n (the last two stored once per
 * function), so that a call costs the step one store, however many
 * buffers the kernel has. */
enum { CTX_DESC, CTX_ARENA, CTX_N, CTX_SLOTS };

/* `void NAME.partN(ptr ctx, i64 lo, i64 hi)`: calls the ranged kernel of
 * N buffers that ctx describes over [lo, hi). nnc_parallel calls it once
 * per half. One per buffer count, shared by every kernel with it. */
static LLVMValueRef gen_part_fn(Cg *c, LLVMTypeRef kty, int nbuf) {
  LLVMTypeRef pt[3] = {c->ptr, c->i64, c->i64};
  char *fname = arena_printf(c->arena, "%s.part%d", c->name, nbuf);
  LLVMValueRef fn = LLVMAddFunction(c->mod, fname, LLVMFunctionType(c->voidt, pt, 3, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attr(c, "nounwind"));
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  LLVMValueRef ctx = LLVMGetParam(fn, 0);
  LLVMValueRef desc = load_slot(c, c->ptr, ctx, CTX_DESC), arena = load_slot(c, c->ptr, ctx, CTX_ARENA);
  LLVMValueRef *args = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(nbuf + 4));
  for (int i = 0; i < nbuf; i++) {
    LLVMValueRef off = load_slot(c, c->i64, desc, 2 + i);
    args[i] = LLVMBuildInBoundsGEP2(c->b, c->f32, arena, &off, 1, "");
  }
  args[nbuf] = load_slot(c, c->ptr, desc, 1);
  args[nbuf + 1] = load_slot(c, c->i64, ctx, CTX_N);
  args[nbuf + 2] = LLVMGetParam(fn, 1);
  args[nbuf + 3] = LLVMGetParam(fn, 2);
  LLVMBuildCall2(c->b, kty, load_slot(c, c->ptr, desc, 0), args, (unsigned)nbuf + 4, "");
  LLVMBuildRetVoid(c->b);
  return fn;
}

/* A ranged kernel's call from the step: its desc into ctx, then
 * nnc_parallel(part, ctx, outer loop's length, elements), or for a split
 * reduction nnc_parallel_reduce (the same, then the partial added in). */
static void gen_parallel_call(Cg *c, LLVMValueRef arena, LLVMValueRef ctx, LLVMValueRef part, const Nest *ns,
                              LLVMValueRef kfn, LLVMValueRef dims, const int64_t *buf, int nbuf) {
  LLVMValueRef *vals = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(nbuf + 2));
  vals[0] = kfn;
  vals[1] = dims;
  for (int i = 0; i < nbuf; i++) vals[2 + i] = i64c(c, buf[i]);
  LLVMValueRef init = LLVMConstStructInContext(c->ctx, vals, (unsigned)nbuf + 2, 0);
  LLVMValueRef desc = LLVMAddGlobal(c->mod, LLVMTypeOf(init), "desc");
  LLVMSetInitializer(desc, init);
  LLVMSetGlobalConstant(desc, 1);
  LLVMSetLinkage(desc, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(desc, LLVMGlobalUnnamedAddr);
  LLVMValueRef idx = i64c(c, CTX_DESC);
  LLVMBuildStore(c->b, desc, LLVMBuildInBoundsGEP2(c->b, c->ptr, ctx, &idx, 1, ""));
  LLVMTypeRef pt[8] = {c->ptr, c->ptr, c->i64, c->i64, c->ptr, c->ptr, c->i64, c->i64};
  LLVMValueRef cargs[8] = {part, ctx, dim_value(c, ns->dim[ns->range_level]), dims_product(c, ns->dim, ns->nd)};
  if (!ns->partial_count) {
    LLVMTypeRef ty = LLVMFunctionType(c->voidt, pt, 4, 0);
    LLVMBuildCall2(c->b, ty, declare(c, "nnc_parallel", ty), cargs, 4, "");
    return;
  }
  /* a split reduction: nnc_parallel_reduce(..., result, partial, floats, is_max) */
  for (int i = 0; i < 2; i++) {
    LLVMValueRef off = i64c(c, buf[i == 0 ? ns->acc[0].buf : ns->partial]);
    cargs[4 + i] = LLVMBuildInBoundsGEP2(c->b, c->f32, arena, &off, 1, "");
  }
  cargs[6] = i64c(c, ns->partial_count);
  cargs[7] = i64c(c, ns->is_max);
  LLVMTypeRef ty = LLVMFunctionType(c->voidt, pt, 8, 0);
  LLVMBuildCall2(c->b, ty, declare(c, "nnc_parallel_reduce", ty), cargs, 8, "");
}

/* The step's call of kernel k: the library call of a MATMUL or CALL
 * kernel, or a call of the kernel's own function with its buffers (a
 * ranged kernel's through nnc_parallel). */
static void gen_kernel_call(Cg *c, LLVMValueRef arena, int k, LLVMValueRef *kfn, int64_t **kbuf, const int *knbuf,
                            struct Nest **kloop, LLVMValueRef *kpart, LLVMValueRef ctx, int64_t **kdims,
                            const int *kndims) {
  const Kernel *kn = &c->f->kernels[k];
  if (kn->kind == FK_MATMUL) {
    gen_matmul(c, arena, kn->nodes.items[0]);
    return;
  }
  if (kn->kind == FK_CALL) {
    gen_call(c, arena, kn->nodes.items[0]);
    return;
  }
  LLVMValueRef dims = const_i64_array(c, "dims", kdims[k], kndims[k]);
  if (kloop[k]) {
    gen_parallel_call(c, arena, ctx, kpart[k], kloop[k], kfn[k], dims, kbuf[k], knbuf[k]);
    return;
  }
  LLVMValueRef *args = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(knbuf[k] + 2));
  for (int i = 0; i < knbuf[k]; i++) {
    LLVMValueRef off = i64c(c, kbuf[k][i]);
    args[i] = LLVMBuildInBoundsGEP2(c->b, c->f32, arena, &off, 1, "");
  }
  args[knbuf[k]] = dims;
  args[knbuf[k] + 1] = c->n;
  LLVMBuildCall2(c->b, LLVMGlobalGetValueType(kfn[k]), kfn[k], args, (unsigned)knbuf[k] + 2, "");
}

void *cg_build_module(void *llvm_context, void *target_machine, const Graph *g, const Fusion *f,
                      const char *name, char *err, size_t errlen) {
  Cg cg = {.ctx = llvm_context, .g = g, .f = f, .name = name, .err = err, .errlen = errlen};
  Cg *c = &cg;
  if (!check_graph(c)) return NULL;
  c->arena = arena_new();
  c->mod = LLVMModuleCreateWithNameInContext(name, c->ctx);
  if (target_machine) {
    LLVMTargetMachineRef tm = target_machine;
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(c->mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(c->mod, td);
    LLVMDisposeTargetData(td);
  }
  c->b = LLVMCreateBuilderInContext(c->ctx);
  c->f32 = LLVMFloatTypeInContext(c->ctx);
  c->i64 = LLVMInt64TypeInContext(c->ctx);
  c->i32 = LLVMInt32TypeInContext(c->ctx);
  c->ptr = LLVMPointerTypeInContext(c->ctx, 0);
  c->voidt = LLVMVoidTypeInContext(c->ctx);
  c->maxbuf = 4 * g->nodes.len + 4;   /* no kernel touches more buffers than that */
  c->buf_off = arena_alloc(c->arena, sizeof(int64_t) * (size_t)c->maxbuf);
  c->buf = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)c->maxbuf);

  /* the kernels, each its own function */
  LLVMValueRef *kfn = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(f->nkernels + 1));
  int64_t **kbuf = arena_alloc(c->arena, sizeof(int64_t *) * (size_t)(f->nkernels + 1));
  int *knbuf = arena_alloc(c->arena, sizeof(int) * (size_t)(f->nkernels + 1));
  struct Nest **kloop = arena_alloc(c->arena, sizeof(struct Nest *) * (size_t)(f->nkernels + 1));
  int64_t **kdims = arena_alloc(c->arena, sizeof(int64_t *) * (size_t)(f->nkernels + 1));
  int *kndims = arena_alloc(c->arena, sizeof(int) * (size_t)(f->nkernels + 1));
  c->maxdims = 256;
  c->dimv = arena_alloc(c->arena, sizeof(int64_t) * (size_t)c->maxdims);
  LLVMValueRef *kpart = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(f->nkernels + 1));
  for (int k = 0; k < f->nkernels; k++) {
    const Kernel *kn = &f->kernels[k];
    c->nbuf = 0;
    c->loop = NULL;
    switch (kn->kind) {
    case FK_LOOP: gen_loop(c, k, kn); break;
    case FK_REDUCE: gen_reduce(c, k, kn); break;
    case FK_ROW: gen_row(c, k, kn->nodes.items[0]); break;
    case FK_MATMUL: case FK_CALL: continue;
    }
    kfn[k] = c->fn;
    knbuf[k] = c->nbuf;
    kbuf[k] = arena_alloc(c->arena, sizeof(int64_t) * (size_t)(c->nbuf + 1));
    memcpy(kbuf[k], c->buf_off, sizeof(int64_t) * (size_t)c->nbuf);
    kndims[k] = c->ndims;
    kdims[k] = arena_alloc(c->arena, sizeof(int64_t) * (size_t)(c->ndims + 1));
    memcpy(kdims[k], c->dimv, sizeof(int64_t) * (size_t)c->ndims);
    kloop[k] = c->loop;
    if (kloop[k]) {
      int j = 0;   /* the trampoline of a kernel with as many buffers, if there is one */
      while (j < k && !(kloop[j] && knbuf[j] == knbuf[k])) j++;
      kpart[k] = j < k ? kpart[j] : gen_part_fn(c, LLVMGlobalGetValueType(kfn[k]), knbuf[k]);
    }
  }

  /* void NAME(ptr arena, i64 n): the kernels in order. A step of many
   * kernels calls them from functions of STEP_CHUNK calls each
   * (NAME.s0, NAME.s1, ...): one straight-line function of thousands of
   * instructions cost LLVM more than its pieces, and the pieces are
   * compiled on both cores like the kernels. */
  enum { STEP_CHUNK = 32 };
  LLVMTypeRef params[2] = {c->ptr, c->i64};
  LLVMTypeRef step_ty = LLVMFunctionType(c->voidt, params, 2, 0);
  LLVMValueRef step = LLVMAddFunction(c->mod, name, step_ty);
  LLVMAddAttributeAtIndex(step, LLVMAttributeFunctionIndex, attr(c, "nounwind"));
  int nchunks = f->nkernels > STEP_CHUNK ? (f->nkernels + STEP_CHUNK - 1) / STEP_CHUNK : 1;
  LLVMValueRef *chunk = arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)nchunks);
  LLVMTypeRef prof_ty = LLVMFunctionType(c->voidt, &c->i64, 1, 0);
  for (int ch = 0; ch < nchunks; ch++) {
    LLVMValueRef fn = step;
    if (nchunks > 1) {
      fn = LLVMAddFunction(c->mod, arena_printf(c->arena, "%s.s%d", name, ch), step_ty);
      LLVMSetLinkage(fn, LLVMInternalLinkage);
      LLVMSetUnnamedAddress(fn, LLVMGlobalUnnamedAddr);
      LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attr(c, "noinline"));
      LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attr(c, "nounwind"));
    }
    chunk[ch] = fn;
    LLVMValueRef arena = LLVMGetParam(fn, 0);
    LLVMSetValueName2(arena, "arena", 5);
    c->fn = fn;
    c->n = LLVMGetParam(fn, 1);
    LLVMSetValueName2(c->n, "n", 1);
    c->entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(c->b, c->entry);
    /* a ranged kernel's desc, the arena and n, for its halves */
    LLVMValueRef ctx = LLVMBuildArrayAlloca(c->b, c->ptr, i64c(c, CTX_SLOTS), "ctx");
    LLVMValueRef vals[2] = {arena, c->n};
    for (int i = 0; i < 2; i++) {
      LLVMValueRef idx = i64c(c, i == 0 ? CTX_ARENA : CTX_N);
      LLVMBuildStore(c->b, vals[i], LLVMBuildInBoundsGEP2(c->b, c->ptr, ctx, &idx, 1, ""));
    }
    /* profiling: every kernel between nnc_prof_begin(k) and nnc_prof_end(k) */
    int end = (ch + 1) * STEP_CHUNK < f->nkernels && nchunks > 1 ? (ch + 1) * STEP_CHUNK : f->nkernels;
    for (int k = ch * STEP_CHUNK; k < end; k++) {
      LLVMValueRef kv = i64c(c, f->prof_base + k);
      if (f->profile) LLVMBuildCall2(c->b, prof_ty, declare(c, "nnc_prof_begin", prof_ty), &kv, 1, "");
      gen_kernel_call(c, arena, k, kfn, kbuf, knbuf, kloop, kpart, ctx, kdims, kndims);
      if (f->profile) LLVMBuildCall2(c->b, prof_ty, declare(c, "nnc_prof_end", prof_ty), &kv, 1, "");
    }
    LLVMBuildRetVoid(c->b);
  }
  if (nchunks > 1) {
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, step, "entry"));
    LLVMValueRef args[2] = {LLVMGetParam(step, 0), LLVMGetParam(step, 1)};
    for (int ch = 0; ch < nchunks; ch++) LLVMBuildCall2(c->b, step_ty, chunk[ch], args, 2, "");
    LLVMBuildRetVoid(c->b);
  }
  LLVMDisposeBuilder(c->b);
  arena_free(c->arena);

  char *msg = NULL;
  if (LLVMVerifyModule(c->mod, LLVMReturnStatusAction, &msg)) {
    snprintf(err, errlen, "codegen produced invalid LLVM IR (a bug in nnc): %s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(c->mod);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  return c->mod;
}
