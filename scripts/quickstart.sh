#!/bin/sh
# quickstart.sh — from a fresh clone to a trained homework:
# installs the Debian packages, builds nnc, checks specs/hw1.nn, trains it
# (the course's HW1 on its real data: about 5 seconds) and writes the
# submission file out/hw1/pred.csv.
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
echo
echo "\$ ./build/nnc train specs/hw1.nn"
./build/nnc train specs/hw1.nn
echo
echo "\$ ./build/nnc predict specs/hw1.nn"
./build/nnc predict specs/hw1.nn
