/*
 * progress.c — what a training run shows while it runs, and the metrics log
 * it leaves behind.
 *
 * On a terminal a bar is redrawn in place (`\r`, then erase to the end of
 * the line) as batches finish, and each epoch's line replaces it. Anywhere
 * else — a pipe, a file, CI, a notebook's captured output — redrawing
 * would only pile up carriage returns, so nothing is printed until the
 * epoch ends, and the log holds one plain line per epoch. The JSON Lines
 * log is opened and closed per epoch: a run that is killed leaves complete
 * lines, and another program can follow the file while it grows.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A loss as people read it: 4 decimals, or 4 significant digits in
 * scientific notation when 4 decimals would hide it (1e-5) or it is huge. */
static void fmt_value(char *buf, size_t cap, double v) {
  double a = fabs(v);
  if (isfinite(v) && (a == 0 || (a >= 1e-3 && a < 1e6)))
    snprintf(buf, cap, "%.4f", v);
  else
    snprintf(buf, cap, "%.4e", v);
}

void rt_progress(FILE *f, bool tty, int64_t epoch, int64_t epochs, int64_t batch,
                 int64_t batches, double loss, double elapsed_seconds) {
  if (!tty) return;
  enum { BAR = 24 };
  char bar[BAR + 1];
  int64_t filled = batches > 0 ? batch * BAR / batches : 0;
  if (filled < 0) filled = 0;
  if (filled > BAR) filled = BAR;
  for (int i = 0; i < BAR; i++) bar[i] = i < filled ? '#' : '.';
  bar[BAR] = 0;
  char l[32];
  fmt_value(l, sizeof l, loss);
  fprintf(f, "\repoch %lld/%lld [%s] %lld/%lld  loss %s  %.1fs\033[K", (long long)epoch,
          (long long)epochs, bar, (long long)batch, (long long)batches, l, elapsed_seconds);
  fflush(f);
}

void rt_epoch_line(FILE *f, bool tty, int64_t epoch, int64_t epochs, const RtMetric *m,
                   int nm, double ms_per_epoch) {
  if (tty) fputs("\r\033[K", f);
  fprintf(f, "epoch %lld/%lld", (long long)epoch, (long long)epochs);
  for (int i = 0; i < nm; i++) {
    char v[32];
    fmt_value(v, sizeof v, m[i].value);
    fprintf(f, "  %s %s", m[i].name, v);
  }
  fprintf(f, "  %.1f ms/epoch\n", ms_per_epoch);
  fflush(f);
}

/* A JSON number, or null for NaN and infinities (JSON has neither). */
static void put_number(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.9g", v);
  else
    fputs("null", f);
}


bool rt_log_jsonl(const char *path, int64_t epoch, const RtMetric *m, int nm,
                  double ms_per_epoch, RtError *err) {
  const char *slash = strrchr(path, '/');
  if (slash && slash != path) {
    char *dir = strndup(path, (size_t)(slash - path));
    bool ok = dir && rt_mkdirs(dir, err);
    if (!dir) rt_fail(err, "out of memory writing '%s'", path);
    free(dir);
    if (!ok) return false;
  }
  FILE *f = fopen(path, "a");
  if (!f) {
    int e = errno;
    return rt_fail(err, "cannot write the metrics log '%s': %s", path, strerror(e));
  }
  fprintf(f, "{\"epoch\":%lld", (long long)epoch);
  for (int i = 0; i < nm; i++) {
    fputc(',', f);
    rt_json_string(f, m[i].name);
    fputc(':', f);
    put_number(f, m[i].value);
  }
  fputs(",\"ms\":", f);
  put_number(f, ms_per_epoch);
  fputs("}\n", f);
  bool bad = ferror(f);
  if (fclose(f) != 0) bad = true;
  if (bad) return rt_fail(err, "cannot write the metrics log '%s': %s", path, strerror(errno));
  return true;
}
