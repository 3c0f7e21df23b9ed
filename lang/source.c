/*
 * source.c — loading spec files: the whole file in memory, a UTF-8 BOM
 * removed, every byte checked (no NUL, valid UTF-8; UTF-16, gzip, zip and
 * folders named as such), and a table of line starts for diagnostics.
 * `\n`, `\r\n` and a lone `\r` all end a line.
 */
#include "lang/lang.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Length of the UTF-8 sequence starting at p (at most n bytes available),
 * or 0 if it is not valid UTF-8 (overlong forms and surrogates included). */
size_t utf8_valid_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int len;
  unsigned min;
  if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
  else return 0;
  if ((size_t)len > n) return 0;
  for (int i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return (size_t)len;
}

Source *source_from_text(Arena *a, Diag *d, const char *path,
                         const char *text, size_t len) {
  Source *s = arena_alloc(a, sizeof *s);
  s->path = arena_strdup(a, path);
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
    text += 3;
    len -= 3;
  }
  char *copy = arena_strndup(a, text, len);
  s->text = copy;
  s->len = len;

  /* line table first, so that errors below can show their line */
  int cap = 64, n = 0;
  const char **starts = malloc(sizeof(char *) * (size_t)cap);
  if (!starts) nnc_die(__FILE__, __LINE__, "out of memory");
  starts[n++] = copy;
  for (size_t i = 0; i < len; i++) {
    int eol = copy[i] == '\n' || (copy[i] == '\r' && (i + 1 >= len || copy[i + 1] != '\n'));
    if (eol) {
      if (n == cap) {
        cap *= 2;
        const char **grown = realloc(starts, sizeof(char *) * (size_t)cap);
        if (!grown) nnc_die(__FILE__, __LINE__, "out of memory");
        starts = grown;
      }
      starts[n++] = copy + i + 1;
    }
  }
  s->line_start = arena_alloc(a, sizeof(char *) * (size_t)n);
  memcpy(s->line_start, starts, sizeof(char *) * (size_t)n);
  s->nlines = n;
  free(starts);

  /* UTF-16 (Windows Notepad's "Unicode") and compressed files, recognised
   * by their first bytes rather than reported as the bad UTF-8 byte they
   * start with */
  if (len >= 2 && (!memcmp(copy, "\xFF\xFE", 2) || !memcmp(copy, "\xFE\xFF", 2))) {
    diag_error(d, (Loc){s, 1, 1, 1}, "the spec file is UTF-16 text (it starts with a UTF-16 byte-order mark)");
    diag_hint(d, "save it with UTF-8 encoding");
    return NULL;
  }
  if ((len >= 2 && !memcmp(copy, "\x1F\x8B", 2)) || (len >= 4 && !memcmp(copy, "PK\x03\x04", 4))) {
    diag_error(d, (Loc){s, 1, 1, 1}, "the spec file is %s, not text", copy[0] == 'P' ? "a zip archive" : "gzip-compressed");
    diag_hint(d, "unpack it first (%s) and give nnc the .nn file", copy[0] == 'P' ? "unzip" : "gunzip");
    return NULL;
  }

  /* NUL bytes and bad UTF-8, reported at their line and column */
  int line = 1, col = 1, bad = 0;
  for (size_t i = 0; i < len;) {
    const unsigned char *p = (const unsigned char *)copy + i;
    if (*p == 0) {
      diag_error(d, (Loc){s, line, col, 1}, "NUL byte in the spec file");
      diag_hint(d, "the file looks binary or was saved in UTF-16; save it as UTF-8 text");
      bad = 1;
      break;
    }
    int k = (int)utf8_valid_len(p, len - i);
    if (k == 0) {
      diag_error(d, (Loc){s, line, col, 1}, "invalid UTF-8 byte 0x%02X", *p);
      diag_hint(d, "save the file with UTF-8 encoding (GBK/Big5 text is not accepted)");
      bad = 1;
      break;
    }
    if (*p == '\n' || (*p == '\r' && (i + 1 >= len || p[1] != '\n'))) {
      line++;
      col = 1;
    } else if (*p != '\r') {
      col++;
    }
    i += (size_t)k;
  }
  return bad ? NULL : s;
}

Source *source_load(Arena *a, Diag *d, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_error(d, (Loc){0}, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    diag_error(d, (Loc){0}, "'%s' is a folder; name a spec file (.nn) in it", path);
    return NULL;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) nnc_die(__FILE__, __LINE__, "out of memory");
  size_t got;
  while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
    len += got;
    if (len == cap) {
      if (cap >= (size_t)64 << 20) {
        free(buf);
        fclose(f);
        diag_error(d, (Loc){0}, "'%s' is larger than 64 MiB; is it really a spec?", path);
        return NULL;
      }
      cap *= 2;
      char *grown = realloc(buf, cap);
      if (!grown) nnc_die(__FILE__, __LINE__, "out of memory");
      buf = grown;
    }
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    diag_error(d, (Loc){0}, "cannot read '%s'", path);
    return NULL;
  }
  Source *s = source_from_text(a, d, path, buf, len);
  free(buf);
  return s;
}

const char *source_line(const Source *s, int line, size_t *len) {
  if (line < 1 || line > s->nlines) {
    *len = 0;
    return "";
  }
  const char *p = s->line_start[line - 1];
  const char *end = s->text + s->len;
  const char *q = p;
  while (q < end && *q != '\n' && *q != '\r') q++;
  *len = (size_t)(q - p);
  return p;
}
