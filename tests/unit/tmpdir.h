/*
 * tmpdir.h — a temporary folder for the unit tests that write files (the
 * runtime's and the images' tests): made before the tests, removed with
 * everything in it after them.
 *
 *     static int setup(void **state) { (void)state; return tmpdir_make("runtime"); }
 *     static int teardown(void **state) { (void)state; return tmpdir_remove(); }
 *     write_bytes(tmp("bad.csv"), "x\n1,2\n", 6);
 *
 * Include it after cmocka.h and ftw.h (with _GNU_SOURCE defined first).
 */
#ifndef NNC_TMPDIR_H
#define NNC_TMPDIR_H

static char tmpdir[96];

/* A path inside the temporary folder (static buffers, four in rotation). */
static const char *tmp(const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

/* /tmp/nnc-test-WHAT-XXXXXX; 0, or -1 if it cannot be made. */
static int tmpdir_make(const char *what) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nnc-test-%s-XXXXXX", what);
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int tmpdir_remove(void) { return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

#endif
