/*
 * jit.c — compiles a step's LLVM module (codegen.c) to native code with
 * ORC's LLJIT, for the CPU nnc runs on.
 *
 * One Jit holds the LLJIT and target machines for the host CPU with all of
 * its features (AVX-512 where present): one per compiling thread, used for
 * the optimizer (which only vectorizes when it knows the target), for
 * emitting object code and for printing assembly, and one that does not
 * optimize, for the straight-line code. The LLJIT gets a target
 * machine of its own, because it takes ownership of the one it is given.
 * A generator for the process's own symbols lets compiled code call
 * cblas_sgemm, powf and the runtime (the executable links them with
 * --no-as-needed and -rdynamic).
 *
 * Compiling is most of the time from spec to first step (HW3: hundreds of
 * kernels), so it is spread over the cores. The steps a command compiles
 * together (jit_compile_all: a block's training and evaluation steps, a
 * GAN's two) are built into one module and their identical kernels merged
 * (mergefunc), so a kernel they share is compiled once. The module is then
 * cut into parts: the kernels are dealt out by cost to one part per core,
 * and the straight-line functions (the steps, their chunks, the
 * trampolines: calls in a row) make one more part, which is not optimized
 * and goes through the code generator's fast path (FastISel, the fast
 * register allocator), as it runs once a step. A part calls what another
 * compiles by name. Every part lives in an LLVMContext of its own (a
 * context is not thread-safe), is optimized (the kernels' parts, with the
 * passes of KERNEL_PASSES) and emitted as an object file on some thread,
 * and the objects are added to the LLJIT, which links them.
 *
 * Loop strength reduction is turned off for the whole process: it was a
 * quarter of code generation, and on these loops (base + index addressing,
 * which x86 has) it changes nothing measurable.
 *
 * Every LLVMErrorRef goes through set_error; every module is verified
 * before and after optimization.
 */
#include "compiler/codegen.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_THREADS = 4 };

struct Jit {
  LLVMOrcLLJITRef lljit;
  int nthreads;                     /* compiling threads (cores, at most MAX_THREADS) */
  LLVMTargetMachineRef tm[MAX_THREADS];   /* ours, one per thread: passes, objects, assembly */
  LLVMTargetMachineRef fast;        /* no optimization: the straight part's objects (one thread at a time) */
};

/* Consumes e, writing "what: message" into err. */
static void set_error(char *err, size_t n, const char *what, LLVMErrorRef e) {
  char *msg = LLVMGetErrorMessage(e);
  snprintf(err, n, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
}

static LLVMTargetMachineRef host_machine(LLVMCodeGenOptLevel level, char *err, size_t n) {
  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  char *msg = NULL;
  LLVMTargetRef target;
  LLVMTargetMachineRef tm = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    snprintf(err, n, "LLVM cannot compile for this machine (%s): %s", triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
  } else {
    tm = LLVMCreateTargetMachine(target, triple, cpu, features, level,
                                 LLVMRelocDefault, LLVMCodeModelJITDefault);
    if (!tm) snprintf(err, n, "LLVM cannot create a target machine for %s (%s)", triple, cpu);
  }
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return tm;
}

/* LLVM's own options, for the whole process: no loop strength reduction
 * (see the top of this file). Whether a vectorized loop's last, partial
 * vector is masked is said per loop (codegen.c, loop_md). */
static void llvm_options(void) {
  static bool done;   /* options may be parsed once per process */
  if (done) return;
  done = true;
  const char *argv[] = {"nnc", "-disable-lsr"};
  LLVMParseCommandLineOptions(2, argv, NULL);
}

Jit *jit_new(char *err, size_t n) {
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
    snprintf(err, n, "LLVM has no code generator for this machine");
    return NULL;
  }
  llvm_options();
  Jit *j = calloc(1, sizeof *j);
  if (!j) {
    snprintf(err, n, "out of memory");
    return NULL;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  j->nthreads = cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : (int)cores;
  for (int t = 0; t < j->nthreads; t++)
    if (!(j->tm[t] = host_machine(LLVMCodeGenLevelDefault, err, n))) {
      jit_free(j);
      return NULL;
    }
  if (!(j->fast = host_machine(LLVMCodeGenLevelNone, err, n))) {
    jit_free(j);
    return NULL;
  }
  LLVMTargetMachineRef jit_tm = host_machine(LLVMCodeGenLevelDefault, err, n);
  if (!jit_tm) {
    jit_free(j);
    return NULL;
  }
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  /* both calls take ownership: of jit_tm, then of the JTMB */
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->lljit, builder);   /* consumes builder */
  if (e) {
    set_error(err, n, "cannot start the LLVM JIT", e);
    j->lljit = NULL;
    jit_free(j);
    return NULL;
  }
  LLVMOrcDefinitionGeneratorRef gen;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->lljit), NULL, NULL);
  if (e) {
    set_error(err, n, "cannot let JIT code see the process's symbols", e);
    jit_free(j);
    return NULL;
  }
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->lljit), gen);   /* takes gen */
  return j;
}

void jit_free(Jit *j) {
  if (!j) return;
  if (j->lljit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
    if (e) LLVMConsumeError(e);   /* nothing left to report it to */
  }
  for (int t = 0; t < j->nthreads; t++)
    if (j->tm[t]) LLVMDisposeTargetMachine(j->tm[t]);
  if (j->fast) LLVMDisposeTargetMachine(j->fast);
  free(j);
}

void cg_text_free(CgText *t) {
  if (!t) return;
  free(t->ir_before);
  free(t->ir_after);
  free(t->assembly);
  t->ir_before = t->ir_after = t->assembly = NULL;
}

/* A malloc'd copy of an LLVM message (which has its own disposer). */
static char *take_message(char *m) {
  char *s = strdup(m ? m : "");
  LLVMDisposeMessage(m);
  return s;
}

static char *assembly_of(LLVMTargetMachineRef tm, LLVMModuleRef m) {
  /* emitting rewrites the module: emit a clone */
  LLVMModuleRef clone = LLVMCloneModule(m);
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL, *s;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, clone, LLVMAssemblyFile, &msg, &buf)) {
    s = take_message(msg);
  } else {
    size_t len = LLVMGetBufferSize(buf);
    s = malloc(len + 1);
    if (s) {
      memcpy(s, LLVMGetBufferStart(buf), len);
      s[len] = 0;
    }
    LLVMDisposeMemoryBuffer(buf);
  }
  LLVMDisposeModule(clone);
  return s;
}

/* ---- parts ---------------------------------------------------------- */

/* One module to optimize and emit, in a context of its own. */
typedef struct {
  LLVMContextRef ctx;
  LLVMModuleRef m;            /* a kernel part's: NULL until read_part */
  LLVMMemoryBufferRef bc;     /* a kernel part: the whole module's bitcode (shared, read-only) */
  const int *owner;           /* ... the part that owns each function it defines */
  int index;                  /* ... and this part's number there */
  bool straight;              /* the straight-line functions: emitted without optimization */
  CgText *text;               /* the unsplit module of jit_compile, or NULL */
  LLVMMemoryBufferRef obj;    /* out: the object file */
  char err[512];              /* out: why it failed, if obj is NULL */
} Part;

static long instruction_count(LLVMValueRef fn) {
  long k = 0;
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) k++;
  return k;
}

/* Straight-line code: one block without loops (the steps, their chunks,
 * the trampolines of ranged kernels: calls of kernels and of the
 * runtime). It runs once a step, a few nanoseconds a call whether
 * optimized or not, but O3 and the O2 code generator cost as much per
 * instruction of it as of a loop (HW6: a third of the compile time), so it
 * is compiled without optimization (see compile_part). */
static bool is_straight(LLVMValueRef fn) {
  return !LLVMIsDeclaration(fn) && LLVMCountBasicBlocks(fn) == 1;
}

/* The unsplit module of jit_compile (printed): its straight-line
 * functions are left unoptimized there too (optnone: the passes skip them
 * and the code generator takes its fast path), as in the parts. */
static void leave_straight_unoptimized(LLVMContextRef ctx, LLVMModuleRef m) {
  for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn))
    if (is_straight(fn))
      for (const char *a = "noinline\0optnone\0"; *a; a += strlen(a) + 1)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(ctx, LLVMGetEnumAttributeKindForName(a, strlen(a)), 0));
}

/* Replaces fn's body by a declaration of the same name (its callers now
 * call a function defined in another part). */
static void make_declaration(LLVMModuleRef m, LLVMValueRef fn) {
  size_t len;
  const char *nm = LLVMGetValueName2(fn, &len);
  char *name = strndup(nm, len);
  LLVMValueRef decl = LLVMAddFunction(m, "", LLVMGlobalGetValueType(fn));
  LLVMReplaceAllUsesWith(fn, decl);
  LLVMDeleteFunction(fn);
  LLVMSetValueName2(decl, name, len);
  free(name);
}

/* Keeps the bodies of the functions part p owns (owner[], in the order
 * of the module's definitions) and declares the others. */
static void keep_own(LLVMModuleRef m, const int *owner, int p) {
  LLVMValueRef fn = LLVMGetFirstFunction(m);
  for (int k = 0; fn;) {
    LLVMValueRef next = LLVMGetNextFunction(fn);
    if (!LLVMIsDeclaration(fn) && owner[k++] != p) make_declaration(m, fn);
    fn = next;
  }
}

/* A kernel part's module: a copy of the whole module (in a context of
 * its own), read on the thread that compiles it, that keeps only the part's
 * own functions' bodies. */
static void read_part(Part *p) {
  p->ctx = LLVMContextCreate();
  if (LLVMParseBitcodeInContext2(p->ctx, p->bc, &p->m))
    nnc_die(__FILE__, __LINE__, "LLVM cannot read back its own bitcode");
  keep_own(p->m, p->owner, p->index);
}

/* Cuts the steps' module (parts[0].m, merged by mergefunc) into parts
 * that compile on up to `threads` threads: the kernels dealt out by cost
 * (their instructions), largest first, to the cheapest of up to `threads`
 * kernel parts, then one part of the straight-line functions, last (it is
 * the module itself; the kernel parts are copies through bitcode, *bc,
 * each read by the thread that compiles it: read_part; *owner says which
 * part owns each function). A part keeps only its own functions' bodies, and
 * every function is external, so that a part can call (or take the
 * address of) a function another part compiles. The straight part is
 * compiled by whichever thread is done first, so its cost (an
 * unoptimized instruction: about a tenth of a kernel's, measured on
 * HW6) is counted against the last kernel part. Returns the number of
 * parts. */
static int split_module(Part *parts, int threads, LLVMMemoryBufferRef *bc, int **owner_out) {
  LLVMModuleRef m = parts[0].m;
  int nf = 0, nk = 0;
  long straight = 0;
  for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn))
    if (!LLVMIsDeclaration(fn)) {
      nf++;
      if (is_straight(fn)) straight += instruction_count(fn);
      else nk++;
    }
  int want = nk / 8 < threads ? nk / 8 : threads;   /* a few kernels are not worth a thread */
  if (want < 1) want = nk > 0;
  long load[MAX_THREADS] = {0};
  if (want > 0) load[want - 1] = straight / 10;
  int *owner = calloc((size_t)nf + 1, sizeof *owner);
  long *size = calloc((size_t)nf + 1, sizeof *size);
  int *order = calloc((size_t)nf + 1, sizeof *order);
  int i = 0, n = 0;
  for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
    if (LLVMIsDeclaration(fn)) continue;
    LLVMSetLinkage(fn, LLVMExternalLinkage);
    owner[i] = want;   /* the straight part, unless a kernel */
    if (!is_straight(fn)) order[n++] = i, size[i] = instruction_count(fn);
    i++;
  }
  for (int a = 1; a < n; a++)   /* insertion sort, largest first */
    for (int b = a; b > 0 && size[order[b]] > size[order[b - 1]]; b--) {
      int t = order[b];
      order[b] = order[b - 1];
      order[b - 1] = t;
    }
  for (int a = 0; a < n; a++) {
    int best = 0;
    for (int p = 1; p < want; p++)
      if (load[p] < load[best]) best = p;
    owner[order[a]] = best;
    load[best] += size[order[a]];
  }
  Part whole = parts[0];
  *bc = want > 0 ? LLVMWriteBitcodeToMemoryBuffer(m) : NULL;
  for (int p = 0; p < want; p++) parts[p] = (Part){.bc = *bc, .owner = owner, .index = p};
  keep_own(m, owner, want);
  parts[want] = whole;
  parts[want].straight = true;
  *owner_out = owner;
  free(size);
  free(order);
  return want + 1;
}

/* The optimization of the kernels: what O3 does that these loop nests
 * need, at a third of its cost (HW6's 81 kernels: 60-80 ms instead of
 * 150-230 on one core). Promote the softmax's accumulators to registers,
 * simplify, hoist what is invariant (the sizes read from dims) out of the
 * loops, vectorize (reductions too: their adds are reassoc), and clean up
 * and hoist again after the vectorizer. O3's inliner and interprocedural
 * passes have nothing to do here (each kernel is a function of its own,
 * `noinline`, called from another part), nor have its unrolling (off,
 * see run_passes), SLP vectorizer, GVN or loop unswitching: on HW6,
 * fmnist_cnn and the autoencoder the kernels run as fast. */
static const char KERNEL_PASSES[] =
    "function(sroa,early-cse<memssa>,instcombine,simplifycfg,loop(loop-rotate),loop-mssa(licm),indvars,"
    "loop-vectorize,early-cse,instcombine,loop-mssa(licm),simplifycfg)";

static bool run_passes(LLVMModuleRef m, const char *passes, LLVMTargetMachineRef tm, char *err, size_t n) {
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
  /* No unrolling or interleaving: the loops are memory-bound streams
   * (vectorized, they run at the memory's speed either way), and a
   * homework's hundreds of kernels unrolled made code generation take
   * seconds (HW3: 1.6 s -> 0.8 s with the level below). */
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
  LLVMPassBuilderOptionsSetLoopInterleaving(opts, 0);
  LLVMErrorRef e = LLVMRunPasses(m, passes, tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (e) set_error(err, n, "LLVM's optimizer failed", e);
  return !e;
}

/* Optimization (KERNEL_PASSES), verification and an object file, on any
 * thread (with its own tm);
 * the straight part: an object file from the code generator's fast path
 * (FastISel, the fast register allocator), which is what it needs. */
static void compile_part(Part *p, LLVMTargetMachineRef tm) {
  char *msg = NULL;
  if (!p->straight) {
    if (!run_passes(p->m, KERNEL_PASSES, tm, p->err, sizeof p->err)) return;
    if (LLVMVerifyModule(p->m, LLVMReturnStatusAction, &msg)) {
      snprintf(p->err, sizeof p->err, "optimized module is invalid (a bug in nnc or LLVM): %s", msg ? msg : "");
      LLVMDisposeMessage(msg);
      return;
    }
    LLVMDisposeMessage(msg);
    if (p->text) {
      p->text->ir_after = take_message(LLVMPrintModuleToString(p->m));
      p->text->assembly = assembly_of(tm, p->m);
    }
  }
  msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, p->m, LLVMObjectFile, &msg, &p->obj)) {
    snprintf(p->err, sizeof p->err, "LLVM cannot emit machine code: %s", msg ? msg : "");
    p->obj = NULL;
  }
  LLVMDisposeMessage(msg);
}

typedef struct {
  Jit *j;
  Part *parts;
  int nparts;
  atomic_int next;
} Pool;

typedef struct {
  Pool *pool;
  int thread;
} Worker;

static void *work(void *arg) {
  Worker *w = arg;
  for (int i; (i = atomic_fetch_add(&w->pool->next, 1)) < w->pool->nparts;) {
    Part *p = &w->pool->parts[i];
    if (!p->m) read_part(p);
    compile_part(p, p->straight ? w->pool->j->fast : w->pool->j->tm[w->thread]);
    LLVMDisposeModule(p->m);
    LLVMContextDispose(p->ctx);
  }
  return NULL;
}

/* Compiles the parts on up to j->nthreads threads (this one included). */
static void compile_parts(Jit *j, Part *parts, int nparts) {
  Pool pool = {.j = j, .parts = parts, .nparts = nparts};
  atomic_init(&pool.next, 0);
  Worker w[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  bool started[MAX_THREADS] = {0};
  int nt = nparts < j->nthreads ? nparts : j->nthreads;
  for (int t = 0; t < nt; t++) w[t] = (Worker){.pool = &pool, .thread = t};
  for (int t = 1; t < nt; t++) started[t] = pthread_create(&th[t], NULL, work, &w[t]) == 0;
  work(&w[0]);   /* a thread that did not start leaves its share to this one */
  for (int t = 1; t < nt; t++)
    if (started[t]) pthread_join(th[t], NULL);
}

/* Builds, splits and compiles every step, then links them in the JIT. */
static bool compile_steps(Jit *j, JitStep *steps, int count, CgText *text, char *err, size_t n) {
  Part *parts = calloc((size_t)MAX_THREADS + 1, sizeof *parts);
  int nparts = 0, *owner = NULL;
  LLVMMemoryBufferRef bc = NULL;
  bool ok = true;
  /* All the steps in one module (a block's training and evaluation steps,
   * a GAN's two: much of their code is the same forward pass), so that
   * mergefunc compiles each kernel once for all of them. */
  Part *p = &parts[0];
  p->ctx = LLVMContextCreate();
  for (int s = 0; s < count && ok; s++) {
    LLVMModuleRef m = cg_build_module(p->ctx, j->tm[0], steps[s].g, steps[s].f, steps[s].name, err, n);   /* verified */
    if (!m) ok = false;
    else if (!p->m) p->m = m;
    else if (LLVMLinkModules2(p->m, m)) {   /* consumes m */
      snprintf(err, n, "LLVM cannot link the step %s to the others (a bug in nnc)", steps[s].name);
      ok = false;
    }
  }
  if (!p->m) LLVMContextDispose(p->ctx);
  else {
    nparts = 1;
    if (ok && text) text->ir_before = take_message(LLVMPrintModuleToString(p->m));
    /* merged first, so that a kernel and its twin do not land in two parts */
    if (ok) ok = run_passes(p->m, "mergefunc", j->tm[0], err, n);
    p->text = text;
    if (ok && text) leave_straight_unoptimized(p->ctx, p->m);
    if (ok && !text) nparts = split_module(parts, j->nthreads, &bc, &owner);
  }
  if (ok) compile_parts(j, parts, nparts);
  else
    for (int i = 0; i < nparts; i++) {
      LLVMDisposeModule(parts[i].m);
      LLVMContextDispose(parts[i].ctx);
    }
  if (bc) LLVMDisposeMemoryBuffer(bc);
  free(owner);
  for (int i = 0; i < nparts && ok; i++)
    if (!parts[i].obj) {
      snprintf(err, n, "%s", parts[i].err);
      ok = false;
    }
  /* the JIT owns each object file it is given, even if adding it fails */
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  for (int i = 0; i < nparts; i++) {
    if (!parts[i].obj) continue;
    if (!ok) {
      LLVMDisposeMemoryBuffer(parts[i].obj);
      continue;
    }
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->lljit, jd, parts[i].obj);
    if (e) set_error(err, n, "the JIT rejected the step", e);
    ok = !e;
  }
  free(parts);
  for (int s = 0; s < count && ok; s++) {
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->lljit, &addr, steps[s].name);
    if (e) {
      set_error(err, n, "cannot link the step", e);
      return false;
    }
    steps[s].fn = (StepFn)(uintptr_t)addr;
  }
  return ok;
}

bool jit_compile_all(Jit *j, JitStep *steps, int count, char *err, size_t n) {
  return compile_steps(j, steps, count, NULL, err, n);
}

StepFn jit_compile(Jit *j, const Graph *g, const Fusion *f, const char *name, CgText *text,
                   char *err, size_t n) {
  JitStep step = {.g = g, .f = f, .name = name};
  return compile_steps(j, &step, 1, text, err, n) ? step.fn : NULL;
}
