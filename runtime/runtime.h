/*
 * runtime.h — what a compiled nnc program needs around its step function:
 * data tables and their loaders (CSV, IDX), a seeded random generator,
 * train/valid splits and batches, checkpoints (safetensors), output files,
 * and progress and metrics printing.
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

/* Loads IDX images (magic 2051, unsigned bytes, gzip or plain) as field "x"
 * [rows*cols] scaled to [0, 1], and, if `labels_path` is not NULL, IDX labels
 * (magic 2049) as field "y" [1] holding the class id. */
bool rt_load_idx(const char *images_path, const char *labels_path, RtTable *out,
                 RtError *err);

void rt_table_free(RtTable *t);
/* The field called `name`, or NULL. */
RtField *rt_table_field(const RtTable *t, const char *name);

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
typedef enum { RT_SLOT_PARAM, RT_SLOT_STATE, RT_SLOT_INPUT, RT_SLOT_RAND } RtSlotKind;
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
} RtSlot;

/* One compiled step: `fn(arena, n)` runs it on a batch of n. */
typedef void (*RtStepFn)(float *arena, int64_t n);

enum { RT_MAX_METRICS = 8, RT_MAX_META = 16 };

typedef struct {
  RtStepFn fn;
  int nslots;
  RtSlot *slots;         /* inputs and noise it reads */
  int64_t loss_offset;
  int nmetrics;
  const char *metric_names[RT_MAX_METRICS];
  int64_t metric_offsets[RT_MAX_METRICS];
} RtStep;

typedef struct {
  int64_t arena_floats;  /* for the largest batch */
  int64_t n_max;
  int npersistent;
  RtSlot *persistent;    /* parameters and state, shared by both steps */
  RtStep train, eval;
} RtProgram;

typedef enum { RT_SCHED_CONSTANT, RT_SCHED_STEP, RT_SCHED_LINEAR, RT_SCHED_COSINE, RT_SCHED_NOAM } RtSchedKind;

typedef struct {
  RtSchedKind kind;
  double lr, to, gamma;  /* to: final lr (linear, cosine); gamma: step decay, or noam's scale */
  int64_t warmup, every; /* every: step_lr's period in epochs, or noam's model dim */
} RtSchedule;

typedef struct {
  uint64_t seed;
  int64_t batch, epochs, early_stop;
  double valid_fraction;
  const char *monitor;       /* a metric name, or NULL/"loss" for the valid loss */
  const char *save_best, *save_last, *log_path;
  RtSchedule schedule;
  FILE *out;                 /* progress and epoch lines */
  bool tty;
  int64_t print_every;       /* off a terminal, one line every N epochs (and on improvement) */
  const RtMeta *meta;        /* written into every checkpoint */
  int nmeta;
  const RtTensorRef *extra;  /* extra tensors for checkpoints (normalisation statistics) */
  int nextra;
  /* The state of the run after every epoch (parameters, optimizer state,
   * the RNG, the epoch, early stopping's count), written atomically, so a
   * killed run can continue; and the file to continue from (NULL: start). */
  const char *state_path;
  const char *resume_path;
  const char *init_path;     /* start from these weights instead of random ones */
  /* Called after every training step (NULL: none); returning false stops
   * training (the hook has said why). For --check-numerics. */
  bool (*after_step)(void *ctx, const float *arena, int64_t n, int64_t epoch, int64_t batch);
  void *after_step_ctx;
  /* Set by a signal handler (Ctrl-C): training stops after the current
   * step; the state of the last finished epoch is on disk. */
  volatile sig_atomic_t *interrupted;
} RtTrainConfig;

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
bool rt_evaluate(const RtProgram *p, float *arena, const RtTable *t, const int64_t *idx, int64_t count,
                 int64_t batch, RtRng *rng, double *loss, double *metrics, RtError *err);
bool rt_save_program(const RtProgram *p, const float *arena, const char *path, const RtMeta *meta, int nmeta,
                     const RtTensorRef *extra, int nextra, RtError *err);
/* Runs the program's first step (a predict step) over every row of `t` in
 * order; column c's value for row i (offsets[c] in the arena) goes to
 * cols[c][i]. */
bool rt_predict(const RtProgram *p, float *arena, const RtTable *t, int64_t batch, int ncols, const int64_t *offsets,
                float **cols, RtError *err);
/* Loads a checkpoint into the arena: every parameter and buffer must be
 * there with the right size; optimizer state is loaded when present. */
bool rt_load_program(const RtProgram *p, float *arena, const char *path, bool params_only, RtError *err);

#endif
