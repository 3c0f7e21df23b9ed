#!/bin/sh
# fuzz.sh — fuzz the front end, the checker and the file readers with libFuzzer.
#
#   scripts/fuzz.sh [SECONDS]      (default 60)
#
# Configures build-fuzz with clang and -DNNC_FUZZ=ON, seeds the corpora
# (the project's specs for the checker, small real data files for the
# readers, the tiny PNGs of tests/fuzz/png/ for the PNG reader), runs
# tests/fuzz/fuzz_check, fuzz_readers and fuzz_png for SECONDS in all, and
# copies any crash/leak/timeout input into tests/fuzz/crashes/
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
cmake --build "$B" -j"$(nproc 2>/dev/null || echo 2)" --target fuzz_check fuzz_readers fuzz_png >"$B/build.log" 2>&1 ||
  { tail -n 50 "$B/build.log"; exit 1; }

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# the spec checker gets half of the time, the file readers and the PNG
# reader a quarter each
T_CHECK=$((SECONDS_TO_RUN / 2))
T_READ=$((SECONDS_TO_RUN / 4))
T_PNG=$((SECONDS_TO_RUN - T_CHECK - T_READ))
[ "$T_CHECK" -lt 1 ] && T_CHECK=1
[ "$T_READ" -lt 1 ] && T_READ=1
[ "$T_PNG" -lt 1 ] && T_PNG=1

# seeds: the project's specs for the checker; small real files for the readers
mkdir -p "$B/corpus" "$B/corpus-readers" "$B/corpus-png" "$B/artifacts"
rm -f "$B"/artifacts/*
for f in specs/*.nn examples/*.nn tests/golden/*.nn docs/examples/*.nn; do
  [ -f "$f" ] && cp "$f" "$B/corpus/seed-$(echo "$f" | tr '/' '_')"
done
R=$B/corpus-readers
head -n 12 data/hw1/covid.train.csv >"$R/seed-covid.csv"
printf 'a,b\r\n1,"2"\r\n3,4\r\n' >"$R/seed-crlf.csv"
gzip -dc data/hw14/t10k-labels-idx1-ubyte.gz | head -c 64 >"$R/seed-labels.idx"
gzip -dc data/hw14/t10k-images-idx3-ubyte.gz | head -c 1600 >"$R/seed-images.idx"
head -c 400 data/hw14/t10k-labels-idx1-ubyte.gz >"$R/seed-labels.idx.gz"
hdr='{"__metadata__":{"epoch":"3"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
{ printf "\\$(printf '%03o' ${#hdr})\\000\\000\\000\\000\\000\\000\\000"; printf '%s' "$hdr";
  printf '\\000\\000\\200\\077\\000\\000\\000\\100\\000\\000\\100\\100\\000\\000\\200\\100'; } >"$R/seed.safetensors"

cp tests/fuzz/png/*.png "$B/corpus-png/"

status=0
run() {  # target corpus seconds [dict]
  echo "fuzz: running $1 for ${3}s"
  "$B/tests/fuzz/$1" "$2" ${4:+-dict="$4"} \
    -max_total_time="$3" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="$B/artifacts/" -print_final_stats=1 \
    >"$B/$1.log" 2>&1 || status=$?
  tail -n 4 "$B/$1.log"
}
run fuzz_check "$B/corpus" "$T_CHECK" "$ROOT/tests/fuzz/nn.dict"
run fuzz_readers "$R" "$T_READ"
run fuzz_png "$B/corpus-png" "$T_PNG" "$ROOT/tests/fuzz/png.dict"

found=0
for f in "$B"/artifacts/*; do
  [ -f "$f" ] || continue
  found=$((found + 1))
  mkdir -p tests/fuzz/crashes
  cp "$f" tests/fuzz/crashes/
  echo "fuzz: saved tests/fuzz/crashes/$(basename "$f")"
done
if [ $found -gt 0 ] || [ $status -ne 0 ]; then
  echo "fuzz: FAILED (exit status $status, $found inputs saved; logs: $B/fuzz_check.log, $B/fuzz_readers.log, $B/fuzz_png.log)"
  echo "fuzz: reproduce with $B/tests/fuzz/fuzz_check (or fuzz_readers, fuzz_png) tests/fuzz/crashes/FILE"
  exit 1
fi
echo "fuzz: no crashes in ${SECONDS_TO_RUN}s"
