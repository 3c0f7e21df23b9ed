/*
 * rng.c — the one random generator of a run: initialization, shuffling,
 * dropout masks and sampling all draw from seeded RtRng states, so the same
 * seed gives the same numbers on the same machine.
 *
 * xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number
 * generators", 2018): 256 bits of state, fast, passes BigCrush, and its
 * state is four integers that a checkpoint can hold as one hex string. The
 * state is filled from the seed by splitmix64, as the authors recommend, so
 * that nearby seeds (1, 2, 3) give unrelated streams and no seed gives the
 * all-zero state xoshiro cannot leave.
 */
#include "runtime/runtime.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

void rt_rng_seed(RtRng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t rt_rng_u64(RtRng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

/* Lemire's multiply-and-reject ("Fast random integer generation in an
 * interval", 2019): unbiased, and almost never loops. */
uint64_t rt_rng_below(RtRng *r, uint64_t n) {
  RT_ASSERT(n > 0);
  unsigned __int128 m = (unsigned __int128)rt_rng_u64(r) * n;
  uint64_t low = (uint64_t)m;
  if (low < n) {
    uint64_t threshold = (UINT64_MAX - n + 1) % n;   /* 2^64 mod n */
    while (low < threshold) {
      m = (unsigned __int128)rt_rng_u64(r) * n;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

float rt_rng_uniform(RtRng *r) {
  /* The top 24 bits: every value is exact in a float, and 1.0 is never hit. */
  return (float)(rt_rng_u64(r) >> 40) * 0x1p-24f;
}

float rt_rng_normal(RtRng *r) {
  /* u1 in (0, 1] keeps log() finite. */
  double u1 = (double)((rt_rng_u64(r) >> 11) + 1) * 0x1p-53;
  double u2 = (double)(rt_rng_u64(r) >> 11) * 0x1p-53;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rt_shuffle(RtRng *r, int64_t *idx, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)rt_rng_below(r, (uint64_t)i + 1);
    int64_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
}

void rt_rng_format(const RtRng *r, char buf[65]) {
  for (int i = 0; i < 4; i++) snprintf(buf + 16 * i, 17, "%016llx", (unsigned long long)r->s[i]);
}

bool rt_rng_parse(const char *text, RtRng *r) {
  if (strlen(text) != 64) return false;
  RtRng t = {{0}};
  for (int i = 0; i < 64; i++) {
    char c = text[i];
    int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return false;
    t.s[i / 16] = t.s[i / 16] << 4 | (uint64_t)d;
  }
  if (!(t.s[0] | t.s[1] | t.s[2] | t.s[3])) return false;
  *r = t;
  return true;
}
