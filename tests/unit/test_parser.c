/*
 * test_parser.c — the grammar through parse_source(): operator precedence
 * and associativity, the shapes of declarations, and error recovery
 * (several errors reported in one run, each at its own line); and
 * closest_name, which picks the names that "did you mean" offers.
 */
#include "nnc_test.h"

static void assert_binary(const Node *n, OpKind op) {
  assert_int_equal(n->kind, N_BINARY);
  if (n->op != op) fail_msg("operator %s, expected %s", ast_op_text(n->op), ast_op_text(op));
}

static void assert_name(const Node *n, const char *name) {
  assert_int_equal(n->kind, N_NAME);
  assert_string_equal(n->name, name);
}

static void unary_minus_binds_looser_than_power(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = -x ** 2\n");
  assert_parsed(p);
  Node *e = t_const(p, 0);
  assert_int_equal(e->kind, N_UNARY);
  assert_int_equal(e->op, OP_NEG);
  assert_binary(e->a, OP_POW);
  assert_name(e->a->a, "x");
  t_free(p);
}

static void mul_binds_tighter_than_add(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = a + b * c\nconst b = a * b + c\n");
  assert_parsed(p);
  Node *e = t_const(p, 0);
  assert_binary(e, OP_ADD);
  assert_name(e->a, "a");
  assert_binary(e->b, OP_MUL);
  e = t_const(p, 1);
  assert_binary(e, OP_ADD);
  assert_binary(e->a, OP_MUL);
  t_free(p);
}

static void matmul_binds_like_mul(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = x @ w + b\n");
  assert_parsed(p);
  assert_binary(t_const(p, 0), OP_ADD);
  assert_binary(t_const(p, 0)->a, OP_MATMUL);
  t_free(p);
}

static void power_is_right_associative(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 2 ** 3 ** 2\n");
  assert_parsed(p);
  Node *e = t_const(p, 0);
  assert_binary(e, OP_POW);
  assert_int_equal(e->a->kind, N_INT);
  assert_binary(e->b, OP_POW);
  t_free(p);
}

static void minus_is_left_associative(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = a - b - c\n");
  assert_parsed(p);
  Node *e = t_const(p, 0);
  assert_binary(e, OP_SUB);
  assert_binary(e->a, OP_SUB);
  assert_name(e->b, "c");
  t_free(p);
}

static void not_and_or_nest_by_precedence(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = x or y and not z\nconst b = not a == b\n");
  assert_parsed(p);
  Node *e = t_const(p, 0);
  assert_binary(e, OP_OR);
  assert_binary(e->b, OP_AND);
  assert_int_equal(e->b->b->kind, N_UNARY);
  assert_int_equal(e->b->b->op, OP_NOT);
  e = t_const(p, 1);
  assert_int_equal(e->kind, N_UNARY);
  assert_binary(e->a, OP_EQ);
  t_free(p);
}

static void range_binds_looser_than_arithmetic(void **state) {
  (void)state;
  Parsed *p = t_parse("const r = 1..n + 1\n");
  assert_parsed(p);
  Node *e = t_const(p, 0);
  assert_int_equal(e->kind, N_RANGE);
  assert_binary(e->b, OP_ADD);
  t_free(p);
}

static void postfix_chains_left_to_right(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = net.fc1(x)[0, 1:]\n");
  assert_parsed(p);
  Node *e = t_const(p, 0);
  assert_int_equal(e->kind, N_INDEX);
  assert_int_equal(e->list.len, 2);
  assert_int_equal(((Node *)e->list.items[1])->kind, N_SLICE);
  assert_int_equal(e->a->kind, N_CALL);
  assert_int_equal(e->a->a->kind, N_MEMBER);
  assert_string_equal(e->a->a->name, "fc1");
  t_free(p);
}

static void parenthesis_groups_and_trailing_comma_makes_a_tuple(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = (1)\nconst b = (1,)\nconst c = (0.9, 0.999)\n");
  assert_parsed(p);
  assert_int_equal(t_const(p, 0)->kind, N_INT);
  assert_int_equal(t_const(p, 1)->kind, N_TUPLE);
  assert_int_equal(t_const(p, 1)->list.len, 1);
  assert_int_equal(t_const(p, 2)->list.len, 2);
  t_free(p);
}

static void keyword_arguments_are_kwargs(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = Conv2d(1, 64, 3, padding: 1)\n");
  assert_parsed(p);
  Node *call = t_const(p, 0);
  assert_int_equal(call->kind, N_CALL);
  assert_int_equal(call->list.len, 4);
  Node *kw = call->list.items[3];
  assert_int_equal(kw->kind, N_KWARG);
  assert_string_equal(kw->name, "padding");
  t_free(p);
}

static void model_has_params_layers_and_a_forward_method(void **state) {
  (void)state;
  Parsed *p = t_parse("model Net(d: int) {\n"
                      "  fc = Linear(d, 1)\n"
                      "  forward(x: [B, d]) -> [B, 1] {\n"
                      "    return fc(x)\n"
                      "  }\n"
                      "}\n");
  assert_parsed(p);
  Node *m = t_decl(p, 0);
  assert_int_equal(m->kind, N_MODEL);
  assert_string_equal(m->name, "Net");
  assert_int_equal(m->list.len, 1);
  assert_int_equal(m->list2.len, 2);
  Node *fwd = m->list2.items[1];
  assert_int_equal(fwd->kind, N_METHOD);
  assert_non_null(fwd->a);
  assert_int_equal(fwd->a->kind, N_TYPE);
  assert_int_equal(fwd->list2.len, 1);
  assert_loc(fwd, 3, 3);
  t_free(p);
}

static void seq_items_split_on_commas_and_newlines(void **state) {
  (void)state;
  Parsed *p = t_parse("block B(c) = seq {\n  Conv2d(c, c, 3), ReLU\n  repeat 2 { Linear(c, c) }\n}\n");
  assert_parsed(p);
  Node *s = t_decl(p, 0)->a;
  assert_int_equal(s->kind, N_SEQ);
  assert_int_equal(s->list.len, 3);
  assert_int_equal(((Node *)s->list.items[2])->kind, N_REPEAT);
  t_free(p);
}

static void several_errors_are_all_reported(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 1 +* 2\n"
                      "const b = 2\n"
                      "const = 3\n"
                      "const d = 4\n"
                      "const e = f(1,, 2)\n");
  assert_null(p->prog);
  assert_int_equal(p->diag.nerrors, 3);
  assert_diag(p, "t.nn:1:14:");
  assert_diag(p, "t.nn:3:7:");
  assert_diag(p, "t.nn:5:15:");
  t_free(p);
}

static void errors_inside_a_body_recover_at_the_next_statement(void **state) {
  (void)state;
  Parsed *p = t_parse("train {\n"
                      "  a = = 1\n"
                      "  b = 2\n"
                      "  c = f(]\n"
                      "}\n"
                      "const ok = 1\n"
                      "const bad = )\n");
  assert_null(p->prog);
  assert_int_equal(p->diag.nerrors, 3);
  assert_diag(p, "t.nn:2:7:");
  assert_diag(p, "t.nn:4:9:");
  assert_diag(p, "t.nn:7:13:");
  t_free(p);
}

static void missing_close_paren_before_a_declaration_is_reported_on_its_line(void **state) {
  (void)state;
  /* inside ( ) a newline is space, but a declaration keyword at the start
   * of the next line means the bracket was never closed: the error is at the
   * end of the line that left it open, and the next declaration is parsed */
  Parsed *p = t_parse("const a = f(1, 2\nconst b = 1 +* 2\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:1:17: error: expected ')' or ',', found end of line");
  assert_diag(p, "is a ')' missing at the end of the line?");
  assert_diag(p, "t.nn:2:14: error: expected an expression, found '*'");
  assert_int_equal(p->diag.nerrors, 2);
  t_free(p);
}

static void missing_close_paren_at_end_of_line_gets_a_hint(void **state) {
  (void)state;
  Parsed *p = t_parse("train {\n  a = f(1]\n}\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:2:10:");
  t_free(p);
}

static void unclosed_brace_is_reported_at_end_of_file(void **state) {
  (void)state;
  Parsed *p = t_parse("train {\n  a = 1\n");
  assert_null(p->prog);
  assert_diag(p, "end of file");
  assert_diag(p, "still open");
  t_free(p);
}

static void max_errors_stops_the_report(void **state) {
  (void)state;
  Parsed *p = t_parse_n("const a = $\nconst b = $\nconst c = $\nconst d = $\n", 48, 2);
  assert_null(p->prog);
  assert_diag(p, "too many errors (2)");
  assert_null(strstr(p->text, "t.nn:3:"));
  t_free(p);
}

static void deep_nesting_is_an_error_not_a_crash(void **state) {
  (void)state;
  enum { DEPTH = 20000 };
  char *text = malloc(2 * DEPTH + 16);
  assert_non_null(text);
  size_t n = (size_t)sprintf(text, "const a = ");
  for (int i = 0; i < DEPTH; i++) text[n++] = '(';
  text[n++] = '1';
  for (int i = 0; i < DEPTH; i++) text[n++] = ')';
  Parsed *p = t_parse_n(text, n, 20);
  assert_null(p->prog);
  assert_true(p->diag.nerrors > 0);
  t_free(p);
  free(text);
}

static void ast_print_of_a_deep_tree_is_bounded(void **state) {
  (void)state;
  enum { DEPTH = 3000 };
  char *text = malloc(4 * DEPTH + 16);
  assert_non_null(text);
  size_t n = (size_t)sprintf(text, "const a = 1");
  for (int i = 0; i < DEPTH; i++) n += (size_t)sprintf(text + n, " + 1");
  Parsed *p = t_parse_n(text, n, 20);
  assert_parsed(p);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ast_print(f, p->prog);
  fclose(f);
  assert_non_null(strstr(buf, "..."));
  free(buf);
  t_free(p);
  free(text);
}

/* closest_name(name, cands, n) is `want` (NULL: nothing offered). */
static void assert_offers(const char *name, const char *const *cands, int n, const char *want) {
  const char *got = closest_name(name, cands, n);
  if (!(got == want || (got && want && !strcmp(got, want))))
    fail_msg("closest_name(\"%s\") offers %s, expected %s", name, got ? got : "nothing", want ? want : "nothing");
}

/* A name is offered up to a distance that grows with the name's length
 * (1 edit for 2-3 letters, 2 for 4-6, 3 for more), however far the
 * lengths alone put it; among equally close names, the one that also
 * matches in case; a transposition is one edit. */
static void closest_name_reaches_its_limit_and_no_further(void **state) {
  (void)state;
  const char *far[] = {"abcdefgxyzw", "abcdefgxyz"};   /* 4 insertions from "abcdefg", and 3 */
  assert_offers("abcdefg", far, 2, "abcdefgxyz");
  assert_offers("abcdefg", far, 1, NULL);
  const char *shorter[] = {"abcd"};   /* 3 deletions from a name of 7, 4 from one of 8 */
  assert_offers("abcdefg", shorter, 1, "abcd");
  assert_offers("abcdefgh", shorter, 1, NULL);
  const char *soft[] = {"Softmax", "softmax", "sigmoid"};
  assert_offers("sofmax", soft, 3, "softmax");
  assert_offers("SOFMAX", soft, 2, "Softmax");
  const char *csv[] = {"csv", "tsv"};
  assert_offers("cvs", csv, 2, "csv");
  assert_offers("x", csv, 2, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unary_minus_binds_looser_than_power),
      cmocka_unit_test(mul_binds_tighter_than_add),
      cmocka_unit_test(matmul_binds_like_mul),
      cmocka_unit_test(power_is_right_associative),
      cmocka_unit_test(minus_is_left_associative),
      cmocka_unit_test(not_and_or_nest_by_precedence),
      cmocka_unit_test(range_binds_looser_than_arithmetic),
      cmocka_unit_test(postfix_chains_left_to_right),
      cmocka_unit_test(parenthesis_groups_and_trailing_comma_makes_a_tuple),
      cmocka_unit_test(keyword_arguments_are_kwargs),
      cmocka_unit_test(model_has_params_layers_and_a_forward_method),
      cmocka_unit_test(seq_items_split_on_commas_and_newlines),
      cmocka_unit_test(several_errors_are_all_reported),
      cmocka_unit_test(errors_inside_a_body_recover_at_the_next_statement),
      cmocka_unit_test(missing_close_paren_before_a_declaration_is_reported_on_its_line),
      cmocka_unit_test(missing_close_paren_at_end_of_line_gets_a_hint),
      cmocka_unit_test(unclosed_brace_is_reported_at_end_of_file),
      cmocka_unit_test(max_errors_stops_the_report),
      cmocka_unit_test(deep_nesting_is_an_error_not_a_crash),
      cmocka_unit_test(ast_print_of_a_deep_tree_is_bounded),
      cmocka_unit_test(closest_name_reaches_its_limit_and_no_further),
  };
  return cmocka_run_group_tests_name("parser", tests, NULL, NULL);
}
