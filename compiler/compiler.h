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
} SemaOptions;

/* Checks a parsed program. Returns NULL after reporting errors through `d`. */
Program *sema_check(Arena *a, Diag *d, const Node *ast, const SemaOptions *opt);

/* The `nnc check` report: per model instance a layer table (name, type,
 * output shape, parameters, FLOPs per sample), totals, and what each
 * train/predict block will do. */
void summary_print(FILE *out, const Program *p);

/* The "opt" stage on the lowered graph: folding, CSE, dead code. */
void program_simplify(Program *p);

/* The lowered train block's graph (`nnc ir --stage=graph|grad`); false if
 * nothing was lowered. */
bool program_print_graph(FILE *out, const Program *p);

#endif
