/* lex_state.h — the lexer's per-parse state, shared by lexer.l and parser.y
 * (private to lang/). */
#ifndef NNC_LEX_STATE_H
#define NNC_LEX_STATE_H

#include "lang/lang.h"

typedef struct LexState {
  Arena *arena;
  Diag *diag;
  const Source *src;
  int line, col;     /* position of the next character */
  int last;          /* the last token returned (0 at the start) */
  char stack[256];   /* open brackets: '(', '[' or '{' */
  int depth;
  char text[64];     /* the last token's text, for syntax errors */
  char prev[64];     /* the token before it */
  size_t offset;     /* byte offset of the next character */
  int lex_error_line;/* line of the lexer's last error (0: none) */
  Node *program;     /* the N_PROGRAM the parser fills */
} LexState;

#endif
