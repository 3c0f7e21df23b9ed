/*
 * csv.c — the CSV loader: selected column ranges of a CSV file become named
 * float fields of a table (HW1's covid.train.csv: x = columns 1..116,
 * y = column 117).
 *
 * The whole file is read into memory and cut into records by a small state
 * machine that knows RFC 4180 quoting ("a,b" is one cell, "" inside quotes is
 * a quote), CRLF, lone CR and LF line ends, a UTF-8 byte-order mark (Excel
 * writes one) and blank lines (skipped, as the checker skips them when it
 * counts rows). Every row must have the header's number of columns, so a
 * stray comma is caught where it is rather than shifting every later column.
 * Selected cells are parsed with strtof (correctly rounded to float32) and
 * must be finite numbers; an error gives `path:line:col:`, the column number
 * counted from 0 as cols() counts, the column's header name and the cell
 * (bytes that are not printable UTF-8 shown as \xNN). A folder, a gzip or
 * zip file and UTF-16 text are recognised and named as what they are.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
  size_t start, len;   /* bytes of the cell, without its quotes */
  size_t line_start;   /* offset of the first byte of its line */
  int64_t line;        /* 1-based line of its first byte */
  bool quoted;
} Cell;

typedef struct {
  const char *path;
  const char *buf;
  size_t len, pos, line_start;
  int64_t line;
  Cell *cells;
  int64_t ncells, cap;
  RtError *err;
} Csv;

/* Reads a whole file; NUL-terminated so cells can be printed safely. */
static char *read_file(const char *path, size_t *len, RtError *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    rt_fail(err, "cannot open data file '%s': %s", path, strerror(e));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    rt_fail(err, "data file '%s' is a folder; name the CSV file in it", path);
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      rt_fail(err, "'%s': out of memory after reading %zu bytes", path, n);
      return NULL;
    }
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *grown = realloc(buf, cap * 2);
    if (!grown) free(buf);
    buf = grown;
    cap *= 2;
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    rt_fail(err, "cannot read data file '%s' (an I/O error after %zu bytes)", path, n);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  /* Files a student may pass for a CSV file, recognised by their first
   * bytes, rather than reported as a cell that is not a number. */
  const char *what = NULL;
  if (n >= 2 && !memcmp(buf, "\x1f\x8b", 2))
    what = "gzip-compressed; unpack it first (gunzip)";
  else if (n >= 4 && !memcmp(buf, "PK\x03\x04", 4))
    what = "a zip archive (or an Excel .xlsx file); unpack it, or save the sheet as CSV";
  else if (n >= 2 && (!memcmp(buf, "\xff\xfe", 2) || !memcmp(buf, "\xfe\xff", 2)))
    what = "UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8 (in Excel: CSV UTF-8)";
  if (what) {
    free(buf);
    rt_fail(err, "data file '%s' is %s", path, what);
    return NULL;
  }
  return buf;
}

/* The column of byte `at` on the line starting at `line_start`, counting
 * UTF-8 characters, 1-based (as the spec checker counts). */
static int64_t char_col(const Csv *c, size_t line_start, size_t at) {
  int64_t col = 1;
  for (size_t i = line_start; i < at; i++)
    if (((unsigned char)c->buf[i] & 0xC0) != 0x80) col++;
  return col;
}

static bool ends_cell(char ch) {
  return ch == ',' || ch == '\r' || ch == '\n';
}

/* Consumes one line end (CRLF, LF or CR) at pos. */
static void eat_newline(Csv *c) {
  if (c->buf[c->pos++] == '\r' && c->pos < c->len && c->buf[c->pos] == '\n') c->pos++;
  c->line++;
  c->line_start = c->pos;
}

static bool push_cell(Csv *c, Cell cell) {
  if (c->ncells == c->cap) {
    int64_t cap = c->cap ? c->cap * 2 : 64;
    Cell *grown = realloc(c->cells, (size_t)cap * sizeof *grown);
    if (!grown) return rt_fail(c->err, "%s:%lld: out of memory", c->path, (long long)c->line);
    c->cells = grown;
    c->cap = cap;
  }
  c->cells[c->ncells++] = cell;
  return true;
}

/* record = cell ("," cell)* newline; blank lines before it are skipped.
 * Returns 1 for a record (in c->cells), 0 at the end, -1 on error. */
static int read_record(Csv *c) {
  while (c->pos < c->len && (c->buf[c->pos] == '\n' || c->buf[c->pos] == '\r')) eat_newline(c);
  if (c->pos >= c->len) return 0;
  c->ncells = 0;
  for (;;) {
    Cell cell = {.start = c->pos, .line = c->line, .line_start = c->line_start};
    if (c->pos < c->len && c->buf[c->pos] == '"') {
      size_t open = c->pos;
      int64_t open_line = c->line;
      size_t open_line_start = c->line_start;
      cell.quoted = true;
      cell.start = ++c->pos;
      for (;;) {
        if (c->pos >= c->len) {
          rt_fail(c->err,
                  "%s:%lld:%lld: the quote that opens this cell is never closed; "
                  "add the closing '\"'",
                  c->path, (long long)open_line, (long long)char_col(c, open_line_start, open));
          return -1;
        }
        char ch = c->buf[c->pos];
        if (ch == '"') {
          if (c->pos + 1 < c->len && c->buf[c->pos + 1] == '"') {
            c->pos += 2;
            continue;
          }
          break;
        }
        if (ch == '\n' || ch == '\r')
          eat_newline(c);
        else
          c->pos++;
      }
      cell.len = c->pos - cell.start;
      c->pos++;  /* the closing quote */
      if (c->pos < c->len && !ends_cell(c->buf[c->pos])) {
        rt_fail(c->err,
                "%s:%lld:%lld: text after the closing quote of a cell; a quote "
                "inside a quoted cell is written \"\"",
                c->path, (long long)c->line, (long long)char_col(c, c->line_start, c->pos));
        return -1;
      }
    } else {
      while (c->pos < c->len && !ends_cell(c->buf[c->pos])) c->pos++;
      cell.len = c->pos - cell.start;
    }
    if (!push_cell(c, cell)) return -1;
    if (c->pos >= c->len) return 1;
    if (c->buf[c->pos] == ',') {
      c->pos++;
      continue;
    }
    eat_newline(c);
    return 1;
  }
}

/* The cell's text without quotes ("" as "), NUL-terminated, in *scratch;
 * its length in *n (the cell itself may hold NUL bytes). */
static bool cell_text(const Csv *c, const Cell *cell, char **scratch, size_t *cap, size_t *n) {
  if (cell->len + 1 > *cap) {
    size_t want = cell->len + 1 > 2 * *cap ? cell->len + 1 : 2 * *cap;
    char *grown = realloc(*scratch, want);
    if (!grown) return rt_fail(c->err, "%s:%lld: out of memory", c->path, (long long)cell->line);
    *scratch = grown;
    *cap = want;
  }
  size_t k = 0;
  for (size_t i = 0; i < cell->len; i++) {
    char ch = c->buf[cell->start + i];
    (*scratch)[k++] = ch;
    if (cell->quoted && ch == '"') i++;  /* "" stands for one quote */
  }
  (*scratch)[k] = 0;
  *n = k;
  return true;
}

/* The length of the valid UTF-8 character at s[0..n), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : s[0] >= 0xE0 && s[0] < 0xF0 ? 3
             : s[0] >= 0xF0 && s[0] < 0xF5 ? 4 : 0;
  if (len == 0 || len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  /* overlong forms, surrogates and code points past U+10FFFF */
  if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) || (s[0] == 0xF0 && s[1] < 0x90) ||
      (s[0] == 0xF4 && s[1] >= 0x90))
    return 0;
  return len;
}

/* `n` bytes of `s` for an error message: quoted, at most ~40 bytes; control
 * bytes and bytes that are not UTF-8 as \xNN, the invisible byte-order mark
 * as \ufeff, so the message is readable text that shows what is there. */
static void show(char *out, size_t cap, const char *s, size_t n) {
  size_t k = 0;
  out[k++] = '\'';
  for (size_t i = 0; i < n && k + 8 < cap;) {
    const unsigned char *p = (const unsigned char *)s + i;
    if (k > 40) {
      memcpy(out + k, "...", 3);
      k += 3;
      break;
    }
    size_t len = utf8_len(p, n - i);
    if (len == 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) {
      memcpy(out + k, "\\ufeff", 6);
      k += 6;
    } else if (len == 0 || p[0] < 0x20 || p[0] == 0x7f) {
      k += (size_t)snprintf(out + k, cap - k, "\\x%02x", p[0]);
      len = 1;
    } else {
      memcpy(out + k, p, len);
      k += len;
    }
    i += len;
  }
  out[k++] = '\'';
  out[k] = 0;
}

/* Why a cell is not a float32 value (NUM_OK: it is). */
typedef enum { NUM_OK, NUM_NOT_A_NUMBER, NUM_NOT_FINITE, NUM_TOO_LARGE } NumProblem;

/* Parses the n bytes at s as a number: surrounding spaces and tabs
 * allowed, nothing else (a NUL byte inside is not the end). */
static NumProblem parse_float(const char *s, size_t n, float *out) {
  const char *stop = s + n;
  while (s < stop && (*s == ' ' || *s == '\t')) s++;
  if (s == stop) return NUM_NOT_A_NUMBER;
  char *end;
  float v = strtof(s, &end);
  while (end < stop && (*end == ' ' || *end == '\t')) end++;
  if (end != stop) return NUM_NOT_A_NUMBER;
  if (!isfinite(v)) {
    /* "nan" or "inf" as written, or a number past float32's range */
    const char *p = s + (*s == '+' || *s == '-');
    return (*p == 'n' || *p == 'N' || *p == 'i' || *p == 'I') ? NUM_NOT_FINITE : NUM_TOO_LARGE;
  }
  *out = v;
  return NUM_OK;
}

/* A field's name as the spec writes it: the driver loads a field of several
 * column ranges as parts "x#0", "x#1", ... and joins them; a message names
 * the field, not the part. */
static int field_name_len(const char *name) {
  const char *hash = strrchr(name, '#');
  if (!hash || !hash[1]) return (int)strlen(name);
  for (const char *p = hash + 1; *p; p++)
    if (*p < '0' || *p > '9') return (int)strlen(name);
  return (int)(hash - name);
}

/* Checks the selections against the file's `ncols` columns and makes the
 * table's fields. */
static bool make_fields(Csv *c, const RtColumnSel *sel, int nsel, int64_t ncols, RtTable *t) {
  t->fields = calloc((size_t)(nsel > 0 ? nsel : 1), sizeof *t->fields);
  if (!t->fields) return rt_fail(c->err, "%s: out of memory", c->path);
  for (int i = 0; i < nsel; i++) {
    const RtColumnSel *s = &sel[i];
    for (int j = 0; j < i; j++)
      if (!strcmp(sel[j].name, s->name))
        return rt_fail(c->err, "%s: the field '%.*s' is selected twice; give each field its own name",
                       c->path, field_name_len(s->name), s->name);
    if (s->first < 0 || s->last < s->first || s->last >= ncols)
      return rt_fail(c->err,
                     "%s: field '%.*s' takes columns %lld..%lld, but the file has %lld "
                     "column%s (0..%lld); columns count from 0",
                     c->path, field_name_len(s->name), s->name, (long long)s->first, (long long)s->last,
                     (long long)ncols, ncols == 1 ? "" : "s", (long long)(ncols - 1));
    RtField *f = &t->fields[t->nfields++];
    f->name = strdup(s->name);
    if (!f->name) return rt_fail(c->err, "%s: out of memory", c->path);
    f->width = s->last - s->first + 1;
    f->rank = 1;
    f->shape[0] = f->width;
  }
  return true;
}

/* Grows every field to hold `rows` rows. */
static bool reserve_rows(Csv *c, RtTable *t, int64_t rows) {
  for (int i = 0; i < t->nfields; i++) {
    RtField *f = &t->fields[i];
    size_t bytes;
    float *grown = NULL;
    if (!__builtin_mul_overflow((size_t)rows, (size_t)f->width * sizeof(float), &bytes))
      grown = realloc(f->data, bytes);
    if (!grown)
      return rt_fail(c->err, "%s:%lld: out of memory for %lld rows", c->path, (long long)c->line,
                     (long long)rows);
    f->data = grown;
  }
  return true;
}

bool rt_load_csv(const char *path, bool header, const RtColumnSel *sel, int nsel,
                 RtTable *out, RtError *err) {
  memset(out, 0, sizeof *out);
  Csv c = {.path = path, .line = 1, .err = err};
  char *buf = read_file(path, &c.len, err);
  if (!buf) return false;
  c.buf = buf;
  if (c.len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) c.pos = c.line_start = 3;

  RtTable t = {0};
  char *scratch = NULL, **names = NULL;
  size_t scap = 0;
  int64_t ncols = 0, first_line = 0, cap = 0;
  bool ok = false;
  int r = read_record(&c);
  if (r == 0) rt_fail(err, "%s: the file is empty; it needs %s", path, header ? "a header line and data rows" : "data rows");
  if (r <= 0) goto done;
  ncols = c.ncells;
  first_line = c.cells[0].line;
  if (header) {
    /* Keep the column names for error messages. */
    names = calloc((size_t)ncols, sizeof *names);
    if (!names) {
      rt_fail(err, "%s: out of memory", path);
      goto done;
    }
    for (int64_t j = 0; j < ncols; j++) {
      size_t n;
      if (!cell_text(&c, &c.cells[j], &scratch, &scap, &n)) goto done;
      names[j] = strndup(scratch, n);
      if (!names[j]) {
        rt_fail(err, "%s: out of memory", path);
        goto done;
      }
    }
  }
  if (!make_fields(&c, sel, nsel, ncols, &t)) goto done;
  if (header) r = read_record(&c);

  for (; r == 1; r = read_record(&c)) {
    if (c.ncells != ncols) {
      rt_fail(err,
              "%s:%lld: this row has %lld column%s, but %s (line %lld) has %lld; every row "
              "needs the same number (a missing cell, or a comma inside a cell without quotes?)",
              path, (long long)c.cells[0].line, (long long)c.ncells, c.ncells == 1 ? "" : "s",
              header ? "the header" : "the first row", (long long)first_line, (long long)ncols);
      goto done;
    }
    if (t.rows == cap) {
      cap = cap ? cap * 2 : 1024;
      if (!reserve_rows(&c, &t, cap)) goto done;
    }
    for (int i = 0; i < nsel; i++) {
      RtField *f = &t.fields[i];
      float *row = f->data + t.rows * f->width;
      for (int64_t j = sel[i].first; j <= sel[i].last; j++) {
        const Cell *cell = &c.cells[j];
        size_t n;
        if (!cell_text(&c, cell, &scratch, &scap, &n)) goto done;
        NumProblem why = parse_float(scratch, n, &row[j - sel[i].first]);
        if (why != NUM_OK) {
          char shown[64], named[80] = "";
          show(shown, sizeof shown, scratch, n);
          if (names) {
            char nm[64];
            show(nm, sizeof nm, names[j], strlen(names[j]));
            snprintf(named, sizeof named, " (%s)", nm);
          }
          /* a header row read as data: say how to mark it */
          bool first_row = !header && t.rows == 0;
          rt_fail(err,
                  "%s:%lld:%lld: column %lld%s of field '%.*s' is %s, which is %s; "
                  "every cell of columns %lld..%lld must be a finite number%s",
                  path, (long long)cell->line,
                  (long long)char_col(&c, cell->line_start, cell->start - cell->quoted),
                  (long long)j, named, field_name_len(sel[i].name), sel[i].name, cell->len ? shown : "empty",
                  why == NUM_NOT_FINITE  ? "not a finite number"
                  : why == NUM_TOO_LARGE ? "too large for a float32 (at most 3.4e38 in magnitude)"
                                         : "not a number",
                  (long long)sel[i].first, (long long)sel[i].last,
                  first_row ? "; if the first line names the columns, write header: true in csv(...)" : "");
          goto done;
        }
      }
    }
    t.rows++;
  }
  if (r < 0) goto done;
  if (t.rows == 0) {
    rt_fail(err, "%s: the file has a header line but no data rows", path);
    goto done;
  }
  ok = true;

done:
  if (names)
    for (int64_t j = 0; j < ncols; j++) free(names[j]);
  free(names);
  free(scratch);
  free(c.cells);
  free(buf);
  if (ok)
    *out = t;
  else
    rt_table_free(&t);
  return ok;
}

bool rt_csv_row_line(const char *path, bool header, int64_t row, int64_t *line, RtError *err) {
  Csv c = {.path = path, .line = 1, .err = err};
  char *buf = read_file(path, &c.len, err);
  if (!buf) return false;
  c.buf = buf;
  if (c.len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) c.pos = c.line_start = 3;
  /* the records as rt_load_csv reads them: blank lines skipped, quoted
   * cells over several lines */
  int64_t k = header ? -1 : 0;
  int r = 0;
  bool found = false;
  while (!found && (r = read_record(&c)) == 1) {
    if (k++ == row) {
      *line = c.cells[0].line;
      found = true;
    }
  }
  if (!found && r >= 0) rt_fail(err, "%s has no data row %lld", path, (long long)row + 1);
  free(c.cells);
  free(buf);
  return found;
}
