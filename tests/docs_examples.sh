#!/bin/sh
# docs_examples.sh — `nnc check` must accept every example of the language
# reference: each docs/examples/*.nn, and each ```nn block of docs/language.md
# whose first line is `# check` (written to a temporary file in docs/examples/,
# so that relative paths in it work as they do for the example files).
#
#   tests/docs_examples.sh NNC      (run from the repository root)
#
# Exit 77 (ctest: skipped) when there is nothing to check.
set -u
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
: "${ASAN_OPTIONS:=exitcode=86:detect_leaks=1}"
: "${UBSAN_OPTIONS:=exitcode=87:print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

DOC=docs/language.md
DIR=docs/examples
ERR="${TMPDIR:-/tmp}/nnc-docs-err.$$"
LIST="${TMPDIR:-/tmp}/nnc-docs-blocks.$$"
pass=0
total=0
made=""
cleanup() {
  rm -f "$ERR" "$LIST"
  for f in $made; do rm -f "$f"; done
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# check NAME FILE: run nnc check on FILE and report it as NAME.
check() {
  total=$((total + 1))
  if "$NNC" check "$2" --color=never >/dev/null 2>"$ERR"; then
    echo "[PASS] $1"
    pass=$((pass + 1))
  else
    echo "[FAIL] $1 (exit status $?)"
    sed 's/^/    /' "$ERR" | head -n 40
  fi
}

for spec in "$DIR"/*.nn; do
  [ -f "$spec" ] || continue
  case $(basename "$spec") in .doc-block-*) continue ;; esac
  check "$spec" "$spec"
done

# The ```nn blocks of the reference that begin with `# check`: awk writes each
# one to its own file and prints "START_LINE FILE" for it.
if [ -f "$DOC" ] && [ -d "$DIR" ]; then
  awk -v dir="$DIR" -v tag="$$" '
    /^```nn[ \t]*\r?$/ && !inblock { inblock = 1; first = 1; start = NR; next }
    /^```[ \t]*\r?$/ && inblock {
      if (keep) { close(file); print start, file }
      inblock = 0; keep = 0; next
    }
    inblock {
      if (first) {
        first = 0
        line = $0; sub(/\r$/, "", line); sub(/[ \t]+$/, "", line)
        if (line == "# check") { n++; keep = 1; file = sprintf("%s/.doc-block-%s-%d.nn", dir, tag, n) }
      }
      if (keep) print > file
    }
  ' "$DOC" >"$LIST"
  while read -r start file; do
    made="$made $file"
    check "$DOC:$start" "$file"
  done <"$LIST"
fi

if [ $total -eq 0 ]; then
  echo "no docs/examples/*.nn or checked blocks in $DOC yet"
  exit 77
fi
echo "$pass/$total passed"
[ $pass -eq $total ]
