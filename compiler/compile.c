/*
 * compile.c — the pipeline for one train block, as a flat list of passes:
 *
 *   check + lower (training step, with autodiff and the update)   sema.c
 *   check + lower (evaluation step, forward only)                 sema.c
 *   simplify                                                      simplify.c
 *   fuse                                                          fuse.c
 *   plan memory (both steps in one arena)                         plan.c
 *   generate LLVM, optimise, JIT                                  codegen.c, jit.c
 *
 * and what the runtime needs to run them: the arena layout (RtProgram) and
 * the block's settings and data description (TrainDesc). A verifier runs
 * between passes in debug builds.
 */
#include "compiler/codegen.h"
#include "runtime/runtime.h"

#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The code generator and the JIT live in libnnccg.so, next to the nnc
 * executable, loaded only when something is compiled: libLLVM takes about
 * a tenth of a second to load (relocations and static constructors), which
 * `nnc check` should not pay. */
/* OpenBLAS reads its settings from the environment when it is loaded, so
 * nnc sets two of them (unless the user did) just before it loads OpenBLAS.
 *
 * The kernels: OpenBLAS picks them from the CPU's model number, and a CPU
 * it does not know (a virtual machine's "Intel Xeon Processor", say) gets
 * its oldest SSE3 kernels, several times slower than the machine allows.
 * So nnc names them by the CPU's features.
 *
 * How long its threads spin: OpenBLAS starts its threads when it is
 * loaded, and each spins (sched_yield) for 2^28 clock cycles, about a
 * tenth of a second, before it sleeps; after each call it shares, too.
 * nnc loads OpenBLAS right before it compiles, so that spinning thread
 * took a core from LLVM's two compiling threads (HW6: a sixth of the
 * samples while it compiled; a median of 346 ms to compile instead of
 * 279 over ten runs of each, alternating). The steps need OpenBLAS's
 * threads only when nnc runs one thread of its own (runtime/parts.c: with
 * two, each calls OpenBLAS on one), and there 2^22 cycles, a millisecond
 * or two, still covers the gap between a step's products. */
static void configure_blas(void) {
  setenv("OPENBLAS_THREAD_TIMEOUT", "22", 0);
#if defined(__x86_64__) && defined(__GNUC__)
  if (getenv("OPENBLAS_CORETYPE")) return;
  __builtin_cpu_init();
  const char *core = NULL;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = __builtin_cpu_is("amd") ? "Zen" : __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                                                    ? "SkylakeX" : "Haswell";
  if (core) setenv("OPENBLAS_CORETYPE", core, 0);
#endif
}

const char *cg_blas_info(void) {
  static char info[96];
  char *(*corename)(void) = NULL;
  int (*threads)(void) = NULL, (*blas_threads)(void) = NULL;
  *(void **)&corename = dlsym(RTLD_DEFAULT, "openblas_get_corename");
  *(void **)&threads = dlsym(RTLD_DEFAULT, "nnc_threads");   /* the step's threads (runtime/parts.c) */
  *(void **)&blas_threads = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
  if (!corename || !threads || !blas_threads) return "BLAS: not OpenBLAS";
  int t = threads(), b = blas_threads();
  snprintf(info, sizeof info, "OpenBLAS, %s kernels; the step on %d thread%s, OpenBLAS on %d in each", corename(), t,
           t == 1 ? "" : "s", b);
  return info;
}

bool cg_load(CgApi *api, char *err, size_t errlen) {
  static void *handle;
  if (!handle) {
    configure_blas();
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) {
      snprintf(err, errlen, "cannot find the nnc executable's folder");
      return false;
    }
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/libnnccg.so", exe);
    /* RTLD_GLOBAL: JIT code finds cblas_sgemm and libm through the
     * process's global symbols, which then include the module's libraries */
    handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      snprintf(err, errlen, "cannot load the code generator: %.900s (is the build complete?)", dlerror());
      return false;
    }
  }
  *(void **)&api->jit_new = dlsym(handle, "jit_new");
  *(void **)&api->jit_compile = dlsym(handle, "jit_compile");
  *(void **)&api->jit_compile_all = dlsym(handle, "jit_compile_all");
  *(void **)&api->jit_free = dlsym(handle, "jit_free");
  *(void **)&api->text_free = dlsym(handle, "cg_text_free");
  if (!api->jit_new || !api->jit_compile || !api->jit_compile_all || !api->jit_free || !api->text_free) {
    snprintf(err, errlen, "the code generator libnnccg.so is incomplete");
    return false;
  }
  return true;
}

struct Compiled {
  CgApi cg;
  Jit *jit;
  Program *train, *eval;
  int nsteps;                    /* a block of several steps: each one's program */
  Program *steps[RT_MAX_STEPS];  /* (steps[0] is train) */
};

/* compile_profile_kernels(true): steps compiled from now on time their kernels. */
static bool profile_kernels;

void compile_profile_kernels(bool on) { profile_kernels = on; }

void compiled_profile_reset(void) {
  void (*reset)(void) = NULL;
  *(void **)&reset = dlsym(RTLD_DEFAULT, "nnc_prof_reset");
  if (reset) reset();
}

/* Checks the spec again, lowering block `block`: its training step
 * (`training`, with the update), its evaluation step, a predict block's
 * step (`predict`), or a train block's after writes (`after`). */
static bool lower_mode(Arena *a, Diag *d, const Node *ast, const char *block, const SemaOptions *base, bool training,
                       bool predict, bool after, Program **out) {
  SemaOptions o = *base;
  o.lower_block = block;
  o.lower_training = training;
  o.lower_update = training;
  o.lower_predict = predict;
  o.lower_after = after;
  Program *p = sema_check(a, d, ast, &o);
  if (!p || d->nerrors) return false;
  if (!p->lowered || p->lowered->failed) {
    if (!d->nerrors) diag_error(d, (Loc){0}, "the train block could not be compiled");
    return false;
  }
  *out = p;
  return true;
}

static bool lower(Arena *a, Diag *d, const Node *ast, const char *block, const SemaOptions *base, bool training,
                  bool predict, Program **out) {
  return lower_mode(a, d, ast, block, base, training, predict, false, out);
}

static void verify(const Graph *g, const char *after) {
#ifndef NDEBUG
  if (!ir_verify(g)) nnc_die(__FILE__, __LINE__, "the graph is broken after %s", after);
#else
  (void)g;
  (void)after;
#endif
}

static RtSlot slot_of(Arena *a, const IrNode *x) {
  RtSlot s = {0};
  s.name = x->name ? x->name : arena_printf(a, "%%%d", x->id);
  s.kind = x->op == IR_PARAM ? RT_SLOT_PARAM : x->op == IR_STATE ? RT_SLOT_STATE
           : x->op == IR_RAND ? (x->init == INIT_NORMAL ? RT_SLOT_RANDN : RT_SLOT_RAND) : RT_SLOT_INPUT;
  s.offset = x->offset;
  s.rank = x->shape.rank;
  for (int i = 0; i < x->shape.rank; i++) s.shape[i] = x->shape.d[i].nsym ? -1 : x->shape.d[i].c;
  s.init = x->init == INIT_ONES ? RT_INIT_ONES : x->init == INIT_ZEROS ? RT_INIT_ZEROS : RT_INIT_UNIFORM;
  s.bound = (float)x->f;
  /* running statistics travel with the parameters; optimizer state does not */
  s.buffer = x->op == IR_STATE && x->name && (strstr(x->name, "running_") != NULL);
  return s;
}

/* No fusion: every node its own kernel, every value stored (for checking
 * numerics node by node). */
static Fusion *unfused(Arena *a, Graph *g) {
  int n = g->nodes.len;
  Fusion *f = arena_alloc(a, sizeof *f);
  f->nnodes = n;
  f->kernel = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  f->materialized = arena_alloc(a, sizeof(bool) * (size_t)(n + 1));
  f->runs_at = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  f->kernels = arena_alloc(a, sizeof(Kernel) * (size_t)(n + 1));
  for (int i = 0; i < n; i++) {
    IrNode *x = g->nodes.items[i];
    OpKindIR k = ir_op_kind(x->op);
    f->runs_at[i] = i;
    f->kernel[i] = -1;
    if (k == OPK_LEAF || k == OPK_VIEW) continue;
    Kernel *kn = &f->kernels[f->nkernels];
    kn->kind = k == OPK_REDUCE ? FK_REDUCE : k == OPK_ROW ? FK_ROW : k == OPK_MATMUL ? FK_MATMUL : k == OPK_CALL ? FK_CALL : FK_LOOP;
    vec_push(a, &kn->nodes, x);
    f->kernel[i] = f->nkernels++;
    f->materialized[i] = x->op != IR_ASSIGN;
    if (x->op != IR_ASSIGN) ir_output(g, x, "checked");   /* kept to the end of the step */
  }
  return f;
}

/* The graph's output called `name` as it is after simplification (which
 * may have replaced the node the lowering made by an equal one). */
static IrNode *output_named(const Graph *g, const char *name) {
  for (int i = 0; i < g->outputs.len; i++)
    if (!strcmp(g->output_names.items[i], name)) return g->outputs.items[i];
  nnc_die(__FILE__, __LINE__, "no output '%s'", name);
}

/* Whether output `name` is one of the block's metrics (not a column or an
 * image a predict block writes). */
static bool is_metric(const Lowering *lw, const char *name) {
  for (int i = 0; i < lw->metric_names.len; i++)
    if (!strcmp(lw->metric_names.items[i], name)) return true;
  return false;
}

/* The node a value is a view of. */
static const IrNode *viewed(const IrNode *x) {
  while (x->op == IR_RESHAPE) x = x->src[0];
  return x;
}

/* How many classes the step one-hot encodes input `in` with (its class
 * ids must be 0..n-1; cross_entropy and nll do this to their labels), the
 * smallest if several; 0 if it is not one_hot's input. An id the input is
 * compared with (cross_entropy's ignore_index: `ids == -100` masks those
 * rows) is allowed too, in *ignored. */
static int64_t classes_of(const Graph *g, const IrNode *in, float *ignored) {
  int64_t classes = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    if (x->op == IR_ONE_HOT && viewed(x->src[0]) == in && (classes == 0 || x->n < classes)) classes = x->n;
    if (x->op == IR_EQ && viewed(x->src[0]) == in && x->src[1]->op == IR_CONST) *ignored = (float)x->src[1]->f;
  }
  return classes;
}

/* Simplifies, fuses and places a step: what jit_compile_all needs. */
static JitStep plan_step(Arena *a, Program *p, int64_t n_max, int64_t floor, const char *name, MemPlan *plan,
                         bool checked) {
  Graph *g = p->lowered->g;
  ir_simplify(g);
  verify(g, "simplify");
  Fusion *f = checked ? unfused(a, g) : fuse_graph(a, g);
  f->profile = profile_kernels;
  p->kernels = f;
  plan_memory(g, f->materialized, f->runs_at, n_max, floor, plan);
  return (JitStep){.g = g, .f = f, .name = name};
}

/* The runtime's description of a compiled step: its function, its input
 * slots, where its loss and metrics are. */
static void describe_step(Arena *a, Program *p, StepFn fn, RtStep *st) {
  Graph *g = p->lowered->g;
  memset(st, 0, sizeof *st);
  st->fn = fn;
  Vec slots = {0};
  for (int i = 0; i < g->nodes.len; i++) {
    IrNode *x = g->nodes.items[i];
    if (x->op != IR_INPUT && x->op != IR_RAND) continue;
    RtSlot *s = arena_alloc(a, sizeof *s);
    *s = slot_of(a, x);
    if (x->op == IR_INPUT) s->classes = classes_of(g, x, &s->ignored);
    vec_push(a, &slots, s);
  }
  st->nslots = slots.len;
  st->slots = arena_alloc(a, sizeof(RtSlot) * (size_t)(slots.len + 1));
  for (int i = 0; i < slots.len; i++) st->slots[i] = *(RtSlot *)slots.items[i];
  for (int i = 0; i < g->outputs.len; i++) {
    IrNode *o = g->outputs.items[i];
    const char *on = g->output_names.items[i];
    size_t len = strlen(on);
    if (!strcmp(on, "loss")) st->loss_offset = o->offset;
    else if (!strcmp(on, "checked")) continue;
    else if (len > 6 && !strcmp(on + len - 6, "#label") && st->nmetrics > 0)
      st->metric_labels[st->nmetrics - 1] = o->offset;   /* the labels of the metric just before */
    else if (len > 4 && !strcmp(on + len - 4, "#max") && st->nmetrics > 0)
      st->metric_labels[st->nmetrics - 1] = RT_METRIC_MAX;   /* the metric just before: the largest batch's */
    else if (st->nmetrics < RT_MAX_METRICS && is_metric(p->lowered, on)) {
      st->metric_names[st->nmetrics] = on;
      st->metric_labels[st->nmetrics] = RT_METRIC_MEAN;
      st->metric_offsets[st->nmetrics++] = o->offset;
    }
  }
}

/* A setting of the block, or its default. */
static Value *setting(const Lowering *lw, const char *name) {
  for (int i = lw->scope->names.len - 1; i >= 0; i--)
    if (!strcmp(lw->scope->names.items[i], name)) return lw->scope->vals.items[i];
  return NULL;
}

static int64_t int_setting(const Lowering *lw, const char *name, int64_t dflt) {
  Value *v = setting(lw, name);
  return v && v->kind == V_INT ? v->i : dflt;
}

/* A path without the "./" in front that names the current folder
 * ("data.csv", not "./data.csv"), as messages should show it. */
static const char *tidy_path(const char *p) {
  while (p && p[0] == '.' && p[1] == '/' && p[2] && p[2] != '/') p += 2;
  return p;
}

/* A path the spec writes, relative to the spec's folder `dir`: the folder
 * is left out when it is the current one ("." or none); "" is the root
 * (a spec in /). */
static const char *spec_path(Arena *a, const char *dir, const char *p) {
  if (p[0] == '/' || !dir || !strcmp(dir, ".")) return tidy_path(p);
  return tidy_path(arena_printf(a, "%s/%s", dir, p));
}

static const char *path_setting(Arena *a, const Lowering *lw, const char *name) {
  Value *v = setting(lw, name);
  if (!v || v->kind != V_STRING) return NULL;
  return spec_path(a, lw->spec_dir, v->s);
}

static void describe_data(Arena *a, const Lowering *lw, const Dataset *ds, DataDesc *dd) {
  dd->source = ds->source;
  dd->path = ds->path ? spec_path(a, lw->spec_dir, ds->path) : NULL;
  dd->header = ds->header;
  for (int i = 0; i < ds->fields->items.len && dd->nfields < 16; i++) {
    RecField *f = ds->fields->items.items[i];
    if (!f->is_column) continue;
    /* one entry per column range; entries with one name are concatenated */
    for (int k = 0; k < f->col_ranges.len && dd->nfields < 16; k++) {
      Value *r = f->col_ranges.items[k];
      dd->fields[dd->nfields].name = f->name;
      dd->fields[dd->nfields].first = r->i;
      dd->fields[dd->nfields].last = r->j;
      dd->fields[dd->nfields].label = f->is_label;
      dd->nfields++;
    }
  }
  for (int i = 0; i < ds->tvals.len && dd->ntransforms < 8; i++) {
    Value *t = ds->tvals.items[i];
    dd->transforms[dd->ntransforms].name = t->s;
    dd->transforms[dd->ntransforms].k = t->i;
    if (!strcmp(t->s, "crop")) dd->transforms[dd->ntransforms].b = (double)t->j;
    if (!strcmp(t->s, "flip") || !strcmp(t->s, "rotate")) dd->transforms[dd->ntransforms].a = t->f;
    if (!strcmp(t->s, "normalize")) {
      dd->transforms[dd->ntransforms].given = t->i != 0;
      dd->transforms[dd->ntransforms].tensor = t->j != 0;
      dd->transforms[dd->ntransforms].a = t->f;
      dd->transforms[dd->ntransforms].b = t->f2;
    }
    dd->ntransforms++;
  }
  dd->part = ds->part;
  dd->valid_frac = ds->valid_frac;
  dd->take = ds->take;
  for (int i = 0; i < ds->fields->items.len && dd->nconsts < 8 && !ds->parts.len; i++) {
    RecField *f = ds->fields->items.items[i];
    if (!f->is_const) continue;
    dd->consts[dd->nconsts].name = f->name;
    dd->consts[dd->nconsts++].value = f->cval;
  }
  RecField *x = rec_find(ds->fields, "x");
  if (!strcmp(ds->source, "image_folder") && x && x->val->shape.rank == 3) {
    dd->image_c = (int)x->val->shape.d[0].c;
    dd->image_size = (int)x->val->shape.d[1].c;
  }
  if (ds->parts.len) {
    dd->nparts = ds->parts.len;
    dd->parts = arena_alloc(a, sizeof(DataDesc) * (size_t)ds->parts.len);
    for (int i = 0; i < ds->parts.len; i++) describe_data(a, lw, ds->parts.items[i], &dd->parts[i]);
    dd->part_names = (const char **)ds->part_names.items;
  }
}

/* The learning rate of optimizer `opt` (NULL: none), as the runtime computes it. */
static RtSchedule schedule_of(const Value *opt) {
  RtSchedule r = {.kind = RT_SCHED_CONSTANT, .lr = opt ? opt->opt->lr : 1e-3};
  const Value *sc = opt ? opt->opt->schedule : NULL;
  if (sc) {
    const char *k = sc->s;
    r.kind = !strcmp(k, "step_lr") ? RT_SCHED_STEP : !strcmp(k, "linear") ? RT_SCHED_LINEAR
             : !strcmp(k, "cosine") ? RT_SCHED_COSINE : !strcmp(k, "noam") ? RT_SCHED_NOAM : RT_SCHED_CONSTANT;
    r.lr = sc->f;
    r.warmup = sc->i;
    r.every = sc->j;
    r.to = sc->f2;
    r.gamma = sc->f2;
  }
  return r;
}

static void describe(Arena *a, const Lowering *lw, TrainDesc *td) {
  memset(td, 0, sizeof *td);
  for (int i = 0; i < lw->load_paths.len && i < 8; i++) {
    td->load_paths[td->nloads] = tidy_path(lw->load_paths.items[i]);
    td->load_vars[td->nloads] = lw->load_vars.items[i];
    td->load_prefixes[td->nloads++] = lw->load_prefixes.items[i];
  }
  td->seed = (uint64_t)int_setting(lw, "seed", 0);
  td->batch = int_setting(lw, "batch", 32);
  td->epochs = int_setting(lw, "epochs", 1);
  td->early_stop = int_setting(lw, "early_stop", 0);
  td->iterations = int_setting(lw, "iterations", 0);
  Value *v = setting(lw, "valid");
  td->valid = v && val_is_number(v) ? val_num(v) : 0;
  td->save_best = path_setting(a, lw, "save_best");
  td->save_last = path_setting(a, lw, "save_last");
  Value *mon = setting(lw, "monitor");
  td->monitor = mon && mon->kind == V_STRING ? mon->s : "loss";
  td->schedule = schedule_of(lw->optimizer);
  Value *dv = lw->data, *tv = setting(lw, "test");
  if (dv && dv->kind == V_DATASET) describe_data(a, lw, dv->ds, &td->data);
  if (tv && tv->kind == V_DATASET) describe_data(a, lw, tv->ds, &td->test);
  Value *vv = setting(lw, "valid");
  if (vv && vv->kind == V_DATASET) describe_data(a, lw, vv->ds, &td->valid_data);
  /* data = ds.train: the source's own split holds out its valid part */
  if (td->data.part && !strcmp(td->data.part, "train") && td->valid == 0) td->valid = td->data.valid_frac;
}

/* The persistent slots (parameters, state) of a lowered graph. */
static void persistent_slots(Arena *a, Graph *g, RtProgram *rp) {
  Vec pers = {0};
  for (int i = 0; i < g->nodes.len; i++) {
    IrNode *x = g->nodes.items[i];
    if (x->op != IR_PARAM && x->op != IR_STATE) continue;
    RtSlot *sl = arena_alloc(a, sizeof *sl);
    *sl = slot_of(a, x);
    vec_push(a, &pers, sl);
  }
  rp->npersistent = pers.len;
  rp->persistent = arena_alloc(a, sizeof(RtSlot) * (size_t)(pers.len + 1));
  for (int i = 0; i < pers.len; i++) rp->persistent[i] = *(RtSlot *)pers.items[i];
}

/* The i-th write png_grid/png of a block: its file and where the step
 * leaves its images x ([B, C, H, W] or [B, H, W]). */
static PngOut png_out(const Lowering *lw, int i, const IrNode *x) {
  const Shape *sh = &x->shape;
  PngOut po = {.path = tidy_path(lw->png_paths.items[i]), .offset = x->offset,
               .c = sh->rank == 4 ? (int)sh->d[1].c : 1, .h = (int)sh->d[sh->rank - 2].c,
               .w = (int)sh->d[sh->rank - 1].c, .rows = (int)(intptr_t)lw->png_rows.items[i]};
  if (lw->png_when.len > i) po.each_epoch = !strcmp(lw->png_when.items[i], "epoch");
  if (sh->rank >= 3 && dim_known(sh->d[0])) po.count = sh->d[0].c;
  return po;
}

/* An after write runs on its own, between epochs, with no batch: what it
 * draws must not read the data (it may read parameters, and noise). */
static bool reads_no_data(Diag *d, const Graph *g) {
  char *seen = calloc((size_t)g->nodes.len + 1, 1);
  const IrNode **stack = malloc(sizeof(IrNode *) * ((size_t)g->nodes.len + 1));
  bool ok = seen && stack;
  for (int o = 0; ok && o < g->outputs.len; o++) {
    const IrNode *out = g->outputs.items[o];
    int top = 0;
    if (!seen[out->id]) stack[top++] = out, seen[out->id] = 1;
    while (top > 0 && ok) {   /* each node is pushed once: the stack never outgrows the graph */
      const IrNode *x = stack[--top];
      if (x->op == IR_INPUT && x->name && strcmp(x->name, "n") != 0 && strcmp(x->name, "lr") != 0) {
        diag_error(d, out->loc, "this write after an epoch or training reads the data field '%s'", x->name);
        diag_hint(d, "it runs between epochs, on no batch: draw images of the parameters, or of noise such as "
                     "G(randn([64, 100])) (the same noise after every epoch)");
        ok = false;
      }
      for (int k = 0; k < 3; k++)
        if (x->src[k] && !seen[x->src[k]->id]) stack[top++] = x->src[k], seen[x->src[k]->id] = 1;
    }
  }
  free(seen);
  free(stack);
  return ok;
}

/* The parameters and state of another step of the block sit where the
 * training step has them (same names, same offsets). */
static void check_shared(const RtProgram *rp, const Graph *g, const char *step) {
  for (int i = 0; i < g->nodes.len; i++) {
    IrNode *x = g->nodes.items[i];
    if (x->op != IR_PARAM && x->op != IR_STATE) continue;
    bool found = false;
    for (int k = 0; k < rp->npersistent; k++)
      found |= !strcmp(rp->persistent[k].name, x->name ? x->name : "") && rp->persistent[k].offset == x->offset;
    if (!found) nnc_die(__FILE__, __LINE__, "%s step's '%s' is not where the train step has it", step, x->name);
  }
}

/* `after epoch { prune(...) }`: each mask the training step multiplies by,
 * with its weight, now that both have places in the arena. */
static void describe_prunes(Arena *a, const Lowering *lw, TrainDesc *td) {
  td->nprunes = lw->masks.len;
  td->prunes = arena_alloc(a, sizeof(PruneDesc) * (size_t)(lw->masks.len + 1));
  for (int i = 0; i < lw->masks.len; i++) {
    const IrNode *m = lw->masks.items[i], *w = lw->masked.items[i];
    td->prunes[i] = (PruneDesc){.name = w->name, .weight = w->offset, .mask = m->offset, .numel = ir_numel(w, 1),
                                .amount = *(double *)lw->mask_amounts.items[i]};
  }
}

/* The block's steps: training (unfused when `checked`), evaluation and
 * the after writes; with `train_only` (nnc bench) the training step alone. */
static Compiled *compile_train_mode(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                                    const SemaOptions *base, RtProgram *rp, TrainDesc *td, bool checked,
                                    bool train_only) {
  Compiled *c = arena_alloc(a, sizeof *c);
  if (!lower(a, d, ast, block, base, true, false, &c->train)) return NULL;
  /* a block of several steps: each step is a training step of its own (and
   * there is no evaluation step) */
  c->nsteps = c->train->lowered->nsteps;
  c->steps[0] = c->train;
  for (int k = 1; k < c->nsteps; k++) {
    SemaOptions o = *base;
    o.lower_step = k + 1;
    if (!lower(a, d, ast, block, &o, true, false, &c->steps[k])) return NULL;
  }
  if (!train_only && !c->nsteps && !lower(a, d, ast, block, base, false, false, &c->eval)) return NULL;
  /* the block's after writes, a third step (when it has some) */
  Program *after = NULL;
  if (!train_only && !lower_mode(a, d, ast, block, base, false, false, true, &after)) return NULL;
  if (after && !after->lowered->png_paths.len) after = NULL;
  if (after && !reads_no_data(d, after->lowered->g)) return NULL;
  char err[1024];
  if (!cg_load(&c->cg, err, sizeof err)) {
    diag_error(d, (Loc){0}, "%s", err);
    return NULL;
  }
  c->jit = c->cg.jit_new(err, sizeof err);
  if (!c->jit) {
    diag_error(d, (Loc){0}, "%s", err);
    return NULL;
  }
  /* the training steps (several: the last holds every step's optimizer
   * state, so it is planned first and the others' batches go above it) */
  int ntrain = c->nsteps ? c->nsteps : 1;
  Program *last = c->steps[ntrain - 1];
  MemPlan tp[RT_MAX_STEPS], ep = {0}, ap = {0};
  JitStep steps[RT_MAX_STEPS + 2];
  int nsteps = ntrain;
  steps[ntrain - 1] = plan_step(a, last, n_max, 0, ntrain > 1 ? arena_printf(a, "step_%s", last->lowered->step_name)
                                                              : "train_step", &tp[ntrain - 1], checked);
  int64_t floor = tp[ntrain - 1].persistent;
  for (int k = 0; k < ntrain - 1; k++)
    steps[k] = plan_step(a, c->steps[k], n_max, floor, arena_printf(a, "step_%s", c->steps[k]->lowered->step_name),
                         &tp[k], checked);
  /* one profiler table: each step's kernels after the step before's */
  for (int k = 1, at = 0; k < ntrain; k++) {
    Fusion *before = c->steps[k - 1]->kernels, *f = c->steps[k]->kernels;
    at += before->nkernels;
    f->prof_base = at;
    if (at + f->nkernels > RT_PROF_MAX) f->profile = false;
  }
  if (c->eval) steps[nsteps++] = plan_step(a, c->eval, n_max, floor, "eval_step", &ep, false);
  if (after) steps[nsteps++] = plan_step(a, after, 1, floor, "after_step", &ap, false);
  if (!c->cg.jit_compile_all(c->jit, steps, nsteps, err, sizeof err)) {
    diag_error(d, (Loc){0}, "code generation failed: %s", err);
    c->cg.jit_free(c->jit);
    return NULL;
  }
  describe_step(a, c->train, steps[0].fn, &rp->train);
  if (c->eval) describe_step(a, c->eval, steps[ntrain].fn, &rp->eval);
  if (after) describe_step(a, after, steps[nsteps - 1].fn, &rp->after);
  rp->n_max = n_max;
  rp->arena_floats = ep.size > ap.size ? ep.size : ap.size;
  for (int k = 0; k < ntrain; k++)
    if (tp[k].size > rp->arena_floats) rp->arena_floats = tp[k].size;
  /* persistent buffers, in the (last) train step's order; the other steps'
   * must sit at the same offsets (same forward code, same slots) */
  persistent_slots(a, last->lowered->g, rp);
  if (c->eval) check_shared(rp, c->eval->lowered->g, "eval");
  rp->nsteps = c->nsteps;
  for (int k = 0; k < c->nsteps; k++) {
    const Lowering *sl = c->steps[k]->lowered;
    describe_step(a, c->steps[k], steps[k].fn, &rp->steps[k]);
    rp->steps[k].name = sl->step_name;
    rp->steps[k].every = sl->every > 0 ? sl->every : 1;
    rp->steps[k].schedule = schedule_of(sl->optimizer);
    check_shared(rp, sl->g, sl->step_name);
  }
  if (c->nsteps) rp->train = rp->steps[0];
  describe(a, c->train->lowered, td);
  if (after) {
    check_shared(rp, after->lowered->g, "after");
    const Lowering *al = after->lowered;
    for (int i = 0; i < al->png_paths.len && i < 8; i++)
      td->pngs[td->npngs++] = png_out(al, i, output_named(al->g, arena_printf(a, "image%d", i)));
  }
  describe_prunes(a, c->train->lowered, td);
  /* settings the runtime does not honour yet are refused, not ignored */
  Value *vs = setting(c->train->lowered, "valid");
  const char *refuse = NULL;
  if (td->data.part && (strcmp(td->data.part, "train") != 0 || (vs && val_is_number(vs))))
    refuse = "this use of a data set's .train/.valid parts (train on ds.train, validate on ds.valid)";
  if (vs && vs->kind == V_DATASET) {
    /* valid = ds.valid(.map(...)): the part data = ds.train holds out, with its own transforms */
    const DataDesc *v = &td->valid_data;
    bool same = td->data.part && v->part && !strcmp(v->part, "valid") && v->source && td->data.source &&
                !strcmp(v->source, td->data.source) && (v->path == td->data.path ||
                (v->path && td->data.path && !strcmp(v->path, td->data.path))) && v->valid_frac == td->data.valid_frac;
    if (!same) refuse = "a validation data set other than the .valid part of the training data";
  }
  if (refuse) {
    diag_error(d, (Loc){.src = ast->loc.src}, "%s cannot be used for training yet", refuse);
    diag_hint(d, "train on ds.train of a source declared with valid: f (and validate on ds.valid), or hold out a fraction: valid = 0.2");
    c->cg.jit_free(c->jit);
    return NULL;
  }
  return c;
}

Compiled *compile_predict(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                          const SemaOptions *base, RtProgram *rp, PredictDesc *pd) {
  Compiled *c = arena_alloc(a, sizeof *c);
  if (!lower(a, d, ast, block, base, false, true, &c->eval)) return NULL;
  char err[1024];
  if (!cg_load(&c->cg, err, sizeof err) || !(c->jit = c->cg.jit_new(err, sizeof err))) {
    diag_error(d, (Loc){0}, "%s", err);
    return NULL;
  }
  MemPlan plan;
  JitStep step = plan_step(a, c->eval, n_max, 0, "predict_step", &plan, false);
  if (!c->cg.jit_compile_all(c->jit, &step, 1, err, sizeof err)) {
    diag_error(d, (Loc){0}, "code generation failed: %s", err);
    c->cg.jit_free(c->jit);
    c->jit = NULL;
    return NULL;
  }
  describe_step(a, c->eval, step.fn, &rp->train);
  rp->eval = rp->train;
  rp->n_max = n_max;
  rp->arena_floats = plan.size;
  Lowering *lw = c->eval->lowered;
  persistent_slots(a, lw->g, rp);
  memset(pd, 0, sizeof *pd);
  Value *dv = lw->data;
  if (dv && dv->kind == V_DATASET) describe_data(a, lw, dv->ds, &pd->data);
  pd->batch = int_setting(lw, "batch", 256);
  for (int i = 0; i < lw->load_paths.len && i < 8; i++) {
    pd->load_paths[pd->nloads] = tidy_path(lw->load_paths.items[i]);   /* the checker joined the spec's folder */
    pd->load_vars[pd->nloads] = lw->load_vars.items[i];
    pd->load_prefixes[pd->nloads++] = lw->load_prefixes.items[i];
  }
  pd->write_path = tidy_path(lw->write_path);
  for (int i = 0; i < lw->png_paths.len && i < 8; i++) {
    IrNode *x = output_named(lw->g, arena_printf(a, "image%d", i));
    pd->pngs[pd->npngs++] = png_out(lw, i, x);
  }
  for (int i = 0; i < lw->write_cols.len && i < 16; i++) {
    IrNode *x = output_named(lw->g, lw->write_cols.items[i]);
    pd->col_names[i] = lw->write_cols.items[i];
    pd->col_int[i] = lw->write_int.items[i] != NULL;
    pd->col_offset[i] = x->offset;
    pd->col_width[i] = ir_numel(x, 1);
    pd->ncols++;
  }
  return c;
}

Compiled *compile_train(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                        const SemaOptions *base, RtProgram *rp, TrainDesc *td) {
  return compile_train_mode(a, d, ast, block, n_max, base, rp, td, false, false);
}

Compiled *compile_train_step(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                             const SemaOptions *base, RtProgram *rp, TrainDesc *td) {
  return compile_train_mode(a, d, ast, block, n_max, base, rp, td, false, true);
}

bool describe_train(Arena *a, Diag *d, const Node *ast, const char *block, const SemaOptions *base, TrainDesc *td) {
  Program *p;
  if (!lower(a, d, ast, block, base, false, false, &p)) return false;
  describe(a, p->lowered, td);
  return true;
}

Compiled *compile_train_checked(Arena *a, Diag *d, const Node *ast, const char *block, int64_t n_max,
                                const SemaOptions *base, RtProgram *rp, TrainDesc *td) {
  return compile_train_mode(a, d, ast, block, n_max, base, rp, td, true, false);
}

/* The smallest and largest finite values of a buffer (for the report). */
static void value_range(const float *x, int64_t e, double *lo, double *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t k = 0; k < e; k++)
    if (isfinite(x[k])) {
      if (x[k] < *lo) *lo = x[k];
      if (x[k] > *hi) *hi = x[k];
    }
}

bool compiled_check_numerics(const Compiled *c, int step, Diag *d, const float *arena, int64_t n) {
  const Graph *g = (c->nsteps ? c->steps[step] : c->train)->lowered->g;
  /* the values this step computed, in order, first: the leaves already hold
   * the step's updates, which come from them */
  for (int pass = 0; pass < 2; pass++)
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    OpKindIR k = ir_op_kind(x->op);
    if (k == OPK_VIEW || x->op == IR_CONST || x->op == IR_ASSIGN || x->offset < 0) continue;
    if ((k == OPK_LEAF) != (pass == 1)) continue;
    int64_t e = ir_numel(x, n), bad = -1;
    for (int64_t q = 0; q < e && bad < 0; q++)
      if (!isfinite(arena[x->offset + q])) bad = q;
    if (bad < 0) continue;
    Arena *tmp = arena_new();
    float v = arena[x->offset + bad];
    char op[32];
    size_t ol = 0;
    for (const char *q = ir_op_name(x->op); *q && ol < sizeof op - 1; q++) op[ol++] = (char)tolower((unsigned char)*q);
    op[ol] = 0;
    if (k == OPK_LEAF)
      diag_error(d, x->loc, "%s '%s' %s holds %s: it came out of the previous update", op, x->name ? x->name : "?",
                 ttype_str(tmp, x->dtype, &x->shape), isnan(v) ? "NaN" : "an infinity");
    else
      diag_error(d, x->loc, "the first %s comes from %%%d = %s %s (element %lld)", isnan(v) ? "NaN" : "infinity",
                 x->id, op, ttype_str(tmp, x->dtype, &x->shape), (long long)bad);
    for (int s2 = 0; s2 < 3 && x->src[s2]; s2++) {
      const IrNode *in = x->src[s2];
      while (in->op == IR_RESHAPE) in = in->src[0];
      if (in->op == IR_CONST) {
        diag_hint(d, "input %d is the constant %g", s2 + 1, in->f);
        continue;
      }
      double lo, hi;
      value_range(arena + in->offset, ir_numel(in, n), &lo, &hi);
      diag_hint(d, "input %d (%%%d%s%s) ranges over [%g, %g]", s2 + 1, in->id, in->name ? " " : "",
                in->name ? in->name : "", lo, hi);
    }
    if (x->op == IR_LOG || x->op == IR_DIV || x->op == IR_SQRT || x->op == IR_POW)
      diag_hint(d, "log, division, sqrt and pow are undefined near 0 or below it: clamp the input (clip, maximum) or add an epsilon");
    else if (x->op == IR_EXP || x->op == IR_MATMUL || x->op == IR_MUL || x->op == IR_ADD)
      diag_hint(d, "values grew until float32 overflowed: a smaller learning rate, normalized inputs or gradient clipping (clip_norm) help");
    arena_free(tmp);
    return false;
  }
  return true;
}

typedef struct {
  int k;
  double ms;
} KernelTime;

static int by_time(const void *a, const void *b) {
  double x = ((const KernelTime *)a)->ms, y = ((const KernelTime *)b)->ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

bool compiled_print_profile(FILE *out, const Compiled *c, int step, int64_t steps, int top) {
  double (*seconds)(int64_t) = NULL;
  *(void **)&seconds = dlsym(RTLD_DEFAULT, "nnc_prof_seconds");
  int nsteps = c->nsteps ? c->nsteps : 1;
  const Fusion *f = step >= 0 && step < nsteps ? c->steps[step]->kernels : NULL;
  if (!seconds || !f || !f->profile || steps <= 0) return false;
  KernelTime *t = calloc((size_t)f->nkernels + 1, sizeof *t);
  if (!t) return false;
  double total = 0, by_kind[5] = {0};
  for (int k = 0; k < f->nkernels; k++) {
    t[k] = (KernelTime){k, seconds(f->prof_base + k) * 1000 / (double)steps};
    total += t[k].ms;
    by_kind[f->kernels[k].kind] += t[k].ms;
  }
  qsort(t, (size_t)f->nkernels, sizeof *t, by_time);
  fprintf(out, "  kernels   %d, %.3f ms a step in all:", f->nkernels, total);
  static const char *const kinds[5] = {"loops", "reductions", "rows", "sgemm", "conv/pool calls"};
  for (int i = 0; i < 5; i++)
    if (by_kind[i] > 0) fprintf(out, " %s %.0f%%", kinds[i], 100 * by_kind[i] / (total > 0 ? total : 1));
  fprintf(out, "\n  %6s %10s %6s  %-58s %s\n", "kernel", "ms/step", "share", "what", "spec");
  for (int i = 0; i < f->nkernels && i < top; i++) {
    const Kernel *kn = &f->kernels[t[i].k];
    const IrNode *last = kn->nodes.items[kn->nodes.len - 1];
    char what[160];
    fusion_kernel_title(what, sizeof what, kn);
    fprintf(out, "  %6d %10.3f %5.1f%%  %-58s %d:%d%s\n", t[i].k, t[i].ms, 100 * t[i].ms / (total > 0 ? total : 1), what,
            last->loc.line, last->loc.col, last->grad_of ? " (gradient)" : "");
  }
  free(t);
  return true;
}

void compiled_free(Compiled *c) {
  if (c && c->jit) c->cg.jit_free(c->jit);
}

bool compile_print_stage(FILE *out, Arena *a, Diag *d, const Node *ast, const char *block, const char *stage,
                         const SemaOptions *base) {
  Program *p;
  if (!lower(a, d, ast, block, base, true, false, &p)) return false;
  Graph *g = p->lowered->g;
  ir_simplify(g);
  verify(g, "simplify");
  Fusion *f = fuse_graph(a, g);
  if (!strcmp(stage, "fused")) {
    fusion_print(out, g, f);
    return true;
  }
  MemPlan plan;
  int64_t batch = int_setting(p->lowered, "batch", 32);
  plan_memory(g, f->materialized, f->runs_at, batch, 0, &plan);
  if (!strcmp(stage, "memory")) {
    plan_print(out, g, &plan);
    return true;
  }
  CgApi cg;
  char err[1024];
  Jit *jit = NULL;
  CgText text = {0};
  if (!cg_load(&cg, err, sizeof err) || !(jit = cg.jit_new(err, sizeof err)) ||
      !cg.jit_compile(jit, g, f, "train_step", &text, err, sizeof err)) {
    diag_error(d, (Loc){0}, "code generation failed: %s", err);
    if (jit) cg.jit_free(jit);
    return false;
  }
  fputs(!strcmp(stage, "asm") ? (text.assembly ? text.assembly : "") : (text.ir_after ? text.ir_after : ""), out);
  cg.text_free(&text);
  cg.jit_free(jit);
  return true;
}
