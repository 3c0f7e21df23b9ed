/*
 * files.c — errors, folders and atomic writes.
 *
 * Every file nnc writes for the user (checkpoints, submission CSVs) must
 * never be left half-written: a run killed while saving would otherwise
 * leave a checkpoint that no longer loads, in place of the good one from the
 * epoch before. So each is written to `path.tmp` in the same folder (rename
 * is atomic only within one file system), flushed and fsynced, renamed over
 * the target, and then the folder is fsynced so the rename itself survives
 * a power cut.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool rt_fail(RtError *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return false;
}

_Noreturn void rt_die(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nnc: internal error at %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputs("\nnnc: this is a bug in nnc, not in your spec; please report it\n", stderr);
  va_end(ap);
  abort();
}

bool rt_mkdirs(const char *dir, RtError *err) {
  size_t n = strlen(dir);
  char *p = malloc(n + 1);
  if (!p) return rt_fail(err, "out of memory making folder '%s'", dir);
  memcpy(p, dir, n + 1);
  /* Make each prefix that ends before a '/', then the whole path. */
  struct stat st;
  for (size_t i = 1; i <= n; i++) {
    if (i < n && p[i] != '/') continue;
    char c = p[i];
    p[i] = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      int e = errno;
      rt_fail(err, "cannot make folder '%s': %s", p, strerror(e));
      free(p);
      return false;
    }
    /* a file where a folder on the way should be: name it */
    if (i < n && stat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
      rt_fail(err, "cannot make folder '%s': '%s' is a file, not a folder; rename it, or write somewhere else",
              dir, p);
      free(p);
      return false;
    }
    p[i] = c;
  }
  bool ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
  if (!ok)
    rt_fail(err, "cannot make folder '%s': a file of that name is in the way; rename it, or write somewhere else",
            dir);
  free(p);
  return ok;
}

/* The folder part of `path` ("." if it has none), malloc'ed. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

bool rt_atomic_open(RtAtomicFile *af, const char *path, RtError *err) {
  memset(af, 0, sizeof *af);
  struct stat st;
  size_t len = strlen(path);
  if (len == 0 || path[len - 1] == '/')
    return rt_fail(err, "cannot write '%s': that is the name of a folder; add a file name", path);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return rt_fail(err, "cannot write '%s': a folder of that name is in the way; rename it, or write somewhere else",
                   path);
  char *dir = dir_of(path);
  if (!dir) return rt_fail(err, "out of memory writing '%s'", path);
  bool ok = rt_mkdirs(dir, err);
  free(dir);
  if (!ok) return false;
  size_t n = strlen(path);
  af->path = strdup(path);
  af->tmp = malloc(n + 5);
  if (!af->path || !af->tmp) {
    rt_atomic_abort(af);
    return rt_fail(err, "out of memory writing '%s'", path);
  }
  memcpy(af->tmp, path, n);
  memcpy(af->tmp + n, ".tmp", 5);
  af->f = fopen(af->tmp, "wb");
  if (!af->f) {
    int e = errno;
    char *folder = dir_of(path);
    if (e == EISDIR)
      rt_fail(err, "cannot write '%s': a folder named '%s' (the name of its temporary file) is in the way; rename it",
              path, af->tmp);
    else
      rt_fail(err, "cannot write '%s': cannot create its temporary file '%s' (%s); check that the folder '%s' "
              "is one you may write to", path, af->tmp, strerror(e), folder ? folder : ".");
    free(folder);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
    return false;
  }
  return true;
}

void rt_atomic_abort(RtAtomicFile *af) {
  if (af->f) fclose(af->f);
  if (af->tmp) unlink(af->tmp);
  free(af->path);
  free(af->tmp);
  memset(af, 0, sizeof *af);
}

bool rt_atomic_commit(RtAtomicFile *af, RtError *err) {
  int e = 0;
  if (ferror(af->f) || fflush(af->f) != 0) e = errno ? errno : EIO;
  if (!e && fsync(fileno(af->f)) != 0) e = errno;
  int closed = fclose(af->f);
  af->f = NULL;
  if (!e && closed != 0) e = errno;
  if (!e && rename(af->tmp, af->path) != 0) e = errno;
  if (e) {
    rt_fail(err, "cannot write '%s': %s (the previous file, if any, is unchanged)", af->path,
            strerror(e));
    rt_atomic_abort(af);
    return false;
  }
  /* The rename is durable once the folder's entry is on disk. Some file
   * systems refuse fsync on a folder; the file itself is safe by then. */
  char *dir = dir_of(af->path);
  int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
  free(af->tmp);
  af->tmp = NULL;
  rt_atomic_abort(af);
  return true;
}

/* Writes one cell, quoting it if it holds a comma, quote or line break. */
static void csv_cell(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

bool rt_write_csv_atomic(const char *path, const char *const *header,
                         const float *const *cols, const RtCsvFormat *formats, int ncols,
                         int64_t rows, RtError *err) {
  RtAtomicFile af;
  if (!rt_atomic_open(&af, path, err)) return false;
  if (header) {
    for (int j = 0; j < ncols; j++) {
      if (j) fputc(',', af.f);
      csv_cell(af.f, header[j]);
    }
    fputc('\n', af.f);
  }
  for (int64_t i = 0; i < rows; i++) {
    for (int j = 0; j < ncols; j++) {
      if (j) fputc(',', af.f);
      double v = cols[j][i];
      if (formats[j] == RT_CSV_INT && isfinite(v))
        fprintf(af.f, "%.0f", rint(v) + 0.0);  /* + 0.0 turns -0 into 0 */
      else
        fprintf(af.f, "%.6g", v);
    }
    fputc('\n', af.f);
  }
  return rt_atomic_commit(&af, err);
}

void rt_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}
