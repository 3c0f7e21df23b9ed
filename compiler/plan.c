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

bool plan_memory(Graph *g, const bool *materialized, const int *runs_at, int64_t n_max, int64_t floor, MemPlan *out) {
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
  /* another step's persistent buffers (an optimizer's moments the
   * evaluation step does not have) must not be overwritten */
  if (off < floor) off = floor;
  for (int i = 0; i < nn; i++) {
    IrNode *x = g->nodes.items[i];
    if (x->op == IR_INPUT || x->op == IR_RAND) {
      x->offset = off;
      off = align16(off + ir_numel(x, n_max));
    }
  }
  out->inputs_end = off;

  /* Liveness counts in kernel time: a fused kernel runs as a whole at its
   * last node (runs_at), so a buffer is written at its producer's runs_at
   * and read until the latest runs_at of its readers; outputs live to the
   * end, and a view keeps its source alive as long as itself. */
  int *when = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
  int *last = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
  if (!when || !last) nnc_die(__FILE__, __LINE__, "out of memory");
  for (int i = 0; i < nn; i++) {
    when[i] = runs_at ? runs_at[i] : i;
    last[i] = when[i];
  }
  for (int i = 0; i < nn; i++) {
    IrNode *x = g->nodes.items[i];
    for (int s = 0; s < 3; s++)
      if (x->src[s] && last[x->src[s]->id] < when[i]) last[x->src[s]->id] = when[i];
  }
  for (int i = 0; i < g->outputs.len; i++) last[((IrNode *)g->outputs.items[i])->id] = nn;
  for (int i = nn - 1; i >= 0; i--) {
    IrNode *x = g->nodes.items[i];
    if (x->op == IR_RESHAPE && last[x->src[0]->id] < last[i]) last[x->src[0]->id] = last[i];
  }

  /* temporaries in (runs_at, id) order; at each time, place everything
   * computed then, and only after that free what was last read then (so no
   * kernel's output overlaps one of its inputs) */
  Block *free_list = malloc(sizeof(Block) * (size_t)(nn + 1));
  int *order = malloc(sizeof(int) * (size_t)(nn + 1));
  if (!free_list || !order) nnc_die(__FILE__, __LINE__, "out of memory");
  int nfree = 0, norder = 0;
  int64_t top = off;
  for (int i = 0; i < nn; i++) {
    IrNode *x = g->nodes.items[i];
    x->last_use = last[i];
    if (x->op == IR_RESHAPE) continue;   /* placed below, with its source */
    if (ir_op_kind(x->op) == OPK_LEAF || x->op == IR_ASSIGN) continue;
    if (materialized && !materialized[i]) continue;
    order[norder++] = i;
  }
  /* insertion sort by (when, id): nearly sorted already */
  for (int k = 1; k < norder; k++) {
    int v = order[k], j = k - 1;
    while (j >= 0 && (when[order[j]] > when[v] || (when[order[j]] == when[v] && order[j] > v))) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = v;
  }
  for (int k = 0; k < norder;) {
    int t = when[order[k]];
    int group_end = k;
    while (group_end < norder && when[order[group_end]] == t) group_end++;
    for (int q = k; q < group_end; q++) {
      IrNode *x = g->nodes.items[order[q]];
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
    }
    /* free the temporaries whose last reader ran at time t (or earlier,
     * for the ones placed in this group and never read) */
    for (int q = 0; q < group_end; q++) {
      IrNode *y = g->nodes.items[order[q]];
      if (y->offset < 0 || last[y->id] > t || y->last_use == -1) continue;
      free_list[nfree].off = y->offset;
      free_list[nfree].size = align16(ir_numel(y, n_max));
      nfree++;
      y->last_use = -1;   /* freed: not again */
    }
    k = group_end;
  }
  for (int i = 0; i < nn; i++) {
    IrNode *x = g->nodes.items[i];
    if (x->last_use == -1) x->last_use = last[i];
    if (x->op == IR_RESHAPE) x->offset = x->src[0]->offset;  /* views share their source's buffer */
  }
  /* the convolutions' columns and blocks, the split reductions' partial
   * results: one region, since kernels run one at a time */
  int64_t scratch = 0;
  for (int i = 0; i < nn; i++) {
    int64_t need = ir_scratch(g->nodes.items[i], n_max);
    if (need > scratch) scratch = need;
  }
  g->scratch = scratch ? top : -1;
  out->scratch = scratch;
  out->size = top + align16(scratch);
  free(when);
  free(last);
  free(free_list);
  free(order);
  return true;
}

void plan_print(FILE *outf, const Graph *g, const MemPlan *p) {
  Arena *a = arena_new();
  fprintf(outf, "arena: %lld floats for a batch of %lld (%.1f KiB); persistent %lld, inputs to %lld\n",
          (long long)p->size, (long long)p->n_max, (double)p->size * 4 / 1024, (long long)p->persistent,
          (long long)p->inputs_end);
  if (p->scratch)
    fprintf(outf, "  scratch      @%-10lld %-10lld %s\n", (long long)g->scratch, (long long)p->scratch,
            "convolutions' columns and blocks, split reductions' partial results");
  for (int i = 0; i < g->nodes.len; i++) {
    const IrNode *x = g->nodes.items[i];
    if (x->offset < 0 || x->op == IR_RESHAPE) continue;
    fprintf(outf, "  %%%-5d %-12s @%-10lld %-10lld %-16s live to %%%d%s%s\n", x->id, ir_op_name(x->op),
            (long long)x->offset, (long long)ir_numel(x, p->n_max), ttype_str(a, x->dtype, &x->shape), x->last_use,
            x->name ? "  " : "", x->name ? x->name : "");
  }
  arena_free(a);
}
