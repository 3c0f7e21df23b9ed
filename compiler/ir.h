/*
 * ir.h — the graph IR: typed, shaped SSA over tensors (private to compiler/).
 *
 * A Graph is a list of nodes in topological order. Every node has an op from
 * ops.def, up to three inputs, an element type and a shape whose only
 * symbolic size is the batch B (bound at run time: a compiled step takes the
 * batch size n as an argument, so a last partial batch runs the same code).
 * Every node keeps the spec location it came from, so an error at run time
 * (a NaN, say) points at the spec line.
 *
 *     Graph *g = ir_new(arena);
 *     Node *x = ir_leaf(g, IR_INPUT, DT_FLOAT, &shape_b_784, loc);   // [B, 784]
 *     Node *w = ir_leaf(g, IR_PARAM, DT_FLOAT, &shape_10_784, loc);  // [10, 784]
 *     Node *y = ir_matmul(g, x, w, false, true, loc);               // [B, 10]
 *     ir_print(stdout, g);
 */
#ifndef NNC_IR_H
#define NNC_IR_H

#include "compiler/sema_int.h"
#include "runtime/kernels.h"

typedef enum {
#define OP(name, arity, kind, doc) IR_##name,
#include "compiler/ops.def"
#undef OP
  IR_OP_COUNT
} IrOp;

enum { INIT_UNIFORM, INIT_ONES, INIT_ZEROS, INIT_NORMAL /* RAND only */ };

typedef enum { OPK_LEAF, OPK_ELEM, OPK_REDUCE, OPK_MATMUL, OPK_VIEW, OPK_ROW, OPK_ASSIGN, OPK_CALL } OpKindIR;

/* The geometry of a convolution or pooling window (the CALL ops): kernel
 * size, stride, padding and dilation per image axis, and groups. A pooling
 * with `adaptive` set has windows that tile the input evenly (PyTorch's
 * adaptive pooling) and ignores k, stride and padding. */
typedef struct {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, groups;
  bool adaptive;
  /* SLICE, SLICE_BWD: x[..., start:stop:step, ...] along `axis` (stop is
   * past the last index taken, as in Python; step > 0) */
  int axis;
  int64_t start, stop, step;
} IrWindow;

typedef struct IrNode IrNode;
struct IrNode {
  IrOp op;
  int id;                 /* position in the graph, printed as %id */
  IrNode *src[3];
  DType dtype;
  Shape shape;            /* dims are known ints, or B (times an int) */
  Loc loc;                /* the spec text it came from */
  const char *name;       /* leaves: "net.fc1.weight", "x"; others may be NULL */
  /* attributes (see ops.def for which op uses which) */
  int slot;               /* leaves: index in the plan's list of buffers */
  double f;               /* CONST: the value; PARAM: the init bound */
  int init;               /* PARAM/STATE: INIT_UNIFORM (±f), INIT_ONES, INIT_ZEROS */
  unsigned axes;          /* SUM, MAXR: bit i set = reduce axis i */
  bool keepdim;
  bool trans_a, trans_b;  /* MATMUL */
  int64_t n;              /* ONE_HOT: classes */
  IrWindow win;           /* CALL ops: the forward op's window */
  IrNode *grad_of;        /* autodiff: the forward node whose adjoint this is */
  /* filled by later passes */
  int kernel;             /* fusion: the kernel it belongs to (-1: none) */
  int64_t offset;         /* memory plan: offset in floats in the arena */
  int last_use;           /* memory plan: id of the last node that reads it */
};

struct Graph {
  Arena *arena;
  Vec nodes;              /* IrNode*, topological order */
  Vec outputs;            /* IrNode*: loss, metrics, predictions (kept alive) */
  Vec output_names;       /* const char* */
  int64_t scratch;        /* memory plan: offset of the scratch space the CALL ops and split
                           * reductions share (-1: none) */
};

Graph *ir_new(Arena *a);
const char *ir_op_name(IrOp op);
/* s in lower case into buf (at most n - 1 characters): "conv2d_bwd_x". */
void ir_lowercase(char *buf, size_t n, const char *s);
OpKindIR ir_op_kind(IrOp op);
int ir_op_arity(IrOp op);

/* Builders check shapes and types (an internal error if they disagree:
 * the checker has already reported user errors). Elementwise builders
 * broadcast numpy-style. */
IrNode *ir_leaf(Graph *g, IrOp op, DType dt, const Shape *sh, const char *name, Loc loc);
IrNode *ir_const(Graph *g, double f, Loc loc);
IrNode *ir_unary(Graph *g, IrOp op, IrNode *x, Loc loc);
IrNode *ir_binary(Graph *g, IrOp op, IrNode *a, IrNode *b, Loc loc);
IrNode *ir_select(Graph *g, IrNode *c, IrNode *a, IrNode *b, Loc loc);
IrNode *ir_reduce(Graph *g, IrOp op, IrNode *x, unsigned axes, bool keepdim, Loc loc);
IrNode *ir_matmul(Graph *g, IrNode *a, IrNode *b, bool trans_a, bool trans_b, Loc loc);
IrNode *ir_reshape(Graph *g, IrNode *x, const Shape *sh, Loc loc);
IrNode *ir_expand(Graph *g, IrNode *x, const Shape *sh, Loc loc);
IrNode *ir_row(Graph *g, IrOp op, IrNode *x, int64_t n, Loc loc);
IrNode *ir_assign(Graph *g, IrNode *dst, IrNode *src, Loc loc);
/* A CALL op (convolution, pooling) with inputs a (and b), the shape of its
 * result and the forward op's window. */
IrNode *ir_window(Graph *g, IrOp op, IrNode *a, IrNode *b, const Shape *out, const IrWindow *w, Loc loc);
/* The shapes of the forward op's input x and output y that a CALL node
 * belongs to (one of them may be the node itself). */
void ir_window_sides(const IrNode *n, const Shape **x, const Shape **y);
/* Floats of scratch space a node needs for batches of up to n_max, or 0:
 * a CALL node's (im2col's columns, Winograd's blocks), a split
 * reduction's second partial result (ir_reduce_partial). */
int64_t ir_scratch(const IrNode *n, int64_t n_max);
/* A SUM or MAXR whose outermost input dim is reduced (a loss's sum over
 * the batch, a bias gradient's) and whose result is small and of a fixed
 * size: its two halves each reduce their own rows of that dim, the second
 * into a partial result in the scratch space, and the step combines the
 * two. Returns the result's floats (the partial's size), or 0 for a
 * reduction that does not split so. */
int64_t ir_reduce_partial(const IrNode *r);
enum { IR_PARTIAL_MAX = 4096 };
/* CONV2D or one of its adjoints. */
bool ir_is_conv(IrOp op);
/* SLICE or SLICE_BWD. */
bool ir_is_slice(IrOp op);
/* x sliced along `axis`: x[..., start:stop:step, ...] (ir_window with a
 * slice's window); returns x itself when the slice takes everything. */
IrNode *ir_slice(Graph *g, IrNode *x, int axis, int64_t start, int64_t stop, int64_t step, Loc loc);
/* How a convolution runs, as ir_window_geom's method says: "im2col +
 * sgemm", "sgemm" (1x1, no im2col), "direct" (depthwise) or "direct, 16
 * channels a vector" (runtime/direct.c, on CPUs with AVX-512). */
const char *ir_conv_method(const IrNode *n);
/* The runtime kernel's geometry (runtime/kernels.h) for a CALL node, and
 * how many leading dims of x the kernel's count n runs over (images for a
 * convolution, image planes for a pooling). */
int ir_window_geom(const IrNode *n, int64_t geom[RT_GEOM_COUNT]);
/* The window as printed after the op: " k 3x3 s 1 p 1"; returns its length. */
size_t ir_window_str(char *buf, size_t len, const IrWindow *w);
void ir_output(Graph *g, IrNode *n, const char *name);

/* `x` summed down to `shape` (the one place where broadcasting's gradient
 * is reduced back to an input's shape). */
IrNode *ir_sum_to(Graph *g, IrNode *x, const Shape *shape, Loc loc);

/* Reverse-mode gradients of the scalar y with respect to wrt[0..n) as new
 * nodes of g (autodiff.c); out[i] is NULL where y does not depend on wrt[i]. */
bool ad_grad(Graph *g, IrNode *y, IrNode **wrt, int nwrt, IrNode **out);

/* ---- lowering helpers (lower.c), used by the checker's walk ---------- */
IrNode *lw_of(Sema *s, const Value *v, Loc loc);
void lw_unsupported(Sema *s, Loc loc, const char *what);
/* A SLICE (or concat) along `axis` compiles when that dim and every later
 * one are known ints (the batch comes before). */
bool lw_sliceable(const Shape *sh, int axis);
IrNode *lw_count(Sema *s, const Shape *sh, unsigned axes, Loc loc);
IrNode *lw_mean(Sema *s, IrNode *x, unsigned axes, bool keepdim, Loc loc);
IrNode *lw_param(Sema *s, const Shape *sh, int init, double bound, Loc loc);
IrNode *lw_state(Sema *s, const Shape *sh, int init, const char *name, Loc loc);
IrNode *lw_input(Sema *s, const Shape *sh, DType dt, const char *name, Loc loc);
IrNode *lw_rand(Sema *s, const Shape *sh, Loc loc);
IrNode *lw_randn(Sema *s, const Shape *sh, Loc loc);   /* standard normal noise */
void lw_name_params(Sema *s, Layer *l, const char *prefix);
bool lw_finish_step(Sema *s, IrNode *loss, const Value *optv, Loc loc);
/* The parameters optimizer `optv` updates, in the order of its update. */
void lw_optimizer_params(Arena *a, const Value *optv, Vec *out);
/* The state lw_finish_step would make for `optv`, names prefixed, no update. */
void lw_declare_opt_state(Sema *s, const Value *optv, const char *prefix, Loc loc);

/* The "opt" stage: constant folding, identities, CSE, dead code; renumbers. */
void ir_simplify(Graph *g);
/* Before autodiff: maxpool(relu(x + bias)) becomes relu(maxpool(x) + bias). */
void ir_pool_before_relu(Graph *g);

/* ---- memory plan (plan.c) -------------------------------------------- */
typedef struct {
  int64_t n_max;        /* the batch the sizes are for */
  int64_t persistent;   /* floats of parameters and state, at offset 0 */
  int64_t inputs_end;   /* inputs and noise end here; temporaries follow */
  int64_t scratch;      /* floats of scratch for the convolutions (at Graph.scratch) */
  int64_t size;         /* floats in all */
} MemPlan;

int64_t ir_numel(const IrNode *node, int64_t n);
/* Assigns node->offset (floats) to every buffer; `materialized` (from
 * fusion, may be NULL) says which non-leaf nodes need one, `runs_at` (may be
 * NULL) when each is computed (a fused kernel runs at its last node). Inputs and
 * temporaries start at `floor` or later (the persistent size of another
 * step sharing the arena). */
bool plan_memory(Graph *g, const bool *materialized, const int *runs_at, int64_t n_max, int64_t floor,
                 MemPlan *out);
void plan_print(FILE *out, const Graph *g, const MemPlan *p);

/* Stable text form: one node per line,
 *   %12 = matmul %3, %7ᵀ : [B, 16]        # hw1.nn:37:12
 * (`nnc ir --stage=graph|grad`). */
void ir_print(FILE *out, const Graph *g);

/* The graph in Graphviz's dot language (`nnc dot`). */
void ir_dot(FILE *out, const Graph *g);

/* Checks every node's inputs come earlier and shapes agree (debug builds
 * run it between passes). Returns false and says why on stderr. */
bool ir_verify(const Graph *g);

#endif
