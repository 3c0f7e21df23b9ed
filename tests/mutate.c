/*
 * mutate.c — makes broken copies of spec files for tests/robust.sh.
 *
 *   nnc_mutate IN OUTDIR SEED NTRUNC NMUT   truncated and byte-mutated copies of IN
 *   nnc_mutate --random OUTDIR SEED N MAXLEN  N files of random bytes
 *
 * Deterministic: the same arguments give the same files (xorshift64 seeded
 * from SEED and the input's name), so a failure can be reproduced.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng;

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static size_t below(size_t n) { return n ? (size_t)(next() % n) : 0; }

static void seed(uint64_t s, const char *name) {
  uint64_t h = 1469598103934665603ull;  /* FNV-1a of the name */
  for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  rng = (s * 0x9E3779B97F4A7C15ull) ^ h;
  if (!rng) rng = 1;
  for (int i = 0; i < 8; i++) next();
}

static void write_file(const char *dir, const char *base, const char *kind, int i,
                       const unsigned char *buf, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.%s%03d.nn", dir, base, kind, i);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

/* Bytes that matter to the lexer and parser, and bytes that break UTF-8. */
static const unsigned char interesting[] = {
    '(', ')', '[', ']', '{', '}', '"', '\\', ',', ':', '=', '.', '\n', '\r', '\t',
    '#', '-', '*', '_', '0', '9', 'e', ';', 0x00, 0x80, 0xBF, 0xC0, 0xE4, 0xF0, 0xFF};

static size_t mutate(unsigned char *buf, size_t n, size_t cap) {
  int edits = 1 + (int)below(4);
  for (int e = 0; e < edits; e++) {
    size_t at = below(n + 1);
    switch (below(5)) {
    case 0: /* overwrite with any byte */
      if (n) buf[below(n)] = (unsigned char)next();
      break;
    case 1: /* overwrite with an interesting byte */
      if (n) buf[below(n)] = interesting[below(sizeof interesting)];
      break;
    case 2: /* delete a run of bytes */
      if (n) {
        at = below(n);
        size_t k = 1 + below(8);
        if (k > n - at) k = n - at;
        memmove(buf + at, buf + at + k, n - at - k);
        n -= k;
      }
      break;
    case 3: /* insert an interesting byte */
      if (n < cap) {
        memmove(buf + at + 1, buf + at, n - at);
        buf[at] = interesting[below(sizeof interesting)];
        n++;
      }
      break;
    default: /* duplicate a chunk somewhere else */
      if (n) {
        size_t from = below(n), k = 1 + below(32);
        if (k > n - from) k = n - from;
        if (n + k <= cap) {
          unsigned char tmp[32];
          memcpy(tmp, buf + from, k);
          memmove(buf + at + k, buf + at, n - at);
          memcpy(buf + at, tmp, k);
          n += k;
        }
      }
      break;
    }
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "--random") == 0) {
    int count = atoi(argv[4]);
    size_t maxlen = (size_t)atol(argv[5]);
    seed(strtoull(argv[3], NULL, 10), "random");
    unsigned char *buf = malloc(maxlen + 1);
    if (!buf) return 1;
    for (int i = 0; i < count; i++) {
      size_t n = below(maxlen + 1);
      /* half of them printable ASCII, which gets further into the parser */
      int ascii = i % 2;
      for (size_t j = 0; j < n; j++)
        buf[j] = ascii ? (unsigned char)(0x20 + below(95)) : (unsigned char)next();
      if (ascii)
        for (size_t j = 0; j < n; j++) if (below(12) == 0) buf[j] = '\n';
      write_file(argv[2], "random", "r", i, buf, n);
    }
    free(buf);
    return 0;
  }
  if (argc != 6) {
    fprintf(stderr, "usage: nnc_mutate IN OUTDIR SEED NTRUNC NMUT\n"
                    "       nnc_mutate --random OUTDIR SEED N MAXLEN\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  size_t cap = 1 << 20, n = 0;
  unsigned char *orig = malloc(cap), *buf = malloc(cap + 256);
  if (!orig || !buf) {
    fprintf(stderr, "nnc_mutate: out of memory\n");
    free(orig);
    free(buf);
    fclose(f);
    return 1;
  }
  n = fread(orig, 1, cap, f);
  fclose(f);

  const char *base = strrchr(argv[1], '/');
  base = base ? base + 1 : argv[1];
  seed(strtoull(argv[3], NULL, 10), base);
  int ntrunc = atoi(argv[4]), nmut = atoi(argv[5]);

  /* truncations: evenly spread over the file, plus a random jitter */
  for (int i = 0; i < ntrunc && n > 0; i++) {
    size_t at = (n * (size_t)(i + 1)) / (size_t)(ntrunc + 1);
    at += below(n / (size_t)(ntrunc + 1) + 1);
    if (at > n) at = n;
    write_file(argv[2], base, "t", i, orig, at);
  }
  for (int i = 0; i < nmut; i++) {
    memcpy(buf, orig, n);
    size_t m = mutate(buf, n, cap + 256);
    write_file(argv[2], base, "m", i, buf, m);
  }
  free(orig);
  free(buf);
  return 0;
}
