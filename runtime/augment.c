/*
 * augment.c — image augmentation and normalisation on float batches
 * [n, C, H, W], with torchvision's conventions where it has the same
 * transform (RandomCrop, CenterCrop, RandomHorizontalFlip, RandomRotation,
 * Resize, Normalize), so a spec's augmentation means what the course's
 * PyTorch code means.
 *
 * The random transforms draw from an RtRng a fixed number of times per
 * image, whatever the image and the outcome (a crop whose window has one
 * place still draws its two offsets, a flip with p = 0 still draws), so the
 * numbers a run draws later do not depend on the images' sizes, and a seed
 * gives the same batch every time.
 *
 * Crops and flips move pixels; rotation and resizing interpolate. Rotation
 * maps each output pixel back into the source (the inverse rotation) and
 * samples it bilinearly, with zeros outside the image. Resizing is PIL's
 * bilinear filter: separable, each output pixel a triangle-weighted mean of
 * the input pixels its footprint covers, the triangle as wide as the scale
 * factor when shrinking (antialiasing), the weights precomputed per output
 * row and column.
 */
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Copies the size x size window of src [c, h, w] whose top-left is at
 * (oy, ox) (negative or past the edge: zeros there) into dst [c, size, size]. */
static void window(const float *src, int c, int h, int w, int64_t oy, int64_t ox, int size,
                   float *dst) {
  /* the window's columns that fall inside the image: j in [j0, j1) */
  int64_t j0 = ox < 0 ? -ox : 0, j1 = w - ox < size ? w - ox : size;
  if (j0 > size) j0 = size;
  if (j1 < j0) j1 = j0;
  for (int ch = 0; ch < c; ch++)
    for (int i = 0; i < size; i++) {
      float *d = dst + ((size_t)ch * (size_t)size + (size_t)i) * (size_t)size;
      int64_t y = oy + i;
      if (y < 0 || y >= h || j0 == j1) {
        memset(d, 0, (size_t)size * sizeof *d);
        continue;
      }
      const float *s = src + ((size_t)ch * (size_t)h + (size_t)y) * (size_t)w;
      memset(d, 0, (size_t)j0 * sizeof *d);
      memcpy(d + j0, s + ox + j0, (size_t)(j1 - j0) * sizeof *d);
      memset(d + j1, 0, (size_t)(size - j1) * sizeof *d);
    }
}

/* CenterCrop's offset along one axis: round half to even, as Python's
 * round() in torchvision; an axis shorter than the window is centred with
 * the odd pixel of padding after it. */
static int64_t center_offset(int len, int size) {
  if (len >= size) return (int64_t)rint((len - size) / 2.0);
  return -(int64_t)((size - len) / 2);
}

void rt_aug_random_crop(RtRng *r, const float *x, int64_t n, int c, int h, int w, int size,
                        int padding, float *out) {
  RT_ASSERT(c > 0 && h > 0 && w > 0 && size > 0 && padding >= 0);
  int64_t ph = (int64_t)h + 2 * padding, pw = (int64_t)w + 2 * padding;
  size_t in = (size_t)c * (size_t)h * (size_t)w, o = (size_t)c * (size_t)size * (size_t)size;
  for (int64_t k = 0; k < n; k++) {
    int64_t top = (int64_t)rt_rng_below(r, (uint64_t)(ph >= size ? ph - size + 1 : 1));
    int64_t left = (int64_t)rt_rng_below(r, (uint64_t)(pw >= size ? pw - size + 1 : 1));
    /* in the unpadded image's coordinates */
    int64_t oy = ph >= size ? top - padding : center_offset(h, size);
    int64_t ox = pw >= size ? left - padding : center_offset(w, size);
    window(x + (size_t)k * in, c, h, w, oy, ox, size, out + (size_t)k * o);
  }
}

void rt_aug_center_crop(const float *x, int64_t n, int c, int h, int w, int size, float *out) {
  RT_ASSERT(c > 0 && h > 0 && w > 0 && size > 0);
  size_t in = (size_t)c * (size_t)h * (size_t)w, o = (size_t)c * (size_t)size * (size_t)size;
  for (int64_t k = 0; k < n; k++)
    window(x + (size_t)k * in, c, h, w, center_offset(h, size), center_offset(w, size), size,
           out + (size_t)k * o);
}

void rt_aug_random_hflip(RtRng *r, float *x, int64_t n, int c, int h, int w, float p) {
  RT_ASSERT(c > 0 && h > 0 && w > 0);
  for (int64_t k = 0; k < n; k++) {
    if (!(rt_rng_uniform(r) < p)) continue;
    float *img = x + (size_t)k * (size_t)c * (size_t)h * (size_t)w;
    for (int64_t row = 0; row < (int64_t)c * h; row++) {
      float *a = img + (size_t)row * (size_t)w;
      for (int i = 0, j = w - 1; i < j; i++, j--) {
        float t = a[i];
        a[i] = a[j];
        a[j] = t;
      }
    }
  }
}

/* sin and cos of an angle in degrees, exact at multiples of 90. */
static void sin_cos_deg(double deg, double *s, double *co) {
  double q = deg / 90.0;
  if (q == floor(q) && fabs(q) < 1e15) {
    static const double S[4] = {0, 1, 0, -1}, C[4] = {1, 0, -1, 0};
    int k = ((int)fmod(q, 4.0) + 4) % 4;
    *s = S[k];
    *co = C[k];
    return;
  }
  double rad = deg * 3.14159265358979323846 / 180.0;
  *s = sin(rad);
  *co = cos(rad);
}

/* The bilinear sample of plane [h, w] at (sy, sx), zero outside. */
static float bilinear(const float *plane, int h, int w, double sy, double sx) {
  double fy = floor(sy), fx = floor(sx);
  if (fy < -1 || fx < -1 || fy >= h || fx >= w) return 0;
  int y0 = (int)fy, x0 = (int)fx;
  double ay = sy - fy, ax = sx - fx, v = 0;
  for (int dy = 0; dy < 2; dy++)
    for (int dx = 0; dx < 2; dx++) {
      int y = y0 + dy, x = x0 + dx;
      if (y < 0 || y >= h || x < 0 || x >= w) continue;
      double wt = (dy ? ay : 1 - ay) * (dx ? ax : 1 - ax);
      v += wt * plane[(size_t)y * (size_t)w + (size_t)x];
    }
  return (float)v;
}

/* Rotates one image [c, h, w] by `degrees` counter-clockwise. */
static void rotate_one(const float *x, int c, int h, int w, double degrees, float *out) {
  double s, co;
  sin_cos_deg(degrees, &s, &co);
  double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
  size_t plane = (size_t)h * (size_t)w;
  for (int i = 0; i < h; i++)
    for (int j = 0; j < w; j++) {
      /* the output pixel's offset from the centre, rotated back: with y
       * pointing down, a counter-clockwise turn by a takes (dx, dy) to
       * (dx cos a + dy sin a, -dx sin a + dy cos a) */
      double dx = j - cx, dy = i - cy;
      double sx = cx + dx * co - dy * s, sy = cy + dx * s + dy * co;
      for (int ch = 0; ch < c; ch++)
        out[(size_t)ch * plane + (size_t)i * (size_t)w + (size_t)j] =
            bilinear(x + (size_t)ch * plane, h, w, sy, sx);
    }
}

void rt_aug_rotate(const float *x, int64_t n, int c, int h, int w, double degrees, float *out) {
  RT_ASSERT(c > 0 && h > 0 && w > 0);
  size_t img = (size_t)c * (size_t)h * (size_t)w;
  for (int64_t k = 0; k < n; k++) rotate_one(x + (size_t)k * img, c, h, w, degrees, out + (size_t)k * img);
}

void rt_aug_random_rotation(RtRng *r, const float *x, int64_t n, int c, int h, int w,
                            float degrees, float *out) {
  RT_ASSERT(c > 0 && h > 0 && w > 0);
  size_t img = (size_t)c * (size_t)h * (size_t)w;
  for (int64_t k = 0; k < n; k++) {
    double a = -(double)degrees + 2.0 * (double)degrees * (double)rt_rng_uniform(r);
    rotate_one(x + (size_t)k * img, c, h, w, a, out + (size_t)k * img);
  }
}

/* PIL's resampling weights along one axis: output o reads inputs
 * start[o] .. start[o] + len[o] - 1 with weights k[o * taps ..]. */
typedef struct {
  int taps;
  int *start, *len;
  float *k;
} Weights;

static float triangle(double t) {
  t = fabs(t);
  return t < 1 ? (float)(1 - t) : 0;
}

/* As PIL's precompute_coeffs with the bilinear filter (support 1). */
static bool weights(int in, int out, Weights *wt) {
  double scale = (double)in / out, fs = scale > 1 ? scale : 1, support = fs;
  wt->taps = (int)ceil(support) * 2 + 1;
  wt->start = malloc((size_t)out * 2 * sizeof *wt->start);
  wt->k = calloc((size_t)out * (size_t)wt->taps, sizeof *wt->k);
  if (!wt->start || !wt->k) return false;
  wt->len = wt->start + out;
  for (int o = 0; o < out; o++) {
    double center = (o + 0.5) * scale;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    if (hi - lo > wt->taps) hi = lo + wt->taps;
    float *k = wt->k + (size_t)o * (size_t)wt->taps, sum = 0;
    for (int i = lo; i < hi; i++) sum += k[i - lo] = triangle((i - center + 0.5) / fs);
    for (int i = lo; i < hi && sum != 0; i++) k[i - lo] /= sum;
    wt->start[o] = lo;
    wt->len[o] = hi - lo;
  }
  return true;
}

static void weights_free(Weights *wt) {
  free(wt->start);
  free(wt->k);
}

/* Resizes one plane [h, w] to [oh, ow] through tmp [h, ow]: rows first,
 * then columns, as PIL does. */
static void resize_plane(const float *x, int h, int w, int oh, int ow, const Weights *wx,
                         const Weights *wy, float *tmp, float *out) {
  for (int y = 0; y < h; y++) {
    const float *row = x + (size_t)y * (size_t)w;
    for (int o = 0; o < ow; o++) {
      const float *k = wx->k + (size_t)o * (size_t)wx->taps;
      const float *s = row + wx->start[o];
      float v = 0;
      for (int i = 0; i < wx->len[o]; i++) v += k[i] * s[i];
      tmp[(size_t)y * (size_t)ow + (size_t)o] = v;
    }
  }
  for (int o = 0; o < oh; o++) {
    const float *k = wy->k + (size_t)o * (size_t)wy->taps;
    float *d = out + (size_t)o * (size_t)ow;
    for (int j = 0; j < ow; j++) d[j] = 0;
    for (int i = 0; i < wy->len[o]; i++) {
      const float *s = tmp + (size_t)(wy->start[o] + i) * (size_t)ow;
      for (int j = 0; j < ow; j++) d[j] += k[i] * s[j];
    }
  }
}

bool rt_aug_resize(const float *x, int64_t n, int c, int h, int w, int oh, int ow, float *out,
                   RtError *err) {
  RT_ASSERT(c > 0 && h > 0 && w > 0 && oh > 0 && ow > 0);
  size_t in = (size_t)h * (size_t)w, o = (size_t)oh * (size_t)ow;
  if (oh == h && ow == w) {
    memcpy(out, x, (size_t)n * (size_t)c * in * sizeof *x);
    return true;
  }
  Weights wx = {0}, wy = {0};
  float *tmp = malloc((size_t)h * (size_t)ow * sizeof *tmp);
  bool ok = tmp && weights(w, ow, &wx) && weights(h, oh, &wy);
  if (ok)
    for (int64_t p = 0; p < n * c; p++)
      resize_plane(x + (size_t)p * in, h, w, oh, ow, &wx, &wy, tmp, out + (size_t)p * o);
  else
    rt_fail(err, "out of memory resizing %d x %d images to %d x %d", w, h, ow, oh);
  free(tmp);
  weights_free(&wx);
  weights_free(&wy);
  return ok;
}

void rt_aug_channel_stats(const float *x, int64_t n, int c, int h, int w, float *mean,
                          float *std) {
  RT_ASSERT(c > 0 && h > 0 && w > 0);
  size_t plane = (size_t)h * (size_t)w;
  double count = (double)n * (double)plane;
  /* Two passes, as rt_field_stats: the mean, then squared deviations. */
  for (int ch = 0; ch < c; ch++) {
    double sum = 0, sq = 0;
    for (int64_t k = 0; k < n; k++) {
      const float *p = x + ((size_t)k * (size_t)c + (size_t)ch) * plane;
      for (size_t i = 0; i < plane; i++) sum += p[i];
    }
    double m = count > 0 ? sum / count : 0;
    for (int64_t k = 0; k < n; k++) {
      const float *p = x + ((size_t)k * (size_t)c + (size_t)ch) * plane;
      for (size_t i = 0; i < plane; i++) sq += (p[i] - m) * (p[i] - m);
    }
    mean[ch] = (float)m;
    std[ch] = count > 0 ? (float)sqrt(sq / count) : 0;
  }
}

void rt_aug_normalize(float *x, int64_t n, int c, int h, int w, const float *mean,
                      const float *std) {
  RT_ASSERT(c > 0 && h > 0 && w > 0);
  size_t plane = (size_t)h * (size_t)w;
  for (int64_t k = 0; k < n; k++)
    for (int ch = 0; ch < c; ch++) {
      float *p = x + ((size_t)k * (size_t)c + (size_t)ch) * plane, m = mean[ch];
      float s = std[ch] < 1e-12f ? 1.0f : std[ch];
      for (size_t i = 0; i < plane; i++) p[i] = (p[i] - m) / s;
    }
}
