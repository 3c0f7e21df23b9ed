/*
 * plan.c — the memory plan: where every tensor of a step lives in one arena.
 *
 * The arena starts with the persistent buffers (parameters, then state:
 * running statistics and optimizer moments), in slot order, so that the
 * training step and the evaluation step of a block — lowered from the same
 * forward code — agree on where each parameter is. Then come the inputs of
 * this step (batch fields, scalars, noise), then the temporaries, placed by
 * liveness: a buffer is reused once the last node that reads it has run.
 * Sizes are computed for the largest batch; a smaller batch uses a prefix.
 */
#include "compiler/ir.h"

#include <stdlib.h>
#include <string.h>

/* Elements of a node for a batch of n. */
int64_t ir_numel(const IrNode *node, int64_t n) {
  int64_t e = 1;
  for (int i = 0; i < node->shape.rank; i++) {
    Dim d = node->shape.d[i];
    int64_t v = d.c;
    for (int k = 0; k < d.nsym; k++) v *= n;
    e *= v;
  }
  return e;
}

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

typedef struct {
  int64_t off, size;
} Block;

bool plan_memory(Graph *g, const bool *materialized, int64_t n_max, MemPlan *out) {
  memset(out, 0, sizeof *out);
  out->n_max = n_max;
  int nn = g->nodes.len;
  /* persistent: params then state, by slot */
  int64_t off = 0;
  for (int pass = 0; pass < 2; pass++) {
    int max_slot = -1;
    for (int i = 0; i < nn; i++) {
      IrNode *x = g->nodes.items[i];
      if (x->op == (pass ? IR_STATE : IR_PARAM) && x->slot > max_slot) max_slot = x->slot;
    }
    for (int sl = 0; sl <= max_slot; sl++)
      for (int i = 0; i < nn; i++) {
        IrNode *x = g->nodes.items[i];
        if (x->op != (pass ? IR_STATE : IR_PARAM) || x->slot != sl) continue;
        x->offset = off;
        off = align16(off + ir_numel(x, n_max));
      }
  }
  out->persistent = off;
  for (int i = 0; i < nn; i++) {
    IrNode *x = g->nodes.items[i];
    if (x->op == IR_INPUT || x->op == IR_RAND) {
      x->offset = off;
      off = align16(off + ir_numel(x, n_max));
    }
  }
  out->inputs_end = off;

  /* last use of every node (outputs live to the end; views extend their source) */
  int *last = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
  if (!last) nnc_die(__FILE__, __LINE__, "out of memory");
  for (int i = 0; i < nn; i++) last[i] = i;
  for (int i = 0; i < nn; i++) {
    IrNode *x = g->nodes.items[i];
    for (int s = 0; s < 3; s++)
      if (x->src[s] && last[x->src[s]->id] < i) last[x->src[s]->id] = i;
  }
  for (int i = 0; i < g->outputs.len; i++) last[((IrNode *)g->outputs.items[i])->id] = nn;
  for (int i = nn - 1; i >= 0; i--) {
    IrNode *x = g->nodes.items[i];
    if (x->op == IR_RESHAPE && last[x->src[0]->id] < last[i]) last[x->src[0]->id] = last[i];
  }

  /* temporaries: first fit in a list of free blocks above the inputs */
  Block *free_list = malloc(sizeof(Block) * (size_t)(nn + 1));
  int nfree = 0;
  int64_t top = off;
  int *dying = calloc((size_t)nn + 1, sizeof(int));
  IrNode **owner = calloc((size_t)nn + 1, sizeof *owner);
  if (!free_list || !dying || !owner) nnc_die(__FILE__, __LINE__, "out of memory");
  for (int i = 0; i < nn; i++) {
    IrNode *x = g->nodes.items[i];
    x->last_use = last[i];
    OpKindIR k = ir_op_kind(x->op);
    if (k == OPK_LEAF || x->op == IR_ASSIGN) continue;
    if (x->op == IR_RESHAPE) {
      x->offset = x->src[0]->offset;
      continue;
    }
    if (materialized && !materialized[i]) continue;
    int64_t size = align16(ir_numel(x, n_max));
    int best = -1;
    for (int f = 0; f < nfree; f++)
      if (free_list[f].size >= size && (best < 0 || free_list[f].size < free_list[best].size)) best = f;
    if (best >= 0) {
      x->offset = free_list[best].off;
      free_list[best].off += size;
      free_list[best].size -= size;
      if (free_list[best].size == 0) free_list[best] = free_list[--nfree];
    } else {
      x->offset = top;
      top += size;
    }
    /* blocks whose last reader is this node become free after it */
    for (int j = 0; j < i; j++) {
      IrNode *y = g->nodes.items[j];
      if (y->last_use != i || ir_op_kind(y->op) == OPK_LEAF || y->op == IR_ASSIGN || y->op == IR_RESHAPE ||
          y->offset < off || (materialized && !materialized[j]))
        continue;
      free_list[nfree].off = y->offset;
      free_list[nfree].size = align16(ir_numel(y, n_max));
      nfree++;
    }
  }
  out->size = top;
  free(last);
  free(free_list);
  free(dying);
  free(owner);
  return true;
}

void plan_print(FILE *outf, const Graph *g, const MemPlan *p) {
  Arena *a = arena_new();
  fprintf(outf, "arena: %lld floats for a batch of %lld (%.1f KiB); persistent %lld, inputs to %lld\n",
          (long long)p->size, (long long)p->n_max, (double)p->size * 4 / 1024, (long long)p->persistent,
          (long long)p->inputs_end);
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    if (x->offset < 0 || x->op == IR_RESHAPE) continue;
    fprintf(outf, "  %%%-5d %-12s @%-10lld %-10lld %-16s live to %%%d%s%s\n", x->id, ir_op_name(x->op),
            (long long)x->offset, (long long)ir_numel(x, p->n_max), ttype_str(a, x->dtype, &x->shape), x->last_use,
            x->name ? "  " : "", x->name ? x->name : "");
  }
  arena_free(a);
}
