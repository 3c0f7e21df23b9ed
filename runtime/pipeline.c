/*
 * pipeline.c — a data set's image transforms, applied batch by batch.
 *
 * A spec's `ds.map(crop(32, padding: 4)).map(flip(p: 0.5))` becomes an
 * RtPipeline: the stored images stay as they were loaded, and every batch
 * of them goes through the transforms on its way into the compiled step.
 * Training batches draw their crops, flips and rotations from the run's
 * RNG (so a resumed run draws the same ones); evaluation batches take the
 * deterministic version of each transform: the centre crop, a flip only if
 * p is 1 (test-time augmentation's mirrored view), no rotation.
 */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

/* Every row of `rows` rows of w pixels reversed: the left-right mirror. */
static void mirror(float *x, int64_t rows, int w) {
  for (int64_t r = 0; r < rows; r++)
    for (int i = 0, j = w - 1; i < j; i++, j--) {
      float t = x[r * w + i];
      x[r * w + i] = x[r * w + j];
      x[r * w + j] = t;
    }
}

/* The image shape after transform k, from the shape before it. */
static void after(const RtTransform *t, int *c, int *h, int *w) {
  (void)c;
  if (t->kind == RT_TF_CROP || t->kind == RT_TF_RESIZE) *h = *w = t->size;
}

void rt_pipeline_out(const RtPipeline *pl, int *c, int *h, int *w) {
  *c = pl->c, *h = pl->h, *w = pl->w;
  for (int k = 0; k < pl->n; k++) after(&pl->t[k], c, h, w);
}

bool rt_pipeline_run(const RtPipeline *pl, bool random, RtRng *r, const float *x, int64_t n, float *out,
                     RtError *err) {
  int c = pl->c, h = pl->h, w = pl->w;
  /* two buffers of the largest intermediate size, used in turn */
  int64_t most = (int64_t)c * h * w;
  for (int k = 0; k < pl->n; k++) {
    after(&pl->t[k], &c, &h, &w);
    if ((int64_t)c * h * w > most) most = (int64_t)c * h * w;
  }
  float *buf[2] = {malloc(sizeof(float) * (size_t)(n * most + 1)), malloc(sizeof(float) * (size_t)(n * most + 1))};
  if (!buf[0] || !buf[1]) {
    free(buf[0]);
    free(buf[1]);
    return rt_fail(err, "out of memory for a batch of %lld images", (long long)n);
  }
  c = pl->c, h = pl->h, w = pl->w;
  memcpy(buf[0], x, sizeof(float) * (size_t)(n * c * h * w));
  int cur = 0;
  bool ok = true;
  for (int k = 0; k < pl->n && ok; k++) {
    const RtTransform *t = &pl->t[k];
    float *in = buf[cur], *next = buf[1 - cur];
    switch (t->kind) {
    case RT_TF_CROP:
      if (random) rt_aug_random_crop(r, in, n, c, h, w, t->size, t->padding, next);
      else rt_aug_center_crop(in, n, c, h, w, t->size, next);
      cur = 1 - cur;
      break;
    case RT_TF_FLIP:
      if (random) rt_aug_random_hflip(r, in, n, c, h, w, (float)t->p);
      else if (t->p >= 1) mirror(in, n * c * h, w);
      break;
    case RT_TF_ROTATE:
      if (!random) break;
      rt_aug_random_rotation(r, in, n, c, h, w, (float)t->degrees, next);
      cur = 1 - cur;
      break;
    case RT_TF_RESIZE:
      ok = rt_aug_resize(in, n, c, h, w, t->size, t->size, next, err);
      cur = 1 - cur;
      break;
    }
    after(t, &c, &h, &w);
  }
  if (ok) memcpy(out, buf[cur], sizeof(float) * (size_t)(n * c * h * w));
  free(buf[0]);
  free(buf[1]);
  return ok;
}
