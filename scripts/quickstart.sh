#!/bin/sh
# quickstart.sh — from a fresh clone to a checked homework spec:
# installs the Debian packages, builds nnc, and runs `nnc check specs/hw1.nn`.
#
#   scripts/quickstart.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
echo
echo "\$ ./build/nnc check specs/hw1.nn"
./build/nnc check specs/hw1.nn
