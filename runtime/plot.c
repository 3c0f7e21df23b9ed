/*
 * plot.c — training curves as a PNG chart, redrawn next to the metrics log
 * after every epoch, so a student can open one picture to see whether the
 * model is still learning, overfitting (valid loss turning up while train
 * loss falls) or diverging.
 *
 * Drawn by hand on a float [3, H, W] canvas and written with rt_png_write:
 * no plotting library, no fonts on the system. Text uses a built-in 5 x 8
 * bitmap font with the characters axis labels and metric names need
 * (digits, lowercase letters, ". - + _ : ( ) / %"); capitals are drawn as
 * lowercase. Each panel gets "nice" ticks (steps of 1, 2 or 5 times a power
 * of ten, as matplotlib's default locator picks them), or decades on a
 * logarithmic axis when its values span two orders of magnitude (a
 * regression loss falling from 300 to 0.8). Lines are 2 pixels wide; with
 * 30 epochs or fewer each point also gets a marker. The legend goes into
 * whichever corner of the panel the lines cover least.
 */
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int w, h;
  float *px;            /* [3, h, w] */
  unsigned char *ink;   /* [h, w]: 1 where a curve was drawn */
} Canvas;

static const float WHITE[3] = {1, 1, 1}, TEXT[3] = {0.15f, 0.15f, 0.15f},
                   FRAME[3] = {0.55f, 0.55f, 0.55f}, GRID[3] = {0.9f, 0.9f, 0.9f};

/* matplotlib's tab10 colours. */
static const unsigned char TAB10[10][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

static void put(Canvas *cv, int x, int y, const float rgb[3]) {
  if (x < 0 || y < 0 || x >= cv->w || y >= cv->h) return;
  size_t plane = (size_t)cv->w * (size_t)cv->h, at = (size_t)y * (size_t)cv->w + (size_t)x;
  for (int k = 0; k < 3; k++) cv->px[(size_t)k * plane + at] = rgb[k];
}

/* Fills [x0, x1) x [y0, y1). */
static void rect(Canvas *cv, int x0, int y0, int x1, int y1, const float rgb[3]) {
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) put(cv, x, y, rgb);
}

/* A 2-pixel-wide line (Bresenham with a 2 x 2 pen). */
static void line(Canvas *cv, int x0, int y0, int x1, int y1, const float rgb[3]) {
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int e = dx + dy;
  for (;;) {
    for (int k = 0; k < 4; k++) {
      int x = x0 + (k & 1), y = y0 + (k >> 1);
      put(cv, x, y, rgb);
      if (x >= 0 && y >= 0 && x < cv->w && y < cv->h) cv->ink[(size_t)y * (size_t)cv->w + (size_t)x] = 1;
    }
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * e;
    if (e2 >= dy) {
      e += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      e += dx;
      y0 += sy;
    }
  }
}

/* ---- the font ---------------------------------------------------------- */

/* 8 rows of 5 pixels, bit 4 the leftmost column: capitals and digits in
 * rows 0-6, the x-height from row 2, descenders (g j p q y) in row 7. */
typedef struct {
  char c;
  unsigned char rows[8];
} Glyph;

static const Glyph FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E, 0x00}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F, 0x00}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E, 0x00}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02, 0x00}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E, 0x00}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E, 0x00}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E, 0x00}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00}},
    {' ', {0, 0, 0, 0, 0, 0, 0, 0}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00}},
    {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E, 0x00}},
    {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E, 0x00}},
    {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F, 0x00}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00}},
    {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0x00}},
    {'g', {0x00, 0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
    {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00}},
    {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00}},
    {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00}},
    {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00}},
    {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11, 0x00}},
    {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00}},
    {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00}},
    {'p', {0x00, 0x00, 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10}},
    {'q', {0x00, 0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x01}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00}},
    {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E, 0x00}},
    {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D, 0x00}},
    {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00}},
    {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A, 0x00}},
    {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
    {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F, 0x00}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00}},
};

enum { GLYPH_W = 5, GLYPH_H = 8, ADVANCE = 6 };

static const Glyph *glyph(char c) {
  if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  size_t n = sizeof FONT / sizeof *FONT;
  for (size_t i = 0; i < n; i++)
    if (FONT[i].c == c) return &FONT[i];
  return &FONT[n - 1];  /* '?' */
}

static int text_width(const char *s) {
  int n = (int)strlen(s);
  return n ? n * ADVANCE - 1 : 0;
}

/* Draws s with its top-left corner at (x, y). */
static void text(Canvas *cv, int x, int y, const char *s, const float rgb[3]) {
  for (; *s; s++, x += ADVANCE) {
    const Glyph *g = glyph(*s);
    for (int r = 0; r < GLYPH_H; r++)
      for (int col = 0; col < GLYPH_W; col++)
        if (g->rows[r] >> (GLYPH_W - 1 - col) & 1) put(cv, x + col, y + r, rgb);
  }
}

/* ---- axes -------------------------------------------------------------- */

enum { MAX_TICKS = 16 };

/* One axis: the range [lo, hi] in axis units (log10 of the value on a log
 * axis) and the ticks inside it. */
typedef struct {
  double lo, hi;
  bool log;
  int nticks;
  double ticks[MAX_TICKS];
  double step;
} Axis;

/* 1, 2 or 5 times a power of ten, near range / target. */
static double nice_step(double range, int target) {
  double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* A linear axis over [lo, hi], widened to whole steps. */
static void linear_axis(Axis *a, double lo, double hi, int target, bool integer) {
  if (!(hi > lo)) {
    double pad = lo != 0 ? fabs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  double step = nice_step(hi - lo, target);
  if (integer && step < 1) step = 1;
  if (!integer) {
    lo = floor(lo / step) * step;
    hi = ceil(hi / step) * step;
  }
  *a = (Axis){.lo = lo, .hi = hi, .step = step};
  for (double k = ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9 && a->nticks < MAX_TICKS; k++)
    a->ticks[a->nticks++] = k * step;
}

/* A logarithmic axis over [lo, hi] (both > 0), widened to whole decades. */
static void log_axis(Axis *a, double lo, double hi) {
  double l = floor(log10(lo)), h = ceil(log10(hi));
  if (h <= l) h = l + 1;
  double step = ceil((h - l) / 6);
  *a = (Axis){.lo = l, .hi = h, .log = true, .step = step};
  for (double k = l; k <= h && a->nticks < MAX_TICKS; k += step) a->ticks[a->nticks++] = k;
}

static void tick_label(const Axis *a, double v, char *buf, size_t cap) {
  if (a->log) {
    int k = (int)v;
    if (k >= -4 && k <= 5)
      snprintf(buf, cap, "%.*f", k < 0 ? -k : 0, pow(10, k));
    else
      snprintf(buf, cap, "1e%d", k);
    return;
  }
  if (fabs(v) < a->step * 1e-6) v = 0;
  int decimals = a->step < 1 ? (int)ceil(-log10(a->step) - 1e-9) : 0;
  if (fabs(v) >= 1e6 || decimals > 6)
    snprintf(buf, cap, "%.3g", v);
  else
    snprintf(buf, cap, "%.*f", decimals, v);
}

/* ---- panels ------------------------------------------------------------ */

typedef struct {
  int left, top, right, bottom;  /* the plot area, inclusive */
  Axis x, y;
} Panel;

/* t in [0, 1] of the way along an axis (clamped: only values so extreme
 * that the axis range overflowed fall outside). */
static double along(const Axis *a, double v) {
  double t = ((a->log ? log10(v) : v) - a->lo) / (a->hi - a->lo);
  return t > 0 ? (t < 1 ? t : 1) : 0;
}

static int px_x(const Panel *p, double epoch) {
  return p->left + (int)lround(along(&p->x, epoch) * (p->right - p->left));
}

static int px_y(const Panel *p, double v) {
  return p->bottom - (int)lround(along(&p->y, v) * (p->bottom - p->top));
}

/* The y axis for the curves of panel `which`. */
static void y_axis(Panel *p, int64_t nepochs, const RtCurve *cs, int nc, int which) {
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < nc; i++)
    for (int64_t e = 0; cs[i].panel == which && e < nepochs; e++) {
      double v = cs[i].values[e];
      if (!isfinite(v)) continue;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
  if (lo > hi)
    linear_axis(&p->y, 0, 1, 5, false);
  else if (!isfinite(hi - lo))  /* -1e308 and 1e308: keep the range finite */
    linear_axis(&p->y, lo > -1e300 ? lo : -1e300, hi < 1e300 ? hi : 1e300, 5, false);
  else if (lo > 0 && hi / lo >= 100)
    log_axis(&p->y, lo, hi);
  else
    linear_axis(&p->y, lo, hi, 5, false);
}

static void draw_axes(Canvas *cv, const Panel *p) {
  char buf[32];
  for (int i = 0; i < p->y.nticks; i++) {
    int y = p->bottom - (int)lround((p->y.ticks[i] - p->y.lo) / (p->y.hi - p->y.lo) *
                                    (p->bottom - p->top));
    rect(cv, p->left, y, p->right + 1, y + 1, GRID);
    rect(cv, p->left - 4, y, p->left, y + 1, FRAME);
    tick_label(&p->y, p->y.ticks[i], buf, sizeof buf);
    text(cv, p->left - 7 - text_width(buf), y - GLYPH_H / 2, buf, TEXT);
  }
  for (int i = 0; i < p->x.nticks; i++) {
    int x = px_x(p, p->x.ticks[i]);
    rect(cv, x, p->top, x + 1, p->bottom + 1, GRID);
    rect(cv, x, p->bottom + 1, x + 1, p->bottom + 5, FRAME);
    tick_label(&p->x, p->x.ticks[i], buf, sizeof buf);
    text(cv, x - text_width(buf) / 2, p->bottom + 8, buf, TEXT);
  }
  rect(cv, p->left, p->top, p->right + 1, p->top + 1, FRAME);
  rect(cv, p->left, p->bottom, p->right + 1, p->bottom + 1, FRAME);
  rect(cv, p->left, p->top, p->left + 1, p->bottom + 1, FRAME);
  rect(cv, p->right, p->top, p->right + 1, p->bottom + 1, FRAME);
  text(cv, (p->left + p->right - text_width("epoch")) / 2, p->bottom + 22, "epoch", TEXT);
  if (p->y.log) text(cv, p->left, p->top - 12, "log scale", FRAME);
}

static void color_of(int i, float rgb[3]) {
  for (int k = 0; k < 3; k++) rgb[k] = TAB10[i % 10][k] / 255.0f;
}

static void draw_curve(Canvas *cv, const Panel *p, int64_t nepochs, const double *v, const float rgb[3]) {
  bool markers = nepochs <= 30;
  for (int64_t e = 0; e < nepochs; e++) {
    if (!isfinite(v[e]) || (p->y.log && v[e] <= 0)) continue;
    int x = px_x(p, (double)(e + 1)), y = px_y(p, v[e]);
    bool prev = e > 0 && isfinite(v[e - 1]), next = e + 1 < nepochs && isfinite(v[e + 1]);
    if (prev) line(cv, px_x(p, (double)e), px_y(p, v[e - 1]), x, y, rgb);
    if (markers || (!prev && !next)) {
      line(cv, x - 1, y - 1, x, y - 1, rgb);
      line(cv, x - 1, y, x, y, rgb);
    }
  }
}

/* How many curve pixels the box [x0, x1) x [y0, y1) would cover. */
static int64_t covered(const Canvas *cv, int x0, int y0, int x1, int y1) {
  int64_t n = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      if (x >= 0 && y >= 0 && x < cv->w && y < cv->h) n += cv->ink[(size_t)y * (size_t)cv->w + (size_t)x];
  return n;
}

static void draw_legend(Canvas *cv, const Panel *p, const RtCurve *cs, int nc, int which) {
  int n = 0, tw = 0;
  for (int i = 0; i < nc; i++)
    if (cs[i].panel == which) {
      n++;
      int w = text_width(cs[i].name);
      tw = w > tw ? w : tw;
    }
  if (n == 0) return;
  int bw = 6 + 16 + 5 + tw + 6, bh = 4 + 11 * n + 2, m = 6;
  const int xs[2] = {p->right - m - bw, p->left + m + 1}, ys[2] = {p->top + m + 1, p->bottom - m - bh};
  int bx = xs[0], by = ys[0];
  int64_t best = -1;
  for (int i = 0; i < 4; i++) {  /* top right, bottom right, top left, bottom left */
    int x = xs[i / 2], y = ys[i % 2];
    int64_t c = covered(cv, x, y, x + bw, y + bh);
    if (best < 0 || c < best) {
      best = c;
      bx = x;
      by = y;
    }
  }
  rect(cv, bx, by, bx + bw, by + bh, WHITE);
  rect(cv, bx, by, bx + bw, by + 1, FRAME);
  rect(cv, bx, by + bh - 1, bx + bw, by + bh, FRAME);
  rect(cv, bx, by, bx + 1, by + bh, FRAME);
  rect(cv, bx + bw - 1, by, bx + bw, by + bh, FRAME);
  int y = by + 5;
  for (int i = 0; i < nc; i++) {
    if (cs[i].panel != which) continue;
    float rgb[3];
    color_of(i, rgb);
    rect(cv, bx + 6, y + 2, bx + 6 + 16, y + 4, rgb);
    text(cv, bx + 6 + 16 + 5, y, cs[i].name, TEXT);
    y += 11;
  }
}

bool rt_plot_curves(const char *path, int64_t nepochs, const RtCurve *curves, int ncurves,
                    RtError *err) {
  if (nepochs < 1) return rt_fail(err, "cannot draw '%s': there are no epochs to plot", path);
  if (ncurves < 1 || ncurves > 10)
    return rt_fail(err, "cannot draw '%s': %d curves, but a chart holds 1 to 10", path, ncurves);
  int npanels = 1;
  for (int i = 0; i < ncurves; i++) {
    RT_ASSERT(curves[i].panel == 0 || curves[i].panel == 1);
    if (curves[i].panel == 1) npanels = 2;
  }
  Canvas cv = {RT_PLOT_WIDTH, RT_PLOT_HEIGHT, NULL, NULL};
  size_t plane = (size_t)cv.w * (size_t)cv.h;
  cv.px = malloc(3 * plane * sizeof *cv.px);
  cv.ink = calloc(plane, 1);
  if (!cv.px || !cv.ink) {
    free(cv.px);
    free(cv.ink);
    return rt_fail(err, "out of memory drawing '%s'", path);
  }
  for (size_t i = 0; i < 3 * plane; i++) cv.px[i] = 1;
  int slot = cv.w / npanels;
  for (int which = 0; which < npanels; which++) {
    Panel p = {.left = which * slot + 62, .top = 24, .right = (which + 1) * slot - 16, .bottom = cv.h - 42};
    linear_axis(&p.x, 1, nepochs > 1 ? (double)nepochs : 2, 6, true);
    y_axis(&p, nepochs, curves, ncurves, which);
    draw_axes(&cv, &p);
    for (int i = 0; i < ncurves; i++) {
      if (curves[i].panel != which) continue;
      float rgb[3];
      color_of(i, rgb);
      draw_curve(&cv, &p, nepochs, curves[i].values, rgb);
    }
    draw_legend(&cv, &p, curves, ncurves, which);
  }
  bool ok = rt_png_write(path, cv.px, 3, cv.h, cv.w, err);
  free(cv.px);
  free(cv.ink);
  return ok;
}

/* ---- the chart of a training log ------------------------------------------ */

enum { LOG_MAX_KEYS = 10, LOG_MAX_EPOCHS = 100000 };

typedef struct {
  char names[LOG_MAX_KEYS][48];
  double *values[LOG_MAX_KEYS];   /* [cap], NaN where an epoch has no value */
  int nkeys;
  int64_t nepochs, cap;
} LogSeries;

/* The value of key k at epoch e (1-based); grows the arrays. */
static bool log_set(LogSeries *s, const char *key, size_t keylen, int64_t epoch, double v) {
  if (keylen == 0 || keylen >= sizeof s->names[0]) return true;
  if ((keylen == 5 && !strncmp(key, "epoch", 5)) || (keylen == 2 && !strncmp(key, "ms", 2))) return true;
  int k = 0;
  while (k < s->nkeys && (strlen(s->names[k]) != keylen || strncmp(s->names[k], key, keylen))) k++;
  if (k == s->nkeys) {
    if (s->nkeys == LOG_MAX_KEYS) return true;   /* the chart has room for ten lines */
    memcpy(s->names[k], key, keylen);
    s->names[k][keylen] = 0;
    s->values[k] = NULL;
    s->nkeys++;
  }
  if (epoch > s->cap) {
    int64_t cap = s->cap ? s->cap : 64;
    while (cap < epoch) cap *= 2;
    for (int j = 0; j < LOG_MAX_KEYS; j++) {
      if (j >= s->nkeys) break;
      double *nv = realloc(s->values[j], sizeof(double) * (size_t)cap);
      if (!nv) return false;
      for (int64_t i = j == k && !s->values[j] ? 0 : s->cap; i < cap; i++) nv[i] = NAN;
      s->values[j] = nv;
    }
    s->cap = cap;
  } else if (!s->values[k]) {
    s->values[k] = malloc(sizeof(double) * (size_t)s->cap);
    if (!s->values[k]) return false;
    for (int64_t i = 0; i < s->cap; i++) s->values[k][i] = NAN;
  }
  s->values[k][epoch - 1] = v;
  if (epoch > s->nepochs) s->nepochs = epoch;
  return true;
}

bool rt_plot_log(const char *log_path, const char *png_path, RtError *err) {
  FILE *f = fopen(log_path, "r");
  if (!f) return rt_fail(err, "%s: cannot read the training log", log_path);
  LogSeries s;
  memset(&s, 0, sizeof s);
  char row[4096];
  bool ok = true;
  while (ok && fgets(row, sizeof row, f)) {
    /* {"epoch":3,"train_loss":1.09,"accuracy":0.60,"ms":607.1}: flat, numbers only */
    const char *ep = strstr(row, "\"epoch\":");
    if (!ep) continue;
    long long epoch = strtoll(ep + 8, NULL, 10);
    if (epoch < 1 || epoch > LOG_MAX_EPOCHS) continue;
    for (const char *p = row; (p = strchr(p, '"')) != NULL;) {
      const char *key = p + 1, *end = strchr(key, '"');
      if (!end || end[1] != ':') break;
      char *after;
      double v = strtod(end + 2, &after);
      if (after == end + 2) v = NAN;   /* null: NaN or infinity in training */
      ok = log_set(&s, key, (size_t)(end - key), epoch, v);
      p = after > end + 2 ? after : end + 2;
      if (!ok) break;
    }
  }
  fclose(f);
  if (ok && s.nepochs > 0) {
    RtCurve cs[LOG_MAX_KEYS];
    for (int k = 0; k < s.nkeys; k++)
      cs[k] = (RtCurve){s.names[k], s.values[k], strstr(s.names[k], "loss") ? 0 : 1};
    ok = rt_plot_curves(png_path, s.nepochs, cs, s.nkeys, err);
  } else if (!ok) {
    rt_fail(err, "out of memory reading %s", log_path);
  }
  for (int k = 0; k < s.nkeys; k++) free(s.values[k]);
  return ok;
}
