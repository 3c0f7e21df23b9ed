/*
 * test_runtime.c — the runtime library through its public header: CSV and
 * IDX loading (the course's real files where they are installed, small
 * hand-made files for every error), the random generator, splits, batches
 * and normalization, safetensors checkpoints (round trip, a PyTorch-style
 * file made by hand, truncation at every byte, corrupted headers), atomic
 * output files, and the progress and metrics printers.
 *
 * Every test works in its own folder under a temporary directory made by
 * the group setup and removed by its teardown. Tests that need a data file
 * that is not installed pass with a note instead of failing: the course's
 * data sets come from scripts/setup.sh, not from the build.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/runtime.h"
#include "tmpdir.h"

#ifndef NNC_SOURCE_DIR
#define NNC_SOURCE_DIR "."
#endif
#define FASHION "/usr/share/datasets/fashion-mnist/"
#define COVID NNC_SOURCE_DIR "/data/hw1/covid.train.csv"
#define MNIST NNC_SOURCE_DIR "/data/hw14/"



static void write_text(const char *path, const char *text) {
  write_bytes(path, text, strlen(text));
}

static char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  assert_true(len >= 0);
  rewind(f);
  char *buf = malloc((size_t)len + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
  buf[len] = 0;
  fclose(f);
  if (n) *n = (size_t)len;
  return buf;
}

static bool exists(const char *path) {
  return access(path, F_OK) == 0;
}

static bool skip_unless(const char *path) {
  if (exists(path)) return false;
  print_message("[  SKIP    ] %s is not installed (scripts/setup.sh installs it)\n", path);
  return true;
}

#define assert_error_has(err, needle)                                          \
  do {                                                                         \
    if (!strstr((err).msg, (needle)))                                          \
      fail_msg("error lacks \"%s\"; it was:\n%s", (needle), (err).msg);        \
  } while (0)


static int setup(void **state) {
  (void)state;
  return tmpdir_make("runtime");
}

static int teardown(void **state) {
  (void)state;
  return tmpdir_remove();
}

/* ---- CSV ----------------------------------------------------------------- */

static const RtColumnSel XY[] = {{"x", 0, 1}, {"y", 2, 2}};

static void covid_train_loads_2699_rows_of_116_features_and_a_target(void **state) {
  (void)state;
  if (skip_unless(COVID)) return;
  RtColumnSel sel[] = {{"x", 1, 116}, {"y", 117, 117}};
  RtTable t;
  RtError err;
  if (!rt_load_csv(COVID, true, sel, 2, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 2699);
  RtField *x = rt_table_field(&t, "x"), *y = rt_table_field(&t, "y");
  assert_non_null(x);
  assert_non_null(y);
  assert_null(rt_table_field(&t, "z"));
  assert_int_equal(x->width, 116);
  assert_int_equal(y->width, 1);
  /* Row 0: AL = 0, column 38 (cli) = 0.6584658, tested_positive = 7.4561538. */
  assert_true(x->data[0] == 0.0f);
  assert_true(x->data[37] == strtof("0.6584658", NULL));
  assert_true(y->data[0] == strtof("7.4561538", NULL));
  assert_true(y->data[2698] == strtof("11.0694227", NULL));
  rt_table_free(&t);
}

static void csv_accepts_bom_crlf_quotes_and_blank_lines(void **state) {
  (void)state;
  write_text(tmp("a.csv"), "\xEF\xBB\xBF" "a,b,c\r\n1,2,3\r\n\r\n\" 4.5 \",\"5\",-6e1\r\n\r\n");
  RtTable t;
  RtError err;
  if (!rt_load_csv(tmp("a.csv"), true, XY, 2, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 2);
  const float *x = rt_table_field(&t, "x")->data, *y = rt_table_field(&t, "y")->data;
  assert_true(x[0] == 1 && x[1] == 2 && x[2] == 4.5f && x[3] == 5);
  assert_true(y[0] == 3 && y[1] == -60);
  rt_table_free(&t);
}

static void csv_accepts_lone_cr_and_no_final_newline(void **state) {
  (void)state;
  write_text(tmp("cr.csv"), "a,b,c\r1,2,3\r7,8,9");
  RtTable t;
  RtError err;
  if (!rt_load_csv(tmp("cr.csv"), true, XY, 2, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 2);
  assert_true(rt_table_field(&t, "y")->data[1] == 9);
  rt_table_free(&t);
}

static void csv_without_header_uses_the_first_row_as_data(void **state) {
  (void)state;
  write_text(tmp("nh.csv"), "1,2,3\n4,5,6\n");
  RtTable t;
  RtError err;
  if (!rt_load_csv(tmp("nh.csv"), false, XY, 2, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 2);
  assert_true(rt_table_field(&t, "x")->data[0] == 1);
  rt_table_free(&t);
}

static void csv_quoted_cell_may_hold_commas_quotes_and_newlines(void **state) {
  (void)state;
  write_text(tmp("q.csv"), "name,x\n\"a, \"\"b\"\"\nc\",1\nd,2\n");
  RtColumnSel sel[] = {{"x", 1, 1}};
  RtTable t;
  RtError err;
  if (!rt_load_csv(tmp("q.csv"), true, sel, 1, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 2);
  rt_table_free(&t);
  /* Line numbers after a quoted newline still count it. */
  write_text(tmp("q2.csv"), "name,x\n\"a\nb\",1\nd,oops\n");
  assert_false(rt_load_csv(tmp("q2.csv"), true, sel, 1, &t, &err));
  assert_error_has(err, "q2.csv:4:3: column 1 ('x') of field 'x' is 'oops', which is not a number");
}

static void csv_row_with_wrong_column_count_names_the_line_and_both_counts(void **state) {
  (void)state;
  write_text(tmp("w.csv"), "a,b,c\n1,2,3\n4,5\n");
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("w.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "w.csv:3: this row has 2 columns, but the header (line 1) has 3");
  assert_int_equal(t.rows, 0);
  assert_null(t.fields);
}

static void csv_unselected_columns_are_counted_too(void **state) {
  (void)state;
  write_text(tmp("w2.csv"), "a,b,c,d\n1,2,3,4\n1,2,3,4,5\n");
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("w2.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "w2.csv:3: this row has 5 columns");
}

static void csv_bad_cell_names_line_column_header_and_text(void **state) {
  (void)state;
  write_text(tmp("b.csv"), "id,cli,ili\r\n1,2,3\r\n4,5x,6\r\n");
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("b.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "b.csv:3:3: column 1 ('cli') of field 'x' is '5x', which is not a number");
  assert_error_has(err, "columns 0..1 must be a finite number");
}

static void csv_empty_nan_and_overflowing_cells_are_errors(void **state) {
  (void)state;
  const char *bad[] = {"1,,3\n", "1,nan,3\n", "1,inf,3\n", "1,1e39,3\n", "1, ,3\n", "1,0x,3\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_text(tmp("e.csv"), bad[i]);
    RtTable t;
    RtError err;
    if (rt_load_csv(tmp("e.csv"), false, XY, 2, &t, &err)) fail_msg("accepted %s", bad[i]);
    assert_error_has(err, "e.csv:1:3: column 1 of field 'x' is");
  }
}

static void csv_control_bytes_in_a_bad_cell_are_shown_escaped(void **state) {
  (void)state;
  write_bytes(tmp("nul.csv"), "1,a\0\x01,3\n", 9);
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("nul.csv"), false, XY, 2, &t, &err));
  assert_error_has(err, "is 'a\\x00\\x01'");
}

static void csv_column_after_chinese_text_counts_characters(void **state) {
  (void)state;
  write_text(tmp("zh.csv"), "名字,x\n中文,bad\n");
  RtColumnSel sel[] = {{"x", 1, 1}};
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("zh.csv"), true, sel, 1, &t, &err));
  assert_error_has(err, "zh.csv:2:4: column 1");
}

static void csv_unclosed_quote_points_at_its_start(void **state) {
  (void)state;
  write_text(tmp("uq.csv"), "a,b,c\n1,\"2,3\n4,5,6\n");
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("uq.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "uq.csv:2:3: the quote that opens this cell is never closed");
  write_text(tmp("uq2.csv"), "a,b,c\n1,\"2\"x,3\n");
  assert_false(rt_load_csv(tmp("uq2.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "uq2.csv:2:6: text after the closing quote");
}

static void csv_selection_past_the_last_column_is_an_error(void **state) {
  (void)state;
  write_text(tmp("s.csv"), "a,b,c\n1,2,3\n");
  RtColumnSel sel[] = {{"x", 1, 3}};
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("s.csv"), true, sel, 1, &t, &err));
  assert_error_has(err, "field 'x' takes columns 1..3, but the file has 3 columns (0..2)");
  RtColumnSel twice[] = {{"x", 0, 0}, {"x", 1, 1}};
  assert_false(rt_load_csv(tmp("s.csv"), true, twice, 2, &t, &err));
  assert_error_has(err, "the field 'x' is selected twice");
}

static void csv_missing_empty_and_header_only_files_are_errors(void **state) {
  (void)state;
  RtTable t;
  RtError err;
  assert_false(rt_load_csv(tmp("nope.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "cannot open data file '");
  assert_error_has(err, "nope.csv': No such file or directory");
  write_text(tmp("empty.csv"), "\r\n\n");
  assert_false(rt_load_csv(tmp("empty.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "the file is empty");
  write_text(tmp("ho.csv"), "a,b,c\n\n");
  assert_false(rt_load_csv(tmp("ho.csv"), true, XY, 2, &t, &err));
  assert_error_has(err, "has a header line but no data rows");
}

static void csv_many_rows_grow_the_fields(void **state) {
  (void)state;
  FILE *f = fopen(tmp("big.csv"), "w");
  assert_non_null(f);
  fputs("a,b,c\n", f);
  for (int i = 0; i < 5000; i++) fprintf(f, "%d,%d.5,%d\n", i, i, -i);
  fclose(f);
  RtTable t;
  RtError err;
  if (!rt_load_csv(tmp("big.csv"), true, XY, 2, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 5000);
  const float *x = rt_table_field(&t, "x")->data, *y = rt_table_field(&t, "y")->data;
  assert_true(x[2 * 4999] == 4999 && x[2 * 4999 + 1] == 4999.5f && y[4999] == -4999);
  rt_table_free(&t);
}

/* ---- IDX ----------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* A plain IDX image file of n images of 2 x 3 pixels (pixel i = i), and a
 * label file of n labels (label i = i % 10). */
static size_t make_images(unsigned char *buf, uint32_t n, uint32_t claimed) {
  put_be32(buf, 2051);
  put_be32(buf + 4, claimed);
  put_be32(buf + 8, 2);
  put_be32(buf + 12, 3);
  for (uint32_t i = 0; i < 6 * n; i++) buf[16 + i] = (unsigned char)(i * 51);
  return 16 + 6 * (size_t)n;
}

static size_t make_labels(unsigned char *buf, uint32_t n) {
  put_be32(buf, 2049);
  put_be32(buf + 4, n);
  for (uint32_t i = 0; i < n; i++) buf[8 + i] = (unsigned char)(i % 10);
  return 8 + n;
}

static void fashion_mnist_loads_with_pixels_in_0_1_and_ten_classes(void **state) {
  (void)state;
  const char *sets[][3] = {{FASHION "t10k-images-idx3-ubyte.gz", FASHION "t10k-labels-idx1-ubyte.gz", "10000"},
                           {FASHION "train-images-idx3-ubyte.gz", FASHION "train-labels-idx1-ubyte.gz", "60000"}};
  for (int s = 0; s < 2; s++) {
    if (skip_unless(sets[s][0])) return;
    RtTable t;
    RtError err;
    if (!rt_load_idx(sets[s][0], sets[s][1], &t, &err)) fail_msg("%s", err.msg);
    assert_int_equal(t.rows, atoi(sets[s][2]));
    RtField *x = rt_table_field(&t, "x"), *y = rt_table_field(&t, "y");
    assert_int_equal(x->width, 784);
    assert_int_equal(x->rank, 2);
    assert_int_equal(x->shape[0], 28);
    assert_int_equal(x->shape[1], 28);
    assert_int_equal(y->width, 1);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < t.rows * 784; i++) {
      lo = fminf(lo, x->data[i]);
      hi = fmaxf(hi, x->data[i]);
    }
    assert_true(lo == 0.0f && hi == 1.0f);
    int count[10] = {0};
    for (int64_t i = 0; i < t.rows; i++) {
      float c = y->data[i];
      assert_true(c >= 0 && c <= 9 && c == floorf(c));
      count[(int)c]++;
    }
    for (int c = 0; c < 10; c++) assert_int_equal(count[c], t.rows / 10);  /* balanced */
    assert_true(y->data[0] == 9);  /* both sets start with an ankle boot */
    rt_table_free(&t);
  }
}

static void mnist_test_set_loads_and_mismatched_label_file_is_an_error(void **state) {
  (void)state;
  if (skip_unless(MNIST "t10k-images-idx3-ubyte.gz")) return;
  RtTable t;
  RtError err;
  if (!rt_load_idx(MNIST "t10k-images-idx3-ubyte.gz", MNIST "t10k-labels-idx1-ubyte.gz", &t, &err))
    fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 10000);
  assert_true(rt_table_field(&t, "y")->data[0] == 7);
  rt_table_free(&t);
  assert_false(rt_load_idx(MNIST "t10k-images-idx3-ubyte.gz", MNIST "train-labels-idx1-ubyte.gz", &t, &err));
  assert_error_has(err, "has 60000 labels but '");
  assert_error_has(err, "has 10000 images; are both from the same set");
}

static void idx_plain_file_without_labels_gives_only_x(void **state) {
  (void)state;
  unsigned char buf[64];
  write_bytes(tmp("i.idx"), buf, make_images(buf, 3, 3));
  RtTable t;
  RtError err;
  if (!rt_load_idx(tmp("i.idx"), NULL, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 3);
  assert_int_equal(t.nfields, 1);
  RtField *x = rt_table_field(&t, "x");
  assert_int_equal(x->width, 6);
  assert_true(x->data[0] == 0 && x->data[1] == 51 / 255.0f && x->data[5] == 1.0f);
  rt_table_free(&t);
}

static void idx_gzip_file_loads_like_the_plain_one(void **state) {
  (void)state;
  unsigned char img[64], lab[32];
  size_t ni = make_images(img, 3, 3), nl = make_labels(lab, 3);
  gzFile g = gzopen(tmp("i.idx.gz"), "wb");
  assert_non_null(g);
  assert_int_equal(gzwrite(g, img, (unsigned)ni), (int)ni);
  gzclose(g);
  write_bytes(tmp("l.idx"), lab, nl);
  RtTable t;
  RtError err;
  if (!rt_load_idx(tmp("i.idx.gz"), tmp("l.idx"), &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 3);
  assert_true(rt_table_field(&t, "y")->data[2] == 2);
  rt_table_free(&t);
}

static void idx_truncated_at_every_byte_is_an_error(void **state) {
  (void)state;
  unsigned char buf[64];
  size_t n = make_images(buf, 3, 3);
  for (size_t len = 0; len < n; len++) {
    write_bytes(tmp("t.idx"), buf, len);
    RtTable t;
    RtError err;
    if (rt_load_idx(tmp("t.idx"), NULL, &t, &err)) fail_msg("accepted %zu of %zu bytes", len, n);
    assert_true(strlen(err.msg) > 0);
  }
  RtTable t;
  RtError err;
  write_bytes(tmp("t.idx"), buf, n - 1);
  assert_false(rt_load_idx(tmp("t.idx"), NULL, &t, &err));
  assert_error_has(err, "is truncated: its header promises 3 images (18 bytes after byte 16), "
                        "but the file ends after 17 bytes of them");
}

static void idx_header_claiming_billions_of_images_is_truncated_not_allocated(void **state) {
  (void)state;
  unsigned char buf[64];
  size_t n = make_images(buf, 2, 0xFFFFFFFFu);
  put_be32(buf + 8, 0xFFFFFFFFu);
  put_be32(buf + 12, 0xFFFFFFFFu);
  write_bytes(tmp("h.idx"), buf, n);
  RtTable t;
  RtError err;
  assert_false(rt_load_idx(tmp("h.idx"), NULL, &t, &err));
  assert_error_has(err, "too many to hold");
  put_be32(buf + 8, 28);
  put_be32(buf + 12, 28);
  write_bytes(tmp("h.idx"), buf, n);
  assert_false(rt_load_idx(tmp("h.idx"), NULL, &t, &err));
  assert_error_has(err, "is truncated: its header promises 4294967295 images");
}

static void idx_wrong_magic_extra_bytes_and_swapped_paths_are_errors(void **state) {
  (void)state;
  unsigned char img[64], lab[32];
  size_t ni = make_images(img, 3, 3), nl = make_labels(lab, 3);
  write_bytes(tmp("img.idx"), img, ni);
  write_bytes(tmp("lab.idx"), lab, nl);
  RtTable t;
  RtError err;
  assert_false(rt_load_idx(tmp("lab.idx"), tmp("img.idx"), &t, &err));
  assert_error_has(err, "is not an IDX image file: its magic number (byte 0) is 2049, not 2051 "
                        "(it holds labels: swap the two paths?)");
  write_bytes(tmp("img2.idx"), img, ni + 1);
  assert_false(rt_load_idx(tmp("img2.idx"), NULL, &t, &err));
  assert_error_has(err, "has data after the 3 images its header promises (from byte 34)");
  write_text(tmp("txt.idx"), "hello, world\n");
  assert_false(rt_load_idx(tmp("txt.idx"), NULL, &t, &err));
  assert_error_has(err, "is not an IDX image file");
  nl = make_labels(lab, 2);
  write_bytes(tmp("lab2.idx"), lab, nl);
  assert_false(rt_load_idx(tmp("img.idx"), tmp("lab2.idx"), &t, &err));
  assert_error_has(err, "has 2 labels but '");
  assert_false(rt_load_idx(tmp("none.gz"), NULL, &t, &err));
  assert_error_has(err, "cannot open data file '");
}

static void idx_corrupt_gzip_is_an_error_not_a_crash(void **state) {
  (void)state;
  unsigned char img[700];
  put_be32(img, 2051);
  put_be32(img + 4, 100);
  put_be32(img + 8, 2);
  put_be32(img + 12, 3);
  for (int i = 16; i < 616; i++) img[i] = (unsigned char)(i * 7);
  gzFile g = gzopen(tmp("c.gz"), "wb");
  assert_non_null(g);
  gzwrite(g, img, 616);
  gzclose(g);
  size_t n;
  char *gz = read_all(tmp("c.gz"), &n);
  for (size_t i = 10; i < n; i++) {
    char *bad = malloc(n);
    assert_non_null(bad);
    memcpy(bad, gz, n);
    bad[i] = (char)(bad[i] ^ 0x5A);
    write_bytes(tmp("c2.gz"), bad, n);
    RtTable t;
    RtError err;
    if (rt_load_idx(tmp("c2.gz"), NULL, &t, &err)) rt_table_free(&t);
    free(bad);
  }
  free(gz);
}

/* ---- random numbers ------------------------------------------------------ */

static void rng_matches_the_reference_xoshiro256starstar(void **state) {
  (void)state;
  /* From an independent implementation of splitmix64 seeding and
   * xoshiro256** (Vigna's reference code, transcribed to Python). */
  RtRng r;
  rt_rng_seed(&r, 5201314);
  assert_true(rt_rng_u64(&r) == 0xc54d28521b57a774u);
  assert_true(rt_rng_u64(&r) == 0x63f4fd0f02cedf16u);
  assert_true(rt_rng_u64(&r) == 0x51d8c9f4ea6bde73u);
}

static void rng_same_seed_gives_the_same_numbers(void **state) {
  (void)state;
  RtRng a, b, c;
  rt_rng_seed(&a, 42);
  rt_rng_seed(&b, 42);
  rt_rng_seed(&c, 43);
  int same = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = rt_rng_u64(&a);
    assert_true(x == rt_rng_u64(&b));
    same += x == rt_rng_u64(&c);
  }
  assert_int_equal(same, 0);
}

static void rng_uniform_is_in_0_1_and_normal_has_mean_0_std_1(void **state) {
  (void)state;
  RtRng r;
  rt_rng_seed(&r, 1);
  double s = 0, s2 = 0, u = 0;
  int n = 200000;
  for (int i = 0; i < n; i++) {
    float x = rt_rng_uniform(&r);
    assert_true(x >= 0.0f && x < 1.0f);
    u += x;
    float z = rt_rng_normal(&r);
    assert_true(isfinite(z));
    s += z;
    s2 += (double)z * z;
  }
  assert_true(fabs(u / n - 0.5) < 0.005);
  assert_true(fabs(s / n) < 0.01);
  assert_true(fabs(sqrt(s2 / n) - 1) < 0.01);
}

static void rng_below_stays_in_range_and_hits_every_value(void **state) {
  (void)state;
  RtRng r;
  rt_rng_seed(&r, 7);
  int hits[7] = {0};
  for (int i = 0; i < 7000; i++) {
    uint64_t v = rt_rng_below(&r, 7);
    assert_true(v < 7);
    hits[v]++;
  }
  for (int i = 0; i < 7; i++) assert_true(hits[i] > 850 && hits[i] < 1150);
  assert_true(rt_rng_below(&r, 1) == 0);
}

static void shuffle_is_a_permutation_and_depends_on_the_seed(void **state) {
  (void)state;
  int64_t a[100], b[100];
  for (int i = 0; i < 100; i++) a[i] = b[i] = i;
  RtRng r;
  rt_rng_seed(&r, 1);
  rt_shuffle(&r, a, 100);
  rt_rng_seed(&r, 2);
  rt_shuffle(&r, b, 100);
  int seen[100] = {0}, moved = 0, differ = 0;
  for (int i = 0; i < 100; i++) {
    seen[a[i]]++;
    moved += a[i] != i;
    differ += a[i] != b[i];
  }
  for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
  assert_true(moved > 80 && differ > 80);
}

static void rng_state_survives_format_and_parse(void **state) {
  (void)state;
  RtRng r, back;
  rt_rng_seed(&r, 99);
  rt_rng_u64(&r);
  char hex[65];
  rt_rng_format(&r, hex);
  assert_int_equal(strlen(hex), 64);
  assert_true(rt_rng_parse(hex, &back));
  assert_memory_equal(&r, &back, sizeof r);
  assert_true(rt_rng_u64(&r) == rt_rng_u64(&back));
  assert_false(rt_rng_parse("12", &back));
  assert_false(rt_rng_parse("0000000000000000000000000000000000000000000000000000000000000000", &back));
  hex[5] = 'g';
  assert_false(rt_rng_parse(hex, &back));
}

/* ---- splits, batches, normalization ---------------------------------------- */

static void split_of_2699_rows_holds_out_539_and_is_deterministic(void **state) {
  (void)state;
  RtSplit a, b, c;
  RtError err;
  assert_true(rt_split(2699, 0.2, 5201314, &a, &err));
  assert_true(rt_split(2699, 0.2, 5201314, &b, &err));
  assert_true(rt_split(2699, 0.2, 1, &c, &err));
  assert_int_equal(a.nvalid, 539);
  assert_int_equal(a.ntrain, 2160);
  assert_memory_equal(a.valid, b.valid, sizeof(int64_t) * 539);
  assert_memory_equal(a.train, b.train, sizeof(int64_t) * 2160);
  assert_memory_not_equal(a.valid, c.valid, sizeof(int64_t) * 539);
  char *seen = calloc(2699, 1);
  assert_non_null(seen);
  for (int64_t i = 0; i < a.nvalid; i++) seen[a.valid[i]]++;
  for (int64_t i = 0; i < a.ntrain; i++) seen[a.train[i]]++;
  for (int i = 0; i < 2699; i++) assert_int_equal(seen[i], 1);
  free(seen);
  rt_split_free(&a);
  rt_split_free(&b);
  rt_split_free(&c);
}

static void split_with_no_valid_fraction_trains_on_everything(void **state) {
  (void)state;
  RtSplit s;
  RtError err;
  assert_true(rt_split(10, 0, 3, &s, &err));
  assert_int_equal(s.nvalid, 0);
  assert_int_equal(s.ntrain, 10);
  rt_split_free(&s);
  assert_false(rt_split(10, 1.0, 3, &s, &err));
  assert_error_has(err, "at least 0 and below 1, got 1");
  assert_false(rt_split(10, NAN, 3, &s, &err));
  assert_false(rt_split(0, 0.2, 3, &s, &err));
  assert_error_has(err, "the data has no rows");
}

/* A table of 4 rows, field "x" [4, 3] with x[i][j] = 10 i + j. */
static RtTable small_table(void) {
  RtTable t = {.rows = 4, .nfields = 1};
  t.fields = calloc(1, sizeof *t.fields);
  assert_non_null(t.fields);
  t.fields[0].name = strdup("x");
  t.fields[0].width = 3;
  t.fields[0].rank = 1;
  t.fields[0].shape[0] = 3;
  t.fields[0].data = malloc(12 * sizeof(float));
  assert_non_null(t.fields[0].data);
  for (int i = 0; i < 12; i++) t.fields[0].data[i] = (float)(10 * (i / 3) + i % 3);
  return t;
}

static void gather_copies_the_named_rows_in_order(void **state) {
  (void)state;
  RtTable t = small_table();
  int64_t idx[] = {3, 0, 3};
  float dst[9];
  rt_gather(&t, rt_table_field(&t, "x"), idx, 3, dst);
  float want[] = {30, 31, 32, 0, 1, 2, 30, 31, 32};
  assert_memory_equal(dst, want, sizeof want);
  rt_table_free(&t);
}

static void stats_over_chosen_rows_and_normalize_all_rows(void **state) {
  (void)state;
  RtTable t = small_table();
  RtField *x = rt_table_field(&t, "x");
  x->data[2] = x->data[5] = x->data[8] = x->data[11] = 7;  /* a constant feature */
  float mean[3], std[3];
  int64_t rows[] = {0, 2};
  rt_field_stats(&t, x, rows, 2, mean, std);
  assert_true(mean[0] == 10 && mean[1] == 11 && mean[2] == 7);
  assert_true(std[0] == 10 && std[1] == 10 && std[2] == 0);
  rt_field_stats(&t, x, NULL, 0, mean, std);
  assert_true(mean[0] == 15);
  assert_float_equal(std[0], sqrtf(125), 1e-5);
  rt_field_stats(&t, x, rows, 2, mean, std);
  rt_normalize(&t, x, mean, std);
  assert_true(x->data[0] == -1 && x->data[3] == 0 && x->data[6] == 1 && x->data[9] == 2);
  assert_true(x->data[2] == 0 && x->data[11] == 0);  /* centered, not divided by 0 */
  rt_table_free(&t);
}

/* ---- safetensors --------------------------------------------------------- */

static void checkpoint_round_trip_is_bit_identical(void **state) {
  (void)state;
  float w[6], b[2] = {-0.0f, 1e-45f}, s = NAN;
  uint32_t nan_payload = 0x7fc12345;
  memcpy(&w[0], &nan_payload, 4);
  w[1] = INFINITY;
  w[2] = -1.5f;
  w[3] = 3.14159274f;
  w[4] = 1e38f;
  w[5] = -7e-39f;
  RtTensorRef ts[] = {
      {"fc1.weight", 2, {2, 3}, w},
      {"fc1.bias \"quoted\" \\ 名", 1, {2}, b},
      {"scalar", 0, {0}, &s},
      {"empty", 2, {0, 5}, NULL},
  };
  RtMeta meta[] = {{"format", "pt"}, {"note", "line\nbreak\t\"q\" 中文"}};
  RtError err;
  const char *path = tmp("ck/sub/model.safetensors");
  if (!rt_save_safetensors(path, ts, 4, meta, 2, &err)) fail_msg("%s", err.msg);
  assert_false(exists(tmp("ck/sub/model.safetensors.tmp")));
  RtCheckpoint c;
  if (!rt_load_safetensors(path, &c, &err)) fail_msg("%s", err.msg);
  assert_int_equal(c.ntensors, 4);
  for (int i = 0; i < 4; i++) {
    const RtTensor *t = rt_checkpoint_find(&c, ts[i].name);
    if (!t) fail_msg("'%s' is missing", ts[i].name);
    assert_int_equal(t->rank, ts[i].rank);
    int64_t numel = 1;
    for (int d = 0; d < t->rank; d++) {
      assert_int_equal(t->shape[d], ts[i].shape[d]);
      numel *= t->shape[d];
    }
    assert_int_equal(t->numel, numel);
    if (numel) assert_memory_equal(t->data, ts[i].data, (size_t)numel * 4);
  }
  assert_null(rt_checkpoint_find(&c, "nope"));
  assert_string_equal(rt_checkpoint_meta(&c, "format"), "pt");
  assert_string_equal(rt_checkpoint_meta(&c, "note"), meta[1].value);
  assert_null(rt_checkpoint_meta(&c, "nope"));
  rt_checkpoint_free(&c);

  /* The header is padded to 8 bytes and the file is exactly header + data. */
  size_t n;
  unsigned char *bytes = (unsigned char *)read_all(path, &n);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | bytes[i];
  assert_int_equal(hlen % 8, 0);
  assert_int_equal(n, 8 + hlen + 4 * (6 + 2 + 1));
  assert_true(bytes[8] == '{');
  free(bytes);
}

static void saving_again_replaces_the_file_atomically(void **state) {
  (void)state;
  const char *path = tmp("again.safetensors");
  float one = 1, two = 2;
  RtTensorRef t = {"w", 1, {1}, &one};
  RtError err;
  assert_true(rt_save_safetensors(path, &t, 1, NULL, 0, &err));
  write_text(tmp("again.safetensors.tmp"), "stale");  /* left by a killed run */
  t.data = &two;
  assert_true(rt_save_safetensors(path, &t, 1, NULL, 0, &err));
  assert_false(exists(tmp("again.safetensors.tmp")));
  RtCheckpoint c;
  assert_true(rt_load_safetensors(path, &c, &err));
  assert_true(c.tensors[0].data[0] == 2);
  assert_int_equal(c.nmeta, 0);
  rt_checkpoint_free(&c);
}

static void saving_bad_tensors_or_into_a_file_is_an_error(void **state) {
  (void)state;
  float x = 1;
  RtError err;
  RtTensorRef dup[] = {{"w", 1, {1}, &x}, {"w", 1, {1}, &x}};
  assert_false(rt_save_safetensors(tmp("d.safetensors"), dup, 2, NULL, 0, &err));
  assert_error_has(err, "tensor 1 ('w') has a bad name, shape or data");
  RtTensorRef neg = {"n", 1, {-1}, &x};
  assert_false(rt_save_safetensors(tmp("d.safetensors"), &neg, 1, NULL, 0, &err));
  RtTensorRef huge = {"h", 2, {INT64_MAX, 2}, &x};
  assert_false(rt_save_safetensors(tmp("d.safetensors"), &huge, 1, NULL, 0, &err));
  RtTensorRef meta = {"__metadata__", 1, {1}, &x};
  assert_false(rt_save_safetensors(tmp("d.safetensors"), &meta, 1, NULL, 0, &err));
  assert_false(exists(tmp("d.safetensors")));
  write_text(tmp("afile"), "x");
  RtTensorRef ok = {"w", 1, {1}, &x};
  assert_false(rt_save_safetensors(tmp("afile/m.safetensors"), &ok, 1, NULL, 0, &err));
  assert_error_has(err, "cannot make folder '");
}

/* Writes a safetensors file from a header text and `dlen` data bytes. */
static void write_st(const char *path, const char *header, const void *data, size_t dlen) {
  size_t hlen = strlen(header);
  unsigned char *buf = malloc(8 + hlen + dlen);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  memcpy(buf + 8, header, hlen);
  if (dlen) memcpy(buf + 8 + hlen, data, dlen);
  write_bytes(path, buf, 8 + hlen + dlen);
  free(buf);
}

static void pytorch_style_file_with_tensors_out_of_order_loads(void **state) {
  (void)state;
  /* As safetensors.torch.save_file writes: metadata first, names sorted,
   * data in another order, spaces padding the header; plus the white
   * space and escapes other JSON writers use. */
  float data[] = {1, 2, 3, 4, 5, 6, 0.5f, -0.5f, 9};
  const char *header =
      "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":\"12\"},\n"
      "  \"fc1.bias\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [24, 32]},\n"
      "  \"fc1.weight\":{\"shape\":[2,3],\"data_offsets\":[0,24],\"dtype\":\"F32\"},\n"
      "  \"out.\\u0077\\ud83d\\ude00\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[32,36]}}"
      "     ";
  write_st(tmp("pt.safetensors"), header, data, 36);
  RtCheckpoint c;
  RtError err;
  if (!rt_load_safetensors(tmp("pt.safetensors"), &c, &err)) fail_msg("%s", err.msg);
  assert_int_equal(c.ntensors, 3);
  const RtTensor *w = rt_checkpoint_find(&c, "fc1.weight"), *b = rt_checkpoint_find(&c, "fc1.bias");
  const RtTensor *o = rt_checkpoint_find(&c, "out.w\xF0\x9F\x98\x80");
  assert_non_null(w);
  assert_non_null(b);
  assert_non_null(o);
  assert_int_equal(w->rank, 2);
  assert_int_equal(w->shape[1], 3);
  assert_true(w->data[5] == 6 && b->data[0] == 0.5f && b->data[1] == -0.5f);
  assert_int_equal(o->rank, 0);
  assert_int_equal(o->numel, 1);
  assert_true(o->data[0] == 9);
  assert_string_equal(c.tensors[0].name, "fc1.weight");  /* data order */
  assert_string_equal(rt_checkpoint_meta(&c, "epoch"), "12");
  rt_checkpoint_free(&c);
}

static void checkpoint_truncated_at_every_byte_is_an_error(void **state) {
  (void)state;
  float w[] = {1, 2, 3, 4, 5, 6};
  RtTensorRef ts[] = {{"a", 2, {2, 2}, w}, {"b", 1, {2}, w + 4}};
  RtMeta meta[] = {{"k", "v"}};
  RtError err;
  assert_true(rt_save_safetensors(tmp("full.safetensors"), ts, 2, meta, 1, &err));
  size_t n;
  char *full = read_all(tmp("full.safetensors"), &n);
  for (size_t len = 0; len < n; len++) {
    write_bytes(tmp("cut.safetensors"), full, len);
    RtCheckpoint c;
    if (rt_load_safetensors(tmp("cut.safetensors"), &c, &err))
      fail_msg("accepted %zu of %zu bytes", len, n);
    assert_true(strlen(err.msg) > 0);
  }
  write_bytes(tmp("cut.safetensors"), full, n - 4);
  RtCheckpoint c;
  assert_false(rt_load_safetensors(tmp("cut.safetensors"), &c, &err));
  assert_error_has(err, "tensor 'b' (byte ");
  assert_error_has(err, "ends at byte 24 of the data, but the data section has 20 bytes; the file is truncated");
  free(full);
}

static void checkpoint_with_corrupted_header_bytes_never_crashes(void **state) {
  (void)state;
  float w[] = {1, 2, 3, 4, 5, 6};
  RtTensorRef ts[] = {{"a", 2, {2, 2}, w}, {"b", 1, {2}, w + 4}};
  RtMeta meta[] = {{"k", "v"}};
  RtError err;
  assert_true(rt_save_safetensors(tmp("good.safetensors"), ts, 2, meta, 1, &err));
  size_t n;
  char *good = read_all(tmp("good.safetensors"), &n);
  const char subst[] = {'{', '}', '[', ']', '"', ':', ',', '9', '0', '-', ' ', '\\', 0, (char)0xFF, 'e'};
  int accepted = 0;
  for (size_t i = 0; i < n - 24; i++) {
    for (size_t k = 0; k < sizeof subst; k++) {
      char *bad = malloc(n);
      assert_non_null(bad);
      memcpy(bad, good, n);
      bad[i] = subst[k];
      write_bytes(tmp("bad.safetensors"), bad, n);
      free(bad);
      RtCheckpoint c;
      if (rt_load_safetensors(tmp("bad.safetensors"), &c, &err)) {
        accepted++;  /* e.g. a changed metadata value: still a valid file */
        for (int t = 0; t < c.ntensors; t++) assert_true(c.tensors[t].numel <= 4);
        rt_checkpoint_free(&c);
      } else {
        assert_true(strlen(err.msg) > 0);
      }
    }
  }
  assert_true(accepted > 0);
  free(good);
}

/* The error for a header (with `dlen` zero bytes of data) contains `needle`. */
static void assert_st_error(const char *header, size_t dlen, const char *needle) {
  static const char zeros[64];
  write_st(tmp("e.safetensors"), header, zeros, dlen);
  RtCheckpoint c;
  RtError err;
  if (rt_load_safetensors(tmp("e.safetensors"), &c, &err)) fail_msg("accepted %s", header);
  if (!strstr(err.msg, needle))
    fail_msg("for %s the error lacks \"%s\"; it was:\n%s", header, needle, err.msg);
}

#define T(name, shape, a, b) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #a "," #b "]}"

static void checkpoint_header_errors_name_the_byte_and_the_problem(void **state) {
  (void)state;
  assert_st_error("{" T("a", "[2]", 0, 8) "," T("b", "[2]", 4, 12) "}", 12, "the data of tensors 'a' and 'b' overlap");
  assert_st_error("{" T("a", "[2]", 0, 8) "," T("b", "[1]", 12, 16) "}", 16, "bytes 8..12 of the data belong to no tensor");
  assert_st_error("{" T("a", "[2]", 0, 8) "}", 12, "the data section has 12 bytes but the tensors use 8");
  assert_st_error("{" T("a", "[2]", 0, 8) "," T("a", "[2]", 8, 16) "}", 16, "the tensor name 'a' appears twice (byte 62)");
  assert_st_error("{" T("a", "[3]", 0, 8) "}", 8, "data_offsets [0, 8] do not span the 12 bytes its shape needs");
  assert_st_error("{" T("a", "[2]", 8, 0) "}", 8, "do not span");
  assert_st_error("{" T("a", "[2]", 4611686018427387904, 4611686018427387912) "}", 8, "the file is truncated");
  assert_st_error("{" T("a", "[4294967296,4294967296]", 0, 8) "}", 8, "has a shape whose size overflows");
  assert_st_error("{" T("a", "[2305843009213693952]", 0, 8) "}", 8, "has a shape whose size overflows");
  assert_st_error("{" T("a", "[99999999999999999999]", 0, 8) "}", 8, "a dimension is too large");
  assert_st_error("{" T("a", "[-2]", 0, 8) "}", 8, "a dimension must be a whole number, at least 0");
  assert_st_error("{" T("a", "[2.0]", 0, 8) "}", 8, "at byte 37: a dimension must be a whole number");
  assert_st_error("{" T("a", "[[2]]", 0, 8) "}", 8, "a dimension must be a whole number");
  assert_st_error("{" T("a", "[1,1,1,1,1,1,1,1,2]", 0, 8) "}", 8, "at most 8 dimensions");
  assert_st_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                  "tensor 'a' (byte 22) has dtype F16; nnc reads F32 tensors only");
  assert_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "the tensor's entry has no data_offsets");
  assert_st_error("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 8, "a key appears twice");
  assert_st_error("{\"a\":{\"dtype\":\"F32\",\"stride\":[1]}}", 8, "unknown key in a tensor's entry");
  assert_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, "expected ']'");
  assert_st_error("{\"__metadata__\":{\"epoch\":3}}", 0, "__metadata__ values must be strings");
  assert_st_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears twice");
  assert_st_error("{\"__metadata__\":{\"a\":{\"b\":{\"c\":\"d\"}}}}", 0, "__metadata__ values must be strings");
  assert_st_error("{}x", 0, "text after the header's closing '}'");
  assert_st_error("[]", 0, "expected '{'");
  assert_st_error("{\"a", 0, "a string is not closed");
  assert_st_error("{\"a\\q\":1}", 0, "unknown escape");
  assert_st_error("{\"\\ud800\":1}", 0, "a lone UTF-16 surrogate");
  assert_st_error("{\"\\u0000\":1}", 0, "\\u0000 in a string");
  assert_st_error("{\"a\tb\":1}", 0, "a control character inside a string");
  assert_st_error("{  ", 0, "found the end");
  assert_st_error(" ", 0, "the header length (byte 0) is 1 bytes; safetensors headers have 2 to 100000000");
}

static void checkpoint_header_length_beyond_the_file_is_an_error(void **state) {
  (void)state;
  unsigned char buf[16] = {0};
  buf[7] = 0x10;  /* 2^60 */
  memcpy(buf + 8, "{}      ", 8);
  write_bytes(tmp("h.safetensors"), buf, 16);
  RtCheckpoint c;
  RtError err;
  assert_false(rt_load_safetensors(tmp("h.safetensors"), &c, &err));
  assert_error_has(err, "the header length (byte 0) is 1152921504606846976 bytes, but only 8 bytes follow");
  write_bytes(tmp("h.safetensors"), buf, 5);
  assert_false(rt_load_safetensors(tmp("h.safetensors"), &c, &err));
  assert_error_has(err, "is too short to be a safetensors file (5 bytes");
  assert_false(rt_load_safetensors(tmp("missing.safetensors"), &c, &err));
  assert_error_has(err, "cannot open checkpoint '");
  assert_false(rt_load_safetensors(tmpdir, &c, &err));
  assert_error_has(err, "is not a regular file");
}

/* ---- output files -------------------------------------------------------- */

static void prediction_csv_has_int_ids_and_float_values(void **state) {
  (void)state;
  float id[] = {0, 1, 2, 3}, y[] = {1.5f, -0.25f, 12345678.0f, 1e-7f}, cls[] = {9, -0.0f, 2.4f, 2.6f};
  const char *header[] = {"id", "tested_positive", "class, \"best\""};
  const float *cols[] = {id, y, cls};
  RtCsvFormat fmt[] = {RT_CSV_INT, RT_CSV_FLOAT, RT_CSV_INT};
  RtError err;
  const char *path = tmp("out/deep/pred.csv");
  if (!rt_write_csv_atomic(path, header, cols, fmt, 3, 4, &err)) fail_msg("%s", err.msg);
  char *text = read_all(path, NULL);
  assert_string_equal(text,
                      "id,tested_positive,\"class, \"\"best\"\"\"\n"
                      "0,1.5,9\n"
                      "1,-0.25,0\n"
                      "2,1.23457e+07,2\n"
                      "3,1e-07,3\n");
  free(text);
  assert_false(exists(tmp("out/deep/pred.csv.tmp")));
  /* No header: and the file reads back through the loader. */
  if (!rt_write_csv_atomic(path, NULL, cols, fmt, 2, 4, &err)) fail_msg("%s", err.msg);
  RtColumnSel sel[] = {{"y", 1, 1}};
  RtTable t;
  if (!rt_load_csv(path, false, sel, 1, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.rows, 4);
  assert_true(t.fields[0].data[1] == -0.25f);
  rt_table_free(&t);
}

static void mkdirs_makes_nested_folders_and_reports_a_file_in_the_way(void **state) {
  (void)state;
  RtError err;
  assert_true(rt_mkdirs(tmp("m/a/b/c"), &err));
  assert_true(rt_mkdirs(tmp("m/a/b/c"), &err));  /* already there */
  struct stat st;
  assert_int_equal(stat(tmp("m/a/b/c"), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  write_text(tmp("m/file"), "x");
  assert_false(rt_mkdirs(tmp("m/file"), &err));
  assert_error_has(err, "a file of that name is in the way");
  assert_false(rt_mkdirs(tmp("m/file/sub"), &err));
  assert_error_has(err, "cannot make folder '");
}

/* ---- progress and metrics -------------------------------------------------- */

static char *capture(void (*fn)(FILE *, bool), bool tty) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  fn(f, tty);
  fclose(f);
  return text;
}

static void two_batches_and_an_epoch(FILE *f, bool tty) {
  rt_progress(f, tty, 3, 3000, 5, 10, 1.23456, 0.25);
  rt_progress(f, tty, 3, 3000, 10, 10, 1.2, 0.5);
  RtMetric m[] = {{"train_loss", 1.2345}, {"valid_loss", 1.3456}};
  rt_epoch_line(f, tty, 3, 3000, m, 2, 12.34);
}

static void progress_off_a_terminal_prints_one_plain_line_per_epoch(void **state) {
  (void)state;
  char *text = capture(two_batches_and_an_epoch, false);
  assert_string_equal(text, "epoch 3/3000  train_loss 1.2345  valid_loss 1.3456  12.3 ms/epoch\n");
  free(text);
}

static void progress_on_a_terminal_redraws_one_line_with_a_bar(void **state) {
  (void)state;
  char *text = capture(two_batches_and_an_epoch, true);
  assert_string_equal(text,
                      "\repoch 3/3000 [############............] 5/10  loss 1.2346  0.2s\033[K"
                      "\repoch 3/3000 [########################] 10/10  loss 1.2000  0.5s\033[K"
                      "\r\033[Kepoch 3/3000  train_loss 1.2345  valid_loss 1.3456  12.3 ms/epoch\n");
  free(text);
}

static void epoch_line_shows_tiny_and_huge_losses_in_scientific_notation(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  RtMetric m[] = {{"train_loss", 2.5e-6}, {"valid_loss", 3e7}, {"valid_acc", 0}, {"x", NAN}};
  rt_epoch_line(f, false, 1, 1, m, 4, 0.04);
  fclose(f);
  assert_string_equal(text, "epoch 1/1  train_loss 2.5000e-06  valid_loss 3.0000e+07  valid_acc 0.0000  x nan  0.0 ms/epoch\n");
  free(text);
}

static void metrics_log_appends_one_json_object_per_epoch(void **state) {
  (void)state;
  const char *path = tmp("logs/run/metrics.jsonl");
  RtMetric m[] = {{"train_loss", 0.5}, {"valid_loss", NAN}};
  RtError err;
  assert_true(rt_log_jsonl(path, 1, m, 2, 12.5, &err));
  m[1].value = 0.25;
  assert_true(rt_log_jsonl(path, 2, m, 2, 10, &err));
  char *text = read_all(path, NULL);
  assert_string_equal(text,
                      "{\"epoch\":1,\"train_loss\":0.5,\"valid_loss\":null,\"ms\":12.5}\n"
                      "{\"epoch\":2,\"train_loss\":0.5,\"valid_loss\":0.25,\"ms\":10}\n");
  free(text);
  assert_false(rt_log_jsonl(tmpdir, 1, m, 2, 1, &err));
  assert_error_has(err, "cannot write the metrics log '");
}

/* ---- learning-rate schedules ----------------------------------------------- */

/* Doubles equal to 1e-12 (cmocka's float assertion rounds to float). */
#define assert_close(a, b) assert_true(fabs((a) - (b)) < 1e-12)

static void lr_schedules_follow_their_formulas(void **state) {
  (void)state;
  RtSchedule c = {.kind = RT_SCHED_CONSTANT, .lr = 0.1};
  assert_close(rt_schedule_lr(&c, 123, 10, 1000), 0.1);
  /* step_lr: x0.5 every 2 epochs of 10 updates */
  RtSchedule st = {.kind = RT_SCHED_STEP, .lr = 0.1, .gamma = 0.5, .every = 2};
  assert_close(rt_schedule_lr(&st, 19, 10, 1000), 0.1);
  assert_close(rt_schedule_lr(&st, 20, 10, 1000), 0.05);
  assert_close(rt_schedule_lr(&st, 45, 10, 1000), 0.025);
  /* cosine with warmup: linear up to lr, then half a cosine down to `to` */
  RtSchedule co = {.kind = RT_SCHED_COSINE, .lr = 1.0, .to = 0.0, .warmup = 10};
  assert_close(rt_schedule_lr(&co, 0, 10, 110), 0.1);
  assert_close(rt_schedule_lr(&co, 9, 10, 110), 1.0);
  assert_close(rt_schedule_lr(&co, 10, 10, 110), 1.0);
  assert_close(rt_schedule_lr(&co, 60, 10, 110), 0.5);
  assert_close(rt_schedule_lr(&co, 110, 10, 110), 0.0);
  /* linear decay to `to` after the warmup */
  RtSchedule li = {.kind = RT_SCHED_LINEAR, .lr = 1.0, .to = 0.5, .warmup = 0};
  assert_close(rt_schedule_lr(&li, 50, 10, 100), 0.75);
  /* noam: scale d^-0.5 min(t^-0.5, t warmup^-1.5), the peak at t = warmup */
  RtSchedule no = {.kind = RT_SCHED_NOAM, .gamma = 1.0, .every = 256, .warmup = 4000};
  double peak = rt_schedule_lr(&no, 3999, 10, 100000);
  assert_close(peak, pow(256, -0.5) * pow(4000, -0.5));
  assert_true(rt_schedule_lr(&no, 100, 10, 100000) < peak);
  assert_true(rt_schedule_lr(&no, 20000, 10, 100000) < peak);
}

/* ROC AUC as scikit-learn's roc_auc_score computes it: the fraction of
 * (positive, negative) pairs ranked right, a tie counting one half. */
/* L1 unstructured pruning: the smallest remaining entries by magnitude,
 * round(amount · remaining) of them, the first on ties; a second prune
 * takes its share of what the first left. */
static void prune_zeroes_the_smallest_remaining_weights(void **state) {
  (void)state;
  float w[8] = {0.5f, -0.1f, 0.3f, -0.2f, 0.2f, -0.9f, 0.05f, 0.7f};
  float m[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  assert_int_equal(rt_prune(w, m, 8, 0.5), 4);   /* 0.05, -0.1, then -0.2 and 0.2 (a tie: both) */
  static const float after1[8] = {0.5f, 0, 0.3f, 0, 0, -0.9f, 0, 0.7f};
  for (int i = 0; i < 8; i++) {
    assert_true(w[i] == after1[i]);
    assert_true(m[i] == (after1[i] != 0));
  }
  assert_int_equal(rt_prune(w, m, 8, 0.25), 1);  /* a quarter of the 4 left: 0.3 */
  assert_true(w[2] == 0 && m[2] == 0 && w[0] == 0.5f && w[5] == -0.9f && w[7] == 0.7f);
  float one[1] = {3}, mone[1] = {1};
  assert_int_equal(rt_prune(one, mone, 1, 0.2), 0);   /* round(0.2) of one weight: none */
  assert_true(one[0] == 3);
}

static void auc_counts_pairs_ranked_right_and_ties_as_half(void **state) {
  (void)state;
  const float s1[] = {0.1f, 0.4f, 0.35f, 0.8f}, l1[] = {0, 0, 1, 1};
  assert_true(fabs(rt_auc(s1, l1, 4) - 0.75) < 1e-12);          /* sklearn: 0.75 */
  const float s2[] = {1, 1, 0}, l2[] = {1, 0, 0};
  assert_true(fabs(rt_auc(s2, l2, 3) - 0.75) < 1e-12);          /* one pair tied, one right */
  const float s3[] = {3, 2, 1, 0}, l3[] = {1, 1, 0, 0};
  assert_true(fabs(rt_auc(s3, l3, 4) - 1.0) < 1e-12);
  const float l4[] = {0, 0, 1, 1};
  assert_true(fabs(rt_auc(s3, l4, 4) - 0.0) < 1e-12);
  const float l5[] = {1, 1, 1, 1};
  assert_true(isnan(rt_auc(s3, l5, 4)));                        /* one class only */
}

/* concat_data: tables one after another, each with its constant field. */
static void tables_append_with_constant_fields(void **state) {
  (void)state;
  RtError err = {{0}};
  RtTable t = {0}, a = {0}, b = {0};
  a.rows = 2, b.rows = 3;
  assert_true(rt_table_add_constant(&a, "x", 1.5f, &err));
  assert_true(rt_table_add_constant(&b, "x", -2.0f, &err));
  assert_false(rt_table_add_constant(&b, "x", 0.0f, &err));     /* twice */
  assert_non_null(strstr(err.msg, "already has a field 'x'"));
  assert_true(rt_table_append(&t, &a, &err));
  assert_true(rt_table_append(&t, &b, &err));
  assert_int_equal(t.rows, 5);
  const RtField *x = rt_table_field(&t, "x");
  assert_non_null(x);
  const float want[] = {1.5f, 1.5f, -2, -2, -2};
  for (int i = 0; i < 5; i++) assert_true(x->data[i] == want[i]);
  RtTable c = {0};
  c.rows = 1;
  assert_true(rt_table_add_constant(&c, "y", 0, &err));
  assert_false(rt_table_append(&t, &c, &err));                  /* no field x */
  assert_non_null(strstr(err.msg, "no field 'x'"));
  rt_table_free(&c);
  rt_table_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(auc_counts_pairs_ranked_right_and_ties_as_half),
      cmocka_unit_test(tables_append_with_constant_fields),
      cmocka_unit_test(covid_train_loads_2699_rows_of_116_features_and_a_target),
      cmocka_unit_test(csv_accepts_bom_crlf_quotes_and_blank_lines),
      cmocka_unit_test(csv_accepts_lone_cr_and_no_final_newline),
      cmocka_unit_test(csv_without_header_uses_the_first_row_as_data),
      cmocka_unit_test(csv_quoted_cell_may_hold_commas_quotes_and_newlines),
      cmocka_unit_test(csv_row_with_wrong_column_count_names_the_line_and_both_counts),
      cmocka_unit_test(csv_unselected_columns_are_counted_too),
      cmocka_unit_test(csv_bad_cell_names_line_column_header_and_text),
      cmocka_unit_test(csv_empty_nan_and_overflowing_cells_are_errors),
      cmocka_unit_test(csv_control_bytes_in_a_bad_cell_are_shown_escaped),
      cmocka_unit_test(csv_column_after_chinese_text_counts_characters),
      cmocka_unit_test(csv_unclosed_quote_points_at_its_start),
      cmocka_unit_test(csv_selection_past_the_last_column_is_an_error),
      cmocka_unit_test(csv_missing_empty_and_header_only_files_are_errors),
      cmocka_unit_test(csv_many_rows_grow_the_fields),
      cmocka_unit_test(fashion_mnist_loads_with_pixels_in_0_1_and_ten_classes),
      cmocka_unit_test(mnist_test_set_loads_and_mismatched_label_file_is_an_error),
      cmocka_unit_test(idx_plain_file_without_labels_gives_only_x),
      cmocka_unit_test(idx_gzip_file_loads_like_the_plain_one),
      cmocka_unit_test(idx_truncated_at_every_byte_is_an_error),
      cmocka_unit_test(idx_header_claiming_billions_of_images_is_truncated_not_allocated),
      cmocka_unit_test(idx_wrong_magic_extra_bytes_and_swapped_paths_are_errors),
      cmocka_unit_test(idx_corrupt_gzip_is_an_error_not_a_crash),
      cmocka_unit_test(rng_matches_the_reference_xoshiro256starstar),
      cmocka_unit_test(rng_same_seed_gives_the_same_numbers),
      cmocka_unit_test(rng_uniform_is_in_0_1_and_normal_has_mean_0_std_1),
      cmocka_unit_test(rng_below_stays_in_range_and_hits_every_value),
      cmocka_unit_test(shuffle_is_a_permutation_and_depends_on_the_seed),
      cmocka_unit_test(rng_state_survives_format_and_parse),
      cmocka_unit_test(split_of_2699_rows_holds_out_539_and_is_deterministic),
      cmocka_unit_test(split_with_no_valid_fraction_trains_on_everything),
      cmocka_unit_test(gather_copies_the_named_rows_in_order),
      cmocka_unit_test(stats_over_chosen_rows_and_normalize_all_rows),
      cmocka_unit_test(checkpoint_round_trip_is_bit_identical),
      cmocka_unit_test(saving_again_replaces_the_file_atomically),
      cmocka_unit_test(saving_bad_tensors_or_into_a_file_is_an_error),
      cmocka_unit_test(pytorch_style_file_with_tensors_out_of_order_loads),
      cmocka_unit_test(checkpoint_truncated_at_every_byte_is_an_error),
      cmocka_unit_test(checkpoint_with_corrupted_header_bytes_never_crashes),
      cmocka_unit_test(checkpoint_header_errors_name_the_byte_and_the_problem),
      cmocka_unit_test(checkpoint_header_length_beyond_the_file_is_an_error),
      cmocka_unit_test(prediction_csv_has_int_ids_and_float_values),
      cmocka_unit_test(mkdirs_makes_nested_folders_and_reports_a_file_in_the_way),
      cmocka_unit_test(progress_off_a_terminal_prints_one_plain_line_per_epoch),
      cmocka_unit_test(progress_on_a_terminal_redraws_one_line_with_a_bar),
      cmocka_unit_test(epoch_line_shows_tiny_and_huge_losses_in_scientific_notation),
      cmocka_unit_test(metrics_log_appends_one_json_object_per_epoch),
      cmocka_unit_test(lr_schedules_follow_their_formulas),
      cmocka_unit_test(prune_zeroes_the_smallest_remaining_weights),
  };
  return cmocka_run_group_tests_name("runtime", tests, setup, teardown);
}
