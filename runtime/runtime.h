/*
 * runtime.h — what a compiled nnc program needs around its step function:
 * data tables and their loaders (CSV, IDX), a seeded random generator,
 * train/valid splits and batches, checkpoints (safetensors), output files,
 * progress and metrics printing, and images (PNG files, augmentation, image
 * folders, training-curve charts).
 *
 *     RtError err;
 *     RtColumnSel sel[] = {{"x", 1, 116}, {"y", 117, 117}};  // columns count from 0
 *     RtTable t;
 *     if (!rt_load_csv("data/hw1/covid.train.csv", true, sel, 2, &t, &err)) {
 *       fprintf(stderr, "nnc: %s\n", err.msg);   // names the file, line, column
 *       return 1;
 *     }
 *     RtSplit sp;
 *     rt_split(t.rows, 0.2, 5201314, &sp, &err);          // seeded shuffle, then cut
 *     RtField *x = rt_table_field(&t, "x");
 *     rt_gather(&t, x, sp.train, 256, arena + x_offset);  // one batch, [256, 116]
 *     ...
 *     rt_split_free(&sp);
 *     rt_table_free(&t);
 *
 * The runtime knows no spec syntax and no LLVM. All element data is float32
 * (class ids are exact float values). Every problem caused by a user's files
 * (missing, corrupt, truncated, a bad CSV cell) is returned: the function
 * returns false or NULL and fills an RtError whose message names the file,
 * the position (line and column for CSV, byte offset for binary files) and
 * what to do. The runtime never prints an error and never aborts on one; only
 * a broken invariant of nnc itself (RT_ASSERT) aborts.
 */
#ifndef NNC_RUNTIME_H
#define NNC_RUNTIME_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ------------------------------------------------------------ */

/* A user-facing error message, one or two sentences, no trailing newline. */
typedef struct {
  char msg[1024];
} RtError;

/* Fills `err` (if not NULL) and returns false, so readers can write
 * `return rt_fail(err, ...)`. */
bool rt_fail(RtError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Broken invariants of nnc itself (not the user's fault): print and abort. */
#define RT_ASSERT(c) \
  ((c) ? (void)0 : rt_die(__FILE__, __LINE__, "assertion failed: %s", #c))
_Noreturn void rt_die(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- tables ------------------------------------------------------------ */

#define RT_MAX_RANK 8

/* One named field of a table: `rows` samples of `width` floats each, stored
 * contiguously as [rows, width]. `shape` is the per-sample shape
 * (rank 1 [width] for CSV columns, [rows, cols] for IDX images, [1] for
 * labels); its product is `width`. */
typedef struct {
  char *name;
  int64_t width;
  int rank;
  int64_t shape[RT_MAX_RANK];
  float *data;  /* [rows, width] */
} RtField;

typedef struct {
  int64_t rows;
  int nfields;
  RtField *fields;
} RtTable;

/* Field `name` takes the CSV columns first..last, inclusive, counting from 0
 * (as the spec's cols() does). */
typedef struct {
  const char *name;
  int64_t first, last;
} RtColumnSel;

/* Loads the selected columns of a CSV file. `header`: the first non-empty
 * line names the columns and is not data. Every row must have as many
 * columns as the first; every selected cell must be a finite number. Accepts
 * CRLF and lone CR line ends, a UTF-8 BOM, blank lines (skipped) and
 * RFC 4180 quoted cells. */
bool rt_load_csv(const char *path, bool header, const RtColumnSel *sel, int nsel,
                 RtTable *out, RtError *err);

/* The line of `path` where data row `row` (from 0, as the table counts
 * rows) starts, for messages about a value rt_load_csv loaded. */
bool rt_csv_row_line(const char *path, bool header, int64_t row, int64_t *line, RtError *err);

/* Loads IDX images (magic 2051, unsigned bytes, gzip or plain) as field "x"
 * [rows*cols] scaled to [0, 1], and, if `labels_path` is not NULL, IDX labels
 * (magic 2049) as field "y" [1] holding the class id. */
bool rt_load_idx(const char *images_path, const char *labels_path, RtTable *out,
                 RtError *err);

void rt_table_free(RtTable *t);
/* The field called `name`, or NULL. */
RtField *rt_table_field(const RtTable *t, const char *name);
/* Adds field `name` holding `value` in every row (a data set's constant
 * field, `{ anomaly = 1 }`). */
bool rt_table_add_constant(RtTable *t, const char *name, float value, RtError *err);
/* Adds the fields of `part` to t as "NAME.field" (zip: data sets side by
 * side; rows: the fewer of the two), moving their data out of `part`. */
bool rt_table_zip(RtTable *t, RtTable *part, const char *name, RtError *err);
/* Appends the rows of `more` to t (every field of t must be in `more`, as
 * wide) and frees `more`; into an empty t, `more` is moved. */
bool rt_table_append(RtTable *t, RtTable *more, RtError *err);

/* ---- random numbers ---------------------------------------------------- */

/* xoshiro256** (Blackman and Vigna, 2018), seeded through splitmix64. The
 * state is a plain struct: save it in a checkpoint (rt_rng_format) and the
 * run continues with the same numbers. */
typedef struct {
  uint64_t s[4];
} RtRng;

void rt_rng_seed(RtRng *r, uint64_t seed);
uint64_t rt_rng_u64(RtRng *r);
/* Uniform in [0, n), without modulo bias; n > 0. */
uint64_t rt_rng_below(RtRng *r, uint64_t n);
/* Uniform float in [0, 1), a multiple of 2^-24. */
float rt_rng_uniform(RtRng *r);
/* Standard normal (Box-Muller; uses two draws, keeps no spare). */
float rt_rng_normal(RtRng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void rt_shuffle(RtRng *r, int64_t *idx, int64_t n);
/* The state as 64 hex digits (buf holds 65 bytes), and back; false if
 * `text` is not 64 hex digits or is the all-zero state. */
void rt_rng_format(const RtRng *r, char buf[65]);
bool rt_rng_parse(const char *text, RtRng *r);

/* ---- splits, batches, normalization ------------------------------------ */

/* A train/valid partition of rows 0..rows-1. */
typedef struct {
  int64_t *train, ntrain;
  int64_t *valid, nvalid;
} RtSplit;

/* Shuffles 0..rows-1 with a generator seeded by `seed`; the first
 * floor(rows * valid_fraction) indices are the valid set, the rest the train
 * set. The same arguments give the same split. 0 <= valid_fraction < 1. */
bool rt_split(int64_t rows, double valid_fraction, uint64_t seed, RtSplit *out,
              RtError *err);
void rt_split_free(RtSplit *s);

/* Copies rows idx[0..n) of field `f` into dst, [n, f->width]. */
void rt_gather(const RtTable *t, const RtField *f, const int64_t *idx, int64_t n,
               float *dst);

/* Per-feature mean and standard deviation (population, ddof 0) of field `f`
 * over rows idx[0..n) (all rows if idx is NULL); mean and std hold
 * f->width floats. Sums are in double. */
void rt_field_stats(const RtTable *t, const RtField *f, const int64_t *idx, int64_t n,
                    float *mean, float *std);
/* x = (x - mean) / std for every row of `f`. A feature whose std is below
 * 1e-12 (constant over the rows measured) is only centered. */
void rt_normalize(const RtTable *t, RtField *f, const float *mean, const float *std);

/* ---- checkpoints (safetensors) ----------------------------------------- */

/* A tensor to save. Element data is float32, written as "F32". */
typedef struct {
  const char *name;
  int rank;
  int64_t shape[RT_MAX_RANK];
  const float *data;
} RtTensorRef;

/* A "__metadata__" entry: string to string. */
typedef struct {
  const char *key;
  const char *value;
} RtMeta;

/* A loaded tensor; `data` points into the checkpoint's storage. */
typedef struct {
  const char *name;
  int rank;
  int64_t shape[RT_MAX_RANK];
  int64_t numel;
  float *data;
} RtTensor;

typedef struct {
  int ntensors;
  RtTensor *tensors;  /* in the order of their data in the file */
  int nmeta;
  RtMeta *meta;
  char *strings;      /* owns every name, key and value */
  float *storage;     /* owns every tensor's data */
} RtCheckpoint;

/* Writes a safetensors file atomically: path.tmp in the same folder (made if
 * missing), flushed and fsynced, renamed over `path`, then the folder is
 * fsynced. A crash leaves either the old file or the new one. */
bool rt_save_safetensors(const char *path, const RtTensorRef *ts, int n, const RtMeta *meta,
                         int nmeta, RtError *err);
/* Reads a safetensors file with F32 tensors (as PyTorch, NumPy and nnc write
 * them). Everything the header says is checked against the file. */
bool rt_load_safetensors(const char *path, RtCheckpoint *out, RtError *err);
const RtTensor *rt_checkpoint_find(const RtCheckpoint *c, const char *name);
/* The metadata value for `key`, or NULL. */
const char *rt_checkpoint_meta(const RtCheckpoint *c, const char *key);
void rt_checkpoint_free(RtCheckpoint *c);

/* ---- files ------------------------------------------------------------- */

/* mkdir -p: makes `dir` and its missing parents. */
bool rt_mkdirs(const char *dir, RtError *err);
/* `s` as a JSON string, quoted and escaped (checkpoint headers, logs). */
void rt_json_string(FILE *f, const char *s);

/* A file being written atomically (see rt_save_safetensors). */
typedef struct {
  FILE *f;
  char *path;
  char *tmp;
} RtAtomicFile;

/* Opens path.tmp for writing, making missing parent folders. */
bool rt_atomic_open(RtAtomicFile *af, const char *path, RtError *err);
/* Flushes, fsyncs and renames over the target; on failure removes the temp
 * file. Either way af is closed. */
bool rt_atomic_commit(RtAtomicFile *af, RtError *err);
/* Gives up: closes and removes the temp file. */
void rt_atomic_abort(RtAtomicFile *af);

/* How a column of floats is written to a CSV file. */
typedef enum {
  RT_CSV_INT,    /* rounded to the nearest integer: ids, class ids */
  RT_CSV_FLOAT,  /* %.6g: regression outputs, probabilities */
} RtCsvFormat;

/* Writes a CSV file atomically: an optional header line (`header` NULL for
 * none), then `rows` lines of ncols cells, column j from cols[j][0..rows). */
bool rt_write_csv_atomic(const char *path, const char *const *header,
                         const float *const *cols, const RtCsvFormat *formats, int ncols,
                         int64_t rows, RtError *err);

/* ---- progress and metrics ---------------------------------------------- */

/* A named number of one epoch: train_loss, valid_loss, valid_acc, ... */
typedef struct {
  const char *name;
  double value;
} RtMetric;

/* On a terminal (tty), redraws one line with a bar for the batches of the
 * current epoch; elsewhere prints nothing (logs stay one line per epoch). */
void rt_progress(FILE *f, bool tty, int64_t epoch, int64_t epochs, int64_t batch,
                 int64_t batches, double loss, double elapsed_seconds);
/* One plain line per epoch, clearing the progress bar first on a tty:
 * `epoch 3/3000  train_loss 1.2345  valid_loss 1.3456  12.3 ms/epoch` */
void rt_epoch_line(FILE *f, bool tty, int64_t epoch, int64_t epochs, const RtMetric *m,
                   int nm, double ms_per_epoch);
/* Appends one JSON object to a JSON Lines file (folders made if missing):
 * {"epoch":3,"train_loss":1.2345,...,"ms":12.3}. NaN and infinities are
 * written as null, which JSON can hold. */
bool rt_log_jsonl(const char *path, int64_t epoch, const RtMetric *m, int nm,
                  double ms_per_epoch, RtError *err);


/* ---- compiled programs and the training loop (train.c) ----------------- */

/* What a compiled step reads: a named buffer in the arena. A shape entry of
 * -1 is the batch dimension B (n at run time). */
enum { RT_METRIC_MEAN = -1, RT_METRIC_MAX = -2 };
typedef enum { RT_SLOT_PARAM, RT_SLOT_STATE, RT_SLOT_INPUT, RT_SLOT_RAND, RT_SLOT_RANDN } RtSlotKind;
enum { RT_INIT_UNIFORM, RT_INIT_ONES, RT_INIT_ZEROS };

typedef struct {
  const char *name;      /* "fc1.weight", "fc1.weight.exp_avg", "x", "n", "lr" */
  RtSlotKind kind;
  bool buffer;           /* state that belongs to the model (BatchNorm's running
                            statistics), saved and loaded with the parameters */
  int64_t offset;        /* in floats from the arena's start */
  int rank;
  int64_t shape[RT_MAX_RANK];
  int init;              /* RT_INIT_*: how parameters and state start */
  float bound;           /* RT_INIT_UNIFORM: U(-bound, bound) */
  int64_t classes;       /* an input of class ids the step one-hot encodes:
                            how many classes (ids 0..classes-1); 0: none */
  float ignored;         /* ... and an id the loss skips (ignore_index), allowed
                            too (0, a class anyway, when there is none) */
} RtSlot;

/* One compiled step: `fn(arena, n)` runs it on a batch of n. */
typedef void (*RtStepFn)(float *arena, int64_t n);

enum { RT_MAX_METRICS = 8, RT_MAX_META = 16, RT_MAX_STEPS = 8 };

typedef enum { RT_SCHED_CONSTANT, RT_SCHED_STEP, RT_SCHED_LINEAR, RT_SCHED_COSINE, RT_SCHED_NOAM } RtSchedKind;

typedef struct {
  RtSchedKind kind;
  double lr, to, gamma;  /* to: final lr (linear, cosine); gamma: step decay, or noam's scale */
  int64_t warmup, every; /* every: step_lr's period in epochs, or noam's model dim */
} RtSchedule;

typedef struct {
  RtStepFn fn;
  int nslots;
  RtSlot *slots;         /* inputs and noise it reads */
  int64_t loss_offset;
  int nmetrics;
  const char *metric_names[RT_MAX_METRICS];
  int64_t metric_offsets[RT_MAX_METRICS];
  /* RT_METRIC_MEAN: the metric is a scalar per batch, averaged over the
   * batches (by their sizes); RT_METRIC_MAX: the largest of the batches';
   * else a metric of the whole data set (ROC AUC): the step leaves each
   * sample's score at metric_offsets[m] and label here */
  int64_t metric_labels[RT_MAX_METRICS];
  /* a step of several (RtProgram.steps): its name, how often it runs (on
   * every `every`-th batch) and its optimizer's learning rate */
  const char *name;
  int64_t every;
  RtSchedule schedule;
} RtStep;

typedef struct {
  int64_t arena_floats;  /* for the largest batch */
  int64_t n_max;
  int npersistent;
  RtSlot *persistent;    /* parameters and state, shared by the steps */
  RtStep train, eval;
  RtStep after;          /* a train block's `after epoch/train` writes: run on
                            their own, n = 1 (fn NULL: there are none) */
  /* A train block of several `step`s (a GAN's discriminator and generator):
   * each is a training step of its own over the same arena (parameters,
   * optimizer state and running statistics shared), run in order on the
   * same batch, step k on every steps[k].every-th batch. train is then a
   * copy of steps[0], and eval is empty (fn NULL). 0: the block is one
   * step, train. */
  int nsteps;
  RtStep steps[RT_MAX_STEPS];
} RtProgram;

/* A data set's image transforms (pipeline.c), applied to field `field`
 * ([c, h, w] per sample) of each batch on its way into a step: the spec's
 * ds.map(crop(...)).map(flip(...)). */
typedef enum { RT_TF_CROP, RT_TF_FLIP, RT_TF_ROTATE, RT_TF_RESIZE } RtTransformKind;
typedef struct {
  RtTransformKind kind;
  int size, padding;       /* crop(size, padding), resize(size) */
  double p, degrees;       /* flip(p), rotate(degrees) */
} RtTransform;
typedef struct {
  const char *field;       /* "x" */
  int c, h, w;             /* the stored images */
  int n;                   /* transforms, in order; 0: none */
  RtTransform t[8];
} RtPipeline;
/* The shape of the images the pipeline produces. */
void rt_pipeline_out(const RtPipeline *pl, int *c, int *h, int *w);
/* x [n, c, h, w] through the pipeline into out. `random`: training's
 * random crops, flips and rotations, drawn from r; otherwise each
 * transform's deterministic version: the centre crop, a flip only if
 * p >= 1, no rotation. */
bool rt_pipeline_run(const RtPipeline *pl, bool random, RtRng *r, const float *x, int64_t n, float *out,
                     RtError *err);

typedef struct {
  uint64_t seed;
  int64_t batch, epochs, early_stop;
  double valid_fraction;
  const char *monitor;       /* a metric name, or NULL/"loss" for the valid loss */
  const char *save_best, *save_last, *log_path;
  const char *curves_path;   /* the log's chart, redrawn after every epoch (PNG; NULL: none) */
  RtSchedule schedule;
  FILE *out;                 /* progress and epoch lines */
  bool tty;
  int64_t print_every;       /* off a terminal, one line every N epochs (and on improvement) */
  const RtMeta *meta;        /* written into every checkpoint */
  int nmeta;
  const RtTensorRef *extra;  /* extra tensors for checkpoints (normalisation statistics) */
  int nextra;
  /* Image transforms of the training batches (random) and of the
   * validation batches (deterministic); NULL: none. */
  const RtPipeline *train_pipeline, *valid_pipeline;
  /* The state of the run after every epoch (parameters, optimizer state,
   * the RNG, the epoch, early stopping's count), written atomically, so a
   * killed run can continue; and the file to continue from (NULL: start). */
  const char *state_path;
  const char *resume_path;
  const char *init_path;     /* start from these weights instead of random ones */
  /* the block's load(model, file): each file fills the parameters named
   * with its prefix (rt_load_model), after initialization */
  int nloads;
  const char *load_paths[8], *load_prefixes[8], *load_vars[8];
  /* Called after every training step (NULL: none; of several steps: step
   * number `step`, from 0); returning false stops training (the hook has
   * said why). For --check-numerics. */
  bool (*after_step)(void *ctx, const float *arena, int64_t n, int64_t epoch, int64_t batch, int step);
  void *after_step_ctx;
  /* Set by a signal handler (Ctrl-C): training stops after the current
   * step; the state of the last finished epoch is on disk. */
  volatile sig_atomic_t *interrupted;
  /* The block's `after epoch` (when RT_AFTER_EPOCH: after each epoch's
   * steps, before it is evaluated and saved) and `after train` (once, at
   * the end) work (NULL: none); false stops training, err says why. */
  bool (*after)(void *ctx, float *arena, int when, int64_t epoch, RtError *err);
  void *after_ctx;
} RtTrainConfig;

enum { RT_AFTER_EPOCH, RT_AFTER_TRAIN };

/* Runs p->after (a block's after writes) once, n = 1, its noise drawn from
 * `seed` alone: the same samples every time, so that pictures drawn after
 * each epoch show the model change. Nothing to do without one. */
void rt_run_after(const RtProgram *p, float *arena, uint64_t seed);

/* L1 unstructured pruning, as PyTorch's prune.l1_unstructured applied
 * again to a pruned weight: of the n entries of w whose mask is not 0,
 * the round(amount · remaining) smallest by magnitude (the first ones on
 * ties) get mask 0 and weight 0. Returns how many it zeroed, or -1 when
 * out of memory. */
int64_t rt_prune(float *w, float *mask, int64_t n, double amount);

typedef struct {
  int64_t epochs_run, best_epoch;
  double best, best_valid_loss, last_train_loss, ms_per_epoch;
  double best_metrics[RT_MAX_METRICS];
  bool diverged;
  bool stopped;              /* after_step asked to stop */
  bool interrupted;          /* stopped by *cfg->interrupted, in epoch `epochs_run + 1` */
  float *arena_out;          /* if set (arena_floats floats), the final arena is copied here */
} RtTrainResult;

int64_t rt_slot_numel(const RtSlot *s, int64_t n);
void rt_init_params(const RtProgram *p, float *arena, RtRng *rng);
double rt_schedule_lr(const RtSchedule *sc, int64_t t, int64_t steps_per_epoch, int64_t total);
/* Trains with the program's train step, evaluating each epoch on the
 * valid split with its eval step. */
bool rt_train(const RtProgram *p, const RtTrainConfig *cfg, const RtTable *t, RtTrainResult *res, RtError *err);
/* `pl` (NULL: none) transforms the images of every batch, deterministically. */
bool rt_evaluate(const RtProgram *p, float *arena, const RtTable *t, const int64_t *idx, int64_t count,
                 int64_t batch, const RtPipeline *pl, RtRng *rng, double *loss, double *metrics, RtError *err);
bool rt_save_program(const RtProgram *p, const float *arena, const char *path, const RtMeta *meta, int nmeta,
                     const RtTensorRef *extra, int nextra, RtError *err);
/* ROC AUC of scores against labels (> 0.5: positive), by the rank-sum
 * (Mann-Whitney) formula with tied scores given their mean rank, as
 * scikit-learn's roc_auc_score; NaN without both classes. */
double rt_auc(const float *score, const float *label, int64_t n);
/* Runs the program's first step (a predict step) over every row of `t` in
 * order; column c's widths[c] values for row i (offsets[c] in the arena;
 * widths NULL: one each) go to cols[c][i·widths[c] ...]; the step's metrics
 * over all rows go to metrics (may be NULL). */
bool rt_predict(const RtProgram *p, float *arena, const RtTable *t, int64_t batch, const RtPipeline *pl, int ncols,
                const int64_t *offsets, const int64_t *widths, float **cols, double *metrics, RtError *err);
/* A sample whose class id is not one the step can encode: field `field`
 * (a slot with classes > 0) holds `value` in row `row` of the table. */
typedef struct {
  const char *field;
  int64_t row;
  double value;
  int64_t classes;
} RtBadClass;
/* Looks at the class-id fields of step `st` in rows idx[0..n) of t (every
 * row if idx is NULL), one pass over each: true, and *bad filled, at the
 * first value that is not a whole number in 0..classes-1. rt_train,
 * rt_evaluate and rt_predict refuse such data before their first step. */
bool rt_find_bad_class(const RtStep *st, const RtTable *t, const int64_t *idx, int64_t n, RtBadClass *bad);
/* The message for it, with a hint: `where` names the place ("data.csv:5";
 * NULL: the row of the table). Returns false. */
bool rt_bad_class_fail(const RtBadClass *bad, const char *where, RtError *err);

/* Loads a checkpoint into the arena: every parameter and buffer must be
 * there with the right shape; optimizer state is loaded when present. */
bool rt_load_program(const RtProgram *p, float *arena, const char *path, bool params_only, RtError *err);
/* Loads one model of several: the parameters (and running statistics)
 * whose names start with `prefix` ("proxy."), from tensors named without
 * it (as the model's own training saved them), or, failing that, named
 * `var`.NAME (a checkpoint of a block of several models, where the model
 * was the variable `var`). */
bool rt_load_model(const RtProgram *p, float *arena, const char *path, const char *prefix, const char *var,
                   RtError *err);

/* ---- images: PNG files, augmentation, image folders, training curves ---- */
/*
 * Images are float32, laid out [C, H, W] (one image) or [n, C, H, W] (a
 * batch), with pixel values in [0, 1] and C = 1 (gray) or 3 (RGB).
 *
 *     RtImageSet s;
 *     if (!rt_load_image_folder("data/food/training", 128, false, &s, &err)) ...
 *     // s.data [s.n, 3, 128, 128], s.labels[i] in 0..s.nclasses-1
 *     rt_aug_random_crop(&rng, s.data, 64, 3, 128, 128, 128, 8, batch);
 *     rt_aug_random_hflip(&rng, batch, 64, 3, 128, 128, 0.5f);
 *     rt_png_grid("out/batch.png", batch, 64, 3, 128, 128, 8, 2, &err);
 */

/* What rt_png_read accepts: at most RT_PNG_MAX_SIDE pixels a side and
 * RT_PNG_MAX_PIXELS pixels in all (4096 x 4096), so that a small file
 * claiming a huge image (a "PNG bomb") is refused before it is decoded. */
enum { RT_PNG_MAX_SIDE = 8192, RT_PNG_MAX_PIXELS = 1 << 24 };

/* One image, [c, h, w]. */
typedef struct {
  int c, h, w;
  float *data;  /* [c, h, w], in [0, 1] */
} RtImage;

/* Reads a PNG file: 1, 2, 4, 8 or 16 bits, gray, gray+alpha, RGB, RGBA or
 * palette, interlaced or not. Samples become v / (2^depth - 1). Alpha is
 * dropped (as PIL's convert("RGB") does); gamma and colour profiles are
 * ignored. `channels`: 0 keeps the file's kind (C = 1 for gray files, 3 for
 * colour and palette files), 1 gives luminance (ITU-R 601: 0.299 R +
 * 0.587 G + 0.114 B, as PIL's convert("L") and torchvision's Grayscale),
 * 3 gives RGB (gray replicated). Errors name the file, the byte where
 * reading stopped and what libpng said. */
bool rt_png_read(const char *path, int channels, RtImage *out, RtError *err);
void rt_image_free(RtImage *im);

/* Writes x [c, h, w] (c = 1 or 3) as an 8-bit gray or RGB PNG, atomically
 * (see rt_atomic_open). Each value becomes round(255 v) after clamping to
 * [0, 1], as torchvision's save_image; NaN is written as 0. */
bool rt_png_write(const char *path, const float *x, int c, int h, int w, RtError *err);

/* Writes images x [n, c, h, w] as one PNG grid, as torchvision's
 * make_grid + save_image: `cols` images a row (torchvision's nrow; 8 if
 * cols <= 0), ceil(n / cols) rows, `padding` black pixels around and
 * between them: (cols (w + padding) + padding) x (rows (h + padding) +
 * padding) pixels, image k at row k / cols, column k % cols. */
bool rt_png_grid(const char *path, const float *x, int64_t n, int c, int h, int w, int cols,
                 int padding, RtError *err);

/* Writes maps [n, h, w] (saliency maps, attention) as a grid of heat maps
 * laid out as rt_png_grid: each map is scaled to [0, 1] by its own minimum
 * and maximum (a constant map is all 0; NaN counts as the minimum) and
 * coloured with rt_inferno. */
bool rt_png_heatmap_grid(const char *path, const float *maps, int64_t n, int h, int w,
                         int cols, int padding, RtError *err);

/* The colour of t in [0, 1] (clamped) on matplotlib's "inferno" map (black,
 * purple, red, orange, pale yellow), interpolated from 17 of its 256
 * entries; rgb in [0, 1]. */
void rt_inferno(float t, float rgb[3]);

/* Augmentation (augment.c). Every function works on a batch x [n, c, h, w];
 * those that change the size write to `out`, which must not overlap x.
 * The random ones draw from `r` in a fixed order, a fixed number of draws
 * per image, so the result depends only on r's state. */

/* torchvision's RandomCrop(size, padding): pads each side with `padding`
 * zeros, then takes a size x size window whose top and left offsets are
 * uniform in [0, H + 2 padding - size] and [0, W + 2 padding - size] (drawn
 * with rt_rng_below, top then left, two draws per image always). Where the
 * padded image is smaller than `size` it is padded further, centred (the
 * extra split as rt_aug_center_crop does), so the window has one place:
 * crop(32, padding 2) of a 28 x 28 image is the image centred in 32 x 32
 * zeros, the same for every seed. out is [n, c, size, size]. */
void rt_aug_random_crop(RtRng *r, const float *x, int64_t n, int c, int h, int w, int size,
                        int padding, float *out);
/* torchvision's CenterCrop(size), for evaluation: the window's top is
 * round((h - size) / 2), rounding halves to even as Python does, and
 * likewise its left; an image smaller than `size` is padded with zeros,
 * floor((size - h) / 2) above and the rest below (likewise left and right).
 * out is [n, c, size, size]. */
void rt_aug_center_crop(const float *x, int64_t n, int c, int h, int w, int size, float *out);
/* torchvision's RandomHorizontalFlip(p), in place: each image is mirrored
 * left to right (every row reversed) when its draw rt_rng_uniform(r) < p;
 * one draw per image always. */
void rt_aug_random_hflip(RtRng *r, float *x, int64_t n, int c, int h, int w, float p);
/* Rotates every image by `degrees` counter-clockwise (as shown, y down)
 * about its centre ((w - 1) / 2, (h - 1) / 2), as torchvision's rotate;
 * bilinear interpolation, zeros where the source falls outside the image,
 * the same size. On a square image, multiples of 90 degrees move pixels
 * exactly (as torch.rot90). */
void rt_aug_rotate(const float *x, int64_t n, int c, int h, int w, double degrees, float *out);
/* torchvision's RandomRotation(degrees), bilinear: each image is rotated
 * (rt_aug_rotate) by -degrees + 2 degrees u, u = rt_rng_uniform(r), one
 * draw per image. */
void rt_aug_random_rotation(RtRng *r, const float *x, int64_t n, int c, int h, int w,
                            float degrees, float *out);
/* Resizes every image to oh x ow with PIL's bilinear filter (what
 * torchvision's Resize does to PIL images, and to tensors with
 * antialias=True): each output pixel is a triangle-weighted mean of the
 * input pixels under it, the triangle widened by the scale factor when
 * shrinking, so no input pixel is skipped; when enlarging it is plain
 * bilinear interpolation (align_corners=False, edges repeated). The same
 * size copies. out is [n, c, oh, ow]. False only when out of memory. */
bool rt_aug_resize(const float *x, int64_t n, int c, int h, int w, int oh, int ow, float *out,
                   RtError *err);
/* Per-channel mean and standard deviation (population, ddof 0) over all
 * pixels of the batch; mean and std hold c floats. Sums are in double. */
void rt_aug_channel_stats(const float *x, int64_t n, int c, int h, int w, float *mean,
                          float *std);
/* torchvision's Normalize(mean, std), in place: x = (x - mean[ch]) / std[ch].
 * A channel whose std is below 1e-12 is only centred. */
void rt_aug_normalize(float *x, int64_t n, int c, int h, int w, const float *mean,
                      const float *std);

/* A folder of PNG images and their classes (images.c). */
typedef struct {
  int64_t n;
  int c, h, w;       /* c = 1 (gray) or 3; h = w = the size asked for */
  float *data;       /* [n, c, h, w], in [0, 1] */
  int *labels;       /* [n]: class index, or -1 in a folder without classes */
  int nclasses;
  char **classes;    /* [nclasses]: class k's name */
  char **files;      /* [n]: each image's path inside the folder, "cat/01.png" */
} RtImageSet;

/* Loads every .png file of a folder (in name order), each resized to
 * size x size (rt_aug_resize; the aspect ratio is not kept) and read as
 * gray (c = 1) or RGB (c = 3). Two layouts:
 *  - class subfolders (torchvision's ImageFolder): path/CLASS/NAME.png; the
 *    classes are the subfolders sorted by name (byte order, so "10" comes
 *    before "2"), a label is its subfolder's index;
 *  - one flat folder: the class is the file name's prefix before the first
 *    '_' ("3_0042.png" is class 3). If every prefix is a number (0 to
 *    9999), the label is that number and there are max + 1 classes named
 *    "0", "1", ...; otherwise the prefixes sorted by name are the classes.
 *    If no file name has a '_', the images have no labels (-1, a test set).
 * Names starting with '.' are skipped, and so are files that are not .png.
 * A folder with no PNG file, an empty class folder, or a file that is not
 * a readable PNG is an error that names it. */
bool rt_load_image_folder(const char *path, int size, bool gray, RtImageSet *out, RtError *err);
void rt_image_set_free(RtImageSet *s);
/* Moves the images into a table for training: field "x" [c, h, w] and, if
 * the set has labels, field "y" [1] holding the class index. s->data
 * belongs to the table afterwards (s->data is NULL). */
bool rt_image_set_to_table(RtImageSet *s, RtTable *t, RtError *err);

/* Training curves (plot.c). One line of the chart: values[k] is the value
 * after epoch k + 1; a NaN or infinite value leaves a gap. */
typedef struct {
  const char *name;      /* the legend's text: "train_loss" */
  const double *values;  /* [nepochs] */
  int panel;             /* 0: the left panel (losses), 1: the right (metrics) */
} RtCurve;

enum { RT_PLOT_WIDTH = 640, RT_PLOT_HEIGHT = 400 };

/* Draws the curves over epochs 1..nepochs as a RT_PLOT_WIDTH x
 * RT_PLOT_HEIGHT PNG, written atomically: one panel, or two side by side
 * when a curve has panel 1, each with its own y axis (logarithmic when its
 * values are all positive and span a factor of 100 or more), tick labels,
 * grid lines and a legend in the corner the lines leave freest. At most 10
 * curves (the colours of matplotlib's tab10). */
bool rt_plot_curves(const char *path, int64_t nepochs, const RtCurve *curves, int ncurves,
                    RtError *err);
/* The chart of a training log (the .log.jsonl rt_train writes): every
 * number it holds per epoch but the epoch and its time, losses in the left
 * panel, metrics in the right; a later line for an epoch replaces an
 * earlier one (a resumed run). */
bool rt_plot_log(const char *log_path, const char *png_path, RtError *err);

#endif
