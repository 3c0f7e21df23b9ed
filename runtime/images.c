/*
 * images.c — a folder of PNG images as a data set: the images resized to
 * one size, their class labels, the class names and each image's file.
 *
 * Two layouts are read, the two the course's image homeworks come in:
 * class subfolders, as torchvision's ImageFolder reads them (classes are
 * the subfolders in sorted order), and one flat folder whose file names
 * start with the class, "3_0042.png", as the food-classification data is
 * named (and a flat folder without class prefixes is a test set). The
 * folder is listed and checked completely before any image is decoded, so
 * a layout mistake is reported at once, not after minutes of decoding;
 * then one allocation holds every image, and each file is read, resized
 * into its place and freed.
 */
#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A growing list of malloc'ed strings. */
typedef struct {
  char **v;
  int n, cap;
} Names;

static bool names_add(Names *l, const char *s) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    char **grown = realloc(l->v, (size_t)cap * sizeof *grown);
    if (!grown) return false;
    l->v = grown;
    l->cap = cap;
  }
  char *copy = strdup(s);
  if (!copy) return false;
  l->v[l->n++] = copy;
  return true;
}

static void names_free(Names *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "dir/name", malloc'ed. */
static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  bool slash = a > 0 && dir[a - 1] != '/';
  char *p = malloc(a + slash + b + 1);
  if (!p) return NULL;
  memcpy(p, dir, a);
  if (slash) p[a] = '/';
  memcpy(p + a + slash, name, b + 1);
  return p;
}

static bool has_ext(const char *name, const char *ext) {
  size_t n = strlen(name), e = strlen(ext);
  return n > e && !strcasecmp(name + n - e, ext);
}

/* What a folder holds: its .png files and subfolders (sorted by name), and
 * how many images of other formats it has (for the message when it holds
 * no PNG). */
typedef struct {
  Names pngs, dirs;
  int others;
  const char *other_ext;
} Listing;

static const char *const other_formats[] = {".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"};

static bool list_folder(const char *dir, Listing *l, RtError *err) {
  memset(l, 0, sizeof *l);
  DIR *d = opendir(dir);
  if (!d) {
    int e = errno;
    return rt_fail(err, "cannot open image folder '%s': %s", dir, strerror(e));
  }
  bool ok = true;
  struct dirent *de;
  while (ok && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;  /* ".", "..", hidden files and .ipynb_checkpoints */
    char *p = join(dir, de->d_name);
    struct stat st;
    if (!p) {
      ok = rt_fail(err, "out of memory listing '%s'", dir);
    } else if (stat(p, &st) != 0) {
      int e = errno;
      ok = rt_fail(err, "cannot read '%s': %s", p, strerror(e));
    } else if (S_ISDIR(st.st_mode)) {
      ok = names_add(&l->dirs, de->d_name) || rt_fail(err, "out of memory listing '%s'", dir);
    } else if (has_ext(de->d_name, ".png")) {
      ok = names_add(&l->pngs, de->d_name) || rt_fail(err, "out of memory listing '%s'", dir);
    } else {
      for (size_t i = 0; i < sizeof other_formats / sizeof *other_formats; i++)
        if (has_ext(de->d_name, other_formats[i])) {
          l->others++;
          l->other_ext = other_formats[i];
        }
    }
    free(p);
  }
  closedir(d);
  if (ok) {
    if (l->pngs.n) qsort(l->pngs.v, (size_t)l->pngs.n, sizeof *l->pngs.v, by_name);
    if (l->dirs.n) qsort(l->dirs.v, (size_t)l->dirs.n, sizeof *l->dirs.v, by_name);
  } else {
    names_free(&l->pngs);
    names_free(&l->dirs);
  }
  return ok;
}

static bool no_pngs(const char *dir, const Listing *l, const char *what, RtError *err) {
  if (l->others)
    return rt_fail(err,
                   "%s '%s' holds no .png files, but %d %s files: nnc reads PNG images; "
                   "convert them (e.g. mogrify -format png *%s)",
                   what, dir, l->others, l->other_ext + 1, l->other_ext);
  return rt_fail(err, "%s '%s' holds no .png files", what, dir);
}

/* The images' files (relative to the folder), labels and classes, before
 * any is read. */
typedef struct {
  Names files, classes;
  int *labels;
} Plan;

/* The images of class k, the subfolder `cls`. */
static bool plan_class(const char *path, const char *cls, int k, Plan *p, RtError *err) {
  char *dir = join(path, cls);
  if (!dir) return rt_fail(err, "out of memory listing '%s'", path);
  Listing l;
  if (!list_folder(dir, &l, err)) {
    free(dir);
    return false;
  }
  bool ok = l.pngs.n > 0 || no_pngs(dir, &l, "class folder", err);
  int *grown = ok ? realloc(p->labels, (size_t)(p->files.n + l.pngs.n) * sizeof *grown) : NULL;
  if (ok && !grown) ok = rt_fail(err, "out of memory listing '%s'", dir);
  if (grown) p->labels = grown;
  for (int i = 0; ok && i < l.pngs.n; i++) {
    char *rel = join(cls, l.pngs.v[i]);
    ok = (rel && names_add(&p->files, rel)) || rt_fail(err, "out of memory listing '%s'", dir);
    free(rel);
    if (ok) p->labels[p->files.n - 1] = k;
  }
  names_free(&l.pngs);
  names_free(&l.dirs);
  free(dir);
  return ok;
}

/* path/CLASS/x.png: classes are the subfolders in sorted order. */
static bool plan_subfolders(const char *path, const Listing *top, Plan *p, RtError *err) {
  for (int k = 0; k < top->dirs.n; k++) {
    if (!plan_class(path, top->dirs.v[k], k, p, err)) return false;
    if (!names_add(&p->classes, top->dirs.v[k])) return rt_fail(err, "out of memory listing '%s'", path);
  }
  return true;
}

/* A class prefix that is a number 0..9999, or -1. */
static int number_prefix(const char *s, size_t len) {
  if (len == 0 || len > 4) return -1;
  int v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* strcmp of `cls` with the first `len` bytes of f. */
static int cmp_prefix(const char *cls, const char *f, size_t len) {
  int c = strncmp(cls, f, len);
  return c ? c : cls[len] != 0;
}

/* path/CLASS_x.png, or path/x.png without classes. */
static bool plan_flat(const char *path, const Listing *top, Plan *p, RtError *err) {
  int n = top->pngs.n, with = 0;
  for (int i = 0; i < n; i++) {
    if (!names_add(&p->files, top->pngs.v[i])) return rt_fail(err, "out of memory listing '%s'", path);
    with += strchr(top->pngs.v[i], '_') != NULL;
  }
  p->labels = malloc((size_t)n * sizeof *p->labels);
  if (!p->labels) return rt_fail(err, "out of memory listing '%s'", path);
  bool numeric = true;
  for (int i = 0; i < n; i++) {
    const char *f = p->files.v[i], *us = strchr(f, '_');
    p->labels[i] = -1;
    if (with == 0) continue;
    if (!us || us == f)
      return rt_fail(err,
                     "'%s/%s' has no class before a '_': in a flat folder every file is named "
                     "CLASS_NAME.png (e.g. 3_0042.png), or put the images in class subfolders",
                     path, f);
    p->labels[i] = number_prefix(f, (size_t)(us - f));
    numeric = numeric && p->labels[i] >= 0;
  }
  if (with == 0) return true;
  if (numeric) {
    int max = 0;
    for (int i = 0; i < n; i++) max = p->labels[i] > max ? p->labels[i] : max;
    for (int k = 0; k <= max; k++) {
      char name[16];
      snprintf(name, sizeof name, "%d", k);
      if (!names_add(&p->classes, name)) return rt_fail(err, "out of memory listing '%s'", path);
    }
    return true;
  }
  /* The distinct prefixes, sorted; a label is its prefix's index. */
  for (int i = 0; i < n; i++) {
    const char *f = p->files.v[i];
    char *prefix = strndup(f, (size_t)(strchr(f, '_') - f));
    bool ok = prefix && names_add(&p->classes, prefix);
    free(prefix);
    if (!ok) return rt_fail(err, "out of memory listing '%s'", path);
  }
  qsort(p->classes.v, (size_t)p->classes.n, sizeof *p->classes.v, by_name);
  int k = 0;
  for (int i = 0; i < p->classes.n; i++) {
    if (k > 0 && !strcmp(p->classes.v[k - 1], p->classes.v[i])) {
      free(p->classes.v[i]);
      continue;
    }
    p->classes.v[k++] = p->classes.v[i];
  }
  p->classes.n = k;
  for (int i = 0; i < n; i++) {
    const char *f = p->files.v[i];
    size_t len = (size_t)(strchr(f, '_') - f);
    int lo = 0, hi = k;  /* binary search: the first class >= the prefix */
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (cmp_prefix(p->classes.v[mid], f, len) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    RT_ASSERT(lo < k && cmp_prefix(p->classes.v[lo], f, len) == 0);
    p->labels[i] = lo;
  }
  return true;
}

static void plan_free(Plan *p) {
  names_free(&p->files);
  names_free(&p->classes);
  free(p->labels);
}

/* Reads every planned image into s->data. */
static bool read_images(const char *path, const Plan *p, RtImageSet *s, RtError *err) {
  size_t one = (size_t)s->c * (size_t)s->h * (size_t)s->w;
  for (int64_t i = 0; i < s->n; i++) {
    char *file = join(path, p->files.v[i]);
    if (!file) return rt_fail(err, "out of memory reading '%s'", path);
    RtImage im;
    bool ok = rt_png_read(file, s->c, &im, err) &&
              rt_aug_resize(im.data, 1, im.c, im.h, im.w, s->h, s->w, s->data + (size_t)i * one, err);
    rt_image_free(&im);
    free(file);
    if (!ok) return false;
  }
  return true;
}

bool rt_load_image_folder(const char *path, int size, bool gray, RtImageSet *out, RtError *err) {
  memset(out, 0, sizeof *out);
  if (!path || !*path) return rt_fail(err, "no image folder was named");
  if (size < 1 || size > 4096)
    return rt_fail(err, "cannot load '%s' at %d x %d pixels: the size must be 1 to 4096", path,
                   size, size);
  Listing top;
  if (!list_folder(path, &top, err)) return false;
  Plan p = {0};
  bool ok;
  if (top.dirs.n > 0 && top.pngs.n > 0)
    ok = rt_fail(err,
                 "image folder '%s' holds both .png files (%s) and subfolders (%s): put every "
                 "image in its class's subfolder, or all in one folder named CLASS_NAME.png",
                 path, top.pngs.v[0], top.dirs.v[0]);
  else if (top.dirs.n > 0)
    ok = plan_subfolders(path, &top, &p, err);
  else if (top.pngs.n > 0)
    ok = plan_flat(path, &top, &p, err);
  else
    ok = no_pngs(path, &top, "image folder", err);
  names_free(&top.pngs);
  names_free(&top.dirs);

  RtImageSet s = {.n = p.files.n, .c = gray ? 1 : 3, .h = size, .w = size};
  size_t bytes;
  if (ok && (__builtin_mul_overflow((size_t)s.n * (size_t)s.c, (size_t)size * (size_t)size, &bytes) ||
             __builtin_mul_overflow(bytes, sizeof(float), &bytes) || !(s.data = malloc(bytes))))
    ok = rt_fail(err, "out of memory for %lld images of %d x %d x %d in '%s' (%.0f MB)",
                 (long long)s.n, s.c, size, size, path,
                 (double)s.n * s.c * size * size * 4 / 1e6);
  if (ok) ok = read_images(path, &p, &s, err);
  if (ok) {
    s.labels = p.labels;
    s.files = p.files.v;
    s.classes = p.classes.v;
    s.nclasses = p.classes.n;
    *out = s;
    return true;
  }
  free(s.data);
  plan_free(&p);
  return false;
}

void rt_image_set_free(RtImageSet *s) {
  free(s->data);
  free(s->labels);
  for (int64_t i = 0; s->files && i < s->n; i++) free(s->files[i]);
  free(s->files);
  for (int k = 0; k < s->nclasses; k++) free(s->classes[k]);
  free(s->classes);
  memset(s, 0, sizeof *s);
}

bool rt_image_set_to_table(RtImageSet *s, RtTable *t, RtError *err) {
  memset(t, 0, sizeof *t);
  bool labelled = s->nclasses > 0;
  t->fields = calloc(2, sizeof *t->fields);
  float *y = labelled ? malloc((size_t)s->n * sizeof *y) : NULL;
  char *xname = strdup("x"), *yname = labelled ? strdup("y") : NULL;
  if (!t->fields || (labelled && (!y || !yname)) || !xname) {
    free(t->fields);
    free(y);
    free(xname);
    free(yname);
    t->fields = NULL;
    return rt_fail(err, "out of memory");
  }
  t->rows = s->n;
  t->fields[0] = (RtField){.name = xname, .width = (int64_t)s->c * s->h * s->w, .rank = 3,
                           .shape = {s->c, s->h, s->w}, .data = s->data};
  t->nfields = 1;
  s->data = NULL;
  if (labelled) {
    for (int64_t i = 0; i < s->n; i++) y[i] = (float)s->labels[i];
    t->fields[1] = (RtField){.name = yname, .width = 1, .rank = 1, .shape = {1}, .data = y};
    t->nfields = 2;
  }
  return true;
}
