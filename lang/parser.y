/*
 * parser.y — the .nn grammar (pure, reentrant bison; LALR(1), no conflicts).
 *
 * The grammar in EBNF is in docs/design-language.md; each rule below carries
 * its EBNF line as a comment. Every node gets the location of its text.
 * Syntax errors are worded by yyreport_syntax_error() below ("expected ')'
 * or ',', found end of line") and the parser recovers at the next statement
 * or declaration, so several independent errors are reported in one run.
 */
%define api.pure full
%define api.location.type {Loc}
%define parse.error custom
/* exact expected-token lists in messages, and no default reductions that
 * would unwind a statement list before error recovery can resync in it */
%define parse.lac full
%define lr.default-reduction consistent
%locations
%expect 0
%param {yyscan_t scanner}

%code requires {
#include "lang/lang.h"
typedef void *yyscan_t;
}

%code provides {
int yylex(YYSTYPE *lval, Loc *lloc, yyscan_t scanner);
}

%code {
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include "lang/lex_state.h"

struct LexState *yyget_extra(yyscan_t scanner);

#define LS (yyget_extra(scanner))
#define NEW(kind, loc) ast_new(LS->arena, (kind), (loc))

/* A node's location spans its first to its last symbol (on one line). */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                   \
  do {                                                                \
    if (N) {                                                          \
      (Cur) = YYRHSLOC(Rhs, 1);                                       \
      Loc e_ = YYRHSLOC(Rhs, N);                                      \
      if (e_.line == (Cur).line && e_.col >= (Cur).col)               \
        (Cur).len = e_.col + e_.len - (Cur).col;                      \
    } else {                                                          \
      (Cur) = YYRHSLOC(Rhs, 0);                                       \
      (Cur).col += (Cur).len;                                         \
      (Cur).len = 1;                                                  \
    }                                                                 \
  } while (0)

static Node *binary(yyscan_t scanner, OpKind op, Node *l, Node *r, Loc loc) {
  Node *n = NEW(N_BINARY, loc);
  n->op = op;
  n->a = l;
  n->b = r;
  return n;
}
#define BIN(op, l, r, loc) binary(scanner, op, l, r, loc)
#define PUSH(v, x) vec_push(LS->arena, &(v), (x))

/* Only reached for "memory exhausted" (nesting deeper than bison's stack);
 * syntax errors go through yyreport_syntax_error(). */
static void yyerror(Loc *loc, yyscan_t scanner, const char *msg) {
  diag_error(LS->diag, *loc, "%s: the spec is nested too deeply", msg);
}
}

%union {
  Node *node;
  char *str;
  int64_t ival;
  double fval;
  Vec vec;
}

%token SEP "end of line"
%token MODEL "'model'" BLOCK "'block'" DATA "'data'" TRAIN "'train'"
%token PREDICT "'predict'" CONST "'const'" STEP "'step'" FOR "'for'"
%token IN "'in'" RETURN "'return'" SEQ "'seq'" REPEAT "'repeat'"
%token AFTER "'after'" WRITE "'write'" BUDGET "'budget'"
%token TRUE "'true'" FALSE "'false'" AND "'and'" OR "'or'" NOT "'not'"
%token ARROW "'->'" DOTDOT "'..'" POW "'**'" EQ "'=='" NE "'!='"
%token LE "'<='" GE "'>='"
%token BADCHAR "bad character"
%token <str> IDENT "name"
%token <str> STRING "string"
%token <ival> INT "integer"
%token <fval> FLOAT "number"

%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' LE '>' GE
%nonassoc DOTDOT
%left '+' '-'
%left '*' '/' '%' '@'
%precedence UMINUS
%right POW

%type <node> decl member stmt expr postfix primary arg subscript item type
%type <node> param body_node data_decl expr_opt
%type <vec> decls members members1 stmts stmts1 params params1 args args1
%type <vec> exprs exprs1 subscripts items items1 targets body dims
%type <str> name_opt

%start program

%%

/* program = { sep | decl } */
program
  : decls                            { LS->program->list = $1; }
  ;

decls
  : %empty                           { $$ = (Vec){0}; }
  | decls SEP                        { $$ = $1; }
  | decls decl                       { $$ = $1; if ($2) PUSH($$, $2); }
  | decls error SEP                  { $$ = $1; yyerrok; }
  ;

decl
  /* const = "const" NAME "=" expr */
  : CONST IDENT '=' expr             { $$ = NEW(N_CONST, @2); $$->name = $2; $$->a = $4; }
  /* model = "model" NAME [ "(" params ")" ] [ "budget" expr ] "{" { member } "}" */
  | MODEL IDENT '{' members '}'      { $$ = NEW(N_MODEL, @2); $$->name = $2; $$->list2 = $4; }
  | MODEL IDENT '(' params ')' '{' members '}'
                                     { $$ = NEW(N_MODEL, @2); $$->name = $2; $$->list = $4; $$->list2 = $7; }
  | MODEL IDENT BUDGET expr '{' members '}'
                                     { $$ = NEW(N_MODEL, @2); $$->name = $2; $$->a = $4; $$->list2 = $6; }
  | MODEL IDENT '(' params ')' BUDGET expr '{' members '}'
                                     { $$ = NEW(N_MODEL, @2); $$->name = $2; $$->list = $4; $$->a = $7; $$->list2 = $9; }
  /* block = "block" NAME [ "(" params ")" ] "=" expr */
  | BLOCK IDENT '=' expr             { $$ = NEW(N_BLOCK, @2); $$->name = $2; $$->a = $4; }
  | BLOCK IDENT '(' params ')' '=' expr
                                     { $$ = NEW(N_BLOCK, @2); $$->name = $2; $$->list = $4; $$->a = $7; }
  | data_decl                        { $$ = $1; }
  /* train = "train" [ NAME ] body */
  | TRAIN name_opt body              { $$ = NEW(N_TRAIN, @1); $$->name = $2; $$->list = $3; }
  /* predict = "predict" [ NAME ] body */
  | PREDICT name_opt body            { $$ = NEW(N_PREDICT, @1); $$->name = $2; $$->list = $3; }
  ;

/* data = "data" NAME "=" call [ "{" { NAME "=" expr sep } "}" ] */
data_decl
  : DATA IDENT '=' expr              { $$ = NEW(N_DATA, @2); $$->name = $2; $$->a = $4; }
  | DATA IDENT '=' expr body         { $$ = NEW(N_DATA, @2); $$->name = $2; $$->a = $4; $$->list = $5; }
  ;

name_opt
  : %empty                           { $$ = NULL; }
  | IDENT                            { $$ = $1; }
  ;

/* { member } with separators */
members
  : seps_opt                         { $$ = (Vec){0}; }
  | seps_opt members1 seps_opt       { $$ = $2; }
  ;

members1
  : member                           { $$ = (Vec){0}; if ($1) PUSH($$, $1); }
  | members1 seps member             { $$ = $1; if ($3) PUSH($$, $3); }
  ;

member
  /* member = NAME "=" expr */
  : IDENT '=' expr                   { $$ = NEW(N_ASSIGN, @1); Node *t = NEW(N_NAME, @1); t->name = $1;
                                       PUSH($$->list, t); $$->a = $3; }
  /* member = NAME "(" params ")" [ "->" type ] body */
  | IDENT '(' params ')' body        { $$ = NEW(N_METHOD, @1); $$->name = $1; $$->list = $3; $$->list2 = $5; }
  | IDENT '(' params ')' ARROW type body
                                     { $$ = NEW(N_METHOD, @1); $$->name = $1; $$->list = $3; $$->a = $6; $$->list2 = $7; }
  | error                            { $$ = NULL; }
  ;

seps
  : SEP
  | seps SEP
  ;

seps_opt
  : %empty
  | seps
  ;

/* params = [ param { "," param } ] */
params
  : %empty                           { $$ = (Vec){0}; }
  | params1                          { $$ = $1; }
  | params1 ','                      { $$ = $1; }
  ;

params1
  : param                            { $$ = (Vec){0}; PUSH($$, $1); }
  | params1 ',' param                { $$ = $1; PUSH($$, $3); }
  ;

/* param = NAME [ ":" type ] [ "=" expr ] */
param
  : IDENT                            { $$ = NEW(N_PARAM, @1); $$->name = $1; }
  | IDENT ':' type                   { $$ = NEW(N_PARAM, @1); $$->name = $1; $$->a = $3; }
  | IDENT '=' expr                   { $$ = NEW(N_PARAM, @1); $$->name = $1; $$->b = $3; }
  | IDENT ':' type '=' expr          { $$ = NEW(N_PARAM, @1); $$->name = $1; $$->a = $3; $$->b = $5; }
  ;

/* type = NAME | [ NAME ] "[" dims "]" */
type
  : IDENT                            { $$ = NEW(N_TYPE, @1); $$->name = $1; }
  | '[' dims ']'                     { $$ = NEW(N_TYPE, @$); $$->list = $2; $$->ival = 1; }
  | IDENT '[' dims ']'               { $$ = NEW(N_TYPE, @$); $$->name = $1; $$->list = $3; $$->ival = 1; }
  ;

dims
  : exprs                            { $$ = $1; }
  ;

/* body = "{" { stmt } "}" */
body
  : '{' stmts '}'                    { $$ = $2; }
  ;

body_node
  : body                             { $$ = NEW(N_PROGRAM, @1); $$->list = $1; }
  ;

stmts
  : seps_opt                         { $$ = (Vec){0}; }
  | seps_opt stmts1 seps_opt         { $$ = $2; }
  ;

stmts1
  : stmt                             { $$ = (Vec){0}; if ($1) PUSH($$, $1); }
  | stmts1 seps stmt                 { $$ = $1; if ($3) PUSH($$, $3); }
  ;

stmt
  /* stmt = targets "=" expr */
  : targets '=' expr                 { $$ = NEW(N_ASSIGN, @1); $$->list = $1; $$->a = $3; }
  /* stmt = expr */
  | expr                             { $$ = NEW(N_EXPR, @1); $$->a = $1; }
  /* stmt = "return" expr */
  | RETURN expr                      { $$ = NEW(N_RETURN, @1); $$->a = $2; }
  /* stmt = "for" NAME "in" expr body */
  | FOR IDENT IN expr body           { $$ = NEW(N_FOR, @2); $$->name = $2; $$->a = $4; $$->list = $5; }
  /* stmt = "step" NAME body */
  | STEP IDENT body                  { $$ = NEW(N_STEP, @2); $$->name = $2; $$->list = $3; }
  /* stmt = "after" NAME body */
  | AFTER IDENT body                 { $$ = NEW(N_AFTER, @2); $$->name = $2; $$->list = $3; }
  | AFTER TRAIN body                 { $$ = NEW(N_AFTER, @2); $$->name = "train"; $$->list = $3; }
  | AFTER STEP body                  { $$ = NEW(N_AFTER, @2); $$->name = "step"; $$->list = $3; }
  /* stmt = "write" call [ body ] */
  | WRITE expr                       { $$ = NEW(N_WRITE, @1); $$->a = $2; }
  | WRITE expr body_node             { $$ = NEW(N_WRITE, @1); $$->a = $2; $$->list = $3->list; }
  | data_decl                        { $$ = $1; }
  /* `data = ds` sets a train block's data set ('data' is also a keyword) */
  | DATA '=' expr                    { $$ = NEW(N_ASSIGN, @1); Node *t = NEW(N_NAME, @1); t->name = "data";
                                       PUSH($$->list, t); $$->a = $3; }
  | error                            { $$ = NULL; }
  ;

/* targets = NAME { "," NAME } */
targets
  : IDENT                            { $$ = (Vec){0}; Node *t = NEW(N_NAME, @1); t->name = $1; PUSH($$, t); }
  | targets ',' IDENT                { $$ = $1; Node *t = NEW(N_NAME, @3); t->name = $3; PUSH($$, t); }
  ;

/* expr: binary operators by precedence (see the %left/%right lines) */
expr
  : expr OR expr                     { $$ = BIN(OP_OR, $1, $3, @2); }
  | expr AND expr                    { $$ = BIN(OP_AND, $1, $3, @2); }
  | NOT expr                         { $$ = NEW(N_UNARY, @1); $$->op = OP_NOT; $$->a = $2; }
  | expr EQ expr                     { $$ = BIN(OP_EQ, $1, $3, @2); }
  | expr NE expr                     { $$ = BIN(OP_NE, $1, $3, @2); }
  | expr '<' expr                    { $$ = BIN(OP_LT, $1, $3, @2); }
  | expr LE expr                     { $$ = BIN(OP_LE, $1, $3, @2); }
  | expr '>' expr                    { $$ = BIN(OP_GT, $1, $3, @2); }
  | expr GE expr                     { $$ = BIN(OP_GE, $1, $3, @2); }
  | expr DOTDOT expr                 { $$ = NEW(N_RANGE, @2); $$->a = $1; $$->b = $3; }
  | expr '+' expr                    { $$ = BIN(OP_ADD, $1, $3, @2); }
  | expr '-' expr                    { $$ = BIN(OP_SUB, $1, $3, @2); }
  | expr '*' expr                    { $$ = BIN(OP_MUL, $1, $3, @2); }
  | expr '/' expr                    { $$ = BIN(OP_DIV, $1, $3, @2); }
  | expr '%' expr                    { $$ = BIN(OP_MOD, $1, $3, @2); }
  | expr '@' expr                    { $$ = BIN(OP_MATMUL, $1, $3, @2); }
  | '-' expr %prec UMINUS            { $$ = NEW(N_UNARY, @1); $$->op = OP_NEG; $$->a = $2; }
  | expr POW expr                    { $$ = BIN(OP_POW, $1, $3, @2); }
  | postfix                          { $$ = $1; }
  ;

/* postfix = primary { "(" args ")" | "[" index "]" | "." NAME } */
postfix
  : primary                          { $$ = $1; }
  | postfix '(' args ')'             { $$ = NEW(N_CALL, @1); $$->a = $1; $$->list = $3; }
  | postfix '[' subscripts ']'       { $$ = NEW(N_INDEX, @2); $$->a = $1; $$->list = $3; }
  | postfix '.' IDENT                { $$ = NEW(N_MEMBER, @3); $$->a = $1; $$->name = $3; }
  /* keywords that are also good field names: ds.train, ds.data */
  | postfix '.' TRAIN                { $$ = NEW(N_MEMBER, @3); $$->a = $1; $$->name = "train"; }
  | postfix '.' DATA                 { $$ = NEW(N_MEMBER, @3); $$->a = $1; $$->name = "data"; }
  ;

args
  : %empty                           { $$ = (Vec){0}; }
  | args1                            { $$ = $1; }
  | args1 ','                        { $$ = $1; }
  ;

args1
  : arg                              { $$ = (Vec){0}; PUSH($$, $1); }
  | args1 ',' arg                    { $$ = $1; PUSH($$, $3); }
  ;

/* arg = expr | NAME ":" expr */
arg
  : expr                             { $$ = $1; }
  | IDENT ':' expr                   { $$ = NEW(N_KWARG, @1); $$->name = $1; $$->a = $3; }
  ;

subscripts
  : subscript                        { $$ = (Vec){0}; PUSH($$, $1); }
  | subscripts ',' subscript         { $$ = $1; PUSH($$, $3); }
  ;

/* slice = expr | [expr] ":" [expr] [":" expr] */
subscript
  : expr                             { $$ = $1; }
  | expr_opt ':' expr_opt            { $$ = NEW(N_SLICE, @2); $$->a = $1; $$->b = $3; }
  | expr_opt ':' expr_opt ':' expr_opt
                                     { $$ = NEW(N_SLICE, @2); $$->a = $1; $$->b = $3; $$->c = $5; }
  ;

expr_opt
  : %empty                           { $$ = NULL; }
  | expr                             { $$ = $1; }
  ;

exprs
  : %empty                           { $$ = (Vec){0}; }
  | exprs1                           { $$ = $1; }
  | exprs1 ','                       { $$ = $1; }
  ;

exprs1
  : expr                             { $$ = (Vec){0}; PUSH($$, $1); }
  | exprs1 ',' expr                  { $$ = $1; PUSH($$, $3); }
  ;

primary
  : INT                              { $$ = NEW(N_INT, @1); $$->ival = $1; }
  | FLOAT                            { $$ = NEW(N_FLOAT, @1); $$->fval = $1; }
  | STRING                           { $$ = NEW(N_STRING, @1); $$->str = $1; }
  | TRUE                             { $$ = NEW(N_BOOL, @1); $$->ival = 1; }
  | FALSE                            { $$ = NEW(N_BOOL, @1); $$->ival = 0; }
  | IDENT                            { $$ = NEW(N_NAME, @1); $$->name = $1; }
  | '(' expr ')'                     { $$ = $2; }
  | '(' expr ',' exprs ')'           { $$ = NEW(N_TUPLE, @$); PUSH($$->list, $2);
                                       for (int i = 0; i < $4.len; i++) PUSH($$->list, $4.items[i]); }
  | '[' exprs ']'                    { $$ = NEW(N_LIST, @$); $$->list = $2; }
  /* "seq" "{" items "}" */
  | SEQ '{' items '}'                { $$ = NEW(N_SEQ, @1); $$->list = $3; }
  ;

/* items = item { ("," | sep) item } */
items
  : isep_opt                         { $$ = (Vec){0}; }
  | isep_opt items1 isep_opt         { $$ = $2; }
  ;

items1
  : item                             { $$ = (Vec){0}; PUSH($$, $1); }
  | items1 iseps item                { $$ = $1; PUSH($$, $3); }
  ;

isep : ',' | SEP ;
iseps : isep | iseps isep ;
isep_opt : %empty | iseps ;

/* item = expr | "repeat" expr "{" items "}" | "for" NAME "in" expr "{" items "}" */
item
  : expr                             { $$ = $1; }
  | REPEAT expr '{' items '}'        { $$ = NEW(N_REPEAT, @1); $$->a = $2; $$->list = $4; }
  | FOR IDENT IN expr '{' items '}'  { $$ = NEW(N_FOR, @2); $$->name = $2; $$->a = $4; $$->list = $6; }
  ;

%%

/* "'('" -> "'('", "\"name\"" -> "name": bison's quoted aliases, unquoted. */
static const char *tok_name(yysymbol_kind_t k, char *buf, size_t n) {
  const char *s = yysymbol_name(k);
  size_t len = strlen(s);
  if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
    snprintf(buf, n, "%.*s", (int)(len - 2), s + 1);
    return buf;
  }
  if (strcmp(s, "end of file") == 0 || strcmp(s, "\"end of file\"") == 0) return "end of file";
  return s;
}

/* Is k the single-character token c? (bison names them "'c'") */
static int is_char(yysymbol_kind_t k, char c) {
  const char *s = yysymbol_name(k);
  return s[0] == '\'' && s[1] == c && s[2] == '\'' && s[3] == 0;
}

/* Binary operators and postfix openers: tokens that continue an expression. */
static int continues_expr(yysymbol_kind_t k) {
  if (k == YYSYMBOL_AND || k == YYSYMBOL_OR || k == YYSYMBOL_DOTDOT || k == YYSYMBOL_POW ||
      k == YYSYMBOL_EQ || k == YYSYMBOL_NE || k == YYSYMBOL_LE || k == YYSYMBOL_GE)
    return 1;
  for (const char *c = "<>+-*/%@[."; *c; c++)
    if (is_char(k, *c)) return 1;
  return 0;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner) {
  LexState *ls = LS;
  Loc loc = *yypcontext_location(ctx);
  yysymbol_kind_t got = yypcontext_token(ctx);
  if (got == YYSYMBOL_BADCHAR) return 0;     /* the lexer has said it */
  if (loc.src == NULL) loc = (Loc){ls->src, ls->line, ls->col, 1};
  /* after an unterminated string the rest is a consequence of it */
  if (ls->lex_error_line && (got == YYSYMBOL_YYEOF || loc.line == ls->lex_error_line)) return 0;

  enum { MAXEXP = 80 };
  yysymbol_kind_t all[MAXEXP], exp[MAXEXP];
  int nall = yypcontext_expected_tokens(ctx, all, MAXEXP), n = 0;
  /* Operators that could continue an expression are left out of the list
   * ("expected ')' or ','", not twenty operators), and the tokens that start
   * an expression are said as "an expression". */
  int expr_start = 0;
  for (int i = 0; i < nall; i++) {
    yysymbol_kind_t k = all[i];
    if (k == YYSYMBOL_INT) expr_start = 1;
    int is_op = continues_expr(k) || is_char(k, '(');
    int starts = k == YYSYMBOL_IDENT || k == YYSYMBOL_STRING || k == YYSYMBOL_INT ||
                 k == YYSYMBOL_FLOAT || k == YYSYMBOL_TRUE || k == YYSYMBOL_FALSE ||
                 k == YYSYMBOL_NOT || k == YYSYMBOL_SEQ;
    if (k == YYSYMBOL_DATA || k == YYSYMBOL_TRAIN) continue;  /* member names that are keywords */
    if (!is_op && !starts) exp[n++] = k;
  }
  if (nall > 0 && !expr_start) {
    /* no expression expected here: list the tokens as they are */
    n = 0;
    for (int i = 0; i < nall; i++) {
      if (!continues_expr(all[i]) && !is_char(all[i], '(')) exp[n++] = all[i];
    }
  }

  char found[128], b1[64];
  if (got == YYSYMBOL_YYEOF)
    snprintf(found, sizeof found, "end of file");
  else if (got == YYSYMBOL_IDENT || got == YYSYMBOL_INT || got == YYSYMBOL_FLOAT)
    snprintf(found, sizeof found, "%s '%s'", tok_name(got, b1, sizeof b1), ls->text);
  else
    snprintf(found, sizeof found, "%s", tok_name(got, b1, sizeof b1));

  char expected[400] = "";
  size_t used = 0;
  int items = n + expr_start;
  for (int i = 0; i < items && i < 6; i++) {
    char b2[64];
    const char *word = i >= n ? "an expression" : exp[i] == YYSYMBOL_IDENT ? "a name" : tok_name(exp[i], b2, sizeof b2);
    const char *sep = i == 0 ? "" : i == items - 1 ? " or " : ", ";
    int w = snprintf(expected + used, sizeof expected - used, "%s%s", sep, word);
    if (w > 0) used += (size_t)w;
    if (used >= sizeof expected) break;
  }
  bool want_name = false, want_eqeq = false;
  for (int i = 0; i < nall; i++) {
    want_name |= all[i] == YYSYMBOL_IDENT;
    want_eqeq |= all[i] == YYSYMBOL_EQ;
  }
  const char *tn = yysymbol_name(got);
  if (tn[0] == '"') tn++;
  bool got_keyword = tn[0] == '\'' && isalpha((unsigned char)tn[1]);
  if (want_name && !expr_start && !strcmp(ls->prev, "."))
    diag_error(ls->diag, loc, "expected a member name after '.', found %s", found);
  else if (want_name && !expr_start && got_keyword)
    diag_error(ls->diag, loc, "expected a name, found keyword %s", found);
  else if (items > 0 && items <= 6)
    diag_error(ls->diag, loc, "expected %s, found %s", expected, found);
  else
    diag_error(ls->diag, loc, "unexpected %s", found);
  if (want_name && !expr_start && got_keyword) {
    diag_hint(ls->diag, "%s is a keyword of the language; choose another name", found);
    return 0;
  }
  if (!strcmp(ls->prev, "def")) {
    diag_hint(ls->diag, "methods are written forward(x: [B, 4]) -> [B, 1] { ... }, without 'def' or ':'");
    return 0;
  }
  if (is_char(got, '=') && want_eqeq) {
    diag_hint(ls->diag, "compare with '=='; '=' binds a name at the start of a statement");
    return 0;
  }

  /* hints for the mistakes people make most */
  int want_close = 0, want_eq = 0;
  for (int i = 0; i < n; i++) {
    if (is_char(exp[i], ')')) want_close = ')';
    if (is_char(exp[i], ']')) want_close = ']';
    if (is_char(exp[i], '=')) want_eq = 1;
  }
  if (got == YYSYMBOL_YYEOF && ls->depth > 0)
    diag_hint(ls->diag, "a bracket or brace is still open at the end of the file");
  else if (want_close && got == YYSYMBOL_SEP)
    diag_hint(ls->diag, "is a '%c' missing at the end of the line?", want_close);
  else if (want_eq && (got == YYSYMBOL_IDENT || got == YYSYMBOL_INT))
    diag_hint(ls->diag, "a binding is written `name = value`");
  return 0;
}
