/*
 * fuzz_check.c — libFuzzer target for the front end and the checker:
 * any bytes go through source_from_text, parse_source and sema_check (with
 * the data files not opened). A crash, a sanitizer report, a leak or a hang
 * is a bug; error messages are not (they go to /dev/null).
 *
 * Built with -DNNC_FUZZ=ON and clang; run by scripts/fuzz.sh.
 */
#include "compiler/compiler.h"
#include "lang/lang.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *devnull;
  if (!devnull) {
    devnull = fopen("/dev/null", "w");
    if (!devnull) abort();
  }
  Diag d;
  diag_init(&d, devnull, 20);
  Arena *a = arena_new();
  Source *src = source_from_text(a, &d, "fuzz.nn", (const char *)data, size);
  Node *ast = src ? parse_source(a, &d, src) : NULL;
  if (ast) {
    SemaOptions opt = {.check_files = 0};
    Program *p = sema_check(a, &d, ast, &opt);
    if (p) {
      summary_print(devnull, p);
      ast_print(devnull, ast);
    }
  }
  arena_free(a);
  return 0;
}
