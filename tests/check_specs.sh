#!/bin/sh
# check_specs.sh — `nnc check` must accept every homework spec and example.
#
#   tests/check_specs.sh NNC      (run from the repository root)
#
# Exit 77 (ctest: skipped) when there are no specs yet.
set -u
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
: "${ASAN_OPTIONS:=exitcode=86:detect_leaks=1}"
: "${UBSAN_OPTIONS:=exitcode=87:print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

pass=0
total=0
for spec in specs/hw*.nn examples/*.nn; do
  [ -f "$spec" ] || continue
  total=$((total + 1))
  if "$NNC" check "$spec" --color=never >/dev/null 2>"${TMPDIR:-/tmp}/nnc-spec-err.$$"; then
    echo "[PASS] $spec"
    pass=$((pass + 1))
  else
    echo "[FAIL] $spec (exit status $?)"
    sed 's/^/    /' "${TMPDIR:-/tmp}/nnc-spec-err.$$" | head -n 40
  fi
done
rm -f "${TMPDIR:-/tmp}/nnc-spec-err.$$"
if [ $total -eq 0 ]; then
  echo "no specs/hw*.nn or examples/*.nn yet"
  exit 77
fi
echo "$pass/$total passed"
[ $pass -eq $total ]
