/*
 * parse.c — runs the flex scanner and the bison parser over one source.
 */
#include "lang/lang.h"
#include "lang/lex_state.h"
#include "parser.h"
#include "lexer.h"

Node *parse_source(Arena *a, Diag *d, const Source *src) {
  LexState ls = {0};
  ls.arena = a;
  ls.diag = d;
  ls.src = src;
  ls.line = 1;
  ls.col = 1;
  ls.program = ast_new(a, N_PROGRAM, (Loc){src, 1, 1, 1});

  yyscan_t scanner;
  if (yylex_init_extra(&ls, &scanner) != 0)
    nnc_die(__FILE__, __LINE__, "cannot start the scanner");
  YY_BUFFER_STATE buf = yy_scan_bytes(src->text, (int)src->len, scanner);
  int before = d->nerrors;
  int rc = yyparse(scanner);
  yy_delete_buffer(buf, scanner);
  yylex_destroy(scanner);
  /* The parser reports into d through ls, the scanner's extra data, which
   * cppcheck does not follow. */
  /* cppcheck-suppress knownConditionTrueFalse */
  if (rc != 0 || d->nerrors > before) return NULL;
  return ls.program;
}
