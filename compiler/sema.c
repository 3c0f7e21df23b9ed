/*
 * sema.c — the checker: names, arity, keyword arguments, kinds, shapes.
 *
 * It interprets the spec abstractly. Constants and sizes are computed;
 * building a model evaluates its members (real layers with real parameter
 * counts); calling a model binds its inputs' shapes to the declared ones
 * (`x: [B, d]` binds B) and evaluates the method body over shapes, recording
 * each layer's output shape and FLOPs for the summary. A train block is run
 * once over its statements: settings are checked for their kind, the data
 * set's fields come into scope with the batch dimension B in front, and each
 * step must end with a scalar `loss` and an `optimizer`.
 *
 * Errors are reported where the user can fix them and the checker goes on
 * with an error value (V_ERROR) that silences follow-on errors.
 */
#include "compiler/ir.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 400, MAX_UNROLL = 10000 };

/* Where statements run; it decides what they may say. */
typedef enum {
  CX_METHOD,   /* a model's method: return */
  CX_TRAIN,    /* a train block: settings, steps */
  CX_STEP,     /* a step of a train block */
  CX_AFTER,    /* after epoch/task/train */
  CX_PREDICT,  /* a predict block */
  CX_DATA,     /* a data block's fields */
  CX_WRITE,    /* a write's columns */
} Ctx;

typedef struct {
  Ctx ctx;
  Value *ret;         /* CX_METHOD: the returned value */
  bool returned;
  Loc ret_loc;
  Dataset *ds;        /* CX_DATA */
  Value *wfields;     /* CX_WRITE: record of columns */
} Exec;

static Value *eval(Sema *s, Scope *sc, const Node *n);
static void exec_stmts(Sema *s, Scope *sc, const Vec *stmts, Exec *ex);
static Value *call_value(Sema *s, Scope *sc, Value *f, const Args *args, Loc loc, const Node *node);

/* ---- scopes ------------------------------------------------------------ */

static Scope *scope_new(Sema *s, Scope *parent) {
  Scope *sc = arena_alloc(s->arena, sizeof *sc);
  sc->parent = parent;
  return sc;
}

/* Marks scopes that assignments in nested blocks must not reach through. */
static Vec boundaries;

static int scope_find(const Scope *sc, const char *name) {
  for (int i = sc->names.len - 1; i >= 0; i--)
    if (!strcmp(sc->names.items[i], name)) return i;
  return -1;
}

static void scope_define(Sema *s, Scope *sc, const char *name, Value *v, Loc loc) {
  int i = scope_find(sc, name);
  if (i >= 0) {
    sc->vals.items[i] = v;
    return;
  }
  Loc *l = arena_alloc(s->arena, sizeof *l);
  *l = loc;
  vec_push(s->arena, &sc->names, (void *)name);
  vec_push(s->arena, &sc->vals, v);
  vec_push(s->arena, &sc->locs, l);
}

static Value *scope_lookup(Scope *sc, const char *name, Scope **where) {
  for (; sc; sc = sc->parent) {
    int i = scope_find(sc, name);
    if (i >= 0) {
      if (where) *where = sc;
      return sc->vals.items[i];
    }
  }
  return NULL;
}

static bool is_boundary(const Scope *sc) {
  for (int i = 0; i < boundaries.len; i++)
    if (boundaries.items[i] == sc) return true;
  return false;
}

/* `name = v` in a nested block updates the nearest enclosing binding up to
 * the enclosing method or train block (loops are unrolled, so a loop body
 * rebinding `x` changes the `x` after the loop); otherwise it defines. */
static void scope_assign(Sema *s, Scope *sc, const char *name, Value *v, Loc loc) {
  /* the method's or block's own scope (a boundary) is the last one searched */
  for (Scope *p = sc; p; p = p->parent) {
    int i = scope_find(p, name);
    if (i >= 0) {
      p->vals.items[i] = v;
      return;
    }
    if (is_boundary(p)) break;
  }
  scope_define(s, sc, name, v, loc);
}

/* Every name visible from sc, for spelling hints. */
static void visible_names(Sema *s, Scope *sc, Vec *out) {
  for (; sc; sc = sc->parent)
    for (int i = 0; i < sc->names.len; i++) vec_push(s->arena, out, sc->names.items[i]);
  int n;
  const char *const *b = builtin_names(&n);
  for (int i = 0; i < n; i++) vec_push(s->arena, out, (void *)b[i]);
}

const char *resolve_path(Sema *s, const char *path) {
  if (path[0] == '/' || !s->spec_dir || !*s->spec_dir) return path;
  return arena_printf(s->arena, "%s/%s", s->spec_dir, path);
}

/* A symbolic size (B, T) as a value, for zeros([B, 100]). */
static Value *sym_value(Sema *s, const char *name) {
  Shape sh = {0};
  Value *v = val_tensor(s, DT_INT, &sh);
  v->s = name;
  return v;
}

static bool is_sym_value(const Value *v) {
  return v->kind == V_TENSOR && v->shape.rank == 0 && v->s != NULL;
}

/* ---- binary operators -------------------------------------------------- */

static bool is_cmp(OpKind op) {
  return op == OP_EQ || op == OP_NE || op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE;
}

static Value *number_op(Sema *s, OpKind op, const Value *a, const Value *b, Loc loc) {
  bool fl = a->kind == V_FLOAT || b->kind == V_FLOAT || op == OP_DIV;
  double x = val_num(a), y = val_num(b);
  if (op == OP_AND || op == OP_OR) {
    if (a->kind != V_BOOL || b->kind != V_BOOL) {
      sema_error(s, loc, "'%s' takes true/false on both sides, got %s and %s", ast_op_text(op),
                 val_desc(s->arena, a), val_desc(s->arena, b));
      return val_err(s);
    }
    Value *v = val_new(s, V_BOOL);
    v->i = op == OP_AND ? (a->i && b->i) : (a->i || b->i);
    return v;
  }
  if (is_cmp(op)) {
    Value *v = val_new(s, V_BOOL);
    v->i = op == OP_EQ ? x == y : op == OP_NE ? x != y : op == OP_LT ? x < y
         : op == OP_LE ? x <= y : op == OP_GT ? x > y : x >= y;
    return v;
  }
  if ((op == OP_DIV || op == OP_MOD) && y == 0) {
    sema_error(s, loc, "division by zero");
    return val_err(s);
  }
  if (op == OP_MATMUL) {
    sema_error(s, loc, "'@' multiplies matrices (tensors), got %s and %s", val_desc(s->arena, a), val_desc(s->arena, b));
    return val_err(s);
  }
  double r = op == OP_ADD ? x + y : op == OP_SUB ? x - y : op == OP_MUL ? x * y
           : op == OP_DIV ? x / y : op == OP_MOD ? fmod(x, y) : pow(x, y);
  if (!fl && op == OP_POW && y < 0) fl = true;
  if (fl) return val_float(s, r);
  if (fabs(r) > 9.0e18) {
    sema_error(s, loc, "integer overflow in %s", ast_op_text(op));
    return val_err(s);
  }
  if (op == OP_MOD) return val_int(s, a->i % b->i);
  return val_int(s, (int64_t)r);
}

static Value *matmul(Sema *s, const Value *a, const Value *b, Loc loc) {
  const Shape *x = &a->shape, *y = &b->shape;
  if (x->rank == 0 || y->rank == 0) {
    sema_error(s, loc, "'@' needs tensors with at least one dim, got %s and %s", shape_str(s->arena, x),
               shape_str(s->arena, y));
    return val_err(s);
  }
  Dim kx = x->d[x->rank - 1], ky = y->rank == 1 ? y->d[0] : y->d[y->rank - 2];
  if (!dim_eq(kx, ky)) {
    sema_error(s, loc, "'@' of %s and %s: the inner sizes %s and %s differ", shape_str(s->arena, x),
               shape_str(s->arena, y), dim_str(s->arena, kx), dim_str(s->arena, ky));
    if (y->rank >= 2 && dim_eq(kx, y->d[y->rank - 1]))
      sema_hint(s, "transpose the right side: a @ transpose(b, -1, -2)");
    return val_err(s);
  }
  Shape o = {0};
  if (y->rank == 1) {
    o = *x;
    o.rank--;
  } else if (x->rank == 1) {
    o = *y;
    o.d[o.rank - 2] = o.d[o.rank - 1];
    o.rank--;
  } else {
    Shape bx = *x, by = *y, bo;
    bx.rank -= 2;
    by.rank -= 2;
    if (!shape_broadcast(&bx, &by, &bo)) {
      sema_error(s, loc, "'@': the batch dims of %s and %s do not broadcast", shape_str(s->arena, x),
                 shape_str(s->arena, y));
      return val_err(s);
    }
    o = bo;
    o.d[o.rank++] = x->d[x->rank - 2];
    o.d[o.rank++] = y->d[y->rank - 1];
  }
  return val_tensor(s, DT_FLOAT, &o);
}

/* An operator between lowered values, as nodes (booleans are 0/1 floats). */
static IrNode *lower_binary(Sema *s, OpKind op, Value *a, Value *b, Loc loc) {
  Graph *g = s->lw->g;
  IrNode *x = lw_of(s, a, loc), *y = lw_of(s, b, loc);
  if (!x || !y) return NULL;
  IrNode *one = NULL;
  switch (op) {
  case OP_ADD: return ir_binary(g, IR_ADD, x, y, loc);
  case OP_SUB: return ir_binary(g, IR_SUB, x, y, loc);
  case OP_MUL: case OP_AND: return ir_binary(g, IR_MUL, x, y, loc);
  case OP_DIV: return ir_binary(g, IR_DIV, x, y, loc);
  case OP_POW: return ir_binary(g, IR_POW, x, y, loc);
  case OP_OR: return ir_binary(g, IR_MAX2, x, y, loc);
  case OP_GT: return ir_binary(g, IR_GT, x, y, loc);
  case OP_LT: return ir_binary(g, IR_GT, y, x, loc);
  case OP_EQ: return ir_binary(g, IR_EQ, x, y, loc);
  case OP_LE: one = ir_const(g, 1, loc); return ir_binary(g, IR_SUB, one, ir_binary(g, IR_GT, x, y, loc), loc);
  case OP_GE: one = ir_const(g, 1, loc); return ir_binary(g, IR_SUB, one, ir_binary(g, IR_GT, y, x, loc), loc);
  case OP_NE: one = ir_const(g, 1, loc); return ir_binary(g, IR_SUB, one, ir_binary(g, IR_EQ, x, y, loc), loc);
  case OP_MOD: case OP_MATMUL: case OP_NEG: case OP_NOT: case OP_COUNT:
    return NULL;
  }
  return NULL;
}

Value *binary_op(Sema *s, OpKind op, Value *a, Value *b, Loc loc) {
  if (a->kind == V_ERROR || b->kind == V_ERROR) return val_err(s);
  if (val_is_number(a) && val_is_number(b)) return number_op(s, op, a, b, loc);
  if (a->kind == V_STRING && b->kind == V_STRING && op == OP_ADD) {
    Value *v = val_new(s, V_STRING);
    v->s = arena_printf(s->arena, "%s%s", a->s, b->s);
    return v;
  }
  if (a->kind == V_LIST && b->kind == V_LIST && op == OP_ADD) {
    Value *v = val_new(s, V_LIST);
    for (int i = 0; i < a->items.len; i++) vec_push(s->arena, &v->items, a->items.items[i]);
    for (int i = 0; i < b->items.len; i++) vec_push(s->arena, &v->items, b->items.items[i]);
    return v;
  }
  /* parameters as values (MAML's fast weights, EWC's penalties) */
  if (a->kind == V_PARAMS || b->kind == V_PARAMS) {
    Value *p = a->kind == V_PARAMS ? a : b, *o = a->kind == V_PARAMS ? b : a;
    bool ok = (op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV || op == OP_POW) &&
              (val_is_number(o) || (o->kind == V_TENSOR && o->shape.rank == 0) ||
               (o->kind == V_PARAMS && o->layer == p->layer));
    if (o->kind == V_PARAMS && o->layer != p->layer) {
      sema_error(s, loc, "'%s' of the parameters of two different models (%s and %s)", ast_op_text(op),
                 a->layer->type, b->layer->type);
      return val_err(s);
    }
    if (!ok) {
      sema_error(s, loc, "'%s' is not defined between %s and %s", ast_op_text(op), val_desc(s->arena, a),
                 val_desc(s->arena, b));
      sema_hint(s, "params can be added, subtracted and scaled by numbers; sum(...) makes a scalar");
      return val_err(s);
    }
    Value *r = val_new(s, V_PARAMS);
    r->layer = p->layer;
    return r;
  }
  bool ta = a->kind == V_TENSOR || val_is_number(a), tb = b->kind == V_TENSOR || val_is_number(b);
  if (!ta || !tb) {
    sema_error(s, loc, "'%s' is not defined between %s and %s", ast_op_text(op), val_desc(s->arena, a),
               val_desc(s->arena, b));
    if (a->kind == V_LAYER || b->kind == V_LAYER || a->kind == V_MODEL || b->kind == V_MODEL)
      sema_hint(s, "call a layer or model on a tensor first: fc(x)");
    return val_err(s);
  }
  Shape sa = {0}, sb = {0};
  DType da = a->kind == V_TENSOR ? a->dtype : a->kind == V_FLOAT ? DT_FLOAT : a->kind == V_BOOL ? DT_BOOL : DT_INT;
  DType db = b->kind == V_TENSOR ? b->dtype : b->kind == V_FLOAT ? DT_FLOAT : b->kind == V_BOOL ? DT_BOOL : DT_INT;
  if (a->kind == V_TENSOR) sa = a->shape;
  if (b->kind == V_TENSOR) sb = b->shape;
  Value ta_ = {.kind = V_TENSOR, .dtype = da, .shape = sa}, tb_ = {.kind = V_TENSOR, .dtype = db, .shape = sb};
  if (op == OP_MATMUL) {
    if (a->kind != V_TENSOR || b->kind != V_TENSOR) return number_op(s, op, a, b, loc);
    Value *r = matmul(s, &ta_, &tb_, loc);
    if (s->lw && r->kind == V_TENSOR && a->ir && b->ir && a->shape.rank == 2 && b->shape.rank == 2)
      r->ir = ir_matmul(s->lw->g, a->ir, b->ir, false, false, loc);
    else if (s->lw && r->kind == V_TENSOR && a->ir && b->ir)
      lw_unsupported(s, loc, "'@' of tensors that are not matrices");
    return r;
  }
  Shape o;
  if (!shape_broadcast(&sa, &sb, &o)) {
    sema_error(s, loc, "'%s' of %s and %s: the shapes do not broadcast", ast_op_text(op),
               ttype_str(s->arena, da, &sa), ttype_str(s->arena, db, &sb));
    sema_hint(s, "sizes must be equal or 1, matched from the last dim; reshape or unsqueeze one side");
    return val_err(s);
  }
  if ((op == OP_AND || op == OP_OR) && (da != DT_BOOL || db != DT_BOOL)) {
    sema_error(s, loc, "'%s' takes bool tensors, got %s and %s", ast_op_text(op), ttype_str(s->arena, da, &sa),
               ttype_str(s->arena, db, &sb));
    return val_err(s);
  }
  DType dr = (is_cmp(op) || op == OP_AND || op == OP_OR) ? DT_BOOL : (da == DT_FLOAT || db == DT_FLOAT || op == OP_DIV) ? DT_FLOAT : DT_INT;
  Value *r = val_tensor(s, dr, &o);
  if (s->lw && ((a->kind == V_TENSOR && a->ir) || (b->kind == V_TENSOR && b->ir))) {
    /* both sides lowered (or numbers), or the gap was already reported */
    bool ready = (a->kind != V_TENSOR || a->ir) && (b->kind != V_TENSOR || b->ir);
    if (ready) r->ir = lower_binary(s, op, a, b, loc);
    if (ready && !r->ir) lw_unsupported(s, loc, arena_printf(s->arena, "'%s' of these values", ast_op_text(op)));
  }
  return r;
}

/* ---- types in signatures ---------------------------------------------- */

/* A declared dim: -2 means `_` (any); sym set for a symbol. */
typedef struct {
  bool any;
  Dim d;
} DeclDim;

static bool looks_like_symbol(const char *name) { return isupper((unsigned char)name[0]); }

/* Evaluates the dims of a declared tensor type. Unbound capitalised names
 * are symbols (B, T). */
static bool decl_dims(Sema *s, Scope *sc, const Node *type, DeclDim *out, int *rank) {
  *rank = type->list.len;
  if (*rank > MAX_RANK) {
    sema_error(s, type->loc, "at most %d dims in a tensor type", MAX_RANK);
    return false;
  }
  for (int i = 0; i < type->list.len; i++) {
    const Node *e = type->list.items[i];
    out[i].any = false;
    if (e->kind == N_NAME && !strcmp(e->name, "_")) {
      out[i].any = true;
      continue;
    }
    if (e->kind == N_NAME) {
      Value *v = scope_lookup(sc, e->name, NULL);
      if (!v && looks_like_symbol(e->name)) {
        out[i].d = dim_sym(e->name);
        continue;
      }
      if (!v && !builtin_find(e->name)) {
        sema_error(s, e->loc, "unknown size '%s' in a tensor type", e->name);
        sema_hint(s, "symbolic sizes start with a capital letter (B, T); a lowercase size must be a constant or a parameter");
        return false;
      }
    }
    Value *v = eval(s, sc, e);
    if (v->kind == V_ERROR) return false;
    if (v->kind == V_INT && v->i > 0) out[i].d = dim_int(v->i);
    else if (is_sym_value(v)) out[i].d = dim_sym(v->s);
    else {
      sema_error(s, e->loc, "a size in a tensor type must be a positive int or a symbol like B, got %s",
                 val_desc(s->arena, v));
      if (e->kind == N_NAME && !looks_like_symbol(e->name))
        sema_hint(s, "symbolic sizes start with a capital letter (B, T); '%s' is not defined", e->name);
      return false;
    }
  }
  return true;
}

static bool type_dtype(Sema *s, const Node *type, DType *dt) {
  const char *n = type->name;
  if (!n || !strcmp(n, "float")) *dt = DT_FLOAT;
  else if (!strcmp(n, "int")) *dt = DT_INT;
  else if (!strcmp(n, "bool")) *dt = DT_BOOL;
  else {
    static const char *const names[] = {"float", "int", "bool"};
    const char *near = closest_name(n, names, 3);
    sema_error(s, type->loc, "unknown element type '%s'%s%s%s", n, near ? "; did you mean '" : "", near ? near : "",
               near ? "'?" : "");
    return false;
  }
  return true;
}

typedef struct {
  int n;
  const char *name[16];
  Dim val[16];
} SymMap;

static Dim *sym_get(SymMap *m, const char *name) {
  for (int i = 0; i < m->n; i++)
    if (!strcmp(m->name[i], name)) return &m->val[i];
  return NULL;
}

static void sym_put(SymMap *m, const char *name, Dim d) {
  if (m->n < 16) {
    m->name[m->n] = name;
    m->val[m->n++] = d;
  }
}

/* Substitutes bound symbols in a declared dim. */
static Dim subst_dim(SymMap *m, Dim d) {
  if (d.nsym == 1 && d.c == 1) {
    Dim *b = sym_get(m, d.sym[0]);
    if (b) return *b;
  }
  return d;
}

/* Does value v fit declared type `type`? Binds symbols in m. */
static bool fits_type(Sema *s, Scope *sc, const Node *type, const Value *v, SymMap *m, const char **why) {
  if (!type->ival) {
    const char *n = type->name;
    bool ok = (!strcmp(n, "int") && v->kind == V_INT) || (!strcmp(n, "float") && val_is_number(v)) ||
              (!strcmp(n, "bool") && v->kind == V_BOOL) || (!strcmp(n, "string") && v->kind == V_STRING);
    if (!ok && strcmp(n, "int") && strcmp(n, "float") && strcmp(n, "bool") && strcmp(n, "string")) {
      *why = arena_printf(s->arena, "unknown type '%s' (int, float, bool, string, or a tensor type like [B, 10])", n);
      return false;
    }
    if (!ok) *why = arena_printf(s->arena, "expected %s, got %s", n, val_desc(s->arena, v));
    return ok;
  }
  DType dt;
  if (!type_dtype(s, type, &dt)) return false;
  DeclDim dd[MAX_RANK];
  int rank;
  if (!decl_dims(s, sc, type, dd, &rank)) {
    *why = NULL;
    return false;
  }
  Shape want = {.rank = rank};
  for (int i = 0; i < rank; i++) want.d[i] = dd[i].any ? dim_sym("_") : subst_dim(m, dd[i].d);
  const char *wants = ttype_str(s->arena, dt, &want);
  if (v->kind != V_TENSOR) {
    *why = arena_printf(s->arena, "expected a tensor %s, got %s", wants, val_desc(s->arena, v));
    return false;
  }
  if (v->dtype != dt || v->shape.rank != rank) {
    *why = arena_printf(s->arena, "expected %s, got %s", wants, ttype_str(s->arena, v->dtype, &v->shape));
    return false;
  }
  for (int i = 0; i < rank; i++) {
    if (dd[i].any) continue;
    Dim d = dd[i].d;
    if (d.nsym == 1 && d.c == 1 && !sym_get(m, d.sym[0])) {
      sym_put(m, d.sym[0], v->shape.d[i]);
      continue;
    }
    if (!dim_eq(subst_dim(m, d), v->shape.d[i])) {
      *why = arena_printf(s->arena, "expected %s, got %s", wants, ttype_str(s->arena, v->dtype, &v->shape));
      return false;
    }
  }
  return true;
}

/* The value a declared type describes (for tracing a method before any call). */
static Value *value_of_type(Sema *s, Scope *sc, const Node *type) {
  if (!type->ival) {
    const char *n = type->name;
    if (!strcmp(n, "int")) return val_int(s, 1);
    if (!strcmp(n, "float")) return val_float(s, 1.0);
    if (!strcmp(n, "bool")) return val_new(s, V_BOOL);
    return NULL;
  }
  DType dt;
  DeclDim dd[MAX_RANK];
  int rank;
  if (!type_dtype(s, type, &dt) || !decl_dims(s, sc, type, dd, &rank)) return val_err(s);
  Shape sh = {.rank = rank};
  for (int i = 0; i < rank; i++) {
    /* `_` or a size symbol other than the batch: only a call can tell */
    if (dd[i].any) return NULL;
    if (!dim_known(dd[i].d) && !(dd[i].d.nsym == 1 && !strcmp(dd[i].d.sym[0], "B"))) return NULL;
    sh.d[i] = dd[i].d;
  }
  return val_tensor(s, dt, &sh);
}

/* ---- models and blocks -------------------------------------------------- */

static const Node *find_method(const Node *mdef, const char *name) {
  for (int i = 0; i < mdef->list2.len; i++) {
    const Node *m = mdef->list2.items[i];
    if (m->kind == N_METHOD && !strcmp(m->name, name)) return m;
  }
  return NULL;
}

/* Binds a call's arguments to declared params (models, blocks, methods).
 * Returns false after reporting. */
static bool bind_params(Sema *s, const char *what, const Vec *params, const Args *args, Loc loc,
                        Value **out, Loc *outloc) {
  int n = params->len;
  for (int i = 0; i < n; i++) out[i] = NULL;
  if (args->npos > n) {
    sema_error(s, args->posloc[n], "%s takes %d argument%s, got %d", what, n, n == 1 ? "" : "s", args->npos);
    return false;
  }
  for (int i = 0; i < args->npos; i++) {
    out[i] = args->pos[i];
    outloc[i] = args->posloc[i];
  }
  for (int k = 0; k < args->nkw; k++) {
    int i = 0;
    while (i < n && strcmp(((Node *)params->items[i])->name, args->kwname[k])) i++;
    if (i == n) {
      const char *names[64];
      int m = n < 64 ? n : 64;
      for (int j = 0; j < m; j++) names[j] = ((Node *)params->items[j])->name;
      const char *near = closest_name(args->kwname[k], names, m);
      sema_error(s, args->kwloc[k], "%s has no parameter '%s'%s%s%s", what, args->kwname[k],
                 near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
      return false;
    }
    if (out[i]) {
      sema_error(s, args->kwloc[k], "'%s' of %s is given twice", args->kwname[k], what);
      return false;
    }
    out[i] = args->kw[k];
    outloc[i] = args->kwloc[k];
  }
  for (int i = 0; i < n; i++) {
    if (out[i]) {
      if (out[i]->kind == V_ERROR) return false;
      continue;
    }
    const Node *p = params->items[i];
    if (!p->b) {
      sema_error(s, loc, "%s needs '%s'", what, p->name);
      return false;
    }
  }
  return true;
}

static int instance_counter;

static void set_paths(Sema *s, Layer *l, const char *path) {
  l->path = path;
  if (l->kind == LK_SEQ)
    for (int i = 0; i < l->subs.len; i++)
      set_paths(s, l->subs.items[i], arena_printf(s->arena, "%s.%d", path, i));
}

/* A layer value from what a seq item or a model member evaluates to:
 * `ReLU` alone builds a ReLU, a block without parameters builds itself. */
static Value *as_layer(Sema *s, Value *v, Loc loc) {
  if (v->kind == V_BUILTIN && v->bi->kind == BK_LAYER) {
    Args none = {0};
    return call_value(s, NULL, v, &none, loc, NULL);
  }
  if (v->kind == V_BLOCKDEF && v->bdef->list.len == 0) {
    Args none = {0};
    return call_value(s, NULL, v, &none, loc, NULL);
  }
  return v;
}

static Value *instantiate_model(Sema *s, const Node *mdef, const Args *args, Loc loc) {
  vec_push(s->arena, &s->attempted, (void *)mdef);
  Value *pv[64];
  Loc pl[64];
  if (mdef->list.len > 64) return val_err(s);
  if (!bind_params(s, mdef->name, &mdef->list, args, loc, pv, pl)) return val_err(s);
  Layer *m = arena_alloc(s->arena, sizeof *m);
  m->kind = LK_MODEL;
  m->type = mdef->name;
  m->mdef = mdef;
  m->loc = loc;
  m->instance_no = ++instance_counter;
  m->scope = scope_new(s, s->globals);
  vec_push(s->arena, &boundaries, m->scope);

  char desc[512];
  size_t k = (size_t)snprintf(desc, sizeof desc, "%s", mdef->name);
  for (int i = 0; i < mdef->list.len; i++) {
    const Node *p = mdef->list.items[i];
    Value *v = pv[i] ? pv[i] : eval(s, s->globals, p->b);
    if (v->kind == V_ERROR) return val_err(s);
    if (p->a) {
      const char *why = NULL;
      SymMap m0 = {0};
      if (!fits_type(s, s->globals, p->a, v, &m0, &why)) {
        if (why) sema_error(s, pv[i] ? pl[i] : p->loc, "%s's parameter '%s': %s", mdef->name, p->name, why);
        return val_err(s);
      }
    }
    scope_define(s, m->scope, p->name, v, p->loc);
    if (k < sizeof desc - 64)
      k += (size_t)snprintf(desc + k, sizeof desc - k, "%s%s: %s", i ? ", " : "(", p->name,
                            v->kind == V_INT ? arena_printf(s->arena, "%lld", (long long)v->i)
                            : v->kind == V_FLOAT ? arena_printf(s->arena, "%g", v->f)
                            : val_desc(s->arena, v));
  }
  if (mdef->list.len && k < sizeof desc - 2) snprintf(desc + k, sizeof desc - k, ")");
  m->desc = arena_strdup(s->arena, desc);

  /* methods first, so members can be defined in any order around them */
  for (int i = 0; i < mdef->list2.len; i++) {
    const Node *mem = mdef->list2.items[i];
    if (mem->kind != N_METHOD) continue;
    if (find_method(mdef, mem->name) != mem) {
      sema_error(s, mem->loc, "method '%s' is defined twice in model %s", mem->name, mdef->name);
      continue;
    }
    Value *mv = val_new(s, V_METHOD);
    mv->layer = m;
    mv->s = mem->name;
    scope_define(s, m->scope, mem->name, mv, mem->loc);
  }
  bool ok = true;
  for (int i = 0; i < mdef->list2.len; i++) {
    const Node *mem = mdef->list2.items[i];
    if (mem->kind != N_ASSIGN) continue;
    const char *name = ((Node *)mem->list.items[0])->name;
    if (scope_find(m->scope, name) >= 0) {
      Scope *w;
      Value *old = scope_lookup(m->scope, name, &w);
      if (old && old->kind == V_METHOD)
        sema_error(s, mem->loc, "'%s' is both a layer and a method of model %s", name, mdef->name);
      else
        sema_error(s, mem->loc, "'%s' is defined twice in model %s", name, mdef->name);
      ok = false;
      continue;
    }
    Value *v = as_layer(s, eval(s, m->scope, mem->a), mem->a->loc);
    if (v->kind == V_ERROR) {
      ok = false;
      scope_define(s, m->scope, name, v, mem->loc);
      continue;
    }
    if (v->kind == V_LAYER || v->kind == V_MODEL) {
      set_paths(s, v->layer, name);
      v->layer->owned = true;
      m->params += v->layer->params;
      m->buffers += v->layer->buffers;
      vec_push(s->arena, &m->subs, v->layer);
      vec_push(s->arena, &m->member_names, (void *)name);
    } else if (v->kind == V_TENSOR && v->trainable) {
      Dim n;
      if (shape_numel(&v->shape, 0, &n) && dim_known(n)) m->params += n.c;
      if (v->ir && !v->ir->name) v->ir->name = name;
    } else if (!(val_is_number(v) || v->kind == V_STRING || v->kind == V_LIST || v->kind == V_TUPLE)) {
      sema_error(s, mem->a->loc, "a model member is a layer, a sub-model, a variable or a constant; got %s",
                 val_desc(s->arena, v));
      if (v->kind == V_MODELDEF || v->kind == V_BLOCKDEF)
        sema_hint(s, "build it with arguments: %s(...)", v->kind == V_MODELDEF ? v->mdef->name : v->bdef->name);
      ok = false;
    }
    scope_define(s, m->scope, name, v, mem->loc);
  }
  if (!ok) return val_err(s);

  if (mdef->a) {
    Value *b = eval(s, m->scope, mdef->a);
    if (b->kind != V_INT || b->i <= 0) {
      if (b->kind != V_ERROR)
        sema_error(s, mdef->a->loc, "a parameter budget is a positive int, got %s", val_desc(s->arena, b));
    } else {
      m->budget = b->i;
      if (m->params > b->i) {
        sema_error(s, mdef->loc, "model %s has %s parameters, over its budget of %s", m->desc,
                   count_str(s->arena, m->params), count_str(s->arena, b->i));
        const Layer *big = NULL;
        const char *bigname = NULL;
        for (int i = 0; i < m->subs.len; i++) {
          const Layer *l = m->subs.items[i];
          if (!big || l->params > big->params) {
            big = l;
            bigname = m->member_names.items[i];
          }
        }
        if (big)
          sema_hint(s, "the largest member is '%s' with %s; depthwise-separable convolutions (groups) are much smaller",
                    bigname, count_str(s->arena, big->params));
      }
    }
  }

  vec_push(s->arena, &s->prog->models, m);
  /* trace every method whose parameters are all typed, so errors in them
   * show now; forward's trace fills the layer table */
  bool any_forward = find_method(mdef, "forward") != NULL;
  if (!any_forward)
    sema_warn(s, mdef->loc, "model %s has no forward method; `net(x)` will not work", mdef->name);
  for (int i = 0; i < mdef->list2.len; i++) {
    const Node *meth = mdef->list2.items[i];
    if (meth->kind != N_METHOD) continue;
    Args a = {0};
    bool typed = true;
    for (int j = 0; j < meth->list.len && j < MAX_ARGS; j++) {
      const Node *p = meth->list.items[j];
      if (p->b) break;  /* defaults fill the rest */
      Value *v = p->a ? value_of_type(s, m->scope, p->a) : NULL;
      if (!v) {
        typed = false;
        break;
      }
      if (v->kind == V_ERROR) return val_err(s);
      a.pos[a.npos] = v;
      a.posloc[a.npos++] = p->loc;
    }
    if (typed) model_call(s, m, meth->name, &a, meth->loc, NULL);
  }
  Value *v = val_new(s, V_MODEL);
  v->layer = m;
  return v;
}

static Value *instantiate_block(Sema *s, const Node *bdef, const Args *args, Loc loc) {
  Value *pv[64];
  Loc pl[64];
  if (bdef->list.len > 64) return val_err(s);
  if (!bind_params(s, bdef->name, &bdef->list, args, loc, pv, pl)) return val_err(s);
  Scope *sc = scope_new(s, s->globals);
  for (int i = 0; i < bdef->list.len; i++) {
    const Node *p = bdef->list.items[i];
    Value *v = pv[i] ? pv[i] : eval(s, s->globals, p->b);
    if (p->a && v->kind != V_ERROR) {
      const char *why = NULL;
      SymMap m0 = {0};
      if (!fits_type(s, s->globals, p->a, v, &m0, &why)) {
        if (why) sema_error(s, pv[i] ? pl[i] : p->loc, "%s's parameter '%s': %s", bdef->name, p->name, why);
        return val_err(s);
      }
    }
    scope_define(s, sc, p->name, v, p->loc);
  }
  Value *v = as_layer(s, eval(s, sc, bdef->a), bdef->a->loc);
  if (v->kind == V_ERROR) return v;
  if (v->kind != V_LAYER && v->kind != V_MODEL) {
    sema_error(s, bdef->a->loc, "block %s must be a layer (a seq { ... } or a layer call), got %s", bdef->name,
               val_desc(s->arena, v));
    return val_err(s);
  }
  /* a copy, so that `ConvBlock(1, 64)` reads as such in the summary */
  Layer *l = arena_alloc(s->arena, sizeof *l);
  *l = *v->layer;
  l->desc = bdef->name;
  if (l->kind == LK_SEQ) l->type = bdef->name;
  Value *r = val_new(s, v->kind);
  r->layer = l;
  return r;
}

/* Calls a method of a model instance. */
static bool contains_layer(const Layer *m, const Layer *l) {
  if (m == l) return true;
  for (int i = 0; i < m->subs.len; i++)
    if (contains_layer(m->subs.items[i], l)) return true;
  return false;
}

bool sema_layer_frozen(Sema *s, const Layer *l) {
  if (!s->lw || !s->lw->training || !s->any_optimizer || !s->block_scope) return false;
  for (int i = 0; i < s->trained_names.len; i++) {
    Value *v = scope_lookup(s->block_scope, s->trained_names.items[i], NULL);
    if (v && (v->kind == V_MODEL || v->kind == V_PARAMS) && v->layer && contains_layer(v->layer, l)) return false;
  }
  return true;
}

/* A name an optimizer's target names: `net`, or `params(net)`; NULL for
 * anything else (`net.fc`, an expression). */
static const char *target_name(const Node *e) {
  if (e->kind == N_CALL && e->list.len == 1) e = e->list.items[0];   /* params(net) */
  return e->kind == N_NAME ? e->name : NULL;
}

/* The names `optimizer = Adam(net, ...)` or `Adam([g, d], ...)` updates,
 * read from the block before it is walked. A target other than names
 * (`Adam(net.fc)`) freezes nothing: the block keeps every model as it is. */
static void find_trained_names(Sema *s, const Node *blk) {
  s->trained_names.len = 0;
  s->any_optimizer = false;
  bool plain = true;
  /* the block's statements and its steps': a model no step trains is frozen */
  Vec stmts = {0};
  for (int i = 0; i < blk->list.len; i++) {
    const Node *st = blk->list.items[i];
    if (st->kind != N_STEP) vec_push(s->arena, &stmts, (void *)st);
    for (int k = 0; st->kind == N_STEP && k < st->list.len; k++) vec_push(s->arena, &stmts, st->list.items[k]);
  }
  for (int i = 0; i < stmts.len; i++) {
    const Node *st = stmts.items[i];
    if (st->kind != N_ASSIGN || st->list.len != 1 || strcmp(((Node *)st->list.items[0])->name, "optimizer") != 0) continue;
    s->any_optimizer = true;
    if (!st->a || st->a->kind != N_CALL || !st->a->list.len) continue;
    const Node *arg = st->a->list.items[0];
    int n = arg->kind == N_LIST ? arg->list.len : 1;
    for (int k = 0; k < n; k++) {
      const char *name = target_name(arg->kind == N_LIST ? arg->list.items[k] : arg);
      if (name) vec_push(s->arena, &s->trained_names, (void *)name);
      else plain = false;
    }
  }
  if (!plain) s->any_optimizer = false;
}

Value *model_call(Sema *s, Layer *m, const char *method, const Args *args, Loc loc, Value *subst) {
  const Node *meth = find_method(m->mdef, method);
  if (!meth) {
    const char *names[64];
    int n = 0;
    for (int i = 0; i < m->mdef->list2.len && n < 64; i++) {
      const Node *mem = m->mdef->list2.items[i];
      if (mem->kind == N_METHOD) names[n++] = mem->name;
    }
    const char *near = closest_name(method, names, n);
    sema_error(s, loc, "model %s has no method '%s'%s%s%s", m->type, method, near ? "; did you mean '" : "",
               near ? near : "", near ? "'?" : "");
    if (!strcmp(method, "forward")) sema_hint(s, "define forward(x: [B, ...]) -> [...] { ... } in model %s", m->type);
    return val_err(s);
  }
  if (subst && (subst->kind != V_PARAMS || subst->layer->mdef != m->mdef)) {
    sema_error(s, loc, "%s[...] takes params of a %s, got %s", m->type, m->type, val_desc(s->arena, subst));
    return val_err(s);
  }
  const char *what = arena_printf(s->arena, "%s.%s", m->type, method);
  Value *pv[64];
  Loc pl[64];
  if (meth->list.len > 64) return val_err(s);
  if (!bind_params(s, what, &meth->list, args, loc, pv, pl)) return val_err(s);

  for (int i = 0; i < s->active.len; i++)
    if (s->active.items[i] == meth) {
      sema_error(s, loc, "%s calls itself (directly or through other methods); models cannot recurse", what);
      return val_err(s);
    }
  if (++s->depth > 64) {
    s->depth--;
    sema_error(s, loc, "method calls nested too deeply");
    return val_err(s);
  }
  Scope *sc = scope_new(s, m->scope);
  vec_push(s->arena, &boundaries, sc);
  SymMap syms = {0};
  bool ok = true;
  for (int i = 0; i < meth->list.len; i++) {
    const Node *p = meth->list.items[i];
    Value *v = pv[i] ? pv[i] : eval(s, m->scope, p->b);
    if (v->kind == V_ERROR) {
      ok = false;
      continue;
    }
    const char *why = NULL;
    if (p->a && !fits_type(s, m->scope, p->a, v, &syms, &why)) {
      if (why) {
        sema_error(s, pv[i] ? pl[i] : loc, "%s's input '%s': %s", what, p->name, why);
        if (v->kind == V_TENSOR && v->shape.rank > 2 && p->a->list.len == 2)
          sema_hint(s, "flatten(x) turns %s into [B, n]", shape_str(s->arena, &v->shape));
      }
      ok = false;
      continue;
    }
    scope_define(s, sc, p->name, v, p->loc);
  }
  for (int i = 0; i < syms.n; i++) {
    Dim d = syms.val[i];
    if (dim_known(d)) scope_define(s, sc, syms.name[i], val_int(s, d.c), meth->loc);
    else if (d.nsym == 1 && d.c == 1) scope_define(s, sc, syms.name[i], sym_value(s, d.sym[0]), meth->loc);
  }
  if (!ok) {
    s->depth--;
    return val_err(s);
  }

  /* Evaluate the body: loudly the first time this method runs for this
   * instance, quietly after (the errors were said); record the layer table
   * on forward's first run. */
  const char *key = arena_printf(s->arena, "%p", (const void *)meth);
  const char *bad = arena_printf(s->arena, "%p!", (const void *)meth);
  bool seen = false;
  for (int i = 0; i < m->member_vals.len; i++) {
    if (!strcmp(m->member_vals.items[i], bad)) {
      /* its first run failed and said why: stay quiet now */
      s->depth--;
      return val_err(s);
    }
    if (!strcmp(m->member_vals.items[i], key)) seen = true;
  }
  if (!seen) vec_push(s->arena, &m->member_vals, (void *)key);
  int errors_before = s->diag->nerrors;

  Layer *saved_trace = s->trace;
  const char *saved_prefix = s->prefix;
  if (!s->trace && !m->traced && !strcmp(method, "forward")) {
    s->trace = m;
    s->prefix = "";
    m->tracing = true;
  } else if (s->trace && s->trace != m && m->path) {
    s->prefix = arena_printf(s->arena, "%s%s.", s->prefix, m->path);
  }
  if (seen) s->quiet++;
  int saved_failed = s->failed_quiet;
  s->failed_quiet = 0;
  Exec ex = {.ctx = CX_METHOD};
  vec_push(s->arena, &s->active, (void *)meth);
  exec_stmts(s, sc, &meth->list2, &ex);
  s->active.len--;
  if (seen) s->quiet--;
  if (seen && s->failed_quiet && !s->quiet) {
    /* this call's shapes break the body: say where, at full voice */
    Exec ex2 = {.ctx = CX_METHOD};
    Scope *sc2 = scope_new(s, m->scope);
    vec_push(s->arena, &boundaries, sc2);
    for (int i = 0; i < sc->names.len; i++)
      scope_define(s, sc2, sc->names.items[i], sc->vals.items[i], *(Loc *)sc->locs.items[i]);
    vec_push(s->arena, &s->active, (void *)meth);
    exec_stmts(s, sc2, &meth->list2, &ex2);
    s->active.len--;
    diag_note(s->diag, loc, "in this call of %s", what);
    ex = ex2;
  }
  s->failed_quiet = saved_failed || s->failed_quiet;
  if (s->trace == m) {
    m->traced = true;
    m->tracing = false;
  }
  s->trace = saved_trace;
  s->prefix = saved_prefix;
  s->depth--;

  if (!seen && (s->diag->nerrors > errors_before || !ex.returned || (ex.ret && ex.ret->kind == V_ERROR)))
    vec_push(s->arena, &m->member_vals, (void *)bad);
  if (!ex.returned) {
    sema_error(s, meth->loc, "%s does not return a value", what);
    sema_hint(s, "end it with `return ...`");
    return val_err(s);
  }
  Value *r = ex.ret;
  if (r->kind == V_ERROR) return r;
  if (meth->a) {
    const char *why = NULL;
    if (meth->a->ival || strcmp(meth->a->name ? meth->a->name : "", "")) {
      if (!fits_type(s, sc, meth->a, r, &syms, &why)) {
        if (!seen) vec_push(s->arena, &m->member_vals, (void *)bad);
        if (why) {
          sema_error(s, ex.ret_loc, "%s returns the wrong shape: %s", what, why);
          if (r->kind == V_TENSOR && r->shape.rank == meth->a->list.len + 1 &&
              dim_eq(r->shape.d[r->shape.rank - 1], dim_int(1)))
            sema_hint(s, "squeeze(..., -1) drops the last dim of size 1");
          else
            sema_hint(s, "the declaration is at %d:%d", meth->a->loc.line, meth->a->loc.col);
        }
        return val_err(s);
      }
    }
  }
  return r;
}

/* Records a layer's use in the model being traced (its summary row). */
void trace_layer(Sema *s, Layer *l, const Value *out, Dim flops) {
  if (!s->trace || out->kind != V_TENSOR) return;
  if (l->row && l->row_owner == s->trace) {
    l->row->uses++;
    if (dim_eq(dim_int(flops.c), dim_int(l->row->flops.c)) || l->row->flops.nsym == flops.nsym) {
      Dim f = l->row->flops;
      bool same = f.nsym == flops.nsym;
      for (int i = 0; same && i < f.nsym; i++) same = !strcmp(f.sym[i], flops.sym[i]);
      if (same) l->row->flops.c += flops.c;
    }
    return;
  }
  LayerRow *r = arena_alloc(s->arena, sizeof *r);
  r->name = l->path ? arena_printf(s->arena, "%s%s", s->prefix, l->path) : arena_printf(s->arena, "%s(%s)", s->prefix, l->type);
  r->type = l->desc;
  r->out = out->shape;
  r->out_dt = out->dtype;
  r->params = l->params;
  r->flops = flops;
  r->uses = 1;
  l->row = r;
  l->row_owner = s->trace;
  vec_push(s->arena, &s->trace->rows, r);
}

/* ---- calls --------------------------------------------------------------- */

static bool eval_args(Sema *s, Scope *sc, const Node *call, Args *a) {
  memset(a, 0, sizeof *a);
  for (int i = 0; i < call->list.len; i++) {
    const Node *arg = call->list.items[i];
    if (arg->kind == N_KWARG) {
      if (a->nkw >= MAX_ARGS) {
        sema_error(s, arg->loc, "too many arguments (at most %d)", MAX_ARGS);
        return false;
      }
      for (int k = 0; k < a->nkw; k++)
        if (!strcmp(a->kwname[k], arg->name)) {
          sema_error(s, arg->loc, "'%s' is given twice", arg->name);
          return false;
        }
      a->kwname[a->nkw] = arg->name;
      a->kwloc[a->nkw] = arg->loc;
      a->kw[a->nkw++] = eval(s, sc, arg->a);
    } else {
      if (a->nkw > 0) {
        sema_error(s, arg->loc, "a positional argument after keyword arguments");
        sema_hint(s, "put positional arguments first: f(x, dim: 1)");
        return false;
      }
      Value *v = eval(s, sc, arg);
      if (a->npos >= MAX_ARGS) {
        vec_push(s->arena, &a->extra, v);
        continue;
      }
      a->posloc[a->npos] = arg->loc;
      a->pos[a->npos++] = v;
    }
  }
  return true;
}

RecField *rec_find(const Value *rec, const char *name) {
  for (int i = 0; i < rec->items.len; i++) {
    RecField *f = rec->items.items[i];
    if (!strcmp(f->name, name)) return f;
  }
  return NULL;
}

static Value *zip_data(Sema *s, const Args *a, Loc loc) {
  if (a->npos > 0 || a->nkw == 0) {
    sema_error(s, a->npos ? a->posloc[0] : loc, "zip names each data set: zip(src: fashion, tgt: inverted)");
    return val_err(s);
  }
  Dataset *d = arena_alloc(s->arena, sizeof *d);
  d->source = "zip";
  d->rows = -1;
  d->ncols = -1;
  d->fields = val_new(s, V_RECORD);
  char buf[512];
  size_t k = (size_t)snprintf(buf, sizeof buf, "zip(");
  for (int i = 0; i < a->nkw; i++) {
    Value *v = a->kw[i];
    if (v->kind == V_ERROR) return v;
    if (v->kind != V_DATASET) {
      sema_error(s, a->kwloc[i], "zip: '%s' must be a data set, got %s", a->kwname[i], val_desc(s->arena, v));
      return val_err(s);
    }
    /* each part keeps its own fields plus its sample number `index` */
    Value *part = val_new(s, V_RECORD);
    for (int k2 = 0; k2 < v->ds->fields->items.len; k2++) vec_push(s->arena, &part->items, v->ds->fields->items.items[k2]);
    if (!rec_find(part, "index")) {
      RecField *ix = arena_alloc(s->arena, sizeof *ix);
      Shape none = {0};
      ix->name = "index";
      ix->val = val_tensor(s, DT_INT, &none);
      vec_push(s->arena, &part->items, ix);
    }
    RecField *f = arena_alloc(s->arena, sizeof *f);
    f->name = a->kwname[i];
    f->val = part;
    vec_push(s->arena, &d->fields->items, f);
    vec_push(s->arena, &d->parts, v->ds);   /* for the runtime: loaded side by side */
    vec_push(s->arena, &d->part_names, (void *)a->kwname[i]);
    if (k < sizeof buf - 80) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s: %s", i ? ", " : "", a->kwname[i], v->ds->desc);
    if (v->ds->rows >= 0 && (d->rows < 0 || v->ds->rows < d->rows)) d->rows = v->ds->rows;
  }
  snprintf(buf + k, sizeof buf - k, ")");
  d->desc = arena_strdup(s->arena, buf);
  Value *v = val_new(s, V_DATASET);
  v->ds = d;
  return v;
}


/* ds.map(t, ...): transforms change the fields' shapes. */
static Value *map_data(Sema *s, Dataset *in, const Args *a, Loc loc) {
  Dataset *d = arena_alloc(s->arena, sizeof *d);
  *d = *in;
  Value *rec = val_new(s, V_RECORD);
  for (int i = 0; i < in->fields->items.len; i++) {
    RecField *f = arena_alloc(s->arena, sizeof *f);
    *f = *(RecField *)in->fields->items.items[i];
    vec_push(s->arena, &rec->items, f);
  }
  d->fields = rec;
  d->transforms = (Vec){0};
  d->tvals = (Vec){0};
  for (int i = 0; i < in->transforms.len; i++) vec_push(s->arena, &d->transforms, in->transforms.items[i]);
  for (int i = 0; i < in->tvals.len; i++) vec_push(s->arena, &d->tvals, in->tvals.items[i]);
  if (a->nkw) {
    sema_error(s, a->kwloc[0], "map takes transforms, like map(flip(), crop(28, padding: 4))");
    return val_err(s);
  }
  for (int i = 0; i < a->npos; i++) {
    Value *t = a->pos[i];
    if (t->kind == V_ERROR) return t;
    if (t->kind != V_TRANSFORM || !strcmp(t->s, "words") || !strcmp(t->s, "chars")) {
      sema_error(s, a->posloc[i], "map takes transforms (flip(), normalize(), ...), got %s", val_desc(s->arena, t));
      if (t->kind == V_BUILTIN && t->bi->kind == BK_TRANSFORM) sema_hint(s, "call it: %s()", t->bi->name);
      return val_err(s);
    }
    if (!strcmp(t->s, "mask_tokens")) {
      RecField *idf = rec_find(rec, "ids");
      if (!idf || idf->val->kind != V_TENSOR || idf->val->dtype != DT_INT) {
        sema_error(s, a->posloc[i], "mask_tokens masks the token ids in the field 'ids', which this data set does not have");
        return val_err(s);
      }
      RecField *mf = arena_alloc(s->arena, sizeof *mf), *lf = arena_alloc(s->arena, sizeof *lf);
      mf->name = "masked_ids";
      mf->val = idf->val;
      lf->name = "labels";
      lf->val = idf->val;
      vec_push(s->arena, &rec->items, mf);
      vec_push(s->arena, &rec->items, lf);
      vec_push(s->arena, &d->transforms, (void *)t->str2);
      continue;
    }
    RecField *xf = rec_find(rec, "x");
    if (!xf || xf->val->kind != V_TENSOR) {
      sema_error(s, a->posloc[i], "%s transforms the field 'x', which this data set does not have", t->s);
      return val_err(s);
    }
    Value *x = xf->val;
    Shape sh = x->shape;
    const char *n = t->s;
    bool image = sh.rank == 3;
    if (!strcmp(n, "rows_as_sequence")) {
      if (!image || !dim_eq(sh.d[0], dim_int(1))) {
        sema_error(s, a->posloc[i], "rows_as_sequence turns a one-channel image [1, H, W] into [H, W], got %s",
                   shape_str(s->arena, &sh));
        return val_err(s);
      }
      sh.d[0] = sh.d[1];
      sh.d[1] = sh.d[2];
      sh.rank = 2;
    } else if (!strcmp(n, "random_length")) {
      if (sh.rank != 2 || !dim_known(sh.d[0]) || sh.d[0].c < t->j) {
        sema_error(s, a->posloc[i], "random_length(%lld, %lld) crops sequences [T, F] with T >= %lld, got %s",
                   (long long)t->i, (long long)t->j, (long long)t->j, shape_str(s->arena, &sh));
        return val_err(s);
      }
      sh.d[0] = dim_int(t->j);
      RecField *mf = arena_alloc(s->arena, sizeof *mf);
      Shape ms = {.rank = 1};
      ms.d[0] = dim_int(t->j);
      mf->name = "mask";
      mf->val = val_tensor(s, DT_BOOL, &ms);
      vec_push(s->arena, &rec->items, mf);
    } else if (!strcmp(n, "flatten_image")) {
      Dim total;
      if (!image || !shape_numel(&sh, 0, &total)) {
        sema_error(s, a->posloc[i], "flatten_image turns an image [C, H, W] into a vector, got %s", shape_str(s->arena, &sh));
        return val_err(s);
      }
      sh.rank = 1;
      sh.d[0] = total;
    } else if (!strcmp(n, "context")) {
      if (sh.rank != 1 || !dim_known(sh.d[0])) {
        sema_error(s, a->posloc[i], "context(k) joins neighbouring rows of vectors [d], got %s", shape_str(s->arena, &sh));
        return val_err(s);
      }
      sh.d[0] = dim_int(sh.d[0].c * (2 * t->i + 1));
    } else if (!strcmp(n, "resize") || !strcmp(n, "crop")) {
      if (!image) {
        sema_error(s, a->posloc[i], "%s works on images [C, H, W], got %s", n, shape_str(s->arena, &sh));
        return val_err(s);
      }
      sh.d[1] = sh.d[2] = dim_int(t->i);
    } else if (!strcmp(n, "flip") || !strcmp(n, "rotate") || !strcmp(n, "rotate_fixed") || !strcmp(n, "edges") ||
               !strcmp(n, "invert")) {
      if (!image) {
        sema_error(s, a->posloc[i], "%s works on images [C, H, W], got %s", n, shape_str(s->arena, &sh));
        return val_err(s);
      }
    }
    RecField *nx = arena_alloc(s->arena, sizeof *nx);
    *nx = *xf;
    nx->val = val_tensor(s, x->dtype, &sh);
    for (int k = 0; k < rec->items.len; k++)
      if (rec->items.items[k] == xf) rec->items.items[k] = nx;
    vec_push(s->arena, &d->transforms, (void *)t->str2);
    vec_push(s->arena, &d->tvals, t);
  }
  (void)loc;
  Value *v = val_new(s, V_DATASET);
  v->ds = d;
  return v;
}

/* While lowering: did this call compute a tensor from lowered values
 * without building its node? Then the compiler lacks it: say so once. */
static Value *check_lowered(Sema *s, Value *r, const Args *args, Loc loc, const char *what) {
  if (!s->lw || (r->kind != V_TENSOR && r->kind != V_METRIC) || r->ir) return r;
  bool from_lowered = false;
  for (int i = 0; i < args->npos + args->nkw; i++) {
    Value *v = i < args->npos ? args->pos[i] : args->kw[i - args->npos];
    from_lowered |= v->kind == V_TENSOR && v->ir;
    if (v->kind == V_LIST || v->kind == V_TUPLE)   /* concat([a, b]) */
      for (int k = 0; k < v->items.len; k++) {
        Value *e = v->items.items[k];
        from_lowered |= e->kind == V_TENSOR && e->ir;
      }
  }
  if (!from_lowered) return r;
  lw_unsupported(s, loc, what);
  return r;
}

static Value *call_value(Sema *s, Scope *sc, Value *f, const Args *args, Loc loc, const Node *node) {
  (void)sc;
  switch (f->kind) {
  case V_ERROR:
    return f;
  case V_BUILTIN: {
    const Builtin *b = f->bi;
    if (!strcmp(b->name, "zip")) return zip_data(s, args, loc);
    if (b->kind == BK_LAYER && args->npos > 0 && args->pos[0]->kind == V_TENSOR) {
      sema_error(s, loc, "%s is a layer type: build it, then call it on a tensor", b->name);
      char lower[64];
      size_t k = 0;
      for (; k < sizeof lower - 1 && b->name[k]; k++) lower[k] = (char)tolower((unsigned char)b->name[k]);
      lower[k] = 0;
      if (builtin_find_kind(lower, BK_FUNC))
        sema_hint(s, "for the function write %s(x); as a layer, %s = %s in the model and then %s(x)", lower, lower,
                  b->name, lower);
      else
        sema_hint(s, "declare it as a member (fc = %s(...)) and call fc(x)", b->name);
      return val_err(s);
    }
    /* every data source takes `valid: fraction`, splitting it into
     * ds.train and ds.valid (the same split wherever it is used) */
    Args own = *args;
    double valid = 0;
    if (b->kind == BK_SOURCE) {
      for (int k = 0; k < own.nkw; k++) {
        if (strcmp(own.kwname[k], "valid")) continue;
        Value *fv = own.kw[k];
        if (!val_is_number(fv) || val_num(fv) <= 0 || val_num(fv) >= 1) {
          sema_error(s, own.kwloc[k], "%s: valid is the fraction held out for validation, in (0, 1); got %s", b->name,
                     val_desc(s->arena, fv));
          return val_err(s);
        }
        valid = val_num(fv);
        for (int j = k; j + 1 < own.nkw; j++) {
          own.kwname[j] = own.kwname[j + 1];
          own.kw[j] = own.kw[j + 1];
          own.kwloc[j] = own.kwloc[j + 1];
        }
        own.nkw--;
        break;
      }
    }
    Call c;
    if (!builtin_bind(s, b, loc, &own, &c)) return val_err(s);
    c.node = node;
    Value *r = b->fn(s, b, &c);
    if (valid > 0 && r->kind == V_DATASET) r->ds->valid_frac = valid;
    return check_lowered(s, r, args, loc, b->name);
  }
  case V_MODELDEF:
    return instantiate_model(s, f->mdef, args, loc);
  case V_BLOCKDEF:
    return instantiate_block(s, f->bdef, args, loc);
  case V_LAYER:
    return check_lowered(s, layer_apply(s, f->layer, args, loc), args, loc, f->layer->type);
  case V_MODEL:
    return model_call(s, f->layer, "forward", args, loc, f->subst);
  case V_METHOD:
    return model_call(s, f->layer, f->s, args, loc, NULL);
  case V_NONE: case V_INT: case V_FLOAT: case V_BOOL: case V_STRING: case V_TUPLE: case V_LIST: case V_RANGE:
  case V_TENSOR: case V_PARAMS: case V_OPTIMIZER: case V_SCHEDULE: case V_DATASET: case V_RECORD:
  case V_TRANSFORM: case V_COLUMN: case V_METRIC: case V_WRITER: case V_ENV: case V_TYPE:
    break;
  }
  sema_error(s, loc, "%s cannot be called", val_desc(s->arena, f));
  if (f->kind == V_TENSOR) sema_hint(s, "is a '*' missing, or did you mean a layer with this name?");
  return val_err(s);
}

/* ---- expressions -------------------------------------------------------- */

/* Names from PyTorch and Keras that students reach for, and what nnc calls them. */
static const char *framework_alias(const char *name) {
  static const char *const map[][2] = {
    {"Dense", "a fully connected layer is Linear(in_features, out_features)"},
    {"Conv2D", "the layer is Conv2d(in_channels, out_channels, kernel)"},
    {"Sequential", "a stack of layers is seq { Linear(4, 8), ReLU, Linear(8, 1) }"},
    {"CrossEntropyLoss", "the loss is the function cross_entropy(logits, y)"},
    {"MSELoss", "the loss is the function mse(pred, target)"},
    {"BCELoss", "the loss is the function bce(prob, target)"},
    {"softmax_cross_entropy", "the loss is cross_entropy(logits, y)"},
    {"cat", "joining tensors is concat([a, b], dim)"},
    {"view", "reshape(x, [B, 784]) changes a shape"},
    {"detach", "stop_grad(x) stops the gradient"},
    {"mnist", "the data sources are mnist_test() (the bundled MNIST digits) and fashion_mnist(split: \"train\")"},
    {"MNIST", "the data sources are mnist_test() (the bundled MNIST digits) and fashion_mnist(split: \"train\")"},
    {"FashionMNIST", "the data source is fashion_mnist(split: \"train\") or fashion_mnist(split: \"test\")"},
    {"DataLoader", "batching is a train block setting: batch = 64"},
    {"optim", "optimizers are called directly: Adam(net, lr: 1e-3)"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(map[i][0], name)) return map[i][1];
  return NULL;
}

static Value *unknown_name(Sema *s, Scope *sc, const Node *n) {
  /* the data set failed to check: its fields are unknown, not misspelt */
  Value *d = scope_lookup(sc, "data", NULL), *t = scope_lookup(sc, "tasks", NULL);
  if (s->block && ((d && d->kind == V_ERROR) || (t && t->kind == V_ERROR))) return val_err(s);
  /* an error that is not printed (a quiet re-evaluation, or past the
   * error limit) needs no suggestion, which looks at every name in scope */
  if (s->quiet || diag_full(s->diag)) {
    sema_error(s, n->loc, "unknown name '%s'", n->name);
    return val_err(s);
  }
  Vec names = {0};
  visible_names(s, sc, &names);
  const char *alias = framework_alias(n->name);
  const char *near = alias || !strcmp(n->name, "self") ? NULL
                     : closest_name(n->name, (const char *const *)names.items, names.len);
  if (near)
    sema_error(s, n->loc, "unknown name '%s'; did you mean '%s'?", n->name, near);
  else
    sema_error(s, n->loc, "unknown name '%s'", n->name);
  if (alias)
    sema_hint(s, "%s", alias);
  else if (s->block && !scope_lookup(sc, "data", NULL) && !scope_lookup(sc, "tasks", NULL))
    sema_hint(s, "the data set's fields (x, y, ...) come into scope after `data = ...`");
  else if (!strcmp(n->name, "self"))
    sema_hint(s, "inside a model, layers are named directly: fc1(x), not self.fc1(x)");
  else if (!strcmp(n->name, "nn") || !strcmp(n->name, "F") || !strcmp(n->name, "torch"))
    sema_hint(s, "layers and functions are named directly: Linear(...), relu(x)");
  return val_err(s);
}

static Value *eval_index(Sema *s, Scope *sc, const Node *n) {
  Value *t = eval(s, sc, n->a);
  if (t->kind == V_ERROR) return t;
  if (t->kind == V_MODEL) {
    if (n->list.len != 1) {
      sema_error(s, n->loc, "%s[...] takes one params value", t->layer->type);
      return val_err(s);
    }
    Value *p = eval(s, sc, n->list.items[0]);
    if (p->kind == V_ERROR) return p;
    if (p->kind != V_PARAMS || p->layer->mdef != t->layer->mdef) {
      sema_error(s, ((Node *)n->list.items[0])->loc, "%s[...] substitutes the model's parameters; got %s",
                 t->layer->type, val_desc(s->arena, p));
      sema_hint(s, "e.g. fast = params(net) - 0.4 * grad(loss, params(net)); net[fast](x)");
      return val_err(s);
    }
    Value *r = val_new(s, V_MODEL);
    r->layer = t->layer;
    r->subst = p;
    return r;
  }
  if (t->kind == V_LIST || t->kind == V_TUPLE) {
    Value *i = n->list.len == 1 ? eval(s, sc, n->list.items[0]) : NULL;
    if (!i || i->kind != V_INT) {
      if (i && i->kind == V_ERROR) return i;
      sema_error(s, n->loc, "a %s is indexed by one int", val_kind_name(t->kind));
      return val_err(s);
    }
    int64_t k = i->i < 0 ? i->i + t->items.len : i->i;
    if (k < 0 || k >= t->items.len) {
      sema_error(s, ((Node *)n->list.items[0])->loc, "index %lld is out of range for a %s of %d", (long long)i->i,
                 val_kind_name(t->kind), t->items.len);
      return val_err(s);
    }
    return t->items.items[k];
  }
  if (t->kind != V_TENSOR) {
    sema_error(s, n->loc, "%s cannot be indexed", val_desc(s->arena, t));
    return val_err(s);
  }
  if (n->list.len > t->shape.rank) {
    sema_error(s, n->loc, "%d indices for a tensor %s of rank %d", n->list.len, shape_str(s->arena, &t->shape),
               t->shape.rank);
    return val_err(s);
  }
  Shape o = {0};
  /* what lowering needs: per subscripted axis the slice lo:hi:step taken
   * (an int index k is k:k+1, and its axis is dropped after) */
  int64_t lo_of[MAX_RANK], hi_of[MAX_RANK], step_of[MAX_RANK];
  bool cut[MAX_RANK] = {false}, lowerable = true;
  for (int i = 0; i < t->shape.rank; i++) {
    Dim d = t->shape.d[i];
    if (i >= n->list.len) {
      o.d[o.rank++] = d;
      continue;
    }
    const Node *sub = n->list.items[i];
    if (sub->kind == N_SLICE) {
      int64_t v[3] = {0, 0, 1};
      bool has[3] = {false, false, false};
      const Node *parts[3] = {sub->a, sub->b, sub->c};
      const char *symb[3] = {NULL, NULL, NULL};
      for (int k = 0; k < 3; k++) {
        if (!parts[k]) continue;
        Value *pv = eval(s, sc, parts[k]);
        if (pv->kind == V_ERROR) return pv;
        if (is_sym_value(pv) && k < 2) {
          symb[k] = pv->s;
          has[k] = true;
          continue;
        }
        if (pv->kind != V_INT) {
          sema_error(s, parts[k]->loc, "slice bounds are ints, got %s", val_desc(s->arena, pv));
          return val_err(s);
        }
        v[k] = pv->i;
        has[k] = true;
      }
      if (v[2] <= 0) {
        sema_error(s, sub->loc, "a slice step must be positive");
        return val_err(s);
      }
      if (symb[0] || symb[1]) {
        /* x[0:B] and x[B:] of a dim c·B (a batch of two halves, say) */
        Dim sd = dim_sym(symb[0] ? symb[0] : symb[1]);
        bool first = !symb[0] && v[0] == 0 && symb[1] && v[2] == 1;
        bool rest = symb[0] && !has[1] && v[2] == 1;
        Dim mult = d;
        bool fits = d.nsym == 1 && !strcmp(d.sym[0], sd.sym[0]) && d.c >= 2;
        lowerable = false;   /* the bounds are not known when the step is compiled */
        if (fits && first) {
          o.d[o.rank++] = sd;
          continue;
        }
        if (fits && rest) {
          mult.c -= 1;
          o.d[o.rank++] = mult;
          continue;
        }
        sema_error(s, sub->loc, "cannot slice a dim of size %s with symbolic bounds like these", dim_str(s->arena, d));
        sema_hint(s, "x[0:B] and x[B:] split a dim of size 2·B");
        return val_err(s);
      }
      if (!has[0] && !has[1] && v[2] == 1) {
        o.d[o.rank++] = d;
        continue;
      }
      if (!dim_known(d)) {
        if (has[1] && v[1] > 0 && !has[0]) {   /* x[:n] of a symbolic dim */
          lowerable = false;
          o.d[o.rank++] = dim_int((v[1] + v[2] - 1) / v[2]);
          continue;
        }
        sema_error(s, sub->loc, "cannot slice the symbolic dim %s with these bounds", dim_str(s->arena, d));
        return val_err(s);
      }
      int64_t lo = has[0] ? (v[0] < 0 ? v[0] + d.c : v[0]) : 0;
      int64_t hi = has[1] ? (v[1] < 0 ? v[1] + d.c : v[1]) : d.c;
      if (lo < 0) lo = 0;
      if (hi > d.c) hi = d.c;
      int64_t len = hi > lo ? (hi - lo + v[2] - 1) / v[2] : 0;
      if (len == 0) {
        sema_error(s, sub->loc, "this slice of a dim of size %lld is empty", (long long)d.c);
        return val_err(s);
      }
      o.d[o.rank++] = dim_int(len);
      lo_of[i] = lo, hi_of[i] = hi, step_of[i] = v[2];
      cut[i] = len != d.c;
    } else {
      Value *iv = eval(s, sc, sub);
      if (iv->kind == V_ERROR) return iv;
      if (iv->kind != V_INT) {
        sema_error(s, sub->loc, "a tensor index is an int or a slice a:b, got %s", val_desc(s->arena, iv));
        if (iv->kind == V_TENSOR && iv->dtype == DT_INT) sema_hint(s, "to pick one entry per row use gather(x, ids)");
        return val_err(s);
      }
      if (dim_known(d) && (iv->i >= d.c || iv->i < -d.c)) {
        sema_error(s, sub->loc, "index %lld is out of range for dim %d of size %lld", (long long)iv->i, i, (long long)d.c);
        return val_err(s);
      }
      if (!dim_known(d)) lowerable = false;
      lo_of[i] = iv->i < 0 ? iv->i + d.c : iv->i, hi_of[i] = lo_of[i] + 1, step_of[i] = 1;
      cut[i] = true;
    }
  }
  Value *r = val_tensor(s, t->dtype, &o);
  if (s->lw && t->ir) {
    /* one SLICE per axis that is cut, then a reshape that drops the int-indexed ones */
    IrNode *x = t->ir;
    for (int i = 0; i < n->list.len && lowerable; i++) {
      if (!cut[i]) continue;
      if (!lw_sliceable(&t->shape, i)) lowerable = false;
      else x = ir_slice(s->lw->g, x, i, lo_of[i], hi_of[i], step_of[i], n->loc);
    }
    if (!lowerable) {
      lw_unsupported(s, n->loc, "slicing a dim of the batch's size");
      return r;
    }
    r->ir = x->shape.rank == o.rank ? x : ir_reshape(s->lw->g, x, &o, n->loc);
  }
  return r;
}

static Value *eval_member(Sema *s, Scope *sc, const Node *n) {
  Value *o = eval(s, sc, n->a);
  if (o->kind == V_ERROR) return o;
  if (o->kind == V_RECORD) {
    RecField *f = rec_find(o, n->name);
    if (f) return f->val;
    const char *names[64];
    int k = 0;
    for (int i = 0; i < o->items.len && k < 64; i++) names[k++] = ((RecField *)o->items.items[i])->name;
    const char *near = closest_name(n->name, names, k);
    sema_error(s, n->loc, "no field '%s'%s%s%s", n->name, near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return val_err(s);
  }
  if (o->kind == V_MODEL) {
    int i = scope_find(o->layer->scope, n->name);
    if (i >= 0) return o->layer->scope->vals.items[i];
    Vec names = {0};
    for (int k = 0; k < o->layer->scope->names.len; k++) vec_push(s->arena, &names, o->layer->scope->names.items[k]);
    const char *near = closest_name(n->name, (const char *const *)names.items, names.len);
    sema_error(s, n->loc, "model %s has no member '%s'%s%s%s", o->layer->type, n->name, near ? "; did you mean '" : "",
               near ? near : "", near ? "'?" : "");
    return val_err(s);
  }
  if (o->kind == V_DATASET) {
    if (!strcmp(n->name, "map")) {
      Value *v = val_new(s, V_DATASET);
      v->ds = o->ds;
      v->s = "map";
      return v;
    }
    if (!strcmp(n->name, "train") || !strcmp(n->name, "valid")) {
      Dataset *in = o->ds;
      if (in->valid_frac <= 0 || in->part) {
        sema_error(s, n->loc, "this data set has no .%s part", n->name);
        sema_hint(s, "declare the split at the source, e.g. fashion_mnist(valid: 0.1), or set `valid = 0.1` in the train block");
        return val_err(s);
      }
      Dataset *d = arena_alloc(s->arena, sizeof *d);
      *d = *in;
      bool tr = !strcmp(n->name, "train");
      d->part = tr ? "train" : "valid";
      double f = tr ? 1 - in->valid_frac : in->valid_frac;
      if (in->rows >= 0) {
        int64_t held = (int64_t)((double)in->rows * in->valid_frac);
        d->rows = tr ? in->rows - held : held;
      }
      d->desc = arena_printf(s->arena, "%s, %s part (%g%%)", in->desc, d->part, f * 100);
      Value *v = val_new(s, V_DATASET);
      v->ds = d;
      return v;
    }
    /* ds.x: the whole column, one row per sample (for statistics) */
    RecField *f = rec_find(o->ds->fields, n->name);
    if (f && f->val->kind == V_TENSOR && f->val->shape.rank < MAX_RANK) {
      Shape sh = {.rank = f->val->shape.rank + 1};
      sh.d[0] = o->ds->rows >= 0 ? dim_int(o->ds->rows) : dim_sym("N");
      for (int i = 0; i < f->val->shape.rank; i++) sh.d[i + 1] = f->val->shape.d[i];
      return val_tensor(s, f->val->dtype, &sh);
    }
    if (f) return f->val;
    const char *names[64];
    int k = 0;
    for (int i = 0; i < o->ds->fields->items.len && k < 64; i++) names[k++] = ((RecField *)o->ds->fields->items.items[i])->name;
    const char *near = closest_name(n->name, names, k);
    sema_error(s, n->loc, "the data set has no field '%s'%s%s%s", n->name, near ? "; did you mean '" : "", near ? near : "",
               near ? "'?" : "");
    return val_err(s);
  }
  sema_error(s, n->loc, "%s has no member '%s'", val_desc(s->arena, o), n->name);
  return val_err(s);
}

static Value *eval_seq(Sema *s, Scope *sc, const Vec *items, Layer *seq) {
  for (int i = 0; i < items->len; i++) {
    const Node *it = items->items[i];
    if (it->kind == N_REPEAT) {
      Value *cnt = eval(s, sc, it->a);
      if (cnt->kind == V_ERROR) return cnt;
      if (cnt->kind != V_INT || cnt->i < 0 || cnt->i > 1000) {
        sema_error(s, it->a->loc, "repeat takes a count from 0 to 1000, got %s", val_desc(s->arena, cnt));
        return val_err(s);
      }
      for (int64_t k = 0; k < cnt->i; k++) {
        if (k > 0) s->quiet++;
        Value *r = eval_seq(s, sc, &it->list, seq);
        if (k > 0) s->quiet--;
        if (r->kind == V_ERROR) return r;
      }
    } else if (it->kind == N_FOR) {
      Value *over = eval(s, sc, it->a);
      if (over->kind == V_ERROR) return over;
      int64_t n = over->kind == V_RANGE ? over->j - over->i + 1 : over->kind == V_LIST ? over->items.len : -1;
      if (n < 0 || n > 1000) {
        sema_error(s, it->a->loc, "for in a seq runs over a range a..b or a list (at most 1000), got %s",
                   val_desc(s->arena, over));
        return val_err(s);
      }
      for (int64_t k = 0; k < n; k++) {
        Scope *body = scope_new(s, sc);
        scope_define(s, body, it->name, over->kind == V_RANGE ? val_int(s, over->i + k) : over->items.items[k], it->loc);
        Value *r = eval_seq(s, body, &it->list, seq);
        if (r->kind == V_ERROR) return r;
      }
    } else {
      Value *v = as_layer(s, eval(s, sc, it), it->loc);
      if (v->kind == V_ERROR) return v;
      if (v->kind != V_LAYER && v->kind != V_MODEL) {
        sema_error(s, it->loc, "a seq holds layers, got %s", val_desc(s->arena, v));
        if (v->kind == V_BUILTIN && v->bi->kind == BK_FUNC)
          sema_hint(s, "%s is a function; its layer is spelled with a capital (ReLU, Tanh, Sigmoid, GELU)", v->bi->name);
        return val_err(s);
      }
      vec_push(s->arena, &seq->subs, v->layer);
      v->layer->owned = true;
      seq->params += v->layer->params;
      seq->buffers += v->layer->buffers;
    }
  }
  Value *v = val_new(s, V_LAYER);
  v->layer = seq;
  return v;
}

static Value *eval_inner(Sema *s, Scope *sc, const Node *n) {
  switch (n->kind) {
  case N_INT: return val_int(s, n->ival);
  case N_FLOAT: return val_float(s, n->fval);
  case N_BOOL: {
    Value *v = val_new(s, V_BOOL);
    v->i = n->ival;
    return v;
  }
  case N_STRING: {
    Value *v = val_new(s, V_STRING);
    v->s = n->str;
    return v;
  }
  case N_NAME: {
    Value *v = scope_lookup(sc, n->name, NULL);
    if (v) return v;
    const Builtin *b = builtin_find(n->name);
    if (b) {
      if (b->kind == BK_FIELD && !s->in_data) {
        sema_error(s, n->loc, "%s() selects CSV columns and is only used in a csv data block", n->name);
        return val_err(s);
      }
      Value *bv = val_new(s, V_BUILTIN);
      bv->bi = b;
      return bv;
    }
    if (!strcmp(n->name, "zip")) {
      static const Builtin zipb = {"zip", BK_SOURCE, "...", NULL, NULL, NULL, "pair data sets"};
      Value *bv = val_new(s, V_BUILTIN);
      bv->bi = &zipb;
      return bv;
    }
    if (!strcmp(n->name, "_")) {
      sema_error(s, n->loc, "'_' stands for any size in a tensor type, not for a value");
      return val_err(s);
    }
    return unknown_name(s, sc, n);
  }
  case N_BINARY: {
    Value *a = eval(s, sc, n->a), *b = eval(s, sc, n->b);
    return binary_op(s, n->op, a, b, n->loc);
  }
  case N_UNARY: {
    Value *a = eval(s, sc, n->a);
    if (a->kind == V_ERROR) return a;
    if (n->op == OP_NOT) {
      if (a->kind == V_BOOL) {
        Value *v = val_new(s, V_BOOL);
        v->i = !a->i;
        return v;
      }
      if (a->kind == V_TENSOR && a->dtype == DT_BOOL) {
        Value *r = val_tensor(s, DT_BOOL, &a->shape);
        if (s->lw && a->ir) r->ir = ir_binary(s->lw->g, IR_SUB, ir_const(s->lw->g, 1, n->loc), a->ir, n->loc);
        return r;
      }
      sema_error(s, n->loc, "'not' takes true/false, got %s", val_desc(s->arena, a));
      return val_err(s);
    }
    if (a->kind == V_INT) return val_int(s, -a->i);
    if (a->kind == V_FLOAT) return val_float(s, -a->f);
    if (a->kind == V_TENSOR && a->dtype != DT_BOOL) {
      Value *r = val_tensor(s, a->dtype, &a->shape);
      if (s->lw && a->ir) r->ir = ir_unary(s->lw->g, IR_NEG, a->ir, n->loc);
      return r;
    }
    if (a->kind == V_PARAMS) return a;
    sema_error(s, n->loc, "'-' is not defined for %s", val_desc(s->arena, a));
    return val_err(s);
  }
  case N_CALL: {
    /* ds.map(...) */
    Value *f = eval(s, sc, n->a);
    Args args;
    if (!eval_args(s, sc, n, &args)) return val_err(s);
    if (f->kind == V_DATASET && f->s && !strcmp(f->s, "map")) return map_data(s, f->ds, &args, n->loc);
    Loc loc = n->loc;
    loc.len = n->a->loc.len;
    if (n->a->kind == N_MEMBER) loc = n->a->loc;
    return call_value(s, sc, f, &args, loc, n);
  }
  case N_KWARG:
    sema_error(s, n->loc, "'%s: ...' is a keyword argument and goes inside a call's parentheses", n->name);
    return val_err(s);
  case N_INDEX: return eval_index(s, sc, n);
  case N_SLICE:
    sema_error(s, n->loc, "a slice a:b goes inside [ ]");
    return val_err(s);
  case N_MEMBER: return eval_member(s, sc, n);
  case N_TUPLE:
  case N_LIST: {
    Value *v = val_new(s, n->kind == N_TUPLE ? V_TUPLE : V_LIST);
    for (int i = 0; i < n->list.len; i++) {
      Value *e = eval(s, sc, n->list.items[i]);
      if (e->kind == V_ERROR) return e;
      vec_push(s->arena, &v->items, e);
    }
    return v;
  }
  case N_RANGE: {
    Value *a = eval(s, sc, n->a), *b = eval(s, sc, n->b);
    if (a->kind == V_ERROR || b->kind == V_ERROR) return val_err(s);
    if (a->kind != V_INT || b->kind != V_INT) {
      sema_error(s, n->loc, "a range a..b takes ints, got %s and %s", val_desc(s->arena, a), val_desc(s->arena, b));
      return val_err(s);
    }
    Value *v = val_new(s, V_RANGE);
    v->i = a->i;
    v->j = b->i;
    return v;
  }
  case N_SEQ: {
    Layer *seq = arena_alloc(s->arena, sizeof *seq);
    seq->kind = LK_SEQ;
    seq->type = "seq";
    seq->desc = "seq";
    seq->loc = n->loc;
    return eval_seq(s, sc, &n->list, seq);
  }
  case N_REPEAT:
    sema_error(s, n->loc, "repeat goes inside a seq { ... }");
    return val_err(s);
  case N_TYPE: case N_ASSIGN: case N_EXPR: case N_RETURN: case N_FOR: case N_STEP: case N_AFTER:
  case N_WRITE: case N_CONST: case N_MODEL: case N_METHOD: case N_PARAM: case N_BLOCK: case N_DATA:
  case N_TRAIN: case N_PREDICT: case N_PROGRAM: case N_KIND_COUNT:
    break;
  }
  NNC_UNREACHABLE("statement where an expression belongs");
}

static Value *eval(Sema *s, Scope *sc, const Node *n) {
  if (s->depth > MAX_DEPTH) {
    if (s->depth == MAX_DEPTH + 1) sema_error(s, n->loc, "expression nested too deeply");
    s->depth++;
    s->depth--;
    return val_err(s);
  }
  s->depth++;
  Value *v = eval_inner(s, sc, n);
  s->depth--;
  if (v->kind == V_ERROR) return v;
  if (!v->where) {
    /* keep where values came from, for the summary (copy shared values) */
    if (n->kind == N_CALL || n->kind == N_BINARY) v->where = n;
  }
  return v;
}

/* ---- --set overrides ------------------------------------------------------ */

static bool set_used[16];

/* The value `--set name=...` gives, or NULL. */
static Value *override_for(Sema *s, const char *name) {
  for (int i = 0; i < s->opt->nset; i++) {
    if (strcmp(s->opt->set_names[i], name)) continue;
    set_used[i] = true;
    const char *t = s->opt->set_values[i];
    char *end;
    long long iv = strtoll(t, &end, 10);
    if (*t && !*end) return val_int(s, iv);
    double fv = strtod(t, &end);
    if (*t && !*end) return val_float(s, fv);
    if (!strcmp(t, "true") || !strcmp(t, "false")) {
      Value *b = val_new(s, V_BOOL);
      b->i = t[0] == 't';
      return b;
    }
    Value *str = val_new(s, V_STRING);
    str->s = t;
    return str;
  }
  return NULL;
}

/* ---- statements ---------------------------------------------------------- */

/* The settings of train and predict blocks: where each may appear. */
typedef struct {
  const char *name;
  const char *where;   /* T train, P predict, S step */
  const char *what;    /* for messages */
} Setting;

static const Setting settings[] = {
  {"data", "TP", "the data set to train on (its fields come into scope)"},
  {"valid", "T", "a validation fraction like 0.2, or a data set"},
  {"test", "TP", "a data set to report metrics on"},
  {"seed", "TP", "the random seed (an int)"},
  {"batch", "TP", "the batch size (an int)"},
  {"epochs", "T", "the number of passes over the data (an int)"},
  {"iterations", "TP", "a number of steps instead of epochs (an int)"},
  {"early_stop", "T", "epochs without improvement before stopping (an int)"},
  {"monitor", "T", "what early stopping and save_best watch, e.g. valid.loss"},
  {"accumulate", "TS", "steps whose gradients are summed before one update (an int)"},
  {"tasks", "T", "a list of data sets trained in order"},
  {"metrics", "TPS", "a list of metrics, e.g. [accuracy(out, y)]"},
  {"save_best", "T", "a .safetensors path for the best checkpoint"},
  {"save_last", "T", "a .safetensors path for the last checkpoint"},
  {"loss", "TS", "a scalar tensor to minimise"},
  {"optimizer", "TS", "SGD(...), Adam(...), ..."},
  {"every", "S", "run this step every N batches (an int)"},
};
enum { NSETTINGS = sizeof settings / sizeof settings[0] };

static const Setting *find_setting(const char *name) {
  for (int i = 0; i < NSETTINGS; i++)
    if (!strcmp(settings[i].name, name)) return &settings[i];
  return NULL;
}

static char ctx_letter(Ctx c) { return c == CX_TRAIN ? 'T' : c == CX_PREDICT ? 'P' : c == CX_STEP ? 'S' : 0; }

static const char *ctx_name(Ctx c) {
  switch (c) {
  case CX_METHOD: return "a method";
  case CX_TRAIN: return "a train block";
  case CX_STEP: return "a step";
  case CX_AFTER: return "an after block";
  case CX_PREDICT: return "a predict block";
  case CX_DATA: return "a data block";
  case CX_WRITE: return "a write block";
  }
  return "?";
}

/* A per-sample field with the batch dimension B in front. */
static Value *batched(Sema *s, Value *v, bool tasks) {
  if (v->kind == V_RECORD) {
    Value *r = val_new(s, V_RECORD);
    for (int i = 0; i < v->items.len; i++) {
      RecField *f = v->items.items[i], *g = arena_alloc(s->arena, sizeof *g);
      g->name = f->name;
      g->val = batched(s, f->val, tasks);
      vec_push(s->arena, &r->items, g);
    }
    return r;
  }
  if (v->kind != V_TENSOR || tasks || v->shape.rank >= MAX_RANK) return v;
  Shape sh = {.rank = v->shape.rank + 1};
  sh.d[0] = dim_sym("B");
  for (int i = 0; i < v->shape.rank; i++) sh.d[i + 1] = v->shape.d[i];
  return val_tensor(s, v->dtype, &sh);
}

/* While lowering, each field of the batch is an INPUT leaf ("x", "src.x"). */
static void lower_fields(Sema *s, Value *rec, const char *prefix, Loc loc) {
  for (int i = 0; i < rec->items.len; i++) {
    RecField *f = rec->items.items[i];
    const char *name = arena_printf(s->arena, "%s%s", prefix, f->name);
    if (f->val->kind == V_RECORD) lower_fields(s, f->val, arena_printf(s->arena, "%s.", name), loc);
    else if (f->val->kind == V_TENSOR) f->val->ir = lw_input(s, &f->val->shape, f->val->dtype, name, loc);
  }
}

static void bind_fields(Sema *s, Scope *sc, Dataset *ds, Loc loc) {
  Value *rec = batched(s, ds->fields, ds->is_tasks);
  if (s->lw) lower_fields(s, rec, "", loc);
  for (int i = 0; i < rec->items.len; i++) {
    RecField *f = rec->items.items[i];
    scope_define(s, sc, f->name, f->val, loc);
  }
  if (!rec_find(rec, "index") && !ds->is_tasks) {
    Shape sh = {.rank = 1};
    sh.d[0] = dim_sym("B");
    Value *ix = val_tensor(s, DT_INT, &sh);
    if (s->lw) ix->ir = lw_input(s, &sh, DT_INT, "index", loc);
    scope_define(s, sc, "index", ix, loc);
  }
}

#define add_line sema_line
void sema_line(Sema *s, const char *fmt, ...) {
  if (!s->block || s->quiet) return;
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(s->arena, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  vec_push(s->arena, &s->block->lines, p);
}

/* Where an expression's text starts (a binary node's own location is its
 * operator, where errors point). */
static Loc expr_start(const Node *n) {
  while (n->a && (n->kind == N_BINARY || n->kind == N_CALL || n->kind == N_INDEX || n->kind == N_MEMBER ||
                  n->kind == N_RANGE))
    n = n->a;
  return n->loc;
}

/* The source text of an expression, on one line, for the summary: from its
 * start to the end of the statement, comments dropped, spaces folded. */
static const char *src_text(Sema *s, const Node *n) {
  Loc at = expr_start(n);
  size_t len;
  const char *line = source_line(at.src, at.line, &len);
  const char *p = line, *end = at.src->text + at.src->len;
  for (int c = 1; c < at.col && p < end && *p != '\n'; c++) {
    p++;
    while (p < end && ((unsigned char)*p & 0xC0) == 0x80) p++;
  }
  /* `loss = (a + b) / 2`: the expression's first operand starts after the
   * parenthesis; back up over openers to the `=` of the binding */
  const char *q = p;
  while (q > line && (q[-1] == '(' || q[-1] == ' ' || q[-1] == '\t')) q--;
  if (q > line && q[-1] == '=' && !(q - 1 > line && strchr("=!<>", q[-2]))) {
    while (q < p && (*q == ' ' || *q == '\t')) q++;
    p = q;
  }
  char buf[256];
  size_t k = 0;
  int depth = 0;
  bool in_str = false, space = false;
  while (p < end && k < sizeof buf - 4) {
    char ch = *p;
    if (!in_str && ch == '#') {
      while (p < end && *p != '\n' && *p != '\r') p++;
      continue;
    }
    if (!in_str && (ch == '\n' || ch == '\r' || ch == ';') && depth <= 0) break;
    if (ch == '"') in_str = !in_str;
    if (!in_str && (ch == '(' || ch == '[' || ch == '{')) depth++;
    if (!in_str && (ch == ')' || ch == ']' || ch == '}') && --depth < 0) break;
    if (!in_str && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')) {
      space = true;
      p++;
      continue;
    }
    if (space && k > 0 && buf[k - 1] != '(' && buf[k - 1] != '[' && ch != ')' && ch != ']') buf[k++] = ' ';
    space = false;
    buf[k++] = ch;
    p++;
  }
  buf[k] = 0;
  if (k > 90) return arena_printf(s->arena, "%.87s...", buf);
  return arena_strdup(s->arena, buf);
}

static bool check_setting(Sema *s, const char *name, Value *v, Loc loc, Scope *sc, Ctx ctx) {
  if (v->kind == V_ERROR) return false;
  bool pos_int = !strcmp(name, "batch") || !strcmp(name, "epochs") || !strcmp(name, "iterations") ||
                 !strcmp(name, "early_stop") || !strcmp(name, "accumulate") || !strcmp(name, "every");
  if (pos_int && (v->kind != V_INT || v->i <= 0)) {
    sema_error(s, loc, "'%s' is %s; got %s", name, find_setting(name)->what, val_desc(s->arena, v));
    if (v->kind == V_INT) sema_hint(s, "it must be at least 1");
    return false;
  }
  if (!strcmp(name, "seed") && (v->kind != V_INT || v->i < 0)) {
    sema_error(s, loc, "'seed' is a non-negative int, got %s", val_desc(s->arena, v));
    return false;
  }
  if (!strcmp(name, "data") || !strcmp(name, "test")) {
    if (v->kind != V_DATASET) {
      sema_error(s, loc, "'%s' must be a data set, got %s", name, val_desc(s->arena, v));
      if (v->kind == V_BUILTIN && v->bi->kind == BK_SOURCE) sema_hint(s, "call it: %s(...)", v->bi->name);
      return false;
    }
    if (!strcmp(name, "data")) {
      bind_fields(s, sc, v->ds, loc);
      add_line(s, "data       %s%s", v->ds->desc,
               v->ds->rows >= 0 ? arena_printf(s->arena, ", %s samples", count_str(s->arena, v->ds->rows)) : "");
      for (int i = 0; i < v->ds->transforms.len; i++) add_line(s, "  transform %s", (char *)v->ds->transforms.items[i]);
      char buf[512];
      size_t k = 0;
      Value *rec = batched(s, v->ds->fields, v->ds->is_tasks);
      for (int i = 0; i < rec->items.len && k < sizeof buf - 80; i++) {
        RecField *f = rec->items.items[i];
        if (f->val->kind == V_TENSOR)
          k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s %s", k ? ", " : "", f->name,
                                ttype_str(s->arena, f->val->dtype, &f->val->shape));
        else
          k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s.*", k ? ", " : "", f->name);
      }
      if (k) add_line(s, "  fields   %s", buf);
    } else {
      add_line(s, "test       %s", v->ds->desc);
    }
    return true;
  }
  if (!strcmp(name, "valid")) {
    if (val_is_number(v) && val_num(v) > 0 && val_num(v) < 1) {
      add_line(s, "valid      %g%% of the data held out", val_num(v) * 100);
      return true;
    }
    if (v->kind == V_DATASET) {
      add_line(s, "valid      %s", v->ds->desc);
      return true;
    }
    sema_error(s, loc, "'valid' is a fraction in (0, 1) like 0.2, or a data set; got %s", val_desc(s->arena, v));
    return false;
  }
  if (!strcmp(name, "tasks")) {
    if (v->kind != V_LIST || v->items.len == 0) {
      sema_error(s, loc, "'tasks' is a non-empty list of data sets, got %s", val_desc(s->arena, v));
      return false;
    }
    for (int i = 0; i < v->items.len; i++) {
      Value *t = v->items.items[i];
      if (t->kind != V_DATASET) {
        sema_error(s, loc, "task %d is %s, not a data set", i, val_desc(s->arena, t));
        return false;
      }
    }
    Dataset *first = ((Value *)v->items.items[0])->ds;
    bind_fields(s, sc, first, loc);
    add_line(s, "tasks      %d, in order: %s, ...", v->items.len, first->desc);
    return true;
  }
  if (!strcmp(name, "metrics")) {
    Value *one = v;
    int n = v->kind == V_LIST ? v->items.len : 1;
    char buf[256];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
      Value *m = v->kind == V_LIST ? v->items.items[i] : one;
      if (m->kind != V_METRIC) {
        sema_error(s, loc, "'metrics' lists metrics like accuracy(logits, y); item %d is %s", i, val_desc(s->arena, m));
        if (m->kind == V_TENSOR) sema_hint(s, "to average any value over the data use mean_of(...)");
        return false;
      }
      if (k < sizeof buf - 40) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", m->s);
    }
    add_line(s, "%-10s %s", ctx == CX_STEP ? "  metrics" : "metrics", buf);
    return true;
  }
  if (!strcmp(name, "save_best") || !strcmp(name, "save_last")) {
    size_t n = v->kind == V_STRING ? strlen(v->s) : 0;
    if (n < 12 || strcmp(v->s + n - 12, ".safetensors")) {
      sema_error(s, loc, "'%s' is a path ending in .safetensors, got %s", name, val_desc(s->arena, v));
      return false;
    }
    add_line(s, "%-10s %s", name, v->s);
    return true;
  }
  if (!strcmp(name, "loss")) {
    if (v->kind != V_TENSOR || v->shape.rank != 0 || v->dtype != DT_FLOAT) {
      sema_error(s, loc, "'loss' must be a scalar float, got %s", val_desc(s->arena, v));
      if (v->kind == V_TENSOR && v->shape.rank > 0) sema_hint(s, "reduce it: mean(...), or a loss without reduction: \"none\"");
      return false;
    }
    return true;
  }
  if (!strcmp(name, "optimizer")) {
    if (v->kind != V_OPTIMIZER) {
      sema_error(s, loc, "'optimizer' must be an optimizer like Adam(net, lr: 1e-3), got %s", val_desc(s->arena, v));
      if (v->kind == V_BUILTIN && v->bi->kind == BK_OPTIM) sema_hint(s, "call it with the model: %s(net, lr: ...)", v->bi->name);
      return false;
    }
    return true;
  }
  if (!strcmp(name, "monitor")) return true;
  return true;
}

/* monitor = valid.loss / train.accuracy / valid.auc: checked by its words */
static bool check_monitor(Sema *s, const Node *e) {
  if (e->kind == N_MEMBER && e->a->kind == N_NAME &&
      (!strcmp(e->a->name, "valid") || !strcmp(e->a->name, "train") || !strcmp(e->a->name, "test"))) {
    add_line(s, "monitor    %s.%s", e->a->name, e->name);
    return true;
  }
  sema_error(s, e->loc, "'monitor' names a split and a quantity, like valid.loss or valid.accuracy");
  return false;
}

static void exec_stmt(Sema *s, Scope *sc, const Node *st, Exec *ex);

static void exec_stmts(Sema *s, Scope *sc, const Vec *stmts, Exec *ex) {
  for (int i = 0; i < stmts->len; i++) {
    const Node *st = stmts->items[i];
    if (ex->returned) {
      sema_warn(s, st->loc, "this statement comes after return and never runs");
      break;
    }
    exec_stmt(s, sc, st, ex);
    if (diag_full(s->diag)) return;
  }
}

static bool effect_call(Sema *s, Scope *sc, const Node *e) {
  (void)s;
  if (e->kind != N_CALL || e->a->kind != N_NAME) return false;
  if (scope_lookup(sc, e->a->name, NULL)) return false;
  const Builtin *b = builtin_find(e->a->name);
  return b && b->kind == BK_MODELFN;
}

static void summarize_step(Sema *s, Scope *sc, const Node *loss_node, const char *indent);

/* While a train block of several steps is lowered, only the step being
 * compiled builds nodes: the others are checked as usual with no graph
 * attached (a step before it leaves its optimizer, whose state the
 * compiled step places first). The evaluation and after steps lower none. */
static void exec_step(Sema *s, Scope *sc, const Node *st, Ctx ctx, Exec *parent) {
  (void)parent;
  Scope *body = scope_new(s, sc);
  vec_push(s->arena, &boundaries, body);   /* a step's bindings are its own */
  Exec ex = {.ctx = ctx};
  Lowering *lw = s->lw;
  int index = s->steps_seen, want = s->opt->lower_step > 0 ? s->opt->lower_step - 1 : 0;
  bool lowered = lw && ctx == CX_STEP && lw->training && !s->opt->lower_after && index == want;
  if (!lowered) s->lw = NULL;
  if (ctx == CX_STEP) add_line(s, "step %s", st->name);
  exec_stmts(s, body, &st->list, &ex);
  s->lw = lw;
  if (ctx != CX_STEP) return;
  int li = scope_find(body, "loss"), oi = scope_find(body, "optimizer");
  if (lowered) {
    int ei = scope_find(body, "every");
    lw->step_name = st->name;
    lw->step_scope = body;
    lw->every = ei >= 0 && ((Value *)body->vals.items[ei])->kind == V_INT ? ((Value *)body->vals.items[ei])->i : 1;
  } else if (lw && lw->training && !s->opt->lower_after && index < want && oi >= 0) {
    vec_push(s->arena, &lw->prior_opts, body->vals.items[oi]);
    vec_push(s->arena, &lw->prior_steps, (void *)st->name);
  }
  if (li < 0) {
    sema_error(s, st->loc, "step '%s' has no loss", st->name);
    sema_hint(s, "set it in the step: loss = ...");
  }
  if (oi < 0) {
    sema_error(s, st->loc, "step '%s' has no optimizer", st->name);
    sema_hint(s, "say what the step updates: optimizer = Adam(model, lr: ...)");
  }
  s->steps_seen++;
  const Node *loss_node = NULL;
  for (int i = 0; i < st->list.len; i++) {
    const Node *x = st->list.items[i];
    if (x->kind == N_ASSIGN && x->list.len == 1 && !strcmp(((Node *)x->list.items[0])->name, "loss")) loss_node = x->a;
  }
  summarize_step(s, body, loss_node, "  ");
}

static void summarize_step(Sema *s, Scope *sc, const Node *loss_node, const char *indent) {
  int li = scope_find(sc, "loss"), oi = scope_find(sc, "optimizer");
  if (li >= 0 && loss_node) add_line(s, "%s%-10s %s", indent, "loss", src_text(s, loss_node));
  if (oi >= 0) {
    Value *o = sc->vals.items[oi];
    if (o->kind != V_OPTIMIZER) return;
    char buf[256];
    size_t k = 0;
    int64_t total = 0;
    for (int i = 0; i < o->opt->targets.len && k < sizeof buf - 64; i++) {
      Value *t = o->opt->targets.items[i];
      const char *nm = t->kind == V_TENSOR ? "a variable" : t->layer->type;
      if (t->kind != V_TENSOR) total += t->layer->params;
      else {
        Dim n;
        if (shape_numel(&t->shape, 0, &n) && dim_known(n)) total += n.c;
      }
      k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", nm);
    }
    add_line(s, "%s%-10s %s on %s (%s parameters)", indent, "optimizer", o->opt->desc, buf, count_str(s->arena, total));
  }
}

static void exec_stmt(Sema *s, Scope *sc, const Node *st, Exec *ex) {
  switch (st->kind) {
  case N_ASSIGN: {
    const Node *t0 = st->list.items[0];
    char cl = ctx_letter(ex->ctx);
    if (st->list.len == 1 && !strcmp(t0->name, "monitor") && cl == 'T') {
      if (check_monitor(s, st->a)) {
        Value *m = val_new(s, V_STRING);   /* the quantity: "loss", "accuracy" */
        m->s = st->a->name;
        scope_define(s, sc, "monitor", m, st->loc);
      }
      return;
    }
    Value *v = eval(s, sc, st->a);
    if (st->list.len == 1 && (ex->ctx == CX_TRAIN || ex->ctx == CX_PREDICT || ex->ctx == CX_STEP)) {
      Value *o = override_for(s, t0->name);
      if (o) v = o;
    }
    if (st->list.len > 1) {
      if (v->kind == V_ERROR) {
        for (int i = 0; i < st->list.len; i++)
          scope_assign(s, sc, ((Node *)st->list.items[i])->name, v, st->loc);
        return;
      }
      if (v->kind != V_TUPLE || v->items.len != st->list.len) {
        sema_error(s, st->a->loc, "%d names on the left, but the right side is a %s", st->list.len, val_desc(s->arena, v));
        for (int i = 0; i < st->list.len; i++)
          scope_assign(s, sc, ((Node *)st->list.items[i])->name, val_err(s), st->loc);
        return;
      }
      for (int i = 0; i < st->list.len; i++) {
        const Node *t = st->list.items[i];
        if (strcmp(t->name, "_")) scope_assign(s, sc, t->name, v->items.items[i], t->loc);
      }
      return;
    }
    const Setting *set = find_setting(t0->name);
    if (cl && set) {
      if (!strchr(set->where, cl)) {
        sema_error(s, t0->loc, "'%s' cannot be set in %s", t0->name, ctx_name(ex->ctx));
        if (cl == 'S') sema_hint(s, "set it in the train block around the steps");
        else if (cl == 'P') sema_hint(s, "'%s' belongs in a train block", t0->name);
      } else if (!check_setting(s, t0->name, v, st->a->loc, sc, ex->ctx)) {
        v = val_err(s);
      } else if (val_is_number(v) && strcmp(t0->name, "valid")) {
        add_line(s, "%s%-10s %s", ex->ctx == CX_STEP ? "  " : "", t0->name, v->kind == V_INT ? arena_printf(s->arena, "%lld", (long long)v->i)
                                                          : arena_printf(s->arena, "%g", val_num(v)));
      }
    }
    if (ex->ctx == CX_DATA && v->kind != V_ERROR) {
      /* a field of a data set */
      Dataset *ds = ex->ds;
      Value *field = v;
      if (v->kind == V_COLUMN) {
        if (strcmp(ds->source, "csv")) {
          sema_error(s, st->a->loc, "col()/cols() select columns of a csv data set");
          return;
        }
        if (ds->ncols >= 0 && v->j >= ds->ncols) {
          sema_error(s, st->a->loc, "column %lld is out of range: '%s' has %lld columns (0..%lld)", (long long)v->j,
                     ds->path, (long long)ds->ncols, (long long)ds->ncols - 1);
          sema_hint(s, "columns count from 0; col 0 is usually the id");
          return;
        }
        Shape sh = {0};
        if (v->str2) {
          sh.rank = 1;
          sh.d[0] = dim_int((int64_t)v->f);
        }
        field = val_tensor(s, v->dtype, &sh);
      } else if (val_is_number(v)) {
        Shape sh = {0};
        field = val_tensor(s, v->kind == V_FLOAT ? DT_FLOAT : DT_INT, &sh);
      } else if (v->kind != V_TENSOR) {
        sema_error(s, st->a->loc, "a data field is a column selection or a tensor, got %s", val_desc(s->arena, v));
        return;
      } else if (!strcmp(ds->source, "csv")) {
        sema_error(s, st->a->loc, "fields of a csv data set are columns: col(i), cols(a..b) or label(i)");
        return;
      }
      if (field->kind == V_TENSOR && field->trainable) {
        sema_error(s, st->a->loc, "a data field cannot be a trainable variable");
        sema_hint(s, "variables belong in a model or a train block; data fields are samples, e.g. randn([4])");
        return;
      }
      if (field->kind == V_TENSOR && field->dtype == DT_TEXT) {
        sema_error(s, st->a->loc, "a data field holds numbers, got text");
        return;
      }
      RecField *f = rec_find(ds->fields, t0->name);
      if (f) {
        sema_error(s, t0->loc, "field '%s' is defined twice", t0->name);
        return;
      }
      f = arena_alloc(s->arena, sizeof *f);
      f->name = t0->name;
      f->val = field;
      if (val_is_number(v)) {
        f->is_const = true;
        f->cval = val_num(v);
      }
      if (v->kind == V_COLUMN) {
        f->is_column = true;
        f->col_first = v->i;
        f->col_last = v->j;
        f->col_ranges = v->items;
        f->is_label = v->dtype == DT_INT;
      }
      vec_push(s->arena, &ds->fields->items, f);
      scope_define(s, sc, t0->name, field, t0->loc);
      return;
    }
    if (ex->ctx == CX_WRITE && v->kind != V_ERROR) {
      if (v->kind != V_TENSOR || v->shape.rank < 1 || v->shape.rank > 2 ||
          (v->shape.rank == 2 && !dim_eq(v->shape.d[1], dim_int(1)))) {
        if (!(v->kind == V_TENSOR && v->dtype == DT_INT && v->shape.rank == 1) && !val_is_number(v) && v->kind != V_STRING) {
          sema_error(s, st->a->loc, "a CSV column holds one value per sample ([B] or [B, 1]), got %s",
                     val_desc(s->arena, v));
          if (v->kind == V_TENSOR && v->shape.rank == 2) sema_hint(s, "argmax(logits, -1) gives one class per sample");
          return;
        }
      }
      if (ex->wfields) {
        RecField *f = arena_alloc(s->arena, sizeof *f);
        f->name = t0->name;
        f->val = v;
        vec_push(s->arena, &ex->wfields->items, f);
      }
    }
    scope_assign(s, sc, t0->name, v, t0->loc);
    return;
  }
  case N_EXPR: {
    Value *v = eval(s, sc, st->a);
    if (v->kind != V_ERROR && v->kind != V_NONE && !effect_call(s, sc, st->a))
      sema_warn(s, st->loc, "this value is computed and then dropped");
    return;
  }
  case N_RETURN:
    if (ex->ctx != CX_METHOD) {
      sema_error(s, st->loc, "return is only allowed in a model's method, not in %s", ctx_name(ex->ctx));
      return;
    }
    ex->ret = eval(s, sc, st->a);
    ex->ret_loc = st->a->loc;
    ex->returned = true;
    return;
  case N_FOR: {
    Value *over = eval(s, sc, st->a);
    if (over->kind == V_ERROR) return;
    int64_t n = over->kind == V_RANGE ? over->j - over->i + 1 : (over->kind == V_LIST || over->kind == V_TUPLE) ? over->items.len : -1;
    if (n < 0) {
      sema_error(s, st->a->loc, "for runs over a range a..b or a list, got %s", val_desc(s->arena, over));
      if (over->kind == V_INT && over->i > 0) sema_hint(s, "to run %lld times write 0..%lld (ranges include both ends)", (long long)over->i, (long long)over->i - 1);
      return;
    }
    if (n > MAX_UNROLL) {
      sema_error(s, st->a->loc, "a loop of %lld iterations is too long to unroll (at most %d)", (long long)n, MAX_UNROLL);
      return;
    }
    for (int64_t k = 0; k < n; k++) {
      Scope *body = scope_new(s, sc);
      scope_define(s, body, st->name, over->kind == V_RANGE ? val_int(s, over->i + k) : over->items.items[k], st->loc);
      if (k > 0) s->quiet++;
      exec_stmts(s, body, &st->list, ex);
      if (k > 0) s->quiet--;
      if (ex->returned) break;
    }
    return;
  }
  case N_STEP:
    if (ex->ctx != CX_TRAIN) {
      sema_error(s, st->loc, "a step belongs directly in a train block, not in %s", ctx_name(ex->ctx));
      return;
    }
    exec_step(s, sc, st, CX_STEP, ex);
    return;
  case N_AFTER: {
    static const char *const whens[] = {"epoch", "task", "train", "batch"};
    if (ex->ctx != CX_TRAIN) {
      sema_error(s, st->loc, "after %s belongs directly in a train block", st->name);
      return;
    }
    bool ok = false;
    for (int i = 0; i < 4; i++) ok |= !strcmp(st->name, whens[i]);
    if (!ok) {
      const char *near = closest_name(st->name, whens, 4);
      sema_error(s, st->loc, "after what? '%s' is not epoch, task, batch or train%s%s%s", st->name,
                 near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
      return;
    }
    add_line(s, "after %s:", st->name);
    Exec ax = {.ctx = CX_AFTER};
    s->after_when = st->name;
    exec_stmts(s, sc, &st->list, &ax);
    s->after_when = NULL;
    return;
  }
  case N_WRITE: {
    if (ex->ctx == CX_METHOD || ex->ctx == CX_DATA || ex->ctx == CX_WRITE) {
      sema_error(s, st->loc, "write belongs in a train, predict or after block, not in %s", ctx_name(ex->ctx));
      return;
    }
    const Node *call = st->a;
    if (call->kind != N_CALL || call->a->kind != N_NAME) {
      sema_error(s, call->loc, "write takes a writer: csv(\"file.csv\") { ... }, png(...) or png_grid(...)");
      return;
    }
    const Builtin *b = builtin_find_kind(call->a->name, BK_WRITER);
    if (!b) {
      static const char *const ws[] = {"csv", "png", "png_grid"};
      const char *near = closest_name(call->a->name, ws, 3);
      sema_error(s, call->a->loc, "'%s' is not a writer (csv, png, png_grid)%s%s%s", call->a->name,
                 near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
      return;
    }
    Args a;
    if (!eval_args(s, sc, call, &a)) return;
    Call c;
    if (!builtin_bind(s, b, call->loc, &a, &c)) return;
    Value *w = b->fn(s, b, &c);
    if (w->kind == V_ERROR) return;
    bool is_csv = !strcmp(b->name, "csv_writer");
    if (is_csv && st->list.len == 0) {
      sema_error(s, st->loc, "write csv(...) needs its columns: write csv(\"pred.csv\") { id = index; y = pred }");
      return;
    }
    if (!is_csv && st->list.len) {
      sema_error(s, st->loc, "%s takes no column block", b->name);
      return;
    }
    Exec wx = {.ctx = CX_WRITE, .wfields = val_new(s, V_RECORD)};
    Scope *body = scope_new(s, sc);
    vec_push(s->arena, &boundaries, body);   /* the columns are the write's own */
    exec_stmts(s, body, &st->list, &wx);
    char cols[256] = "";
    size_t k = 0;
    for (int i = 0; i < wx.wfields->items.len && k < sizeof cols - 40; i++)
      k += (size_t)snprintf(cols + k, sizeof cols - k, "%s%s", i ? "," : "", ((RecField *)wx.wfields->items.items[i])->name);
    add_line(s, "%swrite      %s%s%s", ex->ctx == CX_AFTER ? "  " : "", w->str2, k ? " with columns " : "", cols);
    if (s->lw && ex->ctx == CX_AFTER && is_csv) {
      lw_unsupported(s, st->loc, "write csv(...) after an epoch or training");
      return;
    }
    if (s->lw && !is_csv && (ex->ctx == CX_PREDICT || (ex->ctx == CX_AFTER && s->opt->lower_after))) {
      Value *im = c.arg[1];
      if (im->kind != V_TENSOR || !im->ir) {
        sema_error(s, st->loc, "the images of %s cannot be computed by the compiler yet", b->name);
        s->lw->failed = true;
        return;
      }
      vec_push(s->arena, &s->lw->png_paths, (void *)resolve_path(s, w->str2));
      vec_push(s->arena, &s->lw->png_rows, (void *)(intptr_t)(strcmp(b->name, "png_grid") ? 0 : c.arg[2]->i));
      vec_push(s->arena, &s->lw->png_when, (void *)(s->after_when ? s->after_when : "predict"));
      ir_output(s->lw->g, im->ir, arena_printf(s->arena, "image%d", s->lw->png_paths.len - 1));
    }
    if (s->lw && is_csv && ex->ctx == CX_PREDICT) {
      s->lw->write_path = resolve_path(s, w->str2);
      for (int i = 0; i < wx.wfields->items.len; i++) {
        RecField *f = wx.wfields->items.items[i];
        if (f->val->kind != V_TENSOR || !f->val->ir) {
          sema_error(s, st->loc, "column '%s' cannot be computed by the compiler yet", f->name);
          s->lw->failed = true;
          continue;
        }
        vec_push(s->arena, &s->lw->write_cols, (void *)f->name);
        vec_push(s->arena, &s->lw->write_int, f->val->dtype != DT_FLOAT ? (void *)1 : NULL);
        ir_output(s->lw->g, f->val->ir, f->name);
      }
    }
    return;
  }
  case N_DATA: {
    Value *v = eval(s, sc, st->a);
    if (v->kind != V_ERROR && v->kind != V_DATASET && v->kind != V_ENV) {
      sema_error(s, st->a->loc, "data %s = ... needs a data source like csv(...) or fashion_mnist(), got %s", st->name,
                 val_desc(s->arena, v));
      v = val_err(s);
    }
    if (v->kind == V_ENV && st->list.len) {
      sema_error(s, st->loc, "an environment has no field block");
      v = val_err(s);
    }
    if (v->kind == V_DATASET) {
      Dataset *copy = arena_alloc(s->arena, sizeof *copy);
      *copy = *v->ds;
      v = val_new(s, V_DATASET);
      v->ds = copy;
      bool needs_fields = !strcmp(copy->source, "csv") || !strcmp(copy->source, "generate");
      if (st->list.len) {
        data_fields(s, copy, st);
      } else if (needs_fields && copy->fields->items.len == 0) {
        sema_error(s, st->loc, "data %s needs a field block naming its fields", st->name);
        sema_hint(s, "%s", !strcmp(copy->source, "csv") ? "e.g. { x = cols(1..116); y = col(117) }"
                                                          : "e.g. { x = randn([4]); y = randint([], 0, 2) }");
        v = val_err(s);
      }
    }
    scope_define(s, sc, st->name, v, st->loc);
    return;
  }
  case N_INT: case N_FLOAT: case N_STRING: case N_BOOL: case N_NAME: case N_BINARY: case N_UNARY: case N_CALL:
  case N_KWARG: case N_INDEX: case N_SLICE: case N_MEMBER: case N_TUPLE: case N_LIST: case N_RANGE: case N_SEQ:
  case N_REPEAT: case N_TYPE: case N_CONST: case N_MODEL: case N_METHOD: case N_PARAM: case N_BLOCK:
  case N_TRAIN: case N_PREDICT: case N_PROGRAM: case N_KIND_COUNT:
    break;
  }
  NNC_UNREACHABLE("not a statement");
}

void data_fields(Sema *s, Dataset *ds, const Node *decl) {
  /* csv and generate data are made of their fields; other sources have
   * fields of their own, which the block can use to add more */
  bool fresh = !strcmp(ds->source, "csv") || !strcmp(ds->source, "generate");
  Value *old = ds->fields;
  ds->fields = val_new(s, V_RECORD);
  Scope *sc = scope_new(s, s->globals);
  if (!fresh) {
    for (int i = 0; i < old->items.len; i++) {
      RecField *f = old->items.items[i];
      vec_push(s->arena, &ds->fields->items, f);
      scope_define(s, sc, f->name, f->val, decl->loc);
    }
  }
  Exec ex = {.ctx = CX_DATA, .ds = ds};
  int errors_before = s->diag->nerrors;
  s->in_data++;
  exec_stmts(s, sc, &decl->list, &ex);
  s->in_data--;
  if (ds->fields->items.len == 0 && !s->quiet && s->diag->nerrors == errors_before) {
    sema_error(s, decl->loc, "data %s has no fields", decl->name);
    sema_hint(s, "name them: { x = cols(1..116); y = col(117) }");
  }
}

/* ---- train and predict blocks -------------------------------------------- */

static void check_unused_settings(Sema *s, Scope *sc, Ctx ctx) {
  const char *names[NSETTINGS];
  int n = 0;
  char cl = ctx_letter(ctx);
  for (int i = 0; i < NSETTINGS; i++)
    if (strchr(settings[i].where, cl)) names[n++] = settings[i].name;
  for (int i = 0; i < sc->names.len; i++) {
    const char *nm = sc->names.items[i];
    Value *v = sc->vals.items[i];
    if (find_setting(nm) || !(val_is_number(v) || v->kind == V_STRING)) continue;
    const char *near = closest_name(nm, names, n);
    if (near) {
      sema_error(s, *(Loc *)sc->locs.items[i], "'%s' is not a setting of %s; did you mean '%s'?", nm, ctx_name(ctx), near);
    }
  }
}

/* The block's metrics as outputs of the step: a per-batch mean is one
 * output named by the metric; a metric over the whole data set (auc) is
 * its per-sample scores, named by the metric, then its labels, named
 * "NAME#label", which the runtime collects over every batch. */
static void output_metrics(Sema *s, Scope *sc) {
  Lowering *lw = s->lw;
  int mi = scope_find(sc, "metrics");
  if (mi < 0) return;
  Value *m = sc->vals.items[mi];
  int n = m->kind == V_LIST ? m->items.len : 1;
  for (int k = 0; k < n; k++) {
    Value *e = m->kind == V_LIST ? m->items.items[k] : m;
    if (e->kind != V_METRIC || !e->ir) continue;
    /* the same metric twice (accuracy before and after an attack): accuracy, accuracy_2, ... */
    const char *name = e->s;
    for (int seen = 1, again = 1; again;) {
      again = 0;
      for (int i = 0; i < lw->metric_names.len; i++)
        if (!strcmp(lw->metric_names.items[i], name)) again = 1;
      if (again) name = arena_printf(s->arena, "%s_%d", e->s, ++seen);
    }
    vec_push(s->arena, &lw->metrics, e->ir);
    vec_push(s->arena, &lw->metric_names, (void *)name);
    ir_output(lw->g, e->ir, name);
    if (e->items.len == 1) ir_output(lw->g, ((Value *)e->items.items[0])->ir, arena_printf(s->arena, "%s#label", name));
    if (!strcmp(e->s, "max_of")) ir_output(lw->g, e->ir, arena_printf(s->arena, "%s#max", name));
  }
}

/* The prefix of the parameter names of the block's model i: "" when it is
 * the block's only owner of parameters, else its variable's name
 * ("teacher."), as when the block has several models or also optimises a
 * variable of its own (an input image). */
static const char *model_prefix(Sema *s, Scope *sc, BlockInfo *bi, int i) {
  bool alone = bi->models.len == 1;
  for (int k = 0; alone && k < sc->vals.len; k++) {
    Value *v = sc->vals.items[k];
    alone = !(v->kind == V_TENSOR && v->trainable && v->ir && v->ir->op == IR_PARAM);
  }
  return alone ? "" : arena_printf(s->arena, "%s.", (char *)bi->model_vars.items[i]);
}

/* Each load(model, file) of the block fills the parameters named with its
 * model's prefix (model_prefix: "teacher." or ""), and the model's variable
 * name is kept too: a checkpoint saved by a block of several models names
 * its tensors "student.conv1.weight". */
static void load_prefixes(Sema *s, Scope *sc, BlockInfo *bi) {
  Lowering *lw = s->lw;
  for (int k = 0; k < lw->load_layers.len; k++) {
    const char *prefix = "", *var = "";
    for (int i = 0; i < bi->models.len; i++)
      if (bi->models.items[i] == lw->load_layers.items[k]) {
        var = bi->model_vars.items[i];
        prefix = model_prefix(s, sc, bi, i);
      }
    vec_push(s->arena, &lw->load_prefixes, (void *)prefix);
    vec_push(s->arena, &lw->load_vars, (void *)var);
  }
}

/* The end of lowering a train block: parameter names, the outputs (loss,
 * metrics), and, for a training step, autodiff and the optimizer update. */
static void finish_lowering(Sema *s, const Node *blk, Scope *sc, BlockInfo *bi, int nsteps) {
  Lowering *lw = s->lw;
  if (s->diag->nerrors > 0 || lw->failed) return;
  if (blk->kind == N_PREDICT) {
    for (int i = 0; i < bi->models.len; i++)
      lw_name_params(s, bi->models.items[i], model_prefix(s, sc, bi, i));
    int di = scope_find(sc, "data");
    lw->data = di >= 0 ? sc->vals.items[di] : NULL;
    lw->scope = sc;
    lw->spec_dir = s->spec_dir;
    if (!lw->write_path && !lw->png_paths.len) {
      sema_error(s, blk->loc, "this predict block writes no file (write csv(...) or png_grid(...)), so there is nothing to compute");
      lw->failed = true;
      return;
    }
    load_prefixes(s, sc, bi);
    output_metrics(s, sc);
    s->prog->lowered = lw;
    return;
  }
  for (int i = 0; i < bi->models.len; i++)
    lw_name_params(s, bi->models.items[i], model_prefix(s, sc, bi, i));
  load_prefixes(s, sc, bi);   /* a frozen teacher: load(teacher, ...) before training */
  /* a variable of the block (an input being optimised) takes its binding's name */
  for (int k = 0; k < sc->names.len; k++) {
    Value *v = sc->vals.items[k];
    if (v->kind == V_TENSOR && v->ir && v->ir->op == IR_PARAM && !v->ir->name) v->ir->name = sc->names.items[k];
  }
  for (int k = 0; k < lw->params.len; k++) {
    IrNode *p = lw->params.items[k];
    if (!p->name) p->name = arena_printf(s->arena, "param%d", k);
  }
  if (s->opt->lower_after || (nsteps > 0 && !lw->training)) {
    /* the after writes alone: their images are the outputs, nothing is
     * updated; a block of several steps has no evaluation step either */
    int di = scope_find(sc, "data");
    lw->data = di >= 0 ? sc->vals.items[di] : NULL;
    lw->scope = sc;
    lw->spec_dir = s->spec_dir;
    s->prog->lowered = lw;
    return;
  }
  /* a block of several steps: the loss, optimizer and metrics of the step lowered */
  Scope *ls = nsteps > 0 ? lw->step_scope : sc;
  if (!ls) {
    sema_error(s, blk->loc, "this train block has %d steps, not %d", nsteps, s->opt->lower_step);
    lw->failed = true;
    return;
  }
  if (nsteps > 0 && lw->prune_layers.len) {
    lw_unsupported(s, *(Loc *)lw->prune_locs.items[0], "prune(...) in a train block of several steps");
    return;
  }
  int li = scope_find(ls, "loss");
  Value *loss = li >= 0 ? ls->vals.items[li] : NULL;
  if (!loss || !loss->ir) {
    sema_error(s, nsteps > 0 && li >= 0 ? *(Loc *)ls->locs.items[li] : blk->loc,
               "the loss of this %s does not depend on the data, so it cannot be trained",
               nsteps > 0 ? "step" : "block");
    lw->failed = true;
    return;
  }
  lw->loss = loss->ir;
  ir_output(lw->g, loss->ir, "loss");
  output_metrics(s, ls);
  int oi = scope_find(ls, "optimizer"), di = scope_find(sc, "data");
  lw->optimizer = oi >= 0 ? ls->vals.items[oi] : NULL;
  lw->data = di >= 0 ? sc->vals.items[di] : NULL;
  lw->scope = sc;
  lw->spec_dir = s->spec_dir;
  if (s->opt->lower_update && lw->optimizer && lw->optimizer->kind == V_OPTIMIZER) {
    /* the update's nodes point at the optimizer's line */
    Loc at = lw->optimizer->where ? lw->optimizer->where->loc : blk->loc;
    /* each step of several keeps its optimizer's state under its name
     * ("generator.step", "generator.G.l1.0.weight.exp_avg"), after the
     * state of the steps before it */
    for (int k = 0; k < lw->prior_opts.len; k++) {
      Value *o = lw->prior_opts.items[k];
      if (o->kind == V_OPTIMIZER)
        lw_declare_opt_state(s, o, arena_printf(s->arena, "%s.", (char *)lw->prior_steps.items[k]), o->where ? o->where->loc : at);
    }
    if (nsteps > 0) lw->state_prefix = arena_printf(s->arena, "%s.", lw->step_name);
    lw->failed |= !lw_finish_step(s, lw->loss, lw->optimizer, at);
  }
  s->prog->lowered = lw;
}

static void check_block(Sema *s, const Node *blk) {
  bool train = blk->kind == N_TRAIN;
  BlockInfo *bi = arena_alloc(s->arena, sizeof *bi);
  bi->is_train = train;
  bi->name = blk->name;
  bi->loc = blk->loc;
  vec_push(s->arena, &s->prog->blocks, bi);
  s->block = bi;
  s->steps_seen = 0;
  int models_before = s->prog->models.len;
  /* a step's name names its optimizer's state and its loss in the log */
  for (int i = 0; i < blk->list.len; i++) {
    const Node *st = blk->list.items[i];
    for (int k = 0; st->kind == N_STEP && k < i; k++) {
      const Node *before = blk->list.items[k];
      if (before->kind == N_STEP && !strcmp(before->name, st->name)) {
        sema_error(s, st->loc, "step '%s' is defined twice (line %d)", st->name, before->loc.line);
        sema_hint(s, "give each step a name of its own: step discriminator { ... }, step generator { ... }");
        break;
      }
    }
  }

  Scope *sc = scope_new(s, s->globals);
  vec_push(s->arena, &boundaries, sc);
  scope_define(s, sc, "B", sym_value(s, "B"), blk->loc);
  if (s->lw) {
    /* what training cannot do yet is refused before the walk, by name */
    bool has_data = false;
    for (int i = 0; i < blk->list.len; i++) {
      const Node *st = blk->list.items[i];
      has_data |= st->kind == N_ASSIGN && st->list.len == 1 && !strcmp(((Node *)st->list.items[0])->name, "data");
    }
    int nsteps = 0;
    for (int i = 0; i < blk->list.len; i++) nsteps += ((Node *)blk->list.items[i])->kind == N_STEP;
    s->lw->nsteps = nsteps;
    for (int i = 0; i < blk->list.len; i++) {
      const Node *st = blk->list.items[i];
      const char *what = NULL, *nm = st->kind == N_ASSIGN && st->list.len == 1 ? ((Node *)st->list.items[0])->name : "";
      /* a block of several steps has no one loss to validate, monitor or keep the best of */
      static const char *const one_loss[] = {"valid", "test", "early_stop", "monitor", "save_best", "metrics"};
      for (int k = 0; k < 6 && nsteps > 0; k++)
        if (!strcmp(nm, one_loss[k])) what = arena_printf(s->arena, "the setting '%s' in a train block of several steps", nm);
      for (int k = 0; st->kind == N_STEP && k < st->list.len && !what; k++) {
        const Node *x = st->list.items[k];
        if (x->kind == N_ASSIGN && x->list.len == 1 && !strcmp(((Node *)x->list.items[0])->name, "accumulate")) {
          st = x;
          what = "the setting 'accumulate'";
        }
      }
      if (what) {
        /* said above */
      } else if (st->kind == N_STEP && nsteps > RT_MAX_STEPS) {
        what = arena_printf(s->arena, "a train block of more than %d steps", RT_MAX_STEPS);
      } else if (st->kind == N_AFTER && strcmp(st->name, "epoch") != 0 && strcmp(st->name, "train") != 0) {
        what = arena_printf(s->arena, "after %s { ... }", st->name);
      } else if (st->kind == N_ASSIGN && st->list.len == 1) {
        if (!strcmp(nm, "iterations") && has_data) what = "the setting 'iterations' with data (steps instead of epochs)";
        else if (!strcmp(nm, "accumulate") || !strcmp(nm, "tasks"))
          what = arena_printf(s->arena, "the setting '%s'", nm);
      }
      if (what) {
        lw_unsupported(s, st->loc, what);
        if (!strcmp(nm, "save_best")) sema_hint(s, "the losses of a GAN's steps do not say which epoch is best: save_last keeps the last");
        break;
      }
    }
    find_trained_names(s, blk);
    s->block_scope = sc;
    if (s->lw->failed) {
      s->lw = NULL;   /* check the rest as usual; nothing to lower */
    } else {
      Shape scalar = {0};
      s->lw->batch_n = lw_input(s, &scalar, DT_FLOAT, "n", blk->loc);
      if (s->opt->lower_update) s->lw->lr = lw_input(s, &scalar, DT_FLOAT, "lr", blk->loc);
    }
  }
  Exec ex = {.ctx = train ? CX_TRAIN : CX_PREDICT};
  exec_stmts(s, sc, &blk->list, &ex);

  int nsteps = 0;
  for (int i = 0; i < blk->list.len; i++)
    if (((Node *)blk->list.items[i])->kind == N_STEP) nsteps++;
  bool has_data = scope_find(sc, "data") >= 0 || scope_find(sc, "tasks") >= 0;
  bool has_iters = scope_find(sc, "iterations") >= 0;
  const char *what = train ? "train" : "predict";
  const char *label = blk->name ? arena_printf(s->arena, "%s %s", what, blk->name) : what;
  if (!has_data && !has_iters) {
    sema_error(s, blk->loc, "%s has no data", label);
    sema_hint(s, "set `data = name` (a data declaration), or `iterations = N` to run without data");
  }
  if (train) {
    int li = scope_find(sc, "loss"), oi = scope_find(sc, "optimizer");
    const Node *loss_node = NULL;
    for (int i = 0; i < blk->list.len; i++) {
      const Node *st = blk->list.items[i];
      if (st->kind == N_ASSIGN && st->list.len == 1 && !strcmp(((Node *)st->list.items[0])->name, "loss")) loss_node = st->a;
    }
    if (nsteps == 0) {
      if (li < 0) {
        sema_error(s, blk->loc, "%s has no loss", label);
        sema_hint(s, "say what to minimise: loss = cross_entropy(net(x), y)");
      }
      if (oi < 0) {
        sema_error(s, blk->loc, "%s has no optimizer", label);
        sema_hint(s, "say how to update: optimizer = Adam(net, lr: 1e-3)");
      }
      summarize_step(s, sc, loss_node, "");
    } else if (li >= 0 || oi >= 0) {
      sema_error(s, blk->loc, "%s has steps and also a %s of its own; put it in the steps", label, li >= 0 ? "loss" : "optimizer");
    }
    int before = s->diag->nerrors;
    check_unused_settings(s, sc, ex.ctx);
    if (s->diag->nerrors == before && scope_find(sc, "epochs") < 0 && !has_iters && scope_find(sc, "tasks") < 0) {
      sema_warn(s, blk->loc, "%s sets neither epochs nor iterations; it will train for 1 epoch", label);
    }
  } else {
    check_unused_settings(s, sc, ex.ctx);
  }

  for (int i = models_before; i < s->prog->models.len; i++) {
    Layer *m = s->prog->models.items[i];
    const char *var = NULL;
    for (int k = 0; k < sc->names.len; k++) {
      Value *v = sc->vals.items[k];
      if ((v->kind == V_MODEL) && v->layer == m) var = sc->names.items[k];
    }
    if (!var) continue;  /* a sub-model: shown inside its parent */
    vec_push(s->arena, &bi->models, m);
    vec_push(s->arena, &bi->model_vars, (void *)var);
  }
  if (s->lw) finish_lowering(s, blk, sc, bi, nsteps);
  s->block = NULL;
}

Program *sema_check(Arena *a, Diag *d, const Node *ast, const SemaOptions *opt) {
  static const SemaOptions defaults = {.check_files = 1};
  Sema s0 = {0}, *s = &s0;
  s->arena = a;
  s->diag = d;
  s->opt = opt ? opt : &defaults;
  s->prog = arena_alloc(a, sizeof *s->prog);
  s->prog->ast = ast;
  s->prog->src = ast->loc.src;
  s->globals = scope_new(s, NULL);
  s->error_val = val_new(s, V_ERROR);
  s->prefix = "";
  boundaries = (Vec){0};
  instance_counter = 0;
  memset(set_used, 0, sizeof set_used);
  vec_push(a, &boundaries, s->globals);

  /* the folder of the spec: data paths are relative to it */
  const char *path = ast->loc.src ? ast->loc.src->path : "";
  const char *slash = strrchr(path, '/');
  s->spec_dir = slash ? arena_strndup(a, path, (size_t)(slash - path)) : ".";
  scope_define(s, s->globals, "none", val_new(s, V_NONE), ast->loc);
  int errors_before = d->nerrors;

  /* declarations: models and blocks first (they may be used before they
   * appear), then constants and data in order, then train/predict blocks */
  for (int i = 0; i < ast->list.len; i++) {
    const Node *n = ast->list.items[i];
    if (n->kind != N_MODEL && n->kind != N_BLOCK) continue;
    Scope *w;
    if (scope_lookup(s->globals, n->name, &w)) {
      sema_error(s, n->loc, "'%s' is already defined (line %d)", n->name, w->locs.len ? ((Loc *)w->locs.items[scope_find(w, n->name)])->line : 0);
      continue;
    }
    if (builtin_find(n->name))
      sema_warn(s, n->loc, "%s '%s' hides the built-in of the same name", n->kind == N_MODEL ? "model" : "block", n->name);
    Value *v = val_new(s, n->kind == N_MODEL ? V_MODELDEF : V_BLOCKDEF);
    if (n->kind == N_MODEL) v->mdef = n;
    else v->bdef = n;
    scope_define(s, s->globals, n->name, v, n->loc);
  }
  for (int i = 0; i < ast->list.len && !diag_full(d); i++) {
    const Node *n = ast->list.items[i];
    if (n->kind == N_CONST || n->kind == N_DATA) {
      if (scope_find(s->globals, n->name) >= 0) {
        Loc *prev = s->globals->locs.items[scope_find(s->globals, n->name)];
        sema_error(s, n->loc, "'%s' is already defined (line %d)", n->name, prev->line);
        continue;
      }
      if (n->kind == N_CONST) {
        Value *v = override_for(s, n->name);
        if (!v) v = eval(s, s->globals, n->a);
        if (v->kind != V_ERROR && !(val_is_number(v) || v->kind == V_STRING || v->kind == V_LIST || v->kind == V_TUPLE ||
                                     v->kind == V_RANGE || v->kind == V_TENSOR)) {
          sema_error(s, n->a->loc, "a const is a number, string, list or tensor, got %s", val_desc(a, v));
          v = val_err(s);
        }
        scope_define(s, s->globals, n->name, v, n->loc);
        if (v->kind == V_INT) vec_push(a, &s->prog->consts, arena_printf(a, "%s = %lld", n->name, (long long)v->i));
        else if (v->kind == V_FLOAT) vec_push(a, &s->prog->consts, arena_printf(a, "%s = %g", n->name, v->f));
      } else {
        Exec ex = {.ctx = CX_PREDICT};
        Scope *tmp = scope_new(s, s->globals);
        exec_stmt(s, tmp, n, &ex);
        Value *v = tmp->vals.len ? tmp->vals.items[0] : val_err(s);
        scope_define(s, s->globals, n->name, v, n->loc);
        if (v->kind == V_DATASET) {
          vec_push(a, &s->prog->datasets, (void *)n->name);
          vec_push(a, &s->prog->dsvals, v->ds);
        }
      }
    }
  }
  int nblocks = 0;
  const Node *to_lower = NULL;
  if (s->opt->lower_block) {
    for (int i = 0; i < ast->list.len && !to_lower; i++) {
      const Node *n = ast->list.items[i];
      NodeKind want = s->opt->lower_predict ? N_PREDICT : N_TRAIN;
      if (n->kind == want && (!*s->opt->lower_block || (n->name && !strcmp(n->name, s->opt->lower_block)))) to_lower = n;
    }
    if (!to_lower) {
      const char *what = s->opt->lower_predict ? "predict" : "train";
      Loc file = {.src = ast->loc.src};   /* the file as a whole: no line */
      if (*s->opt->lower_block) sema_error(s, file, "the spec has no %s block named '%s'", what, s->opt->lower_block);
      else sema_error(s, file, "the spec has no %s block", what);
    }
  }
  for (int i = 0; i < ast->list.len && !diag_full(d); i++) {
    const Node *n = ast->list.items[i];
    if (n->kind == N_TRAIN || n->kind == N_PREDICT) {
      if (n == to_lower) {
        s->lw = arena_alloc(a, sizeof *s->lw);
        s->lw->g = ir_new(a);
        s->lw->training = s->opt->lower_training;
      }
      check_block(s, n);
      s->lw = NULL;
      nblocks++;
    }
  }
  /* a model nobody builds is still checked, if it can be built with defaults */
  for (int i = 0; i < ast->list.len && !diag_full(d); i++) {
    const Node *n = ast->list.items[i];
    if (n->kind != N_MODEL) continue;
    bool used = false;
    for (int k = 0; k < s->attempted.len; k++) used |= s->attempted.items[k] == n;
    if (used) continue;
    bool defaults_ok = true;
    for (int k = 0; k < n->list.len; k++) defaults_ok &= ((Node *)n->list.items[k])->b != NULL;
    if (defaults_ok) {
      Args none = {0};
      instantiate_model(s, n, &none, n->loc);
    } else {
      sema_warn(s, n->loc, "model %s is never built, so its body is not checked", n->name);
    }
  }
  for (int i = 0; i < s->opt->nset; i++)
    if (!set_used[i]) {
      sema_error(s, (Loc){0}, "--set %s: the spec has no constant or block setting called '%s'", s->opt->set_names[i],
                 s->opt->set_names[i]);
    }
  if (nblocks == 0 && d->nerrors == errors_before)
    sema_warn(s, ast->loc, "the spec has no train or predict block");
  if (d->nerrors > errors_before) return NULL;
  return s->prog;
}
