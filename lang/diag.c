/*
 * diag.c — diagnostics: every message about a user's spec goes through here.
 *
 *   specs/hw3.nn:14:9: error: Linear expects [B, 8192], got [B, 512, 4, 4]
 *      14 |     h = fc(x)
 *         |         ^~~~~
 *         = hint: flatten first: fc(flatten(x))
 *
 * Columns count code points; the caret line copies tabs from the source line
 * and uses two columns under wide (CJK) characters so the caret lands under
 * the spot in a terminal.
 */
#include "lang/lang.h"

#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, FILE *out, int max_errors) {
  memset(d, 0, sizeof *d);
  d->out = out;
  d->max_errors = max_errors > 0 ? max_errors : 20;
}

int diag_full(const Diag *d) { return d->nerrors >= d->max_errors; }

static unsigned decode(const unsigned char **pp, const unsigned char *end) {
  const unsigned char *p = *pp;
  unsigned c = *p++;
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  if (extra) c &= 0x3Fu >> extra;
  while (extra-- > 0 && p < end) c = (c << 6) | (*p++ & 0x3F);
  *pp = p;
  return c;
}

static int is_wide(unsigned c) {
  return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
         (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
         (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x20000 && c <= 0x3FFFD);
}

static void show_line(Diag *d, Loc loc, const char *mark_color) {
  size_t n;
  const char *line = source_line(loc.src, loc.line, &n);
  fprintf(d->out, "%5d | ", loc.line);
  /* the line as it is, but bytes that are not valid UTF-8 (or are control
   * characters) as '?', so the terminal shows what the caret points at */
  for (size_t i = 0; i < n;) {
    const unsigned char *q = (const unsigned char *)line + i;
    size_t k = utf8_valid_len(q, n - i);
    if (k == 0 || (k == 1 && *q < 0x20 && *q != '\t')) {
      fputc('?', d->out);
      i++;
    } else {
      fwrite(q, 1, k, d->out);
      i += k;
    }
  }
  fprintf(d->out, "\n      | ");
  const unsigned char *p = (const unsigned char *)line, *end = p + n;
  int col = 1;
  while (col < loc.col && p < end) {
    unsigned c = decode(&p, end);
    fputs(c == '\t' ? "\t" : is_wide(c) ? "  " : " ", d->out);
    col++;
  }
  if (d->color) fputs(mark_color, d->out);
  /* a caret under the first character, `~` under the rest of the spot
   * (up to the end of the line) */
  unsigned first = p < end ? decode(&p, end) : ' ';
  fputs(is_wide(first) ? "^~" : "^", d->out);
  for (int i = 1; i < loc.len && p < end; i++)
    fputs(is_wide(decode(&p, end)) ? "~~" : "~", d->out);
  if (d->color) fputs("\033[0m", d->out);
  fputc('\n', d->out);
}

void diag_vreport(Diag *d, DiagLevel lv, Loc loc, const char *fmt, va_list ap) {
  static const char *names[] = {"error", "warning", "note"};
  static const char *colors[] = {"\033[1;31m", "\033[1;35m", "\033[1;36m"};
  if (lv == DIAG_ERROR) {
    if (d->nerrors >= d->max_errors) {
      d->nerrors++;
      return;
    }
    d->nerrors++;
  } else if (lv == DIAG_WARNING) {
    d->nwarnings++;
  }
  if (d->color) fputs("\033[1m", d->out);
  if (loc.src && loc.line >= 1)
    fprintf(d->out, "%s:%d:%d: ", loc.src->path, loc.line, loc.col);
  else if (loc.src)
    fprintf(d->out, "%s: ", loc.src->path);   /* the file as a whole */
  else
    fputs("nnc: ", d->out);
  if (d->color) fprintf(d->out, "%s%s:\033[0m\033[1m ", colors[lv], names[lv]);
  else fprintf(d->out, "%s: ", names[lv]);
  vfprintf(d->out, fmt, ap);
  if (d->color) fputs("\033[0m", d->out);
  fputc('\n', d->out);
  if (loc.src && loc.line >= 1 && loc.line <= loc.src->nlines)
    show_line(d, loc, colors[lv]);
  if (lv == DIAG_ERROR && d->nerrors == d->max_errors)
    fprintf(d->out, "nnc: too many errors (%d); stopping here\n", d->max_errors);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(d, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
}

void diag_warning(Diag *d, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(d, DIAG_WARNING, loc, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(d, DIAG_NOTE, loc, fmt, ap);
  va_end(ap);
}

void diag_hint(Diag *d, const char *fmt, ...) {
  if (d->nerrors > d->max_errors) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("      = hint: ", d->out);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  va_end(ap);
}

_Noreturn void nnc_die(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nnc: internal error at %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputs("\nnnc: this is a bug in nnc, not in your spec; please report it\n", stderr);
  va_end(ap);
  abort();
}

/* Edit distance with adjacent transpositions (so "cvs" is one edit from
 * "csv"), letters compared without case when `fold` is set. */
static int edit_distance(const char *a, const char *b, int fold) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 64 || m > 64) return 99;
  int d[65][65];
  for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      int ca = a[i - 1], cb = b[j - 1];
      if (fold && ca >= 'A' && ca <= 'Z') ca += 32;
      if (fold && cb >= 'A' && cb <= 'Z') cb += 32;
      int best = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1) {
        int pa = a[i - 2], pb = b[j - 2];
        if (fold && pa >= 'A' && pa <= 'Z') pa += 32;
        if (fold && pb >= 'A' && pb <= 'Z') pb += 32;
        if (ca == pb && pa == cb && d[i - 2][j - 2] + 1 < best) best = d[i - 2][j - 2] + 1;
      }
      d[i][j] = best;
    }
  }
  return d[n][m];
}

int lev_distance(const char *a, const char *b) { return edit_distance(a, b, 1); }

/* A checker asks this for every unknown name, over every name in scope
 * (hundreds of builtins): names whose lengths alone put them out of reach
 * are skipped without computing their distance, or a spec of many unknown
 * names took seconds to check. */
const char *closest_name(const char *name, const char *const *cands, int n) {
  const char *best = NULL;
  int best_d = 99, best_exact = 99;
  size_t len = strlen(name);
  int limit = len <= 1 ? 0 : len <= 3 ? 1 : len <= 6 ? 2 : 3;
  for (int i = 0; i < n; i++) {
    if (!cands[i] || strcmp(cands[i], name) == 0) continue;
    size_t clen = strlen(cands[i]);
    if ((clen > len ? clen - len : len - clen) > (size_t)limit) continue;   /* the distance is at least that */
    int dist = edit_distance(name, cands[i], 1);
    if (dist > best_d) continue;
    /* among equally close names, the one that also matches in case:
     * `sofmax` is the function softmax, not the layer Softmax */
    int exact = edit_distance(name, cands[i], 0);
    if (dist < best_d || exact < best_exact) {   /* (dist <= best_d here) */
      best_d = dist;
      best_exact = exact;
      best = cands[i];
    }
  }
  return best_d <= limit ? best : NULL;
}
