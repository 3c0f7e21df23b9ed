/*
 * builtins.c — the catalogue: every layer, function, loss, metric,
 * optimizer, schedule, data source, transform and writer a spec can name,
 * with its parameters and its shape rule.
 *
 * Each entry of the table at the bottom is one line: name, kind, a parameter
 * string ("in_features:i, out_features:i, bias:b=true"), and the C function that checks a call
 * and computes its result. builtin_bind() matches a call's arguments to the
 * parameter string (arity, keywords, kinds), so the functions here see their
 * arguments already in order and of the right kind, and only check shapes.
 * Shape errors name both shapes and, where one is common, the fix.
 */
#include "compiler/ir.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameter strings ------------------------------------------------ */

typedef struct {
  char name[32];
  char kind;          /* i f b s T X A L D M O R S */
  bool optional;      /* `?`: may be absent */
  bool has_default;
  char defval[32];
} ParamSpec;

/* Parses "in_features:i, out_features:i, bias:b=true, ..." into specs; returns the count and
 * sets *variadic when the string ends in "...". */
static int parse_params(const char *p, ParamSpec *out, bool *variadic) {
  int n = 0;
  *variadic = false;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    if (strncmp(p, "...", 3) == 0) {
      *variadic = true;
      break;
    }
    ParamSpec *ps = &out[n];
    memset(ps, 0, sizeof *ps);
    size_t k = 0;
    while (*p && *p != ':' && k < sizeof ps->name - 1) ps->name[k++] = *p++;
    NNC_ASSERT(*p == ':');
    p++;
    ps->kind = *p++;
    if (*p == '?') {
      ps->optional = true;
      p++;
    }
    if (*p == '=') {
      p++;
      ps->has_default = true;
      k = 0;
      while (*p && *p != ',' && k < sizeof ps->defval - 1) ps->defval[k++] = *p++;
    }
    n++;
    NNC_ASSERT(n <= MAX_ARGS);
  }
  return n;
}

static const char *kind_words(char k) {
  switch (k) {
  case 'i': return "an int";
  case 'f': return "a number";
  case 'b': return "true or false";
  case 's': return "a string";
  case 'T': return "a tensor or a number";
  case 'X': return "a tensor";
  case 'L': return "a list";
  case 'D': return "a data set";
  case 'M': return "a model or layer";
  case 'O': return "a model, params(...), a variable or a list of them";
  case 'R': return "an int or a range a..b";
  case 'S': return "a number or an LR schedule";
  default: return "a value";
  }
}

static bool kind_ok(char k, const Value *v) {
  switch (k) {
  case 'i': return v->kind == V_INT;
  case 'f': return v->kind == V_INT || v->kind == V_FLOAT;
  case 'b': return v->kind == V_BOOL;
  case 's': return v->kind == V_STRING;
  case 'T': return v->kind == V_TENSOR || val_is_number(v) || v->kind == V_PARAMS;
  case 'X': return v->kind == V_TENSOR;
  case 'L': return v->kind == V_LIST || v->kind == V_TUPLE;
  case 'D': return v->kind == V_DATASET;
  case 'M': return v->kind == V_MODEL || v->kind == V_LAYER;
  case 'O': return v->kind == V_MODEL || v->kind == V_PARAMS || v->kind == V_LIST ||
                   v->kind == V_LAYER || (v->kind == V_TENSOR && v->trainable);
  case 'R': return v->kind == V_INT || v->kind == V_RANGE;
  case 'S': return v->kind == V_INT || v->kind == V_FLOAT || v->kind == V_SCHEDULE;
  default: return true;
  }
}

static Value *default_value(Sema *s, const ParamSpec *ps) {
  const char *d = ps->defval;
  if (strcmp(d, "true") == 0 || strcmp(d, "false") == 0) {
    Value *v = val_new(s, V_BOOL);
    v->i = d[0] == 't';
    return v;
  }
  if (strcmp(d, "none") == 0) return val_new(s, V_NONE);
  if (d[0] == '"') {
    Value *v = val_new(s, V_STRING);
    v->s = arena_strndup(s->arena, d + 1, strlen(d) - 2);
    return v;
  }
  if (strchr(d, '.') || strchr(d, 'e')) return val_float(s, strtod(d, NULL));
  return val_int(s, strtoll(d, NULL, 10));
}

const char *builtin_signature(Arena *a, const Builtin *b) {
  ParamSpec ps[MAX_ARGS];
  bool variadic;
  int n = parse_params(b->params, ps, &variadic);
  char buf[512];
  size_t k = (size_t)snprintf(buf, sizeof buf, "%s(", b->name);
  for (int i = 0; i < n && k < sizeof buf - 64; i++) {
    k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", ps[i].name);
    if (ps[i].has_default)
      k += (size_t)snprintf(buf + k, sizeof buf - k, ": %s", ps[i].defval);
  }
  if (variadic && k < sizeof buf - 8) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s...", n ? ", " : "");
  snprintf(buf + k, sizeof buf - k, ")");
  return arena_strdup(a, buf);
}

bool builtin_bind(Sema *s, const Builtin *b, Loc loc, const Args *args, Call *out) {
  ParamSpec ps[MAX_ARGS];
  bool variadic;
  int n = parse_params(b->params, ps, &variadic);
  memset(out, 0, sizeof *out);
  out->loc = loc;
  out->nargs = n;
  bool ok = true;

  for (int i = 0; i < args->npos; i++) {
    if (args->pos[i]->kind == V_ERROR) ok = false;
    if (i < n) {
      out->arg[i] = args->pos[i];
      out->argloc[i] = args->posloc[i];
      out->given[i] = true;
    } else if (variadic) {
      vec_push(s->arena, &out->rest, args->pos[i]);
    } else {
      sema_error(s, args->posloc[i], "%s takes %d argument%s, got %d", b->name, n,
                 n == 1 ? "" : "s", args->npos);
      sema_hint(s, "%s", builtin_signature(s->arena, b));
      return false;
    }
  }
  for (int i = 0; i < args->extra.len; i++) vec_push(s->arena, &out->rest, args->extra.items[i]);
  for (int i = 0; i < args->nkw; i++) {
    if (args->kw[i]->kind == V_ERROR) ok = false;
    int j = 0;
    while (j < n && strcmp(ps[j].name, args->kwname[i]) != 0) j++;
    if (j == n) {
      const char *names[MAX_ARGS];
      for (int k = 0; k < n; k++) names[k] = ps[k].name;
      const char *near = closest_name(args->kwname[i], names, n);
      if (near)
        sema_error(s, args->kwloc[i], "%s has no parameter '%s'; did you mean '%s'?", b->name,
                   args->kwname[i], near);
      else
        sema_error(s, args->kwloc[i], "%s has no parameter '%s'", b->name, args->kwname[i]);
      sema_hint(s, "%s", builtin_signature(s->arena, b));
      ok = false;
      continue;
    }
    if (out->given[j]) {
      sema_error(s, args->kwloc[i], "'%s' of %s is given twice", ps[j].name, b->name);
      ok = false;
      continue;
    }
    out->arg[j] = args->kw[i];
    out->argloc[j] = args->kwloc[i];
    out->given[j] = true;
    out->by_name[j] = true;
  }
  if (!ok) return false;
  for (int j = 0; j < n; j++) {
    if (!out->given[j]) {
      out->argloc[j] = loc;
      if (ps[j].has_default) {
        out->arg[j] = default_value(s, &ps[j]);
      } else if (!ps[j].optional) {
        sema_error(s, loc, "%s needs '%s' (%s)", b->name, ps[j].name, kind_words(ps[j].kind));
        sema_hint(s, "%s", builtin_signature(s->arena, b));
        ok = false;
      }
      continue;
    }
    Value *v = out->arg[j];
    if (v->kind == V_NONE && (ps[j].has_default || ps[j].optional)) continue;
    if (!kind_ok(ps[j].kind, v)) {
      sema_error(s, out->argloc[j], "'%s' of %s must be %s, got %s", ps[j].name, b->name,
                 kind_words(ps[j].kind), val_desc(s->arena, v));
      if (ps[j].kind == 'i' && v->kind == V_FLOAT)
        sema_hint(s, "sizes are whole numbers: write %lld", (long long)v->f);
      else if (ps[j].kind == 'M' && v->kind == V_MODELDEF)
        sema_hint(s, "build the model first: %s(...)", v->mdef->name);
      ok = false;
    }
  }
  return ok;
}

/* ---- small helpers for the rules below -------------------------------- */

#define A(k_) (c->arg[k_])
#define GIVEN(k_) (c->given[k_] && c->arg[k_] && c->arg[k_]->kind != V_NONE)
#define AI(k_) (c->arg[k_]->i)
#define AF(k_) val_num(c->arg[k_])
#define AB(k_) (c->arg[k_]->i != 0)

/* A value for a shape message: "[B, 10]", "int[B]". */
static const char *SH(Sema *s, const Value *v) {
  if (v->kind == V_TENSOR) return ttype_str(s->arena, v->dtype, &v->shape);
  return val_desc(s->arena, v);
}

/* A value for an element-type message: "float[B, 10]" even for floats, so
 * that it does not read like a shape error. */
static const char *TY(Sema *s, const Value *v) {
  if (v->kind == V_TENSOR && v->dtype == DT_FLOAT) return arena_printf(s->arena, "float%s", shape_str(s->arena, &v->shape));
  return SH(s, v);
}

/* A number used where a tensor goes is a 0-d tensor. */
static Value *as_tensor(Sema *s, Value *v) {
  if (v->kind == V_TENSOR) return v;
  Shape sh = {0};
  return val_tensor(s, v->kind == V_FLOAT ? DT_FLOAT : v->kind == V_BOOL ? DT_BOOL : DT_INT, &sh);
}

static bool positive(Sema *s, Call *c, int i, const char *what) {
  if (c->arg[i]->kind == V_INT && c->arg[i]->i <= 0) {
    sema_error(s, c->argloc[i], "%s must be positive, got %lld", what, (long long)c->arg[i]->i);
    return false;
  }
  return true;
}

/* Normalises a dimension index against a rank; reports and returns -1 if out of range. */
static int axis(Sema *s, Loc loc, int64_t d, int rank, const char *fn) {
  int64_t a = d < 0 ? d + rank : d;
  if (a < 0 || a >= rank) {
    sema_error(s, loc, "%s: dim %lld is out of range for a tensor of rank %d", fn, (long long)d, rank);
    if (rank > 0) sema_hint(s, "dims go from 0 to %d (or -1 to -%d from the end)", rank - 1, rank);
    return -1;
  }
  return (int)a;
}

/* Per-sample element count of a tensor (all dims but the first). */
static Dim per_sample(const Value *v) {
  Dim n;
  if (v->kind != V_TENSOR || v->shape.rank == 0) return dim_int(1);
  if (!shape_numel(&v->shape, 1, &n)) return dim_int(0);
  return n;
}

static Dim dscale(Dim d, int64_t k) {
  Dim r = d;
  r.c *= k;
  return r;
}

/* Shapes from a list of ints (and symbols, and -1 in reshape). */
static bool shape_from_list(Sema *s, Value *list, Loc loc, Shape *out, const char *fn) {
  Value *single = list;
  if (list->kind == V_INT) {
    out->rank = 1;
    out->d[0] = dim_int(list->i);
    return true;
  }
  if (list->kind != V_LIST && list->kind != V_TUPLE) {
    sema_error(s, loc, "%s: a shape is a list of sizes like [B, 100], got %s", fn, val_desc(s->arena, single));
    return false;
  }
  if (list->items.len > MAX_RANK) {
    sema_error(s, loc, "%s: at most %d dims, got %d", fn, MAX_RANK, list->items.len);
    return false;
  }
  out->rank = list->items.len;
  for (int i = 0; i < list->items.len; i++) {
    Value *v = list->items.items[i];
    if (v->kind == V_INT) {
      out->d[i] = dim_int(v->i);
    } else if (v->kind == V_TENSOR && v->shape.rank == 0 && v->s) {
      out->d[i] = dim_sym(v->s);       /* a symbol like B used as a size */
    } else {
      sema_error(s, loc, "%s: size %d of the shape must be an int or B, got %s", fn, i,
                 val_desc(s->arena, v));
      return false;
    }
  }
  return true;
}

/* ---- lowering --------------------------------------------------------- */

/* While lowering (s->lw), a value computed from lowered inputs carries the
 * node that computes it; these keep the handlers below short. */
#define G (s->lw->g)
#define LOWERING(v) (s->lw && (v)->kind == V_TENSOR && (v)->ir)

static Value *with_ir(Value *v, IrNode *n) {
  if (v->kind == V_TENSOR) v->ir = n;
  return v;
}

static unsigned all_axes(int rank) { return rank ? (1u << rank) - 1 : 0; }

/* x as [rows, last] for a row-wise or matrix op, and back */
static IrNode *as_matrix(Sema *s, IrNode *x, Loc loc) {
  if (x->shape.rank == 2) return x;
  Shape m = {.rank = 2};
  m.d[1] = x->shape.rank ? x->shape.d[x->shape.rank - 1] : dim_int(1);
  Shape lead = x->shape;
  lead.rank = x->shape.rank ? x->shape.rank - 1 : 0;
  shape_numel(&lead, 0, &m.d[0]);
  return ir_reshape(G, x, &m, loc);
}

/* ---- layers ------------------------------------------------------------ */

static Layer *layer_new(Sema *s, const Builtin *b, Call *c, int64_t params) {
  Layer *l = arena_alloc(s->arena, sizeof *l);
  l->kind = LK_BUILTIN;
  l->type = b->name;
  l->bi = b;
  l->params = params;
  l->loc = c->loc;
  l->desc = call_desc(s->arena, b, c);
  ParamSpec ps[MAX_ARGS];
  bool variadic;
  int n = parse_params(b->params, ps, &variadic);
  for (int i = 0; i < n && i < 8; i++)
    if (c->arg[i] && c->arg[i]->kind == V_INT) l->arg[i] = c->arg[i]->i;
  for (int i = 0, k = 0; i < n && k < 4; i++)
    if (c->arg[i] && c->arg[i]->kind == V_FLOAT) l->farg[k++] = c->arg[i]->f;
  return l;
}

const char *call_desc(Arena *a, const Builtin *b, const Call *c) {
  ParamSpec ps[MAX_ARGS];
  bool variadic;
  int n = parse_params(b->params, ps, &variadic);
  char buf[256];
  size_t k = (size_t)snprintf(buf, sizeof buf, "%s", b->name);
  int shown = 0;
  for (int i = 0; i < n && k < sizeof buf - 40; i++) {
    if (!c->given[i]) continue;
    const Value *v = c->arg[i];
    k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", shown++ ? ", " : "(");
    if (c->by_name[i]) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s: ", ps[i].name);
    if (v->kind == V_INT) k += (size_t)snprintf(buf + k, sizeof buf - k, "%lld", (long long)v->i);
    else if (v->kind == V_FLOAT) k += (size_t)snprintf(buf + k, sizeof buf - k, "%g", v->f);
    else if (v->kind == V_BOOL) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", v->i ? "true" : "false");
    else if (v->kind == V_STRING) k += (size_t)snprintf(buf + k, sizeof buf - k, "\"%s\"", v->s);
    else if (v->kind == V_TENSOR) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", shape_str(a, &v->shape));
    else k += (size_t)snprintf(buf + k, sizeof buf - k, "...");
  }
  if (shown && k < sizeof buf - 2) snprintf(buf + k, sizeof buf - k, ")");
  else if (!shown && b->kind == BK_TRANSFORM && k < sizeof buf - 3) snprintf(buf + k, sizeof buf - k, "()");
  return arena_strdup(a, buf);
}

static Value *layer_val(Sema *s, Layer *l) {
  Value *v = val_new(s, V_LAYER);
  v->layer = l;
  return v;
}

/* The one input tensor of a layer call, or NULL after reporting. */
static Value *one_input(Sema *s, Layer *l, Call *c, int min_rank, int max_rank, const char *what) {
  if (c->nargs < 1 || !c->arg[0]) {
    sema_error(s, c->loc, "%s needs an input tensor", l->desc);
    return NULL;
  }
  Value *x = c->arg[0];
  if (x->kind == V_ERROR) return NULL;
  if (x->kind != V_TENSOR) {
    sema_error(s, c->argloc[0], "%s expects a tensor, got %s", l->desc, val_desc(s->arena, x));
    return NULL;
  }
  if (x->shape.rank < min_rank || x->shape.rank > max_rank) {
    sema_error(s, c->argloc[0], "%s expects %s, got %s", l->desc, what, SH(s, x));
    if (x->shape.rank > max_rank && max_rank == 2)
      sema_hint(s, "flatten first: flatten(x) turns %s into [B, %s]", SH(s, x),
                dim_str(s->arena, per_sample(x)));
    else if (x->shape.rank == 2 && min_rank == 4)
      sema_hint(s, "reshape it to images first: reshape(x, [B, C, H, W])");
    return NULL;
  }
  if (x->dtype != DT_FLOAT) {
    sema_error(s, c->argloc[0], "%s expects float values, got %s", l->desc, TY(s, x));
    if (x->dtype == DT_INT) sema_hint(s, "integer ids go through an Embedding first");
    return NULL;
  }
  return x;
}

static Value *mk_linear(Sema *s, const Builtin *b, Call *c) {
  if (!positive(s, c, 0, "in_features") || !positive(s, c, 1, "out_features")) return val_err(s);
  Layer *l = layer_new(s, b, c, AI(0) * AI(1) + (AB(2) ? AI(1) : 0));
  if (s->lw) {
    Shape w = {.rank = 2}, bs = {.rank = 1};
    w.d[0] = bs.d[0] = dim_int(AI(1));
    w.d[1] = dim_int(AI(0));
    double bound = 1.0 / sqrt((double)AI(0));   /* PyTorch's default */
    l->pw[0] = lw_param(s, &w, INIT_UNIFORM, bound, c->loc);
    if (AB(2)) l->pw[1] = lw_param(s, &bs, INIT_UNIFORM, bound, c->loc);
  }
  return layer_val(s, l);
}

static Value *ap_linear(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 1, MAX_RANK, "a tensor [..., in]");
  if (!x) return val_err(s);
  int r = x->shape.rank;
  Dim last = x->shape.d[r - 1];
  if (!dim_eq(last, dim_int(l->arg[0]))) {
    sema_error(s, c->argloc[0], "%s expects [..., %lld], got %s", l->desc, (long long)l->arg[0], SH(s, x));
    if (r > 2) {
      Dim n;
      if (shape_numel(&x->shape, 1, &n) && dim_eq(n, dim_int(l->arg[0])))
        sema_hint(s, "flatten first: flatten(x) turns %s into [B, %s]", SH(s, x), dim_str(s->arena, n));
      else
        sema_hint(s, "the last dim is the features: %s has %s, the layer wants %lld", SH(s, x),
                  dim_str(s->arena, last), (long long)l->arg[0]);
    } else {
      sema_hint(s, "the layer was built as %s; its in_features must match the input's last dim (%s)", l->desc,
                dim_str(s->arena, last));
    }
    return val_err(s);
  }
  Shape o = x->shape;
  o.d[r - 1] = dim_int(l->arg[1]);
  Value *out = val_tensor(s, DT_FLOAT, &o);
  Dim rows = dim_int(1);
  for (int i = 1; i < r - 1; i++) dim_mul(rows, o.d[i], &rows);
  trace_layer(s, l, out, dscale(rows, 2 * l->arg[0] * l->arg[1]));
  if (LOWERING(x) && l->pw[0]) {
    /* x Wᵀ + b, with W as [out, in] (PyTorch's layout, read transposed by sgemm) */
    /* the nodes point at the layer's line in the spec, not at the call */
    IrNode *y = ir_matmul(G, as_matrix(s, x->ir, l->loc), l->pw[0], false, true, l->loc);
    if (l->pw[1]) y = ir_binary(G, IR_ADD, y, l->pw[1], l->loc);
    if (r != 2) y = ir_reshape(G, y, &o, l->loc);
    out->ir = y;
  }
  return out;
}

/* Conv2d(cin, cout, kernel, stride, padding, dilation, groups, bias) */
static Value *mk_conv(Sema *s, const Builtin *b, Call *c) {
  for (int i = 0; i < 3; i++)
    if (!positive(s, c, i, i == 0 ? "in_channels" : i == 1 ? "out_channels" : "kernel")) return val_err(s);
  int64_t cin = AI(0), cout = AI(1), k = AI(2);
  bool transposed = strcmp(b->name, "ConvTranspose2d") == 0;
  int gi = 6;   /* `groups` of both */
  int64_t g = GIVEN(gi) ? AI(gi) : 1;
  if (g <= 0 || cin % g != 0 || cout % g != 0) {
    sema_error(s, c->argloc[gi], "%s: groups=%lld must divide in_channels %lld and out_channels %lld",
               b->name, (long long)g, (long long)cin, (long long)cout);
    if (g > 0 && cin == g) sema_hint(s, "a depthwise convolution has groups = in_channels and out_channels a multiple of it");
    return val_err(s);
  }
  int64_t params = cout * (cin / g) * k * k + (AB(7) ? cout : 0);
  Layer *l = layer_new(s, b, c, params);
  l->arg[6] = g;
  if (s->lw) {
    /* PyTorch's layouts: [out, in/groups, k, k], transposed [in, out/groups, k, k];
     * uniform ±1/sqrt(fan_in) with fan_in = dim 1 · k · k, as its defaults */
    Shape w = {.rank = 4}, bs = {.rank = 1};
    w.d[0] = dim_int(transposed ? cin : cout);
    w.d[1] = dim_int(transposed ? cout / g : cin / g);
    w.d[2] = w.d[3] = dim_int(k);
    bs.d[0] = dim_int(cout);
    double bound = 1.0 / sqrt((double)(w.d[1].c * k * k));
    l->pw[0] = lw_param(s, &w, INIT_UNIFORM, bound, c->loc);
    if (AB(7)) l->pw[1] = lw_param(s, &bs, INIT_UNIFORM, bound, c->loc);
  }
  return layer_val(s, l);
}

static bool conv_out(Sema *s, Call *c, Layer *l, Dim in, int64_t k, int64_t st, int64_t pad, int64_t dil,
                     int64_t outpad, bool transposed, Dim *out) {
  if (!dim_known(in)) {
    sema_error(s, c->argloc[0], "%s needs known image sizes, got a symbolic size %s", l->desc,
               dim_str(s->arena, in));
    return false;
  }
  int64_t o;
  if (transposed)
    o = (in.c - 1) * st - 2 * pad + dil * (k - 1) + outpad + 1;
  else
    o = (in.c + 2 * pad - dil * (k - 1) - 1) / st + 1;
  if (o <= 0 || (!transposed && in.c + 2 * pad < dil * (k - 1) + 1)) {
    sema_error(s, c->argloc[0], "%s: an input of size %lld is smaller than the kernel (%lld) after padding %lld",
               l->desc, (long long)in.c, (long long)k, (long long)pad);
    sema_hint(s, "too many poolings or strides shrink the image to nothing; remove one or add padding");
    return false;
  }
  *out = dim_int(o);
  return true;
}

static Value *ap_conv(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 4, 4, "images [B, C, H, W]");
  if (!x) return val_err(s);
  bool tr = strcmp(l->type, "ConvTranspose2d") == 0;
  int64_t cin = l->arg[0], cout = l->arg[1], k = l->arg[2], st = l->arg[3], pad = l->arg[4];
  int64_t dil = tr ? 1 : l->arg[5], op = tr ? l->arg[5] : 0, g = l->arg[6] ? l->arg[6] : 1;
  if (st <= 0) st = 1;
  if (dil <= 0) dil = 1;
  if (!dim_eq(x->shape.d[1], dim_int(cin))) {
    sema_error(s, c->argloc[0], "%s expects %lld input channels [B, %lld, H, W], got %s", l->desc,
               (long long)cin, (long long)cin, SH(s, x));
    sema_hint(s, "channels are dim 1; the previous layer gives %s", dim_str(s->arena, x->shape.d[1]));
    return val_err(s);
  }
  Shape o = x->shape;
  o.d[1] = dim_int(cout);
  for (int i = 2; i < 4; i++)
    if (!conv_out(s, c, l, x->shape.d[i], k, st, pad, dil, op, tr, &o.d[i])) return val_err(s);
  Value *out = val_tensor(s, DT_FLOAT, &o);
  int64_t hw = tr ? x->shape.d[2].c * x->shape.d[3].c : o.d[2].c * o.d[3].c;
  trace_layer(s, l, out, dim_int(2 * (cin / g) * k * k * cout * hw));
  if (LOWERING(x) && l->pw[0]) {
    /* a transposed convolution is the adjoint of the convolution that maps
     * its output back to its input, so it runs as that one's CONV2D_BWD_X */
    IrWindow w = {.kh = k, .kw = k, .sh = st, .sw = st, .ph = pad, .pw = pad, .dh = dil, .dw = dil, .groups = g};
    IrNode *y = ir_window(G, tr ? IR_CONV2D_BWD_X : IR_CONV2D, x->ir, l->pw[0], &o, &w, l->loc);
    if (l->pw[1]) {
      Shape bs = {.rank = 3};
      bs.d[0] = dim_int(cout);
      bs.d[1] = bs.d[2] = dim_int(1);
      y = ir_binary(G, IR_ADD, y, ir_reshape(G, l->pw[1], &bs, l->loc), l->loc);
    }
    out->ir = y;
  }
  return out;
}

static Value *mk_pool(Sema *s, const Builtin *b, Call *c) {
  if (!positive(s, c, 0, "kernel")) return val_err(s);
  Layer *l = layer_new(s, b, c, 0);
  if (!GIVEN(1)) l->arg[1] = l->arg[0];
  return layer_val(s, l);
}

static Value *ap_pool(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 3, 4, "[B, C, H, W]");
  if (!x) return val_err(s);
  Shape o = x->shape;
  for (int i = o.rank - 2; i < o.rank; i++)
    if (!conv_out(s, c, l, x->shape.d[i], l->arg[0], l->arg[1] > 0 ? l->arg[1] : l->arg[0], l->arg[2], 1, 0,
                  false, &o.d[i]))
      return val_err(s);
  Value *out = val_tensor(s, DT_FLOAT, &o);
  trace_layer(s, l, out, dscale(per_sample(out), l->arg[0] * l->arg[0]));
  if (LOWERING(x)) {
    int64_t k = l->arg[0], st = l->arg[1] > 0 ? l->arg[1] : k, pad = l->arg[2];
    IrWindow w = {.kh = k, .kw = k, .sh = st, .sw = st, .ph = pad, .pw = pad, .dh = 1, .dw = 1, .groups = 1};
    bool max = strcmp(l->type, "MaxPool2d") == 0;
    out->ir = ir_window(G, max ? IR_MAXPOOL2D : IR_AVGPOOL2D, x->ir, NULL, &o, &w, l->loc);
  }
  return out;
}

static Value *mk_nolayer(Sema *s, const Builtin *b, Call *c) { return layer_val(s, layer_new(s, b, c, 0)); }

static Value *ap_adaptive(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 4, 4, "[B, C, H, W]");
  if (!x) return val_err(s);
  Shape o = x->shape;
  o.d[2] = o.d[3] = dim_int(l->arg[0]);
  Value *out = val_tensor(s, DT_FLOAT, &o);
  trace_layer(s, l, out, per_sample(x));
  if (LOWERING(x)) {
    if (!dim_known(x->shape.d[2]) || !dim_known(x->shape.d[3])) {
      lw_unsupported(s, c->loc, "adaptive pooling of an image of unknown size");
      return out;
    }
    IrWindow w = {.dh = 1, .dw = 1, .groups = 1, .adaptive = true};
    out->ir = ir_window(G, IR_AVGPOOL2D, x->ir, NULL, &o, &w, l->loc);
  }
  return out;
}

static Value *mk_norm(Sema *s, const Builtin *b, Call *c) {
  if (!positive(s, c, 0, "features")) return val_err(s);
  bool affine = strcmp(b->name, "LayerNorm") == 0 || !GIVEN(4) || AB(4);
  Layer *l = layer_new(s, b, c, affine ? 2 * AI(0) : 0);
  bool batch = strncmp(b->name, "BatchNorm", 9) == 0;
  if (batch) l->buffers = 2 * AI(0);
  l->farg[0] = batch ? AF(1) : 0;            /* momentum */
  l->farg[1] = batch ? AF(2) : AF(1);        /* eps */
  l->arg[4] = affine;
  l->arg[5] = batch && (!GIVEN(3) || AB(3)); /* track_running_stats */
  if (s->lw) {
    Shape f = {.rank = 1};
    f.d[0] = dim_int(AI(0));
    if (affine) {
      l->pw[0] = lw_param(s, &f, INIT_ONES, 0, c->loc);
      l->pw[1] = lw_param(s, &f, INIT_ZEROS, 0, c->loc);
    }
    if (l->arg[5]) {
      l->st[0] = lw_state(s, &f, INIT_ZEROS, NULL, c->loc);
      l->st[1] = lw_state(s, &f, INIT_ONES, NULL, c->loc);
    }
  }
  return layer_val(s, l);
}

/* Normalisation as nodes. BatchNorm: over the batch (and the image) with
 * the batch's statistics while training, updating the running ones
 * (unbiased variance, PyTorch's momentum convention), and with the running
 * ones in evaluation. LayerNorm: over the last axis. */
static IrNode *lower_norm(Sema *s, Layer *l, IrNode *x, Loc loc) {
  bool batch = strncmp(l->type, "BatchNorm", 9) == 0;
  int r = x->shape.rank;
  unsigned axes = 0;
  Shape pshape = {.rank = r};   /* a per-feature vector, broadcastable to x */
  for (int i = 0; i < r; i++) {
    bool feat = batch ? i == 1 : i == r - 1;
    if (!feat) axes |= 1u << i;
    pshape.d[i] = feat ? x->shape.d[i] : dim_int(1);
  }
  IrNode *eps = ir_const(G, l->farg[1], loc), *mean, *var;
  bool training = s->lw->training && !sema_layer_frozen(s, l);   /* a frozen model runs as in evaluation */
  if (!batch || training || !l->st[0]) {
    mean = lw_mean(s, x, axes, true, loc);
    IrNode *d = ir_binary(G, IR_SUB, x, mean, loc);
    var = lw_mean(s, ir_binary(G, IR_MUL, d, d, loc), axes, true, loc);
    if (batch && l->st[0] && training) {
      double m = l->farg[0];
      IrNode *count = lw_count(s, &x->shape, axes, loc);
      IrNode *unbiased = ir_binary(G, IR_MUL, var, ir_binary(G, IR_DIV, count, ir_binary(G, IR_SUB, count, ir_const(G, 1, loc), loc), loc), loc);
      IrNode *mv = ir_reshape(G, mean, &l->st[0]->shape, loc), *vv = ir_reshape(G, unbiased, &l->st[1]->shape, loc);
      IrNode *keep = ir_const(G, 1 - m, loc), *mom = ir_const(G, m, loc);
      ir_assign(G, l->st[0], ir_binary(G, IR_ADD, ir_binary(G, IR_MUL, keep, l->st[0], loc), ir_binary(G, IR_MUL, mom, mv, loc), loc), loc);
      ir_assign(G, l->st[1], ir_binary(G, IR_ADD, ir_binary(G, IR_MUL, keep, l->st[1], loc), ir_binary(G, IR_MUL, mom, vv, loc), loc), loc);
    }
  } else {
    mean = ir_reshape(G, l->st[0], &pshape, loc);
    var = ir_reshape(G, l->st[1], &pshape, loc);
  }
  IrNode *y = ir_binary(G, IR_DIV, ir_binary(G, IR_SUB, x, mean, loc), ir_unary(G, IR_SQRT, ir_binary(G, IR_ADD, var, eps, loc), loc), loc);
  if (l->pw[0]) {
    y = ir_binary(G, IR_MUL, y, ir_reshape(G, l->pw[0], &pshape, loc), loc);
    y = ir_binary(G, IR_ADD, y, ir_reshape(G, l->pw[1], &pshape, loc), loc);
  }
  return y;
}

static Value *ap_norm(Sema *s, Layer *l, Call *c) {
  bool is2d = strcmp(l->type, "BatchNorm2d") == 0, is1d = strcmp(l->type, "BatchNorm1d") == 0;
  Value *x = one_input(s, l, c, is2d ? 4 : is1d ? 2 : 1, is2d ? 4 : is1d ? 3 : MAX_RANK,
                       is2d ? "images [B, C, H, W]" : is1d ? "[B, C] or [B, C, L]" : "[..., features]");
  if (!x) return val_err(s);
  int ax = (is2d || is1d) ? 1 : x->shape.rank - 1;
  if (!dim_eq(x->shape.d[ax], dim_int(l->arg[0]))) {
    sema_error(s, c->argloc[0], "%s normalises %lld features (dim %d), got %s", l->desc, (long long)l->arg[0], ax,
               SH(s, x));
    return val_err(s);
  }
  Value *out = val_tensor(s, DT_FLOAT, &x->shape);
  trace_layer(s, l, out, dscale(per_sample(x), 4));
  if (LOWERING(x)) out->ir = lower_norm(s, l, x->ir, l->loc);
  return out;
}

/* Dropout, ReLU, Tanh, Sigmoid, GELU, LeakyReLU, Softmax: same shape out. */
static IrNode *lower_act(Sema *s, const char *name, double arg, IrNode *x, Loc loc);

static Value *ap_same(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 0, MAX_RANK, "a tensor");
  if (!x) return val_err(s);
  Value *out = val_tensor(s, DT_FLOAT, &x->shape);
  trace_layer(s, l, out, per_sample(x));
  if (LOWERING(x)) {
    const char *t = l->type;
    if (!strcmp(t, "Dropout")) {
      double p = l->farg[0];
      if (!s->lw->training || sema_layer_frozen(s, l) || p <= 0) return with_ir(out, x->ir);
      /* keep with probability 1-p, scaled by 1/(1-p) (inverted dropout) */
      IrNode *keep = ir_binary(G, IR_GT, lw_rand(s, &x->shape, c->loc), ir_const(G, p, c->loc), c->loc);
      return with_ir(out, ir_binary(G, IR_MUL, x->ir, ir_binary(G, IR_MUL, keep, ir_const(G, 1 / (1 - p), c->loc), c->loc), c->loc));
    }
    char lower[32];
    size_t k = 0;
    for (; k < sizeof lower - 1 && t[k]; k++) lower[k] = (char)tolower((unsigned char)t[k]);
    lower[k] = 0;
    if (!strcmp(lower, "leakyrelu")) strcpy(lower, "leaky_relu");
    out->ir = lower_act(s, lower, l->farg[0], x->ir, l->loc);
  }
  return out;
}

static Value *ap_flatten(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 1, MAX_RANK, "a tensor [B, ...]");
  if (!x) return val_err(s);
  Shape o = {.rank = 2};
  o.d[0] = x->shape.d[0];
  if (!shape_numel(&x->shape, 1, &o.d[1])) {
    sema_error(s, c->argloc[0], "Flatten: %s has too many symbolic sizes to flatten", SH(s, x));
    return val_err(s);
  }
  Value *out = val_tensor(s, x->dtype, &o);
  trace_layer(s, l, out, dim_int(0));
  if (LOWERING(x)) out->ir = ir_reshape(G, x->ir, &o, c->loc);
  return out;
}

static Value *mk_embedding(Sema *s, const Builtin *b, Call *c) {
  if (!positive(s, c, 0, "vocab") || !positive(s, c, 1, "dim")) return val_err(s);
  return layer_val(s, layer_new(s, b, c, AI(0) * AI(1)));
}

static Value *ap_embedding(Sema *s, Layer *l, Call *c) {
  if (c->nargs < 1 || !c->arg[0] || c->arg[0]->kind != V_TENSOR) {
    sema_error(s, c->loc, "%s expects token ids int[B, T]", l->desc);
    return val_err(s);
  }
  Value *x = c->arg[0];
  if (x->dtype != DT_INT) {
    sema_error(s, c->argloc[0], "%s looks up integer ids, got %s", l->desc, TY(s, x));
    return val_err(s);
  }
  Shape o = x->shape;
  if (o.rank >= MAX_RANK) return val_err(s);
  o.d[o.rank++] = dim_int(l->arg[1]);
  Value *out = val_tensor(s, DT_FLOAT, &o);
  trace_layer(s, l, out, dim_int(0));
  return out;
}

/* GRU/LSTM/RNN(in, hidden, layers, bidirectional) */
static Value *mk_rnn(Sema *s, const Builtin *b, Call *c) {
  if (!positive(s, c, 0, "input_size") || !positive(s, c, 1, "hidden_size") || !positive(s, c, 2, "layers"))
    return val_err(s);
  int64_t in = AI(0), h = AI(1), layers = AI(2), dirs = AB(3) ? 2 : 1;
  int64_t gates = strcmp(b->name, "GRU") == 0 ? 3 : strcmp(b->name, "LSTM") == 0 ? 4 : 1;
  int64_t params = 0;
  for (int64_t i = 0; i < layers; i++) {
    int64_t lin = i == 0 ? in : dirs * h;
    params += dirs * gates * (h * lin + h * h + 2 * h);
  }
  Layer *l = layer_new(s, b, c, params);
  l->arg[3] = dirs;
  return layer_val(s, l);
}

static Value *ap_rnn(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 3, 3, "a sequence [B, T, in]");
  if (!x) return val_err(s);
  if (!dim_eq(x->shape.d[2], dim_int(l->arg[0]))) {
    sema_error(s, c->argloc[0], "%s expects [B, T, %lld], got %s", l->desc, (long long)l->arg[0], SH(s, x));
    return val_err(s);
  }
  int64_t h = l->arg[1], layers = l->arg[2], dirs = l->arg[3] ? l->arg[3] : 1;
  Shape o = x->shape;
  o.d[2] = dim_int(dirs * h);
  Shape hs = {.rank = 3};
  hs.d[0] = dim_int(layers * dirs);
  hs.d[1] = x->shape.d[0];
  hs.d[2] = dim_int(h);
  Value *out = val_new(s, V_TUPLE);
  Value *seq = val_tensor(s, DT_FLOAT, &o);
  vec_push(s->arena, &out->items, seq);
  vec_push(s->arena, &out->items, val_tensor(s, DT_FLOAT, &hs));
  Dim flops = x->shape.d[1];
  if (!dim_known(flops) && flops.nsym == 1 && strcmp(flops.sym[0], "B") == 0) flops = dim_int(1);
  trace_layer(s, l, seq, dscale(flops, 2 * l->params));
  return out;
}

static Value *mk_mha(Sema *s, const Builtin *b, Call *c) {
  if (!positive(s, c, 0, "dim") || !positive(s, c, 1, "heads")) return val_err(s);
  int64_t d = AI(0), h = AI(1);
  if (d % h != 0) {
    sema_error(s, c->argloc[1], "%s: dim %lld is not divisible by %lld heads", b->name, (long long)d, (long long)h);
    return val_err(s);
  }
  int64_t params = 4 * d * d + 4 * d;
  if (strcmp(b->name, "TransformerEncoderLayer") == 0 || strcmp(b->name, "TransformerDecoderLayer") == 0) {
    if (!positive(s, c, 2, "ff")) return val_err(s);
    int64_t ff = AI(2);
    bool dec = b->name[11] == 'D';
    params = (dec ? 2 : 1) * (4 * d * d + 4 * d) + d * ff + ff + ff * d + d + (dec ? 3 : 2) * 2 * d;
  }
  return layer_val(s, layer_new(s, b, c, params));
}

static Value *ap_mha(Sema *s, Layer *l, Call *c) {
  Value *x = one_input(s, l, c, 3, 3, "a sequence [B, T, dim]");
  if (!x) return val_err(s);
  int64_t d = l->arg[0];
  if (!dim_eq(x->shape.d[2], dim_int(d))) {
    sema_error(s, c->argloc[0], "%s expects [B, T, %lld], got %s", l->desc, (long long)d, SH(s, x));
    return val_err(s);
  }
  /* extra tensors (keys/values, memory) must agree on batch and dim */
  for (int i = 1; i < c->nargs; i++) {
    Value *y = c->arg[i];
    if (!y || y->kind != V_TENSOR) continue;
    if (y->dtype == DT_BOOL) continue;   /* masks */
    if (y->shape.rank != 3 || !dim_eq(y->shape.d[2], dim_int(d)) || !dim_eq(y->shape.d[0], x->shape.d[0])) {
      sema_error(s, c->argloc[i], "%s expects [B, S, %lld] here, got %s", l->desc, (long long)d, SH(s, y));
      return val_err(s);
    }
  }
  Value *out = val_tensor(s, DT_FLOAT, &x->shape);
  Dim T = x->shape.d[1];
  /* the projections (2·params per step) and, for a known length, the two
   * attention products q·kᵀ and weights·v (4·T·d per step) */
  int64_t per_step = 2 * l->params + (dim_known(T) ? 4 * T.c * d : 0);
  trace_layer(s, l, out, dscale(T, per_step));
  return out;
}

/* ---- tensor functions ------------------------------------------------- */

static Value *fn_unary(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0);
  if (x->kind == V_PARAMS) return x;   /* elementwise over every parameter */
  if (val_is_number(x)) {
    double v = val_num(x), r = v;
    const char *n = b->name;
    if (!strcmp(n, "exp")) r = exp(v);
    else if (!strcmp(n, "log")) r = log(v);
    else if (!strcmp(n, "sqrt")) r = sqrt(v);
    else if (!strcmp(n, "abs")) r = fabs(v);
    else if (!strcmp(n, "tanh")) r = tanh(v);
    else if (!strcmp(n, "square")) r = v * v;
    else return as_tensor(s, x);
    return val_float(s, r);
  }
  if (x->dtype == DT_BOOL && strcmp(b->name, "abs") != 0) {
    sema_error(s, c->argloc[0], "%s expects numbers, got %s", b->name, SH(s, x));
    return val_err(s);
  }
  DType dt = (!strcmp(b->name, "abs") || !strcmp(b->name, "sign") || !strcmp(b->name, "neg") ||
              !strcmp(b->name, "square")) ? x->dtype : DT_FLOAT;
  Value *out = val_tensor(s, dt, &x->shape);
  if (LOWERING(x)) out->ir = lower_act(s, b->name, c->nargs > 1 && A(1) ? AF(1) : 0, x->ir, c->loc);
  return out;
}

/* The activations, as nodes (layers and functions share them). NULL for
 * one the compiler does not have yet (reported by the caller's check). */
static IrNode *lower_act(Sema *s, const char *name, double arg, IrNode *x, Loc loc) {
  static const struct { const char *name; IrOp op; } direct[] = {
    {"relu", IR_RELU}, {"sigmoid", IR_SIGMOID}, {"tanh", IR_TANH}, {"exp", IR_EXP}, {"log", IR_LOG},
    {"sqrt", IR_SQRT}, {"abs", IR_ABS}, {"sign", IR_SIGN}, {"neg", IR_NEG},
  };
  for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++)
    if (!strcmp(name, direct[i].name)) return ir_unary(G, direct[i].op, x, loc);
  if (!strcmp(name, "square")) return ir_binary(G, IR_MUL, x, x, loc);
  if (!strcmp(name, "leaky_relu"))
    return ir_binary(G, IR_MAX2, x, ir_binary(G, IR_MUL, ir_const(G, arg ? arg : 0.01, loc), x, loc), loc);
  if (!strcmp(name, "gelu")) {
    /* the tanh form: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    IrNode *x3 = ir_binary(G, IR_MUL, x, ir_binary(G, IR_MUL, x, x, loc), loc);
    IrNode *in = ir_binary(G, IR_MUL, ir_const(G, 0.7978845608028654, loc),
                           ir_binary(G, IR_ADD, x, ir_binary(G, IR_MUL, ir_const(G, 0.044715, loc), x3, loc), loc), loc);
    IrNode *t = ir_binary(G, IR_ADD, ir_const(G, 1, loc), ir_unary(G, IR_TANH, in, loc), loc);
    return ir_binary(G, IR_MUL, ir_binary(G, IR_MUL, ir_const(G, 0.5, loc), x, loc), t, loc);
  }
  if (!strcmp(name, "softmax")) return x->shape.rank ? ir_row(G, IR_SOFTMAX, x, 0, loc) : NULL;
  return NULL;
}

static Value *fn_broadcast(Sema *s, const Builtin *b, Call *c) {
  Value *r = A(0);
  if (r->kind == V_PARAMS) return r;
  for (int i = 1; i < c->nargs; i++) {
    if (!GIVEN(i)) continue;
    if (!strcmp(b->name, "where") && i == 1) continue;
    r = binary_op(s, OP_ADD, r, A(i), c->argloc[i]);
    if (r->kind == V_ERROR) return r;
  }
  if (!strcmp(b->name, "where")) {
    Value *cond = A(0);
    if (cond->kind == V_TENSOR && cond->dtype != DT_BOOL) {
      sema_error(s, c->argloc[0], "where: the condition must be bool, got %s", TY(s, cond));
      sema_hint(s, "compare it to get a condition: where(x > 0, a, b)");
      return val_err(s);
    }
    r = binary_op(s, OP_ADD, A(1), A(2), c->argloc[2]);
    if (r->kind == V_ERROR) return r;
    Value *t = as_tensor(s, cond);
    Shape sh;
    if (!shape_broadcast(&t->shape, &as_tensor(s, r)->shape, &sh)) {
      sema_error(s, c->loc, "where: condition %s and values %s do not broadcast", SH(s, t), SH(s, r));
      return val_err(s);
    }
    Value *out = val_tensor(s, as_tensor(s, r)->dtype, &sh);
    IrNode *ci = s->lw ? lw_of(s, cond, c->loc) : NULL, *ai = ci ? lw_of(s, A(1), c->loc) : NULL,
           *bi = ai ? lw_of(s, A(2), c->loc) : NULL;
    if (ci && ai && bi && (LOWERING(cond) || LOWERING(A(1)) || LOWERING(A(2)))) out->ir = ir_select(G, ci, ai, bi, c->loc);
    return out;
  }
  r = as_tensor(s, r);
  Value *out = val_tensor(s, A(0)->kind == V_TENSOR ? A(0)->dtype : r->dtype, &r->shape);
  if (s->lw && (LOWERING(A(0)) || (GIVEN(1) && LOWERING(A(1))))) {
    IrNode *x = lw_of(s, A(0), c->loc), *y = GIVEN(1) ? lw_of(s, A(1), c->loc) : NULL;
    if (!x || (GIVEN(1) && !y)) return out;   /* an unlowered input: reported by the caller */
    if (y && !strcmp(b->name, "pow")) out->ir = ir_binary(G, IR_POW, x, y, c->loc);
    else if (y && !strcmp(b->name, "maximum")) out->ir = ir_binary(G, IR_MAX2, x, y, c->loc);
    else if (y && !strcmp(b->name, "minimum")) out->ir = ir_binary(G, IR_MIN2, x, y, c->loc);
    else if (y && !strcmp(b->name, "clip")) {
      IrNode *hi = lw_of(s, A(2), c->loc);
      if (hi) out->ir = ir_binary(G, IR_MIN2, ir_binary(G, IR_MAX2, x, y, c->loc), hi, c->loc);
    }
  }
  return out;
}

/* Collects the dims a reduction runs over: `dim` an int, a list, or none (all). */
static bool reduce_dims(Sema *s, Call *c, int di, const Value *x, const char *fn, bool red[MAX_RANK]) {
  int r = x->shape.rank;
  for (int i = 0; i < MAX_RANK; i++) red[i] = !GIVEN(di);
  if (!GIVEN(di)) return true;
  Value *d = A(di);
  if (d->kind == V_INT) {
    int a = axis(s, c->argloc[di], d->i, r, fn);
    if (a < 0) return false;
    red[a] = true;
    return true;
  }
  if (d->kind == V_LIST || d->kind == V_TUPLE) {
    for (int i = 0; i < d->items.len; i++) {
      Value *e = d->items.items[i];
      if (e->kind != V_INT) {
        sema_error(s, c->argloc[di], "%s: dims must be ints", fn);
        return false;
      }
      int a = axis(s, c->argloc[di], e->i, r, fn);
      if (a < 0) return false;
      red[a] = true;
    }
    return true;
  }
  sema_error(s, c->argloc[di], "%s: 'dim' must be an int or a list of ints, got %s", fn, val_desc(s->arena, d));
  return false;
}

/* sum/mean/max/min/var/std/argmax/logsumexp/norm(x, dim, keepdim, mask) */
static Value *fn_reduce(Sema *s, const Builtin *b, Call *c) {
  if (A(0)->kind == V_PARAMS) {
    /* sum(params): one number over all parameters (EWC, MAS, SI penalties) */
    if (GIVEN(1)) {
      sema_error(s, c->argloc[1], "%s over params reduces everything; it takes no dim", b->name);
      return val_err(s);
    }
    Shape none = {0};
    return val_tensor(s, DT_FLOAT, &none);
  }
  Value *x = as_tensor(s, A(0));
  bool red[MAX_RANK];
  if (!reduce_dims(s, c, 1, x, b->name, red)) return val_err(s);
  bool keep = c->nargs > 2 && GIVEN(2) && AB(2);
  if (c->nargs > 3 && GIVEN(3)) {
    Value *m = A(3);
    if (m->kind != V_TENSOR || m->dtype != DT_BOOL) {
      sema_error(s, c->argloc[3], "%s: a mask is a bool tensor, got %s", b->name, TY(s, m));
      return val_err(s);
    }
    for (int i = 0; i < m->shape.rank; i++)
      if (i >= x->shape.rank || !dim_eq(m->shape.d[i], x->shape.d[i])) {
        sema_error(s, c->argloc[3], "%s: the mask %s must match the leading dims of %s", b->name, SH(s, m),
                   SH(s, x));
        return val_err(s);
      }
  }
  Shape o = {0};
  for (int i = 0; i < x->shape.rank; i++) {
    if (!red[i]) o.d[o.rank++] = x->shape.d[i];
    else if (keep) o.d[o.rank++] = dim_int(1);
  }
  DType dt = !strcmp(b->name, "argmax") ? DT_INT : (!strcmp(b->name, "max") || !strcmp(b->name, "min")) ? x->dtype : DT_FLOAT;
  if (!strcmp(b->name, "sum") && x->dtype != DT_FLOAT) dt = DT_INT;
  Value *out = val_tensor(s, dt, &o);
  if (LOWERING(A(0)) && !(c->nargs > 3 && GIVEN(3))) {
    unsigned axes = 0;
    for (int i = 0; i < x->shape.rank; i++)
      if (red[i]) axes |= 1u << i;
    IrNode *xi = x->ir;
    const char *n = b->name;
    if (!strcmp(n, "sum")) out->ir = ir_reduce(G, IR_SUM, xi, axes, keep, c->loc);
    else if (!strcmp(n, "mean")) out->ir = lw_mean(s, xi, axes, keep, c->loc);
    else if (!strcmp(n, "max")) out->ir = ir_reduce(G, IR_MAXR, xi, axes, keep, c->loc);
    else if (!strcmp(n, "min"))
      out->ir = ir_unary(G, IR_NEG, ir_reduce(G, IR_MAXR, ir_unary(G, IR_NEG, xi, c->loc), axes, keep, c->loc), c->loc);
    else if (!strcmp(n, "argmax") && axes == (1u << (x->shape.rank - 1)) && !keep)
      out->ir = ir_row(G, IR_ARGMAX, xi, 0, c->loc);
    else if (!strcmp(n, "var") || !strcmp(n, "std")) {
      /* the biased variance, as numpy and BatchNorm compute it */
      IrNode *mean = ir_expand(G, lw_mean(s, xi, axes, true, c->loc), &x->shape, c->loc);
      IrNode *d = ir_binary(G, IR_SUB, xi, mean, c->loc);
      IrNode *v = lw_mean(s, ir_binary(G, IR_MUL, d, d, c->loc), axes, keep, c->loc);
      out->ir = !strcmp(n, "std") ? ir_unary(G, IR_SQRT, v, c->loc) : v;
    }
  }
  return out;
}

static Value *fn_flatten(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0);
  int r = x->shape.rank;
  if (r == 0) return x;
  int st = axis(s, c->argloc[1], AI(1), r, b->name);
  if (st < 0) return val_err(s);
  Shape o = {.rank = st + 1};
  for (int i = 0; i < st; i++) o.d[i] = x->shape.d[i];
  if (!shape_numel(&x->shape, st, &o.d[st])) {
    sema_error(s, c->argloc[0], "flatten: %s has too many symbolic sizes", SH(s, x));
    return val_err(s);
  }
  Value *out = val_tensor(s, x->dtype, &o);
  if (LOWERING(x)) out->ir = ir_reshape(G, x->ir, &o, c->loc);
  return out;
}

static Value *fn_reshape(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *x = A(0), *l = A(1);
  if (l->kind != V_LIST && l->kind != V_TUPLE) {
    sema_error(s, c->argloc[1], "reshape: the new shape is a list like [B, 1, 28, 28], got %s", val_desc(s->arena, l));
    return val_err(s);
  }
  Shape o = {.rank = l->items.len};
  if (o.rank > MAX_RANK) return val_err(s);
  int infer = -1;
  Dim known = dim_int(1), total;
  if (!shape_numel(&x->shape, 0, &total)) return val_err(s);
  for (int i = 0; i < o.rank; i++) {
    Value *e = l->items.items[i];
    if (e->kind == V_INT && e->i == -1) {
      if (infer >= 0) {
        sema_error(s, c->argloc[1], "reshape: only one size may be -1");
        return val_err(s);
      }
      infer = i;
      continue;
    }
    if (e->kind == V_INT && e->i > 0) o.d[i] = dim_int(e->i);
    else if (e->kind == V_TENSOR && e->s) o.d[i] = dim_sym(e->s);
    else {
      sema_error(s, c->argloc[1], "reshape: sizes must be positive ints, B, or one -1; got %s", val_desc(s->arena, e));
      return val_err(s);
    }
    dim_mul(known, o.d[i], &known);
  }
  /* total / known, for the -1 or to check sizes agree */
  Dim q = total;
  bool ok = true;
  for (int k = 0; k < known.nsym && ok; k++) {
    int found = -1;
    for (int m = 0; m < q.nsym; m++)
      if (!strcmp(q.sym[m], known.sym[k])) found = m;
    if (found < 0) ok = false;
    else {
      for (int m = found; m + 1 < q.nsym; m++) q.sym[m] = q.sym[m + 1];
      q.nsym--;
    }
  }
  if (ok && known.c != 0 && q.c % known.c == 0) q.c /= known.c;
  else ok = false;
  if (infer >= 0) {
    if (!ok) {
      sema_error(s, c->argloc[1], "reshape: cannot split %s into %s", SH(s, x), shape_str(s->arena, &o));
      return val_err(s);
    }
    o.d[infer] = q;
  } else if (!ok || !dim_eq(q, dim_int(1))) {
    sema_error(s, c->argloc[1], "reshape: %s has %s elements, the new shape %s has %s", SH(s, x),
               dim_str(s->arena, total), shape_str(s->arena, &o), dim_str(s->arena, known));
    return val_err(s);
  }
  Value *out = val_tensor(s, x->dtype, &o);
  if (LOWERING(x)) out->ir = ir_reshape(G, x->ir, &o, c->loc);
  return out;
}

static Value *fn_squeeze(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0);
  int r = x->shape.rank;
  bool un = !strcmp(b->name, "unsqueeze");
  int a = axis(s, c->argloc[1], AI(1), un ? r + 1 : r, b->name);
  if (a < 0) return val_err(s);
  Shape o = {0};
  if (un) {
    if (r >= MAX_RANK) return val_err(s);
    for (int i = 0, j = 0; i <= r; i++) o.d[o.rank++] = i == a ? dim_int(1) : x->shape.d[j++];
  } else {
    if (!dim_eq(x->shape.d[a], dim_int(1))) {
      sema_error(s, c->argloc[1], "squeeze: dim %d of %s is %s, not 1", a, SH(s, x), dim_str(s->arena, x->shape.d[a]));
      return val_err(s);
    }
    for (int i = 0; i < r; i++)
      if (i != a) o.d[o.rank++] = x->shape.d[i];
  }
  Value *out = val_tensor(s, x->dtype, &o);
  if (LOWERING(x)) out->ir = ir_reshape(G, x->ir, &o, c->loc);
  return out;
}

static Value *fn_transpose(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0);
  int r = x->shape.rank;
  int i = axis(s, c->argloc[1], AI(1), r, b->name), j = i < 0 ? -1 : axis(s, c->argloc[2], AI(2), r, b->name);
  if (i < 0 || j < 0) return val_err(s);
  Shape o = x->shape;
  o.d[i] = x->shape.d[j];
  o.d[j] = x->shape.d[i];
  return val_tensor(s, x->dtype, &o);
}

static Value *fn_permute(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0), *l = A(1);
  int r = x->shape.rank;
  if (l->items.len != r) {
    sema_error(s, c->argloc[1], "permute: %s has %d dims, the order lists %d", SH(s, x), r, l->items.len);
    return val_err(s);
  }
  Shape o = {.rank = r};
  bool seen[MAX_RANK] = {0};
  for (int i = 0; i < r; i++) {
    Value *e = l->items.items[i];
    int a = e->kind == V_INT ? axis(s, c->argloc[1], e->i, r, b->name) : -1;
    if (a < 0 || seen[a]) {
      if (a >= 0) sema_error(s, c->argloc[1], "permute: dim %d appears twice", a);
      return val_err(s);
    }
    seen[a] = true;
    o.d[i] = x->shape.d[a];
  }
  return val_tensor(s, x->dtype, &o);
}

static Value *fn_concat(Sema *s, const Builtin *b, Call *c) {
  Value *l = A(0);
  bool stack = !strcmp(b->name, "stack");
  if (l->items.len == 0) {
    sema_error(s, c->argloc[0], "%s of an empty list", b->name);
    return val_err(s);
  }
  Value *first = l->items.items[0];
  for (int i = 0; i < l->items.len; i++) {
    Value *e = l->items.items[i];
    if (e->kind != V_TENSOR) {
      sema_error(s, c->argloc[0], "%s: item %d is %s, not a tensor", b->name, i, val_desc(s->arena, e));
      return val_err(s);
    }
  }
  int r = first->shape.rank;
  int a = axis(s, c->argloc[1], AI(1), stack ? r + 1 : r, b->name);
  if (a < 0) return val_err(s);
  Shape o = first->shape;
  Dim sum = first->shape.d[a < r ? a : 0];
  for (int i = 1; i < l->items.len; i++) {
    Value *e = l->items.items[i];
    bool ok = e->shape.rank == r;
    for (int k = 0; ok && k < r; k++)
      if (k != a || stack) ok = dim_eq(e->shape.d[k], first->shape.d[k]);
    if (!ok) {
      sema_error(s, c->argloc[0], "%s along dim %d: item %d is %s but item 0 is %s", b->name, a, i, SH(s, e),
                 SH(s, first));
      return val_err(s);
    }
    if (!stack) {
      Dim d = e->shape.d[a];
      bool same_syms = d.nsym == sum.nsym;
      for (int k = 0; same_syms && k < d.nsym; k++) same_syms = !strcmp(d.sym[k], sum.sym[k]);
      if (!same_syms) {
        sema_error(s, c->argloc[0], "concat along dim %d: cannot add sizes %s and %s", a,
                   dim_str(s->arena, sum), dim_str(s->arena, d));
        return val_err(s);
      }
      sum.c += d.c;
    }
  }
  if (stack) {
    if (r >= MAX_RANK) return val_err(s);
    for (int k = r; k > a; k--) o.d[k] = o.d[k - 1];
    o.d[a] = dim_int(l->items.len);
    o.rank = r + 1;
  } else {
    o.d[a] = sum;
  }
  Value *out = val_tensor(s, first->dtype, &o);
  if (!s->lw) return out;
  for (int i = 0; i < l->items.len; i++)
    if (!LOWERING((Value *)l->items.items[i])) return out;   /* not lowered: said where it was made */
  if (!lw_sliceable(&o, a)) {
    lw_unsupported(s, c->loc, arena_printf(s->arena, "%s along a dim of the batch's size", b->name));
    return out;
  }
  /* each part put in its place in the whole (SLICE_BWD: zeros elsewhere),
   * and the places added: the gradient of each part is then its slice */
  int64_t at = 0;
  for (int i = 0; i < l->items.len; i++) {
    IrNode *part = ((Value *)l->items.items[i])->ir;
    if (stack) {
      Shape ps = o;
      ps.d[a] = dim_int(1);
      part = ir_reshape(G, part, &ps, c->loc);
    }
    int64_t len = part->shape.d[a].c;
    IrWindow w = {.axis = a, .start = at, .stop = at + len, .step = 1};
    IrNode *placed = l->items.len == 1 ? part : ir_window(G, IR_SLICE_BWD, part, NULL, &o, &w, c->loc);
    out->ir = out->ir ? ir_binary(G, IR_ADD, out->ir, placed, c->loc) : placed;
    at += len;
  }
  return out;
}

static Value *fn_softmax(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0);
  int a = axis(s, c->argloc[1], AI(1), x->shape.rank, b->name);
  if (a < 0) return val_err(s);
  Value *out = val_tensor(s, DT_FLOAT, &x->shape);
  if (LOWERING(x) && a == x->shape.rank - 1)
    out->ir = ir_row(G, !strcmp(b->name, "softmax") ? IR_SOFTMAX : IR_LOG_SOFTMAX, x->ir, 0, c->loc);
  return out;
}

static Value *fn_one_hot(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0);
  if (x->dtype != DT_INT) {
    sema_error(s, c->argloc[0], "%s expects integer class ids, got %s", b->name, TY(s, x));
    return val_err(s);
  }
  Shape o = x->shape;
  if (o.rank >= MAX_RANK) return val_err(s);
  o.d[o.rank++] = dim_int(AI(1));
  Value *out = val_tensor(s, DT_FLOAT, &o);
  if (LOWERING(x)) out->ir = ir_row(G, IR_ONE_HOT, x->ir, AI(1), c->loc);
  return out;
}

static Value *fn_gather(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0), *ids = A(1);
  if (ids->dtype != DT_INT) {
    sema_error(s, c->argloc[1], "gather: indices must be ints, got %s", TY(s, ids));
    return val_err(s);
  }
  int a = axis(s, c->argloc[2], AI(2), x->shape.rank, b->name);
  if (a < 0) return val_err(s);
  /* ids has x's shape without the gathered dim (one pick per row) */
  Shape want = {0};
  for (int i = 0; i < x->shape.rank; i++)
    if (i != a) want.d[want.rank++] = x->shape.d[i];
  bool ok = ids->shape.rank == want.rank;
  for (int i = 0; ok && i < want.rank; i++) ok = dim_eq(ids->shape.d[i], want.d[i]);
  if (!ok) {
    sema_error(s, c->argloc[1], "gather: picking along dim %d of %s needs indices %s, got %s", a, SH(s, x),
               ttype_str(s->arena, DT_INT, &want), SH(s, ids));
    return val_err(s);
  }
  return val_tensor(s, x->dtype, &ids->shape);
}

static Value *fn_masked_fill(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0), *m = A(1);
  Shape sh;
  if (m->dtype != DT_BOOL) {
    sema_error(s, c->argloc[1], "%s: the mask must be bool, got %s", b->name, TY(s, m));
    return val_err(s);
  }
  if (!shape_broadcast(&x->shape, &m->shape, &sh) || sh.rank != x->shape.rank) {
    sema_error(s, c->argloc[1], "%s: the mask %s does not broadcast to %s", b->name, SH(s, m), SH(s, x));
    return val_err(s);
  }
  return val_tensor(s, x->dtype, &x->shape);
}

static Value *fn_causal_mask(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Shape o = {.rank = 2};
  o.d[0] = o.d[1] = A(0)->kind == V_INT ? dim_int(AI(0)) : A(0)->s ? dim_sym(A(0)->s) : dim_int(1);
  return val_tensor(s, DT_BOOL, &o);
}

/* zeros([dims]), ones, randn, rand, full([dims], v), variable([dims]) */
static Value *fn_create(Sema *s, const Builtin *b, Call *c) {
  Shape o;
  if (!shape_from_list(s, A(0), c->argloc[0], &o, b->name)) return val_err(s);
  for (int i = 0; i < o.rank; i++)
    if (dim_known(o.d[i]) && o.d[i].c <= 0) {
      sema_error(s, c->argloc[0], "%s: size %d is %lld; sizes must be positive", b->name, i, (long long)o.d[i].c);
      return val_err(s);
    }
  Value *v = val_tensor(s, DT_FLOAT, &o);
  if (!strcmp(b->name, "variable")) v->trainable = true;
  if (!strcmp(b->name, "randint")) v->dtype = DT_INT;
  if (s->lw) {
    const char *n = b->name;
    if (!strcmp(n, "zeros") || !strcmp(n, "ones") || !strcmp(n, "full"))
      v->ir = ir_expand(G, ir_const(G, !strcmp(n, "zeros") ? 0 : !strcmp(n, "ones") ? 1 : AF(1), c->loc), &o, c->loc);
    else if (!strcmp(n, "rand"))
      v->ir = lw_rand(s, &o, c->loc);
    else if (!strcmp(n, "randn"))
      v->ir = lw_randn(s, &o, c->loc);
    else if (!strcmp(n, "randint"))
      lw_unsupported(s, c->loc, n);
    else if (!strcmp(n, "variable")) {
      /* a trainable tensor: a parameter of its own */
      const char *init = A(1)->s;
      v->ir = lw_param(s, &o, !strcmp(init, "ones") ? INIT_ONES : !strcmp(init, "zeros") ? INIT_ZEROS : INIT_UNIFORM,
                       !strcmp(init, "rand") ? 1.0 : 0.0, c->loc);
    }
  }
  return v;
}

static Value *fn_like(Sema *s, const Builtin *b, Call *c) {
  Value *out = val_tensor(s, A(0)->dtype, &A(0)->shape);
  if (LOWERING(A(0)) && !strcmp(b->name, "randn_like"))
    out->ir = lw_randn(s, &out->shape, c->loc);
  else if (LOWERING(A(0)))
    out->ir = ir_expand(G, ir_const(G, !strcmp(b->name, "zeros_like") ? 0 : 1, c->loc), &out->shape, c->loc);
  return out;
}

static Value *fn_arange(Sema *s, const Builtin *b, Call *c) {
  if (s->lw) lw_unsupported(s, c->loc, b->name);
  Shape o = {.rank = 1};
  o.d[0] = dim_int(AI(0));
  return val_tensor(s, DT_INT, &o);
}

static Value *fn_grad(Sema *s, const Builtin *b, Call *c) {
  Value *y = A(0), *x = A(1);
  (void)b;
  if (y->kind != V_TENSOR || y->shape.rank != 0 || y->dtype != DT_FLOAT) {
    sema_error(s, c->argloc[0], "grad: the first argument must be a scalar float (a loss), got %s", SH(s, y));
    if (y->kind == V_TENSOR && y->shape.rank > 0) sema_hint(s, "reduce it first, e.g. grad(sum(y), x) or grad(mean(y), x)");
    return val_err(s);
  }
  if (x->kind == V_TENSOR) {
    if (x->dtype != DT_FLOAT) {
      sema_error(s, c->argloc[1], "grad: cannot differentiate with respect to %s (integers have no gradient)", SH(s, x));
      return val_err(s);
    }
    Value *out = val_tensor(s, DT_FLOAT, &x->shape);
    if (LOWERING(y) && LOWERING(x)) {
      IrNode *gx = NULL;
      ad_grad(G, y->ir, &x->ir, 1, &gx);
      out->ir = gx ? gx : ir_expand(G, ir_const(G, 0, c->loc), &x->shape, c->loc);
    }
    return out;
  }
  if (x->kind == V_PARAMS) {
    Value *g = val_new(s, V_PARAMS);
    g->layer = x->layer;
    return g;
  }
  if (x->kind == V_MODEL) {
    sema_error(s, c->argloc[1], "grad: differentiate with respect to params(%s), not the model itself", x->layer->type);
    return val_err(s);
  }
  sema_error(s, c->argloc[1], "grad: the second argument must be a tensor or params(model), got %s", val_desc(s->arena, x));
  return val_err(s);
}

static Value *fn_identity(Sema *s, const Builtin *b, Call *c) {
  (void)s;
  (void)b;
  return A(0);
}

/* stop_grad(x): x, cut from the gradient. grad_reverse(x, l): x going
 * forward, -l times the gradient going back, written as
 * (1 + l) stop_grad(x) - l x (its value is x, its derivative -l). */
static Value *fn_stop_grad(Sema *s, const Builtin *b, Call *c) {
  Value *x = A(0);
  if (x->kind != V_TENSOR) {
    if (s->lw && x->kind == V_PARAMS) {
      sema_error(s, c->loc, "%s of params cannot be compiled for training yet", b->name);
      s->lw->failed = true;
    }
    return x;
  }
  Value *out = val_tensor(s, x->dtype, &x->shape);
  out->trainable = false;
  if (LOWERING(x)) {
    IrNode *cut = ir_unary(G, IR_STOP_GRAD, x->ir, c->loc);
    if (!strcmp(b->name, "grad_reverse")) {
      double l = AF(1);
      cut = ir_binary(G, IR_SUB, ir_binary(G, IR_MUL, ir_const(G, 1 + l, c->loc), cut, c->loc),
                      ir_binary(G, IR_MUL, ir_const(G, l, c->loc), x->ir, c->loc), c->loc);
    }
    out->ir = cut;
  }
  return out;
}

static Value *fn_params(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *m = A(0);
  if (m->kind != V_MODEL) {
    sema_error(s, c->argloc[0], "params() takes a model, got %s", val_desc(s->arena, m));
    return val_err(s);
  }
  if (s->lw) {
    /* fast weights (MAML) and penalties over parameters are values the
     * compiler does not lower yet: refuse rather than train something else */
    sema_error(s, c->loc, "params() as a value cannot be compiled for training yet");
    sema_hint(s, "nnc check accepts it; the compiler supports it in a later version");
    s->lw->failed = true;
  }
  Value *p = val_new(s, V_PARAMS);
  p->layer = m->layer;
  return p;
}

static Value *fn_load(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *m = A(0);
  const char *path = A(1)->s;
  sema_line(s, "load       %s from %s", m->layer->path ? m->layer->path : m->layer->type, path);
  if (s->lw) {
    vec_push(s->arena, &s->lw->load_paths, (void *)resolve_path(s, path));
    vec_push(s->arena, &s->lw->load_layers, m->layer);
  }
  size_t n = strlen(path);
  if (n < 12 || strcmp(path + n - 12, ".safetensors") != 0) {
    sema_error(s, c->argloc[1], "load: checkpoints are .safetensors files, got \"%s\"", path);
    return val_err(s);
  }
  return m;
}

static Value *fn_effect(Sema *s, const Builtin *b, Call *c) {
  if (!strcmp(b->name, "prune")) {
    double amt = AF(1);
    if (amt <= 0 || amt >= 1) {
      sema_error(s, c->argloc[1], "prune: amount is the fraction of weights to remove, in (0, 1); got %g", amt);
      return val_err(s);
    }
    if (A(0)->kind == V_MODEL)
      sema_line(s, "  prune      %s: the smallest %g%% of each weight's remaining entries, by magnitude", A(0)->layer->type,
                amt * 100);
    if (s->lw) {
      if (!s->after_when || strcmp(s->after_when, "epoch") != 0 || A(0)->kind != V_MODEL) {
        lw_unsupported(s, c->loc, "prune(...) other than in after epoch { ... } on a model");
      } else {
        double *keep = arena_alloc(s->arena, sizeof *keep);
        *keep = amt;
        vec_push(s->arena, &s->lw->prune_layers, A(0)->layer);
        vec_push(s->arena, &s->lw->prune_amounts, keep);
        Loc *at = arena_alloc(s->arena, sizeof *at);
        *at = c->loc;
        vec_push(s->arena, &s->lw->prune_locs, at);
      }
    }
  }
  Value *v = val_new(s, V_NONE);
  v->s = b->name;
  return v;
}

/* ---- losses ----------------------------------------------------------- */

static bool reduction_ok(Sema *s, Call *c, int i, const char *fn, bool *none) {
  const char *r = A(i)->s;
  *none = !strcmp(r, "none");
  bool kl = !strcmp(fn, "kl_div");   /* PyTorch's kl_div also has "batchmean" */
  if (strcmp(r, "mean") && strcmp(r, "sum") && strcmp(r, "none") && !(kl && !strcmp(r, "batchmean"))) {
    sema_error(s, c->argloc[i], "%s: reduction is \"mean\", \"sum\"%s or \"none\", got \"%s\"", fn,
               kl ? ", \"batchmean\"" : "", r);
    if (kl && !strcmp(r, "batch_mean")) sema_hint(s, "it is spelled \"batchmean\"");
    return false;
  }
  return true;
}

/* KL(q || p) per element, q (log q - log_p), from log-probabilities log_p
 * and probabilities q; a q of 0 adds 0 (log q is taken of max(q, 1e-30),
 * so its gradient stays finite too). */
static IrNode *kl_elems(Sema *s, IrNode *logp, IrNode *q, Loc l) {
  IrNode *logq = ir_unary(G, IR_LOG, ir_binary(G, IR_MAX2, q, ir_const(G, 1e-30, l), l), l);
  return ir_binary(G, IR_MUL, q, ir_binary(G, IR_SUB, logq, logp, l), l);
}

/* A loss is a scalar, or with reduction "none" one value per element as in
 * PyTorch (`shape`: the prediction's for mse, the target's for cross_entropy). */
static Value *loss_result(Sema *s, const Shape *shape, bool none) {
  Shape o = {0};
  if (none) o = *shape;
  return val_tensor(s, DT_FLOAT, &o);
}

/* mse, l1, bce, bce_with_logits, kl_div: prediction and target of one shape */
static Value *loss_pair(Sema *s, const Builtin *b, Call *c) {
  Value *p = as_tensor(s, A(0)), *t = as_tensor(s, A(1));
  bool none;
  if (!reduction_ok(s, c, 2, b->name, &none)) return val_err(s);
  if (p->dtype != DT_FLOAT) {
    sema_error(s, c->argloc[0], "%s: the prediction must be float, got %s", b->name, SH(s, p));
    return val_err(s);
  }
  bool same = p->shape.rank == t->shape.rank || A(1)->kind != V_TENSOR;
  for (int i = 0; same && i < t->shape.rank && A(1)->kind == V_TENSOR; i++) same = dim_eq(p->shape.d[i], t->shape.d[i]);
  if (!same) {
    sema_error(s, c->loc, "%s: prediction %s and target %s have different shapes", b->name, SH(s, p), SH(s, t));
    if (p->shape.rank == t->shape.rank + 1 && dim_eq(p->shape.d[p->shape.rank - 1], dim_int(1)))
      sema_hint(s, "squeeze(pred, -1) turns %s into %s (broadcasting them would compare every pair)", SH(s, p), SH(s, t));
    else if (t->shape.rank == p->shape.rank + 1)
      sema_hint(s, "squeeze(target, -1) or unsqueeze(pred, -1) makes them agree");
    return val_err(s);
  }
  Value *out = loss_result(s, &p->shape, none);
  IrNode *pi = s->lw ? lw_of(s, A(0), c->loc) : NULL, *ti = pi ? lw_of(s, A(1), c->loc) : NULL;
  if (pi && ti && (LOWERING(A(0)) || LOWERING(A(1)))) {
    IrNode *e = NULL;
    Loc l = c->loc;
    const char *n = b->name;
    if (!strcmp(n, "mse")) {
      IrNode *d = ir_binary(G, IR_SUB, pi, ti, l);
      e = ir_binary(G, IR_MUL, d, d, l);
    } else if (!strcmp(n, "l1")) {
      e = ir_unary(G, IR_ABS, ir_binary(G, IR_SUB, pi, ti, l), l);
    } else if (!strcmp(n, "bce")) {
      /* -(t log p + (1-t) log(1-p)), logs clamped at -100 as PyTorch does */
      IrNode *lo = ir_const(G, -100, l), *one = ir_const(G, 1, l);
      IrNode *lp = ir_binary(G, IR_MAX2, ir_unary(G, IR_LOG, pi, l), lo, l);
      IrNode *lq = ir_binary(G, IR_MAX2, ir_unary(G, IR_LOG, ir_binary(G, IR_SUB, one, pi, l), l), lo, l);
      e = ir_unary(G, IR_NEG, ir_binary(G, IR_ADD, ir_binary(G, IR_MUL, ti, lp, l),
                                        ir_binary(G, IR_MUL, ir_binary(G, IR_SUB, one, ti, l), lq, l), l), l);
    } else if (!strcmp(n, "bce_with_logits")) {
      /* max(x, 0) - x t + log(1 + exp(-|x|)), stable for large |x| */
      IrNode *sp = ir_unary(G, IR_LOG, ir_binary(G, IR_ADD, ir_const(G, 1, l),
                                                 ir_unary(G, IR_EXP, ir_unary(G, IR_NEG, ir_unary(G, IR_ABS, pi, l), l), l), l), l);
      e = ir_binary(G, IR_ADD, ir_binary(G, IR_SUB, ir_unary(G, IR_RELU, pi, l), ir_binary(G, IR_MUL, pi, ti, l), l), sp, l);
    } else if (!strcmp(n, "kl_div")) {
      e = kl_elems(s, pi, ti, l);
    }
    if (e && e->shape.rank < p->shape.rank) e = ir_expand(G, e, &p->shape, l);
    if (e) {
      const char *red = A(2)->s;
      unsigned all = all_axes(e->shape.rank);
      if (!strcmp(red, "batchmean"))   /* the sum over a sample, averaged over the batch (dim 0) */
        out->ir = ir_binary(G, IR_DIV, ir_reduce(G, IR_SUM, e, all, false, l), lw_count(s, &e->shape, 1u, l), l);
      else
        out->ir = !strcmp(red, "none") ? e : !strcmp(red, "sum") ? ir_reduce(G, IR_SUM, e, all, false, l) : lw_mean(s, e, all, false, l);
    }
  }
  return out;
}

static Value *loss_ce(Sema *s, const Builtin *b, Call *c) {
  Value *lg = A(0), *t = A(1);
  bool none;
  if (!reduction_ok(s, c, 4, b->name, &none)) return val_err(s);
  if (lg->dtype != DT_FLOAT || lg->shape.rank < 2) {
    sema_error(s, c->argloc[0], "%s expects logits [B, classes] or [B, T, classes], got %s", b->name, SH(s, lg));
    return val_err(s);
  }
  if (t->dtype != DT_INT) {
    sema_error(s, c->argloc[1], "%s expects integer class ids as the target, got %s", b->name, TY(s, t));
    if (t->dtype == DT_FLOAT && t->shape.rank == lg->shape.rank)
      sema_hint(s, "for soft targets (probabilities) use kl_div(log_softmax(logits, -1), target)");
    else
      sema_hint(s, "class ids are ints: label(i) in a csv data block, randint(...) in generate(...)");
    return val_err(s);
  }
  bool ok = t->shape.rank == lg->shape.rank - 1;
  for (int i = 0; ok && i < t->shape.rank; i++) ok = dim_eq(t->shape.d[i], lg->shape.d[i]);
  if (!ok) {
    Shape want = lg->shape;
    want.rank--;
    sema_error(s, c->loc, "%s: logits %s need targets %s, got %s", b->name, SH(s, lg),
               ttype_str(s->arena, DT_INT, &want), SH(s, t));
    return val_err(s);
  }
  if (GIVEN(2) && (AF(2) < 0 || AF(2) >= 1)) {
    sema_error(s, c->argloc[2], "%s: label_smoothing must be in [0, 1), got %g", b->name, AF(2));
    return val_err(s);
  }
  Value *out = loss_result(s, &t->shape, none);
  if (LOWERING(lg) && LOWERING(t)) {
    Loc l = c->loc;
    int64_t classes = lg->shape.d[lg->shape.rank - 1].c;
    IrNode *x = as_matrix(s, lg->ir, l);
    Shape ids_shape = {.rank = 1};
    ids_shape.d[0] = x->shape.d[0];
    IrNode *ids = t->ir->shape.rank == 1 ? t->ir : ir_reshape(G, t->ir, &ids_shape, l);
    IrNode *logp = !strcmp(b->name, "nll") ? x : ir_row(G, IR_LOG_SOFTMAX, x, 0, l);
    IrNode *target = ir_row(G, IR_ONE_HOT, ids, classes, l);
    if (GIVEN(2) && AF(2) > 0) {
      /* label smoothing: (1-e) one_hot + e/C */
      double e = AF(2);
      target = ir_binary(G, IR_ADD, ir_binary(G, IR_MUL, target, ir_const(G, 1 - e, l), l), ir_const(G, e / (double)classes, l), l);
    }
    IrNode *per = ir_unary(G, IR_NEG, ir_reduce(G, IR_SUM, ir_binary(G, IR_MUL, target, logp, l), 2u, false, l), l);
    IrNode *keep = NULL;
    if (GIVEN(3)) {  /* ignore_index: those rows count for nothing */
      keep = ir_binary(G, IR_SUB, ir_const(G, 1, l), ir_binary(G, IR_EQ, ids, ir_const(G, (double)AI(3), l), l), l);
      per = ir_binary(G, IR_MUL, per, keep, l);
    }
    const char *red = A(4)->s;
    if (!strcmp(red, "none")) out->ir = per->shape.rank == t->shape.rank ? per : ir_reshape(G, per, &t->shape, l);
    else if (!strcmp(red, "sum")) out->ir = ir_reduce(G, IR_SUM, per, 1u, false, l);
    else if (keep)
      out->ir = ir_binary(G, IR_DIV, ir_reduce(G, IR_SUM, per, 1u, false, l),
                          ir_binary(G, IR_MAX2, ir_reduce(G, IR_SUM, keep, 1u, false, l), ir_const(G, 1, l), l), l);
    else out->ir = lw_mean(s, per, 1u, false, l);
  }
  return out;
}

static Value *loss_kd(Sema *s, const Builtin *b, Call *c) {
  Value *st = A(0), *te = A(1), *y = A(2);
  bool ok = st->shape.rank == 2 && te->shape.rank == 2 && dim_eq(st->shape.d[1], te->shape.d[1]) &&
            dim_eq(st->shape.d[0], te->shape.d[0]);
  if (!ok) {
    sema_error(s, c->loc, "%s: student %s and teacher %s logits must have the same shape [B, classes]", b->name,
               SH(s, st), SH(s, te));
    return val_err(s);
  }
  if (y->dtype != DT_INT || y->shape.rank != 1) {
    sema_error(s, c->argloc[2], "%s: labels must be int[B], got %s", b->name, SH(s, y));
    return val_err(s);
  }
  if (AF(4) < 0 || AF(4) > 1) {
    sema_error(s, c->argloc[4], "%s: alpha weighs the two terms and must be in [0, 1], got %g", b->name, AF(4));
    return val_err(s);
  }
  if (AF(3) <= 0) {
    sema_error(s, c->argloc[3], "%s: the temperature T must be positive, got %g", b->name, AF(3));
    return val_err(s);
  }
  Shape o = {0};
  Value *out = val_tensor(s, DT_FLOAT, &o);
  if (LOWERING(st) && te->ir && y->ir) {
    /* alpha T² KL(softmax(t/T) || softmax(s/T)) (batchmean) + (1 - alpha) cross_entropy(s, y),
     * as in Hinton et al. and the course's HW13 */
    Loc l = c->loc;
    double T = AF(3), alpha = AF(4);
    IrNode *invT = ir_const(G, 1 / T, l);
    IrNode *logp = ir_row(G, IR_LOG_SOFTMAX, ir_binary(G, IR_MUL, st->ir, invT, l), 0, l);
    IrNode *q = ir_row(G, IR_SOFTMAX, ir_binary(G, IR_MUL, te->ir, invT, l), 0, l);
    IrNode *kl = ir_binary(G, IR_DIV, ir_reduce(G, IR_SUM, kl_elems(s, logp, q, l), 3u, false, l),
                           lw_count(s, &st->ir->shape, 1u, l), l);
    IrNode *onehot = ir_row(G, IR_ONE_HOT, y->ir, st->ir->shape.d[1].c, l);
    IrNode *ll = ir_reduce(G, IR_SUM, ir_binary(G, IR_MUL, onehot, ir_row(G, IR_LOG_SOFTMAX, st->ir, 0, l), l), 2u, false, l);
    IrNode *ce = ir_unary(G, IR_NEG, lw_mean(s, ll, 1u, false, l), l);
    out->ir = ir_binary(G, IR_ADD, ir_binary(G, IR_MUL, ir_const(G, alpha * T * T, l), kl, l),
                        ir_binary(G, IR_MUL, ir_const(G, 1 - alpha, l), ce, l), l);
  }
  return out;
}

/* ---- metrics ------------------------------------------------------------ */

static Value *metric(Sema *s, const Builtin *b, Call *c) {
  if (!strcmp(b->name, "accuracy")) {
    Value *lg = A(0), *y = A(1);
    /* logits [B, C] with ids int[B], or predictions int/bool[B] against labels [B] */
    bool ok = lg->kind == V_TENSOR && y->kind == V_TENSOR &&
              ((y->dtype == DT_INT && lg->dtype == DT_FLOAT && lg->shape.rank == y->shape.rank + 1) ||
               (lg->dtype != DT_FLOAT && lg->shape.rank == y->shape.rank));
    for (int i = 0; ok && i < y->shape.rank; i++) ok = dim_eq(lg->shape.d[i], y->shape.d[i]);
    if (!ok) {
      sema_error(s, c->loc, "accuracy expects logits [B, classes] (or predicted ids int[B]) and labels int[B], got %s and %s",
                 SH(s, lg), SH(s, y));
      if (lg->kind == V_TENSOR && lg->dtype == DT_FLOAT && lg->shape.rank == y->shape.rank)
        sema_hint(s, "for one logit per sample, compare it: accuracy(logits > 0, y)");
      return val_err(s);
    }
  } else if (!strcmp(b->name, "auc")) {
    Value *sc = A(0), *y = A(1);
    if (sc->shape.rank != 1 || y->shape.rank != 1) {
      sema_error(s, c->loc, "auc expects scores [B] and labels [B], got %s and %s", SH(s, sc), SH(s, y));
      return val_err(s);
    }
  }
  Value *m = val_new(s, V_METRIC);
  m->s = b->name;
  m->where = c->node;
  if (!strcmp(b->name, "accuracy") && LOWERING(A(0)) && LOWERING(A(1))) {
    Value *lg = A(0);
    IrNode *pred = lg->dtype == DT_FLOAT ? ir_row(G, IR_ARGMAX, lg->ir, 0, c->loc) : lg->ir;
    IrNode *hit = ir_binary(G, IR_EQ, pred, A(1)->ir, c->loc);
    m->ir = lw_mean(s, hit, all_axes(hit->shape.rank), false, c->loc);
  } else if (!strcmp(b->name, "mean_of") && LOWERING(A(0))) {
    m->ir = lw_mean(s, A(0)->ir, all_axes(A(0)->ir->shape.rank), false, c->loc);
  } else if (!strcmp(b->name, "max_of") && LOWERING(A(0))) {
    /* the batch's maximum; the runtime keeps the largest over the batches */
    m->ir = A(0)->ir->shape.rank ? ir_reduce(G, IR_MAXR, A(0)->ir, all_axes(A(0)->ir->shape.rank), false, c->loc) : A(0)->ir;
  } else if (!strcmp(b->name, "auc") && LOWERING(A(0)) && LOWERING(A(1))) {
    /* over the whole data set, not per batch: the step leaves each sample's
     * score and label, and the runtime ranks them all (sema.c, output_metrics) */
    m->ir = A(0)->ir;
    vec_push(s->arena, &m->items, A(1));
  }
  return m;
}

/* ---- optimizers and schedules ----------------------------------------- */

static bool lr_ok(Sema *s, Call *c, int i, const char *fn) {
  if (A(i)->kind != V_SCHEDULE && (AF(i) <= 0 || AF(i) > 10)) {
    sema_error(s, c->argloc[i], "%s: the learning rate must be in (0, 10], got %g", fn, AF(i));
    return false;
  }
  return true;
}

static Value *mk_optim(Sema *s, const Builtin *b, Call *c) {
  Value *what = A(0);
  Optimizer *o = arena_alloc(s->arena, sizeof *o);
  o->kind = b->name;
  if (what->kind == V_LIST) {
    for (int i = 0; i < what->items.len; i++) {
      Value *e = what->items.items[i];
      if (!(e->kind == V_MODEL || e->kind == V_PARAMS || (e->kind == V_TENSOR && e->trainable))) {
        sema_error(s, c->argloc[0], "%s: item %d of the list is %s; an optimizer updates models, params(...) or variables",
                   b->name, i, val_desc(s->arena, e));
        return val_err(s);
      }
      vec_push(s->arena, &o->targets, e);
    }
  } else if (what->kind == V_LAYER) {
    sema_error(s, c->argloc[0], "%s: optimize a model (or params(model)), not a single layer", b->name);
    return val_err(s);
  } else {
    vec_push(s->arena, &o->targets, what);
  }
  if (!lr_ok(s, c, 1, b->name)) return val_err(s);
  char buf[256];
  size_t k = 0;
  if (A(1)->kind == V_SCHEDULE) k += (size_t)snprintf(buf, sizeof buf, "lr %s", A(1)->str2);
  else k += (size_t)snprintf(buf, sizeof buf, "lr %g", AF(1));
  ParamSpec ps[MAX_ARGS];
  bool variadic;
  int n = parse_params(b->params, ps, &variadic);
  o->lr = A(1)->kind == V_SCHEDULE ? A(1)->f : AF(1);
  if (A(1)->kind == V_SCHEDULE) o->schedule = A(1);
  for (int i = 2; i < n; i++) {
    Value *v = A(i);
    if (!v || o->nhyper >= 10) continue;
    if (!strcmp(ps[i].name, "betas") && (v->kind == V_TUPLE || v->kind == V_LIST) && v->items.len == 2 &&
        val_is_number(v->items.items[0]) && val_is_number(v->items.items[1])) {
      o->hyper_names[o->nhyper] = "beta1";
      o->hyper[o->nhyper++] = val_num(v->items.items[0]);
      o->hyper_names[o->nhyper] = "beta2";
      o->hyper[o->nhyper++] = val_num(v->items.items[1]);
    } else if (val_is_number(v)) {
      o->hyper_names[o->nhyper] = arena_strdup(s->arena, ps[i].name);
      o->hyper[o->nhyper++] = val_num(v);
    }
  }
  for (int i = 2; i < n && k < sizeof buf - 48; i++) {
    if (!c->given[i]) continue;
    Value *v = A(i);
    if (!strcmp(ps[i].name, "betas")) {
      if ((v->kind != V_TUPLE && v->kind != V_LIST) || v->items.len != 2) {
        sema_error(s, c->argloc[i], "%s: betas is a pair like (0.9, 0.999)", b->name);
        return val_err(s);
      }
      Value *b0 = v->items.items[0], *b1 = v->items.items[1];
      if (!val_is_number(b0) || !val_is_number(b1) || val_num(b0) < 0 || val_num(b0) >= 1 || val_num(b1) < 0 ||
          val_num(b1) >= 1) {
        sema_error(s, c->argloc[i], "%s: both betas must be numbers in [0, 1)", b->name);
        return val_err(s);
      }
      k += (size_t)snprintf(buf + k, sizeof buf - k, ", betas (%g, %g)", val_num(b0), val_num(b1));
    } else if (val_is_number(v)) {
      if (val_num(v) < 0) {
        sema_error(s, c->argloc[i], "%s: %s must not be negative, got %g", b->name, ps[i].name, val_num(v));
        return val_err(s);
      }
      if (v->kind == V_BOOL) k += (size_t)snprintf(buf + k, sizeof buf - k, ", %s", v->i ? ps[i].name : "");
      else k += (size_t)snprintf(buf + k, sizeof buf - k, ", %s %g", ps[i].name, val_num(v));
    }
  }
  o->desc = arena_printf(s->arena, "%s(%s)", b->name, buf);
  Value *v = val_new(s, V_OPTIMIZER);
  v->opt = o;
  return v;
}

/* A schedule value: f the base lr, and for the runtime i = warmup (or
 * step_lr's period), j = step_lr's period or noam's dim, f2 = the final lr
 * (linear, cosine), step_lr's gamma or noam's scale. */
static Value *mk_sched(Sema *s, const Builtin *b, Call *c) {
  Value *v = val_new(s, V_SCHEDULE);
  v->s = b->name;
  if (!strcmp(b->name, "noam")) {
    v->str2 = arena_printf(s->arena, "noam(dim %lld, warmup %lld)", (long long)AI(0), (long long)AI(1));
    v->j = AI(0);
    v->i = AI(1);
    v->f2 = AF(2);
    v->f = AF(2);
    return v;
  }
  if (!lr_ok(s, c, 0, b->name)) return val_err(s);
  v->f = AF(0);
  if (!strcmp(b->name, "step_lr")) {
    v->str2 = arena_printf(s->arena, "%g ×%g every %lld", AF(0), AF(2), (long long)AI(1));
    v->j = AI(1);
    v->f2 = AF(2);
  } else if (!strcmp(b->name, "cosine")) {
    v->str2 = arena_printf(s->arena, "cosine from %g, warmup %lld", AF(0), (long long)AI(1));
    v->i = AI(1);
    v->f2 = AF(2);
  } else if (!strcmp(b->name, "linear")) {
    v->str2 = arena_printf(s->arena, "linear %g to %g, warmup %lld", AF(0), AF(1), (long long)AI(2));
    v->i = AI(2);
    v->f2 = AF(1);
  } else {
    v->str2 = arena_printf(s->arena, "%g", AF(0));
  }
  return v;
}

/* ---- data sources ------------------------------------------------------ */

static Dataset *ds_new(Sema *s, const char *source, const char *desc) {
  Dataset *d = arena_alloc(s->arena, sizeof *d);
  d->source = source;
  d->desc = desc;
  d->rows = -1;
  d->ncols = -1;
  d->fields = val_new(s, V_RECORD);
  return d;
}

static Value *ds_val(Sema *s, Dataset *d) {
  Value *v = val_new(s, V_DATASET);
  v->ds = d;
  return v;
}

/* Adds a per-sample field: `dims` are known sizes (no batch dim). */
static void ds_field(Sema *s, Value *rec, const char *name, DType dt, int rank, const int64_t *dims) {
  Shape sh = {.rank = rank};
  for (int i = 0; i < rank; i++) sh.d[i] = dim_int(dims[i]);
  RecField *f = arena_alloc(s->arena, sizeof *f);
  f->name = name;
  f->val = val_tensor(s, dt, &sh);
  vec_push(s->arena, &rec->items, f);
}

static void rec_add(Sema *s, Value *rec, const char *name, Value *v) {
  RecField *f = arena_alloc(s->arena, sizeof *f);
  f->name = name;
  f->val = v;
  vec_push(s->arena, &rec->items, f);
}

/* A data file must exist (when the checker may look at files). */
static bool file_exists(Sema *s, const char *path, Loc loc, const char *what) {
  if (!s->opt->check_files) return true;
  const char *full = resolve_path(s, path);
  FILE *f = fopen(full, "rb");
  if (!f) {
    sema_error(s, loc, "cannot open %s '%s'", what, path);
    if (path[0] == '/')
      sema_hint(s, "is its package installed? scripts/setup.sh installs every data set nnc uses");
    else
      sema_hint(s, "paths are relative to the folder of the spec file (%s)", s->spec_dir);
    return false;
  }
  fclose(f);
  return true;
}

static Value *src_csv(Sema *s, const Builtin *b, Call *c) {
  const char *path = A(0)->s;
  Dataset *d = ds_new(s, "csv", arena_printf(s->arena, "csv \"%s\"", path));
  d->header = AB(1);
  d->path = path;
  if (!file_exists(s, path, c->argloc[0], "data file")) return val_err(s);
  if (s->opt->check_files) {
    FILE *f = fopen(resolve_path(s, path), "rb");
    int64_t cols = 1, rows = 0, ch, line_chars = 0;
    bool first = true;
    while (f && (ch = fgetc(f)) != EOF) {
      if (ch == '\n') {
        if (line_chars > 0) rows++;
        first = false;
        line_chars = 0;
      } else if (ch != '\r') {
        line_chars++;
        if (first && ch == ',') cols++;
      }
    }
    if (line_chars > 0) rows++;
    if (f) fclose(f);
    d->ncols = cols;
    d->rows = AB(1) ? rows - 1 : rows;
    if (d->rows <= 0) {
      sema_error(s, c->argloc[0], "data file '%s' has no data rows", path);
      return val_err(s);
    }
  }
  (void)b;
  return ds_val(s, d);
}

/* col(i), label(i), cols(a..b), cols([1..37, 53, 69]): CSV columns. The
 * column value keeps its ranges in `items` (V_RANGE each); i..j spans them. */
static Value *col_field(Sema *s, const Builtin *b, Call *c) {
  Value *v = val_new(s, V_COLUMN);
  v->dtype = !strcmp(b->name, "label") ? DT_INT : DT_FLOAT;
  bool many = !strcmp(b->name, "cols");
  Value *arg = A(0);
  int nparts = arg->kind == V_LIST ? arg->items.len : 1;
  if (arg->kind == V_LIST && !many) {
    sema_error(s, c->argloc[0], "%s takes one column; use cols([...]) for several", b->name);
    return val_err(s);
  }
  if (arg->kind == V_LIST && nparts == 0) {
    sema_error(s, c->argloc[0], "cols of an empty list");
    return val_err(s);
  }
  v->i = INT64_MAX;
  v->j = -1;
  for (int k = 0; k < nparts; k++) {
    Value *p = arg->kind == V_LIST ? arg->items.items[k] : arg;
    Value *r = val_new(s, V_RANGE);
    if (p->kind == V_RANGE) {
      if (!many) {
        sema_error(s, c->argloc[0], "%s takes one column; use cols(%lld..%lld) for several", b->name, (long long)p->i,
                   (long long)p->j);
        return val_err(s);
      }
      r->i = p->i;
      r->j = p->j;
    } else if (p->kind == V_INT) {
      r->i = r->j = p->i;
    } else {
      sema_error(s, c->argloc[0], "%s: columns are ints or ranges a..b, got %s", b->name, val_desc(s->arena, p));
      return val_err(s);
    }
    if (r->i < 0 || r->j < r->i) {
      if (r->j < r->i)
        sema_error(s, c->argloc[0], "%s: the range %lld..%lld runs backwards; write %lld..%lld", b->name, (long long)r->i,
                   (long long)r->j, (long long)r->j, (long long)r->i);
      else
        sema_error(s, c->argloc[0], "%s: column %lld does not exist (columns count from 0)", b->name, (long long)r->i);
      return val_err(s);
    }
    if (r->i < v->i) v->i = r->i;
    if (r->j > v->j) v->j = r->j;
    v->f += (double)(r->j - r->i + 1);   /* the width */
    vec_push(s->arena, &v->items, r);
  }
  if (many) v->str2 = "vector";
  return v;
}

static Value *src_idx(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  if (!file_exists(s, A(0)->s, c->argloc[0], "IDX image file")) return val_err(s);
  if (GIVEN(1) && !file_exists(s, A(1)->s, c->argloc[1], "IDX label file")) return val_err(s);
  Dataset *d = ds_new(s, "idx", arena_printf(s->arena, "IDX \"%s\"", A(0)->s));
  d->path = A(0)->s;
  int64_t img[3] = {1, AI(2), AI(2)};
  ds_field(s, d->fields, "x", DT_FLOAT, 3, img);
  if (GIVEN(1)) ds_field(s, d->fields, "y", DT_INT, 0, NULL);
  return ds_val(s, d);
}

static Value *src_packaged(Sema *s, const Builtin *b, Call *c) {
  bool fashion = !strcmp(b->name, "fashion_mnist");
  const char *split = fashion ? A(0)->s : "test";
  bool train = !strcmp(split, "train");
  if (!train && strcmp(split, "test")) {
    sema_error(s, c->argloc[0], "%s: split is \"train\" or \"test\", got \"%s\"", b->name, split);
    return val_err(s);
  }
  const char *path;
  if (fashion) {
    path = train ? "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
                 : "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  } else {
    path = arena_printf(s->arena, "%s/t10k-images-idx3-ubyte.gz", A(0)->s);
  }
  if (!file_exists(s, path, c->argloc[0], fashion ? "Fashion-MNIST file" : "MNIST file")) return val_err(s);
  Dataset *d = ds_new(s, b->name, arena_printf(s->arena, "%s %s", fashion ? "Fashion-MNIST" : "MNIST", split));
  d->path = path;
  d->rows = train ? 60000 : 10000;
  int64_t img[3] = {1, 28, 28};
  ds_field(s, d->fields, "x", DT_FLOAT, 3, img);
  ds_field(s, d->fields, "y", DT_INT, 0, NULL);
  return ds_val(s, d);
}

static Value *src_images(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  if (!file_exists(s, A(0)->s, c->argloc[0], "image archive or folder")) return val_err(s);
  if (!positive(s, c, 1, "size")) return val_err(s);
  Dataset *d = ds_new(s, "image_folder", arena_printf(s->arena, "images \"%s\"", A(0)->s));
  d->path = A(0)->s;
  int64_t img[3] = {AB(2) ? 1 : 3, AI(1), AI(1)};
  ds_field(s, d->fields, "x", DT_FLOAT, 3, img);
  ds_field(s, d->fields, "y", DT_INT, 0, NULL);
  return ds_val(s, d);
}

static Value *src_omniglot(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  for (int i = 1; i <= 4; i++)
    if (!positive(s, c, i, i == 1 ? "ways" : i == 2 ? "shots" : i == 3 ? "queries" : "size")) return val_err(s);
  Value *paths = A(0);
  int np = paths->kind == V_LIST ? paths->items.len : 1;
  for (int i = 0; i < np; i++) {
    Value *p = paths->kind == V_LIST ? paths->items.items[i] : paths;
    if (p->kind != V_STRING) {
      sema_error(s, c->argloc[0], "omniglot_tasks: path is a .zip or folder name, or a list of them; got %s",
                 val_desc(s->arena, p));
      return val_err(s);
    }
    if (!file_exists(s, p->s, c->argloc[0], "Omniglot archive")) return val_err(s);
  }
  const char *first = paths->kind == V_LIST ? ((Value *)paths->items.items[0])->s : paths->s;
  int64_t W = AI(1), S = AI(2), Q = AI(3), sz = AI(4);
  Dataset *d = ds_new(s, "omniglot_tasks", arena_printf(s->arena, "Omniglot %lld-way %lld-shot tasks from \"%s\"%s",
                                                        (long long)W, (long long)S, first, np > 1 ? " and more" : ""));
  d->is_tasks = true;
  Value *sup = val_new(s, V_RECORD), *qry = val_new(s, V_RECORD);
  int64_t sx[4] = {W * S, 1, sz, sz}, sy[1] = {W * S}, qx[4] = {W * Q, 1, sz, sz}, qy[1] = {W * Q};
  ds_field(s, sup, "x", DT_FLOAT, 4, sx);
  ds_field(s, sup, "y", DT_INT, 1, sy);
  ds_field(s, qry, "x", DT_FLOAT, 4, qx);
  ds_field(s, qry, "y", DT_INT, 1, qy);
  rec_add(s, d->fields, "support", sup);
  rec_add(s, d->fields, "query", qry);
  return ds_val(s, d);
}

static Value *src_json_qa(Sema *s, const Builtin *b, Call *c) {
  if (!file_exists(s, A(0)->s, c->argloc[0], "JSON file")) return val_err(s);
  if (!positive(s, c, 1, "max_len") || !positive(s, c, 2, "vocab")) return val_err(s);
  bool paragraphs = !strcmp(b->name, "json_paragraphs");
  Dataset *d = ds_new(s, b->name, arena_printf(s->arena, "%s \"%s\", windows of %lld tokens", paragraphs ? "paragraphs of" : "QA",
                                                A(0)->s, (long long)AI(1)));
  int64_t L[1] = {AI(1)};
  if (paragraphs) {
    ds_field(s, d->fields, "ids", DT_INT, 1, L);
    ds_field(s, d->fields, "mask", DT_BOOL, 1, L);
    return ds_val(s, d);
  }
  if (!positive(s, c, 3, "stride")) return val_err(s);
  ds_field(s, d->fields, "ids", DT_INT, 1, L);
  ds_field(s, d->fields, "segments", DT_INT, 1, L);
  ds_field(s, d->fields, "mask", DT_BOOL, 1, L);
  ds_field(s, d->fields, "start", DT_INT, 0, NULL);
  ds_field(s, d->fields, "end", DT_INT, 0, NULL);
  ds_field(s, d->fields, "id", DT_INT, 0, NULL);
  return ds_val(s, d);
}

static Value *tokenizer(Sema *s, const Builtin *b, Call *c) {
  if (!positive(s, c, 0, "vocab") || !positive(s, c, 1, "max_len")) return val_err(s);
  Value *v = val_new(s, V_TRANSFORM);
  v->s = b->name;
  v->i = AI(0);
  v->j = AI(1);
  return v;
}

static Value *src_text_pairs(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  if (!file_exists(s, A(0)->s, c->argloc[0], "text file")) return val_err(s);
  for (int i = 1; i <= 2; i++)
    if (A(i)->kind != V_TRANSFORM || (strcmp(A(i)->s, "words") && strcmp(A(i)->s, "chars"))) {
      sema_error(s, c->argloc[i], "text_pairs: '%s' is a tokenizer, words(vocab: N, max_len: L) or chars(...)",
                 i == 1 ? "src" : "tgt");
      return val_err(s);
    }
  Dataset *d = ds_new(s, "text_pairs", arena_printf(s->arena, "sentence pairs \"%s\" (%s → %s)", A(0)->s,
                                                    A(1)->s, A(2)->s));
  int64_t ls[1] = {A(1)->j}, lt[1] = {A(2)->j};
  ds_field(s, d->fields, "src", DT_INT, 1, ls);
  ds_field(s, d->fields, "tgt", DT_INT, 1, lt);
  ds_field(s, d->fields, "src_mask", DT_BOOL, 1, ls);
  ds_field(s, d->fields, "tgt_mask", DT_BOOL, 1, lt);
  return ds_val(s, d);
}

static Value *src_generate(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  if (!positive(s, c, 0, "n")) return val_err(s);
  Dataset *d = ds_new(s, "generate", "generated samples");
  d->rows = AI(0);
  return ds_val(s, d);
}

static Value *src_env(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  const char *n = A(0)->s;
  if (strcmp(n, "CartPole") && strcmp(n, "LunarLander")) {
    sema_error(s, c->argloc[0], "env: the built-in environments are \"CartPole\" and \"LunarLander\", got \"%s\"", n);
    return val_err(s);
  }
  if (!positive(s, c, 1, "max_steps")) return val_err(s);
  Value *v = val_new(s, V_ENV);
  v->s = n;
  v->i = !strcmp(n, "CartPole") ? 4 : 8;   /* observation size */
  v->j = !strcmp(n, "CartPole") ? 2 : 4;   /* actions */
  return v;
}

static Value *src_rollouts(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *e = A(0);
  if (e->kind != V_ENV) {
    sema_error(s, c->argloc[0], "rollouts: the first argument is an environment, env(\"CartPole\"), got %s",
               val_desc(s->arena, e));
    return val_err(s);
  }
  if (A(1)->kind != V_MODEL) {
    sema_error(s, c->argloc[1], "rollouts: the policy must be a model, got %s", val_desc(s->arena, A(1)));
    return val_err(s);
  }
  /* the policy must map observations to one logit per action */
  Args pa = {.npos = 1};
  Shape os = {.rank = 2};
  os.d[0] = dim_sym("B");
  os.d[1] = dim_int(e->i);
  pa.pos[0] = val_tensor(s, DT_FLOAT, &os);
  pa.posloc[0] = c->argloc[1];
  Value *out = model_call(s, A(1)->layer, "forward", &pa, c->argloc[1], NULL);
  if (out->kind == V_ERROR) return out;
  if (out->kind != V_TENSOR || out->shape.rank != 2 || !dim_eq(out->shape.d[1], dim_int(e->j))) {
    sema_error(s, c->argloc[1], "rollouts: in %s the policy maps [B, %lld] observations to [B, %lld] action logits, this one gives %s",
               e->s, (long long)e->i, (long long)e->j, SH(s, out));
    return val_err(s);
  }
  if (!positive(s, c, 2, "episodes")) return val_err(s);
  if (AF(3) <= 0 || AF(3) > 1) {
    sema_error(s, c->argloc[3], "rollouts: gamma discounts future rewards and must be in (0, 1], got %g", AF(3));
    return val_err(s);
  }
  Dataset *d = ds_new(s, "rollouts", arena_printf(s->arena, "%lld episode%s of %s a batch, gamma %g", (long long)AI(2),
                                                  AI(2) == 1 ? "" : "s", e->s, AF(3)));
  d->is_env = true;
  int64_t obs[1] = {e->i};
  ds_field(s, d->fields, "obs", DT_FLOAT, 1, obs);
  ds_field(s, d->fields, "action", DT_INT, 0, NULL);
  ds_field(s, d->fields, "ret", DT_FLOAT, 0, NULL);
  ds_field(s, d->fields, "reward", DT_FLOAT, 0, NULL);
  return ds_val(s, d);
}

static Value *ds_take(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  if (!positive(s, c, 1, "n")) return val_err(s);
  Dataset *d = arena_alloc(s->arena, sizeof *d);
  *d = *A(0)->ds;
  if (d->rows >= 0 && AI(1) > d->rows) {
    sema_error(s, c->argloc[1], "take: the data set has %lld rows, cannot take %lld", (long long)d->rows, (long long)AI(1));
    return val_err(s);
  }
  d->rows = AI(1);
  d->take = AI(1);
  d->desc = arena_printf(s->arena, "first %lld of %s", (long long)AI(1), A(0)->ds->desc);
  return ds_val(s, d);
}

/* Transforms are values applied with ds.map(...) (sema.c). */
static Value *mk_transform(Sema *s, const Builtin *b, Call *c) {
  Value *v = val_new(s, V_TRANSFORM);
  v->s = b->name;
  if (!strcmp(b->name, "random_length")) {
    if (!positive(s, c, 0, "min") || AI(1) < AI(0)) {
      sema_error(s, c->loc, "random_length: need 0 < min <= max, got %lld and %lld", (long long)AI(0), (long long)AI(1));
      return val_err(s);
    }
    v->i = AI(0);
    v->j = AI(1);
  } else if (!strcmp(b->name, "context") || !strcmp(b->name, "resize") || !strcmp(b->name, "crop")) {
    if (A(0)->kind != V_INT || A(0)->i < 0 || (A(0)->i == 0 && strcmp(b->name, "context"))) {
      sema_error(s, c->argloc[0], "%s: the size must be a positive int", b->name);
      return val_err(s);
    }
    v->i = AI(0);
    if (!strcmp(b->name, "crop")) {
      if (AI(1) < 0) {
        sema_error(s, c->argloc[1], "crop: padding cannot be negative, got %lld", (long long)AI(1));
        return val_err(s);
      }
      v->j = AI(1);
    }
  } else if (!strcmp(b->name, "rotate")) {
    v->f = AF(0);
  } else if (!strcmp(b->name, "normalize")) {
    /* numbers are kept for the runtime; without them the training split's
     * statistics are used. Tensors are only checked for now. */
    v->i = GIVEN(0) && val_is_number(A(0)) && GIVEN(1) && val_is_number(A(1));
    if (v->i) {
      v->f = AF(0);
      v->f2 = AF(1);
    } else if (GIVEN(0) || GIVEN(1)) {
      v->j = 1;   /* tensor statistics: the runtime refuses these for now */
    }
  } else if (!strcmp(b->name, "flip")) {
    if (AF(0) < 0 || AF(0) > 1) {
      sema_error(s, c->argloc[0], "flip: p is a probability, got %g", AF(0));
      return val_err(s);
    }
    v->f = AF(0);
  }
  v->str2 = call_desc(s->arena, b, c);
  return v;
}

static Value *ds_concat(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *l = A(0);
  if (l->items.len == 0) {
    sema_error(s, c->argloc[0], "concat_data of an empty list");
    return val_err(s);
  }
  Value *v0 = l->items.items[0];
  Dataset *first = v0->kind == V_DATASET ? v0->ds : NULL;
  int64_t rows = 0;
  for (int i = 0; i < l->items.len; i++) {
    Value *v = l->items.items[i];
    if (v->kind != V_DATASET || !first) {
      sema_error(s, c->argloc[0], "concat_data: item %d is %s, not a data set", i, val_desc(s->arena, v));
      return val_err(s);
    }
    if (v->ds->fields->items.len != first->fields->items.len) {
      sema_error(s, c->argloc[0], "concat_data: item %d has different fields from item 0", i);
      return val_err(s);
    }
    for (int k = 0; k < v->ds->fields->items.len; k++) {
      RecField *f = v->ds->fields->items.items[k], *g = first->fields->items.items[k];
      if (strcmp(f->name, g->name) || f->val->kind != V_TENSOR || g->val->kind != V_TENSOR ||
          f->val->dtype != g->val->dtype || f->val->shape.rank != g->val->shape.rank) {
        sema_error(s, c->argloc[0], "concat_data: field '%s' of item %d does not match item 0", f->name, i);
        return val_err(s);
      }
      for (int r = 0; r < f->val->shape.rank; r++)
        if (!dim_eq(f->val->shape.d[r], g->val->shape.d[r])) {
          sema_error(s, c->argloc[0], "concat_data: field '%s' is %s in item %d but %s in item 0", f->name,
                     SH(s, f->val), i, SH(s, g->val));
          return val_err(s);
        }
    }
    rows = rows >= 0 && v->ds->rows >= 0 ? rows + v->ds->rows : -1;
  }
  Dataset *d = ds_new(s, "concat", arena_printf(s->arena, "%d data sets one after another, starting with %s", l->items.len,
                                                first->desc));
  d->fields = first->fields;
  d->rows = rows;
  for (int i = 0; i < l->items.len; i++) vec_push(s->arena, &d->parts, ((Value *)l->items.items[i])->ds);
  return ds_val(s, d);
}

static Value *fn_beam(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *m = A(0), *src = A(1);
  if (m->kind != V_MODEL) {
    sema_error(s, c->argloc[0], "beam_search decodes with a model, got %s", val_desc(s->arena, m));
    return val_err(s);
  }
  if (src->dtype != DT_INT || src->shape.rank != 2) {
    sema_error(s, c->argloc[1], "beam_search: src is token ids int[B, S], got %s", SH(s, src));
    return val_err(s);
  }
  if (!positive(s, c, 3, "beam") || !positive(s, c, 4, "max_len")) return val_err(s);
  Shape o = {.rank = 2};
  o.d[0] = src->shape.d[0];
  o.d[1] = dim_int(AI(4));
  return val_tensor(s, DT_INT, &o);
}

static Value *fn_decode(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *ids = A(1);
  if (ids->dtype != DT_INT || ids->shape.rank < 1) {
    sema_error(s, c->argloc[1], "decode turns token ids int[B, T] into text, got %s", SH(s, ids));
    return val_err(s);
  }
  Shape o = {.rank = 1};
  o.d[0] = ids->shape.d[0];
  return val_tensor(s, DT_TEXT, &o);
}

static Value *fn_best_span(Sema *s, const Builtin *b, Call *c) {
  (void)b;
  Value *st = A(1), *en = A(2);
  bool ok = st->dtype == DT_FLOAT && st->shape.rank == 2 && en->shape.rank == 2 && dim_eq(st->shape.d[0], en->shape.d[0]) &&
            dim_eq(st->shape.d[1], en->shape.d[1]);
  if (!ok) {
    sema_error(s, c->loc, "best_span takes start and end logits of one shape [B, T], got %s and %s", SH(s, st), SH(s, en));
    return val_err(s);
  }
  Shape o = {.rank = 1};
  o.d[0] = st->shape.d[0];
  return val_tensor(s, DT_TEXT, &o);
}

/* ---- writers ------------------------------------------------------------ */

static Value *mk_writer(Sema *s, const Builtin *b, Call *c) {
  Value *v = val_new(s, V_WRITER);
  v->s = b->name;
  v->str2 = A(0)->s;
  if (strcmp(b->name, "csv_writer")) {
    Value *im = A(1);
    int r = im->shape.rank;
    bool ok = r == 3 || r == 4;
    if (ok && r == 4) ok = dim_eq(im->shape.d[1], dim_int(1)) || dim_eq(im->shape.d[1], dim_int(3));
    if (!ok) {
      sema_error(s, c->argloc[1], "%s writes images [B, C, H, W] with C 1 or 3 (or [B, H, W]), got %s", b->name, SH(s, im));
      return val_err(s);
    }
    size_t n = strlen(v->str2);
    if (n < 4 || strcmp(v->str2 + n - 4, ".png")) {
      sema_error(s, c->argloc[0], "%s: the file name should end in .png, got \"%s\"", b->name, v->str2);
      return val_err(s);
    }
  }
  return v;
}

/* ---- the table ---------------------------------------------------------- */

#define LAYER(n, p, mk, ap, call, doc) {n, BK_LAYER, p, mk, ap, call, doc}
#define FN(n, k, p, f, doc) {n, k, p, f, NULL, NULL, doc}

static const Builtin builtins[] = {
  /* layers */
  LAYER("Linear", "in_features:i, out_features:i, bias:b=true", mk_linear, ap_linear, NULL, "a fully connected layer"),
  LAYER("Conv2d", "in_channels:i, out_channels:i, kernel:i, stride:i=1, padding:i=0, dilation:i=1, groups:i=1, bias:b=true",
        mk_conv, ap_conv, NULL, "2-D convolution"),
  LAYER("ConvTranspose2d", "in_channels:i, out_channels:i, kernel:i, stride:i=1, padding:i=0, output_padding:i=0, groups:i=1, bias:b=true",
        mk_conv, ap_conv, NULL, "transposed 2-D convolution (upsampling)"),
  LAYER("MaxPool2d", "kernel:i, stride:i?, padding:i=0", mk_pool, ap_pool, NULL, "max pooling"),
  LAYER("AvgPool2d", "kernel:i, stride:i?, padding:i=0", mk_pool, ap_pool, NULL, "average pooling"),
  LAYER("AdaptiveAvgPool2d", "size:i", mk_nolayer, ap_adaptive, NULL, "average pooling to a fixed size"),
  LAYER("BatchNorm1d", "features:i, momentum:f=0.1, eps:f=1e-5, track_running_stats:b=true, affine:b=true", mk_norm, ap_norm, NULL, "batch normalisation of [B, C] or [B, C, L]"),
  LAYER("BatchNorm2d", "features:i, momentum:f=0.1, eps:f=1e-5, track_running_stats:b=true, affine:b=true", mk_norm, ap_norm, NULL, "batch normalisation of images"),
  LAYER("LayerNorm", "features:i, eps:f=1e-5", mk_norm, ap_norm, NULL, "layer normalisation over the last dim"),
  LAYER("Dropout", "p:f=0.5", mk_nolayer, ap_same, NULL, "randomly zeroes values while training"),
  LAYER("ReLU", "", mk_nolayer, ap_same, NULL, "max(x, 0)"),
  LAYER("LeakyReLU", "slope:f=0.01", mk_nolayer, ap_same, NULL, "x, or slope·x below 0"),
  LAYER("Tanh", "", mk_nolayer, ap_same, NULL, "tanh(x)"),
  LAYER("Sigmoid", "", mk_nolayer, ap_same, NULL, "1/(1+exp(-x))"),
  LAYER("GELU", "", mk_nolayer, ap_same, NULL, "Gaussian error linear unit"),
  LAYER("Softmax", "dim:i=-1", mk_nolayer, ap_same, NULL, "softmax over a dim"),
  LAYER("Flatten", "", mk_nolayer, ap_flatten, NULL, "[B, ...] to [B, n]"),
  LAYER("Embedding", "vocab:i, dim:i, padding_idx:i?", mk_embedding, ap_embedding, NULL, "a lookup table of vectors"),
  LAYER("GRU", "input_size:i, hidden_size:i, layers:i=1, bidirectional:b=false", mk_rnn, ap_rnn, "x:X, h0:X?", "gated recurrent unit"),
  LAYER("LSTM", "input_size:i, hidden_size:i, layers:i=1, bidirectional:b=false", mk_rnn, ap_rnn, "x:X, h0:X?", "long short-term memory"),
  LAYER("RNN", "input_size:i, hidden_size:i, layers:i=1, bidirectional:b=false", mk_rnn, ap_rnn, "x:X, h0:X?", "Elman recurrent network"),
  LAYER("MultiheadAttention", "dim:i, heads:i", mk_mha, ap_mha, "q:X, k:X?, v:X?, mask:X?", "multi-head attention"),
  LAYER("TransformerEncoderLayer", "dim:i, heads:i, ff:i, dropout:f=0.1, activation:s=\"relu\"", mk_mha, ap_mha,
        "x:X, mask:X?", "self-attention + feed-forward block"),
  LAYER("TransformerDecoderLayer", "dim:i, heads:i, ff:i, dropout:f=0.1, activation:s=\"relu\"", mk_mha, ap_mha,
        "x:X, memory:X, mask:X?, memory_mask:X?", "masked self-attention + cross-attention + feed-forward"),

  /* elementwise */
  FN("relu", BK_FUNC, "x:T", fn_unary, "max(x, 0)"),
  FN("sigmoid", BK_FUNC, "x:T", fn_unary, "1/(1+exp(-x))"),
  FN("tanh", BK_FUNC, "x:T", fn_unary, "hyperbolic tangent"),
  FN("gelu", BK_FUNC, "x:T", fn_unary, "Gaussian error linear unit"),
  FN("exp", BK_FUNC, "x:T", fn_unary, "e^x"),
  FN("log", BK_FUNC, "x:T", fn_unary, "natural logarithm"),
  FN("sqrt", BK_FUNC, "x:T", fn_unary, "square root"),
  FN("abs", BK_FUNC, "x:T", fn_unary, "|x|"),
  FN("sign", BK_FUNC, "x:T", fn_unary, "-1, 0 or 1"),
  FN("square", BK_FUNC, "x:T", fn_unary, "x²"),
  FN("leaky_relu", BK_FUNC, "x:T, slope:f=0.01", fn_unary, "x, or slope·x below 0"),
  FN("clip", BK_FUNC, "x:T, lo:T, hi:T", fn_broadcast, "clamp x into [lo, hi]"),
  FN("pow", BK_FUNC, "x:T, p:T", fn_broadcast, "x^p"),
  FN("maximum", BK_FUNC, "a:T, b:T", fn_broadcast, "elementwise max"),
  FN("minimum", BK_FUNC, "a:T, b:T", fn_broadcast, "elementwise min"),
  FN("where", BK_FUNC, "cond:T, a:T, b:T", fn_broadcast, "a where cond, else b"),
  /* reductions */
  FN("sum", BK_FUNC, "x:T, dim:A?, keepdim:b=false, mask:X?", fn_reduce, "sum over dims (all by default)"),
  FN("mean", BK_FUNC, "x:T, dim:A?, keepdim:b=false, mask:X?", fn_reduce, "mean over dims (valid steps with mask)"),
  FN("max", BK_FUNC, "x:T, dim:A?, keepdim:b=false", fn_reduce, "maximum over dims"),
  FN("min", BK_FUNC, "x:T, dim:A?, keepdim:b=false", fn_reduce, "minimum over dims"),
  FN("var", BK_FUNC, "x:T, dim:A?, keepdim:b=false", fn_reduce, "variance over dims"),
  FN("std", BK_FUNC, "x:T, dim:A?, keepdim:b=false", fn_reduce, "standard deviation over dims"),
  FN("argmax", BK_FUNC, "x:X, dim:A=-1, keepdim:b=false", fn_reduce, "index of the maximum"),
  FN("logsumexp", BK_FUNC, "x:X, dim:A=-1, keepdim:b=false", fn_reduce, "log(sum(exp(x)))"),
  FN("norm", BK_FUNC, "x:X, dim:A?, keepdim:b=false", fn_reduce, "Euclidean norm"),
  /* shapes */
  FN("flatten", BK_FUNC, "x:X, start:i=1", fn_flatten, "merge dims from start on"),
  FN("reshape", BK_FUNC, "x:X, shape:L", fn_reshape, "same values, new shape"),
  FN("squeeze", BK_FUNC, "x:X, dim:i", fn_squeeze, "drop a dim of size 1"),
  FN("unsqueeze", BK_FUNC, "x:X, dim:i", fn_squeeze, "insert a dim of size 1"),
  FN("transpose", BK_FUNC, "x:X, a:i, b:i", fn_transpose, "swap two dims"),
  FN("permute", BK_FUNC, "x:X, dims:L", fn_permute, "reorder dims"),
  FN("concat", BK_FUNC, "xs:L, dim:i=0", fn_concat, "join tensors along a dim"),
  FN("stack", BK_FUNC, "xs:L, dim:i=0", fn_concat, "join tensors along a new dim"),
  FN("softmax", BK_FUNC, "x:X, dim:i=-1", fn_softmax, "exp(x)/sum(exp(x))"),
  FN("log_softmax", BK_FUNC, "x:X, dim:i=-1", fn_softmax, "log of softmax, stably"),
  FN("one_hot", BK_FUNC, "ids:X, n:i", fn_one_hot, "class ids to one-hot vectors"),
  FN("gather", BK_FUNC, "x:X, ids:X, dim:i=-1", fn_gather, "pick one entry per row"),
  FN("masked_fill", BK_FUNC, "x:X, mask:X, value:f", fn_masked_fill, "value where mask is true"),
  FN("causal_mask", BK_FUNC, "size:A", fn_causal_mask, "bool[T, T], true above the diagonal"),
  /* creation */
  FN("zeros", BK_FUNC, "shape:A", fn_create, "a tensor of zeros"),
  FN("ones", BK_FUNC, "shape:A", fn_create, "a tensor of ones"),
  FN("full", BK_FUNC, "shape:A, value:f", fn_create, "a tensor of one value"),
  FN("randn", BK_FUNC, "shape:A", fn_create, "standard normal noise (seeded)"),
  FN("rand", BK_FUNC, "shape:A", fn_create, "uniform noise in [0, 1) (seeded)"),
  FN("randint", BK_FUNC, "shape:A, low:i, high:i", fn_create, "uniform integers in [low, high)"),
  FN("zeros_like", BK_FUNC, "x:X", fn_like, "zeros of x's shape"),
  FN("ones_like", BK_FUNC, "x:X", fn_like, "ones of x's shape"),
  FN("randn_like", BK_FUNC, "x:X", fn_like, "normal noise of x's shape"),
  FN("arange", BK_FUNC, "n:i", fn_arange, "0, 1, ..., n-1"),
  FN("variable", BK_FUNC, "shape:A, init:s=\"zeros\"", fn_create, "a trainable tensor (an input to optimise)"),
  /* gradients and models */
  FN("grad", BK_FUNC, "y:X, x:A", fn_grad, "dy/dx as a value (x a tensor or params(model))"),
  FN("stop_grad", BK_FUNC, "x:A", fn_stop_grad, "the same value, with no gradient flowing back"),
  FN("grad_reverse", BK_FUNC, "x:X, lambda:f=1.0", fn_stop_grad, "identity forward, -lambda·gradient backward"),
  FN("snapshot", BK_FUNC, "x:A", fn_identity, "a frozen copy (e.g. parameters after a task)"),
  FN("params", BK_MODELFN, "model:A", fn_params, "a model's trainable parameters"),
  FN("load", BK_MODELFN, "model:M, path:s", fn_load, "load weights from a .safetensors file"),
  FN("prune", BK_MODELFN, "model:M, amount:f=0.2", fn_effect, "L1 unstructured pruning with masks"),
  FN("beam_search", BK_FUNC, "model:M, src:X, src_mask:X?, beam:i=5, max_len:i=50, bos:i=1, eos:i=2", fn_beam,
     "decode target ids with beam search (calls the model's forward)"),
  FN("decode", BK_FUNC, "data:D, ids:X", fn_decode, "token ids back to text, with the data set's vocabulary"),
  FN("best_span", BK_FUNC, "data:D, start:X, end:X, max_answer:i=30", fn_best_span,
     "per question, the best answer span over its windows, as text"),
  /* losses */
  FN("mse", BK_LOSS, "pred:T, target:T, reduction:s=\"mean\"", loss_pair, "mean squared error"),
  FN("l1", BK_LOSS, "pred:T, target:T, reduction:s=\"mean\"", loss_pair, "mean absolute error"),
  FN("bce", BK_LOSS, "prob:T, target:T, reduction:s=\"mean\"", loss_pair, "binary cross-entropy of probabilities"),
  FN("bce_with_logits", BK_LOSS, "logits:T, target:T, reduction:s=\"mean\"", loss_pair, "binary cross-entropy of logits"),
  FN("kl_div", BK_LOSS, "log_p:T, q:T, reduction:s=\"mean\"", loss_pair, "KL(q || p) from log-probabilities"),
  FN("cross_entropy", BK_LOSS, "logits:X, target:X, label_smoothing:f=0.0, ignore_index:i?, reduction:s=\"mean\"", loss_ce,
     "softmax cross-entropy with class ids"),
  FN("nll", BK_LOSS, "log_p:X, target:X, label_smoothing:f=0.0, ignore_index:i?, reduction:s=\"mean\"", loss_ce,
     "negative log-likelihood of log-probabilities"),
  FN("kd_loss", BK_LOSS, "student:X, teacher:X, target:X, T:f=4.0, alpha:f=0.5", loss_kd,
     "knowledge distillation: alpha·T²·KL + (1-alpha)·CE"),
  /* metrics */
  FN("accuracy", BK_METRIC, "logits:X, target:X", metric, "fraction of correct classes"),
  FN("auc", BK_METRIC, "score:X, label:X", metric, "area under the ROC curve"),
  FN("bleu", BK_METRIC, "hyp:X, ref:X", metric, "BLEU-4 of token sequences"),
  FN("mean_of", BK_METRIC, "x:T", metric, "the average of a value over the data"),
  FN("max_of", BK_METRIC, "x:T", metric, "the largest value over the data (e.g. max_of(abs(x_adv - x)) <= eps)"),
  /* optimizers */
  FN("SGD", BK_OPTIM, "what:O, lr:S, momentum:f=0.0, nesterov:b=false, weight_decay:f=0.0, clip_norm:f?", mk_optim, "stochastic gradient descent"),
  FN("Adam", BK_OPTIM, "what:O, lr:S=1e-3, betas:L?, eps:f=1e-8, weight_decay:f=0.0, clip_norm:f?", mk_optim, "Adam"),
  FN("AdamW", BK_OPTIM, "what:O, lr:S=1e-3, betas:L?, eps:f=1e-8, weight_decay:f=0.01, clip_norm:f?", mk_optim, "Adam with decoupled weight decay"),
  FN("RMSprop", BK_OPTIM, "what:O, lr:S=1e-2, alpha:f=0.99, eps:f=1e-8, momentum:f=0.0, weight_decay:f=0.0, clip_norm:f?", mk_optim, "RMSprop"),
  /* schedules */
  FN("constant", BK_SCHED, "lr:f", mk_sched, "a fixed learning rate"),
  FN("step_lr", BK_SCHED, "lr:f, every:i, gamma:f=0.1", mk_sched, "multiply by gamma every N epochs"),
  FN("linear", BK_SCHED, "lr:f, to:f=0.0, warmup:i=0", mk_sched, "linear decay after a warmup"),
  FN("cosine", BK_SCHED, "lr:f, warmup:i=0, min:f=0.0", mk_sched, "cosine decay after a linear warmup"),
  FN("noam", BK_SCHED, "dim:i, warmup:i, scale:f=1.0", mk_sched, "the Transformer schedule"),
  /* data sources */
  FN("csv", BK_SOURCE, "path:s, header:b=true", src_csv, "numeric CSV; fields from col(i)/cols(a..b)/label(i)"),
  FN("idx", BK_SOURCE, "images:s, labels:s?, size:i=28", src_idx, "IDX image (and label) files, gzip or not"),
  FN("fashion_mnist", BK_SOURCE, "split:s=\"train\"", src_packaged, "Fashion-MNIST from the Debian package"),
  FN("mnist_test", BK_SOURCE, "dir:s=\"../data/hw14\"", src_packaged, "the bundled MNIST test set (10,000 digits)"),
  FN("image_folder", BK_SOURCE, "path:s, size:i=28, gray:b=true", src_images, "PNG images, labels from folder names"),
  FN("omniglot_tasks", BK_SOURCE, "path:A, ways:i=5, shots:i=1, queries:i=1, size:i=28", src_omniglot, "N-way K-shot tasks"),
  FN("json_qa", BK_SOURCE, "path:s, max_len:i=384, vocab:i=8000, stride:i=128", src_json_qa, "extractive QA (HW7 JSON)"),
  FN("json_paragraphs", BK_SOURCE, "path:s, max_len:i=384, vocab:i=8000", src_json_qa, "the paragraphs of a QA file, as text to pre-train on"),
  FN("concat_data", BK_SOURCE, "parts:L", ds_concat, "data sets one after another (same fields)"),
  FN("text_pairs", BK_SOURCE, "path:s, src:A, tgt:A", src_text_pairs, "tab-separated sentence pairs"),
  FN("generate", BK_SOURCE, "n:i", src_generate, "synthetic samples from the data block's formulas"),
  FN("env", BK_SOURCE, "name:s, max_steps:i=500", src_env, "a built-in RL environment"),
  FN("rollouts", BK_SOURCE, "env:A, policy:A, episodes:i=1, gamma:f=0.99, normalize:b=true", src_rollouts,
     "episodes played by a policy, with discounted returns"),
  FN("take", BK_SOURCE, "data:D, n:i", ds_take, "the first n samples"),
  FN("words", BK_TRANSFORM, "vocab:i, max_len:i, lower:b=true", tokenizer, "word-level tokenizer"),
  FN("chars", BK_TRANSFORM, "vocab:i, max_len:i", tokenizer, "character-level tokenizer"),
  /* fields of a csv data block */
  FN("col", BK_FIELD, "index:R", col_field, "one numeric column"),
  FN("cols", BK_FIELD, "columns:A", col_field, "numeric columns as a vector: a..b, or a list of columns and ranges"),
  FN("label", BK_FIELD, "index:R", col_field, "an integer class column"),
  /* transforms */
  FN("normalize", BK_TRANSFORM, "mean:T?, std:T?", mk_transform, "(x - mean)/std; computed from the training data when not given"),
  FN("flip", BK_TRANSFORM, "p:f=0.5", mk_transform, "random horizontal flip"),
  FN("crop", BK_TRANSFORM, "size:i, padding:i=0", mk_transform, "random crop after padding"),
  FN("rotate", BK_TRANSFORM, "degrees:f", mk_transform, "random rotation within ±degrees"),
  FN("rotate_fixed", BK_TRANSFORM, "degrees:f", mk_transform, "rotation by exactly this angle"),
  FN("resize", BK_TRANSFORM, "size:i", mk_transform, "resize images to size×size"),
  FN("invert", BK_TRANSFORM, "", mk_transform, "1 - x"),
  FN("edges", BK_TRANSFORM, "", mk_transform, "an edge filter (Sobel magnitude)"),
  FN("flatten_image", BK_TRANSFORM, "", mk_transform, "an image [C, H, W] as a vector [C·H·W]"),
  FN("rows_as_sequence", BK_TRANSFORM, "", mk_transform, "an image [1, H, W] as H steps of W features"),
  FN("random_length", BK_TRANSFORM, "min:i, max:i", mk_transform, "random crops of a sequence, padded, with a mask field"),
  FN("mask_tokens", BK_TRANSFORM, "p:f=0.15", mk_transform, "BERT masking of ids: adds masked_ids and labels (-100 where not masked)"),
  FN("context", BK_TRANSFORM, "k:i", mk_transform, "concatenate the k rows before and after (HW2's frames)"),
  /* writers */
  FN("csv_writer", BK_WRITER, "path:s", mk_writer, "a CSV file, one column per field"),
  FN("png", BK_WRITER, "path:s, images:X", mk_writer, "images as PNG files"),
  FN("png_grid", BK_WRITER, "path:s, images:X, rows:i=8", mk_writer, "images as one PNG grid"),
};

enum { NBUILTINS = sizeof builtins / sizeof builtins[0] };

const Builtin *builtin_find_kind(const char *name, BuiltinKind kind) {
  if (kind == BK_WRITER && !strcmp(name, "csv")) name = "csv_writer";
  for (int i = 0; i < NBUILTINS; i++)
    if (builtins[i].kind == kind && !strcmp(builtins[i].name, name)) return &builtins[i];
  return NULL;
}

const Builtin *builtin_find(const char *name) {
  if (!strcmp(name, "csv_writer")) return NULL;
  for (int i = 0; i < NBUILTINS; i++)
    if (!strcmp(builtins[i].name, name)) return &builtins[i];
  return NULL;
}

const char *const *builtin_names(int *n) {
  static const char *names[NBUILTINS];
  for (int i = 0; i < NBUILTINS; i++) names[i] = builtins[i].name;
  *n = NBUILTINS;
  return names;
}

/* ---- calling layers ----------------------------------------------------- */

Value *layer_apply(Sema *s, Layer *l, const Args *args, Loc loc) {
  switch (l->kind) {
  case LK_MODEL:
    return model_call(s, l, "forward", args, loc, NULL);
  case LK_SEQ: {
    if (args->npos != 1 || args->nkw != 0) {
      sema_error(s, loc, "a seq takes one input tensor, got %d argument%s", args->npos + args->nkw,
                 args->npos + args->nkw == 1 ? "" : "s");
      return val_err(s);
    }
    Value *x = args->pos[0];
    for (int i = 0; i < l->subs.len && x->kind != V_ERROR; i++) {
      Args a = {.npos = 1};
      a.pos[0] = x;
      a.posloc[0] = args->posloc[0];
      x = layer_apply(s, l->subs.items[i], &a, loc);
      if (x->kind == V_TUPLE && x->items.len > 0) x = x->items.items[0];  /* an RNN inside a seq */
    }
    return x;
  }
  case LK_BUILTIN: {
    Builtin callb = {.name = l->desc, .params = l->bi->call ? l->bi->call : "x:X"};
    Call c;
    if (!builtin_bind(s, &callb, loc, args, &c)) return val_err(s);
    Value *r = l->bi->apply(s, l, &c);
    /* a layer the compiler has no lowering for: named, at its own line */
    Value *first = r->kind == V_TUPLE && r->items.len ? r->items.items[0] : r;
    if (s->lw && first->kind == V_TENSOR && !first->ir && c.arg[0] && c.arg[0]->kind == V_TENSOR && c.arg[0]->ir)
      lw_unsupported(s, l->loc, l->type);
    /* apply() returns arena values, never a pointer into c */
    /* cppcheck-suppress returnDanglingLifetime */
    return r;
  }
  }
  return val_err(s);
}
