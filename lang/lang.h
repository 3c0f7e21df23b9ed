/*
 * lang.h — the front end's interface: source files, diagnostics, the AST,
 * and the parser.
 *
 *     Arena *a = arena_new();
 *     Diag d; diag_init(&d, stderr, 20);
 *     Source *src = source_load(a, &d, "specs/hw1.nn");   // NULL on I/O error
 *     Node *prog = src ? parse_source(a, &d, src) : NULL;  // NULL on syntax error
 *     ast_print(stdout, prog);
 *     arena_free(a);
 *
 * Everything a compilation allocates lives in one arena and is freed at once.
 * Every AST node carries the location of the text it came from; every error
 * goes through diag_error() and prints `file:line:col: error: message`, the
 * source line and a caret under the spot.
 */
#ifndef NNC_LANG_H
#define NNC_LANG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- arena ------------------------------------------------------------ */

typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);          /* zeroed, 16-aligned */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A growable array of pointers, allocated in an arena. */
typedef struct {
  void **items;
  int len, cap;
} Vec;

void vec_push(Arena *a, Vec *v, void *item);

/* ---- source files and locations --------------------------------------- */

typedef struct Source {
  const char *path;   /* as the user gave it */
  const char *text;   /* NUL-terminated copy, BOM removed */
  size_t len;
  int nlines;
  const char **line_start; /* line_start[i] = first byte of line i+1 */
} Source;

/* A place in a source: 1-based line and column (in code points), and the
 * length of the spot in code points (for the underline; at least 1). */
typedef struct {
  const Source *src;
  int line, col, len;
} Loc;

/* Reads a file whole. Reports an unreadable file, a NUL byte or bad UTF-8
 * through `d` and returns NULL. */
struct Diag;
Source *source_load(Arena *a, struct Diag *d, const char *path);
/* The same for text already in memory (tests, the fuzzer). */
Source *source_from_text(Arena *a, struct Diag *d, const char *path,
                         const char *text, size_t len);
/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if invalid. */
size_t utf8_valid_len(const unsigned char *p, size_t n);
/* The text of line `line` (1-based) without its line ending. */
const char *source_line(const Source *s, int line, size_t *len);

/* ---- diagnostics ------------------------------------------------------ */

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
  FILE *out;          /* where messages go (stderr in the CLI) */
  int nerrors, nwarnings;
  int max_errors;     /* stop reporting after this many errors */
  int color;          /* ANSI colours (only on a terminal) */
} Diag;

void diag_init(Diag *d, FILE *out, int max_errors);
/* `file:line:col: error: message`, the source line, a caret/underline.
 * `loc` may have src == NULL (no position). */
void diag_error(Diag *d, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A note or hint attached to the previous message, printed `  = hint: ...`. */
void diag_hint(Diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void diag_note(Diag *d, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_vreport(Diag *d, DiagLevel lv, Loc loc, const char *fmt, va_list ap);
/* True once max_errors have been reported: callers stop early. */
int diag_full(const Diag *d);

/* Broken invariants of nnc itself (not the user's fault): print and abort. */
#define NNC_ASSERT(c) \
  ((c) ? (void)0 : nnc_die(__FILE__, __LINE__, "assertion failed: %s", #c))
/* A branch that no input can reach, named: a switch's fall-through. */
#define NNC_UNREACHABLE(what) nnc_die(__FILE__, __LINE__, "unreachable: %s", what)
_Noreturn void nnc_die(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Edit distance, for `did you mean ...?` hints. */
int lev_distance(const char *a, const char *b);
/* The closest of `cands` (n of them) to `name`, or NULL if none is close. */
const char *closest_name(const char *name, const char *const *cands, int n);

/* ---- the AST ---------------------------------------------------------- */

/* Node kinds. Each comment names the fields the kind uses. */
typedef enum {
  /* expressions */
  N_INT,      /* ival */
  N_FLOAT,    /* fval */
  N_STRING,   /* str */
  N_BOOL,     /* ival (0/1) */
  N_NAME,     /* name */
  N_BINARY,   /* op, a, b */
  N_UNARY,    /* op, a */
  N_CALL,     /* a = callee, list = args (N_KWARG or expressions) */
  N_KWARG,    /* name, a = value */
  N_INDEX,    /* a = target, list = subscripts (expressions or N_SLICE) */
  N_SLICE,    /* a = start, b = stop, c = step (each may be NULL) */
  N_MEMBER,   /* a = object, name */
  N_TUPLE,    /* list */
  N_LIST,     /* list */
  N_RANGE,    /* a .. b, inclusive */
  N_SEQ,      /* list = items (expressions, N_REPEAT, N_FOR) */
  N_REPEAT,   /* a = count, list = items (inside a seq) */
  N_TYPE,     /* name = "int"/"float"/"bool"/"string" or NULL (float); list = dims,
                 ival = 1 if a tensor type (has dims); `_` in dims is N_NAME "_" */
  /* statements */
  N_ASSIGN,   /* list = targets (N_NAME), a = value */
  N_EXPR,     /* a = expression evaluated for its effect */
  N_RETURN,   /* a */
  N_FOR,      /* name = variable, a = range/list, list = body */
  N_STEP,     /* name, list = body */
  N_AFTER,    /* name = epoch/task/train, list = body */
  N_WRITE,    /* a = writer call, list = fields (N_ASSIGN) */
  /* declarations */
  N_CONST,    /* name, a = value */
  N_MODEL,    /* name, list = params, list2 = members, a = budget (or NULL) */
  N_METHOD,   /* name, list = params, a = return type (or NULL), list2 = body */
  N_PARAM,    /* name, a = type (or NULL), b = default (or NULL) */
  N_BLOCK,    /* name, list = params, a = body expression */
  N_DATA,     /* name, a = source call, list = fields (N_ASSIGN) */
  N_TRAIN,    /* name (or NULL), list = body */
  N_PREDICT,  /* name (or NULL), list = body */
  N_PROGRAM,  /* list = declarations */
  N_KIND_COUNT
} NodeKind;

/* Operators of N_BINARY / N_UNARY. */
typedef enum {
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_MATMUL, OP_POW,
  OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_AND, OP_OR,
  OP_NEG, OP_NOT, OP_COUNT
} OpKind;

typedef struct Node Node;
struct Node {
  NodeKind kind;
  OpKind op;
  Loc loc;
  const char *name;
  const char *str;
  int64_t ival;
  double fval;
  Node *a, *b, *c;
  Vec list, list2;
};

Node *ast_new(Arena *a, NodeKind kind, Loc loc);
const char *ast_kind_name(NodeKind k);
const char *ast_op_text(OpKind op);
/* A stable, indented text form of the tree (`nnc ir --stage=ast`). */
void ast_print(FILE *out, const Node *n);
/* The span from the start of `a` to the end of `b` (same line), for underlines. */
Loc loc_span(Loc a, Loc b);

/* ---- the parser ------------------------------------------------------- */

/* Parses a whole source into an N_PROGRAM. Syntax errors are reported
 * through `d` (several, with recovery); returns NULL if there were any. */
Node *parse_source(Arena *a, Diag *d, const Source *src);

#endif
