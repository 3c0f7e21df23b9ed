#!/bin/sh
# train_refusals.sh — `nnc train` on a spec it cannot compile yet says what
# it cannot do, at the spec line, and exits 1: never a crash, never a
# silently different training.
#
#   tests/train_refusals.sh NNC       (run from the repository root)
#
# Every spec and example that the compiler does not train yet (those it
# does, hw1, hw2, hw3, hw6, hw8, hw9, hw10, hw13 and the MLP examples, are trained by other
# tests or by hand: they take minutes).
set -u
if [ $# -ne 1 ]; then echo "usage: $0 NNC" >&2; exit 2; fi
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/nnc-refuse.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
pass=0 total=0
for f in specs/hw4.nn specs/hw5.nn specs/hw7.nn \
         specs/hw11.nn specs/hw12.nn specs/hw14.nn specs/hw15.nn \
         examples/cartpole.nn examples/xor.nn examples/linear_regression.nn docs/examples/*.nn; do
  case $f in *mlp_fashion*|*cnn_budget*|*input_optimisation*|*gan.nn) continue ;; esac   # these train (minutes, or after another)
  total=$((total + 1))
  "$NNC" train "$f" --epochs 1 >"$T/out" 2>"$T/err"
  rc=$?
  if [ $rc -eq 1 ] && grep -Eq "(cannot be (compiled for training|used for training) yet|not supported)" "$T/err"; then
    pass=$((pass + 1))
    echo "[PASS] $f"
  else
    echo "[FAIL] $f: exit $rc"
    sed 's/^/    /' "$T/err" | head -5
  fi
done
echo "$pass/$total passed"
[ "$pass" -eq "$total" ]
