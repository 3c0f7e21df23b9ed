/*
 * summary.c — what `nnc check` prints: for each model a layer table in the
 * spirit of Keras' model.summary() (name, type, output shape, parameters,
 * FLOPs per sample), then what each train and predict block will do.
 */
#include "compiler/sema_int.h"

#include <string.h>

/* 1234567 -> "1,234,567" */
static const char *grouped(char *buf, size_t n, int64_t v) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%lld", (long long)(v < 0 ? -v : v));
  size_t len = strlen(tmp), k = 0;
  if (v < 0 && k < n - 1) buf[k++] = '-';
  for (size_t i = 0; i < len && k < n - 1; i++) {
    if (i > 0 && (len - i) % 3 == 0 && k < n - 1) buf[k++] = ',';
    buf[k++] = tmp[i];
  }
  buf[k] = 0;
  return buf;
}

static const char *flops_str(Arena *a, Dim f) {
  char buf[64];
  grouped(buf, sizeof buf, f.c);
  if (f.nsym == 0) return arena_strdup(a, buf);
  Dim sym = f;
  sym.c = 1;
  return arena_printf(a, "%s·%s", buf, dim_str(a, sym));
}

static int utf8_width(const char *s) {
  int w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) w++;
  return w;
}

static void pad(FILE *out, const char *s, int width, bool right) {
  int w = utf8_width(s);
  if (right)
    for (int i = w; i < width; i++) fputc(' ', out);
  fputs(s, out);
  if (!right)
    for (int i = w; i < width; i++) fputc(' ', out);
}

static bool is_submodel(const Program *p, const Layer *m) {
  (void)p;
  return m->owned;
}

static void print_model(FILE *out, Arena *a, const Layer *m, const char *used) {
  fprintf(out, "model %s", m->desc);
  if (used && *used) fprintf(out, "  (%s)", used);
  fputc('\n', out);
  const char *head[5] = {"layer", "type", "output", "params", "FLOPs/sample"};
  int w[5];
  for (int i = 0; i < 5; i++) w[i] = utf8_width(head[i]);
  int n = m->rows.len;
  const char *cells[256][5];
  if (n > 256) n = 256;
  int64_t total_flops = 0;
  bool flops_symbolic = false;
  for (int r = 0; r < n; r++) {
    const LayerRow *row = m->rows.items[r];
    char b1[32];
    cells[r][0] = row->name;
    cells[r][1] = row->type;
    cells[r][2] = ttype_str(a, row->out_dt, &row->out);
    cells[r][3] = arena_strdup(a, grouped(b1, sizeof b1, row->params));
    cells[r][4] = flops_str(a, row->flops);
    if (row->flops.nsym == 0) total_flops += row->flops.c;
    else flops_symbolic = true;
    for (int i = 0; i < 5; i++) {
      int cw = utf8_width(cells[r][i]);
      if (cw > w[i]) w[i] = cw;
    }
  }
  char tp[32], tf[32];
  grouped(tp, sizeof tp, m->params);
  grouped(tf, sizeof tf, total_flops);
  if (flops_symbolic) strncat(tf, " + ...", sizeof tf - strlen(tf) - 1);
  if (utf8_width(tp) > w[3]) w[3] = utf8_width(tp);
  if (utf8_width(tf) > w[4]) w[4] = utf8_width(tf);
  fputs("  ", out);
  for (int i = 0; i < 5; i++) {
    pad(out, head[i], w[i], i >= 3);
    fputs(i < 4 ? "  " : "\n", out);
  }
  for (int r = 0; r < n; r++) {
    fputs("  ", out);
    for (int i = 0; i < 5; i++) {
      pad(out, cells[r][i], w[i], i >= 3);
      fputs(i < 4 ? "  " : "\n", out);
    }
  }
  if (m->rows.len == 0)
    fputs("  (no layer table: forward is traced at its first call, and nothing calls it; a forward whose\n"
          "   inputs have only known sizes and B, like x: [B, 784], is traced when the model is built)\n", out);
  fputs("  ", out);
  pad(out, "total", w[0] + w[1] + w[2] + 4, false);
  fputs("  ", out);
  pad(out, tp, w[3], true);
  fputs("  ", out);
  pad(out, tf, w[4], true);
  fputc('\n', out);
  char kib[32];
  double bytes = (double)m->params * 4.0;
  if (bytes >= 1024.0 * 1024.0) snprintf(kib, sizeof kib, "%.1f MiB", bytes / (1024.0 * 1024.0));
  else snprintf(kib, sizeof kib, "%.1f KiB", bytes / 1024.0);
  fprintf(out, "  %s trainable parameters (%s as float32)", tp, kib);
  if (m->buffers) {
    char bb[32];
    fprintf(out, ", %s buffers", grouped(bb, sizeof bb, m->buffers));
  }
  if (m->budget) {
    char bb[32];
    fprintf(out, "; budget %s", grouped(bb, sizeof bb, m->budget));
  }
  fputc('\n', out);
}

void summary_print(FILE *out, const Program *p) {
  Arena *a = arena_new();
  int nmodels = 0;
  for (int i = 0; i < p->models.len; i++)
    if (!is_submodel(p, p->models.items[i])) nmodels++;
  int ntrain = 0, npredict = 0;
  for (int i = 0; i < p->blocks.len; i++) {
    const BlockInfo *b = p->blocks.items[i];
    if (b->is_train) ntrain++;
    else npredict++;
  }
  fprintf(out, "%s: ok\n", p->src ? p->src->path : "spec");
  if (p->consts.len) {
    fputs("\nconstants\n", out);
    for (int i = 0; i < p->consts.len; i++) fprintf(out, "  %s\n", (const char *)p->consts.items[i]);
  }
  if (p->datasets.len) {
    fputs("\ndata\n", out);
    int w = 0;
    for (int i = 0; i < p->datasets.len; i++) {
      int l = utf8_width(p->datasets.items[i]);
      if (l > w) w = l;
    }
    for (int i = 0; i < p->datasets.len; i++) {
      const Dataset *d = p->dsvals.items[i];
      char rows[48] = "";
      if (d->rows >= 0) {
        char g[32];
        snprintf(rows, sizeof rows, ", %s samples", grouped(g, sizeof g, d->rows));
      }
      fprintf(out, "  %-*s  %s%s\n", w, (const char *)p->datasets.items[i], d->desc, rows);
    }
  }

  /* each distinct model once, with the names it is used under */
  const Layer *shown[256];
  int nshown = 0;
  for (int i = 0; i < p->models.len && nshown < 256; i++) {
    const Layer *m = p->models.items[i];
    if (is_submodel(p, m)) continue;
    bool dup = false;
    for (int k = 0; k < nshown; k++) dup |= !strcmp(shown[k]->desc, m->desc);
    if (dup) continue;
    shown[nshown++] = m;
    char used[512] = "";
    size_t u = 0;
    for (int b = 0; b < p->blocks.len; b++) {
      const BlockInfo *bi = p->blocks.items[b];
      for (int k = 0; k < bi->models.len; k++) {
        const Layer *x = bi->models.items[k];
        if (strcmp(x->desc, m->desc) || u > sizeof used - 80) continue;
        u += (size_t)snprintf(used + u, sizeof used - u, "%s%s in %s%s%s", u ? "; " : "",
                              (const char *)bi->model_vars.items[k], bi->is_train ? "train" : "predict",
                              bi->name ? " " : "", bi->name ? bi->name : "");
      }
    }
    if (!u) snprintf(used, sizeof used, "not used by a train or predict block");
    fputc('\n', out);
    print_model(out, a, m, used);
  }

  for (int i = 0; i < p->blocks.len; i++) {
    const BlockInfo *b = p->blocks.items[i];
    fprintf(out, "\n%s%s%s  (line %d)\n", b->is_train ? "train" : "predict", b->name ? " " : "", b->name ? b->name : "",
            b->loc.line);
    for (int k = 0; k < b->lines.len; k++) fprintf(out, "  %s\n", (const char *)b->lines.items[k]);
  }
  nmodels = nshown;
  fprintf(out, "\n%d model%s, %d train block%s, %d predict block%s\n", nmodels, nmodels == 1 ? "" : "s", ntrain,
          ntrain == 1 ? "" : "s", npredict, npredict == 1 ? "" : "s");
  arena_free(a);
}
