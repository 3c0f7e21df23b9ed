/*
 * progress.c — what a training run shows while it runs, and the metrics log
 * it leaves behind.
 *
 * On a terminal a bar is redrawn in place (`\r`, then erase to the end of
 * the line) as batches finish, and each epoch's line replaces it. Anywhere
 * else — a pipe, a file, CI, a notebook's captured output — redrawing
 * would only pile up carriage returns, so nothing is printed until the
 * epoch ends, and the log holds one plain line per epoch. The JSON Lines
 * log is opened and closed per epoch and each line is appended with one
 * write(2) and synced, so another program can follow the file while it
 * grows, and a run that is killed leaves complete lines only. A resumed run
 * repeats the epoch the killed run was in, and that epoch's line may already
 * be there: appending a line first cuts the log back to the lines of
 * earlier epochs, so every epoch appears once.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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


/* The epoch of a log line `{"epoch":N,...}`, or -1 if it is not one. */
static int64_t line_epoch(const char *line, size_t len) {
  static const char key[] = "{\"epoch\":";
  size_t k = sizeof key - 1;
  if (len <= k || memcmp(line, key, k) != 0) return -1;
  int64_t e = 0;
  size_t i = k;
  for (; i < len && line[i] >= '0' && line[i] <= '9' && e < INT64_MAX / 10 - 9; i++) e = e * 10 + (line[i] - '0');
  return i > k ? e : -1;
}

/* How many bytes of the log at `fd` (of `size` bytes) to keep before the
 * line of `epoch` is appended: every complete line, up to the first one of
 * this epoch or a later one (a resumed run writes those again: the run that
 * wrote them stopped before saving the state of that epoch) or the first
 * line without its newline (a write cut short by a crash). Epochs grow line
 * by line, so when the last line is complete and earlier, that is all. */
static bool log_keep(int fd, off_t size, int64_t epoch, off_t *keep, const char *path, RtError *err) {
  *keep = size;
  if (size == 0) return true;
  char tail[4096];
  off_t from = size > (off_t)sizeof tail ? size - (off_t)sizeof tail : 0;
  ssize_t n = pread(fd, tail, (size_t)(size - from), from);
  if (n != size - from) return rt_fail(err, "cannot read the metrics log '%s': %s", path, n < 0 ? strerror(errno) : "it shrank");
  if (tail[n - 1] == '\n') {
    ssize_t b = n - 1;
    while (b > 0 && tail[b - 1] != '\n') b--;
    if ((b > 0 || from == 0) && line_epoch(tail + b, (size_t)(n - 1 - b)) < epoch) return true;
  }
  /* the slow way, after an interrupted run: every line from the start */
  char *all = malloc((size_t)size);
  if (!all) return rt_fail(err, "out of memory reading the metrics log '%s'", path);
  n = pread(fd, all, (size_t)size, 0);
  if (n != size) {
    free(all);
    return rt_fail(err, "cannot read the metrics log '%s': %s", path, n < 0 ? strerror(errno) : "it shrank");
  }
  off_t at = 0;
  while (at < size) {
    char *nl = memchr(all + at, '\n', (size_t)(size - at));
    if (!nl || line_epoch(all + at, (size_t)(nl - (all + at))) >= epoch) break;
    at = nl - all + 1;
  }
  free(all);
  *keep = at;
  return true;
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
  /* the whole line first, so that it goes to the file in one write */
  char *line = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&line, &len);
  if (!f) return rt_fail(err, "out of memory writing the metrics log '%s'", path);
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
  if (fclose(f) != 0 || !line) {
    free(line);
    return rt_fail(err, "out of memory writing the metrics log '%s'", path);
  }

  int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0) {
    int e = errno;
    free(line);
    if (e == EISDIR)
      return rt_fail(err, "cannot write the metrics log '%s': a folder of that name is in the way; rename it", path);
    return rt_fail(err, "cannot write the metrics log '%s': %s", path, strerror(e));
  }
  struct stat st;
  off_t keep = 0;
  int e = 0;
  if (fstat(fd, &st) != 0) {
    e = errno;
  } else if (!S_ISREG(st.st_mode)) {
    close(fd);
    free(line);
    return rt_fail(err, "cannot write the metrics log '%s': it is not a regular file", path);
  } else if (!log_keep(fd, st.st_size, epoch, &keep, path, err)) {
    close(fd);
    free(line);
    return false;
  } else if (keep < st.st_size && ftruncate(fd, keep) != 0) {
    e = errno;
  }
  if (!e) {
    /* One write with O_APPEND: the line lands whole at the end. A short
     * write (a full disk) is taken back, so no half line stays behind (if
     * that fails too, the next call's log_keep drops it). fdatasync: the
     * line is on disk before the state of its epoch is. */
    ssize_t w = write(fd, line, len);
    if (w != (ssize_t)len) {
      e = w < 0 ? errno : ENOSPC;
      int undone = ftruncate(fd, keep);
      (void)undone;
    } else if (fdatasync(fd) != 0) {
      e = errno;
    }
  }
  if (close(fd) != 0 && !e) e = errno;
  free(line);
  if (e) return rt_fail(err, "cannot write the metrics log '%s': %s", path, strerror(e));
  return true;
}
