/*
 * test_shapes.c — the shape rules of the checker through the public path:
 * a spec is parsed (source_from_text + parse_source) and checked
 * (sema_check, without opening data files); the diagnostics go to a
 * tmpfile, and on success the `nnc check` summary is printed to another.
 *
 * Layer output shapes and parameter counts are read from the summary's
 * layer table. Shapes of expressions (broadcasting, matmul, reshape,
 * flatten) are read with a probe: the expression is fed to a
 * `Linear(999, 1)`, whose error message names the shape it got.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compiler/compiler.h"
#include "lang/lang.h"

typedef struct {
  char *diag;     /* everything the checker reported */
  char *summary;  /* the summary, or NULL if the check failed */
  int nerrors;
} Checked;

static char *slurp(FILE *f) {
  fflush(f);
  long n = ftell(f);
  assert_true(n >= 0);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  rewind(f);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = 0;
  return buf;
}

/* Parses and checks `text` as the spec "t.nn". */
static Checked check(const char *text) {
  Checked c = {0};
  Arena *a = arena_new();
  FILE *df = tmpfile();
  assert_non_null(df);
  Diag d;
  diag_init(&d, df, 20);
  Source *src = source_from_text(a, &d, "t.nn", text, strlen(text));
  Node *prog = src ? parse_source(a, &d, src) : NULL;
  if (!prog) fail_msg("the spec does not parse:\n%s", slurp(df));
  SemaOptions opt = {.check_files = 0};
  Program *p = sema_check(a, &d, prog, &opt);
  c.nerrors = d.nerrors;
  if (p) {
    FILE *sf = tmpfile();
    assert_non_null(sf);
    summary_print(sf, p);
    c.summary = slurp(sf);
    fclose(sf);
  }
  c.diag = slurp(df);
  fclose(df);
  arena_free(a);
  return c;
}

static void checked_free(Checked *c) {
  free(c->diag);
  free(c->summary);
}

#define assert_ok(c)                                                           \
  do {                                                                         \
    if (!(c).summary) fail_msg("the check failed:\n%s", (c).diag);             \
  } while (0)

/* The check fails and the diagnostics contain `needle`. */
#define assert_error(c, needle)                                                \
  do {                                                                         \
    if ((c).summary) fail_msg("the check passed, expected \"%s\"", (needle));  \
    if (!strstr((c).diag, (needle)))                                           \
      fail_msg("diagnostics lack \"%s\"; they were:\n%s", (needle), (c).diag); \
  } while (0)

/* The cells of the summary row of layer `name` (split at runs of 2+ spaces):
 * layer, type, output, params, FLOPs/sample. */
typedef struct {
  char cell[5][128];
} Row;

static Row find_row(const Checked *c, const char *name) {
  Row r;
  memset(&r, 0, sizeof r);
  if (!c->summary) fail_msg("no summary:\n%s", c->diag);
  const char *line = c->summary;
  size_t nlen = strlen(name);
  while (line && *line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len > nlen + 4 && !strncmp(line, "  ", 2) && !strncmp(line + 2, name, nlen) && line[2 + nlen] == ' ') {
      const char *p = line + 2, *e = line + len;
      for (int k = 0; k < 5 && p < e; k++) {
        while (p < e && *p == ' ') p++;
        const char *q = p;
        while (q < e && !(q[0] == ' ' && q + 1 < e && q[1] == ' ')) q++;
        size_t w = (size_t)(q - p);
        if (w >= sizeof r.cell[k]) w = sizeof r.cell[k] - 1;
        memcpy(r.cell[k], p, w);
        p = q;
      }
      return r;
    }
    line = end ? end + 1 : NULL;
  }
  fail_msg("no row '%s' in the summary:\n%s", name, c->summary);
  return r;
}

/* Asserts the output shape, parameter count and FLOPs of layer `name`. */
static void assert_row(const Checked *c, const char *name, const char *out, const char *params, const char *flops) {
  Row r = find_row(c, name);
  if (strcmp(r.cell[2], out) || strcmp(r.cell[3], params) || (flops && strcmp(r.cell[4], flops)))
    fail_msg("layer %s: got output %s, params %s, FLOPs %s; expected %s, %s, %s\n%s", name, r.cell[2], r.cell[3],
             r.cell[4], out, params, flops ? flops : "(any)", c->summary);
}

/* A one-layer model: `decl` built as member `l`, called on x of type `in`. */
static Checked one_layer(const char *decl, const char *in) {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "model M {\n"
           "  l = %s\n"
           "  forward(x: %s) -> [B, _, _, _] {\n"
           "    return l(x)\n"
           "  }\n"
           "}\n",
           decl, in);
  return check(buf);
}

static Checked one_layer_any(const char *decl, const char *in, const char *out_type) {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "model M {\n"
           "  l = %s\n"
           "  forward(x: %s) -> %s {\n"
           "    return l(x)\n"
           "  }\n"
           "}\n",
           decl, in, out_type);
  return check(buf);
}

/* The shape of `expr` over the inputs `params` (a method's parameter list),
 * as the checker prints it, e.g. "[B, 3, 4]" or "int[B]". Fails the test
 * with the diagnostics if the expression itself is an error. */
static char *probe(const char *params, const char *expr) {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "model P {\n"
           "  probe = Linear(999, 1)\n"
           "  forward(%s) -> [B, 1] {\n"
           "    return probe(%s)\n"
           "  }\n"
           "}\n",
           params, expr);
  Checked c = check(buf);
  const char *k1 = strstr(c.diag, "Linear(999, 1) expects [..., 999], got ");
  const char *k2 = strstr(c.diag, "Linear(999, 1) expects float values, got ");
  const char *k = k1 ? k1 + strlen("Linear(999, 1) expects [..., 999], got ")
                 : k2 ? k2 + strlen("Linear(999, 1) expects float values, got ") : NULL;
  if (!k) fail_msg("probe of %s: the expression failed:\n%s", expr, c.diag);
  const char *e = strchr(k, '\n');
  size_t n = e ? (size_t)(e - k) : strlen(k);
  char *r = malloc(n + 1);
  assert_non_null(r);
  memcpy(r, k, n);
  r[n] = 0;
  checked_free(&c);
  return r;
}

#define assert_probe(params, expr, want)                                       \
  do {                                                                         \
    char *got_ = probe((params), (expr));                                      \
    if (strcmp(got_, (want)))                                                  \
      fail_msg("%s over (%s): got %s, expected %s", (expr), (params), got_,    \
               (want));                                                        \
    free(got_);                                                                \
  } while (0)

/* The expression over `params` is an error whose text contains `needle`. */
static void assert_expr_error(const char *params, const char *expr, const char *needle) {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "model P {\n"
           "  probe = Linear(999, 1)\n"
           "  forward(%s) -> [B, 1] {\n"
           "    return probe(%s)\n"
           "  }\n"
           "}\n",
           params, expr);
  Checked c = check(buf);
  assert_error(c, needle);
  if (strstr(c.diag, "Linear(999, 1) expects")) fail_msg("%s was not an error itself:\n%s", expr, c.diag);
  checked_free(&c);
}

/* ---- Linear ------------------------------------------------------------- */

static void linear_maps_the_last_dim_and_counts_weights_and_bias(void **state) {
  (void)state;
  Checked c = one_layer_any("Linear(20, 64)", "[B, 20]", "[B, 64]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 64]", "1,344", "2,560");  /* 20·64 + 64; 2·20·64 */
  checked_free(&c);
}

static void linear_without_bias_has_no_bias_parameters(void **state) {
  (void)state;
  Checked c = one_layer_any("Linear(20, 64, bias: false)", "[B, 20]", "[B, 64]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 64]", "1,280", "2,560");
  checked_free(&c);
}

static void linear_keeps_leading_dims(void **state) {
  (void)state;
  Checked c = one_layer_any("Linear(16, 4)", "[B, 10, 16]", "[B, 10, 4]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 10, 4]", "68", "1,280");  /* 10 rows of 2·16·4 */
  checked_free(&c);
}

static void linear_rejects_the_wrong_in_features(void **state) {
  (void)state;
  Checked c = one_layer_any("Linear(32, 2)", "[B, 16]", "[B, 2]");
  assert_error(c, "Linear(32, 2) expects [..., 32], got [B, 16]");
  checked_free(&c);
}

static void linear_on_images_hints_flatten(void **state) {
  (void)state;
  Checked c = one_layer_any("Linear(784, 10)", "[B, 1, 28, 28]", "[B, 10]");
  assert_error(c, "flatten(x) turns [B, 1, 28, 28] into [B, 784]");
  checked_free(&c);
}

/* ---- Conv2d ------------------------------------------------------------- */

static void conv2d_valid_convolution_shrinks_by_kernel_minus_one(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(1, 8, 3)", "[B, 1, 28, 28]");
  assert_ok(c);
  /* 8·1·3·3 + 8; 2·1·9·8·26·26 */
  assert_row(&c, "l", "[B, 8, 26, 26]", "80", "97,344");
  checked_free(&c);
}

static void conv2d_stride_and_padding(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(3, 16, 5, stride: 2, padding: 2)", "[B, 3, 32, 32]");
  assert_ok(c);
  /* (32 + 4 - 5) / 2 + 1 = 16; 16·3·25 + 16 = 1216 */
  assert_row(&c, "l", "[B, 16, 16, 16]", "1,216", NULL);
  checked_free(&c);
}

static void conv2d_odd_size_with_stride_rounds_down(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(3, 4, 3, stride: 2)", "[B, 3, 15, 16]");
  assert_ok(c);
  /* (15 - 3) / 2 + 1 = 7, (16 - 3) / 2 + 1 = 7 */
  assert_row(&c, "l", "[B, 4, 7, 7]", "112", NULL);
  checked_free(&c);
}

static void conv2d_dilation_widens_the_kernel(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(1, 4, 3, dilation: 2)", "[B, 1, 28, 28]");
  assert_ok(c);
  /* the kernel spans 5: 28 - 4 = 24 */
  assert_row(&c, "l", "[B, 4, 24, 24]", "40", NULL);
  checked_free(&c);
}

static void conv2d_groups_divide_the_weights(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(8, 16, 3, padding: 1, groups: 8)", "[B, 8, 10, 10]");
  assert_ok(c);
  /* 16·(8/8)·9 + 16 */
  assert_row(&c, "l", "[B, 16, 10, 10]", "160", NULL);
  checked_free(&c);
}

static void conv2d_without_bias(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(3, 64, 3, padding: 1, bias: false)", "[B, 3, 32, 32]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 64, 32, 32]", "1,728", NULL);
  checked_free(&c);
}

static void conv2d_rejects_the_wrong_channels(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(3, 8, 3)", "[B, 1, 28, 28]");
  assert_error(c, "expects 3 input channels [B, 3, H, W], got [B, 1, 28, 28]");
  checked_free(&c);
}

static void conv2d_rejects_an_image_smaller_than_the_kernel(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(1, 8, 5)", "[B, 1, 4, 4]");
  assert_error(c, "an input of size 4 is smaller than the kernel (5) after padding 0");
  checked_free(&c);
}

static void conv2d_rejects_groups_that_do_not_divide(void **state) {
  (void)state;
  Checked c = one_layer("Conv2d(6, 8, 3, groups: 4)", "[B, 6, 8, 8]");
  assert_error(c, "groups=4 must divide in_channels 6 and out_channels 8");
  checked_free(&c);
}

/* ---- ConvTranspose2d ------------------------------------------------------ */

static void conv_transpose_doubles_with_stride_two(void **state) {
  (void)state;
  Checked c = one_layer("ConvTranspose2d(16, 8, 4, stride: 2, padding: 1)", "[B, 16, 7, 7]");
  assert_ok(c);
  /* (7 - 1)·2 - 2 + 4 = 14; weights [16, 8, 4, 4] + 8; 2·16·16·8 per input pixel */
  assert_row(&c, "l", "[B, 8, 14, 14]", "2,056", "200,704");
  checked_free(&c);
}

static void conv_transpose_output_padding(void **state) {
  (void)state;
  Checked c = one_layer("ConvTranspose2d(4, 2, 3, stride: 2, padding: 1, output_padding: 1)", "[B, 4, 7, 7]");
  assert_ok(c);
  /* (7 - 1)·2 - 2 + 3 + 1 = 14; 4·2·9 + 2 */
  assert_row(&c, "l", "[B, 2, 14, 14]", "74", NULL);
  checked_free(&c);
}

static void conv_transpose_stride_one_grows_by_kernel_minus_one(void **state) {
  (void)state;
  Checked c = one_layer("ConvTranspose2d(1, 1, 3, bias: false)", "[B, 1, 5, 5]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 1, 7, 7]", "9", NULL);
  checked_free(&c);
}

/* ---- pooling ---------------------------------------------------------- */

static void maxpool_stride_defaults_to_kernel(void **state) {
  (void)state;
  Checked c = one_layer("MaxPool2d(2)", "[B, 8, 28, 28]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 8, 14, 14]", "0", NULL);
  checked_free(&c);
}

static void maxpool_of_an_odd_size_rounds_down(void **state) {
  (void)state;
  Checked c = one_layer("MaxPool2d(2)", "[B, 8, 7, 7]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 8, 3, 3]", "0", NULL);
  checked_free(&c);
}

static void maxpool_overlapping_with_stride(void **state) {
  (void)state;
  Checked c = one_layer("MaxPool2d(3, stride: 2)", "[B, 8, 28, 28]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 8, 13, 13]", "0", NULL);
  checked_free(&c);
}

static void maxpool_with_padding(void **state) {
  (void)state;
  Checked c = one_layer("MaxPool2d(3, stride: 2, padding: 1)", "[B, 8, 28, 28]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 8, 14, 14]", "0", NULL);
  checked_free(&c);
}

static void pooling_too_often_is_an_error(void **state) {
  (void)state;
  Checked c = check(
      "model M {\n"
      "  f = seq { MaxPool2d(2), MaxPool2d(2), MaxPool2d(2) }\n"
      "  forward(x: [B, 1, 4, 4]) -> [B, 1, 1, 1] {\n"
      "    return f(x)\n"
      "  }\n"
      "}\n");
  assert_error(c, "MaxPool2d(2): an input of size 1 is smaller than the kernel (2)");
  checked_free(&c);
}

static void a_cnn_adds_up_its_parameters(void **state) {
  (void)state;
  Checked c = check(
      "model CNN {\n"
      "  c1 = Conv2d(1, 8, 3, padding: 1)\n"
      "  c2 = Conv2d(8, 16, 3)\n"
      "  fc = Linear(16 * 6 * 6, 10)\n"
      "  forward(x: [B, 1, 28, 28]) -> [B, 10] {\n"
      "    h = max_pool(relu(c1(x)))\n"
      "    return fc(flatten(h))\n"
      "  }\n"
      "}\n");
  /* no function max_pool: an error, not a crash */
  assert_error(c, "unknown name 'max_pool'");
  checked_free(&c);

  c = check(
      "model CNN {\n"
      "  c1 = Conv2d(1, 8, 3, padding: 1)\n"
      "  p = MaxPool2d(2)\n"
      "  c2 = Conv2d(8, 16, 3)\n"
      "  fc = Linear(16 * 6 * 6, 10)\n"
      "  forward(x: [B, 1, 28, 28]) -> [B, 10] {\n"
      "    h = p(relu(c2(p(relu(c1(x))))))\n"
      "    return fc(flatten(h))\n"
      "  }\n"
      "}\n");
  assert_ok(c);
  assert_row(&c, "c1", "[B, 8, 28, 28]", "80", NULL);
  assert_row(&c, "c2", "[B, 16, 12, 12]", "1,168", NULL);
  assert_row(&c, "fc", "[B, 10]", "5,770", NULL);
  /* 80 + 1,168 + 5,770 */
  if (!strstr(c.summary, "7,018 trainable parameters")) fail_msg("wrong total:\n%s", c.summary);
  checked_free(&c);
}

/* ---- broadcasting --------------------------------------------------------- */

static void broadcasting_matches_from_the_last_dim(void **state) {
  (void)state;
  assert_probe("x: [B, 4], b: [4]", "x + b", "[B, 4]");
  assert_probe("x: [B, 1, 4], y: [3, 1]", "x * y", "[B, 3, 4]");
  assert_probe("x: [B, 4]", "x * 2.0 + 1", "[B, 4]");
  assert_probe("x: [B, 5, 1], y: [B, 1, 7]", "x - y", "[B, 5, 7]");
}

static void broadcasting_of_unequal_sizes_is_an_error(void **state) {
  (void)state;
  assert_expr_error("x: [B, 4], y: [3]", "x + y", "'+' of [B, 4] and [3]: the shapes do not broadcast");
  assert_expr_error("x: [B, 4], y: [B, 3]", "x * y", "the shapes do not broadcast");
}

static void comparisons_give_bool(void **state) {
  (void)state;
  assert_probe("x: [B, 4]", "x > 0", "bool[B, 4]");
}

/* ---- matmul --------------------------------------------------------------- */

static void matmul_of_matrices_and_batches(void **state) {
  (void)state;
  assert_probe("x: [B, 10, 64], w: [64, 32]", "x @ w", "[B, 10, 32]");
  assert_probe("q: [B, 8, 10, 64], k: [B, 8, 64, 12]", "q @ k", "[B, 8, 10, 12]");
  assert_probe("x: [B, 1, 3, 4], y: [5, 4, 6]", "x @ y", "[B, 5, 3, 6]");
}

static void matmul_with_vectors_drops_a_dim(void **state) {
  (void)state;
  assert_probe("x: [B, 10, 4], v: [4]", "x @ v", "[B, 10]");
  assert_probe("v: [3], w: [3, 5]", "v @ w", "[5]");
}

static void matmul_inner_sizes_must_agree(void **state) {
  (void)state;
  assert_expr_error("x: [B, 4], w: [3, 5]", "x @ w", "the inner sizes 4 and 3 differ");
  assert_expr_error("q: [B, 10, 64], k: [B, 12, 64]", "q @ k", "transpose the right side");
}

/* ---- reshape and flatten --------------------------------------------------- */

static void reshape_infers_minus_one(void **state) {
  (void)state;
  assert_probe("x: [B, 784]", "reshape(x, [B, -1, 28])", "[B, 28, 28]");
  assert_probe("x: [B, 784]", "reshape(x, [B, 1, 28, 28])", "[B, 1, 28, 28]");
  assert_probe("x: [B, 6, 4]", "reshape(x, [-1, 4])", "[6·B, 4]");
  assert_probe("x: [B, 6, 4]", "reshape(x, [B, -1])", "[B, 24]");
}

static void reshape_must_keep_the_element_count(void **state) {
  (void)state;
  assert_expr_error("x: [B, 784]", "reshape(x, [B, 1, 28, 27])",
                    "reshape: [B, 784] has 784·B elements, the new shape [B, 1, 28, 27] has 756·B");
  assert_expr_error("x: [B, 10]", "reshape(x, [B, -1, 3])", "reshape: cannot split [B, 10]");
  assert_expr_error("x: [B, 10]", "reshape(x, [-1, -1])", "only one size may be -1");
}

static void flatten_merges_symbolic_and_known_dims(void **state) {
  (void)state;
  assert_probe("x: [B, 3, 4, 5]", "flatten(x)", "[B, 60]");
  assert_probe("x: [B, 3, 4, 5]", "flatten(x, start: 2)", "[B, 3, 20]");
  assert_probe("x: [B, 3, 4]", "flatten(x, start: 0)", "[12·B]");
  assert_probe("x: [B, 2, 8]", "flatten(x, start: -2)", "[B, 16]");
}

static void flatten_layer_keeps_the_batch(void **state) {
  (void)state;
  Checked c = one_layer_any("Flatten", "[B, 16, 5, 5]", "[B, 400]");
  assert_ok(c);
  assert_row(&c, "l", "[B, 400]", "0", NULL);
  checked_free(&c);
}

/* ---- other shape functions ------------------------------------------------- */

static void squeeze_unsqueeze_transpose_concat(void **state) {
  (void)state;
  assert_probe("x: [B, 1, 4]", "squeeze(x, 1)", "[B, 4]");
  assert_probe("x: [B, 4]", "unsqueeze(x, -1)", "[B, 4, 1]");
  assert_probe("x: [B, 3, 4]", "transpose(x, 1, 2)", "[B, 4, 3]");
  assert_probe("a: [B, 3], b: [B, 5]", "concat([a, b], dim: 1)", "[B, 8]");
  assert_probe("a: [B, 3], b: [B, 3]", "stack([a, b], dim: 1)", "[B, 2, 3]");
  assert_probe("x: [B, 3, 4]", "mean(x, dim: 1)", "[B, 4]");
  assert_probe("x: [B, 3, 4]", "sum(x, dim: [1, 2], keepdim: true)", "[B, 1, 1]");
  assert_probe("x: [B, 3, 4]", "x[:, 1:]", "[B, 2, 4]");
  assert_probe("x: [B, 3, 4]", "x[:, 0]", "[B, 4]");
  assert_probe("x: [B, 10]", "argmax(x, -1)", "int[B]");
}

static void squeeze_of_a_dim_that_is_not_one(void **state) {
  (void)state;
  assert_expr_error("x: [B, 2]", "squeeze(x, 1)", "squeeze: dim 1 of [B, 2] is 2, not 1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(linear_maps_the_last_dim_and_counts_weights_and_bias),
      cmocka_unit_test(linear_without_bias_has_no_bias_parameters),
      cmocka_unit_test(linear_keeps_leading_dims),
      cmocka_unit_test(linear_rejects_the_wrong_in_features),
      cmocka_unit_test(linear_on_images_hints_flatten),
      cmocka_unit_test(conv2d_valid_convolution_shrinks_by_kernel_minus_one),
      cmocka_unit_test(conv2d_stride_and_padding),
      cmocka_unit_test(conv2d_odd_size_with_stride_rounds_down),
      cmocka_unit_test(conv2d_dilation_widens_the_kernel),
      cmocka_unit_test(conv2d_groups_divide_the_weights),
      cmocka_unit_test(conv2d_without_bias),
      cmocka_unit_test(conv2d_rejects_the_wrong_channels),
      cmocka_unit_test(conv2d_rejects_an_image_smaller_than_the_kernel),
      cmocka_unit_test(conv2d_rejects_groups_that_do_not_divide),
      cmocka_unit_test(conv_transpose_doubles_with_stride_two),
      cmocka_unit_test(conv_transpose_output_padding),
      cmocka_unit_test(conv_transpose_stride_one_grows_by_kernel_minus_one),
      cmocka_unit_test(maxpool_stride_defaults_to_kernel),
      cmocka_unit_test(maxpool_of_an_odd_size_rounds_down),
      cmocka_unit_test(maxpool_overlapping_with_stride),
      cmocka_unit_test(maxpool_with_padding),
      cmocka_unit_test(pooling_too_often_is_an_error),
      cmocka_unit_test(a_cnn_adds_up_its_parameters),
      cmocka_unit_test(broadcasting_matches_from_the_last_dim),
      cmocka_unit_test(broadcasting_of_unequal_sizes_is_an_error),
      cmocka_unit_test(comparisons_give_bool),
      cmocka_unit_test(matmul_of_matrices_and_batches),
      cmocka_unit_test(matmul_with_vectors_drops_a_dim),
      cmocka_unit_test(matmul_inner_sizes_must_agree),
      cmocka_unit_test(reshape_infers_minus_one),
      cmocka_unit_test(reshape_must_keep_the_element_count),
      cmocka_unit_test(flatten_merges_symbolic_and_known_dims),
      cmocka_unit_test(flatten_layer_keeps_the_batch),
      cmocka_unit_test(squeeze_unsqueeze_transpose_concat),
      cmocka_unit_test(squeeze_of_a_dim_that_is_not_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
