/*
 * nnc.c — the command-line driver.
 *
 *     nnc check SPEC                 parse, check, print the model summary
 *     nnc ir SPEC --stage=NAME       print the program at one stage
 *     nnc train SPEC                 compile a train block and train it
 *     nnc predict SPEC               run a predict block, write its CSV
 *     nnc gradcheck SPEC             compiled gradients against finite differences
 *     nnc dot SPEC                   the graph for Graphviz
 *     nnc bench SPEC                 time the compiled training step
 *
 * The driver is a flat list: read the options, load the source, parse,
 * check; then the command's own steps (compile, load data, run the
 * runtime's loop, write files). Each command is one function; everything a
 * compilation allocates lives in one arena.
 *
 * Exit status: 0 success, 1 a problem with the user's spec or files (already
 * reported on stderr with a location), 2 a usage error or a command that is
 * not built yet.
 */
#include "compiler/compiler.h"
#include "lang/lang.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef NNC_VERSION
#define NNC_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_USER = 1, EXIT_USAGE = 2 };

/* The stages `nnc ir --stage=NAME` will print, in pipeline order. */
static const char *const stages[] = {"ast", "graph", "grad", "opt", "fused",
                                     "memory", "llvm", "asm"};
enum { NSTAGES = sizeof stages / sizeof stages[0] };

typedef struct {
  const char *spec;    /* the spec file, if the command takes one */
  const char *stage;   /* --stage=NAME (ir) */
  const char *block;   /* --block=NAME: which train block (default: the first) */
  long long epochs, batch, seed;   /* --epochs/--batch/--seed (-1: the spec's) */
  const char *ckpt, *out;          /* predict: --ckpt FILE, --out FILE */
  const char *init;                /* train: --init FILE */
  int resume;                      /* train: --resume */
  int check_numerics;              /* train: --check-numerics */
  int kernels;                     /* bench: --kernels */
  SemaOptions sem;                 /* --no-data-check and --set NAME=VALUE, for every command */
  char set_names[16][64];          /* the NAMEs of --set */
  int max_errors;      /* --max-errors N */
  int color;           /* --color: -1 auto, 0 never, 1 always */
  int check_files;     /* 0 with --no-data-check */
  int help;            /* --help after the command */
} Options;

typedef struct {
  const char *name;
  const char *usage;   /* the arguments after the command name */
  const char *summary; /* one line for `nnc --help` */
  const char *details; /* the rest of `nnc help CMD` */
  int built;           /* 0: says "not built yet" and exits 2 */
} Command;

static const Command commands[] = {
    {"check", "SPEC", "parse and check a spec, print a summary of its models",
     "Parses SPEC, checks names, types and tensor shapes, and prints for each\n"
     "model a table of its layers (output shape, parameters, FLOPs) and what\n"
     "each train/predict block will do. Errors go to stderr as\n"
     "`file:line:col: error: ...` with the source line and a caret.\n",
     1},
    {"ir", "SPEC --stage=NAME",
     "print the program at one stage of compilation",
     "Stages, in pipeline order:\n"
     "  ast      the syntax tree, one node per line with its line:col\n"
     "  graph    the forward graph (SSA over tensors)\n"
     "  grad     the graph with its backward pass\n"
     "  opt      after simplification\n"
     "  fused    kernels after fusion\n"
     "  memory   the memory plan (buffer offsets in one arena)\n"
     "  llvm     the LLVM IR\n"
     "  asm      the machine code\n"
     "Every stage after ast is of a train block's training step (--block NAME,\n"
     "default the first). The spec is checked first, so its errors are reported.\n",
     1},
    {"train", "SPEC", "compile and train a train block of the spec",
     "Compiles the block's training step and evaluation step (forward,\n"
     "backward and the optimizer update as one native function each) and\n"
     "runs them: a line per epoch with the losses and metrics, early\n"
     "stopping, the best checkpoint (safetensors, written atomically), and a\n"
     "log of every epoch next to it (.jsonl).\n"
     "  --block NAME    which train block (default: the first)\n"
     "  --epochs N, --batch N, --seed N   override the block's settings\n"
     "  --resume        continue an interrupted run from its last epoch\n"
     "                  (NAME.state.safetensors next to the checkpoint)\n"
     "  --init FILE     start from the weights in FILE instead of random ones\n"
     "  --check-numerics  check every intermediate value after every step and\n"
     "                  report the first NaN or infinity at its spec line (slower;\n"
     "                  done automatically, from the start, when the loss diverges)\n"
     "  --set NAME=VALUE   replace a constant or a block setting (any command)\n",
     1},
    {"predict", "SPEC", "run a trained model and write the submission file",
     "Compiles the predict block's step, loads the checkpoint it names\n"
     "(load(net, \"...\")), runs it over the block's data and writes its\n"
     "CSV file (atomically).\n"
     "  --block NAME   which predict block (default: the first)\n"
     "  --ckpt FILE    load these weights instead\n"
     "  --out FILE     write here instead\n",
     1},
    {"gradcheck", "SPEC",
     "compare the compiled gradients with finite differences",
     "Compiles the gradient of a train block's loss with respect to every\n"
     "parameter and compares it, on one batch of the block's data, with\n"
     "central finite differences of the loss computed in float64 by a\n"
     "reference evaluator. Prints the worst relative error per tensor.\n"
     "  --block NAME   which train block (default: the first)\n",
     1},
    {"bench", "SPEC", "time the compiled training step",
     "Compiles a train block's training step for its batch size (or --batch)\n"
     "and times it alone on a batch of its real data: compile time, then the\n"
     "median and range of ms per step over repeated runs after a warm-up,\n"
     "and samples per second. The data loading and the evaluation step are\n"
     "not included.\n"
     "  --block NAME   which train block (default: the first)\n"
     "  --batch N      the batch size (default: the block's)\n"
     "  --kernels      also time every kernel of the step: the 15 slowest, what\n"
     "                 each does (a loop, a reduction, an sgemm, a convolution\n"
     "                 and its method) and its spec line\n",
     1},
    {"dot", "SPEC --stage=graph|grad", "draw a train block's graph for Graphviz",
     "Prints the forward graph (--stage=graph, the default) or the whole\n"
     "training step with its backward pass (--stage=grad) of a train block in\n"
     "Graphviz's dot language: data blue, parameters orange, gradients red.\n"
     "  nnc dot specs/hw1.nn --stage=grad | dot -Tsvg > hw1.svg\n",
     1},
    {"help", "[COMMAND]", "show help for nnc or for one command", "", 1},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static const char *const common_options =
    "Options:\n"
    "  --max-errors N         stop after N errors (default 20)\n"
    "  --color=auto|always|never\n"
    "                         colour the messages (auto: only on a terminal)\n"
    "  --no-data-check        do not open the data files the spec names\n"
    "  --help                 show this help\n";

static const Command *find_command(const char *name) {
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

/* `nnc: error: ...` for problems with the command line (exit 2). */
static int usage_error(const char *fmt, const char *arg, const char *hint) {
  fputs("nnc: error: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  if (hint) fprintf(stderr, "      = hint: %s\n", hint);
  fputs("Try 'nnc --help'.\n", stderr);
  return EXIT_USAGE;
}

static void print_main_help(FILE *out) {
  fputs("nnc — a compiler for neural-network spec files (.nn)\n\n"
        "Usage: nnc COMMAND [OPTIONS] SPEC\n\n"
        "Commands:\n", out);
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s%s\n", commands[i].name, commands[i].summary,
            commands[i].built ? "" : " (not built yet)");
  fputs("\n", out);
  fputs(common_options, out);
  fputs("  --version              print the version\n\n"
        "Exit status: 0 ok, 1 an error in the spec or its files, 2 a usage error.\n"
        "Run 'nnc help COMMAND' for the options of one command.\n", out);
}

static void print_command_help(FILE *out, const Command *c) {
  fprintf(out, "Usage: nnc %s %s\n\n%s", c->name, c->usage, c->summary);
  fputs(c->built ? ".\n\n" : " (not built yet).\n\n", out);
  if (c->details[0]) fprintf(out, "%s\n", c->details);
  if (strcmp(c->name, "help") != 0) fputs(common_options, out);
}

/* Reads the options that follow the command. Returns EXIT_OK or the exit
 * status of a usage error (already reported). */
static int parse_options(Options *o, int argc, char **argv) {
  for (int i = 2; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      o->help = 1;
    } else if (strcmp(arg, "--no-data-check") == 0) {
      o->check_files = 0;
    } else if (strcmp(arg, "--max-errors") == 0 || strncmp(arg, "--max-errors=", 13) == 0) {
      const char *val = arg[12] == '=' ? arg + 13 : (i + 1 < argc ? argv[++i] : NULL);
      if (!val) return usage_error("%s needs a number", arg, "for example --max-errors 5");
      char *end;
      errno = 0;
      long n = strtol(val, &end, 10);
      if (*val == 0 || *end != 0 || errno || n < 1 || n > 100000)
        return usage_error("--max-errors expects a positive number, not '%s'", val, NULL);
      o->max_errors = (int)n;
    } else if (strncmp(arg, "--color=", 8) == 0 || strcmp(arg, "--color") == 0) {
      const char *val = arg[7] == '=' ? arg + 8 : "always";
      if (strcmp(val, "auto") == 0) o->color = -1;
      else if (strcmp(val, "always") == 0) o->color = 1;
      else if (strcmp(val, "never") == 0) o->color = 0;
      else return usage_error("--color expects auto, always or never, not '%s'", val, NULL);
    } else if (strncmp(arg, "--stage=", 8) == 0 || strcmp(arg, "--stage") == 0) {
      const char *val = arg[7] == '=' ? arg + 8 : (i + 1 < argc ? argv[++i] : NULL);
      if (!val) return usage_error("%s needs a stage name", arg, "for example --stage=ast");
      o->stage = val;
    } else if (!strncmp(arg, "--epochs", 8) || !strncmp(arg, "--batch", 7) || !strncmp(arg, "--seed", 6)) {
      size_t klen = strcspn(arg, "=");
      const char *val = arg[klen] == '=' ? arg + klen + 1 : (i + 1 < argc ? argv[++i] : NULL);
      char *end;
      errno = 0;
      long long v = val ? strtoll(val, &end, 10) : -1;
      if (!val || *val == 0 || *end != 0 || errno || v < 0 || (v == 0 && strncmp(arg, "--seed", 6)))
        return usage_error("%s expects a whole number", arg, "for example --epochs 5");
      if (!strncmp(arg, "--epochs", 8)) o->epochs = v;
      else if (!strncmp(arg, "--batch", 7)) o->batch = v;
      else o->seed = v;
    } else if (!strncmp(arg, "--set", 5)) {
      size_t klen = strcspn(arg, "=");
      const char *val = arg[5] == '=' ? arg + klen + 1 : (i + 1 < argc ? argv[++i] : NULL);
      const char *eq = val ? strchr(val, '=') : NULL;
      if (!val || !eq || eq == val) return usage_error("%s expects NAME=VALUE", arg, "for example --set epochs=10");
      if (o->sem.nset >= 16) return usage_error("at most 16 --set options, got more at '%s'", val, NULL);
      snprintf(o->set_names[o->sem.nset], sizeof o->set_names[0], "%.*s", (int)(eq - val), val);
      o->sem.set_names[o->sem.nset] = o->set_names[o->sem.nset];
      o->sem.set_values[o->sem.nset++] = eq + 1;
    } else if (!strcmp(arg, "--check-numerics")) {
      o->check_numerics = 1;
    } else if (!strcmp(arg, "--kernels")) {
      o->kernels = 1;
    } else if (!strcmp(arg, "--resume")) {
      o->resume = 1;
    } else if (!strncmp(arg, "--init", 6)) {
      size_t klen = strcspn(arg, "=");
      const char *val = arg[klen] == '=' ? arg + klen + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!val || !*val) return usage_error("%s needs a .safetensors file", arg, NULL);
      o->init = val;
    } else if (!strncmp(arg, "--ckpt", 6) || !strncmp(arg, "--out", 5)) {
      size_t klen = strcspn(arg, "=");
      const char *val = arg[klen] == '=' ? arg + klen + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!val || !*val) return usage_error("%s needs a file name", arg, NULL);
      if (!strncmp(arg, "--ckpt", 6)) o->ckpt = val;
      else o->out = val;
    } else if (strncmp(arg, "--block=", 8) == 0 || strcmp(arg, "--block") == 0) {
      const char *val = arg[7] == '=' ? arg + 8 : (i + 1 < argc ? argv[++i] : NULL);
      if (!val) return usage_error("%s needs the name of a train block", arg, "for example --block=residual");
      o->block = val;
    } else if (arg[0] == '-' && arg[1] != 0) {
      static const char *const known[] = {"--help", "--no-data-check", "--max-errors", "--color", "--stage",
                                          "--block", "--epochs", "--batch", "--seed", "--ckpt", "--out",
                                          "--init", "--resume", "--set", "--check-numerics", "--version",
                                          "--kernels"};
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
      const char *near = closest_name(name, known, (int)(sizeof known / sizeof known[0]));
      char hint[96];
      snprintf(hint, sizeof hint, "did you mean '%s'?", near ? near : "");
      return usage_error("unknown option '%s'", arg, near ? hint : NULL);
    } else if (!o->spec) {
      o->spec = arg;
    } else {
      return usage_error("unexpected argument '%s' (one spec file at a time)", arg, NULL);
    }
  }
  return EXIT_OK;
}

/* ---- the commands ----------------------------------------------------- */

/* The spec, read and parsed; NULL after reporting. */
static Node *load_spec(Arena *a, Diag *d, const Options *o) {
  Source *src = source_load(a, d, o->spec);
  return src ? parse_source(a, d, src) : NULL;
}

/* Loads, parses and checks o->spec. Sets *ast and *prog (NULL on failure);
 * returns EXIT_OK or EXIT_USER. */
static int front_end(Arena *a, Diag *d, const Options *o, Node **ast, Program **prog) {
  *ast = NULL;
  *prog = NULL;
  *ast = load_spec(a, d, o);
  if (!*ast) return EXIT_USER;
  SemaOptions sopt = o->sem;
  sopt.check_files = o->check_files;
  /* graph: the forward graph of a train block; grad: with autodiff and the
   * optimizer's update, i.e. one training step */
  if (o->stage && (!strcmp(o->stage, "graph") || !strcmp(o->stage, "grad") || !strcmp(o->stage, "opt"))) {
    sopt.lower_block = o->block ? o->block : "";
    sopt.lower_training = 1;
    sopt.lower_update = strcmp(o->stage, "graph") != 0;
  }
  *prog = sema_check(a, d, *ast, &sopt);
  return *prog && d->nerrors == 0 ? EXIT_OK : EXIT_USER;
}

/* nnc check SPEC: summary to stdout, errors to stderr. */
static int cmd_check(Arena *a, Diag *d, const Options *o) {
  Node *ast;
  Program *prog;
  int rc = front_end(a, d, o, &ast, &prog);
  if (rc == EXIT_OK) summary_print(stdout, prog);
  return rc;
}

/* nnc ir SPEC --stage=NAME: the tree is printed whenever the spec parses,
 * so a student can look at it while fixing a type or shape error. */
static int cmd_ir(Arena *a, Diag *d, const Options *o) {
  if (!o->stage)
    return usage_error("%s: which stage? add --stage=NAME", "ir",
                       "stages: ast graph grad opt fused memory llvm asm");
  int known = 0;
  for (int i = 0; i < NSTAGES; i++) known |= strcmp(o->stage, stages[i]) == 0;
  if (!known) {
    const char *near = closest_name(o->stage, stages, NSTAGES);
    char hint[96];
    snprintf(hint, sizeof hint, "did you mean '%s'? stages: ast graph grad opt fused memory llvm asm",
             near ? near : "");
    return usage_error("unknown stage '%s'", o->stage,
                       near ? hint : "stages: ast graph grad opt fused memory llvm asm");
  }
  bool graph = !strcmp(o->stage, "graph") || !strcmp(o->stage, "grad") || !strcmp(o->stage, "opt");
  if (strcmp(o->stage, "ast") != 0 && !graph) {
    /* fused, memory, llvm, asm: the compiled training step */
    Node *ast = load_spec(a, d, o);
    if (!ast) return EXIT_USER;
    SemaOptions base = o->sem;
    base.check_files = o->check_files;
    return compile_print_stage(stdout, a, d, ast, o->block ? o->block : "", o->stage, &base) ? EXIT_OK : EXIT_USER;
  }
  Node *ast;
  Program *prog;
  int rc = front_end(a, d, o, &ast, &prog);
  if (!graph) {
    if (ast) ast_print(stdout, ast);
    return rc;
  }
  if (rc == EXIT_OK && !strcmp(o->stage, "opt")) program_simplify(prog);
  if (rc == EXIT_OK && !program_print_graph(stdout, prog)) return EXIT_USER;
  /* a block of several steps: each step's graph, one after another */
  for (int k = 2; rc == EXIT_OK && k <= program_nsteps(prog); k++) {
    SemaOptions sopt = o->sem;
    sopt.check_files = o->check_files;
    sopt.lower_block = o->block ? o->block : "";
    sopt.lower_training = 1;
    sopt.lower_update = strcmp(o->stage, "graph") != 0;
    sopt.lower_step = k;
    Program *p = sema_check(a, d, ast, &sopt);
    if (!p || d->nerrors) return EXIT_USER;
    if (!strcmp(o->stage, "opt")) program_simplify(p);
    printf("\n");
    if (!program_print_graph(stdout, p)) return EXIT_USER;
  }
  return rc;
}

/* ---- nnc train -------------------------------------------------------- */

/* The labels of an IDX image file: ...-images-idx3-ubyte.gz -> ...-labels-idx1-ubyte.gz */
static const char *labels_of(Arena *a, const char *images) {
  const char *p = strstr(images, "images-idx3");
  if (!p) return NULL;
  return arena_printf(a, "%.*slabels-idx1%s", (int)(p - images), images, p + strlen("images-idx3"));
}

/* Joins the fields "x#0", "x#1", ... of `in` into one field "x" of `out`. */
static bool join_parts(const RtTable *in, RtTable *out, RtError *err) {
  out->rows = in->rows;
  out->nfields = 0;
  out->fields = calloc((size_t)(in->nfields ? in->nfields : 1), sizeof(RtField));
  if (!out->fields) return rt_fail(err, "out of memory");
  for (int i = 0; i < in->nfields; i++) {
    const char *hash = strrchr(in->fields[i].name, '#');
    size_t base = hash ? (size_t)(hash - in->fields[i].name) : strlen(in->fields[i].name);
    if (hash && strcmp(hash, "#0")) continue;   /* joined with its #0 */
    int64_t width = 0;
    for (int k = 0; k < in->nfields; k++)
      if (!strncmp(in->fields[k].name, in->fields[i].name, base) && in->fields[k].name[base] == '#') width += in->fields[k].width;
    RtField *f = &out->fields[out->nfields++];
    f->name = strndup(in->fields[i].name, base);
    f->width = width;
    f->rank = width == 1 && in->fields[i].rank == 0 ? 0 : 1;
    f->shape[0] = width;
    f->data = malloc(sizeof(float) * (size_t)(in->rows * width + 1));
    if (!f->name || !f->data) return rt_fail(err, "out of memory");
    int64_t col = 0;
    for (int k = 0; k < in->nfields; k++) {
      const RtField *p = &in->fields[k];
      if (strncmp(p->name, in->fields[i].name, base) || p->name[base] != '#') continue;
      for (int64_t r = 0; r < in->rows; r++)
        memcpy(f->data + r * width + col, p->data + r * p->width, sizeof(float) * (size_t)p->width);
      col += p->width;
    }
  }
  return true;
}

/* Transforms applied batch by batch, as images (the runtime's pipeline). */
static bool is_image_transform(const char *name) {
  return !strcmp(name, "crop") || !strcmp(name, "flip") || !strcmp(name, "rotate") || !strcmp(name, "resize");
}

/* The image pipeline of a data description for field "x" of table t
 * (pl->n = 0 when it has no image transforms). */
static bool pipeline_of(const DataDesc *dd, const RtTable *t, RtPipeline *pl, RtError *err) {
  memset(pl, 0, sizeof *pl);
  pl->field = "x";
  for (int i = 0; i < dd->ntransforms && pl->n < 8; i++) {
    const char *n = dd->transforms[i].name;
    if (!is_image_transform(n)) continue;
    RtTransform *tf = &pl->t[pl->n++];
    tf->kind = !strcmp(n, "crop") ? RT_TF_CROP : !strcmp(n, "flip") ? RT_TF_FLIP : !strcmp(n, "rotate") ? RT_TF_ROTATE : RT_TF_RESIZE;
    tf->size = (int)dd->transforms[i].k;
    tf->padding = (int)dd->transforms[i].b;
    tf->p = tf->degrees = dd->transforms[i].a;
  }
  if (!pl->n) return true;
  const RtField *f = rt_table_field(t, "x");
  if (!f) return rt_fail(err, "image transforms need a field 'x' of images");
  if (f->rank == 3) pl->c = (int)f->shape[0], pl->h = (int)f->shape[1], pl->w = (int)f->shape[2];
  else if (f->rank == 2) pl->c = 1, pl->h = (int)f->shape[0], pl->w = (int)f->shape[1];
  else return rt_fail(err, "image transforms need images [C, H, W] in field 'x', which has %lld values a sample",
                      (long long)f->width);
  return true;
}

static bool load_data(Arena *a, const TrainDesc *td, const DataDesc *dd, RtTable *t, RtTensorRef *extra, int *nextra,
                      RtError *err);

/* A part's image transforms, applied once to every image (deterministic:
 * the centre crop, a flip only with p 1). */
static bool transform_now(const DataDesc *dd, RtTable *t, RtError *err) {
  RtPipeline pl;
  if (!pipeline_of(dd, t, &pl, err)) return false;
  if (pl.n == 0) return true;
  RtField *f = rt_table_field(t, pl.field);
  int c, h, w;
  rt_pipeline_out(&pl, &c, &h, &w);
  int64_t width = (int64_t)c * h * w;
  float *out = malloc(sizeof(float) * (size_t)(t->rows * width + 1));
  if (!out) return rt_fail(err, "out of memory transforming %lld images", (long long)t->rows);
  if (!rt_pipeline_run(&pl, false, NULL, f->data, t->rows, out, err)) {
    free(out);
    return false;
  }
  free(f->data);
  f->data = out;
  f->width = width;
  f->rank = 3;
  f->shape[0] = c, f->shape[1] = h, f->shape[2] = w;
  return true;
}

/* Loads a block's data set as the runtime's table, applying the transforms
 * the runtime does before batching (normalization statistics come from the
 * training split and are kept in the checkpoint). */
static bool load_data(Arena *a, const TrainDesc *td, const DataDesc *dd, RtTable *t, RtTensorRef *extra, int *nextra,
                      RtError *err) {
  *nextra = 0;
  if (!dd->source) return rt_fail(err, "the train block has no data set");
  if (!strcmp(dd->source, "zip")) {
    /* zip(plain: a, flipped: b): each part loaded with its transforms done
     * (deterministically: zip is for evaluation, test-time augmentation),
     * its fields renamed "plain.x", ..., side by side */
    for (int i = 0; i < dd->nparts; i++) {
      RtTable part = {0};
      RtTensorRef ignored[4];
      int nignored = 0;
      bool ok = load_data(a, td, &dd->parts[i], &part, ignored, &nignored, err) &&
                transform_now(&dd->parts[i], &part, err) && rt_table_zip(t, &part, dd->part_names[i], err);
      rt_table_free(&part);
      if (!ok) return false;
    }
  } else if (!strcmp(dd->source, "concat")) {
    /* concat_data([a, b]): each loaded (with its own transforms and
     * constant fields), then one after another */
    for (int i = 0; i < dd->nparts; i++) {
      RtTable part = {0};
      RtTensorRef ignored[4];
      int nignored = 0;
      if (!load_data(a, td, &dd->parts[i], &part, ignored, &nignored, err) || !rt_table_append(t, &part, err)) {
        rt_table_free(&part);
        return false;
      }
    }
  } else if (!strcmp(dd->source, "csv")) {
    /* a field of several column ranges is loaded as parts "x#0", "x#1", ...
     * and joined */
    RtColumnSel sel[16];
    for (int i = 0; i < dd->nfields; i++) {
      int part = 0;
      for (int k = 0; k < i; k++) part += !strcmp(dd->fields[k].name, dd->fields[i].name);
      sel[i] = (RtColumnSel){arena_printf(a, "%s#%d", dd->fields[i].name, part), dd->fields[i].first, dd->fields[i].last};
    }
    RtTable parts = {0};
    if (!rt_load_csv(dd->path, dd->header, sel, dd->nfields, &parts, err)) return false;
    if (!join_parts(&parts, t, err)) {
      rt_table_free(&parts);
      return false;
    }
    rt_table_free(&parts);
  } else if (!strcmp(dd->source, "fashion_mnist") || !strcmp(dd->source, "mnist_test")) {
    if (!rt_load_idx(dd->path, labels_of(a, dd->path), t, err)) return false;
  } else if (!strcmp(dd->source, "image_folder")) {
    RtImageSet set;
    if (!rt_load_image_folder(dd->path, dd->image_size, dd->image_c == 1, &set, err)) return false;
    bool ok = rt_image_set_to_table(&set, t, err);
    rt_image_set_free(&set);
    if (!ok) return false;
  } else {
    return rt_fail(err, "training on %s data is not supported by this version of nnc yet", dd->source);
  }
  for (int i = 0; i < dd->nconsts; i++)
    if (!rt_table_add_constant(t, dd->consts[i].name, (float)dd->consts[i].value, err)) return false;
  for (int i = 0; i < dd->ntransforms; i++) {
    const char *n = dd->transforms[i].name;
    if (!strcmp(n, "flatten_image") || !strcmp(n, "rows_as_sequence") || (!strcmp(n, "context") && dd->transforms[i].k == 0))
      continue;   /* the table is flat already */
    if (is_image_transform(n)) continue;   /* batch by batch: pipeline_of() */
    if (!strcmp(n, "normalize")) {
      RtField *f = rt_table_field(t, "x");
      if (!f) return rt_fail(err, "normalize() needs a field 'x'");
      if (dd->transforms[i].tensor)
        return rt_fail(err, "normalize(mean, std) with tensor statistics is not supported for training yet; "
                            "use normalize() (the training split's statistics) or numbers");
      if (dd->transforms[i].given) {
        float *mean = arena_alloc(a, sizeof(float) * (size_t)f->width), *sd = arena_alloc(a, sizeof(float) * (size_t)f->width);
        for (int64_t k = 0; k < f->width; k++) {
          mean[k] = (float)dd->transforms[i].a;
          sd[k] = (float)dd->transforms[i].b;
        }
        rt_normalize(t, f, mean, sd);
        continue;
      }
      if (dd != &td->data) return rt_fail(err, "normalize() on test data is not supported yet: normalize the training data");
      RtSplit sp;
      if (!rt_split(t->rows, td->valid, td->seed, &sp, err)) return false;
      float *mean = arena_alloc(a, sizeof(float) * (size_t)f->width), *sd = arena_alloc(a, sizeof(float) * (size_t)f->width);
      rt_field_stats(t, f, sp.train, sp.ntrain, mean, sd);
      rt_split_free(&sp);
      rt_normalize(t, f, mean, sd);
      extra[(*nextra)++] = (RtTensorRef){"normalize.x.mean", 1, {f->width}, mean};
      extra[(*nextra)++] = (RtTensorRef){"normalize.x.std", 1, {f->width}, sd};
      continue;
    }
    return rt_fail(err, "the transform %s() is not supported for training by this version of nnc yet", n);
  }
  if (dd->take > 0 && dd->take < t->rows) t->rows = dd->take;   /* take(ds, n) */
  return true;
}

/* load_data for a command: the error, if any, goes to stderr with the spec's name. */
static bool load_block_data(Arena *a, const Options *o, const TrainDesc *td, const DataDesc *dd, RtTable *t,
                            RtTensorRef *extra, int *nextra) {
  RtError err = {{0}};
  if (td->iterations > 0 && dd == &td->data) {
    /* a block without data: `iterations` empty samples, one a step */
    memset(t, 0, sizeof *t);
    *nextra = 0;
    t->rows = td->iterations;
    return true;
  }
  if (load_data(a, td, dd, t, extra, nextra, &err)) return true;
  fprintf(stderr, "%s: error: %s\n", o->spec, err.msg);
  return false;
}

/* Before the first step: every field the step reads has the size the spec
 * gave it (IDX images of 32 x 32 pixels where the spec says 28 x 28 are
 * named with their file), and every class id is one the step can encode.
 * Fields a pipeline transforms are checked batch by batch (train.c). */
static bool check_data(Arena *a, const Options *o, const RtStep *st, const DataDesc *dd, const RtTable *t,
                       const RtPipeline *pl) {
  const char *file = dd->path ? dd->path : "the data";
  for (int i = 0; i < st->nslots; i++) {
    const RtSlot *s = &st->slots[i];
    const RtField *f = s->kind == RT_SLOT_INPUT ? rt_table_field(t, s->name) : NULL;
    if (!f || (pl && pl->n > 0 && !strcmp(s->name, pl->field))) continue;
    int64_t want = rt_slot_numel(s, 1);
    if (f->width == want) continue;
    if (f->rank == 2 && s->rank >= 3) {   /* images [rows, cols] against [B, ..., H, W] */
      fprintf(stderr, "%s: error: %s holds images of %lld x %lld pixels (%lld values each), but the spec's field "
                      "'%s' is %lld x %lld (%lld values)\n", o->spec, file, (long long)f->shape[0],
              (long long)f->shape[1], (long long)f->width, s->name, (long long)s->shape[s->rank - 2],
              (long long)s->shape[s->rank - 1], (long long)want);
      fprintf(stderr, "      = hint: are these the right files? MNIST and Fashion-MNIST images are 28 x 28\n");
    } else {
      fprintf(stderr, "%s: error: %s: field '%s' has %lld values per sample, the compiled step expects %lld\n", o->spec,
              file, s->name, (long long)f->width, (long long)want);
    }
    return false;
  }
  RtBadClass bad;
  if (!rt_find_bad_class(st, t, NULL, 0, &bad)) return true;
  /* where the value is: the line of a CSV file, the byte of an IDX label
   * file; a field that is not read from the file (a constant, concat_data)
   * by its row */
  char where[1200];
  const char *at = NULL;
  bool from_csv = false;
  for (int i = 0; i < dd->nfields; i++) from_csv |= !strcmp(dd->fields[i].name, bad.field);
  RtError lerr = {{0}};
  int64_t line;
  if (dd->path && !strcmp(dd->source, "csv") && from_csv &&
      rt_csv_row_line(dd->path, dd->header, bad.row, &line, &lerr)) {
    snprintf(where, sizeof where, "%s:%lld", dd->path, (long long)line);
    at = where;
  } else if (dd->path && (!strcmp(dd->source, "fashion_mnist") || !strcmp(dd->source, "mnist_test")) &&
             !strcmp(bad.field, "y") && labels_of(a, dd->path)) {
    /* the labels file: an 8-byte header, then one byte per label */
    snprintf(where, sizeof where, "%s, label %lld (byte %lld of the uncompressed data)", labels_of(a, dd->path),
             (long long)bad.row + 1, (long long)bad.row + 8);
    at = where;
  }
  RtError err = {{0}};
  rt_bad_class_fail(&bad, at, &err);
  fprintf(stderr, "%s: error: %s\n", o->spec, err.msg);
  return false;
}

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* `test = ds`: the best checkpoint (or the final weights) on the test data. */
static int evaluate_test(Arena *a, const Options *o, const RtProgram *rp, const TrainDesc *td, float *arena,
                         const RtTensorRef *train_extra, int ntrain_extra) {
  RtError err = {{0}};
  RtTable test = {0};
  RtTensorRef extra[4];
  int nextra = 0;
  const char *ck = td->save_best ? td->save_best : td->save_last;
  if (!ck) {
    fprintf(stderr, "%s: error: `test` needs save_best or save_last to know which weights to test\n", o->spec);
    return EXIT_USER;
  }
  if (!rt_load_program(rp, arena, ck, false, &err) || !load_data(a, td, &td->test, &test, extra, &nextra, &err)) {
    fprintf(stderr, "%s: error: %s\n", o->spec, err.msg);
    return EXIT_USER;
  }
  /* the model saw inputs normalized with the training split's statistics:
   * the test inputs get the same (as predict does) */
  if (train_extra && ntrain_extra == 2) {
    RtField *f = rt_table_field(&test, "x");
    if (f && f->width == train_extra[0].shape[0]) rt_normalize(&test, f, train_extra[0].data, train_extra[1].data);
  }
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(test.rows ? test.rows : 1));
  for (int64_t i = 0; i < test.rows; i++) idx[i] = i;
  RtRng rng;
  rt_rng_seed(&rng, td->seed);
  double loss, m[RT_MAX_METRICS];
  RtPipeline pl;
  if (!pipeline_of(&td->test, &test, &pl, &err)) {
    free(idx);
    fprintf(stderr, "%s: error: %s\n", o->spec, err.msg);
    rt_table_free(&test);
    return EXIT_USER;
  }
  if (!check_data(a, o, &rp->eval, &td->test, &test, &pl)) {
    free(idx);
    rt_table_free(&test);
    return EXIT_USER;
  }
  bool ok = rt_evaluate(rp, arena, &test, idx, test.rows, td->batch, &pl, &rng, &loss, m, &err);
  free(idx);
  if (!ok) {
    fprintf(stderr, "%s: error: %s\n", o->spec, err.msg);
    rt_table_free(&test);
    return EXIT_USER;
  }
  printf("test (%lld samples, weights of %s): test_loss %.4f", (long long)test.rows, ck, loss);
  for (int k = 0; k < rp->eval.nmetrics; k++) printf("  test_%s %.4f", rp->eval.metric_names[k], m[k]);
  printf("\n");
  rt_table_free(&test);
  return EXIT_OK;
}

/* The images of a write png_grid(path, x, rows) (one PNG) or
 * png(path, x) (one file per image, path-0000.png ...). */
static bool write_images(const PngOut *po, const float *x, int64_t n, RtError *err) {
  const char *path = po->path;
  int c = po->c, h = po->h, w = po->w;
  if (po->rows > 0) {
    /* rows: images per row, as torchvision's make_grid(nrow) */
    if (!rt_png_grid(path, x, n, c, h, w, po->rows, 2, err)) return false;
    printf("wrote %s: %lld images in a grid, %d a row\n", path, (long long)n, po->rows);
    return true;
  }
  size_t len = strlen(path);
  for (int64_t k = 0; k < n; k++) {
    char one[1100];
    snprintf(one, sizeof one, "%.*s-%04lld.png", (int)(len - 4), path, (long long)k);
    if (!rt_png_write(one, x + k * c * h * w, c, h, w, err)) return false;
  }
  printf("wrote %lld images %.*s-0000.png ...\n", (long long)n, (int)(len - 4), path);
  return true;
}

/* Ctrl-C during training: finish the step, keep the last epoch's state. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

/* --check-numerics: after every step, the first NaN or infinity. */
typedef struct {
  Compiled *c;
  Diag *d;
  bool found;
  const RtProgram *rp;   /* for the names of several steps */
} NumericsCheck;

static bool numerics_hook(void *ctx, const float *arena, int64_t n, int64_t epoch, int64_t batch, int step) {
  NumericsCheck *nc = ctx;
  if (compiled_check_numerics(nc->c, step, nc->d, arena, n)) return true;
  if (nc->rp && nc->rp->nsteps)
    fprintf(stderr, "      = note: in step %s of epoch %lld, batch %lld\n", nc->rp->steps[step].name, (long long)epoch,
            (long long)batch);
  else
    fprintf(stderr, "      = note: in epoch %lld, batch %lld\n", (long long)epoch, (long long)batch);
  nc->found = true;
  return false;
}

/* A block's `after epoch` and `after train` work: pruning, then the
 * after step's images. */
typedef struct {
  const RtProgram *rp;
  const TrainDesc *td;
} AfterWork;

static bool after_hook(void *ctx, float *arena, int when, int64_t epoch, RtError *err) {
  AfterWork *aw = ctx;
  const TrainDesc *td = aw->td;
  if (when == RT_AFTER_EPOCH && td->nprunes) {
    int64_t zero = 0, all = 0, cut = 0;
    for (int i = 0; i < td->nprunes; i++) {
      const PruneDesc *pr = &td->prunes[i];
      int64_t k = rt_prune(arena + pr->weight, arena + pr->mask, pr->numel, pr->amount);
      if (k < 0) return rt_fail(err, "out of memory pruning %s", pr->name);
      cut += k;
      all += pr->numel;
      for (int64_t j = 0; j < pr->numel; j++) zero += arena[pr->weight + j] == 0;   /* kept at 0 by the masks */
    }
    printf("pruned %lld weights after epoch %lld: %lld of %lld (%.1f%%) are now zero\n", (long long)cut,
           (long long)epoch, (long long)zero, (long long)all, all ? 100.0 * (double)zero / (double)all : 0.0);
  }
  bool any = false;
  for (int i = 0; i < td->npngs; i++) any |= td->pngs[i].each_epoch == (when == RT_AFTER_EPOCH);
  if (!any || !aw->rp->after.fn) return true;
  rt_run_after(aw->rp, arena, td->seed);
  for (int i = 0; i < td->npngs; i++) {
    const PngOut *po = &td->pngs[i];
    if (po->each_epoch != (when == RT_AFTER_EPOCH)) continue;
    if (!write_images(po, arena + po->offset, po->count > 0 ? po->count : 1, err)) return false;
  }
  return true;
}

/* nnc train SPEC: compile the block's steps, load its data, train. */
static int cmd_train(Arena *a, Diag *d, const Options *o) {
  Node *ast = load_spec(a, d, o);
  if (!ast) return EXIT_USER;
  /* the largest batch the steps are compiled for: the block's, or --batch */
  SemaOptions peek = o->sem;
  peek.check_files = o->check_files;
  if (!sema_check(a, d, ast, &peek)) return EXIT_USER;
  int64_t n_max = o->batch > 0 ? o->batch : 4096;
  double t0 = seconds_now();
  RtProgram rp = {0};
  TrainDesc td;
  Compiled *c = o->check_numerics ? compile_train_checked(a, d, ast, o->block ? o->block : "", n_max, &peek, &rp, &td)
                                  : compile_train(a, d, ast, o->block ? o->block : "", n_max, &peek, &rp, &td);
  if (!c) return EXIT_USER;
  double compile_ms = (seconds_now() - t0) * 1000;
  if (o->epochs > 0) td.epochs = o->epochs;
  if (o->batch > 0) td.batch = o->batch;
  if (o->seed >= 0) td.seed = (uint64_t)o->seed;
  if (td.batch > n_max) {
    /* compiled for 4096 at most by default; a larger batch needs --batch */
    compiled_free(c);
    fprintf(stderr, "%s: error: batch %lld is larger than %lld; pass --batch %lld\n", o->spec, (long long)td.batch,
            (long long)n_max, (long long)td.batch);
    return EXIT_USER;
  }

  RtTable table = {0};
  RtError err = {{0}};
  RtTensorRef extra[4];
  int nextra = 0;
  if (td.iterations > 0) td.batch = 1, td.epochs = 1, td.valid = 0;   /* one epoch of `iterations` steps */
  if (!load_block_data(a, o, &td, &td.data, &table, extra, &nextra)) {
    compiled_free(c);
    return EXIT_USER;
  }
  /* images: the training batches' random transforms; the held-out ones
   * get valid = ds.valid.map(...)'s, or the training ones' deterministic
   * versions */
  RtPipeline train_pl, valid_pl;
  if (!pipeline_of(&td.data, &table, &train_pl, &err) ||
      !pipeline_of(td.valid_data.source ? &td.valid_data : &td.data, &table, &valid_pl, &err)) {
    fprintf(stderr, "%s: error: %s\n", o->spec, err.msg);
    rt_table_free(&table);
    compiled_free(c);
    return EXIT_USER;
  }
  bool data_ok = check_data(a, o, &rp.train, &td.data, &table, &train_pl) &&
                 check_data(a, o, &rp.eval, &td.data, &table, &valid_pl);
  for (int k = 1; k < rp.nsteps && data_ok; k++) data_ok = check_data(a, o, &rp.steps[k], &td.data, &table, &train_pl);
  if (!data_ok) {
    rt_table_free(&table);
    compiled_free(c);
    return EXIT_USER;
  }
  int64_t params = 0;
  for (int i = 0; i < rp.npersistent; i++)
    if (rp.persistent[i].kind == RT_SLOT_PARAM) params += rt_slot_numel(&rp.persistent[i], 1);
  /* next to the checkpoint: the log of every epoch, and the run's state
   * after the last epoch (for --resume) */
  char log_path[1024] = "", state_path[1024] = "", curves_path[1024] = "";
  if (td.save_best || td.save_last) {
    const char *ck = td.save_best ? td.save_best : td.save_last;
    const char *dot = strrchr(ck, '.');
    int stem = (int)(dot ? dot - ck : (long)strlen(ck));
    snprintf(log_path, sizeof log_path, "%.*s.log.jsonl", stem, ck);
    snprintf(state_path, sizeof state_path, "%.*s.state.safetensors", stem, ck);
    snprintf(curves_path, sizeof curves_path, "%.*s.curves.png", stem, ck);
    if (!o->resume) remove(log_path);
  }
  bool resume = o->resume;
  if (resume && state_path[0] && access(state_path, F_OK) != 0) {
    printf("no saved state %s yet; starting from the beginning\n", state_path);
    resume = false;
    remove(log_path);
  }
  if (o->resume && !state_path[0]) {
    fprintf(stderr, "%s: error: --resume needs the block to save a checkpoint (save_best or save_last)\n", o->spec);
    compiled_free(c);
    rt_table_free(&table);
    return EXIT_USER;
  }
  bool tty = isatty(fileno(stdout));
  if (td.iterations > 0)
    printf("train%s%s: %lld parameters, no data: %lld iterations, seed %llu\n", o->block ? " " : "",
           o->block ? o->block : "", (long long)params, (long long)td.iterations, (unsigned long long)td.seed);
  else
    printf("train%s%s: %lld parameters, %lld samples (%g%% held out), batch %lld, %lld epochs, seed %llu\n",
           o->block ? " " : "", o->block ? o->block : "", (long long)params, (long long)table.rows, td.valid * 100,
           (long long)td.batch, (long long)td.epochs, (unsigned long long)td.seed);
  if (rp.nsteps) {
    printf("compiled %d training steps (", rp.nsteps);
    for (int k = 0; k < rp.nsteps; k++) {
      printf("%s%s", k ? ", " : "", rp.steps[k].name);
      if (rp.steps[k].every > 1) printf(" every %lld batches", (long long)rp.steps[k].every);
    }
    printf(") in %.0f ms\n", compile_ms);
  } else {
    printf("compiled the training and evaluation steps in %.0f ms\n", compile_ms);
  }
  fflush(stdout);
  char seed_text[32];
  snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)td.seed);
  RtMeta meta[] = {{"format", "nnc"}, {"spec", o->spec}, {"seed", seed_text}};
  RtTrainConfig cfg = {
      .seed = td.seed, .batch = td.batch, .epochs = td.epochs, .early_stop = td.early_stop,
      .valid_fraction = td.valid, .monitor = td.monitor, .save_best = td.save_best, .save_last = td.save_last,
      .log_path = log_path[0] ? log_path : NULL, .curves_path = curves_path[0] ? curves_path : NULL, .schedule = td.schedule, .out = stdout, .tty = tty,
      .print_every = td.epochs > 50 ? td.epochs / 30 : 1, .meta = meta, .nmeta = 3, .extra = extra,
      .nextra = nextra, .state_path = state_path[0] ? state_path : NULL,
      .resume_path = resume ? state_path : NULL, .init_path = o->init, .nloads = td.nloads};
  for (int i = 0; i < td.nloads; i++) {
    cfg.load_paths[i] = td.load_paths[i];
    cfg.load_prefixes[i] = td.load_prefixes[i];
    cfg.load_vars[i] = td.load_vars[i];
  }
  cfg.train_pipeline = &train_pl;
  cfg.valid_pipeline = &valid_pl;
  AfterWork aw = {&rp, &td};
  if (rp.after.fn || td.nprunes) {
    cfg.after = after_hook;
    cfg.after_ctx = &aw;
  }
  NumericsCheck nc = {c, d, false, &rp};
  if (o->check_numerics) {
    cfg.after_step = numerics_hook;
    cfg.after_step_ctx = &nc;
  }
  RtTrainResult res;
  float *final = calloc((size_t)rp.arena_floats, sizeof(float));
  res.arena_out = NULL;
  cfg.interrupted = &interrupted;
  signal(SIGINT, on_sigint);
  bool ok = final && rt_train(&rp, &cfg, &table, &res, &err);
  signal(SIGINT, SIG_DFL);
  int rc = EXIT_OK;
  if (!ok && res.interrupted) {
    fprintf(stderr, "\ninterrupted in epoch %lld", (long long)res.epochs_run + 1);
    if (state_path[0] && res.epochs_run > 0)
      fprintf(stderr, "; the state after epoch %lld is in %s\ncontinue with: nnc train %s%s%s --resume\n",
              (long long)res.epochs_run, state_path, o->spec, o->block ? " --block " : "", o->block ? o->block : "");
    else
      fprintf(stderr, "; no epoch finished, so there is nothing to resume\n");
    rc = EXIT_USER;
  } else if (!ok && res.stopped) {
    rc = EXIT_USER;   /* the check said where */
  } else if (!ok) {
    fprintf(stderr, "%s: error: %s\n", o->spec, final ? err.msg : "out of memory");
    rc = EXIT_USER;
    if (res.diverged && !o->check_numerics) {
      /* training is deterministic: run it again, unfused, checking every
       * value after every step, to name the op where it went wrong */
      fprintf(stderr, "nnc: running again with every intermediate value checked, to find where it first appears...\n");
      RtProgram cp = {0};
      TrainDesc ctd;
      Compiled *cc = compile_train_checked(a, d, ast, o->block ? o->block : "", n_max, &peek, &cp, &ctd);
      if (cc) {
        NumericsCheck cnc = {cc, d, false, &cp};
        RtTrainConfig ccfg = cfg;
        ccfg.save_best = ccfg.save_last = ccfg.log_path = ccfg.state_path = NULL;
        ccfg.resume_path = NULL;
        ccfg.out = fopen("/dev/null", "w");
        ccfg.after_step = numerics_hook;
        ccfg.after_step_ctx = &cnc;
        RtTrainResult cres;
        RtError cerr = {{0}};
        rt_train(&cp, &ccfg, &table, &cres, &cerr);
        if (ccfg.out) fclose(ccfg.out);
        if (!cnc.found)
          fprintf(stderr, "nnc: the unfused run stayed finite (rounding differs slightly without fusion); "
                          "try nnc train --check-numerics\n");
        compiled_free(cc);
      }
    }
  } else {
    /* without held-out data the runtime follows the training loss */
    const char *followed = td.valid <= 0                  ? "train_loss"
                           : !strcmp(td.monitor, "loss") ? "valid_loss"
                                                         : arena_printf(a, "valid_%s", td.monitor);
    if (td.iterations > 0)
      printf("done: %lld iterations, mean loss %.6g", (long long)td.iterations, res.last_train_loss);
    else if (rp.nsteps)   /* no one loss says which epoch was best */
      printf("done: %lld epoch%s", (long long)res.epochs_run, res.epochs_run == 1 ? "" : "s");
    else
      printf("best %s %.6g at epoch %lld of %lld", followed, res.best, (long long)res.best_epoch,
             (long long)res.epochs_run);
    if (td.save_best) printf("; saved %s", td.save_best);
    else if (rp.nsteps && td.save_last) printf("; saved %s", td.save_last);
    printf("\n");
    if (td.test.source) rc = evaluate_test(a, o, &rp, &td, final, extra, nextra);
  }
  free(final);
  rt_table_free(&table);
  compiled_free(c);
  return rc;
}

/* ---- nnc predict ------------------------------------------------------ */

/* nnc predict SPEC: load the trained weights, run the predict block's step
 * over its data, write its CSV file (atomically). */
static int cmd_predict(Arena *a, Diag *d, const Options *o) {
  Node *ast = load_spec(a, d, o);
  if (!ast) return EXIT_USER;
  int64_t n_max = o->batch > 0 ? o->batch : 1024;
  RtProgram rp = {0};
  PredictDesc pd;
  SemaOptions base = o->sem;
  base.check_files = o->check_files;
  Compiled *c = compile_predict(a, d, ast, o->block ? o->block : "", n_max, &base, &rp, &pd);
  if (!c) return EXIT_USER;
  RtError err = {{0}};
  RtTable table = {0};
  RtCheckpoint ck = {0};
  float *arena = calloc((size_t)rp.arena_floats, sizeof(float));
  float *cols[24] = {0};
  int rc = EXIT_USER;
  /* --ckpt replaces the block's (first) load(...) */
  if (o->ckpt && pd.nloads == 0) pd.load_vars[0] = "", pd.load_prefixes[pd.nloads++] = "";
  if (o->ckpt) pd.load_paths[0] = o->ckpt;
  const char *ckpath = pd.nloads ? pd.load_paths[0] : NULL;
  if (!arena) goto done;
  if (!ckpath) {
    fprintf(stderr, "%s: error: the predict block loads no weights; add load(net, \"file.safetensors\") or --ckpt FILE\n",
            o->spec);
    goto done;
  }
  for (int i = 0; i < pd.nloads; i++)
    if (!rt_load_model(&rp, arena, pd.load_paths[i], pd.load_prefixes[i], pd.load_vars[i], &err)) {
      if (access(pd.load_paths[i], F_OK) == 0)
        ;
      else if (o->ckpt && i == 0)   /* a path the user typed, not one a train block writes */
        snprintf(err.msg + strlen(err.msg), sizeof err.msg - strlen(err.msg),
                 "\n      = hint: the file given with --ckpt does not exist; its path is relative to the current "
                 "folder, not to the spec's");
      else
        snprintf(err.msg + strlen(err.msg), sizeof err.msg - strlen(err.msg),
                 "\n      = hint: train it first (the train block that saves %s)", pd.load_paths[i]);
      goto fail;
    }
  TrainDesc td = {0};
  RtTensorRef extra[4];
  int nextra = 0;
  /* normalize() uses the training data's statistics, kept in the checkpoint
   * (normalize(mean, std) with numbers needs none) */
  DataDesc plain = pd.data;
  plain.ntransforms = 0;
  for (int i = 0; i < pd.data.ntransforms; i++)
    if (strcmp(pd.data.transforms[i].name, "normalize") || pd.data.transforms[i].given)
      plain.transforms[plain.ntransforms++] = pd.data.transforms[i];
  if (!load_data(a, &td, &plain, &table, extra, &nextra, &err)) goto fail;
  if (plain.ntransforms != pd.data.ntransforms) {
    if (!rt_load_safetensors(ckpath, &ck, &err)) goto fail;
    const RtTensor *m = rt_checkpoint_find(&ck, "normalize.x.mean"), *sd = rt_checkpoint_find(&ck, "normalize.x.std");
    RtField *f = rt_table_field(&table, "x");
    if (!m || !sd || !f || m->numel != f->width) {
      rt_fail(&err, "%s has no normalization statistics for x; was it trained with normalize()?", ckpath);
      goto fail;
    }
    rt_normalize(&table, f, m->data, sd->data);
  }
  RtCsvFormat fmt[16];
  for (int i = 0; i < pd.ncols; i++) {
    cols[i] = calloc((size_t)(table.rows ? table.rows : 1), sizeof(float));
    if (!cols[i]) goto done;
    fmt[i] = pd.col_int[i] ? RT_CSV_INT : RT_CSV_FLOAT;
    if (pd.col_width[i] != 1) {
      rt_fail(&err, "column '%s' has %lld values per sample; a CSV column holds one", pd.col_names[i],
              (long long)pd.col_width[i]);
      goto fail;
    }
  }
  /* the images of write png_grid(...) follow the CSV columns */
  int64_t offsets[24], widths[24];
  for (int i = 0; i < pd.ncols; i++) offsets[i] = pd.col_offset[i], widths[i] = 1;
  for (int i = 0; i < pd.npngs; i++) {
    int k = pd.ncols + i;
    offsets[k] = pd.pngs[i].offset;
    widths[k] = (int64_t)pd.pngs[i].c * pd.pngs[i].h * pd.pngs[i].w;
    cols[k] = calloc((size_t)(table.rows * widths[k] + 1), sizeof(float));
    if (!cols[k]) {
      rt_fail(&err, "out of memory for the images of %s", pd.pngs[i].path);
      goto fail;
    }
  }
  RtPipeline pl;
  if (!pipeline_of(&pd.data, &table, &pl, &err)) goto fail;
  if (!check_data(a, o, &rp.train, &pd.data, &table, &pl)) goto done;
  double metrics[RT_MAX_METRICS];
  if (!rt_predict(&rp, arena, &table, pd.batch, &pl, pd.ncols + pd.npngs, offsets, widths, cols, metrics, &err))
    goto fail;
  if (pd.ncols) {
    const char *out = o->out ? o->out : pd.write_path;
    if (!rt_write_csv_atomic(out, pd.col_names, (const float *const *)cols, fmt, pd.ncols, table.rows, &err)) goto fail;
    printf("wrote %s: %lld rows (%s", out, (long long)table.rows, pd.col_names[0]);
    for (int i = 1; i < pd.ncols; i++) printf(",%s", pd.col_names[i]);
    printf(") with the weights of %s", ckpath);
    for (int i = 1; i < pd.nloads; i++) printf(" and %s", pd.load_paths[i]);
    printf("\n");
  }
  for (int i = 0; i < pd.npngs; i++) {
    if (!write_images(&pd.pngs[i], cols[pd.ncols + i], table.rows, &err)) goto fail;
  }
  if (rp.train.nmetrics > 0) {
    printf("metrics over the %lld rows:", (long long)table.rows);
    for (int k = 0; k < rp.train.nmetrics; k++) printf("  %s %.4f", rp.train.metric_names[k], metrics[k]);
    printf("\n");
  }
  rc = EXIT_OK;
  goto done;
fail:
  fprintf(stderr, "%s: error: %s\n", o->spec, err.msg);
done:
  for (int i = 0; i < 16; i++) free(cols[i]);
  free(arena);
  rt_checkpoint_free(&ck);
  rt_table_free(&table);
  compiled_free(c);
  return rc;
}

/* ---- nnc bench -------------------------------------------------------- */

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* nnc bench SPEC: the training step alone, on one batch of real data. */
static int cmd_bench(Arena *a, Diag *d, const Options *o) {
  Node *ast = load_spec(a, d, o);
  if (!ast) return EXIT_USER;
  SemaOptions base = o->sem;
  base.check_files = o->check_files;
  TrainDesc td;
  if (!describe_train(a, d, ast, o->block ? o->block : "", &base, &td)) return EXIT_USER;
  int64_t batch = o->batch > 0 ? o->batch : td.batch;
  double t0 = seconds_now();
  RtProgram rp = {0};
  compile_profile_kernels(o->kernels);
  Compiled *c = compile_train_step(a, d, ast, o->block ? o->block : "", batch, &base, &rp, &td);
  compile_profile_kernels(false);
  if (!c) return EXIT_USER;
  double compile_ms = (seconds_now() - t0) * 1000;
  RtTable table = {0};
  RtTensorRef extra[4];
  int nextra = 0;
  int rc = EXIT_USER;
  float *arena = calloc((size_t)rp.arena_floats, sizeof(float));
  if (!arena) {
    fprintf(stderr, "%s: error: out of memory\n", o->spec);
    goto done;
  }
  if (!load_block_data(a, o, &td, &td.data, &table, extra, &nextra)) goto done;
  if (table.rows < batch) batch = table.rows;
  {
    RtRng rng;
    rt_rng_seed(&rng, td.seed);
    rt_init_params(&rp, arena, &rng);
    /* fill the step's inputs from the first rows, once: only the step is
     * timed; a block of several steps: each step's, and a step is all of
     * them once */
    int nsteps = rp.nsteps ? rp.nsteps : 1;
    const RtStep *steps = rp.nsteps ? rp.steps : &rp.train;
    for (int k = 0; k < nsteps; k++)
      for (int i = 0; i < steps[k].nslots; i++) {
        const RtSlot *s = &steps[k].slots[i];
        float *dst = arena + s->offset;
        int64_t e = rt_slot_numel(s, batch);
        RtField *f = rt_table_field(&table, s->name);
        double lr = rp.nsteps ? steps[k].schedule.lr : td.schedule.lr;
        if (!strcmp(s->name, "n")) dst[0] = (float)batch;
        else if (!strcmp(s->name, "lr")) dst[0] = (float)(lr * 1e-3);  /* small: stays finite */
        else if (f && f->width * batch == e) memcpy(dst, f->data, sizeof(float) * (size_t)e);
        else
          for (int64_t q = 0; q < e; q++) dst[q] = rt_rng_uniform(&rng);
      }
    enum { WARMUP = 5, REPEATS = 11 };
    int64_t inner = 1;
    double once = seconds_now();
    for (int k = 0; k < nsteps; k++) steps[k].fn(arena, batch);
    once = seconds_now() - once;
    while ((double)inner * once < 0.05 && inner < 100000) inner *= 2;   /* each measurement at least ~50 ms */
    for (int w = 0; w < WARMUP; w++)
      for (int k = 0; k < nsteps; k++) steps[k].fn(arena, batch);
    compiled_profile_reset();
    double ms[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
      double s0 = seconds_now();
      for (int64_t q = 0; q < inner; q++)
        for (int k = 0; k < nsteps; k++) steps[k].fn(arena, batch);
      ms[r] = (seconds_now() - s0) * 1000 / (double)inner;
    }
    qsort(ms, REPEATS, sizeof ms[0], cmp_double);
    int64_t params = 0;
    for (int i = 0; i < rp.npersistent; i++)
      if (rp.persistent[i].kind == RT_SLOT_PARAM) params += rt_slot_numel(&rp.persistent[i], 1);
    printf("bench %s%s%s: %lld parameters, batch %lld\n", o->spec, o->block ? " --block " : "", o->block ? o->block : "",
           (long long)params, (long long)batch);
    if (rp.nsteps) {
      printf("  steps     %d, each once a step:", rp.nsteps);
      for (int k = 0; k < rp.nsteps; k++) printf(" %s", rp.steps[k].name);
      printf("\n");
    }
    printf("  compile   %.0f ms (the training step%s: check, lower, optimize, fuse, plan, LLVM, JIT)\n", compile_ms,
           rp.nsteps ? "s" : "");
    printf("  blas      %s\n", cg_blas_info());
    printf("  step      median %.4f ms, range %.4f .. %.4f ms (%d runs of %lld steps)\n", ms[REPEATS / 2], ms[0],
           ms[REPEATS - 1], REPEATS, (long long)inner);
    printf("  rate      %.0f samples/s, %.0f steps/s\n", (double)batch * 1000 / ms[REPEATS / 2], 1000 / ms[REPEATS / 2]);
    for (int k = 0; o->kernels && k < (rp.nsteps ? rp.nsteps : 1); k++) {
      if (rp.nsteps) printf("  the kernels of step %s:\n", rp.steps[k].name);
      compiled_print_profile(stdout, c, k, REPEATS * inner, 15);
    }
    rc = EXIT_OK;
  }
done:
  free(arena);
  rt_table_free(&table);
  compiled_free(c);
  return rc;
}

/* ---- nnc dot ---------------------------------------------------------- */

static int cmd_dot(Arena *a, Diag *d, const Options *o) {
  const char *stage = o->stage ? o->stage : "graph";
  if (strcmp(stage, "graph") && strcmp(stage, "grad") && strcmp(stage, "opt"))
    return usage_error("nnc dot draws --stage=graph, grad or opt, not '%s'", stage, NULL);
  Node *ast = load_spec(a, d, o);
  if (!ast) return EXIT_USER;
  SemaOptions sopt = o->sem;
  sopt.check_files = o->check_files;
  sopt.lower_block = o->block ? o->block : "";
  sopt.lower_training = 1;
  sopt.lower_update = strcmp(stage, "graph") != 0;
  Program *p = sema_check(a, d, ast, &sopt);
  if (!p || d->nerrors) return EXIT_USER;
  if (!strcmp(stage, "opt")) program_simplify(p);
  return program_print_dot(stdout, p) ? EXIT_OK : EXIT_USER;
}

/* ---- nnc gradcheck ---------------------------------------------------- */

/* nnc gradcheck SPEC: the compiled gradients of a train block against
 * float64 finite differences, on one small batch of its real data. */
static int cmd_gradcheck(Arena *a, Diag *d, const Options *o) {
  Node *ast = load_spec(a, d, o);
  if (!ast) return EXIT_USER;
  /* the data: the block's data set, as training loads it */
  TrainDesc td;
  SemaOptions base = o->sem;
  base.check_files = o->check_files;
  if (!describe_train(a, d, ast, o->block ? o->block : "", &base, &td)) return EXIT_USER;
  RtTable table = {0};
  RtTensorRef extra[4];
  int nextra = 0;
  if (!load_block_data(a, o, &td, &td.data, &table, extra, &nextra)) return EXIT_USER;
  int64_t n = table.rows < 8 ? table.rows : 8;
  const char *names[16];
  const float *inputs[16];
  int ninputs = 0;
  for (int i = 0; i < table.nfields && ninputs < 16; i++) {
    names[ninputs] = table.fields[i].name;
    inputs[ninputs++] = table.fields[i].data;   /* the first n rows */
  }
  GradReport rep[256];
  int per = 24;
  int nrep = gradcheck_block(a, d, ast, o->block ? o->block : "", &base, names, inputs, ninputs, n, per, rep, 256);
  rt_table_free(&table);
  if (nrep < 0) return EXIT_USER;
  printf("gradcheck %s: a batch of %lld samples; about %d elements of each parameter;\n"
         "compiled float32 gradients against float64 central differences of the loss\n\n",
         o->spec, (long long)n, per);
  /* the columns as wide as their widest entry */
  char (*shapes)[64] = arena_alloc(a, sizeof *shapes * (size_t)(nrep + 1));
  int w = 9, sw = 12;
  for (int i = 0; i < nrep; i++) {
    if ((int)strlen(rep[i].name) > w) w = (int)strlen(rep[i].name);
    strcpy(shapes[i], "[");
    for (int k = 0; k < rep[i].rank; k++)
      snprintf(shapes[i] + strlen(shapes[i]), 64 - strlen(shapes[i]), "%s%lld", k ? ", " : "", (long long)rep[i].shape[k]);
    strncat(shapes[i], "]", 64 - strlen(shapes[i]) - 1);
    if ((int)strlen(shapes[i]) > sw) sw = (int)strlen(shapes[i]);
  }
  printf("  %-*s  %-*s  %7s  %13s\n", w, "parameter", sw, "shape", "checked", "max rel error");
  double worst = 0;
  int64_t kinks = 0, checked = 0;
  for (int i = 0; i < nrep; i++) {
    /* a block of several steps: each step's parameters under its name */
    if (rep[i].step && (i == 0 || !rep[i - 1].step || strcmp(rep[i].step, rep[i - 1].step) != 0))
      printf("  step %s (the parameters its optimizer updates)\n", rep[i].step);
    printf("  %-*s  %-*s  %7lld  %13.2e\n", w, rep[i].name, sw, shapes[i], (long long)rep[i].checked,
           rep[i].max_rel_err);
    if (rep[i].max_rel_err > worst) worst = rep[i].max_rel_err;
    kinks += rep[i].kinks;
    checked += rep[i].checked;
  }
  if (kinks)
    printf("\n%lld of the %lld elements sit at a kink (a ReLU's or a max's input crossing over within the step):\n"
           "their one-sided differences disagree, and the compiled gradient is checked to lie between them\n",
           (long long)kinks, (long long)checked);
  /* float32 gradients carry about 1e-6 relative error per operation */
  const double tol = 1e-2;
  printf("\n%s: worst relative error %.2e (tolerance %.0e)\n", worst <= tol ? "ok" : "FAILED", worst, tol);
  return worst <= tol ? EXIT_OK : EXIT_USER;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc < 2) {
    print_main_help(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    print_main_help(stdout);
    return EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("nnc %s\n", NNC_VERSION);
    return EXIT_OK;
  }
  if (strcmp(cmd, "help") == 0) {
    if (argc < 3 || argv[2][0] == '-') {
      print_main_help(stdout);
      return EXIT_OK;
    }
    const Command *c = find_command(argv[2]);
    if (!c) return usage_error("no command '%s'", argv[2], NULL);
    print_command_help(stdout, c);
    return EXIT_OK;
  }

  const Command *c = find_command(cmd);
  if (!c) {
    const char *names[NCOMMANDS];
    for (int i = 0; i < NCOMMANDS; i++) names[i] = commands[i].name;
    const char *near = closest_name(cmd, names, NCOMMANDS);
    char hint[96];
    snprintf(hint, sizeof hint, "did you mean 'nnc %s'?", near ? near : "");
    if (cmd[0] == '-') return usage_error("expected a command before '%s'", cmd, "nnc check SPEC");
    return usage_error("unknown command '%s'", cmd, near ? hint : NULL);
  }

  Options o = {.max_errors = 20, .color = -1, .check_files = 1, .epochs = -1, .batch = -1, .seed = -1};
  int rc = parse_options(&o, argc, argv);
  if (rc != EXIT_OK) return rc;
  if (o.help) {
    print_command_help(stdout, c);
    return EXIT_OK;
  }
  if (!c->built) {
    fprintf(stderr, "nnc: '%s' is not built yet; 'nnc check' and 'nnc ir --stage=ast' are\n", cmd);
    return EXIT_USAGE;
  }
  if (!o.spec) {
    fprintf(stderr, "nnc: error: '%s' needs a spec file\nUsage: nnc %s %s\n", cmd, cmd, c->usage);
    return EXIT_USAGE;
  }
  if (o.stage && strcmp(cmd, "ir") != 0 && strcmp(cmd, "dot") != 0)
    return usage_error("--stage is an option of 'nnc ir' and 'nnc dot', not of '%s'", cmd, NULL);

  Arena *a = arena_new();
  Diag d;
  diag_init(&d, stderr, o.max_errors);
  d.color = o.color >= 0 ? o.color : isatty(fileno(stderr)) && !getenv("NO_COLOR");

  rc = !strcmp(cmd, "ir")        ? cmd_ir(a, &d, &o)
       : !strcmp(cmd, "train")   ? cmd_train(a, &d, &o)
       : !strcmp(cmd, "predict") ? cmd_predict(a, &d, &o)
       : !strcmp(cmd, "gradcheck") ? cmd_gradcheck(a, &d, &o)
       : !strcmp(cmd, "dot")     ? cmd_dot(a, &d, &o)
       : !strcmp(cmd, "bench")   ? cmd_bench(a, &d, &o)
                                 : cmd_check(a, &d, &o);

  if (fflush(stdout) != 0 && rc == EXIT_OK) {
    fprintf(stderr, "nnc: cannot write the output: %s\n", strerror(errno));
    rc = EXIT_USER;
  }
  arena_free(a);
  return rc;
}
