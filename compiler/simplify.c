/*
 * simplify.c — the "opt" stage: constant folding, algebraic identities,
 * common subexpressions and dead code, on the graph IR.
 *
 * Autodiff and the optimizer emit straightforward nodes (x·1, a constant
 * per use, adjoints nobody reads such as the gradient of the input data);
 * this pass cleans them up so the fused kernels and the memory plan see only
 * what a step needs. It rebuilds the node list and renumbers it.
 *
 * Here too, one rewrite of the forward graph that runs before autodiff
 * (ir_pool_before_relu: max pooling before a bias and a ReLU), so that the
 * gradient is taken of the cheaper order.
 */
#include "compiler/ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_const(const IrNode *n, double v) { return n->op == IR_CONST && n->f == v; }

static bool same_shape(const IrNode *a, const IrNode *b) {
  if (a->shape.rank != b->shape.rank) return false;
  for (int i = 0; i < a->shape.rank; i++)
    if (!dim_eq(a->shape.d[i], b->shape.d[i])) return false;
  return true;
}

/* The value of an elementwise op on constants. */
static bool fold(IrOp op, double a, double b, double *out) {
  if (op == IR_NEG) *out = -a;
  else if (op == IR_EXP) *out = exp(a);
  else if (op == IR_LOG) *out = log(a);
  else if (op == IR_SQRT) *out = sqrt(a);
  else if (op == IR_ADD) *out = a + b;
  else if (op == IR_SUB) *out = a - b;
  else if (op == IR_MUL) *out = a * b;
  else if (op == IR_DIV) *out = a / b;
  else if (op == IR_POW) *out = pow(a, b);
  else return false;
  return true;
}

/* Two nodes compute the same value (same op, inputs and attributes). */
static bool same_node(const IrNode *a, const IrNode *b) {
  if (a->op != b->op || a->dtype != b->dtype || !same_shape(a, b)) return false;
  for (int i = 0; i < 3; i++)
    if (a->src[i] != b->src[i]) return false;
  const IrWindow *u = &a->win, *v = &b->win;
  bool same_win = u->kh == v->kh && u->kw == v->kw && u->sh == v->sh && u->sw == v->sw && u->ph == v->ph &&
                  u->pw == v->pw && u->dh == v->dh && u->dw == v->dw && u->groups == v->groups &&
                  u->adaptive == v->adaptive && u->axis == v->axis && u->start == v->start && u->stop == v->stop &&
                  u->step == v->step;
  return a->f == b->f && a->axes == b->axes && a->keepdim == b->keepdim && a->trans_a == b->trans_a &&
         a->trans_b == b->trans_b && a->n == b->n && same_win;
}

/* Replacement for n given its (already simplified) inputs, or n itself. */
static IrNode *identity(Graph *g, IrNode *n) {
  IrNode *a = n->src[0], *b = n->src[1];
  if (ir_op_kind(n->op) == OPK_ELEM && n->op != IR_EXPAND && n->op != IR_SELECT) {
    double v;
    if (a && a->op == IR_CONST && (!b || b->op == IR_CONST) && fold(n->op, a->f, b ? b->f : 0, &v)) {
      IrNode *c = ir_const(g, v, n->loc);
      g->nodes.len--;          /* built outside the list: placed by the caller */
      return c;
    }
  }
  if (n->op == IR_MUL) {
    if (is_const(b, 1) && same_shape(a, n)) return a;
    if (is_const(a, 1) && same_shape(b, n)) return b;
  } else if (n->op == IR_ADD) {
    if (is_const(b, 0) && same_shape(a, n)) return a;
    if (is_const(a, 0) && same_shape(b, n)) return b;
  } else if (n->op == IR_SUB || n->op == IR_DIV) {
    if (is_const(b, n->op == IR_SUB ? 0 : 1) && same_shape(a, n)) return a;
  } else if (n->op == IR_NEG) {
    if (a->op == IR_NEG) return a->src[0];
  } else if (n->op == IR_RESHAPE || n->op == IR_EXPAND) {
    if (same_shape(a, n)) return a;
    if (n->op == IR_RESHAPE && a->op == IR_RESHAPE) {
      n->src[0] = a->src[0];
      if (same_shape(n->src[0], n)) return n->src[0];
    }
  }
  return n;
}

void ir_simplify(Graph *g) {
  int n = g->nodes.len;
  IrNode **fwd = calloc((size_t)n, sizeof *fwd);
  bool *live = calloc((size_t)n, sizeof *live);
  if (!fwd || !live) nnc_die(__FILE__, __LINE__, "out of memory");
  Vec kept = {0};
  for (int i = 0; i < n; i++) {
    IrNode *node = g->nodes.items[i];
    for (int s = 0; s < 3; s++)
      if (node->src[s]) node->src[s] = fwd[node->src[s]->id];
    IrNode *r = identity(g, node);
    if (r == node && node->op != IR_ASSIGN && node->op != IR_RAND && (node->op == IR_CONST || ir_op_kind(node->op) != OPK_LEAF)) {
      /* common subexpressions: the same op on the same inputs */
      for (int k = kept.len - 1; k >= 0 && k >= kept.len - 4096; k--) {
        IrNode *o = kept.items[k];
        if (same_node(o, node)) {
          r = o;
          break;
        }
      }
    }
    /* an earlier node: one of the graph's, or a constant folded earlier in
     * this pass (placed where the node it replaced was) */
    if (r != node && r->id >= 0 && r->id < n && (g->nodes.items[r->id] == r || fwd[r->id] == r)) {
      fwd[i] = r;
      continue;
    }
    if (r != node) {       /* a new constant */
      r->id = i;
      fwd[i] = r;
      vec_push(g->arena, &kept, r);
      continue;
    }
    fwd[i] = node;
    vec_push(g->arena, &kept, node);
  }
  for (int i = 0; i < g->outputs.len; i++) g->outputs.items[i] = fwd[((IrNode *)g->outputs.items[i])->id];

  /* dead code: keep what an output or an ASSIGN needs, and every leaf that
   * is not a constant (the runtime fills inputs by slot) */
  for (int i = 0; i < g->outputs.len; i++) live[((IrNode *)g->outputs.items[i])->id] = true;
  for (int k = kept.len - 1; k >= 0; k--) {
    IrNode *node = kept.items[k];
    if (node->op == IR_ASSIGN || (ir_op_kind(node->op) == OPK_LEAF && node->op != IR_CONST)) live[node->id] = true;
    if (!live[node->id]) continue;
    for (int s = 0; s < 3; s++)
      if (node->src[s]) live[node->src[s]->id] = true;
  }
  g->nodes.len = 0;
  for (int k = 0; k < kept.len; k++) {
    IrNode *node = kept.items[k];
    if (!live[node->id]) continue;
    vec_push(g->arena, &g->nodes, node);
  }
  for (int i = 0; i < g->nodes.len; i++) ((IrNode *)g->nodes.items[i])->id = i;
  free(fwd);
  free(live);
}

/* Whether c, added to x, is the same over each image's plane: its sizes
 * along x's last two axes (H and W, as broadcasting lines them up) are 1,
 * or it has no such axes at all (a scalar). */
static bool plane_constant(const IrNode *c, const IrNode *x) {
  if (c->dtype != DT_FLOAT || c->shape.rank > x->shape.rank) return false;
  if (c->shape.rank == 0) return true;
  if (c->shape.rank < 2) return false;
  const Shape *s = &c->shape;
  return dim_eq(s->d[s->rank - 1], dim_int(1)) && dim_eq(s->d[s->rank - 2], dim_int(1));
}

/* maxpool(relu(x + c)) -> relu(maxpool(x) + c), with c the same over each
 * plane (a convolution's bias). Both are exact: rounding x + c and relu
 * never change which of two values is larger, so the maximum commutes with
 * them. So are their gradients: the gradient reaches a window's first
 * maximum if it is above 0 after the bias, in both orders. The add and
 * the ReLU then run on the pooled tensor (4 times smaller for 2×2
 * windows), the bias's gradient sums the pooled gradient, and the
 * unpooled ReLU output is never stored.
 *
 * The three nodes are rewritten in place, keeping the order of the graph:
 * the add becomes the pooling, the ReLU the add, the pooling the ReLU;
 * each keeps the spec location of the op it now is. Only a chain no other
 * node or output reads is rewritten, so a gradient already taken through
 * it (grad(...) in a spec) is left as it was. */
void ir_pool_before_relu(Graph *g) {
  int n = g->nodes.len;
  int *uses = calloc((size_t)n + 1, sizeof *uses);
  if (!uses) nnc_die(__FILE__, __LINE__, "out of memory");
  for (int i = 0; i < n; i++) {
    IrNode *node = g->nodes.items[i];
    for (int s = 0; s < 3; s++)
      if (node->src[s]) uses[node->src[s]->id]++;
  }
  for (int i = 0; i < g->outputs.len; i++) uses[((IrNode *)g->outputs.items[i])->id] += 2;
  for (int i = 0; i < n; i++) {
    IrNode *pool = g->nodes.items[i], *relu = pool->src[0];
    if (pool->op != IR_MAXPOOL2D || relu->op != IR_RELU || uses[relu->id] != 1) continue;
    IrNode *add = relu->src[0], *x = add, *c = NULL;
    if (add->op == IR_ADD && uses[add->id] == 1) {
      int k = plane_constant(add->src[1], add->src[0]) ? 1 : plane_constant(add->src[0], add->src[1]) ? 0 : -1;
      if (k >= 0 && same_shape(add->src[1 - k], add)) x = add->src[1 - k], c = add->src[k];
    }
    Loc pool_loc = pool->loc, relu_loc = relu->loc;
    IrWindow win = pool->win;
    IrNode *pooled = c ? add : relu;   /* the node that becomes maxpool(x) */
    if (c) {
      relu->op = IR_ADD;
      relu->src[0] = add->src[0] == c ? c : pooled;
      relu->src[1] = add->src[0] == c ? pooled : c;
      relu->loc = add->loc;
      relu->shape = pool->shape;
    }
    pooled->op = IR_MAXPOOL2D;
    pooled->src[0] = x, pooled->src[1] = pooled->src[2] = NULL;
    pooled->win = win;
    pooled->shape = pool->shape;
    pooled->loc = pool_loc;
    pool->op = IR_RELU;
    pool->src[0] = c ? relu : pooled;
    pool->win = (IrWindow){0};
    pool->loc = relu_loc;
  }
  free(uses);
}

void program_simplify(Program *p) {
  if (p && p->lowered) ir_simplify(p->lowered->g);
}
