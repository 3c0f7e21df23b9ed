/*
 * png.c — PNG files with libpng: reading any PNG into float [C, H, W],
 * writing 8-bit gray and RGB files atomically, image grids and heat maps.
 *
 * Reading is bounded. The size in the header is checked before any pixel
 * is decoded (libpng's user limits refuse more than RT_PNG_MAX_SIDE a side,
 * and nnc refuses more than RT_PNG_MAX_PIXELS in all), ancillary chunks nnc
 * does not use (text, colour profiles) are skipped unread so a compressed
 * text chunk cannot inflate, and every chunk libpng keeps is capped in size
 * and number. Rows of a plain (non-interlaced) file are decoded into a
 * buffer that grows as they arrive, so a truncated file costs no more
 * memory than it holds; only interlaced files, whose passes revisit every
 * row, get their whole buffer at once.
 *
 * libpng reports errors by calling an error function that must not return;
 * it longjmps back to the setjmp in decode() or encode(). Everything that
 * must be freed afterwards lives in a struct the caller owns (never in a
 * local variable of the function that called setjmp, whose value would be
 * indeterminate after the jump), and the caller frees it on both paths.
 * Warnings (an odd colour profile, a bad CRC in an ancillary chunk) are
 * kept, not printed: the runtime never prints.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

/* The signature and the IHDR chunk: 8 + 4 + 4 + 13 + 4 bytes. */
enum { HEAD = 33 };

/* A file being read, and everything to free when done. */
typedef struct {
  const char *path;
  FILE *f;
  long long off;              /* bytes read so far */
  unsigned char head[HEAD];   /* the first bytes, for the size in a message */
  bool ended;                 /* the file ended before libpng was done */
  char msg[256];              /* libpng's error */
  char warning[256];          /* its last warning */
  png_structp png;
  png_infop info;
  unsigned char *raw;         /* decoded rows, [h, rowbytes] */
  png_bytep *rows;            /* row pointers into raw (interlaced files) */
} PngIn;

/* A file being written. */
typedef struct {
  char msg[256];
  png_structp png;
  png_infop info;
  unsigned char *row;         /* one row of 8-bit samples */
} PngOut;

static void on_error_in(png_structp png, png_const_charp msg) {
  PngIn *r = png_get_error_ptr(png);
  snprintf(r->msg, sizeof r->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void on_error_out(png_structp png, png_const_charp msg) {
  PngOut *o = png_get_error_ptr(png);
  snprintf(o->msg, sizeof o->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void on_warning_in(png_structp png, png_const_charp msg) {
  PngIn *r = png_get_error_ptr(png);
  snprintf(r->warning, sizeof r->warning, "%s", msg);
}

static void on_warning_out(png_structp png, png_const_charp msg) {
  (void)png, (void)msg;
}

static void read_bytes(png_structp png, png_bytep dst, size_t n) {
  PngIn *r = png_get_io_ptr(png);
  size_t got = fread(dst, 1, n, r->f);
  for (size_t i = 0; i < got && r->off + (long long)i < HEAD; i++) r->head[r->off + (long long)i] = dst[i];
  r->off += (long long)got;
  if (got < n) {
    if (ferror(r->f)) png_error(png, strerror(errno ? errno : EIO));
    r->ended = true;
    png_error(png, "the file ends here");
  }
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool too_large(const char *path, uint32_t w, uint32_t h, RtError *err) {
  return rt_fail(err,
                 "'%s' is %u x %u pixels, larger than nnc reads (at most %d pixels a side and "
                 "%d pixels in all); shrink it first",
                 path, w, h, RT_PNG_MAX_SIDE, RT_PNG_MAX_PIXELS);
}

/* The message for an error libpng raised (after the longjmp). */
static bool libpng_failed(PngIn *r, RtError *err) {
  if (strstr(r->warning, "exceeds user limit"))
    return too_large(r->path, be32(r->head + 16), be32(r->head + 20), err);
  if (r->ended)
    return rt_fail(err,
                   "'%s' is truncated: it ends at byte %lld, before the end of its PNG data; "
                   "save or download it again",
                   r->path, r->off);
  /* libpng explains a bad header in a warning before its error */
  bool why = !strcmp(r->msg, "Invalid IHDR data") && r->warning[0];
  return rt_fail(err,
                 "'%s' is not a readable PNG: at byte %lld libpng says \"%s\"%s%s%s; the file is "
                 "corrupt, save or download it again",
                 r->path, r->off, r->msg, why ? " (" : "", why ? r->warning : "", why ? ")" : "");
}

/* The decoding proper; libpng may longjmp out of any png_ call here. */
static bool decode_body(PngIn *r, int channels, RtImage *out, RtError *err) {
  png_structp png = r->png;
  png_infop info = r->info;
  png_read_info(png, info);
  png_uint_32 w, h;
  int depth, color, interlace;
  png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
  if ((uint64_t)w * h > RT_PNG_MAX_PIXELS) return too_large(r->path, w, h, err);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  int ch = png_get_channels(png, info), bytes = png_get_bit_depth(png, info) / 8;
  RT_ASSERT(ch >= 1 && ch <= 4 && (bytes == 1 || bytes == 2) &&
            rowbytes == (size_t)w * (size_t)ch * (size_t)bytes);
  if (passes > 1) {
    r->raw = malloc(rowbytes * h);
    r->rows = malloc(h * sizeof *r->rows);
    if (!r->raw || !r->rows) return rt_fail(err, "'%s': out of memory for %u x %u pixels", r->path, w, h);
    for (png_uint_32 y = 0; y < h; y++) r->rows[y] = r->raw + y * rowbytes;
    png_read_image(png, r->rows);
  } else {
    size_t cap = 0;
    for (png_uint_32 y = 0; y < h; y++) {
      if (y == cap) {
        cap = cap ? 2 * cap : (1u << 16) / rowbytes + 1;
        if (cap > h) cap = h;
        unsigned char *grown = realloc(r->raw, cap * rowbytes);
        if (!grown) return rt_fail(err, "'%s': out of memory for %u x %u pixels", r->path, w, h);
        r->raw = grown;
      }
      png_read_row(png, r->raw + y * rowbytes, NULL);
    }
  }
  png_read_end(png, NULL);

  int c = channels ? channels : ch <= 2 ? 1 : 3;
  size_t plane = (size_t)w * h;
  float *x = malloc((size_t)c * plane * sizeof *x);
  if (!x) return rt_fail(err, "'%s': out of memory for %u x %u pixels", r->path, w, h);
  float top = bytes == 2 ? 65535.0f : 255.0f;
  const unsigned char *p = r->raw;
  for (size_t i = 0; i < plane; i++) {
    float v[4];
    for (int k = 0; k < ch; k++, p += bytes)
      v[k] = (float)(bytes == 2 ? (unsigned)p[0] << 8 | p[1] : p[0]) / top;
    bool color_px = ch >= 3;  /* ch 2 and 4 carry alpha last, which is dropped */
    if (c == 1) {
      float l = color_px ? 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2] : v[0];
      x[i] = l < 1 ? l : 1;  /* white may round to 1 + 1 ulp */
    } else {
      for (int k = 0; k < 3; k++) x[(size_t)k * plane + i] = color_px ? v[k] : v[0];
    }
  }
  out->c = c;
  out->h = (int)h;
  out->w = (int)w;
  out->data = x;
  return true;
}

static bool decode(PngIn *r, int channels, RtImage *out, RtError *err) {
  if (setjmp(png_jmpbuf(r->png))) return libpng_failed(r, err);
  return decode_body(r, channels, out, err);
}

/* The first bytes of other image formats, for a hint. */
static const char *format_hint(const unsigned char *b, size_t n) {
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
    return " (it is a JPEG file: convert it to PNG)";
  if (n >= 4 && !memcmp(b, "GIF8", 4)) return " (it is a GIF file: convert it to PNG)";
  if (n >= 2 && !memcmp(b, "BM", 2)) return " (it looks like a BMP file: convert it to PNG)";
  if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
    return " (it is a WebP file: convert it to PNG)";
  return "";
}

/* Ancillary chunks nnc has no use for, skipped without being decompressed. */
static const png_byte ignored_chunks[] =
    "iCCP\0iTXt\0tEXt\0zTXt\0sPLT\0eXIf\0tIME\0pCAL\0sCAL\0hIST\0";

bool rt_png_read(const char *path, int channels, RtImage *out, RtError *err) {
  RT_ASSERT(channels == 0 || channels == 1 || channels == 3);
  memset(out, 0, sizeof *out);
  PngIn r = {.path = path};
  r.f = fopen(path, "rb");
  if (!r.f) {
    int e = errno;
    return rt_fail(err, "cannot open image '%s': %s", path, strerror(e));
  }
  size_t n = fread(r.head, 1, 8, r.f);
  r.off = (long long)n;
  if (n < 8 || png_sig_cmp(r.head, 0, 8)) {
    fclose(r.f);
    return rt_fail(err, "'%s' is not a PNG file: it does not start with the PNG signature%s", path,
                   format_hint(r.head, n));
  }
  bool ok = false;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_error_in, on_warning_in);
  r.info = r.png ? png_create_info_struct(r.png) : NULL;
  if (!r.info) {
    rt_fail(err, "out of memory reading '%s'", path);
  } else {
    png_set_read_fn(r.png, &r, read_bytes);
    png_set_sig_bytes(r.png, 8);
    png_set_user_limits(r.png, RT_PNG_MAX_SIDE, RT_PNG_MAX_SIDE);
    png_set_chunk_cache_max(r.png, 128);
    png_set_chunk_malloc_max(r.png, 1 << 22);
    png_set_keep_unknown_chunks(r.png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(r.png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks,
                                (int)(sizeof ignored_chunks / 5));
    ok = decode(&r, channels, out, err);
  }
  png_destroy_read_struct(&r.png, &r.info, NULL);
  free(r.raw);
  free(r.rows);
  fclose(r.f);
  return ok;
}

void rt_image_free(RtImage *im) {
  free(im->data);
  memset(im, 0, sizeof *im);
}

static unsigned char to_byte(float v) {
  if (!(v > 0)) return 0;  /* negative, zero and NaN */
  if (v >= 1) return 255;
  return (unsigned char)(v * 255.0f + 0.5f);
}

/* Writes the rows; libpng may longjmp out of any png_ call here. */
static void encode_body(PngOut *o, FILE *f, const float *x, int c, int h, int w) {
  png_init_io(o->png, f);
  png_set_IHDR(o->png, o->info, (png_uint_32)w, (png_uint_32)h, 8,
               c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(o->png, o->info);
  size_t plane = (size_t)h * (size_t)w;
  for (int y = 0; y < h; y++) {
    const float *src = x + (size_t)y * (size_t)w;
    for (int i = 0; i < w; i++)
      for (int k = 0; k < c; k++) o->row[i * c + k] = to_byte(src[(size_t)k * plane + (size_t)i]);
    png_write_row(o->png, o->row);
  }
  png_write_end(o->png, NULL);
}

static bool encode(PngOut *o, FILE *f, const float *x, int c, int h, int w) {
  if (setjmp(png_jmpbuf(o->png))) return false;
  encode_body(o, f, x, c, h, w);
  return true;
}

bool rt_png_write(const char *path, const float *x, int c, int h, int w, RtError *err) {
  RT_ASSERT(c == 1 || c == 3);
  if (h < 1 || w < 1 || h > RT_PNG_MAX_SIDE || w > RT_PNG_MAX_SIDE ||
      (int64_t)h * w > RT_PNG_MAX_PIXELS)
    return rt_fail(err,
                   "cannot write '%s': an image of %d x %d pixels; nnc writes 1 to %d pixels a "
                   "side and at most %d in all",
                   path, w, h, RT_PNG_MAX_SIDE, RT_PNG_MAX_PIXELS);
  PngOut o;
  memset(&o, 0, sizeof o);
  o.row = malloc((size_t)w * (size_t)c);
  o.png = o.row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &o, on_error_out, on_warning_out) : NULL;
  o.info = o.png ? png_create_info_struct(o.png) : NULL;
  RtAtomicFile af = {0};
  bool ok = false;
  if (!o.info)
    rt_fail(err, "out of memory writing '%s'", path);
  else if (rt_atomic_open(&af, path, err)) {
    if (encode(&o, af.f, x, c, h, w)) {
      ok = rt_atomic_commit(&af, err);
    } else {
      rt_fail(err, "cannot write '%s': libpng says \"%s\"", path, o.msg);
      rt_atomic_abort(&af);
    }
  }
  png_destroy_write_struct(&o.png, &o.info);
  free(o.row);
  return ok;
}

/* The grid's geometry (rt_png_grid); false if it would be too large. */
typedef struct {
  int cols, rows, gw, gh;
} Grid;

static bool grid_size(const char *path, int64_t n, int h, int w, int cols, int padding, Grid *g,
                      RtError *err) {
  RT_ASSERT(h > 0 && w > 0);
  if (n < 1) return rt_fail(err, "cannot write '%s': there are no images to draw", path);
  if (padding < 0) return rt_fail(err, "cannot write '%s': the padding is %d, below 0", path, padding);
  int64_t c = cols > 0 ? cols : 8;
  if (c > n) c = n;
  int64_t rows = (n + c - 1) / c;
  int64_t gw = c * ((int64_t)w + padding) + padding, gh = rows * ((int64_t)h + padding) + padding;
  if (gw > RT_PNG_MAX_SIDE || gh > RT_PNG_MAX_SIDE || gw * gh > RT_PNG_MAX_PIXELS)
    return rt_fail(err,
                   "cannot write '%s': a grid of %lld images, %lld a row, would be %lld x %lld "
                   "pixels (at most %d a side and %d in all); draw fewer or smaller images",
                   path, (long long)n, (long long)c, (long long)gw, (long long)gh,
                   RT_PNG_MAX_SIDE, RT_PNG_MAX_PIXELS);
  *g = (Grid){(int)c, (int)rows, (int)gw, (int)gh};
  return true;
}

/* Where image k's top-left pixel goes in a grid plane. */
static size_t grid_at(const Grid *g, int64_t k, int h, int w, int padding) {
  int64_t y = k / g->cols * (h + padding) + padding, x = k % g->cols * (w + padding) + padding;
  return (size_t)(y * g->gw + x);
}

bool rt_png_grid(const char *path, const float *x, int64_t n, int c, int h, int w, int cols,
                 int padding, RtError *err) {
  RT_ASSERT(c == 1 || c == 3);
  Grid g;
  if (!grid_size(path, n, h, w, cols, padding, &g, err)) return false;
  size_t plane = (size_t)g.gw * (size_t)g.gh, img = (size_t)h * (size_t)w;
  float *canvas = calloc((size_t)c * plane, sizeof *canvas);
  if (!canvas) return rt_fail(err, "out of memory writing '%s'", path);
  for (int64_t k = 0; k < n; k++) {
    size_t at = grid_at(&g, k, h, w, padding);
    for (int ch = 0; ch < c; ch++) {
      const float *src = x + ((size_t)k * (size_t)c + (size_t)ch) * img;
      for (int y = 0; y < h; y++)
        memcpy(canvas + (size_t)ch * plane + at + (size_t)y * (size_t)g.gw, src + (size_t)y * (size_t)w,
               (size_t)w * sizeof *src);
    }
  }
  bool ok = rt_png_write(path, canvas, c, g.gh, g.gw, err);
  free(canvas);
  return ok;
}

/* matplotlib's inferno at entries 0, 16, 32, ..., 240 and 255 of 256. */
static const float inferno[17][3] = {
    {0.001462f, 0.000466f, 0.013866f}, {0.042253f, 0.028139f, 0.141141f},
    {0.129285f, 0.047293f, 0.290788f}, {0.238273f, 0.036621f, 0.396353f},
    {0.341500f, 0.062325f, 0.429425f}, {0.441207f, 0.099338f, 0.431594f},
    {0.540920f, 0.134729f, 0.415123f}, {0.640135f, 0.171438f, 0.381065f},
    {0.735683f, 0.215906f, 0.330245f}, {0.822386f, 0.275197f, 0.266085f},
    {0.894305f, 0.353399f, 0.193584f}, {0.946965f, 0.449191f, 0.115272f},
    {0.978422f, 0.557937f, 0.034931f}, {0.987874f, 0.675267f, 0.065257f},
    {0.974638f, 0.797692f, 0.206332f}, {0.947594f, 0.917399f, 0.410665f},
    {0.988362f, 0.998364f, 0.644924f}};

void rt_inferno(float t, float rgb[3]) {
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  float e = t * 255.0f;  /* position among the 256 entries */
  int k = e >= 240.0f ? 15 : (int)(e / 16.0f);
  float lo = 16.0f * (float)k, hi = k == 15 ? 255.0f : lo + 16.0f, f = (e - lo) / (hi - lo);
  for (int i = 0; i < 3; i++) rgb[i] = inferno[k][i] + f * (inferno[k + 1][i] - inferno[k][i]);
}

bool rt_png_heatmap_grid(const char *path, const float *maps, int64_t n, int h, int w,
                         int cols, int padding, RtError *err) {
  Grid g;
  if (!grid_size(path, n, h, w, cols, padding, &g, err)) return false;
  size_t plane = (size_t)g.gw * (size_t)g.gh, img = (size_t)h * (size_t)w;
  float *canvas = calloc(3 * plane, sizeof *canvas);
  if (!canvas) return rt_fail(err, "out of memory writing '%s'", path);
  for (int64_t k = 0; k < n; k++) {
    const float *m = maps + (size_t)k * img;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < img; i++) {
      if (m[i] < lo) lo = m[i];
      if (m[i] > hi) hi = m[i];
    }
    float span = hi > lo ? hi - lo : 0;
    size_t at = grid_at(&g, k, h, w, padding);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float v = m[(size_t)y * (size_t)w + (size_t)x], rgb[3];
        rt_inferno(span > 0 && isfinite(span) ? (v - lo) / span : 0, rgb);
        for (int ch = 0; ch < 3; ch++)
          canvas[(size_t)ch * plane + at + (size_t)y * (size_t)g.gw + (size_t)x] = rgb[ch];
      }
  }
  bool ok = rt_png_write(path, canvas, 3, g.gh, g.gw, err);
  free(canvas);
  return ok;
}
