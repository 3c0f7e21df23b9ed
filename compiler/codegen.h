/*
 * codegen.h — from the graph IR to native code (private to compiler/):
 * fusion into kernels (fuse.c), LLVM IR for one step (codegen.c), the ORC
 * JIT that compiles it (jit.c), and a slow reference evaluator (interp.c).
 *
 *     Fusion *f = fuse_graph(arena, g);           // kernels, what is stored
 *     ... memory plan: node->offset for every materialized node ...
 *     Jit *jit = jit_new(err, sizeof err);
 *     StepFn step = jit_compile(jit, g, f, "train_step", NULL, err, sizeof err);
 *     step(arena_floats, batch);                  // one training step
 *     jit_free(jit);                              // frees the code, too
 *
 * The contract with the memory planner (which runs after fusion):
 *   - a node with `materialized[id]` set owns numel(shape) floats at
 *     arena + node->offset, numel taken with B = the largest batch;
 *   - liveness is counted in `runs_at` time, not in node ids: a buffer is
 *     written at runs_at[producer] and read until the largest runs_at of
 *     its readers; place the nodes in (runs_at, id) order and free a block
 *     only after every node with that runs_at has been placed;
 *   - a RESHAPE is a view: its offset is its source's (recursively);
 *   - an ASSIGN writes its leaf's buffer (src[0]->offset) and needs none;
 *   - CONST nodes and inlined nodes (in a kernel, not materialized) live in
 *     registers and need no offset;
 *   - two buffers that one kernel touches either have the same offset (an
 *     in-place update, read and written at the same element) or do not
 *     overlap. Codegen tells LLVM they do not alias (noalias parameters).
 *
 * LLVM headers appear only in codegen.c and jit.c; this header keeps them out.
 */
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H

#include "compiler/ir.h"

/* ---- fusion (fuse.c) -------------------------------------------------- */

typedef enum {
  FK_LOOP,    /* a fused chain of elementwise ops (and ASSIGNs): one loop nest */
  FK_REDUCE,  /* one SUM or MAXR */
  FK_ROW,     /* one LOG_SOFTMAX, SOFTMAX, ARGMAX or ONE_HOT */
  FK_MATMUL,  /* one MATMUL: a cblas_sgemm call */
  FK_CALL,    /* one convolution or pooling: a call to a runtime kernel */
} FuseKind;

typedef struct {
  FuseKind kind;
  Vec nodes;        /* IrNode*, in graph order: the loop body's order */
} Kernel;

/* The side table fusion produces (the Graph itself stays untouched). */
typedef struct Fusion {
  int nnodes;
  int *kernel;          /* [node id]: kernel index, -1 for leaves, CONST, RESHAPE */
  bool *materialized;   /* [node id]: has a buffer of its own (see above) */
  int *runs_at;         /* [node id]: when it is computed, as a node id: the
                         * last node of its kernel (a kernel runs as a whole
                         * at that point); its own id for leaves and views */
  int nkernels;
  Kernel *kernels;      /* in execution order */
  bool profile;         /* codegen times every kernel (nnc_prof_begin/end) */
  int prof_base;        /* where kernel 0 times itself in the profiler's table
                         * (a block's steps one after another) */
} Fusion;

/* Groups the graph's nodes into kernels. Elementwise nodes (EXPAND and
 * ASSIGN included) join the kernel of an input with the same shape up to
 * size-1 dims, as long as nothing outside that kernel has read it yet. */
Fusion *fuse_graph(Arena *a, const Graph *g);

/* `nnc ir --stage=fused`: one block per kernel, its nodes, what it reads
 * and what it writes. Stable text. */
void fusion_print(FILE *out, const Graph *g, const Fusion *f);
/* A kernel in a few words, as `--stage=fused` heads it and the profile
 * lists it: "call nnc_conv2d over [B, 64, 14, 14] (im2col + sgemm)". */
void fusion_kernel_title(char *buf, size_t len, const Kernel *kn);

/* ---- code generation and the JIT (codegen.c, jit.c) ------------------ */

/* A compiled step: every buffer lives in `arena` (floats), `n` is the batch
 * size that the symbol B stands for. */
typedef void (*StepFn)(float *arena, int64_t n);

typedef struct Jit Jit;

/* What `nnc ir --stage=llvm|asm` shows; malloc'd strings (free with
 * cg_text_free). */
typedef struct {
  char *ir_before;   /* LLVM IR as generated: one function per kernel */
  char *ir_after;    /* optimized: identical kernels merged, loops vectorized */
  char *assembly;    /* the host CPU's assembly */
} CgText;

void cg_text_free(CgText *t);

/* An LLJIT for the host CPU (with all its features). NULL with a message
 * in err if LLVM cannot target this machine. */
Jit *jit_new(char *err, size_t errlen);

/* Generates, verifies, optimizes and compiles one step function named
 * `name` (unique per Jit). Returns NULL with a message in err on failure. */
StepFn jit_compile(Jit *jit, const Graph *g, const Fusion *f, const char *name,
                   CgText *text, char *err, size_t errlen);

/* One step for jit_compile_all: what to compile, and the function. */
typedef struct {
  const Graph *g;
  const Fusion *f;
  const char *name;   /* unique per Jit */
  StepFn fn;          /* out */
} JitStep;

/* Compiles several steps at once (a block's train and eval steps), their
 * kernels spread over the machine's cores. False with a message in err
 * if any fails. */
bool jit_compile_all(Jit *jit, JitStep *steps, int count, char *err, size_t errlen);

/* Frees the JIT and all code it compiled. */
void jit_free(Jit *jit);

/* codegen.c's half, used by jit.c: builds the LLVM module for a step in
 * the given LLVMContextRef / LLVMTargetMachineRef (passed as void* so that
 * this header stays free of LLVM). Returns an LLVMModuleRef, or NULL with
 * err set. */
void *cg_build_module(void *llvm_context, void *target_machine, const Graph *g,
                      const Fusion *f, const char *name, char *err, size_t errlen);

/* The JIT's entry points, from libnnccg.so (loaded on first use: see
 * compile.c). */
typedef struct {
  Jit *(*jit_new)(char *err, size_t errlen);
  StepFn (*jit_compile)(Jit *jit, const Graph *g, const Fusion *f, const char *name, CgText *text, char *err,
                        size_t errlen);
  bool (*jit_compile_all)(Jit *jit, JitStep *steps, int count, char *err, size_t errlen);
  void (*jit_free)(Jit *jit);
  void (*text_free)(CgText *t);
} CgApi;

bool cg_load(CgApi *api, char *err, size_t errlen);

/* ---- the reference evaluator (interp.c) ------------------------------ */

/* Evaluates the graph in double precision, node by node with full index
 * arithmetic: slow and obviously correct, for gradient checks and tests.
 * values[id] must hold the leaves' data (INPUT, PARAM, STATE, RAND);
 * every other node gets a malloc'd array the caller frees (a CONST gets
 * one element). An ASSIGN's value is its new value; after the whole graph
 * ran, it is copied into its leaf's array (the leaves keep their old
 * values while the graph runs, as in the compiled step). */
void interp_run(const Graph *g, double *values[], int64_t n);

/* Elements of a shape with B = n (helper shared by codegen and interp). */
int64_t cg_numel(const Shape *s, int64_t n);

#endif
