/*
 * train.c — the training loop around compiled steps.
 *
 * The compiler hands the runtime a program: one arena layout, a training
 * step and an evaluation step (each `void step(float *arena, int64_t n)`),
 * and the list of slots each step reads — parameters and state (persistent,
 * shared by both steps), batch fields, scalars (n, lr) and noise. This file
 * initialises the parameters, splits and shuffles the data with the seed,
 * fills each batch's slots (the last, partial batch too: n is an argument of
 * the step), calls the step, and keeps score: per-epoch losses and metrics,
 * early stopping, the best checkpoint (written atomically), a progress line
 * on a terminal and a JSON-lines log.
 */
#include "runtime/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int64_t rt_slot_numel(const RtSlot *s, int64_t n) {
  int64_t e = 1;
  for (int i = 0; i < s->rank; i++) e *= s->shape[i] < 0 ? n : s->shape[i];
  return e;
}

void rt_init_params(const RtProgram *p, float *arena, RtRng *rng) {
  for (int i = 0; i < p->npersistent; i++) {
    const RtSlot *s = &p->persistent[i];
    float *x = arena + s->offset;
    int64_t e = rt_slot_numel(s, p->n_max);
    for (int64_t k = 0; k < e; k++) {
      if (s->init == RT_INIT_UNIFORM) x[k] = (2.0f * rt_rng_uniform(rng) - 1.0f) * s->bound;
      else x[k] = s->init == RT_INIT_ONES ? 1.0f : 0.0f;
    }
  }
}

/* The learning rate of update number t (from 0) of `total`. */
double rt_schedule_lr(const RtSchedule *sc, int64_t t, int64_t steps_per_epoch, int64_t total) {
  double lr = sc->lr;
  double warm = (double)sc->warmup;
  switch (sc->kind) {
  case RT_SCHED_CONSTANT:
    return lr;
  case RT_SCHED_STEP: {
    int64_t epoch = steps_per_epoch > 0 ? t / steps_per_epoch : 0;
    return lr * pow(sc->gamma, (double)(epoch / (sc->every > 0 ? sc->every : 1)));
  }
  case RT_SCHED_LINEAR:
    if (t < sc->warmup) return lr * (double)(t + 1) / warm;
    return lr + (sc->to - lr) * (double)(t - sc->warmup) / (double)(total > sc->warmup ? total - sc->warmup : 1);
  case RT_SCHED_COSINE:
    if (t < sc->warmup) return lr * (double)(t + 1) / warm;
    return sc->to + (lr - sc->to) * 0.5 *
                        (1 + cos(3.14159265358979323846 * (double)(t - sc->warmup) /
                                 (double)(total > sc->warmup ? total - sc->warmup : 1)));
  case RT_SCHED_NOAM: {
    double step = (double)(t + 1);
    return sc->gamma * pow((double)sc->every, -0.5) * fmin(pow(step, -0.5), step * pow(warm, -1.5));
  }
  }
  return lr;
}

/* Field f of the samples idx[0..n) through the image pipeline into dst. */
static bool transformed(const RtPipeline *pl, bool random, RtRng *rng, const RtTable *t, const RtField *f,
                        const int64_t *idx, int64_t n, int64_t want, float *dst, RtError *err) {
  int c, h, w;
  rt_pipeline_out(pl, &c, &h, &w);
  if (f->width != (int64_t)pl->c * pl->h * pl->w || want != (int64_t)c * h * w)
    return rt_fail(err, "field '%s': the transforms make [%d, %d, %d] images of its %lld values per sample, the "
                        "compiled step expects %lld", f->name, c, h, w, (long long)f->width, (long long)want);
  float *raw = malloc(sizeof(float) * (size_t)(n * f->width + 1));
  if (!raw) return rt_fail(err, "out of memory");
  rt_gather(t, f, idx, n, raw);
  bool ok = rt_pipeline_run(pl, random, rng, raw, n, dst, err);
  free(raw);
  return ok;
}

/* A noise slot's values for a batch of n: uniform, or standard normal. */
static void fill_noise(const RtSlot *s, float *dst, int64_t n, RtRng *rng) {
  int64_t e = rt_slot_numel(s, n);
  if (s->kind == RT_SLOT_RANDN)
    for (int64_t k = 0; k < e; k++) dst[k] = rt_rng_normal(rng);
  else
    for (int64_t k = 0; k < e; k++) dst[k] = rt_rng_uniform(rng);
}

/* Fills a step's input slots for the samples idx[0..n): the random
 * transforms of the images draw from `crops`, the noise from `noise`. */
static bool fill_slots(const RtStep *st, float *arena, const RtTable *t, const int64_t *idx, int64_t n,
                       double lr, const RtPipeline *pl, bool random, RtRng *crops, RtRng *noise, RtError *err) {
  RtRng *rng = crops;
  for (int i = 0; i < st->nslots; i++) {
    const RtSlot *s = &st->slots[i];
    float *dst = arena + s->offset;
    if (s->kind == RT_SLOT_RAND || s->kind == RT_SLOT_RANDN) {
      fill_noise(s, dst, n, noise);
      continue;
    }
    if (!strcmp(s->name, "n")) {
      dst[0] = (float)n;
    } else if (!strcmp(s->name, "lr")) {
      dst[0] = (float)lr;
    } else if (!strcmp(s->name, "index") || (strlen(s->name) > 6 && !strcmp(s->name + strlen(s->name) - 6, ".index"))) {
      for (int64_t k = 0; k < n; k++) dst[k] = (float)idx[k];
    } else {
      RtField *f = rt_table_field(t, s->name);
      if (!f) return rt_fail(err, "the data has no field '%s'", s->name);
      int64_t want = rt_slot_numel(s, 1);
      if (pl && pl->n > 0 && !strcmp(s->name, pl->field)) {
        if (!transformed(pl, random, rng, t, f, idx, n, want, dst, err)) return false;
        continue;
      }
      if (f->width != want)
        return rt_fail(err, "field '%s' has %lld values per sample, the compiled step expects %lld", s->name,
                       (long long)f->width, (long long)want);
      rt_gather(t, f, idx, n, dst);
    }
  }
  return true;
}

/* The same with one generator for both (a block of one step). */
static bool fill_inputs(const RtStep *st, float *arena, const RtTable *t, const int64_t *idx, int64_t n,
                        double lr, const RtPipeline *pl, bool random, RtRng *rng, RtError *err) {
  return fill_slots(st, arena, t, idx, n, lr, pl, random, rng, rng, err);
}

/* ---- class ids ----------------------------------------------------------- */

/* A class id out of range one-hot encodes to a row of zeros, which adds
 * nothing to the loss: the sample would be skipped without a word. So the
 * class-id fields are checked before the first step, once. */
bool rt_find_bad_class(const RtStep *st, const RtTable *t, const int64_t *idx, int64_t n, RtBadClass *bad) {
  if (!idx) n = t->rows;
  for (int i = 0; i < st->nslots; i++) {
    const RtSlot *s = &st->slots[i];
    if (s->kind != RT_SLOT_INPUT || s->classes <= 0) continue;
    const RtField *f = rt_table_field(t, s->name);
    if (!f) continue;   /* fill_inputs says so */
    float top = (float)s->classes;
    for (int64_t k = 0; k < n; k++) {
      int64_t row = idx ? idx[k] : k;
      const float *v = f->data + row * f->width;
      for (int64_t j = 0; j < f->width; j++)
        if (!(v[j] >= 0 && v[j] < top && v[j] == floorf(v[j])) && v[j] != s->ignored) {
          *bad = (RtBadClass){s->name, row, v[j], s->classes};
          return true;
        }
    }
  }
  return false;
}

bool rt_bad_class_fail(const RtBadClass *bad, const char *where, RtError *err) {
  char row[48], hint[256];
  if (!where) {
    snprintf(row, sizeof row, "row %lld of the data", (long long)bad->row + 1);
    where = row;
  }
  double v = bad->value;
  long long c = (long long)bad->classes;
  if (v == (double)c)
    snprintf(hint, sizeof hint, "class ids count from 0: labels that run from 1 to %lld need to become 0 to %lld, "
                                "or the model needs %lld outputs", c, c - 1, c + 1);
  else if (v > (double)c && v == floor(v))
    snprintf(hint, sizeof hint, "does the field hold class ids (the right column, the right file)? A model with %lld "
                                "outputs tells %lld classes apart; a class id of %g needs %g outputs", c, c, v, v + 1);
  else
    snprintf(hint, sizeof hint, "class ids are whole numbers from 0; does the field hold class ids (the right "
                                "column, the right file)?");
  return rt_fail(err, "%s: field '%s' holds the class id %g, but there are %lld classes (ids 0 to %lld)\n"
                      "      = hint: %s", where, bad->field, v, c, c - 1, hint);
}

/* ---- metrics over batches ---------------------------------------------- */

/* The metrics of a step over many batches: the per-batch ones averaged by
 * batch size, the whole-data-set ones (AUC) from every sample's score and
 * label, collected. */
typedef struct {
  double sum[RT_MAX_METRICS];
  float *score[RT_MAX_METRICS], *label[RT_MAX_METRICS];
  int64_t count, cap;
} MetricSum;

static bool msum_add(MetricSum *ms, const RtStep *st, const float *arena, int64_t n, RtError *err) {
  for (int m = 0; m < st->nmetrics; m++) {
    if (st->metric_labels[m] == RT_METRIC_MEAN) {
      ms->sum[m] += (double)arena[st->metric_offsets[m]] * (double)n;
      continue;
    }
    if (st->metric_labels[m] == RT_METRIC_MAX) {
      double v = arena[st->metric_offsets[m]];
      if (ms->count == 0 || v > ms->sum[m] || isnan(v)) ms->sum[m] = v;
      continue;
    }
    if (ms->count + n > ms->cap) {
      int64_t cap = ms->cap ? ms->cap : 1024;
      while (cap < ms->count + n) cap *= 2;
      for (int k = 0; k < st->nmetrics; k++) {
        if (st->metric_labels[k] < 0) continue;   /* a mean or a maximum: no samples kept */
        float *s = realloc(ms->score[k], sizeof(float) * (size_t)cap), *l = s ? realloc(ms->label[k], sizeof(float) * (size_t)cap) : NULL;
        if (s) ms->score[k] = s;
        if (l) ms->label[k] = l;
        if (!s || !l) return rt_fail(err, "out of memory collecting %s", st->metric_names[m]);
      }
      ms->cap = cap;
    }
    memcpy(ms->score[m] + ms->count, arena + st->metric_offsets[m], sizeof(float) * (size_t)n);
    memcpy(ms->label[m] + ms->count, arena + st->metric_labels[m], sizeof(float) * (size_t)n);
  }
  ms->count += n;
  return true;
}

static void msum_finish(MetricSum *ms, const RtStep *st, double *out) {
  for (int m = 0; m < st->nmetrics; m++) {
    if (st->metric_labels[m] == RT_METRIC_MEAN) out[m] = ms->count ? ms->sum[m] / (double)ms->count : NAN;
    else if (st->metric_labels[m] == RT_METRIC_MAX) out[m] = ms->count ? ms->sum[m] : NAN;
    else out[m] = rt_auc(ms->score[m], ms->label[m], ms->count);
    free(ms->score[m]);
    free(ms->label[m]);
  }
  memset(ms, 0, sizeof *ms);
}

typedef struct {
  float score, label;
} Scored;

static int by_score(const void *a, const void *b) {
  float x = ((const Scored *)a)->score, y = ((const Scored *)b)->score;
  return x < y ? -1 : x > y ? 1 : 0;
}

double rt_auc(const float *score, const float *label, int64_t n) {
  Scored *v = malloc(sizeof(Scored) * (size_t)(n ? n : 1));
  if (!v) return NAN;
  for (int64_t i = 0; i < n; i++) v[i] = (Scored){score[i], label[i]};
  qsort(v, (size_t)n, sizeof *v, by_score);
  /* Mann-Whitney: the positives' rank sum, ties given their mean rank */
  double rank_sum = 0, pos = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && v[j].score == v[i].score) j++;
    double mean_rank = (double)(i + 1 + j) / 2;
    for (int64_t k = i; k < j; k++)
      if (v[k].label > 0.5f) rank_sum += mean_rank, pos++;
    i = j;
  }
  free(v);
  double neg = (double)n - pos;
  if (pos == 0 || neg == 0) return NAN;
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

/* Runs the evaluation step over samples idx[0..count) in batches; the mean
 * loss and metrics, weighted by batch size, go into loss/metrics. */
static bool evaluate(const RtProgram *p, float *arena, const RtTable *t, const int64_t *idx, int64_t count,
                     int64_t batch, const RtPipeline *pl, RtRng *rng, double *loss, double *metrics, RtError *err) {
  const RtStep *st = &p->eval;
  double sl = 0;
  MetricSum ms;
  memset(&ms, 0, sizeof ms);
  bool ok = true;
  for (int64_t b = 0; b < count && ok; b += batch) {
    int64_t n = count - b < batch ? count - b : batch;
    ok = fill_inputs(st, arena, t, idx + b, n, 0, pl, false, rng, err);
    if (!ok) break;
    st->fn(arena, n);
    sl += (double)arena[st->loss_offset] * (double)n;
    ok = msum_add(&ms, st, arena, n, err);
  }
  *loss = count ? sl / (double)count : NAN;
  msum_finish(&ms, st, metrics);
  return ok;
}

bool rt_evaluate(const RtProgram *p, float *arena, const RtTable *t, const int64_t *idx, int64_t count,
                 int64_t batch, const RtPipeline *pl, RtRng *rng, double *loss, double *metrics, RtError *err) {
  RtBadClass bad;
  if (rt_find_bad_class(&p->eval, t, idx, count, &bad)) return rt_bad_class_fail(&bad, NULL, err);
  return evaluate(p, arena, t, idx, count, batch, pl, rng, loss, metrics, err);
}

bool rt_save_program(const RtProgram *p, const float *arena, const char *path, const RtMeta *meta, int nmeta,
                     const RtTensorRef *extra, int nextra, RtError *err) {
  int n = p->npersistent + nextra;
  RtTensorRef *ts = calloc((size_t)(n ? n : 1), sizeof *ts);
  if (!ts) return rt_fail(err, "out of memory");
  for (int i = 0; i < p->npersistent; i++) {
    const RtSlot *s = &p->persistent[i];
    ts[i].name = s->name;
    ts[i].rank = s->rank;
    for (int k = 0; k < s->rank; k++) ts[i].shape[k] = s->shape[k];
    ts[i].data = arena + s->offset;
  }
  for (int i = 0; i < nextra; i++) ts[p->npersistent + i] = extra[i];
  bool ok = rt_save_safetensors(path, ts, n, meta, nmeta, err);
  free(ts);
  return ok;
}

static bool load_slots(const RtProgram *p, float *arena, const char *path, bool params_only, const char *prefix,
                       const char *var, RtError *err);

bool rt_load_program(const RtProgram *p, float *arena, const char *path, bool params_only, RtError *err) {
  return load_slots(p, arena, path, params_only, "", "", err);
}

bool rt_load_model(const RtProgram *p, float *arena, const char *path, const char *prefix, const char *var,
                   RtError *err) {
  return load_slots(p, arena, path, true, prefix, var ? var : "", err);
}

/* "[2, 1]" */
static void shape_text(char *buf, size_t len, int rank, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < rank && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
}

/* Whether a checkpoint's tensor has the slot's shape. Persistent slots
 * have no batch dimension; a scalar may be saved as [] or [1]. */
static bool same_shape(const RtTensor *t, const RtSlot *s) {
  if (t->numel == 1) return true;   /* and the counts agree */
  if (t->rank != s->rank) return false;
  for (int i = 0; i < s->rank; i++)
    if (s->shape[i] >= 0 && t->shape[i] != s->shape[i]) return false;
  return true;
}

/* The persistent slots whose names start with `prefix`, from the tensors
 * named without it, or else named after the model's variable `var` (a
 * checkpoint saved by a block of several models: "student.conv1.weight"). */
static bool load_slots(const RtProgram *p, float *arena, const char *path, bool params_only, const char *prefix,
                       const char *var, RtError *err) {
  RtCheckpoint ck;
  if (!rt_load_safetensors(path, &ck, err)) return false;
  size_t plen = strlen(prefix);
  for (int i = 0; i < p->npersistent; i++) {
    const RtSlot *s = &p->persistent[i];
    if (params_only && s->kind != RT_SLOT_PARAM && !s->buffer) continue;
    if (strncmp(s->name, prefix, plen) != 0) continue;
    const RtTensor *t = rt_checkpoint_find(&ck, s->name + plen);
    if (!t && *var) {
      char named[512];
      snprintf(named, sizeof named, "%s.%s", var, s->name + plen);
      t = rt_checkpoint_find(&ck, named);
    }
    if (!t) {
      if (s->kind != RT_SLOT_PARAM && !s->buffer) continue;   /* optimizer state may be absent */
      rt_fail(err, "%s: the checkpoint has no tensor '%s'; was it saved from another model?", path, s->name + plen);
      rt_checkpoint_free(&ck);
      return false;
    }
    int64_t want = rt_slot_numel(s, p->n_max);
    if (t->numel != want) {
      rt_fail(err, "%s: tensor '%s' has %lld values, the model needs %lld", path, s->name, (long long)t->numel,
              (long long)want);
      rt_checkpoint_free(&ck);
      return false;
    }
    if (!same_shape(t, s)) {
      /* the same number of values in another layout: a transposed weight
       * would load and silently compute something else */
      char have[160], need[160];
      shape_text(have, sizeof have, t->rank, t->shape);
      shape_text(need, sizeof need, s->rank, s->shape);
      rt_fail(err, "%s: tensor '%s' has shape %s, the model needs %s; was it saved from another model (or "
                   "transposed)?", path, s->name + plen, have, need);
      rt_checkpoint_free(&ck);
      return false;
    }
    memcpy(arena + s->offset, t->data, sizeof(float) * (size_t)want);
  }
  rt_checkpoint_free(&ck);
  return true;
}

/* ---- resuming ------------------------------------------------------------ */

/* A metadata value for a message: at most 40 characters, anything but
 * printable ASCII as '?'. */
static void shown(char out[48], const char *text) {
  size_t k = 0;
  for (; k < 40 && text[k]; k++) out[k] = text[k] >= 0x20 && text[k] < 0x7f ? text[k] : '?';
  if (text[k]) out[k++] = '.', out[k++] = '.', out[k++] = '.';
  out[k] = 0;
}

/* The message about a state file whose metadata `key` holds `text`, which
 * is not `what`. Returns false. */
static bool damaged(RtError *err, const char *path, const char *key, const char *text, const char *what) {
  char v[48];
  shown(v, text);
  return rt_fail(err, "%s is damaged: its '%s' is '%s', which is not %s; start again without --resume "
                      "(or delete the file)", path, key, v, what);
}

/* The whole number in metadata `key` of state file `path`: only digits
 * (a '-' first), no spaces, from lo to hi (hi < 0: no upper bound). */
static bool state_int(const char *path, const char *key, const char *text, int64_t lo, int64_t hi, int64_t *out,
                      RtError *err) {
  char what[96];
  if (hi < 0) snprintf(what, sizeof what, "a whole number of at least %lld", (long long)lo);
  else snprintf(what, sizeof what, "a whole number from %lld to %lld", (long long)lo, (long long)hi);
  const char *p = text + (text[0] == '-');
  if (*p < '0' || *p > '9') return damaged(err, path, key, text, what);
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  /* INT64_MAX is no epoch: the next one would overflow */
  if (*end || errno || v < lo || (hi >= 0 && v > hi) || v == INT64_MAX) return damaged(err, path, key, text, what);
  *out = v;
  return true;
}

/* The number in metadata `key`, as "%.17g" wrote it ("nan" too: the best
 * of a metric that was never defined), nothing around it. */
static bool state_number(const char *path, const char *key, const char *text, double *out, RtError *err) {
  char *end;
  double v = strtod(text, &end);
  if (!*text || isspace((unsigned char)*text) || *end) return damaged(err, path, key, text, "a number");
  *out = v;
  return true;
}

/* ---- pruning ------------------------------------------------------------- */

typedef struct {
  float magnitude;
  int64_t index;
} Ranked;

static int by_magnitude(const void *a, const void *b) {
  const Ranked *x = a, *y = b;
  if (x->magnitude != y->magnitude) return x->magnitude < y->magnitude ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

int64_t rt_prune(float *w, float *mask, int64_t n, double amount) {
  Ranked *r = malloc(sizeof(Ranked) * (size_t)(n > 0 ? n : 1));
  if (!r) return -1;
  int64_t left = 0;
  for (int64_t i = 0; i < n; i++)
    if (mask[i] != 0) r[left++] = (Ranked){fabsf(w[i]), i};
  int64_t k = (int64_t)llround(amount * (double)left);
  if (k > left) k = left;
  qsort(r, (size_t)left, sizeof *r, by_magnitude);
  for (int64_t j = 0; j < k; j++) mask[r[j].index] = 0, w[r[j].index] = 0;
  free(r);
  return k;
}

/* ---- the after step, and the training loop -------------------------------- */

void rt_run_after(const RtProgram *p, float *arena, uint64_t seed) {
  if (!p->after.fn) return;
  RtRng rng;
  rt_rng_seed(&rng, seed);
  /* its images read no data (the compiler checked): only n and noise; the
   * block's data fields are slots of its graph but unread */
  for (int i = 0; i < p->after.nslots; i++) {
    const RtSlot *s = &p->after.slots[i];
    if (s->kind == RT_SLOT_RAND || s->kind == RT_SLOT_RANDN) fill_noise(s, arena + s->offset, 1, &rng);
    else if (!strcmp(s->name, "n")) arena[s->offset] = 1;
  }
  p->after.fn(arena, 1);
}

/* What the steps of a block of several did in an epoch: each one's loss
 * summed over the samples it ran on, and its metrics. */
typedef struct {
  double loss[RT_MAX_STEPS];
  int64_t samples[RT_MAX_STEPS];
  MetricSum m[RT_MAX_STEPS];
} StepSums;

typedef enum { STEPS_OK, STEPS_FAILED, STEPS_STOPPED, STEPS_DIVERGED } StepsStatus;

/* One batch of a block of several steps, batch number t (from 0, over the
 * whole run): each step in order on the same samples, step k only when t
 * is a multiple of its `every`. Every step sees the same random crops of
 * the images (drawn from a generator seeded once per batch) and noise of
 * its own. A step's learning rate follows its own updates. */
static StepsStatus run_steps(const RtProgram *p, const RtTrainConfig *cfg, float *arena, const RtTable *t,
                             const int64_t *idx, int64_t n, int64_t t_batch, int64_t steps_per_epoch, int64_t total,
                             int64_t epoch, int64_t batch_no, RtRng *rng, StepSums *sums, RtError *err) {
  RtRng crops_of_batch;
  rt_rng_seed(&crops_of_batch, rt_rng_u64(rng));
  for (int k = 0; k < p->nsteps; k++) {
    const RtStep *st = &p->steps[k];
    int64_t every = st->every > 0 ? st->every : 1;
    if (t_batch % every != 0) continue;
    double lr = rt_schedule_lr(&st->schedule, (t_batch + every - 1) / every, (steps_per_epoch + every - 1) / every,
                               (total + every - 1) / every);
    RtRng crops = crops_of_batch;
    if (!fill_slots(st, arena, t, idx, n, lr, cfg->train_pipeline, true, &crops, rng, err)) return STEPS_FAILED;
    st->fn(arena, n);
    if (cfg->after_step && !cfg->after_step(cfg->after_step_ctx, arena, n, epoch, batch_no, k)) return STEPS_STOPPED;
    double loss = arena[st->loss_offset];
    if (!isfinite(loss)) {
      rt_fail(err, "the %s loss became %s at epoch %lld, batch %lld; the last good checkpoint is kept. "
                   "Try a smaller learning rate (of step %s), or normalize the inputs",
              st->name, isnan(loss) ? "NaN" : "infinite", (long long)epoch, (long long)batch_no, st->name);
      return STEPS_DIVERGED;
    }
    sums->loss[k] += loss * (double)n;
    sums->samples[k] += n;
    if (!msum_add(&sums->m[k], st, arena, n, err)) return STEPS_FAILED;
  }
  return STEPS_OK;
}

/* The epoch's numbers of a block of several steps: NAME_loss for each step,
 * then its metrics as NAME_METRIC; *first is the first step's loss. */
static int steps_metrics(const RtProgram *p, StepSums *sums, RtMetric *ms, double *first) {
  static char names[RT_MAX_STEPS][1 + RT_MAX_METRICS][96];
  int nm = 0;
  for (int k = 0; k < p->nsteps; k++) {
    const RtStep *st = &p->steps[k];
    double v[RT_MAX_METRICS];
    msum_finish(&sums->m[k], st, v);
    double loss = sums->samples[k] ? sums->loss[k] / (double)sums->samples[k] : NAN;
    if (k == 0) *first = loss;
    snprintf(names[k][0], sizeof names[k][0], "%s_loss", st->name);
    ms[nm++] = (RtMetric){names[k][0], loss};
    for (int m = 0; m < st->nmetrics; m++) {
      snprintf(names[k][1 + m], sizeof names[k][1 + m], "%s_%s", st->name, st->metric_names[m]);
      ms[nm++] = (RtMetric){names[k][1 + m], v[m]};
    }
  }
  return nm;
}

bool rt_train(const RtProgram *p, const RtTrainConfig *cfg, const RtTable *t, RtTrainResult *res, RtError *err) {
  memset(res, 0, sizeof *res);
  RtBadClass bad;
  if (rt_find_bad_class(&p->train, t, NULL, 0, &bad) || rt_find_bad_class(&p->eval, t, NULL, 0, &bad))
    return rt_bad_class_fail(&bad, NULL, err);
  for (int k = 1; k < p->nsteps; k++)
    if (rt_find_bad_class(&p->steps[k], t, NULL, 0, &bad)) return rt_bad_class_fail(&bad, NULL, err);
  float *arena = calloc((size_t)p->arena_floats, sizeof(float));
  if (!arena) return rt_fail(err, "out of memory: the arena needs %lld MiB", (long long)(p->arena_floats * 4 >> 20));
  RtRng rng;
  rt_rng_seed(&rng, cfg->seed);
  rt_init_params(p, arena, &rng);
  if (cfg->init_path && !rt_load_program(p, arena, cfg->init_path, true, err)) {
    free(arena);
    return false;
  }
  /* load(teacher, file) in the block: a model trained before (frozen, or fine-tuned) */
  for (int i = 0; i < cfg->nloads; i++)
    if (!rt_load_model(p, arena, cfg->load_paths[i], cfg->load_prefixes[i], cfg->load_vars[i], err)) {
      free(arena);
      return false;
    }
  /* continuing a run: everything it saved at the end of its last epoch */
  int64_t first_epoch = 1;
  double best_resumed = NAN;
  int64_t since_resumed = 0, t_resumed = 0, best_epoch_resumed = 0;
  if (cfg->resume_path) {
    RtCheckpoint ck;
    if (!rt_load_program(p, arena, cfg->resume_path, false, err) || !rt_load_safetensors(cfg->resume_path, &ck, err)) {
      free(arena);
      return false;
    }
    const char *e = rt_checkpoint_meta(&ck, "epoch"), *r = rt_checkpoint_meta(&ck, "rng");
    const char *b = rt_checkpoint_meta(&ck, "best"), *sb = rt_checkpoint_meta(&ck, "since_best");
    const char *tu = rt_checkpoint_meta(&ck, "updates"), *be = rt_checkpoint_meta(&ck, "best_epoch");
    const char *path = cfg->resume_path;
    int64_t done = 0;
    bool good = e && r && b && sb && tu && be;
    if (!good)
      rt_fail(err, "%s is not a training state nnc can resume from (it lacks the epoch or RNG state)", path);
    else if (!rt_rng_parse(r, &rng))
      good = damaged(err, path, "rng", r, "the state of a random generator (64 hex digits, not all 0)");
    else if (!state_int(path, "epoch", e, 1, -1, &done, err) ||
             !state_int(path, "since_best", sb, 0, done, &since_resumed, err) ||
             !state_int(path, "updates", tu, 0, -1, &t_resumed, err) ||
             !state_int(path, "best_epoch", be, 0, done, &best_epoch_resumed, err))
      good = false;
    else if (!state_number(path, "best", b, &best_resumed, err))
      good = false;
    else if (done > cfg->epochs) {
      rt_fail(err, "%s holds the state after epoch %lld, but this run has %lld epochs; pass --epochs N with N above "
                   "%lld to train on, or start again without --resume", path, (long long)done, (long long)cfg->epochs,
              (long long)done);
      good = false;
    }
    rt_checkpoint_free(&ck);
    if (!good) {
      free(arena);
      return false;
    }
    first_epoch = done + 1;
    res->epochs_run = done;
    fprintf(cfg->out, "resuming from %s after epoch %lld\n", path, (long long)done);
    if (done == cfg->epochs)
      fprintf(cfg->out, "all %lld epochs were trained already; pass --epochs N with N above %lld to train on\n",
              (long long)done, (long long)done);
  }

  RtSplit split;
  if (!rt_split(t->rows, cfg->valid_fraction, cfg->seed, &split, err)) {
    free(arena);
    return false;
  }
  int64_t *train_base = malloc(sizeof(int64_t) * (size_t)(split.ntrain ? split.ntrain : 1));
  if (!train_base) {
    rt_split_free(&split);
    free(arena);
    return rt_fail(err, "out of memory");
  }
  memcpy(train_base, split.train, sizeof(int64_t) * (size_t)split.ntrain);
  int64_t batch = cfg->batch > 0 ? cfg->batch : 32;
  if (batch > p->n_max) batch = p->n_max;
  int64_t steps_per_epoch = (split.ntrain + batch - 1) / batch;
  int64_t total = steps_per_epoch * cfg->epochs;
  bool tty = cfg->tty;
  double best = best_resumed;
  int64_t since_best = since_resumed, t_update = t_resumed;
  res->best_epoch = best_epoch_resumed;
  res->best = best_resumed;
  bool ok = true;
  int monitor = -1;   /* -1: valid loss; else a metric index */
  bool curves_failed = false;
  for (int m = 0; m < p->eval.nmetrics; m++)
    if (cfg->monitor && !strcmp(cfg->monitor, p->eval.metric_names[m])) monitor = m;
  bool maximize = monitor >= 0;

  for (int64_t epoch = first_epoch; epoch <= cfg->epochs && ok; epoch++) {
    double t0 = now_seconds();
    /* each epoch's order depends on the RNG state alone (not on the order
     * before it), so a resumed run shuffles exactly as an uninterrupted one */
    memcpy(split.train, train_base, sizeof(int64_t) * (size_t)split.ntrain);
    rt_shuffle(&rng, split.train, split.ntrain);
    double sum_loss = 0, train_m[RT_MAX_METRICS];
    MetricSum sum_m;
    memset(&sum_m, 0, sizeof sum_m);
    StepSums sums;
    memset(&sums, 0, sizeof sums);
    for (int64_t b = 0; b < split.ntrain; b += batch) {
      int64_t n = split.ntrain - b < batch ? split.ntrain - b : batch;
      if (p->nsteps) {
        StepsStatus st = run_steps(p, cfg, arena, t, split.train + b, n, t_update, steps_per_epoch, total, epoch,
                                   b / batch + 1, &rng, &sums, err);
        t_update++;
        if (st == STEPS_STOPPED) res->stopped = true;
        if (st == STEPS_DIVERGED) res->diverged = true;
        if (st == STEPS_OK && cfg->interrupted && *cfg->interrupted) {
          res->stopped = res->interrupted = true;
          st = STEPS_STOPPED;
        }
        if (st != STEPS_OK) {
          ok = false;
          break;
        }
        if (tty && (b / batch) % 16 == 0)
          rt_progress(cfg->out, tty, epoch, cfg->epochs, b / batch + 1, steps_per_epoch,
                      sums.samples[0] ? sums.loss[0] / (double)sums.samples[0] : NAN, now_seconds() - t0);
        continue;
      }
      double lr = rt_schedule_lr(&cfg->schedule, t_update, steps_per_epoch, total);
      if (!fill_inputs(&p->train, arena, t, split.train + b, n, lr, cfg->train_pipeline, true, &rng, err)) {
        ok = false;
        break;
      }
      p->train.fn(arena, n);
      t_update++;
      if (cfg->after_step && !cfg->after_step(cfg->after_step_ctx, arena, n, epoch, b / batch + 1, 0)) {
        res->stopped = true;
        ok = false;
        break;
      }
      if (cfg->interrupted && *cfg->interrupted) {
        res->stopped = res->interrupted = true;
        ok = false;
        break;
      }
      double loss = arena[p->train.loss_offset];
      if (!isfinite(loss)) {
        rt_fail(err, "the loss became %s at epoch %lld, batch %lld; the last good checkpoint is kept. "
                     "Try a smaller learning rate, or normalize the inputs",
                isnan(loss) ? "NaN" : "infinite", (long long)epoch, (long long)(b / batch + 1));
        res->diverged = true;
        ok = false;
        break;
      }
      sum_loss += loss * (double)n;
      if (!msum_add(&sum_m, &p->train, arena, n, err)) {
        ok = false;
        break;
      }
      if (tty && (b / batch) % 16 == 0)
        rt_progress(cfg->out, tty, epoch, cfg->epochs, b / batch + 1, steps_per_epoch, loss, now_seconds() - t0);
    }
    msum_finish(&sum_m, &p->train, train_m);
    RtMetric ms[2 + 2 * RT_MAX_METRICS + RT_MAX_STEPS * (1 + RT_MAX_METRICS)];
    int nm = 0;
    if (p->nsteps) {
      double first = NAN;
      nm = steps_metrics(p, &sums, ms, &first);
      sum_loss = first * (double)split.ntrain;   /* the first step's loss stands for the block's */
    }
    if (!ok) break;
    if (cfg->after && !cfg->after(cfg->after_ctx, arena, RT_AFTER_EPOCH, epoch, err)) {
      ok = false;
      break;
    }
    if (!p->nsteps) {
      ms[nm++] = (RtMetric){"train_loss", sum_loss / (double)split.ntrain};
      for (int m = 0; m < p->train.nmetrics; m++) ms[nm++] = (RtMetric){p->train.metric_names[m], train_m[m]};
    }
    double vloss = NAN, vm[RT_MAX_METRICS] = {0};
    if (split.nvalid > 0 && p->eval.fn) {
      if (!evaluate(p, arena, t, split.valid, split.nvalid, batch, cfg->valid_pipeline, &rng, &vloss, vm, err)) {
        ok = false;
        break;
      }
      ms[nm++] = (RtMetric){"valid_loss", vloss};
      for (int m = 0; m < p->eval.nmetrics; m++) {
        static char names[RT_MAX_METRICS][48];
        snprintf(names[m], sizeof names[m], "valid_%s", p->eval.metric_names[m]);
        ms[nm++] = (RtMetric){names[m], vm[m]};
      }
    }
    double ms_epoch = (now_seconds() - t0) * 1000;
    res->ms_per_epoch = ms_epoch;
    /* one line every print_every epochs (and the first and last): a long
     * run stays readable; the log file has every epoch */
    bool quiet_epoch = cfg->print_every > 1 && epoch % cfg->print_every != 0 && epoch != 1 && epoch != cfg->epochs;
    /* early stopping and the best checkpoint follow the monitored value */
    double score = split.nvalid > 0 ? (monitor >= 0 ? vm[monitor] : vloss) : sum_loss / (double)split.ntrain;
    bool better = isnan(best) || (maximize ? score > best : score < best);
    if (better) {
      best = score;
      since_best = 0;
      res->best_epoch = epoch;
      res->best = score;
      res->best_valid_loss = vloss;
      for (int m = 0; m < p->eval.nmetrics; m++) res->best_metrics[m] = vm[m];
      if (cfg->save_best) {
        char e[32];
        snprintf(e, sizeof e, "%lld", (long long)epoch);
        RtMeta meta[RT_MAX_META];
        int nmeta = 0;
        for (int i = 0; i < cfg->nmeta && nmeta < RT_MAX_META - 1; i++) meta[nmeta++] = cfg->meta[i];
        meta[nmeta++] = (RtMeta){"epoch", e};
        if (!rt_save_program(p, arena, cfg->save_best, meta, nmeta, cfg->extra, cfg->nextra, err)) {
          ok = false;
          break;
        }
      }
    } else {
      since_best++;
    }
    if (!quiet_epoch) rt_epoch_line(cfg->out, tty, epoch, cfg->epochs, ms, nm, ms_epoch);
    if (cfg->log_path && !rt_log_jsonl(cfg->log_path, epoch, ms, nm, ms_epoch, err)) {
      ok = false;
      break;
    }
    /* the chart is a convenience: a failure to draw it is said once, and
     * training goes on */
    if (cfg->log_path && cfg->curves_path && !curves_failed) {
      RtError perr = {{0}};
      if (!rt_plot_log(cfg->log_path, cfg->curves_path, &perr)) {
        fprintf(stderr, "warning: no training curves: %s\n", perr.msg);
        curves_failed = true;
      }
    }
    res->epochs_run = epoch;
    res->last_train_loss = sum_loss / (double)split.ntrain;
    if (cfg->state_path) {
      char e[32], r[65], b[40], sb[32], tu[32], be[32];
      snprintf(e, sizeof e, "%lld", (long long)epoch);
      rt_rng_format(&rng, r);
      snprintf(b, sizeof b, "%.17g", best);
      snprintf(sb, sizeof sb, "%lld", (long long)since_best);
      snprintf(tu, sizeof tu, "%lld", (long long)t_update);
      snprintf(be, sizeof be, "%lld", (long long)res->best_epoch);
      RtMeta meta[RT_MAX_META];
      int nmeta = 0;
      for (int i = 0; i < cfg->nmeta && nmeta < RT_MAX_META - 6; i++) meta[nmeta++] = cfg->meta[i];
      meta[nmeta++] = (RtMeta){"epoch", e};
      meta[nmeta++] = (RtMeta){"rng", r};
      meta[nmeta++] = (RtMeta){"best", b};
      meta[nmeta++] = (RtMeta){"since_best", sb};
      meta[nmeta++] = (RtMeta){"updates", tu};
      meta[nmeta++] = (RtMeta){"best_epoch", be};
      if (!rt_save_program(p, arena, cfg->state_path, meta, nmeta, cfg->extra, cfg->nextra, err)) {
        ok = false;
        break;
      }
    }
    if (cfg->early_stop > 0 && since_best >= cfg->early_stop) {
      fprintf(cfg->out, "early stop: %s has not improved for %lld epochs (best %.6g at epoch %lld)\n",
              monitor >= 0 ? cfg->monitor : "valid loss", (long long)since_best, best, (long long)res->best_epoch);
      break;
    }
  }
  if (res->stopped) {
    rt_split_free(&split);
    free(train_base);
    free(arena);
    return false;
  }
  if (ok && cfg->after && !cfg->after(cfg->after_ctx, arena, RT_AFTER_TRAIN, res->epochs_run, err)) ok = false;
  if (ok && cfg->save_last) {
    if (!rt_save_program(p, arena, cfg->save_last, cfg->meta, cfg->nmeta, cfg->extra, cfg->nextra, err)) ok = false;
  }
  if (res->arena_out) memcpy(res->arena_out, arena, sizeof(float) * (size_t)p->arena_floats);
  free(train_base);
  rt_split_free(&split);
  free(arena);
  return ok;
}

bool rt_predict(const RtProgram *p, float *arena, const RtTable *t, int64_t batch, const RtPipeline *pl, int ncols,
                const int64_t *offsets, const int64_t *widths, float **cols, double *metrics, RtError *err) {
  const RtStep *st = &p->train;
  RtBadClass bad;
  if (rt_find_bad_class(st, t, NULL, 0, &bad)) return rt_bad_class_fail(&bad, NULL, err);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(t->rows ? t->rows : 1));
  if (!idx) return rt_fail(err, "out of memory");
  for (int64_t i = 0; i < t->rows; i++) idx[i] = i;
  RtRng rng;
  rt_rng_seed(&rng, 0);
  if (batch > p->n_max) batch = p->n_max;
  bool ok = true;
  MetricSum ms;
  memset(&ms, 0, sizeof ms);
  for (int64_t b = 0; b < t->rows && ok; b += batch) {
    int64_t n = t->rows - b < batch ? t->rows - b : batch;
    if (!fill_inputs(st, arena, t, idx + b, n, 0, pl, false, &rng, err)) {
      ok = false;
      break;
    }
    st->fn(arena, n);
    for (int c = 0; c < ncols; c++) {
      int64_t w = widths ? widths[c] : 1;
      memcpy(cols[c] + b * w, arena + offsets[c], sizeof(float) * (size_t)(n * w));
    }
    if (metrics && !msum_add(&ms, st, arena, n, err)) ok = false;
  }
  double out[RT_MAX_METRICS];
  msum_finish(&ms, st, out);
  if (metrics) memcpy(metrics, out, sizeof(double) * (size_t)st->nmetrics);
  free(idx);
  return ok;
}
