/*
 * fuzz_png.c — libFuzzer target for the PNG reader: any bytes are written
 * to an in-memory file (memfd) and read with rt_png_read twice: as they
 * are, and with the PNG signature put in front and every chunk's CRC
 * recomputed, since a mutated byte otherwise fails its chunk's CRC check
 * before libpng's decoder ever sees it. The channel count asked for (as
 * stored, gray, RGB) comes from the input's last byte. A read must either
 * succeed — and then every pixel is touched, the image is resized, and its
 * size is within the reader's limits — or fail with a message. A crash, a
 * sanitizer report, a leak, a hang or an out-of-memory is a bug.
 *
 * Built with -DNNC_FUZZ=ON and clang; run by scripts/fuzz.sh with the
 * small files of tests/fuzz/png/ as seeds and tests/fuzz/png.dict.
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
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Recomputes the CRC of every whole chunk after the signature. */
static void fix_crcs(uint8_t *b, size_t n) {
  for (size_t at = 8; at + 12 <= n;) {
    uint32_t len = be32(b + at);
    if (len > n - at - 12) break;
    uLong crc = crc32(0, b + at + 4, 4 + len);
    uint8_t *p = b + at + 8 + len;
    p[0] = (uint8_t)(crc >> 24), p[1] = (uint8_t)(crc >> 16), p[2] = (uint8_t)(crc >> 8), p[3] = (uint8_t)crc;
    at += 12 + (size_t)len;
  }
}

static void read_one(const char *path, int channels) {
  static volatile float sink;
  RtImage im;
  RtError err;
  if (!rt_png_read(path, channels, &im, &err)) {
    if (!err.msg[0] || !strstr(err.msg, path)) abort();  /* every message names the file */
    return;
  }
  if (im.c != (channels ? channels : im.c) || (im.c != 1 && im.c != 3) || im.h < 1 || im.w < 1 ||
      im.h > RT_PNG_MAX_SIDE || im.w > RT_PNG_MAX_SIDE || (int64_t)im.h * im.w > RT_PNG_MAX_PIXELS)
    abort();
  float s = 0;
  size_t n = (size_t)im.c * (size_t)im.h * (size_t)im.w;
  for (size_t i = 0; i < n; i++) {
    if (!(im.data[i] >= 0 && im.data[i] <= 1)) abort();
    s += im.data[i];
  }
  float small[3 * 8 * 8];
  if (!rt_aug_resize(im.data, 1, im.c, im.h, im.w, 8, 8, small, &err)) abort();
  sink = s + small[0];
  rt_image_free(&im);
  (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("fuzz-png", 0);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  static const int kinds[3] = {0, 1, 3};
  int channels = kinds[size ? data[size - 1] % 3 : 0];

  if (ftruncate(fd, 0) != 0) abort();
  if (size && pwrite(fd, data, size, 0) != (ssize_t)size) abort();
  read_one(path, channels);

  uint8_t *fixed = malloc(size + 8);
  if (!fixed) abort();
  size_t n = size;
  if (size >= 8 && !memcmp(data, SIGNATURE, 8)) {
    memcpy(fixed, data, size);
  } else {
    memcpy(fixed, SIGNATURE, 8);
    if (size) memcpy(fixed + 8, data, size);
    n = size + 8;
  }
  fix_crcs(fixed, n);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, fixed, n, 0) != (ssize_t)n) abort();
  free(fixed);
  read_one(path, channels);
  return 0;
}
