/*
 * interp.c — a reference evaluator of the graph IR, in double precision.
 *
 * Slow on purpose: every node gets its own array, and every element of
 * every op is found by full index arithmetic (unravel the output index,
 * map it into each input by numpy's broadcasting rules). Nothing is fused
 * and nothing is clever, so that it can be trusted as the reference for
 * the compiled code and for gradient checks.
 *
 * Its semantics are the compiled step's: leaves keep the values they had
 * when the step began; an ASSIGN's new value lands in its leaf only after
 * the whole graph has run (compiled code writes it earlier, but only once
 * every reader of the leaf is done).
 */
#include "compiler/codegen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void dims_of(const Shape *s, int64_t n, int64_t *d) {
  for (int i = 0; i < s->rank; i++) {
    d[i] = s->d[i].c;
    for (int k = 0; k < s->d[i].nsym; k++) d[i] *= n;
  }
}

/* The element of `in` (shape is) that numpy broadcasting pairs with the
 * element at multi-index idx of a tensor of rank `rank`. */
static int64_t bcast_index(const Shape *is, int64_t n, const int64_t *idx, int rank) {
  int64_t d[MAX_RANK], off = 0;
  dims_of(is, n, d);
  for (int j = 0; j < is->rank; j++) {
    int64_t i = idx[rank - is->rank + j];
    off = off * d[j] + (d[j] == 1 ? 0 : i);
  }
  return off;
}

static void unravel(int64_t lin, const int64_t *d, int rank, int64_t *idx) {
  for (int j = rank - 1; j >= 0; j--) {
    idx[j] = d[j] ? lin % d[j] : 0;
    lin = d[j] ? lin / d[j] : 0;
  }
}

static double *alloc_values(int64_t count) {
  double *v = calloc((size_t)(count > 0 ? count : 1), sizeof(double));
  NNC_ASSERT(v);
  return v;
}

/* One elementwise op on doubles: the interpreter's dispatch over ops. */
static double elem(IrOp op, double a, double b, double c) {
  switch (op) {
  case IR_NEG: return -a;
  case IR_RELU: return a < 0 ? 0 : a;
  case IR_SIGMOID: return 1 / (1 + exp(-a));
  case IR_TANH: return tanh(a);
  case IR_EXP: return exp(a);
  case IR_LOG: return log(a);
  case IR_SQRT: return sqrt(a);
  case IR_ABS: return fabs(a);
  case IR_SIGN: return a > 0 ? 1 : a < 0 ? -1 : 0;
  case IR_STEP: return a > 0 ? 1 : 0;
  case IR_STOP_GRAD: return a;
  case IR_ADD: return a + b;
  case IR_SUB: return a - b;
  case IR_MUL: return a * b;
  case IR_DIV: return a / b;
  case IR_POW: return pow(a, b);
  case IR_MAX2: return a > b ? a : b;
  case IR_MIN2: return a < b ? a : b;
  case IR_GT: return a > b ? 1 : 0;
  case IR_EQ: return a == b ? 1 : 0;
  case IR_SELECT: return a != 0 ? b : c;
  case IR_EXPAND: return a;
  case IR_ASSIGN: return b;
  case IR_INPUT: case IR_PARAM: case IR_STATE: case IR_RAND: case IR_CONST:
  case IR_SUM: case IR_MAXR: case IR_ARGMAX: case IR_RESHAPE: case IR_MATMUL:
  case IR_LOG_SOFTMAX: case IR_SOFTMAX: case IR_ONE_HOT: case IR_OP_COUNT:
  case IR_CONV2D: case IR_CONV2D_BWD_X: case IR_CONV2D_BWD_W: case IR_MAXPOOL2D: case IR_MAXPOOL2D_BWD:
  case IR_MAXPOOL2D_PICK: case IR_AVGPOOL2D: case IR_AVGPOOL2D_BWD: case IR_SLICE: case IR_SLICE_BWD:
    break;
  }
  nnc_die(__FILE__, __LINE__, "interp: %s is not elementwise", ir_op_name(op));
}

static void run_elem(const IrNode *x, double *values[], int64_t n) {
  int64_t d[MAX_RANK], idx[MAX_RANK], count = cg_numel(&x->shape, n);
  dims_of(&x->shape, n, d);
  double *out = values[x->id] = alloc_values(count);
  for (int64_t i = 0; i < count; i++) {
    unravel(i, d, x->shape.rank, idx);
    double v[3] = {0, 0, 0};
    for (int s = 0; s < 3 && x->src[s]; s++) {
      if (x->op == IR_ASSIGN && s == 0) continue;
      const IrNode *in = x->src[s];
      v[s] = values[in->id][bcast_index(&in->shape, n, idx, x->shape.rank)];
    }
    out[i] = elem(x->op, v[0], v[1], v[2]);
  }
}

static void run_reduce(const IrNode *r, double *values[], int64_t n) {
  const IrNode *x = r->src[0];
  int64_t xd[MAX_RANK], od[MAX_RANK], idx[MAX_RANK];
  dims_of(&x->shape, n, xd);
  dims_of(&r->shape, n, od);
  int64_t count = cg_numel(&r->shape, n), xcount = cg_numel(&x->shape, n);
  double *out = values[r->id] = alloc_values(count);
  for (int64_t o = 0; o < count; o++) out[o] = r->op == IR_MAXR ? -INFINITY : 0;
  for (int64_t i = 0; i < xcount; i++) {
    unravel(i, xd, x->shape.rank, idx);
    int64_t o = 0;
    int oj = 0;
    for (int j = 0; j < x->shape.rank; j++) {
      bool reduced = (r->axes >> j) & 1u;
      if (reduced && !r->keepdim) continue;
      o = o * od[oj] + (reduced ? 0 : idx[j]);
      oj++;
    }
    double v = values[x->id][i];
    if (r->op == IR_MAXR) out[o] = v > out[o] ? v : out[o];
    else out[o] += v;
  }
}

static void run_matmul(const IrNode *y, double *values[], int64_t n) {
  const IrNode *a = y->src[0], *b = y->src[1];
  int64_t ad[2], bd[2];
  dims_of(&a->shape, n, ad);
  dims_of(&b->shape, n, bd);
  int64_t M = y->trans_a ? ad[1] : ad[0], K = y->trans_a ? ad[0] : ad[1];
  int64_t N = y->trans_b ? bd[0] : bd[1];
  double *A = values[a->id], *B = values[b->id];
  double *C = values[y->id] = alloc_values(M * N);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++)
        s += (y->trans_a ? A[k * ad[1] + i] : A[i * ad[1] + k]) *
             (y->trans_b ? B[j * bd[1] + k] : B[k * bd[1] + j]);
      C[i * N + j] = s;
    }
}

static void run_row(const IrNode *y, double *values[], int64_t n) {
  const IrNode *x = y->src[0];
  double *X = values[x->id];
  double *Y = values[y->id] = alloc_values(cg_numel(&y->shape, n));
  if (y->op == IR_ONE_HOT) {
    int64_t rows = cg_numel(&x->shape, n);
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < y->n; j++) Y[r * y->n + j] = (double)j == X[r] ? 1 : 0;
    return;
  }
  int64_t d[MAX_RANK];
  dims_of(&x->shape, n, d);
  int64_t L = d[x->shape.rank - 1], rows = L ? cg_numel(&x->shape, n) / L : 0;
  for (int64_t r = 0; r < rows; r++) {
    const double *row = X + r * L;
    double m = -INFINITY;
    int64_t best = 0;
    for (int64_t j = 0; j < L; j++)
      if (row[j] > m) m = row[j], best = j;
    if (y->op == IR_ARGMAX) {
      Y[r] = (double)best;
      continue;
    }
    double s = 0;
    for (int64_t j = 0; j < L; j++) s += exp(row[j] - m);
    for (int64_t j = 0; j < L; j++)
      Y[r * L + j] = y->op == IR_SOFTMAX ? exp(row[j] - m) / s : row[j] - m - log(s);
  }
}

/* ---- convolution and pooling, straight from their definitions ---------- */

/* Calls f for every tap of a convolution: output (i, o, oy, ox) reads input
 * (i, c, iy, ix) through filter element (o, c - first channel of the group,
 * ky, kx); taps on the padding are skipped. The linear indices are passed. */
typedef void TapFn(double *out, const double *a, const double *b, int64_t xi, int64_t wi, int64_t yi);

static void conv_taps(const int64_t *g, int64_t count, TapFn *f, double *out, const double *a, const double *b) {
  int64_t C = g[RT_GEOM_C], H = g[RT_GEOM_H], W = g[RT_GEOM_W], O = g[RT_GEOM_O], OH = g[RT_GEOM_OH],
          OW = g[RT_GEOM_OW], KH = g[RT_GEOM_KH], KW = g[RT_GEOM_KW], G = g[RT_GEOM_GROUPS];
  int64_t cg = C / G, og = O / G;
  for (int64_t i = 0; i < count; i++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++)
          for (int64_t c = 0; c < cg; c++)
            for (int64_t ky = 0; ky < KH; ky++)
              for (int64_t kx = 0; kx < KW; kx++) {
                int64_t iy = oy * g[RT_GEOM_SH] - g[RT_GEOM_PH] + ky * g[RT_GEOM_DH];
                int64_t ix = ox * g[RT_GEOM_SW] - g[RT_GEOM_PW] + kx * g[RT_GEOM_DW];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                int64_t ch = (o / og) * cg + c;
                f(out, a, b, ((i * C + ch) * H + iy) * W + ix, ((o * cg + c) * KH + ky) * KW + kx,
                  ((i * O + o) * OH + oy) * OW + ox);
              }
}

static void tap_y(double *y, const double *x, const double *w, int64_t xi, int64_t wi, int64_t yi) { y[yi] += x[xi] * w[wi]; }
static void tap_dx(double *dx, const double *dy, const double *w, int64_t xi, int64_t wi, int64_t yi) { dx[xi] += dy[yi] * w[wi]; }
static void tap_dw(double *dw, const double *x, const double *dy, int64_t xi, int64_t wi, int64_t yi) { dw[wi] += x[xi] * dy[yi]; }

/* The window of a pooling's output pixel, clipped to the image; returns
 * PyTorch's divisor (padding included; adaptive windows: their size). */
static int64_t pool_window(const int64_t *g, int64_t oy, int64_t ox, int64_t r[4]) {
  int64_t H = g[RT_GEOM_H], W = g[RT_GEOM_W], OH = g[RT_GEOM_OH], OW = g[RT_GEOM_OW];
  if (g[RT_GEOM_METHOD] == RT_POOL_ADAPTIVE) {
    r[0] = (oy * H) / OH, r[1] = ((oy + 1) * H + OH - 1) / OH;
    r[2] = (ox * W) / OW, r[3] = ((ox + 1) * W + OW - 1) / OW;
    return (r[1] - r[0]) * (r[3] - r[2]);
  }
  int64_t y0 = oy * g[RT_GEOM_SH] - g[RT_GEOM_PH], x0 = ox * g[RT_GEOM_SW] - g[RT_GEOM_PW];
  int64_t y1 = y0 + g[RT_GEOM_KH], x1 = x0 + g[RT_GEOM_KW];
  int64_t div = ((y1 < H + g[RT_GEOM_PH] ? y1 : H + g[RT_GEOM_PH]) - y0) *
                ((x1 < W + g[RT_GEOM_PW] ? x1 : W + g[RT_GEOM_PW]) - x0);
  r[0] = y0 < 0 ? 0 : y0, r[1] = y1 > H ? H : y1, r[2] = x0 < 0 ? 0 : x0, r[3] = x1 > W ? W : x1;
  return div;
}

static void run_window(const IrNode *y, double *values[], int64_t n) {
  int64_t g[RT_GEOM_COUNT];
  int lead = ir_window_geom(y, g);
  const Shape *xs, *ys;
  ir_window_sides(y, &xs, &ys);
  int64_t count = 1, d[MAX_RANK];
  dims_of(xs, n, d);
  for (int i = 0; i < lead; i++) count *= d[i];
  const double *a = values[y->src[0]->id], *b = y->src[1] ? values[y->src[1]->id] : NULL;
  double *out = values[y->id] = alloc_values(cg_numel(&y->shape, n));
  if (ir_is_slice(y->op)) {
    int64_t len = g[RT_SLICE_LEN], m = g[RT_SLICE_OUT], inner = g[RT_SLICE_INNER];
    for (int64_t p = 0; p < count; p++)
      for (int64_t j = 0; j < m; j++)
        for (int64_t e = 0; e < inner; e++) {
          int64_t xi = (p * len + g[RT_SLICE_START] + j * g[RT_SLICE_STEP]) * inner + e, yi = (p * m + j) * inner + e;
          if (y->op == IR_SLICE) out[yi] = a[xi];
          else out[xi] = a[yi];
        }
    return;
  }
  TapFn *tap = y->op == IR_CONV2D ? tap_y : y->op == IR_CONV2D_BWD_X ? tap_dx : y->op == IR_CONV2D_BWD_W ? tap_dw : NULL;
  if (tap) {
    conv_taps(g, count, tap, out, a, b);
    return;
  }
  int64_t H = g[RT_GEOM_H], W = g[RT_GEOM_W], OH = g[RT_GEOM_OH], OW = g[RT_GEOM_OW];
  for (int64_t p = 0; p < count; p++)
    for (int64_t oy = 0; oy < OH; oy++)
      for (int64_t ox = 0; ox < OW; ox++) {
        int64_t r[4], div = pool_window(g, oy, ox, r), yi = (p * OH + oy) * OW + ox, best = -1;
        double s = 0, m = -INFINITY;
        for (int64_t iy = r[0]; iy < r[1]; iy++)
          for (int64_t ix = r[2]; ix < r[3]; ix++) {
            int64_t xi = (p * H + iy) * W + ix;
            if (y->op == IR_AVGPOOL2D) s += a[xi];
            else if (y->op == IR_AVGPOOL2D_BWD) out[xi] += a[yi] / (double)div;
            else if (best < 0 || a[xi] > m) m = a[xi], best = xi;
          }
        if (y->op == IR_AVGPOOL2D) out[yi] = div > 0 ? s / (double)div : 0;
        else if (y->op == IR_MAXPOOL2D) out[yi] = best >= 0 ? m : -INFINITY;
        else if (y->op == IR_MAXPOOL2D_BWD && best >= 0) out[best] += b[yi];
        else if (y->op == IR_MAXPOOL2D_PICK && best >= 0) out[yi] = b[best];
      }
}

void interp_run(const Graph *g, double *values[], int64_t n) {
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    switch (ir_op_kind(x->op)) {
    case OPK_LEAF:
      if (x->op == IR_CONST) {
        values[i] = alloc_values(1);
        values[i][0] = x->f;
      }
      NNC_ASSERT(values[i]);
      break;
    case OPK_ELEM:
    case OPK_ASSIGN: run_elem(x, values, n); break;
    case OPK_REDUCE: run_reduce(x, values, n); break;
    case OPK_MATMUL: run_matmul(x, values, n); break;
    case OPK_ROW: run_row(x, values, n); break;
    case OPK_CALL: run_window(x, values, n); break;
    case OPK_VIEW: {
      int64_t count = cg_numel(&x->shape, n);
      values[i] = alloc_values(count);
      memcpy(values[i], values[x->src[0]->id], sizeof(double) * (size_t)count);
      break;
    }
    }
  }
  /* the updates land once the step is over */
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    if (x->op != IR_ASSIGN) continue;
    const IrNode *dst = x->src[0];
    memcpy(values[dst->id], values[i], sizeof(double) * (size_t)cg_numel(&dst->shape, n));
  }
}
