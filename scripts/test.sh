#!/bin/sh
# test.sh — everything CI runs: Debug (ASan+UBSan) and Release builds, all
# ctest tests in both, then a short fuzzing run.
#
#   scripts/test.sh              # about 2-4 minutes on 2 cores
#   FUZZ_SECONDS=0 scripts/test.sh   # skip fuzzing
#
# Build folders: build-debug, build-release, build-fuzz.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

for mode in Debug Release; do
  dir=build-$(echo "$mode" | tr 'A-Z' 'a-z')
  echo "=== $mode build ($dir)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$mode" >/dev/null
  cmake --build "$dir" -j"$JOBS"
  echo "=== $mode tests"
  ctest --test-dir "$dir" --output-on-failure -j"$JOBS"
done

if [ "$FUZZ_SECONDS" -gt 0 ]; then
  echo "=== fuzzing for ${FUZZ_SECONDS}s"
  scripts/fuzz.sh "$FUZZ_SECONDS"
fi
echo "=== all tests passed"
