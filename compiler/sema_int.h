/*
 * sema_int.h — what the checker's files share (private to compiler/).
 *
 * The checker is an abstract interpreter of the spec: constants and sizes are
 * computed, layers are built with their real parameter counts, and tensors
 * are tracked by dtype and shape only. A shape's dimensions are known
 * integers or products of symbols (`B` the batch, `T` a sequence length)
 * times an integer, so `flatten([B, T, 80])` is `[B, 80·T]`.
 */
#ifndef NNC_SEMA_INT_H
#define NNC_SEMA_INT_H

#include "compiler/compiler.h"

#include <stdbool.h>

/* ---- shapes ----------------------------------------------------------- */

enum { MAX_SYMS = 3, MAX_RANK = 8 };

/* A dimension: c · sym[0] · sym[1] ... (nsym == 0: the integer c). */
typedef struct {
  int64_t c;
  int nsym;
  const char *sym[MAX_SYMS];
} Dim;

typedef struct {
  int rank;
  Dim d[MAX_RANK];
} Shape;

typedef enum { DT_FLOAT, DT_INT, DT_BOOL, DT_TEXT } DType;  /* text: one string per element */

Dim dim_int(int64_t c);
Dim dim_sym(const char *name);
bool dim_known(Dim d);
bool dim_eq(Dim a, Dim b);
/* a*b; false if it has too many symbols */
bool dim_mul(Dim a, Dim b, Dim *out);
/* "116", "B", "80·T" */
const char *dim_str(Arena *a, Dim d);
/* "[B, 116]" */
const char *shape_str(Arena *a, const Shape *s);
/* "float[B, 116]" or "int[B]" */
const char *ttype_str(Arena *a, DType dt, const Shape *s);
/* 1234567 -> "1,234,567" */
const char *count_str(Arena *a, int64_t v);
/* The product of all dims of s from `from` on, in *out; false if too symbolic. */
bool shape_numel(const Shape *s, int from, Dim *out);
/* numpy broadcasting; false if incompatible */
bool shape_broadcast(const Shape *a, const Shape *b, Shape *out);

/* ---- values ----------------------------------------------------------- */

typedef enum {
  V_ERROR,     /* an error was already reported: stay quiet about it */
  V_NONE,      /* `none`, or a statement's missing value */
  V_INT,       /* i */
  V_FLOAT,     /* f */
  V_BOOL,      /* i */
  V_STRING,    /* s */
  V_TUPLE,     /* items */
  V_LIST,      /* items */
  V_RANGE,     /* i .. j, inclusive */
  V_TENSOR,    /* dtype, shape; `trainable` for variables */
  V_LAYER,     /* layer */
  V_MODELDEF,  /* mdef: a model declaration, call it to build one */
  V_BLOCKDEF,  /* bdef: a block declaration, call it to build a layer */
  V_MODEL,     /* layer (kind LK_MODEL) */
  V_PARAMS,    /* layer: the parameters of that model */
  V_OPTIMIZER, /* opt */
  V_SCHEDULE,  /* s = schedule name, f = base lr */
  V_DATASET,   /* ds */
  V_RECORD,    /* items = N_ fields (RecField *) */
  V_TRANSFORM, /* s = transform name */
  V_COLUMN,    /* items: V_RANGE column ranges of a CSV; i..j their span, f their width */
  V_METRIC,    /* s = metric name */
  V_WRITER,    /* s = writer name, str2 = path */
  V_BUILTIN,   /* bi: a builtin function or constructor, not yet called */
  V_ENV,       /* s = environment name */
  V_TYPE,      /* an element type name used as a value: int, float */
  V_METHOD,    /* layer = the model, s = the method name (net.encode) */
} ValKind;

typedef struct Layer Layer;
typedef struct Dataset Dataset;
typedef struct Optimizer Optimizer;
typedef struct Builtin Builtin;
typedef struct Scope Scope;
typedef struct IrNode IrNode;
typedef struct Graph Graph;
typedef struct Lowering Lowering;

typedef struct Value {
  ValKind kind;
  int64_t i, j;
  double f, f2;
  const char *s, *str2;
  DType dtype;
  Shape shape;
  bool trainable;
  Vec items;
  Layer *layer;
  const Node *mdef, *bdef;
  Dataset *ds;
  Optimizer *opt;
  const Builtin *bi;
  const Node *where;  /* the expression it came from, when useful */
  struct Value *subst;/* V_MODEL: params in place of its own (net[p]) */
  IrNode *ir;         /* V_TENSOR/V_METRIC while lowering: the node computing it */
} Value;

typedef struct {
  const char *name;
  Value *val;
  int64_t col_first, col_last;  /* a csv field: its columns (inclusive) */
  Vec col_ranges;               /* ... as V_RANGE values, when several */
  bool is_column, is_label;     /* ... and whether it holds class ids */
  bool is_const;                /* a number for every sample, `{ anomaly = 1 }` ... */
  double cval;                  /* ... this one */
} RecField;

const char *val_kind_name(ValKind k);
/* The field `name` of a record (a data set's fields), or NULL. */
RecField *rec_find(const Value *rec, const char *name);
/* A short description for messages: "int 3", "float[B, 16]", "model Regressor". */
const char *val_desc(Arena *a, const Value *v);

/* ---- layers and models ------------------------------------------------ */

typedef enum {
  LK_BUILTIN, /* a layer from the catalogue (Linear, Conv2d, ...) */
  LK_SEQ,     /* subs applied in order */
  LK_MODEL,   /* an instance of a `model`: members, methods */
} LayerKind;

/* One row of a model's layer table. */
typedef struct {
  const char *name;   /* path: "fc1", "features.0" */
  const char *type;   /* "Linear(116, 16)" */
  Shape out;          /* output shape of its first use */
  DType out_dt;
  int64_t params;     /* parameters it owns (0 on a shared, second use) */
  Dim flops;          /* FLOPs per sample, summed over uses */
  int uses;
} LayerRow;

struct Layer {
  LayerKind kind;
  const char *type;      /* "Linear", "seq", model name */
  const char *desc;      /* "Linear(116, 16)" */
  const char *path;      /* "fc1", set when placed in a model */
  int64_t params;        /* own parameters (for seq and model: the total) */
  int64_t buffers;       /* running statistics etc. */
  const Builtin *bi;     /* LK_BUILTIN */
  int64_t arg[8];        /* integer arguments (in, out, kernel, ...) */
  double farg[4];
  const char *sarg;
  Vec subs;              /* LK_SEQ: Layer*; LK_MODEL: member layers */
  /* LK_MODEL */
  const Node *mdef;
  Vec member_names;      /* const char* */
  Vec member_vals;       /* Value* */
  Vec rows;              /* LayerRow* of the traced forward */
  bool traced, tracing;
  int64_t budget;        /* 0: none */
  Loc loc;               /* where it was built */
  LayerRow *row;         /* its row in the model being traced */
  Layer *row_owner;      /* ... and that model */
  Scope *scope;          /* LK_MODEL: params and members, for methods */
  IrNode *pw[4];         /* while lowering: its parameters (weight, bias, ...) */
  IrNode *st[4];         /* while lowering: its state (running mean, var) */
  int instance_no;       /* LK_MODEL: order of creation */
  bool owned;            /* a member of a model or seq (shown inside it) */
};

/* ---- data sets, optimizers ------------------------------------------- */

struct Dataset {
  const char *source;    /* "csv", "idx", ... */
  const char *desc;      /* one line for the summary */
  const char *path;
  int64_t rows;          /* -1: unknown until read */
  int64_t ncols;         /* CSV width, -1 unknown */
  Value *fields;         /* V_RECORD of per-sample tensors (no batch dim) */
  Vec transforms;        /* const char*: how each transform was written */
  Vec tvals;             /* Value* (V_TRANSFORM): the same, for the runtime */
  bool is_env, is_tasks;
  double valid_frac;     /* > 0: `valid: f` given, .train/.valid split it */
  int64_t take;          /* > 0: only the first `take` samples */
  const char *part;      /* "train" or "valid" for a part of a split */
  bool header;           /* csv: the first line names the columns */
  Vec parts;             /* concat_data: the data sets, one after another (Dataset*); zip: side by side */
  Vec part_names;        /* zip: each part's name (const char*) */
};

struct Optimizer {
  const char *kind;      /* "SGD", "Adam", ... */
  const char *desc;      /* "Adam(lr 3e-4, weight_decay 1e-5, clip_norm 10)" */
  Vec targets;           /* Value*: models, params, variables */
  double lr;             /* the base learning rate */
  const Value *schedule; /* V_SCHEDULE, or NULL for a constant lr */
  int nhyper;            /* the other hyperparameters, by name */
  const char *hyper_names[12];
  double hyper[12];
};

/* ---- the checker's state ---------------------------------------------- */

struct Scope {
  Scope *parent;
  Vec names;     /* const char* */
  Vec vals;      /* Value* */
  Vec locs;      /* Loc* where defined */
};

/* One train or predict block, as the summary describes it. */
typedef struct {
  bool is_train;
  const char *name;
  Loc loc;
  Vec lines;     /* const char*: what it will do, line by line */
  Vec models;    /* Layer* of the models it builds, for the layer tables */
  Vec model_vars;/* const char*: the names they are bound to */
} BlockInfo;

/* What lowering one train block produced (lower.c). */
struct Lowering {
  Graph *g;
  bool training;       /* a training step: dropout on, batch statistics */
  Vec params;          /* IrNode* PARAM leaves */
  Vec state;           /* IrNode* STATE leaves */
  Vec inputs;          /* IrNode* INPUT leaves (batch fields, then scalars) */
  Vec rands;           /* IrNode* RAND leaves */
  IrNode *batch_n;     /* scalar INPUT: the batch size n, as a float */
  IrNode *step_t;      /* scalar STATE: the update counter (Adam, schedules) */
  IrNode *lr;          /* scalar INPUT: this step's learning rate (the runtime
                          evaluates the schedule from the step counter) */
  IrNode *loss;
  Vec metrics;         /* IrNode* */
  Vec metric_names;    /* const char* */
  Value *optimizer;    /* V_OPTIMIZER of the step */
  Value *data;         /* V_DATASET of the block */
  bool failed;         /* something could not be lowered (reported) */
  Scope *scope;        /* the block's bindings: settings for the runtime */
  const char *spec_dir;
  Vec load_paths;          /* predict: the checkpoints load(...) names (const char*) ... */
  Vec load_layers;         /* ... and the models they go into (Layer*) */
  Vec load_prefixes;       /* ... whose parameters' names start with these (set at the end) */
  Vec load_vars;           /* ... and the models' variable names in the block */
  Vec png_paths;           /* predict: write png_grid(...)/png(...): the files, */
  Vec png_rows;            /* and, for a grid, images per row (intptr_t; 0 for png: one file each) */
  Vec png_when;            /* train blocks' after writes: "epoch" or "train" for each (const char*) */
  Vec prune_layers;        /* prune(model, amount) after epochs: the models (Layer*) ... */
  Vec prune_amounts;       /* ... the fractions (double*) ... */
  Vec prune_locs;          /* ... and where the prune(...) calls are (Loc*) */
  Vec masks;               /* the pruning masks (STATE, ones to start) ... */
  Vec masked;              /* ... the weights each one masks (PARAM) ... */
  Vec mask_amounts;        /* ... and how much each prune removes (double*) */
  /* A train block of several `step`s: each is lowered on its own (the
   * block's statements, then that step's), over the same parameters. */
  int nsteps;              /* the block's steps (0: the block is one step) */
  const char *step_name;   /* the step lowered, by name ... */
  int64_t every;           /* ... which runs on every N-th batch (1: each) */
  Scope *step_scope;       /* ... and its bindings: loss, optimizer, metrics */
  Vec prior_opts;          /* the optimizers (Value*) of the steps before it and */
  Vec prior_steps;         /* their names: their state comes first in the arena */
  const char *state_prefix;/* "discriminator." before a step's optimizer state; "" */
  const char *write_path;  /* predict: the csv file write csv(...) names */
  Vec write_cols;          /* const char*: its columns, in order */
  Vec write_int;           /* non-NULL where the column holds whole numbers */
};

struct Program {
  const Node *ast;
  const Source *src;
  Vec blocks;    /* BlockInfo* */
  Vec models;    /* Layer*: every model instance, in order of appearance */
  Vec consts;    /* const char* "NAME = value" */
  Vec datasets;  /* const char* names */
  Vec dsvals;    /* Dataset* */
  Lowering *lowered;  /* the lowered train block, when asked for */
  struct Fusion *kernels;  /* its kernels, once compiled (compile.c) */
};

typedef struct Sema {
  Arena *arena;
  Diag *diag;
  const SemaOptions *opt;
  Program *prog;
  Scope *globals;
  int quiet;          /* > 0: evaluate without reporting (errors were said) */
  int failed_quiet;   /* an error happened while quiet */
  int depth;          /* expression nesting, against stack overflow */
  Layer *trace;       /* the model whose forward is being traced */
  const char *prefix; /* name prefix of layers inside the traced model */
  const char *spec_dir;
  BlockInfo *block;   /* the train/predict block being checked */
  int steps_seen;
  int in_data;        /* > 0 inside a data block's fields */
  Vec active;         /* method nodes being evaluated (recursion check) */
  Vec attempted;      /* model declarations someone tried to build */
  Lowering *lw;       /* non-NULL while lowering a block to the graph IR */
  const char *after_when;  /* inside `after epoch/train { ... }`: "epoch", "train"; else NULL */
  /* Lowering a training step: a model no optimizer of the block updates (a
   * loaded teacher, the network an input is optimised against) is frozen,
   * and runs as in evaluation (BatchNorm's running statistics, no dropout). */
  Vec trained_names;  /* the names the block's optimizer updates */
  Scope *block_scope;
  bool any_optimizer; /* the block has `optimizer = ...` */
  Value *error_val;
} Sema;

/* Lowering a training step: layer l belongs to no model the block's
 * optimizer updates, so it is frozen (see Sema.trained_names). */
bool sema_layer_frozen(Sema *s, const Layer *l);

/* errors at a location; quiet mode counts them without printing */
void sema_error(Sema *s, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sema_hint(Sema *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sema_warn(Sema *s, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A line of what the current train/predict block does, for the summary. */
void sema_line(Sema *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

Value *val_new(Sema *s, ValKind k);
Value *val_int(Sema *s, int64_t i);
Value *val_float(Sema *s, double f);
Value *val_tensor(Sema *s, DType dt, const Shape *sh);
Value *val_err(Sema *s);

/* ---- the catalogue (builtins.c) --------------------------------------- */

typedef enum {
  BK_LAYER,     /* a layer constructor: Linear(...) builds a layer */
  BK_FUNC,      /* a tensor function: relu(x) */
  BK_LOSS,
  BK_METRIC,
  BK_OPTIM,
  BK_SCHED,
  BK_SOURCE,    /* a data source: csv(...) */
  BK_FIELD,     /* inside a data block: col(...) */
  BK_TRANSFORM,
  BK_WRITER,
  BK_MODELFN,   /* params(), load(), ... */
} BuiltinKind;

enum { MAX_ARGS = 12 };

/* The evaluated arguments of a call, as written. */
typedef struct {
  int npos, nkw;
  Value *pos[MAX_ARGS];
  Loc posloc[MAX_ARGS];
  const char *kwname[MAX_ARGS];
  Value *kw[MAX_ARGS];
  Loc kwloc[MAX_ARGS];
  Vec extra;           /* positional values beyond MAX_ARGS (Value *) */
} Args;

/* A call with its arguments bound to the builtin's parameters by position
 * or keyword; arg[i] is NULL when absent and it has no default. */
typedef struct {
  const Node *node;
  Loc loc;
  int nargs;
  Value *arg[MAX_ARGS];
  Loc argloc[MAX_ARGS];
  bool given[MAX_ARGS];
  bool by_name[MAX_ARGS];  /* given as `name: value` */
  Vec rest;            /* extra positional values of a variadic builtin */
} Call;

typedef Value *(*BuiltinFn)(Sema *s, const Builtin *b, Call *c);
/* Applies a built-in layer to its inputs. */
typedef Value *(*LayerFn)(Sema *s, Layer *l, Call *c);

struct Builtin {
  const char *name;
  BuiltinKind kind;
  /* parameters: "in:i, out:i, bias:b=true"; kinds: i int, f number, b bool,
   * s string, T tensor (or number), X tensor, A any, L list, D dataset,
   * M model; `?` optional without default; a trailing "..." is variadic */
  const char *params;
  BuiltinFn fn;      /* builds the value (for BK_LAYER: the layer) */
  LayerFn apply;     /* BK_LAYER: what calling the layer does */
  const char *call;  /* BK_LAYER: the call's parameters (NULL: "x:X") */
  const char *doc;   /* one line, for `did you mean` and docs */
};

const Builtin *builtin_find(const char *name);
/* All builtin names (for spelling hints); n set to the count. */
const char *const *builtin_names(int *n);
/* Binds call arguments (already evaluated) to a builtin's parameters,
 * checking arity, keyword names and kinds. False after reporting. */
bool builtin_bind(Sema *s, const Builtin *b, Loc loc, const Args *args, Call *out);
/* Looks a name up preferring builtins of kind `kind` (csv is a source and a writer). */
const Builtin *builtin_find_kind(const char *name, BuiltinKind kind);
/* `Linear(in, out, bias: true)` */
const char *builtin_signature(Arena *a, const Builtin *b);
/* `Conv2d(1, 64, 3, padding: 1)`: a bound call as the user wrote it. */
const char *call_desc(Arena *a, const Builtin *b, const Call *c);
/* Calls a layer (built-in, seq or model) on arguments. */
Value *layer_apply(Sema *s, Layer *l, const Args *args, Loc loc);
/* Records a layer's use in the model being traced. */
void trace_layer(Sema *s, Layer *l, const Value *out, Dim flops);

/* Helpers for builtins that sema.c also uses. */
Value *binary_op(Sema *s, OpKind op, Value *a, Value *b, Loc loc);
bool val_is_number(const Value *v);
double val_num(const Value *v);

/* ---- sema.c entry points used by builtins.c --------------------------- */

/* Calls a model's method (`forward` for net(x)); `subst` is a params value
 * for net[p](x), or NULL. */
Value *model_call(Sema *s, Layer *m, const char *method, const Args *args, Loc loc,
                  Value *subst);
/* Evaluates a data block's field statements for a source. */
void data_fields(Sema *s, Dataset *ds, const Node *decl);
const char *resolve_path(Sema *s, const char *path);

#endif
