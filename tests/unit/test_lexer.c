/*
 * test_lexer.c — the tokenizer, seen through parse_source(): encodings and
 * line endings, columns, numbers, strings, and where a newline ends a
 * statement. Each test's name says the behaviour it pins down.
 */
#include "nnc_test.h"

static void bom_is_skipped_and_not_counted_as_a_column(void **state) {
  (void)state;
  Parsed *p = t_parse("\xEF\xBB\xBF" "const a = 1\n");
  assert_parsed(p);
  assert_loc(t_decl(p, 0), 1, 7);
  t_free(p);
}

static void crlf_ends_a_line(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 1\r\nconst b = 2\r\n");
  assert_parsed(p);
  assert_int_equal(p->prog->list.len, 2);
  assert_loc(t_decl(p, 1), 2, 7);
  t_free(p);
}

static void lone_cr_ends_a_line(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 1\rconst b = 2\rconst c = 3");
  assert_parsed(p);
  assert_int_equal(p->prog->list.len, 3);
  assert_loc(t_decl(p, 2), 3, 7);
  t_free(p);
}

static void crlf_error_is_reported_on_the_right_line(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 1\r\n\r\nconst b = $\r\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:3:11: error: unexpected character '$'");
  t_free(p);
}

static void tab_counts_as_one_column(void **state) {
  (void)state;
  Parsed *p = t_parse("\tconst a = 1\n\tconst b = $\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:2:12: error: unexpected character '$'");
  t_free(p);
  p = t_parse("\tconst a = 1");
  assert_loc(t_decl(p, 0), 1, 8);
  t_free(p);
}

static void chinese_in_comments_and_strings_is_accepted(void **state) {
  (void)state;
  Parsed *p = t_parse("# 第一个作业：回归\n"
                      "const title = \"新冠病例预测\"  # 注释\n"
                      "const n = 1\n");
  assert_parsed(p);
  assert_int_equal(p->prog->list.len, 2);
  Node *s = t_const(p, 0);
  assert_int_equal(s->kind, N_STRING);
  assert_string_equal(s->str, "新冠病例预测");
  assert_loc(t_decl(p, 1), 3, 7);
  t_free(p);
}

static void columns_after_chinese_count_code_points(void **state) {
  (void)state;
  /* c1..const5 s7 =9 "11 你12 好13 "14 +16 $18 */
  Parsed *p = t_parse("const s = \"你好\" + $\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:1:18: error: unexpected character '$'");
  t_free(p);
}

static void chinese_outside_strings_is_an_error(void **state) {
  (void)state;
  Parsed *p = t_parse("const 学习率 = 0.1\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:1:7: error: non-ASCII text '学习率' outside a comment or string");
  t_free(p);
}

static void bad_utf8_is_reported_at_its_line_and_column(void **state) {
  (void)state;
  const char text[] = "const a = 1\nconst b = \"x\xFF\"\n";
  Parsed *p = t_parse_n(text, sizeof text - 1, 20);
  assert_null(p->src);
  assert_diag(p, "t.nn:2:13: error: invalid UTF-8 byte 0xFF");
  t_free(p);
}

static void truncated_utf8_after_chinese_is_reported(void **state) {
  (void)state;
  /* a 3-byte sequence cut after 2 bytes, after two Chinese characters */
  const char text[] = "# 中文\n# 中文\xE4\xB8";
  Parsed *p = t_parse_n(text, sizeof text - 1, 20);
  assert_null(p->src);
  assert_diag(p, "t.nn:2:5: error: invalid UTF-8 byte 0xE4");
  t_free(p);
}

static void overlong_utf8_is_rejected(void **state) {
  (void)state;
  const char text[] = "# \xC0\xAF\n";
  Parsed *p = t_parse_n(text, sizeof text - 1, 20);
  assert_null(p->src);
  assert_diag(p, "t.nn:1:3: error: invalid UTF-8 byte 0xC0");
  t_free(p);
}

static void nul_byte_is_reported_at_its_line_and_column(void **state) {
  (void)state;
  const char text[] = "const a = 1\nco\0nst b = 2\n";
  Parsed *p = t_parse_n(text, sizeof text - 1, 20);
  assert_null(p->src);
  assert_diag(p, "t.nn:2:3: error: NUL byte in the spec file");
  t_free(p);
}

static void integer_with_underscores_is_one_number(void **state) {
  (void)state;
  Parsed *p = t_parse("const n = 100_000\nconst f = 1_000.5\n");
  assert_parsed(p);
  assert_int_equal(t_const(p, 0)->kind, N_INT);
  assert_int_equal(t_const(p, 0)->ival, 100000);
  assert_int_equal(t_const(p, 1)->kind, N_FLOAT);
  assert_true(t_const(p, 1)->fval == 1000.5);
  t_free(p);
}

static void float_forms_are_floats(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 0.5\nconst b = 1e-5\nconst c = 3.\nconst d = .5\nconst e = 2E+3\n");
  assert_parsed(p);
  const double want[] = {0.5, 1e-5, 3.0, 0.5, 2000.0};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(t_const(p, i)->kind, N_FLOAT);
    assert_true(t_const(p, i)->fval == want[i]);
  }
  t_free(p);
}

static void integer_too_large_is_an_error(void **state) {
  (void)state;
  Parsed *p = t_parse("const n = 99999999999999999999\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:1:11: error: integer literal '99999999999999999999' is too large");
  t_free(p);
}

static void largest_int64_is_accepted(void **state) {
  (void)state;
  Parsed *p = t_parse("const n = 9223372036854775807\n");
  assert_parsed(p);
  assert_true(t_const(p, 0)->ival == INT64_MAX);
  t_free(p);
}

static void int_dotdot_int_is_a_range_of_ints(void **state) {
  (void)state;
  Parsed *p = t_parse("const r = 1..5\nconst s = 0 .. n\nconst t = 1_0..2_0\n");
  assert_parsed(p);
  Node *r = t_const(p, 0);
  assert_int_equal(r->kind, N_RANGE);
  assert_int_equal(r->a->kind, N_INT);
  assert_int_equal(r->a->ival, 1);
  assert_int_equal(r->b->kind, N_INT);
  assert_int_equal(r->b->ival, 5);
  assert_int_equal(t_const(p, 1)->kind, N_RANGE);
  assert_int_equal(t_const(p, 1)->b->kind, N_NAME);
  assert_int_equal(t_const(p, 2)->a->ival, 10);
  assert_int_equal(t_const(p, 2)->b->ival, 20);
  t_free(p);
}

static void string_escapes_are_decoded(void **state) {
  (void)state;
  Parsed *p = t_parse("const s = \"a\\\"b\\\\c\\nd\\te\"\n");
  assert_parsed(p);
  assert_string_equal(t_const(p, 0)->str, "a\"b\\c\nd\te");
  t_free(p);
}

static void unknown_escape_points_at_the_backslash(void **state) {
  (void)state;
  Parsed *p = t_parse("const s = \"data\\hw1.csv\"\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:1:16: error: unknown escape '\\h' in a string");
  t_free(p);
}

static void unterminated_string_is_an_error_at_its_start(void **state) {
  (void)state;
  Parsed *p = t_parse("const s = \"abc\nconst t = 1\n");
  assert_null(p->prog);
  assert_diag(p, "t.nn:1:11: error: unterminated string");
  t_free(p);
}

static void newline_after_an_operator_continues_the_line(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 1 +\n  2 *\n  3\nconst b =\n  4\n");
  assert_parsed(p);
  assert_int_equal(p->prog->list.len, 2);
  assert_int_equal(t_const(p, 0)->kind, N_BINARY);
  assert_int_equal(t_const(p, 1)->ival, 4);
  t_free(p);
}

static void newline_after_a_comma_continues_the_line(void **state) {
  (void)state;
  Parsed *p = t_parse("train {\n  a,\n  b = f(x)\n}\n");
  assert_parsed(p);
  Node *assign = t_decl(p, 0)->list.items[0];
  assert_int_equal(assign->kind, N_ASSIGN);
  assert_int_equal(assign->list.len, 2);
  t_free(p);
}

static void newline_inside_brackets_is_space(void **state) {
  (void)state;
  Parsed *p = t_parse("const l = [1\n, 2\n]\nconst s = (1\n+ 2)\nconst c = f(a\n, b)\n");
  assert_parsed(p);
  assert_int_equal(p->prog->list.len, 3);
  assert_int_equal(t_const(p, 0)->kind, N_LIST);
  assert_int_equal(t_const(p, 0)->list.len, 2);
  assert_int_equal(t_const(p, 1)->kind, N_BINARY);
  assert_int_equal(t_const(p, 2)->list.len, 2);
  t_free(p);
}

static void newline_inside_braces_ends_a_statement(void **state) {
  (void)state;
  Parsed *p = t_parse("train {\n  a = 1\n  b = 2\n}\n");
  assert_parsed(p);
  assert_int_equal(t_decl(p, 0)->list.len, 2);
  t_free(p);
}

static void semicolon_ends_a_statement(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 1; const b = 2\n");
  assert_parsed(p);
  assert_int_equal(p->prog->list.len, 2);
  t_free(p);
}

static void comment_at_end_of_file_without_newline(void **state) {
  (void)state;
  Parsed *p = t_parse("const a = 1 # 结束");
  assert_parsed(p);
  assert_int_equal(p->prog->list.len, 1);
  t_free(p);
}

static void empty_and_blank_files_parse_to_empty_programs(void **state) {
  (void)state;
  const char *texts[] = {"", "\n\n", "# only a comment\n", "\xEF\xBB\xBF", "\r\n\r", ";;"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    Parsed *p = t_parse(texts[i]);
    assert_parsed(p);
    assert_int_equal(p->prog->list.len, 0);
    t_free(p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bom_is_skipped_and_not_counted_as_a_column),
      cmocka_unit_test(crlf_ends_a_line),
      cmocka_unit_test(lone_cr_ends_a_line),
      cmocka_unit_test(crlf_error_is_reported_on_the_right_line),
      cmocka_unit_test(tab_counts_as_one_column),
      cmocka_unit_test(chinese_in_comments_and_strings_is_accepted),
      cmocka_unit_test(columns_after_chinese_count_code_points),
      cmocka_unit_test(chinese_outside_strings_is_an_error),
      cmocka_unit_test(bad_utf8_is_reported_at_its_line_and_column),
      cmocka_unit_test(truncated_utf8_after_chinese_is_reported),
      cmocka_unit_test(overlong_utf8_is_rejected),
      cmocka_unit_test(nul_byte_is_reported_at_its_line_and_column),
      cmocka_unit_test(integer_with_underscores_is_one_number),
      cmocka_unit_test(float_forms_are_floats),
      cmocka_unit_test(integer_too_large_is_an_error),
      cmocka_unit_test(largest_int64_is_accepted),
      cmocka_unit_test(int_dotdot_int_is_a_range_of_ints),
      cmocka_unit_test(string_escapes_are_decoded),
      cmocka_unit_test(unknown_escape_points_at_the_backslash),
      cmocka_unit_test(unterminated_string_is_an_error_at_its_start),
      cmocka_unit_test(newline_after_an_operator_continues_the_line),
      cmocka_unit_test(newline_after_a_comma_continues_the_line),
      cmocka_unit_test(newline_inside_brackets_is_space),
      cmocka_unit_test(newline_inside_braces_ends_a_statement),
      cmocka_unit_test(semicolon_ends_a_statement),
      cmocka_unit_test(comment_at_end_of_file_without_newline),
      cmocka_unit_test(empty_and_blank_files_parse_to_empty_programs),
  };
  return cmocka_run_group_tests_name("lexer", tests, NULL, NULL);
}
