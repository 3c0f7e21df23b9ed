#!/bin/sh
# run_golden.sh — golden tests: tests/golden/NAME.nn with NAME.out or NAME.err.
#
#   tests/run_golden.sh NNC [--update] [NAME...]
#
# For each NAME.nn (or only the NAMEs given), runs nnc from tests/golden (so
# messages say `NAME.nn:3:5: ...`) and compares with `diff -u`:
#   NAME.out   the stdout of a successful run (exit status 0)
#   NAME.err   the stderr of a failed run (exit status 1)
# The command is `nnc check NAME.nn`, or, when the file's first line is
# `# nnc-test: CMD ARGS...`, `nnc CMD NAME.nn ARGS...`
# (e.g. `# nnc-test: ir --stage=ast`).
#
# --update rewrites NAME.out / NAME.err from what nnc prints now (NAME.out
# if it exits 0, NAME.err if it exits 1). Review the diff before committing.
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 NNC [--update] [NAME...]" >&2
  exit 2
fi
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
shift
UPDATE=0
if [ "${1:-}" = "--update" ]; then UPDATE=1; shift; fi

# sanitizer reports must not look like a user error (exit 1)
: "${ASAN_OPTIONS:=exitcode=86:detect_leaks=1}"
: "${UBSAN_OPTIONS:=exitcode=87:print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS
export LC_ALL=C NO_COLOR=1

cd "$(dirname "$0")/golden" || exit 2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

if [ $# -gt 0 ]; then
  names=$(for n in "$@"; do basename "$n" .nn; done)
else
  names=$(ls -1 *.nn 2>/dev/null | sed 's/\.nn$//' | sort)
fi

pass=0
total=0
for name in $names; do
  total=$((total + 1))
  spec=$name.nn
  if [ ! -f "$spec" ]; then
    echo "[FAIL] $name (no $spec)"
    continue
  fi
  # `# nnc-test: ir --stage=ast` -> cmd=ir, args=--stage=ast
  directive=$(head -n 1 "$spec" | tr -d '\r' | sed -n 's/^# *nnc-test: *//p')
  [ -n "$directive" ] || directive=check
  set -- $directive
  cmd=$1
  shift
  timeout 20 "$NNC" "$cmd" "$spec" "$@" --color=never >"$TMP/out" 2>"$TMP/err"
  status=$?

  if [ $UPDATE -eq 1 ]; then
    if [ $status -eq 0 ]; then
      cp "$TMP/out" "$name.out"
      rm -f "$name.err"
      echo "[UPDATED] $name.out"
    elif [ $status -eq 1 ]; then
      cp "$TMP/err" "$name.err"
      rm -f "$name.out"
      echo "[UPDATED] $name.err"
    else
      echo "[FAIL] $name: exit status $status (not 0 or 1); nothing written"
      sed 's/^/    /' "$TMP/err" | head -n 40
      continue
    fi
    pass=$((pass + 1))
    continue
  fi

  if [ -f "$name.err" ]; then
    want_status=1
    expected=$name.err
    actual=$TMP/err
  elif [ -f "$name.out" ]; then
    want_status=0
    expected=$name.out
    actual=$TMP/out
  else
    echo "[FAIL] $name: no $name.out or $name.err (run with --update, then review)"
    continue
  fi
  if [ $status -ne $want_status ]; then
    echo "[FAIL] $name: exit status $status, expected $want_status"
    sed 's/^/    /' "$TMP/err" | head -n 40
    continue
  fi
  if diff -u "$expected" "$actual" >"$TMP/diff"; then
    echo "[PASS] $name"
    pass=$((pass + 1))
  else
    echo "[FAIL] $name"
    sed 's/^/    /' "$TMP/diff"
  fi
done

echo "$pass/$total passed"
[ $pass -eq $total ]
