/*
 * nnc_test.h — helpers shared by the cmocka unit tests: parse a string as
 * the spec file "t.nn", with the diagnostics captured in memory so a test
 * can check the exact `t.nn:LINE:COL: error: ...` text.
 */
#ifndef NNC_TEST_H
#define NNC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lang/lang.h"

typedef struct {
  Arena *arena;
  Diag diag;
  FILE *out;      /* the diagnostics stream */
  char *text;     /* what was written to it (after t_parse) */
  size_t len;
  Source *src;    /* NULL if the bytes were rejected */
  Node *prog;     /* NULL on any error */
} Parsed;

/* Parses `len` bytes (NULs and bad UTF-8 included) as "t.nn". */
static inline Parsed *t_parse_n(const char *text, size_t len, int max_errors) {
  Parsed *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->arena = arena_new();
  p->out = open_memstream(&p->text, &p->len);
  assert_non_null(p->out);
  diag_init(&p->diag, p->out, max_errors);
  p->src = source_from_text(p->arena, &p->diag, "t.nn", text, len);
  if (p->src) p->prog = parse_source(p->arena, &p->diag, p->src);
  fflush(p->out);
  return p;
}

static inline Parsed *t_parse(const char *text) {
  return t_parse_n(text, strlen(text), 20);
}

static inline void t_free(Parsed *p) {
  fclose(p->out);
  free(p->text);
  arena_free(p->arena);
  free(p);
}

/* The i-th declaration of a program that parsed. */
static inline Node *t_decl(Parsed *p, int i) {
  assert_non_null(p->prog);
  assert_true(i < p->prog->list.len);
  return p->prog->list.items[i];
}

/* The value of `const NAME = value`, the i-th declaration. */
static inline Node *t_const(Parsed *p, int i) {
  Node *d = t_decl(p, i);
  assert_int_equal(d->kind, N_CONST);
  return d->a;
}

/* Asserts the diagnostics contain `needle`, printing them if not. */
#define assert_diag(p, needle)                                                 \
  do {                                                                         \
    if (!(p)->text || !strstr((p)->text, (needle)))                            \
      fail_msg("diagnostics lack \"%s\"; they were:\n%s", (needle),            \
               (p)->text ? (p)->text : "(none)");                              \
  } while (0)

/* Asserts a successful parse, printing the diagnostics if not. */
#define assert_parsed(p)                                                       \
  do {                                                                         \
    if (!(p)->prog) fail_msg("parse failed:\n%s", (p)->text ? (p)->text : ""); \
  } while (0)

#define assert_loc(n, l, c)                                                    \
  do {                                                                         \
    assert_int_equal((n)->loc.line, (l));                                      \
    assert_int_equal((n)->loc.col, (c));                                       \
  } while (0)

#endif
