/*
 * test_images.c — the runtime's images through its public header: PNG
 * reading (every bit depth and colour type, made here with libpng itself),
 * writing and its round trip, truncated, corrupt and oversized files, image
 * grids and heat maps, the augmentations against small hand-computed cases
 * (4 x 4 images whose every pixel is checked), the image-folder loader on
 * folders made in a temporary directory, and the training-curve chart.
 *
 * Every test works under one temporary directory made by the group setup
 * and removed by its teardown.
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
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/runtime.h"
#include "tmpdir.h"



static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  assert_true(len >= 0);
  rewind(f);
  unsigned char *buf = malloc((size_t)len + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return buf;
}

static void make_dir(const char *path) {
  assert_int_equal(mkdir(path, 0777), 0);
}

#define assert_error_has(err, needle)                                          \
  do {                                                                         \
    if (!strstr((err).msg, (needle)))                                          \
      fail_msg("error lacks \"%s\"; it was:\n%s", (needle), (err).msg);        \
  } while (0)

#define assert_near(a, b, tol)                                                 \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(fabs(a_ - b_) <= (tol)))                                             \
      fail_msg("%s = %.9g, expected %.9g (line %d)", #a, a_, b_, __LINE__);   \
  } while (0)


static int setup(void **state) {
  (void)state;
  return tmpdir_make("images");
}

static int teardown(void **state) {
  (void)state;
  return tmpdir_remove();
}

/* ---- PNG files made with libpng directly --------------------------------- */

/* A PNG as libpng stores it: rows of `rowbytes` packed samples (16-bit
 * samples big-endian, sub-byte samples packed from the high bit). */
typedef struct {
  int w, h, depth, color, interlace;
  const unsigned char *pixels;
  const png_color *palette;
  int npalette;
  const unsigned char *trns;
  int ntrns;
} RawPng;

static void write_raw_png(const char *path, const RawPng *r) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert_non_null(info);
  if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing %s", path);
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)r->w, (png_uint_32)r->h, r->depth, r->color,
               r->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (r->palette) png_set_PLTE(png, info, r->palette, r->npalette);
  if (r->trns) png_set_tRNS(png, info, r->trns, r->ntrns, NULL);
  png_write_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  png_bytep *rows = malloc((size_t)r->h * sizeof *rows);
  assert_non_null(rows);
  for (int y = 0; y < r->h; y++) rows[y] = (png_bytep)r->pixels + (size_t)y * rowbytes;
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rows);
  assert_int_equal(fclose(f), 0);
}

/* Reads a file that must load; fails the test with the message if not. */
static RtImage must_read(const char *path, int channels) {
  RtImage im;
  RtError err;
  if (!rt_png_read(path, channels, &im, &err)) fail_msg("%s", err.msg);
  return im;
}

static float px(const RtImage *im, int c, int y, int x) {
  return im->data[((size_t)c * (size_t)im->h + (size_t)y) * (size_t)im->w + (size_t)x];
}

/* Appends a chunk (with its CRC) to buf at *n. */
static void put_chunk(unsigned char *buf, size_t *n, const char *type, const unsigned char *data,
                      uint32_t len) {
  unsigned char *p = buf + *n;
  p[0] = (unsigned char)(len >> 24), p[1] = (unsigned char)(len >> 16);
  p[2] = (unsigned char)(len >> 8), p[3] = (unsigned char)len;
  memcpy(p + 4, type, 4);
  if (len) memcpy(p + 8, data, len);
  uLong crc = crc32(0, p + 4, 4 + len);
  p[8 + len] = (unsigned char)(crc >> 24), p[9 + len] = (unsigned char)(crc >> 16);
  p[10 + len] = (unsigned char)(crc >> 8), p[11 + len] = (unsigned char)crc;
  *n += 12 + len;
}

/* A file with a valid IHDR claiming w x h 8-bit gray pixels, then a few
 * bytes of IDAT: all a "PNG bomb" needs to make a reader allocate. */
static void write_claim(const char *path, uint32_t w, uint32_t h) {
  unsigned char buf[128], ihdr[13] = {0}, idat[4] = {0x78, 0x9c, 0x03, 0x00};
  size_t n = 8;
  memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
  for (int i = 0; i < 4; i++) {
    ihdr[i] = (unsigned char)(w >> (24 - 8 * i));
    ihdr[4 + i] = (unsigned char)(h >> (24 - 8 * i));
  }
  ihdr[8] = 8;  /* depth 8, colour type 0 (gray) */
  put_chunk(buf, &n, "IHDR", ihdr, 13);
  put_chunk(buf, &n, "IDAT", idat, 4);
  put_chunk(buf, &n, "IEND", NULL, 0);
  write_bytes(path, buf, n);
}

/* The offset of the first chunk of `type` in a PNG file, or 0. */
static size_t find_chunk(const unsigned char *b, size_t n, const char *type) {
  for (size_t pos = 8; pos + 12 <= n;) {
    uint32_t len = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 | (uint32_t)b[pos + 2] << 8 | b[pos + 3];
    if (!memcmp(b + pos + 4, type, 4)) return pos;
    pos += 12 + (size_t)len;
  }
  return 0;
}

/* Recomputes the CRC of the chunk at `at`. */
static void fix_crc(unsigned char *b, size_t at) {
  uint32_t len = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
  uLong crc = crc32(0, b + at + 4, 4 + len);
  unsigned char *p = b + at + 8 + len;
  p[0] = (unsigned char)(crc >> 24), p[1] = (unsigned char)(crc >> 16);
  p[2] = (unsigned char)(crc >> 8), p[3] = (unsigned char)crc;
}

/* ---- reading and writing ------------------------------------------------- */

static void png_gray_and_rgb_round_trip_exactly_in_8_bits(void **state) {
  (void)state;
  float g[15], rgb[3 * 12];
  for (int i = 0; i < 15; i++) g[i] = (float)(i * 17) / 255.0f;
  for (int i = 0; i < 36; i++) rgb[i] = (float)(i * 7) / 255.0f;
  RtError err;
  if (!rt_png_write(tmp("g.png"), g, 1, 3, 5, &err)) fail_msg("%s", err.msg);
  if (!rt_png_write(tmp("rgb.png"), rgb, 3, 3, 4, &err)) fail_msg("%s", err.msg);
  RtImage a = must_read(tmp("g.png"), 0), b = must_read(tmp("rgb.png"), 0);
  assert_int_equal(a.c, 1);
  assert_int_equal(a.h, 3);
  assert_int_equal(a.w, 5);
  for (int i = 0; i < 15; i++) assert_true(a.data[i] == g[i]);
  assert_int_equal(b.c, 3);
  assert_int_equal(b.h, 3);
  assert_int_equal(b.w, 4);
  for (int i = 0; i < 36; i++) assert_true(b.data[i] == rgb[i]);
  rt_image_free(&a);
  rt_image_free(&b);
  assert_int_equal(access(tmp("g.png.tmp"), F_OK), -1);
}

static void png_read_converts_between_gray_and_rgb(void **state) {
  (void)state;
  /* one pixel each: red, green, blue, white */
  float rgb[12] = {1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1};
  RtError err;
  if (!rt_png_write(tmp("c.png"), rgb, 3, 1, 4, &err)) fail_msg("%s", err.msg);
  RtImage l = must_read(tmp("c.png"), 1);
  assert_int_equal(l.c, 1);
  assert_near(l.data[0], 0.299, 1e-6);
  assert_near(l.data[1], 0.587, 1e-6);
  assert_near(l.data[2], 0.114, 1e-6);
  assert_near(l.data[3], 1.0, 1e-6);
  rt_image_free(&l);
  float g[2] = {0.2f, 0.8f};
  if (!rt_png_write(tmp("g2.png"), g, 1, 1, 2, &err)) fail_msg("%s", err.msg);
  RtImage c = must_read(tmp("g2.png"), 3);
  assert_int_equal(c.c, 3);
  for (int k = 0; k < 3; k++) {
    assert_true(px(&c, k, 0, 0) == 51.0f / 255.0f);
    assert_true(px(&c, k, 0, 1) == 204.0f / 255.0f);
  }
  rt_image_free(&c);
}

static void png_16_bit_files_keep_their_precision(void **state) {
  (void)state;
  const unsigned char g16[] = {0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0xFF, 0xFF};
  write_raw_png(tmp("g16.png"), &(RawPng){4, 1, 16, PNG_COLOR_TYPE_GRAY, 0, g16, NULL, 0, NULL, 0});
  RtImage a = must_read(tmp("g16.png"), 0);
  assert_int_equal(a.c, 1);
  assert_int_equal(a.w, 4);
  assert_true(a.data[0] == 0.0f);
  assert_near(a.data[1], 1.0 / 65535, 1e-9);
  assert_near(a.data[2], 32768.0 / 65535, 1e-7);
  assert_near(a.data[3], 1.0, 1e-7);
  assert_true(a.data[1] > 0 && a.data[1] < 1.0f / 255.0f);  /* not rounded to 8 bits */
  rt_image_free(&a);
  /* RGBA, 16 bits: alpha is dropped */
  const unsigned char rgba[] = {0x12, 0x34, 0xFF, 0xFF, 0x00, 0x00, 0x80, 0x00};
  write_raw_png(tmp("rgba16.png"),
                &(RawPng){1, 1, 16, PNG_COLOR_TYPE_RGB_ALPHA, 0, rgba, NULL, 0, NULL, 0});
  RtImage b = must_read(tmp("rgba16.png"), 0);
  assert_int_equal(b.c, 3);
  assert_near(b.data[0], 0x1234 / 65535.0, 1e-7);
  assert_near(b.data[1], 1.0, 1e-7);
  assert_true(b.data[2] == 0.0f);
  rt_image_free(&b);
}

static void png_palette_low_depth_alpha_and_interlaced_files_read(void **state) {
  (void)state;
  /* 2-bit palette, 4 x 2, entry 0 transparent: indices 0 1 2 3 / 3 2 1 0 */
  const png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  const unsigned char idx[] = {0x1B, 0xE4}, trns[] = {0};
  write_raw_png(tmp("pal.png"), &(RawPng){4, 2, 2, PNG_COLOR_TYPE_PALETTE, 0, idx, pal, 4, trns, 1});
  RtImage p = must_read(tmp("pal.png"), 0);
  assert_int_equal(p.c, 3);
  assert_int_equal(p.h, 2);
  assert_int_equal(p.w, 4);
  const int order[2][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}};
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 4; x++) {
      const png_color *e = &pal[order[y][x]];
      assert_true(px(&p, 0, y, x) == e->red / 255.0f);
      assert_true(px(&p, 1, y, x) == e->green / 255.0f);
      assert_true(px(&p, 2, y, x) == e->blue / 255.0f);
    }
  rt_image_free(&p);
  /* 1-bit gray: 1 0 1 1 0 0 0 0 */
  const unsigned char bits[] = {0xB0};
  write_raw_png(tmp("g1.png"), &(RawPng){8, 1, 1, PNG_COLOR_TYPE_GRAY, 0, bits, NULL, 0, NULL, 0});
  RtImage b = must_read(tmp("g1.png"), 0);
  const float want[8] = {1, 0, 1, 1, 0, 0, 0, 0};
  for (int i = 0; i < 8; i++) assert_true(b.data[i] == want[i]);
  rt_image_free(&b);
  /* gray + alpha: the alpha is dropped */
  const unsigned char ga[] = {100, 0, 200, 255};
  write_raw_png(tmp("ga.png"), &(RawPng){2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, ga, NULL, 0, NULL, 0});
  RtImage a = must_read(tmp("ga.png"), 0);
  assert_int_equal(a.c, 1);
  assert_true(a.data[0] == 100 / 255.0f && a.data[1] == 200 / 255.0f);
  rt_image_free(&a);
  /* Adam7 interlacing gives the same pixels as a plain file */
  unsigned char rgb[7 * 9 * 3];
  for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (unsigned char)(i * 37 + 11);
  RawPng raw = {9, 7, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb, NULL, 0, NULL, 0};
  write_raw_png(tmp("plain.png"), &raw);
  raw.interlace = PNG_INTERLACE_ADAM7;
  write_raw_png(tmp("adam7.png"), &raw);
  RtImage u = must_read(tmp("plain.png"), 0), v = must_read(tmp("adam7.png"), 0);
  assert_int_equal(v.w, 9);
  assert_int_equal(v.h, 7);
  assert_memory_equal(u.data, v.data, 3 * 7 * 9 * sizeof(float));
  assert_true(px(&u, 1, 2, 3) == rgb[(2 * 9 + 3) * 3 + 1] / 255.0f);
  rt_image_free(&u);
  rt_image_free(&v);
}

static void png_truncated_at_every_byte_is_an_error_naming_the_file(void **state) {
  (void)state;
  float x[3 * 5 * 6];
  for (int i = 0; i < 90; i++) x[i] = (float)((i * 29) % 256) / 255.0f;
  RtError err;
  if (!rt_png_write(tmp("t.png"), x, 3, 5, 6, &err)) fail_msg("%s", err.msg);
  size_t n;
  unsigned char *b = read_all(tmp("t.png"), &n);
  const char *cut = tmp("cut.png");
  for (size_t k = 0; k < n; k++) {
    write_bytes(cut, b, k);
    RtImage im;
    if (rt_png_read(cut, 0, &im, &err)) fail_msg("a file cut to %zu of %zu bytes loaded", k, n);
    assert_error_has(err, cut);
    assert_error_has(err, k < 8 ? "is not a PNG file" : "is truncated");
    assert_null(im.data);
  }
  free(b);
}

static void png_corrupt_files_and_other_formats_are_errors_naming_the_file(void **state) {
  (void)state;
  float x[16] = {0};
  RtError err;
  RtImage im;
  if (!rt_png_write(tmp("ok.png"), x, 1, 4, 4, &err)) fail_msg("%s", err.msg);
  size_t n;
  unsigned char *b = read_all(tmp("ok.png"), &n);
  size_t ihdr = find_chunk(b, n, "IHDR"), idat = find_chunk(b, n, "IDAT");
  assert_true(ihdr > 0 && idat > 0);
  /* a changed byte in the header: its CRC no longer matches */
  b[ihdr + 8 + 3] ^= 0x01;
  write_bytes(tmp("crc.png"), b, n);
  assert_false(rt_png_read(tmp("crc.png"), 0, &im, &err));
  assert_error_has(err, tmp("crc.png"));
  assert_error_has(err, "IHDR: CRC error");
  b[ihdr + 8 + 3] ^= 0x01;
  /* a changed byte of compressed data, with a correct CRC: zlib sees a bad
   * stream header */
  b[idat + 8] ^= 0x55;
  fix_crc(b, idat);
  write_bytes(tmp("zlib.png"), b, n);
  assert_false(rt_png_read(tmp("zlib.png"), 0, &im, &err));
  assert_error_has(err, tmp("zlib.png"));
  assert_error_has(err, "libpng says");
  free(b);
  /* other formats, an empty file, text, a missing file */
  write_bytes(tmp("photo.png"), "\xFF\xD8\xFF\xE0\0\x10JFIF", 10);
  assert_false(rt_png_read(tmp("photo.png"), 0, &im, &err));
  assert_error_has(err, tmp("photo.png"));
  assert_error_has(err, "JPEG");
  write_bytes(tmp("empty.png"), "", 0);
  assert_false(rt_png_read(tmp("empty.png"), 0, &im, &err));
  assert_error_has(err, "is not a PNG file");
  write_bytes(tmp("text.png"), "hello, world\n", 13);
  assert_false(rt_png_read(tmp("text.png"), 3, &im, &err));
  assert_error_has(err, "is not a PNG file");
  assert_false(rt_png_read(tmp("missing.png"), 0, &im, &err));
  assert_error_has(err, "cannot open image");
  assert_error_has(err, tmp("missing.png"));
}

static void png_header_beyond_the_limits_is_refused_before_decoding(void **state) {
  (void)state;
  RtImage im;
  RtError err;
  /* wider than libpng's user limit (8192 a side) */
  write_claim(tmp("wide.png"), 10000, 10);
  assert_false(rt_png_read(tmp("wide.png"), 0, &im, &err));
  assert_error_has(err, tmp("wide.png"));
  assert_error_has(err, "is 10000 x 10 pixels");
  assert_error_has(err, "at most 8192 pixels a side");
  /* within 8192 a side but 25 megapixels: a bomb of a few bytes */
  write_claim(tmp("bomb.png"), 5000, 5000);
  assert_false(rt_png_read(tmp("bomb.png"), 0, &im, &err));
  assert_error_has(err, "is 5000 x 5000 pixels");
  assert_error_has(err, "16777216 pixels in all");
  /* the largest a side allowed, in few pixels, is read (and truncated here) */
  write_claim(tmp("tall.png"), 1, 8192);
  assert_false(rt_png_read(tmp("tall.png"), 0, &im, &err));
  assert_null(strstr(err.msg, "larger than"));
  /* 0 x 0 is invalid in PNG itself */
  write_claim(tmp("zero.png"), 0, 0);
  assert_false(rt_png_read(tmp("zero.png"), 0, &im, &err));
  assert_error_has(err, tmp("zero.png"));
  assert_error_has(err, "(Image height is zero in IHDR)");
}

static void png_write_clamps_rounds_and_replaces_atomically(void **state) {
  (void)state;
  float x[6] = {-1.0f, NAN, 2.0f, 0.5f, 1.0f / 510.0f, 0.999f};
  RtError err;
  if (!rt_png_write(tmp("sub/dir/clamp.png"), x, 1, 2, 3, &err)) fail_msg("%s", err.msg);
  RtImage im = must_read(tmp("sub/dir/clamp.png"), 0);
  const float want[6] = {0, 0, 1, 128 / 255.0f, 1 / 255.0f, 1};
  for (int i = 0; i < 6; i++) assert_true(im.data[i] == want[i]);
  rt_image_free(&im);
  /* writing again replaces the file and leaves no temporary file */
  float y[6] = {1, 1, 1, 1, 1, 1};
  if (!rt_png_write(tmp("sub/dir/clamp.png"), y, 1, 2, 3, &err)) fail_msg("%s", err.msg);
  im = must_read(tmp("sub/dir/clamp.png"), 0);
  assert_true(im.data[0] == 1.0f);
  rt_image_free(&im);
  assert_int_equal(access(tmp("sub/dir/clamp.png.tmp"), F_OK), -1);
  /* a file where the folder should be */
  write_bytes(tmp("afile"), "x", 1);
  assert_false(rt_png_write(tmp("afile/x.png"), y, 1, 2, 3, &err));
  assert_error_has(err, "afile");
  assert_false(rt_png_write(tmp("huge.png"), y, 1, 9000, 1, &err));
  assert_error_has(err, "huge.png");
}

static void png_grid_has_the_geometry_of_torchvision_make_grid(void **state) {
  (void)state;
  /* 5 RGB images of 2 x 3, 3 a row, padding 1: 13 x 7 pixels */
  float x[5 * 3 * 2 * 3];
  for (int k = 0; k < 5; k++)
    for (int i = 0; i < 18; i++) x[k * 18 + i] = (float)(k + 1) / 5.0f;
  x[4 * 18 + 5] = 0.0f;  /* image 4, red, bottom-right pixel */
  RtError err;
  if (!rt_png_grid(tmp("grid.png"), x, 5, 3, 2, 3, 3, 1, &err)) fail_msg("%s", err.msg);
  RtImage g = must_read(tmp("grid.png"), 0);
  assert_int_equal(g.c, 3);
  assert_int_equal(g.w, 3 * (3 + 1) + 1);
  assert_int_equal(g.h, 2 * (2 + 1) + 1);
  for (int k = 0; k < 6; k++) {
    int top = k / 3 * 3 + 1, left = k % 3 * 4 + 1;
    float v = k < 5 ? (float)((k + 1) * 51) / 255.0f : 0.0f;  /* the 6th place is empty */
    assert_true(px(&g, 1, top, left) == v);
    assert_true(px(&g, 2, top + 1, left + 2) == v);
    assert_true(px(&g, 0, top - 1, left) == 0.0f);  /* padding */
    assert_true(px(&g, 0, top, left - 1) == 0.0f);
  }
  assert_true(px(&g, 0, 3 + 1 + 1, 4 + 1 + 2) == 0.0f);
  assert_true(px(&g, 1, 3 + 1 + 1, 4 + 1 + 2) == 1.0f);
  rt_image_free(&g);
  /* gray stays gray; cols <= 0 is 8 a row; fewer images than cols: one row */
  if (!rt_png_grid(tmp("g8.png"), x, 3, 1, 2, 3, 0, 2, &err)) fail_msg("%s", err.msg);
  g = must_read(tmp("g8.png"), 0);
  assert_int_equal(g.c, 1);
  assert_int_equal(g.w, 3 * (3 + 2) + 2);
  assert_int_equal(g.h, 2 + 2 + 2);
  rt_image_free(&g);
  assert_false(rt_png_grid(tmp("none.png"), x, 0, 3, 2, 3, 3, 1, &err));
  assert_error_has(err, "no images");
  assert_false(rt_png_grid(tmp("big.png"), x, 5, 1, 4000, 3, 1, 1, &err));
  assert_error_has(err, "draw fewer or smaller images");
}

static void png_heatmap_grid_scales_each_map_and_colours_it_inferno(void **state) {
  (void)state;
  /* two 2 x 2 maps on different scales, and a constant one */
  float maps[12] = {0, 1, 2, 3, -50, 50, 0, 50, 7, 7, 7, 7};
  RtError err;
  if (!rt_png_heatmap_grid(tmp("heat.png"), maps, 3, 2, 2, 3, 0, &err)) fail_msg("%s", err.msg);
  RtImage g = must_read(tmp("heat.png"), 0);
  assert_int_equal(g.c, 3);
  assert_int_equal(g.w, 6);
  assert_int_equal(g.h, 2);
  float lo[3], hi[3], mid[3];
  rt_inferno(0, lo);
  rt_inferno(1, hi);
  rt_inferno(0.5f, mid);
  for (int k = 0; k < 3; k++) {
    assert_near(px(&g, k, 0, 0), lo[k], 0.51 / 255);   /* map 0's minimum */
    assert_near(px(&g, k, 1, 1), hi[k], 0.51 / 255);   /* map 0's maximum */
    assert_near(px(&g, k, 0, 2), lo[k], 0.51 / 255);   /* map 1: -50 */
    assert_near(px(&g, k, 1, 2), mid[k], 0.51 / 255);  /* map 1: 0, half way */
    assert_near(px(&g, k, 0, 3), hi[k], 0.51 / 255);
    assert_near(px(&g, k, 1, 5), lo[k], 0.51 / 255);   /* constant: all minimum */
  }
  rt_image_free(&g);
  /* inferno: black to pale yellow, red in the middle, clamped */
  assert_true(lo[0] < 0.01f && lo[1] < 0.01f && lo[2] < 0.02f);
  assert_true(hi[0] > 0.98f && hi[1] > 0.99f && hi[2] > 0.6f);
  assert_true(mid[0] > 0.7f && mid[1] < 0.25f);
  float c[3];
  rt_inferno(-3, c);
  assert_true(c[0] == lo[0]);
  rt_inferno(NAN, c);
  assert_true(c[0] == lo[0]);
  rt_inferno(7, c);
  assert_true(c[2] == hi[2]);
}

/* ---- augmentation -------------------------------------------------------- */

/* A batch of n images [c, 4, 4] holding 1, 2, 3, ... (no zeros, so padding
 * shows). */
static float *counting(int64_t n, int c, int h, int w) {
  size_t len = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
  float *x = malloc(len * sizeof *x);
  assert_non_null(x);
  for (size_t i = 0; i < len; i++) x[i] = (float)(i + 1);
  return x;
}

/* x[k, ch, y, x] of a [n, c, h, w] batch, 0 outside the image. */
static float at(const float *x, int c, int h, int w, int64_t k, int ch, int64_t y, int64_t xx) {
  if (y < 0 || y >= h || xx < 0 || xx >= w) return 0;
  return x[(((size_t)k * (size_t)c + (size_t)ch) * (size_t)h + (size_t)y) * (size_t)w + (size_t)xx];
}

static void hflip_reverses_each_row_when_drawn_and_depends_only_on_the_rng(void **state) {
  (void)state;
  float *x = counting(6, 2, 4, 4), *y = counting(6, 2, 4, 4);
  RtRng r, r2;
  rt_rng_seed(&r, 7);
  r2 = r;
  rt_aug_random_hflip(&r, y, 6, 2, 4, 4, 0.5f);
  int flipped = 0;
  for (int k = 0; k < 6; k++) {
    bool f = rt_rng_uniform(&r2) < 0.5f;
    flipped += f;
    for (int ch = 0; ch < 2; ch++)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
          assert_true(at(y, 2, 4, 4, k, ch, i, j) == at(x, 2, 4, 4, k, ch, i, f ? 3 - j : j));
  }
  assert_true(flipped > 0 && flipped < 6);
  assert_memory_equal(&r, &r2, sizeof r);  /* one draw per image */
  /* p = 1 flips all, p = 0 none, and both still draw once per image */
  float *z = counting(3, 1, 4, 4);
  rt_rng_seed(&r, 1);
  rt_aug_random_hflip(&r, z, 3, 1, 4, 4, 1.0f);
  assert_true(z[0] == 4 && z[1] == 3 && z[3] == 1 && z[4] == 8 && z[47] == 45);
  rt_rng_seed(&r2, 1);
  rt_aug_random_hflip(&r2, z, 3, 1, 4, 4, 0.0f);
  assert_true(z[0] == 4);
  assert_memory_equal(&r, &r2, sizeof r);
  free(x);
  free(y);
  free(z);
}

static void rotate_by_0_is_identity_and_by_90_is_rot90(void **state) {
  (void)state;
  float *x = counting(2, 3, 4, 4), out[2 * 3 * 16];
  rt_aug_rotate(x, 2, 3, 4, 4, 0, out);
  assert_memory_equal(out, x, sizeof out);
  /* counter-clockwise, as np.rot90: out[i][j] = x[j][n-1-i] */
  rt_aug_rotate(x, 2, 3, 4, 4, 90, out);
  for (int k = 0; k < 2; k++)
    for (int ch = 0; ch < 3; ch++)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          assert_true(at(out, 3, 4, 4, k, ch, i, j) == at(x, 3, 4, 4, k, ch, j, 3 - i));
        }
  rt_aug_rotate(x, 2, 3, 4, 4, -90, out);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) assert_true(at(out, 3, 4, 4, 1, 2, i, j) == at(x, 3, 4, 4, 1, 2, 3 - j, i));
  rt_aug_rotate(x, 2, 3, 4, 4, 540, out);  /* 180 */
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      assert_true(at(out, 3, 4, 4, 0, 1, i, j) == at(x, 3, 4, 4, 0, 1, 3 - i, 3 - j));
  free(x);
}

static void rotate_by_45_fills_the_corners_with_zeros(void **state) {
  (void)state;
  float x[64], out[64];
  for (int i = 0; i < 64; i++) x[i] = 1.0f;
  rt_aug_rotate(x, 1, 1, 8, 8, 45, out);
  /* a corner's source is 1.45 pixels outside the image: zero */
  assert_true(out[0] == 0 && out[7] == 0 && out[56] == 0 && out[63] == 0);
  /* the middle stays 1 (bilinear weights sum to 1) and nothing leaves [0, 1] */
  assert_near(out[3 * 8 + 3], 1.0, 1e-6);
  assert_near(out[4 * 8 + 4], 1.0, 1e-6);
  for (int i = 0; i < 64; i++) assert_true(out[i] >= 0 && out[i] <= 1.0f + 1e-6f);
  /* a single bright pixel right of centre ends up above it at 90 degrees and
   * moves only part of the way at 45 */
  float d[25] = {0}, o[25];
  d[2 * 5 + 4] = 1;
  rt_aug_rotate(d, 1, 1, 5, 5, 90, o);
  assert_true(o[0 * 5 + 2] == 1);
  rt_aug_rotate(d, 1, 1, 5, 5, 45, o);
  float s = 0;
  for (int i = 0; i < 25; i++) s += o[i];
  assert_true(s > 0.5f);
  assert_true(o[1 * 5 + 3] > 0.3f);  /* (dx, dy) = (2, 0) -> (1.41, -1.41) */
}

static void random_rotation_is_seeded_and_bounded(void **state) {
  (void)state;
  float *x = counting(4, 1, 6, 6), a[4 * 36], b[4 * 36], c[4 * 36];
  RtRng r, r2;
  rt_rng_seed(&r, 3);
  r2 = r;
  rt_aug_random_rotation(&r, x, 4, 1, 6, 6, 0, a);  /* 0 degrees: identity */
  assert_memory_equal(a, x, sizeof a);
  rt_aug_random_rotation(&r, x, 4, 1, 6, 6, 30, a);
  RtRng again = r2;
  for (int k = 0; k < 4; k++) (void)rt_rng_uniform(&again);
  rt_aug_random_rotation(&again, x, 4, 1, 6, 6, 30, b);
  assert_memory_equal(a, b, sizeof a);  /* same state: same images */
  /* each image is rotate() by -30 + 60 u */
  for (int k = 0; k < 4; k++) {
    RtRng s = r2;
    for (int i = 0; i < 4 + k; i++) (void)rt_rng_uniform(&s);
    double deg = -30.0 + 60.0 * (double)rt_rng_uniform(&s);
    assert_true(deg >= -30 && deg <= 30);
    rt_aug_rotate(x + k * 36, 1, 1, 6, 6, deg, c);
    assert_memory_equal(c, a + k * 36, 36 * sizeof(float));
  }
  free(x);
}

static void random_crop_takes_the_window_the_rng_chose(void **state) {
  (void)state;
  /* crop(4, padding 1) of 4 x 4: offsets 0..2 each way */
  enum { N = 40 };
  float *x = counting(N, 2, 4, 4), *out = malloc(N * 2 * 16 * sizeof(float));
  assert_non_null(out);
  RtRng r, r2;
  rt_rng_seed(&r, 11);
  r2 = r;
  rt_aug_random_crop(&r, x, N, 2, 4, 4, 4, 1, out);
  bool seen[3][3] = {{false}};
  for (int k = 0; k < N; k++) {
    int top = (int)rt_rng_below(&r2, 3), left = (int)rt_rng_below(&r2, 3);
    seen[top][left] = true;
    for (int ch = 0; ch < 2; ch++)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
          assert_true(at(out, 2, 4, 4, k, ch, i, j) == at(x, 2, 4, 4, k, ch, i + top - 1, j + left - 1));
  }
  assert_memory_equal(&r, &r2, sizeof r);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) assert_true(seen[i][j]);
  /* by hand: window (0, 0) of the padded image is a zero row and column,
   * then the image's top-left 3 x 3 */
  float one[16], o[16];
  for (int i = 0; i < 16; i++) one[i] = (float)(i + 1);
  for (uint64_t seed = 0;; seed++) {
    rt_rng_seed(&r, seed);
    r2 = r;
    if (rt_rng_below(&r2, 3) != 0 || rt_rng_below(&r2, 3) != 0) continue;
    rt_aug_random_crop(&r, one, 1, 1, 4, 4, 4, 1, o);
    const float want[16] = {0, 0, 0, 0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11};
    assert_memory_equal(o, want, sizeof want);
    break;
  }
  /* smaller windows: crop(2, padding 0) stays inside the image */
  rt_rng_seed(&r, 5);
  rt_aug_random_crop(&r, x, N, 2, 4, 4, 2, 0, out);
  for (int k = 0; k < N * 2 * 4; k++) assert_true(out[k] != 0);
  free(x);
  free(out);
}

static void random_crop_larger_than_the_padded_image_centres_it(void **state) {
  (void)state;
  /* crop(32, padding 2) of 28 x 28: the image centred in 32 x 32 zeros */
  float *x = counting(2, 1, 28, 28), *a = malloc(2 * 32 * 32 * sizeof(float)),
        *b = malloc(2 * 32 * 32 * sizeof(float));
  assert_non_null(a);
  assert_non_null(b);
  for (uint64_t seed = 1; seed <= 3; seed++) {
    RtRng r;
    rt_rng_seed(&r, seed);
    rt_aug_random_crop(&r, x, 2, 1, 28, 28, 32, 2, a);
    for (int k = 0; k < 2; k++)
      for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++)
          assert_true(at(a, 1, 32, 32, k, 0, i, j) == at(x, 1, 28, 28, k, 0, i - 2, j - 2));
  }
  /* padding 0: padded further, the same picture; the center crop agrees */
  RtRng r;
  rt_rng_seed(&r, 9);
  rt_aug_random_crop(&r, x, 2, 1, 28, 28, 32, 0, b);
  assert_memory_equal(a, b, 2 * 32 * 32 * sizeof(float));
  rt_aug_center_crop(x, 2, 1, 28, 28, 32, b);
  assert_memory_equal(a, b, 2 * 32 * 32 * sizeof(float));
  /* an odd difference: the extra row and column go after the image */
  float four[16], o[25];
  for (int i = 0; i < 16; i++) four[i] = (float)(i + 1);
  rt_aug_random_crop(&r, four, 1, 1, 4, 4, 5, 0, o);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 5; j++) assert_true(o[i * 5 + j] == at(four, 1, 4, 4, 0, 0, i, j));
  free(x);
  free(a);
  free(b);
}

static void center_crop_rounds_half_to_even_as_torchvision(void **state) {
  (void)state;
  float *x = counting(1, 1, 7, 7), o[16];
  /* 7 -> 4: (7 - 4) / 2 = 1.5 rounds to 2 */
  rt_aug_center_crop(x, 1, 1, 7, 7, 4, o);
  assert_true(o[0] == at(x, 1, 7, 7, 0, 0, 2, 2));
  /* 7 -> 6: 0.5 rounds to 0 */
  float o6[36];
  rt_aug_center_crop(x, 1, 1, 7, 7, 6, o6);
  assert_true(o6[0] == x[0] && o6[35] == at(x, 1, 7, 7, 0, 0, 5, 5));
  /* 7 -> 3: 2 */
  float o3[9];
  rt_aug_center_crop(x, 1, 1, 7, 7, 3, o3);
  assert_true(o3[0] == at(x, 1, 7, 7, 0, 0, 2, 2) && o3[8] == at(x, 1, 7, 7, 0, 0, 4, 4));
  free(x);
}

static void resize_matches_pil_bilinear_by_hand(void **state) {
  (void)state;
  RtError err;
  /* enlarging 1 x 2 -> 1 x 4: plain bilinear, align_corners=False */
  float up_in[2] = {0, 1}, up[4];
  assert_true(rt_aug_resize(up_in, 1, 1, 1, 2, 1, 4, up, &err));
  const float want_up[4] = {0, 0.25f, 0.75f, 1};
  for (int i = 0; i < 4; i++) assert_near(up[i], want_up[i], 1e-6);
  /* shrinking 1 x 4 -> 1 x 2: a triangle two pixels wide, weights 3 3 1 / 7
   * and 1 3 3 / 7 (PIL gives 0.714 and 2.286) */
  float dn_in[4] = {0, 1, 2, 3}, dn[2];
  assert_true(rt_aug_resize(dn_in, 1, 1, 1, 4, 1, 2, dn, &err));
  assert_near(dn[0], 5.0 / 7, 1e-6);
  assert_near(dn[1], 16.0 / 7, 1e-6);
  /* 2 x 2 -> 4 x 4 is separable: the 1-D weights in each direction */
  float sq[4] = {0, 1, 2, 3}, big[16];
  assert_true(rt_aug_resize(sq, 1, 1, 2, 2, 4, 4, big, &err));
  const float wt[4][2] = {{1, 0}, {0.75f, 0.25f}, {0.25f, 0.75f}, {0, 1}};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      double v = 0;
      for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) v += wt[i][a] * wt[j][b] * sq[a * 2 + b];
      assert_near(big[i * 4 + j], v, 1e-6);
    }
  /* the same size copies; a constant stays constant; channels are separate */
  float *x = counting(2, 3, 4, 4), same[96];
  assert_true(rt_aug_resize(x, 2, 3, 4, 4, 4, 4, same, &err));
  assert_memory_equal(same, x, sizeof same);
  float cst[2 * 5 * 7], r[2 * 3 * 11];
  for (int i = 0; i < 35; i++) cst[i] = 0.25f, cst[35 + i] = 0.75f;
  assert_true(rt_aug_resize(cst, 1, 2, 5, 7, 3, 11, r, &err));
  for (int i = 0; i < 33; i++) {
    assert_near(r[i], 0.25, 1e-6);
    assert_near(r[33 + i], 0.75, 1e-6);
  }
  free(x);
}

static void channel_stats_and_normalize_are_per_channel(void **state) {
  (void)state;
  /* 2 images [2, 1, 2]: channel 0 holds 1 2 / 3 4, channel 1 holds 10 */
  float x[8] = {1, 2, 10, 10, 3, 4, 10, 10}, mean[2], std[2];
  rt_aug_channel_stats(x, 2, 2, 1, 2, mean, std);
  assert_near(mean[0], 2.5, 1e-6);
  assert_near(std[0], sqrt(1.25), 1e-6);
  assert_near(mean[1], 10, 1e-6);
  assert_near(std[1], 0, 1e-6);
  rt_aug_normalize(x, 2, 2, 1, 2, mean, std);
  assert_near(x[0], -1.5 / sqrt(1.25), 1e-6);
  assert_near(x[5], 1.5 / sqrt(1.25), 1e-6);
  assert_true(x[2] == 0 && x[7] == 0);  /* constant channel: only centred */
  const float m[1] = {0.5f}, s[1] = {0.5f};
  float y[2] = {0, 1};
  rt_aug_normalize(y, 1, 1, 1, 2, m, s);
  assert_true(y[0] == -1 && y[1] == 1);
}

/* ---- image folders ------------------------------------------------------- */

static void write_solid(const char *path, int c, int h, int w, const float *color) {
  float *x = malloc((size_t)c * (size_t)h * (size_t)w * sizeof *x);
  assert_non_null(x);
  for (int k = 0; k < c; k++)
    for (int i = 0; i < h * w; i++) x[k * h * w + i] = color[k];
  RtError err;
  if (!rt_png_write(path, x, c, h, w, &err)) fail_msg("%s", err.msg);
  free(x);
}

static const float RED[3] = {1, 0, 0}, HALF[1] = {0.5f}, BLUE[3] = {0, 0, 1};

static void image_folder_with_class_subfolders_labels_by_sorted_name(void **state) {
  (void)state;
  make_dir(tmp("cls"));
  make_dir(tmp("cls/dog"));
  make_dir(tmp("cls/cat"));
  make_dir(tmp("cls/.ipynb_checkpoints"));
  write_solid(tmp("cls/cat/b.png"), 1, 5, 5, HALF);
  write_solid(tmp("cls/cat/a.png"), 3, 2, 3, RED);
  write_solid(tmp("cls/dog/c.PNG"), 3, 4, 4, BLUE);
  write_bytes(tmp("cls/cat/notes.txt"), "x", 1);
  RtImageSet s;
  RtError err;
  if (!rt_load_image_folder(tmp("cls"), 4, false, &s, &err)) fail_msg("%s", err.msg);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.c, 3);
  assert_int_equal(s.h, 4);
  assert_int_equal(s.w, 4);
  assert_int_equal(s.nclasses, 2);
  assert_string_equal(s.classes[0], "cat");
  assert_string_equal(s.classes[1], "dog");
  assert_string_equal(s.files[0], "cat/a.png");
  assert_string_equal(s.files[1], "cat/b.png");
  assert_string_equal(s.files[2], "dog/c.PNG");
  assert_int_equal(s.labels[0], 0);
  assert_int_equal(s.labels[1], 0);
  assert_int_equal(s.labels[2], 1);
  for (int i = 0; i < 16; i++) {
    assert_near(s.data[i], 1, 1e-6);            /* a: red, resized from 3 x 2 */
    assert_near(s.data[16 + i], 0, 1e-6);
    assert_near(s.data[48 + 32 + i], 128 / 255.0, 1e-6);  /* b: gray made RGB */
    assert_near(s.data[96 + 32 + i], 1, 1e-6);  /* c: blue */
  }
  rt_image_set_free(&s);
  /* gray: luminance */
  if (!rt_load_image_folder(tmp("cls"), 2, true, &s, &err)) fail_msg("%s", err.msg);
  assert_int_equal(s.c, 1);
  assert_near(s.data[0], 0.299, 1e-6);
  assert_near(s.data[4], 128 / 255.0, 1e-6);
  assert_near(s.data[8], 0.114, 1e-6);
  /* into a table for training */
  RtTable t;
  if (!rt_image_set_to_table(&s, &t, &err)) fail_msg("%s", err.msg);
  assert_null(s.data);
  assert_int_equal(t.rows, 3);
  RtField *x = rt_table_field(&t, "x"), *y = rt_table_field(&t, "y");
  assert_non_null(x);
  assert_non_null(y);
  assert_int_equal(x->rank, 3);
  assert_int_equal(x->shape[0], 1);
  assert_int_equal(x->shape[1], 2);
  assert_int_equal(x->width, 4);
  assert_true(y->data[0] == 0 && y->data[2] == 1);
  rt_table_free(&t);
  rt_image_set_free(&s);
}

static void image_folder_flat_takes_the_class_from_the_name(void **state) {
  (void)state;
  RtImageSet s;
  RtError err;
  /* numbers: the label is the number, as the food data is named */
  make_dir(tmp("food"));
  write_solid(tmp("food/3_0001.png"), 3, 3, 3, RED);
  write_solid(tmp("food/10_0002.png"), 3, 3, 3, RED);
  write_solid(tmp("food/0_0003.png"), 3, 3, 3, RED);
  write_solid(tmp("food/3_0004.png"), 3, 3, 3, RED);
  if (!rt_load_image_folder(tmp("food"), 2, false, &s, &err)) fail_msg("%s", err.msg);
  assert_int_equal(s.n, 4);
  assert_string_equal(s.files[0], "0_0003.png");
  assert_string_equal(s.files[1], "10_0002.png");
  assert_int_equal(s.labels[0], 0);
  assert_int_equal(s.labels[1], 10);
  assert_int_equal(s.labels[2], 3);
  assert_int_equal(s.labels[3], 3);
  assert_int_equal(s.nclasses, 11);
  assert_string_equal(s.classes[10], "10");
  rt_image_set_free(&s);
  /* names: sorted */
  make_dir(tmp("pets"));
  write_solid(tmp("pets/dog_1.png"), 1, 2, 2, HALF);
  write_solid(tmp("pets/cat_2.png"), 1, 2, 2, HALF);
  write_solid(tmp("pets/cat_3.png"), 1, 2, 2, HALF);
  write_solid(tmp("pets/bird_x_4.png"), 1, 2, 2, HALF);
  if (!rt_load_image_folder(tmp("pets"), 2, true, &s, &err)) fail_msg("%s", err.msg);
  assert_int_equal(s.nclasses, 3);
  assert_string_equal(s.classes[0], "bird");
  assert_string_equal(s.classes[1], "cat");
  assert_string_equal(s.classes[2], "dog");
  assert_int_equal(s.labels[0], 0);
  assert_int_equal(s.labels[1], 1);
  assert_int_equal(s.labels[2], 1);
  assert_int_equal(s.labels[3], 2);
  rt_image_set_free(&s);
  /* no prefixes: a test set without labels */
  make_dir(tmp("test"));
  write_solid(tmp("test/0002.png"), 1, 2, 2, HALF);
  write_solid(tmp("test/0001.png"), 1, 2, 2, HALF);
  if (!rt_load_image_folder(tmp("test"), 2, true, &s, &err)) fail_msg("%s", err.msg);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.nclasses, 0);
  assert_int_equal(s.labels[0], -1);
  assert_string_equal(s.files[0], "0001.png");
  RtTable t;
  if (!rt_image_set_to_table(&s, &t, &err)) fail_msg("%s", err.msg);
  assert_int_equal(t.nfields, 1);
  rt_table_free(&t);
  rt_image_set_free(&s);
}

static void image_folder_errors_name_the_folder_or_the_file(void **state) {
  (void)state;
  RtImageSet s;
  RtError err;
  assert_false(rt_load_image_folder(tmp("nope"), 4, false, &s, &err));
  assert_error_has(err, "cannot open image folder");
  assert_error_has(err, tmp("nope"));
  make_dir(tmp("empty"));
  assert_false(rt_load_image_folder(tmp("empty"), 4, false, &s, &err));
  assert_error_has(err, "holds no .png files");
  make_dir(tmp("jpegs"));
  write_bytes(tmp("jpegs/1_0001.jpg"), "\xFF\xD8\xFF", 3);
  write_bytes(tmp("jpegs/1_0002.jpg"), "\xFF\xD8\xFF", 3);
  assert_false(rt_load_image_folder(tmp("jpegs"), 4, false, &s, &err));
  assert_error_has(err, "but 2 jpg files");
  assert_error_has(err, "convert them");
  make_dir(tmp("bad"));
  write_solid(tmp("bad/1_0001.png"), 1, 2, 2, HALF);
  write_bytes(tmp("bad/1_0002.png"), "\x89PNG\r\n\x1a\n\0\0", 10);
  assert_false(rt_load_image_folder(tmp("bad"), 4, false, &s, &err));
  assert_error_has(err, tmp("bad/1_0002.png"));
  assert_error_has(err, "is truncated");
  make_dir(tmp("mixed"));
  make_dir(tmp("mixed/cat"));
  write_solid(tmp("mixed/cat/a.png"), 1, 2, 2, HALF);
  write_solid(tmp("mixed/b.png"), 1, 2, 2, HALF);
  assert_false(rt_load_image_folder(tmp("mixed"), 4, false, &s, &err));
  assert_error_has(err, "both .png files (b.png) and subfolders (cat)");
  make_dir(tmp("hollow"));
  make_dir(tmp("hollow/cat"));
  make_dir(tmp("hollow/dog"));
  write_solid(tmp("hollow/cat/a.png"), 1, 2, 2, HALF);
  assert_false(rt_load_image_folder(tmp("hollow"), 4, false, &s, &err));
  assert_error_has(err, "class folder");
  assert_error_has(err, tmp("hollow/dog"));
  make_dir(tmp("half"));
  write_solid(tmp("half/3_0001.png"), 1, 2, 2, HALF);
  write_solid(tmp("half/0002.png"), 1, 2, 2, HALF);
  assert_false(rt_load_image_folder(tmp("half"), 4, false, &s, &err));
  assert_error_has(err, "0002.png' has no class before a '_'");
  assert_false(rt_load_image_folder(tmp("half"), 0, false, &s, &err));
  assert_error_has(err, "the size must be 1 to 4096");
}

/* ---- training curves ----------------------------------------------------- */

/* How many pixels of a [3, h, w] image have colour (r, g, b) / 255. */
static int count_color(const RtImage *im, int r, int g, int b) {
  int n = 0;
  for (int y = 0; y < im->h; y++)
    for (int x = 0; x < im->w; x++)
      n += px(im, 0, y, x) == (float)r / 255.0f && px(im, 1, y, x) == (float)g / 255.0f &&
           px(im, 2, y, x) == (float)b / 255.0f;
  return n;
}

/* How many pixels of the column range [x0, x1) are not white. */
static int ink_in(const RtImage *im, int x0, int x1) {
  int n = 0;
  for (int y = 0; y < im->h; y++)
    for (int x = x0; x < x1; x++) n += px(im, 0, y, x) < 1 || px(im, 1, y, x) < 1 || px(im, 2, y, x) < 1;
  return n;
}

static void plot_curves_writes_a_640_by_400_png_with_a_line_per_series(void **state) {
  (void)state;
  enum { E = 20 };
  double train[E], valid[E], acc[E];
  for (int e = 0; e < E; e++) {
    train[e] = 2.3 * exp(-0.15 * e);
    valid[e] = 2.4 * exp(-0.12 * e) + 0.01 * e;
    acc[e] = 0.1 + 0.8 * (1 - exp(-0.2 * e));
  }
  RtCurve cs[3] = {{"train_loss", train, 0}, {"valid_loss", valid, 0}, {"valid_acc", acc, 1}};
  RtError err;
  if (!rt_plot_curves(tmp("plot/curves.png"), E, cs, 3, &err)) fail_msg("%s", err.msg);
  RtImage im = must_read(tmp("plot/curves.png"), 0);
  assert_int_equal(im.c, 3);
  assert_int_equal(im.w, RT_PLOT_WIDTH);
  assert_int_equal(im.h, RT_PLOT_HEIGHT);
  assert_int_equal(RT_PLOT_WIDTH, 640);
  assert_int_equal(RT_PLOT_HEIGHT, 400);
  /* tab10 blue, orange and green lines */
  assert_true(count_color(&im, 31, 119, 180) > 200);
  assert_true(count_color(&im, 255, 127, 14) > 200);
  assert_true(count_color(&im, 44, 160, 44) > 200);
  /* two panels: both halves hold drawing */
  assert_true(ink_in(&im, 0, 320) > 2000 && ink_in(&im, 320, 640) > 2000);
  rt_image_free(&im);
  assert_int_equal(access(tmp("plot/curves.png.tmp"), F_OK), -1);
}

static void plot_curves_handles_log_scale_gaps_one_epoch_and_many(void **state) {
  (void)state;
  RtError err;
  /* a loss over three decades, a gap, one panel */
  enum { E = 3000 };
  double *loss = malloc(E * sizeof *loss), *valid = malloc(E * sizeof *valid);
  assert_non_null(loss);
  assert_non_null(valid);
  for (int e = 0; e < E; e++) {
    loss[e] = 300.0 * exp(-0.003 * e) + 0.8;
    valid[e] = e % 10 == 0 ? loss[e] * 1.1 : NAN;  /* valid loss every 10 epochs */
  }
  loss[5] = INFINITY;
  RtCurve cs[2] = {{"Train_Loss", loss, 0}, {"valid_loss", valid, 0}};
  if (!rt_plot_curves(tmp("log.png"), E, cs, 2, &err)) fail_msg("%s", err.msg);
  RtImage im = must_read(tmp("log.png"), 0);
  assert_int_equal(im.w, 640);
  assert_true(count_color(&im, 31, 119, 180) > 300);
  assert_true(count_color(&im, 255, 127, 14) > 100);  /* isolated points get dots */
  rt_image_free(&im);
  /* one epoch; a constant; all NaN */
  double one[1] = {0.5}, none[1] = {NAN};
  RtCurve c1[2] = {{"loss", one, 0}, {"acc", none, 1}};
  if (!rt_plot_curves(tmp("one.png"), 1, c1, 2, &err)) fail_msg("%s", err.msg);
  im = must_read(tmp("one.png"), 0);
  assert_true(count_color(&im, 31, 119, 180) >= 4);
  rt_image_free(&im);
  /* extreme values still draw */
  double wild[3] = {-1e308, 1e308, 0};
  RtCurve cw[1] = {{"x", wild, 0}};
  if (!rt_plot_curves(tmp("wild.png"), 3, cw, 1, &err)) fail_msg("%s", err.msg);
  assert_false(rt_plot_curves(tmp("no.png"), 0, cw, 1, &err));
  assert_error_has(err, "no epochs");
  assert_false(rt_plot_curves(tmp("no.png"), 3, cw, 0, &err));
  assert_error_has(err, "1 to 10");
  free(loss);
  free(valid);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(png_gray_and_rgb_round_trip_exactly_in_8_bits),
      cmocka_unit_test(png_read_converts_between_gray_and_rgb),
      cmocka_unit_test(png_16_bit_files_keep_their_precision),
      cmocka_unit_test(png_palette_low_depth_alpha_and_interlaced_files_read),
      cmocka_unit_test(png_truncated_at_every_byte_is_an_error_naming_the_file),
      cmocka_unit_test(png_corrupt_files_and_other_formats_are_errors_naming_the_file),
      cmocka_unit_test(png_header_beyond_the_limits_is_refused_before_decoding),
      cmocka_unit_test(png_write_clamps_rounds_and_replaces_atomically),
      cmocka_unit_test(png_grid_has_the_geometry_of_torchvision_make_grid),
      cmocka_unit_test(png_heatmap_grid_scales_each_map_and_colours_it_inferno),
      cmocka_unit_test(hflip_reverses_each_row_when_drawn_and_depends_only_on_the_rng),
      cmocka_unit_test(rotate_by_0_is_identity_and_by_90_is_rot90),
      cmocka_unit_test(rotate_by_45_fills_the_corners_with_zeros),
      cmocka_unit_test(random_rotation_is_seeded_and_bounded),
      cmocka_unit_test(random_crop_takes_the_window_the_rng_chose),
      cmocka_unit_test(random_crop_larger_than_the_padded_image_centres_it),
      cmocka_unit_test(center_crop_rounds_half_to_even_as_torchvision),
      cmocka_unit_test(resize_matches_pil_bilinear_by_hand),
      cmocka_unit_test(channel_stats_and_normalize_are_per_channel),
      cmocka_unit_test(image_folder_with_class_subfolders_labels_by_sorted_name),
      cmocka_unit_test(image_folder_flat_takes_the_class_from_the_name),
      cmocka_unit_test(image_folder_errors_name_the_folder_or_the_file),
      cmocka_unit_test(plot_curves_writes_a_640_by_400_png_with_a_line_per_series),
      cmocka_unit_test(plot_curves_handles_log_scale_gaps_one_epoch_and_many),
  };
  return cmocka_run_group_tests_name("images", tests, setup, teardown);
}
