#include "lang/lang.h"
#include <string.h>
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  Arena *a = arena_new();
  Diag d; diag_init(&d, stderr, 20);
  Source *s = source_load(a, &d, argv[2]);
  Node *p = s ? parse_source(a, &d, s) : NULL;
  if (p && strcmp(argv[1], "ast") == 0) ast_print(stdout, p);
  arena_free(a);
  return p ? 0 : 1;
}
