/*
 * lower.c — from the checked spec to the graph IR.
 *
 * Lowering is the checker's own walk with a graph attached (Sema.lw): where
 * the checker computes a tensor's shape, it also builds the node computing
 * it (builtins.c and sema.c call the helpers here). So a spec's loops are
 * unrolled, its models are inlined, and every node keeps the spec location
 * it came from. This file holds what those calls share — leaves for data
 * fields and parameters, constants, means over symbolic sizes — and the end
 * of a step: autodiff of the loss and the optimizer's update, lowered into
 * the same graph, so that a training step is one graph and one function.
 */
#include "compiler/ir.h"

#include <math.h>
#include <string.h>

/* Something the compiler cannot lower yet: say so once, at its spec line.
 * In a quiet re-evaluation the loud one that follows says it. */
void lw_unsupported(Sema *s, Loc loc, const char *what) {
  if (s->quiet) {
    s->failed_quiet = 1;
    return;
  }
  if (!s->lw->failed) {
    sema_error(s, loc, "%s cannot be compiled for training yet", what);
    sema_hint(s, "nnc check accepts it; the compiler supports it in a later version");
  }
  s->lw->failed = true;
}

bool lw_sliceable(const Shape *sh, int axis) {
  for (int i = axis; i < sh->rank; i++)
    if (!dim_known(sh->d[i])) return false;
  return true;
}

IrNode *lw_of(Sema *s, const Value *v, Loc loc) {
  if (!s->lw) return NULL;
  if (v->kind == V_TENSOR) return v->ir;
  if (val_is_number(v)) return ir_const(s->lw->g, val_num(v), loc);
  return NULL;
}

/* The number of elements over `axes` of a shape, as a node (the batch size
 * n is a run-time input). */
IrNode *lw_count(Sema *s, const Shape *sh, unsigned axes, Loc loc) {
  int64_t c = 1;
  int nb = 0;
  for (int i = 0; i < sh->rank; i++) {
    if (!(axes & (1u << i))) continue;
    Dim d = sh->d[i];
    c *= d.c;
    nb += d.nsym;  /* only B is symbolic in a lowered graph */
  }
  IrNode *r = ir_const(s->lw->g, (double)c, loc);
  for (int i = 0; i < nb; i++) r = ir_binary(s->lw->g, IR_MUL, r, s->lw->batch_n, loc);
  return r;
}

IrNode *lw_mean(Sema *s, IrNode *x, unsigned axes, bool keepdim, Loc loc) {
  IrNode *sum = ir_reduce(s->lw->g, IR_SUM, x, axes, keepdim, loc);
  return ir_binary(s->lw->g, IR_DIV, sum, lw_count(s, &x->shape, axes, loc), loc);
}

static IrNode *leaf(Sema *s, IrOp op, const Shape *sh, const char *name, Loc loc, Vec *list) {
  IrNode *n = ir_leaf(s->lw->g, op, DT_FLOAT, sh, name, loc);
  n->slot = list->len;
  vec_push(s->arena, list, n);
  return n;
}

/* A layer's parameters: named later (lw_name_params), initialised like
 * PyTorch's defaults (uniform ±1/sqrt(fan_in) for weights and biases). */
IrNode *lw_param(Sema *s, const Shape *sh, int init, double bound, Loc loc) {
  IrNode *p = leaf(s, IR_PARAM, sh, NULL, loc, &s->lw->params);
  p->init = init;
  p->f = bound;
  return p;
}

IrNode *lw_state(Sema *s, const Shape *sh, int init, const char *name, Loc loc) {
  IrNode *p = leaf(s, IR_STATE, sh, name, loc, &s->lw->state);
  p->init = init;
  return p;
}

IrNode *lw_input(Sema *s, const Shape *sh, DType dt, const char *name, Loc loc) {
  IrNode *n = leaf(s, IR_INPUT, sh, name, loc, &s->lw->inputs);
  n->dtype = dt;
  return n;
}

IrNode *lw_rand(Sema *s, const Shape *sh, Loc loc) {
  return leaf(s, IR_RAND, sh, arena_printf(s->arena, "rand%d", s->lw->rands.len), loc, &s->lw->rands);
}

IrNode *lw_randn(Sema *s, const Shape *sh, Loc loc) {
  IrNode *r = leaf(s, IR_RAND, sh, arena_printf(s->arena, "randn%d", s->lw->rands.len), loc, &s->lw->rands);
  r->init = INIT_NORMAL;
  return r;
}

/* Gives the parameters of a model's layers their state_dict names:
 * "fc1.weight", "layers.0.bias", prefixed by `prefix` for sub-models. */
void lw_name_params(Sema *s, Layer *l, const char *prefix) {
  static const char *const pnames[4] = {"weight", "bias", "p2", "p3"};
  static const char *const snames[4] = {"running_mean", "running_var", "s2", "s3"};
  const char *base = l->path ? arena_printf(s->arena, "%s%s.", prefix, l->path) : prefix;
  if (l->kind == LK_MODEL && l->path) base = arena_printf(s->arena, "%s%s.", prefix, l->path);
  for (int i = 0; i < 4; i++) {
    if (l->pw[i] && !l->pw[i]->name) l->pw[i]->name = arena_printf(s->arena, "%s%s", base, pnames[i]);
    if (l->st[i] && !l->st[i]->name) l->st[i]->name = arena_printf(s->arena, "%s%s", base, snames[i]);
  }
  for (int i = 0; i < l->subs.len; i++) {
    Layer *sub = l->subs.items[i];
    lw_name_params(s, sub, l->kind == LK_MODEL ? (l->path ? base : prefix) : prefix);
  }
}

/* Every parameter of a model (or of what an optimizer updates). */
static void collect_params(Layer *l, Vec *out, Arena *a) {
  for (int i = 0; i < 4; i++)
    if (l->pw[i]) vec_push(a, out, l->pw[i]);
  for (int i = 0; i < l->subs.len; i++) collect_params(l->subs.items[i], out, a);
}

void lw_optimizer_params(Arena *a, const Value *optv, Vec *out) {
  const Optimizer *o = optv->opt;
  for (int i = 0; i < o->targets.len; i++) {
    Value *t = o->targets.items[i];
    if (t->kind == V_MODEL || t->kind == V_PARAMS) collect_params(t->layer, out, a);
    else if (t->kind == V_TENSOR && t->ir && t->ir->op == IR_PARAM) vec_push(a, out, t->ir);
  }
}

/* ---- the optimizer, lowered ---------------------------------------------- */

static double opt_num(const Optimizer *o, const char *key, double dflt) {
  for (int i = 0; i < o->nhyper; i++)
    if (!strcmp(o->hyper_names[i], key)) return o->hyper[i];
  return dflt;
}

/* One step of the optimizer for every parameter it updates: the gradients
 * of the loss (autodiff), gradient-norm clipping, weight decay, the update
 * rule, and ASSIGN nodes that write the new values. */
bool lw_finish_step(Sema *s, IrNode *loss, const Value *optv, Loc loc) {
  Lowering *lw = s->lw;
  Graph *g = lw->g;
  const Optimizer *o = optv->opt;
  const char *pre = lw->state_prefix ? lw->state_prefix : "";
  Vec params = {0};
  lw_optimizer_params(s->arena, optv, &params);
  if (params.len == 0) {
    sema_error(s, loc, "the optimizer has nothing to update");
    return false;
  }
  IrNode **grads = arena_alloc(s->arena, sizeof(IrNode *) * (size_t)params.len);
  ir_pool_before_relu(g);
  ad_grad(g, loss, (IrNode **)params.items, params.len, grads);
  for (int i = 0; i < params.len; i++) {
    IrNode *p = params.items[i];
    if (!grads[i]) grads[i] = ir_expand(g, ir_const(g, 0, loc), &p->shape, loc);
  }
  /* Pruning (after epoch { prune(model, amount) }): every weight matrix or
   * filter bank of the model gets a mask, state that starts as ones and
   * that the runtime's prune zeroes. A masked entry gets no gradient and
   * stays 0 after the update: PyTorch's weight_orig * weight_mask. */
  IrNode **mask = arena_alloc(s->arena, sizeof(IrNode *) * (size_t)params.len);
  memset(mask, 0, sizeof(IrNode *) * (size_t)params.len);
  for (int k = 0; k < lw->prune_layers.len; k++) {
    Vec ps = {0};
    collect_params(lw->prune_layers.items[k], &ps, s->arena);
    for (int j = 0; j < ps.len; j++) {
      IrNode *q = ps.items[j];
      if (q->shape.rank < 2) continue;   /* biases, BatchNorm's scale and shift */
      int i = 0;
      while (i < params.len && params.items[i] != q) i++;
      if (i == params.len) {
        sema_error(s, loc, "prune(...): the optimizer does not train %s, so its pruned weights would not be fine-tuned",
                   q->name ? q->name : "the pruned model");
        return false;
      }
      if (!mask[i]) {
        mask[i] = lw_state(s, &q->shape, INIT_ONES, arena_printf(s->arena, "%s_mask", q->name ? q->name : "param"),
                           *(Loc *)lw->prune_locs.items[k]);
        vec_push(s->arena, &lw->masks, mask[i]);
        vec_push(s->arena, &lw->masked, q);
        vec_push(s->arena, &lw->mask_amounts, lw->prune_amounts.items[k]);
      }
    }
  }
  /* clip_norm: scale every gradient by min(1, c / (‖g‖ + 1e-6)) */
  double clip = opt_num(o, "clip_norm", 0);
  if (clip > 0) {
    IrNode *sq = NULL;
    for (int i = 0; i < params.len; i++) {
      IrNode *gi = grads[i];
      unsigned all = (1u << gi->shape.rank) - 1;
      IrNode *t = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, gi, gi, loc), all, false, loc);
      sq = sq ? ir_binary(g, IR_ADD, sq, t, loc) : t;
    }
    IrNode *norm = ir_unary(g, IR_SQRT, sq, loc);
    IrNode *scale = ir_binary(g, IR_MIN2, ir_const(g, 1, loc),
                              ir_binary(g, IR_DIV, ir_const(g, clip, loc),
                                        ir_binary(g, IR_ADD, norm, ir_const(g, 1e-6, loc), loc), loc), loc);
    for (int i = 0; i < params.len; i++) grads[i] = ir_binary(g, IR_MUL, grads[i], scale, loc);
  }
  Shape scalar = {0};
  if (!lw->step_t) lw->step_t = lw_state(s, &scalar, INIT_ZEROS, arena_printf(s->arena, "%sstep", pre), loc);
  IrNode *t1 = ir_binary(g, IR_ADD, lw->step_t, ir_const(g, 1, loc), loc);
  IrNode *lr = lw->lr ? lw->lr : ir_const(g, o->lr, loc);
  double wd = opt_num(o, "weight_decay", 0);
  bool adamw = !strcmp(o->kind, "AdamW");
  bool adam = strcmp(o->kind, "SGD") && strcmp(o->kind, "RMSprop");
  double b1 = opt_num(o, "beta1", 0.9), b2 = opt_num(o, "beta2", 0.999), eps = opt_num(o, "eps", 1e-8);
  /* Adam's step lr m̂ / (√v̂ + ε), with the bias-corrected m̂ = m / c1 and
   * v̂ = v / c2, is computed as the Adam paper writes it: a m / (√v + ε̂)
   * with a = lr √c2 / c1 and ε̂ = ε √c2. The two are equal in exact
   * arithmetic. a and ε̂ are scalars, computed once a step, so each element
   * takes one square root and one division instead of three divisions and
   * a root: the divider is what bounds the update of a large weight. */
  IrNode *adam_a = NULL, *adam_eps = NULL;
  if (adam) {
    IrNode *c1 = ir_binary(g, IR_SUB, ir_const(g, 1, loc), ir_binary(g, IR_POW, ir_const(g, b1, loc), t1, loc), loc);
    IrNode *c2 = ir_binary(g, IR_SUB, ir_const(g, 1, loc), ir_binary(g, IR_POW, ir_const(g, b2, loc), t1, loc), loc);
    IrNode *root_c2 = ir_unary(g, IR_SQRT, c2, loc);
    adam_a = ir_binary(g, IR_DIV, ir_binary(g, IR_MUL, lr, root_c2, loc), c1, loc);
    adam_eps = ir_binary(g, IR_MUL, ir_const(g, eps, loc), root_c2, loc);
  }
  for (int i = 0; i < params.len; i++) {
    IrNode *p = params.items[i], *gi = grads[i];
    const char *pn = p->name ? p->name : "param";
    if (mask[i]) gi = ir_binary(g, IR_MUL, gi, mask[i], loc);
    if (wd > 0 && !adamw) gi = ir_binary(g, IR_ADD, gi, ir_binary(g, IR_MUL, ir_const(g, wd, loc), p, loc), loc);
    IrNode *step;   /* what the update subtracts from p */
    if (!strcmp(o->kind, "SGD")) {
      double mom = opt_num(o, "momentum", 0);
      IrNode *delta = gi;
      if (mom > 0) {
        /* PyTorch's form: v = μ v + g;  step v (or g + μ v with Nesterov) */
        IrNode *v = lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.momentum", pre, pn), loc);
        IrNode *nv = ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, ir_const(g, mom, loc), v, loc), gi, loc);
        ir_assign(g, v, nv, loc);
        delta = opt_num(o, "nesterov", 0) ? ir_binary(g, IR_ADD, gi, ir_binary(g, IR_MUL, ir_const(g, mom, loc), nv, loc), loc) : nv;
      }
      step = ir_binary(g, IR_MUL, lr, delta, loc);
    } else if (!adam) {   /* RMSprop */
      double alpha = opt_num(o, "alpha", 0.99);
      IrNode *v = lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.square_avg", pre, pn), loc);
      IrNode *nv = ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, ir_const(g, alpha, loc), v, loc),
                             ir_binary(g, IR_MUL, ir_const(g, 1 - alpha, loc), ir_binary(g, IR_MUL, gi, gi, loc), loc), loc);
      ir_assign(g, v, nv, loc);
      IrNode *delta = ir_binary(g, IR_DIV, gi, ir_binary(g, IR_ADD, ir_unary(g, IR_SQRT, nv, loc), ir_const(g, eps, loc), loc), loc);
      step = ir_binary(g, IR_MUL, lr, delta, loc);
    } else {
      /* Adam / AdamW: the first and second moments, then a m / (√v + ε̂) */
      IrNode *m = lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.exp_avg", pre, pn), loc);
      IrNode *v = lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.exp_avg_sq", pre, pn), loc);
      IrNode *nm = ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, ir_const(g, b1, loc), m, loc),
                             ir_binary(g, IR_MUL, ir_const(g, 1 - b1, loc), gi, loc), loc);
      IrNode *nv = ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, ir_const(g, b2, loc), v, loc),
                             ir_binary(g, IR_MUL, ir_const(g, 1 - b2, loc), ir_binary(g, IR_MUL, gi, gi, loc), loc), loc);
      ir_assign(g, m, nm, loc);
      ir_assign(g, v, nv, loc);
      IrNode *den = ir_binary(g, IR_ADD, ir_unary(g, IR_SQRT, nv, loc), adam_eps, loc);
      step = ir_binary(g, IR_DIV, ir_binary(g, IR_MUL, adam_a, nm, loc), den, loc);
      /* AdamW's decay, lr wd p, is not scaled by the moments */
      if (adamw && wd > 0)
        step = ir_binary(g, IR_ADD, step, ir_binary(g, IR_MUL, ir_binary(g, IR_MUL, lr, ir_const(g, wd, loc), loc), p, loc), loc);
    }
    IrNode *np = ir_binary(g, IR_SUB, p, step, loc);
    if (mask[i]) np = ir_binary(g, IR_MUL, np, mask[i], loc);
    ir_assign(g, p, np, loc);
  }
  ir_assign(g, lw->step_t, t1, loc);
  return true;
}

/* The state lw_finish_step makes for optimizer `optv` (the same leaves, in
 * the same order), without the update: a step of several declares the
 * state of the steps before it, so that every step's program places the
 * state they share at the same offsets. */
void lw_declare_opt_state(Sema *s, const Value *optv, const char *prefix, Loc loc) {
  const Optimizer *o = optv->opt;
  Vec params = {0};
  lw_optimizer_params(s->arena, optv, &params);
  if (params.len == 0) return;
  Shape scalar = {0};
  lw_state(s, &scalar, INIT_ZEROS, arena_printf(s->arena, "%sstep", prefix), loc);
  for (int i = 0; i < params.len; i++) {
    IrNode *p = params.items[i];
    const char *pn = p->name ? p->name : "param";
    if (!strcmp(o->kind, "SGD")) {
      if (opt_num(o, "momentum", 0) > 0) lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.momentum", prefix, pn), loc);
    } else if (!strcmp(o->kind, "RMSprop")) {
      lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.square_avg", prefix, pn), loc);
    } else {
      lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.exp_avg", prefix, pn), loc);
      lw_state(s, &p->shape, INIT_ZEROS, arena_printf(s->arena, "%s%s.exp_avg_sq", prefix, pn), loc);
    }
  }
}
