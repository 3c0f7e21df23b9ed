/*
 * jit.c — compiles a step's LLVM module (codegen.c) to native code with
 * ORC's LLJIT, for the CPU nnc runs on.
 *
 * One Jit holds the LLJIT, the thread-safe context every module is built
 * in, and a target machine for the host CPU with all of its features
 * (AVX-512 where present), used both for the O3 pipeline (which only
 * vectorizes when it knows the target) and for printing assembly. The
 * LLJIT gets a second target machine of its own, because it takes
 * ownership of the one it is given. A generator for the process's own
 * symbols lets compiled code call cblas_sgemm, powf and the runtime
 * (the executable links them with --no-as-needed and -rdynamic).
 *
 * Every LLVMErrorRef goes through set_error; every module is verified
 * before and after optimization.
 */
#include "compiler/codegen.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

struct Jit {
  LLVMOrcLLJITRef lljit;
  LLVMOrcThreadSafeContextRef tsc;
  LLVMTargetMachineRef tm;     /* ours: passes and assembly */
};

/* Consumes e, writing "what: message" into err. */
static void set_error(char *err, size_t n, const char *what, LLVMErrorRef e) {
  char *msg = LLVMGetErrorMessage(e);
  snprintf(err, n, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
}

static LLVMTargetMachineRef host_machine(char *err, size_t n) {
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
    tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelDefault,
                                 LLVMRelocDefault, LLVMCodeModelJITDefault);
    if (!tm) snprintf(err, n, "LLVM cannot create a target machine for %s (%s)", triple, cpu);
  }
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return tm;
}

Jit *jit_new(char *err, size_t n) {
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
    snprintf(err, n, "LLVM has no code generator for this machine");
    return NULL;
  }
  Jit *j = calloc(1, sizeof *j);
  if (!j) {
    snprintf(err, n, "out of memory");
    return NULL;
  }
  j->tm = host_machine(err, n);
  LLVMTargetMachineRef jit_tm = j->tm ? host_machine(err, n) : NULL;
  if (!jit_tm) {
    if (j->tm) LLVMDisposeTargetMachine(j->tm);
    free(j);
    return NULL;
  }
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  /* both calls take ownership: of jit_tm, then of the JTMB */
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->lljit, builder);   /* consumes builder */
  if (e) {
    set_error(err, n, "cannot start the LLVM JIT", e);
    LLVMDisposeTargetMachine(j->tm);
    free(j);
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
  j->tsc = LLVMOrcCreateNewThreadSafeContext();
  return j;
}

void jit_free(Jit *j) {
  if (!j) return;
  if (j->lljit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
    if (e) LLVMConsumeError(e);   /* nothing left to report it to */
  }
  if (j->tsc) LLVMOrcDisposeThreadSafeContext(j->tsc);
  if (j->tm) LLVMDisposeTargetMachine(j->tm);
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

StepFn jit_compile(Jit *j, const Graph *g, const Fusion *f, const char *name, CgText *text,
                   char *err, size_t n) {
  LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(j->tsc);
  LLVMModuleRef m = cg_build_module(ctx, j->tm, g, f, name, err, n);   /* verified */
  if (!m) return NULL;
  if (text) text->ir_before = take_message(LLVMPrintModuleToString(m));

  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
  /* No unrolling or interleaving: the loops are memory-bound streams
   * (vectorized, they run at the memory's speed either way), and a
   * homework's hundreds of kernels unrolled made code generation take
   * seconds (HW3: 1.6 s -> 0.8 s with the level below). */
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
  LLVMPassBuilderOptionsSetLoopInterleaving(opts, 0);
  LLVMErrorRef e = LLVMRunPasses(m, "default<O3>", j->tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (e) {
    set_error(err, n, "LLVM's optimizer failed", e);
    LLVMDisposeModule(m);
    return NULL;
  }
  char *msg = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
    snprintf(err, n, "optimized module is invalid (a bug in nnc or LLVM): %s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(m);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  if (text) {
    text->ir_after = take_message(LLVMPrintModuleToString(m));
    text->assembly = assembly_of(j->tm, m);
  }

  /* the JIT owns the module from here on, even if adding it fails */
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, j->tsc);
  e = LLVMOrcLLJITAddLLVMIRModule(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), tsm);
  if (e) {
    set_error(err, n, "the JIT rejected the step", e);
    return NULL;
  }
  LLVMOrcExecutorAddress addr = 0;
  e = LLVMOrcLLJITLookup(j->lljit, &addr, name);
  if (e) {
    set_error(err, n, "cannot compile the step", e);
    return NULL;
  }
  return (StepFn)(uintptr_t)addr;
}
