/*
 * autodiff.c — reverse-mode differentiation as a graph-to-graph pass.
 *
 * ad_grad() walks the nodes from the output back to the inputs and, for each
 * node, emits ordinary IR nodes that compute its inputs' adjoints from its
 * own: one case per op, below. Because gradients are ordinary nodes, they can
 * be used as values in a spec (saliency maps, FGSM) and differentiated again
 * (MAML, gradient penalties). Broadcasting's gradient, "sum back to the
 * input's shape", lives in one place: ir_sum_to().
 */
#include "compiler/ir.h"

#include <stdlib.h>

typedef struct {
  Graph *g;
  IrNode **adj;   /* adjoint of node i, or NULL (zero) */
} Ad;

/* adj[x] += d (summed down to x's shape) */
static void acc(Ad *ad, IrNode *x, IrNode *d, Loc loc) {
  if (!d) return;
  if (x->op == IR_CONST) return;
  d = ir_sum_to(ad->g, d, &x->shape, loc);
  if (d->shape.rank != x->shape.rank) d = ir_reshape(ad->g, d, &x->shape, loc);
  if (!d->grad_of) d->grad_of = x;
  IrNode *prev = ad->adj[x->id];
  if (prev) {
    d = ir_binary(ad->g, IR_ADD, prev, d, loc);
    d->grad_of = x;
  }
  ad->adj[x->id] = d;
}

static IrNode *C(Ad *ad, double f, Loc loc) { return ir_const(ad->g, f, loc); }
static IrNode *B(Ad *ad, IrOp op, IrNode *a, IrNode *b, Loc loc) { return ir_binary(ad->g, op, a, b, loc); }
static IrNode *U(Ad *ad, IrOp op, IrNode *a, Loc loc) { return ir_unary(ad->g, op, a, loc); }

/* A window op of the same geometry as n. */
static IrNode *W(Ad *ad, IrOp op, IrNode *a, IrNode *b, const Shape *out, const IrNode *n) {
  return ir_window(ad->g, op, a, b, out, &n->win, n->loc);
}

/* The adjoint of a reduction's output, broadcast back over the reduced axes. */
static IrNode *unreduce(Ad *ad, IrNode *g, IrNode *n, Loc loc) {
  IrNode *x = n->src[0];
  if (!n->keepdim) {
    Shape kept = {0};
    for (int i = 0; i < x->shape.rank; i++)
      kept.d[kept.rank++] = (n->axes & (1u << i)) ? dim_int(1) : x->shape.d[i];
    g = ir_reshape(ad->g, g, &kept, loc);
  }
  return ir_expand(ad->g, g, &x->shape, loc);
}

static void backward(Ad *ad, IrNode *n) {
  IrNode *g = ad->adj[n->id];
  if (!g) return;
  Loc loc = n->loc;
  IrNode *a = n->src[0], *b = n->src[1];
  switch (n->op) {
  case IR_INPUT: case IR_PARAM: case IR_STATE: case IR_RAND: case IR_CONST:
    return;  /* leaves keep their adjoint */
  case IR_SIGN: case IR_STEP: case IR_GT: case IR_EQ: case IR_ARGMAX: case IR_ONE_HOT: case IR_ASSIGN:
    return;  /* piecewise constant or not differentiable: no gradient flows */
  case IR_STOP_GRAD:
    return;  /* what it is for */
  case IR_NEG: acc(ad, a, U(ad, IR_NEG, g, loc), loc); return;
  case IR_RELU:
    /* step(relu(a)) = step(a): reading the output lets the forward pass
     * drop a (it is often stored only for this). Below max pooling, the
     * mask moves to the pooled side, 4× smaller for 2×2 windows: the
     * gradient reaches only each window's maximum m = relu(a) there, and
     * step(a) at m is step(maxpool(relu(a))) (simplify finds that node).
     * A training step's graph has the ReLU moved after the pooling before
     * autodiff (ir_pool_before_relu); this serves the graphs differentiated
     * as written (a spec's grad(...)). */
    if (g->op == IR_MAXPOOL2D_BWD && g->src[0] == n) {
      IrNode *pooled = W(ad, IR_MAXPOOL2D, n, NULL, &g->src[1]->shape, g);
      IrNode *gy = B(ad, IR_MUL, g->src[1], U(ad, IR_STEP, pooled, loc), loc);
      acc(ad, a, W(ad, IR_MAXPOOL2D_BWD, n, gy, &n->shape, g), loc);
      return;
    }
    acc(ad, a, B(ad, IR_MUL, g, U(ad, IR_STEP, n, loc), loc), loc);
    return;
  case IR_SIGMOID:  /* s (1 - s) */
    acc(ad, a, B(ad, IR_MUL, g, B(ad, IR_MUL, n, B(ad, IR_SUB, C(ad, 1, loc), n, loc), loc), loc), loc);
    return;
  case IR_TANH:  /* 1 - t² */
    acc(ad, a, B(ad, IR_MUL, g, B(ad, IR_SUB, C(ad, 1, loc), B(ad, IR_MUL, n, n, loc), loc), loc), loc);
    return;
  case IR_EXP: acc(ad, a, B(ad, IR_MUL, g, n, loc), loc); return;
  case IR_LOG: acc(ad, a, B(ad, IR_DIV, g, a, loc), loc); return;
  case IR_SQRT: acc(ad, a, B(ad, IR_DIV, B(ad, IR_MUL, g, C(ad, 0.5, loc), loc), n, loc), loc); return;
  case IR_ABS: acc(ad, a, B(ad, IR_MUL, g, U(ad, IR_SIGN, a, loc), loc), loc); return;
  case IR_ADD: acc(ad, a, g, loc); acc(ad, b, g, loc); return;
  case IR_SUB: acc(ad, a, g, loc); acc(ad, b, U(ad, IR_NEG, g, loc), loc); return;
  case IR_MUL: acc(ad, a, B(ad, IR_MUL, g, b, loc), loc); acc(ad, b, B(ad, IR_MUL, g, a, loc), loc); return;
  case IR_DIV:  /* d(a/b) = da/b - a db/b² */
    acc(ad, a, B(ad, IR_DIV, g, b, loc), loc);
    acc(ad, b, U(ad, IR_NEG, B(ad, IR_DIV, B(ad, IR_MUL, g, n, loc), b, loc), loc), loc);
    return;
  case IR_POW:  /* d(a^b) = b a^(b-1) da + a^b ln a db */
    acc(ad, a, B(ad, IR_MUL, g, B(ad, IR_MUL, b, B(ad, IR_POW, a, B(ad, IR_SUB, b, C(ad, 1, loc), loc), loc), loc), loc), loc);
    if (b->op != IR_CONST) acc(ad, b, B(ad, IR_MUL, g, B(ad, IR_MUL, n, U(ad, IR_LOG, a, loc), loc), loc), loc);
    return;
  case IR_MAX2:
  case IR_MIN2: {
    /* max(a, c·a) with 0 <= c < 1 (leaky ReLU): a > c·a exactly when the
     * output is above 0, so the gradient, g·(c + (1 - c)·step(out)), reads
     * the output alone and the forward pass need not keep a or c·a */
    const IrNode *c = b->op == IR_MUL ? (b->src[0] == a ? b->src[1] : b->src[1] == a ? b->src[0] : NULL) : NULL;
    if (n->op == IR_MAX2 && c && c->op == IR_CONST && c->f >= 0 && c->f < 1) {
      IrNode *slope = B(ad, IR_ADD, C(ad, c->f, loc), B(ad, IR_MUL, C(ad, 1 - c->f, loc), U(ad, IR_STEP, n, loc), loc), loc);
      acc(ad, a, B(ad, IR_MUL, g, slope, loc), loc);
      return;
    }
    /* the gradient goes to the chosen side (to b on a tie) */
    IrNode *pick_a = n->op == IR_MAX2 ? B(ad, IR_GT, a, b, loc) : B(ad, IR_GT, b, a, loc);
    acc(ad, a, B(ad, IR_MUL, g, pick_a, loc), loc);
    acc(ad, b, B(ad, IR_MUL, g, B(ad, IR_SUB, C(ad, 1, loc), pick_a, loc), loc), loc);
    return;
  }
  case IR_SELECT: {
    IrNode *zero = C(ad, 0, loc);
    acc(ad, b, ir_select(ad->g, a, g, zero, loc), loc);
    acc(ad, n->src[2], ir_select(ad->g, a, zero, g, loc), loc);
    return;
  }
  case IR_SUM: acc(ad, a, unreduce(ad, g, n, loc), loc); return;
  case IR_MAXR: {
    IrNode *spread = unreduce(ad, g, n, loc), *max = unreduce(ad, n, n, loc);
    acc(ad, a, B(ad, IR_MUL, spread, B(ad, IR_EQ, a, max, loc), loc), loc);
    return;
  }
  case IR_RESHAPE: acc(ad, a, ir_reshape(ad->g, g, &a->shape, loc), loc); return;
  case IR_EXPAND: acc(ad, a, g, loc); return;  /* acc sums it back down */
  case IR_MATMUL:
    /* out = op(a) @ op(b):  d op(a) = g @ op(b)ᵀ,  d op(b) = op(a)ᵀ @ g */
    if (!n->trans_a) acc(ad, a, ir_matmul(ad->g, g, b, false, !n->trans_b, loc), loc);
    else acc(ad, a, ir_matmul(ad->g, b, g, n->trans_b, true, loc), loc);
    if (!n->trans_b) acc(ad, b, ir_matmul(ad->g, a, g, !n->trans_a, false, loc), loc);
    else acc(ad, b, ir_matmul(ad->g, g, a, true, n->trans_a, loc), loc);
    return;
  case IR_LOG_SOFTMAX: {  /* g - softmax(x) · Σg */
    unsigned last = 1u << (a->shape.rank - 1);
    IrNode *sum = ir_expand(ad->g, ir_reduce(ad->g, IR_SUM, g, last, true, loc), &a->shape, loc);
    acc(ad, a, B(ad, IR_SUB, g, B(ad, IR_MUL, U(ad, IR_EXP, n, loc), sum, loc), loc), loc);
    return;
  }
  case IR_SOFTMAX: {  /* s · (g - Σ g s) */
    unsigned last = 1u << (a->shape.rank - 1);
    IrNode *dot = ir_expand(ad->g, ir_reduce(ad->g, IR_SUM, B(ad, IR_MUL, g, n, loc), last, true, loc), &a->shape, loc);
    acc(ad, a, B(ad, IR_MUL, n, B(ad, IR_SUB, g, dot, loc), loc), loc);
    return;
  }
  /* A convolution is bilinear in its two inputs, and its two adjoints are
   * convolutions of the same geometry with the roles swapped, so the three
   * ops differentiate into each other (to any order). */
  case IR_CONV2D:           /* y = conv(x a, w b) */
    acc(ad, a, W(ad, IR_CONV2D_BWD_X, g, b, &a->shape, n), loc);
    acc(ad, b, W(ad, IR_CONV2D_BWD_W, a, g, &b->shape, n), loc);
    return;
  case IR_CONV2D_BWD_X:     /* dx = conv_bwd_x(dy a, w b) */
    acc(ad, a, W(ad, IR_CONV2D, g, b, &a->shape, n), loc);
    acc(ad, b, W(ad, IR_CONV2D_BWD_W, g, a, &b->shape, n), loc);
    return;
  case IR_CONV2D_BWD_W:     /* dw = conv_bwd_w(x a, dy b) */
    acc(ad, a, W(ad, IR_CONV2D_BWD_X, b, g, &a->shape, n), loc);
    acc(ad, b, W(ad, IR_CONV2D, a, g, &b->shape, n), loc);
    return;
  /* Max pooling routes each gradient to its window's maximum; which element
   * that is does not change under small changes of x (no gradient in x). */
  case IR_MAXPOOL2D: acc(ad, a, W(ad, IR_MAXPOOL2D_BWD, a, g, &a->shape, n), loc); return;
  case IR_MAXPOOL2D_BWD: acc(ad, b, W(ad, IR_MAXPOOL2D_PICK, a, g, &b->shape, n), loc); return;
  case IR_MAXPOOL2D_PICK: acc(ad, b, W(ad, IR_MAXPOOL2D_BWD, a, g, &b->shape, n), loc); return;
  case IR_AVGPOOL2D: acc(ad, a, W(ad, IR_AVGPOOL2D_BWD, g, NULL, &a->shape, n), loc); return;
  case IR_AVGPOOL2D_BWD: acc(ad, a, W(ad, IR_AVGPOOL2D, g, NULL, &a->shape, n), loc); return;
  /* a slice copies; its adjoint puts back, and the two are each other's adjoints */
  case IR_SLICE: acc(ad, a, W(ad, IR_SLICE_BWD, g, NULL, &a->shape, n), loc); return;
  case IR_SLICE_BWD: acc(ad, a, W(ad, IR_SLICE, g, NULL, &a->shape, n), loc); return;
  case IR_OP_COUNT:
    break;
  }
  NNC_UNREACHABLE("no gradient rule");
}

bool ad_grad(Graph *g, IrNode *y, IrNode **wrt, int nwrt, IrNode **out) {
  /* Only the nodes up to y are visited, and acc() only ever writes the
   * adjoint of an input of a visited node, so n entries suffice even though
   * the graph grows while we walk it. */
  int n = y->id + 1;
  Ad ad = {.g = g};
  ad.adj = calloc((size_t)n, sizeof *ad.adj);
  if (!ad.adj) nnc_die(__FILE__, __LINE__, "out of memory");
  ad.adj[y->id] = ir_const(g, 1.0, y->loc);
  for (int i = n - 1; i >= 0; i--) backward(&ad, g->nodes.items[i]);
  for (int k = 0; k < nwrt; k++) out[k] = wrt[k]->id < n ? ad.adj[wrt[k]->id] : NULL;
  free(ad.adj);
  return true;
}
