#!/bin/sh
# robust.sh — nnc must never crash, whatever bytes it is given.
#
#   tests/robust.sh NNC NNC_MUTATE      (run from the repository root)
#
# Takes every spec (specs/, examples/) and golden file, makes truncated
# copies (at spread-out byte offsets) and byte-mutated copies (seeded,
# deterministic: see tests/mutate.c), adds random-byte files and the inputs
# the fuzzer once crashed on (tests/fuzz/crashes/), and runs
# `nnc check --no-data-check` on each. Any exit status other than 0 or 1 —
# an abort, a signal, a sanitizer report (exit 86-88), a timeout (124) — is
# a failure; the failing inputs are kept and their paths printed.
#
# Knobs: ROBUST_SEED (1), ROBUST_TRUNC (12 per file), ROBUST_MUT (16 per
# file), ROBUST_RANDOM (24 files), ROBUST_JOBS (number of CPUs).
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 NNC NNC_MUTATE" >&2
  exit 2
fi
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
case $2 in /*) MUTATE=$2 ;; *) MUTATE=$(pwd)/$2 ;; esac
SEED=${ROBUST_SEED:-1}
NTRUNC=${ROBUST_TRUNC:-12}
NMUT=${ROBUST_MUT:-16}
NRANDOM=${ROBUST_RANDOM:-24}
JOBS=${ROBUST_JOBS:-$(nproc 2>/dev/null || echo 2)}

# distinctive exit codes for sanitizer reports (the default would be 1)
export ASAN_OPTIONS="exitcode=86:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="exitcode=87:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="exitcode=88"
export NNC NO_COLOR=1

T=$(mktemp -d "${TMPDIR:-/tmp}/nnc-robust.XXXXXX")
mkdir "$T/in"
nfiles=0
for f in specs/*.nn examples/*.nn tests/golden/*.nn; do
  [ -f "$f" ] || continue
  nfiles=$((nfiles + 1))
  # several golden files share a base name with a spec: prefix the folder
  d=$(dirname "$f" | tr '/' '_')
  cp "$f" "$T/in/${d}_$(basename "$f")"
  "$MUTATE" "$T/in/${d}_$(basename "$f")" "$T/in" "$SEED" "$NTRUNC" "$NMUT" || exit 2
done
"$MUTATE" --random "$T/in" "$SEED" "$NRANDOM" 3000 || exit 2
for f in tests/fuzz/crashes/*; do
  [ -f "$f" ] && cp "$f" "$T/in/replay-$(basename "$f").nn"
done
total=$(ls "$T/in" | wc -l)
echo "robust: $total inputs from $nfiles files (seed $SEED, $JOBS jobs)"

# one nnc run per input; a failure appends to $T/failed
ls "$T/in" | sed "s|^|$T/in/|" | xargs -P "$JOBS" -n 16 sh -c '
  for f in "$@"; do
    timeout 20 "$NNC" check --no-data-check --color=never "$f" >/dev/null 2>"$f.stderr"
    s=$?
    if [ $s -ne 0 ] && [ $s -ne 1 ]; then
      echo "exit $s: $f" >>"$(dirname "$f")/../failed"
    else
      rm -f "$f.stderr"
    fi
  done' sh

if [ -s "$T/failed" ]; then
  nfail=$(wc -l <"$T/failed")
  echo "robust: $nfail of $total inputs crashed nnc:"
  sort "$T/failed" | head -n 20
  f=$(sort "$T/failed" | head -n 1 | sed 's/^exit [0-9]*: //')
  echo "--- stderr of the first ($f):"
  head -n 40 "$f.stderr"
  echo "robust: inputs kept in $T/in (replay: $NNC check --no-data-check FILE)"
  exit 1
fi
rm -rf "$T"
echo "robust: all $total inputs exited 0 or 1"
