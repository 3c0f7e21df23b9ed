/*
 * ast.c — AST nodes and their printed form (`nnc ir --stage=ast`).
 *
 * The printed form is one node per line, indented by depth, each line
 * starting with the node's line:column in the spec, e.g.
 *
 *   3:7     const FEATURES
 *   3:18      int 116
 *
 * It is stable (golden-tested) and meant to be read in class.
 */
#include "lang/lang.h"

#include <string.h>

Node *ast_new(Arena *a, NodeKind kind, Loc loc) {
  Node *n = arena_alloc(a, sizeof *n);
  n->kind = kind;
  n->loc = loc;
  return n;
}

const char *ast_kind_name(NodeKind k) {
  static const char *names[N_KIND_COUNT] = {
      [N_INT] = "int", [N_FLOAT] = "float", [N_STRING] = "string",
      [N_BOOL] = "bool", [N_NAME] = "name", [N_BINARY] = "binary",
      [N_UNARY] = "unary", [N_CALL] = "call", [N_KWARG] = "kwarg",
      [N_INDEX] = "index", [N_SLICE] = "slice", [N_MEMBER] = "member",
      [N_TUPLE] = "tuple", [N_LIST] = "list", [N_RANGE] = "range",
      [N_SEQ] = "seq", [N_REPEAT] = "repeat", [N_TYPE] = "type",
      [N_ASSIGN] = "assign", [N_EXPR] = "expr", [N_RETURN] = "return",
      [N_FOR] = "for", [N_STEP] = "step", [N_AFTER] = "after",
      [N_WRITE] = "write", [N_CONST] = "const", [N_MODEL] = "model",
      [N_METHOD] = "method", [N_PARAM] = "param", [N_BLOCK] = "block",
      [N_DATA] = "data", [N_TRAIN] = "train", [N_PREDICT] = "predict",
      [N_PROGRAM] = "program",
  };
  return (unsigned)k < N_KIND_COUNT && names[k] ? names[k] : "?";
}

const char *ast_op_text(OpKind op) {
  static const char *text[OP_COUNT] = {
      [OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/",
      [OP_MOD] = "%", [OP_MATMUL] = "@", [OP_POW] = "**", [OP_EQ] = "==",
      [OP_NE] = "!=", [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">",
      [OP_GE] = ">=", [OP_AND] = "and", [OP_OR] = "or", [OP_NEG] = "-",
      [OP_NOT] = "not",
  };
  return (unsigned)op < OP_COUNT && text[op] ? text[op] : "?";
}

Loc loc_span(Loc a, Loc b) {
  if (a.src == b.src && a.line == b.line && b.col >= a.col)
    a.len = b.col + b.len - a.col;
  return a;
}

enum { MAX_PRINT_DEPTH = 200 };

static void print_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fprintf(out, "\\%c", *s);
    else if (*s == '\n') fputs("\\n", out);
    else if (*s == '\t') fputs("\\t", out);
    else fputc(*s, out);
  }
  fputc('"', out);
}

static void print_node(FILE *out, const Node *n, int depth);

static void print_list(FILE *out, const char *label, const Vec *v, int depth) {
  if (label) {
    fprintf(out, "%-8s%*s%s\n", "", depth * 2, "", label);
    depth++;
  }
  for (int i = 0; i < v->len; i++) print_node(out, v->items[i], depth);
}

static void print_node(FILE *out, const Node *n, int depth) {
  if (!n) return;
  char where[32];
  snprintf(where, sizeof where, "%d:%d", n->loc.line, n->loc.col);
  fprintf(out, "%-8s%*s", where, depth * 2, "");
  if (depth > MAX_PRINT_DEPTH) {
    fputs("...\n", out);
    return;
  }
  fputs(ast_kind_name(n->kind), out);
  switch (n->kind) {
  case N_INT: fprintf(out, " %lld\n", (long long)n->ival); return;
  case N_FLOAT: fprintf(out, " %.9g\n", n->fval); return;
  case N_STRING: fputc(' ', out); print_string(out, n->str); fputc('\n', out); return;
  case N_BOOL: fprintf(out, " %s\n", n->ival ? "true" : "false"); return;
  case N_NAME: fprintf(out, " %s\n", n->name); return;
  case N_BINARY:
  case N_UNARY: fprintf(out, " %s\n", ast_op_text(n->op)); break;
  case N_KWARG: fprintf(out, " %s:\n", n->name); break;
  case N_MEMBER: fprintf(out, " .%s\n", n->name); break;
  case N_TYPE:
    fprintf(out, " %s%s\n", n->name ? n->name : "float", n->ival ? "[]" : "");
    break;
  case N_ASSIGN:
    fputc(' ', out);
    for (int i = 0; i < n->list.len; i++)
      fprintf(out, "%s%s", i ? ", " : "", ((Node *)n->list.items[i])->name);
    fputc('\n', out);
    print_node(out, n->a, depth + 1);
    return;
  case N_FOR: fprintf(out, " %s in\n", n->name); break;
  case N_STEP:
  case N_AFTER:
  case N_CONST:
  case N_MODEL:
  case N_METHOD:
  case N_PARAM:
  case N_BLOCK:
  case N_DATA: fprintf(out, " %s\n", n->name); break;
  case N_TRAIN:
  case N_PREDICT:
    if (n->name) fprintf(out, " %s", n->name);
    fputc('\n', out);
    break;
  case N_CALL:
  case N_INDEX:
  case N_SLICE:
  case N_TUPLE:
  case N_LIST:
  case N_RANGE:
  case N_SEQ:
  case N_REPEAT:
  case N_EXPR:
  case N_RETURN:
  case N_WRITE:
  case N_PROGRAM:
  case N_KIND_COUNT:
    fputc('\n', out);
    break;
  }
  if (n->kind == N_SLICE) {
    /* start, stop and step by position; an absent one prints as `_` */
    for (const Node *const *p = (const Node *const[]){n->a, n->b, n->c}, *const *e = p + 3; p < e; p++) {
      if (*p) print_node(out, *p, depth + 1);
      else fprintf(out, "%-8s%*s_\n", "", (depth + 1) * 2, "");
    }
    return;
  }
  if (n->kind == N_MODEL) {
    print_list(out, "params", &n->list, depth + 1);
    if (n->a) {
      fprintf(out, "%-8s%*sbudget\n", "", (depth + 1) * 2, "");
      print_node(out, n->a, depth + 2);
    }
    print_list(out, NULL, &n->list2, depth + 1);
    return;
  }
  if (n->kind == N_BLOCK) {
    print_list(out, "params", &n->list, depth + 1);
    print_node(out, n->a, depth + 1);
    return;
  }
  if (n->kind == N_METHOD) {
    print_list(out, "params", &n->list, depth + 1);
    if (n->a) {
      fprintf(out, "%-8s%*sreturns\n", "", (depth + 1) * 2, "");
      print_node(out, n->a, depth + 2);
    }
    print_list(out, "body", &n->list2, depth + 1);
    return;
  }
  print_node(out, n->a, depth + 1);
  print_node(out, n->b, depth + 1);
  print_node(out, n->c, depth + 1);
  print_list(out, NULL, &n->list, depth + 1);
  print_list(out, NULL, &n->list2, depth + 1);
}

void ast_print(FILE *out, const Node *n) { print_node(out, n, 0); }
