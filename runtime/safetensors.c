/*
 * safetensors.c — checkpoints in the safetensors format, so that PyTorch,
 * NumPy and the Hugging Face tools read what nnc writes and nnc reads what
 * they write.
 *
 * The format (huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON, then the data section. The JSON is one object:
 * per tensor `"name": {"dtype": "F32", "shape": [2, 3], "data_offsets":
 * [begin, end]}` with offsets relative to the data section, and an optional
 * `"__metadata__"` object of string values. Writers pad the header with
 * spaces to a multiple of 8 bytes.
 *
 * The reader's JSON parser knows exactly this shape of document, not JSON at
 * large: a value where the format has none is an error at its byte offset,
 * so nesting is bounded by the format (object, tensor object, shape array)
 * and no input can recurse deeply. Everything the header claims is checked
 * against the file before anything is allocated from it: the header length
 * against the file size and the format's 100 MB limit, each shape's element
 * count against overflow, each tensor's offsets against its shape and the
 * data section, and the tensors together must cover the data section
 * exactly — no overlaps, no holes, no extra bytes (as the reference
 * implementation requires). Names must be unique. Data is float32 only.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as it is"
#endif

/* The reference implementation's limit on the header. */
#define ST_MAX_HEADER 100000000

/* What to make of a header that contradicts itself or the file. */
#define DAMAGED " (the file is damaged, or not a safetensors checkpoint)"

/* A tensor while the header is checked: where its entry and data are. */
typedef struct {
  RtTensor t;
  int64_t begin, end;  /* data_offsets */
  size_t at;           /* byte offset of its name in the file */
} Entry;

typedef struct {
  const char *path;
  const char *h;   /* the header text */
  size_t len, pos;
  char *pool;      /* decoded strings; never longer than their JSON text */
  size_t used;
  Entry *ents;
  int nents, cap;
  RtMeta *meta;
  int nmeta, metacap;
  RtError *err;
} Parser;

/* Byte offset in the file of header position `pos`. */
static long long at(size_t pos) {
  return (long long)(8 + pos);
}

static bool perr(Parser *p, const char *what) {
  return rt_fail(p->err, "'%s': bad safetensors header at byte %lld: %s" DAMAGED, p->path, at(p->pos), what);
}

static void skip_ws(Parser *p) {
  while (p->pos < p->len && (p->h[p->pos] == ' ' || p->h[p->pos] == '\t' ||
                             p->h[p->pos] == '\r' || p->h[p->pos] == '\n'))
    p->pos++;
}

/* Skips white space, then consumes `c` if it is next. */
static bool next_is(Parser *p, char c) {
  skip_ws(p);
  if (p->pos < p->len && p->h[p->pos] == c) {
    p->pos++;
    return true;
  }
  return false;
}

static bool expect(Parser *p, char c) {
  if (next_is(p, c)) return true;
  char what[64];
  snprintf(what, sizeof what, "expected '%c'%s", c, p->pos >= p->len ? ", found the end" : "");
  return perr(p, what);
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* Four hex digits after "\u". */
static bool hex4(Parser *p, unsigned *out) {
  if (p->len - p->pos < 4) return perr(p, "\\u needs four hex digits");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hexval(p->h[p->pos + (size_t)i]);
    if (d < 0) return perr(p, "\\u needs four hex digits");
    v = v << 4 | (unsigned)d;
  }
  p->pos += 4;
  *out = v;
  return true;
}

/* string = '"' (char | escape)* '"', decoded into the pool as UTF-8. */
static bool parse_string(Parser *p, const char **out) {
  if (!expect(p, '"')) return false;
  char *s = p->pool + p->used;
  size_t k = 0;
  for (;;) {
    if (p->pos >= p->len) return perr(p, "a string is not closed");
    unsigned char c = (unsigned char)p->h[p->pos++];
    if (c == '"') break;
    if (c < 0x20) {
      p->pos--;
      return perr(p, "a control character inside a string (JSON needs it escaped)");
    }
    if (c != '\\') {
      s[k++] = (char)c;
      continue;
    }
    if (p->pos >= p->len) return perr(p, "a string is not closed");
    char e = p->h[p->pos++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = e ? strchr(from, e) : NULL;
    if (hit) {
      s[k++] = to[hit - from];
      continue;
    }
    if (e != 'u') {
      p->pos--;
      return perr(p, "unknown escape in a string");
    }
    unsigned u;
    if (!hex4(p, &u)) return false;
    if (u >= 0xD800 && u < 0xDC00) {  /* a surrogate pair */
      unsigned lo;
      if (p->len - p->pos < 2 || p->h[p->pos] != '\\' || p->h[p->pos + 1] != 'u')
        return perr(p, "a lone UTF-16 surrogate in a string");
      p->pos += 2;
      if (!hex4(p, &lo)) return false;
      if (lo < 0xDC00 || lo >= 0xE000) return perr(p, "a lone UTF-16 surrogate in a string");
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if (u >= 0xDC00 && u < 0xE000) {
      return perr(p, "a lone UTF-16 surrogate in a string");
    }
    if (u == 0) return perr(p, "\\u0000 in a string");
    /* UTF-8 is never longer than the escape it came from (6 or 12 bytes). */
    if (u < 0x80) {
      s[k++] = (char)u;
    } else if (u < 0x800) {
      s[k++] = (char)(0xC0 | u >> 6);
      s[k++] = (char)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      s[k++] = (char)(0xE0 | u >> 12);
      s[k++] = (char)(0x80 | (u >> 6 & 0x3F));
      s[k++] = (char)(0x80 | (u & 0x3F));
    } else {
      s[k++] = (char)(0xF0 | u >> 18);
      s[k++] = (char)(0x80 | (u >> 12 & 0x3F));
      s[k++] = (char)(0x80 | (u >> 6 & 0x3F));
      s[k++] = (char)(0x80 | (u & 0x3F));
    }
  }
  s[k++] = 0;
  p->used += k;
  *out = s;
  return true;
}

/* uint = digit+, at most INT64_MAX. */
static bool parse_uint(Parser *p, const char *what, int64_t *out) {
  skip_ws(p);
  size_t start = p->pos;
  int64_t v = 0;
  while (p->pos < p->len && p->h[p->pos] >= '0' && p->h[p->pos] <= '9') {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, p->h[p->pos] - '0', &v)) {
      p->pos = start;
      char m[96];
      snprintf(m, sizeof m, "%s is too large", what);
      return perr(p, m);
    }
    p->pos++;
  }
  char after = p->pos < p->len ? p->h[p->pos] : 0;
  if (p->pos == start || after == '.' || after == 'e' || after == 'E') {
    p->pos = start;
    char m[96];
    snprintf(m, sizeof m, "%s must be a whole number, at least 0", what);
    return perr(p, m);
  }
  *out = v;
  return true;
}

/* meta = '{' (string ':' string (',' string ':' string)*)? '}' */
static bool parse_meta(Parser *p) {
  if (!expect(p, '{')) return false;
  if (next_is(p, '}')) return true;
  do {
    if (p->nmeta == p->metacap) {
      p->metacap = p->metacap ? 2 * p->metacap : 8;
      RtMeta *grown = realloc(p->meta, (size_t)p->metacap * sizeof *grown);
      if (!grown) return perr(p, "out of memory");
      p->meta = grown;
    }
    RtMeta *m = &p->meta[p->nmeta];
    if (!parse_string(p, &m->key) || !expect(p, ':')) return false;
    skip_ws(p);
    if (p->pos < p->len && p->h[p->pos] != '"')
      return perr(p, "__metadata__ values must be strings");
    if (!parse_string(p, &m->value)) return false;
    p->nmeta++;
  } while (next_is(p, ','));
  return expect(p, '}');
}

/* shape = '[' (uint (',' uint)*)? ']' */
static bool parse_shape(Parser *p, RtTensor *t) {
  if (!expect(p, '[')) return false;
  t->rank = 0;
  if (next_is(p, ']')) return true;
  do {
    if (t->rank == RT_MAX_RANK)
      return rt_fail(p->err, "'%s': the shape at byte %lld has more than 8 entries; nnc reads tensors of at "
                     "most 8 dimensions", p->path, at(p->pos));
    if (!parse_uint(p, "a dimension", &t->shape[t->rank++])) return false;
  } while (next_is(p, ','));
  return expect(p, ']');
}

/* tensor = '{' key ':' value (',' key ':' value)* '}' with the keys dtype,
 * shape and data_offsets, each exactly once. */
static bool parse_tensor(Parser *p, Entry *e) {
  size_t open = p->pos;
  if (!expect(p, '{')) return false;
  bool dtype = false, shape = false, offsets = false;
  if (!next_is(p, '}')) {
    do {
      const char *key;
      size_t key_at = p->pos;
      if (!parse_string(p, &key) || !expect(p, ':')) return false;
      bool *seen = !strcmp(key, "dtype")          ? &dtype
                   : !strcmp(key, "shape")        ? &shape
                   : !strcmp(key, "data_offsets") ? &offsets
                                                  : NULL;
      p->used -= strlen(key) + 1;  /* the key is not kept */
      if (!seen || *seen) {
        p->pos = key_at;
        return perr(p, seen ? "a key appears twice in a tensor's entry"
                            : "unknown key in a tensor's entry (expected dtype, shape, data_offsets)");
      }
      *seen = true;
      if (seen == &dtype) {
        size_t v_at = p->pos;
        const char *dt;
        if (!parse_string(p, &dt)) return false;
        if (strcmp(dt, "F32")) {
          p->pos = v_at;
          return rt_fail(p->err,
                         "'%s': tensor '%s' (byte %lld) has dtype %s; nnc reads F32 tensors only "
                         "(in PyTorch, save {k: v.float() for k, v in state_dict.items()})",
                         p->path, e->t.name, at(v_at), dt);
        }
        p->used -= strlen(dt) + 1;
      } else if (seen == &shape) {
        if (!parse_shape(p, &e->t)) return false;
      } else {
        if (!expect(p, '[') || !parse_uint(p, "an offset", &e->begin) || !expect(p, ',') ||
            !parse_uint(p, "an offset", &e->end) || !expect(p, ']'))
          return false;
      }
    } while (next_is(p, ','));
    if (!expect(p, '}')) return false;
  }
  if (!dtype || !shape || !offsets) {
    p->pos = open;
    return perr(p, !dtype ? "the tensor's entry has no dtype"
                   : !shape ? "the tensor's entry has no shape"
                            : "the tensor's entry has no data_offsets");
  }
  return true;
}

/* header = ws '{' (string ':' (meta | tensor) (',' ...)*)? '}' ws */
static bool parse_header(Parser *p) {
  if (!expect(p, '{')) return false;
  if (!next_is(p, '}')) {
    bool meta = false;  /* seen __metadata__ */
    do {
      skip_ws(p);
      size_t name_at = p->pos;
      const char *name;
      if (!parse_string(p, &name) || !expect(p, ':')) return false;
      if (!strcmp(name, "__metadata__")) {
        if (meta) {
          p->pos = name_at;
          return perr(p, "__metadata__ appears twice");
        }
        meta = true;
        if (!parse_meta(p)) return false;
        continue;
      }
      if (p->nents == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        Entry *grown = realloc(p->ents, (size_t)p->cap * sizeof *grown);
        if (!grown) return perr(p, "out of memory");
        p->ents = grown;
      }
      Entry *e = &p->ents[p->nents];
      memset(e, 0, sizeof *e);
      e->t.name = name;
      e->at = name_at;
      if (!parse_tensor(p, e)) return false;
      p->nents++;
    } while (next_is(p, ','));
    if (!expect(p, '}')) return false;
  }
  skip_ws(p);
  if (p->pos < p->len) return perr(p, "text after the header's closing '}'");
  return true;
}

static int by_offset(const void *a, const void *b) {
  const Entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const Entry *const *)a)->t.name, (*(const Entry *const *)b)->t.name);
}

/* Checks each tensor's size and that the tensors tile the data section. */
static bool check_layout(Parser *p, int64_t dlen) {
  for (int i = 0; i < p->nents; i++) {
    Entry *e = &p->ents[i];
    int64_t numel = 1, bytes;
    for (int d = 0; d < e->t.rank; d++)
      if (__builtin_mul_overflow(numel, e->t.shape[d], &numel))
        return rt_fail(p->err, "'%s': tensor '%s' (byte %lld) has a shape whose size overflows" DAMAGED,
                       p->path, e->t.name, at(e->at));
    if (__builtin_mul_overflow(numel, 4, &bytes))
      return rt_fail(p->err, "'%s': tensor '%s' (byte %lld) has a shape whose size overflows" DAMAGED,
                     p->path, e->t.name, at(e->at));
    e->t.numel = numel;
    if (e->end < e->begin || e->end - e->begin != bytes)
      return rt_fail(p->err,
                     "'%s': tensor '%s' (byte %lld): data_offsets [%lld, %lld] do not span the "
                     "%lld bytes its shape needs as F32" DAMAGED,
                     p->path, e->t.name, at(e->at), (long long)e->begin, (long long)e->end,
                     (long long)bytes);
    if (e->end > dlen)
      return rt_fail(p->err,
                     "'%s': tensor '%s' (byte %lld) ends at byte %lld of the data, but the data "
                     "section has %lld bytes; the file is truncated: save or copy it again",
                     p->path, e->t.name, at(e->at), (long long)e->end, (long long)dlen);
  }
  Entry **names = malloc((p->nents > 0 ? (size_t)p->nents : 1) * sizeof *names);
  if (!names) return rt_fail(p->err, "'%s': out of memory", p->path);
  for (int i = 0; i < p->nents; i++) names[i] = &p->ents[i];
  if (p->nents > 1) qsort(names, (size_t)p->nents, sizeof *names, by_name);
  for (int i = 1; i < p->nents; i++)
    if (!strcmp(names[i]->t.name, names[i - 1]->t.name)) {
      size_t a = names[i]->at > names[i - 1]->at ? names[i]->at : names[i - 1]->at;
      rt_fail(p->err, "'%s': the tensor name '%s' appears twice (byte %lld)" DAMAGED, p->path,
              names[i]->t.name, at(a));
      free(names);
      return false;
    }
  free(names);
  if (p->nents > 1) qsort(p->ents, (size_t)p->nents, sizeof *p->ents, by_offset);
  int64_t end = 0;
  for (int i = 0; i < p->nents; i++) {
    Entry *e = &p->ents[i];
    if (e->begin < end)
      return rt_fail(p->err, "'%s': the data of tensors '%s' and '%s' overlap" DAMAGED, p->path,
                     p->ents[i - 1].t.name, e->t.name);
    if (e->begin > end)
      return rt_fail(p->err, "'%s': bytes %lld..%lld of the data belong to no tensor" DAMAGED, p->path,
                     (long long)end, (long long)e->begin);
    end = e->end;
  }
  if (end != dlen)
    return rt_fail(p->err,
                   "'%s': the data section has %lld bytes but the tensors use %lld; the header "
                   "and the data do not match" DAMAGED,
                   p->path, (long long)dlen, (long long)end);
  return true;
}

bool rt_load_safetensors(const char *path, RtCheckpoint *out, RtError *err) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    return rt_fail(err, "cannot open checkpoint '%s': %s", path, strerror(e));
  }
  Parser p = {.path = path, .err = err};
  char *header = NULL;
  float *storage = NULL;
  bool ok = false;
  struct stat st;
  unsigned char lenbuf[8];
  if (fstat(fileno(f), &st) != 0) {
    rt_fail(err, "cannot read checkpoint '%s': %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    rt_fail(err, "'%s' is not a regular file%s", path,
            S_ISDIR(st.st_mode) ? " but a folder; name the .safetensors file in it" : "");
    goto done;
  }
  int64_t fsize = st.st_size;
  if (fsize == 0) {
    rt_fail(err, "'%s' is empty, not a safetensors checkpoint", path);
    goto done;
  }
  if (fsize < 8 || fread(lenbuf, 1, 8, f) != 8) {
    rt_fail(err, "'%s' is too short to be a safetensors file (%lld bytes, the length alone takes 8)",
            path, (long long)fsize);
    goto done;
  }
  /* A header length is a little-endian number below 2^56, so its last byte
   * is 0: eight bytes of text mean some other file (a CSV, a spec). */
  bool text = true;
  for (int i = 0; i < 8; i++)
    text = text && ((lenbuf[i] >= 0x20 && lenbuf[i] < 0x7f) || lenbuf[i] == '\t' || lenbuf[i] == '\n' ||
                    lenbuf[i] == '\r');
  if (text) {
    char shown[40];
    size_t k = 0;
    for (int i = 0; i < 8; i++) {
      unsigned char c = lenbuf[i];
      if (c == '\n' || c == '\r' || c == '\t')
        k += (size_t)snprintf(shown + k, sizeof shown - k, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
      else if (c == '\'' || c == '\\')
        k += (size_t)snprintf(shown + k, sizeof shown - k, "\\%c", c);
      else
        shown[k++] = (char)c;
    }
    shown[k] = 0;
    rt_fail(err, "'%s' is not a safetensors checkpoint: it starts with the text '%s...', where a "
            "checkpoint starts with the 8-byte length of its header; is it the right file?", path, shown);
    goto done;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenbuf[i];
  if (hlen > (uint64_t)(fsize - 8)) {
    rt_fail(err,
            "'%s': the header length (byte 0) is %llu bytes, but only %lld bytes follow; the "
            "file is truncated or not a safetensors file",
            path, (unsigned long long)hlen, (long long)(fsize - 8));
    goto done;
  }
  if (hlen > ST_MAX_HEADER || hlen < 2) {
    rt_fail(err, "'%s': the header length (byte 0) is %llu bytes; safetensors headers have "
            "2 to 100000000", path, (unsigned long long)hlen);
    goto done;
  }
  header = malloc(hlen);
  p.pool = malloc(hlen);
  if (!header || !p.pool) {
    rt_fail(err, "'%s': out of memory for its %llu-byte header", path, (unsigned long long)hlen);
    goto done;
  }
  if (fread(header, 1, hlen, f) != hlen) {
    rt_fail(err, "cannot read '%s': %s", path, ferror(f) ? strerror(errno) : "it shrank");
    goto done;
  }
  p.h = header;
  p.len = hlen;
  int64_t dlen = fsize - 8 - (int64_t)hlen;
  if (!parse_header(&p) || !check_layout(&p, dlen)) goto done;
  storage = malloc(dlen ? (size_t)dlen : 1);
  if (!storage) {
    rt_fail(err, "'%s': out of memory for %lld bytes of tensors", path, (long long)dlen);
    goto done;
  }
  if (fread(storage, 1, (size_t)dlen, f) != (size_t)dlen) {
    rt_fail(err, "cannot read '%s': %s", path, ferror(f) ? strerror(errno) : "it shrank");
    goto done;
  }
  out->tensors = malloc((p.nents > 0 ? (size_t)p.nents : 1) * sizeof *out->tensors);
  if (!out->tensors) {
    rt_fail(err, "'%s': out of memory", path);
    goto done;
  }
  /* Offsets are multiples of 4 (every tensor before is F32 and there are
   * no holes), so each tensor's floats are aligned in the storage. */
  for (int i = 0; i < p.nents; i++) {
    out->tensors[i] = p.ents[i].t;
    out->tensors[i].data = storage + p.ents[i].begin / 4;
  }
  out->ntensors = p.nents;
  out->nmeta = p.nmeta;
  out->meta = p.meta;
  out->strings = p.pool;
  out->storage = storage;
  p.meta = NULL;
  p.pool = NULL;
  storage = NULL;
  ok = true;

done:
  fclose(f);
  free(header);
  free(p.pool);
  free(p.ents);
  free(p.meta);
  free(storage);
  return ok;
}

const RtTensor *rt_checkpoint_find(const RtCheckpoint *c, const char *name) {
  for (int i = 0; i < c->ntensors; i++)
    if (!strcmp(c->tensors[i].name, name)) return &c->tensors[i];
  return NULL;
}

const char *rt_checkpoint_meta(const RtCheckpoint *c, const char *key) {
  for (int i = 0; i < c->nmeta; i++)
    if (!strcmp(c->meta[i].key, key)) return c->meta[i].value;
  return NULL;
}

void rt_checkpoint_free(RtCheckpoint *c) {
  free(c->tensors);
  free(c->meta);
  free(c->strings);
  free(c->storage);
  memset(c, 0, sizeof *c);
}

/* ---- the writer ---------------------------------------------------------- */

/* A JSON string: quotes, backslashes and control bytes escaped. */

bool rt_save_safetensors(const char *path, const RtTensorRef *ts, int n, const RtMeta *meta,
                         int nmeta, RtError *err) {
  int64_t offset = 0;
  for (int i = 0; i < n; i++) {
    const RtTensorRef *t = &ts[i];
    int64_t numel = 1;
    bool bad = !t->name || !strcmp(t->name, "__metadata__") || t->rank < 0 ||
               t->rank > RT_MAX_RANK;
    for (int d = 0; !bad && d < t->rank; d++)
      bad = t->shape[d] < 0 || __builtin_mul_overflow(numel, t->shape[d], &numel);
    bad = bad || __builtin_mul_overflow(numel, 4, &numel) ||
          __builtin_add_overflow(offset, numel, &offset) || (numel && !t->data);
    for (int j = 0; !bad && j < i; j++) bad = !strcmp(ts[j].name, t->name);
    if (bad)
      return rt_fail(err, "cannot save '%s': tensor %d ('%s') has a bad name, shape or data",
                     path, i, t->name ? t->name : "(null)");
  }
  char *head = NULL;
  size_t hlen = 0;
  FILE *h = open_memstream(&head, &hlen);
  if (!h) return rt_fail(err, "cannot save '%s': out of memory", path);
  fputc('{', h);
  if (nmeta > 0) {
    fputs("\"__metadata__\":{", h);
    for (int i = 0; i < nmeta; i++) {
      if (i) fputc(',', h);
      rt_json_string(h, meta[i].key);
      fputc(':', h);
      rt_json_string(h, meta[i].value);
    }
    fputc('}', h);
  }
  offset = 0;
  for (int i = 0; i < n; i++) {
    const RtTensorRef *t = &ts[i];
    int64_t bytes = 4;
    for (int d = 0; d < t->rank; d++) bytes *= t->shape[d];
    if (i || nmeta > 0) fputc(',', h);
    rt_json_string(h, t->name);
    fputs(":{\"dtype\":\"F32\",\"shape\":[", h);
    for (int d = 0; d < t->rank; d++) fprintf(h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    fprintf(h, "],\"data_offsets\":[%lld,%lld]}", (long long)offset, (long long)(offset + bytes));
    offset += bytes;
  }
  fputc('}', h);
  /* Pad with spaces so the data section starts 8-byte aligned. */
  fflush(h);
  while (hlen % 8) {
    fputc(' ', h);
    fflush(h);
  }
  bool mem_ok = fclose(h) == 0;
  if (!mem_ok || !head) {
    free(head);
    return rt_fail(err, "cannot save '%s': out of memory", path);
  }

  RtAtomicFile af;
  if (!rt_atomic_open(&af, path, err)) {
    free(head);
    return false;
  }
  unsigned char lenbuf[8];
  for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  fwrite(lenbuf, 1, 8, af.f);
  fwrite(head, 1, hlen, af.f);
  free(head);
  for (int i = 0; i < n; i++) {
    int64_t numel = 1;
    for (int d = 0; d < ts[i].rank; d++) numel *= ts[i].shape[d];
    if (numel) fwrite(ts[i].data, sizeof(float), (size_t)numel, af.f);
  }
  return rt_atomic_commit(&af, err);
}
