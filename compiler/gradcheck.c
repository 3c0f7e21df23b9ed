/*
 * gradcheck.c — `nnc gradcheck`: are the compiled gradients right?
 *
 * The block's loss is lowered, autodiff builds the gradient of every
 * parameter, and the graph is compiled as usual (float32, fused, JIT).
 * The reference is independent of autodiff: central finite differences of
 * the loss, (L(w + h) - L(w - h)) / 2h, evaluated in float64 by the slow
 * reference evaluator (interp.c) on the same batch, the same parameters and
 * the same noise. Comparing the two checks autodiff, fusion, the memory plan
 * and code generation at once.
 *
 * Where the loss has a kink within ±h of a weight (a ReLU's or a max
 * pooling's input crossing over), the central difference is neither one-
 * sided derivative, and autodiff rightly returns one of them (or a value
 * between). So the reference is the interval between the two one-sided
 * differences: at a smooth point it is narrower than the tolerance and holds
 * the central difference; at a kink it holds every subgradient. Elements
 * whose one-sided differences disagree by more than 1% are counted as kinks.
 */
#include "compiler/codegen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The loss for the current leaf values, in float64. */
static double loss_at(const Graph *g, double **vals, const IrNode *loss, int64_t n) {
  double **v = calloc((size_t)g->nodes.len, sizeof *v);
  if (!v) nnc_die(__FILE__, __LINE__, "out of memory");
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    if (ir_op_kind(x->op) == OPK_LEAF && x->op != IR_CONST) v[i] = vals[i];
  }
  interp_run(g, v, n);
  double r = v[loss->id][0];
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    if (!(ir_op_kind(x->op) == OPK_LEAF && x->op != IR_CONST)) free(v[i]);
  }
  free(v);
  return r;
}

static int check_step(Arena *a, Diag *d, Program *p, const char *const *names, const float *const *inputs,
                      int ninputs, int64_t n, int per_tensor, GradReport *out, int max);

/* A block of several steps: each step's gradients of the parameters its
 * optimizer updates (what the step's stop_grad keeps out has no gradient
 * in the step, and finite differences would see it). */
int gradcheck_block(Arena *a, Diag *d, const Node *ast, const char *block, const SemaOptions *base,
                    const char *const *names,
                    const float *const *inputs, int ninputs, int64_t n, int per_tensor, GradReport *out, int max) {
  int total = 0, nsteps = 1;
  for (int k = 1; k <= nsteps && total < max; k++) {
    SemaOptions o = *base;
    o.check_files = 0;
    o.lower_block = block;
    o.lower_training = 1;
    o.lower_update = 0;
    o.lower_step = k;
    Program *p = sema_check(a, d, ast, &o);
    if (!p || d->nerrors || !p->lowered || p->lowered->failed || !p->lowered->loss) {
      if (!d->nerrors) diag_error(d, (Loc){0}, "the train block could not be compiled");
      return -1;
    }
    if (p->lowered->nsteps > 0) nsteps = p->lowered->nsteps;
    int r = check_step(a, d, p, names, inputs, ninputs, n, per_tensor, out + total, max - total);
    if (r < 0) return -1;
    total += r;
  }
  return total;
}

static int check_step(Arena *a, Diag *d, Program *p, const char *const *names, const float *const *inputs,
                      int ninputs, int64_t n, int per_tensor, GradReport *out, int max) {
  Lowering *lw = p->lowered;
  Graph *g = lw->g;
  Vec wrt = lw->params;
  if (lw->nsteps > 0 && lw->optimizer && lw->optimizer->kind == V_OPTIMIZER) {
    wrt = (Vec){0};
    lw_optimizer_params(a, lw->optimizer, &wrt);
  }
  IrNode **grads = arena_alloc(a, sizeof(IrNode *) * (size_t)(wrt.len + 1));
  ir_pool_before_relu(g);
  ad_grad(g, lw->loss, (IrNode **)wrt.items, wrt.len, grads);
  for (int i = 0; i < wrt.len; i++) {
    IrNode *pn = wrt.items[i];
    if (!grads[i]) grads[i] = ir_expand(g, ir_const(g, 0, pn->loc), &pn->shape, pn->loc);
    ir_output(g, grads[i], pn->name);
  }
  ir_simplify(g);
  IrNode *loss = g->outputs.items[0];   /* simplify may have replaced the node */
  Fusion *f = fuse_graph(a, g);
  MemPlan plan;
  plan_memory(g, f->materialized, f->runs_at, n, 0, &plan);
  char err[1024];
  CgApi cg;
  Jit *jit = NULL;
  StepFn fn = NULL;
  if (!cg_load(&cg, err, sizeof err) || !(jit = cg.jit_new(err, sizeof err)) ||
      !(fn = cg.jit_compile(jit, g, f, "grad_step", NULL, err, sizeof err))) {
    diag_error(d, (Loc){0}, "code generation failed: %s", err);
    if (jit) cg.jit_free(jit);
    return -1;
  }

  /* the same leaf values for both: parameters from a seeded generator
   * (PyTorch's initial ranges), inputs from the batch, fixed noise */
  RtRng rng;
  rt_rng_seed(&rng, 7);
  float *arena = calloc((size_t)plan.size + 16, sizeof(float));
  double **vals = calloc((size_t)g->nodes.len, sizeof *vals);
  if (!arena || !vals) nnc_die(__FILE__, __LINE__, "out of memory");
  int rc = 0;
  for (int i = 0; i < g->nodes.len && rc == 0; i++) {
    IrNode *x = g->nodes.items[i];
    if (ir_op_kind(x->op) != OPK_LEAF || x->op == IR_CONST) continue;
    int64_t e = ir_numel(x, n);
    vals[i] = calloc((size_t)(e ? e : 1), sizeof(double));
    float *dst = arena + x->offset;
    for (int64_t k = 0; k < e; k++) {
      float v = 0;
      if (x->op == IR_PARAM) v = x->init == INIT_ONES ? 1.0f : x->init == INIT_ZEROS ? 0.0f : (2 * rt_rng_uniform(&rng) - 1) * (float)x->f;
      else if (x->op == IR_STATE) v = x->init == INIT_ONES ? 1.0f : 0.0f;
      else if (x->op == IR_RAND) v = x->init == INIT_NORMAL ? rt_rng_normal(&rng) : rt_rng_uniform(&rng);
      else if (x->name && !strcmp(x->name, "n")) v = (float)n;
      else if (x->name && !strcmp(x->name, "index")) v = (float)k;
      else {
        int j = 0;
        while (j < ninputs && strcmp(names[j], x->name ? x->name : "")) j++;
        if (j == ninputs) {
          diag_error(d, (Loc){0}, "gradcheck: no data for the input '%s'", x->name ? x->name : "?");
          rc = -1;
          break;
        }
        v = inputs[j][k];
      }
      dst[k] = v;
      vals[i][k] = v;
    }
  }
  if (rc == 0) {
    fn(arena, n);
    int nrep = 0;
    for (int i = 0; i < wrt.len && nrep < max; i++) {
      IrNode *pn = wrt.items[i];
      IrNode *gn = NULL;
      for (int o2 = 0; o2 < g->outputs.len; o2++)
        if (!strcmp(g->output_names.items[o2], pn->name)) gn = g->outputs.items[o2];
      NNC_ASSERT(gn);
      GradReport *r = &out[nrep++];
      memset(r, 0, sizeof *r);
      r->name = pn->name;
      r->step = lw->nsteps > 0 ? lw->step_name : NULL;
      r->rank = pn->shape.rank;
      for (int k = 0; k < pn->shape.rank && k < 8; k++) r->shape[k] = pn->shape.d[k].c;
      int64_t e = ir_numel(pn, n);
      int64_t step = e <= per_tensor ? 1 : e / per_tensor;
      double at = loss_at(g, vals, loss, n);
      for (int64_t k = 0; k < e; k += step) {
        double w = vals[pn->id][k], h = 1e-4 * fmax(1.0, fabs(w));
        vals[pn->id][k] = w + h;
        double up = loss_at(g, vals, loss, n);
        vals[pn->id][k] = w - h;
        double down = loss_at(g, vals, loss, n);
        vals[pn->id][k] = w;
        double ref = (up - down) / (2 * h), got = arena[gn->offset + k];
        double right = (up - at) / h, left = (at - down) / h;
        double lo = fmin(fmin(left, right), ref), hi = fmax(fmax(left, right), ref);
        double scale = fmax(fmax(fabs(got), fabs(ref)), 1e-2);
        if (hi - lo > 1e-2 * scale) r->kinks++;
        double abs_err = got < lo ? lo - got : got > hi ? got - hi : 0, rel = abs_err / scale;
        if (rel > r->max_rel_err) r->max_rel_err = rel;
        if (abs_err > r->max_abs_err) r->max_abs_err = abs_err;
        r->checked++;
      }
    }
    rc = nrep;
  }
  for (int i = 0; i < g->nodes.len; i++) free(vals[i]);
  free(vals);
  free(arena);
  cg.jit_free(jit);
  return rc;
}
