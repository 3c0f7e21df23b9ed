/*
 * idx.c — the IDX loader for MNIST and Fashion-MNIST: images become field
 * "x" [rows * cols] scaled to [0, 1], labels field "y" [1] with the class id.
 *
 * IDX (LeCun's format) is a big-endian header — a magic number whose low
 * bytes give the element type (0x08, unsigned byte) and the rank, then one
 * 32-bit size per dimension — followed by the elements. Files come gzipped;
 * zlib's gzread reads gzip and plain files alike. A gzip stream does not say
 * how long it is uncompressed, so the payload is read in growing chunks:
 * a header that claims more than the file holds costs no more memory than
 * the file really has, and is reported as truncated.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { IDX_IMAGES = 0x803, IDX_LABELS = 0x801 };

typedef struct {
  const char *path;
  gzFile g;
  int64_t off;  /* bytes read so far (of the uncompressed data) */
  RtError *err;
} Idx;

static bool idx_open(Idx *x, const char *path, RtError *err) {
  x->path = path;
  x->off = 0;
  x->err = err;
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return rt_fail(err, "data file '%s' is a folder, not an IDX file", path);
  x->g = gzopen(path, "rb");
  if (!x->g) {
    int e = errno;
    return rt_fail(err, "cannot open data file '%s': %s", path,
                   e ? strerror(e) : "out of memory");
  }
  gzbuffer(x->g, 1 << 17);
  return true;
}

static const char *where(const Idx *x) {
  return gzdirect(x->g) ? "" : " of the uncompressed data";
}

/* zlib's message without the "path: " it puts in front. */
static const char *zlib_message(const Idx *x, const char *msg) {
  size_t n = strlen(x->path);
  return !strncmp(msg, x->path, n) && !strncmp(msg + n, ": ", 2) ? msg + n + 2 : msg;
}

/* Reads up to n bytes; returns how many, or -1 after reporting a gzip
 * error: corrupt data, or compressed data that ends in the middle (zlib
 * then returns what it could decompress and says so only in gzerror). */
static int64_t idx_read(Idx *x, unsigned char *dst, int64_t n) {
  int64_t got = 0;
  while (got < n) {
    int64_t want = n - got < (1 << 30) ? n - got : (1 << 30);
    int k = gzread(x->g, dst + got, (unsigned)want);
    if (k < 0) {
      int code;
      const char *msg = gzerror(x->g, &code);
      if (code == Z_ERRNO)
        rt_fail(x->err, "cannot read data file '%s': %s", x->path, strerror(errno));
      else
        rt_fail(x->err, "'%s': its gzip data is corrupt (zlib: %s); download the file again", x->path,
                zlib_message(x, msg));
      return -1;
    }
    if (k > 0) {
      got += k;
      continue;
    }
    int code;
    gzerror(x->g, &code);
    if (code == Z_BUF_ERROR) {
      rt_fail(x->err, "'%s' is a truncated gzip file: its compressed data ends in the middle; download it again",
              x->path);
      return -1;
    }
    break;
  }
  x->off += got;
  return got;
}

/* Reads the header: the magic number and `rank` dimensions. */
static bool idx_header(Idx *x, int want_magic, int rank, int64_t *dims) {
  unsigned char h[16];
  int64_t size = 4 * (1 + rank);
  int64_t got = idx_read(x, h, size);
  if (got < 0) return false;
  if (got < 4)
    return rt_fail(x->err, "'%s' is too short to be an IDX file (%lld bytes%s); download it again", x->path,
                   (long long)got, where(x));
  uint32_t magic = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
  if (magic != (uint32_t)want_magic) {
    /* The magic is 0x0000TTRR: element type TT, RR dimensions. */
    static const struct {
      unsigned code;
      const char *name;
    } types[] = {{0x08, "unsigned bytes"}, {0x09, "signed bytes"}, {0x0B, "16-bit integers"},
                 {0x0C, "32-bit integers"}, {0x0D, "float32"}, {0x0E, "float64"}};
    const char *type = NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if ((magic >> 8) == types[i].code) type = types[i].name;
    char is[160] = "";
    if (magic == IDX_IMAGES || magic == IDX_LABELS)
      snprintf(is, sizeof is, " (it holds %s: swap the two paths?)", magic == IDX_IMAGES ? "images" : "labels");
    else if (type && (magic >> 16) == 0)
      snprintf(is, sizeof is, "; 0x%08X means %s in %u dimension%s, and nnc reads %s of unsigned bytes in %d "
               "dimension%s", magic, type, magic & 0xFF, (magic & 0xFF) == 1 ? "" : "s",
               want_magic == IDX_IMAGES ? "images" : "labels", rank, rank == 1 ? "" : "s");
    else
      snprintf(is, sizeof is, "; its first bytes are 0x%08X, so it is not an IDX file, or it is damaged", magic);
    return rt_fail(x->err,
                   "'%s' is not an IDX %s file: its magic number (byte 0) is %u, not %d%s",
                   x->path, want_magic == IDX_IMAGES ? "image" : "label", magic, want_magic, is);
  }
  if (got < size)
    return rt_fail(x->err, "'%s' is truncated: it ends at byte %lld%s, inside its %lld-byte header; "
                   "download it again",
                   x->path, (long long)got, where(x), (long long)size);
  for (int i = 0; i < rank; i++) {
    const unsigned char *p = h + 4 + 4 * i;
    dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    if (dims[i] == 0)
      return rt_fail(x->err, "'%s': dimension %d (byte %d) is 0; the file holds no data", x->path,
                     i, 4 + 4 * i);
  }
  return true;
}

/* Reads exactly `n` payload bytes (n > 0), then checks nothing follows. */
static unsigned char *idx_payload(Idx *x, int64_t n, const char *items, int64_t count) {
  int64_t cap = n < (1 << 20) ? n : (1 << 20), have = 0, start = x->off;
  unsigned char *buf = NULL;
  for (;;) {
    unsigned char *grown = realloc(buf, (size_t)cap);
    if (!grown) {
      free(buf);
      rt_fail(x->err, "'%s': out of memory reading %lld bytes", x->path, (long long)n);
      return NULL;
    }
    buf = grown;
    int64_t got = idx_read(x, buf + have, cap - have);
    if (got < 0) break;
    have += got;
    if (have < cap) {
      rt_fail(x->err,
              "'%s' is truncated: its header promises %lld %s (%lld bytes after byte %lld%s), "
              "but the file ends after %lld bytes of them; download it again",
              x->path, (long long)count, items, (long long)n, (long long)start, where(x),
              (long long)have);
      break;
    }
    if (have == n) {
      unsigned char extra;
      got = idx_read(x, &extra, 1);
      if (got == 0) return buf;
      if (got > 0)
        rt_fail(x->err,
                "'%s' has data after the %lld %s its header promises (from byte %lld%s); "
                "the header or the file is wrong",
                x->path, (long long)count, items, (long long)(start + n), where(x));
      break;
    }
    cap = cap * 2 < n ? cap * 2 : n;
  }
  free(buf);
  return NULL;
}

static bool add_field(RtTable *t, const char *name, int64_t width, int rank,
                      const int64_t *shape, float *data, RtError *err) {
  RtField *f = &t->fields[t->nfields];
  f->name = strdup(name);
  if (!f->name) {
    free(data);
    return rt_fail(err, "out of memory");
  }
  f->width = width;
  f->rank = rank;
  memcpy(f->shape, shape, (size_t)rank * sizeof *shape);
  f->data = data;
  t->nfields++;
  return true;
}

static bool load_images(Idx *x, RtTable *t) {
  int64_t d[3], n;
  if (!idx_header(x, IDX_IMAGES, 3, d)) return false;
  int64_t width;
  if (__builtin_mul_overflow(d[1], d[2], &width) || __builtin_mul_overflow(d[0], width, &n) ||
      n > INT64_MAX / (int64_t)sizeof(float))
    return rt_fail(x->err, "'%s': its header claims %lld images of %lld x %lld, too many to hold",
                   x->path, (long long)d[0], (long long)d[1], (long long)d[2]);
  unsigned char *px = idx_payload(x, n, "images", d[0]);
  if (!px) return false;
  float *data = malloc((size_t)n * sizeof(float));
  if (!data) {
    free(px);
    return rt_fail(x->err, "'%s': out of memory for %lld images", x->path, (long long)d[0]);
  }
  for (int64_t i = 0; i < n; i++) data[i] = (float)px[i] / 255.0f;
  free(px);
  t->rows = d[0];
  return add_field(t, "x", width, 2, d + 1, data, x->err);
}

static bool load_labels(Idx *x, RtTable *t, const char *images_path) {
  int64_t n;
  if (!idx_header(x, IDX_LABELS, 1, &n)) return false;
  if (n != t->rows)
    return rt_fail(x->err,
                   "'%s' has %lld labels but '%s' has %lld images; are both from the same set "
                   "(train or t10k)?",
                   x->path, (long long)n, images_path, (long long)t->rows);
  unsigned char *ids = idx_payload(x, n, "labels", n);
  if (!ids) return false;
  float *data = malloc((size_t)n * sizeof(float));
  if (!data) {
    free(ids);
    return rt_fail(x->err, "'%s': out of memory for %lld labels", x->path, (long long)n);
  }
  for (int64_t i = 0; i < n; i++) data[i] = (float)ids[i];
  free(ids);
  int64_t one = 1;
  return add_field(t, "y", 1, 1, &one, data, x->err);
}

bool rt_load_idx(const char *images_path, const char *labels_path, RtTable *out,
                 RtError *err) {
  memset(out, 0, sizeof *out);
  RtTable t = {0};
  t.fields = calloc(2, sizeof *t.fields);
  if (!t.fields) return rt_fail(err, "out of memory");
  Idx x;
  bool ok = idx_open(&x, images_path, err);
  if (ok) {
    ok = load_images(&x, &t);
    gzclose(x.g);
  }
  if (ok && labels_path) {
    ok = idx_open(&x, labels_path, err);
    if (ok) {
      ok = load_labels(&x, &t, images_path);
      gzclose(x.g);
    }
  }
  if (ok)
    *out = t;
  else
    rt_table_free(&t);
  return ok;
}
