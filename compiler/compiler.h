/*
 * compiler.h — the compiler's interface: semantic checking (names, types,
 * symbolic shapes, parameter counts, FLOPs) and the model summary that
 * `nnc check` prints.
 *
 *     Program *p = sema_check(arena, &diag, ast, &(SemaOptions){.check_files = 1});
 *     if (!p) return 1;                 // errors were reported through diag
 *     summary_print(stdout, p);
 *
 * Later stages (graph IR, autodiff, fusion, memory plan, codegen) will hang
 * off the checked Program.
 */
#ifndef NNC_COMPILER_H
#define NNC_COMPILER_H

#include "lang/lang.h"
#include "runtime/runtime.h"

#include <stdbool.h>

typedef struct Program Program;

typedef struct {
  /* Open the data files a spec names (existence, CSV header width).
   * Off for the fuzzer, which must not touch the file system. */
  int check_files;
  /* Lower a train block to the graph IR (nnc ir/train): its name, or "" for
   * the first train block; NULL to only check. */
  const char *lower_block;
  int lower_training;  /* lower the training step (else the eval step) */
  int lower_update;    /* and append autodiff and the optimizer's update */
  int lower_predict;   /* lower_block names a predict block instead */
  int lower_after;     /* lower a train block's `after epoch/train` writes
                          as a step of their own (else they are only checked) */
  int lower_step;      /* a train block of several `step`s: the training step
                          of step number lower_step (1, 2, ...; 0: the first) */
  /* `--set NAME=VALUE`: replaces a constant, or a binding of a train or
   * predict block (batch, epochs, lr, ...), wherever it is set */
  int nset;
  const char *set_names[16], *set_values[16];
} SemaOptions;

/* Checks a parsed program. Returns NULL after reporting errors through `d`. */
Program *sema_check(Arena *a, Diag *d, const Node *ast, const SemaOptions *opt);

/* The `nnc check` report: per model instance a layer table (name, type,
 * output shape, parameters, FLOPs per sample), totals, and what each
 * train/predict block will do. */
void summary_print(FILE *out, const Program *p);

/* ---- compiling a train block for the runtime (compile.c) ------------- */

/* Where a block's data comes from, for the runtime's loaders. */
typedef struct DataDesc {
  const char *source;      /* "csv", "fashion_mnist", "mnist_test", "idx", "generate", ... */
  const char *path;        /* resolved against the spec's folder */
  bool header;
  const char *part;        /* "train"/"valid" of a `valid:` split, or NULL */
  double valid_frac;
  int nfields;
  /* csv columns: entries with the same name are one field, concatenated */
  struct { const char *name; int64_t first, last; bool label; } fields[16];
  int ntransforms;
  /* k: context's k, crop's and resize's size; normalize: given = 1 with
   * mean a and std b as numbers, tensor = 1 when they were tensors (not
   * supported for training yet); crop: b = padding; flip: a = p; rotate:
   * a = degrees */
  struct { const char *name; int64_t k; bool given, tensor; double a, b; } transforms[8];
  int64_t take;            /* > 0: only the first `take` samples */
  int nconsts;             /* fields with one number for every sample */
  struct { const char *name; double value; } consts[8];
  int image_c, image_size; /* source "image_folder": channels (1 gray, 3 RGB) and size */
  int nparts;              /* source "concat": the data sets, one after another */
  struct DataDesc *parts;
  const char **part_names; /* source "zip": each part's name, its fields' prefix ("plain") */
} DataDesc;

/* An image file a step's output becomes: write png_grid(path, x, rows)
 * (one grid) or png(path, x) (a file per image). */
typedef struct {
  const char *path;
  int64_t offset;          /* where the step leaves the images [n, c, h, w] */
  int c, h, w;
  int rows;                /* images per grid row; 0: one file per image */
  int64_t count;           /* images, when the first dim is not the batch (after writes); 0: per sample */
  bool each_epoch;         /* a train block's `after epoch` write (else `after train`) */
} PngOut;

/* Pruning a weight after every epoch: the smallest `amount` of its
 * remaining entries by magnitude are zeroed, and its mask (state the
 * update multiplies by) keeps them so. */
typedef struct {
  const char *name;        /* the weight's name */
  int64_t weight, mask;    /* offsets in the arena */
  int64_t numel;
  double amount;
} PruneDesc;

/* A train block's settings, with their defaults filled in. */
typedef struct {
  uint64_t seed;
  int64_t batch, epochs, early_stop;
  double valid;            /* fraction held out (0: none) */
  const char *monitor;     /* a metric name, or "loss" */
  const char *save_best, *save_last;   /* resolved paths, or NULL */
  RtSchedule schedule;
  DataDesc data;
  DataDesc test;           /* `test = ds`: evaluated after training (source NULL: none) */
  int nloads;              /* load(model, file) in the block, as in PredictDesc */
  const char *load_paths[8], *load_prefixes[8], *load_vars[8];
  DataDesc valid_data;     /* `valid = ds.valid.map(...)`: the held-out part's own transforms
                            * (source NULL: none; the part is data's `valid` fraction) */
  int64_t iterations;      /* > 0: a block without data, trained for this many steps */
  int npngs;               /* `after epoch/train { write png_grid(...) }`, made by RtProgram.after */
  PngOut pngs[8];
  int nprunes;             /* `after epoch { prune(model, amount) }`: each weight pruned */
  PruneDesc *prunes;
} TrainDesc;

/* A predict block: what to load, what to run it on, what to write. */
typedef struct {
  DataDesc data;
  int64_t batch;
  int nloads;              /* load(model, file): the checkpoints (resolved), and the */
  const char *load_paths[8];   /* prefix of the parameter names each one fills ("" */
  const char *load_prefixes[8];/* with one model; "proxy." with several), and the */
  const char *load_vars[8];    /* model's variable name ("proxy") */
  const char *write_path;  /* the CSV file (resolved), or NULL */
  int npngs;               /* write png_grid(...) / png(...) */
  PngOut pngs[8];
  int ncols;
  const char *col_names[16];
  bool col_int[16];        /* whole numbers (ids, classes) */
  int64_t col_offset[16];  /* where the step leaves each column */
  int64_t col_width[16];   /* values per sample (1) */
} PredictDesc;

typedef struct Compiled Compiled;

/* Checks and compiles train block `block` ("" for the first) into a
 * training and an evaluation step for batches of up to n_max; fills the
 * runtime's view of them and the block's settings. NULL after reporting. */
Compiled *compile_train(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                        const SemaOptions *base, RtProgram *rp, TrainDesc *td);
void compiled_free(Compiled *c);
/* The training step alone (rp->eval stays empty): what `nnc bench` times. */
Compiled *compile_train_step(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                             const SemaOptions *base, RtProgram *rp, TrainDesc *td);

/* A train block's settings and data, without compiling it. */
bool describe_train(Arena *a, Diag *d, const Node *ast, const char *block, const SemaOptions *base, TrainDesc *td);

/* For --check-numerics: compile_train_checked builds the training step
 * without fusion, every intermediate kept in the arena; after a step (of
 * several: step number `step`, from 0),
 * compiled_check_numerics looks for the first node (in execution order)
 * holding a NaN or an infinity and reports it at its spec line: the op, the
 * shapes, the range of its inputs. True if every value is finite. */
Compiled *compile_train_checked(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                                const SemaOptions *base, RtProgram *rp, TrainDesc *td);
bool compiled_check_numerics(const Compiled *c, int step, Diag *d, const float *arena, int64_t n);

/* The same for a predict block ("" for the first): one step whose outputs
 * are the columns of its `write csv(...)`; rp->train holds it. */
Compiled *compile_predict(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                          const SemaOptions *base, RtProgram *rp, PredictDesc *pd);

/* `nnc ir --stage=fused|memory|llvm|asm` for a train block's training step. */
bool compile_print_stage(FILE *out, Arena *a, Diag *d, const Node *ast, const char *block, const char *stage,
                         const SemaOptions *base);

/* `nnc bench --kernels`: steps compiled after compile_profile_kernels(true)
 * time each kernel; compiled_print_profile prints the `top` slowest of
 * training step `step`'s kernels (0 for a block of one step; ms per step
 * over `steps` steps), with what each does and its spec line. False if the
 * step was not compiled so. */
void compile_profile_kernels(bool on);
void compiled_profile_reset(void);   /* the kernels' times back to 0 */
bool compiled_print_profile(FILE *out, const Compiled *c, int step, int64_t steps, int top);

/* Which BLAS compiled steps call, once a step was compiled:
 * "OpenBLAS, SkylakeX kernels, 2 threads". */
const char *cg_blas_info(void);

/* ---- gradient checks (gradcheck.c) ---------------------------------- */

typedef struct {
  const char *name;        /* the parameter */
  const char *step;        /* ... in this step of several (NULL: the block is one step) */
  int rank;
  int64_t shape[8];
  int64_t checked;         /* elements compared */
  int64_t kinks;           /* ... of them at a kink (one-sided differences disagree by > 1%) */
  double max_rel_err;      /* distance of the compiled gradient from the one-sided
                              differences' interval / max(|compiled|, |central|, 1e-2) */
  double max_abs_err;
} GradReport;

/* Compiles the gradients of train block `block`'s loss with respect to every
 * parameter (of several steps: each step's loss, with respect to what its
 * optimizer updates; float32, JIT) and compares up to `per_tensor` elements of each
 * with central finite differences of the loss in float64 (the reference
 * evaluator), on one batch of n samples: inputs[i] holds the values of the
 * batch field names[i] ([n, width]). Fills up to `max` reports; returns their
 * count, or -1 after reporting an error. */
int gradcheck_block(Arena *a, Diag *d, const Node *ast, const char *block, const SemaOptions *base,
                    const char *const *names,
                    const float *const *inputs, int ninputs, int64_t n, int per_tensor, GradReport *out, int max);

/* The lowered graph in Graphviz's dot language (`nnc dot`). */
bool program_print_dot(FILE *out, const Program *p);

/* The "opt" stage on the lowered graph: folding, CSE, dead code. */
void program_simplify(Program *p);

/* The lowered train block's graph (`nnc ir --stage=graph|grad`), under a
 * line `step NAME:` for a step of several; false if nothing was lowered. */
bool program_print_graph(FILE *out, const Program *p);
/* The lowered block's steps (0: the block is one step); SemaOptions.lower_step
 * lowers each of them. */
int program_nsteps(const Program *p);

#endif
