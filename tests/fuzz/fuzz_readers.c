/*
 * fuzz_readers.c — libFuzzer target for the runtime's file readers: any
 * bytes are written to an in-memory file (memfd) and read as a CSV file
 * (with and without a header), an IDX image file (alone, and with a label
 * file made from the same bytes so the label path is reached), and a
 * safetensors checkpoint. Every read must either succeed — and then every
 * value it returns is touched, so the sanitizers see any bad pointer — or
 * fail with a message. A crash, a sanitizer report, a leak or a hang is a
 * bug.
 *
 * Built with -DNNC_FUZZ=ON and clang, next to fuzz_check.
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A memfd's path, reopened by each reader from offset 0. */
typedef struct {
  int fd;
  char path[64];
} MemFile;

static void mem_open(MemFile *m, const char *name) {
  m->fd = memfd_create(name, 0);
  if (m->fd < 0) abort();
  snprintf(m->path, sizeof m->path, "/proc/self/fd/%d", m->fd);
}

static void mem_set(MemFile *m, const void *data, size_t size) {
  if (ftruncate(m->fd, 0) != 0) abort();
  if (size && pwrite(m->fd, data, size, 0) != (ssize_t)size) abort();
}

/* Reads every float of a table, so a bad pointer trips ASan. */
static float touch_table(const RtTable *t) {
  float s = 0;
  for (int i = 0; i < t->nfields; i++)
    for (int64_t k = 0; k < t->rows * t->fields[i].width; k++) s += t->fields[i].data[k];
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static MemFile in, labels;
  static volatile float sink;
  if (!in.path[0]) {
    mem_open(&in, "fuzz-input");
    mem_open(&labels, "fuzz-labels");
  }
  mem_set(&in, data, size);
  RtError err;
  RtTable t;

  static const RtColumnSel sel[] = {{"x", 0, 1}, {"y", 2, 2}};
  if (rt_load_csv(in.path, true, sel, 2, &t, &err)) {
    sink = touch_table(&t);
    rt_table_free(&t);
  }
  static const RtColumnSel one[] = {{"x", 0, 0}};
  if (rt_load_csv(in.path, false, one, 1, &t, &err)) {
    sink = touch_table(&t);
    rt_table_free(&t);
  }

  /* Labels: magic 2049, the images' count (bytes 4..7 of the input), and
   * as many label bytes as the input has after its 16-byte image header. */
  uint8_t *lab = malloc(size + 8);
  if (!lab) abort();
  static const uint8_t magic[4] = {0, 0, 8, 1};
  memcpy(lab, magic, 4);
  size_t nlab = 4;
  if (size >= 8) {
    memcpy(lab + 4, data + 4, 4);
    nlab = 8;
    uint32_t n = (uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 | (uint32_t)data[6] << 8 | data[7];
    if (size > 16) {
      size_t k = size - 16 < n ? size - 16 : n;
      memcpy(lab + 8, data + 16, k);
      nlab += k;
    }
  }
  mem_set(&labels, lab, nlab);
  free(lab);
  if (rt_load_idx(in.path, NULL, &t, &err)) {
    sink = touch_table(&t);
    rt_table_free(&t);
  }
  if (rt_load_idx(in.path, labels.path, &t, &err)) {
    sink = touch_table(&t);
    rt_table_free(&t);
  }

  RtCheckpoint c;
  if (rt_load_safetensors(in.path, &c, &err)) {
    float s = 0;
    for (int i = 0; i < c.ntensors; i++) {
      s += (float)strlen(c.tensors[i].name);
      for (int64_t k = 0; k < c.tensors[i].numel; k++) s += c.tensors[i].data[k];
      if (rt_checkpoint_find(&c, c.tensors[i].name) == NULL) abort();
    }
    for (int i = 0; i < c.nmeta; i++)
      s += (float)(strlen(c.meta[i].key) + strlen(c.meta[i].value));
    sink = s;
    rt_checkpoint_free(&c);
  }
  (void)sink;
  return 0;
}
