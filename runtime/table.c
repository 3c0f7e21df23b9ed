/*
 * table.c — data tables after loading: field lookup, the train/valid split,
 * batch gathering and per-feature normalization.
 *
 * A table stores each field as one contiguous [rows, width] float array, so
 * a batch is `n` memcpy's of one row each into the step function's arena.
 * The split is a seeded shuffle of the row indices cut in two; the training
 * loop reshuffles the train indices each epoch with its own generator.
 * Normalization statistics are taken over the rows the caller names (the
 * train rows, so nothing leaks from the valid set) and applied to all rows.
 */
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rt_table_free(RtTable *t) {
  for (int i = 0; i < t->nfields; i++) {
    free(t->fields[i].name);
    free(t->fields[i].data);
  }
  free(t->fields);
  memset(t, 0, sizeof *t);
}

RtField *rt_table_field(const RtTable *t, const char *name) {
  for (int i = 0; i < t->nfields; i++)
    if (!strcmp(t->fields[i].name, name)) return &t->fields[i];
  return NULL;
}

bool rt_table_add_constant(RtTable *t, const char *name, float value, RtError *err) {
  if (rt_table_field(t, name)) return rt_fail(err, "the data already has a field '%s'", name);
  RtField *fs = realloc(t->fields, sizeof(RtField) * (size_t)(t->nfields + 1));
  if (!fs) return rt_fail(err, "out of memory");
  t->fields = fs;
  RtField *f = &t->fields[t->nfields];
  memset(f, 0, sizeof *f);
  f->name = strdup(name);
  f->width = 1;
  f->data = malloc(sizeof(float) * (size_t)(t->rows ? t->rows : 1));
  if (!f->name || !f->data) {
    free(f->name);
    free(f->data);
    return rt_fail(err, "out of memory");
  }
  for (int64_t r = 0; r < t->rows; r++) f->data[r] = value;
  t->nfields++;
  return true;
}

bool rt_table_zip(RtTable *t, RtTable *part, const char *name, RtError *err) {
  int64_t rows = t->nfields == 0 ? part->rows : (part->rows < t->rows ? part->rows : t->rows);
  RtField *fs = realloc(t->fields, sizeof(RtField) * (size_t)(t->nfields + part->nfields + 1));
  if (!fs) return rt_fail(err, "out of memory");
  t->fields = fs;
  for (int i = 0; i < part->nfields; i++) {
    RtField *f = &t->fields[t->nfields];
    *f = part->fields[i];
    size_t len = strlen(name) + strlen(part->fields[i].name) + 2;
    f->name = malloc(len);
    if (!f->name) return rt_fail(err, "out of memory");
    snprintf(f->name, len, "%s.%s", name, part->fields[i].name);
    free(part->fields[i].name);
    part->fields[i].name = NULL;
    part->fields[i].data = NULL;   /* moved */
    t->nfields++;
  }
  t->rows = rows;
  return true;
}

bool rt_table_append(RtTable *t, RtTable *more, RtError *err) {
  if (t->nfields == 0 && t->rows == 0) {   /* the first part: taken over */
    *t = *more;
    memset(more, 0, sizeof *more);
    return true;
  }
  for (int i = 0; i < t->nfields; i++) {
    RtField *f = &t->fields[i], *g = rt_table_field(more, f->name);
    if (!g) return rt_fail(err, "the data sets joined one after another differ: one has no field '%s'", f->name);
    if (g->width != f->width)
      return rt_fail(err, "the data sets joined one after another differ: field '%s' has %lld values a sample in one, "
                          "%lld in another", f->name, (long long)f->width, (long long)g->width);
  }
  for (int i = 0; i < t->nfields; i++) {
    RtField *f = &t->fields[i], *g = rt_table_field(more, f->name);
    float *d = realloc(f->data, sizeof(float) * (size_t)((t->rows + more->rows) * f->width + 1));
    if (!d) return rt_fail(err, "out of memory");
    memcpy(d + t->rows * f->width, g->data, sizeof(float) * (size_t)(more->rows * g->width));
    f->data = d;
  }
  t->rows += more->rows;
  rt_table_free(more);
  return true;
}

bool rt_split(int64_t rows, double valid_fraction, uint64_t seed, RtSplit *out,
              RtError *err) {
  memset(out, 0, sizeof *out);
  if (rows <= 0) return rt_fail(err, "cannot split %lld rows: the data has no rows", (long long)rows);
  if (!(valid_fraction >= 0 && valid_fraction < 1))
    return rt_fail(err, "the valid fraction must be at least 0 and below 1, got %g",
                   valid_fraction);
  /* The same rounding as the checker's summary, so the counts it printed
   * are the counts trained on. */
  int64_t nvalid = (int64_t)((double)rows * valid_fraction);
  int64_t *perm = malloc((size_t)rows * sizeof *perm);
  if (!perm) return rt_fail(err, "out of memory splitting %lld rows", (long long)rows);
  for (int64_t i = 0; i < rows; i++) perm[i] = i;
  RtRng r;
  rt_rng_seed(&r, seed);
  rt_shuffle(&r, perm, rows);
  /* One allocation: valid = perm[0..nvalid), train = the rest. */
  out->valid = perm;
  out->nvalid = nvalid;
  out->train = perm + nvalid;
  out->ntrain = rows - nvalid;
  return true;
}

void rt_split_free(RtSplit *s) {
  free(s->valid);
  memset(s, 0, sizeof *s);
}

void rt_gather(const RtTable *t, const RtField *f, const int64_t *idx, int64_t n,
               float *dst) {
  size_t row = (size_t)f->width * sizeof(float);
  for (int64_t i = 0; i < n; i++) {
    RT_ASSERT(idx[i] >= 0 && idx[i] < t->rows);
    memcpy(dst + i * f->width, f->data + idx[i] * f->width, row);
  }
}

void rt_field_stats(const RtTable *t, const RtField *f, const int64_t *idx, int64_t n,
                    float *mean, float *std) {
  if (!idx) n = t->rows;
  int64_t w = f->width;
  double *sum = calloc((size_t)w * 2 + 1, sizeof *sum);
  RT_ASSERT(sum);
  double *sq = sum + w;
  /* Two passes (mean, then squared deviations): the one-pass sum of
   * squares loses every digit when a feature's mean dwarfs its spread. */
  for (int64_t i = 0; i < n; i++) {
    int64_t r = idx ? idx[i] : i;
    RT_ASSERT(r >= 0 && r < t->rows);
    const float *x = f->data + r * w;
    for (int64_t j = 0; j < w; j++) sum[j] += x[j];
  }
  for (int64_t j = 0; j < w; j++) sum[j] = n > 0 ? sum[j] / (double)n : 0;
  for (int64_t i = 0; i < n; i++) {
    const float *x = f->data + (idx ? idx[i] : i) * w;
    for (int64_t j = 0; j < w; j++) sq[j] += (x[j] - sum[j]) * (x[j] - sum[j]);
  }
  for (int64_t j = 0; j < w; j++) {
    mean[j] = (float)sum[j];
    std[j] = n > 0 ? (float)sqrt(sq[j] / (double)n) : 0;
  }
  free(sum);
}

void rt_normalize(const RtTable *t, RtField *f, const float *mean, const float *std) {
  int64_t w = f->width;
  for (int64_t i = 0; i < t->rows; i++) {
    float *x = f->data + i * w;
    for (int64_t j = 0; j < w; j++) {
      float s = std[j] < 1e-12f ? 1.0f : std[j];
      x[j] = (x[j] - mean[j]) / s;
    }
  }
}
