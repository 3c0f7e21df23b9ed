/*
 * types.c — dimensions, shapes and checker values, and how they print.
 *
 * A dimension is an integer times a product of symbols; that is enough for
 * the shapes of every homework: `B` (the batch), `T` (a sequence length) and
 * products like `80·T` after a flatten. Symbols are kept sorted, so equal
 * products compare equal.
 */
#include "compiler/sema_int.h"

#include <string.h>

Dim dim_int(int64_t c) { return (Dim){.c = c}; }

Dim dim_sym(const char *name) {
  Dim d = {.c = 1, .nsym = 1};
  d.sym[0] = name;
  return d;
}

bool dim_known(Dim d) { return d.nsym == 0; }

bool dim_eq(Dim a, Dim b) {
  if (a.c != b.c || a.nsym != b.nsym) return false;
  for (int i = 0; i < a.nsym; i++)
    if (strcmp(a.sym[i], b.sym[i]) != 0) return false;
  return true;
}

bool dim_mul(Dim a, Dim b, Dim *out) {
  if (a.nsym + b.nsym > MAX_SYMS) return false;
  Dim r = {.c = a.c * b.c};
  if (a.c != 0 && (r.c / a.c != b.c)) return false;   /* overflow */
  /* merge the two sorted symbol lists */
  int i = 0, j = 0;
  while (i < a.nsym || j < b.nsym) {
    if (j >= b.nsym || (i < a.nsym && strcmp(a.sym[i], b.sym[j]) <= 0))
      r.sym[r.nsym++] = a.sym[i++];
    else
      r.sym[r.nsym++] = b.sym[j++];
  }
  *out = r;
  return true;
}

const char *dim_str(Arena *a, Dim d) {
  if (d.nsym == 0) return arena_printf(a, "%lld", (long long)d.c);
  char buf[256];
  size_t n = 0;
  if (d.c != 1) n += (size_t)snprintf(buf, sizeof buf, "%lld·", (long long)d.c);
  for (int i = 0; i < d.nsym && n < sizeof buf; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? "·" : "", d.sym[i]);
  return arena_strdup(a, buf);
}

const char *shape_str(Arena *a, const Shape *s) {
  char buf[512];
  size_t n = 0;
  buf[n++] = '[';
  for (int i = 0; i < s->rank && n < sizeof buf - 64; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? ", " : "", dim_str(a, s->d[i]));
  buf[n++] = ']';
  buf[n] = 0;
  return arena_strdup(a, buf);
}

const char *ttype_str(Arena *a, DType dt, const Shape *s) {
  const char *sh = shape_str(a, s);
  switch (dt) {
  case DT_FLOAT: return sh;
  case DT_INT: return arena_printf(a, "int%s", sh);
  case DT_BOOL: return arena_printf(a, "bool%s", sh);
  case DT_TEXT: return arena_printf(a, "text%s", sh);
  }
  return sh;
}

const char *count_str(Arena *a, int64_t v) {
  char tmp[32], buf[48];
  snprintf(tmp, sizeof tmp, "%lld", (long long)(v < 0 ? -v : v));
  size_t len = strlen(tmp), k = 0;
  if (v < 0) buf[k++] = '-';
  for (size_t i = 0; i < len; i++) {
    if (i > 0 && (len - i) % 3 == 0) buf[k++] = ',';
    buf[k++] = tmp[i];
  }
  buf[k] = 0;
  return arena_strdup(a, buf);
}

bool shape_numel(const Shape *s, int from, Dim *out) {
  Dim r = dim_int(1);
  for (int i = from; i < s->rank; i++)
    if (!dim_mul(r, s->d[i], &r)) return false;
  *out = r;
  return true;
}

bool shape_broadcast(const Shape *a, const Shape *b, Shape *out) {
  Shape r = {.rank = a->rank > b->rank ? a->rank : b->rank};
  for (int i = 0; i < r.rank; i++) {
    int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
    Dim da = ia >= 0 ? a->d[ia] : dim_int(1);
    Dim db = ib >= 0 ? b->d[ib] : dim_int(1);
    if (dim_eq(da, db) || (dim_known(db) && db.c == 1)) r.d[i] = da;
    else if (dim_known(da) && da.c == 1) r.d[i] = db;
    else return false;
  }
  *out = r;
  return true;
}

/* ---- values ----------------------------------------------------------- */

const char *val_kind_name(ValKind k) {
  switch (k) {
  case V_ERROR: return "error";
  case V_NONE: return "nothing";
  case V_INT: return "int";
  case V_FLOAT: return "float";
  case V_BOOL: return "bool";
  case V_STRING: return "string";
  case V_TUPLE: return "tuple";
  case V_LIST: return "list";
  case V_RANGE: return "range";
  case V_TENSOR: return "tensor";
  case V_LAYER: return "layer";
  case V_MODELDEF: return "model declaration";
  case V_BLOCKDEF: return "block declaration";
  case V_MODEL: return "model";
  case V_PARAMS: return "params";
  case V_OPTIMIZER: return "optimizer";
  case V_SCHEDULE: return "LR schedule";
  case V_DATASET: return "data set";
  case V_RECORD: return "record";
  case V_TRANSFORM: return "transform";
  case V_COLUMN: return "column selection";
  case V_METRIC: return "metric";
  case V_WRITER: return "writer";
  case V_BUILTIN: return "builtin";
  case V_ENV: return "environment";
  case V_TYPE: return "type";
  case V_METHOD: return "method";
  }
  return "?";
}

const char *val_desc(Arena *a, const Value *v) {
  switch (v->kind) {
  case V_INT: return arena_printf(a, "int %lld", (long long)v->i);
  case V_FLOAT: return arena_printf(a, "float %g", v->f);
  case V_BOOL: return v->i ? "bool true" : "bool false";
  case V_STRING: return arena_printf(a, "string \"%s\"", v->s);
  case V_TENSOR: return arena_printf(a, "tensor %s", ttype_str(a, v->dtype, &v->shape));
  case V_LAYER: return arena_printf(a, "layer %s", v->layer->desc);
  case V_MODEL: return arena_printf(a, "model %s", v->layer->type);
  case V_PARAMS: return arena_printf(a, "params of %s", v->layer->type);
  case V_MODELDEF: return arena_printf(a, "model declaration %s (call it to build one)", v->mdef->name);
  case V_BLOCKDEF: return arena_printf(a, "block declaration %s (call it to build one)", v->bdef->name);
  case V_BUILTIN: return arena_printf(a, "builtin %s", v->bi->name);
  case V_METHOD: return arena_printf(a, "method %s.%s", v->layer->type, v->s);
  case V_TUPLE: return arena_printf(a, "tuple of %d", v->items.len);
  case V_LIST: return arena_printf(a, "list of %d", v->items.len);
  case V_RANGE: return arena_printf(a, "range %lld..%lld", (long long)v->i, (long long)v->j);
  case V_ERROR: case V_NONE: case V_OPTIMIZER: case V_SCHEDULE: case V_DATASET:
  case V_RECORD: case V_TRANSFORM: case V_COLUMN: case V_METRIC: case V_WRITER:
  case V_ENV: case V_TYPE:
    return val_kind_name(v->kind);
  }
  return "?";
}

Value *val_new(Sema *s, ValKind k) {
  Value *v = arena_alloc(s->arena, sizeof *v);
  v->kind = k;
  return v;
}

Value *val_int(Sema *s, int64_t i) {
  Value *v = val_new(s, V_INT);
  v->i = i;
  return v;
}

Value *val_float(Sema *s, double f) {
  Value *v = val_new(s, V_FLOAT);
  v->f = f;
  return v;
}

Value *val_tensor(Sema *s, DType dt, const Shape *sh) {
  Value *v = val_new(s, V_TENSOR);
  v->dtype = dt;
  v->shape = *sh;
  return v;
}

Value *val_err(Sema *s) { return s->error_val; }

bool val_is_number(const Value *v) {
  return v->kind == V_INT || v->kind == V_FLOAT || v->kind == V_BOOL;
}

double val_num(const Value *v) {
  return v->kind == V_FLOAT ? v->f : (double)v->i;
}

/* ---- reporting -------------------------------------------------------- */

void sema_error(Sema *s, Loc loc, const char *fmt, ...) {
  if (s->quiet) {
    s->failed_quiet = 1;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(s->diag, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
}

void sema_warn(Sema *s, Loc loc, const char *fmt, ...) {
  /* lowering a second step of several walks the spec again: said already */
  if (s->quiet || s->opt->lower_step > 1) return;
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(s->diag, DIAG_WARNING, loc, fmt, ap);
  va_end(ap);
}

void sema_hint(Sema *s, const char *fmt, ...) {
  if (s->quiet || s->diag->nerrors > s->diag->max_errors) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("      = hint: ", s->diag->out);
  vfprintf(s->diag->out, fmt, ap);
  fputc('\n', s->diag->out);
  va_end(ap);
}
