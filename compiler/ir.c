/*
 * ir.c — building, printing and verifying the graph IR.
 *
 * Builders compute each node's shape from its inputs; a disagreement is a
 * bug in nnc (the checker reported the user's shape errors before lowering),
 * so it is an NNC_ASSERT, not a diagnostic. The printed form is the one
 * `nnc ir --stage=graph` shows:
 *
 *   %7 = matmul %1, %5ᵀ : [B, 16]              # hw1.nn:37:12
 */
#include "compiler/ir.h"

#include <string.h>

static const struct {
  const char *name;
  int arity;
  OpKindIR kind;
} op_info[IR_OP_COUNT] = {
#define OP(name, arity, kind, doc) [IR_##name] = {#name, arity, OPK_##kind},
#include "compiler/ops.def"
#undef OP
};

const char *ir_op_name(IrOp op) { return op < IR_OP_COUNT ? op_info[op].name : "?"; }
OpKindIR ir_op_kind(IrOp op) { return op_info[op].kind; }
int ir_op_arity(IrOp op) { return op_info[op].arity; }

Graph *ir_new(Arena *a) {
  Graph *g = arena_alloc(a, sizeof *g);
  g->arena = a;
  g->scratch = -1;
  return g;
}

static IrNode *node_new(Graph *g, IrOp op, DType dt, const Shape *sh, Loc loc) {
  IrNode *n = arena_alloc(g->arena, sizeof *n);
  n->op = op;
  n->dtype = dt;
  if (sh) n->shape = *sh;
  n->loc = loc;
  n->id = g->nodes.len;
  n->kernel = -1;
  n->offset = -1;
  vec_push(g->arena, &g->nodes, n);
  return n;
}

IrNode *ir_leaf(Graph *g, IrOp op, DType dt, const Shape *sh, const char *name, Loc loc) {
  NNC_ASSERT(op_info[op].kind == OPK_LEAF);
  IrNode *n = node_new(g, op, dt, sh, loc);
  n->name = name;
  return n;
}

IrNode *ir_const(Graph *g, double f, Loc loc) {
  Shape none = {0};
  IrNode *n = node_new(g, IR_CONST, DT_FLOAT, &none, loc);
  n->f = f;
  return n;
}

IrNode *ir_unary(Graph *g, IrOp op, IrNode *x, Loc loc) {
  NNC_ASSERT(op_info[op].kind == OPK_ELEM && op_info[op].arity == 1);
  IrNode *n = node_new(g, op, op == IR_STEP ? DT_FLOAT : x->dtype, &x->shape, loc);
  n->src[0] = x;
  return n;
}

IrNode *ir_binary(Graph *g, IrOp op, IrNode *a, IrNode *b, Loc loc) {
  NNC_ASSERT(op_info[op].kind == OPK_ELEM && op_info[op].arity == 2);
  Shape sh;
  bool ok = shape_broadcast(&a->shape, &b->shape, &sh);
  NNC_ASSERT(ok);
  DType dt = (op == IR_GT || op == IR_EQ) ? DT_FLOAT : (a->dtype == DT_FLOAT || b->dtype == DT_FLOAT) ? DT_FLOAT : a->dtype;
  IrNode *n = node_new(g, op, dt, &sh, loc);
  n->src[0] = a;
  n->src[1] = b;
  return n;
}

IrNode *ir_select(Graph *g, IrNode *c, IrNode *a, IrNode *b, Loc loc) {
  Shape s1, sh;
  bool ok = shape_broadcast(&a->shape, &b->shape, &s1) && shape_broadcast(&c->shape, &s1, &sh);
  NNC_ASSERT(ok);
  IrNode *n = node_new(g, IR_SELECT, a->dtype, &sh, loc);
  n->src[0] = c;
  n->src[1] = a;
  n->src[2] = b;
  return n;
}

IrNode *ir_reduce(Graph *g, IrOp op, IrNode *x, unsigned axes, bool keepdim, Loc loc) {
  Shape sh = {0};
  for (int i = 0; i < x->shape.rank; i++) {
    if (!(axes & (1u << i))) sh.d[sh.rank++] = x->shape.d[i];
    else if (keepdim) sh.d[sh.rank++] = dim_int(1);
  }
  IrNode *n = node_new(g, op, x->dtype, &sh, loc);
  n->src[0] = x;
  n->axes = axes;
  n->keepdim = keepdim;
  return n;
}

IrNode *ir_matmul(Graph *g, IrNode *a, IrNode *b, bool trans_a, bool trans_b, Loc loc) {
  NNC_ASSERT(a->shape.rank == 2 && b->shape.rank == 2);
  Dim m = trans_a ? a->shape.d[1] : a->shape.d[0], ka = trans_a ? a->shape.d[0] : a->shape.d[1];
  Dim kb = trans_b ? b->shape.d[1] : b->shape.d[0], nn = trans_b ? b->shape.d[0] : b->shape.d[1];
  NNC_ASSERT(dim_eq(ka, kb));
  Shape sh = {.rank = 2};
  sh.d[0] = m;
  sh.d[1] = nn;
  IrNode *n = node_new(g, IR_MATMUL, DT_FLOAT, &sh, loc);
  n->src[0] = a;
  n->src[1] = b;
  n->trans_a = trans_a;
  n->trans_b = trans_b;
  return n;
}

IrNode *ir_reshape(Graph *g, IrNode *x, const Shape *sh, Loc loc) {
  Dim a, b;
  NNC_ASSERT(shape_numel(&x->shape, 0, &a) && shape_numel(sh, 0, &b) && dim_eq(a, b));
  IrNode *n = node_new(g, IR_RESHAPE, x->dtype, sh, loc);
  n->src[0] = x;
  return n;
}

IrNode *ir_expand(Graph *g, IrNode *x, const Shape *sh, Loc loc) {
  Shape out;
  NNC_ASSERT(shape_broadcast(&x->shape, sh, &out) && out.rank == sh->rank);
  IrNode *n = node_new(g, IR_EXPAND, x->dtype, sh, loc);
  n->src[0] = x;
  return n;
}

IrNode *ir_row(Graph *g, IrOp op, IrNode *x, int64_t classes, Loc loc) {
  Shape sh = x->shape;
  DType dt = DT_FLOAT;
  if (op == IR_ARGMAX) {
    sh.rank--;
    dt = DT_INT;
  } else if (op == IR_ONE_HOT) {
    NNC_ASSERT(sh.rank < MAX_RANK);
    sh.d[sh.rank++] = dim_int(classes);
  }
  IrNode *n = node_new(g, op, dt, &sh, loc);
  n->src[0] = x;
  n->n = classes;
  return n;
}

IrNode *ir_assign(Graph *g, IrNode *dst, IrNode *src, Loc loc) {
  NNC_ASSERT(op_info[dst->op].kind == OPK_LEAF && dst->op != IR_CONST && dst->op != IR_INPUT);
  NNC_ASSERT(dst->shape.rank == src->shape.rank);
  IrNode *n = node_new(g, IR_ASSIGN, dst->dtype, &dst->shape, loc);
  n->src[0] = dst;
  n->src[1] = src;
  return n;
}

IrNode *ir_window(Graph *g, IrOp op, IrNode *a, IrNode *b, const Shape *out, const IrWindow *w, Loc loc) {
  NNC_ASSERT(op_info[op].kind == OPK_CALL && (op_info[op].arity == 2) == (b != NULL));
  if (ir_is_slice(op))
    NNC_ASSERT(w->axis >= 0 && w->axis < a->shape.rank && w->step > 0 && out->rank == a->shape.rank);
  else
    NNC_ASSERT(a->shape.rank >= 3 && out->rank >= 3 && w->groups >= 1);
  IrNode *n = node_new(g, op, ir_is_slice(op) ? a->dtype : DT_FLOAT, out, loc);   /* a slice of class ids stays ints */
  n->src[0] = a;
  n->src[1] = b;
  n->win = *w;
  const Shape *xs, *ys;
  ir_window_sides(n, &xs, &ys);
  NNC_ASSERT(xs->rank == ys->rank);
  return n;
}

void ir_window_sides(const IrNode *n, const Shape **x, const Shape **y) {
  IrOp op = n->op;
  if (op == IR_CONV2D || op == IR_MAXPOOL2D || op == IR_AVGPOOL2D || op == IR_MAXPOOL2D_PICK || op == IR_SLICE)
    *x = &n->src[0]->shape, *y = &n->shape;
  else if (op == IR_CONV2D_BWD_X || op == IR_AVGPOOL2D_BWD || op == IR_SLICE_BWD)
    *x = &n->shape, *y = &n->src[0]->shape;
  else if (op == IR_CONV2D_BWD_W || op == IR_MAXPOOL2D_BWD)
    *x = &n->src[0]->shape, *y = &n->src[1]->shape;
  else
    NNC_UNREACHABLE("not a window op");
}

/* The last three dims of a shape (channels, height, width), known ints. */
static void chw(const Shape *s, int64_t *c, int64_t *h, int64_t *w) {
  *c = s->d[s->rank - 3].c, *h = s->d[s->rank - 2].c, *w = s->d[s->rank - 1].c;
}

bool ir_is_conv(IrOp op) { return op == IR_CONV2D || op == IR_CONV2D_BWD_X || op == IR_CONV2D_BWD_W; }

bool ir_is_slice(IrOp op) { return op == IR_SLICE || op == IR_SLICE_BWD; }

IrNode *ir_slice(Graph *g, IrNode *x, int axis, int64_t start, int64_t stop, int64_t step, Loc loc) {
  Dim d = x->shape.d[axis];
  NNC_ASSERT(dim_known(d) && 0 <= start && start < stop && stop <= d.c && step > 0);
  if (start == 0 && stop == d.c && step == 1) return x;
  Shape o = x->shape;
  o.d[axis] = dim_int((stop - start + step - 1) / step);
  IrWindow w = {.axis = axis, .start = start, .stop = stop, .step = step};
  return ir_window(g, IR_SLICE, x, NULL, &o, &w, loc);
}

/* How a convolution runs (RT_CONV_*), given its geometry g. */
static int64_t conv_method(const IrNode *n, const int64_t *g) {
  if (g[RT_GEOM_GROUPS] > 1 && g[RT_GEOM_C] / g[RT_GEOM_GROUPS] == 1) return RT_CONV_DIRECT;   /* depthwise */
  if (g[RT_GEOM_KH] == 1 && g[RT_GEOM_KW] == 1 && g[RT_GEOM_SH] == 1 && g[RT_GEOM_SW] == 1 && g[RT_GEOM_PH] == 0 &&
      g[RT_GEOM_PW] == 0)
    return RT_CONV_GEMM;
  int dir = n->op == IR_CONV2D ? 0 : n->op == IR_CONV2D_BWD_X ? 1 : 2;
  /* cppcheck sees rt_avx512's stand-in for other compilers (always 0),
   * not GCC's CPU check */
  /* cppcheck-suppress knownConditionTrueFalse */
  if (rt_avx512() && rt_winograd_fits(g, dir)) return RT_CONV_WINOGRAD;
  /* cppcheck-suppress knownConditionTrueFalse */
  if (rt_avx512() && rt_direct_fits(g, dir)) return RT_CONV_VECTOR;
  /* cppcheck-suppress knownConditionTrueFalse */
  if (rt_avx512() && rt_rows_fits(g, dir)) return RT_CONV_ROWS;
  return RT_CONV_IM2COL;
}

const char *ir_conv_method(const IrNode *n) {
  int64_t g[RT_GEOM_COUNT];
  ir_window_geom(n, g);
  switch (g[RT_GEOM_METHOD]) {
  case RT_CONV_DIRECT: return "direct";   /* depthwise: a GEMM of one row per group */
  case RT_CONV_GEMM: return "sgemm";
  case RT_CONV_VECTOR: return "direct, 16 channels a vector";
  case RT_CONV_ROWS: return "direct, 16 pixels a vector";
  case RT_CONV_WINOGRAD: return "Winograd F(2x2, 3x3)";
  default: return "im2col + sgemm";
  }
}

int ir_window_geom(const IrNode *n, int64_t g[RT_GEOM_COUNT]) {
  const Shape *xs, *ys;
  ir_window_sides(n, &xs, &ys);
  const IrWindow *k = &n->win;
  if (ir_is_slice(n->op)) {
    /* [count, len, inner] -> [count, out, inner]: count runs over the dims
     * before the axis (the batch among them), inner over those after */
    memset(g, 0, sizeof(int64_t) * RT_GEOM_COUNT);
    g[RT_SLICE_LEN] = xs->d[k->axis].c, g[RT_SLICE_OUT] = ys->d[k->axis].c;
    g[RT_SLICE_START] = k->start, g[RT_SLICE_STEP] = k->step, g[RT_SLICE_INNER] = 1;
    for (int i = k->axis + 1; i < xs->rank; i++) g[RT_SLICE_INNER] *= xs->d[i].c;
    return k->axis;
  }
  bool conv = ir_is_conv(n->op);
  chw(xs, &g[RT_GEOM_C], &g[RT_GEOM_H], &g[RT_GEOM_W]);
  chw(ys, &g[RT_GEOM_O], &g[RT_GEOM_OH], &g[RT_GEOM_OW]);
  if (!conv) g[RT_GEOM_C] = g[RT_GEOM_O] = 1;
  g[RT_GEOM_KH] = k->kh, g[RT_GEOM_KW] = k->kw, g[RT_GEOM_SH] = k->sh, g[RT_GEOM_SW] = k->sw;
  g[RT_GEOM_PH] = k->ph, g[RT_GEOM_PW] = k->pw, g[RT_GEOM_DH] = k->dh, g[RT_GEOM_DW] = k->dw;
  g[RT_GEOM_GROUPS] = k->groups;
  g[RT_GEOM_CHUNK] = 1;
  g[RT_GEOM_METHOD] = !conv ? (k->adaptive ? RT_POOL_ADAPTIVE : RT_POOL_WINDOW) : conv_method(n, g);
  /* im2col's images per GEMM of one part: enough for about 512 output
   * pixels (the GEMM's columns), no more than fit in 256 Ki floats (1 MiB,
   * within a core's L2 with the filters). More images per GEMM made the
   * columns miss the cache: Fashion-MNIST's first convolution (28×28, 1 ->
   * 32) ran 2.7 times slower with 32 images than with 1 or 2, its second
   * (14×14, 32 -> 64) 12% slower with 15 than with 2 or 3. */
  int64_t per = conv ? rt_conv_per_image(g) : 0, chunk = 1;
  if (per > 0) {
    int64_t pixels = g[RT_GEOM_OH] * g[RT_GEOM_OW], cap = ((int64_t)1 << 18) / per;
    chunk = pixels > 0 ? (512 + pixels - 1) / pixels : 1;
    if (chunk > cap) chunk = cap;
  }
  g[RT_GEOM_CHUNK] = chunk < 1 ? 1 : chunk;
  return xs->rank - (conv ? 3 : 2);
}

int64_t ir_reduce_partial(const IrNode *r) {
  if (r->op != IR_SUM && r->op != IR_MAXR) return 0;
  const Shape *x = &r->src[0]->shape;
  int j = 0;
  while (j < x->rank && dim_eq(x->d[j], dim_int(1))) j++;
  if (j == x->rank || !((r->axes >> j) & 1u)) return 0;
  /* the batch, or rows enough for two halves worth a thread each */
  if (!x->d[j].nsym && x->d[j].c < 16) return 0;
  int64_t e = 1;
  for (int i = 0; i < r->shape.rank; i++) {
    if (r->shape.d[i].nsym) return 0;
    e *= r->shape.d[i].c;
  }
  return e <= IR_PARTIAL_MAX ? e : 0;
}

int64_t ir_scratch(const IrNode *n, int64_t n_max) {
  if (n->op == IR_SUM || n->op == IR_MAXR) return ir_reduce_partial(n);
  if (!ir_is_conv(n->op)) return 0;
  int64_t g[RT_GEOM_COUNT];
  ir_window_geom(n, g);
  return rt_conv_scratch(g, n->op == IR_CONV2D ? 0 : n->op == IR_CONV2D_BWD_X ? 1 : 2, n_max);
}

void ir_output(Graph *g, IrNode *n, const char *name) {
  vec_push(g->arena, &g->outputs, n);
  vec_push(g->arena, &g->output_names, (void *)name);
}

IrNode *ir_sum_to(Graph *g, IrNode *x, const Shape *shape, Loc loc) {
  /* numpy broadcasting aligns trailing dims: sum the extra leading dims
   * away, and keep (as 1) the dims the target has as 1 */
  int extra = x->shape.rank - shape->rank;
  NNC_ASSERT(extra >= 0);
  unsigned axes = 0;
  for (int i = 0; i < x->shape.rank; i++) {
    if (i < extra) axes |= 1u << i;
    else if (dim_eq(shape->d[i - extra], dim_int(1)) && !dim_eq(x->shape.d[i], dim_int(1))) axes |= 1u << i;
  }
  if (!axes) return x;
  IrNode *s = ir_reduce(g, IR_SUM, x, axes, false, loc);
  if (s->shape.rank != shape->rank) s = ir_reshape(g, s, shape, loc);
  return s;
}

/* ---- printing --------------------------------------------------------- */

void ir_lowercase(char *buf, size_t n, const char *s) {
  size_t i = 0;
  for (; i + 1 < n && s[i]; i++) buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
  if (n) buf[i] = 0;
}

static void lower_name(char *buf, size_t n, IrOp op) { ir_lowercase(buf, n, ir_op_name(op)); }

/* " k 3x3 s 1 p 1", with " d 2" and " g 32" when they are not 1. */
size_t ir_window_str(char *buf, size_t len, const IrWindow *w) {
  int k;
  if (w->step > 0) {   /* a slice: " axis 1 [2:5]", " axis 2 [0:8:2]" */
    k = w->step == 1 ? snprintf(buf, len, " axis %d [%lld:%lld]", w->axis, (long long)w->start, (long long)w->stop)
                     : snprintf(buf, len, " axis %d [%lld:%lld:%lld]", w->axis, (long long)w->start,
                                (long long)w->stop, (long long)w->step);
    return k < 0 ? 0 : (size_t)k < len ? (size_t)k : len ? len - 1 : 0;
  }
  if (w->adaptive) k = snprintf(buf, len, " adaptive");
  else if (w->kh == w->kw && w->sh == w->sw && w->ph == w->pw)
    k = snprintf(buf, len, " k %lldx%lld s %lld p %lld", (long long)w->kh, (long long)w->kw, (long long)w->sh, (long long)w->ph);
  else
    k = snprintf(buf, len, " k %lldx%lld s %lld,%lld p %lld,%lld", (long long)w->kh, (long long)w->kw, (long long)w->sh,
                 (long long)w->sw, (long long)w->ph, (long long)w->pw);
  if (k < 0 || (size_t)k >= len) return len ? len - 1 : 0;
  size_t n = (size_t)k;
  if (!w->adaptive && (w->dh != 1 || w->dw != 1)) n += (size_t)snprintf(buf + n, len - n, " d %lld", (long long)w->dh);
  if (n < len && w->groups != 1) n += (size_t)snprintf(buf + n, len - n, " g %lld", (long long)w->groups);
  return n < len ? n : len - 1;
}

void ir_print(FILE *out, const Graph *g) {
  Arena *a = arena_new();
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *n = g->nodes.items[i];
    char line[512], op[32];
    lower_name(op, sizeof op, n->op);
    size_t k = (size_t)snprintf(line, sizeof line, "%%%d = %s", n->id, op);
    if (n->op == IR_CONST) {
      k += (size_t)snprintf(line + k, sizeof line - k, " %g", n->f);
    } else if (ir_op_kind(n->op) == OPK_LEAF) {
      k += (size_t)snprintf(line + k, sizeof line - k, " \"%s\"", n->name ? n->name : "");
    } else {
      for (int s = 0; s < 3 && n->src[s]; s++) {
        k += (size_t)snprintf(line + k, sizeof line - k, "%s%%%d", s ? ", " : " ", n->src[s]->id);
        if (n->op == IR_MATMUL && ((s == 0 && n->trans_a) || (s == 1 && n->trans_b)))
          k += (size_t)snprintf(line + k, sizeof line - k, "ᵀ");
      }
    }
    if (n->op == IR_SUM || n->op == IR_MAXR) {
      k += (size_t)snprintf(line + k, sizeof line - k, " axes");
      for (int d = 0; d < 8; d++)
        if (n->axes & (1u << d)) k += (size_t)snprintf(line + k, sizeof line - k, " %d", d);
      if (n->keepdim) k += (size_t)snprintf(line + k, sizeof line - k, " keepdim");
    }
    if (n->op == IR_ONE_HOT) k += (size_t)snprintf(line + k, sizeof line - k, " n %lld", (long long)n->n);
    if (ir_op_kind(n->op) == OPK_CALL) k += ir_window_str(line + k, sizeof line - k, &n->win);
    snprintf(line + k, sizeof line - k, " : %s", ttype_str(a, n->dtype, &n->shape));
    fputs(line, out);
    /* comments: where it came from, and for adjoints, of what */
    int w = 0;
    for (const char *p = line; *p; p++)
      if (((unsigned char)*p & 0xC0) != 0x80) w++;
    for (; w < 52; w++) fputc(' ', out);
    fprintf(out, "  #");
    if (n->loc.src) fprintf(out, " %d:%d", n->loc.line, n->loc.col);
    if (n->grad_of) fprintf(out, " grad of %%%d", n->grad_of->id);
    for (int o = 0; o < g->outputs.len; o++)
      if (g->outputs.items[o] == n) fprintf(out, " -> %s", (const char *)g->output_names.items[o]);
    fputc('\n', out);
  }
  arena_free(a);
}

bool ir_verify(const Graph *g) {
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *n = g->nodes.items[i];
    if (n->id != i) {
      fprintf(stderr, "ir: node %d has id %d\n", i, n->id);
      return false;
    }
    int arity = op_info[n->op].arity;
    for (int s = 0; s < 3; s++) {
      if ((s < arity) != (n->src[s] != NULL)) {
        fprintf(stderr, "ir: %%%d (%s) has a wrong number of inputs\n", i, ir_op_name(n->op));
        return false;
      }
      if (n->src[s] && n->src[s]->id >= i) {
        fprintf(stderr, "ir: %%%d uses %%%d, which comes later\n", i, n->src[s]->id);
        return false;
      }
    }
  }
  return true;
}

bool program_print_graph(FILE *out, const Program *p) {
  if (!p || !p->lowered) return false;
  const Lowering *lw = p->lowered;
  if (lw->nsteps > 0 && lw->step_name) {
    fprintf(out, "step %s", lw->step_name);
    if (lw->every > 1) fprintf(out, " (every %lld batches)", (long long)lw->every);
    fprintf(out, ":\n");
  }
  ir_print(out, lw->g);
  return true;
}

int program_nsteps(const Program *p) { return p && p->lowered ? p->lowered->nsteps : 0; }

/* Graphviz: data inputs blue, parameters orange, state grey, the nodes
 * autodiff built red, the optimizer's writes dashed; outputs double-circled. */
void ir_dot(FILE *out, const Graph *g) {
  Arena *a = arena_new();
  fprintf(out, "digraph step {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *n = g->nodes.items[i];
    char op[32];
    lower_name(op, sizeof op, n->op);
    const char *fill = n->op == IR_INPUT ? "lightblue" : n->op == IR_PARAM ? "orange" : n->op == IR_STATE ? "lightgrey"
                       : n->grad_of ? "salmon" : "white";
    bool out_node = false;
    for (int o = 0; o < g->outputs.len; o++) out_node |= g->outputs.items[o] == n;
    fprintf(out, "  n%d [label=\"%%%d %s", n->id, n->id, op);
    if (n->op == IR_CONST) fprintf(out, " %g", n->f);
    if (n->name) fprintf(out, "\\n%s", n->name);
    fprintf(out, "\\n%s\", style=filled, fillcolor=%s%s];\n", ttype_str(a, n->dtype, &n->shape), fill,
            out_node ? ", peripheries=2" : "");
    for (int s = 0; s < 3; s++)
      if (n->src[s])
        fprintf(out, "  n%d -> n%d%s;\n", n->src[s]->id, n->id, n->op == IR_ASSIGN && s == 0 ? " [style=dashed, dir=back]" : "");
  }
  fprintf(out, "}\n");
  arena_free(a);
}

bool program_print_dot(FILE *out, const Program *p) {
  if (!p || !p->lowered) return false;
  ir_dot(out, p->lowered->g);
  return true;
}
