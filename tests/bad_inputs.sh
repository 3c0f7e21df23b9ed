#!/bin/sh
# bad_inputs.sh — malformed files must make nnc exit 1 with a message that
# names the file and says what is wrong: never a crash, an abort, a
# sanitizer report, a hang or exit 0.
#
#   tests/bad_inputs.sh NNC [NAME...]            every case, or only these
#   UPDATE=1 tests/bad_inputs.sh NNC [NAME...]   rewrite the golden files from
#                                                what nnc prints now (read them!)
#
# A case is a folder tests/bad/NAME/ (NAME starts with what is malformed:
# spec_, csv_, idx_, ckpt_, init_, resume_, out_):
#   cmd        the nnc command line, with $NNC for the binary; lines starting
#              with # say what the case is about
#   expected   the exact stderr of nnc (the golden file)
#   setup      optional: shell commands that make inputs too big or too odd to
#              commit (a 2 MB line, a symbolic link, a folder); exit status 77
#              skips the case (a read-only folder means nothing to root)
#   ...        the malformed input files themselves
# Each case runs in a scratch folder holding tests/bad/common/ (the shared
# specs tiny.nn and idx.nn, their good data and a good checkpoint) with the
# case's own files copied over it, so a case holds only what is wrong. The
# scratch folder's path is replaced by CASE in stderr.
#
# Prints `[PASS] NAME` or `[FAIL] NAME` (with the difference) per case, then
# `N/M passed`; exits 0 only if every case passed. BAD_JOBS runs that many
# cases at once (default: the number of CPUs).
set -u
if [ $# -lt 1 ]; then
  echo "usage: $0 NNC [NAME...]" >&2
  exit 2
fi
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
shift
BAD=$(cd "$(dirname "$0")/bad" && pwd) || exit 2
UPDATE=${UPDATE:-0}
JOBS=${BAD_JOBS:-$(nproc 2>/dev/null || echo 2)}

# sanitizer reports get exit codes of their own, never 1
: "${ASAN_OPTIONS:=exitcode=86:detect_leaks=0:abort_on_error=0}"
: "${UBSAN_OPTIONS:=exitcode=87:print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS NNC BAD UPDATE
export LC_ALL=C NO_COLOR=1

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nnc-bad.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
export TMP

if [ $# -gt 0 ]; then
  names=$(for n in "$@"; do basename "$n"; done)
else
  names=$(cd "$BAD" && for d in */; do [ "$d" = common/ ] || echo "${d%/}"; done)
fi

# One case: its result in $TMP/NAME.result (PASS, FAIL, SKIP or UPDATED),
# what went wrong in $TMP/NAME.why.
echo "$names" | xargs -P "$JOBS" -n 1 sh -c '
  name=$1
  src=$BAD/$name
  work=$TMP/work/$name
  res=$TMP/$name.result
  why=$TMP/$name.why
  if [ ! -f "$src/cmd" ]; then
    echo FAIL >"$res"; echo "no $src/cmd" >"$why"; exit 0
  fi
  mkdir -p "$work"
  cp -R "$BAD/common/." "$work/"
  cp -R "$src/." "$work/"
  rm -f "$work/cmd" "$work/expected" "$work/setup"
  if [ -f "$src/setup" ]; then
    (cd "$work" && sh "$src/setup") >"$TMP/$name.setup" 2>&1
    s=$?
    if [ $s -eq 77 ]; then echo SKIP >"$res"; cp "$TMP/$name.setup" "$why"; exit 0; fi
    if [ $s -ne 0 ]; then echo FAIL >"$res"; { echo "setup failed ($s):"; cat "$TMP/$name.setup"; } >"$why"; exit 0; fi
  fi
  (cd "$work" && timeout 60 sh -c "$(cat "$src/cmd")") >"$TMP/$name.out" 2>"$TMP/$name.raw"
  status=$?
  # the scratch folder, wherever it is, reads CASE
  sed "s|$work|CASE|g" "$TMP/$name.raw" >"$TMP/$name.err"
  if [ $status -ne 1 ]; then
    echo FAIL >"$res"
    { echo "exit status $status, expected 1"; cat "$TMP/$name.err"; } >"$why"
    exit 0
  fi
  if [ "$UPDATE" = 1 ]; then
    cp "$TMP/$name.err" "$src/expected"
    echo UPDATED >"$res"
    exit 0
  fi
  if [ ! -f "$src/expected" ]; then
    echo FAIL >"$res"; { echo "no expected file (run with UPDATE=1, then read it):"; cat "$TMP/$name.err"; } >"$why"
    exit 0
  fi
  if diff -u "$src/expected" "$TMP/$name.err" >"$why"; then echo PASS >"$res"; else echo FAIL >"$res"; fi
' sh

pass=0 total=0 skipped=0
for name in $names; do
  total=$((total + 1))
  r=$(cat "$TMP/$name.result" 2>/dev/null || echo FAIL)
  case $r in
    PASS) pass=$((pass + 1)); echo "[PASS] $name" ;;
    UPDATED) pass=$((pass + 1)); echo "[UPDATED] $name/expected" ;;
    SKIP) skipped=$((skipped + 1)); echo "[SKIP] $name: $(head -n 1 "$TMP/$name.why")" ;;
    *) echo "[FAIL] $name"; sed 's/^/    /' "$TMP/$name.why" 2>/dev/null | head -n 40 ;;
  esac
done
if [ $skipped -gt 0 ]; then
  echo "$pass/$((total - skipped)) passed, $skipped skipped"
else
  echo "$pass/$total passed"
fi
[ $pass -eq $((total - skipped)) ]
