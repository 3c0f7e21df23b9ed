/*
 * test_autodiff.c — every gradient rule of autodiff.c against central finite
 * differences, in double precision.
 *
 * Each case is a small spec (data from generate(...), so nothing touches the
 * file system) whose loss exercises one op. The spec is checked and lowered
 * (sema_check with lower_training, without the update), ad_grad() appends the
 * gradient of the loss with respect to every parameter, and interp_run()
 * evaluates the graph at a batch of n = 5 with fixed random leaf values. Each
 * parameter element is then moved by ±eps and the forward graph alone (the
 * nodes that existed before ad_grad) is run again:
 *
 *     fd = (loss(p + eps) - loss(p - eps)) / (2 eps),   eps = 1e-6
 *
 * and |ad - fd| <= 1e-5 · max(|ad|, |fd|, 1e-3) must hold for every element
 * (the floor keeps a gradient that is zero up to rounding from failing on
 * the rounding of the difference quotient, about 1e-10 here).
 *
 * Finite differences are only valid away from kinks (relu at 0, |x| at 0,
 * max at a tie, a comparison at equality). Before checking, every kinked node
 * of the forward graph that depends on a parameter is measured; if any input
 * is within 1e-3 of its kink, the leaves are drawn again from the next seed.
 *
 * Beyond the per-op cases: second-order gradients (a gradient penalty and
 * adversarial training, both with grad() inside the loss), a hand-derived
 * gradient, steps of the lowered update (one of SGD; four of Adam, Adam
 * with weight decay and AdamW against PyTorch's formula), every MATMUL
 * transpose pattern built directly with the ir.h builders, and a check that
 * the cases together cover every op that has a gradient rule.
 */
#include <math.h>
#include <stdint.h>

#include "compiler/codegen.h"
#include "nnc_test.h"

enum { BATCH = 5, MAX_SEEDS = 50 };
static const double EPS = 1e-6, TOL = 1e-5, FLOOR = 1e-3, KINK = 1e-3;
static const Loc L0;

/* ---- the spec template -------------------------------------------------- */

/* Every case shares the data: x [B, 3], t [B] (regression targets), p [B]
 * (probabilities for bce), y int[B] (class ids 0..3), im [B, 2, 6, 6]
 * (images). */
static const char DATA[] =
    "data d = generate(n: 8) {\n"
    "  x = randn([3])\n"
    "  t = randn([])\n"
    "  p = rand([])\n"
    "  y = randint([], 0, 4)\n"
    "  im = randn([2, 6, 6])\n"
    "}\n";

/* The default model: h = net(x) is [B, 4], all parameters in one Linear. */
static const char LINEAR_NET[] =
    "model Net {\n"
    "  fc = Linear(3, 4)\n"
    "  forward(x: [B, 3]) -> [B, 4] { return fc(x) }\n"
    "}\n";

/* A scalar regressor with a smooth nonlinearity (second derivatives exist). */
static const char TANH_NET[] =
    "model Net {\n"
    "  fc = Linear(3, 4)\n"
    "  out = Linear(4, 1)\n"
    "  forward(x: [B, 3]) -> [B] { return squeeze(out(tanh(fc(x))), 1) }\n"
    "}\n";

typedef struct {
  const char *name;   /* the test's name: what it shows */
  const char *model;  /* NULL: LINEAR_NET */
  const char *body;   /* lines of the train block after `net = Net()`; sets loss */
  const char *opt;    /* NULL: SGD(net, lr: 0.1) */
} GradCase;

static char *spec_of(const GradCase *gc) {
  char *s = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&s, &len);
  assert_non_null(f);
  fprintf(f, "%s%s", DATA, gc->model ? gc->model : LINEAR_NET);
  /* h = net(x), or net(im) for a model of images */
  bool images = gc->model && strstr(gc->model, "Conv2d");
  fprintf(f, "train {\n  data = d\n  epochs = 1\n  net = Net()\n  h = net(%s)\n%s\n  optimizer = %s\n}\n",
          images ? "im" : "x", gc->body, gc->opt ? gc->opt : "SGD(net, lr: 0.1)");
  fclose(f);
  return s;
}

/* ---- lowering and evaluating -------------------------------------------- */

typedef struct {
  Parsed *p;
  char *spec;
  Lowering *lw;
  Graph *g;
  int nfwd;          /* nodes of the forward graph (before ad_grad) */
  int nparams;
  IrNode **params;
  IrNode **grads;    /* ad_grad's nodes, one per parameter */
  double **leaf;     /* [node id]: a leaf's values; NULL for other nodes */
  int64_t n;
} Lowered;

/* fails the test: never returns */
static _Noreturn void fail_with_diag(Parsed *p, const char *spec, const char *what) {
  fflush(p->out);
  fail_msg("%s:\n%s\nspec:\n%s", what, p->text ? p->text : "", spec);
  abort();   /* fail_msg does not return; this tells the compiler */
}

/* Checks and lowers a spec's train block (with the optimizer's update if
 * `update`); without the update, appends ad_grad of the loss. */
static Lowered *lower_spec(char *spec, bool update) {
  Lowered *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->spec = spec;
  c->n = BATCH;
  c->p = t_parse(spec);
  if (!c->p->prog) fail_with_diag(c->p, spec, "the spec does not parse");
  SemaOptions o = {.check_files = 0, .lower_block = "", .lower_training = 1, .lower_update = update};
  Program *prog = sema_check(c->p->arena, &c->p->diag, c->p->prog, &o);
  if (!prog || c->p->diag.nerrors || !prog->lowered || prog->lowered->failed)
    fail_with_diag(c->p, spec, "the spec does not lower");
  c->lw = prog->lowered;
  c->g = c->lw->g;
  assert_non_null(c->lw->loss);
  c->nparams = c->lw->params.len;
  assert_true(c->nparams > 0);
  c->params = (IrNode **)c->lw->params.items;
  c->grads = calloc((size_t)c->nparams, sizeof *c->grads);
  assert_non_null(c->grads);
  if (update) {
    c->nfwd = c->lw->loss->id + 1;  /* the loss is the forward graph's last node */
  } else {
    c->nfwd = c->g->nodes.len;
    assert_true(ad_grad(c->g, c->lw->loss, c->params, c->nparams, c->grads));
    for (int k = 0; k < c->nparams; k++)
      if (!c->grads[k]) fail_msg("no gradient for %s\nspec:\n%s", c->params[k]->name, spec);
  }
  if (!ir_verify(c->g)) fail_msg("the graph does not verify\nspec:\n%s", spec);
  return c;
}

static void free_lowered(Lowered *c) {
  if (c->leaf)
    for (int i = 0; i < c->g->nodes.len; i++) free(c->leaf[i]);
  free(c->leaf);
  free(c->grads);
  t_free(c->p);
  free(c->spec);
  free(c);
}

static uint64_t rng;
static double urand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* Leaf values, drawn from `seed`: "n" the batch, "lr" 0.1, "index" 0..n-1,
 * other int inputs class ids 0..3, "p" probabilities, other inputs and the
 * parameters uniform in [-1.5, 1.5) and [-1, 1), state as it starts
 * (optimizer moments and the step counter 0, a running variance 1), noise
 * in [0, 1). */
static void fill_leaves(Lowered *c, uint64_t seed) {
  rng = 0x9E3779B97F4A7C15ull * (seed + 1);
  if (!c->leaf) {
    c->leaf = calloc((size_t)c->g->nodes.len, sizeof *c->leaf);
    assert_non_null(c->leaf);
  }
  for (int i = 0; i < c->g->nodes.len; i++) {
    IrNode *x = c->g->nodes.items[i];
    if (ir_op_kind(x->op) != OPK_LEAF || x->op == IR_CONST) continue;
    int64_t count = cg_numel(&x->shape, c->n);
    free(c->leaf[i]);
    c->leaf[i] = calloc((size_t)(count ? count : 1), sizeof(double));
    assert_non_null(c->leaf[i]);
    const char *nm = x->name ? x->name : "";
    for (int64_t e = 0; e < count; e++) {
      double v;
      if (x->op == IR_INPUT && !strcmp(nm, "n")) v = (double)c->n;
      else if (x->op == IR_INPUT && !strcmp(nm, "lr")) v = 0.1;
      else if (x->op == IR_INPUT && !strcmp(nm, "index")) v = (double)e;
      else if (x->op == IR_INPUT && x->dtype != DT_FLOAT) v = floor(4 * urand());
      else if (x->op == IR_INPUT && !strcmp(nm, "p")) v = 0.1 + 0.8 * urand();
      else if (x->op == IR_INPUT) v = 3 * urand() - 1.5;
      else if (x->op == IR_PARAM) v = 2 * urand() - 1;
      else if (x->op == IR_STATE) v = x->init == INIT_ZEROS ? 0 : x->init == INIT_ONES ? 1 : 0.5 + urand();
      else v = urand();
      c->leaf[i][e] = v;
    }
  }
}

/* Runs the first `len` nodes on copies of the leaves; every node's values
 * (free with free_values). */
static double **run(const Lowered *c, int len) {
  double **v = calloc((size_t)c->g->nodes.len, sizeof *v);
  assert_non_null(v);
  for (int i = 0; i < len; i++) {
    if (!c->leaf[i]) continue;
    IrNode *x = c->g->nodes.items[i];
    size_t bytes = sizeof(double) * (size_t)(cg_numel(&x->shape, c->n) ? cg_numel(&x->shape, c->n) : 1);
    v[i] = malloc(bytes);
    assert_non_null(v[i]);
    memcpy(v[i], c->leaf[i], bytes);
  }
  Graph view = *c->g;
  view.nodes.len = len;
  interp_run(&view, v, c->n);
  return v;
}

static void free_values(const Lowered *c, double **v) {
  for (int i = 0; i < c->g->nodes.len; i++) free(v[i]);
  free(v);
}

static double loss_at(const Lowered *c) {
  double **v = run(c, c->nfwd);
  double l = v[c->lw->loss->id][0];
  free_values(c, v);
  return l;
}

/* ---- kinks ---------------------------------------------------------------- */

static void dims_of(const Shape *s, int64_t n, int64_t *d) {
  for (int i = 0; i < s->rank; i++) {
    d[i] = s->d[i].c;
    for (int k = 0; k < s->d[i].nsym; k++) d[i] *= n;
  }
}

/* The element of `in` that broadcasting pairs with element `lin` of `out`. */
static int64_t bcast(const IrNode *in, const IrNode *out, int64_t lin, int64_t n) {
  int64_t od[MAX_RANK], id[MAX_RANK], idx[MAX_RANK] = {0}, off = 0;
  dims_of(&out->shape, n, od);
  dims_of(&in->shape, n, id);
  for (int j = out->shape.rank - 1; j >= 0; j--) idx[j] = lin % od[j], lin /= od[j];
  for (int j = 0; j < in->shape.rank; j++) off = off * id[j] + (id[j] == 1 ? 0 : idx[out->shape.rank - in->shape.rank + j]);
  return off;
}

/* The output element of reduction r that input element `lin` goes to. */
static int64_t reduced_index(const IrNode *r, int64_t lin, int64_t n) {
  const IrNode *x = r->src[0];
  int64_t xd[MAX_RANK], idx[MAX_RANK], o = 0;
  dims_of(&x->shape, n, xd);
  for (int j = x->shape.rank - 1; j >= 0; j--) idx[j] = lin % xd[j], lin /= xd[j];
  for (int j = 0; j < x->shape.rank; j++)
    if (!((r->axes >> j) & 1u)) o = o * xd[j] + idx[j];
  return o;
}

/* How far the forward graph is from a kink: the smallest distance of an
 * input of relu/abs/step/sign from 0, of max/min/> operands from each
 * other, and of a reduced maximum from its runner-up (0 on a tie). Only
 * nodes that depend on a parameter count: the others do not move. */
static double kink_margin(const Lowered *c, double **v) {
  bool *dep = calloc((size_t)c->nfwd, sizeof *dep);
  assert_non_null(dep);
  double m = INFINITY;
  for (int i = 0; i < c->nfwd; i++) {
    IrNode *x = c->g->nodes.items[i];
    dep[i] = x->op == IR_PARAM;
    for (int s = 0; s < 3 && x->src[s]; s++) dep[i] = dep[i] || dep[x->src[s]->id];
    if (!dep[i]) continue;
    int64_t count = cg_numel(&x->shape, c->n);
    const IrNode *a = x->src[0], *b = x->src[1];
    if (x->op == IR_RELU || x->op == IR_ABS || x->op == IR_STEP || x->op == IR_SIGN) {
      for (int64_t e = 0; e < count; e++) m = fmin(m, fabs(v[a->id][e]));
    } else if (x->op == IR_MAX2 || x->op == IR_MIN2 || x->op == IR_GT) {
      for (int64_t e = 0; e < count; e++)
        m = fmin(m, fabs(v[a->id][bcast(a, x, e, c->n)] - v[b->id][bcast(b, x, e, c->n)]));
    } else if (x->op == IR_MAXR) {
      int64_t xc = cg_numel(&a->shape, c->n);
      int *ties = calloc((size_t)count, sizeof *ties);
      assert_non_null(ties);
      for (int64_t e = 0; e < xc; e++) {
        int64_t o = reduced_index(x, e, c->n);
        double gap = v[x->id][o] - v[a->id][e];
        if (gap == 0) ties[o]++;
        else m = fmin(m, gap);
      }
      for (int64_t o = 0; o < count; o++)
        if (ties[o] > 1) m = 0;
      free(ties);
    }
  }
  free(dep);
  return m;
}

/* Draws leaves from seed 1, 2, ... until the forward graph is at least
 * KINK from every kink; returns the seed. */
static uint64_t fill_away_from_kinks(Lowered *c) {
  for (uint64_t seed = 1; seed <= MAX_SEEDS; seed++) {
    fill_leaves(c, seed);
    double **v = run(c, c->nfwd);
    double m = kink_margin(c, v);
    double l = v[c->lw->loss->id][0];
    free_values(c, v);
    if (m >= KINK && isfinite(l)) return seed;
  }
  fail_msg("every seed puts the loss within %g of a kink\nspec:\n%s", KINK, c->spec);
  return 0;
}

/* ---- the check -------------------------------------------------------------- */

/* d loss / d (element e of parameter k), by central differences */
static double fd_grad(Lowered *c, int k, int64_t e) {
  double *w = c->leaf[c->params[k]->id];
  double old = w[e];
  w[e] = old + EPS;
  double up = loss_at(c);
  w[e] = old - EPS;
  double down = loss_at(c);
  w[e] = old;
  return (up - down) / (2 * EPS);
}

static bool close_enough(double ad, double fd, double *rel) {
  double err = fabs(ad - fd) / fmax(fmax(fabs(ad), fabs(fd)), FLOOR);
  if (rel) *rel = fmax(*rel, err);
  return err <= TOL;
}

/* Every parameter's gradient from ad_grad against finite differences. */
static void check_grads(Lowered *c) {
  uint64_t seed = fill_away_from_kinks(c);
  double **v = run(c, c->g->nodes.len);
  double worst = 0, largest = 0;
  for (int k = 0; k < c->nparams; k++) {
    IrNode *p = c->params[k], *gk = c->grads[k];
    assert_true(cg_numel(&gk->shape, c->n) == cg_numel(&p->shape, c->n));
    for (int64_t e = 0; e < cg_numel(&p->shape, c->n); e++) {
      double ad = v[gk->id][e], fd = fd_grad(c, k, e);
      largest = fmax(largest, fabs(ad));
      if (!close_enough(ad, fd, &worst))
        fail_msg("d loss / d %s[%lld]: autodiff %.12g, finite differences %.12g (seed %llu)\nspec:\n%s",
                 p->name ? p->name : "param", (long long)e, ad, fd, (unsigned long long)seed, c->spec);
    }
  }
  /* a gradient that is zero everywhere would pass without testing much */
  if (!(largest > 1e-6)) fail_msg("every gradient is zero\nspec:\n%s", c->spec);
  if (getenv("NNC_GRAD_VERBOSE")) print_message("  worst relative error %.2e (seed %llu)\n", worst, (unsigned long long)seed);
  free_values(c, v);
}

static void gradient_matches_finite_differences(void **state) {
  const GradCase *gc = *state;
  Lowered *c = lower_spec(spec_of(gc), false);
  check_grads(c);
  free_lowered(c);
}

/* ---- the cases: one or more per op with a gradient ------------------------- */

static const char MLP_NET[] =
    "model Net {\n"
    "  layers = seq {\n"
    "    Linear(3, 16), ReLU\n"
    "    Linear(16, 8), ReLU\n"
    "    Linear(8, 1)\n"
    "  }\n"
    "  forward(x: [B, 3]) -> [B] { return squeeze(layers(x), 1) }\n"
    "}\n";

/* Every convolution and pooling layer: [B, 2, 6, 6] -> conv -> strided
 * grouped conv [B, 4, 3, 3] -> depthwise -> pointwise [B, 3, 3, 3] ->
 * transposed conv [B, 2, 6, 6] -> max pool [B, 2, 3, 3] -> avg pool
 * [B, 2, 2, 2], plus adaptive pooling of the transposed conv's output,
 * with BatchNorm2d, tanh between (smooth: no kinks) and a Linear head. */
static const char CONV_NET[] =
    "model Net {\n"
    "  c1 = Conv2d(2, 4, 3, padding: 1)\n"
    "  bn = BatchNorm2d(4)\n"
    "  c2 = Conv2d(4, 4, 3, stride: 2, padding: 1, groups: 2)\n"
    "  dw = Conv2d(4, 4, 3, padding: 1, groups: 4, bias: false)\n"
    "  pw = Conv2d(4, 3, 1)\n"
    "  up = ConvTranspose2d(3, 2, 3, stride: 2, padding: 1, output_padding: 1)\n"
    "  mp = MaxPool2d(2)\n"
    "  ap = AvgPool2d(3, stride: 2, padding: 1)\n"
    "  ad = AdaptiveAvgPool2d(2)\n"
    "  fc = Linear(8, 4)\n"
    "  forward(x: [B, 2, 6, 6]) -> [B, 4] {\n"
    "    h = tanh(bn(c1(x)))\n"
    "    h = tanh(pw(tanh(dw(tanh(c2(h))))))\n"
    "    u = tanh(up(h))\n"
    "    return fc(flatten(ap(mp(u)) + ad(u)))\n"
    "  }\n"
    "}\n";

static const char BATCHNORM_NET[] =
    "model Net {\n"
    "  fc = Linear(3, 4)\n"
    "  bn = BatchNorm1d(4)\n"
    "  forward(x: [B, 3]) -> [B, 4] { return bn(fc(x)) }\n"
    "}\n";

static const char LAYERNORM_NET[] =
    "model Net {\n"
    "  fc = Linear(3, 4)\n"
    "  ln = LayerNorm(4)\n"
    "  forward(x: [B, 3]) -> [B, 4] { return ln(fc(x)) }\n"
    "}\n";

static const char DROPOUT_NET[] =
    "model Net {\n"
    "  fc = Linear(3, 4)\n"
    "  drop = Dropout(0.5)\n"
    "  forward(x: [B, 3]) -> [B, 4] { return drop(tanh(fc(x))) }\n"
    "}\n";

static const GradCase cases[] = {
    {"gradient_of_neg_matches_finite_differences", NULL, "  loss = mean(exp(-h))", NULL},
    {"gradient_of_relu_matches_finite_differences", NULL, "  loss = mean(square(relu(h) - 0.3))", NULL},
    {"gradient_of_sigmoid_matches_finite_differences", NULL, "  loss = mean(square(sigmoid(h) - 0.2))", NULL},
    {"gradient_of_tanh_matches_finite_differences", NULL, "  loss = mean(square(tanh(h) - 0.2))", NULL},
    {"gradient_of_exp_matches_finite_differences", NULL, "  loss = mean(exp(0.5 * h) * h)", NULL},
    {"gradient_of_log_of_a_positive_value_matches_finite_differences", NULL, "  loss = mean(log(1 + square(h)))", NULL},
    {"gradient_of_sqrt_matches_finite_differences", NULL, "  loss = mean(sqrt(1 + square(h)))", NULL},
    {"gradient_of_abs_matches_finite_differences", NULL, "  loss = mean(abs(h) * h)", NULL},
    {"gradient_of_add_sub_and_mul_matches_finite_differences", NULL, "  loss = mean((h - 0.5) * (h + 2) * h)", NULL},
    {"gradient_of_division_matches_finite_differences", NULL,
     "  loss = mean(h / (2 + sigmoid(h))) + mean(3 / (2 + square(h)))", NULL},
    {"gradient_of_division_by_a_broadcast_row_sum_matches_finite_differences", NULL,
     "  loss = mean(square(h / (1 + sum(square(h), dim: 1, keepdim: true))))", NULL},
    {"gradient_of_pow_with_a_constant_exponent_matches_finite_differences", NULL,
     "  loss = mean(pow(1 + square(h), 1.5)) + mean((1 + square(h)) ** 0.5)", NULL},
    {"gradient_of_pow_with_a_tensor_exponent_matches_finite_differences", NULL,
     "  loss = mean(pow(1 + sigmoid(h), h))", NULL},
    {"gradient_of_maximum_and_minimum_matches_finite_differences", NULL,
     "  loss = mean(square(maximum(h, 0.5 * h + 0.2)) + minimum(h, -0.3 * h))", NULL},
    {"gradient_of_clip_matches_finite_differences", NULL, "  loss = mean(square(clip(h, -0.5, 0.5)) + h)", NULL},
    {"gradient_of_where_flows_to_the_chosen_side", NULL, "  loss = mean(where(h > 0, square(h), 0.5 * h))", NULL},
    {"gradient_of_sum_over_each_axis_matches_finite_differences", NULL,
     "  loss = sum(square(sum(h, dim: 1))) / 10 + mean(square(sum(h, dim: 0))) + sum(h * h) / 20", NULL},
    {"gradient_of_mean_over_each_axis_matches_finite_differences", NULL,
     "  loss = mean(square(mean(h, dim: 0))) + mean(square(mean(h, dim: 1, keepdim: true) * h))", NULL},
    {"gradient_of_max_over_each_axis_goes_to_the_maximum", NULL,
     "  loss = mean(square(max(h, dim: 1))) + mean(max(h, dim: 0) * max(h, dim: 0)) + max(h) + mean(max(h, dim: 1, keepdim: true) * h)",
     NULL},
    {"gradient_of_min_over_an_axis_goes_to_the_minimum", NULL,
     "  loss = mean(square(min(h, dim: 1))) + mean(min(h, dim: 0))", NULL},
    {"gradient_of_reshape_flatten_squeeze_and_unsqueeze_matches_finite_differences", NULL,
     "  r = reshape(h, [B, 2, 2])\n"
     "  loss = mean(square(max(r, dim: 2))) + mean(square(flatten(unsqueeze(h, 2)) - 0.5))"
     " + mean(square(squeeze(sum(h, dim: 1, keepdim: true), 1)))",
     NULL},
    {"gradient_of_slicing_and_indexing_matches_finite_differences", NULL,
     "  r = reshape(h, [B, 2, 2])\n"
     "  loss = mean(square(h[:, 1:3] - 0.2)) + mean(h[:, 0] * h[:, -1]) + mean(square(h[:, 0:4:2]))"
     " + mean(tanh(r[:, 1, ::2]) * r[:, 0:1, 1:2])",
     NULL},
    {"gradient_of_concat_and_stack_matches_finite_differences", NULL,
     "  c = concat([h[:, 2:4], tanh(h), h[:, 0:1]], 1)\n"
     "  loss = mean(square(c - 0.3) * c) + mean(square(stack([h, sigmoid(h)], 1) - 0.1)) + mean(square(concat([h, 2 * h], 1)))",
     NULL},
    {"gradient_of_broadcasting_sums_back_to_the_input_shape", NULL,
     "  loss = mean(square(h - mean(h, dim: 0))) + mean(square(h * sum(h, dim: 1, keepdim: true)))"
     "",
     NULL},
    {"gradient_of_matmul_on_both_sides_matches_finite_differences", NULL,
     "  m = unsqueeze(mean(h, dim: 0), 1) @ unsqueeze(mean(x, dim: 0), 0)\n"
     "  loss = mean(square(tanh(h) @ m - 0.5))", NULL},
    {"gradient_of_softmax_matches_finite_differences", NULL, "  loss = mean(square(softmax(h, -1) - 0.1 * h))", NULL},
    {"gradient_of_log_softmax_matches_finite_differences", NULL, "  loss = mean(square(log_softmax(h, -1)))", NULL},
    {"gradient_of_cross_entropy_matches_finite_differences", NULL, "  loss = cross_entropy(h, y)", NULL},
    {"gradient_of_cross_entropy_with_label_smoothing_matches_finite_differences", NULL,
     "  loss = cross_entropy(h, y, label_smoothing: 0.1)", NULL},
    {"gradient_of_cross_entropy_with_ignore_index_matches_finite_differences", NULL,
     "  loss = cross_entropy(h, y, ignore_index: 2) + cross_entropy(h, y, label_smoothing: 0.2, ignore_index: 0)", NULL},
    {"gradient_of_cross_entropy_summed_matches_finite_differences", NULL,
     "  loss = cross_entropy(h, y, reduction: \"sum\") / 4", NULL},
    {"gradient_of_nll_matches_finite_differences", NULL, "  loss = nll(log_softmax(h, -1), y)", NULL},
    {"gradient_of_batchnorm1d_in_training_matches_finite_differences", BATCHNORM_NET,
     "  loss = mean(square(tanh(h) - 0.1)) + mean(h * h * h)", NULL},
    {"gradient_of_layernorm_matches_finite_differences", LAYERNORM_NET,
     "  loss = mean(square(sigmoid(h) - 0.3)) + mean(h * h * h)", NULL},
    {"gradient_through_dropout_uses_the_same_mask", DROPOUT_NET, "  loss = mean(square(h - 0.2))", NULL},
    {"gradient_of_gelu_matches_finite_differences", NULL, "  loss = mean(square(gelu(h) - 0.1))", NULL},
    {"gradient_of_leaky_relu_matches_finite_differences", NULL, "  loss = mean(square(leaky_relu(h, 0.1) - 0.2))", NULL},
    {"gradient_of_mse_matches_finite_differences", NULL,
     "  loss = mse(sum(h, dim: 1), t) + mse(h, 0.5 * h * h, reduction: \"sum\") / 10", NULL},
    {"gradient_of_l1_matches_finite_differences", NULL, "  loss = l1(sum(h, dim: 1), t)", NULL},
    {"gradient_of_bce_matches_finite_differences", NULL, "  loss = bce(sigmoid(sum(h, dim: 1)), p)", NULL},
    {"gradient_of_bce_with_logits_matches_finite_differences", NULL, "  loss = bce_with_logits(sum(h, dim: 1), p)", NULL},
    {"gradient_of_var_and_std_matches_finite_differences", NULL,
     "  loss = mean(var(h, dim: 1)) + mean(std(h, dim: 0)) + var(h) + mean(std(h, dim: 1, keepdim: true) * h)", NULL},
    {"gradient_of_an_mlp_with_relu_matches_finite_differences", MLP_NET, "  loss = mse(h, t)", NULL},
    /* second order: the loss contains a gradient that autodiff built */
    {"gradient_of_a_gradient_penalty_matches_finite_differences", TANH_NET,
     "  gp = sum(square(grad(sum(net(x)), x)))\n"
     "  loss = mse(h, t) + gp", NULL},
    {"gradient_of_adversarial_training_through_softmax_matches_finite_differences",
     "model Net {\n"
     "  fc = Linear(3, 5)\n"
     "  out = Linear(5, 4)\n"
     "  forward(x: [B, 3]) -> [B, 4] { return out(tanh(fc(x))) }\n"
     "}\n",
     "  x_adv = x + 0.5 * grad(cross_entropy(net(x), y), x)\n"
     "  loss = cross_entropy(net(x_adv), y)", NULL},
    {"gradient_of_a_penalty_on_the_input_gradient_of_softmax_matches_finite_differences", NULL,
     "  gp = sum(square(grad(sum(square(softmax(net(x), -1))), x)))\n"
     "  loss = mean(square(h)) + gp", NULL},
    {"gradient_of_kl_div_matches_finite_differences", NULL,
     "  loss = kl_div(log_softmax(h, -1), softmax(0.5 * h, -1), reduction: \"batchmean\") + kl_div(log_softmax(h, -1), softmax(h * h, -1))", NULL},
    {"gradient_of_kd_loss_matches_finite_differences", NULL,
     "  loss = kd_loss(h, 2.0 * one_hot(y, 4) + 0.5, y, T: 3.0, alpha: 0.7)", NULL},   /* a teacher that does not move with the parameters */
    /* images: every convolution and pooling layer, then a penalty on the
     * input gradient, whose gradient differentiates the adjoints again */
    {"gradient_of_a_cnn_with_every_convolution_and_pooling_matches_finite_differences", CONV_NET,
     "  loss = cross_entropy(h, y)", NULL},
    {"gradient_of_an_input_gradient_penalty_through_a_cnn_matches_finite_differences", CONV_NET,
     "  gp = sum(square(grad(sum(square(net(im))), im)))\n"
     "  loss = cross_entropy(h, y) + 0.01 * gp", NULL},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ---- every op with a gradient is covered ------------------------------------ */

/* The ops autodiff.c gives no gradient to (leaves, piecewise constants,
 * writes); every other op must appear in some case's forward graph. */
static bool has_gradient_rule(IrOp op) {
  switch (op) {
  case IR_INPUT: case IR_PARAM: case IR_STATE: case IR_RAND: case IR_CONST:
  case IR_SIGN: case IR_STEP: case IR_GT: case IR_EQ: case IR_ARGMAX: case IR_ONE_HOT: case IR_ASSIGN:
  case IR_STOP_GRAD: case IR_OP_COUNT:
    return false;
  case IR_NEG: case IR_RELU: case IR_SIGMOID: case IR_TANH: case IR_EXP: case IR_LOG: case IR_SQRT: case IR_ABS:
  case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV: case IR_POW: case IR_MAX2: case IR_MIN2: case IR_SELECT:
  case IR_SUM: case IR_MAXR: case IR_RESHAPE: case IR_EXPAND: case IR_MATMUL: case IR_LOG_SOFTMAX: case IR_SOFTMAX:
  case IR_CONV2D: case IR_CONV2D_BWD_X: case IR_MAXPOOL2D: case IR_MAXPOOL2D_BWD: case IR_AVGPOOL2D: case IR_AVGPOOL2D_BWD:
  case IR_SLICE: case IR_SLICE_BWD:
    return true;
  /* in a spec's forward graph only through third-order gradients: covered
   * by convolution_gradients_match_for_every_geometry and
   * pooling_gradients_match_for_every_kind */
  case IR_CONV2D_BWD_W: case IR_MAXPOOL2D_PICK:
    return false;
  }
  return true;
}

static void the_cases_differentiate_every_op_that_has_a_gradient(void **state) {
  (void)state;
  bool seen[IR_OP_COUNT] = {0};
  for (int i = 0; i < NCASES; i++) {
    Lowered *c = lower_spec(spec_of(&cases[i]), false);
    for (int j = 0; j < c->nfwd; j++) seen[((IrNode *)c->g->nodes.items[j])->op] = true;
    free_lowered(c);
  }
  char missing[512] = "";
  for (int op = 0; op < IR_OP_COUNT; op++)
    if (has_gradient_rule((IrOp)op) && !seen[op])
      snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", ir_op_name((IrOp)op));
  if (missing[0]) fail_msg("no case differentiates:%s", missing);
}

/* ---- every MATMUL transpose pattern, built directly ------------------------- */

static Shape S2(int64_t r, int64_t c) {
  Shape s = {.rank = 2};
  s.d[0] = dim_int(r);
  s.d[1] = dim_int(c);
  return s;
}

/* ad_grad of `loss` (a graph built with the ir.h builders) with respect to
 * `params`, checked by finite differences like a spec's. */
static void check_built(Graph *g, IrNode *loss, IrNode **params, int nparams, const char *what) {
  IrNode *grads[4] = {0};
  NNC_ASSERT(nparams <= 4);
  Lowering lw = {.g = g, .loss = loss};
  Lowered c = {.n = BATCH, .lw = &lw, .g = g, .nfwd = g->nodes.len, .nparams = nparams, .params = params,
               .grads = grads, .spec = (char *)what};
  ad_grad(g, loss, params, nparams, grads);
  for (int k = 0; k < nparams; k++) assert_non_null(grads[k]);
  assert_true(ir_verify(g));
  check_grads(&c);
  for (int i = 0; i < g->nodes.len; i++) free(c.leaf[i]);
  free(c.leaf);
}

/* loss = Σ tanh(op(a) @ op(b)) · w for each of the four (trans_a, trans_b);
 * then, second order, Σ (d loss / d a)² differentiated again: the gradient
 * graph holds the transposed products autodiff emits. */
static void matmul_gradients_match_for_every_transpose_pattern(void **state) {
  (void)state;
  for (int order = 1; order <= 2; order++)
    for (int pat = 0; pat < 4; pat++) {
      bool ta = pat & 1, tb = pat & 2;
      Arena *a = arena_new();
      Graph *g = ir_new(a);
      Shape sa = ta ? S2(4, 3) : S2(3, 4), sb = tb ? S2(2, 4) : S2(4, 2), sw = S2(3, 2);
      IrNode *A = ir_leaf(g, IR_PARAM, DT_FLOAT, &sa, "a", L0), *Bm = ir_leaf(g, IR_PARAM, DT_FLOAT, &sb, "b", L0);
      IrNode *W = ir_leaf(g, IR_INPUT, DT_FLOAT, &sw, "w", L0);
      IrNode *y = ir_unary(g, IR_TANH, ir_matmul(g, A, Bm, ta, tb, L0), L0);     /* [3, 2] */
      IrNode *loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, y, W, L0), 3u, false, L0);
      if (order == 2) {
        IrNode *ga = NULL;
        ad_grad(g, loss, &A, 1, &ga);
        assert_non_null(ga);
        loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, ga, ga, L0), 3u, false, L0);
      }
      char what[64];
      snprintf(what, sizeof what, "order %d, trans_a %d, trans_b %d", order, ta, tb);
      IrNode *params[2] = {A, Bm};
      check_built(g, loss, params, 2, what);
      arena_free(a);
    }
}

/* ---- convolutions and poolings, built directly ------------------------------ */

static Shape S4(int64_t a, int64_t b, int64_t c, int64_t d) {
  Shape s = {.rank = 4};
  s.d[0] = dim_int(a), s.d[1] = dim_int(b), s.d[2] = dim_int(c), s.d[3] = dim_int(d);
  return s;
}

/* The output size of a window along one axis (PyTorch's formula). */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

typedef struct {
  const char *what;
  int64_t c, h, w, o, k, s, p, d, groups;
} ConvGeom;

/* Strides, padding, dilation, groups, depthwise and pointwise, non-square
 * images: each as y = conv(x, w) with loss Σ tanh(y)·r, for x and w both
 * parameters; then (order 2) Σ (d loss / d x)² + Σ (d loss / d w)²,
 * whose gradient differentiates CONV2D_BWD_X and CONV2D_BWD_W. And the
 * same geometry as a transposed convolution (CONV2D_BWD_X forward). */
static void convolution_gradients_match_for_every_geometry(void **state) {
  (void)state;
  static const ConvGeom geoms[] = {
      {"3x3 pad 1", 2, 5, 5, 3, 3, 1, 1, 1, 1},
      {"3x3 stride 2 pad 1, 6x5 image", 2, 6, 5, 3, 3, 2, 1, 1, 1},
      {"3x3 dilation 2 pad 2", 2, 6, 6, 2, 3, 1, 2, 2, 1},
      {"2x2 stride 2, no padding", 3, 4, 4, 2, 2, 2, 0, 1, 1},
      {"groups 2", 4, 5, 5, 6, 3, 1, 1, 1, 2},
      {"depthwise, 2 filters per channel", 3, 5, 5, 6, 3, 1, 1, 1, 3},
      {"pointwise 1x1", 3, 4, 4, 5, 1, 1, 0, 1, 1},
  };
  for (size_t i = 0; i < sizeof geoms / sizeof geoms[0]; i++)
    for (int transposed = 0; transposed < 2; transposed++)
      for (int order = 1; order <= 2; order++) {
        const ConvGeom *q = &geoms[i];
        Arena *a = arena_new();
        Graph *g = ir_new(a);
        int64_t oh = out_size(q->h, q->k, q->s, q->p, q->d), ow = out_size(q->w, q->k, q->s, q->p, q->d);
        Shape xs = S4(2, q->c, q->h, q->w), ys = S4(2, q->o, oh, ow), ws = S4(q->o, q->c / q->groups, q->k, q->k);
        IrWindow win = {.kh = q->k, .kw = q->k, .sh = q->s, .sw = q->s, .ph = q->p, .pw = q->p, .dh = q->d, .dw = q->d,
                        .groups = q->groups};
        /* forward: x -> y; transposed: y-shaped input -> x-shaped output */
        IrNode *X = ir_leaf(g, IR_PARAM, DT_FLOAT, transposed ? &ys : &xs, "x", L0);
        IrNode *Wt = ir_leaf(g, IR_PARAM, DT_FLOAT, &ws, "w", L0);
        IrNode *R = ir_leaf(g, IR_INPUT, DT_FLOAT, transposed ? &xs : &ys, "r", L0);
        IrNode *y = ir_window(g, transposed ? IR_CONV2D_BWD_X : IR_CONV2D, X, Wt, transposed ? &xs : &ys, &win, L0);
        IrNode *loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, ir_unary(g, IR_TANH, y, L0), R, L0), 15u, false, L0);
        IrNode *params[2] = {X, Wt};
        if (order == 2) {
          IrNode *gr[2] = {NULL, NULL};
          ad_grad(g, loss, params, 2, gr);
          assert_true(gr[0] && gr[1]);
          loss = ir_binary(g, IR_ADD, ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, gr[0], gr[0], L0), 15u, false, L0),
                           ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, gr[1], gr[1], L0), 15u, false, L0), L0);
        }
        char what[128];
        snprintf(what, sizeof what, "%s%s, order %d", transposed ? "transposed " : "", q->what, order);
        check_built(g, loss, params, 2, what);
        arena_free(a);
      }
}

/* Max pooling (with padding and overlapping windows), average pooling
 * (padding counted, as PyTorch's default) and adaptive average pooling to
 * sizes that do not divide the image: loss Σ tanh(pool(x))·r, then the
 * second order through MAXPOOL2D_BWD (MAXPOOL2D_PICK) and AVGPOOL2D_BWD. */
static void pooling_gradients_match_for_every_kind(void **state) {
  (void)state;
  static const struct {
    const char *what;
    IrOp op;
    int64_t k, s, p;
    bool adaptive;
    int64_t out;
  } pools[] = {
      {"max 2x2", IR_MAXPOOL2D, 2, 2, 0, false, 0},
      {"max 3x3 stride 2 pad 1", IR_MAXPOOL2D, 3, 2, 1, false, 0},
      {"avg 2x2", IR_AVGPOOL2D, 2, 2, 0, false, 0},
      {"avg 3x3 stride 2 pad 1", IR_AVGPOOL2D, 3, 2, 1, false, 0},
      {"adaptive avg 5 -> 3", IR_AVGPOOL2D, 0, 0, 0, true, 3},
  };
  for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
    for (int order = 1; order <= 2; order++) {
      Arena *a = arena_new();
      Graph *g = ir_new(a);
      int64_t H = 5, out = pools[i].adaptive ? pools[i].out : out_size(H, pools[i].k, pools[i].s, pools[i].p, 1);
      Shape xs = S4(2, 3, H, H), ys = S4(2, 3, out, out);
      IrWindow win = {.kh = pools[i].k, .kw = pools[i].k, .sh = pools[i].s, .sw = pools[i].s, .ph = pools[i].p,
                      .pw = pools[i].p, .dh = 1, .dw = 1, .groups = 1, .adaptive = pools[i].adaptive};
      IrNode *X = ir_leaf(g, IR_PARAM, DT_FLOAT, &xs, "x", L0);
      IrNode *R = ir_leaf(g, IR_INPUT, DT_FLOAT, &ys, "r", L0);
      /* tanh before the pooling too, so that the second order has a curvature */
      IrNode *y = ir_window(g, pools[i].op, ir_unary(g, IR_TANH, X, L0), NULL, &ys, &win, L0);
      IrNode *loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, ir_unary(g, IR_TANH, y, L0), R, L0), 15u, false, L0);
      if (order == 2) {
        IrNode *gx = NULL;
        ad_grad(g, loss, &X, 1, &gx);
        assert_non_null(gx);
        loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, gx, gx, L0), 15u, false, L0);
      }
      char what[96];
      snprintf(what, sizeof what, "%s, order %d", pools[i].what, order);
      check_built(g, loss, &X, 1, what);
      arena_free(a);
    }
}

/* maxpool(relu(x + c)) -> relu(maxpool(x) + c) (ir_pool_before_relu):
 * which chains are rewritten, and that the rewritten graph computes the
 * same loss and the same gradients as the graph as written, and gradients
 * that match finite differences. x is tanh of a [2, 3, 6, 6] parameter. */
enum { CHAIN_BIAS, CHAIN_BIAS_LEFT, CHAIN_NO_ADD, CHAIN_WIDE_WINDOW, CHAIN_PLANE_ADD, CHAIN_RELU_READ_TWICE };

/* Builds the chain; *X and *C are the parameters; returns the loss. */
static IrNode *pool_chain(Graph *g, int kind, IrNode **X, IrNode **C) {
  bool wide = kind == CHAIN_WIDE_WINDOW;
  int64_t out = wide ? out_size(6, 3, 2, 1, 1) : 3;
  Shape xs = S4(2, 3, 6, 6), ys = S4(2, 3, out, out), cs = {.rank = 3};
  cs.d[0] = dim_int(3), cs.d[1] = dim_int(kind == CHAIN_PLANE_ADD ? 6 : 1), cs.d[2] = cs.d[1];
  IrWindow win = {.kh = wide ? 3 : 2, .kw = wide ? 3 : 2, .sh = 2, .sw = 2, .ph = wide, .pw = wide, .dh = 1, .dw = 1,
                  .groups = 1};
  *X = ir_leaf(g, IR_PARAM, DT_FLOAT, &xs, "x", L0);
  *C = ir_leaf(g, IR_PARAM, DT_FLOAT, &cs, "c", L0);
  IrNode *R = ir_leaf(g, IR_INPUT, DT_FLOAT, &ys, "r", L0);
  IrNode *h = ir_unary(g, IR_TANH, *X, L0);
  if (kind == CHAIN_BIAS_LEFT) h = ir_binary(g, IR_ADD, *C, h, L0);
  else if (kind != CHAIN_NO_ADD) h = ir_binary(g, IR_ADD, h, *C, L0);
  IrNode *relu = ir_unary(g, IR_RELU, h, L0);
  IrNode *y = ir_window(g, IR_MAXPOOL2D, relu, NULL, &ys, &win, L0);
  IrNode *loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, ir_unary(g, IR_TANH, y, L0), R, L0), 15u, false, L0);
  if (kind == CHAIN_RELU_READ_TWICE) loss = ir_binary(g, IR_ADD, loss, ir_reduce(g, IR_SUM, relu, 15u, false, L0), L0);
  return loss;
}

/* The ops of the graph, in order, one letter each: p pooling, a add,
 * r relu, other ops '.'; leaves left out. */
static void op_letters(const Graph *g, char *buf, size_t len) {
  size_t k = 0;
  for (int i = 0; i < g->nodes.len && k + 1 < len; i++) {
    const IrNode *x = g->nodes.items[i];
    if (ir_op_kind(x->op) == OPK_LEAF) continue;
    buf[k++] = x->op == IR_MAXPOOL2D ? 'p' : x->op == IR_ADD ? 'a' : x->op == IR_RELU ? 'r' : '.';
  }
  buf[k] = 0;
}

static void pooling_goes_before_relu_with_the_same_gradients(void **state) {
  (void)state;
  static const struct {
    int kind;
    const char *what, *written, *rewritten;
  } chains[] = {
      {CHAIN_BIAS, "relu(x + c), c [3, 1, 1]", ".arp...", ".par..."},
      {CHAIN_BIAS_LEFT, "relu(c + x)", ".arp...", ".par..."},
      {CHAIN_NO_ADD, "relu(x)", ".rp...", ".pr..."},
      {CHAIN_WIDE_WINDOW, "3x3 windows, stride 2, padding 1", ".arp...", ".par..."},
      {CHAIN_PLANE_ADD, "c [3, 6, 6] differs over the plane: only the ReLU moves", ".arp...", ".apr..."},
      {CHAIN_RELU_READ_TWICE, "the ReLU's output read twice: left alone", ".arp....a", ".arp....a"},
  };
  for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
    Arena *a = arena_new();
    Graph *g[2];
    IrNode *X[2], *C[2], *loss[2], *grads[2][2] = {{0}};
    for (int v = 0; v < 2; v++) {
      g[v] = ir_new(a);
      loss[v] = pool_chain(g[v], chains[i].kind, &X[v], &C[v]);
    }
    char ops[32];
    op_letters(g[1], ops, sizeof ops);
    if (strcmp(ops, chains[i].written)) fail_msg("%s: built %s, expected %s", chains[i].what, ops, chains[i].written);
    ir_pool_before_relu(g[1]);
    assert_true(ir_verify(g[1]));
    op_letters(g[1], ops, sizeof ops);
    if (strcmp(ops, chains[i].rewritten))
      fail_msg("%s: rewritten to %s, expected %s", chains[i].what, ops, chains[i].rewritten);
    /* both graphs on the same leaves: the same loss and gradients */
    Lowering lw[2];
    Lowered c[2];
    double **v[2];
    int np = chains[i].kind == CHAIN_NO_ADD ? 1 : 2;   /* c is not used there */
    for (int k = 0; k < 2; k++) {
      IrNode *params[2] = {X[k], C[k]};
      assert_true(ad_grad(g[k], loss[k], params, np, grads[k]));
      lw[k] = (Lowering){.g = g[k], .loss = loss[k]};
      c[k] = (Lowered){.n = BATCH, .lw = &lw[k], .g = g[k], .nfwd = g[k]->nodes.len, .nparams = 2};
      fill_leaves(&c[k], 7);
      v[k] = run(&c[k], g[k]->nodes.len);
    }
    double l0 = v[0][loss[0]->id][0], l1 = v[1][loss[1]->id][0];
    if (l0 != l1) fail_msg("%s: loss %.17g as written, %.17g rewritten", chains[i].what, l0, l1);
    for (int p = 0; p < np; p++) {
      const IrNode *g0 = grads[0][p], *g1 = grads[1][p];
      for (int64_t e = 0; e < cg_numel(&g0->shape, BATCH); e++)
        if (fabs(v[0][g0->id][e] - v[1][g1->id][e]) > 1e-12)
          fail_msg("%s: gradient %d [%lld]: %.17g as written, %.17g rewritten", chains[i].what, p, (long long)e,
                   v[0][g0->id][e], v[1][g1->id][e]);
    }
    for (int k = 0; k < 2; k++) {
      free_values(&c[k], v[k]);
      for (int n = 0; n < g[k]->nodes.len; n++) free(c[k].leaf[n]);
      free(c[k].leaf);
    }
    arena_free(a);
    /* and the rewritten graph's gradients against finite differences */
    a = arena_new();
    Graph *h = ir_new(a);
    IrNode *hx, *hc, *hl = pool_chain(h, chains[i].kind, &hx, &hc);
    ir_pool_before_relu(h);
    IrNode *params[2] = {hx, hc};
    check_built(h, hl, params, np, chains[i].what);
    arena_free(a);
  }
}

/* EXPAND's gradient is the sum over the axes it broadcast: a [1, 4] and a
 * [4] parameter expanded to [3, 4]. */
static void expand_gradient_sums_over_the_broadcast_axes(void **state) {
  (void)state;
  Arena *a = arena_new();
  Graph *g = ir_new(a);
  Shape row = S2(1, 4), full = S2(3, 4), vec = {.rank = 1};
  vec.d[0] = dim_int(4);
  IrNode *P = ir_leaf(g, IR_PARAM, DT_FLOAT, &row, "p", L0), *Q = ir_leaf(g, IR_PARAM, DT_FLOAT, &vec, "q", L0);
  IrNode *X = ir_leaf(g, IR_INPUT, DT_FLOAT, &full, "x", L0);
  IrNode *e = ir_binary(g, IR_ADD, ir_expand(g, P, &full, L0),
                        ir_binary(g, IR_MUL, ir_expand(g, Q, &full, L0), X, L0), L0);   /* [3, 4] */
  IrNode *loss = ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, ir_unary(g, IR_TANH, e, L0), X, L0), 3u, false, L0);
  IrNode *params[2] = {P, Q};
  check_built(g, loss, params, 2, "expand [1, 4] and [4] to [3, 4]");
  arena_free(a);
}

/* ---- a gradient by hand ------------------------------------------------------ */

/* y = x w + b (Linear(3, 1)), L = mean((y - t)²):
 *   dL/dw_j = 2/n Σ_i (y_i - t_i) x_ij,   dL/db = 2/n Σ_i (y_i - t_i) */
static void gradient_of_linear_mse_equals_the_formula(void **state) {
  (void)state;
  GradCase gc = {"", "model Net {\n  fc = Linear(3, 1)\n  forward(x: [B, 3]) -> [B] { return squeeze(fc(x), 1) }\n}\n",
                 "  loss = mse(h, t)", NULL};
  Lowered *c = lower_spec(spec_of(&gc), false);
  fill_leaves(c, 7);
  const double *x = NULL, *t = NULL, *w = NULL, *b = NULL;
  int gw = -1, gb = -1;
  for (int i = 0; i < c->g->nodes.len; i++) {
    IrNode *nd = c->g->nodes.items[i];
    const char *nm = nd->name ? nd->name : "";
    if (nd->op == IR_INPUT && !strcmp(nm, "x")) x = c->leaf[i];
    if (nd->op == IR_INPUT && !strcmp(nm, "t")) t = c->leaf[i];
  }
  for (int k = 0; k < c->nparams; k++) {
    if (!strcmp(c->params[k]->name, "fc.weight")) w = c->leaf[c->params[k]->id], gw = c->grads[k]->id;
    if (!strcmp(c->params[k]->name, "fc.bias")) b = c->leaf[c->params[k]->id], gb = c->grads[k]->id;
  }
  assert_true(x && t && w && b && gw >= 0 && gb >= 0);
  double dw[3] = {0}, db = 0;
  for (int i = 0; i < BATCH; i++) {
    double r = x[3 * i] * w[0] + x[3 * i + 1] * w[1] + x[3 * i + 2] * w[2] + b[0] - t[i];
    for (int j = 0; j < 3; j++) dw[j] += 2.0 / BATCH * r * x[3 * i + j];
    db += 2.0 / BATCH * r;
  }
  double **v = run(c, c->g->nodes.len);
  for (int j = 0; j < 3; j++) assert_true(fabs(v[gw][j] - dw[j]) <= 1e-12 * fmax(1, fabs(dw[j])));
  assert_true(fabs(v[gb][0] - db) <= 1e-12 * fmax(1, fabs(db)));
  free_values(c, v);
  free_lowered(c);
}

/* kd_loss is alpha T² KL(softmax(t/T) || softmax(s/T)) (batchmean) plus
 * (1 - alpha) cross_entropy(s, y): the two sides, evaluated, agree. */
static void kd_loss_equals_its_definition(void **state) {
  (void)state;
  GradCase gc = {"", NULL,
                 "  t = stop_grad(2 * h)\n"
                 "  kd = kd_loss(h, t, y, T: 3.0, alpha: 0.7)\n"
                 "  byhand = 0.7 * 9.0 * kl_div(log_softmax(h / 3.0, -1), softmax(t / 3.0, -1), reduction: \"batchmean\") + 0.3 * cross_entropy(h, y)\n"
                 "  loss = kd - byhand + 0 * mean(h)", NULL};
  Lowered *c = lower_spec(spec_of(&gc), false);
  fill_leaves(c, 3);
  double **v = run(c, c->nfwd);
  double diff = v[c->lw->loss->id][0];
  free_values(c, v);
  free_lowered(c);
  if (!(fabs(diff) < 1e-12)) fail_msg("kd_loss - its definition = %g", diff);
}

/* ---- the optimizer's update ---------------------------------------------------- */

/* An update rule in float64: element `at` of the parameters (all of them,
 * in order) at step t = 1, 2, ..., from its value p and gradient g. */
typedef double Update(void *ctx, int t, int64_t at, double p, double g);

/* Lowers `gc` with its update and runs the whole step `steps` times. After
 * each, every parameter's new value is checked against update(p, fd), with
 * fd from finite differences of the forward graph at the values before the
 * step. The optimizer's state carries over from step to step, as the
 * reference's does. */
static void check_steps(const GradCase *gc, int steps, Update *update, void *ctx) {
  Lowered *c = lower_spec(spec_of(gc), true);
  assert_non_null(c->lw->lr);
  assert_string_equal(c->lw->lr->name, "lr");
  fill_away_from_kinks(c);
  int64_t total = 0;
  for (int k = 0; k < c->nparams; k++) total += cg_numel(&c->params[k]->shape, c->n);
  double *fd = calloc((size_t)total, sizeof *fd), *old = calloc((size_t)total, sizeof *old);
  double **v = calloc((size_t)c->g->nodes.len, sizeof *v);
  assert_true(fd && old && v);
  for (int t = 1; t <= steps; t++) {
    /* finite differences at the old values, before the step moves them */
    for (int k = 0, at = 0; k < c->nparams; k++)
      for (int64_t e = 0; e < cg_numel(&c->params[k]->shape, c->n); e++, at++) {
        fd[at] = fd_grad(c, k, e);
        old[at] = c->leaf[c->params[k]->id][e];
      }
    /* the step writes its ASSIGNs into the leaves it is given */
    for (int i = 0; i < c->g->nodes.len; i++) v[i] = c->leaf[i];
    interp_run(c->g, v, c->n);
    for (int k = 0, at = 0; k < c->nparams; k++) {
      IrNode *p = c->params[k];
      for (int64_t e = 0; e < cg_numel(&p->shape, c->n); e++, at++) {
        double want = update(ctx, t, at, old[at], fd[at]), got = c->leaf[p->id][e];
        if (!(fabs(got - want) <= TOL * fmax(fabs(want - old[at]), FLOOR * 0.1)))
          fail_msg("%s[%lld] after step %d: %.12g, expected %.12g (was %.12g, gradient %.12g)\nspec:\n%s", p->name,
                   (long long)e, t, got, want, old[at], fd[at], c->spec);
      }
    }
    for (int i = 0; i < c->g->nodes.len; i++)
      if (!c->leaf[i]) free(v[i]);
  }
  free(v);
  free(fd);
  free(old);
  free_lowered(c);
}

static double sgd(void *ctx, int t, int64_t at, double p, double g) {
  (void)ctx, (void)t, (void)at;
  return p - 0.1 * g;
}

/* Adam's first step: m̂ = g, v̂ = g², so p - lr g / (|g| + 1e-8) */
static double adam_first(void *ctx, int t, int64_t at, double p, double g) {
  (void)ctx, (void)t, (void)at;
  return p - 0.1 * g / (fabs(g) + 1e-8);
}

/* Adam as PyTorch's documentation writes it, with lr 0.1: the moments, their
 * bias correction, then lr m̂ / (√v̂ + ε). weight_decay adds wd p to the
 * gradient (Adam) or takes lr wd p off the parameter first (AdamW). */
typedef struct {
  double b1, b2, eps, wd;
  bool decoupled;
  double m[64], v[64];
} AdamRef;

static double adam_ref(void *ctx, int t, int64_t at, double p, double g) {
  AdamRef *o = ctx;
  const double lr = 0.1;
  assert_true(at < 64);
  if (o->decoupled) p -= lr * o->wd * p;
  else g += o->wd * p;
  o->m[at] = o->b1 * o->m[at] + (1 - o->b1) * g;
  o->v[at] = o->b2 * o->v[at] + (1 - o->b2) * g * g;
  double mhat = o->m[at] / (1 - pow(o->b1, t)), vhat = o->v[at] / (1 - pow(o->b2, t));
  return p - lr * mhat / (sqrt(vhat) + o->eps);
}

static void one_sgd_step_moves_each_parameter_by_lr_times_its_gradient(void **state) {
  (void)state;
  GradCase gc = {"", TANH_NET, "  loss = mse(h, t)", "SGD(net, lr: 0.1)"};
  check_steps(&gc, 1, sgd, NULL);
}

static void one_sgd_step_of_a_classifier_with_batchnorm(void **state) {
  (void)state;
  GradCase gc = {"", BATCHNORM_NET, "  loss = cross_entropy(h, y)", "SGD(net, lr: 0.1)"};
  check_steps(&gc, 1, sgd, NULL);
}

static void first_adam_step_moves_each_parameter_by_lr_times_the_gradient_sign(void **state) {
  (void)state;
  GradCase gc = {"", TANH_NET, "  loss = mse(h, t)", "Adam(net, lr: 0.1)"};
  check_steps(&gc, 1, adam_first, NULL);
}

/* The lowered update is the Adam paper's efficient form, a m / (√v + ε̂);
 * over several steps it must equal the textbook one, bias correction and ε
 * included (a large ε, so that a wrong ε̂ shows). */
static void adam_steps_equal_the_textbook_formula(void **state) {
  (void)state;
  struct {
    const char *opt;
    AdamRef ref;
  } opts[] = {
      {"Adam(net, lr: 0.1, betas: (0.8, 0.99), eps: 0.01)", {.b1 = 0.8, .b2 = 0.99, .eps = 0.01}},
      {"Adam(net, lr: 0.1, weight_decay: 0.05)", {.b1 = 0.9, .b2 = 0.999, .eps = 1e-8, .wd = 0.05}},
      {"AdamW(net, lr: 0.1, eps: 0.001, weight_decay: 0.05)",
       {.b1 = 0.9, .b2 = 0.999, .eps = 0.001, .wd = 0.05, .decoupled = true}},
  };
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    GradCase gc = {"", TANH_NET, "  loss = mse(h, t)", opts[i].opt};
    check_steps(&gc, 4, adam_ref, &opts[i].ref);
  }
}

/* ---- known bugs (reported; the tests fail until they are fixed) --------------- */
#if 1  /* stop_grad, grad_reverse: fixed; MAML: refused by the compiler (below) */

/* The gradient of `loss` of two specs over the same model, at the same
 * leaves: a against b scaled by `factor`. */
static void check_scaled_grads(const char *loss_a, const char *loss_b, double factor) {
  GradCase ga = {"", NULL, loss_a, NULL}, gb = {"", NULL, loss_b, NULL};
  Lowered *a = lower_spec(spec_of(&ga), false), *b = lower_spec(spec_of(&gb), false);
  assert_int_equal(a->nparams, b->nparams);
  fill_leaves(a, 3);
  fill_leaves(b, 3);
  double **va = run(a, a->g->nodes.len), **vb = run(b, b->g->nodes.len);
  for (int k = 0; k < a->nparams; k++)
    for (int64_t e = 0; e < cg_numel(&a->params[k]->shape, a->n); e++) {
      double ad = va[a->grads[k]->id][e], want = factor * vb[b->grads[k]->id][e];
      if (!close_enough(ad, want, NULL))
        fail_msg("d(%s)/d %s[%lld] = %.12g, expected %.12g", loss_a, a->params[k]->name, (long long)e, ad, want);
    }
  free_values(a, va);
  free_values(b, vb);
  free_lowered(a);
  free_lowered(b);
}

static void stop_grad_stops_the_gradient(void **state) {
  (void)state;
  /* d mean(c h)/dθ at c = h is half of d mean(h²)/dθ */
  check_scaled_grads("  loss = mean(stop_grad(h) * h)", "  loss = mean(square(h))", 0.5);
}

static void grad_reverse_negates_and_scales_the_gradient(void **state) {
  (void)state;
  check_scaled_grads("  loss = mean(square(grad_reverse(h, lambda: 0.5)))", "  loss = mean(square(h))", -0.5);
}

/* Fast weights (MAML) are values the compiler does not lower yet: it must
 * refuse them with a message, never train a different model silently. */
static void maml_fast_weights_are_refused_not_mistrained(void **state) {
  (void)state;
  GradCase gc = {"",
                 "model Net {\n  fc = Linear(3, 1, bias: false)\n"
                 "  forward(x: [B, 3]) -> [B] { return squeeze(fc(x), 1) }\n}\n",
                 "  fast = params(net)\n"
                 "  fast = fast - 0.5 * grad(mse(net[fast](x), t), fast)\n"
                 "  loss = mse(net[fast](x), t)",
                 NULL};
  char *spec = spec_of(&gc);
  Parsed *p = t_parse(spec);
  assert_non_null(p->prog);
  SemaOptions o = {.check_files = 0, .lower_block = "", .lower_training = 1};
  Program *prog = sema_check(p->arena, &p->diag, p->prog, &o);
  assert_true(!prog || !prog->lowered || prog->lowered->failed || p->diag.nerrors > 0);
  assert_diag(p, "params() as a value cannot be compiled for training yet");
  t_free(p);
  free(spec);
}
#endif

int main(void) {
  struct CMUnitTest tests[NCASES + 16];
  int nt = 0;
  for (int i = 0; i < NCASES; i++)
    tests[nt++] = (struct CMUnitTest){cases[i].name, gradient_matches_finite_differences, NULL, NULL, (void *)&cases[i]};
  const struct CMUnitTest more[] = {
      cmocka_unit_test(the_cases_differentiate_every_op_that_has_a_gradient),
      cmocka_unit_test(matmul_gradients_match_for_every_transpose_pattern),
      cmocka_unit_test(convolution_gradients_match_for_every_geometry),
      cmocka_unit_test(kd_loss_equals_its_definition),
      cmocka_unit_test(pooling_gradients_match_for_every_kind),
      cmocka_unit_test(pooling_goes_before_relu_with_the_same_gradients),
      cmocka_unit_test(expand_gradient_sums_over_the_broadcast_axes),
      cmocka_unit_test(gradient_of_linear_mse_equals_the_formula),
      cmocka_unit_test(one_sgd_step_moves_each_parameter_by_lr_times_its_gradient),
      cmocka_unit_test(one_sgd_step_of_a_classifier_with_batchnorm),
      cmocka_unit_test(first_adam_step_moves_each_parameter_by_lr_times_the_gradient_sign),
      cmocka_unit_test(adam_steps_equal_the_textbook_formula),
#if 1  /* stop_grad, grad_reverse: fixed; MAML: refused by the compiler (below) */
      cmocka_unit_test(stop_grad_stops_the_gradient),
      cmocka_unit_test(grad_reverse_negates_and_scales_the_gradient),
      cmocka_unit_test(maml_fast_weights_are_refused_not_mistrained),
#endif
  };
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) tests[nt++] = more[i];
  return _cmocka_run_group_tests("autodiff", tests, (size_t)nt, NULL, NULL);
}
