#!/bin/sh
# fuzz.sh — fuzz the front end and the checker with libFuzzer.
#
#   scripts/fuzz.sh [SECONDS]      (default 60)
#
# Configures build-fuzz with clang and -DNNC_FUZZ=ON, seeds a corpus from
# specs/, examples/ and tests/golden/, runs tests/fuzz/fuzz_check for
# SECONDS, and copies any crash/leak/timeout input into tests/fuzz/crashes/
# (tests/robust.sh replays them). Exits 1 if the fuzzer found something.
# The corpus it grows is kept in build-fuzz/corpus between runs.
set -eu
SECONDS_TO_RUN=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/build-fuzz
cd "$ROOT"
mkdir -p "$B"

CC=${FUZZ_CC:-clang} cmake -S . -B "$B" -DNNC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="${FUZZ_CC:-clang}" >"$B/configure.log" 2>&1 ||
  { cat "$B/configure.log"; exit 1; }
cmake --build "$B" -j"$(nproc 2>/dev/null || echo 2)" --target fuzz_check >"$B/build.log" 2>&1 ||
  { tail -n 50 "$B/build.log"; exit 1; }

mkdir -p "$B/corpus" "$B/artifacts"
rm -f "$B"/artifacts/*
for f in specs/*.nn examples/*.nn tests/golden/*.nn tests/golden/pending/*.nn; do
  [ -f "$f" ] && cp "$f" "$B/corpus/seed-$(echo "$f" | tr '/' '_')"
done

echo "fuzz: running fuzz_check for ${SECONDS_TO_RUN}s"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
"$B/tests/fuzz/fuzz_check" "$B/corpus" \
  -dict="$ROOT/tests/fuzz/nn.dict" \
  -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -artifact_prefix="$B/artifacts/" -print_final_stats=1 \
  >"$B/fuzz.log" 2>&1 || status=$?
tail -n 15 "$B/fuzz.log"

found=0
for f in "$B"/artifacts/*; do
  [ -f "$f" ] || continue
  found=$((found + 1))
  mkdir -p tests/fuzz/crashes
  cp "$f" tests/fuzz/crashes/
  echo "fuzz: saved tests/fuzz/crashes/$(basename "$f")"
done
if [ $found -gt 0 ] || [ $status -ne 0 ]; then
  echo "fuzz: FAILED (exit status $status, $found inputs saved; full log: $B/fuzz.log)"
  echo "fuzz: reproduce with $B/tests/fuzz/fuzz_check tests/fuzz/crashes/FILE"
  exit 1
fi
echo "fuzz: no crashes in ${SECONDS_TO_RUN}s"
