/*
 * fuse.c — groups the graph's nodes into kernels, the units codegen turns
 * into loops or library calls.
 *
 * One pass over the nodes in graph order. An elementwise node (EXPAND and
 * ASSIGN count as elementwise) joins the kernel of an input whose shape
 * equals its own once size-1 dims are dropped, so that one loop nest runs
 * over every node of the kernel and every node in it is read at the loop's
 * own index; if several inputs qualify, their kernels are merged. A SUM or
 * MAXR joins the loop kernel of its input in the same way, as its last
 * node (the loop then sums as it goes: (x - mean)² for a variance is never
 * stored), and seals it, as its result is complete only after the loop.
 * Every other node (the row ops, MATMUL, the convolution and pooling
 * calls, a reduction of anything else) is a kernel of its own.
 *
 * A kernel is *sealed* once a node outside it reads one of its nodes: from
 * then on nothing joins it. This keeps the kernels in a valid order: each
 * kernel runs at the position of its last node, and sealing guarantees
 * that everything a kernel reads was finished before, and everything that
 * reads it runs after. An ASSIGN also seals every kernel that reads the
 * leaf it overwrites, so those readers run before the write.
 *
 * A node is materialized (stored to the arena) if it is a graph output or
 * anything outside its kernel reads it; the rest stay in registers.
 */
#include "compiler/codegen.h"

#include <string.h>

int64_t cg_numel(const Shape *s, int64_t n) {
  int64_t r = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t d = s->d[i].c;
    for (int k = 0; k < s->d[i].nsym; k++) d *= n;   /* the only symbol left is B */
    r *= d;
  }
  return r;
}

/* The dims of a shape other than 1, which is what a loop nest runs over. */
static Shape squeeze(const Shape *s) {
  Shape r = {0};
  for (int i = 0; i < s->rank; i++)
    if (!(dim_known(s->d[i]) && s->d[i].c == 1)) r.d[r.rank++] = s->d[i];
  return r;
}

static bool same_loop(const Shape *a, const Shape *b) {
  Shape x = squeeze(a), y = squeeze(b);
  if (x.rank != y.rank) return false;
  for (int i = 0; i < x.rank; i++)
    if (!dim_eq(x.d[i], y.d[i])) return false;
  return true;
}

/* Union-find over kernel ids, so merging two kernels is cheap. */
typedef struct {
  int *parent;
  bool *sealed;
  bool *assigns;   /* the kernel holds an ASSIGN (a reduction does not join it) */
  FuseKind *kind;
  int n, cap;
} Kernels;

static int kfind(Kernels *k, int i) {
  while (k->parent[i] != i) i = k->parent[i] = k->parent[k->parent[i]];
  return i;
}

static int knew(Kernels *k, FuseKind kind) {
  NNC_ASSERT(k->n < k->cap);
  int i = k->n++;
  k->parent[i] = i;
  k->sealed[i] = false;
  k->assigns[i] = false;
  k->kind[i] = kind;
  return i;
}

/* The leaf a node's storage belongs to, through views; NULL if none. */
static const IrNode *leaf_root(const IrNode *x) {
  while (x->op == IR_RESHAPE) x = x->src[0];
  return ir_op_kind(x->op) == OPK_LEAF ? x : NULL;
}

/* Which kind of kernel a node forms, or -1 if it forms none (leaves and
 * views). One switch over ops, so a new op is noticed here. */
static int kernel_kind(IrOp op) {
  switch (op) {
  case IR_INPUT: case IR_PARAM: case IR_STATE: case IR_RAND: case IR_CONST:
  case IR_RESHAPE:
    return -1;
  case IR_NEG: case IR_RELU: case IR_SIGMOID: case IR_TANH: case IR_EXP: case IR_LOG:
  case IR_SQRT: case IR_ABS: case IR_SIGN: case IR_STEP: case IR_STOP_GRAD: case IR_ADD: case IR_SUB:
  case IR_MUL: case IR_DIV: case IR_POW: case IR_MAX2: case IR_MIN2: case IR_GT:
  case IR_EQ: case IR_SELECT: case IR_EXPAND: case IR_ASSIGN:
    return FK_LOOP;
  case IR_SUM: case IR_MAXR:
    return FK_REDUCE;
  case IR_ARGMAX: case IR_LOG_SOFTMAX: case IR_SOFTMAX: case IR_ONE_HOT:
    return FK_ROW;
  case IR_MATMUL:
    return FK_MATMUL;
  case IR_CONV2D: case IR_CONV2D_BWD_X: case IR_CONV2D_BWD_W: case IR_MAXPOOL2D: case IR_MAXPOOL2D_BWD:
  case IR_MAXPOOL2D_PICK: case IR_AVGPOOL2D: case IR_AVGPOOL2D_BWD: case IR_SLICE: case IR_SLICE_BWD:
    return FK_CALL;
  case IR_OP_COUNT:
    break;
  }
  nnc_die(__FILE__, __LINE__, "fuse: unknown op %d", (int)op);
}

/* The value an ASSIGN or elementwise node computes along the loop: for an
 * ASSIGN that is src[1] (src[0] is only the destination). */
static int first_value_src(const IrNode *x) { return x->op == IR_ASSIGN ? 1 : 0; }

Fusion *fuse_graph(Arena *a, const Graph *g) {
  int nn = g->nodes.len;
  Fusion *f = arena_alloc(a, sizeof *f);
  f->nnodes = nn;
  f->kernel = arena_alloc(a, sizeof(int) * (size_t)(nn + 1));
  f->materialized = arena_alloc(a, sizeof(bool) * (size_t)(nn + 1));
  f->runs_at = arena_alloc(a, sizeof(int) * (size_t)(nn + 1));
  Kernels k = {
      .parent = arena_alloc(a, sizeof(int) * (size_t)(nn + 1)),
      .sealed = arena_alloc(a, sizeof(bool) * (size_t)(nn + 1)),
      .assigns = arena_alloc(a, sizeof(bool) * (size_t)(nn + 1)),
      .kind = arena_alloc(a, sizeof(FuseKind) * (size_t)(nn + 1)),
      .cap = nn + 1,
  };
  int *kid = f->kernel;  /* raw kernel ids (union-find) until the end */

  for (int i = 0; i < nn; i++) {
    const IrNode *x = g->nodes.items[i];
    kid[i] = -1;
    int kind = kernel_kind(x->op);
    if (kind == FK_LOOP) {
      /* join (and merge) the unsealed kernels of inputs on the same loop */
      int join = -1;
      for (int s = first_value_src(x); s < 3 && x->src[s]; s++) {
        const IrNode *in = x->src[s];
        int ki = kid[in->id] >= 0 ? kfind(&k, kid[in->id]) : -1;
        if (ki < 0 || k.sealed[ki] || k.kind[ki] != FK_LOOP || !same_loop(&in->shape, &x->shape))
          continue;
        if (join < 0) join = ki;
        else if (ki != join) k.parent[ki] = join, k.assigns[join] |= k.assigns[ki];
      }
      kid[i] = join >= 0 ? join : knew(&k, FK_LOOP);
      if (x->op == IR_ASSIGN) k.assigns[kfind(&k, kid[i])] = true;
    } else if (kind == FK_REDUCE) {
      /* the loop computing the input sums it too (see the top) */
      int ki = kid[x->src[0]->id] >= 0 ? kfind(&k, kid[x->src[0]->id]) : -1;
      bool join = ki >= 0 && !k.sealed[ki] && !k.assigns[ki] && k.kind[ki] == FK_LOOP;
      kid[i] = join ? ki : knew(&k, FK_REDUCE);
      k.kind[kid[i]] = FK_REDUCE;
    } else if (kind >= 0) {
      kid[i] = knew(&k, (FuseKind)kind);
    }
    /* reading a node from outside its kernel seals that kernel */
    int mine = kid[i] >= 0 ? kfind(&k, kid[i]) : -1;
    if (kind == FK_REDUCE) k.sealed[mine] = true;
    for (int s = 0; s < 3 && x->src[s]; s++) {
      int ks = kid[x->src[s]->id];
      if (ks >= 0 && kfind(&k, ks) != mine) k.sealed[kfind(&k, ks)] = true;
    }
    /* an ASSIGN seals the kernels reading its leaf (which all come
     * earlier: the optimizer's updates are the last thing in a step) */
    if (x->op == IR_ASSIGN) {
      for (int j = 0; j < nn; j++) {
        const IrNode *r = g->nodes.items[j];
        if (j == i) continue;
        for (int s = 0; s < 3 && r->src[s]; s++) {
          if (leaf_root(r->src[s]) != x->src[0] || r->op == IR_RESHAPE) continue;
          if (r->op == IR_ASSIGN && s == 0) continue;   /* a destination, not a read */
          NNC_ASSERT(j < i);   /* a read after the write would see the new value */
          if (kid[j] >= 0 && kfind(&k, kid[j]) != mine) k.sealed[kfind(&k, kid[j])] = true;
        }
      }
    }
  }

  /* Number the kernels in the order they run: by their last node. */
  int *last = arena_alloc(a, sizeof(int) * (size_t)(k.n + 1));
  int *renum = arena_alloc(a, sizeof(int) * (size_t)(k.n + 1));
  for (int r = 0; r < k.n; r++) last[r] = -1, renum[r] = -1;
  for (int i = 0; i < nn; i++)
    if (kid[i] >= 0) last[kfind(&k, kid[i])] = i;
  f->nkernels = 0;
  for (int i = 0; i < nn; i++)
    if (kid[i] >= 0 && last[kfind(&k, kid[i])] == i) renum[kfind(&k, kid[i])] = f->nkernels++;
  f->kernels = arena_alloc(a, sizeof(Kernel) * (size_t)(f->nkernels + 1));
  for (int i = 0; i < nn; i++) {
    if (kid[i] < 0) continue;
    int r = kfind(&k, kid[i]);
    kid[i] = renum[r];
    f->kernels[kid[i]].kind = k.kind[r];
    vec_push(a, &f->kernels[kid[i]].nodes, g->nodes.items[i]);
  }

  for (int i = 0; i < nn; i++) {
    const Kernel *kn = kid[i] >= 0 ? &f->kernels[kid[i]] : NULL;
    f->runs_at[i] = kn ? ((const IrNode *)kn->nodes.items[kn->nodes.len - 1])->id : i;
  }

  /* What is stored: outputs, whatever is read outside its kernel, leaves. */
  for (int i = 0; i < nn; i++) {
    const IrNode *x = g->nodes.items[i];
    OpKindIR ok = ir_op_kind(x->op);
    const Kernel *kn = kid[i] >= 0 ? &f->kernels[kid[i]] : NULL;
    f->materialized[i] = (ok == OPK_LEAF && x->op != IR_CONST) ||
                         (kn && kn->kind != FK_LOOP && kn->nodes.items[kn->nodes.len - 1] == x);
    for (int s = 0; s < 3 && x->src[s]; s++) {
      const IrNode *in = x->src[s];
      if (kid[in->id] >= 0 && kid[in->id] != kid[i]) f->materialized[in->id] = true;
    }
  }
  for (int o = 0; o < g->outputs.len; o++) {
    const IrNode *x = g->outputs.items[o];
    while (x->op == IR_RESHAPE) x = x->src[0];
    if (kid[x->id] >= 0) f->materialized[x->id] = true;
  }
  /* an ASSIGN's storage is its leaf's; a RESHAPE's is its source's */
  for (int i = 0; i < nn; i++) {
    const IrNode *x = g->nodes.items[i];
    if (x->op == IR_ASSIGN || x->op == IR_RESHAPE) f->materialized[i] = false;
  }
  return f;
}

/* ---- printing --------------------------------------------------------- */

static const char *kind_name(FuseKind k) {
  switch (k) {
  case FK_LOOP: return "loop";
  case FK_REDUCE: return "reduce";
  case FK_ROW: return "rows";
  case FK_MATMUL: return "cblas_sgemm";
  case FK_CALL: return "call";
  }
  return "?";
}

void fusion_kernel_title(char *buf, size_t len, const Kernel *kn) {
  Arena *a = arena_new();
  const IrNode *last = kn->nodes.items[kn->nodes.len - 1];
  const Shape *sh = (kn->kind == FK_REDUCE || kn->kind == FK_ROW) ? &last->src[0]->shape : &last->shape;
  if (kn->kind == FK_CALL) {
    char fn[40];
    ir_lowercase(fn, sizeof fn, ir_op_name(last->op));
    bool conv = ir_is_conv(last->op);
    snprintf(buf, len, "call nnc_%s over %s%s%s%s", fn, shape_str(a, sh), conv ? " (" : "",
             conv ? ir_conv_method(last) : "", conv ? ")" : "");
  } else {
    snprintf(buf, len, "%s over %s", kind_name(kn->kind), shape_str(a, sh));
  }
  arena_free(a);
}

/* Prints each node once in a list: "%3 %7". */
static void print_set(FILE *out, const char *label, const Vec *v) {
  fprintf(out, "  %s", label);
  if (!v->len) fprintf(out, " -");
  for (int i = 0; i < v->len; i++) fprintf(out, " %%%d", ((const IrNode *)v->items[i])->id);
  fputc('\n', out);
}

static void push_once(Arena *a, Vec *v, const IrNode *x) {
  for (int i = 0; i < v->len; i++)
    if (v->items[i] == x) return;
  vec_push(a, v, (void *)x);
}

/*
 *   kernel 2: loop over [B, 16]
 *     %7 = add %5, %6          (register)
 *     %8 = relu %7             -> stored
 *     reads  %5 %6
 *     writes %8
 */
void fusion_print(FILE *out, const Graph *g, const Fusion *f) {
  (void)g;
  Arena *a = arena_new();
  for (int k = 0; k < f->nkernels; k++) {
    const Kernel *kn = &f->kernels[k];
    char title[160];
    fusion_kernel_title(title, sizeof title, kn);
    fprintf(out, "kernel %d: %s\n", k, title);
    Vec reads = {0}, writes = {0};
    for (int i = 0; i < kn->nodes.len; i++) {
      const IrNode *x = kn->nodes.items[i];
      char op[32], line[256];
      ir_lowercase(op, sizeof op, ir_op_name(x->op));
      size_t len = (size_t)snprintf(line, sizeof line, "    %%%d = %s", x->id, op);
      for (int s = 0; s < 3 && x->src[s]; s++) {
        const IrNode *in = x->src[s];
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%%%d", s ? ", " : " ", in->id);
        if (x->op == IR_MATMUL && ((s == 0 && x->trans_a) || (s == 1 && x->trans_b)))
          len += (size_t)snprintf(line + len, sizeof line - len, "ᵀ");
        if (x->op == IR_ASSIGN && s == 0) continue;  /* the destination, not read */
        if (in->op == IR_CONST) continue;            /* an immediate */
        if (f->kernel[in->id] != k) push_once(a, &reads, in);
      }
      const char *where = "register";
      if (x->op == IR_ASSIGN) {
        where = "-> writes its leaf";
        push_once(a, &writes, x->src[0]);
      } else if (f->materialized[x->id]) {
        where = "-> stored";
        push_once(a, &writes, x);
      }
      int w = 0;
      for (const char *p = line; *p; p++)
        if (((unsigned char)*p & 0xC0) != 0x80) w++;
      fputs(line, out);
      for (; w < 36; w++) fputc(' ', out);
      fprintf(out, " %s", where);
      if (x->op == IR_MATMUL) fprintf(out, " (cblas_sgemm)");
      fputc('\n', out);
    }
    print_set(out, "reads ", &reads);
    print_set(out, "writes", &writes);
  }
  arena_free(a);
}
